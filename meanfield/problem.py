r"""The learning problem: a target, an input law and an activation; its risk, first variation and velocity.

For μ = Σ_j w_j δ_{(a_j, b_j)} and f(μ; x) = Σ_j w_j a_j σ(⟨b_j, x⟩),

.. math::

    F(μ) = ½ E_ρ[(f(μ; x) − f^*(x))²], \qquad
    ψ_μ(b) = Σ_k w_k a_k K(b, b_k) − F^*(b),

and the Wasserstein gradient flow of F moves each particle by ȧ_j = −ψ_μ(b_j), ḃ_j = −a_j ∇ψ_μ(b_j)
(Chizat & Bach 2018, arXiv:1805.09545; Mei, Montanari & Nguyen 2018, arXiv:1804.06561).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ._validation import check_bool
from .activations import as_activation, biased_units
from .inputs import InputLaw
from .kernels.base import Backend, get_backend
from .measure import ParticleMeasure
from .network import Network
from .penalties import Penalty, as_penalty
from .targets import Target

__all__ = ["Objective", "Problem", "ProblemVariant", "BoundProblem", "Evaluation", "ApproximateRiskWarning"]


class ApproximateRiskWarning(UserWarning):
    """The risk of a problem whose target is approximate (a Monte-Carlo target) came out negative.

    Examples
    --------
    A Monte-Carlo target's E f*² and F*(b) carry sampling error, so a risk near its minimum can come out negative;
    the warning says so instead of failing:

    >>> import warnings
    >>> from meanfield.problem import ApproximateRiskWarning
    >>> issubclass(ApproximateRiskWarning, UserWarning)
    True
    """


@dataclass
class Evaluation:
    """ψ_μ and ∇ψ_μ at the particles (backend arrays) and the population risk F(μ) (float).

    Examples
    --------
    >>> import meanfield as mf
    >>> problem = mf.Problem(mf.LinearTarget([1.0, 0.0]), mf.Sphere(2))
    >>> ev = problem.evaluate(mf.init.gaussian(5, 2, seed=0), backend="numpy")
    >>> ev.psi.shape, ev.grad_psi.shape, ev.risk > 0
    ((5,), (5, 2), True)
    """

    psi: object
    grad_psi: object
    risk: float


class Objective:
    r"""What every objective of a flow shares: the :class:`~meanfield.network.Network` it trains, an optional penalty,
    and the evaluation of the risk F, its first variation and the particles' velocity on any backend.

    A subclass states the risk: :meth:`assemble` (ψ, ∇ψ and F at a state on a bound backend), :meth:`spec`,
    :meth:`arrays`, :attr:`risk_scale` and :meth:`batch_loss` (the finite network's loss, for SGD). The population
    risk (:class:`Problem`), the empirical risk of a data set (:class:`~meanfield.EmpiricalProblem`) and the problem
    variants (:class:`ProblemVariant`) are objectives.

    Parameters
    ----------
    network : Network
        The unit, biases, output layer and output scale.
    penalty : Penalty or (name, λ), optional
        λ ∫ r dμ added to the risk (:mod:`meanfield.penalties`).

    Examples
    --------
    >>> import meanfield as mf
    >>> from meanfield.problem import Objective
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0]]), mf.Gaussian(2), bias=True)
    >>> isinstance(problem, Objective), problem.network.layout.bias, problem.measure_type.__name__
    (True, True, 'BiasedMeasure')
    """

    #: The bound form the solvers work with (:meth:`bind`).
    bound_type: type = None  # BoundProblem, set below

    def __init__(self, network: Network, penalty: Penalty | tuple | None = None):
        if not isinstance(network, Network):
            raise TypeError(f"network must be a meanfield.network.Network, got {type(network).__name__}")
        self.network, self.penalty = network, as_penalty(penalty)
        self._bound: dict = {}

    # -- the network ---------------------------------------------------------------------------------------------
    unit = property(lambda self: self.network.unit, doc="The unit σ (:mod:`meanfield.activations`).")
    bias = property(lambda self: self.network.bias, doc="Whether the neurons have biases.")
    output_scale = property(lambda self: self.network.output_scale, doc="α of the predictor α f(μ).")
    output_columns = property(lambda self: self.network.output_columns,
                              doc="Output weights per neuron: 1, or K for a vector output layer.")
    outputs = property(lambda self: self.network.outputs, doc="K for a vector output layer, None for a scalar one.")

    @property
    def d(self) -> int:
        """Input dimension."""
        return self.network.d

    @property
    def measure_type(self) -> type:
        """The particles this objective's flows move: the network's neurons (variants with reduced coordinates
        override it)."""
        return self.network.measure_type

    @property
    def activation(self) -> str:
        """The activation's name ("relu", "leaky_relu"); the unit itself is :attr:`unit`."""
        return self.unit.name

    @property
    def slope(self) -> float:
        """The linear part λ of σ(z) = λ z + ρ relu(z) (the leaky slope; 0 for the ReLU); None outside that family."""
        decomposition = self.unit.relu_decomposition
        return None if decomposition is None else decomposition[0]

    @property
    def particles_are_neurons(self) -> bool:
        """Whether the particles of this problem's flows are neurons (a, b) with b ∈ R^d (with or without biases)."""
        return issubclass(self.measure_type, ParticleMeasure)

    def check_measure(self, mu: ParticleMeasure) -> None:
        """Raise a one-line error unless ``mu`` is a measure this problem's flows can run."""
        self.network.check_measure(mu)

    # -- what a subclass states ----------------------------------------------------------------------------------
    def assemble(self, bound: BoundProblem, state, weights) -> Evaluation:
        """ψ, ∇ψ at the particles of ``state`` and the risk, on the bound backend's arrays."""
        raise NotImplementedError

    def spec(self) -> dict:
        raise NotImplementedError

    def arrays(self) -> dict:
        """The arrays that define the problem beyond its description (the target's; a data set's), stored with a
        run and compared by checksum on resume."""
        return {}

    def hidden_subspace(self):
        """The target's hidden subspace (an orthonormal basis), or None: what the alignment observables measure."""
        return None

    def regularisation_spec(self) -> dict:
        """The penalty and output scale as a file records them (nothing for the plain problem, so that its files keep
        their description)."""
        out = {} if self.penalty is None else self.penalty.spec()
        if self.output_scale != 1.0:
            out["output_scale"] = self.output_scale
        return out

    def default_observables(self) -> dict:
        """Observables every run of this problem records: the unpenalised risk of the predictor α f(μ),
        ``predictor_risk``, and the ``penalty``, when the problem has a penalty or an output scale."""
        if self.penalty is None and self.output_scale == 1.0:
            return {}
        out = {"predictor_risk": self.predictor_risk}
        if self.penalty is not None:
            out["penalty"] = lambda mu: self.penalty.value(mu.state(), mu.weights, get_backend("numpy"),
                                                           mu.output_columns)
        return out

    def predictor_risk(self, mu: ParticleMeasure, backend="auto") -> float:
        """The risk of the predictor α f(μ) itself, ½ E[(α f(μ; x) − f*(x))²], without the penalty."""
        risk = self.evaluate(mu, backend).risk
        if self.penalty is not None:
            risk -= self.penalty.value(mu.state(), mu.weights, get_backend("numpy"), mu.output_columns)
        return risk * self.output_scale**2

    # -- evaluation on backend arrays -------------------------------------------------------------------
    def bind(self, backend: Backend | str = "auto", **options) -> BoundProblem:
        """The problem with its constant arrays converted to ``backend``'s arrays (cached per backend)."""
        backend = get_backend(backend, **options)
        key = id(backend)
        if key not in self._bound:
            self._bound[key] = self.bound_type(self, backend)
        return self._bound[key]

    def evaluate(self, mu: ParticleMeasure, backend="auto") -> Evaluation:
        """ψ, ∇ψ at the particles and the risk, as numpy arrays."""
        self.check_measure(mu)
        bound = self.bind(backend)
        bk = bound.backend
        ev = bound.evaluate(bk.asarray(mu.state()), bk.asarray(mu.weights))
        return Evaluation(bk.to_numpy(ev.psi), bk.to_numpy(ev.grad_psi), ev.risk)

    def risk(self, mu: ParticleMeasure, backend="auto") -> float:
        """The risk F(μ) (plus the penalty)."""
        return self.evaluate(mu, backend).risk

    def first_variation(self, mu: ParticleMeasure, backend="auto") -> tuple[np.ndarray, np.ndarray]:
        """(ψ_μ(b_j), ∇ψ_μ(b_j)) at the particles; F'(μ)(a, b) = a ψ_μ(b)."""
        ev = self.evaluate(mu, backend)
        return ev.psi, ev.grad_psi

    def velocity(self, mu: ParticleMeasure, backend="auto") -> tuple[np.ndarray, np.ndarray]:
        """Right-hand side of the particle ODE, split as the particles' layout is: (ȧ, ẇ) = (−ψ(w_j), −a_j ∇ψ(w_j)),
        minus λ∇r(θ_j) with a penalty. ȧ has shape (m,), or (m, K) for K output weights (zero for fixed output
        weights); ẇ holds the velocity of the coordinates after a, (m, d) — or (m, d + 1), [ḃ | ċ], with biases."""
        self.check_measure(mu)
        bound = self.bind(backend)
        bk = bound.backend
        state = bk.asarray(mu.state())
        velocity = bk.to_numpy(bound.velocity(state, bk.asarray(mu.weights))[0])
        return mu.layout.split(velocity) if self.particles_are_neurons else (velocity[:, 0], velocity[:, 1:])

    def dissipation(self, mu: ParticleMeasure, backend="auto") -> float:
        """∫|v|² dμ = ∫(ψ² + a²|∇ψ|²) dμ without a penalty, so that dF/dt = −dissipation along the flow (the
        energy identity)."""
        da, db = self.velocity(mu, backend)
        return float(mu.weights @ ((da**2 if da.ndim == 1 else np.sum(da**2, axis=1)) + np.sum(db**2, axis=1)))

    def predict(self, mu: ParticleMeasure, x) -> np.ndarray:
        """f(μ; x) on an (n, d) array of inputs: the network's forward pass."""
        self.check_measure(mu)
        return self.network.predict(mu, x)


class Problem(Objective):
    r"""A target f*, an input law ρ and an activation (:mod:`meanfield.activations`).

    Parameters
    ----------
    target : Target
        The target function (its dimension must equal the inputs').
    inputs : InputLaw
        :class:`~meanfield.Gaussian` or :class:`~meanfield.Sphere`.
    activation : Activation or str
        The unit, e.g. ``mf.ReLU()`` or ``mf.LeakyReLU(0.1)``, or its name, one of
        {"relu", "leaky_relu", "abs", "relu2", "relu3", "erf", "gelu", "tanh", "sigmoid", "silu", "softplus"}
        (:mod:`meanfield.activations`; ``slope`` for "leaky_relu").
    slope : float
        α for ``activation="leaky_relu"`` (ignored otherwise).
    bias : bool
        Neurons with biases, f(x) = Σ_j w_j a_j σ(⟨b_j, x⟩ + c_j), moved by the flow like b (particles are
        :class:`~meanfield.measure.BiasedMeasure`): Gaussian inputs and the units of
        :func:`~meanfield.activations.biased_units`, exact through the bivariate normal distribution for the ReLU and
        the Hermite route otherwise.
    penalty : Penalty or (name, λ), optional
        A regulariser λ ∫ r dμ added to the risk (:mod:`meanfield.penalties`: ``("weight_decay", λ)`` or
        ``("variation_norm", λ)``); the flow then minimises F + λ ∫ r dμ and ``risk`` reports that sum.
    output_scale : float
        α of the scaled predictor f_α = α f(μ) trained on the loss ℓ/α² (Chizat, Oyallon & Bach 2019,
        arXiv:1812.07956): F_α(μ) = ½ E[(f(μ; x) − f*(x)/α)²], whose flow moves the particles a distance ∝ 1/α (the
        lazy regime as α → ∞) when f(μ0) = 0 (:func:`meanfield.init.doubled`). 1 is the mean-field scaling.
    output : {"trained", "fixed"}
        "fixed" keeps the output weights at their initial values (a soft committee machine,
        :class:`~meanfield.network.Network`): every dynamics moves b (and c) only.

    Notes
    -----
    For particles μ = Σ_j w_j δ_(a_j, b_j), the risk, its first variation F'(μ)(a, b) = a ψ_μ(b) and the flow's
    velocity are

    .. math::

        F(\mu) = \tfrac12\, \mathbb{E}\big[(f(\mu; x) - f^*(x))^2\big], \qquad
        \psi_\mu(b) = \sum_k w_k a_k K(b, b_k) - F^*(b),

        (\dot a_j, \dot b_j) = -\big(\psi_\mu(b_j),\; a_j \nabla\psi_\mu(b_j)\big),

    with the unit's kernel K(b, b') = E[σ(⟨b, x⟩)σ(⟨b', x⟩)] and the target correlation F*(b) = E[f*(x)σ(⟨b, x⟩)]
    in closed form. The risk is assembled as ½[Σ_j w_j a_j ψ_j + (E f*² − Σ_j w_j a_j F*_j)] from the quantities the
    velocity needs anyway; its absolute round-off is about 1e-15 · E f*², so risks down to ~1e-13 · E f*²
    are resolved.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> inputs = mf.Gaussian(d=3)
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0, 0.0]]), inputs)
    >>> mu = mf.ParticleMeasure([1.0], [[1.0, 0.0, 0.0]])   # the student equals the teacher
    >>> abs(problem.risk(mu)) < 1e-15
    True
    """

    def __init__(self, target: Target, inputs: InputLaw, activation: str = "relu", slope: float = 0.01,
                 bias: bool = False, penalty: Penalty | tuple | None = None, output_scale: float = 1.0,
                 output: str = "trained"):
        if not isinstance(target, Target):
            raise TypeError(f"target must be a meanfield Target, got {type(target).__name__}")
        if not isinstance(inputs, InputLaw):
            raise TypeError(f"inputs must be a meanfield input law (Gaussian, Sphere), got {type(inputs).__name__}")
        unit = as_activation(activation, slope if activation == "leaky_relu" else None)
        scale = inputs.unit_scale(unit)  # κ, or the sphere's radial conversion; refuses a law without one
        target.check_inputs(inputs)
        target.check_unit(unit, inputs)
        bias = check_bool(bias, "bias")
        if bias:
            inputs.check_bias()
            if not unit.supports_bias:
                raise ValueError(f"{unit!r} has no kernel for biased neurons; use one of "
                                 f"{', '.join(biased_units())} or bias=False")
            target.check_bias()
        super().__init__(Network(unit, inputs.d, bias, output=output, output_scale=output_scale), penalty)
        self.target, self.inputs, self.scale = target, inputs, scale
        self.target_energy = float(target.second_moment(inputs))
        self.target_linear_moment = np.asarray(target.linear_moment(inputs), dtype=np.float64)

    def spec(self) -> dict:
        return {"inputs": self.inputs.spec(), "target": self.target.spec(), **self.network.spec(),
                **self.regularisation_spec()}

    def arrays(self) -> dict:
        """The arrays that define the problem beyond its description (the target's), stored with a run and compared
        by checksum on resume."""
        return self.target.arrays()

    @property
    def risk_scale(self) -> float:
        """E f*² / α² (twice the risk of the zero predictor): the scale against which round-off and blow-ups are
        judged."""
        return self.target_energy / self.output_scale**2

    def hidden_subspace(self):
        """The target's hidden subspace (an orthonormal basis), or None: what the alignment observables measure."""
        return self.target.hidden_subspace()

    def batch_loss(self, prediction, y, nx):
        """The loss of a batch of the finite network's predictions f(x_i) (backend arrays, e.g. torch tensors for the
        SGD trainer): mean ½(α f(x_i) − y_i)² / α², whose per-neuron gradient is the flow's velocity on average."""
        residual = prediction - y * (1.0 / self.output_scale)
        return 0.5 * (residual * residual).mean()

    def risk(self, mu: ParticleMeasure, backend="auto") -> float:
        """Exact population risk F(μ) = ½ E[(f(μ; x) − f*(x))²] (exact up to the target's own accuracy)."""
        return self.evaluate(mu, backend).risk

    # -- the field strategy (problem variants override these, called with the bound form) ------------------------
    def self_field(self, bound: BoundProblem, b, coef):
        """(Σ_k c_k K(b_j, b_k), its gradient) at the particles b (backend arrays): all pairs here; variants
        override it (symmetric images, ring averages)."""
        return bound.backend.field(b, b, coef, self.scale, self.unit, bias=self.bias)

    def target_field(self, bound: BoundProblem, b):
        """(F*(b_j), ∇F*(b_j)) in the particles' coordinates (variants with reduced coordinates override it)."""
        return bound.target_correlation(b)

    def assemble(self, bound: BoundProblem, state, weights) -> Evaluation:
        """ψ = Σ_k c_k K(·, b_k) − F*, ∇ψ and the risk ½[Σ_j c_j ψ_j + E f*² − Σ_j c_j F*_j] from
        :meth:`self_field` and :meth:`target_field`, assembled here once for every variant (a variant with a closed
        form, the odd reduction, overrides it)."""
        b = state[:, 1:]
        coef = weights * state[:, 0]
        field, grad_field = self.self_field(bound, b, coef)
        f_star, grad_f_star = self.target_field(bound, b)
        energy = self.target_energy
        if self.output_scale != 1.0:  # F_α = ½ E(f − f*/α)²
            inverse = 1.0 / self.output_scale
            f_star, grad_f_star, energy = inverse * f_star, inverse * grad_f_star, energy * inverse * inverse
        psi = field - f_star
        risk = 0.5 * (float(coef @ psi) + (energy - float(coef @ f_star)))
        if risk < 0 and not self.target.exact and not self.__dict__.get("_warned_negative_risk"):
            self.__dict__["_warned_negative_risk"] = True
            warnings.warn(f"the risk came out negative ({risk:.3g}): {type(self.target).__name__}'s moments are sample "
                          "averages, so this risk is a surrogate that can fall below 0 (and without bound) once the "
                          "particles fit the sample; increase its n_samples or measure the risk on fresh inputs",
                          ApproximateRiskWarning, stacklevel=2)
        return Evaluation(psi, grad_field - grad_f_star, risk)


class BoundProblem:
    """A :class:`Problem` evaluated on one backend's arrays; the solvers work with this object.

    The state is the (m, 1 + d) array [a | b]; ``weights`` are the particle masses. The problem's constants are
    converted to the backend's arrays once (:meth:`constant`).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0, 0.0]]), mf.Gaussian(3))
    >>> mu = mf.init.sign_sphere(6, 3, seed=0)
    >>> bound = problem.bind("numpy")
    >>> ev = bound.evaluate(mu.state(), mu.weights)
    >>> bool(np.isclose(ev.risk, problem.risk(mu))), ev.psi.shape
    (True, (6,))
    """

    def __init__(self, problem: Problem, backend: Backend):
        self.problem, self.backend = problem, backend
        self._constants: dict = {}

    def target_correlation(self, b):
        """F*_σ(b) and ∇F*_σ(b) on backend arrays, for the problem's activation."""
        p = self.problem
        return p.target.correlation(p.inputs, b, p.unit, self.backend, bias=p.bias)

    def constant(self, name: str, make):
        """``make(backend)`` computed once and kept: a problem's constants as this backend's arrays."""
        if name not in self._constants:
            self._constants[name] = make(self.backend)
        return self._constants[name]

    def evaluate(self, state, weights) -> Evaluation:
        """ψ, ∇ψ and the risk at the state (the problem's :meth:`Problem.assemble`), plus the penalty."""
        ev = self.problem.assemble(self, state, weights)
        penalty = self.problem.penalty
        if penalty is not None:
            risk = ev.risk + penalty.value(state, weights, self.backend, self.problem.output_columns)
            ev = Evaluation(ev.psi, ev.grad_psi, risk)
        return ev

    def velocity_from(self, state, ev: Evaluation):
        k = self.problem.output_columns
        if k == 1:
            velocity = self.backend.concat([-ev.psi[:, None], -state[:, :1] * ev.grad_psi], axis=1)
        else:  # vector outputs: ψ is (m, K) and grad_psi is already Σ_k a_k ∇ψ_k
            velocity = self.backend.concat([-ev.psi, -ev.grad_psi], axis=1)
        penalty = self.problem.penalty
        if penalty is not None:
            velocity = velocity - penalty.gradient(state, self.backend, k)
        if self.problem.network.fixed_outputs:  # the output weights keep their values: their columns do not move
            velocity = velocity * self.moving_columns(state)
        return velocity

    def moving_columns(self, state):
        """The (1, width) mask of the state columns that the dynamics move (zeros at fixed output weights)."""
        width = state.shape[1]
        return self.constant(("moving_columns", width),
                             lambda nx: nx.asarray(self.problem.network.moving_columns(width)[None, :]))

    def velocity(self, state, weights):
        ev = self.evaluate(state, weights)
        return self.velocity_from(state, ev), ev


Objective.bound_type = BoundProblem


class ProblemVariant(Objective):
    """A problem derived from a base problem (enforced symmetry, reduced flows): it wraps the base — target, input
    law, activation and their constants are the base's — and changes only the field strategy
    (:meth:`Problem.self_field`, :meth:`Problem.target_field`, or the whole :meth:`Problem.assemble`), and, for reduced
    coordinates, :attr:`Problem.measure_type`. :meth:`variant_spec` describes the change. One subclass is a new
    variant; nothing else needs editing.

    Examples
    --------
    :class:`~meanfield.reduced.OddReducedProblem` and :class:`~meanfield.symmetry.SymmetricProblem` are variants; a
    variant keeps its base's target, input law and unit:

    >>> import numpy as np, meanfield as mf
    >>> from meanfield.problem import ProblemVariant
    >>> from meanfield.reduced import OddReducedProblem
    >>> base = mf.Problem(mf.LinearTarget(np.ones(3)), mf.Gaussian(3))
    >>> variant = OddReducedProblem(base)
    >>> isinstance(variant, ProblemVariant), variant.target is base.target, variant.d
    (True, True, 3)
    """

    #: The objectives this variant is written for (a subclass narrows it, e.g. to population problems).
    objectives: tuple = (Objective,)
    #: Why this variant does not take biased neurons (None when it does).
    bias_refusal: str | None = "it is written for neurons without biases"
    #: Whether its particles are neurons that a penalty and an output scale apply to as to the base's.
    regularisable = False

    @classmethod
    def accepts(cls, base) -> str | None:
        """Why this variant cannot wrap ``base`` — the end of the one-line error "X cannot wrap …" — or None when it
        can: the objective's kind (:attr:`objectives`), biases (:attr:`bias_refusal`), a penalty or an output scale
        (:attr:`regularisable`). A subclass extends it for its own conditions on the base.

        Examples
        --------
        >>> import numpy as np, meanfield as mf
        >>> from meanfield.reduced import OddReducedProblem
        >>> OddReducedProblem.accepts(mf.Problem(mf.LinearTarget(np.ones(2)), mf.Gaussian(2))) is None
        True
        >>> OddReducedProblem.accepts(mf.Problem(mf.LinearTarget(np.ones(2)), mf.Gaussian(2), output_scale=2.0))
        "a problem with a penalty or an output scale (its particles are not the base's neurons): run the full problem"
        """
        if not isinstance(base, cls.objectives):
            names = " or ".join(kind.__name__ for kind in cls.objectives)
            return f"{type(base).__name__}: it is written for {names} objectives only"
        if base.bias and cls.bias_refusal:
            return f"a problem with biases: {cls.bias_refusal}"
        if base.regularisation_spec() and not cls.regularisable:
            return ("a problem with a penalty or an output scale (its particles are not the base's neurons): run the "
                    "full problem")
        return None

    def __init__(self, base: Objective):
        if not isinstance(base, Objective):
            raise TypeError(f"a problem variant wraps a meanfield Problem, got {type(base).__name__}")
        reason = self.accepts(base)
        if reason is not None:
            raise ValueError(f"{type(self).__name__} cannot wrap {reason}")
        self.base = base
        self._bound = {}

    def __getattr__(self, name: str):
        """Everything the variant does not define itself is its base's (target, input law, unit, data set, their
        constants): the one delegation mechanism."""
        if name.startswith("__") or name in ("base", "_bound"):  # not set yet (copying, unpickling)
            raise AttributeError(name)
        return getattr(self.base, name)

    def assemble(self, bound: BoundProblem, state, weights) -> Evaluation:
        """The base's strategy run on this variant, so that an override of one of its parts (:meth:`Problem.self_field`,
        :meth:`Problem.target_field`) takes effect; a variant with its own closed form overrides the whole."""
        return type(self.base).assemble(self, bound, state, weights)

    def variant_spec(self) -> dict:
        return {}

    def arrays(self) -> dict:
        return self.base.arrays()

    def spec(self) -> dict:
        return dict(self.base.spec(), **self.variant_spec())

    @property
    def risk_scale(self) -> float:
        return self.base.risk_scale

    def hidden_subspace(self):
        return self.base.hidden_subspace()

    def batch_loss(self, prediction, y, nx):
        return self.base.batch_loss(prediction, y, nx)
