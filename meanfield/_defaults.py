"""The value a configuration entry stands for when a run leaves it out: read from the signature of the function
that runs it, or from the fields of the dataclass that describes it (never from a list kept by hand).

A resumed run is compared with its file entry by entry (:func:`meanfield._resume.resume`); an entry
that one side lacks (a file written by an older version, or a setting left out) is compared as its default.
"""

from __future__ import annotations

import dataclasses
import inspect

__all__ = ["call_defaults", "field_defaults", "dataclass_spec"]

_PLAIN = (type(None), bool, int, float, str)


def call_defaults(fn, prefix: str = "") -> dict:
    """{prefix + name: default} of the keyword arguments of ``fn`` whose default is a plain value.

    Examples
    --------
    >>> def run(t_max, temperature=0.0, solver="heun", observables=None): ...
    >>> call_defaults(run)
    {'temperature': 0.0, 'solver': 'heun', 'observables': None}
    """
    return {prefix + name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty and isinstance(p.default, _PLAIN)}


def field_defaults(cls, prefix: str = "") -> dict:
    """{prefix + name: default} of the fields of the dataclass ``cls`` that have a plain default.

    Examples
    --------
    >>> from meanfield.dynamics import Langevin
    >>> field_defaults(Langevin, "dynamics.")["dynamics.diagnostic"]
    True
    """
    return {prefix + f.name: f.default for f in dataclasses.fields(cls) if isinstance(f.default, _PLAIN)}


def dataclass_spec(obj, kind: str) -> dict:
    """The JSON description of a dataclass: its ``kind`` and every field (so that no setting is left out of a file).

    Examples
    --------
    >>> from meanfield.dynamics import BirthDeath
    >>> dataclass_spec(BirthDeath(rate=2.0, seed=1), "birth_death")
    {'kind': 'birth_death', 'rate': 2.0, 'seed': 1}
    """
    return {"kind": kind, **{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}}
