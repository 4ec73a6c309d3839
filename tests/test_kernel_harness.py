"""The real-kernel harness (``tools/kernel_harness``).

The tests marked ``kernel`` boot a kernel under QEMU on generated topologies
and compare its groups with the model; they are skipped unless asked for::

    python -m pytest tests/test_kernel_harness.py --run-kernel 6.1
    python -m pytest tests/test_kernel_harness.py --run-kernel ~/linux/arch/x86/boot/bzImage

(``--run-kernel`` may be given more than once; downloads are cached in
``$IOMMUGROUPS_HARNESS_CACHE``.) The other tests check the harness's parts
without QEMU, against the oracle's real-kernel captures: the console parser
and the comparison read a capture's data as the kernel printed it.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from kernel_harness.boot import parse_console  # noqa: E402
from kernel_harness.compare import compare, read_back  # noqa: E402
from kernel_harness.generate import FEATURES, features, generate  # noqa: E402
from kernel_harness.initramfs import INIT, build_initramfs  # noqa: E402

from iommugroups import canonical_groups, load  # noqa: E402
from iommugroups._io.qemu import qemu_command  # noqa: E402

DATA = ROOT / "tests" / "data" / "oracle"
CAPTURE = DATA / "captures" / "q35-1104.json"  # SR-IOV VFs, switches, multifunction ports


def console_of(capture: dict[str, Any]) -> str:
    """What the initramfs's script prints for a capture (with the noise a console has)."""
    lines = ["[    1.234] some kernel message", f"@@KERNEL {capture['kernel']}\r"]
    for addr, dev in sorted(capture["devices"].items()):
        group = "-" if dev["group"] is None else dev["group"]
        lines.append(f"@@DEV {addr} {group} {dev.get('driver') or '-'}\r")
        lines.append(f"@@CFG {addr} {dev['config_hex']}\r")
    lines += [f"@@DMESG {line}" for line in capture["dmesg"]]
    lines.append("@@END")
    return "\n".join(lines) + "\n"


def test_console_parsed_into_a_capture_the_loader_reads() -> None:
    oracle = json.loads(CAPTURE.read_text())
    parsed = parse_console(console_of(oracle))
    assert parsed["kernel"] == oracle["kernel"]
    assert parsed["groups"] == {k: sorted(v) for k, v in oracle["groups"].items()}
    assert parsed["dmesg"] == oracle["dmesg"]
    assert read_back({**parsed, "name": "q35-1104"}) == load(CAPTURE)


def test_compare_agrees_on_a_real_capture() -> None:
    """The oracle's capture, as if booted: built as asked, same groups, same numbers."""
    oracle = json.loads(CAPTURE.read_text())
    capture = {**parse_console(console_of(oracle)), "name": "q35-1104", "boot_seconds": 1.0}
    v = compare(load(CAPTURE), capture)
    assert (v.verdict, v.numbers, v.built) == ("agree", True, ())
    assert v.groups == len(oracle["groups"])


def test_compare_reports_a_disagreement() -> None:
    oracle = json.loads(CAPTURE.read_text())
    capture = {**parse_console(console_of(oracle)), "name": "q35-1104"}
    groups = capture["groups"]
    a, b = sorted(groups, key=int)[-2:]  # the kernel "merged" two groups
    groups[a] = sorted(groups[a] + groups.pop(b))
    v = compare(load(CAPTURE), capture)
    assert v.verdict == "DISAGREE"
    assert any(d.startswith("kernel only: ") for d in v.details)
    assert any(d.startswith("model only: ") for d in v.details)


def test_compare_reports_a_machine_not_built_as_asked() -> None:
    oracle = json.loads(CAPTURE.read_text())
    capture = parse_console(console_of(oracle))
    asked = load(CAPTURE)
    asked = asked.replace(functions=[f for f in asked if str(f.address) != "0000:00:07.1"])
    v = compare(asked, capture)
    assert v.built == ("0000:00:07.1: in the guest, not asked for (8086:10d3)",)


def test_generator_is_deterministic_and_buildable() -> None:
    seen = set()
    for seed in range(30):
        topo = generate(seed)
        assert topo == generate(seed)
        cmd = qemu_command(topo)  # raises if QEMU could not build it
        assert cmd.notes == ()
        assert all(k == v for k, v in cmd.addresses.items())  # firmware's bus numbers
        seen |= features(topo)
        assert canonical_groups(topo).ungrouped == {}
    assert seen == set(FEATURES)
    assert generate(1) != generate(2)


@pytest.mark.parametrize("firmware", ["dt", "acpi"])
def test_generator_for_arm64(firmware: str) -> None:
    for seed in range(10):
        topo = generate(seed, "aarch64", firmware)
        qemu_command(topo, arch="aarch64", firmware=firmware)
        if firmware == "dt":
            assert "pxb-pcie expander bus" not in features(topo)


def test_initramfs_is_a_newc_archive(tmp_path: Path) -> None:
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF fake busybox")
    module = tmp_path / "nvme.ko"
    module.write_bytes(b"module bytes")
    data = gzip.decompress(build_initramfs(busybox, tmp_path / "rd.gz", [module]).read_bytes())
    files: dict[str, bytes] = {}
    pos = 0
    while True:  # the newc format: "070701", 13 hex fields, name, data, 4-byte alignment
        assert data[pos : pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        size, namesize = fields[6], fields[11]
        name = data[pos + 110 : pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        if name == "TRAILER!!!":
            break
        files[name] = data[pos : pos + size]
        pos = (pos + size + 3) & ~3
    assert files["init"] == INIT.encode()
    assert files["bin/busybox"] == busybox.read_bytes()
    assert files["modules/nvme.ko"] == b"module bytes"
    assert files["modules.load"] == b"nvme.ko\n"


# --- booting a real kernel (skipped unless --run-kernel is given) --------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kernel_spec" in metafunc.fixturenames:
        specs = metafunc.config.getoption("--run-kernel") or ["(none)"]
        metafunc.parametrize("kernel_spec", specs)


@pytest.mark.kernel
@pytest.mark.parametrize("seed", [1, 2])
def test_real_kernel_agrees_with_the_model(kernel_spec: str, seed: int, tmp_path: Path) -> None:
    """A real kernel's groups on a generated topology are the model's (x86, q35 + VT-d)."""
    from kernel_harness.differential import main

    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    out = tmp_path / "verdicts.json"
    rc = main(["--kernel", kernel_spec, "--seeds", str(seed), "--json", str(out)])
    if rc == 3:
        pytest.skip("the harness skipped (no QEMU, or the Debian mirror is unreachable)")
    (verdict,) = json.loads(out.read_text())
    assert verdict["built"] == []
    assert verdict["verdict"] == "agree", verdict["details"]
    assert rc == 0
