"""Sphinx configuration for the iommugroups documentation.

Build: ``python -m sphinx -W -n --keep-going -b html docs docs/_build/html``;
doctests: ``python -m sphinx -b doctest docs docs/_build/doctest``.
No network is used: intersphinx is off.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

import iommugroups

project = "iommugroups"
author = "iommugroups developers"
copyright = "2026, iommugroups developers"
release = iommugroups.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    "command_output",
    "json_schema",
    "strategy_table",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext"]

myst_heading_anchors = 3

# -- autodoc / napoleon --------------------------------------------------------
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_class_signature = "mixed"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# -- doctest ---------------------------------------------------------------------
doctest_test_doctest_blocks = ""  # only explicit ``doctest``/``testcode`` blocks

# -- nitpicky references ------------------------------------------------------------
nitpicky = True
# intersphinx is off (no network), so standard-library and Hypothesis names in
# signatures and type descriptions cannot be resolved; nothing else is ignored.
nitpick_ignore = [
    ("py:class", "collections.abc.Callable"),
    ("py:class", "collections.abc.Iterable"),
    ("py:class", "collections.abc.Iterator"),
    ("py:class", "collections.abc.Mapping"),
    ("py:class", "collections.abc.Sequence"),
    ("py:class", "os.PathLike"),
    ("py:class", "hypothesis.strategies.SearchStrategy"),
]

# -- HTML ------------------------------------------------------------------------
html_theme = "furo"
html_title = f"iommugroups {release}"
html_static_path: list[str] = []


def _public_alias(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.TextElement
) -> nodes.reference | None:
    """Resolve ``iommugroups._private.Name`` to the documented ``iommugroups.Name``.

    Type hints name the module a class is defined in (``iommugroups._kernel.model``);
    the reference documents it where users import it from. Only names that
    ``iommugroups`` re-exports in ``__all__`` are redirected.
    """
    if node.get("refdomain") != "py":
        return None
    target: str = node.get("reftarget", "")
    parts = target.split(".")
    if len(parts) < 3 or parts[0] != "iommugroups" or not parts[1].startswith("_"):
        return None
    # iommugroups._kernel.model.PciFunction -> iommugroups.PciFunction;
    # iommugroups._kernel.model.Topology.get -> iommugroups.Topology.get
    for i in range(2, len(parts)):
        if parts[i] in iommugroups.__all__:
            public = ".".join(["iommugroups", *parts[i:]])
            domain: Any = env.get_domain("py")
            return domain.resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], public, node, contnode
            )
    return None


def setup(app: Sphinx) -> None:
    app.connect("missing-reference", _public_alias)
