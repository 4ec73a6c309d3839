"""``iommugroups groups``: the IOMMU groups Linux makes for a topology."""

from __future__ import annotations

import argparse
import sys

from .._analysis.check import untranslated_from_observation
from .._kernel.canonical import canonical_groups
from .._kernel.reading import Unknown
from .._render.text import listing, to_json_text
from .common import (
    EXIT_OK,
    HelpFormatter,
    add_format,
    add_notes_options,
    add_source,
    names_database,
    output_format,
    reading_of,
    report_notes,
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
  iommugroups groups lspci.txt -v           # every note about the input

Device names and ids come from this machine's pci.ids when it has one
(--pci-ids bundled: the subset the package bundles); a note says which.
"""


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``groups`` command."""
    g = sub.add_parser(
        "groups",
        help="print the IOMMU groups Linux makes for a topology",
        description="Print the IOMMU groups Linux (v6.15+, x86 always) makes for a topology: "
        "devices grouped in device-add order, parents first (the canonical strategy), numbered "
        "as the kernel numbers them where the input allows (since v6.1 IOMMU by IOMMU; before "
        "v6.1, or with a kernel log of such a kernel, in device order).",
        epilog=_GROUPS_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_source(g)
    add_format(g, dot=False)
    add_notes_options(g)

    g.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with names_database(args) as db:
        reading = reading_of(args)
        topo = topology_of(reading)
        if reading.observed is not None:  # which devices no IOMMU translates (R11.3, R11.5)
            topo, _none = untranslated_from_observation(topo, reading.observed)
        grouping = canonical_groups(topo, kernel=reading.kernel)
        if output_format(args) == "json":
            data = grouping.to_json()
            sys.stdout.write(to_json_text(data))
        else:
            sys.stdout.write(listing(grouping, topo, names=True))
        ungrouped = [
            Unknown(dev, "assumed", f"has no IOMMU group: {why}")
            for dev, why in sorted(grouping.ungrouped.items())
        ]
        report_notes(reading, args, db, ungrouped)
    return EXIT_OK
