"""Initial particle measures (all seeded)."""

from __future__ import annotations

import numpy as np

from ._validation import check_nonnegative, check_positive, check_positive_int, check_seed
from .measure import BiasedMeasure, ParticleMeasure
from .network import particle_type
from .registry import INITS

__all__ = ["sign_sphere", "gaussian", "paired", "symmetrize", "doubled", "doubled_start"]


def _biases(a, b, rng, bias_std) -> ParticleMeasure:
    """Neurons (a, b), with biases c_j ~ N(0, bias_std²) drawn after them when ``bias_std`` is given (0 gives zero
    biases that the flow then moves), so that the draws of a and b do not depend on it."""
    if bias_std is None:
        return ParticleMeasure(a, b)
    bias_std = float(bias_std)
    if not bias_std >= 0:
        raise ValueError(f"bias_std must be >= 0 (or None for neurons without biases), got {bias_std}")
    return BiasedMeasure(a, b, bias_std * rng.standard_normal(a.shape[0]))


@INITS.register("sign_sphere")
def sign_sphere(m: int, d: int, seed: int | None = None, radius: float = 1.0, a_scale: float = 1.0,
                bias_std: float | None = None) -> ParticleMeasure:
    """a_j = ±a_scale with independent fair signs, b_j uniform on the sphere of radius ``radius``; with ``bias_std``,
    biased neurons with c_j ~ N(0, bias_std²) (a :class:`~meanfield.measure.BiasedMeasure`).

    Examples
    --------
    >>> import meanfield as mf
    >>> mu = mf.init.sign_sphere(m=8, d=3, seed=0)
    >>> sorted(set(mu.a.tolist())), round(float(abs(mu.b[0]).sum() > 0), 0)
    ([-1.0, 1.0], 1.0)
    """
    m, d = check_positive_int(m, "m"), check_positive_int(d, "d")
    radius, a_scale = check_positive(radius, "radius"), check_positive(a_scale, "a_scale")
    rng = np.random.default_rng(None if seed is None else check_seed(seed, "seed"))
    a = a_scale * rng.choice([-1.0, 1.0], size=m)
    g = rng.standard_normal((m, d))
    return _biases(a, radius * g / np.linalg.norm(g, axis=1, keepdims=True), rng, bias_std)


@INITS.register("gaussian")
def gaussian(m: int, d: int, seed: int | None = None, a_std: float = 1.0, b_std: float | None = None,
             bias_std: float | None = None, outputs: int | None = None) -> ParticleMeasure:
    """a_j ~ N(0, a_std²), b_j ~ N(0, b_std² I_d) with b_std = 1/√d by default (|b_j| ≈ 1); with ``bias_std``,
    biases c_j ~ N(0, bias_std²); with ``outputs`` = K, a vector a_j ~ N(0, a_std² I_K) of output weights
    (a :class:`~meanfield.measure.MultiOutputMeasure`, for the cross-entropy loss).

    Examples
    --------
    >>> import meanfield as mf
    >>> mu = mf.init.gaussian(m=4, d=3, seed=0, bias_std=0.5)
    >>> type(mu).__name__, mu.c.shape
    ('BiasedMeasure', (4,))
    """
    m, d = check_positive_int(m, "m"), check_positive_int(d, "d")
    a_std = check_positive(a_std, "a_std")
    b_std = check_positive(b_std, "b_std") if b_std is not None else 1.0 / np.sqrt(d)
    rng = np.random.default_rng(None if seed is None else check_seed(seed, "seed"))
    if outputs is not None:
        outputs = check_positive_int(outputs, "outputs")
        a = a_std * rng.standard_normal((m, outputs))
        b = b_std * rng.standard_normal((m, d))
        c = None if bias_std is None else check_nonnegative(bias_std, "bias_std") * rng.standard_normal(m)
        return particle_type(outputs, c is not None)(a, b, c)
    a = a_std * rng.standard_normal(m)
    return _biases(a, b_std * rng.standard_normal((m, d)), rng, bias_std)


def symmetrize(mu: ParticleMeasure) -> ParticleMeasure:
    """The measure ½(μ + S#μ) for S(a, b) = (−a, −b): particles j and m + j are exact mirror images.

    A measure invariant under S keeps its predictor odd (linear for ReLU, since σ(z) − σ(−z) = z) along
    the flow whenever the target is odd (Hajjar & Chizat 2023, arXiv:2211.08771).

    Examples
    --------
    >>> import numpy as np
    >>> mu = symmetrize(sign_sphere(3, 4, seed=0))
    >>> mu.m, bool(np.array_equal(mu.b[3:], -mu.b[:3]))
    (6, True)
    """
    if isinstance(mu, BiasedMeasure):
        raise ValueError("symmetrize pairs (a, b) with (−a, −b), a symmetry that neurons with biases do not have "
                         "(a σ(z + c) − a σ(−z − c) = a(z + c)); use neurons without biases")
    return ParticleMeasure(np.concatenate([mu.a, -mu.a]), np.concatenate([mu.b, -mu.b]),
                           np.concatenate([mu.weights, mu.weights]) / 2)


@INITS.register("paired")
def paired(m: int, d: int, seed: int | None = None, base: str = "sign_sphere", **kwargs) -> ParticleMeasure:
    """A symmetric initialisation with m particles: m/2 drawn from ``base`` (an initialisation's registered name,
    :data:`meanfield.registry.INITS`, with its options ``kwargs``) and their mirror images (−a, −b).

    Examples
    --------
    >>> import numpy as np
    >>> mu = paired(6, 4, seed=0)
    >>> bool(np.array_equal(mu.a[3:], -mu.a[:3]) and np.array_equal(mu.b[3:], -mu.b[:3]))
    True
    """
    m = check_positive_int(m, "m")
    if m % 2:
        raise ValueError(f"a paired initialisation needs an even number of particles, got m={m}")
    return symmetrize(INITS[base](m // 2, d, seed, **kwargs))


def doubled(mu: ParticleMeasure) -> ParticleMeasure:
    """The "doubling trick": each particle (a, b) next to its copy (−a, b) (biases kept), masses halved, so that
    f(μ0) = 0 exactly while the neurons keep their law — the start of lazy-training comparisons, where the predictor
    α f(μ) must not blow up with α (Chizat, Oyallon & Bach 2019, arXiv:1812.07956).

    Examples
    --------
    >>> import numpy as np
    >>> mu = doubled(gaussian(3, 2, seed=0, bias_std=1.0))
    >>> mu.m, float(np.abs(mu.predict(np.ones((4, 2)))).max())
    (6, 0.0)
    """
    arrays = {name: np.concatenate([value, value]) for name, value in mu.arrays().items()}
    arrays["a"] = np.concatenate([mu.a, -mu.a])
    return type(mu).from_arrays(arrays, np.concatenate([mu.weights, mu.weights]) / 2)


@INITS.register("doubled")
def doubled_start(m: int, d: int, seed: int | None = None, base: str = "gaussian", **kwargs) -> ParticleMeasure:
    """The doubled start with m particles: :func:`doubled` of m/2 particles drawn from ``base`` (an initialisation's
    registered name, with its options ``kwargs``), so that f(μ0) = 0.

    Examples
    --------
    >>> import numpy as np
    >>> mu = doubled_start(8, 3, seed=0, base="gaussian", a_std=2.0)
    >>> mu.m, bool(np.array_equal(mu.state(), doubled(gaussian(4, 3, seed=0, a_std=2.0)).state()))
    (8, True)
    """
    m = check_positive_int(m, "m")
    if m % 2:
        raise ValueError(f"a doubled start needs an even number of particles, got m={m}")
    return doubled(INITS[base](m // 2, d, seed, **kwargs))
