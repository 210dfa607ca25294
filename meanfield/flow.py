"""The mean-field particle flow as a stepping rule (:class:`ParticleFlow`), and :func:`simulate`, which runs it."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ._defaults import call_defaults, field_defaults
from ._validation import check_optional_finite, check_positive
from .background import BackgroundRecorder
from .controllers import ConstantStep, Diverged, ErrorControl
from .loop import Snapshot, run_loop
from .measure import ParticleMeasure
from .observables import run_observables
from .problem import Objective, Problem
from .runguard import FlowDivergedError
from .saving import SaveAt
from .solvers import RungeKutta, get_solver
from .trajectory import Trajectory

__all__ = ["simulate", "ParticleFlow", "FlowDivergedError", "RiskIncreaseWarning"]

#: Configuration entries that may change when a run is resumed (everything else must match the file);
#: "user" is the informational copy of the caller's own configuration (the physics is compared key by key).
RESUMABLE_CHANGES = ("t_max", "backend", "stop_risk", "progress", "user")


#: A rise of the risk by less than this many unit round-offs (of the backend's floating type) times the risk scale is
#: round-off of the risk assembly, not a numerical error of the step (450 · 2.2e-16 ≈ 1e-13 in fp64).
ROUNDOFF_ULPS = 450


def unit_roundoff(backend) -> float:
    """The unit round-off (machine epsilon) of the floating type a backend computes in (its ``dtype``: numpy's or
    torch's; float64 for a backend without one).

    Examples
    --------
    >>> from meanfield.kernels import get_backend
    >>> unit_roundoff(get_backend("numpy")), unit_roundoff(get_backend("torch", dtype="float32"))
    (2.220446049250313e-16, 1.1920928955078125e-07)
    """
    itemsize = getattr(getattr(backend, "dtype", None), "itemsize", 8)
    return float(np.finfo(f"float{8 * itemsize}").eps)


class RiskIncreaseWarning(UserWarning):
    """The risk of a flow rose between two steps by more than round-off (a numerical error of the solver).

    Examples
    --------
    >>> import warnings
    >>> from meanfield.flow import RiskIncreaseWarning
    >>> issubclass(RiskIncreaseWarning, UserWarning)
    True
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", RiskIncreaseWarning)   # make a rising risk stop a script
    """


@dataclass(frozen=True)
class FlowState:
    """The particles [a | b] as a backend array, and the field evaluated there (ψ, ∇ψ, the risk)."""

    y: Any
    evaluation: Any


class ParticleFlow:
    r"""The stepping rule of the flow ȧ_j = −ψ_μ(b_j), ḃ_j = −a_j ∇ψ_μ(b_j): one explicit Runge–Kutta step of the
    particle ODE on a problem bound to a backend, with the flow's checks.

    The risk of the flow cannot increase: a rise above round-off (450 unit round-offs of the backend's precision times
    the risk scale, the accuracy of the risk assembly: 1e-13 in fp64, 5e-5 in fp32; plus 1e-9 relative) is a
    numerical error of the step, warned once (:class:`RiskIncreaseWarning`);
    a rise by more than 1 % in one step is the scheme's instability (an accurate step changes the risk by O(dt) and
    can only err by its local error O(dt^{p+1})) and stops the run as diverged, as do a non-finite state and a risk
    above ``max_risk_factor`` · max(F(μ0), ½ E f*²). ``stop_risk`` ends the run (converged) at the first state at or
    below it.

    Parameters
    ----------
    bound : BoundProblem
        ``problem.bind(backend)``.
    mu0 : ParticleMeasure
        The initial particles (used when the run is not resumed).
    solver : RungeKutta
    max_risk_factor : float
    stop_risk : float, optional

    Examples
    --------
    The rule :func:`~meanfield.simulate` builds; driven by hand, one step of Heun's method:

    >>> import numpy as np, meanfield as mf
    >>> from meanfield.flow import ParticleFlow
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0, 0.0]]), mf.Gaussian(3))
    >>> mu0 = mf.init.sign_sphere(8, 3, seed=0)
    >>> rule = ParticleFlow(problem.bind("numpy"), mu0, mf.get_solver("heun"))
    >>> from meanfield.loop import Clock
    >>> state = rule.init(None)
    >>> candidate, error = rule.step(state, 0.01)
    >>> state, stop = rule.accept(candidate, Clock(t=0.01, step=1, h=0.01))
    >>> bool(rule.observe(state, Clock(t=0.01)).risk < problem.risk(mu0)), stop
    (True, False)
    """

    kind = "particle_flow"
    #: Whether the risk may only decrease along this rule's steps (deterministic gradient flows); rules with noise or
    #: jumps set it False and keep only the divergence checks.
    monotone = True

    def __init__(self, bound, mu0: ParticleMeasure, solver: RungeKutta, max_risk_factor: float = 1e6,
                 stop_risk: float | None = None):
        self.bound, self.backend, self.mu0, self.solver = bound, bound.backend, mu0, solver
        self.weights = np.asarray(mu0.weights, dtype=np.float64)
        self.weights_on_backend = self.backend.asarray(self.weights)
        self.max_risk_factor, self.stop_risk = max_risk_factor, stop_risk
        self.target_energy, self.measure_type = bound.problem.risk_scale, bound.problem.measure_type
        self.label = f"simulate[{solver.name},{self.backend.name}]"
        self.n_evaluations, self.max_risk, self.risk_scale = 0, math.inf, self.target_energy
        self.previous_risk: float | None = None
        self.unit_roundoff = unit_roundoff(self.backend)
        self.risk_increase: dict | None = None

    def _evaluate(self, y):
        self.n_evaluations += 1
        return self.bound.evaluate(y, self.weights_on_backend)

    def init(self, start) -> FlowState:
        if start is None:
            y = self.backend.asarray(self.mu0.state())
            ev = self._evaluate(y)
            self.max_risk = self.max_risk_factor * max(ev.risk, self.target_energy, np.finfo(float).tiny)
            self.risk_scale = max(ev.risk, self.target_energy)
            return FlowState(y, ev)
        arrays = start.arrays
        y = self.backend.asarray(self.measure_type.from_arrays(arrays).state())
        self.n_evaluations, self.max_risk = int(arrays["n_evaluations"]), float(arrays["max_risk"])
        self.risk_scale = max(self.max_risk / self.max_risk_factor, self.target_energy)
        return FlowState(y, self._evaluate(y))

    def velocity(self, y, evaluation):
        """The particles' velocity at the state y with its evaluation: −∇_θ F'(μ)(θ_j) here (the Wasserstein
        flow); other dynamics of particles override it."""
        return self.bound.velocity_from(y, evaluation)

    def step(self, state: FlowState, h: float):
        k1 = self.velocity(state.y, state.evaluation)
        # A step too large overflows: the adaptive controller rejects it, and ``accept`` stops a fixed-step run with
        # its own message, so numpy's warnings would only repeat them.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            y_next, error = self.solver.step(lambda y: self.velocity(y, self._evaluate(y)), state.y, h, k1)
        if error is not None:
            to_numpy = self.backend.to_numpy
            error = (to_numpy(error), to_numpy(state.y), to_numpy(y_next))
        return FlowState(y_next, None), error

    def accept(self, candidate, clock) -> tuple[FlowState, bool]:
        state = candidate if candidate.evaluation is not None else FlowState(candidate.y, self._evaluate(candidate.y))
        risk = state.evaluation.risk
        finite = math.isfinite(risk) and self.backend.all_finite(state.y)
        where = f"at step {clock.step} (t = {clock.t:.6g}, dt = {clock.h:.3g})"
        if not finite or risk > self.max_risk:
            what = "the state became non-finite" if not finite else f"the risk blew up to {risk:.3g}"
            raise Diverged(f"flow diverged at t = {clock.t:.6g}: {what} (step size dt = {clock.h:.3g}); "
                           "reduce dt or use an adaptive solver")
        previous, self.previous_risk = self.previous_risk, risk
        tolerance = ROUNDOFF_ULPS * self.unit_roundoff * self.risk_scale
        if self.monotone and previous is not None and risk > previous * (1 + 1e-9) + tolerance:
            if risk > previous * 1.01 + tolerance:
                raise Diverged(f"flow diverged {where}: the risk rose from {previous:.6g} to {risk:.6g}, which the "
                               "flow's risk cannot do; the step is unstable: reduce dt or use an adaptive solver")
            if self.risk_increase is None:
                self.risk_increase = {"step": clock.step, "t": clock.t, "from": previous, "to": risk}
                warnings.warn(f"the risk rose {where} from {previous:.10g} to {risk:.10g} (the flow's risk cannot "
                              "increase): a numerical error larger than round-off; consider a smaller dt",
                              RiskIncreaseWarning, stacklevel=4)
        return state, self.stop_risk is not None and risk <= self.stop_risk

    def measure(self, state: FlowState) -> ParticleMeasure:
        return self.measure_type.from_state(self.backend.to_numpy(state.y), self.weights)

    def observe(self, state: FlowState, clock) -> Snapshot:
        return Snapshot(state.evaluation.risk, self.measure(state))

    def checkpoint(self, state: FlowState, snapshot: Snapshot) -> dict:
        return dict(snapshot.measure.arrays(), n_evaluations=self.n_evaluations, max_risk=self.max_risk)

    def where(self, clock) -> str:
        return f"simulation at t = {clock.t:.6g}"

    def info(self, state) -> dict:
        out = {"n_evaluations": self.n_evaluations}
        if self.risk_increase is not None:
            out["risk_increase"] = self.risk_increase
        return out


def simulate(problem: Problem, mu0: ParticleMeasure, t_max: float, dt: float, solver="heun",
             save_every: int | SaveAt = 10, observables: Mapping[str, Callable] | None = None,
             backend="auto", backend_options: dict | None = None, rtol: float = 1e-6, atol: float = 1e-9,
             max_risk_factor: float = 1e6, stop_risk: float | None = None, path=None, overwrite: bool = False,
             resume: bool = False, config: dict | None = None, progress: bool = False,
             alignment: bool = True, dynamics=None, background_saves: bool | None = None) -> Trajectory:
    r"""Integrate the mean-field particle flow ȧ_j = −ψ_μ(b_j), ḃ_j = −a_j ∇ψ_μ(b_j) from μ0 up to t_max.

    .. math::

        \dot a_j = -\psi_\mu(b_j), \qquad \dot b_j = -a_j \nabla\psi_\mu(b_j), \qquad
        \psi_\mu(b) = \sum_k w_k a_k K(b, b_k) - F^*(b),

    the Wasserstein gradient flow of the population risk restricted to particles (Chizat & Bach 2018; Mei,
    Montanari & Nguyen 2018); along it dF/dt = −Σ_j w_j (ψ_μ(b_j)² + a_j² |∇ψ_μ(b_j)|²).

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
    solver : {"euler", "heun", "rk4", "bosh3", "dopri5"} or RungeKutta
        Fixed-step "euler", "heun", "rk4", or adaptive "bosh3", "dopri5" (with ``rtol``, ``atol``).
    save_every : int or SaveAt
        Save policy (see :class:`SaveAt`).
    observables : dict of name -> callable(ParticleMeasure) -> float or array, optional
        Recorded at every save, in ``trajectory.observables[name]``.
    backend : {"auto", "numpy", "numba", "torch", "triton"} or Backend
        "auto" (default: numba when it imports, else numpy), "numpy" (the reference), "numba", "torch" (CPU or
        CUDA) or "triton" (the ReLU family's field as one fused kernel; interpreted on a CPU), or any name given to
        :func:`~meanfield.kernels.register_backend`.
    backend_options : dict, optional
        Keyword arguments of the backend's constructor, e.g. ``{"device": "cuda", "dtype": "float32"}``.
    rtol, atol : float
        Relative and absolute tolerances of the adaptive solvers' step control (ignored by fixed-step solvers).
    max_risk_factor : float
        The run stops with :class:`FlowDivergedError` when the risk exceeds this factor times
        max(F(μ0), ½ E f*²), or when the state becomes non-finite.
    stop_risk : float, optional
        Stop (and save) as soon as the risk is <= ``stop_risk``; the status is then "converged".
    path : path-like, optional
        Stream the run to this HDF5 file (see :mod:`meanfield.io`); the returned trajectory is then backed by
        the file. An existing file is an error unless ``overwrite`` or ``resume``.
    overwrite : bool
        Replace an existing file at ``path`` by a new run.
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
    dynamics : None or a dynamics of :mod:`meanfield.dynamics`
        The Wasserstein flow above (None), or :class:`~meanfield.dynamics.Conic` (Wasserstein–Fisher–Rao),
        :class:`~meanfield.dynamics.BirthDeath` or :class:`~meanfield.dynamics.Langevin`; it is part of the run's
        configuration (a resume must name the same one).
    background_saves : bool, optional
        Write the saves on a background thread while the run goes on
        (:class:`~meanfield.background.BackgroundRecorder`; the file is the same); by default on for a run to a file
        on a CUDA backend, so that writing does not stall the GPU, off otherwise.

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
    if not isinstance(problem, Objective):
        raise TypeError(f"problem must be a meanfield Problem, got {type(problem).__name__}")
    problem.check_measure(mu0)
    t_max, dt = check_positive(t_max, "t_max"), check_positive(dt, "dt")
    max_risk_factor = check_positive(max_risk_factor, "max_risk_factor")
    stop_risk = check_optional_finite(stop_risk, "stop_risk")
    rtol, atol = check_positive(rtol, "rtol"), check_positive(atol, "atol")
    rk = get_solver(solver)
    save = save_every if isinstance(save_every, SaveAt) else SaveAt(save_every)
    observables = run_observables(problem, {**save.observables, **(observables or {})}, path, resume, alignment)
    save = replace(save, observables=observables)
    controller = ErrorControl(dt, rk.error_order, rtol, atol) if rk.adaptive else ConstantStep(dt)
    if not rk.adaptive and t_max < dt:
        warnings.warn(f"t_max = {t_max:.6g} is shorter than dt = {dt:.6g}: one step of length t_max is taken",
                      stacklevel=2)

    bound = problem.bind(backend, **(backend_options or {}))
    backend_name = bound.backend.name
    run_config = {"solver": rk.name, "dt": dt, "t_max": t_max, "save_every": save.every,
                  "save_particles": save.particles, "rtol": rtol, "atol": atol, "max_risk_factor": max_risk_factor,
                  "stop_risk": stop_risk, "backend": backend_name, "observables": sorted(observables),
                  "problem": problem.spec(), "m": mu0.m, "d": mu0.d, "mu0_sha1": mu0.checksum(), "user": config or {}}
    run_config["dynamics"] = None if dynamics is None else dynamics.spec()
    # an explicit tile of the backend sets the order of the data-set sums (the problem's own is in its spec)
    run_config["tile_elements"] = (backend_options or {}).get("tile_elements")
    # what an entry that a file lacks stands for (files written before dynamics existed are plain flows)
    defaults = {**call_defaults(simulate), "save_particles": SaveAt.particles,
                **({} if dynamics is None else field_defaults(type(dynamics), "dynamics."))}
    if dynamics is None:
        rule = ParticleFlow(bound, mu0, rk, max_risk_factor, stop_risk)
    else:
        rule = dynamics.rule(bound, mu0, rk, max_risk_factor, stop_risk)

    from .io import recorder_for

    recorder, start = recorder_for(path, ParticleFlow.kind, run_config, problem.spec(), problem.arrays(),
                                   mu0.weights, overwrite=overwrite, resume=resume, resumable=RESUMABLE_CHANGES,
                                   defaults=defaults, t_end=t_max)
    if background_saves is None:
        device = getattr(bound.backend, "device", None)
        background_saves = path is not None and getattr(device, "type", None) == "cuda"
    if background_saves:
        recorder = BackgroundRecorder(recorder)
    info = {"solver": rk.name, "dt": dt, "t_max": t_max, "backend": backend_name, "save_every": save.every,
            "dynamics": "wasserstein" if dynamics is None else dynamics.spec()["kind"]}
    return run_loop(rule, controller, save, t_max, recorder, start, info=info, progress=progress,
                    resume_hint="simulate(..., resume=True)")
