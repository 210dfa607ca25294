"""Room on disk for the next save of a trajectory file, reserved before libhdf5 writes any of it.

libhdf5 does not survive a write that fails: after ``ENOSPC`` (a full filesystem or quota) or ``EFBIG`` (the
process's file-size limit) it goes on with metadata that points at chunks never written, and may crash at the close.
So the writer asks the filesystem first: before each save the file is extended (``posix_fallocate``, which allocates
the blocks) to what the save can take, and afterwards shrunk back to what libhdf5 uses plus a small spare for the
close. A save that does not fit is refused before any byte of it is written, and the file stays as the previous save
left it.
"""

from __future__ import annotations

import errno
import os
import resource

__all__ = ["TrajectoryWriteError", "DiskFullError", "Room"]

#: Kept allocated past the data at all times: what closing the file (status, run information) writes.
CLOSE_SPARE = 64 * 2**10
#: What libhdf5 may add to a save besides the chunks: object headers, a new block of a chunk index (these grow
#: geometrically with the number of chunks, so the allowance grows with the file: 1/32 of it, at most 16 MiB).
METADATA_FIXED, METADATA_CAP = 64 * 2**10, 16 * 2**20

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class TrajectoryWriteError(OSError):
    """A write of a trajectory file failed; the run stopped and the file keeps every save written before.

    Examples
    --------
    >>> import errno
    >>> from meanfield.io import TrajectoryWriteError
    >>> str(TrajectoryWriteError(errno.EIO, "run.h5: the save of t = 1 failed"))
    'run.h5: the save of t = 1 failed'
    """

    def __str__(self) -> str:
        return self.strerror if self.strerror is not None else super().__str__()


class DiskFullError(TrajectoryWriteError):
    """The next save of a trajectory file does not fit: the filesystem is full, a quota or the process's file-size
    limit (``ulimit -f``) is reached. The run stops before writing it; the file keeps every earlier save.

    Examples
    --------
    >>> import errno
    >>> from meanfield.io import DiskFullError
    >>> DiskFullError(errno.ENOSPC, "run.h5: no room for the next save").errno == errno.ENOSPC
    True
    """


class Room:
    """The reserved space past the end of one file being written (opened for the writer's lifetime)."""

    def __init__(self, path):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY)

    def reserve(self, used: int, nbytes: int) -> None:
        """Make sure the blocks up to ``used + nbytes + CLOSE_SPARE`` are allocated (``used``: the bytes libhdf5
        has in use; ``nbytes``: the most one save writes); raise :class:`DiskFullError` if they cannot be."""
        end = used + nbytes + CLOSE_SPARE
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and end > limit:
            raise DiskFullError(errno.EFBIG, f"the file-size limit of this process (ulimit -f: {limit} bytes) leaves "
                                f"no room for the next save ({end} bytes needed)")
        try:
            os.posix_fallocate(self._fd, used, end - used)
        except OSError as err:
            if err.errno in _FULL:
                raise DiskFullError(err.errno, f"{os.strerror(err.errno).lower()}: no room for the next save "
                                    f"({end - used} bytes past the {used} in use)") from None
            raise

    def release(self, used: int) -> None:
        """Give back what the save did not use, keeping the spare for the close."""
        if os.fstat(self._fd).st_size > used + CLOSE_SPARE:
            os.ftruncate(self._fd, used + CLOSE_SPARE)

    def close(self, used: int | None) -> None:
        """Shrink the file to the ``used`` bytes of its closed HDF5 file (None: leave it) and stop reserving."""
        try:
            if used is not None and os.fstat(self._fd).st_size > used:
                os.ftruncate(self._fd, used)
        finally:
            os.close(self._fd)


def metadata_allowance(used: int) -> int:
    """Bytes of metadata one save may allocate on top of its chunks, for a file of ``used`` bytes."""
    return METADATA_FIXED + min(used // 32, METADATA_CAP)
