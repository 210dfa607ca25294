"""Detection of symmetries of a target, of its hidden subspace, and of the asymmetry of a particle measure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..compare import function_distance, wasserstein
from ..inputs import InputLaw
from ..measure import ParticleMeasure
from .maps import Symmetry, coordinate_reflection, permutation, sign_flip, subspace_rotation

__all__ = ["SymmetryReport", "candidate_symmetries", "detect_symmetries", "hidden_subspace", "asymmetry"]


@dataclass
class SymmetryReport:
    """Outcome of testing one candidate map T: the parity that fits best and its relative error
    ‖f*∘T − ε f*‖ / ‖f*‖ on the sample; ``holds`` when that error is below the tolerance.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.symmetry import detect_symmetries
    >>> report = detect_symmetries(mf.LinearTarget(np.ones(3)), mf.Gaussian(3))[0]
    >>> report.symmetry.name, report.parity, report.holds
    ('-I', -1, True)
    """

    symmetry: Symmetry
    parity: int
    relative_error: float
    holds: bool
    input_law_invariant: bool

    def __str__(self):
        mark = "holds" if self.holds else "fails"
        return f"{self.symmetry.name:>14s} parity {self.parity:+d}: relative error {self.relative_error:.2e} ({mark})"


def candidate_symmetries(d: int, Q=None, n_random: int = 4, seed: int = 0) -> list[Symmetry]:
    """−I, the coordinate reflections, the adjacent transpositions, a cyclic shift, random permutations and,
    if a subspace basis Q is given, random elements of O(H^⊥).

    Examples
    --------
    >>> from meanfield.symmetry import candidate_symmetries
    >>> names = [s.name for s in candidate_symmetries(3, n_random=0)]
    >>> names[:4]
    ['-I', 'x0->-x0', 'x1->-x1', 'x2->-x2']
    """
    rng = np.random.default_rng(seed)
    out = [sign_flip(d, 1)] + [coordinate_reflection(d, i) for i in range(d)]
    for i in range(d - 1):
        perm = np.arange(d)
        perm[[i, i + 1]] = perm[[i + 1, i]]
        out.append(permutation(perm))
    out.append(permutation(np.roll(np.arange(d), 1)))
    out += [permutation(rng.permutation(d)) for _ in range(n_random)]
    if Q is not None:
        out += [subspace_rotation(Q, rng) for _ in range(n_random)]
    return out


def _law_invariant(inputs: InputLaw, sym: Symmetry) -> bool:
    # Gaussian N(0, s²I) and the uniform law on the sphere are invariant under every orthogonal map.
    return sym.d == inputs.d


def detect_symmetries(target, inputs: InputLaw, candidates=None, n_samples: int = 4096, seed: int = 0,
                      tol: float = 1e-8) -> list[SymmetryReport]:
    """Test each candidate map T on a seeded sample: report the parity ε ∈ {±1} minimising
    ‖f*∘T − ε f*‖ / ‖f*‖, whether it holds (error <= ``tol``) and whether the input law is T-invariant.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> t = mf.CubicTarget(np.ones(4))
    >>> [str(r.symmetry.name) for r in detect_symmetries(t, mf.Gaussian(4)) if r.holds][:2]
    ['-I', 'perm[1, 0, 2, 3]']
    """
    x = inputs.sample(n_samples, seed)
    y = target(x)
    norm = np.linalg.norm(y)
    if norm == 0:
        raise ValueError("the target vanishes on the sample: every map is a symmetry")
    reports = []
    for sym in candidates if candidates is not None else candidate_symmetries(inputs.d):
        if sym.d != inputs.d:
            raise ValueError(f"candidate {sym!r} acts on dimension {sym.d}, the inputs have d = {inputs.d}")
        yt = target(sym.apply_inputs(x))
        errors = {eps: np.linalg.norm(yt - eps * y) / norm for eps in (1, -1)}
        eps = min(errors, key=errors.get)
        reports.append(SymmetryReport(Symmetry(sym.matrix, eps, sym.name), eps, float(errors[eps]),
                                      bool(errors[eps] <= tol), _law_invariant(inputs, sym)))
    return reports


def hidden_subspace(target, inputs: InputLaw, n_samples: int = 2000, seed: int = 0, rel_tol: float = 1e-6,
                    step: float = 1e-5):
    """Estimate the subspace H that f* depends on from the gradient outer product M = E[∇f* ∇f*ᵀ]
    (central finite differences on a seeded sample): f*(x) = g(P_H x) gives range(M) = H.

    Returns
    -------
    Q : array (d, d_H)
        Orthonormal basis of the eigenvectors whose eigenvalues exceed ``rel_tol`` times the largest.
    eigenvalues : array (d,)
        Eigenvalues of M, decreasing.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.symmetry import hidden_subspace
    >>> U = np.array([[1.0, 1.0, 0.0, 0.0]]) / np.sqrt(2)
    >>> Q, eigenvalues = hidden_subspace(mf.TeacherNetwork([1.0], U), mf.Gaussian(4))
    >>> Q.shape, bool(np.allclose(np.abs(Q[:, 0]), np.abs(U[0])))
    ((4, 1), True)
    """
    x = inputs.sample(n_samples, seed)
    d = inputs.d
    grads = np.empty((n_samples, d))
    for i in range(d):
        e = np.zeros(d)
        e[i] = step
        grads[:, i] = (target(x + e) - target(x - e)) / (2 * step)
    M = grads.T @ grads / n_samples
    vals, vecs = np.linalg.eigh(M)
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    dim = int(np.sum(vals > rel_tol * vals[0])) if vals[0] > 0 else 0
    return vecs[:, :dim], vals


def asymmetry(mu: ParticleMeasure, symmetry: Symmetry, inputs: InputLaw, activation="relu", backend="auto",
              measure_distance: bool = True) -> dict:
    """How far μ is from T̃-invariance.

    ``function``: the L²(ρ) distance ‖f(μ)∘T − ε f(μ)‖ in closed form (f(μ)∘T is the predictor of (a, Tᵀb), so this is a
    quadratic form in K); ``relative``: that divided by ‖f(μ)‖; ``measure``: W₂(μ, T̃#μ) between the neuron
    clouds (POT). ``activation`` is the unit, as for :func:`~meanfield.compare.function_distance`.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.symmetry import asymmetry, orbit_measure, sign_flip
    >>> mu = mf.init.sign_sphere(8, 3, seed=0)
    >>> odd = orbit_measure(mu, sign_flip(3))            # μ and its image under (a, b) ↦ (−a, −b)
    >>> asymmetry(odd, sign_flip(3), mf.Gaussian(3))["relative"] < 1e-12
    True
    >>> asymmetry(mu, sign_flip(3), mf.Gaussian(3))["relative"] > 0.1
    True
    """
    if symmetry.d != mu.d:
        raise ValueError(f"the symmetry acts on dimension {symmetry.d}, the measure has d = {mu.d}")
    composed = mu.replaced(b=mu.b @ symmetry.matrix)
    signed = mu.replaced(a=symmetry.parity * mu.a)
    dist = function_distance(composed, signed, inputs, activation, backend)
    zero = ParticleMeasure(np.zeros(1), np.zeros((1, mu.d)))
    size = function_distance(mu, zero, inputs, activation, backend)
    out = {"function": dist, "relative": dist / size if size > 0 else float("nan")}
    if measure_distance:
        out["measure"] = wasserstein(mu, symmetry.apply_measure(mu))
    return out
