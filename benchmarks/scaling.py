"""Time per Heun step and peak memory of the exact flow as the number of particles m grows, on every backend present:
m = 1000 · 2^k, each (backend, m) in a fresh process (so that its peak resident memory — or, on CUDA, the peak
allocated GPU memory — is its own), until a step takes longer than ``--max-seconds`` or m reaches ``--max-m``.
ReLU teacher of 3 neurons, Gaussian inputs, d = 100 (``--d``). Plots the log-log curves with the m² reference slope.

    python benchmarks/scaling.py                 # writes results/benchmarks/scaling.{json,png}
    python benchmarks/scaling.py --max-seconds 5 # a shorter sweep
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from _common import RESULTS, machine, write_json  # noqa: E402


def probe(backend: str, options: dict, m: int, d: int) -> dict:
    """One Heun step (two velocity evaluations and the update) at m particles, in this process: seconds (best of
    two after a warm-up on 256 particles) and peak memory."""
    from velocity import make_problem

    import meanfield as mf

    problem, mu = make_problem(m, d)
    bound = problem.bind(backend, **options)
    bk = bound.backend
    cuda = getattr(bk, "device", None) is not None and bk.device.type == "cuda"
    solver = mf.get_solver("heun")
    state, weights = bk.asarray(mu.state()), bk.asarray(mu.weights)
    bound.velocity(state[:256], weights[:256])

    def step():
        k1 = bound.velocity(state, weights)[0]
        solver.step(lambda y: bound.velocity(y, weights)[0], state, 0.01, k1)
        if cuda:
            import torch

            torch.cuda.synchronize()

    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
    else:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        if times[-1] > 20:
            break
    if cuda:
        import torch

        peak = int(torch.cuda.max_memory_allocated())
    else:
        with open("/proc/self/status") as fh:
            peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) * 1024
    return {"backend": backend + ("-cuda" if cuda else ""), "m": m, "d": d, "seconds_per_step": min(times),
            "peak_bytes": peak, "memory": "gpu_allocated" if cuda else "host_rss"}


def backends() -> list[tuple[str, dict]]:
    import torch

    out = [("numpy", {}), ("numba", {}), ("numba", {"dtype": "float32"}), ("torch", {"device": "cpu"})]
    if torch.cuda.is_available():
        out += [("torch", {"device": "cuda"}), ("torch", {"device": "cuda", "dtype": "float32"})]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--max-seconds", type=float, default=20.0, help="stop a backend once a step takes longer")
    parser.add_argument("--max-m", type=int, default=1_024_000)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        backend, options, m = json.loads(args.probe)
        print(json.dumps(probe(backend, options, m, args.d)))
        return

    rows = []
    for backend, options in backends():
        label = backend + ("-" + options["device"] if "device" in options else "") + (
            "-fp32" if options.get("dtype") == "float32" else "")
        m = 1000
        while m <= args.max_m:
            out = subprocess.run([sys.executable, __file__, "--d", str(args.d), "--probe",
                                  json.dumps([backend, options, m])], capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{label:16s} m = {m:8d}: failed ({out.stderr.strip().splitlines()[-1]})", flush=True)
                break
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["label"] = label
            rows.append(row)
            print(f"{label:16s} m = {m:8d}: {row['seconds_per_step']:9.3f} s per Heun step, peak "
                  f"{row['peak_bytes'] / 2**20:9.1f} MiB ({row['memory']})", flush=True)
            if row["seconds_per_step"] > args.max_seconds:
                break
            m *= 2
    path = write_json("scaling", {"machine": machine(), "d": args.d, "rows": rows})
    print(f"wrote {path}")
    plot(rows, args.d)


def plot(rows: list[dict], d: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    labels = sorted({r["label"] for r in rows}, key=[r["label"] for r in rows].index)
    for label in labels:
        sel = [r for r in rows if r["label"] == label]
        m = np.array([r["m"] for r in sel])
        left.loglog(m, [r["seconds_per_step"] for r in sel], "o-", label=label)
        right.loglog(m, [r["peak_bytes"] / 2**20 for r in sel], "o-", label=label)
    ms = np.array(sorted({r["m"] for r in rows}), dtype=float)
    fastest = min(rows, key=lambda r: r["seconds_per_step"] / r["m"] ** 2)
    left.loglog(ms, fastest["seconds_per_step"] * (ms / fastest["m"]) ** 2, "k--", lw=0.8, label="∝ m²")
    left.set(xlabel="particles m", ylabel="seconds per Heun step", title=f"time per step (ReLU, d = {d})")
    right.set(xlabel="particles m", ylabel="peak memory (MiB)", title="peak memory (host RSS or GPU allocated)")
    left.legend(fontsize=8)
    fig.savefig(RESULTS / "scaling.png", dpi=130)
    print(f"wrote {RESULTS / 'scaling.png'}")


if __name__ == "__main__":
    main()
