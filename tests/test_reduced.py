"""Reduced flows against the full flow: odd targets (exact) and low-dimensional targets (rings)."""

import numpy as np
import pytest
from conftest import assert_mc_close

import meanfield as mf
from meanfield.measure import RingMeasure
from meanfield.reduced import LowDimReducedProblem, OddReducedProblem, odd_minimum, ring_quadrature


@pytest.fixture(scope="module")
def odd_problem():
    inputs = mf.Gaussian(12, 1 / 12)
    z = np.random.default_rng(0).standard_normal(12)
    return mf.Problem(mf.CubicTarget.normalized(z, inputs), inputs)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_odd_reduced_flow_is_the_full_flow_from_a_symmetric_start(odd_problem, backend):
    reps = mf.init.sign_sphere(40, 12, seed=1)
    reduced = mf.simulate(OddReducedProblem(odd_problem), reps, t_max=30.0, dt=0.5, solver="rk4", backend=backend)
    full = mf.simulate(odd_problem, mf.init.symmetrize(reps), t_max=30.0, dt=0.5, solver="rk4", backend=backend)
    np.testing.assert_allclose(reduced.final.state(), full.final.state()[:40], atol=1e-11)
    np.testing.assert_allclose(reduced.risk, full.risk, rtol=1e-11)
    # The full predictor stays linear: it equals ⟨w, x⟩ with w = ½ ∫ a b dμ.
    x = odd_problem.inputs.sample(200, 2)
    w = OddReducedProblem(odd_problem).linear_predictor(reduced.final)
    np.testing.assert_allclose(full.final.predict(x), x @ w, atol=1e-12)


def test_odd_flow_converges_to_the_linear_projection_exponentially(odd_problem):
    reduced_problem = OddReducedProblem(odd_problem)
    w_star, minimum = odd_minimum(odd_problem)
    reps = mf.init.sign_sphere(64, 12, seed=3)
    obs = {"w": reduced_problem.linear_predictor,
           "conserved": lambda mu: mu.a**2 - np.sum(mu.b**2, axis=1)}
    traj = mf.simulate(reduced_problem, reps, t_max=400.0, dt=0.5, solver="rk4", save_every=20, observables=obs)
    # a² − |b|² is conserved particle by particle, up to the integrator's error: RK4 drift shrinks ~16x per halving.
    drift = np.abs(traj.observables["conserved"] - traj.observables["conserved"][0]).max()
    finer = mf.simulate(reduced_problem, reps, t_max=400.0, dt=0.25, solver="rk4", save_every=40, observables=obs)
    drift_finer = np.abs(finer.observables["conserved"] - finer.observables["conserved"][0]).max()
    assert drift < 1e-6 and 10 < drift / drift_finer < 24, (drift, drift_finer)
    err = np.linalg.norm(traj.observables["w"] - w_star, axis=1)
    assert err[-1] < 1e-8 * err[0]
    np.testing.assert_allclose(traj.risk[-1], minimum, rtol=1e-10)
    # Exponential rate: log|w − w*| is linear at late times, with the rate the linearisation predicts,
    # ẇ = −c²(B + A I) Σ (w − w*), B = Σ w_r b_r b_rᵀ, A = Σ w_r a_r² (rate of the slowest mode, c = 1/2).
    late = (traj.times > 100) & (err > 1e-13)
    rate = -np.polyfit(traj.times[late], np.log(err[late]), 1)[0]
    mu = traj.final
    B = (mu.weights[:, None] * mu.b).T @ mu.b
    A = mu.weights @ mu.a**2
    predicted = 0.25 * odd_problem.scale * np.linalg.eigvalsh(B + A * np.eye(12))
    assert predicted.min() * 0.9 < rate < predicted.max() * 1.1


def test_ring_quadrature_moments():
    for d_perp in (1, 2, 3, 7):
        t, w = ring_quadrature(d_perp)
        g = np.random.default_rng(d_perp).standard_normal((400_000, 2, d_perp)) if d_perp > 1 else None
        assert np.isclose(w.sum(), 1.0) and np.isclose(w @ t, 0.0, atol=1e-14)
        # E t² = 1/d_perp for two independent uniform directions.
        np.testing.assert_allclose(w @ t**2, 1.0 / d_perp, rtol=1e-12)
        if g is not None:
            u = g / np.linalg.norm(g, axis=2, keepdims=True)
            cos = np.sum(u[:, 0] * u[:, 1], axis=1)
            # Monte Carlo with 4e5 pairs: relative SE of E|t|³ ≲ 2/√(4e5) = 3e-3; 2 % ≈ 6 SE.
            np.testing.assert_allclose(w @ np.abs(t) ** 3, np.mean(np.abs(cos) ** 3), rtol=0.02)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_low_dim_reduced_is_exact_when_the_ring_has_two_points(backend):
    """d_⊥ = 1: a ring is the pair ±r e⊥, so lifting each reduced particle to its two points is exact."""
    d, d_h = 4, 3
    Q = np.eye(d)[:, :d_h]
    problem = mf.Problem(mf.RadialTarget(lambda r: r, Q), mf.Gaussian(d))
    lowdim = LowDimReducedProblem(problem)
    rng = np.random.default_rng(4)
    nu = RingMeasure(rng.choice([-1.0, 1.0], 10), np.abs(rng.standard_normal((10, d_h))),
                     np.abs(rng.standard_normal(10)))
    u, r = nu.u, nu.r
    e = lowdim.e_perp
    full_mu = mf.ParticleMeasure(np.concatenate([nu.a, nu.a]),
                                 np.concatenate([u @ Q.T + r[:, None] * e, u @ Q.T - r[:, None] * e]))
    red = mf.simulate(lowdim, nu, t_max=5.0, dt=0.1, solver="rk4", backend=backend)
    full = mf.simulate(problem, full_mu, t_max=5.0, dt=0.1, solver="rk4", backend=backend)
    np.testing.assert_allclose(red.risk, full.risk, rtol=1e-10)
    np.testing.assert_allclose(red.final.state(), lowdim.reduce(full.final).state()[:10], atol=1e-10)


def test_low_dim_reduced_matches_the_full_flow_as_the_width_grows():
    """O(H^⊥)-invariant in law: each reduced particle lifted to n random directions of H^⊥. The full flow's risk
    approaches the reduced one like n^{-1}, not n^{-1/2}: F'(μ)(a, b) = a ψ(b) is constant on every ring, so the
    first-order (Monte-Carlo) fluctuation of the lifted measure does not move the risk."""
    d, d_h = 7, 2
    Q = np.eye(d)[:, :d_h]
    problem = mf.Problem(mf.RadialTarget(lambda r: r, Q, degree=1, order=16), mf.Sphere(d))
    lowdim = LowDimReducedProblem(problem)
    rng = np.random.default_rng(5)
    nu = lowdim.reduce(mf.init.sign_sphere(6, d, seed=6))
    red = mf.simulate(lowdim, nu, t_max=10.0, dt=0.5, solver="heun")
    widths = (8, 32, 128, 512)
    errors = []
    for n in widths:
        reps = nu.repeat(n)
        errors.append(np.mean([np.abs(mf.simulate(problem, lowdim.lift(reps, seed=int(rng.integers(1 << 31))),
                                                  t_max=10.0, dt=0.5, solver="heun", backend="numba").risk
                                      - red.risk).max() for _ in range(3)]))
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert -1.35 < slope < -0.7, (errors, slope)


def test_rings_are_their_own_measure_type_through_files_and_resume(tmp_path):
    """A low-dimensional flow moves RingMeasures (a, u, r): a ParticleMeasure is refused, lift/reduce convert
    (reduce ∘ lift is the identity), and a file run loads and resumes as rings, bit-identically."""
    d = 6
    problem = mf.Problem(mf.RadialTarget(lambda r: r, np.eye(d)[:, :2]), mf.Gaussian(d))
    lowdim = LowDimReducedProblem(problem)
    full = mf.init.sign_sphere(8, d, seed=1)
    with pytest.raises(TypeError, match="RingMeasure.*reduce"):
        mf.simulate(lowdim, full, t_max=1.0, dt=0.1)
    with pytest.raises(ValueError, match="SGD trains neurons"):
        mf.sgd.train(lowdim, lowdim.reduce(full), t_max=1.0, eta=0.1)
    nu = lowdim.reduce(full)
    assert isinstance(nu, RingMeasure) and nu.d_hidden == 2
    np.testing.assert_allclose(lowdim.reduce(lowdim.lift(nu, seed=3)).state(), nu.state(), atol=1e-14)
    path = tmp_path / "rings.h5"
    mf.simulate(lowdim, nu, t_max=1.0, dt=0.1, save_every=2, path=path).close()
    with mf.simulate(lowdim, nu, t_max=2.0, dt=0.1, save_every=2, path=path, resume=True) as resumed:
        reference = mf.simulate(lowdim, nu, t_max=2.0, dt=0.1, save_every=2)
        assert isinstance(resumed.final, RingMeasure) and isinstance(resumed.measure(3), RingMeasure)
        assert isinstance(reference.measure(3), RingMeasure)
        np.testing.assert_array_equal(resumed.final.state(), reference.final.state())
        np.testing.assert_array_equal(resumed.measure(3).r, reference.measure(3).r)
        np.testing.assert_array_equal(resumed.risk, reference.risk)


def ring_predictor(nu, Q, x, nodes=100):
    """f_ν(x) = Σ_k w_k a_k E_e relu(⟨Q u_k, x⟩ + r_k ⟨e, x_⊥⟩), e uniform on the unit sphere of H^⊥ (dimension p):
    ⟨e, x_⊥⟩ = |x_⊥| t with t of density ∝ (1 − t²)^{(p−3)/2} on [−1, 1], integrated by Gauss–Jacobi quadrature."""
    from scipy.special import roots_jacobi

    p = x.shape[1] - Q.shape[1]
    t, w = roots_jacobi(nodes, (p - 3) / 2, (p - 3) / 2)
    w = w / w.sum()
    along = (x @ Q) @ nu.u.T                                          # (n, M)
    across = np.linalg.norm(x - (x @ Q) @ Q.T, axis=1)                # |x_⊥|
    values = np.maximum(along[:, :, None] + (nu.r[None, :, None] * across[:, None, None]) * t, 0.0) @ w
    return values @ (nu.weights * nu.a)


def test_ring_to_ring_function_distance_against_monte_carlo():
    """‖f(μ) − f(ν)‖² between two ring measures (every term ring-averaged in closed form) against Monte Carlo over
    2·10⁴ Gaussian inputs of the squared difference of their predictors, each ring's average over its sphere by
    100-point Gauss–Jacobi quadrature (its error at the ReLU's kink, measured against 400 points: 1e-6 relative,
    far below the Monte-Carlo error of 0.5 %). H is a random plane of R⁶."""
    d = 6
    Q = np.linalg.qr(np.random.default_rng(3).standard_normal((d, 2)))[0]
    teacher = mf.TeacherNetwork([1.0, -0.5], Q.T)           # a target in H, so the reduction applies
    lowdim = LowDimReducedProblem(mf.Problem(teacher, mf.Gaussian(d)), Q=Q)
    mu = lowdim.reduce(mf.init.sign_sphere(3, d, seed=0))
    nu = lowdim.reduce(mf.init.gaussian(4, d, seed=1))
    x = mf.Gaussian(d).sample(20_000, np.random.default_rng(4))
    difference = ring_predictor(mu, Q, x) - ring_predictor(nu, Q, x)
    assert_mc_close(lowdim.function_distance(mu, nu, backend="numpy") ** 2, difference**2)
    assert lowdim.function_distance(nu, nu, backend="numpy") < 1e-7
