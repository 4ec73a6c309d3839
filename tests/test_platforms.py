"""x86 platforms and pastes as users have them (R1.9, R3.1, R11).

Every fixture here is written by hand from the kernel source, not copied from
a real machine: what ``lspci`` prints for such a device (``ls-caps.c``), and
what the kernel does with it (the rule each test names). The group numbers
the fixtures carry are the ones the named rules give.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from iommugroups import (
    InputError,
    IommuUnit,
    Platform,
    Topology,
    Verdict,
    VmdDomain,
    canonical_groups,
    check,
    explain,
    make_context,
    pci_for_each_dma_alias,
    read,
    read_text,
)
from iommugroups._cli.app import main
from iommugroups._io.lspci_hex import read_lspci_hex
from iommugroups._io.pci_ids_file import ENV_VAR, choose_pci_ids, load_pci_ids
from iommugroups._kernel.pci_ids import bundled_database, using_database
from iommugroups._kernel.vtd import device_lookup_iommu, dmar_drhd_units
from iommugroups._kernel.x86 import platform_iommu, x86_view

from .helpers import ISOLATING, bridge, ep
from .test_config import Cfg
from .test_lspci_hex import block

# ===================================================================== Intel VMD
#: A Tiger Lake laptop with RST (VMD) on: the NVMe drive sits in VMD domain
#: 10000 behind the VMD endpoint 00:0e.0 (vmd_ids[] holds 8086:9a0b). The
#: kernel's groups: per DMAR unit since v6.1 (R1.9), the graphics unit first;
#: the VMD domain's devices do their DMA as the endpoint (R3.1), so they join
#: its group.
VMD_LAPTOP = """\
0000:00:00.0 Host bridge [0600]: Intel Corporation 11th Gen Core Processor Host Bridge/DRAM Registers [8086:9a14] (rev 01)
	Control: I/O- Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx-
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort+ >SERR- <PERR- INTx-
	IOMMU group: 1
	Capabilities: [e0] Vendor Specific Information: Len=10 <?>
	Kernel driver in use: tgl_uncore

0000:00:02.0 VGA compatible controller [0300]: Intel Corporation TigerLake-LP GT2 [Iris Xe Graphics] [8086:9a49] (rev 01) (prog-if 00 [VGA controller])
	Control: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 0
	Capabilities: [40] Vendor Specific Information: Len=0c <?>
	Capabilities: [70] Express (v2) Root Complex Integrated Endpoint, MSI 00
	Kernel driver in use: i915

0000:00:0e.0 RAID bus controller [0104]: Intel Corporation Volume Management Device NVMe RAID Controller [8086:9a0b]
	Control: I/O- Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx-
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 2
	Capabilities: [80] MSI-X: Enable+ Count=19 Masked-
	Capabilities: [90] Express (v2) Root Complex Integrated Endpoint, MSI 00
	Kernel driver in use: vmd

10000:e0:06.0 PCI bridge [0604]: Intel Corporation 11th Gen Core Processor PCIe Controller [8086:9a09] (rev 01) (prog-if 00 [Normal decode])
	Control: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 2
	Bus: primary=e0, secondary=e1, subordinate=e1, sec-latency=0
	Capabilities: [40] Express (v2) Root Port (Slot+), MSI 00
	Kernel driver in use: pcieport

10000:e1:00.0 Non-Volatile memory controller [0108]: Samsung Electronics Co Ltd NVMe SSD Controller PM9A1/PM9A3/980PRO [144d:a80a] (prog-if 02 [NVM Express])
	Control: I/O- Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 2
	Capabilities: [70] Express (v2) Endpoint, MSI 00
	Kernel driver in use: nvme
"""  # noqa: E501


class TestVmd:
    """R3.1, R11.1: a device in a VMD domain does its DMA as the VMD endpoint."""

    def test_the_domain_is_paired_with_its_endpoint(self) -> None:
        reading = read_text(VMD_LAPTOP, "vmd-laptop.txt")
        assert reading.topology is not None
        assert reading.topology.platform.vmd == (VmdDomain(0x10000, "0000:00:0e.0"),)
        assert any(u.fact == "assumed" and "VMD" in u.why for u in reading.unknowns)

    def test_the_dma_aliases_are_the_endpoints(self) -> None:
        # R3.1 pci_real_dma_dev: pci_for_each_dma_alias starts from the VMD
        # endpoint, whose id 00:0e.0 is the only one the NVMe drive DMAs as
        reading = read_text(VMD_LAPTOP, "vmd-laptop.txt")
        assert reading.topology is not None
        ctx = make_context(reading.topology)
        nvme = reading.topology.get("10000:e1:00.0")
        seen = [(str(d.address), rid) for d, rid in pci_for_each_dma_alias(nvme, ctx)]
        assert seen == [("0000:00:0e.0", 0x0E << 3)]
        endpoint = reading.topology.get("00:0e.0")
        assert [rid for _d, rid in pci_for_each_dma_alias(endpoint, ctx)] == [0x0E << 3]

    def test_groups_and_their_numbers_are_the_kernels(self) -> None:
        reading = read_text(VMD_LAPTOP, "vmd-laptop.txt")
        assert reading.topology is not None
        assert reading.observed is not None
        predicted = canonical_groups(reading.topology, record=True)
        assert dict(predicted.groups) == dict(reading.observed.groups)
        d = predicted.decisions["10000:e1:00.0"]
        assert (d.how, d.rule, d.via, d.pdev) == ("vmd", "R3.1", "0000:00:0e.0", "0000:00:0e.0")

    def test_check_is_ok_and_explain_names_the_endpoint(self) -> None:
        reading = read_text(VMD_LAPTOP, "vmd-laptop.txt")
        assert reading.topology is not None
        assert reading.observed is not None
        assert check(reading.topology, reading.observed).verdict is Verdict.OK
        why = explain(reading.topology, "10000:e1:00.0")
        assert why.joined == "vmd"
        assert why.chain[0].rule == "R3.1"
        assert "VMD endpoint 0000:00:0e.0" in why.chain[0].text

    def test_before_v5_6_a_device_behind_a_vmd_has_no_group(self) -> None:
        reading = read_text(VMD_LAPTOP, "vmd-laptop.txt")
        assert reading.topology is not None
        old = canonical_groups(reading.topology, kernel="5.4.0-42-generic")
        assert old.group_of("10000:e1:00.0") is None
        assert "before v5.6" in old.ungrouped["10000:e1:00.0"]

    def test_an_endpoint_without_a_domain_pairing_makes_the_verdict_unknown(self) -> None:
        """Two VMD domains, one endpoint: which endpoint is whose is not known."""
        second = VMD_LAPTOP.replace("10000:e1:00.0", "10001:e1:00.0")
        reading = read_text(second, "two-domains.txt")
        assert reading.topology is not None
        assert reading.observed is not None
        assert reading.topology.platform.vmd == ()
        assert {u.device for u in reading.unknowns if u.fact == "vmd"} == {
            "10000:e0:06.0",
            "10001:e1:00.0",
        }
        report = check(reading.topology, reading.observed)
        assert not report.has_split
        assert report.device("10001:e1:00.0").verdict is Verdict.UNKNOWN
        assert any("VMD endpoint" in r for r in report.device("10001:e1:00.0").reasons)

    def test_sysfs_domain_link(self, tmp_path: Path) -> None:
        """The endpoint's ``domain`` link (vmd_enable_domain) pairs them exactly."""
        vmd = Cfg(256, vendor=0x8086, device=0x9A0B).klass(0x010400).header(0)
        port = Cfg(256, vendor=0x8086, device=0x9A09).klass(0x060400).header(1)
        port.u8(0x18, 0xE0).u8(0x19, 0xE1).u8(0x1A, 0xE1).caps(0x40).pcie(0x40, 4)
        nvme = Cfg(256, vendor=0x144D, device=0xA80A).klass(0x010802).header(0)
        nvme.caps(0x40).pcie(0x40, 0)
        devices = {"0000:00:0e.0": vmd, "10000:e0:06.0": port, "10000:e1:00.0": nvme}
        root = _sysfs(tmp_path, devices, links={"0000:00:0e.0": ("domain", "../pci10000:e0")})
        reading = read(root)
        assert reading.topology is not None
        assert reading.topology.platform.vmd == (VmdDomain(0x10000, "0000:00:0e.0"),)
        assert not any(u.fact == "assumed" for u in reading.unknowns)
        groups = canonical_groups(reading.topology)
        assert groups.same_group("0000:00:0e.0", "10000:e1:00.0")

    def test_the_vmd_domain_round_trips_through_a_topology_file(self) -> None:
        from iommugroups import dumps_topology, loads

        reading = read_text(VMD_LAPTOP, "vmd-laptop.txt")
        assert reading.topology is not None
        for fmt in ("json", "toml"):
            again = loads(dumps_topology(reading.topology, fmt), fmt=fmt)
            assert again == reading.topology
            assert again.get("0000:00:02.0").revision == 1


def _sysfs(
    base: Path,
    devices: dict[str, Cfg],
    *,
    links: dict[str, tuple[str, str]] | None = None,
    iommus: dict[str, tuple[list[str], str | None]] | None = None,
) -> Path:
    """A minimal ``/sys`` with these devices (no groups), links and ``class/iommu``."""
    root = base / "root"
    sys_dir = root / "sys"
    (sys_dir / "bus" / "pci" / "devices").mkdir(parents=True)
    for addr, cfg in devices.items():
        domain, bus = addr.rsplit(":", 2)[0], addr.split(":")[-2]
        parent = f"pci{domain}:{bus}"
        dev_dir = sys_dir / "devices" / parent / addr
        dev_dir.mkdir(parents=True)
        (sys_dir / "bus" / "pci" / "devices" / addr).symlink_to(
            f"../../../devices/{parent}/{addr}"
        )
        (dev_dir / "config").write_bytes(cfg.bytes())
    for addr, (name, target) in (links or {}).items():
        domain, bus = addr.rsplit(":", 2)[0], addr.split(":")[-2]
        (sys_dir / "devices" / f"pci{domain}:{bus}" / addr / name).symlink_to(target)
    for name, (members, function) in (iommus or {}).items():
        unit = sys_dir / "devices" / "virtual" / "iommu" / name
        (unit / "devices").mkdir(parents=True)
        for m in members:
            (unit / "devices" / m).symlink_to(f"../../../../{m}")
        if function is not None:
            (unit / "device").symlink_to(f"../../../{function}")
        (sys_dir / "class" / "iommu").mkdir(parents=True, exist_ok=True)
        (sys_dir / "class" / "iommu" / name).symlink_to(f"../../devices/virtual/iommu/{name}")
    return root


# ======================================================================= AMD-Vi
#: A Zen desktop: the root complex 00:00.0, the IOMMU's own function 00:00.2
#: (class 0806), a GPP bridge and an NVMe drive below it. lspci prints no
#: group line for a device without an iommu_group link: the IOMMU function
#: (R11.2) and, on these boards, the root complex IVRS leaves out (R11.3).
AMD_DESKTOP = """\
00:00.0 Host bridge [0600]: Advanced Micro Devices, Inc. [AMD] Starship/Matisse Root Complex [1022:1480]
	Control: I/O- Mem- BusMaster- SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx-
	Status: Cap- 66MHz- UDF- FastB2B- ParErr- DEVSEL=medium >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-

00:00.2 IOMMU [0806]: Advanced Micro Devices, Inc. [AMD] Starship/Matisse IOMMU [1022:1481]
	Control: I/O- Mem- BusMaster- SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx-
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	Capabilities: [40] Secure device <?>
	Capabilities: [64] MSI: Enable+ Count=1/4 Maskable- 64bit+
	Capabilities: [74] HyperTransport: MSI Mapping Enable+ Fixed+

00:01.0 Host bridge [0600]: Advanced Micro Devices, Inc. [AMD] Starship/Matisse PCIe Dummy Host Bridge [1022:1482]
	Control: I/O- Mem- BusMaster- SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx-
	Status: Cap- 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 0

00:01.1 PCI bridge [0604]: Advanced Micro Devices, Inc. [AMD] Starship/Matisse GPP Bridge [1022:1483] (prog-if 00 [Normal decode])
	Control: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 1
	Bus: primary=00, secondary=01, subordinate=01, sec-latency=0
	Capabilities: [58] Express (v2) Root Port (Slot+), MSI 00
	Capabilities: [2a0 v1] Access Control Services
		ACSCap:	SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans+
		ACSCtl:	SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-
	Kernel driver in use: pcieport

01:00.0 Non-Volatile memory controller [0108]: Samsung Electronics Co Ltd NVMe SSD Controller SM981/PM981/PM983 [144d:a808] (prog-if 02 [NVM Express])
	Control: I/O- Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 2
	Capabilities: [70] Express (v2) Endpoint, MSI 00
	Kernel driver in use: nvme
"""  # noqa: E501


class TestAmd:
    """R11.2-R11.4: AMD-Vi translates what IVRS selects, never its own function."""

    def test_the_iommu_function_is_recognised_and_gets_no_group(self) -> None:
        reading = read_text(AMD_DESKTOP, "amd.txt")
        assert reading.topology is not None
        (unit,) = reading.topology.platform.units
        assert (unit.kind.value, str(unit.function), unit.scope) == (
            "amd-vi",
            "0000:00:00.2",
            None,
        )
        groups = canonical_groups(reading.topology, record=True)
        assert groups.group_of("00:00.2") is None
        assert groups.decisions["0000:00:00.2"].rule == "R11.2"

    def test_check_ends_ok_with_the_root_complex_outside_ivrs(self) -> None:
        """Acceptance: the only "unknowns" were the IOMMU function and the root complex."""
        reading = read_text(AMD_DESKTOP, "amd.txt")
        assert reading.topology is not None
        assert reading.observed is not None
        report = check(reading.topology, reading.observed)
        assert report.verdict is Verdict.OK, report.notes
        assert "no group, as predicted" in report.device("00:00.0").reasons[0]
        assert "IVRS" in report.notes[0]

    def test_the_cli_says_ok(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = tmp_path / "amd.txt"
        path.write_text(AMD_DESKTOP)
        assert main(["check", str(path), "--pci-ids", "bundled"]) == 0
        assert capsys.readouterr().out.startswith("check: OK")

    def test_ivrs_covers_only_what_it_selects(self) -> None:
        """R11.3: with the IVHD's device entries known, a device outside them has no group."""
        topo = Topology(
            [
                ep("00:00.0", vendor=0x1022, class_code=0x060000, kind=None),
                ep("00:00.2", vendor=0x1022, class_code=0x080600, kind=None),
                bridge("00:01.1", 1),
                ep("01:00.0"),
            ],
            platform=Platform(
                units=[
                    IommuUnit(
                        "ivhd0",
                        "amd-vi",
                        function="00:00.2",
                        scope=["00:00.2", "00:01.1", "01:00.0"],
                    )
                ]
            ),
        )
        view = x86_view(topo)
        assert view.untranslated[ep("00:00.0").address][0] == "R11.3"
        assert view.untranslated[ep("00:00.2").address][0] == "R11.2"
        assert set(canonical_groups(topo).ungrouped) == {"0000:00:00.0", "0000:00:00.2"}

    def test_an_ivrs_alias_on_the_same_bus_is_a_dma_alias(self) -> None:
        """R11.4: setup_aliases adds an alias on the device's own bus to its
        dma_alias_mask (R3.3; R5.1 then joins the two); one on another bus only
        clones a table entry and changes no group."""
        fns = [
            bridge("00:01.0", 1, acs=ISOLATING),
            ep("01:00.0"),
            bridge("00:02.0", 2, acs=ISOLATING),
            ep("02:00.0"),
            ep("02:00.3"),  # a function other than 0: multifunction (R5.6), no ACS
        ]
        alone = canonical_groups(Topology(fns))
        assert not alone.same_group("02:00.0", "02:00.3")
        same_bus = Platform(units=[IommuUnit("ivhd0", "amd-vi", aliases=[("02:00.0", "02:00.3")])])
        joined = canonical_groups(Topology(fns, platform=same_bus), record=True)
        assert joined.same_group("02:00.0", "02:00.3")
        assert joined.decisions["0000:02:00.3"].rule == "R5.1"
        other_bus = Platform(
            units=[IommuUnit("ivhd0", "amd-vi", aliases=[("02:00.0", "01:00.0")])]
        )
        cross = canonical_groups(Topology(fns, platform=other_bus))
        assert not cross.same_group("01:00.0", "02:00.0")
        assert cross.partition() == alone.partition()


# ======================================================================== VT-d
class TestVtd:
    """R11.5, R11.6, R1.9: DMAR units, ignored graphics units, ids unit by unit."""

    def units(self, *, gfx_scope: list[str] | None = None) -> list[IommuUnit]:
        return [
            IommuUnit("dmar0", "vt-d", scope=gfx_scope or ["00:02.0"], include_all=False),
            IommuUnit("dmar1", "vt-d", scope=[], include_all=True),
        ]

    def laptop(self, **platform: object) -> Topology:
        return Topology(
            [
                ep("00:00.0", vendor=0x8086, device=0x9A14, class_code=0x060000, kind=None),
                ep("00:02.0", vendor=0x8086, device=0x9A49, class_code=0x030000),
                bridge("00:1c.0", 1, vendor=0x8086, device=0xA110),
                ep("01:00.0", vendor=0x8086, device=0x2723, class_code=0x028000),
            ],
            platform=Platform(iommu="vt-d", **platform),  # type: ignore[arg-type]
        )

    def test_drhd_list_order(self) -> None:
        """dmar_register_drhd_unit: others at the head (reversed), INCLUDE_ALL at the tail."""
        units = [
            IommuUnit("dmar0", "vt-d", include_all=False),
            IommuUnit("dmar1", "vt-d", include_all=False),
            IommuUnit("dmar2", "vt-d", include_all=True),
        ]
        assert [u.name for u in dmar_drhd_units(units)] == ["dmar1", "dmar0", "dmar2"]

    def test_ids_go_unit_by_unit(self) -> None:
        """R1.9: the graphics unit registers first, so the GPU gets group 0."""
        topo = self.laptop(units=self.units())
        groups = canonical_groups(topo)
        assert groups.group_of("00:02.0") == 0
        assert groups.group_of("00:00.0") == 1
        old = canonical_groups(topo, kernel="6.0.12")
        assert (old.group_of("00:00.0"), old.group_of("00:02.0")) == (0, 1)

    def test_without_dmar_units_the_graphics_unit_is_assumed(self) -> None:
        topo = self.laptop()
        assert canonical_groups(topo).group_of("00:02.0") == 0
        assert any("Intel graphics" in n for n in x86_view(topo).notes)

    def test_igfx_off_ignores_the_graphics_unit(self) -> None:
        """R11.6: with intel_iommu=igfx_off the GPU's unit is ignored: no group."""
        topo = self.laptop(units=self.units(), igfx_off=True)
        found = device_lookup_iommu(topo.get("00:02.0"), topo)
        assert (found.unit, found.rule) == (None, "R11.6")
        groups = canonical_groups(topo, record=True)
        assert groups.group_of("00:02.0") is None
        assert groups.decisions["0000:00:02.0"].rule == "R11.6"
        assert groups.group_of("00:00.0") == 0

    def test_a_quirk_chipset_ignores_graphics_too(self) -> None:
        """quirk_iommu_igfx: Broadwell graphics (8086:1616) turn graphics mapping off."""
        topo = self.laptop(units=self.units())
        gpu = topo.get("00:02.0")
        import attrs

        bdw = topo.replace(
            functions=[attrs.evolve(gpu, device=0x1616) if f is gpu else f for f in topo]
        )
        assert canonical_groups(bdw).group_of("00:02.0") is None

    def test_outside_every_scope_without_include_all(self) -> None:
        """R11.5: no unit lists it and none has INCLUDE_PCI_ALL: no group."""
        units = [IommuUnit("dmar0", "vt-d", scope=["00:02.0", "00:1c.0"], include_all=False)]
        topo = self.laptop(units=units)
        groups = canonical_groups(topo)
        assert groups.group_of("00:00.0") is None
        # a bridge in scope covers what is below it (is_downstream_to_pci_bridge)
        assert groups.group_of("01:00.0") is not None
        assert platform_iommu(topo).value == "vt-d"  # type: ignore[union-attr]

    def test_sysfs_units(self, tmp_path: Path) -> None:
        """``/sys/class/iommu/dmarN/devices`` gives each unit's devices."""
        host = Cfg(256, vendor=0x8086, device=0x9A14).klass(0x060000).header(0)
        gpu = Cfg(256, vendor=0x8086, device=0x9A49).klass(0x030000).header(0)
        root = _sysfs(
            tmp_path,
            {"0000:00:00.0": host, "0000:00:02.0": gpu},
            iommus={"dmar0": (["0000:00:02.0"], None), "dmar1": (["0000:00:00.0"], None)},
        )
        reading = read(root)
        assert reading.topology is not None
        assert [u.name for u in reading.topology.platform.units] == ["dmar0", "dmar1"]
        assert canonical_groups(reading.topology).group_of("00:02.0") == 0


# ============================================================== hidden P2SB
HIDDEN_P2SB_LOG = """\
[    0.312000] pci 0000:00:02.0: Adding to iommu group 0
[    0.312010] pci 0000:00:00.0: Adding to iommu group 1
[    0.312020] pci 0000:00:1c.0: Adding to iommu group 2
[    0.312030] pci 0000:01:00.0: Adding to iommu group 2
[    2.101000] pci 0000:00:1f.1: Adding to iommu group 3
"""


def test_a_hidden_p2sb_is_reported_as_such() -> None:
    """R11.7: p2sb.c adds the hidden P2SB (00:1f.1) for a moment: the log shows it
    grouped, the input does not list it; that is no verdict on the model. (The
    wireless card below the root port without ACS shares its group, R4.2.)"""
    topo = TestVtd().laptop()
    from iommugroups._io.listing import read_dmesg

    seen = read_dmesg(HIDDEN_P2SB_LOG)
    assert seen.observed is not None
    report = check(topo, seen.observed)
    assert report.verdict is Verdict.OK
    (hidden,) = report.not_listed
    assert (hidden.device, hidden.observed_group) == ("0000:00:1f.1", 3)
    assert "P2SB" in hidden.why
    assert "R11.7" in hidden.why


# ====================================================== bus numbers (R11.8)
def _hex_machine(secondary: int, subordinate: int, *, below: bool = True) -> str:
    """Root bus 00 with a root port given buses ``secondary``-``subordinate`` (and an NVMe
    drive on its secondary bus, ``below``), and root bus 80 (another host bridge) with a
    root port and a NIC, as ``lspci -xxxx``."""
    host = Cfg(vendor=0x8086, device=0x3E30).klass(0x060000).header(0)
    port = Cfg(vendor=0x8086, device=0xA110).klass(0x060400).header(1)
    port.u8(0x18, 0x00).u8(0x19, secondary).u8(0x1A, subordinate)
    port.caps(0x40).pcie(0x40, 4)
    nvme = Cfg(vendor=0x144D, device=0xA808).klass(0x010802).header(0).caps(0x40).pcie(0x40, 0)
    rp80 = Cfg(vendor=0x8086, device=0x2030).klass(0x060400).header(1)
    rp80.u8(0x18, 0x80).u8(0x19, 0x81).u8(0x1A, 0x81).caps(0x40).pcie(0x40, 4)
    nic = Cfg(vendor=0x8086, device=0x1539).klass(0x020000).header(0).caps(0x40).pcie(0x40, 0)
    blocks = [
        block("0000:00:00.0 0600: 8086:3e30", host.bytes()),
        block("0000:00:1c.0 0604: 8086:a110", port.bytes()),
        block(f"0000:{secondary:02x}:00.0 0108: 144d:a808", nvme.bytes()) if below else "",
        block("0000:80:00.0 0604: 8086:2030", rp80.bytes()),
        block("0000:81:00.0 0200: 8086:1539", nic.bytes()),
    ]
    return "\n".join(b for b in blocks if b)


class TestBusConflicts:
    """R11.8: a root bus stays a root bus, whatever range a bridge was given."""

    def test_a_range_holding_another_root_bus(self) -> None:
        topo = read_lspci_hex(_hex_machine(0x01, 0x8F))
        assert topo.is_root_bus(0, 0x80)
        assert topo.bridges_above(topo.get("81:00.0").address) == (topo.get("80:00.0"),)
        (conflict,) = topo.bus_conflicts()
        assert (str(conflict.bridge), conflict.bus) == ("0000:00:1c.0", 0x80)

    def test_a_secondary_bus_that_holds_a_root_port(self) -> None:
        """The bridge names bus 80 as its secondary bus, but a Root Port sits there."""
        topo = read_lspci_hex(_hex_machine(0x80, 0x81, below=False))
        assert topo.is_root_bus(0, 0x80)
        assert topo.bridges_above(topo.get("80:00.0").address) == ()
        (conflict,) = topo.bus_conflicts()
        assert "Root Port" in conflict.why

    def test_groups_prints_a_note(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "dump.txt"
        path.write_text(_hex_machine(0x01, 0x8F))
        assert main(["groups", str(path), "--pci-ids", "bundled"]) == 0
        err = capsys.readouterr().err
        assert "0000:00:1c.0" in err
        assert "bus 80" in err
        assert "R11.8" in err


# ================================================================ pastes
RP = """\
00:1c.0 PCI bridge [0604]: Intel Corporation Device [8086:a110] (rev f1)
	Control: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 7
	Bus: primary=00, secondary=02, subordinate=02, sec-latency=0
	Capabilities: [40] Express (v2) Root Port (Slot+), MSI 00
	Capabilities: [140 v1] Access Control Services
		ACSCap:	SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-
		ACSCtl:	SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-
	Kernel driver in use: pcieport

02:00.0 Ethernet controller [0200]: Intel Corporation I211 Gigabit Network Connection [8086:1539] (rev 03)
	Control: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 8
	Capabilities: [70] Express (v2) Endpoint, MSI 00
	Capabilities: [e0] Vital Product Data
		Not readable
	Kernel driver in use: igb
"""  # noqa: E501


def test_a_paste_with_pcilib_lines() -> None:
    """lspci's stderr (pcilib) interleaved inside a block: skipped, with a note."""
    text = RP.replace(
        "\t\tNot readable\n",
        "pcilib: sysfs_read_vpd: read failed: Input/output error\n\t\tNot readable\n",
    )
    reading = read_text(text, "pcilib.txt")
    assert reading.topology is not None
    assert reading.topology.get("02:00.0").driver == "igb"
    (note,) = [u for u in reading.unknowns if u.fact == "paste"]
    assert "pcilib" in note.why
    assert "02:00.0" in note.why


def test_a_paste_with_stripped_tabs_and_wrapped_names() -> None:
    """A mail archive dropped the leading tabs and wrapped a long device name:
    detail lines are told from headers by their content (R2 facts survive)."""
    stripped = "\n".join(line.lstrip("\t") for line in AMD_DESKTOP.splitlines()) + "\n"
    wrapped = stripped.replace(
        "Starship/Matisse GPP Bridge [1022:1483] (prog-if 00 [Normal decode])",
        "Starship/Matisse GPP\nBridge [1022:1483] (prog-if 00 [Normal decode])",
    )
    reading = read_text(wrapped, "amd.txt")
    original = read_text(AMD_DESKTOP, "amd.txt")
    assert reading.topology == original.topology
    assert reading.observed == original.observed
    assert any(u.fact == "paste" and "tabs" in u.why for u in reading.unknowns)


def test_a_wrapped_name_that_starts_like_a_hex_row() -> None:
    """``... Renoir Device`` / ``24: Function 0``: a name, not a hex dump row."""
    text = (
        "00:18.0 Host bridge: Advanced Micro Devices, Inc. [AMD] Renoir Device\n"
        "24: Function 0\n"
        "\tControl: I/O- Mem- BusMaster- SpecCycle- MemWINV- VGASnoop- ParErr- Stepping-\n"
        "\tIOMMU group: 10\n"
    )
    reading = read_text(text, "renoir.txt")
    assert reading.topology is not None
    fn = reading.topology.get("00:18.0")
    assert (fn.vendor, fn.device) == (0x1022, 0x1448)


def test_lspci_v_with_the_whole_config_space_appended() -> None:
    """``lspci -v -xxxx``: -v prints no ACS bits, the bytes hold them: every byte is used."""
    port = Cfg(vendor=0x8086, device=0xA110).klass(0x060400).header(1)
    port.u8(0x08, 0xF1).u8(0x19, 0x02).u8(0x1A, 0x02)
    port.caps(0x40).pcie(0x40, 4).acs(0x100, 0x001D, 0x001D)
    lspci_v = (
        "00:1c.0 PCI bridge: Intel Corporation Device a110 (rev f1) (prog-if 00 [Normal decode])\n"
        "\tFlags: bus master, fast devsel, latency 0, IRQ 122, IOMMU group 7\n"
        "\tBus: primary=00, secondary=02, subordinate=02, sec-latency=0\n"
        "\tCapabilities: [40] Express Root Port (Slot+), MSI 00\n"
        "\tCapabilities: [100] Access Control Services\n"
        "\tKernel driver in use: pcieport\n"
    )
    rows = "\n".join(
        f"{off:03x}: " + " ".join(f"{b:02x}" for b in port.bytes()[off : off + 16])
        for off in range(0, 4096, 16)
    )
    without = read_text(lspci_v, "v.txt")
    assert without.topology is not None
    assert "acs" in without.topology.get("00:1c.0").unknown
    both = read_text(lspci_v + rows + "\n", "vx.txt")
    assert both.topology is not None
    fn = both.topology.get("00:1c.0")
    assert "acs" not in fn.unknown
    assert fn.acs is not None
    assert fn.acs.ctrl.names() == "SV|RR|CR|UF"
    assert fn.revision == 0xF1
    assert not any(u.device == "0000:00:1c.0" and u.fact == "acs" for u in both.unknowns)
    # a dump that contradicts the text is refused, naming the line
    no_acs = Cfg(vendor=0x8086, device=0xA110).klass(0x060400).header(1)
    no_acs.u8(0x08, 0xF1).u8(0x19, 0x02).u8(0x1A, 0x02).caps(0x40).pcie(0x40, 4)
    bad = "\n".join(
        f"{off:03x}: " + " ".join(f"{b:02x}" for b in no_acs.bytes()[off : off + 16])
        for off in range(0, 4096, 16)
    )
    with pytest.raises(InputError, match="hex dump has none"):
        read_text(lspci_v + bad + "\n", "bad.txt")


# ======================================================== no false alarms
#: An X79 root port printed without ids (no -nn): pci.ids names 8086:1d10 and
#: 8086:1d11 alike, and only 1d10 is in the Intel PCH ACS quirk (R2.6): the
#: kernel isolates the NIC below it if the port is 1d10.
X79_PORT = """\
00:1c.0 PCI bridge: Intel Corporation C600/X79 series chipset PCI Express Root Port 1 (rev b5) (prog-if 00 [Normal decode])
	Control: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 20
	Bus: primary=00, secondary=05, subordinate=05, sec-latency=0
	Capabilities: [40] Express (v2) Root Port (Slot+), MSI 00
	Kernel driver in use: pcieport

00:1c.4 PCI bridge: Intel Corporation C600/X79 series chipset PCI Express Root Port 5 (rev b5) (prog-if 00 [Normal decode])
	Control: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 21
	Bus: primary=00, secondary=06, subordinate=06, sec-latency=0
	Capabilities: [40] Express (v2) Root Port (Slot+), MSI 00
	Kernel driver in use: pcieport

05:00.0 Ethernet controller: Intel Corporation I211 Gigabit Network Connection (rev 03)
	Control: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 22
	Capabilities: [70] Express (v2) Endpoint, MSI 00
	Kernel driver in use: igb

06:00.0 Ethernet controller: Intel Corporation I211 Gigabit Network Connection (rev 03)
	Control: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx+
	Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-
	IOMMU group: 23
	Capabilities: [70] Express (v2) Endpoint, MSI 00
	Kernel driver in use: igb
"""  # noqa: E501


def test_an_ambiguous_quirk_id_is_unknown_not_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """R2.5/R2.6: which of 1d10/1d11 the port is decides its ACS; the kernel's
    separate groups are what 1d10 gives, so there is no isolation hole to report."""
    reading = read_text(X79_PORT, "x79.txt")
    assert reading.topology is not None
    assert reading.observed is not None
    port = reading.topology.get("00:1c.0")
    assert {"ids", "acs"} <= port.unknown
    report = check(reading.topology, reading.observed, unknowns=reading.unknowns)
    assert not report.has_split
    assert report.device("05:00.0").verdict is Verdict.UNKNOWN
    assert "0000:00:1c.0" in report.device("05:00.0").depends_on
    path = tmp_path / "x79.txt"
    path.write_text(X79_PORT)
    assert main(["check", str(path), "--pci-ids", "bundled"]) == 3  # unknown, not split


def test_acs_not_shown_is_unknown_not_split() -> None:
    """``lspci -v`` names the ACS capability but prints no bits: never a split."""
    text = RP.replace(
        "\t\tACSCap:	SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- "
        "DirectTrans-\n\t\tACSCtl:	SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ "
        "EgressCtrl- DirectTrans-\n",
        "",
    )
    reading = read_text(text, "no-bits.txt")
    assert reading.topology is not None
    assert reading.observed is not None
    assert "acs" in reading.topology.get("00:1c.0").unknown
    report = check(reading.topology, reading.observed, unknowns=reading.unknowns)
    assert not report.has_split


# ============================================================ names and ids
def test_names_come_from_the_chosen_database(tmp_path: Path) -> None:
    ids = tmp_path / "pci.ids"
    ids.write_text(
        "#\tVersion: 2099.01.01\n10de  NVIDIA Corporation\n\t1b80  GP104 [GeForce GTX 1080]\n"
        "C 03  Display controller\n\t00  VGA compatible controller\n"
    )
    db = load_pci_ids(str(ids))
    assert db.source == f"{ids} (version 2099.01.01)"
    assert choose_pci_ids(None, {ENV_VAR: str(ids)}) is db
    assert choose_pci_ids("bundled", {ENV_VAR: str(ids)}) is bundled_database()
    from iommugroups import PciFunction
    from iommugroups._render.text import listing_line

    gpu = PciFunction("01:00.0", vendor=0x10DE, device=0x1B80, class_code=0x030000, revision=0xA1)
    topo = Topology([gpu])
    with using_database(db):
        line = listing_line("0000:01:00.0", topo, names=True)
    assert line == (
        "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GP104 [GeForce GTX 1080] "
        "[10de:1b80] (rev a1)"
    )


def test_the_cli_says_which_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "amd.txt"
    path.write_text(AMD_DESKTOP)
    monkeypatch.setenv(ENV_VAR, "bundled")
    assert main(["groups", str(path), "-v"]) == 0
    out, err = capsys.readouterr()
    assert "names and ids: the bundled subset of pci.ids" in err
    assert (
        "\t01:00.0 Non-Volatile memory controller [0108]: Samsung Electronics Co Ltd NVMe SSD "
        "Controller SM981/PM981/PM983 [144d:a808]  driver nvme\n" in out  # its Kernel driver
    )
    assert os.environ[ENV_VAR] == "bundled"


# ================================================================== quiet
def test_notes_are_a_summary_unless_verbose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Per-device notes collapse into counts; -v shows each. No note calls a fact
    unknown and then says it does not matter."""
    path = tmp_path / "x79.txt"
    path.write_text(X79_PORT)
    assert main(["groups", str(path), "--pci-ids", "bundled"]) == 0
    quiet = capsys.readouterr().err.splitlines()
    assert main(["groups", str(path), "--pci-ids", "bundled", "-v"]) == 0
    loud = capsys.readouterr().err.splitlines()
    assert len(loud) > len(quiet)
    assert any("ACS capability bits not shown: 2 devices" in line for line in quiet)
    for line in quiet + loud:
        assert not ("unknown" in line and "is the same for each" in line), line


def test_a_vmd_domain_in_a_hex_dump() -> None:
    """``lspci -D -xxx``: the domain is in the address, the endpoint has a vmd_ids[] id."""
    vmd = Cfg(256, vendor=0x8086, device=0x9A0B).klass(0x010400).header(0)
    nvme = Cfg(256, vendor=0x144D, device=0xA80A).klass(0x010802).header(0)
    nvme.caps(0x40).pcie(0x40, 0)
    text = "\n".join(
        [
            block("0000:00:0e.0 0104: 8086:9a0b", vmd.bytes()),
            block("10000:e1:00.0 0108: 144d:a80a", nvme.bytes()),
        ]
    )
    topo = read_lspci_hex(text)
    assert topo.platform.vmd == (VmdDomain(0x10000, "0000:00:0e.0"),)
    assert canonical_groups(topo).same_group("00:0e.0", "10000:e1:00.0")


def test_a_snapshot_keeps_the_platform(tmp_path: Path) -> None:
    """The VMD domain link and ``class/iommu`` go into a snapshot and come back."""
    from iommugroups import take_snapshot
    from iommugroups._io.snapshot import read_snapshot

    vmd = Cfg(256, vendor=0x8086, device=0x9A0B).klass(0x010400).header(0)
    gpu = Cfg(256, vendor=0x8086, device=0x9A49).klass(0x030000).header(0)
    nvme = Cfg(256, vendor=0x144D, device=0xA80A).klass(0x010802).header(0)
    nvme.caps(0x40).pcie(0x40, 0)
    root = _sysfs(
        tmp_path,
        {"0000:00:02.0": gpu, "0000:00:0e.0": vmd, "10000:e1:00.0": nvme},
        links={"0000:00:0e.0": ("domain", "../pci10000:e1")},
        iommus={"dmar0": (["0000:00:02.0"], None), "dmar1": (["0000:00:0e.0"], None)},
    )
    snapshot = take_snapshot(root)
    assert snapshot["devices"]["0000:00:0e.0"]["vmd_domain"] == "0x10000"
    assert snapshot["iommus"]["dmar0"] == {"devices": ["0000:00:02.0"], "function": None}
    again = read_snapshot(snapshot)
    direct = read(root)
    assert again.topology == direct.topology
    assert again.topology is not None
    assert again.topology.platform.vmd == (VmdDomain(0x10000, "0000:00:0e.0"),)
    assert [u.name for u in again.topology.platform.units] == ["dmar0", "dmar1"]


def test_show_says_vmd() -> None:
    from iommugroups import show

    reading = read_text(VMD_LAPTOP, "vmd-laptop.txt")
    assert reading.topology is not None
    (group,) = [
        g for g in show(reading.topology).groups if "0000:00:0e.0" in {m.name for m in g.members}
    ]
    (clause,) = [c for c in group.clauses if c.kind == "vmd"]
    assert clause.rules == ("R3.1",)
    assert "VMD endpoint 00:0e.0" in clause.text


def test_check_names_the_bridge_and_the_bus() -> None:
    topo = read_lspci_hex(_hex_machine(0x01, 0x8F))
    report = check(topo, canonical_groups(topo))
    assert report.verdict is Verdict.OK
    (note,) = [n for n in report.notes if "R11.8" in n]
    assert "0000:00:1c.0" in note
    assert "bus 80" in note
