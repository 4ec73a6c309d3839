"""``iommugroups vm``: a QEMU command line that builds a topology."""

from __future__ import annotations

import argparse
import sys

from .._io.qemu import ARCHES, DEFAULT_BIOS, DEFAULT_INITRD, DEFAULT_KERNEL, qemu_command
from .._render.text import to_json_text
from .common import (
    EXIT_OK,
    HelpFormatter,
    UsageError,
    add_format,
    add_source,
    output_format,
    reading_of,
    topology_of,
)

__all__ = ["add", "run"]

_VM_EPILOG = """\
examples:
  iommugroups vm topology.json --kernel bzImage --initrd initrd.gz
  iommugroups vm capture.json                      # rebuild an oracle capture's machine
  iommugroups vm topology.json --arch aarch64 --firmware acpi
  iommugroups vm topology.json --json              # argv, guest addresses, notes

The device models are QEMU 7.2's; a function no model can present is refused,
named. tools/kernel_harness boots such command lines and compares the kernel's
groups with the model (docs: "Testing a kernel with the harness").
"""


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``vm`` command."""
    g = sub.add_parser(
        "vm",
        help="print a QEMU command line that builds a topology",
        description="Print a QEMU command line that builds the topology: x86 q35 with an "
        "emulated Intel IOMMU, or arm64 virt with an emulated SMMUv3 (device tree or ACPI), "
        "with the QEMU device models that present the same ids, port types, ACS and "
        "multifunction bits. A topology QEMU cannot build is refused, naming the device.",
        epilog=_VM_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_source(g)
    g.add_argument("--arch", choices=ARCHES, default="x86_64", help="the machine (default x86_64)")
    g.add_argument(
        "--firmware",
        choices=("dt", "acpi"),
        help="aarch64: device tree (dt, the default) or UEFI with ACPI (acpi); x86: acpi",
    )
    g.add_argument(
        "--kernel", default=DEFAULT_KERNEL, help=f"kernel image (default {DEFAULT_KERNEL})"
    )
    g.add_argument(
        "--initrd", default=DEFAULT_INITRD, help=f"initramfs (default {DEFAULT_INITRD})"
    )
    g.add_argument("--append", default="", help="extra kernel command-line arguments")
    g.add_argument(
        "--bios", default=DEFAULT_BIOS, help="aarch64 UEFI firmware for --firmware acpi"
    )
    add_format(g, dot=False)
    g.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.arch == "x86_64" and args.firmware == "dt":
        raise UsageError("x86 (q35) boots with ACPI: --firmware dt is for --arch aarch64")
    topo = topology_of(reading_of(args))
    cmd = qemu_command(
        topo,
        arch=args.arch,
        firmware=args.firmware,
        kernel=args.kernel,
        initrd=args.initrd,
        append=args.append,
        bios=args.bios,
    )
    if output_format(args) == "json":
        sys.stdout.write(to_json_text(cmd.to_json()))
    else:
        sys.stdout.write(cmd.shell() + "\n")
        for note in cmd.notes:
            print(f"iommugroups: note: {note}", file=sys.stderr)
    return EXIT_OK
