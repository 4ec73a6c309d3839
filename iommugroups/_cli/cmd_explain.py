"""``iommugroups explain``: why a device is in its group, or why two are (not) together."""

from __future__ import annotations

import argparse
import sys

from .._analysis.explain import explain, explain_pair
from .._kernel.pci_ids import PciIdsDatabase
from .._render.explain import render_explanation, render_pair
from .._render.text import to_json_text
from .common import (
    EXIT_OK,
    HelpFormatter,
    UsageError,
    add_format,
    add_input,
    add_notes_options,
    default_reading,
    names_database,
    output_format,
    report_notes,
    topology_of,
)

__all__ = ["add", "run"]

_EXPLAIN_EPILOG = """\
examples:
  iommugroups explain 01:00.0 --example desktop
  iommugroups explain 03:00.0 04:00.0 --example desktop
  iommugroups explain 01:00.1 -i snapshot.json --json
"""


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``explain`` command."""
    ex = sub.add_parser(
        "explain",
        help="why a device is in its group; with two, why they do or do not share one",
        description="Explain, rule by rule, why DEVICE is in its IOMMU group: each rule "
        "applied, with its id and the register bits that decided. With DEVICE2, why the two "
        "share a group or not, and which of them could reach the other by DMA. The source "
        "defaults to this machine (/sys).",
        epilog=_EXPLAIN_EPILOG,
        formatter_class=HelpFormatter,
    )
    ex.add_argument("device", metavar="DEVICE", help="a PCI address (bb:dd.f or dddd:bb:dd.f)")
    ex.add_argument("device2", nargs="?", metavar="DEVICE2", help="a second device")
    add_input(ex)
    add_format(ex, dot=False)
    add_notes_options(ex)

    ex.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with names_database(args) as db:
        return _run(args, db)


def _run(args: argparse.Namespace, db: PciIdsDatabase) -> int:
    reading = default_reading(args)
    topo = topology_of(reading)
    report_notes(reading, args, db)
    if args.device2 is None:
        one = explain(topo, args.device)
        doc, text = one.to_json(), render_explanation(one)
    else:
        try:
            pair = explain_pair(topo, args.device, args.device2)
        except ValueError as exc:  # the same device twice
            raise UsageError(str(exc)) from None
        doc, text = pair.to_json(), render_pair(pair)
    sys.stdout.write(to_json_text(doc) if output_format(args) == "json" else text)
    return EXIT_OK
