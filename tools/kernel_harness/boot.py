"""Boot one QEMU guest and read back what its kernel did.

``boot(argv, timeout)`` runs the command ``iommugroups vm`` printed (with the
kernel and initramfs filled in) under ``nice -n 10``, reads the serial
console and turns the initramfs's ``@@`` lines into a *capture*: the same
JSON shape as the oracle's captures (``shared/oracle/README.md``), which
``iommugroups.load`` reads back into a topology:

    {"name", "kernel", "qemu_args", "boot_seconds", "cmdline",
     "devices": {address: {"group", "driver", "config_hex"}},
     "groups": {id: [addresses]}, "dmesg": [lines]}
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Any


class BootError(RuntimeError):
    """The guest did not get to the end of its script (timeout, panic, QEMU error)."""


def _nice() -> list[str]:
    return ["nice", "-n", "10"] if shutil.which("nice") else []


def boot(argv: list[str], timeout: float = 600.0, name: str = "") -> dict[str, Any]:
    """Run QEMU, wait for the guest to power off, and parse its console into a capture."""
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [*_nice(), *argv],
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stdout or b"")[-2000:].decode(errors="replace")
        raise BootError(
            f"{name}: no power-off within {timeout:.0f}s; console tail:\n{tail}"
        ) from None
    took = time.monotonic() - start
    out = proc.stdout.decode(errors="replace")
    if "@@END" not in out:
        err = proc.stderr.decode(errors="replace").strip()
        raise BootError(
            f"{name}: QEMU exited {proc.returncode} before the guest's script ended\n"
            f"stderr: {err[-2000:]}\nconsole tail: {out[-2000:]}"
        )
    capture = parse_console(out)
    capture["name"] = name
    capture["qemu_args"] = list(argv)
    capture["boot_seconds"] = round(took, 1)
    return capture


def parse_console(text: str) -> dict[str, Any]:
    """The ``@@`` lines of the guest's console as a capture (without name and args)."""
    devices: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[str]] = {}
    dmesg: list[str] = []
    notes: list[str] = []
    kernel = cmdline = None
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        at = line.find("@@")
        if at < 0:
            continue
        tag, _, rest = line[at + 2 :].partition(" ")
        if tag == "KERNEL":
            kernel = rest.strip()
        elif tag == "CMDLINE":
            cmdline = rest.strip()
        elif tag == "DEV":
            addr, group, driver = ([*rest.split(), "-", "-"])[:3]
            devices[addr] = {
                "group": None if group == "-" else int(group),
                "driver": None if driver == "-" else driver,
                "config_hex": "",
            }
            if group != "-":
                groups.setdefault(group, []).append(addr)
        elif tag == "CFG":
            addr, _, hex_text = rest.partition(" ")
            if addr in devices:
                devices[addr]["config_hex"] = hex_text.strip()
        elif tag == "DMESG":
            dmesg.append(rest)
        elif tag == "NOTE":
            notes.append(rest)
    return {
        "kernel": kernel,
        "cmdline": cmdline,
        "devices": devices,
        "groups": {k: sorted(v) for k, v in sorted(groups.items(), key=lambda kv: int(kv[0]))},
        "dmesg": dmesg,
        "guest_notes": notes,
    }
