"""Finite-width SGD against the mean-field flow, for a teacher target and for the odd target.

For widths m ∈ {64, 256, 1024, 4096}, batch sizes B ∈ {64, 512} and three initial seeds, every run is a configuration
run through meanfield.sweep (Dask LocalCluster, one HDF5 file per run):
* the exact flow from the initial particles (Euler steps dt = η, the deterministic counterpart of SGD's step);
* online SGD of the same network from the same particles (fresh batches, lr = m·η, t = steps·η);
* a wide reference flow (m = 8192, another seed) standing for the mean-field limit;
* for the odd target, everything again from mirror-symmetric (paired) starts.
Measured: ‖f_SGD − f_flow‖_{L²(ρ)} (closed form) over time, and its rate in B and in m at the final time; and
‖f_flow(m) − f_flow(8192)‖ at the final time, whose decay in m is the propagation of chaos (predicted ~ m^{-1/2});
and W₂ between the SGD and flow neuron clouds at the final time (POT: exact up to 3000 particles, sliced above).
Writes results/sgd_vs_flow/{teacher,odd,odd_paired}.png and summary.json; runs in results/runs/sgd_vs_flow/.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/sgd_vs_flow.py [--quick]
"""

import argparse
import json
from pathlib import Path

import matplotlib
from outputs import write_summary

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield import plot  # noqa: E402
from meanfield.compare import function_distance, wasserstein  # noqa: E402
from meanfield.config import build_problem, run_config, set_key  # noqa: E402
from meanfield.sweep import run_sweep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT, RUNS = ROOT / "results" / "sgd_vs_flow", ROOT / "results" / "runs" / "sgd_vs_flow"

TARGETS = {
    "teacher": {"inputs": {"law": "gaussian", "d": 10}, "target": {"kind": "teacher", "k": 3, "seed": 0},
                "eta": 0.05, "t_max": 20.0},
    "odd": {"inputs": {"law": "gaussian", "d": 10, "variance": 0.1}, "target": {"kind": "cubic", "seed": 0},
            "eta": 0.25, "t_max": 100.0},
}


def _base(spec, kind, widths, seeds, out_dir, batches=None, start="sign_sphere"):
    run = {"t_max": spec["t_max"], "save_every": 40, "backend": "numba"}
    run.update({"kind": "flow", "dt": spec["eta"], "solver": "euler"} if kind == "flow" else
               {"kind": "sgd", "eta": spec["eta"], "batch_size": 64, "seed": 0})
    grid = {"init.m": widths, "init.seed": seeds}
    if batches:
        grid["run.batch_size"] = batches
    return {"inputs": spec["inputs"], "target": spec["target"], "init": {"kind": start, "m": 64, "seed": 0},
            "run": run, "sweep": {"output_dir": str(out_dir), "grid": grid}}


def _paths(manifest):
    out = {}
    for run in manifest["runs"]:
        if run["status"] not in ("completed", "converged"):
            raise RuntimeError(f"run {run['id']} {run['status']}: {run.get('error')}")
        out[tuple(sorted(run["overrides"].items()))] = run["path"]
    return out


def _key(m, seed, batch=None):
    overrides = {"init.m": m, "init.seed": seed}
    if batch is not None:
        overrides["run.batch_size"] = batch
    return tuple(sorted(overrides.items()))


def study(name, spec, widths, seeds, batches, reference_m, start="sign_sphere"):
    tag = name if start == "sign_sphere" else f"{name}_{start}"
    flows = _paths(run_sweep(_base(spec, "flow", widths, seeds, RUNS / tag / "flow", start=start), n_workers=2,
                             retry_failed=True, progress=False))
    sgds = _paths(run_sweep(_base(spec, "sgd", widths, seeds, RUNS / tag / "sgd", batches, start=start),
                            n_workers=2, retry_failed=True, progress=False))
    reference = {k: v for k, v in _base(spec, "flow", widths, seeds, RUNS).items() if k != "sweep"}
    reference = set_key(set_key(reference, "init.m", reference_m), "init.seed", 99)
    ref_traj = run_config(reference, output=RUNS / name / f"reference_m{reference_m}.h5", resume=True)
    problem = build_problem(reference)
    key = _key
    curves, finals, w2 = {}, {}, {}
    for b in batches:
        for m in widths:
            per_seed = []
            for s in seeds:
                with mf.load(sgds[key(m, s, b)]) as sgd, mf.load(flows[key(m, s)]) as flow:
                    idx = range(0, len(sgd))
                    per_seed.append([function_distance(sgd.measure(i), flow.measure(i), problem.inputs,
                                                       backend="numba") for i in idx])
                    times = sgd.times[list(idx)]
                    w2.setdefault((m, b), []).append(wasserstein(sgd.final, flow.final))
            curves[(m, b)] = (times, np.mean(per_seed, axis=0))
            finals[(m, b)] = float(np.mean([p[-1] for p in per_seed]))
    with ref_traj:
        chaos = {}
        for m in widths:
            dists = []
            for s in seeds:
                with mf.load(flows[key(m, s)]) as flow:
                    dists.append(function_distance(flow.final, ref_traj.final, problem.inputs, backend="numba"))
            chaos[m] = float(np.mean(dists))
    slope_m = {b: float(np.polyfit(np.log(widths), np.log([finals[(m, b)] for m in widths]), 1)[0]) for b in batches}
    slope_b = {m: float(np.log(finals[(m, batches[-1])] / finals[(m, batches[0])]) / np.log(batches[-1] / batches[0]))
               for m in widths}
    slope_chaos = float(np.polyfit(np.log(widths), np.log([chaos[m] for m in widths]), 1)[0])

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), constrained_layout=True)
    for (m, b), (t, dist) in curves.items():  # t = 0 left out: both start from the same particles (distance 0)
        axes[0].semilogy(t[1:], dist[1:], ls="-" if b == batches[-1] else ":", label=f"m={m}, B={b}")
    axes[0].set_xlabel("t (mean-field time)")
    axes[0].set_ylabel("‖f_SGD − f_flow‖ (seed mean)")
    axes[0].legend(frameon=False, fontsize=7, ncol=2)
    for b in batches:
        axes[1].loglog(widths, [finals[(m, b)] for m in widths], "o-", label=f"SGD vs flow, B={b} "
                       f"(slope {slope_m[b]:.2f})")
    axes[1].loglog(widths, [chaos[m] for m in widths], "s--",
                   label=f"flow(m) vs flow({reference_m}) (slope {slope_chaos:.2f})")
    axes[1].set_xlabel("m")
    axes[1].set_ylabel(f"distance at t = {spec['t_max']:g}")
    axes[1].legend(frameon=False, fontsize=7)
    for m in widths:
        axes[2].loglog(batches, [finals[(m, b)] for b in batches], "o-", label=f"m={m} (slope {slope_b[m]:.2f})")
    axes[2].set_xlabel("batch size B")
    axes[2].legend(frameon=False, fontsize=7)
    fig.suptitle(f"{name} target, {start} start: SGD against the exact flow")
    plot.savefig(fig, OUT / f"{tag}.png")
    return {"start": start, "final_distance": {f"m={m},B={b}": v for (m, b), v in finals.items()},
            "final_w2_neurons": {f"m={m},B={b}": float(np.mean(v)) for (m, b), v in w2.items()},
            "w2_method": {str(m): "exact" if m <= 3000 else "sliced (a lower bound)" for m in widths},
            "slope_in_m": slope_m,
            "slope_in_batch": slope_b, "chaos_distance": chaos, "chaos_slope_in_m": slope_chaos,
            "eta": spec["eta"], "t_max": spec["t_max"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    widths, seeds, batches, ref = ([64, 256], [0, 1], [64, 512], 1024) if args.quick else \
        ([64, 256, 1024, 4096], [0, 1, 2], [64, 512], 8192)
    summary = {name: study(name, spec, widths, seeds, batches, ref) for name, spec in TARGETS.items()}
    # The odd target from a mirror-symmetric start (the flow then stays linear; does SGD?).
    summary["odd_paired"] = study("odd", TARGETS["odd"], widths, seeds, batches, ref, start="paired")
    summary = write_summary(OUT / "summary.json", summary, indent=2)     # what is printed is what was written
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
