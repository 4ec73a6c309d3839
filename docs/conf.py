"""Sphinx configuration for the iommugroups documentation.

Build: ``python -m sphinx -W -n --keep-going -b html docs docs/_build/html``;
doctests: ``python -m sphinx -b doctest docs docs/_build/doctest``.
No network is used: intersphinx is off.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

# Device names in the pages come from the bundled pci.ids subset, whatever
# database the machine building the docs has.
os.environ.setdefault("IOMMUGROUPS_PCI_IDS", "bundled")

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
    "orders_table",
    "version_table",
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
# type hints show ``Topology``, not the module it is defined in
python_use_unqualified_type_names = True

# -- doctest ---------------------------------------------------------------------
doctest_test_doctest_blocks = ""  # only explicit ``doctest``/``testcode`` blocks

# -- nitpicky references ------------------------------------------------------------
nitpicky = True
# intersphinx is off (no network), so standard-library and Hypothesis names in
# signatures and type descriptions cannot be resolved.
nitpick_ignore = [
    ("py:class", "collections.abc.Callable"),
    ("py:class", "collections.abc.Collection"),
    ("py:class", "collections.abc.Iterable"),
    ("py:class", "collections.abc.Iterator"),
    ("py:class", "collections.abc.Mapping"),
    ("py:class", "collections.abc.Sequence"),
    ("py:class", "os.PathLike"),
    ("py:class", "hypothesis.strategies.SearchStrategy"),
]
# Private classes that public signatures and attributes name in their type
# hints (``_public_alias`` below redirects the private names that have a public
# one). They are not part of the API: each docstring that hands one out says
# in words what it holds, and the docs never link to them.
nitpick_ignore += [
    # the quirk context: made by make_context, passed to the rules, opaque
    # (unqualified as GroupingEnv's ``__init__`` hint, which autodoc leaves a string)
    ("py:class", "iommugroups._kernel.quirks.QuirkContext"),
    ("py:class", "QuirkContext"),
    # GroupingEnv.acs_path / Step.path: the named tuple (isolated, blocker, certain)
    ("py:class", "iommugroups._kernel.acs.AcsPath"),
    # Decision.owner: the run's lazily traced record behind Grouping.decisions
    ("py:class", "iommugroups._kernel.groups.Decisions"),
    # SimulationResult.events: kernel messages and action markers besides LogLines
    ("py:class", "iommugroups._boot.simulator.Marker"),
    ("py:class", "iommugroups._boot.simulator.Message"),
    # SimDevice.fwspec: the simulator's per-device firmware spec (R3.8)
    ("py:class", "iommugroups._kernel.model.FwSpec"),
    # ScenarioFile.capture: an arm64 capture's log and groups
    ("py:class", "iommugroups._io.arm64_capture.Capture"),
    # CheckReport.replay: the scenario replaying a kernel log
    ("py:class", "iommugroups._analysis.reproduce.Replay"),
    # GroupView.clauses and Member.join: parts of a group's reason, a member's join
    ("py:class", "iommugroups._analysis.show.Clause"),
    ("py:class", "iommugroups._analysis.show.Join"),
    # Reason.facts: an immutable str -> str mapping
    ("py:class", "iommugroups._analysis.reasons.Facts"),
    # what-if internals: a change applied to a topology, a card's slot
    ("py:class", "iommugroups._analysis.changes.Applied"),
    ("py:class", "iommugroups._analysis.changes.Slot"),
    # Topology.missing_bridges: a bus shown without its bridge (domain, bus,
    # certain, why, devices), described in the method's docstring
    ("py:class", "iommugroups._kernel.model.MissingBridge"),
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
    the reference documents it where users import it from. A name is redirected
    only when ``iommugroups`` exports *that object* in ``__all__``; a private
    name with no public one stays unresolved (and must be in ``nitpick_ignore``).
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
        name = parts[i]
        if name not in iommugroups.__all__:
            continue
        module = sys.modules.get(".".join(parts[:i]))
        if module is None or getattr(module, name, None) is not getattr(iommugroups, name):
            continue
        public = ".".join(["iommugroups", *parts[i:]])
        domain: Any = env.get_domain("py")
        return domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], public, node, contnode
        )
    return None


def _drop_private_aliases(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Forget the private paths autodoc registers as aliases of public objects.

    autodoc documents ``iommugroups.PciFunction`` with ``:canonical:
    iommugroups._kernel.model.PciFunction``, which makes the private path a
    target of its own: type hints would link through it, showing it as the
    link's title, and the inventory would list it. Without the alias a type
    hint's private path is a missing reference, which ``_public_alias``
    resolves to the public name.
    """
    objects: dict[str, Any] = env.get_domain("py").objects  # type: ignore[attr-defined]
    for name in [n for n, entry in objects.items() if entry.aliased and "._" in n]:
        del objects[name]
    return []


_PRIVATE_PATH = re.compile(r"\biommugroups\._[\w.]*\.(\w+)\b")


def _short_private_names(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Show the private classes of ``nitpick_ignore`` by their name alone.

    A type hint naming a class that is not public stays unlinked, and would
    show its private path (``iommugroups._analysis.show.Clause``): show
    ``Clause``. Only the API's object descriptions are touched, not their
    code blocks (doctests that import internals) nor any page's own text.
    """
    for text in list(doctree.findall(nodes.Text)):
        if not _PRIVATE_PATH.search(text) or text.parent is None:
            continue
        above = _ancestors(text)
        if not any(isinstance(a, addnodes.desc) for a in above):
            continue
        if any(isinstance(a, nodes.FixedTextElement) for a in above):
            continue
        text.parent.replace(text, nodes.Text(_PRIVATE_PATH.sub(r"\1", text)))


def _ancestors(node: nodes.Node) -> list[nodes.Node]:
    out = []
    while node.parent is not None:
        node = node.parent
        out.append(node)
    return out


def setup(app: Sphinx) -> None:
    app.connect("missing-reference", _public_alias)
    app.connect("env-updated", _drop_private_aliases)
    app.connect("doctree-resolved", _short_private_names)
