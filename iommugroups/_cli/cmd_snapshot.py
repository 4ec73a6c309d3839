"""``iommugroups snapshot``: this machine's config space and groups, in one file."""

from __future__ import annotations

import argparse
import json
import sys

from .._io.snapshot import take_snapshot
from .common import EXIT_OK, HelpFormatter, UsageError

__all__ = ["add", "run"]

_SNAPSHOT_EPILOG = """\
examples:
  sudo iommugroups snapshot machine.json   # on the machine
  iommugroups check machine.json           # anywhere
  iommugroups groups machine.json
"""


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``snapshot`` command."""
    sn = sub.add_parser(
        "snapshot",
        help="save this machine's PCI config space and IOMMU groups to one file",
        description="Read /sys (or --sysfs DIR) and write one self-contained JSON file "
        "(schema iommugroups.snapshot/1) that every command reads: take it on the machine, "
        "analyse it anywhere. Run as root: without root, Linux shows only 64 bytes of config "
        "space and the ACS capabilities are unknown.",
        epilog=_SNAPSHOT_EPILOG,
        formatter_class=HelpFormatter,
    )
    sn.add_argument("out", metavar="OUT", help="the file to write; - for standard output")
    sn.add_argument(
        "--sysfs",
        metavar="DIR",
        default=None,
        help="read DIR/sys instead of /sys (a copied tree), as every command names a sysfs tree",
    )
    sn.add_argument("--root", metavar="DIR", default=None, help=argparse.SUPPRESS)  # deprecated

    sn.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    root = args.sysfs
    if args.root is not None:
        print(
            "iommugroups: note: --root is deprecated and goes in the next release: use --sysfs",
            file=sys.stderr,
        )
        if root is not None:
            raise UsageError(f"two sysfs trees: --sysfs {root} and --root {args.root}")
        root = args.root
    data = take_snapshot(root if root is not None else "/")
    text = json.dumps(data, indent=1) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        try:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise UsageError(f"{args.out}: cannot write: {exc.strerror}") from None
    groups = data.get("groups")
    print(
        f"iommugroups: wrote {len(data.get('devices', {}))} PCI devices"
        + (f" and {len(groups)} IOMMU groups" if groups else ", no IOMMU groups")
        + f" (kernel {data.get('kernel') or 'unknown'}) to {args.out}",
        file=sys.stderr,
    )
    return EXIT_OK
