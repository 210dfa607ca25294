"""The one run loop: a stepping rule, a step-size controller and a save policy, tied together by :func:`run_loop`.

A stepping rule (the flow's Runge–Kutta step, an SGD step, an MLP epoch) is an object with

- ``kind`` (the file's run kind) and ``label`` (what the progress bar and messages call it);
- ``init(start) -> state``: the initial state, or the state of the :class:`~meanfield.checkpoint.Checkpoint`
  ``start`` of a resumed run;
- ``step(state, h) -> (candidate, error)``: one step of size h (``error``: None, or the embedded error estimate
  ``(e, y, y_next)`` as numpy arrays for an adaptive controller);
- ``accept(candidate, clock) -> (state, stop)``: the candidate of a kept step (also the initial state) made the
  state, after the rule's checks (raising :class:`~meanfield.controllers.Diverged`); ``stop`` ends the run as
  converged;
- ``observe(state, clock) -> Snapshot`` (risk, measure, the rule's own observables) and
  ``checkpoint(state, snapshot) -> dict`` of named arrays (the snapshot just observed, so the host copy of the
  particles is made once), at each save; ``info(state) -> dict`` at the end;
  ``where(clock) -> str``: where the run stands, in words (for the interruption message).

The loop owns everything else: the clock, resume, the progress bar, Ctrl-C/SIGTERM and failures (through
:class:`~meanfield.runguard.RunGuard`), the save schedule, the wall clock and the final status.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from ._signals import stop_signals
from .checkpoint import Checkpoint
from .controllers import Diverged
from .measure import ParticleMeasure
from .runguard import FlowDivergedError, RunGuard
from .saving import SaveAt
from .status import Status

__all__ = ["Clock", "Snapshot", "run_loop"]


@dataclass
class Clock:
    """Where a run stands: time, accepted steps, current step size and snapshots saved.

    Examples
    --------
    >>> from meanfield.loop import Clock
    >>> clock = Clock()
    >>> clock.t, clock.step, clock.n_saved
    (0.0, 0, 0)
    """

    t: float = 0.0
    step: int = 0
    h: float = 0.0
    n_saved: int = 0


@dataclass
class Snapshot:
    """What a stepping rule reports at a save: the risk, the measure (None for runs that are not particle
    measures), its own observables, and ``divergence``, a message when the saved state shows the run diverged
    (the snapshot is saved, then the run stops).

    Examples
    --------
    The report of a rule that is not a particle system (see :func:`run_loop` for a whole rule):

    >>> snapshot = Snapshot(risk=0.25, observables={"loss": 0.5})
    >>> snapshot.measure is None, snapshot.divergence is None
    (True, True)
    """

    risk: float
    measure: ParticleMeasure | None = None
    observables: dict = field(default_factory=dict)
    divergence: str | None = None


class Saver:
    """Records snapshots and checkpoints, and closes the run with its status."""

    def __init__(self, rule, save: SaveAt, recorder, info: dict, wall_before: float):
        self.rule, self.save, self.recorder, self.info = rule, save, recorder, info
        self.wall_before, self.started = wall_before, time.perf_counter()

    def wall_time(self) -> float:
        return self.wall_before + time.perf_counter() - self.started

    def record(self, state, clock: Clock) -> None:
        snap = self.rule.observe(state, clock)
        observables = dict(snap.observables, **self.save.evaluate(snap.measure))
        ckpt = Checkpoint(clock.t, clock.step, clock.h, self.wall_time(), self.rule.checkpoint(state, snap))
        self.recorder.save(clock.t, snap.risk, snap.measure, observables, ckpt,
                           particles=self.save.particles and snap.measure is not None)
        clock.n_saved += 1
        if snap.divergence is not None:
            raise Diverged(snap.divergence)

    def finish(self, state, clock: Clock, status: Status):
        if state is not None:  # None: interrupted (Ctrl-C twice) before the initial state was made
            self.info.update(self.rule.info(state))
        self.info.update(n_steps=clock.step, wall_time=self.wall_time())
        return self.recorder.trajectory(status=status, info=self.info)


def run_loop(rule, controller, save: SaveAt, t_max: float, recorder, start: Checkpoint | None = None, *,
             info: dict | None = None, progress: bool = False, resume_hint: str = "resume=True"):
    """Run ``rule`` from its initial state (or from the checkpoint ``start``) up to ``t_max``.

    Parameters
    ----------
    rule : stepping rule
        See the module's description.
    controller : ConstantStep or ErrorControl
        Step sizes (:mod:`meanfield.controllers`).
    save : SaveAt
        When and what to save.
    t_max : float
        The time the run ends at.
    recorder : MemoryRecorder or io.FileRecorder
        Where the snapshots go.
    start : Checkpoint, optional
        Continue from this checkpoint (a resumed file); the run is then bit-identical to an uninterrupted one.
    info : dict, optional
        Entries of the trajectory's ``info`` (the rule's own and the wall time are added).
    progress : bool
        Show a tqdm progress bar.
    resume_hint : str
        How to continue the run, in the warning of an interrupted one (e.g. ``"sgd.train(..., resume=True)"``).

    Returns
    -------
    Trajectory
        The recorder's trajectory with status "completed", "converged" (the rule stopped it) or "interrupted"
        (Ctrl-C, SIGTERM, a stop request). A divergence raises :class:`~meanfield.FlowDivergedError` carrying the
        trajectory saved so far (status "diverged"); any other error closes the file as "failed" and propagates.

    Examples
    --------
    A stepping rule for ẋ = −x (explicit Euler), run to t = 1 with a save every 5 steps:

    >>> from meanfield.controllers import ConstantStep
    >>> from meanfield.io import recorder_for
    >>> from meanfield.loop import Snapshot, run_loop
    >>> from meanfield.saving import SaveAt
    >>> class Decay:
    ...     kind, label = "decay", "decay"
    ...     def init(self, start): return 1.0 if start is None else float(start.arrays["x"])
    ...     def step(self, x, h): return x * (1.0 - h), None
    ...     def accept(self, x, clock): return x, False
    ...     def observe(self, x, clock): return Snapshot(risk=x)
    ...     def checkpoint(self, x, snapshot): return {"x": x}
    ...     def where(self, clock): return f"t = {clock.t:g}"
    ...     def info(self, x): return {}
    >>> recorder, _ = recorder_for(None, Decay.kind, {}, {}, {}, None)
    >>> traj = run_loop(Decay(), ConstantStep(0.1), SaveAt(every=5), 1.0, recorder)
    >>> traj.status, traj.times.tolist(), round(float(traj.risk[-1]), 10)   # 0.9¹⁰
    ('completed', [0.0, 0.5, 1.0], 0.3486784401)
    """
    with stop_signals():  # to the end: a signal that arrives as the file is closed is delivered once it is
        return _run(rule, controller, save, t_max, recorder, start, {} if info is None else info, progress,
                    resume_hint)


def _run(rule, controller, save: SaveAt, t_max: float, recorder, start: Checkpoint | None, info: dict,
         progress: bool, resume_hint: str):
    if start is None:
        clock = Clock(h=controller.dt0)
    else:
        clock = Clock(start.t, start.step, start.h, start.n_saved)
    saver = Saver(rule, save, recorder, info, start.wall_time if start is not None else 0.0)
    state, stop = None, False
    bar = tqdm(total=t_max, initial=clock.t, disable=not progress, desc=rule.label,
               bar_format="{l_bar}{bar}| t = {n:.4g}/{total:.4g} [{elapsed}<{remaining}]")
    with RunGuard(recorder, info, bar, lambda: rule.where(clock), resume_hint, lambda: clock.n_saved) as guard:
        try:
            state = rule.init(start)
            if start is None:
                saver.record(state, clock)  # first, so that a run that diverges at once still has its file
            state, stop = rule.accept(state, clock)
            while True:
                guard.check()  # a signal that arrived since the last check ends the run here, even after the last step
                if stop or controller.finished(clock, t_max):
                    break
                t_stop = save.next_stop(clock, controller, t_max)
                h = controller.propose(clock, t_stop, t_max)
                candidate, error = rule.step(state, h)
                if not controller.update(clock, h, error, t_max):
                    continue
                t_save = save.save_time(clock, controller, t_max, t_stop)
                if t_save is not None:
                    clock.t = t_save
                state, stop = rule.accept(candidate, clock)
                guard.step_done(clock.t)
                if stop or t_save is not None:
                    saver.record(state, clock)
        except Diverged as err:
            raise FlowDivergedError(str(err), saver.finish(state, clock, Status.DIVERGED)) from None
    return saver.finish(state, clock, Status.CONVERGED if stop else guard.status)
