"""DMA aliases: which requester ids a device's DMA can carry (spec §3).

Models ``drivers/pci/search.c``: ``pci_for_each_dma_alias`` (R3.1-R3.4) and
``drivers/pci/pci.c``: ``pci_devs_are_dma_aliases`` (R3.6). A device's
``dma_alias_mask`` is its explicit alias devfns plus those added by the
kernel's header-phase quirks (R3.5, :mod:`iommugroups._kernel.quirks`) and
by AMD-Vi's IVRS aliases on its own bus (R11.4). The real DMA device of a
device in a VMD domain is the VMD endpoint (R3.1, :mod:`~iommugroups._kernel.vmd`).
"""

from __future__ import annotations

from collections.abc import Iterator

from .amd_iommu import ivrs_dma_alias_devfns
from .model import VMD_DOMAIN_BASE, PcieType, PciFunction
from .quirks import QuirkContext
from .vmd import pci_real_dma_dev

__all__ = [
    "bridge_aliases",
    "bus_alias_step",
    "bus_aliases",
    "dma_alias_mask",
    "dma_aliases",
    "topology_aliases",
    "pci_devs_are_dma_aliases",
    "pci_for_each_dma_alias",
]


# (an enum member read off its class costs a look-up through the enum machinery
# on every call: the two the walk compares with, read once)
_PCI_BRIDGE, _PCIE_BRIDGE = PcieType.PCI_BRIDGE, PcieType.PCIE_BRIDGE


def dma_alias_mask(fn: PciFunction, ctx: QuirkContext) -> frozenset[int]:
    """``pdev->dma_alias_mask``: devfns on ``fn``'s own bus it also DMAs as.

    The explicit ones, those the kernel's quirks add (R3.3, R3.5) and, on an
    AMD-Vi machine, the IVRS aliases on the same bus (R11.4).
    """
    mask = fn.dma_alias_devfns
    quirks = ctx.quirks
    if quirks.dma_alias_quirk_may_match(fn.vendor):  # (most vendors have no entry)
        quirk = quirks.dma_alias_devfns(fn)
        if quirk:
            mask = mask | quirk
    if ctx.topology.platform.units:
        ivrs = ivrs_dma_alias_devfns(fn, ctx.topology)
        if ivrs:
            mask = mask | ivrs
    return mask


def pci_for_each_dma_alias(
    fn: PciFunction, ctx: QuirkContext
) -> Iterator[tuple[PciFunction, int]]:
    """``pci_for_each_dma_alias``: yield ``(device, requester id)`` in kernel visit order.

    The kernel calls a callback and stops at its first non-zero return; here
    the caller simply stops iterating. Order:

    1. R3.1: ``pci_real_dma_dev``: a device in a VMD domain is replaced by
       the VMD endpoint; every other device is itself.
    2. R3.2: the device's own id.
    3. R3.3: each quirk/explicit alias devfn, ascending, on the device's own
       bus; the device yielded is still ``fn``.
    4. R3.4: up the buses to the root: virtual buses are skipped; a bridge
       flagged ``BRIDGE_XLATE_ROOT`` ends the walk; root, upstream and
       downstream ports add nothing; a PCIe-to-PCI bridge adds
       (secondary bus, 00.0), unless flagged ``PCI_BRIDGE_NO_ALIAS`` (the
       ASPEED AST1150, after 6.12: it forwards the requester ids of the
       devices behind it, and adds nothing); a PCI-to-PCIe bridge adds its own id; a
       conventional bridge adds (secondary bus, 00.0) with the
       ``PCIE_BRIDGE_ALIAS`` quirk flag, else its own id. The device yielded
       for these is the bridge.

    >>> from iommugroups import PciFunction, Topology, PcieType
    >>> from iommugroups import make_context
    >>> br = PciFunction("00:1e.0", header_type=1, secondary_bus=1, subordinate_bus=1,
    ...                  pcie_type=PcieType.PCI_BRIDGE)
    >>> ep = PciFunction("01:03.0")
    >>> ctx = make_context(Topology([br, ep]))
    >>> [(str(d), f"{rid:04x}") for d, rid in pci_for_each_dma_alias(ep, ctx)]
    [('0000:01:03.0', '0118'), ('0000:00:1e.0', '0100')]
    """
    yield from dma_aliases(fn, ctx)


def dma_aliases(fn: PciFunction, ctx: QuirkContext) -> tuple[tuple[PciFunction, int], ...]:
    """Every ``(device, requester id)`` :func:`pci_for_each_dma_alias` visits, in its order."""
    addr = fn.address
    if addr[0] >= VMD_DOMAIN_BASE:  # (below it no domain is a VMD one)
        fn = pci_real_dma_dev(fn, ctx.topology)  # R3.1
        addr = fn.address
    domain, bus = addr[0], addr[1]  # (index reads: this runs once per device)
    own: tuple[tuple[PciFunction, int], ...] = ((fn, bus << 8 | addr[2] << 3 | addr[3]),)  # R3.2
    mask = dma_alias_mask(fn, ctx)
    if mask:  # R3.3
        own += tuple((fn, bus << 8 | devfn) for devfn in sorted(mask))
    above = ctx.alias_cache.get((domain, bus))  # R3.4 (bus_aliases' memo, read here first)
    if above is None:
        above = bus_aliases(domain, bus, ctx)
    return own + above if above else own


def topology_aliases(
    domain: int, bus: int, ctx: QuirkContext
) -> Iterator[tuple[PciFunction, int]]:
    """R3.4: the aliases bridges add for any device on ``bus``, in walk order.

    The same for every device on the bus, so callers may memoise it per bus
    (:func:`bus_aliases` does). Unmemoised: one :func:`bus_alias_step` per bus.
    """
    at: tuple[int, int] | None = (domain, bus)
    while at is not None:
        at, step = bus_alias_step(at[0], at[1], ctx)
        yield from step


def bus_aliases(domain: int, bus: int, ctx: QuirkContext) -> tuple[tuple[PciFunction, int], ...]:
    """R3.4 for any device on ``bus``: :func:`topology_aliases`, memoised per bus.

    Kept in ``ctx.alias_cache``; built from the parent bus's answer (a bus's
    walk is its bridge's step then its parent's walk), so a deep hierarchy
    costs one step per bus.
    """
    memo = ctx.alias_cache
    key = (domain, bus)
    chain = memo.get(key)
    if chain is not None:
        return chain
    path: list[tuple[tuple[int, int], tuple[tuple[PciFunction, int], ...]]] = []
    known: tuple[tuple[PciFunction, int], ...] = ()
    k = key
    found: tuple[tuple[PciFunction, int], ...] | None = None
    while True:  # (key's own answer is not known: looked up above)
        up, step = bus_alias_step(k[0], k[1], ctx)
        if up is None:  # the walk ends here
            break
        path.append((k, step))
        k = up
        found = memo.get(k)
        if found is not None:
            known = found
            break
    keys = ctx.topology._index.keys  # the shared key of each bus
    if not path:  # a root bus, or an ending bridge's secondary bus
        memo[keys.get(key, key)] = known
        return known
    if found is None:  # the root bus or ending bridge's bus the walk stopped at
        memo[keys.get(k, k)] = known
    for k, step in reversed(path):
        known = step + known if step else known
        memo[keys.get(k, k)] = known
    return known


def bus_alias_step(
    domain: int, bus: int, ctx: QuirkContext
) -> tuple[tuple[int, int] | None, tuple[tuple[PciFunction, int], ...]]:
    """One bus of the R3.4 walk: where the walk goes on, and what this bus's bridge adds.

    ``(None, ())`` when the walk ends here: a root bus, or a bus whose bridge is
    flagged ``BRIDGE_XLATE_ROOT``. A virtual (SR-IOV) bus adds nothing and the
    walk goes on to its parent. :func:`bus_aliases` of a bus is its step's aliases
    followed by :func:`bus_aliases` of where the walk goes on.
    """
    index = ctx.topology._index
    key = (domain, bus)
    parent = index.bus_parent.get(key)
    if parent is None:  # a root bus: the walk ends
        return None, ()
    br = index.bus_self.get(key)
    if br is None:  # virtual bus (SR-IOV): skipped
        return (domain, parent), ()
    step = bridge_aliases(br, ctx)
    if step is None:  # BRIDGE_XLATE_ROOT: the walk ends at this bridge
        return None, ()
    return (domain, parent), step


def bridge_aliases(
    br: PciFunction, ctx: QuirkContext
) -> tuple[tuple[PciFunction, int], ...] | None:
    """R3.4 for one bridge of the walk: the alias it adds (none for a PCIe port).

    ``None``: the bridge is flagged ``BRIDGE_XLATE_ROOT`` and ends the walk.
    """
    quirks = ctx.quirks
    if quirks.bridge_xlate_root(br):
        return None
    sec = br.secondary_bus
    assert sec is not None
    t = br.pcie_type
    if t is not None:
        if t == _PCI_BRIDGE:
            if quirks.pci_bridge_no_alias(br):  # R3.4: forwards the requester id (7.2+)
                return ()
            return ((br, sec << 8),)
        if t == _PCIE_BRIDGE:
            return ((br, br.address.rid),)
        return ()  # ROOT_PORT / UPSTREAM / DOWNSTREAM and any other type: nothing
    if quirks.pcie_bridge_alias(br, ctx.topology):
        return ((br, sec << 8),)
    return ((br, br.address.rid),)


def pci_devs_are_dma_aliases(a: PciFunction, b: PciFunction, ctx: QuirkContext) -> bool:
    """R3.6 ``pci_devs_are_dma_aliases``: one's devfn is in the other's alias mask.

    Or one is the other's real DMA device (a VMD endpoint, R3.1). Bus numbers
    are not compared: callers only ask about devices on one bus.
    """
    return (
        b.address.devfn in dma_alias_mask(a, ctx)
        or a.address.devfn in dma_alias_mask(b, ctx)
        or pci_real_dma_dev(a, ctx.topology) is b
        or pci_real_dma_dev(b, ctx.topology) is a
    )
