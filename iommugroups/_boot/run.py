"""``simulate``: run one boot under a strategy given by name or as an object.

The simulator itself (:mod:`iommugroups._boot.simulator`) takes a strategy
object; this module, above the strategy registry, resolves a name first.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._bulk import paused_gc
from .._kernel.model import Topology
from .._kernel.quirks import Quirks
from .drivers import Driver
from .scenario import Scenario
from .simulator import SimulationResult, Simulator, StrategyLike
from .strategies.registry import get_strategy

__all__ = ["simulate"]


def simulate(
    topology: Topology,
    scenario: Scenario | None = None,
    strategy: str | StrategyLike = "legacy-probe-time",
    *,
    quirks: Quirks | None = None,
    drivers: Iterable[Driver] = (),
) -> SimulationResult:
    """Replay a boot of ``topology`` under ``scenario`` with one grouping strategy.

    Args:
        topology: the machine, with its IOMMU instances and ID mappings.
        scenario: boot and actions (default: an ACPI boot with the default
            built-in drivers and no actions).
        strategy: a strategy name (see :data:`~iommugroups.STRATEGIES`) or
            an object implementing :class:`~iommugroups.StrategyLike`.
        quirks: the quirk tables (default: the kernel's).
        drivers: drivers to add to (or replace in) the catalogue.

    Returns:
        The final groups, every device's fate and the kernel log.

    Raises:
        ScenarioError: the scenario names an unknown driver or device, or
            asks for something the driver core would refuse.
        KeyError: unknown strategy name.

    >>> from iommugroups import PciFunction, PcieType, Scenario, Topology, simulate
    >>> port = PciFunction("00:01.0", class_code=0x060400, header_type=1,
    ...                    pcie_type=PcieType.ROOT_PORT, secondary_bus=1, subordinate_bus=1)
    >>> nic = PciFunction("01:00.0", vendor=0x8086, device=0x10D3, class_code=0x020000,
    ...                   pcie_type=PcieType.ENDPOINT)
    >>> result = simulate(Topology([port, nic]), Scenario(actions=[("insmod", "e1000e")]))
    >>> print("\\n".join(result.log_lines(markers=True)))
    pcieport 0000:00:01.0: Adding to iommu group 0
    ACTION insmod e1000e
    e1000e 0000:01:00.0: Adding to iommu group 0
    """
    chosen = get_strategy(strategy) if isinstance(strategy, str) else strategy
    with paused_gc():  # a boot builds its devices and records in bulk
        sim = Simulator(topology, scenario or Scenario(), chosen, quirks=quirks, drivers=drivers)
        return sim.run()
