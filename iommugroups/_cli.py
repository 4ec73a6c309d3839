"""The command-line tool: parse arguments, call the API, render.

Exit status: 0 success, 1 a finding (later commands), 2 usage or input
error. No traceback is ever shown: errors are one line naming the file,
line and problem.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import examples
from ._check import assume_no_acs, check, render_check
from ._errors import IommuGroupsError
from ._groups import LogLine, device_sort_key
from ._io.read import read
from ._io.reading import Reading, Unknown
from ._io.scenario_file import DEFAULT_STRATEGY, ScenarioFile, load_scenario_file
from ._io.snapshot import take_snapshot
from ._io.sysfs import read_sysfs
from ._model import Topology
from ._render import listing, listing_line, to_json_text
from ._scenario import Scenario, ScenarioError
from ._simulator import DeviceFate, Marker, Message, SimulationResult, Simulator
from ._strategies.canonical import canonical_groups
from ._strategies.registry import STRATEGIES, get_strategy
from ._version import __version__

__all__ = ["main"]

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_ERROR = 2

_GROUPS_EPILOG = """\
examples:
  iommugroups groups --example desktop
  iommugroups groups machine.lspci          # an `lspci -xxxx` dump
  sudo lspci -vvv | iommugroups groups -    # `lspci -vvv` text from stdin
  iommugroups groups --sysfs /              # this machine
  iommugroups groups snapshot.json --json
"""

_CHECK_EPILOG = """\
examples:
  iommugroups check snapshot.json                      # groups inside the snapshot
  iommugroups check --sysfs /                          # this machine, live
  iommugroups check lspci-vv.txt                       # lspci -vv with IOMMU group lines
  iommugroups check --example d05 --observed dmesg.txt # a kernel log against a topology
  iommugroups check tree.txt --observed dmesg.txt --assume-no-acs

exit status: 0 no isolation hole, 1 a split (devices the rules put together are in
different groups), 2 usage or input error.
"""

_SNAPSHOT_EPILOG = """\
examples:
  sudo iommugroups snapshot machine.json   # on the machine
  iommugroups check machine.json           # anywhere
  iommugroups groups machine.json
"""

_SIMULATE_EPILOG = """\
output:
  The kernel log the simulated boot and actions produce, in order: the
  "Adding to"/"Removing from iommu group" lines, the SMMUv3 driver's
  "stream N already in tree" warnings and, before each action's lines, an
  "ACTION ..." marker (--no-markers leaves them out): for an arm64 capture
  under legacy-probe-time, exactly the capture's "dmesg". Then the final
  groups, then the devices left without a driver or a group, and why.

examples:
  iommugroups simulate --list-examples
  iommugroups simulate --example d05-builtin
  iommugroups simulate --example d05-module --strategy device-add
  iommugroups simulate scenario.toml --json
  iommugroups simulate arm64-121.json --strategy canonical   # an oracle capture
"""

#: The ``schema`` of ``simulate --json``.
SIMULATION_SCHEMA = "iommugroups.simulation/1"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="iommugroups",
        description="Compute, explain and check Linux IOMMU groups.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    g = sub.add_parser(
        "groups",
        help="print the IOMMU groups Linux makes for a topology",
        description="Print the IOMMU groups Linux (v6.15+, x86 always) makes for a topology: "
        "devices grouped in device-add order, parents first (the canonical strategy).",
        epilog=_GROUPS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_source(g)
    g.add_argument("--json", action="store_true", help="print JSON instead of the listing")

    c = sub.add_parser(
        "check",
        help="compare the kernel's groups with the rules: find isolation holes",
        description="Compare the IOMMU groups a kernel made (from the source itself, e.g. a "
        "snapshot, a sysfs tree or `lspci -vv` with IOMMU group lines, or from --observed) with "
        "the canonical prediction for its topology. Per device: split (devices the rules put "
        "together are in different groups: an isolation hole, exit status 1), merged (grouped "
        "together though the rules would isolate them), unknown (the verdict depends on "
        "missing data).",
        epilog=_CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_source(c)
    c.add_argument(
        "--observed",
        metavar="FILE",
        help="the kernel's groups: a group listing, a kernel log (dmesg), `lspci -vv` or "
        "`lspci -vmm` output; - for stdin",
    )
    c.add_argument(
        "--assume-no-acs",
        action="store_true",
        help="take every device whose ACS capability or PCIe type could not be read as PCIe "
        "without ACS (bridges on a root bus as root ports, other bridges as downstream ports)",
    )
    c.add_argument("--json", action="store_true", help="print the report as JSON")

    sn = sub.add_parser(
        "snapshot",
        help="save this machine's PCI config space and IOMMU groups to one file",
        description="Read /sys (or --root DIR) and write one self-contained JSON file "
        "(schema iommugroups.snapshot/1) that every command reads: take it on the machine, "
        "analyse it anywhere. Run as root: without root, Linux shows only 64 bytes of config "
        "space and the ACS capabilities are unknown.",
        epilog=_SNAPSHOT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sn.add_argument("out", metavar="OUT", help="the file to write; - for standard output")
    sn.add_argument(
        "--root", metavar="DIR", default="/", help="read DIR/sys instead of /sys (a copied tree)"
    )

    s = sub.add_parser(
        "simulate",
        help="replay a boot and its driver actions under a grouping strategy",
        description="Replay a boot (built-in drivers in link order, the IOMMU driver at its "
        "place) and the driver-core actions after it (insmod, bind, remove, rescan, "
        "SR-IOV), and show when and how each device got its IOMMU group under a grouping "
        "strategy (default: legacy-probe-time, arm64 v5.3-v6.14).",
        epilog=_SIMULATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="scenario file (JSON/TOML, see docs/scenario-format.md) or arm64 oracle "
        "capture; - for stdin",
    )
    s.add_argument("--example", metavar="NAME", help="a built-in example scenario")
    s.add_argument(
        "--list-examples", action="store_true", help="list the example scenarios and exit"
    )
    s.add_argument(
        "--strategy",
        metavar="NAME",
        help=f"grouping strategy (default: the file's, else {DEFAULT_STRATEGY})",
    )
    s.add_argument(
        "--list-strategies", action="store_true", help="list the grouping strategies and exit"
    )
    s.add_argument("--json", action="store_true", help="print the whole result as JSON")
    s.add_argument(
        "--markers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show an ACTION marker line before each action's log lines (default: on)",
    )
    s.add_argument(
        "--all-lines",
        action="store_true",
        help="list every device's fate, not only those left without a driver or a group",
    )
    return p


def _add_source(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="topology file (JSON/TOML), snapshot, `lspci -vvv`/`-xxxx` output, "
        "`lspci -tv` tree or oracle capture; - for stdin",
    )
    src.add_argument("--example", metavar="NAME", help="a built-in example topology")
    src.add_argument("--sysfs", metavar="DIR", help="a live (/) or copied sysfs tree")


def _reading(args: argparse.Namespace) -> Reading:
    if args.example is not None:
        try:
            return Reading(topology=examples.get(args.example), source="example")
        except KeyError as exc:
            raise _UsageError(str(exc.args[0])) from None
    if args.sysfs is not None:
        return read_sysfs(args.sysfs)
    return read(args.file)


def _topology_of(reading: Reading) -> Topology:
    if reading.topology is None:
        raise _UsageError(
            f"{reading.path or 'the input'}: a {reading.source or 'file'} carries the kernel's "
            "groups but no topology; give a topology file, a snapshot, a sysfs tree or "
            "`lspci -vvv`/`-xxxx` output (use `check --observed` for the groups)"
        )
    return reading.topology


def _notes(unknowns: Sequence[Unknown], limit: int = 20) -> None:
    for u in unknowns[:limit]:
        print(f"iommugroups: note: {u}", file=sys.stderr)
    if len(unknowns) > limit:
        print(f"iommugroups: note: ... and {len(unknowns) - limit} more", file=sys.stderr)


class _UsageError(Exception):
    pass


def _cmd_groups(args: argparse.Namespace) -> int:
    reading = _reading(args)
    topo = _topology_of(reading)
    _notes(reading.unknowns)
    grouping = canonical_groups(topo)
    if args.json:
        data = grouping.to_json()
        sys.stdout.write(to_json_text(data))
    else:
        sys.stdout.write(listing(grouping, topo))
        for dev, why in sorted(grouping.ungrouped.items()):
            print(f"iommugroups: note: {dev} has no IOMMU group: {why}", file=sys.stderr)
    return EXIT_OK


# --- simulate -----------------------------------------------------------------


def _sim_examples() -> Mapping[str, Callable[[], tuple[Topology, Scenario]]]:
    """``examples.SIM_EXAMPLES``: example name -> (topology, scenario)."""
    found: Mapping[str, Callable[[], tuple[Topology, Scenario]]] = getattr(
        examples, "SIM_EXAMPLES", {}
    )
    return found


def _about_example(factory: Callable[[], tuple[Topology, Scenario]]) -> str:
    """The first line of the factory's docstring, else what it builds."""
    doc = factory.__doc__ if inspect.isfunction(factory) else None
    if doc and doc.strip():
        return doc.strip().splitlines()[0]
    topology, scenario = factory()
    machine = topology.name or "a topology"
    boot = f"{machine}: {scenario.firmware.upper()} boot"
    if not scenario.iommu_builtin:
        boot += ", IOMMU driver a module"
    if scenario.actions:
        boot += ", then " + "; ".join(str(a).removeprefix("ACTION ") for a in scenario.actions)
    return boot


def _list_examples(as_json: bool) -> int:
    found = _sim_examples()
    rows = [(name, _about_example(factory)) for name, factory in sorted(found.items())]
    if as_json:
        sys.stdout.write(to_json_text([{"name": n, "about": a} for n, a in rows]))
        return EXIT_OK
    width = max((len(n) for n, _ in rows), default=0)
    for name, about in rows:
        print(f"{name:<{width}}  {about}".rstrip())
    return EXIT_OK


def _strategy_info(name: str, strategy: object) -> dict[str, Any]:
    upstream = getattr(strategy, "upstream", None)
    return {
        "name": name,
        "title": str(getattr(strategy, "title", "")),
        "kernel": str(getattr(strategy, "kernel", "")),
        "upstream": upstream if isinstance(upstream, bool) else None,
        "default": name == DEFAULT_STRATEGY,
    }


def _list_strategies(as_json: bool) -> int:
    rows = [_strategy_info(name, st) for name, st in STRATEGIES.items()]
    if as_json:
        sys.stdout.write(to_json_text(rows))
        return EXIT_OK
    width = max((len(r["name"]) for r in rows), default=0)
    for r in rows:
        upstream = {True: "yes", False: "no", None: "unknown"}[r["upstream"]]
        title = r["title"] + ("  (default)" if r["default"] else "")
        print(f"{r['name']:<{width}}  {title}".rstrip())
        print(f"{'':<{width}}  kernel: {r['kernel'] or 'unknown'}; upstream: {upstream}")
    return EXIT_OK


def _scenario_source(args: argparse.Namespace) -> tuple[ScenarioFile, str]:
    """The scenario to run and how to name it in messages."""
    if args.file is not None and args.example is not None:
        raise _UsageError("give a scenario FILE or --example NAME, not both")
    if args.example is not None:
        found = _sim_examples()
        factory = found.get(args.example)
        if factory is None:
            known = ", ".join(sorted(found)) or "none"
            raise _UsageError(
                f"no example scenario called {args.example!r}; known examples: {known}"
            )
        topology, scenario = factory()
        return ScenarioFile(topology, scenario), f"example {args.example}"
    if args.file is None:
        raise _UsageError(
            "give a scenario FILE or --example NAME (--list-examples lists the examples)"
        )
    return load_scenario_file(args.file), "<stdin>" if args.file == "-" else args.file


def _event_json(event: object) -> dict[str, Any]:
    if isinstance(event, LogLine):
        return {
            "kind": event.action,
            "prefix": event.prefix,
            "device": event.device,
            "group": event.group,
            "line": str(event),
        }
    if isinstance(event, Message):
        return {
            "kind": "message",
            "prefix": event.prefix,
            "device": event.device,
            "text": event.text,
            "line": str(event),
        }
    assert isinstance(event, Marker)
    return {"kind": "marker", "action": event.text.split()[1:], "line": str(event)}


def simulation_to_json(result: SimulationResult, *, markers: bool = True) -> dict[str, Any]:
    """The ``iommugroups.simulation/1`` document of ``simulate --json``."""
    grouping = result.grouping.to_json()
    return {
        "schema": SIMULATION_SCHEMA,
        "strategy": result.strategy,
        "scenario": result.scenario,
        "log": list(result.log_lines(markers=markers)),
        "events": [_event_json(e) for e in result.events],
        "groups": grouping["groups"],
        "group_ids": grouping["group_ids"],
        "fates": {
            dev: {
                "state": fate.state,
                "driver": fate.driver,
                "group": fate.group,
                "detail": fate.detail,
            }
            for dev, fate in result.fates.items()
        },
        "notes": list(result.notes),
    }


def _fate_table(fates: Sequence[DeviceFate]) -> list[str]:
    """Fates as aligned columns: device, state, driver, group, detail."""
    rows = [("device", "state", "driver", "group", "detail")]
    rows += [
        (
            listing_line(f.device, None),
            f.state,
            f.driver or "-",
            "-" if f.group is None else str(f.group),
            f.detail,
        )
        for f in fates
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return [
        "\t" + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[4]
        for r in rows
    ]


def render_simulation(
    result: SimulationResult,
    topology: Topology | None = None,
    *,
    markers: bool = True,
    all_fates: bool = False,
) -> str:
    """The text output of ``simulate``: log, blank line, groups, then fates."""
    sections: list[str] = []
    log = result.log_lines(markers=markers)
    if log:
        sections.append("\n".join(log) + "\n")
    sections.append(listing(result.grouping, topology) or "No IOMMU groups.\n")
    fates = sorted(
        (f for f in result.fates.values() if all_fates or f.state != "bound" or f.group is None),
        key=lambda f: device_sort_key(f.device),
    )
    if fates:
        title = "Devices:" if all_fates else "Devices without a driver or a group:"
        sections.append("\n".join([title, *(line.rstrip() for line in _fate_table(fates))]) + "\n")
    if result.notes:
        sections.append("\n".join(["Refused by the driver core:", *result.notes]) + "\n")
    return "\n".join(sections)


def _cmd_simulate(args: argparse.Namespace) -> int:
    if args.list_strategies:
        return _list_strategies(args.json)
    if args.list_examples:
        return _list_examples(args.json)
    sf, source = _scenario_source(args)
    name = args.strategy or sf.strategy or DEFAULT_STRATEGY
    try:
        strategy = get_strategy(name)
    except KeyError as exc:
        raise _UsageError(str(exc.args[0])) from None
    try:
        sim = Simulator(sf.topology, sf.scenario, strategy, drivers=sf.drivers)
        result = sim.run()
    except ScenarioError as exc:
        label = f" {sf.scenario.name!r}" if sf.scenario.name else ""
        raise _UsageError(f"{source}: scenario{label}: {exc}") from None
    if args.json:
        sys.stdout.write(to_json_text(simulation_to_json(result, markers=args.markers)))
    else:
        sys.stdout.write(
            render_simulation(result, sim.topology, markers=args.markers, all_fates=args.all_lines)
        )
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    reading = _reading(args)
    topo = _topology_of(reading)
    unknowns = list(reading.unknowns)
    observed = reading.observed
    if args.observed is not None:
        seen = read(args.observed)
        observed = seen.observed
        unknowns += seen.unknowns
        if observed is None:
            raise _UsageError(f"{args.observed}: no IOMMU groups in it")
    if observed is None:
        raise _UsageError(
            "no observed groups: the source shows none; give --observed FILE (a group "
            "listing, a kernel log or `lspci -vv` with IOMMU group lines)"
        )
    if args.assume_no_acs:
        topo, kept = assume_no_acs(topo, unknowns)
        unknowns = list(kept)
    report = check(topo, observed, unknowns=unknowns)
    if args.json:
        sys.stdout.write(to_json_text(report.to_json()))
    else:
        sys.stdout.write(render_check(report))
    return EXIT_FINDING if report.has_split else EXIT_OK


def _cmd_snapshot(args: argparse.Namespace) -> int:
    data = take_snapshot(args.root)
    text = json.dumps(data, indent=1) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        try:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise _UsageError(f"{args.out}: cannot write: {exc.strerror}") from None
    groups = data.get("groups")
    print(
        f"iommugroups: wrote {len(data.get('devices', {}))} PCI devices"
        + (f" and {len(groups)} IOMMU groups" if groups else ", no IOMMU groups")
        + f" (kernel {data.get('kernel') or 'unknown'}) to {args.out}",
        file=sys.stderr,
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        if args.command == "groups":
            return _cmd_groups(args)
        if args.command == "simulate":
            return _cmd_simulate(args)
        if args.command == "check":
            return _cmd_check(args)
        if args.command == "snapshot":
            return _cmd_snapshot(args)
        parser.error(f"unknown command {args.command}")  # pragma: no cover
    except _UsageError as exc:
        print(f"iommugroups: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except IommuGroupsError as exc:
        print(f"iommugroups: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback
        print(
            f"iommugroups: internal error: {type(exc).__name__}: {exc} "
            "(please report this with the input that caused it)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return EXIT_OK  # pragma: no cover
