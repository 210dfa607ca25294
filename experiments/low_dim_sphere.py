"""Hajjar & Chizat (2023) §5, low-dimensional target: f* = |x_H| with x uniform on the sphere.

(1) d = 30, d_H = 5, m = 1024 (sign-sphere start), exact full flow with the alignment observables saved at every
snapshot: risk against t, mass-weighted histograms of the neuron angle to H for a > 0 and a < 0 at several times, and
the total positive and negative output masses against α = 2√π Γ((d_H+1)/2)/Γ(d_H/2).
(2) A sweep over d_H ∈ {2, 5, 10, 15, 20, 25, 30, 35} at d = 40 (m = 512, run on Dask through meanfield.sweep): final
positive and negative masses against α, in results/low_dim_sphere/sweep.md and summary.json.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/low_dim_sphere.py [--quick]
"""

import argparse
import json
from pathlib import Path

import matplotlib
from outputs import write_summary, write_text

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield import plot  # noqa: E402
from meanfield.sweep import run_sweep  # noqa: E402
from meanfield.symmetry import alignment_observables, output_masses  # noqa: E402
from meanfield.symmetry.alignment import positive_mass_limit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT, RUNS = ROOT / "results" / "low_dim_sphere", ROOT / "results" / "runs" / "low_dim_sphere"


def main_run(t_max, m):
    d, d_h = 30, 5
    Q = np.eye(d)[:, :d_h]
    problem = mf.Problem(mf.RadialTarget.norm(Q), mf.Sphere(d))
    traj = mf.simulate(problem, mf.init.sign_sphere(m, d, seed=0), t_max=t_max, dt=5.0, solver="heun",
                       save_every=20, backend="numba", observables=alignment_observables(Q),
                       path=RUNS / "main.h5", overwrite=True, progress=True)
    alpha = positive_mass_limit(d_h)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    plot.risk_curve(traj, ax=axes[0])
    axes[0].set_title(f"f* = |x_H| on the sphere, d = {d}, d_H = {d_h}, m = {m}")
    axes[1].plot(traj.times, traj.observables["mass_pos"][:], label="positive mass")
    axes[1].plot(traj.times, traj.observables["mass_neg"][:], label="negative mass")
    axes[1].axhline(alpha, color="k", ls="--", lw=1, label=f"α = {alpha:.3f}")
    axes[1].set_xlabel("t (mean-field time)")
    axes[1].set_ylabel("Σ w |a| |b|")
    axes[1].legend(frameon=False)
    plot.savefig(fig, OUT / "risk_and_masses.png")
    snaps = [int(np.argmin(np.abs(traj.times - t))) for t in (0, t_max / 30, t_max / 6, t_max)]
    axes = plot.alignment_histograms(traj, Q, snapshots=snaps)
    plot.savefig(axes[0], OUT / "angle_histograms.png")
    out = {"d": d, "d_hidden": d_h, "m": m, "t_max": t_max, "alpha": alpha,
           "final_risk": float(traj.risk[-1]), "mass_pos": float(traj.observables["mass_pos"][-1]),
           "mass_neg": float(traj.observables["mass_neg"][-1]),
           "mean_angle_pos": float(traj.observables["mean_angle_pos"][-1])}
    traj.close()
    return out


def sweep(t_max, m):
    cfg = {"name": "low_dim_sweep",
           "inputs": {"law": "sphere", "d": 40},
           "target": {"kind": "radial", "g": "norm", "d_hidden": 5},
           "init": {"kind": "sign_sphere", "m": m, "seed": 0},
           "run": {"t_max": t_max, "dt": 5.0, "solver": "heun", "save_every": 100, "save_particles": False,
                   "backend": "numba"},
           "sweep": {"output_dir": str(RUNS / "sweep"),
                     "grid": {"target.d_hidden": [2, 5, 10, 15, 20, 25, 30, 35]}}}
    manifest = run_sweep(cfg, n_workers=2, retry_failed=True)  # finished runs are reused, failed ones retried
    rows = []
    for run in manifest["runs"]:
        d_h = run["overrides"]["target.d_hidden"]
        if run["status"] not in ("completed", "converged"):
            rows.append({"d_hidden": d_h, "status": run["status"], "error": run.get("error")})
            continue
        with mf.load(run["path"]) as traj:
            pos, neg = output_masses(traj.final)
            rows.append({"d_hidden": d_h, "alpha": positive_mass_limit(d_h), "mass_pos": pos, "mass_neg": neg,
                         "final_risk": float(traj.risk[-1]), "status": run["status"]})
    lines = ["| d_H | α | positive mass | negative mass | positive − negative | final risk |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if "alpha" in r:
            lines.append(f"| {r['d_hidden']} | {r['alpha']:.4f} | {r['mass_pos']:.4f} | {r['mass_neg']:.4f} | "
                         f"{r['mass_pos'] - r['mass_neg']:.4f} | {r['final_risk']:.2e} |")
        else:
            lines.append(f"| {r['d_hidden']} | failed: {r['error']} | | | | |")
    table = "\n".join(lines)
    write_text(OUT / "sweep.md", f"f* = |x_H| on the sphere, d = 40, m = {m}, t = {t_max} (Heun, dt = 5)\n\n"
                                  + table + "\n")
    print(table)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (for a smoke test)")
    args = parser.parse_args()
    t_main, t_sweep, m_sweep = (300.0, 200.0, 128) if args.quick else (3000.0, 2000.0, 512)
    summary = {"main": main_run(t_main, 1024), "sweep": sweep(t_sweep, m_sweep)}
    summary = write_summary(OUT / "summary.json", summary, indent=2)     # what is printed is what was written
    print(json.dumps(summary["main"], indent=2))


if __name__ == "__main__":
    main()
