"""Depth and weight decay in the matrix-model study of trained weights (Hirst & Ramgoolam 2025, arXiv:2510.05218,
who vary initialisation, regularisation, depth and width; they train on MNIST, we on scikit-learn's 8×8 digits).

Ensembles of 48 bias-free ReLU MLPs 64 → 32 → … → 32 → 10, He Gaussian init, SGD (lr 0.05, batch 32, 30 epochs):
* weight decay λ ∈ {0, 1e-3, 1e-2} (L2, (λ/2)Σ|W|²) at 2 hidden layers (one square matrix W1);
* depth 2, 3 and 4 hidden layers at λ = 0 (1, 2 and 3 square matrices W1 … W_{L−1}, every one fitted).
The λ = 0, depth-2 setting is digits_matrix_models.py's "D = 32, Gaussian, SGD". For every square matrix, at every
save (every 3 epochs): the 13-parameter S_D-invariant model fitted by moment matching and its W₂ distance to the
initial law N(0, 2/D), against the sampling floor of 48 matrices; at epoch 0 and at the end, the cubic and quartic
invariants against the fitted model's predictions in units of the data's standard deviation (where departures from
Gaussianity show).
Writes results/digits_depth_decay/{w2.png, invariants.png, summary.json, table.md}; runs in
results/runs/digits_depth_decay/.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/digits_depth_decay.py [--seeds 48]
"""

import argparse
from pathlib import Path

import matplotlib
from outputs import write_summary, write_text

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from meanfield import plot  # noqa: E402
from meanfield.sweep import run_sweep  # noqa: E402
from meanfield.weights.analysis import Ensemble, SquareMatrixModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT, RUNS = ROOT / "results" / "digits_depth_decay", ROOT / "results" / "runs" / "digits_depth_decay"
WIDTH, EPOCHS, LR = 32, 30, 0.05
#: (hidden layers, weight decay)
SETTINGS = [(2, 0.0), (2, 1e-3), (2, 1e-2), (3, 0.0), (4, 0.0)]


def setting_key(depth, decay):
    return f"depth{depth}_decay{decay:g}"


def sweep_config(depth, decay, seeds):
    return {"name": f"digits_{setting_key(depth, decay)}", "run": {"kind": "mlp"},
            "mlp": {"width": WIDTH, "depth": depth, "init": "gaussian", "optimizer": "sgd", "lr": LR,
                    "weight_decay": decay, "batch_size": 32, "epochs": EPOCHS, "save_every": 3},
            "sweep": {"output_dir": str(RUNS / setting_key(depth, decay)), "zip": {"mlp.seed": list(range(seeds))}}}


def sampling_floor(model, n, draws=20):
    w2 = [model.wasserstein(SquareMatrixModel.fit(model.sample(n, seed=k))) for k in range(draws)]
    return float(np.mean(w2)), float(np.std(w2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=48)
    args = parser.parse_args()
    iid = SquareMatrixModel.iid(WIDTH, 2.0 / WIDTH)
    floor = sampling_floor(iid, args.seeds)
    summary = {"seeds": args.seeds, "epochs": EPOCHS, "width": WIDTH, "lr": LR, "data": "scikit-learn digits (8×8), "
               "not the paper's MNIST", "w2_floor": floor, "settings": {}}
    invariant_rows = {}
    for depth, decay in SETTINGS:
        cfg = sweep_config(depth, decay, args.seeds)
        manifest = run_sweep(cfg, n_workers=2)
        failed = [r["id"] for r in manifest["runs"] if r["status"] != "completed"]
        if failed:
            raise RuntimeError(f"{cfg['name']}: runs {failed} did not complete")
        key = setting_key(depth, decay)
        res = {"depth": depth, "weight_decay": decay, "matrices": {}}
        with Ensemble.from_sweep(cfg["sweep"]["output_dir"]) as ens:
            res["epochs"] = ens.times.tolist()
            res["test_accuracy_end"] = float(np.mean([ens.array("test_accuracy", k, -1) for k in range(len(ens))]))
            for layer in range(1, depth):
                name = f"W{layer}"
                fits = ens.fit_over_time(SquareMatrixModel, name)
                rows = {f"epoch {int(ens.times[i])}": ens.compare_invariants(fits[i], name, index=i) for i in (0, -1)}
                invariant_rows[f"{key}, {name}"] = rows
                deviations = {lbl: {r["name"]: r["deviation"] for r in rs} for lbl, rs in rows.items()}
                end = rows[f"epoch {EPOCHS}"]
                res["matrices"][name] = {
                    "w2_to_iid": [iid.wasserstein(f) for f in fits],
                    "w2_to_epoch0": [fits[0].wasserstein(f) for f in fits],
                    "invariant_deviation": deviations,
                    "max_abs_cubic_end": max(abs(r["deviation"]) for r in end if r["degree"] == 3),
                    "max_abs_quartic_end": max(abs(r["deviation"]) for r in end if r["degree"] == 4),
                }
                m = res["matrices"][name]
                print(f"depth {depth}, λ = {decay:g}, {name}: test acc {res['test_accuracy_end']:.3f}; W2(fit, iid) "
                      f"{m['w2_to_iid'][0]:.3f} -> {m['w2_to_iid'][-1]:.3f} (floor {floor[0]:.3f} ± {floor[1]:.3f}); "
                      f"max |dev| at the end: cubic {m['max_abs_cubic_end']:.2f}, "
                      f"quartic {m['max_abs_quartic_end']:.2f}")
        summary["settings"][key] = res

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True, sharey=True)
    groups = {"weight decay (depth 2, W1)": [k for k in summary["settings"] if k.startswith("depth2")],
              "depth (λ = 0, every square matrix)": [k for k in summary["settings"] if k.endswith("decay0")]}
    for ax, (title, keys) in zip(axes, groups.items()):
        curves = {f"{k.replace('_', ', ')}, {name}": (summary["settings"][k]["epochs"], m["w2_to_iid"])
                  for k in keys for name, m in summary["settings"][k]["matrices"].items()
                  if title.startswith("depth") or name == "W1"}
        bands = {label: (times, [floor[0] + 2 * floor[1]] * len(times)) for label, (times, _) in curves.items()}
        plot.ensemble_curves(curves, ax=ax, ylabel="W₂(fit, N(0, 2/D))", bands=bands, xlabel="epoch", marker="o",
                             ms=3)
        ax.set_title(f"{title}  (dotted: sampling floor + 2 sd)", fontsize=9)
    plot.savefig(fig, OUT / "w2.png")

    cols = 4
    nrows = -(-len(invariant_rows) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 4.2 * nrows), constrained_layout=True, sharey=True,
                             squeeze=False)
    for ax in axes.flat[len(invariant_rows):]:
        ax.set_visible(False)
    for ax, (label, rows) in zip(axes.flat, invariant_rows.items()):
        plot.invariant_deviations(rows, ax=ax)
        ax.set_title(label.replace("_", ", "), fontsize=8)
    plot.savefig(fig, OUT / "invariants.png")
    write_summary(OUT / "summary.json", summary, indent=1)
    write_text(OUT / "table.md", table(summary))


def table(summary) -> str:
    floor = summary["w2_floor"]
    lines = [f"Digits (scikit-learn, 8×8), not the paper's MNIST; D = {WIDTH}, {summary['seeds']} seeds, "
             f"{EPOCHS} epochs; W₂ sampling floor {floor[0]:.3f} ± {floor[1]:.3f}.", "",
             "| hidden layers | weight decay | matrix | test accuracy | W₂(fit, N(0, 2/D)) epoch 0 → end | "
             "max \\|dev\\| cubic (end) | max \\|dev\\| quartic (end) |",
             "| ---: | ---: | --- | ---: | --- | ---: | ---: |"]
    for res in summary["settings"].values():
        for name, m in res["matrices"].items():
            lines.append(f"| {res['depth']} | {res['weight_decay']:g} | {name} | {res['test_accuracy_end']:.3f} | "
                         f"{m['w2_to_iid'][0]:.3f} → {m['w2_to_iid'][-1]:.3f} | {m['max_abs_cubic_end']:.2f} | "
                         f"{m['max_abs_quartic_end']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
