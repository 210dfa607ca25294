"""The figures of every kind of run, read back from their artists and compared with the file; animations frame by
frame against the still figures; ``meanfield plot`` on each kind."""

import json
import shutil
import subprocess

import matplotlib
import numpy as np
import pytest
from PIL import Image

import meanfield as mf
from meanfield.animate import animate, frame_indices
from meanfield.cli import main
from meanfield.data import DataSet
from meanfield.dynamics import BirthDeath, Conic, Langevin
from meanfield.figures import run_figures, sweep_figure
from meanfield.frames import LARGEST_AREA, render, snapshot_figure
from meanfield.measure import RingMeasure
from meanfield.plot import CLASS_COLORS
from meanfield.reduced import LowDimReducedProblem

matplotlib.use("Agg")
RED, BLUE = matplotlib.colors.to_rgba("tab:red"), matplotlib.colors.to_rgba("tab:blue")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


def _teacher_problem():
    return mf.Problem(mf.TeacherNetwork([1.0, -0.5], np.eye(4)[:2]), mf.Gaussian(4))


@pytest.fixture(scope="module")
def flow(folder):
    """A teacher flow of 20 snapshots (t = 0, 0.1, ..., 1.9)."""
    path = folder / "flow.h5"
    mf.simulate(_teacher_problem(), mf.init.sign_sphere(24, 4, seed=0), t_max=1.9, dt=0.1, save_every=1,
                backend="numpy", path=path).close()
    return path


@pytest.fixture(scope="module")
def classes(folder):
    """A K = 4 output network trained with the cross-entropy on a data set with a test split."""
    rng = np.random.default_rng(0)
    x, x_test = rng.standard_normal((60, 3)), rng.standard_normal((30, 3))
    w = rng.standard_normal((3, 4))
    data = DataSet(x, np.argmax(x @ w, axis=1).astype(float), x_test, np.argmax(x_test @ w, axis=1).astype(float))
    path = folder / "classes.h5"
    mf.simulate(mf.EmpiricalProblem(data, loss="cross_entropy", bias=True),
                mf.init.gaussian(16, 3, seed=0, bias_std=0.5, outputs=4), t_max=1.0, dt=0.05, save_every=4,
                backend="numpy", path=path).close()
    return path


@pytest.fixture(scope="module")
def logistic_plane(folder):
    """Biased neurons in the plane trained with the logistic loss (a circle's labels)."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (40, 2))
    data = DataSet(x, np.where((x**2).sum(axis=1) < 0.45, 1.0, -1.0))
    path = folder / "plane.h5"
    mf.simulate(mf.EmpiricalProblem(data, loss="logistic", bias=True), mf.init.gaussian(12, 2, seed=0, bias_std=0.5),
                t_max=2.0, dt=0.1, save_every=5, backend="numpy", path=path).close()
    return path


def _offsets(ax):
    return np.concatenate([c.get_offsets() for c in ax.collections if len(c.get_offsets())])


# -- animations ------------------------------------------------------------------------------------------------------
def _frame(gif, k):
    gif.seek(k)
    return np.asarray(gif.convert("RGB")).astype(int)


def _differing(a, b, levels=32):
    """Fraction of pixels with a channel off by more than ``levels`` (GIF palettes move antialiased edges a bit)."""
    return float((np.abs(a - b).max(axis=2) > levels).mean())


def test_animation_has_one_frame_per_snapshot_and_its_ends_are_the_still_figures(flow, tmp_path):
    out = animate(mf.load(flow), tmp_path / "flow.gif", fps=5, size=(8, 3.5), dpi=80)
    gif = Image.open(out)
    assert gif.n_frames == 20 and gif.info["duration"] == 200          # fps 5: 200 ms a frame
    assert gif.info["loop"] == 0                                        # played forever
    with mf.load(flow) as traj:
        first, last = (render(snapshot_figure(traj, i, size=(8, 3.5), dpi=80)[0]).astype(int) for i in (0, -1))
    # The frames are drawn by moving the first frame's artists; the still figures from scratch. A GIF maps every
    # pixel to a 256-colour palette: antialiased edges move by a few levels, so compare pixels off by > 32 levels.
    # Measured: 5e-5 of the pixels (the palette); a frame whose risk marker stayed behind differs in ~5e-4.
    assert _differing(_frame(gif, 0), first) < 2e-4
    assert _differing(_frame(gif, 19), last) < 2e-4
    # ...and the comparison sees the difference between the two ends (1-2 % of the pixels move).
    assert _differing(_frame(gif, 0), last) > 5e-3 and _differing(_frame(gif, 19), first) > 5e-3
    assert not (tmp_path / "flow.part.gif").exists()


@pytest.mark.parametrize("fixture", ["flow", "classes", "logistic_plane", "rings"])
def test_moving_the_artists_to_a_snapshot_draws_what_drawing_it_afresh_draws(fixture, request):
    from meanfield.frames import ParticleView, RiskMarker, new_figure

    def state(ax, marker):
        out = [ax.get_title(), marker.marker.get_xydata().tolist()]
        for artist in ax.collections + ax.patches:
            for getter in ("get_offsets", "get_sizes", "get_facecolors", "get_segments", "get_linewidths"):
                if hasattr(artist, getter):
                    out.append(np.asarray(getattr(artist, getter)(), dtype=float).tolist())
            if hasattr(artist, "get_data") and not hasattr(artist, "get_offsets"):
                out.append(artist.get_data().values.tolist())
        return out

    with mf.load(request.getfixturevalue(fixture)) as traj:
        view, marker = ParticleView(traj), RiskMarker(traj)
        fig = new_figure((6, 3), 50)
        ax, risk_ax = fig.subplots(1, 2)
        view.draw(ax, 0)
        marker.draw(risk_ax, 0)
        view.update(-1)
        marker.update(-1)
        fresh_view, fresh_marker = ParticleView(traj), RiskMarker(traj)
        fresh = new_figure((6, 3), 50).subplots(1, 2)
        fresh_view.draw(fresh[0], -1)
        fresh_marker.draw(fresh[1], -1)
        assert state(ax, marker) == state(fresh[0], fresh_marker)
        assert marker.marker.get_xydata().tolist() == [[traj.times[-1], traj.risk[-1]]]


def test_animation_stride_keeps_the_last_snapshot_and_the_cli_writes_mp4_when_ffmpeg_is_there(flow, tmp_path):
    assert frame_indices(20, 6) == [0, 6, 12, 18, 19]
    assert main(["plot", str(flow), "--animate", str(tmp_path / "s.gif"), "--stride", "6", "--size", "6", "3",
                 "--dpi", "40", "--no-progress"]) == 0
    gif = Image.open(tmp_path / "s.gif")
    assert gif.n_frames == 5 and gif.size == (240, 120)
    mp4 = tmp_path / "s.mp4"
    status = main(["plot", str(flow), "--animate", str(mp4), "--stride", "2", "--dpi", "40", "--no-progress"])
    if shutil.which("ffprobe"):    # ffmpeg installed: the frames counted by ffprobe
        assert status == 0
        probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                                "stream=nb_read_frames", "-of", "csv=p=0", str(mp4)], capture_output=True, text=True)
        assert probe.stdout.strip() == "11"                          # 0, 2, ..., 18 and the last, 19
    else:
        assert status == 2 and not mp4.exists()


def test_an_animation_stopped_midway_leaves_no_file(flow, tmp_path, monkeypatch):
    from meanfield.animate import GifWriter

    written, real_write = [], GifWriter.write

    def write(self, rgb):   # three frames written to the file, then Ctrl-C
        if len(written) == 3:
            assert (tmp_path / "stopped.part.gif").stat().st_size > 0
            raise KeyboardInterrupt
        real_write(self, rgb)
        written.append(rgb.shape)

    monkeypatch.setattr(GifWriter, "write", write)
    with pytest.raises(KeyboardInterrupt), mf.load(flow) as traj:
        animate(traj, tmp_path / "stopped.gif", size=(4, 2), dpi=30)
    assert len(written) == 3 and list(tmp_path.iterdir()) == []


def test_mp4_without_ffmpeg_is_a_one_line_error_naming_the_gif(flow, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(matplotlib.rcParams, "animation.ffmpeg_path", str(tmp_path / "no-ffmpeg-here"))
    assert main(["plot", str(flow), "--animate", str(tmp_path / "a.mp4"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ffmpeg" in err and str(tmp_path / "a.gif") in err
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "a.part.mp4").exists()
    assert main(["plot", str(flow), "--animate", str(tmp_path / "a.avi")]) == 2
    assert ".gif" in capsys.readouterr().err
    assert main(["plot", str(flow), "--animate", str(tmp_path / "a.gif"), "--stride", "0"]) == 2
    assert "stride" in capsys.readouterr().err


# -- particle pictures -----------------------------------------------------------------------------------------------
def test_particles_are_projected_on_the_hidden_subspace_with_area_mass_times_abs_a(flow):
    with mf.load(flow) as traj:
        ax = run_figures(traj)["particles.png"].axes[0]
        mu, U, c = traj.measure(-1), traj.target_arrays["U"], traj.target_arrays["c"]
    cloud = ax.collections[0]
    pts = np.asarray(cloud.get_offsets())
    # Independent of the basis drawn: the Gram matrix of the points is that of the projections P a_j b_j on span(U).
    P = U.T @ np.linalg.solve(U @ U.T, U)
    proj = (mu.a[:, None] * mu.b) @ P
    np.testing.assert_allclose(pts @ pts.T, proj @ proj.T, rtol=1e-10, atol=1e-13)
    # One snapshot drawn: its heaviest particle m w_j |a_j| gets the largest area.
    heaviest = np.max(mu.m * mu.weights * np.abs(mu.a))
    np.testing.assert_allclose(cloud.get_sizes(), LARGEST_AREA * mu.m * mu.weights * np.abs(mu.a) / heaviest,
                               rtol=1e-12)
    np.testing.assert_array_equal(cloud.get_facecolors(), [RED if a > 0 else BLUE for a in mu.a])
    rays = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(rays) == len(c) == 2
    for ray, neuron in zip(rays, c[:, None] * U):   # the teacher neuron's direction, to the edge of the window
        tip = np.array([ray.get_xdata()[1], ray.get_ydata()[1]])
        assert np.linalg.norm(tip) == pytest.approx(ax.get_xlim()[1], rel=1e-12)
        np.testing.assert_allclose(pts @ tip / np.linalg.norm(tip), proj @ neuron / np.linalg.norm(neuron),
                                   rtol=1e-10, atol=1e-13)


def test_k_output_run_plots_by_class_where_the_old_plot_failed(classes, tmp_path):
    """`meanfield plot` on a cross-entropy run raised a broadcast error (a (m, K) times b (m, d))."""
    assert main(["plot", str(classes), "--out", str(tmp_path)]) == 0
    assert {"risk.png", "particles.png", "loss.png", "accuracy.png"} <= {p.name for p in tmp_path.iterdir()}
    with mf.load(classes) as traj:
        figures = run_figures(traj)
        mu = traj.measure(-1)
        obs = {k: np.asarray(v) for k, v in traj.observables.items()}
        times = traj.times
    cloud = figures["particles.png"].axes[0].collections[0]
    norm = np.linalg.norm(mu.a, axis=1)
    expected = [matplotlib.colors.to_rgba(CLASS_COLORS[k]) for k in np.argmax(mu.a, axis=1)]
    np.testing.assert_array_equal(cloud.get_facecolors(), expected)
    np.testing.assert_allclose(cloud.get_sizes(), LARGEST_AREA * mu.weights * norm / np.max(mu.weights * norm),
                               rtol=1e-12)
    # No hidden subspace: the two principal directions of the mass-weighted points |a_j| b_j (an independent SVD).
    pts = norm[:, None] * mu.b
    _, _, vt = np.linalg.svd(pts * np.sqrt(mu.weights)[:, None])
    drawn = np.asarray(cloud.get_offsets())
    np.testing.assert_allclose(np.abs(drawn), np.abs(pts @ vt[:2].T), rtol=1e-9, atol=1e-12)
    loss = figures["loss.png"].axes[0].get_lines()
    np.testing.assert_array_equal(loss[0].get_xdata(), times)
    np.testing.assert_array_equal(loss[0].get_ydata(), obs["train_loss"])
    np.testing.assert_array_equal(loss[1].get_ydata(), obs["test_loss"])
    accuracy = figures["accuracy.png"].axes[0].get_lines()
    np.testing.assert_array_equal(accuracy[0].get_ydata(), obs["train_accuracy"])
    np.testing.assert_array_equal(accuracy[1].get_ydata(), obs["test_accuracy"])


def test_biased_neurons_in_the_plane_are_their_lines_and_the_margin_is_drawn(logistic_plane):
    with mf.load(logistic_plane) as traj:
        figures = run_figures(traj)
        mu = traj.measure(-1)
        margin = np.asarray(traj.observables["margin"])
        x = traj.target_arrays["x"]
    ax = figures["particles.png"].axes[0]
    lines = next(c for c in ax.collections if hasattr(c, "get_segments"))
    segments = np.asarray(lines.get_segments())
    assert segments.shape == (mu.m, 2, 2)
    for j, seg in enumerate(segments):        # both ends on b_j·x + c_j = 0, and the segment crosses the window
        np.testing.assert_allclose(seg @ mu.b[j] + mu.c[j], 0.0, atol=1e-9 * (1 + np.abs(seg).max()))
        assert np.linalg.norm(seg[1] - seg[0]) > 2 * np.sqrt(2) * ax.get_xlim()[1]
    np.testing.assert_array_equal(lines.get_colors()[:, :3], [(RED if a > 0 else BLUE)[:3] for a in mu.a])
    np.testing.assert_allclose(ax.collections[0].get_offsets(), x)   # the data points
    np.testing.assert_array_equal(figures["margin.png"].axes[0].get_lines()[0].get_ydata(), margin)


@pytest.fixture(scope="module")
def rings(folder):
    teacher = mf.Problem(mf.TeacherNetwork([1.0, 1.0], np.eye(5)[:2]), mf.Gaussian(5))   # depends on x_1, x_2 only
    lowdim = LowDimReducedProblem(teacher, Q=np.eye(5)[:, :2])
    rng = np.random.default_rng(3)
    nu = RingMeasure(rng.choice([-1.0, 1.0], 20), rng.standard_normal((20, 2)), np.abs(rng.standard_normal(20)))
    path = folder / "rings.h5"
    mf.simulate(lowdim, nu, t_max=1.0, dt=0.1, save_every=5, backend="numpy", path=path).close()
    return path


def test_ring_flow_is_drawn_as_its_radius_distribution(rings, tmp_path):
    out = animate(mf.load(rings), tmp_path / "rings.gif", size=(6, 3), dpi=40)
    assert Image.open(out).n_frames == 3
    with mf.load(rings) as traj:
        ax = run_figures(traj)["particles.png"].axes[0]
        nu = traj.measure(-1)
    pos, neg = ax.patches[:2]
    edges = pos.get_data().edges
    assert edges[0] == 0 and edges[-1] >= nu.r.max()
    for stair, sel in ((pos, nu.a > 0), (neg, nu.a < 0)):
        expected = np.histogram(nu.r[sel], bins=edges, weights=(nu.weights * np.abs(nu.a))[sel])[0]
        np.testing.assert_allclose(stair.get_data().values, expected, rtol=1e-12)
    assert ax.get_xlabel().startswith("ring radius")


# -- dynamics, SGD, MLP and sweeps -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def langevin(folder):
    path = folder / "langevin.h5"
    mf.simulate(mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0]]), mf.Gaussian(2)), mf.init.sign_sphere(32, 2, seed=0),
                t_max=0.6, dt=0.05, save_every=3, backend="numpy", path=path,
                dynamics=Langevin(temperature=1e-3, weight_decay=1e-2, seed=0, diagnostic_particles=256)).close()
    return path


@pytest.fixture(scope="module")
def conic(folder):
    path = folder / "conic.h5"
    mf.simulate(_teacher_problem(), mf.init.sign_sphere(16, 4, seed=0), t_max=1.0, dt=0.1, save_every=2,
                backend="numpy", path=path, dynamics=Conic(alpha=3.0)).close()
    return path


@pytest.fixture(scope="module")
def birth_death(folder):
    path = folder / "birth_death.h5"
    mf.simulate(_teacher_problem(), mf.init.sign_sphere(32, 4, seed=0), t_max=1.0, dt=0.05, save_every=4,
                backend="numpy", path=path, dynamics=BirthDeath(rate=5.0, seed=1)).close()
    return path


@pytest.fixture(scope="module")
def sgd_and_flow(folder):
    problem, mu0 = _teacher_problem(), mf.init.sign_sphere(32, 4, seed=0)
    sgd_path, flow_path = folder / "sgd.h5", folder / "sgd_flow.h5"
    mf.sgd.train(problem, mu0, t_max=1.0, eta=0.02, batch_size=64, seed=0, save_every=10, path=sgd_path).close()
    mf.simulate(problem, mu0, t_max=1.0, dt=0.05, save_every=2, backend="numpy", path=flow_path).close()
    return sgd_path, flow_path


@pytest.fixture(scope="module")
def mlp(folder):
    from meanfield.weights.mlp import train_mlp

    path = folder / "mlp.h5"
    train_mlp(width=8, depth=2, epochs=2, seed=0, path=path).close()
    return path


KINDS = {  # fixture -> the figures `meanfield plot` must write for it
    "flow": {"risk.png", "particles.png", "alignment.png"},
    "classes": {"risk.png", "particles.png", "loss.png", "accuracy.png"},
    "logistic_plane": {"risk.png", "particles.png", "loss.png", "accuracy.png", "margin.png"},
    "rings": {"risk.png", "particles.png"},
    "langevin": {"risk.png", "particles.png", "alignment.png", "free_energy.png", "stein.png"},
    "conic": {"risk.png", "particles.png", "alignment.png", "mass.png"},
    "birth_death": {"risk.png", "particles.png", "alignment.png", "jumps.png"},
    "sgd_and_flow": {"risk.png", "particles.png", "alignment.png", "reference.png"},
    "mlp": {"loss.png", "accuracy.png", "reference.png"},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_meanfield_plot_writes_the_figures_of_every_kind(kind, request, flow, tmp_path, capsys):
    path = request.getfixturevalue(kind)
    reference = []
    if kind == "sgd_and_flow":
        path, reference = path[0], ["--reference", str(path[1])]
    elif kind == "mlp":
        reference = ["--reference", str(flow)]
    assert main(["plot", str(path), "--out", str(tmp_path), *reference]) == 0
    assert {p.name for p in tmp_path.iterdir()} == KINDS[kind]
    for png in tmp_path.iterdir():
        assert Image.open(png).size[0] > 300
    assert capsys.readouterr().out.startswith("wrote ")


def test_langevin_run_draws_the_regularised_risk_and_the_stein_discrepancy(langevin):
    with mf.load(langevin) as traj:
        figures = run_figures(traj)
        obs = {k: np.asarray(v) for k, v in traj.observables.items()}
        risk = traj.risk
    curves = figures["free_energy.png"].axes[0].get_lines()
    np.testing.assert_array_equal(curves[0].get_ydata(), risk)
    np.testing.assert_array_equal(curves[1].get_ydata(), obs["regularized_risk"])
    ax = figures["stein.png"].axes[0]
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), obs["ksd2"])
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose([band.min(), band.max()], [np.min(obs["ksd2"] - 2 * obs["ksd2_se"]),
                                                          np.max(obs["ksd2"] + 2 * obs["ksd2_se"])], rtol=1e-12)


def test_conic_run_draws_the_distribution_of_its_masses_over_time(conic):
    with mf.load(conic) as traj:
        fig = run_figures(traj)["mass.png"]
        snapshots = [traj.measure(i) for i in range(len(traj))]
        total = np.asarray(traj.observables["total_mass"])
    mesh = fig.axes[0].collections[0]
    drawn = np.asarray(mesh.get_array()).reshape(-1, len(snapshots))      # (bins, T)
    edges = np.unique(mesh.get_coordinates()[:, 0, 1])
    for i, mu in enumerate(snapshots):       # each particle's mass w (a² + |b|²) in the bin of log10(m w (a² + |b|²))
        mass = mu.weights * (mu.a**2 + np.sum(mu.b**2, axis=1))
        expected = np.histogram(np.log10(mu.m * mass), bins=edges, weights=mass)[0]
        np.testing.assert_allclose(drawn[:, i], expected, rtol=1e-12, atol=1e-15)
        assert drawn[:, i].sum() == pytest.approx(total[i], rel=1e-12)
    assert not np.allclose(drawn[:, 0], drawn[:, -1])                 # the masses moved
    np.testing.assert_array_equal(fig.axes[1].get_lines()[0].get_ydata(), total)   # (axes[2]: the colour bar)


def test_birth_death_run_draws_its_jumps(birth_death):
    with mf.load(birth_death) as traj:
        fig = run_figures(traj)["jumps.png"]
        jumps, times = np.asarray(traj.observables["jumps"]), traj.times
    assert jumps[-1] > 0
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_ydata(), jumps)
    rate = fig.axes[1].get_lines()[0].get_ydata()
    np.testing.assert_allclose(rate[~np.isnan(rate)][-1], (jumps[-1] - jumps[-2]) / (times[-1] - times[-2]))


def test_sgd_is_drawn_beside_its_reference_flow(sgd_and_flow):
    sgd_path, flow_path = sgd_and_flow
    with mf.load(sgd_path) as sgd, mf.load(flow_path) as flow:
        lines = run_figures(sgd, flow)["reference.png"].axes[0].get_lines()
        np.testing.assert_array_equal(lines[0].get_xdata(), sgd.times)
        np.testing.assert_array_equal(lines[0].get_ydata(), sgd.risk)
        np.testing.assert_array_equal(lines[1].get_ydata(), flow.risk)


def test_mlp_is_drawn_next_to_its_reference_flow(mlp, flow):
    with mf.load(mlp) as run, mf.load(flow) as reference:
        figures = run_figures(run, reference)
        assert "risk.png" not in figures and "particles.png" not in figures
        left, right = figures["reference.png"].axes
        np.testing.assert_array_equal(left.get_lines()[0].get_ydata(), run.risk)
        np.testing.assert_array_equal(left.get_lines()[1].get_ydata(), run.observables["test_loss"][:])
        np.testing.assert_array_equal(right.get_lines()[0].get_ydata(), reference.risk)
        assert left.get_xlabel() == "epoch" and right.get_xlabel() == "t (mean-field time)"
        np.testing.assert_array_equal(figures["accuracy.png"].axes[0].get_lines()[1].get_ydata(),
                                      run.observables["test_accuracy"][:])


def test_sweep_final_risks_are_a_heat_map_over_its_two_keys(tmp_path):
    from meanfield.sweep import run_sweep

    cfg = {"inputs": {"law": "sphere", "d": 3}, "target": {"kind": "teacher", "k": 1, "seed": 0},
           "init": {"kind": "gaussian", "m": 4, "seed": 0}, "run": {"t_max": 0.3, "dt": 0.1, "backend": "numpy"},
           "sweep": {"output_dir": str(tmp_path / "sweep"), "grid": {"init.m": [4, 8, 16], "init.seed": [0, 1]}}}
    manifest = run_sweep(cfg, n_workers=1, progress=False)
    assert main(["plot", str(tmp_path / "sweep")]) == 0 and (tmp_path / "sweep" / "final_risk.png").exists()
    image = sweep_figure(tmp_path / "sweep").axes[0].images[0]
    drawn = np.asarray(image.get_array())
    assert drawn.shape == (3, 2)
    for run in manifest["runs"]:
        with mf.load(run["path"]) as traj:
            row, col = [4, 8, 16].index(run["overrides"]["init.m"]), [0, 1].index(run["overrides"]["init.seed"])
            assert drawn[row, col] == pytest.approx(np.log10(traj.risk[-1]), rel=1e-12)
    one = json.loads((tmp_path / "sweep" / "manifest.json").read_text())
    one["grid"] = {"init.m": [4, 8, 16]}
    one["runs"] = [r for r in one["runs"] if r["overrides"]["init.seed"] == 0]
    (tmp_path / "manifest.json").write_text(json.dumps(one))
    line = sweep_figure(tmp_path / "manifest.json").axes[0].get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), [4, 8, 16])
    np.testing.assert_allclose(line.get_ydata(), 10 ** drawn[:, 0], rtol=1e-12)


def test_particle_cloud_of_k_output_neurons_is_coloured_by_class():
    """plot.particle_cloud broadcast a (m, K) against b (m, d) before; now |a_j| b_j, one colour per class."""
    from meanfield import plot

    mu = mf.init.gaussian(30, 3, seed=4, outputs=3)
    ax = plot.particle_cloud(mu)
    cls = np.argmax(mu.a, axis=1)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"class {k} ({int((cls == k).sum())})" for k in range(3)]
    norm = np.linalg.norm(mu.a, axis=1)
    for k, cloud in enumerate(ax.collections):
        pts = np.asarray(cloud.get_offsets())
        # norms of the projections on the two principal directions of |a| b √w (an independent SVD)
        _, _, vt = np.linalg.svd(norm[:, None] * mu.b * np.sqrt(mu.weights)[:, None])
        np.testing.assert_allclose(np.abs(pts), np.abs((norm[:, None] * mu.b)[cls == k] @ vt[:2].T), rtol=1e-9)
        np.testing.assert_array_equal(cloud.get_facecolors()[0], matplotlib.colors.to_rgba(CLASS_COLORS[k]))
