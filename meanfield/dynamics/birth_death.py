"""The particle flow with birth and death of particles (Rotskoff, Jelassi, Bruna & Vanden-Eijnden 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._defaults import dataclass_spec
from .._validation import check_nonnegative, check_seed
from ..controllers import Diverged
from ..flow import FlowState
from ..registry import DYNAMICS
from ._random import SeededFlow

__all__ = ["BirthDeath", "BirthDeathFlow"]

#: A step in which more than this fraction of the particles is expected to jump is refused.
MAX_JUMP_FRACTION = 0.25


@DYNAMICS.register("birth_death")
@dataclass(frozen=True)
class BirthDeath:
    r"""The Wasserstein flow of the particles plus birth and death at rates from the first variation.

    After each step of the flow, particle j with Λ_j = F'(μ)(θ_j) − Σ_k w_k F'(μ)(θ_k) > 0 dies with probability
    1 − e^{−γ Λ_j h} and is replaced by a copy of a particle drawn uniformly; one with Λ_j < 0 is duplicated with
    probability 1 − e^{γ Λ_j h}, its copy replacing a particle drawn uniformly; m stays fixed. In expectation the
    jumps add the Fisher–Rao term to the flow's dissipation, dF/dt = −∫ |∇F'|² dμ − γ ∫ Λ² dμ, to first order in
    γh|Λ|; a step in which more than a quarter of the particles is expected to jump stops the run with a message to
    reduce dt (the jumps are an explicit step of the reaction, decided from the state at the start of the step).
    γ = 0 is the plain flow.

    Parameters
    ----------
    rate : float
        γ ≥ 0.
    seed : int
        Seed of the jumps' generator (its state is checkpointed: a resumed run is bit-identical).

    References
    ----------
    G. Rotskoff, S. Jelassi, J. Bruna, E. Vanden-Eijnden, *Neuron birth–death dynamics accelerates gradient descent
    and converges asymptotically*, ICML 2019, arXiv:1902.01843.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.dynamics import BirthDeath
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0, 1.0], np.eye(3)[:2]), mf.Gaussian(3))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(32, 3, seed=0), t_max=2.0, dt=0.1, backend="numpy",
    ...                    dynamics=BirthDeath(rate=5.0, seed=1))
    >>> bool(traj.observables["jumps"][-1] > 0), bool(traj.risk[-1] < traj.risk[0])
    (True, True)
    """

    rate: float = 1.0
    seed: int = 0

    def __post_init__(self):
        check_nonnegative(self.rate, "BirthDeath rate")
        check_seed(self.seed, "BirthDeath seed")

    def spec(self) -> dict:
        return dataclass_spec(self, "birth_death")

    def rule(self, bound, mu0, solver, max_risk_factor: float, stop_risk):
        if bound.problem.network.fixed_outputs:
            raise ValueError("birth–death duplicates and removes neurons by their output-weighted first variation, "
                             "which fixed output weights forbid: use the plain flow (dynamics=None)")
        if not bound.problem.particles_are_neurons or bound.problem.output_columns != 1:
            raise ValueError(f"birth–death needs the first variation a ψ(b) of neurons with one output; the particles "
                             f"of {type(bound.problem).__name__} are not: use the plain flow (dynamics=None)")
        if not np.allclose(mu0.weights, 1.0 / mu0.m, rtol=1e-12, atol=0):
            raise ValueError("birth–death resamples particles of equal mass: give mu0 uniform weights")
        return BirthDeathFlow(bound, mu0, solver, self, max_risk_factor, stop_risk)


class BirthDeathFlow(SeededFlow):
    """The stepping rule of :class:`BirthDeath`: a Runge–Kutta step of the flow, then the jumps.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.dynamics import BirthDeath
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0]]), mf.Gaussian(2))
    >>> rule = BirthDeath(rate=0.0).rule(problem.bind("numpy"), mf.init.sign_sphere(4, 2, seed=0),
    ...                                  mf.get_solver("euler"), 1e6, None)
    >>> sorted(rule.checkpoint(rule.init(None), rule.observe(rule.init(None), None)))[:3]
    ['a', 'b', 'jumps']
    """

    def __init__(self, bound, mu0, solver, dynamics: BirthDeath, max_risk_factor: float = 1e6, stop_risk=None):
        super().__init__(bound, mu0, solver, dynamics.seed, max_risk_factor, stop_risk)
        self.rate = dynamics.rate
        self.jumps = 0
        self.label = f"birth_death[{solver.name},{self.backend.name}]"

    def init(self, start) -> FlowState:
        state = super().init(start)
        if start is not None:
            self.jumps = int(start.arrays["jumps"])
        return state

    def jump(self, y, evaluation, h: float):
        """The births and deaths of one step of length h from the state y: the new state (rows copied), or y itself
        when no particle jumped."""
        nx = self.backend
        first_variation = y[:, 0] * evaluation.psi
        penalty = self.bound.problem.penalty
        if penalty is not None:  # F'(μ)(θ) + λ r(θ)
            first_variation = first_variation + penalty.strength * penalty.per_particle(y, nx)
        first_variation = nx.to_numpy(first_variation)
        excess = first_variation - float(self.weights @ first_variation)
        probability = -np.expm1(-self.rate * h * np.abs(excess))
        if probability.mean() > MAX_JUMP_FRACTION:
            raise Diverged(f"birth–death step too large: {probability.mean():.0%} of the particles would jump in one "
                           f"step (γ = {self.rate:g}, dt = {h:.3g}), so the jumps, decided from the state at the "
                           f"start of the step, no longer follow their rates; reduce dt or the rate")
        m = excess.shape[0]
        u = self.rng.random(m)
        partner = self.rng.integers(0, m, size=m)
        dies = (excess > 0) & (u < probability)
        duplicates = (excess < 0) & (u < probability)
        if not (dies.any() or duplicates.any()):
            return y
        rows = np.arange(m)
        for j in np.flatnonzero(dies | duplicates):       # sequentially: each jump sees the previous ones
            if dies[j]:
                rows[j] = rows[partner[j]]
            else:
                rows[partner[j]] = rows[j]
        self.jumps += int(dies.sum() + duplicates.sum())
        return y[rows]

    def step(self, state: FlowState, h: float):
        candidate, error = super().step(state, h)
        if self.rate == 0.0:
            return candidate, error
        y, evaluation = candidate.y, self._evaluate(candidate.y)
        after = self.jump(y, evaluation, h)
        return FlowState(after, evaluation if after is y else None), error   # no jump: the evaluation stands

    def observe(self, state: FlowState, clock):
        snapshot = super().observe(state, clock)
        snapshot.observables["jumps"] = float(self.jumps)
        return snapshot

    def checkpoint(self, state: FlowState, snapshot) -> dict:
        return dict(super().checkpoint(state, snapshot), jumps=self.jumps)
