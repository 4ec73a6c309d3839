"""``iommugroups simulate``: replay a boot and its driver actions under a strategy."""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .. import examples
from .._boot.run import default_strategies, default_strategy
from .._boot.scenario import Scenario, ScenarioError
from .._boot.simulator import Simulator
from .._boot.strategies.registry import PROPOSALS, STRATEGIES, get_strategy
from .._io.scenario_file import ScenarioFile, load_scenario_file
from .._kernel.model import Topology
from .._kernel.version import NEWEST, InvalidKernelVersion, resolve_kernel
from .._render.simulation import render_simulation, simulation_to_json
from .._render.text import to_json_text
from .common import EXIT_OK, HelpFormatter, UsageError

__all__ = ["add", "run"]

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
        "default": name in default_strategies(NEWEST).values(),
    }


def _list_strategies(as_json: bool) -> int:
    rows = [_strategy_info(name, st) for name, st in {**STRATEGIES, **PROPOSALS}.items()]
    if as_json:
        sys.stdout.write(to_json_text(rows))
        return EXIT_OK
    width = max((len(r["name"]) for r in rows), default=0)
    for r in rows:
        upstream = {True: "yes", False: "no", None: "unknown"}[r["upstream"]]
        title = r["title"] + (f"  (default on Linux {NEWEST})" if r["default"] else "")
        print(f"{r['name']:<{width}}  {title}".rstrip())
        print(f"{'':<{width}}  kernel: {r['kernel'] or 'unknown'}; upstream: {upstream}")
    return EXIT_OK


def _scenario_source(args: argparse.Namespace) -> tuple[ScenarioFile, str]:
    """The scenario to run and how to name it in messages."""
    if args.file is not None and args.example is not None:
        raise UsageError("give a scenario FILE or --example NAME, not both")
    if args.example is not None:
        found = _sim_examples()
        factory = found.get(args.example)
        if factory is None:
            known = ", ".join(sorted(found)) or "none"
            raise UsageError(
                f"no example scenario called {args.example!r}; known examples: {known}"
            )
        topology, scenario = factory()
        return ScenarioFile(topology, scenario), f"example {args.example}"
    if args.file is None:
        raise UsageError(
            "give a scenario FILE or --example NAME (--list-examples lists the examples)"
        )
    return load_scenario_file(
        args.file, strategies={**STRATEGIES, **PROPOSALS}
    ), "<stdin>" if args.file == "-" else args.file


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``simulate`` command."""
    s = sub.add_parser(
        "simulate",
        help="replay a boot and its driver actions under a grouping strategy",
        description="Replay a boot (built-in drivers in link order, the IOMMU driver at its "
        "place) and the driver-core actions after it (insmod, bind, remove, rescan, "
        "SR-IOV), and show when and how each device got its IOMMU group under a grouping "
        "strategy (default: the one the kernel modelled uses: legacy-probe-time on arm64 "
        "v5.3-v6.14, device-add on arm64 since v6.15, canonical on x86).",
        epilog=_SIMULATE_EPILOG,
        formatter_class=HelpFormatter,
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
        help="grouping strategy (default: the file's, else the kernel's)",
    )
    s.add_argument(
        "--kernel",
        metavar="VERSION",
        help=f"the kernel version to model, e.g. 6.1 (default: the file's, else {NEWEST})",
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
    s.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.list_strategies:
        return _list_strategies(args.json)
    if args.list_examples:
        return _list_examples(args.json)
    sf, source = _scenario_source(args)
    try:
        kernel = resolve_kernel(args.kernel, sf.scenario.kernel)
    except InvalidKernelVersion as exc:
        raise UsageError(f"--kernel: {exc}") from None
    name = args.strategy or sf.strategy or default_strategy(kernel, sf.topology)
    try:
        strategy = get_strategy(name)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    print(
        f"iommugroups: note: modelled Linux {kernel}, strategy {name}",
        file=sys.stderr,
    )
    try:
        sim = Simulator(sf.topology, sf.scenario, strategy, drivers=sf.drivers, kernel=kernel)
        result = sim.run()
    except ScenarioError as exc:
        label = f" {sf.scenario.name!r}" if sf.scenario.name else ""
        raise UsageError(f"{source}: scenario{label}: {exc}") from None
    if args.json:
        sys.stdout.write(to_json_text(simulation_to_json(result, markers=args.markers)))
    else:
        sys.stdout.write(
            render_simulation(result, sim.topology, markers=args.markers, all_fates=args.all_lines)
        )
    return EXIT_OK
