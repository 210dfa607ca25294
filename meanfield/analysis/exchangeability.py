r"""Exchangeability and kernel invariance of trained weights (Tsuchida, Roosta & Gallagher, *Exchangeability and
kernel invariance in trained MLPs*, arXiv:1810.08351, IJCAI 2019).

An ensemble is an array W of shape (S, m, n): S independent runs (seeds), m neurons (rows; e.g. [a_i | b_i]) and n
entries per neuron (columns). Neurons trained by SGD from an exchangeable initialisation stay exchangeable: the law
of W_s is invariant under permutations of its rows. The statistics below are the ones the paper tracks: per-entry
moments across seeds, the average covariance between two entries of the same row (ĉ_row) or of the same column
(ĉ_col), the width-scaled ratio n ĉ / v̂ (v̂ the average variance), a permutation test of row exchangeability, and
the empirical layer kernel on probe pairs at controlled angles (zero-sum and positive inputs), to compare with the
arc-cosine kernel (:func:`meanfield.analysis.equivalent_kernel`).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_positive_int

__all__ = ["entry_moments", "within_row_covariance", "within_column_covariance", "scaled_covariance",
           "row_permutation_test", "probe_pairs"]


def _ensemble(W) -> np.ndarray:
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 3 or W.shape[0] < 2:
        raise ValueError(f"an ensemble must have shape (seeds >= 2, rows, columns), got {W.shape}")
    return W


def entry_moments(W) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) variance of every entry across seeds, each of shape (m, n)."""
    W = _ensemble(W)
    return W.mean(axis=0), W.var(axis=0, ddof=1)


def _mean_offdiagonal_covariance(W) -> float:
    """Average over rows i and ordered pairs j ≠ k of Cov_s(W_sij, W_sik), in O(S m n).

    Σ_{j,k} Cov(W_ij, W_ik) = Var(Σ_j W_ij), so the off-diagonal sum is Var(row sum) − Σ_j Var(W_ij).
    """
    S, m, n = W.shape
    if n < 2:
        raise ValueError("within-row covariances need at least two columns")
    X = W - W.mean(axis=0)
    row_sum_var = np.sum(X.sum(axis=2) ** 2, axis=0) / (S - 1)
    entry_var = np.sum(X**2, axis=(0, 2)) / (S - 1)
    return float(np.mean((row_sum_var - entry_var) / (n * (n - 1))))


def within_row_covariance(W) -> float:
    """ĉ_row: mean covariance across seeds between two different entries of the same row (neuron)."""
    return _mean_offdiagonal_covariance(_ensemble(W))


def within_column_covariance(W) -> float:
    """ĉ_col: mean covariance across seeds between the same entry of two different rows (neurons)."""
    return _mean_offdiagonal_covariance(np.swapaxes(_ensemble(W), 1, 2))


def scaled_covariance(W) -> dict:
    """The width-scaled statistics n ĉ_row / v̂ and m ĉ_col / v̂ (v̂ the mean entry variance), O(1) when the
    covariances scale like 1/width, together with ĉ_row, ĉ_col and v̂."""
    W = _ensemble(W)
    _, var = entry_moments(W)
    v = float(var.mean())
    c_row, c_col = within_row_covariance(W), within_column_covariance(W)
    return {"c_row": c_row, "c_col": c_col, "variance": v, "row_scaled": W.shape[2] * c_row / v,
            "column_scaled": W.shape[1] * c_col / v}


def row_permutation_test(W, n_permutations: int = 999, seed=None, statistic=None) -> tuple[float, float]:
    """Permutation test of row exchangeability: under H0 permuting the rows of each run independently leaves the
    law unchanged. Default statistic: the spread of the per-row means across seeds, Σ_i |mean_s W_si − mean|².
    Returns (statistic, p-value) with p = (1 + #{T_perm >= T}) / (1 + n_permutations)."""
    W = _ensemble(W)
    n_permutations = check_positive_int(n_permutations, "n_permutations")
    rng = np.random.default_rng(seed)

    def spread(X):
        row_means = X.mean(axis=0)
        return float(np.sum((row_means - row_means.mean(axis=0)) ** 2))

    stat_fn = statistic or spread
    observed = stat_fn(W)
    S, m, _ = W.shape
    exceed = 0
    for _ in range(n_permutations):
        perms = np.argsort(rng.random((S, m)), axis=1)
        exceed += stat_fn(np.take_along_axis(W, perms[:, :, None], axis=1)) >= observed
    return observed, (1 + exceed) / (1 + n_permutations)


def probe_pairs(n: int, angles, kind: str = "zero_sum", seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Unit input pairs (x_k, y_k) at the given angles, shapes (K, n).

    ``kind="zero_sum"``: x, y in the hyperplane Σ_i x_i = 0 (any angle in [0, π]). ``kind="positive"``: x, y >= 0,
    normalised indicators of index sets whose overlap fixes the angle (angles in [0, π/2], realised to the nearest
    achievable overlap; the returned pairs carry their actual angle).
    """
    n = check_positive_int(n, "n")
    angles = np.atleast_1d(np.asarray(angles, dtype=np.float64))
    rng = np.random.default_rng(seed)
    if kind == "zero_sum":
        if n < 3:
            raise ValueError("zero-sum probe pairs need n >= 3")
        basis = np.linalg.qr(np.concatenate([np.ones((n, 1)), rng.standard_normal((n, 2))], axis=1))[0]
        u, v = basis[:, 1], basis[:, 2]
        return np.tile(u, (len(angles), 1)), np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v
    if kind == "positive":
        if np.any(angles > np.pi / 2 + 1e-12) or np.any(angles < 0):
            raise ValueError("positive inputs have angles in [0, π/2]")
        half = n // 2
        xs, ys = [], []
        for theta in angles:
            overlap = int(round(np.cos(theta) * half))  # |A ∩ B| / |A| = cos θ for |A| = |B| = half
            a = np.zeros(n)
            b = np.zeros(n)
            a[:half] = 1.0
            b[half - overlap: 2 * half - overlap] = 1.0
            xs.append(a / np.linalg.norm(a))
            ys.append(b / np.linalg.norm(b))
        return np.array(xs), np.array(ys)
    raise ValueError(f"kind must be 'zero_sum' or 'positive', got {kind!r}")
