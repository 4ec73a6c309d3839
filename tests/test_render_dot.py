"""DOT output: a parse of the text (balanced, every device a node once, clusters =
groups, edges = the bus hierarchy), determinism, escaping, and ``dot -Tsvg``
when Graphviz is installed (skipped otherwise: CI has no Graphviz).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings

from iommugroups import (
    IommuGroupsError,
    PcieType,
    PciFunction,
    Topology,
    canonical_groups,
    examples,
    load,
    make_context,
)
from iommugroups._analysis.show import acs_state
from iommugroups._render.dot import (
    MISSING_MESSAGE,
    GraphvizError,
    GraphvizMissing,
    dot_quote,
    to_dot,
    to_svg,
)
from iommugroups.testing import topologies

from .helpers import ISOLATING, bridge, ep

CAPTURES = Path(__file__).parent / "data" / "oracle" / "captures"
HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz `dot` is not installed")

_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|->|[{}\[\];,=]|[^\s{}\[\];,="]+')


def _unquote(token: str) -> str:
    """A DOT quoted string's text, with ``\\n`` as a newline (labels)."""
    assert token.startswith('"')
    assert token.endswith('"')
    out: list[str] = []
    chars = iter(token[1:-1])
    for ch in chars:
        if ch == "\\":
            nxt = next(chars)
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
        else:
            out.append(ch)
    return "".join(out)


@attrs.define
class Dot:
    """What the test reads back from DOT text."""

    nodes: dict[str, dict[str, str]] = attrs.field(factory=dict)
    node_count: dict[str, int] = attrs.field(factory=dict)
    cluster_of: dict[str, str | None] = attrs.field(factory=dict)
    clusters: list[str] = attrs.field(factory=list)
    edges: list[tuple[str, str, dict[str, str]]] = attrs.field(factory=list)
    graph: dict[str, str] = attrs.field(factory=dict)


def parse(text: str) -> Dot:
    """A small parser for the DOT subset ``to_dot`` writes; fails on anything else."""
    tokens = _TOKEN.findall(text)
    dot = Dot()
    assert tokens[:3] == ["digraph", "iommugroups", "{"]
    pos = 3
    stack: list[str | None] = [None]

    def attr_list() -> dict[str, str]:
        nonlocal pos
        out: dict[str, str] = {}
        assert tokens[pos] == "["
        pos += 1
        while tokens[pos] != "]":
            key, eq, value = tokens[pos : pos + 3]
            assert eq == "=", tokens[pos : pos + 3]
            out[key] = _unquote(value) if value.startswith('"') else value
            pos += 3
            if tokens[pos] == ",":
                pos += 1
        pos += 1
        return out

    while stack:
        tok = tokens[pos]
        if tok == "}":
            stack.pop()
            pos += 1
        elif tok == ";":
            pos += 1
        elif tok == "subgraph":
            name = tokens[pos + 1]
            assert tokens[pos + 2] == "{"
            assert name not in dot.clusters
            dot.clusters.append(name)
            stack.append(name)
            pos += 3
        elif tok in ("graph", "node", "edge"):
            pos += 1
            attrs_ = attr_list()
            if tok == "graph":
                dot.graph = attrs_
        elif tok.startswith('"'):
            name = _unquote(tok)
            pos += 1
            if tokens[pos] == "->":
                target = _unquote(tokens[pos + 1])
                pos += 2
                edge_attrs = attr_list() if tokens[pos] == "[" else {}
                dot.edges.append((name, target, edge_attrs))
            else:
                node_attrs = attr_list() if tokens[pos] == "[" else {}
                dot.nodes[name] = node_attrs
                dot.node_count[name] = dot.node_count.get(name, 0) + 1
                dot.cluster_of[name] = stack[-1]
        else:  # cluster attributes: key = value
            key, eq = tokens[pos : pos + 2]
            assert stack[-1] is not None, tokens[pos : pos + 3]  # only inside a cluster
            assert key in {"label", "style", "color", "fontsize"}, key
            assert eq == "=", tokens[pos : pos + 3]
            pos += 3
        assert pos <= len(tokens)
    assert pos == len(tokens), "text after the closing brace"
    return dot


def _balanced(text: str) -> bool:
    depth = 0
    for tok in _TOKEN.findall(text):
        if tok in ("{", "["):
            depth += 1
        elif tok in ("}", "]"):
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _topologies() -> Iterator[tuple[str, Topology]]:
    yield "desktop", examples.desktop()
    yield "d05", examples.d05()
    for name in ("q35-1000", "q35-1003", "q35-1101", "q35-1107"):
        yield name, load(CAPTURES / f"{name}.lspci")


NAMED = [pytest.param(t, id=name) for name, t in _topologies()]


def assert_dot_matches(topology: Topology, text: str) -> Dot:
    grouping = canonical_groups(topology)
    assert _balanced(text)
    dot = parse(text)
    names = [str(f.address) for f in topology.functions] + [
        p.name for p in topology.platform_devices
    ]
    # every device is a node exactly once; the other nodes are root buses
    for name in names:
        assert dot.node_count.get(name) == 1, name
    extra = set(dot.nodes) - set(names)
    assert all(n.startswith("bus ") for n in extra), extra
    # one cluster per group, holding exactly its members
    assert dot.clusters == [f"cluster_{g}" for g in sorted(grouping.groups)]
    for gid, members in grouping.groups.items():
        inside = {n for n, c in dot.cluster_of.items() if c == f"cluster_{gid}"}
        assert inside == set(members)
    for name in names:
        if grouping.group_of(name) is None:
            assert dot.cluster_of[name] is None
            assert "no group" in dot.nodes[name]["label"]
    # one bus edge into every function, from the bridge above it (or its root bus)
    ctx = make_context(topology)
    solid = [(a, b) for a, b, e in dot.edges if e.get("style") != "dashed"]
    assert sorted(b for _a, b in solid) == sorted(str(f.address) for f in topology.functions)
    for a, b in solid:
        assert a in dot.nodes
        fn = topology.get(b)
        above = topology.bridge_above(fn.address)
        if above is not None:
            assert a == str(above.address)
        elif fn.physfn is None:
            assert a == f"bus {fn.address.domain:04x}:{fn.address.bus:02x}"
    dashed = sorted((a, b) for a, b, e in dot.edges if e.get("style") == "dashed")
    assert dashed == sorted((str(f.physfn), str(f.address)) for f in topology if f.physfn)
    for fn in topology.functions:
        label = dot.nodes[str(fn.address)]["label"]
        assert label.splitlines()[0] == (
            str(fn.address)[5:] if fn.address.domain == 0 else str(fn.address)
        )
        assert f"[{fn.vendor:04x}:{fn.device:04x}]" in label
        if fn.is_bridge:
            assert f"[{acs_state(fn, ctx).value}]" in label.splitlines()
    return dot


@pytest.mark.parametrize("topology", NAMED)
def test_dot_structure(topology: Topology) -> None:
    assert_dot_matches(topology, to_dot(topology, canonical_groups(topology)))


@settings(max_examples=30, deadline=None)
@given(topologies(max_functions=25))
def test_dot_structure_on_random_topologies(topology: Topology) -> None:
    assert_dot_matches(topology, to_dot(topology, canonical_groups(topology)))


@pytest.mark.parametrize("topology", NAMED)
def test_deterministic(topology: Topology) -> None:
    grouping = canonical_groups(topology)
    text = to_dot(topology, grouping, title="t")
    assert to_dot(topology, grouping, title="t") == text
    shuffled = topology.replace(functions=tuple(reversed(topology.functions)))
    assert to_dot(shuffled, canonical_groups(shuffled), title="t") == text


def test_virtual_bus_and_ungrouped_devices() -> None:
    topo = Topology(
        [
            bridge("00:01.0", 1, acs=ISOLATING),
            ep("01:00.0"),
            ep("02:00.0", physfn="01:00.0"),
        ]
    )
    dot = assert_dot_matches(topo, to_dot(topo, canonical_groups(topo)))
    assert ("0000:00:01.0", "0000:02:00.0", {}) in dot.edges  # above the PF's bus
    d05 = examples.d05()
    dot = assert_dot_matches(d05, to_dot(d05, canonical_groups(d05)))
    assert dot.nodes["HISI0162:01"]["shape"] == "component"


def test_acs_styles() -> None:
    topo = Topology(
        [
            bridge("00:01.0", 1, acs=ISOLATING),
            bridge("00:02.0", 2, acs=None),
            attrs.evolve(bridge("00:03.0", 3), unknown={"acs"}),
            bridge("00:1e.0", 4, kind=PcieType.PCI_BRIDGE),
        ]
    )
    dot = parse(to_dot(topo, canonical_groups(topo)))
    fills = {n: a.get("fillcolor") for n, a in dot.nodes.items()}
    assert fills["0000:00:01.0"] == "#d8f0d8"
    assert fills["0000:00:02.0"] == fills["0000:00:1e.0"] == "#f6d5d5"
    assert fills["0000:00:03.0"] == "#fff2c0"
    assert "[ACS ?]" in dot.nodes["0000:00:03.0"]["label"]


def test_escaping() -> None:
    title = 'a "quoted" \\l title\nwith { braces } and ; -> [x]'
    assert _unquote(dot_quote(title)) == title
    topo = Topology([PciFunction("00:00.0")], name=title)
    text = to_dot(topo, canonical_groups(topo), title=title)
    assert _balanced(text)
    dot = parse(text)
    assert dot.graph["label"] == title
    assert to_dot(topo, canonical_groups(topo)).count("label=") == 3  # no graph label
    assert "\\\\l" in dot_quote("\\l")  # a backslash cannot start a DOT escape


def test_to_dot_runs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("to_dot must not start a process")

    monkeypatch.setattr(subprocess, "run", boom)
    monkeypatch.setattr(subprocess, "Popen", boom)
    topo = examples.desktop()
    assert to_dot(topo, canonical_groups(topo)).endswith("}\n")


def test_svg_without_graphviz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(GraphvizMissing) as info:
        to_svg("digraph { }")
    err = info.value
    assert isinstance(err, IommuGroupsError)
    assert isinstance(err, RuntimeError)
    assert isinstance(err, GraphvizError)
    assert (
        str(err)
        == MISSING_MESSAGE
        == (
            "`--format svg` needs Graphviz's `dot` (Debian: apt-get install graphviz); "
            "`--format dot` works without it"
        )
    )


def test_svg_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: "/bin/dot-that-fails")

    def failing(*_a: object, **_k: object) -> subprocess.CompletedProcess[bytes]:
        return subprocess.CompletedProcess(["dot"], 1, b"", b"Error: syntax error in line 1\n")

    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(GraphvizError, match="exit status 1: Error: syntax error in line 1"):
        to_svg("digraph {")

    def slow(*_a: object, **_k: object) -> subprocess.CompletedProcess[bytes]:
        raise subprocess.TimeoutExpired(["dot"], 1.0)

    monkeypatch.setattr(subprocess, "run", slow)
    with pytest.raises(GraphvizError, match="did not finish within 1 s"):
        to_svg("digraph { }", timeout=1.0)


@needs_dot
@pytest.mark.parametrize("topology", NAMED)
def test_dot_accepts_it(topology: Topology) -> None:
    text = to_dot(topology, canonical_groups(topology), title=f'{topology.name} "x" \\ y')
    dot = shutil.which("dot")
    assert dot is not None
    proc = subprocess.run([dot, "-Tsvg"], input=text.encode(), capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b""
    svg = to_svg(text)
    assert b"<svg" in svg
    assert b"IOMMU group 0" in svg


@needs_dot
def test_real_dot_rejects_bad_input() -> None:
    with pytest.raises(GraphvizError, match="exit status"):
        to_svg("digraph {")
