"""Matplotlib figures of trajectories (one helper per kind of figure)."""

from __future__ import annotations

import numpy as np

__all__ = ["risk_curve", "particle_cloud", "projection_basis", "neuron_points", "alignment_histograms",
           "ensemble_curves", "invariant_deviations", "savefig"]

#: Colours of the classes of a K-output network (class k = the largest of a neuron's K output weights).
CLASS_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
                "tab:olive", "tab:cyan")


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 3.5), constrained_layout=True)
    return ax


def risk_curve(trajectories, labels=None, ax=None, minimum: float | None = None, **kwargs):
    """Risk against mean-field time on a log scale, for one or several trajectories.

    ``minimum`` draws the known minimal risk as a dashed line (and plots risk − minimum instead if
    ``kwargs.get("excess")``).

    Examples
    --------
    Anything with ``times`` and ``risk`` will do:

    >>> import types, numpy as np, matplotlib
    >>> matplotlib.use("Agg")
    >>> from meanfield.plot import risk_curve
    >>> run = types.SimpleNamespace(times=np.arange(5.0), risk=np.exp(-np.arange(5.0)))
    >>> ax = risk_curve([run, run], labels=["a", "b"], minimum=1e-3)
    >>> ax.get_ylabel(), len(ax.get_lines())
    ('risk', 3)
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
    if any(lbl is not None for lbl in labels) or (minimum is not None and not excess):
        ax.legend(frameon=False)
    return ax


def neuron_points(mu) -> tuple[np.ndarray, np.ndarray]:
    """The points a_j b_j that stand for the neurons (|a_j| b_j for K output weights a_j ∈ R^K, |·| the Euclidean
    norm), and the amplitudes |a_j| (the marker areas are mass · |a_j|).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> pts, amp = neuron_points(mf.init.gaussian(6, 3, seed=0, outputs=4))
    >>> pts.shape, amp.shape
    ((6, 3), (6,))
    """
    a = np.asarray(mu.a)
    amplitude = np.abs(a) if a.ndim == 1 else np.linalg.norm(a, axis=1)
    return (a if a.ndim == 1 else amplitude)[:, None] * mu.b, amplitude


def projection_basis(mu, subspace=None) -> tuple[np.ndarray, list[str]]:
    """Two orthonormal directions (d, 2) to draw neurons in, and their names: the first two directions of the
    hidden subspace H when it is known (completed by the principal direction of the neurons' component orthogonal
    to H when H is a line), else the two principal directions of the cloud a_j b_j (weighted by the masses; |a_j| b_j
    for K output weights, :func:`neuron_points`).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> basis, names = projection_basis(mf.init.sign_sphere(50, 5, seed=0), np.eye(5)[:, :1])
    >>> basis.shape, names
    ((5, 2), ['h1', 'principal direction ⊥ H'])
    """
    pts = neuron_points(mu)[0] * np.sqrt(mu.weights)[:, None]

    def principal(x, k):
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        return vt[:k].T

    if subspace is not None and subspace.shape[1] >= 2:
        return np.asarray(subspace[:, :2]), ["h1", "h2"]
    if subspace is not None and subspace.shape[1] == 1:
        h = np.asarray(subspace)
        rest = pts - (pts @ h) @ h.T
        return np.concatenate([h, principal(rest, 1)], axis=1), ["h1", "principal direction ⊥ H"]
    return principal(pts, 2), ["principal direction 1", "principal direction 2"]


def particle_cloud(mu, ax=None, subspace=None, t: float | None = None, teacher=None, **kwargs):
    """Neurons a_j b_j projected on two directions (see :func:`projection_basis`), red for a_j > 0 and blue for
    a_j < 0, marker area proportional to the particle mass; ``teacher`` neurons (rows c_i u_i) as dashed rays
    (their directions, projected); the title gives the time ``t``. Neurons with K output weights are drawn at
    |a_j| b_j, coloured by their class argmax_k a_jk.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> ax = particle_cloud(mf.init.sign_sphere(40, 3, seed=0), t=0.0)
    >>> ax.get_title(), ax.get_xlabel()
    ('neurons at t = 0', 'a·b on principal direction 1')
    """
    ax = _axes(ax)
    basis, names = projection_basis(mu, subspace)
    pts = neuron_points(mu)[0] @ basis
    size = 6 * mu.weights * mu.m
    a = np.asarray(mu.a)
    if a.ndim == 1:
        groups = ((a > 0, "tab:red", "a > 0"), (a <= 0, "tab:blue", "a ≤ 0"))
    else:
        cls = np.argmax(a, axis=1)
        groups = tuple((cls == k, CLASS_COLORS[k % len(CLASS_COLORS)], f"class {k}") for k in range(a.shape[1]))
    for sel, color, label in groups:
        ax.scatter(pts[sel, 0], pts[sel, 1], s=size[sel], c=color, label=f"{label} ({int(sel.sum())})", **kwargs)
    if teacher is not None:  # directions only: a teacher neuron has mass 1, a particle mass 1/m
        reach = np.max(np.linalg.norm(pts, axis=1)) if len(pts) else 1.0
        for k, u in enumerate(np.asarray(teacher)):
            tip = reach * (u @ basis) / max(np.linalg.norm(u), 1e-300)
            ax.plot([0, tip[0]], [0, tip[1]], "k--", lw=1, label="teacher directions c_i u_i" if k == 0 else None)
    ax.set_xlabel(f"a·b on {names[0]}")
    ax.set_ylabel(f"a·b on {names[1]}")
    ax.set_title("neurons" + (f" at t = {t:.4g}" if t is not None else ""))
    ax.legend(frameon=False, fontsize=7)
    ax.set_aspect("equal", adjustable="datalim")
    return ax


#: Metadata left out of saved figures, by format: the software version and dates, so that a figure drawn again
#: from the same data is the same file.
_NO_METADATA = {".png": {"Software": None}, ".svg": {"Date": None, "Creator": None},
                ".pdf": {"CreationDate": None, "Creator": None, "Producer": None}}


def savefig(fig_or_ax, path) -> None:
    """Save a figure (creating the folder) and close it; no software version or date is written into the file.

    Examples
    --------
    >>> import tempfile, pathlib, matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from meanfield.plot import savefig
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "figures" / "empty.png"
    >>> savefig(plt.subplots()[0], out)
    >>> out.exists()
    True
    """
    from pathlib import Path

    import matplotlib.pyplot as plt

    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with plt.rc_context({"svg.hashsalt": "meanfield"}):      # SVG element ids from a fixed salt, not at random
        fig.savefig(path, dpi=130, metadata=_NO_METADATA.get(Path(path).suffix.lower()))
    plt.close(fig)


def alignment_histograms(trajectory, Q, snapshots=(0, -1), bins: int = 30, axes=None):
    """Mass-weighted histograms of the neuron angle φ_j to the subspace H = span(Q), cos φ_j = |Qᵀb_j| / |b_j|,
    for positive- and negative-output neurons, at the given snapshots (weights |a_j| |b_j|).

    Examples
    --------
    >>> import numpy as np, matplotlib, meanfield as mf
    >>> matplotlib.use("Agg")
    >>> from meanfield import plot
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0, 1.0], np.eye(4)[:2]), mf.Gaussian(4))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(32, 4, seed=0), t_max=2.0, dt=0.1, backend="numpy")
    >>> axes = plot.alignment_histograms(traj, Q=np.eye(4)[:, :2])
    >>> axes[0].get_xlabel()
    'angle to H (rad)'
    """
    import matplotlib.pyplot as plt

    if trajectory.b is None:
        raise ValueError("alignment needs particle snapshots (the run kept none: SaveAt(particles=False))")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True, sharey=True)
    from .symmetry.alignment import neuron_alignment

    edges = np.linspace(0, np.pi / 2, bins + 1)
    Q = np.asarray(Q)
    for i in snapshots:
        mu = trajectory.measure(i)
        phi, mass = neuron_alignment(mu, Q), np.abs(mu.a) * np.linalg.norm(mu.b, axis=1) * mu.weights
        for ax, sel, title in ((axes[0], mu.a > 0, "a > 0"), (axes[1], mu.a < 0, "a < 0")):
            ax.hist(phi[sel], bins=edges, weights=mass[sel], histtype="step", label=f"t = {trajectory.times[i]:.3g}")
            ax.set_title(f"neurons with {title} (dim H = {Q.shape[1]})")
            ax.set_xlabel("angle to H (rad)")
    axes[0].set_ylabel("mass |a||b|")
    axes[0].legend(frameon=False)
    return axes


def ensemble_curves(curves: dict, ax=None, ylabel: str = "", logy: bool = False, bands: dict | None = None,
                    xlabel: str = "t (mean-field time)", **kwargs):
    """Statistics of ensembles over time: ``curves`` maps a label to (times, values); ``bands`` optionally maps a
    label to (times, level) drawn as a dotted line in the same colour (e.g. a Monte-Carlo noise level).

    Examples
    --------
    >>> import numpy as np, matplotlib
    >>> matplotlib.use("Agg")
    >>> from meanfield.plot import ensemble_curves
    >>> t = np.linspace(0, 1, 5)
    >>> ax = ensemble_curves({"m = 64": (t, np.exp(-t)), "m = 256": (t, np.exp(-2 * t))}, ylabel="risk", logy=True,
    ...                      bands={"m = 64": (t, 0.1 + 0 * t)})
    >>> len(ax.get_lines())
    3
    """
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
    :func:`meanfield.weights.analysis.compare_invariants`), one marker series per label.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from meanfield.plot import invariant_deviations
    >>> rows = [{"name": "tr M³", "deviation": 0.4}, {"name": "tr M⁴", "deviation": -1.2}]
    >>> ax = invariant_deviations({"SGD": rows, "Adam": rows})
    >>> len(ax.get_lines()) >= 2
    True
    """
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
