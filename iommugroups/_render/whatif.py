"""``what-if``'s result as text.

Each group change is shown once, with its groups before and after; each
device whose group changed gets one line: its groups, and who left, joined
or was taken out. The text stays linear in the number of devices however
large a group: a list longer than :data:`SHOWN` names is cut short
with their count, and a group change of more than :data:`PER_DEVICE` devices
is summed up in one line instead of one line per device ("0000:00:01.0 and
60,000 more of group 1 before, in 60,001 groups after: 60,001 split, each now
alone"), as
are the groups of one side of a change beyond :data:`GROUPS_SHOWN`
(``--json`` has every device and every member).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .._analysis.partition import GROUP_KINDS, DeviceDiff, DeviceStatus, GroupMatch
from .._analysis.whatif import WhatIfResult, why_after
from .text import write_json_document

__all__ = ["GROUPS_SHOWN", "PER_DEVICE", "SHOWN", "render_whatif", "write_whatif_json"]

#: Lists of names longer than this are summed up (a count) instead of listed.
SHOWN = 8

#: A group change of more devices than this is summed up in the device list.
PER_DEVICE = 16

#: At most this many groups of one side of a group change are listed.
GROUPS_SHOWN = 6


def _names(names: Sequence[str]) -> str:
    if len(names) <= SHOWN:
        return " ".join(names)
    return " ".join(names[: SHOWN - 2]) + f" ... ({len(names):,} devices)"


def _devices(n: int) -> str:
    return f"{n:,} device{'s' if n != 1 else ''}"


def _side(label: str, members: Sequence[tuple[int, Sequence[str]]]) -> list[str]:
    """One side of a group change: its groups, the first few of a long list."""
    out = [f"    {label} {gid:>3}: {_names(ds)}" for gid, ds in members[:GROUPS_SHOWN]]
    rest = members[GROUPS_SHOWN:]
    if rest:
        count = sum(len(ds) for _, ds in rest)
        alone = all(len(ds) == 1 for _, ds in rest)
        out.append(
            f"    {label} ...: {len(rest):,} more groups ({_devices(count)}"
            + (", each alone)" if alone else ")")
        )
    return out


def _group_changes(result: WhatIfResult) -> list[str]:
    out: list[str] = []
    for g in result.groups:
        if g.kind == "unchanged":
            continue
        out.append(f"  {g.kind}:")
        out.extend(_side("before", g.before))
        out.extend(_side("after ", g.after))
    return out


def _device_line(result: WhatIfResult, d: DeviceDiff, width: int) -> str:
    """One device of a small group change: its groups, and who left, joined, was removed."""
    parts: list[str] = []
    if d.was is not None:
        parts.append(f"was {d.was}")
    if d.status is not DeviceStatus.UNCHANGED:
        before = "none" if d.group_before is None else str(d.group_before)
        if d.status is DeviceStatus.REMOVED:
            after = "removed"
        else:
            after = "none" if d.group_after is None else str(d.group_after)
        parts.append(f"group {before} -> {after}")
    moved_on = d.left_count or d.joined_count or d.removed_count
    if d.status is not DeviceStatus.REMOVED and moved_on:
        left, joined, removed = result.companions(d.was or d.device)
        for label, names in (("left", left), ("removed", removed), ("joined", joined)):
            if names:
                parts.append(f"{label}: {_names(names)}")
    return f"  {d.device:<{width}}  {d.status.value:<13}  {'; '.join(parts)}".rstrip()


def _summary_line(g: GroupMatch, devices: list[DeviceDiff], width: int) -> str:
    """One line for the devices of a large group change."""
    tally: dict[str, int] = {}
    for d in devices:
        tally[d.status.value] = tally.get(d.status.value, 0) + 1
    statuses = ", ".join(f"{n:,} {s}" for s, n in tally.items())
    moved = sum(1 for d in devices if d.was is not None)
    ids = " ".join(str(gid) for gid, _ in g.before[:GROUPS_SHOWN])
    more = " ..." if len(g.before) > GROUPS_SHOWN else ""
    where = f"group{'s' if len(g.before) > 1 else ''} {ids}{more}" if g.before else "no group"
    after = len(g.after)
    tail = ", each now alone" if after > 1 and all(len(ds) == 1 for _, ds in g.after) else ""
    return (
        f"  {devices[0].device:<{width}}  and {len(devices) - 1:,} more of {where} before, "
        f"in {after:,} group{'s' if after != 1 else ''} after: {statuses}{tail}"
        + (f" ({moved:,} moved)" if moved else "")
    )


def _device_changes(result: WhatIfResult) -> list[str]:
    """A line per device whose group changed; one per large group change instead."""
    changed = [d for d in result.devices if d.status is not DeviceStatus.UNCHANGED or d.was]
    per_match: dict[int, list[DeviceDiff]] = {}
    for d in changed:
        if d.match is not None:
            per_match.setdefault(d.match, []).append(d)
    width = max((len(d.device) for d in changed), default=0)
    out: list[str] = []
    for d in changed:
        mates = per_match.get(d.match, []) if d.match is not None else []
        if len(mates) <= PER_DEVICE:
            out.append(_device_line(result, d, width))
        elif mates[0] is d:  # who left and joined is in the group change above
            out.append(_summary_line(result.groups[d.match or 0], mates, width))
    return out


def render_whatif(result: WhatIfResult) -> str:
    """The result as plain text for people, ending with a newline."""
    out: list[str] = []
    n = len(result.changes)
    upstream = "all upstream" if result.upstream else "NOT all upstream"
    out.append(f"what-if: {n} change{'s' if n != 1 else ''} ({upstream})")
    for c in result.changes:
        tag = "upstream" if c.upstream else "NOT UPSTREAM"
        out.append(f"  [{tag}] {c.label}")
        out.append(f"      cost: {c.cost}")
    counts = result.counts()
    gcounts = result.group_counts()
    out.append("")
    out.append(
        f"Groups: {len(result.before.groups)} before, {len(result.after.groups)} after; "
        + ", ".join(f"{gcounts[k]} {k}" for k in GROUP_KINDS if gcounts[k])
    )
    changes = _group_changes(result)
    if changes:
        out.append("")
        out.append("Group changes (matched by members, ids are allocation order):")
        out.extend(changes)
    out.append("")
    out.append(
        "Devices: "
        + ", ".join(f"{counts[s.value]} {s.value}" for s in DeviceStatus if counts[s.value])
    )
    out.extend(_device_changes(result))
    reasons = why_after(result)
    if reasons:
        width = max(len(w.device) for w in reasons)
        out.append("")
        out.append("Why, after (the reachable-set proposal's decisions, rules R6.1-R6.13):")
        for w in reasons:
            out.append(f"  {w.device:<{width}}  {w.rule:<5}  {w.text}")
            if w.missing:
                out.append(
                    f"  {'':<{width}}  {'':<5}  rests on facts not known: {', '.join(w.missing)}"
                )
    if result.labels:
        out.append("")
        out.append("Not upstream: the groups after need a kernel patched for")
        out.extend(f"  {label} (its cost is above)" for label, _ in result.labels)
    if result.notes:
        out.append("")
        out.append("Notes:")
        out.extend(f"  - {note}" for note in result.notes)
    return "\n".join(out) + "\n"


def write_whatif_json(items: Iterable[tuple[str, Any]], write: Callable[[str], object]) -> None:
    """Write the document of ``items`` (:meth:`WhatIfResult.json_items`, with keys
    added) as ``json.dumps(dict(items), indent=2)`` writes it, and a newline.

    Entries given as iterators are written one at a time, so that a result of
    100,000 devices is never held as JSON data or text all at once.
    """
    write_json_document(items, write)
