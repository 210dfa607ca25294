r"""Exchangeability and kernel invariance of trained weights (Tsuchida, Roosta & Gallagher, *Exchangeability and
kernel invariance in trained MLPs*, arXiv:1810.08351, IJCAI 2019).

An ensemble is an array W of shape (S, m, n): S independent runs (seeds), m neurons (rows; e.g. [a_i | b_i]) and n
entries per neuron (columns). Neurons trained by SGD from an exchangeable initialisation stay exchangeable: the law
of W_s is invariant under permutations of its rows. The statistics below are the ones the paper tracks: per-entry
moments across seeds, the average covariance between two entries of the same row (ĉ_row) or of the same column
(ĉ_col), the width-scaled ratio n ĉ / v̂ (v̂ the average variance), a permutation test of row exchangeability, and
the empirical layer kernel on probe pairs at controlled angles (zero-sum and positive inputs), to compare with the
arc-cosine kernel (:func:`meanfield.weights.analysis.equivalent_kernel`).
"""

from __future__ import annotations

import numpy as np

from ..._validation import check_positive_int

__all__ = ["EnsembleMoments", "RowPermutationTest", "entry_moments", "within_row_covariance",
           "within_column_covariance", "scaled_covariance", "row_permutation_test", "probe_pairs"]


def _ensemble(W) -> np.ndarray:
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 3 or W.shape[0] < 2:
        raise ValueError(f"an ensemble must have shape (seeds >= 2, rows, columns), got {W.shape}")
    return W


class EnsembleMoments:
    """Across-seed moments of an ensemble, accumulated batch by batch (seeds can be streamed from files).

    Keeps, for every entry, every row sum and every column sum, the running mean and sum of squared deviations
    (merged batch-wise as in Chan, Golub & LeVeque 1979), which is all the covariance statistics need:
    Σ_{j≠k} Cov(W_ij, W_ik) = Var(Σ_j W_ij) − Σ_j Var(W_ij), in O(S m n).

    Examples
    --------
    >>> import numpy as np
    >>> W = np.random.default_rng(0).standard_normal((50, 4, 3))
    >>> acc = EnsembleMoments().add(W[:20]).add(W[20:])
    >>> bool(np.allclose(acc.variance, W.var(axis=0, ddof=1)))
    True
    """

    def __init__(self):
        self.count = 0
        self._acc = None  # [(mean, M2) for entries, row sums, column sums]

    def add(self, batch) -> EnsembleMoments:
        batch = np.asarray(batch, dtype=np.float64)
        if batch.ndim == 2:
            batch = batch[None]
        if batch.ndim != 3:
            raise ValueError(f"a batch of an ensemble must have shape (seeds, rows, columns), got {batch.shape}")
        if self._acc is not None and batch.shape[1:] != self._acc[0][0].shape:
            raise ValueError(f"batch rows×columns {batch.shape[1:]} differ from the ensemble's "
                             f"{self._acc[0][0].shape}")
        gram = np.einsum("smi,smj->ij", batch, batch)
        self._gram = gram if self._acc is None else self._gram + gram
        parts = (batch, batch.sum(axis=2), batch.sum(axis=1))
        nb = batch.shape[0]
        stats = [(x.mean(axis=0), np.sum((x - x.mean(axis=0)) ** 2, axis=0)) for x in parts]
        if self._acc is None:
            self._acc = stats
        else:
            n = self.count + nb
            merged = []
            for (ma, qa), (mb, qb) in zip(self._acc, stats):
                delta = mb - ma
                merged.append((ma + delta * (nb / n), qa + qb + delta**2 * (self.count * nb / n)))
            self._acc = merged
        self.count += nb
        return self

    def _need(self, k=2):
        if self.count < k:
            raise ValueError(f"an ensemble must have shape (seeds >= {k}, rows, columns); got {self.count} seeds")

    @property
    def mean(self) -> np.ndarray:
        """Mean of every entry across seeds, (m, n)."""
        self._need(1)
        return self._acc[0][0]

    @property
    def variance(self) -> np.ndarray:
        """Unbiased variance of every entry across seeds, (m, n)."""
        self._need()
        return self._acc[0][1] / (self.count - 1)

    def _offdiagonal(self, axis: int) -> float:
        var_entries = self._acc[0][1] / (self.count - 1)
        var_sums = self._acc[1 + axis][1] / (self.count - 1)
        k = var_entries.shape[1 - axis]
        if k < 2:
            raise ValueError("within-row (-column) covariances need at least two columns (rows)")
        return float(np.mean((var_sums - var_entries.sum(axis=1 - axis)) / (k * (k - 1))))

    @property
    def c_row(self) -> float:
        """ĉ_row: mean covariance across seeds between two different entries of the same row."""
        self._need()
        return self._offdiagonal(0)

    @property
    def c_col(self) -> float:
        """ĉ_col: mean covariance across seeds between the same entry of two different rows."""
        self._need()
        return self._offdiagonal(1)

    @property
    def anisotropy(self) -> float:
        """‖Σ − (tr Σ / n) I‖_F / (tr Σ / n) for Σ = E[w wᵀ] the second moment of a row pooled over rows and seeds:
        0 for a rotationally invariant law of the rows, the only case in which the layer kernel is the arc-cosine
        kernel for every input pair (for Gaussian rows, the kernel depends on Σ only)."""
        self._need(1)
        sigma = self._gram / (self.count * self.mean.shape[0])
        level = np.trace(sigma) / sigma.shape[0]
        return float(np.linalg.norm(sigma - level * np.eye(sigma.shape[0])) / level)

    def statistics(self) -> dict:
        """ĉ_row, ĉ_col, the mean entry variance v̂, the width-scaled n ĉ_row / v̂ and m ĉ_col / v̂, the spread of
        the entry means across rows (zero for an exchangeable ensemble up to noise) and the anisotropy of the rows'
        second moment."""
        self._need()
        v = float(self.variance.mean())
        m, n = self.mean.shape
        c_row, c_col = self.c_row, self.c_col
        row_means = self.mean
        return {"c_row": c_row, "c_col": c_col, "variance": v, "row_scaled": n * c_row / v,
                "column_scaled": m * c_col / v, "seeds": self.count,
                "row_mean_spread": float(np.sum((row_means - row_means.mean(axis=0)) ** 2)),
                "anisotropy": self.anisotropy}


def entry_moments(W) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) variance of every entry across seeds, each of shape (m, n).

    Examples
    --------
    >>> import numpy as np
    >>> W = np.random.default_rng(0).standard_normal((400, 6, 5))     # 400 seeds of i.i.d. 6 × 5 matrices
    >>> from meanfield.weights.analysis import entry_moments
    >>> mean, var = entry_moments(W)
    >>> mean.shape, bool(abs(var.mean() - 1) < 0.02)
    ((6, 5), True)
    """
    acc = EnsembleMoments().add(_ensemble(W))
    return acc.mean, acc.variance


def within_row_covariance(W) -> float:
    """ĉ_row: mean covariance across seeds between two different entries of the same row (neuron).

    Examples
    --------
    >>> import numpy as np
    >>> W = np.random.default_rng(0).standard_normal((400, 6, 5))     # 400 seeds of i.i.d. 6 × 5 matrices
    >>> from meanfield.weights.analysis import within_row_covariance
    >>> abs(within_row_covariance(W)) < 0.02          # independent entries: no covariance within a row
    True
    """
    return EnsembleMoments().add(_ensemble(W)).c_row


def within_column_covariance(W) -> float:
    """ĉ_col: mean covariance across seeds between the same entry of two different rows (neurons).

    Examples
    --------
    >>> import numpy as np
    >>> W = np.random.default_rng(0).standard_normal((400, 6, 5))     # 400 seeds of i.i.d. 6 × 5 matrices
    >>> from meanfield.weights.analysis import within_column_covariance
    >>> abs(within_column_covariance(W)) < 0.02
    True
    """
    return EnsembleMoments().add(_ensemble(W)).c_col


def scaled_covariance(W) -> dict:
    """The width-scaled statistics n ĉ_row / v̂ and m ĉ_col / v̂ (v̂ the mean entry variance), O(1) when the
    covariances scale like 1/width, together with ĉ_row, ĉ_col and v̂.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.random.default_rng(0).standard_normal((400, 6, 5))     # 400 seeds of i.i.d. 6 × 5 matrices
    >>> from meanfield.weights.analysis import scaled_covariance
    >>> stats = scaled_covariance(W)
    >>> bool(abs(stats["variance"] - 1) < 0.02 and abs(stats["row_scaled"]) < 0.2)
    True
    """
    return EnsembleMoments().add(_ensemble(W)).statistics()


class RowPermutationTest:
    """Permutation test of row exchangeability, accumulated seed batch by seed batch.

    Under H0 permuting the rows of each run independently leaves the law unchanged. Statistic: the spread of the
    per-row means across seeds, T = Σ_i |mean_s W_si − mean|². For each of the ``n_permutations`` relabellings the
    permuted row sums are accumulated as seeds arrive (memory n_permutations × m × n), so the ensemble itself is
    never held. p = (1 + #{T_perm >= T}) / (1 + n_permutations).

    Examples
    --------
    >>> import numpy as np
    >>> W = np.random.default_rng(0).standard_normal((400, 6, 5))     # 400 seeds of i.i.d. 6 × 5 matrices
    >>> from meanfield.weights.analysis import RowPermutationTest
    >>> test = RowPermutationTest(n_permutations=99, seed=0).add(W[:200]).add(W[200:])   # seeds in two batches
    >>> statistic, p = test.result()
    >>> p > 0.01
    True
    """

    def __init__(self, n_permutations: int = 199, seed=None):
        self.n_permutations = check_positive_int(n_permutations, "n_permutations")
        self.rng = np.random.default_rng(seed)
        self.total = None
        self.permuted = None
        self.count = 0

    def add(self, batch) -> RowPermutationTest:
        batch = np.asarray(batch, dtype=np.float64)
        S, m, n = batch.shape
        if self.total is None:
            self.total = np.zeros((m, n))
            self.permuted = np.zeros((self.n_permutations, m, n))
        self.total += batch.sum(axis=0)
        for s in range(S):
            perms = np.argsort(self.rng.random((self.n_permutations, m)), axis=1)
            self.permuted += batch[s][perms]
        self.count += S
        return self

    @staticmethod
    def _spread(sums, count):
        means = sums / count
        return np.sum((means - means.mean(axis=-2, keepdims=True)) ** 2, axis=(-2, -1))

    def result(self) -> tuple[float, float]:
        if self.count < 2:
            raise ValueError("a permutation test needs at least 2 seeds")
        observed = float(self._spread(self.total, self.count))
        exceed = int(np.sum(self._spread(self.permuted, self.count) >= observed))
        return observed, (1 + exceed) / (1 + self.n_permutations)


def row_permutation_test(W, n_permutations: int = 999, seed=None, statistic=None) -> tuple[float, float]:
    """Permutation test of row exchangeability (see :class:`RowPermutationTest` for the default statistic).
    A custom ``statistic`` (a function of the whole (S, m, n) ensemble) needs the ensemble in memory.
    Returns (statistic, p-value).

    Examples
    --------
    >>> import numpy as np
    >>> W = np.random.default_rng(0).standard_normal((400, 6, 5))     # 400 seeds of i.i.d. 6 × 5 matrices
    >>> from meanfield.weights.analysis import row_permutation_test
    >>> statistic, p = row_permutation_test(W, n_permutations=99, seed=0)
    >>> p > 0.01                     # exchangeable rows: no evidence against H0
    True
    >>> W[:, 0] += 0.5               # row 0 of every seed shifted: not exchangeable
    >>> row_permutation_test(W, n_permutations=99, seed=0)[1]
    0.01
    """
    W = _ensemble(W)
    if statistic is None:
        return RowPermutationTest(n_permutations, seed).add(W).result()
    n_permutations = check_positive_int(n_permutations, "n_permutations")
    rng = np.random.default_rng(seed)
    observed = statistic(W)
    S, m, _ = W.shape
    exceed = 0
    for _ in range(n_permutations):
        perms = np.argsort(rng.random((S, m)), axis=1)
        exceed += statistic(np.take_along_axis(W, perms[:, :, None], axis=1)) >= observed
    return observed, (1 + exceed) / (1 + n_permutations)


def probe_pairs(n: int, angles, kind: str = "zero_sum", seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Unit input pairs (x_k, y_k) at the given angles, shapes (K, n).

    ``kind="zero_sum"``: x, y in the hyperplane Σ_i x_i = 0 (any angle in [0, π]). ``kind="positive"``: x, y >= 0,
    normalised indicators of index sets whose overlap fixes the angle (angles in [0, π/2], realised to the nearest
    achievable overlap; the returned pairs carry their actual angle).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.weights.analysis import probe_pairs
    >>> x, y = probe_pairs(8, [0.5, 2.0], seed=0)
    >>> x.shape, np.round(np.arccos(np.sum(x * y, axis=1)), 12).tolist(), bool(np.allclose(x.sum(axis=1), 0))
    ((2, 8), [0.5, 2.0], True)
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
