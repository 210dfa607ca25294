r"""Permutation-invariant Gaussian matrix models (Ramgoolam, *Permutation invariant Gaussian matrix models*,
arXiv:1809.07559, Nucl. Phys. B 2019; Hirst & Ramgoolam, *Approximate Gaussianity beyond initialisation in neural
networks*, arXiv:2510.05218, 2025).

**Square D×D matrices** under M_ij ↦ M_σ(i)σ(j) (σ ∈ S_D). With V = V₀ ⊕ V_H the natural representation,

.. math::

    V ⊗ V = 2 V_0 ⊕ 3 V_H ⊕ V_2 ⊕ V_3, \qquad
    \dim V_H = D − 1,\ \dim V_2 = D(D − 3)/2,\ \dim V_3 = (D − 1)(D − 2)/2,

and the most general S_D-invariant Gaussian law has 13 parameters: the mean (μ₁, μ₂) of the two V₀ coordinates,
their 2×2 covariance Λ₀, a 3×3 covariance Λ_H shared by the D − 1 components of the three V_H copies, and one
variance each, λ₂ and λ₃, for the (single) copies of V₂ and V₃. The explicit orthonormal decomposition used here:

* V₀: s₁ = tr M / √D and s₂ = Σ_{i≠j} M_ij / √(D(D − 1));
* V_H (vectors u ∈ R^D with Σ u = 0): u₁ = the centred diagonal, u₂ = √(2(D − 2)) v with v_i + v_j the part of
  the symmetric off-diagonal matrix, u₃ = √(2D) v with v_i − v_j the part of the antisymmetric one;
* V₂: symmetric off-diagonal matrices with zero row sums; V₃: antisymmetric matrices with zero row sums.

The two linear and eleven quadratic invariants are E s, E s sᵀ (3), E u_k·u_l (6), E|P₂M|², E|P₃M|²; the fit is
moment matching of these 13 (equivalently, the projection of the sample covariance on the commutant of S_D):
μ = mean of s, Λ₀ = covariance of s (divisor N − 1), Λ_H = Σ u_k·u_l / (N (D − 1)), λ_r = Σ |P_r M|² / (N dim V_r).
Because the decomposition is orthogonal and shared by every model of a given D, the 2-Wasserstein distance splits
by irrep:

.. math::

    W_2^2 = |Δμ|^2 + \mathcal B^2(Λ_0, Λ_0') + (D − 1)\, \mathcal B^2(Λ_H, Λ_H')
            + \dim V_2 (\sqrt{λ_2} − \sqrt{λ_2'})^2 + \dim V_3 (\sqrt{λ_3} − \sqrt{λ_3'})^2,

with 𝓑²(A, B) = tr A + tr B − 2 tr (A^{1/2}BA^{1/2})^{1/2} the squared Bures distance.

**Rectangular m×d matrices** under S_m × S_d (rows and columns permuted independently): V_m ⊗ V_d = (V₀ ⊕ V_H^m) ⊗
(V₀ ⊕ V_H^d) has four irreps of multiplicity one — the grand mean, row effects (dim m − 1), column effects
(dim d − 1) and the doubly centred residual (dim (m − 1)(d − 1)) — hence 1 linear + 4 quadratic parameters.

Higher invariants (:class:`Invariant`: index contractions such as tr M³ = ``"ij,jk,ki"``) have exact model
expectations by Wick's theorem on the mean matrix and the full covariance (:meth:`MatrixModel.expectation`);
:func:`compare_invariants` sets them against the data, as Hirst & Ramgoolam do for trained weights.

The Λ_H basis (which combination of the three V_H copies is called 1, 2, 3) is a convention; W₂ distances, samples
and predicted invariants do not depend on it.

Example
-------
>>> import numpy as np
>>> from meanfield.weights.analysis import SquareMatrixModel
>>> iid = SquareMatrixModel.iid(6, variance=1.0)
>>> fit = SquareMatrixModel.fit(iid.sample(4000, seed=0))
>>> bool(abs(fit.lam2 - 1.0) < 0.05 and abs(fit.lam3 - 1.0) < 0.05)
True
>>> round(iid.wasserstein(iid), 12)
0.0
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..._validation import check_positive, check_positive_int

#: The largest number of entries of a matrix whose full covariance (entries², float64) is built: 4096 (D = 64).
_MAX_COVARIANCE_SIZE = 4096

__all__ = ["MatrixModel", "SquareMatrixModel", "RectangularMatrixModel", "Invariant", "bures_squared",
           "SQUARE_INVARIANTS", "RECTANGULAR_INVARIANTS", "compare_invariants"]


def _psd_sqrt(A: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh((A + A.T) / 2)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def bures_squared(A, B) -> float:
    """Squared Bures distance tr A + tr B − 2 tr (A^{1/2}BA^{1/2})^{1/2} between PSD matrices (= W₂² between
    centred Gaussians with these covariances).

    Examples
    --------
    Between N(0, A) and N(0, B) with commuting covariances it is Σ (√a_i − √b_i)²:

    >>> import numpy as np
    >>> from meanfield.weights.analysis import bures_squared
    >>> round(bures_squared(np.diag([1.0, 4.0]), np.diag([4.0, 4.0])), 12)
    1.0
    """
    A, B = np.atleast_2d(np.asarray(A, float)), np.atleast_2d(np.asarray(B, float))
    rA = _psd_sqrt(A)
    cross = np.linalg.eigvalsh(rA @ B @ rA)
    return float(max(np.trace(A) + np.trace(B) - 2.0 * np.sum(np.sqrt(np.clip(cross, 0.0, None))), 0.0))


def _batches(matrices, shape_check: Callable, batch_size: int):
    """Yield float64 batches (n, ...) from an array or an iterable of arrays / single matrices."""
    if isinstance(matrices, np.ndarray) or hasattr(matrices, "shape"):
        arr = matrices
        if len(arr.shape) == 2:
            arr = np.asarray(arr)[None]
        for i0 in range(0, arr.shape[0], batch_size):
            yield shape_check(np.asarray(arr[i0:i0 + batch_size], dtype=np.float64))
        return
    for item in matrices:
        item = np.asarray(item, dtype=np.float64)
        yield shape_check(item[None] if item.ndim == 2 else item)


class MatrixModel:
    """A Gaussian law on matrices invariant under a permutation group, parametrised irrep by irrep.

    Subclasses define the irreps (:attr:`irreps`: name → (dimension, multiplicity); the first is the trivial one,
    the only one with a mean), the orthonormal components of a matrix in each irrep copy (:meth:`_components`),
    standard Gaussians in an irrep (:meth:`_standard`) and the inverse map (:meth:`_embed`).

    Attributes
    ----------
    mean : ndarray (k₀,)
        Mean of the trivial-irrep coordinates.
    blocks : dict name → ndarray (k, k)
        Covariance of the k copies of each irrep, shared by all components of the irrep.
    n_samples : int or None
        Number of matrices a fit was made from.

    Examples
    --------
    The common interface of the square and rectangular models: fit, sample, covariance, W₂ between models:

    >>> from meanfield.weights.analysis import MatrixModel, RectangularMatrixModel
    >>> model = RectangularMatrixModel.iid((4, 3), variance=2.0)
    >>> isinstance(model, MatrixModel), model.covariance().shape, model.sample(5, seed=0).shape
    (True, (12, 12), (5, 4, 3))
    """

    shape: tuple
    irreps: dict

    def __init__(self, shape, mean, blocks: dict, n_samples: int | None = None):
        self.shape = tuple(int(s) for s in shape)
        self.irreps = self._irreps(*self.shape)
        trivial = next(iter(self.irreps))
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.blocks = {}
        for name, (_, mult) in self.irreps.items():
            if name not in blocks:
                raise ValueError(f"missing covariance block {name!r} (blocks: {list(self.irreps)})")
            block = np.atleast_2d(np.asarray(blocks[name], dtype=np.float64))
            if block.shape != (mult, mult):
                raise ValueError(f"block {name!r} must be {mult}×{mult}, got shape {block.shape}")
            if not np.allclose(block, block.T, rtol=1e-10, atol=1e-14 * max(1.0, np.abs(block).max())):
                raise ValueError(f"block {name!r} is not symmetric")
            self.blocks[name] = (block + block.T) / 2
        if self.mean.shape != (self.irreps[trivial][1],):
            raise ValueError(f"mean must have {self.irreps[trivial][1]} entries, got {self.mean.shape}")
        self.n_samples = n_samples
        self.check(strict=False)

    # -- the irrep decomposition (subclasses) --------------------------------------------------------------------
    @staticmethod
    def _irreps(*shape) -> dict:
        raise NotImplementedError

    def _components(self, M: np.ndarray) -> dict:
        """name → (n, k, X): the components of each matrix in the k copies of the irrep, as vectors of a space
        in which the irrep sits isometrically."""
        raise NotImplementedError

    def _standard(self, name: str, n: int, k: int, rng) -> np.ndarray:
        """(n, k, X) independent standard Gaussians in each copy of a non-trivial irrep."""
        raise NotImplementedError

    def _embed(self, name: str, Y: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`_components` for one irrep: (n, k, X) → matrices (n, *shape)."""
        raise NotImplementedError

    def _check_shape(self, M: np.ndarray) -> np.ndarray:
        if M.ndim != 1 + len(self.shape) or M.shape[1:] != self.shape:
            dims = ", ".join(map(str, self.shape))
            raise ValueError(f"expected matrices of shape {self.shape} (or a batch (n, {dims})), got {M.shape}")
        if not np.all(np.isfinite(M)):
            raise ValueError("the matrices contain NaN or infinite entries")
        return M

    # -- fitting -------------------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, matrices, shape=None, batch_size: int = 256, progress: bool = False):
        """Fit by moment matching of the linear and quadratic invariants.

        Parameters
        ----------
        matrices : array (N, ...) or iterable of matrices / batches
            The ensemble; an iterable (e.g. a generator reading an HDF5 file) is consumed once, batch by batch,
            so the ensemble never needs to be in memory.
        shape : tuple, optional
            Matrix shape (taken from the first batch by default).
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        it = iter(_batches(matrices, lambda M: M, batch_size))
        first = next(it, None)
        if first is None:
            raise ValueError("cannot fit a matrix model to an empty ensemble")
        shape = tuple(shape) if shape is not None else first.shape[1:]
        proto = cls._prototype(shape)
        trivial = next(iter(proto.irreps))
        k0 = proto.irreps[trivial][1]
        n, shift = 0, None
        s_sum, s_outer = np.zeros(k0), np.zeros((k0, k0))
        grams = {name: np.zeros((mult, mult)) for name, (_, mult) in proto.irreps.items() if name != trivial}
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(desc=f"fitting {cls.__name__}", unit="matrices")
        for batch in _chain(first, it):
            proto._check_shape(batch)
            comps = proto._components(batch)
            s = comps[trivial][:, :, 0]
            shift = s[0] if shift is None else shift  # shifted sums keep the covariance accurate
            s_sum += (s - shift).sum(axis=0)
            s_outer += (s - shift).T @ (s - shift)
            for name in grams:
                grams[name] += np.einsum("nkx,nlx->kl", comps[name], comps[name])
            n += batch.shape[0]
            if bar is not None:
                bar.update(batch.shape[0])
        if bar is not None:
            bar.close()
        if n < 2:
            raise ValueError("a fit needs at least 2 matrices")
        mean_shifted = s_sum / n
        cov0 = (s_outer - n * np.outer(mean_shifted, mean_shifted)) / (n - 1)
        blocks = {trivial: cov0}
        for name, gram in grams.items():
            blocks[name] = gram / (n * proto.irreps[name][0])
        return cls._from_blocks(shape, shift + mean_shifted, blocks, n)

    @classmethod
    def _prototype(cls, shape):
        obj = cls.__new__(cls)
        obj.shape = tuple(int(s) for s in shape)
        obj.irreps = cls._irreps(*obj.shape)
        return obj

    @classmethod
    def _from_blocks(cls, shape, mean, blocks, n_samples=None):
        return cls(shape, mean, blocks, n_samples=n_samples)

    @classmethod
    def iid(cls, shape, variance: float = 1.0, mean: float = 0.0):
        """The i.i.d. law M_ij ~ N(mean, variance): every block is variance·I and the trivial mean is mean times the
        trivial basis vectors' entry sums."""
        check_positive(variance, "variance")
        proto = cls._prototype(shape if isinstance(shape, tuple) else cls._default_shape(shape))
        trivial = next(iter(proto.irreps))
        ones = np.full((1,) + proto.shape, float(mean))
        mu = proto._components(ones)[trivial][0, :, 0]
        blocks = {name: variance * np.eye(mult) for name, (_, mult) in proto.irreps.items()}
        return cls._from_blocks(proto.shape, mu, blocks)

    @staticmethod
    def _default_shape(size):
        return (int(size), int(size))

    # -- validity ------------------------------------------------------------------------------------------------
    def check(self, strict: bool = True, tol: float = 1e-12) -> None:
        """Validity: every covariance block positive semi-definite (always required) and, with ``strict``,
        positive definite (a proper density e^{−S}, as in Ramgoolam's convergence conditions). Raises ValueError
        naming the block and its smallest eigenvalue."""
        for name, block in self.blocks.items():
            w = np.linalg.eigvalsh(block)
            scale = max(1.0, float(np.abs(w).max()))
            if w[0] < -tol * scale:
                raise ValueError(f"block {name!r} is not positive semi-definite (smallest eigenvalue {w[0]:.3g})")
            if strict and w[0] <= tol * scale:
                raise ValueError(f"block {name!r} is singular (smallest eigenvalue {w[0]:.3g}): the model has no "
                                 "density (degenerate data, e.g. symmetric or zero-diagonal matrices)")

    @property
    def is_valid(self) -> bool:
        """True when every block is positive definite."""
        try:
            self.check(strict=True)
        except ValueError:
            return False
        return True

    # -- parameters ----------------------------------------------------------------------------------------------
    @property
    def n_parameters(self) -> int:
        return len(self.mean) + sum(m * (m + 1) // 2 for _, m in self.irreps.values())

    def parameters(self) -> dict:
        """The parameters as a flat dict of floats (mean_i and <irrep>_kl for k <= l)."""
        out = {f"mean_{i + 1}": float(v) for i, v in enumerate(self.mean)}
        for name, block in self.blocks.items():
            k = block.shape[0]
            if k == 1:
                out[name] = float(block[0, 0])
            else:
                out.update({f"{name}_{i + 1}{j + 1}": float(block[i, j]) for i in range(k) for j in range(i, k)})
        return out

    def invariants(self, M) -> dict:
        """The linear and quadratic invariants of each matrix whose means the fit matches: the trivial coordinates,
        their products, and the Gram matrices u_k·u_l of every other irrep. Returns name → (n,) arrays."""
        M = self._check_shape(np.asarray(M, dtype=np.float64).reshape((-1,) + self.shape))
        comps = self._components(M)
        out = {}
        for idx, (name, Y) in enumerate(comps.items()):
            k = Y.shape[1]
            if idx == 0:
                out.update({f"{name}_{i + 1}": Y[:, i, 0] for i in range(k)})
            gram = np.einsum("nkx,nlx->nkl", Y, Y)
            out.update({f"{name}_{i + 1}{j + 1}": gram[:, i, j] for i in range(k) for j in range(i, k)})
        return out

    def __repr__(self):
        params = ", ".join(f"{k}={v:.4g}" for k, v in self.parameters().items())
        return f"{type(self).__name__}(shape={self.shape}, {params})"

    # -- using the model -----------------------------------------------------------------------------------------
    def mean_matrix(self) -> np.ndarray:
        trivial = next(iter(self.irreps))
        return self._embed(trivial, self.mean[None, :, None])[0]

    def sample(self, n: int, seed=None) -> np.ndarray:
        """n matrices drawn from the model, shape ``(n, *shape)``."""
        n = check_positive_int(n, "n")
        rng = np.random.default_rng(seed)
        trivial = next(iter(self.irreps))
        out = np.zeros((n,) + self.shape)
        for name, (_, mult) in self.irreps.items():
            L = _psd_sqrt(self.blocks[name])
            if name == trivial:
                Y = (self.mean + rng.standard_normal((n, mult)) @ L)[:, :, None]
            else:
                Y = np.einsum("kl,nlx->nkx", L, self._standard(name, n, mult, rng))
            out += self._embed(name, Y)
        return out

    def covariance(self) -> np.ndarray:
        """The full covariance of vec(M), (P, P) with P = the number of entries (for small matrices: tests and
        brute-force checks)."""
        P = int(np.prod(self.shape))
        if P > _MAX_COVARIANCE_SIZE:
            raise ValueError(f"the full covariance has {P}² entries; use the per-irrep blocks instead")
        # Column q of C is the model's covariance operator applied to the basis matrix e_q: per irrep, embed the
        # block times e_q's components (O(P²) work instead of a P×P×P product).
        basis = np.eye(P).reshape((P,) + self.shape)
        C = np.zeros((P,) + self.shape)
        for name, Y in self._components(basis).items():
            C += self._embed(name, np.einsum("kl,plx->pkx", self.blocks[name], Y))
        return C.reshape(P, P)

    def wasserstein(self, other: MatrixModel) -> float:
        """The 2-Wasserstein distance between the two Gaussian laws, irrep by irrep (closed form)."""
        if type(other) is not type(self) or other.shape != self.shape:
            raise ValueError(f"W₂ needs two models of the same kind and shape, got {type(self).__name__}{self.shape} "
                             f"and {type(other).__name__}{other.shape}")
        total = float(np.sum((self.mean - other.mean) ** 2))
        for name, (dim, _) in self.irreps.items():
            total += dim * bures_squared(self.blocks[name], other.blocks[name])
        return float(np.sqrt(max(total, 0.0)))

    def expectation(self, invariant: Invariant) -> float:
        """The exact model expectation of a contraction :class:`Invariant` (Wick's theorem on the mean matrix and
        the full covariance; matrices of at most 4096 entries)."""
        return invariant.expectation(self.mean_matrix(), self.covariance().reshape(self.shape * 2))

    def predict(self, invariants: dict, n_samples: int = 20000, seed=None, batch_size: int = 2000) -> dict:
        """Model expectations of (e.g. cubic and quartic) invariants: name → (mean, standard error).

        Exact (standard error 0) for :class:`Invariant` contractions of matrices with at most 4096 entries; by
        exact sampling from the model (``n_samples`` draws, Monte-Carlo standard error) for any other callable
        and for larger matrices."""
        out = {}
        exact = {name: fn for name, fn in invariants.items() if isinstance(fn, Invariant)}
        if exact and int(np.prod(self.shape)) <= _MAX_COVARIANCE_SIZE:
            mean, cov = self.mean_matrix(), self.covariance().reshape(self.shape * 2)
            out = {name: (fn.expectation(mean, cov), 0.0) for name, fn in exact.items()}
        sampled = {name: fn for name, fn in invariants.items() if name not in out}
        if sampled:
            n_samples = check_positive_int(n_samples, "n_samples")
            acc = _Moments(sampled)
            rng = np.random.default_rng(seed)
            for i0 in range(0, n_samples, batch_size):
                acc.add(self.sample(min(batch_size, n_samples - i0), seed=rng))
            out.update({name: (mean, std / np.sqrt(acc.n)) for name, (mean, std) in acc.result().items()})
        return {name: out[name] for name in invariants}


def _chain(first, rest):
    yield first
    yield from rest


class _Moments:
    """Streaming mean and standard deviation of scalar functions of matrices."""

    def __init__(self, functions: dict):
        self.functions = functions
        self.n, self.shift = 0, {}
        self.s1 = dict.fromkeys(functions, 0.0)
        self.s2 = dict.fromkeys(functions, 0.0)

    def add(self, batch):
        for name, fn in self.functions.items():
            v = np.asarray(fn(batch), dtype=np.float64)
            c = self.shift.setdefault(name, float(v[0]))
            self.s1[name] += float(np.sum(v - c))
            self.s2[name] += float(np.sum((v - c) ** 2))
        self.n += batch.shape[0]

    def result(self) -> dict:
        out = {}
        for name in self.functions:
            m = self.s1[name] / self.n
            var = (self.s2[name] - self.n * m * m) / max(self.n - 1, 1)
            out[name] = (self.shift[name] + m, float(np.sqrt(max(var, 0.0))))
        return out


class SquareMatrixModel(MatrixModel):
    """The 13-parameter S_D-invariant Gaussian model of D×D matrices (Ramgoolam 2019; Hirst & Ramgoolam 2025).

    Parameters
    ----------
    D : int (>= 4) or shape (D, D)
    mean : (2,) means of s₁ = tr M/√D and s₂ = Σ_{i≠j} M_ij/√(D(D−1))
    cov0 : (2, 2) covariance of (s₁, s₂)
    cov_h : (3, 3) covariance of the three V_H copies (diagonal, symmetric and antisymmetric off-diagonal)
    lam2, lam3 : variances of the V₂ and V₃ components
    n_samples : int, optional
        Number of matrices the model was fitted from (None for a model given by its parameters).

    Attributes ``cov0``, ``cov_h``, ``lam2``, ``lam3`` read the blocks back.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.weights.analysis import SquareMatrixModel
    >>> iid = SquareMatrixModel.iid(6, variance=1.0)
    >>> fit = SquareMatrixModel.fit(iid.sample(4000, seed=0))
    >>> fit.n_parameters, bool(abs(fit.lam2 - 1.0) < 0.05 and abs(fit.lam3 - 1.0) < 0.05)
    (13, True)
    """

    def __init__(self, D, mean, cov0, cov_h, lam2: float, lam3: float, n_samples: int | None = None):
        shape = (int(D), int(D)) if np.ndim(D) == 0 else tuple(D)
        super().__init__(shape, mean, {"V0": cov0, "VH": cov_h, "V2": [[lam2]], "V3": [[lam3]]}, n_samples=n_samples)

    @classmethod
    def _from_blocks(cls, shape, mean, blocks, n_samples=None):
        return cls(shape, mean, blocks["V0"], blocks["VH"], blocks["V2"][0, 0], blocks["V3"][0, 0], n_samples)

    @property
    def D(self) -> int:
        return self.shape[0]

    cov0 = property(lambda self: self.blocks["V0"])
    cov_h = property(lambda self: self.blocks["VH"])
    lam2 = property(lambda self: float(self.blocks["V2"][0, 0]))
    lam3 = property(lambda self: float(self.blocks["V3"][0, 0]))

    @staticmethod
    def _irreps(*shape) -> dict:
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"SquareMatrixModel needs square matrices, got shape {shape}")
        D = shape[0]
        if D < 4:
            raise ValueError(f"the 13-parameter model needs D >= 4 (at D = {D} the irrep V_2 is empty), got D = {D}")
        return {"V0": (1, 2), "VH": (D - 1, 3), "V2": (D * (D - 3) // 2, 1), "V3": ((D - 1) * (D - 2) // 2, 1)}

    @staticmethod
    def _split(M: np.ndarray) -> dict:
        """Orthogonal pieces of a batch (n, D, D): V0 coordinates, V_H vectors and the V2, V3 matrices."""
        n, D, _ = M.shape
        diag = np.einsum("nii->ni", M)
        off = M.copy()
        off[:, np.arange(D), np.arange(D)] = 0.0
        S, A = (off + off.transpose(0, 2, 1)) / 2, (off - off.transpose(0, 2, 1)) / 2
        r = S.sum(axis=2)
        c = r.mean(axis=1) / (D - 1)  # S ∋ c (J − I)
        v2 = (r - r.mean(axis=1, keepdims=True)) / (D - 2)  # S ∋ v_i + v_j (i ≠ j)
        v3 = A.sum(axis=2) / D  # A ∋ v_i − v_j
        offmask = 1.0 - np.eye(D)
        S2 = S - (c[:, None, None] + v2[:, :, None] + v2[:, None, :]) * offmask
        A3 = A - (v3[:, :, None] - v3[:, None, :]) * offmask
        s = np.stack([diag.mean(axis=1) * np.sqrt(D), c * np.sqrt(D * (D - 1))], axis=1)
        u = np.stack([diag - diag.mean(axis=1, keepdims=True), np.sqrt(2.0 * (D - 2)) * v2, np.sqrt(2.0 * D) * v3],
                     axis=1)
        return {"V0": s[:, :, None], "VH": u, "V2": S2.reshape(n, 1, D * D), "V3": A3.reshape(n, 1, D * D)}

    def _components(self, M):
        return self._split(M)

    def _standard(self, name, n, k, rng):
        D = self.D
        if name == "VH":
            z = rng.standard_normal((n, k, D))
            return z - z.mean(axis=2, keepdims=True)
        return self._split(rng.standard_normal((n * k, D, D)))[name].reshape(n, k, D * D)

    def _embed(self, name, Y):
        n, D = Y.shape[0], self.D
        offmask = 1.0 - np.eye(D)
        if name == "V0":
            return (Y[:, 0, 0, None, None] * np.eye(D) / np.sqrt(D)
                    + Y[:, 1, 0, None, None] * offmask / np.sqrt(D * (D - 1)))
        if name == "VH":
            out = np.zeros((n, D, D))
            out[:, np.arange(D), np.arange(D)] = Y[:, 0]
            v2, v3 = Y[:, 1] / np.sqrt(2.0 * (D - 2)), Y[:, 2] / np.sqrt(2.0 * D)
            out += (v2[:, :, None] + v2[:, None, :] + v3[:, :, None] - v3[:, None, :]) * offmask
            return out
        return Y[:, 0].reshape(n, D, D)


class RectangularMatrixModel(MatrixModel):
    """The 5-parameter S_m × S_d-invariant Gaussian model of m×d matrices (rows and columns permuted independently).

    Parameters
    ----------
    shape : (m, d), m, d >= 2
    mean : mean of the grand coordinate s = Σ M_ij / √(md)
    var0, var_rows, var_cols, var_residual : the variances of s, of the row effects √d (r̄_i − M̄), the column
        effects √m (c̄_j − M̄) and the doubly centred residual, per component.
    n_samples : int, optional
        Number of matrices the model was fitted from (None for a model given by its parameters).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.weights.analysis import RectangularMatrixModel
    >>> truth = RectangularMatrixModel.iid((5, 3), variance=1.0)
    >>> fit = RectangularMatrixModel.fit(truth.sample(5000, seed=0))
    >>> fit.n_parameters, bool(fit.wasserstein(truth) < 0.1)
    (5, True)
    """

    def __init__(self, shape, mean, var0, var_rows, var_cols, var_residual, n_samples: int | None = None):
        super().__init__(shape, np.atleast_1d(mean), {"V0": [[var0]], "rows": [[var_rows]], "cols": [[var_cols]],
                                                      "residual": [[var_residual]]}, n_samples=n_samples)

    @classmethod
    def _from_blocks(cls, shape, mean, blocks, n_samples=None):
        return cls(shape, mean, *(blocks[k][0, 0] for k in ("V0", "rows", "cols", "residual")), n_samples=n_samples)

    @staticmethod
    def _irreps(*shape) -> dict:
        if len(shape) != 2 or min(shape) < 2:
            raise ValueError(f"RectangularMatrixModel needs m×d matrices with m, d >= 2, got shape {shape}")
        m, d = shape
        return {"V0": (1, 1), "rows": (m - 1, 1), "cols": (d - 1, 1), "residual": ((m - 1) * (d - 1), 1)}

    def _components(self, M):
        n, m, d = M.shape
        g = M.mean(axis=(1, 2))
        rows, cols = M.mean(axis=2) - g[:, None], M.mean(axis=1) - g[:, None]
        resid = M - rows[:, :, None] - cols[:, None, :] - g[:, None, None]
        return {"V0": (g * np.sqrt(m * d))[:, None, None], "rows": (np.sqrt(d) * rows)[:, None],
                "cols": (np.sqrt(m) * cols)[:, None], "residual": resid.reshape(n, 1, m * d)}

    def _standard(self, name, n, k, rng):
        m, d = self.shape
        if name in ("rows", "cols"):
            z = rng.standard_normal((n, k, m if name == "rows" else d))
            return z - z.mean(axis=2, keepdims=True)
        return self._components(rng.standard_normal((n * k, m, d)))["residual"].reshape(n, k, m * d)

    def _embed(self, name, Y):
        n, (m, d) = Y.shape[0], self.shape
        if name == "V0":
            return np.broadcast_to(Y[:, 0, 0, None, None] / np.sqrt(m * d), (n, m, d)).copy()
        if name == "rows":
            return np.broadcast_to(Y[:, 0, :, None] / np.sqrt(d), (n, m, d)).copy()
        if name == "cols":
            return np.broadcast_to(Y[:, 0, None, :] / np.sqrt(m), (n, m, d)).copy()
        return Y[:, 0].reshape(n, m, d)


def _tr(P):
    return np.einsum("nii->n", P)


class Invariant:
    r"""A polynomial invariant of a matrix written as an index contraction of copies of M.

    ``spec`` lists one index pair per factor M, e.g. ``"ij,jk,ki"`` for tr M³ = Σ M_ij M_jk M_ki and
    ``"ij,kj,kl,il"`` for tr (M Mᵀ)² (Mᵀ is a factor with its indices swapped); every index is summed. Such a
    contraction is invariant under S_D (square, one index set) or S_m × S_d (rectangular: row and column letters
    kept apart), and its expectation under a Gaussian law with mean μ and covariance C_{ij,kl} = Cov(M_ij, M_kl) is
    exact by Wick's (Isserlis') theorem:

    .. math::

        \mathbb E \prod_a M_{e_a} = \sum_{\text{partial pairings } P} \prod_{(a,b) \in P} C_{e_a e_b}
        \prod_{a \notin P} μ_{e_a}.

    Parameters
    ----------
    spec : str
        The index pairs, comma separated.
    evaluate : callable, optional
        A faster evaluation on a batch ``(n, *shape)`` than the generic ``einsum`` (must agree with it).

    Examples
    --------
    >>> import numpy as np
    >>> tr3 = Invariant("ij,jk,ki")
    >>> M = np.arange(9.0).reshape(1, 3, 3)
    >>> float(tr3(M)[0]) == float(np.trace(M[0] @ M[0] @ M[0]))
    True
    >>> float(tr3.expectation(np.zeros((3, 3)), np.zeros((3, 3, 3, 3))))
    0.0
    """

    def __init__(self, spec: str, evaluate: Callable | None = None):
        self.factors = tuple(spec.replace(" ", "").split(","))
        if not self.factors or any(len(f) != 2 or not f.isalpha() or "n" in f for f in self.factors):
            raise ValueError(f"an invariant is a comma-separated list of index pairs (letters other than n), got "
                             f"{spec!r}")
        self.spec, self._evaluate = ",".join(self.factors), evaluate

    @property
    def degree(self) -> int:
        return len(self.factors)

    def __call__(self, M: np.ndarray) -> np.ndarray:
        if self._evaluate is not None:
            return self._evaluate(M)
        return self.contract(M)

    def contract(self, M: np.ndarray) -> np.ndarray:
        """The generic evaluation on a batch ``(n, *shape)``: one ``einsum``."""
        return np.einsum(",".join("n" + f for f in self.factors) + "->n", *[M] * self.degree, optimize=True)

    def expectation(self, mean: np.ndarray, cov: np.ndarray) -> float:
        """Exact expectation under the Gaussian law with entry means ``mean`` (shape of M) and covariance ``cov``
        (shape + shape: cov[i, j, k, l] = Cov(M_ij, M_kl)), by Wick's theorem."""
        total = 0.0
        for pairs in _partial_pairings(tuple(range(self.degree))):
            paired = {a for pair in pairs for a in pair}
            subscripts = [self.factors[a] + self.factors[b] for a, b in pairs]
            subscripts += [self.factors[a] for a in range(self.degree) if a not in paired]
            operands = [cov] * len(pairs) + [mean] * (self.degree - len(paired))
            total += float(np.einsum(",".join(subscripts) + "->", *operands, optimize=True))
        return total

    def __repr__(self):
        return f"Invariant({self.spec!r})"


def _partial_pairings(items: tuple) -> list[list[tuple]]:
    """Every set of disjoint pairs of ``items`` (the empty set included)."""
    if len(items) < 2:
        return [[]]
    first, rest = items[0], items[1:]
    out = _partial_pairings(rest)  # ``first`` left unpaired
    for i, other in enumerate(rest):
        out += [[(first, other)] + p for p in _partial_pairings(rest[:i] + rest[i + 1:])]
    return out


#: Cubic and quartic S_D invariants of square matrices, in the spirit of the graph basis of Hirst & Ramgoolam:
#: vertex/edge sums and traces of words in M and Mᵀ (the evaluators are faster forms of the same contractions).
SQUARE_INVARIANTS: dict[str, Invariant] = {
    "Σ M_ii³": Invariant("ii,ii,ii", lambda M: (np.einsum("nii->ni", M) ** 3).sum(axis=1)),
    "Σ M_ij³": Invariant("ij,ij,ij", lambda M: (M**3).sum(axis=(1, 2))),
    "Σ M_ij² M_ji": Invariant("ij,ij,ji", lambda M: (M**2 * M.transpose(0, 2, 1)).sum(axis=(1, 2))),
    "tr M³": Invariant("ij,jk,ki", lambda M: _tr(M @ M @ M)),
    "tr M² Mᵀ": Invariant("ij,jk,ik", lambda M: _tr(M @ M @ M.transpose(0, 2, 1))),
    "1ᵀ M³ 1": Invariant("ij,jk,kl", lambda M: (M @ M @ M).sum(axis=(1, 2))),
    "Σ_i M_ii (Σ_j M_ij)²": Invariant("ii,ij,ik",
                                      lambda M: (np.einsum("nii->ni", M) * M.sum(axis=2) ** 2).sum(axis=1)),
    "Σ M_ij⁴": Invariant("ij,ij,ij,ij", lambda M: (M**4).sum(axis=(1, 2))),
    "Σ M_ij² M_ji²": Invariant("ij,ij,ji,ji", lambda M: (M**2 * M.transpose(0, 2, 1) ** 2).sum(axis=(1, 2))),
    "tr M⁴": Invariant("ij,jk,kl,li", lambda M: _tr(np.linalg.matrix_power(M, 4))),
    "tr (M Mᵀ)²": Invariant("ij,kj,kl,il", lambda M: _tr(np.linalg.matrix_power(M @ M.transpose(0, 2, 1), 2))),
    "tr M² Mᵀ²": Invariant("ij,jk,lk,il", lambda M: _tr(M @ M @ M.transpose(0, 2, 1) @ M.transpose(0, 2, 1))),
    "(Σ M_ij²)²": Invariant("ij,ij,kl,kl", lambda M: (M**2).sum(axis=(1, 2)) ** 2),
    "Σ_i (Σ_j M_ij)⁴": Invariant("ij,ik,il,im", lambda M: (M.sum(axis=2) ** 4).sum(axis=1)),
}

#: Cubic and quartic S_m × S_d invariants of rectangular matrices (n, m, d).
RECTANGULAR_INVARIANTS: dict[str, Invariant] = {
    "Σ M_ij³": SQUARE_INVARIANTS["Σ M_ij³"],
    "Σ_i (Σ_j M_ij)³": Invariant("ij,ik,il", lambda M: (M.sum(axis=2) ** 3).sum(axis=1)),
    "Σ_j (Σ_i M_ij)³": Invariant("ij,kj,lj", lambda M: (M.sum(axis=1) ** 3).sum(axis=1)),
    "1ᵀ M Mᵀ M 1": Invariant("ij,kj,kl", lambda M: (M @ M.transpose(0, 2, 1) @ M).sum(axis=(1, 2))),
    "Σ M_ij⁴": SQUARE_INVARIANTS["Σ M_ij⁴"],
    "tr (M Mᵀ)²": SQUARE_INVARIANTS["tr (M Mᵀ)²"],
    "(Σ M_ij²)²": SQUARE_INVARIANTS["(Σ M_ij²)²"],
    "Σ_i (Σ_j M_ij²)²": Invariant("ij,ij,ik,ik", lambda M: ((M**2).sum(axis=2) ** 2).sum(axis=1)),
}


def compare_invariants(matrices, model: MatrixModel, invariants: dict | None = None, n_model: int = 20000,
                       seed=None, batch_size: int = 256) -> list[dict]:
    """Data against model for higher invariants (Hirst & Ramgoolam's test of Gaussianity).

    For every invariant: its mean and standard deviation over the data ensemble (streamed), the model's expectation
    (exact by Wick's theorem for :class:`Invariant` contractions of matrices up to 4096 entries, with standard
    error 0; otherwise by exact sampling, ``n_model`` draws, with its Monte-Carlo standard error) and the deviation
    (data mean − model mean) / data std. |deviation| ≪ 1 means the fitted Gaussian explains the invariant.

    Returns a list of rows (dicts) with keys name, degree, data_mean, data_std, model_mean, model_se, deviation.

    Examples
    --------
    Data drawn from the model itself sit within a few standard errors of its predictions:

    >>> from meanfield.weights.analysis import SquareMatrixModel, compare_invariants
    >>> model = SquareMatrixModel.iid(4, variance=1.0)
    >>> rows = compare_invariants(model.sample(3000, seed=0), model, n_model=3000, seed=1)
    >>> sorted(rows[0])[:3], all(abs(r["deviation"]) < 0.3 for r in rows)
    (['data_mean', 'data_std', 'degree'], True)
    """
    square = isinstance(model, SquareMatrixModel)
    if invariants is None:
        invariants = SQUARE_INVARIANTS if square else RECTANGULAR_INVARIANTS
    data = _Moments(invariants)
    for batch in _batches(matrices, model._check_shape, batch_size):
        data.add(batch)
    if data.n < 2:
        raise ValueError("comparing invariants needs at least 2 data matrices")
    predicted = model.predict(invariants, n_samples=n_model, seed=seed)
    rows = []
    for name, (mean, std) in data.result().items():
        pm, pse = predicted[name]
        degree = invariants[name].degree if isinstance(invariants[name], Invariant) else None
        rows.append({"name": name, "degree": degree, "data_mean": mean, "data_std": std, "model_mean": pm,
                     "model_se": pse, "deviation": (mean - pm) / std if std > 0 else float("nan")})
    return rows
