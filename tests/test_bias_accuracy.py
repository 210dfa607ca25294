"""Biased ReLU to the last digits: the pair moments E[U⁺V⁺] and their derivatives and Φ₂ against 40-digit references
(mpmath) at every scale, bias and correlation (ρ → ±1 and exactly ±1, self-pairs), on numpy, numba and torch; the
self-energy of single neurons; the invariance of a risk under round-off perturbations; Monte Carlo and finite
differences of whole risks and gradients with nearly parallel neurons; a long biased flow without a spurious rise.

Tolerances. The references are exact to ~30 digits, so the errors measured are the library's. A quantity f is
checked at |f − f_ref| ≤ 1e-13 |f_ref| + 16 ε κ T with ε = 2^-52: T is the sum of the magnitudes of the terms of its
closed form (Φ₂ counted at its Fréchet bound min(Φ(h), Φ(k)), the scale of Genz's absolute error), and
κ = 1 + h² + k² + A² + B² (each capped at 40²) the relative condition number of Φ and φ at those arguments in the
tails (Φ(x) ≈ φ(x)/|x| moves by x² ε under a rounding of x). Where the terms do not cancel (all but the pairs of units
that are both rarely active) this is 1e-13 relative; where they do, it is a few ulps of the terms times the condition
number — what any evaluation of the closed form in fp64 can reach. The test also asserts that at least 90 % of the
grid meets 1e-13 relative outright.
"""

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from conftest import MC_SAMPLES, assert_mc_close

import meanfield as mf
from meanfield.bivariate import bivariate_normal_cdf, pair_correlations, relu_pair_moments
from meanfield.kernels import get_backend
from meanfield.measure import BiasedMeasure

EPS = 2.0**-52
DIGITS = 40


def _ncdf(x):
    return mp.ncdf(x)


def _npdf(x):
    return mp.npdf(x)


def _cdf2(h, k, rho, one_minus):
    """Φ₂(h, k; ρ) = φ(h) ∫_0^∞ e^{hy − y²/2} Φ((k − ρ(h − y))/r) dy (x = h − y in ∫_{−∞}^h φ(x)Φ((k − ρx)/r) dx,
    φ(h) factored out so that tiny probabilities keep their relative digits), by tanh-sinh quadrature with breakpoints
    at the decay scale 1/|h|, the peak y = h and around the step of Φ at y = h − k/ρ (width r/|ρ|)."""
    one_plus = 2 - one_minus
    if one_minus == 0:
        return _ncdf(min(h, k))
    if one_plus == 0:
        return max(mp.mpf(0), _ncdf(h) + _ncdf(k) - 1)
    r = mp.sqrt(one_minus * one_plus)
    scale = 1 / max(1, abs(h))
    points = {mp.mpf(0)} | {scale * j for j in (0.1, 0.3, 1, 3, 10, 30, 100)}
    if h > 0:
        points |= {h + j for j in (-3, -1, 0, 1, 3)}
    if rho != 0:
        step, width = h - k / rho, r / abs(rho)
        points |= {step + j * width for j in (-30, -3, 0, 3, 30)}
    points = sorted(p for p in points if p >= 0)
    return _npdf(h) * mp.quad(lambda y: mp.exp(h * y - y * y / 2) * _ncdf((k - rho * (h - y)) / r),
                              points + [mp.inf])


def _reference(s, s2, c, c2, complement, sign):
    """(K, ∂_pK, ∂_qK, ∂_cK), the scales T of their terms and the condition number κ, at 40 digits, for
    ρ = sign·(1 − complement) exactly."""
    with mp.workdps(DIGITS):
        s, s2, c, c2, t = (mp.mpf(float(v)) for v in (s, s2, c, c2, complement))
        rho, one_minus = (1 - t, t) if sign > 0 else (t - 1, 2 - t)
        h, k = c / s, c2 / s2
        prob = _cdf2(h, k, rho, one_minus)
        r = mp.sqrt(one_minus * (2 - one_minus))
        a_num, b_num = h - rho * k, k - rho * h
        if r > 0:
            cdf_a, cdf_b, pdf_b = _ncdf(a_num / r), _ncdf(b_num / r), _npdf(b_num / r)
        else:  # ρ = ±1: the limits of Φ(A), Φ(B) (½ at 0/0, the symmetric choice) and r φ(B) → 0
            cdf_a, cdf_b = ((mp.sign(x) + 1) / 2 for x in (a_num, b_num))
            pdf_b = mp.mpf(0)
        pdf_h, pdf_k = _npdf(h), _npdf(k)
        value = (c * c2 + rho * s * s2) * prob + c * s2 * pdf_k * cdf_a + c2 * s * pdf_h * cdf_b \
            + s * s2 * r * pdf_h * pdf_b
        d_c = c2 * prob + rho * s2 * pdf_h * cdf_b + s2 * pdf_k * cdf_a
        d_q = pdf_h / (2 * s) * (s2 * b_num * cdf_b + s2 * r * pdf_b)
        frechet = min(_ncdf(h), _ncdf(k))
        terms = (abs(c * c2 + rho * s * s2) * frechet + abs(c) * s2 * pdf_k * cdf_a + abs(c2) * s * pdf_h * cdf_b
                 + s * s2 * r * pdf_h * pdf_b,
                 frechet,
                 pdf_h / (2 * s) * (s2 * abs(b_num) * cdf_b + s2 * r * pdf_b),
                 abs(c2) * frechet + abs(rho) * s2 * pdf_h * cdf_b + s2 * pdf_k * cdf_a)
        capped = [min(abs(x), 40) ** 2 for x in (h, k) + ((a_num / r, b_num / r) if r > 0 else ())]
        return [float(v) for v in (value, prob, d_q, d_c)], [float(v) for v in terms], 1.0 + float(sum(capped))


#: Absolute floor, relative to the pair's scale (|c| + s)(|c'| + s') (with 1/s for ∂_qK): Sheppard's integral by
#: 20-point Gauss–Legendre keeps ~1e-15 of the Fréchet bound min(Φ(h), Φ(k)) while max(|h|, |k|) ≤ 8, and loses
#: relative digits beyond (measured: 3e-10 of it at 12, 3e-6 at 20), where that bound is below Φ(−10) ≈ 8e-24; the
#: error stays below 1e-30 of the pair's scale, 14 orders under the round-off of any risk these pairs enter.
FAR_TAIL = 1e-30


def _pair_scale(s, s2, c, c2):
    """(|c| + s)(|c'| + s') for K, 1 for ∂_pK, (|c'| + s')/s for ∂_qK, |c'| + s' for ∂_cK (columns)."""
    other = np.abs(c2) + s2
    return np.column_stack([(np.abs(c) + s) * other, np.ones_like(s), other / s, other])


SCALES = (0.1, 1.0, 3.0, 10.0, 30.0)
#: 1 − |ρ|: exactly ±1, one ulp of 1 (2^-53 is half an ulp below 1, where ρ = 1 − 2^-53 is representable), 1e-15 …,
#: Genz's switch at |ρ| = 0.925, ρ = 0.
COMPLEMENTS = (0.0, 2.0**-53, 1e-15, 1e-14, 1e-12, 1e-8, 1e-4, 0.075, 0.3, 1.0)


@pytest.fixture(scope="module")
def grid():
    """~100 pairs: every complement at both signs with random scales in SCALES and biases |c| ≤ 10, self-pairs
    (the same (s, c) on both sides) at ρ = 1 and just below, and random log-uniform complements; with their
    references."""
    rng = np.random.default_rng(2026)
    rows = []
    for t in COMPLEMENTS:
        for sign in (1, -1):
            for _ in range(3):
                rows.append((rng.choice(SCALES), rng.choice(SCALES), *rng.uniform(-10, 10, 2), t, sign))
    for t in (0.0, 2.0**-53, 1e-15, 1e-13):
        for _ in range(3):
            s, c = rng.choice(SCALES), rng.uniform(-10, 10)
            rows.append((s, s, c, c, t, 1))
    for _ in range(30):
        rows.append((rng.choice(SCALES), rng.choice(SCALES), *rng.uniform(-10, 10, 2), 10 ** rng.uniform(-16, 0),
                     rng.choice([-1, 1])))
    inputs = np.array(rows, dtype=float)
    refs = [_reference(*row) for row in rows]
    values = np.array([r[0] for r in refs])
    terms = np.array([r[1] for r in refs])
    cond = np.array([r[2] for r in refs])
    return inputs, values, terms, cond


def _correlation_inputs(inputs):
    """(ρ, 1 − ρ, 1 + ρ) as a caller holds them: the complement that vanishes exact, the others rounded."""
    t, sign = inputs[:, 4], inputs[:, 5]
    rho = np.where(sign > 0, 1.0 - t, t - 1.0)
    return rho, np.where(sign > 0, t, 2.0 - t), np.where(sign > 0, 2.0 - t, t)


def _moments_on(backend, inputs):
    s, s2, c, c2 = inputs[:, :4].T
    rho, one_minus, one_plus = _correlation_inputs(inputs)
    if backend == "numba":  # the fused kernel's own passes (vectorised Sheppard sums)
        from meanfield.kernels.numba_backend import pair_moments_block

        return pair_moments_block(s, s2, c, c2, rho, one_minus, one_plus)
    if backend == "numba-scalar":  # the scalar form (Φ₂ by libm's exp and sin)
        from meanfield.kernels.numba_backend import _relu_pair_moments

        return np.array([_relu_pair_moments(*args) for args in zip(s, s2, c, c2, rho, one_minus, one_plus)])
    nx = get_backend(backend)
    out = relu_pair_moments(*(nx.asarray(v) for v in (s, s2, c, c2, rho, one_minus, one_plus)), nx)
    return np.column_stack([nx.to_numpy(v) for v in out])


@pytest.mark.parametrize("backend", ["numpy", "numba", "numba-scalar", "torch"])
def test_pair_moments_and_derivatives_against_40_digits(grid, backend):
    inputs, values, terms, cond = grid
    got = _moments_on(backend, inputs)
    error = np.abs(got - values)
    s, s2, c, c2 = inputs[:, :4].T
    allowed = 1e-13 * np.abs(values) + 16 * EPS * cond[:, None] * terms + FAR_TAIL * _pair_scale(s, s2, c, c2)
    worst = np.unravel_index(np.argmax(error / allowed), error.shape)
    assert np.all(error <= allowed), (backend, ["K", "dK/dp", "dK/dq", "dK/dc"][worst[1]], inputs[worst[0]],
                                      got[worst], values[worst])
    relative = error / np.maximum(np.abs(values), 1e-300)
    assert np.mean(relative <= 1e-13) >= 0.9, np.mean(relative <= 1e-13, axis=0)
    # self-pairs and |ρ| within 1e-12 of 1 with pairs whose terms do not cancel: 1e-13 relative outright
    near = (inputs[:, 4] <= 1e-12) & np.all(terms <= 10 * np.abs(values) + 1e-300, axis=1)
    assert near.sum() >= 20 and np.all(relative[near] <= 1e-13)


@pytest.fixture(scope="module")
def cdf_grid():
    """40 points h, k ∈ [−12, 12], 1 − |ρ| from 1e-16 to 1 (both signs, and ±1 exactly), with Φ₂ and the Fréchet
    bound min(Φ(h), Φ(k)) at 40 digits."""
    rng = np.random.default_rng(5)
    n = 40
    h, k = rng.uniform(-12, 12, (2, n))
    t = np.concatenate([[0.0, 0.0, 2.0**-53, 2.0**-53], 10 ** rng.uniform(-16, 0, n - 4)])
    sign = np.where(np.arange(n) % 2, 1.0, -1.0)
    with mp.workdps(DIGITS):
        ref, frechet = [], []
        for hi, ki, ti, si in zip(h, k, t, sign):
            hi, ki, ti = mp.mpf(hi), mp.mpf(ki), mp.mpf(ti)
            ref.append(float(_cdf2(hi, ki, 1 - ti if si > 0 else ti - 1, ti if si > 0 else 2 - ti)))
            frechet.append(float(min(mp.ncdf(hi), mp.ncdf(ki))))
    return h, k, t, sign, np.array(ref), np.array(frechet)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_bivariate_normal_cdf_near_plus_minus_one_against_40_digits(cdf_grid, backend):
    """Φ₂ at 1e-13 relative plus 16 ε κ min(Φ(h), Φ(k)): its absolute error at the scale of its Fréchet bound, times
    the tails' condition number."""
    h, k, t, sign, ref, frechet = cdf_grid
    rho = np.where(sign > 0, 1.0 - t, t - 1.0)
    one_minus, one_plus = np.where(sign > 0, t, 2.0 - t), np.where(sign > 0, 2.0 - t, t)
    if backend == "numba":  # the scalar form, and the fused kernel's passes (P of unit-variance pairs at means h, k)
        from meanfield.kernels.numba_backend import pair_moments_block, upper_orthant

        ones = np.ones_like(h)
        results = [upper_orthant(-h, -k, rho, one_minus, one_plus),
                   pair_moments_block(ones, ones, h, k, rho, one_minus, one_plus)[:, 1]]
    else:
        nx = get_backend(backend)
        results = [nx.to_numpy(bivariate_normal_cdf(*(nx.asarray(v) for v in (h, k, rho)), nx,
                                                    nx.asarray(one_minus), nx.asarray(one_plus)))]
    cond = 1 + np.minimum(np.abs(h), 40) ** 2 + np.minimum(np.abs(k), 40) ** 2
    for got in results:
        np.testing.assert_array_less(np.abs(got - ref), 1e-13 * np.abs(ref) + 16 * EPS * cond * frechet + 1e-300)


def test_pair_correlations_exact_for_self_pairs_and_accurate_for_small_angles():
    """ρ = 1 exactly for a row with itself; the vanishing complement to 1e-13 relative at angles of ~1e-9 (40-digit
    reference from the float rows: |u − u′|²/2 = (1 − cos θ)(1 + O(ε)) + (|u| − |u′|)²/2, and the last term is
    ~1e-32), where 1 − ⟨u, u′⟩ has no correct digit."""
    nx = get_backend("numpy")
    rng = np.random.default_rng(1)
    u = rng.standard_normal((6, 5))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = u + 1e-9 * rng.standard_normal((6, 5))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    rho, one_minus, one_plus = pair_correlations(u, np.vstack([u, v, -v]), nx)
    assert np.all(np.diag(rho[:, :6]) == 1.0) and np.all(np.diag(one_minus[:, :6]) == 0.0)
    with mp.workdps(DIGITS):
        for i in range(6):
            ui, vi = [mp.mpf(float(x)) for x in u[i]], [mp.mpf(float(x)) for x in v[i]]
            cosine = mp.fsum(a * b for a, b in zip(ui, vi)) / mp.sqrt(mp.fsum(a * a for a in ui)
                                                                      * mp.fsum(b * b for b in vi))
            exact = float(1 - cosine)
            assert abs(one_minus[i, 6 + i] - exact) <= 1e-13 * exact
            assert abs(one_plus[i, 12 + i] - exact) <= 1e-13 * exact and rho[i, 12 + i] == exact - 1.0
            naive = 1.0 - float(u[i] @ v[i])
            assert abs(naive - exact) > 1e-3 * exact  # the Gram matrix's complement is wrong in its leading digits


BACKENDS = ("numpy", "numba", "torch")


def _field(backend, points, sources, coef, scale):
    bk = get_backend(backend)
    p = bk.asarray(points)
    s = p if sources is points else bk.asarray(sources)
    value, grad = bk.field(p, s, bk.asarray(coef), scale, "relu", bias=True)
    return bk.to_numpy(value), bk.to_numpy(grad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_self_energy_of_single_neurons_against_40_digits(backend):
    """K((b, c), (b, c)) = E[(sg + c)⁺²] = (s² + c²)Φ(h) + csφ(h), ∇_b = κΦ(h) b (∂_qK = ½E[δ(U)U⁺] = 0 at a
    self-pair) and ∂_c = cΦ(h) + sφ(h), s = √κ|b|, h = c/s: one-dimensional closed forms at 40 digits. The
    tolerance: 1e-13 relative plus 16 ε (1 + h²) times the magnitudes of the terms (they cancel for h ≪ 0).
    The Gram-matrix correlation (ρ = 1 − 1 ulp) missed this by up to ~1e-8."""
    rng = np.random.default_rng(11)
    scale = 0.8
    for _ in range(40):
        b = rng.standard_normal(5)
        b *= rng.choice(SCALES) / (math.sqrt(scale) * np.linalg.norm(b))
        c = rng.uniform(-4.0, 10.0)
        neuron = np.append(b, c)[None, :]
        value, grad = _field(backend, neuron, neuron, np.ones(1), scale)
        with mp.workdps(DIGITS):
            s = mp.sqrt(mp.mpf(scale) * mp.fsum(mp.mpf(float(x)) ** 2 for x in b))
            h = mp.mpf(c) / s
            cdf, pdf = mp.ncdf(h), mp.npdf(h)
            energy, energy_terms = (s * s + c * c) * cdf + c * s * pdf, (s * s + c * c) * cdf + abs(c) * s * pdf
            slope, slope_terms = c * cdf + s * pdf, abs(c) * cdf + s * pdf
            cond = 1 + float(h) ** 2
            expected = [float(energy), *(float(scale * cdf * mp.mpf(float(x))) for x in b), float(slope)]
            allowed = [1e-13 * abs(float(energy)) + 16 * EPS * cond * float(energy_terms),
                       *(1e-13 * abs(v) for v in expected[1:-1]),
                       1e-13 * abs(float(slope)) + 16 * EPS * cond * float(slope_terms)]
        got = [value[0], *grad[0]]
        assert np.all(np.abs(np.subtract(got, expected)) <= allowed), (b, c, np.subtract(got, expected), allowed)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("angle", [0.0, 1e-12, 1e-7, math.pi - 1e-9])
def test_field_of_nearly_parallel_neurons_against_40_digits(backend, angle):
    """One neuron's field from one source at a small angle (or nearly opposite), value and gradient in b and c,
    against the moments at 40 digits with the exact angle of the float vectors; 1e-13 relative to the magnitude of
    the terms (value, |κ∂_pK b'| + |2κ∂_qK b| per component). The source's bias makes h = c/s and k = c'/s' equal,
    where Φ₂ depends on 1 − ρ through √(1 − ρ) (for h ≠ k the dependence is exponentially small)."""
    scale = 1.3
    b = np.array([0.6, -0.2, 0.3])
    axis = np.array([0.1, 0.5, 0.2])
    axis -= (axis @ b) / (b @ b) * b
    b2 = 1.7 * (math.cos(angle) * b / np.linalg.norm(b) + math.sin(angle) * axis / np.linalg.norm(axis))
    c2 = -0.4 * np.linalg.norm(b2) / np.linalg.norm(b) * (1.0 if angle < 1.0 else -1.0)
    point, source = np.append(b, -0.4)[None, :], np.append(b2, c2)[None, :]
    value, grad = _field(backend, point, source, np.ones(1), scale)
    with mp.workdps(DIGITS):
        bm, b2m = [mp.mpf(float(x)) for x in b], [mp.mpf(float(x)) for x in b2]
        n1, n2 = mp.sqrt(mp.fsum(x * x for x in bm)), mp.sqrt(mp.fsum(x * x for x in b2m))
        cosine = mp.fsum(x * y for x, y in zip(bm, b2m)) / (n1 * n2)
        sign = 1 if cosine > 0 else -1
        complement = 1 - abs(cosine)
        root = mp.sqrt(scale)
        (k, dp, dq, dc), terms, _ = _reference(float(root * n1), float(root * n2), -0.4, c2, float(complement), sign)
    expected_grad = scale * (dp * b2 + 2 * dq * b)
    grad_terms = scale * (abs(dp) * np.abs(b2) + 2 * abs(dq) * np.abs(b))
    assert abs(value[0] - k) <= 1e-13 * terms[0]
    assert np.all(np.abs(grad[0, :-1] - expected_grad) <= 1e-13 * grad_terms)
    assert abs(grad[0, -1] - dc) <= 1e-13 * terms[3]


def _biased_problem(d=4):
    U = np.random.default_rng(7).standard_normal((3, d))
    teacher = mf.TeacherNetwork([1.0, -0.8, 0.6], U / np.linalg.norm(U, axis=1, keepdims=True), bias=[0.5, -0.3, 0.2])
    return mf.Problem(teacher, mf.Gaussian(d), bias=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_risk_of_16_neurons_invariant_under_round_off_perturbations(backend):
    """The risk of 16 random biased neurons moves by at most 1e-14 E f*² under relative perturbations of b of 1e-15
    (about the round-off of the state): the self-pairs' ρ = 1 is exact and no complement 1 − ρ is a cancellation
    (with the Gram-matrix ρ it moved by ~5e-12 E f*²)."""
    problem = _biased_problem()
    mu = mf.init.gaussian(16, 4, seed=3, bias_std=1.0)
    reference = problem.risk(mu, backend=backend)
    rng = np.random.default_rng(4)
    moves = []
    for _ in range(6):
        b = mu.b * (1.0 + 1e-15 * rng.standard_normal(mu.b.shape))
        moves.append(abs(problem.risk(BiasedMeasure(mu.a, b, mu.c), backend=backend) - reference))
    assert max(moves) <= 1e-14 * problem.risk_scale, (max(moves), problem.risk_scale)


def _clustered_measure():
    """Eight biased neurons: an exact duplicate pair, a pair at angle 1e-4, an antiparallel pair, a zero b."""
    rng = np.random.default_rng(9)
    b = rng.standard_normal((8, 4)) / 2
    c = rng.uniform(-0.8, 0.8, 8)
    b[1], c[1] = b[0], c[0]
    tangent = rng.standard_normal(4)
    tangent -= (tangent @ b[2]) / (b[2] @ b[2]) * b[2]
    b[3] = 1.3 * (b[2] + 1e-4 * np.linalg.norm(b[2]) * tangent / np.linalg.norm(tangent))
    b[5] = -0.7 * b[4]
    b[6] = 0.0
    return BiasedMeasure(rng.standard_normal(8), b, c)


@pytest.mark.parametrize("backend", BACKENDS)
def test_risk_and_gradients_with_clustered_neurons_against_monte_carlo(backend):
    """The risk and the first variation's gradient (∇_b ψ = E[(f − f*) σ'(b·x + c) x], ∂_c ψ = E[(f − f*) σ'])
    against 2·10⁶ Monte Carlo samples (5 SE, fixed seed), at neurons that are duplicated, nearly parallel,
    antiparallel or zero."""
    problem = _biased_problem()
    mu = _clustered_measure()
    ev = problem.evaluate(mu, backend=backend)
    x = problem.inputs.sample(MC_SAMPLES, 21)
    residual = problem.predict(mu, x) - problem.target(x)
    assert_mc_close(ev.risk, 0.5 * residual**2)
    z = x @ mu.b.T + mu.c
    slopes = np.where(z > 0, 1.0, np.where(z < 0, 0.0, 0.5))
    for j in range(mu.m):
        weight = residual * slopes[:, j]
        assert_mc_close(ev.grad_psi[j], np.column_stack([weight[:, None] * x, weight]))


def test_risk_gradient_near_parallel_neurons_against_finite_differences():
    """∂F/∂b_j = w_j a_j ∇_b ψ(b_j) against central differences of the exact risk, at the neurons of a pair 1e-4
    apart in angle and of an antiparallel pair (step 1e-7: truncation ~h² F''' ≲ 1e-11 with F''' ~ 1/θ, round-off
    ~ε F/h ≈ 1e-9; tolerance 1e-8)."""
    problem = _biased_problem()
    mu = _clustered_measure()
    psi, grad_psi = problem.first_variation(mu, backend="numba")
    eps = 1e-7
    for j in (2, 3, 4, 5):
        for i in range(4):
            up, down = mu.b.copy(), mu.b.copy()
            up[j, i] += eps
            down[j, i] -= eps
            fd = (problem.risk(BiasedMeasure(mu.a, up, mu.c), backend="numba")
                  - problem.risk(BiasedMeasure(mu.a, down, mu.c), backend="numba")) / (2 * eps)
            assert abs(fd - mu.weights[j] * mu.a[j] * grad_psi[j, i]) <= 1e-8, (j, i, fd)


def test_biased_flow_risk_never_rises():
    """A biased ReLU teacher–student flow (m = 16, d = 4, Heun) run until its risk is near round-off raises no
    RiskIncreaseWarning (the long version, to t = 3000: experiments/biased_relu_long_flow.py)."""
    from meanfield.flow import RiskIncreaseWarning

    problem = _biased_problem()
    mu0 = mf.init.gaussian(16, 4, seed=1, bias_std=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RiskIncreaseWarning)
        traj = mf.simulate(problem, mu0, t_max=200.0, dt=0.2, solver="heun", save_every=100, backend="numba")
    assert traj.risk[-1] < 1e-3 * traj.risk[0]
