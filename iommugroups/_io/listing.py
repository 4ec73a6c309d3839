"""Read the IOMMU groups a real kernel made, from the texts people paste.

Three families of text report a machine's groups; each reader returns a
:class:`~iommugroups._kernel.reading.Reading` whose ``observed`` is an
:class:`~iommugroups._kernel.reading.Grouping` (and no topology):

* **Group listings** (:func:`read_listing`, source ``"listing"``), in every
  form the well-known shell loops over ``/sys/kernel/iommu_groups`` print:

  - a header line, then one indented line per device (``lspci -nns``
    output, or the short form the oracle captures use)::

        IOMMU Group 1:
        \t00:01.0 PCI bridge [0604]: Intel Corporation ... [8086:1901] (rev 05)
        \t01:00.0 [0300]: [10de:1c82]

  - one line per device, or one line per group::

        IOMMU Group 1 00:01.0 PCI bridge [0604]: Intel Corporation ...
        IOMMU Group 2: 00:01.0 00:01.1 01:00.0

  - ``find /sys/kernel/iommu_groups/ -type l`` and
    ``ls /sys/kernel/iommu_groups/*/devices``::

        /sys/kernel/iommu_groups/7/devices/0000:00:1c.0
        /sys/kernel/iommu_groups/7/devices:
        0000:00:1c.0  0000:02:00.0

  Text mangled by mail clients is expected: a device line wrapped onto the
  next line(s) (the continuation is skipped), non-breaking spaces as
  indentation, prose around the listing. A text may hold several listings
  (a bug report comparing two kernels): prose between them separates them.
  :func:`read_listings` returns each; :func:`read_listing` merges them when
  they agree and refuses them when they put one device in two groups.

* ``lspci -vmm`` **output** (:func:`read_vmm`, source ``"lspci-vmm"``):
  ``Slot:`` and ``IOMMUGroup:`` lines per device block.

* **Kernel logs** (:func:`read_dmesg`, source ``"dmesg"``): the
  ``<driver or bus> <dev>: Adding to iommu group N`` and ``Removing from iommu
  group N`` lines (R1.4), with or without timestamps (``dmesg``, ``dmesg -T``,
  syslog, ``journalctl -k``), and the format before Linux 5.1, ``iommu:
  Adding device <dev> to group N``. The result's ``log`` holds the lines in
  kernel order, which gives the probe order and the drivers; removals are
  applied to the groups. Recent kernels print no line when a device is
  hot-removed (the release path stopped calling
  ``iommu_group_remove_device``, around v6.5; a 6.18 log in the tests shows
  it): a device added again is taken to have been removed first
  (``unknowns`` says so when its group changed). A text holding several
  boots (timestamps that restart, a second ``Linux version`` banner) is split:
  :func:`read_dmesg_boots` returns each boot, :func:`read_dmesg` the last
  one, saying so in ``unknowns``.

PCI devices named without a domain (``00:1c.0``) are in domain ``0000``;
every PCI name is normalised to ``dddd:bb:dd.f``. Other device names
(platform devices such as ``HISI0162:01``) are kept as written.

Every reader refuses malformed input with
:class:`~iommugroups._errors.InputError` naming the line, and only with it.
These readers take text; reading files is :mod:`iommugroups._io.load`'s job.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs

from .._errors import InputError, InvalidAddress
from .._kernel.groups import Grouping, LogLine, device_sort_key
from .._kernel.model import PciAddress
from .._kernel.reading import Reading, Unknown

__all__ = [
    "MAX_TEXT_CHARS",
    "looks_like_dmesg",
    "looks_like_listing",
    "looks_like_vmm",
    "read_dmesg",
    "read_dmesg_boots",
    "read_listing",
    "read_listings",
    "read_observed",
    "read_vmm",
]


def __dir__() -> list[str]:
    return __all__


#: Texts longer than this many characters (64 MiB of ASCII) are refused.
MAX_TEXT_CHARS = 64 * 1024 * 1024
#: Group ids above this are refused (the kernel's IDA hands out ``int`` ids).
_MAX_GROUP_ID = 2**31 - 1
#: How much of the text the ``looks_like_*`` functions search for NUL bytes.
_BINARY_PROBE = 8192

_ADDR = r"(?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]"
#: A device as listings name it: an address, or an ``lspci -PP`` path of them.
_DEV_PATH = rf"{_ADDR}(?:/{_ADDR})*"
_DEV_PATH_RE = re.compile(rf"^{_DEV_PATH}$")
_GID = r"[0-9]{1,12}"

#: ``IOMMU Group N``, optional colon, then nothing or what follows.
_HEADER_RE = re.compile(
    rf"^\s*IOMMU\s+Group\s+(?P<gid>{_GID})(?=[\s:]|$)\s*:?(?P<rest>.*)$", re.IGNORECASE
)
#: ``find /sys/kernel/iommu_groups -type l``: one path per device.
_FIND_RE = re.compile(rf"^\s*\S*?iommu_groups/(?P<gid>{_GID})/devices/(?P<dev>[^/\s]+)\s*$")
#: ``ls /sys/kernel/iommu_groups/*/devices``: a directory header, names below.
_LS_HEADER_RE = re.compile(rf"^\s*\S*?iommu_groups/(?P<gid>{_GID})/devices/?:\s*$")
#: A device line inside a listing: address (or path) first.
_DEVICE_LINE_RE = re.compile(rf"^\s*(?P<dev>{_DEV_PATH})(?=\s|$)")

#: New-format log line (R1.4): prefix preceded by the start, a space or ``]``.
#: (Bounded names keep a search over a hostile, very long line linear.)
_ADD_RE = re.compile(
    r"(?:^|(?<=[\s\]]))(?P<prefix>[^\s\[\]]{1,64}) (?P<dev>[^\s:][^\s]{0,127}): "
    rf"(?P<action>Adding to|Removing from) iommu group (?P<gid>{_GID})\s*$"
)
#: Old-format log line, before Linux 5.1 (R1.4).
_OLD_RE = re.compile(
    r"(?:^|(?<=[\s\]]))iommu: (?P<action>Adding|Removing) device (?P<dev>\S{1,128}) "
    rf"(?:to|from) group (?P<gid>{_GID})\s*$"
)
#: A numeric ``printk`` timestamp, ``[   13.688527]``.
_TIMESTAMP_RE = re.compile(r"\[\s*(?P<ts>[0-9]{1,10}\.[0-9]{1,9})\]")
#: The banner each boot's log starts with.
_BANNER_RE = re.compile(r"(?:^|[\s\]])Linux version (?P<release>\S+) \(")
#: A timestamp drop larger than this (seconds) starts a new boot.
_TIMESTAMP_SLACK = 1.0

_VMM_LINE_RE = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9_]{0,63}):(?P<value>.*)$")
_VMM_SLOT_RE = re.compile(rf"^Slot:[ \t]*{_DEV_PATH}[ \t]*$", re.MULTILINE)
_ANY_ADD_RE = re.compile(
    rf"(?:: (?:Adding to|Removing from) iommu group {_GID}"
    rf"|iommu: (?:Adding|Removing) device \S{{1,128}} (?:to|from) group {_GID})\s*$",
    re.MULTILINE,
)

_LOOKS_LINES = 400


# --- shared helpers ----------------------------------------------------------


def _check_text(text: str, path: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"expected text (str), got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(path, f"input larger than {MAX_TEXT_CHARS // (1024 * 1024)} MiB refused")
    nul = text.find("\0", 0, _BINARY_PROBE)
    if nul >= 0:
        raise InputError(path, f"binary data (NUL character at offset {nul}), not text")


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """``(1-based number, line)`` without line ends (``\\n``, ``\\r\\n``)."""
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), 1):
        yield number, line.rstrip("\r")


def _group_id(text: str, path: str, line: int) -> int:
    gid = int(text)
    if gid > _MAX_GROUP_ID:
        raise InputError(path, f"group id {text} is out of range", line)
    return gid


def _pci_name(text: str) -> str | None:
    """``dddd:bb:dd.f`` for an address or an ``lspci -PP`` path, else ``None``.

    A path names its last device; the domain, when given, is on its first.
    """
    if not _DEV_PATH_RE.match(text):
        return None
    parts = text.split("/")
    last = parts[-1]
    try:
        if last.count(":") == 1 and parts[0].count(":") == 2:
            last = f"{parts[0].split(':', 1)[0]}:{last}"
        return str(PciAddress.parse(last))
    except InvalidAddress:
        return None


def _device_name(text: str) -> str:
    """A PCI name normalised, any other name as it is."""
    return _pci_name(text) or text


def _unknowns(items: Iterable[Unknown]) -> Any:
    """``tuple(items)`` for ``Reading.unknowns``.

    Typed ``Any`` because the field's ``converter=tuple`` leaves mypy an
    unsolvable type variable (as ``_config._unknown`` explains).
    """
    return tuple(items)


def _sorted_groups(members: dict[int, list[str]]) -> dict[int, tuple[str, ...]]:
    return {
        gid: tuple(sorted(dict.fromkeys(devs), key=device_sort_key))
        for gid, devs in sorted(members.items())
        if devs
    }


# --- group listings ----------------------------------------------------------


@attrs.frozen
class _Listing:
    """One listing: where it starts, device -> (group, line), notes."""

    line: int
    member_of: dict[str, tuple[int, int]]
    groups: dict[int, list[str]]
    unknowns: list[Unknown]


class _ListingParser:
    """The line classifier and state machine behind :func:`read_listings`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.listings: list[_Listing] = []
        self.current: _Listing | None = None
        #: the group whose device lines may follow (``None``: none may)
        self.open_group: int | None = None
        #: the open group's header line, and whether a device followed it
        self.open_line = 0
        self.open_filled = False
        #: ``ls`` form: the lines below the header are bare names
        self.open_names = False
        #: the previous non-blank line was a device line or its continuation
        self.after_device = False
        self.blank_since = False
        #: prose was seen since the last listing line: a new listing starts
        self.prose_since = True

    def listing(self, line: int) -> _Listing:
        if self.current is None or self.prose_since:
            self.current = _Listing(line, {}, {}, [])
            self.listings.append(self.current)
            self.prose_since = False
        return self.current

    def add(self, gid: int, name: str, line: int) -> None:
        cur = self.listing(line)
        seen = cur.member_of.get(name)
        if seen is not None and seen[0] != gid:
            raise InputError(
                self.path,
                f"{name} is listed in IOMMU group {gid} and, on line {seen[1]}, in group "
                f"{seen[0]}: a device is in one group",
                line,
            )
        if seen is None:
            cur.member_of[name] = (gid, line)
            cur.groups.setdefault(gid, []).append(name)

    def close_group(self) -> None:
        if self.open_group is not None and not self.open_filled and self.current is not None:
            self.current.unknowns.append(
                Unknown(
                    "",
                    "group",
                    f"line {self.open_line}: IOMMU group {self.open_group} lists no devices",
                )
            )
        self.open_group = None
        self.open_names = False

    def open(self, gid: int, line: int, *, names: bool = False) -> None:
        self.close_group()
        self.listing(line).groups.setdefault(gid, [])
        self.open_group, self.open_line, self.open_filled = gid, line, False
        self.open_names = names
        self.after_device = False
        self.blank_since = False

    def feed(self, number: int, line: str) -> None:
        if not line.strip():
            self.blank_since = True
            self.after_device = False
            if self.open_names:
                self.close_group()
            return
        header = _HEADER_RE.match(line)
        if header is not None and self.header(number, header):
            return
        found = _FIND_RE.match(line)
        if found is not None:
            self.close_group()
            self.add(
                _group_id(found["gid"], self.path, number), _device_name(found["dev"]), number
            )
            self.after_device = False
            self.blank_since = False
            return
        ls_header = _LS_HEADER_RE.match(line)
        if ls_header is not None:
            self.open(_group_id(ls_header["gid"], self.path, number), number, names=True)
            return
        if self.open_group is not None and self.open_names:
            for token in line.split():
                self.add(self.open_group, _device_name(token), number)
            self.open_filled = True
            return
        device = _DEVICE_LINE_RE.match(line)
        if device is not None and self.open_group is not None and not self.blank_since:
            name = _pci_name(device["dev"])
            if name is not None:
                self.add(self.open_group, name, number)
                self.open_filled = True
                self.after_device = True
                return
        if self.after_device and not self.blank_since:
            return  # a device line wrapped by a mail client
        # Prose: it ends the listing, if one is open.
        self.close_group()
        self.after_device = False
        self.prose_since = True

    def header(self, number: int, m: re.Match[str]) -> bool:
        """Handle an ``IOMMU Group N`` line; ``False`` if it is prose after all."""
        rest = m["rest"].strip()
        tokens = rest.split()
        names = [_pci_name(t) for t in tokens]
        if tokens and names[0] is None:
            return False  # "IOMMU Group 29 is the one with ..."
        gid = _group_id(m["gid"], self.path, number)
        if not tokens:
            self.open(gid, number)
            return True
        self.close_group()
        members = (
            [n for n in names if n is not None] if all(n is not None for n in names) else names[:1]
        )
        for name in members:
            assert name is not None
            self.add(gid, name, number)
        # An ``lspci`` description may be wrapped onto the next line.
        self.after_device = True
        self.blank_since = False
        return True

    def finish(self) -> list[_Listing]:
        self.close_group()
        return self.listings


def _listing_reading(listing: _Listing, path: str) -> Reading:
    return Reading(
        observed=Grouping(_sorted_groups(listing.groups), source="listing"),
        unknowns=_unknowns(listing.unknowns),
        source="listing",
        path=path,
    )


def _parse_listings(text: str, path: str) -> list[_Listing]:
    _check_text(text, path)
    parser = _ListingParser(path)
    for number, line in _lines(text):
        parser.feed(number, line)
    listings: list[_Listing] = []
    pending: list[Unknown] = []  # notes of listings that hold no device
    for lst in parser.finish():
        if any(lst.groups.values()):
            lst.unknowns[:0] = pending
            pending = []
            listings.append(lst)
        else:
            pending.extend(lst.unknowns)
    if listings:
        listings[-1].unknowns.extend(pending)
    else:
        raise InputError(
            path,
            "no IOMMU group listing found (expected 'IOMMU Group N:' lines with devices, "
            "or /sys/kernel/iommu_groups/N/devices/... paths)",
        )
    return listings


def read_listings(text: str, path: str = "<string>") -> tuple[Reading, ...]:
    """Every group listing in ``text``, in order (prose separates listings).

    Args:
        text: the text (see the module documentation for the forms).
        path: where it came from, for error messages and ``Reading.path``.

    Raises:
        InputError: no listing, one listing putting a device in two groups,
            a group id out of range, or binary or oversized text.

    >>> text = "5.8:\\nIOMMU Group 1:\\n\\t00:1c.0\\n\\n5.9:\\nIOMMU Group 1: 00:1c.0 00:1c.4\\n"
    >>> [dict(r.observed.groups) for r in read_listings(text)]
    [{1: ('0000:00:1c.0',)}, {1: ('0000:00:1c.0', '0000:00:1c.4')}]
    """
    return tuple(_listing_reading(lst, path) for lst in _parse_listings(text, path))


def read_listing(text: str, path: str = "<string>") -> Reading:
    """The groups a listing reports (several agreeing listings are merged).

    Args:
        text: the text (see the module documentation for the forms).
        path: where it came from, for error messages and ``Reading.path``.

    Raises:
        InputError: no listing, a device in two groups (also across
            listings: use :func:`read_listings` to read a text comparing two
            kernels), a group id out of range, or binary or oversized text.

    >>> r = read_listing("IOMMU Group 0:\\n\\t00:00.0 [0600]: [8086:29c0]\\n"
    ...                  "IOMMU Group 1 00:01.0 PCI bridge [0604]: Intel [8086:1901]\\n")
    >>> dict(r.observed.groups)
    {0: ('0000:00:00.0',), 1: ('0000:00:01.0',)}
    """
    return _merged_reading(_parse_listings(text, path), path)


def _merged_reading(listings: list[_Listing], path: str) -> Reading:
    """:func:`read_listing` of listings already parsed."""
    if len(listings) == 1:
        return _listing_reading(listings[0], path)
    merged = _Listing(listings[0].line, {}, {}, [])
    for lst in listings:
        for name, (gid, line) in lst.member_of.items():
            seen = merged.member_of.get(name)
            if seen is not None and seen[0] != gid:
                starts = ", ".join(str(x.line) for x in listings)
                raise InputError(
                    path,
                    f"{name} is in IOMMU group {gid} here and in group {seen[0]} on line "
                    f"{seen[1]}: the text holds {len(listings)} listings (starting on lines "
                    f"{starts}) that disagree; read them one by one (read_listings) or cut "
                    "out the one you mean",
                    line,
                )
            if seen is None:
                merged.member_of[name] = (gid, line)
                merged.groups.setdefault(gid, []).append(name)
        merged.unknowns.extend(lst.unknowns)
    return _listing_reading(merged, path)


def _agree(listings: Sequence[_Listing]) -> bool:
    """No device is in two different groups across ``listings``."""
    seen: dict[str, int] = {}
    for lst in listings:
        for name, (gid, _line) in lst.member_of.items():
            if seen.setdefault(name, gid) != gid:
                return False
    return True


def looks_like_listing(text: str) -> bool:
    """Does ``text`` hold an ``IOMMU Group N`` listing (in its first lines)?

    >>> looks_like_listing("IOMMU Group 3:\\n\\t00:1c.0 [0604]: [8086:a110]\\n")
    True
    >>> looks_like_listing("pci 0000:00:1c.0: Adding to iommu group 3\\n")
    False
    """
    if not isinstance(text, str) or "\0" in text[:_BINARY_PROBE]:
        return False
    expect_device = expect_names = False
    for count, (_number, line) in enumerate(_lines(text)):
        if count >= _LOOKS_LINES:
            break
        if _FIND_RE.match(line):
            return True
        m = _HEADER_RE.match(line)
        if m is not None:
            first = m["rest"].split()[:1]
            if first and _pci_name(first[0]) is not None:
                return True
            expect_device = not first
            expect_names = False
            continue
        if expect_names and line.strip():
            return True
        if expect_device and _DEVICE_LINE_RE.match(line):
            return True
        expect_device = False
        expect_names = bool(_LS_HEADER_RE.match(line))
    return False


# --- lspci -vmm --------------------------------------------------------------


def read_vmm(text: str, path: str = "<string>") -> Reading:
    """The groups ``lspci -vmm`` reports in its ``IOMMUGroup:`` lines.

    A device block without an ``IOMMUGroup:`` line is in no group (the
    kernel gave it none, e.g. the AMD IOMMU's own function); it is named in
    ``unknowns``. Without any such line (IOMMU off, or a pciutils too old to
    print groups) ``observed`` is ``None``.

    Args:
        text: the output of ``lspci -vmm`` (``-D``, ``-nn``, ``-k`` allowed).
        path: where it came from, for error messages and ``Reading.path``.

    Raises:
        InputError: no ``Slot:`` line, a device given twice with different
            groups, a malformed ``IOMMUGroup:`` value, or binary or oversized
            text.

    >>> r = read_vmm("Slot:\\t00:02.0\\nClass:\\tVGA compatible controller\\nIOMMUGroup:\\t0\\n")
    >>> dict(r.observed.groups)
    {0: ('0000:00:02.0',)}
    """
    _check_text(text, path)
    groups: dict[int, list[str]] = {}
    member_of: dict[str, tuple[int, int]] = {}
    ungrouped: dict[str, int] = {}
    slots = 0

    def finish(name: str | None, gid: int | None, line: int) -> None:
        if name is None:
            return
        if gid is None:
            if name not in member_of:
                ungrouped.setdefault(name, line)
            return
        seen = member_of.get(name)
        if seen is not None and seen[0] != gid:
            raise InputError(
                path,
                f"{name} has IOMMUGroup {gid} here and {seen[0]} on line {seen[1]}",
                line,
            )
        if seen is None:
            member_of[name] = (gid, line)
            groups.setdefault(gid, []).append(name)
            ungrouped.pop(name, None)

    name: str | None = None
    gid: int | None = None
    first_key = True
    block_line = 0
    for number, line in _lines(text):
        if not line.strip():
            finish(name, gid, block_line)
            name, gid, first_key = None, None, True
            continue
        m = _VMM_LINE_RE.match(line)
        if m is None:
            first_key = False
            continue
        key, value = m["key"], m["value"].strip()
        if key == "Slot" or (key == "Device" and first_key and name is None):
            slot = _pci_name(value)
            if slot is not None:
                if name is not None:  # two devices without a blank line between
                    finish(name, gid, block_line)
                    gid = None
                name, block_line = slot, number
                slots += 1
            elif key == "Slot":
                raise InputError(path, f"Slot: {value[:40]!r} is not a PCI address", number)
        elif key == "IOMMUGroup":
            if not re.fullmatch(_GID, value):
                raise InputError(path, f"IOMMUGroup: {value[:40]!r} is not a group number", number)
            gid = _group_id(value, path, number)
        first_key = False
    finish(name, gid, block_line)
    if slots == 0:
        raise InputError(path, "no 'Slot:' lines: not 'lspci -vmm' output")
    unknowns = [
        Unknown(dev, "group", f"line {line}: no IOMMUGroup line (the kernel gave it no group)")
        for dev, line in sorted(ungrouped.items(), key=lambda kv: device_sort_key(kv[0]))
    ]
    if not groups:
        note = Unknown(
            "",
            "group",
            "no device has an IOMMUGroup line: the IOMMU is off, or this pciutils "
            "does not print groups",
        )
        return Reading(unknowns=_unknowns([note]), source="lspci-vmm", path=path)
    return Reading(
        observed=Grouping(_sorted_groups(groups), source="lspci-vmm"),
        unknowns=_unknowns(unknowns),
        source="lspci-vmm",
        path=path,
    )


def looks_like_vmm(text: str) -> bool:
    """Is ``text`` ``lspci -vmm`` output (a ``Slot:`` line, near the start)?

    >>> looks_like_vmm("Slot:\\t0000:00:00.0\\nClass:\\tHost bridge\\nIOMMUGroup:\\t1\\n")
    True
    """
    if not isinstance(text, str) or "\0" in text[:_BINARY_PROBE]:
        return False
    head = "\n".join(line for _number, line in itertools.islice(_lines(text), _LOOKS_LINES))
    return bool(_VMM_SLOT_RE.search(head))


# --- kernel logs -------------------------------------------------------------


@attrs.define
class _Boot:
    """One boot's log lines while a kernel log is read."""

    line: int
    why: str = ""
    kernel: str | None = None
    log: list[LogLine] = attrs.Factory(list)
    member_of: dict[str, int] = attrs.Factory(dict)
    members: dict[int, list[str]] = attrs.Factory(dict)
    unknowns: list[Unknown] = attrs.Factory(list)
    old_format: bool = False


def _parse_log_line(line: str) -> tuple[LogLine, bool] | None:
    """The :class:`LogLine` in a kernel log line, and whether it is old-format."""
    if "group" not in line:
        return None
    m = _ADD_RE.search(line)
    if m is not None:
        action = "add" if m["action"] == "Adding to" else "remove"
        return LogLine(m["prefix"], _device_name(m["dev"]), int(m["gid"]), action), False
    m = _OLD_RE.search(line)
    if m is not None:
        action = "add" if m["action"] == "Adding" else "remove"
        return LogLine("", _device_name(m["dev"]), int(m["gid"]), action), True
    return None


def _parse_boots(text: str, path: str) -> list[_Boot]:
    _check_text(text, path)
    boots: list[_Boot] = []
    boot = _Boot(1)
    last_ts: float | None = None

    def new_boot(number: int, why: str) -> _Boot:
        nonlocal boot
        boots.append(boot)
        boot = _Boot(number, why)
        return boot

    for number, line in _lines(text):
        banner = _BANNER_RE.search(line) if "Linux version" in line else None
        ts_match = _TIMESTAMP_RE.search(line) if "[" in line else None
        ts = float(ts_match["ts"]) if ts_match is not None else None
        if banner is not None:
            if boot.log:
                new_boot(number, "a second 'Linux version' banner")
            boot.kernel = banner["release"]
        elif (
            ts is not None and last_ts is not None and ts + _TIMESTAMP_SLACK < last_ts and boot.log
        ):
            new_boot(number, f"timestamps restart ({last_ts:g} s, then {ts:g} s)")
        if ts is not None:
            last_ts = ts
        parsed = _parse_log_line(line)
        if parsed is None:
            continue
        entry, old = parsed
        if entry.group > _MAX_GROUP_ID:
            raise InputError(path, f"group id {entry.group} is out of range", number)
        boot.old_format |= old
        boot.log.append(entry)
        if entry.action == "add":
            before = boot.member_of.get(entry.device)
            if before is not None:  # hot-removed without a line, then added again
                boot.members[before].remove(entry.device)
                if before != entry.group:
                    boot.unknowns.append(
                        Unknown(
                            entry.device,
                            "group",
                            f"line {number}: added to group {entry.group}, but it was in "
                            f"group {before} and the log shows no removal (hot-plugged "
                            "again? recent kernels log no removal)",
                        )
                    )
            boot.member_of[entry.device] = entry.group
            boot.members.setdefault(entry.group, []).append(entry.device)
            continue
        current = boot.member_of.pop(entry.device, None)
        if current is None:
            boot.unknowns.append(
                Unknown(
                    entry.device,
                    "group",
                    f"line {number}: removed from group {entry.group}, which the log "
                    "never shows it joining",
                )
            )
            continue
        if current != entry.group:
            boot.unknowns.append(
                Unknown(
                    entry.device,
                    "group",
                    f"line {number}: removed from group {entry.group}, but it had "
                    f"joined group {current}",
                )
            )
        boot.members[current].remove(entry.device)
    boots.append(boot)
    boots = [b for b in boots if b.log]
    if not boots:
        raise InputError(
            path,
            "no 'Adding to iommu group' lines (the IOMMU is off, or this is not a kernel log)",
        )
    return boots


def _boot_reading(boot: _Boot, path: str, extra: Iterable[Unknown] = ()) -> Reading:
    unknowns = list(boot.unknowns)
    if boot.old_format:
        unknowns.append(
            Unknown(
                "",
                "driver",
                "old-format log lines ('iommu: Adding device ... to group N', before "
                "Linux 5.1) do not name the driver or bus: their prefix is empty",
            )
        )
    unknowns.extend(extra)
    return Reading(
        observed=Grouping(_sorted_groups(boot.members), log=tuple(boot.log), source="dmesg"),
        unknowns=_unknowns(unknowns),
        source="dmesg",
        path=path,
        kernel=boot.kernel,
    )


def read_dmesg_boots(text: str, path: str = "<string>") -> tuple[Reading, ...]:
    """Every boot's groups in a kernel log, in order.

    A new boot starts at a ``Linux version`` banner, or where ``[seconds]``
    timestamps drop by more than a second.

    Raises:
        InputError: no ``Adding to iommu group`` line, a group id out of
            range, or binary or oversized text.

    >>> log = '''[ 15.2] pcieport 000a:10:00.0: Adding to iommu group 8
    ... [ 84.3] mlx5_core 000a:11:00.2: Adding to iommu group 8
    ... [ 20.7] pcieport 000a:10:00.0: Adding to iommu group 6'''
    >>> [dict(r.observed.groups) for r in read_dmesg_boots(log)]
    [{8: ('000a:10:00.0', '000a:11:00.2')}, {6: ('000a:10:00.0',)}]
    """
    return tuple(_boot_reading(b, path) for b in _parse_boots(text, path))


def read_dmesg(text: str, path: str = "<string>") -> Reading:
    """The groups of the last boot in a kernel log, with its log lines.

    ``observed.log`` holds the boot's ``Adding to`` / ``Removing from`` lines
    in order; ``observed.groups`` are the groups once every line is applied.
    When the text holds several boots, ``unknowns`` says so (use
    :func:`read_dmesg_boots` for all of them).

    Raises:
        InputError: no ``Adding to iommu group`` line, a group id out of
            range, or binary or oversized text.

    >>> r = read_dmesg("[    4.27] pci 0000:00:00.0: Adding to iommu group 0\\n"
    ...                "iommu: Adding device 0000:00:01.0 to group 1\\n")
    >>> dict(r.observed.groups)
    {0: ('0000:00:00.0',), 1: ('0000:00:01.0',)}
    >>> r.observed.log[0]
    LogLine(prefix='pci', device='0000:00:00.0', group=0, action='add')
    """
    boots = _parse_boots(text, path)
    last = boots[-1]
    extra = []
    if len(boots) > 1:
        extra.append(
            Unknown(
                "",
                "log",
                f"the text holds the logs of {len(boots)} boots; this is the last one, "
                f"from line {last.line} ({last.why}); read_dmesg_boots gives them all",
            )
        )
    return _boot_reading(last, path, extra)


def looks_like_dmesg(text: str) -> bool:
    """Does ``text`` hold an ``Adding to iommu group`` kernel log line?

    >>> looks_like_dmesg("[    7.3] pci 0000:00:00.0: Adding to iommu group 0\\n")
    True
    """
    if not isinstance(text, str) or "\0" in text[:_BINARY_PROBE]:
        return False
    for m in _ANY_ADD_RE.finditer(text, 0, MAX_TEXT_CHARS):
        start = text.rfind("\n", 0, m.start()) + 1
        if _parse_log_line(text[start : m.end()]) is not None:
            return True
    return False


# --- any of them -------------------------------------------------------------


def read_observed(text: str, path: str = "<string>") -> Reading:
    """Detect the format (``lspci -vmm``, listing, kernel log) and read it.

    Raises:
        InputError: none of these formats, or the reader's own errors.
    """
    _check_text(text, path)
    if looks_like_vmm(text):
        return read_vmm(text, path)
    if looks_like_listing(text):
        listings = _parse_listings(text, path)
        if len(listings) > 1 and not _agree(listings):
            # A bug report comparing kernels: the last listing, as for the
            # boots of a log (read_listings gives each).
            last = _listing_reading(listings[-1], path)
            starts = ", ".join(str(x.line) for x in listings)
            note = Unknown(
                "",
                "group",
                f"the text holds {len(listings)} listings that disagree (starting on lines "
                f"{starts}); this is the last one, from line {listings[-1].line}; "
                "read_listings gives them all",
            )
            return attrs.evolve(last, unknowns=(*last.unknowns, note))
        return _merged_reading(listings, path)  # parsed once
    if looks_like_dmesg(text):
        return read_dmesg(text, path)
    raise InputError(
        path,
        "no IOMMU groups found: not an 'IOMMU Group N' listing, 'lspci -vmm' output or a "
        "kernel log with 'Adding to iommu group' lines",
    )
