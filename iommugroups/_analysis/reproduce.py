"""Which grouping strategies reproduce a kernel log: the log replayed through the simulator.

Reproduction (``reproduced_by``)
--------------------------------
When the observation is a kernel log (``observed.log``), the log is replayed
through the simulator (:func:`simulate`) once per strategy of the registry,
and a strategy *reproduces* the observation when its final partition equals
the observed one. The replayed scenario (:func:`replay_scenario`):

* an ACPI boot whose only built-in driver is the IOMMU driver, so no device
  is bound at boot and the IOMMU instances are registered;
* then, in log order, for each device's first ``Adding to iommu group``
  line naming a driver: the driver is loaded (an ``override_only`` stand-in
  named as in the log, so it binds nothing by itself) and bound to that
  device (``bind DEVICE DRIVER``: ``driver_override``); a platform device's
  driver is loaded (matching the platform devices the log names with it)
  at its first line; a line naming the bus (``pci ...``: grouped at device
  add, no driver) binds nothing; the first line of an SR-IOV VF enables the
  VFs of its PF up to it first (``sriov PF N``), after binding a stand-in
  driver (:data:`PF_STAND_IN`) to the PF if the log shows the PF grouped
  without one (enabling VFs needs a PF driver; the log does not name it);
  a line that names neither (the format before Linux 5.1) binds a stand-in
  driver (:data:`UNNAMED_DRIVER`): a strategy that groups at driver probe
  needs a probe there, and one that groups at device add is not affected;
* a ``Removing from iommu group`` line hot-removes the device (``remove``),
  and its next ``Adding`` line re-adds it first (``rescan``, which re-adds
  every removed device) before binding it again.

So each strategy sees the devices probed in the order and with the drivers
the kernel's log shows, and decides itself when groups are made (at probe,
at device add, behind device links...). Partitions are compared over the
devices of the topology (VFs the replay enables included), except those the
replay leaves out (named in ``left_out``); a device with no group on one side
and a group on the other is a difference.

Limits: only the order of the logged probes is replayed, not their timing
against the boot (a driver that deferred and a driver loaded after boot look
alike); devices that bound a driver without ever getting a group (a module
IOMMU driver, R7.4) are not in the log, so the replay never probes them, and
a device removed without a group leaves no line, so it stays; a VF whose PF
is not in the log before it cannot be enabled and is left out; driver probe
failures are not known; the firmware is taken to be ACPI. A strategy that
"reproduces" the partition may still number the groups differently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from .._boot.drivers import Driver
from .._boot.run import simulate
from .._boot.scenario import IOMMU_DRIVER, Action, Scenario
from .._boot.strategies.registry import get_strategy
from .._errors import IommuGroupsError
from .._kernel.groups import Grouping, LogLine, device_sort_key
from .._kernel.model import Topology, full_name
from .._kernel.quirks import Quirks
from .._kernel.version import KernelVersion
from .names import listed

__all__ = [
    "PF_STAND_IN",
    "UNNAMED_DRIVER",
    "Replay",
    "Reproduction",
    "replay_scenario",
    "reproduce",
]

#: Log prefixes that are bus names: the device was grouped without a driver (R1.4).
_BUS_PREFIXES = frozenset({"pci", "platform", "amba", "fsl-mc"})

#: The stand-in driver a replay binds to a PF the log shows grouped without a
#: driver, so that its VFs can be enabled.
PF_STAND_IN = "sriov-pf-driver"

#: The stand-in driver a replay binds where a log line names no driver nor bus
#: (the format before Linux 5.1, ``iommu: Adding device ... to group N``).
UNNAMED_DRIVER = "unnamed-driver"


@attrs.frozen
class Reproduction:
    """Whether one strategy, replaying the observed log, ends with the observed groups.

    Attributes:
        strategy: the strategy's name.
        reproduced: its final partition equals the observed one.
        detail: the first difference, or why the replay could not run.
    """

    strategy: str
    reproduced: bool
    detail: str = ""


@attrs.frozen
class Replay:
    """The scenario :func:`replay_scenario` derived from a kernel log.

    Attributes:
        scenario: boot and actions.
        drivers: the stand-in drivers the actions load.
        compared: devices whose groups are compared.
        left_out: devices left out of the comparison -> why.
    """

    scenario: Scenario
    drivers: tuple[Driver, ...]
    compared: frozenset[str]
    left_out: Mapping[str, str] = attrs.field(factory=dict)


def replay_scenario(topology: Topology, log: Sequence[LogLine]) -> Replay:
    """The scenario replaying a kernel log's probes (see the module docstring)."""
    pci = {str(f.address): f for f in topology.functions}
    platform = {p.name: p for p in topology.platform_devices}
    vf_slots = {str(a): (str(pf.address), i) for a, (pf, i) in topology.vf_slots().items()}
    actions: list[Action] = []
    driver_bus: dict[str, str] = {}
    platform_devs: dict[str, list[str]] = {}
    bound: set[str] = set()
    loaded: set[str] = set()
    driverless: set[str] = set()
    enabled: dict[str, int] = {}
    left_out: dict[str, str] = {}
    seen: set[str] = set()  # added (and not removed since)
    ever: set[str] = set()
    removed: set[str] = set()
    for line in log:
        dev = full_name(line.device)
        if line.action != "add":
            if dev in seen and dev in pci:  # hot-remove: the device and what is below it
                actions.append(Action("remove", (dev,)))
                seen.discard(dev)
                removed.add(dev)
                bound.discard(dev)
            continue
        if dev in seen:
            continue
        if dev in removed:  # added again: a rescan re-adds every removed device
            actions.append(Action("rescan", ()))
            removed.clear()
        seen.add(dev)
        ever.add(dev)
        prefix = line.prefix or UNNAMED_DRIVER
        if dev in platform:
            if prefix in _BUS_PREFIXES or prefix == platform[dev].bus:
                continue
            if driver_bus.setdefault(prefix, "platform") != "platform":
                left_out[dev] = f"its driver name {prefix} is also a PCI driver's in the log"
                continue
            if prefix not in platform_devs:
                actions.append(Action("insmod", (prefix,)))
            platform_devs.setdefault(prefix, []).append(dev)
            continue
        if dev in vf_slots:
            pf, index = vf_slots[dev]
            if pf not in bound and pf in driverless:
                # Enabling VFs needs a driver on the PF (sriov_numvfs); the log
                # does not name it, as the PF had its group before it bound.
                if PF_STAND_IN not in loaded:
                    loaded.add(PF_STAND_IN)
                    driver_bus[PF_STAND_IN] = "pci"
                    actions.append(Action("insmod", (PF_STAND_IN,)))
                actions.append(Action("bind", (pf, PF_STAND_IN)))
                bound.add(pf)
            if pf not in bound:
                left_out[dev] = (
                    f"an SR-IOV VF whose PF {pf} has no group or driver before it in the "
                    "log: the replay cannot enable it"
                )
                continue
            if enabled.get(pf, 0) <= index:
                actions.append(Action("sriov", (pf, str(index + 1))))
                enabled[pf] = index + 1
        elif dev not in pci:
            continue  # not in the topology: never compared
        elif pci[dev].physfn is not None:
            left_out[dev] = "an SR-IOV VF whose PF has no SR-IOV capability in the topology"
            continue
        if prefix in _BUS_PREFIXES:
            driverless.add(dev)
            continue  # grouped at device add, without a driver
        if driver_bus.setdefault(prefix, "pci") != "pci":
            left_out[dev] = f"its driver name {prefix} is also a platform driver's in the log"
            continue
        if prefix not in loaded:
            loaded.add(prefix)
            actions.append(Action("insmod", (prefix,)))
        actions.append(Action("bind", (dev, prefix)))
        bound.add(dev)
    drivers: list[Driver] = []
    for name, bus in driver_bus.items():
        if bus == "pci":
            drivers.append(
                Driver(name, override_only=True, about="replay: binds where the log says")
            )
        elif name in platform_devs:
            drivers.append(
                Driver(
                    name,
                    bus="platform",
                    platform_names=tuple(platform_devs[name]),
                    about="replay: binds the platform devices the log names with it",
                )
            )
    compared = (set(pci) | {vf for vf in vf_slots if vf in ever}) | set(platform)
    compared -= set(left_out)
    scenario = Scenario(
        name="replay of the observed log",
        firmware="acpi",
        builtin=(IOMMU_DRIVER,),
        actions=actions,
    )
    return Replay(scenario, tuple(drivers), frozenset(compared), left_out)


def _restricted(
    groups: Mapping[int, Sequence[str]], keep: frozenset[str]
) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for members in groups.values():
        kept = frozenset(n for n in (full_name(m) for m in members) if n in keep)
        for n in kept:
            out.setdefault(n, kept)
    return out


def _describe(members: frozenset[str] | None, name: str) -> str:
    if members is None:
        return "no group"
    others = members - {name}
    return (
        f"with {listed(sorted(others, key=device_sort_key))}" if others else "a group of its own"
    )


def reproduce(
    topology: Topology,
    observed: Grouping,
    replay: Replay,
    strategies: Iterable[str],
    *,
    quirks: Quirks | None = None,
    kernel: KernelVersion | str | None = None,
) -> tuple[Reproduction, ...]:
    """Replay ``replay`` under each strategy; compare final partitions with ``observed``.

    ``kernel``: the kernel version modelled (default: the newest).

    Raises:
        KeyError: an unknown strategy name.
    """
    keep = replay.compared
    want = _restricted(observed.groups, keep)
    out: list[Reproduction] = []
    for name in strategies:
        strategy = get_strategy(name)
        try:
            result = simulate(
                topology,
                replay.scenario,
                strategy,
                quirks=quirks,
                drivers=replay.drivers,
                kernel=kernel,
            )
        except (IommuGroupsError, ValueError) as exc:
            out.append(Reproduction(name, False, f"the replay cannot run: {exc}"))
            continue
        got = _restricted(result.grouping.groups, keep)
        if got == want:
            out.append(Reproduction(name, True))
            continue
        differ = sorted(
            (n for n in set(got) | set(want) if got.get(n) != want.get(n)), key=device_sort_key
        )
        first = differ[0]
        more = f" (and {len(differ) - 1} more devices)" if len(differ) > 1 else ""
        out.append(
            Reproduction(
                name,
                False,
                f"{first}: {_describe(got.get(first), first)} under {name}, "
                f"{_describe(want.get(first), first)} observed{more}",
            )
        )
    return tuple(out)
