"""Sphinx configuration of the meanfield documentation site (``make docs``; output in docs/_build/html)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))

import apigen  # noqa: E402  (docs/apigen.py: one reference page per public module, from its __all__)

import meanfield  # noqa: E402

project = "meanfield"
author = "the meanfield developers"
copyright = "2026, the meanfield developers"
release = meanfield.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "auto_examples/*.json"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

autodoc_default_options = {"members": True, "member-order": "bysource", "undoc-members": False}
autodoc_typehints = "none"          # the numpydoc Parameters sections carry the types
autodoc_inherit_docstrings = True
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_class_members_toctree = False

# MathJax: a local copy when `make docs` could fetch one (npm), so that the site renders offline; else the CDN.
if (DOCS / "_static" / "mathjax" / "tex-svg.js").exists():
    mathjax_path = "mathjax/tex-svg.js"

html_theme = "pydata_sphinx_theme"
html_static_path = ["_static"]
html_css_files = ["meanfield.css"]
html_title = "meanfield"
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {page: [] for page in ("index", "getting-started", "mathematics", "file-format")}
html_show_sourcelink = False

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "gallery_order.ReaderOrder",   # docs/gallery_order.py
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": (True, "jshtml"),   # animations in an example embedded as frames with controls
    "show_memory": False,
    "reset_modules": ("matplotlib",),
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
}
if os.environ.get("MEANFIELD_DOCS_NO_GALLERY"):
    sphinx_gallery_conf["plot_gallery"] = "False"

apigen.write_pages(DOCS / "api")
apigen.write_reference()          # docs/guide/reference.md, one line per public name
apigen.write_configuration()      # docs/guide/configuration.md, every key of every configuration table


_CODE = re.compile(r"(``.*?``|`[^`]*`)")


def _escape_bars(app, what, name, obj, options, lines):
    r"""Our docstrings write norms as |b| (plain text for ``help()``); in running text outside code and maths, a bar is
    not an RST substitution. In ``.. math::`` blocks and ``:math:`` roles it stays a bar (``\|`` would be ‖)."""
    for i in apigen.prose_lines(lines):
        line = lines[i]
        parts = _CODE.split(line)
        lines[i] = "".join(part if j % 2 else part.replace("|", r"\|") for j, part in enumerate(parts))


def _tex_as_maths(app, what, name, obj, options, lines):
    """Our docstrings write formulas in plain text for ``help()``; TeX fragments in them (``e^{−y f}``) are maths."""
    apigen.docstring_tex_as_maths(lines)


def setup(app):
    app.connect("autodoc-process-docstring", _tex_as_maths, priority=300)
    app.connect("autodoc-process-docstring", _escape_bars, priority=400)
