"""Implicit bias of the logistic loss (Chizat & Bach 2020, "Implicit bias of gradient descent for wide two-layer
neural networks trained with the logistic loss", arXiv:2002.04486): training both layers tends to a max-margin
classifier for the variation norm (F1), training the output layer alone to the max-margin classifier of the random
features' kernel (F2). The two differ where a few neurons can carry the margin.

Data (our construction; the paper shows its experiments as figures without a table): 40 points uniform in [−1, 1]²,
labelled by a teacher of two ReLU neurons with biases, f*(x) = relu(x₁ + x₂ − 0.3) − relu(−x₁ + 0.5 x₂ + 0.2) − 0.1,
points within 0.08 of the boundary f* = 0 dropped. Students: m = 1024 ReLU neurons with biases, (a, b, c) Gaussian
(a ~ N(0, 1), (b, c) ~ N(0, I/3)), the same initial neurons for both dynamics: the exact mean-field flow of the
logistic loss, and the flow of the output weights alone (``dynamics=OutputLayer()``), RK4 with dt = 0.1 to t = 3000.
Recorded: the normalised F1 margin min_i y_i f(x_i) / ∫|a| |(b, c)| dμ (``margin``) for both, and the decision
boundaries. Writes results/implicit_bias/{boundaries.png, margins.png, summary.json}.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/implicit_bias.py        # about 2 minutes on 2 cores
"""

from pathlib import Path

import matplotlib
from outputs import write_summary

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield.data import DataSet  # noqa: E402
from meanfield.dynamics import OutputLayer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "implicit_bias"
N, M, T_MAX, DT, GAP = 40, 1024, 3000.0, 0.1, 0.08


def teacher(x):
    relu = lambda z: np.maximum(z, 0.0)  # noqa: E731
    return relu(x[:, 0] + x[:, 1] - 0.3) - relu(-x[:, 0] + 0.5 * x[:, 1] + 0.2) - 0.1


def make_data(seed: int = 0) -> DataSet:
    rng = np.random.default_rng(seed)
    x = np.empty((0, 2))
    while len(x) < N:
        candidates = rng.uniform(-1, 1, (4 * N, 2))
        x = np.vstack([x, candidates[np.abs(teacher(candidates)) > GAP]])
    x = x[:N]
    return DataSet(x, np.sign(teacher(x)), name="two-neuron teacher in 2-D")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    data = make_data()
    problem = mf.EmpiricalProblem(data, loss="logistic", bias=True)
    mu0 = mf.init.gaussian(M, 2, seed=0, b_std=1 / np.sqrt(3), bias_std=1 / np.sqrt(3))
    save = mf.SaveAt(10, particles=False)  # the margins at every unit of time; the final neurons are kept anyway
    runs = {"both layers (mean field)": mf.simulate(problem, mu0, t_max=T_MAX, dt=DT, solver="rk4", save_every=save),
            "output layer only (kernel)": mf.simulate(problem, mu0, t_max=T_MAX, dt=DT, solver="rk4",
                                                      save_every=save, dynamics=OutputLayer())}
    summary = {"setup": {"n": data.n, "m": M, "t_max": T_MAX, "dt": DT}, "runs": {}}
    for name, traj in runs.items():
        margin, loss = traj.observables["margin"], traj.observables["train_loss"]
        state = traj.final.state()
        active = np.abs(state[:, 0]) * np.linalg.norm(state[:, 1:], axis=1)
        share = np.sort(active)[::-1].cumsum() / active.sum()
        summary["runs"][name] = {"margin_final": float(margin[-1]), "train_loss_final": float(loss[-1]),
                                 "margin_t300": float(np.interp(300.0, traj.times, margin)),
                                 "neurons_carrying_90pct_of_norm": int(np.searchsorted(share, 0.9) + 1)}
        print(f"{name}: F1-normalised margin {margin[-1]:.4f} at t = {T_MAX:g} (train loss {loss[-1]:.2e}); "
              f"{summary['runs'][name]['neurons_carrying_90pct_of_norm']} neurons carry 90 % of ∫|a||w|", flush=True)
    write_summary(OUT / "summary.json", summary, indent=2)

    grid = np.linspace(-1.1, 1.1, 300)
    xx, yy = np.meshgrid(grid, grid)
    points = np.column_stack([xx.ravel(), yy.ravel()])
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), constrained_layout=True)
    for ax, (name, traj) in zip(axes, runs.items()):
        f = problem.predict(traj.final, points).reshape(xx.shape)
        ax.contourf(xx, yy, f, levels=[-1e9, 0, 1e9], colors=["#d6e4f0", "#f5d5d5"], alpha=0.8)
        ax.contour(xx, yy, f, levels=[0], colors="k", linewidths=1.2)
        ax.contour(xx, yy, teacher(points).reshape(xx.shape), levels=[0], colors="gray", linestyles="--",
                   linewidths=0.8)
        ax.scatter(*data.x[data.y > 0].T, c="tab:red", s=14, marker="o")
        ax.scatter(*data.x[data.y < 0].T, c="tab:blue", s=14, marker="s")
        ax.set(title=f"{name}\nmargin {summary['runs'][name]['margin_final']:.3f}", aspect="equal")
    fig.savefig(OUT / "boundaries.png", dpi=130)

    fig, ax = plt.subplots(figsize=(5.5, 3.6), constrained_layout=True)
    for name, traj in runs.items():
        ax.semilogx(np.maximum(traj.times, DT), traj.observables["margin"], label=name)
    ax.set(xlabel="t", ylabel="min_i y_i f(x_i) / ∫|a||w| dμ", ylim=(0, None), title="F1-normalised margin")
    ax.legend()
    fig.savefig(OUT / "margins.png", dpi=130)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
