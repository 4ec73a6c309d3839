"""A driver-core simulator: replay a boot and see when devices get their groups.

Pure and deterministic: it reads a :class:`~iommugroups.Topology` (with its
firmware facts) and a :class:`~iommugroups.Scenario`, runs the driver core as
the kernel does, and lets a *strategy* decide where IOMMU grouping happens.
Nothing is read or written outside the values passed in.

What it models, with the ids of the rule table:

* ``device_add`` in enumeration order; the bus notifier (strategy hook).
* Driver registration in link order and ``driver_attach`` over devices in
  device order (R8.1); ``__device_attach`` trying drivers in registration
  order, where a probe error lets the next driver try and a deferral stops
  the walk (``drivers/base/dd.c``: ``__device_attach_driver``).
* ``really_probe``: ``dev->driver`` is set *before* ``dma_configure``, so a
  group made there is logged with the driver's name (R1.4), even if the
  probe then fails (R8.5: the group stays).
* Deferred probing: a FIFO pending list, moved to the active list by every
  successful bind, but only after ``late_initcall`` enabled it (R8.2-R8.4);
  the worker runs when the current step is done.
* Device links (R9.1-R9.3) when a strategy asks for them.
* IOMMU instances registering at their own time (R7.6, R7.7), fwspecs from
  the firmware's ID mapping (R3.8), the SMMUv3 stream-id check (R7.9).
* Hot-remove (the group is left, its id freed when empty: R1.2), rescan,
  SR-IOV VFs added later.

The result is a :class:`SimulationResult`: the final groups, every device's
fate and the kernel log in order.
"""

from __future__ import annotations

import collections
import enum
import itertools
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final, NamedTuple, Protocol

import attrs

from .._kernel.acs import with_acs_enabled
from .._kernel.fwspec import IMPLICIT_IOMMU, StreamTree, pci_fwspec, platform_fwspec
from .._kernel.groups import Grouping, GroupTable, LogLine
from .._kernel.model import (
    FwSpec,
    IommuKind,
    PciAddress,
    PciFunction,
    PlatformDevice,
    Topology,
    make_vf,
)
from .._kernel.pci_device_group import GroupingEnv
from .._kernel.quirks import Quirks, make_context
from .._kernel.version import KernelVersion, holds, resolve_kernel
from .drivers import KNOWN_DRIVERS, Driver, ProbeResult
from .scenario import IOMMU_DRIVER, Action, Scenario, ScenarioError

__all__ = [
    "DeviceFate",
    "Marker",
    "Message",
    "SimDevice",
    "SimulationResult",
    "Simulator",
    "StrategyLike",
]


class Message(NamedTuple):
    """A kernel message about a device: ``<prefix> <device>: <text>``."""

    prefix: str
    device: str
    text: str

    def __str__(self) -> str:
        return f"{self.prefix} {self.device}: {self.text}"


class Marker(NamedTuple):
    """A scenario step written into the log (``ACTION insmod e1000``)."""

    text: str

    def __str__(self) -> str:
        return self.text


LogEvent = LogLine | Message | Marker


@attrs.frozen
class DeviceFate:
    """What became of one device by the end of a simulation.

    Attributes:
        device: its name.
        state: ``"bound"`` (a driver is bound), ``"no-driver"`` (no
            registered driver matches it: never probed), ``"deferred"``
            (waiting in the deferred list, for ever if nothing changes),
            ``"failed"`` (every driver that tried failed), ``"removed"``
            (hot-removed and not rescanned) or ``"not-added"`` (a VF never
            enabled).
        driver: the bound driver, if any.
        group: its IOMMU group, if any.
        detail: why, in words (which drivers failed, what it waits for, why
            it has no group).
    """

    device: str
    state: str
    driver: str | None
    group: int | None
    detail: str = ""


@attrs.frozen
class SimulationResult:
    """The outcome of :meth:`Simulator.run`.

    Attributes:
        strategy: the strategy's name.
        scenario: the scenario's name.
        grouping: the groups at the end (``grouping.log`` holds the
            ``Adding``/``Removing`` lines only).
        events: every log event in order: group lines
            (:class:`~iommugroups.LogLine`), messages (named tuples
            ``(prefix, device, text)``, e.g. ``stream 256 already in tree
            from dev ...``) and action markers (named tuples ``(text,)``,
            e.g. ``ACTION insmod e1000``); each one's ``str`` is its line of
            the log.
        fates: per device, in device order.
        topology: the topology simulated, including the VFs that ``sriov``
            actions enable.
        notes: what the driver core refused without a kernel message (e.g.
            enabling VFs on a PF with no driver bound), in order.
        kernel: the kernel version modelled (``"7.3"``).
    """

    strategy: str
    scenario: str
    grouping: Grouping
    events: tuple[LogEvent, ...]
    fates: Mapping[str, DeviceFate]
    topology: Topology | None = None
    notes: tuple[str, ...] = ()
    kernel: str = ""

    def log_lines(self, *, markers: bool = False) -> tuple[str, ...]:
        """The kernel log as text lines, optionally with the action markers."""
        return tuple(str(e) for e in self.events if markers or not isinstance(e, Marker))

    def group_lines(self) -> tuple[str, ...]:
        """Only the ``Adding to iommu group`` lines (what ``dmesg | grep`` shows)."""
        return tuple(str(e) for e in self.events if isinstance(e, LogLine) and e.action == "add")


class _Unset(enum.Enum):
    UNSET = "unset"


# Not looked up yet (a device's firmware spec), not waiting (its IOMMU instance).
_UNSET: Final = _Unset.UNSET


@attrs.define
class SimDevice:
    """The simulator's mutable view of one device (``struct device``)."""

    name: str
    node: PciFunction | PlatformDevice
    bus: str
    present: bool = False
    driver: str | None = None
    override: str | None = None
    fwspec: FwSpec | None = None
    configured: bool = False  # dma_configure found its IOMMU (fwspec with ops)
    #: the kernel's ``dev->iommu->fwspec`` is there: set by ``dma_configure``,
    #: freed when the IOMMU probe fails (``iommu_init_device``: err_free, R10.1)
    holds_fwspec: bool = False
    failed: tuple[str, ...] = ()  # drivers whose probe failed, in order
    waiting: str = ""  # why it was last deferred
    no_group: str = ""  # why it has no group, when known
    ever_probed: bool = False
    added: bool = False  # ever device_add-ed
    # The simulator's own records, one slot each rather than a table per
    # record (a large machine has as many devices as functions): the
    # firmware's spec for it, looked up once (None: no mapping; it depends
    # on the topology only); the IOMMU instance its last dma_configure found
    # unregistered (None: no IOMMU translates it; see walk_devices); whether
    # it is on the deferred-probe pending or active list.
    _firmware: FwSpec | _Unset | None = attrs.field(
        default=_UNSET, init=False, repr=False, eq=False
    )
    _parked_on: str | _Unset | None = attrs.field(default=_UNSET, init=False, repr=False, eq=False)
    _deferred: bool = attrs.field(default=False, init=False, repr=False, eq=False)

    @property
    def fn(self) -> PciFunction | None:
        """The PCI function, for a PCI device."""
        return self.node if isinstance(self.node, PciFunction) else None


class _EventLog:
    """A run's kernel log as it is written, compact: most of a boot's log is
    ``Adding to iommu group`` lines (:class:`~iommugroups.LogLine`), kept as
    their three fields until the log is read; other events are kept as they
    are. ``append`` an event; iterate the events.
    """

    __slots__ = ("_devices", "_firsts", "_groups")

    def __init__(self) -> None:
        # per event: an Adding line's prefix, device and group; any other event, "" and 0
        self._firsts: list[LogEvent | str] = []
        self._devices: list[str] = []
        self._groups: list[int] = []

    def append(self, event: LogEvent) -> None:
        """Log ``event``."""
        if type(event) is LogLine and event.action == "add":
            self._firsts.append(event.prefix)
            self._devices.append(event.device)
            self._groups.append(event.group)
        else:
            self._firsts.append(event)
            self._devices.append("")
            self._groups.append(0)

    def __iter__(self) -> Iterator[LogEvent]:
        for first, device, group in zip(self._firsts, self._devices, self._groups, strict=True):
            yield LogLine(first, device, group) if isinstance(first, str) else first

    def __len__(self) -> int:
        return len(self._firsts)


class StrategyLike(Protocol):
    """What the simulator needs of a strategy: a name and five hooks.

    :class:`~iommugroups.Strategy` implements them as arm64 v5.3-v6.14 did;
    its methods say what each hook models.
    """

    @property
    def name(self) -> str: ...

    def links_for(self, sim: Simulator, dev: SimDevice) -> Sequence[str]: ...

    def device_added(self, sim: Simulator, dev: SimDevice) -> None: ...

    def iommu_registered(self, sim: Simulator, instance: str, first: bool) -> None: ...

    def dma_configure(self, sim: Simulator, dev: SimDevice) -> ProbeResult | None: ...

    def device_group(self, sim: Simulator, dev: SimDevice) -> int | None: ...


class Simulator:
    """Replays one scenario on one topology under one strategy.

    Build it, call :meth:`run` once. Strategies call the helper methods
    (:meth:`iommu_of`, :meth:`configure`, :meth:`probe_device`, ...) from
    their hooks; see :class:`~iommugroups.Strategy`.
    """

    def __init__(
        self,
        topology: Topology,
        scenario: Scenario,
        strategy: StrategyLike,
        *,
        quirks: Quirks | None = None,
        drivers: Iterable[Driver] = (),
        kernel: KernelVersion | str | None = None,
    ) -> None:
        self.scenario = scenario
        self.strategy = strategy
        #: The kernel modelled (the one asked for, else the scenario's, else the newest).
        self.kernel = resolve_kernel(kernel, scenario.kernel)
        self.catalogue: dict[str, Driver] = dict(KNOWN_DRIVERS)
        self.catalogue.update((d.name, d) for d in drivers)
        topology = _with_vfs(topology, scenario)
        if scenario.firmware == "dt" and holds("acs-at-dma-configure", self.kernel):
            # R2.7: since ≈v7.0 pci_dma_configure() enables ACS just before the
            # device is grouped; every device is configured before it is
            # grouped, parents before children, so the controls are on for
            # every grouping decision.
            topology = with_acs_enabled(topology)
        self.topology = topology
        self.ctx = make_context(self.topology, quirks, kernel=self.kernel)
        self.env = GroupingEnv(self.ctx)
        #: The kernel log so far (``append`` an event; iterate the events).
        self.events = _EventLog()
        self.table = GroupTable()
        self.table.log = self.events  # type: ignore[assignment]
        self.devices: dict[str, SimDevice] = {}
        for pd in self.topology.platform_devices:
            self.devices[pd.name] = SimDevice(pd.name, pd, pd.bus)
        for fn in self.topology.enumeration_order():
            name = str(fn.address)
            self.devices[name] = SimDevice(name, fn, "pci")
        # Present devices in device-add order (the bus's klist), each with the
        # count of device_adds when it was last added (to sort by).
        self.order: dict[str, int] = {}
        self.added = 0
        self.drivers: list[Driver] = []  # registered, in registration order
        self.iommus: list[str] = []  # registered instances
        self._registered: set[str] = set()  # the same, to look up
        self.kinds = {i.name: i.kind for i in self.topology.iommus}
        # The PCI devices' groups by address (what pci_device_group reads): a
        # view of the group table, which has them by name.
        self.pci_groups: Mapping[PciAddress, int] = _GroupsByAddress(self.table, self.devices)
        self.streams = StreamTree()
        # The registration walks' index (see walk_devices, replay_devices): devices
        # a walk may change ("loose": those the last walk visited, and those that
        # something happened to since), devices whose dma_configure last found
        # their IOMMU instance unregistered, by instance ("parked": a walk before
        # it registers would defer or fail them again, a no-op; each device's
        # SimDevice._parked_on says where it waits now), and configured devices
        # that may be without a group ("specced"). Loose and parked are kept from
        # the first walk on (None before it: every device added so far is loose
        # then, and the walk sorts out the parked ones), so strategies that never
        # walk keep neither.
        self._loose: dict[str, None] | None = None
        self._walked: list[str] = []
        self._parked: dict[str | None, dict[str, None]] = {}
        self._specced: dict[str, None] = {}
        # The deferred-probe pending and active lists (FIFO), of names; a
        # device is on one of them when its SimDevice._deferred says so. A
        # hot-removed device leaves its entry behind, passed over ("stale")
        # when its turn comes, and taken out before the device is queued
        # again (so that it goes to the tail, once).
        self.pending: list[str] = []
        self.active: collections.deque[str] = collections.deque()
        self._stale: set[str] = set()
        self.deferred_enabled = False
        self.initcalls_done = False
        # Device links (R9), most of them one to one (a device and the bridge
        # above it): consumer -> its suppliers, the one supplier's name or a
        # tuple of several; supplier -> its consumers, in link order, the one
        # consumer's name or an ordered set of them.
        self.links: dict[str, str | tuple[str, ...]] = {}
        self.consumers: dict[str, str | dict[str, None]] = {}
        self.state: dict[str, object] = {}  # strategies' own state
        self.notes: list[str] = []

    # ------------------------------------------------------------------ run
    def run(self) -> SimulationResult:
        """Boot, then run the scenario's actions; return the result.

        Once only: the run ends by letting go of the rules' working state
        (``ctx``, ``env``, the strategy's ``state``), which the result does
        not need.
        """
        self._boot()
        for action in self.scenario.actions:
            self.events.append(Marker(str(action)))
            self._action(action)
            self._flush()
        self._let_go()
        return self._result()

    def _let_go(self) -> None:
        """Drop what only the rules needed, before the result is built.

        The rules' memos (walks, ACS verdicts and aliases, per bus and per
        device) and the indexes are most of what a run holds; the result is
        built in the memory they leave, so a large run's peak is the larger
        of the two, not their sum.
        """
        del self.env, self.ctx
        self.state.clear()
        self.streams = StreamTree()
        self._loose = None
        self._walked = []
        self._parked = {}
        self._specced = {}
        self.links = {}
        self.consumers = {}

    def _boot(self) -> None:
        sc = self.scenario
        for dev in self._boot_devices(pci=False):
            self.device_add(dev)
        if sc.firmware == "acpi":  # root bridges scanned at subsys_initcall
            for dev in self._boot_devices(pci=True):
                self.device_add(dev)
        for name in sc.builtin:
            if name in sc.blacklist:
                continue
            if name == IOMMU_DRIVER:
                for inst in self.topology.iommus or ():
                    self.register_iommu(inst.name)
                if not self.topology.iommus:
                    self.register_iommu(IMPLICIT_IOMMU)
                continue
            self.driver_register(self._driver(name))
        if sc.firmware == "dt":  # host bridge probed at late_initcall (fw_devlink, R9.4)
            for dev in self._boot_devices(pci=True):
                self.device_add(dev)
            for dev in self._boot_devices(pci=True):
                self.device_attach(dev)
        # late_initcall (R8.4)
        self.deferred_enabled = True
        self.trigger()
        self._flush()
        self.initcalls_done = True
        self.trigger()
        self._flush()

    def _boot_devices(self, *, pci: bool) -> Iterator[SimDevice]:
        """The platform devices, or the PCI functions found at boot (not VFs), in device order."""
        for dev in self.devices.values():
            if (dev.bus == "pci") == pci and not _is_vf(dev):
                yield dev

    def _action(self, action: Action) -> None:
        kind, args = action.kind, action.args
        if kind == "insmod":
            drv = self._driver(args[0])
            if any(d.name == drv.name for d in self.drivers):
                return  # already registered (insmod of a loaded module: -EEXIST)
            self.driver_register(drv)
        elif kind == "bind":
            dev = self._device(args[0])
            self._driver(args[1])
            dev.override = args[1]
            if dev.present:
                self.device_attach(dev)
        elif kind == "remove":
            dev = self._device(args[0])
            if dev.present:
                self.remove(dev)
        elif kind == "rescan":
            self.rescan()
        elif kind == "sriov":
            self.enable_vfs(self._device(args[0]), int(args[1]))
        elif kind == "iommu":
            self.register_iommu(args[0])

    # ------------------------------------------------------------- lookups
    def _driver(self, name: str) -> Driver:
        drv = self.catalogue.get(name)
        if drv is None:
            known = ", ".join(sorted(self.catalogue))
            raise ScenarioError(f"unknown driver {name!r}; known drivers: {known}")
        return drv

    def _device(self, name: str) -> SimDevice:
        dev = self.devices.get(name)
        if dev is None:
            try:
                dev = self.devices.get(str(PciAddress.parse(name)))
            except ValueError:
                dev = None
        if dev is None:
            raise ScenarioError(f"no device {name} in the topology")
        return dev

    def iommu_of(self, dev: SimDevice) -> str | None:
        """The IOMMU instance the firmware puts ``dev`` behind, or ``None`` (R3.8)."""
        spec = self._firmware_spec(dev)
        return None if spec is None else spec.iommu

    def _firmware_spec(self, dev: SimDevice) -> FwSpec | None:
        spec = dev._firmware
        if spec is not _UNSET:
            return spec
        if isinstance(dev.node, PciFunction):
            spec = pci_fwspec(dev.node, self.ctx)
        else:
            spec = platform_fwspec(dev.node)
        dev._firmware = spec
        return spec

    def iommu_registered(self, instance: str) -> bool:
        """Whether ``instance`` has called ``iommu_device_register``."""
        return instance in self._registered

    def group_of(self, dev: SimDevice) -> int | None:
        """The device's group, if it has one (``iommu_group_get``)."""
        return self.table.member_of.get(dev.name)

    def present_devices(self) -> list[SimDevice]:
        """Present devices in device-add order (``bus_for_each_dev``)."""
        return [self.devices[n] for n in self.order]

    def ungrouped_devices(self) -> list[SimDevice]:
        """Present devices without a group (now), in device-add order."""
        grouped = self.table.member_of
        return [self.devices[n] for n in self.order if n not in grouped]

    #: Whether the registration walks use the index (tests compare with a full scan).
    index_walks = True

    def walk_devices(self) -> list[SimDevice]:
        """The devices an IOMMU registration walk may change, in device-add order.

        That is :meth:`ungrouped_devices` less the devices whose
        ``dma_configure`` last found their own IOMMU instance unregistered
        (deferred, R7.3, or failed, its module not loaded, R7.4) or found no
        firmware mapping, and nothing has happened to them since: configured
        in the walk of another instance they would defer or fail again with
        the same reason, changing nothing. The kernel's walk
        (``bus_iommu_probe``) visits them all, every instance times every
        device; the result is the same, in time linear in what changes.
        """
        if not self.index_walks:
            return self.ungrouped_devices()
        devices, order = self.devices, self.order
        loose: list[Iterable[str]]
        if self._loose is None:  # the first walk: every device added so far is loose
            loose = [order]
            for name, dev in devices.items():
                if dev._parked_on is not _UNSET:
                    self._parked.setdefault(dev._parked_on, {})[name] = None
        else:  # the last walk's devices, and those unparked since
            loose = [self._walked, self._loose]
        for inst in [i for i in self._parked if i is not None and i in self._registered]:
            loose.append(self._parked.pop(inst))
        grouped = self.table.member_of
        registered = self._registered
        keep: dict[str, None] = {}
        for name in itertools.chain.from_iterable(loose):
            if name in grouped or name not in order:
                continue
            waits_for = devices[name]._parked_on
            if waits_for is not _UNSET and (waits_for is None or waits_for not in registered):
                continue  # parked: the walk would change nothing
            keep[name] = None
        del loose
        self._loose = {}
        self._walked = sorted(keep, key=order.__getitem__)
        return [devices[n] for n in self._walked]

    def replay_devices(self) -> list[SimDevice]:
        """Present devices without a group that have a fwspec, in device-add order.

        ``add_iommu_group`` over the bus (R7.7) returns at once for a device
        without a fwspec (``-ENODEV``): these are the devices a replay can
        change. Linear in them, not in the devices on the bus.
        """
        if not self.index_walks:
            return [d for d in self.ungrouped_devices() if d.fwspec is not None]
        grouped = self.table.member_of
        keep: dict[str, None] = {}
        for name in self._specced:
            if name in grouped or name not in self.order or self.devices[name].fwspec is None:
                continue
            keep[name] = None
        self._specced = keep
        return [self.devices[n] for n in sorted(keep, key=self.order.__getitem__)]

    def _unpark(self, dev: SimDevice) -> None:
        """Something changed for ``dev``: the next walk visits it again."""
        dev._parked_on = _UNSET
        if self._loose is not None:
            self._loose[dev.name] = None

    # ---------------------------------------------------------- driver core
    def device_add(self, dev: SimDevice) -> None:
        """``device_add``: on the bus, links made, bus notifier run."""
        dev.present = True
        dev.added = True
        self.added += 1
        self.order[dev.name] = self.added
        self._unpark(dev)
        suppliers = self.strategy.links_for(self, dev)
        if suppliers:
            self.links[dev.name] = suppliers[0] if len(suppliers) == 1 else tuple(suppliers)
            for supplier in suppliers:
                self._link(dev.name, supplier)
        self.strategy.device_added(self, dev)

    def _link(self, consumer: str, supplier: str) -> None:
        """Add ``consumer`` to ``supplier``'s consumers, unless it is there already."""
        known = self.consumers.get(supplier)
        if known is None:
            self.consumers[supplier] = consumer
        elif isinstance(known, str):
            if known != consumer:
                self.consumers[supplier] = {known: None, consumer: None}
        else:
            known[consumer] = None

    def _suppliers_of(self, consumer: str) -> Iterable[str]:
        """The devices ``consumer`` is linked to as a consumer (R9), in link order."""
        known = self.links.get(consumer, ())
        return (known,) if isinstance(known, str) else known

    def _consumers_of(self, supplier: str) -> Iterable[str]:
        """The devices linked to ``supplier`` as consumers (R9), in link order."""
        known = self.consumers.get(supplier, ())
        return (known,) if isinstance(known, str) else known

    def driver_register(self, drv: Driver) -> None:
        """``driver_register`` + ``driver_attach`` over devices in device order."""
        self.drivers.append(drv)
        for name in list(self.order):
            dev = self.devices[name]
            if dev.present and dev.driver is None and drv.matches(dev.node, dev.override):
                self.driver_probe_device(drv, dev)

    def device_attach(self, dev: SimDevice) -> None:
        """``__device_attach``: try registered drivers in order until one binds.

        A probe error lets the next driver try; a deferral ends the walk.
        """
        for drv in list(self.drivers):
            if dev.driver is not None or not dev.present:
                return
            if not drv.matches(dev.node, dev.override):
                continue
            result = self.driver_probe_device(drv, dev)
            if result is not ProbeResult.FAIL:
                return

    def driver_probe_device(self, drv: Driver, dev: SimDevice) -> ProbeResult:
        """``driver_probe_device`` -> ``really_probe``."""
        dev.ever_probed = True
        for supplier in self._suppliers_of(dev.name):  # R9.1
            sup = self.devices[supplier]
            if sup.present and sup.driver is None:
                dev.waiting = f"waiting for its supplier {supplier} to bind a driver (R9.1)"
                self._unpark(dev)
                self.defer(dev)
                return ProbeResult.DEFER
        dev.driver = drv.name  # before dma_configure (R1.4)
        configured = self.strategy.dma_configure(self, dev)
        if configured is ProbeResult.DEFER:
            dev.driver = None
            self.defer(dev)
            return ProbeResult.DEFER
        if (drv.name, dev.name) in self.scenario.probe_failures:
            result = ProbeResult.FAIL
        else:
            result = drv.probe(dev.node)
        if result is ProbeResult.OK:
            dev.waiting = ""
            self._unpark(dev)
            self.driver_bound(dev)
        else:
            dev.driver = None  # R8.5: a group assigned so far stays
            if result is ProbeResult.FAIL:
                dev.failed = (*dev.failed, drv.name)
            else:
                dev.waiting = f"{drv.name} asked for a later probe"
                self._unpark(dev)
                self.defer(dev)
        return result

    def driver_bound(self, dev: SimDevice) -> None:
        """``driver_bound``: AUTOPROBE consumers queued (R9.2), then the trigger (R8.3)."""
        # in the order the links were first made, as the kernel's supplier list
        for consumer in self._consumers_of(dev.name):
            c = self.devices[consumer]
            if c.present and c.driver is None and c.ever_probed:
                self._queue(c)
        self.trigger()

    def defer(self, dev: SimDevice) -> None:
        """``driver_deferred_probe_add``: to the tail of the pending list, once."""
        self._queue(dev)

    def _queue(self, dev: SimDevice) -> None:
        if dev._deferred:
            return
        if dev.name in self._stale:  # its old entry goes first (all stale ones, at once)
            devices = self.devices
            self.pending = [n for n in self.pending if devices[n]._deferred]
            self.active = collections.deque(n for n in self.active if devices[n]._deferred)
            self._stale.clear()
        dev._deferred = True
        self.pending.append(dev.name)

    def trigger(self) -> None:
        """``driver_deferred_probe_trigger``: a no-op until late_initcall (R8.3)."""
        if not self.deferred_enabled:
            return
        devices = self.devices
        self.active.extend(n for n in self.pending if devices[n]._deferred)
        self.pending = []

    def _flush(self) -> None:
        """The deferred-probe worker: retry the active list, head first."""
        while self.active:
            dev = self.devices[self.active.popleft()]
            if not dev._deferred:
                continue  # stale: hot-removed since it was queued
            dev._deferred = False
            if dev.present and dev.driver is None:
                self.device_attach(dev)

    # ----------------------------------------------------------------- IOMMU
    def register_iommu(self, instance: str) -> None:
        """``iommu_device_register`` of one instance, then the strategy's hook."""
        if instance in self._registered:
            return
        if self.topology.iommus and instance not in self.kinds:
            known = ", ".join(self.kinds)
            raise ScenarioError(f"no IOMMU instance {instance!r}; the topology has: {known}")
        first = not self.iommus
        self.iommus.append(instance)
        self._registered.add(instance)
        self.strategy.iommu_registered(self, instance, first)

    def configure(self, dev: SimDevice, *, registered: bool = False) -> ProbeResult | None:
        """The firmware half of ``dma_configure`` (IORT/OF ``*_iommu_configure``).

        Returns ``None`` when configured (fwspec set), ``ProbeResult.DEFER``
        when the device's IOMMU instance is not registered yet and its
        driver is built in (R7.3 step 4), ``ProbeResult.FAIL`` when no IOMMU
        translates the device (it runs without one). ``registered=True``
        takes every instance as registered (an IOMMU ready before any
        device, as on x86).
        """
        if dev.configured:
            return None
        spec = self._firmware_spec(dev)
        if spec is None:
            dev.no_group = "no IOMMU translates it (no firmware mapping)"
            self._park(dev, None)
            return ProbeResult.FAIL
        if not registered and not self.iommu_registered(spec.iommu):
            self._park(dev, spec.iommu)
            if self.scenario.iommu_builtin:
                dev.waiting = sys.intern(f"its IOMMU {spec.iommu} has not registered (R7.3)")
                return ProbeResult.DEFER
            dev.no_group = sys.intern(f"its IOMMU {spec.iommu} is a module not loaded (R7.4)")
            return ProbeResult.FAIL
        dev.fwspec = spec
        dev.configured = True
        dev.holds_fwspec = True
        self._unpark(dev)
        self._specced[dev.name] = None
        return None

    def _park(self, dev: SimDevice, instance: str | None) -> None:
        """``dev`` waits for ``instance`` (``None``: no IOMMU ever translates it)."""
        dev._parked_on = instance
        if self._loose is not None:  # (before the first walk, the walk finds them)
            self._parked.setdefault(instance, {})[dev.name] = None

    def probe_device(self, dev: SimDevice, prefix: str | None = None) -> int | None:
        """``iommu_probe_device``: stream-id check, ``device_group``, join (R1.3, R1.4).

        ``prefix`` is the log prefix (default: the bound driver, else the
        bus name). Returns the group, or ``None`` when the device could not
        be added (no fwspec, stream clash).
        """
        if self.group_of(dev) is not None:
            return self.group_of(dev)
        spec = dev.fwspec
        if spec is None:  # add_device: "if (!fwspec ...) return -ENODEV"
            return None
        who = prefix or dev.driver or dev.bus
        kind = self.kinds.get(spec.iommu)
        if kind is IommuKind.SMMU_V3:  # R7.9
            clash = self.streams.clash(spec, dev.name)
            if clash is not None:
                sid, owner = clash
                # one text per (stream id, owner): a refusal repeats in every walk
                text = sys.intern(
                    f"Aliasing StreamID {sid:#x} (from {owner}) unsupported, expect DMA "
                    "to be broken"
                    if holds("aliasing-streamid-message", self.kernel)
                    else f"stream {sid} already in tree from dev {owner}"
                )
                self.events.append(Message(who, dev.name, text))
                dev.no_group = sys.intern(f"{text} (R7.9)")
                dev.holds_fwspec = False  # the failed probe frees dev->iommu (R10.1)
                return None
        remembered = False  # SMMUv2: the group came from the device's entries (R1.7)
        if kind is IommuKind.SMMU_V2:
            v2 = self.streams.smmu_v2_group(spec)
            if v2.conflict:  # R1.7: successive entries in two groups -> -EINVAL
                dev.no_group = "its stream-match entries belong to different groups (R1.7)"
                dev.holds_fwspec = False  # the failed probe frees dev->iommu (R10.1)
                return None
            remembered = v2.group is not None
        group = self.strategy.device_group(self, dev)
        if group is None:
            group = self.table.new_group()
        if kind is IommuKind.SMMU_V2 and not remembered:
            self.streams.remember(spec, group)  # "Remember group for faster lookups"
        self.table.add(dev.name, group, who)
        # (a walk passes over grouped devices anyway; this keeps the table small)
        if self._loose is not None:
            self._loose.pop(dev.name, None)
        self._specced.pop(dev.name, None)
        dev.no_group = ""
        self.streams.add(spec, dev.name)
        return group

    def release_device(self, dev: SimDevice) -> None:
        """``iommu_release_device``: leave the group (its id freed when empty, R1.2)."""
        if self.group_of(dev) is None:
            return
        # R1.4: "Removing from iommu group" is logged before v6.4 only
        self.table.remove(dev.name, dev.driver or dev.bus, log=holds("remove-log", self.kernel))
        if dev.fwspec is not None:
            self.streams.release(dev.fwspec, dev.name)
            self._specced[dev.name] = None
        self._unpark(dev)

    # --------------------------------------------------------- hot-plug etc.
    def remove(self, dev: SimDevice) -> None:
        """``pci_stop_and_remove_bus_device``: children first, then the device."""
        for child in self._below(dev):
            if child.present:
                self.remove(child)
        if dev.driver is not None:  # device_release_driver
            dev.driver = None
        self.release_device(dev)
        dev.present = False
        dev.fwspec = None
        dev.configured = False
        dev.holds_fwspec = False
        dev.override = None
        dev.failed = ()
        dev.ever_probed = False
        del self.order[dev.name]
        if dev._deferred:  # off the deferred lists (its entry is left, stale)
            dev._deferred = False
            self._stale.add(dev.name)

    def _below(self, dev: SimDevice) -> list[SimDevice]:
        """Devices on the bus below a bridge, in device order (VF buses included)."""
        fn = dev.fn
        if fn is None:
            return []
        return [self.devices[str(f.address)] for f in self.topology.children(fn)]

    def rescan(self) -> None:
        """``pci_rescan_bus``: re-add removed functions (not VFs), then bind them.

        The scan goes down from the buses that are there: a function is found
        when the bridge above it is present or found by this rescan (a
        re-found bridge's bus is scanned too); all are added, parents first,
        then bound.
        """
        found: list[SimDevice] = []
        back: set[str] = set()
        for d in self.devices.values():  # device order: parents first
            if d.bus != "pci" or d.present or _is_vf(d):
                continue
            fn = d.fn
            assert fn is not None
            above = self.topology.bridge_above(fn.address)
            if (
                above is None
                or self.devices[str(above.address)].present
                or (str(above.address) in back)
            ):
                found.append(d)
                back.add(d.name)
        for dev in found:
            fn = dev.fn
            assert fn is not None
            if fn.address.function > 0:
                # R5.7: pci_scan_slot() marks a function > 0 multifunction only
                # after pci_device_add() (and the bus notifier) has run for it
                self.env.unmarked.add(fn.address)
                self.device_add(dev)
                self.env.unmarked.discard(fn.address)
            else:
                self.device_add(dev)
        for dev in found:
            self.device_attach(dev)

    def enable_vfs(self, pf: SimDevice, count: int) -> None:
        """``sriov_numvfs``: add ``count`` VFs, each added then bound in turn."""
        fn = pf.fn
        if fn is None or fn.sriov is None:
            raise ScenarioError(f"sriov: {pf.name} is not an SR-IOV capable PF")
        if not pf.present or pf.driver is None:
            # sriov_numvfs_store: -ENOENT without a driver; nothing is logged
            self.notes.append(
                f"sriov {pf.name} {count}: refused, no driver is bound to the PF (-ENOENT)"
            )
            return
        if count > fn.sriov.total_vfs:
            raise ScenarioError(f"sriov: {pf.name} offers {fn.sriov.total_vfs} VFs, not {count}")
        for addr in fn.sriov.vf_addresses(fn.address, count):
            vf = self.devices[str(addr)]
            if vf.present:
                continue
            self.device_add(vf)
            self.device_attach(vf)

    # --------------------------------------------------------------- result
    def _result(self) -> SimulationResult:
        events = tuple(self.events)
        self.table.log = events  # type: ignore[assignment]  # (what the snapshot reads)
        fates: dict[str, DeviceFate] = {}
        for dev in self.devices.values():
            fates[dev.name] = self._fate(dev)
        return SimulationResult(
            strategy=self.strategy.name,
            scenario=self.scenario.name,
            grouping=self.table.snapshot(self.strategy.name),
            events=events,
            fates=fates,
            topology=self.topology,
            notes=tuple(self.notes),
            kernel=str(self.kernel),
        )

    def _fate(self, dev: SimDevice) -> DeviceFate:
        group = self.group_of(dev)
        if not dev.present:
            if not dev.added:
                return DeviceFate(dev.name, "not-added", None, None, "VF never enabled")
            return DeviceFate(dev.name, "removed", None, None, "hot-removed")
        iommu = ""
        if group is None:
            iommu = dev.no_group or (
                "never reached dma_configure" if not dev.configured else "no group"
            )
        if dev.driver is not None:
            return DeviceFate(dev.name, "bound", dev.driver, group, iommu)
        if dev._deferred:
            return DeviceFate(dev.name, "deferred", None, group, dev.waiting or "deferred")
        if dev.failed:
            why = "probe failed: " + ", ".join(dev.failed)
            return DeviceFate(
                dev.name, "failed", None, group, "; ".join(x for x in (why, iommu) if x)
            )
        return DeviceFate(dev.name, "no-driver", None, group, iommu or "no driver matches it")


class _GroupsByAddress(Mapping[PciAddress, int]):
    """The groups of the PCI devices by address, read from the group table (by name).

    One table, not a second one kept beside it: a large machine has as
    many entries as functions. An address's name is ``str(address)``.
    """

    __slots__ = ("_devices", "_member_of")

    def __init__(self, table: GroupTable, devices: Mapping[str, SimDevice]) -> None:
        self._member_of = table.member_of  # (the table's own dict, never replaced)
        self._devices = devices

    def get(self, address: PciAddress, default: int | None = None) -> int | None:  # type: ignore[override]
        return self._member_of.get(str(address), default)

    def __getitem__(self, address: PciAddress) -> int:
        return self._member_of[str(address)]

    def __contains__(self, address: object) -> bool:
        return isinstance(address, PciAddress) and str(address) in self._member_of

    def __iter__(self) -> Iterator[PciAddress]:
        devices = self._devices
        for name in list(self._member_of):
            fn = devices[name].fn
            if fn is not None:
                yield fn.address

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _is_vf(dev: SimDevice) -> bool:
    return dev.fn is not None and dev.fn.is_virtfn


def _with_vfs(topology: Topology, scenario: Scenario) -> Topology:
    """The topology plus every VF a ``sriov`` action will enable."""
    extra: list[PciFunction] = []
    known = {str(f.address) for f in topology.functions}
    for action in scenario.actions:
        if action.kind != "sriov":
            continue
        try:
            pf = topology.get(action.args[0])
        except KeyError:
            raise ScenarioError(f"sriov: no device {action.args[0]} in the topology") from None
        if pf.sriov is None:
            raise ScenarioError(f"sriov: {pf.address} is not an SR-IOV capable PF")
        for addr in pf.sriov.vf_addresses(
            pf.address, min(int(action.args[1]), pf.sriov.total_vfs)
        ):
            if str(addr) in known:
                continue
            known.add(str(addr))
            extra.append(make_vf(pf, addr))
    return topology.replace(functions=(*topology.functions, *extra)) if extra else topology
