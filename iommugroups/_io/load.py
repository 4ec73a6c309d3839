"""Read a topology from any file format we know, telling the formats apart.

Formats (the ``fmt`` names):

* ``"json"``, ``"toml"``: our topology file (``docs/topology-format.md``);
* ``"lspci"``: an ``lspci -xxxx`` (or ``-xxx``, ``-x``) dump, decoded from
  the configuration space it shows;
* ``"capture"``: a real-kernel capture of the oracle (``captures/*.json``,
  ``arm64/*.json``): a JSON object whose ``devices`` map addresses to
  ``{"config_hex": ..., "driver": ...}``.

Detection, when no format is given: a ``.toml`` suffix means TOML; text
starting with ``{`` is JSON, a capture if it has ``devices`` and neither
``functions`` nor ``schema``, else our format; then an ``lspci`` dump; then
TOML with a ``functions`` or ``schema`` key.

Reading is defensive: files over ``MAX_INPUT_BYTES``, binary files (a NUL
byte in the first 8 KiB) and text that is not UTF-8 are refused before any
parsing, and every failure, down to "no such file", is an
:class:`~iommugroups._errors.InputError` naming the file.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import PurePath
from typing import Literal, get_args

from .._bulk import paused_gc
from .._errors import InputError, IommuGroupsError
from .._kernel.config import functions_from_configs
from .._kernel.model import PciAddress, Topology
from .lspci_hex import looks_like_lspci_hex, read_lspci_hex
from .root_buses import with_missing_bridges
from .topology_file import (
    _topology_from_dict,
    loads_topology,
    parse_json,
    parse_json_topology,
    parse_toml,
    topology_from_dict,
)

__all__ = ["FORMATS", "MAX_INPUT_BYTES", "InputFormat", "load", "loads", "unix_lines"]


def __dir__() -> list[str]:
    return __all__


#: Input formats :func:`loads` knows.
InputFormat = Literal["json", "toml", "lspci", "capture"]
FORMATS: tuple[str, ...] = get_args(InputFormat)

#: Largest input accepted, in bytes (64 MiB).
MAX_INPUT_BYTES = 64 * 1024 * 1024

#: How much of the input is searched for NUL bytes.
_BINARY_PROBE = 8192

#: Whitespace at the start of a text (what ``str.lstrip`` removes).
_LEADING_SPACE = re.compile(r"\s*")

# (``[ \t]*``, not ``\s*``: a ``\s*`` after ``^`` runs over every blank line that
# follows, from every line start, which is quadratic in the number of blank lines.)
_TOML_HINT_RE = re.compile(
    r"^[ \t]*(?:\[\[?[ \t]*functions\b|schema[ \t]*=|functions[ \t]*=)", re.MULTILINE
)


def load(path: str | os.PathLike[str], *, fmt: str | None = None) -> Topology:
    """Read a topology from a file; ``"-"`` reads standard input.

    Args:
        path: the file, or ``"-"`` for stdin.
        fmt: one of ``FORMATS``, or ``None`` to detect it.

    Raises:
        InputError: the file cannot be read, is too large, binary or not
            UTF-8, or its content is not a valid topology.
    """
    name = os.fspath(path)
    if name == "-":
        name = "<stdin>"
        box = [_decode(_read_stdin(), name)]
    else:
        box = [_decode(_read_file(name), name)]
    _check_fmt(fmt)
    # the text is handed over in a box, so that it is dropped once parsed
    return _loads_owned(box, name, fmt)


def loads(text: str, *, path: str = "<string>", fmt: str | None = None) -> Topology:
    """Read a topology from text, detecting the format unless ``fmt`` is given.

    Args:
        text: the content.
        path: where it came from, for error messages (and its suffix is a
            hint: ``.toml``).
        fmt: one of ``FORMATS``, or ``None`` to detect it.

    Every function below a bus whose bridge the input lacks (a PCIe Endpoint
    on a bus no bridge claims, :meth:`~iommugroups.Topology.missing_bridges`)
    has the unknown fact ``"bridge"``.

    Raises:
        InputError: the text is too large, binary, of no known format, or
            not a valid topology in its format.
        ValueError: ``fmt`` is not one of ``FORMATS``.
    """
    _check_fmt(fmt)
    return _loads_owned([text], path, fmt)


def _check_fmt(fmt: str | None) -> None:
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown input format {fmt!r} (one of: {', '.join(FORMATS)})")


def _loads_owned(box: list[str], path: str, fmt: str | None) -> Topology:
    """:func:`loads` of the text in ``box``, which it empties (see :func:`_loads`)."""
    with paused_gc():  # a topology is built in bulk, and holds no cycle
        topology, _notes = with_missing_bridges(_loads(box, path, fmt))
    return topology


def _loads(box: list[str], path: str, fmt: str | None) -> Topology:
    """Read the text in ``box`` (taken out of it: once the JSON in it is parsed,
    nothing holds it, and the parsed data is dropped entry by entry as the
    topology is built, so that a large file's peak memory is that of the
    topology, not of the text, its data and the topology together)."""
    text = box.pop()
    if len(text) > MAX_INPUT_BYTES:
        raise InputError(path, f"input larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB refused")
    nul = text.find("\0", 0, _BINARY_PROBE)
    if nul >= 0:
        raise InputError(path, f"binary data (NUL character at offset {nul}), not a topology")
    text = unix_lines(text.removeprefix("\ufeff"))

    if fmt == "toml":
        return loads_topology(text, "toml", path)
    if fmt == "lspci":
        return _from_lspci(text, path)
    if fmt == "capture":
        data = parse_json(text, path)
        del text
        return _from_capture(data, path)
    if fmt == "json":
        data, built = parse_json_topology(text, path)
        del text
        return _topology_from_dict(data, path, consume=True, built=built)

    # Detect (looking at the text without copying it: it may be 64 MiB).
    if not text or text.isspace():
        raise InputError(path, "empty input, not a topology")
    suffix = "" if path.startswith("<") else PurePath(path).suffix.lower()
    if suffix == ".toml":
        return loads_topology(text, "toml", path)
    if suffix == ".json" or text.startswith("{", _indent(text)):  # TOML cannot start with "{"
        data, built = parse_json_topology(text, path)
        del text
        if isinstance(data, Mapping) and "functions" not in data and "schema" not in data:
            if "devices" in data:
                return _from_capture(data, path)
            raise InputError(
                path,
                "a JSON object with neither 'functions' (a topology file) nor "
                "'devices' (an oracle capture)",
            )
        return _topology_from_dict(data, path, consume=True, built=built)
    if looks_like_lspci_hex(text):
        return _from_lspci(text, path)
    if _TOML_HINT_RE.search(text):  # looks like ours: report its TOML errors
        return loads_topology(text, "toml", path)
    try:
        data = parse_toml(text, path)
    except InputError:
        data = {}
    if "functions" in data or "schema" in data:
        return topology_from_dict(data, path)
    raise InputError(
        path,
        "unknown format: not a topology file (JSON or TOML), an 'lspci -xxxx' dump "
        "or an oracle capture",
    )


def _indent(text: str) -> int:
    """Where the text starts, after leading whitespace (what ``str.lstrip`` removes)."""
    m = _LEADING_SPACE.match(text)
    return 0 if m is None else m.end()


def unix_lines(text: str) -> str:
    """``text`` with CRLF and CR-only line endings turned into LF, so every reader
    reads lines (and counts them) the same way whatever system wrote the file.

    >>> unix_lines("a\\r\\nb\\rc\\n")
    'a\\nb\\nc\\n'
    """
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- reading bytes ----------------------------------------------------------


def _read_file(name: str) -> bytes:
    try:
        if os.path.isdir(name):
            raise InputError(name, "is a directory, not a file")
        with open(name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_INPUT_BYTES:
                raise InputError(name, _too_large(size))
            # as much as the file holds (not a buffer of the largest size
            # accepted), and then what a pipe or a /dev/... file gives beyond it
            data = f.read(size + 1)
            if len(data) > size:
                data += f.read(MAX_INPUT_BYTES + 1 - len(data))
    except FileNotFoundError:
        raise InputError(name, "no such file") from None
    except PermissionError:
        raise InputError(name, "permission denied") from None
    except IsADirectoryError:  # pragma: no cover - caught by isdir() above
        raise InputError(name, "is a directory, not a file") from None
    except OSError as exc:
        raise InputError(name, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(name, _too_large(len(data)))
    return data


def _read_stdin() -> bytes:
    buffer = getattr(sys.stdin, "buffer", None)
    try:
        if buffer is not None:
            data: bytes = buffer.read(MAX_INPUT_BYTES + 1)
        else:  # a replaced text stream (tests, embedding)
            data = sys.stdin.read(MAX_INPUT_BYTES + 1).encode("utf-8", "surrogateescape")
    except OSError as exc:
        raise InputError("<stdin>", f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise InputError("<stdin>", _too_large(len(data)))
    return data


def _too_large(size: int) -> str:
    mib = MAX_INPUT_BYTES // (1024 * 1024)
    return f"file too large ({size} bytes; at most {mib} MiB is read)"


def _decode(data: bytes, name: str) -> str:
    nul = data.find(b"\0", 0, _BINARY_PROBE)
    if nul >= 0:
        raise InputError(name, f"binary file (NUL byte at offset {nul}), not a topology")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            name,
            f"not UTF-8 text: invalid byte 0x{data[exc.start]:02x} at offset {exc.start}",
            line,
        ) from None


# --- other formats ----------------------------------------------------------


def _from_lspci(text: str, path: str) -> Topology:
    try:
        return read_lspci_hex(text, path=path)
    except InputError:
        raise
    except IommuGroupsError as exc:
        raise InputError(path, str(exc)) from exc


def _from_capture(data: object, path: str) -> Topology:
    """A topology from an oracle capture's config spaces (and drivers)."""
    if not isinstance(data, Mapping):
        raise InputError(path, "an oracle capture is a JSON object")
    devices = data.get("devices")
    if not isinstance(devices, Mapping):
        raise InputError(path, "devices: expected an object mapping PCI addresses to devices")
    configs: dict[PciAddress, bytes] = {}
    drivers: dict[PciAddress, str] = {}
    for key, dev in devices.items():
        where = f"devices[{key!r}]"
        try:
            addr = PciAddress.parse(key)
        except ValueError as exc:
            raise InputError(path, f"{where}: {exc}") from None
        if not isinstance(dev, Mapping):
            raise InputError(path, f"{where}: expected an object")
        hex_text = dev.get("config_hex")
        if not isinstance(hex_text, str):
            raise InputError(path, f"{where}.config_hex: expected a hex string")
        try:
            configs[addr] = bytes.fromhex(hex_text)
        except ValueError as exc:
            raise InputError(path, f"{where}.config_hex: not hex ({exc})") from None
        driver = dev.get("driver")
        if driver is not None:
            if not isinstance(driver, str):
                raise InputError(path, f"{where}.driver: expected a string or null")
            drivers[addr] = driver
    name = data.get("name")
    if name is None:
        name = "" if path.startswith("<") else PurePath(path).stem
    if not isinstance(name, str):
        raise InputError(path, "name: expected a string")
    try:
        return Topology(functions_from_configs(configs, drivers or None), name=name)
    except IommuGroupsError as exc:  # ConfigSpaceError, TopologyError
        raise InputError(path, str(exc)) from exc
