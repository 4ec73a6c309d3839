"""``iommugroups check``: the kernel's groups against the rules, device by device."""

from __future__ import annotations

import argparse
import sys

from .._analysis.check import assume_no_acs, check
from .._errors import InvalidAddress
from .._io.read import read
from .._io.root_buses import parse_bus, with_root_buses
from .._render.check import render_check, write_check_json
from .common import (
    EXIT_FINDING,
    EXIT_OK,
    EXIT_UNKNOWN,
    HelpFormatter,
    UsageError,
    add_model_options,
    add_source,
    kernel_note,
    modelled_kernel,
    names_database,
    output_format,
    reading_of,
    topology_of,
)

__all__ = ["add", "run"]

_CHECK_EPILOG = """\
examples:
  iommugroups check snapshot.json                      # groups inside the snapshot
  iommugroups check                                    # this machine, live
  iommugroups check snapshot.json --kernel 6.1         # the rules of Linux 6.1
  iommugroups check lspci-vv.txt                       # lspci -vv with IOMMU group lines
  iommugroups check --example d05 --observed dmesg.txt # a kernel log against a topology
  iommugroups check tree.txt --observed dmesg.txt --assume-no-acs
  iommugroups check lspci-vv.txt -v                    # every note, not a summary
  iommugroups check xeon-lspci-vv.txt --root-bus ff    # bus ff is a root bus (uncore)

exit status: 0 every verdict ok or merged, 1 a split (devices the rules put together
are in different groups), 2 usage or input error, 3 no split but some verdict unknown
(the input lacks data it depends on; --allow-unknown: 0).
"""


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``check`` command."""
    c = sub.add_parser(
        "check",
        help="compare the kernel's groups with the rules: find isolation holes",
        description="Compare the IOMMU groups a kernel made (from the source itself, e.g. a "
        "snapshot, a sysfs tree or `lspci -vv` with IOMMU group lines, or from --observed) with "
        "the canonical prediction for its topology. Per device: split (devices the rules put "
        "together are in different groups: an isolation hole, exit status 1), merged (grouped "
        "together though the rules would isolate them), unknown (the verdict depends on "
        "missing data, exit status 3 when there is no split).",
        epilog=_CHECK_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_source(c)
    c.add_argument(
        "--observed",
        metavar="FILE",
        help="the kernel's groups: a group listing, a kernel log (dmesg), `lspci -vv` or "
        "`lspci -vmm` output; - for stdin",
    )
    c.add_argument(
        "--assume-no-acs",
        action="store_true",
        help="take every device whose ACS capability or PCIe type could not be read as PCIe "
        "without ACS (bridges on a root bus as root ports, other bridges as downstream ports), "
        "and every bridge the input lacks as one without ACS",
    )
    c.add_argument(
        "--root-bus",
        action="append",
        default=[],
        metavar="BUS",
        help="take BUS (dddd:bb, or bb in domain 0) to be a root bus, which the input does "
        "not say (lspci -vv shows no host bridges; a Xeon's uncore bus ff holds conventional "
        "PCI devices only); may be repeated",
    )
    c.add_argument(
        "--allow-unknown",
        action="store_true",
        help="exit 0, not 3, when no verdict is a split but some are unknown (the old "
        "behaviour; `check && bind` then proceeds on a machine the input says little about)",
    )
    add_model_options(c)

    c.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with names_database(args) as db:
        reading = reading_of(args)
        topo = topology_of(reading)
        unknowns = list(reading.unknowns)
        observed = reading.observed
        if args.observed is not None:
            seen = read(args.observed)
            observed = seen.observed
            unknowns += seen.unknowns
            if observed is None:
                raise UsageError(f"{args.observed}: no IOMMU groups in it")
        if observed is None:
            raise UsageError(
                "no observed groups: the source shows none; give --observed FILE (a group "
                "listing, a kernel log or `lspci -vv` with IOMMU group lines)"
            )
        if args.root_bus:
            try:
                roots = [parse_bus(b) for b in args.root_bus]
            except InvalidAddress as exc:
                raise UsageError(f"--root-bus: {exc}") from None
            topo, unknowns = with_root_buses(topo, unknowns, roots)
        if args.assume_no_acs:
            topo, kept = assume_no_acs(topo, unknowns)
            unknowns = list(kept)
        kernel = modelled_kernel(args, reading)
        report = check(
            topo,
            observed,
            unknowns=unknowns,
            bridges_without_acs=args.assume_no_acs,
            kernel=kernel,
        )
        if output_format(args) == "json":  # entry by entry: never held as JSON text
            write_check_json(report, str(kernel), sys.stdout.write)
        else:
            sys.stdout.write(render_check(report, verbose=args.verbose, names=db.source))
        kernel_note(kernel, args, reading, topo)
    if report.has_split:
        return EXIT_FINDING
    if report.unknown and not args.allow_unknown:
        return EXIT_UNKNOWN
    return EXIT_OK
