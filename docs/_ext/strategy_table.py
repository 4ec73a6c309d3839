"""Sphinx extension: the strategy comparison table, computed from the code.

Usage in a MyST page::

    ```{strategy-table}
    ```

    ```{strategy-orders}
    ```

``strategy-table`` emits one row per entry of :data:`iommugroups.STRATEGIES`,
in registry order. The descriptive columns are the strategy's own class
attributes (``title``, ``kernel``, ``upstream``, ``rules``); the outcome
columns are computed at build time by running :func:`iommugroups.simulate`:

* **D05, mlx5 built in** / **D05, mlx5 as module**: the seed thread's two
  boots (``iommugroups.examples.d05_scenario``). "yes" when the root port
  ``000a:10:00.0``, both physical functions and both VFs all end up in one
  group, as the topology demands (no ACS anywhere); otherwise how many
  groups they are spread over, and how many of them have none.
* **Devices without a driver grouped**: in the seed boot, which devices
  the ``canonical`` strategy groups are left without a group (R7.8).
* **Same groups in every order**: every boot order of :data:`ORDERS` (listed
  on the page by ``strategy-orders``) is simulated; "yes" when, per
  topology, every order gives the same partition into groups and leaves the
  same devices without a group (group *ids* may differ).
* **Same groups as canonical**: in every one of those orders, the outcome is
  the ``canonical`` strategy's outcome for the same order.

Each strategy's name links to the label ``strategy-<name>`` on the page; a
strategy without such a section is an undefined-label warning, so a new
strategy cannot be added to the registry without being described.

``strategy-description`` takes a strategy's public *name*::

    ```{strategy-description} walk-down
    ```

and renders, as reStructuredText, the docstring of the module that defines
the strategy's class (found through :func:`iommugroups.get_strategy`), so a
page names strategies as users do and never a module. An unknown name, or a
module without a docstring, is a build error.

The page is re-read on every build, so the table cannot drift from the code.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from docutils import nodes
from docutils.parsers.rst import Parser as RstParser
from docutils.utils import new_document
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from table_cells import entry

from iommugroups import (
    STRATEGIES,
    PcieType,
    PciFunction,
    Scenario,
    ScenarioError,
    SimulationResult,
    Topology,
    examples,
    get_strategy,
    simulate,
)

#: The seed case: the root port, both PFs and the two VFs the scenarios enable.
SEED_DEVICES = ("000a:10:00.0", "000a:11:00.0", "000a:11:00.1", "000a:11:00.2", "000a:11:00.3")

Outcome = tuple[frozenset[frozenset[str]], frozenset[str]]
Boot = tuple[Topology, Scenario]


@attrs.frozen
class Order:
    """One boot order: a topology, a scenario, and what it varies, in words."""

    topology: str
    label: str
    build: Callable[[], Boot]


def _d05(mlx5_builtin: bool = True) -> Boot:
    return examples.d05(), examples.d05_scenario(mlx5_builtin)


def _d05_variant(change: Callable[[Scenario], Scenario]) -> Callable[[], Boot]:
    def build() -> Boot:
        topo, sc = _d05(True)
        return topo, change(sc)

    return build


def _mlx5_first(sc: Scenario) -> Scenario:
    """mlx5_core moved before pcieport in the link order."""
    rest = [d for d in sc.builtin if d != "mlx5_core"]
    at = rest.index("pcieport")
    return attrs.evolve(sc, builtin=(*rest[:at], "mlx5_core", *rest[at:]))


def _pcieport_module(sc: Scenario) -> Scenario:
    """pcieport built as a module and loaded after boot (before the VFs)."""
    return attrs.evolve(
        sc,
        builtin=tuple(d for d in sc.builtin if d != "pcieport"),
        actions=(("insmod", "pcieport"), *sc.actions),
    )


def _no_pcieport(sc: Scenario) -> Scenario:
    """No port driver at all (CONFIG_PCIEPORTBUS=n)."""
    return attrs.evolve(sc, builtin=tuple(d for d in sc.builtin if d != "pcieport"))


def _is_port(fn: PciFunction) -> bool:
    return fn.pcie_type in (PcieType.ROOT_PORT, PcieType.UPSTREAM, PcieType.DOWNSTREAM)


def _desktop(*, ports_first: bool, reverse: bool = False) -> Callable[[], Boot]:
    """The ``desktop`` example, every non-port function bound to pci-stub one
    by one; the port drivers built in (ports grouped at boot) or loaded last."""

    def build() -> Boot:
        topo = examples.desktop()
        others = [str(f.address) for f in topo.enumeration_order() if not _is_port(f)]
        if reverse:
            others.reverse()
        binds = [("insmod", "pci-stub"), *(("bind", a, "pci-stub") for a in others)]
        if ports_first:
            return topo, Scenario(name="desktop, ports first", actions=binds)
        # shpchp too: its probe of a port fails, but only after dma_configure
        # has grouped the port (R8.5)
        return topo, Scenario(
            name="desktop, ports last",
            blacklist={"pcieport", "shpchp"},
            actions=[*binds, ("insmod", "pcieport")],
        )

    return build


#: The boot orders the order-independence columns are computed over.
ORDERS: tuple[Order, ...] = (
    Order("d05", "the seed boot: pcieport, SMMU, mlx5_core built in, in that link order", _d05),
    Order(
        "d05",
        "mlx5_core as a module, loaded after boot (the seed's control case)",
        lambda: _d05(False),
    ),
    Order("d05", "mlx5_core linked before pcieport", _d05_variant(_mlx5_first)),
    Order("d05", "pcieport as a module, loaded after boot", _d05_variant(_pcieport_module)),
    Order("d05", "no port driver (CONFIG_PCIEPORTBUS=n)", _d05_variant(_no_pcieport)),
    Order(
        "desktop",
        "ports bound at boot, then every other function bound to pci-stub in device order",
        _desktop(ports_first=True),
    ),
    Order(
        "desktop",
        "no port driver at boot; every non-port function bound to pci-stub "
        "in device order, then pcieport loaded",
        _desktop(ports_first=False),
    ),
    Order(
        "desktop",
        "the same in reverse device order, then pcieport loaded",
        _desktop(ports_first=False, reverse=True),
    ),
)


def _outcome(result: SimulationResult) -> Outcome:
    """The partition into groups, and the present devices left without one."""
    grouping = result.grouping
    ungrouped = frozenset(
        name
        for name, fate in result.fates.items()
        if fate.group is None and fate.state not in ("removed", "not-added")
    )
    return grouping.partition(), ungrouped


def _seed_cell(result: SimulationResult) -> str:
    groups = [result.fates[d].group for d in SEED_DEVICES]
    have = {g for g in groups if g is not None}
    missing = groups.count(None)
    if len(have) == 1 and not missing:
        return "yes"
    parts = [f"no: {len(have)} group{'s' if len(have) != 1 else ''}"]
    if missing:
        parts.append(f"{missing} without")
    return ", ".join(parts)


def _run(topology: Topology, scenario: Scenario, strategy: str) -> Outcome:
    """The outcome of one simulation.

    A scenario the driver core refuses part-way is an outcome of its own: under
    ``device-link`` with no port driver the PFs never bind, so their VFs
    cannot be enabled (``sriov`` raises :class:`~iommugroups.ScenarioError`).
    """
    try:
        return _outcome(simulate(topology, scenario, strategy))
    except ScenarioError as exc:
        return frozenset(), frozenset({f"refused: {exc}"})


def _left_out(result: SimulationResult, reference: SimulationResult) -> list[str]:
    """Devices the reference grouped and ``result`` left without a group."""
    return [
        name
        for name, fate in result.fates.items()
        if fate.group is None and reference.fates[name].group is not None
    ]


def compute(strategies: Iterable[str]) -> dict[str, dict[str, str]]:
    """Per strategy name: its outcome cells."""
    built = [(o, *o.build()) for o in ORDERS]
    canonical = [_run(t, s, "canonical") for _o, t, s in built]
    reference = simulate(*_d05(True), "canonical")
    out: dict[str, dict[str, str]] = {}
    for name in strategies:
        cells: dict[str, str] = {}
        seed = simulate(*_d05(True), name)
        cells["builtin"] = _seed_cell(seed)
        cells["module"] = _seed_cell(simulate(*_d05(False), name))
        left_out = _left_out(seed, reference)
        cells["driverless"] = "yes" if not left_out else "no: " + ", ".join(left_out)
        outcomes = [_run(t, s, name) for _o, t, s in built]
        per_topo: dict[str, set[Outcome]] = {}
        for (o, _t, _s), oc in zip(built, outcomes, strict=True):
            per_topo.setdefault(o.topology, set()).add(oc)
        varying = [t for t, ocs in per_topo.items() if len(ocs) > 1]
        cells["orders"] = "yes" if not varying else "no: differs on " + ", ".join(varying)
        differ = sum(oc != c for oc, c in zip(outcomes, canonical, strict=True))
        cells["canonical"] = "yes" if not differ else f"no: {differ} of {len(ORDERS)} orders"
        out[name] = cells
    return out


#: (heading, relative width, cell key); the first five come from the class.
COLUMNS = (
    ("Strategy", 20, "name"),
    ("Kernel, or who proposed it", 16, "kernel"),
    ("Upstream", 7, "upstream"),
    ("Rules", 10, "rules"),
    ("D05 seed boot (mlx5 built in): port, PFs, VFs in one group", 10, "builtin"),
    ("D05, mlx5 as a module", 8, "module"),
    ("Devices without a driver grouped (D05)", 11, "driverless"),
    ("Same groups in every order", 9, "orders"),
    ("Same groups as canonical, in every order", 9, "canonical"),
)


class StrategyTable(SphinxDirective):
    """``strategy-table``: one row per registered strategy (see the module doc)."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        self.env.note_reread()  # outcomes come from the code, not the page
        cells = compute(STRATEGIES)
        table = nodes.table(classes=["strategy-table"])
        tgroup = nodes.tgroup(cols=len(COLUMNS))
        table += tgroup
        for _heading, width, _key in COLUMNS:
            tgroup += nodes.colspec(colwidth=width)
        head = nodes.row()
        for heading, _width, _key in COLUMNS:
            head += entry(heading)
        tgroup += nodes.thead("", head)
        body = nodes.tbody()
        for name, strategy in STRATEGIES.items():
            ref = pending_xref(
                "",
                nodes.literal(name, name),
                refdomain="std",
                reftype="ref",
                reftarget=f"strategy-{name}",
                refexplicit=True,
                refwarn=True,
                refdoc=self.env.docname,
            )
            title = getattr(strategy, "title", "")
            first = nodes.entry()
            first += nodes.paragraph("", "", ref)
            if title:
                first += nodes.paragraph(title, title)
            upstream = getattr(strategy, "upstream", None)
            about = {
                "kernel": getattr(strategy, "kernel", ""),
                "upstream": {True: "yes", False: "no", None: ""}[upstream],
                "rules": ", ".join(getattr(strategy, "rules", ())),
            }
            row = nodes.row()
            row += first
            for _heading, _width, key in COLUMNS[1:]:
                row += entry(about[key] if key in about else cells[name][key])
            body += row
        tgroup += body
        self.set_source_info(table)
        return [table]


class StrategyOrders(SphinxDirective):
    """``strategy-orders``: the boot orders the table's order columns use."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        self.env.note_reread()
        items = nodes.enumerated_list()
        for order in ORDERS:
            item = nodes.list_item()
            para = nodes.paragraph()
            para += nodes.literal(order.topology, order.topology)
            para += nodes.Text(": " + order.label)
            item += para
            items += item
        self.set_source_info(items)
        return [items]


class StrategyDescription(SphinxDirective):
    """``strategy-description NAME``: the docstring of the module defining that strategy."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        self.env.note_reread()  # the text is the code's
        name = self.arguments[0].strip()
        try:
            strategy = get_strategy(name)
        except KeyError as exc:
            raise self.error(f"strategy-description: {exc.args[0]}") from None
        module = sys.modules[type(strategy).__module__]
        doc = inspect.getdoc(module)
        if not doc:
            raise self.error(f"strategy-description: {module.__name__} has no docstring")
        # reStructuredText whatever the page's own markup (MyST pages included):
        # parsed as a document of its own that shares the page's settings, so
        # roles such as :class:`~iommugroups.Strategy` resolve as on the page
        page = self.state.document
        source = f"{module.__name__} (description of strategy {name!r})"
        parsed = new_document(source, page.settings)
        parsed.reporter = page.reporter
        RstParser().parse(doc, parsed)
        return list(parsed.children)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("strategy-table", StrategyTable)
    app.add_directive("strategy-orders", StrategyOrders)
    app.add_directive("strategy-description", StrategyDescription)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
