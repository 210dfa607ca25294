"""ReLU networks with biases on a teacher with biases: the learned neurons' hyperplanes against the teacher's.

Teacher f*(x) = Σ_{i ≤ 3} c_i relu(⟨u_i, x⟩ + β_i) with unit u_i, c = (1, −0.8, 0.6), β = (0.5, −0.3, 0.2),
x ~ N(0, I_d), d ∈ {2, 10}. Student: neurons (a, b, c) from a Gaussian start (a ~ N(0, 1), b ~ N(0, I/d),
c ~ N(0, 0.25)); the exact flow (closed-form kernel through the bivariate normal distribution function, m = 256, Heun,
dt = 0.05) and online SGD of the finite network with biases (batch 64, η = 0.05) at m = 256 and 1024 from the same kind
of start, to t = 100.

A neuron's hyperplane is {x : ⟨b, x⟩ + c = 0}, at signed offset −c/|b| from the origin along b/|b|; the teacher's are at
−β_i (|u_i| = 1). Each student neuron is matched to the teacher unit whose direction is closest (|cos(b, u_i)|), and
the summary gives, per teacher unit, the output mass w|a||(b, c)| of the student neurons within cos ≥ 0.99 of +u_i
(a ReLU hyperplane has an orientation: −u_i is a different unit) and their mass-weighted mean offset.
Writes results/biased_relu/{hyperplanes_d2.png, offsets_d10.png, risk.png, summary.json, table.md}.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/biased_relu.py
"""

from pathlib import Path

import matplotlib
from outputs import write_summary, write_text

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield import plot  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "biased_relu"
COEF, BETA = np.array([1.0, -0.8, 0.6]), np.array([0.5, -0.3, 0.2])
M_FLOW, T_MAX, DT, ETA, BATCH, SGD_WIDTHS, COS, SHOWN = 256, 100.0, 0.05, 0.05, 64, (256, 1024), 0.99, 200


def teacher_directions(d):
    if d == 2:
        angles = np.array([0.3, 2.2, 4.1])
        return np.column_stack([np.cos(angles), np.sin(angles)])
    U = np.random.default_rng(0).standard_normal((3, d))
    return U / np.linalg.norm(U, axis=1, keepdims=True)


def matched(mu, U):
    """Per neuron: index of the closest teacher direction, the cosine with it, the offset −c/|b| and the mass."""
    norms = np.linalg.norm(mu.b, axis=1)
    cos = (mu.b / np.maximum(norms, 1e-300)[:, None]) @ U.T
    nearest = np.argmax(cos, axis=1)
    mass = mu.weights * np.abs(mu.a) * np.hypot(norms, mu.c)
    return nearest, cos[np.arange(mu.m), nearest], -mu.c / np.maximum(norms, 1e-300), mass / mass.sum()


def per_unit(mu, U):
    nearest, cos, offset, mass = matched(mu, U)
    rows = []
    for i in range(len(U)):
        sel = (nearest == i) & (cos >= COS)
        share = float(mass[sel].sum())
        rows.append({"mass_share": share, "mean_offset": float(mass[sel] @ offset[sel] / share) if share else None,
                     "teacher_offset": float(-BETA[i])})
    return rows


def draw_hyperplanes(ax, mu, U, title):
    grid = np.linspace(-3, 3, 2)
    _, _, _, mass = matched(mu, U)
    for j in np.argsort(mass)[-SHOWN:]:  # the heaviest neurons, lightest first (the figure stays small)
        b, c = mu.b[j], mu.c[j]
        # An opaque shade of blue per neuron (white → blue with its mass), drawn heaviest last: overlapping
        # translucent lines made a 1 MB image.
        shade = float(mass[j] / mass.max())
        color = (1 - shade) * np.ones(3) + shade * np.array([0.12, 0.47, 0.71])
        if abs(b[1]) > abs(b[0]):
            ax.plot(grid, -(c + b[0] * grid) / b[1], color=color, lw=0.8)
        else:
            ax.plot(-(c + b[1] * grid) / b[0], grid, color=color, lw=0.8)
    for u, beta in zip(U, BETA):
        ax.plot(grid, -(beta + u[0] * grid) / u[1], "k--", lw=1.5)
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    summary = {"m_flow": M_FLOW, "t_max": T_MAX, "dt": DT, "eta": ETA, "batch": BATCH, "teacher_c": COEF.tolist(),
               "teacher_bias": BETA.tolist(), "runs": {}}
    fig_r, axes_r = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    fig_h, axes_h = plt.subplots(1, 3, figsize=(13, 5.2), constrained_layout=True)
    fig_o, axes_o = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True, sharey=True)
    table = ["| d | run | risk t = 0 → 100 | per teacher unit: mass share within cos ≥ 0.99, mean offset −c/|b| "
             "(teacher −β: −0.5, 0.3, −0.2) |", "| ---: | --- | --- | --- |"]
    for ax_r, d in zip(axes_r, (2, 10)):
        U = teacher_directions(d)
        problem = mf.Problem(mf.TeacherNetwork(COEF, U, bias=BETA), mf.Gaussian(d), bias=True)
        flow = mf.simulate(problem, mf.init.gaussian(M_FLOW, d, seed=0, bias_std=0.5), t_max=T_MAX, dt=DT,
                           solver="heun", save_every=20, alignment=False, progress=True)
        runs = {f"flow, m = {M_FLOW}": flow}
        for m in SGD_WIDTHS:
            runs[f"SGD, m = {m}"] = mf.sgd.train(problem, mf.init.gaussian(m, d, seed=0, bias_std=0.5), t_max=T_MAX,
                                                 eta=ETA, batch_size=BATCH, seed=1, save_every=40, alignment=False,
                                                 progress=True)
        for label, traj in runs.items():
            units = per_unit(traj.final, U)
            summary["runs"][f"d = {d}, {label}"] = {"times": traj.times.tolist(), "risk": traj.risk.tolist(),
                                                    "risk_end": float(traj.risk[-1]), "units": units}
            cells = "; ".join(f"{u['mass_share']:.2f}, " + ("–" if u["mean_offset"] is None else
                                                              f"{u['mean_offset']:+.3f}") for u in units)
            table.append(f"| {d} | {label} | {traj.risk[0]:.3f} → {traj.risk[-1]:.2e} | {cells} |")
            print(table[-1])
            ax_r.semilogy(traj.times, traj.risk, "k-" if label.startswith("flow") else "-", label=label)
        ax_r.set_title(f"biased ReLU teacher (3 units), d = {d}: population risk", fontsize=9)
        ax_r.set_xlabel("t (mean-field time)")
        ax_r.legend(fontsize=8)
        if d == 2:
            for ax, (label, traj) in zip(axes_h, runs.items()):
                draw_hyperplanes(ax, traj.final, U, f"d = 2, {label}, t = {T_MAX:g}: the {SHOWN} heaviest\n"
                                                    "student hyperplanes (shade ∝ mass), teacher's dashed")
        else:
            for ax, (label, traj) in zip(axes_o, runs.items()):
                nearest, cos, offset, mass = matched(traj.final, U)
                for i in range(3):
                    sel = nearest == i
                    ax.scatter(offset[sel], cos[sel], s=4000 * mass[sel], alpha=0.6, label=f"nearest u_{i + 1}")
                    ax.axvline(-BETA[i], color=f"C{i}", ls="--", lw=1)
                ax.set_xlim(-3, 3)
                ax.set_xlabel("hyperplane offset −c/|b|")
                ax.set_title(f"d = 10, {label}\nneurons by offset and cos(b, nearest u_i)", fontsize=9)
            axes_o[0].set_ylabel("cos(b, u_i)")
            axes_o[0].legend(fontsize=7)
    plot.savefig(fig_r, OUT / "risk.png")
    plot.savefig(fig_h, OUT / "hyperplanes_d2.png")
    plot.savefig(fig_o, OUT / "offsets_d10.png")
    write_summary(OUT / "summary.json", summary, indent=1)
    write_text(OUT / "table.md", "\n".join(table) + "\n")


if __name__ == "__main__":
    main()
