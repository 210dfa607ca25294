"""The still figures of a run, chosen from what its file holds (what ``meanfield plot`` writes).

Every run gets its risk curve and, when it holds particles, their picture (:class:`meanfield.frames.ParticleView`);
then, by what the file holds: the alignment histograms (a target with a hidden subspace), the training and test
losses, accuracies and margin (a data set), the regularised risk and the Stein discrepancy (Langevin dynamics), the
distribution of the masses over time (conic dynamics), the births and deaths (birth–death dynamics), and beside a
reference run the two curves together (SGD or MLP training next to its flow). A sweep gets its grid's final risks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import plot
from .frames import ParticleView, RiskMarker, new_figure
from .measure import RingMeasure

__all__ = ["run_figures", "overview_figure", "sweep_figure", "dynamics_kind", "conic_mass_histograms",
           "write_figures"]

#: Bins of log10 of the conic masses w_j r_j² (per unit total mass m w_j r_j²) in :func:`conic_mass_histograms`.
MASS_BINS = 40


def dynamics_kind(traj) -> str:
    """The dynamics of a flow ("wasserstein", "conic", "birth_death", "langevin", ...), or the run's kind for other
    runs ("sgd", "mlp", ...).

    Examples
    --------
    >>> import types
    >>> dynamics_kind(types.SimpleNamespace(kind="particle_flow", config={"dynamics": {"kind": "conic"}}))
    'conic'
    """
    if traj.kind != "particle_flow":
        return traj.kind
    spec = traj.config.get("dynamics")
    return spec["kind"] if isinstance(spec, dict) else "wasserstein"


def _curves(curves: dict, xlabel: str, ylabel: str, logy: bool, title: str | None = None):
    fig = new_figure((5.5, 3.6), 100, layout="constrained")
    ax = fig.add_subplot()
    curves = {k: (np.asarray(t), np.asarray(v)) for k, (t, v) in curves.items()}
    logy = logy and all(np.all(v > 0) for _, v in curves.values())
    plot.ensemble_curves(curves, ax=ax, xlabel=xlabel, ylabel=ylabel, logy=logy)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def _observable(traj, name: str) -> np.ndarray:
    return np.asarray(traj.observables[name], dtype=np.float64)


def _time_label(traj) -> str:
    return "epoch" if traj.kind == "mlp" else "t (mean-field time)"


def conic_mass_histograms(traj, bins: int = MASS_BINS) -> tuple[np.ndarray, np.ndarray]:
    """The distribution of the masses of a conic run at every snapshot: the histograms (T, bins) of log10 of the
    particles' masses m w_j r_j², r_j² = |a_j|² + |b_j|², each weighted by its mass w_j r_j², over bin edges fixed
    for the run (returned second). Snapshots are read one at a time.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.dynamics import Conic
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0]]), mf.Gaussian(2))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(8, 2, seed=0), t_max=0.5, dt=0.1, backend="numpy",
    ...                    save_every=1, dynamics=Conic(alpha=2.0))
    >>> hist, edges = conic_mass_histograms(traj, bins=5)
    >>> hist.shape, edges.shape, bool(np.allclose(hist.sum(axis=1), traj.observables["total_mass"]))
    ((6, 5), (6,), True)
    """
    def masses(i):
        mu = traj.measure(i)
        a = np.reshape(mu.a, (mu.m, -1))
        return mu.weights * (np.sum(a**2, axis=1) + np.sum(mu.b**2, axis=1)), mu.m

    low, high = np.inf, -np.inf
    for i in range(len(traj)):
        mass, m = masses(i)
        logs = np.log10(np.maximum(m * mass[mass > 0], 1e-300))
        if logs.size:
            low, high = min(low, logs.min()), max(high, logs.max())
    if not np.isfinite(low):
        low, high = -1.0, 1.0
    edges = np.linspace(low - 1e-9, high + 1e-9 if high > low else low + 1.0, bins + 1)
    out = np.zeros((len(traj), bins))
    for i in range(len(traj)):
        mass, m = masses(i)
        keep = mass > 0
        out[i] = np.histogram(np.log10(m * mass[keep]), bins=edges, weights=mass[keep])[0]
    return out, edges


def _conic_figure(traj):
    hist, edges = conic_mass_histograms(traj)
    times = np.asarray(traj.times, dtype=np.float64)
    mid = (times[1:] + times[:-1]) / 2
    t_edges = np.concatenate([[times[0] - (mid[0] - times[0] if mid.size else 0.5)], mid,
                              [times[-1] + (times[-1] - mid[-1] if mid.size else 0.5)]])
    fig = new_figure((10, 3.8), 100, layout="constrained")
    left, right = fig.subplots(1, 2)
    mesh = left.pcolormesh(t_edges, edges, hist.T, cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=left, label="mass w r² in the bin")
    left.set(xlabel="t (mean-field time)", ylabel="log10 of the particle mass m w r²",
             title="conic flow: distribution of the masses")
    if "total_mass" in traj.observables:
        right.plot(times, _observable(traj, "total_mass"), color="k")
        right.set(xlabel="t (mean-field time)", ylabel="total mass Σ w r²", title="total mass")
    return fig


def _birth_death_figure(traj):
    times, jumps = np.asarray(traj.times), _observable(traj, "jumps")
    fig = new_figure((10, 3.6), 100, layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(times, jumps, color="k")
    left.set(xlabel="t (mean-field time)", ylabel="particles born + killed (cumulative)",
             title="birth–death: jumps so far")
    if len(times) > 1:
        right.step(times[1:], np.diff(jumps) / np.diff(times), where="pre", color="tab:purple")
    right.set(xlabel="t (mean-field time)", ylabel="jumps per unit time", title="jump rate between saves")
    return fig


def _stein_figure(traj):
    times, ksd2 = np.asarray(traj.times), _observable(traj, "ksd2")
    fig = new_figure((5.5, 3.6), 100, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(times, ksd2, color="k", label="KSD² (Stein discrepancy to the Gibbs measure)")
    if "ksd2_se" in traj.observables:
        se = _observable(traj, "ksd2_se")
        ax.fill_between(times, ksd2 - 2 * se, ksd2 + 2 * se, color="0.8", label="± 2 standard errors")
    ax.set(xlabel="t (mean-field time)", ylabel="KSD²", title="Langevin: Stein discrepancy")
    ax.legend(frameon=False, fontsize=7)
    return fig


def _particles_figure(traj):
    """The particles at the last snapshot (or at the end of the run, when no snapshot kept them)."""
    fig = new_figure((5.0, 4.6), 100, layout="constrained")
    ax = fig.add_subplot()
    if traj.a is not None and len(traj):
        ParticleView(traj, [len(traj) - 1]).draw(ax, -1)
    elif traj.final is not None and not isinstance(traj.final, RingMeasure):
        arrays = traj.target_arrays
        teacher = arrays["c"][:, None] * arrays["U"] if "U" in arrays and "c" in arrays else None
        H = traj.hidden_subspace()
        plot.particle_cloud(traj.final, ax=ax, subspace=H if H is not None and H.shape[0] == traj.final.d else None,
                            t=float(traj.times[-1]), teacher=teacher)
    else:
        return None
    return fig


def _reference_figure(traj, reference, names=("this run", "reference")):
    """The run's curve beside (same axes, when both count mean-field time) or next to its reference's."""
    if traj.kind != "mlp" and reference.kind != "mlp":
        fig = new_figure((5.5, 3.6), 100, layout="constrained")
        ax = fig.add_subplot()
        plot.risk_curve([traj, reference], labels=[f"{names[0]} ({traj.kind})", f"{names[1]} ({reference.kind})"],
                        ax=ax)
        ax.set_title("risk of the run and of its reference", fontsize=9)
    else:
        fig = new_figure((10, 3.6), 100, layout="constrained")
        for ax, run, name in zip(fig.subplots(1, 2), (traj, reference), names):
            curves = {"train": (run.times, run.risk)}
            if "test_loss" in run.observables:
                curves["test"] = (run.times, _observable(run, "test_loss"))
            logy = all(np.all(np.asarray(v) > 0) for _, v in curves.values())
            plot.ensemble_curves(curves, ax=ax, xlabel=_time_label(run), ylabel="loss", logy=logy)
            ax.set_title(f"{name} ({run.kind})", fontsize=9)
    return fig


def run_figures(traj, reference=None, name: str | None = None) -> dict:
    """The still figures of a run, by file name ("risk.png", "particles.png", ...), chosen from what it holds.

    Parameters
    ----------
    traj : Trajectory
        Any run (in memory or :func:`meanfield.load`-ed).
    reference : Trajectory, optional
        A run to draw beside it (e.g. the flow of an SGD run): "reference.png".
    name : str, optional
        What to call the run in the risk curve's title (e.g. its file name).

    Returns
    -------
    dict of str -> matplotlib Figure
        "risk.png" (every run but MLP training, which gets "loss.png" and "accuracy.png"), "particles.png" (runs
        with particles), "alignment.png" (neurons and a target with a hidden subspace), "loss.png",
        "accuracy.png", "margin.png" (data sets), "free_energy.png" and "stein.png" (Langevin), "mass.png" (conic),
        "jumps.png" (birth–death), "reference.png" (with ``reference``).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0, 1.0], np.eye(3)[:2]), mf.Gaussian(3))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(16, 3, seed=0), t_max=1.0, dt=0.1, save_every=5)
    >>> sorted(run_figures(traj))
    ['alignment.png', 'particles.png', 'risk.png']
    """
    figures = {}
    obs = traj.observables
    if traj.kind != "mlp":
        fig = new_figure((5.5, 3.6), 100, layout="constrained")
        ax = plot.risk_curve(traj, ax=fig.add_subplot())
        ax.set_title(f"{traj.kind.replace('_', ' ')}" + (f": {name}" if name else "") + f" ({traj.status})",
                     fontsize=9)
        figures["risk.png"] = fig
    particles = _particles_figure(traj) if traj.kind != "mlp" else None
    if particles is not None:
        figures["particles.png"] = particles
    H = traj.hidden_subspace()
    neurons = traj.b is not None and np.ndim(traj.a[0]) == 1 and traj.final is not None \
        and not isinstance(traj.final, RingMeasure)
    if H is not None and neurons and H.shape[0] == traj.final.d:
        fig = new_figure((9, 3.5), 100, layout="constrained")
        plot.alignment_histograms(traj, H, axes=fig.subplots(1, 2, sharey=True))
        figures["alignment.png"] = fig
    xlabel = _time_label(traj)
    if "train_loss" in obs or traj.kind == "mlp":
        losses = {"train": (traj.times, _observable(traj, "train_loss") if "train_loss" in obs else traj.risk)}
        if "test_loss" in obs:
            losses["test"] = (traj.times, _observable(traj, "test_loss"))
        figures["loss.png"] = _curves(losses, xlabel, "loss", logy=True, title="training and test loss")
    accuracy = {split: (traj.times, _observable(traj, f"{split}_accuracy")) for split in ("train", "test")
                if f"{split}_accuracy" in obs}
    if accuracy:
        figures["accuracy.png"] = _curves(accuracy, xlabel, "accuracy", logy=False, title="accuracy")
    if "margin" in obs:
        figures["margin.png"] = _curves({"margin": (traj.times, _observable(traj, "margin"))}, xlabel,
                                        "normalised margin", logy=False, title="margin")
    dynamics = dynamics_kind(traj)
    if "regularized_risk" in obs:
        figures["free_energy.png"] = _curves({"risk": (traj.times, traj.risk),
                                              "regularised risk": (traj.times, _observable(traj, "regularized_risk"))},
                                             xlabel, "risk", logy=True, title=f"{dynamics}: risk and regularised risk")
    if "ksd2" in obs:
        figures["stein.png"] = _stein_figure(traj)
    if dynamics == "conic" and traj.b is not None:
        figures["mass.png"] = _conic_figure(traj)
    if "jumps" in obs:
        figures["jumps.png"] = _birth_death_figure(traj)
    if reference is not None:
        figures["reference.png"] = _reference_figure(traj, reference)
    return figures


def overview_figure(traj, name: str | None = None):
    """One figure of a run as it stands: its risk curve and, when the file holds them, the particles at the latest
    checkpoint (what ``meanfield watch --plot`` rewrites at each refresh; cheap: reads no snapshot).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0, 0.0]]), mf.Gaussian(3))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(8, 3, seed=0), t_max=1.0, dt=0.1, save_every=5)
    >>> len(overview_figure(traj).axes)
    2
    """
    neurons = traj.final is not None and not isinstance(traj.final, RingMeasure)
    fig = new_figure((10 if neurons else 5.5, 3.8), 100, layout="constrained")
    axes = fig.subplots(1, 2) if neurons else [fig.add_subplot()]
    if len(traj):
        RiskMarker(traj).draw(axes[0], -1)
    axes[0].set_title(f"{name or traj.kind}: {traj.status}, {len(traj)} saves", fontsize=9)
    if neurons:
        H = traj.hidden_subspace()
        arrays = traj.target_arrays
        teacher = arrays["c"][:, None] * arrays["U"] if "U" in arrays and "c" in arrays else None
        plot.particle_cloud(traj.final, ax=axes[1], subspace=H if H is not None and H.shape[0] == traj.final.d
                            else None, t=float(traj.times[-1]) if len(traj) else None, teacher=teacher)
    return fig


def _manifest_path(path) -> Path:
    path = Path(path)
    return path / "manifest.json" if path.is_dir() else path


def sweep_figure(path):
    """The final risks of a sweep's grid (``path``: its output folder or its manifest.json), read from its files:
    a heat map of log10 of the final risk over a grid of two keys; the final risk against the first key, one curve
    per combination of the others, for one or more than two. Runs without a readable file are left blank.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "manifest.json").write_text(json.dumps({"sweep": "s", "grid": {"init.m": [4]}, "runs": []}))
    >>> sweep_figure(folder).axes[0].get_xlabel()
    'init.m'
    """
    from .io import load

    manifest_path = _manifest_path(path)
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{path}: no sweep manifest (manifest.json) there")
    manifest = json.loads(manifest_path.read_text())
    grid = {k: list(v) for k, v in manifest.get("grid", {}).items()}
    if not grid:
        raise ValueError(f"{manifest_path}: the sweep has no [sweep.grid] to draw its final risks over")
    keys = list(grid)
    final = {}
    for run in manifest.get("runs", []):
        run_path = Path(run["path"])
        if not run_path.is_absolute() and not run_path.exists():
            run_path = manifest_path.parent / run_path.name
        try:
            with load(run_path) as traj:
                risk = float(traj.risk[-1]) if len(traj) else np.nan
        except (OSError, ValueError):
            continue
        key = tuple(json.dumps(run["overrides"].get(k)) for k in keys)
        final.setdefault(key, []).append(risk)
    value = {k: float(np.mean(v)) for k, v in final.items()}   # several runs (a zip over seeds): their mean

    def at(*vals):
        return value.get(tuple(json.dumps(v) for v in vals), np.nan)

    fig = new_figure((6, 4.2), 100, layout="constrained")
    ax = fig.add_subplot()
    if len(keys) == 2:
        rows, cols = grid[keys[0]], grid[keys[1]]
        table = np.array([[at(r, c) for c in cols] for r in rows])
        with np.errstate(divide="ignore", invalid="ignore"):
            image = ax.imshow(np.log10(table), origin="lower", aspect="auto", cmap="viridis")
        fig.colorbar(image, ax=ax, label="log10 final risk")
        ax.set_xticks(range(len(cols)), [str(c) for c in cols])
        ax.set_yticks(range(len(rows)), [str(r) for r in rows])
        ax.set(xlabel=keys[1], ylabel=keys[0])
        for r in range(len(rows)):
            for c in range(len(cols)):
                if np.isfinite(table[r, c]):
                    ax.text(c, r, f"{table[r, c]:.2g}", ha="center", va="center", fontsize=7, color="w")
    else:
        import itertools

        first, rest = keys[0], keys[1:]
        xs = np.arange(len(grid[first]))
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in grid[first])
        for combo in itertools.product(*(grid[k] for k in rest)):
            ys = np.array([at(x, *combo) for x in grid[first]])
            label = ", ".join(f"{k} = {v}" for k, v in zip(rest, combo)) or None
            ax.plot(np.asarray(grid[first], dtype=float) if numeric else xs, ys, "o-", label=label)
        if numeric and all(v > 0 for v in grid[first]):
            ax.set_xscale("log")
        elif not numeric:
            ax.set_xticks(xs, [str(v) for v in grid[first]])
        if ax.get_lines() and all(np.all(np.nan_to_num(line.get_ydata(), nan=1.0) > 0) for line in ax.get_lines()):
            ax.set_yscale("log")
        ax.set(xlabel=first, ylabel="final risk")
        if rest:
            ax.legend(frameon=False, fontsize=7)
    ax.set_title(f"sweep {manifest.get('sweep', '')}: final risks", fontsize=9)
    return fig


def write_figures(figures: dict, folder) -> list[Path]:
    """Save figures (name -> Figure) into ``folder`` (created); returns the paths written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from meanfield.frames import new_figure
    >>> [p.name for p in write_figures({"x.png": new_figure((1, 1), 20)}, pathlib.Path(tempfile.mkdtemp()))]
    ['x.png']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, fig in figures.items():
        fig.savefig(folder / file_name, dpi=130)
        written.append(folder / file_name)
    return written
