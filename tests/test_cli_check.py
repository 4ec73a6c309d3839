"""The ``check``, ``snapshot`` and multi-format ``groups`` commands (exit codes 0/1/2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from iommugroups._cli.app import main

DATA = Path(__file__).parent / "data"
SEED = DATA / "seed" / "000_995015e96200a173.txt"


def _seed_log(first_line: int, tmp_path: Path) -> Path:
    """One of John Garry's two logs, as a file (lines of the seed text)."""
    lines = SEED.read_text().splitlines()[first_line - 1 : first_line + 14]
    assert all("Adding to iommu group" in x for x in lines)
    out = tmp_path / f"log{first_line}.txt"
    out.write_text("\n".join(lines) + "\n")
    return out


def test_check_exits_1_on_the_seeds_first_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """§11: built-in mlx5 left PF0, PF1 and the port in three groups: a split."""
    log = _seed_log(22, tmp_path)
    assert main(["check", "--example", "d05", "--observed", str(log)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("check: SPLIT")
    assert "000a:11:00.0" in out.split("Splits")[1]


def test_check_exits_0_on_the_seeds_second_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _seed_log(79, tmp_path)
    # no split, but the devices without a driver have no group: unknown (exit 3)
    assert main(["check", "--example", "d05", "--observed", str(log), "--json"]) == 3
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert doc["schema"] == "iommugroups.check/2"
    assert list(doc)[:2] == ["schema", "kernel"]
    assert out == json.dumps(doc, indent=2) + "\n"  # written entry by entry, as json.dumps
    # the devices no driver probed: in a canonical group, in no observed group
    (parport,) = [d for d in doc["devices"] if d["device"] == "0002:f9:00.2"]
    assert (parport["verdict"], parport["reason_kinds"]) == ("unknown", ["not-observed"])
    assert parport["observed_group"] is None


@pytest.mark.parametrize(
    "capture", sorted((DATA / "oracle" / "captures").glob("*.json"))[:6], ids=lambda p: p.stem
)
def test_check_a_capture_against_itself_is_clean(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(capture)]) == 0
    assert capsys.readouterr().out.startswith("check: OK")


def test_groups_of_a_listing_prints_the_kernels_groups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A group listing has the kernel's groups and no topology: those are printed (issue
    12: the kernel's groups first), and the note says there is nothing to predict with;
    --predicted and --json need a topology and say so."""
    listing = tmp_path / "groups.txt"
    listing.write_text("IOMMU Group 0:\n\t00:00.0 [0600]: [8086:29c0]\n")
    assert main(["groups", str(listing)]) == 0
    out, err = capsys.readouterr()
    assert out == "IOMMU Group 0:\n\t00:00.0\n"
    assert "holds no topology, so no names and no prediction" in err
    for extra in (["--predicted"], ["--json"]):
        assert main(["groups", str(listing), *extra]) == 2
        err = capsys.readouterr().err
        assert re.search(r"(carries|holds) the kernel's groups but no topology", err), err
        assert "Traceback" not in err


def test_check_without_observed_groups(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--example", "desktop"]) == 2
    assert "no observed groups" in capsys.readouterr().err


def _fake_sysfs(root: Path, *, groups: bool) -> None:
    """Two devices of capture q35-1000 in a sysfs-shaped tree."""
    data = json.loads((DATA / "oracle" / "captures" / "q35-1000.json").read_text())
    devices = root / "sys" / "bus" / "pci" / "devices"
    devices.mkdir(parents=True)
    for i, addr in enumerate(("0000:00:00.0", "0000:00:03.0")):
        d = devices / addr
        d.mkdir()
        (d / "config").write_bytes(bytes.fromhex(data["devices"][addr]["config_hex"]))
        if groups:
            g = root / "sys" / "kernel" / "iommu_groups" / str(i) / "devices"
            g.mkdir(parents=True)
            (g / addr).symlink_to(f"../../../../bus/pci/devices/{addr}")
            (d / "iommu_group").symlink_to(f"../../../../kernel/iommu_groups/{i}")


def test_groups_sysfs_without_iommu_groups_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_sysfs(tmp_path, groups=False)
    assert main(["groups", "--sysfs", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("IOMMU Group 0:")
    assert "no IOMMU groups (IOMMU off?)" in err


def test_snapshot_then_groups_and_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_sysfs(tmp_path, groups=True)
    snap = tmp_path / "snap.json"
    assert main(["snapshot", str(snap), "--sysfs", str(tmp_path)]) == 0
    assert "wrote 2 PCI devices and 2 IOMMU groups" in capsys.readouterr().err
    assert json.loads(snap.read_text())["schema"] == "iommugroups.snapshot/1"
    assert main(["groups", str(snap), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"] == [["0000:00:00.0"], ["0000:00:03.0"]]
    assert main(["check", str(snap)]) == 0


def test_groups_sysfs_of_this_machine_does_not_fail(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["groups", "--sysfs", "/"])
    err = capsys.readouterr().err
    assert status in (0, 2)
    assert "Traceback" not in err
    assert "internal error" not in err


def test_d05_tree_and_log_depend_on_missing_acs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real D05 data is an ``lspci -tv`` tree and a kernel log, no ACS bits:
    the verdicts about the Mellanox card depend on them (unknown, exit 0)
    until told the root ports have no ACS, as the thread states; then the
    first log is a split (exit 1) and the second is not (exit 0)."""
    lines = SEED.read_text().splitlines()
    tree = tmp_path / "tree.txt"
    tree.write_text("\n".join(lines[37:53]) + "\n")
    assert "lspci -tv" in lines[37]
    log1, log2 = _seed_log(22, tmp_path), _seed_log(79, tmp_path)

    assert main(["check", str(tree), "--observed", str(log1)]) == 3
    out = capsys.readouterr().out
    assert out.startswith("check: UNKNOWN")
    assert re.search(r"000a:11:00\.0\s+unknown", out)

    assert main(["check", str(tree), "--observed", str(log1), "--assume-no-acs"]) == 1
    assert "000a:11:00.1" in capsys.readouterr().out.split("Splits")[1]

    # no split; the devices no driver probed have no group: unknown (exit 3)
    assert main(["check", str(tree), "--observed", str(log2), "--assume-no-acs"]) == 3


def test_an_x86_log_is_recognised_as_device_add_grouping(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """R10.1: a log whose lines all name the bus (``pci ...: Adding``) was made
    at device add; the probe-time strategies cannot reproduce it."""
    machine = DATA / "realdata" / "p11-apple-macmini8-1-tb3-egpu"
    status = main(["check", str(machine / "lspci.txt"), "--observed", str(machine / "dmesg.txt")])
    out = capsys.readouterr().out
    assert status == 0
    line = next(x for x in out.splitlines() if x.startswith("Reproduced by:"))
    assert "device-add" in line
    assert "legacy-probe-time" not in line
    assert "every line of the log names a bus" in out


def test_a_probe_time_log_does_not_get_the_device_add_remark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["check", "--example", "d05", "--observed", str(_seed_log(22, tmp_path))])
    assert "every line of the log names a bus" not in capsys.readouterr().out
