"""The macroscopic transition of exchangeable weights as their within-row covariance leaves zero (Tsuchida, Roosta &
Gallagher 2019, arXiv:1810.08351), and where trained ensembles sit on it.

Rows w ~ N(0, (v − c)I + c11ᵀ) in Rⁿ, v = 1 (meanfield.weights.analysis.exchangeable_kernel):
* the normalised ReLU layer kernel k(x, y)/√(k(x, x)k(y, y)) against c ∈ [0, 0.05] for n ∈ {100, 500, 2000, 8000},
  for a positive input pair (|g|, |g'|) and a zero-sum pair (g − ḡ1, g' − ḡ'1); closed form against Monte Carlo
  (20 000 rows per point, standard errors from 20 batches);
* the covariance c_half(n) of half the transition of the positive pair, and n · c_half (constant if the transition
  sharpens like 1/n);
* trained ensembles: the fitted (v̂, ĉ) of the first layers of the kernel-invariance runs (d = 8, 32 seeds; flows and
  SGD) and of the digits MLPs (W0: rows of 64, W1: rows of D; 48 seeds), at the start and the end of training,
  with n ĉ/v̂, c_half at their n and v̂, and the predicted normalised kernel of a positive pair against its c = 0
  value: on which side of the transition their fitted covariance puts them.
Writes results/covariance_transition/{transition.png, summary.json, table.md}. Uses the runs of kernel_invariance.py and
digits_matrix_models.py (run as part of this script when they are missing).

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/covariance_transition.py
"""

from pathlib import Path

import matplotlib
from outputs import write_summary, write_text

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from meanfield import plot  # noqa: E402
from meanfield.sweep import run_sweep  # noqa: E402
from meanfield.weights.analysis import (  # noqa: E402
    Ensemble,
    ExchangeableFit,
    normalized_exchangeable_kernel,
    sample_exchangeable,
    transition_covariance,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "covariance_transition"
WIDTHS, V = (100, 500, 2000, 8000), 1.0
C_GRID, C_MC = np.linspace(0.0, 0.05, 51), (0.0, 0.005, 0.02, 0.05)
MC_ROWS, MC_BATCHES = 20_000, 20


def input_pairs(n, seed=0):
    g = np.random.default_rng(seed).standard_normal((2, n))
    return {"positive": np.abs(g), "zero_sum": g - g.mean(axis=1, keepdims=True)}


def monte_carlo(x, y, c, n, seed):
    """The normalised kernel from MC_ROWS sampled rows: mean and standard error over MC_BATCHES batches."""
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(MC_BATCHES):
        w = sample_exchangeable(MC_ROWS // MC_BATCHES, n, V, c, rng)
        zx, zy = np.maximum(w @ x, 0.0), np.maximum(w @ y, 0.0)
        ratios.append(np.mean(zx * zy) / np.sqrt(np.mean(zx * zx) * np.mean(zy * zy)))
    return float(np.mean(ratios)), float(np.std(ratios, ddof=1) / np.sqrt(MC_BATCHES))


def trained_ensembles():
    """(label, directory, matrix name) of the stored ensembles, running their sweeps when missing."""
    import digits_matrix_models as digits
    import kernel_invariance as invariance

    found = []
    for target in ("teacher", "radial"):
        for kind in ("flow", "sgd"):
            cfg = invariance.sweep_config(target, kind, 32)
            run_sweep(cfg, n_workers=2, progress=False)
            found.append((f"{target} {kind} (b, n = {invariance.D})", cfg["sweep"]["output_dir"], "b"))
    for width, init, optimizer, lr in digits.SETTINGS:
        cfg = digits.sweep_config(width, init, optimizer, lr, 48)
        run_sweep(cfg, n_workers=2, progress=False)
        key = digits.setting_key(width, init, optimizer)
        found.append((f"digits {key} (W0, n = 64)", cfg["sweep"]["output_dir"], "W0"))
        found.append((f"digits {key} (W1, n = {width})", cfg["sweep"]["output_dir"], "W1"))
    return found


def where_on_the_transition(fit: ExchangeableFit) -> dict:
    x, y = input_pairs(fit.n, seed=1)["positive"]
    c_half = transition_covariance(x, y, fit.v)
    at_zero = float(normalized_exchangeable_kernel(x, y, fit.v, 0.0))
    predicted = float(normalized_exchangeable_kernel(x, y, fit.v, fit.c)) if fit.c > -fit.v / (fit.n - 1) else None
    return {"v": fit.v, "c": fit.c, "n_c_over_v": fit.scaled, "c_half": c_half, "c_over_c_half": fit.c / c_half,
            "normalized_kernel_at_c0": at_zero, "normalized_kernel_predicted": predicted,
            "side": "flat" if abs(fit.c) < 0.1 * c_half else "on the transition" if fit.c < c_half else "past it"}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    summary = {"v": V, "widths": list(WIDTHS), "c_grid": C_GRID.tolist(), "mc_rows": MC_ROWS, "curves": {},
               "monte_carlo": [], "transition": {}, "trained": {}}
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.6), constrained_layout=True)
    for n in WIDTHS:
        pairs = input_pairs(n)
        for kind, (x, y) in pairs.items():
            curve = [float(normalized_exchangeable_kernel(x, y, V, c)) for c in C_GRID]
            summary["curves"][f"{kind}, n = {n}"] = curve
            label = f"n = {n}"
            if kind == "positive":
                label += f" (n·c_half = {n * transition_covariance(x, y, V):.2f})"
            axes[0 if kind == "positive" else 1].plot(C_GRID, curve, label=label)
            for c in C_MC:
                exact = float(normalized_exchangeable_kernel(x, y, V, c))
                mean, se = monte_carlo(x, y, c, n, seed=int(1000 * c) + n)
                summary["monte_carlo"].append({"kind": kind, "n": n, "c": c, "closed_form": exact, "mc": mean,
                                               "se": se, "z": (mean - exact) / se})
                axes[0 if kind == "positive" else 1].errorbar([c], [mean], yerr=[2 * se], fmt="k.", ms=4)
        c_half = transition_covariance(*pairs["positive"], V)
        summary["transition"][n] = {"c_half": c_half, "n_c_half": n * c_half}
        print(f"n = {n:5d}: c_half = {c_half:.3e}, n·c_half = {n * c_half:.3f}; normalised kernel (positive) "
              f"{summary['curves'][f'positive, n = {n}'][0]:.4f} at c = 0 -> "
              f"{summary['curves'][f'positive, n = {n}'][-1]:.4f} at c = 0.05; zero-sum stays "
              f"{summary['curves'][f'zero_sum, n = {n}'][0]:.4f}")
    z = np.array([r["z"] for r in summary["monte_carlo"]])
    print(f"closed form vs Monte Carlo at {len(z)} points: max |z| = {np.abs(z).max():.2f}")
    for ax, title in zip(axes[:2], ("positive inputs", "zero-sum inputs")):
        ax.set_xlabel("within-row covariance c  (v = 1)")
        ax.set_ylabel("normalised kernel k(x,y)/√(k(x,x)k(y,y))")
        ax.set_title(f"{title}: closed form (lines), Monte Carlo ± 2 SE (dots)", fontsize=9)
        ax.legend(fontsize=8)

    for label, directory, name in trained_ensembles():
        with Ensemble.from_sweep(directory, progress=False) as ens:
            start, end = (ExchangeableFit.from_moments(ens.moments(name, i)) for i in (0, -1))
        summary["trained"][label] = {"start": where_on_the_transition(start), "end": where_on_the_transition(end)}
        e = summary["trained"][label]["end"]
        print(f"{label:38s}: n ĉ/v̂ {summary['trained'][label]['start']['n_c_over_v']:+.3f} -> "
              f"{e['n_c_over_v']:+.3f}; ĉ/c_half {e['c_over_c_half']:+.3f} ({e['side']}); normalised kernel "
              f"{e['normalized_kernel_at_c0']:.4f} at c = 0, {e['normalized_kernel_predicted']:.4f} at ĉ")
    labels = list(summary["trained"])
    ypos = np.arange(len(labels))
    axes[2].barh(ypos, [summary["trained"][k]["end"]["c_over_c_half"] for k in labels], color="C0", alpha=0.7,
                 label="end of training")
    axes[2].plot([summary["trained"][k]["start"]["c_over_c_half"] for k in labels], ypos, "ko", mfc="none",
                 label="initialisation")
    for level in (-1, -0.1, 0.1, 1):
        axes[2].axvline(level, color="grey", ls=":" if abs(level) < 1 else "--", lw=0.8)
    axes[2].set_yticks(ypos, labels, fontsize=7)
    axes[2].invert_yaxis()
    axes[2].set_xlabel("ĉ / c_half(n) at the fitted v̂ (dotted: ±0.1, flat; dashed: ±1, half the transition)")
    axes[2].set_title("trained ensembles on the transition (positive input pair)", fontsize=9)
    axes[2].legend(fontsize=7)
    plot.savefig(fig, OUT / "transition.png")
    write_summary(OUT / "summary.json", summary, indent=1)
    write_text(OUT / "table.md", table(summary))


def table(summary) -> str:
    lines = ["| n | c_half (positive pair, v = 1) | n · c_half | normalised kernel at c = 0 → 0.05 (positive) | "
             "zero-sum (any c) |", "| ---: | ---: | ---: | --- | ---: |"]
    for n in WIDTHS:
        pos, zero = summary["curves"][f"positive, n = {n}"], summary["curves"][f"zero_sum, n = {n}"]
        tr = summary["transition"][n]
        lines.append(f"| {n} | {tr['c_half']:.3e} | {tr['n_c_half']:.3f} | {pos[0]:.4f} → {pos[-1]:.4f} | "
                     f"{zero[0]:.4f} |")
    z = [abs(r["z"]) for r in summary["monte_carlo"]]
    lines += ["", f"Closed form against Monte Carlo ({summary['mc_rows']} rows per point): {len(z)} points, "
              f"max |z| = {max(z):.2f}.", "",
              "| trained ensemble | n ĉ/v̂ at init → end | ĉ / c_half at the end | side | normalised kernel c = 0 → ĉ |",
              "| --- | --- | ---: | --- | --- |"]
    for label, r in summary["trained"].items():
        s0, e = r["start"], r["end"]
        lines.append(f"| {label} | {s0['n_c_over_v']:+.3f} → {e['n_c_over_v']:+.3f} | {e['c_over_c_half']:+.3f} | "
                     f"{e['side']} | {e['normalized_kernel_at_c0']:.4f} → {e['normalized_kernel_predicted']:.4f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
