"""``check``'s report as text."""

from __future__ import annotations

from .._analysis.check import CheckReport, DeviceCheck, Verdict
from .._kernel.model import full_name
from .._kernel.reading import Unknown

__all__ = ["render_check", "verdict_marks"]


#: What a grouping fact not known is, in words.
_MISSING_WORDS = {
    "acs": "ACS capability bits not shown",
    "pcie": "PCIe capability (port type) not shown",
    "config": "configuration space not shown",
    "bridge": "the bridge above not in the input",
    "multifunction": "multifunction bit contradicted by the functions shown",
}


def render_check(report: CheckReport, *, verbose: bool = False, names: str = "") -> str:
    """The report as plain text for people (no colour), ending with a newline.

    Quiet by default: what the input does not show is summed up per fact
    (how many devices, how many verdicts depend on them), and the details
    that no verdict rests on are counted; ``verbose`` lists every one.
    ``names`` says which PCI ID database read the names.
    """
    counts = report.counts()
    out: list[str] = []
    verdict = report.verdict
    headline = {
        Verdict.SPLIT: "SPLIT: devices the rules put in one group are in different groups "
        "(an isolation hole)",
        Verdict.MERGED: "MERGED: some groups join devices the rules isolate "
        "(a quirk or kernel behaviour the model does not know)",
        Verdict.UNKNOWN: "UNKNOWN: some verdicts depend on missing data",
        Verdict.OK: "OK: the observed groups are the ones the rules give",
    }[verdict]
    out.append(f"check: {headline}")
    out.append(
        f"  {len(report.devices)} devices: "
        + ", ".join(f"{counts[v.value]} {v.value}" for v in Verdict)
        + f"; {len(report.canonical.groups)} canonical groups, "
        f"{len(report.observed.groups)} observed groups"
        + (f" (from {report.observed.source})" if report.observed.source else "")
    )
    by_name = {d.device: d for d in report.devices}
    if report.splits:
        out.append("")
        out.append("Splits (the rules put these together, the kernel separated them):")
        for s in report.splits:
            out.append(f"  canonical group {s.canonical_group}: {' '.join(s.devices)}")
            for og, ds in s.parts:
                marks = [f"{x} (?)" if x in s.uncertain else x for x in ds]
                out.append(f"    observed group {og}: {' '.join(marks)}")
            if s.not_observed:
                out.append(f"    in no observed group: {' '.join(s.not_observed)}")
            for member in s.devices:
                out.extend(_why(by_name[member], "    "))
    if report.merges:
        out.append("")
        out.append("Merges (the kernel put these together, the rules isolate them):")
        for m in report.merges:
            out.append(f"  observed group {m.observed_group}: {' '.join(m.devices)}")
            for cg, ds in m.parts:
                out.append(f"    canonical group {cg}: {' '.join(ds)}")
            for member in m.devices:
                if member in by_name:
                    out.extend(_why(by_name[member], "    "))
    unknown = report.unknown
    if unknown:
        out.append("")
        out.append("Unknown (the verdict depends on missing data):")
        for d in unknown:
            out.append(f"  {d.device}: {'; '.join(d.reasons)}")
    if report.not_listed:
        out.append("")
        out.append("Grouped by the kernel, not in the input (no verdict):")
        for n in report.not_listed:
            out.append(f"  {n.device} (observed group {n.observed_group}): {n.why}")
    out.append("")
    out.append("Per device:")
    width = max((len(d.device) for d in report.devices), default=0)
    for d in report.devices:
        cgs = "-" if d.canonical_group is None else str(d.canonical_group)
        ogs = "-" if d.observed_group is None else str(d.observed_group)
        out.append(
            f"  {d.device:<{width}}  {d.verdict.value:<7}  canonical {cgs:>3}  observed {ogs:>3}"
        )
    if report.replay is not None:
        out.append("")
        by = report.reproduced_by
        shown = ", ".join(by) if by else "no strategy"
        out.append(
            f"Reproduced by: {shown} (the log's probe order and drivers replayed "
            "under each strategy)"
        )
        log = report.observed.log
        buses = {"pci", "platform", "amba", "fsl-mc"}
        if log and all(x.prefix in buses for x in log if x.action == "add"):
            out.append(
                "  every line of the log names a bus, not a driver: the kernel grouped "
                "each device when it was added, independently of drivers (x86, or arm64 "
                "since v6.15, R10.1), which probe-time strategies cannot reproduce"
            )
        for r in report.reproduction:
            if not r.reproduced:
                out.append(f"  not {r.strategy}: {r.detail}")
        for dev, why in sorted(report.replay.left_out.items()):
            out.append(f"  left out: {dev}: {why}")
    notes = list(report.notes)
    unknown_on = [set(d.depends_on) for d in report.devices if d.verdict is Verdict.UNKNOWN]
    for fact, devices in report.missing.items():
        missing = set(devices)
        depends = sum(1 for on in unknown_on if on & missing)
        words = _MISSING_WORDS.get(fact, f"{fact} not known")
        shown = ", ".join(devices[:4]) + (
            f" and {len(devices) - 4} more" if len(devices) > 4 else ""
        )
        effect = (
            f"{depends} verdict{'s' if depends != 1 else ''} depend{'s' if depends == 1 else ''} "
            "on it (unknown)"
            if depends
            else "no verdict depends on it"
        )
        notes.append(
            f"{words}: {len(devices)} device{'s' if len(devices) > 1 else ''} ({shown}); {effect}"
        )
    if verbose:
        notes.extend(_detail(u) for u in report.details)
    elif report.details:
        count = len(report.details)
        notes.append(
            f"{count} detail{'s' if count > 1 else ''} about single devices that no verdict "
            "rests on (-v)"
        )
    if names and (verbose or notes):
        notes.append(f"names and ids: {names}")
    if notes:
        out.append("")
        out.append("Notes:")
        out.extend(f"  {n}" for n in notes)
    return "\n".join(out) + "\n"


def _detail(u: Unknown) -> str:
    who = f"{u.device}: " if u.device else ""
    if u.fact in ("assumed", "paste", "name"):
        return f"{who}{u.why}"
    return f"{who}{u.fact}: {u.why}"


def _why(d: DeviceCheck, indent: str) -> list[str]:
    lines = [f"{indent}{d.device}: {d.verdict.value}: {'; '.join(d.reasons)}"]
    lines.extend(f"{indent}  {s.rule} {s.text}" for s in d.rules)
    if d.rules_if_isolating:
        lines.append(f"{indent}  if the unknown facts are isolating:")
        lines.extend(f"{indent}    {s.rule} {s.text}" for s in d.rules_if_isolating)
    return lines


def _few(names: tuple[str, ...], limit: int = 3) -> str:
    """Up to ``limit`` names, shortened as the listing shows them (domain 0 without it)."""
    shown = [n[5:] if n.startswith("0000:") else n for n in names[:limit]]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(shown) + more


_NONE: frozenset[str] = frozenset()


def _members_of(group_of: dict[str, int]) -> dict[int, frozenset[str]]:
    members: dict[int, list[str]] = {}
    for name, g in group_of.items():
        members.setdefault(g, []).append(name)
    return {g: frozenset(ms) for g, ms in members.items()}


def _others(members: tuple[str, ...], me: str, limit: int = 3) -> str:
    """:func:`_few` of ``members`` (sorted) without ``me``, reading at most ``limit + 1``."""
    head = tuple(m for m in members[: limit + 1] if m != me)[:limit]
    rest = len(members) - (1 if me in members else 0) - len(head)
    return _few(head, limit) + (f" and {rest} more" if rest > 0 else "")


def verdict_marks(report: CheckReport) -> dict[str, str]:
    """A short remark per device where the rules' prediction differs, by full device name.

    What the kernel's-groups listing puts after such a device: ``split`` and
    ``merged`` verdicts always; an ``unknown`` verdict when the predicted
    group is not the kernel's (where they agree, the missing facts changed
    nothing visible). ``check`` explains each.
    """
    canon = {full_name(m): g for g, ms in report.canonical.groups.items() for m in ms}
    seen = {full_name(m): g for g, ms in report.observed.groups.items() for m in ms}
    # each group's members (a name listed twice counts where it was listed last)
    canon_sets = _members_of(canon)
    seen_sets = _members_of(seen)
    ordered: dict[int, tuple[str, ...]] = {}  # a canonical group's members, sorted once
    differs_of: dict[tuple[int, int], bool] = {}
    out: dict[str, str] = {}
    for d in report.devices:
        if d.verdict is Verdict.SPLIT:
            out[d.device] = f"split: the rules put it with {_few(d.split_from)} (isolation hole)"
        elif d.verdict is Verdict.MERGED:
            out[d.device] = f"merged: the rules isolate it from {_few(d.merged_with)}"
        elif d.verdict is Verdict.UNKNOWN:
            g, og = canon.get(d.device, -1), seen.get(d.device, -1)
            differs = differs_of.get((g, og))
            if differs is None:  # once per pair of groups: compared by members
                differs = differs_of[(g, og)] = canon_sets.get(g, _NONE) != seen_sets.get(
                    og, _NONE
                )
            if differs:
                if g not in ordered:
                    ordered[g] = tuple(sorted(canon_sets.get(g, _NONE)))
                members = ordered[g]
                alone = len(members) - (d.device in canon_sets.get(g, _NONE)) == 0
                pred = "alone" if alone else f"with {_others(members, d.device)}"
                out[d.device] = f"differs: the rules put it {pred}, on facts the input lacks"
    return out
