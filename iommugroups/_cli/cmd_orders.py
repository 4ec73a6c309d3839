"""``iommugroups orders``: can probe and add order change a machine's groups under a strategy?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._analysis.orders import OrderWitness, order_dependence
from .._analysis.orders_space import ADDS, OrdersError
from .._boot.strategies.registry import STRATEGIES
from .._io.scenario_file import dumps_scenario
from .._render.orders import render_orders
from .._render.text import to_json_text
from .common import (
    EXIT_FINDING,
    EXIT_OK,
    HelpFormatter,
    UsageError,
    add_format,
    add_source,
    output_format,
    print_notes,
    reading_of,
    topology_of,
)

__all__ = ["add", "run"]

_EPILOG = """\
output:
  The verdict (independent, dependent or unknown) and why, with rule ids;
  the orders compared; for a dependent verdict a witness: two complete
  orders of IOMMU registrations, driver probes, SR-IOV enables and hot-plug
  steps, shown side by side from a little before the first step where they
  differ, and the groups each ends with. --save-witness writes both as
  scenario files that `iommugroups simulate FILE` replays.

exit status:
  0 independent, 1 dependent or unknown, 2 bad usage or input.

examples:
  iommugroups orders --example d05 --strategy legacy-probe-time
  iommugroups orders --example d05 --strategy legacy-probe-time \\
      --vfs 000a:11:00.0=2 --device 000a:11:00.1 --save-witness /tmp/d05
  iommugroups orders --example d05 --strategy device-add
  iommugroups orders machine.json --strategy canonical --adds any --json
"""


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``orders`` command."""
    p = sub.add_parser(
        "orders",
        help="decide whether probe and add order can change the groups under a strategy",
        description="Decide, from the structure of the grouping rules and without "
        "enumerating orders, whether the order in which devices are added, drivers probe, "
        "IOMMUs register, VFs are enabled and devices are hot-removed and rescanned can "
        "change a topology's IOMMU groups under a grouping strategy; if it can, show two "
        "such orders.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_source(p)
    p.add_argument(
        "--strategy",
        metavar="NAME",
        default="legacy-probe-time",
        help="grouping strategy (default: legacy-probe-time; "
        "`iommugroups simulate --list-strategies`)",
    )
    p.add_argument(
        "--kernel",
        metavar="VERSION",
        help="kernel whose rules apply; only the current model is implemented",
    )
    p.add_argument(
        "--adds",
        choices=ADDS,
        default="kernel",
        help="device-add orders: as PCI enumeration makes them (default), or any",
    )
    p.add_argument(
        "--no-hotplug",
        dest="hotplug",
        action="store_false",
        help="leave hot-remove and rescan out of the orders",
    )
    p.add_argument(
        "--iommu-module",
        action="store_true",
        help="the IOMMU driver is a module loaded at some point (default: built in)",
    )
    p.add_argument(
        "--vfs",
        action="append",
        default=[],
        metavar="PF=N",
        help="enable N SR-IOV VFs of PF in every order (may be repeated)",
    )
    p.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="DEV",
        help="make the witness about this device if it can be (may be repeated)",
    )
    p.add_argument(
        "--save-witness",
        metavar="PREFIX",
        help="write the witness's orders as scenario files PREFIX-a.json and PREFIX-b.json",
    )
    add_format(p, dot=False)
    p.set_defaults(run=run)


def _vfs(values: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        pf, sep, count = value.partition("=")
        count = count.strip()
        if not sep or not (count.isascii() and count.isdigit() and len(count) <= 5):
            raise UsageError(f"--vfs {value!r}: expected PF=N, e.g. 000a:11:00.0=2")
        out[pf.strip()] = int(count)
    return out


def run(args: argparse.Namespace) -> int:
    if args.strategy not in STRATEGIES:
        known = ", ".join(STRATEGIES)
        raise UsageError(f"unknown strategy {args.strategy!r}; known strategies: {known}")
    reading = reading_of(args)
    topo = topology_of(reading)
    print_notes(reading.unknowns)
    try:
        answer = order_dependence(
            topo,
            args.strategy,
            args.kernel,
            adds=args.adds,
            hotplug=args.hotplug,
            iommu_builtin=not args.iommu_module,
            vfs=_vfs(args.vfs),
            focus=args.device,
        )
    except OrdersError as exc:
        raise UsageError(str(exc)) from None
    if args.save_witness is not None:
        _save(answer.witness, args.save_witness)
    if output_format(args) == "json":
        sys.stdout.write(to_json_text(answer.to_json()))
    else:
        title = args.example or topo.name or args.file or args.sysfs or ""
        sys.stdout.write(render_orders(answer, title=title))
    return EXIT_OK if answer.verdict == "independent" else EXIT_FINDING


def _save(witness: OrderWitness | None, prefix: str) -> None:
    if witness is None:
        print(
            "iommugroups: note: no witness to save (the verdict is not dependent)", file=sys.stderr
        )
        return
    if witness.kind != "scenario":
        raise UsageError(
            "--save-witness: a widened device-add order (--adds any) has no scenario: "
            "no PCI enumeration adds a device before its bridge"
        )
    for label, sf in zip(("a", "b"), witness.scenarios(), strict=True):
        path = Path(f"{prefix}-{label}.json")
        text = dumps_scenario(sf.topology, sf.scenario, drivers=sf.drivers, strategy=sf.strategy)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--save-witness: cannot write {path}: {exc.strerror}") from None
        print(f"iommugroups: note: wrote order {label.upper()} to {path}", file=sys.stderr)
