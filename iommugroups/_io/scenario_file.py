"""Scenario files, ``iommugroups.scenario/1``, in JSON and TOML.

A scenario file holds what :func:`~iommugroups.simulate` needs: a
:class:`~iommugroups.Scenario` (the boot and the actions after it), its
topology, either inline (``topology``, in the topology-file schema of
:mod:`iommugroups._io.topology_file`) or by reference (``topology_file``, a
path relative to the scenario file, read with :func:`~iommugroups.load`),
drivers beyond the simulator's catalogue, and optionally the strategy to
run it under. ``docs/scenario-format.md`` is the user-facing description.

The conventions are the topology format's: keys are the model's attribute
names, a field with its default value is left out when writing, hex ids are
``"0x8086"`` strings (an integer or a bare-hex string is accepted), values
of the wrong kind are errors, never coerced, and every problem in a file
becomes one :class:`~iommugroups.InputError` naming the file and the field
path (``actions[2][1]: unknown driver 'e1000x' (did you mean 'e1000'?)``),
or the line of a syntax error. Names are checked against the file: a driver
must be in the catalogue or in ``drivers``, a device in the topology (or one
of the VFs a ``sriov`` action enables). A strategy name is checked against
the names the caller accepts (``strategies=``, the strategy registry for the
command line); this module does not know the strategies.

An arm64 capture of the oracle (``tests/data/oracle/arm64/*.json``) is read
as a scenario too: its topology, its scenario and, in
:attr:`ScenarioFile.capture`, what the kernel did.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any, Literal

import attrs
import tomli_w

from .._boot.drivers import KNOWN_DRIVERS, Driver, ProbeResult
from .._boot.drivers import _always_ok as _default_probe
from .._boot.scenario import ACTION_KINDS, DEFAULT_BUILTIN, IOMMU_DRIVER, Action, Scenario
from .._errors import InputError, IommuGroupsError
from .._kernel.model import PciAddress, Topology
from .._kernel.version import InvalidKernelVersion, KernelVersion
from .arm64_capture import Capture, looks_like_capture, read_capture
from .load import _decode, _read_file, _read_stdin, load, unix_lines
from .root_buses import with_missing_bridges
from .topology_file import SCHEMA as TOPOLOGY_SCHEMA
from .topology_file import (
    TopologyProblems,
    _describe,
    _FieldError,
    _hex_parser,
    parse_json,
    parse_toml,
    structure_topology,
    topology_to_dict,
)

__all__ = [
    "SCHEMA",
    "ScenarioFile",
    "ScenarioFormat",
    "dumps_scenario",
    "load_scenario",
    "load_scenario_file",
    "loads_scenario",
    "loads_scenario_file",
    "scenario_from_dict",
    "scenario_to_dict",
]


def __dir__() -> list[str]:
    return __all__


#: The value of the top-level ``schema`` key this module reads and writes.
SCHEMA = "iommugroups.scenario/1"

#: The two spellings of the format.
ScenarioFormat = Literal["json", "toml"]

#: The strategy a scenario runs under when neither the file nor the caller
#: names one.
DEFAULT_STRATEGY = "legacy-probe-time"

#: Top-level keys, in the order they are written.
_KEYS = (
    "schema",
    "name",
    "kernel",
    "firmware",
    "builtin",
    "blacklist",
    "iommu_builtin",
    "strategy",
    "actions",
    "probe_failures",
    "drivers",
    "topology_file",
    "topology",
)

#: Keys of a ``drivers`` entry, in the order they are written.
_DRIVER_KEYS = (
    "name",
    "bus",
    "ids",
    "classes",
    "platform_names",
    "override_only",
    "probe",
    "about",
)

_MAX_REPORTED = 10


def _probe_fail(_dev: object) -> ProbeResult:
    """A file driver whose probe always fails (``probe = "fail"``)."""
    return ProbeResult.FAIL


def _probe_defer(_dev: object) -> ProbeResult:
    """A file driver whose probe always asks to be retried (``probe = "defer"``)."""
    return ProbeResult.DEFER


#: ``probe`` spellings -> the probe rule of a driver read from a file.
_PROBE_RULES: dict[str, Callable[[Any], ProbeResult]] = {
    "ok": _default_probe,
    "fail": _probe_fail,
    "defer": _probe_defer,
}


def _driver_tuple(value: Iterable[Driver]) -> tuple[Driver, ...]:
    return tuple(value)


@attrs.frozen
class ScenarioFile:
    """Everything a scenario file (or an arm64 capture) holds.

    Attributes:
        topology: the machine.
        scenario: the boot and the actions.
        drivers: drivers added to (or replacing some of) the simulator's
            catalogue, :data:`~iommugroups.KNOWN_DRIVERS`.
        strategy: the strategy the file asks for, if any.
        capture: for an arm64 capture, what the kernel did: an object with
            the capture's ``topology`` and ``scenario``, ``dmesg`` (the
            kernel's log lines, in order, ``ACTION`` markers kept),
            ``groups`` (the final groups, id -> addresses) and ``drivers``
            (each device's driver at the end); ``None`` for a scenario file.
    """

    topology: Topology
    scenario: Scenario
    drivers: tuple[Driver, ...] = attrs.field(default=(), converter=_driver_tuple)
    strategy: str | None = None
    capture: Capture | None = None


# --- reading ----------------------------------------------------------------


class _Problems:
    """Problems found in one file, each with its field path."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.more = 0  # problems counted but not put in words

    def add(self, where: str, problem: str) -> None:
        self.messages.append(f"{where}: {problem}" if where else problem)

    def raise_if_any(self, path: str) -> None:
        if not self.messages:
            return
        extra = len(self.messages) + self.more - _MAX_REPORTED
        text = "; ".join(self.messages[:_MAX_REPORTED])
        if extra > 0:
            text += f"; and {extra} more problem{'s' if extra > 1 else ''}"
        raise InputError(path, text)


def _unknown_keys(keys: Iterable[str], known: Sequence[str]) -> list[str]:
    """One message per misspelt key, one for all the others, listing the known keys."""
    out: list[str] = []
    others: list[str] = []
    for key in keys:
        close = difflib.get_close_matches(key, known, n=1)
        if close:
            out.append(f"unknown key {key!r} (did you mean {close[0]!r}?)")
        else:
            others.append(repr(key))
    if others:
        noun = "key" if len(others) == 1 else "keys"
        out.append(f"unknown {noun} {', '.join(others)} (known keys: {', '.join(known)})")
    return out


def _unknown_name(what: str, name: str, known: Iterable[str]) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(names)}"
    return f"unknown {what} {name!r} ({hint})"


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise _FieldError(f"expected a string, got {_describe(value)}")
    return value


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise _FieldError(f"expected a list, got {_describe(value)}")
    return value


class _Reader:
    """Reads one scenario object, collecting every problem with its path."""

    def __init__(
        self,
        data: Mapping[str, Any],
        path: str,
        base: Path,
        strategies: Collection[str] | None = None,
        allow_paths_outside: bool = False,
    ) -> None:
        self.data = data
        self.path = path
        self.base = base
        self.strategies = strategies
        self.allow_paths_outside = allow_paths_outside
        self.problems = _Problems()

    def field(self, where: str, parse: Callable[[object], Any], value: object) -> Any:
        """``parse(value)``, or ``None`` with the problem recorded."""
        try:
            return parse(value)
        except (_FieldError, IommuGroupsError, ValueError) as exc:
            self.problems.add(where, str(exc))
            return None

    # -- the whole file ----------------------------------------------------
    def read(self) -> ScenarioFile:
        data = self.data
        for message in _unknown_keys([k for k in data if k not in _KEYS], _KEYS):
            self.problems.add("", message)
        topology = self.topology()
        drivers = self.drivers(data.get("drivers", []))
        catalogue = {**KNOWN_DRIVERS, **{d.name: d for d in drivers}}
        strategy = self.strategy(data.get("strategy"))
        kwargs: dict[str, Any] = {}
        if "name" in data:
            kwargs["name"] = self.field("name", _string, data["name"])
        if "kernel" in data:
            kwargs["kernel"] = self.field("kernel", _kernel, data["kernel"])
        if "firmware" in data:
            kwargs["firmware"] = self.field("firmware", _firmware, data["firmware"])
        if "iommu_builtin" in data:
            kwargs["iommu_builtin"] = self.field("iommu_builtin", _boolean, data["iommu_builtin"])
        boot_names = {*catalogue, IOMMU_DRIVER}
        if "builtin" in data:
            kwargs["builtin"] = self.driver_list("builtin", data["builtin"], boot_names)
        if "blacklist" in data:
            kwargs["blacklist"] = self.driver_list("blacklist", data["blacklist"], boot_names)
        actions = self.actions(data.get("actions", []), catalogue, topology)
        kwargs["actions"] = actions
        kwargs["probe_failures"] = self.probe_failures(
            data.get("probe_failures", []), catalogue, topology, actions
        )
        self.problems.raise_if_any(self.path)
        assert topology is not None
        try:
            scenario = Scenario(**kwargs)
        except IommuGroupsError as exc:  # pragma: no cover - every field is checked above
            raise InputError(self.path, str(exc)) from exc
        return ScenarioFile(topology, scenario, drivers, strategy)

    # -- topology ----------------------------------------------------------
    def topology(self) -> Topology | None:
        data = self.data
        if "topology" in data and "topology_file" in data:
            self.problems.add("", "give either 'topology' or 'topology_file', not both")
            return None
        if "topology_file" in data:
            return self.topology_file(data["topology_file"])
        if "topology" not in data:
            self.problems.add(
                "", "no topology: give 'topology' (inline) or 'topology_file' (a path)"
            )
            return None
        return self.inline_topology(data["topology"])

    def topology_file(self, value: object) -> Topology | None:
        if not isinstance(value, str) or not value:
            self.problems.add("topology_file", f"expected a path, got {_describe(value)}")
            return None
        target = self.base / value
        if not self.allow_paths_outside:
            base = self.base.resolve()
            resolved = target.resolve()
            if resolved != base and base not in resolved.parents:
                shown = value if len(value) <= 80 else value[:80] + "..."
                self.problems.add(
                    "topology_file",
                    f"{shown!r} is outside the scenario file's directory ({self.base}): a "
                    "scenario file may only name files below its own directory (allow "
                    "others with allow_paths_outside=True)",
                )
                return None
        if not target.is_file():
            why = "is a directory, not a file" if target.is_dir() else "no such file"
            self.problems.add("topology_file", f"{value}: {why} (looked for {target})")
            return None
        return load(target)  # its own errors name that file

    def inline_topology(self, value: object) -> Topology | None:
        if not isinstance(value, Mapping):
            self.problems.add("topology", f"expected an object, got {_describe(value)}")
            return None
        body = dict(value)
        schema = body.pop("schema", TOPOLOGY_SCHEMA)
        if schema != TOPOLOGY_SCHEMA:
            self.problems.add(
                "topology.schema",
                f"unsupported schema {schema!r} (this version reads {TOPOLOGY_SCHEMA!r})",
            )
            return None
        try:
            topo = structure_topology(body)
        except TopologyProblems as exc:
            for where, problem in exc.problems:
                self.problems.add(f"topology.{where}" if where else "topology", problem)
            self.problems.more += exc.count - len(exc.problems)
            return None
        except IommuGroupsError as exc:  # TopologyError: duplicate addresses, ...
            self.problems.add("topology", str(exc))
            return None
        return with_missing_bridges(topo)[0]

    # -- drivers -----------------------------------------------------------
    def drivers(self, value: object) -> tuple[Driver, ...]:
        items = self.field("drivers", _list, value)
        out: list[Driver] = []
        seen: set[str] = set()
        for i, item in enumerate(items or ()):
            drv = self.driver(f"drivers[{i}]", item)
            if drv is None:
                continue
            if drv.name in seen:
                self.problems.add(f"drivers[{i}].name", f"driver {drv.name!r} is defined twice")
                continue
            seen.add(drv.name)
            out.append(drv)
        return tuple(out)

    def driver(self, where: str, value: object) -> Driver | None:
        if not isinstance(value, Mapping):
            self.problems.add(where, f"expected an object, got {_describe(value)}")
            return None
        before = len(self.problems.messages)
        for message in _unknown_keys([k for k in value if k not in _DRIVER_KEYS], _DRIVER_KEYS):
            self.problems.add(where, message)
        if "name" not in value:
            self.problems.add(f"{where}.name", "required key missing")
        kwargs: dict[str, Any] = {}
        for key, parse in (
            ("name", _driver_name),
            ("bus", _bus),
            ("ids", _ids),
            ("classes", _classes),
            ("platform_names", _strings),
            ("override_only", _boolean),
            ("probe", _probe),
            ("about", _string),
        ):
            if key in value:
                kwargs[key] = self.field(f"{where}.{key}", parse, value[key])
        if len(self.problems.messages) > before:
            return None
        bus = kwargs.get("bus", "pci")
        if bus == "pci" and kwargs.get("platform_names"):
            self.problems.add(f"{where}.platform_names", "a PCI driver matches no platform device")
            return None
        if bus == "platform" and (kwargs.get("ids") or kwargs.get("classes")):
            self.problems.add(
                where, "a platform driver matches by platform_names, not ids/classes"
            )
            return None
        return Driver(**kwargs)

    # -- strategy, boot lists ----------------------------------------------
    def strategy(self, value: object) -> str | None:
        """The strategy's name; checked only when the caller gave the names it accepts."""
        if value is None:
            return None
        name = self.field("strategy", _string, value)
        known = self.strategies
        if name is not None and known is not None and name not in known:
            self.problems.add("strategy", _unknown_name("strategy", name, known))
            return None
        return name  # type: ignore[no-any-return]

    def driver_list(self, where: str, value: object, known: set[str]) -> tuple[str, ...] | None:
        items = self.field(where, _list, value)
        if items is None:
            return None
        out: list[str] = []
        for i, item in enumerate(items):
            name = self.field(f"{where}[{i}]", _string, item)
            if name is None:
                continue
            if name not in known:
                self.problems.add(f"{where}[{i}]", _unknown_name("driver", name, known))
            elif name in out:
                self.problems.add(f"{where}[{i}]", f"{name!r} is listed twice")
            else:
                out.append(name)
        return tuple(out)

    # -- actions -----------------------------------------------------------
    def actions(
        self, value: object, catalogue: Mapping[str, Driver], topology: Topology | None
    ) -> tuple[Action, ...]:
        items = self.field("actions", _list, value)
        out: list[Action] = []
        vfs: set[str] = set()
        for i, item in enumerate(items or ()):
            action = self.action(f"actions[{i}]", item)
            if action is None:
                continue
            out.append(action)
            if topology is None:
                continue
            kind, args = action.kind, action.args
            for n, (role, arg) in enumerate(zip(ACTION_KINDS[kind], args, strict=True)):
                where = f"actions[{i}][{n + 1}]"
                if role == "driver" and arg not in catalogue:
                    self.problems.add(where, _unknown_name("driver", arg, catalogue))
                elif role == "device":
                    self.device(where, arg, topology, vfs)
                elif role == "pf":
                    vfs.update(self.pf(where, arg, int(args[1]), topology))
                elif role == "instance" and topology.iommus:
                    names = [inst.name for inst in topology.iommus]
                    if arg not in names:
                        self.problems.add(where, _unknown_name("IOMMU instance", arg, names))
        return tuple(out)

    def action(self, where: str, value: object) -> Action | None:
        if isinstance(value, str):  # "insmod e1000e": the marker's spelling
            words: list[object] = list(value.split())
        elif isinstance(value, list):
            words = list(value)
        else:
            self.problems.add(
                where, f'expected a list like ["insmod", "e1000e"], got {_describe(value)}'
            )
            return None
        if not words:
            self.problems.add(where, "an empty action")
            return None
        kind = self.field(f"{where}[0]", _string, words[0])
        if kind is None:
            return None
        if kind not in ACTION_KINDS:
            self.problems.add(f"{where}[0]", _unknown_name("action", kind, ACTION_KINDS))
            return None
        args: list[str] = []
        for n, word in enumerate(words[1:], start=1):
            if kind == "sriov" and n == 2 and isinstance(word, int) and not isinstance(word, bool):
                word = str(word)
            arg = self.field(f"{where}[{n}]", _string, word)
            if arg is None:
                return None
            args.append(arg)
        try:
            return Action(kind, args)
        except IommuGroupsError as exc:
            self.problems.add(where, str(exc))
            return None

    def device(self, where: str, name: str, topology: Topology, vfs: set[str]) -> str | None:
        """The device's canonical name, or ``None`` (problem recorded)."""
        if any(pd.name == name for pd in topology.platform_devices):
            return name
        try:
            addr = PciAddress.parse(name)
        except ValueError:
            self.problems.add(
                where, f"{name!r} is neither a PCI address nor a platform device of the topology"
            )
            return None
        if addr in topology or str(addr) in vfs:
            return str(addr)
        self.problems.add(where, f"no device {addr} in the topology")
        return None

    def pf(self, where: str, name: str, count: int, topology: Topology) -> list[str]:
        """The addresses of the VFs ``sriov PF count`` enables (problems recorded)."""
        try:
            addr = PciAddress.parse(name)
        except ValueError as exc:
            self.problems.add(where, str(exc))
            return []
        if addr not in topology:
            self.problems.add(where, f"no device {addr} in the topology")
            return []
        pf = topology.get(addr)
        if pf.sriov is None:
            self.problems.add(where, f"{addr} is not an SR-IOV capable PF")
            return []
        if count > pf.sriov.total_vfs:
            self.problems.add(
                where.removesuffix("[1]") + "[2]",
                f"{addr} offers {pf.sriov.total_vfs} VFs, not {count}",
            )
            return []
        vfs = pf.sriov.vf_addresses(addr, count)
        if len(vfs) < count:
            self.problems.add(
                where.removesuffix("[1]") + "[2]",
                f"{addr} cannot enable {count} VFs: VF {len(vfs)} would sit past bus 0xff",
            )
            return []
        return [str(vf) for vf in vfs]

    def probe_failures(
        self,
        value: object,
        catalogue: Mapping[str, Driver],
        topology: Topology | None,
        actions: Sequence[Action],
    ) -> frozenset[tuple[str, str]]:
        items = self.field("probe_failures", _list, value)
        vfs = self._vfs(topology, actions)
        out: set[tuple[str, str]] = set()
        for i, item in enumerate(items or ()):
            where = f"probe_failures[{i}]"
            if not isinstance(item, list) or len(item) != 2:
                self.problems.add(
                    where,
                    'expected a [driver, device] pair like ["nvme", "0000:01:00.0"], '
                    f"got {_describe(item)}"
                    + (f" of {len(item)}" if isinstance(item, list) else ""),
                )
                continue
            driver = self.field(f"{where}[0]", _string, item[0])
            device = self.field(f"{where}[1]", _string, item[1])
            if driver is not None and driver not in catalogue:
                self.problems.add(f"{where}[0]", _unknown_name("driver", driver, catalogue))
                driver = None
            if device is not None and topology is not None:
                device = self.device(f"{where}[1]", device, topology, vfs)
            if driver is not None and device is not None:
                out.add((driver, device))
        return frozenset(out)

    @staticmethod
    def _vfs(topology: Topology | None, actions: Sequence[Action]) -> set[str]:
        out: set[str] = set()
        if topology is None:
            return out
        for action in actions:
            if action.kind != "sriov":
                continue
            addr = PciAddress.parse(action.args[0])
            pf = topology.get(addr) if addr in topology else None
            if pf is None or pf.sriov is None:
                continue
            count = min(int(action.args[1]), pf.sriov.total_vfs)
            out.update(str(vf) for vf in pf.sriov.vf_addresses(addr, count))
        return out


def _kernel(value: object) -> str:
    text = _string(value)
    try:
        KernelVersion.parse(text)
    except InvalidKernelVersion as exc:
        raise _FieldError(str(exc)) from None
    return text


def _firmware(value: object) -> str:
    text = _string(value)
    if text not in ("acpi", "dt"):
        raise _FieldError(f"expected 'acpi' or 'dt', got {text!r}")
    return text


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise _FieldError(f"expected true or false, got {_describe(value)}")
    return value


def _strings(value: object) -> tuple[str, ...]:
    return tuple(_string(v) for v in _list(value))


def _driver_name(value: object) -> str:
    name = _string(value)
    if not name or any(c.isspace() for c in name):
        raise _FieldError(f"a driver name is one word, not {name!r}")
    if name == IOMMU_DRIVER:
        raise _FieldError(f"{IOMMU_DRIVER!r} names the IOMMU driver, not a device driver")
    return name


def _bus(value: object) -> str:
    text = _string(value)
    if text not in ("pci", "platform"):
        raise _FieldError(f"expected 'pci' or 'platform', got {text!r}")
    return text


def _probe(value: object) -> Callable[[Any], ProbeResult]:
    text = _string(value)
    try:
        return _PROBE_RULES[text]
    except KeyError:
        known = ", ".join(map(repr, _PROBE_RULES))
        raise _FieldError(f"expected one of {known}, got {text!r}") from None


_vendor = _hex_parser("a vendor id", 16)
_device = _hex_parser("a device id", 16)
_class = _hex_parser("a class code", 24)


def _pairs(
    value: object, first: Callable[[object], int], second: Callable[[object], int], what: str
) -> list[tuple[int, int | None]]:
    out: list[tuple[int, int | None]] = []
    for i, item in enumerate(_list(value)):
        if not isinstance(item, list) or len(item) not in (1, 2):
            raise _FieldError(f"[{i}]: expected {what}, got {_describe(item)}")
        try:
            a = first(item[0])
            b = second(item[1]) if len(item) == 2 else None
        except _FieldError as exc:
            raise _FieldError(f"[{i}]: {exc}") from None
        out.append((a, b))
    return out


def _ids(value: object) -> tuple[tuple[int, int | None], ...]:
    return tuple(_pairs(value, _vendor, _device, "[vendor, device] or [vendor]"))


def _classes(value: object) -> tuple[tuple[int, int], ...]:
    pairs = _pairs(value, _class, _class, "[class, mask] or [class]")
    return tuple((c, 0xFFFFFF if m is None else m) for c, m in pairs)


def scenario_from_dict(
    data: object,
    path: str = "<string>",
    base: str | os.PathLike[str] | None = None,
    *,
    strategies: Collection[str] | None = None,
    allow_paths_outside: bool = False,
) -> ScenarioFile:
    """Build a :class:`ScenarioFile` from parsed JSON/TOML data.

    Args:
        data: the parsed file.
        path: the file's name, for error messages.
        base: the directory a ``topology_file`` is relative to (default: the
            directory of ``path``, or the current directory for ``<string>``).
        strategies: the strategy names the caller accepts (the registry's,
            :data:`~iommugroups.STRATEGIES`); another name in the file is a
            problem (``strategy: unknown strategy 'x' (did you mean ...)``).
            ``None``: the name is not checked.
        allow_paths_outside: let ``topology_file`` name a file outside
            ``base`` (by default a scenario file may only name files below
            its own directory, so that one from elsewhere cannot make the
            tool read, and quote in its errors, any file it can reach).

    Raises:
        InputError: the data does not follow the schema (the message names
            every problem by its field path, ``actions[2][1]: ...``), or
            the referenced topology file cannot be read.
    """
    if not isinstance(data, Mapping):
        raise InputError(path, f"expected an object at the top level, got {_describe(data)}")
    if looks_like_capture(data) and "schema" not in data:
        return _from_capture(data, path)
    if "devices" in data and "schema" not in data and "scenario" not in data:
        raise InputError(
            path,
            "an oracle capture without a 'scenario' (no boot to replay), not a scenario file: "
            "`iommugroups groups` reads it, a scenario file can refer to it with "
            "'topology_file'",
        )
    schema = data.get("schema", SCHEMA)
    if schema == TOPOLOGY_SCHEMA:
        raise InputError(
            path,
            f"schema: this is a topology file ({TOPOLOGY_SCHEMA!r}); a scenario file "
            "refers to it with 'topology_file' or holds it in 'topology'",
        )
    if schema != SCHEMA:
        raise InputError(
            path, f"schema: unsupported schema {schema!r} (this version reads {SCHEMA!r})"
        )
    if base is None:
        base = "." if path.startswith("<") else (os.path.dirname(path) or ".")
    return _Reader(data, path, Path(base), strategies, allow_paths_outside).read()


def _from_capture(data: Mapping[str, Any], path: str) -> ScenarioFile:
    cap = read_capture(data, path)
    scenario = cap.scenario
    if not scenario.name and not path.startswith("<"):
        scenario = attrs.evolve(scenario, name=PurePath(path).stem)
    return ScenarioFile(cap.topology, scenario, (), None, cap)


def _detect(text: str, path: str) -> ScenarioFormat:
    suffix = "" if path.startswith("<") else PurePath(path).suffix.lower()
    if suffix == ".toml":
        return "toml"
    if suffix == ".json" or text.lstrip().startswith("{"):
        return "json"
    return "toml"


def loads_scenario_file(
    text: str,
    fmt: ScenarioFormat | None = None,
    path: str = "<string>",
    *,
    strategies: Collection[str] | None = None,
    allow_paths_outside: bool = False,
) -> ScenarioFile:
    """Read a scenario file's text (JSON, TOML, or an arm64 capture's JSON).

    Args:
        text: the content.
        fmt: ``"json"`` or ``"toml"``; ``None`` detects it (a ``.toml``
            suffix, else JSON when the text starts with ``{``, else TOML).
        path: where the text came from, for messages; a relative
            ``topology_file`` is resolved against its directory.
        strategies: the strategy names the caller accepts (the registry's,
            :data:`~iommugroups.STRATEGIES`); another name in the file is a
            problem (``strategy: unknown strategy 'x' (did you mean ...)``).
            ``None`` leaves the file's ``strategy`` unchecked.
        allow_paths_outside: let ``topology_file`` name a file outside the
            directory of ``path`` (see ``scenario_from_dict``).

    Raises:
        InputError: a syntax error (with its line) or schema errors (with
            their field paths).
    """
    text = unix_lines(text)
    if fmt is None:
        fmt = _detect(text, path)
    if fmt == "json":
        data: object = parse_json(text, path)
    elif fmt == "toml":
        data = parse_toml(text, path)
    else:
        raise ValueError(f"unknown scenario format {fmt!r} (expected 'json' or 'toml')")
    return scenario_from_dict(
        data, path, strategies=strategies, allow_paths_outside=allow_paths_outside
    )


def load_scenario_file(
    path: str | os.PathLike[str],
    *,
    strategies: Collection[str] | None = None,
    allow_paths_outside: bool = False,
) -> ScenarioFile:
    """Read a scenario file (or an arm64 capture); ``"-"`` reads standard input.

    Args:
        path: the file.
        strategies: the strategy names the caller accepts (the registry's,
            :data:`~iommugroups.STRATEGIES`); another name in the file is a
            problem (``strategy: unknown strategy 'x' (did you mean ...)``).
            ``None`` leaves the file's ``strategy`` unchecked.
        allow_paths_outside: let ``topology_file`` name a file outside the
            scenario file's directory (see ``scenario_from_dict``).

    Raises:
        InputError: the file cannot be read, or is not a valid scenario.
    """
    name = os.fspath(path)
    if name == "-":
        text, name = _decode(_read_stdin(), "<stdin>"), "<stdin>"
    else:
        text = _decode(_read_file(name), name)
    return loads_scenario_file(
        text, None, name, strategies=strategies, allow_paths_outside=allow_paths_outside
    )


def loads_scenario(
    text: str,
    fmt: ScenarioFormat | None = None,
    path: str = "<string>",
    *,
    strategies: Collection[str] | None = None,
    allow_paths_outside: bool = False,
) -> tuple[Topology, Scenario, list[Driver]]:
    """The topology, scenario and extra drivers of a scenario file's text.

    See :func:`loads_scenario_file`, which also gives the file's strategy.
    """
    sf = loads_scenario_file(
        text, fmt, path, strategies=strategies, allow_paths_outside=allow_paths_outside
    )
    return sf.topology, sf.scenario, list(sf.drivers)


def load_scenario(
    path: str | os.PathLike[str],
    *,
    strategies: Collection[str] | None = None,
    allow_paths_outside: bool = False,
) -> tuple[Topology, Scenario, list[Driver]]:
    """The topology, scenario and extra drivers of a scenario file.

    See :func:`load_scenario_file`, which also gives the file's strategy.
    """
    sf = load_scenario_file(path, strategies=strategies, allow_paths_outside=allow_paths_outside)
    return sf.topology, sf.scenario, list(sf.drivers)


# --- writing ----------------------------------------------------------------


def _hex(n: int, width: int) -> str:
    return f"0x{n:0{width}x}"


def _driver_to_dict(drv: Driver) -> dict[str, Any]:
    probe = next((k for k, rule in _PROBE_RULES.items() if rule is drv.probe), None)
    if probe is None:
        raise ValueError(
            f"driver {drv.name!r} has its own probe rule; a scenario file can only say "
            "'ok', 'fail' or 'defer'"
        )
    out: dict[str, Any] = {"name": drv.name}
    if drv.bus != "pci":
        out["bus"] = drv.bus
    if drv.ids:
        out["ids"] = [[_hex(v, 4)] if d is None else [_hex(v, 4), _hex(d, 4)] for v, d in drv.ids]
    if drv.classes:
        out["classes"] = [[_hex(c, 6), _hex(m, 6)] for c, m in drv.classes]
    if drv.platform_names:
        out["platform_names"] = list(drv.platform_names)
    if drv.override_only:
        out["override_only"] = True
    if probe != "ok":
        out["probe"] = probe
    if drv.about:
        out["about"] = drv.about
    return out


def scenario_to_dict(
    topology: Topology,
    scenario: Scenario,
    *,
    drivers: Iterable[Driver] = (),
    strategy: str | None = None,
    topology_file: str | None = None,
) -> dict[str, Any]:
    """A scenario file as plain JSON/TOML data, ``schema`` first, defaults left out.

    ``topology_file`` writes a reference to that path instead of the
    topology itself (the caller writes the topology there).

    Raises:
        ValueError: a driver has a probe rule of its own (a function), which
            a file cannot hold.
    """
    out: dict[str, Any] = {"schema": SCHEMA}
    if scenario.name:
        out["name"] = scenario.name
    if scenario.kernel is not None:
        out["kernel"] = scenario.kernel
    if scenario.firmware != "acpi":
        out["firmware"] = scenario.firmware
    if scenario.builtin != DEFAULT_BUILTIN:
        out["builtin"] = list(scenario.builtin)
    if scenario.blacklist:
        out["blacklist"] = sorted(scenario.blacklist)
    if not scenario.iommu_builtin:
        out["iommu_builtin"] = False
    if strategy is not None:
        out["strategy"] = strategy
    if scenario.actions:
        out["actions"] = [[a.kind, *a.args] for a in scenario.actions]
    if scenario.probe_failures:
        out["probe_failures"] = [list(p) for p in sorted(scenario.probe_failures)]
    driver_list = [_driver_to_dict(d) for d in drivers]
    if driver_list:
        out["drivers"] = driver_list
    if topology_file is not None:
        out["topology_file"] = topology_file
    else:
        topo = topology_to_dict(topology)
        del topo["schema"]
        out["topology"] = topo
    return out


def _json(value: Any, indent: str = "") -> str:
    """JSON with 2-space indents; lists of plain values on one line."""
    inner = indent + "  "
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = [
            f"{inner}{json.dumps(k, ensure_ascii=False)}: {_json(v, inner)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list):
        if all(not isinstance(v, (list, Mapping)) for v in value):
            return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in value) + "]"
        return "[\n" + ",\n".join(f"{inner}{_json(v, inner)}" for v in value) + f"\n{indent}]"
    return json.dumps(value, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    """A TOML value: strings and booleans by tomli_w, lists inline."""
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value})[len("v = ") : -1]


def _toml_key_values(data: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], list):
            # a list of lists (actions, ids): one item per line
            lines.append(f"{key} = [")
            lines.extend(f"    {_toml_value(v)}," for v in value)
            lines.append("]")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    return lines


def _toml(data: Mapping[str, Any]) -> str:
    plain = {k: v for k, v in data.items() if k not in ("drivers", "topology")}
    parts = ["\n".join(_toml_key_values(plain)) + "\n"]
    for drv in data.get("drivers", ()):
        parts.append("[[drivers]]\n" + "\n".join(_toml_key_values(drv)) + "\n")
    if "topology" in data:
        parts.append(tomli_w.dumps({"topology": data["topology"]}))
    return "\n".join(parts)


def dumps_scenario(
    topology: Topology,
    scenario: Scenario,
    fmt: ScenarioFormat = "json",
    *,
    drivers: Iterable[Driver] = (),
    strategy: str | None = None,
    topology_file: str | None = None,
) -> str:
    """Write a scenario file as JSON or TOML, ending in a newline.

    What :func:`~iommugroups.loads_scenario_file` reads back to equal
    values. Defaults are left out. ``drivers`` and ``strategy`` are written
    into the file; ``topology_file`` writes a reference to that path instead
    of the topology itself (the caller writes the topology there).

    Raises:
        ValueError: a driver has a probe rule of its own (a function), which
            a file cannot hold.
    """
    data = scenario_to_dict(
        topology, scenario, drivers=drivers, strategy=strategy, topology_file=topology_file
    )
    if fmt == "json":
        return _json(data) + "\n"
    if fmt == "toml":
        return _toml(data)
    raise ValueError(f"unknown scenario format {fmt!r} (expected 'json' or 'toml')")
