"""The picture of a run at one of its snapshots, drawn alike in a still figure and in every frame of an animation.

:class:`ParticleView` fixes, for a whole run, how its particles are drawn: the two directions they are projected on
and the axis limits (neurons), the input window (biased neurons in the plane, drawn as their lines b·x + c = 0) or
the bins (the radii r of a reduced flow's rings). :meth:`ParticleView.draw` draws a snapshot on fresh axes and
:meth:`ParticleView.update` moves those artists to another snapshot; snapshots are read from the file one at a time.
:func:`snapshot_figure` is the still figure of one snapshot (particles and the risk curve with a marker at its time),
the frame :mod:`meanfield.animate` writes.
"""

from __future__ import annotations

import numpy as np

from .measure import RingMeasure, measure_type
from .plot import CLASS_COLORS, neuron_points, projection_basis

__all__ = ["ParticleView", "RiskMarker", "snapshot_figure", "new_figure", "render"]

#: Marker area (points²) of the heaviest particle m·w_j·|a_j| of the run; line width (points) for hyperplanes.
LARGEST_AREA = 60.0
WIDEST_LINE = 3.0
#: Half-width of the input window of biased neurons in the plane when the run holds no data points.
INPUT_WINDOW = 2.5
POSITIVE, NEGATIVE = "tab:red", "tab:blue"


def _particle_kind(traj) -> str:
    if traj.a is None:
        raise ValueError("this run kept no particle snapshots (SaveAt(particles=False)): there is nothing to draw "
                         "frame by frame; rerun it with particles saved")
    kind = measure_type(traj.problem_spec)
    if kind is RingMeasure:
        return "rings"
    if "c" in kind.coordinate_names and traj.b.shape[2] == 3:  # rows [b | c] with b in the plane
        return "hyperplanes"
    return "cloud"


def _colors(a) -> np.ndarray:
    """Red for a_j > 0 and blue otherwise; the class argmax_k a_jk for K output weights."""
    a = np.asarray(a)
    if a.ndim == 1:
        return np.where(a > 0, POSITIVE, NEGATIVE)
    return np.asarray(CLASS_COLORS)[np.argmax(a, axis=1) % len(CLASS_COLORS)]


def _legend(ax, outputs: int | None) -> None:
    from matplotlib.lines import Line2D

    groups = ([(POSITIVE, "a > 0"), (NEGATIVE, "a ≤ 0")] if outputs is None else
              [(CLASS_COLORS[k % len(CLASS_COLORS)], f"class {k}") for k in range(outputs)])
    handles = [Line2D([], [], ls="", marker="o", color=c, label=label) for c, label in groups]
    handles += [h for h in ax.get_lines() if h.get_label() and not h.get_label().startswith("_")]
    ax.legend(handles=handles, frameon=False, fontsize=7, loc="upper right")


class ParticleView:
    """How the particles of a run are drawn, fixed for the whole run (or for the snapshots ``snapshots``).

    * Neurons: the points a_j b_j (|a_j| b_j for K output weights) projected on the first two directions of the hidden
      subspace H when the run's target names one, else on the two principal directions of the last snapshot drawn
      (:func:`meanfield.plot.projection_basis`); marker area ∝ mass · |a_j| (the heaviest particle of the run
      :data:`LARGEST_AREA`); red a_j > 0, blue a_j ≤ 0, or one colour per class argmax_k a_jk; the teacher's neurons
      c_i u_i as dashed rays.
    * Biased neurons in d = 2: each neuron as its line b_j·x + c_j = 0 in the input plane, width ∝ mass · |a_j|,
      with the data points when the run holds a data set.
    * Rings of a reduced flow: the distribution of the radii r_j, weighted by mass · |a_j|, for a_j > 0 and a_j < 0.

    Building a view reads every snapshot drawn once, one at a time (for the axis limits and sizes).

    Parameters
    ----------
    traj : Trajectory
        A run with particle snapshots (in memory or :func:`meanfield.load`-ed).
    snapshots : sequence of int, optional
        The snapshot indices that will be drawn (default: all).

    Examples
    --------
    >>> import numpy as np, matplotlib, meanfield as mf
    >>> matplotlib.use("Agg")
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0, 1.0], np.eye(3)[:2]), mf.Gaussian(3))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(16, 3, seed=0), t_max=1.0, dt=0.1, save_every=2)
    >>> view = ParticleView(traj)
    >>> view.kind, view.names
    ('cloud', ['h1', 'h2'])
    >>> fig = new_figure((4, 4), 80)
    >>> view.draw(fig.add_subplot(), 0)
    >>> view.update(-1)[-1].get_text()
    'neurons at t = 1'
    """

    def __init__(self, traj, snapshots=None):
        self.traj = traj
        self.kind = _particle_kind(traj)
        n = len(traj)
        if n == 0:
            raise ValueError("the run has no snapshots yet")
        self.snapshots = [int(i) % n for i in (range(n) if snapshots is None else snapshots)]
        last = traj.measure(self.snapshots[-1])
        self.outputs = None if np.ndim(last.a) == 1 else int(np.shape(last.a)[1])
        self.basis, self.names = None, None
        if self.kind == "cloud":
            H = traj.hidden_subspace()
            if H is not None and H.shape[0] != last.d:
                H = None
            self.basis, self.names = projection_basis(last, H)
        self._measure_extent()
        self._artists: dict = {}

    # -- fixed for the run -----------------------------------------------------------------------------------------
    def _measure_extent(self) -> None:
        """One pass over the snapshots: the largest mass · |a|, and the axis limits or histogram bins."""
        reach, heaviest, r_max = 0.0, 0.0, 0.0
        for i in self.snapshots:
            mu = self.traj.measure(i)
            amplitude = neuron_points(mu)[1] if self.kind != "rings" else np.abs(mu.a)
            heaviest = max(heaviest, float(np.max(mu.m * mu.weights * amplitude)))
            if self.kind == "cloud":
                reach = max(reach, float(np.max(np.abs(neuron_points(mu)[0] @ self.basis))))
            elif self.kind == "rings":
                r_max = max(r_max, float(np.max(mu.r)))
        self.heaviest = heaviest if heaviest > 0 else 1.0
        if self.kind == "cloud":
            self.limit = 1.08 * reach if reach > 0 else 1.0
        elif self.kind == "hyperplanes":
            x = self.traj.target_arrays.get("x")
            self.limit = 1.1 * float(np.max(np.abs(x))) if x is not None and np.size(x) else INPUT_WINDOW
        else:
            self.edges = np.linspace(0.0, 1.05 * r_max if r_max > 0 else 1.0, 31)
            self.top = max(max(h.max() for h in self.radius_histograms(i)) for i in self.snapshots)

    def radius_histograms(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Rings: the histograms of r over :attr:`edges` with weights mass · |a| for a > 0 and for a < 0."""
        mu = self.traj.measure(i)
        weight = mu.weights * np.abs(mu.a)
        return tuple(np.histogram(mu.r[sel], bins=self.edges, weights=weight[sel])[0]
                     for sel in (mu.a > 0, mu.a < 0))

    def sizes(self, mu) -> np.ndarray:
        """Marker areas (points²) of the neurons of ``mu``: mass · |a_j| on the run's scale."""
        return LARGEST_AREA * mu.m * mu.weights * neuron_points(mu)[1] / self.heaviest

    def points(self, mu) -> np.ndarray:
        """Neurons: the projected points (m, 2) of ``mu``."""
        return neuron_points(mu)[0] @ self.basis

    def segments(self, mu) -> np.ndarray:
        """Biased neurons in the plane: for each, a segment (2, 2) of its line b·x + c = 0 across the input window."""
        b, c = mu.b, mu.c
        norm2 = np.maximum(np.sum(b * b, axis=1), 1e-300)
        foot = -(c / norm2)[:, None] * b                       # the point of the line nearest to the origin
        along = np.column_stack([-b[:, 1], b[:, 0]]) / np.sqrt(norm2)[:, None]
        half = 2 * np.sqrt(2) * self.limit + np.linalg.norm(foot, axis=1)  # reaches past the window's corners
        return np.stack([foot - half[:, None] * along, foot + half[:, None] * along], axis=1)

    # -- drawing ---------------------------------------------------------------------------------------------------
    def draw(self, ax, i: int) -> None:
        """Draw snapshot ``i`` on the (empty) axes ``ax``; :meth:`update` then moves these artists."""
        i = int(i) % len(self.traj)
        mu = self.traj.measure(i)
        self.ax = ax
        if self.kind == "cloud":
            self._artists["cloud"] = ax.scatter(*self.points(mu).T, s=self.sizes(mu), c=_colors(mu.a), linewidths=0)
            arrays = self.traj.target_arrays
            if "U" in arrays and "c" in arrays:  # directions only: a teacher neuron has mass 1, a particle 1/m
                for k, u in enumerate(np.asarray(arrays["c"])[:, None] * np.asarray(arrays["U"])):
                    tip = (u @ self.basis) / max(np.linalg.norm(u @ self.basis), 1e-300) * self.limit
                    ax.plot([0, tip[0]], [0, tip[1]], "k--", lw=1, label="teacher c_i u_i" if k == 0 else None)
            ax.set_xlim(-self.limit, self.limit)
            ax.set_ylim(-self.limit, self.limit)
            point = "a·b" if self.outputs is None else "|a|·b"
            ax.set_xlabel(f"{point} on {self.names[0]}")
            ax.set_ylabel(f"{point} on {self.names[1]}")
            ax.set_aspect("equal", adjustable="box")
            _legend(ax, self.outputs)
        elif self.kind == "hyperplanes":
            from matplotlib.collections import LineCollection

            arrays = self.traj.target_arrays
            if "x" in arrays and "y" in arrays:
                x, y = np.asarray(arrays["x"]), np.asarray(arrays["y"])
                ax.scatter(*x.T, s=8, c=np.where(y > 0, POSITIVE, NEGATIVE), marker="x", linewidths=0.8)
            lines = LineCollection(self.segments(mu), colors=_colors(mu.a), linewidths=self._widths(mu), alpha=0.7)
            self._artists["lines"] = ax.add_collection(lines)
            ax.set_xlim(-self.limit, self.limit)
            ax.set_ylim(-self.limit, self.limit)
            ax.set_xlabel("x₁")
            ax.set_ylabel("x₂")
            ax.set_aspect("equal", adjustable="box")
            _legend(ax, self.outputs)
        else:
            pos, neg = self.radius_histograms(i)
            self._artists["stairs"] = (ax.stairs(pos, self.edges, color=POSITIVE, label="a > 0"),
                                       ax.stairs(neg, self.edges, color=NEGATIVE, label="a < 0"))
            ax.set_xlim(self.edges[0], self.edges[-1])
            ax.set_ylim(0, 1.05 * self.top if self.top > 0 else 1.0)
            ax.set_xlabel("ring radius r = |b⊥|")
            ax.set_ylabel("mass · |a|")
            ax.legend(frameon=False, fontsize=7, loc="upper right")
        self._artists["title"] = ax.set_title(self._title(i))

    def _widths(self, mu) -> np.ndarray:
        return WIDEST_LINE * mu.m * mu.weights * neuron_points(mu)[1] / self.heaviest

    def _title(self, i: int) -> str:
        what = {"cloud": "neurons", "hyperplanes": "neurons b·x + c = 0", "rings": "rings"}[self.kind]
        return f"{what} at t = {float(self.traj.times[i]):.4g}"

    def update(self, i: int) -> list:
        """Move the artists of :meth:`draw` to snapshot ``i``; returns them."""
        i = int(i) % len(self.traj)
        mu = self.traj.measure(i)
        if self.kind == "cloud":
            cloud = self._artists["cloud"]
            cloud.set_offsets(self.points(mu))
            cloud.set_sizes(self.sizes(mu))
            cloud.set_facecolors(_colors(mu.a))
        elif self.kind == "hyperplanes":
            lines = self._artists["lines"]
            lines.set_segments(self.segments(mu))
            lines.set_colors(_colors(mu.a))
            lines.set_linewidths(self._widths(mu))
        else:
            for stair, values in zip(self._artists["stairs"], self.radius_histograms(i)):
                stair.set_data(values)
        self._artists["title"].set_text(self._title(i))
        return [a for v in self._artists.values() for a in (v if isinstance(v, tuple) else (v,))]


class RiskMarker:
    """The risk curve of a run with a marker at one snapshot (log scale when every risk is positive).

    Examples
    --------
    >>> import types, numpy as np, matplotlib
    >>> matplotlib.use("Agg")
    >>> run = types.SimpleNamespace(times=np.arange(4.0), risk=np.exp(-np.arange(4.0)), kind="particle_flow")
    >>> marker = RiskMarker(run)
    >>> marker.draw(new_figure((3, 3), 80).add_subplot(), 0)
    >>> [float(x) for x in marker.update(2)[0].get_xdata()]
    [2.0]
    """

    def __init__(self, traj):
        self.times, self.risk = np.asarray(traj.times), np.asarray(traj.risk)
        self.label = "training loss" if traj.kind == "mlp" else "risk"

    def draw(self, ax, i: int) -> None:
        """The curve and the marker at snapshot ``i`` on the (empty) axes ``ax``."""
        i = int(i) % len(self.times)
        log = bool(np.all(self.risk > 0))
        (ax.semilogy if log else ax.plot)(self.times, self.risk, color="k", lw=1.2)
        (self.marker,) = ax.plot([self.times[i]], [self.risk[i]], "o", color="tab:orange", ms=7)
        ax.set_xlabel("epoch" if self.label == "training loss" else "t (mean-field time)")
        ax.set_ylabel(self.label)

    def update(self, i: int) -> list:
        """Move the marker to snapshot ``i``."""
        i = int(i) % len(self.times)
        self.marker.set_data([self.times[i]], [self.risk[i]])
        return [self.marker]


def new_figure(size=(9.0, 4.0), dpi: float = 100, layout: str | None = None):
    """A matplotlib Figure on the Agg canvas, outside pyplot (nothing global to close); ``layout`` as for
    ``matplotlib.figure.Figure`` (e.g. "constrained").

    Examples
    --------
    >>> new_figure((2, 1), 50).canvas.get_width_height()
    (100, 50)
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=tuple(float(s) for s in size), dpi=float(dpi), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _panels(fig):
    """The two axes of a frame, at fixed positions (the same in every frame, whatever the titles say)."""
    grid = fig.add_gridspec(1, 2, left=0.08, right=0.98, bottom=0.14, top=0.88, wspace=0.3)
    return fig.add_subplot(grid[0]), fig.add_subplot(grid[1])


def snapshot_figure(traj, i: int, view: ParticleView | None = None, size=(9.0, 4.0), dpi: float = 100, fig=None):
    """The still figure of snapshot ``i``: the particles (:class:`ParticleView`) and the risk curve with a marker at
    t_i — one frame of :func:`meanfield.animate.animate`, drawn from scratch.

    Returns ``(figure, view, marker)``; pass ``view`` to draw several snapshots with the same projection and limits
    without reading the run again, and ``fig`` (e.g. a pyplot figure) to draw into it.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0, 0.0]]), mf.Gaussian(3))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(8, 3, seed=0), t_max=1.0, dt=0.1, save_every=5)
    >>> fig, view, marker = snapshot_figure(traj, -1, size=(6, 3), dpi=60)
    >>> render(fig).shape
    (180, 360, 3)
    """
    view = view if view is not None else ParticleView(traj)
    fig = fig if fig is not None else new_figure(size, dpi)
    left, right = _panels(fig)
    view.draw(left, i)
    marker = RiskMarker(traj)
    marker.draw(right, i)
    return fig, view, marker


def render(fig) -> np.ndarray:
    """The pixels (height, width, 3) of a figure drawn on its Agg canvas, as uint8 RGB.

    Examples
    --------
    >>> render(new_figure((1, 1), 10)).shape
    (10, 10, 3)
    """
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
