r"""Target functions f* and the quantities the flow needs from them.

For a target f* and an input law ρ the flow needs, for ReLU neurons b,

.. math::

    F^*(b) = E_ρ[f^*(x) σ(⟨b, x⟩)], \quad ∇F^*(b), \quad E_ρ[f^{*2}], \quad E_ρ[f^* x].

(the leaky-ReLU correlation follows: F*_α(b) = α⟨E[f* x], b⟩ + (1 − α) F*(b)). Which of them are exact:

* :class:`TeacherNetwork` — F*(b) = Σ_i c_i K(b, u_i), exact (closed-form kernel).
* :class:`LinearTarget` and :class:`CubicTarget` (odd targets) — since σ(z) = z/2 + |z|/2 and f*·|⟨b, x⟩| is
  odd, F*(b) = ½⟨E[f* x], b⟩, exact.
* :class:`MultiIndexTarget` g(Qᵀx) — the orthogonal part is integrated in closed form
  (E_z σ(u + τz) = u Φ(u/τ) + τ φ(u/τ)) and the d_H-dimensional part by a Gauss–Hermite tensor rule
  (or scrambled Sobol' points when d_H is large); accurate to quadrature error.
* :class:`MonteCarloTarget` — any callable, on a fixed seeded sample: approximate (``exact = False``).

References: K. Hajjar, L. Chizat, *On the symmetries in the dynamics of wide two-layer neural networks*,
arXiv:2211.08771.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

import numpy as np
from scipy.special import ndtri, roots_legendre

from ._validation import as_float_array, check_positive, check_positive_int, check_seed
from .activations import RELU, as_activation, biased_units
from .inputs import InputLaw, NoGaussianReduction, Sphere
from .kernels.base import Backend, get_backend
from .kernels.closed_form import relu_kernel
from .network import Network
from .registry import TARGETS

__all__ = [
    "Target",
    "TeacherNetwork",
    "OddTarget",
    "LinearTarget",
    "CubicTarget",
    "MultiIndexTarget",
    "RadialTarget",
    "MonteCarloTarget",
    "function_checksum",
]

_SQRT_2PI = np.sqrt(2 * np.pi)


def _relu(z):
    return np.maximum(z, 0.0)


def half_normal_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss rule for E[g(w) 1(w > 0)], w ~ N(0, 1): nodes and weights (summing to ½) of the weight φ(w) on [0, ∞).

    Recurrence coefficients by the Stieltjes procedure on a Gauss–Legendre discretisation of [0, 12] (the weight
    is smooth there, so the discretisation is spectrally accurate), then Golub–Welsch (Gautschi, *Orthogonal
    Polynomials*, 2004, §2.2). Computed once per n and process (the arrays returned are copies).

    Examples
    --------
    >>> nodes, weights = half_normal_rule(8)
    >>> round(float(weights.sum()), 12), round(float(weights @ nodes**2), 12)   # P(w > 0) = ½, E[w² 1(w > 0)] = ½
    (0.5, 0.5)
    """
    nodes, weights = _half_normal_rule(int(n))
    return nodes.copy(), weights.copy()


@functools.lru_cache(maxsize=16)
def _half_normal_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    # The 2000-point Legendre rule from its tridiagonal Jacobi matrix (scipy, O(n²)): numpy's leggauss takes the
    # eigenvalues of the dense companion matrix, O(n³), seconds per call. The two agree to 1e-16 in the nodes; the
    # moments E[w^k 1(w > 0)], k ≤ 40, of the 40-point rule built from either are within 3e-11 of 40-digit values.
    x, w = roots_legendre(2000)
    x, w = 6.0 * (x + 1.0), 6.0 * w * np.exp(-0.5 * (6.0 * (x + 1.0)) ** 2) / _SQRT_2PI
    alpha, beta = np.zeros(n), np.zeros(n)
    p_prev, p = np.zeros_like(x), np.ones_like(x)
    norm_prev = 1.0
    for k in range(n):
        norm = w @ p**2
        alpha[k] = (w @ (x * p**2)) / norm
        beta[k] = norm if k == 0 else norm / norm_prev
        p_prev, p = p, (x - alpha[k]) * p - (beta[k] if k > 0 else 0.0) * p_prev
        norm_prev = norm
    jacobi = np.diag(alpha) + np.diag(np.sqrt(beta[1:]), 1) + np.diag(np.sqrt(beta[1:]), -1)
    nodes, vecs = np.linalg.eigh(jacobi)
    return nodes, beta[0] * vecs[0] ** 2


def _smoothed_relu(u, tau, nx: Backend):
    """E_z σ(u + τ z) for z ~ N(0, 1), with Φ(u/τ) and φ(u/τ) (its derivatives in u and τ); τ = 0 allowed."""
    pos = tau > 0
    zeta = nx.where(pos, u / nx.where(pos, tau, 1.0), 0.0)
    cdf = nx.where(pos, nx.ndtr(zeta), nx.where(u > 0, 1.0, nx.where(u == 0, 0.5, 0.0)))
    pdf = nx.where(pos, nx.exp(-0.5 * zeta**2) / _SQRT_2PI, 0.0)
    return u * cdf + tau * pdf, cdf, pdf


def subspace_from_arrays(arrays: dict) -> np.ndarray | None:
    """The hidden subspace H of a target from its defining arrays (as stored in a trajectory file): an orthonormal
    basis (d, d_H) of span(U) for a teacher (rows of ``U``), ``Q`` for multi-index and radial targets, β/|β| for a
    linear target; None when the arrays do not name one (cubic and Monte-Carlo targets).

    Examples
    --------
    >>> import numpy as np
    >>> subspace_from_arrays({"c": np.ones(2), "U": np.array([[2.0, 0, 0], [1.0, 1.0, 0]])}).shape
    (3, 2)
    """
    if "Q" in arrays:
        return np.asarray(arrays["Q"], dtype=np.float64)
    if "U" in arrays:
        u, sv, _ = np.linalg.svd(np.asarray(arrays["U"], dtype=np.float64).T, full_matrices=False)
        return u[:, sv > 1e-12 * sv[0]] if sv.size and sv[0] > 0 else None
    if "beta" in arrays:
        beta = np.asarray(arrays["beta"], dtype=np.float64)
        norm = np.linalg.norm(beta)
        return (beta / norm)[:, None] if norm > 0 else None
    return None


#: The fixed probe points a target function is identified by: PROBE_POINTS standard normal rows, seeded.
PROBE_POINTS, PROBE_SEED = 64, 20231203


def function_checksum(fn: Callable, dim: int) -> str:
    """SHA-1 (first 16 hex digits) of what ``fn`` computes on a fixed seeded probe set of ``PROBE_POINTS`` rows
    of dimension ``dim`` (standard normal), its values rounded to float32 so that libm's last bits do not matter.

    A run whose target is defined by a function (:class:`MonteCarloTarget`, :class:`MultiIndexTarget`,
    :class:`RadialTarget`) records it in its description, so that resuming it with another function is refused:
    the name of a function (``<lambda>``) says nothing about what it computes.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.targets import function_checksum
    >>> function_checksum(lambda x: np.abs(x[:, 0]), 3) == function_checksum(lambda z: abs(z[:, 0]), 3)
    True
    >>> function_checksum(lambda x: np.abs(x[:, 0]), 3) == function_checksum(lambda x: np.abs(x[:, 1]), 3)
    False
    """
    probe = np.random.default_rng(PROBE_SEED).standard_normal((PROBE_POINTS, dim))
    values = np.ascontiguousarray(np.asarray(fn(probe), dtype=np.float64), dtype="<f4")
    return hashlib.sha1(values.tobytes()).hexdigest()[:16]


class Target:
    """Base class of targets. ``d`` is the input dimension.

    Subclasses implement ``__call__`` (f* on an (n, d) array), :meth:`relu_correlation` (on the arrays of any
    backend), :meth:`linear_moment` and :meth:`second_moment`; :meth:`torch` evaluates f* on torch tensors (through
    numpy unless a subclass writes it natively).

    Examples
    --------
    Every target gives F*(b) = E[f*(x) relu(⟨b, x⟩)] in closed form; against Monte Carlo for a teacher:

    >>> import numpy as np, meanfield as mf
    >>> target, inputs = mf.TeacherNetwork([1.0, -0.5], np.eye(3)[:2]), mf.Gaussian(3)
    >>> b = np.array([[0.6, 0.8, 0.0]])
    >>> F, gradF = target.relu_correlation(inputs, b)
    >>> x = inputs.sample(1_000_000, rng=0)
    >>> bool(abs(F[0] - np.mean(target(x) * np.maximum(x @ b[0], 0))) < 3e-3), gradF.shape
    (True, (1, 3))
    """

    d: int
    exact: bool = True
    odd: bool = False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def torch(self, x):
        """f* on a torch tensor of inputs (n, d), on its device and dtype."""
        import torch

        return torch.as_tensor(self(x.detach().cpu().double().numpy())).to(x)

    def relu_correlation(self, inputs: InputLaw, b, nx: Backend | None = None):
        """F*(b) = E[f*(x) relu(⟨b, x⟩)] and its gradient, for the rows of b (n, d), computed on the arrays of the
        backend ``nx`` (numpy when None), so that a torch or CUDA run never copies b to the host."""
        raise NotImplementedError

    def check_unit(self, unit, inputs: InputLaw | None = None) -> None:
        """Raise a one-line error unless the correlation of this target with the unit σ (on ``inputs``, when given) is
        available (here: units σ = λz + ρ relu(z) of the ReLU family, through :meth:`relu_correlation`)."""
        if unit.relu_decomposition is None:
            raise ValueError(f"{type(self).__name__} has no correlation with {unit!r} yet (only with the ReLU family); "
                             "use a TeacherNetwork with that activation or a MonteCarloTarget")

    def check_bias(self) -> None:
        """Raise a one-line error unless this target's correlation with biased neurons is available."""
        raise ValueError(f"{type(self).__name__} has no correlation with biased neurons yet; use a TeacherNetwork "
                         "(with or without biases) or a MonteCarloTarget, or bias=False")

    def correlation(self, inputs: InputLaw, b, unit, nx: Backend | None = None, bias: bool = False):
        """F*_σ(b) = E[f*(x) σ(⟨b, x⟩)] and its gradient for the unit σ, on the arrays of ``nx``. Here for
        σ = λz + ρ relu(z): λ⟨E[f* x], b⟩ + ρ F*(b). With ``bias`` the rows of b are [b | c] and the correlation is
        E[f*(x) σ(⟨b, x⟩ + c)] (targets that override :meth:`check_bias`)."""
        if bias:
            self.check_bias()
        self.check_unit(unit)
        nx = nx or get_backend("numpy")
        f, g = self.relu_correlation(inputs, b, nx)
        lam, rho = unit.relu_decomposition
        if lam:
            m1 = self._constant(nx, ("E[f* x]", tuple(sorted(inputs.spec().items()))),
                                lambda: self.linear_moment(inputs))
            b = nx.asarray(b)
            f = lam * (b @ m1) + rho * f
            g = lam * m1 + rho * g
        return f, g

    def _constant(self, nx: Backend, name: str, make):
        """``nx.asarray(make())`` computed once per backend (the target's constant arrays on that backend)."""
        return self._cached((id(nx), name), lambda: nx.asarray(make()))

    def _cached(self, key, make):
        """``make()`` computed once per key (constants on a backend or a torch device)."""
        cache = self.__dict__.setdefault("_on_backend", {})
        if key not in cache:
            cache[key] = make()
        return cache[key]

    def linear_moment(self, inputs: InputLaw) -> np.ndarray:
        """E[f*(x) x], shape (d,)."""
        raise NotImplementedError

    def second_moment(self, inputs: InputLaw) -> float:
        """E[f*(x)²]."""
        raise NotImplementedError

    def teacher_sources(self):
        """(coefficients, neurons) when F* is a kernel field of finitely many ReLU neurons, else None."""
        return None

    def spec(self) -> dict:
        """JSON-serialisable description (arrays are listed by name and stored separately)."""
        return {"target": type(self).__name__}

    def arrays(self) -> dict:
        """Named arrays that define the target."""
        return {}

    def hidden_subspace(self) -> np.ndarray | None:
        """Orthonormal basis (d, d_H) of the subspace H that f* depends on, when the target's definition gives it
        (teacher: span(U); subspace targets: Q; linear: β), else None. See :func:`subspace_from_arrays`."""
        return subspace_from_arrays(self.arrays())

    def check_inputs(self, inputs: InputLaw) -> None:
        if inputs.d != self.d:
            raise ValueError(
                f"the target has input dimension {self.d} but the input law has dimension {inputs.d}"
            )


class TeacherNetwork(Target):
    r"""Teacher network f*(x) = Σ_i c_i σ(⟨u_i, x⟩ + β_i), exact.

    Parameters
    ----------
    c : array (k,)
        Output weights.
    U : array (k, d)
        Teacher neurons, one per row.
    activation : Activation or str
        The teacher's unit, or its name, one of
        {"relu", "leaky_relu", "abs", "relu2", "relu3", "erf", "gelu", "tanh", "sigmoid", "silu", "softplus"}.
        A student of another unit is correlated with it through their mixed Hermite kernel
        (:class:`~meanfield.mixed.MixedUnit`, Gaussian inputs), exact in closed form for the same unit and for a ReLU
        teacher with a student of the ReLU family.
    bias : array (k,), optional
        The teacher's biases β_i (Gaussian inputs; a student with or without biases learns it).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> t = mf.TeacherNetwork([1.0, -0.5], np.eye(2))
    >>> float(t(np.array([[1.0, 2.0]]))[0])
    0.0
    >>> float(mf.TeacherNetwork([1.0], [[1.0, 0.0]], bias=[0.5])(np.array([[1.0, 2.0]]))[0])
    1.5
    """

    def __init__(self, c, U, activation="relu", bias=None):
        U = as_float_array(U, "U (teacher neurons)", ndim=2)
        c = as_float_array(c, "c (teacher output weights)", ndim=1)
        if c.shape[0] != U.shape[0]:
            raise ValueError(f"c has {c.shape[0]} entries but U has {U.shape[0]} rows (one per neuron)")
        if U.shape[0] < 1:
            raise ValueError("a teacher network needs at least one neuron")
        self.c, self.U, self.d = c, U, U.shape[1]
        self.bias = None if bias is None else as_float_array(bias, "bias (teacher biases)", shape=c.shape)
        self.unit = as_activation(activation)
        if self.bias is not None and not self.unit.supports_bias:
            raise ValueError(f"a teacher of {self.unit!r} units cannot carry biases; use one of "
                             f"{', '.join(biased_units())} or bias=None")
        self._relu = self.unit == RELU and self.bias is None
        #: The teacher as a network: its forward pass is the students' (:meth:`~meanfield.network.Network.forward`).
        self.network = Network(self.unit, self.d, self.bias is not None)

    def __call__(self, x):
        return self.network.forward(self.c, self.U, self.bias, None, np.asarray(x))

    def torch(self, x):
        import torch

        # U, c and the biases on the inputs' device, converted once (this runs at every SGD step).
        U, c, bias = self._cached(("torch", x.device, x.dtype), lambda: tuple(
            None if v is None else torch.as_tensor(v).to(x) for v in (self.U, self.c, self.bias)))
        return self.network.forward(c, U, bias, None, x, get_backend("torch"))

    def check_inputs(self, inputs):
        super().check_inputs(inputs)
        if self.bias is not None and not inputs.gaussian_pre_activations:
            raise ValueError(f"a teacher with biases needs Gaussian inputs, got {type(inputs).__name__}")

    def check_unit(self, unit, inputs=None):
        if unit == self.unit or self._route(unit, False).homogeneous:
            return
        if inputs is not None and not inputs.gaussian_pre_activations:
            raise ValueError(f"a teacher of {self.unit!r} units and a student of {unit!r} units: their mixed kernel is "
                             f"computed for Gaussian inputs only, not {type(inputs).__name__}; give both the same unit")

    def _route(self, unit, bias: bool):
        """The route of the pair moment of a student ``unit`` against this teacher's unit
        (:func:`~meanfield.kernels.routes.pair_route`)."""
        from .kernels.routes import pair_route

        return pair_route(unit, self.unit, bias)

    def mixed_kernel(self, unit):
        """The Mehler-series kernel of a student ``unit`` against this teacher's unit
        (:class:`~meanfield.mixed.MixedKernel`; the one the field uses when no closed form serves the pair)."""
        from .mixed import mixed_kernel

        return mixed_kernel(unit, self.unit)

    def check_bias(self):
        """A student with biases: the same unit's shifted kernel."""

    def _neurons(self, shifted: bool):
        """The teacher's neurons as the field's sources: U, or [U | β] for the shifted kernel (β = 0 without biases)."""
        if not shifted:
            return self.U
        return np.column_stack([self.U, np.zeros(len(self.c)) if self.bias is None else self.bias])

    def _field(self, inputs, b, unit, nx, bias=False):
        shifted = bias or self.bias is not None
        sources = self._constant(nx, ("neurons", shifted), lambda: self._neurons(shifted))
        coef = self._constant(nx, "c", lambda: self.c)
        route = self._route(unit, shifted)
        scale = inputs.unit_scale(unit)
        if shifted and not bias:  # a student without biases against a biased teacher: its neurons have c = 0
            b = nx.asarray(b)
            value, grad = nx.field(nx.concat([b, nx.zeros((b.shape[0], 1))], axis=1), sources, coef, scale, route,
                                   bias=True)
            return value, grad[:, :-1]
        return nx.field(b, sources, coef, scale, route, bias=shifted)

    def relu_correlation(self, inputs, b, nx=None):
        if not self._relu:
            raise ValueError(f"the ReLU correlation of a teacher of {self.unit!r} units is not available")
        return self._field(inputs, b, RELU, nx or get_backend("numpy"))

    def correlation(self, inputs, b, unit, nx=None, bias=False):
        """Σ_i c_i K(b, u_i): the pair moment of the student's unit against the teacher's, through their route."""
        self.check_unit(unit, inputs)
        return self._field(inputs, b, unit, nx or get_backend("numpy"), bias)

    def linear_moment(self, inputs):
        if self._relu:  # E[σ(⟨u, x⟩) x] = E[(⟨u, x⟩/2) x] = κ u / 2.
            return inputs.kernel_scale * (self.c @ self.U) / 2
        # Stein: E[σ(⟨u, x⟩ + β) x] = κ u E[σ'(√κ |u| g + β)] for x ~ N(0, κI); on the sphere, for σ homogeneous of
        # degree n, σ(⟨u, x⟩) x is homogeneous of degree n + 1: the Gaussian value (κ = 1) divided by E|g|^{n+1}.
        norms = np.linalg.norm(self.U, axis=1)
        if isinstance(inputs, Sphere):
            inputs.unit_scale(self.unit)  # the error for a non-homogeneous unit
            slopes = self.unit.gaussian_mean_derivative(norms) / inputs.radial_moment_gaussian(self.unit.degree + 1)
            return (self.c * slopes) @ self.U
        kappa = inputs.kernel_scale
        if self.bias is None:
            slopes = self.unit.gaussian_mean_derivative(np.sqrt(kappa) * norms)
        else:
            slopes = self.unit.gaussian_mean_derivative(np.sqrt(kappa) * norms, self.bias)
        return kappa * ((self.c * slopes) @ self.U)

    def second_moment(self, inputs):
        if self._relu:
            gram = relu_kernel(self.U[:, None, :], self.U[None, :, :], inputs.kernel_scale)
            return float(self.c @ gram @ self.c)
        shifted = self.bias is not None
        return float(self._field(inputs, self._neurons(shifted), self.unit, get_backend("numpy"), shifted)[0] @ self.c)

    def teacher_sources(self):
        return self.c, self.U

    def spec(self):
        extra = {} if self.unit == RELU else {"activation": self.unit.spec()}
        if self.bias is not None:
            extra["bias"] = True
        return {"target": "TeacherNetwork", "k": int(self.U.shape[0]), "d": self.d, **extra}

    def arrays(self):
        return {"c": self.c, "U": self.U, **({} if self.bias is None else {"bias": self.bias})}


class OddTarget(Target):
    """Base class of odd targets (f*(−x) = −f*(x)): F*(b) = ½⟨E[f* x], b⟩ exactly, for any such f*.

    Subclasses give E[f* x] (:meth:`linear_moment`) and E[f*²] in closed form.

    Examples
    --------
    An odd target needs only E[f* x] and E f*²; here f*(x) = sin x₁ under N(0, I), with E[sin(g) g] = e^{−1/2} and
    E sin²(g) = ½(1 − e^{−2}):

    >>> import numpy as np, meanfield as mf
    >>> class Sine(mf.OddTarget):
    ...     def __init__(self, d): self.d = d
    ...     def __call__(self, x): return np.sin(np.asarray(x)[:, 0])
    ...     def linear_moment(self, inputs): return np.exp(-0.5) * np.eye(self.d)[0]
    ...     def second_moment(self, inputs): return (1 - np.exp(-2.0)) / 2
    >>> problem = mf.Problem(Sine(3), mf.Gaussian(3))
    >>> mu = mf.init.sign_sphere(4, 3, seed=0)
    >>> x = mf.Gaussian(3).sample(1_000_000, rng=1)
    >>> bool(abs(problem.risk(mu) - 0.5 * np.mean((mu.predict(x) - np.sin(x[:, 0])) ** 2)) < 5e-3)
    True
    """

    odd = True

    def relu_correlation(self, inputs, b, nx=None):
        nx = nx or get_backend("numpy")
        m1 = self._constant(nx, ("E[f* x]", tuple(sorted(inputs.spec().items()))), lambda: self.linear_moment(inputs))
        b = nx.asarray(b)
        return 0.5 * (b @ m1), 0.5 * m1 + 0.0 * b


class LinearTarget(OddTarget):
    """Linear target f*(x) = ⟨β, x⟩ (exact).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> t = mf.LinearTarget([1.0, -2.0])
    >>> t(np.array([[1.0, 1.0]])).tolist(), t.second_moment(mf.Gaussian(2))     # E f*² = |β|²
    ([-1.0], 5.0)
    """

    def __init__(self, beta):
        self.beta = as_float_array(beta, "beta", ndim=1)
        self.d = self.beta.shape[0]

    def __call__(self, x):
        return np.asarray(x) @ self.beta

    def torch(self, x):
        import torch

        return x @ torch.as_tensor(self.beta).to(x)

    def linear_moment(self, inputs):
        return inputs.kernel_scale * self.beta

    def second_moment(self, inputs):
        return float(inputs.kernel_scale * self.beta @ self.beta)

    def spec(self):
        return {"target": "LinearTarget", "d": self.d}

    def arrays(self):
        return {"beta": self.beta}


class CubicTarget(OddTarget):
    r"""Odd cubic target f*(x) = C Σ_k z_k x_k³ (exact), the odd target of Hajjar & Chizat (2023).

    E[f* x] = C E[x_1⁴] z and E[f*²] = C² E[x_1⁶] |z|² (cross terms vanish by oddness in each coordinate).

    Parameters
    ----------
    z : array (d,)
        Coefficients.
    scale : float
        The constant C.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> inputs = mf.Gaussian(d=60, variance=1 / 60)
    >>> t = mf.CubicTarget.normalized(np.ones(60), inputs)   # C chosen so that ½ E f*² = 1
    >>> round(0.5 * t.second_moment(inputs), 12)
    1.0
    """

    def __init__(self, z, scale: float = 1.0):
        self.z = as_float_array(z, "z", ndim=1)
        self.scale = float(scale)
        self.d = self.z.shape[0]

    @classmethod
    def normalized(cls, z, inputs: InputLaw, half_energy: float = 1.0) -> CubicTarget:
        """The cubic target with direction z, scaled so that ½ E[f*²] = ``half_energy`` under ``inputs``."""
        check_positive(half_energy, "half_energy")
        unit = cls(z, 1.0)
        return cls(z, np.sqrt(2 * half_energy / unit.second_moment(inputs)))

    def __call__(self, x):
        return self.scale * (np.asarray(x) ** 3 @ self.z)

    def torch(self, x):
        import torch

        return self.scale * (x**3 @ torch.as_tensor(self.z).to(x))

    def linear_moment(self, inputs):
        return self.scale * inputs.coordinate_moment(2) * self.z

    def second_moment(self, inputs):
        return float(self.scale**2 * inputs.coordinate_moment(3) * self.z @ self.z)

    def spec(self):
        return {"target": "CubicTarget", "d": self.d, "scale": self.scale}

    def arrays(self):
        return {"z": self.z}


class _SubspaceTarget(Target):
    """Shared part of the targets f*(x) = g(Qᵀx): the basis Q, the homogeneity degree needed on the sphere, and the
    conversions between Gaussian and spherical expectations."""

    def __init__(self, g: Callable, Q, degree: float | None, name: str):
        Q = as_float_array(Q, "Q (hidden-subspace basis)", ndim=2)
        if Q.shape[1] > Q.shape[0]:
            raise ValueError(f"Q must have shape (d, d_H) with d_H <= d, got {Q.shape}")
        if not np.allclose(Q.T @ Q, np.eye(Q.shape[1]), atol=1e-10):
            raise ValueError("Q must have orthonormal columns (QᵀQ = I)")
        self.g, self.Q, self.degree, self.name = g, Q, degree, name
        self.d, self.d_hidden = Q.shape

    def __call__(self, x):
        return np.asarray(self.g(np.asarray(x) @ self.Q), dtype=np.float64)

    def _gaussian_std(self, inputs) -> float:
        """Standard deviation s of the Gaussian whose expectations are computed (1 for the sphere, converted by
        :meth:`_sphere_factor`)."""
        if inputs.gaussian_pre_activations:
            return float(np.sqrt(inputs.kernel_scale))
        if isinstance(inputs, Sphere):
            if self.degree is None:
                raise ValueError(
                    f"a {type(self).__name__} on spherical inputs needs the homogeneity degree of g (degree=...); "
                    "for a non-homogeneous g use MonteCarloTarget"
                )
            return 1.0
        raise NoGaussianReduction(f"a {type(self).__name__} needs Gaussian or spherical inputs (its moments are "
                                  f"Gaussian expectations), got {type(inputs).__name__}: use MonteCarloTarget")

    def _split(self, b, nx: Backend):
        """(b_H = Qᵀb, b_⊥ = b − Q b_H) for the rows of b."""
        b = nx.asarray(b)
        b_h = b @ self._constant(nx, "Q", lambda: self.Q)
        return b_h, b - b_h @ self._constant(nx, "Q.T", lambda: self.Q.T)

    def _sphere_factor(self, inputs, power):
        """1 for Gaussian inputs; 1/E|g|^power for the sphere (conversion of homogeneous expectations)."""
        return 1.0 if inputs.gaussian_pre_activations else 1.0 / inputs.radial_moment_gaussian(power)

    def arrays(self):
        return {"Q": self.Q}


class MultiIndexTarget(_SubspaceTarget):
    r"""Multi-index target f*(x) = g(Qᵀx) with Q ∈ R^{d×d_H} orthonormal.

    With b_H = Qᵀb, r = |b − Q b_H| and x ~ N(0, s² I), the orthogonal part of x is integrated exactly,
    E_z σ(u + rsz) = u Φ(u/(rs)) + rs φ(u/(rs)), and the remaining d_H-dimensional expectation over x_H by a
    Gauss–Hermite tensor rule (``rule="hermite"``, ``order`` nodes per axis) or by ``order**d_H`` scrambled
    Sobol' points (``rule="sobol"``). For spherical inputs, g must be positively homogeneous of a known
    ``degree`` p (e.g. g = |x_H|, p = 1): then E_sphere[g σ(b·x)] = E_N(0,I)[g σ(b·x)] / E|x|^{p+1}.

    Parameters
    ----------
    g : callable
        Maps an (n, d_H) array to (n,) values.
    Q : array (d, d_H)
        Orthonormal basis of the hidden subspace H.
    degree : float, optional
        Homogeneity degree of g (needed for :class:`~meanfield.Sphere` inputs).
    rule : {"auto", "hermite", "sobol"}
        Quadrature over x_H; "auto" uses Gauss–Hermite while it affords at least 6 nodes per axis within
        ``max_nodes``, Sobol' otherwise.
    max_nodes : int
        Budget of quadrature nodes.
    seed : int
        Seed of the scrambled Sobol' rule.
    name : str, optional
        How files record g (by default its ``__name__``).

    Notes
    -----
    Accuracy (tested against the closed form for g = σ(⟨v, x_H⟩), a one-neuron teacher, d_H = 3, and against
    Monte Carlo for g = |x_H|): absolute error below 1e-3 · max|F*| on F* and ∇F* with the default budget,
    worst for neurons lying in H (r = 0), where the x_H-integrand has a kink; exact to round-off for
    polynomial g of low degree; E f*² and E[f* x] to the rule's accuracy for g itself.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> Q = np.eye(6)[:, :2]
    >>> t = mf.MultiIndexTarget(lambda xh: np.linalg.norm(xh, axis=1), Q, degree=1)
    >>> t.d, t.d_hidden
    (6, 2)
    """

    def __init__(self, g: Callable, Q, degree: float | None = None, rule: str = "auto",
                 max_nodes: int = 1 << 16, seed: int = 0, name: str | None = None):
        if rule not in ("auto", "hermite", "sobol"):
            raise ValueError(f"rule must be 'auto', 'hermite' or 'sobol', got {rule!r}")
        super().__init__(g, Q, degree, name or getattr(g, "__name__", "g"))
        self._nodes, self._weights, self.rule = self._standard_rule(rule, check_positive_int(max_nodes, "max_nodes"),
                                                                    seed)
        self._g_cache: dict[float, np.ndarray] = {}
        self._g_at(1.0)

    def _g_at(self, s: float) -> np.ndarray:
        """g at the quadrature nodes scaled by the input standard deviation s (cached)."""
        if s not in self._g_cache:
            values = np.asarray(self.g(s * self._nodes), dtype=np.float64)
            if values.shape != (self._nodes.shape[0],):
                raise ValueError(f"g must map an (n, d_H) array to (n,) values, got shape {values.shape}")
            self._g_cache[s] = values
        return self._g_cache[s]

    def _standard_rule(self, rule, max_nodes, seed):
        """Nodes and weights for E[h(z)], z ~ N(0, I_{d_H})."""
        per_axis = int(np.floor(max_nodes ** (1.0 / self.d_hidden) + 1e-9))
        if rule == "hermite" or (rule == "auto" and per_axis >= 6):
            x1, w1 = np.polynomial.hermite_e.hermegauss(max(per_axis, 2))
            w1 = w1 / _SQRT_2PI
            grids = np.meshgrid(*([x1] * self.d_hidden), indexing="ij")
            wgrid = np.meshgrid(*([w1] * self.d_hidden), indexing="ij")
            nodes = np.stack([gr.ravel() for gr in grids], axis=1)
            weights = np.prod(np.stack([w.ravel() for w in wgrid], axis=1), axis=1)
            return nodes, weights, "hermite"
        from scipy.stats import qmc

        n = 1 << int(np.floor(np.log2(max_nodes)))
        u = qmc.Sobol(self.d_hidden, scramble=True, seed=seed).random(n)
        return ndtri(u), np.full(n, 1.0 / n), "sobol"

    def relu_correlation(self, inputs, b, nx=None, tile_elements: int = 1 << 22):
        self.check_inputs(inputs)
        nx = nx or get_backend("numpy")
        s = self._gaussian_std(inputs)
        b_h, b_perp = self._split(b, nx)
        direction, r = nx.unit_rows(b_perp)
        x_h = self._constant(nx, f"x_h{s}", lambda: s * self._nodes)
        x_h_t = self._constant(nx, f"x_h.T{s}", lambda: (s * self._nodes).T)
        wg = self._constant(nx, f"wg{s}", lambda: self._weights * self._g_at(s))
        n = b_h.shape[0]
        value, grad_h, grad_r = nx.empty((n,)), nx.empty((n, self.d_hidden)), nx.empty((n,))
        rows = max(1, tile_elements // x_h.shape[0])
        for i0 in range(0, n, rows):
            sl = slice(i0, min(n, i0 + rows))
            smooth, cdf, pdf = _smoothed_relu(b_h[sl] @ x_h_t, (s * r[sl])[:, None], nx)
            value[sl] = smooth @ wg
            grad_h[sl] = (cdf * wg) @ x_h
            grad_r[sl] = s * (pdf @ wg)
        grad = grad_h @ self._constant(nx, "Q.T", lambda: self.Q.T) + grad_r[:, None] * direction
        factor = self._sphere_factor(inputs, (self.degree or 0) + 1)
        return factor * value, factor * grad

    def linear_moment(self, inputs):
        self.check_inputs(inputs)
        s = self._gaussian_std(inputs)
        m_h = (self._weights * self._g_at(s)) @ (s * self._nodes)
        return self._sphere_factor(inputs, (self.degree or 0) + 1) * (self.Q @ m_h)

    def second_moment(self, inputs):
        self.check_inputs(inputs)
        s = self._gaussian_std(inputs)
        return float(self._weights @ self._g_at(s) ** 2) * self._sphere_factor(inputs, 2 * (self.degree or 0))

    def spec(self):
        return {"target": "MultiIndexTarget", "d": self.d, "d_hidden": self.d_hidden, "g": self.name,
                "g_checksum": function_checksum(self.g, self.d_hidden), "degree": self.degree, "rule": self.rule,
                "nodes": int(self._nodes.shape[0])}


class RadialTarget(_SubspaceTarget):
    r"""Radial multi-index target f*(x) = φ(|Qᵀx|), e.g. φ(R) = R for f* = |x_H| (Hajjar & Chizat 2023, §5).

    With standard coordinates x = s x̃ (s² the input variance), k = s|b_H|, τ = s|b_⊥| and x₁ the component of x̃_H
    along b_H, F*(b) = E[h(x₁) σ(k x₁ + τ z)] where h(x₁) = E_y φ(s√(x₁² + |y|²)), y ~ N(0, I_{d_H − 1}), is a smooth
    even function (for φ(R) = R^p in closed form, E(a+χ²_ν)^{p/2} = 2^{p/2}(a/2)^{(ν+p)/2} U(ν/2, ν/2 + p/2 + 1, a/2),
    U Tricomi's function; otherwise by Gauss–Laguerre in |y|²/2), tabulated once in a = x₁² (cubic spline).
    Rotating (x₁, z) to w = (k x₁ + τ z)/√(k² + τ²) puts the ReLU kink exactly at w = 0, so a half-line rule in w
    times Gauss–Hermite in the orthogonal w' converges spectrally for every neuron, including neurons in H
    (r = 0), where the plain tensor rule of :class:`MultiIndexTarget` is slow. Spherical inputs need φ
    homogeneous of ``degree``.

    Accuracy (order 40, φ(R) = R, checked against 4·10⁶-sample Monte Carlo and across orders): ~1e-10 relative for
    neurons in H, ~1e-6 for generic neurons at d_H = 5, ~5e-4 at d_H = 2, where h(x₁) has an x₁² log|x₁| term
    (the corner of |x_H| in the plane) that the rule crosses.

    Parameters
    ----------
    phi : callable
        φ on an array of radii.
    Q : array (d, d_H)
    degree : float, optional
        Homogeneity degree of φ (spherical inputs).
    power : float, optional
        If φ(R) = R^power, h is taken from the closed form.
    order : int
        Nodes per axis of the (w, w') rule.
    name : str, optional
        How files record φ (by default its ``__name__``).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> t = mf.RadialTarget.norm(np.eye(8)[:, :3])         # f* = |x_H|
    >>> round(t.second_moment(mf.Gaussian(8)), 10)         # E|x_H|² = d_H
    3.0
    """

    def __init__(self, phi: Callable, Q, degree: float | None = None, power: float | None = None,
                 order: int = 40, name: str | None = None):
        self.phi, self.power, self.order = phi, power, int(order)
        w_half, ww_half = half_normal_rule(self.order)  # E over w > 0 of N(0, 1), exact for polynomials in w
        x2, w2 = np.polynomial.hermite_e.hermegauss(self.order)
        self._w = np.repeat(w_half, len(x2))
        self._wp = np.tile(x2, len(w_half))
        self._ww = np.repeat(ww_half, len(x2)) * np.tile(w2 / _SQRT_2PI, len(w_half))
        self._tables: dict[float, object] = {}
        super().__init__(lambda xh: phi(np.linalg.norm(xh, axis=1)), Q, degree, name or getattr(phi, "__name__", "phi"))
        self.rule = f"rotated half-line x Hermite ({len(self._ww)} nodes), h tabulated"

    @classmethod
    def norm(cls, Q, **kwargs) -> RadialTarget:
        """f*(x) = |Qᵀx| (homogeneous of degree 1, closed-form h)."""
        return cls(_norm_phi, Q, degree=1, power=1, name="norm", **kwargs)

    def _h_table(self, s: float):
        """Cubic spline of h as a function of a = x₁² (h is even and smooth, so smooth in a as well)."""
        if s in self._tables:
            return self._tables[s]
        from scipy.interpolate import CubicSpline
        from scipy.special import gamma, hyperu, roots_genlaguerre

        nu = self.d_hidden - 1
        a = np.linspace(0.0, (1.2 * (np.abs(self._w).max() + np.abs(self._wp).max())) ** 2, 8001)
        if nu > 0:
            rho, wr = roots_genlaguerre(200, nu / 2 - 1)
            wr = wr / gamma(nu / 2)

            def by_quadrature(points):
                return np.array([wr @ np.asarray(self.phi(s * np.sqrt(ai + 2 * rho)), dtype=np.float64)
                                 for ai in points])

        if self.power is not None and nu > 0:
            p = float(self.power)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                h = 2 ** (p / 2) * (a / 2) ** ((nu + p) / 2) * hyperu(nu / 2, nu / 2 + p / 2 + 1, a / 2)
            h[0] = 2 ** (p / 2) * gamma((nu + p) / 2) / gamma(nu / 2)
            h *= s**p
            bad = ~np.isfinite(h)  # the closed form overflows (inf · 0) for large a and ν; quadrature is fine there
            h[bad] = by_quadrature(a[bad])
        elif nu > 0:
            h = by_quadrature(a)
        else:
            h = np.asarray(self.phi(s * np.sqrt(a)), dtype=np.float64)
        self._tables[s] = CubicSpline(a, h)
        return self._tables[s]

    def _h_on(self, nx: Backend, s: float):
        """The spline of h as piecewise-cubic arrays on ``nx`` (breakpoints, and coefficients of (a − a_i)³ … 1)."""
        spline = self._h_table(s)
        knots = self._constant(nx, f"h_knots{s}", lambda: spline.x)
        coefficients = [self._constant(nx, f"h_c{j}{s}", lambda j=j: spline.c[j]) for j in range(4)]
        return knots, coefficients

    @staticmethod
    def _piecewise_cubic(nx: Backend, knots, coefficients, a):
        """A cubic spline at ``a`` (Horner in each interval; the end pieces extrapolate, as scipy's do)."""
        i = nx.clip(nx.searchsorted(knots, a) - 1, 0, knots.shape[0] - 2)
        t = a - knots[i]
        c3, c2, c1, c0 = (c[i] for c in coefficients)
        return ((c3 * t + c2) * t + c1) * t + c0

    def relu_correlation(self, inputs, b, nx=None, tile_elements: int = 1 << 22):
        self.check_inputs(inputs)
        nx = nx or get_backend("numpy")
        s = self._gaussian_std(inputs)
        b_h, b_perp = self._split(b, nx)
        e_h, k = nx.unit_rows(b_h)
        e_perp, tau = nx.unit_rows(b_perp)
        k, tau = s * k, s * tau
        nk = nx.sqrt(k * k + tau * tau)
        inv = nx.where(nk > 0, 1.0 / nx.where(nk > 0, nk, 1.0), 0.0)  # zero neurons: F* = 0, ∇F* = 0
        knots, coefficients = self._h_on(nx, s)
        w, wp, ww = (self._constant(nx, name, lambda v=v: v) for name, v in
                     (("w", self._w), ("wp", self._wp), ("ww", self._ww)))
        n = b_h.shape[0]
        value, d_k, d_tau = nx.empty((n,)), nx.empty((n,)), nx.empty((n,))
        rows = max(1, tile_elements // len(self._ww))
        for i0 in range(0, n, rows):
            sl = slice(i0, min(n, i0 + rows))
            ck, ct = (k[sl] * inv[sl])[:, None], (tau[sl] * inv[sl])[:, None]
            x1 = ck * w + ct * wp       # component of x̃_H along b_H
            z = ct * w - ck * wp        # orthogonal Gaussian part
            hw = self._piecewise_cubic(nx, knots, coefficients, x1 * x1) * ww
            value[sl] = nk[sl] * (hw @ w)
            d_k[sl] = (hw * x1).sum(axis=1)
            d_tau[sl] = (hw * z).sum(axis=1)
        grad = s * ((d_k[:, None] * e_h) @ self._constant(nx, "Q.T", lambda: self.Q.T) + d_tau[:, None] * e_perp)
        factor = self._sphere_factor(inputs, (self.degree or 0) + 1)
        return factor * value, factor * grad

    def linear_moment(self, inputs):
        self.check_inputs(inputs)
        return np.zeros(self.d)  # φ(|x_H|) is even

    def second_moment(self, inputs):
        from scipy.special import gamma, roots_genlaguerre

        self.check_inputs(inputs)
        s = self._gaussian_std(inputs)
        rho, wr = roots_genlaguerre(200, self.d_hidden / 2 - 1)  # |x̃_H|²/2 ~ Gamma(d_H/2)
        values = np.asarray(self.phi(s * np.sqrt(2 * rho)), dtype=np.float64)
        return float(wr @ values**2 / gamma(self.d_hidden / 2)) * self._sphere_factor(inputs, 2 * (self.degree or 0))

    def spec(self):
        return {"target": "RadialTarget", "d": self.d, "d_hidden": self.d_hidden, "phi": self.name,
                "phi_checksum": function_checksum(self.g, self.d_hidden), "degree": self.degree, "power": self.power,
                "rule": self.rule}


def _norm_phi(radius):
    return radius


class MonteCarloTarget(Target):
    """Any callable target, its moments estimated on a fixed seeded sample of the input law (approximate).

    Parameters
    ----------
    fn : callable
        Maps an (n, d) array of inputs to (n,) values.
    d : int
        Input dimension.
    n_samples : int
        Size of the fixed sample (the Monte-Carlo error of F* is about std(f* σ)/√n_samples).
    seed : int
        Seed of the sample, so that runs are reproducible.
    name : str, optional
        How files record ``fn`` (by default its ``__name__``).

    The risk of a problem with this target mixes the closed-form self term with sample averages: a surrogate that a
    flow can drive below 0 (and without bound) once the particles fit the sample, which
    :class:`~meanfield.problem.ApproximateRiskWarning` reports; use enough samples, or measure the risk on fresh
    inputs.

    Examples
    --------
    Any callable, e.g. f*(x) = |x₁| on a fixed sample (not exact: its moments carry sampling error):

    >>> import numpy as np, meanfield as mf
    >>> t = mf.MonteCarloTarget(lambda x: np.abs(x[:, 0]), d=3, n_samples=1 << 16, seed=0)
    >>> t.exact, bool(abs(t.second_moment(mf.Gaussian(3)) - 1.0) < 0.02)      # E g² = 1
    (False, True)
    """

    exact = False

    def __init__(self, fn: Callable, d: int, n_samples: int = 1 << 16, seed: int = 0, name: str | None = None):
        self.fn, self.d = fn, check_positive_int(d, "d")
        self.n_samples, self.seed = check_positive_int(n_samples, "n_samples"), check_seed(seed, "seed")
        self.name = name or getattr(fn, "__name__", "f")
        self._cache: dict = {}

    def __call__(self, x):
        return np.asarray(self.fn(np.asarray(x)), dtype=np.float64)

    def _sample(self, inputs):
        self.check_inputs(inputs)
        key = tuple(sorted(inputs.spec().items()))
        if key not in self._cache:
            x = inputs.sample(self.n_samples, self.seed)
            y = self(x)
            if y.shape != (self.n_samples,):
                raise ValueError(f"the target function must map (n, d) inputs to (n,) values, got {y.shape}")
            self._cache[key] = (x, y)
        return self._cache[key]

    def check_unit(self, unit, inputs=None):
        """Any unit: the correlation is a sample average."""

    def check_bias(self):
        """Biased neurons: a sample average too."""

    def correlation(self, inputs, b, unit, nx=None, bias=False):
        if unit.relu_decomposition is not None and not bias:
            return super().correlation(inputs, b, unit, nx)
        nx = nx or get_backend("numpy")  # other units, and biases: σ and σ' in numpy on the fixed sample
        x, y = self._sample(inputs)
        b = nx.to_numpy(b)
        z = b[:, :-1] @ x.T + b[:, -1:] if bias else b @ x.T
        weights = y / self.n_samples
        slopes = unit.derivative(z) * weights
        grad = slopes @ x
        if bias:
            grad = np.column_stack([grad, slopes.sum(axis=1)])
        return nx.asarray(unit(z) @ weights), nx.asarray(grad)

    def relu_correlation(self, inputs, b, nx=None, tile_elements: int = 1 << 22):
        nx = nx or get_backend("numpy")
        key = tuple(sorted(inputs.spec().items()))
        x = self._constant(nx, ("x", key), lambda: self._sample(inputs)[0])
        x_t = self._constant(nx, ("x.T", key), lambda: self._sample(inputs)[0].T)
        weights = self._constant(nx, ("y/n", key), lambda: self._sample(inputs)[1] / self.n_samples)
        b = nx.asarray(b)
        value, grad = nx.empty((b.shape[0],)), nx.empty(tuple(b.shape))
        rows = max(1, tile_elements // self.n_samples)
        for i0 in range(0, b.shape[0], rows):
            z = b[i0:i0 + rows] @ x_t
            positive = z > 0
            value[i0:i0 + rows] = nx.where(positive, z, 0.0) @ weights
            grad[i0:i0 + rows] = nx.where(positive, weights, 0.0) @ x
        return value, grad

    def linear_moment(self, inputs):
        x, y = self._sample(inputs)
        return y @ x / self.n_samples

    def second_moment(self, inputs):
        _, y = self._sample(inputs)
        return float(y @ y / self.n_samples)

    def spec(self):
        return {"target": "MonteCarloTarget", "d": self.d, "fn": self.name,
                "fn_checksum": function_checksum(self.fn, self.d), "n_samples": self.n_samples, "seed": self.seed,
                "exact": False}


# --- the targets of configuration files, by kind: TARGETS.create(kind, inputs=law, **options) ---------------------


def _direction(value, d: int, rng: np.random.Generator, name: str) -> np.ndarray:
    """A given vector of d numbers, or "random": a unit vector drawn from ``rng``."""
    if isinstance(value, str):
        if value != "random":
            raise ValueError(f"{name} must be a list of {d} numbers or 'random', got {value!r}")
        v = rng.standard_normal(d)
        return v / np.linalg.norm(v)
    v = np.asarray(value, dtype=np.float64)
    if v.shape != (d,):
        raise ValueError(f"{name} has {v.size} entries but the inputs have d = {d}")
    return v


@TARGETS.register("teacher")
def _teacher(inputs: InputLaw, k: int = 1, coefficients: float | list[float] = 1.0, seed: int = 0,
             unit_neurons: bool = True, activation: str = "relu",
             bias: float | list[float] | None = None) -> TeacherNetwork:
    """A :class:`TeacherNetwork` of k neurons drawn N(0, I_d) from ``seed`` (normalised with ``unit_neurons``), output
    weights ``coefficients`` (one number for all, or k), unit ``activation`` and optional biases."""
    k = check_positive_int(k, "k")
    rng = np.random.default_rng(check_seed(seed, "seed"))
    U = rng.standard_normal((k, inputs.d))
    if unit_neurons:
        U /= np.linalg.norm(U, axis=1, keepdims=True)
    c = np.broadcast_to(np.asarray(coefficients, dtype=np.float64), (k,))
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float64)
        if bias.ndim and bias.shape != (k,):
            raise ValueError(f"bias has {bias.size} entries but the teacher has k = {k} neurons")
        bias = np.broadcast_to(bias, (k,)).copy()
    return TeacherNetwork(c.copy(), U, activation=activation, bias=bias)


@TARGETS.register("linear")
def _linear(inputs: InputLaw, beta: list[float] | str = "random", seed: int = 0) -> LinearTarget:
    """A :class:`LinearTarget` ⟨β, x⟩: β given, or "random" (a unit vector drawn from ``seed``)."""
    return LinearTarget(_direction(beta, inputs.d, np.random.default_rng(check_seed(seed, "seed")), "beta"))


@TARGETS.register("cubic")
def _cubic(inputs: InputLaw, z: list[float] | str = "random", seed: int = 0, half_energy: float = 1.0) -> CubicTarget:
    """A :class:`CubicTarget` C Σ z_k x_k³ with ½ E f*² = ``half_energy``: z given, or "random" (from ``seed``)."""
    z = _direction(z, inputs.d, np.random.default_rng(check_seed(seed, "seed")), "z")
    return CubicTarget.normalized(z, inputs, half_energy)


@TARGETS.register("radial")
def _radial(inputs: InputLaw, d_hidden: int, g: str = "norm", subspace: str = "first", seed: int = 0) -> RadialTarget:
    """A :class:`RadialTarget` f* = |Qᵀx| (``g = "norm"``) on a hidden subspace of dimension d_hidden: the first
    coordinates (``subspace = "first"``) or a random orthonormal basis drawn from ``seed`` (``"random"``)."""
    d_hidden = check_positive_int(d_hidden, "d_hidden")
    if g != "norm":
        raise ValueError(f"g must be 'norm' (f* = |x_H|), got {g!r}; other functions of x_H need the Python API "
                         "(RadialTarget, MultiIndexTarget)")
    if d_hidden > inputs.d:
        raise ValueError(f"d_hidden = {d_hidden} exceeds the input dimension d = {inputs.d}")
    if subspace == "first":
        Q = np.eye(inputs.d)[:, :d_hidden]
    elif subspace == "random":
        Q, _ = np.linalg.qr(np.random.default_rng(check_seed(seed, "seed")).standard_normal((inputs.d, d_hidden)))
    else:
        raise ValueError(f"subspace must be 'first' or 'random', got {subspace!r}")
    return RadialTarget.norm(Q)
