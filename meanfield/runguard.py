"""How every run loop ends (flows, SGD, MLP training): interruption, divergence and failure, in one place."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable

from ._signals import StopRequested, Terminated, check_stop
from .status import Status
from .threads import blas_threads

__all__ = ["RunGuard", "FlowDivergedError", "RunInterruptedWarning"]


class RunInterruptedWarning(UserWarning):
    """A run was stopped by Ctrl-C or SIGTERM and returned what it had saved (the CLI prints its own line).

    Examples
    --------
    Ctrl-C or SIGTERM during a run returns what was saved, with status "interrupted", and warns:

    >>> from meanfield.runguard import RunInterruptedWarning
    >>> issubclass(RunInterruptedWarning, UserWarning)
    True
    """


class FlowDivergedError(RuntimeError):
    """The state became non-finite or the risk blew up; ``.trajectory`` holds what was saved until then.

    Examples
    --------
    A step far too large makes the flow blow up; the error carries what was saved:

    >>> import numpy as np, meanfield as mf
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0]]), mf.Gaussian(2))
    >>> try:
    ...     mf.simulate(problem, mf.init.sign_sphere(8, 2, seed=0), t_max=1000.0, dt=50.0, solver="euler")
    ... except mf.FlowDivergedError as err:
    ...     print(err.trajectory.status, err.trajectory.times[0])
    diverged 0.0
    """

    def __init__(self, message: str, trajectory):
        super().__init__(message)
        self.trajectory = trajectory


class RunGuard:
    """``with RunGuard(recorder, info, bar, where, resume_hint) as guard: <loop>``.

    The loop calls :meth:`check` before each step and once the last is done, and :meth:`step_done` after each step
    with the time or step reached. Run it within :func:`~meanfield._signals.stop_signals`, where SIGINT and SIGTERM
    are only noted and :meth:`check` raises them, so that a signal always ends the run between two steps, whatever
    the run was doing when it arrived. Ctrl-C, SIGTERM or a stop request ends the loop and sets
    ``guard.status = "interrupted"`` and ``info["interrupted_by"]`` ("SIGINT", "SIGTERM" or "stop request"), with a
    warning saying where and how to resume (before anything was saved, ``n_saved()`` = 0, the interruption
    propagates instead: there is nothing to return); a :class:`FlowDivergedError` propagates (its file is already
    closed as "diverged"); any other error closes the file with status "failed" (keeping every snapshot, releasing
    the lock) and propagates; the progress bar is closed in every case. Inside the block BLAS runs with the threads
    of the thread policy (:mod:`meanfield.threads`).

    Examples
    --------
    >>> from meanfield.trajectory import MemoryRecorder
    >>> from tqdm import tqdm
    >>> with RunGuard(MemoryRecorder([1.0]), {}, tqdm(disable=True), lambda: "here") as guard:
    ...     pass
    >>> guard.status == "completed", str(guard.status)
    (True, 'completed')
    """

    def __init__(self, recorder, info: dict, bar, where: Callable[[], str], resume_hint: str = "resume=True",
                 n_saved: Callable[[], int] | None = None):
        self.recorder, self.info, self.bar, self.where = recorder, info, bar, where
        self.n_saved = n_saved
        self.resume_hint = resume_hint
        self.status = Status.COMPLETED
        self._limits = contextlib.ExitStack()  # the BLAS thread limit, undone on exit

    def __enter__(self) -> RunGuard:
        limit = self._limits.enter_context(blas_threads())
        if limit is not None:
            self.info["blas_threads"] = limit
        return self

    @staticmethod
    def check() -> None:
        """Stop here (raise) if SIGINT or SIGTERM arrived or a stop was requested (a sweep being interrupted)."""
        check_stop()

    def step_done(self, position: float) -> None:
        """Move the progress bar to ``position`` (time or step reached). Positions are absolute, so the bar ends
        exactly at its total (no 0.9999999/1)."""
        self.bar.update(position - self.bar.n)
        self.bar.n = position

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._limits.close()
        self.bar.close()
        if exc_type is None:
            return False
        if issubclass(exc_type, KeyboardInterrupt):
            self.status = Status.INTERRUPTED
            self.info["interrupted_by"] = ("SIGTERM" if issubclass(exc_type, Terminated) else "stop request"
                                           if issubclass(exc_type, StopRequested) else "SIGINT")
            if self.n_saved is not None and self.n_saved() == 0:  # Ctrl-C twice before the first save
                self.recorder.abort(Status.INTERRUPTED, self.info)  # no trajectory to return: releases the file
                return False
            saved = getattr(self.recorder, "path", None)
            hint = f"; continue it with {self.resume_hint}" if saved is not None else ""
            warnings.warn(f"{self.where()}: interrupted ({self.info['interrupted_by']}); returning the trajectory "
                          f"saved so far{hint}", RunInterruptedWarning, stacklevel=2)
            return True
        if issubclass(exc_type, Exception) and not issubclass(exc_type, FlowDivergedError):
            self.recorder.abort(Status.FAILED, self.info)
        return False
