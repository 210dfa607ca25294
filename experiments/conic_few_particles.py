"""Few particles on a sparse teacher: the Wasserstein flow stalls where the conic (WFR) flow converges.

Chizat (2019, arXiv:1907.10300, §5 and its script success_2NNalt.jl): a teacher of m0 = 5 ReLU neurons with unit
weights, random unit directions in d = 20, inputs uniform on the sphere; students of m ∈ {5, 10, 20, 50} neurons
from i.i.d. Gaussian (a, b). Each student runs the exact Wasserstein flow (α = β = 1 in the conic parametrisation)
and the conic flow with the position step four times the mass step (β/α = 4, the ratio of Chizat's figure) from the
same start, for t = 2000 with Heun steps of 0.2, over 20 seeds per m. (α, β) = (1, 4) also moves the directions four
times faster than the Wasserstein flow; the control (α, β) = (1/4, 1) has the same ratio at the Wasserstein flow's
speed of directions (it is the (1, 4) flow slowed down four times), so what it gains over the Wasserstein flow comes
from the ratio alone. Because (1/4, 1) to t is (1, 4) to t/4, the fair question — does the ratio help at equal speed
of the directions and equal time? — is answered by one more control: the Wasserstein flow to t = 8000 at m = 10,
against (1/4, 1) to 8000, i.e. (1, 4) to 2000. A run succeeds when its risk falls below 1e-4
of the zero network's risk ½E f*² (the spurious configurations stall near 4e-3). Chizat's own setting differs in
two ways: his neurons are S_j relu(⟨w_j|w_j|, x⟩) with signs fixed (ours have a free output weight a), with weight
decay λ = 5e-4 and online SGD; here the flows are exact and unregularised. Writes
results/conic_few_particles/{success.png, risk.png, summary.json}.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/conic_few_particles.py          # about 20 minutes on 2 cores
    python experiments/conic_few_particles.py --replot # redraw success.png from summary.json
"""

import json
from pathlib import Path

import matplotlib
from outputs import write_summary

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield.dynamics import Conic  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "conic_few_particles"
D, M0, WIDTHS, SEEDS, T_MAX, DT, SUCCESS = 20, 5, (5, 10, 20, 50), 20, 2000.0, 0.2, 1e-4
FLOWS = {"Wasserstein (α = β = 1)": None, "conic (α = 1, β = 4)": Conic(alpha=1.0, beta=4.0),
         "conic (α = 1/4, β = 1)": Conic(alpha=0.25, beta=1.0)}
COLORS = {name: f"C{i}" for i, name in enumerate(FLOWS)}


def teacher_problem():
    rng = np.random.default_rng(1)
    U = rng.standard_normal((M0, D))
    return mf.Problem(mf.TeacherNetwork(np.ones(M0), U / np.linalg.norm(U, axis=1, keepdims=True)), mf.Sphere(D))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    problem = teacher_problem()
    zero_risk = problem.target_energy
    final = {name: {m: [] for m in WIDTHS} for name in FLOWS}
    curves = {}
    for m in WIDTHS:
        for seed in range(SEEDS):
            mu0 = mf.init.gaussian(m, D, seed=seed)
            for name, dynamics in FLOWS.items():
                run = mf.simulate(problem, mu0, t_max=T_MAX, dt=DT, solver="heun", backend="numpy", save_every=100,
                                  dynamics=dynamics, alignment=False)
                final[name][m].append(float(run.risk[-1] / zero_risk))
                if m == 10 and seed < 5:
                    curves[(name, seed)] = (run.times, run.risk / zero_risk)
        rates = {name: np.mean(np.array(final[name][m]) < SUCCESS) for name in FLOWS}
        print(f"m = {m:2d}: " + ", ".join(f"{name}: {rate:.0%}" for name, rate in rates.items()), flush=True)

    long_control = []
    for seed in range(SEEDS):
        run = mf.simulate(problem, mf.init.gaussian(10, D, seed=seed), t_max=4 * T_MAX, dt=DT, solver="heun",
                          backend="numpy", save_every=400, alignment=False)
        long_control.append(float(run.risk[-1] / zero_risk))
    long_rate = float(np.mean(np.array(long_control) < SUCCESS))
    print(f"control, m = 10: Wasserstein to t = {4 * T_MAX:g}: {long_rate:.0%} (conic (1/4, 1) to the same t: "
          f"{np.mean(np.array(final['conic (α = 1, β = 4)'][10]) < SUCCESS):.0%})", flush=True)

    fig, ax = plt.subplots(figsize=(5, 3.4), constrained_layout=True)
    for (name, seed), (times, risk) in curves.items():
        ax.loglog(times[1:], risk[1:], color=COLORS[name], alpha=0.7, label=name if seed == 0 else None)
    ax.axhline(SUCCESS, color="k", lw=0.5, ls="--")
    ax.set(xlabel="t", ylabel="risk / ½E f*²", title="m = 10, five seeds")
    ax.legend(frameon=False)
    fig.savefig(OUT / "risk.png", dpi=150)
    plt.close(fig)

    summary = {"d": D, "teacher_neurons": M0, "inputs": "sphere", "t_max": T_MAX, "dt": DT, "solver": "heun",
               "success_threshold": SUCCESS, "seeds": SEEDS,
               "success_rate": {name: {str(m): float(np.mean(np.array(final[name][m]) < SUCCESS)) for m in WIDTHS}
                                for name in FLOWS},
               "median_final_risk": {name: {str(m): float(np.median(final[name][m])) for m in WIDTHS}
                                     for name in FLOWS},
               "final_risk": {name: {str(m): final[name][m] for m in WIDTHS} for name in FLOWS},
               "control_m10_wasserstein_t8000": {"success_rate": long_rate, "final_risk": long_control}}
    write_summary(OUT / "summary.json", summary, indent=1)
    plot_success(summary)


def plot_success(summary):
    """results/conic_few_particles/success.png from the summary (``--replot`` redraws it without running)."""
    fig, ax = plt.subplots(figsize=(5, 3.4), constrained_layout=True)
    for name, rates in summary["success_rate"].items():
        ax.plot(WIDTHS, [100 * rates[str(m)] for m in WIDTHS], "o-", color=COLORS[name], label=name)
    control = summary["control_m10_wasserstein_t8000"]["success_rate"]
    ax.plot([10], [100 * control], "s", mfc="none", color=COLORS["Wasserstein (α = β = 1)"], ms=9,
            label=f"Wasserstein to t = {4 * T_MAX:g} (m = 10)")
    ax.axvline(M0, color="k", lw=0.5, ls=":")
    ax.set(xscale="log", xlabel="particles m (teacher: 5 neurons)",
           ylabel=f"success at t = {T_MAX:g} (%, {SEEDS} seeds)", ylim=(-5, 105))
    ax.set_xticks(WIDTHS, [str(m) for m in WIDTHS])
    ax.minorticks_off()
    ax.legend(frameon=False, fontsize=8)
    fig.savefig(OUT / "success.png", dpi=150)
    plt.close(fig)


if __name__ == "__main__":
    import sys

    if "--replot" in sys.argv:
        plot_success(json.loads((OUT / "summary.json").read_text()))
    else:
        main()
