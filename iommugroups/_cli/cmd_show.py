"""``iommugroups show``: the groups, described, filtered, as a tree or a picture."""

from __future__ import annotations

import argparse
import os
import sys

from .._analysis.filters import ShowFilterError, by_address, by_class, by_group, by_related
from .._analysis.show import show
from .._kernel.pci_ids import PciIdsDatabase
from .._render.show import render_show, render_tree, use_color
from .._render.text import to_json_text
from .common import (
    EXIT_OK,
    HelpFormatter,
    UsageError,
    add_format,
    add_notes_options,
    add_source,
    default_reading,
    emit_graph,
    names_database,
    output_format,
    report_notes,
    topology_of,
)

__all__ = ["add", "run"]

_SHOW_EPILOG = """\
examples:
  iommugroups show                              # this machine
  iommugroups show --example desktop --class gpu
  iommugroups show snapshot.json --related 01:00.0
  iommugroups show --example d05 --tree
  iommugroups show --example desktop --format dot | dot -Tpng > groups.png
  iommugroups show --example desktop --format svg > groups.svg   # needs Graphviz

colour only on a terminal; NO_COLOR=1 turns it off.
"""


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``show`` command."""
    sh = sub.add_parser(
        "show",
        help="the groups, described: members, drivers, why each group has its shape",
        description="Show the IOMMU groups Linux makes (and, when the source has them, the "
        "kernel's own), each member with address, class, ids and driver, and a one-line "
        "reason for the group's shape. Without FILE, --example or --sysfs it reads this "
        "machine (/sys).",
        epilog=_SHOW_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_source(sh, required=False)
    sh.add_argument(
        "--class",
        dest="classes",
        action="append",
        metavar="KIND",
        help="only groups with a device of this kind: gpu, usb, net, nvme, audio, storage, "
        "bridge, or a class code in hex (repeatable)",
    )
    sh.add_argument(
        "--group", dest="group_ids", action="append", type=int, metavar="N", help="only group N"
    )
    sh.add_argument(
        "--device",
        dest="devices",
        action="append",
        metavar="ADDR",
        help="only groups with a device whose address starts with ADDR (e.g. 01:00)",
    )
    sh.add_argument(
        "--related", metavar="DEVICE", help="what must go to a VM together with DEVICE"
    )
    sh.add_argument("--tree", action="store_true", help="the bus tree, like `lspci -tv`")
    add_format(sh, dot=True)
    add_notes_options(sh)

    sh.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with names_database(args) as db:
        return _run(args, db)


def _run(args: argparse.Namespace, db: PciIdsDatabase) -> int:
    reading = default_reading(args)
    topo = topology_of(reading)
    report_notes(reading, args, db)
    result = show(topo, observed=reading.observed)
    try:
        if args.classes:
            result = by_class(result, *args.classes)
        if args.group_ids:
            result = by_group(result, *args.group_ids)
        if args.devices:
            result = by_address(result, *args.devices)
        if args.related:
            result = by_related(result, args.related)
    except ShowFilterError as exc:
        raise UsageError(str(exc)) from None
    fmt = output_format(args)
    filtered = bool(args.classes or args.group_ids or args.devices or args.related)
    if filtered and (args.tree or fmt in ("dot", "svg")):
        print(
            "iommugroups: note: the tree and the dot/svg pictures show the whole machine; "
            "--class, --group, --device and --related filter the listing and the JSON",
            file=sys.stderr,
        )
    if fmt == "json":
        sys.stdout.write(to_json_text(result.to_json()))
    elif fmt in ("dot", "svg"):
        emit_graph(args, result.topology, result.grouping, topo.name)
    elif args.tree:
        sys.stdout.write(
            render_tree(result.topology, result.grouping, color=use_color(sys.stdout, os.environ))
        )
    else:
        sys.stdout.write(render_show(result, color=use_color(sys.stdout, os.environ)))
    return EXIT_OK
