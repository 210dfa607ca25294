"""Saves written on a background thread, so that a run goes on computing (on a GPU: the device keeps working) while
its file is written."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from .status import Status

__all__ = ["BackgroundRecorder"]


class BackgroundRecorder:
    """A recorder whose saves are written by one background thread.

    ``save`` hands the snapshot (host copies of the particles; observables and checkpoint arrays are already the
    recorder's own) to the writer thread and returns; at most one save is in flight, so the next ``save`` first
    waits for the previous one (memory stays bounded by one extra copy of the particles). An error of the writer is
    raised in the run's thread at the next ``save`` or at the close. Closing (``trajectory``, ``abort``) first
    waits for the save in flight, so an interrupted run's file ends exactly as a synchronous run's would; a process
    killed outright loses at most the snapshot in flight, and the file's checkpoints stay intact (each write is
    crash-safe), so a resume continues from the previous one.

    Parameters
    ----------
    recorder : io.FileRecorder or trajectory.MemoryRecorder
        Where the snapshots go.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], np.eye(3)[:1]), mf.Gaussian(3))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(8, 3, seed=0), t_max=1.0, dt=0.1, background_saves=True)
    >>> traj.status, traj.times.tolist()
    ('completed', [0.0, 1.0])
    """

    def __init__(self, recorder):
        self.recorder = recorder
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="meanfield-saves")
        self._pending: Future | None = None

    @property
    def path(self):
        """The file the wrapped recorder writes (None in memory)."""
        return getattr(self.recorder, "path", None)

    def save(self, t, risk, measure, observables, checkpoint, particles: bool = True) -> None:
        self.wait()
        measure = measure.copy() if measure is not None else None
        self._pending = self._writer.submit(self.recorder.save, t, risk, measure, observables, checkpoint, particles)

    def wait(self) -> None:
        """Wait for the save in flight; raise its error, if any. Interrupted (Ctrl-C) while waiting, the save stays
        the one in flight, and the close waits for it again."""
        pending = self._pending
        if pending is None:
            return
        try:
            pending.result()
        finally:
            if pending.done():
                self._pending = None

    def trajectory(self, status=Status.COMPLETED, info=None):
        try:
            self.wait()
        finally:
            self._writer.shutdown()
        return self.recorder.trajectory(status, info)

    def abort(self, status: str, info=None) -> None:
        """Close with a final status after an error: the save in flight is finished first (its own error, if any,
        gives way to the one being reported)."""
        try:
            self.wait()
        except Exception:  # noqa: BLE001 - the run's error is the one that propagates
            pass
        finally:
            self._writer.shutdown()
            self.recorder.abort(status, info)
