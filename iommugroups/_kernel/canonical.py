"""Canonical grouping: every device grouped in device-add order, parents first.

What it models: Linux on x86 (VT-d, AMD-Vi) since IOMMU groups exist, and
arm64 IORT/DT since v6.15 ("iommu: Get DT/ACPI parsing into the proper probe
path", bcb81ac6ae3c; R10.1). The IOMMU probes every device when it is added
to its bus, or in the IOMMU's registration walk in device order, whatever
drivers exist. Parents are added before children, so every bridge already
has its group when a device below it asks ``pci_device_group`` (R4), and the
result does not depend on driver probe order.

Order: platform devices first, in the order the topology lists them (the
registration walk visits ``iommu_buses[]`` with the platform bus before
PCI), then PCI functions in the kernel's enumeration order
(:meth:`Topology.enumeration_order`) unless an explicit device-add order is
given. Per device:

* PCI devices: ``pci_device_group`` (R4, R5), through the IOMMU driver's
  ``device_group`` hook (R4.7).
* Platform devices: ``generic_device_group``: always a new group (R1.5).
* Behind an SMMUv2: stream-match sharing first (R1.7).
* Behind an SMMUv3: a device whose stream id another device already holds
  gets no group ("stream N already in tree", R7.9). Duplicates *within* one
  device's fwspec are accepted (the behaviour since the SMMUv3 duplicate
  stream id fix; 6.1 refused them).
* Devices no declared IOMMU translates get no group.

Group ids come from the IDA in allocation order (R1.1); nothing is released
during a boot, so they are dense (R1.2).

On x86 the platform facts (:attr:`Topology.platform`, read by
:func:`~iommugroups._kernel.x86.x86_view`) add three things: devices no
IOMMU translates get no group (an AMD IOMMU's own function R11.2, a device
IVRS does not cover R11.3, one outside every DMAR unit or of an ignored
graphics unit R11.5/R11.6); a device in a VMD domain does its DMA as the VMD
endpoint, so ``pci_device_group`` finds the endpoint's group (R3.1); and
since v6.1 the IOMMUs register one by one, each grouping its own devices, so
ids are handed out unit by unit (R1.9). Group *membership* does not depend
on that order here, only the ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from .._bulk import paused_gc
from .._errors import UnknownDevice
from .fwspec import Refused, StreamTree, iommu_lookup
from .groups import AddLog, Decision, Decisions, Found, Grouping, LogLine, device_sort_key
from .model import IommuKind, PciAddress, PciFunction, PlatformDevice, Topology
from .pci_device_group import GroupingEnv, find_group
from .quirks import Quirks, make_context
from .version import KernelVersion
from .x86 import X86View, x86_view

__all__ = ["CANONICAL", "canonical_groups"]

CANONICAL = "canonical"

Device = PciFunction | PlatformDevice


def _device_order(
    topology: Topology,
    order: Iterable[str | PciAddress] | None,
    default: tuple[PciFunction, ...] | None = None,
) -> list[Device]:
    platform = list(topology.platform_devices)
    pci: list[Device] = list(default if default is not None else topology.enumeration_order())
    if order is None:
        return platform + pci
    by_name: dict[str, Device] = {d.name: d for d in platform}
    by_name.update((str(f.address), f) for f in topology.functions)
    chosen: list[Device] = []
    seen: set[str] = set()
    for item in order:
        key = str(item) if isinstance(item, PciAddress) else item
        if key not in by_name:
            try:
                key = str(PciAddress.parse(key))
            except ValueError:
                pass
        dev = by_name.get(key)
        if dev is None:
            raise UnknownDevice(f"device {item} in the given order is not in the topology")
        if key in seen:
            raise ValueError(f"device {item} appears twice in the given order")
        seen.add(key)
        chosen.append(dev)
    rest = [d for d in platform + pci if _name(d) not in seen]
    return chosen + rest


def _name(dev: Device) -> str:
    return str(dev.address) if isinstance(dev, PciFunction) else dev.name


def canonical_groups(
    topology: Topology,
    *,
    quirks: Quirks | None = None,
    order: Iterable[str | PciAddress] | None = None,
    record: bool = False,
    kernel: KernelVersion | str | None = None,
) -> Grouping:
    """Group a whole topology the way Linux v6.15+ (and x86 always) does.

    Args:
        topology: the machine.
        quirks: the quirk table (default: the kernel's).
        order: an explicit device-add order (device names or addresses), e.g.
            from a kernel log; devices not named follow in enumeration order.
            Group *membership* only depends on it where a child comes before
            its parent; group *ids* follow it.
        record: keep every device's :class:`~iommugroups.Decision` in
            :attr:`Grouping.decisions`: how it came to its group, with the
            traced ``pci_device_group`` call (steps, links, ACS verdicts).
        kernel: the kernel the groups are for: a :class:`KernelVersion`, a
            version or a release string (``"6.12"``, ``"6.12.11-amd64"``;
            ``None``: the newest modelled). Before v6.1 x86 ids follow
            device order instead of going IOMMU by IOMMU (R1.9); before v5.6
            a device behind a VMD endpoint gets no group (R3.1).

    Returns:
        The groups, with the ``pci <dev>: Adding to iommu group N`` lines.

    >>> from iommugroups import examples
    >>> g = canonical_groups(examples.desktop())
    >>> g.group_of("0000:03:00.0") == g.group_of("00:1c.1")  # R5.2 on the ports
    True
    >>> print(g.log[0])
    pci 0000:00:00.0: Adding to iommu group 0
    >>> d = canonical_groups(examples.desktop(), record=True).decisions["0000:02:00.0"]
    >>> d.how, d.rule, d.via, [s.kind for s in d.pci.links]
    ('upstream', 'R4.2', '0000:00:02.0', ['upstream-bridge'])
    """
    with paused_gc():  # bulk building: nothing made here forms a cycle
        # (the working state goes when the call returns, before the collector
        # is back: only the result is left for it to look at)
        return _canonical_groups(topology, quirks, order, record, kernel)


def _canonical_groups(
    topology: Topology,
    quirks: Quirks | None,
    order: Iterable[str | PciAddress] | None,
    record: bool,
    kernel: KernelVersion | str | None,
) -> Grouping:
    """:func:`canonical_groups`' body."""
    ctx = make_context(topology, quirks, kernel=kernel)
    env = GroupingEnv(ctx)
    view = x86_view(topology, kernel)
    devices = _device_order(topology, order, view.order)
    if not topology.iommus and not topology.platform_devices:
        return _implicit_iommu(devices, env, record, view)

    kinds = {i.name: i.kind for i in topology.iommus}
    streams = StreamTree()  # for SMMUv2 sharing and SMMUv3 clashes
    groups_by_addr: dict[PciAddress, int] = {}
    recorded = Decisions(env, groups_by_addr) if record else None
    log = _Log()
    untranslated, vmds = view.untranslated, view.vmd
    add_line, add_streams = log.add, streams.add
    smmu_v2 = IommuKind.SMMU_V2  # (read once: enum members cost a look-up each)
    for dev in devices:
        name = str(dev.address) if isinstance(dev, PciFunction) else dev.name
        found_spec = iommu_lookup(dev, name, ctx, untranslated, kinds, streams)
        if isinstance(found_spec, Refused):
            log.ungrouped[name] = found_spec.why
            if recorded is not None:
                decision = Decision(name, None, "ungrouped", found_spec.rule, why=found_spec.why)
                recorded.add(name, decision)
            continue
        spec, bus, kind, v2 = found_spec
        group: int | None = None
        shared: tuple[str, tuple[int, ...]] | None = None
        found: Found | None = None
        if v2 is not None and v2.group is not None:  # R1.7 arm_smmu_device_group
            group = v2.group
            if recorded is not None and v2.via is not None:
                shared = (v2.via, v2.stream_ids)
        vmd: PciAddress | None = None
        if group is None:
            if isinstance(dev, PciFunction):
                vmd = vmds.get(dev.address.domain) if vmds else None
                if vmd is not None:  # R3.1: pci_device_group starts from the endpoint
                    found = find_group(env.topology.get(vmd), groups_by_addr, env)
                else:
                    found = find_group(dev, groups_by_addr, env)
                group = found[0]
            if group is None:  # R4.4 / R1.5 generic_device_group: a new id (R1.1)
                group = log.n_groups
                log.n_groups += 1
            if kind is smmu_v2:  # "Remember group for faster lookups" (R1.7)
                streams.remember(spec, group)
        if isinstance(dev, PciFunction):
            groups_by_addr[dev.address] = group
            add_line(name, group, bus, dev.address[0] > 0xFFFF)
        else:
            add_line(name, group, bus, True)
        if recorded is not None:
            if shared is not None:
                owner, ids = shared
                decision = Decision(
                    name, group, "stream-sharing", "R1.7", owner, iommu=spec.iommu, streams=ids
                )
                recorded.add(name, decision)
            elif vmd is not None:
                recorded.add(name, _vmd_decision(name, group, vmd, found))
            elif found is not None:
                assert isinstance(dev, PciFunction)
                recorded.add_found(name, dev, group, found)
            else:
                recorded.add(name, Decision(name, group, "generic", "R1.5"))
        add_streams(spec, name)
    return log.grouping(recorded)


class _Log:
    """The ``Adding to iommu group`` lines of a canonical run, kept flat (R1.4).

    Nothing is released in such a run, so ids are dense (R1.1, R1.2); the
    members of each group are gathered once at the end.
    """

    __slots__ = ("devices", "groups", "n_groups", "prefixes", "ungrouped", "unusual")

    def __init__(self) -> None:
        self.devices: list[str] = []
        self.groups: list[int] = []
        self.prefixes: list[str] | None = None  # while every line is a "pci" one
        self.n_groups = 0
        self.ungrouped: dict[str, str] = {}
        #: a name that does not sort as a string sorts its address: a domain
        #: above ffff, or a platform device
        self.unusual = False

    def add(self, name: str, group: int, prefix: str, unusual: bool) -> None:
        if prefix != "pci" and self.prefixes is None:
            self.prefixes = ["pci"] * len(self.devices)
        if self.prefixes is not None:
            self.prefixes.append(prefix)
        self.devices.append(name)
        self.groups.append(group)
        if unusual:
            self.unusual = True

    def grouping(self, recorded: Decisions | None) -> Grouping:
        """The groups, members in address order then by name."""
        buckets: list[list[str]] = [[] for _ in range(self.n_groups)]
        for name, gid in zip(self.devices, self.groups, strict=True):
            buckets[gid].append(name)
        key = device_sort_key if self.unusual else None  # full names sort as addresses
        groups = {gid: tuple(sorted(names, key=key)) for gid, names in enumerate(buckets)}
        log: Sequence[LogLine] = (
            AddLog("pci", self.devices, self.groups)
            if self.prefixes is None
            else tuple(map(LogLine, self.prefixes, self.devices, self.groups))
        )
        return Grouping(
            groups=groups,
            log=log,
            ungrouped=self.ungrouped,
            strategy=CANONICAL,
            decisions=recorded if recorded is not None else {},
        )


def _vmd_decision(name: str, group: int, endpoint: PciAddress, found: Found | None) -> Decision:
    """R3.1: a device in a VMD domain, grouped as its endpoint's DMA."""
    via = found[1] if found is not None else None
    if found is not None and found[0] is not None and via is not None:
        return Decision(name, group, "vmd", "R3.1", str(via.address), str(endpoint))
    return Decision(name, group, "vmd", "R3.1", None, str(endpoint))


def _implicit_iommu(
    devices: list[Device], env: GroupingEnv, record: bool, view: X86View
) -> Grouping:
    """The loop of :func:`canonical_groups` for PCI functions behind implicit x86 IOMMUs.

    The same rules as the general loop, for a topology with no platform
    devices and no declared IOMMU instance, without the firmware
    bookkeeping: the path grouping a large x86 machine takes. Devices the
    platform rules leave untranslated get no group; a device in a VMD domain
    is grouped from its endpoint (R3.1). Ids are dense because nothing is
    released (R1.1, R1.2).
    """
    groups_by_addr: dict[PciAddress, int] = {}
    recorded = Decisions(env, groups_by_addr) if record else None
    log = _Log()
    ungrouped = log.ungrouped
    untranslated = view.untranslated
    vmds = view.vmd
    topology = env.topology
    n_groups = 0
    wide = False  # a domain above ffff: names no longer sort as strings
    add_device, add_group = log.devices.append, log.groups.append
    functions = cast("list[PciFunction]", devices)  # no platform device here
    for dev in functions:
        addr = dev.address
        if untranslated:
            off = untranslated.get(addr)
            if off is not None:
                name = str(addr)
                ungrouped[name] = off[1]
                if recorded is not None:
                    recorded.add(name, Decision(name, None, "ungrouped", off[0], why=off[1]))
                continue
        endpoint = vmds.get(addr.domain) if vmds else None
        if endpoint is not None:  # R3.1: pci_device_group starts from the endpoint
            found = find_group(topology.get(endpoint), groups_by_addr, env)
        else:
            found = find_group(dev, groups_by_addr, env)
        gid = found[0]
        if gid is None:  # R4.4: a new group
            gid = n_groups
            n_groups += 1
        groups_by_addr[addr] = gid
        name = str(addr)
        add_device(name)
        add_group(gid)
        if addr[0] > 0xFFFF:
            wide = True
        if recorded is not None:
            if endpoint is not None:
                recorded.add(name, _vmd_decision(name, gid, endpoint, found))
            else:
                recorded.add_found(name, dev, gid, found)

    log.n_groups = n_groups
    log.unusual = wide
    return log.grouping(recorded)
