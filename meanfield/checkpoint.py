"""The checkpoint of a run in a trajectory file: the stepping rule's state as named arrays, and the run loop's clock.

Layout (format version 2) of ``/checkpoint`` (the latest) and ``/checkpoint/previous`` (the one before, a backup)::

    <name>      the stepping rule's arrays, by name: a flow's a, b, n_evaluations, max_risk; an SGD run's a, b,
                rng (the generator's bytes), max_risk; an MLP's W0 … WL, their optimiser moments W0.m1, W0.m2, …,
                optimizer_steps and initial_loss
    clock       (5,) t, step, n_saved, h, wall_time: where the run loop stands (the same fields for every kind)
    checksum    ()   CRC-32 of the arrays (by name) and the clock, written last

A process killed while writing a checkpoint leaves it inconsistent with its checksum; readers then take the backup.
Version-1 files (a state matrix [a | b] or, for MLPs, one flat parameter-and-moment vector, beside a 9-entry meta
vector) are read by converting them to the same named arrays.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field, replace

import h5py
import numpy as np

__all__ = ["Checkpoint"]  # the rest (slots, write, read) is the file layer's, used by meanfield.io

CLOCK = ("t", "step", "n_saved", "h", "wall_time")
SLOTS = ("checkpoint", "checkpoint/previous")
_RESERVED = {"clock", "checksum", "previous"}


@dataclass(frozen=True)
class Checkpoint:
    """Where a run stands: the loop's clock (``t``, ``step``, ``h``, ``wall_time``, ``n_saved`` snapshots written)
    and the stepping rule's state ``arrays`` (name → array; scalars are 0-d arrays).

    ``consistent`` is False for a checkpoint read back that does not match its checksum (half-written).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.checkpoint import Checkpoint
    >>> ckpt = Checkpoint(t=1.5, step=15, h=0.1, wall_time=2.0, arrays={"state": np.ones(3)})
    >>> ckpt.arrays["state"].dtype, ckpt.checksum() == Checkpoint(1.5, 15, 0.1, 2.0, {"state": np.ones(3)}).checksum()
    (dtype('float64'), True)
    """

    t: float
    step: int
    h: float
    wall_time: float
    arrays: dict = field(default_factory=dict)
    n_saved: int = 0
    consistent: bool = True

    def __post_init__(self):
        clash = _RESERVED.intersection(self.arrays)
        if clash:
            raise ValueError(f"checkpoint array names {sorted(clash)} are reserved; rename them")
        # As stored: numbers in float64 (scalars as 0-d arrays), bytes (a generator's state) in uint8; own copies.
        object.__setattr__(self, "arrays", {name: _as_array(value) for name, value in self.arrays.items()})

    def clock(self) -> np.ndarray:
        return np.array([self.t, self.step, self.n_saved, self.h, self.wall_time], dtype=np.float64)

    def checksum(self) -> float:
        """CRC-32 of every array (in name order, name included) and of the clock; exact in a float64."""
        crc = 0
        for name in sorted(self.arrays):
            crc = zlib.crc32(name.encode(), crc)
            crc = zlib.crc32(np.ascontiguousarray(self.arrays[name]).tobytes(), crc)
        return float(zlib.crc32(self.clock().tobytes(), crc))

    def with_saved(self, n_saved: int) -> Checkpoint:
        return replace(self, n_saved=int(n_saved))


def _as_array(value) -> np.ndarray:
    arr = np.array(value)
    return arr if arr.dtype == np.uint8 else arr.astype(np.float64)


def create_slots(f: h5py.File, template: Checkpoint) -> None:
    """Create both checkpoint slots with the shapes and dtypes of ``template`` (before the file goes SWMR)."""
    for slot in SLOTS:
        for name, value in template.arrays.items():
            f.create_dataset(f"{slot}/{name}", shape=value.shape, dtype=value.dtype)
        f.create_dataset(f"{slot}/clock", data=np.full(len(CLOCK), np.nan))
        f.create_dataset(f"{slot}/checksum", data=np.nan)


def write(f: h5py.File, slot: str, ckpt: Checkpoint) -> None:
    """Overwrite ``slot`` with ``ckpt``: arrays, clock, and the checksum last."""
    for name, value in ckpt.arrays.items():
        f[f"{slot}/{name}"][...] = value
    f[f"{slot}/clock"][...] = ckpt.clock()
    f[f"{slot}/checksum"][()] = ckpt.checksum()


def read(f: h5py.File, slot: str = "checkpoint") -> Checkpoint | None:
    """The checkpoint in ``slot`` ("checkpoint" or "checkpoint/previous"), None if it was never written."""
    if slot not in f:
        return None
    group = f[slot]
    if "meta" in group:
        return _read_version_1(f, slot)
    clock = group["clock"][:]
    if math.isnan(clock[1]):
        return None
    arrays = {name: ds[()] for name, ds in group.items()
              if isinstance(ds, h5py.Dataset) and name not in _RESERVED}
    t, step, n_saved, h, wall = clock.tolist()
    ckpt = Checkpoint(t, int(step), h, wall, arrays, int(n_saved))
    return replace(ckpt, consistent=float(group["checksum"][()]) == ckpt.checksum())


def latest_intact(f: h5py.File) -> Checkpoint | None:
    """The latest intact checkpoint: the last one, or the backup when the last is half-written (a writer killed,
    or still writing it); None when there is none."""
    for slot in SLOTS:
        ckpt = read(f, slot)
        if ckpt is not None and ckpt.consistent:
            return ckpt
    return None


_V1_META = ("t", "step", "n_saved", "h", "n_evaluations", "wall_time", "max_risk", "seed", "checksum")


def _read_version_1(f: h5py.File, slot: str) -> Checkpoint | None:
    """A version-1 checkpoint as named arrays (how the current code checkpoints the same run)."""
    meta = dict(zip(_V1_META, f[f"{slot}/meta"][:].tolist()))
    if math.isnan(meta["step"]):
        return None
    state = f[f"{slot}/state"][:]
    rng = f[f"{slot}/rng_state"][:] if f"{slot}/rng_state" in f else None
    crc = zlib.crc32(np.ascontiguousarray(state, dtype=np.float64).tobytes())
    crc = crc if rng is None else zlib.crc32(bytes(rng), crc)
    consistent = math.isnan(meta.get("checksum", math.nan)) or meta["checksum"] == float(crc)
    if str(f.attrs.get("kind")) == "mlp":
        shapes = [tuple(s) for s in json.loads(f["problem"].attrs["spec"])["architecture"]]
        names = [f"W{i}{suffix}" for suffix in ("", ".m1", ".m2") for i in range(len(shapes))]
        sizes = [math.prod(s) for s in shapes] * 3
        pieces = np.split(state[0], np.cumsum(sizes)[:-1])
        arrays = {name: piece.reshape(shape) for name, piece, shape in zip(names, pieces, shapes * 3)}
        arrays.update(optimizer_steps=np.float64(meta["n_evaluations"]), initial_loss=np.float64(meta["max_risk"]))
    else:
        from .network import spec_particle_type

        particles = spec_particle_type(json.loads(f["problem"].attrs["spec"])).from_state(state)
        arrays = {**particles.arrays(), "max_risk": np.float64(meta["max_risk"])}
        if not math.isnan(meta["n_evaluations"]):
            arrays["n_evaluations"] = np.float64(meta["n_evaluations"])
        if rng is not None:
            arrays["rng"] = rng
    return Checkpoint(meta["t"], int(meta["step"]), meta["h"], meta["wall_time"], arrays, int(meta["n_saved"]),
                      consistent)
