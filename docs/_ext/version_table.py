"""Sphinx extension: the tables of version-dependent behaviour, from the code.

Usage in a MyST page::

    ```{kernel-versions-table}
    ```

    ```{quirk-versions-table}
    ```

One row per entry of ``iommugroups._kernel.version.CHANGES``, in table
order: the rule (a link to its entry on the rule table, so a change whose
rule is not defined there is an undefined-label warning), what changed, the
versions it holds in and the kernel source that shows it. A change dated
only between two source trees shows the interval. The table is made on
every build, so it cannot drift from what the code asks.

``quirk-versions-table`` has one row per quirk whose entries are not in
every modelled kernel (``iommugroups._kernel.quirks.KERNEL_QUIRK_DATES``,
entries with the same function and versions on one row): the rule, the
kernel function, the devices, the kernels it holds in (and what the model
does on a kernel where that is not known) and the source of the dates.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util.docutils import SphinxDirective
from table_cells import entry

from iommugroups._kernel.quirks import KERNEL_QUIRK_DATES, DatedQuirk
from iommugroups._kernel.version import CHANGES, VersionChange


def _versions(change: VersionChange) -> str:
    if change.since is None:
        since = "every modelled version"
    elif change.after is not None:
        since = f"from {change.since} (after {change.after}; not dated closer)"
    else:
        since = f"from {change.since}"
    if change.until is not None:
        return f"{since}, until {change.until} (not in {change.until} and later)"
    return since


def _rule_ref(rule: str) -> pending_xref:
    ref = pending_xref(
        "",
        refdomain="std",
        reftype="ref",
        reftarget=f"rule-{rule.lower()}",
        refexplicit=True,
        refwarn=True,
    )
    ref += nodes.inline(text=rule)
    return ref


def _table(headers: tuple[str, ...], widths: tuple[int, ...]) -> tuple[nodes.table, nodes.tbody]:
    table = nodes.table()
    group = nodes.tgroup(cols=len(headers))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    row = nodes.row()
    for h in headers:
        row += entry(h)
    head += row
    group += head
    body = nodes.tbody()
    group += body
    return table, body


class KernelVersionsTable(SphinxDirective):
    """``kernel-versions-table``: see the module docstring."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        headers = ("Rule", "Behaviour", "Kernels", "Source", "Key")
        table, body = _table(headers, (6, 34, 18, 34, 8))
        for change in CHANGES:
            row = nodes.row()
            row += entry(_rule_ref(change.rule))
            row += entry(change.what)
            row += entry(_versions(change))
            row += entry(change.source)
            row += entry(nodes.literal(text=change.name))
            body += row
        return [table]


_KIND = {
    "acs": "ACS table entry",
    "acs-id": "ids the function lists",
    "acs-cap": "ACS capability mask",
    "dma-alias": "DMA alias fixup",
    "bridge-flag": "bridge flag fixup",
}


def _quirk_rows() -> list[tuple[DatedQuirk, list[str]]]:
    """The dated entries, those of one function with the same versions on one row."""
    rows: list[tuple[DatedQuirk, list[str]]] = []
    for q in KERNEL_QUIRK_DATES:
        last = rows[-1][0] if rows else None
        if last is not None and (last.kind, last.function, last.versions) == (
            q.kind,
            q.function,
            q.versions,
        ):
            rows[-1][1].append(q.devices)
        else:
            rows.append((q, [q.devices]))
    return rows


class QuirkVersionsTable(SphinxDirective):
    """``quirk-versions-table``: see the module docstring."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        headers = ("Rule", "Quirk", "Devices", "Kernels", "Source")
        table, body = _table(headers, (6, 22, 18, 24, 30))
        for quirk, devices in _quirk_rows():
            row = nodes.row()
            row += entry(_rule_ref(quirk.rule))
            name = nodes.inline()
            name += nodes.literal(text=quirk.function)
            name += nodes.Text(f" ({_KIND[quirk.kind]})")
            row += entry(name)
            row += entry(", ".join(devices))
            unknown = "kept" if quirk.kept_if_uncertain else "left out"
            row += entry(f"{quirk.versions.describe()}; where not known: {unknown}")
            row += entry(quirk.versions.source)
            body += row
        return [table]


#: The value types of the versioned quirk tables, which ``Quirks``, ``AcsQuirk``,
#: ``DmaAliasQuirk`` and ``BridgeFlagQuirk`` name in their signatures; internal
#: (as the quirk context is), described on the kernel versions page.
NITPICK_IGNORE = [
    ("py:class", f"iommugroups._kernel.quirks.{name}")
    for name in ("QuirkVersions", "UncertainQuirk", "AcsCapQuirk")
]


def _ignore_internal_types(app: Sphinx, config: Config) -> None:
    config.nitpick_ignore = [*config.nitpick_ignore, *NITPICK_IGNORE]


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives (and the quirk version types as internal)."""
    app.add_directive("kernel-versions-table", KernelVersionsTable)
    app.add_directive("quirk-versions-table", QuirkVersionsTable)
    app.connect("config-inited", _ignore_internal_types)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
