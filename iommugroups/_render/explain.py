"""Plain text for ``explain``'s results."""

from __future__ import annotations

from collections.abc import Iterable

from .._analysis.reasons import Explanation, PairExplanation, Reason

__all__ = ["render_explanation", "render_pair"]


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
