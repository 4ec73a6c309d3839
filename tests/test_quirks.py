"""Tests of the kernel quirk tables (R2.5, R2.6, R3.4, R3.5).

Vectors are taken from ``drivers/pci/quirks.c`` of Linux 7.3 (Debian's
7.3.4 tree), the newest modelled kernel, whose tables :data:`DEFAULT_QUIRKS`
are; ``tests/test_quirk_versions.py`` tests the tables of older kernels.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from iommugroups._kernel import quirk_tables as T
from iommugroups._kernel.acs import pci_acs_enabled
from iommugroups._kernel.model import Acs, AcsFlags, PcieType, PciFunction, Topology
from iommugroups._kernel.quirks import (
    DEFAULT_QUIRKS,
    AcsQuirk,
    BridgeFlag,
    BridgeFlagQuirk,
    DmaAliasKind,
    DmaAliasQuirk,
    QuirkContext,
    Quirks,
    pci_acs_ctrl_enabled,
)

SV, TB, RR, CR, UF, EC, DT = (
    AcsFlags.SV,
    AcsFlags.TB,
    AcsFlags.RR,
    AcsFlags.CR,
    AcsFlags.UF,
    AcsFlags.EC,
    AcsFlags.DT,
)
REQ = SV | RR | CR | UF

INTEL = 0x8086


# --- helpers -------------------------------------------------------------------


def root_port(
    addr: str = "00:1c.0",
    vendor: int = INTEL,
    device: int = 0x1234,
    *,
    sec: int = 1,
    sub: int | None = None,
    acs: Acs | None = None,
    pcie_type: PcieType | None = PcieType.ROOT_PORT,
    multifunction: bool = False,
) -> PciFunction:
    return PciFunction(
        addr,
        vendor,
        device,
        class_code=0x060400,
        header_type=1,
        pcie_type=pcie_type,
        acs=acs,
        secondary_bus=sec,
        subordinate_bus=sub if sub is not None else sec,
        multifunction=multifunction,
    )


def dev(
    addr: str,
    vendor: int,
    device: int,
    pcie_type: PcieType | None = PcieType.ENDPOINT,
    **kw: Any,
) -> PciFunction:
    return PciFunction(addr, vendor, device, pcie_type=pcie_type, **kw)


def ctx_for(*fns: PciFunction, quirks: Quirks = DEFAULT_QUIRKS, **kw: Any) -> QuirkContext:
    return QuirkContext(Topology(fns), quirks=quirks, **kw)


def verdict(
    fn: PciFunction,
    flags: AcsFlags = REQ,
    *,
    quirks: Quirks = DEFAULT_QUIRKS,
    others: tuple[PciFunction, ...] = (),
    **kw: Any,
) -> bool | None:
    ctx = ctx_for(fn, *others, quirks=quirks, **kw)
    return quirks.acs_enabled(fn, flags, ctx)


def decided_by(fn: PciFunction, flags: AcsFlags = REQ, **kw: Any) -> str | None:
    ctx = ctx_for(fn, **kw)
    _, quirk = DEFAULT_QUIRKS.acs_decision(fn, flags, ctx)
    return None if quirk is None else quirk.name


# --- the table itself ------------------------------------------------------------


def test_acs_table_size_and_families() -> None:
    counts = Counter(q.name for q in DEFAULT_QUIRKS.acs)
    assert len(DEFAULT_QUIRKS.acs) == 132
    assert counts == {
        "pci_quirk_amd_sb_acs": 8,
        "pci_quirk_mf_endpoint_acs": 67,
        "pci_quirk_rciep_acs": 1,
        "pci_quirk_qcom_rp_acs": 6,
        "pci_quirk_intel_pch_acs": 1,
        "pci_quirk_intel_spt_pch_acs": 1,
        "pci_quirk_cavium_acs": 1,
        "pci_quirk_xgene_acs": 9,
        "pci_quirk_brcm_acs": 1,
        "pci_quirk_loongson_acs": 10,
        "pci_quirk_al_acs": 1,
        "pci_quirk_nxp_rp_acs": 24,
        "pci_quirk_zhaoxin_pcie_ports_acs": 1,
        "pci_quirk_wangxun_nic_acs": 1,
    }
    assert all(q.origin == "kernel" for q in DEFAULT_QUIRKS.acs)
    assert DEFAULT_QUIRKS.user_acs == ()


def test_acs_table_order() -> None:
    entries = [(q.vendor, q.device, q.name) for q in DEFAULT_QUIRKS.acs]
    assert entries[0] == (0x1002, 0x4385, "pci_quirk_amd_sb_acs")
    assert entries[8] == (0x1924, 0x0903, "pci_quirk_mf_endpoint_acs")
    assert entries[-2] == (0x1D17, None, "pci_quirk_zhaoxin_pcie_ports_acs")
    assert entries[-1] == (0x8088, None, "pci_quirk_wangxun_nic_acs")
    names = [e[2] for e in entries]
    # Intel: the NIC list, then RCiEP, then Qualcomm, then the two PCH quirks.
    rciep = names.index("pci_quirk_rciep_acs")
    assert entries[rciep - 1] == (INTEL, 0x15B8, "pci_quirk_mf_endpoint_acs")
    assert entries[rciep + 1 : rciep + 9] == [
        (0x17CB, 0x0400, "pci_quirk_qcom_rp_acs"),
        (0x17CB, 0x0401, "pci_quirk_qcom_rp_acs"),
        (0x17CB, 0x0115, "pci_quirk_qcom_rp_acs"),  # SA8775P
        (0x17CB, 0x0111, "pci_quirk_qcom_rp_acs"),  # Hamoa
        (0x17CB, 0x0120, "pci_quirk_qcom_rp_acs"),  # Glymur
        (0x1DBF, 0x0401, "pci_quirk_qcom_rp_acs"),  # HXT SD4800
        (INTEL, None, "pci_quirk_intel_pch_acs"),
        (INTEL, None, "pci_quirk_intel_spt_pch_acs"),
    ]
    cavium = names.index("pci_quirk_cavium_acs")
    assert entries[cavium + 1] == (0x177D, 0xA026, "pci_quirk_mf_endpoint_acs")


def test_intel_pch_id_list() -> None:
    ids = T.INTEL_PCH_ACS_IDS
    assert len(ids) == len(set(ids)) == 119
    for d in (0x3B42, 0x3B51, 0x1C10, 0x1E1F, 0x8C10, 0x9C1B, 0x9C90, 0x1D1E, 0x8D1E, 0x8C9E):
        assert d in ids
    for d in (0x3B41, 0x3B52, 0x9C1C, 0x1D11, 0x8D1F, 0x8C91):
        assert d not in ids


def test_pci_acs_ctrl_enabled() -> None:
    assert pci_acs_ctrl_enabled(REQ, REQ | EC)
    assert not pci_acs_ctrl_enabled(REQ | EC, REQ)
    assert pci_acs_ctrl_enabled(AcsFlags.NONE, AcsFlags.NONE)


# --- Intel PCH / SPT ---------------------------------------------------------------


@pytest.mark.parametrize("device", [0x1C10, 0x3B42, 0x8C9E, 0x9C9B, 0x8D1E, 0x1D1C])
def test_intel_pch_root_port_without_acs_is_isolated(device: int) -> None:
    rp = root_port(device=device)
    assert rp.acs is None
    assert verdict(rp) is True
    assert verdict(rp, REQ | EC) is False
    assert decided_by(rp) == "pci_quirk_intel_pch_acs"


def test_intel_pch_without_acs_request_provides_nothing() -> None:
    rp = root_port(device=0x1C10)
    assert verdict(rp, acs_requested=False) is False
    assert verdict(rp, SV, acs_requested=False) is False
    assert verdict(rp, AcsFlags.NONE, acs_requested=False) is True


def test_intel_pch_id_that_is_not_a_root_port_does_not_match() -> None:
    assert verdict(dev("00:1c.0", INTEL, 0x1C10)) is None
    assert verdict(root_port(device=0x1C10, pcie_type=PcieType.DOWNSTREAM)) is None


def test_intel_root_port_not_listed_falls_through() -> None:
    assert verdict(root_port(device=0x1234)) is None


@pytest.mark.parametrize(
    "device", [0xA110, 0xA11F, 0xA167, 0xA16A, 0xA290, 0xA2EE, 0x9D10, 0x9D1B]
)
def test_intel_spt_uses_acs_capability(device: int) -> None:
    no_cap = root_port(device=device)
    assert verdict(no_cap) is None  # -ENOTTY without an ACS capability
    cap = Acs(cap=REQ, ctrl=AcsFlags.NONE)
    rp = root_port(device=device, acs=cap)
    # With ACS requested, pci_quirk_enable_intel_spt_pch_acs set SV|RR|CR|UF first.
    assert verdict(rp) is True
    assert decided_by(rp) == "pci_quirk_intel_spt_pch_acs"
    assert verdict(rp, acs_requested=False) is False
    fw_on = root_port(device=device, acs=Acs(cap=REQ, ctrl=REQ))
    assert verdict(fw_on, acs_requested=False) is True
    # EC must really be on (it is never implied).
    assert verdict(rp, REQ | EC) is False


def test_intel_spt_drops_unimplemented_bits() -> None:
    rp = root_port(device=0xA110, acs=Acs(cap=SV | RR, ctrl=AcsFlags.NONE))
    assert verdict(rp) is True  # CR and UF not implemented: treated as on
    assert verdict(rp, acs_requested=False) is False


@pytest.mark.parametrize("device", [0xA120, 0xA166, 0xA16B, 0xA2E6, 0x9D1C])
def test_intel_spt_out_of_range(device: int) -> None:
    assert verdict(root_port(device=device, acs=Acs(cap=REQ, ctrl=AcsFlags.NONE))) is None


# --- multifunction endpoints ---------------------------------------------------------


def test_solarflare_mf_endpoint() -> None:
    f0 = dev("03:00.0", 0x1924, 0x0903, multifunction=True)
    f1 = dev("03:00.1", 0x1924, 0x0903)
    assert verdict(f0, others=(f1,)) is True
    assert verdict(f1, others=(f0,)) is True
    assert verdict(f0, REQ | EC, others=(f1,)) is False
    assert verdict(f0, REQ | TB | DT, others=(f1,)) is True


MF_IDS = [
    *((0x1924, d) for d in T.SOLARFLARE_MF_IDS),
    *((INTEL, d) for d in T.INTEL_MF_IDS),
    *T.EMULEX_MF_IDS,
    *((0x177D, d) for d in T.CAVIUM_MF_IDS),
    *((0x14E4, d) for d in T.BROADCOM_MF_IDS),
    *((0x1D17, d) for d in T.ZHAOXIN_MF_IDS),
]


@pytest.mark.parametrize(("vendor", "device"), MF_IDS)
def test_every_mf_endpoint_entry(vendor: int, device: int) -> None:
    fn = dev("05:00.0", vendor, device, multifunction=True)
    assert verdict(fn) is True
    assert verdict(fn, SV | TB | RR | CR | UF | DT) is True
    assert verdict(fn, REQ | EC) is False
    assert decided_by(fn) == "pci_quirk_mf_endpoint_acs"


def test_mf_ids_count() -> None:
    assert len(MF_IDS) == 67
    assert (INTEL, 0x10C9) in MF_IDS  # 82576
    assert (INTEL, 0x10A7) in MF_IDS  # 82575
    assert (INTEL, 0x105E) in MF_IDS  # 82571
    assert (0x19A2, 0x0710) in MF_IDS  # Emulex BE3-R
    assert (0x10DF, 0x0720) in MF_IDS  # Emulex Skyhawk-R


# --- Intel RCiEP -------------------------------------------------------------------


def test_intel_rciep() -> None:
    rciep = dev("00:02.0", INTEL, 0x9A49, PcieType.RC_END, multifunction=True)
    assert verdict(rciep) is True
    assert verdict(rciep, REQ | EC) is False
    assert verdict(rciep, TB) is False
    assert decided_by(rciep) == "pci_quirk_rciep_acs"
    assert verdict(dev("00:02.0", INTEL, 0x9A49, PcieType.ENDPOINT)) is None
    assert verdict(dev("00:02.0", INTEL, 0x9A49, None)) is None
    assert verdict(dev("00:02.0", 0x1022, 0x9A49, PcieType.RC_END)) is None


def test_intel_nic_entry_comes_before_rciep() -> None:
    # TB is provided by pci_quirk_mf_endpoint_acs but not by pci_quirk_rciep_acs.
    nic = dev("00:19.0", INTEL, 0x15B7, PcieType.RC_END)
    assert verdict(nic, TB) is True
    assert decided_by(nic, TB) == "pci_quirk_mf_endpoint_acs"
    other = dev("00:19.0", INTEL, 0x15BC, PcieType.RC_END)
    assert verdict(other, TB) is False


# --- AMD southbridge ---------------------------------------------------------------


@pytest.mark.parametrize(("vendor", "device"), T.AMD_SB_IDS)
def test_amd_sb(vendor: int, device: int) -> None:
    f0 = dev("00:14.0", vendor, device, None, multifunction=True)
    f1 = dev("00:14.1", 0x1002, 0x1234, None)
    assert verdict(f0, others=(f1,)) is None  # no IVRS table
    assert verdict(f0, others=(f1,), amd_ivrs=True) is True
    assert verdict(f0, REQ | EC, others=(f1,), amd_ivrs=True) is False
    assert verdict(f0, REQ | DT, others=(f1,), amd_ivrs=True) is False
    assert verdict(f0, SV | UF | TB, others=(f1,), amd_ivrs=True) is True


def test_amd_sb_needs_multifunction_on_root_bus() -> None:
    single = dev("00:14.0", 0x1002, 0x4385, None)
    assert verdict(single, amd_ivrs=True) is None
    rp = root_port("00:01.0", 0x1022, 0x1453, sec=2)
    below = dev("02:00.0", 0x1002, 0x4385, None, multifunction=True)
    assert verdict(below, others=(rp,), amd_ivrs=True) is None
    # A non-zero function is multifunction by the kernel's slot scan (R5.6).
    f3 = dev("00:14.3", 0x1002, 0x439D, None)
    assert verdict(f3, amd_ivrs=True) is True


# --- root-port families ------------------------------------------------------------

RP_IDS = [
    *T.QCOM_RP_IDS,
    *T.XGENE_IDS,
    *((0x14E4, d) for d in T.BROADCOM_RP_IDS),
    *((0x0014, d) for d in T.LOONGSON_RP_IDS),
    *((0x1957, d) for d in T.NXP_RP_IDS),
]


@pytest.mark.parametrize(("vendor", "device"), RP_IDS)
def test_unconditional_root_port_quirks(vendor: int, device: int) -> None:
    rp = root_port(vendor=vendor, device=device)
    assert verdict(rp) is True
    assert verdict(rp, REQ | EC) is False
    assert verdict(rp, TB) is False
    # These entries do not look at the port type.
    assert verdict(dev("00:00.0", vendor, device)) is True


def test_root_port_family_ids() -> None:
    assert (0x17CB, 0x0400) in RP_IDS
    assert (0x17CB, 0x0115) in RP_IDS
    assert (0x1DBF, 0x0401) in RP_IDS  # HXT SD4800
    assert (0x17CB, 0x0111) in RP_IDS  # Hamoa (≈v7.0)
    assert (0x17CB, 0x0120) in RP_IDS  # Glymur (≈v7.0)
    assert (0x10E8, 0xE004) in RP_IDS
    assert (0x1DEF, 0xE00C) in RP_IDS
    assert len(T.NXP_RP_IDS) == 24


def test_qcom_hamoa_and_glymur() -> None:
    # In the 7.3 table (and, by stable backports, in the 6.1 and 6.12 trees);
    # v6.19 is between their bounds (after 6.18, from ≈7.0): left out there.
    for device in (0x0111, 0x0120):
        rp = root_port(vendor=0x17CB, device=device)
        assert verdict(rp) is True
        assert verdict(rp, quirks=DEFAULT_QUIRKS.for_kernel("6.19")) is None


@pytest.mark.parametrize("device", [0xA000, 0xA7FF, 0xAF84, 0xB884])
def test_cavium_root_ports(device: int) -> None:
    assert verdict(root_port(vendor=0x177D, device=device)) is True
    assert verdict(root_port(vendor=0x177D, device=device), REQ | EC) is False


def test_cavium_other_devices() -> None:
    assert verdict(root_port(vendor=0x177D, device=0xA800)) is None
    assert verdict(dev("01:00.0", 0x177D, 0xA000)) is None
    # 0xA026 as an endpoint: cavium_acs is -ENOTTY, the MF entry answers.
    assert verdict(dev("01:00.0", 0x177D, 0xA026), TB) is True
    # 0xA026 as a root port: cavium_acs (earlier in the table) answers.
    assert verdict(root_port(vendor=0x177D, device=0xA026), TB) is False


def test_annapurna() -> None:
    rp = root_port(vendor=0x1C36, device=0x0031)
    assert verdict(rp) is True
    assert verdict(rp, REQ | EC) is False
    assert verdict(dev("00:00.0", 0x1C36, 0x0031)) is None
    assert verdict(dev("00:00.0", 0x1C36, 0x0031, None)) is None


@pytest.mark.parametrize("device", [0x0710, 0x071E, 0x0721, 0x0723, 0x0752])
def test_zhaoxin_listed_ports(device: int) -> None:
    assert verdict(root_port(vendor=0x1D17, device=device)) is True
    ds = root_port(vendor=0x1D17, device=device, pcie_type=PcieType.DOWNSTREAM)
    assert verdict(ds) is True
    assert verdict(ds, REQ | EC) is False


@pytest.mark.parametrize("device", [0x070F, 0x071F, 0x0722, 0x0753])
def test_zhaoxin_unlisted_port_is_never_isolated(device: int) -> None:
    rp = root_port(vendor=0x1D17, device=device, acs=Acs(cap=REQ, ctrl=REQ))
    assert verdict(rp) is False  # the kernel returns 0, not -ENOTTY
    assert verdict(dev("01:00.0", 0x1D17, device)) is None  # not a port


@pytest.mark.parametrize("device", [0x0100, 0x010F, 0x1001, 0x2001, 0x5010, 0x5025, 0x5140])
def test_wangxun_listed(device: int) -> None:
    fn = dev("01:00.0", 0x8088, device, multifunction=True)
    assert verdict(fn) is True
    assert verdict(fn, REQ | EC) is False


@pytest.mark.parametrize("device", [0x0110, 0x1000, 0x2000, 0x5011, 0x5141])
def test_wangxun_unlisted_is_never_isolated(device: int) -> None:
    assert verdict(dev("01:00.0", 0x8088, device)) is False


# --- integration with pci_acs_enabled (R2.3) ----------------------------------------


def test_pci_acs_enabled_uses_quirk_first() -> None:
    rp = root_port(device=0x1C10)
    ctx = ctx_for(rp)
    assert pci_acs_enabled(rp, REQ, ctx) is True
    ctx_none = ctx_for(rp, quirks=Quirks.none())
    assert pci_acs_enabled(rp, REQ, ctx_none) is False
    # A single-function Wangxun endpoint with an unknown id: generic rules
    # would say "enabled", the quirk's 0 is final.
    nic = dev("01:00.0", 0x8088, 0x1000)
    assert pci_acs_enabled(nic, REQ, ctx_for(nic)) is False
    assert pci_acs_enabled(nic, REQ, ctx_for(nic, quirks=Quirks.none())) is True


# --- DMA aliases (R3.5) ------------------------------------------------------------


def test_marvell_func1_alias() -> None:
    f0 = dev("03:00.0", 0x1B4B, 0x9230)
    assert DEFAULT_QUIRKS.dma_alias_devfns(f0) == {0x01}
    f1 = dev("03:00.1", 0x1B4B, 0x9230)
    assert DEFAULT_QUIRKS.dma_alias_devfns(f1) == frozenset()
    other_slot = dev("03:02.0", 0x1B4B, 0x9230)
    assert DEFAULT_QUIRKS.dma_alias_devfns(other_slot) == {0x02 << 3 | 1}


@pytest.mark.parametrize(("vendor", "device"), T.DMA_FUNC1_IDS)
def test_every_func1_alias(vendor: int, device: int) -> None:
    assert DEFAULT_QUIRKS.dma_alias_devfns(dev("05:00.0", vendor, device)) == {1}
    assert DEFAULT_QUIRKS.dma_alias_devfns(dev("05:00.2", vendor, device)) == {1}


def test_func1_alias_ids() -> None:
    assert len(T.DMA_FUNC1_IDS) == 19
    for d in (0x9170, 0x9183, 0x9215, 0x9235):
        assert (0x1B4B, d) in T.DMA_FUNC1_IDS
    assert (0x197B, 0x2392) in T.DMA_FUNC1_IDS  # JMicron JMB388 ESD
    assert (0x1C28, 0x0122) in T.DMA_FUNC1_IDS  # Plextor M6E


def test_ricoh_func0_alias() -> None:
    f1 = dev("05:00.1", 0x1180, 0xE832)
    assert DEFAULT_QUIRKS.dma_alias_devfns(f1) == {0x00}
    f0 = dev("05:00.0", 0x1180, 0xE832)
    assert DEFAULT_QUIRKS.dma_alias_devfns(f0) == frozenset()
    assert DEFAULT_QUIRKS.dma_alias_devfns(dev("05:03.4", 0x1180, 0xE476)) == {0x03 << 3}
    assert DEFAULT_QUIRKS.dma_alias_devfns(dev("05:00.1", 0x6766, 0x3D41)) == {0x00}


def test_fixed_alias_by_subsystem() -> None:
    hit = dev("06:0e.0", 0x9005, 0x0285, subsystem_vendor=0x9005, subsystem_device=0x02BB)
    assert DEFAULT_QUIRKS.dma_alias_devfns(hit) == {0x08}
    hit2 = dev("06:0e.0", 0x9005, 0x0285, subsystem_vendor=0x9005, subsystem_device=0x02BC)
    assert DEFAULT_QUIRKS.dma_alias_devfns(hit2) == {0x08}
    miss = dev("06:0e.0", 0x9005, 0x0285, subsystem_vendor=0x9005, subsystem_device=0x02BD)
    assert DEFAULT_QUIRKS.dma_alias_devfns(miss) == frozenset()


@pytest.mark.parametrize("device", [0x2260, 0x2264])
def test_mic_x200(device: int) -> None:
    fn = dev("07:00.0", INTEL, device)
    assert DEFAULT_QUIRKS.dma_alias_devfns(fn) == {0x80, 0x88, 0x93}


@pytest.mark.parametrize("device", T.PEX_VCA_IDS)
def test_pex_vca(device: int) -> None:
    got = DEFAULT_QUIRKS.dma_alias_devfns(dev("08:00.0", INTEL, device))
    assert len(got) == 160
    assert {0x00, 0x04, 0xFC} <= got
    assert not {0x05, 0x07, 0xFD, 0xFF} & got


@pytest.mark.parametrize("device", [0x87B0, 0x87B1])
def test_plx_ntb_aliases_every_devfn(device: int) -> None:
    assert DEFAULT_QUIRKS.dma_alias_devfns(dev("09:00.1", 0x10B5, device)) == set(range(256))


def test_switchtec_is_listed_but_adds_nothing() -> None:
    ntb = dev("0a:00.1", 0x11F8, 0x8531, class_code=0x068000)
    (quirk,) = DEFAULT_QUIRKS.dma_alias_quirks_for(ntb)
    assert quirk.name == "quirk_switchtec_ntb_dma_alias"
    assert quirk.kind is DmaAliasKind.RUNTIME
    assert DEFAULT_QUIRKS.dma_alias_devfns(ntb) == frozenset()
    not_ntb = dev("0a:00.0", 0x11F8, 0x8531, class_code=0x058000)
    assert DEFAULT_QUIRKS.dma_alias_quirks_for(not_ntb) == ()
    efar = dev("0a:00.1", 0x1055, 0x1006, class_code=0x068000)
    assert len(DEFAULT_QUIRKS.dma_alias_quirks_for(efar)) == 1
    pci1008 = dev("0a:00.1", 0x1055, 0x1008, class_code=0x068000)  # PCI1008XG4, 7.3
    assert len(DEFAULT_QUIRKS.dma_alias_quirks_for(pci1008)) == 1
    assert DEFAULT_QUIRKS.for_kernel("7.2").dma_alias_quirks_for(pci1008) == ()
    assert len(T.SWITCHTEC_MICROSEMI_IDS) + len(T.SWITCHTEC_EFAR_IDS) == 100


def test_dma_alias_excludes_the_functions_own_list() -> None:
    fn = dev("03:00.0", 0x1B4B, 0x9230, dma_alias_devfns={0x10})
    assert DEFAULT_QUIRKS.dma_alias_devfns(fn) == {0x01}
    assert DEFAULT_QUIRKS.dma_alias_devfns(dev("03:00.0", 0x1234, 0x5678)) == frozenset()


# --- bridge flags --------------------------------------------------------------------


def _bridge_topology(
    parent_type: PcieType | None = PcieType.ROOT_PORT,
    *,
    vendor: int = 0x1B21,
    device: int = 0x1080,
    pcie_type: PcieType | None = None,
    header_type: int = 1,
) -> tuple[Topology, PciFunction]:
    rp = root_port("00:1c.0", INTEL, 0x1234, sec=1, sub=2, pcie_type=parent_type)
    br = PciFunction(
        "01:00.0",
        vendor,
        device,
        class_code=0x060401,
        header_type=header_type,
        pcie_type=pcie_type,
        secondary_bus=2 if header_type == 1 else None,
        subordinate_bus=2 if header_type == 1 else None,
    )
    ep = PciFunction("02:00.0", 0x1106, 0x3044)
    fns = [rp, br, ep] if header_type == 1 else [rp, br]
    return Topology(fns), br


@pytest.mark.parametrize(("vendor", "device"), T.PCIE_BRIDGE_ALIAS_IDS)
def test_pcie_bridge_alias_under_root_port(vendor: int, device: int) -> None:
    topo, br = _bridge_topology(vendor=vendor, device=device)
    assert DEFAULT_QUIRKS.pcie_bridge_alias(br, topo) is True


@pytest.mark.parametrize("parent_type", [PcieType.DOWNSTREAM, PcieType.PCIE_BRIDGE])
def test_pcie_bridge_alias_other_pcie_parents(parent_type: PcieType) -> None:
    topo, br = _bridge_topology(parent_type)
    assert DEFAULT_QUIRKS.pcie_bridge_alias(br, topo) is True


def test_pcie_bridge_alias_conditions() -> None:
    topo, br = _bridge_topology(PcieType.PCI_BRIDGE)
    assert DEFAULT_QUIRKS.pcie_bridge_alias(br, topo) is False
    topo, br = _bridge_topology(None)  # conventional parent bridge
    assert DEFAULT_QUIRKS.pcie_bridge_alias(br, topo) is False
    topo, br = _bridge_topology(pcie_type=PcieType.PCI_BRIDGE)  # has a PCIe capability
    assert DEFAULT_QUIRKS.pcie_bridge_alias(br, topo) is False
    topo, br = _bridge_topology(header_type=0)  # not a bridge header
    assert DEFAULT_QUIRKS.pcie_bridge_alias(br, topo) is False
    topo, br = _bridge_topology(vendor=0x1B21, device=0x1184)  # not listed
    assert DEFAULT_QUIRKS.pcie_bridge_alias(br, topo) is False
    on_root = root_port("00:1e.0", 0x1B21, 0x1080, sec=3, pcie_type=None)
    assert DEFAULT_QUIRKS.pcie_bridge_alias(on_root, Topology([on_root])) is False


def test_pci_bridge_no_alias() -> None:
    # quirk_aspeed_pci_bridge_no_alias: header fixup on 1a03:1150, unconditional.
    ast1150 = PciFunction(
        "01:00.0", 0x1A03, 0x1150, class_code=0x060400, header_type=1,
        pcie_type=PcieType.PCI_BRIDGE, secondary_bus=2, subordinate_bus=2,
    )  # fmt: skip
    assert DEFAULT_QUIRKS.pci_bridge_no_alias(ast1150)
    assert not DEFAULT_QUIRKS.bridge_xlate_root(ast1150)
    assert not DEFAULT_QUIRKS.pci_bridge_no_alias(root_port(vendor=0x1A03, device=0x1151))
    assert not DEFAULT_QUIRKS.for_kernel("6.12").pci_bridge_no_alias(ast1150)


def test_acs_capabilities_mask() -> None:
    # pci_disable_broken_acs_cap: IDT 0x80b5 and 0x8090 lose SV from the cached
    # capability (7.2 and 7.3 trees); other ids and older kernels keep it.
    cap = Acs(cap=REQ | EC, ctrl=RR | CR | UF)
    for device in (0x80B5, 0x8090):
        port = root_port(vendor=0x111D, device=device, acs=cap, pcie_type=PcieType.DOWNSTREAM)
        assert DEFAULT_QUIRKS.acs_capabilities(port) == RR | CR | UF | EC
        assert DEFAULT_QUIRKS.for_kernel("6.12").acs_capabilities(port) == REQ | EC
    other = root_port(vendor=0x111D, device=0x80B6, acs=cap, pcie_type=PcieType.DOWNSTREAM)
    assert DEFAULT_QUIRKS.acs_capabilities(other) == REQ | EC
    assert DEFAULT_QUIRKS.acs_capabilities(root_port(vendor=0x111D, device=0x80B5)) is None


def test_bridge_xlate_root() -> None:
    assert DEFAULT_QUIRKS.bridge_xlate_root(root_port(vendor=0x14E4, device=0x9000))
    assert DEFAULT_QUIRKS.bridge_xlate_root(root_port(vendor=0x14E4, device=0x9084))
    assert not DEFAULT_QUIRKS.bridge_xlate_root(root_port(vendor=0x14E4, device=0x9001))
    assert not DEFAULT_QUIRKS.bridge_xlate_root(root_port(vendor=0x177D, device=0x9000))


# --- user quirks ---------------------------------------------------------------------


def test_user_acs_quirk_is_tried_before_the_kernel_table() -> None:
    nic = dev("01:00.0", 0x8088, 0x1000)
    assert verdict(nic) is False  # pci_quirk_wangxun_nic_acs answers 0
    first = DEFAULT_QUIRKS.with_acs_quirk(AcsQuirk.isolated(0x8088, 0x1000))
    assert verdict(nic, quirks=first) is True
    last = DEFAULT_QUIRKS.with_acs_quirk(AcsQuirk.isolated(0x8088, 0x1000), first=False)
    assert verdict(nic, quirks=last) is False  # never reached
    # Nothing changed in the shared default tables.
    assert verdict(nic) is False
    assert DEFAULT_QUIRKS.user_acs == ()


def test_user_quirks_keep_insertion_order() -> None:
    q = DEFAULT_QUIRKS.with_acs_quirk(AcsQuirk.not_isolated(0x1234, None, name="a"))
    q = q.with_acs_quirk(AcsQuirk.isolated(0x1234, 0x5678, name="b"))
    fn = dev("01:00.0", 0x1234, 0x5678)
    ctx = ctx_for(fn, quirks=q)
    assert q.acs_decision(fn, REQ, ctx)[1].name == "a"  # type: ignore[union-attr]
    assert [e.name for e in q.acs_entries()][:2] == ["a", "b"]


def test_user_quirk_returning_none_falls_through() -> None:
    calls: list[str] = []

    def probe(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
        calls.append(str(fn.address))
        return None

    q = DEFAULT_QUIRKS.with_acs_quirk(AcsQuirk(INTEL, None, "probe", probe))
    rp = root_port(device=0x1C10)
    assert verdict(rp, quirks=q) is True
    _, quirk = q.acs_decision(rp, REQ, ctx_for(rp, quirks=q))
    assert quirk is not None
    assert quirk.name == "pci_quirk_intel_pch_acs"
    assert calls == ["0000:00:1c.0", "0000:00:1c.0"]


def test_user_not_isolated_overrides_kernel_quirk() -> None:
    sf = dev("03:00.0", 0x1924, 0x0903, multifunction=True)
    q = DEFAULT_QUIRKS.with_acs_quirk(AcsQuirk.not_isolated(0x1924, 0x0903))
    assert verdict(sf, quirks=q) is False
    assert verdict(sf, AcsFlags.NONE, quirks=q) is True


def test_declarative_quirk_pcie_type_filter() -> None:
    q = Quirks.none().with_acs_quirk(
        AcsQuirk.isolated(0x1234, None, pcie_types=["ROOT_PORT", "DOWNSTREAM"])
    )
    assert verdict(root_port(vendor=0x1234), quirks=q) is True
    assert verdict(dev("01:00.0", 0x1234, 0x1), quirks=q) is None
    assert verdict(root_port(vendor=0x1234), REQ | EC, quirks=q) is False
    wide = Quirks.none().with_acs_quirk(AcsQuirk.isolated(0x1234, None, provides=REQ | EC))
    assert verdict(root_port(vendor=0x1234), REQ | EC, quirks=wide) is True


def test_acs_quirk_mapping_round_trip() -> None:
    q = AcsQuirk.isolated(0x1234, 0x5678, provides=SV | RR, pcie_types=[PcieType.ROOT_PORT])
    data = q.to_mapping()
    assert data == {
        "vendor": "1234",
        "device": "5678",
        "name": "user_isolated_1234_5678",
        "verdict": "isolated",
        "provides": "SV|RR",
        "pcie_types": ["ROOT_PORT"],
    }
    assert AcsQuirk.from_mapping(data) == q
    n = AcsQuirk.from_mapping({"vendor": "0x1234", "device": "*", "verdict": "not-isolated"})
    assert n == AcsQuirk.not_isolated(0x1234, None)
    assert AcsQuirk.from_mapping(n.to_mapping()) == n


@pytest.mark.parametrize(
    "data",
    [
        {"vendor": "1234", "device": "5678"},
        {"vendor": "1234", "device": "5678", "verdict": "maybe"},
        {"vendor": "1234", "device": "5678", "verdict": "isolated", "colour": "red"},
        {"vendor": "12345", "device": "5678", "verdict": "isolated"},
        {"vendor": "1234", "device": "5678", "verdict": "not_isolated", "provides": "SV"},
        {"vendor": "1234", "device": "5678", "verdict": "isolated", "provides": "XX"},
        {"vendor": "1234", "device": "5678", "verdict": "isolated", "pcie_types": ["NOPE"]},
    ],
)
def test_acs_quirk_mapping_errors(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        AcsQuirk.from_mapping(data)


def test_callable_acs_quirk_is_not_serialisable() -> None:
    kernel = DEFAULT_QUIRKS.acs[0]
    assert not kernel.is_declarative
    with pytest.raises(ValueError, match="Python check"):
        kernel.to_mapping()


def test_user_dma_alias_quirk() -> None:
    q = DEFAULT_QUIRKS.with_dma_alias_quirk(
        DmaAliasQuirk(0x1234, 0x5678, devfns=["1f.7", 0x10]),
        DmaAliasQuirk(0x1234, 0x9999, kind="slot_function", functions={0, 2}),
    )
    assert q.dma_alias_devfns(dev("04:00.0", 0x1234, 0x5678)) == {0xFF, 0x10}
    assert q.dma_alias_devfns(dev("04:03.2", 0x1234, 0x9999)) == {0x18}
    assert q.dma_alias_devfns(dev("04:03.1", 0x1234, 0x9999)) == {0x18, 0x1A}
    assert DEFAULT_QUIRKS.dma_alias_devfns(dev("04:00.0", 0x1234, 0x5678)) == frozenset()


def test_dma_alias_quirk_from_mapping() -> None:
    q = DmaAliasQuirk.from_mapping(
        {"vendor": "0x1234", "device": "5678", "devfns": ["01.0"], "name": "mine"}
    )
    assert q == DmaAliasQuirk(0x1234, 0x5678, devfns={8}, name="mine")
    s = DmaAliasQuirk.from_mapping(
        {
            "vendor": 0x9005,
            "device": 0x0285,
            "devfns": [8],
            "subsystem_vendor": "9005",
            "subsystem_device": "02bb",
        }
    )
    assert s.matches(
        dev("01:00.0", 0x9005, 0x0285, subsystem_vendor=0x9005, subsystem_device=0x2BB)
    )
    with pytest.raises(ValueError, match="unknown"):
        DmaAliasQuirk.from_mapping({"vendor": 1, "device": 2, "alias": 3})
    with pytest.raises(ValueError):  # noqa: PT011
        DmaAliasQuirk(0x1234, 0x5678, devfns=[256])
    with pytest.raises(ValueError):  # noqa: PT011
        DmaAliasQuirk(0x1234, 0x5678, kind="phantom")  # no phantom functions in Linux (R3.7)


def test_user_bridge_flag_quirk() -> None:
    aspeed = root_port("00:1c.0", 0x1A03, 0x1150)
    assert not DEFAULT_QUIRKS.bridge_xlate_root(aspeed)
    q = DEFAULT_QUIRKS.with_bridge_flag_quirk(
        BridgeFlagQuirk(0x1A03, 0x1150, BridgeFlag.BRIDGE_XLATE_ROOT, name="ast1150")
    )
    assert q.bridge_xlate_root(aspeed)
    q2 = DEFAULT_QUIRKS.with_bridge_flag_quirk(
        BridgeFlagQuirk(0x1B21, 0x1184, "pcie_bridge_alias")
    )
    topo, br = _bridge_topology(vendor=0x1B21, device=0x1184)
    assert q2.pcie_bridge_alias(br, topo)


def test_without_removes_kernel_quirks() -> None:
    rciep = dev("00:02.0", INTEL, 0x9A49, PcieType.RC_END)
    old = DEFAULT_QUIRKS.without("pci_quirk_rciep_acs")
    assert verdict(rciep, quirks=old) is None
    assert len(old.acs) == 131
    assert (
        old.without("quirk_dma_func1_alias").dma_alias_devfns(dev("03:00.0", 0x1B4B, 0x9230))
        == frozenset()
    )


def test_quirks_none_and_default() -> None:
    assert Quirks() == DEFAULT_QUIRKS
    empty = Quirks.none()
    assert verdict(root_port(device=0x1C10), quirks=empty) is None
    assert empty.dma_alias_devfns(dev("03:00.0", 0x1B4B, 0x9230)) == frozenset()
    assert not empty.bridge_xlate_root(root_port(vendor=0x14E4, device=0x9000))
    idt = root_port(vendor=0x111D, device=0x80B5, acs=Acs(cap=REQ, ctrl=REQ))
    assert empty.acs_capabilities(idt) == REQ


def test_quirk_context_defaults_and_equality() -> None:
    topo = Topology([root_port()])
    a = QuirkContext(topo)
    b = QuirkContext(topo)
    a.path_cache[root_port().address] = True
    assert a == b
    assert a.quirks is DEFAULT_QUIRKS
    assert a.acs_requested is True
    assert a.amd_ivrs is False


def test_id_validation() -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        AcsQuirk.isolated(0x10000, 1)
    assert (
        AcsQuirk.from_mapping({"vendor": 0xFFFF, "device": "*", "verdict": "isolated"}).vendor
        is None
    )
