"""Permutation-invariant Gaussian matrix models of trained weights (Hirst & Ramgoolam 2025) on a real data set.

Ensembles of bias-free ReLU MLPs 64 → D → D → 10 (one square hidden matrix W1, D×D) trained by SGD (lr 0.05,
batch 32, 30 epochs) on scikit-learn's 8×8 digits, 48 seeds per setting, for widths D ∈ {16, 32} and two i.i.d.
initialisations of variance 2/fan_in (He): Gaussian and uniform; and one Adam ensemble (lr 1e-3, D = 32, Gaussian)
to compare optimisers. Each setting is a sweep (Dask, one HDF5 file per
run, weights saved every 3 epochs). Streamed from the files over seeds, at every save:
* the 13-parameter S_D-invariant model of W1 (moment matching) and its W₂ distance to the i.i.d. Gaussian of the
  initialisation, N(0, 2/D) (closed form by irrep), against the sampling floor: W₂ between that Gaussian and fits
  of 48 matrices drawn from it (mean ± sd over 20 draws);
* the 5-parameter S_D × S_64-invariant model of the input layer W0 (D×64) and its W₂ to N(0, 2/64);
* at epoch 0 and at the end, the cubic and quartic invariants of W1 against the fitted model's predictions, in
  units of the data's standard deviation.
Writes results/digits_matrix_models/{w2.png, invariants.png, summary.json}; runs in
results/runs/digits_matrix_models/.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/digits_matrix_models.py [--seeds 48]
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
from meanfield.weights.analysis import Ensemble, RectangularMatrixModel, SquareMatrixModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT, RUNS = ROOT / "results" / "digits_matrix_models", ROOT / "results" / "runs" / "digits_matrix_models"
EPOCHS = 30
#: (width, init, optimizer, learning rate)
SETTINGS = [(16, "gaussian", "sgd", 0.05), (16, "uniform", "sgd", 0.05), (32, "gaussian", "sgd", 0.05),
            (32, "uniform", "sgd", 0.05), (32, "gaussian", "adam", 1e-3)]


def setting_key(width, init, optimizer):
    return f"w{width}_{init}" + ("" if optimizer == "sgd" else f"_{optimizer}")


def sweep_config(width, init, optimizer, lr, seeds):
    key = setting_key(width, init, optimizer)
    return {"name": f"digits_{key}", "run": {"kind": "mlp"},
            "mlp": {"width": width, "depth": 2, "init": init, "optimizer": optimizer, "lr": lr, "batch_size": 32,
                    "epochs": EPOCHS, "save_every": 3},
            "sweep": {"output_dir": str(RUNS / key), "zip": {"mlp.seed": list(range(seeds))}}}


def sampling_floor(model, n, draws=20):
    w2 = [model.wasserstein(type(model).fit(model.sample(n, seed=k))) for k in range(draws)]
    return float(np.mean(w2)), float(np.std(w2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=48)
    args = parser.parse_args()
    summary = {"seeds": args.seeds, "epochs": EPOCHS, "settings": {}}
    invariant_rows = {}
    floors = {}
    for width, init, optimizer, lr in SETTINGS:
        iid_w1, iid_w0 = SquareMatrixModel.iid(width, 2.0 / width), RectangularMatrixModel.iid((width, 64), 2.0 / 64)
        if width not in floors:
            floors[width] = sampling_floor(iid_w1, args.seeds), sampling_floor(iid_w0, args.seeds)
        floor_w1, floor_w0 = floors[width]
        cfg = sweep_config(width, init, optimizer, lr, args.seeds)
        manifest = run_sweep(cfg, n_workers=2)
        failed = [r["id"] for r in manifest["runs"] if r["status"] != "completed"]
        if failed:
            raise RuntimeError(f"{cfg['name']}: runs {failed} did not complete")
        with Ensemble.from_sweep(cfg["sweep"]["output_dir"]) as ens:
            fits_w1 = ens.fit_over_time(SquareMatrixModel, "W1")
            fits_w0 = ens.fit_over_time(RectangularMatrixModel, "W0")
            acc = np.mean([ens.array("test_accuracy", k, -1) for k in range(len(ens))])
            rows = {f"epoch {int(ens.times[i])}": ens.compare_invariants(fits_w1[i], "W1", index=i)
                    for i in (0, -1)}
            times = ens.times.tolist()
        key = setting_key(width, init, optimizer)
        invariant_rows[key] = rows
        res = {"epochs": times, "test_accuracy_end": float(acc),
               "w2_W1_to_iid": [iid_w1.wasserstein(f) for f in fits_w1],
               "w2_W1_to_epoch0": [fits_w1[0].wasserstein(f) for f in fits_w1],
               "w2_W0_to_iid": [iid_w0.wasserstein(f) for f in fits_w0],
               "w1_floor": floor_w1, "w0_floor": floor_w0,
               "W1_parameters_end": fits_w1[-1].parameters(), "W1_parameters_start": fits_w1[0].parameters(),
               "W1_valid_end": fits_w1[-1].is_valid,
               "invariant_deviation": {lbl: {r["name"]: r["deviation"] for r in rs} for lbl, rs in rows.items()}}
        summary["settings"][key] = res
        dev_end = max(abs(v) for v in res["invariant_deviation"][f"epoch {EPOCHS}"].values())
        dev0 = res["invariant_deviation"]["epoch 0"]
        print(f"D = {width:2d} {init:8s} {optimizer:4s}: test acc {acc:.3f}; W2(W1 fit, iid) "
              f"{res['w2_W1_to_iid'][0]:.3f} -> {res['w2_W1_to_iid'][-1]:.3f} (floor {floor_w1[0]:.3f} ± "
              f"{floor_w1[1]:.3f}); W2(W0 fit, iid) "
              f"{res['w2_W0_to_iid'][0]:.3f} -> {res['w2_W0_to_iid'][-1]:.3f} (floor {floor_w0[0]:.3f}); "
              f"Σ M⁴ deviation at epoch 0 {dev0['Σ M_ij⁴']:+.2f}; max |deviation| at the end {dev_end:.2f}")

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), constrained_layout=True)
    settings = summary["settings"]
    for ax, key, floor, title in ((axes[0], "w2_W1_to_iid", "w1_floor", "W1 (D×D): W₂(fit, N(0, 2/D))"),
                                  (axes[1], "w2_W1_to_epoch0", None, "W1: W₂(fit at epoch, fit at 0)"),
                                  (axes[2], "w2_W0_to_iid", "w0_floor", "W0 (D×64): W₂(fit, N(0, 2/64))")):
        curves = {k.replace("_", ", "): (s["epochs"], s[key]) for k, s in settings.items()}
        bands = ({k.replace("_", ", "): (s["epochs"], [s[floor][0] + 2 * s[floor][1]] * len(s["epochs"]))
                  for k, s in settings.items()} if floor else None)
        plot.ensemble_curves(curves, ax=ax, ylabel="W₂", bands=bands, xlabel="epoch", marker="o", ms=3)
        ax.set_title(title + ("  (dotted: sampling floor + 2 sd)" if floor else ""), fontsize=9)
    plot.savefig(fig, OUT / "w2.png")

    fig, axes = plt.subplots(1, len(invariant_rows), figsize=(4.2 * len(invariant_rows), 4.2), constrained_layout=True,
                             sharey=True)
    for ax, (key, rows) in zip(axes, invariant_rows.items()):
        plot.invariant_deviations(rows, ax=ax)
        ax.set_title(f"W1, {key.replace('_', ', ')}", fontsize=9)
    plot.savefig(fig, OUT / "invariants.png")
    write_summary(OUT / "summary.json", summary, indent=1)


if __name__ == "__main__":
    main()
