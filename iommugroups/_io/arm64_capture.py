"""Reader for the oracle's arm64 driver-core captures (``arm64/NAME.json``).

Each capture is one boot of an unmodified arm64 Linux 6.1 (QEMU ``virt``,
one SMMUv3) plus driver-core actions; see ``tests/data/oracle/arm64/README.md``.
:func:`read_capture` turns one into what the simulator needs:

* the topology, from every device's config space, with the machine's one
  SMMUv3 and its identity ``iommu-map`` (stream id = requester id, so a
  device behind a PCIe-to-PCI bridge carries the bridge's alias as stream
  256 for bus 1);
* the scenario: firmware (``dt`` when the capture does not say), the
  built-in drivers of that kernel (``pcieport``, ``shpchp``, ``serial``,
  then the SMMU driver), the ``initcall_blacklist=`` and the actions;
* what the kernel did: its log (``Adding``/``Removing`` lines, SMMU
  warnings and ``ACTION`` markers, in order) and its final groups.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from .._boot.scenario import DEFAULT_BUILTIN, INITCALLS, Scenario, ScenarioError
from .._errors import InputError
from .._kernel.config import functions_from_configs
from .._kernel.model import IdMapping, IommuInstance, IommuKind, PciAddress, Topology
from . import checks

__all__ = ["Capture", "looks_like_capture", "read_capture", "read_capture_text"]

#: The SMMUv3 of QEMU ``virt,iommu=smmuv3``.
SMMU = IommuInstance("smmuv3", IommuKind.SMMU_V3)


@attrs.frozen
class Capture:
    """One arm64 capture: the machine, the scenario and what the kernel did.

    Attributes:
        topology: devices (config space) plus the SMMUv3 and its mapping.
        scenario: boot and actions.
        dmesg: the kernel's log lines, in order (``ACTION`` markers kept).
        groups: the final groups, id -> addresses.
        drivers: each device's driver at the end (``None``: none bound).
    """

    topology: Topology
    scenario: Scenario
    dmesg: tuple[str, ...]
    groups: Mapping[int, tuple[str, ...]]
    drivers: Mapping[str, str | None]


#: A driver's probe failing with an error: ``nvme 0000:01:00.0: error -ENODEV: probe failed``.
_PROBE_FAILED = re.compile(
    r"\]\s+(?P<driver>[\w-]+) (?P<device>[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]): "
    r"error -\w+: probe failed$"
)


def _probe_failures(lines: tuple[str, ...]) -> frozenset[tuple[str, str]]:
    """The probes the kernel says failed (``dmesg_all``, the 7.x captures): the scenario's
    ``probe_failures``. A driver's own failure, which grouping does not decide (e.g. an
    nvme controller of QEMU that a 7.3 driver refuses), is a fact of the run."""
    out: set[tuple[str, str]] = set()
    for line in lines:
        m = _PROBE_FAILED.search(line)
        if m is not None:
            out.add((m["driver"], m["device"]))
    return frozenset(out)


def looks_like_capture(data: object) -> bool:
    """A JSON object with a ``scenario`` and per-device config spaces."""
    return isinstance(data, dict) and "scenario" in data and "devices" in data


def read_capture_text(text: str, path: str = "<string>") -> Capture:
    """Parse a capture from JSON text (see :func:`read_capture`)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not JSON: {exc.msg}", exc.lineno) from None
    return read_capture(data, path)


def read_capture(data: Any, path: str = "<string>") -> Capture:
    """Build a :class:`Capture` from a parsed capture object.

    Raises:
        InputError: a field is missing or malformed (names the field).
    """
    if not looks_like_capture(data):
        raise InputError(path, "not an arm64 capture: needs 'scenario' and 'devices'")
    sc = data["scenario"]
    devices = data["devices"]
    if not isinstance(sc, dict) or not isinstance(devices, dict):
        raise InputError(path, "'scenario' and 'devices' must be objects")
    # the structure is checked before anything is built from it
    groups = checks.groups(data.get("groups", {}), path)
    dmesg = checks.text_list(data.get("dmesg", []), path, "dmesg")
    failures = _probe_failures(checks.text_list(data.get("dmesg_all", []), path, "dmesg_all"))
    name = checks.opt_text(data.get("name"), "name", path) or ""
    actions = sc.get("actions", [])
    if not isinstance(actions, list) or not all(isinstance(a, list) for a in actions):
        raise InputError(path, "scenario.actions: expected a list of lists")
    configs: dict[PciAddress, bytes] = {}
    drivers: dict[PciAddress, str] = {}
    final_drivers: dict[str, str | None] = {}
    for addr_text, dev in devices.items():
        where = f"devices[{checks.key(addr_text)}]"
        if not isinstance(dev, dict):
            raise InputError(path, f"{where}: expected an object")
        try:
            addr = PciAddress.parse(addr_text)
            configs[addr] = bytes.fromhex(dev["config_hex"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(path, f"{where}: {exc}") from None
        drv = checks.name(dev.get("driver"), f"{where}.driver", path)
        final_drivers[str(addr)] = drv
        if isinstance(drv, str):
            drivers[addr] = drv
    try:
        functions = functions_from_configs(configs, drivers)
        topology = Topology(
            functions,
            iommus=[SMMU],
            id_mappings=[IdMapping(0, 0, 0x10000, 0, SMMU.name)],
            name=name,
        )
    except ValueError as exc:
        raise InputError(path, str(exc)) from None
    blacklist: set[str] = set()
    for word in str(sc.get("cmdline", "")).split():
        if word.startswith("initcall_blacklist="):
            for initcall in word.split("=", 1)[1].split(","):
                blacklist.add(INITCALLS.get(initcall, initcall))
    try:
        scenario = Scenario(
            name=name or str(sc.get("name", "")),
            firmware=str(sc.get("firmware") or "dt"),
            builtin=DEFAULT_BUILTIN,
            blacklist=blacklist,
            actions=[list(map(str, a)) for a in actions],
            kernel=str(data["kernel"]) if data.get("kernel") else None,
            probe_failures=failures,
        )
    except (ScenarioError, ValueError, TypeError) as exc:
        raise InputError(path, f"scenario: {exc}") from None
    return Capture(
        topology=topology,
        scenario=scenario,
        dmesg=dmesg,
        groups=groups,
        drivers=final_drivers,
    )
