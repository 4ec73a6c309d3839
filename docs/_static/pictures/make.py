"""Regenerate the pictures of the documentation: ``python docs/_static/pictures/make.py``.

For every entry of :data:`PICTURES`, runs ``iommugroups <args> --format dot``
(in-process, with the code of this checkout) and writes ``NAME.dot`` here,
then Graphviz's ``dot -Tsvg`` turns it into ``NAME.svg``. The SVG ends with a
comment holding the SHA-256 of the DOT text it was drawn from.

The documentation build only shows the committed SVGs, so it never needs
Graphviz; ``tests/test_pictures.py`` regenerates the DOT text and fails when
it differs from ``NAME.dot`` (or when ``NAME.svg`` was not redrawn from it):
run this script (Graphviz installed) and commit the three files.

``--check`` writes nothing: it exits 1 and names the pictures that are out
of date.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DATA = ROOT / "tests" / "data" / "oracle"

#: Picture name -> the ``iommugroups`` arguments that draw it (``--format dot`` added).
PICTURES: dict[str, list[str]] = {
    "d05": ["show", "--example", "d05"],
    "desktop": ["show", "--example", "desktop"],
    "desktop-acs-override": [
        "what-if",
        "--example",
        "desktop",
        "--acs-override",
        "downstream,multifunction",
    ],
    "switch": ["show", str(DATA / "designed" / "switch.json")],
    "conventional-bridges": ["show", str(DATA / "designed" / "conventional-bridges.json")],
    "q35-1104": ["show", str(DATA / "captures" / "q35-1104.json")],
}

_STAMP = "<!-- iommugroups picture: dot sha256 {} -->\n"


def dot_text(name: str) -> str:
    """The DOT text of picture ``name``, as the current code draws it."""
    from iommugroups._cli.app import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([*PICTURES[name], "--format", "dot"])
    if status != 0:
        raise RuntimeError(f"{name}: iommugroups exited {status}: {err.getvalue()}")
    return out.getvalue()


def stamp(dot: str) -> str:
    """The comment that ends an SVG drawn from ``dot``."""
    return _STAMP.format(hashlib.sha256(dot.encode()).hexdigest())


def out_of_date(name: str) -> list[str]:
    """What is stale about picture ``name`` (empty: nothing)."""
    dot_file, svg_file = HERE / f"{name}.dot", HERE / f"{name}.svg"
    problems = []
    if not dot_file.exists() or dot_file.read_text() != dot_text(name):
        problems.append(f"{dot_file.name} differs from what the code draws now")
    elif not svg_file.exists() or not svg_file.read_text().endswith(stamp(dot_file.read_text())):
        problems.append(f"{svg_file.name} was not drawn from {dot_file.name}")
    return problems


def make(name: str) -> None:
    """Write ``NAME.dot`` and draw ``NAME.svg`` from it."""
    dot = dot_text(name)
    (HERE / f"{name}.dot").write_text(dot)
    svg = subprocess.run(
        ["dot", "-Tsvg"], input=dot.encode(), capture_output=True, check=True
    ).stdout.decode()
    (HERE / f"{name}.svg").write_text(svg + stamp(dot))


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        stale = [f"{n}: {p}" for n in PICTURES for p in out_of_date(n)]
        print("\n".join(stale) or "all pictures are up to date")
        return 1 if stale else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    for name in PICTURES:
        make(name)
        print(f"wrote {name}.dot and {name}.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
