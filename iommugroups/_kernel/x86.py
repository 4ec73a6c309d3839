"""x86 IOMMU platforms: which devices an IOMMU translates, and the order of group ids.

What the platform rules (R11) and the registration order (R1.9) make of a
topology's :class:`~iommugroups.Platform` facts, computed once per topology
for :func:`~iommugroups.canonical_groups`:

* **which family**: the platform's own word, else an AMD IOMMU function or an
  AMD host bridge on a root bus (AMD-Vi), or an Intel host bridge on a root
  bus (VT-d) (:func:`platform_iommu`);
* **untranslated devices**, which get no group: an AMD IOMMU's own function
  (R11.2), a device no IVHD selects (R11.3), a device outside every DMAR
  unit's scope or of an ignored unit (R11.5, R11.6), a device behind a VMD
  endpoint that is itself untranslated (R3.1), and the devices the input
  says no IOMMU translates;
* **VMD domains** (R3.1, R11.1): a device in one joins its endpoint's group
  (since v5.6; before, it got none);
* **the order devices are grouped in**, which decides the group ids: since
  v6.1 each IOMMU's registration probes the devices it translates and skips
  those of units not registered yet (R1.9), so ids are handed out unit by
  unit, in ``dmar_drhd_units`` order for VT-d (R11.5) and IVRS order for
  AMD-Vi; before v6.1 one walk over all devices gave them in device order.
  When a VT-d machine's DMAR units are not known, its Intel graphics device
  on the root bus (``00:02.0``) is taken to have a unit of its own, which is
  how Intel client firmware declares it (a note says so): it then gets
  group 0.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .amd_iommu import rlookup_amd_iommu
from .model import IommuKind, IommuUnit, PciAddress, PciFunction, Topology
from .version import KernelVersion, holds, resolve_kernel
from .vmd import vmd_endpoint_of
from .vtd import ScopeIndex, device_lookup_iommu, dmar_drhd_units, is_gfx_device

__all__ = [
    "X86View",
    "platform_iommu",
    "x86_view",
]


_INTEL = 0x8086
_AMD = 0x1022
_HOST_BRIDGE = 0x0600


def platform_iommu(topology: Topology) -> IommuKind | None:
    """The x86 IOMMU family of ``topology``: VT-d, AMD-Vi, or ``None`` (not x86, or not known).

    The platform facts say so, or their units do; otherwise an AMD IOMMU's
    function or an AMD host bridge on a root bus means AMD-Vi, an Intel host
    bridge on a root bus VT-d. A topology that declares IOMMU instances
    (arm64 SMMUs) is not x86.
    """
    p = topology.platform
    if p.iommu is not None:
        return p.iommu
    kinds = {u.kind for u in p.units}
    if len(kinds) == 1:
        return next(iter(kinds))
    if topology.iommus:
        return None
    intel = False
    for fn in topology.functions:
        if fn.class_code >> 8 != _HOST_BRIDGE:
            continue
        a = fn.address
        if not topology.is_root_bus(a.domain, a.bus):
            continue
        if fn.vendor == _AMD:
            return IommuKind.AMD_VI
        if fn.vendor == _INTEL:
            intel = True
    return IommuKind.VTD if intel else None


@attrs.frozen
class X86View:
    """What the platform rules make of one topology (see the module docstring).

    Attributes:
        untranslated: device -> (rule, why) for every device that gets no group.
        vmd: VMD domain -> its endpoint, for the domains whose devices join
            the endpoint's group (empty before v5.6).
        order: the device-add order that gives the kernel's group ids, or
            ``None`` for the topology's enumeration order.
        notes: what was assumed, in words.
    """

    untranslated: Mapping[PciAddress, tuple[str, str]]
    vmd: Mapping[int, PciAddress]
    order: tuple[PciFunction, ...] | None = None
    notes: tuple[str, ...] = ()

    @property
    def trivial(self) -> bool:
        """Nothing differs from grouping every device in enumeration order."""
        return not self.untranslated and not self.vmd and self.order is None


def _assumed_gfx_unit(topology: Topology) -> PciFunction | None:
    """The Intel graphics device on root bus 0 a VT-d client gives a unit of its own."""
    for fn in topology.devices_on_bus(0, 0):
        if (
            fn.vendor == _INTEL
            and is_gfx_device(fn)
            and fn.address.device == 2
            and fn.address.function == 0
        ):
            return fn
    return None


def x86_view(topology: Topology, kernel: KernelVersion | str | None = None) -> X86View:
    """Apply the x86 platform rules to ``topology`` (see the module docstring).

    Args:
        topology: the machine.
        kernel: the kernel the groups are for, a version or a release string
            (``None``: the newest modelled); before v6.1 ids follow device
            order (R1.9), before v5.6 a device behind a VMD gets no group
            (R3.1).
    """
    version = kernel if isinstance(kernel, KernelVersion) else resolve_kernel(None, kernel)
    platform = topology.platform
    stated = set(platform.untranslated)
    # The IOMMU family only matters for what a stated device is told and for
    # the ids' order, which needs units or the Intel graphics of a client
    # machine: without those, the scan of every function for host bridges is saved.
    needs_kind = platform.iommu or platform.units or stated or _assumed_gfx_unit(topology)
    kind = platform_iommu(topology) if needs_kind else None
    untranslated: dict[PciAddress, tuple[str, str]] = {}
    vmd: dict[int, PciAddress] = {}
    notes: list[str] = []
    amd_units = [u for u in platform.units if u.kind is IommuKind.AMD_VI]
    vtd_units = [u for u in platform.units if u.kind is IommuKind.VTD]
    unit_of: dict[PciAddress, str | None] = {}  # where known
    scopes = ScopeIndex(topology) if vtd_units else None

    old_vmd = not holds("vmd-grouping", version)
    for v in platform.vmd:
        if not old_vmd:
            vmd[v.domain] = v.endpoint

    # with no VMD domain, no device stated untranslated and no unit, nothing below applies
    facts = platform.vmd or stated or amd_units or vtd_units
    for fn in topology.enumeration_order() if facts else ():
        a = fn.address
        endpoint = vmd_endpoint_of(fn, topology)
        if endpoint is not None and old_vmd:
            untranslated[a] = (
                "R3.1",
                f"it is behind the VMD endpoint {endpoint}, and before v5.6 such a device "
                "gets no group",
            )
            continue
        if a in stated:
            if kind is IommuKind.AMD_VI:
                rule, why = "R11.3", "IVRS does not cover it (the kernel gave it no group)"
            elif kind is IommuKind.VTD:
                rule, why = "R11.5", "no DMAR unit translates it (the kernel gave it no group)"
            else:
                rule, why = "R11.5", "no IOMMU translates it (the input says so)"
            untranslated[a] = (rule, why)
            continue
        if endpoint is not None and endpoint in untranslated:
            untranslated[a] = (
                "R3.1",
                f"it does its DMA as the VMD endpoint {endpoint}, which no IOMMU translates",
            )
            continue
        if amd_units:
            found = rlookup_amd_iommu(fn, topology)
            if found.known and found.unit is None:
                untranslated[a] = (found.rule, found.why)
                continue
            unit_of[a] = found.unit.name if found.unit is not None else None
        elif vtd_units:
            vt = device_lookup_iommu(fn, topology, scopes)
            if vt.known and vt.unit is None:
                untranslated[a] = (vt.rule, vt.why)
                continue
            unit_of[a] = vt.unit.name if vt.unit is not None else None

    order = _registration_order(topology, kind, version, unit_of, untranslated, vmd, notes)
    return X86View(untranslated, vmd, order, tuple(notes))


def _registration_order(
    topology: Topology,
    kind: IommuKind | None,
    version: KernelVersion,
    unit_of: Mapping[PciAddress, str | None],
    untranslated: Mapping[PciAddress, tuple[str, str]],
    vmd: Mapping[int, PciAddress],
    notes: list[str],
) -> tuple[PciFunction, ...] | None:
    """R1.9: the order devices are grouped in, unit by unit, or ``None`` (enumeration order)."""
    if not holds("per-unit-ids", version):
        return None
    units: tuple[IommuUnit, ...]
    platform = topology.platform
    if kind is IommuKind.VTD:
        units = dmar_drhd_units(platform.units)
        if not units:
            gfx = _assumed_gfx_unit(topology)
            if gfx is None or gfx.address in untranslated:
                return None
            notes.append(
                f"group ids: the DMAR units are not in the input; {gfx.address} (Intel "
                "graphics) is taken to have a unit of its own, as Intel client firmware "
                "declares it, so it is grouped first and gets the first id (R1.9)"
            )
            rest = tuple(f for f in topology.enumeration_order() if f is not gfx)
            return (gfx, *rest)
    elif kind is IommuKind.AMD_VI:
        units = tuple(u for u in platform.units if u.kind is IommuKind.AMD_VI)
        if len(units) < 2:
            return None
    else:
        return None
    names = [u.name for u in units]
    if any(
        unit_of.get(f.address) is None and f.address not in untranslated
        for f in topology.functions
        if f.address.domain not in vmd
    ):
        notes.append(
            "group ids: which IOMMU translates some devices is not known, so ids are "
            "given in device order, as if one IOMMU translated them all (R1.9)"
        )
        return None
    buckets: dict[str, list[PciFunction]] = {n: [] for n in names}
    late: list[PciFunction] = []  # VMD domains: added by the vmd driver, after the IOMMUs
    for fn in topology.enumeration_order():
        if fn.address in untranslated:  # no group, so no id: last
            late.append(fn)
            continue
        if fn.address.domain in vmd:
            late.append(fn)
            continue
        unit = unit_of.get(fn.address)
        if unit is not None:
            buckets[unit].append(fn)
    out = [fn for n in names for fn in buckets[n]]
    return (*out, *late)
