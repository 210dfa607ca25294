"""Mean-field Langevin dynamics of the particles: the flow's drift, weight decay and Gaussian noise."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .._defaults import dataclass_spec
from .._validation import check_bool, check_nonnegative, check_positive_int, check_seed
from ..flow import FlowState
from ..penalties import WeightDecay
from ..registry import DYNAMICS
from ._random import SeededFlow

__all__ = ["Langevin", "LangevinFlow", "langevin_step", "SCHEMES"]

#: The schemes by the name of the deterministic solver they extend: Euler–Maruyama (weak order 1, strong order 1
#: for additive noise) and the stochastic Heun scheme (weak order 2 for additive noise).
SCHEMES = {"euler": "euler_maruyama", "heun": "stochastic_heun"}


def langevin_step(drift: Callable, y, h: float, noise, temperature: float, scheme: str = "heun", drift_at_y=None):
    r"""One step of dy = b(y) dt + √(2τ) dW with additive noise.

    Euler–Maruyama: y' = y + h b(y) + √(2τh) ξ. Stochastic Heun: ỹ = y + h b(y) + √(2τh) ξ and
    y' = y + (h/2)(b(y) + b(ỹ)) + √(2τh) ξ, of weak order 2 for additive noise (Kloeden & Platen 1992, §15.1).

    Parameters
    ----------
    drift : callable(y) -> b(y)
    y : array
    h : float
    noise : array like y
        Standard normal ξ (the same ξ in both stages of the Heun scheme).
    temperature : float
        τ ≥ 0.
    scheme : {"euler", "heun"}
    drift_at_y : array, optional
        b(y) when the caller has it already.

    Examples
    --------
    On the Ornstein–Uhlenbeck process dy = −y dt + √2 dW the stationary variance of either scheme is 1 up to O(h):

    >>> import numpy as np
    >>> from meanfield.dynamics import langevin_step
    >>> rng, y = np.random.default_rng(0), np.zeros(20_000)
    >>> for _ in range(400):
    ...     y = langevin_step(lambda z: -z, y, 0.05, rng.standard_normal(y.shape), 1.0, "heun")
    >>> bool(abs(y.var() - 1.0) < 0.05)
    True
    """
    kick = math.sqrt(2.0 * temperature * h) * noise
    b0 = drift(y) if drift_at_y is None else drift_at_y
    predictor = y + h * b0 + kick
    if scheme == "euler":
        return predictor
    if scheme == "heun":
        return y + (0.5 * h) * (b0 + drift(predictor)) + kick
    raise ValueError(f"scheme must be 'euler' or 'heun', got {scheme!r}")


@DYNAMICS.register("langevin")
@dataclass(frozen=True)
class Langevin:
    r"""Mean-field Langevin dynamics: the particles follow

    .. math::

        d\theta_j = -\nabla_\theta\Big[F'(\mu_t)(\theta_j) + \frac{\lambda}{2}|\theta_j|^2\Big]\, dt
                    + \sqrt{2\tau}\, dW_j,

    the particle system of the Wasserstein gradient flow of the free energy
    G(μ) = F(μ) + (λ/2)∫|θ|² dμ + τ ∫ μ log μ, whose minimiser is the fixed point μ = p_μ of the proximal Gibbs
    measure p_μ ∝ exp(−(F'(μ) + λ|θ|²/2)/τ). ``simulate(..., solver="euler")`` runs Euler–Maruyama,
    ``solver="heun"`` the stochastic Heun scheme. Each save records ``regularized_risk`` F(μ) + (λ/2)∫|θ|² dμ (the
    computable part of G; the entropy of particles is not), and, with ``diagnostic=True``, the kernel Stein
    discrepancy between μ and p_μ with its standard error (``ksd2``, ``ksd2_se``;
    :func:`~meanfield.dynamics.kernel_stein_discrepancy`), zero exactly at the fixed point.

    Parameters
    ----------
    temperature : float
        τ ≥ 0 (τ = 0 and λ = 0 is the plain flow).
    weight_decay : float
        λ ≥ 0: the penalty :class:`~meanfield.penalties.WeightDecay` (λ/2)∫(a² + |w|²) dμ in the drift (not in the
        problem's risk; ``regularized_risk`` adds it). Fixed output weights get neither decay nor noise.
    seed : int
        Seed of the noise (its generator's state is checkpointed: resumes are bit-identical).
    diagnostic : bool
        Record the Stein discrepancy at each save (O(m²d); on at most ``diagnostic_particles`` particles).
    diagnostic_particles : int

    References
    ----------
    S. Mei, A. Montanari, P.-M. Nguyen, PNAS 2018, arXiv:1804.06561; A. Nitanda, D. Wu, T. Suzuki, AISTATS 2022,
    arXiv:2201.10469; L. Chizat, TMLR 2022, arXiv:2201.04434.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.dynamics import Langevin
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0]]), mf.Gaussian(2))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(64, 2, seed=0), t_max=1.0, dt=0.05, backend="numpy",
    ...                    dynamics=Langevin(temperature=1e-3, weight_decay=1e-2, seed=0))
    >>> {"ksd2", "ksd2_se", "regularized_risk"} <= set(traj.observables)
    True
    """

    temperature: float
    weight_decay: float = 0.0
    seed: int = 0
    diagnostic: bool = True
    diagnostic_particles: int = 2048

    def __post_init__(self):
        check_nonnegative(self.temperature, "Langevin temperature")
        check_nonnegative(self.weight_decay, "Langevin weight_decay")
        check_seed(self.seed, "Langevin seed")
        check_bool(self.diagnostic, "Langevin diagnostic")
        check_positive_int(self.diagnostic_particles, "Langevin diagnostic_particles")

    def spec(self) -> dict:
        return dataclass_spec(self, "langevin")

    def rule(self, bound, mu0, solver, max_risk_factor: float, stop_risk):
        if solver.name not in SCHEMES:
            raise ValueError(f"Langevin dynamics runs solver 'euler' (Euler–Maruyama) or 'heun' (stochastic Heun), "
                             f"got {solver.name!r}")
        return LangevinFlow(bound, mu0, solver, self, max_risk_factor, stop_risk)


class LangevinFlow(SeededFlow):
    """The stepping rule of :class:`Langevin`: one step of its scheme with noise from a seeded generator.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.dynamics import Langevin
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0]]), mf.Gaussian(2))
    >>> rule = Langevin(0.1, seed=3).rule(problem.bind("numpy"), mf.init.sign_sphere(4, 2, seed=0),
    ...                                   mf.get_solver("heun"), 1e6, None)
    >>> state = rule.init(None)
    >>> moved, _ = rule.step(state, 0.01)
    >>> bool(np.all(moved.y != state.y))                 # the noise moves every coordinate
    True
    """

    def __init__(self, bound, mu0, solver, dynamics: Langevin, max_risk_factor: float = 1e6, stop_risk=None):
        super().__init__(bound, mu0, solver, dynamics.seed, max_risk_factor, stop_risk)
        self.dynamics = dynamics
        self.temperature = dynamics.temperature
        #: The decay (λ/2)|θ|² as the penalty it is (:class:`~meanfield.penalties.WeightDecay`), None for λ = 0.
        self.weight_decay = WeightDecay(dynamics.weight_decay) if dynamics.weight_decay else None
        self.outputs = bound.problem.output_columns
        self.label = f"langevin[{SCHEMES[solver.name]},{self.backend.name}]"

    def drift(self, y, evaluation=None):
        """−∇[F'(μ)(θ_j) + (λ/2)|θ_j|²] at every particle of the state y."""
        evaluation = self._evaluate(y) if evaluation is None else evaluation
        velocity = self.bound.velocity_from(y, evaluation)
        if self.weight_decay is None:
            return velocity
        velocity = velocity - self.weight_decay.gradient(y, self.backend, self.outputs)
        if self.bound.problem.network.fixed_outputs:
            velocity = velocity * self.bound.moving_columns(y)
        return velocity

    def step(self, state: FlowState, h: float):
        noise = self.backend.asarray(self.rng.standard_normal(tuple(state.y.shape)))
        if self.bound.problem.network.fixed_outputs:  # fixed output weights: no noise on them either
            noise = noise * self.bound.moving_columns(state.y)
        y_next = langevin_step(self.drift, state.y, h, noise, self.temperature, self.solver.name,
                               drift_at_y=self.drift(state.y, state.evaluation))
        return FlowState(y_next, None), None

    def observe(self, state: FlowState, clock):
        snapshot = super().observe(state, clock)
        decay = 0.0 if self.weight_decay is None else self.weight_decay.value(state.y, self.weights_on_backend,
                                                                              self.backend, self.outputs)
        snapshot.observables["regularized_risk"] = snapshot.risk + decay
        y = state.y
        if self.dynamics.diagnostic and self.temperature > 0:
            from .stein import kernel_stein_discrepancy

            score = self.backend.to_numpy(self.drift(y, state.evaluation)) / self.temperature
            ksd2, se = kernel_stein_discrepancy(self.backend.to_numpy(y), score, self.weights,
                                                max_points=self.dynamics.diagnostic_particles)
            snapshot.observables.update(ksd2=ksd2, ksd2_se=se)
        return snapshot

