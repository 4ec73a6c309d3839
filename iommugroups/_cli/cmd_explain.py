"""``iommugroups explain``: why a device is in its group, or why two are (not) together."""

from __future__ import annotations

import argparse
import sys

from .._analysis.explain import explain, explain_pair
from .._kernel.pci_ids import PciIdsDatabase
from .._render.explain import (
    kernel_groups_of,
    render_explanation,
    render_kernel_groups,
    render_pair,
)
from .._render.text import to_json_text
from .common import (
    EXIT_OK,
    HelpFormatter,
    UsageError,
    add_model_options,
    add_source_then,
    default_reading,
    json_with_kernel,
    kernel_note,
    modelled_kernel,
    names_database,
    output_format,
    report_notes,
    take_source,
    topology_of,
)

__all__ = ["add", "run"]

_EXPLAIN_EPILOG = """\
examples:
  iommugroups explain --example desktop 01:00.0
  iommugroups explain --example desktop 03:00.0 04:00.0
  iommugroups explain docs/_data/machine.json 01:00.0 --json
  iommugroups explain 01:00.0                   # this machine

The source comes first when it is a file (or - for stdin); -i FILE is the old,
deprecated spelling. When the source carries the kernel's groups, the
explanation also names the group the kernel put the device in.
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
    add_source_then(
        ex,
        "DEVICE [DEVICE2]",
        "a PCI address (bb:dd.f or dddd:bb:dd.f) or a platform device's name, and "
        "optionally a second one",
    )
    add_model_options(ex)

    ex.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with names_database(args) as db:
        return _run(args, db)


def _run(args: argparse.Namespace, db: PciIdsDatabase) -> int:
    devices = take_source(args, args.words)
    if not devices or len(devices) > 2:
        raise UsageError(
            f"give one device, or two to compare (got {len(devices)}: {' '.join(devices)})"
            + ("; a source that is not a file is not read" if len(devices) > 2 else "")
        )
    reading = default_reading(args)
    topo = topology_of(reading)
    kernel = modelled_kernel(args, reading)
    report_notes(reading, args, db)
    if len(devices) == 1:
        one = explain(topo, devices[0], kernel=kernel)
        doc, text = one.to_json(), render_explanation(one)
        names = [one.device]
    else:
        try:
            pair = explain_pair(topo, devices[0], devices[1], kernel=kernel)
        except ValueError as exc:  # the same device twice
            raise UsageError(str(exc)) from None
        doc, text = pair.to_json(), render_pair(pair)
        names = [pair.a, pair.b]
    if reading.observed is not None:
        kernel_groups = kernel_groups_of(reading.observed, names)
        doc["kernel_groups"] = kernel_groups
        text = render_kernel_groups(kernel_groups) + text
    doc = json_with_kernel(doc, kernel)
    sys.stdout.write(to_json_text(doc) if output_format(args) == "json" else text)
    kernel_note(kernel, args, reading, topo)
    return EXIT_OK
