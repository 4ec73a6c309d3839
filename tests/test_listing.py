"""Observed groups from the texts people paste: listings, ``lspci -vmm``, kernel logs.

Checked against real machines (``tests/data/realdata``, or our copies of its
files in ``tests/data/listings``: each machine's listing and its kernel log
must agree), against the oracle's real-kernel captures (``*.groups`` listings
and the ``dmesg`` lines in the JSON must give the capture's ``groups``),
against the seed thread's two D05 logs (R1.4: the log lines name the driver
bound at that moment), and by fuzzing every parser with mutated real files:
only ``InputError`` may escape.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iommugroups._errors import InputError
from iommugroups._io import listing as listing_module
from iommugroups._io.listing import (
    looks_like_dmesg,
    looks_like_listing,
    looks_like_vmm,
    read_dmesg,
    read_dmesg_boots,
    read_listing,
    read_listings,
    read_observed,
    read_vmm,
)
from iommugroups._kernel.groups import LogLine
from iommugroups._kernel.reading import Reading, Unknown

DATA = Path(__file__).parent / "data"
#: ``tests/data/realdata`` (the whole ``shared/realdata``) when present, else our copies
#: of the files used here (``tests/data/listings``, identical).
LISTINGS = next(
    d
    for d in (DATA / "realdata", DATA / "listings")
    if (d / "p20-arm64-hisilicon-d05-probe-order" / "message.txt").is_file()
)
ORACLE = DATA / "oracle"
SEED = DATA / "seed" / "000_995015e96200a173.txt"

DERIVED = sorted(LISTINGS.glob("*/groups.derived.txt"))
DMESGS = sorted(LISTINGS.glob("*/dmesg.txt"))
P18 = LISTINGS / "p18-intel-x99-i7-5930k-groups-regression" / "groups-message.txt"
D05 = LISTINGS / "p20-arm64-hisilicon-d05-probe-order" / "message.txt"
CAPTURE_LISTINGS = sorted(ORACLE.glob("*/*.groups"))
CAPTURE_JSONS = sorted(ORACLE.glob("*/*.json"))


def groups_of(reading: Reading) -> dict[int, tuple[str, ...]]:
    assert reading.observed is not None
    return dict(reading.observed.groups)


def json_groups(path: Path) -> dict[int, tuple[str, ...]]:
    data = json.loads(path.read_text())
    return {int(g): tuple(m) for g, m in data["groups"].items() if m}


def test_there_is_data() -> None:
    assert len(DERIVED) == 11
    assert len(DMESGS) == 4
    assert len(CAPTURE_LISTINGS) >= 30
    assert len(CAPTURE_JSONS) >= 60


# --- real machines ---------------------------------------------------------------


@pytest.mark.parametrize("path", DERIVED, ids=lambda p: p.parent.name)
def test_real_listing(path: Path) -> None:
    text = path.read_text()
    reading = read_listing(text, str(path))
    assert reading.source == reading.observed.source == "listing"  # type: ignore[union-attr]
    assert reading.path == str(path)
    assert reading.unknowns == ()
    headers = [line for line in text.splitlines() if line.startswith("IOMMU Group")]
    groups = groups_of(reading)
    assert len(groups) == len(headers)
    assert sum(map(len, groups.values())) == sum(len(h.split()) - 3 for h in headers)
    assert all(
        name.startswith(("0000:", "000")) and len(name) == 12
        for m in groups.values()
        for name in m
    )
    assert looks_like_listing(text)
    assert not looks_like_dmesg(text)
    assert not looks_like_vmm(text)
    assert read_observed(text, str(path)) == reading


def test_real_listing_spot_checks() -> None:
    p07 = groups_of(
        read_listing((LISTINGS / "p07-xeon-e3-pex8748-switch" / "groups.derived.txt").read_text())
    )
    assert len(p07[2]) == 21
    assert p07[2][0] == "0000:00:01.0"
    assert p07[2][-1] == "0000:0c:00.0"
    p11 = groups_of(
        read_listing(
            (LISTINGS / "p11-apple-macmini8-1-tb3-egpu" / "groups.derived.txt").read_text()
        )
    )
    assert len(p11[1]) == 29
    assert "0000:7e:00.0" in p11[1]


@pytest.mark.parametrize("path", DMESGS, ids=lambda p: p.parent.name)
def test_real_dmesg_agrees_with_the_listing(path: Path) -> None:
    """Each machine's kernel log gives the groups its lspci (or log) listing shows."""
    text = path.read_text()
    reading = read_dmesg(text, str(path))
    assert reading.source == "dmesg"
    assert reading.unknowns == ()
    assert reading.kernel is not None
    assert reading.kernel[0].isdigit()
    listing = read_listing((path.parent / "groups.derived.txt").read_text())
    assert groups_of(reading) == groups_of(listing)
    assert reading.observed is not None
    log = reading.observed.log
    assert len(log) == text.count("Adding to iommu group")
    assert all(line.prefix == "pci" and line.action == "add" for line in log)
    assert looks_like_dmesg(text)
    assert not looks_like_listing(text)
    assert not looks_like_vmm(text)
    assert read_observed(text, str(path)) == reading


def test_dmesg_minus_T_timestamps() -> None:
    reading = read_dmesg((LISTINGS / "p11-apple-macmini8-1-tb3-egpu" / "dmesg.txt").read_text())
    assert reading.kernel == "6.17.0-19-generic"
    assert reading.observed is not None
    assert reading.observed.log[0] == LogLine("pci", "0000:00:00.0", 0)


class TestP18TwoKernels:
    """A bug report with four listings: two excerpts, then 5.8's and 5.9's in full."""

    text = P18.read_text()

    def test_four_listings(self) -> None:
        readings = read_listings(self.text, str(P18))
        assert [len(groups_of(r)) for r in readings] == [3, 1, 45, 36]
        first, second, v58, v59 = map(groups_of, readings)
        assert first[40] == ("0000:08:01.0", "0000:09:00.0")
        assert v58[40] == first[40]
        assert v58[43] == first[43]
        assert v58[44] == first[44]
        assert v59[29] == second[29]
        assert len(v59[29]) == 11
        assert v59[29][0] == "0000:00:1c.0"
        assert v58[29] == ("0000:00:1c.0",)
        assert sum(map(len, v58.values())) == sum(map(len, v59.values())) == 94
        # wrapped device lines: the continuation is skipped, the device is kept
        assert v58[5][:2] == ("0000:ff:13.0", "0000:ff:13.1")

    def test_read_listing_refuses_disagreeing_listings(self) -> None:
        with pytest.raises(InputError, match="disagree") as info:
            read_listing(self.text, str(P18))
        assert info.value.line is not None
        assert "read_listings" in info.value.problem


class TestD05Seed:
    """The seed thread's two D05 logs (R1.4: the prefix is the driver bound at that moment)."""

    FIRST: ClassVar[list[tuple[str, str, int]]] = [
        ("hisi_sas_v2_hw", "HISI0162:01", 0),
        ("hns_dsaf", "HISI00B2:00", 1),
        ("mlx5_core", "000a:11:00.0", 2),
        ("mlx5_core", "000a:11:00.1", 3),
        ("ehci-platform", "PNP0D20:00", 4),
        ("pcieport", "0002:f8:00.0", 5),
        ("pcieport", "0004:88:00.0", 6),
        ("pcieport", "0005:78:00.0", 7),
        ("pcieport", "000a:10:00.0", 8),
        ("pcieport", "000c:20:00.0", 9),
        ("pcieport", "000d:30:00.0", 10),
        ("serial", "0002:f9:00.0", 5),
        ("serial", "0002:f9:00.1", 5),
        ("mlx5_core", "000a:11:00.2", 8),
        ("mlx5_core", "000a:11:00.3", 8),
    ]
    SECOND: ClassVar[list[tuple[str, str, int]]] = [
        ("hisi_sas_v2_hw", "HISI0162:01", 0),
        ("hns_dsaf", "HISI00B2:00", 1),
        ("ehci-platform", "PNP0D20:00", 2),
        ("pcieport", "0002:f8:00.0", 3),
        ("pcieport", "0004:88:00.0", 4),
        ("pcieport", "0005:78:00.0", 5),
        ("pcieport", "000a:10:00.0", 6),
        ("pcieport", "000c:20:00.0", 7),
        ("pcieport", "000d:30:00.0", 8),
        ("serial", "0002:f9:00.0", 3),
        ("serial", "0002:f9:00.1", 3),
        ("mlx5_core", "000a:11:00.0", 6),
        ("mlx5_core", "000a:11:00.1", 6),
        ("mlx5_core", "000a:11:00.2", 6),
        ("mlx5_core", "000a:11:00.3", 6),
    ]

    def test_two_logs(self) -> None:
        first, second = read_dmesg_boots(D05.read_text(), str(D05))
        assert first.observed is not None
        assert second.observed is not None
        assert list(first.observed.log) == [LogLine(*x) for x in self.FIRST]
        assert list(second.observed.log) == [LogLine(*x) for x in self.SECOND]
        # built in: the PFs got groups of their own before their port had one
        assert first.observed.groups[2] == ("000a:11:00.0",)
        assert first.observed.groups[8] == ("000a:10:00.0", "000a:11:00.2", "000a:11:00.3")
        # as a module: everything below the port shares its group
        assert second.observed.groups[6] == (
            "000a:10:00.0",
            "000a:11:00.0",
            "000a:11:00.1",
            "000a:11:00.2",
            "000a:11:00.3",
        )
        assert first.unknowns == second.unknowns == ()

    def test_read_dmesg_takes_the_last_and_says_so(self) -> None:
        reading = read_dmesg(D05.read_text())
        assert reading.observed is not None
        assert list(reading.observed.log) == [LogLine(*x) for x in self.SECOND]
        (note,) = reading.unknowns
        assert note.fact == "log"
        assert "2 boots" in note.why
        assert "timestamps restart" in note.why

    def test_the_archived_thread(self) -> None:
        """The whole thread quotes the logs again: the first two boots are the D05's."""
        boots = read_dmesg_boots(SEED.read_text())
        assert len(boots) >= 2
        assert [list(b.observed.log) for b in boots[:2]] == [  # type: ignore[union-attr]
            [LogLine(*x) for x in self.FIRST],
            [LogLine(*x) for x in self.SECOND],
        ]


# --- the oracle's captures ------------------------------------------------------------


@pytest.mark.parametrize("path", CAPTURE_LISTINGS, ids=lambda p: p.stem)
def test_capture_listing(path: Path) -> None:
    reading = read_listing(path.read_text(), str(path))
    assert groups_of(reading) == json_groups(path.with_suffix(".json"))


@pytest.mark.parametrize("path", CAPTURE_JSONS, ids=lambda p: p.stem)
def test_capture_dmesg(path: Path) -> None:
    """The capture's log lines (adds, and removes in the arm64 scenarios) give its groups."""
    data: dict[str, Any] = json.loads(path.read_text())
    text = "\n".join(data["dmesg"])
    reading = read_dmesg(text, str(path))
    assert groups_of(reading) == json_groups(path)
    assert reading.unknowns == ()
    assert reading.observed is not None
    assert len(reading.observed.log) == sum(
        ("Adding to iommu group" in line or "Removing from iommu group" in line)
        for line in data["dmesg"]
    )


# --- listing forms -------------------------------------------------------------------


class TestListingForms:
    def test_header_then_devices(self) -> None:
        text = (
            "IOMMU Group 1:\n"
            "\t00:01.0 PCI bridge [0604]: Intel Corporation 6th-10th Gen Core Processor PCIe "
            "Controller (x16) [8086:1901] (rev 05)\n"
            "\t01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GP107 [10de:1c82]\n"
            "IOMMU Group 2:\n"
            "    00:02.0 [0300]: [8086:3e9b]\n"
        )
        assert groups_of(read_listing(text)) == {
            1: ("0000:00:01.0", "0000:01:00.0"),
            2: ("0000:00:02.0",),
        }

    def test_one_line_per_device(self) -> None:
        text = (
            "IOMMU Group 1 00:01.0 PCI bridge [0604]: Intel Corporation Xeon E3-1200 v5/E3-1500 "
            "v5/6th Gen Core Processor PCIe Controller (x16) [8086:1901] (rev 07)\n"
            "IOMMU Group 1 01:00.0 VGA compatible controller [0300]: NVIDIA [10de:1b80] (rev a1)\n"
            "IOMMU Group 10 0000:00:1f.0 ISA bridge [0601]: Intel [8086:a145] (rev 31)\n"
        )
        assert groups_of(read_listing(text)) == {
            1: ("0000:00:01.0", "0000:01:00.0"),
            10: ("0000:00:1f.0",),
        }

    def test_one_line_per_group(self) -> None:
        text = "IOMMU Group 2: 00:01.0 00:01.1 01:00.0\nIOMMU Group 3: 10000:e0:01.1\n"
        assert groups_of(read_listing(text)) == {
            2: ("0000:00:01.0", "0000:00:01.1", "0000:01:00.0"),
            3: ("10000:e0:01.1",),
        }

    def test_find_and_ls(self) -> None:
        find = (
            "/sys/kernel/iommu_groups/0/devices/0000:00:00.0\n"
            "/sys/kernel/iommu_groups/1/devices/0000:00:01.0\n"
            "/sys/kernel/iommu_groups/1/devices/0000:01:00.0\n"
            "/sys/kernel/iommu_groups/5/devices/HISI0162:01\n"
        )
        ls = (
            "/sys/kernel/iommu_groups/0/devices:\n0000:00:00.0\n\n"
            "/sys/kernel/iommu_groups/1/devices:\n0000:00:01.0  0000:01:00.0\n\n"
            "/sys/kernel/iommu_groups/5/devices:\nHISI0162:01\n"
        )
        expected = {0: ("0000:00:00.0",), 1: ("0000:00:01.0", "0000:01:00.0"), 5: ("HISI0162:01",)}
        assert groups_of(read_listing(find)) == expected
        assert groups_of(read_listing(ls)) == expected
        assert looks_like_listing(find)
        assert looks_like_listing(ls)

    def test_paths_bom_crlf_nbsp(self) -> None:
        text = (
            "\ufeffIOMMU Group 7:\r\n"
            "\xa0\xa0\xa0\xa000:1c.0/02:00.0 Network controller [0280]: Intel Wi-Fi\r\n"
            "\t0000:00:1c.4/03:00.0 NVMe\r\n"
        )
        assert groups_of(read_listing(text)) == {7: ("0000:02:00.0", "0000:03:00.0")}

    def test_prose_and_empty_groups(self) -> None:
        text = (
            "My groups:\n\nIOMMU Group 1:\nIOMMU Group 29 is the problem\n"
            "IOMMU Group 2:\n\t00:02.0 VGA\n"
        )
        reading = read_listing(text)
        assert groups_of(reading) == {2: ("0000:00:02.0",)}
        assert reading.unknowns == (
            Unknown("", "group", "line 3: IOMMU group 1 lists no devices"),
        )

    def test_agreeing_listings_merge(self) -> None:
        text = "IOMMU Group 1:\n\t00:01.0\n\nand then\n\nIOMMU Group 2:\n\t00:02.0\n"
        assert len(read_listings(text)) == 2
        assert groups_of(read_listing(text)) == {1: ("0000:00:01.0",), 2: ("0000:00:02.0",)}

    def test_device_in_two_groups(self) -> None:
        with pytest.raises(InputError, match="in one group") as info:
            read_listing("IOMMU Group 1: 00:01.0\nIOMMU Group 2: 00:01.0\n", "g.txt")
        assert (info.value.path, info.value.line) == ("g.txt", 2)

    @pytest.mark.parametrize(
        "text",
        ["", "hello\n", "IOMMU Group 1:\n", "IOMMU Groups are great\n", "00:01.0 PCI bridge\n"],
    )
    def test_no_listing(self, text: str) -> None:
        with pytest.raises(InputError, match="no IOMMU group listing"):
            read_listing(text)
        assert not looks_like_listing(text)

    def test_group_id_out_of_range(self) -> None:
        with pytest.raises(InputError, match="out of range"):
            read_listing("IOMMU Group 99999999999:\n\t00:01.0\n")


# --- lspci -vmm ---------------------------------------------------------------------

VMM = """\
Slot:\t0000:00:00.0
Class:\tHost bridge [0600]
Vendor:\tIntel Corporation [8086]
Device:\t8th Gen Core Processor Host Bridge/DRAM Registers [3e10]
Rev:\t07
Driver:\tskl_uncore
IOMMUGroup:\t1

Slot:\t0000:00:01.0
Class:\tPCI bridge [0604]
Vendor:\tIntel Corporation [8086]
Device:\t6th-10th Gen Core Processor PCIe Controller (x16) [1901]
Driver:\tpcieport
IOMMUGroup:\t2

Slot:\t0000:01:00.0
Class:\tVGA compatible controller [0300]
Vendor:\tNVIDIA Corporation [10de]
Device:\tTU117M [1f91]
IOMMUGroup:\t2

Slot:\t0000:00:00.2
Class:\tIOMMU [0806]
Vendor:\tAdvanced Micro Devices, Inc. [AMD] [1022]
Device:\tRenoir IOMMU [1631]
"""


class TestVmm:
    def test_groups(self) -> None:
        reading = read_vmm(VMM, "vmm.txt")
        assert reading.source == "lspci-vmm"
        assert groups_of(reading) == {1: ("0000:00:00.0",), 2: ("0000:00:01.0", "0000:01:00.0")}
        assert reading.unknowns == (
            Unknown(
                "0000:00:00.2",
                "group",
                "line 22: no IOMMUGroup line (the kernel gave it no group)",
            ),
        )
        assert looks_like_vmm(VMM)
        assert not looks_like_listing(VMM)
        assert not looks_like_dmesg(VMM)
        assert read_observed(VMM, "vmm.txt") == reading

    def test_without_domain_and_old_device_key(self) -> None:
        text = "Device:\t00:02.0\nClass:\tVGA\nIOMMUGroup:\t0\n\nSlot:\t01:00.0\nIOMMUGroup:\t3\n"
        assert groups_of(read_vmm(text)) == {0: ("0000:00:02.0",), 3: ("0000:01:00.0",)}

    def test_no_groups_at_all(self) -> None:
        text = (
            "\n\n".join(block for block in VMM.split("\n\n"))
            .replace("IOMMUGroup:\t1\n", "")
            .replace("IOMMUGroup:\t2\n", "")
        )
        reading = read_vmm(text)
        assert reading.observed is None
        assert reading.unknowns[0].fact == "group"
        assert "IOMMU is off" in reading.unknowns[0].why

    @pytest.mark.parametrize(
        ("text", "match"),
        [
            ("Class:\tVGA\n", "no 'Slot:'"),
            ("Slot:\tnonsense\n", "not a PCI address"),
            ("Slot:\t00:02.0\nIOMMUGroup:\tabc\n", "not a group number"),
            (
                "Slot:\t00:02.0\nIOMMUGroup:\t1\n\nSlot:\t00:02.0\nIOMMUGroup:\t2\n",
                "has IOMMUGroup",
            ),
        ],
    )
    def test_errors(self, text: str, match: str) -> None:
        with pytest.raises(InputError, match=match):
            read_vmm(text)


# --- kernel logs ------------------------------------------------------------------------


class TestDmesgForms:
    def test_old_format(self) -> None:
        """R1.4: before Linux 5.1, ``iommu: Adding device <dev> to group <n>``."""
        text = (
            "[    0.915123] iommu: Adding device 0000:00:00.0 to group 0\n"
            "[    0.915200] iommu: Adding device 0000:00:01.0 to group 1\n"
            "[    0.915300] iommu: Adding device 0000:01:00.0 to group 1\n"
            "[   30.000000] iommu: Removing device 0000:01:00.0 from group 1\n"
        )
        reading = read_dmesg(text)
        assert groups_of(reading) == {0: ("0000:00:00.0",), 1: ("0000:00:01.0",)}
        assert reading.observed is not None
        assert reading.observed.log[0] == LogLine("", "0000:00:00.0", 0)
        assert reading.observed.log[-1] == LogLine("", "0000:01:00.0", 1, "remove")
        assert [u.fact for u in reading.unknowns] == ["driver"]
        assert looks_like_dmesg(text)

    def test_removal_frees_the_id(self) -> None:
        """R1.2: a group's id is reused once its last device is removed."""
        text = (
            "pci 0000:00:01.0: Adding to iommu group 0\n"
            "pci 0000:00:02.0: Adding to iommu group 1\n"
            "pci 0000:00:01.0: Removing from iommu group 0\n"
            "e1000e 0000:00:03.0: Adding to iommu group 0\n"
        )
        reading = read_dmesg(text)
        assert groups_of(reading) == {0: ("0000:00:03.0",), 1: ("0000:00:02.0",)}
        assert reading.unknowns == ()

    @pytest.mark.parametrize(
        "line",
        [
            "pci 0000:00:1c.0: Adding to iommu group 7",
            "[    7.049557] pci 0000:00:1c.0: Adding to iommu group 7",
            "[Di Mär 24 06:42:54 2026] pci 0000:00:1c.0: Adding to iommu group 7",
            "<6>[    7.049557] pci 0000:00:1c.0: Adding to iommu group 7",
            "Jan 27 10:00:01 host kernel: [    7.04] pci 0000:00:1c.0: Adding to iommu group 7",
            "Jan 27 10:00:01 host kernel: pci 0000:00:1c.0: Adding to iommu group 7",
            "2025-01-27T10:00:01+0100 host kernel: pci 0000:00:1c.0: Adding to iommu group 7",
            "kern  :info  : [    7.049557] pci 0000:00:1c.0: Adding to iommu group 7",
            "> [    7.049557] pci 0000:00:1c.0: Adding to iommu group 7",
            "pci 0000:00:1c.0: Adding to iommu group 7\r",
        ],
    )
    def test_line_decorations(self, line: str) -> None:
        reading = read_dmesg(line + "\n")
        assert reading.observed is not None
        assert list(reading.observed.log) == [LogLine("pci", "0000:00:1c.0", 7)]

    def test_boots_split_on_banner(self) -> None:
        text = (
            "[    0.000000] Linux version 5.4.0-1 (builder@host) (gcc 9)\n"
            "[    0.5] pci 0000:00:00.0: Adding to iommu group 0\n"
            "[    0.000000] Linux version 5.15.0-2 (builder@host) (gcc 11)\n"
            "[    0.5] pci 0000:00:00.0: Adding to iommu group 4\n"
        )
        boots = read_dmesg_boots(text)
        assert [groups_of(b) for b in boots] == [{0: ("0000:00:00.0",)}, {4: ("0000:00:00.0",)}]
        assert [b.kernel for b in boots] == ["5.4.0-1", "5.15.0-2"]
        last = read_dmesg(text)
        assert groups_of(last) == {4: ("0000:00:00.0",)}
        assert "2 boots" in last.unknowns[0].why
        assert "banner" in last.unknowns[0].why

    def test_added_again_without_removal(self) -> None:
        """Recent kernels log no removal: a device added again was hot-removed first."""
        text = (
            "[    0.4] pci 0000:00:01.0: Adding to iommu group 2\n"
            "[    0.4] pci 0000:0c:00.0: Adding to iommu group 2\n"
            "[    0.4] pci 0000:0d:00.0: Adding to iommu group 3\n"
            "[  866.6] pci 0000:0c:00.0: Adding to iommu group 2\n"
            "[  953.3] pci 0000:0d:00.0: Adding to iommu group 2\n"
        )
        (reading,) = read_dmesg_boots(text)
        assert groups_of(reading) == {2: ("0000:00:01.0", "0000:0c:00.0", "0000:0d:00.0")}
        (note,) = reading.unknowns
        assert note.device == "0000:0d:00.0"
        assert "was in group 3" in note.why

    def test_real_hotplug_report(self) -> None:
        """p07: an AMC card hot-plugged twice; the log has no removal lines."""
        path = LISTINGS / "p07-xeon-e3-pex8748-switch" / "report.txt"
        boots = read_dmesg_boots(path.read_text(), str(path))
        assert len(boots) == 1
        (reading,) = boots
        assert reading.unknowns == ()
        groups = groups_of(reading)
        assert "0000:0c:00.0" in groups[2]
        assert "0000:0a:00.0" in groups[2]
        # every group lspci showed (earlier, with the card in its first slot) is in the log
        listing = groups_of(read_listing((path.parent / "groups.derived.txt").read_text()))
        for gid, members in listing.items():
            assert set(members) <= set(groups[gid])

    def test_odd_removals(self) -> None:
        text = (
            "pci 0000:00:01.0: Adding to iommu group 0\n"
            "pci 0000:00:01.0: Removing from iommu group 3\n"
            "pci 0000:00:02.0: Removing from iommu group 1\n"
        )
        reading = read_dmesg(text)
        assert reading.observed is not None
        assert dict(reading.observed.groups) == {}
        assert [u.device for u in reading.unknowns] == ["0000:00:01.0", "0000:00:02.0"]

    @pytest.mark.parametrize(
        ("text", "match"),
        [
            ("[    0.0] Linux version 6.1 (x) (y)\nnothing here\n", "no 'Adding to iommu group'"),
            ("pci 0000:00:01.0: Adding to iommu group 99999999999\n", "out of range"),
            ("pci 0000:00:01.0: Adding to iommu group 1\0\n", "binary"),
        ],
    )
    def test_errors(self, text: str, match: str) -> None:
        with pytest.raises(InputError, match=match):
            read_dmesg(text)

    def test_too_large(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(listing_module, "MAX_TEXT_CHARS", 100)
        with pytest.raises(InputError, match="larger than"):
            read_dmesg("pci 0000:00:01.0: Adding to iommu group 1\n" * 10)


def test_read_observed_refuses_other_text() -> None:
    with pytest.raises(InputError, match="no IOMMU groups found"):
        read_observed("just some prose\n")
    assert not looks_like_dmesg("\0binary")
    assert not looks_like_listing("\0")


# --- fuzzing --------------------------------------------------------------------------------


def _sample(path: Path, limit: int = 20000) -> str:
    """A real file, cut around its interesting part to keep the fuzzing fast."""
    text = path.read_text()
    start = max(0, text.find("iommu group") - limit // 2)
    return text[start : start + limit]


SAMPLES = [
    _sample(p)
    for p in [*DERIVED[:3], *DMESGS[:2], P18, D05, CAPTURE_LISTINGS[0], CAPTURE_JSONS[-1]]
] + [VMM]

TOKENS = [
    "IOMMU Group ",
    "IOMMU Group 4294967296:",
    ": Adding to iommu group ",
    ": Removing from iommu group ",
    "iommu: Adding device ",
    " to group ",
    "Linux version 6.1 (",
    "Slot:\t",
    "IOMMUGroup:\t",
    "/sys/kernel/iommu_groups/",
    "/devices/",
    "/devices:",
    "0000:00:1c.0",
    "10000:e0:01.1",
    "00:1f.7/01:00.0",
    "ffffffff:ff:1f.7",
    "[ 12.5] ",
    "[99999999999.9] ",
    "\t",
    "\n",
    "\r",
    "\xa0",
    "\ufeff",
    "\u2028",
    "²",
    "٣",
    "99999999999999",
    ":",
    ".",
]

_PAYLOAD = st.lists(st.sampled_from(TOKENS) | st.text(max_size=6), max_size=6).map("".join)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SAMPLES))
    for _ in range(draw(st.integers(1, 6))):
        n = len(text)
        kind = draw(st.sampled_from(["insert", "delete", "replace", "dup-line", "truncate"]))
        pos = draw(st.integers(0, n))
        if kind == "insert":
            text = text[:pos] + draw(_PAYLOAD) + text[pos:]
        elif kind == "delete":
            text = text[:pos] + text[pos + draw(st.integers(0, 200)) :]
        elif kind == "replace":
            end = pos + draw(st.integers(0, 20))
            text = text[:pos] + draw(_PAYLOAD) + text[end:]
        elif kind == "dup-line":
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
            text = "\n".join(lines)
        else:
            text = text[:pos]
    return text


PARSERS: list[Callable[[str], object]] = [
    read_listing,
    read_listings,
    read_vmm,
    read_dmesg,
    read_dmesg_boots,
    read_observed,
    looks_like_listing,
    looks_like_dmesg,
    looks_like_vmm,
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mutated())
def test_fuzz_only_input_errors(text: str) -> None:
    """Every reader either reads a mutated real file or raises ``InputError``."""
    for parse in PARSERS:
        try:
            result = parse(text)
        except InputError:
            continue
        if isinstance(result, Reading):
            assert result.observed is None or all(result.observed.groups.values())


@pytest.mark.parametrize(
    "text",
    [
        "a" * 200_000 + " group",
        "Slot: a" + " " * 200_000 + "b group",
        ("x" * 100 + " ") * 2000 + ": Adding to iommu group 1",
        ("[" + " " * 50) * 4000 + "group",
        ("iommu: Adding device " + "a" * 200 + " ") * 1000 + "to group 1",
        " " * 200_000 + "iommu_groups/1/devices/x",
        "Key:" + " " * 200_000 + "x",
    ],
    ids=["token", "spaces", "prefixes", "brackets", "old-format", "find", "vmm"],
)
def test_long_hostile_lines_are_linear(text: str) -> None:
    """No regular expression backtracks quadratically on a long line."""
    start = time.monotonic()
    for parse in PARSERS:
        try:
            parse(text)
        except InputError:
            pass
    assert time.monotonic() - start < 5
