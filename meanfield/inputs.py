"""Input laws ρ on R^d, and how each reduces the population risk's expectations to Gaussian pair moments.

The closed-form kernels are Gaussian pair moments K(p, q, q') = E[σ(u)σ(u')] of jointly Gaussian pre-activations. A
law states whether and how its expectations reduce to them (:meth:`InputLaw.unit_scale`):

- :class:`Gaussian` (x ~ N(0, κI)): ⟨b, x⟩ and ⟨b', x⟩ are jointly Gaussian (:attr:`InputLaw.gaussian_pre_activations`),
  so every unit, with or without biases, has K(κ⟨b, b'⟩, κ|b|², κ|b'|²);
- :class:`Sphere` (x uniform on S^{d−1}): x = g/|g| with g ~ N(0, I) and |g| independent of g/|g|, so a unit
  homogeneous of degree n has E_sphere = E_Gauss / E|g|^{2n}; other units and biases have no reduction;
- any other law states none by default: a population :class:`~meanfield.Problem` on it is refused in one line, and
  the law still serves to draw data sets (:func:`meanfield.data.draw`) and Monte-Carlo targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from ._validation import check_positive, check_positive_int
from .registry import INPUT_LAWS

__all__ = ["InputLaw", "Gaussian", "Sphere", "NoGaussianReduction"]


class NoGaussianReduction(ValueError):
    """An input law (with a unit, or with biases) whose expectations do not reduce to Gaussian pair moments, so that
    the population risk has no closed form.

    Examples
    --------
    >>> import meanfield as mf
    >>> try:
    ...     mf.Sphere(3).unit_scale(mf.activations.Erf())
    ... except NoGaussianReduction as err:
    ...     print(str(err)[:57])
    Erf() is not positively homogeneous, so its kernel on the
    """


def _double_factorial_odd(p: int) -> float:
    """(2p − 1)!! = 1·3·5···(2p − 1), with (−1)!! = 1."""
    return float(np.prod(np.arange(1, 2 * p, 2))) if p > 0 else 1.0


class InputLaw:
    """Base class of the input laws. Subclasses set ``d`` and implement the methods below.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> law = mf.Gaussian(d=3, variance=2.0)
    >>> isinstance(law, mf.InputLaw), law.kernel_scale, law.sample(4, rng=0).shape
    (True, 2.0, (4, 3))
    >>> mf.Sphere(3).kernel_scale       # E[xxᵀ] = I/d on the unit sphere
    0.3333333333333333
    """

    d: int
    #: Whether pre-activations ⟨b, x⟩ are jointly Gaussian with covariance κ⟨b, b'⟩ (κ = :attr:`kernel_scale`): then
    #: every unit's pair moments, biases included, are the Gaussian ones at scale κ.
    gaussian_pre_activations = False

    @property
    def kernel_scale(self) -> float:
        """κ such that E[x xᵀ] = κ I (and K(b, b') = κ |b||b'| J(θ)/(2π) on the laws that reduce)."""
        raise NotImplementedError

    def unit_scale(self, unit) -> float:
        """The κ at which a unit's kernel on this law is its Gaussian pair kernel K(κ⟨b, b'⟩, κ|b|², κ|b'|²): κ itself
        when the pre-activations are jointly Gaussian; on the sphere, a unit homogeneous of degree n has
        E_sphere = E_Gauss / E|g|^{2n} (g = |g| x, |g| independent of x), i.e. κ_n = (E|g|^{2n})^{−1/n} (1/d for
        n = 1). A law that states no reduction raises :class:`NoGaussianReduction`."""
        if self.gaussian_pre_activations:
            return self.kernel_scale
        raise NoGaussianReduction(
            f"{type(self).__name__} states no reduction to Gaussian pair moments (it does not set "
            "gaussian_pre_activations or override unit_scale), so a population problem on it has no closed form: "
            "draw a data set from it (mf.data.draw) for an EmpiricalProblem, or use Gaussian or Sphere inputs")

    def check_bias(self) -> None:
        """Raise :class:`NoGaussianReduction` unless neurons with biases have Gaussian pair moments on this law."""
        if not self.gaussian_pre_activations:
            raise NoGaussianReduction(
                f"biases need Gaussian inputs (the kernel of a biased unit on {type(self).__name__} has no closed "
                "form): use mf.Gaussian(d) or bias=False")

    def covariance(self) -> np.ndarray:
        """Second-moment matrix Σ = E[x xᵀ] = κ I."""
        return self.kernel_scale * np.eye(self.d)

    def coordinate_moment(self, p: int) -> float:
        """E[x_1^{2p}], the even moments of one coordinate."""
        raise NotImplementedError

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Draw ``n`` inputs, an array of shape (n, d); ``rng`` is a Generator or a seed."""
        raise NotImplementedError

    def sample_torch(self, n: int, generator, dtype=None):
        """Draw ``n`` inputs as a CPU torch tensor (n, d) with a torch ``generator`` (fp64 draws, then cast to
        ``dtype``), so that a run is reproducible on any device."""
        raise NotImplementedError(f"{type(self).__name__} has no torch sampler")

    def spec(self) -> dict:
        """A JSON-serialisable description (used in trajectory files)."""
        raise NotImplementedError


@INPUT_LAWS.register("gaussian")
@dataclass(frozen=True)
class Gaussian(InputLaw):
    """Centred isotropic Gaussian inputs x ~ N(0, variance · I_d).

    Parameters
    ----------
    d : int
        Input dimension.
    variance : float
        Per-coordinate variance s²; the kernel scale is κ = s².

    Examples
    --------
    >>> import meanfield as mf
    >>> mf.Gaussian(d=3, variance=0.5).kernel_scale
    0.5
    """

    d: int
    variance: float = 1.0
    gaussian_pre_activations = True

    def __post_init__(self):
        check_positive_int(self.d, "d")
        check_positive(self.variance, "variance")
        object.__setattr__(self, "d", int(self.d))
        object.__setattr__(self, "variance", float(self.variance))

    @property
    def kernel_scale(self) -> float:
        return self.variance

    def coordinate_moment(self, p: int) -> float:
        return self.variance**p * _double_factorial_odd(p)

    def sample(self, n, rng=None):
        rng = np.random.default_rng(rng)
        return np.sqrt(self.variance) * rng.standard_normal((int(n), self.d))

    def sample_torch(self, n, generator, dtype=None):
        import torch

        g = math.sqrt(self.variance) * torch.randn(int(n), self.d, generator=generator, dtype=torch.float64)
        return g.to(dtype or torch.float64)

    def spec(self):
        return {"law": "gaussian", "d": self.d, "variance": self.variance}


@INPUT_LAWS.register("sphere")
@dataclass(frozen=True)
class Sphere(InputLaw):
    """Inputs uniform on the unit sphere S^{d−1}; the kernel scale is κ = 1/d.

    Examples
    --------
    >>> import meanfield as mf
    >>> mf.Sphere(d=4).kernel_scale
    0.25
    """

    d: int

    def __post_init__(self):
        check_positive_int(self.d, "d")
        if self.d < 2:
            raise ValueError(f"Sphere needs d >= 2, got d={self.d}")
        object.__setattr__(self, "d", int(self.d))

    @property
    def kernel_scale(self) -> float:
        return 1.0 / self.d

    def coordinate_moment(self, p: int) -> float:
        # E[x_1^{2p}] = E[g_1^{2p}] / E|g|^{2p} for g ~ N(0, I_d) (independence of |g| and g/|g|).
        return _double_factorial_odd(p) / float(np.prod(self.d + 2.0 * np.arange(p)))

    def sample(self, n, rng=None):
        rng = np.random.default_rng(rng)
        g = rng.standard_normal((int(n), self.d))
        return g / np.linalg.norm(g, axis=1, keepdims=True)

    def sample_torch(self, n, generator, dtype=None):
        import torch

        g = torch.randn(int(n), self.d, generator=generator, dtype=torch.float64)
        return (g / torch.linalg.vector_norm(g, dim=1, keepdim=True)).to(dtype or torch.float64)

    def unit_scale(self, unit) -> float:
        if unit.degree is None:
            raise NoGaussianReduction(f"{unit!r} is not positively homogeneous, so its kernel on the sphere has no "
                                      "closed form here; use Gaussian inputs (mf.Gaussian(d))")
        n = unit.degree
        return self.kernel_scale if n == 1 else float(self.radial_moment_gaussian(2 * n) ** (-1.0 / n))

    def radial_moment_gaussian(self, q: float) -> float:
        """E|g|^q for g ~ N(0, I_d): converts Gaussian expectations of q-homogeneous functions to the sphere."""
        return float(np.exp(q / 2 * np.log(2.0) + gammaln((self.d + q) / 2) - gammaln(self.d / 2)))

    def spec(self):
        return {"law": "sphere", "d": self.d}


def input_law_from_spec(spec: dict) -> InputLaw:
    """Rebuild an input law from :meth:`InputLaw.spec`."""
    options = dict(spec)
    return INPUT_LAWS.create(options.pop("law", None), **options)
