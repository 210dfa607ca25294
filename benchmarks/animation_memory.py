"""Peak memory of animating a long run: 2000 snapshots of m = 4096 neurons in d = 8, against the size of one snapshot.

The file is written through the package's writer (the same format a flow writes) with particle paths of a random
walk (integrating a flow of this size for 2000 saves would take far longer than the measurement and changes
nothing that is measured: the animation reads the snapshots, whatever made them). Each animation runs in a fresh
process, which reports its resident memory just before ``animate`` (after drawing one frame: matplotlib, h5py and
the file open) and its peak during the animation (``ru_maxrss``), so the growth is what the animation itself holds.
The same run animated with one frame every 10 snapshots (200 frames) shows whether the memory grows with the number
of frames.

    python benchmarks/animation_memory.py [--file long.h5]   # writes results/benchmarks/animation_memory.json

On this project's shared 2-core machine (load average ~16) writing the 501 MiB file took 194 s, the 201 frames 81 s
and the 2000 frames 658 s (drawing 4096 markers of different sizes dominates: ~0.2 s a frame there); ``--file`` keeps
the run's file at that path and reuses it on the next call.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json  # noqa: E402

M, D, SNAPSHOTS = 4096, 8, 2000

CHILD = """
import json, resource, sys, time, matplotlib
matplotlib.use("Agg")
import meanfield as mf
from meanfield.animate import animate
from meanfield.frames import render, snapshot_figure

def rss_mib():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024

path, out, stride = sys.argv[1], sys.argv[2], int(sys.argv[3])
with mf.load(path) as traj:
    render(snapshot_figure(traj, 0, size=(6, 3), dpi=60)[0])       # warm up: fonts, the canvas, a snapshot read
    before = rss_mib()
    start = time.perf_counter()
    animate(traj, out, stride=stride, size=(6, 3), dpi=60)
    wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rss_before_mib": before, "peak_rss_mib": peak, "wall_s": wall}))
"""


def write_run(path: Path) -> float:
    """The run's file: a random walk of the particles, one snapshot at a time through the trajectory writer."""
    from meanfield.checkpoint import Checkpoint
    from meanfield.io import TrajectoryWriter
    from meanfield.measure import ParticleMeasure

    rng = np.random.default_rng(0)
    a, b = rng.choice([-1.0, 1.0], M), rng.standard_normal((M, D)) / np.sqrt(D)
    writer = TrajectoryWriter.create(path, "particle_flow", {"t_max": 0.01 * (SNAPSHOTS - 1)},
                                     {"target": {"kind": "synthetic"}}, {}, np.full(M, 1.0 / M), overwrite=True)
    start = time.perf_counter()
    for i in range(SNAPSHOTS):
        mu = ParticleMeasure(a, b)
        ckpt = Checkpoint(t=0.01 * i, step=i, h=0.01, wall_time=0.0, arrays={"a": a, "b": b})
        if not writer.started:
            writer.start({}, (M, D), ckpt)
        writer.append(0.01 * i, float(np.exp(-0.002 * i)), mu, {})
        writer.checkpoint(ckpt)
        a = a + 0.01 * rng.standard_normal(M)
        b = b + 0.01 * rng.standard_normal((M, D)) / np.sqrt(D)
    writer.close("completed", {})
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, help="the run's file: reused when it exists, else written there")
    args = parser.parse_args(argv)
    snapshot_mib = M * (D + 1) * 8 / 2**20          # a (m,) and b (m, d) in float64
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or Path(tmp) / "long.h5"
        if not path.exists():
            written = write_run(path)
            print(f"wrote {SNAPSHOTS} snapshots of m = {M}, d = {D} ({path.stat().st_size / 2**20:.0f} MiB) in "
                  f"{written:.0f} s", flush=True)
        for stride in (10, 1):
            result = subprocess.run([sys.executable, "-c", CHILD, str(path), str(Path(tmp) / f"s{stride}.gif"),
                                     str(stride)], capture_output=True, text=True, check=True)
            row = json.loads(result.stdout.strip().splitlines()[-1])
            frames = len(range(0, SNAPSHOTS, stride)) + (0 if (SNAPSHOTS - 1) % stride == 0 else 1)
            row.update(stride=stride, frames=frames, growth_mib=row["peak_rss_mib"] - row["rss_before_mib"])
            row["growth_in_snapshots"] = row["growth_mib"] / snapshot_mib
            rows.append(row)
            print(f"{frames:5d} frames: resident {row['rss_before_mib']:.0f} MiB before, peak {row['peak_rss_mib']:.0f}"
                  f" MiB (+{row['growth_mib']:.1f} MiB = {row['growth_in_snapshots']:.1f} snapshots), "
                  f"{row['wall_s']:.0f} s", flush=True)
    payload = {"m": M, "d": D, "snapshots": SNAPSHOTS, "snapshot_mib": snapshot_mib,
               "all_snapshots_mib": snapshot_mib * SNAPSHOTS, "frame": "6 x 3 in at 60 dpi (360 x 180 px), GIF",
               "rows": rows}
    print(f"wrote {write_json('animation_memory', payload)}")


if __name__ == "__main__":
    main()
