"""The API reference pages, written from the package itself: one page per public module, every name in its ``__all__``,
and docs/guide/reference.md, the same names in one line each (:func:`reference_page`).

A module is public when no part of its dotted name starts with an underscore; its public names are its ``__all__``.
A name is documented on the page of the module that defines it; packages that re-export names (``meanfield``,
``meanfield.kernels``, ``meanfield.symmetry``, ...) link to those pages. ``tests/test_docs.py`` uses
:func:`public_objects` to check that every public class and function has a docstring with an example.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
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


# --- TeX fragments in plain-text docstrings, shown as maths on the site ----------------------------------------------

_SCRIPT = re.compile(r"[\^_]\{")
_OPENERS, _CLOSERS = "([{", ")]}"


def _token_end(text: str, i: int) -> int:
    """The end of the formula token starting at ``i``: up to the next blank outside braces."""
    depth = 0
    while i < len(text) and (depth or not text[i].isspace()):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return i


def _unbalanced(token: str, opener: str, closer: str) -> bool:
    return token.count(opener) != token.count(closer)


def _trim(token: str) -> tuple[str, str, str]:
    """(leading, formula, trailing): sentence punctuation and unbalanced brackets stay outside the formula."""
    lead = trail = ""
    while True:
        if token and token[-1] in ".,;:!?’'\"":
            token, trail = token[:-1], token[-1] + trail
        elif token and token[-1] in _CLOSERS and _unbalanced(token, _OPENERS[_CLOSERS.index(token[-1])], token[-1]):
            token, trail = token[:-1], token[-1] + trail
        elif token and token[0] in _OPENERS and _unbalanced(token, token[0], _CLOSERS[_OPENERS.index(token[0])]):
            lead, token = lead + token[0], token[1:]
        else:
            return lead, token, trail


def plain_tex_as_maths(text: str, math) -> str:
    """Wrap each blank-separated token holding ``^{`` or ``_{`` (TeX written in plain text, e.g. ``e^{−y f}``,
    ``δ_{(a_j, b_j)}``) in ``math(formula)``; text inside backticks is left alone."""
    out = []
    for part in re.split(r"(``.*?``|`[^`]*`)", text):
        if part.startswith("`") or not _SCRIPT.search(part):
            out.append(part)
            continue
        i, pieces = 0, []
        while i < len(part):
            hit = _SCRIPT.search(part, i)
            if hit is None:
                pieces.append(part[i:])
                break
            start = hit.start()
            while start > i and not part[start - 1].isspace():
                start -= 1
            end = _token_end(part, start)
            lead, formula, trail = _trim(part[start:end])
            pieces += [part[i:start], lead, math(formula), trail]
            i = end
        out.append("".join(pieces))
    return "".join(out)


def prose_lines(lines: list[str]):
    """Indices of a docstring's lines of running text: not doctests, directive lines, the bodies of ``.. math::`` and
    code directives, or literal blocks (after ``::``)."""
    block = None     # indentation of the line whose indented body is being skipped
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if block is not None and (not line.strip() or indent > block):
            continue
        block = None
        stripped = line.strip()
        if stripped.startswith((">>>", "...")):
            continue
        if re.match(r"\.\. (math|code-block|code|highlight|literalinclude)::", stripped) or (
                stripped.endswith("::") and not stripped.startswith("..")):
            block = indent
        if stripped.startswith(".. "):
            continue
        yield i


def docstring_tex_as_maths(lines: list[str]) -> None:
    """In place, on the lines of a docstring: :func:`plain_tex_as_maths` with ``:math:`` roles, in running text."""
    for i in prose_lines(lines):
        lines[i] = plain_tex_as_maths(lines[i], lambda formula: f":math:`{formula}`")


# --- docs/guide/reference.md: one line per public name, from the same __all__ -------------------------------------

REFERENCE = Path(__file__).resolve().parent / "guide" / "reference.md"
_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`(?:([^`<]*?)\s*<[^`>]*>|~(?:[\w.]*\.)?([^`.]*)|([^`]*))`")
_LITERAL = re.compile(r"``(.+?)``")


def _comment(module_name: str, name: str) -> str | None:
    """The ``#:`` comment above a constant, in the module that lists it or in another module listing it (a private
    module that defines what a public one re-exports)."""
    from sphinx.pycode import ModuleAnalyzer

    import meanfield

    obj = getattr(importlib.import_module(module_name), name)
    private = [info.name for info in pkgutil.walk_packages(meanfield.__path__, "meanfield.")
               if info.name.rsplit(".", 1)[-1].startswith("_") and not info.name.endswith("__main__")]
    for candidate in [module_name, *public_modules(), *private]:
        module = importlib.import_module(candidate)
        if name in getattr(module, "__all__", []) and getattr(module, name) is obj:
            comment = ModuleAnalyzer.for_module(candidate).find_attr_docs().get(("", name))
            if comment:
                return " ".join(comment)
    return None


def summary(obj, module_name: str, name: str) -> str:
    """The first paragraph of an object's docstring (a constant: its ``#:`` comment), as one line of Markdown."""
    doc = inspect.getdoc(obj) if inspect.isclass(obj) or callable(obj) else _comment(module_name, name)
    if not doc:
        raise ValueError(f"{module_name}.{name} has neither a docstring nor a #: comment: write one")
    return markdown_line(doc)


def markdown_line(doc: str) -> str:
    """The first paragraph of a docstring as one line of Markdown for a table cell: roles and literals as code, TeX
    fragments as ``$...$``, bars and asterisks escaped."""
    text = " ".join(doc.strip().split("\n\n")[0].split())
    if text.endswith((":", ",")):        # a paragraph that a formula continues
        text = text[:-1] + " …"
    text = re.sub(r":math:`([^`]*)`", lambda m: "$" + m.group(1).replace("|", r"\vert ") + "$", text)
    text = _ROLE.sub(lambda m: "`" + next(g for g in m.groups() if g is not None) + "`", text)
    text = _LITERAL.sub(r"`\1`", text)
    text = plain_tex_as_maths(text, lambda formula: "$" + formula.replace("|", r"\vert ") + "$")
    # a table cell: | is escaped outside maths (also in code), * outside code and maths (Markdown emphasis)
    parts = re.split(r"(`[^`]*`|\$[^$]*\$)", text)
    return "".join(p if p.startswith("$") else p.replace("|", r"\|") if p.startswith("`")
                   else p.replace("*", r"\*").replace("|", r"\|") for p in parts)


def _signature(obj, name: str) -> str:
    """``name(a, b=1, *args, **options)`` without annotations; ``name(...)`` when that is long; a constant's name."""
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return name
    try:
        parameters = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return name
    shown = []
    for p in parameters:
        star = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        shown.append(star + p.name + ("" if p.default is p.empty else f"={p.default!r}"))
    text = f"{name}({', '.join(shown)})"
    return text if len(text) <= 70 else f"{name}(...)"


def reference_page() -> str:
    """The text of docs/guide/reference.md: every name of every public module's ``__all__``, one line each."""
    lines = ["# API reference in one line per name", "",
             "Every name of every public module's `__all__`, with the first line of its docstring (`help(name)` shows",
             "the rest, and the site's API reference renders it). This page is written by `docs/apigen.py` during",
             "the site build; `tests/test_docs.py` checks that the committed copy is up to date", "",
             "`mf` is `import meanfield as mf`. A name that a module re-exports is described under the module that",
             "defines it; the package itself lists all of its names, with where each is defined.", ""]
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        own, reexported = module_names(module_name)
        submodules = [n for n in getattr(module, "__all__", []) if inspect.ismodule(getattr(module, n))]
        lines += [f"## `{module_name}`", ""]
        first = (inspect.getdoc(module) or "").strip().split("\n\n")[0]
        if first:
            lines += [markdown_line(first), ""]
        rows = own if module_name != "meanfield" else own + reexported
        prefix = "mf." if module_name == "meanfield" else ""
        if rows:
            lines += ["| name | what it is |", "| --- | --- |"]
            for name in rows:
                obj = getattr(module, name)
                home = defining_module(obj, module_name)
                where = "" if home == module_name else f" (`{home}`)"
                lines.append(f"| `{_signature(obj, prefix + name)}` | {summary(obj, home, name)}{where} |")
            lines.append("")
        if reexported and module_name != "meanfield":
            lines += ["Also here, described where they are defined: "
                      + ", ".join(f"`{name}`" for name in reexported) + ".", ""]
        if submodules:
            lines += ["Modules: " + ", ".join(f"`{module_name}.{name}`" for name in submodules) + ".", ""]
    return "\n".join(lines)


def write_reference(path: Path = REFERENCE) -> None:
    """Write :func:`reference_page` to ``path`` when it differs."""
    text = reference_page()
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


# --- docs/guide/configuration.md: every key of every configuration table, from the registries ---------------------

CONFIGURATION = Path(__file__).resolve().parent / "guide" / "configuration.md"


def _entry_summary(entry) -> str:
    """The first paragraph of an entry's docstring; for a factory without one (``lambda: ReLUPower(2)``), of the
    class of what it builds."""
    doc = inspect.getdoc(entry) if callable(entry) else None
    if not doc and callable(entry) and not inspect.signature(entry).parameters:
        doc = inspect.getdoc(type(entry()))
    return markdown_line(doc) if doc else ""


def _keys_cell(keys: dict) -> str:
    return ", ".join(f"`{key}` ({what})" for key, what in keys.items()) or "—"


def configuration_page() -> str:
    """The text of docs/guide/configuration.md: the keys of each table of a configuration file, per registered kind,
    as :func:`meanfield.config.schema` reads them from the registries and the signatures of their entries."""
    from meanfield import config
    from meanfield.registry import DATA, DYNAMICS, INITS, INPUT_LAWS, LOSSES, PENALTIES, TARGETS, UNITS
    from meanfield.sweep import jobqueue_kinds

    lines = ["# Configuration keys", "",
             "Every key of every table of a configuration file (TOML or YAML), read from the registries",
             "(`meanfield.registry`) and the signatures of the entries they name (`meanfield.config.schema`): a",
             "component registered by a user's own module is accepted at once, with the keys of its signature. This",
             "page is written by `docs/apigen.py` during the site build; a test checks that the committed copy is up",
             "to date. How the tables fit together, with examples: [runs and files](runs-and-files.md).", ""]
    kinded = [("inputs", "law", INPUT_LAWS), ("target", "kind", TARGETS), ("data", "kind", DATA),
              ("init", "kind", INITS), ("dynamics", "kind", DYNAMICS)]
    for table, key, registry in kinded:
        lines += [f"## `[{table}]`", "", f"`{key}` names one of: {', '.join(f'`{n}`' for n in registry.names())}.",
                  "", f"| {key} | what it is | its keys |", "| --- | --- | --- |"]
        for name in registry.names():
            keys = {k: v for k, v in config.schema(table, name).items() if k != key}
            lines.append(f"| `{name}` | {_entry_summary(registry[name])} | {_keys_cell(keys)} |")
        lines.append("")
    lines += ["## `[problem]`", "", "The keyword arguments of `mf.Problem` (a population problem) or, with `[data]`, "
              "of `mf.EmpiricalProblem`:", "", "| key | value |", "| --- | --- |"]
    lines += [f"| `{key}` | {what} |" for key, what in config.schema("problem").items()]
    lines += ["", "`activation`, `loss` and `penalty` take a name, or a table `{kind = NAME, option = value}` of the "
              "entry's options:", "", "| key | name | what it is | its options |", "| --- | --- | --- | --- |"]
    for key, registry in (("activation", UNITS), ("loss", LOSSES), ("penalty", PENALTIES)):
        for name in registry.names():
            options = config.entry_options(registry, name)
            lines.append(f"| `{key}` | `{name}` | {_entry_summary(registry[name])} | {_keys_cell(options)} |")
    for kind in ("flow", "sgd", "mlp"):
        table = "mlp" if kind == "mlp" else "run"
        keys = config.schema("mlp") if kind == "mlp" else config.schema("run", kind)
        lines += ["", f"## `[{table}]`" + (f" of kind `{kind}`" if kind != "mlp" else " (with `[run] kind = \"mlp\"`)"),
                  "", "| key | value |", "| --- | --- |"]
        lines += [f"| `{key}` | {what} |" for key, what in keys.items()]
    lines += ["", "## `[sweep]` and `[cluster]`", "",
              "`[sweep]` holds `output_dir`, a `[sweep.grid]` of dotted keys of any table (`\"dynamics.alpha\" = [0.5, "
              "2.0]`) and optionally `[sweep.zip]`, keys varied together (`meanfield.sweep`). `[cluster]` runs the "
              "sweep on a batch system through dask-jobqueue: `jobqueue` is one of "
              + ", ".join(f"`{name}`" for name in jobqueue_kinds()) + ", `jobs` the number of jobs to submit, and "
              "the other keys are the arguments of that dask-jobqueue cluster (`cores`, `memory`, `walltime`, "
              "`queue`, `account`, ...).", ""]
    return "\n".join(lines)


def write_configuration(path: Path = CONFIGURATION) -> None:
    """Write :func:`configuration_page` to ``path`` when it differs."""
    text = configuration_page()
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
