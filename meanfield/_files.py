"""Opening trajectory files safely: the writer's lock, the process's shared read handles, the format check, and which
snapshots of a file are intact (:mod:`meanfield.io` reads and writes through these)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import h5py

from ._hdf5 import clear_write_flags, is_hdf5, open_swmr_read, truncation, write_flags

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "TrajectoryFileError", "FileBusyError", "is_locked"]

#: The ``format`` attribute of every trajectory file (docs/file-format.md).
FORMAT_NAME = "meanfield-trajectory"


#: The ``format_version`` this version writes; files of version 1 are read too.
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


def package_version() -> str:
    from . import __version__

    return __version__


def check_replaceable(path: Path) -> None:
    """Refuse to overwrite anything at ``path`` that is not a meanfield trajectory (a folder, a text file, another
    program's HDF5 file); a damaged trajectory of ours (its format attribute readable) may be replaced."""
    what = None
    if not path.is_file():
        what = "is not a regular file"
    elif not is_hdf5(path):
        what = "is not an HDF5 file"
    else:
        try:
            shared = _READERS.get(reader_key(path))  # a handle this process holds (libhdf5 wants the same mode)
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


def lock_path(path) -> Path:
    return Path(str(path) + ".lock")


#: The writer locks this process holds (lock paths).
_HELD: set[Path] = set()


def acquire_lock(path):
    handle = open(lock_path(path), "a+")  # noqa: SIM115 - held for the writer's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FileBusyError(f"{path} is being written by another process (lock {lock_path(path)} is held); "
                            "wait for it to finish or stop it first") from None
    _HELD.add(lock_path(path).resolve())
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def release_lock(handle, path) -> None:
    _HELD.discard(lock_path(path).resolve())
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()
    try:
        os.remove(lock_path(path))
    except FileNotFoundError:
        pass


def is_locked(path) -> bool:
    """True while a live process holds the writer lock of ``path``."""
    if not lock_path(path).exists():
        return False
    with open(lock_path(path)) as handle:
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


class SharedRead:
    """``with SharedRead(path) as f``: the process's shared read handle of a trajectory file."""

    def __init__(self, path, allow_truncated: bool = False):
        self.path, self.allow_truncated = path, allow_truncated

    def __enter__(self) -> h5py.File:
        self.key = reader_key(self.path)
        return acquire_read(self.path, self.allow_truncated)

    def __exit__(self, *exc):
        release_read(self.key)


def reader_key(path) -> tuple:
    path = Path(path).resolve()
    try:
        return path, os.stat(path).st_ino  # a file replaced on disk (resume, overwrite) gets a fresh handle
    except FileNotFoundError:
        return path, None


def acquire_read(path, allow_truncated: bool = False) -> h5py.File:
    key = reader_key(path)
    entry = _READERS.get(key)
    if entry is not None and entry[0].id.valid:
        entry[1] += 1
        return entry[0]
    f = open_read(path, allow_truncated)
    _READERS[key] = [f, 1]
    return f


def release_read(key) -> None:
    entry = _READERS.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] <= 0:
        del _READERS[key]
        entry[0].close()


def open_read(path, allow_truncated: bool = False) -> h5py.File:
    """Open a trajectory file for reading, with errors that say what is wrong (use :func:`acquire_read`).

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
            total = series_length(f)
            intact = f"its first {intact_prefix(f, total)} of {total} snapshots are intact"
        except (OSError, RuntimeError, KeyError, ValueError):
            intact = "not even its snapshot count can be read"
        finally:
            f.close()
        raise TrajectoryFileError(f"{path} is corrupt or truncated ({cut[0]} of its {cut[1]} bytes are on disk): "
                                  f"{intact}; `meanfield recover {path}` keeps them in a new file")
    return f


def _written_elsewhere(path) -> bool:
    """Whether another process holds the writer lock of ``path`` (a writer of this process is not in the way)."""
    return is_locked(path) and lock_path(path).resolve() not in _HELD


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
                                  f"version {FORMAT_VERSION} that meanfield {package_version()} reads; "
                                  "upgrade meanfield")
    for name in ("series/time", "series/risk"):
        if name not in f:
            raise TrajectoryFileError(f"{path} is a meanfield trajectory without '{name}': the file is incomplete "
                                      "(its writer died before the first snapshot) or corrupt")


def close_attr(f: h5py.File, name: str, default: str) -> str:
    """A root attribute rewritten when the writer closes (``status``, ``info``): these are the last bytes written,
    so a file truncated after a run lost them first; such a file reads as ``default``."""
    try:
        return str(f.attrs.get(name, default))
    except (OSError, RuntimeError, KeyError):
        return default


def series_length(f: h5py.File) -> int:
    """Number of complete snapshots: the shortest per-save dataset (a crash can cut between appends)."""
    return min(dataset(f, name).shape[0] for name in snapshot_names(f))


def dataset(f: h5py.File, name: str) -> h5py.Dataset:
    """The one Dataset object of ``name`` in this read handle. HDF5 2.0's H5Drefresh, called while a second object
    of the same dataset is open, leaves every object of it reading stale rows; so a reader keeps one object per
    dataset (and :func:`load` one handle per file) and refreshes only that."""
    cache = f.__dict__.setdefault("_meanfield_datasets", {})
    if name not in cache:
        cache[name] = f[name]
    return cache[name]


def snapshot_names(f: h5py.File) -> list[str]:
    names = ["series/time", "series/risk"] + [f"particles/{n}" for n in ("a", "b") if f"particles/{n}" in f]
    return names + ([f"observables/{k}" for k in f["observables"]] if "observables" in f else [])


def intact_prefix(f: h5py.File, n: int) -> int:
    """How many of the first ``n`` snapshots are intact in every dataset: each chunk that holds them lies wholly
    within the bytes on disk and decodes. (libhdf5 reads the missing end of a cut file as zeros, so a chunk that is
    only partly on disk would read back wrong without an error; its extent is checked first.)"""
    size = os.path.getsize(f.filename)
    return min((_intact_rows(dataset(f, name), n, size) for name in snapshot_names(f)), default=n)


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
