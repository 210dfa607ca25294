"""Lazy training against the mean-field regime on one teacher (Chizat, Oyallon & Bach 2019, "On lazy training in
differentiable programming", arXiv:1812.07956): the same particles trained with the output scale α ∈ {1, 4, 16, 64}.

Teacher: 3 ReLU neurons with unit output weights and orthonormal directions in d = 10, Gaussian inputs (population
risk, exact). Student: m = 512 neurons from the doubling trick (256 Gaussian neurons a ~ N(0, 1), b ~ N(0, I/d) and
their copies with −a), so that f(μ0) = 0 and α f(μ) stays finite. The flow of F_α(μ) = ½E(f − f*/α)² (Heun,
dt = 0.05) to t = 300. Recorded: the risk of the predictor α f(μ) itself (α² F_α), the distance travelled
by the particles (Σ_j w_j |θ_j(t) − θ_j(0)|²)^{1/2}, which the lazy regime predicts ∝ 1/α, and the alignment of the
positive-output neurons with the teacher's span (mean angle to it). Writes
results/lazy_vs_mean_field/{curves.png, summary.json}.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/lazy_vs_mean_field.py       # about 3 minutes on 2 cores
"""

from pathlib import Path

import matplotlib
from outputs import write_summary

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import meanfield as mf  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "lazy_vs_mean_field"
D, K, M, ALPHAS, T_MAX, DT = 10, 3, 512, (1.0, 4.0, 16.0, 64.0), 300.0, 0.05


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    U = np.linalg.qr(np.random.default_rng(0).standard_normal((D, K)))[0].T
    mu0 = mf.init.doubled(mf.init.gaussian(M // 2, D, seed=1))
    state0 = mu0.state()
    observables = {"distance": lambda mu: float(np.sqrt(mu.weights @ ((mu.state() - state0) ** 2).sum(axis=1)))}
    runs, rows = {}, []
    for alpha in ALPHAS:
        problem = mf.Problem(mf.TeacherNetwork(np.ones(K), U), mf.Gaussian(D), output_scale=alpha)
        traj = mf.simulate(problem, mu0, t_max=T_MAX, dt=DT, save_every=10, observables=observables)
        risk, dist = alpha**2 * traj.risk, traj.observables["distance"]   # the risk of α f(μ) is α² F_α (no penalty)
        angle = traj.observables["mean_angle_pos"]
        runs[alpha] = (traj.times, risk, dist, angle)
        rows.append({"alpha": alpha, "risk_t10": float(np.interp(10.0, traj.times, risk)),
                     "risk_final": float(risk[-1]), "distance_final": float(dist[-1]),
                     "alpha_times_distance": float(alpha * dist[-1]), "mean_angle_final": float(angle[-1]),
                     "mean_angle_initial": float(angle[0])})
        print(f"α = {alpha:4g}: risk of α f at t = {T_MAX:g}: {risk[-1]:.3e}; distance travelled {dist[-1]:.4f} "
              f"(α · distance {alpha * dist[-1]:.3f}); mean angle of positive neurons to span(U) "
              f"{angle[0]:.3f} → {angle[-1]:.3f} rad", flush=True)
    setup = {"d": D, "k": K, "m": M, "t_max": T_MAX, "dt": DT}
    write_summary(OUT / "summary.json", {"setup": setup, "per_alpha": rows}, indent=2)

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    colors = plt.cm.plasma(np.linspace(0, 0.8, len(ALPHAS)))
    for color, alpha in zip(colors, ALPHAS):
        t, risk, dist, angle = (series[1:] for series in runs[alpha])   # t > 0 on log axes
        axes[0].loglog(t, risk, color=color, label=f"α = {alpha:g}")
        axes[1].loglog(t, dist, color=color)
        axes[2].semilogx(t, angle, color=color)
    axes[0].set(xlabel="t", ylabel="risk of the predictor α f(μ_t)", title="risk")
    axes[1].set(xlabel="t", ylabel="(Σ w |θ(t) − θ(0)|²)^½", title="distance travelled (∝ 1/α when lazy)")
    axes[2].set(xlabel="t", ylabel="rad", title="mean angle of a > 0 neurons to span(U)")
    axes[0].legend()
    fig.savefig(OUT / "curves.png", dpi=130)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
