"""Validation of the JSON structures the readers share: group maps, names, log lines.

Captures (the oracle's x86 and arm64 ones), snapshots and scenario files
all hold a ``groups`` object (group number -> device names) and some a
``dmesg`` list. Each is checked here once, before it is used, so that any
problem is an :class:`~iommugroups._errors.InputError` naming the file and
the JSON path (``groups['7'][2]``), with what it quotes of the input cut to
a few dozen characters; never a ``TypeError`` from deep inside an analysis,
and never one listing silently winning over another.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._errors import InputError
from .._kernel.groups import LogLine, device_sort_key
from .._kernel.model import PciAddress

__all__ = [
    "MAX_GROUP_ID",
    "MAX_MEMBERS",
    "device_name",
    "group_id",
    "groups",
    "key",
    "log_lines",
    "name",
    "opt_text",
    "text_list",
]

#: The largest group number (the kernel's IDA hands out ``int`` ids).
MAX_GROUP_ID = 2**31 - 1
#: Group members read at most, over all groups.
MAX_MEMBERS = 4 * 65536
#: Longest string read where a short text is expected.
MAX_TEXT = 65536


def key(value: object) -> str:
    """A JSON key or value quoted for an error message, cut to 40 characters."""
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:40] + "...'"


def opt_text(value: object, where: str, path: str, limit: int = MAX_TEXT) -> str | None:
    """A string of at most ``limit`` characters, or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InputError(path, f"{where}: expected a string (at most {limit}) or null")
    return value


def name(value: object, where: str, path: str) -> str | None:
    """A name (a driver, a device): printable, no whitespace, 1-255 characters; or ``None``."""
    text = opt_text(value, where, path)
    if text is not None and not (
        0 < len(text) <= 255 and text.isprintable() and not any(c.isspace() for c in text)
    ):
        raise InputError(path, f"{where}: {key(text)} is not a name")
    return text


def device_name(value: object, where: str, path: str) -> str:
    """A device name: a PCI address (written ``dddd:bb:dd.f``) or another name."""
    text = name(value, where, path)
    if text is None:
        raise InputError(path, f"{where}: expected a device name, got null")
    try:
        return str(PciAddress.parse(text))
    except ValueError:
        return text


def group_id(value: object, where: str, path: str) -> int:
    """A group number: a non-negative integer, or its decimal digits (a JSON key)."""
    if isinstance(value, str) and 0 < len(value) <= 10 and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_GROUP_ID:
        raise InputError(path, f"{where}: {key(value)} is not a group number")
    return value


def groups(value: object, path: str, where: str = "groups") -> dict[int, tuple[str, ...]]:
    """A ``groups`` object: group number -> list of device names, each device in one group.

    Returns the groups in id order, each sorted (PCI addresses numerically),
    empty groups left out.

    Raises:
        InputError: not an object of lists of names, a group given twice, a
            device listed in two groups, or more than :data:`MAX_MEMBERS`
            members.
    """
    if not isinstance(value, Mapping):
        raise InputError(path, f"{where}: expected an object mapping group numbers to devices")
    out: dict[int, list[str]] = {}
    member_of: dict[str, int] = {}
    total = 0
    for k, members in value.items():
        here = f"{where}[{key(k)}]"
        gid = group_id(k, here, path)
        if gid in out:
            raise InputError(path, f"{here}: group {gid} is given twice")
        if not isinstance(members, list):
            raise InputError(path, f"{here}: expected a list of device names")
        total += len(members)
        if total > MAX_MEMBERS:
            raise InputError(path, f"{where}: more than {MAX_MEMBERS} members")
        names = out.setdefault(gid, [])
        for i, raw in enumerate(members):
            member = device_name(raw, f"{here}[{i}]", path)
            other = member_of.get(member)
            if other == gid:
                continue  # listed twice in one group: nothing is lost
            if other is not None:
                raise InputError(path, f"{here}: {member} is also in group {other}")
            member_of[member] = gid
            names.append(member)
    return {gid: tuple(sorted(out[gid], key=device_sort_key)) for gid in sorted(out) if out[gid]}


def text_list(value: object, path: str, where: str, limit: int = 1 << 22) -> tuple[str, ...]:
    """A list of strings (a kernel log's lines), at most ``limit`` of them."""
    if not isinstance(value, list) or len(value) > limit:
        raise InputError(path, f"{where}: expected a list of strings (at most {limit})")
    for i, item in enumerate(value):
        if not isinstance(item, str) or len(item) > MAX_TEXT:
            raise InputError(path, f"{where}[{i}]: expected a string (at most {MAX_TEXT})")
    return tuple(value)


def log_lines(lines: tuple[str, ...], path: str, where: str = "dmesg") -> tuple[LogLine, ...]:
    """The ``Adding to``/``Removing from iommu group`` lines among a log's lines (R1.4).

    Raises:
        InputError: a line names a group number too long to be one.
    """
    out: list[LogLine] = []
    for i, line in enumerate(lines):
        try:
            parsed = LogLine.parse(line)
        except ValueError as exc:  # a group number of thousands of digits
            raise InputError(path, f"{where}[{i}]: {str(exc)[:80]}") from None
        if parsed is not None:
            if parsed.group > MAX_GROUP_ID:
                raise InputError(path, f"{where}[{i}]: {parsed.group} is not a group number")
            out.append(parsed)
    return tuple(out)
