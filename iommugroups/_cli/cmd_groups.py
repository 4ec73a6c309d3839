"""``iommugroups groups``: the kernel's IOMMU groups when the source has them, else the rules'."""

from __future__ import annotations

import argparse
import sys

from .._analysis.check import check, untranslated_from_observation
from .._kernel.canonical import canonical_groups
from .._kernel.reading import Unknown
from .._render.check import verdict_marks
from .._render.groups import groups_json
from .._render.text import listing, to_json_text
from .common import (
    EXIT_OK,
    HelpFormatter,
    UsageError,
    add_model_options,
    add_source,
    default_reading,
    json_with_kernel,
    kernel_note,
    modelled_kernel,
    names_database,
    output_format,
    report_notes,
    topology_of,
)

__all__ = ["add", "run"]

_GROUPS_EPILOG = """\
examples:
  iommugroups groups                        # this machine: the kernel's groups (no root needed)
  iommugroups groups --predicted            # this machine: the groups the rules predict
  iommugroups groups --example desktop
  iommugroups groups docs/_data/machine-nonroot.json --json
  iommugroups groups tests/data/realdata/p07-xeon-e3-pex8748-switch/lspci.txt
  iommugroups groups docs/_data/machine.json --kernel 6.1

With a source that carries the kernel's groups (this machine, a sysfs tree, a
snapshot, `lspci -vv` with IOMMU group lines, a capture), the kernel's groups
are printed, each device as `lspci -nns` shows it with its driver, and "<-"
marks a device where the rules' prediction differs (check's verdict: split,
merged or unknown). --predicted prints the prediction instead.

Device names and ids come from this machine's pci.ids when it has one
(--pci-ids bundled: the subset the package bundles); a note says which.
"""


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``groups`` command."""
    g = sub.add_parser(
        "groups",
        help="the IOMMU groups: the kernel's when the source has them, else the rules'",
        description="Print the IOMMU groups. When the source carries the kernel's own groups "
        "(this machine, a sysfs tree, a snapshot, `lspci -vv` with IOMMU group lines), those, "
        "marking where the rules predict otherwise; else, and with --predicted, the groups "
        "the rules make: devices grouped in device-add order, parents first (the canonical "
        "strategy; arm64 since v6.15, x86 always), numbered as the kernel numbers them where "
        "the input allows (since v6.1 IOMMU by IOMMU; before, in device order). Without a "
        "source it reads this machine.",
        epilog=_GROUPS_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_source(g)
    g.add_argument(
        "--predicted",
        action="store_true",
        help="print the groups the rules predict, even when the source has the kernel's",
    )
    add_model_options(g)

    g.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with names_database(args) as db:
        reading = default_reading(args)
        kernel = modelled_kernel(args, reading)
        observed = reading.observed
        if reading.topology is None and observed is not None and not args.predicted:
            # a group listing or a kernel log: the kernel's groups, nothing to predict with
            if output_format(args) == "json":
                raise UsageError(
                    f"{reading.path or 'the input'}: holds the kernel's groups but no "
                    "topology; --json needs a topology (give a snapshot, sysfs tree or "
                    "`lspci -vvv`/`-xxxx` output)"
                )
            sys.stdout.write(listing(observed))
            report_notes(reading, args, db)
            print(
                "iommugroups: note: the kernel's groups, as the source lists them; it holds "
                "no topology, so no names and no prediction",
                file=sys.stderr,
            )
            return EXIT_OK
        topo = topology_of(reading)
        predicted_topo = topo
        if observed is not None:  # which devices no IOMMU translates (R11.3, R11.5)
            predicted_topo, _none = untranslated_from_observation(topo, observed)
        grouping = canonical_groups(predicted_topo, kernel=kernel)
        report = None
        marks: dict[str, str] = {}
        if observed is not None:
            report = check(topo, observed, unknowns=reading.unknowns, kernel=kernel)
            marks = verdict_marks(report)
        kernel_view = observed is not None and not args.predicted
        if output_format(args) == "json":
            doc = groups_json(grouping, topo, observed, report)
            sys.stdout.write(to_json_text(json_with_kernel(doc, kernel)))
        elif kernel_view and observed is not None:
            sys.stdout.write(listing(observed, topo, names=True, drivers=True, marks=marks))
        else:
            sys.stdout.write(listing(grouping, topo, names=True))
        ungrouped = [
            Unknown(dev, "assumed", f"has no IOMMU group: {why}")
            for dev, why in sorted(grouping.ungrouped.items())
        ]
        report_notes(reading, args, db, ungrouped)
        kernel_note(kernel, args, reading, topo)
        if kernel_view:
            differ = len(marks)
            what = (
                f"the rules' prediction differs for {differ} device(s), marked <- "
                "(`iommugroups check` explains)"
                if differ
                else "the rules predict the same groups"
            )
            print(
                f"iommugroups: note: the kernel's groups, from the source; {what}; "
                "--predicted prints the prediction",
                file=sys.stderr,
            )
    return EXIT_OK
