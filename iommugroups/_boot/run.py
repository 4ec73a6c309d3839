"""``simulate``: run one boot under a strategy given by name or as an object.

The simulator itself (:mod:`iommugroups._boot.simulator`) takes a strategy
object; this module, above the strategy registry, resolves a name first.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._bulk import paused_gc
from .._kernel.model import IommuKind, Topology
from .._kernel.quirks import Quirks
from .._kernel.version import KernelVersion, holds, resolve_kernel
from .drivers import Driver
from .scenario import Scenario
from .simulator import SimulationResult, Simulator, StrategyLike
from .strategies.registry import get_strategy

__all__ = ["default_strategies", "default_strategy", "simulate"]


def default_strategy(kernel: KernelVersion, topology: Topology) -> str:
    """The strategy a kernel of that version uses on that machine.

    An arm64 machine (one whose IOMMU instances are SMMUs) groups at driver
    probe from v5.3 to v6.14 (``legacy-probe-time``, R7) and at device add
    since v6.15 (``device-add``, R10.1); x86 groups every device at device
    add, its IOMMU ready before PCI devices are probed (``canonical``).

    >>> from iommugroups import examples
    >>> default_strategy(KernelVersion(6, 1), examples.d05())
    'legacy-probe-time'
    >>> default_strategy(KernelVersion(7, 3), examples.d05())
    'device-add'
    """
    arm64 = any(i.kind in (IommuKind.SMMU_V3, IommuKind.SMMU_V2) for i in topology.iommus)
    return default_strategies(kernel)["arm64" if arm64 else "x86"]


def default_strategies(kernel: KernelVersion) -> dict[str, str]:
    """The strategy a kernel of that version uses, per architecture (``arm64``, ``x86``)."""
    arm64 = "device-add" if holds("device-add-arm64", kernel) else "legacy-probe-time"
    return {"arm64": arm64, "x86": "canonical"}


def simulate(
    topology: Topology,
    scenario: Scenario | None = None,
    strategy: str | StrategyLike | None = None,
    *,
    quirks: Quirks | None = None,
    drivers: Iterable[Driver] = (),
    kernel: KernelVersion | str | None = None,
) -> SimulationResult:
    """Replay a boot of ``topology`` under ``scenario`` with one grouping strategy.

    Args:
        topology: the machine, with its IOMMU instances and ID mappings.
        scenario: boot and actions (default: an ACPI boot with the default
            built-in drivers and no actions).
        strategy: a strategy name (see :data:`~iommugroups.STRATEGIES`) or
            an object implementing :class:`~iommugroups.StrategyLike`
            (default: the one the kernel uses, :func:`default_strategy`).
        quirks: the quirk tables (default: the kernel's).
        drivers: drivers to add to (or replace in) the catalogue.
        kernel: the kernel version modelled (``"6.1"``, a
            :class:`~iommugroups.KernelVersion`); default: the scenario's,
            else the newest modelled. It decides the log messages (R1.4,
            R7.9), when ACS is enabled on device-tree machines (R2.7) and
            the default strategy.

    Returns:
        The final groups, every device's fate and the kernel log.

    Raises:
        ScenarioError: the scenario names an unknown driver or device, or
            asks for something the driver core would refuse.
        KeyError: unknown strategy name.
        InvalidKernelVersion: ``kernel`` is not a version.

    >>> from iommugroups import PciFunction, PcieType, Scenario, Topology, simulate
    >>> port = PciFunction("00:01.0", class_code=0x060400, header_type=1,
    ...                    pcie_type=PcieType.ROOT_PORT, secondary_bus=1, subordinate_bus=1)
    >>> nic = PciFunction("01:00.0", vendor=0x8086, device=0x10D3, class_code=0x020000,
    ...                   pcie_type=PcieType.ENDPOINT)
    >>> boot = Scenario(actions=[("insmod", "e1000e")])
    >>> result = simulate(Topology([port, nic]), boot, "legacy-probe-time")
    >>> print("\\n".join(result.log_lines(markers=True)))
    pcieport 0000:00:01.0: Adding to iommu group 0
    ACTION insmod e1000e
    e1000e 0000:01:00.0: Adding to iommu group 0
    >>> result = simulate(Topology([port, nic]), boot)  # x86: canonical
    >>> print("\\n".join(result.log_lines(markers=True)))
    pci 0000:00:01.0: Adding to iommu group 0
    pci 0000:01:00.0: Adding to iommu group 0
    ACTION insmod e1000e
    """
    scenario = scenario or Scenario()
    version = resolve_kernel(kernel, scenario.kernel)
    if strategy is None:
        strategy = default_strategy(version, topology)
    chosen = get_strategy(strategy) if isinstance(strategy, str) else strategy
    with paused_gc():  # a boot builds its devices and records in bulk
        # (the simulator goes when the call returns, before the collector is
        # back: only the result is left for it to look at)
        return _boot(topology, scenario, chosen, quirks, drivers, version)


def _boot(
    topology: Topology,
    scenario: Scenario,
    strategy: StrategyLike,
    quirks: Quirks | None,
    drivers: Iterable[Driver],
    kernel: KernelVersion,
) -> SimulationResult:
    return Simulator(
        topology, scenario, strategy, quirks=quirks, drivers=drivers, kernel=kernel
    ).run()
