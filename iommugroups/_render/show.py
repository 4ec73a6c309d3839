"""``show``'s results as text: the groups, what goes with a device, the bus tree.

Rendering
---------
:func:`render_show` (text, ANSI colour only when asked: :func:`use_color`
decides from the stream and the environment), :meth:`ShowResult.to_json`
(schema ``"iommugroups.show/1"``) and :func:`render_tree` (the bus tree, like
``lspci -tv``, with group numbers and ACS states) are pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .._analysis.names import class_name, device_kind, short_name
from .._analysis.show import AcsState, GroupView, Member, Related, ShowResult, acs_state
from .._kernel.groups import Grouping
from .._kernel.model import PciFunction, Topology
from .._kernel.quirks import Quirks, make_context

__all__ = ["render_related", "render_show", "render_tree", "use_color"]


_RESET = "\x1b[0m"
_BOLD = "1"
_DIM = "2"
_RED = "31"
_GREEN = "32"
_YELLOW = "33"
_CYAN = "36"
_GROUP_COLOURS = ("34", "35", "36", "32", "33", "94", "95", "96")


def use_color(stream: object, env: Mapping[str, str]) -> bool:
    """Whether to write ANSI colour to ``stream``.

    No when ``NO_COLOR`` is set to a non-empty value (https://no-color.org),
    when ``TERM`` is ``dumb``, or when the stream is not a terminal.

    >>> import io
    >>> use_color(io.StringIO(), {})
    False
    """
    if env.get("NO_COLOR"):
        return False
    if env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    if not callable(isatty):
        return False
    try:
        return bool(isatty())
    except (ValueError, OSError):  # a closed stream
        return False


def _paint(text: str, code: str, on: bool) -> str:
    return f"\x1b[{code}m{text}{_RESET}" if on and text else text


def _acs_colour(state: AcsState) -> str:
    if state is AcsState.UNKNOWN or state in (AcsState.QUIRK, AcsState.QUIRK_OFF):
        return _YELLOW
    return _GREEN if state.isolates else _RED


#: A cell of a rendered table: (plain text, text as written); widths use the plain text.
_Cell = tuple[str, str]


def _cell(text: str, code: str | None = None, on: bool = False) -> _Cell:
    return (text, _paint(text, code, on) if code is not None else text)


def _join_cells(cells: Sequence[_Cell], widths: Sequence[int]) -> str:
    parts = []
    for (plain, painted), width in zip(cells, widths, strict=False):
        parts.append(painted + " " * (width - len(plain)))
    return "  ".join(parts).rstrip()


def _member_cells(
    m: Member, *, observed: bool, color: bool, predicted: int | None = None
) -> list[_Cell]:
    cls = "" if m.class_code is None else f"{m.class_name} [{m.class_code >> 8:04x}]"
    kind = _cell(m.kind)
    if m.show_acs and m.acs is not None:
        label = f"[{m.acs.value}]"
        kind = (f"{m.kind} {label}", f"{m.kind} {_paint(label, _acs_colour(m.acs), color)}")
    cells = [
        _cell(m.shown, _BOLD, color and m.match),
        _cell(cls),
        _cell(f"[{m.ids}]" if m.ids else ""),
        _cell(m.driver or "-"),
        kind,
    ]
    if predicted is not None:
        cells.append(_cell(f"pred {predicted}"))
    elif observed:
        cells.append(_cell("obs -" if m.observed_group is None else f"obs {m.observed_group}"))
    return cells


def render_show(result: ShowResult, *, color: bool = False, kernel_first: bool = False) -> str:
    """The result as text, ending with a newline; ANSI colour only if ``color``.

    Per group: a header (id, size, observed groups), the reason, then one
    line per member: address, class name and code, ids, driver, kind with
    the ACS state where it matters, observed group. With filters applied,
    matching members are marked ``*``.

    >>> from iommugroups import examples, related, show
    >>> text = render_show(show(examples.desktop()))
    >>> print("\\n".join(text.splitlines()[6:9]))
    IOMMU Group 2  (2 devices)
      why: devices below root port 00:02.0, which has no ACS capability (R2.3, R4.2)
        00:02.0  PCI bridge [0604]                      [1b36:000c]  -  root port [no ACS]
    """
    if kernel_first and result.observed is not None:
        return _render_kernel_first(result, color)
    out: list[str] = []
    observed = result.observed is not None
    marks = bool(result.filters)
    if result.related is not None:
        out.extend(_related_lines(result.related, color))
        out.append("")
    rows = {
        (g.id, m.name): _member_cells(m, observed=observed, color=color and marks)
        for g in result.groups
        for m in g.members
    }
    ncols = max((len(c) for c in rows.values()), default=0)
    widths = [max((len(c[i][0]) for c in rows.values()), default=0) for i in range(ncols)]
    for g in result.groups:
        n = len(g.members)
        info = f"{n} device{'s' if n != 1 else ''}"
        differs = False
        if observed:
            if not g.observed:
                info += "; observed: in no group"
            else:
                label = "group" if len(g.observed) == 1 else "groups"
                info += f"; observed: {label} {', '.join(map(str, g.observed))}"
            if not g.observed_same:
                info += ", differs" if g.observed else ""
                differs = True
        info_text = _paint(info, _RED, color) if differs else info
        out.append(f"{_paint(f'IOMMU Group {g.id}', _BOLD, color)}  ({info_text})")
        out.append(f"  {_paint('why:', _DIM, color)} {_paint(g.reason, _CYAN, color)}")
        for m in g.members:
            mark = "*" if marks and m.match else " "
            out.append(f"  {mark} {_join_cells(rows[(g.id, m.name)], widths)}")
    if not result.groups:
        out.append("No IOMMU group matches the filters." if result.filters else "No IOMMU groups.")
    if result.ungrouped and not result.filters:
        out.append("")
        out.append("Devices without a group:")
        out.extend(f"  {short_name(d)}: {why}" for d, why in result.ungrouped)
    if result.observed_only and not result.filters:
        out.append("")
        out.append("Observed, but not in the topology:")
        out.extend(f"  {short_name(d)}: observed group {g}" for d, g in result.observed_only)
    return "\n".join(out) + "\n"


def _render_kernel_first(result: ShowResult, color: bool) -> str:
    """The kernel's groups, each member described, with the rules' group beside it.

    Per kernel group: a header (id, size, and the rules' groups of its
    members, ``differs`` when they are not exactly these devices), the
    rules' reason for each predicted group involved, then one line per
    member ending with its predicted group (``pred N``).
    """
    assert result.observed is not None
    out: list[str] = []
    marks = bool(result.filters)
    if result.related is not None:
        out.extend(_related_lines(result.related, color))
        out.append("")
    shown: dict[int, list[tuple[GroupView, Member]]] = {}
    for g in result.groups:
        for m in g.members:
            if m.observed_group is not None:
                shown.setdefault(m.observed_group, []).append((g, m))
    rows = {
        m.name: _member_cells(m, observed=True, color=color and marks, predicted=g.id)
        for members in shown.values()
        for g, m in members
    }
    ncols = max((len(c) for c in rows.values()), default=0)
    widths = [max((len(c[i][0]) for c in rows.values()), default=0) for i in range(ncols)]
    for gid in sorted(shown):
        members = sorted(shown[gid], key=lambda gm: gm[1].name)
        views = sorted({g.id: g for g, _m in members}.values(), key=lambda g: g.id)
        n = len(result.observed.groups.get(gid, ()))
        same = len(views) == 1 and bool(views[0].observed_same)
        label = "group" if len(views) == 1 else "groups"
        info = f"{n} device{'s' if n != 1 else ''}; predicted: {label} "
        info += ", ".join(str(g.id) for g in views) + ("" if same else ", differs")
        info_text = info if same else _paint(info, _RED, color)
        out.append(f"{_paint(f'IOMMU Group {gid}', _BOLD, color)}  ({info_text})")
        for g in views:
            why = g.reason if len(views) == 1 else f"group {g.id}: {g.reason}"
            out.append(f"  {_paint('why:', _DIM, color)} {_paint(why, _CYAN, color)}")
        for _g, m in members:
            mark = "*" if marks and m.match else " "
            out.append(f"  {mark} {_join_cells(rows[m.name], widths)}")
    if not shown:
        out.append("No IOMMU group matches the filters." if result.filters else "No IOMMU groups.")
    unseen = [m for g in result.groups for m in g.members if m.observed_group is None]
    if unseen:
        out.append("")
        out.append("In no group of the kernel's (the rules' group beside it):")
        out.extend(
            f"  {m.shown}  pred {g.id}"
            for g in result.groups
            for m in g.members
            if m.observed_group is None
        )
    if result.observed_only and not result.filters:
        out.append("")
        out.append("In the kernel's groups, but not in the topology:")
        out.extend(f"  {short_name(d)}: group {g}" for d, g in result.observed_only)
    return "\n".join(out) + "\n"


def _related_lines(rel: Related, color: bool) -> list[str]:
    def names(items: Sequence[str]) -> str:
        return " ".join(short_name(d) for d in items) if items else "none"

    head = _paint(f"Related to {short_name(rel.device)}", _BOLD, color)
    if rel.group is None:
        return [f"{head}: {rel.reason}; it cannot be assigned with VFIO"]
    lines = [
        f"{head}: IOMMU group {rel.group} ({rel.reason})",
        f"  assign together: {names(rel.together)}"
        " (each bound to vfio-pci, pci-stub or no driver; all used by one VM)",
    ]
    if rel.bridges:
        lines.append(
            f"  bridges in the group: {names(rel.bridges)} (not assigned; may keep pcieport)"
        )
    if rel.bus_reset:
        groups = ", ".join(str(g) for g in rel.bus_reset_groups)
        lines.append(
            f"  a bus reset also resets: {names(rel.bus_reset)} (group"
            f"{'s' if len(rel.bus_reset_groups) > 1 else ''} {groups}; only without FLR)"
        )
    return lines


def render_related(rel: Related, *, color: bool = False) -> str:
    """:func:`related`'s answer as text, ending with a newline.

    >>> from iommugroups import examples, related, show
    >>> print(render_related(related(show(examples.desktop()), "01:00.1")), end="")
    Related to 01:00.1: IOMMU group 7 (functions of multifunction device 01:00 without ACS (R5.2))
      assign together: 01:00.0 01:00.1 (each bound to vfio-pci, pci-stub or no driver; all used by one VM)
    """  # noqa: E501
    return "\n".join(_related_lines(rel, color)) + "\n"


# --------------------------------------------------------------------- tree


def render_tree(
    topology: Topology,
    grouping: Grouping,
    *,
    quirks: Quirks | None = None,
    color: bool = False,
) -> str:
    """The bus tree, like ``lspci -tv``, with each device's group and bridges' ACS.

    Every root bus (by domain, then number) is a ``[dddd:bb]`` line; below
    it, one line per PCI function on the bus, in device order, indented four
    columns per bus level: a bridge's secondary bus is one level below the
    bridge's own bus, so its devices are drawn under the bridge; an SR-IOV
    virtual bus is a ``[dddd:bb] SR-IOV virtual bus`` line after the devices
    of its PF's bus, its VFs one level below. A device line: tree prefix,
    address, class name and code, ids, kind; a bridge adds its ACS state
    (``[ACS]``, ``[no ACS]``, ``[ACS off]``, ``[ACS quirk]``, ``[ACS ?]``,
    ... see :class:`AcsState`) and its bus range; then, in one column,
    ``group N`` (or ``no group``). Platform devices follow, one line each.

    >>> from iommugroups import PciFunction, PcieType, Topology, canonical_groups
    >>> topo = Topology([
    ...     PciFunction("00:00.0", vendor=0x8086, device=0x3E30, class_code=0x060000),
    ...     PciFunction("00:1c.0", vendor=0x8086, device=0xA110, class_code=0x060400,
    ...                 header_type=1, pcie_type=PcieType.ROOT_PORT, secondary_bus=1),
    ...     PciFunction("01:00.0", vendor=0x144D, device=0xA808, class_code=0x010802,
    ...                 pcie_type=PcieType.ENDPOINT),
    ... ])
    >>> print(render_tree(topo, canonical_groups(topo)), end="")
    [0000:00]
    +-- 00:00.0  Host bridge [0600] [8086:3e30]  conventional PCI                 group 0
    \\-- 00:1c.0  PCI bridge [0604] [8086:a110]  root port [no ACS] bus 01         group 1
        \\-- 01:00.0  Non-Volatile memory controller [0108] [144d:a808]  endpoint  group 1
    """
    ctx = make_context(topology, quirks)
    # (body as (plain, painted), group tag or None for a bus line, group id)
    rows: list[tuple[_Cell, str | None, int | None]] = []

    def device_row(prefix: str, fn: PciFunction) -> None:
        text = (
            f"{prefix}{short_name(fn.address)}  {class_name(fn.class_code)} "
            f"[{fn.class_code >> 8:04x}] [{fn.vendor:04x}:{fn.device:04x}]  {device_kind(fn)}"
        )
        painted = text
        if fn.is_bridge:
            state = acs_state(fn, ctx)
            sec = fn.secondary_bus
            sub = fn.subordinate_bus if fn.subordinate_bus is not None else sec
            buses = f"bus {sec:02x}" if sec == sub else f"buses {sec:02x}-{sub:02x}"
            label = f"[{state.value}]"
            painted = f"{text} {_paint(label, _acs_colour(state), color)} {buses}"
            text = f"{text} {label} {buses}"
        gid = grouping.group_of(fn.address)
        rows.append(((text, painted), "no group" if gid is None else f"group {gid}", gid))

    def walk(key: tuple[int, int], indent: str) -> None:
        items: list[PciFunction | tuple[int, int]] = list(topology.devices_on_bus(*key))
        items += [
            (key[0], c) for c in topology.child_buses(*key) if topology.bus_self(key[0], c) is None
        ]
        for i, item in enumerate(items):
            last = i == len(items) - 1
            prefix = indent + ("\\-- " if last else "+-- ")
            deeper = indent + ("    " if last else "|   ")
            if isinstance(item, PciFunction):
                device_row(prefix, item)
                if item.is_bridge and item.secondary_bus is not None:
                    walk((item.address.domain, item.secondary_bus), deeper)
            else:  # an SR-IOV virtual bus
                rows.append(
                    (
                        _cell(f"{prefix}[{item[0]:04x}:{item[1]:02x}] SR-IOV virtual bus"),
                        None,
                        None,
                    )
                )
                walk(item, deeper)

    roots = sorted(
        {
            (f.address.domain, f.address.bus)
            for f in topology.functions
            if topology.is_root_bus(f.address.domain, f.address.bus)
        }
    )
    for key in roots:
        rows.append((_cell(f"[{key[0]:04x}:{key[1]:02x}]"), None, None))
        walk(key, "")
    for p in topology.platform_devices:
        gid = grouping.group_of(p.name)
        label = "no group" if gid is None else f"group {gid}"
        rows.append((_cell(f"{p.name}  platform device ({p.bus})"), label, gid))

    width = max((len(body[0]) for body, tag, _g in rows if tag is not None), default=0)
    out: list[str] = []
    for (plain, painted), tag, gid in rows:
        if tag is None:
            out.append(painted)
            continue
        code = _DIM if gid is None else _GROUP_COLOURS[gid % len(_GROUP_COLOURS)]
        out.append(f"{painted}{' ' * (width - len(plain) + 2)}{_paint(tag, code, color)}")
    return "\n".join(out) + ("\n" if out else "")
