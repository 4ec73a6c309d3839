"""``passthrough``'s answer as text, a section per device."""

from __future__ import annotations

from collections.abc import Iterable

from .._analysis.names import short_name
from .._analysis.passthrough import (
    PassthroughDevice,
    PassthroughReport,
    PassthroughVerdict,
    Role,
    hostdev_xml,
)
from .._kernel.reset import Availability, ResetMethods
from .text import listing_line

__all__ = ["render_passthrough"]

_HEADLINE = {
    PassthroughVerdict.ALONE: "it can go to a VM by itself",
    PassthroughVerdict.WITH_OTHERS: "other devices must go to the VM with it",
    PassthroughVerdict.ISOLATION_HOLE: "the kernel's group is an isolation hole",
    PassthroughVerdict.NO_GROUP: "VFIO cannot assign it",
    PassthroughVerdict.UNKNOWN: "it depends on facts the input lacks",
}

#: How a member's role is shown (the legend is printed under the group).
_ROLE = {
    Role.CARD: "card",
    Role.ENDPOINT: "goes too",
    Role.BRIDGE: "bridge",
    Role.UNKNOWN: "unknown",
}
_LEGEND = {
    Role.CARD: "card: the device and its card's other functions",
    Role.ENDPOINT: "goes too: another device, which goes to the VM with it (or loses its driver)",
    Role.BRIDGE: "bridge: stays with the host (vfio-pci binds no bridge)",
    Role.UNKNOWN: "unknown: not in the input, or its class not shown",
}


def _names(names: Iterable[str]) -> str:
    return ", ".join(short_name(n) for n in names)


def render_passthrough(report: PassthroughReport, *, verbose: bool = False) -> str:
    """The report as plain text for people, ending with a newline.

    With ``verbose``, every reset method's reason; else the methods by outcome,
    with the reason of ``bus`` (the one the tree decides).
    """
    out: list[str] = []
    for i, d in enumerate(report.devices):
        if i:
            out.append("")
        out.extend(_device(report, d, verbose))
    if report.notes:
        out.append("")
        out.extend(f"Note: {n}" for n in report.notes)
    return "\n".join(out) + "\n"


def _device(report: PassthroughReport, d: PassthroughDevice, verbose: bool) -> list[str]:
    topo = report.topology
    out = [f"== {listing_line(d.device, topo, names=True)}"]
    where = "the kernel's" if d.groups_from == "kernel" else "predicted"
    group = f"IOMMU group {d.group}, {where}" if d.group is not None else "no IOMMU group"
    named = (
        f"; named by {d.selector}" if d.selector not in (d.device, short_name(d.device)) else ""
    )
    out.append(f"Verdict: {d.verdict.value} ({group}{named}): {_HEADLINE[d.verdict]}")
    out.extend(f"  {r}" for r in d.reasons)
    if d.group is None:
        return out

    out.append("")
    out.append(f"IOMMU group {d.group}:")
    for m in d.members:
        line = listing_line(m.name, topo, names=True)
        driver = ""
        if m.driver_known:
            driver = (
                f"  [driver: {m.driver or 'none'}{' - keeps VFIO out' if m.blocks_vfio else ''}]"
            )
        out.append(f"  {_ROLE[m.role]:<8}  {line}{driver}")
    roles = dict.fromkeys(m.role for m in d.members)
    out.append("  (" + "; ".join(_LEGEND[r] for r in roles) + ")")
    if d.check is not None and d.groups_from == "kernel":
        same = set(d.predicted) == {m.name for m in d.members}
        out.append(
            "  the prediction agrees"
            if same
            else f"  the prediction differs (check: {d.check.value}): {_names(d.predicted)}"
        )
    if d.card_elsewhere:
        out.append(
            f"  other functions of the card, in other groups: {_names(d.card_elsewhere)} "
            "(name them too, or the slot, to pass them)"
        )

    v = d.vfio
    out.append("")
    out.append(f"Bind to vfio-pci: {_names(v.bind)}")
    if v.host_drivers:
        out.append(
            "  bound to host drivers now: "
            + ", ".join(f"{short_name(n)} {drv}" for n, drv in v.host_drivers.items())
        )
    unknown = [m.name for m in d.members if m.function is not None and not m.driver_known]
    if unknown:
        out.append(f"  host drivers not shown by the input for: {_names(unknown)}")
    for name, drv in v.blocking:
        out.append(
            f"  {short_name(name)} is bound to {drv}, which uses the kernel's DMA API: VFIO "
            "cannot take the group while it is (unbind it, or bind it to vfio-pci)"
        )
    for name, why in v.refused:
        out.append(f"  {short_name(name)}: {why}")
    if v.kernel_parameter:
        out.append(f"  kernel command line:  {v.kernel_parameter}")
        out.append("  /etc/modprobe.d/vfio.conf:")
        out.extend(f"    {line}" for line in v.modprobe)
    if not v.ids_known:
        out.append("  the input does not show every endpoint's ids: bind those by address")
    if v.ids_shared_with:
        more = v.ids_shared_count - len(v.ids_shared_with)
        out.append(
            f"  the same ids name {_names(v.ids_shared_with)}"
            + (f" and {more} more" if more > 0 else "")
            + " too, which vfio-pci.ids= would also take: bind by address instead"
        )
    out.append("  or per device, by address (driverctl):")
    out.extend(f"    {line}" for line in v.driverctl)

    if d.reset:
        out.append("")
        out.append("Reset (the kernel's methods, in the order it tries them):")
        for r in d.reset:
            out.extend(_reset(r, verbose))

    hostdevs = d.hostdevs
    if hostdevs:
        out.append("")
        out.append("libvirt (virsh edit DOMAIN, inside <devices>):")
        for n in hostdevs:
            out.extend(f"  {line}" for line in hostdev_xml(n).splitlines())

    if d.slots is not None or d.acs_override is not None:
        out.append("")
        out.append("To give it a group of its own:")
    if d.slots is not None:
        s = d.slots
        if not s.searched:
            out.append(f"  move the card: no: {s.why}")
        else:
            out.append(f"  move the card to a free port ({s.candidates} in the topology): {s.why}")
            for o in s.tried:
                after = "alone" if o.alone_after else f"shares with {_names(o.group_after)}"
                out.append(f"    {short_name(o.port)}: {after}   (what-if {_shell(o.change)})")
    if d.acs_override is not None:
        ov = d.acs_override
        after = "alone" if ov.alone_after else f"still with {_names(ov.group_after)}"
        out.append(f"  {ov.label} [NOT UPSTREAM]: {after}")
        out.append(f"    cost: {ov.cost}")
    return out


def _reset(r: ResetMethods, verbose: bool) -> list[str]:
    head = f"  {short_name(r.device)}: {r.available.value}"
    if verbose:
        return [head, *(f"    {m.name:<16} {m.available.value:<8} {m.why}" for m in r.methods)]
    out = [head]
    for avail in (Availability.YES, Availability.UNKNOWN, Availability.NO):
        names = [m.name for m in r.methods if m.available is avail]
        if names:
            out.append(f"    {_AVAIL[avail]}: {', '.join(names)}")
    bus = [m for m in r.methods if m.name == "bus"]
    if bus:
        out.append(f"    bus: {bus[0].why}")
    return out


_AVAIL = {
    Availability.YES: "available",
    Availability.UNKNOWN: "not known",
    Availability.NO: "not available",
}


def _shell(text: str) -> str:
    """``text`` quoted for a POSIX shell when it has a character the shell would act on."""
    return f"'{text}'" if any(c in text for c in "|&;<>()$`*?[]#~ ") else text
