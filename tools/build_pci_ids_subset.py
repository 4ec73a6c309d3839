"""Build ``iommugroups/_data/pci_ids_subset.json``, the bundled part of ``pci.ids``.

Usage (Debian: ``apt-get install pci.ids``)::

    python tools/build_pci_ids_subset.py /usr/share/misc/pci.ids
    python tools/build_pci_ids_subset.py NEW/pci.ids --source "pci.ids 0.0~2024.01.01-1 (Debian)"

The subset holds every vendor and every subclass name, and, by the name
``lspci`` prints (``"Vendor Device"``), the ids of every device that the
texts under ``tests/data`` name or the kernel's grouping quirk tables list,
plus every other device printed under the same name (so that an ambiguous
name stays ambiguous). :mod:`iommugroups._kernel.pci_ids` reads it;
``tests/test_lspci_text.py`` rebuilds it and compares.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # build from this checkout, installed or not
    sys.path.insert(0, str(ROOT))

from iommugroups._io.lspci_common import shown_names  # noqa: E402
from iommugroups._kernel.pci_ids import parse_pci_ids, quirk_named_ids  # noqa: E402

__all__ = ["DEFAULT_OUTPUT", "DEFAULT_TEXTS", "build_pci_ids_subset", "default_source", "main"]

#: The file the package reads.
DEFAULT_OUTPUT = ROOT / "iommugroups" / "_data" / "pci_ids_subset.json"
#: The directory whose ``*.txt`` files (``lspci`` texts and trees) must resolve.
DEFAULT_TEXTS = ROOT / "tests" / "data"


def build_pci_ids_subset(
    pci_ids: str, texts: Iterable[str], *, source: str = "pci.ids"
) -> dict[str, Any]:
    """The data of ``iommugroups/_data/pci_ids_subset.json``.

    Args:
        pci_ids: a complete ``pci.ids`` file.
        texts: ``lspci`` texts and trees whose device names must resolve.
        source: the database's name and version, recorded in the result.

    Returns:
        ``{"source", "vendors", "subclasses", "devices"}``: every vendor
        (id -> name) and every subclass (``"0604"`` -> name), and, by the
        name ``lspci`` prints (``"Vendor Device"``), the ids of every device
        that the texts name or the kernel's quirk tables list, plus every
        other device printed under the same name.
    """
    vendors, devices, _classes, subclasses = parse_pci_ids(pci_ids)
    by_shown: dict[str, list[tuple[int, int]]] = {}
    for (v, d), name in devices.items():
        if v in vendors:
            by_shown.setdefault(f"{vendors[v]} {name}", []).append((v, d))
    wanted: set[str] = set()
    for v, d in quirk_named_ids():
        if (v, d) in devices and v in vendors:
            wanted.add(f"{vendors[v]} {devices[(v, d)]}")
    for text in texts:
        for shown in shown_names(text):
            if shown in by_shown:
                wanted.add(shown)
    return {
        "source": source,
        "vendors": {f"{v:04x}": n for v, n in sorted(vendors.items())},
        "subclasses": {f"{c:04x}": n for c, n in sorted(subclasses.items())},
        "devices": {
            shown: sorted(f"{v:04x}:{d:04x}" for v, d in by_shown[shown])
            for shown in sorted(wanted)
        },
    }


def default_source(pci_ids: str, previous: str | None) -> str:
    """The ``source`` to record when ``--source`` is not given.

    The one the subset being replaced records (``previous``), so that
    rebuilding from the same database gives the same file; for a first
    subset, ``"pci.ids VERSION"`` from the file's ``# Version:`` line.
    (Distributions label their package differently from that line: Debian's
    ``0.0~2023.04.11-1`` holds ``Version: 2023.04.10``. Give ``--source``
    when the database changes.)
    """
    if previous is not None:
        return previous
    m = re.search(r"^#\s*Version:\s*(\S+)", pci_ids, re.MULTILINE)
    return f"pci.ids {m[1]}" if m else "pci.ids"


def main(argv: Sequence[str] | None = None) -> int:
    """Build the subset from the ``pci.ids`` named on the command line and write it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("pci_ids", type=Path, help="a complete pci.ids file")
    parser.add_argument(
        "--source",
        help="the database's name and version to record, e.g. 'pci.ids 0.0~2023.04.11-1 "
        "(Debian)' (default: the one the subset being replaced records)",
    )
    parser.add_argument(
        "--texts",
        type=Path,
        default=DEFAULT_TEXTS,
        help="directory whose *.txt files must resolve (default: %(default)s)",
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="where to write (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    pci_ids = args.pci_ids.read_text(errors="replace")
    source = args.source
    if source is None:
        previous = None
        if args.output.is_file():
            previous = str(json.loads(args.output.read_text(encoding="utf-8"))["source"])
        source = default_source(pci_ids, previous)
    texts = [p.read_text(errors="replace") for p in sorted(args.texts.rglob("*.txt"))]
    data = build_pci_ids_subset(pci_ids, texts, source=source)
    args.output.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{args.output}: {len(data['devices'])} device names from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
