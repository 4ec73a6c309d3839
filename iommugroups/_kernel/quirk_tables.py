"""Raw id tables of the kernel's grouping quirks (``drivers/pci/quirks.c``).

Data only, no logic: :mod:`iommugroups._kernel.quirks` builds the quirk objects from
these tables. Ids, their grouping into families and their order follow the
kernel source read for this model (see the :mod:`iommugroups._kernel.quirks` module
docstring for the exact tree and commit). Vendor ids are the values of the
``PCI_VENDOR_ID_*`` macros of ``include/linux/pci_ids.h``.

``None`` in a (vendor, device) pair is the kernel's ``PCI_ANY_ID``.

The lists are those of the newest modelled kernel (Linux 7.3), which holds
every entry any modelled kernel had. :data:`DATED` says which entries are
not in every modelled kernel, with the versions they hold in and the source
of each date; ``tools/date_quirks.py`` compares the lists with the kernel
source trees (``tools/quirk_dates.json``).
"""

from __future__ import annotations

from typing import NamedTuple

__all__: list[str] = []  # internal module: import names explicitly

# --- vendor ids (include/linux/pci_ids.h) ------------------------------------
VENDOR_LOONGSON = 0x0014
VENDOR_ATI = 0x1002
VENDOR_AMD = 0x1022
VENDOR_EFAR = 0x1055
VENDOR_PLX = 0x10B5
VENDOR_EMULEX = 0x10DF  # written as a bare number in the kernel table
VENDOR_TUNDRA = 0x10E3  # written as a bare number in the kernel
VENDOR_AMCC = 0x10E8
VENDOR_TTI = 0x1103
VENDOR_RICOH = 0x1180
VENDOR_IDT = 0x111D
VENDOR_MICROSEMI = 0x11F8
VENDOR_ITE = 0x1283  # written as a bare number in the kernel
VENDOR_BROADCOM = 0x14E4
VENDOR_CAVIUM = 0x177D
VENDOR_QCOM = 0x17CB
VENDOR_SOLARFLARE = 0x1924
VENDOR_NXP = 0x1957
VENDOR_JMICRON = 0x197B
VENDOR_SERVERENGINES = 0x19A2  # Emulex BE3-R; a bare number in the kernel table
VENDOR_ASPEED = 0x1A03
VENDOR_ASMEDIA = 0x1B21
VENDOR_MARVELL_EXT = 0x1B4B
VENDOR_LITEON = 0x1C28  # written as a bare number in the kernel
VENDOR_AMAZON_ANNAPURNA_LABS = 0x1C36
VENDOR_ZHAOXIN = 0x1D17
VENDOR_HXT = 0x1DBF
VENDOR_AMPERE = 0x1DEF
VENDOR_GLENFLY = 0x6766
VENDOR_INTEL = 0x8086
VENDOR_WANGXUN = 0x8088
VENDOR_ADAPTEC2 = 0x9005

# --- ACS: pci_dev_acs_enabled[] id lists, per family, in table order ---------

#: ``pci_quirk_amd_sb_acs`` entries: (vendor, device).
AMD_SB_IDS: tuple[tuple[int, int], ...] = (
    (VENDOR_ATI, 0x4385),  # SBx00 SMBus
    (VENDOR_ATI, 0x439C),  # SB7x0/SB8x0/SB9x0 IDE
    (VENDOR_ATI, 0x4383),  # SBx00 Azalia
    (VENDOR_ATI, 0x439D),  # SB7x0/SB8x0/SB9x0 LPC
    (VENDOR_ATI, 0x4384),  # SBx00 PCI-to-PCI bridge
    (VENDOR_ATI, 0x4399),  # SB7x0/SB8x0/SB9x0 USB OHCI2
    (VENDOR_AMD, 0x780F),  # FCH PCI bridge
    (VENDOR_AMD, 0x7809),  # FCH USB OHCI
)

#: Solarflare multifunction endpoints (``pci_quirk_mf_endpoint_acs``).
SOLARFLARE_MF_IDS: tuple[int, ...] = (0x0903, 0x0923, 0x0A03)

#: Intel multifunction NICs (``pci_quirk_mf_endpoint_acs``), table order.
INTEL_MF_IDS: tuple[int, ...] = (
    # 82598 / 82599 / X520 / X540 family
    0x10C6, 0x10DB, 0x10DD, 0x10E1, 0x10F1, 0x10F7, 0x10F8, 0x10F9,
    0x10FA, 0x10FB, 0x10FC, 0x1507, 0x1514, 0x151C, 0x1529, 0x152A,
    0x154D, 0x154F, 0x1551, 0x1558,
    # 82580
    0x1509, 0x150E, 0x150F, 0x1510, 0x1511, 0x1516, 0x1527,
    # 82576
    0x10C9, 0x10E6, 0x10E7, 0x10E8, 0x150A, 0x150D, 0x1518, 0x1526,
    # 82575
    0x10A7, 0x10A9, 0x10D6,
    # I350
    0x1521, 0x1522, 0x1523, 0x1524,
    # 82571 (the kernel omits the quad-port parts: they sit behind a non-ACS switch)
    0x105E, 0x105F, 0x1060, 0x10D9,
    # I219
    0x15B7, 0x15B8,
)  # fmt: skip

#: ``pci_quirk_qcom_rp_acs`` entries, table order: QDF2xxx, SA8775P, Hamoa,
#: Glymur, HXT SD4800.
QCOM_RP_IDS: tuple[tuple[int, int], ...] = (
    (VENDOR_QCOM, 0x0400),
    (VENDOR_QCOM, 0x0401),
    (VENDOR_QCOM, 0x0115),
    (VENDOR_QCOM, 0x0111),
    (VENDOR_QCOM, 0x0120),
    (VENDOR_HXT, 0x0401),
)

#: Emulex multifunction endpoints (``pci_quirk_mf_endpoint_acs``).
EMULEX_MF_IDS: tuple[tuple[int, int], ...] = (
    (VENDOR_SERVERENGINES, 0x0710),  # BE3-R
    (VENDOR_EMULEX, 0x0720),  # Skyhawk-R
)

#: Cavium multifunction devices (``pci_quirk_mf_endpoint_acs``).
CAVIUM_MF_IDS: tuple[int, ...] = (0xA026, 0xA059, 0xA060)

#: ``pci_quirk_xgene_acs`` entries: APM X-Gene, then Ampere Computing.
XGENE_IDS: tuple[tuple[int, int], ...] = (
    (VENDOR_AMCC, 0xE004),
    *((VENDOR_AMPERE, d) for d in range(0xE005, 0xE00C + 1)),
)

#: Broadcom multifunction devices (``pci_quirk_mf_endpoint_acs``).
BROADCOM_MF_IDS: tuple[int, ...] = (
    0x16D7, 0x1750, 0x1751, 0x1752, 0x1760, 0x1761, 0x1762, 0x1763,
)  # fmt: skip

#: Broadcom iProc PAXB root port (``pci_quirk_brcm_acs``).
BROADCOM_RP_IDS: tuple[int, ...] = (0xD714,)

#: Loongson root ports (``pci_quirk_loongson_acs``).
LOONGSON_RP_IDS: tuple[int, ...] = (
    0x3C09, 0x3C19, 0x3C29, 0x7A09, 0x7A19, 0x7A29, 0x7A39, 0x7A49,
    0x7A59, 0x7A69,
)  # fmt: skip

#: Amazon Annapurna Labs (``pci_quirk_al_acs``).
ANNAPURNA_IDS: tuple[int, ...] = (0x0031,)

#: Zhaoxin multifunction devices (``pci_quirk_mf_endpoint_acs``).
ZHAOXIN_MF_IDS: tuple[int, ...] = (0x3038, 0x3104, 0x9083)

#: NXP LX2xxx root ports (``pci_quirk_nxp_rp_acs``), table order.
NXP_RP_IDS: tuple[int, ...] = (
    0x8D81, 0x8DA1, 0x8D83,  # LX2xx0A
    0x8D80, 0x8DA0, 0x8D82,  # LX2xx0C
    0x8D90, 0x8DB0, 0x8D92,  # LX2xx0E
    0x8D91, 0x8DB1, 0x8D93,  # LX2xx0N
    0x8D89, 0x8DA9, 0x8D8B,  # LX2xx2A
    0x8D88, 0x8DA8, 0x8D8A,  # LX2xx2C
    0x8D98, 0x8DB8, 0x8D9A,  # LX2xx2E
    0x8D99, 0x8DB9, 0x8D9B,  # LX2xx2N
)  # fmt: skip

# --- ACS: device-id sets tested inside quirk functions -----------------------

#: ``pci_quirk_intel_pch_acs_ids[]`` (root ports only, Red Hat bz 1037684).
INTEL_PCH_ACS_IDS: tuple[int, ...] = (
    # Ibexpeak
    *range(0x3B42, 0x3B51 + 1),
    # Cougarpoint
    *range(0x1C10, 0x1C1F + 1),
    # Pantherpoint
    *range(0x1E10, 0x1E1F + 1),
    # Lynxpoint-H
    *range(0x8C10, 0x8C1F + 1),
    # Lynxpoint-LP
    *range(0x9C10, 0x9C1B + 1),
    # Wildcat
    *range(0x9C90, 0x9C9B + 1),
    # Patsburg (X79): even ids only
    *range(0x1D10, 0x1D1E + 1, 2),
    # Wellsburg (X99)
    *range(0x8D10, 0x8D1E + 1),
    # Lynx Point (9 series): even ids only
    *range(0x8C90, 0x8C9E + 1, 2),
)

#: ``pci_quirk_intel_spt_pch_acs_match`` ranges (inclusive), root ports only.
INTEL_SPT_ACS_RANGES: tuple[tuple[int, int], ...] = (
    (0xA110, 0xA11F),  # Sunrise Point-H
    (0xA167, 0xA16A),  # Sunrise Point-H
    (0xA290, 0xA29F),  # Union Point
    (0xA2E7, 0xA2EE),  # Union Point
    (0x9D10, 0x9D1B),  # 7th/8th generation mobile
)

#: ``pci_quirk_cavium_acs_match`` ranges (inclusive), root ports only.
CAVIUM_RP_RANGES: tuple[tuple[int, int], ...] = (
    (0xA000, 0xA7FF),  # ThunderX1
    (0xAF84, 0xAF84),  # ThunderX2
    (0xB884, 0xB884),  # ThunderX3
)

#: ``pci_quirk_zhaoxin_pcie_ports_acs`` ranges (inclusive), root/downstream ports.
ZHAOXIN_PORT_RANGES: tuple[tuple[int, int], ...] = (
    (0x0710, 0x071E),
    (0x0721, 0x0721),
    (0x0723, 0x0732),
    (0x0733, 0x0752),  # "more Zhaoxin Root Ports" (v6.8): one case 0x0723 ... 0x0752 since
)

#: ``pci_quirk_wangxun_nic_acs`` ranges (inclusive): EM, SP, AML families.
WANGXUN_NIC_RANGES: tuple[tuple[int, int], ...] = (
    (0x0100, 0x010F),  # SFxxx 1G (em)
    (0x1001, 0x1001),  # RP1000/RP2000 10G (sp)
    (0x2001, 0x2001),
    (0x5010, 0x5010),  # FF5xxx 40G/25G/10G (aml)
    (0x5025, 0x5025),
    (0x5040, 0x5040),
    (0x5110, 0x5110),
    (0x5125, 0x5125),
    (0x5140, 0x5140),
)

# --- DMA aliases (header fixups unless noted), in file order -----------------

#: ``quirk_dma_func0_alias``: Ricoh, then Glenfly.
DMA_FUNC0_IDS: tuple[tuple[int, int], ...] = (
    (VENDOR_RICOH, 0xE832),
    (VENDOR_RICOH, 0xE476),
    (VENDOR_GLENFLY, 0x3D40),
    (VENDOR_GLENFLY, 0x3D41),
)

#: ``quirk_dma_func1_alias`` Marvell SATA controllers (PCI_VENDOR_ID_MARVELL_EXT).
MARVELL_FUNC1_IDS: tuple[int, ...] = (
    0x9120, 0x9123, 0x9125, 0x9128, 0x9130, 0x9170, 0x9172, 0x917A,
    0x9182, 0x9183, 0x91A0, 0x9215, 0x9220, 0x9230, 0x9235,
)  # fmt: skip

#: ``quirk_dma_func1_alias``: Marvell SATA, TTI, JMicron JMB388 ESD, Lite-On M6E.
DMA_FUNC1_IDS: tuple[tuple[int, int], ...] = (
    *((VENDOR_MARVELL_EXT, d) for d in MARVELL_FUNC1_IDS),
    (VENDOR_TTI, 0x0642),
    (VENDOR_TTI, 0x0645),
    (VENDOR_JMICRON, 0x2392),  # PCI_DEVICE_ID_JMICRON_JMB388_ESD
    (VENDOR_LITEON, 0x0122),  # Plextor M6E (Marvell 88SS9183)
)

#: ``fixed_dma_alias_tbl[]``: (vendor, device, subvendor, subdevice, alias devfn).
FIXED_DMA_ALIAS_TABLE: tuple[tuple[int, int, int, int, int], ...] = (
    (VENDOR_ADAPTEC2, 0x0285, VENDOR_ADAPTEC2, 0x02BB, 1 << 3 | 0),  # Adaptec 3405
    (VENDOR_ADAPTEC2, 0x0285, VENDOR_ADAPTEC2, 0x02BC, 1 << 3 | 0),  # Adaptec 3805
)

#: ``quirk_mic_x200_dma_alias``: Intel MIC x200 NTB.
MIC_X200_IDS: tuple[int, ...] = (0x2260, 0x2264)
#: The three devfns it adds (10.0, 11.0, 12.3), matching the EEPROM RIT-LUT.
MIC_X200_DEVFNS: tuple[int, ...] = (0x10 << 3 | 0, 0x11 << 3 | 0, 0x12 << 3 | 3)

#: ``quirk_pex_vca_alias``: Intel Visual Compute Accelerator.
PEX_VCA_IDS: tuple[int, ...] = (0x2954, 0x2955, 0x2956, 0x2958, 0x2959, 0x295A)
#: Functions 0-4 of all 32 slots (``pci_add_dma_alias(pdev, PCI_DEVFN(slot, 0), 5)``).
PEX_VCA_DEVFNS: tuple[int, ...] = tuple(slot << 3 | f for slot in range(32) for f in range(5))

#: ``quirk_switchtec_ntb_dma_alias`` (a *final* fixup, class PCI_CLASS_BRIDGE_OTHER).
SWITCHTEC_MICROSEMI_IDS: tuple[int, ...] = (
    # Gen3: PFX, PSX, PAX, PFXL, PFXI
    *range(0x8531, 0x8536 + 1),
    *range(0x8541, 0x8546 + 1),
    *range(0x8551, 0x8556 + 1),
    *range(0x8561, 0x8566 + 1),
    *range(0x8571, 0x8576 + 1),
    # Gen4: PFX, PSX, PAX, PFXA, PSXA, PAXA
    0x4000, 0x4084, 0x4068, 0x4052, 0x4036, 0x4028,
    0x4100, 0x4184, 0x4168, 0x4152, 0x4136, 0x4128,
    0x4200, 0x4284, 0x4268, 0x4252, 0x4236, 0x4228,
    0x4352, 0x4336, 0x4328,
    0x4452, 0x4436, 0x4428,
    0x4552, 0x4536, 0x4528,
    # Gen5: PFX, PSX, PAX, PFXA, PSXA, PAXA
    0x5000, 0x5084, 0x5068, 0x5052, 0x5036, 0x5028,
    0x5100, 0x5184, 0x5168, 0x5152, 0x5136, 0x5128,
    0x5200, 0x5284, 0x5268, 0x5252, 0x5236, 0x5228,
    0x5300, 0x5384, 0x5368, 0x5352, 0x5336, 0x5328,
    0x5400, 0x5484, 0x5468, 0x5452, 0x5436, 0x5428,
    0x5500, 0x5584, 0x5568, 0x5552, 0x5536, 0x5528,
)  # fmt: skip
#: ``SWITCHTEC_PCI100X_QUIRK``: the same quirk under vendor EFAR (PCI100x parts).
SWITCHTEC_EFAR_IDS: tuple[int, ...] = (*range(0x1001, 0x1006 + 1), 0x1008)
#: PCI_CLASS_BRIDGE_OTHER, compared with ``class_code >> 8``.
PCI_CLASS_BRIDGE_OTHER = 0x0680

#: ``quirk_plx_ntb_dma_alias``: PLX NTB, every devfn (``pci_add_dma_alias(pdev, 0, 256)``).
PLX_NTB_IDS: tuple[int, ...] = (0x87B0, 0x87B1)

# --- bridge flags (header fixups) --------------------------------------------

#: ``quirk_use_pcie_bridge_dma_alias`` (sets PCI_DEV_FLAG_PCIE_BRIDGE_ALIAS).
PCIE_BRIDGE_ALIAS_IDS: tuple[tuple[int, int], ...] = (
    (VENDOR_ASMEDIA, 0x1080),  # ASM1083/1085
    (VENDOR_TUNDRA, 0x8113),  # Tundra 8113
    (VENDOR_ITE, 0x8892),  # ITE 8892
    (VENDOR_ITE, 0x8893),  # ITE 8893
    (VENDOR_INTEL, 0x244E),  # Intel 82801
)

#: ``quirk_bridge_cavm_thrx2_pcie_root`` (sets PCI_DEV_FLAGS_BRIDGE_XLATE_ROOT).
BRIDGE_XLATE_ROOT_IDS: tuple[tuple[int, int], ...] = (
    (VENDOR_BROADCOM, 0x9000),
    (VENDOR_BROADCOM, 0x9084),
)

#: ``quirk_aspeed_pci_bridge_no_alias`` (sets PCI_DEV_FLAGS_PCI_BRIDGE_NO_ALIAS).
PCI_BRIDGE_NO_ALIAS_IDS: tuple[tuple[int, int], ...] = ((VENDOR_ASPEED, 0x1150),)  # AST1150

# --- the ACS capability (pci_acs_init) ----------------------------------------

#: ``pci_disable_broken_acs_cap``: IDT switches whose cached ACS capability
#: loses SV (erratum #36 of the 89H32H8G3-YC).
ACS_BROKEN_SV_IDS: tuple[tuple[int, int], ...] = ((VENDOR_IDT, 0x80B5), (VENDOR_IDT, 0x8090))

# --- versions -----------------------------------------------------------------


class Dated(NamedTuple):
    """An entry (or ids of an entry's list) that is not in every modelled kernel.

    Versions are ``(major, minor)``. ``since``: the first mainline version
    with it; ``after``: when ``since`` is only bounded, the last version
    known without it; ``until``: the first version without it again;
    ``backports``: modelled series older than ``since`` whose source tree
    has it all the same (a stable backport). ``kind`` is that of
    ``tools/date_quirks.py``: ``acs`` (an entry of ``pci_dev_acs_enabled[]``),
    ``acs-id`` (ids a function tests), ``acs-cap``, ``dma-alias``,
    ``bridge-flag``. ``first``/``last``: the device ids (inclusive), ``None``
    for the kernel's ``PCI_ANY_ID``.
    """

    kind: str
    function: str
    vendor: int
    first: int | None
    last: int | None
    since: tuple[int, int] | None
    after: tuple[int, int] | None = None
    until: tuple[int, int] | None = None
    backports: tuple[tuple[int, int], ...] = ()
    source: str = ""


_TREES_6_1 = ((6, 1),)
_TREES_6_1_6_12 = ((6, 1), (6, 12))

#: The dated entries, grouped by quirk. Every other entry of the lists above
#: is in every modelled kernel (6.1, 6.12, 7.2 and 7.3 trees) and was in
#: mainline by v6.1.
DATED: tuple[Dated, ...] = (
    # pci_dev_acs_enabled[] (R2.5/R2.6)
    Dated(
        "acs", "pci_quirk_qcom_rp_acs", VENDOR_QCOM, 0x0115, 0x0115,
        since=(6, 12), after=(6, 1), backports=_TREES_6_1,
        source='"PCI: Add ACS quirk for Qualcomm SA8775P": upstream before its 6.6-stable '
        "review of 2024-10-14 (≈v6.12); backported to 6.1.y",
    ),
    *(
        Dated(
            "acs", "pci_quirk_qcom_rp_acs", VENDOR_QCOM, d, d,
            since=(7, 0), after=(6, 18), backports=_TREES_6_1_6_12,
            source='44d2f70b1fd7 "PCI: Add ACS quirk for Qualcomm Hamoa & Glymur" (posted '
            "2026-01, ≈v7.0; not in the v6.18.y tree first read); backported to 6.1.y and "
            "6.12.y",
        )
        for d in (0x0111, 0x0120)
    ),
    *(
        Dated(
            "acs", "pci_quirk_mf_endpoint_acs", VENDOR_BROADCOM, d, d,
            since=(6, 13), after=(6, 9), backports=_TREES_6_1_6_12,
            source='"PCI: Add ACS quirk for Broadcom BCM5760X NIC": on pci.git defer/acs on '
            "2024-05-22, upstream before its 5.4-stable review of 2025-01-06; backported to "
            "6.1.y and 6.12.y",
        )
        for d in range(0x1760, 0x1763 + 1)
    ),
    *(
        Dated(
            "acs", "pci_quirk_loongson_acs", VENDOR_LOONGSON, d, d,
            since=(6, 16), after=(6, 14), backports=_TREES_6_1_6_12,
            source='1f3303aa92e1 "PCI: Add ACS quirk for Loongson PCIe" (v2 posted 2025-04, '
            "upstream before its 5.4-stable review of 2025-06-23, ≈v6.16); backported to "
            "6.1.y and 6.12.y",
        )
        for d in LOONGSON_RP_IDS
    ),
    Dated(
        "acs", "pci_quirk_wangxun_nic_acs", VENDOR_WANGXUN, None, None,
        since=(6, 3), after=(6, 1), backports=_TREES_6_1,
        source='"PCI: Add ACS quirk for Wangxun NICs" (posted 2023-02-01, merged for ≈v6.3); '
        "backported to 6.1.y",
    ),
    # ids tested inside ACS functions (R2.6)
    Dated(
        "acs-id", "pci_quirk_wangxun_nic_acs", VENDOR_WANGXUN, 0x0100, 0x010F,
        since=(6, 3), after=(6, 1), backports=_TREES_6_1,
        source="SFxxx (EM): with the entry itself",
    ),
    *(
        Dated(
            "acs-id", "pci_quirk_wangxun_nic_acs", VENDOR_WANGXUN, d, d,
            since=(6, 3), after=(6, 1), backports=_TREES_6_1,
            source="RP1000/RP2000 (SP): with the entry itself",
        )
        for d in (0x1001, 0x2001)
    ),
    *(
        Dated(
            "acs-id", "pci_quirk_wangxun_nic_acs", VENDOR_WANGXUN, d, d,
            since=(6, 13), backports=_TREES_6_1_6_12,
            source='aa46a3736afc "PCI: Add ACS quirk for Wangxun FF5xxx NICs" (merged for '
            "v6.13; in the 6.1-stable review of 2024-12-12); backported to 6.1.y and 6.12.y",
        )
        for d in (0x5010, 0x5025, 0x5040, 0x5110, 0x5125, 0x5140)
    ),
    Dated(
        "acs-id", "pci_quirk_zhaoxin_pcie_ports_acs", VENDOR_ZHAOXIN, 0x0733, 0x0752,
        since=(6, 8), backports=_TREES_6_1,
        source='e367e3c765f5 "PCI: Add ACS quirk for more Zhaoxin Root Ports" (its 6.7-stable '
        "review of 2024-01-18: upstream in v6.8, not in 6.7.0); backported to 6.1.y",
    ),
    # pci_acs_init() (R2.2)
    *(
        Dated(
            "acs-cap", "pci_disable_broken_acs_cap", VENDOR_IDT, d, d,
            since=(7, 0), after=(6, 12),
            source='"PCI: Disable ACS SV for IDT 0x80b5 switch", "... for IDT 0x8090 switch" '
            'with "PCI: Cache ACS Capabilities register" (≈v7.0, the series of R2.7); not in '
            "the 6.1 and 6.12 trees (which have pci_idt_bus_quirk() instead), in 7.2 and 7.3",
        )
        for d in (0x80B5, 0x8090)
    ),
    # DMA aliases (R3.5)
    *(
        Dated(
            "dma-alias", "quirk_dma_func0_alias", VENDOR_GLENFLY, d, d,
            since=(6, 12), after=(6, 1), backports=_TREES_6_1,
            source='"PCI: Add function 0 DMA alias quirk for Glenfly Arise chip" (5.4-stable '
            "review of 2024-11-06, ≈v6.12); backported to 6.1.y",
        )
        for d in (0x3D40, 0x3D41)
    ),
    Dated(
        "dma-alias", "quirk_switchtec_ntb_dma_alias", VENDOR_EFAR, 0x1008, 0x1008,
        since=(7, 3), after=(7, 2), backports=((6, 12),),
        source="SWITCHTEC_PCI100X_QUIRK(0x1008) (PCI1008XG4): in the 6.12 (6.12.117) and 7.3 "
        "trees, not in 6.1 (6.1.176) nor 7.2 (7.2.13); a backport to 6.12.y",
    ),
    # bridge flags (R3.4)
    Dated(
        "bridge-flag", "quirk_aspeed_pci_bridge_no_alias", VENDOR_ASPEED, 0x1150, 0x1150,
        since=(7, 2), after=(6, 12),
        source='550a190494a0 "PCI: Add PCI_BRIDGE_NO_ALIAS quirk for ASPEED AST1150" '
        "(2025-12, through pci.git's iommu branch, ≈v7.0); not in the 6.1 and 6.12 trees, in "
        "7.2 and 7.3",
    ),
)  # fmt: skip
