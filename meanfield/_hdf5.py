"""Low-level HDF5 helpers for reading files that a crash or a cut copy may have damaged.

Two facts of libhdf5 shape this module. (1) An SWMR reader skips the end-of-file check that a plain open does, and
retries every metadata read that fails its checksum (100 attempts by default, as a reader of a live file must), so
reading a truncated file through SWMR can stall for minutes. Readers here therefore ask for one attempt: they
read files that are complete or being appended to, and a failed checksum is then real damage. (2) The superblock
(version 2 and 3, what ``libver="latest"`` writes) stores the end-of-file address, so truncation can be told from
the first bytes of the file without reading anything else.
"""

from __future__ import annotations

import ctypes
import struct
from functools import lru_cache
from pathlib import Path

import h5py

SIGNATURE = b"\x89HDF\r\n\x1a\n"


@lru_cache(maxsize=1)
def _libhdf5():
    """The libhdf5 that h5py loaded (Linux: found in the process's memory map), or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libhdf5" in line and "_hl" not in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
            lib.H5Pset_metadata_read_attempts.argtypes = [ctypes.c_int64, ctypes.c_uint]
            return lib
        except (OSError, AttributeError):
            continue
    return None


def open_swmr_read(path) -> h5py.File:
    """``h5py.File(path, "r", swmr=True)`` whose failed metadata reads raise at once instead of being retried.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.h5")
    >>> with h5py.File(p, "w", libver="latest") as f:
    ...     f["x"] = [1, 2]
    >>> with open_swmr_read(p) as f:
    ...     f["x"][:].tolist()
    [1, 2]
    """
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_fclose_degree(h5py.h5f.CLOSE_STRONG)
    # No HDF5 file lock: a reader's shared lock makes the writer's own reopen of the file (to record its final
    # status) fail with EAGAIN, so a reader polling a live run could kill it at its end. A reader needs no lock: it
    # only reads, and a file open for writing without SWMR already refuses it through the superblock's flags.
    fapl.set_file_locking(False, True)
    lib = _libhdf5()
    if lib is not None:
        lib.H5Pset_metadata_read_attempts(fapl.id, 1)
    fid = h5py.h5f.open(str(path).encode(), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)


def truncation(path) -> tuple[int, int] | None:
    """(bytes on disk, bytes the superblock says the file has) when the file is shorter than its superblock says,
    else None (also for superblock versions 0 and 1, which this package does not write).

    Examples
    --------
    >>> truncation(__file__) is None
    True
    """
    with open(path, "rb") as handle:
        head = handle.read(64)
        size = handle.seek(0, 2)
    if len(head) < 12 or head[:8] != SIGNATURE or head[8] not in (2, 3):
        return None
    offsets = head[9]
    start = 12 + 2 * offsets  # signature, version, sizes, flags, then base and extension addresses
    if offsets != 8 or len(head) < start + offsets:
        return None
    base, eof = struct.unpack_from("<Q", head, 12)[0], struct.unpack_from("<Q", head, start)[0]
    stored = base + eof
    return (size, stored) if stored > size else None


def is_hdf5(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(8) == SIGNATURE
