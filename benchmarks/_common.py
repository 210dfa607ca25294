"""Shared helpers of the benchmark scripts: timing, machine description, JSON output."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "results" / "benchmarks"


def best_time(fn, min_total: float = 0.5, max_repeats: int = 5) -> float:
    """Best wall time of ``fn()`` over repeats (after one warm-up call), stopping after ``min_total`` s."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < max_repeats and (not times or time.perf_counter() - start < min_total):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def matmul_rate(n: int = 4096, dtype=np.float64) -> float:
    """Measured GEMM rate of this machine (FLOP/s) from an n×n by n×n product, fp64 unless ``dtype`` says."""
    a, b = np.random.default_rng(0).standard_normal((2, n, n)).astype(dtype)
    return 2 * n**3 / best_time(lambda: a @ b, min_total=1.0)


def machine() -> dict:
    import numba
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "numpy": np.__version__, "numba": numba.__version__,
            "numba_threads": numba.get_num_threads(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
