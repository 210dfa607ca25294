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
