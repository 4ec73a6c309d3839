"""Graphviz output: the PCI topology with its IOMMU groups as clusters.

:func:`to_dot` is pure: a topology and a grouping in, DOT text out, the same
text for the same input (every list is sorted). :func:`to_svg` is the one
adapter that leaves Python: it runs Graphviz's ``dot -Tsvg`` in a subprocess,
and raises :class:`GraphvizMissing` when ``dot`` is not installed (``--format
dot`` needs nothing but this module).

The graph (``rankdir=LR``, so the tree reads from the root on the left):

* one node per PCI function, named by its full address (``"0000:01:00.0"``),
  labelled with its short address, class name, ``[vendor:device]`` and kind;
  a bridge's label adds its ACS state (``[ACS]``, ``[no ACS]``, ``[ACS off]``,
  ``[ACS quirk]``, ``[ACS ?]``, ..., see :class:`~iommugroups._analysis.show.AcsState`)
  and its fill colour says whether it isolates (green), does not (red) or is
  unknown (yellow);
* one node per root bus (``"bus 0000:00"``, an oval) and per platform device
  (named by its name);
* an edge from the bridge above each function (``bus->self``) to it, from
  the root-bus node for a function on a root bus; an SR-IOV VF on a virtual
  bus hangs from the bridge (or root bus) above its PF's bus, and a dashed
  edge joins each PF to its VFs;
* one ``subgraph cluster_N`` per IOMMU group ``N``, holding exactly the
  group's members; devices without a group are drawn outside every cluster,
  dashed and labelled ``no group``.
"""

from __future__ import annotations

import shutil
import subprocess

from .._analysis.names import class_name, device_kind, short_name
from .._analysis.show import AcsState, acs_state
from .._errors import IommuGroupsError
from .._kernel.groups import Grouping, device_sort_key
from .._kernel.model import PciFunction, Topology
from .._kernel.quirks import Quirks, make_context

__all__ = ["MISSING_MESSAGE", "GraphvizError", "GraphvizMissing", "dot_quote", "to_dot", "to_svg"]


def __dir__() -> list[str]:
    return __all__


class GraphvizError(IommuGroupsError, RuntimeError):
    """Graphviz's ``dot`` could not turn the DOT text into SVG."""


class GraphvizMissing(GraphvizError):
    """``dot`` is not installed (``--format svg`` needs it, ``--format dot`` does not)."""


MISSING_MESSAGE = (
    "`--format svg` needs Graphviz's `dot` (Debian: apt-get install graphviz); "
    "`--format dot` works without it"
)

_FILL_ISOLATING = "#d8f0d8"
_FILL_NOT_ISOLATING = "#f6d5d5"
_FILL_UNKNOWN = "#fff2c0"


def dot_quote(text: str) -> str:
    r"""``text`` as a DOT double-quoted string.

    Backslashes and double quotes are escaped, so nothing in ``text`` can be
    read as a DOT escape (``\l``, ``\N``...); a newline becomes ``\n``, the
    line break of a label.

    >>> print(dot_quote('say "hi"\\there\nnext'))
    "say \"hi\"\\there\nnext"
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{escaped}"'


def _bus_node(domain: int, bus: int) -> str:
    return f"bus {domain:04x}:{bus:02x}"


def _parent(topology: Topology, fn: PciFunction) -> str:
    """The node an edge to ``fn`` starts at: the bridge above, or a root-bus node."""
    br = topology.upstream_bridge(fn)
    if br is not None:
        return str(br.address)
    dom = fn.address.domain
    return _bus_node(dom, topology.link_bus(dom, fn.address.bus))


def _fill(state: AcsState) -> str:
    if state is AcsState.UNKNOWN:
        return _FILL_UNKNOWN
    return _FILL_ISOLATING if state.isolates else _FILL_NOT_ISOLATING


def to_dot(
    topology: Topology,
    grouping: Grouping,
    *,
    title: str = "",
    quirks: Quirks | None = None,
) -> str:
    """The topology and its groups as a Graphviz ``digraph`` (see the module docstring).

    Args:
        topology: the machine.
        grouping: its groups (any strategy's).
        title: the graph's label (none when empty).
        quirks: the quirk tables the ACS states are read with (default: the
            kernel's).

    >>> from iommugroups import examples, canonical_groups
    >>> topo = examples.desktop()
    >>> text = to_dot(topo, canonical_groups(topo), title="desktop")
    >>> text.count("subgraph cluster_"), text.startswith("digraph iommugroups {")
    (13, True)
    """
    ctx = make_context(topology, quirks)
    functions = sorted(topology.functions, key=lambda f: f.address)
    platform = sorted(topology.platform_devices, key=lambda p: p.name)

    def pci_node(fn: PciFunction, indent: str) -> str:
        lines = [
            short_name(fn.address),
            class_name(fn.class_code),
            f"[{fn.vendor:04x}:{fn.device:04x}] {device_kind(fn)}",
        ]
        attrs = []
        if fn.is_bridge:
            state = acs_state(fn, ctx)
            lines.append(f"[{state.value}]")
            attrs.append(f"fillcolor={dot_quote(_fill(state))}")
            attrs.append("penwidth=1.5")
        if grouping.group_of(fn.address) is None:
            lines.append("no group")
            attrs.append('style="rounded,filled,dashed"')
        label = "\n".join(lines)
        return (
            f"{indent}{dot_quote(str(fn.address))} [label={dot_quote(label)}"
            + "".join(f", {a}" for a in attrs)
            + "];"
        )

    out = ["digraph iommugroups {"]
    graph_attrs = ["rankdir=LR", 'fontname="Helvetica"', "fontsize=10", "nodesep=0.15"]
    if title:
        graph_attrs += [f"label={dot_quote(title)}", "labelloc=t"]
    out.append(f"  graph [{', '.join(graph_attrs)}];")
    out.append(
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", '
        'fontname="Helvetica", fontsize=9];'
    )
    out.append("  edge [arrowsize=0.6];")

    roots = sorted(
        {
            (f.address.domain, f.address.bus)
            for f in functions
            if topology.is_root_bus(f.address.domain, f.address.bus)
        }
    )
    for dom, bus in roots:
        name = _bus_node(dom, bus)
        out.append(
            f"  {dot_quote(name)} [label={dot_quote(f'PCI root bus {dom:04x}:{bus:02x}')}, "
            'shape=oval, fillcolor="#eeeeee"];'
        )

    by_name = {str(f.address): f for f in functions}
    platform_names = {p.name: p for p in platform}
    for gid in sorted(grouping.groups):
        out.append(f"  subgraph cluster_{gid} {{")
        out.append(
            f"    label={dot_quote(f'IOMMU group {gid}')}; "
            'style="rounded,dashed"; color="#555555"; fontsize=10;'
        )
        for member in sorted(grouping.groups[gid], key=device_sort_key):
            fn = by_name.get(member)
            if fn is not None:
                out.append(pci_node(fn, "    "))
            elif member in platform_names:
                label = f"{member}\nplatform device ({platform_names[member].bus})"
                out.append(f"    {dot_quote(member)} [label={dot_quote(label)}, shape=component];")
            else:  # a name the topology does not know: drawn plainly
                out.append(f"    {dot_quote(member)};")
        out.append("  }")

    grouped = {m for members in grouping.groups.values() for m in members}
    for fn in functions:
        if str(fn.address) not in grouped:
            out.append(pci_node(fn, "  "))
    for p in platform:
        if p.name not in grouped:
            label = f"{p.name}\nplatform device ({p.bus})\nno group"
            out.append(
                f"  {dot_quote(p.name)} [label={dot_quote(label)}, shape=component, "
                'style="filled,dashed"];'
            )

    for fn in functions:
        out.append(f"  {dot_quote(_parent(topology, fn))} -> {dot_quote(str(fn.address))};")
    for fn in functions:
        if fn.physfn is not None:
            out.append(
                f"  {dot_quote(str(fn.physfn))} -> {dot_quote(str(fn.address))} "
                '[style=dashed, arrowhead=empty, constraint=false, tooltip="SR-IOV VF"];'
            )
    out.append("}")
    return "\n".join(out) + "\n"


def to_svg(dot_text: str, *, timeout: float = 120.0) -> bytes:
    """Render DOT text to SVG with Graphviz's ``dot -Tsvg``.

    The only function of the renderers that touches the outside world: it
    runs ``dot`` (found on ``PATH``) in a subprocess.

    Raises:
        GraphvizMissing: ``dot`` is not on ``PATH``.
        GraphvizError: ``dot`` failed, or ran longer than ``timeout`` seconds.
    """
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing(MISSING_MESSAGE)
    try:
        proc = subprocess.run(
            [exe, "-Tsvg"],
            input=dot_text.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GraphvizError(f"`dot -Tsvg` did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise GraphvizError(f"cannot run {exe}: {exc}") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = f": {detail[0]}" if detail else ""
        raise GraphvizError(f"`dot -Tsvg` failed with exit status {proc.returncode}{why}")
    return proc.stdout
