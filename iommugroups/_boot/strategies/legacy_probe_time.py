"""``legacy-probe-time``: IOMMU groups made when a device's *driver* probes.

What it models: arm64 with ACPI/IORT or device tree from v5.3 to v6.14
(R7, R10.2). A PCI device gets its fwspec, and with it its group, only in
the bus ``dma_configure`` hook that ``really_probe`` runs for a driver, with
``dev->driver`` already set, so the log names the driver (R1.4). The bus
replay run when the first SMMU registers skips every device without a
fwspec (R7.6, R7.7), so a device with no driver never gets a group (R7.8),
and a device probed before its non-isolating upstream bridge starts its own
group (R4.5): the seed thread's bug.

This is :class:`~iommugroups.Strategy` itself; the module names it.
"""

from __future__ import annotations

from .base import Strategy

__all__ = ["LegacyProbeTime"]


class LegacyProbeTime(Strategy):
    """Grouping at driver probe (arm64 v5.3-v6.14); see the module docstring."""
