"""Read ``lspci -x`` / ``-xxx`` / ``-xxxx`` hex dumps (the format ``lspci -F`` reads).

A dump is a sequence of device blocks separated by blank lines. A block
starts with a header line giving the device address, with or without a
domain (``-D``), with numeric ids (``-n``) or names::

    0000:00:1c.0 0604: 8086:a110 (rev f0)
    00:1c.0 PCI bridge: Intel Corporation Device a110 (rev f0)
    10000:e0:01.1 0604: 8086:464d

followed by hex lines, an offset and 16 bytes each::

    000: 86 80 10 a1 07 04 10 00 f0 00 04 06 10 00 81 00

``lspci -x`` shows 64 bytes, ``-xxx`` 256 and ``-xxxx`` 4096 (as much as the
kernel lets it read). Lines indented by whitespace are lspci's verbose
decoding (``-v``, ``-k``) and are skipped, except ``Kernel driver in use:``,
which names the bound driver. Everything after the address on the header
line is ignored: the configuration space is decoded by
:func:`~iommugroups._kernel.config.functions_from_configs`, which also identifies
SR-IOV VFs (their vendor id reads 0xffff) from their PFs.

The x86 platform facts the dump shows (an AMD IOMMU's own function, VMD
domains with ``-D``) are recorded in the topology's
:class:`~iommugroups.Platform` (:mod:`~iommugroups._io.platform_facts`).

Offsets must be multiples of 16, increase strictly and stay below 4096;
missing lines are unreadable bytes (see the degradation table of
:mod:`iommugroups._kernel.config`). Every malformed line is an
:class:`~iommugroups._errors.InputError` naming the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePath

from .._errors import ConfigSpaceError, InputError, InvalidAddress, TopologyError
from .._kernel.config import ConfigSpace, _AddressedConfigSpaceError, functions_from_configs
from .._kernel.model import PciAddress, PciFunction, Topology
from .platform_facts import text_hints, with_platform

__all__ = ["MAX_DEVICES", "MAX_TEXT_CHARS", "looks_like_lspci_hex", "read_lspci_hex"]

#: Inputs longer than this many characters (64 MiB of ASCII) are refused.
MAX_TEXT_CHARS = 64 * 1024 * 1024
#: More device blocks than this are refused (there are 65536 routing ids per domain).
MAX_DEVICES = 65536

_CONFIG_SIZE = 4096
_ROW = 16

#: A header line: address then whitespace or end of line.
_HEADER_RE = re.compile(
    r"(?P<addr>(?:[0-9a-fA-F]{1,8}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])(?:\s|$)"
)
#: Something that looks like a device address, to report malformed ones.
_LOOSE_HEADER_RE = re.compile(r"(?P<addr>(?:[0-9a-fA-F]+:)?[0-9a-fA-F]+:[0-9a-fA-F]+\.\S*)")
#: A hex line: offset, colon, the rest.
_HEX_RE = re.compile(r"(?P<off>[0-9a-fA-F]{2,4}):(?P<rest>(?:\s.*)?)$")
_BYTE_RE = re.compile(r"[0-9a-fA-F]{2}")
#: Sixteen space-separated hex bytes (what follows ``offset:``), ASCII only.
_ROW_RE = re.compile(r"(?:[ \t]+[0-9a-fA-F]{2}){16}[ \t]*", re.ASCII)
_DRIVER_RE = re.compile(r"\s+Kernel driver in use:\s*(?P<driver>\S+)\s*$")


class _Block:
    """One device's block while it is being read."""

    __slots__ = ("address", "chunks", "driver", "last_offset", "line")

    def __init__(self, address: PciAddress, line: int) -> None:
        self.address = address
        self.line = line
        self.chunks: dict[int, bytes] = {}
        self.last_offset = -1
        self.driver: str | None = None


def _show(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _parse_hex_row(rest: str, offset: int, path: str, lineno: int) -> bytes:
    if _ROW_RE.fullmatch(rest):  # the common case, checked in one go
        return bytes.fromhex(rest)
    tokens = rest.split()
    for tok in tokens:
        if not _BYTE_RE.fullmatch(tok):
            raise InputError(
                path, f"offset {offset:#05x}: not a hex byte: {_show(tok)}", line=lineno
            )
    if len(tokens) == _ROW:
        problem = "hex bytes must be separated by spaces"
    else:
        problem = f"expected {_ROW} hex bytes, found {len(tokens)}"
    raise InputError(path, f"offset {offset:#05x}: {problem}", line=lineno)


def _parse(text: str, path: str) -> list[_Block]:
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            path,
            f"input is {len(text)} characters long; refusing more than {MAX_TEXT_CHARS} (64 MiB)",
        )
    if text.startswith("\ufeff"):
        text = text[1:]
    blocks: list[_Block] = []
    first_line: dict[PciAddress, int] = {}
    block: _Block | None = None
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip():
            block = None
            continue
        if line[0].isspace():
            if block is None:
                raise InputError(
                    path,
                    f"indented line outside a device block: {_show(line.strip())}",
                    line=lineno,
                )
            m = _DRIVER_RE.match(line)
            if m:
                block.driver = m["driver"]
            continue  # lspci's verbose decoding
        header = _HEADER_RE.match(line)
        if header is not None:
            try:
                address = PciAddress.parse(header["addr"])
            except InvalidAddress as exc:
                raise InputError(path, str(exc), line=lineno) from None
            if address in first_line:
                raise InputError(
                    path,
                    f"duplicate device {address} (first at line {first_line[address]})",
                    line=lineno,
                )
            if len(blocks) >= MAX_DEVICES:
                raise InputError(
                    path, f"more than {MAX_DEVICES} devices; refusing the input", line=lineno
                )
            first_line[address] = lineno
            block = _Block(address, lineno)
            blocks.append(block)
            continue
        hexline = _HEX_RE.match(line)
        if hexline is not None:
            offset = int(hexline["off"], 16)
            if block is None:
                raise InputError(path, "no header line before hex data", line=lineno)
            if offset % _ROW:
                raise InputError(
                    path, f"offset {offset:#05x} is not a multiple of {_ROW}", line=lineno
                )
            if offset >= _CONFIG_SIZE:
                raise InputError(
                    path,
                    f"offset {offset:#05x} is beyond the {_CONFIG_SIZE}-byte configuration space",
                    line=lineno,
                )
            if offset <= block.last_offset:
                raise InputError(
                    path,
                    f"offset {offset:#05x} out of order (after {block.last_offset:#05x})",
                    line=lineno,
                )
            block.chunks[offset] = _parse_hex_row(hexline["rest"], offset, path, lineno)
            block.last_offset = offset
            continue
        loose = _LOOSE_HEADER_RE.match(line)
        if loose is not None:
            raise InputError(path, f"malformed device address {_show(loose['addr'])}", line=lineno)
        raise InputError(
            path,
            f"not an lspci hex dump line (expected a device header like '0000:00:1c.0 ...' "
            f"or hex data like '000: 86 80 ...'): {_show(line)}",
            line=lineno,
        )
    for b in blocks:
        if not b.chunks:
            raise InputError(
                path,
                f"device {b.address} has no hex dump lines (produce the dump with "
                "lspci -x, -xxx or -xxxx)",
                line=b.line,
            )
    return blocks


def read_lspci_hex(text: str, path: str = "<string>") -> Topology:
    """Read an ``lspci -x``/``-xxx``/``-xxxx`` dump into a :class:`Topology`.

    Args:
        text: the dump.
        path: where it came from, for error messages; a real path also names
            the topology (its stem).

    Raises:
        InputError: a malformed line, a duplicate device, a device whose
            configuration space cannot be decoded (the line is its header), an
            inconsistent topology, or an input over :data:`MAX_TEXT_CHARS`
            characters or :data:`MAX_DEVICES` devices.

    >>> dump = '''
    ... 0000:00:02.0 0200: 8086:10d3
    ... 000: 86 80 d3 10 00 00 00 00 00 00 00 02 00 00 00 00
    ... 010: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    ... 020: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    ... 030: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    ... '''
    >>> topo = read_lspci_hex(dump)
    >>> [str(fn) for fn in topo]
    ['0000:00:02.0']
    """
    blocks = _parse(text, path)
    lines = {b.address: b.line for b in blocks}
    configs = [(b.address, ConfigSpace.from_chunks(b.chunks)) for b in blocks]
    drivers = {b.address: b.driver for b in blocks if b.driver is not None}
    name = "" if path.startswith("<") else PurePath(path).stem
    try:
        functions = functions_from_configs(configs, drivers)
    except _AddressedConfigSpaceError as exc:
        raise InputError(path, str(exc), line=lines.get(exc.address)) from exc
    except ConfigSpaceError as exc:
        raise InputError(path, str(exc)) from exc
    topology = topology_at_lines(functions, lines, path, name)
    return with_platform(topology, hints=text_hints(text))[0]


def topology_at_lines(
    functions: Sequence[PciFunction], lines: Mapping[PciAddress, int], path: str, name: str = ""
) -> Topology:
    """``Topology(functions)``; a :class:`TopologyError` becomes an :class:`InputError`
    at the line of the first device it names (``lines``: device -> its header line)."""
    try:
        return Topology(functions, name=name)
    except TopologyError as exc:
        line = None
        for dev in exc.devices:
            try:
                line = lines.get(PciAddress.parse(dev))
            except InvalidAddress:
                continue
            if line is not None:
                break
        raise InputError(path, str(exc), line=line) from exc


def looks_like_lspci_hex(text: str) -> bool:
    """Does ``text`` start like an ``lspci`` hex dump?

    True when the first non-blank line is a device header and a well-formed
    hex line follows in the same block (verbose ``lspci -v`` lines may come
    between). Only the first few hundred lines are looked at.

    >>> looks_like_lspci_hex("00:1c.0 PCI bridge: Intel\\n00: " + "00 " * 16)
    True
    >>> looks_like_lspci_hex('{"functions": []}')
    False
    """
    seen_header = False
    for count, raw in enumerate(text.lstrip("\ufeff").split("\n", 400)):
        if count >= 400:
            break
        line = raw.rstrip("\r")
        if not line.strip():
            if seen_header:
                return False
            continue
        if not seen_header:
            if not _HEADER_RE.match(line):
                return False
            seen_header = True
            continue
        if line[0].isspace():
            continue
        m = _HEX_RE.match(line)
        if m is None:
            return False
        tokens = m["rest"].split()
        return len(tokens) == _ROW and all(_BYTE_RE.fullmatch(t) for t in tokens)
    return False
