"""``bus-replay``: Robin Murphy's "super-hack" of 2020-02-13 (seed thread).

What it models: ``arm_smmu_set_bus_ops`` calling ``bus_set_iommu`` for
*every* SMMU instance, and ``bus_set_iommu`` replaying ``add_iommu_group``
over every device that has no group yet when the ops are already set.
Never merged.

Why it does not fix the seed case (R7.7): at each registration, the
devices whose driver deferred have no fwspec (a deferral happens before
``iommu_fwspec_init``, R7.4), so ``add_device`` returns -ENODEV for them
exactly as in the first replay. John Garry reported as much on 2020-02-14.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .base import Strategy

if TYPE_CHECKING:
    from ..simulator import Simulator

__all__ = ["BusReplay"]


class BusReplay(Strategy):
    """Probe-time grouping plus a replay on every IOMMU registration."""

    name: ClassVar[str] = "bus-replay"
    title: ClassVar[str] = "replay add_iommu_group on every SMMU registration"
    kernel: ClassVar[str] = "proposed by Robin Murphy, 2020-02-13; not merged"
    rules: ClassVar[tuple[str, ...]] = ("R7.6", "R7.7")
    upstream: ClassVar[bool] = False

    def iommu_registered(self, sim: Simulator, instance: str, first: bool) -> None:
        """Every registration replays over groupless devices (R7.7: no fwspec, no group)."""
        sim.state["bus_ops"] = True
        self.replay(sim)
