"""float32 runs against float64 runs of the same problem, with tolerances derived from the float32 unit round-off."""

import numpy as np
import pytest

import meanfield as mf
from meanfield.sgd import train

EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7


def test_a_float32_flow_follows_the_float64_flow(small_problem):
    problem = small_problem
    """Each fp32 velocity carries a relative error of a few ε32 (rounding of the Gram matrix, of arccos and of the
    two m-term sums, whose terms have no systematic sign). The flow is a gradient flow that contracts towards its
    minimisers, so over t = 2 (40 Heun steps) these errors add up without amplification: a few ε32 per unit time
    (measured: 2.8e-7 at t = 1, 4.0e-7 at t = 2, 5.5e-7 at t = 4). The tolerance 20 ε32 = 2.4e-6 holds that with a
    margin, and fails on what would be a bug: fp16 anywhere (≥ 1e-3), or an fp32 arccos near θ = 0 that loses half
    the digits (~3e-4)."""
    mu0 = mf.init.sign_sphere(64, 5, seed=1)
    f64 = mf.simulate(problem, mu0, t_max=2.0, dt=0.05, backend="numpy")
    f32 = mf.simulate(problem, mu0, t_max=2.0, dt=0.05, backend="torch", backend_options={"dtype": "float32"})
    scale = np.abs(f64.final.state()).max()
    assert np.abs(f32.final.state() - f64.final.state()).max() <= 20 * EPS32 * scale
    # The risk is a sum of m² fp32 kernel terms: relative error a few ε32 of the initial risk.
    np.testing.assert_allclose(f32.risk, f64.risk, rtol=0, atol=20 * EPS32 * f64.risk[0])
    assert f32.risk[-1] < 0.5 * f32.risk[0]


def test_a_float32_sgd_run_follows_the_float64_run(small_problem):
    problem = small_problem
    """Same seed, same samples (drawn in fp64, then rounded): the fp32 run differs by the rounding of the inputs and
    of each step's products, a few ε32 per step, again without amplification over 40 contracting steps (measured
    2e-7 after 20 steps, 3e-7 after 80): tolerance 20 ε32 of the largest parameter."""
    mu0 = mf.init.sign_sphere(64, 5, seed=1)
    s64 = train(problem, mu0, t_max=2.0, eta=0.05, batch_size=256, save_every=20)
    s32 = train(problem, mu0, t_max=2.0, eta=0.05, batch_size=256, save_every=20, dtype="float32")
    scale = np.abs(s64.final.state()).max()
    assert np.abs(s32.final.state() - s64.final.state()).max() <= 20 * EPS32 * scale
    # Both risks are exact population risks of the saved networks, computed in fp64 from the fp32 parameters.
    np.testing.assert_allclose(s32.risk, s64.risk, rtol=0, atol=20 * EPS32 * s64.risk[0])


def _converging_teacher_flow():
    rng = np.random.default_rng(20)
    U = rng.standard_normal((2, 5))
    problem = mf.Problem(mf.TeacherNetwork([0.5, 0.5], U / np.linalg.norm(U, axis=1, keepdims=True)), mf.Gaussian(5))
    return problem, mf.init.sign_sphere(64, 5, seed=4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_converging_flow_warns_of_no_risk_increase_at_its_own_precision(dtype):
    """Late in a converging fp32 flow (t = 650, risk ~2e-5, steps lowering it by ~1e-9), fp32 round-off of the risk
    (one ε32 of the risk scale 0.12 is 1.4e-8) makes it rise between two steps (measured: by 8.4e-10 at t = 598);
    the warning's threshold was 1e-13 of the risk scale whatever the precision, and warned. It is now 450 unit
    round-offs of the backend's type times the risk scale (1e-13 in fp64, 6e-6 here): no warning, in fp32 as in fp64
    (where the same flow never rose)."""
    import warnings

    from meanfield.flow import RiskIncreaseWarning

    problem, mu0 = _converging_teacher_flow()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RiskIncreaseWarning)
        traj = mf.simulate(problem, mu0, t_max=650.0, dt=0.1, backend="numba", backend_options={"dtype": dtype},
                           save_every=1000)
    assert traj.status == "completed" and traj.risk[-1] < 1e-3 * traj.risk[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_real_risk_increase_still_warns(dtype):
    """An Euler step backwards in time (h < 0: up the gradient) raises the risk by |h| times the dissipation to first
    order: 0.1 % of the risk, far above round-off in either precision (6e-6 of the risk scale in fp32) and below the
    1 % that stops the run as diverged. It warns in fp32 as in fp64 (a threshold scaled too far, e.g. the 1e-9
    relative term taken in units of ε32, would let it pass)."""
    from meanfield.flow import ParticleFlow, RiskIncreaseWarning
    from meanfield.loop import Clock

    problem, mu0 = _converging_teacher_flow()
    rule = ParticleFlow(problem.bind(mf.kernels.get_backend("numba", dtype=dtype)), mu0, mf.get_solver("euler"))
    state, _ = rule.accept(rule.init(None), Clock())
    risk0, dissipation = state.evaluation.risk, problem.dissipation(mu0)
    h = -1e-3 * risk0 / dissipation  # dF = −h · dissipation to first order: +0.1 %
    candidate, _ = rule.step(state, h)
    with pytest.warns(RiskIncreaseWarning, match="the risk rose"):
        rule.accept(candidate, Clock(t=0.0, step=1, h=h))
