r"""The learning problem: a target, an input law and an activation; its risk, first variation and velocity.

For μ = Σ_j w_j δ_{(a_j, b_j)} and f(μ; x) = Σ_j w_j a_j σ(⟨b_j, x⟩),

.. math::

    F(μ) = ½ E_ρ[(f(μ; x) − f^*(x))²], \qquad
    ψ_μ(b) = Σ_k w_k a_k K(b, b_k) − F^*(b),

and the Wasserstein gradient flow of F moves each particle by ȧ_j = −ψ_μ(b_j), ḃ_j = −a_j ∇ψ_μ(b_j)
(Chizat & Bach 2018, arXiv:1805.09545; Mei, Montanari & Nguyen 2018, arXiv:1804.06561).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .inputs import InputLaw
from .kernels.base import Backend, get_backend
from .measure import ParticleMeasure
from .targets import Target

__all__ = ["Problem", "Evaluation"]


@dataclass
class Evaluation:
    """ψ_μ and ∇ψ_μ at the particles (backend arrays) and the population risk F(μ) (float)."""

    psi: object
    grad_psi: object
    risk: float


class Problem:
    r"""A target f*, an input law ρ and an activation ("relu", or "leaky_relu" with slope α).

    Parameters
    ----------
    target : Target
        The target function (its dimension must equal the inputs').
    inputs : InputLaw
        :class:`~meanfield.Gaussian` or :class:`~meanfield.Sphere`.
    activation : {"relu", "leaky_relu"}
        σ(z) = max(z, 0) or σ_α(z) = max(z, αz).
    slope : float
        α for the leaky ReLU (ignored for "relu").

    Notes
    -----
    The risk is assembled as ½[Σ_j w_j a_j ψ_j + (E f*² − Σ_j w_j a_j F*_j)] from the quantities the
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

    #: Whether the particles of this problem's flows are neurons (a, b) with b ∈ R^d (False for reduced coordinates).
    particles_are_neurons = True

    def __init__(self, target: Target, inputs: InputLaw, activation: str = "relu", slope: float = 0.01):
        if not isinstance(target, Target):
            raise TypeError(f"target must be a meanfield Target, got {type(target).__name__}")
        if not isinstance(inputs, InputLaw):
            raise TypeError(f"inputs must be a meanfield input law (Gaussian, Sphere), got {type(inputs).__name__}")
        target.check_inputs(inputs)
        if activation == "relu":
            slope = 0.0
        elif activation == "leaky_relu":
            slope = float(slope)
            if not 0.0 < slope < 1.0:
                raise ValueError(f"the leaky-ReLU slope must lie in (0, 1), got {slope}")
        else:
            raise ValueError(f"activation must be 'relu' or 'leaky_relu', got {activation!r}")
        self.target, self.inputs, self.activation, self.slope = target, inputs, activation, slope
        self.scale = inputs.kernel_scale
        self.target_energy = float(target.second_moment(inputs))
        self.target_linear_moment = np.asarray(target.linear_moment(inputs), dtype=np.float64)
        self._bound: dict = {}

    @property
    def d(self) -> int:
        return self.inputs.d

    def activation_fn(self, z):
        """σ(z) (numpy)."""
        return np.maximum(z, self.slope * z)

    def spec(self) -> dict:
        return {"inputs": self.inputs.spec(), "target": self.target.spec(), "activation": self.activation,
                "slope": self.slope}

    # -- evaluation on backend arrays -------------------------------------------------------------------
    def bind(self, backend: Backend | str = "numpy", **options) -> BoundProblem:
        """The problem with its constant arrays converted to ``backend``'s arrays (cached per backend)."""
        backend = get_backend(backend, **options)
        key = id(backend)
        if key not in self._bound:
            self._bound[key] = self._bound_class(self, backend)
        return self._bound[key]

    def _check_measure(self, mu: ParticleMeasure) -> None:
        if not isinstance(mu, ParticleMeasure):
            raise TypeError(f"expected a ParticleMeasure, got {type(mu).__name__}")
        if mu.d != self.d:
            raise ValueError(f"the measure's neurons have dimension {mu.d} but the problem has d = {self.d}")

    def evaluate(self, mu: ParticleMeasure, backend="numpy") -> Evaluation:
        """ψ, ∇ψ at the particles and the risk, as numpy arrays."""
        self._check_measure(mu)
        bound = self.bind(backend)
        bk = bound.backend
        ev = bound.evaluate(bk.asarray(mu.state()), bk.asarray(mu.weights))
        return Evaluation(bk.to_numpy(ev.psi), bk.to_numpy(ev.grad_psi), ev.risk)

    def risk(self, mu: ParticleMeasure, backend="numpy") -> float:
        """Exact population risk F(μ) = ½ E[(f(μ; x) − f*(x))²] (exact up to the target's own accuracy)."""
        return self.evaluate(mu, backend).risk

    def first_variation(self, mu: ParticleMeasure, backend="numpy") -> tuple[np.ndarray, np.ndarray]:
        """(ψ_μ(b_j), ∇ψ_μ(b_j)) at the particles; F'(μ)(a, b) = a ψ_μ(b)."""
        ev = self.evaluate(mu, backend)
        return ev.psi, ev.grad_psi

    def velocity(self, mu: ParticleMeasure, backend="numpy") -> tuple[np.ndarray, np.ndarray]:
        """Right-hand side of the particle ODE: (ȧ, ḃ) = (−ψ(b_j), −a_j ∇ψ(b_j))."""
        ev = self.evaluate(mu, backend)
        return -ev.psi, -mu.a[:, None] * ev.grad_psi

    def dissipation(self, mu: ParticleMeasure, backend="numpy") -> float:
        """∫(ψ² + a²|∇ψ|²) dμ, so that dF/dt = −dissipation along the flow (energy identity)."""
        ev = self.evaluate(mu, backend)
        return float(mu.weights @ (ev.psi**2 + mu.a**2 * np.sum(ev.grad_psi**2, axis=1)))

    def predict(self, mu: ParticleMeasure, x) -> np.ndarray:
        """f(μ; x) on an (n, d) array of inputs, with this problem's activation."""
        self._check_measure(mu)
        return mu.predict(x, self.slope)


class BoundProblem:
    """A :class:`Problem` evaluated on one backend's arrays; the solvers work with this object.

    The state is the (m, 1 + d) array [a | b]; ``weights`` are the particle masses.
    """

    def __init__(self, problem: Problem, backend: Backend):
        self.problem, self.backend = problem, backend
        target = problem.target
        self._teacher = None
        if target.teacher_sources() is not None:
            c, U = target.teacher_sources()
            self._teacher = (backend.asarray(U), backend.asarray(c))
        self._odd = bool(target.odd)
        self._m1 = backend.asarray(problem.target_linear_moment)

    def target_correlation(self, b):
        """F*_σ(b) and ∇F*_σ(b) on backend arrays, for the problem's activation."""
        p, bk = self.problem, self.backend
        if self._teacher is not None:
            f, g = bk.field(b, self._teacher[0], self._teacher[1], p.scale, 0.0)
        elif self._odd:
            f = 0.5 * (b @ self._m1)
            g = 0.5 * self._m1  # constant in b; broadcasts against the (m, d) kernel gradient
        else:
            f, g = p.target.relu_correlation(p.inputs, bk.to_numpy(b))
            f, g = bk.asarray(f), bk.asarray(g)
        if p.slope:
            # E[f* σ_α(⟨b, x⟩)] = α⟨E[f* x], b⟩ + (1 − α) F*(b).
            f = p.slope * (b @ self._m1) + (1 - p.slope) * f
            g = p.slope * self._m1 + (1 - p.slope) * g
        return f, g

    def evaluate(self, state, weights) -> Evaluation:
        p, bk = self.problem, self.backend
        a, b = state[:, 0], state[:, 1:]
        coef = weights * a
        field, grad_field = bk.field(b, b, coef, p.scale, p.slope)
        f_star, grad_f_star = self.target_correlation(b)
        psi = field - f_star
        risk = 0.5 * (float(coef @ psi) + (p.target_energy - float(coef @ f_star)))
        return Evaluation(psi, grad_field - grad_f_star, risk)

    def velocity_from(self, state, ev: Evaluation):
        return self.backend.concat([-ev.psi[:, None], -state[:, :1] * ev.grad_psi], axis=1)

    def velocity(self, state, weights):
        ev = self.evaluate(state, weights)
        return self.velocity_from(state, ev), ev


Problem._bound_class = BoundProblem  # subclasses (reduced and symmetric flows) set their own
