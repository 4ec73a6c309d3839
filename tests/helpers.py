"""Small builders for hand-made topologies in tests."""

from __future__ import annotations

from iommugroups import Acs, AcsFlags, PcieType, PciFunction

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
