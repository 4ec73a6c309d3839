"""``device-link``: John Garry's patch of 2020-02-13 (seed thread).

What it models: ``pci_device_add`` adding a ``DL_FLAG_AUTOPROBE_CONSUMER``
device link from every PCI device to its parent when the parent is a PCI
device (the bridge above it), so an endpoint's driver probes only after its
bridge's driver bound (R9.1, R9.2), and grouping at probe then sees the
bridge's group first. Never merged (R9.5).

Its failure mode (R9.3): when the bridge's driver is missing or fails for
good, the link never becomes available and the device below it never
probes, whatever its own driver: the simulator reports it as deferred,
waiting for its supplier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from .base import Strategy

if TYPE_CHECKING:
    from ..simulator import SimDevice, Simulator

__all__ = ["DeviceLink"]


class DeviceLink(Strategy):
    """Probe-time grouping; every PCI device is a consumer of its parent bridge."""

    name: ClassVar[str] = "device-link"
    title: ClassVar[str] = "device link from each PCI device to its parent bridge"
    kernel: ClassVar[str] = "proposed by John Garry, 2020-02-13; not merged"
    rules: ClassVar[tuple[str, ...]] = ("R9.1", "R9.2", "R9.3", "R9.5")
    upstream: ClassVar[bool] = False

    def links_for(self, sim: Simulator, dev: SimDevice) -> Sequence[str]:
        """``device_link_add(dev, parent, DL_FLAG_AUTOPROBE_CONSUMER)`` for a PCI parent."""
        fn = dev.fn
        if fn is None:
            return ()
        parent = sim.topology.bridge_above(fn.address)
        if parent is None and fn.physfn is not None:
            # a VF on a virtual bus: its struct device parent is the bus's
            # parent bridge, if any
            parent = sim.topology.bridge_above(fn.physfn)
        return () if parent is None else (str(parent.address),)
