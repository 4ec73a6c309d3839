"""The differential test: boot a real kernel on generated topologies, compare with the model.

One command, from the repository root::

    python tools/kernel_harness/differential.py --kernel 6.1            # Debian's 6.1
    python tools/kernel_harness/differential.py --kernel 7.3 --seeds 0-29
    python tools/kernel_harness/differential.py --kernel ~/linux/arch/x86/boot/bzImage
    python tools/kernel_harness/differential.py --kernel 7.3 --arch aarch64 --firmware acpi

``--kernel`` is a Debian kernel series (6.1, 6.12, 7.2, 7.3: the newest
``linux-image`` package of that series is downloaded through a private apt
configuration, see ``debian.py``) or the path of a kernel image you built
(``arch/x86/boot/bzImage``, ``arch/arm64/boot/Image``); give ``--modules
DIR`` (a ``lib/modules/RELEASE`` tree, e.g. from ``make modules_install
INSTALL_MOD_PATH=...``) if the nvme driver is a module and you want SR-IOV
VFs enabled. Each seed's topology (``generate.py``) is turned into a QEMU
command line by ``iommugroups vm``'s writer, booted (``boot.py``, with the
initramfs of ``initramfs.py``), and the groups the kernel made are compared
with the model (``compare.py``). Exit status: 0 every topology agreed (or
fitted), 1 a disagreement or a topology not built as asked, 2 a boot failed
or bad usage, 3 skipped (no QEMU, or the Debian mirror could not be reached;
the reason is printed).

``--report FILE`` writes a Markdown report (the command, the kernel package
and QEMU versions, one line per topology); ``--keep DIR`` keeps every
topology file and capture for analysis. Downloads are cached in
``--cache`` (default ``$IOMMUGROUPS_HARNESS_CACHE`` or
``~/.cache/iommugroups-harness``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``kernel_harness`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernel_harness.boot import BootError, boot
from kernel_harness.compare import Verdict, compare
from kernel_harness.debian import AptUnavailable, fetch_busybox, fetch_kernel
from kernel_harness.generate import features, generate
from kernel_harness.initramfs import build_initramfs, module_load_order

from iommugroups import dumps_topology
from iommugroups._io.qemu import qemu_command

EXIT_OK, EXIT_FINDING, EXIT_ERROR, EXIT_SKIPPED = 0, 1, 2, 3
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _cache(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("IOMMUGROUPS_HARNESS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "iommugroups-harness"


def _qemu_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        return out.stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return "?"


def _report(
    path: Path,
    command: str,
    kernel_desc: str,
    qemu: str,
    verdicts: list[Verdict],
    failures: list[str],
    arch: str,
    firmware: str,
) -> None:
    agree = sum(v.verdict in ("agree", "fits") for v in verdicts)
    numbers = sum(v.numbers for v in verdicts)
    built = sum(not v.built for v in verdicts)
    machine = "q35 + VT-d" if arch == "x86_64" else f"virt + SMMUv3, {firmware}"
    lines = [
        f"### {kernel_desc} ({arch}, {machine})",
        "",
        "```console",
        f"$ {command}",
        "```",
        "",
        f"- QEMU: {qemu}; host: {platform.machine()}, TCG, one vCPU",
        f"- topologies: {len(verdicts) + len(failures)}; groups agree: {agree}; group numbers "
        f"agree: {numbers}; built as asked: {built}; boot failures: {len(failures)}",
        "",
        "| topology | functions | groups | verdict | numbers | built | boot s | notes |",
        "| --- | ---: | ---: | --- | --- | --- | ---: | --- |",
    ]
    for v in verdicts:
        notes = "; ".join([*v.details, *v.built[:3]]) or ""
        lines.append(
            f"| {v.name} | {v.functions} | {v.groups} | {v.verdict} | "
            f"{'same' if v.numbers else 'differ' if v.verdict == 'agree' else '-'} | "
            f"{'yes' if not v.built else 'NO'} | {v.boot_seconds:.1f} | {notes} |"
        )
    for f in failures:
        lines.append(f"| {f} | | | boot failed | | | | |")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write("\n".join(lines) + "\n\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Boot a kernel under QEMU on generated topologies and compare its IOMMU "
        "groups with iommugroups' model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--kernel",
        required=True,
        help="a Debian kernel series (6.1, 6.12, 7.2, 7.3) or a kernel image path",
    )
    p.add_argument("--modules", help="lib/modules/RELEASE of a kernel image you built")
    p.add_argument("--arch", default="x86_64", choices=("x86_64", "aarch64"))
    p.add_argument("--firmware", choices=("dt", "acpi"), help="aarch64: dt (default) or acpi")
    p.add_argument("--seeds", default="0-9", help="e.g. 0-29 or 1,5,7 (default 0-9)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per boot (default 600)")
    p.add_argument("--cache", help="download cache")
    p.add_argument("--keep", help="keep each topology file and capture in this directory")
    p.add_argument("--report", help="append a Markdown report to this file")
    p.add_argument("--json", help="write the verdicts as JSON to this file")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="CI smoke: exit 3 (skipped) rather than fail when QEMU or apt is missing",
    )
    args = p.parse_args(argv)
    arch = args.arch
    firmware = args.firmware or ("acpi" if arch == "x86_64" else "dt")
    qemu_bin = f"qemu-system-{arch}"
    if shutil.which(qemu_bin) is None:
        print(f"harness: skipped: {qemu_bin} is not installed", file=sys.stderr)
        return EXIT_SKIPPED
    cache = _cache(args.cache)
    deb_arch = DEB_ARCH[arch]
    try:
        busybox = fetch_busybox(deb_arch, cache)
        if Path(args.kernel).exists():
            image = Path(args.kernel).resolve()
            modules = Path(args.modules) if args.modules else None
            kernel_desc = f"kernel image {args.kernel}"
        else:
            k = fetch_kernel(args.kernel, deb_arch, cache)
            image, modules, kernel_desc = k.image, k.modules, f"Debian {k.describe()}"
    except AptUnavailable as exc:
        print(f"harness: skipped: the Debian mirror cannot be used: {exc}", file=sys.stderr)
        return EXIT_SKIPPED
    except ValueError as exc:
        print(f"harness: error: {exc} (or the path of a kernel image)", file=sys.stderr)
        return EXIT_ERROR
    mods = module_load_order(modules, ["nvme"]) if modules else []
    tag = hashlib.sha256(f"{image}:{modules}".encode()).hexdigest()[:12]
    initrd = build_initramfs(busybox, cache / "initrd" / f"{arch}-{tag}.gz", mods)
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    command = "python tools/kernel_harness/differential.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    print(f"harness: {kernel_desc}; {len(mods)} modules in the initramfs", flush=True)
    verdicts: list[Verdict] = []
    failures: list[str] = []
    for seed in _seeds(args.seeds):
        topo = generate(seed, arch, firmware)
        # no_timer_check: under TCG on a loaded host the kernel's check that the
        # timer interrupt arrives through the remapped IO-APIC can fail and panic.
        cmd = qemu_command(
            topo,
            arch=arch,
            firmware=firmware,
            kernel=str(image),
            initrd=str(initrd),
            append="no_timer_check" if arch == "x86_64" else "",
        )
        name = topo.name
        if keep:
            (keep / f"{name}.topology.json").write_text(dumps_topology(topo, "json"))
        start = time.monotonic()
        try:
            capture = boot(list(cmd.argv), timeout=args.timeout, name=name)
        except BootError as exc:
            failures.append(name)
            print(f"{name}: BOOT FAILED after {time.monotonic() - start:.0f}s: {exc}", flush=True)
            continue
        capture["topology_features"] = sorted(features(topo))
        if keep:
            (keep / f"{name}.json").write_text(json.dumps(capture, indent=1) + "\n")
        v = compare(topo, capture, dict(cmd.addresses))
        verdicts.append(v)
        print(
            f"{name}: {v.verdict}{'' if v.numbers else ' (numbers differ)'}"
            f"{'' if not v.built else ' NOT BUILT AS ASKED'} - {v.functions} functions, "
            f"{v.groups} groups, {v.boot_seconds:.1f}s",
            flush=True,
        )
        for line in [*v.details, *v.built]:
            print(f"    {line}", flush=True)
    if args.report:
        _report(
            Path(args.report),
            command,
            kernel_desc,
            _qemu_version(qemu_bin),
            verdicts,
            failures,
            arch,
            firmware,
        )
    if args.json:
        Path(args.json).write_text(json.dumps([v.to_json() for v in verdicts], indent=1) + "\n")
    bad = [v for v in verdicts if v.verdict == "DISAGREE" or v.built]
    print(
        f"harness: {len(verdicts) - len(bad)} passed, {len(bad)} failed"
        + (f", {len(failures)} boot failures" if failures else ""),
        flush=True,
    )
    if failures:
        return EXIT_ERROR
    return EXIT_FINDING if bad else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
