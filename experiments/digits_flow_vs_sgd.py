"""The exact mean-field flow on a real data set against SGD of finite networks: scikit-learn's digits, 10 classes,
cross-entropy loss with a vector output layer, ReLU neurons with biases.

Data: the 1797 8 × 8 digits, standardised, 360 held out (seeded split). Networks f(x) = Σ_j w_j a_j relu(⟨b_j, x⟩ + c_j)
∈ R^10 in the mean-field scaling (w_j = 1/m), a_j ~ N(0, I), b_j ~ N(0, I/256), c_j ~ N(0, 1/4). For each width
m ∈ {64, 256, 1024, 4096} and 3 seeds: the exact empirical flow of the same initial neurons (Heun, dt = 0.25) and
mini-batch SGD (batch 32, mean-field step η = 0.05, so t = steps · η), both to t = 40. The flow at m = 4096 (seed 0)
stands for the mean-field limit. Recorded: training loss and test accuracy over t, and at t = 40 the RMS distance of
the test-set logits (i) between SGD and the flow of the same neurons (the SGD noise) and (ii) between the flow at m
and the m = 4096 flow (the finite-width fluctuation, expected ∝ m^{-1/2}). Writes
results/digits_flow_vs_sgd/{curves.png, summary.json}.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/digits_flow_vs_sgd.py      # about 4 minutes on 2 cores
"""

from pathlib import Path

import matplotlib
from outputs import write_summary

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield.data import digits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "digits_flow_vs_sgd"
WIDTHS, SEEDS, T_MAX, DT, ETA, BATCH = (64, 256, 1024, 4096), 3, 40.0, 0.25, 0.05, 32


def init(m: int, seed: int):
    return mf.init.gaussian(m, 64, seed=seed, b_std=1 / 16, bias_std=0.5, outputs=10)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    data = digits(n_test=360, seed=0)
    problem = mf.EmpiricalProblem(data, loss="cross_entropy", bias=True)
    reference = mf.simulate(problem, init(4096, 0), t_max=T_MAX, dt=DT, save_every=8)
    half_step = mf.simulate(problem, init(4096, 0), t_max=T_MAX, dt=DT / 2, save_every=16)
    logits_ref = problem.predict(reference.final, data.x_test)
    step_error = float(np.sqrt(np.mean((problem.predict(half_step.final, data.x_test) - logits_ref) ** 2)))
    print(f"time-step error of the reference flow (dt {DT} vs {DT / 2}): RMS logits {step_error:.1e}", flush=True)
    rows, curves = [], {}
    for m in WIDTHS:
        for seed in range(SEEDS):
            mu0 = init(m, seed)
            flow = reference if (m, seed) == (4096, 0) else mf.simulate(problem, mu0, t_max=T_MAX, dt=DT,
                                                                         save_every=8)
            sgd = mf.sgd.train(problem, mu0, t_max=T_MAX, eta=ETA, batch_size=BATCH, mode="minibatch",
                               seed=100 + seed, save_every=40)
            f_flow, f_sgd = problem.predict(flow.final, data.x_test), problem.predict(sgd.final, data.x_test)
            row = {"m": m, "seed": seed,
                   "flow_train_loss": float(flow.observables["train_loss"][-1]),
                   "sgd_train_loss": float(sgd.observables["train_loss"][-1]),
                   "flow_test_accuracy": float(flow.observables["test_accuracy"][-1]),
                   "sgd_test_accuracy": float(sgd.observables["test_accuracy"][-1]),
                   "sgd_vs_flow_rms": float(np.sqrt(np.mean((f_sgd - f_flow) ** 2))),
                   "flow_vs_limit_rms": float(np.sqrt(np.mean((f_flow - logits_ref) ** 2)))}
            rows.append(row)
            if seed == 0:
                curves[m] = {"flow": (flow.times, flow.observables["train_loss"], flow.observables["test_accuracy"]),
                             "sgd": (sgd.times, sgd.observables["train_loss"], sgd.observables["test_accuracy"])}
            print(f"m = {m:4d} seed {seed}: test accuracy flow {row['flow_test_accuracy']:.3f} SGD "
                  f"{row['sgd_test_accuracy']:.3f}; train loss flow {row['flow_train_loss']:.4f} SGD "
                  f"{row['sgd_train_loss']:.4f}; RMS logits SGD–flow {row['sgd_vs_flow_rms']:.3f}, "
                  f"flow–limit {row['flow_vs_limit_rms']:.3f}", flush=True)

    table = []
    for m in WIDTHS:
        sel = [r for r in rows if r["m"] == m]
        row = {key: (float(np.mean([r[key] for r in sel])) if key != "m" else m) for key in sel[0] if key != "seed"}
        # the reference run itself (m = 4096, seed 0) is at distance 0 from itself: left out of its width's mean
        others = [r["flow_vs_limit_rms"] for r in sel if (r["m"], r["seed"]) != (4096, 0)]
        row["flow_vs_limit_rms"] = float(np.mean(others))
        table.append(row)
    fluct = [t["flow_vs_limit_rms"] for t in table]
    slope = float(np.polyfit(np.log(WIDTHS), np.log(fluct), 1)[0])
    summary = {"setup": {"n_train": data.n, "n_test": int(data.x_test.shape[0]), "t_max": T_MAX, "dt": DT,
                         "eta": ETA, "batch": BATCH, "seeds": SEEDS},
               "reference_step_error_rms": step_error, "per_width": table,
               "finite_width_exponent": slope, "runs": rows}
    write_summary(OUT / "summary.json", summary, indent=2)
    print(f"flow–limit RMS ∝ m^{slope:.2f} over m = {WIDTHS} (at m = 4096 between seeds: the reference's own "
          "finite-width error is of that size)")

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), constrained_layout=True)
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(WIDTHS)))
    for color, m in zip(colors, WIDTHS):
        for kind, style in (("flow", "-"), ("sgd", ":")):
            t, loss, acc = curves[m][kind]
            label = f"m = {m}, {'exact flow' if kind == 'flow' else 'SGD'}"
            axes[0].semilogy(t, loss, style, color=color, label=label)
            axes[1].plot(t, acc, style, color=color)
    axes[0].set(xlabel="mean-field time t", ylabel="training cross-entropy", title="digits, 10 classes")
    axes[1].set(xlabel="mean-field time t", ylabel="test accuracy", ylim=(0.8, 1.0))
    axes[0].legend(fontsize=7, ncol=2)
    widths = np.array(WIDTHS)
    for key, label in (("flow_vs_limit_rms", "flow at m vs flow at m = 4096"),
                       ("sgd_vs_flow_rms", "SGD vs flow, same m")):
        axes[2].loglog(widths, [row[key] for row in table], "o-", label=label)
    axes[2].loglog(widths, table[0]["flow_vs_limit_rms"] * (widths / widths[0]) ** -0.5, "k--", lw=0.8,
                   label="∝ m^(−1/2)")
    axes[2].set(xlabel="width m", ylabel="RMS distance of test logits at t = 40", title="finite width and SGD noise")
    axes[2].legend(fontsize=7)
    fig.savefig(OUT / "curves.png", dpi=130)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
