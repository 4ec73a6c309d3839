"""``what-if``'s result as text."""

from __future__ import annotations

from collections.abc import Iterable

from .._analysis.partition import GROUP_KINDS, DeviceStatus
from .._analysis.whatif import WhatIfResult, why_after

__all__ = ["render_whatif"]


def _short(names: Iterable[str]) -> str:
    return " ".join(names)


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
    changed = [g for g in result.groups if g.kind != "unchanged"]
    if changed:
        out.append("")
        out.append("Group changes (matched by members, ids are allocation order):")
        for g in changed:
            out.append(f"  {g.kind}:")
            for gid, ds in g.before:
                out.append(f"    before {gid:>3}: {_short(ds)}")
            for gid, ds in g.after:
                out.append(f"    after  {gid:>3}: {_short(ds)}")
    out.append("")
    out.append(
        "Devices: "
        + ", ".join(f"{counts[s.value]} {s.value}" for s in DeviceStatus if counts[s.value])
    )
    width = max((len(d.device) for d in result.devices), default=0)
    for d in result.devices:
        if d.status is DeviceStatus.UNCHANGED and d.was is None:
            continue
        parts: list[str] = []
        if d.was is not None:
            parts.append(f"was {d.was}")
        if d.left:
            parts.append(f"left: {_short(d.left)}")
        if d.removed:
            parts.append(f"removed: {_short(d.removed)}")
        if d.joined:
            parts.append(f"joined: {_short(d.joined)}")
        out.append(f"  {d.device:<{width}}  {d.status.value:<13}  {'; '.join(parts)}".rstrip())
    reasons = why_after(result)
    if reasons:
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
