"""The core is extended by one new class each — an activation, a stepping rule, a problem variant — with nothing edited
elsewhere. Each class below lives only in this file, and each is checked against an independent computation."""

import math

import numpy as np
import pytest
from conftest import assert_mc_close, check_unit_flow

import meanfield as mf
from meanfield.activations import Activation
from meanfield.controllers import ConstantStep
from meanfield.io import recorder_for
from meanfield.loop import Snapshot, run_loop
from meanfield.problem import ProblemVariant
from meanfield.saving import SaveAt


# -- a new activation -------------------------------------------------------------------------------------------
class Abs(Activation):
    r"""σ(z) = |z| = −z + 2 relu(z). For unit Gaussians with correlation c: k(c) = E|g||g'| =
    (2/π)(√(1 − c²) + c arcsin c), k'(c) = (2/π) arcsin c, k − c k' = (2/π)√(1 − c²)."""

    name = "abs"

    def __call__(self, z):
        return np.abs(z)

    def torch(self, z):
        return z.abs()

    def derivative(self, z):
        return np.sign(z)

    def dual(self, c, nx):
        root = nx.sqrt((1.0 - c) * (1.0 + c))
        arcsin = math.pi / 2 - nx.arccos(c)
        return (2 / math.pi) * (root + c * arcsin), (2 / math.pi) * arcsin, (2 / math.pi) * root

    @property
    def relu_decomposition(self):
        return -1.0, 2.0


def _abs_problem(inputs):
    rng = np.random.default_rng(0)
    U = rng.standard_normal((2, inputs.d))
    return mf.Problem(mf.TeacherNetwork([1.0, -0.7], U / np.linalg.norm(U, axis=1, keepdims=True)), inputs,
                      activation=Abs())


def test_abs_dual_kernel_against_monte_carlo():
    rng = np.random.default_rng(1)
    g = rng.standard_normal((2, 400_000))
    for c in (-0.9, -0.3, 0.0, 0.5, 0.95):
        other = c * g[0] + math.sqrt(1 - c * c) * g[1]
        k, _, _ = Abs().dual(np.array([c]), np)
        assert_mc_close(k[0], np.abs(g[0]) * np.abs(other))


@pytest.mark.parametrize("inputs", [mf.Gaussian(4), mf.Sphere(4)])
def test_abs_field_equals_the_relu_field_of_the_mirrored_measure(inputs):
    """|z| = relu(z) + relu(−z): the abs network of {(a_j, b_j)} is the ReLU network of {(2a_j, ±b_j)} with half the
    masses, so ψ_abs(b) = ψ(b) + ψ(−b) and ∇ψ_abs(b) = ∇ψ(b) − ∇ψ(−b) through the ReLU kernel (another dual)."""
    problem = _abs_problem(inputs)
    relu = mf.Problem(problem.target, inputs)
    mu = mf.init.sign_sphere(7, 4, seed=3)
    mirrored = mf.ParticleMeasure(np.concatenate([2 * mu.a, 2 * mu.a]), np.concatenate([mu.b, -mu.b]))
    for backend in ("numpy", "numba", "torch"):
        ev, ref = problem.evaluate(mu, backend), relu.evaluate(mirrored, "numpy")
        assert math.isclose(ev.risk, ref.risk, rel_tol=1e-12)
        np.testing.assert_allclose(ev.psi, ref.psi[:7] + ref.psi[7:], rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(ev.grad_psi, ref.grad_psi[:7] - ref.grad_psi[7:], rtol=1e-11, atol=1e-13)


def test_abs_equivalent_kernel_against_monte_carlo():
    """The weight-statistics family takes the same unit: E_w|w·x||w·y| for w ~ N(0, (s/n) I)."""
    from meanfield.weights.analysis import equivalent_kernel

    rng = np.random.default_rng(6)
    x, y = rng.standard_normal(5), rng.standard_normal(5)
    w = math.sqrt(1.7 / 5) * rng.standard_normal((400_000, 5))
    assert_mc_close(equivalent_kernel(x, y, 1.7, Abs()), np.abs(w @ x) * np.abs(w @ y))


def test_abs_flow_and_finite_network():
    """The flow runs (energy identity over a step), and the finite torch network of a measure predicts what the
    measure does; its population risk matches Monte Carlo."""
    problem = _abs_problem(mf.Gaussian(4))
    mu = mf.init.sign_sphere(16, 4, seed=4)
    traj = mf.simulate(problem, mu, t_max=2.0, dt=0.01, solver="rk4", save_every=100)
    assert traj.risk[-1] < traj.risk[0]
    x = np.random.default_rng(5).standard_normal((200_000, 4))
    assert_mc_close(problem.risk(mu), 0.5 * (problem.predict(mu, x) - problem.target(x)) ** 2)
    net = mf.sgd.TwoLayerNetwork.from_measure(mu, activation=Abs())
    import torch

    expected = np.abs(x[:50] @ mu.b.T) @ (mu.weights * mu.a)
    np.testing.assert_allclose(net(torch.tensor(x[:50])).detach().numpy(), expected, rtol=1e-13)


# -- a new stepping rule -----------------------------------------------------------------------------------------
class OutputLayerDescent:
    """Gradient flow on the output weights only, b frozen (the random-features model): explicit Euler steps
    a ← a − h ψ_μ(b)."""

    kind = "output_layer_descent"
    label = "output-layer descent"

    def __init__(self, problem, mu0):
        self.bound, self.mu0 = problem.bind("numpy"), mu0

    def init(self, start):
        mu = self.mu0 if start is None else mf.ParticleMeasure(start.arrays["a"], start.arrays["b"], self.mu0.weights)
        return mu.state()

    def step(self, state, h):
        psi = self.bound.evaluate(state, self.mu0.weights).psi
        new = state.copy()
        new[:, 0] -= h * psi
        return new, None

    def accept(self, state, clock):
        return state, False

    def observe(self, state, clock):
        mu = mf.ParticleMeasure.from_state(state, self.mu0.weights)
        return Snapshot(self.bound.evaluate(state, self.mu0.weights).risk, mu)

    def checkpoint(self, state, snapshot):
        return {"a": state[:, 0], "b": state[:, 1:]}

    def where(self, clock):
        return f"output-layer descent at t = {clock.t:.6g}"

    def info(self, state):
        return {}


def _descent(problem, mu0, t_max, path=None, resume=False):
    recorder, start = recorder_for(path, OutputLayerDescent.kind, {"t_max": t_max}, problem.spec(),
                                   problem.target.arrays(), mu0.weights, resume=resume, resumable=("t_max",))
    return run_loop(OutputLayerDescent(problem, mu0), ConstantStep(0.1), SaveAt(5), t_max, recorder, start)


def test_a_new_stepping_rule_runs_in_the_loop_with_files_and_resume(tmp_path, small_problem):
    """Against the same Euler iteration written with the Gram matrix of the closed-form kernel:
    ȧ = −(G W a − F*), G_jk = K(b_j, b_k), W = diag(w)."""
    from meanfield.kernels.closed_form import relu_kernel

    mu0 = mf.init.sign_sphere(6, 5, seed=7)
    traj = _descent(small_problem, mu0, 3.0)
    G = relu_kernel(mu0.b[:, None, :], mu0.b[None, :, :], small_problem.scale)
    f_star = small_problem.bind("numpy").target_correlation(mu0.b)[0]
    a = mu0.a.copy()
    for _ in range(30):
        a = a - 0.1 * (G @ (mu0.weights * a) - f_star)
    np.testing.assert_allclose(traj.final.a, a, rtol=1e-12)
    np.testing.assert_array_equal(traj.final.b, mu0.b)
    assert np.all(np.diff(traj.risk) < 0) and traj.times.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    path = tmp_path / "rf.h5"
    _descent(small_problem, mu0, 1.5, path=path).close()
    with _descent(small_problem, mu0, 3.0, path=path, resume=True) as resumed:
        assert resumed.kind == "output_layer_descent"
        np.testing.assert_array_equal(resumed.final.a, traj.final.a)
        np.testing.assert_array_equal(resumed.risk, traj.risk)


# -- a new problem variant ---------------------------------------------------------------------------------------
class RotatedProblem(ProblemVariant):
    """The flow written in rotated coordinates b' = R b: the kernel is rotation invariant, so only the target field
    changes, F*'(b') = F*(Rᵀ b') with gradient R ∇F*(Rᵀ b')."""

    def __init__(self, problem, R):
        super().__init__(problem)
        self.R = np.asarray(R, dtype=np.float64)

    def variant_spec(self):
        return {"rotation": self.R.tolist()}

    def target_field(self, bound, b):
        R = bound.constant("rotation", lambda bk: bk.asarray(self.R))
        f, g = bound.target_correlation(b @ R)
        return f, g @ R.T


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_a_new_problem_variant_is_equivariant(small_problem, backend):
    """Flowing R μ0 under the rotated problem gives R times the base flow from μ0."""
    from conftest import random_rotation

    R = random_rotation(5, np.random.default_rng(8))
    mu0 = mf.init.sign_sphere(9, 5, seed=9)
    rotated = mf.ParticleMeasure(mu0.a, mu0.b @ R.T)
    base = mf.simulate(small_problem, mu0, t_max=2.0, dt=0.05, backend=backend, alignment=False)
    turned = mf.simulate(RotatedProblem(small_problem, R), rotated, t_max=2.0, dt=0.05, backend=backend,
                         alignment=False)
    np.testing.assert_allclose(turned.risk, base.risk, rtol=1e-11)
    np.testing.assert_allclose(turned.final.b, base.final.b @ R.T, atol=1e-11)
    np.testing.assert_allclose(turned.final.a, base.final.a, atol=1e-11)


@pytest.mark.parametrize("inputs", [mf.Gaussian(4), mf.Sphere(4)])
def test_the_packaged_abs_unit_agrees_with_this_extension(inputs):
    """``mf.activations.Abs`` (through its ReLU decomposition −z + 2 relu(z), compiled by numba) against the arcsine
    form written here: two routes to the same kernel."""
    from meanfield.activations import Abs as PackagedAbs

    mu = mf.init.sign_sphere(9, 4, seed=8)
    here = _abs_problem(inputs).evaluate(mu, "numpy")
    packaged = mf.Problem(_abs_problem(inputs).target, inputs, activation="abs")
    assert isinstance(packaged.unit, PackagedAbs)
    for backend in ("numpy", "numba", "torch"):
        ev = packaged.evaluate(mu, backend)
        assert math.isclose(ev.risk, here.risk, rel_tol=1e-12)
        np.testing.assert_allclose(ev.grad_psi, here.grad_psi, rtol=1e-11, atol=1e-13)
    if isinstance(inputs, mf.Gaussian):  # and its energy identity along a run (h²F‴/6 was 2.5e-4 relative at h = 0.01)
        check_unit_flow(packaged, mf.init.sign_sphere(16, 4, seed=9), h=0.0025, t_max=0.1, seed=10)
