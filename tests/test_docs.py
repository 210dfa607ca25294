"""The documentation: every public name has a docstring with an example, and the site builds without a warning.

Public names are the ``__all__`` of every public module (docs/apigen.py, which also writes the API reference).
The examples themselves run as doctests (``--doctest-modules`` in pyproject.toml); the site build runs the gallery.
"""

import inspect
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))

import apigen  # noqa: E402

OBJECTS = apigen.public_objects()


def test_public_names_are_found():
    # the enumeration itself must see the package: the top-level API and some deep names
    assert {"meanfield.problem.Problem", "meanfield.flow.simulate", "meanfield.io.load",
            "meanfield.weights.analysis.matrix_models.SquareMatrixModel"} <= set(OBJECTS)
    assert len(OBJECTS) > 100


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_public_name_has_docstring_with_example(name):
    doc = OBJECTS[name].__doc__ or ""
    assert doc.strip(), f"{name} has no docstring"
    assert re.search(r"^\s*Examples\n\s*-{8}\n(.|\n)*>>> ", doc, re.MULTILINE), \
        f"{name}: its docstring has no 'Examples' section with a '>>>' line"


def test_every_module_declares_its_public_names():
    import importlib

    missing = [m for m in apigen.public_modules() if not hasattr(importlib.import_module(m), "__all__")]
    assert not missing, f"modules without __all__: {missing}"


def test_reference_page_is_up_to_date():
    """docs/guide/reference.md is what docs/apigen.py writes from the package (the site build rewrites it)."""
    assert apigen.REFERENCE.read_text() == apigen.reference_page(), \
        "docs/guide/reference.md is stale: run `python -c 'import apigen; apigen.write_reference()'` in docs/"


def test_reference_page_names_every_public_name():
    """Every name of every public module's __all__ is on the page, in its module's section (read independently of
    the generator: split the committed page at its headings)."""
    import importlib

    sections = dict(re.findall(r"^## `([\w.]+)`\n(.*?)(?=^## |\Z)", apigen.REFERENCE.read_text(), re.S | re.M))
    missing = []
    for module_name in apigen.public_modules():
        module = importlib.import_module(module_name)
        text = sections.get(module_name, "")
        prefix = "mf." if module_name == "meanfield" else ""
        for name in module.__all__:
            if not inspect.ismodule(getattr(module, name)) and not re.search(
                    rf"(^\| `{re.escape(prefix + name)}[(`]|`{re.escape(name)}`)", text, re.M):
                missing.append(f"{module_name}.{name}")
    assert not missing, f"names missing from docs/guide/reference.md: {missing}"


class _ProseText(HTMLParser):
    """The text of a page outside maths (MathJax's ``math`` elements), code, scripts and styles, with its line."""

    SKIP = {"code", "pre", "script", "style", "kbd", "samp"}
    VOID = {"br", "img", "hr", "meta", "link", "input", "wbr", "col", "area", "base", "source"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.chunks = [], []     # stack: (tag, skipped) of the open elements

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            skip = tag in self.SKIP or "math" in (dict(attrs).get("class") or "").split()
            self.stack.append((tag, skip))

    def handle_endtag(self, tag):
        if any(open_tag == tag for open_tag, _ in self.stack):   # close it and any element left open inside it
            while self.stack.pop()[0] != tag:
                pass

    @property
    def skipping(self) -> bool:
        return any(skip for _, skip in self.stack)

    def handle_data(self, data):
        if not self.skipping:
            self.chunks.append((self.getpos()[0], data))


def tex_outside_maths(site: Path) -> list[str]:
    """``page:line: text`` for every ``^{`` or ``_{`` that a built page shows as plain text (TeX not rendered)."""
    found = []
    for page in sorted(site.rglob("*.html")):
        if page.relative_to(site).parts[0] in ("_modules", "_sources", "_static"):
            continue   # highlighted source code, not prose
        parser = _ProseText()
        parser.feed(page.read_text())
        for line, text in parser.chunks:
            for hit in re.finditer(r"[\^_]\{", text):
                context = text[max(0, hit.start() - 30):hit.end() + 30].replace("\n", " ")
                found.append(f"{page.relative_to(site)}:{line}: {context}")
    return found


def test_the_tex_scan_sees_plain_tex_and_not_maths(tmp_path):
    (tmp_path / "page.html").write_text(
        '<p>rate n^{−1/2} here</p><p>fine <span class="math notranslate nohighlight">\\(S^{d-1}\\)</span></p>'
        '<div class="math">\\[x_{i}\\]</div><pre>a_{b}</pre><p><code>c^{d}</code> and δ_{(a, b)}<br>end</p>')
    hits = tex_outside_maths(tmp_path)
    assert len(hits) == 2 and "n^{−1/2}" in hits[0] and "δ_{(a, b)}" in hits[1], hits


def test_plain_tex_of_docstrings_becomes_maths_and_nothing_else_does():
    lines = ["ℓ = log(1 + e^{−y f}) for μ = Σ_j w_j δ_{(a_j, b_j)}; on S^{d−1}.", "a ``x_{i}`` literal, |b| a norm",
             "", ".. math::", "", "    F^{(k)} = |x|", "", ">>> f(x_{1})", "after R^{d×d_H}"]
    apigen.docstring_tex_as_maths(lines)
    assert lines[0] == "ℓ = log(1 + :math:`e^{−y f}`) for μ = Σ_j w_j :math:`δ_{(a_j, b_j)}`; on :math:`S^{d−1}`."
    assert lines[1:8] == ["a ``x_{i}`` literal, |b| a norm", "", ".. math::", "", "    F^{(k)} = |x|", "",
                          ">>> f(x_{1})"]
    assert lines[8] == "after :math:`R^{d×d_H}`"


@pytest.mark.slow
def test_site_builds_without_warnings(tmp_path):
    """``sphinx-build -W``: the guide, the gallery (every example runs) and the API reference."""
    out = tmp_path / "html"
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                             "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(out)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-5000:]
    for page in ["index.html", "getting-started.html", "api/index.html", "auto_examples/index.html",
                 "api/meanfield.problem.html"]:
        assert (out / page).exists(), page
    assert "Problem" in (out / "api/meanfield.problem.html").read_text()
    # The animation example embeds its animation: the 16 frames of 31 snapshots at stride 2, with the player.
    page = (out / "auto_examples/plot_animated_flow.html").read_text()
    assert "sphx-glr-animation" in page and page.count("data:image/png;base64") == 16
    plain_tex = tex_outside_maths(out)
    assert not plain_tex, "TeX shown as plain text (write it as $...$ in Markdown, :math:`...` in docstrings):\n" + \
        "\n".join(plain_tex)
