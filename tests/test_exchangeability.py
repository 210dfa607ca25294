"""Exchangeability statistics (Tsuchida et al. 2019) on ensembles with known covariance structure."""

import numpy as np
import pytest

from meanfield.weights.analysis import (
    entry_moments,
    probe_pairs,
    row_permutation_test,
    scaled_covariance,
    within_column_covariance,
    within_row_covariance,
)


def test_covariances_match_their_construction():
    """W_sij = R_si + C_sj + E_sij with independent parts: Cov(W_ij, W_ik) = Var R (same row), Cov(W_ij, W_lj) =
    Var C (same column); the brute-force covariance matrix gives the same numbers."""
    rng = np.random.default_rng(0)
    S, m, n = 4000, 6, 5
    R, C = 0.7 * rng.standard_normal((S, m, 1)), 0.4 * rng.standard_normal((S, 1, n))
    W = R + C + rng.standard_normal((S, m, n))
    # Sample covariances over S = 4000 seeds: standard error ≈ √(Var² / S) ≈ 0.49·√(2/4000)·(1+…) < 0.006 for the
    # averaged pairs; 0.03 is 5 SE.
    np.testing.assert_allclose(within_row_covariance(W), 0.49, atol=0.03)
    np.testing.assert_allclose(within_column_covariance(W), 0.16, atol=0.03)
    flat = W.reshape(S, m * n)
    cov = np.cov(flat, rowvar=False).reshape(m, n, m, n)
    brute_row = np.mean([cov[i, j, i, k] for i in range(m) for j in range(n) for k in range(n) if j != k])
    brute_col = np.mean([cov[i, j, l, j] for i in range(m) for l in range(m) for j in range(n) if i != l])
    np.testing.assert_allclose(within_row_covariance(W), brute_row, rtol=1e-10)
    np.testing.assert_allclose(within_column_covariance(W), brute_col, rtol=1e-10)
    mean, var = entry_moments(W)
    # Mean of 30 sample variances (S = 4000): relative SE ≈ √(2/4000) ≈ 2 %, shared components; 5 % ≈ 2.5 SE of the
    # worst case where all 30 move together.
    np.testing.assert_allclose(var.mean(), 0.49 + 0.16 + 1.0, rtol=0.05)
    stats = scaled_covariance(W)
    assert stats["row_scaled"] == pytest.approx(n * stats["c_row"] / stats["variance"])


def test_iid_ensemble_has_no_within_row_covariance():
    W = np.random.default_rng(1).standard_normal((2000, 8, 8))
    stats = scaled_covariance(W)
    # Standard error of ĉ ≈ v / √(S · m · n(n−1)) ≈ 0.003 here.
    assert abs(stats["c_row"]) < 0.015 and abs(stats["c_col"]) < 0.015


def test_permutation_test_separates_exchangeable_from_labelled_rows():
    rng = np.random.default_rng(2)
    exchangeable = rng.standard_normal((200, 10, 3))
    labelled = exchangeable + np.linspace(-0.5, 0.5, 10)[None, :, None]  # row i has its own mean
    _, p_exch = row_permutation_test(exchangeable, 499, seed=3)
    _, p_lab = row_permutation_test(labelled, 499, seed=3)
    assert p_exch > 0.01 and p_lab < 0.01
    # Under H0 the p-value is uniform: over independent exchangeable ensembles, rejections at 5 % stay rare.
    ps = [row_permutation_test(rng.standard_normal((30, 6, 2)), 99, seed=k)[1] for k in range(40)]
    assert np.mean(np.array(ps) <= 0.05) < 0.2


def test_probe_pairs_have_the_requested_angles_and_constraints():
    angles = np.array([0.0, 0.5, 1.2, np.pi / 2, 2.5, np.pi])
    x, y = probe_pairs(30, angles, "zero_sum", seed=4)
    np.testing.assert_allclose(x.sum(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(y.sum(axis=1), 0, atol=1e-12)
    # arccos near 0 and π loses half the digits: θ ≈ √(2·1e-16) ≈ 1.5e-8 of resolution, so 1e-7.
    np.testing.assert_allclose(np.arccos(np.clip(np.sum(x * y, axis=1), -1, 1)), angles, atol=1e-7)
    x, y = probe_pairs(400, angles[:4], "positive")
    assert (x >= 0).all() and (y >= 0).all()
    # Positive vectors cannot reach every angle exactly; probe_pairs documents them as within 0.02 rad.
    np.testing.assert_allclose(np.arccos(np.clip(np.sum(x * y, axis=1), -1, 1)), angles[:4], atol=0.02)
    with pytest.raises(ValueError, match="positive inputs"):
        probe_pairs(10, [2.0], "positive")
    with pytest.raises(ValueError, match="shape"):
        within_row_covariance(np.ones((1, 3, 3)))
