"""Exchangeability and kernel invariance of trained first layers (Tsuchida, Roosta & Gallagher 2019), for mean-field
flows and SGD runs of the same problems.

Four ensembles of S = 32 seeds (init.seed and the SGD sample seed varied together), each run a sweep (Dask, one HDF5
file per run), d = 8, m = 128, t ∈ [0, 20]:
* a teacher f* = Σ_{k=1,2} relu(u_k·x) (fixed random unit u_k; breaks rotation invariance);
* the radial target f* = |x| (rotation invariant), flows (Heun, dt = 0.05) and online SGD (η = 0.05, B = 64).
Streamed from the files over seeds (meanfield.weights.analysis.Ensemble), at every save:
* the ensemble-mean layer kernel k̂(x, y) = (1/m) Σ relu(b_i·x) relu(b_i·y) on probe pairs (zero-sum inputs at six
  angles, positive inputs at the angles arccos(j/4)) against the arc-cosine kernel with the same E|b|², as
  max |k̂ − k| / k(x, x) and in Monte-Carlo standard errors;
* the anisotropy of the neurons' second moment E[b bᵀ] (zero for a rotation-invariant law), the width-scaled
  within-row covariance d ĉ_row / v̂ of the rows [a | b], and at the end a row-permutation test of exchangeability.
Writes results/kernel_invariance/{kernel_drift.png, summary.json}; runs in results/runs/kernel_invariance/.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/kernel_invariance.py [--seeds 32]
"""

import argparse
from pathlib import Path

import matplotlib
from outputs import write_summary

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from meanfield import plot  # noqa: E402
from meanfield.sweep import run_sweep  # noqa: E402
from meanfield.weights.analysis import Ensemble, probe_pairs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT, RUNS = ROOT / "results" / "kernel_invariance", ROOT / "results" / "runs" / "kernel_invariance"
D, M, T_MAX, ETA = 8, 128, 20.0, 0.05
TARGETS = {"teacher": {"kind": "teacher", "k": 2, "seed": 0}, "radial": {"kind": "radial", "d_hidden": D}}


def sweep_config(target, kind, seeds):
    run = {"kind": kind, "t_max": T_MAX, "save_every": 40, "backend": "numba"}
    run.update({"dt": ETA, "solver": "heun"} if kind == "flow" else {"eta": ETA, "batch_size": 64, "mode": "online"})
    zipped = {"init.seed": list(range(seeds))}
    if kind == "sgd":
        zipped["run.seed"] = [1000 + s for s in range(seeds)]
    return {"name": f"{target}_{kind}", "inputs": {"law": "gaussian", "d": D}, "target": TARGETS[target],
            "init": {"kind": "sign_sphere", "m": M}, "run": run,
            "sweep": {"output_dir": str(RUNS / f"{target}_{kind}"), "zip": zipped}}


def analyse(ens, probes):
    out = {"time": ens.times.tolist()}
    stats = ens.statistics("neurons")
    out["row_scaled"], out["column_scaled"] = stats["row_scaled"].tolist(), stats["column_scaled"].tolist()
    out["anisotropy"] = ens.statistics("b")["anisotropy"].tolist()
    for kind, (x, y) in probes.items():
        k = ens.layer_kernel(x, y)
        scale = k["closed_form"] / k["cosine_closed_form"]  # √(k(x,x) k(y,y)) of the closed form
        out[f"drift_{kind}"] = np.max(np.abs(k["mean"] - k["closed_form"]) / scale, axis=1).tolist()
        out[f"noise_{kind}"] = np.max(2 * k["se"] / scale, axis=1).tolist()
        out[f"drift_se_{kind}"] = np.max(np.abs(k["mean"] - k["closed_form"]) / k["se"], axis=1).tolist()
        out[f"cosine_end_{kind}"] = k["cosine"][-1].tolist()
        out[f"cosine_arccos_{kind}"] = k["cosine_closed_form"][-1].tolist()
    out["permutation_p_end"] = ens.permutation_test("neurons", -1, n_permutations=199, seed=0)[1]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=32)
    args = parser.parse_args()
    zero_sum = probe_pairs(D, np.linspace(0.3, np.pi - 0.3, 6), "zero_sum", seed=1)
    positive = probe_pairs(D, np.arccos(np.arange(4) / 4), "positive")
    probes = {"zero_sum": zero_sum, "positive": positive}
    summary = {"d": D, "m": M, "t_max": T_MAX, "eta": ETA, "seeds": args.seeds,
               "probe_angles": {k: np.arccos(np.sum(x * y, axis=1)).round(4).tolist() for k, (x, y) in probes.items()}}
    for target in TARGETS:
        for kind in ("flow", "sgd"):
            cfg = sweep_config(target, kind, args.seeds)
            manifest = run_sweep(cfg, n_workers=2)
            failed = [r["id"] for r in manifest["runs"] if r["status"] not in ("completed", "converged")]
            if failed:
                raise RuntimeError(f"{cfg['name']}: runs {failed} did not complete")
            with Ensemble.from_sweep(cfg["sweep"]["output_dir"]) as ens:
                summary[f"{target}_{kind}"] = analyse(ens, probes)
            r = summary[f"{target}_{kind}"]
            print(f"{target:8s} {kind:4s}: kernel drift (zero-sum) {r['drift_zero_sum'][0]:.4f} -> "
                  f"{r['drift_zero_sum'][-1]:.4f} ({r['drift_se_zero_sum'][-1]:.1f} SE), positive "
                  f"{r['drift_positive'][-1]:.4f} ({r['drift_se_positive'][-1]:.1f} SE), anisotropy "
                  f"{r['anisotropy'][0]:.3f} -> {r['anisotropy'][-1]:.3f}, d·c_row/v {r['row_scaled'][-1]:+.3f}, "
                  f"permutation p {r['permutation_p_end']:.3f}")

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    labels = {f"{t}_{k}": f"{t}, {k}" for t in TARGETS for k in ("flow", "sgd")}
    for ax, key, ylabel in ((axes[0, 0], "drift_zero_sum", "max |k̂ − k_arccos| / k   (zero-sum probes)"),
                            (axes[0, 1], "drift_positive", "max |k̂ − k_arccos| / k   (positive probes)")):
        curves = {lbl: (summary[k]["time"], summary[k][key]) for k, lbl in labels.items()}
        bands = {lbl: (summary[k]["time"], summary[k][key.replace("drift", "noise")]) for k, lbl in labels.items()}
        plot.ensemble_curves(curves, ax=ax, ylabel=ylabel, logy=True, bands=bands, marker="o", ms=3)
        ax.set_title("layer kernel vs arc-cosine kernel (dotted: 2 SE)", fontsize=9)
    plot.ensemble_curves({lbl: (summary[k]["time"], summary[k]["anisotropy"]) for k, lbl in labels.items()},
                         ax=axes[1, 0], ylabel="anisotropy of E[b bᵀ]", logy=True, marker="o", ms=3)
    plot.ensemble_curves({lbl: (summary[k]["time"], summary[k]["row_scaled"]) for k, lbl in labels.items()},
                         ax=axes[1, 1], ylabel="d · ĉ_row / v̂  of rows [a | b]", marker="o", ms=3)
    plot.savefig(fig, OUT / "kernel_drift.png")
    OUT.mkdir(parents=True, exist_ok=True)
    write_summary(OUT / "summary.json", summary, indent=1)


if __name__ == "__main__":
    main()
