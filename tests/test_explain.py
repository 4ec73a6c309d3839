"""``explain`` / ``explain_pair``: the reasons must be true and sufficient by the rules.

The acceptance check (:class:`RuleChecker`) never compares text. For every
pair of devices of every oracle capture, designed topology and the D05
example it takes the structured reasons of :func:`explain_pair` and verifies
them against the rule functions themselves (``pci_acs_enabled``,
``pci_acs_path_enabled``, ``pci_for_each_dma_alias``,
``pci_devs_are_dma_aliases``, the topology), with its own upward walk:

* same group: every link of the chain holds by its rule, the links form a
  path from ``a`` to ``b`` (so they are sufficient: each link is a rule under
  which ``pci_device_group`` joins the group the other holds), and the
  summary cause holds (e.g. "both below non-isolated bridge X": X is an
  ancestor bridge of both, ``pci_acs_path_enabled(X)`` is false, and the walk
  from each device reaches X before any isolated bridge);
* different groups: each named isolation point really is ACS-isolated and is
  where that device's walk stops, and what is said to separate them holds.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path

import pytest

import iommugroups
from iommugroups import (
    REQ_ACS_FLAGS,
    Acs,
    AcsFlags,
    AcsQuirk,
    IdMapping,
    IommuInstance,
    IommuKind,
    PcieType,
    PciFunction,
    PlatformDevice,
    Topology,
    UnknownDevice,
    canonical_groups,
    examples,
    make_context,
    pci_acs_enabled,
    pci_acs_path_enabled,
    pci_for_each_dma_alias,
)
from iommugroups._analysis.explain import Explainer, explain, explain_pair
from iommugroups._analysis.reasons import (
    EXPLAIN_SCHEMA,
    LINK_KINDS,
    Explanation,
    PairExplanation,
    Reason,
)
from iommugroups._kernel.acs import pci_acs_flags_enabled
from iommugroups._kernel.alias import pci_devs_are_dma_aliases
from iommugroups._kernel.fwspec import pci_fwspec, platform_fwspec
from iommugroups._render.explain import render_explanation, render_pair

from .helpers import FULL, ISOLATING, bridge, ep

DATA = Path(__file__).parent / "data" / "oracle"
CAPTURES = sorted(glob.glob(str(DATA / "captures" / "*.lspci"))) + sorted(
    glob.glob(str(DATA / "designed" / "*.lspci"))
)


def _rid(rid: int) -> str:
    return f"{rid >> 8:02x}:{(rid >> 3) & 0x1F:02x}.{rid & 7}"


class RuleChecker:
    """Checks explanations against the rules, independently of ``_explain``."""

    def __init__(self, topology: Topology) -> None:
        self.topo = topology
        self.ctx = make_context(topology)
        self.grouping = canonical_groups(topology)
        self.platform = {d.name: d for d in topology.platform_devices}
        self._walks: dict[str, tuple[list[str], PciFunction, PciFunction | None]] = {}

    # --- facts from the rules -------------------------------------------
    def fn(self, name: str) -> PciFunction:
        return self.topo.get(name)

    def bridge_above(self, fn: PciFunction) -> PciFunction | None:
        """``dev->bus->self``, virtual buses stepped over (as R2.4/R4.2 do)."""
        t = self.topo
        dom, bus = fn.address.domain, fn.address.bus
        while not t.is_root_bus(dom, bus):
            br = t.bus_self(dom, bus)
            if br is not None:
                return br
            parent = t.parent_bus(dom, bus)
            assert parent is not None
            bus = parent
        return None

    def ancestors(self, fn: PciFunction) -> list[str]:
        out: list[str] = []
        cur = self.bridge_above(fn)
        while cur is not None:
            out.append(str(cur.address))
            cur = self.bridge_above(cur)
        return out

    def enabled(self, fn: PciFunction, flags: AcsFlags = REQ_ACS_FLAGS) -> bool:
        return pci_acs_enabled(fn, flags, self.ctx)

    def path_isolated(self, fn: PciFunction) -> bool:
        return pci_acs_path_enabled(fn, None, REQ_ACS_FLAGS, self.ctx)

    def walk(self, name: str) -> tuple[list[str], PciFunction, PciFunction | None]:
        """Steps 1-2 without groups: devices reached, the top, the isolated stop."""
        memo = self._walks.get(name)
        if memo is not None:
            return memo
        fn = self.fn(name)
        aliases = list(pci_for_each_dma_alias(fn, self.ctx))[1:]
        reached = [str(w.address) for w, _ in aliases if w.address != fn.address]
        cur = aliases[-1][0] if aliases else fn
        stop: PciFunction | None = None
        while (br := self.bridge_above(cur)) is not None:
            if self.path_isolated(br):
                stop = br
                break
            reached.append(str(br.address))
            cur = br
        memo = (reached, cur, stop)
        self._walks[name] = memo
        return memo

    def r52(self, x: PciFunction, t: PciFunction) -> bool:
        """``get_pci_function_alias_group`` from ``x`` would consider ``t`` (R5.2)."""
        a, b = x.address, t.address
        return (
            (a.domain, a.bus, a.device) == (b.domain, b.bus, b.device)
            and a != b
            and self.topo.is_multifunction(x)
            and not self.enabled(x)
            and not self.enabled(t)
        )

    # --- links ------------------------------------------------------------
    def check_link(self, h: Reason) -> None:
        assert h.kind in LINK_KINDS, h
        src, dst = h.facts["from"], h.facts["to"]
        assert src != dst
        if h.kind == "stream-sharing":
            specs = []
            for name in (src, dst):
                if name in self.platform:
                    specs.append(platform_fwspec(self.platform[name]))
                else:
                    specs.append(pci_fwspec(self.fn(name), self.ctx))
            sa, sb = specs
            assert sa is not None
            assert sb is not None
            assert sa.iommu == sb.iommu == h.facts["iommu"]
            kinds = {i.name: i.kind for i in self.topo.iommus}
            assert kinds[sa.iommu] is IommuKind.SMMU_V2
            assert set(sa.stream_ids) & set(sb.stream_ids)
            return
        x, y = self.fn(src), self.fn(dst)
        if h.kind == "upstream-bridge":
            assert self.bridge_above(x) is y, h  # directly above
            assert y.is_bridge
            assert not self.path_isolated(y), h  # R4.2 / R2.4
            path = [y, *(self.fn(n) for n in self.ancestors(y))]
            blocker = self.fn(h.facts["blocker"])
            assert blocker in path
            assert not self.enabled(blocker)
            assert all(self.enabled(d) for d in path[: path.index(blocker)])  # the first one
        elif h.kind == "bridge-alias":
            hits = [rid for w, rid in pci_for_each_dma_alias(x, self.ctx) if w is y and w is not x]
            assert hits, h  # R3.4: the bridge's requester id is one of x's aliases
            assert h.facts["alias_rid"] in {_rid(r) for r in hits}
        elif h.kind == "dma-alias-peer":
            a, b = x.address, y.address
            assert (a.domain, a.bus) == (b.domain, b.bus)
            assert pci_devs_are_dma_aliases(x, y, self.ctx), h  # R3.6
        elif h.kind == "function-peer":
            assert self.r52(x, y), h  # R5.2

    def check_chain(self, a: str, b: str, chain: tuple[Reason, ...]) -> None:
        assert chain, f"{a} and {b} share a group but no link is given"
        cur = a
        for h in chain:
            self.check_link(h)
            ends = (h.facts["from"], h.facts["to"])
            assert cur in ends, (cur, h)
            cur = ends[1] if cur == ends[0] else ends[0]
        assert cur == b, (a, b, chain)

    # --- pairs --------------------------------------------------------------
    def check_same(self, p: PairExplanation) -> None:
        assert p.same_group
        assert self.grouping.same_group(p.a, p.b)
        assert not p.separation
        self.check_chain(p.a, p.b, p.chain)
        c = p.cause
        assert c is not None
        if c.kind == "common-bridge":
            x = c.facts["bridge"]
            assert not self.path_isolated(self.fn(x))
            for d in (p.a, p.b):
                assert x in self.ancestors(self.fn(d)), (x, d)
                assert x in self.walk(d)[0], (x, d)  # reached before any isolated bridge
        elif c.kind == "upstream-bridge":
            x, d = c.facts["bridge"], c.facts["device"]
            assert {x, d} == {p.a, p.b}
            assert not self.path_isolated(self.fn(x))
            assert x in self.ancestors(self.fn(d))
            assert x in self.walk(d)[0]
        elif c.kind == "function-peer":
            fa, fb = self.fn(p.a), self.fn(p.b)
            assert (fa.address.domain, fa.address.bus, fa.address.device) == (
                fb.address.domain,
                fb.address.bus,
                fb.address.device,
            )
            assert not self.enabled(fa)
            assert not self.enabled(fb)
            assert {h.kind for h in p.chain} == {"function-peer"}
        elif c.kind == "dma-alias":
            assert {h.kind for h in p.chain} == {"dma-alias-peer"}
        elif c.kind == "stream-sharing":
            assert {h.kind for h in p.chain} == {"stream-sharing"}
        else:
            assert c.kind == "chain", c

    def check_different(self, p: PairExplanation) -> None:
        assert not p.same_group
        assert not self.grouping.same_group(p.a, p.b)
        assert not p.chain
        assert p.cause is None
        separating = {"isolated-bridge", "separate-tops", "different-root-bus", "no-group"}
        kinds = [r.kind for r in p.separation]
        assert separating & set(kinds) or kinds.count("platform"), kinds
        for r in p.separation:
            f = r.facts
            if r.kind == "isolated-by":
                s = self.fn(f["bridge"])
                assert self.path_isolated(s), r  # really ACS-isolated (R2.4)
                _, top, stop = self.walk(f["device"])
                assert stop is s
                assert str(top.address) == f["top"]
            elif r.kind == "root-bus-top":
                _, top, stop = self.walk(f["device"])
                assert stop is None
                assert str(top.address) == f["top"]
                assert self.topo.is_root_bus(top.address.domain, top.address.bus)
            elif r.kind == "isolated-bridge":
                s = self.fn(f["bridge"])
                assert self.path_isolated(s), r
                assert f["bridge"] in self.ancestors(self.fn(f["below"]))
                assert f["bridge"] not in self.ancestors(self.fn(f["other"]))
                assert self.walk(f["below"])[2] is s
            elif r.kind == "separate-tops":
                (_, ta, sa), (_, tb, sb) = self.walk(p.a), self.walk(p.b)
                assert (str(ta.address), str(tb.address)) == (f["top_a"], f["top_b"])
                assert ta is not tb
                assert (ta.address.domain, ta.address.bus) == (tb.address.domain, tb.address.bus)
                if f["bridge"]:
                    assert sa is sb
                    assert sa is not None
                    assert str(sa.address) == f["bridge"]
                    assert self.path_isolated(sa)
                else:
                    assert sa is None
                    assert sb is None
                same_slot = ta.address.device == tb.address.device
                assert f["same_slot"] == ("yes" if same_slot else "no")
                aliases = pci_devs_are_dma_aliases(ta, tb, self.ctx)
                assert f["dma_aliases"] == ("yes" if aliases else "no")
                peers = self.r52(ta, tb) or self.r52(tb, ta)
                assert f["function_peers"] == ("yes" if peers else "no")
                assert f["linked"] == "no", r  # nothing joins the two tops
            elif r.kind == "different-root-bus":
                (_, ta, sa), (_, tb, sb) = self.walk(p.a), self.walk(p.b)
                assert sa is None
                assert sb is None
                assert (ta.address.domain, ta.address.bus) != (tb.address.domain, tb.address.bus)
                for t in (ta, tb):
                    assert self.topo.is_root_bus(t.address.domain, t.address.bus)
            elif r.kind == "no-group":
                assert self.grouping.group_of(f["device"]) is None
            elif r.kind == "platform":
                assert f["device"] in self.platform
            else:
                raise AssertionError(f"unexpected separation kind {r.kind}")

    def redirects(self, x: PciFunction) -> bool:
        """``x`` redirects peer requests (RR) by a quirk or its ACS registers.

        ``pci_acs_enabled(x, RR)`` without the single-function shortcut
        (R2.3 step 4), which assumes there is no peer.
        """
        verdict, _quirk = self.ctx.quirks.acs_decision(x, AcsFlags.RR, self.ctx)
        if verdict is not None:  # R2.6
            return verdict
        if x.pcie_type is None or x.pcie_type in (
            PcieType.PCI_BRIDGE,
            PcieType.PCIE_BRIDGE,
            PcieType.RC_EC,
        ):
            return False
        return pci_acs_flags_enabled(x, AcsFlags.RR)  # R2.2

    def check_reach(self, p: PairExplanation) -> None:
        for possible, reason in ((p.a_can_reach_b, p.a_to_b), (p.b_can_reach_a, p.b_to_a)):
            f = reason.facts
            assert reason.kind == "reach"
            assert f["possible"] == {True: "yes", False: "no", None: "unknown"}[possible]
            case = f["case"]
            if possible is False:  # redirected: the ingress point really redirects (RR)
                assert case in ("same-device", "switch", "root-complex")
                assert self.redirects(self.fn(f["ingress"]))
            elif possible is True:
                assert case in ("same-device", "switch", "conventional-bus")
                if case != "conventional-bus":
                    assert not self.redirects(self.fn(f["ingress"]))
                else:
                    br = self.topo.bus_self(*(int(x, 16) for x in f["point"].split(":")))
                    assert br is not None
                    assert br.pcie_type in (None, PcieType.PCI_BRIDGE)
            else:
                assert case in (
                    "root-complex",
                    "own-path",
                    "unknown",
                    "not-modelled",
                    "not-translated",
                    "same-device",
                    "switch",
                )

    def check_pair(self, p: PairExplanation) -> None:
        if p.same_group:
            self.check_same(p)
        else:
            self.check_different(p)
        self.check_reach(p)


def _names(topology: Topology) -> list[str]:
    return [str(f.address) for f in topology] + [d.name for d in topology.platform_devices]


def _topologies() -> Iterator[tuple[str, Topology]]:
    for path in CAPTURES:
        yield Path(path).name, iommugroups.load(path)
    yield "d05", examples.d05()


@pytest.fixture(scope="module", params=[*[Path(p).name for p in CAPTURES], "d05"])
def machine(request: pytest.FixtureRequest) -> tuple[Topology, Explainer, RuleChecker]:
    name = request.param
    topo = examples.d05() if name == "d05" else iommugroups.load(_path(name))
    return topo, Explainer(topo), RuleChecker(topo)


def _path(name: str) -> str:
    return next(p for p in CAPTURES if Path(p).name == name)


# ============================================================ acceptance
def test_the_oracle_set_is_there() -> None:
    assert len(CAPTURES) >= 30
    assert any("designed" in p for p in CAPTURES)


def test_every_pair_in_one_group_has_a_true_sufficient_chain(
    machine: tuple[Topology, Explainer, RuleChecker],
) -> None:
    _topo, ex, checker = machine
    pairs = 0
    for members in checker.grouping.groups.values():  # per group, not all pairs
        for a, b in combinations(members, 2):
            p = ex.explain_pair(a, b)
            checker.check_pair(p)
            q = ex.explain_pair(b, a)  # both orders
            checker.check_pair(q)
            pairs += 1
    if any(len(m) > 1 for m in checker.grouping.groups.values()):
        assert pairs


def test_every_pair_in_different_groups_names_a_real_isolation(
    machine: tuple[Topology, Explainer, RuleChecker],
) -> None:
    topo, ex, checker = machine
    for a, b in combinations(_names(topo), 2):
        if not checker.grouping.same_group(a, b):
            checker.check_pair(ex.explain_pair(a, b))


def test_every_device_explanation_chain_holds(
    machine: tuple[Topology, Explainer, RuleChecker],
) -> None:
    topo, ex, checker = machine
    for name in _names(topo):
        x = ex.explain(name)
        assert x.group == checker.grouping.group_of(name)
        if x.group is None:
            assert [r.kind for r in x.chain] == ["ungrouped"]
            continue
        assert set(x.members) == set(checker.grouping.groups[x.group])
        links = [r for r in x.chain if r.kind in LINK_KINDS]
        for h in links:
            checker.check_link(h)
        # the links lead from the device to the group's creator, which ends the chain
        end = x.chain[-1]
        assert end.kind in ("new-group", "generic")
        creator = end.facts["device"]
        assert checker.grouping.group_of(creator) == x.group
        if creator != name:
            checker.check_chain(name, creator, tuple(links))
        else:
            assert not links
        if name not in checker.platform:
            fn = checker.fn(name)
            assert [r.device for r in x.acs] == [name, *checker.ancestors(fn)]
            for r in x.acs:
                d = checker.fn(r.device)
                assert r.facts["enabled"] == ("yes" if checker.enabled(d) else "no")
                if d.is_bridge:
                    iso = checker.path_isolated(d)
                    assert r.facts["path_isolated"] == ("yes" if iso else "no")


def test_the_d05_root_port_does_not_isolate_the_connectx5() -> None:
    p = explain_pair(examples.d05(), "000a:11:00.0", "000a:11:00.1")
    assert p.same_group
    assert p.cause is not None
    assert p.cause.kind == "common-bridge"
    assert p.cause.facts["bridge"] == "000a:10:00.0"
    rp = next(r for r in p.acs if r.device == "000a:10:00.0")
    assert rp.facts["decided_by"] == "no-capability"
    assert rp.facts["enabled"] == "no"


# ============================================================ unit topologies
def _kinds(reasons: tuple[Reason, ...]) -> list[str]:
    return [r.kind for r in reasons]


def _checked(topo: Topology, a: str, b: str) -> PairExplanation:
    p = explain_pair(topo, a, b)
    RuleChecker(topo).check_pair(p)
    return p


class TestUpstreamBridge:
    topo = Topology([bridge("00:01.0", 1), ep("01:00.0", mf=True), ep("01:00.1", mf=True)])

    def test_explain(self) -> None:
        x = explain(self.topo, "01:00.0")
        assert x.joined == "upstream"
        assert x.via == "0000:00:01.0"
        assert _kinds(x.chain) == ["upstream-bridge", "root-bus", "new-group"]
        hop = x.chain[0]
        assert hop.rule == "R4.2"
        assert dict(hop.facts) == {
            "from": "0000:01:00.0",
            "to": "0000:00:01.0",
            "bridge_type": "ROOT_PORT",
            "blocker": "0000:00:01.0",
            "blocker_acs": "has no ACS capability",
        }
        assert "no ACS capability" in hop.text
        assert "(R4.2)" in hop.text
        rp = x.acs[1]
        assert rp.kind == "acs"
        assert rp.rule == "R2.3"
        assert rp.facts["decided_by"] == "no-capability"
        assert rp.facts["acs_cap"] == "absent"
        assert rp.facts["path_isolated"] == "no"
        assert x.certain
        assert not x.unknown

    def test_pair_below_one_bridge(self) -> None:
        p = _checked(self.topo, "01:00.0", "01:00.1")
        assert p.cause is not None
        assert p.cause.kind == "common-bridge"
        assert p.cause.facts["bridge"] == "0000:00:01.0"
        assert _kinds(p.chain) == ["upstream-bridge", "upstream-bridge"]

    def test_pair_with_the_bridge(self) -> None:
        p = _checked(self.topo, "00:01.0", "01:00.1")
        assert p.cause is not None
        assert p.cause.kind == "upstream-bridge"
        assert dict(p.cause.facts) == {"bridge": "0000:00:01.0", "device": "0000:01:00.1"}
        assert p.a_can_reach_b is None
        assert p.a_to_b.facts["case"] == "own-path"

    def test_isolated_port_below_a_non_isolated_root_port(self) -> None:
        topo = Topology(
            [
                bridge("00:01.0", 1, 3),
                bridge("01:00.0", 2, 3, kind=PcieType.UPSTREAM),
                bridge("02:00.0", 3, kind=PcieType.DOWNSTREAM, acs=ISOLATING),
                ep("03:00.0"),
            ]
        )
        x = explain(topo, "03:00.0")
        hop = x.chain[0]
        assert hop.kind == "upstream-bridge"
        assert hop.facts["to"] == "0000:02:00.0"
        assert hop.facts["blocker"] == "0000:00:01.0"
        assert "R2.4" in hop.text
        dsp = next(r for r in x.acs if r.device == "0000:02:00.0")
        assert dsp.facts["enabled"] == "yes"
        assert dsp.facts["path_isolated"] == "no"
        assert dsp.facts["path_blocker"] == "0000:00:01.0"
        RuleChecker(topo).check_pair(explain_pair(topo, "03:00.0", "00:01.0"))


class TestBridgeAlias:
    topo = Topology(
        [
            bridge("00:1e.0", 1, kind=PcieType.PCI_BRIDGE),
            ep("01:01.0", kind=None),
            ep("01:02.0", kind=None),
        ]
    )

    def test_explain(self) -> None:
        x = explain(self.topo, "01:02.0")
        assert x.joined == "alias"
        hop = x.chain[0]
        assert hop.kind == "bridge-alias"
        assert hop.rule == "R3.4"
        assert hop.facts["alias_rid"] == "01:00.0"
        assert hop.facts["to"] == "0000:00:1e.0"
        assert "PCIe-to-PCI bridge: devices behind it use its requester id 01:00.0" in hop.text
        br = x.acs[1]
        assert br.facts["decided_by"] == "bridge-type"
        assert br.facts["type"] == "PCI_BRIDGE"

    def test_pair_shares_a_conventional_bus(self) -> None:
        p = _checked(self.topo, "01:01.0", "01:02.0")
        assert p.cause is not None
        assert p.cause.kind == "common-bridge"
        assert p.cause.rule == "R3.4"
        assert p.a_can_reach_b is True
        assert p.b_can_reach_a is True
        assert p.a_to_b.facts["case"] == "conventional-bus"

    def test_conventional_bridge_uses_its_own_id(self) -> None:
        topo = Topology([bridge("00:1e.0", 1, kind=None), ep("01:03.0", kind=None)])
        hop = explain(topo, "01:03.0").chain[0]
        assert hop.kind == "bridge-alias"
        assert hop.facts["alias_rid"] == "00:1e.0"


class TestFunctionPeer:
    topo = Topology(
        [
            bridge("00:01.0", 1, acs=ISOLATING),
            ep("01:00.0", mf=True),
            ep("01:00.1", mf=True, acs=Acs(cap=FULL, ctrl=AcsFlags.SV | AcsFlags.UF)),
        ]
    )

    def test_explain(self) -> None:
        x = explain(self.topo, "01:00.1")
        assert x.joined == "function-alias"
        assert x.via == "0000:01:00.0"
        assert _kinds(x.chain) == ["isolated-stop", "function-peer", "isolated-stop", "new-group"]
        stop = x.chain[0]
        assert stop.facts == {"device": "0000:01:00.1", "bridge": "0000:00:01.0"}
        hop = x.chain[1]
        assert hop.rule == "R5.2"
        assert hop.facts["slot"] == "0000:01:00"
        assert "lacking RR|CR" in hop.text
        own = x.acs[0]
        assert own.rule == "R2.2"
        assert own.facts["missing"] == "RR|CR"

    def test_pair(self) -> None:
        p = _checked(self.topo, "01:00.0", "01:00.1")
        assert p.cause is not None
        assert p.cause.kind == "function-peer"
        # 01:00.0 has no ACS: it does not redirect; 01:00.1's control lacks RR
        assert p.a_can_reach_b is True
        assert p.b_can_reach_a is True
        assert p.a_to_b.facts["case"] == "same-device"

    def test_rr_set_but_not_isolated_still_blocks_reach(self) -> None:
        rr = Acs(cap=FULL, ctrl=AcsFlags.RR | AcsFlags.CR)  # lacks SV|UF: not isolated
        topo = Topology(
            [bridge("00:01.0", 1, acs=ISOLATING), ep("01:00.0", mf=True, acs=rr), ep("01:00.1")]
        )
        p = _checked(topo, "01:00.0", "01:00.1")
        assert p.same_group
        assert p.a_can_reach_b is False
        assert p.b_can_reach_a is True

    def test_isolated_functions_are_separated(self) -> None:
        topo = Topology(
            [
                bridge("00:01.0", 1, acs=ISOLATING),
                ep("01:00.0", mf=True, acs=ISOLATING),
                ep("01:00.1", mf=True, acs=ISOLATING),
            ]
        )
        p = _checked(topo, "01:00.0", "01:00.1")
        assert not p.same_group
        assert _kinds(p.separation) == ["isolated-by", "isolated-by", "separate-tops"]
        sep = p.separation[-1]
        assert sep.facts["same_slot"] == "yes"
        assert sep.facts["function_peers"] == "no"
        assert p.a_can_reach_b is False
        assert p.b_can_reach_a is False


class TestDmaAliasPeer:
    topo = Topology(
        [
            bridge("00:01.0", 1, acs=ISOLATING),
            ep("01:00.0", aliases=frozenset({0x08})),
            ep("01:01.0"),
        ]
    )

    def test_pair(self) -> None:
        p = _checked(self.topo, "01:00.0", "01:01.0")
        assert p.cause is not None
        assert p.cause.kind == "dma-alias"
        assert _kinds(p.chain) == ["dma-alias-peer"]
        assert p.chain[0].rule == "R5.1"
        x = explain(self.topo, "01:01.0")
        assert x.joined == "alias-group"
        assert x.via == "0000:01:00.0"


class TestStreamSharingAndPlatform:
    topo = Topology(
        [bridge("00:01.0", 1, acs=ISOLATING), ep("01:00.0")],
        platform_devices=[PlatformDevice("uart", "smmu", (0x100,))],
        iommus=[IommuInstance("smmu", IommuKind.SMMU_V2)],
        id_mappings=[IdMapping(0, 0x0100, 1, 0x100, "smmu"), IdMapping(0, 0, 0x100, 0, "smmu")],
    )

    def test_pci_device_shares_the_platform_device_stream(self) -> None:
        x = explain(self.topo, "01:00.0")
        assert x.joined == "stream-sharing"
        assert x.via == "uart"
        assert _kinds(x.chain) == ["stream-sharing", "generic"]
        assert x.chain[0].facts["streams"] == "0x100"
        p = _checked(self.topo, "uart", "01:00.0")
        assert p.cause is not None
        assert p.cause.kind == "stream-sharing"
        assert p.a_can_reach_b is None
        assert p.a_to_b.facts["case"] == "not-modelled"

    def test_platform_device_alone(self) -> None:
        topo = Topology(
            [bridge("00:01.0", 1)],
            platform_devices=[PlatformDevice("sas", "smmu", (7,))],
            iommus=[IommuInstance("smmu", IommuKind.SMMU_V3)],
            id_mappings=[IdMapping(0, 0, 0x10000, 0x10000, "smmu")],
        )
        x = explain(topo, "sas")
        assert x.joined == "generic"
        assert x.chain[0].rule == "R1.5"
        assert not x.acs
        p = _checked(topo, "sas", "00:01.0")
        assert _kinds(p.separation) == ["platform"]


def test_ungrouped_device() -> None:
    topo = Topology(
        [bridge("00:01.0", 1), ep("01:00.0"), bridge("00:02.0", 2), ep("02:00.0")],
        iommus=[IommuInstance("smmu", IommuKind.SMMU_V3)],
        id_mappings=[IdMapping(0, 0, 0x10, 0, "smmu"), IdMapping(0, 0x100, 0x100, 0x100, "smmu")],
    )
    x = explain(topo, "02:00.0")
    assert x.group is None
    assert x.joined == "ungrouped"
    assert x.chain[0].kind == "ungrouped"
    assert "no IOMMU" in x.chain[0].text
    p = _checked(topo, "01:00.0", "02:00.0")
    assert _kinds(p.separation) == ["no-group"]
    assert p.b_can_reach_a is None
    assert p.b_to_a.facts["case"] == "not-translated"


class TestQuirks:
    def test_intel_pch_root_port(self) -> None:
        rp = bridge("00:1c.0", 1, vendor=0x8086, device=0x1C10)
        topo = Topology([rp, ep("01:00.0"), bridge("00:1c.1", 2, vendor=0x8086, device=0x1C12)])
        x = explain(topo, "01:00.0")
        assert x.joined == "new"
        acs = x.acs[1]
        assert acs.rule == "R2.6"
        assert acs.facts["quirk"] == "pci_quirk_intel_pch_acs"
        assert acs.facts["decided_by"] == "quirk"
        assert acs.facts["enabled"] == "yes"
        assert "8086:1c10" in acs.text
        assert "pci_quirk_intel_pch_acs says isolated" in acs.text
        assert _kinds(x.chain) == ["isolated-stop", "new-group"]

    def test_user_quirk_declaring_a_port_not_isolated(self) -> None:
        q = iommugroups.DEFAULT_QUIRKS.with_acs_quirk(AcsQuirk.not_isolated(0x1B36, 0x000C))
        topo = Topology([bridge("00:01.0", 1, acs=ISOLATING), ep("01:00.0")])
        x = explain(topo, "01:00.0", quirks=q)
        assert x.joined == "upstream"
        assert "declared not isolated by quirk user_not_isolated_1b36_000c" in x.chain[0].text


class TestReach:
    switch = Topology(
        [
            bridge("00:01.0", 1, 4, acs=ISOLATING),
            bridge("01:00.0", 2, 4, kind=PcieType.UPSTREAM),
            bridge("02:01.0", 3, kind=PcieType.DOWNSTREAM),
            bridge("02:02.0", 4, kind=PcieType.DOWNSTREAM, acs=ISOLATING),
            ep("03:00.0"),
            ep("04:00.0"),
        ]
    )

    def test_switch_port_without_rr_lets_peer_requests_through(self) -> None:
        p = _checked(self.switch, "03:00.0", "04:00.0")
        assert not p.same_group  # the legacy per-port groups (spec §6) ...
        assert p.a_can_reach_b is True  # ... though 03:00.0 reaches 04:00.0
        assert p.a_to_b.facts["ingress"] == "0000:02:01.0"
        assert p.a_to_b.facts["case"] == "switch"
        assert p.a_to_b.facts["point"] == "0000:02"
        assert p.b_can_reach_a is False  # 02:02.0 redirects
        assert p.b_to_a.facts["ingress"] == "0000:02:02.0"

    def test_root_complex_is_unknown_unless_redirected(self) -> None:
        topo = Topology(
            [
                bridge("00:01.0", 1),
                ep("01:00.0"),
                bridge("00:02.0", 2, acs=ISOLATING),
                ep("02:00.0"),
            ]
        )
        p = _checked(topo, "01:00.0", "02:00.0")
        assert p.a_can_reach_b is None
        assert p.a_to_b.facts["case"] == "root-complex"
        assert p.b_can_reach_a is False

    def test_different_root_buses(self) -> None:
        p = _checked(examples.d05(), "000a:11:00.0", "000c:21:00.0")
        assert "different-root-bus" in _kinds(p.separation)
        assert p.a_can_reach_b is None
        assert p.a_to_b.facts["case"] == "root-complex"

    def test_pf_and_vf_are_peers_whatever_the_single_function_shortcut(self) -> None:
        # VFs are never multifunction (R5.6): the kernel groups them apart and
        # assumes no peer (R2.3 step 4), but the PF and its VF share a device.
        topo = Topology(
            [
                bridge("00:01.0", 1, acs=ISOLATING),
                ep("01:00.0"),
                ep("01:00.1", physfn="01:00.0"),
                ep("01:00.2", physfn="01:00.0", acs=Acs(cap=FULL, ctrl=FULL)),
            ]
        )
        p = _checked(topo, "01:00.0", "01:00.1")
        assert not p.same_group
        assert p.a_can_reach_b is True
        assert p.b_can_reach_a is True
        assert p.a_to_b.facts["case"] == "same-device"
        assert "the kernel assumes no peer" in p.a_to_b.text
        q = _checked(topo, "01:00.2", "01:00.0")
        assert q.a_can_reach_b is False
        assert q.b_can_reach_a is True

    def test_integrated_endpoints(self) -> None:
        topo = Topology(
            [
                ep("00:02.0", kind=PcieType.RC_END),
                ep("00:03.0", kind=PcieType.RC_END),
                ep("00:04.0", kind=PcieType.RC_END, vendor=0x8086, device=0x10D3),
            ]
        )
        p = _checked(topo, "00:02.0", "00:03.0")
        assert p.a_can_reach_b is None
        assert "assumes" in p.a_to_b.text
        q = _checked(topo, "00:04.0", "00:02.0")  # pci_quirk_rciep_acs: isolated
        assert q.a_can_reach_b is False
        assert q.a_to_b.rule == "R2.6"


class TestUnknownFacts:
    def test_unknown_acs_on_a_root_port_is_said_not_guessed(self) -> None:
        rp = PciFunction(
            "00:01.0",
            vendor=0x1B36,
            device=0x000C,
            class_code=0x060400,
            header_type=1,
            pcie_type=PcieType.ROOT_PORT,
            secondary_bus=1,
            subordinate_bus=1,
            unknown={"acs"},
        )
        topo = Topology([rp, ep("01:00.0"), ep("01:00.1")])
        x = explain(topo, "01:00.0")
        assert not x.certain
        (u,) = x.unknown
        assert u.kind == "unknown"
        assert u.device == "0000:00:01.0"
        assert dict(u.facts) == {
            "device": "0000:00:01.0",
            "facts": "acs",
            "assumed": "absent",
            "matters": "yes",
        }
        assert "could not be read" in u.text
        assert "not certain" in u.text
        acs = x.acs[1]
        assert acs.facts["acs_cap"] == "unknown"
        assert acs.facts["certain"] == "no"
        assert "could not be read" in x.chain[0].text
        p = _checked(topo, "01:00.0", "01:00.1")
        assert not p.certain
        assert x.to_json()["certain"] is False

    def test_unknown_acs_that_cannot_matter(self) -> None:
        host = PciFunction("00:00.0", class_code=0x060000, unknown={"acs"})
        topo = Topology([host, bridge("00:01.0", 1)])
        x = explain(topo, "00:00.0")
        (u,) = x.unknown
        assert u.facts["matters"] == "no"
        assert x.certain
        assert x.acs[0].facts["certain"] == "yes"

    def test_unknown_acs_makes_reach_unknown(self) -> None:
        dsp = PciFunction(
            "02:01.0",
            class_code=0x060400,
            header_type=1,
            pcie_type=PcieType.DOWNSTREAM,
            secondary_bus=3,
            subordinate_bus=3,
            unknown={"acs"},
        )
        topo = Topology(
            [
                bridge("00:01.0", 1, 4, acs=ISOLATING),
                bridge("01:00.0", 2, 4, kind=PcieType.UPSTREAM),
                dsp,
                bridge("02:02.0", 4, kind=PcieType.DOWNSTREAM),
                ep("03:00.0"),
                ep("04:00.0"),
            ]
        )
        p = _checked(topo, "03:00.0", "04:00.0")
        assert p.a_can_reach_b is None
        assert "unknown" in p.a_to_b.text
        assert p.b_can_reach_a is True

    def test_unknown_pcie_type_of_the_bus_bridge(self) -> None:
        br = PciFunction(
            "00:01.0", class_code=0x060400, header_type=1, secondary_bus=1, unknown={"pcie"}
        )
        topo = Topology([br, ep("01:00.0", kind=None), ep("01:01.0", kind=None)])
        p = _checked(topo, "01:00.0", "01:01.0")
        assert p.a_can_reach_b is None
        assert p.a_to_b.facts["case"] == "unknown"
        assert any(u.facts["matters"] == "yes" for u in p.unknown)


class TestOutput:
    def test_json_is_versioned_and_plain(self) -> None:
        topo = examples.desktop()
        x = explain(topo, "03:00.0")
        data = x.to_json()
        assert data["schema"] == EXPLAIN_SCHEMA == "iommugroups.explain/1"
        assert data["type"] == "device"
        assert data["group"] == x.group
        assert data["chain"][0] == {
            "kind": "upstream-bridge",
            "rule": "R4.2",
            "device": "0000:03:00.0",
            "text": x.chain[0].text,
            "facts": dict(x.chain[0].facts),
        }
        assert data["steps"][0]["rule"] == "R4.1"
        json.loads(json.dumps(data))
        p = explain_pair(topo, "03:00.0", "04:00.0").to_json()
        assert p["schema"] == EXPLAIN_SCHEMA
        assert p["type"] == "pair"
        assert p["reach"]["a_to_b"]["possible"] is True
        assert p["cause"]["kind"] == "chain"
        json.loads(json.dumps(p))

    def test_render(self) -> None:
        topo = examples.desktop()
        text = render_explanation(explain(topo, "05:01.0"))
        assert text.startswith("0000:05:01.0 is in IOMMU group")
        assert "Why:" in text
        assert "ACS on its path:" in text
        assert "(R3.4)" in text
        pair = render_pair(explain_pair(topo, "08:00.0", "09:00.0"))
        assert "different IOMMU groups" in pair
        assert "DMA between them:" in pair
        assert "bypassing the IOMMU" in pair

    def test_results_are_frozen_and_hashable(self) -> None:
        x = explain(examples.desktop(), "01:00.1")
        assert isinstance(x, Explanation)
        assert hash(x.chain[0]) == hash(
            Reason(
                **{k: getattr(x.chain[0], k) for k in ("rule", "device", "text", "facts", "kind")}
            )
        )
        with pytest.raises(AttributeError):
            x.group = 3  # type: ignore[misc]

    def test_errors(self) -> None:
        topo = examples.desktop()
        with pytest.raises(UnknownDevice):
            explain(topo, "0f:00.0")
        with pytest.raises(UnknownDevice):
            explain(topo, "no-such-device")
        with pytest.raises(ValueError, match="two different devices"):
            explain_pair(topo, "00:1c.0", "0000:00:1c.0")
