"""Two groupings of one machine compared: per device and per group, by membership.

Group ids are allocation order, so groupings are compared by who is with
whom: a device's *companions* before and after, and the groups before and
after that share members. Used by ``what-if``; :class:`Partition` is the
shared view of a grouping as sets of names (also ``check``'s).
"""

from __future__ import annotations

import enum
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._kernel.groups import Grouping, device_sort_key

__all__ = ["GROUP_KINDS", "DeviceDiff", "DeviceStatus", "GroupMatch", "Partition"]


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


@attrs.frozen
class DeviceDiff:
    """One device's change.

    Attributes:
        device: its name after the changes (before, if removed).
        was: its name before, when a change moved it; else ``None``.
        status: see :class:`DeviceStatus`.
        group_before, group_after: its group ids (``None``: no group).
        left: former companions now in other groups (or without one), by
            their names after.
        joined: companions it did not have before, by their names after.
        removed: former companions that were taken out, by their names before.
    """

    device: str
    was: str | None
    status: DeviceStatus
    group_before: int | None
    group_after: int | None
    left: tuple[str, ...] = ()
    joined: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The device's entry of :meth:`WhatIfResult.to_json`."""
        return {
            "device": self.device,
            "was": self.was,
            "status": self.status.value,
            "group_before": self.group_before,
            "group_after": self.group_after,
            "left": list(self.left),
            "joined": list(self.joined),
            "removed": list(self.removed),
        }


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
        """The entry of :meth:`WhatIfResult.to_json`."""
        return {
            "kind": self.kind,
            "before": [{"group": g, "devices": list(ds)} for g, ds in self.before],
            "after": [{"group": g, "devices": list(ds)} for g, ds in self.after],
        }


GROUP_KINDS = ("unchanged", "shrunk", "split", "merged", "regrouped", "gone", "new")


def _sorted(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(names, key=device_sort_key))


def _device_diffs(
    before: Grouping,
    after: Grouping,
    names: Sequence[str],
    fwd: Mapping[str, str],
    removed: frozenset[str],
) -> tuple[DeviceDiff, ...]:
    """Each device's change, worked out once per (group before, group after) pair.

    For a device in group ``gb`` before and ``ga`` after, the companions that
    left, joined and were removed depend only on the two groups (the device
    itself is in the kept members of ``gb`` and in ``ga``, so it drops out of
    both differences): linear in the number of devices, however large the
    groups.
    """
    pb, pa = Partition(before.groups), Partition(after.groups)
    kept_of: dict[int, tuple[str, ...]] = {}  # a group's members still there, sorted
    sorted_of: dict[int, tuple[str, ...]] = {}  # a group after, sorted
    pairs: dict[tuple[int, int], tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {}

    def kept(gb: int) -> tuple[str, ...]:
        found = kept_of.get(gb)
        if found is None:
            members = pb.members(gb)
            found = _sorted(fwd.get(x, x) for x in members if x not in removed)
            kept_of[gb] = found
        return found

    def after_sorted(ga: int) -> tuple[str, ...]:
        found = sorted_of.get(ga)
        if found is None:
            found = sorted_of[ga] = _sorted(pa.members(ga))
        return found

    out: list[DeviceDiff] = []
    for b in names:
        gb = pb.group_of(b)
        if b in removed:
            out.append(DeviceDiff(b, None, DeviceStatus.REMOVED, gb, None))
            continue
        a = fwd.get(b, b)
        was = b if a != b else None
        ga = pa.group_of(a)
        if gb is not None and ga is not None:
            diff = pairs.get((gb, ga))
            if diff is None:  # filtering sorted members keeps them sorted
                k, new = kept(gb), pa.members(ga)
                k_set = frozenset(k)
                gone = _sorted(x for x in pb.members(gb) if x in removed)
                diff = (
                    tuple(x for x in k if x not in new),
                    tuple(x for x in after_sorted(ga) if x not in k_set),
                    gone,
                )
                pairs[(gb, ga)] = diff
            left, joined, gone = diff
        else:  # no group on one side: the other side's companions
            old = pb.companions(b)
            gone = _sorted(x for x in old if x in removed)
            left = _sorted({fwd.get(x, x) for x in old if x not in removed})
            joined = _sorted(pa.companions(a))
        if gb is None and ga is None:
            status = DeviceStatus.UNCHANGED
        elif gb is None:
            status = DeviceStatus.NOW_GROUPED
        elif ga is None:
            status = DeviceStatus.NOW_UNGROUPED
        elif (left or gone) and joined:
            status = DeviceStatus.REGROUPED
        elif left or gone:
            status = DeviceStatus.SPLIT
        elif joined:
            status = DeviceStatus.MERGED
        else:
            status = DeviceStatus.UNCHANGED
        out.append(DeviceDiff(a, was, status, gb, ga, left, joined, gone))
    out.sort(key=lambda d: device_sort_key(d.device))
    return tuple(out)


def _group_matches(
    before: Grouping, after: Grouping, fwd: Mapping[str, str], removed: frozenset[str]
) -> tuple[GroupMatch, ...]:
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(x: tuple[str, int]) -> tuple[str, int]:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for gid in before.groups:
        find(("b", gid))
    for gid in after.groups:
        find(("a", gid))
    pa = Partition(after.groups)
    for gid, members in before.groups.items():
        for m in members:
            if m in removed:
                continue
            ga = pa.group_of(fwd.get(m, m))
            if ga is not None:
                parent[find(("b", gid))] = find(("a", ga))
    comps: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for node in list(parent):
        comps.setdefault(find(node), []).append(node)
    out: list[GroupMatch] = []
    for nodes in comps.values():
        bs = sorted(g for side, g in nodes if side == "b")
        as_ = sorted(g for side, g in nodes if side == "a")
        b_members = [m for g in bs for m in before.groups[g]]
        had_removed = any(m in removed for m in b_members)
        kept = {fwd.get(m, m) for m in b_members if m not in removed}
        a_members = {m for g in as_ for m in after.groups[g]}
        if not as_:
            kind = "gone"
        elif not bs:
            kind = "new"
        elif len(bs) == 1 and len(as_) == 1:
            if kept == a_members:
                kind = "shrunk" if had_removed else "unchanged"
            elif kept < a_members:
                kind = "merged"
            elif kept > a_members:
                kind = "split"
            else:
                kind = "regrouped"
        elif len(bs) == 1:
            kind = "split"
        elif len(as_) == 1:
            kind = "merged"
        else:
            kind = "regrouped"
        out.append(
            GroupMatch(
                kind,
                tuple((g, before.groups[g]) for g in bs),
                tuple((g, after.groups[g]) for g in as_),
            )
        )

    def key(m: GroupMatch) -> tuple[int, tuple[int, tuple[int, int, int, int], str]]:
        first = m.after[0][1][0] if m.after else fwd.get(m.before[0][1][0], m.before[0][1][0])
        return (0 if m.after else 1, device_sort_key(first))

    out.sort(key=key)
    return tuple(out)
