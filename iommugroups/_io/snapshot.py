"""Snapshots: everything :func:`~iommugroups._io.sysfs.read_sysfs` reads, as one JSON object.

A snapshot lets a machine's PCI devices and IOMMU groups be read elsewhere
(a bug report, a test): :func:`take_snapshot` reads the files below a root
(it is an adapter, like ``read_sysfs``); :func:`read_snapshot` is pure and
gives the same :class:`~iommugroups._kernel.reading.Reading` as ``read_sysfs``
would have given on the machine: the same topology, observed groups, kernel
and unknowns (only ``source`` and ``path`` differ).

Format, version 1 (``json.dumps`` of the dict; keys in this order)::

    {
      "schema": "iommugroups.snapshot/1",
      "taken": "2025-11-26T02:14:00+00:00",     # UTC, ISO 8601
      "kernel": "6.1.0-56-amd64",              # uname -r, or null
      "cmdline": "BOOT_IMAGE=... intel_iommu=on",   # /proc/cmdline, or null
      "devices": {                             # sysfs bus/pci/devices, by address
        "0000:00:1c.0": {
          "config_hex": "86801 ...",           # config as read (64, 256 or 4096
                                               #   bytes), or null: unreadable
          "driver": "pcieport",                # name of the driver link, or null
          "physfn": null,                      # an SR-IOV VF's PF, or null
          "iommu_group": 7,                    # name of the iommu_group link, or null
          "vendor": "0x8086",                  # the vendor, device, class files,
          "device": "0xa110",                  #   as sysfs writes them, or null
          "class": "0x060400",
          "vmd_domain": null                   # a VMD endpoint's domain link
        },                                     #   ("0x10000"), or null
      },
      "groups": {"7": ["0000:00:1c.0", "0000:02:00.0"]},   # kernel/iommu_groups
                                               #   (non-PCI devices too), or null
                                               #   when the tree had none
      "iommus": {"dmar0": {"devices": ["0000:00:02.0"], "function": null}},
                                               # class/iommu: each x86 IOMMU's
                                               #   devices, and an AMD one's own
                                               #   function
      "unknowns": [{"device": "0000:00:1c.0", "fact": "config",
                    "why": "config: permission denied"}],   # problems met reading
      "root_buses": ["0000:00", "0000:ff"]     # the root buses sysfs shows
                                               #   (pciDDDD:BB), only when one is
                                               #   not bus 00
    }

Readers ignore keys they do not know (a later version 1 may add some); a
different ``schema`` is refused. The snapshot holds no host name; the kernel
command line is included because it decides IOMMU behaviour
(``intel_iommu=``, ``iommu=pt``, ``pcie_acs_override=``).
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping
from typing import Any

from .._errors import InputError
from .._kernel.model import PciAddress
from .._kernel.reading import Reading, Unknown
from . import checks
from .sysfs import (
    MAX_CONFIG_BYTES,
    MAX_DEVICES,
    _Device,
    _Iommu,
    _Machine,
    _read_machine,
    _reading,
    _unit_kind,
)

__all__ = ["SNAPSHOT_SCHEMA", "looks_like_snapshot", "read_snapshot", "take_snapshot"]


def __dir__() -> list[str]:
    return __all__


#: The ``schema`` value of the snapshots this module writes and reads.
SNAPSHOT_SCHEMA = "iommugroups.snapshot/1"

_SCHEMA_RE = re.compile(r"^iommugroups\.snapshot/(?P<version>\d{1,6})$")
_VERSION = 1
_MAX_GROUP_ID = 2**31 - 1
_MAX_TEXT = 65536
_MAX_UNKNOWNS = 1 << 20
_HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{2})*$")
_BUS_RE = re.compile(r"^(?P<dom>[0-9a-fA-F]{4,8}):(?P<bus>[0-9a-fA-F]{2})$")
_ID_RE = re.compile(r"^(?:0x)?[0-9a-fA-F]{1,8}$")
_ID_LIMITS = {"vendor": 0xFFFF, "device": 0xFFFF, "class": 0xFFFFFF}


def take_snapshot(root: str | os.PathLike[str] = "/") -> dict[str, Any]:
    """Read the sysfs files below ``root`` into a snapshot (see the module doc).

    Args:
        root: as for :func:`~iommugroups._io.sysfs.read_sysfs`.

    Raises:
        InputError: ``root`` is not a directory, or holds no ``bus/pci/devices``.
    """
    machine = _read_machine(root)
    taken = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return {
        "schema": SNAPSHOT_SCHEMA,
        "taken": taken.isoformat(),
        "kernel": machine.kernel,
        "cmdline": machine.cmdline,
        "devices": {name: _device_json(dev) for name, dev in machine.devices.items()},
        "groups": (
            None
            if machine.groups is None
            else {str(gid): list(members) for gid, members in machine.groups.items()}
        ),
        "unknowns": [{"device": u.device, "fact": u.fact, "why": u.why} for u in machine.unknowns],
        "iommus": {
            name: {"devices": list(unit.devices), "function": unit.function}
            for name, unit in machine.iommus.items()
        },
        **_root_buses_json(machine.root_buses),
    }


def _root_buses_json(roots: tuple[tuple[int, int], ...]) -> dict[str, Any]:
    """``{"root_buses": [...]}`` when a root bus is not bus 00 (which always is one)."""
    if all(bus == 0 for _dom, bus in roots):
        return {}
    return {"root_buses": [f"{dom:04x}:{bus:02x}" for dom, bus in roots]}


def _device_json(dev: _Device) -> dict[str, Any]:
    def hexid(value: int | None, width: int) -> str | None:
        return None if value is None else f"0x{value:0{width}x}"

    return {
        "config_hex": None if dev.config is None else dev.config.hex(),
        "driver": dev.driver,
        "physfn": dev.physfn,
        "iommu_group": dev.iommu_group,
        "vendor": hexid(dev.vendor, 4),
        "device": hexid(dev.device, 4),
        "class": hexid(dev.class_code, 6),
        "vmd_domain": hexid(dev.vmd_domain, 5),
    }


def looks_like_snapshot(data: object) -> bool:
    """Is ``data`` (parsed JSON) an iommugroups snapshot, of any version?

    >>> looks_like_snapshot({"schema": "iommugroups.snapshot/1", "devices": {}})
    True
    >>> looks_like_snapshot({"schema": "iommugroups.topology/1"})
    False
    """
    if not isinstance(data, Mapping):
        return False
    schema = data.get("schema")
    return isinstance(schema, str) and schema.startswith("iommugroups.snapshot/")


def read_snapshot(data: object, path: str = "<snapshot>") -> Reading:
    """The :class:`~iommugroups._kernel.reading.Reading` of a snapshot (parsed JSON).

    Args:
        data: the snapshot, as ``json.load`` returns it.
        path: where it came from, for error messages and ``Reading.path``.

    Returns:
        What :func:`~iommugroups._io.sysfs.read_sysfs` gave on the machine,
        with source ``"snapshot"``.

    Raises:
        InputError: not a snapshot, a version this library does not read, or
            a malformed value (the message names the key).
    """
    return _reading(_machine(data, path), path, "snapshot")


def _machine(data: object, path: str) -> _Machine:
    if not isinstance(data, Mapping):
        raise InputError(path, "a snapshot is a JSON object")
    schema = data.get("schema")
    if not isinstance(schema, str):
        raise InputError(path, f"schema: expected {SNAPSHOT_SCHEMA!r}, got {schema!r:.60}")
    m = _SCHEMA_RE.match(schema)
    if m is None:
        raise InputError(path, f"schema: {schema!r:.60} is not an iommugroups snapshot")
    version = int(m["version"])
    if version != _VERSION:
        raise InputError(
            path,
            f"snapshot version {version} is not supported: this library reads version "
            f"{_VERSION} ({SNAPSHOT_SCHEMA})",
        )
    devices_data = data.get("devices")
    if not isinstance(devices_data, Mapping):
        raise InputError(path, "devices: expected an object mapping PCI addresses to devices")
    if len(devices_data) > MAX_DEVICES:
        raise InputError(path, f"devices: more than {MAX_DEVICES} devices")
    devices: dict[PciAddress, _Device] = {}
    for key, value in devices_data.items():
        where = f"devices[{key!r:.40}]"
        try:
            address = PciAddress.parse(key)
        except ValueError:
            raise InputError(path, f"{where}: not a PCI address") from None
        if address in devices:
            raise InputError(path, f"{where}: {address} is given twice")
        devices[address] = _device(value, where, path)
    return _Machine(
        devices={str(a): devices[a] for a in sorted(devices)},
        groups=_groups(data.get("groups"), path),
        unknowns=_unknowns(data.get("unknowns", []), path),
        kernel=_opt_text(data.get("kernel"), "kernel", path),
        cmdline=_opt_text(data.get("cmdline"), "cmdline", path),
        iommus=_iommus(data.get("iommus"), path),
        root_buses=_root_buses(data.get("root_buses"), path),
    )


def _root_buses(value: object, path: str) -> tuple[tuple[int, int], ...]:
    """``root_buses``: the root buses sysfs showed (``"dddd:bb"``), when one is not bus 00."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 65536:
        raise InputError(path, "root_buses: expected a list of buses ('dddd:bb')")
    out: set[tuple[int, int]] = set()
    for i, raw in enumerate(value):
        m = _BUS_RE.match(raw) if isinstance(raw, str) else None
        if m is None:
            raise InputError(path, f"root_buses[{i}]: {checks.key(raw)} is not a bus 'dddd:bb'")
        out.add((int(m["dom"], 16), int(m["bus"], 16)))
    return tuple(sorted(out))


def _iommus(value: object, path: str) -> dict[str, _Iommu]:
    """``iommus``: ``class/iommu`` names -> their devices and (AMD) function."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or len(value) > 4096:
        raise InputError(path, "iommus: expected an object mapping IOMMU names to units")
    out: dict[str, _Iommu] = {}
    for name, unit in value.items():
        where = f"iommus[{name!r:.40}]"
        if not isinstance(name, str) or _unit_kind(name) is None:
            raise InputError(path, f"{where}: not an x86 IOMMU name (dmarN, ivhdN)")
        if not isinstance(unit, Mapping):
            raise InputError(path, f"{where}: expected an object")
        devices = unit.get("devices", [])
        if not isinstance(devices, list) or len(devices) > MAX_DEVICES:
            raise InputError(path, f"{where}.devices: expected a list of PCI addresses")
        members: list[str] = []
        for i, raw in enumerate(devices):
            try:
                members.append(str(PciAddress.parse(str(raw))))
            except ValueError:
                raise InputError(path, f"{where}.devices[{i}]: not a PCI address") from None
        function = _name(unit.get("function"), f"{where}.function", path)
        if function is not None:
            try:
                function = str(PciAddress.parse(function))
            except ValueError:
                raise InputError(path, f"{where}.function: not a PCI address") from None
        out[name] = _Iommu(tuple(sorted(members)), function)
    return out


def _opt_text(value: object, where: str, path: str) -> str | None:
    return checks.opt_text(value, where, path, _MAX_TEXT)


def _name(value: object, where: str, path: str) -> str | None:
    return checks.name(value, where, path)


def _group_id(value: object, where: str, path: str) -> int:
    return checks.group_id(value, where, path)


def _device(value: object, where: str, path: str) -> _Device:
    if not isinstance(value, Mapping):
        raise InputError(path, f"{where}: expected an object")
    config_hex = value.get("config_hex")
    config: bytes | None = None
    if config_hex is not None:
        if (
            not isinstance(config_hex, str)
            or len(config_hex) > 2 * MAX_CONFIG_BYTES
            or not _HEX_RE.match(config_hex)
        ):
            raise InputError(
                path,
                f"{where}.config_hex: expected an even number of hex digits (at most "
                f"{MAX_CONFIG_BYTES} bytes) or null",
            )
        config = bytes.fromhex(config_hex)
    physfn = _name(value.get("physfn"), f"{where}.physfn", path)
    if physfn is not None:
        try:
            physfn = str(PciAddress.parse(physfn))
        except ValueError:
            raise InputError(path, f"{where}.physfn: not a PCI address") from None
    group = value.get("iommu_group")
    ids: dict[str, int | None] = {}
    for key, limit in _ID_LIMITS.items():
        raw = value.get(key)
        if raw is None:
            ids[key] = None
        elif isinstance(raw, str) and _ID_RE.match(raw) and int(raw, 16) <= limit:
            ids[key] = int(raw, 16)
        elif isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= limit:
            ids[key] = raw
        else:
            raise InputError(
                path, f"{where}.{key}: expected a hex string up to {limit:#x} or null"
            )
    vmd_raw = value.get("vmd_domain")
    vmd_domain: int | None = None
    if vmd_raw is not None:
        if not (isinstance(vmd_raw, str) and _ID_RE.match(vmd_raw)) or not (
            0x10000 <= int(vmd_raw, 16) <= 0xFFFFFFFF
        ):
            raise InputError(
                path, f"{where}.vmd_domain: expected a VMD domain ('0x10000') or null"
            )
        vmd_domain = int(vmd_raw, 16)
    return _Device(
        vmd_domain=vmd_domain,
        config=config,
        driver=_name(value.get("driver"), f"{where}.driver", path),
        physfn=physfn,
        iommu_group=None if group is None else _group_id(group, f"{where}.iommu_group", path),
        vendor=ids["vendor"],
        device=ids["device"],
        class_code=ids["class"],
    )


def _groups(value: object, path: str) -> dict[int, tuple[str, ...]] | None:
    if value is None:
        return None
    return checks.groups(value, path)


def _unknowns(value: object, path: str) -> tuple[Unknown, ...]:
    if not isinstance(value, list) or len(value) > _MAX_UNKNOWNS:
        raise InputError(path, "unknowns: expected a list of {device, fact, why} objects")
    out = []
    for i, item in enumerate(value):
        where = f"unknowns[{i}]"
        if not isinstance(item, Mapping):
            raise InputError(path, f"{where}: expected an object")
        fields = [item.get(k) for k in ("device", "fact", "why")]
        if not all(isinstance(f, str) and len(f) <= _MAX_TEXT for f in fields):
            raise InputError(path, f"{where}: device, fact and why must be strings")
        device, fact, why = (str(f) for f in fields)
        out.append(Unknown(device, fact, why))
    return tuple(out)
