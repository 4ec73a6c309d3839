"""``check``'s report as text."""

from __future__ import annotations

from .._analysis.check import CheckReport, DeviceCheck, Verdict

__all__ = ["render_check"]


def render_check(report: CheckReport) -> str:
    """The report as plain text for people (no colour), ending with a newline."""
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
    if report.notes:
        out.append("")
        out.append("Notes:")
        out.extend(f"  {n}" for n in report.notes)
    return "\n".join(out) + "\n"


def _why(d: DeviceCheck, indent: str) -> list[str]:
    lines = [f"{indent}{d.device}: {d.verdict.value}: {'; '.join(d.reasons)}"]
    lines.extend(f"{indent}  {s.rule} {s.text}" for s in d.rules)
    if d.rules_if_isolating:
        lines.append(f"{indent}  if the unknown facts are isolating:")
        lines.extend(f"{indent}    {s.rule} {s.text}" for s in d.rules_if_isolating)
    return lines
