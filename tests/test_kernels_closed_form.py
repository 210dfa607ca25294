"""The closed-form kernels against Monte Carlo (2e6 samples) and finite differences."""

import numpy as np
import pytest
from conftest import assert_mc_close, pair_at_angle

from meanfield.kernels import closed_form as cf
from meanfield.kernels import get_backend

ANGLES = [0.0, 1e-7, 0.4, np.pi / 2, 2.2, np.pi - 1e-7, np.pi]


def leaky(z, alpha):
    return np.maximum(z, alpha * z)


@pytest.mark.parametrize("alpha", [0.0, 0.2])
@pytest.mark.parametrize("theta", ANGLES)
def test_kernel_and_gradient_against_monte_carlo(law_and_sample, theta, alpha):
    law, x = law_and_sample
    b1, b2 = pair_at_angle(theta, law.d, np.random.default_rng(1))
    z1, z2 = x @ b1, x @ b2
    k = cf.relu_kernel(b1, b2, law.kernel_scale, alpha)
    assert_mc_close(k, leaky(z1, alpha) * leaky(z2, alpha))
    grad = cf.relu_kernel_grad(b1, b2, law.kernel_scale, alpha)
    slope = np.where(z1 > 0, 1.0, alpha)
    assert_mc_close(grad, (slope * leaky(z2, alpha))[:, None] * x)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("theta", [0.3, 1.2, 2.9])
def test_gradient_against_finite_differences(theta, alpha):
    b1, b2 = pair_at_angle(theta, 6, np.random.default_rng(2))
    h = 1e-6
    fd = np.array([(cf.relu_kernel(b1 + h * e, b2, 0.8, alpha) - cf.relu_kernel(b1 - h * e, b2, 0.8, alpha)) / (2 * h)
                   for e in np.eye(6)])
    # Central differences at h = 1e-6: truncation O(h²|∂³K|) ≈ 1e-12, round-off ≈ 1e-16·|K|/h ≈ 1e-10.
    np.testing.assert_allclose(cf.relu_kernel_grad(b1, b2, 0.8, alpha), fd, rtol=1e-7, atol=1e-9)


def test_diagonal_and_zero_norm_conventions():
    b = np.array([0.3, -1.2, 0.5])
    np.testing.assert_allclose(cf.relu_kernel(b, b, 2.0), 2.0 * b @ b / 2, rtol=1e-15)
    zero = np.zeros(3)
    assert cf.relu_kernel(zero, b) == 0.0 and cf.relu_kernel(b, zero) == 0.0
    # ∇_b K(0, b') = κ b'/4 (σ'(0) = 1/2); ∇_b K(b, 0) = 0.
    np.testing.assert_allclose(cf.relu_kernel_grad(zero, b, 2.0), 2.0 * b / 4, rtol=1e-15)
    np.testing.assert_array_equal(cf.relu_kernel_grad(b, zero), 0.0)


def test_zero_norm_gradient_is_the_mean_of_one_sided_derivatives():
    """At b = 0 the kernel is not differentiable; the convention is the average over ±v directions."""
    b2 = np.array([0.4, 1.0, -0.3])
    rng = np.random.default_rng(3)
    for _ in range(5):
        v = rng.standard_normal(3)
        one_sided = (cf.relu_kernel(1e-8 * v, b2) - cf.relu_kernel(-1e-8 * v, b2)) / 2e-8
        np.testing.assert_allclose(cf.relu_kernel_grad(np.zeros(3), b2) @ v, one_sided, rtol=1e-7)


@pytest.mark.parametrize("theta", [0.0, 1e-12, 1e-9, 1e-6, np.pi - 1e-6, np.pi - 1e-9, np.pi])
def test_gram_based_field_is_stable_at_extreme_angles(theta):
    """The backends take θ from a clipped Gram matrix; near θ = 0, π the result must still match the
    atan2-based pair formula to round-off (J and ∇K are flat there, so the θ error does not propagate)."""
    b1, b2 = pair_at_angle(theta, 8, np.random.default_rng(4))
    value, grad = get_backend("numpy").field(b1[None], b2[None], np.array([1.0]), 1.0)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value[0], cf.relu_kernel(b1, b2), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(grad[0], cf.relu_kernel_grad(b1, b2), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_numpy_field_equals_sum_of_pair_kernels(alpha):
    rng = np.random.default_rng(5)
    pts, src, coef = rng.standard_normal((7, 4)), rng.standard_normal((9, 4)), rng.standard_normal(9)
    pts[2] = 0.0
    src[3] = 0.0
    src[4] = 2.5 * pts[0]
    src[5] = -0.3 * pts[1]
    v, g = get_backend("numpy", tile_elements=20).field(pts, src, coef, 0.6, alpha)
    ref_v = (cf.relu_kernel(pts[:, None], src[None], 0.6, alpha) * coef).sum(axis=1)
    ref_g = (cf.relu_kernel_grad(pts[:, None], src[None], 0.6, alpha) * coef[:, None]).sum(axis=1)
    np.testing.assert_allclose(v, ref_v, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g, ref_g, rtol=1e-12, atol=1e-14)
