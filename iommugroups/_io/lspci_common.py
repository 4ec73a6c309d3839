"""What the ``lspci`` text readers share: limits, pasted whitespace, device descriptions.

:mod:`~iommugroups._io.lspci_verbose` (``lspci -v``/``-vv``/``-vvv``) and
:mod:`~iommugroups._io.lspci_tree` (``lspci -t``/``-tv``) read text people
paste. Both refuse inputs past the same limits, undo the same mail-client
whitespace, and read a device's description (``Vendor Device (rev 01)``,
``Vendor Device [8086:1539]``, ``8086:1539``) the same way.
:func:`shown_names` lists the descriptions a text holds, so that the bundled
``pci.ids`` subset can be built to resolve every one of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import PurePath
from typing import Any

from .._errors import InputError
from .._kernel.model import PciAddress, PciFunction, Topology
from .._kernel.reading import Unknown
from .lspci_hex import topology_at_lines

__all__ = [
    "HEADER_RE",
    "HEX",
    "MAX_DESCRIPTION_CHARS",
    "MAX_DEVICES",
    "MAX_TEXT_CHARS",
    "MIXED_IDS_RE",
    "NUM_IDS_RE",
    "ODD_SPACE",
    "check_description",
    "check_length",
    "reading_unknowns",
    "show",
    "shown_names",
    "split_suffixes",
    "strip_suffixes",
    "topology_of",
]

#: Inputs longer than this many characters (64 MiB) are refused.
MAX_TEXT_CHARS = 64 * 1024 * 1024
#: More devices than this are refused.
MAX_DEVICES = 65536
#: Longest device description (what follows a device's address) read, in characters.
#: ``lspci`` looks names up into buffers of 1024 bytes at most (``namebuf`` in
#: ``lspci.c``, ``pci_lookup_name``); a longer one is damage (a file whose line
#: endings were lost), and reading it would cost time for nothing.
MAX_DESCRIPTION_CHARS = 2048

#: A hexadecimal digit, for character classes.
HEX = "0-9a-fA-F"
_ADDR = rf"(?:[{HEX}]{{4,8}}:)?[{HEX}]{{2}}:[{HEX}]{{2}}\.[0-7]"
_PATH_TAIL = rf"(?:/(?:[{HEX}]{{2}}:)?[{HEX}]{{2}}\.[0-7])*"
#: A device header: address (or ``-P``/``-PP`` path) at column 0, whitespace, the rest.
HEADER_RE = re.compile(rf"(?P<addr>{_ADDR}{_PATH_TAIL})[ \t]+(?P<rest>\S.*)$")
#: A named leaf of a tree (``-tv``): ``-00.0  Vendor Device``.
_TREE_LEAF_RE = re.compile(rf"-[{HEX}]{{2}}\.[0-7]  (?P<name>\S.*)$")

#: Whitespace that mail clients substitute for tabs/spaces (for ``str.translate``).
ODD_SPACE = str.maketrans({"\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u3000": " "})

#: Numeric ids (``-n``): ``8086:1539``.
NUM_IDS_RE = re.compile(r"(?P<v>[0-9a-f]{4}):(?P<d>[0-9a-f]{4})$")
#: Names and numeric ids (``-nn``): ``Intel Corporation I211 [8086:1539]``.
MIXED_IDS_RE = re.compile(r"(?P<name>.*?) ?\[(?P<v>[0-9a-f]{4}):(?P<d>[0-9a-f]{4})\]$")

_PROGIF_SUFFIX_RE = re.compile(r" \(prog-if (?P<pi>[0-9a-f]{2})(?: \[[^\]]*\])?\)$")
_REV_SUFFIX_RE = re.compile(r" \(rev (?P<rev>[0-9a-f]{2})\)$")


def show(text: str, limit: int = 60) -> str:
    """``text`` quoted for an error message, cut after ``limit`` characters.

    >>> show("Intel Corporation"), show("x" * 8, limit=4)
    ("'Intel Corporation'", "'xxxx...'")
    """
    return repr(text if len(text) <= limit else text[:limit] + "...")


def check_description(text: str, path: str, line: int) -> None:
    """Refuse a device description longer than :data:`MAX_DESCRIPTION_CHARS`.

    Raises:
        InputError: the description is too long (naming the line).
    """
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise InputError(
            path,
            f"device description is {len(text)} characters long; lspci prints at most "
            f"{MAX_DESCRIPTION_CHARS} (lost line endings?): {show(text)}",
            line,
        )


def check_length(text: str, path: str) -> None:
    """Refuse a text longer than :data:`MAX_TEXT_CHARS`.

    Raises:
        InputError: the text is too long.
    """
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            path, f"input is {len(text)} characters long; refusing more than {MAX_TEXT_CHARS}"
        )


def strip_suffixes(desc: str) -> tuple[str, int | None]:
    """``(desc without " (rev xx)" and " (prog-if xx [...])", prog-if)``.

    >>> strip_suffixes("Intel Corporation Device a110 (rev f1) (prog-if 00 [Normal decode])")
    ('Intel Corporation Device a110', 0)
    """
    desc, progif, _rev = split_suffixes(desc)
    return desc, progif


def split_suffixes(desc: str) -> tuple[str, int | None, int | None]:
    """``(desc without its suffixes, prog-if, revision)``.

    >>> split_suffixes("NVIDIA Corporation GP104 [GeForce GTX 1080] [10de:1b80] (rev a1)")
    ('NVIDIA Corporation GP104 [GeForce GTX 1080] [10de:1b80]', None, 161)
    """
    progif = revision = None
    m = _PROGIF_SUFFIX_RE.search(desc)
    if m:
        progif = int(m["pi"], 16)
        desc = desc[: m.start()]
    m = _REV_SUFFIX_RE.search(desc)
    if m:
        revision = int(m["rev"], 16)
        desc = desc[: m.start()]
    return desc, progif, revision


def shown_names(text: str) -> Iterator[str]:
    """The vendor/device names of every device header and tree leaf in ``text``.

    What :func:`~iommugroups._kernel.pci_ids.lookup_device_name` is asked
    about when the text is read (numeric ids included, which it never needs).

    >>> list(shown_names("00:1c.0 PCI bridge: Intel Corporation Device a110 (rev f1)\\n"
    ...                  "-[0000:00]-+-00.0  Intel Corporation Device 3e34"))
    ['Intel Corporation Device a110', 'Intel Corporation Device 3e34']
    """
    for raw in text.splitlines():
        if len(raw) > MAX_DESCRIPTION_CHARS * 2:
            continue
        line = raw.translate(ODD_SPACE).rstrip()
        m = HEADER_RE.match(line)
        if m:
            _cls, sep, desc = " ".join(m["rest"].split()).partition(": ")
            if sep:
                yield strip_suffixes(desc)[0]
            continue
        leaf = _TREE_LEAF_RE.search(line)
        if leaf:
            yield strip_suffixes(" ".join(leaf["name"].split()))[0]


def reading_unknowns(unknowns: list[Unknown]) -> dict[str, Any]:
    """``Reading(unknowns=...)`` as keyword arguments.

    (Passed through a ``dict[str, Any]`` because mypy's attrs plugin cannot
    type the generic ``converter=tuple`` of that field.)
    """
    return {"unknowns": tuple(unknowns)}


def topology_of(
    functions: list[PciFunction], lines: Mapping[PciAddress, int], path: str
) -> Topology:
    """The topology of the functions read, named after the file (its stem).

    Raises:
        InputError: the functions do not make a consistent topology (naming
            the line of a device involved).
    """
    name = "" if path.startswith("<") else PurePath(path).stem
    return topology_at_lines(functions, lines, path, name)
