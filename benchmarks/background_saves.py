"""Wall time of a flow that saves its particles at every step, with the saves written synchronously and on a
background thread (``simulate(..., background_saves=True)``), in one run, and the time the saves alone take (the
same run without a file). ReLU teacher, d = 100, numba, Heun; each case is the best of two runs.

    python benchmarks/background_saves.py    # writes results/benchmarks/background_saves.json
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_json  # noqa: E402
from velocity import make_problem  # noqa: E402

import meanfield as mf  # noqa: E402


def wall(problem, mu0, steps: int, path, background: bool) -> float:
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        mf.simulate(problem, mu0, t_max=0.01 * steps, dt=0.01, save_every=1, path=path, overwrite=True,
                    background_saves=background, alignment=False)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for m, steps in ((2048, 40), (8192, 10)):
            problem, mu0 = make_problem(m, 100)
            mf.simulate(problem, mu0, t_max=0.01, dt=0.01, alignment=False)   # compile
            compute = wall(problem, mu0, steps, None, False)
            sync = wall(problem, mu0, steps, Path(tmp) / "sync.h5", False)
            background = wall(problem, mu0, steps, Path(tmp) / "background.h5", True)
            row = {"m": m, "d": 100, "steps": steps, "saves": steps + 1, "no_file_s": compute, "synchronous_s": sync,
                   "background_s": background, "save_overhead_synchronous": sync / compute - 1,
                   "save_overhead_background": background / compute - 1}
            rows.append(row)
            print(f"m = {m:5d}, {steps} Heun steps, a save at every step: no file {compute:6.2f} s, synchronous saves "
                  f"{sync:6.2f} s (+{100 * row['save_overhead_synchronous']:.0f} %), background saves "
                  f"{background:6.2f} s (+{100 * row['save_overhead_background']:.0f} %)", flush=True)
    print(f"wrote {write_json('background_saves', {'machine': machine(), 'rows': rows})}")


if __name__ == "__main__":
    main()
