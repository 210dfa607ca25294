"""Birth–death against the plain flow at the same number of particles (Rotskoff, Jelassi, Bruna & Vanden-Eijnden
2019, arXiv:1902.01843).

A teacher of 4 ReLU neurons (unit weights, random unit directions) in d = 10 with Gaussian inputs; students of m = 32
neurons from i.i.d. Gaussian (a, b), 8 seeds. The exact flow alone (rate γ = 0), and with birth and death of particles
at rates γ (F'(μ)(θ_j) − mean) for γ ∈ {0.3, 1, 3, 10, 50}, the jumps seeded. Heun steps of min(0.05, 0.1/γ) (so
that the jump probabilities γh|F' − mean| stay small: the jumps are an explicit step of the reaction) to t = 150. The
paper's
claim: the jumps accelerate the flow towards the global minimum (they add the Fisher–Rao dissipation
γ∫(F' − mean)² dμ) and remove the particles stuck where they are useless. At finite m a copy coincides with its
original forever (the flow is deterministic), so the jumps also reduce the number of distinct particles, which the
summary records. Writes
results/birth_death/{risk.png, summary.json}.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/birth_death.py          # about 8 minutes on 2 cores
"""

from pathlib import Path

import matplotlib
from outputs import write_summary

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield.dynamics import BirthDeath  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "birth_death"
D, K, M, SEEDS, T_MAX, DT, RATES = 10, 4, 32, 8, 150.0, 0.05, (0.0, 0.3, 1.0, 3.0, 10.0, 50.0)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    U = rng.standard_normal((K, D))
    problem = mf.Problem(mf.TeacherNetwork(np.ones(K), U / np.linalg.norm(U, axis=1, keepdims=True)), mf.Gaussian(D))
    zero_risk = problem.target_energy
    risks, jumps, distinct, times = {}, {}, {}, None
    for rate in RATES:
        runs = []
        for seed in range(SEEDS):
            dynamics = BirthDeath(rate, seed=100 + seed) if rate > 0 else None
            dt = min(DT, 0.1 / rate) if rate > 0 else DT
            run = mf.simulate(problem, mf.init.gaussian(M, D, seed=seed), t_max=T_MAX, dt=dt, solver="heun",
                              backend="numpy", save_every=round(1.0 / dt), dynamics=dynamics, alignment=False)
            runs.append(run.risk / zero_risk)
            jumps.setdefault(rate, []).append(float(run.observables["jumps"][-1]) if rate > 0 else 0.0)
            # a copy follows its original forever (the flow is deterministic): count the distinct particles left
            distinct.setdefault(rate, []).append(len(np.unique(np.round(run.final.state(), 10), axis=0)))
            times = run.times
        risks[rate] = np.array(runs)
        print(f"γ = {rate:4g}: median final risk {np.median(risks[rate][:, -1]):.2e}, "
              f"jumps per run {np.mean(jumps[rate]):.0f}, distinct particles at the end {np.mean(distinct[rate]):.1f}",
              flush=True)

    fig, ax = plt.subplots(figsize=(5.5, 3.6), constrained_layout=True)
    for i, rate in enumerate(RATES):
        low, mid, high = np.percentile(risks[rate], [25, 50, 75], axis=0)
        label = "plain flow (γ = 0)" if rate == 0 else f"birth–death, γ = {rate:g}"
        ax.loglog(times[1:], mid[1:], color=f"C{i}", label=label)
        ax.fill_between(times[1:], low[1:], high[1:], color=f"C{i}", alpha=0.2)
    ax.set(xlabel="t", ylabel="risk / ½E f*²", title=f"m = {M}, teacher of {K} ReLU neurons, d = {D}: "
                                                       f"median and quartiles of {SEEDS} seeds")
    ax.title.set_fontsize(8)
    ax.legend(frameon=False, fontsize=8)
    fig.savefig(OUT / "risk.png", dpi=150)
    plt.close(fig)

    checkpoints = [10.0, 50.0, T_MAX]
    index = [int(np.argmin(np.abs(times - t))) for t in checkpoints]
    summary = {"d": D, "teacher_neurons": K, "m": M, "seeds": SEEDS, "t_max": T_MAX,
               "dt": {str(rate): min(DT, 0.1 / rate) if rate > 0 else DT for rate in RATES},
               "median_risk": {str(rate): {f"t={t:g}": float(np.median(risks[rate][:, i]))
                                          for t, i in zip(checkpoints, index)} for rate in RATES},
               "mean_jumps_per_run": {str(rate): float(np.mean(jumps[rate])) for rate in RATES},
               "mean_distinct_particles_at_the_end": {str(rate): float(np.mean(distinct[rate])) for rate in RATES}}
    write_summary(OUT / "summary.json", summary, indent=1)


if __name__ == "__main__":
    main()
