"""The risk reached at fixed times by students of every unit on one shared teacher problem.

Teacher: the soft committee machine f*(x) = Σ_{i ≤ 3} erf(⟨u_i, x⟩) with orthonormal u_i, x ~ N(0, I_20). Students:
the mean-field network of each unit — relu, leaky_relu (α = 0.1), abs, relu2, relu3, erf, gelu, tanh, silu, softplus —
from the same start (sign sphere: a = ±1, |b| = 0.5, m = 256), the exact flow to t = 40 with the adaptive dopri5
solver (rtol 1e-6; a fixed Heun step of 0.05 is unstable for relu³, whose kernel grows like |b|⁶). A student
of another unit than the teacher's is correlated with it through the mixed Hermite kernel (exact coefficients for the
kinked units), its own self-interaction through its closed form (ReLU family, ReLU powers, erf) or its Hermite series
(gelu, silu, softplus at tol 1e-10; tanh, whose series converges slowly — poles at ±iπ/2 — at tol 1e-6 with orders
up to 280: at tol 1e-8 its neurons outgrew the series, √κ|b| = 1.77 at t ≈ 20). The table gives the exact
population risk at t = 0, 5, 40, the Hermite orders used at the end, and the accepted steps (the cost: the wall time
is printed, not written, so that a rerun rewrites the same files — experiments/outputs.py). Parity decides a lot here:
the teacher is odd, and the odd part of a ReLU-family unit is linear (relu: z/2; GELU's too: zΦ(z) has odd part
z/2), so relu, leaky-ReLU and GELU students can only fit the teacher's linear part, and an abs student (even) cannot
fit it at all — its velocity is zero. Writes results/activation_table/{table.md, risk.png, summary.json}.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/activation_table.py
"""

import time
from pathlib import Path

import matplotlib
from outputs import write_summary, write_text

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield import plot  # noqa: E402
from meanfield.activations import LeakyReLU, Tanh, as_activation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "activation_table"
D, K, M, T_MAX, DT, RADIUS, REPORT = 20, 3, 256, 40.0, 0.05, 0.5, (0.0, 5.0, 40.0)
UNITS = {"relu": as_activation("relu"), "leaky_relu (0.1)": LeakyReLU(0.1), "abs": as_activation("abs"),
         "relu2": as_activation("relu2"), "relu3": as_activation("relu3"), "erf": as_activation("erf"),
         "gelu": as_activation("gelu"), "tanh (tol 1e-6)": Tanh(tol=1e-6),
         "silu": as_activation("silu"), "softplus": as_activation("softplus")}


def orders(problem) -> str:
    """The Hermite orders the last evaluation used: the student's own series and the mixed kernel with the teacher."""
    parts = []
    if hasattr(problem.unit, "last_order") and problem.unit.degree is None:
        parts.append(f"self {problem.unit.last_order}")
    if problem.unit != problem.target.unit:
        parts.append(f"mixed {problem.target.mixed_kernel(problem.unit).last_order}")
    return ", ".join(parts) or "closed form"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    teacher = mf.TeacherNetwork(np.ones(K), np.eye(D)[:K], activation="erf")
    mu0 = mf.init.sign_sphere(M, D, seed=0, radius=RADIUS)
    summary = {"d": D, "k": K, "m": M, "t_max": T_MAX, "dt": DT, "radius": RADIUS, "runs": {}}
    table = ["| student unit | risk t = 0 | t = 5 | t = 40 | Hermite orders at the end | steps |",
             "| --- | ---: | ---: | ---: | --- | ---: |"]
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for label, unit in UNITS.items():
        problem = mf.Problem(teacher, mf.Gaussian(D), activation=unit)
        start = time.perf_counter()
        traj = mf.simulate(problem, mu0, t_max=T_MAX, dt=DT, solver="dopri5", save_every=10, alignment=False)
        wall = time.perf_counter() - start
        risks = [float(np.interp(t, traj.times, traj.risk)) for t in REPORT]
        summary["runs"][label] = {"times": traj.times.tolist(), "risk": traj.risk.tolist(), "risk_at": risks,
                                  "orders": orders(problem), "steps": traj.info["n_steps"]}
        table.append(f"| {label} | " + " | ".join(f"{r:.3e}" for r in risks)
                     + f" | {orders(problem)} | {traj.info['n_steps']} |")
        print(f"{table[-1]} {wall:.0f} s")
        ax.semilogy(traj.times, traj.risk, label=label, lw=2 if label == "erf" else 1)
    ax.set_title(f"erf teacher (k = {K}, d = {D}), students of every unit (m = {M}): exact population risk",
                 fontsize=9)
    ax.set_xlabel("t (mean-field time)")
    ax.set_ylabel("risk")
    ax.legend(fontsize=7, ncol=2)
    plot.savefig(fig, OUT / "risk.png")
    write_summary(OUT / "summary.json", summary, indent=1)
    write_text(OUT / "table.md", "\n".join(table) + "\n")


if __name__ == "__main__":
    main()
