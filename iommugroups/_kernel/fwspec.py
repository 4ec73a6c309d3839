"""Firmware IOMMU specs: which IOMMU instance and stream ids a device uses.

Models the IORT side of ``drivers/acpi/arm64/iort.c``: for a PCI device,
every DMA alias requester id (in ``pci_for_each_dma_alias`` order) is mapped
through its root complex's ID mappings to a stream id, and each is appended
to the device's fwspec (R3.8). Platform devices carry their stream ids
directly (named-component mappings).

A topology that declares no IOMMU instance is taken to have one implicit
IOMMU translating every PCI device (the x86 VT-d / AMD-Vi case), and no
stream-id semantics.
"""

from __future__ import annotations

from collections.abc import Mapping

from .alias import pci_for_each_dma_alias
from .model import FwSpec, PciFunction, PlatformDevice
from .quirks import QuirkContext

__all__ = ["IMPLICIT_IOMMU", "StreamTree", "pci_fwspec", "platform_fwspec"]

#: The name used for the implicit IOMMU of a topology that declares none.
IMPLICIT_IOMMU = "iommu"
_IMPLICIT = FwSpec(IMPLICIT_IOMMU, ())


def pci_fwspec(fn: PciFunction, ctx: QuirkContext) -> FwSpec | None:
    """R3.8 ``iort_iommu_configure`` for a PCI device: its fwspec, or ``None``.

    ``None`` means no IOMMU translates the device (no ID mapping covers its
    requester id). The instance is the one the *first* alias maps to; later
    aliases that map elsewhere are dropped (``iommu_fwspec_init`` refuses a
    second instance, R7.4).
    """
    topo = ctx.topology
    if not topo.iommus:
        return _IMPLICIT
    iommu: str | None = None
    sids: list[int] = []
    dom = fn.address.domain
    for _who, rid in pci_for_each_dma_alias(fn, ctx):
        for m in topo.id_mappings:
            sid = m.map(dom, rid)
            if sid is None:
                continue
            if iommu is None:
                iommu = m.iommu
            if m.iommu == iommu:  # iommu_fwspec_add_ids keeps duplicates
                sids.append(sid)
            break
    return None if iommu is None else FwSpec(iommu, tuple(sids))


def platform_fwspec(dev: PlatformDevice) -> FwSpec | None:
    """A platform device's fwspec (its named-component stream ids), or ``None``."""
    if dev.iommu is None:
        return None
    return FwSpec(dev.iommu, dev.stream_ids)


class StreamTree:
    """Which device holds each (IOMMU instance, stream id), as the SMMU drivers track it.

    The first device to register a stream id holds it until released. Used
    for the SMMUv3 refusal of a stream id another device holds (R7.9) and
    the SMMUv2 stream-match sharing (R1.7).
    """

    __slots__ = ("_holder",)

    def __init__(self) -> None:
        self._holder: dict[tuple[str, int], str] = {}

    def holder(self, iommu: str, sid: int) -> str | None:
        """The device holding stream ``sid`` of ``iommu``, if any."""
        return self._holder.get((iommu, sid))

    def clash(self, spec: FwSpec, device: str) -> tuple[int, str] | None:
        """R7.9: the first of ``spec``'s stream ids another device holds, and that device."""
        for sid in spec.stream_ids:
            other = self._holder.get((spec.iommu, sid))
            if other is not None and other != device:
                return sid, other
        return None

    def groups(self, spec: FwSpec, member_of: Mapping[str, int]) -> set[int]:
        """R1.7: the groups of the devices holding any of ``spec``'s stream ids."""
        return {
            member_of[other]
            for sid in spec.stream_ids
            if (other := self._holder.get((spec.iommu, sid))) is not None and other in member_of
        }

    def shared(
        self, spec: FwSpec, device: str, member_of: Mapping[str, int], group: int
    ) -> tuple[str, tuple[int, ...]] | None:
        """R1.7: a device of ``group`` holding one of ``spec``'s stream ids, and the ids it holds.

        The first such holder in ``spec``'s stream-id order; ``None`` when none.
        """
        for sid in spec.stream_ids:
            owner = self._holder.get((spec.iommu, sid))
            if owner is None or owner == device or member_of.get(owner) != group:
                continue
            ids = sorted(
                {s for s in spec.stream_ids if self._holder.get((spec.iommu, s)) == owner}
            )
            return owner, tuple(ids)
        return None

    def add(self, spec: FwSpec, device: str) -> None:
        """Register ``spec``'s stream ids for ``device`` (ids already held stay so)."""
        for sid in spec.stream_ids:
            self._holder.setdefault((spec.iommu, sid), device)

    def release(self, device: str) -> None:
        """Forget every stream id ``device`` holds (``arm_smmu_remove_master``)."""
        for key in [k for k, v in self._holder.items() if v == device]:
            del self._holder[key]
