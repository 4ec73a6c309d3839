"""``iommugroups show``: the groups, described, filtered, as a tree or a picture."""

from __future__ import annotations

import argparse
import os
import sys

from .._analysis.filters import (
    ShowFilterError,
    by_class,
    by_device,
    by_group,
    by_related,
    resolve_device,
)
from .._analysis.show import show
from .._kernel.pci_ids import PciIdsDatabase
from .._render.show import render_show, render_tree, use_color
from .._render.text import to_json_text
from .common import (
    EXIT_OK,
    HelpFormatter,
    UsageError,
    add_model_options,
    add_source,
    default_reading,
    emit_graph,
    json_with_kernel,
    kernel_note,
    modelled_kernel,
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
  iommugroups show docs/_data/machine-nonroot.json   # the kernel's groups, no root needed
  iommugroups show docs/_data/machine.json --related 01:00.0
  iommugroups show docs/_data/machine.json --predicted --kernel 6.1
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
        description="Show the IOMMU groups, each member with address, class, ids and driver, "
        "and a one-line reason for the group's shape: the kernel's own groups when the source "
        "has them (this machine, a snapshot, a sysfs tree), with the rules' prediction beside "
        "each device; else, and with --predicted, the groups the rules make. Without a "
        "SOURCE, --example or --sysfs it reads this machine (/sys).",
        epilog=_SHOW_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_source(sh)
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
        metavar="DEVICE",
        help="only groups with a device named so: an address prefix (01:00), vendor:device ids "
        "(10de:1b80) or a class (gpu, nvme, ...); repeatable",
    )
    sh.add_argument(
        "--related",
        metavar="DEVICE",
        help="what must go to a VM together with DEVICE (an address, or ids one device has)",
    )
    sh.add_argument("--tree", action="store_true", help="the bus tree, like `lspci -tv`")
    sh.add_argument(
        "--predicted",
        action="store_true",
        help="list the groups the rules predict, even when the source has the kernel's",
    )
    add_model_options(sh, dot=True)

    sh.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with names_database(args) as db:
        return _run(args, db)


def _run(args: argparse.Namespace, db: PciIdsDatabase) -> int:
    reading = default_reading(args)
    topo = topology_of(reading)
    kernel = modelled_kernel(args, reading)
    report_notes(reading, args, db)
    result = show(topo, observed=reading.observed, kernel=kernel)
    try:
        if args.classes:
            result = by_class(result, *args.classes)
        if args.group_ids:
            result = by_group(result, *args.group_ids)
        if args.devices:
            result = by_device(result, *args.devices)
        if args.related:
            result = by_related(result, resolve_device(result, args.related))
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
        sys.stdout.write(to_json_text(json_with_kernel(result.to_json(), kernel)))
    elif fmt in ("dot", "svg"):
        emit_graph(args, result.topology, result.grouping, topo.name)
    elif args.tree:
        sys.stdout.write(
            render_tree(result.topology, result.grouping, color=use_color(sys.stdout, os.environ))
        )
    else:
        sys.stdout.write(
            render_show(
                result,
                color=use_color(sys.stdout, os.environ),
                kernel_first=not args.predicted,
            )
        )
    kernel_note(kernel, args, reading, topo)
    return EXIT_OK
