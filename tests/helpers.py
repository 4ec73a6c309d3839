"""Small builders for hand-made topologies in tests."""

from __future__ import annotations

from iommugroups import Acs, AcsFlags, PcieType, PciFunction, SriovCapability, Topology

#: The JSON Schema keywords ``iommugroups.schemas.validate`` implements, and the
#: annotations; the schemas (and the files shipped from them) use no others.
SCHEMA_KEYWORDS = frozenset(
    {
        "$schema",
        "$defs",
        "$ref",
        "title",
        "description",
        "type",
        "properties",
        "required",
        "additionalProperties",
        "propertyNames",
        "items",
        "enum",
        "const",
        "pattern",
        "minimum",
        "oneOf",
        "anyOf",
    }
)

FULL = AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF
ISOLATING = Acs(cap=FULL | AcsFlags.TB, ctrl=FULL)


def bridge(
    addr: str,
    sec: int,
    sub: int | None = None,
    *,
    kind: PcieType | None = PcieType.ROOT_PORT,
    acs: Acs | None = None,
    mf: bool = False,
    vendor: int = 0x1B36,
    device: int = 0x000C,
) -> PciFunction:
    """A PCI-PCI bridge (a root port by default, without ACS by default)."""
    return PciFunction(
        addr,
        vendor=vendor,
        device=device,
        class_code=0x060400,
        header_type=1,
        multifunction=mf,
        pcie_type=kind,
        acs=acs,
        secondary_bus=sec,
        subordinate_bus=sub if sub is not None else sec,
    )


def ep(
    addr: str,
    *,
    vendor: int = 0x1B36,
    device: int = 0x0010,
    class_code: int = 0x010802,
    kind: PcieType | None = PcieType.ENDPOINT,
    mf: bool = False,
    acs: Acs | None = None,
    aliases: frozenset[int] = frozenset(),
    physfn: str | None = None,
) -> PciFunction:
    """An endpoint (PCIe by default; ``kind=None`` for conventional PCI)."""
    return PciFunction(
        addr,
        vendor=vendor,
        device=device,
        class_code=class_code,
        multifunction=mf,
        pcie_type=kind,
        acs=acs,
        dma_alias_devfns=aliases,
        physfn=physfn,
    )


def one_way_vf() -> Topology:
    """A Wangxun PF whose VF lands at ``00:01.1``, in the slot of a multifunction
    endpoint ``00:01.0`` without ACS: the endpoint looks at its non-isolated slot peers
    (R5.2), the VF, not multifunction, at nobody (R5.6). No IOMMU: add one with
    ``iommugroups.testing.with_iommu``."""
    pf = PciFunction(
        "00:00.0",
        vendor=0x8088,
        device=0x1001,
        class_code=0x020000,
        pcie_type=PcieType.ENDPOINT,
        sriov=SriovCapability(total_vfs=1, num_vfs=1, offset=9, stride=1, vf_device=0x1002),
    )
    mf = ep("00:01.0", vendor=0x1AF4, device=0x1041, class_code=0x020000, mf=True)
    vf = PciFunction(
        "00:01.1",
        vendor=0x8088,
        device=0x1002,
        class_code=0x020000,
        pcie_type=PcieType.ENDPOINT,
        physfn="00:00.0",
    )
    return Topology([pf, mf, vf])
