"""The soft committee machine in the mean-field regime: erf student and teacher, exact flow against online SGD.

Teacher f*(x) = Σ_{i ≤ k} erf(u_i·x) with orthonormal u_i, x ~ N(0, I_d), d = 50, k ∈ {2, 4}. Student: the
mean-field network f(x) = Σ_j w_j a_j erf(b_j·x) from a sign-sphere start (a = ±1, |b| = 1) — the exact flow with
m = 512 particles (closed-form erf kernel, Williams 1997), and online SGD of the finite network (batch 64,
η = 0.05, mean-field time t = steps·η) at widths m ∈ {64, 256, 1024, 4096} from the same kind of start, whose
population risk is evaluated exactly at every save. Overlaps: for each teacher unit u_i, the output-mass-weighted mean
of cos²(b_j, u_i) over the student neurons (weights w|a||b|): 1/d for random directions, the share of the mass on ±u_i
for a student specialised onto the teacher units, and 1/k each when the mass lies in span(U) without preferring a
unit; their sum is the share of the mass in span(U). The mean cos² cannot tell neurons sitting on single units from
neurons spread over span(U), so a specialisation index is recorded too: the mass-weighted mean over neurons of
max_i cos²(b_j, u_i) / Σ_i cos²(b_j, u_i), which is 1 when every neuron's component in span(U) lies along one teacher
unit, 1/k when it is equally on all, and (Monte Carlo) about 0.82 (k = 2) or 0.62 (k = 4) for directions spread
uniformly over span(U). (The committee-machine literature at m = k watches the
overlaps R_in = ⟨b_i, u_n⟩ leave a symmetric plateau; with m ≫ k the analogue is the mass-weighted overlap.)
Writes results/soft_committee/{risk.png, overlaps.png, summary.json}.

A rerun on the same machine rewrites the tracked outputs identically (experiments/outputs.py: numbers to 4
significant digits, no wall times, one BLAS thread, figures without version or date metadata).

    python experiments/soft_committee.py
"""

from pathlib import Path

import matplotlib
from outputs import write_summary

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield import plot  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "soft_committee"
D, M_FLOW, T_MAX, DT, ETA, BATCH = 50, 512, 60.0, 0.05, 0.05, 64
SGD_WIDTHS = (64, 256, 1024, 4096)


def overlaps(U):
    """Observable: per teacher unit u_i, the output-mass-weighted mean of cos²(b_j, u_i)."""
    def mean_squared_cosine(mu):
        mass = mu.weights * np.abs(mu.a) * np.linalg.norm(mu.b, axis=1)
        cos = (mu.b / np.maximum(np.linalg.norm(mu.b, axis=1, keepdims=True), 1e-300)) @ U.T
        return (mass @ cos**2) / mass.sum()
    return mean_squared_cosine


def specialisation_index(U):
    """Observable: mass-weighted mean of max_i cos²(b_j, u_i) / Σ_i cos²(b_j, u_i)."""
    def index(mu):
        mass = mu.weights * np.abs(mu.a) * np.linalg.norm(mu.b, axis=1)
        cos2 = (mu.b @ U.T) ** 2
        share = cos2.max(axis=1) / np.maximum(cos2.sum(axis=1), 1e-300)
        return float(mass @ share / mass.sum())
    return index


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    summary = {"d": D, "m_flow": M_FLOW, "t_max": T_MAX, "dt": DT, "eta": ETA, "batch": BATCH, "runs": {}}
    fig_r, axes_r = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    fig_s, axes_s = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    for ax_r, ax_s, k in zip(axes_r, axes_s, (2, 4)):
        U = np.eye(D)[:k]
        problem = mf.Problem(mf.TeacherNetwork(np.ones(k), U, activation="erf"), mf.Gaussian(D), activation="erf")
        obs = {"overlaps": overlaps(U), "specialisation_index": specialisation_index(U)}
        flow = mf.simulate(problem, mf.init.sign_sphere(M_FLOW, D, seed=0), t_max=T_MAX, dt=DT, solver="heun",
                           save_every=20, observables=obs, alignment=False)
        runs = {f"flow, m = {M_FLOW}": flow}
        for m in SGD_WIDTHS:
            runs[f"SGD, m = {m}"] = mf.sgd.train(problem, mf.init.sign_sphere(m, D, seed=0), t_max=T_MAX, eta=ETA,
                                                 batch_size=BATCH, seed=1, save_every=40, observables=obs,
                                                 alignment=False)
        for label, traj in runs.items():
            spec = np.asarray(traj.observables["overlaps"])
            summary["runs"][f"k = {k}, {label}"] = {
                "times": traj.times.tolist(), "risk": traj.risk.tolist(), "overlaps": spec.tolist(),
                "risk_end": float(traj.risk[-1]), "overlaps_end": spec[-1].tolist(),
                "specialisation_index": np.asarray(traj.observables["specialisation_index"]).tolist()}
            style = "k-" if label.startswith("flow") else "-"
            ax_r.semilogy(traj.times, traj.risk, style, label=label, lw=2 if label.startswith("flow") else 1)
            print(f"k = {k}, {label:16s}: risk {traj.risk[0]:.4f} -> {traj.risk[-1]:.2e}; mass-weighted cos² with "
                  f"each teacher unit {np.round(spec[0], 3).tolist()} -> {np.round(spec[-1], 3).tolist()} "
                  f"(in span(U): {spec[-1].sum():.3f}); specialisation index "
                  f"{summary['runs'][f'k = {k}, {label}']['specialisation_index'][0]:.3f} -> "
                  f"{summary['runs'][f'k = {k}, {label}']['specialisation_index'][-1]:.3f}")
        flow_spec = np.asarray(flow.observables["overlaps"])
        big = np.asarray(runs[f"SGD, m = {SGD_WIDTHS[-1]}"].observables["overlaps"])
        sgd_times = runs[f"SGD, m = {SGD_WIDTHS[-1]}"].times
        for i in range(k):
            (line,) = ax_s.plot(flow.times, flow_spec[:, i], label=f"flow, unit {i + 1}")
            ax_s.plot(sgd_times, big[:, i], ":", color=line.get_color(),
                      label=f"SGD m = {SGD_WIDTHS[-1]}, unit {i + 1}")
        ax_r.set_title(f"soft committee machine, k = {k}, d = {D}: population risk", fontsize=9)
        ax_r.set_xlabel("t (mean-field time)")
        ax_r.set_ylabel("risk")
        ax_r.legend(fontsize=7)
        ax_s.set_title(f"k = {k}: mass-weighted mean cos²(b, u_i) per teacher unit (1/k dotted)", fontsize=9)
        ax_s.axhline(1 / k, color="grey", ls=":", lw=0.8)
        ax_s.set_xlabel("t (mean-field time)")
        ax_s.legend(fontsize=6, ncol=2)
    plot.savefig(fig_r, OUT / "risk.png")
    plot.savefig(fig_s, OUT / "overlaps.png")
    write_summary(OUT / "summary.json", summary, indent=1)


if __name__ == "__main__":
    main()
