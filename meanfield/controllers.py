r"""Step-size controllers: how long the next step of a run is, and whether a step just taken is kept.

A controller sees the run loop's :class:`~meanfield.loop.Clock` (t, step, h) and moves it: :class:`ConstantStep`
takes steps of one size (flows with a fixed-step solver, SGD steps, MLP epochs); :class:`ErrorControl` adapts the
step to an embedded error estimate (Hairer, Nørsett & Wanner, *Solving ODEs I*, §II.4; diffrax's
``PIDController`` with only its integral term).
"""

from __future__ import annotations

import math

import numpy as np

from ._validation import check_positive
from .registry import CONTROLLERS

__all__ = ["ConstantStep", "ErrorControl", "Diverged"]

#: Step-size changes of :class:`ErrorControl` are clipped to [MIN_FACTOR, MAX_FACTOR] per step.
MIN_FACTOR, MAX_FACTOR = 0.2, 5.0
#: The run stops (diverged) when the adaptive step falls below MIN_STEP · t_max ...
MIN_STEP = 1e-12
#: ... or after this many rejected steps in a row: a finite error norm falls like h^{q+1} as the step is cut, so a
#: sound step is kept after a few rejections; 50 in a row is an error that does not fall with the step.
MAX_REJECTIONS = 50


class Diverged(Exception):
    """A run cannot go on (raised by a stepping rule or a controller; the message says why and what to do).

    Examples
    --------
    A stepping rule raises it when its state cannot go on; the loop then ends the run as "diverged" and raises
    :class:`~meanfield.FlowDivergedError` with what was saved:

    >>> from meanfield.controllers import Diverged
    >>> try:
    ...     raise Diverged("the state became non-finite at t = 3; take a smaller dt")
    ... except Diverged as err:
    ...     print(err)
    the state became non-finite at t = 3; take a smaller dt
    """


@CONTROLLERS.register("constant")
class ConstantStep:
    """Steps of size ``dt``; the run ends after ⌈t_max / dt⌉ steps.

    With ``exact_end`` (flows) t = min(t_max, step · dt) and a last step that would pass t_max is shortened to end on
    it; steps are exactly dt whenever t_max is a multiple of dt, so that a run extended by resume takes the same
    steps as a longer uninterrupted one. Without it (SGD, epochs) every step has size dt and t = step · dt.

    Examples
    --------
    >>> from meanfield.loop import Clock
    >>> control, clock = ConstantStep(0.4), Clock()
    >>> while not control.finished(clock, 1.0):
    ...     kept = control.update(clock, control.propose(clock, math.inf, 1.0), None, 1.0)
    >>> clock.step, clock.t
    (3, 1.0)
    """

    adaptive = False

    def __init__(self, dt: float, exact_end: bool = True):
        self.dt0 = check_positive(dt, "dt")
        self.exact_end = exact_end

    def n_steps(self, t_max: float) -> int:
        return max(1, math.ceil(t_max / self.dt0 - 1e-9))

    def finished(self, clock, t_max: float) -> bool:
        return clock.step >= self.n_steps(t_max)

    def propose(self, clock, t_stop: float, t_max: float) -> float:
        n = self.n_steps(t_max)
        if clock.step + 1 < n or not self.exact_end or abs(n * self.dt0 - t_max) <= 1e-9 * t_max:
            return self.dt0
        return t_max - (n - 1) * self.dt0

    def update(self, clock, h: float, error, t_max: float) -> bool:
        clock.step += 1
        clock.t = min(t_max, clock.step * self.dt0) if self.exact_end else clock.step * self.dt0
        clock.h = self.dt0
        return True


@CONTROLLERS.register("error_control")
class ErrorControl:
    r"""Adaptive steps from an embedded error estimate: a step is kept when its error norm
    ‖e‖ = RMS(e / (atol + rtol · max(|y|, |y_next|))) is at most 1, and the next step is
    h · clip(0.9 ‖e‖^{−1/(q+1)}, 0.2, 5) where q is the order of the error estimate.

    Parameters
    ----------
    dt : float
        First step (and the unit of the save grid).
    error_order : int
        Order q of the embedded error estimate (2 for bosh3, 4 for dopri5).
    rtol, atol : float
        Relative and absolute tolerances.

    A NaN or infinite error norm (a step so large that the state blew up) is a rejection with the largest cut, 0.2.
    Raises :class:`Diverged` when the step falls below 1e-12 · t_max, or after 50 rejections in a row (the flow is
    too stiff or blows up).

    Examples
    --------
    A step whose error norm is below 1 is kept and the next one grows (here by the most, 5×, as the error is 0); a
    larger error rejects the step:

    >>> import numpy as np
    >>> from meanfield.loop import Clock
    >>> control, clock = ErrorControl(0.1, error_order=4, rtol=1e-6, atol=1e-9), Clock(h=0.1)
    >>> y = np.ones(3)
    >>> control.update(clock, 0.1, (np.zeros(3), y, y), t_max=1.0), clock.t, round(clock.h, 12)
    (True, 0.1, 0.5)
    >>> control.update(clock, clock.h, (np.full(3, 1e-3), y, y), t_max=1.0), clock.t
    (False, 0.1)
    """

    adaptive = True

    def __init__(self, dt: float, error_order: int, rtol: float = 1e-6, atol: float = 1e-9):
        self.dt0 = check_positive(dt, "dt")
        self.error_order = int(error_order)
        self.rtol, self.atol = check_positive(rtol, "rtol"), check_positive(atol, "atol")
        self.rejected = 0  # steps rejected since the last accepted one

    def finished(self, clock, t_max: float) -> bool:
        return clock.t >= t_max - 1e-12 * t_max

    def propose(self, clock, t_stop: float, t_max: float) -> float:
        return min(clock.h, t_stop - clock.t)

    def update(self, clock, h: float, error, t_max: float) -> bool:
        err = error_norm(*error, self.rtol, self.atol)
        accepted = err <= 1.0  # False for a NaN norm
        if accepted:
            clock.t, clock.step = clock.t + h, clock.step + 1
            self.rejected = 0
        else:
            self.rejected += 1
        clock.h = h * step_factor(err, self.error_order)
        if clock.h < MIN_STEP * t_max:
            raise Diverged(f"adaptive step size fell to {clock.h:.3g} at t = {clock.t:.6g} (error norm {err:.3g}): "
                           "the flow is too stiff or diverges; try a smaller dt or a fixed-step solver")
        if self.rejected >= MAX_REJECTIONS:
            raise Diverged(f"{self.rejected} steps rejected in a row at t = {clock.t:.6g} (step {h:.3g}, error norm "
                           f"{err:.3g}): the flow is too stiff or diverges; try a smaller dt or a fixed-step solver")
        return accepted


def step_factor(err: float, error_order: int) -> float:
    """How much the next step grows (or shrinks) after a step of error norm ``err``: 0.9 err^{−1/(q+1)} clipped to
    [0.2, 5]; 5 for a zero error, 0.2 (the largest cut) for a NaN or infinite one (a step so large the state blew
    up).

    Examples
    --------
    >>> step_factor(0.0, 4), step_factor(float("nan"), 4), step_factor(float("inf"), 4), round(step_factor(1.0, 4), 2)
    (5.0, 0.2, 0.2, 0.9)
    """
    if not math.isfinite(err):
        return MIN_FACTOR
    if err == 0.0:
        return MAX_FACTOR
    return min(MAX_FACTOR, max(MIN_FACTOR, 0.9 * err ** (-1.0 / (error_order + 1))))


def error_norm(error, y, y_next, rtol: float, atol: float) -> float:
    """Hairer's RMS norm of the error relative to atol + rtol · max(|y|, |y_next|) (numpy arrays)."""
    tol = atol + rtol * np.maximum(np.abs(y), np.abs(y_next))
    return float(np.sqrt(np.mean((error / tol) ** 2)))
