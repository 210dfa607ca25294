"""Hajjar & Chizat (2023) §5: dependence of the learned predictor on the orthogonal radius |x_⊥|.

f* = |x_H| with x ~ N(0, I_d), d = 20, d_H = 5, m = 1024 (sign-sphere start), exact full flow. At several times the
predictor is evaluated at x = u_H + r e_⊥ with |u_H| = 1 (so f*(x) = 1 for every r), r ∈ [0, 4], averaged over
32 random unit directions e_⊥ of H^⊥ (the band shows their spread). Writes results/predictor_vs_radius/{profile.png,
summary.json}; the run is stored in results/runs/predictor_vs_radius.h5.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/predictor_vs_radius.py
"""

import json
from pathlib import Path

import matplotlib
from outputs import write_summary

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield import plot  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "predictor_vs_radius"
D, D_H, M, T_MAX = 20, 5, 1024, 200.0


def main():
    Q = np.eye(D)[:, :D_H]
    problem = mf.Problem(mf.RadialTarget.norm(Q), mf.Gaussian(D))
    traj = mf.simulate(problem, mf.init.sign_sphere(M, D, seed=0), t_max=T_MAX, dt=0.2, solver="heun",
                       save_every=25, backend="numba", path=ROOT / "results" / "runs" / "predictor_vs_radius.h5",
                       overwrite=True, progress=True)
    rng = np.random.default_rng(1)
    u_h = Q @ (rng.standard_normal(D_H))
    u_h /= np.linalg.norm(u_h)
    e_perp = rng.standard_normal((32, D))
    e_perp -= (e_perp @ Q) @ Q.T
    e_perp /= np.linalg.norm(e_perp, axis=1, keepdims=True)
    radii = np.linspace(0.0, 4.0, 41)
    x = u_h[None, None, :] + radii[None, :, None] * e_perp[:, None, :]  # (directions, radii, d)

    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    summary = {"d": D, "d_hidden": D_H, "m": M, "profiles": {}}
    for t in (0.0, 5.0, 20.0, 50.0, T_MAX):
        i = int(np.argmin(np.abs(traj.times - t)))
        mu = traj.measure(i)
        f = problem.predict(mu, x.reshape(-1, D)).reshape(x.shape[:2])
        mean, lo, hi = f.mean(axis=0), f.min(axis=0), f.max(axis=0)
        line = ax.plot(radii, mean, label=f"t = {traj.times[i]:g} (risk {traj.risk[i]:.1e})")[0]
        ax.fill_between(radii, lo, hi, color=line.get_color(), alpha=0.15)
        summary["profiles"][f"{traj.times[i]:g}"] = {
            "risk": float(traj.risk[i]), "f_at_r0": float(mean[0]), "f_at_r2": float(mean[20]),
            "f_at_r4": float(mean[-1]), "slope_r2_to_r4": float((mean[-1] - mean[20]) / 2.0),
            "spread_over_directions_r4": float(hi[-1] - lo[-1])}
    ax.axhline(1.0, color="k", ls="--", lw=1, label="f* = |x_H| = 1")
    ax.set_xlabel("r = |x_⊥|")
    ax.set_ylabel("f(μ_t; u_H + r e_⊥)")
    ax.set_title(f"f* = |x_H|, Gaussian inputs, d = {D}, d_H = {D_H}, m = {M}")
    ax.legend(frameon=False, fontsize=8)
    plot.savefig(fig, OUT / "profile.png")
    summary = write_summary(OUT / "summary.json", summary, indent=2)     # what is printed is what was written
    print(json.dumps(summary, indent=2))
    traj.close()


if __name__ == "__main__":
    main()
