"""Read ``lspci -v``/``-vv``/``-vvv`` text as people paste it.

Bug reports carry the output of ``lspci -vvv`` (run as root it shows every
ACS register), often ``lspci -vvnn`` (numeric ids too), ``lspci -v`` (no ACS
bits) or ``lspci -tv`` (the bus tree). Recent pciutils also print each
device's real IOMMU group (``IOMMU group: N`` with ``-vv``, ``IOMMU group N``
at the end of ``Flags:`` with ``-v``), so one paste can hold a topology, its
ACS bits *and* the groups the kernel made. :func:`read_lspci_text` turns
such text into a :class:`~iommugroups._kernel.reading.Reading` (``lspci -t``
trees are read by :mod:`~iommugroups._io.lspci_tree`).

What is read from a device block
--------------------------------
* Address: ``bb:dd.f``, ``dddd:bb:dd.f`` (``-D``; domains wider than four
  digits, Intel VMD's ``10000:e0:01.1``), or a path (``-P``
  ``00:1c.0/00.0``, ``-PP`` ``00:1c.0/02:00.0``), whose last element is the
  device; a ``-P`` element without a bus number is on the secondary bus of
  the bridge before it, which must be in the input.
* Class: ``[0604]`` (``-nn``), ``0604`` (``-n``), ``Class 0604``, or the class
  name mapped back through ``pci.ids`` (``lspci`` prints the subclass name, or
  the class name *with* the number when the subclass is not in the
  database, so a bare name is never ambiguous). The programming interface
  comes from ``(prog-if 02 [...])``, which verbose ``lspci`` always prints
  when it is not zero.
* Vendor and device ids: ``[8086:1901]`` (``-nn``), ``8086:1901`` (``-n``),
  ``Vendor Device 1901`` (a device ``pci.ids`` does not name), or the names
  mapped back through the bundled ``pci.ids`` subset *when the name is
  unambiguous* (:func:`~iommugroups._kernel.pci_ids.lookup_device_name`);
  otherwise the ids are recorded as unknown. A hex dump in the block
  (``lspci -vvvxxx``, or a second ``lspci -xxx`` block of the same device)
  gives the ids, class, header type and multifunction bit exactly.
* Header type: a ``Bus: primary=.., secondary=.., subordinate=..`` line
  (``lspci`` prints it for every PCI-PCI and CardBus bridge) makes the device
  a bridge with those bus numbers.
* Multifunction: ``lspci`` does not print the header-type bit. A function
  other than 0 is multifunction anyway (R5.6: the slot scan marks it); a
  function 0 is taken to be multifunction iff another (non-VF) function of its
  slot is in the input.
* PCIe: ``Express (v2) Root Port (Slot+)``, ``Downstream Port``, ``Upstream
  Port``, ``Endpoint``, ``Legacy Endpoint``, ``Root Complex Integrated
  Endpoint``, ``PCI-Express to PCI/PCI-X Bridge``, ``PCI/PCI-X to
  PCI-Express Bridge``, ``Root Complex Event Collector``.
* ACS: ``ACSCap:`` / ``ACSCtl:`` (``SrcValid TransBlk ReqRedir CmpltRedir
  UpstreamFwd EgressCtrl DirectTrans``, each ``+`` or ``-``).
* SR-IOV: ``IOVCtl: Enable+``, ``Initial VFs / Total VFs / Number of VFs``,
  ``VF offset / stride / Device ID``; a device at one of an enabled PF's VF
  routing ids is that PF's VF (vendor = the PF's, device = the VF Device ID).
* ``Kernel driver in use:``, ``IOMMU group: N`` / ``Flags: ..., IOMMU group N``.

Documented degradations
-----------------------
Each is an :class:`~iommugroups._kernel.reading.Unknown` in the reading, and the
fact is named in the function's ``unknown`` set; nothing is guessed.

=========================================  =====================================
Input                                      Unknown
=========================================  =====================================
``Capabilities: <access denied>`` (not     ``pcie``, ``acs`` (and ``sriov``)
root)
ACS capability listed without ``ACSCap``/  ``acs`` (grouping treats it as
``ACSCtl`` lines (``lspci -v``)            absent, which can only merge)
``Status: Cap+`` but no capability line    ``pcie``, ``acs`` (a capability
and no ``Kernel driver`` line after them   pointer of 0 looks the same)
a device header with no verbose lines      ``config`` (``pcie``, ``acs``;
(plain ``lspci``, ``-k``, a cut paste)     ``bus-numbers`` for a bridge class)
SR-IOV capability without its details      ``sriov``
a name ``pci.ids`` does not resolve to     ``ids``: the ids all candidates share
exactly one vendor/device pair             are kept, the others read 0xffff;
                                           when every candidate has the same
                                           entries in the kernel's quirk tables
                                           the lowest pair stands for them, so
                                           the quirks still apply
a class name not in ``pci.ids``            ``class``
a device without ``IOMMU group`` when      ``group``
others have one (the AMD IOMMU itself)
a bridge whose secondary bus is 0          ``bus-numbers`` (not configured)
``!!! Unknown header type``                ``config``; the device is left out,
                                           as the kernel ignores it
=========================================  =====================================

Tolerance, and where it stops
-----------------------------
Real pastes are mangled by mail clients, so the reader accepts: tabs turned
into spaces or non-breaking spaces (indentation is any whitespace), lines
wrapped by the mail client (a non-indented line inside a device block that is
neither a device header nor a hex row continues the line before it when that
one ends in a space or is long enough to have been wrapped), text before the
first device and between blocks (mail prose, command lines, ``lspci -t``
trees, ``dmesg``; a blank line, or any other non-indented line, ends a
block), the same device shown twice (``lspci -vvv -s X`` then
``lspci -xxx -s X``: merged, and every fact must agree), ``<?>`` and every
decoding line the reader does not need.

It never guesses: a line that starts like a fact the grouping needs but does
not parse (an ``ACSCap:`` line missing a bit, a ``Bus:`` line cut short, an
``IOMMU group:`` that is not a number), a verbose line orphaned outside any
device block (a blank line inside a block), two blocks of one device that
disagree, a hex dump that contradicts the text, an inconsistent topology, or
input with no device at all is an :class:`~iommugroups._errors.InputError`
naming the file and line.
"""

from __future__ import annotations

import re

import attrs

from .._errors import ConfigSpaceError, InputError, InvalidAddress
from .._kernel.config import ConfigSpace, decode_config
from .._kernel.groups import Grouping
from .._kernel.model import (
    HEADER_BRIDGE,
    HEADER_CARDBUS,
    HEADER_NORMAL,
    Acs,
    AcsFlags,
    PciAddress,
    PcieType,
    PciFunction,
    SriovCapability,
)
from .._kernel.pci_ids import lookup_class_name, lookup_device_name, subsystem_decides_quirk
from .._kernel.reading import Reading, Unknown
from .lspci_common import (
    HEADER_RE,
    HEX,
    MAX_DEVICES,
    MIXED_IDS_RE,
    NUM_IDS_RE,
    ODD_SPACE,
    check_description,
    check_length,
    reading_unknowns,
    show,
    split_suffixes,
    topology_of,
)
from .platform_facts import text_hints, with_platform
from .root_buses import with_missing_bridges

__all__ = ["looks_like_lspci_text", "read_lspci_text"]

#: Upper bound on SR-IOV VF positions examined (hostile input).
_VF_BUDGET = 1 << 20

#: A hex-dump row: offset, colon (``00:`` / ``000:``).
_HEXROW_START_RE = re.compile(rf"[{HEX}]{{2,3}}:(?:[ \t]|$)")
_HEXROW_RE = re.compile(rf"(?P<off>[{HEX}]{{2,3}}):(?P<bytes>(?:[ \t]+[{HEX}]{{2}}){{16}})[ \t]*$")

# --- verbose lines ------------------------------------------------------------
_VERBOSE_KEY_RE = re.compile(
    r"(?:Subsystem|Control|Status|Flags|Capabilities|Kernel driver in use|Kernel modules"
    r"|IOMMU group|Bus|ACSCap|ACSCtl|Latency|Interrupt|Region \d|Expansion ROM|DeviceName"
    r"|NUMA node|Physical Slot|I/O behind bridge|Memory behind bridge"
    r"|Prefetchable memory behind bridge|Secondary status|BridgeCtl)\b"
)
_SUBSYS_RE = re.compile(r"Subsystem: (?P<name>.*)$")
_CONTROL_RE = re.compile(r"Control: I/O[+-] ")
_STATUS_RE = re.compile(r"Status: Cap(?P<cap>[+-]) ")
_FLAGS_RE = re.compile(r"Flags: (?P<flags>.*\bdevsel\b.*)$")
_FLAGS_GROUP_RE = re.compile(r",\s*IOMMU group (?P<group>\S+)$")
_GROUP_PREFIX = "IOMMU group:"
_GROUP_RE = re.compile(r"IOMMU group: (?P<group>\d+)$")
_BUS_PREFIX = "Bus: primary="
_BUS_RE = re.compile(
    r"Bus: primary=(?P<pri>[0-9a-f]{2}), secondary=(?P<sec>[0-9a-f]{2}), "
    r"subordinate=(?P<sub>[0-9a-f]{2}), sec-latency=\d+$"
)
_CAP_RE = re.compile(r"Capabilities: \[(?P<off>[0-9a-f]{1,3})(?: v\d+)?\] (?P<what>.*)$")
_CAP_DENIED = "Capabilities: <access denied>"
_EXPRESS_RE = re.compile(
    r"Express (?:\(v\d+\) )?(?P<type>.+?)(?: \(Slot[+-]\))?"
    r"(?:, (?:MSI [0-9a-f]{2}|IntMsgNum \d+))?$"
)
_ACS_RE = re.compile(r"(?P<reg>ACSCap|ACSCtl): ?(?P<bits>.*)$")
_IOVCTL_RE = re.compile(r"IOVCtl: Enable(?P<en>[+-])")
_VFS_PREFIX = "Initial VFs:"
_VFS_RE = re.compile(
    r"Initial VFs: (?P<initial>\d+), Total VFs: (?P<total>\d+), "
    r"Number of VFs: (?P<num>\d+), Function Dependency Link: [0-9a-f]{2}$"
)
_VFOFF_PREFIX = "VF offset:"
_VFOFF_RE = re.compile(
    r"VF offset: (?P<offset>\d+), stride: (?P<stride>\d+), Device ID: (?P<did>[0-9a-f]{4})$"
)
_DRIVER_PREFIX = "Kernel driver in use:"
_DRIVER_RE = re.compile(r"Kernel driver in use: (?P<driver>\S+)$")
_BAD_HTYPE_RE = re.compile(r"!!! Unknown header type (?P<ht>[0-9a-f]{2})$")

#: ``ACSCap``/``ACSCtl`` bit names, as ``ls-ecaps.c`` prints them.
_ACS_BITS: dict[str, AcsFlags] = {
    "SrcValid": AcsFlags.SV,
    "TransBlk": AcsFlags.TB,
    "ReqRedir": AcsFlags.RR,
    "CmpltRedir": AcsFlags.CR,
    "UpstreamFwd": AcsFlags.UF,
    "EgressCtrl": AcsFlags.EC,
    "DirectTrans": AcsFlags.DT,
}

#: PCIe device/port types, as ``ls-caps.c`` ``cap_express`` prints them.
_PCIE_TYPES: dict[str, PcieType] = {
    "Endpoint": PcieType.ENDPOINT,
    "Legacy Endpoint": PcieType.LEG_END,
    "Root Port": PcieType.ROOT_PORT,
    "Upstream Port": PcieType.UPSTREAM,
    "Downstream Port": PcieType.DOWNSTREAM,
    "PCI-Express to PCI/PCI-X Bridge": PcieType.PCI_BRIDGE,
    "PCI/PCI-X Bridge": PcieType.PCI_BRIDGE,  # pciutils before 3.1
    "PCI/PCI-X to PCI-Express Bridge": PcieType.PCIE_BRIDGE,
    "Root Complex Integrated Endpoint": PcieType.RC_END,
    "Root Complex Event Collector": PcieType.RC_EC,
}

#: Standard capability ids by the words ``ls-caps.c`` starts their line with.
_STD_CAPS: tuple[tuple[str, int], ...] = (
    ("Power Management version", 0x01),
    ("AGP version", 0x02),
    ("Vital Product Data", 0x03),
    ("Slot ID", 0x04),
    ("MSI-X:", 0x11),
    ("MSI:", 0x05),
    ("CompactPCI hot-swap", 0x06),
    ("PCI-X", 0x07),
    ("HyperTransport", 0x08),
    ("Vendor Specific Information", 0x09),
    ("Debug port", 0x0A),
    ("CompactPCI central resource control", 0x0B),
    ("Hot-plug capable", 0x0C),
    ("Subsystem:", 0x0D),
    ("AGP3", 0x0E),
    ("Secure device", 0x0F),
    ("Express", 0x10),
    ("SATA HBA", 0x12),
    ("PCI Advanced Features", 0x13),
    ("Enhanced Allocation", 0x14),
)
_STD_CAP_UNKNOWN_RE = re.compile(r"(?:#|Capability ID 0x)(?P<id>[0-9a-f]{2})\b")

# --- header ------------------------------------------------------------------
_NUM_CLASS_RE = re.compile(r"(?:Class )?(?P<cls>[0-9a-f]{4})$")
_NAMED_CLASS_RE = re.compile(r"(?P<name>.*) \[(?P<cls>[0-9a-f]{4})\]$")

_BRIDGE_CLASSES = frozenset({0x0604, 0x0607, 0x0609})


@attrs.define
class _Line:
    """A logical line: text (wrapped continuations joined) and where it started."""

    number: int
    text: str


@attrs.define
class _Block:
    """One device block as it appears in the text."""

    path: str  # the address or -P/-PP path, as printed
    header: _Line
    details: list[_Line] = attrs.field(factory=list)
    hexrows: dict[int, bytes] = attrs.field(factory=dict)


@attrs.define
class _Facts:
    """What one or more blocks say about one device."""

    address: PciAddress
    line: int
    lines: list[int]
    class16: int | None = None
    class_why: str | None = None
    progif: int | None = None
    vendor: int | None = None
    device: int | None = None
    ids_why: str | None = None
    ids_exact: bool = False  # numeric ids (-n/-nn or a hex dump)
    ids_matters: bool = False  # the grouping may depend on which ids the name stands for
    subsys: tuple[int, int] | None = None
    verbose: int = 0  # 2: -vv lines seen, 1: -v "Flags:" seen
    cap_list: bool | None = None
    access_denied: bool = False
    caps: set[int] = attrs.field(factory=set)
    caps_unrecognised: bool = False
    chain_broken: bool = False
    pcie: PcieType | None = None
    pcie_why: str | None = None
    acs_seen: bool = False
    acs_cap: AcsFlags | None = None
    acs_ctl: AcsFlags | None = None
    sriov_seen: bool = False
    iov_enabled: bool | None = None
    vfs: tuple[int, int] | None = None  # (total, num)
    vf_layout: tuple[int, int, int] | None = None  # (offset, stride, device id)
    bus: tuple[int, int, int] | None = None
    group: int | None = None
    driver: str | None = None
    bad_header_type: int | None = None
    hex_header: bytes | None = None
    hex_rows: dict[int, bytes] = attrs.field(factory=dict)
    revision: int | None = None
    rev_shown: bool = False  # "(rev xx)" printed (lspci omits it for 00)
    tail_seen: bool = False  # a line lspci prints after the capabilities


#: A line this long (or ending in a space) may have been wrapped by a mail client.
_WRAP_MIN = 60
#: A message of ``lspci``'s library on standard error, interleaved in a paste.
_PCILIB_RE = re.compile(r"pcilib: ")
#: A detail line of a device block, by its content (``Subsystem: ...``,
#: ``Capabilities: [40] ...``, ``LnkSta:``, ``Kernel driver in use: ...``).
_DETAIL_KEY_RE = re.compile(r"[A-Za-z][A-Za-z0-9/()#+_. -]{0,40}?:(?:[ \t]|$)")


def _logical_lines(text: str, path: str) -> list[tuple[str, _Line]]:
    """Classify lines: ``("header"|"hex"|"detail"|"junk"|"blank"|"pcilib"|"stripped", line)``.

    Inside a block, a line at column 0 that is not a header is told apart by
    its content:

    * a hex row (an offset and 16 bytes) is a hex row;
    * ``pcilib: ...`` (lspci's library writing to standard error, which the
      paste interleaved) is skipped, and does not end the block;
    * a line that starts like an ``lspci`` detail (``Key: ...``) is a detail
      line whose leading tab was stripped (a mail archive); once a block has
      one, any other line continues the line before it (lspci's own
      multi-line values lost their indentation too);
    * otherwise it continues the previous line if that one looks wrapped (it
      ends in a space, as format=flowed mail leaves it, or it is at least
      ``_WRAP_MIN`` characters long): a device name wrapped onto the next
      line (``... Renoir Device`` / ``24: Function 0``) is joined back.

    Any other line at column 0 ends the block, like a blank line.
    """
    check_length(text, path)
    if text.startswith("\ufeff"):
        text = text[1:]
    out: list[tuple[str, _Line]] = []
    in_block = seen_header = untabbed = False
    previous = ""  # the last physical line of the current logical line
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r").translate(ODD_SPACE)
        if not line.strip():
            out.append(("blank", _Line(number, "")))
            in_block = False
            continue
        if not line[0].isspace():
            m = HEADER_RE.match(line)
            if m:
                out.append(("header", _Line(number, line)))
                in_block = seen_header = True
                untabbed = False
                previous = line
                continue
            if in_block and _HEXROW_RE.fullmatch(line):
                out.append(("hex", _Line(number, line)))
                previous = ""
                continue
            if in_block and _PCILIB_RE.match(line):
                out.append(("pcilib", _Line(number, line)))
                continue
            kind, last = out[-1] if out else ("", _Line(0, ""))
            for back in range(len(out) - 1, -1, -1):  # markers and pcilib lines do not count
                if out[back][0] not in ("pcilib", "stripped"):
                    kind, last = out[back]
                    break
            if in_block and kind in ("header", "detail") and _DETAIL_KEY_RE.match(line):
                out.append(("detail", _Line(number, line)))
                if not untabbed:
                    untabbed = True
                    out.append(("stripped", _Line(number, line)))
                previous = line
                continue
            wrapped = previous[-1:].isspace() or len(previous) >= _WRAP_MIN
            if in_block and kind in ("header", "detail") and (wrapped or untabbed):
                last.text = last.text + ("" if previous[-1:].isspace() else " ") + line
                previous = line
                continue
            if in_block and _HEXROW_START_RE.match(line):
                raise InputError(
                    path,
                    f"malformed hex dump row (expected an offset and 16 bytes): "
                    f"{show(line.strip())}",
                    number,
                )
            out.append(("junk", _Line(number, line)))
            in_block = False
            continue
        if in_block:
            if _PCILIB_RE.match(line.lstrip()):
                out.append(("pcilib", _Line(number, line.strip())))
                continue
            out.append(("detail", _Line(number, line)))
            previous = line
            continue
        stripped = " ".join(line.split())
        # Only an error once a device has been seen: before the first header
        # anything may be mail prose or another command's output.
        if seen_header and _VERBOSE_KEY_RE.match(stripped):
            raise InputError(
                path,
                f"lspci detail line outside a device block (a blank line inside a "
                f"block?): {show(stripped)}",
                line=number,
            )
        out.append(("junk", _Line(number, line)))
    return out


def _blocks(text: str, path: str, notes: list[Unknown] | None = None) -> list[_Block]:
    blocks: list[_Block] = []
    block: _Block | None = None
    for kind, ln in _logical_lines(text, path):
        if kind == "pcilib":
            if notes is not None:
                where = f" (in the block of {block.path})" if block is not None else ""
                notes.append(
                    Unknown(
                        "",
                        "paste",
                        f"line {ln.number}: lspci's standard error interleaved{where}, "
                        f"skipped: {show(ln.text.strip())}",
                    )
                )
            continue
        if kind == "stripped":
            if notes is not None and not any(
                n.fact == "paste" and "indentation" in n.why for n in notes
            ):
                notes.append(
                    Unknown(
                        "",
                        "paste",
                        f"line {ln.number}: detail lines without their leading tabs (a mail "
                        "archive stripped them): told from device headers by their content",
                    )
                )
            continue
        if kind == "header":
            m = HEADER_RE.match(ln.text)
            assert m is not None
            if len(blocks) >= MAX_DEVICES:
                raise InputError(
                    path, f"more than {MAX_DEVICES} devices; refusing the input", ln.number
                )
            block = _Block(m["addr"].lower(), ln)
            blocks.append(block)
        elif kind == "detail":
            assert block is not None
            block.details.append(ln)
        elif kind == "hex":
            assert block is not None
            m = _HEXROW_RE.fullmatch(ln.text)
            if m is None:
                raise InputError(
                    path,
                    f"malformed hex dump row (expected an offset and 16 bytes): "
                    f"{show(ln.text.strip())}",
                    ln.number,
                )
            off = int(m["off"], 16)
            if off % 16 or off >= 4096:
                raise InputError(path, f"hex dump offset {off:#x} is not a row offset", ln.number)
            data = bytes.fromhex(m["bytes"])
            if block.hexrows.get(off, data) != data:
                raise InputError(
                    path, f"hex dump row {off:#05x} given twice, differently", ln.number
                )
            block.hexrows[off] = data
        else:
            if kind == "blank":
                block = None
    if not blocks:
        raise InputError(
            path,
            "no lspci device found (expected lines like '00:1c.0 PCI bridge: Intel "
            "Corporation ...' at the start of a line)",
        )
    return blocks


def _parse_header(facts: _Facts, rest: str, path: str, line: int) -> None:
    check_description(rest, path, line)
    rest = " ".join(rest.split())
    cls, sep, desc = rest.partition(": ")
    if not sep:
        raise InputError(path, f"device header without 'class: vendor device': {show(rest)}", line)
    # class
    m = _NUM_CLASS_RE.fullmatch(cls) or _NAMED_CLASS_RE.fullmatch(cls)
    if m:
        facts.class16 = int(m["cls"], 16)
    else:
        code = lookup_class_name(cls)
        if code is None:
            facts.class_why = f"class name {show(cls)} is not in pci.ids"
        else:
            facts.class16 = code
    desc, progif, revision = split_suffixes(desc)
    facts.progif = progif
    facts.revision = revision if revision is not None else 0  # lspci omits "(rev 00)"
    facts.rev_shown = revision is not None
    # ids
    m = NUM_IDS_RE.fullmatch(desc) or MIXED_IDS_RE.fullmatch(desc)
    if m:
        facts.vendor, facts.device = int(m["v"], 16), int(m["d"], 16)
        facts.ids_exact = True
        return
    if desc.endswith("..."):
        facts.ids_why = f"name {show(desc)} was truncated by lspci"
        facts.ids_matters = True
        return
    found = lookup_device_name(desc)
    facts.vendor, facts.device, facts.ids_why = found.vendor, found.device, found.why
    facts.ids_matters = found.matters


def _parse_acs_bits(bits: str, path: str, line: int, reg: str) -> AcsFlags:
    flags = AcsFlags.NONE
    seen: set[str] = set()
    for tok in bits.split():
        name, sign = tok[:-1], tok[-1:]
        if name not in _ACS_BITS or sign not in "+-" or name in seen:
            raise InputError(path, f"{reg}: unexpected {show(tok)} in {show(bits)}", line)
        seen.add(name)
        if sign == "+":
            flags |= _ACS_BITS[name]
    missing = [n for n in _ACS_BITS if n not in seen]
    if missing:
        raise InputError(
            path, f"{reg} line lacks {', '.join(missing)} (cut or wrapped?): {show(bits)}", line
        )
    return flags


def _set(facts: _Facts, field: str, value: object, what: str, path: str, line: int) -> None:
    old = getattr(facts, field)
    if old is not None and old != value:
        raise InputError(
            path, f"device {facts.address}: two different {what} ({old!r} and {value!r})", line
        )
    setattr(facts, field, value)


def _parse_details(facts: _Facts, block: _Block, path: str) -> None:
    current_cap = ""  # what the last "Capabilities:" line was
    for ln in block.details:
        s = " ".join(ln.text.split())
        n = ln.number
        if s.startswith("Capabilities:"):
            if s == _CAP_DENIED:
                facts.access_denied = True
                current_cap = ""
                continue
            m = _CAP_RE.fullmatch(s)
            if m is None:
                raise InputError(path, f"malformed capability line: {show(s)}", n)
            off, what = int(m["off"], 16), m["what"]
            current_cap = what
            if what.startswith("<chain"):
                facts.chain_broken = True
                continue
            if off < 0x100:
                for prefix, cap_id in _STD_CAPS:
                    if what.startswith(prefix):
                        facts.caps.add(cap_id)
                        break
                else:
                    um = _STD_CAP_UNKNOWN_RE.match(what)
                    if um:
                        facts.caps.add(int(um["id"], 16))
                    else:
                        facts.caps_unrecognised = True
                if what.startswith("Express"):
                    em = _EXPRESS_RE.fullmatch(what)
                    kind = _PCIE_TYPES.get(em["type"]) if em else None
                    if kind is None:
                        if em and em["type"].startswith("Unknown type"):
                            facts.pcie_why = f"reserved PCIe device/port type: {show(what)}"
                            continue
                        raise InputError(path, f"unknown PCIe port type in {show(s)}", n)
                    _set(facts, "pcie", kind, "PCIe port types", path, n)
            elif what.startswith("Access Control Services"):
                facts.acs_seen = True
            elif what.startswith("Single Root I/O Virtualization"):
                facts.sriov_seen = True
            continue
        if s.startswith(("ACSCap", "ACSCtl")):
            m = _ACS_RE.fullmatch(s)
            if m is None or not current_cap.startswith("Access Control Services"):
                raise InputError(
                    path, f"{s[:6]} line outside an Access Control Services capability", n
                )
            reg = m["reg"]
            flags = _parse_acs_bits(m["bits"], path, n, reg)
            _set(facts, "acs_cap" if reg == "ACSCap" else "acs_ctl", flags, reg, path, n)
            continue
        if current_cap.startswith("Single Root I/O Virtualization"):
            if s.startswith("IOVCtl:"):
                m = _IOVCTL_RE.match(s)
                if m is None:
                    raise InputError(path, f"malformed IOVCtl line: {show(s)}", n)
                _set(facts, "iov_enabled", m["en"] == "+", "IOVCtl enables", path, n)
                continue
            if s.startswith(_VFS_PREFIX):
                m = _VFS_RE.fullmatch(s)
                if m is None:
                    raise InputError(path, f"malformed SR-IOV line: {show(s)}", n)
                _set(facts, "vfs", (int(m["total"]), int(m["num"])), "VF counts", path, n)
                continue
            if s.startswith(_VFOFF_PREFIX):
                m = _VFOFF_RE.fullmatch(s)
                if m is None:
                    raise InputError(path, f"malformed SR-IOV line: {show(s)}", n)
                layout = (int(m["offset"]), int(m["stride"]), int(m["did"], 16))
                _set(facts, "vf_layout", layout, "VF layouts", path, n)
                continue
        if s.startswith(_BUS_PREFIX):
            m = _BUS_RE.fullmatch(s)
            if m is None:
                raise InputError(path, f"malformed bridge bus line: {show(s)}", n)
            bus = (int(m["pri"], 16), int(m["sec"], 16), int(m["sub"], 16))
            _set(facts, "bus", bus, "bridge bus numbers", path, n)
            continue
        if s.startswith(_GROUP_PREFIX):
            m = _GROUP_RE.fullmatch(s)
            if m is None or len(m["group"]) > 9:
                raise InputError(path, f"malformed IOMMU group line: {show(s)}", n)
            _set(facts, "group", int(m["group"]), "IOMMU groups", path, n)
            facts.verbose = max(facts.verbose, 2)
            continue
        if s.startswith(_DRIVER_PREFIX):
            m = _DRIVER_RE.fullmatch(s)
            if m is None:
                raise InputError(path, f"malformed driver line: {show(s)}", n)
            _set(facts, "driver", m["driver"], "drivers", path, n)
            facts.tail_seen = True
            continue
        if s.startswith("Kernel modules:"):
            facts.tail_seen = True
            continue
        if _CONTROL_RE.match(s):
            facts.verbose = max(facts.verbose, 2)
            continue
        m = _STATUS_RE.match(s)
        if m:
            facts.verbose = max(facts.verbose, 2)
            _set(facts, "cap_list", m["cap"] == "+", "capability-list bits", path, n)
            continue
        m = _FLAGS_RE.match(s)
        if m and not current_cap:
            facts.verbose = max(facts.verbose, 1)
            gm = _FLAGS_GROUP_RE.search(m["flags"])
            if gm:
                if not gm["group"].isdigit() or len(gm["group"]) > 9:
                    raise InputError(path, f"malformed IOMMU group in {show(s)}", n)
                _set(facts, "group", int(gm["group"]), "IOMMU groups", path, n)
            elif "IOMMU group" in m["flags"]:
                raise InputError(path, f"malformed IOMMU group in {show(s)}", n)
            continue
        m = _SUBSYS_RE.match(s)
        if m and not current_cap:
            ids = NUM_IDS_RE.fullmatch(m["name"]) or MIXED_IDS_RE.fullmatch(m["name"])
            if ids:
                sub = (int(ids["v"], 16), int(ids["d"], 16))
                _set(facts, "subsys", sub, "subsystem ids", path, n)
            continue
        m = _BAD_HTYPE_RE.fullmatch(s)
        if m:
            facts.bad_header_type = int(m["ht"], 16)
            continue
        if s == "<access denied to the rest>":
            facts.access_denied = True
            continue


def _apply_hex(facts: _Facts, block: _Block, path: str) -> None:
    row = block.hexrows.get(0)
    if row is None:
        return
    vendor = row[0] | row[1] << 8
    device = row[2] | row[3] << 8
    class16 = row[10] | row[11] << 8
    line = block.header.number
    if facts.ids_exact and (facts.vendor, facts.device) != (vendor, device):
        raise InputError(
            path,
            f"device {facts.address}: the hex dump reads ids {vendor:04x}:{device:04x}, the "
            f"text says {facts.vendor:04x}:{facts.device:04x}",
            line,
        )
    if facts.class16 is not None and facts.class16 != class16:
        raise InputError(
            path,
            f"device {facts.address}: the hex dump reads class {class16:04x}, the text says "
            f"{facts.class16:04x}",
            line,
        )
    if facts.rev_shown and facts.revision != row[8]:
        raise InputError(
            path,
            f"device {facts.address}: the hex dump reads revision {row[8]:02x}, the text says "
            f"{facts.revision:02x}",
            line,
        )
    facts.vendor, facts.device, facts.ids_exact, facts.ids_why = vendor, device, True, None
    facts.class16, facts.class_why = class16, None
    facts.progif = row[9]
    facts.revision, facts.rev_shown = row[8], True
    _set(facts, "hex_header", bytes(row), "hex dumps", path, line)
    for off, data in block.hexrows.items():
        if facts.hex_rows.get(off, data) != data:
            raise InputError(path, f"device {facts.address}: hex row {off:03x} given twice", line)
        facts.hex_rows[off] = data


#: Facts two blocks of one device must agree on, and how errors name them.
_MERGED_FIELDS: tuple[tuple[str, str], ...] = (
    ("class16", "classes"),
    ("bus", "bridge bus numbers"),
    ("group", "IOMMU groups"),
    ("driver", "drivers"),
    ("pcie", "PCIe port types"),
    ("acs_cap", "ACSCap values"),
    ("acs_ctl", "ACSCtl values"),
    ("subsys", "subsystem ids"),
    ("iov_enabled", "IOVCtl enables"),
    ("vfs", "VF counts"),
    ("vf_layout", "VF layouts"),
    ("cap_list", "capability-list bits"),
    ("hex_header", "hex dumps"),
)


def _merge(into: _Facts, other: _Facts, path: str, line: int) -> None:
    """Fold a second block of the same device into the first; facts must agree."""
    for field, what in _MERGED_FIELDS:
        value = getattr(other, field)
        if value is not None:
            _set(into, field, value, what, path, line)
    if other.ids_exact:
        if into.ids_exact and (into.vendor, into.device) != (other.vendor, other.device):
            raise InputError(
                path,
                f"device {into.address}: two different ids ({into.vendor:04x}:"
                f"{into.device:04x} and {other.vendor:04x}:{other.device:04x})",
                line,
            )
        into.vendor, into.device, into.ids_exact, into.ids_why = (
            other.vendor,
            other.device,
            True,
            None,
        )
    elif not into.ids_exact and into.ids_why is not None and other.ids_why is None:
        into.vendor, into.device, into.ids_why = other.vendor, other.device, None
        into.ids_matters = False
    if into.class_why is not None and other.class16 is not None:
        into.class_why = None
    if other.progif is not None:
        into.progif = other.progif
    if other.rev_shown and into.rev_shown:
        _set(into, "revision", other.revision, "revisions", path, line)
    elif other.rev_shown or (other.revision is not None and into.revision is None):
        into.revision, into.rev_shown = other.revision, other.rev_shown
    for off, data in other.hex_rows.items():
        if into.hex_rows.get(off, data) != data:
            raise InputError(path, f"device {into.address}: hex row {off:03x} given twice", line)
        into.hex_rows[off] = data
    into.verbose = max(into.verbose, other.verbose)
    into.access_denied |= other.access_denied
    into.caps |= other.caps
    into.caps_unrecognised |= other.caps_unrecognised
    into.chain_broken |= other.chain_broken
    into.acs_seen |= other.acs_seen
    into.sriov_seen |= other.sriov_seen
    into.tail_seen |= other.tail_seen
    if other.pcie_why and not into.pcie_why:
        into.pcie_why = other.pcie_why
    if other.bad_header_type is not None:
        into.bad_header_type = other.bad_header_type
    into.lines.extend(other.lines)


def _resolve_addresses(blocks: list[_Block], facts_of: list[_Facts | None], path: str) -> None:
    """Give every block its address; ``-P`` paths need their parent's secondary bus."""
    by_path: dict[str, int] = {}
    for i, b in enumerate(blocks):
        by_path.setdefault(b.path, i)
    resolving: set[int] = set()

    def resolve(i: int) -> PciAddress:
        b = blocks[i]
        done = facts_of[i]
        if done is not None:
            return done.address
        line = b.header.number
        parts = b.path.split("/")
        try:
            if len(parts) == 1 or ":" in parts[-1]:
                last = parts[-1]
                if len(parts) > 1:
                    first = PciAddress.parse(parts[0])
                    return PciAddress.parse(f"{first.domain:04x}:{last}")
                return PciAddress.parse(last)
        except InvalidAddress as exc:
            raise InputError(path, str(exc), line) from None
        parent_path = "/".join(parts[:-1])
        j = by_path.get(parent_path)
        if j is None or j == i or j in resolving:
            raise InputError(
                path,
                f"cannot place {b.path}: its bridge {parent_path} is not in the input",
                line,
            )
        resolving.add(i)
        parent = resolve(j)
        resolving.discard(i)
        pb = _bridge_bus(blocks[j], path)
        if pb is None:
            raise InputError(
                path,
                f"cannot place {b.path}: bridge {parent_path} shows no 'Bus:' line",
                line,
            )
        try:
            return PciAddress.parse(f"{parent.domain:04x}:{pb:02x}:{parts[-1]}")
        except InvalidAddress as exc:
            raise InputError(path, str(exc), line) from None

    for i in range(len(blocks)):
        address = resolve(i)
        facts_of[i] = _Facts(address, blocks[i].header.number, [blocks[i].header.number])


def _bridge_bus(block: _Block, path: str) -> int | None:
    for ln in block.details:
        s = " ".join(ln.text.split())
        if s.startswith(_BUS_PREFIX):
            m = _BUS_RE.fullmatch(s)
            if m is None:
                raise InputError(path, f"malformed bridge bus line: {show(s)}", ln.number)
            return int(m["sec"], 16)
    return None


def read_lspci_text(text: str, path: str = "<string>") -> Reading:
    """Read ``lspci -v``/``-vv``/``-vvv`` (any ``-n``/``-nn``/``-D``/``-P``) text.

    Args:
        text: the text (pasted, wrapped, with junk around it: see the module
            docstring for what is tolerated).
        path: where it came from, for error messages; a real path also names
            the topology (its stem).

    Returns:
        A :class:`~iommugroups._kernel.reading.Reading` with the topology, the
        kernel's groups when the text shows them (``observed``), and the
        facts it could not establish (``unknowns``).

    Raises:
        InputError: malformed input (see the module docstring).

    >>> text = '''
    ... 00:1c.0 PCI bridge [0604]: Intel Corporation Device [8086:a110] (rev f1)
    ... \\tControl: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping-
    ... \\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort-
    ... \\tIOMMU group: 7
    ... \\tBus: primary=00, secondary=02, subordinate=02, sec-latency=0
    ... \\tCapabilities: [40] Express (v2) Root Port (Slot+), MSI 00
    ... \\tCapabilities: [140 v1] Access Control Services
    ... \\tACSCap: SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-
    ... \\tACSCtl: SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-
    ...
    ... 02:00.0 Ethernet controller [0200]: Intel Corporation I211 [8086:1539] (rev 03)
    ... \\tControl: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping-
    ... \\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort-
    ... \\tIOMMU group: 8
    ... \\tCapabilities: [70] Express (v2) Endpoint, MSI 00
    ... '''
    >>> r = read_lspci_text(text)
    >>> rp = r.topology.get("00:1c.0")
    >>> rp.pcie_type.name, rp.acs.ctrl.names(), rp.secondary_bus
    ('ROOT_PORT', 'SV|RR|CR|UF', 2)
    >>> dict(r.observed.groups)
    {7: ('0000:00:1c.0',), 8: ('0000:02:00.0',)}
    """
    paste_notes: list[Unknown] = []
    blocks = _blocks(text, path, paste_notes)
    facts_of: list[_Facts | None] = [None] * len(blocks)
    _resolve_addresses(blocks, facts_of, path)
    merged: dict[PciAddress, _Facts] = {}
    for block, facts in zip(blocks, facts_of, strict=True):
        assert facts is not None
        header = HEADER_RE.match(block.header.text)
        assert header is not None
        _parse_header(facts, header["rest"], path, block.header.number)
        _parse_details(facts, block, path)
        _apply_hex(facts, block, path)
        first = merged.get(facts.address)
        if first is None:
            merged[facts.address] = facts
        else:
            _merge(first, facts, path, block.header.number)
    return _build(list(merged.values()), text, path, paste_notes)


def _sriov(facts: _Facts, num_vfs: int) -> SriovCapability:
    """The SR-IOV capability ``facts`` show, with ``num_vfs`` VFs enabled."""
    assert facts.vfs is not None
    assert facts.vf_layout is not None
    offset, stride, vf_device = facts.vf_layout
    return SriovCapability(
        total_vfs=facts.vfs[0],
        num_vfs=num_vfs,
        offset=offset,
        stride=stride,
        vf_device=vf_device,
    )


def _hex_function(f: _Facts, path: str) -> PciFunction | None:
    """The function its hex dump shows, when the dump goes past the 64-byte header.

    ``lspci -vvv -xxx`` (256 bytes) or ``-xxxx`` (4096) appends the raw
    configuration space; it is decoded like an ``lspci -xxxx`` dump
    (:func:`~iommugroups._kernel.config.decode_config`), so every byte is used.
    """
    if len(f.hex_rows) <= 4 or f.hex_rows.get(0) is None:
        return None
    try:
        return decode_config(f.address, ConfigSpace.from_chunks(f.hex_rows))
    except (ConfigSpaceError, ValueError):
        return None  # the header facts were already checked; a VF reads 0xffff


def _reconcile(
    f: _Facts, dec: PciFunction, values: dict[str, object], unknown: set[str], path: str
) -> None:
    if f.acs_seen and dec.acs is None and "acs" not in dec.unknown:
        raise InputError(
            path,
            f"device {f.address}: the text lists an Access Control Services capability, the "
            "hex dump has none",
            f.line,
        )
    """Fold what the hex dump decodes into the text's facts; they must agree.

    A fact the text does not show (``lspci -v`` prints no ACS bits) is taken
    from the dump; a fact both show must be the same.
    """
    checks = (
        ("pcie_type", "pcie", "PCIe port type"),
        ("acs", "acs", "ACS capability"),
        ("sriov", "sriov", "SR-IOV capability"),
    )
    for field, fact, what in checks:
        if fact in dec.unknown:
            continue
        value = getattr(dec, field)
        if fact in unknown:
            values[field] = value
            unknown.discard(fact)
            continue
        text_value = values.get(field)
        if field == "sriov" and text_value is not None and value is not None:
            assert isinstance(value, SriovCapability)
            assert isinstance(text_value, SriovCapability)
            same = (value.total_vfs, value.offset, value.stride, value.vf_device) == (
                text_value.total_vfs,
                text_value.offset,
                text_value.stride,
                text_value.vf_device,
            )
        else:
            same = text_value == value or (field == "sriov" and text_value is None)
        if not same:
            raise InputError(
                path,
                f"device {f.address}: the hex dump reads {what} {value!r}, the text says "
                f"{text_value!r}",
                f.line,
            )
        if field == "sriov" and text_value is None:
            values[field] = value
    if dec.is_bridge and values.get("secondary_bus") is None and "bus-numbers" in unknown:
        pass  # not configured: the text already said so
    elif dec.is_bridge and values.get("secondary_bus") is None and f.bus is None:
        values["secondary_bus"], values["subordinate_bus"] = (
            dec.secondary_bus,
            dec.subordinate_bus,
        )
    if "subsystem" in unknown and "subsystem" not in dec.unknown:
        values["subsys"] = (dec.subsystem_vendor, dec.subsystem_device)
        unknown.discard("subsystem")
    shown = values.get("capabilities")
    assert isinstance(shown, frozenset)
    values["capabilities"] = shown | dec.capabilities
    unknown.discard("capabilities")


def _build(
    all_facts: list[_Facts], text: str, path: str, paste_notes: list[Unknown] | None = None
) -> Reading:
    unknowns: list[Unknown] = list(paste_notes or ())
    facts_list: list[_Facts] = []
    for f in all_facts:
        if f.bad_header_type is not None:
            unknowns.append(
                Unknown(
                    str(f.address),
                    "config",
                    f"lspci: unknown header type {f.bad_header_type:02x} (line {f.line}); the "
                    "kernel ignores such a device, so it is left out",
                )
            )
            continue
        facts_list.append(f)
    by_addr = {f.address: f for f in facts_list}

    # --- SR-IOV: which functions are VFs of which PF ------------------------
    vf_of: dict[PciAddress, tuple[_Facts, int]] = {}
    budget = _VF_BUDGET
    for pf in facts_list:
        if not pf.sriov_seen:
            continue
        if pf.vfs is None or pf.vf_layout is None or pf.iov_enabled is None:
            unknowns.append(
                Unknown(
                    str(pf.address),
                    "sriov",
                    f"SR-IOV capability shown without its VF layout (line {pf.line}): "
                    "functions of this device's VFs cannot be recognised",
                )
            )
            continue
        if not pf.iov_enabled:
            continue
        total, num = pf.vfs
        offset, stride, _did = pf.vf_layout
        num = min(num, total)
        if num == 0 or offset == 0 or (stride == 0 and num > 1):
            continue
        enabled = _sriov(pf, num)
        for i in range(num):
            budget -= 1
            if budget < 0:
                raise InputError(path, "SR-IOV capabilities place too many VFs", pf.line)
            vf_addr = enabled.vf_address(pf.address, i)
            if vf_addr is None:
                break  # past bus 0xff, and so are the VFs after it
            if vf_addr in by_addr and vf_addr != pf.address:
                other = vf_of.get(vf_addr)
                if other is not None and other[0] is not pf:
                    raise InputError(
                        path,
                        f"{vf_addr} is a VF of both {other[0].address} and {pf.address}",
                        by_addr[vf_addr].line,
                    )
                vf_of[vf_addr] = (pf, i)

    # --- slots, for the multifunction bit ------------------------------------
    slots: dict[tuple[int, int, int], int] = {}
    for f in facts_list:
        if f.address not in vf_of:
            key = (f.address.domain, f.address.bus, f.address.device)
            slots[key] = slots.get(key, 0) + 1

    any_group = any(f.group is not None for f in facts_list)
    functions: list[PciFunction] = []
    lines: dict[PciAddress, int] = {}
    for f in facts_list:
        name = str(f.address)
        lines[f.address] = f.line
        unknown: set[str] = set()

        def note(fact: str, why: str, name: str = name, unknown: set[str] = unknown) -> None:
            unknown.add(fact)
            unknowns.append(Unknown(name, fact, why))

        vendor, device = f.vendor, f.device
        vf = vf_of.get(f.address)
        physfn = None
        if vf is not None:
            pf, _index = vf
            assert pf.vf_layout is not None
            vf_device = pf.vf_layout[2]
            if f.ids_exact and vendor != 0xFFFF and (vendor, device) != (pf.vendor, vf_device):
                raise InputError(
                    path,
                    f"{f.address} sits at a VF position of {pf.address} but its ids "
                    f"{vendor:04x}:{device:04x} are not the PF's vendor and VF Device ID",
                    f.line,
                )
            physfn = pf.address
            vendor, device = pf.vendor, vf_device
            if pf.ids_why is not None:
                note("ids", f"its PF's ids are unknown: {pf.ids_why}")
        elif f.ids_why is not None and f.ids_matters:
            note("ids", f.ids_why)
            # R2.5: a quirk of one candidate, not of another, decides its ACS:
            # the verdict must not rest on either (no false split).
            note(
                "acs",
                "whether a kernel ACS quirk applies depends on which of the ids its name "
                "stands for",
            )
        elif f.ids_why is not None:
            unknown.add("ids")  # shown as ????; the grouping is the same for each
            unknowns.append(Unknown(name, "name", f.ids_why))
        elif vendor == 0xFFFF:
            note("ids", "vendor id reads ffff and no PF's SR-IOV capability places a VF here")

        class16 = f.class16
        if class16 is None:
            note("class", f.class_why or "class not shown")
        class_code = ((class16 or 0) << 8) | (f.progif or 0)

        # header type, bus numbers, multifunction
        hx = f.hex_header
        secondary = subordinate = None
        if hx is not None:
            header_type = hx[14] & 0x7F
            multifunction = bool(hx[14] & 0x80)
            if header_type not in (HEADER_NORMAL, HEADER_BRIDGE, HEADER_CARDBUS):
                unknowns.append(
                    Unknown(name, "config", f"header type {header_type:#04x}; left out")
                )
                continue
        else:
            slot_count = slots.get((f.address.domain, f.address.bus, f.address.device), 0)
            multifunction = physfn is None and (f.address.function != 0 or slot_count > 1)
            if f.bus is not None:
                header_type = HEADER_CARDBUS if class16 == 0x0607 else HEADER_BRIDGE
            else:
                header_type = HEADER_NORMAL
        if physfn is not None:
            multifunction = False
        if f.bus is not None:
            _pri, sec, sub = f.bus
            if sec == 0 or sec <= f.address.bus:
                note(
                    "bus-numbers",
                    f"bridge bus numbers secondary={sec:02x}, subordinate={sub:02x} "
                    "(not configured)",
                )
            else:
                secondary, subordinate = sec, sub
        elif class16 in _BRIDGE_CLASSES and hx is None:
            # lspci prints a "Bus:" line for every PCI-PCI and CardBus bridge: a
            # verbose block without one was cut, or the line was lost.
            note(
                "bus-numbers",
                f"a bridge (class {class16:04x}) whose 'Bus:' line is not shown"
                + (" (lspci prints one for every bridge: the block is cut?)" if f.verbose else ""),
            )
            header_type = HEADER_BRIDGE

        # capabilities
        pcie = f.pcie
        acs: Acs | None = None
        sriov: SriovCapability | None = None
        if f.access_denied:
            why = "capabilities not readable ('<access denied>': lspci not run as root)"
            if pcie is None:
                note("pcie", why)
            note("acs", why)
            unknown.add("sriov")
        elif f.verbose == 0 and not f.caps:
            why = "no configuration lines shown for this device"
            note("config", why)
            unknown.update(("pcie", "acs", "sriov"))
        else:
            if f.pcie_why is not None:
                note("pcie", f.pcie_why)
            elif f.chain_broken and pcie is None:
                note("pcie", "capability chain broken before a PCIe capability")
            elif f.cap_list and not f.caps and not f.tail_seen:
                note(
                    "pcie",
                    "'Status: Cap+' but no capability line and no 'Kernel driver' line "
                    "after them: the block may be cut",
                )
            if f.acs_seen:
                if f.acs_cap is not None and f.acs_ctl is not None:
                    acs = Acs(f.acs_cap, f.acs_ctl)
                else:
                    note(
                        "acs",
                        "ACS capability listed without its ACSCap/ACSCtl lines"
                        + (" (lspci -v)" if f.verbose < 2 else ""),
                    )
            elif f.acs_cap is not None or f.acs_ctl is not None:
                raise InputError(path, "ACS bits without an ACS capability", f.line)
            elif f.chain_broken or (f.cap_list and not f.caps and not f.tail_seen):
                note("acs", "capability list not (fully) shown")
            if f.sriov_seen and f.vfs is not None and f.vf_layout is not None:
                total, num = f.vfs
                offset, stride, _did = f.vf_layout
                if total and offset and (stride or num <= 1) and num <= 0xFFFF:
                    try:
                        sriov = _sriov(f, min(num, total) if f.iov_enabled else 0)
                    except ValueError as exc:  # pragma: no cover - attrs has no validators
                        raise InputError(path, str(exc), f.line) from None
            elif f.sriov_seen:
                unknown.add("sriov")
        if f.caps_unrecognised:
            unknown.add("capabilities")
        subsys_seen = f.subsys
        caps = frozenset(f.caps)
        dec = _hex_function(f, path)
        if dec is not None:
            values: dict[str, object] = {
                "pcie_type": pcie,
                "acs": acs,
                "sriov": sriov,
                "secondary_bus": secondary,
                "subordinate_bus": subordinate,
                "subsys": subsys_seen,
                "capabilities": caps,
            }
            before = set(unknown)
            if f.subsys is None:
                unknown.add("subsystem")
            _reconcile(f, dec, values, unknown, path)
            pcie = values["pcie_type"]  # type: ignore[assignment]
            acs = values["acs"]  # type: ignore[assignment]
            sriov = values["sriov"]  # type: ignore[assignment]
            secondary = values["secondary_bus"]  # type: ignore[assignment]
            subordinate = values["subordinate_bus"]  # type: ignore[assignment]
            subsys_seen = values["subsys"]  # type: ignore[assignment]
            caps = values["capabilities"]  # type: ignore[assignment]
            learned = before - unknown
            if learned:
                unknowns[:] = [u for u in unknowns if not (u.device == name and u.fact in learned)]
        if physfn is not None:
            sriov = None
        subsys = subsys_seen or (0, 0)
        if subsys_seen is None:
            unknown.add("subsystem")
            if (
                vendor is not None
                and device is not None
                and subsystem_decides_quirk(vendor, device)
            ):
                note("subsystem", "subsystem ids decide a DMA-alias quirk for this device")
        if any_group and f.group is None:
            unknowns.append(Unknown(name, "group", "no IOMMU group shown for this device"))
        try:
            functions.append(
                PciFunction(
                    f.address,
                    vendor=0xFFFF if vendor is None else vendor,
                    device=0xFFFF if device is None else device,
                    class_code=class_code,
                    header_type=header_type,
                    multifunction=multifunction,
                    pcie_type=pcie,
                    acs=acs,
                    physfn=physfn,
                    sriov=sriov,
                    driver=f.driver,
                    secondary_bus=secondary,
                    subordinate_bus=subordinate,
                    subsystem_vendor=subsys[0],
                    subsystem_device=subsys[1],
                    unknown=unknown,
                    capabilities=caps,
                    revision=f.revision,
                )
            )
        except (ValueError, TypeError) as exc:
            raise InputError(path, f"device {f.address}: {exc}", f.line) from None

    topology = topology_of(functions, lines, path)
    hints = text_hints(text)
    topology, platform_notes = with_platform(topology, hints=hints)
    unknowns.extend(platform_notes)
    topology, bridge_notes = with_missing_bridges(topology)
    unknowns.extend(bridge_notes)
    observed = None
    if any_group:
        groups: dict[int, list[str]] = {}
        for f in facts_list:
            if f.group is not None and f.address in topology:
                groups.setdefault(f.group, []).append(str(f.address))
        source = "lspci-vv" if any(f.verbose >= 2 for f in facts_list) else "lspci-v"
        observed = Grouping(
            groups={g: tuple(sorted(m)) for g, m in sorted(groups.items())}, source=source
        )
    level = max((f.verbose for f in facts_list), default=0)
    return Reading(
        topology=topology,
        observed=observed,
        **reading_unknowns(unknowns),
        source=("lspci", "lspci-v", "lspci-vv")[level],
        path=path,
        kernel=hints.kernel,
    )


def looks_like_lspci_text(text: str) -> bool:
    """Does ``text`` hold ``lspci`` device blocks (not just a hex dump)?

    True when a device header (``00:1c.0 PCI bridge: ...``) appears at the
    start of a line within the first 400 lines and its block is not made of
    hex rows only (that is an ``lspci -x`` dump: see
    :func:`~iommugroups._io.lspci_hex.looks_like_lspci_hex`, which should be
    tried first, as it gives the whole configuration space). Text before the
    first header is allowed.

    >>> looks_like_lspci_text("00:1c.0 PCI bridge: Intel Corporation Device a110\\n\\tBus: pri")
    True
    >>> looks_like_lspci_text("0000:00:1c.0 0604: 8086:a110\\n000: " + "00 " * 16)
    False
    """
    header_seen = False
    hexrows = verbose = 0
    for count, raw in enumerate(text.lstrip("\ufeff").split("\n", 400)):
        if count >= 400:
            break
        line = raw.rstrip("\r").translate(ODD_SPACE)
        if not header_seen:
            m = HEADER_RE.match(line)
            if m and ": " in m["rest"]:
                header_seen = True
            continue
        if not line.strip():
            break
        if HEADER_RE.match(line):
            if hexrows:
                break
            verbose += 1
            continue
        if _HEXROW_RE.fullmatch(line):
            hexrows += 1
        elif line[0].isspace():
            verbose += 1
    return header_seen and (verbose > 0 or hexrows == 0)
