"""The committed pictures of the documentation cannot drift from the code.

``docs/_static/pictures/NAME.svg`` is drawn by Graphviz from ``NAME.dot``,
which is ``iommugroups ... --format dot`` (see ``docs/_static/pictures/make.py``).
The docs build shows the SVGs without needing Graphviz; these tests need it
neither: they regenerate the DOT text with the current code and compare it
with the committed copy, and check that each SVG carries the hash of its DOT.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

PICTURES_DIR = Path(__file__).parents[1] / "docs" / "_static" / "pictures"
REGENERATE = "python docs/_static/pictures/make.py (needs Graphviz), then commit the files"


def _make() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pictures_make", PICTURES_DIR / "make.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE = _make()
NAMES = sorted(MAKE.PICTURES)


def test_there_are_pictures() -> None:
    assert len(NAMES) >= 3
    assert "d05" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_dot_is_what_the_code_draws(name: str) -> None:
    committed = (PICTURES_DIR / f"{name}.dot").read_text()
    now = MAKE.dot_text(name)
    assert now == committed, f"{name}.dot is out of date: run {REGENERATE}"


@pytest.mark.parametrize("name", NAMES)
def test_svg_was_drawn_from_the_dot(name: str) -> None:
    dot = (PICTURES_DIR / f"{name}.dot").read_text()
    svg = (PICTURES_DIR / f"{name}.svg").read_text()
    assert svg.startswith("<?xml")
    assert "<svg" in svg
    assert svg.endswith(MAKE.stamp(dot)), (
        f"{name}.svg was not drawn from {name}.dot: run {REGENERATE}"
    )
    # every node of the DOT is drawn (Graphviz titles each node's group with its name)
    nodes = re.findall(r'^\s*"([^"]+)" \[label=', dot, re.M)
    assert nodes
    for node in nodes:
        assert f"<title>{node}</title>" in svg, node


def test_no_stray_pictures() -> None:
    files = {p.name for p in PICTURES_DIR.iterdir()} - {"make.py", "__pycache__"}
    assert files == {f"{n}.{ext}" for n in NAMES for ext in ("dot", "svg")}


def test_every_picture_is_shown_in_the_docs() -> None:
    docs = PICTURES_DIR.parents[1]
    text = "\n".join(p.read_text() for p in docs.glob("*.md"))
    for name in NAMES:
        assert f"_static/pictures/{name}.svg" in text, name
