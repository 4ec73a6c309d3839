"""Benchmark: every text format is read, or refused, in time linear in its size.

For each format the readers take (``read_text``: ``lspci -vv`` pastes,
``lspci -t`` trees, ``lspci -xxxx`` dumps, group listings, kernel logs, the
oracle's captures, snapshots, topology files in JSON and TOML) and for the
damaged shapes that used to be quadratic (CR-only line endings, one very
long line, a text of blank lines), it builds an input of about ``small``
bytes and one eight times larger, from real inputs under ``tests/data``
repeated with fresh addresses, and times :func:`iommugroups.read_text` on
each. An input may be read or refused (an :class:`~iommugroups.IommuGroupsError`,
e.g. more than 65,536 devices); either way the time must grow linearly.

It prints, per format, the CPU seconds of the reading process for both
sizes and their ratio; for 8x
the input a linear reader takes about 8x the time, and the figure to watch
is a ratio of at most 10. Sizes: 8 MiB and 64 MiB (the largest input a
reader accepts); ``--quick`` (the CI smoke): 128 KiB and 1 MiB.

Run: ``python benchmarks/bench_readers.py [--quick] [--small MIB] [--only FORMAT,...]``.
This is a measurement, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from iommugroups import IommuGroupsError, read_text  # noqa: E402
from iommugroups._io.load import MAX_INPUT_BYTES  # noqa: E402

DATA = ROOT / "tests" / "data"
MIB = 1024 * 1024


def _addresses() -> Iterator[tuple[int, int, int, int]]:
    """Fresh addresses: 256 functions on bus 00 of each domain, domain after domain."""
    domain = 0
    while True:
        for dev in range(32):
            for fn in range(8):
                yield domain, 0, dev, fn
        domain += 1


def _vv_blocks() -> list[str]:
    text = (DATA / "oracle" / "lspci-vvv" / "q35-1000.txt").read_text()
    blocks = [b for b in text.split("\n\n") if b.strip() and "Bus: primary" not in b]
    return [re.sub(r"^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", "{addr}", b, count=1) for b in blocks]


def lspci_vv(size: int) -> str:
    blocks = _vv_blocks()
    out: list[str] = []
    total = 0
    for i, (dom, bus, dev, fn) in enumerate(_addresses()):
        block = blocks[i % len(blocks)].replace("{addr}", f"{dom:04x}:{bus:02x}:{dev:02x}.{fn}")
        block = re.sub(r"IOMMU group: \d+", f"IOMMU group: {i}", block)
        out.append(block)
        total += len(block) + 2
        if total >= size:
            break
    return "\n\n".join(out) + "\n"


def lspci_vv_cr(size: int) -> str:
    return lspci_vv(size).replace("\n", "\r")


def lspci_hex(size: int) -> str:
    text = (DATA / "oracle" / "captures" / "q35-1000.lspci").read_text()
    blocks = [b for b in text.split("\n\n") if b.strip()]
    rows = [b.split("\n", 1)[1] for b in blocks if " 0604" not in b.split("\n", 1)[0]]
    out: list[str] = []
    total = 0
    for i, (dom, bus, dev, fn) in enumerate(_addresses()):
        block = f"{dom:04x}:{bus:02x}:{dev:02x}.{fn} 0200: 8086:10d3\n{rows[i % len(rows)]}"
        out.append(block)
        total += len(block) + 2
        if total >= size:
            break
    return "\n\n".join(out) + "\n"


def lspci_tree(size: int) -> str:
    out: list[str] = []
    total = 0
    domain = 0
    while total < size:
        lines = [f"-[{domain:04x}:00]-+-00.0  Intel Corporation Device 3e34"]
        for dev in range(1, 31):
            for fn in range(8):
                lines.append(f"           +-{dev:02x}.{fn}  Red Hat, Inc. Virtio network device")
        lines.append("           \\-1f.7  Intel Corporation Device 3e34")
        tree = "\n".join(lines)
        out.append(tree)
        total += len(tree) + 1
        domain += 1
    return "\n".join(out) + "\n"


def listing(size: int) -> str:
    out: list[str] = []
    total = 0
    for i, (dom, bus, dev, fn) in enumerate(_addresses()):
        line = (
            f"IOMMU Group {i}:\n\t{dom:04x}:{bus:02x}:{dev:02x}.{fn} Ethernet controller "
            "[0200]: Intel Corporation 82574L Gigabit Network Connection [8086:10d3]"
        )
        out.append(line)
        total += len(line) + 1
        if total >= size:
            break
    return "\n".join(out) + "\n"


def dmesg(size: int) -> str:
    out: list[str] = []
    total = 0
    for i, (dom, bus, dev, fn) in enumerate(_addresses()):
        line = f"[    {i // 1000}.{i % 1000:06d}] pci {dom:04x}:{bus:02x}:{dev:02x}.{fn}: "
        line += f"Adding to iommu group {i}"
        out.append(line)
        total += len(line) + 1
        if total >= size:
            break
    return "\n".join(out) + "\n"


def _config_devices(size: int, per: int) -> tuple[dict[str, dict[str, object]], list[str]]:
    capture = json.loads((DATA / "oracle" / "captures" / "q35-1000.json").read_text())
    configs = [
        d["config_hex"]
        for d in capture["devices"].values()
        if bytes.fromhex(d["config_hex"])[0x0E] & 0x7F == 0
    ]
    devices: dict[str, dict[str, object]] = {}
    names: list[str] = []
    total = 0
    for i, (dom, bus, dev, fn) in enumerate(_addresses()):
        name = f"{dom:04x}:{bus:02x}:{dev:02x}.{fn}"
        config = configs[i % len(configs)]
        devices[name] = {"config_hex": config, "driver": None}
        names.append(name)
        total += len(config) + per
        if total >= size:
            break
    return devices, names


def capture(size: int) -> str:
    devices, names = _config_devices(size, 60)
    groups = {str(i): [n] for i, n in enumerate(names)}
    return json.dumps({"name": "big", "devices": devices, "groups": groups, "dmesg": []})


def snapshot(size: int) -> str:
    devices, names = _config_devices(size, 200)
    for i, name in enumerate(names):
        devices[name].update(
            physfn=None, iommu_group=i, vendor=None, device=None, **{"class": None}
        )
    groups = {str(i): [n] for i, n in enumerate(names)}
    return json.dumps(
        {
            "schema": "iommugroups.snapshot/1",
            "taken": "2026-01-01T00:00:00+00:00",
            "kernel": None,
            "cmdline": None,
            "devices": devices,
            "groups": groups,
            "unknowns": [],
        }
    )


def _functions(size: int, per: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i, (dom, bus, dev, fn) in enumerate(_addresses()):
        out.append(
            {
                "address": f"{dom:04x}:{bus:02x}:{dev:02x}.{fn}",
                "vendor": "0x8086",
                "device": "0x10d3",
                "class_code": "0x020000",
                "pcie_type": "rc_end",
            }
        )
        if (i + 1) * per >= size:
            break
    return out


def topology_json(size: int) -> str:
    return json.dumps({"schema": "iommugroups.topology/1", "functions": _functions(size, 150)})


def topology_toml(size: int) -> str:
    parts = ['schema = "iommugroups.topology/1"\n']
    for f in _functions(size, 150):
        parts.append("\n[[functions]]\n")
        parts.extend(f'{k} = "{v}"\n' for k, v in f.items())
    return "".join(parts)


def long_line(size: int) -> str:
    return "00:02.0 Ethernet controller: " + "a " * (size // 2) + "\n\tControl: I/O+\n"


def blank_lines(size: int) -> str:
    return "\n" * size + "x"


def invalid_entries(size: int) -> str:
    n = size // len('{"address": "zz"}, ')
    return '{"functions": [' + ", ".join(['{"address": "zz"}'] * n) + "]}"


FORMATS: dict[str, Callable[[int], str]] = {
    "lspci-vv": lspci_vv,
    "lspci-vv-cr": lspci_vv_cr,
    "lspci-tree": lspci_tree,
    "lspci-hex": lspci_hex,
    "listing": listing,
    "dmesg": dmesg,
    "capture": capture,
    "snapshot": snapshot,
    "topology-json": topology_json,
    "topology-toml": topology_toml,
    "long-line": long_line,
    "blank-lines": blank_lines,
    "invalid-entries": invalid_entries,
}


def fit(build: Callable[[int], str], size: int) -> str:
    """``build(n)`` for the largest ``n`` that gives at most ``size`` characters (the
    builders grow about linearly with ``n``): whole inputs, never cut mid-structure."""
    n = size
    text = build(n)
    while len(text) > size:
        n = int(n * size / len(text) * 0.995)
        text = build(n)
    return text


def timed(text: str) -> tuple[float, str]:
    """CPU seconds to read ``text`` (or to refuse it), and what came of it.

    CPU time of this process (``time.process_time``), not wall time: the
    ratio is then the reader's own, whatever else the machine runs.
    """
    gc.collect()
    start = time.process_time()
    try:
        reading = read_text(text, "bench.txt")
        n = len(reading.topology) if reading.topology is not None else 0
        groups = len(reading.observed.groups) if reading.observed is not None else 0
        what = f"read: {n} functions, {groups} groups"
    except IommuGroupsError as exc:
        what = f"refused: {str(exc)[:70]}"
    return time.process_time() - start, what


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="128 KiB and 1 MiB (the CI smoke)")
    p.add_argument("--small", type=float, help="the smaller size in MiB (default 8)")
    p.add_argument("--only", help="comma-separated formats (default: all)")
    args = p.parse_args()
    small = int((args.small if args.small else (0.125 if args.quick else 8)) * MIB)
    big = min(8 * small, MAX_INPUT_BYTES)
    names = args.only.split(",") if args.only else list(FORMATS)
    print(f"sizes: {small / MIB:g} MiB and {big / MIB:g} MiB (ratio {big / small:g})")
    print(f"{'format':<16} {'small s':>8} {'big s':>8} {'ratio':>6}  outcome (big)")
    for name in names:
        build = FORMATS[name]
        timed(fit(build, 64 * 1024))  # warm up: the PCI ID database, caches
        t_small, _ = timed(fit(build, small))
        text = fit(build, big)
        t_big, what = timed(text)
        del text
        ratio = t_big / t_small if t_small > 0 else float("inf")
        print(f"{name:<16} {t_small:>8.2f} {t_big:>8.2f} {ratio:>6.1f}  {what}", flush=True)


if __name__ == "__main__":
    main()
