"""Equivalent kernels (Tsuchida et al. 2018) against Monte Carlo over the weights, and the deep cosine map."""

import numpy as np
import pytest
from conftest import assert_mc_close, pair_at_angle

from meanfield.weights.analysis import (
    deep_cosine_map,
    deep_cosines,
    empirical_kernel,
    equivalent_kernel,
    sample_weights,
    second_moment,
)

INVARIANT = ["gaussian", "sphere", "ball", "student_t"]


@pytest.mark.parametrize("law", INVARIANT)
@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_rotationally_invariant_laws_follow_the_closed_form_at_any_width(law, alpha):
    n = 4  # small n: only rotational invariance (not a CLT) makes the closed form exact here
    w = sample_weights(law, 2_000_000, n, seed=1, scale=1.3)
    assert_mc_close(second_moment(law, n, 1.3), np.sum(w**2, axis=1))
    for theta in (0.3, np.pi / 2, 2.6):
        x, y = pair_at_angle(theta, n, np.random.default_rng(2))
        zx, zy = w @ x, w @ y
        values = np.maximum(zx, alpha * zx) * np.maximum(zy, alpha * zy)
        assert_mc_close(equivalent_kernel(x, y, second_moment(law, n, 1.3), alpha), values)
        np.testing.assert_allclose(empirical_kernel(w, x, y, alpha), values.mean(), rtol=1e-12)


@pytest.mark.parametrize("law", ["uniform_iid", "rademacher_iid", "laplace_iid"])
def test_iid_laws_approach_the_closed_form_as_the_width_grows(law):
    errors = []
    for n in (2, 256):
        x, y = pair_at_angle(1.0, n, np.random.default_rng(3))
        x, y = np.abs(x), y  # an input aligned with the coordinate axes' positive orthant stresses non-invariance
        w = sample_weights(law, 400_000, n, seed=4)
        exact = equivalent_kernel(x, y, second_moment(law, n))
        errors.append(abs(empirical_kernel(w, x, y) - exact) / abs(exact))
    assert errors[1] < 0.01 and errors[1] < errors[0], errors


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_deep_map_approaches_its_fixed_point_polynomially(alpha):
    rho = deep_cosines(0.2, 20_000, alpha)
    assert np.all(np.diff(rho) > -1e-15) and rho[-1] < 1.0
    assert deep_cosine_map(1.0, alpha) == pytest.approx(1.0, abs=1e-14)
    theta = np.arccos(np.clip(rho[[5000, 20000]], -1, 1))
    predicted = 3 * np.pi * (1 + alpha**2) / ((1 - alpha) ** 2 * np.array([5000, 20000]))
    # θ_l ≈ 3π(1+α²)/((1−α)² l) is the leading term; the next is O(log l / l²) relative, ≈ 1 % at l = 5000.
    np.testing.assert_allclose(theta, predicted, rtol=0.05)


def test_deep_map_predicts_the_cosines_of_a_wide_random_network():
    rng = np.random.default_rng(5)
    n, width, depth = 20, 4000, 6
    x, y = pair_at_angle(2.0, n, rng)
    hx, hy = x, y
    predicted = deep_cosines(np.cos(2.0), depth)
    for layer in range(1, depth + 1):
        w = rng.standard_normal((width, hx.shape[0])) / np.sqrt(hx.shape[0])
        hx, hy = np.maximum(w @ hx, 0), np.maximum(w @ hy, 0)
        cos = hx @ hy / (np.linalg.norm(hx) * np.linalg.norm(hy))
        assert abs(cos - predicted[layer]) < 0.02, (layer, cos, predicted[layer])


def test_bad_laws_are_named():
    with pytest.raises(ValueError, match="unknown weight law"):
        sample_weights("cauchy", 10, 3)
    with pytest.raises(ValueError, match="infinite second moment"):
        second_moment("student_t", 3, dof=2.0)
