"""The HDF5 trajectory format: one writer, one reader, crash recovery and resume.

Layout of a file (format ``meanfield-trajectory``, version 2; readable with plain h5py, ``swmr=True``)::

    /                      attrs: format, format_version, package_version, kind, created, status, seed,
                                  config (JSON), info (JSON, at the end of the run)
    /problem               attrs: spec (JSON: input law, target, activation)
    /problem/target/<name> the target's arrays (teacher c and U, subspace basis Q, ...)
    /series/time           (T,)      resizable along time
    /series/risk           (T,)
    /observables/<name>    (T, ...)  user observables, one row per save (arrays: one compressed row per chunk)
    /particles/weights     (m,)
    /particles/a           (T, m)    one snapshot per chunk, compressed (absent with SaveAt(particles=False))
    /particles/b           (T, m, d)  neurons b ([b | c] with biases; rings' [u | r] for a low-dimensional flow)
    /checkpoint/<name>     the stepping rule's state as named arrays (flow: a, b, n_evaluations, max_risk; SGD: a, b,
                           rng, max_risk; MLP: W0 …, W0.m1 …, W0.m2 …, optimizer_steps, initial_loss)
    /checkpoint/clock      (5,) t, step, n_saved, h, wall_time;  /checkpoint/checksum  () CRC-32 of the above
    /checkpoint/previous/  the same for the checkpoint before the latest (a backup)

(:mod:`meanfield.checkpoint`; version-1 files, whose checkpoint was one state matrix and a meta vector, are read and
resumed, and a resumed version-1 run is written in version 2.)

Writing discipline: every dataset exists before the file switches to SWMR mode; each save appends one row to the
series, then copies the current checkpoint to ``checkpoint/previous`` and flushes, then overwrites the checkpoint
and flushes again, all with Ctrl-C deferred. Each checkpoint carries a ``checksum`` (CRC-32 of its arrays and
clock), so after a process is killed while writing one, resuming takes the other, which is intact.
A process killed at any moment leaves a file that opens
(``h5py.File(path, "r", swmr=True)`` or :func:`load`) with every completed snapshot; readers use the shortest
series length. A writer holds an exclusive ``fcntl`` lock on ``<path>.lock`` (released by the kernel even on
SIGKILL), so a second writer is refused and a dead writer is told apart from a live one. Resuming copies the
snapshots up to the last checkpoint into a fresh file (clearing HDF5's open-for-write flag that a crash leaves
behind) and atomically replaces the old one.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np

from . import checkpoint as ckpt_format
from ._hdf5 import is_hdf5, open_swmr_read, truncation
from ._signals import deferred_interrupts
from .checkpoint import Checkpoint
from .measure import ParticleMeasure, measure_type
from .status import Status
from .trajectory import MemoryRecorder, Trajectory

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load", "FileTrajectory", "recover", "file_status", "recorder_for",
           "TrajectoryFileError", "FileBusyError"]

FORMAT_NAME = "meanfield-trajectory"
FORMAT_VERSION = 2


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
            with open_swmr_read(path) as f:
                if f.attrs.get("format") != FORMAT_NAME:
                    what = "is an HDF5 file but not a meanfield trajectory"
        except (OSError, RuntimeError) as err:
            what = f"is an HDF5 file that cannot be opened ({err})"
    if what is not None:
        raise FileExistsError(f"{path} exists and {what}: refusing to overwrite it; choose another output path, or "
                              "move it away yourself")


def _lock_path(path) -> Path:
    return Path(str(path) + ".lock")


def _acquire_lock(path):
    handle = open(_lock_path(path), "a+")  # noqa: SIM115 - held for the writer's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FileBusyError(f"{path} is being written by another process (lock {_lock_path(path)} is held); "
                            "wait for it to finish or stop it first") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _release_lock(handle, path) -> None:
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

    def __init__(self, path):
        self.path = path

    def __enter__(self) -> h5py.File:
        self.key = _reader_key(self.path)
        return _acquire_read(self.path)

    def __exit__(self, *exc):
        _release_read(self.key)


def _reader_key(path) -> tuple:
    path = Path(path).resolve()
    try:
        return path, os.stat(path).st_ino  # a file replaced on disk (resume, overwrite) gets a fresh handle
    except FileNotFoundError:
        return path, None


def _acquire_read(path) -> h5py.File:
    key = _reader_key(path)
    entry = _READERS.get(key)
    if entry is not None and entry[0].id.valid:
        entry[1] += 1
        return entry[0]
    f = _open_read(path)
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
        f = open_swmr_read(path)
    except OSError as err:
        raise TrajectoryFileError(f"{path} cannot be opened as HDF5 (not an HDF5 file, or corrupt or truncated): "
                                  f"{err}") from None
    try:
        _check_format(f, path)
    except TrajectoryFileError:
        f.close()
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        f.close()
        raise TrajectoryFileError(f"{path} is corrupt or truncated: {err}") from None
    cut = None if allow_truncated or is_locked(path) else truncation(path)
    if cut is not None:
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
        """Re-read the file: snapshots a running writer has added since, its status and final state."""
        return _fill_from_file(self, self._handle)

    def close(self) -> None:
        if self._handle is not None:
            _release_read(self._key)
            self._handle = None


def _fill_from_file(traj: Trajectory, f: h5py.File) -> Trajectory:
    names = [n for n in ("series/time", "series/risk", "particles/a", "particles/b") if n in f]
    names += [f"{slot}/{name}" for slot in ckpt_format.SLOTS if slot in f
              for name, d in f[slot].items() if isinstance(d, h5py.Dataset)]
    if "observables" in f:
        names += [f"observables/{k}" for k in f["observables"]]
    ds = {name: _dataset(f, name) for name in names}
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
    if ckpt is None and recovered and traj.a is not None and n:  # recovered without a checkpoint: last snapshot
        traj.final = traj.measure(n - 1)
    status = _close_attr(f, "status", "unknown")
    traj.status = Status.INTERRUPTED.value if status == Status.RUNNING and not is_locked(traj.path) else status
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
    """

    def __init__(self, path, kind: str, config: dict, problem_spec: dict, problem_arrays: dict, weights,
                 seed: int | None = None, overwrite: bool = False, _resumed: bool = False):
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
        self._file: h5py.File | None = None
        self.n_saved = 0
        self._latest: Checkpoint | None = None  # the last checkpoint written (the next one's backup)

    # -- creating ----------------------------------------------------------------------------------------------
    def _create(self, observables: dict, particles: tuple[int, int] | None, template: Checkpoint | None, tmp: Path):
        """A new file ``tmp`` with every dataset: the observables' shapes from ``observables``, particle snapshots
        of shape (m, d) = ``particles`` (None: none kept), checkpoint slots shaped like ``template`` (None: none)."""
        f = h5py.File(tmp, "w", libver="latest")
        f.attrs.update(format=FORMAT_NAME, format_version=FORMAT_VERSION, package_version=_package_version(),
                       kind=self.kind, created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       status=Status.RUNNING.value, seed=-1 if self.seed is None else int(self.seed),
                       config=json.dumps(self.config, default=_json_default), info="{}")
        prob = f.create_group("problem")
        prob.attrs["spec"] = json.dumps(self.problem_spec, default=_json_default)
        tgt = prob.create_group("target")
        for name, arr in self.problem_arrays.items():
            tgt.create_dataset(name, data=np.asarray(arr))
        for name in ("time", "risk"):
            f.create_dataset(f"series/{name}", shape=(0,), maxshape=(None,), dtype="f8", chunks=(1024,))
        for name, value in observables.items():
            value = np.asarray(value, dtype=np.float64)
            if value.size >= 64:  # arrays (e.g. weight matrices): one compressed snapshot per chunk, like particles
                opts = {"chunks": (1,) + value.shape, "compression": "gzip", "compression_opts": 1, "shuffle": True}
            else:
                opts = {"chunks": (int(max(1, min(1024, 2**12 // max(1, value.size)))),) + value.shape}
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
        return f

    def start(self, observables: dict, particles: tuple[int, int] | None, template: Checkpoint):
        """Create the file's datasets (shapes from the first save) and switch to SWMR."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self._create(observables, particles, template, tmp).close()
            os.replace(tmp, self.path)  # an existing file is replaced only now, when the new one is complete
        finally:
            tmp.unlink(missing_ok=True)
        self._open_append()

    @property
    def started(self) -> bool:
        """Whether the file's datasets exist (after the first save, or on a resumed file)."""
        return self._file is not None

    def _open_append(self):
        self._file = h5py.File(self.path, "r+", libver="latest")
        self._file.swmr_mode = True

    # -- writing -----------------------------------------------------------------------------------------------
    def append(self, t: float, risk: float, mu: ParticleMeasure | None, observables: dict) -> None:
        """Append one snapshot (the checkpoint is written separately, then everything is flushed)."""
        f, i = self._file, self.n_saved
        for name, value in (("series/time", t), ("series/risk", risk)):
            f[name].resize(i + 1, axis=0)
            f[name][i] = value
        for name, value in observables.items():
            ds = f[f"observables/{name}"]
            ds.resize(i + 1, axis=0)
            ds[i] = value
        if mu is not None and "particles/a" in f:
            f["particles/a"].resize(i + 1, axis=0)
            f["particles/a"][i] = mu.a
            f["particles/b"].resize(i + 1, axis=0)
            f["particles/b"][i] = mu.coordinates()
        self.n_saved = i + 1

    def checkpoint(self, ckpt: Checkpoint) -> None:
        """Write a new checkpoint (after the snapshot it belongs to), keeping the one it replaces as
        ``checkpoint/previous``, and flush the file.

        Ctrl-C waits until both are written. The backup is written and flushed before the new checkpoint, so a
        process killed at any point leaves at least one of the two intact (each carries its checksum)."""
        ckpt = ckpt.with_saved(self.n_saved)
        with deferred_interrupts():
            if self._latest is not None:
                ckpt_format.write(self._file, "checkpoint/previous", self._latest)
                self._file.flush()
            ckpt_format.write(self._file, "checkpoint", ckpt)
            self._file.flush()
        self._latest = ckpt

    def close(self, status: str, info: dict | None = None) -> None:
        """Finish the file: leave SWMR mode and record the final status and run information."""
        if self._file is not None:
            self._file.close()
            with h5py.File(self.path, "r+") as f:
                f.attrs["status"] = Status(status).value
                f.attrs["info"] = json.dumps(info or {}, default=_json_default)
            self._file = None
        if self._lock is not None:
            _release_lock(self._lock, self.path)
            self._lock = None

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
        writer.path, writer._lock, writer._file = path, None, None
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
        fresh file that replaces the old one (this also clears the open-for-write flag a crash leaves behind); the
        temporary file is removed whatever happens.
        """
        path = Path(path)
        lock = _acquire_lock(path)
        tmp = path.with_name(path.name + ".tmp")
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
                _copy_prefix(f, writer, n, ckpt, tmp)
            os.replace(tmp, path)
            writer.n_saved, writer._latest = n, ckpt
            writer._open_append()
        except KeyError as err:  # a dataset or attribute the file should hold is missing: damaged, left as it is
            _release_lock(lock, path)
            tmp.unlink(missing_ok=True)
            raise TrajectoryFileError(f"cannot resume {path}: the file is damaged, it lacks an entry every "
                                      f"trajectory has ({_missing(err)}); it was left as it is; "
                                      f"`meanfield recover {path}` keeps what is intact") from None
        except BaseException:
            _release_lock(lock, path)
            tmp.unlink(missing_ok=True)
            raise
        return writer, ckpt


def _snapshot_names(f: h5py.File) -> list[str]:
    names = ["series/time", "series/risk"] + [f"particles/{n}" for n in ("a", "b") if f"particles/{n}" in f]
    return names + ([f"observables/{k}" for k in f["observables"]] if "observables" in f else [])


def _intact_prefix(f: h5py.File, n: int) -> int:
    """How many of the first ``n`` snapshots can be read in every dataset (a truncated file loses chunks)."""
    names = _snapshot_names(f)
    for i in range(n):
        try:
            for name in names:
                f[name][i]
        except (OSError, RuntimeError, KeyError, ValueError):
            return i
    return n


def _copy_prefix(f: h5py.File, writer: TrajectoryWriter, n: int, ckpt: Checkpoint | None, tmp: Path) -> None:
    """Write the first ``n`` snapshots of ``f`` and the checkpoint ``ckpt`` (None: none) to ``tmp``, a fresh file
    (of the current format version) created by ``writer``. Unreadable snapshots (a truncated or damaged file) raise a
    one-line :class:`TrajectoryFileError` that says how many are intact and how to keep them."""
    observables = {name: ds[0] for name, ds in f["observables"].items()} if "observables" in f else {}
    particles = (*f["particles/b"].shape[1:], *f["particles/a"].shape[2:]) if "particles/b" in f else None
    with writer._create(observables, particles, ckpt, tmp) as new:
        names = _snapshot_names(f)
        try:
            for i0 in range(0, n, 64):
                i1 = min(n, i0 + 64)
                rows = {name: f[name][i0:i1] for name in names}
                for name, value in rows.items():
                    new[name].resize(i1, axis=0)
                    new[name][i0:i1] = value
        except (OSError, RuntimeError, KeyError, ValueError):
            intact = _intact_prefix(f, n)
            raise TrajectoryFileError(
                f"cannot resume {writer.path}: the file is damaged (truncated?): snapshots {intact} to {n - 1} cannot "
                f"be read, the {intact} before are intact; `meanfield recover {writer.path}` (io.recover) keeps them "
                "in a new file") from None
        if ckpt is not None:
            for slot in ckpt_format.SLOTS:
                ckpt_format.write(new, slot, ckpt)
        new.attrs["created"] = f.attrs["created"]


def recover(path, out=None) -> Path:
    """Keep what is intact of a damaged trajectory file (truncated, or its writer killed mid-write) in a new file.

    The new file ``out`` (default ``<stem>.recovered.h5`` beside ``path``; never an existing file) holds the longest
    prefix of snapshots that reads back in every dataset. When an intact checkpoint (the latest or its backup)
    belongs to that prefix, the prefix ends at it and the new file can be resumed bit-identically; otherwise it
    only loads (status ``failed``; ``final`` is the last particle snapshot if particles were saved). ``path`` is
    left as it is.

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
    tmp = out.with_name(out.name + ".tmp")
    with _open_read(path, allow_truncated=True) as f:
        total = _series_length(f)
        intact = _intact_prefix(f, total)
        if intact == 0:
            raise TrajectoryFileError(f"{path}: not even the first snapshot can be read; nothing to recover")
        usable = [c for c in (ckpt_format.read(f, slot) for slot in ckpt_format.SLOTS)
                  if c is not None and c.consistent and c.n_saved <= intact]
        ckpt = max(usable, key=lambda c: c.n_saved) if usable else None
        n = ckpt.n_saved if ckpt is not None else intact
        writer = TrajectoryWriter._describing(f, path)
        try:
            _copy_prefix(f, writer, n, ckpt, tmp)
            with h5py.File(tmp, "r+") as new:
                new.attrs["status"] = (Status.INTERRUPTED if ckpt is not None else Status.FAILED).value
                new.attrs["info"] = json.dumps({"recovered_from": str(path), "snapshots_kept": n,
                                                "snapshots_lost": total - n})
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
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
