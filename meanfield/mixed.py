r"""The Gaussian pair kernel between two different units — a student σ against a teacher τ — by Mehler's formula:

.. math::

    K(p, q, q') = E[σ(u) τ(u')] = \sum_{k ≤ K} s_k(\sqrt q, c)\, t_k(\sqrt{q'}, c')\, ρ^k, \qquad ρ = p/\sqrt{q q'},

with s_k, t_k the Hermite coefficients of z ↦ σ(√q z + c) and z ↦ τ(√q' z + c') (:mod:`meanfield.hermite`). The
student's derivatives: ∂_pK = E[σ'(u)τ'(u')] (Price), ∂_cK = E[σ'(u)τ(u')], and ∂_qK = ½E[σ''(u)τ(u')] with the
coefficients of σ'' from those of σ' by Gaussian integration by parts, E[σ''(s g + c) h_k(g)] = √(k+1)/s ·
E[σ'(s g + c) h_{k+1}(g)], so that units with kinks (σ'' a Dirac mass: the ReLU family) need no second derivative.

The sums converge as fast as the product of the two coefficient sequences: a kinked student against a smooth teacher
converges geometrically. The order K is the smallest at which, for each of the four series, the bound
Σ_{k>K} max_j|L_jk|/‖L_j‖ · max_i|R_ik|/‖R_i‖ (coefficients up to ``max_order``; ‖·‖ their ℓ² norm) is at most
``tol``, with K at least 20 orders below ``max_order`` (those are the evidence that the series has settled): by
|ρ| ≤ 1 it bounds the truncation error relative to the product of the two sides' norms.
"""

from __future__ import annotations

import functools

import numpy as np

from .activations import Activation
from .hermite import MehlerSeries, SeriesKernel, hermite_basis

__all__ = ["MixedKernel", "MixedUnit", "mixed_kernel"]

EVIDENCE = 20


class MixedKernel(SeriesKernel):
    """The Gaussian pair kernel of a student unit against a teacher unit, a kernel of a pair of units (not a unit):
    the field of a teacher's neurons at the student's is its Mehler series summed over pairs
    (:class:`~meanfield.kernels.routes.MixedSeries`); :meth:`pair_kernel` and :meth:`shifted_pair_kernel` evaluate it
    on a tile. Gaussian inputs.

    Parameters
    ----------
    student, teacher : Activation
        The two units (numpy σ and σ' of each are used).
    tol : float
        Relative truncation tolerance of the series.
    max_order, nodes : int
        Largest order tried; Gauss–Hermite points of the coefficients (numpy's rule overflows beyond about 350).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.activations import RELU, Erf
    >>> mixed = MixedKernel(RELU, Erf())
    >>> k, _, _ = mixed.pair_kernel(np.array([[1.0]]), np.array([[1.0]]), np.array([[1.0]]), np)
    >>> bool(np.isclose(k[0, 0], 1 / np.sqrt(3 * np.pi)))   # E[relu(g) erf(g)] = ½ E[g erf(g)] = ½ E erf'(g)
    True
    """

    def __init__(self, student: Activation, teacher: Activation, tol: float = 1e-10, max_order: int = 280,
                 nodes: int = 300):
        if not 0 < tol < 1:
            raise ValueError(f"the Hermite tolerance must lie in (0, 1), got {tol}")
        self.student, self.teacher, self.tol = student, teacher, float(tol)
        self.basis = hermite_basis(int(nodes), int(max_order))
        self.name = f"{student.name}|{teacher.name}"
        self.last_order, self.last_error = 0, 0.0

    def spec(self):
        return {"activation": self.name, "tol": self.tol}

    def __repr__(self):
        return f"MixedKernel(student={self.student!r}, teacher={self.teacher!r})"

    def _series(self, unit, s, shift):
        """Coefficients of σ and σ' (:meth:`~meanfield.activations.Activation.hermite_coefficients`: exact where the
        unit has them, kinks included, else by Gauss–Hermite quadrature on this kernel's nodes)."""
        return unit.hermite_coefficients(s, shift, self.basis.max_order, self.basis)

    def _student_series(self, s, shift):
        values, slopes = self._series(self.student, s, shift)
        # σ'' coefficients from σ' by integration by parts; at s = 0 they multiply b = 0 and are set to 0.
        k = np.arange(self.basis.max_order + 1)
        curvature = np.zeros_like(slopes)
        live = s > 0
        curvature[live, :-1] = np.sqrt(k[1:]) * slopes[live, 1:] / s[live, None]
        return values, slopes, curvature

    def _teacher_series(self, s, shift):
        return self._series(self.teacher, s, shift)

    def _order(self, pairs) -> int:
        """The smallest K at which every pair's truncation bound (module docstring) is at most tol."""
        bounds = []
        for left, right in pairs:
            lead = np.max(np.abs(left) / np.maximum(np.linalg.norm(left, axis=1, keepdims=True), 1e-300), axis=0)
            tail = np.max(np.abs(right) / np.maximum(np.linalg.norm(right, axis=1, keepdims=True), 1e-300), axis=0)
            terms = lead * tail
            bounds.append(terms.sum() - np.cumsum(terms))  # Σ_{k > K}
        bound = np.max(bounds, axis=0)
        # The last EVIDENCE orders are only the evidence that the series has settled: K must come before them.
        ok = (bound <= self.tol) & (np.arange(bound.size) < bound.size - EVIDENCE)
        if not ok.any():
            raise ValueError(f"the mixed kernel of a {self.student.name} student and a {self.teacher.name} teacher "
                             f"needs more than max_order = {self.basis.max_order} Hermite terms for tol = {self.tol:g} "
                             f"(bound {bound[-EVIDENCE - 1]:.1e}): raise tol, or give the teacher a smoother unit")
        order = int(np.argmax(ok))
        self.last_order, self.last_error = order, float(bound[order])
        return order

    def mehler_series(self, q, q2, c=None, c2=None) -> MehlerSeries:
        shifted = c is not None
        s1, s2 = np.sqrt(np.maximum(q, 0.0)), np.sqrt(np.maximum(q2, 0.0))
        values, slopes, curvature = self._student_series(s1, c)
        t_values, t_slopes = self._teacher_series(s2, c2)
        pairs = [(values, t_values), (slopes, t_slopes), (0.5 * curvature, t_values)]
        if shifted:
            pairs.append((slopes, t_values))
        order = self._order(pairs)
        return MehlerSeries([left[:, :order + 1] for left, _ in pairs], [right[:, :order + 1] for _, right in pairs])


#: The former name of :class:`MixedKernel`.
MixedUnit = MixedKernel


@functools.lru_cache(maxsize=32)
def mixed_kernel(student: Activation, teacher: Activation) -> MixedKernel:
    """The :class:`MixedKernel` of a student unit against a teacher unit with the default options, one per pair of
    units (its :attr:`~MixedKernel.last_order` is that of the last field computed with it).

    Examples
    --------
    >>> from meanfield.activations import RELU, Erf
    >>> mixed_kernel(RELU, Erf()) is mixed_kernel(RELU, Erf())
    True
    """
    return MixedKernel(student, teacher)
