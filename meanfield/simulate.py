"""The driver: ties a problem, an initial measure, a solver and a save policy into a :class:`Trajectory`."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ._validation import check_positive, check_positive_int
from .measure import ParticleMeasure
from .problem import Problem
from .solvers import error_norm, get_solver
from .trajectory import MemoryRecorder, Trajectory

__all__ = ["simulate", "SaveAt", "FlowDivergedError"]


class _Converged(Exception):
    """Internal: the risk reached ``stop_risk`` inside the adaptive loop."""


class FlowDivergedError(RuntimeError):
    """The state became non-finite or the risk blew up; ``.trajectory`` holds what was saved until then."""

    def __init__(self, message: str, trajectory: Trajectory):
        super().__init__(message)
        self.trajectory = trajectory


@dataclass(frozen=True)
class SaveAt:
    """What to save: every ``every`` steps (fixed-step solvers), or on the time grid k · every · dt
    (adaptive solvers), always including t = 0 and t = t_max. ``particles=False`` keeps only the
    scalar series (time, risk, observables) and the final state."""

    every: int = 10
    particles: bool = True

    def __post_init__(self):
        check_positive_int(self.every, "save_every")


@dataclass
class _Run:
    problem: Problem
    bound: object
    weights: object
    save: SaveAt
    observables: Mapping[str, Callable]
    recorder: MemoryRecorder
    max_risk: float = math.inf
    n_evaluations: int = 0
    info: dict = field(default_factory=dict)

    def evaluate(self, state):
        self.n_evaluations += 1
        return self.bound.evaluate(state, self.weights)

    def record(self, t, state, risk):
        mu = ParticleMeasure.from_state(self.bound.backend.to_numpy(state), self.recorder.weights)
        obs = {name: np.asarray(fn(mu), dtype=np.float64) for name, fn in self.observables.items()}
        self.recorder.append(t, risk, mu if self.save.particles else None, obs)
        self.recorder.final = mu

    def check(self, t, state, risk, dt):
        finite = math.isfinite(risk) and self.bound.backend.all_finite(state)
        if finite and risk <= self.max_risk:
            return
        what = "the state became non-finite" if not finite else f"the risk blew up to {risk:.3g}"
        traj = self.recorder.trajectory(self.problem, status="diverged", info=self.info)
        raise FlowDivergedError(
            f"flow diverged at t = {t:.6g}: {what} (step size dt = {dt:.3g}); "
            "reduce dt or use an adaptive solver", traj)


def simulate(problem: Problem, mu0: ParticleMeasure, t_max: float, dt: float, solver="heun",
             save_every: int | SaveAt = 10, observables: Mapping[str, Callable] | None = None,
             backend="numpy", backend_options: dict | None = None, rtol: float = 1e-6, atol: float = 1e-9,
             max_risk_factor: float = 1e6, stop_risk: float | None = None, progress: bool = False) -> Trajectory:
    r"""Integrate the mean-field particle flow ȧ_j = −ψ_μ(b_j), ḃ_j = −a_j ∇ψ_μ(b_j) from μ0 up to t_max.

    Parameters
    ----------
    problem : Problem
        Target, input law and activation.
    mu0 : ParticleMeasure
        Initial particles.
    t_max : float
        Final (mean-field) time.
    dt : float
        Step size (fixed-step solvers) or initial step and save-grid unit (adaptive solvers).
    solver : str or RungeKutta
        "euler", "heun", "rk4" (fixed step) or "bosh3", "dopri5" (adaptive, with ``rtol``, ``atol``).
    save_every : int or SaveAt
        Save policy (see :class:`SaveAt`).
    observables : dict of name -> callable(ParticleMeasure) -> float or array, optional
        Recorded at every save, in ``trajectory.observables[name]``.
    backend : str or Backend
        "numpy" (reference), "numba" or "torch"; ``backend_options`` go to its constructor.
    max_risk_factor : float
        The run stops with :class:`FlowDivergedError` when the risk exceeds this factor times
        max(F(μ0), ½ E f*²), or when the state becomes non-finite.
    stop_risk : float, optional
        Stop (and save) as soon as the risk is <= ``stop_risk``; the status is then "converged".
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    Trajectory
        ``times``, ``risk``, ``a``, ``b``, ``final``, ``observables``. A KeyboardInterrupt ends the run
        early and returns what was saved, with ``status == "interrupted"``; ``status`` is "converged" when
        ``stop_risk`` was reached, "completed" otherwise.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0, 1.0], np.eye(3)[:2]), mf.Gaussian(d=3))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(m=16, d=3, seed=0), t_max=1.0, dt=0.1)
    >>> traj.times.shape, bool(traj.risk[-1] < traj.risk[0])
    ((3,), True)
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a meanfield Problem, got {type(problem).__name__}")
    problem._check_measure(mu0)
    t_max, dt = check_positive(t_max, "t_max"), check_positive(dt, "dt")
    check_positive(max_risk_factor, "max_risk_factor")
    rk = get_solver(solver)
    save = save_every if isinstance(save_every, SaveAt) else SaveAt(save_every)
    observables = dict(observables or {})
    for name, fn in observables.items():
        if not callable(fn):
            raise TypeError(f"observable {name!r} must be callable(ParticleMeasure) -> value")

    bound = problem.bind(backend, **(backend_options or {}))
    bk = bound.backend
    run = _Run(problem, bound, bk.asarray(mu0.weights), save, observables, MemoryRecorder(mu0.weights))
    run.info.update(solver=rk.name, dt=dt, t_max=t_max, backend=bk.name, save_every=save.every)
    state = bk.asarray(mu0.state())

    def rhs(y):
        return bound.velocity_from(y, run.evaluate(y))

    start = time.perf_counter()
    ev = run.evaluate(state)
    run.max_risk = max_risk_factor * max(ev.risk, problem.target_energy, np.finfo(float).tiny)
    run.check(0.0, state, ev.risk, dt)
    run.record(0.0, state, ev.risk)
    status = "completed"
    bar = tqdm(total=t_max, disable=not progress, unit="t", desc=f"simulate[{rk.name},{bk.name}]")
    t, step = 0.0, 0
    try:
        if rk.adaptive:
            save_dt = dt * save.every
            n_saves = max(1, math.ceil(t_max / save_dt - 1e-9))
            h = dt
            for k in range(1, n_saves + 1):
                t_save = min(t_max, k * save_dt)
                while t < t_save - 1e-12 * t_max:
                    h_try = min(h, t_save - t)
                    k1 = bound.velocity_from(state, ev)
                    y_next, err = rk.step(rhs, state, h_try, k1)
                    err_n = error_norm(err, state, y_next, rtol, atol, bk.to_numpy)
                    if err_n <= 1.0:
                        state, t, step = y_next, t + h_try, step + 1
                        ev = run.evaluate(state)
                        run.check(t, state, ev.risk, h_try)
                        bar.update(h_try)
                        if stop_risk is not None and ev.risk <= stop_risk:
                            raise _Converged
                    factor = 0.9 * err_n ** (-1.0 / (rk.error_order + 1)) if err_n > 0 else 5.0
                    h = h_try * min(5.0, max(0.2, factor if math.isfinite(factor) else 0.2))
                    if h < 1e-12 * t_max:
                        traj = run.recorder.trajectory(problem, status="diverged", info=run.info)
                        raise FlowDivergedError(f"adaptive step size fell to {h:.3g} at t = {t:.6g}: "
                                                "the flow is too stiff or diverges", traj)
                run.record(t_save, state, ev.risk)
                t = t_save
        else:
            n_steps = max(1, math.ceil(t_max / dt - 1e-9))
            for step in range(1, n_steps + 1):
                h = min(dt, t_max - (step - 1) * dt)
                state, _ = rk.step(rhs, state, h, bound.velocity_from(state, ev))
                t = min(t_max, step * dt)
                ev = run.evaluate(state)
                run.check(t, state, ev.risk, dt)
                if step % save.every == 0 or step == n_steps:
                    run.record(t, state, ev.risk)
                elif stop_risk is not None and ev.risk <= stop_risk:
                    run.record(t, state, ev.risk)
                bar.update(h)
                if stop_risk is not None and ev.risk <= stop_risk:
                    status = "converged"
                    break
    except _Converged:
        status = "converged"
        run.record(t, state, ev.risk)
    except KeyboardInterrupt:
        status = "interrupted"
        warnings.warn(f"simulation interrupted at t = {t:.6g}; returning the trajectory saved so far",
                      stacklevel=2)
    finally:
        bar.close()
    run.info.update(n_steps=step, n_evaluations=run.n_evaluations, wall_time=time.perf_counter() - start)
    return run.recorder.trajectory(problem, status=status, info=run.info)
