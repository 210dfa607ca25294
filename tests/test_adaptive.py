"""The embedded Runge–Kutta pairs on their own: orders of the solution and of the error estimate on an ODE with a
known solution, and the step-size control (tolerance proportionality, steps against the tolerance)."""

import numpy as np
import pytest

import meanfield as mf
from meanfield.solvers import get_solver

# y' = A y (a damped rotation coupled to a decaying mode), solved by y(t) = exp(tA) y0.
A = np.array([[-0.5, 2.0, 0.0], [-2.0, -0.5, 0.3], [0.1, 0.0, -1.0]])
Y0 = np.array([1.0, -0.5, 0.3])


@pytest.mark.parametrize("name, h0", [("bosh3", 0.1), ("dopri5", 0.2)])
def test_local_orders_of_the_solution_and_of_the_error_estimate(name, h0):
    from scipy.linalg import expm

    rk = get_solver(name)
    hs = h0 / 2.0 ** np.arange(4)  # dopri5 starts larger: at h = 0.0125 its error would reach round-off
    sol_err, est, low_err = [], [], []
    for h in hs:
        y, err = rk.step(lambda z: A @ z, Y0, h)
        exact = expm(h * A) @ Y0
        sol_err.append(np.linalg.norm(y - exact))
        est.append(np.linalg.norm(err))
        low_err.append(np.linalg.norm((y - err) - exact))  # the embedded lower-order solution
    slope = np.diff(np.log(sol_err)) / np.diff(np.log(hs))
    slope_est = np.diff(np.log(est)) / np.diff(np.log(hs))
    # Local errors: h^{p+1} for the solution, h^{q+1} for the estimate (q = p − 1); ±0.2 covers the next term
    # of the expansion at the largest h (measured slopes are within 0.1).
    np.testing.assert_allclose(slope, rk.order + 1, atol=0.2)
    np.testing.assert_allclose(slope_est, rk.error_order + 1, atol=0.2)
    # The estimate is the lower-order solution's error: equal to leading order (the higher-order error is
    # O(h) smaller), to 5 % at the smallest h.
    np.testing.assert_allclose(est[-1], low_err[-1], rtol=0.05)


@pytest.fixture(scope="module")
def flow(small_problem):
    problem = small_problem
    mu0 = mf.init.sign_sphere(16, 5, seed=4)
    reference = mf.simulate(problem, mu0, t_max=3.0, dt=1e-3, solver="rk4", save_every=3000).final.state()
    return problem, mu0, reference


@pytest.mark.parametrize("name", ["bosh3", "dopri5"])
def test_step_size_control_is_tolerance_proportional(flow, name):
    """Each accepted step keeps its estimated error below the tolerance, so the global error scales like the
    tolerance (within a factor that the error-per-step control allows: here 1000× tighter tolerance gives
    between 100× and 10⁴× smaller error), and the number of steps like tol^{−1/(q+1)}."""
    problem, mu0, reference = flow
    rk = get_solver(name)
    errors, steps = [], []
    for tol in (1e-5, 1e-8):
        traj = mf.simulate(problem, mu0, t_max=3.0, dt=0.1, solver=name, save_every=30, rtol=tol, atol=tol)
        errors.append(np.abs(traj.final.state() - reference).max())
        steps.append(traj.info["n_steps"])
    assert 1e2 < errors[0] / errors[1] < 1e4, errors
    predicted = 1e3 ** (1 / (rk.error_order + 1))  # steps ∝ tol^{−1/(q+1)}
    assert 0.5 * predicted < steps[1] / steps[0] < 2 * predicted, (steps, predicted)


class _BlowUp:
    """ẋ = −x by explicit Euler with Heun's solution as the error estimate, on a state that becomes NaN for steps
    above 1 (what a far too large step of a flow does); counts its steps and gives up after ``limit``."""

    kind, label = "decay", "decay"

    def __init__(self, limit=10_000):
        self.calls, self.limit = 0, limit

    def init(self, start):
        return np.ones(2)

    def step(self, x, h):
        self.calls += 1
        assert self.calls < self.limit, "the controller never made a step"
        if h > 1.0:
            nan = np.full_like(x, np.nan)
            return nan, (nan, x, nan)
        euler = x * (1.0 - h)
        return euler, (euler - x * (1.0 - h + h * h / 2), x, euler)

    def accept(self, x, clock):
        return x, False

    def observe(self, x, clock):
        from meanfield.loop import Snapshot

        return Snapshot(risk=float(x[0]))

    def checkpoint(self, x, snapshot):
        return {"x": x}

    def where(self, clock):
        return f"t = {clock.t:g}"

    def info(self, x):
        return {}


def _run_blow_up(rule, dt, t_max):
    from meanfield.controllers import ErrorControl
    from meanfield.loop import run_loop
    from meanfield.saving import SaveAt
    from meanfield.trajectory import MemoryRecorder

    return run_loop(rule, ErrorControl(dt, error_order=1, rtol=1e-6, atol=1e-12), SaveAt(every=1000), t_max,
                    MemoryRecorder(np.ones(1)))


def test_a_nan_error_estimate_shrinks_the_step():
    """A first step so large that the state blows up (NaN error norm) is rejected and cut, until steps are kept:
    before, a NaN norm grew the rejected step (×5), which the save grid then capped, and the loop retried it forever.
    The kept steps then follow ẋ = −x: x(5) = e^{−5} to Euler's global error at rtol = 1e-6 (steps h ≈ 1.4e-3,
    relative error ≈ t·h/2 ≈ 0.4 %; 1 % allowed)."""
    rule = _BlowUp()
    traj = _run_blow_up(rule, dt=1e3, t_max=5.0)
    assert traj.status == "completed" and traj.times[-1] == 5.0
    np.testing.assert_allclose(traj.risk[-1], np.exp(-5.0), rtol=0.01)


@pytest.mark.parametrize("error", [np.nan, np.inf, 2.0])
def test_a_step_that_cannot_be_made_stops_the_run_with_one_line(error):
    """An error norm that stays NaN, infinite or above 1 whatever the step: the run stops as diverged (the step
    below 1e-12 · t_max, or 50 rejections in a row) with one line saying so, instead of looping."""
    from meanfield.controllers import ErrorControl
    from meanfield.loop import Clock

    control, clock, y = ErrorControl(1.0, error_order=4, rtol=1e-6, atol=1e-9), Clock(h=1.0), np.ones(3)
    e = np.full(3, error * 1e-6 if np.isfinite(error) else error)  # norm 2.0 for the finite case (rtol = 1e-6)
    with pytest.raises(mf.controllers.Diverged, match="too stiff or diverges") as info:
        for _ in range(60):
            h = clock.h
            assert not control.update(clock, h, (e, y, y), t_max=1.0)
            assert clock.h < h and clock.t == 0.0  # rejected, and shrunk
    assert "\n" not in str(info.value)


def test_a_flow_whose_first_step_is_far_too_large_returns():
    """The issue's case, smaller: dopri5 from dt = t_max = 1000 on a teacher flow (the first trial steps overflow).
    It returns, and matches the run from a sensible dt = 0.1 at the tolerance of both (rtol = atol = 1e-8: they
    differ by ~1e-8, 1e-6 allows for error accumulation over ~500 steps)."""
    import warnings

    rng = np.random.default_rng(20)
    U = rng.standard_normal((2, 5))
    problem = mf.Problem(mf.TeacherNetwork([1.0, 0.8], U / np.linalg.norm(U, axis=1, keepdims=True)), mf.Gaussian(5))
    mu0 = mf.init.sign_sphere(16, 5, seed=4)
    options = dict(t_max=1000.0, solver="dopri5", backend="numpy", rtol=1e-8, atol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflowing trial steps warn of nothing
        big = mf.simulate(problem, mu0, dt=1000.0, **options)
    small = mf.simulate(problem, mu0, dt=0.1, **options)
    assert big.status == "completed" and big.times[-1] == 1000.0
    np.testing.assert_allclose(big.final.state(), small.final.state(), atol=1e-6)
