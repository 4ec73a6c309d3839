"""The orders a kernel can go through, as simulator scenarios.

An *order* is everything that can differ between two boots of one machine
with one kernel, written as a sequence of :class:`OrderEvent`:

* ``iommu I``: IOMMU instance ``I`` registers (``iommu_device_register``);
* ``probe D``: a driver probes device ``D`` (PCI functions are bound to
  ``pci-stub`` through ``driver_override``; a platform device to a driver of
  its own, ``drv-<name>``), so any driver probe order can be written;
* ``sriov PF``: the PF's driver enables its VFs (``sriov_numvfs``);
* ``remove D``: hot-remove of ``D`` and everything below it;
* ``rescan``: the removed devices come back, parents first;
* ``add D``: only in a *widened* order (:attr:`OrderSpace.adds` ``"any"``):
  ``device_add`` of ``D`` in an order PCI enumeration cannot produce.

:func:`schedule_file` turns an order into a :class:`~iommugroups.ScenarioFile`
that :func:`~iommugroups.simulate` replays: an ACPI boot with no built-in
driver and no IOMMU registered (every PCI device exists before any driver
or IOMMU, as on the seed's D05), then the events as scenario actions. PCI
enumeration adds a bridge before the devices below it, so no scenario can
add a device before its bridge: a widened order is a device-add order,
replayed by :func:`~iommugroups.canonical_groups` with ``order=`` (grouping
at ``device_add`` in that order, R10.1).

The two outcomes an order can have are compared as :class:`OrderOutcome`: the
partition into groups (group ids forgotten) and the present devices left
without a group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import attrs

from .._boot.drivers import Driver
from .._boot.run import simulate
from .._boot.scenario import Action, Scenario
from .._boot.simulator import SimulationResult
from .._errors import IommuGroupsError
from .._io.scenario_file import ScenarioFile
from .._kernel.canonical import canonical_groups
from .._kernel.fwspec import IMPLICIT_IOMMU
from .._kernel.model import PciAddress, PciFunction, Topology
from .._kernel.quirks import Quirks

__all__ = [
    "ADDS",
    "EVENT_KINDS",
    "PROBE_DRIVER",
    "OrderEvent",
    "OrderSpace",
    "OrdersError",
    "OrderOutcome",
    "analysed_topology",
    "instances",
    "outcome_of",
    "platform_driver",
    "reference_order",
    "replay",
    "schedule_file",
]

#: The kinds of :class:`OrderEvent`, in the order the docs describe them.
EVENT_KINDS = ("iommu", "probe", "sriov", "remove", "rescan", "add")

#: The two scopes of device-add orders (:attr:`OrderSpace.adds`).
ADDS = ("kernel", "any")

#: The driver every PCI function of an order is bound to (``driver_override``).
PROBE_DRIVER = "pci-stub"


class OrdersError(IommuGroupsError, ValueError):
    """An order-dependence question that cannot be asked as written."""


class OrderEvent(NamedTuple):
    """One step of an order: what happens (``kind``) and to what (``target``).

    ``str(event)`` is the step as the docs and the ``orders`` command write
    it: ``probe 0000:01:00.0``, ``iommu smmu0``, ``rescan``.
    """

    kind: str
    target: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.target}" if self.target else self.kind


@attrs.frozen
class OrderSpace:
    """Which orders are compared (see the docs page "Order dependence").

    Attributes:
        adds: ``"kernel"`` (default): devices are added as PCI enumeration
            adds them, a bridge before the devices below it, and SR-IOV VFs
            when their PF's driver enables them; ``"any"``: every device-add
            order (a device may be added, and grouped, before its bridge).
        hotplug: include hot-remove and rescan of any devices at any time.
        iommu_builtin: the IOMMU driver is built in (default): a driver
            probing a device whose IOMMU has not registered yet is deferred
            and tried again (R7.3 step 4, R8.2-R8.4). ``False``: a module,
            loaded at some point; a device probed before it runs without an
            IOMMU (R7.4).
    """

    adds: str = "kernel"
    hotplug: bool = True
    iommu_builtin: bool = True

    def __attrs_post_init__(self) -> None:
        if self.adds not in ADDS:
            raise OrdersError(f"adds must be one of {', '.join(ADDS)}, not {self.adds!r}")


class OrderOutcome(NamedTuple):
    """What an order ends with: the groups (ids forgotten) and the devices without one."""

    groups: frozenset[frozenset[str]]
    ungrouped: frozenset[str]

    def group_of(self, device: str) -> frozenset[str] | None:
        """The members of ``device``'s group, or ``None``."""
        for members in self.groups:
            if device in members:
                return members
        return None

    def together(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` end in one group."""
        group = self.group_of(a)
        return group is not None and b in group


def instances(topology: Topology) -> tuple[str, ...]:
    """The IOMMU instances that register: the declared ones, or the implicit one."""
    return tuple(i.name for i in topology.iommus) or (IMPLICIT_IOMMU,)


def analysed_topology(
    topology: Topology, vfs: Mapping[str, int] | None = None
) -> tuple[Topology, dict[PciAddress, tuple[PciAddress, ...]]]:
    """The topology whose orders are compared, and each PF's VFs in index order.

    Every VF the topology lists is enabled by its PF's ``sriov`` event, which
    enables VFs ``0 .. n-1`` (``sriov_numvfs`` takes a count): VFs of lower
    index the topology does not list are added too. ``vfs`` maps further PFs
    to a VF count to enable (``{"000a:11:00.0": 2}``).

    Raises:
        OrdersError: ``vfs`` names a device that is not an SR-IOV PF, or
            more VFs than it offers.
    """
    wanted: dict[PciAddress, int] = {}
    for fn in topology.functions:
        if fn.physfn is None:
            continue
        pf = topology.get(fn.physfn)
        index = pf.sriov.vf_index(pf.address, fn.address) if pf.sriov is not None else None
        if index is None:
            raise OrdersError(
                f"VF {fn.address}: its PF {pf.address} has no SR-IOV capability placing a VF "
                "there, so no order can enable it"
            )
        wanted[pf.address] = max(wanted.get(pf.address, 0), index + 1)
    for name, count in (vfs or {}).items():
        try:
            pf = topology.get(name)
        except (KeyError, ValueError):
            raise OrdersError(f"vfs: no device {name} in the topology") from None
        if pf.sriov is None or pf.physfn is not None:
            raise OrdersError(f"vfs: {pf.address} is not an SR-IOV capable PF")
        if not 0 <= count <= pf.sriov.total_vfs:
            raise OrdersError(f"vfs: {pf.address} offers {pf.sriov.total_vfs} VFs, not {count}")
        wanted[pf.address] = max(wanted.get(pf.address, 0), count)
    names: list[PciAddress] = []
    for pf_addr, count in wanted.items():
        pf = topology.get(pf_addr)
        if pf.sriov is not None:
            names.extend(pf.sriov.vf_addresses(pf.address, count))
    topo, _added = topology.with_vfs(names)  # VFs as pci_iov_add_virtfn makes them
    by_pf: dict[PciAddress, tuple[PciAddress, ...]] = {}
    for pf_addr in wanted:
        listed = topo.vfs_of(pf_addr)
        if listed:
            by_pf[pf_addr] = tuple(f.address for f in listed)
    return topo, by_pf


def reference_order(
    topology: Topology,
    vfs: Mapping[PciAddress, tuple[PciAddress, ...]],
    *,
    registrations: Sequence[str] | None = None,
) -> tuple[OrderEvent, ...]:
    """The order every other one is compared with: the canonical order.

    Every IOMMU instance registers first (in ``registrations`` order, by
    default the topology's), then the platform devices and the PCI functions
    are probed in device order (:meth:`~iommugroups.Topology.enumeration_order`),
    each PF enabling its VFs as soon as it is bound, and the VFs are probed
    last, PF by PF: the order of :func:`~iommugroups.canonical_groups`.
    """
    events = [OrderEvent("iommu", i) for i in (registrations or instances(topology))]
    events += [OrderEvent("probe", d.name) for d in topology.platform_devices]
    tail: list[OrderEvent] = []
    for fn in topology.enumeration_order():
        if fn.physfn is not None:
            continue
        events.append(OrderEvent("probe", str(fn.address)))
        if fn.address in vfs:
            events.append(OrderEvent("sriov", str(fn.address)))
            tail += [OrderEvent("probe", str(v)) for v in vfs[fn.address]]
    return tuple(events + tail)


def platform_driver(name: str) -> Driver:
    """The driver an order uses for platform device ``name`` (``drv-<name>``)."""
    return Driver(
        f"drv-{name}",
        bus="platform",
        platform_names=(name,),
        about=f"the driver of {name} alone, loaded when the order probes it",
    )


def schedule_file(
    topology: Topology,
    events: Iterable[OrderEvent],
    vfs: Mapping[PciAddress, tuple[PciAddress, ...]],
    *,
    space: OrderSpace | None = None,
    name: str = "order",
    strategy: str | None = None,
) -> ScenarioFile:
    """The scenario that replays ``events`` on ``topology`` (see the module doc).

    Raises:
        OrdersError: the order holds a widened ``add`` event, which no
            scenario can replay.
    """
    space = space or OrderSpace()
    platform = {d.name for d in topology.platform_devices}
    actions: list[Action] = [Action("insmod", (PROBE_DRIVER,))]
    drivers: list[Driver] = []
    for ev in events:
        if ev.kind == "iommu":
            actions.append(Action("iommu", (ev.target,)))
        elif ev.kind == "probe" and ev.target in platform:
            drv = platform_driver(ev.target)
            drivers.append(drv)
            actions.append(Action("insmod", (drv.name,)))
        elif ev.kind == "probe":
            actions.append(Action("bind", (ev.target, PROBE_DRIVER)))
        elif ev.kind == "sriov":
            count = _vf_count(topology, PciAddress.parse(ev.target), vfs)
            actions.append(Action("sriov", (ev.target, str(count))))
        elif ev.kind == "remove":
            actions.append(Action("remove", (ev.target,)))
        elif ev.kind == "rescan":
            actions.append(Action("rescan", ()))
        else:
            raise OrdersError(f"{ev}: a widened device-add order has no scenario")
    scenario = Scenario(
        name=name,
        firmware="acpi",
        builtin=(),
        iommu_builtin=space.iommu_builtin,
        actions=actions,
    )
    unique = {d.name: d for d in drivers}
    return ScenarioFile(topology, scenario, tuple(unique.values()), strategy)


def _vf_count(
    topology: Topology, pf: PciAddress, vfs: Mapping[PciAddress, tuple[PciAddress, ...]]
) -> int:
    fn: PciFunction = topology.get(pf)
    listed = vfs.get(fn.address, ())
    if fn.sriov is None or not listed:
        return 0
    return max((fn.sriov.vf_index(fn.address, v) or 0) for v in listed) + 1


def outcome_of(result: SimulationResult) -> OrderOutcome:
    """The :class:`OrderOutcome` of a simulation: its groups and its present groupless devices."""
    ungrouped = frozenset(
        name
        for name, fate in result.fates.items()
        if fate.group is None and fate.state not in ("removed", "not-added")
    )
    return OrderOutcome(result.grouping.partition(), ungrouped)


def replay(
    topology: Topology,
    events: Sequence[OrderEvent],
    vfs: Mapping[PciAddress, tuple[PciAddress, ...]],
    strategy: str,
    *,
    space: OrderSpace | None = None,
    quirks: Quirks | None = None,
) -> OrderOutcome:
    """Replay one order under ``strategy`` and return its :class:`OrderOutcome`.

    A scenario order goes through :func:`~iommugroups.simulate`; a widened
    device-add order (``add`` events only) through
    :func:`~iommugroups.canonical_groups` with ``order=``.
    """
    if events and all(ev.kind == "add" for ev in events):
        grouping = canonical_groups(topology, quirks=quirks, order=[ev.target for ev in events])
        return OrderOutcome(grouping.partition(), frozenset(grouping.ungrouped))
    sf = schedule_file(topology, events, vfs, space=space)
    result = simulate(sf.topology, sf.scenario, strategy, quirks=quirks, drivers=sf.drivers)
    return outcome_of(result)
