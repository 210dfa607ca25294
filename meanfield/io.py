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

import datetime as _dt
import errno
import fcntl
import hashlib
import json
import os
import time
from pathlib import Path

import h5py
import numpy as np

from . import checkpoint as ckpt_format
from ._hdf5 import (
    clear_write_flags,
    is_hdf5,
    new_file,
    open_swmr_read,
    refresh_object,
    stored_size,
    truncation,
    write_flags,
)
from ._room import DiskFullError, Room, TrajectoryWriteError, metadata_allowance
from ._signals import deferred_interrupts
from .checkpoint import Checkpoint
from .measure import ParticleMeasure, measure_type
from .status import Status
from .trajectory import MemoryRecorder, Trajectory

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load", "FileTrajectory", "recover", "file_status", "recorder_for",
           "TrajectoryFileError", "FileBusyError", "TrajectoryWriteError", "DiskFullError"]

#: The ``format`` attribute of every trajectory file (docs/file-format.md).
FORMAT_NAME = "meanfield-trajectory"
#: The ``format_version`` this version writes; files of version 1 are read too.
FORMAT_VERSION = 2

#: Bytes per chunk of the time series and of the small observables (a scalar's chunk holds 64 saves). Every chunk is
#: allocated when its first row is written, so the file's bytes follow the order of the saves, and a cut copy keeps
#: every save that was complete at the cut; what comes before the first save's particles (object headers, and one
#: chunk of each such dataset) is the part of a file that a cut anywhere inside loses whole
#: (``benchmarks/truncation.py`` measures the trade-off of this size).
SERIES_CHUNK_BYTES = 512


class TrajectoryFileError(ValueError):
    """The file is not a (readable) meanfield trajectory: foreign, corrupt, truncated or from a newer version.

    Examples
    --------
    >>> import tempfile, pathlib, meanfield as mf
    >>> from meanfield.io import TrajectoryFileError
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.h5"
    >>> _ = path.write_text("not an HDF5 file")
    >>> try:
    ...     mf.load(path)
    ... except TrajectoryFileError as err:
    ...     print(type(err).__name__)
    TrajectoryFileError
    """


class FileBusyError(RuntimeError):
    """Another process is writing this trajectory file.

    Examples
    --------
    A second writer of the same file is refused while the first one runs (the lock lives in the file):

    >>> from meanfield.io import FileBusyError
    >>> issubclass(FileBusyError, RuntimeError)
    True
    """


def _package_version() -> str:
    from . import __version__

    return __version__


def _check_replaceable(path: Path) -> None:
    """Refuse to overwrite anything at ``path`` that is not a meanfield trajectory (a folder, a text file, another
    program's HDF5 file); a damaged trajectory of ours (its format attribute readable) may be replaced."""
    what = None
    if not path.is_file():
        what = "is not a regular file"
    elif not is_hdf5(path):
        what = "is not an HDF5 file"
    else:
        try:
            shared = _READERS.get(_reader_key(path))  # a handle this process holds (libhdf5 wants the same mode)
            if shared is not None and shared[0].id.valid:
                fmt = shared[0].attrs.get("format")
            else:
                with _open_handle(path) as f:
                    fmt = f.attrs.get("format")
            if fmt != FORMAT_NAME:
                what = "is an HDF5 file but not a meanfield trajectory"
        except (OSError, RuntimeError) as err:
            what = f"is an HDF5 file that cannot be opened ({err})"
    if what is not None:
        raise FileExistsError(f"{path} exists and {what}: refusing to overwrite it; choose another output path, or "
                              "move it away yourself")


def _lock_path(path) -> Path:
    return Path(str(path) + ".lock")


#: The writer locks this process holds (lock paths).
_HELD: set[Path] = set()


def _acquire_lock(path):
    handle = open(_lock_path(path), "a+")  # noqa: SIM115 - held for the writer's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FileBusyError(f"{path} is being written by another process (lock {_lock_path(path)} is held); "
                            "wait for it to finish or stop it first") from None
    _HELD.add(_lock_path(path).resolve())
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _release_lock(handle, path) -> None:
    _HELD.discard(_lock_path(path).resolve())
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()
    try:
        os.remove(_lock_path(path))
    except FileNotFoundError:
        pass


def is_locked(path) -> bool:
    """True while a live process holds the writer lock of ``path``."""
    if not _lock_path(path).exists():
        return False
    with open(_lock_path(path)) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


#: Read handles shared within the process: HDF5 shares one file object between two opens of the same file, and
#: a second SWMR open of a file already open for reading returns stale rows; so every reader of a path goes through
#: one h5py.File, closed when its last user releases it. path → [h5py.File, number of users].
_READERS: dict[Path, list] = {}


class _SharedRead:
    """``with _SharedRead(path) as f``: the process's shared read handle of a trajectory file."""

    def __init__(self, path, allow_truncated: bool = False):
        self.path, self.allow_truncated = path, allow_truncated

    def __enter__(self) -> h5py.File:
        self.key = _reader_key(self.path)
        return _acquire_read(self.path, self.allow_truncated)

    def __exit__(self, *exc):
        _release_read(self.key)


def _reader_key(path) -> tuple:
    path = Path(path).resolve()
    try:
        return path, os.stat(path).st_ino  # a file replaced on disk (resume, overwrite) gets a fresh handle
    except FileNotFoundError:
        return path, None


def _acquire_read(path, allow_truncated: bool = False) -> h5py.File:
    key = _reader_key(path)
    entry = _READERS.get(key)
    if entry is not None and entry[0].id.valid:
        entry[1] += 1
        return entry[0]
    f = _open_read(path, allow_truncated)
    _READERS[key] = [f, 1]
    return f


def _release_read(key) -> None:
    entry = _READERS.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] <= 0:
        del _READERS[key]
        entry[0].close()


def _open_read(path, allow_truncated: bool = False) -> h5py.File:
    """Open a trajectory file for reading, with errors that say what is wrong (use :func:`_acquire_read`).

    A truncated file (shorter than its superblock says; not one being written) is refused with the number of its
    intact snapshots, unless ``allow_truncated`` (what :func:`recover` uses)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such trajectory file: {path}")
    try:
        f = _open_handle(path)
    except OSError as err:
        flags = write_flags(path)
        if flags is not None and flags & 1 and not flags & 4 and _written_elsewhere(path):
            raise TrajectoryFileError(f"{path} is being opened by its writer at this moment ({err}); open it again "
                                      "in a moment") from None
        if flags is not None and flags & 1 and not flags & 4:
            raise TrajectoryFileError(f"{path} is marked open for writing by a writer that died, and the mark cannot "
                                      f"be cleared here ({err}): copy the file to writable storage and open the "
                                      "copy, or run `h5clear -s` on it") from None
        raise TrajectoryFileError(f"{path} cannot be opened as HDF5 (not an HDF5 file, or corrupt or truncated): "
                                  f"{err}") from None
    cut = None if is_locked(path) else truncation(path)
    try:
        _check_format(f, path)
    except (TrajectoryFileError, OSError, RuntimeError, KeyError, ValueError) as err:
        f.close()
        if isinstance(err, TrajectoryFileError) and cut is None:
            raise
        lost = f" ({cut[0]} of its {cut[1]} bytes are on disk)" if cut is not None else ""
        raise TrajectoryFileError(f"{path} is corrupt or truncated{lost}: {err}; not even its description "
                                  "can be read") from None
    if cut is not None and not allow_truncated:
        try:
            total = _series_length(f)
            intact = f"its first {_intact_prefix(f, total)} of {total} snapshots are intact"
        except (OSError, RuntimeError, KeyError, ValueError):
            intact = "not even its snapshot count can be read"
        finally:
            f.close()
        raise TrajectoryFileError(f"{path} is corrupt or truncated ({cut[0]} of its {cut[1]} bytes are on disk): "
                                  f"{intact}; `meanfield recover {path}` keeps them in a new file")
    return f


def _written_elsewhere(path) -> bool:
    """Whether another process holds the writer lock of ``path`` (a writer of this process is not in the way)."""
    return is_locked(path) and _lock_path(path).resolve() not in _HELD


def _open_handle(path: Path) -> h5py.File:
    """Open an HDF5 file read-only: as plain h5py does (``h5py.File(path, "r")``, which then shares it within the
    process) when no process writes it and its writer closed it; otherwise in SWMR mode, whose reader skips the
    end-of-file check and follows a live writer.

    A superblock still marked open for (non-SWMR) writing by a writer that died, which no reader would open, has the
    mark cleared first, as ``h5clear -s`` does, when no other process holds the file's writer lock; a file killed
    in SWMR mode opens as it is."""
    flags = write_flags(path)
    if flags is not None and flags & 1 and not flags & 4 and not _written_elsewhere(path):
        try:
            clear_write_flags(path)
        except OSError:
            pass  # read-only storage: the open below says what is wrong
        flags = write_flags(path)
    if flags == 0 and not is_locked(path) and truncation(path) is None:
        return h5py.File(path, "r")
    return open_swmr_read(path)


def _check_format(f: h5py.File, path: Path) -> None:
    fmt = f.attrs.get("format")
    if fmt != FORMAT_NAME:
        raise TrajectoryFileError(f"{path} is an HDF5 file but not a meanfield trajectory "
                                  f"(root attribute 'format' is {fmt!r}, expected {FORMAT_NAME!r})")
    version = int(f.attrs.get("format_version", -1))
    if version > FORMAT_VERSION:
        raise TrajectoryFileError(f"{path} was written in trajectory format version {version}, newer than the "
                                  f"version {FORMAT_VERSION} that meanfield {_package_version()} reads; "
                                  "upgrade meanfield")
    for name in ("series/time", "series/risk"):
        if name not in f:
            raise TrajectoryFileError(f"{path} is a meanfield trajectory without '{name}': the file is incomplete "
                                      "(its writer died before the first snapshot) or corrupt")


def _close_attr(f: h5py.File, name: str, default: str) -> str:
    """A root attribute rewritten when the writer closes (``status``, ``info``): these are the last bytes written,
    so a file truncated after a run lost them first; such a file reads as ``default``."""
    try:
        return str(f.attrs.get(name, default))
    except (OSError, RuntimeError, KeyError):
        return default


def _series_length(f: h5py.File) -> int:
    """Number of complete snapshots: the shortest per-save dataset (a crash can cut between appends)."""
    return min(_dataset(f, name).shape[0] for name in _snapshot_names(f))


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
    with _SharedRead(path) as f:
        status = _close_attr(f, "status", "unknown")
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
        self._key = _reader_key(path)
        self._handle = _acquire_read(path)
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
            _release_read(self._key)
            self._handle = None


_REFRESH_ATTEMPTS = 20


def _fill_from_file(traj: Trajectory, f: h5py.File) -> Trajectory:
    names = [n for n in ("series/time", "series/risk", "particles/a", "particles/b") if n in f]
    names += [f"{slot}/{name}" for slot in ckpt_format.SLOTS if slot in f
              for name, d in f[slot].items() if isinstance(d, h5py.Dataset)]
    if "observables" in f:
        names += [f"observables/{k}" for k in f["observables"]]
    ds = {name: _dataset(f, name) for name in names}
    if f.swmr_mode:
        refresh_object(f["/"])  # the status and run information the writer records when it closes
        for d in ds.values():
            d.refresh()
    n = _series_length(f)
    weights = f["particles/weights"][:]
    ckpt = ckpt_format.latest_intact(f)
    recovered = "recovered_from" in json.loads(_close_attr(f, "info", "{}"))
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
    status = _close_attr(f, "status", Status.RUNNING.value if live else "unknown")
    traj.status = Status.INTERRUPTED.value if status == Status.RUNNING and not live else status
    traj.info = json.loads(_close_attr(f, "info", "{}"))
    traj.file_attributes = {k: f.attrs[k] for k in ("format", "format_version", "package_version", "created")
                            if k in f.attrs}
    traj.target_arrays = {name: ds[()] for name, ds in f["problem/target"].items()} if "problem/target" in f else {}
    traj.config = json.loads(f.attrs.get("config", "{}"))
    return traj


def _dataset(f: h5py.File, name: str) -> h5py.Dataset:
    """The one Dataset object of ``name`` in this read handle. HDF5 2.0's H5Drefresh, called while a second object
    of the same dataset is open, leaves every object of it reading stale rows; so a reader keeps one object per
    dataset (and :func:`load` one handle per file) and refreshes only that."""
    cache = f.__dict__.setdefault("_meanfield_datasets", {})
    if name not in cache:
        cache[name] = f[name]
    return cache[name]


class TrajectoryWriter:
    """The one writer of trajectory files (flows, reduced flows, SGD runs and ensembles all go through it).

    Use: ``TrajectoryWriter(path, ...)`` (new file) or :meth:`TrajectoryWriter.resume` (continue a file), then
    :meth:`append` and :meth:`checkpoint` at each save, :meth:`close` at the end.

    Parameters
    ----------
    path : path-like
    kind : str
        "particle_flow", "reduced_flow", "sgd", "ensemble", ...
    config : dict
        The full configuration of the run (stored as JSON; checked when resuming).
    problem_spec : dict
        JSON description of the problem; ``problem_arrays`` its arrays.
    weights : array (m,)
    seed : int, optional
    overwrite : bool
        Replace an existing file (otherwise an existing file is an error and is left untouched).
    series_chunk_bytes : int
        Chunk size in bytes of the time series and small observables (:data:`SERIES_CHUNK_BYTES`).
    """

    def __init__(self, path, kind: str, config: dict, problem_spec: dict, problem_arrays: dict, weights,
                 seed: int | None = None, overwrite: bool = False, _resumed: bool = False,
                 series_chunk_bytes: int | None = None):
        self.path = Path(path)
        if not _resumed and self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} exists; pass overwrite=True (--overwrite) to replace it or "
                                  "resume=True (--resume) to continue it")
        if not _resumed and self.path.exists():
            _check_replaceable(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _acquire_lock(self.path)
        self.kind, self.config, self.seed = kind, config, seed
        self.problem_spec, self.problem_arrays = problem_spec, problem_arrays
        self.weights = np.asarray(weights, dtype=np.float64)
        self.series_chunk_bytes = SERIES_CHUNK_BYTES if series_chunk_bytes is None else int(series_chunk_bytes)
        self._file: h5py.File | None = None
        self._room: Room | None = None
        self._failure: str | None = None  # why a write failed (then nothing more is written)
        self.n_saved = 0
        self._latest: Checkpoint | None = None  # the last checkpoint written (the next one's backup)

    # -- creating ----------------------------------------------------------------------------------------------
    def _populate(self, f: h5py.File, observables: dict, particles: tuple[int, int] | None,
                  template: Checkpoint | None) -> None:
        """Create every dataset in the new file ``f``: the observables' shapes from ``observables``, particle
        snapshots of shape (m, d) = ``particles`` (None: none kept), checkpoint slots shaped like ``template``
        (None: none)."""
        f.attrs.update(format=FORMAT_NAME, format_version=FORMAT_VERSION, package_version=_package_version(),
                       kind=self.kind, created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       status=Status.RUNNING.value, seed=-1 if self.seed is None else int(self.seed),
                       config=json.dumps(self.config, default=_json_default), info="{}")
        prob = f.create_group("problem")
        prob.attrs["spec"] = json.dumps(self.problem_spec, default=_json_default)
        tgt = prob.create_group("target")
        for name, arr in self.problem_arrays.items():
            tgt.create_dataset(name, data=np.asarray(arr))
        rows = max(1, self.series_chunk_bytes // 8)
        for name in ("time", "risk"):
            f.create_dataset(f"series/{name}", shape=(0,), maxshape=(None,), dtype="f8", chunks=(rows,))
        for name, value in observables.items():
            value = np.asarray(value, dtype=np.float64)
            if value.size >= 64:  # arrays (e.g. weight matrices): one compressed snapshot per chunk, like particles
                opts = {"chunks": (1,) + value.shape, "compression": "gzip", "compression_opts": 1, "shuffle": True}
            else:
                opts = {"chunks": (max(1, self.series_chunk_bytes // (8 * max(1, value.size))),) + value.shape}
            f.create_dataset(f"observables/{name}", shape=(0,) + value.shape, maxshape=(None,) + value.shape,
                             dtype="f8", **opts)
        f.create_dataset("particles/weights", data=self.weights)
        if particles is not None:
            m, d, *outputs = particles  # (m, d) or (m, d, K) for K output weights per neuron
            opts = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
            a_shape = (m, *outputs)
            f.create_dataset("particles/a", shape=(0, *a_shape), maxshape=(None, *a_shape), dtype="f8",
                             chunks=(1, *a_shape), **opts)
            f.create_dataset("particles/b", shape=(0, m, d), maxshape=(None, m, d), dtype="f8", chunks=(1, m, d),
                             **opts)
        if template is not None:
            ckpt_format.create_slots(f, template)

    def start(self, observables: dict, particles: tuple[int, int] | None, template: Checkpoint):
        """Create the file's datasets (shapes from the first save) and switch to SWMR."""
        try:
            with new_file(self.path) as f:  # an existing file is replaced only when the new one is complete
                self._populate(f, observables, particles, template)
        except OSError as err:
            raise TrajectoryWriteError(err.errno, f"{self.path}: creating the file failed ({err}); nothing was "
                                       "written") from None
        self._open_append()

    @property
    def started(self) -> bool:
        """Whether the file's datasets exist (after the first save, or on a resumed file)."""
        return self._file is not None

    def _open_append(self):
        # libhdf5's own file lock is off: readers hold it shared, and the writer's exclusivity is the fcntl lock
        # on <path>.lock; the writer stays in SWMR mode until it closes, so readers never see a non-SWMR writer.
        self._file = h5py.File(self.path, "r+", libver="latest", locking=False)
        self._file.swmr_mode = True
        self._room = Room(self.path)
        self._save_bytes = sum(int(1.01 * ds.dtype.itemsize * np.prod(ds.chunks)) + 64
                               for ds in (self._file[name] for name in _snapshot_names(self._file)))

    def _reserve(self) -> None:
        """Room on disk for the next save, before any of it is written (:mod:`meanfield._room`)."""
        if self._failure is not None:
            raise TrajectoryWriteError(errno.EIO, self._failure)
        used = self._file.id.get_filesize()
        try:
            self._room.reserve(used, self._save_bytes + metadata_allowance(used))
        except DiskFullError as err:
            self._failure = (f"{self.path}: {err}; the run stopped before writing save {self.n_saved}, the file "
                             f"keeps the {self.n_saved} before; free some space, then resume it")
            raise DiskFullError(err.errno, self._failure) from None

    def _write_failed(self, err: Exception) -> TrajectoryWriteError:
        """Record a write that failed although its room was reserved (nothing more is written to the file)."""
        self._failure = (f"{self.path}: writing save {self.n_saved} failed ({err}); the file keeps the saves "
                         "before it")
        return TrajectoryWriteError(errno.EIO, self._failure)

    # -- writing -----------------------------------------------------------------------------------------------
    def append(self, t: float, risk: float, mu: ParticleMeasure | None, observables: dict) -> None:
        """Append one snapshot (the checkpoint is written separately, then everything is flushed).

        Raises :class:`DiskFullError` before writing anything when the save does not fit on disk."""
        self._reserve()
        f, i = self._file, self.n_saved
        rows = [("series/time", t), ("series/risk", risk)]
        rows += [(f"observables/{name}", value) for name, value in observables.items()]
        if mu is not None and "particles/a" in f:
            rows += [("particles/a", mu.a), ("particles/b", mu.coordinates())]
        try:
            for name, value in rows:
                f[name].resize(i + 1, axis=0)
                f[name][i] = value
        except (OSError, RuntimeError) as err:
            raise self._write_failed(err) from None
        self.n_saved = i + 1

    def checkpoint(self, ckpt: Checkpoint) -> None:
        """Write a new checkpoint (after the snapshot it belongs to), keeping the one it replaces as
        ``checkpoint/previous``, and flush the file.

        Ctrl-C waits until both are written. The backup is written and flushed before the new checkpoint, so a
        process killed at any point leaves at least one of the two intact (each carries its checksum)."""
        ckpt = ckpt.with_saved(self.n_saved)
        with deferred_interrupts():
            try:
                if self._latest is not None:
                    ckpt_format.write(self._file, "checkpoint/previous", self._latest)
                    self._file.flush()
                ckpt_format.write(self._file, "checkpoint", ckpt)
                self._file.flush()
            except (OSError, RuntimeError) as err:
                raise self._write_failed(err) from None
        self._latest = ckpt
        self._room.release(self._file.id.get_filesize())

    def close(self, status: str, info: dict | None = None) -> None:
        """Finish the file: record the final status and run information (still in SWMR mode, so that readers
        following the file are never in the way) and close it. After a failed write, ``info["error"]`` says why."""
        failure = None
        if self._file is not None:
            info = dict(info or {})
            if self._failure is not None:
                info.setdefault("error", self._failure)
            f, self._file = self._file, None
            try:
                # in place (a reader following the file sees the old value or the new one, never no attribute)
                f.attrs.modify("info", json.dumps(info, default=_json_default))
                f.attrs.modify("status", Status(status).value)
            except (OSError, RuntimeError) as err:
                failure = err
            finally:
                try:
                    f.close()
                    size = stored_size(self.path)
                except (OSError, RuntimeError) as err:
                    failure, size = failure or err, None
                self._room.close(size)
        if self._lock is not None:
            _release_lock(self._lock, self.path)
            self._lock = None
        if failure is not None and self._failure is None:
            raise TrajectoryWriteError(errno.EIO, f"{self.path}: closing the file failed ({failure}); its saves are "
                                       "kept, its status reads as interrupted") from None

    def __del__(self):
        if getattr(self, "_lock", None) is not None:
            try:
                self.close(Status.INTERRUPTED)
            except Exception:  # noqa: BLE001 - best effort at interpreter shutdown
                pass

    # -- resuming ----------------------------------------------------------------------------------------------
    @classmethod
    def _describing(cls, f: h5py.File, path: Path) -> TrajectoryWriter:
        """A writer (no lock, no open file yet) for the run stored in ``f``: its kind, configuration, seed, problem
        and masses (what resume and recovery write into a fresh file)."""
        writer = cls.__new__(cls)
        writer.path, writer._lock, writer._file, writer._room, writer._failure = path, None, None, None, None
        writer.series_chunk_bytes = SERIES_CHUNK_BYTES
        writer.kind, writer.config = str(f.attrs["kind"]), json.loads(f.attrs["config"])
        writer.seed = int(f.attrs["seed"]) if int(f.attrs["seed"]) >= 0 else None
        writer.problem_spec = json.loads(f["problem"].attrs["spec"])
        writer.problem_arrays = {name: ds[()] for name, ds in f["problem/target"].items()}
        writer.weights = f["particles/weights"][:]
        writer.n_saved, writer._latest = 0, None
        return writer

    @classmethod
    def resume(cls, path, config: dict, resumable=(), *, kind: str | None = None,
               problem_arrays: dict | None = None, weights=None, defaults: dict | None = None,
               t_end: float | None = None) -> tuple[TrajectoryWriter, Checkpoint]:
        """Reopen ``path`` to continue it: returns the writer and the last checkpoint.

        The run must be the same run: ``config`` must match the stored configuration in every entry, nested ones
        included, except the top-level keys in ``resumable``; an entry that one side lacks (a file written by an
        older version, or a setting it left out) stands for its value in ``defaults`` (dotted names, ``None`` when
        not there). When given, ``kind``, every target array in ``problem_arrays`` (compared by checksum with
        ``/problem/target``) and the particle masses ``weights`` must equal the file's, and the time ``t_end`` the
        run ends at may not be before the time its checkpoint reached. Anything else is refused with one line
        naming every difference, and the file is left as it was. The snapshots up to the checkpoint are copied to a
        fresh file that replaces the old one when complete (this also clears the open-for-write flag a crash leaves
        behind); the copy has no name until then, so a process killed meanwhile leaves the old file as it was and
        nothing else.
        """
        path = Path(path)
        lock = _acquire_lock(path)
        try:
            with _SharedRead(path) as f:
                stored = json.loads(f.attrs["config"])
                if _close_attr(f, "status", "unknown") == Status.DIVERGED:
                    t_last = float(f["series/time"][_series_length(f) - 1])
                    raise ValueError(f"cannot resume {path}: the run diverged after t = {t_last:.6g}, and resuming "
                                     "would take the same steps again; start a new run with a smaller step "
                                     "(overwrite=True, --overwrite)")
                diffs = _problem_differences(f, stored, config, resumable, kind, problem_arrays, weights,
                                             defaults or {})
                if diffs:
                    raise ValueError(f"cannot resume {path}: the configuration differs from the stored run "
                                     f"({'; '.join(diffs)}); "
                                     f"only {', '.join(k for k in resumable if k != 'user')} may change on resume: "
                                     "use a new output file, or --overwrite (overwrite=True) to replace this one")
                lacking = [f"observables/{name}" for name in config.get("observables") or ()
                           if f"observables/{name}" not in f]
                if lacking:  # the run would fail at its first save, after the file was rewritten
                    raise KeyError(", ".join(lacking))
                ckpt = ckpt_format.latest_intact(f)
                if ckpt is None:
                    raise TrajectoryFileError(
                        f"cannot resume {path}: it holds no intact checkpoint (none was written, or the process was "
                        "killed while writing it); load() still reads its snapshots; start a new run "
                        "(overwrite=True) to recompute it")
                if t_end is not None and ckpt.t > t_end:
                    raise ValueError(f"cannot resume {path} to end at t = {t_end:.6g}: the run already reached "
                                     f"t = {ckpt.t:.6g}; give a t_max of at least {ckpt.t:.6g} (or load() the file "
                                     "to read it)")
                writer = cls._describing(f, path)
                writer._lock = lock
                n = min(ckpt.n_saved, _series_length(f))
                if n != ckpt.n_saved:
                    raise TrajectoryFileError(f"cannot resume {path}: its checkpoint refers to snapshot "
                                              f"{ckpt.n_saved} but only {n} are stored; the file is corrupt")
                _copy_prefix(f, writer, n, ckpt, path)
            writer.n_saved, writer._latest = n, ckpt
            writer._open_append()
        except KeyError as err:  # a dataset or attribute the file should hold is missing: damaged, left as it is
            _release_lock(lock, path)
            raise TrajectoryFileError(f"cannot resume {path}: the file is damaged, it lacks an entry every "
                                      f"trajectory has ({_missing(err)}); it was left as it is; "
                                      f"`meanfield recover {path}` keeps what is intact") from None
        except BaseException:
            _release_lock(lock, path)
            raise
        return writer, ckpt


def _snapshot_names(f: h5py.File) -> list[str]:
    names = ["series/time", "series/risk"] + [f"particles/{n}" for n in ("a", "b") if f"particles/{n}" in f]
    return names + ([f"observables/{k}" for k in f["observables"]] if "observables" in f else [])


def _intact_prefix(f: h5py.File, n: int) -> int:
    """How many of the first ``n`` snapshots are intact in every dataset: each chunk that holds them lies wholly
    within the bytes on disk and decodes. (libhdf5 reads the missing end of a cut file as zeros, so a chunk that is
    only partly on disk would read back wrong without an error; its extent is checked first.)"""
    size = os.path.getsize(f.filename)
    return min((_intact_rows(_dataset(f, name), n, size) for name in _snapshot_names(f)), default=n)


def _intact_rows(ds: h5py.Dataset, n: int, size: int) -> int:
    """The number of leading rows (of the first ``n``) of a chunked dataset whose chunks are intact."""
    rows = ds.chunks[0]
    for start in range(0, n, rows):
        try:
            where = ds.id.get_chunk_info_by_coord((start,) + (0,) * (ds.ndim - 1))
            if where.byte_offset is None or where.byte_offset + where.size > size:
                return start
            ds[start:min(n, start + rows)]
        except (OSError, RuntimeError, KeyError, ValueError):
            return start
    return n


def _copy_prefix(f: h5py.File, writer: TrajectoryWriter, n: int, ckpt: Checkpoint | None, out: Path,
                 attrs: dict | None = None) -> None:
    """Write the first ``n`` snapshots of ``f`` and the checkpoint ``ckpt`` (None: none) to ``out``, a fresh file
    (of the current format version, root attributes ``attrs`` added) created by ``writer``, which replaces ``out``
    only once complete. Unreadable snapshots (a truncated or damaged file) raise a one-line
    :class:`TrajectoryFileError` that says how many are intact and how to keep them."""
    observables = {name: ds[0] for name, ds in f["observables"].items()} if "observables" in f else {}
    particles = (*f["particles/b"].shape[1:], *f["particles/a"].shape[2:]) if "particles/b" in f else None
    try:
        with new_file(out) as new:
            writer._populate(new, observables, particles, ckpt)
            _copy_rows(f, new, n, ckpt, writer.path)
            new.attrs["created"] = f.attrs["created"]
            new.attrs.update(attrs or {})
    except OSError as err:  # a full disk or a read-only folder: the new file never appears, the old one is as it was
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):  # the user's to fix: a one-line error (exit 2)
            raise PermissionError(err.errno, f"{out}: cannot write a copy of {writer.path} in its folder "
                                  f"({err.strerror}); {writer.path} is as it was; make the folder writable or copy "
                                  "the file to one that is") from None
        raise TrajectoryWriteError(err.errno, f"{out}: writing a copy of {writer.path} failed ({err}); {writer.path} "
                                   "is as it was; the copy needs about as much free space as the file") from None


def _copy_rows(f: h5py.File, new: h5py.File, n: int, ckpt: Checkpoint | None, path: Path) -> None:
    """The first ``n`` snapshots of ``f`` (the file at ``path``) and the checkpoint ``ckpt`` into ``new``."""
    names = _snapshot_names(f)
    for i0 in range(0, n, 64):
        i1 = min(n, i0 + 64)
        try:
            rows = {name: f[name][i0:i1] for name in names}
        except (OSError, RuntimeError, KeyError, ValueError):
            intact = _intact_prefix(f, n)
            raise TrajectoryFileError(
                f"cannot resume {path}: the file is damaged (truncated?): snapshots {intact} to {n - 1} cannot be "
                f"read, the {intact} before are intact; `meanfield recover {path}` (io.recover) keeps them in a new "
                "file") from None
        for name, value in rows.items():
            new[name].resize(i1, axis=0)
            new[name][i0:i1] = value
    if ckpt is not None:
        for slot in ckpt_format.SLOTS:
            ckpt_format.write(new, slot, ckpt)


def recover(path, out=None) -> Path:
    """Keep what is intact of a damaged trajectory file (truncated, or its writer killed mid-write) in a new file.

    The new file ``out`` (default ``<stem>.recovered.h5`` beside ``path``; never an existing file) holds every
    snapshot whose bytes are intact: the longest prefix whose chunks lie wholly within the file and decode, in every
    dataset (snapshots are laid out in the order they were saved, so a file cut at byte c keeps every snapshot that
    was complete when the file was c bytes long). When an intact checkpoint (the latest or its backup) belongs to
    that prefix, it is kept too, and the new file resumes bit-identically from it (status ``interrupted``);
    otherwise the new file only loads (status ``failed``; ``final`` is the last particle snapshot if particles were
    saved). ``path`` is left as it is.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    TrajectoryFileError
        If ``path`` cannot be opened at all, or not even the first snapshot is intact.

    Examples
    --------
    >>> import numpy as np, meanfield as mf, tempfile, pathlib
    >>> from meanfield.io import recover
    >>> run = pathlib.Path(tempfile.mkdtemp()) / "run.h5"
    >>> problem = mf.Problem(mf.LinearTarget(np.ones(3)), mf.Gaussian(d=3))
    >>> mf.simulate(problem, mf.init.sign_sphere(8, 3, seed=0), t_max=1.0, dt=0.1, path=run).close()
    >>> recover(run).name
    'run.recovered.h5'
    """
    path = Path(path)
    out = Path(out) if out is not None else path.with_name(path.stem + ".recovered.h5")
    if out.exists():
        raise FileExistsError(f"{out} exists; choose another output for the recovered run")
    with _open_read(path, allow_truncated=True) as f:
        total = _series_length(f)
        intact = _intact_prefix(f, total)
        if intact == 0:
            raise TrajectoryFileError(f"{path}: not even the first snapshot can be read; nothing to recover")
        usable = [c for c in (ckpt_format.read(f, slot) for slot in ckpt_format.SLOTS)
                  if c is not None and c.consistent and c.n_saved <= intact]
        ckpt = max(usable, key=lambda c: c.n_saved) if usable else None
        n = intact
        writer = TrajectoryWriter._describing(f, path)
        status = Status.INTERRUPTED if ckpt is not None else Status.FAILED
        info = {"recovered_from": str(path), "snapshots_kept": n, "snapshots_lost": total - n}
        _copy_prefix(f, writer, n, ckpt, out, {"status": status.value, "info": json.dumps(info)})
    return out


def array_checksum(array) -> str:
    """SHA-1 of an array's dtype, shape and bytes (how resume compares target arrays and initial states)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha1(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def _problem_differences(f: h5py.File, stored: dict, config: dict, resumable, kind, problem_arrays, weights,
                         defaults: dict) -> list[str]:
    """Every way the run described by the arguments differs from the run stored in ``f``, one phrase each."""
    diffs = []
    if kind is not None and str(f.attrs.get("kind")) != kind:
        diffs.append(f"the file holds a run of kind {str(f.attrs.get('kind'))!r}, this is a {kind!r} run")
    for key in sorted((set(stored) | set(config)) - set(resumable)):
        now = _canonical(config[key]) if key in config else _ABSENT
        diffs += _value_differences(key, stored.get(key, _ABSENT), now, _canonical(defaults))
    if problem_arrays is not None:
        held = {name: array_checksum(ds[()]) for name, ds in f["problem/target"].items()}
        now = {name: array_checksum(np.asarray(value)) for name, value in problem_arrays.items()}
        for name in sorted(set(held) | set(now)):
            if name not in held or name not in now:
                diffs.append(f"target array {name} is {'new' if name not in held else 'missing'}")
            elif held[name] != now[name]:
                diffs.append(f"target array {name} differs (checksum {held[name][:10]} in the file, "
                             f"{now[name][:10]} now)")
    if weights is not None:
        stored_w = f["particles/weights"][:]
        weights = np.asarray(weights, dtype=np.float64)
        if stored_w.shape != weights.shape or not np.array_equal(stored_w, weights):
            diffs.append(f"particle masses differ ({stored_w.shape[0]} stored, {weights.shape[0]} now)"
                         if stored_w.shape != weights.shape else "particle masses differ")
    return diffs


#: An entry one side of a comparison lacks (it then stands for its default).
_ABSENT = object()


def _value_differences(key: str, held, now, defaults: dict) -> list[str]:
    """Dotted names of the entries where two JSON values differ, with both values (short). An absent entry (an older
    file, or a setting left out) is compared as its value in ``defaults`` (dotted name → value; None otherwise)."""
    held = defaults.get(key) if held is _ABSENT else held
    now = defaults.get(key) if now is _ABSENT else now
    if isinstance(held, dict) and isinstance(now, dict):
        out = []
        for k in sorted(set(held) | set(now)):
            out += _value_differences(f"{key}.{k}", held.get(k, _ABSENT), now.get(k, _ABSENT), defaults)
        return out
    if held == now:
        return []
    return [f"{key}: file has {_short(held)}, now {_short(now)}"]


def _missing(err: KeyError) -> str:
    """What a KeyError of h5py says is missing, in a few words."""
    text = str(err.args[0]) if err.args else str(err)
    return text.strip("'\"")


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
    have passed ``t_end``, the time the run ends at (see :meth:`TrajectoryWriter.resume`).

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
        writer, checkpoint = TrajectoryWriter.resume(path, run_config, resumable, kind=kind, problem_arrays=arrays,
                                                     weights=weights, defaults=defaults, t_end=t_end)
    else:
        writer = TrajectoryWriter(path, kind, run_config, spec, arrays, weights, seed=seed, overwrite=overwrite)
    return FileRecorder(writer), checkpoint


def _canonical(value):
    return json.loads(json.dumps(value, default=_json_default, sort_keys=True))


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a trajectory configuration")
