"""Tsuchida, Roosta-Khorasani & Gallagher (2018): equivalent kernels of rectified layers.

(1) Empirical kernel of 10⁶ weight samples against the closed form, over angles, for rotationally invariant laws at
n = 4 (exact at any width) and i.i.d. laws (exact only as n → ∞); (2) the relative error of the i.i.d. laws against n;
(3) the deep cosine map against the cosines of hidden representations of a wide random ReLU network, layer by layer.
Writes results/equivalent_kernels/{kernels.png, summary.json}.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/equivalent_kernels.py
"""

import json
from pathlib import Path

import matplotlib
from outputs import write_summary

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from meanfield import plot  # noqa: E402
from meanfield.weights.analysis import (  # noqa: E402
    WEIGHT_LAWS,
    deep_cosines,
    empirical_kernel,
    equivalent_kernel,
    sample_weights,
    second_moment,
)

OUT = Path(__file__).resolve().parents[1] / "results" / "equivalent_kernels"


def unit_pair(theta, n):
    x = np.zeros(n)
    y = np.zeros(n)
    x[0], y[0], y[1] = 1.0, np.cos(theta), np.sin(theta)
    return x, y


def main():
    thetas = np.linspace(0, np.pi, 13)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), constrained_layout=True)
    summary = {"max_relative_error_n4": {}, "iid_relative_error_vs_n": {}, "deep": {}}
    n = 4
    for law in WEIGHT_LAWS:
        w = sample_weights(law, 1_000_000, n, seed=0)
        emp = np.array([empirical_kernel(w, *unit_pair(t, n)) for t in thetas])
        exact = np.array([equivalent_kernel(*unit_pair(t, n), second_moment(law, n)) for t in thetas])
        summary["max_relative_error_n4"][law] = float(np.max(np.abs(emp - exact)) / np.max(exact))
        axes[0].plot(thetas, (emp - exact) / np.max(exact), "o-" if WEIGHT_LAWS[law] else "x--", ms=3, label=law)
    axes[0].set_xlabel("angle θ between x and y")
    axes[0].set_ylabel("(empirical − closed form) / max k   (n = 4)")
    axes[0].legend(frameon=False, fontsize=7)
    widths = [2, 4, 8, 16, 32, 64]
    for law in (name for name, invariant in WEIGHT_LAWS.items() if not invariant):
        errs, ses = [], []
        for width in widths:
            # A dense pair of random directions at angle 1: w·x is a sum of n terms, Gaussian only as n grows.
            rot = np.linalg.qr(np.random.default_rng(width).standard_normal((width, width)))[0]
            x, y = rot[0], np.cos(1.0) * rot[0] + np.sin(1.0) * rot[1]
            w = sample_weights(law, 1_000_000, width, seed=1)
            values = np.maximum(w @ x, 0) * np.maximum(w @ y, 0)
            exact = equivalent_kernel(x, y, second_moment(law, width))
            errs.append(float(abs(values.mean() / exact - 1)))
            ses.append(float(values.std() / np.sqrt(len(values)) / exact))
        summary["iid_relative_error_vs_n"][law] = {"n": widths, "error": errs, "mc_standard_error": ses}
        line = axes[1].loglog(widths, errs, "o-", label=law)[0]
        axes[1].loglog(widths, ses, ":", color=line.get_color())
    axes[1].set_xticks(widths, [str(w) for w in widths])
    axes[1].minorticks_off()
    axes[1].set_xlabel("n")
    axes[1].set_ylabel("|empirical / closed form − 1| (dotted: MC s.e.)")
    axes[1].legend(frameon=False, fontsize=7)
    rng = np.random.default_rng(2)
    depth, width = 10, 4000
    for theta0 in (0.5, 1.5, 2.5):
        x, y = unit_pair(theta0, 20)
        cos = [np.cos(theta0)]
        hx, hy = x, y
        for _ in range(depth):
            w = rng.standard_normal((width, hx.shape[0])) / np.sqrt(hx.shape[0])
            hx, hy = np.maximum(w @ hx, 0), np.maximum(w @ hy, 0)
            cos.append(float(hx @ hy / (np.linalg.norm(hx) * np.linalg.norm(hy))))
        line = axes[2].plot(range(depth + 1), cos, "o", ms=4)[0]
        axes[2].plot(range(depth + 1), deep_cosines(np.cos(theta0), depth), "-", color=line.get_color(),
                     label=f"θ₀ = {theta0}")
        summary["deep"][str(theta0)] = {"network": cos, "map": deep_cosines(np.cos(theta0), depth).tolist()}
    axes[2].set_xlabel("layer")
    axes[2].set_ylabel("cosine of hidden representations")
    axes[2].legend(frameon=False, fontsize=7, title="map (lines), network width 4000 (dots)")
    plot.savefig(fig, OUT / "kernels.png")
    summary = write_summary(OUT / "summary.json", summary, indent=2)     # what is printed is what was written
    print(json.dumps({k: summary[k] for k in ("max_relative_error_n4", "iid_relative_error_vs_n")}, indent=2))


if __name__ == "__main__":
    main()
