"""Units given by their Gaussian pair kernel K(p, q, q') (relu(z)ⁿ for n = 1, 2, 3 and erf): the kernel against
2·10⁶-sample Monte Carlo, ∂K/∂p against Price's theorem E[σ'(u)σ'(u')] by Monte Carlo, ∂K/∂q against finite
differences, including nearly parallel and antiparallel pairs and zero norms; the field on every backend against
numpy and against finite differences of itself; relu¹ through this path against the ReLU's dual-kernel path; flows
with these units: the risk against Monte Carlo and the energy identity."""

import math

import numpy as np
import pytest
from conftest import assert_mc_close, check_unit_flow, field_on_every_backend

import meanfield as mf
from meanfield.activations import RELU, Erf, ReLUPower
from meanfield.kernels import get_backend

UNITS = {"relu1": ReLUPower(1), "relu2": ReLUPower(2), "relu3": ReLUPower(3), "erf": Erf()}
#: (q, q', cosine) of the pairs checked: generic, nearly parallel, nearly antiparallel, orthogonal, unequal scales.
PAIRS = [(1.0, 0.7, 0.3), (0.8, 0.8, 0.999999), (0.5, 1.2, -0.999999), (1.3, 0.4, 0.0), (2.5, 0.05, 0.6)]


def _derivative(unit, z):
    return unit.derivative(z)


@pytest.mark.parametrize("name", list(UNITS))
def test_pair_kernel_against_monte_carlo_and_price(name):
    unit = UNITS[name]
    rng = np.random.default_rng(1)
    g = rng.standard_normal((2, 2_000_000))
    for q, q2, cos in PAIRS:
        p = cos * math.sqrt(q * q2)
        u = math.sqrt(q) * g[0]
        v = math.sqrt(q2) * (cos * g[0] + math.sqrt(1 - cos * cos) * g[1])
        k, dk_dp, _ = unit.pair_kernel(np.array(p), np.array(q), np.array(q2), np)
        assert_mc_close(k, unit(u) * unit(v))
        assert_mc_close(dk_dp, _derivative(unit, u) * _derivative(unit, v))  # Price: ∂_p E[σσ'] = E[σ'σ']


@pytest.mark.parametrize("name", list(UNITS))
def test_pair_kernel_derivatives_against_finite_differences(name):
    """Central differences of K in p and q with step 1e-5 (truncation ~1e-10 relative, round-off ~1e-11); 1e-6
    relative covers both. Pairs away from |cos| = 1, where K is smooth in p."""
    unit = UNITS[name]
    h = 1e-5
    for q, q2, cos in [(1.0, 0.7, 0.3), (1.3, 0.4, 0.0), (2.5, 0.05, 0.6), (0.6, 0.9, -0.8)]:
        p = cos * math.sqrt(q * q2)
        k, dk_dp, dk_dq = unit.pair_kernel(np.array(p), np.array(q), np.array(q2), np)

        def kern(pp, qq, q2=q2):
            return float(unit.pair_kernel(np.array(pp), np.array(qq), np.array(q2), np)[0])

        np.testing.assert_allclose(dk_dp, (kern(p + h, q) - kern(p - h, q)) / (2 * h), rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(dk_dq, (kern(p, q + h) - kern(p, q - h)) / (2 * h), rtol=1e-6, atol=1e-12)


def _cloud(rng, n=40, d=6):
    b = rng.standard_normal((n, d))
    b[1] = 1e-7 * b[0] + b[0]  # nearly parallel to b[0]
    b[2] = -b[0] * 0.7         # antiparallel
    b[3] = 0.0                 # a zero neuron
    return b


@pytest.mark.parametrize("name", ["relu2", "relu3", "erf"])
def test_field_on_every_backend_and_against_finite_differences(name):
    unit = UNITS[name]
    rng = np.random.default_rng(2)
    b, coef = _cloud(rng), rng.standard_normal(40) / 40
    v, g = field_on_every_backend(b, coef, 0.8, unit)
    # ∇V at b_j with the sources held fixed: central differences of V(b_j + h e_i; sources), error O(h²) where V is
    # smooth; at the zero neuron (j = 3) V of relu(z)ⁿ, n ≥ 2, is O(|b|ⁿ) with a direction-dependent factor, so the
    # difference quotient is O(h) = 1e-6 while the gradient is 0.
    h = 1e-6
    sources = b.copy()
    for j in (0, 3, 5):
        for i in range(6):
            step = np.zeros(6)
            step[i] = h
            plus = get_backend("numpy").field((b[j] + step)[None], sources, coef, 0.8, unit, grad=False)[0][0]
            minus = get_backend("numpy").field((b[j] - step)[None], sources, coef, 0.8, unit, grad=False)[0][0]
            np.testing.assert_allclose(g[j, i], (plus - minus) / (2 * h), rtol=1e-6, atol=1e-6 if j == 3 else 1e-9)


def test_relu_through_the_pair_kernel_equals_the_dual_kernel_path():
    rng = np.random.default_rng(3)
    b = rng.standard_normal((50, 7))
    coef = rng.standard_normal(50) / 50
    v1, g1 = get_backend("numpy").field(b, b, coef, 1.3, ReLUPower(1))
    v2, g2 = get_backend("numpy").field(b, b, coef, 1.3, RELU)
    np.testing.assert_allclose(v1, v2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g1, g2, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("name, h, t_max", [("relu2", 0.005, 1.0), ("relu3", 0.0005, 0.1), ("erf", 0.005, 1.0)])
def test_flows_with_pair_kernel_units(name, h, t_max):
    """A teacher and a student of the same unit in d = 5 (Gaussian inputs, variance 0.5): the exact risk against
    Monte Carlo at the start, and the energy identity dF/dt = −∫(ψ² + a²|∇ψ|²)dμ along an RK4 run (central
    differences, error h²F‴/6: relu³'s risk moves fastest — 2e-3 relative at h = 0.005 — so its h is 10x smaller)."""
    unit = UNITS[name]
    rng = np.random.default_rng(4)
    U = rng.standard_normal((2, 5)) / math.sqrt(5)
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.6], U, activation=unit), mf.Gaussian(5, variance=0.5),
                         activation=unit)
    traj = check_unit_flow(problem, mf.init.sign_sphere(24, 5, seed=5), h=h, t_max=t_max, seed=6)
    assert traj.risk[-1] < traj.risk[0]


def test_what_is_not_available_is_one_line():
    U = np.eye(4)[:2]
    with pytest.raises(ValueError, match="mixed kernel is computed for Gaussian inputs only"):
        mf.Problem(mf.TeacherNetwork([1.0, 1.0], U, activation="relu2"), mf.Sphere(4), activation="relu3")
    with pytest.raises(ValueError, match="not positively homogeneous.*use Gaussian inputs"):
        mf.Problem(mf.TeacherNetwork([1.0, 1.0], U, activation=Erf()), mf.Sphere(4), activation=Erf())
    with pytest.raises(ValueError, match="no correlation with"):
        mf.Problem(mf.CubicTarget(np.ones(4)), mf.Gaussian(4), activation=Erf())
    with pytest.raises(ValueError, match="step unit"):
        ReLUPower(0)


@pytest.mark.parametrize("power", [2, 3])
def test_homogeneous_units_on_the_sphere(power):
    """x uniform on S^{d−1}: the kernel is the Gaussian one divided by E|g|^{2n}, and E[f* x] of a teacher the Gaussian
    one divided by E|g|^{n+1}. Against 2·10⁶ sphere samples: the field at a neuron, the risk of a measure (teacher of
    the same unit) and the teacher's linear moment."""
    unit, d = ReLUPower(power), 6
    sphere = mf.Sphere(d)
    rng = np.random.default_rng(7)
    U = rng.standard_normal((2, d))
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.7], U, activation=unit), sphere, activation=unit)
    mu = mf.init.sign_sphere(5, d, seed=8)
    x = sphere.sample(2_000_000, 9)
    coef = mu.weights * mu.a
    v, _ = get_backend("numpy").field(mu.b[:1], mu.b, coef, problem.scale, unit)
    assert_mc_close(v[0], unit(x @ mu.b[0]) * (unit(x @ mu.b.T) @ coef))
    assert_mc_close(problem.risk(mu), 0.5 * (problem.predict(mu, x) - problem.target(x)) ** 2)
    assert_mc_close(problem.target.linear_moment(sphere), problem.target(x)[:, None] * x)
