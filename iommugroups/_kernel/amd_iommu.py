"""AMD-Vi: which devices the AMD IOMMU translates, and the DMA aliases IVRS adds.

Models ``drivers/iommu/amd/``:

* R11.2: the IOMMU's own PCI function (the IVHD's device id, class 0x0806
  on the root complex, e.g. ``00:00.2``) is never translated:
  ``init_iommu_one_late()`` clears its ``rlookup_table`` entry ("Make sure
  IOMMU is not considered to translate itself. The IVRS table tells us so,
  but this is a lie!"), so ``amd_iommu_probe_device()`` refuses it
  (``check_device()``: ``rlookup_amd_iommu()`` is ``NULL``) and it gets no
  group.
* R11.3: every other PCI device is translated only if an IVHD entry of its
  segment selects it (``set_dev_entry_from_acpi_range()`` fills
  ``rlookup_table``; ``check_device()`` also refuses a device id above the
  segment's ``last_bdf``); a device IVRS does not cover gets no group.
* R11.4: ``setup_aliases()``, run when a device is probed, before it is
  grouped: an IVRS alias (``DEV_ALIAS``, ``DEV_ALIAS_RANGE``) that lies on
  the device's own bus becomes a PCI DMA alias (``pci_add_dma_alias``, R3.3);
  one on another bus only gets its device-table entry cloned
  (``clone_alias``) and is no DMA alias, so it does not change groups.

The AMD IOMMUs, their functions, IVHD scopes and alias entries, are facts of
the input (:attr:`~iommugroups.Platform.units`, kind ``amd-vi``); the
readers recognise an AMD IOMMU's function by its class and vendor.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from .model import IommuKind, IommuUnit, PciAddress, PciFunction, Topology
from .vmd import pci_real_dma_dev

__all__ = ["AmdLookup", "amd_iommu_functions", "ivrs_dma_alias_devfns", "rlookup_amd_iommu"]


def amd_iommu_functions(topology: Topology) -> dict[PciAddress, IommuUnit]:
    """The AMD IOMMUs' own PCI functions present in the topology, with their unit (R11.2)."""
    return {
        u.function: u
        for u in topology.platform.units
        if u.kind is IommuKind.AMD_VI and u.function is not None and u.function in topology
    }


@functools.lru_cache(maxsize=64)
def _scope_set(unit: IommuUnit) -> frozenset[PciAddress]:
    return frozenset(unit.scope or ())


class AmdLookup(NamedTuple):
    """Which AMD IOMMU translates a device (R11.2, R11.3).

    Attributes:
        unit: the unit, ``None`` for none (or not known).
        known: whether the input says enough to tell.
        rule: the rule that decided.
        why: in words.
    """

    unit: IommuUnit | None
    known: bool
    rule: str
    why: str


def rlookup_amd_iommu(fn: PciFunction, topology: Topology) -> AmdLookup:
    """R11.2/R11.3 ``check_device`` / ``rlookup_amd_iommu``: the AMD IOMMU of ``fn``.

    The IOMMU's own function has none (R11.2). Otherwise the IVHD entries
    decide (R11.3): the last unit of the device's segment, in IVRS order,
    whose scope selects it (each IVHD's entries overwrite ``rlookup_table``);
    when a unit's scope is not known, the answer is not known either.

    >>> from iommugroups import Platform, Topology
    >>> rc = PciFunction("00:00.0", vendor=0x1022, class_code=0x060000)
    >>> iommu = PciFunction("00:00.2", vendor=0x1022, class_code=0x080600)
    >>> unit = IommuUnit("ivhd0", "amd-vi", function="00:00.2", scope=["00:00.2"])
    >>> topo = Topology([rc, iommu], platform=Platform(iommu="amd-vi", units=[unit]))
    >>> [rlookup_amd_iommu(f, topo).rule for f in (rc, iommu)]
    ['R11.3', 'R11.2']
    """
    for u in topology.platform.units:
        if u.kind is IommuKind.AMD_VI and u.function == fn.address:
            return AmdLookup(
                None,
                True,
                "R11.2",
                f"it is the AMD IOMMU {u.name}'s own function, which the IOMMU does not translate",
            )
    pdev = pci_real_dma_dev(fn, topology)
    address = pdev.address
    found: IommuUnit | None = None
    unknown = False
    for u in topology.platform.units:
        if u.kind is not IommuKind.AMD_VI or u.segment != address.domain:
            continue
        if u.scope is None:
            unknown = True
        elif address in _scope_set(u):
            found = u
    if found is not None and not unknown:
        return AmdLookup(found, True, "R11.3", f"IVHD {found.name} selects it")
    if unknown:
        return AmdLookup(None, False, "R11.3", "an IVHD's device entries are not known")
    return AmdLookup(None, True, "R11.3", "no IVHD entry of the IVRS table selects it")


def ivrs_dma_alias_devfns(fn: PciFunction, topology: Topology) -> frozenset[int]:
    """R11.4 ``setup_aliases``: the devfns IVRS alias entries add to ``fn``'s ``dma_alias_mask``.

    Only an alias on the device's own bus counts, and only for a device
    the AMD IOMMU translates (``setup_aliases`` runs when it is probed).
    """
    out: set[int] = set()
    for u in topology.platform.units:
        if u.kind is not IommuKind.AMD_VI or not u.aliases:
            continue
        for device, alias in u.aliases:
            if (
                device == fn.address
                and alias != device
                and alias.domain == device.domain
                and alias.bus == device.bus
            ):
                out.add(alias.devfn)
    if out:
        found = rlookup_amd_iommu(fn, topology)
        if found.known and found.unit is None:  # not probed: setup_aliases never runs
            return frozenset()
    return frozenset(out)
