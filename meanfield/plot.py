"""Matplotlib figures of trajectories (one helper per kind of figure)."""

from __future__ import annotations

import numpy as np


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 3.5), constrained_layout=True)
    return ax


def risk_curve(trajectories, labels=None, ax=None, minimum: float | None = None, **kwargs):
    """Risk against mean-field time on a log scale, for one or several trajectories.

    ``minimum`` draws the known minimal risk as a dashed line (and plots risk − minimum instead if
    ``kwargs.get("excess")``).
    """
    ax = _axes(ax)
    if not isinstance(trajectories, (list, tuple)):
        trajectories = [trajectories]
    labels = labels or [None] * len(trajectories)
    excess = kwargs.pop("excess", False)
    for traj, label in zip(trajectories, labels):
        risk = np.asarray(traj.risk) - (minimum if excess and minimum is not None else 0.0)
        ax.semilogy(traj.times, risk, label=label, **kwargs)
    if minimum is not None and not excess:
        ax.axhline(minimum, color="k", ls="--", lw=1, label="minimum")
    ax.set_xlabel("t (mean-field time)")
    ax.set_ylabel("excess risk" if excess else "risk")
    if any(lbl is not None for lbl in labels) or minimum is not None:
        ax.legend(frameon=False)
    return ax


def particle_cloud(mu, ax=None, coords=(0, 1), **kwargs):
    """Neurons a_j b_j projected on two coordinates, coloured by the sign of a_j."""
    ax = _axes(ax)
    pts = mu.a[:, None] * mu.b
    colors = np.where(mu.a > 0, "tab:red", "tab:blue")
    ax.scatter(pts[:, coords[0]], pts[:, coords[1]], s=6, c=colors, **kwargs)
    ax.set_xlabel(f"a·b[{coords[0]}]")
    ax.set_ylabel(f"a·b[{coords[1]}]")
    ax.set_aspect("equal", adjustable="datalim")
    return ax


def savefig(fig_or_ax, path) -> None:
    """Save a figure (creating the folder) and close it."""
    from pathlib import Path

    import matplotlib.pyplot as plt

    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def alignment_histograms(trajectory, Q, snapshots=(0, -1), bins: int = 30, axes=None):
    """Mass-weighted histograms of the neuron angle φ_j to the subspace H = span(Q), cos φ_j = |Qᵀb_j| / |b_j|,
    for positive- and negative-output neurons, at the given snapshots (weights |a_j| |b_j|)."""
    import matplotlib.pyplot as plt

    if trajectory.b is None:
        raise ValueError("alignment needs particle snapshots (the run kept none: SaveAt(particles=False))")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True, sharey=True)
    edges = np.linspace(0, np.pi / 2, bins + 1)
    for i in snapshots:
        a, b = np.asarray(trajectory.a[i]), np.asarray(trajectory.b[i])
        norm = np.linalg.norm(b, axis=1)
        cos = np.clip(np.linalg.norm(b @ Q, axis=1) / np.where(norm > 0, norm, 1.0), 0, 1)
        phi, mass = np.arccos(cos), np.abs(a) * norm * trajectory.weights
        for ax, sel, title in ((axes[0], a > 0, "a > 0"), (axes[1], a < 0, "a < 0")):
            ax.hist(phi[sel], bins=edges, weights=mass[sel], histtype="step", label=f"t = {trajectory.times[i]:.3g}")
            ax.set_title(f"neurons with {title}")
            ax.set_xlabel("angle to H (rad)")
    axes[0].set_ylabel("mass |a||b|")
    axes[0].legend(frameon=False)
    return axes


def ensemble_curves(curves: dict, ax=None, ylabel: str = "", logy: bool = False, bands: dict | None = None,
                    xlabel: str = "t (mean-field time)", **kwargs):
    """Statistics of ensembles over time: ``curves`` maps a label to (times, values); ``bands`` optionally maps a
    label to (times, level) drawn as a dotted line in the same colour (e.g. a Monte-Carlo noise level)."""
    ax = _axes(ax)
    for label, (times, values) in curves.items():
        (line,) = (ax.semilogy if logy else ax.plot)(times, values, label=label, **kwargs)
        if bands and label in bands:
            ax.plot(*bands[label], ls=":", color=line.get_color(), lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=7)
    return ax


def invariant_deviations(rows_by_label: dict, ax=None):
    """Data − model deviations of higher invariants, in units of the data's standard deviation (rows of
    :func:`meanfield.analysis.compare_invariants`), one marker series per label."""
    ax = _axes(ax)
    names = [r["name"] for r in next(iter(rows_by_label.values()))]
    ypos = np.arange(len(names))
    for k, (label, rows) in enumerate(rows_by_label.items()):
        dev = {r["name"]: r["deviation"] for r in rows}
        ax.plot([dev[n] for n in names], ypos + 0.12 * (k - (len(rows_by_label) - 1) / 2), "o", ms=4, label=label)
    ax.axvline(0, color="k", lw=0.8)
    for x in (-1, 1):
        ax.axvline(x, color="k", lw=0.5, ls=":")
    ax.set_yticks(ypos, names, fontsize=7)
    ax.set_xlabel("(data − model) / data std")
    ax.legend(frameon=False, fontsize=7)
    return ax
