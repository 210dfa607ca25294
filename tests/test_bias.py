"""Neurons with biases: the bivariate normal distribution function against quadrature, the
biased kernels and their gradients against Monte Carlo and finite differences, every backend against numpy, the
energy identity along biased flows, SGD and files with biases, and the errors."""

import math
import zlib

import numpy as np
import pytest
import scipy.special as sp
from conftest import MC_SAMPLES, assert_mc_close, check_unit_flow, field_on_every_backend
from scipy.integrate import quad

import meanfield as mf
from meanfield.activations import RELU, Erf, Tanh
from meanfield.bivariate import bivariate_normal_cdf
from meanfield.kernels import get_backend
from meanfield.measure import BiasedMeasure

NUMPY = get_backend("numpy")


def _cdf_by_quadrature(h, k, rho):
    """Sheppard's formula Φ₂ = Φ(h)Φ(k) + (1/2π) ∫_0^{asin ρ} exp(−(h² + k² − 2hk sin θ)/(2cos²θ)) dθ, by adaptive
    quadrature (a bounded, smooth integrand: an independent route to Genz's)."""
    def integrand(theta):
        cos2 = math.cos(theta) ** 2
        return math.exp(-(h * h + k * k - 2 * h * k * math.sin(theta)) / (2 * cos2)) if cos2 > 0 else 0.0

    integral = quad(integrand, 0.0, math.asin(rho), epsabs=1e-15, epsrel=1e-13, limit=400)[0]
    return sp.ndtr(h) * sp.ndtr(k) + integral / (2 * math.pi)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_bivariate_normal_cdf_against_quadrature(backend):
    nx = get_backend(backend)
    cases = [(h, k, rho) for h in (-3.0, -0.7, 0.0, 0.4, 2.5) for k in (-2.0, 0.0, 1.3)
             for rho in (-0.999999, -0.6, 0.0, 0.3, 0.99999999)]
    h, k, rho = (np.array(v) for v in zip(*cases))
    got = nx.to_numpy(bivariate_normal_cdf(nx.asarray(h), nx.asarray(k), nx.asarray(rho), nx))
    expected = [_cdf_by_quadrature(*case) for case in cases]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13)  # adaptive quadrature: ~1e-15 absolute
    # ρ = ±1 exactly: the limits Φ(min(h, k)) and (Φ(h) + Φ(k) − 1)⁺.
    edge = nx.to_numpy(bivariate_normal_cdf(nx.asarray(np.array([0.3, 0.3])), nx.asarray(np.array([0.8, -0.2])),
                                            nx.asarray(np.array([1.0, -1.0])), nx))
    np.testing.assert_allclose(edge, [sp.ndtr(0.3), sp.ndtr(0.3) + sp.ndtr(-0.2) - 1.0], rtol=1e-15)


# (p, q, q', c, c'): generic; nearly parallel and antiparallel; a zero-norm side (constant unit); large biases.
CASES = {
    "generic": (0.3, 1.0, 0.5, 0.2, -0.4),
    "parallel": (0.5 * (1 - 1e-12), 1.0, 0.25, 0.3, 0.1),
    "antiparallel": (-0.5 * (1 - 1e-12), 1.0, 0.25, 0.3, 0.1),
    "zero_norm": (0.0, 0.0, 0.8, 0.6, -0.2),
    "large_bias": (0.2, 0.4, 0.6, 3.5, -2.5),
}


def _pairs(p, q, q2, c, c2, n, seed):
    """Samples of (u, u') with means (c, c'), variances (q, q') and covariance p."""
    rng = np.random.default_rng(seed)
    g1, g2 = rng.standard_normal((2, n))
    s1, s2 = math.sqrt(q), math.sqrt(q2)
    rho = p / (s1 * s2) if s1 * s2 > 0 else 0.0
    return s1 * g1 + c, s2 * (rho * g1 + math.sqrt(max(0.0, 1 - rho * rho)) * g2) + c2


@pytest.mark.parametrize("unit", [RELU, Tanh(), Erf()], ids=["relu", "tanh", "erf"])
@pytest.mark.parametrize("case", list(CASES))
def test_shifted_kernel_and_gradient_against_monte_carlo_and_differences(unit, case):
    p, q, q2, c, c2 = CASES[case]

    def kernel(*args):
        return [float(np.ravel(v)[0]) for v in unit.shifted_pair_kernel(*(np.array([[x]]) for x in args), NUMPY)]

    k, dk_dp, dk_dq, dk_dc = kernel(p, q, q2, c, c2)
    u, v = _pairs(p, q, q2, c, c2, MC_SAMPLES, seed=zlib.crc32(case.encode()))  # the same seed in every process
    # K = E σ(u)σ(u'), ∂_pK = E σ'(u)σ'(u') (Price), ∂_cK = E σ'(u)σ(u'): each against 2·10⁶ samples.
    assert_mc_close(k, unit(u) * unit(v))
    assert_mc_close(dk_dp, unit.derivative(u) * unit.derivative(v))
    assert_mc_close(dk_dc, unit.derivative(u) * unit(v))
    # Central differences (step 1e-6: truncation ~1e-12, round-off ~1e-10); q and p are moved where they stay valid.
    eps = 1e-6
    for index, exact in ((0, dk_dp), (1, dk_dq), (3, dk_dc)):
        if case in ("parallel", "antiparallel") and index in (0, 1):
            continue  # |ρ| = 1 − 1e-12: a step of 1e-6 in p or q leaves the set of covariance matrices
        if case == "zero_norm" and index in (0, 1):
            continue  # q = 0 is the boundary (p must stay 0 there); ∂_qK multiplies b = 0 there
        up, down = list(CASES[case]), list(CASES[case])
        up[index] += eps
        down[index] -= eps
        difference = (kernel(*up)[0] - kernel(*down)[0]) / (2 * eps)
        assert abs(difference - exact) <= 1e-7 * max(1.0, abs(exact)), (index, difference, exact)


@pytest.mark.parametrize("unit", [RELU, Tanh()], ids=["relu", "tanh"])
def test_biased_field_on_every_backend_and_against_finite_differences(unit):
    rng = np.random.default_rng(3)
    m, d = 40, 4
    # Tanh's Hermite series at tol 1e-10 needs √κ|b| below ~1.2 (its poles at ±iπ/2): norms of about 0.5 here.
    b = np.column_stack([0.25 * rng.standard_normal((m, d)), rng.standard_normal(m)])
    b[0, :d] = 0.0            # a neuron with b = 0 (a constant unit)
    b[1] = b[2]               # two identical neurons
    b[3, :d] = -b[4, :d]      # an antiparallel pair
    coef = rng.standard_normal(m) / m
    field_on_every_backend(b, coef, 0.8, unit, bias=True)
    # The gradient at points (a zero neuron, generic ones) from the other sources, by central differences in b and c
    # (step 1e-6: error ~1e-10 for these smooth functions of the point).
    sources, points = b[3:], b[:3].copy()
    points[1, :d] = 0.3
    _, grad = NUMPY.field(points, sources, coef[3:], 0.8, unit, bias=True)
    eps = 1e-6
    for j in range(3):
        for i in range(d + 1):
            up, down = points[j:j + 1].copy(), points[j:j + 1].copy()
            up[0, i] += eps
            down[0, i] -= eps
            fd = (NUMPY.field(up, sources, coef[3:], 0.8, unit, bias=True)[0][0]
                  - NUMPY.field(down, sources, coef[3:], 0.8, unit, bias=True)[0][0]) / (2 * eps)
            assert abs(fd - grad[j, i]) <= 1e-8, (j, i, fd, grad[j, i])


@pytest.fixture(scope="module")
def biased_teacher():
    rng = np.random.default_rng(7)
    U = rng.standard_normal((2, 4))
    return U / np.linalg.norm(U, axis=1, keepdims=True), np.array([0.4, -0.6])


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_biased_flow_risk_against_monte_carlo_and_energy_identity(biased_teacher, activation):
    U, beta = biased_teacher
    scale = 1.0 if activation == "relu" else 0.6  # GELU's Hermite series at tol 1e-10 needs √κ|b| below ~1.5
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.8], scale * U, activation=activation, bias=beta),
                         mf.Gaussian(4), activation=activation, bias=True)
    mu0 = mf.init.gaussian(12, 4, seed=2, b_std=0.3, bias_std=0.5)
    # h = 0.005: the central difference of the risk errs by h²F'''/6, 1e-4 relative at h = 0.01 here (measured: it
    # falls 4x per halving of h, as it should).
    traj = check_unit_flow(problem, mu0, h=0.005, t_max=0.1, seed=11)
    assert isinstance(traj.final, BiasedMeasure) and not np.allclose(traj.final.c, mu0.c)


def test_risk_gradient_in_the_biases_against_finite_differences(biased_teacher):
    """∂F/∂c_j = w_j a_j ∂_cψ(b_j, c_j): the flow's velocity in c against differences of the exact risk."""
    U, beta = biased_teacher
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.8], U, bias=beta), mf.Gaussian(4), bias=True)
    mu = mf.init.gaussian(6, 4, seed=5, bias_std=0.7)
    _, velocity = problem.velocity(mu)
    eps = 1e-6
    for j in range(mu.m):
        up, down = mu.c.copy(), mu.c.copy()
        up[j] += eps
        down[j] -= eps
        fd = (problem.risk(BiasedMeasure(mu.a, mu.b, up)) - problem.risk(BiasedMeasure(mu.a, mu.b, down))) / (2 * eps)
        assert abs(fd + mu.weights[j] * velocity[j, -1]) <= 1e-9


def test_unbiased_student_learns_biased_teacher_exactly(biased_teacher):
    """A student without biases against a teacher with them: the shifted kernel with c = 0, against Monte Carlo."""
    U, beta = biased_teacher
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.8], U, bias=beta), mf.Gaussian(4))
    mu = mf.init.gaussian(8, 4, seed=1)
    x = problem.inputs.sample(MC_SAMPLES, 4)
    assert_mc_close(problem.risk(mu), 0.5 * (problem.predict(mu, x) - problem.target(x)) ** 2)
    np.testing.assert_allclose(problem.risk(mu, backend="torch"), problem.risk(mu), rtol=1e-12)


def test_sgd_and_files_carry_biases_and_resume_bit_identically(tmp_path, biased_teacher):
    U, beta = biased_teacher
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.8], U, bias=beta), mf.Gaussian(4), bias=True)
    mu0 = mf.init.gaussian(32, 4, seed=3, bias_std=0.5)
    whole = mf.sgd.train(problem, mu0, t_max=1.0, eta=0.05, batch_size=128, save_every=5)
    assert isinstance(whole.final, BiasedMeasure) and not np.allclose(whole.final.c, mu0.c)
    path = tmp_path / "sgd.h5"
    mf.sgd.train(problem, mu0, t_max=0.5, eta=0.05, batch_size=128, save_every=5, path=path)
    resumed = mf.sgd.train(problem, mu0, t_max=1.0, eta=0.05, batch_size=128, save_every=5, path=path, resume=True)
    assert np.array_equal(resumed.final.state(), whole.final.state())
    flow_path = tmp_path / "flow.h5"
    flow = mf.simulate(problem, mu0, t_max=0.5, dt=0.05, path=flow_path)
    loaded = mf.load(flow_path)
    assert isinstance(loaded.measure(1), BiasedMeasure) and loaded.b.shape[-1] == 5  # rows [b | c]
    np.testing.assert_array_equal(loaded.final.c, flow.final.c)
    # The network of the final particles has the flow's risk on fresh inputs, biases included.
    x = problem.inputs.sample(MC_SAMPLES, 9)
    assert_mc_close(flow.risk[-1], 0.5 * (loaded.final.predict(x) - problem.target(x)) ** 2)


def test_bad_input_with_biases(biased_teacher):
    U, beta = biased_teacher
    teacher = mf.TeacherNetwork([1.0, -0.8], U)
    with pytest.raises(ValueError, match="biases need Gaussian inputs"):
        mf.Problem(teacher, mf.Sphere(4), bias=True)
    with pytest.raises(ValueError, match="no kernel for biased neurons"):
        mf.Problem(mf.TeacherNetwork([1.0], U[:1], activation="relu2"), mf.Gaussian(4), activation="relu2", bias=True)
    with pytest.raises(ValueError, match="cannot carry biases"):
        mf.TeacherNetwork([1.0], U[:1], activation="relu3", bias=[0.1])
    with pytest.raises(ValueError, match="teacher with biases needs Gaussian inputs"):
        mf.Problem(mf.TeacherNetwork([1.0], U[:1], bias=[0.1]), mf.Sphere(4))
    with pytest.raises(ValueError, match="has no correlation with biased neurons"):
        mf.Problem(mf.LinearTarget(np.ones(4)), mf.Gaussian(4), bias=True)
    biased = mf.Problem(teacher, mf.Gaussian(4), bias=True)
    with pytest.raises(ValueError, match="the problem has biases but the measure has no biases"):
        biased.risk(mf.init.gaussian(4, 4, seed=0))
    with pytest.raises(ValueError, match="the problem has no biases but the measure has biases"):
        mf.Problem(teacher, mf.Gaussian(4)).risk(mf.init.gaussian(4, 4, seed=0, bias_std=1.0))
    with pytest.raises(ValueError, match="sign-flip symmetry"):
        mf.reduced.OddReducedProblem(biased)
    with pytest.raises(ValueError, match="cannot wrap a problem with biases"):
        mf.symmetry.SymmetricProblem(biased, mf.symmetry.sign_flip(4))
    with pytest.raises(ValueError, match="do not have"):
        mf.init.paired(4, 4, seed=0, bias_std=0.5)


def test_detection_reports_that_a_bias_breaks_the_sign_flip():
    """An odd ReLU teacher relu(⟨u, x⟩) − relu(−⟨u, x⟩) = ⟨u, x⟩ has −I with parity −1; biases (β, −β) break it."""
    u = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    odd = mf.TeacherNetwork([1.0, -1.0], u)
    biased = mf.TeacherNetwork([1.0, -1.0], u, bias=[0.5, -0.5])
    flip = mf.symmetry.sign_flip(3)
    [report] = mf.symmetry.detect_symmetries(odd, mf.Gaussian(3), [flip])
    assert report.holds and report.parity == -1
    [report] = mf.symmetry.detect_symmetries(biased, mf.Gaussian(3), [flip])
    assert not report.holds and report.relative_error > 0.1


def test_distances_and_symmetry_maps_keep_biases():
    """‖f(μ) − f(ν)‖ for biased neurons against Monte Carlo; a symmetry moves b and keeps c, so a biased measure made
    invariant under a reflection has zero asymmetry while the measure it came from does not."""
    inputs = mf.Gaussian(3)
    mu = mf.init.gaussian(6, 3, seed=1, bias_std=0.8)
    nu = mf.init.gaussian(5, 3, seed=2)
    x = inputs.sample(MC_SAMPLES, 3)
    distance = mf.compare.function_distance(mu, nu, inputs)
    assert_mc_close(distance**2, (mu.predict(x) - nu.predict(x)) ** 2)
    with pytest.raises(ValueError, match="biases need Gaussian inputs"):
        mf.compare.function_distance(mu, nu, mf.Sphere(3))
    flip = mf.symmetry.coordinate_reflection(3, 0)
    image = flip.apply_measure(mu)
    assert isinstance(image, BiasedMeasure) and np.array_equal(image.c, mu.c)
    np.testing.assert_array_equal(image.b[:, 0], -mu.b[:, 0])
    invariant = BiasedMeasure(np.concatenate([mu.a, image.a]), np.concatenate([mu.b, image.b]),
                              np.concatenate([mu.c, image.c]))
    assert mf.symmetry.asymmetry(invariant, flip, inputs)["relative"] < 1e-7  # the closed form's round-off floor
    assert mf.symmetry.asymmetry(mu, flip, inputs)["relative"] > 1e-2
