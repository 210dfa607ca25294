"""Propagation of chaos, measured: how far the exact flow of m neurons is from its mean-field limit, over four decades
of m, for the low-dimensional target of Hajjar & Chizat (2023, arXiv:2211.08771, §5): f* = |x_H| with x uniform on
the sphere, d = 30, d_H = 5, ReLU neurons from the sign-sphere start (a = ±1, b uniform on the unit sphere).

The m = ∞ reference is the reduced flow on rings (a, u = Qᵀb, r = |b_⊥|) — exact for the limit in the directions
orthogonal to H — started from a quasi-random (scrambled Sobol) sample of M rings of the initial law (u, r from the
projection of g/|g|, g ~ N(0, I_30), each point with both signs a = ±1); its own error is measured by comparing M with
M/2 rings. For m = 4 · 4^k up to 40 960 and several seeds: the full exact flow (numba, Heun, dt = 1) to t = 20, and
at t ∈ {5, 10, 20} the distance ‖f(μ_t^m) − f(μ_t^∞)‖_{L²(ρ)} in closed form (neurons against rings:
:meth:`~meanfield.reduced.LowDimReducedProblem.function_distance`). Propagation of chaos predicts
E‖f(μ_t^m) − f(μ_t^∞)‖² ∝ 1/m at fixed t, i.e. a slope −1/2 of the root mean square against m. Writes
results/propagation_of_chaos/{distance.png, summary.json}.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/propagation_of_chaos.py      # about 20 minutes on 2 cores (m = 40 960: 7.5 min)
"""

import time
from pathlib import Path

import matplotlib
from outputs import write_summary

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import norm, qmc  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield.measure import RingMeasure  # noqa: E402
from meanfield.reduced import LowDimReducedProblem  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "propagation_of_chaos"
D, D_H, T_MAX, DT, TIMES = 30, 5, 20.0, 1.0, (5.0, 10.0, 20.0)
WIDTHS = {4: 24, 16: 24, 64: 16, 256: 12, 1024: 8, 4096: 4, 16384: 2, 40960: 1}   # m: seeds
M_REFERENCE = 2048


def quasi_random_rings(reduced: LowDimReducedProblem, m: int, seed: int = 0) -> RingMeasure:
    """m rings of the sign-sphere law from a scrambled Sobol sample: b = g/|g| with g = Φ⁻¹(Sobol) ∈ R^d for m/2
    points, each taken with a = +1 and a = −1, so that a is exactly independent of b (alternating signs along the
    Sobol sequence would correlate them with its strata, a bias of 1.3e-2 in f that we measured)."""
    points = qmc.Sobol(D, scramble=True, seed=seed).random(m // 2)
    g = norm.ppf(np.clip(points, 1e-12, 1 - 1e-12))
    b = g / np.linalg.norm(g, axis=1, keepdims=True)
    a = np.concatenate([np.ones(m // 2), -np.ones(m // 2)])
    return reduced.reduce(mf.ParticleMeasure(a, np.concatenate([b, b])))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    Q = np.eye(D)[:, :D_H]
    problem = mf.Problem(mf.RadialTarget.norm(Q), mf.Sphere(D))
    reduced = LowDimReducedProblem(problem)
    save = round(min(TIMES) / DT)
    start = time.perf_counter()
    limits = {}
    for m_ref in (M_REFERENCE // 2, M_REFERENCE):
        traj = mf.simulate(reduced, quasi_random_rings(reduced, m_ref), t_max=T_MAX, dt=DT, save_every=save,
                           backend="numpy", alignment=False)
        limits[m_ref] = {float(t): traj.measure(i) for i, t in enumerate(traj.times)}
    reference = limits[M_REFERENCE]
    reference_error = {t: reduced.function_distance(limits[M_REFERENCE // 2][t], reference[t]) for t in TIMES}
    print(f"reference: {M_REFERENCE} quasi-random rings ({time.perf_counter() - start:.0f} s); its distance to the "
          f"flow of {M_REFERENCE // 2} rings: " + ", ".join(f"t = {t:g}: {e:.1e}" for t, e in reference_error.items()),
          flush=True)

    rows = []
    for m, seeds in WIDTHS.items():
        seconds = []    # printed, not written: the summary is the same file at every rerun (experiments/outputs.py)
        for seed in range(seeds):
            t0 = time.perf_counter()
            traj = mf.simulate(problem, mf.init.sign_sphere(m, D, seed=1000 + seed), t_max=T_MAX, dt=DT,
                               save_every=save, backend="numba", alignment=False)
            row = {"m": m, "seed": seed}
            seconds.append(time.perf_counter() - t0)
            for i, t in enumerate(traj.times):
                if float(t) in TIMES:
                    row[f"distance_t{t:g}"] = reduced.function_distance(traj.measure(i), reference[float(t)])
            rows.append(row)
        sel = [r for r in rows if r["m"] == m]
        rms = {t: float(np.sqrt(np.mean([r[f"distance_t{t:g}"] ** 2 for r in sel]))) for t in TIMES}
        print(f"m = {m:6d} ({seeds:2d} seeds, {np.mean(seconds):6.1f} s per run): RMS distance "
              + ", ".join(f"t = {t:g}: {v:.2e}" for t, v in rms.items()), flush=True)

    table, slopes = [], {}
    for m in WIDTHS:
        sel = [r for r in rows if r["m"] == m]
        table.append({"m": m, "seeds": len(sel), **{f"rms_t{t:g}": float(np.sqrt(np.mean(
            [r[f"distance_t{t:g}"] ** 2 for r in sel]))) for t in TIMES}})
    ms = np.array(list(WIDTHS), dtype=float)
    for t in TIMES:
        slopes[t] = float(np.polyfit(np.log(ms), np.log([row[f"rms_t{t:g}"] for row in table]), 1)[0])
    summary = {"setup": {"d": D, "d_hidden": D_H, "t_max": T_MAX, "dt": DT, "reference_rings": M_REFERENCE},
               "reference_error": {f"t{t:g}": e for t, e in reference_error.items()},
               "per_width": table, "fitted_exponent": {f"t{t:g}": s for t, s in slopes.items()}, "runs": rows}
    write_summary(OUT / "summary.json", summary, indent=2)
    print("fitted exponents of the RMS distance in m: " + ", ".join(f"t = {t:g}: {s:.3f}" for t, s in slopes.items()))

    fig, ax = plt.subplots(figsize=(5.8, 4), constrained_layout=True)
    for t in TIMES:
        values = [row[f"rms_t{t:g}"] for row in table]
        ax.loglog(ms, values, "o-", label=f"t = {t:g} (slope {slopes[t]:.2f})")
        ax.axhline(reference_error[t], ls=":", lw=0.8, color=ax.lines[-1].get_color())
    ax.loglog(ms, table[0][f"rms_t{TIMES[-1]:g}"] * (ms / ms[0]) ** -0.5, "k--", lw=0.8, label="∝ m^(−1/2)")
    ax.set(xlabel="neurons m", ylabel="RMS ‖f(μ_t^m) − f(μ_t^∞)‖", title="propagation of chaos, f* = |x_H|, d = 30")
    ax.legend(fontsize=8)
    fig.savefig(OUT / "distance.png", dpi=130)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
