"""Group objects, ids and the kernel's log line (spec §1).

* :class:`IdAllocator`: the kernel's group-id IDA: lowest free id (R1.1),
  freed ids reused (R1.2).
* :class:`GroupTable`: the mutable group state a strategy builds, one device
  at a time; devices only ever *join* groups (R1.3).
* :class:`LogLine`: ``<driver or bus> <dev>: Adding to iommu group <n>`` (R1.4).
* :class:`Grouping`: the immutable result.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, overload

import attrs

from .._errors import InvalidAddress
from .model import PciAddress, PciFunction, full_name
from .pci_device_group import GroupDecision, GroupingEnv, pci_device_group

__all__ = [
    "HOW_RULES",
    "Decision",
    "Decisions",
    "Found",
    "Grouping",
    "GroupTable",
    "IdAllocator",
    "LogLine",
    "device_sort_key",
]


#: The version of :meth:`Grouping.to_json`'s document.
GROUPS_SCHEMA = "iommugroups.groups/1"


_HEX = frozenset("0123456789abcdef")


def device_sort_key(name: str) -> tuple[int, tuple[int, int, int, int], str]:
    """Sort PCI addresses numerically first, then other device names."""
    if (  # the full form dddd:bb:dd.f, as names are kept: read without the parser
        len(name) == 12
        and name[4] == ":"
        and name[7] == ":"
        and name[10] == "."
        and name[11] in "01234567"
        and _HEX.issuperset(name[:4] + name[5:7] + name[8:10])
    ):
        dev = int(name[8:10], 16)
        if dev <= 0x1F:
            return (0, (int(name[:4], 16), int(name[5:7], 16), dev, int(name[11])), "")
    try:
        return (0, PciAddress.parse(name).sort_key(), "")
    except InvalidAddress:
        return (1, (0, 0, 0, 0), name)


class IdAllocator:
    """R1.1/R1.2: ``ida_alloc``: the lowest currently free non-negative id.

    >>> ida = IdAllocator()
    >>> [ida.alloc() for _ in range(3)]
    [0, 1, 2]
    >>> ida.free(1)
    >>> ida.alloc()
    1
    """

    __slots__ = ("_freed", "_next")

    def __init__(self) -> None:
        self._next = 0
        self._freed: list[int] = []

    def alloc(self) -> int:
        """Take the lowest free id."""
        if self._freed:
            return heapq.heappop(self._freed)
        n = self._next
        self._next += 1
        return n

    def free(self, n: int) -> None:
        """Give ``n`` back (R1.2: on group release)."""
        if n < 0 or n >= self._next or n in self._freed:
            raise ValueError(f"group id {n} is not allocated")
        heapq.heappush(self._freed, n)


_LOG_RE = re.compile(
    r"^(?:\[\s*[\d.]+\]\s*)?(?:<\d>)?\s*(?P<prefix>\S+) (?P<dev>\S+): "
    r"(?P<action>Adding to|Removing from) iommu group (?P<group>\d+)\s*$"
)


class LogLine(NamedTuple):
    """R1.4: one ``Adding to iommu group`` (or ``Removing from``) kernel line.

    ``prefix`` is the bound driver's name when the device has one at that
    moment, else the bus name (``pci``, ``platform``). ``action`` is
    ``"add"`` or ``"remove"``. (A named tuple rather than an attrs class:
    a whole boot's log is made of them, and tuples of strings and ints are
    cheap for the garbage collector.)

    >>> str(LogLine("mlx5_core", "000a:11:00.0", 2))
    'mlx5_core 000a:11:00.0: Adding to iommu group 2'
    >>> LogLine.parse("[   13.688527] mlx5_core 000a:11:00.0: Adding to iommu group 2")
    LogLine(prefix='mlx5_core', device='000a:11:00.0', group=2, action='add')
    """

    prefix: str
    device: str
    group: int
    action: str = "add"

    def __str__(self) -> str:
        verb = "Adding to" if self.action == "add" else "Removing from"
        return f"{self.prefix} {self.device}: {verb} iommu group {self.group}"

    @classmethod
    def parse(cls, text: str) -> LogLine | None:
        """Parse a kernel line (timestamp optional); ``None`` if it is not one."""
        m = _LOG_RE.match(text.strip())
        if m is None:
            return None
        action = "add" if m["action"] == "Adding to" else "remove"
        return cls(m["prefix"], m["dev"], int(m["group"]), action)


class AddLog(Sequence[LogLine]):
    """A read-only log of ``Adding to iommu group`` lines, stored flat.

    Holds device names and group ids in two lists and makes each
    :class:`LogLine` when it is read: a large machine's log then costs the
    garbage collector two objects instead of one per device. Compares equal
    to any sequence of the same lines.
    """

    __slots__ = ("_devices", "_groups", "_prefix")

    def __init__(self, prefix: str, devices: list[str], groups: list[int]) -> None:
        self._prefix = prefix
        self._devices = devices
        self._groups = groups

    def __len__(self) -> int:
        return len(self._devices)

    @overload
    def __getitem__(self, index: int) -> LogLine: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[LogLine, ...]: ...
    def __getitem__(self, index: int | slice) -> LogLine | tuple[LogLine, ...]:
        if isinstance(index, slice):
            return tuple(self)[index]
        return LogLine(self._prefix, self._devices[index], self._groups[index])

    def __iter__(self) -> Iterator[LogLine]:
        prefix = self._prefix
        for dev, g in zip(self._devices, self._groups, strict=True):
            yield LogLine(prefix, dev, g)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"AddLog({len(self)} lines)"


def _log_converter(value: Iterable[LogLine]) -> Sequence[LogLine]:
    return value if isinstance(value, AddLog) else tuple(value)


#: How a device can come to its group (:attr:`Decision.how`), with the rule.
HOW_RULES = {
    "alias": "R4.1",  # its own id, or a DMA alias, already had the group
    "upstream": "R4.2",  # a non-isolated bridge above it had the group
    "alias-group": "R5.1",  # a DMA-alias peer of pdev had it
    "function-alias": "R5.2",  # a non-isolated function of pdev's slot had it
    "new": "R4.4",  # nothing found: a new group
    "generic": "R1.5",  # a platform device: generic_device_group
    "stream-sharing": "R1.7",  # SMMUv2: a stream id shared with a grouped device
    "vmd": "R3.1",  # behind a VMD endpoint: grouped as the endpoint's DMA
    "ungrouped": "R3.8",  # no group: no IOMMU translates it, or a refusal
}


class Decision(NamedTuple):
    """How one device came to its group (or to none) in one grouping run.

    Recorded by :func:`~iommugroups.canonical_groups` with ``record=True``
    and read by ``explain``, ``show`` and ``check``, so that the reason they
    give is the decision that was made.

    Attributes:
        device: the device's name (``dddd:bb:dd.f`` or a platform name).
        group: its group, ``None`` when it got none.
        how: ``pci_device_group``'s step (``"alias"`` R4.1, ``"upstream"``
            R4.2, ``"alias-group"`` R5.1, ``"function-alias"`` R5.2,
            ``"new"`` R4.4), ``"generic"`` (a platform device, R1.5),
            ``"stream-sharing"`` (SMMUv2, R1.7), ``"vmd"`` (a device in a
            VMD domain, grouped from the VMD endpoint, R3.1) or
            ``"ungrouped"``.
        rule: the rule that decided (``"alias"`` through a bridge's
            requester id is R3.4; an ``"ungrouped"`` device's rule is the one
            its ``why`` names: R3.8 or R7.9 on arm64, R11.2, R11.3, R11.5,
            R11.6 or R3.1 on x86).
        via: the device whose group it joined (``None`` for a new group,
            ``"generic"`` and ``"ungrouped"``).
        pdev: for a PCI device grouped by ``pci_device_group``, the device
            steps 3-4 ran on or would have (R4.3); for ``"vmd"``, the VMD
            endpoint the call started from.
        iommu: for ``"stream-sharing"``, the SMMUv2 instance.
        streams: for ``"stream-sharing"``, the stream ids it shares with ``via``.
        why: for ``"ungrouped"``, why it has no group.
        owner: the run's record of decisions it belongs to (what
            :attr:`Grouping.decisions` holds), which makes :attr:`pci`; not
            part of equality.

    (A named tuple: a large machine records one per device.)
    """

    device: str
    group: int | None
    how: str
    rule: str
    via: str | None = None
    pdev: str | None = None
    iommu: str | None = None
    streams: tuple[int, ...] = ()
    why: str = ""
    owner: Decisions | None = None

    @property
    def pci(self) -> GroupDecision | None:
        """The traced ``pci_device_group`` call that decided (PCI devices grouped by it).

        Its steps, the links to ``via``, the walk and the ACS verdicts on the
        way (:class:`~iommugroups.GroupDecision`). Made when first read (and
        then kept): the call is run again, traced, against the groups the
        devices added before this one held (groups only grow, R1.3), which
        is the input it had during the run.
        """
        return self.owner.trace(self.device) if self.owner is not None else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return self[:-1] == other[:-1]  # the owner is where, not what

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self[:-1])


#: What ``find_group`` returned for one device: (group, via, step, pdev).
Found = tuple["int | None", "PciFunction | None", str, PciFunction]


class _Before(Mapping[PciAddress, int]):
    """The groups held before the device at add position ``cutoff`` was grouped.

    A view of the run's final ``groups_by_addr``: groups only grow and keep
    their ids (R1.2, R1.3), so a device added earlier holds the same group
    now as then, and one added later was invisible (R4.5).
    """

    __slots__ = ("_cutoff", "_groups", "_position")

    def __init__(
        self, groups: Mapping[PciAddress, int], position: Mapping[PciAddress, int], cutoff: int
    ) -> None:
        self._groups = groups
        self._position = position
        self._cutoff = cutoff

    def __getitem__(self, key: PciAddress) -> int:
        i = self._position.get(key)
        if i is None or i >= self._cutoff:
            raise KeyError(key)
        return self._groups[key]

    def __iter__(self) -> Iterator[PciAddress]:
        return (a for a, i in self._position.items() if i < self._cutoff)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Decisions(Mapping[str, Decision]):
    """The decisions of one grouping run by device name, in add order (``Grouping.decisions``).

    A PCI device grouped by ``pci_device_group`` is kept as what
    ``find_group`` returned during the run (in flat lists: a large machine's
    run keeps no object per device); its :class:`Decision` is made when
    read, and the decision's trace (:attr:`Decision.pci`) when that is read,
    by running the traced call against the groups held before it. The fast
    path of the run stays as it is.
    """

    def __init__(self, env: GroupingEnv, groups: Mapping[PciAddress, int]) -> None:
        self.env = env
        """The run's :class:`~iommugroups.GroupingEnv`: its memoised ACS verdicts and walks."""
        self._groups = groups
        self._index: dict[str, int] = {}  # name -> index in the lists below
        self._fn: list[PciFunction | None] = []
        self._group: list[int | None] = []
        self._via: list[PciFunction | None] = []
        self._step: list[str] = []
        self._pdev: list[PciFunction | None] = []
        self._made: dict[int, Decision] = {}  # decisions given whole, or already made
        self._position: dict[PciAddress, int] | None = None
        self._traces: dict[PciAddress, GroupDecision] = {}

    def add(self, name: str, decision: Decision) -> None:
        """Record a device's decision (in add order)."""
        self._made[len(self._step)] = decision
        self._append(name, None, decision.group, None, "", None)

    def add_found(self, name: str, fn: PciFunction, group: int, found: Found) -> None:
        """Record what ``find_group`` returned for ``fn``, which then joined ``group``."""
        self._append(name, fn, group, found[1], found[2], found[3])

    def _append(
        self,
        name: str,
        fn: PciFunction | None,
        group: int | None,
        via: PciFunction | None,
        step: str,
        pdev: PciFunction | None,
    ) -> None:
        self._index[name] = len(self._step)
        self._fn.append(fn)
        self._group.append(group)
        self._via.append(via)
        self._step.append(step)
        self._pdev.append(pdev)

    def __getitem__(self, name: str) -> Decision:
        i = self._index[name]
        made = self._made.get(i)
        if made is not None:
            return made
        group, step, rule, via, pdev = self.summary(name)
        made = Decision(name, group, step, rule, via, pdev, owner=self)
        self._made[i] = made
        return made

    def summary(self, name: str) -> tuple[int | None, str, str, str | None, str | None]:
        """``(group, how, rule, via, pdev)`` of ``name``'s decision, without making the value."""
        i = self._index[name]
        made = self._made.get(i)
        if made is not None:
            return made.group, made.how, made.rule, made.via, made.pdev
        step, via, pdev = self._step[i], self._via[i], self._pdev[i]
        assert pdev is not None
        via_name = str(via.address) if via is not None and step != "new" else None
        # the DMA of a device behind a bridge carries the bridge's id (R3.4)
        rule = "R3.4" if step == "alias" and via_name != name else HOW_RULES[step]
        return self._group[i], step, rule, via_name, str(pdev.address)

    def summaries(self) -> Iterator[tuple[str, int | None, str, str, str | None, str | None]]:
        """``(name, group, how, rule, via, pdev)`` of every decision, in add order.

        :meth:`summary` of each, in one pass, without making the values.
        """
        made = self._made
        for name, i in self._index.items():
            d = made.get(i)
            if d is not None:
                yield name, d.group, d.how, d.rule, d.via, d.pdev
                continue
            step, via, pdev = self._step[i], self._via[i], self._pdev[i]
            assert pdev is not None
            via_name = str(via.address) if via is not None and step != "new" else None
            # the DMA of a device behind a bridge carries the bridge's id (R3.4)
            rule = "R3.4" if step == "alias" and via_name != name else HOW_RULES[step]
            yield name, self._group[i], step, rule, via_name, str(pdev.address)

    def trace(self, name: str) -> GroupDecision | None:
        """The traced ``pci_device_group`` call of ``name`` (``None``: not grouped by it)."""
        fn = self._fn[self._index[name]]
        if fn is None:
            return None
        done = self._traces.get(fn.address)
        if done is not None:
            return done
        if self._position is None:  # the add order of the grouped PCI devices
            self._position = {a: i for i, a in enumerate(self._groups)}
        before = _Before(self._groups, self._position, self._position[fn.address])
        done = pci_device_group(fn, before, self.env, trace=True)
        self._traces[fn.address] = done
        return done

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


@attrs.frozen
class Grouping:
    """The IOMMU groups of a topology: computed by a strategy, or read from a kernel.

    Attributes:
        groups: group id -> member device names, sorted (PCI devices by
            address as ``dddd:bb:dd.f``, then other devices by name).
        log: the ``Adding to iommu group`` lines, in the order devices joined
            (for groups read from a kernel log, the log's lines).
        ungrouped: devices that got no group -> why (e.g. no IOMMU
            translates them, R7.9 stream-id clash).
        strategy: the strategy's name (``""`` for groups a kernel made).
        source: for groups a kernel made, the format they were read from
            (``"listing"``, ``"dmesg"``, ``"sysfs"``, ...).
        decisions: per device, how it came to its group, when the grouping
            was asked to record them (``canonical_groups(record=True)``);
            empty otherwise. Not part of equality.
    """

    groups: Mapping[int, tuple[str, ...]]
    log: Sequence[LogLine] = attrs.field(default=(), converter=_log_converter)
    ungrouped: Mapping[str, str] = attrs.field(factory=dict)
    strategy: str = ""
    source: str = ""
    decisions: Mapping[str, Decision] = attrs.field(factory=dict, eq=False, repr=False, hash=False)
    _member_of: dict[str, int] | None = attrs.field(
        init=False, default=None, eq=False, repr=False, hash=False
    )

    def _members(self) -> dict[str, int]:
        index = self._member_of
        if index is None:  # built on first use; names as read are normalised
            index = {full_name(d): g for g, ds in self.groups.items() for d in ds}
            object.__setattr__(self, "_member_of", index)
        return index

    def group_of(self, device: str | PciAddress) -> int | None:
        """The group id of ``device`` (an address or a platform name), or ``None``."""
        index = self._members()
        key = str(device) if isinstance(device, PciAddress) else device
        if key not in index and not isinstance(device, PciAddress):
            try:
                key = str(PciAddress.parse(key))
            except InvalidAddress:
                pass
        return index.get(key)

    def partition(self) -> frozenset[frozenset[str]]:
        """The groups as a set of sets of device names (ids forgotten)."""
        return frozenset(frozenset(ds) for ds in self.groups.values())

    def same_group(self, a: str | PciAddress, b: str | PciAddress) -> bool:
        """Whether ``a`` and ``b`` are in one group (both must have one)."""
        ga, gb = self.group_of(a), self.group_of(b)
        return ga is not None and ga == gb

    def to_json(self) -> dict[str, Any]:
        """The ``iommugroups.groups/1`` document: groups in id order (ids kept too).

        Keys: ``schema``; ``groups`` (lists of member names, PCI addresses as
        ``dddd:bb:dd.f``); ``group_ids`` (the id of each); ``ungrouped``
        (device -> why it has no group); ``strategy``.
        """
        ids = sorted(self.groups)
        return {
            "schema": GROUPS_SCHEMA,
            "groups": [list(self.groups[g]) for g in ids],
            "group_ids": ids,
            "ungrouped": dict(sorted(self.ungrouped.items())),
            "strategy": self.strategy,
        }


class GroupTable:
    """Mutable group state for a strategy or simulator run (R1.1-R1.4).

    Devices join groups and may be removed; a group whose last device goes
    releases its id (R1.2). Every join appends a :class:`LogLine`.
    """

    def __init__(self) -> None:
        self.ida = IdAllocator()
        self.member_of: dict[str, int] = {}
        self.members: dict[int, list[str]] = {}
        self.log: list[LogLine] = []
        self.ungrouped: dict[str, str] = {}
        self._addresses: dict[str, PciAddress] = {}

    def new_group(self) -> int:
        """``iommu_group_alloc``: a fresh id (R1.1)."""
        g = self.ida.alloc()
        self.members[g] = []
        return g

    def add(self, device: str, group: int, prefix: str, address: PciAddress | None = None) -> None:
        """``iommu_group_add_device``: join and log (R1.3, R1.4).

        ``address``, when the device is a PCI function, saves re-parsing
        ``device`` to sort the members.
        """
        if device in self.member_of:
            raise ValueError(f"{device} already has group {self.member_of[device]}")
        if address is not None:
            self._addresses[device] = address
        self.member_of[device] = group
        self.members[group].append(device)
        if self.ungrouped:
            self.ungrouped.pop(device, None)
        self.log.append(LogLine(prefix, device, group))

    def remove(self, device: str, prefix: str, *, log: bool = True) -> None:
        """Leave the group; release an emptied group (R1.2).

        ``log``: whether the kernel logs it ("Removing from iommu group",
        ``iommu_group_remove_device``; before v6.4 also on hot-remove, R1.4).
        """
        g = self.member_of.pop(device)
        self.members[g].remove(device)
        if log:
            self.log.append(LogLine(prefix, device, g, "remove"))
        if not self.members[g]:
            del self.members[g]
            self.ida.free(g)

    def snapshot(self, strategy: str, decisions: Mapping[str, Decision] | None = None) -> Grouping:
        """The immutable :class:`Grouping` of the current state (with ``decisions``)."""
        addresses = self._addresses

        def key(name: str) -> tuple[int, tuple[int, int, int, int], str]:
            a = addresses.get(name)
            return (0, a.sort_key(), "") if a is not None else device_sort_key(name)

        return Grouping(
            groups={g: tuple(sorted(ds, key=key)) for g, ds in sorted(self.members.items()) if ds},
            log=tuple(x for x in self.log if isinstance(x, LogLine)),
            ungrouped=dict(self.ungrouped),
            strategy=strategy,
            decisions=decisions if decisions is not None else {},
        )
