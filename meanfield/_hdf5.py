"""Low-level HDF5 helpers for reading files that a crash or a cut copy may have damaged.

Two facts of libhdf5 shape this module. (1) An SWMR reader skips the end-of-file check that a plain open does, and
retries every metadata read that fails its checksum (100 attempts by default, as a reader of a live file must), so
reading a truncated file through SWMR can stall for minutes. Readers here therefore ask for one attempt: they
read files that are complete or being appended to, and a failed checksum is then real damage. (2) The superblock
(version 2 and 3, what ``libver="latest"`` writes) stores the end-of-file address, so truncation can be told from
the first bytes of the file without reading anything else.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
from collections.abc import Iterator
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


#: Offsets in a version-2/3 superblock written with 8-byte addresses (all this package writes): the file consistency
#: flags, the end-of-file address, and the checksum over the 44 bytes before it.
_FLAGS_AT, _EOF_AT, _SUPERBLOCK_CHECKED = 11, 28, 44


def _superblock(head: bytes) -> bool:
    return len(head) >= _SUPERBLOCK_CHECKED + 4 and head[:8] == SIGNATURE and head[8] in (2, 3) and head[9] == 8


def stored_size(path) -> int | None:
    """The file size its superblock records (base address + end-of-file address), or None for a superblock of another
    kind."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not _superblock(head):
        return None
    return struct.unpack_from("<Q", head, 12)[0] + struct.unpack_from("<Q", head, _EOF_AT)[0]


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, the checksum of HDF5's metadata (``H5_checksum_lookup3``).

    Examples
    --------
    >>> hex(lookup3(b""))       # lookup3's published value for the empty key
    '0xdeadbeef'
    >>> hex(lookup3(b"Four score and seven years ago"))
    '0x17770551'
    """
    mask = 0xFFFFFFFF

    def rot(x, k):
        return ((x << k) | (x >> (32 - k))) & mask

    a = b = c = (0xDEADBEEF + len(data) + initval) & mask
    if not data:
        return c
    padded = data + bytes(-len(data) % 12)
    words = struct.unpack(f"<{len(padded) // 4}I", padded)
    for i in range(0, len(words) - 3, 3):
        a, b, c = (a + words[i]) & mask, (b + words[i + 1]) & mask, (c + words[i + 2]) & mask
        a = ((a - c) & mask) ^ rot(c, 4); c = (c + b) & mask  # noqa: E702 - lookup3's mix, as published
        b = ((b - a) & mask) ^ rot(a, 6); a = (a + c) & mask  # noqa: E702
        c = ((c - b) & mask) ^ rot(b, 8); b = (b + a) & mask  # noqa: E702
        a = ((a - c) & mask) ^ rot(c, 16); c = (c + b) & mask  # noqa: E702
        b = ((b - a) & mask) ^ rot(a, 19); a = (a + c) & mask  # noqa: E702
        c = ((c - b) & mask) ^ rot(b, 4); b = (b + a) & mask  # noqa: E702
    a, b, c = (a + words[-3]) & mask, (b + words[-2]) & mask, (c + words[-1]) & mask
    c = (c ^ b) - rot(b, 14) & mask
    a = (a ^ c) - rot(c, 11) & mask
    b = (b ^ a) - rot(a, 25) & mask
    c = (c ^ b) - rot(b, 16) & mask
    a = (a ^ c) - rot(c, 4) & mask
    b = (b ^ a) - rot(a, 14) & mask
    return (c ^ b) - rot(b, 24) & mask


def write_flags(path) -> int | None:
    """The file consistency flags of the superblock (bit 0: open for writing, bit 2: open for SWMR writing; 0 once
    the writer closed it), or None for a superblock of another kind."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    return head[_FLAGS_AT] if _superblock(head) else None


def clear_write_flags(path) -> bool:
    """Clear the open-for-writing flags that a writer which died left in the superblock (what ``h5clear -s`` does):
    one byte and the superblock's checksum are rewritten. Only for a file no process writes. Returns False (and
    changes nothing) when the superblock is not one this package writes or its checksum does not match."""
    with open(path, "r+b") as handle:
        head = bytearray(handle.read(_SUPERBLOCK_CHECKED + 4))
        if not _superblock(head) or struct.unpack_from("<I", head, _SUPERBLOCK_CHECKED)[0] != lookup3(
                bytes(head[:_SUPERBLOCK_CHECKED])):
            return False
        head[_FLAGS_AT] = 0
        struct.pack_into("<I", head, _SUPERBLOCK_CHECKED, lookup3(bytes(head[:_SUPERBLOCK_CHECKED])))
        handle.seek(0)
        handle.write(head)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def refresh_object(obj) -> None:
    """Re-read an object's header (its attributes) from disk in an SWMR reader (``H5Orefresh``; h5py wraps it for
    datasets only). A no-op where libhdf5 cannot be found."""
    lib = _libhdf5()
    if lib is not None:
        lib.H5Orefresh.argtypes = [ctypes.c_int64]
        if lib.H5Orefresh(obj.id.id) < 0:
            raise OSError(f"cannot refresh {obj.name} of {obj.file.filename}")


@contextlib.contextmanager
def new_file(path) -> Iterator[h5py.File]:
    """``with new_file(path) as f``: a new HDF5 file (``libver="latest"``) that appears at ``path`` complete or not
    at all. It is written without a name (``O_TMPFILE``, through h5py's file-object driver), so a process killed
    meanwhile leaves nothing behind, and linked in place of ``path`` only when the block ends without an error.
    Where the filesystem cannot hold unnamed files, it is written to ``<path>.tmp``, removed on any error.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.h5")
    >>> with new_file(p) as f:
    ...     f["x"] = [1, 2]
    >>> sorted(os.listdir(os.path.dirname(p)))
    ['x.h5']
    """
    path = Path(path)
    try:
        fd = os.open(path.parent, os.O_TMPFILE | os.O_RDWR, 0o666)
    except (OSError, AttributeError):  # not Linux, or a filesystem without unnamed files
        fd = None
    if fd is None:
        tmp = path.with_name(path.name + ".tmp")
        try:
            with h5py.File(tmp, "w", libver="latest") as f:
                yield f
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return
    with os.fdopen(fd, "w+b") as handle:
        with h5py.File(handle, "w", libver="latest") as f:
            yield f
        handle.flush()
        named = path.with_name(f".{path.name}.{os.getpid()}.new")  # a name for the instant before the rename
        _link_descriptor(fd, named)
        try:
            os.replace(named, path)
        finally:
            named.unlink(missing_ok=True)


def _link_descriptor(fd: int, name: Path) -> None:
    """Give the unnamed file open as ``fd`` the name ``name``: ``linkat`` of its ``/proc/self/fd`` entry, followed
    (what open(2) documents for ``O_TMPFILE``; ``os.link`` does not follow it on Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, at_symlink_follow = -100, 0x400
    if libc.linkat(at_fdcwd, f"/proc/self/fd/{fd}".encode(), at_fdcwd, os.fsencode(name), at_symlink_follow) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(name))
