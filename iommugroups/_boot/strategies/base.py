"""The strategy protocol: where and when the kernel makes IOMMU groups.

A strategy is an object with a ``name`` and five hooks the simulator
(:class:`~iommugroups.Simulator`) calls at the points where kernels differ:

* ``links_for(sim, dev)``: device links made at ``device_add`` (R9);
* ``device_added(sim, dev)``: the IOMMU bus notifier on ``device_add``;
* ``iommu_registered(sim, instance, first)``: an IOMMU instance registered;
* ``dma_configure(sim, dev)``: the bus ``dma_configure`` at driver probe,
  returning ``None`` (go on), ``ProbeResult.DEFER`` or ``ProbeResult.FAIL``
  (no IOMMU: go on without one);
* ``device_group(sim, dev)``: the IOMMU driver's ``device_group``: an
  existing group id, or ``None`` for a new group.

:class:`Strategy` implements them as the arm64 kernels from v5.3 to v6.14
did (``legacy-probe-time``); a new strategy subclasses it and overrides what
differs, or implements :class:`StrategyLike` from scratch. Neither needs to
touch the simulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ..._kernel.model import IommuKind
from ..._kernel.pci_device_group import find_group
from ..drivers import ProbeResult
from ..simulator import SimDevice, Simulator, StrategyLike

__all__ = ["Strategy", "StrategyLike"]  # StrategyLike: the protocol, from the simulator


class Strategy:
    """Base strategy: grouping at driver probe, as arm64 IORT/DT v5.3-v6.14 (R7).

    Subclasses set the class attributes and override hooks.

    Attributes:
        name: the strategy's name (``--strategy NAME``).
        title: one line.
        kernel: which kernel did this, or who proposed it.
        rules: the rule ids it implements.
        upstream: whether some upstream kernel behaved this way.
    """

    name: ClassVar[str] = "legacy-probe-time"
    title: ClassVar[str] = "groups made when a device's driver probes"
    kernel: ClassVar[str] = "arm64 IORT/DT, v5.3-v6.14"
    rules: ClassVar[tuple[str, ...]] = ("R7.1-R7.9", "R10.2")
    upstream: ClassVar[bool] = True

    def links_for(self, sim: Simulator, dev: SimDevice) -> Sequence[str]:
        """No device links."""
        return ()

    def device_added(self, sim: Simulator, dev: SimDevice) -> None:
        """The bus notifier (R7.2a): probe once bus ops exist; a new device has no
        fwspec yet, so ``add_device`` returns -ENODEV and nothing happens."""
        if sim.state.get("bus_ops"):
            sim.probe_device(dev)

    def iommu_registered(self, sim: Simulator, instance: str, first: bool) -> None:
        """``bus_set_iommu`` by the *first* instance only (R7.6): replay
        ``add_iommu_group`` over existing devices, which skips every device
        without a fwspec (R7.7)."""
        if not first:
            return
        sim.state["bus_ops"] = True
        self.replay(sim)

    def replay(self, sim: Simulator) -> None:
        """``add_iommu_group`` over present devices without a group: PCI bus first,
        then platform (the order of ``arm_smmu_set_bus_ops``). Those without a
        fwspec return -ENODEV at once (R7.7): only the others are visited."""
        devices = sim.replay_devices()
        for dev in [d for d in devices if d.bus == "pci"] + [d for d in devices if d.bus != "pci"]:
            if sim.group_of(dev) is None:
                sim.probe_device(dev)

    def dma_configure(self, sim: Simulator, dev: SimDevice) -> ProbeResult | None:
        """``iort_iommu_configure`` / ``of_iommu_configure`` (R7.3): an already
        translated fwspec returns at once; otherwise translate (deferring while
        the instance is unregistered) and replay ``iommu_probe_device`` (R7.2c)."""
        if dev.configured:
            return None
        result = sim.configure(dev)
        if result is ProbeResult.DEFER:
            return ProbeResult.DEFER
        if result is None and sim.group_of(dev) is None:
            sim.probe_device(dev)
        return None

    def device_group(self, sim: Simulator, dev: SimDevice) -> int | None:
        """SMMUv2 stream sharing (R1.7), else ``pci_device_group`` (R4) for PCI
        devices and ``generic_device_group`` (R1.5) for others."""
        spec = dev.fwspec
        if spec is not None and sim.kinds.get(spec.iommu) is IommuKind.SMMU_V2:
            remembered = sim.streams.smmu_v2_group(spec).group  # arm_smmu_device_group
            if remembered is not None:
                return remembered
        fn = dev.fn
        if fn is None:
            return None
        return find_group(fn, sim.pci_groups, sim.env)[0]

    def __repr__(self) -> str:
        return f"<strategy {self.name}>"
