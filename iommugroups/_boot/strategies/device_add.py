"""``device-add``: the v6.15 fix, IOMMU probe independent of drivers.

What it models: Robin Murphy's "iommu: Get DT/ACPI parsing into the proper
probe path" (bcb81ac6ae3c, v6.15) with "iommu: Avoid introducing more
races" (0c8e9c148e29): ``iommu_init_device`` runs the bus ``dma_configure``
itself for a device with no fwspec and no driver (R10.1). So a device is
grouped

* at ``device_add`` (the bus notifier) when its IOMMU is registered, or
* in the registration walk of its IOMMU (``bus_for_each_dev``, device
  order, platform bus first),

logged with the bus name, parents before children, whatever the drivers
do. Devices whose IOMMU registers later are picked up by that instance's
walk; a driver probing a still ungrouped device groups it as before.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, ClassVar

from ..drivers import ProbeResult
from .base import Strategy

if TYPE_CHECKING:
    from ..simulator import SimDevice, Simulator

__all__ = ["DeviceAdd"]


class DeviceAdd(Strategy):
    """Grouping at device_add / IOMMU registration, in device order (v6.15+)."""

    name: ClassVar[str] = "device-add"
    title: ClassVar[str] = "groups made at device_add and IOMMU registration"
    kernel: ClassVar[str] = "arm64 IORT/DT since v6.15 (bcb81ac6ae3c)"
    rules: ClassVar[tuple[str, ...]] = ("R10.1", "R10.3")
    upstream: ClassVar[bool] = True

    def device_added(self, sim: Simulator, dev: SimDevice) -> None:
        """The bus notifier: configure and group now if the IOMMU is registered."""
        self._probe(sim, dev)

    def iommu_registered(self, sim: Simulator, instance: str, first: bool) -> None:
        """The registration walk: every present device without a group, in
        device order, platform bus first (``iommu_buses[]``)."""
        # (a device probed in the walk groups itself only: those grouped when it
        # starts are the ones it passes over; so are those still waiting for
        # another instance, which would defer again: Simulator.walk_devices)
        devices = sim.walk_devices()
        platform = [d for d in devices if d.bus != "pci"]
        for dev in itertools.chain(platform, (d for d in devices if d.bus == "pci")):
            if sim.group_of(dev) is None:
                self._probe(sim, dev)

    def _probe(self, sim: Simulator, dev: SimDevice) -> None:
        # R10.1: iommu_init_device runs dma_configure only for a device with no
        # fwspec and no driver ("dma_configure has already run and found no
        # IOMMU to wait for"); a bound device without a fwspec (bound while its
        # IOMMU was a module not loaded, or refused, which freed its fwspec) is
        # left alone: -ENODEV, nothing logged.
        if dev.driver is not None and not dev.holds_fwspec:
            return
        if sim.configure(dev, registered=self.ready(sim, dev)) is None:
            sim.probe_device(dev)

    def ready(self, sim: Simulator, dev: SimDevice) -> bool:
        """Whether to take the device's IOMMU as registered already."""
        return False

    def dma_configure(self, sim: Simulator, dev: SimDevice) -> ProbeResult | None:
        """At driver probe: usually already grouped; else the firmware path runs again.

        It can defer the probe as before (R7.3). Only device tree then
        replays the IOMMU probe for a device the IOMMU core has let go
        (``of_iommu_configure`` on a device without ``dev->iommu``, e.g.
        after a refused stream id, which is logged again); ACPI's
        ``acpi_iommu_configure_id`` no longer does (R10.3).
        """
        if sim.group_of(dev) is not None:
            return None
        result = sim.configure(dev, registered=self.ready(sim, dev))
        if result is ProbeResult.DEFER:
            return ProbeResult.DEFER
        if result is None:
            dev.holds_fwspec = True  # the firmware path sets the fwspec again
            if sim.scenario.firmware == "dt":
                sim.probe_device(dev)
        return None
