"""Plain text for ``explain``'s results."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._analysis.reasons import Explanation, PairExplanation, Reason
from .._kernel.groups import Grouping
from .._kernel.model import full_name

__all__ = ["kernel_groups_of", "render_explanation", "render_kernel_groups", "render_pair"]


def _lines(reasons: Iterable[Reason], bullet: str) -> list[str]:
    return [f"  {bullet if bullet != '#' else f'{i}.'} {r.text}" for i, r in enumerate(reasons, 1)]


def render_explanation(x: Explanation) -> str:
    """Plain text for an :class:`Explanation`.

    >>> from iommugroups import examples, explain, explain_pair
    >>> print(render_explanation(explain(examples.desktop(), "00:1f.2")).splitlines()[0])
    0000:00:1f.2 is in IOMMU group 6 with 0000:00:1f.0, 0000:00:1f.3
    """
    if x.group is None:
        head = f"{x.device} is in no IOMMU group"
    else:
        others = [m for m in x.members if m != x.device]
        head = f"{x.device} is in IOMMU group {x.group}"
        head += f" with {', '.join(others)}" if others else ", alone"
    out = [head, "Why:", *_lines(x.chain, "#")]
    if x.acs:
        out += ["ACS on its path:", *_lines(x.acs, "-")]
    if x.unknown:
        out += ["Unknown:", *_lines(x.unknown, "-")]
    return "\n".join(out) + "\n"


def render_pair(x: PairExplanation) -> str:
    """Plain text for a :class:`PairExplanation`.

    >>> from iommugroups import examples, explain, explain_pair
    >>> print(render_pair(explain_pair(examples.desktop(), "01:00.0", "01:00.1")).splitlines()[0])
    0000:01:00.0 and 0000:01:00.1 are in the same IOMMU group (7)
    """
    if x.same_group:
        out = [f"{x.a} and {x.b} are in the same IOMMU group ({x.group_a})"]
        if x.cause is not None:
            out += ["Cause:", f"  {x.cause.text}"]
        out += ["Links:", *_lines(x.chain, "#")]
    else:
        ga = "no group" if x.group_a is None else f"group {x.group_a}"
        gb = "no group" if x.group_b is None else f"group {x.group_b}"
        out = [f"{x.a} ({ga}) and {x.b} ({gb}) are in different IOMMU groups"]
        out += ["What separates them:", *_lines(x.separation, "-")]
    out += ["DMA between them:", f"  - {x.a_to_b.text}", f"  - {x.b_to_a.text}"]
    if x.acs:
        out += ["ACS on their paths:", *_lines(x.acs, "-")]
    if x.unknown:
        out += ["Unknown:", *_lines(x.unknown, "-")]
    return "\n".join(out) + "\n"


def kernel_groups_of(observed: Grouping, devices: Sequence[str]) -> list[dict[str, Any]]:
    """The kernel's group of each device (full names), from the source's groups.

    One ``{"device", "group", "members"}`` per device; ``group`` is ``None``
    (and ``members`` empty) when the kernel's groups do not list it.
    """
    of: dict[str, int] = {}
    for group_id in sorted(observed.groups):
        for m in observed.groups[group_id]:
            of.setdefault(full_name(m), group_id)
    out: list[dict[str, Any]] = []
    for name in devices:
        gid = of.get(name)
        members = [full_name(m) for m in observed.groups[gid]] if gid is not None else []
        out.append({"device": name, "group": gid, "members": members})
    return out


def render_kernel_groups(groups: Sequence[dict[str, Any]]) -> str:
    """The lines that say where the kernel put each device, before the rules' explanation.

    >>> print(render_kernel_groups([{"device": "0000:01:00.0", "group": 7,
    ...                              "members": ["0000:01:00.0"]}]), end="")
    The kernel put 0000:01:00.0 in IOMMU group 7, alone (the source's groups).
    The rules, and why:
    """
    out: list[str] = []
    for g in groups:
        if g["group"] is None:
            out.append(f"The kernel's groups do not list {g['device']}.")
            continue
        others = [m for m in g["members"] if m != g["device"]]
        with_ = f"with {', '.join(others)}" if others else "alone"
        out.append(
            f"The kernel put {g['device']} in IOMMU group {g['group']}, {with_} (the "
            "source's groups)."
        )
    out.append("The rules, and why:")
    return "\n".join(out) + "\n"
