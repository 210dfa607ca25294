"""The one writer of trajectory files: reserve room, append a save, write its checkpoint, close with a status
(:mod:`meanfield.io` for the layout and the writing discipline)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import h5py
import numpy as np

from . import checkpoint as ckpt_format
from ._files import acquire_lock, check_replaceable, release_lock, snapshot_names
from ._hdf5 import new_file, stored_size
from ._room import DiskFullError, Room, TrajectoryWriteError, metadata_allowance
from ._schema import SERIES_CHUNK_BYTES, RunDescription, json_default
from ._signals import deferred_interrupts
from .checkpoint import Checkpoint
from .measure import ParticleMeasure
from .status import Status

__all__ = ["TrajectoryWriter"]


class TrajectoryWriter:
    """The one writer of trajectory files (flows, reduced flows, SGD runs and ensembles all go through it).

    Use: :meth:`TrajectoryWriter.create` (a new file) or :func:`meanfield._resume.resume` (continue a file), then
    :meth:`start` at the first save, :meth:`append` and :meth:`checkpoint` at each save, :meth:`close` at the end.

    Parameters
    ----------
    path : path-like
    description : RunDescription
        The run's kind, configuration, seed, problem and masses (:mod:`meanfield._schema`).
    lock
        The file's writer lock, held (:func:`meanfield._files.acquire_lock`); released by :meth:`close`.
    series_chunk_bytes : int
        Chunk size in bytes of the time series and small observables (:data:`SERIES_CHUNK_BYTES`).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.h5"
    >>> writer = TrajectoryWriter.create(path, "particle_flow", {}, {}, {}, np.full(2, 0.5))
    >>> writer.started, writer.n_saved
    (False, 0)
    >>> writer.close("interrupted")
    """

    def __init__(self, path, description: RunDescription, lock, *, series_chunk_bytes: int | None = None):
        self.path, self.description, self._lock = Path(path), description, lock
        self.series_chunk_bytes = SERIES_CHUNK_BYTES if series_chunk_bytes is None else int(series_chunk_bytes)
        self._file: h5py.File | None = None
        self._room: Room | None = None
        self._failure: str | None = None  # why a write failed (then nothing more is written)
        self.n_saved = 0
        self._latest: Checkpoint | None = None  # the last checkpoint written (the next one's backup)

    @classmethod
    def create(cls, path, kind: str, config: dict, problem_spec: dict, problem_arrays: dict, weights,
               seed: int | None = None, overwrite: bool = False, series_chunk_bytes: int | None = None):
        """The writer of a new file at ``path`` (created at the first save); an existing file is an error unless
        ``overwrite``, and even then only a meanfield trajectory is replaced. ``config`` is the run's full
        configuration (stored as JSON, checked on resume), ``problem_spec`` and ``problem_arrays`` describe the
        problem, ``weights`` are the particle masses."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it or "
                                  "resume=True (--resume) to continue it")
        if path.exists():
            check_replaceable(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        description = RunDescription(kind, config, seed, problem_spec, problem_arrays,
                                     np.asarray(weights, dtype=np.float64))
        return cls(path, description, acquire_lock(path), series_chunk_bytes=series_chunk_bytes)

    def start(self, observables: dict, particles: tuple[int, int] | None, template: Checkpoint):
        """Create the file's datasets (shapes from the first save) and switch to SWMR."""
        try:
            with new_file(self.path) as f:  # an existing file is replaced only when the new one is complete
                self.description.create_datasets(f, observables, particles, template, self.series_chunk_bytes)
        except OSError as err:
            raise TrajectoryWriteError(err.errno, f"{self.path}: creating the file failed ({err}); nothing was "
                                       "written") from None
        self._open_append()

    @property
    def started(self) -> bool:
        """Whether the file's datasets exist (after the first save, or on a resumed file)."""
        return self._file is not None

    def continue_file(self, n_saved: int, latest: Checkpoint) -> None:
        """Append to the complete file at :attr:`path` (a resumed run's fresh copy), which holds ``n_saved`` saves
        and, as its checkpoint, ``latest``."""
        self.n_saved, self._latest = n_saved, latest
        self._open_append()

    def _open_append(self):
        # libhdf5's own file lock is off: readers hold it shared, and the writer's exclusivity is the fcntl lock
        # on <path>.lock; the writer stays in SWMR mode until it closes, so readers never see a non-SWMR writer.
        self._file = h5py.File(self.path, "r+", libver="latest", locking=False)
        self._file.swmr_mode = True
        self._room = Room(self.path)
        self._save_bytes = sum(int(1.01 * ds.dtype.itemsize * np.prod(ds.chunks)) + 64
                               for ds in (self._file[name] for name in snapshot_names(self._file)))

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
                f.attrs.modify("info", json.dumps(info, default=json_default))
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
            release_lock(self._lock, self.path)
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
