"""``canonical`` in the simulator: the IOMMU is ready before any device.

What it models: x86 (VT-d, AMD-Vi), whose IOMMU initialises before PCI
enumeration, so every device is grouped at ``device_add``, in device order,
parents first: :func:`~iommugroups.canonical_groups` replayed through the
driver core. It is the reference the other strategies are compared with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .device_add import DeviceAdd

if TYPE_CHECKING:
    from ..simulator import SimDevice, Simulator

__all__ = ["CanonicalSim"]


class CanonicalSim(DeviceAdd):
    """Every device grouped at device_add, the IOMMU taken as ready from the start."""

    name: ClassVar[str] = "canonical"
    title: ClassVar[str] = "the reference: grouped at device_add, IOMMU ready first"
    kernel: ClassVar[str] = "x86 always; arm64 since v6.15 when the IOMMU probes first"
    rules: ClassVar[tuple[str, ...]] = ("R4", "R5", "R10.1")
    upstream: ClassVar[bool] = True

    def ready(self, sim: Simulator, dev: SimDevice) -> bool:
        """Every IOMMU instance counts as registered."""
        return True

    def iommu_registered(self, sim: Simulator, instance: str, first: bool) -> None:
        """Nothing: the IOMMU registered before any device was added, so its walk
        met no device; every device was grouped (or refused, once) at ``device_add``."""
