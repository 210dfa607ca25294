"""The HDF5 trajectory format: one writer, one reader, crash recovery and resume.

Layout of a file (format ``meanfield-trajectory``, version 2; readable with plain h5py, ``swmr=True``)::

    /                      attrs: format, format_version, package_version, kind, created, status, seed,
                                  config (JSON), info (JSON, at the end of the run)
    /problem               attrs: spec (JSON: input law, target, activation)
    /problem/target/<name> the target's arrays (teacher c and U, subspace basis Q, ...)
    /series/time           (T,)      resizable along time, chunks of 512 B (SERIES_CHUNK_BYTES: 64 saves)
    /series/risk           (T,)
    /observables/<name>    (T, ...)  user observables, one row per save (arrays of 64 values or more: one
                                     compressed row per chunk; smaller ones: chunks of 512 B)
    /particles/weights     (m,)
    /particles/a           (T, m)    one snapshot per chunk, compressed (absent with SaveAt(particles=False))
    /particles/b           (T, m, d)  neurons b ([b | c] with biases; rings' [u | r] for a low-dimensional flow)
    /checkpoint/<name>     the stepping rule's state as named arrays (flow: a, b, n_evaluations, max_risk; SGD: a, b,
                           rng, max_risk; MLP: W0 …, W0.m1 …, W0.m2 …, optimizer_steps, initial_loss)
    /checkpoint/clock      (5,) t, step, n_saved, h, wall_time;  /checkpoint/checksum  () CRC-32 of the above
    /checkpoint/previous/  the same for the checkpoint before the latest (a backup)

(:mod:`meanfield.checkpoint`; version-1 files, whose checkpoint was one state matrix and a meta vector, are read and
resumed, and a resumed version-1 run is written in version 2.)

Writing discipline: every dataset exists before the file switches to SWMR mode, and the writer stays in SWMR mode
until it closes (the final status and run information are rewritten in place before the close), so readers
following the file never stand in its way. Before each save, room for all of it is reserved on disk
(:mod:`meanfield._room`): a full filesystem, quota or file-size limit stops the run with :class:`DiskFullError`
before libhdf5 writes any of it, and the file is closed as ``failed`` with ``info["error"]`` saying why. Each save
appends one row to the series, then copies the current checkpoint to ``checkpoint/previous`` and flushes, then
overwrites the checkpoint and flushes again, all with Ctrl-C deferred. Each checkpoint carries a ``checksum`` (CRC-32
of its arrays and clock), so after a process is killed while writing one, resuming takes the other, which is intact.
A process killed at any moment leaves a file that opens (:func:`load`) with every completed snapshot; readers use the
shortest series length. Chunks are allocated when their first row is written, so the bytes of a file follow the
order of its saves, and a copy cut at byte c keeps (:func:`recover`) every save that was complete when the file was
c bytes long. A writer holds an exclusive ``fcntl`` lock on ``<path>.lock`` (released by the kernel even on
SIGKILL), so a second writer is refused and a dead writer is told apart from a live one. Resuming copies the
snapshots up to the last checkpoint into a fresh file, written without a name and linked in place of the old one
when complete (so SIGKILL during the copy leaves the old file and nothing else); a superblock still marked open for
writing by a writer that died is cleared when a reader opens it, as ``h5clear -s`` would.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import h5py
import numpy as np

from . import checkpoint as ckpt_format
from ._files import (
    FORMAT_NAME,
    FORMAT_VERSION,
    FileBusyError,
    SharedRead,
    TrajectoryFileError,
    acquire_read,
    close_attr,
    dataset,
    is_locked,
    reader_key,
    release_read,
    series_length,
)
from ._hdf5 import refresh_object
from ._resume import recover
from ._resume import resume as resume_file
from ._room import DiskFullError, TrajectoryWriteError
from ._schema import array_checksum
from ._writer import TrajectoryWriter
from .checkpoint import Checkpoint
from .measure import measure_type
from .status import Status
from .trajectory import MemoryRecorder, Trajectory

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load", "FileTrajectory", "recover", "file_status", "recorder_for",
           "TrajectoryWriter", "array_checksum", "TrajectoryFileError", "FileBusyError", "TrajectoryWriteError",
           "DiskFullError"]


def file_status(path) -> str:
    """'running' (a live writer), 'interrupted' (its writer died or was stopped), or the final status.

    Examples
    --------
    >>> import meanfield as mf, tempfile, pathlib
    >>> from meanfield.io import file_status
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "sphere.h5"
    >>> problem = mf.Problem(mf.LinearTarget([1.0, 0.0]), mf.Sphere(2))
    >>> mf.simulate(problem, mf.init.gaussian(4, 2, seed=0), t_max=0.5, dt=0.1, path=path).close()
    >>> file_status(path)
    'completed'
    """
    with SharedRead(path) as f:
        status = close_attr(f, "status", "unknown")
    if status == Status.RUNNING and not is_locked(path):
        return Status.INTERRUPTED.value
    return status


class _Rows:
    """The first ``length`` rows of an HDF5 dataset, read lazily (slicing reads only what is asked)."""

    def __init__(self, dataset, length: int):
        self.dataset, self.length = dataset, length

    @property
    def shape(self):
        return (self.length,) + self.dataset.shape[1:]

    def __len__(self):
        return self.length

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        first = key[0]
        if isinstance(first, (int, np.integer)):
            if not -self.length <= first < self.length:
                raise IndexError(f"snapshot {first} out of range for {self.length} snapshots")
            first = int(first) % self.length
        elif isinstance(first, slice):
            first = range(self.length)[first]
            first = slice(first.start, first.stop, first.step) if first.step > 0 else list(first)
        else:
            first = np.arange(self.length)[first]
        return self.dataset[(first,) + key[1:]]

    def __array__(self, dtype=None, copy=None):
        out = self.dataset[: self.length]
        return out.astype(dtype) if dtype is not None else out

    def __repr__(self):
        return f"<lazy {self.shape} {self.dataset.dtype} rows of {self.dataset.name}>"


def load(path) -> Trajectory:
    """Open a trajectory file: the :class:`~meanfield.Trajectory` of the run, lazily backed by the file.

    ``times`` and ``risk`` are read at once; ``a``, ``b`` and the observables are read on slicing
    (``traj.b[-1]`` reads one snapshot). The file stays open (read-only, SWMR) until ``traj.close()``;
    ``traj.refresh()`` picks up snapshots that a running writer has added since.

    Raises
    ------
    TrajectoryFileError
        For a foreign HDF5 file, a file from a newer format version, or a corrupt or truncated file.

    Examples
    --------
    >>> import numpy as np, meanfield as mf, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.h5"
    >>> problem = mf.Problem(mf.LinearTarget(np.ones(3)), mf.Gaussian(d=3))
    >>> mf.simulate(problem, mf.init.sign_sphere(8, 3, seed=0), t_max=1.0, dt=0.1, path=path).close()
    >>> traj = mf.load(path)
    >>> traj.status, traj.times.shape, traj.b[-1].shape     # arrays are read from the file when asked for
    ('completed', (2,), (8, 3))
    >>> traj.close()
    """
    traj = FileTrajectory(path)
    try:
        traj.refresh()
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        traj.close()
        raise TrajectoryFileError(f"{path} is corrupt or truncated: {err}") from None
    return traj


class FileTrajectory(Trajectory):
    """A :class:`~meanfield.Trajectory` backed by its HDF5 file (what :func:`load` returns): arrays are read
    lazily, :meth:`refresh` follows a file that is still being written, :meth:`close` releases the file.

    Examples
    --------
    What :func:`load` returns (its example opens one): a :class:`~meanfield.Trajectory` whose arrays stay on disk.

    >>> import meanfield as mf
    >>> issubclass(FileTrajectory, mf.Trajectory)
    True
    """

    def __init__(self, path):
        super().__init__(None, None, None, None, None, {}, None)
        self._key = reader_key(path)
        self._handle = acquire_read(path)
        self._file_path = Path(path)

    @property
    def path(self) -> Path:
        return self._file_path

    def refresh(self) -> FileTrajectory:
        """Re-read the file: snapshots a running writer has added since, its status and final state.

        While a writer is live, libhdf5 sometimes fails to refresh a dataset that the writer is extending at that
        moment ("invalid dataset size"); such a read is retried (up to 20 times, 10 ms apart) before it raises."""
        for attempt in range(_REFRESH_ATTEMPTS):
            try:
                return _fill_from_file(self, self._handle)
            except (OSError, RuntimeError):
                if attempt == _REFRESH_ATTEMPTS - 1 or not is_locked(self.path):
                    raise
                time.sleep(0.01)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._handle is not None:
            release_read(self._key)
            self._handle = None


_REFRESH_ATTEMPTS = 20


def _fill_from_file(traj: Trajectory, f: h5py.File) -> Trajectory:
    names = [n for n in ("series/time", "series/risk", "particles/a", "particles/b") if n in f]
    names += [f"{slot}/{name}" for slot in ckpt_format.SLOTS if slot in f
              for name, d in f[slot].items() if isinstance(d, h5py.Dataset)]
    if "observables" in f:
        names += [f"observables/{k}" for k in f["observables"]]
    ds = {name: dataset(f, name) for name in names}
    if f.swmr_mode:
        refresh_object(f["/"])  # the status and run information the writer records when it closes
        for d in ds.values():
            d.refresh()
    n = series_length(f)
    weights = f["particles/weights"][:]
    ckpt = ckpt_format.latest_intact(f)
    recovered = "recovered_from" in json.loads(close_attr(f, "info", "{}"))
    if ckpt is None and ckpt_format.read(f) is None and not recovered:
        raise ValueError("no checkpoint written yet")
    traj.times, traj.risk = ds["series/time"][:n], ds["series/risk"][:n]
    traj.a = _Rows(ds["particles/a"], n) if "particles/a" in ds else None
    traj.b = _Rows(ds["particles/b"], n) if "particles/b" in ds else None
    traj.weights = weights
    traj.observables = {name.split("/", 1)[1]: _Rows(d, n) for name, d in ds.items() if name.startswith("observables/")}
    traj.kind = str(f.attrs.get("kind"))
    traj.problem_spec = json.loads(f["problem"].attrs["spec"])
    particle_type = measure_type(traj.problem_spec)
    particles = ckpt is not None and {"a", *particle_type.coordinate_names} <= set(ckpt.arrays)
    traj.final = particle_type.from_arrays(ckpt.arrays, weights) if particles else None
    if recovered and traj.a is not None and n and (ckpt is None or ckpt.n_saved < n):  # snapshots past it kept
        traj.final = traj.measure(n - 1)
    live = is_locked(traj.path)
    # A live writer may be rewriting the attribute while it is read: it is still running.
    status = close_attr(f, "status", Status.RUNNING.value if live else "unknown")
    traj.status = Status.INTERRUPTED.value if status == Status.RUNNING and not live else status
    traj.info = json.loads(close_attr(f, "info", "{}"))
    traj.file_attributes = {k: f.attrs[k] for k in ("format", "format_version", "package_version", "created")
                            if k in f.attrs}
    traj.target_arrays = {name: ds[()] for name, ds in f["problem/target"].items()} if "problem/target" in f else {}
    traj.config = json.loads(f.attrs.get("config", "{}"))
    return traj


class FileRecorder:
    """Streams a run's saves to a :class:`TrajectoryWriter`; the result is :func:`load` of the file. The first save
    fixes the shapes of every dataset (observables, particles, checkpoint arrays)."""

    def __init__(self, writer: TrajectoryWriter):
        self.writer = writer

    @property
    def path(self) -> Path:
        """The file this recorder writes."""
        return self.writer.path

    def save(self, t, risk, measure, observables, checkpoint: Checkpoint, particles: bool = True):
        """Append one snapshot, then write its checkpoint and flush."""
        if not self.writer.started:
            shape = (measure.m, measure.width, *measure.a.shape[1:]) if particles else None
            self.writer.start(observables, shape, checkpoint)
        self.writer.append(t, risk, measure if particles else None, observables)
        self.writer.checkpoint(checkpoint)

    def trajectory(self, status=Status.COMPLETED, info=None) -> Trajectory:
        self.writer.close(status, info)
        return load(self.writer.path)

    def abort(self, status: str, info=None) -> None:
        """Close the file with a final status after an error (no trajectory is opened)."""
        self.writer.close(status, info)


def recorder_for(path, kind: str, run_config: dict, spec: dict, arrays: dict, weights, *, overwrite: bool = False,
                 resume: bool = False, resumable=(), seed: int | None = None, defaults: dict | None = None,
                 t_end: float | None = None):
    """The recorder of a run (every kind): in memory when ``path`` is None, else streaming to an HDF5 file, new or
    resumed. ``spec`` and ``arrays`` describe the problem (its JSON description and target arrays), ``weights`` are
    the particle masses. Returns ``(recorder, checkpoint)``, the checkpoint being the resumed file's last one (or
    None). On resume every configuration entry (nested ones included) except the top-level keys in ``resumable``
    must match the file, an entry that one side lacks standing for its value in ``defaults``
    (:func:`meanfield._defaults.call_defaults`); so must the kind, the arrays and the masses, and the file may not
    have passed ``t_end``, the time the run ends at (see :func:`meanfield._resume.resume`).

    Examples
    --------
    The recorder every run kind uses; without a path it keeps the run in memory:

    >>> from meanfield.io import recorder_for
    >>> recorder, start = recorder_for(None, "particle_flow", {}, {}, {}, None)
    >>> type(recorder).__name__, start is None
    ('MemoryRecorder', True)
    """
    if path is None:
        if resume:
            raise ValueError("resume=True needs the path of the run to continue")
        return MemoryRecorder(weights, kind, spec, arrays), None
    checkpoint = None
    if resume and Path(path).exists():
        writer, checkpoint = resume_file(path, run_config, resumable, kind=kind, problem_arrays=arrays,
                                         weights=weights, defaults=defaults, t_end=t_end)
    else:
        writer = TrajectoryWriter.create(path, kind, run_config, spec, arrays, weights, seed=seed, overwrite=overwrite)
    return FileRecorder(writer), checkpoint
