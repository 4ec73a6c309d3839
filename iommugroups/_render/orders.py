"""``orders``' answer as text: the verdict, the witness's two orders side by side, their groups.

The JSON form is :meth:`~iommugroups.OrderDependence.to_json` (schema
``iommugroups.orders/1``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from .._analysis.orders import OrderDependence, OrderWitness
from .._analysis.orders_space import OrderEvent, OrderOutcome, OrderSpace
from .._kernel.groups import device_sort_key

__all__ = ["describe_space", "render_orders"]

#: Steps of the same beginning or end shown around the differing ones.
CONTEXT = 2
#: Members of one group shown before ``(+N more)``.
MEMBERS = 4
WIDTH = 99

_HEADLINES = {
    "independent": "INDEPENDENT: every order ends in the same groups",
    "dependent": "DEPENDENT: two orders end in different groups",
    "unknown": "UNKNOWN: not decided",
}


def describe_space(space: OrderSpace, devices: int) -> str:
    """The orders compared, in words."""
    adds = (
        "devices added in any order"
        if space.adds == "any"
        else "devices added as PCI enumeration adds them (a bridge before the devices below "
        "it, VFs when their PF's driver enables them)"
    )
    iommu = (
        "the IOMMU driver built in (a probe before its IOMMU registers is retried later)"
        if space.iommu_builtin
        else "the IOMMU driver a module, loaded at any point"
    )
    hot = "hot-remove and rescan of any devices" if space.hotplug else "no hot-plug"
    return f"{adds}; any driver probe order; {iommu}; {hot}; {devices} devices"


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent)


def render_orders(answer: OrderDependence, *, title: str = "") -> str:
    """The text of ``iommugroups orders``."""
    out: list[str] = []
    head = f"{title} under {answer.strategy}" if title else answer.strategy
    out.append(f"{head}: {_HEADLINES[answer.verdict]}")
    out += _wrap(answer.reason)
    if answer.rules:
        out.append(f"  rules: {', '.join(answer.rules)}")
    out.append("")
    out.append("orders compared:")
    out += _wrap(describe_space(answer.space, answer.devices))
    w = answer.witness
    if w is not None:
        out.append("")
        out += _witness_lines(w)
        out.append("")
        out += _groups_lines(w.first_outcome, w.second_outcome)
    for note in answer.notes:
        out.append(f"note: {note}")
    return "\n".join(out) + "\n"


def _witness_lines(w: OrderWitness) -> list[str]:
    a, b = list(w.first), list(w.second)
    start, n = w.differ_at, w.differences
    kind = "device-add orders" if w.kind == "add-order" else "orders"
    lines = [
        f"witness: two {kind} differing in {n} place{'s' if n != 1 else ''}, "
        f"first at step {start + 1}"
    ]
    stop_a = start + max(n, 1)
    stop_b = len(b) - (len(a) - stop_a)
    width = max((len(str(e)) for e in a + b), default=10) + 2
    width = max(width, len("order A") + 2)
    lines.append(f"  {'step':>5}  {'order A':<{width}}order B")
    lo = max(0, start - CONTEXT)
    if lo > 0:
        lines.append(
            f"  {'...':>5}  ({lo} step{'s' if lo != 1 else ''} the same: {_gist(a[:lo])})"
        )
    for i in range(lo, max(stop_a, stop_b) + CONTEXT):
        ea = a[i] if i < len(a) and i < stop_a + CONTEXT else None
        eb = b[i] if i < len(b) and i < stop_b + CONTEXT else None
        if ea is None and eb is None:
            break
        left = str(ea) if ea is not None else ""
        right = str(eb) if eb is not None else ""
        if ea == eb or i < start or i >= max(stop_a, stop_b):
            right = "(the same)"
        mark = "   <- first difference" if i == start else ""
        lines.append(f"  {i + 1:>5}  {left:<{width}}{right}{mark}".rstrip())
    shown = max(stop_a, stop_b) + CONTEXT
    rest = len(a) - min(len(a), stop_a + CONTEXT)
    if rest > 0 and shown < max(len(a), len(b)):
        tail = a[len(a) - rest :]
        lines.append(
            f"  {'...':>5}  ({rest} step{'s' if rest != 1 else ''} the same: {_gist(tail)})"
        )
    lines += _wrap(w.why)
    return lines


def _gist(events: Sequence[OrderEvent]) -> str:
    """``iommu x5, probe x12`` for a run of steps."""
    counts: dict[str, int] = {}
    for e in events:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in counts.items())


def _group_text(members: frozenset[str]) -> str:
    names = sorted(members, key=device_sort_key)
    shown = " ".join(names[:MEMBERS])
    return shown + (f" (+{len(names) - MEMBERS} more)" if len(names) > MEMBERS else "")


def _groups_lines(first: OrderOutcome, second: OrderOutcome) -> list[str]:
    only_a = sorted((_group_text(g) for g in first.groups - second.groups), key=str)
    only_b = sorted((_group_text(g) for g in second.groups - first.groups), key=str)
    same = len(first.groups & second.groups)
    lines = ["groups that differ:"]
    width = max((len(t) for t in only_a), default=0)
    width = max(width, len("order A")) + 4
    lines.append(f"  {'order A':<{width}}order B")
    for i in range(max(len(only_a), len(only_b))):
        left = only_a[i] if i < len(only_a) else ""
        right = only_b[i] if i < len(only_b) else ""
        lines.append(f"  {left:<{width}}{right}".rstrip())
    for label, o in (("A", first), ("B", second)):
        extra = sorted(o.ungrouped - (second if label == "A" else first).ungrouped)
        if extra:
            lines.append(f"  without a group only in order {label}: {' '.join(extra)}")
    lines.append(f"  ({same} other group{'s' if same != 1 else ''} the same in both)")
    return lines
