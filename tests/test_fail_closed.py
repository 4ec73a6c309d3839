"""Fail closed (issue 10): damaged input never gives a wrong "isolated" verdict, a hang
or an unhandled error.

Each test here reproduces one finding of the fuzz campaign of issue 10 and failed
on the code before the fix: a device behind a bridge the input lost looked
alone on a root bus (R4.2) and separately passable; a capture listing one
device in two groups was accepted; ``check`` exited 0 knowing nothing; CR-only
line endings lost devices; a long header line, blank lines or many invalid
entries took quadratic time or memory; malformed captures escaped as
``TypeError``; sysfs opened a character device; a scenario file read any path;
stdout errors were "internal errors".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iommugroups import InputError, IommuGroupsError, Verdict, check, load, loads, read, read_text
from iommugroups._cli.app import main
from iommugroups._io import sysfs as sysfs_module
from iommugroups._io.scenario_file import load_scenario_file, loads_scenario_file

DATA = Path(__file__).parent / "data"
CAPTURE = DATA / "oracle" / "captures" / "q35-1000.json"
ARM64 = DATA / "oracle" / "arm64"

# ---------------------------------------------------------------- the machine
#: Root ports 00:1c.0/00:1c.1 of one multifunction device, without ACS; a NIC at
#: 01:00.0 and an NVMe drive at 02:00.0. The kernel makes one group of all four (R5.2:
#: the ports are functions of one device without ACS; R4.2: nothing below them is
#: isolated).
_PORT = """\
00:1c.{fn} PCI bridge [0604]: Intel Corporation Device [8086:a110] (rev f1)
	Control: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: {g}
	Bus: primary=00, secondary={bus}, subordinate={bus}, sec-latency=0
	Capabilities: [40] Express (v2) Root Port (Slot+), MSI 00
	Kernel driver in use: pcieport
"""  # noqa: E501
_NIC = """\
01:00.0 Ethernet controller [0200]: Intel Corporation I211 Gigabit Network Connection [8086:1539] (rev 03)
	Control: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: {g}
	Capabilities: [70] Express (v2) Endpoint, MSI 00
	Kernel driver in use: igb
"""  # noqa: E501
_NVME = """\
02:00.0 Non-Volatile memory controller [0108]: Samsung Electronics Co Ltd NVMe SSD Controller SM981/PM981/PM983 [144d:a808]
	Control: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: {g}
	Capabilities: [70] Express (v2) Endpoint, MSI 00
	Kernel driver in use: nvme
"""  # noqa: E501


def _machine(groups: tuple[int, int, int, int] = (7, 7, 7, 7)) -> str:
    """The issue's machine as ``lspci -vv``, the kernel's groups as given."""
    return "\n".join(
        [
            _PORT.format(fn=0, g=groups[0], bus="01"),
            _PORT.format(fn=1, g=groups[1], bus="02"),
            _NIC.format(g=groups[2]),
            _NVME.format(g=groups[3]),
        ]
    )


def _without_bus_lines(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if "Bus: primary" not in line)


def _without_ports(text: str) -> str:
    return "\n".join(b for b in text.split("\n\n") if not b.startswith("00:1c."))


def _ports_cut_to_headers(text: str) -> str:
    return "\n\n".join(
        b.splitlines()[0] if b.startswith("00:1c.") else b for b in text.split("\n\n")
    )


DAMAGES = {
    "bus-lines-deleted": _without_bus_lines,
    "bridge-blocks-deleted": _without_ports,
    "bridge-blocks-cut-to-header": _ports_cut_to_headers,
}


def test_the_undamaged_machine_is_one_group() -> None:
    reading = read_text(_machine(), "machine.txt")
    assert reading.topology is not None
    assert reading.observed is not None
    report = check(reading.topology, reading.observed, unknowns=reading.unknowns)
    assert report.verdict is Verdict.OK
    assert not [u for u in reading.unknowns if u.fact == "bridge"]


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_missing_bridge_makes_the_devices_behind_it_unknown(damage: str) -> None:
    """The NIC and the NVMe are not "alone on a root bus": an Endpoint never sits on
    one, so the input itself proves the bridge above each is missing."""
    reading = read_text(DAMAGES[damage](_machine()), "machine.txt")
    assert reading.topology is not None
    assert reading.observed is not None
    notes = {u.device: u.why for u in reading.unknowns if u.fact == "bridge"}
    assert set(notes) == {"0000:01:00.0", "0000:02:00.0"}
    assert "bus 01 has no bridge in the input" in notes["0000:01:00.0"]
    assert "Endpoint" in notes["0000:01:00.0"]
    report = check(reading.topology, reading.observed, unknowns=reading.unknowns)
    for name in ("01:00.0", "02:00.0"):
        d = report.device(name)
        assert d.verdict is Verdict.UNKNOWN, (name, d.verdict, d.reasons)
        assert any("bus 0" in r and "no bridge" in r for r in d.reasons), d.reasons


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_kernel_that_split_them_is_not_ok(damage: str) -> None:
    """Were the kernel's groups separate (a real isolation hole), the damaged input must
    not make them look right."""
    reading = read_text(DAMAGES[damage](_machine((7, 7, 8, 9))), "machine.txt")
    assert reading.topology is not None
    assert reading.observed is not None
    report = check(reading.topology, reading.observed, unknowns=reading.unknowns)
    for name in ("01:00.0", "02:00.0"):
        assert report.device(name).verdict is not Verdict.OK


def test_check_exits_3_on_a_missing_bridge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "machine.txt"
    path.write_text(_without_ports(_machine((7, 7, 8, 9))))
    assert main(["check", str(path)]) == 3
    out = capsys.readouterr().out
    assert "01:00.0" in out
    assert "no bridge" in out


def test_groups_notes_the_missing_bridge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "machine.txt"
    path.write_text(_without_ports(_machine()))
    assert main(["groups", str(path), "-v"]) == 0
    err = capsys.readouterr().err
    assert "bus 01 has no bridge in the input" in err
    assert "bus 02 has no bridge in the input" in err


def test_a_snapshot_with_a_bridge_config_null(tmp_path: Path) -> None:
    """A bridge whose config is null in a snapshot: the device below it is unknown."""
    snap = json.loads((DATA.parent.parent / "docs" / "_data" / "machine.json").read_text())
    bridges = [
        name
        for name, dev in snap["devices"].items()
        if dev["config_hex"] and dev["config_hex"][0x0E * 2 : 0x0E * 2 + 2] in ("01", "81")
    ]
    below = [
        name
        for name in snap["devices"]
        if name[5:7] != "00" and snap["devices"][name]["physfn"] is None
    ]
    assert bridges
    assert below
    for name in bridges:
        snap["devices"][name]["config_hex"] = None
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snap))
    reading = read(path)
    assert reading.topology is not None
    assert reading.observed is not None
    dark = {u.device for u in reading.unknowns if u.fact == "bridge"}
    assert dark, [str(u) for u in reading.unknowns]
    report = check(reading.topology, reading.observed, unknowns=reading.unknowns)
    for name in dark:
        assert report.device(name).verdict in (Verdict.UNKNOWN, Verdict.SPLIT)


def test_sysfs_with_a_bridge_config_unreadable(tmp_path: Path) -> None:
    """The bridges' config files cannot be read (a partial copy): the devices below
    them are unknown, not isolated."""
    from tests.test_sysfs import make_tree  # the fake-tree builder of the sysfs tests

    root = make_tree(tmp_path, "q35-1000")
    devices = root / "sys" / "bus" / "pci" / "devices"
    bridges = [
        entry
        for entry in sorted(devices.iterdir())
        if (entry / "config").read_bytes()[0x0E] & 0x7F == 1
    ]
    assert bridges
    for entry in bridges:
        (entry / "config").unlink()
    reading = read(root)
    assert reading.topology is not None
    assert reading.observed is not None
    dark = {u.device for u in reading.unknowns if u.fact == "bridge"}
    assert dark
    report = check(reading.topology, reading.observed, unknowns=reading.unknowns)
    for name in dark:
        assert report.device(name).verdict in (Verdict.UNKNOWN, Verdict.SPLIT)


# ---------------------------------------------------------------- captures
def _capture() -> dict[str, object]:
    data: dict[str, object] = json.loads(CAPTURE.read_text())
    return data


def _arm64() -> dict[str, object]:
    data: dict[str, object] = json.loads(sorted(ARM64.glob("*.json"))[0].read_text())
    return data


BAD_GROUPS = {
    "key-not-a-number": ({"x": ["0000:00:00.0"]}, "groups"),
    "members-of-mixed-types": ({"0": ["0000:00:00.0", 5]}, "groups"),
    "a-list-as-member": ({"0": [["0000:00:00.0"]]}, "groups"),
    "members-an-integer": ({"0": 5}, "groups"),
    "groups-a-list": ([1], "groups"),
    "a-device-in-two-groups": (
        {"0": ["0000:00:00.0"], "1": ["0000:00:00.0", "0000:00:01.0"]},
        "also in group",
    ),
}


@pytest.mark.parametrize("kind", ["x86", "arm64"])
@pytest.mark.parametrize("case", sorted(BAD_GROUPS))
def test_capture_groups_are_validated(kind: str, case: str) -> None:
    data = _capture() if kind == "x86" else _arm64()
    value, words = BAD_GROUPS[case]
    data["groups"] = value
    with pytest.raises(InputError, match=words) as info:
        read_text(json.dumps(data), "cap.json")
    assert info.value.path == "cap.json"


@pytest.mark.parametrize("kind", ["x86", "arm64"])
def test_capture_dmesg_not_a_list(kind: str) -> None:
    data = _capture() if kind == "x86" else _arm64()
    data["dmesg"] = 5
    with pytest.raises(InputError, match="dmesg"):
        read_text(json.dumps(data), "cap.json")


def test_check_of_a_capture_listing_a_device_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _capture()
    groups = data["groups"]
    assert isinstance(groups, dict)
    ids = sorted(groups, key=int)
    first, last = groups[ids[0]], groups[ids[-1]]
    groups[ids[-1]] = [*last, first[0]]
    path = tmp_path / "cap.json"
    path.write_text(json.dumps(data))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cap.json" in err
    assert "also in group" in err
    assert "internal error" not in err


def test_a_duplicate_platform_device_name() -> None:
    text = json.dumps(
        {
            "functions": [],
            "iommus": [{"name": "smmu", "kind": "smmuv3"}],
            "platform_devices": [
                {"name": "uart", "iommu": "smmu", "stream_ids": [1]},
                {"name": "uart", "iommu": "smmu", "stream_ids": [2]},
            ],
        }
    )
    with pytest.raises(InputError, match="uart"):
        loads(text, path="t.json")


# ---------------------------------------------------------------- check's exit status
def test_check_exits_3_when_every_verdict_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kernel log naming no device of the topology: nothing is known, exit 3."""
    topo = tmp_path / "topo.json"
    topo.write_text(
        json.dumps(
            {
                "functions": [
                    {"address": "00:00.0", "class_code": "0x060000"},
                    {"address": "00:02.0", "class_code": "0x020000", "pcie_type": "rc_end"},
                ]
            }
        )
    )
    log = tmp_path / "dmesg.txt"
    log.write_text("[    1.0] pci 0000:00:1f.0: Adding to iommu group 0\n")
    assert main(["check", str(topo), "--observed", str(log)]) == 3
    capsys.readouterr()
    assert main(["check", str(topo), "--observed", str(log), "--allow-unknown"]) == 0


# ---------------------------------------------------------------- line endings
@pytest.mark.parametrize("ending", ["\r", "\r\n"])
def test_line_endings_of_an_lspci_dump(ending: str) -> None:
    text = (CAPTURE.with_suffix(".lspci")).read_text()
    expected = read_text(text, "dump.txt").topology
    assert expected is not None
    got = read_text(text.replace("\n", ending), "dump.txt").topology
    assert got is not None
    assert len(got) == len(expected)
    assert got == expected


@pytest.mark.parametrize("ending", ["\r", "\r\n"])
def test_line_endings_of_lspci_vv(ending: str) -> None:
    text = (DATA / "oracle" / "lspci-vvv" / "q35-1000.txt").read_text()
    expected = read_text(text, "vv.txt")
    got = read_text(text.replace("\n", ending), "vv.txt")
    assert got.topology == expected.topology
    assert got.observed == expected.observed


def test_cr_only_through_load(tmp_path: Path) -> None:
    text = (CAPTURE.with_suffix(".lspci")).read_text()
    path = tmp_path / "dump.txt"
    path.write_bytes(text.replace("\n", "\r").encode())
    assert len(load(path)) == len(loads(text))


# ---------------------------------------------------------------- linear time
def _timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    try:
        fn(*args)  # type: ignore[operator]
    except IommuGroupsError:
        pass
    return time.perf_counter() - start


def test_a_long_device_header_is_not_quadratic() -> None:
    """The vendor-name splitter was quadratic: 400 KB of header took 26 s."""
    text = "00:02.0 Ethernet controller: " + "a " * 200_000 + "\n\tControl: I/O+\n"
    assert _timed(read_text, text) < 2.0


def test_blank_lines_do_not_make_the_toml_sniffing_quadratic() -> None:
    """80 KB of blank lines took 44 s in the TOML hint regex."""
    assert _timed(read_text, "\n" * 80_000 + "x") < 2.0
    assert _timed(loads, " \n" * 40_000 + "x") < 2.0


def test_many_invalid_entries_build_only_a_few_errors() -> None:
    """300,000 invalid entries: every error was built before ten were printed."""
    text = json.dumps({"functions": [{"address": "zz"}] * 300_000})
    start = time.perf_counter()
    with pytest.raises(InputError) as info:
        loads(text, path="t.json")
    assert time.perf_counter() - start < 10.0
    message = str(info.value)
    assert message.count("functions[") == 10
    assert "and at least 9990 more problems (counting stopped at 10000)" in message
    assert len(message) < 3000


def test_an_error_does_not_echo_a_huge_key() -> None:
    text = json.dumps({"functions": [], "k" * 3_000_000: 1})
    with pytest.raises(InputError) as info:
        loads(text, path="t.json")
    assert len(str(info.value)) < 1000


# ---------------------------------------------------------------- sysfs side effects
def _tree_with(tmp_path: Path, config: str) -> Path:
    root = tmp_path / "root"
    dev = root / "sys" / "devices" / "pci0000:00" / "0000:00:00.0"
    dev.mkdir(parents=True)
    devices = root / "sys" / "bus" / "pci" / "devices"
    devices.mkdir(parents=True)
    (devices / "0000:00:00.0").symlink_to("../../../devices/pci0000:00/0000:00:00.0")
    if config == "fifo":
        os.mkfifo(dev / "config")
    return root


def test_sysfs_never_opens_what_is_not_a_regular_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO (or a device node) in place of ``config`` is refused before it is opened:
    opening a watchdog or a tape node acts."""
    root = _tree_with(tmp_path, "fifo")
    opened: list[str] = []
    real_open = os.open

    def spy(path: object, flags: int, *args: object, **kwargs: object) -> int:
        opened.append(os.fsdecode(path))  # type: ignore[arg-type]
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sysfs_module.os, "open", spy)
    reading = read(root)
    assert "config" not in opened
    (note,) = [u for u in reading.unknowns if u.device == "0000:00:00.0" and u.fact == "config"]
    assert "not a regular file" in note.why


def test_sysfs_resolves_the_group_directory_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each group's directory was resolved again from the root: 260k empty groups took
    77 s. Now a walk opens each group once, relative to the groups directory."""
    root = _tree_with(tmp_path, "none")
    groups = root / "sys" / "kernel" / "iommu_groups"
    for gid in range(300):
        (groups / str(gid) / "devices").mkdir(parents=True)
    calls = 0
    real_open = os.open

    def counting(*args: object, **kwargs: object) -> int:
        nonlocal calls
        calls += 1
        return real_open(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sysfs_module.os, "open", counting)
    read(root)
    assert calls < 300 * 3


# ---------------------------------------------------------------- scenario files
def test_a_scenario_file_may_not_read_outside_its_directory(tmp_path: Path) -> None:
    scenario = tmp_path / "sub" / "s.json"
    scenario.parent.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("PASSWORD=hunter2\n")
    scenario.write_text(json.dumps({"topology_file": "../secret.txt", "firmware": "acpi"}))
    with pytest.raises(InputError, match="outside") as info:
        load_scenario_file(scenario)
    assert "hunter2" not in str(info.value)
    scenario.write_text(json.dumps({"topology_file": "/proc/self/environ"}))
    with pytest.raises(InputError, match="outside"):
        load_scenario_file(scenario)


def test_a_scenario_file_may_read_below_its_directory(tmp_path: Path) -> None:
    topo = tmp_path / "t" / "topo.json"
    topo.parent.mkdir()
    topo.write_text(json.dumps({"functions": [{"address": "00:00.0"}]}))
    sf = loads_scenario_file(
        json.dumps({"topology_file": "t/topo.json"}), path=str(tmp_path / "s.json")
    )
    assert len(sf.topology) == 1
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere.json"
    outside.write_text(topo.read_text())
    try:
        text = json.dumps({"topology_file": str(outside)})
        with pytest.raises(InputError, match="outside"):
            loads_scenario_file(text, path=str(tmp_path / "s.json"))
        sf = loads_scenario_file(text, path=str(tmp_path / "s.json"), allow_paths_outside=True)
        assert len(sf.topology) == 1
    finally:
        outside.unlink()


# ---------------------------------------------------------------- standard output
def _cli(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iommugroups", *args],
        capture_output=kwargs.pop("capture", True),  # type: ignore[arg-type]
        text=True,
        timeout=120,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


def test_stdout_full() -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "iommugroups", "groups", "--example", "desktop"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 2
    assert "internal error" not in proc.stderr
    assert "cannot write" in proc.stderr


def test_stdout_closed() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "iommugroups", "groups", "--example", "desktop"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
        close_fds=True,
        preexec_fn=lambda: os.close(1),
    )
    assert proc.returncode == 2
    assert "internal error" not in proc.stderr
    assert "standard output" in proc.stderr


def test_stdout_not_utf8(tmp_path: Path) -> None:
    topo = tmp_path / "t.json"
    topo.write_text(
        json.dumps({"functions": [{"address": "00:00.0", "vendor": "0x15cf", "device": "0x0001"}]})
    )  # Hilscher Gesellschaft f\u00fcr Systemautomation mbH
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    proc = _cli(["groups", str(topo), "--pci-ids", "bundled"], env=env)
    assert proc.returncode == 2
    assert "internal error" not in proc.stderr
    assert "cannot write" in proc.stderr
    assert "ascii" in proc.stderr


# ---------------------------------------------------------------- root buses
_UNCORE = """\
00:00.0 Host bridge [0600]: Intel Corporation Device [8086:2f00] (rev 02)
	Control: I/O- Mem- BusMaster- SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx-
	Status: Cap- 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 0

ff:0b.0 System peripheral [0880]: Intel Corporation Device [8086:2f81] (rev 02)
	Control: I/O- Mem- BusMaster- SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx-
	Status: Cap- 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 1
"""  # noqa: E501


def test_a_conventional_bus_may_be_a_root_bus_or_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Xeon's uncore bus ``ff`` holds conventional PCI devices only: another host
    bridge's root bus, or a bus whose bridge the paste lost. The input cannot tell;
    ``--root-bus ff`` says."""
    reading = read_text(_UNCORE, "xeon.txt")
    (note,) = [u for u in reading.unknowns if u.fact == "bridge"]
    assert "conventional PCI devices only" in note.why
    path = tmp_path / "xeon.txt"
    path.write_text(_UNCORE)
    assert main(["check", str(path)]) == 3
    assert main(["check", str(path), "--root-bus", "ff"]) == 0
    assert main(["check", str(path), "--root-bus", "0000:ff"]) == 0
    capsys.readouterr()
    assert main(["check", str(path), "--root-bus", "fff"]) == 2
    assert "--root-bus" in capsys.readouterr().err


def test_an_lspci_tree_declares_its_root_buses() -> None:
    """``-[0000:80]-`` is a root bus: its devices, whose types a tree does not show,
    are not below a lost bridge."""
    text = (DATA / "oracle" / "lspci-vvv" / "q35-1005.tree.txt").read_text()
    reading = read_text(text, "tree.txt")
    assert reading.topology is not None
    assert any(f.address.bus == 0x80 for f in reading.topology.functions)
    assert not [u for u in reading.unknowns if u.fact == "bridge"]


def test_a_sysfs_tree_declares_its_root_buses(tmp_path: Path) -> None:
    """The kernel's ``pciDDDD:BB`` directories name the root buses; a snapshot keeps them."""
    from tests.test_sysfs import make_tree

    root = make_tree(tmp_path, "q35-1005")
    reading = read(root)
    assert reading.topology is not None
    assert any(f.address.bus == 0x80 for f in reading.topology.functions)
    assert not [u for u in reading.unknowns if u.fact == "bridge"]
    from iommugroups import take_snapshot

    snap = take_snapshot(root)
    assert snap["root_buses"] == ["0000:00", "0000:80", "0000:90"]
    again = read_text(json.dumps(snap), "snap.json")
    assert again.topology == reading.topology
    assert again.unknowns == reading.unknowns


def test_assume_no_acs_takes_a_lost_bridge_to_have_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A switch whose root port the input lost: its downstream ports have ACS, so
    without the root port the NIC and the NVMe drive are isolated (R4.2). With the
    root port taken to have no ACS (``--assume-no-acs``), everything below it shares
    its group: a kernel that separated them made a split."""
    acs = {"cap": "SV|RR|CR|UF", "ctrl": "SV|RR|CR|UF"}

    def port(addr: str, kind: str, sec: int, sub: int, **more: object) -> dict[str, object]:
        return {
            "address": addr,
            "class_code": "0x060400",
            "header_type": 1,
            "pcie_type": kind,
            "secondary_bus": sec,
            "subordinate_bus": sub,
            **more,
        }

    functions = [
        {"address": "00:00.0", "class_code": "0x060000"},
        port("01:00.0", "upstream", 2, 4),
        port("02:00.0", "downstream", 3, 3, acs=acs, multifunction=True),
        port("02:01.0", "downstream", 4, 4, acs=acs),
        {"address": "03:00.0", "class_code": "0x020000", "pcie_type": "endpoint"},
        {"address": "04:00.0", "class_code": "0x010802", "pcie_type": "endpoint"},
    ]
    topo = tmp_path / "switch.json"
    topo.write_text(json.dumps({"functions": functions}))
    listing = tmp_path / "groups.txt"
    listing.write_text(
        "IOMMU Group 0:\n\t00:00.0\nIOMMU Group 1:\n\t01:00.0\n\t02:00.0\n\t02:01.0\n"
        "IOMMU Group 2:\n\t03:00.0\nIOMMU Group 3:\n\t04:00.0\n"
    )
    reading = read(topo)
    assert {u.device for u in reading.unknowns if u.fact == "bridge"} == {
        "0000:01:00.0",
        "0000:02:00.0",
        "0000:02:01.0",
        "0000:03:00.0",
        "0000:04:00.0",
    }
    assert main(["check", str(topo), "--observed", str(listing)]) == 3
    out = capsys.readouterr().out
    assert "03:00.0  unknown" in out
    assert main(["check", str(topo), "--observed", str(listing), "--assume-no-acs"]) == 1
    out = capsys.readouterr().out
    assert "--assume-no-acs" in out
    assert "03:00.0  split" in out


@pytest.mark.parametrize("count", ["2" + "0" * 400_000, "\u00b2", "70000", "-1"])
def test_a_scenario_vf_count_that_is_no_count(count: str) -> None:
    """The long fuzz run (``tools/fuzz.py``, scenario #57669): an ``sriov`` action whose
    count has 400,001 digits raised Python's ValueError (int() of a huge string) instead of
    an InputError; a superscript digit passes ``str.isdigit`` and fails ``int``."""
    doc = {
        "schema": "iommugroups.scenario/1",
        "name": "vf",
        "topology": {
            "functions": [
                {"address": "00:00.0", "pcie_type": "root_port", "header_type": 1,
                 "class_code": "060400", "secondary_bus": 1, "subordinate_bus": 1},
                {"address": "01:00.0", "pcie_type": "endpoint"},
            ]
        },
        "actions": [["sriov", "01:00.0", count]],
    }  # fmt: skip
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"VF count must be a whole number"):
        loads_scenario_file(json.dumps(doc), path="vf.json")
    assert time.perf_counter() - start < 2


def test_orders_vfs_count_that_is_no_count(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("\u00b2", "9" * 5000):
        assert main(["orders", "--example", "d05", "--vfs", f"000a:11:00.0={bad}"]) == 2
        err = capsys.readouterr().err
        assert "expected PF=N" in err
        assert "internal error" not in err
