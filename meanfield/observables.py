"""What a run records besides the risk: the caller's observables, the problem's own (the unpenalised risk, the
penalty, a data set's losses and accuracies) and the alignment with the target's hidden subspace — assembled once, for
flows and SGD alike."""

from __future__ import annotations

from pathlib import Path

from .symmetry.alignment import alignment_observables

__all__ = ["run_observables"]


def run_observables(problem, observables, path=None, resume: bool = False, alignment: bool = True) -> dict:
    """The observables a run records: the caller's, plus the problem's ``default_observables()`` and the
    :func:`~meanfield.symmetry.alignment_observables` of the target's hidden subspace when ``alignment`` and the
    target names one (teacher: span(U); multi-index: Q; linear: β) and the particles are neurons (not the reduced
    coordinates of a low-dimensional flow) — except when resuming a file that was written without them (a resumed
    run records what the file records). The caller's own observables win over the others of the same name.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> problem = mf.Problem(mf.LinearTarget(np.ones(3)), mf.Gaussian(3))
    >>> sorted(run_observables(problem, {"norm": lambda mu: 0.0}))[:3]
    ['angle_hist_neg', 'angle_hist_pos', 'mass_neg']
    >>> sorted(run_observables(problem, {}, alignment=False))
    []
    """
    observables = dict(observables or {})
    H = problem.hidden_subspace() if alignment and problem.particles_are_neurons else None
    extra = {} if H is None else alignment_observables(H)
    extra = {name: fn for name, fn in {**problem.default_observables(), **extra}.items() if name not in observables}
    if not extra:
        return observables
    if resume and path is not None and Path(path).exists():
        from .io import load

        with load(path) as stored:
            recorded = set(stored.config.get("observables", []))
        extra = {name: fn for name, fn in extra.items() if name in recorded}
    return {**observables, **extra}
