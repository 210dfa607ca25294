"""Hajjar & Chizat (2023) §5, odd target: f* = C Σ_k z_k x_k³, x ~ N(0, I/d), d = 60, ½E f*² = 1.

Full mean-field flows from ``sign_sphere`` starts (no symmetry imposed) for m ∈ {10, 50, 128, 1024}, the full flow
from a mirror-symmetric start, the O(m d) reduced flow (linear predictor), and the theoretical minimum
½(E f*² − ⟨w*, Σ w*⟩) = 0.4. Figures: risk and |w(t) − w*| against t, where w = ½∫ a b dμ is the linear part of the
predictor. Writes results/odd_target/{risk.png, linear_part.png, summary.json}; runs in results/runs/odd_target/.
A rerun rewrites the same files (experiments/outputs.py): numbers to 4 significant digits, excess risks below 1e-13
(the risk's resolution) as 0, the agreement of the symmetric and the reduced flow as the power of ten above it.

    python experiments/odd_target.py
"""

import json
from pathlib import Path

import matplotlib
from outputs import upper_bound, write_summary

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield import plot  # noqa: E402
from meanfield.reduced import OddReducedProblem, odd_minimum  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT, RUNS = ROOT / "results" / "odd_target", ROOT / "results" / "runs" / "odd_target"
D, T_MAX, DT = 60, 300.0, 1.0


def main():
    inputs = mf.Gaussian(D, variance=1.0 / D)
    z = np.random.default_rng(0).standard_normal(D)
    problem = mf.Problem(mf.CubicTarget.normalized(z / np.linalg.norm(z), inputs), inputs)
    w_star, minimum = odd_minimum(problem)
    reduced = OddReducedProblem(problem)

    def linear_part(mu):  # w = ½ Σ w_j a_j b_j: f(μ; x) = ⟨w, x⟩ + (even part)
        return 0.5 * (mu.weights * mu.a) @ mu.b

    runs = {}
    for m in (10, 50, 128, 1024):
        runs[f"full, m = {m}"] = mf.simulate(problem, mf.init.sign_sphere(m, D, seed=m), T_MAX, DT, solver="heun",
                                             save_every=2, backend="numba", observables={"w": linear_part},
                                             path=RUNS / f"full_m{m}.h5", overwrite=True)
    reps = mf.init.sign_sphere(512, D, seed=7)
    runs["full, symmetric start, m = 1024"] = mf.simulate(
        problem, mf.init.symmetrize(reps), T_MAX, DT, solver="heun", save_every=2, backend="numba",
        observables={"w": linear_part}, path=RUNS / "full_symmetric_m1024.h5", overwrite=True)
    runs["reduced flow (512 pairs)"] = mf.simulate(
        reduced, reps, T_MAX, DT, solver="heun", save_every=2, observables={"w": reduced.linear_predictor},
        path=RUNS / "reduced_m512.h5", overwrite=True)

    sym, red = runs["full, symmetric start, m = 1024"], runs["reduced flow (512 pairs)"]
    agreement = float(np.abs(np.asarray(sym.b[-1])[:512] - np.asarray(red.b[-1])).max())
    err = np.linalg.norm(np.asarray(red.observables["w"][:]) - w_star, axis=1)
    late = (red.times > 20) & (err > 1e-12)
    rate = float(-np.polyfit(red.times[late], np.log(err[late]), 1)[0]) if late.sum() > 2 else float("nan")
    mu = red.final
    B, A = (mu.weights[:, None] * mu.b).T @ mu.b, float(mu.weights @ mu.a**2)
    eig = 0.25 * problem.scale * np.linalg.eigvalsh(B + A * np.eye(D))

    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for label, traj in runs.items():
        ax.semilogy(traj.times, traj.risk - minimum, label=label, ls="--" if "reduced" in label else "-")
    ax.set_xlabel("t (mean-field time)")
    ax.set_ylabel("risk − minimum (0.4)")
    ax.set_title("odd target, d = 60")
    ax.legend(frameon=False, fontsize=8)
    plot.savefig(fig, OUT / "risk.png")
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for label, traj in runs.items():
        w = np.asarray(traj.observables["w"][:])
        ax.semilogy(traj.times, np.linalg.norm(w - w_star, axis=1), label=label, ls="--" if "reduced" in label else "-")
    ax.set_xlabel("t (mean-field time)")
    ax.set_ylabel("|w(t) − w*|")
    ax.legend(frameon=False, fontsize=8)
    plot.savefig(fig, OUT / "linear_part.png")

    def excess(traj):   # below the risk's resolution (~1e-13 E f*²) the difference is round-off
        value = float(traj.risk[-1] - minimum)
        return value if abs(value) > 1e-13 else 0.0

    summary = {"minimum": minimum, "final_excess_risk": {k: excess(v) for k, v in runs.items()},
               "final_linear_error": {k: float(np.linalg.norm(np.asarray(v.observables["w"][-1]) - w_star))
                                      for k, v in runs.items()},
               "symmetric_full_vs_reduced_max_abs_diff_below": upper_bound(agreement),
               "reduced_rate_fitted": rate, "reduced_rate_linearised_range": [float(eig.min()), float(eig.max())]}
    print(json.dumps(write_summary(OUT / "summary.json", summary, indent=2), indent=2))
    for traj in runs.values():
        traj.close()


if __name__ == "__main__":
    main()
