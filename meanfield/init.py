"""Initial particle measures (all seeded)."""

from __future__ import annotations

import numpy as np

from ._validation import check_positive, check_positive_int
from .measure import ParticleMeasure

__all__ = ["sign_sphere", "gaussian", "paired", "symmetrize"]


def sign_sphere(m: int, d: int, seed=None, radius: float = 1.0, a_scale: float = 1.0) -> ParticleMeasure:
    """a_j = ±a_scale with independent fair signs, b_j uniform on the sphere of radius ``radius``.

    Examples
    --------
    >>> import meanfield as mf
    >>> mu = mf.init.sign_sphere(m=8, d=3, seed=0)
    >>> sorted(set(mu.a.tolist())), round(float(abs(mu.b[0]).sum() > 0), 0)
    ([-1.0, 1.0], 1.0)
    """
    m, d = check_positive_int(m, "m"), check_positive_int(d, "d")
    radius, a_scale = check_positive(radius, "radius"), check_positive(a_scale, "a_scale")
    rng = np.random.default_rng(seed)
    a = a_scale * rng.choice([-1.0, 1.0], size=m)
    g = rng.standard_normal((m, d))
    return ParticleMeasure(a, radius * g / np.linalg.norm(g, axis=1, keepdims=True))


def gaussian(m: int, d: int, seed=None, a_std: float = 1.0, b_std: float | None = None) -> ParticleMeasure:
    """a_j ~ N(0, a_std²), b_j ~ N(0, b_std² I_d) with b_std = 1/√d by default (|b_j| ≈ 1)."""
    m, d = check_positive_int(m, "m"), check_positive_int(d, "d")
    a_std = check_positive(a_std, "a_std")
    b_std = check_positive(b_std, "b_std") if b_std is not None else 1.0 / np.sqrt(d)
    rng = np.random.default_rng(seed)
    return ParticleMeasure(a_std * rng.standard_normal(m), b_std * rng.standard_normal((m, d)))


def symmetrize(mu: ParticleMeasure) -> ParticleMeasure:
    """The measure ½(μ + S#μ) for S(a, b) = (−a, −b): particles j and m + j are exact mirror images.

    A measure invariant under S keeps its predictor odd (linear for ReLU, since σ(z) − σ(−z) = z) along
    the flow whenever the target is odd (Hajjar & Chizat 2023, arXiv:2211.08771).
    """
    return ParticleMeasure(np.concatenate([mu.a, -mu.a]), np.concatenate([mu.b, -mu.b]),
                           np.concatenate([mu.weights, mu.weights]) / 2)


def paired(m: int, d: int, seed=None, base: str = "sign_sphere", **kwargs) -> ParticleMeasure:
    """A symmetric initialisation with m particles: m/2 drawn from ``base`` and their mirror images (−a, −b)."""
    m = check_positive_int(m, "m")
    if m % 2:
        raise ValueError(f"a paired initialisation needs an even number of particles, got m={m}")
    draw = {"sign_sphere": sign_sphere, "gaussian": gaussian}.get(base)
    if draw is None:
        raise ValueError(f"unknown base initialisation {base!r}; use 'sign_sphere' or 'gaussian'")
    return symmetrize(draw(m // 2, d, seed, **kwargs))
