"""The save policy: when a run saves (a step count, or a time grid for adaptive steps) and what (the risk, the
particles, the observables, which it owns)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_dataset_name, check_positive_int
from .measure import ParticleMeasure

__all__ = ["SaveAt"]


def evaluate_observables(observables: Mapping[str, Callable], mu: ParticleMeasure) -> dict:
    """Each observable of ``mu`` as a float64 array; an observable that fails or returns something that is not a
    number (or an array of numbers) is an error naming it."""
    out = {}
    for name, fn in observables.items():
        value = fn(mu)
        try:
            out[name] = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"observable {name!r} returned {type(value).__name__} {value!r:.60}; an observable must "
                            "return a number or an array of numbers") from None
    return out


@dataclass(frozen=True)
class SaveAt:
    """What to save and when: every ``every`` steps (fixed steps), or on the time grid k · every · dt (adaptive
    steps, dt the first step), always including t = 0 and the end. ``particles=False`` keeps only the scalar series
    (time, risk, observables) and the final state. ``observables`` (name → callable(ParticleMeasure) → number or
    array) are recorded at every save.

    Examples
    --------
    >>> import meanfield as mf
    >>> save = mf.SaveAt(every=5, particles=False)
    >>> save.every, save.particles
    (5, False)
    """

    every: int = 10
    particles: bool = True
    observables: Mapping[str, Callable] = field(default_factory=dict)

    def __post_init__(self):
        check_positive_int(self.every, "save_every")
        for name, fn in self.observables.items():
            check_dataset_name(name, "observable")
            if not callable(fn):
                raise TypeError(f"observable {name!r} must be callable(ParticleMeasure) -> value")

    def next_stop(self, clock, controller, t_max: float) -> float:
        """The time the next step may not pass: the next grid point for adaptive steps, none otherwise."""
        if not controller.adaptive:
            return math.inf
        return min(t_max, clock.n_saved * self.every * controller.dt0)

    def save_time(self, clock, controller, t_max: float, t_stop: float) -> float | None:
        """The time to save at after the step just taken (the grid point it reached), or None."""
        if controller.adaptive:
            return t_stop if clock.t >= t_stop - 1e-12 * t_max else None
        return clock.t if clock.step % self.every == 0 or controller.finished(clock, t_max) else None

    def evaluate(self, measure: ParticleMeasure | None) -> dict:
        return evaluate_observables(self.observables, measure) if measure is not None else {}
