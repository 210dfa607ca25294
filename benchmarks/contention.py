"""A flow on a shared machine: the same run alone and beside a busy process, with and without the thread policy.

On a 2-core machine a second CPU-bound process leaves one core to the flow; multi-threaded BLAS then waits for its
descheduled partner thread at every small product. ``meanfield.threads`` (policy "auto") gives BLAS only the idle
cores when a run starts. This script times 50 Heun steps of a teacher flow (m = 512, d = 20; and m = 4096, d = 100
on numba) in four settings — alone / beside a busy process × policy "all" (BLAS as configured, the old behaviour)
/ "auto" — and prints each time as a ratio to the same run alone with "auto" (measured in the same run).

    python benchmarks/contention.py          # writes results/benchmarks/contention.json
"""

from __future__ import annotations

import multiprocessing
import sys
import time

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from _common import best_time, machine, write_json  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield import threads  # noqa: E402

CASES = [("numba", 512, 20, 50), ("numpy", 512, 20, 50), ("numba", 4096, 100, 5)]


def _spin(stop):
    while not stop.is_set():
        pass


def run_case(backend: str, m: int, d: int, steps: int) -> float:
    problem = mf.Problem(mf.TeacherNetwork(np.ones(3), np.eye(d)[:3]), mf.Gaussian(d=d))
    mu0 = mf.init.sign_sphere(m, d, seed=0)
    return best_time(lambda: mf.simulate(problem, mu0, t_max=0.1 * steps, dt=0.1, save_every=steps,
                                         backend=backend), min_total=1.0, max_repeats=3)


def main() -> None:
    rows = []
    for backend, m, d, steps in CASES:
        times = {}
        for busy in (False, True):
            stop = multiprocessing.Event()
            spinner = multiprocessing.Process(target=_spin, args=(stop,), daemon=True) if busy else None
            if spinner is not None:
                spinner.start()
                time.sleep(0.3)
            try:
                for policy in ("all", "auto"):
                    threads.set_policy(policy)
                    times[(busy, policy)] = run_case(backend, m, d, steps)
            finally:
                if spinner is not None:
                    stop.set()
                    spinner.join()
        base = times[(False, "auto")]
        row = {"backend": backend, "m": m, "d": d, "steps": steps, "alone_auto_s": base,
               **{f"{'busy' if b else 'alone'}_{p}_ratio": t / base for (b, p), t in times.items()}}
        rows.append(row)
        print(f"{backend:6s} m = {m:5d} d = {d:3d}: alone {base:.3f} s; ratio to alone/auto — alone/all "
              f"{row['alone_all_ratio']:.2f}, busy/all {row['busy_all_ratio']:.2f}, "
              f"busy/auto {row['busy_auto_ratio']:.2f}")
    threads.set_policy("auto")
    path = write_json("contention", {"machine": machine(), "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
