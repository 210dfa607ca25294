"""Any smooth unit through the Hermite (Mehler) expansion of its pair kernel: against the closed-form erf kernel (a
second, independent formula), against 2·10⁶-sample Monte Carlo for GELU, tanh, sigmoid, SiLU and softplus (the
kernel, and ∂K/∂p through Price's theorem), ∂K/∂q against finite differences, the order chosen from the tolerance
(geometric convergence for smooth units, slow at a kink), a flow's energy identity, and the errors."""

import math

import numpy as np
import pytest
from conftest import assert_mc_close, check_unit_flow, field_on_every_backend
from scipy.special import erf

import meanfield as mf
from meanfield.activations import GELU, Erf, HermiteActivation, Sigmoid, SiLU, Softplus, Tanh


def _erf_by_hermite(tol=1e-10):
    return HermiteActivation(erf, lambda z: 2 / math.sqrt(math.pi) * np.exp(-z * z),
                             lambda z: -4 * z / math.sqrt(math.pi) * np.exp(-z * z), None, "erf_by_hermite", tol)


#: (q, q', cosine): generic, nearly parallel, nearly antiparallel, unequal scales, a zero neuron.
PAIRS = [(1.0, 0.7, 0.3), (0.8, 0.8, 0.999999), (0.5, 1.2, -0.999999), (1.5, 0.05, 0.6), (0.0, 0.9, 0.0)]


def _kernel(unit, q, q2, cos):
    p = cos * math.sqrt(q * q2)
    return [float(v[0, 0]) for v in unit.pair_kernel(np.array([[p]]), np.array([[q]]), np.array([[q2]]), np)]


def test_hermite_erf_equals_the_closed_form():
    """Within the stated bound: the truncation error is at most tol · √(E σ(u)² E σ(u')²) (Cauchy–Schwarz), and the
    same for σ' and σ''; every second moment here is below 1, so tol itself bounds the absolute errors."""
    unit = _erf_by_hermite()
    for q, q2, cos in PAIRS:
        got, exact = _kernel(unit, q, q2, cos), _kernel(Erf(), q, q2, cos)
        np.testing.assert_allclose(got, exact, rtol=0, atol=2e-10)
        assert unit.last_error <= 1e-10


@pytest.mark.parametrize("factory", [GELU, Tanh, Sigmoid, SiLU, Softplus])
def test_ready_units_against_monte_carlo_and_finite_differences(factory):
    unit = factory()
    rng = np.random.default_rng(1)
    g = rng.standard_normal((2, 2_000_000))
    for q, q2, cos in [(1.0, 0.7, 0.3), (0.8, 0.8, 0.999999), (0.5, 1.2, -0.999999), (0.9, 0.3, 0.0)]:
        u = math.sqrt(q) * g[0]
        v = math.sqrt(q2) * (cos * g[0] + math.sqrt(1 - cos * cos) * g[1])
        k, dk_dp, dk_dq = _kernel(unit, q, q2, cos)
        assert_mc_close(k, unit(u) * unit(v))
        assert_mc_close(dk_dp, unit.derivative(u) * unit.derivative(v))  # Price's theorem
        if abs(cos) > 0.99:
            continue  # q ± h at fixed p would leave the positive-definite cone (margin 1 − cos² = 2e-6)
        # ∂K/∂q at fixed p by central differences (step 1e-4: truncation ~1e-8; series truncation 1e-10/1e-4).
        p, h = cos * math.sqrt(q * q2), 1e-4

        def at(qq, p=p, q2=q2):
            return float(unit.pair_kernel(np.array([[p]]), np.array([[qq]]), np.array([[q2]]), np)[0][0, 0])

        np.testing.assert_allclose(dk_dq, (at(q + h) - at(q - h)) / (2 * h), rtol=1e-4, atol=1e-6)


def test_smooth_units_converge_geometrically_and_kinks_slowly():
    """Smooth erf: the order grows linearly in log(1/tol) and its largest tail at order 60 is below 1e-9.
    |z| (a kink at 0): its largest tail at order 150 is still above 1e-6, and no order up to 150 reaches tol = 1e-6
    — the error names what to change."""
    unit = _erf_by_hermite(1e-6)
    _kernel(unit, 1.0, 1.0, 0.5)
    low = unit.last_order
    unit = _erf_by_hermite(1e-12)
    _kernel(unit, 1.0, 1.0, 0.5)
    assert unit.last_order < 2.5 * low
    assert unit.relative_tails([1.0])[0, 60] < 1e-9
    kinked = HermiteActivation(np.abs, np.sign, lambda z: 0.0 * z, None, "abs_by_hermite", tol=1e-6, max_order=150)
    assert kinked.relative_tails([1.0])[0, 150] > 1e-6
    with pytest.raises(ValueError, match="needs more than max_order = 150 terms for tol = 1e-06.*raise max_order"):
        _kernel(kinked, 1.0, 1.0, 0.5)


@pytest.mark.parametrize("name", ["gelu", "tanh", "sigmoid", "silu", "softplus"])
def test_field_on_every_backend_and_a_flow_with_its_energy_identity(name):
    unit = mf.activations.as_activation(name)
    rng = np.random.default_rng(2)
    # Norms up to about 1.1: tanh's series at tol 1e-10 stops converging within 280 terms beyond √κ|b| ≈ 1.45.
    b, coef = 0.7 * rng.standard_normal((30, 5)) / math.sqrt(5), rng.standard_normal(30) / 30
    v, g = field_on_every_backend(b, coef, 0.9, unit)
    U = rng.standard_normal((2, 5)) / math.sqrt(5)
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.5], U, activation=name), mf.Gaussian(5, variance=0.5),
                         activation=name)
    check_unit_flow(problem, mf.init.sign_sphere(16, 5, seed=3), h=0.01, t_max=0.5, seed=4)


def test_bad_tolerance_is_one_line():
    with pytest.raises(ValueError, match="Hermite tolerance must lie in"):
        GELU(tol=0.0)
