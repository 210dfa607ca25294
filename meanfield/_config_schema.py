"""The keys of every table of a configuration file and their types, read from the signatures of the functions and
registered classes that a configuration calls: nothing here lists names by hand.

A table with a ``kind`` (or, for [inputs], ``law``) takes the options of the registered entry of that name; a key
naming a component ([problem] activation, loss, penalty; [run] solver, backend, dynamics) takes a name of its
registry, and for the components of [problem] also a table ``{kind = NAME, option = value, ...}``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

# The types of values. "number" accepts integers and floats (not strings, not booleans); "list of numbers" a list of
# numbers; "list of lists of numbers" groups of them (e.g. [[3], [8]]); "table" a table; "any" every value.
INT, NUM, STR, BOOL, VEC, GROUPS, TABLE, ANY = ("integer", "number", "string", "boolean", "list of numbers",
                                                "list of lists of numbers", "table", "any value")


def is_of(value, kind: str) -> bool:
    """Whether ``value`` (as TOML or YAML gives it) is of the schema type ``kind``."""
    if kind == ANY:
        return True
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == STR:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == TABLE:
        return isinstance(value, dict)
    if kind == GROUPS:
        return isinstance(value, (list, tuple)) and all(is_of(v, VEC) for v in value)
    return isinstance(value, (list, tuple)) and all(is_of(v, NUM) for v in value)


def _split_union(text: str) -> list[str]:
    """``"float | list[float] | None"`` → ["float", "list[float]", "None"] (bars inside brackets kept)."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "|" and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]


_SCALARS = {"bool": BOOL, "int": INT, "float": NUM, "str": STR, "Path": STR, "dict": TABLE}


def types_of(param: inspect.Parameter) -> tuple[str, ...]:
    """The schema types a parameter accepts, from its annotation (a string under ``from __future__ import
    annotations``), else from the type of its default; ``(ANY,)`` when neither says."""
    annotation = param.annotation
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    found: list[str] = []
    if text and annotation is not inspect.Parameter.empty:
        for token in _split_union(text):
            head = token.split("[", 1)[0].strip()
            if head in _SCALARS:
                found.append(_SCALARS[head])
            elif head in ("list", "tuple", "Sequence"):
                found.append(GROUPS if "[" in token[len(head) + 1:] else VEC)
    if not found and param.default is not inspect.Parameter.empty and param.default is not None:
        found = [_SCALARS.get(type(param.default).__name__, ANY)]
    return tuple(dict.fromkeys(found)) or (ANY,)


@dataclass(frozen=True)
class Key:
    """One key of a table: the types it accepts, whether it must be given, and the registry whose names it takes.

    Examples
    --------
    >>> from meanfield._config_schema import Key, NUM
    >>> Key((NUM,), required=True).describe()
    'number, required'
    """

    types: tuple[str, ...]
    required: bool = False
    names: object = None  # a Registry, or a callable giving the accepted names

    def choices(self) -> tuple[str, ...] | None:
        """The names the key accepts, None for any value of its types."""
        if self.names is None:
            return None
        return tuple(self.names.names() if hasattr(self.names, "names") else self.names())

    def describe(self) -> str:
        """The key's types (and its names, or that it is required) in words."""
        choices = self.choices()
        text = " or ".join(self.types)
        if choices is not None:
            text = f"one of {', '.join(map(repr, choices))}" + (" or a table {kind = NAME, options}" if TABLE in
                                                                   self.types else "")
        return text + (", required" if self.required else "")


def signature_keys(fn, skip=()) -> dict[str, Key]:
    """{name: Key} of the keyword parameters of ``fn`` (less ``self``, ``*args``, ``**kwargs`` and ``skip``)."""
    out = {}
    for name, param in inspect.signature(fn).parameters.items():
        if name in skip or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        out[name] = Key(types_of(param), required=param.default is inspect.Parameter.empty)
    return out


def takes_more(fn) -> bool:
    """Whether ``fn`` takes ``**options`` (passed on to the entry its ``base`` names)."""
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def entry_keys(registry, name: str, skip=(), base_key: str = "base", base: str | None = None) -> dict[str, Key]:
    """The options of a registry's entry ``name``; an entry that takes ``base`` (the name of another entry of the same
    registry) and ``**options`` also takes that entry's options (``base`` its value, else its default)."""
    entry = registry[name]
    if not callable(entry):
        return {}
    keys = signature_keys(entry, skip)
    if base_key in keys and takes_more(entry):
        keys[base_key] = Key(keys[base_key].types, names=registry)
        default = inspect.signature(entry).parameters[base_key].default
        chosen = base if isinstance(base, str) and base in registry else default
        if chosen != name:
            keys = {**entry_keys(registry, chosen, skip, base_key), **keys}
    return keys
