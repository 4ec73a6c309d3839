"""ACS: when does a PCI device isolate what is below it? (spec §2).

Models ``drivers/pci/pci.c``: ``pci_acs_flags_enabled`` (R2.2),
``pci_acs_enabled`` (R2.3) and ``pci_acs_path_enabled`` (R2.4), and the
``REQ_ACS_FLAGS`` set of ``drivers/iommu/iommu.c`` (R2.1). Device-specific
answers come from the quirk table (:mod:`iommugroups._kernel.quirks`, R2.5-R2.6),
consulted first, exactly as the kernel does.
"""

from __future__ import annotations

from .model import AcsFlags, PcieType, PciFunction
from .quirks import QuirkContext

__all__ = [
    "REQ_ACS_FLAGS",
    "pci_acs_enabled",
    "pci_acs_flags_enabled",
    "pci_acs_path_enabled",
]

#: R2.1: what IOMMU grouping requires for isolation, ``SV|RR|CR|UF`` (0x1d).
REQ_ACS_FLAGS = AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF


def pci_acs_flags_enabled(fn: PciFunction, flags: AcsFlags) -> bool:
    """R2.2 ``pci_acs_flags_enabled``: are the requested controls on?

    No ACS capability: false. Otherwise every requested bit the capability
    does not advertise is dropped (it counts as hard-wired on), except EC,
    which must really be on; what remains must be set in the control word.

    >>> from iommugroups import PciFunction, Acs, AcsFlags
    >>> rp = PciFunction("00:1c.0", acs=Acs(cap=AcsFlags.SV | AcsFlags.RR, ctrl=AcsFlags.SV))
    >>> pci_acs_flags_enabled(rp, AcsFlags.SV | AcsFlags.RR)
    False
    >>> pci_acs_flags_enabled(rp, AcsFlags.SV | AcsFlags.UF)  # UF not implemented
    True
    """
    acs = fn.acs
    if acs is None:
        return False
    # int arithmetic: enum.Flag operators are slow and this is a hot path
    required = flags.value & (acs.cap.value | AcsFlags.EC.value)
    return (acs.ctrl.value & required) == required


def pci_acs_enabled(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool:
    """R2.3 ``pci_acs_enabled``: does ``fn`` provide the ACS ``flags``?

    1. A device-specific quirk's answer is final (even for conventional PCI).
    2. Conventional PCI / PCI-X: false.
    3. PCIe-to-PCI, PCI-to-PCIe bridges and RC event collectors: false.
       Root and downstream ports: the ACS registers decide (no capability
       means not isolated). Multifunction endpoints, legacy endpoints, RCiEPs
       and upstream ports: the ACS registers decide.
    4. Everything else (single-function endpoints and upstream ports, ...)
       has no peer to reach: true.

    "Multifunction" is the kernel's ``pdev->multifunction`` (R5.6).
    """
    verdict = ctx.quirks.acs_enabled(fn, flags, ctx)
    if verdict is not None:  # R2.3 step 1 / R2.5: first quirk answer >= 0 wins
        return verdict
    t = fn.pcie_type
    if t is None:  # R2.3 step 2
        return False
    if t in (PcieType.PCIE_BRIDGE, PcieType.PCI_BRIDGE, PcieType.RC_EC):
        return False
    if t in (PcieType.DOWNSTREAM, PcieType.ROOT_PORT):
        return pci_acs_flags_enabled(fn, flags)
    if t in (
        PcieType.ENDPOINT,
        PcieType.UPSTREAM,
        PcieType.LEG_END,
        PcieType.RC_END,
    ) and ctx.topology.is_multifunction(fn):
        return pci_acs_flags_enabled(fn, flags)
    return True  # R2.3 step 4


def pci_acs_path_enabled(
    start: PciFunction,
    end: PciFunction | None,
    flags: AcsFlags,
    ctx: QuirkContext,
) -> bool:
    """R2.4 ``pci_acs_path_enabled``: is every device from ``start`` up ACS-enabled?

    Walks from ``start`` towards the root. Fails at the first device without
    the ACS ``flags``. On reaching a device on a root bus, succeeds only if
    ``end`` is ``None``. Succeeds after checking ``end`` itself.

    A bus with no ``self`` bridge below the root (an SR-IOV virtual bus) is
    stepped over to its parent; the kernel never walks such a path (R2.4 model
    note), so this is a documented choice, not observed behaviour.
    """
    topo = ctx.topology
    cache = ctx.path_cache if end is None and flags == REQ_ACS_FLAGS else None
    if cache is not None and start.address in cache:
        return cache[start.address]
    walked: list[PciFunction] = []
    result: bool
    dev: PciFunction | None = start
    while True:
        assert dev is not None
        if cache is not None and dev.address in cache:
            result = cache[dev.address]
            break
        walked.append(dev)
        if not pci_acs_enabled(dev, flags, ctx):
            result = False
            break
        dom, bus = dev.address.domain, dev.address.bus
        if topo.is_root_bus(dom, bus):
            result = end is None
            break
        if end is not None and dev.address == end.address:
            result = True
            break
        above = topo.bus_self(dom, bus)
        while above is None:  # virtual bus: step to its parent bus
            parent = topo.parent_bus(dom, bus)
            if parent is None or topo.is_root_bus(dom, parent):
                break
            bus = parent
            above = topo.bus_self(dom, bus)
        if above is None:
            result = end is None
            break
        dev = above
    if cache is not None:
        # With end=None the answer for every device walked past is the same
        # as for start: each one's own path is the tail of start's path.
        for d in walked:
            cache[d.address] = result
    return result
