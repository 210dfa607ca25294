"""Leaky ReLU wherever the activation appears, against Monte Carlo; and what each public plotting function draws."""

import matplotlib
import numpy as np
import pytest
from conftest import assert_mc_close

import meanfield as mf
from meanfield import plot
from meanfield.compare import function_distance
from meanfield.symmetry import asymmetry, permutation

matplotlib.use("Agg")
SLOPE = 0.25


@pytest.mark.parametrize("law", [mf.Gaussian(4, 0.7), mf.Sphere(4)])
def test_function_distance_and_asymmetry_with_a_slope_against_monte_carlo(law):
    rng = np.random.default_rng(6)
    mu, nu = mf.init.gaussian(5, 4, seed=1), mf.init.gaussian(7, 4, seed=2)
    x = law.sample(1_000_000, rng)
    diff = mu.predict(x, SLOPE) - nu.predict(x, SLOPE)
    # ‖f(μ) − f(ν)‖² by Monte Carlo, the squared closed form against it (a mean, so its SE is the right yardstick).
    assert_mc_close(function_distance(mu, nu, law, activation=SLOPE) ** 2, diff**2)
    # With the ReLU kernel instead the closed form is off by many SE: the slope is not ignored.
    assert abs(function_distance(mu, nu, law) ** 2 - np.mean(diff**2)) > 20 * np.std(diff**2) / 1000
    # Asymmetry under the coordinate swap (0 1) with parity −1: ‖f(μ)∘T + f(μ)‖ and its size ‖f(μ)‖.
    swap = permutation([1, 0, 2, 3], parity=-1)
    out = asymmetry(mu, swap, law, activation=SLOPE, measure_distance=False)
    composed = mu.predict(x[:, [1, 0, 2, 3]], SLOPE) + mu.predict(x, SLOPE)
    assert_mc_close(out["function"] ** 2, composed**2)
    assert_mc_close((out["function"] / out["relative"]) ** 2, mu.predict(x, SLOPE) ** 2)


@pytest.fixture(scope="module")
def run():
    U = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.5], U), mf.Gaussian(4))
    return mf.simulate(problem, mf.init.sign_sphere(24, 4, seed=0), t_max=2.0, dt=0.1, save_every=5)


def test_risk_curve_draws_the_risks(run):
    ax = plot.risk_curve([run, run], labels=["a", "b"], minimum=1e-3)
    lines = ax.get_lines()
    np.testing.assert_array_equal(lines[0].get_xdata(), run.times)
    np.testing.assert_array_equal(lines[0].get_ydata(), run.risk)
    assert lines[2].get_ydata()[0] == 1e-3  # the dashed minimum
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "t (mean-field time)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "minimum"]
    excess = plot.risk_curve(run, minimum=1e-3, excess=True)
    np.testing.assert_allclose(excess.get_lines()[0].get_ydata(), run.risk - 1e-3)
    assert excess.get_ylabel() == "excess risk"


def test_particle_cloud_projects_on_the_principal_directions_without_a_subspace(run):
    mu = run.final
    ax = plot.particle_cloud(mu)
    pts = np.concatenate([c.get_offsets() for c in ax.collections])
    # Independent: the two leading right singular vectors of the mass-weighted cloud, up to sign.
    _, _, vt = np.linalg.svd(mu.a[:, None] * mu.b * np.sqrt(mu.weights)[:, None])
    ordered = np.concatenate([(mu.a[:, None] * mu.b)[s] for s in (mu.a > 0, mu.a <= 0)])
    for k in range(2):
        expected = ordered @ vt[k]
        assert np.allclose(pts[:, k], expected, rtol=1e-10) or np.allclose(pts[:, k], -expected, rtol=1e-10)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"a > 0 ({int((mu.a > 0).sum())})", f"a ≤ 0 ({int((mu.a <= 0).sum())})"]


def test_alignment_histograms_carry_the_mass(run):
    Q = np.eye(4)[:, :2]
    axes = plot.alignment_histograms(run, Q, snapshots=(0, -1))
    for i, patch_index in ((0, 0), (-1, 1)):
        mu = run.measure(i)
        mass = mu.weights * np.abs(mu.a) * np.linalg.norm(mu.b, axis=1)
        for ax, sel in ((axes[0], mu.a > 0), (axes[1], mu.a < 0)):
            drawn = _step_total(ax.patches[patch_index])
            assert drawn == pytest.approx(mass[sel].sum(), rel=1e-12)
    assert axes[0].get_xlabel() == "angle to H (rad)" and axes[0].get_ylabel() == "mass |a||b|"


def _step_total(patch):
    """Sum of the bin heights of a histtype='step' histogram: the outline visits each bin top once."""
    v = patch.get_path().vertices
    tops = v[1:-1:2, 1]  # (left, top), (right, top) pairs along the outline
    return float(tops.sum())


def test_ensemble_curves_and_invariant_deviations_draw_their_data():
    times = np.linspace(0, 1, 5)
    ax = plot.ensemble_curves({"x": (times, times**2), "y": (times, 1 + times)}, ylabel="value",
                              bands={"x": (times, np.full(5, 0.1))})
    lines = ax.get_lines()
    np.testing.assert_array_equal(lines[0].get_ydata(), times**2)
    np.testing.assert_array_equal(lines[1].get_ydata(), np.full(5, 0.1))  # the band, dotted, same colour
    assert lines[1].get_linestyle() == ":" and lines[1].get_color() == lines[0].get_color()
    np.testing.assert_array_equal(lines[2].get_ydata(), 1 + times)
    assert ax.get_ylabel() == "value"
    rows = {"model A": [{"name": "tr M^3", "deviation": 0.5}, {"name": "sum M^4", "deviation": -2.0}],
            "model B": [{"name": "tr M^3", "deviation": 1.5}, {"name": "sum M^4", "deviation": 0.0}]}
    ax = plot.invariant_deviations(rows)
    markers = [line for line in ax.get_lines() if line.get_marker() == "o"]
    np.testing.assert_array_equal(markers[0].get_xdata(), [0.5, -2.0])
    np.testing.assert_array_equal(markers[1].get_xdata(), [1.5, 0.0])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["tr M^3", "sum M^4"]


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_savefig_writes_the_same_file_twice_without_version_or_date(tmp_path, suffix):
    """Tracked figures stay unchanged when an experiment is rerun: no software version, no date, no random ids."""
    import matplotlib.pyplot as plt

    paths = []
    for i in range(2):
        fig, ax = plt.subplots()
        ax.plot([0.0, 1.0, 3.0], [1.0, 0.5, 0.25], label="curve")
        ax.legend()
        paths.append(tmp_path / f"figure{i}{suffix}")
        plot.savefig(fig, paths[-1])
    first, second = (p.read_bytes() for p in paths)
    assert first == second
    assert matplotlib.__version__.encode() not in first
    if suffix == ".png":
        assert b"Software" not in first
