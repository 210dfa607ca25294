"""The API reference pages, written from the package itself: one page per public module, every name in its ``__all__``.

A module is public when no part of its dotted name starts with an underscore; its public names are its ``__all__``.
A name is documented on the page of the module that defines it; packages that re-export names (``meanfield``,
``meanfield.kernels``, ``meanfield.symmetry``, ...) link to those pages. ``tests/test_docs.py`` uses
:func:`public_objects` to check that every public class and function has a docstring with an example.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path


def public_modules() -> list[str]:
    """Dotted names of the public modules of meanfield, the package first."""
    import meanfield

    names = ["meanfield"]
    for info in pkgutil.walk_packages(meanfield.__path__, "meanfield."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def defining_module(obj, fallback: str) -> str:
    """Where an object is defined (constants: the module that lists them)."""
    module = getattr(obj, "__module__", None)
    return module if (inspect.isclass(obj) or inspect.isfunction(obj)) and module else fallback


def module_names(module_name: str) -> tuple[list[str], list[str]]:
    """(names defined here, names re-exported from elsewhere) of a module's ``__all__``."""
    module = importlib.import_module(module_name)
    own, reexported = [], []
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            continue
        (own if defining_module(obj, module_name) == module_name else reexported).append(name)
    return own, reexported


def public_objects() -> dict[str, object]:
    """Every public class and function, by its documented dotted name (constants left out: no docstring)."""
    found = {}
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in module_names(module_name)[0]:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                found[f"{module_name}.{name}"] = obj
    return found


def _directive(module_name: str, name: str) -> str:
    obj = getattr(importlib.import_module(module_name), name)
    if inspect.isclass(obj):
        kind = "autoexception" if issubclass(obj, BaseException) else "autoclass"
        return f".. {kind}:: {module_name}.{name}\n"
    if inspect.isfunction(obj):
        return f".. autofunction:: {module_name}.{name}\n"
    return f".. autodata:: {module_name}.{name}\n   :no-value:\n"


def _page(module_name: str) -> str:
    module = importlib.import_module(module_name)
    own, reexported = module_names(module_name)
    lines = [f"``{module_name}``", "=" * (len(module_name) + 4), "",
             f".. automodule:: {module_name}", "   :no-members:", ""]
    if reexported:
        lines += ["Names available here, documented where they are defined:", ""]
        for name in reexported:
            obj = getattr(module, name)
            target = f"{defining_module(obj, module_name)}.{getattr(obj, '__name__', name)}"
            role = "class" if inspect.isclass(obj) else "func" if callable(obj) else "data"
            lines.append(f"- :{role}:`{module_name}.{name} <{target}>`")
        lines.append("")
    for name in own:
        lines += [_directive(module_name, name)]
    return "\n".join(lines) + "\n"


def write_pages(out: Path) -> None:
    """Write ``out/<module>.rst`` for every public module and ``out/index.rst``; unchanged files are not touched."""
    out.mkdir(parents=True, exist_ok=True)
    modules = public_modules()
    pages = {f"{name}.rst": _page(name) for name in modules}
    toc = "\n".join(f"   {name}" for name in modules)
    pages["index.rst"] = (
        "API reference\n=============\n\n"
        "Every public name of the package, generated from its docstrings. Most users need only the names of the\n"
        "package itself (:doc:`meanfield`); the modules below hold the rest.\n\n"
        f".. toctree::\n   :maxdepth: 1\n\n{toc}\n"
    )
    for filename, text in pages.items():
        path = out / filename
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    for stale in out.glob("*.rst"):
        if stale.name not in pages:
            stale.unlink()
