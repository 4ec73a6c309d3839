"""Intel VT-d: which DMAR unit translates a device, and which units the kernel ignores.

Models ``drivers/iommu/intel/``: ``device_lookup_iommu()`` (``device_to_iommu()``
in 6.1) with ``is_downstream_to_pci_bridge()`` and ``iommu_is_dummy()``
(R11.5), ``init_no_remapping_devices()`` with ``intel_iommu=igfx_off`` and the
``quirk_iommu_igfx`` chipsets (R11.6), and the order of the
``dmar_drhd_units`` list that ``dmar_register_drhd_unit()`` builds, which is
the order the units register with the IOMMU core (R1.9).

The DMAR units are facts of the input (:attr:`~iommugroups.Platform.units`,
kind ``vt-d``): their device scopes and ``INCLUDE_PCI_ALL`` flags. A device
no unit's scope lists, on a segment without an ``INCLUDE_PCI_ALL`` unit, is
translated by none and gets no group; so does every device of an ignored
unit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from .model import IommuKind, IommuUnit, PciAddress, PciFunction, Topology
from .vmd import pci_real_dma_dev

__all__ = [
    "IGFX_QUIRK_IDS",
    "ScopeIndex",
    "VtdLookup",
    "device_lookup_iommu",
    "dmar_drhd_units",
    "dmar_ignored",
    "igfx_off",
    "include_all_flags",
    "is_gfx_device",
]

#: Intel device ids whose header fixup ``quirk_iommu_igfx`` turns the IOMMU
#: off for graphics (``dmar_map_gfx = 0`` in 6.1, ``disable_igfx_iommu = 1``
#: in 7.3): Q35, G4x/GM45, QM57/QS57 and Broadwell graphics (R11.6).
IGFX_QUIRK_IDS = frozenset(
    {
        0x29B2,
        0x2A40,
        0x2E00,
        0x2E10,
        0x2E20,
        0x2E30,
        0x2E40,
        0x2E90,
        0x0044,
        0x1606,
        0x160B,
        0x160E,
        0x1602,
        0x160A,
        0x160D,
        0x1616,
        0x161B,
        0x161E,
        0x1612,
        0x161A,
        0x161D,
        0x1626,
        0x162B,
        0x162E,
        0x1622,
        0x162A,
        0x162D,
        0x1636,
        0x163B,
        0x163E,
        0x1632,
        0x163A,
        0x163D,
    }
)

_INTEL = 0x8086
_DISPLAY = 0x03


def is_gfx_device(fn: PciFunction) -> bool:
    """``IS_GFX_DEVICE``: a display controller (base class 0x03)."""
    return fn.class_code >> 16 == _DISPLAY


def igfx_off(topology: Topology) -> tuple[bool, str]:
    """Whether graphics-only units are ignored (R11.6), and why.

    ``intel_iommu=igfx_off`` (:attr:`Platform.igfx_off`) or a device of the
    ``quirk_iommu_igfx`` chipsets in the topology.
    """
    if topology.platform.igfx_off:
        return True, "intel_iommu=igfx_off"
    for fn in topology.functions:
        if fn.vendor == _INTEL and fn.device in IGFX_QUIRK_IDS:
            return True, f"quirk_iommu_igfx on {fn.address} ({fn.vendor:04x}:{fn.device:04x})"
    return False, ""


def include_all_flags(units: Iterable[IommuUnit]) -> dict[str, bool]:
    """Each VT-d unit's ``INCLUDE_PCI_ALL`` flag, by name, as :func:`dmar_drhd_units` reads it.

    A flag the input does not give counts as set for the last unit of its
    segment (in table order) when no unit of the segment is known to have it
    (the VT-d specification wants that unit listed last), and as clear for
    the others.
    """
    vtd = [u for u in units if u.kind is IommuKind.VTD]
    flagged = {u.segment for u in vtd if u.include_all}
    last: dict[int, str] = {}
    for u in vtd:
        last[u.segment] = u.name
    return {
        u.name: (
            u.include_all
            if u.include_all is not None
            else (u.segment not in flagged and last[u.segment] == u.name)
        )
        for u in vtd
    }


def dmar_drhd_units(units: Iterable[IommuUnit]) -> tuple[IommuUnit, ...]:
    """The ``dmar_drhd_units`` list: the order VT-d units register (R1.9).

    ``dmar_register_drhd_unit`` adds a unit with ``INCLUDE_PCI_ALL`` at the
    tail and any other at the head, so the list holds the other units in the
    reverse of the DMAR table's order, then the ``INCLUDE_PCI_ALL`` ones in
    table order. ``units`` are in table order (flags the input does not give
    are read as :func:`include_all_flags` says).

    >>> gfx = IommuUnit("dmar0", "vt-d", include_all=False)
    >>> rest = IommuUnit("dmar1", "vt-d", include_all=True)
    >>> [u.name for u in dmar_drhd_units([gfx, rest])]
    ['dmar0', 'dmar1']
    >>> [u.name for u in dmar_drhd_units([IommuUnit(f"dmar{i}", "vt-d") for i in range(3)])]
    ['dmar1', 'dmar0', 'dmar2']
    """
    vtd = [u for u in units if u.kind is IommuKind.VTD]
    flags = include_all_flags(vtd)
    head: list[IommuUnit] = []
    tail: list[IommuUnit] = []
    for u in vtd:
        if flags[u.name]:
            tail.append(u)
        else:
            head.insert(0, u)
    return (*head, *tail)


class VtdLookup(NamedTuple):
    """The outcome of ``device_lookup_iommu`` for one device (R11.5, R11.6).

    Attributes:
        unit: the unit that translates it, ``None`` for none (or not known).
        known: whether the input says enough to tell.
        rule: the rule that decided.
        why: in words.
    """

    unit: IommuUnit | None
    known: bool
    rule: str
    why: str


class ScopeIndex:
    """The DMAR units' device scopes of one topology, indexed for lookups (built once).

    For each unit: the devices its scope lists, and the buses below the
    bridges it lists (``is_downstream_to_pci_bridge``); ``None`` when its
    scope is not known.
    """

    __slots__ = ("_units",)

    def __init__(self, topology: Topology) -> None:
        self._units: dict[str, tuple[frozenset[PciAddress], frozenset[tuple[int, int]]] | None]
        self._units = {}
        for unit in topology.platform.units:
            if unit.kind is not IommuKind.VTD:
                continue
            if unit.scope is None:
                self._units[unit.name] = None
                continue
            buses: set[tuple[int, int]] = set()
            for entry in unit.scope:
                if entry not in topology:
                    continue
                br = topology.get(entry)
                if br.is_bridge and br.secondary_bus is not None:
                    sub = (
                        br.subordinate_bus if br.subordinate_bus is not None else br.secondary_bus
                    )
                    buses.update((entry.domain, b) for b in range(br.secondary_bus, sub + 1))
            self._units[unit.name] = (frozenset(unit.scope), frozenset(buses))

    def in_scope(self, fn: PciFunction, unit: IommuUnit) -> bool | None:
        """``tmp == dev`` or ``is_downstream_to_pci_bridge(dev, tmp)`` for some scope entry."""
        entry = self._units.get(unit.name)
        if entry is None:
            return None
        devices, buses = entry
        a = fn.address
        return a in devices or (a.domain, a.bus) in buses


def dmar_ignored(unit: IommuUnit, topology: Topology) -> tuple[bool, str]:
    """R11.6 ``init_no_remapping_devices``: is the unit ignored, and why.

    A unit without ``INCLUDE_PCI_ALL`` whose scope holds no existing device is
    ignored; one whose existing devices are all graphics is gfx-dedicated and
    ignored when graphics mapping is off (:func:`igfx_off`).
    """
    if unit.scope is None or include_all_flags(topology.platform.units).get(unit.name, False):
        return False, ""
    present = [topology.get(a) for a in unit.scope if a in topology]
    if not present:
        return True, f"DMAR unit {unit.name} has no device of its scope present"
    if all(is_gfx_device(fn) for fn in present):
        off, why = igfx_off(topology)
        if off:
            return True, f"DMAR unit {unit.name} serves only graphics, which {why} turns off"
    return False, ""


def device_lookup_iommu(
    fn: PciFunction, topology: Topology, index: ScopeIndex | None = None
) -> VtdLookup:
    """R11.5 ``device_lookup_iommu``: the VT-d unit that translates ``fn``.

    The device is first replaced by its real DMA device (a VMD endpoint,
    R3.1) and a VF by its PF (VFs are not in scope tables); then the units
    are tried in ``dmar_drhd_units`` order: the first of the device's segment
    whose scope lists it or a bridge above it, else an ``INCLUDE_PCI_ALL``
    unit of the segment. A device of an ignored unit has none
    (``iommu_is_dummy``, R11.6). ``index`` (:class:`ScopeIndex`) saves
    indexing the scopes again for each device.

    >>> from iommugroups import Platform, Topology
    >>> gpu = PciFunction("00:02.0", vendor=0x8086, class_code=0x030000)
    >>> nic = PciFunction("00:1f.6", vendor=0x8086, class_code=0x020000)
    >>> units = [IommuUnit("dmar0", "vt-d", scope=["00:02.0"], include_all=False),
    ...          IommuUnit("dmar1", "vt-d", scope=[], include_all=True)]
    >>> topo = Topology([gpu, nic], platform=Platform(iommu="vt-d", units=units))
    >>> device_lookup_iommu(nic, topo).unit.name
    'dmar1'
    >>> off = Topology([gpu, nic], platform=Platform(iommu="vt-d", units=units, igfx_off=True))
    >>> found = device_lookup_iommu(gpu, off)
    >>> found.unit, found.rule
    (None, 'R11.6')
    """
    units = tuple(u for u in topology.platform.units if u.kind is IommuKind.VTD)
    flags = include_all_flags(units)
    if index is None:
        index = ScopeIndex(topology)
    pdev = pci_real_dma_dev(fn, topology)
    if pdev.physfn is not None and pdev.physfn in topology:
        pdev = topology.get(pdev.physfn)
    segment = pdev.address.domain
    unknown = False
    for unit in dmar_drhd_units(units):
        if unit.segment != segment:
            continue
        hit = index.in_scope(pdev, unit)
        if hit is None and not flags[unit.name]:
            unknown = True
            continue
        if unknown and not hit:  # an earlier unit's scope, not known, may list it
            break
        if hit or flags[unit.name]:
            ignored, why = dmar_ignored(unit, topology)
            if ignored:
                return VtdLookup(None, True, "R11.6", why)
            return VtdLookup(unit, True, "R11.5", f"DMAR unit {unit.name}")
    if unknown:
        return VtdLookup(None, False, "R11.5", "a DMAR unit's device scope is not known")
    return VtdLookup(
        None,
        True,
        "R11.5",
        f"no DMAR unit of segment {segment:04x} lists it in its scope, and none has "
        "INCLUDE_PCI_ALL",
    )
