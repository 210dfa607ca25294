"""The trade-off of the chunk size of the time series and small observables in trajectory files: what a cut copy
keeps, against file size and write and read time.

A file of T saves as a flow writes it (time, risk, four scalar observables, two 30-bin histograms, particles m = 200,
d = 6, a checkpoint per save), through :class:`meanfield.io.TrajectoryWriter`, for series chunks of 512 B (the
default), 4 KiB and 32 KiB. For each: the file size, the write time per save (room reservation, rows, checkpoint,
flushes), the time to load the file and read every series and observable, and the fraction of saves that
:func:`meanfield.io.recover` keeps from copies cut at 5 %, 10 %, …, 95 % of the file.

    python benchmarks/file_layout.py     # a few seconds; writes results/benchmarks/file_layout.json
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_json  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield.checkpoint import Checkpoint  # noqa: E402
from meanfield.io import TrajectoryFileError, TrajectoryWriter, recover  # noqa: E402

M, D = 200, 6
CUTS = np.round(np.arange(0.05, 0.96, 0.05), 2)


def write(path: Path, saves: int, chunk_bytes: int) -> float:
    """Write a file of ``saves`` saves; returns the mean wall time per save."""
    rng = np.random.default_rng(0)
    writer = TrajectoryWriter.create(path, "particle_flow", {}, {}, {}, np.full(M, 1.0 / M), overwrite=True,
                                     series_chunk_bytes=chunk_bytes)
    start = None
    for i in range(saves):
        mu = mf.ParticleMeasure(rng.standard_normal(M), rng.standard_normal((M, D)))
        observables = {name: np.float64(rng.standard_normal()) for name in ("mass_pos", "mass_neg", "angle",
                                                                            "misaligned")}
        observables |= {name: rng.standard_normal(30) for name in ("hist_pos", "hist_neg")}
        ckpt = Checkpoint(0.1 * i, i, 0.1, 0.0, {"a": mu.a, "b": mu.b, "max_risk": 1.0})
        if i == 0:
            writer.start(observables, (M, D), ckpt)
            start = time.perf_counter()
        writer.append(0.1 * i, 1.0 / (1 + i), mu, observables)
        writer.checkpoint(ckpt)
    per_save = (time.perf_counter() - start) / max(1, saves - 1)
    writer.close("completed")
    return per_save


def read_time(path: Path) -> float:
    start = time.perf_counter()
    with mf.load(path) as traj:
        np.asarray(traj.times), np.asarray(traj.risk)
        for values in traj.observables.values():
            np.asarray(values)
    return time.perf_counter() - start


def kept_fractions(path: Path, saves: int, tmp: Path) -> list[float]:
    data = path.read_bytes()
    kept = []
    for cut in CUTS:
        damaged = tmp / f"{path.stem}-cut{cut}.h5"
        damaged.write_bytes(data[: int(cut * len(data))])
        try:
            with mf.load(recover(damaged)) as traj:
                kept.append(len(traj) / saves)
        except TrajectoryFileError:
            kept.append(0.0)
    return kept


def main():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for saves in (11, 1000):
            for chunk_bytes in (512, 4096, 32768):
                path = tmp / f"T{saves}-{chunk_bytes}.h5"
                per_save = write(path, saves, chunk_bytes)
                row = {"saves": saves, "series_chunk_bytes": chunk_bytes, "file_bytes": path.stat().st_size,
                       "write_ms_per_save": 1e3 * per_save, "load_and_read_ms": 1e3 * read_time(path),
                       "cut_at": CUTS.tolist(), "kept_fraction": kept_fractions(path, saves, tmp)}
                rows.append(row)
                print(f"T = {saves:5d}, chunks of {chunk_bytes:5d} B: {row['file_bytes'] / 2**10:8.0f} KiB, "
                      f"{row['write_ms_per_save']:.2f} ms/save, read {row['load_and_read_ms']:.1f} ms; kept at "
                      "cuts 10/30/50/70/90 %: " + " ".join(f"{row['kept_fraction'][i]:.2f}" for i in (1, 5, 9, 13, 17)))
    path = write_json("file_layout", {"machine": machine(), "particles": {"m": M, "d": D}, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
