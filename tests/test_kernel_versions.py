"""Kernel versions: Linux 7.3 captures reproduced, and what changed since 6.1.

``tests/data/oracle/k7`` holds the machines of ``tests/data/oracle`` booted on
Debian's Linux 7.3 (see its README). The x86 ones are checked with the 6.1
ones in ``test_oracle.py``; here:

* every arm64 7.3 capture is replayed by ``simulate`` with the strategy the
  kernel uses (``device-add``, R10.1) and gives the kernel's log, groups and
  drivers exactly, through the API and the CLI;
* the 6.1 captures' own topologies (device tree: ACS controls as 6.1 left
  them) replayed as Linux 7.3 give the 7.3 captures: the version model
  predicts one kernel's groups from the other's machine (R2.7, R1.4, R7.9,
  R10.1, R10.3);
* the rescan of ``x86-rescan-multifunction.txt`` (R5.7, R1.4) on both
  kernels.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from iommugroups import (
    Acs,
    AcsFlags,
    PcieType,
    PciFunction,
    Scenario,
    Topology,
    simulate,
)
from iommugroups._cli.app import main
from iommugroups._io.arm64_capture import read_capture
from iommugroups._kernel.version import (
    CHANGES,
    NEWEST,
    InvalidKernelVersion,
    KernelVersion,
    holds,
    uncertain,
)

DATA = Path(__file__).parent / "data" / "oracle"
K7_ARM64 = sorted((DATA / "k7" / "arm64").glob("*.json"))


def test_there_are_captures() -> None:
    assert len(K7_ARM64) == 36
    for path in K7_ARM64:
        assert json.loads(path.read_text())["kernel"].startswith("7.3.")


@pytest.mark.parametrize("path", K7_ARM64, ids=lambda p: p.stem)
def test_every_73_capture_is_reproduced(path: Path) -> None:
    cap = read_capture(json.loads(path.read_text()), str(path))
    assert cap.scenario.kernel is not None
    assert cap.scenario.kernel.startswith("7.3")
    result = simulate(cap.topology, cap.scenario)  # the kernel's own strategy: device-add
    assert result.strategy == "device-add"
    assert list(result.log_lines(markers=True)) == list(cap.dmesg)
    assert dict(result.grouping.groups) == dict(cap.groups)
    for dev, driver in cap.drivers.items():
        assert result.fates[dev].driver == driver, dev


@pytest.mark.parametrize("path", K7_ARM64, ids=lambda p: p.stem)
def test_the_61_machine_booted_as_73(path: Path) -> None:
    """The same scenario's 6.1 capture, its config space as 6.1 left it, modelled as 7.3."""
    old_path = DATA / "arm64" / path.name
    old = read_capture(json.loads(old_path.read_text()), str(old_path))
    new = read_capture(json.loads(path.read_text()), str(path))
    assert old.scenario.kernel is not None
    assert old.scenario.kernel.startswith("6.1")
    result = simulate(old.topology, old.scenario, kernel="7.3")
    assert list(result.log_lines(markers=True)) == list(new.dmesg)
    assert dict(result.grouping.groups) == dict(new.groups)


def test_the_versions_differ_on_these_machines() -> None:
    """Not a vacuous comparison: 6.1 and 7.3 disagree on every capture (the README's claim)."""
    for path in K7_ARM64:
        old_path = DATA / "arm64" / path.name
        old = read_capture(json.loads(old_path.read_text()), str(old_path))
        new = read_capture(json.loads(path.read_text()), str(path))
        assert simulate(old.topology, old.scenario).grouping.partition() != (
            new_groups := {frozenset(v) for v in new.groups.values()}
        ) or list(old.dmesg) != list(new.dmesg), path.stem
        assert new_groups


def test_device_tree_acs_controls_are_enabled_before_grouping_since_70() -> None:
    """R2.7: arm64-101 (device tree) has root ports 00:04.0 and 00:05.0 with ACS
    implemented but off, as 6.1 left them; modelled as 7.3 they are on when the
    devices group, as the 7.3 capture's config space shows them."""
    name = "arm64-101.json"
    old = read_capture(json.loads((DATA / "arm64" / name).read_text()), name)
    new = read_capture(json.loads((DATA / "k7" / "arm64" / name).read_text()), name)
    assert old.scenario.firmware == "dt"
    on_73 = simulate(old.topology, old.scenario, kernel="7.3").topology
    on_61 = simulate(old.topology, old.scenario, kernel="6.1").topology
    assert on_73 is not None
    assert on_61 is not None
    for port in ("00:04.0", "00:05.0"):
        before, after, real = on_61.get(port).acs, on_73.get(port).acs, new.topology.get(port).acs
        assert before is not None
        assert after is not None
        assert real is not None
        assert not before.ctrl & AcsFlags.SV
        assert after.ctrl == real.ctrl  # what the 7.3 kernel really set


@pytest.mark.parametrize("path", K7_ARM64[:3], ids=lambda p: p.stem)
def test_the_cli_replays_a_73_capture(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = read_capture(json.loads(path.read_text()), str(path))
    assert main(["simulate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == "iommugroups: note: modelled Linux 7.3, strategy device-add\n"
    assert out.splitlines()[: len(cap.dmesg)] == list(cap.dmesg)


def test_a_61_capture_under_kernel_73_on_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "arm64" / "arm64-100.json"
    new = read_capture(json.loads((DATA / "k7" / "arm64" / "arm64-100.json").read_text()))
    assert main(["simulate", str(path), "--kernel", "7.3"]) == 0
    out, err = capsys.readouterr()
    assert err == "iommugroups: note: modelled Linux 7.3, strategy device-add\n"
    assert out.splitlines()[: len(new.dmesg)] == list(new.dmesg)
    assert main(["simulate", str(path), "--kernel", "seven"]) == 2
    assert "not a kernel version: 'seven'" in capsys.readouterr().err


# --- the x86 rescan (R5.7) -----------------------------------------------------------------------


def _rescan_capture() -> dict[str, tuple[dict[int, list[str]], list[str]]]:
    """Kernel release -> (groups, log lines) from x86-rescan-multifunction.txt."""
    out: dict[str, tuple[dict[int, list[str]], list[str]]] = {}
    release = ""
    for line in (DATA / "k7" / "x86-rescan-multifunction.txt").read_text().splitlines():
        if not line.startswith(" "):
            release, _, groups = line.partition(" ")
            out[release] = ({int(k): v for k, v in ast.literal_eval(groups).items()}, [])
        else:
            out[release][1].append(line.split("] ", 1)[1])
    return out


def _q35_rescan_machine() -> Topology:
    """The capture's machine, as the README describes it: q35's host bridge and ICH9
    functions, two ACS root ports, slot 01:00 with the multifunction bit on function 0
    only, slot 02:00 with it on every function (endpoints without ACS)."""
    acs = Acs(
        cap=AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF,
        ctrl=AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF,
    )
    q35 = 0x1B36

    def port(dev: int, bus: int) -> PciFunction:
        return PciFunction(
            f"00:{dev:02x}.0",
            vendor=q35,
            device=0x000C,
            class_code=0x060400,
            header_type=1,
            pcie_type=PcieType.ROOT_PORT,
            acs=acs,
            secondary_bus=bus,
            subordinate_bus=bus,
        )

    def nic(address: str, multifunction: bool) -> PciFunction:
        return PciFunction(
            address,
            vendor=0x8086,
            device=0x10D3,
            class_code=0x020000,
            multifunction=multifunction,
            pcie_type=PcieType.ENDPOINT,
        )

    ich9 = [
        PciFunction(f"00:1f.{f}", vendor=0x8086, device=d, class_code=c, multifunction=f == 0)
        for f, d, c in ((0, 0x2918, 0x060100), (2, 0x2922, 0x010601), (3, 0x2930, 0x0C0500))
    ]
    return Topology([
        PciFunction("00:00.0", vendor=0x8086, device=0x29C0, class_code=0x060000),
        port(3, 1), port(4, 2), *ich9,
        nic("01:00.0", True), nic("01:00.1", False), nic("01:00.2", False),
        nic("02:00.0", True), nic("02:00.1", True),
    ])  # fmt: skip


@pytest.mark.parametrize("release", ["6.1.0-57-amd64", "7.3.4+deb13-amd64"])
def test_a_rescanned_function_is_not_yet_multifunction(release: str) -> None:
    groups, log = _rescan_capture()[release]
    boot = Scenario(
        actions=[("remove", "01:00.1"), ("remove", "02:00.1"), ("rescan",)], kernel=release
    )
    result = simulate(_q35_rescan_machine(), boot)
    assert result.strategy == "canonical"
    assert list(result.log_lines(markers=False)) == log  # 6.1 logs the removals, 7.3 does not
    assert {k: list(v) for k, v in result.grouping.groups.items()} == groups
    # at boot the slot scan had marked 01:00.1: it was in its siblings' group
    assert result.grouping.group_of("01:00.1") != result.grouping.group_of("01:00.0")


# --- the version model ---------------------------------------------------------------------------


def test_versions_parse_and_compare() -> None:
    assert KernelVersion.parse("7.3.4+deb13-arm64") == KernelVersion(7, 3)
    assert KernelVersion.parse(" v6.15 ") == KernelVersion(6, 15)
    assert KernelVersion(6, 9) < KernelVersion(6, 12) < KernelVersion(7, 0)
    for bad in ("", "seven", "6", "6.x", "1.0", "6.1" + "0" * 300):
        with pytest.raises(InvalidKernelVersion):
            KernelVersion.parse(bad)
    assert KernelVersion(7, 3) == NEWEST


def test_every_change_is_a_defined_rule_with_a_source() -> None:
    for change in CHANGES:
        assert change.rule.startswith("R")
        assert change.source
        assert change.what
        if change.since is not None and change.until is not None:
            assert change.since < change.until
        if change.after is not None:
            assert change.since is not None
            assert change.after < change.since


def test_holds_and_uncertain_follow_the_table() -> None:
    assert holds("remove-log", KernelVersion(6, 3))
    assert not holds("remove-log", KernelVersion(6, 4))
    assert not holds("device-add-arm64", KernelVersion(6, 14))
    assert holds("device-add-arm64", KernelVersion(6, 15))
    assert holds("probe-time-arm64", KernelVersion(6, 14))
    assert not holds("probe-time-arm64", KernelVersion(6, 15))
    # 7.1 lies between the 6.12 and 7.2 trees: the message change is not dated closer
    assert [c.name for c in uncertain(KernelVersion(7, 1))] == ["aliasing-streamid-message"]
    assert [c.name for c in uncertain(KernelVersion(6, 15))] == [
        "acs-at-dma-configure",
        "aliasing-streamid-message",
    ]
    assert not holds("aliasing-streamid-message", KernelVersion(7, 1))  # the older text
