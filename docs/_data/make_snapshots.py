"""Rebuild the snapshot fixtures of "Check your machine" from an oracle capture.

The capture ``tests/data/oracle/designed/rootports-acs.json`` is one boot of
an unmodified Debian kernel under QEMU (q35, emulated Intel IOMMU): every PCI
device's configuration space as root read it from sysfs, and the kernel's
IOMMU groups. This script lays those files out as a sysfs tree, the way
``/sys`` shows them, and runs ``iommugroups snapshot --root`` on it twice:

* ``machine.json``: the tree as root sees it (the whole configuration space);
* ``machine-nonroot.json``: the same tree as an ordinary user sees it: sysfs
  gives such a user only the first 64 bytes of each ``config`` file.

Run from the repository root: ``python docs/_data/make_snapshots.py``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from iommugroups._cli.app import main

HERE = Path(__file__).resolve().parent
CAPTURE = HERE.parent.parent / "tests/data/oracle/designed/rootports-acs.json"
NON_ROOT_BYTES = 64


def build_tree(root: Path, capture: dict[str, object], config_bytes: int | None) -> None:
    """Write ``root/sys`` and ``root/proc`` as the capture's machine showed them."""
    devices = capture["devices"]
    groups = capture["groups"]
    assert isinstance(devices, dict)
    assert isinstance(groups, dict)
    sys_dir = root / "sys"
    pci = sys_dir / "bus/pci/devices"
    pci.mkdir(parents=True)
    for name, dev in devices.items():
        config = bytes.fromhex(dev["config_hex"])
        d = pci / name
        d.mkdir()
        (d / "config").write_bytes(config if config_bytes is None else config[:config_bytes])
        vendor = int.from_bytes(config[0:2], "little")
        device = int.from_bytes(config[2:4], "little")
        class_code = int.from_bytes(config[9:12], "little")
        (d / "vendor").write_text(f"0x{vendor:04x}\n")
        (d / "device").write_text(f"0x{device:04x}\n")
        (d / "class").write_text(f"0x{class_code:06x}\n")
        os.symlink(f"../../../../kernel/iommu_groups/{dev['group']}", d / "iommu_group")
    for gid, members in groups.items():
        g = sys_dir / "kernel/iommu_groups" / str(gid) / "devices"
        g.mkdir(parents=True)
        for member in members:
            os.symlink(f"../../../../bus/pci/devices/{member}", g / member)
    proc = root / "proc"
    (proc / "sys/kernel").mkdir(parents=True)
    (proc / "sys/kernel/osrelease").write_text(f"{capture['kernel']}\n")
    qemu_args = capture["qemu_args"]
    assert isinstance(qemu_args, list)
    (proc / "cmdline").write_text(qemu_args[qemu_args.index("-append") + 1] + "\n")


def main_() -> None:
    capture = json.loads(CAPTURE.read_text())
    for out, config_bytes in (("machine.json", None), ("machine-nonroot.json", NON_ROOT_BYTES)):
        with tempfile.TemporaryDirectory() as tmp:
            build_tree(Path(tmp), capture, config_bytes)
            status = main(["snapshot", str(HERE / out), "--root", tmp])
        if status != 0:
            raise SystemExit(status)


if __name__ == "__main__":
    main_()
