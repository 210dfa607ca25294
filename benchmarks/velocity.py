"""Pair interactions per second of one velocity evaluation, per backend, against two baselines measured in the
same run: (i) the numpy reference backend (a plain vectorised numpy implementation of the same closed forms,
tiled only so that it fits in memory) and (ii) the machine's fp64 matmul rate, as the fraction of the roofline
4 m² d / time (two length-d contractions per pair). Also the peak memory of one evaluation at m = 65 536,
d = 100 on the fastest CPU backend, measured in a fresh process. Then one row per activation at m = 4096, d = 10
(relu, abs, relu², relu³ through the pair-kernel path, erf, the Hermite units gelu and tanh with the order K their
tolerance chose — gelu also at tol 2e-9, where K = 32 — and biased relu and gelu neurons) on every backend, as
pairs/s and as the ratio to the ReLU's time on numba (the fastest ReLU path) in the same run.

    python benchmarks/velocity.py            # full table, writes results/benchmarks/velocity.json
    python benchmarks/velocity.py --quick    # m in {1024, 4096} only, no memory probe
    python benchmarks/velocity.py --units relu relu+bias --dims 10 100   # only the per-unit rows, numba only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from _common import best_time, machine, matmul_rate, write_json  # noqa: E402

import meanfield as mf  # noqa: E402


def make_problem(m: int, d: int, activation="relu"):
    """A teacher of three unit neurons and a sign-sphere start; "<unit>+bias" for biased teacher and neurons."""
    unit, _, biased = activation.partition("+")
    unit, _, tol = unit.partition("@")  # "gelu@2e-9": a Hermite unit at another tolerance (GELU: K = 32 at |b| = 1)
    unit = mf.activations.ACTIVATIONS[unit](tol=float(tol)) if tol else unit
    rng = np.random.default_rng(0)
    U = rng.standard_normal((3, d))
    bias = [0.3, -0.2, 0.1] if biased else None
    teacher = mf.TeacherNetwork(np.ones(3), U / np.linalg.norm(U, axis=1, keepdims=True), activation=unit, bias=bias)
    problem = mf.Problem(teacher, mf.Gaussian(d), activation=unit, bias=bool(biased))
    return problem, mf.init.sign_sphere(m, d, seed=1, bias_std=0.5 if biased else None)


def series_order(activation: str, m: int, d: int):
    """The Hermite order K a Mehler-series unit chose for the benchmark's measure (None for closed forms)."""
    problem, mu = make_problem(m, d, activation)
    problem.risk(mu, backend="numpy")
    return getattr(problem.unit, "last_order", None)


def backends():
    import torch

    out = [("numpy", {}), ("numba", {}), ("numba-fp32", {"dtype": "float32"}), ("torch-cpu", {"device": "cpu"})]
    if torch.cuda.is_available():
        out += [("torch-cuda", {"device": "cuda"}), ("torch-cuda-fp32", {"device": "cuda", "dtype": "float32"})]
    return out


def time_velocity(label: str, options: dict, m: int, d: int, activation="relu") -> float:
    problem, mu = make_problem(m, d, activation)
    bound = problem.bind(label.split("-")[0], **options)
    bk = bound.backend
    state, weights = bk.asarray(mu.state()), bk.asarray(mu.weights)
    sync = None
    if getattr(bk, "device", None) is not None and bk.device.type == "cuda":
        import torch

        sync = torch.cuda.synchronize

    calls = [0]

    def run():
        # A new state each call, as along a flow: nothing computed from the particles may be reused between calls.
        calls[0] += 1
        bound.velocity(state * (1.0 + 1e-12 * calls[0]), weights)
        if sync:
            sync()

    slow = label == "numpy" and m >= 16384
    return best_time(run, min_total=0.0 if slow else 0.5, max_repeats=1 if slow else 5)


def deviation_from_numpy(field, b, coef) -> float:
    """Largest deviation of ``field(b, coef) -> (value, gradient)`` (the self-field of the neurons b) from the numpy
    field, relative to the field's largest entry (value and gradient)."""
    value, gradient = field(b, coef)
    ref_value, ref_gradient = mf.get_backend("numpy").field(b, b, coef, 1.0)
    return float(max(np.abs(value - ref_value).max() / np.abs(ref_value).max(),
                     np.abs(gradient - ref_gradient).max() / np.abs(ref_gradient).max()))


def fp32_error(m: int, d: int) -> float:
    """The numba fp32 field's deviation from the numpy fp64 one at the benchmark's measure."""
    _, mu = make_problem(m, d)
    single = mf.get_backend("numba", dtype="float32")
    return deviation_from_numpy(lambda b, coef: single.field(b, b, coef, 1.0), mu.b, mu.weights * mu.a)


def keops_available() -> bool:
    try:
        import pykeops  # noqa: F401
    except ImportError:
        return False
    return True


class KeOpsReLUField:
    """The peer baseline: the same ReLU field written as one KeOps reduction (pykeops, the ``[bench]`` extra) —
    for unit rows u_j, norms n_j, coefficients c_k and cosines c_jk = ⟨u_j, u_k⟩ it reduces, per row j,
    [Σ_k c_k n_k k(c_jk), Σ_k c_k n_k sin θ_jk, Σ_k c_k k'(c_jk) b_k] (k the arc-cosine kernel) in one pass with linear
    memory, from which V and ∇V follow as in :func:`meanfield.kernels.field.kernel_field`."""

    def __init__(self, device: str = "cpu"):
        from pykeops.numpy import LazyTensor

        self.LazyTensor, self.device = LazyTensor, device

    def __call__(self, b, coef):
        lazy = self.LazyTensor
        norms = np.linalg.norm(b, axis=1)
        u = b / norms[:, None]
        cn = coef * norms
        ui, uj = lazy(u[:, None, :]), lazy(u[None, :, :])
        cnj, weighted = lazy(cn[None, :, None]), lazy((coef[:, None] * b)[None, :, :])
        c = (ui * uj).sum(-1).clamp(-1.0, 1.0)
        pi_minus_theta = np.pi - c.acos()
        sin = (1.0 - c * c).relu().sqrt()
        sums = (cnj * (sin + pi_minus_theta * c)).concat(cnj * sin).concat(pi_minus_theta * weighted)
        out = sums.sum(axis=1, backend="CPU" if self.device == "cpu" else "GPU") / (2 * np.pi)
        value = norms * out[:, 0]
        gradient = u * out[:, 1:2] + out[:, 2:]
        return value, gradient


def time_keops(m: int, d: int, device: str = "cpu") -> tuple[float, float]:
    """Seconds of the KeOps field at (m, d), and its largest deviation from our numpy field relative to the field's
    scale (the check that the peer computes the same thing)."""
    _, mu = make_problem(m, d)
    field = KeOpsReLUField(device)
    b, coef = mu.b, mu.weights * mu.a
    calls = [0]

    def run():
        calls[0] += 1
        field(b * (1.0 + 1e-12 * calls[0]), coef)

    seconds = best_time(run, min_total=0.0 if m >= 16384 else 0.5, max_repeats=1 if m >= 16384 else 5)
    error = deviation_from_numpy(field, b, coef) if m <= 4096 else float("nan")
    return seconds, error


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))


def memory_probe(m: int, d: int, backend: str) -> dict:
    """Run in a fresh process: resident memory before one velocity evaluation and its peak during it (Linux:
    the peak counter is reset through /proc/self/clear_refs just before the evaluation)."""
    import time

    problem, mu = make_problem(m, d)
    bound = problem.bind(backend)
    state, weights = bound.backend.asarray(mu.state()), bound.backend.asarray(mu.weights)
    bound.velocity(state[:256], weights[:256])  # compile / warm up on a small problem
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = _rss_kib("VmRSS") * 1024
    t0 = time.perf_counter()
    bound.velocity(state, weights)
    seconds = time.perf_counter() - t0
    peak = _rss_kib("VmHWM") * 1024
    return {"m": m, "d": d, "backend": backend, "peak_rss_bytes": peak, "rss_before_bytes": before,
            "increment_bytes": peak - before, "seconds": seconds, "state_bytes": 8 * m * (d + 1),
            "m_squared_matrix_bytes": 8 * m * m}


def profile_blas(m: int, d: int, gemm: float) -> dict:
    """Where the time of the numba BLAS strategy goes (the backend's own phase clock, ``profile=True``): cosine GEMMs,
    the vectorised transcendental pass, the gradient GEMMs, against the roofline 4 m² d / (fp64 GEMM rate)."""
    problem, mu = make_problem(m, d)
    bk = mf.get_backend("numba", profile=True)
    b, coef = mu.b, mu.weights * mu.a
    total = best_time(lambda: bk.field(b, b, coef, 1.0))
    out = {"m": m, "d": d, "tile": bk.tile, "panel": bk.panel, "total_s": total, "roofline_s": 4 * m * m * d / gemm,
           "phases": {}}
    print(f"profile of the numba BLAS strategy at m={m}, d={d} (tile {bk.tile} x {bk.panel}): field {total * 1e3:.1f} "
          f"ms, roofline {out['roofline_s'] * 1e3:.1f} ms")
    for name, phase in bk.last_profile.items():
        rate = phase["flops"] / phase["seconds"] / 1e9 if phase["flops"] else None
        out["phases"][name] = {"seconds": phase["seconds"], "gflops": rate}
        extra = f", {rate:.0f} GFLOP/s ({100 * rate * 1e9 / gemm:.0f}% of the square-GEMM rate)" if rate else ""
        print(f"  {name:20s} {phase['seconds'] * 1e3:8.1f} ms{extra}")
    return out


def unit_ratios(units, m: int, dims) -> list[dict]:
    """One velocity of each unit on numba at (m, d) for each d, as the ratio of its time to the ReLU's in the same
    run (the ReLU timed first at each d)."""
    rows = []
    for d in dims:
        relu = time_velocity("numba", {}, m, d)
        for unit in units:
            t = relu if unit == "relu" else time_velocity("numba", {}, m, d, unit)
            rows.append({"activation": unit, "m": m, "d": d, "seconds": t, "over_relu": t / relu})
            print(f"m={m} d={d:4d} {unit:12s} numba {t * 1e3:9.2f} ms  {t / relu:7.2f} x the ReLU's time", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--memory-probe", nargs=3, metavar=("M", "D", "BACKEND"), help=argparse.SUPPRESS)
    parser.add_argument("--units", nargs="+", metavar="UNIT",
                        help="only the per-unit rows for these units (e.g. relu relu+bias), on numba, against the "
                             "ReLU in the same run; nothing is written")
    parser.add_argument("--dims", nargs="+", type=int, default=[10], help="input dimensions of --units (default 10)")
    parser.add_argument("--m", type=int, default=4096, help="particles of --units (default 4096)")
    args = parser.parse_args(argv)
    if args.memory_probe:
        m, d, backend = args.memory_probe
        print(json.dumps(memory_probe(int(m), int(d), backend)))
        return
    if args.units:
        unit_ratios(args.units, args.m, args.dims)
        return

    sizes = [(m, d) for m in ((1024, 4096) if args.quick else (1024, 4096, 16384)) for d in (10, 100)]
    gemm, gemm32 = matmul_rate(), matmul_rate(dtype=np.float32)
    print(f"measured matmul rate: fp64 {gemm / 1e9:.1f} GFLOP/s, fp32 {gemm32 / 1e9:.1f} GFLOP/s")
    rows, keops = [], []
    for m, d in sizes:
        base = None
        for label, options in backends():
            t = time_velocity(label, options, m, d)
            base = t if label == "numpy" else base
            single = options.get("dtype") == "float32"
            row = {"backend": label, "m": m, "d": d, "seconds": t, "pairs_per_s": m * m / t,
                   "speedup_vs_numpy": base / t, "roofline_fraction": 4 * m * m * d / t / (gemm32 if single else gemm)}
            extra = ""
            if label == "numba-fp32":
                fp64 = next(r["seconds"] for r in rows if r["backend"] == "numba" and r["m"] == m and r["d"] == d)
                row["speedup_vs_numba_fp64"] = fp64 / t
                row["relative_error_vs_numpy"] = fp32_error(m, d) if m <= 4096 else float("nan")
                extra = (f"  x{fp64 / t:.2f} vs numba fp64, relative deviation from numpy "
                         f"{row['relative_error_vs_numpy']:.1e}")
            rows.append(row)
            print(f"m={m:6d} d={d:4d} {label:16s} {t * 1e3:10.2f} ms {m * m / t / 1e6:9.1f} Mpairs/s "
                  f"x{base / t:6.2f} vs numpy  {100 * row['roofline_fraction']:5.1f}% of "
                  f"{'fp32' if single else 'fp64'} matmul roofline{extra}", flush=True)
        if keops_available():
            import torch

            for device in ("cpu",) + (("cuda",) if torch.cuda.is_available() else ()):
                t, error = time_keops(m, d, device)
                ours = min(r["seconds"] for r in rows if r["m"] == m and r["d"] == d and "fp32" not in r["backend"]
                           and ("cuda" in r["backend"]) == (device == "cuda"))   # KeOps here is fp64
                keops.append({"m": m, "d": d, "device": device, "seconds": t, "pairs_per_s": m * m / t,
                              "relative_error_vs_numpy": error, "our_fastest_over_keops": t / ours})
                print(f"m={m:6d} d={d:4d} {'keops-' + device:16s} {t * 1e3:10.2f} ms {m * m / t / 1e6:9.1f} "
                      f"Mpairs/s; our fastest fp64 {device.upper()} backend is x{t / ours:.2f} faster; relative "
                      f"deviation from numpy {error:.1e}", flush=True)
    payload = {"machine": machine(), "matmul_flops": gemm, "matmul_flops_fp32": gemm32, "results": rows,
               "keops": keops, "activations": []}
    m, d = 4096, 10
    relu_numba = time_velocity("numba", {}, m, d)
    for activation in ("relu", "abs", "relu2", "relu3", "erf", "gelu", "gelu@2e-9", "tanh", "relu+bias", "gelu+bias"):
        order = series_order(activation, m, d)
        for label, options in backends():
            if label == "numba-fp32" and activation not in ("relu", "abs"):
                continue   # fp32 is the ReLU family's path; every other unit runs in fp64 on it
            t = time_velocity(label, options, m, d, activation)
            payload["activations"].append({"activation": activation, "backend": label, "m": m, "d": d, "seconds": t,
                                           "pairs_per_s": m * m / t, "relu_numba_over_this": relu_numba / t,
                                           "hermite_order": order})
            print(f"m={m} d={d} {activation:9s} {label:16s} {t * 1e3:9.2f} ms {m * m / t / 1e6:9.1f} Mpairs/s "
                  f"({relu_numba / t:5.3f} x the ReLU's numba speed)" + (f", K = {order}" if order else ""),
                  flush=True)
    payload["profile"] = profile_blas(4096, 100, gemm)
    if not args.quick:
        fastest = max((r for r in rows if r["m"] == 16384 and r["d"] == 100 and "cuda" not in r["backend"]),
                      key=lambda r: r["pairs_per_s"])["backend"].split("-")[0]
        out = subprocess.run([sys.executable, __file__, "--memory-probe", "65536", "100", fastest],
                             capture_output=True, text=True, check=True)
        mem = json.loads(out.stdout.strip().splitlines()[-1])
        payload["memory_m65536_d100"] = mem
        print(f"m=65536 d=100 on {fastest}: peak RSS {mem['peak_rss_bytes'] / 2**30:.2f} GiB "
              f"(+{mem['increment_bytes'] / 2**20:.0f} MiB during the evaluation; one m×m fp64 matrix would be "
              f"{mem['m_squared_matrix_bytes'] / 2**30:.0f} GiB), {mem['seconds']:.1f} s")
    print(f"wrote {write_json('velocity' if not args.quick else 'velocity_quick', payload)}")


if __name__ == "__main__":
    main()
