"""Training of the output layer only: the input weights stay at their initial values (random features)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._defaults import dataclass_spec
from ..flow import ParticleFlow
from ..registry import DYNAMICS

__all__ = ["OutputLayer", "OutputLayerFlow"]


@DYNAMICS.register("output_layer")
@dataclass(frozen=True)
class OutputLayer:
    r"""The flow of the output weights alone, ȧ_j = −∂_a[F'(μ)(θ_j) + λ r(θ_j)], ḃ_j = 0: gradient descent on a
    random-features model whose features σ(⟨b_j, x⟩) are those of μ0. With the logistic loss on separable data it
    tends to the max-margin classifier of the kernel Σ_j w_j σ(⟨b_j, x⟩)σ(⟨b_j, x'⟩), which the mean-field flow, moving
    the features, does not (Chizat & Bach 2020, arXiv:2002.04486).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.dynamics import OutputLayer
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0]]), mf.Gaussian(2))
    >>> mu0 = mf.init.sign_sphere(16, 2, seed=0)
    >>> traj = mf.simulate(problem, mu0, t_max=1.0, dt=0.1, dynamics=OutputLayer())
    >>> bool(np.array_equal(traj.final.b, mu0.b)), bool(traj.risk[-1] < traj.risk[0])
    (True, True)
    """

    def spec(self) -> dict:
        return dataclass_spec(self, "output_layer")

    def rule(self, bound, mu0, solver, max_risk_factor: float, stop_risk):
        if bound.problem.network.fixed_outputs:
            raise ValueError("output-layer training moves only the output weights, and this network has fixed output "
                             "weights: nothing would move; use trained output weights")
        if not bound.problem.particles_are_neurons:
            raise ValueError(f"output-layer training needs neurons; the particles of {type(bound.problem).__name__} "
                             "are not: use the plain flow (dynamics=None)")
        return OutputLayerFlow(bound, mu0, solver, max_risk_factor, stop_risk)


class OutputLayerFlow(ParticleFlow):
    """The stepping rule of :class:`OutputLayer`: the flow's velocity with its input-weight columns set to zero.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.dynamics import OutputLayer
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0]]), mf.Gaussian(2))
    >>> rule = OutputLayer().rule(problem.bind("numpy"), mf.init.sign_sphere(4, 2, seed=0), mf.get_solver("euler"),
    ...                           1e6, None)
    >>> state = rule.init(None)
    >>> bool(np.all(rule.velocity(state.y, state.evaluation)[:, 1:] == 0))
    True
    """

    def __init__(self, bound, mu0, solver, max_risk_factor: float = 1e6, stop_risk=None):
        super().__init__(bound, mu0, solver, max_risk_factor, stop_risk)
        mask = np.zeros((1, mu0.state().shape[1]))
        mask[0, :mu0.output_columns] = 1.0
        self.mask = self.backend.asarray(mask)
        self.label = f"output_layer[{solver.name},{self.backend.name}]"

    def velocity(self, y, evaluation):
        return self.mask * super().velocity(y, evaluation)
