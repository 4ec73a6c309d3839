"""``iommugroups passthrough``: can a device go to a VM, and what goes with it."""

from __future__ import annotations

import argparse
import sys

from .._analysis.passthrough import DEVICE_CLASSES, passthrough
from .._kernel.pci_ids import PciIdsDatabase
from .._kernel.reading import Reading
from .._render.passthrough import render_passthrough
from .._render.text import to_json_text
from .common import (
    HelpFormatter,
    UsageError,
    add_model_options,
    add_source_then,
    default_reading,
    kernel_note,
    modelled_kernel,
    names_database,
    output_format,
    report_notes,
    take_source,
    topology_of,
)

__all__ = ["add", "run"]

_EPILOG = f"""\
devices:
  01:00.0, 0000:01:00.0    one function
  01:00                    every function of the slot
  10de:1b80                every device with this vendor:device id
  {", ".join(DEVICE_CLASSES)}
                           every device of the class (gpu: display controllers, 03xx;
                           nic/network/net: 02xx; nvme: 010802; usb: 0c03; audio: 0403;
                           storage: 01xx)

exit status: 0 every device can go to a VM alone (its group holds only its card's
functions and bridges), 1 a group needs other devices too (or has none, or is an
isolation hole), 3 the answer depends on facts the input lacks, 2 bad usage or input.

examples:
  iommugroups passthrough --example desktop gpu
  iommugroups passthrough docs/_data/machine.json nvme --json
  iommugroups passthrough 10de:1b80                  # this machine
  iommugroups passthrough --sysfs / 01:00
"""

#: Sources that say of every function which driver is bound (none when none is).
_DRIVERS_SHOWN = frozenset({"sysfs", "snapshot"})


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``passthrough`` command."""
    p = sub.add_parser(
        "passthrough",
        help="can a device go to a VM: its group, what goes with it, the vfio-pci lines, "
        "reset, libvirt, and where else it could go",
        description="For each DEVICE: its IOMMU group (the kernel's when the source has "
        "them, else the predicted one), every member and whether it stays with the host "
        "(a bridge) or must go to the VM too, the host drivers still bound, ready-to-paste "
        "vfio-pci.ids=, modprobe.d and driverctl lines, the reset methods, a libvirt "
        "<hostdev> per device, and, when the group holds other devices, the free slots "
        "where moving the card would give it a group of its own and what "
        "pcie_acs_override would do. The source defaults to this machine (/sys).",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_source_then(
        p,
        "DEVICE",
        "the devices: addresses, slots, vendor:device ids or class names",
        nargs="*",
    )
    add_model_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with names_database(args) as db:
        return _run(args, db)


def _drivers_known(reading: Reading) -> bool:
    """Does the input say of every function which driver is bound?"""
    if reading.source in _DRIVERS_SHOWN:
        return True
    topo = reading.topology
    # lspci -k/-v prints "Kernel driver in use" for every bound function
    return (
        reading.source.startswith("lspci")
        and topo is not None
        and any(f.driver for f in topo.functions)
    )


def _run(args: argparse.Namespace, db: PciIdsDatabase) -> int:
    devices = take_source(args, args.words or [])
    if not devices:
        raise UsageError("name a device: an address, a slot, a vendor:device id or a class")
    reading = default_reading(args)
    topo = topology_of(reading)
    kernel = modelled_kernel(args, reading)
    report_notes(reading, args, db)
    kernel_note(kernel, args, reading, topo)
    report = passthrough(
        topo,
        devices,
        observed=reading.observed,
        unknowns=reading.unknowns,
        kernel=kernel,
        drivers_known=_drivers_known(reading),
    )
    if output_format(args) == "json":
        sys.stdout.write(to_json_text(report.to_json()))
    else:
        sys.stdout.write(render_passthrough(report, verbose=bool(args.verbose)))
    return report.status
