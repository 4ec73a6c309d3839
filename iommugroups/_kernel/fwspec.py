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
from typing import NamedTuple

from .alias import dma_aliases
from .model import FwSpec, IommuKind, PciAddress, PciFunction, PlatformDevice
from .quirks import QuirkContext

__all__ = [
    "IMPLICIT_IOMMU",
    "Refused",
    "SmmuV2Group",
    "StreamTree",
    "Translated",
    "iommu_lookup",
    "pci_fwspec",
    "platform_fwspec",
]

#: The name used for the implicit IOMMU of a topology that declares none.
IMPLICIT_IOMMU = "iommu"
_IMPLICIT = FwSpec(IMPLICIT_IOMMU, ())

_tuple_new = tuple.__new__  # a named tuple made in C, for those made once per device

# (an enum member read off its class goes through the enum machinery: read once)
_SMMU_V2, _SMMU_V3 = IommuKind.SMMU_V2, IommuKind.SMMU_V3


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
    dom = fn.address[0]
    mappings = topo._index.mappings_of(topo.id_mappings, dom)  # those of its domain
    if not mappings:  # none can map any of its aliases
        return None
    iommu: str | None = None
    sids: list[int] = []
    for _who, rid in dma_aliases(fn, ctx):  # pci_for_each_dma_alias
        for m in mappings:
            sid = m.map(dom, rid)
            if sid is None:
                continue
            if iommu is None:
                iommu = m.iommu
            if m.iommu == iommu:  # iommu_fwspec_add_ids keeps duplicates
                sids.append(sid)
            break
    # (made as the tuple it is, in C: a named tuple's own __new__ is Python)
    return None if iommu is None else _tuple_new(FwSpec, (iommu, tuple(sids)))


def platform_fwspec(dev: PlatformDevice) -> FwSpec | None:
    """A platform device's fwspec (its named-component stream ids), or ``None``."""
    if dev.iommu is None:
        return None
    return FwSpec(dev.iommu, dev.stream_ids)


class SmmuV2Group(NamedTuple):
    """What ``arm_smmu_device_group`` found on a device's stream-map entries (R1.7).

    Attributes:
        conflict: two successive entries remember different groups: -EINVAL,
            the device gets no group.
        group: the group remembered on the device's last entry (``None``:
            none; the device's group is then made, R4/R1.5).
        via: the device whose stream id carried that group.
        stream_ids: the ids of the device that device holds.
    """

    conflict: bool
    group: int | None
    via: str | None = None
    stream_ids: tuple[int, ...] = ()


class StreamTree:
    """The SMMU drivers' view of stream ids: who holds each, and the group an entry remembers.

    * SMMUv3 (R7.9): the first device to register a stream id holds it until
      released; another device with that id is refused.
    * SMMUv2 (R1.7, ``arm-smmu.c``): devices with the same stream id share
      one stream-map entry (counted); when a device's group is *made*
      (``pci_device_group``, ``generic_device_group``) it is remembered on
      every entry of the device ("Remember group for faster lookups"), and
      forgotten when an entry's last user leaves. Entries match by exact
      stream id (stream-match masks are not modelled).
    """

    __slots__ = ("_holder", "_remembered", "_users")

    def __init__(self) -> None:
        # per IOMMU instance, per stream id (int keys: no tuple made per look-up)
        self._holder: dict[str, dict[int, str]] = {}
        self._remembered: dict[str, dict[int, int]] = {}
        self._users: dict[str, dict[int, int]] = {}

    def holder(self, iommu: str, sid: int) -> str | None:
        """The device holding stream ``sid`` of ``iommu``, if any."""
        held = self._holder.get(iommu)
        return None if held is None else held.get(sid)

    def clash(self, spec: FwSpec, device: str) -> tuple[int, str] | None:
        """R7.9: the first of ``spec``'s stream ids another device holds, and that device."""
        held = self._holder.get(spec.iommu)
        if held:
            for sid in spec.stream_ids:
                other = held.get(sid)
                if other is not None and other != device:
                    return sid, other
        return None

    def smmu_v2_group(self, spec: FwSpec) -> SmmuV2Group:
        """R1.7 ``arm_smmu_device_group``: the group the device's entries remember.

        The kernel's loop over the entries, in fwspec order: the group is the
        *last* entry's (which may be none even when an earlier one had one),
        and two successive entries remembering different groups are -EINVAL.
        """
        remembered = self._remembered.get(spec.iommu, {})
        group: int | None = None
        last: int | None = None
        for sid in spec.stream_ids:
            g = remembered.get(sid)
            if group is not None and g is not None and group != g:
                return SmmuV2Group(True, None)
            group = g
            last = sid
        if group is None or last is None:
            return SmmuV2Group(False, None)
        held = self._holder.get(spec.iommu, {})
        via = held.get(last)
        ids = tuple(sorted({s for s in spec.stream_ids if held.get(s) == via}))
        return SmmuV2Group(False, group, via, ids)

    def remember(self, spec: FwSpec, group: int) -> None:
        """R1.7: a group made for a device is remembered on each of its entries."""
        remembered = self._remembered.setdefault(spec.iommu, {})
        for sid in spec.stream_ids:
            remembered[sid] = group

    def add(self, spec: FwSpec, device: str) -> None:
        """Register ``spec``'s stream ids for ``device`` (ids already held stay so)."""
        iommu = spec.iommu
        held = self._holder.get(iommu)
        if held is None:
            held = self._holder[iommu] = {}
            self._users[iommu] = {}
        users = self._users[iommu]
        for sid in spec.stream_ids:
            held.setdefault(sid, device)
            users[sid] = users.get(sid, 0) + 1

    def release(self, spec: FwSpec, device: str) -> None:
        """``arm_smmu_remove_master`` / ``arm_smmu_master_free_smes``.

        The device's stream ids leave the SMMUv3 tree; an SMMUv2 entry whose
        last user leaves forgets its group.
        """
        held = self._holder.get(spec.iommu, {})
        users = self._users.get(spec.iommu, {})
        remembered = self._remembered.get(spec.iommu, {})
        for sid in spec.stream_ids:
            if held.get(sid) == device:
                del held[sid]
            left = users.get(sid, 0) - 1
            if left > 0:
                users[sid] = left
            else:
                users.pop(sid, None)
                remembered.pop(sid, None)


class Translated(NamedTuple):
    """A device an IOMMU will group: its fwspec, its bus, the IOMMU's kind and, on an
    SMMUv2, what its stream-map entries remember (R1.7; ``None`` elsewhere)."""

    spec: FwSpec
    bus: str
    kind: IommuKind | None
    v2: SmmuV2Group | None


class Refused(NamedTuple):
    """A device the IOMMU core gives no group before any ``device_group`` runs."""

    why: str
    rule: str


def iommu_lookup(
    dev: PciFunction | PlatformDevice,
    name: str,
    ctx: QuirkContext,
    untranslated: Mapping[PciAddress, tuple[str, str]],
    kinds: Mapping[str, IommuKind],
    streams: StreamTree,
) -> Translated | Refused:
    """What the IOMMU core finds for a device before its driver's ``device_group``.

    A PCI device the platform leaves untranslated (``untranslated``: address
    -> (rule, why), R11) or with no fwspec (R3.8) is refused; on an SMMUv3 a
    stream id another device holds is refused (R7.9); on an SMMUv2 entries
    remembering different groups are refused (-EINVAL, R1.7). Otherwise the
    fwspec, with the SMMUv2 group its entries remember. ``name`` is the
    device's name (its address for a PCI function), as the stream tree keeps it.
    """
    if isinstance(dev, PciFunction):
        off = untranslated.get(dev.address) if untranslated else None
        if off is not None:
            return Refused(off[1], off[0])
        spec = pci_fwspec(dev, ctx)
        bus = "pci"
    else:
        spec = platform_fwspec(dev)
        bus = dev.bus
    if spec is None:
        return Refused("no IOMMU translates this device", "R3.8")
    kind = kinds.get(spec.iommu)
    v2: SmmuV2Group | None = None
    if kind is _SMMU_V3:
        clash = streams.clash(spec, name)
        if clash is not None:  # R7.9
            return Refused(f"stream {clash[0]} already in tree from dev {clash[1]} (R7.9)", "R7.9")
    elif kind is _SMMU_V2:  # R1.7 arm_smmu_device_group
        v2 = streams.smmu_v2_group(spec)
        if v2.conflict:
            return Refused(
                "its stream-match entries belong to different groups (-EINVAL, R1.7)", "R1.7"
            )
    return _tuple_new(Translated, (spec, bus, kind, v2))  # (Translated(...), made in C)
