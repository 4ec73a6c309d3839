"""Sphinx extension: the strategy x example table of order dependence, computed at build time.

Usage in a MyST page::

    ```{orders-table}
    ```

One row per entry of :data:`iommugroups.STRATEGIES` (registry order), one
column per entry of :data:`COLUMNS` (a built-in example and the options it
is asked with). Each cell is :func:`iommugroups.order_dependence`'s verdict,
computed when the documentation is built, and for a *dependent* verdict the
steps where its witness's two orders differ: two adjacent steps that are
swapped (``a <-> b``), or the steps the second order adds. A strategy
registered without a structural model shows *unknown*.

Each strategy's name links to the label ``strategy-<name>`` of the
strategies page, as the strategy table does.

The page is re-read on every build, so the table cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from table_cells import entry

from iommugroups import STRATEGIES, OrderDependence, Topology, examples, order_dependence


@attrs.frozen
class Column:
    """One column: a heading, the topology, and the options of the question."""

    heading: str
    topology: Callable[[], Topology]
    options: dict[str, Any] = attrs.field(factory=dict)


#: The columns of the table.
COLUMNS: tuple[Column, ...] = (
    Column("desktop", examples.desktop),
    Column("desktop, no hot-plug", examples.desktop, {"hotplug": False}),
    Column("d05", examples.d05),
    Column(
        "d05, 2 VFs on 000a:11:00.0, witness about PF 1",
        examples.d05,
        {"vfs": {"000a:11:00.0": 2}, "focus": ["000a:11:00.1"]},
    ),
    Column("d05, any device-add order", examples.d05, {"adds": "any"}),
)


def cell(answer: OrderDependence) -> str:
    """A table cell: the verdict, and where the witness's orders differ."""
    w = answer.witness
    if w is None:
        return answer.verdict
    i, n = w.differ_at, w.differences
    a, b = w.first, w.second
    if n == 2 and len(a) == len(b) and a[i] == b[i + 1] and a[i + 1] == b[i]:
        return f"dependent: {a[i]} <-> {a[i + 1]}"
    added = ", ".join(str(e) for e in b[i : i + n])
    return f"dependent: order B adds {added}"


def compute() -> dict[str, list[str]]:
    """Per strategy name: its cells, column by column."""
    topologies = {c.heading: c.topology() for c in COLUMNS}
    out: dict[str, list[str]] = {}
    for name in STRATEGIES:
        row = []
        for c in COLUMNS:
            row.append(cell(order_dependence(topologies[c.heading], name, **c.options)))
        out[name] = row
    return out


class OrdersTable(SphinxDirective):
    """``orders-table``: one row per registered strategy (see the module doc)."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        self.env.note_reread()  # the cells come from the code, not the page
        cells = compute()
        table = nodes.table(classes=["orders-table"])
        tgroup = nodes.tgroup(cols=1 + len(COLUMNS))
        table += tgroup
        tgroup += nodes.colspec(colwidth=14)
        for _c in COLUMNS:
            tgroup += nodes.colspec(colwidth=17)
        head = nodes.row()
        head += entry("Strategy")
        for c in COLUMNS:
            head += entry(c.heading)
        tgroup += nodes.thead("", head)
        body = nodes.tbody()
        for name, row_cells in cells.items():
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
            row = nodes.row()
            row += entry(ref)
            for text in row_cells:
                row += entry(text)
            body += row
        tgroup += body
        self.set_source_info(table)
        return [table]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("orders-table", OrdersTable)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
