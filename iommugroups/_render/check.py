"""``check``'s report as text.

Each split and merge is shown once, with its groups, then why each of its
devices is where it is: its verdict, its reasons and how the rules placed it
(the trace of ``pci_device_group``). The text stays linear in the number of
devices however large a group: a list of more than :data:`PER_DEVICE` names
is cut short with their count, a split or merge of more than
:data:`PER_DEVICE` groups shows :data:`GROUPS_SHOWN` of them, and more than
:data:`PER_DEVICE` devices of one group with the same verdict and reasons
are summed up in one line, followed by the reasons of one of them ("0000:01:00.0
and 3,999 more: split: each alone in the kernel's groups, predicted together
(canonical group 1): an isolation hole; for instance:"). ``--json`` has every
device and every member.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from .._analysis.check import CheckReport, Cut, DeviceCheck, ShortLists, Verdict
from .._bulk import paused_gc
from .._kernel.model import full_name
from .._kernel.reading import Unknown
from .text import write_json_document

__all__ = [
    "GROUPS_SHOWN",
    "PER_DEVICE",
    "SHOWN",
    "render_check",
    "verdict_marks",
    "write_check_json",
]

#: Lists of more than :data:`PER_DEVICE` names show this many, then their count.
SHOWN = 8

#: Longer lists of names are cut short; more devices of one group with the same
#: verdict and reasons are summed up in one line.
PER_DEVICE = 16

#: At most this many groups of a large split or merge are listed.
GROUPS_SHOWN = 6

#: What a grouping fact not known is, in words.
_MISSING_WORDS = {
    "acs": "ACS capability bits not shown",
    "pcie": "PCIe capability (port type) not shown",
    "config": "configuration space not shown",
    "bridge": "the bridge above not in the input",
    "multifunction": "multifunction bit contradicted by the functions shown",
}


def _names(names: Sequence[str]) -> str:
    """Names separated by spaces; a list longer than :data:`PER_DEVICE`, cut short."""
    if len(names) <= PER_DEVICE:
        return " ".join(names)
    return " ".join(names[: SHOWN - 2]) + f" ... ({len(names):,} devices)"


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
    short = _Short(ShortLists(report, PER_DEVICE), ShortLists(report, SHOWN))
    if report.splits:
        out.append("")
        out.append("Splits (the rules put these together, the kernel separated them):")
        for s in report.splits:
            out.append(f"  canonical group {s.canonical_group}: {_names(s.devices)}")
            uncertain = frozenset(s.uncertain)
            out.extend(
                _parts(
                    "observed group",
                    [(g, [f"{x} (?)" if x in uncertain else x for x in ds]) for g, ds in s.parts]
                    if uncertain
                    else s.parts,
                )
            )
            if s.not_observed:
                out.append(f"    in no observed group: {_names(s.not_observed)}")
            out.extend(_members_why(report, short, s.devices))
    if report.merges:
        out.append("")
        out.append("Merges (the kernel put these together, the rules isolate them):")
        for m in report.merges:
            out.append(f"  observed group {m.observed_group}: {_names(m.devices)}")
            out.extend(_parts("canonical group", m.parts))
            out.extend(_members_why(report, short, m.devices))
    unknown = report.unknown
    if unknown:
        out.append("")
        out.append("Unknown (the verdict depends on missing data):")
        out.extend(_unknown_lines(short, unknown))
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
    depending = report.depending()
    for fact, devices in report.missing.items():
        depends = depending.get(fact, 0)
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


def _parts(label: str, parts: Sequence[tuple[int, Sequence[str]]]) -> list[str]:
    """The groups of a split (or merge), each with its members; a long list, the first
    :data:`GROUPS_SHOWN` and a count."""
    shown = parts if len(parts) <= PER_DEVICE else parts[:GROUPS_SHOWN]
    out = [f"    {label} {g}: {_names(ds)}" for g, ds in shown]
    rest = parts[len(shown) :]
    if rest:
        count = sum(len(ds) for _, ds in rest)
        alone = all(len(ds) == 1 for _, ds in rest)
        out.append(
            f"    {label}s ...: {len(rest):,} more groups ({count:,} device"
            f"{'s' if count != 1 else ''}" + (", each alone)" if alone else ")")
        )
    return out


_Class = tuple[Verdict, tuple[str, ...], int | None]


def _class(d: DeviceCheck, by_group: bool) -> _Class:
    return (d.verdict, d.reason_kinds, d.canonical_group if by_group else None)


def _classes(devices: Iterable[DeviceCheck], by_group: bool) -> dict[_Class, list[DeviceCheck]]:
    """Devices by verdict and reason kinds (and canonical group), in the order given."""
    out: dict[_Class, list[DeviceCheck]] = {}
    for d in devices:
        out.setdefault(_class(d, by_group), []).append(d)
    return out


class _Short(NamedTuple):
    """A device's reasons with lists cut short: ``each`` to :data:`PER_DEVICE` names
    (as each device of a group is shown), ``example`` to :data:`SHOWN` (as the one
    device shown for many)."""

    each: ShortLists
    example: ShortLists


def _members_why(report: CheckReport, short: _Short, members: Sequence[str]) -> list[str]:
    """Why each member of a split or merge is where it is; for more than
    :data:`PER_DEVICE` members with the same verdict and reasons, a summary line and
    the reasons of one of them (:func:`_example`)."""
    devices: list[DeviceCheck] = []
    for member in members:
        try:
            devices.append(report.device(member))
        except KeyError:
            continue  # observed, not in the input: no verdict
    classes = _classes(devices, False)
    lines: list[str] = []
    for d in devices:
        mates = classes[_class(d, False)]
        if len(mates) <= PER_DEVICE:
            lines.extend(_why(d, short.each.reasons(d), "    "))
        elif mates[0] is d:
            lines.append(f"    {_summary(report, mates)}")
            example = _example(mates)
            lines.extend(_why(example, short.example.reasons(example), "      "))
    return lines


def _example(devices: Sequence[DeviceCheck]) -> DeviceCheck:
    """The device whose reasons stand for those of ``devices``: the first one that joined
    a group another device had made, when one did (its trace shows how they share it)."""
    for d in devices:
        if d.rules and d.rules[-1].group is not None:
            return d
    return devices[0]


def _summary(report: CheckReport, devices: Sequence[DeviceCheck]) -> str:
    """One line for many devices of one group with the same verdict and reasons."""
    first = devices[0]
    head = f"{first.device} and {len(devices) - 1:,} more: {first.verdict.value}"
    kinds = first.reason_kinds
    cgs = {d.canonical_group for d in devices}
    where = (
        f" (canonical group {first.canonical_group})" if len(cgs) == 1 and None not in cgs else ""
    )
    groups = {d.observed_group for d in devices}
    if kinds[:1] == ("split",):
        observed = report.observed.groups
        alone = all(
            d.observed_group is not None and len(observed[d.observed_group]) == 1 for d in devices
        )
        spread = (
            "each alone in the kernel's groups"
            if alone
            else (f"in {len(groups):,} of the kernel's groups")
        )
        return f"{head}: {spread}, predicted together{where}: an isolation hole; for instance:"
    if kinds[:1] == ("merged",):
        where = (
            f"in the kernel's group {next(iter(groups))}"
            if len(groups) == 1
            else f"in {len(groups):,} of the kernel's groups"
        )
        return f"{head}: each with devices the rules isolate it from, {where}; for instance:"
    return f"{head}{where}, each for the same reasons; for instance:"


def _unknown_lines(short: _Short, unknown: Sequence[DeviceCheck]) -> list[str]:
    """A line per unknown verdict; one for more than :data:`PER_DEVICE` devices of one
    canonical group with the same reasons."""
    classes = _classes(unknown, True)
    out: list[str] = []
    for d in unknown:
        mates = classes[_class(d, True)]
        if len(mates) <= PER_DEVICE or d.canonical_group is None:
            out.append(f"  {d.device}: {'; '.join(short.each.reasons(d))}")
        elif mates[0] is d:
            out.append(
                f"  {d.device} and {len(mates) - 1:,} more of canonical group "
                f"{d.canonical_group}, as {d.device}: {'; '.join(short.example.reasons(d))}"
            )
    return out


def _detail(u: Unknown) -> str:
    who = f"{u.device}: " if u.device else ""
    if u.fact in ("assumed", "paste", "name"):
        return f"{who}{u.why}"
    return f"{who}{u.fact}: {u.why}"


def _why(d: DeviceCheck, reasons: Sequence[str], indent: str) -> list[str]:
    lines = [f"{indent}{d.device}: {d.verdict.value}: {'; '.join(reasons)}"]
    lines.extend(f"{indent}  {s.rule} {s.text}" for s in d.rules)
    if d.rules_if_isolating:
        lines.append(f"{indent}  if the unknown facts are isolating:")
        lines.extend(f"{indent}    {s.rule} {s.text}" for s in d.rules_if_isolating)
    return lines


def _short_name(name: str) -> str:
    return name[5:] if name.startswith("0000:") else name


def _few(names: tuple[str, ...], limit: int = 3) -> str:
    """Up to ``limit`` names, shortened as the listing shows them (domain 0 without it)."""
    shown = [_short_name(n) for n in names[:limit]]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(shown) + more


def _few_cut(cut: Cut) -> str:
    """:func:`_few` of a list cut to its first names."""
    more = cut.total - len(cut.head)
    return ", ".join(_short_name(n) for n in cut.head) + (f" and {more} more" if more > 0 else "")


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
    nothing visible). ``check`` explains each. Time linear in the report,
    however large a group.
    """
    with paused_gc():  # many small acyclic values (see iommugroups._bulk)
        return _marks(report)


def _marks(report: CheckReport) -> dict[str, str]:
    short = ShortLists(report, 3)
    differs = _Differs(report)
    out: dict[str, str] = {}
    for d in report.devices:
        if d.verdict is Verdict.SPLIT:
            who = _few_cut(short.split_from(d))
            out[d.device] = f"split: the rules put it with {who} (isolation hole)"
        elif d.verdict is Verdict.MERGED:
            out[d.device] = f"merged: the rules isolate it from {_few_cut(short.merged_with(d))}"
        elif d.verdict is Verdict.UNKNOWN:
            pred = differs(d.device)
            if pred is not None:
                out[d.device] = f"differs: the rules put it {pred}, on facts the input lacks"
    return out


class _Differs:
    """Whether a device's canonical group is not its observed group (compared by members,
    a name listed twice counting where it was listed last), and then where the rules put
    it; the groups' member sets are made on the first question, once per pair."""

    def __init__(self, report: CheckReport) -> None:
        self.report = report
        self._sets: (
            tuple[
                dict[str, int],
                dict[str, int],
                dict[int, frozenset[str]],
                dict[int, frozenset[str]],
            ]
            | None
        ) = None
        self._ordered: dict[int, tuple[str, ...]] = {}  # a canonical group's members, sorted
        self._differs: dict[tuple[int, int], bool] = {}

    def __call__(self, name: str) -> str | None:
        if self._sets is None:
            report = self.report
            canon = {full_name(m): g for g, ms in report.canonical.groups.items() for m in ms}
            seen = {full_name(m): g for g, ms in report.observed.groups.items() for m in ms}
            self._sets = (canon, seen, _members_of(canon), _members_of(seen))
        canon, seen, canon_sets, seen_sets = self._sets
        g, og = canon.get(name, -1), seen.get(name, -1)
        differs = self._differs.get((g, og))
        if differs is None:  # once per pair of groups: compared by members
            differs = self._differs[(g, og)] = canon_sets.get(g, _NONE) != seen_sets.get(og, _NONE)
        if not differs:
            return None
        members = self._ordered.get(g)
        if members is None:
            members = self._ordered[g] = tuple(sorted(canon_sets.get(g, _NONE)))
        alone = len(members) - (name in canon_sets.get(g, _NONE)) == 0
        return "alone" if alone else f"with {_others(members, name)}"


# ----------------------------------------------------------------------- JSON
def write_check_json(report: CheckReport, kernel: str, write: Callable[[str], object]) -> None:
    """Write ``report.to_json()``, with ``"kernel": kernel`` after its ``schema``, as
    ``json.dumps(doc, indent=2)`` writes it, and a newline.

    The devices' entries are written one at a time, so that a report of
    100,000 devices is never held as JSON data or text all at once.
    """

    def items() -> Iterator[tuple[str, Any]]:
        for key, value in report.json_items():
            yield key, value
            if key == "schema":
                yield "kernel", kernel

    write_json_document(items(), write)
