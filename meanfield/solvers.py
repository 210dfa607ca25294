"""Explicit Runge–Kutta solvers (stateless stepping rules) for the autonomous particle ODE ż = v(z).

Fixed step: ``euler`` (order 1), ``heun`` (2), ``rk4`` (4). Adaptive embedded pairs with error control:
``bosh3`` (Bogacki–Shampine 3(2)) and ``dopri5`` (Dormand–Prince 5(4)).
"""

from __future__ import annotations

from dataclasses import dataclass

from .registry import SOLVERS as _SOLVERS

__all__ = ["RungeKutta", "get_solver", "SOLVERS"]


@dataclass(frozen=True)
class RungeKutta:
    """An explicit Runge–Kutta rule given by its Butcher tableau (A strictly lower triangular).

    ``error_weights`` (b − b̂ of an embedded lower-order rule) makes the solver adaptive.

    Examples
    --------
    A new explicit rule from its tableau (the midpoint method, order 2):

    >>> import numpy as np, meanfield as mf
    >>> from meanfield.solvers import RungeKutta
    >>> midpoint = RungeKutta("midpoint", order=2, A=((), (0.5,)), b=(0.0, 1.0))
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0]]), mf.Gaussian(2))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(8, 2, seed=0), t_max=1.0, dt=0.1, solver=midpoint)
    >>> traj.info["solver"]
    'midpoint'
    """

    name: str
    order: int
    A: tuple
    b: tuple
    error_weights: tuple | None = None
    error_order: int | None = None

    @property
    def adaptive(self) -> bool:
        return self.error_weights is not None

    @property
    def stages(self) -> int:
        return len(self.b)

    def step(self, rhs, y, dt: float, k1=None):
        """One step of size ``dt`` from ``y``; ``k1 = rhs(y)`` may be passed in when already known.

        Returns ``(y_next, error)`` where ``error`` is the embedded error estimate (or None).
        """
        ks = [rhs(y) if k1 is None else k1]
        for i in range(1, self.stages):
            yi = y
            for j, aij in enumerate(self.A[i]):
                if aij:
                    yi = yi + (dt * aij) * ks[j]
            ks.append(rhs(yi))
        y_next = y
        for bi, k in zip(self.b, ks):
            if bi:
                y_next = y_next + (dt * bi) * k
        error = None
        if self.adaptive:
            error = 0.0 * y
            for ei, k in zip(self.error_weights, ks):
                if ei:
                    error = error + (dt * ei) * k
        return y_next, error


def _embedded(name, order, A, b, b_low, error_order):
    return RungeKutta(name, order, A, b, tuple(x - y for x, y in zip(b, b_low)), error_order)


#: The Runge–Kutta tableaus by the name ``solver=`` takes: the registry :data:`meanfield.registry.SOLVERS`.
SOLVERS = _SOLVERS
for _tableau in (
    RungeKutta("euler", 1, ((),), (1.0,)),
    RungeKutta("heun", 2, ((), (1.0,)), (0.5, 0.5)),
    RungeKutta("rk4", 4, ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), (1 / 6, 1 / 3, 1 / 3, 1 / 6)),
    _embedded(
        "bosh3", 3,
        ((), (1 / 2,), (0.0, 3 / 4), (2 / 9, 1 / 3, 4 / 9)),
        (2 / 9, 1 / 3, 4 / 9, 0.0),
        (7 / 24, 1 / 4, 1 / 3, 1 / 8),
        2,
    ),
    _embedded(
        "dopri5", 5,
        (
            (),
            (1 / 5,),
            (3 / 40, 9 / 40),
            (44 / 45, -56 / 15, 32 / 9),
            (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
            (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
            (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
        ),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
        (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40),
        4,
    ),
):
    SOLVERS.register(_tableau.name, _tableau)


def get_solver(solver) -> RungeKutta:
    """A solver from its name (``euler``, ``heun``, ``rk4``, ``bosh3``, ``dopri5``) or a :class:`RungeKutta`.

    Examples
    --------
    >>> from meanfield.solvers import get_solver
    >>> rk4 = get_solver("rk4")
    >>> rk4.order, get_solver("dopri5").error_order
    (4, 4)
    """
    if isinstance(solver, RungeKutta):
        return solver
    return SOLVERS[solver]
