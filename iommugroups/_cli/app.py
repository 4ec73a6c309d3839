"""The command-line tool: parse arguments, call the API, render.

Exit status: 0 success, 1 a finding (later commands), 2 usage or input
error. No traceback is ever shown: errors are one line naming the file,
line and problem.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import examples
from .._analysis.change_grammar import parse_change
from .._analysis.check import assume_no_acs, check
from .._analysis.explain import explain, explain_pair
from .._analysis.filters import ShowFilterError, by_address, by_class, by_group, by_related
from .._analysis.show import show
from .._analysis.whatif import what_if
from .._boot.scenario import Scenario, ScenarioError
from .._boot.simulator import DeviceFate, Marker, Message, SimulationResult, Simulator
from .._boot.strategies.registry import STRATEGIES, get_strategy
from .._errors import IommuGroupsError
from .._io.read import read
from .._io.scenario_file import DEFAULT_STRATEGY, ScenarioFile, load_scenario_file
from .._io.snapshot import take_snapshot
from .._io.sysfs import read_sysfs
from .._kernel.canonical import canonical_groups
from .._kernel.groups import Grouping, LogLine, device_sort_key
from .._kernel.model import Topology
from .._kernel.reading import Reading, Unknown
from .._render.check import render_check
from .._render.dot import to_dot, to_svg
from .._render.explain import render_explanation, render_pair
from .._render.show import render_show, render_tree, use_color
from .._render.text import listing, listing_line, to_json_text
from .._render.whatif import render_whatif
from .._version import __version__

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

_SHOW_EPILOG = """\
examples:
  iommugroups show                              # this machine
  iommugroups show --example desktop --class gpu
  iommugroups show snapshot.json --related 01:00.0
  iommugroups show --example d05 --tree
  iommugroups show --example desktop --format dot | dot -Tpng > groups.png
  iommugroups show --example desktop --format svg > groups.svg   # needs Graphviz

colour only on a terminal; NO_COLOR=1 turns it off.
"""

_EXPLAIN_EPILOG = """\
examples:
  iommugroups explain 01:00.0 --example desktop
  iommugroups explain 03:00.0 04:00.0 --example desktop
  iommugroups explain 01:00.1 -i snapshot.json --json
"""

_WHATIF_EPILOG = """\
changes (positional CHANGE text, or the options):
  acs-override=downstream,multifunction   out-of-tree pcie_acs_override= (NOT upstream)
  acs-override=id:8086:1234               the same, for devices with these ids
  config-acs=SPEC                         upstream pci=config_acs= (see the docs)
  set-acs=00:1c.0:SV|RR|CR|UF             ACS control bits on a port
  remove-acs=00:1c.0                      no ACS capability on a port
  quirk=isolated:8086:1234                an ACS quirk for these ids
  remove=01:00.0                          remove a device (and what is below it)
  move=01:00=>00:1c.4                     move the card in slot 01:00 below port 00:1c.4

examples:
  iommugroups what-if --example desktop --acs-override downstream,multifunction
  iommugroups what-if -i snapshot.json remove-acs=00:01.0 --json
"""

#: what-if options: (option, metavar, help); each becomes "option=VALUE".
_WHATIF_OPTIONS = (
    ("acs-override", "MODES", "out-of-tree pcie_acs_override= modes (not upstream)"),
    ("config-acs", "SPEC", "upstream pci=config_acs= specification"),
    ("set-acs", "PORT:FLAGS", "set a port's ACS control bits"),
    ("remove-acs", "PORT", "remove a port's ACS capability"),
    ("quirk", "QUIRK", "add an ACS quirk (isolated:VVVV:DDDD)"),
    ("remove", "DEVICE", "remove a device and what is below it"),
    ("move", "SLOT=>PORT", "move a card to below another port"),
)

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


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps one-paragraph descriptions; keeps multi-line epilogs (examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip("\n"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


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
        formatter_class=_HelpFormatter,
    )
    _add_source(g)
    _add_format(g, dot=False)

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
        formatter_class=_HelpFormatter,
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
    _add_format(c, dot=False)

    sh = sub.add_parser(
        "show",
        help="the groups, described: members, drivers, why each group has its shape",
        description="Show the IOMMU groups Linux makes (and, when the source has them, the "
        "kernel's own), each member with address, class, ids and driver, and a one-line "
        "reason for the group's shape. Without FILE, --example or --sysfs it reads this "
        "machine (/sys).",
        epilog=_SHOW_EPILOG,
        formatter_class=_HelpFormatter,
    )
    _add_source(sh, required=False)
    sh.add_argument(
        "--class",
        dest="classes",
        action="append",
        metavar="KIND",
        help="only groups with a device of this kind: gpu, usb, net, nvme, audio, storage, "
        "bridge, or a class code in hex (repeatable)",
    )
    sh.add_argument(
        "--group", dest="group_ids", action="append", type=int, metavar="N", help="only group N"
    )
    sh.add_argument(
        "--device",
        dest="devices",
        action="append",
        metavar="ADDR",
        help="only groups with a device whose address starts with ADDR (e.g. 01:00)",
    )
    sh.add_argument(
        "--related", metavar="DEVICE", help="what must go to a VM together with DEVICE"
    )
    sh.add_argument("--tree", action="store_true", help="the bus tree, like `lspci -tv`")
    _add_format(sh, dot=True)

    ex = sub.add_parser(
        "explain",
        help="why a device is in its group; with two, why they do or do not share one",
        description="Explain, rule by rule, why DEVICE is in its IOMMU group: each rule "
        "applied, with its id and the register bits that decided. With DEVICE2, why the two "
        "share a group or not, and which of them could reach the other by DMA. The source "
        "defaults to this machine (/sys).",
        epilog=_EXPLAIN_EPILOG,
        formatter_class=_HelpFormatter,
    )
    ex.add_argument("device", metavar="DEVICE", help="a PCI address (bb:dd.f or dddd:bb:dd.f)")
    ex.add_argument("device2", nargs="?", metavar="DEVICE2", help="a second device")
    _add_input(ex)
    _add_format(ex, dot=False)

    wi = sub.add_parser(
        "what-if",
        help="apply changes (ACS override, ACS on a port, a quirk, moving a card) and diff",
        description="Apply hypothetical changes to the topology and print the difference of "
        "the groups: which split, which merged, which are unchanged. Changes that no "
        "upstream kernel makes (the out-of-tree pcie_acs_override patch) are labelled as "
        "such, with what they cost in isolation. The source defaults to this machine.",
        epilog=_WHATIF_EPILOG,
        formatter_class=_HelpFormatter,
    )
    wi.add_argument(
        "changes",
        nargs="*",
        metavar="CHANGE",
        action=_ChangeAction,
        help="a change in the text form (see the epilog), e.g. acs-override=downstream; "
        "changes apply in command-line order",
    )
    for opt, metavar, text in _WHATIF_OPTIONS:
        wi.add_argument(
            f"--{opt}", dest="changes", action=_ChangeAction, metavar=metavar, help=text
        )
    _add_input(wi)
    _add_format(wi, dot=True)

    sn = sub.add_parser(
        "snapshot",
        help="save this machine's PCI config space and IOMMU groups to one file",
        description="Read /sys (or --root DIR) and write one self-contained JSON file "
        "(schema iommugroups.snapshot/1) that every command reads: take it on the machine, "
        "analyse it anywhere. Run as root: without root, Linux shows only 64 bytes of config "
        "space and the ACS capabilities are unknown.",
        epilog=_SNAPSHOT_EPILOG,
        formatter_class=_HelpFormatter,
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
        formatter_class=_HelpFormatter,
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


def _add_source(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    src = p.add_mutually_exclusive_group(required=required)
    src.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="topology file (JSON/TOML), snapshot, `lspci -vvv`/`-xxxx` output, "
        "`lspci -tv` tree or oracle capture; - for stdin",
    )
    src.add_argument("--example", metavar="NAME", help="a built-in example topology")
    src.add_argument("--sysfs", metavar="DIR", help="a live (/) or copied sysfs tree")


def _add_input(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "-i",
        "--input",
        dest="file",
        metavar="FILE",
        help="the source: topology file, snapshot, lspci output, capture; - for stdin "
        "(default: this machine)",
    )
    src.add_argument("--example", metavar="NAME", help="a built-in example topology")
    src.add_argument("--sysfs", metavar="DIR", help="a live (/) or copied sysfs tree")


def _add_format(p: argparse.ArgumentParser, *, dot: bool) -> None:
    choices = ["text", "json", "dot", "svg"] if dot else ["text", "json"]
    p.add_argument(
        "--format",
        choices=choices,
        default="text",
        help="output format (svg needs Graphviz's `dot`)" if dot else "output format",
    )
    p.add_argument("--json", action="store_true", help="the same as --format json")


def _format(args: argparse.Namespace) -> str:
    return "json" if args.json else str(args.format)


def _default_reading(args: argparse.Namespace) -> Reading:
    """The source, or this machine when none is given (saying so when unusable)."""
    if args.file is not None or args.example is not None or args.sysfs is not None:
        return _reading(args)
    names = ", ".join(sorted(examples.EXAMPLES))
    try:
        reading = read_sysfs("/")
    except IommuGroupsError as exc:
        raise _UsageError(
            f"this machine shows no PCI devices to read ({exc}); give a FILE, --sysfs DIR "
            f"or a built-in example: --example {{{names}}}"
        ) from None
    if reading.topology is None or not len(reading.topology):
        raise _UsageError(
            "this machine shows no PCI devices; give a FILE, --sysfs DIR or a built-in "
            f"example: --example {{{names}}}"
        )
    return reading


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
    if _format(args) == "json":
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
    return load_scenario_file(
        args.file, strategies=STRATEGIES
    ), "<stdin>" if args.file == "-" else args.file


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
    if _format(args) == "json":
        sys.stdout.write(to_json_text(report.to_json()))
    else:
        sys.stdout.write(render_check(report))
    return EXIT_FINDING if report.has_split else EXIT_OK


def _emit_graph(
    args: argparse.Namespace, topology: Topology, grouping: Grouping, title: str
) -> None:
    dot_text = to_dot(topology, grouping, title=title)
    if _format(args) == "dot":
        sys.stdout.write(dot_text)
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(to_svg(dot_text))


def _cmd_show(args: argparse.Namespace) -> int:
    reading = _default_reading(args)
    topo = _topology_of(reading)
    _notes(reading.unknowns)
    result = show(topo, observed=reading.observed)
    try:
        if args.classes:
            result = by_class(result, *args.classes)
        if args.group_ids:
            result = by_group(result, *args.group_ids)
        if args.devices:
            result = by_address(result, *args.devices)
        if args.related:
            result = by_related(result, args.related)
    except ShowFilterError as exc:
        raise _UsageError(str(exc)) from None
    fmt = _format(args)
    filtered = bool(args.classes or args.group_ids or args.devices or args.related)
    if filtered and (args.tree or fmt in ("dot", "svg")):
        print(
            "iommugroups: note: the tree and the dot/svg pictures show the whole machine; "
            "--class, --group, --device and --related filter the listing and the JSON",
            file=sys.stderr,
        )
    if fmt == "json":
        sys.stdout.write(to_json_text(result.to_json()))
    elif fmt in ("dot", "svg"):
        _emit_graph(args, result.topology, result.grouping, topo.name)
    elif args.tree:
        sys.stdout.write(
            render_tree(result.topology, result.grouping, color=use_color(sys.stdout, os.environ))
        )
    else:
        sys.stdout.write(render_show(result, color=use_color(sys.stdout, os.environ)))
    return EXIT_OK


def _cmd_explain(args: argparse.Namespace) -> int:
    reading = _default_reading(args)
    topo = _topology_of(reading)
    _notes(reading.unknowns)
    if args.device2 is None:
        one = explain(topo, args.device)
        doc, text = one.to_json(), render_explanation(one)
    else:
        try:
            pair = explain_pair(topo, args.device, args.device2)
        except ValueError as exc:  # the same device twice
            raise _UsageError(str(exc)) from None
        doc, text = pair.to_json(), render_pair(pair)
    sys.stdout.write(to_json_text(doc) if _format(args) == "json" else text)
    return EXIT_OK


class _ChangeAction(argparse.Action):
    """Collect what-if changes, positional or by option, in command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        texts = list(getattr(namespace, "changes", None) or [])
        if option_string is None:  # the positional CHANGE texts
            texts.extend(str(v) for v in (values or ()))
        else:
            texts.append(f"{option_string.removeprefix('--')}={values}")
        namespace.changes = texts


def _cmd_what_if(args: argparse.Namespace) -> int:
    texts = list(args.changes or ())
    if not texts:
        raise _UsageError("no change given (see `iommugroups what-if --help`)")
    changes = [parse_change(t) for t in texts]
    reading = _default_reading(args)
    topo = _topology_of(reading)
    _notes(reading.unknowns)
    result = what_if(topo, changes)
    fmt = _format(args)
    if fmt == "json":
        sys.stdout.write(to_json_text(result.to_json()))
    elif fmt in ("dot", "svg"):
        _emit_graph(args, result.topology_after, result.after, "after: " + "; ".join(texts))
    else:
        sys.stdout.write(render_whatif(result))
    return EXIT_OK


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
        if args.command == "show":
            return _cmd_show(args)
        if args.command == "explain":
            return _cmd_explain(args)
        if args.command == "what-if":
            return _cmd_what_if(args)
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
