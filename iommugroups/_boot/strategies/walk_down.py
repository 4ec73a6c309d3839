"""``walk-down``: Robin Murphy's "bodge" of 2019-09-19 (seed thread).

What it models: probe-time grouping (as ``legacy-probe-time``) where
``pci_device_group`` also "walk[s] downwards to see if any non-ACS-isolated
children already have a group, rather than assuming that groups get
allocated in hierarchical order". Never merged.

Exactly: when steps 1-4 find no group (R4.1-R5.2), before allocating a new
one (R4.4), the device joins the group of the first device, in device
order, that already has a group and whose own walk up passes through the
final ``pdev`` (it aliases to it, or ``pdev`` is among the non-isolated
bridges above it). Groups are still never merged (R1.3).

When it is order-independent (``tests/test_strategies_properties.py``,
``TestWalkDown``): let ``p`` be the final ``pdev`` (R4.3) of a device
``x != p``, and ``q`` a *partner* of ``p``: a device on ``p``'s bus that
steps 3-4 (R5.1, R5.2) connect with it. With no such ``(x, p, q)``,
walk-down equals canonical in every probe order. With one, probing ``x``,
then ``q``, then the rest splits ``x`` from ``p``: ``q`` starts a group its
downward look cannot see ``x`` from, ``p`` joins ``q`` through steps 3-4
(which run before the downward look), and groups never merge. In practice
the partners are multifunction root ports without ACS (Intel-PCH style,
§12 vector 3) or a device that is a DMA alias of a root port. A lone
non-ACS root port, the seed's D05 case, has no partner: walk-down fixes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..._kernel.pci_device_group import find_group
from .base import Strategy

if TYPE_CHECKING:
    from ..simulator import SimDevice, Simulator

__all__ = ["WalkDown"]


class WalkDown(Strategy):
    """Probe-time grouping; ``pci_device_group`` also looks down from ``pdev``."""

    name: ClassVar[str] = "walk-down"
    title: ClassVar[str] = "pci_device_group also joins a grouped non-isolated child"
    kernel: ClassVar[str] = "suggested by Robin Murphy, 2019-09-19; not merged"
    rules: ClassVar[tuple[str, ...]] = ("R4.1-R4.5", "R5.1-R5.2", "§6 S-downward-merge")
    upstream: ClassVar[bool] = False

    def device_group(self, sim: Simulator, dev: SimDevice) -> int | None:
        """Steps 1-4, then the downward look before a new group."""
        fn = dev.fn
        if fn is None:
            return super().device_group(sim, dev)
        group, _via, _step, pdev = find_group(fn, sim.pci_groups, sim.env)
        if group is not None:
            return group
        # The first present device (in device-add order) with a group whose own
        # walk up passes through pdev: it aliases to it, or pdev is among the
        # non-isolated bridges above it.
        best: tuple[int, int] | None = None
        for other in sim.env.passing(pdev):
            name = str(other.address)
            g = sim.pci_groups.get(other.address)
            seq = sim.order.get(name)  # (None: not present)
            if g is None or name == dev.name or seq is None:
                continue
            if best is None or seq < best[0]:
                best = (seq, g)
        return None if best is None else best[1]
