"""Registries: the names by which configuration files, the command line, file readers and the docs know each kind of
component — units, losses, penalties, dynamics, solvers, step controllers, backends, input laws, targets,
initialisations and sources of data sets.

A class (or a factory, or an object such as a Runge–Kutta tableau) is registered once, where it is defined::

    @UNITS.register("erf")
    class Erf(Activation): ...

and every list of names is then read from the registry, never kept by hand. A user's component is registered the
same way, from the user's own module, and is at once accepted by ``Problem(activation=...)``, configuration files and
the ``--help`` of the command line.

Examples
--------
>>> from meanfield.registry import LOSSES, SOLVERS
>>> "squared" in LOSSES, SOLVERS["heun"].order
(True, 2)
>>> LOSSES.create("cross_entropy", classes=3).classes
3
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator

__all__ = ["Registry", "UnknownNameError", "UNITS", "LOSSES", "PENALTIES", "DYNAMICS", "SOLVERS", "CONTROLLERS",
           "BACKENDS", "INPUT_LAWS", "TARGETS", "INITS", "DATA", "REGISTRIES"]


class UnknownNameError(ValueError):
    """A name that no entry of a registry has; the message lists the names it has.

    Examples
    --------
    >>> from meanfield.registry import LOSSES
    >>> try:
    ...     LOSSES["hinge"]
    ... except UnknownNameError as err:
    ...     print(err)
    unknown loss 'hinge': choose one of 'squared', 'logistic', 'cross_entropy'
    """


class Registry:
    """Names → components of one kind, in registration order.

    Parameters
    ----------
    kind : str
        What the entries are ("unit", "loss", …), for messages.
    home : str, optional
        The module that registers the built-in entries; it is imported before the registry is first read, so that the
        names are complete whichever module asked first.

    Examples
    --------
    A registry of one's own, and an entry registered by a decorator:

    >>> shapes = Registry("shape")
    >>> @shapes.register("square")
    ... class Square:
    ...     def __init__(self, side: float = 1.0):
    ...         self.side = side
    >>> shapes.names(), shapes.create("square", side=2.0).side
    (('square',), 2.0)
    >>> try:
    ...     shapes.create("square", sides=2.0)
    ... except TypeError as err:
    ...     print(err)
    shape 'square' takes side; got sides
    >>> shapes.unregister("square"); shapes.names()
    ()
    """

    def __init__(self, kind: str, home: str | None = None):
        self.kind, self._home = kind, home
        self._entries: dict[str, object] = {}
        self._modules: dict[str, str] = {}  # entries defined in a module imported on first use (optional packages)
        self._loaded = home is None

    def register(self, name: str, entry: object = None, *, module: str | None = None):
        """Register ``entry`` as ``name``; without ``entry``, a decorator that registers what it decorates. With
        ``module``, the entry is the one that module registers when it is imported (the first time ``name`` is asked
        for): a component whose package may be missing."""
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"a {self.kind} name must be an identifier-like string, got {name!r}")
        if module is not None:
            self._modules[name] = module
            return None
        if entry is None:
            def decorate(obj):
                self._entries[name] = obj
                return obj
            return decorate
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (an entry registered for a while, e.g. in a test); an unknown name is an
        :class:`UnknownNameError`."""
        self[name]
        self._entries.pop(name, None)
        self._modules.pop(name, None)

    def _load_home(self) -> None:
        if not self._loaded:
            self._loaded = True
            importlib.import_module(self._home)

    def names(self) -> tuple[str, ...]:
        """Every registered name (including those whose module is imported on first use), in registration order."""
        self._load_home()
        return tuple(self._entries) + tuple(name for name in self._modules if name not in self._entries)

    def available(self) -> tuple[str, ...]:
        """The names whose entries can be had on this machine (their optional package imports)."""
        out = []
        for name in self.names():
            try:
                self[name]
            except ImportError:
                continue
            out.append(name)
        return tuple(out)

    def __getitem__(self, name: str):
        self._load_home()
        if name not in self._entries and name in self._modules:
            try:
                importlib.import_module(self._modules[name])
            except ImportError as err:
                raise ImportError(f"{self.kind} {name!r} needs a package that is not installed: {err}") from err
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r}: choose one of "
                                   f"{', '.join(map(repr, self.names()))}")
        return self._entries[name]

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def parameters(self, name: str) -> dict[str, inspect.Parameter]:
        """The keyword options a callable entry takes (its signature's parameters, less ``self``, ``*args``,
        ``**kwargs``)."""
        entry = self[name]
        if not callable(entry):
            return {}
        kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return {key: p for key, p in inspect.signature(entry).parameters.items() if p.kind not in kinds}

    def create(self, name: str, /, **options):
        """The entry called with ``options`` (a class instantiated, a factory called); an unknown option is a
        one-line TypeError naming the options the entry takes."""
        entry = self[name]
        if not callable(entry):
            if options:
                raise TypeError(f"{self.kind} {name!r} takes no options; got {', '.join(sorted(options))}")
            return entry
        accepted = self.parameters(name)
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            takes = f"takes {', '.join(accepted)}" if accepted else "takes no options"
            raise TypeError(f"{self.kind} {name!r} {takes}; got {', '.join(unknown)}")
        return entry(**options)

    def name_of(self, obj) -> str | None:
        """The name under which ``obj`` (an entry, or an instance of a class entry) is registered, None if none."""
        self._load_home()
        for name, entry in self._entries.items():
            if obj is entry or (isinstance(entry, type) and type(obj) is entry):
                return name
        return None

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"


def _registry(kind: str, home: str) -> Registry:
    return Registry(kind, home=f"meanfield.{home}")


#: Units (activations) by name: ``UNITS.create("leaky_relu", slope=0.1)``.
UNITS = _registry("unit", "activations")
#: Losses of the empirical problem.
LOSSES = _registry("loss", "losses")
#: Penalties λ ∫ r dμ; each takes its strength λ.
PENALTIES = _registry("penalty", "penalties")
#: Dynamics beyond the gradient flow (``simulate(..., dynamics=...)``).
DYNAMICS = _registry("dynamics", "dynamics")
#: Runge–Kutta tableaus (``solver=``).
SOLVERS = _registry("solver", "solvers")
#: Step-size controllers.
CONTROLLERS = _registry("controller", "controllers")
#: Kernel backends (``backend=``); optional ones are imported when first asked for.
BACKENDS = _registry("backend", "kernels.base")
#: Input laws.
INPUT_LAWS = _registry("input law", "inputs")
#: Targets f*.
TARGETS = _registry("target", "targets")
#: Initialisations of the particles.
INITS = _registry("initialisation", "init")
#: Sources of data sets (a scikit-learn loader, an .npz file, samples of a population problem).
DATA = _registry("data source", "data")

#: Every registry by its plural name (for the docs' reference and ``--help``).
REGISTRIES: dict[str, Registry] = {"units": UNITS, "losses": LOSSES, "penalties": PENALTIES, "dynamics": DYNAMICS,
                                   "solvers": SOLVERS, "controllers": CONTROLLERS, "backends": BACKENDS,
                                   "input_laws": INPUT_LAWS, "targets": TARGETS, "inits": INITS,
                                   "data": DATA}

