"""A new unit is one class, written against the array namespace, with its Gaussian pair moment in closed form; it is
the student's and the teacher's unit, and a student of another unit meets it through their mixed kernel; a new way of
computing the Gaussian pair moment is one registered route class. Only public names are imported. Each check is
against an independent computation (closed forms, Monte Carlo, finite differences, autograd)."""

import math

import numpy as np
import pytest
from conftest import assert_mc_close

import meanfield as mf
from meanfield.activations import NUMPY, Activation
from meanfield.kernels.routes import ROUTES, Route, pair_route


class Cos(Activation):
    r"""σ(z) = cos z. For centred jointly Gaussian (u, u′) with variances q, q′ and covariance p,
    E[cos u cos u′] = ½[e^{−(q+q′−2p)/2} + e^{−(q+q′+2p)/2}] (the characteristic function of u ∓ u′)."""

    name, degree = "cos", None

    def value(self, z, nx):
        return nx.cos(z)

    def derivative(self, z, nx=NUMPY):
        return -nx.sin(z)

    def pair_kernel(self, p, q, q2, nx):
        plus, minus = nx.exp(-0.5 * (q + q2 - 2.0 * p)), nx.exp(-0.5 * (q + q2 + 2.0 * p))
        return 0.5 * (plus + minus), 0.5 * (plus - minus), -0.25 * (plus + minus)


D = 3


def _teacher():
    rng = np.random.default_rng(0)
    return mf.TeacherNetwork([1.0, -0.6], 0.8 * rng.standard_normal((2, D)), activation=Cos())


def _student(m=6, seed=1):
    rng = np.random.default_rng(seed)
    return mf.ParticleMeasure(rng.standard_normal(m), 0.7 * rng.standard_normal((m, D)))


def test_the_pair_kernel_of_cos_against_monte_carlo():
    """The closed form the unit states, against 10⁶ Gaussian pairs (5 SE)."""
    p, q, q2 = 0.3, 0.8, 1.2
    g = np.random.default_rng(2).standard_normal((2, 1_000_000))
    u = math.sqrt(q) * g[0]
    v = p / math.sqrt(q) * g[0] + math.sqrt(q2 - p * p / q) * g[1]
    k, _, _ = Cos().pair_kernel(np.array(p), np.array(q), np.array(q2), np)
    assert_mc_close(float(k), np.cos(u) * np.cos(v))


def test_a_teacher_of_the_students_new_unit_has_zero_risk_at_the_teacher():
    """The reported bug: a teacher of a unit with a closed-form pair kernel and no ReLU decomposition failed with
    ``TypeError: cannot unpack non-iterable NoneType`` when the problem was built (the teacher's linear moment)."""
    teacher = _teacher()
    problem = mf.Problem(teacher, mf.Gaussian(D), activation=Cos())
    np.testing.assert_allclose(problem.target_linear_moment, 0.0, atol=1e-15)   # cos is even: E[cos(u·x) x] = 0
    at_teacher = mf.ParticleMeasure(2 * teacher.c, teacher.U)   # f(μ; x) = Σ_j w_j a_j σ(⟨b_j, x⟩), w_j = 1/2
    assert abs(problem.risk(at_teacher, backend="numpy")) < 1e-14 * problem.target.second_moment(problem.inputs)
    assert pair_route(Cos()).name == "pair_kernel"


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_risk_against_monte_carlo_and_velocity_against_finite_differences(backend):
    problem = mf.Problem(_teacher(), mf.Gaussian(D), activation=Cos())
    mu = _student()
    x = problem.inputs.sample(1_000_000, 3)
    assert_mc_close(problem.risk(mu, backend), 0.5 * (problem.predict(mu, x) - problem.target(x)) ** 2)
    da, db = problem.velocity(mu, backend)
    # ∂F/∂a_j = w_j ψ(b_j) = −w_j ȧ_j and ∂F/∂b_j = −w_j ḃ_j: central differences of step 1e-5, error O(1e-10)
    step, state = 1e-5, mu.state()
    for j, col in [(0, 0), (2, 1), (5, 3)]:
        plus, minus = state.copy(), state.copy()
        plus[j, col] += step
        minus[j, col] -= step
        fd = (problem.risk(mf.ParticleMeasure(plus[:, 0], plus[:, 1:], mu.weights), backend)
              - problem.risk(mf.ParticleMeasure(minus[:, 0], minus[:, 1:], mu.weights), backend)) / (2 * step)
        expected = -mu.weights[j] * (da[j] if col == 0 else db[j, col - 1])
        assert fd == pytest.approx(expected, rel=1e-7, abs=1e-9)


def test_the_field_of_a_teacher_of_another_unit_against_monte_carlo():
    """A cos student against a ReLU teacher: the mixed kernel of the pair of units (a Mehler series of the cos
    coefficients by quadrature and the ReLU's exact ones), against Monte Carlo of E[f*(x) cos(⟨b, x⟩)]."""
    teacher = mf.TeacherNetwork([1.0, -0.6], np.random.default_rng(0).standard_normal((2, D)))
    inputs = mf.Gaussian(D)
    assert pair_route(Cos(), teacher.unit).name == "mixed_series"
    b = _student().b[:3]
    value, _ = teacher.correlation(inputs, b, Cos())
    x = inputs.sample(1_000_000, 4)
    for j in range(3):
        assert_mc_close(value[j], teacher(x) * np.cos(x @ b[j]))


def test_the_finite_network_and_the_flow_of_the_new_unit():
    """The torch evaluation comes from the same ``value``: the finite network predicts what the measure does, its
    autograd derivative is the unit's ``derivative``; a short flow lowers the risk and keeps the energy identity."""
    import torch

    mu = _student()
    x = np.random.default_rng(5).standard_normal((50, D))
    net = mf.sgd.TwoLayerNetwork.from_measure(mu, activation=Cos())
    np.testing.assert_allclose(net(torch.tensor(x)).detach().numpy(), np.cos(x @ mu.b.T) @ (mu.weights * mu.a),
                               rtol=1e-13)
    z = torch.linspace(-3.0, 3.0, 7, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(Cos().torch(z).sum(), z)
    np.testing.assert_allclose(Cos().torch_derivative(z.detach()).numpy(), slope.numpy(), rtol=1e-15)
    problem = mf.Problem(_teacher(), mf.Gaussian(D), activation=Cos())
    h = 0.01
    traj = mf.simulate(problem, mu, t_max=0.05, dt=h, solver="rk4", save_every=1)
    assert traj.risk[-1] < traj.risk[0]
    dF = (traj.risk[2:] - traj.risk[:-2]) / (2 * h)
    diss = np.array([problem.dissipation(traj.measure(i)) for i in range(1, len(traj) - 1)])
    np.testing.assert_allclose(dF, -diss, rtol=1e-4)


def test_units_are_real_classes_with_the_registered_names():
    for name, cls in [("gelu", mf.activations.GELU), ("tanh", mf.activations.Tanh), ("silu", mf.activations.SiLU),
                      ("softplus", mf.activations.Softplus)]:
        unit = mf.registry.UNITS.create(name, tol=1e-8)
        assert isinstance(unit, cls) and type(unit) is cls and unit.tol == 1e-8
        assert pair_route(unit).name == "series"
        z = np.linspace(-4.0, 4.0, 9)
        # the derivative the unit states, against a central difference of its value (step 1e-6, error ~1e-10)
        np.testing.assert_allclose(unit.derivative(z), (unit(z + 1e-6) - unit(z - 1e-6)) / 2e-6, atol=1e-8)


class Linear(Activation):
    """σ(z) = z, stating its moment in a form of its own: E[u u′] = p."""

    name, degree = "linear_by_own_form", 1

    def value(self, z, nx):
        return 1.0 * z

    def derivative(self, z, nx=NUMPY):
        return 0.0 * z + 1.0

    def gaussian_pair(self, p, q, q2, nx):
        return p, 1.0 + 0.0 * p, 0.0 * p


@ROUTES.register("own_form_for_tests")
class OwnForm(Route):
    """A new route is one class: chosen by pair_route by its priority, run by every backend's generic field."""

    priority = 5

    @classmethod
    def build(cls, student, teacher, bias):
        return cls(student) if not bias and isinstance(student, Linear) and student == teacher else None

    def __init__(self, unit):
        super().__init__()
        self.unit = unit

    def moments(self, p, q, q2, nx, c=None, c2=None):
        return self.unit.gaussian_pair(p, q, q2, nx)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_a_new_route_is_one_registered_class(backend):
    assert isinstance(pair_route(Linear()), OwnForm) and pair_route(Cos()).name == "pair_kernel"
    rng = np.random.default_rng(7)
    b, s, coef = rng.standard_normal((4, D)), rng.standard_normal((3, D)), rng.standard_normal(3)
    nx = mf.get_backend(backend)
    value, grad = nx.field(nx.asarray(b), nx.asarray(s), nx.asarray(coef), 0.8, Linear())
    # E[⟨b, x⟩⟨s, x⟩] = κ⟨b, s⟩ for x ~ N(0, κI): V(b) = κ ⟨b, Σ_k c_k s_k⟩ and ∇V = κ Σ_k c_k s_k
    np.testing.assert_allclose(nx.to_numpy(value), 0.8 * b @ (coef @ s), rtol=1e-13)
    np.testing.assert_allclose(nx.to_numpy(grad), np.tile(0.8 * coef @ s, (4, 1)), rtol=1e-13)
