"""Read ``lspci -t`` trees (``-t``, ``-tv``, ``-tvv``, ``-tvnn``) as people paste them.

:func:`read_lspci_tree` reads which device is on which bus, and each
bridge's secondary/subordinate bus range, as ``lspci``'s ``ls-tree.c``
prints them, also with text around the trees (mail prose, other commands'
output). A tree shows no classes and no capabilities, so every function's
PCIe type, ACS capability and class are unknown; a device's ids come from
the name a ``-tv`` tree shows, mapped back through the bundled ``pci.ids``
subset (:func:`~iommugroups._kernel.pci_ids.lookup_device_name`) when it is
unambiguous. A tree whose first line lost its indentation against the
others (mail clients do that) is re-read with that line shifted. A tree
line that does not parse is an :class:`~iommugroups._errors.InputError`
naming the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

import attrs

from .._errors import InputError, InvalidAddress
from .._kernel.model import HEADER_BRIDGE, HEADER_NORMAL, PciAddress, PciFunction
from .._kernel.pci_ids import IdLookup, lookup_device_name
from .._kernel.reading import Reading, Unknown
from .lspci_common import (
    HEX,
    MAX_DEVICES,
    MIXED_IDS_RE,
    NUM_IDS_RE,
    ODD_SPACE,
    check_description,
    check_length,
    reading_unknowns,
    show,
    strip_suffixes,
    topology_of,
)
from .root_buses import with_missing_bridges

__all__ = ["looks_like_lspci_tree", "read_lspci_tree"]

#: The start of a tree: ``-[0000:00]-``, ``-+-[0000:00]-`` or a filtered
#: ``0000:00:1c.0-[02]--`` line.
_TREE_ROOT_RE = re.compile(
    rf"(?:-\+?-?\[[{HEX}]{{4,8}}:[{HEX}]{{2}}\]-|[{HEX}]{{4,8}}:[{HEX}]{{2}}:[{HEX}]{{2}}\.[0-7]-\[)"
)
_TREE_DEV_RE = re.compile(rf"(?P<dev>[{HEX}]{{2}})\.(?P<fn>[0-7])")
_TREE_BUSRANGE_RE = re.compile(rf"-\[(?P<sec>[{HEX}]{{2}})(?:-(?P<sub>[{HEX}]{{2}}))?\]-")
_TREE_ROOTBUS_RE = re.compile(rf"\[(?P<dom>[{HEX}]{{4,8}}):(?P<bus>[{HEX}]{{2}})\]-")
_TREE_BASES_RE = re.compile(
    r"(?:Region \d+: |\[virtual\] |\[enhanced\] )?(?:Memory at|I/O ports at)\b"
)


@attrs.define
class _TreeDev:
    address: PciAddress
    line: int
    name: str | None = None
    bus_range: tuple[int, int] | None = None


class _TreeParser:
    """Parses the grid ``ls-tree.c`` draws (see its ``show_tree_*`` functions)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.devices: dict[PciAddress, _TreeDev] = {}
        # column of a "+-"/"\-" branch list -> what it lists
        self.columns: dict[int, tuple[str, int, int]] = {}
        self.line = 0
        #: The root buses the tree shows at its top ("-[dddd:bb]-"): root buses.
        self.roots: set[tuple[int, int]] = set()

    def fail(self, problem: str) -> InputError:
        return InputError(self.path, problem, self.line)

    def first_line(self, text: str, shift: int = 0) -> None:
        self.columns = {}
        if shift:
            self.host(" " * shift + text, shift)
            return
        m = re.match(rf"(?P<dom>[{HEX}]{{4,8}}):(?P<bus>[{HEX}]{{2}}):", text)
        if m:  # a filtered tree (lspci -t -s ...): starts at a bridge
            self.device(text, m.end(), int(m["dom"], 16), int(m["bus"], 16))
            return
        self.host(text, 0)

    def continuation(self, text: str) -> None:
        col = 0
        while col < len(text) and text[col] in " |":
            col += 1
        rest = text[col:]
        if not rest:
            return
        if _TREE_BASES_RE.match(rest):
            return  # lspci -tvv: a device's resources
        if rest[:2] not in ("+-", "\\-"):
            raise self.fail(f"not an lspci tree line: {show(text.strip())}")
        where = self.columns.get(col)
        if where is None:
            raise self.fail(f"tree branch at column {col} continues no bus: {show(text)}")
        kind, dom, bus = where
        if rest[:2] == "\\-":
            del self.columns[col]
        if kind in ("host", "roots"):
            self.root_bus(text, col + 2, top=kind == "roots")
        else:
            self.device(text, col + 2, dom, bus)

    def host(self, text: str, pos: int) -> None:
        # show_tree_bridge(host): "-" then "[dddd:bb]-" or "+-[dddd:bb]-" ...
        if text[pos : pos + 1] != "-":
            raise self.fail(f"not an lspci tree: {show(text)}")
        pos += 1
        if text[pos : pos + 2] in ("+-", "\\-"):
            if text[pos] == "+":
                self.columns[pos] = ("roots", 0, 0)
            self.root_bus(text, pos + 2, top=True)
        else:
            self.root_bus(text, pos, top=True)

    def root_bus(self, text: str, pos: int, *, top: bool = False) -> None:
        m = _TREE_ROOTBUS_RE.match(text, pos)
        if m is None:
            raise self.fail(f"expected a root bus '[dddd:bb]' in {show(text)}")
        dom, bus = int(m["dom"], 16), int(m["bus"], 16)
        if top:
            self.roots.add((dom, bus))
        self.bus(text, m.end(), dom, bus)

    def bus(self, text: str, pos: int, dom: int, bus: int) -> None:
        # show_tree_bus: nothing (empty), "--dev", or "+-dev" / "\-dev"
        two = text[pos : pos + 2]
        if pos >= len(text) or not text[pos:].strip():
            return
        if two == "--":
            self.device(text, pos + 2, dom, bus)
        elif two in ("+-", "\\-"):
            if two == "+-":
                self.columns[pos] = ("bus", dom, bus)
            self.device(text, pos + 2, dom, bus)
        else:
            raise self.fail(f"unexpected {show(text[pos:])} in the tree")

    def device(self, text: str, pos: int, dom: int, bus: int) -> None:
        m = _TREE_DEV_RE.match(text, pos)
        if m is None:
            raise self.fail(f"expected a device 'dd.f' at {show(text[pos:])}")
        try:
            address = PciAddress(dom, bus, int(m["dev"], 16), int(m["fn"]))
        except InvalidAddress as exc:
            raise self.fail(str(exc)) from None
        if address in self.devices:
            raise self.fail(f"device {address} appears twice in the tree")
        if len(self.devices) >= MAX_DEVICES:
            raise self.fail(f"more than {MAX_DEVICES} devices; refusing the input")
        dev = _TreeDev(address, self.line)
        self.devices[address] = dev
        pos = m.end()
        r = _TREE_BUSRANGE_RE.match(text, pos)
        if r:
            sec = int(r["sec"], 16)
            sub = int(r["sub"], 16) if r["sub"] else sec
            dev.bus_range = (sec, sub)
            # show_tree_bridge: "-" then one bus (its number is the secondary)
            # or several "+-[dddd:bb]-" buses
            pos = r.end()
            if text[pos : pos + 1] != "-" and pos < len(text):
                raise self.fail(f"unexpected {show(text[pos:])} after a bridge")
            pos += 1
            if text[pos : pos + 3] in ("+-[", "\\-["):
                if text[pos] == "+":
                    self.columns[pos] = ("host", dom, 0)
                self.root_bus(text, pos + 2)
            else:
                self.bus(text, pos, dom, sec)
            return
        rest = text[pos:]
        if rest.startswith("  "):
            dev.name = " ".join(rest.split())
        elif rest.strip():
            raise self.fail(f"unexpected {show(rest)} after device {address}")


def read_lspci_tree(text: str, path: str = "<string>") -> Reading:
    """Read an ``lspci -t`` / ``-tv`` / ``-tvv`` / ``-tvnn`` tree: topology only.

    Text around the tree (mail prose, other commands' output) is skipped; a
    tree line that does not parse is an :class:`InputError`. Every function's
    PCIe type, ACS capability and class are unknown (a tree does not show
    them), and so are the ids of devices without a name (bridges never have
    one in a tree) or with an ambiguous one.

    >>> r = read_lspci_tree('''-[0000:00]-+-00.0  Intel Corporation Device 3e34
    ...            +-1c.0-[02-03]----00.0-[03]----00.0
    ...            \\\\-1f.0''')
    >>> [str(f) for f in r.topology.enumeration_order()]
    ['0000:00:00.0', '0000:00:1c.0', '0000:00:1f.0', '0000:02:00.0', '0000:03:00.0']
    >>> r.topology.get("00:1c.0").secondary_bus, sorted(r.topology.get("00:1c.0").unknown)
    (2, ['acs', 'class', 'ids', 'pcie', 'sriov', 'subsystem'])
    """
    check_length(text, path)
    devices: dict[PciAddress, _TreeDev] = {}
    roots: set[tuple[int, int]] = set()
    for tree in _tree_blocks(text):
        parser = _parse_tree(tree, path)
        roots |= parser.roots
        for address, dev in parser.devices.items():
            if address in devices:
                raise InputError(path, f"device {address} appears in two trees", dev.line)
            devices[address] = dev
            if len(devices) > MAX_DEVICES:
                raise InputError(path, f"more than {MAX_DEVICES} devices; refusing the input")
    if not devices:
        raise InputError(path, "no lspci tree found (expected a line starting '-[0000:00]-')")
    return _tree_reading(devices, roots, path)


def _tree_blocks(text: str) -> Iterator[list[tuple[int, str]]]:
    """Each tree in ``text``: its first line and the continuation lines after it."""
    tree: list[tuple[int, str]] = []
    for number, raw in enumerate(text.lstrip("\ufeff").split("\n"), start=1):
        line = raw.rstrip("\r").translate(ODD_SPACE).rstrip()
        if _TREE_ROOT_RE.match(line):
            if tree:
                yield tree
            tree = [(number, line)]
        elif tree and line[:1] in (" ", "|", "\\", "+") and line.strip():
            tree.append((number, line))
        elif tree:
            yield tree
            tree = []
    if tree:
        yield tree


#: How far a mail client may have shifted a tree's first line against the rest.
_MAX_TREE_SHIFT = 8


def _parse_tree(tree: list[tuple[int, str]], path: str) -> _TreeParser:
    """Parse one tree; tolerate a first line shifted left against the others.

    Pasted trees sometimes lose the indentation of their first line only (the
    ``-[`` moved to column 0 while ``|`` and ``+-`` below keep theirs). The
    grid is then re-read with the first line indented by 1 to
    ``_MAX_TREE_SHIFT`` columns, and the first shift under which every line
    continues a bus is taken; if none works, the unshifted error is raised.
    """
    first_error: InputError | None = None
    for shift in range(_MAX_TREE_SHIFT + 1):
        parser = _TreeParser(path)
        try:
            for i, (number, line) in enumerate(tree):
                parser.line = number
                if i == 0:
                    parser.first_line(line, shift)
                else:
                    parser.continuation(line)
        except InputError as exc:
            if first_error is None:
                first_error = exc
            if not tree[0][1].startswith("-"):
                break  # only a "-[dddd:bb]" root line can have lost its indent
            continue
        return parser
    assert first_error is not None
    raise first_error


def _tree_reading(
    devices: Mapping[PciAddress, _TreeDev], roots: set[tuple[int, int]], path: str
) -> Reading:
    unknowns: list[Unknown] = [
        Unknown("", "pcie", "an lspci tree shows no capabilities"),
        Unknown("", "acs", "an lspci tree shows no capabilities"),
        Unknown("", "class", "an lspci tree shows no device classes"),
    ]
    slots: dict[tuple[int, int, int], int] = {}
    for a in devices:
        slots[(a.domain, a.bus, a.device)] = slots.get((a.domain, a.bus, a.device), 0) + 1
    functions: list[PciFunction] = []
    lines: dict[PciAddress, int] = {}
    for a, d in devices.items():
        lines[a] = d.line
        unknown = {"pcie", "acs", "class", "sriov", "subsystem"}
        vendor = device = None
        if d.name is None:
            unknown.add("ids")
            if d.bus_range is None:
                unknowns.append(Unknown(str(a), "ids", "the tree shows no name (lspci -t)"))
        else:
            check_description(d.name, path, d.line)
            shown, _pi = strip_suffixes(d.name)
            m = NUM_IDS_RE.fullmatch(shown) or MIXED_IDS_RE.fullmatch(shown)
            if m:
                vendor, device = int(m["v"], 16), int(m["d"], 16)
            else:
                found = (
                    lookup_device_name(shown)
                    if not shown.endswith("...")
                    else IdLookup(
                        None, None, why=f"name {show(shown)} was truncated", matters=True
                    )
                )
                vendor, device = found.vendor, found.device
                if found.why is not None:
                    unknown.add("ids")
                    # a tree shows no ACS anyway; only the ids that matter are notes
                    fact = "ids" if found.matters else "name"
                    unknowns.append(Unknown(str(a), fact, found.why))
        sec = sub = None
        if d.bus_range is not None:
            sec, sub = d.bus_range
        slot_count = slots[(a.domain, a.bus, a.device)]
        try:
            functions.append(
                PciFunction(
                    a,
                    vendor=0xFFFF if vendor is None else vendor,
                    device=0xFFFF if device is None else device,
                    header_type=HEADER_BRIDGE if sec is not None else HEADER_NORMAL,
                    multifunction=a.function != 0 or slot_count > 1,
                    secondary_bus=sec,
                    subordinate_bus=sub,
                    unknown=unknown,
                )
            )
        except (ValueError, TypeError) as exc:
            raise InputError(path, f"device {a}: {exc}", d.line) from None
    if any(d.bus_range is not None for d in devices.values()):
        unknowns.append(Unknown("", "ids", "an lspci tree names no bridge (lspci -t)"))
    topology, bridge_notes = with_missing_bridges(topology_of(functions, lines, path), roots)
    unknowns.extend(bridge_notes)
    return Reading(
        topology=topology,
        **reading_unknowns(unknowns),
        source="lspci-tree",
        path=path,
    )


def looks_like_lspci_tree(text: str) -> bool:
    """Does an ``lspci -t`` tree start a line within the first 400 lines?

    >>> looks_like_lspci_tree("-[0000:00]-+-00.0\\n           \\\\-1f.0")
    True
    >>> looks_like_lspci_tree("00:00.0 Host bridge: Intel Corporation Device 3e34")
    False
    """
    for count, raw in enumerate(text.lstrip("\ufeff").split("\n", 400)):
        if count >= 400:
            break
        if _TREE_ROOT_RE.match(raw.translate(ODD_SPACE)):
            return True
    return False
