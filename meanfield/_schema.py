"""The schema of a trajectory file: what describes a run (:class:`RunDescription`) and the datasets a new file is
created with (docs/file-format.md)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from . import checkpoint as ckpt_format
from ._files import FORMAT_NAME, FORMAT_VERSION, package_version
from .checkpoint import Checkpoint
from .status import Status

#: Bytes per chunk of the time series and of the small observables (a scalar's chunk holds 64 saves). Every chunk is
#: allocated when its first row is written, so the file's bytes follow the order of the saves, and a cut copy keeps
#: every save that was complete at the cut; what comes before the first save's particles (object headers, and one
#: chunk of each such dataset) is the part of a file that a cut anywhere inside loses whole
#: (``benchmarks/file_layout.py`` measures the trade-off of this size).
SERIES_CHUNK_BYTES = 512


def array_checksum(array) -> str:
    """SHA-1 of an array's dtype, shape and bytes (how resume compares target arrays and initial states)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha1(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def canonical(value):
    return json.loads(json.dumps(value, default=json_default, sort_keys=True))


def json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a trajectory configuration")


@dataclass(frozen=True)
class RunDescription:
    """What a trajectory file says about its run before any save: its kind ("particle_flow", "sgd", …), full
    configuration, seed, problem (JSON description and arrays) and particle masses — what a new file is created
    from, and what resume and recovery read back to write a fresh copy.

    Examples
    --------
    >>> import numpy as np
    >>> run = RunDescription("particle_flow", {"t_max": 1.0}, None, {"inputs": {"law": "gaussian", "d": 2}}, {},
    ...                      np.full(4, 0.25))
    >>> run.kind, run.weights.shape
    ('particle_flow', (4,))
    """

    kind: str
    config: dict
    seed: int | None
    problem_spec: dict
    problem_arrays: dict
    weights: np.ndarray

    @classmethod
    def from_file(cls, f: h5py.File) -> RunDescription:
        """The description stored in an open trajectory file."""
        seed = int(f.attrs["seed"])
        return cls(str(f.attrs["kind"]), json.loads(f.attrs["config"]), seed if seed >= 0 else None,
                   json.loads(f["problem"].attrs["spec"]), {name: ds[()] for name, ds in f["problem/target"].items()},
                   f["particles/weights"][:])

    def create_datasets(self, f: h5py.File, observables: dict, particles: tuple[int, ...] | None,
                        template: Checkpoint | None, series_chunk_bytes: int = SERIES_CHUNK_BYTES) -> None:
        """Create every dataset of a new file ``f``: the observables' shapes from ``observables`` (one save's values),
        particle snapshots of shape ``particles`` = (m, width) or (m, width, K) (None: none kept), checkpoint slots
        shaped like ``template`` (None: none)."""
        f.attrs.update(format=FORMAT_NAME, format_version=FORMAT_VERSION, package_version=package_version(),
                       kind=self.kind, created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       status=Status.RUNNING.value, seed=-1 if self.seed is None else int(self.seed),
                       config=json.dumps(self.config, default=json_default), info="{}")
        prob = f.create_group("problem")
        prob.attrs["spec"] = json.dumps(self.problem_spec, default=json_default)
        tgt = prob.create_group("target")
        for name, arr in self.problem_arrays.items():
            tgt.create_dataset(name, data=np.asarray(arr))
        rows = max(1, series_chunk_bytes // 8)
        for name in ("time", "risk"):
            f.create_dataset(f"series/{name}", shape=(0,), maxshape=(None,), dtype="f8", chunks=(rows,))
        for name, value in observables.items():
            value = np.asarray(value, dtype=np.float64)
            if value.size >= 64:  # arrays (e.g. weight matrices): one compressed snapshot per chunk, like particles
                opts = {"chunks": (1,) + value.shape, "compression": "gzip", "compression_opts": 1, "shuffle": True}
            else:
                opts = {"chunks": (max(1, series_chunk_bytes // (8 * max(1, value.size))),) + value.shape}
            f.create_dataset(f"observables/{name}", shape=(0,) + value.shape, maxshape=(None,) + value.shape,
                             dtype="f8", **opts)
        f.create_dataset("particles/weights", data=np.asarray(self.weights, dtype=np.float64))
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
