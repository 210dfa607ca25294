r"""Activations: one object per unit, carrying its finite function and its closed-form dual kernel.

The finite network (numpy, torch) and its mean-field limit come from the same description. For unit vectors u, u'
with cosine c and g ~ N(0, I), the *dual kernel* of σ is

.. math::

    k(c) = E[σ(⟨g, u⟩) σ(⟨g, u'⟩)],

and a positively homogeneous σ of degree n gives, for x ~ N(0, κI),
K(b, b') = E[σ(⟨b, x⟩) σ(⟨b', x⟩)] = κⁿ |b|ⁿ |b'|ⁿ k(cos θ), with gradient (n = 1)

.. math::

    ∇_b K(b, b') = κ |b'| [ (k − c k')(c) · b/|b| + k'(c) · b'/|b'| ].

The backends evaluate every all-pairs field from ``dual`` (see :mod:`meanfield.kernels.field`); a new activation
is one new subclass. For x uniform on the sphere the radial factor of a homogeneous σ separates (κ = 1/d for n = 1).

ReLU's dual kernel is the first arc-cosine kernel (Cho & Saul 2009): k(c) = J(θ)/(2π), J(θ) = sin θ + (π − θ) cos θ,
k'(c) = (π − θ)/(2π), k − c k' = sin θ/(2π). The leaky ReLU σ_α(z) = max(z, αz) = αz + (1 − α) relu(z) has
k_α(c) = α c + (1 − α)² k(c).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from .hermite import MehlerSeries, SeriesKernel, hermite_basis, pair_correlation, truncated_power_coefficients
from .kernels.numpy_backend import NumpyBackend
from .registry import UNITS

__all__ = ["NUMPY", "Activation", "MehlerUnit", "SmoothUnit", "ReLUFamily", "LeakyReLU", "ReLU", "Abs", "RELU",
           "ReLUPower", "Erf", "HermiteActivation", "GELU", "Tanh", "Sigmoid", "SiLU", "Softplus", "as_activation",
           "ACTIVATIONS", "biased_units"]

#: The numpy array namespace: a unit's numpy evaluation is its :meth:`Activation.value` on it.
NUMPY = NumpyBackend()
_TORCH = []   # the torch namespace, made on first use (torch is imported only then)


def _torch_namespace():
    if not _TORCH:
        from .kernels import get_backend

        _TORCH.append(get_backend("torch"))
    return _TORCH[0]


def _floating(z):
    z = np.asarray(z)
    return z if np.issubdtype(z.dtype, np.floating) else z.astype(np.float64)


class Activation:
    """A unit σ: its finite function and derivative written once against an array namespace (:meth:`value`,
    :meth:`derivative`: numpy arrays, torch tensors), from which ``unit(z)`` (numpy) and :meth:`torch` (differentiable
    by autograd, for the finite network) follow, and its Gaussian moments in one or more of the forms the routes of
    :mod:`meanfield.kernels.routes` use: a dual kernel :meth:`dual` (degree 1), a closed-form pair kernel
    :meth:`pair_kernel` (with biases :meth:`shifted_pair_kernel`), a Mehler series (:class:`MehlerUnit`) or a ReLU
    decomposition σ(z) = λ z + ρ relu(z) (:attr:`relu_decomposition`). The route of a pair of units is chosen in one
    place (:func:`~meanfield.kernels.routes.pair_route`).

    Examples
    --------
    A new unit is one class. σ(z) = cos z has the Gaussian pair kernel
    E[cos u cos u'] = ½[e^{−(q+q'−2p)/2} + e^{−(q+q'+2p)/2}]; a student equal to its teacher has zero risk:

    >>> import numpy as np, meanfield as mf
    >>> class Cos(mf.Activation):
    ...     name, degree = "cos", None
    ...     def value(self, z, nx): return nx.cos(z)
    ...     def derivative(self, z, nx=mf.activations.NUMPY): return -nx.sin(z)
    ...     def pair_kernel(self, p, q, q2, nx):
    ...         plus, minus = nx.exp(-0.5 * (q + q2 - 2 * p)), nx.exp(-0.5 * (q + q2 + 2 * p))
    ...         return 0.5 * (plus + minus), 0.5 * (plus - minus), -0.25 * (plus + minus)
    >>> teacher = mf.TeacherNetwork([1.0], [[1.0, 0.0]], activation=Cos())
    >>> problem = mf.Problem(teacher, mf.Gaussian(2), activation=Cos())
    >>> abs(problem.risk(mf.ParticleMeasure([1.0], [[1.0, 0.0]]), backend="numpy")) < 1e-15
    True
    """

    name = "abstract"
    #: Degree n of positive homogeneity (σ(t z) = tⁿ σ(z) for t > 0), None when σ is not homogeneous.
    degree = 1

    def value(self, z, nx):
        """σ(z) elementwise on an array of the namespace ``nx`` (a backend: ``nx.exp``, ``nx.erf``, ``nx.where``, …)."""
        raise NotImplementedError(f"{type(self).__name__} gives no value(z, nx)")

    def derivative(self, z, nx=NUMPY):
        """σ'(z) elementwise on an array of the namespace ``nx`` (numpy by default), with the symmetric choice at
        kinks."""
        raise NotImplementedError(f"{type(self).__name__} gives no derivative(z, nx)")

    def __call__(self, z):
        return self.value(_floating(z), NUMPY)

    def torch(self, z):
        """σ on torch tensors (differentiable by autograd, for the finite network): :meth:`value` on torch."""
        return self.value(z, _torch_namespace())

    def torch_derivative(self, z):
        """σ'(z) on torch tensors: :meth:`derivative` on torch (for a unit that gives only numpy and torch functions,
        autograd of :meth:`torch`)."""
        if type(self).value is not Activation.value:
            return self.derivative(z, _torch_namespace())
        import torch

        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            (slope,) = torch.autograd.grad(self.torch(z).sum(), z)
        return slope

    def dual(self, c, nx):
        """(k(c), k'(c), k(c) − c k'(c)) elementwise on an array of cosines, with the array functions of the backend
        ``nx`` (numpy or torch arrays)."""
        raise NotImplementedError

    def gaussian_mean_derivative(self, s, shift=None):
        """E[σ'(s g + c)] for g ~ N(0, 1), s ≥ 0 and shifts c (0 when None; arrays): by Stein's lemma
        E[σ(⟨u, x⟩ + c) x] = κ u E[σ'(√κ|u| g + c)] for x ~ N(0, κI), the linear moment of a teacher neuron. By
        Gauss–Hermite quadrature of :meth:`derivative` (exact to round-off for smooth units); units with kinks give
        it in closed form."""
        s = np.atleast_1d(np.asarray(s, dtype=np.float64))
        shift = None if shift is None else np.broadcast_to(np.asarray(shift, dtype=np.float64), s.shape)
        return hermite_basis(_NODES, 1).coefficients(self.derivative, s, shift, 1)[0][:, 0]

    def pair_kernel(self, p, q, q2, nx):
        """(K, ∂K/∂p, ∂K/∂q) of K(p, q, q') = E[σ(u) σ(u')] for centred jointly Gaussian (u, u') with variances q, q'
        and covariance p (backend arrays that broadcast). The field of such a unit at b from b' is
        K(κ⟨b, b'⟩, κ|b|², κ|b'|²), with gradient κ(∂_p K b' + 2 ∂_q K b), for inputs x ~ N(0, κI)."""
        raise NotImplementedError

    def shifted_pair_kernel(self, p, q, q2, c, c2, nx):
        """(K, ∂K/∂p, ∂K/∂q, ∂K/∂c) of K = E[σ(u) σ(u')] for jointly Gaussian (u, u') with means (c, c') — the biases
        —, variances q, q' and covariance p. The field of a biased neuron (b, c) from (b', c') is
        K(κ⟨b, b'⟩, κ|b|², κ|b'|², c, c'), with gradient κ(∂_p K b' + 2 ∂_q K b) in b and ∂_c K in c."""
        raise ValueError(f"{self!r} has no kernel for biased neurons; biases are available for "
                         f"{', '.join(biased_units())}")

    @property
    def supports_bias(self) -> bool:
        """Whether neurons σ(⟨b, x⟩ + c) with a bias c have a route (:func:`~meanfield.kernels.routes.pair_route`)."""
        from .kernels.routes import find_route

        return find_route(self, bias=True) is not None

    def hermite_coefficients(self, s, shift, max_order: int, basis=None):
        """Hermite coefficients (E[σ(s g + c) h_k(g)], E[σ'(s g + c) h_k(g)]) for k ≤ max_order at scales s and shifts
        c (0 when None): by Gauss–Hermite quadrature of :meth:`value` and :meth:`derivative` on ``basis`` (a
        :class:`~meanfield.hermite.HermiteBasis`; by default 300 nodes), or exactly where a unit has them in closed
        form (units with kinks, where quadrature converges slowly)."""
        basis = basis or hermite_basis(_NODES, int(max_order))
        return (basis.coefficients(self, s, shift, max_order + 1)[0],
                basis.coefficients(self.derivative, s, shift, max_order + 1)[0])

    def dual_parts(self, c, nx):
        """The dual kernel split as k(c) = ℓ c + w · k̃(c): returns (ℓ, w, k̃, k̃', k̃ − c k̃'). The backends add the
        linear part exactly (ℓ κ ⟨b, Σ c_k s_k⟩, no cosine involved) and apply the scalar w after the sums, which is
        how the reference kept the risk accurate to ~1e-15 · E f*² (by default ℓ = 0, w = 1)."""
        k, dk, radial = self.dual(c, nx)
        return 0.0, 1.0, k, dk, radial

    @property
    def relu_decomposition(self) -> tuple[float, float] | None:
        """(λ, ρ) with σ(z) = λ z + ρ relu(z), or None."""
        return None

    @property
    def kernel_weights(self) -> tuple[float, float] | None:
        """(ℓ, w) with the dual kernel k(c) = ℓ c + w J(θ)/(2π) (J the first arc-cosine kernel) for the ReLU family,
        else None."""
        return None

    @property
    def odd_linear_coefficient(self) -> float:
        """β with (σ(z) − σ(−z))/2 = β z when the odd part of σ is linear (ReLU family: (1 + α)/2)."""
        lam, rho = self.relu_decomposition
        return lam + rho / 2

    def spec(self) -> dict:
        """How trajectory files record it: ``{"activation": name, "slope": ...}``."""
        return {"activation": self.name}

    def __eq__(self, other):
        return isinstance(other, Activation) and self.spec() == other.spec()

    def __hash__(self):
        return hash(tuple(sorted(self.spec().items())))

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.spec().items() if k != 'activation')})"


class ReLUFamily(Activation):
    """Units σ(z) = λ z + ρ relu(z) (:attr:`relu_decomposition`): their dual kernel is
    k(c) = (λ² + λρ) c + ρ² k_relu(c), the first arc-cosine kernel plus a linear part that the backends add exactly
    (:meth:`dual_parts`; the :class:`~meanfield.kernels.routes.ArcCosine` route).

    Examples
    --------
    >>> from meanfield.activations import Abs, LeakyReLU, ReLUFamily
    >>> Abs().relu_decomposition          # |z| = −z + 2 relu z
    (-1.0, 2.0)
    >>> isinstance(LeakyReLU(0.1), ReLUFamily), LeakyReLU(0.1).relu_decomposition
    (True, (0.1, 0.9))
    """

    def dual(self, c, nx):
        linear, w, k, dk, radial = self.dual_parts(c, nx)
        k, dk, radial = w * k, w * dk, w * radial
        if linear:
            k = k + linear * c
            dk = dk + linear
        return k, dk, radial

    def dual_parts(self, c, nx):
        from .kernels.routes import arc_cosine_terms

        linear, weight = self.kernel_weights
        return (linear, weight / (2 * math.pi), *arc_cosine_terms(c, nx))

    def gaussian_mean_derivative(self, s, shift=None):
        lam, rho = self.relu_decomposition
        s = np.asarray(s, dtype=np.float64)
        if shift is None:
            return lam + rho / 2 + 0.0 * s
        from scipy.special import ndtr

        shift = np.asarray(shift, dtype=np.float64)
        ratio = np.divide(shift, s, out=np.where(shift > 0, np.inf, np.where(shift < 0, -np.inf, 0.0)), where=s > 0)
        return lam + rho * ndtr(ratio)

    def hermite_coefficients(self, s, shift, max_order: int, basis=None):
        lam, rho = self.relu_decomposition
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        shift = np.broadcast_to(np.asarray(0.0 if shift is None else shift, dtype=np.float64), s.shape)
        values = rho * truncated_power_coefficients(1, s, shift, max_order)
        slopes = rho * truncated_power_coefficients(0, s, shift, max_order)
        values[:, 0] += lam * shift  # λ(s g + c) = λc h_0 + λs h_1
        values[:, 1] += lam * s
        slopes[:, 0] += lam
        return values, slopes

    @property
    def kernel_weights(self) -> tuple[float, float]:
        """(λ² + λρ, ρ²): k(c) = (λ² + λρ) c + ρ² J(θ)/(2π)."""
        lam, rho = self.relu_decomposition
        return lam * (lam + rho), rho * rho


@UNITS.register("leaky_relu")
class LeakyReLU(ReLUFamily):
    """σ_α(z) = max(z, αz) for 0 ≤ α < 1 (α = 0 is the ReLU).

    Examples
    --------
    >>> import numpy as np
    >>> act = LeakyReLU(0.1)
    >>> act(np.array([-1.0, 2.0])).tolist()
    [-0.1, 2.0]
    >>> k, dk, radial = act.dual(np.array([1.0]), np)
    >>> float(k[0])  # E[σ(g)²] for g ~ N(0, 1): (1 + α²)/2
    0.505
    """

    name = "leaky_relu"

    def __init__(self, slope: float):
        slope = float(slope)
        if not 0.0 <= slope < 1.0:
            raise ValueError(f"the leaky-ReLU slope must lie in [0, 1), got {slope}")
        self.slope = slope

    def value(self, z, nx):
        return nx.where(z > 0, z, self.slope * z) if self.slope else nx.maximum(z, 0.0)

    def derivative(self, z, nx=NUMPY):
        return nx.where(z > 0, 1.0, nx.where(z < 0, nx.full_like(z, self.slope), (1 + self.slope) / 2))

    @property
    def relu_decomposition(self):
        return self.slope, 1.0 - self.slope

    @property
    def kernel_weights(self):
        return self.slope, (1.0 - self.slope) ** 2  # λ² + λρ = α, written so that it is α to the last bit

    def spec(self):
        return {"activation": self.name, "slope": self.slope}


@UNITS.register("abs")
class Abs(ReLUFamily):
    """σ(z) = |z| = −z + 2 relu(z): k(c) = −c + 4 k_relu(c) = (2/π)(√(1 − c²) + c arcsin c). Positively homogeneous
    (degree 1), so also on the sphere; no biases.

    Examples
    --------
    >>> import numpy as np
    >>> k, _, _ = Abs().dual(np.array([1.0]), np)
    >>> float(k[0])   # E g² = 1
    1.0
    """

    name = "abs"

    def value(self, z, nx):
        return nx.abs(z)

    def derivative(self, z, nx=NUMPY):
        return nx.sign(z)

    @property
    def relu_decomposition(self):
        return -1.0, 2.0


@UNITS.register("relu")
class ReLU(LeakyReLU):
    """σ(z) = max(z, 0); with biases, its moments through the bivariate normal distribution
    (:class:`~meanfield.kernels.routes.BivariateReLU`).

    Examples
    --------
    >>> import numpy as np
    >>> ReLU()(np.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """

    name = "relu"

    def __init__(self):
        super().__init__(0.0)

    def shifted_pair_kernel(self, p, q, q2, c, c2, nx):
        """Closed form through the bivariate normal distribution function (:func:`meanfield.bivariate.relu_moments`)."""
        from .bivariate import relu_moments

        return relu_moments(p, q, q2, c, c2, nx)

    def spec(self):
        return {"activation": self.name, "slope": 0.0}


def _arccos_j(n: int, cos, sin, pi_minus_theta):
    """J_n(θ) of the arc-cosine kernels (Cho & Saul 2009), n = 0 … 3, from cos θ, sin θ and π − θ."""
    if n == 0:
        return pi_minus_theta
    if n == 1:
        return sin + pi_minus_theta * cos
    if n == 2:
        return 3.0 * sin * cos + pi_minus_theta * (1.0 + 2.0 * cos * cos)
    return 15.0 * sin - 11.0 * sin**3 + pi_minus_theta * (9.0 * sin * sin * cos + 15.0 * cos**3)


class ReLUPower(Activation):
    r"""σ(z) = relu(z)ⁿ for n = 1, 2, 3 (homogeneous of degree n), with the arc-cosine kernels of Cho & Saul (2009):

    .. math::  K_n(p, q, q') = \frac{(q q')^{n/2}}{2π} J_n(θ), \qquad \cos θ = p/\sqrt{q q'},

    ∂K_n/∂p = n² K_{n−1} (Price's theorem: ∂_p E[σ(u)σ(u')] = E[σ'(u)σ'(u')]) and, by homogeneity of degree n in
    (p, q, q'), ∂K_n/∂q = (n K_n − p ∂_p K_n)/(2q). n = 1 is the ReLU through this general path (the ReLU object
    uses the faster dual-kernel path; the two are tested against each other). The step unit n = 0 is not offered:
    its kernel's gradient is infinite for parallel neurons, each neuron with itself included.

    Examples
    --------
    >>> import numpy as np
    >>> unit = ReLUPower(2)
    >>> unit(np.array([-1.0, 3.0])).tolist()
    [0.0, 9.0]
    >>> k, dp, dq = unit.pair_kernel(np.array(1.0), np.array(1.0), np.array(1.0), np)
    >>> float(k)   # E relu(g)⁴ = 3/2 for g ~ N(0, 1)
    1.5
    """

    name = "relu_power"

    def __init__(self, power: int):
        if power not in (1, 2, 3):
            raise ValueError(f"relu(z)^n is available for n = 1, 2, 3, got {power!r} (n = 0, the step unit, has an "
                             "infinite kernel gradient at parallel neurons)")
        self.power = self.degree = int(power)

    def value(self, z, nx):
        return nx.maximum(z, 0.0) ** self.power

    def derivative(self, z, nx=NUMPY):
        if self.power == 1:
            return nx.where(z > 0, 1.0, nx.where(z < 0, nx.full_like(z, 0.0), 0.5))
        return self.power * nx.maximum(z, 0.0) ** (self.power - 1)

    def hermite_coefficients(self, s, shift, max_order: int, basis=None):
        n = self.power
        shift = 0.0 if shift is None else shift
        return (truncated_power_coefficients(n, s, shift, max_order),
                n * truncated_power_coefficients(n - 1, s, shift, max_order))

    def gaussian_mean_derivative(self, s):
        # E[n relu(s g)^{n−1}] = n s^{n−1} E[relu(g)^{n−1}], E relu(g)^k = 1/2, 1/√(2π), 1/2 for k = 0, 1, 2.
        moment = (0.5, 1.0 / math.sqrt(2 * math.pi), 0.5)[self.power - 1]
        return self.power * moment * np.asarray(s, dtype=np.float64) ** (self.power - 1)

    @staticmethod
    def _kernel(n, cos, sin, pi_minus_theta, qq):
        return qq ** (n / 2) * _arccos_j(n, cos, sin, pi_minus_theta) / (2 * math.pi)

    def pair_kernel(self, p, q, q2, nx):
        n = self.power
        qq = q * q2
        cos = pair_correlation(p, q, q2, nx)
        sin = nx.sqrt((1.0 - cos) * (1.0 + cos))
        pi_minus_theta = math.pi - nx.arccos(cos)
        k = self._kernel(n, cos, sin, pi_minus_theta, qq)
        dk_dp = (n * n) * self._kernel(n - 1, cos, sin, pi_minus_theta, qq)
        positive = q > 0
        dk_dq = nx.where(positive, (n * k - p * dk_dp) / (2.0 * nx.where(positive, q, 1.0)), 0.0)
        return k, dk_dp, dk_dq

    def spec(self):
        return {"activation": self.name, "power": self.power}


@UNITS.register("erf")
class Erf(Activation):
    r"""σ(z) = erf(z), the unit of the soft committee machine, with Williams' (1997) arcsine kernel:

    .. math::  K(p, q, q') = \frac{2}{π} \arcsin \frac{2p}{\sqrt{(1 + 2q)(1 + 2q')}}, \qquad
               ∂_p K = \frac{4}{π\sqrt{D}}, \quad ∂_q K = −\frac{4p}{π (1 + 2q) \sqrt{D}},

    D = (1 + 2q)(1 + 2q') − 4p². Not homogeneous: Gaussian inputs only.

    Examples
    --------
    >>> import numpy as np
    >>> k, _, _ = Erf().pair_kernel(np.array(0.5), np.array(0.5), np.array(0.5), np)
    >>> bool(np.isclose(k, 2 / np.pi * np.arcsin(0.5), rtol=1e-14))   # E erf(g/√2)² for g ~ N(0, 1)
    True
    """

    name = "erf"
    degree = None

    def value(self, z, nx):
        return nx.erf(z)

    def derivative(self, z, nx=NUMPY):
        return 2.0 / math.sqrt(math.pi) * nx.exp(-z ** 2)

    def second_derivative(self, z, nx=NUMPY):
        return -4.0 / math.sqrt(math.pi) * z * nx.exp(-z * z)

    def gaussian_mean_derivative(self, s, shift=None):
        spread = 1.0 + 2.0 * np.asarray(s, dtype=np.float64) ** 2  # E erf'(s g + c) = 2 e^{−c²/(1+2s²)}/√(π(1+2s²))
        shift = 0.0 if shift is None else np.asarray(shift, dtype=np.float64)
        return 2.0 / np.sqrt(np.pi * spread) * np.exp(-shift**2 / spread)

    def shifted_pair_kernel(self, p, q, q2, c, c2, nx):
        """With biases through the Hermite series (:class:`HermiteActivation`; erf is entire, so it converges fast)."""
        if "_hermite" not in self.__dict__:
            self._hermite = HermiteActivation(self, self.derivative, self.second_derivative, self.torch, self.name)
        return self._hermite.shifted_pair_kernel(p, q, q2, c, c2, nx)

    def pair_kernel(self, p, q, q2, nx):
        a, a2 = 1.0 + 2.0 * q, 1.0 + 2.0 * q2
        root = nx.sqrt(a * a2 - 4.0 * p * p)
        k = (2 / math.pi) * (math.pi / 2 - nx.arccos(nx.clip(2.0 * p / nx.sqrt(a * a2), -1.0, 1.0)))
        return k, (4 / math.pi) / root, (-4 / math.pi) * p / (a * root)


class MehlerUnit(SeriesKernel, Activation):
    """A unit whose Gaussian pair kernel is a Mehler series of per-particle coefficients
    (:class:`~meanfield.hermite.MehlerSeries`): :meth:`mehler_series` builds it once per evaluation and the backend sums
    it over pairs (:meth:`~meanfield.kernels.base.Backend.series_field`); :meth:`pair_kernel` and
    :meth:`shifted_pair_kernel` evaluate it on a tile.

    Examples
    --------
    The pair kernel of a Mehler unit is the sum of its series; for GELU at unit variances against Monte Carlo:

    >>> import numpy as np, meanfield as mf
    >>> from meanfield.activations import GELU, MehlerUnit
    >>> unit = GELU()
    >>> isinstance(unit, MehlerUnit)
    True
    >>> nx = mf.get_backend("numpy")
    >>> K = unit.pair_kernel(np.array([0.3]), np.array([1.0]), np.array([1.0]), nx)[0]
    >>> g = np.random.default_rng(0).standard_normal((2, 400_000))
    >>> u, v = g[0], 0.3 * g[0] + np.sqrt(1 - 0.09) * g[1]
    >>> bool(abs(K[0] - np.mean(unit(u) * unit(v))) < 5e-3)
    True
    """

    degree = None


_MAX_ORDER, _NODES = 280, 300    # the defaults of every Hermite unit


class SmoothUnit(MehlerUnit):
    r"""A smooth unit through the Mehler expansion of its Gaussian pair kernel: with h_k = He_k/√k! (orthonormal
    under N(0, 1)) and c_k(s) = E[σ(s g) h_k(g)],

    .. math::

        K(p, q, q') = \sum_{k ≤ K} c_k(\sqrt q)\, c_k(\sqrt{q'})\, ρ^k, \qquad ρ = p/\sqrt{q q'},

    and, by Price's theorem and the heat equation, ∂_p K = E[σ'(u)σ'(u')] and ∂_q K = ½ E[σ''(u)σ(u')], the same
    series with the coefficients of σ' and σ''. The coefficients are computed per particle (O(m K) Gauss–Hermite sums
    of ``nodes`` points) and summed over pairs by Horner's rule in ρ (O(m² K)). The order K is the smallest for which
    the relative tail 1 − Σ_{k≤K} c_k(s)²/E[σ(s g)²] (and the same for σ', σ'') is at most ``tol`` at every particle;
    by Cauchy–Schwarz the kernel and its derivatives are then accurate to ``tol`` relative to √(E σ(u)² E σ(u')²).
    The order used and that bound are kept in :attr:`last_order` and :attr:`last_error`. The series converges
    geometrically for smooth units and slowly (a power of K) for units with a kink; a tolerance that ``max_order``
    cannot meet is an error. Gaussian inputs only.

    A subclass gives :meth:`value`, :meth:`derivative` and :meth:`second_derivative` against the array namespace.

    Parameters
    ----------
    tol : float
        Relative truncation tolerance.
    max_order : int
        The largest K tried.
    nodes : int
        Gauss–Hermite points of the coefficient sums.

    Examples
    --------
    >>> import numpy as np
    >>> unit = GELU()
    >>> k, _, _ = unit.pair_kernel(np.array([[0.5]]), np.array([[1.0]]), np.array([[1.0]]), np)
    >>> unit.last_order <= 64 and unit.last_error <= 1e-10
    True
    """

    def __init__(self, tol: float = 1e-10, max_order: int = _MAX_ORDER, nodes: int = _NODES):
        if not 0 < tol < 1:
            raise ValueError(f"the Hermite tolerance must lie in (0, 1), got {tol}")
        self.tol, self.max_order = float(tol), int(max_order)
        self.basis = hermite_basis(int(nodes), self.max_order)
        self.last_order, self.last_error = 0, 0.0

    def second_derivative(self, z, nx=NUMPY):
        """σ''(z) elementwise on an array of the namespace ``nx`` (numpy by default)."""
        raise NotImplementedError(f"{type(self).__name__} gives no second_derivative(z, nx)")

    # The three functions on numpy, as the coefficient sums take them.
    def function(self, z):
        return self.value(z, NUMPY)

    def first(self, z):
        return self.derivative(z, NUMPY)

    def second(self, z):
        return self.second_derivative(z, NUMPY)

    def gaussian_mean_derivative(self, s, shift=None):
        s = np.atleast_1d(np.asarray(s, dtype=np.float64))
        shift = None if shift is None else np.broadcast_to(np.asarray(shift, dtype=np.float64), s.shape)
        return self.basis.coefficients(self.first, s, shift)[0][:, 0]

    def _series(self, scales, shifts=None):
        """Coefficients of σ, σ', σ'' at the scales (and shifts), all orders up to max_order, with their relative
        tails 1 − Σ_{j≤k} c_j²/E[σ(s g + c)²] (rows: particles, columns: k). The last two results are kept: one
        evaluation asks for the particles' coefficients twice (the self-interaction and the target's field)."""
        key = hashlib.sha1(np.ascontiguousarray(scales).tobytes()
                           + (b"" if shifts is None else np.ascontiguousarray(shifts).tobytes())).digest()
        recent = self.__dict__.setdefault("_recent_series", {})
        if key not in recent:
            if len(recent) >= 2:
                recent.pop(next(iter(recent)))
            recent[key] = self._compute_series(scales, shifts)
        return recent[key]

    def _compute_series(self, scales, shifts, orders: int | None = None):
        """The coefficients and tails of σ, σ', σ'' up to the first order block (64, 128, …, max_order + 1) in which
        every tail reaches ``tol`` (all orders if none does), or exactly ``orders`` orders: the projection costs in
        proportion to the orders it forms."""
        weighted = [self.basis.weighted_values(fn, scales, shifts) for fn in (self.function, self.first, self.second)]
        total = self.max_order + 1
        projected = [np.empty((len(energy), 0)) for _, energy in weighted]
        for limit in ([orders] if orders else [*range(64, total, 64), total]):
            out = []
            for j, (values, energy) in enumerate(weighted):  # only the new block of orders is projected
                projected[j] = np.hstack([projected[j], self.basis.project(values, limit, projected[j].shape[1])])
                tails = (energy[:, None] - np.cumsum(projected[j] ** 2, axis=1)) / np.maximum(energy, 1e-300)[:, None]
                out.append((projected[j], np.maximum(tails, 0.0)))
            if limit == total or all(np.any(np.all(t <= self.tol, axis=0)) for _, t in out):
                return out
        return out

    def relative_tails(self, scales, shifts=None) -> np.ndarray:
        """(n, max_order + 1): at each scale s = √κ|b| (and shift c, the bias) and order K, the largest relative tail
        1 − Σ_{k≤K} c_k(s)²/E[f(s g + c)²] of the three series (f = σ, σ', σ''), what :attr:`tol` is compared with."""
        scales = np.asarray(scales, dtype=np.float64)
        return np.max([tails for _, tails in self._compute_series(scales, shifts, self.max_order + 1)], axis=0)

    def _order(self, series, scales) -> int:
        """The smallest K at which every relative tail is at most ``tol``."""
        ok = np.ones(series[0][1].shape[1], dtype=bool)
        for _, tails in series:
            ok &= np.all(tails <= self.tol, axis=0)
        if not ok.any():
            worst = max(float(np.max(tails[:, -1])) for _, tails in series)
            bad = float(scales[np.argmax(np.max([t[:, -1] for _, t in series], axis=0))])
            raise ValueError(f"the Hermite expansion of {self.name} at scale √κ|b| = {bad:.3g} needs more than "
                             f"max_order = {self.max_order} terms for tol = {self.tol:g} (tail {worst:.1e} there): "
                             "raise max_order or tol")
        return int(np.argmax(ok))

    def mehler_series(self, q, q2, c=None, c2=None) -> MehlerSeries:
        """K = Σ c_k c'_k ρ^k, ∂_pK from the coefficients of σ', ∂_qK = ½ E[σ''(u)σ(u')] and, with biases,
        ∂_cK = E[σ'(u)σ(u')], truncated at one order for both sides (a lower one on one side would leave cross terms
        of size √tol)."""
        s1, s2 = np.sqrt(np.maximum(q, 0.0)), np.sqrt(np.maximum(q2, 0.0))
        first = self._series(s1, c)
        second = first if q2 is q and c2 is c else self._series(s2, c2)  # a self-interaction: one side suffices
        order = max(self._order(first, s1), self._order(second, s2))
        if first[0][0].shape[1] <= order:  # the other side needed a longer series: form this one as far
            first = self._compute_series(s1, c, order + 1)
        if second[0][0].shape[1] <= order:
            second = self._compute_series(s2, c2, order + 1)
        self.last_order = order
        self.last_error = max(float(np.max(t[:, order])) for _, t in first + second)
        (values, _), (slopes, _), (curvature, _) = first
        (values2, _), (slopes2, _), _ = second
        rows = [values, slopes, 0.5 * curvature] + ([slopes] if c is not None else [])
        cols = [values2, slopes2, values2] + ([values2] if c is not None else [])
        return MehlerSeries([r[:, :order + 1] for r in rows], [r[:, :order + 1] for r in cols])

    def spec(self):
        return {"activation": self.name, "tol": self.tol, "max_order": self.max_order}


class HermiteActivation(SmoothUnit):
    """A smooth unit given by numpy callables σ, σ', σ'' (and σ on torch), through the Mehler expansion of
    :class:`SmoothUnit`.

    Parameters
    ----------
    function, derivative, second_derivative : callable
        σ, σ', σ'' on numpy arrays.
    torch_function : callable
        σ on torch tensors (the finite network).
    name : str
        How files record the unit.
    tol : float
        Relative truncation tolerance.
    max_order : int
        The largest K tried.
    nodes : int
        Gauss–Hermite points of the coefficient sums.

    Examples
    --------
    >>> import numpy as np
    >>> unit = HermiteActivation(np.sin, np.cos, lambda z: -np.sin(z), None, "sine")
    >>> k, _, _ = unit.pair_kernel(np.array([[0.5]]), np.array([[1.0]]), np.array([[1.0]]), np)
    >>> bool(np.isclose(k[0, 0], np.exp(-1.0) * np.sinh(0.5)))   # E sin u sin u' = e^{-(q+q')/2} sinh p
    True
    """

    def __init__(self, function, derivative, second_derivative, torch_function, name: str, tol: float = 1e-10,
                 max_order: int = _MAX_ORDER, nodes: int = _NODES):
        super().__init__(tol, max_order, nodes)
        self.function, self.first, self.second = function, derivative, second_derivative
        self.torch_function, self.name = torch_function, name

    def __call__(self, z):
        return self.function(np.asarray(z, dtype=np.float64))

    def torch(self, z):
        return self.torch_function(z)

    def torch_derivative(self, z):
        return Activation.torch_derivative(self, z)   # autograd of the torch function given

    def derivative(self, z, nx=NUMPY):
        return self.first(np.asarray(z, dtype=np.float64))

    def second_derivative(self, z, nx=NUMPY):
        return self.second(np.asarray(z, dtype=np.float64))


def _sigmoid(z, nx):
    return 0.5 * (1.0 + nx.tanh(0.5 * z))


def _density(z, nx):
    return nx.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


@UNITS.register("gelu")
class GELU(SmoothUnit):
    """σ(z) = z Φ(z) (the exact GELU), through its Hermite expansion (:class:`SmoothUnit`).

    Parameters
    ----------
    tol, max_order, nodes
        The truncation tolerance, the largest order tried and the Gauss–Hermite points (:class:`SmoothUnit`).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.activations import GELU
    >>> unit = GELU()
    >>> unit.name, float(unit(np.array([0.0]))[0])
    ('gelu', 0.0)
    """

    name = "gelu"

    def value(self, z, nx):
        return z * nx.ndtr(z)

    def derivative(self, z, nx=NUMPY):
        return nx.ndtr(z) + z * _density(z, nx)

    def second_derivative(self, z, nx=NUMPY):
        return _density(z, nx) * (2.0 - z * z)


@UNITS.register("tanh")
class Tanh(SmoothUnit):
    """σ(z) = tanh z, through its Hermite expansion (:class:`SmoothUnit`).

    Parameters
    ----------
    tol, max_order, nodes
        The truncation tolerance, the largest order tried and the Gauss–Hermite points (:class:`SmoothUnit`).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.activations import Tanh
    >>> bool(np.isclose(Tanh(tol=1e-8)(np.array([0.5]))[0], np.tanh(0.5)))
    True
    """

    name = "tanh"

    def value(self, z, nx):
        return nx.tanh(z)

    def derivative(self, z, nx=NUMPY):
        return 1.0 - nx.tanh(z) ** 2

    def second_derivative(self, z, nx=NUMPY):
        return -2.0 * nx.tanh(z) * (1.0 - nx.tanh(z) ** 2)


@UNITS.register("sigmoid")
class Sigmoid(SmoothUnit):
    """σ(z) = 1 / (1 + e^{−z}) = (1 + tanh(z/2)) / 2, through its Hermite expansion (:class:`SmoothUnit`).

    Parameters
    ----------
    tol, max_order, nodes
        The truncation tolerance, the largest order tried and the Gauss–Hermite points (:class:`SmoothUnit`).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.activations import Sigmoid
    >>> round(float(Sigmoid()(np.array([1.0]))[0]), 6), float(Sigmoid().derivative(np.array([0.0]))[0])
    (0.731059, 0.25)
    """

    name = "sigmoid"

    def value(self, z, nx):
        return 0.5 + 0.5 * nx.tanh(0.5 * z)   # no overflow of e^{−z} for z ≪ 0

    def derivative(self, z, nx=NUMPY):
        t = nx.tanh(0.5 * z)
        return 0.25 * (1.0 - t * t)

    def second_derivative(self, z, nx=NUMPY):
        t = nx.tanh(0.5 * z)
        return -0.25 * t * (1.0 - t * t)


@UNITS.register("silu")
class SiLU(SmoothUnit):
    """σ(z) = z / (1 + e^{−z}), through its Hermite expansion (:class:`SmoothUnit`).

    Parameters
    ----------
    tol, max_order, nodes
        The truncation tolerance, the largest order tried and the Gauss–Hermite points (:class:`SmoothUnit`).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.activations import SiLU
    >>> round(float(SiLU()(np.array([1.0]))[0]), 6)     # 1 / (1 + e^{-1})
    0.731059
    """

    name = "silu"

    def value(self, z, nx):
        return z * _sigmoid(z, nx)

    def derivative(self, z, nx=NUMPY):
        s = _sigmoid(z, nx)
        return s + z * s * (1.0 - s)

    def second_derivative(self, z, nx=NUMPY):
        s = _sigmoid(z, nx)
        return s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))


@UNITS.register("softplus")
class Softplus(SmoothUnit):
    """σ(z) = log(1 + e^z), through its Hermite expansion (:class:`SmoothUnit`).

    Parameters
    ----------
    tol, max_order, nodes
        The truncation tolerance, the largest order tried and the Gauss–Hermite points (:class:`SmoothUnit`).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.activations import Softplus
    >>> bool(np.isclose(Softplus()(np.array([0.0]))[0], np.log(2.0)))
    True
    """

    name = "softplus"

    def value(self, z, nx):
        return nx.maximum(z, 0.0) + nx.log1p(nx.exp(-nx.abs(z)))   # log(1 + e^z) without overflow

    def derivative(self, z, nx=NUMPY):
        return _sigmoid(z, nx)

    def second_derivative(self, z, nx=NUMPY):
        return _sigmoid(z, nx) * (1.0 - _sigmoid(z, nx))


RELU = ReLU()
UNITS.register("relu2", lambda: ReLUPower(2))
UNITS.register("relu3", lambda: ReLUPower(3))


def biased_units() -> tuple[str, ...]:
    """The names of the registered units whose neurons can carry a bias (:attr:`Activation.supports_bias` of the
    unit with its default options).

    Examples
    --------
    >>> biased_units()[:2]
    ('relu', 'erf')
    """
    return tuple(name for name in UNITS if _default_unit(name).supports_bias)


def _default_unit(name: str) -> Activation:
    return LeakyReLU(0.01) if name == "leaky_relu" else UNITS.create(name)


def as_activation(activation=None, slope: float | None = None) -> Activation:
    """An :class:`Activation` from an instance, a name ("relu", "leaky_relu" with ``slope``) or a number (a leaky
    slope; 0 is the ReLU), so that older calls passing a slope keep working.

    Examples
    --------
    >>> as_activation("leaky_relu", 0.2), as_activation(0.0), as_activation()
    (LeakyReLU(slope=0.2), ReLU(slope=0.0), ReLU(slope=0.0))
    """
    if activation is None:
        activation = "relu" if not slope else "leaky_relu"
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, (int, float, np.floating)) and not isinstance(activation, bool):
        return RELU if activation == 0 else LeakyReLU(activation)
    if activation == "relu":
        return RELU
    if activation == "leaky_relu":
        slope = 0.01 if slope is None else float(slope)
        if not 0.0 < slope < 1.0:
            raise ValueError(f"the leaky-ReLU slope must lie in (0, 1), got {slope}")
        return LeakyReLU(slope)
    if activation in UNITS:
        return UNITS.create(activation)
    raise ValueError(f"activation must be one of {', '.join(map(repr, UNITS))} or an Activation, got {activation!r}")


#: Units by name: the registry :data:`meanfield.registry.UNITS` (``ACTIVATIONS["gelu"](tol=1e-8)``).
ACTIVATIONS = UNITS
