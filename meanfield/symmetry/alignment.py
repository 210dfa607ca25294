"""Alignment of neurons with a hidden subspace H (Hajjar & Chizat 2023, §4.2 and §5)."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from ..measure import ParticleMeasure

__all__ = ["neuron_alignment", "output_masses", "alignment_observables"]


def neuron_alignment(mu: ParticleMeasure, Q) -> np.ndarray:
    """Angle φ_j ∈ [0, π/2] between each neuron b_j and H = span(Q): cos φ_j = |Qᵀb_j| / |b_j| (π/2 for b_j = 0).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.symmetry import neuron_alignment
    >>> mu = mf.ParticleMeasure([1.0, 1.0], [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    >>> np.round(neuron_alignment(mu, np.eye(3)[:, :2]), 6).tolist()    # in H; at 45° to H
    [0.0, 0.785398]
    """
    norm = np.linalg.norm(mu.b, axis=1)
    proj = np.linalg.norm(mu.b @ np.asarray(Q), axis=1)
    cos = np.divide(proj, norm, out=np.zeros_like(norm), where=norm > 0)
    return np.arccos(np.clip(cos, 0.0, 1.0))


def output_masses(mu: ParticleMeasure) -> tuple[float, float]:
    """Total positive and negative output mass Σ_j w_j |a_j| |b_j| over a_j > 0 and a_j < 0 (2-homogeneous mass).

    Examples
    --------
    >>> import meanfield as mf
    >>> from meanfield.symmetry import output_masses
    >>> output_masses(mf.ParticleMeasure([2.0, -1.0], [[1.0, 0.0], [0.0, 3.0]]))   # masses ½ each
    (1.0, 1.5)
    """
    mass = mu.weights * np.abs(mu.a) * np.linalg.norm(mu.b, axis=1)
    return float(mass[mu.a > 0].sum()), float(mass[mu.a < 0].sum())


def positive_mass_limit(d_hidden: int) -> float:
    """α = 2√π Γ((d_H + 1)/2) / Γ(d_H/2), the total positive mass the paper predicts for f* = |x_H| on the sphere."""
    return float(2 * np.sqrt(np.pi) * np.exp(gammaln((d_hidden + 1) / 2) - gammaln(d_hidden / 2)))


def alignment_observables(Q, bins: int = 30) -> dict:
    """Observables for :func:`meanfield.simulate` (saved with every snapshot):

    ``angle_hist_pos`` / ``angle_hist_neg``: mass-weighted histograms of φ over ``bins`` bins of [0, π/2] for a > 0 and
    a < 0; ``mass_pos`` / ``mass_neg``: total output masses; ``mean_angle_pos``: mass-weighted mean angle of the
    positive part (0 when it is fully aligned with H); ``misaligned_pos``: positive mass outside H, Σ w|a||b| sin φ.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.symmetry import alignment_observables
    >>> obs = alignment_observables(np.eye(4)[:, :2], bins=10)
    >>> sorted(obs)[:3]
    ['angle_hist_neg', 'angle_hist_pos', 'mass_neg']
    >>> obs["angle_hist_pos"](mf.init.sign_sphere(16, 4, seed=0)).shape
    (10,)
    """
    Q = np.asarray(Q, dtype=np.float64)
    edges = np.linspace(0.0, np.pi / 2, bins + 1)

    def parts(mu):
        phi = neuron_alignment(mu, Q)
        mass = mu.weights * np.abs(mu.a) * np.linalg.norm(mu.b, axis=1)
        return phi, mass, mu.a > 0

    def hist(sign):
        def fn(mu):
            phi, mass, pos = parts(mu)
            sel = pos if sign > 0 else ~pos & (mu.a < 0)
            return np.histogram(phi[sel], bins=edges, weights=mass[sel])[0]
        return fn

    def mean_angle(mu):
        phi, mass, pos = parts(mu)
        total = mass[pos].sum()
        return float((phi[pos] * mass[pos]).sum() / total) if total > 0 else float("nan")

    def misaligned(mu):
        phi, mass, pos = parts(mu)
        return float((mass[pos] * np.sin(phi[pos])).sum())

    return {"angle_hist_pos": hist(1), "angle_hist_neg": hist(-1),
            "mass_pos": lambda mu: output_masses(mu)[0], "mass_neg": lambda mu: output_masses(mu)[1],
            "mean_angle_pos": mean_angle, "misaligned_pos": misaligned}

