"""The driver and solvers: energy identity, monotone decrease, convergence order, divergence, saving."""

import warnings

import numpy as np
import pytest
from conftest import interrupt_at_save

import meanfield as mf


def test_energy_identity_along_a_run(small_problem):
    mu0 = mf.init.sign_sphere(32, 5, seed=1)
    h = 0.005
    traj = mf.simulate(small_problem, mu0, t_max=2.0, dt=h, solver="rk4", save_every=1)
    # dF/dt by central differences (error O(h²)) against −∫(ψ² + a²|∇ψ|²) dμ at the saved states.
    dF = (traj.risk[2:] - traj.risk[:-2]) / (2 * h)
    diss = np.array([small_problem.dissipation(traj.measure(i)) for i in range(1, len(traj) - 1)])
    np.testing.assert_allclose(dF, -diss, rtol=1e-4)


@pytest.mark.parametrize("target", ["teacher", "cubic"])
def test_risk_decreases_monotonically_for_small_steps(small_problem, target):
    problem = small_problem if target == "teacher" else mf.Problem(mf.CubicTarget(np.ones(5)), mf.Sphere(5))
    traj = mf.simulate(problem, mf.init.gaussian(64, 5, seed=2), t_max=5.0, dt=0.01, solver="euler", save_every=1)
    assert np.all(np.diff(traj.risk) < 0)


@pytest.mark.parametrize("solver,order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_integrator_order(small_problem, solver, order):
    mu0 = mf.init.sign_sphere(16, 5, seed=3)
    ref = mf.simulate(small_problem, mu0, t_max=1.0, dt=0.1 / 128, solver="rk4", save_every=10**6).final.state()
    errors = [np.abs(mf.simulate(small_problem, mu0, t_max=1.0, dt=dt, solver=solver, save_every=10**6)
                     .final.state() - ref).max() for dt in (0.1, 0.05, 0.025)]
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(rates - order) < 0.25), (errors, rates)


@pytest.mark.parametrize("solver", ["bosh3", "dopri5"])
def test_adaptive_solvers_meet_their_tolerance(small_problem, solver):
    mu0 = mf.init.sign_sphere(16, 5, seed=4)
    ref = mf.simulate(small_problem, mu0, t_max=3.0, dt=0.001, solver="rk4", save_every=1000)
    traj = mf.simulate(small_problem, mu0, t_max=3.0, dt=0.1, solver=solver, save_every=10, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(traj.times, ref.times, atol=1e-12)
    # rtol = 1e-8 per step over ~100 steps, against an RK4 reference whose own error at dt = 1e-3 is ~1e-12.
    np.testing.assert_allclose(traj.final.state(), ref.final.state(), atol=1e-6)
    assert traj.info["n_steps"] < 3000


def test_student_teacher_risk_drops_two_orders_of_magnitude():
    rng = np.random.default_rng(5)
    U = rng.standard_normal((3, 20))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    problem = mf.Problem(mf.TeacherNetwork(np.ones(3), U), mf.Gaussian(20))
    traj = mf.simulate(problem, mf.init.sign_sphere(512, 20, seed=0), t_max=40.0, dt=0.1, solver="heun",
                       save_every=50)
    assert traj.status == "completed"
    assert traj.risk[-1] < 1e-2 * traj.risk[0], traj.risk
    # Independent check of the final risk: Monte Carlo on fresh inputs.
    x = problem.inputs.sample(400_000, 9)
    mc = 0.5 * np.mean((problem.predict(traj.final, x) - problem.target(x)) ** 2)
    # 4e5 samples of ½(f − f*)², whose relative standard deviation is ≈ 5 here: SE ≈ 0.8 %, 5 % ≈ 6 SE.
    np.testing.assert_allclose(traj.risk[-1], mc, rtol=0.05)


def test_divergent_step_raises_with_the_trajectory_so_far(small_problem):
    mu0 = mf.init.sign_sphere(8, 5, seed=6, a_scale=30.0, radius=30.0)
    with pytest.raises(mf.FlowDivergedError, match="reduce dt") as err:
        mf.simulate(small_problem, mu0, t_max=100.0, dt=1.0, solver="euler", save_every=1)
    traj = err.value.trajectory
    assert traj.status == "diverged" and len(traj) >= 1 and np.all(np.isfinite(traj.risk))


def test_saving_and_observables(small_problem):
    mu0 = mf.init.sign_sphere(8, 5, seed=7)
    traj = mf.simulate(small_problem, mu0, t_max=1.0, dt=0.1, save_every=3,
                       observables={"mass": lambda mu: np.mean(np.abs(mu.a) * np.linalg.norm(mu.b, axis=1)),
                                    "w": lambda mu: mu.weights * mu.a @ mu.b})
    np.testing.assert_allclose(traj.times, [0.0, 0.3, 0.6, 0.9, 1.0])
    assert traj.a.shape == (5, 8) and traj.b.shape == (5, 8, 5)
    assert traj.observables["mass"].shape == (5,) and traj.observables["w"].shape == (5, 5)
    np.testing.assert_array_equal(traj.a[-1], traj.final.a)
    np.testing.assert_allclose(traj.risk, [small_problem.risk(traj.measure(i)) for i in range(5)], rtol=1e-13)
    lean = mf.simulate(small_problem, mu0, t_max=1.0, dt=0.1, save_every=mf.SaveAt(every=3, particles=False))
    assert lean.a is None
    np.testing.assert_array_equal(lean.final.b, traj.final.b)


def test_keyboard_interrupt_returns_what_was_saved(small_problem):
    stop_at_third_save = interrupt_at_save(3)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        traj = mf.simulate(small_problem, mf.init.sign_sphere(8, 5, seed=8), t_max=10.0, dt=0.1, save_every=1,
                           observables={"stop": stop_at_third_save})
    assert traj.status == "interrupted" and len(traj) == 2


def test_driver_validation(small_problem):
    mu0 = mf.init.sign_sphere(8, 5, seed=9)
    with pytest.raises(ValueError, match="dt must be finite and > 0"):
        mf.simulate(small_problem, mu0, t_max=1.0, dt=0.0)
    with pytest.raises(ValueError, match="t_max"):
        mf.simulate(small_problem, mu0, t_max=-1.0, dt=0.1)
    with pytest.raises(ValueError, match="unknown solver"):
        mf.simulate(small_problem, mu0, t_max=1.0, dt=0.1, solver="rk45")
    with pytest.raises(ValueError, match="save_every must be >= 1"):
        mf.simulate(small_problem, mu0, t_max=1.0, dt=0.1, save_every=0)
    with pytest.raises(ValueError, match="unknown backend"):
        mf.simulate(small_problem, mu0, t_max=1.0, dt=0.1, backend="jax")


@pytest.mark.parametrize("solver", ["heun", "dopri5"])
def test_stop_risk_ends_the_run_at_the_first_state_below(small_problem, solver):
    mu0 = mf.init.sign_sphere(16, 5, seed=10)
    full = mf.simulate(small_problem, mu0, t_max=20.0, dt=0.05, solver="heun", save_every=1)
    goal = 0.5 * (full.risk[0] + full.risk[-1]) * 0.1
    traj = mf.simulate(small_problem, mu0, t_max=20.0, dt=0.05, solver=solver, save_every=1000, stop_risk=goal)
    assert traj.status == "converged" and traj.risk[-1] <= goal and traj.times[-1] < 20.0
    # The run stopped where the risk first crossed the goal (same crossing time as the full run, up to a step).
    t_cross = full.times[np.argmax(full.risk <= goal)]
    assert abs(traj.times[-1] - t_cross) <= 0.5


def test_a_risk_rise_above_round_off_is_warned_once_and_a_rise_above_one_percent_diverges(small_problem):
    """The flow's checks on the risk of each accepted state (ParticleFlow.accept), on states moved up the risk's
    gradient by a chosen amount ε: a rise of ~1e-12 relative is round-off and passes silently; one of ~1e-4
    warns (RiskIncreaseWarning) once, the run's info keeps the first, and a second such rise is not warned again;
    one of ~3 % stops the run as diverged."""
    from meanfield.controllers import Diverged
    from meanfield.flow import FlowState, ParticleFlow, RiskIncreaseWarning
    from meanfield.loop import Clock

    mu0 = mf.init.sign_sphere(16, 5, seed=0)
    rule = ParticleFlow(small_problem.bind("numpy"), mu0, mf.get_solver("euler"))
    state = rule.init(None)
    risk0 = state.evaluation.risk
    uphill = -rule.velocity(state.y, state.evaluation)            # dF/dε = ∫|v|² dμ > 0 along −v
    slope = float(mu0.weights @ (uphill**2).sum(axis=1))

    def rise_to(relative, step):
        """A candidate ε·(−v) away from the start: its risk exceeds the last accepted one by ≈ relative · risk0."""
        target = rule.previous_risk + relative * risk0
        y = state.y + ((target - risk0) / slope) * uphill        # first order in ε, enough to land in each band
        return rule.accept(FlowState(y, None), Clock(t=0.1 * step, step=step, h=0.1))

    rule.accept(state, Clock())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rise_to(1e-12, 1)                                          # below 1e-9 relative + 1e-13 of the scale
    with pytest.warns(RiskIncreaseWarning, match="the risk rose at step 2"):
        accepted, _ = rise_to(1e-4, 2)
    assert rule.previous_risk > risk0
    first = rule.info(accepted)["risk_increase"]
    assert first["step"] == 2 and first["to"] > first["from"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rise_to(1e-4, 3)                                           # warned once
    assert rule.info(accepted)["risk_increase"] == first
    with pytest.raises(Diverged, match="the risk rose from"):
        rise_to(3e-2, 4)
