"""The layer kernel of exchangeable Gaussian weights (Tsuchida, Roosta & Gallagher 2019) against Monte Carlo with
rows drawn through a Cholesky factor of Σ (independent of the closed form's Σ^{1/2}), the invariance for zero-sum
inputs, the 1/n scaling of the transition, and the fit of (v, c) from an ensemble."""

import numpy as np
import pytest
from conftest import assert_mc_close, mc_mean

from meanfield.activations import LeakyReLU
from meanfield.weights.analysis import (
    ExchangeableFit,
    exchangeable_kernel,
    normalized_exchangeable_kernel,
    sample_exchangeable,
    transition_covariance,
)


def _pairs(n, rng):
    positive = np.abs(rng.standard_normal((2, n)))
    zero_sum = rng.standard_normal((2, n))
    zero_sum -= zero_sum.mean(axis=1, keepdims=True)
    return {"positive": positive, "zero_sum": zero_sum}


@pytest.mark.parametrize("c", [0.0, 0.08, -0.03])
@pytest.mark.parametrize("activation", [0.0, LeakyReLU(0.2)])
def test_closed_form_against_monte_carlo(c, activation):
    n, v = 12, 1.3
    rng = np.random.default_rng(1)
    sigma = (v - c) * np.eye(n) + c * np.ones((n, n))
    chol = np.linalg.cholesky(sigma)
    unit = LeakyReLU(0.0) if activation == 0.0 else activation
    for x, y in _pairs(n, rng).values():
        values = []
        for _ in range(4):  # 2·10⁶ rows in four batches
            w = rng.standard_normal((500_000, n)) @ chol.T
            values.append(unit(w @ x) * unit(w @ y))
        assert_mc_close(exchangeable_kernel(x, y, v, c, activation), np.concatenate(values))


def test_zero_sum_inputs_do_not_see_the_covariance_and_positive_ones_do():
    rng = np.random.default_rng(2)
    pairs = _pairs(400, rng)
    x, y = pairs["zero_sum"]
    flat = [float(normalized_exchangeable_kernel(x, y, 1.0, c)) for c in (0.0, 0.01, 0.05, 0.2)]
    np.testing.assert_allclose(flat, flat[0], rtol=1e-12)  # only v − c changes, which the normalisation removes
    x, y = pairs["positive"]
    moving = [float(normalized_exchangeable_kernel(x, y, 1.0, c)) for c in (0.0, 0.01, 0.05, 0.2)]
    assert np.all(np.diff(moving) > 0) and moving[-1] > 0.99


def test_the_transition_sharpens_like_one_over_n():
    """For inputs with the same entry profile, n · c_half tends to a constant: (1ᵀx)²/|x|² grows like n."""
    profile = lambda n: 1.0 + 0.5 * np.sin(np.arange(n))  # noqa: E731 - positive entries, fixed profile
    shifted = lambda n: 1.0 + 0.5 * np.cos(0.7 * np.arange(n))  # noqa: E731
    scaled = [n * transition_covariance(profile(n), shifted(n)) for n in (100, 1000, 10000)]
    np.testing.assert_allclose(scaled, scaled[-1], rtol=0.05)
    x = profile(1000) - profile(1000).mean()
    assert transition_covariance(x, shifted(1000) - shifted(1000).mean()) == 1.0  # zero-sum: never reached


def test_fit_recovers_v_and_c_from_an_ensemble():
    """(v̂, ĉ) from 3000 seeds of 8×16 matrices against the law's (v, c), within 5 standard errors estimated over 30
    independent groups of seeds."""
    v, c, n = 0.9, 0.05, 16
    rng = np.random.default_rng(3)
    W = sample_exchangeable(3000 * 8, n, v, c, rng).reshape(3000, 8, n)
    groups = [ExchangeableFit.from_weights(g) for g in np.split(W, 30)]
    for name, exact in (("v", v), ("c", c)):
        mean, se = mc_mean([getattr(g, name) for g in groups])
        assert abs(mean - exact) <= 5 * se, (name, mean, se)
    fit = ExchangeableFit.from_weights(W)
    assert fit.n == n and fit.scaled == pytest.approx(n * c / v, rel=0.2)


def test_bad_covariance_is_one_line():
    with pytest.raises(ValueError, match="within-row covariance c = 1.5 must lie in"):
        exchangeable_kernel(np.ones(3), np.ones(3), 1.0, 1.5)


@pytest.mark.parametrize("level", [0.25, 0.5, 0.8])
def test_transition_covariance_against_the_kernel_written_with_the_full_covariance(level):
    """c at which the normalised ReLU kernel has covered ``level`` of its way from c = 0 to 1, against a root of
    the same condition written independently: the cosine θ_Σ in the metric of the explicit n × n matrix
    Σ = (v − c) I + c 11ᵀ and the normalised arc-cosine kernel (sin θ + (π − θ) cos θ)/π (both roots to 1e-12;
    compared at 1e-9, the conditioning of the root in c)."""
    from scipy.optimize import brentq

    rng = np.random.default_rng(8)
    n, v = 40, 1.3
    x, y = np.abs(rng.standard_normal((2, n)))

    def normalised(c):
        sigma = (v - c) * np.eye(n) + c * np.ones((n, n))
        cos = (x @ sigma @ y) / np.sqrt((x @ sigma @ x) * (y @ sigma @ y))
        theta = np.arccos(np.clip(cos, -1.0, 1.0))
        return (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / np.pi

    start = normalised(0.0)
    expected = brentq(lambda c: normalised(c) - (start + level * (1 - start)), 0.0, v * (1 - 1e-9), xtol=1e-15,
                      rtol=1e-13)
    found = transition_covariance(x, y, v) if level == 0.5 else transition_covariance(x, y, v, level=level)
    assert found == pytest.approx(expected, rel=1e-9)   # level 0.5: the default


def test_fit_from_streamed_moments_is_the_hand_computed_ensemble_covariance():
    """ExchangeableFit.from_moments on moments accumulated in three batches of seeds: v̂ the mean over entries of
    the unbiased variance across seeds, ĉ the mean over rows of the mean off-diagonal entry of the across-seed
    covariance of a row's entries (np.cov), n the row length (1e-12: the batch-merged sums against direct ones)."""
    from meanfield.weights.analysis import EnsembleMoments

    rng = np.random.default_rng(9)
    W = sample_exchangeable(400 * 5, 7, 1.1, 0.2, rng).reshape(400, 5, 7) + rng.standard_normal((5, 7))
    moments = EnsembleMoments().add(W[:100]).add(W[100:250]).add(W[250:])
    fit = ExchangeableFit.from_moments(moments)
    off = ~np.eye(7, dtype=bool)
    c_rows = [np.cov(W[:, r, :].T)[off].mean() for r in range(5)]
    assert fit.n == 7
    np.testing.assert_allclose(fit.v, W.var(axis=0, ddof=1).mean(), rtol=1e-12)
    np.testing.assert_allclose(fit.c, np.mean(c_rows), rtol=1e-12)
