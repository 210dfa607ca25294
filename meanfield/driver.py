"""The driver: ties a problem, an initial measure, a solver and a save policy into a :class:`Trajectory`."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ._validation import check_positive, check_positive_int
from .measure import ParticleMeasure
from .problem import Problem
from .runguard import FlowDivergedError, RunGuard
from .solvers import error_norm, get_solver
from .status import Status
from .symmetry.alignment import default_observables
from .trajectory import Trajectory, evaluate_observables

__all__ = ["simulate", "SaveAt", "FlowDivergedError", "RiskIncreaseWarning"]

#: Configuration entries that may change when a run is resumed (everything else must match the file);
#: "user" is the informational copy of the caller's own configuration (the physics is compared key by key).
RESUMABLE_CHANGES = ("t_max", "backend", "stop_risk", "progress", "user")


class RiskIncreaseWarning(UserWarning):
    """The risk of a flow rose between two steps by more than round-off (a numerical error of the solver)."""


class _Converged(Exception):
    """Internal: the risk reached ``stop_risk``."""


class _AlreadySaved(Exception):
    """Internal: a resumed run starts at or below ``stop_risk`` (its last save is the converged state)."""


@dataclass(frozen=True)
class SaveAt:
    """What to save: every ``every`` steps (fixed-step solvers), or on the time grid k · every · dt
    (adaptive solvers), always including t = 0 and t = t_max. ``particles=False`` keeps only the
    scalar series (time, risk, observables) and the final state."""

    every: int = 10
    particles: bool = True

    def __post_init__(self):
        check_positive_int(self.every, "save_every")


class _Run:
    """Mutable state of one integration: evaluation counter, divergence check, saving."""

    def __init__(self, problem, bound, weights, save, observables, recorder, info):
        self.problem, self.bound, self.weights, self.save = problem, bound, weights, save
        self.observables, self.recorder, self.info = observables, recorder, info
        self.max_risk = math.inf
        self.previous_risk, self.risk_scale = None, problem.target_energy
        self.n_evaluations = 0
        self.started = time.perf_counter()
        self.wall_before = 0.0

    def evaluate(self, state):
        self.n_evaluations += 1
        return self.bound.evaluate(state, self.weights)

    def wall_time(self) -> float:
        return self.wall_before + time.perf_counter() - self.started

    def record(self, t, state, risk, step, h):
        state_np = self.bound.backend.to_numpy(state)
        mu = ParticleMeasure.from_state(state_np, self.recorder.weights)
        obs = evaluate_observables(self.observables, mu)
        self.recorder.append(t, risk, mu, obs, particles=self.save.particles)
        self.recorder.checkpoint(state_np, {"t": t, "step": step, "h": h, "n_evaluations": self.n_evaluations,
                                            "wall_time": self.wall_time(), "max_risk": self.max_risk})
        self.recorder.final = mu

    def finish(self, status):
        self.info.update(n_evaluations=self.n_evaluations, wall_time=self.wall_time())
        return self.recorder.trajectory(self.problem, status=status, info=self.info)

    def check(self, t, state, risk, dt, step=0):
        finite = math.isfinite(risk) and self.bound.backend.all_finite(state)
        if finite and risk <= self.max_risk:
            self._check_decrease(t, risk, dt, step)
            return
        what = "the state became non-finite" if not finite else f"the risk blew up to {risk:.3g}"
        raise FlowDivergedError(f"flow diverged at t = {t:.6g}: {what} (step size dt = {dt:.3g}); "
                                "reduce dt or use an adaptive solver", self.finish(Status.DIVERGED))

    def _check_decrease(self, t, risk, dt, step):
        """The flow's risk cannot increase. A rise above round-off (1e-13 of the risk scale, the accuracy of the risk
        assembly, plus 1e-9 relative) is a numerical error of the step: warned once, with where it happened. A rise
        by more than 1 % in one step is the scheme's instability (an accurate step changes the risk by O(dt) and
        can only err by its local error O(dt^{p+1})): the run is stopped as diverged."""
        previous, self.previous_risk = self.previous_risk, risk
        if previous is None or risk <= previous * (1 + 1e-9) + 1e-13 * self.risk_scale:
            return
        where = f"at step {step} (t = {t:.6g}, dt = {dt:.3g})"
        if risk > previous * 1.01 + 1e-13 * self.risk_scale:
            raise FlowDivergedError(f"flow diverged {where}: the risk rose from {previous:.6g} to {risk:.6g}, which "
                                    "the flow's risk cannot do; the step is unstable: reduce dt or use an adaptive "
                                    "solver", self.finish(Status.DIVERGED))
        if "risk_increase" not in self.info:
            self.info["risk_increase"] = {"step": step, "t": t, "from": previous, "to": risk}
            warnings.warn(f"the risk rose {where} from {previous:.10g} to {risk:.10g} (the flow's risk cannot "
                          "increase): a numerical error larger than round-off; consider a smaller dt",
                          RiskIncreaseWarning, stacklevel=3)


def simulate(problem: Problem, mu0: ParticleMeasure, t_max: float, dt: float, solver="heun",
             save_every: int | SaveAt = 10, observables: Mapping[str, Callable] | None = None,
             backend="auto", backend_options: dict | None = None, rtol: float = 1e-6, atol: float = 1e-9,
             max_risk_factor: float = 1e6, stop_risk: float | None = None, path=None, overwrite: bool = False,
             resume: bool = False, config: dict | None = None, progress: bool = False,
             alignment: bool = True) -> Trajectory:
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
        "auto" (default: numba when it imports, else numpy), "numpy" (reference), "numba" or "torch";
        ``backend_options`` go to its constructor.
    max_risk_factor : float
        The run stops with :class:`FlowDivergedError` when the risk exceeds this factor times
        max(F(μ0), ½ E f*²), or when the state becomes non-finite.
    stop_risk : float, optional
        Stop (and save) as soon as the risk is <= ``stop_risk``; the status is then "converged".
    path : path-like, optional
        Stream the run to this HDF5 file (see :mod:`meanfield.io`); the returned trajectory is then backed by
        the file. An existing file is an error unless ``overwrite`` or ``resume``.
    resume : bool
        Continue the run stored at ``path`` from its last checkpoint (a fresh run if the file does not exist).
        The result is bit-identical to an uninterrupted run; only t_max, backend and stop_risk may change. A
        converged run continues (with a lower ``stop_risk`` or a longer ``t_max``); a diverged one is refused.
    config : dict, optional
        Extra configuration stored in the file (e.g. the CLI's whole config).
    progress : bool
        Show a tqdm progress bar.
    alignment : bool
        Also record :func:`~meanfield.symmetry.alignment_observables` (angle histograms and output masses) when the
        target names a hidden subspace (teacher: span(U); multi-index: Q; linear: β).

    Returns
    -------
    Trajectory
        ``times``, ``risk``, ``a``, ``b``, ``final``, ``observables``. A KeyboardInterrupt ends the run
        early and returns what was saved, with ``status == "interrupted"``; ``status`` is "converged" when
        ``stop_risk`` was reached, "completed" otherwise. Any other error closes the file with status "failed"
        (keeping every snapshot saved so far) and is re-raised.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0, 1.0], np.eye(3)[:2]), mf.Gaussian(d=3))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(m=16, d=3, seed=0), t_max=1.0, dt=0.1)
    >>> traj.times.shape, bool(traj.risk[-1] < traj.risk[0])
    ((2,), True)
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a meanfield Problem, got {type(problem).__name__}")
    problem.check_measure(mu0)
    t_max, dt = check_positive(t_max, "t_max"), check_positive(dt, "dt")
    check_positive(max_risk_factor, "max_risk_factor")
    rk = get_solver(solver)
    save = save_every if isinstance(save_every, SaveAt) else SaveAt(save_every)
    observables = default_observables(problem, observables, path, resume, alignment)
    for name, fn in observables.items():
        if not callable(fn):
            raise TypeError(f"observable {name!r} must be callable(ParticleMeasure) -> value")

    bound = problem.bind(backend, **(backend_options or {}))
    bk = bound.backend
    info = {"solver": rk.name, "dt": dt, "t_max": t_max, "backend": bk.name, "save_every": save.every}
    run_config = {"solver": rk.name, "dt": dt, "t_max": t_max, "save_every": save.every,
                  "save_particles": save.particles, "rtol": rtol, "atol": atol, "max_risk_factor": max_risk_factor,
                  "stop_risk": stop_risk, "backend": bk.name, "observables": sorted(observables),
                  "problem": problem.spec(), "m": mu0.m, "d": mu0.d,
                  "mu0_sha1": mu0.checksum(),
                  "user": config or {}}

    from .io import recorder_for

    recorder, start = recorder_for(path, "particle_flow", run_config, problem, mu0.weights, overwrite=overwrite,
                                   resume=resume, resumable=RESUMABLE_CHANGES)
    run = _Run(problem, bound, bk.asarray(mu0.weights), save, observables, recorder, info)
    if start is None:
        state, t, step, h, k0 = bk.asarray(mu0.state()), 0.0, 0, dt, 1
        ev = run.evaluate(state)
        run.max_risk = max_risk_factor * max(ev.risk, problem.target_energy, np.finfo(float).tiny)
        run.risk_scale = max(ev.risk, problem.target_energy)
        run.record(0.0, state, ev.risk, 0, dt)  # first, so that a run diverged at once still has its file
        run.check(0.0, state, ev.risk, dt)
    else:
        state, t, step, h, k0 = bk.asarray(start["state"]), start["t"], start["step"], start["h"], start["n_saved"]
        run.n_evaluations, run.wall_before, run.max_risk = int(start["n_evaluations"]), start["wall_time"], \
            start["max_risk"]
        ev = run.evaluate(state)
        run.risk_scale = max(run.max_risk / max_risk_factor, problem.target_energy)
    run.previous_risk = ev.risk
    if not rk.adaptive and t_max < dt:
        warnings.warn(f"t_max = {t_max:.6g} is shorter than dt = {dt:.6g}: one step of length t_max is taken",
                      stacklevel=2)

    def rhs(y):
        return bound.velocity_from(y, run.evaluate(y))

    converged = False
    bar = tqdm(total=t_max, initial=t, disable=not progress, desc=f"simulate[{rk.name},{bk.name}]",
               bar_format="{l_bar}{bar}| t = {n:.4g}/{total:.4g} [{elapsed}<{remaining}]")
    with RunGuard(run.recorder, info, bar, lambda: f"simulation at t = {t:.6g}",
                  "simulate(..., resume=True)") as guard:
        try:
            if stop_risk is not None and ev.risk <= stop_risk:
                if start is not None:  # a resumed converged run: its last save is this state already
                    converged = True
                    raise _AlreadySaved
                raise _Converged
            if rk.adaptive:
                save_dt = dt * save.every
                n_saves = max(1, math.ceil(t_max / save_dt - 1e-9))
                for k in range(k0, n_saves + 1):
                    t_save = min(t_max, k * save_dt)
                    while t < t_save - 1e-12 * t_max:
                        h_try = min(h, t_save - t)
                        y_next, err = rk.step(rhs, state, h_try, bound.velocity_from(state, ev))
                        err_n = error_norm(err, state, y_next, rtol, atol, bk.to_numpy)
                        if err_n <= 1.0:
                            state, t, step = y_next, t + h_try, step + 1
                            ev = run.evaluate(state)
                            run.check(t, state, ev.risk, h_try, step)
                            guard.step_done(t)
                        factor = 0.9 * err_n ** (-1.0 / (rk.error_order + 1)) if err_n > 0 else 5.0
                        h = h_try * min(5.0, max(0.2, factor if math.isfinite(factor) else 0.2))
                        if h < 1e-12 * t_max:
                            raise FlowDivergedError(f"adaptive step size fell to {h:.3g} at t = {t:.6g}: the flow is "
                                                    "too stiff or diverges", run.finish(Status.DIVERGED))
                        if stop_risk is not None and ev.risk <= stop_risk:
                            raise _Converged
                    t = t_save
                    run.record(t, state, ev.risk, step, h)
            else:
                first_step = step + 1
                n_steps = max(1, math.ceil(t_max / dt - 1e-9))
                # Full steps of exactly dt whenever t_max is a multiple of dt (so that a run extended by resume
                # takes the same steps as a longer uninterrupted one); otherwise the last step is shortened.
                last = dt if abs(n_steps * dt - t_max) <= 1e-9 * t_max else t_max - (n_steps - 1) * dt
                for step in range(first_step, n_steps + 1):
                    h_step = dt if step < n_steps else last
                    state, _ = rk.step(rhs, state, h_step, bound.velocity_from(state, ev))
                    t = min(t_max, step * dt)
                    ev = run.evaluate(state)
                    run.check(t, state, ev.risk, dt, step)
                    guard.step_done(t)
                    if stop_risk is not None and ev.risk <= stop_risk:
                        raise _Converged
                    if step % save.every == 0 or step == n_steps:
                        run.record(t, state, ev.risk, step, dt)
        except _Converged:
            converged = True
            run.record(t, state, ev.risk, step, h)
        except _AlreadySaved:
            pass
    status = Status.CONVERGED if converged else guard.status
    info["n_steps"] = step
    return run.finish(status)
