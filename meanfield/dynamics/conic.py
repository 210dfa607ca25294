"""The conic (Wasserstein–Fisher–Rao) particle flow of Chizat (2019) for 2-homogeneous neurons."""

from __future__ import annotations

from dataclasses import dataclass

from .._defaults import dataclass_spec
from .._validation import check_bool, check_nonnegative
from ..controllers import Diverged
from ..flow import FlowState, ParticleFlow
from ..loop import Snapshot
from ..registry import DYNAMICS

__all__ = ["Conic", "ConicFlow"]


@DYNAMICS.register("conic")
@dataclass(frozen=True)
class Conic:
    r"""The conic particle flow: the Wasserstein–Fisher–Rao gradient flow of the risk in Chizat's parametrisation.

    A neuron u = (a, b) of a 2-homogeneous network (a σ(⟨b, x⟩) with σ positively 1-homogeneous: the ReLU family,
    no bias) is a mass r² = |u|² at the direction θ = u/|u|. With g = ∇_u F'(μ)(u) and P_θ = θθᵀ,

    .. math::

        \dot u_j = -\big(\alpha P_{\theta_j} + \beta (I - P_{\theta_j})\big) g_j
        \quad\Longleftrightarrow\quad
        \frac{d}{dt} r_j^2 = -4\alpha\, r_j^2\, F'(\mu)(\theta_j), \qquad
        \dot\theta_j = -\beta\, \nabla_{S} F'(\mu)(\theta_j),

    the reaction ẇ = −4α w F' of the masses w = r² and the transport of their positions at rate β. α = β = 1 is the
    plain Wasserstein flow of the particles; α/β is the ratio of mass to position step. ``conserve_mass`` subtracts
    the mass-weighted mean of F' from the reaction (the Fisher–Rao flow on probability measures), so that
    Σ_j w_j |u_j|² stays constant (each step is rescaled to keep it to round-off: a change of O(h^{p+1}), within the
    solver's local error). Along the flow

    .. math::

        \frac{dF}{dt} = -\sum_j w_j \Big(\alpha \big(\langle\theta_j, g_j\rangle - 2 r_j \bar c\big)^2
                        + \beta\, |(I - P_{\theta_j}) g_j|^2\Big),

    with c̄ = Σ w_j F'(u_j) / Σ w_j r_j² when the mass is conserved and 0 otherwise.

    Parameters
    ----------
    alpha : float
        Rate of the reaction (mass) part, α ≥ 0.
    beta : float
        Rate of the transport (position) part, β ≥ 0.
    conserve_mass : bool
        Keep Σ_j w_j |u_j|² fixed.

    References
    ----------
    L. Chizat, *Sparse optimization on measures with over-parameterized gradient descent*, Math. Program. 194 (2022),
    arXiv:1907.10300.

    Examples
    --------
    With α = β = 1 the conic flow is the Wasserstein flow:

    >>> import numpy as np, meanfield as mf
    >>> from meanfield.dynamics import Conic
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0, 1.0], np.eye(3)[:2]), mf.Gaussian(3))
    >>> mu0 = mf.init.sign_sphere(8, 3, seed=0)
    >>> plain = mf.simulate(problem, mu0, t_max=1.0, dt=0.1, backend="numpy")
    >>> conic = mf.simulate(problem, mu0, t_max=1.0, dt=0.1, backend="numpy", dynamics=Conic(alpha=1.0, beta=1.0))
    >>> bool(np.allclose(conic.b[-1], plain.b[-1], rtol=1e-12, atol=1e-14))
    True
    """

    alpha: float = 1.0
    beta: float = 1.0
    conserve_mass: bool = False

    def __post_init__(self):
        check_nonnegative(self.alpha, "Conic alpha")
        check_nonnegative(self.beta, "Conic beta")
        check_bool(self.conserve_mass, "Conic conserve_mass")

    def spec(self) -> dict:
        return dataclass_spec(self, "conic")

    def check(self, problem) -> None:
        if problem.network.fixed_outputs:
            raise ValueError("the conic flow changes the particles' masses, which fixed output weights forbid: use "
                             "trained output weights or the plain flow (dynamics=None)")
        unit = problem.unit
        if not problem.particles_are_neurons or problem.bias or unit.degree != 1 or problem.output_columns != 1:
            raise ValueError(f"the conic flow needs 2-homogeneous neurons a σ(⟨b, x⟩) with σ positively 1-homogeneous "
                             f"and no bias (the ReLU family); this problem has unit {unit.name!r}"
                             f"{' with biases' if problem.bias else ''}: use the plain flow (dynamics=None)")

    def rule(self, bound, mu0, solver, max_risk_factor: float, stop_risk):
        self.check(bound.problem)
        return ConicFlow(bound, mu0, solver, self, max_risk_factor, stop_risk)


class ConicFlow(ParticleFlow):
    """The stepping rule of the :class:`Conic` flow: a Runge–Kutta step of its velocity, with the flow's checks and
    a refusal of steps in which a mass would reach zero (2αh F'(θ_j) ≥ 1 for some particle), and, with
    ``conserve_mass``, the total mass restored after each step.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.dynamics import Conic, ConicFlow
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0]]), mf.Gaussian(2))
    >>> rule = Conic(alpha=4.0, beta=1.0, conserve_mass=True).rule(problem.bind("numpy"),
    ...     mf.init.sign_sphere(6, 2, seed=0), mf.get_solver("heun"), 1e6, None)
    >>> isinstance(rule, ConicFlow), round(rule.observe(rule.init(None), None).observables["total_mass"], 12)
    (True, 2.0)
    """

    def __init__(self, bound, mu0, solver, dynamics: Conic, max_risk_factor: float = 1e6, stop_risk=None):
        super().__init__(bound, mu0, solver, max_risk_factor, stop_risk)
        self.alpha, self.beta, self.conserve_mass = dynamics.alpha, dynamics.beta, dynamics.conserve_mass
        self.label = f"conic[{solver.name},{self.backend.name}]"

    def _radial_rate(self, y, gradient):
        """⟨u_j, g_j⟩ / |u_j|² (= 2F'(θ_j) by Euler's identity; 0 at u_j = 0, where g_j = 0) and c̄."""
        r2 = (y * y).sum(axis=1)
        inner = (y * gradient).sum(axis=1)
        rate = inner / self.backend.where(r2 > 0, r2, 1.0 + 0.0 * r2)
        c_bar = 0.0
        if self.conserve_mass:
            mass = float((self.weights_on_backend * r2).sum())
            c_bar = float((self.weights_on_backend * inner).sum()) / (2.0 * mass) if mass > 0 else 0.0
        return rate, c_bar

    def velocity(self, y, evaluation):
        gradient = -self.bound.velocity_from(y, evaluation)          # g_j = ∇_u F'(μ)(u_j)
        rate, c_bar = self._radial_rate(y, gradient)
        radial = rate[:, None] * y
        return -self.alpha * radial - self.beta * (gradient - radial) + (2.0 * self.alpha * c_bar) * y

    def step(self, state: FlowState, h: float):
        rate, c_bar = self._radial_rate(state.y, -self.bound.velocity_from(state.y, state.evaluation))
        shrink = h * self.alpha * (float(rate.max()) - 2.0 * c_bar) if rate.shape[0] else 0.0
        if shrink >= 1.0:
            raise Diverged(f"the conic step would take a mass to zero or below: h · α · (2F'(θ) − 2c̄) reaches "
                           f"{shrink:.3g} >= 1 (dt = {h:.3g}, α = {self.alpha:g}); reduce dt or alpha")
        candidate, error = super().step(state, h)
        if self.conserve_mass:     # the Runge–Kutta step keeps Σ w|u|² to O(h^{p+1}); put it back to round-off
            scale = (self._mass(state.y) / self._mass(candidate.y)) ** 0.5
            candidate = FlowState(candidate.y * scale, None)
        return candidate, error

    def _mass(self, y) -> float:
        return float((self.weights_on_backend * (y * y).sum(axis=1)).sum())

    def observe(self, state: FlowState, clock) -> Snapshot:
        snapshot = super().observe(state, clock)
        snapshot.observables["total_mass"] = self._mass(state.y)
        return snapshot
