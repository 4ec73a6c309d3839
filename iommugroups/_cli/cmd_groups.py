"""``iommugroups groups``: the IOMMU groups Linux makes for a topology."""

from __future__ import annotations

import argparse
import sys

from .._kernel.canonical import canonical_groups
from .._render.text import listing, to_json_text
from .common import (
    EXIT_OK,
    HelpFormatter,
    add_format,
    add_source,
    output_format,
    print_notes,
    reading_of,
    topology_of,
)

__all__ = ["add", "run"]

_GROUPS_EPILOG = """\
examples:
  iommugroups groups --example desktop
  iommugroups groups machine.lspci          # an `lspci -xxxx` dump
  sudo lspci -vvv | iommugroups groups -    # `lspci -vvv` text from stdin
  iommugroups groups --sysfs /              # this machine
  iommugroups groups snapshot.json --json
"""


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``groups`` command."""
    g = sub.add_parser(
        "groups",
        help="print the IOMMU groups Linux makes for a topology",
        description="Print the IOMMU groups Linux (v6.15+, x86 always) makes for a topology: "
        "devices grouped in device-add order, parents first (the canonical strategy).",
        epilog=_GROUPS_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_source(g)
    add_format(g, dot=False)

    g.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    reading = reading_of(args)
    topo = topology_of(reading)
    print_notes(reading.unknowns)
    grouping = canonical_groups(topo)
    if output_format(args) == "json":
        data = grouping.to_json()
        sys.stdout.write(to_json_text(data))
    else:
        sys.stdout.write(listing(grouping, topo))
        for dev, why in sorted(grouping.ungrouped.items()):
            print(f"iommugroups: note: {dev} has no IOMMU group: {why}", file=sys.stderr)
    return EXIT_OK
