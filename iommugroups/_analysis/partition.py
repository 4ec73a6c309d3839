"""Two groupings of one machine compared: per group once, per device in a few numbers.

Group ids are allocation order, so groupings are compared by who is with
whom. :class:`GroupingDiff` (``what-if``'s comparison) describes each group
change once, as a :class:`GroupMatch`: the groups before and the groups after
that share members, every member listed once, by the groupings' own member
tuples. Each device gets a :class:`DeviceDiff`: its group before and after,
its :class:`DeviceStatus`, the match it belongs to, and *how many* former
companions left it, how many joined it and how many were taken out. Who they
are is worked out on demand (:meth:`GroupingDiff.companions`), so the
comparison is linear in the number of devices however large the groups: a PF
whose 60,000 VFs leave its group is one match of 60,001 devices, not 60,001
lists of 60,000 names.

:class:`Partition` is the shared view of a grouping as sets of names
(``check``'s).
"""

from __future__ import annotations

import enum
import heapq
from array import array
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, overload

import attrs

from .._kernel.groups import Grouping, device_sort_key
from .._kernel.model import full_name

__all__ = [
    "GROUP_KINDS",
    "Companions",
    "DeviceDiff",
    "DeviceStatus",
    "GroupMatch",
    "GroupingDiff",
    "Partition",
]


class Partition:
    """A grouping as sets of names: each device's group, shared by its members.

    Args:
        groups: group id -> member names.
        within: keep only these names (default: all).
    """

    __slots__ = ("_of", "_sets")

    def __init__(
        self, groups: Mapping[int, Iterable[str]], within: Container[str] | None = None
    ) -> None:
        self._sets: dict[int, frozenset[str]] = {}
        self._of: dict[str, int] = {}
        for gid, members in groups.items():
            kept = frozenset(m for m in members if within is None or m in within)
            self._sets[gid] = kept
            for m in kept:
                self._of.setdefault(m, gid)

    def group_of(self, name: str) -> int | None:
        """The group of ``name``, if it has one."""
        return self._of.get(name)

    def members(self, gid: int) -> frozenset[str]:
        """The members of group ``gid`` (empty for an unknown id)."""
        return self._sets.get(gid, frozenset())

    def group(self, name: str) -> frozenset[str]:
        """The members of ``name``'s group (``name`` included); empty without a group."""
        gid = self._of.get(name)
        return self._sets[gid] if gid is not None else frozenset()

    def companions(self, name: str) -> frozenset[str]:
        """The other members of ``name``'s group."""
        return self.group(name) - {name}


class DeviceStatus(str, enum.Enum):
    """How one device's group changed."""

    UNCHANGED = "unchanged"
    #: Former companions are no longer with it (moved to other groups, or removed).
    SPLIT = "split"
    #: New companions joined it.
    MERGED = "merged"
    #: Both at once, some companions left and others joined.
    REGROUPED = "regrouped"
    #: The device was taken out.
    REMOVED = "removed"
    #: It had no group and now has one (e.g. moved behind an IOMMU).
    NOW_GROUPED = "now-grouped"
    #: It had a group and now has none.
    NOW_UNGROUPED = "now-ungrouped"


_STATUSES = tuple(DeviceStatus)
_CODE = {s: i for i, s in enumerate(_STATUSES)}


@attrs.frozen
class DeviceDiff:
    """One device's change: its groups and how many companions it lost and gained.

    Attributes:
        device: its name after the changes (before, if removed).
        was: its name before, when a change moved it; else ``None``.
        status: see :class:`DeviceStatus`.
        group_before, group_after: its group ids (``None``: no group).
        match: the index of its group change in the comparison's ``groups``
            (:class:`GroupMatch`); ``None`` when it has a group on neither
            side.
        left_count: how many former companions are now in other groups (or
            in none).
        joined_count: how many companions it did not have before.
        removed_count: how many former companions were taken out.

    Who they are: :meth:`~iommugroups.WhatIfResult.companions`.
    """

    device: str
    was: str | None
    status: DeviceStatus
    group_before: int | None
    group_after: int | None
    match: int | None = None
    left_count: int = 0
    joined_count: int = 0
    removed_count: int = 0

    def to_json(self) -> dict[str, Any]:
        """The device's entry of :meth:`~iommugroups.WhatIfResult.to_json`."""
        return {
            "device": self.device,
            "was": self.was,
            "status": self.status.value,
            "group_before": self.group_before,
            "group_after": self.group_after,
            "match": self.match,
            "left_count": self.left_count,
            "joined_count": self.joined_count,
            "removed_count": self.removed_count,
        }


class Companions(NamedTuple):
    """Who left, joined and was removed from one device's group (names sorted).

    Attributes:
        left: former companions now in other groups (or in none), by their
            names after.
        joined: companions it did not have before, by their names after.
        removed: former companions that were taken out, by their names before.
    """

    left: tuple[str, ...]
    joined: tuple[str, ...]
    removed: tuple[str, ...]


Members = tuple[tuple[int, tuple[str, ...]], ...]


@attrs.frozen
class GroupMatch:
    """Groups before and after that share members (matched by membership, not id).

    Attributes:
        kind: ``"unchanged"`` (same members), ``"shrunk"`` (members taken
            out, nothing else), ``"split"`` (one group became several, or
            lost members to no group), ``"merged"`` (several became one, or
            it gained devices that had no group), ``"regrouped"`` (several
            became several), ``"gone"`` (no member left in any group),
            ``"new"`` (only devices that had no group).
        before: (id, members by names before) of the groups before.
        after: (id, members by names after) of the groups after.
    """

    kind: str
    before: Members
    after: Members

    def to_json(self) -> dict[str, Any]:
        """The entry of :meth:`~iommugroups.WhatIfResult.to_json`."""
        return {
            "kind": self.kind,
            "before": [{"group": g, "devices": list(ds)} for g, ds in self.before],
            "after": [{"group": g, "devices": list(ds)} for g, ds in self.after],
        }


GROUP_KINDS = ("unchanged", "shrunk", "split", "merged", "regrouped", "gone", "new")
_KIND = {k: i for i, k in enumerate(GROUP_KINDS)}


def _sorted(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(names, key=device_sort_key))


def _find(parent: array[int], x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression
        parent[x], x = root, parent[x]
    return root


def _buckets(keys: array[int], count: int) -> tuple[array[int], array[int]]:
    """Indices ``0..len(keys)-1`` bucketed by key (``-1``: none), as (offsets, flat)."""
    off = array("i", bytes(4 * (count + 1)))
    for k in keys:
        if k >= 0:
            off[k + 1] += 1
    for k in range(count):
        off[k + 1] += off[k]
    fill = array("i", off)
    flat = array("i", bytes(4 * off[count]))
    for i, k in enumerate(keys):
        if k >= 0:
            flat[fill[k]] = i
            fill[k] += 1
    return off, flat


class GroupingDiff:
    """Two groupings of one machine compared, in space linear in the number of devices.

    Args:
        before, after: the groupings.
        names: every device before: the PCI functions in address order, then
            the platform devices by name (the order of :attr:`devices`).
        renamed: name before -> name after of every device a change moved.
        removed: names (before) of the devices taken out.

    :attr:`devices` and :attr:`groups` are sequences of :class:`DeviceDiff`
    and :class:`GroupMatch` made when read: the comparison itself keeps a few
    numbers per device and per group, and the groupings' own member tuples.

    >>> from iommugroups import Grouping
    >>> before = Grouping({0: ("0000:00:01.0", "0000:01:00.0", "0000:01:00.1")})
    >>> after = Grouping({0: ("0000:00:01.0",), 1: ("0000:01:00.0",), 2: ("0000:01:00.1",)})
    >>> diff = GroupingDiff(before, after, ["0000:00:01.0", "0000:01:00.0", "0000:01:00.1"])
    >>> [(g.kind, len(g.before), len(g.after)) for g in diff.groups]
    [('split', 1, 3)]
    >>> d = diff.device("01:00.0")
    >>> d.status.value, d.group_before, d.group_after, d.left_count
    ('split', 0, 1, 2)
    >>> diff.companions("01:00.0").left
    ('0000:00:01.0', '0000:01:00.1')
    """

    def __init__(
        self,
        before: Grouping,
        after: Grouping,
        names: Iterable[str],
        renamed: Mapping[str, str] | None = None,
        removed: Iterable[str] = (),
    ) -> None:
        self.before = before
        self.after = after
        fwd: Mapping[str, str] = renamed if renamed is not None else {}
        gone_names = frozenset(removed)
        self._fwd = fwd
        self._back = {new: old for old, new in fwd.items()}
        # devices by name before, in address order (then platform devices by name)
        self._names = names_ = list(names)
        self._pos = pos = {name: i for i, name in enumerate(names_)}
        n = len(names_)
        back = self._back
        gone = bytearray(n)
        for name in gone_names:
            gone[pos[name]] = 1
        # dense group indices: k -> id, and each device's k before and after (-1: none)
        self._bkeys = bkeys = list(before.groups)
        self._akeys = akeys = list(after.groups)
        gb = array("i", [-1]) * n
        for k, members in enumerate(before.groups.values()):
            for m in members:
                gb[pos[m]] = k
        ga = array("i", [-1]) * n
        # groups before that share a member after are one match (union-find)
        parent = array("i", range(len(bkeys)))
        acomp = array("i", [-1]) * len(akeys)  # a group before of each group after
        for k, members in enumerate(after.groups.values()):
            first = -1
            for m in members:
                i = pos[back.get(m, m)]
                ga[i] = k
                b = gb[i]
                if b < 0:
                    continue
                if first < 0:
                    first = _find(parent, b)
                else:
                    r = _find(parent, b)
                    if r != first:
                        parent[r] = first
            acomp[k] = first
        # per device: status and how many companions left, joined, were removed
        status = bytearray(n)
        left = array("i", bytes(4 * n))
        joined = array("i", bytes(4 * n))
        removed_of = array("i", bytes(4 * len(bkeys)))  # per group before
        unmatched = array("i", bytes(4 * len(bkeys)))  # kept members with no group after
        asize = array("i", (len(ms) for ms in after.groups.values()))
        for k, members in enumerate(before.groups.values()):
            idx = [pos[m] for m in members]
            out = sum(gone[i] for i in idx)
            kept = len(idx) - out
            removed_of[k] = out
            together: dict[int, int] = {}  # group after -> kept members in it
            for i in idx:
                if not gone[i]:
                    a = ga[i]
                    together[a] = together.get(a, 0) + 1
            unmatched[k] = together.get(-1, 0)
            for i in idx:
                a = ga[i]
                if gone[i]:
                    s = DeviceStatus.REMOVED
                elif a < 0:
                    s = DeviceStatus.NOW_UNGROUPED
                    left[i] = kept - 1
                else:
                    c = together[a]
                    left[i], joined[i] = kept - c, asize[a] - c
                    if (left[i] or out) and joined[i]:
                        s = DeviceStatus.REGROUPED
                    elif left[i] or out:
                        s = DeviceStatus.SPLIT
                    elif joined[i]:
                        s = DeviceStatus.MERGED
                    else:
                        s = DeviceStatus.UNCHANGED
                status[i] = _CODE[s]
        for i in range(n):
            if gb[i] < 0:
                if gone[i]:
                    status[i] = _CODE[DeviceStatus.REMOVED]
                elif ga[i] >= 0:
                    status[i] = _CODE[DeviceStatus.NOW_GROUPED]
                    joined[i] = asize[ga[i]] - 1
        self._gb, self._ga, self._status = gb, ga, status
        self._left, self._joined, self._removed_of = left, joined, removed_of
        self._gone = gone
        self._order = self._device_order()
        self._group_matches(parent, acomp, asize, unmatched)

    # ------------------------------------------------------------- construction
    def _after_name(self, i: int) -> str:
        name = self._names[i]
        return name if self._gone[i] else self._fwd.get(name, name)

    def _device_order(self) -> array[int]:
        """Devices in address order of their names after (the removed by their names before).

        Devices that did not move are in order already; the moved ones are
        sorted and merged in.
        """
        n = len(self._names)
        if not self._fwd:
            return array("i", range(n))
        pos = self._pos
        moved = {pos[old] for old in self._fwd}
        still = (i for i in range(n) if i not in moved)  # a moved device is not removed
        ahead = sorted(moved, key=self._after_key)
        return array("i", heapq.merge(ahead, still, key=self._after_key))

    def _after_key(self, i: int) -> tuple[int, tuple[int, int, int, int], str]:
        return device_sort_key(self._after_name(i))

    def _group_matches(
        self, parent: array[int], acomp: array[int], asize: array[int], unmatched: array[int]
    ) -> None:
        """Groups before and after, matched: the components of "shares a member"."""
        nb, na = len(self._bkeys), len(self._akeys)
        # a component: its root group before, or (a group after of new devices only) nb + k
        bcomp = array("i", (_find(parent, k) for k in range(nb)))
        acomp = array("i", (_find(parent, b) if b >= 0 else nb + k for k, b in enumerate(acomp)))
        # the component's place: the first member of its group after with the lowest id,
        # else (gone) of its group before with the lowest id, in device order
        rank = array("i", bytes(4 * len(self._order)))
        for r, i in enumerate(self._order):
            rank[i] = r
        pos, back = self._pos, self._back
        akeys, bkeys = self._akeys, self._bkeys
        first_a = array("i", [-1]) * (nb + na)  # component -> its group after, lowest id
        for k, c in enumerate(acomp):
            j = first_a[c]
            if j < 0 or akeys[k] < akeys[j]:
                first_a[c] = k
        first_b = array("i", [-1]) * nb  # component -> its group before, lowest id
        for k, c in enumerate(bcomp):
            j = first_b[c]
            if j < 0 or bkeys[k] < bkeys[j]:
                first_b[c] = k
        groups_after = list(self.after.groups.values())
        groups_before = list(self.before.groups.values())
        place = array("q", [-1]) * (nb + na)
        n = len(rank)
        for c, k in enumerate(first_a):
            if k >= 0:
                m = groups_after[k][0]
                place[c] = rank[pos[back.get(m, m)]]
        for c, k in enumerate(first_b):
            if k >= 0 and place[c] < 0:
                place[c] = n + rank[pos[groups_before[k][0]]]
        del rank, first_a, first_b
        comps = sorted((c for c, p in enumerate(place) if p >= 0), key=place.__getitem__)
        number = array("i", [-1]) * (nb + na)
        for x, c in enumerate(comps):
            number[c] = x
        del place
        bmatch = array("i", (number[c] for c in bcomp))
        amatch = array("i", (number[c] for c in acomp))
        del number
        self._boff, self._bflat = _buckets(bmatch, len(comps))
        self._aoff, self._aflat = _buckets(amatch, len(comps))
        # each bucket in id order
        for off, flat, keys in (
            (self._boff, self._bflat, self._bkeys),
            (self._aoff, self._aflat, self._akeys),
        ):
            for x in range(len(comps)):
                lo, hi = off[x], off[x + 1]
                if hi - lo > 1:
                    flat[lo:hi] = array("i", sorted(flat[lo:hi], key=keys.__getitem__))
        kinds = bytearray(len(comps))
        for x in range(len(comps)):
            bs = self._boff[x + 1] - self._boff[x]
            as_ = self._aoff[x + 1] - self._aoff[x]
            if not as_:
                kind = "gone"
            elif not bs:
                kind = "new"
            elif bs == 1 and as_ == 1:
                kb, ka = self._bflat[self._boff[x]], self._aflat[self._aoff[x]]
                kept = len(groups_before[kb]) - self._removed_of[kb]
                shared = kept - unmatched[kb]  # every other kept member is in ka
                if shared == kept == asize[ka]:
                    kind = "shrunk" if self._removed_of[kb] else "unchanged"
                elif shared == kept:
                    kind = "merged"
                elif shared == asize[ka]:
                    kind = "split"
                else:
                    kind = "regrouped"
            elif bs == 1:
                kind = "split"
            elif as_ == 1:
                kind = "merged"
            else:
                kind = "regrouped"
            kinds[x] = _KIND[kind]
        self._kinds = kinds
        # each device's match: its group before's, else its group after's
        match = array("i", [-1]) * len(self._names)
        for i, (b, a) in enumerate(zip(self._gb, self._ga, strict=True)):
            if b >= 0:
                match[i] = bmatch[b]
            elif a >= 0:
                match[i] = amatch[a]
        self._match = match

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self._order)

    @property
    def devices(self) -> Sequence[DeviceDiff]:
        """Per device (every device before, by its name after), in address order."""
        return _Devices(self)

    @property
    def groups(self) -> Sequence[GroupMatch]:
        """The groups before and after matched by membership, each group once.

        Changed groups are in the order of their first member after, then
        the groups that are gone.
        """
        return _Matches(self)

    def _device(self, i: int) -> DeviceDiff:
        b, a, m = self._gb[i], self._ga[i], self._match[i]
        name = self._names[i]
        after = self._after_name(i)
        return DeviceDiff(
            after,
            name if after != name else None,
            _STATUSES[self._status[i]],
            self._bkeys[b] if b >= 0 else None,
            self._akeys[a] if a >= 0 else None,
            m if m >= 0 else None,
            self._left[i],
            self._joined[i],
            self._removed_of[b] if b >= 0 and not self._gone[i] else 0,
        )

    def _match_at(self, x: int) -> GroupMatch:
        bkeys, akeys = self._bkeys, self._akeys
        before, after = self.before.groups, self.after.groups
        bs = self._bflat[self._boff[x] : self._boff[x + 1]]
        as_ = self._aflat[self._aoff[x] : self._aoff[x + 1]]
        return GroupMatch(
            GROUP_KINDS[self._kinds[x]],
            tuple((bkeys[k], before[bkeys[k]]) for k in bs),
            tuple((akeys[k], after[akeys[k]]) for k in as_),
        )

    def _index(self, name: str) -> int:
        """The device's index by its name after (or before, for one that moved).

        Raises:
            KeyError: no such device.
        """
        key = full_name(name)
        old = self._back.get(key)
        if old is not None:  # moved here (a removed device may have had the name)
            return self._pos[old]
        i = self._pos.get(key)
        if i is not None:
            return i  # did not move, or was removed, or moved away: known by its old name
        raise KeyError(name)

    def device(self, name: str) -> DeviceDiff:
        """The entry of one device, by its name after (or before) the changes.

        Raises:
            KeyError: no such device.
        """
        return self._device(self._index(name))

    def counts(self) -> dict[str, int]:
        """Device status -> number of devices."""
        tally = [0] * len(_STATUSES)
        for code in self._status:
            tally[code] += 1
        return {s.value: tally[i] for i, s in enumerate(_STATUSES)}

    def group_counts(self) -> dict[str, int]:
        """Group match kind -> number of matches."""
        tally = [0] * len(GROUP_KINDS)
        for code in self._kinds:
            tally[code] += 1
        return dict(zip(GROUP_KINDS, tally, strict=True))

    def companions(self, name: str) -> Companions:
        """Who left the device's group, who joined it and who was taken out.

        Time linear in the sizes of its groups before and after: for one
        device, not for every device of a large group.

        Raises:
            KeyError: no such device.
        """
        i = self._index(name)
        if self._gone[i]:
            return Companions((), (), ())
        b, a = self._gb[i], self._ga[i]
        pos, back, gone = self._pos, self._back, self._gone
        before = self.before.groups[self._bkeys[b]] if b >= 0 else ()
        after = self.after.groups[self._akeys[a]] if a >= 0 else ()
        left: list[str] = []
        removed: list[str] = []
        for m in before:
            j = pos[m]
            if gone[j]:
                removed.append(m)
            elif j != i and (a < 0 or self._ga[j] != a):
                left.append(self._after_name(j))
        joined = [
            m
            for m in after
            if (j := pos[back.get(m, m)]) != i and (b < 0 or self._gb[j] != b or gone[j])
        ]
        return Companions(_sorted(left), _sorted(joined), _sorted(removed))


class _Devices(Sequence[DeviceDiff]):
    """:attr:`GroupingDiff.devices`: entries made when read."""

    __slots__ = ("_diff",)

    def __init__(self, diff: GroupingDiff) -> None:
        self._diff = diff

    def __len__(self) -> int:
        return len(self._diff._order)

    @overload
    def __getitem__(self, index: int) -> DeviceDiff: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[DeviceDiff, ...]: ...
    def __getitem__(self, index: int | slice) -> DeviceDiff | tuple[DeviceDiff, ...]:
        order = self._diff._order
        if isinstance(index, slice):
            return tuple(self._diff._device(i) for i in order[index])
        return self._diff._device(order[index])

    def __iter__(self) -> Iterator[DeviceDiff]:
        device = self._diff._device
        for i in self._diff._order:
            yield device(i)


class _Matches(Sequence[GroupMatch]):
    """:attr:`GroupingDiff.groups`: matches made when read."""

    __slots__ = ("_diff",)

    def __init__(self, diff: GroupingDiff) -> None:
        self._diff = diff

    def __len__(self) -> int:
        return len(self._diff._kinds)

    @overload
    def __getitem__(self, index: int) -> GroupMatch: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[GroupMatch, ...]: ...
    def __getitem__(self, index: int | slice) -> GroupMatch | tuple[GroupMatch, ...]:
        if isinstance(index, slice):
            return tuple(self._diff._match_at(x) for x in range(len(self))[index])
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._diff._match_at(index)

    def __iter__(self) -> Iterator[GroupMatch]:
        for x in range(len(self)):
            yield self._diff._match_at(x)
