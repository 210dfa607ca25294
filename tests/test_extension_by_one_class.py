"""Extension by one class, with public names only and nothing edited elsewhere: a unit with a closed-form Gaussian
pair moment that is also the teacher's unit, a loss, a dynamics and an array namespace as a backend, each registered by
name, used by the Python API and by a configuration file, and checked against an independent computation (Monte Carlo,
torch autograd, the plain flow at another time scale, the float64 reference).
(Input laws, with and without a Gaussian reduction, are extended the same way in tests/test_input_laws.py.)"""

from dataclasses import dataclass

import numpy as np
import pytest
import torch

import meanfield as mf
from meanfield.activations import NUMPY, Activation
from meanfield.cli import main
from meanfield.data import DataSet
from meanfield.flow import ParticleFlow
from meanfield.kernels import Backend, register_backend
from meanfield.losses import Loss
from meanfield.registry import BACKENDS, DYNAMICS, LOSSES, UNITS


class Cos(Activation):
    r"""σ(z) = cos z, with E[cos u cos u′] = ½[e^{−(q+q′−2p)/2} + e^{−(q+q′+2p)/2}] for centred jointly Gaussian
    (u, u′) of variances q, q′ and covariance p (the characteristic function of u ∓ u′), with its p and q slopes."""

    name, degree = "cos", None

    def value(self, z, nx):
        return nx.cos(z)

    def derivative(self, z, nx=NUMPY):
        return -nx.sin(z)

    def pair_kernel(self, p, q, q2, nx):
        plus, minus = nx.exp(-0.5 * (q + q2 - 2.0 * p)), nx.exp(-0.5 * (q + q2 + 2.0 * p))
        return 0.5 * (plus + minus), 0.5 * (plus - minus), -0.25 * (plus + minus)


class Huber(Loss):
    """ℓ(f, y) = ½ r² for |r| ≤ δ, δ(|r| − δ/2) beyond (r = f − y); ∂ℓ/∂f = clip(r, −δ, δ)."""

    name = "huber"

    def __init__(self, delta: float = 0.5):
        self.delta = float(delta)

    def value(self, f, y, nx):
        r = nx.abs(f - y)
        return nx.where(r <= self.delta, 0.5 * r * r, self.delta * (r - 0.5 * self.delta))

    def derivative(self, f, y, nx):
        r = f - y
        return nx.where(r > self.delta, self.delta, nx.where(r < -self.delta, -self.delta, r))

    def spec(self):
        return {"loss": self.name, "delta": self.delta}


@dataclass(frozen=True)
class Rescaled:
    """The gradient flow run at ``rate`` times its speed: θ̇ = −rate · ∇F'(μ)(θ)."""

    rate: float = 2.0

    def spec(self):
        return {"kind": "rescaled", "rate": self.rate}

    def rule(self, bound, mu0, solver, max_risk_factor, stop_risk):
        return RescaledFlow(bound, mu0, solver, max_risk_factor, stop_risk, rate=self.rate)


class RescaledFlow(ParticleFlow):
    def __init__(self, bound, mu0, solver, max_risk_factor, stop_risk, rate):
        super().__init__(bound, mu0, solver, max_risk_factor, stop_risk)
        self.rate = rate

    def velocity(self, y, evaluation):
        return self.rate * super().velocity(y, evaluation)


class LongDouble(Backend):
    """numpy's extended precision (80-bit on x86-64) as an array namespace: every algorithm runs on it unchanged."""

    name = "longdouble"

    def asarray(self, x):
        return np.asarray(x, dtype=np.longdouble)

    def to_numpy(self, x):
        return np.asarray(x, dtype=np.float64)

    def empty(self, shape):
        return np.empty(shape, dtype=np.longdouble)

    def zeros(self, shape):
        return np.zeros(shape, dtype=np.longdouble)


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Each class above registered by name, one line each (here while this module's tests run, so that the package's
    own lists stay its own for the other tests; a user's module registers at import: ``@LOSSES.register("huber")``)."""
    UNITS.register("cos", Cos)
    LOSSES.register("huber", Huber)
    DYNAMICS.register("rescaled", Rescaled)
    register_backend("longdouble", LongDouble)
    yield
    UNITS.unregister("cos")
    LOSSES.unregister("huber")
    DYNAMICS.unregister("rescaled")
    BACKENDS.unregister("longdouble")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    return DataSet(x, np.sin(2.0 * x[:, 0]) + 0.3 * rng.standard_normal(64))


def test_a_loss_is_one_class_and_its_velocity_is_the_autograd_gradient(data):
    problem = mf.EmpiricalProblem(data, loss="huber", activation="erf", bias=True)
    mu = mf.init.gaussian(12, 3, seed=1, bias_std=0.5)
    da, dw = problem.velocity(mu, backend="numpy")
    # the same risk by torch autograd on the finite network: F = mean ℓ(f(x_i), y_i), ∂F/∂θ_j = w_j F'(μ)-gradient
    a, b, c = (torch.tensor(v, requires_grad=True) for v in (mu.a, mu.b, mu.c))
    x, y, w = (torch.tensor(v) for v in (data.x, data.y, mu.weights))
    r = (torch.erf(x @ b.T + c) @ (w * a) - y).abs()
    loss = torch.where(r <= 0.5, 0.5 * r * r, 0.5 * (r - 0.25)).mean()
    loss.backward()
    np.testing.assert_allclose(problem.risk(mu, backend="numpy"), loss.item(), rtol=1e-13)
    np.testing.assert_allclose(da, -a.grad.numpy() / mu.weights, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(dw, -np.column_stack([b.grad.numpy(), c.grad.numpy()]) / mu.weights[:, None],
                               rtol=1e-11, atol=1e-14)
    assert mf.simulate(problem, mu, t_max=2.0, dt=0.1, backend="numpy").risk[-1] < problem.risk(mu, backend="numpy")


def test_a_registered_loss_runs_from_a_configuration_file(tmp_path, data):
    np.savez(tmp_path / "data.npz", x=data.x, y=data.y)
    cfg = tmp_path / "huber.toml"
    cfg.write_text(f'[data]\nkind = "npz"\npath = "{tmp_path / "data.npz"}"\n[problem]\nloss = "huber"\n'
                   f'[init]\nkind = "gaussian"\nm = 8\nseed = 2\n[run]\nt_max = 1.0\ndt = 0.1\nbackend = "numpy"\n'
                   f'output = "{tmp_path / "huber.h5"}"\n')
    assert main(["run", str(cfg), "--no-progress"]) == 0
    reference = mf.simulate(mf.EmpiricalProblem(data, loss=Huber()), mf.init.gaussian(8, 3, seed=2), t_max=1.0,
                            dt=0.1, backend="numpy")
    with mf.load(tmp_path / "huber.h5") as traj:
        np.testing.assert_array_equal(traj.risk, reference.risk)
        assert traj.problem_spec["loss"] == "huber"


def test_a_dynamics_is_one_class_and_equals_the_flow_at_another_time_scale():
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.5], np.eye(3)[:2]), mf.Gaussian(3))
    mu0 = mf.init.sign_sphere(10, 3, seed=0)
    fast = mf.simulate(problem, mu0, t_max=1.0, dt=0.05, solver="euler", backend="numpy", dynamics=Rescaled(2.0))
    plain = mf.simulate(problem, mu0, t_max=2.0, dt=0.1, solver="euler", backend="numpy")
    # Euler with velocity 2v and step h is Euler with v and step 2h, exactly (multiplying by 2 rounds nothing)
    np.testing.assert_array_equal(fast.final.state(), plain.final.state())
    np.testing.assert_array_equal(fast.risk, plain.risk)


def test_a_registered_dynamics_runs_from_a_configuration_file(tmp_path):
    cfg = tmp_path / "rescaled.toml"
    cfg.write_text('[inputs]\nd = 3\n[target]\nkind = "teacher"\nk = 2\nseed = 0\n[init]\nkind = "sign_sphere"\n'
                   'm = 6\nseed = 1\n[dynamics]\nkind = "rescaled"\nrate = 3.0\n[run]\nt_max = 0.5\ndt = 0.1\n'
                   f'backend = "numpy"\noutput = "{tmp_path / "r.h5"}"\n')
    assert main(["run", str(cfg), "--no-progress"]) == 0
    from meanfield.config import build_init, build_problem, load_config

    loaded = load_config(cfg)
    reference = mf.simulate(build_problem(loaded), build_init(loaded), t_max=0.5, dt=0.1, backend="numpy",
                            dynamics=Rescaled(3.0))
    with mf.load(tmp_path / "r.h5") as traj:
        np.testing.assert_array_equal(traj.final.state(), reference.final.state())


def test_an_array_namespace_is_a_backend():
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.5], np.eye(3)[:2]), mf.Gaussian(3), activation="erf")
    mu0 = mf.init.gaussian(16, 3, seed=3)
    extended = problem.evaluate(mu0, backend="longdouble")
    reference = problem.evaluate(mu0, backend="numpy")
    # the same closed forms in 64-bit-mantissa arithmetic: equal to the float64 reference to its round-off
    np.testing.assert_allclose(extended.psi, reference.psi, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(extended.grad_psi, reference.grad_psi, rtol=1e-13, atol=1e-15)
    assert extended.risk == pytest.approx(reference.risk, rel=1e-13)
    bound = problem.bind("longdouble")
    assert bound.evaluate(bound.backend.asarray(mu0.state()), bound.backend.asarray(mu0.weights)).psi.dtype \
        == np.longdouble
    run = mf.simulate(problem, mu0, t_max=1.0, dt=0.1, backend="longdouble")
    np.testing.assert_allclose(run.risk, mf.simulate(problem, mu0, t_max=1.0, dt=0.1, backend="numpy").risk,
                               rtol=1e-12)


COS_TEACHER = mf.TeacherNetwork([1.0, -0.6], [[0.8, -0.3, 0.2], [0.1, 0.7, -0.5]], activation=Cos())


def test_a_unit_is_one_class_student_and_teacher_against_monte_carlo():
    problem = mf.Problem(COS_TEACHER, mf.Gaussian(3), activation="cos")
    mu = mf.init.gaussian(8, 3, seed=4)
    x = problem.inputs.sample(1 << 20, 5)
    half_squares = 0.5 * (problem.predict(mu, x) - COS_TEACHER(x)) ** 2
    # the closed-form risk against Monte Carlo, five standard errors
    assert abs(problem.risk(mu, backend="numpy") - half_squares.mean()) < 5 * half_squares.std() / np.sqrt(x.shape[0])
    flow = mf.simulate(problem, mu, t_max=5.0, dt=0.1, backend="numba")
    assert flow.risk[-1] < 0.5 * flow.risk[0]


def test_a_registered_unit_trains_by_sgd_on_its_finite_network():
    problem = mf.Problem(COS_TEACHER, mf.Gaussian(3), activation="cos")
    mu = mf.init.gaussian(64, 3, seed=6)
    net = mf.sgd.TwoLayerNetwork.from_measure(mu, activation=problem.unit)
    x = np.random.default_rng(7).standard_normal((5, 3))
    np.testing.assert_allclose(net(torch.tensor(x)).detach().numpy(), problem.predict(mu, x), rtol=1e-14)
    # online SGD at a small rate follows the flow: its exact risk at t = 3 within 10 % of the flow's decrease
    sgd = mf.sgd.train(problem, mu, t_max=3.0, eta=0.01, batch_size=2048, seed=0, save_every=300)
    flow = mf.simulate(problem, mu, t_max=3.0, dt=0.05, backend="numpy")
    decrease = flow.risk[0] - flow.risk[-1]
    assert decrease > 0 and abs(sgd.risk[-1] - flow.risk[-1]) < 0.1 * decrease


def test_a_registered_unit_runs_from_a_configuration_file_by_its_name(tmp_path):
    cfg = tmp_path / "cos.toml"
    cfg.write_text('[inputs]\nd = 3\n[target]\nkind = "teacher"\nk = 2\nseed = 0\nactivation = "cos"\n'
                   '[problem]\nactivation = "cos"\n[init]\nkind = "gaussian"\nm = 6\nseed = 1\n'
                   f'[run]\nt_max = 1.0\ndt = 0.1\nbackend = "numpy"\noutput = "{tmp_path / "cos.h5"}"\n')
    assert main(["run", str(cfg), "--no-progress"]) == 0
    from meanfield.config import build_init, build_problem, load_config

    loaded = load_config(cfg)
    problem = build_problem(loaded)
    assert isinstance(problem.unit, Cos) and isinstance(problem.target.unit, Cos)
    reference = mf.simulate(problem, build_init(loaded), t_max=1.0, dt=0.1, backend="numpy")
    with mf.load(tmp_path / "cos.h5") as traj:
        np.testing.assert_array_equal(traj.risk, reference.risk)
        np.testing.assert_array_equal(traj.final.state(), reference.final.state())
