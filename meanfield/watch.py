"""Following a run that another process is writing: ``meanfield watch RUN``.

Every ``interval`` seconds the file is opened read-only in SWMR mode (:func:`meanfield.load`), its series and status
are read, and it is closed again: the watcher holds no handle between refreshes and writes nothing to the run's
file, so the writer goes on as if nobody looked. One terminal line (rewritten in place on a terminal, one line per
refresh otherwise) gives t, the risk, its rate of decrease −dF/dt between the last two saves, the number of saves,
an estimate of the wall time left to t_max (from the progress seen while watching) and the status; ``plot`` rewrites
:func:`meanfield.figures.overview_figure` at each refresh (atomically: a viewer never sees half a picture). The watch
ends by itself when the run does (completed, converged, diverged, interrupted, failed) and says which.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .status import Status

__all__ = ["watch", "RunProgress", "progress_line"]


@dataclass
class RunProgress:
    """What the watcher has seen of a run: (wall clock, t) at each refresh that found new saves, for the estimate
    of the time left.

    Examples
    --------
    >>> p = RunProgress(t_max=10.0)
    >>> p.observe(wall=0.0, t=1.0); p.observe(wall=2.0, t=2.0)
    >>> p.seconds_left(2.0)
    16.0
    """

    t_max: float | None = None
    seen: list = field(default_factory=list)

    def observe(self, wall: float, t: float) -> None:
        """Record that the run stood at ``t`` at wall-clock time ``wall`` (only progress is recorded)."""
        if not self.seen or t > self.seen[-1][1]:
            self.seen.append((wall, t))

    def seconds_left(self, t: float) -> float | None:
        """Wall time left to t_max at the pace seen so far (None before the run was seen to advance)."""
        if self.t_max is None or len(self.seen) < 2:
            return None
        (w0, t0), (w1, t1) = self.seen[0], self.seen[-1]
        if t1 <= t0 or w1 <= w0:
            return None
        return max(0.0, (self.t_max - t) * (w1 - w0) / (t1 - t0))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def t_max_of(traj) -> float | None:
    """The end of a run as configured: t_max (flows, SGD) or the number of epochs (MLP training)."""
    value = traj.config.get("epochs" if traj.kind == "mlp" else "t_max")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def progress_line(traj, progress: RunProgress | None = None) -> str:
    """One line on where a run stands: t (of t_max), the risk, −dF/dt between the last two saves, the saves, the
    estimated time left and the status.

    Examples
    --------
    >>> import types, numpy as np
    >>> run = types.SimpleNamespace(times=np.array([0.0, 1.0]), risk=np.array([0.5, 0.3]), status="running",
    ...                             kind="particle_flow", config={"t_max": 4.0})
    >>> progress_line(run)
    't = 1 / 4 (25%)  risk 3.000e-01  −dF/dt 2.00e-01  2 saves  left ?  running'
    """
    n = len(traj.times)
    if n == 0:
        return f"no saves yet  {traj.status}"
    t, risk = float(traj.times[-1]), float(traj.risk[-1])
    t_max = t_max_of(traj)
    where = f"t = {t:.4g}" + (f" / {t_max:.4g} ({100 * t / t_max:.0f}%)" if t_max else "")
    rate = "−dF/dt ?"
    if n > 1 and traj.times[-1] > traj.times[-2]:
        rate = f"−dF/dt {-(risk - float(traj.risk[-2])) / (t - float(traj.times[-2])):.2e}"
    left = _duration(progress.seconds_left(t) if progress is not None else None)
    return f"{where}  risk {risk:.3e}  {rate}  {n} save{'s' if n != 1 else ''}  left {left}  {traj.status}"


def _read(path):
    """The run as it stands (read-only SWMR open; the caller closes it at once), or None while the writer has the
    file in a state that cannot be read (before its first snapshot and checkpoint, or while it closes the file)."""
    from .io import TrajectoryFileError, load

    try:
        traj = load(path)
    except TrajectoryFileError:
        if Path(str(path) + ".lock").exists():
            return None  # a writer is creating the file
        raise
    except FileNotFoundError:
        if Path(str(path) + ".lock").exists():
            return None
        raise
    return traj


def _write_plot(traj, out: Path) -> None:
    from .figures import overview_figure

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp{out.suffix}")
    try:
        overview_figure(traj, name=Path(traj.path).name if traj.path else None).savefig(tmp, dpi=100)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def watch(path, interval: float = 5.0, plot=None, stream=None, max_refreshes: int | None = None) -> str:
    """Follow the run written to ``path`` until it ends; returns its final status.

    Parameters
    ----------
    path : path-like
        A trajectory file, being written by another process (or already finished: one line, then the end).
    interval : float
        Seconds between refreshes.
    plot : path-like, optional
        A PNG rewritten at each refresh with the run's risk curve and latest particles.
    stream : file, optional
        Where the lines go (default: standard output); rewritten in place when it is a terminal.
    max_refreshes : int, optional
        Stop after this many refreshes even if the run goes on (returns "running").

    Raises
    ------
    FileNotFoundError
        When there is no such file and no writer is starting one.

    Examples
    --------
    A finished run: one line, then its status.

    >>> import io, numpy as np, meanfield as mf, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.h5"
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0]]), mf.Gaussian(2))
    >>> mf.simulate(problem, mf.init.sign_sphere(8, 2, seed=0), t_max=1.0, dt=0.1, path=path).close()
    >>> out = io.StringIO()
    >>> watch(path, interval=0.01, stream=out)
    'completed'
    >>> out.getvalue().splitlines()[-1].endswith("completed")
    True
    """
    if not interval > 0:
        raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
    path = Path(path)
    if not path.exists() and not Path(str(path) + ".lock").exists():
        raise FileNotFoundError(f"no such trajectory file: {path} (and no writer is starting it)")
    stream = stream if stream is not None else sys.stdout
    in_place = hasattr(stream, "isatty") and stream.isatty()
    plot = Path(plot) if plot is not None else None
    progress, refreshes = RunProgress(), 0
    while True:
        traj = _read(path)
        if traj is not None and traj.status == Status.INTERRUPTED.value:
            # "interrupted" is a status attribute still saying running, read while the writer held its lock, and the
            # lock found free afterwards: a writer that finished in between reads so too. Once the lock is free the
            # attribute is final, so a second read tells an interrupted run from one that has just ended.
            traj.close()
            traj = _read(path)
        if traj is None:
            line, status = "no complete save to read yet (the writer is creating or closing the file)", "running"
        else:
            traj.close()  # what is drawn below is in memory: the series, the status, the latest checkpoint
            progress.t_max = t_max_of(traj)
            if len(traj):
                progress.observe(time.monotonic(), float(traj.times[-1]))
            line, status = progress_line(traj, progress), str(traj.status)
            if plot is not None:
                _write_plot(traj, plot)
        refreshes += 1
        ended = status != Status.RUNNING.value
        if in_place:
            stream.write("\r\033[K" + line + ("\n" if ended else ""))
        else:
            stream.write(line + "\n")
        stream.flush()
        if ended:
            stream.write(f"{path}: the run ended: {status}\n")
            stream.flush()
            return status
        if max_refreshes is not None and refreshes >= max_refreshes:
            if in_place:
                stream.write("\n")
            return status
        time.sleep(interval)


def exit_code(status: str) -> int:
    """The exit status of ``meanfield watch``: 0 for a run that completed or converged, 1 for one that diverged or
    failed, 130 for one that was interrupted (resumable), 0 when the watch itself stopped while the run goes on."""
    if status in (Status.COMPLETED.value, Status.CONVERGED.value, Status.RUNNING.value):
        return 0
    return 130 if status == Status.INTERRUPTED.value else 1
