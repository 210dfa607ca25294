r"""The Gaussian pair moment of two units, and the routes that compute it.

Every field the flow needs is built from one quantity: for jointly Gaussian pre-activations (u, u′) with variances
q, q′, covariance p and means c, c′ (the biases),

.. math::

    K(p, q, q', c, c') = E[σ(u)\, τ(u')], \quad\text{with } ∂_pK,\ ∂_qK \text{ and, with biases, } ∂_cK,

σ the student's unit and τ the source's (the same unit for the particles' self-interaction, the teacher's unit for a
teacher's field). For x ~ N(0, κI) and neurons (b, c), (b′, c′): p = κ⟨b, b′⟩, q = κ|b|², q′ = κ|b′|², and the field
of sources s_k with coefficients a_k at b is V(b) = Σ_k a_k K_k with ∇_bV = κ Σ_k a_k (∂_pK_k s_k + 2 ∂_qK_k b) and
∂_cV = Σ_k a_k ∂_cK_k.

A *route* is one way of computing K over all pairs: :meth:`Route.moments` on arrays of (p, q, q′, c, c′) and
:meth:`Route.field` over a tiled set of pairs. A unit states its Gaussian moments in one or more forms —
a dual kernel ``dual(c, nx)`` (degree 1), a closed-form pair kernel ``pair_kernel(p, q, q2, nx)`` (and
``shifted_pair_kernel`` with biases), a Mehler series ``mehler_series(q, q2, c, c2)``, or the ReLU decomposition
σ = λz + ρ relu(z) — and :func:`pair_route` picks, in this one place, the first route (by :attr:`Route.priority`)
that can use what the two units state:

======================  ==========================================================================  ========
route                   when                                                                        priority
======================  ==========================================================================  ========
:class:`ArcCosine`      both units of the ReLU family, no biases (closed form; compiled on numba)    10
:class:`BivariateReLU`  the ReLU with biases (bivariate normal moments; compiled on numba)           20
:class:`SeriesRoute`    a unit given by its Mehler series (per-particle coefficients)               30
:class:`DualKernel`     a unit with a dual kernel of degree 1, no biases                             40
:class:`PairKernel`     a unit with a closed-form pair kernel (biases: ``shifted_pair_kernel``)       50
:class:`MixedSeries`    two different units: the Mehler series of the pair (Gaussian inputs)          90
======================  ==========================================================================  ========

A new route is one class registered in :data:`ROUTES`; a backend compiles a route by marking a method with
:func:`~meanfield.kernels.base.compiles` (see :class:`~meanfield.kernels.numba_backend.NumbaBackend`).

Examples
--------
>>> import numpy as np, meanfield as mf
>>> from meanfield.kernels.routes import pair_route
>>> pair_route(mf.ReLU()).name, pair_route(mf.ReLU(), bias=True).name, pair_route(mf.activations.Erf()).name
('arc_cosine', 'bivariate_relu', 'pair_kernel')
>>> pair_route(mf.activations.Erf(), mf.ReLU()).name        # a student against a teacher of another unit
'mixed_series'
>>> K, dK_dp, dK_dq = pair_route(mf.activations.Erf()).moments(np.array(0.5), np.array(0.5), np.array(0.5), np)
>>> bool(np.isclose(K, 2 / np.pi * np.arcsin(0.5)))   # E erf(g/√2)² for g ~ N(0, 1)
True
"""

from __future__ import annotations

import math

from ..registry import Registry

__all__ = ["Route", "ROUTES", "pair_route", "find_route", "as_route", "states", "same_unit", "ArcCosine",
           "BivariateReLU", "SeriesRoute", "DualKernel", "PairKernel", "MixedSeries", "arc_cosine_terms"]

#: The routes by name; :func:`pair_route` tries them in the order of their :attr:`Route.priority`.
ROUTES = Registry("route")


def states(unit, form: str) -> bool:
    """Whether ``unit`` states its Gaussian moments in the form ``form`` (a method name such as "dual" or
    "pair_kernel"): its class defines that method beyond what :class:`~meanfield.activations.Activation` declares.

    Examples
    --------
    >>> import meanfield as mf
    >>> states(mf.activations.Erf(), "pair_kernel"), states(mf.activations.Erf(), "dual")
    (True, False)
    """
    from ..activations import Activation

    method = getattr(type(unit), form, None)
    return method is not None and method is not getattr(Activation, form, None)


def arc_cosine_terms(c, nx):
    """(J(θ), π − θ, sin θ) of the first arc-cosine kernel J(θ) = sin θ + (π − θ) cos θ from cosines c (in place on
    fresh arrays, numpy arrays and torch tensors alike: the pass is memory-bound).

    Examples
    --------
    >>> import numpy as np
    >>> [float(t[0]) for t in arc_cosine_terms(np.array([1.0]), np)] == [np.pi, np.pi, 0.0]
    True
    """
    pi_minus_theta = nx.arccos(c)
    pi_minus_theta *= -1.0
    pi_minus_theta += math.pi
    sin = 1.0 - c
    sin *= 1.0 + c
    sin = nx.sqrt(sin)
    k = pi_minus_theta * c
    k += sin
    return k, pi_minus_theta, sin


class Route:
    """One way of computing the Gaussian pair moment K (module docstring) and its derivatives.

    A subclass gives :meth:`build` (a route for two units and whether the neurons carry biases, or None when it cannot
    serve them), :meth:`moments` on arrays and, where it has something better than tiles of :meth:`moments`,
    :meth:`field`; it is registered in :data:`ROUTES` with a :attr:`priority`.

    Examples
    --------
    A route for units that state their moment through a method ``gaussian_pair`` (a form of one's own). Registered
    in :data:`ROUTES` (``@ROUTES.register("own_form")``), :func:`pair_route` would choose it for such units by its
    priority; here it is handed to the field directly:

    >>> import numpy as np, meanfield as mf
    >>> from meanfield.kernels.routes import Route
    >>> class OwnForm(Route):
    ...     priority = 5
    ...     @classmethod
    ...     def build(cls, student, teacher, bias):
    ...         return cls(student) if student == teacher and hasattr(student, "gaussian_pair") else None
    ...     def __init__(self, unit):
    ...         super().__init__()
    ...         self.unit = unit
    ...     def moments(self, p, q, q2, nx, c=None, c2=None):
    ...         return self.unit.gaussian_pair(p, q, q2, nx)
    >>> class Linear(mf.Activation):
    ...     name, degree = "linear_own", 1
    ...     def value(self, z, nx): return 1.0 * z
    ...     def derivative(self, z, nx=None): return 0.0 * z + 1.0
    ...     def gaussian_pair(self, p, q, q2, nx): return p, 1.0 + 0.0 * p, 0.0 * p
    >>> route = OwnForm.build(Linear(), Linear(), False)
    >>> b = np.array([[1.0, 2.0]])
    >>> float(mf.get_backend("numpy").field(b, b, np.ones(1), 1.0, route, grad=False)[0][0])   # E(b·x)² = |b|²
    5.0
    """

    #: Lower first: :func:`pair_route` takes the first route whose :meth:`build` serves the units.
    priority = 100.0
    #: Whether the moments are homogeneous of degree 1 in (p, q, q′) (the field then holds for any law with
    #: E[xxᵀ] = κI that is rotationally invariant, the sphere included).
    homogeneous = False

    def __init__(self, bias: bool = False):
        self.bias = bool(bias)

    @property
    def name(self) -> str:
        """The name under which the route's class is registered."""
        return ROUTES.name_of(type(self))

    @classmethod
    def build(cls, student, teacher, bias: bool):
        """This route for a ``student`` unit against a ``teacher`` unit (the same unit for a self-interaction), with or
        without biases, or None when the route cannot serve them."""
        return None

    def moments(self, p, q, q2, nx, c=None, c2=None):
        """(K, ∂_pK, ∂_qK) elementwise on broadcasting arrays of the backend ``nx`` — and ∂_cK with biases, where c, c′
        are the means."""
        raise NotImplementedError

    def tile_moments(self, sides, i0: int, i1: int, nx, scale: float):
        """The moments of the rows i0:i1 of ``sides`` (:class:`~meanfield.kernels.field.PairSides`) against every
        source: (K, ∂_pK, ∂_qK, ∂_cK or None)."""
        p = scale * (sides.b_points[i0:i1] @ sides.b_sources.T)
        q, q2 = sides.q_points[i0:i1, None], sides.q_sources[None, :]
        if not self.bias:
            return (*self.moments(p, q, q2, nx), None)
        return self.moments(p, q, q2, nx, sides.c_points[i0:i1, None], sides.c_sources[None, :])

    def field(self, nx, points, sources, coef, scale: float, grad: bool = True, tile_elements: int = 1 << 22):
        """(V, ∇V) at ``points`` from ``sources`` with coefficients ``coef`` (rows [b | c] with biases), by tiles of
        :meth:`tile_moments` (:func:`~meanfield.kernels.field.moment_field`)."""
        from .field import PairSides, moment_field

        return moment_field(nx, PairSides(nx, points, sources, scale, self.bias), coef, scale, self.tile_moments,
                            grad, tile_elements)

    def __repr__(self):
        return f"{type(self).__name__}(bias={self.bias})"


def pair_route(student, teacher=None, bias: bool = False) -> Route:
    """The route of the Gaussian pair moment of ``student`` against ``teacher`` (the student itself when None), with
    or without biases: the first of :data:`ROUTES`, by priority, whose ``build`` serves them.

    Examples
    --------
    >>> import meanfield as mf
    >>> pair_route(mf.activations.GELU()).name, pair_route(mf.activations.ReLUPower(2)).name
    ('series', 'pair_kernel')
    """
    route = find_route(student, teacher, bias)
    if route is not None:
        return route
    if bias:
        from ..activations import biased_units

        raise ValueError(f"{student!r} has no kernel for biased neurons; biases are available for "
                         f"{', '.join(biased_units())}")
    raise ValueError(f"{student!r} states no Gaussian pair moment: give it dual(c, nx) (degree 1), "
                     "pair_kernel(p, q, q2, nx) or mehler_series(q, q2, c, c2)")


def find_route(student, teacher=None, bias: bool = False) -> Route | None:
    """:func:`pair_route`, or None when no route serves the units.

    Examples
    --------
    >>> import meanfield as mf
    >>> find_route(mf.activations.ReLUPower(2), bias=True) is None
    True
    """
    teacher = student if teacher is None else teacher
    for cls in _by_priority():
        route = cls.build(student, teacher, bias)
        if route is not None:
            return route
    return None


_ORDER: dict = {}


def _by_priority() -> tuple:
    """The route classes by priority, sorted once per set of registered names (this runs at every field)."""
    names = ROUTES.names()
    if _ORDER.get("names") != names:
        _ORDER["names"], _ORDER["classes"] = names, tuple(sorted((ROUTES[n] for n in names), key=lambda c: c.priority))
    return _ORDER["classes"]


def same_unit(student, teacher) -> bool:
    """Whether the two units are one (a self-interaction): the same object, or equal specs.

    Examples
    --------
    >>> import meanfield as mf
    >>> same_unit(mf.ReLU(), mf.ReLU()), same_unit(mf.ReLU(), mf.LeakyReLU(0.1))
    (True, False)
    """
    return student is teacher or student == teacher


def as_route(activation, bias: bool = False) -> Route:
    """A route as given, or the route of a unit's self-interaction (a unit, a name or a leaky slope).

    Examples
    --------
    >>> as_route(0.0).name
    'arc_cosine'
    """
    if isinstance(activation, Route):
        return activation
    if not _AS_ACTIVATION:  # meanfield.activations imports the kernels package: take it on first use
        from ..activations import as_activation

        _AS_ACTIVATION.append(as_activation)
    return pair_route(_AS_ACTIVATION[0](activation), bias=bias)


_AS_ACTIVATION: list = []


@ROUTES.register("arc_cosine")
class ArcCosine(Route):
    r"""Units of the ReLU family σ = λz + ρ relu(z), τ = λ′z + ρ′ relu(z), without biases: with E[u relu(u′)] = p/2,

    .. math::  K = ℓ\, p + w\, \frac{\sqrt{q q'}}{2π} J(θ), \qquad ℓ = λλ' + (λρ' + ρλ')/2, \quad w = ρρ',

    θ the angle of the neurons (J the first arc-cosine kernel, Cho & Saul 2009). For a self-interaction (ℓ, w) are the
    unit's ``kernel_weights``. The linear part is added exactly, the weight after the sums
    (:func:`~meanfield.kernels.field.dual_field`); compiled on numba and Triton.

    Examples
    --------
    >>> import meanfield as mf
    >>> route = ArcCosine.build(mf.LeakyReLU(0.2), mf.ReLU(), False)    # ℓ = 0.2/2, w = 0.8
    >>> round(route.linear, 12), round(route.weight, 12)
    (0.1, 0.8)
    """

    priority = 10
    homogeneous = True

    def __init__(self, linear: float, weight: float):
        super().__init__()
        self.linear, self.weight = float(linear), float(weight)

    @classmethod
    def build(cls, student, teacher, bias):
        if bias:
            return None
        if same_unit(student, teacher):
            weights = student.kernel_weights
            return None if weights is None else cls(*weights)
        first, second = student.relu_decomposition, teacher.relu_decomposition
        if first is None or second is None:
            return None
        (lam, rho), (lam2, rho2) = first, second
        return cls(lam * lam2 + 0.5 * (lam * rho2 + rho * lam2), rho * rho2)

    def dual_parts(self, c, nx):
        """(ℓ, w/(2π), J, π − θ, sin θ): the dual kernel k(c) = ℓ c + w J(θ)/(2π) in parts."""
        return (self.linear, self.weight / (2 * math.pi), *arc_cosine_terms(c, nx))

    def field(self, nx, points, sources, coef, scale, grad=True, tile_elements=1 << 22):
        from .field import dual_field

        return dual_field(nx, points, sources, coef, scale, self.dual_parts, grad, tile_elements)

    def moments(self, p, q, q2, nx, c=None, c2=None):
        return _dual_moments(self.dual_parts, p, q, q2, nx)

    def __repr__(self):
        return f"ArcCosine(linear={self.linear!r}, weight={self.weight!r})"


def _dual_moments(dual_parts, p, q, q2, nx):
    """(K, ∂_pK, ∂_qK) of a degree-1 dual kernel: K = √(qq′) k(ρ), ∂_pK = k′(ρ), ∂_qK = (K − p ∂_pK)/(2q)."""
    from ..hermite import pair_correlation

    root = nx.sqrt(q * q2)
    linear, w, k, dk, _ = dual_parts(pair_correlation(p, q, q2, nx), nx)
    k, dk = w * k, w * dk
    if linear:
        k = k + linear * pair_correlation(p, q, q2, nx)
        dk = dk + linear
    value = root * k
    positive = q > 0
    return value, dk, nx.where(positive, (value - p * dk) / (2.0 * nx.where(positive, q, 1.0)), 0.0)


@ROUTES.register("bivariate_relu")
class BivariateReLU(Route):
    """The ReLU with biases: E[U⁺V⁺] of a non-centred bivariate normal through Φ₂ (:mod:`meanfield.bivariate`),
    with the correlation and its complements 1 ∓ ρ taken from the unit directions (accurate as |ρ| → 1). Compiled on
    numba.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> neuron = np.array([[0.0, 1.0]])   # b = 0, c = 1: the constant unit relu(1) = 1
    >>> BivariateReLU().field(mf.get_backend("numpy"), neuron, neuron, np.ones(1), 1.0)[0].tolist()
    [1.0]
    """

    priority = 20

    def __init__(self):
        super().__init__(bias=True)

    @classmethod
    def build(cls, student, teacher, bias):
        relu = (0.0, 1.0)
        return cls() if bias and same_unit(student, teacher) and student.relu_decomposition == relu else None

    def moments(self, p, q, q2, nx, c=None, c2=None):
        from ..bivariate import relu_moments

        return relu_moments(p, q, q2, c, c2, nx)

    def field(self, nx, points, sources, coef, scale, grad=True, tile_elements=1 << 22):
        from ..bivariate import pair_correlations, relu_pair_moments
        from .field import PairSides, moment_field

        sides = PairSides(nx, points, sources, scale, bias=True)
        u_points, n_points = nx.unit_rows(sides.b_points)
        u_sources, n_sources = (u_points, n_points) if sides.same else nx.unit_rows(sides.b_sources)
        s_points, s_sources = n_points * scale**0.5, n_sources * scale**0.5

        def tile(sides, i0, i1, nx, scale):
            return relu_pair_moments(s_points[i0:i1, None], s_sources[None, :], sides.c_points[i0:i1, None],
                                     sides.c_sources[None, :], *pair_correlations(u_points[i0:i1], u_sources, nx), nx)

        return moment_field(nx, sides, coef, scale, tile, grad, tile_elements)


@ROUTES.register("series")
class SeriesRoute(Route):
    """A pair moment given as a Mehler series of per-particle coefficients (:class:`~meanfield.hermite.MehlerSeries`):
    the coefficients are formed once per field by ``source.mehler_series(q, q2, c, c2)`` (O(m K)) and summed over
    pairs by the backend (:meth:`~meanfield.kernels.base.Backend.series_field`, compiled on numba). ``source`` is a unit
    that states its series (:class:`~meanfield.activations.MehlerUnit`) or the kernel of a pair of units
    (:class:`~meanfield.mixed.MixedKernel`).

    Examples
    --------
    >>> import meanfield as mf
    >>> SeriesRoute.build(mf.activations.Tanh(), mf.activations.Tanh(), True)
    SeriesRoute(Tanh(tol=1e-10, max_order=280), bias=True)
    """

    priority = 30

    def __init__(self, source, bias: bool = False):
        super().__init__(bias)
        self.source = source

    @classmethod
    def build(cls, student, teacher, bias):
        return cls(student, bias) if same_unit(student, teacher) and states(student, "mehler_series") else None

    def moments(self, p, q, q2, nx, c=None, c2=None):
        if self.bias:
            return self.source.shifted_pair_kernel(p, q, q2, c, c2, nx)
        return self.source.pair_kernel(p, q, q2, nx)

    def field(self, nx, points, sources, coef, scale, grad=True, tile_elements=1 << 22):
        from .field import PairSides

        sides = PairSides(nx, points, sources, scale, self.bias)
        host_q = nx.to_numpy(sides.q_points)
        host_c = None if sides.c_points is None else nx.to_numpy(sides.c_points)
        series = self.source.mehler_series(
            host_q, host_q if sides.same else nx.to_numpy(sides.q_sources), host_c,
            host_c if sides.same or host_c is None else nx.to_numpy(sides.c_sources))
        value, gradient, grad_b, grad_c = sides.outputs(nx, grad)
        nx.series_field(sides.b_points, sides.q_points, sides.b_sources, sides.q_sources, coef, scale, series, value,
                        grad_b, grad_c, tile_elements)
        return value, gradient

    def __repr__(self):
        return f"{type(self).__name__}({self.source!r}, bias={self.bias})"


@ROUTES.register("dual_kernel")
class DualKernel(Route):
    """A unit of degree 1 with a dual kernel k(c) = E[σ(⟨g, u⟩)σ(⟨g, u′⟩)] (``dual(c, nx)``, or ``dual_parts``),
    without biases: V(b_j) = κ|b_j| Σ_k a_k |s_k| k(c_jk) from one matrix product of unit directions per tile
    (:func:`~meanfield.kernels.field.dual_field`).

    Examples
    --------
    >>> import meanfield as mf
    >>> DualKernel.build(mf.ReLU(), mf.ReLU(), False).name
    'dual_kernel'
    """

    priority = 40
    homogeneous = True

    def __init__(self, unit):
        super().__init__()
        self.unit = unit

    @classmethod
    def build(cls, student, teacher, bias):
        usable = not bias and same_unit(student, teacher) and student.degree == 1
        return cls(student) if usable and (states(student, "dual") or states(student, "dual_parts")) else None

    def field(self, nx, points, sources, coef, scale, grad=True, tile_elements=1 << 22):
        from .field import dual_field

        return dual_field(nx, points, sources, coef, scale, self.unit.dual_parts, grad, tile_elements)

    def moments(self, p, q, q2, nx, c=None, c2=None):
        return _dual_moments(self.unit.dual_parts, p, q, q2, nx)


@ROUTES.register("pair_kernel")
class PairKernel(Route):
    """A unit with its Gaussian pair kernel in closed form: ``pair_kernel(p, q, q2, nx)`` → (K, ∂_pK, ∂_qK), and with
    biases ``shifted_pair_kernel(p, q, q2, c, c2, nx)`` → (K, ∂_pK, ∂_qK, ∂_cK), evaluated on tiles of pairs.

    Examples
    --------
    >>> import meanfield as mf
    >>> PairKernel.build(mf.activations.ReLUPower(3), mf.activations.ReLUPower(3), False)
    PairKernel(ReLUPower(power=3), bias=False)
    """

    priority = 50

    def __init__(self, unit, bias: bool = False):
        super().__init__(bias)
        self.unit = unit

    @classmethod
    def build(cls, student, teacher, bias):
        form = "shifted_pair_kernel" if bias else "pair_kernel"
        return cls(student, bias) if same_unit(student, teacher) and states(student, form) else None

    def moments(self, p, q, q2, nx, c=None, c2=None):
        if self.bias:
            return self.unit.shifted_pair_kernel(p, q, q2, c, c2, nx)
        return self.unit.pair_kernel(p, q, q2, nx)

    def __repr__(self):
        return f"PairKernel({self.unit!r}, bias={self.bias})"


@ROUTES.register("mixed_series")
class MixedSeries(SeriesRoute):
    """Two different units: their mixed Mehler series E[σ(u)τ(u′)] (:class:`~meanfield.mixed.MixedKernel`, Gaussian
    inputs), summed as any series.

    Examples
    --------
    >>> import meanfield as mf
    >>> MixedSeries.build(mf.activations.Erf(), mf.activations.GELU(), False).source
    MixedKernel(student=Erf(), teacher=GELU(tol=1e-10, max_order=280))
    """

    priority = 90

    @classmethod
    def build(cls, student, teacher, bias):
        if same_unit(student, teacher):
            return None
        from ..mixed import mixed_kernel

        return cls(mixed_kernel(student, teacher), bias)
