"""Mean-field Langevin dynamics at three temperatures: convergence rate, stationary risk, and noisy SGD beside it.

A teacher of 2 ReLU neurons in d = 5 (Gaussian inputs); m = 256 particles from i.i.d. Gaussian (a, b). Mean-field
Langevin dynamics dθ = −∇[F'(μ)(θ) + (λ/2)|θ|²] dt + √(2τ) dW (stochastic Heun, h = 0.05, to t = 300) for
τ ∈ {1e-4, 1e-3, 1e-2} and λ ∈ {1e-3, 1e-2}. Recorded: the computable part of the free energy,
G̃ = F(μ) + (λ/2)∫|θ|² dμ (the entropy of a particle measure is not computable), and the kernel Stein discrepancy
between μ and its proximal Gibbs measure p_μ ∝ exp(−(F'(μ) + λ|θ|²/2)/τ) with its standard error, the convergence
diagnostic (zero at the fixed point μ = p_μ). The rate: the slope of log|G̃(t) − G̃_∞| fitted from t = 10 (after the
fast initial descent of the flow) while the gap is above five times the stationary fluctuation of G̃, with G̃_∞ the
mean over the last quarter of the run; "none" when G̃ is at its stationary level by t = 10. Beside each flow:
noisy SGD of the finite network of the same 256 neurons at the same τ and λ (η = 0.05, online batches of 4096, whose
own noise adds a temperature of order η/batch ≈ 1e-5), its stationary risk against the flow's. Writes
results/mean_field_langevin/{free_energy.png, stein.png, summary.json}.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/mean_field_langevin.py          # about 12 minutes on 2 cores
"""

from pathlib import Path

import matplotlib
from outputs import write_summary

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield.dynamics import Langevin  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "mean_field_langevin"
D, K, M, T_MAX, DT, ETA, BATCH = 5, 2, 256, 300.0, 0.05, 0.05, 4096
TEMPERATURES, DECAYS = (1e-4, 1e-3, 1e-2), (1e-3, 1e-2)


def convergence_rate(times, values, start=10.0):
    """Slope of log|G̃ − G̃_∞| from t = start while the gap exceeds five stationary standard deviations (G̃ need not
    be monotone: the free energy's entropy term, which it leaves out, trades against its second moment)."""
    tail = values[int(0.75 * len(values)):]
    limit, noise = tail.mean(), tail.std(ddof=1)
    gap = np.abs(values - limit)
    above = gap > max(5 * noise, 1e-12 * abs(limit))
    first = int(np.searchsorted(times, start))
    stop = first + (int(np.argmax(~above[first:])) if (~above[first:]).any() else len(above) - first)
    if stop - first < 4:
        return None, float(limit)
    slope = np.polyfit(times[first:stop], np.log(gap[first:stop]), 1)[0]
    return float(-slope), float(limit)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    U = rng.standard_normal((K, D))
    problem = mf.Problem(mf.TeacherNetwork(np.ones(K), U / np.linalg.norm(U, axis=1, keepdims=True)), mf.Gaussian(D))
    mu0 = mf.init.gaussian(M, D, seed=0)
    summary = {"d": D, "teacher_neurons": K, "m": M, "t_max": T_MAX, "dt": DT, "scheme": "stochastic Heun",
               "sgd": {"eta": ETA, "batch": BATCH}, "runs": []}
    fig, axes = plt.subplots(1, len(DECAYS), figsize=(10, 3.6), constrained_layout=True, sharey=True)
    fig2, axes2 = plt.subplots(1, len(DECAYS), figsize=(10, 3.6), constrained_layout=True, sharey=True)
    for col, lam in enumerate(DECAYS):
        for i, tau in enumerate(TEMPERATURES):
            run = mf.simulate(problem, mu0, t_max=T_MAX, dt=DT, solver="heun", backend="numpy", save_every=40,
                              dynamics=Langevin(tau, lam, seed=1), alignment=False)
            times, energy = run.times, run.observables["regularized_risk"]
            rate, limit = convergence_rate(times, energy)
            tail = slice(int(0.75 * len(times)), None)
            sgd = mf.sgd.train(problem, mu0, t_max=T_MAX, eta=ETA, batch_size=BATCH, seed=1, save_every=200,
                               temperature=tau, weight_decay=lam, alignment=False)
            sgd_tail = slice(int(0.75 * len(sgd.times)), None)
            row = {"temperature": tau, "weight_decay": lam, "rate": rate, "free_energy_limit": limit,
                   "stationary_risk": float(run.risk[tail].mean()),
                   "stationary_risk_sd": float(run.risk[tail].std(ddof=1)),
                   "ksd2_final": float(run.observables["ksd2"][-1]),
                   "ksd2_se_final": float(run.observables["ksd2_se"][-1]),
                   "noisy_sgd_stationary_risk": float(sgd.risk[sgd_tail].mean()),
                   "noisy_sgd_stationary_risk_sd": float(sgd.risk[sgd_tail].std(ddof=1))}
            summary["runs"].append(row)
            print(f"τ = {tau:g}, λ = {lam:g}: rate {rate if rate is None else round(rate, 4)}, stationary risk "
                  f"{row['stationary_risk']:.3e} (noisy SGD {row['noisy_sgd_stationary_risk']:.3e}), KSD² "
                  f"{row['ksd2_final']:.2e} ± {row['ksd2_se_final']:.1e}", flush=True)
            axes[col].semilogy(times, energy, color=f"C{i}", label=f"τ = {tau:g}")
            axes[col].axhline(limit, color=f"C{i}", ls="--", lw=0.8)
            row["times"], row["regularized_risk"] = times.tolist(), energy.tolist()
            ks, se = run.observables["ksd2"], run.observables["ksd2_se"]
            axes2[col].semilogy(times, np.maximum(np.abs(ks) * tau**2, 1e-14), color=f"C{i}", label=f"τ = {tau:g}")
            axes2[col].semilogy(times, se * tau**2, color=f"C{i}", ls=":", lw=1)
        axes[col].set(title=f"λ = {lam:g} (dashed: mean over the last quarter)", xlabel="t")
        axes2[col].set(title=f"λ = {lam:g}", xlabel="t")
    axes[0].set_ylabel("G̃ = F + (λ/2)∫|θ|²dμ")
    axes2[0].set_ylabel("τ² |KSD²(μ, p_μ)| (dotted: its s.e.)")
    for ax in (*axes, *axes2):
        ax.legend(frameon=False, fontsize=8)
    fig.savefig(OUT / "free_energy.png", dpi=150)
    fig2.savefig(OUT / "stein.png", dpi=150)
    plt.close(fig)
    plt.close(fig2)
    write_summary(OUT / "summary.json", summary, indent=1)


if __name__ == "__main__":
    main()
