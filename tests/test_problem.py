"""Risk, first variation and velocity against Monte-Carlo estimates of the population risk and gradient."""

import numpy as np
import pytest
from conftest import assert_mc_close

import meanfield as mf


def _problem(kind, law, rng):
    d = law.d
    if kind == "teacher":
        target = mf.TeacherNetwork(np.array([1.0, -0.6]), rng.standard_normal((2, d)))
    elif kind == "cubic":
        target = mf.CubicTarget(rng.standard_normal(d))
    else:
        target = mf.MultiIndexTarget(lambda xh: np.linalg.norm(xh, axis=1), np.eye(d)[:, :2], degree=1)
    return target


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
@pytest.mark.parametrize("kind", ["teacher", "cubic", "multi_index"])
def test_risk_and_velocity_against_monte_carlo(law_and_sample, kind, activation):
    law, x = law_and_sample
    rng = np.random.default_rng(11)
    problem = mf.Problem(_problem(kind, law, rng), law, activation=activation, slope=0.2)
    mu = mf.ParticleMeasure(rng.standard_normal(4), rng.standard_normal((4, law.d)),
                            weights=np.array([1, 2, 3, 4]) / 10)
    residual = problem.predict(mu, x) - problem.target(x)
    # The multi-index quadrature is accurate to ~1e-3 relative (see MultiIndexTarget); the rest is exact.
    floor = 2e-3 if kind == "multi_index" else 1e-12
    assert_mc_close(problem.risk(mu), 0.5 * residual**2, floor=floor)
    da, db = problem.velocity(mu)
    for j in range(mu.m):
        z = x @ mu.b[j]
        act = np.maximum(z, 0.2 * z) if activation == "leaky_relu" else np.maximum(z, 0)
        slope = np.where(z > 0, 1.0, 0.2 if activation == "leaky_relu" else 0.0)
        # ∂F/∂a_j = w_j E[(f − f*) σ(b_j·x)] and ∂F/∂b_j = w_j a_j E[(f − f*) σ'(b_j·x) x]; velocity = −∂F/w_j.
        assert_mc_close(-da[j], residual * act, floor=floor)
        assert_mc_close(-db[j], mu.a[j] * (residual * slope)[:, None] * x, floor=floor)


def test_risk_vanishes_at_the_teacher_and_is_accurate_at_small_risk():
    rng = np.random.default_rng(12)
    U = rng.standard_normal((3, 10))
    c = np.array([1.0, 2.0, -0.5])
    problem = mf.Problem(mf.TeacherNetwork(c, U), mf.Gaussian(10))
    exact = mf.ParticleMeasure(3 * c, U)  # uniform weights 1/3
    assert abs(problem.risk(exact)) < 1e-14
    # F(teacher + δ v) = δ² q(v) + O(δ³): F/δ² must settle as δ shrinks; the documented absolute round-off
    # (~1e-15 · E f*²) keeps it within 1e-3 down to δ = 1e-6, i.e. F ≈ 1e-11.
    v = rng.standard_normal((3, 10))
    ratios = [problem.risk(mf.ParticleMeasure(3 * c, U + delta * v)) / delta**2 for delta in 10.0 ** -np.arange(3, 7)]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-3)


def test_dissipation_is_the_rate_of_decrease_of_the_risk():
    """dF/ds along the velocity field v equals −dissipation: the derivative of the risk itself, by a central difference
    of F(θ + s v) (error O(s²) ≈ 1e-10 relative at s = 1e-5, round-off ≈ 1e-15/1e-5), not the velocity squared."""
    rng = np.random.default_rng(13)
    problem = mf.Problem(mf.CubicTarget(rng.standard_normal(5)), mf.Sphere(5))
    mu = mf.init.gaussian(6, 5, seed=0)
    da, db = problem.velocity(mu)
    s = 1e-5

    def risk_at(step):
        return problem.risk(mf.ParticleMeasure(mu.a + step * da, mu.b + step * db, mu.weights))

    rate = (risk_at(s) - risk_at(-s)) / (2 * s)
    np.testing.assert_allclose(rate, -problem.dissipation(mu), rtol=1e-7)


def test_problem_validation():
    target = mf.TeacherNetwork([1.0], np.ones((1, 4)))
    with pytest.raises(ValueError, match="target has input dimension 4 but the input law has dimension 5"):
        mf.Problem(target, mf.Gaussian(5))
    with pytest.raises(ValueError, match="activation must be one of"):
        mf.Problem(target, mf.Gaussian(4), activation="swish")
    with pytest.raises(ValueError, match="slope"):
        mf.Problem(target, mf.Gaussian(4), activation="leaky_relu", slope=1.5)
    problem = mf.Problem(target, mf.Gaussian(4))
    with pytest.raises(ValueError, match="dimension 3 but the problem has d = 4"):
        problem.risk(mf.init.sign_sphere(5, 3, seed=0))


def test_measure_validation():
    with pytest.raises(ValueError, match="a has 3 particles but b has 2 rows"):
        mf.ParticleMeasure(np.ones(3), np.ones((2, 4)))
    with pytest.raises(ValueError, match="m >= 1"):
        mf.ParticleMeasure(np.ones(0), np.ones((0, 4)))
    with pytest.raises(ValueError, match="NaN"):
        mf.ParticleMeasure([np.inf], np.ones((1, 4)))
    with pytest.raises(ValueError, match="weights must all be > 0"):
        mf.ParticleMeasure([1.0, 1.0], np.ones((2, 4)), weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="m must be >= 1"):
        mf.init.sign_sphere(-2, 3)
    with pytest.raises(ValueError, match="even"):
        mf.init.paired(5, 3)


def test_paired_initialisation_is_mirror_symmetric():
    mu = mf.init.paired(8, 3, seed=1)
    np.testing.assert_array_equal(mu.a[:4], -mu.a[4:])
    np.testing.assert_array_equal(mu.b[:4], -mu.b[4:])
    x = mf.Gaussian(3).sample(50, 2)
    # The predictor of a mirror-symmetric measure is odd (and linear: σ(z) − σ(−z) = z).
    np.testing.assert_allclose(mu.predict(x), -mu.predict(-x), atol=1e-14)
    w = 0.5 * (mu.weights * mu.a) @ mu.b
    np.testing.assert_allclose(mu.predict(x), x @ w, atol=1e-14)
