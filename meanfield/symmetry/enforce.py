"""Enforcing a symmetry: evolve one representative per orbit and derive its images (exact pairing)."""

from __future__ import annotations

import numpy as np

from ..measure import ParticleMeasure
from ..problem import Problem, ProblemVariant
from .maps import Symmetry, orbit

__all__ = ["SymmetricProblem", "orbit_measure"]


def _elements(group) -> list[Symmetry]:
    if isinstance(group, Symmetry):
        return orbit(group)
    elements = list(group)
    if not elements or not all(isinstance(g, Symmetry) for g in elements):
        raise TypeError("group must be a Symmetry or a list of Symmetry elements (including the identity)")
    return elements


def orbit_measure(mu: ParticleMeasure, group) -> ParticleMeasure:
    """The T̃-invariant measure (1/k) Σ_g g̃#μ: each particle of μ with its k images, masses divided by k.

    Examples
    --------
    >>> import meanfield as mf
    >>> from meanfield.symmetry import sign_flip
    >>> mu = orbit_measure(mf.init.sign_sphere(3, 2, seed=0), sign_flip(2))
    >>> mu.m, bool((mu.a[:3] == -mu.a[3:]).all())
    (6, True)
    """
    elements = _elements(group)
    k = len(elements)
    return ParticleMeasure(np.concatenate([g.parity * mu.a for g in elements]),
                           np.concatenate([mu.b @ g.matrix.T for g in elements]),
                           np.concatenate([mu.weights / k] * k))


class SymmetricProblem(ProblemVariant):
    """A problem whose flow is restricted to measures invariant under a finite group G of symmetries.

    The state holds one representative per orbit; the field at a representative is computed from all images
    (k times fewer evaluation points than the full flow), and the images are never stored, so the pairing is
    exact. Equivalent to the full flow from :func:`orbit_measure` of the representatives whenever the target and
    the input law have the declared symmetries (f*∘T = ε f*, T#ρ = ρ): by equivariance, ψ(T b) = ε ψ(b).

    Parameters
    ----------
    problem : Problem
    group : Symmetry or list of Symmetry
        A generator (its cyclic group is enumerated) or the list of all group elements.

    Examples
    --------
    The flow of the representatives equals the full flow of their orbit measure:

    >>> import numpy as np, meanfield as mf
    >>> from meanfield.symmetry import SymmetricProblem, orbit_measure, sign_flip
    >>> full = mf.Problem(mf.CubicTarget(np.ones(4)), mf.Gaussian(4))
    >>> reps = mf.init.sign_sphere(6, 4, seed=0)
    >>> sym = SymmetricProblem(full, sign_flip(4))
    >>> a = mf.simulate(sym, reps, t_max=1.0, dt=0.1, backend="numpy")
    >>> b = mf.simulate(full, orbit_measure(reps, sign_flip(4)), t_max=1.0, dt=0.1, backend="numpy")
    >>> bool(np.isclose(a.risk[-1], b.risk[-1], rtol=1e-10))
    True
    """

    #: Population problems only: the images rely on f*∘T = ε f* and T#ρ = ρ, which a data set has not in general.
    objectives = (Problem,)
    bias_refusal = ("its images act on b only and are written for neurons without biases; run the full problem")
    regularisable = True  # its images are isometries of the neurons: a penalty's r and the output scale are invariant

    def __init__(self, problem: Problem, group):
        super().__init__(problem)
        self.elements = _elements(group)
        for g in self.elements:
            if g.d != problem.d:
                raise ValueError(f"symmetry {g!r} acts on dimension {g.d}, the problem has d = {problem.d}")

    def variant_spec(self) -> dict:
        return {"enforced_symmetry": [g.name for g in self.elements]}

    def self_field(self, bound, b, coef):
        """The field of all images T b_k with coefficients ε c_k / |G|. The risk then needs no correction: over an
        orbit, c·ψ and c·F* are the same for every image (ψ(Tb) = εψ(b)), so the representatives' sums with their
        own weights are the full measure's."""
        bk = bound.backend
        maps = bound.constant("symmetry_maps", lambda bk: [(bk.asarray(g.matrix.T), float(g.parity))
                                                           for g in self.elements])
        k = len(maps)
        sources = bk.concat([b @ Tt for Tt, _ in maps], axis=0)
        coefs = bk.concat([(eps / k) * coef for _, eps in maps], axis=0)
        return bk.field(b, sources, coefs, self.scale, self.unit)
