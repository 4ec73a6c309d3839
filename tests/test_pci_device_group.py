"""pci_device_group step by step (spec §4-§5) and the test vectors of spec §12."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given, settings

from iommugroups import (
    GroupingEnv,
    PciAddress,
    PcieType,
    PciFunction,
    Topology,
    canonical_groups,
    make_context,
    pci_device_group,
    pci_for_each_dma_alias,
)
from iommugroups._kernel.groups import IdAllocator
from iommugroups.testing import topologies

from .helpers import ISOLATING, bridge, ep


def _call(topo: Topology, dev: str, groups: Mapping[str, int], trace: bool = False):  # type: ignore[no-untyped-def]
    env = GroupingEnv(make_context(topo))
    held = {PciAddress.parse(k): v for k, v in groups.items()}
    return pci_device_group(topo.get(dev), held, env, trace=trace)


def _behind_rp(rp_acs: object, *endpoints: str, mf: bool = False) -> Topology:
    return Topology(
        [bridge("00:01.0", 1, acs=rp_acs)]  # type: ignore[arg-type]
        + [ep(e, mf=mf) for e in endpoints]
    )


class TestVector1SingleFunctionBehindRootPort:
    """§12.1, R4.2: ACS on the root port isolates the endpoint; without ACS the
    endpoint shares the port's group iff the port already has one (R4.5)."""

    def test_port_with_acs(self) -> None:
        d = _call(_behind_rp(ISOLATING, "01:00.0"), "01:00.0", {"00:01.0": 0})
        assert (d.group, d.step) == (None, "new")

    def test_port_without_acs_grouped_first(self) -> None:
        d = _call(_behind_rp(None, "01:00.0"), "01:00.0", {"00:01.0": 0})
        assert (d.group, d.step, str(d.via)) == (0, "upstream", "0000:00:01.0")

    def test_port_without_acs_not_grouped_yet(self) -> None:
        d = _call(_behind_rp(None, "01:00.0"), "01:00.0", {})
        assert (d.group, d.step, str(d.pdev)) == (None, "new", "0000:00:01.0")


class TestVector2MultifunctionBehindAcsPort:
    """§12.2, R5.2: functions of one slot without ACS share, in either order."""

    def test_either_order(self) -> None:
        t = _behind_rp(ISOLATING, "01:00.0", "01:00.1", mf=True)
        d = _call(t, "01:00.1", {"00:01.0": 0, "01:00.0": 1})
        assert (d.group, d.step, str(d.via)) == (1, "function-alias", "0000:01:00.0")
        d = _call(t, "01:00.0", {"00:01.0": 0, "01:00.1": 1})
        assert (d.group, d.step) == (1, "function-alias")

    def test_function_with_acs_is_not_joined(self) -> None:
        t = Topology(
            [
                bridge("00:01.0", 1, acs=ISOLATING),
                ep("01:00.0", mf=True),
                ep("01:00.1", acs=ISOLATING),
            ]
        )
        assert _call(t, "01:00.1", {"01:00.0": 1}).group is None
        assert _call(t, "01:00.0", {"01:00.1": 1}).group is None


class TestVector3MultifunctionRootPorts:
    """§12.3, R4.3 + R5.2: devices below any of several non-ACS functions of one
    root-port slot share one group (found through the function-alias step run
    on the port)."""

    def topo(self) -> Topology:
        ports = [bridge(f"00:1c.{i}", 1 + i, mf=True) for i in range(4)]
        eps = [ep(f"{1 + i:02x}:00.0") for i in range(4)]
        return Topology(ports + eps)

    def test_one_group(self) -> None:
        g = canonical_groups(self.topo())
        assert len(g.groups) == 1

    def test_found_on_sibling_port(self) -> None:
        # only port 1c.0 is grouped: a device below 1c.3 finds it from 1c.3's slot
        d = _call(self.topo(), "04:00.0", {"00:1c.0": 7})
        assert (d.group, d.step, str(d.pdev), str(d.via)) == (
            7,
            "function-alias",
            "0000:00:1c.3",
            "0000:00:1c.0",
        )


class TestVector4ConventionalBehindPcieToPci:
    """§12.4, R3.4 + R4.1: conventional devices alias to the PCIe-to-PCI bridge
    (secondary bus, 00.0) and join its group; if the bridge never gets a group
    (arm64 before v6.15) each gets a group of its own (R4.5)."""

    def topo(self) -> Topology:
        return Topology(
            [
                bridge("00:1e.0", 1, kind=PcieType.PCI_BRIDGE),
                ep("01:01.0", kind=None),
                ep("01:02.0", kind=None),
            ]
        )

    def test_alias_rid(self) -> None:
        t = self.topo()
        seen = [
            (str(d.address), rid)
            for d, rid in pci_for_each_dma_alias(t.get("01:02.0"), make_context(t))
        ]
        assert seen == [("0000:01:02.0", 0x0110), ("0000:00:1e.0", 0x0100)]

    def test_bridge_grouped(self) -> None:
        d = _call(self.topo(), "01:02.0", {"00:1e.0": 3})
        assert (d.group, d.step, str(d.via)) == (3, "alias", "0000:00:1e.0")

    def test_bridge_never_grouped(self) -> None:
        d = _call(self.topo(), "01:02.0", {"01:01.0": 0})
        assert (d.group, d.step, str(d.pdev)) == (None, "new", "0000:00:1e.0")

    def test_canonical_one_group(self) -> None:
        assert len(canonical_groups(self.topo()).groups) == 1


class TestVector5DevfnAlias:
    """§12.5, R3.3 + R5.1: a devfn alias to function 1 joins a real function 1."""

    def topo(self) -> Topology:
        return Topology(
            [
                bridge("00:01.0", 1, acs=ISOLATING),
                ep("01:00.0", aliases=frozenset({0x01})),
                ep("01:00.1"),
            ]
        )

    def test_pdev_stays_the_device_r4_1(self) -> None:
        t = self.topo()
        seen = [
            (str(d.address), rid)
            for d, rid in pci_for_each_dma_alias(t.get("01:00.0"), make_context(t))
        ]
        assert seen == [("0000:01:00.0", 0x0100), ("0000:01:00.0", 0x0101)]

    def test_joins_alias_target_and_reverse(self) -> None:
        d = _call(self.topo(), "01:00.0", {"01:00.1": 4})
        assert (d.group, d.step) == (4, "alias-group")
        d = _call(self.topo(), "01:00.1", {"01:00.0": 4})
        assert (d.group, d.step) == (4, "alias-group")

    def test_canonical(self) -> None:
        g = canonical_groups(self.topo())
        assert g.same_group("01:00.0", "01:00.1")


class TestVector6SwitchWithoutDownstreamAcs:
    """§12.6, §6: DSPs without ACS below an ACS root: per-DSP groups (the legacy
    example of the 2025 reachable-set cover letter)."""

    def test_per_dsp_groups(self) -> None:
        t = Topology(
            [
                bridge("00:00.0", 1, 4, acs=ISOLATING),
                bridge("01:00.0", 2, 4, kind=PcieType.UPSTREAM),
                bridge("02:00.0", 3, kind=PcieType.DOWNSTREAM),
                bridge("02:03.0", 4, kind=PcieType.DOWNSTREAM),
                ep("03:00.0"),
                ep("04:00.0"),
            ]
        )
        g = canonical_groups(t)
        assert g.partition() == {
            frozenset({"0000:00:00.0"}),
            frozenset({"0000:01:00.0"}),
            frozenset({"0000:02:00.0", "0000:03:00.0"}),
            frozenset({"0000:02:03.0", "0000:04:00.0"}),
        }


def test_vector8_id_reuse_r1_2() -> None:
    """§12.8, R1.1-R1.2: allocate 0, 1, 2, release 1, allocate -> 1."""
    ida = IdAllocator()
    assert [ida.alloc(), ida.alloc(), ida.alloc()] == [0, 1, 2]
    ida.free(1)
    assert ida.alloc() == 1
    assert ida.alloc() == 3


class TestSeedShape:
    """§11 step 6, R4.3: the D05 failure. Two functions of one device below a
    root port without ACS that has no group yet: the second does not find the
    first, because steps 3-4 run on the port, not on the device's slot."""

    def topo(self) -> Topology:
        return _behind_rp(None, "11:00.0", "11:00.1", mf=True).replace(
            functions=[bridge("00:01.0", 0x11), ep("11:00.0", mf=True), ep("11:00.1", mf=True)]
        )

    def test_second_function_gets_new_group(self) -> None:
        d = _call(self.topo(), "11:00.1", {"11:00.0": 2})
        assert (d.group, d.step, str(d.pdev)) == (None, "new", "0000:00:01.0")

    def test_canonical_puts_all_three_together(self) -> None:
        assert len(canonical_groups(self.topo()).groups) == 1


class TestTrace:
    def test_trace_names_rules(self) -> None:
        d = _call(_behind_rp(None, "01:00.0"), "01:00.0", {"00:01.0": 0}, trace=True)
        assert [s.rule for s in d.steps] == ["R4.1", "R4.2"]
        assert d.steps[-1].group == 0
        assert "not ACS-isolated" in d.steps[-1].text

    def test_trace_off_by_default(self) -> None:
        assert _call(_behind_rp(None, "01:00.0"), "01:00.0", {}).steps == ()


@settings(max_examples=80, deadline=None)
@given(topo=topologies(max_functions=30))
def test_passing_lists_every_device_whose_walk_passes(topo: Topology) -> None:
    """``GroupingEnv.passing(p)``: exactly the devices whose plan (step-1 aliases,
    step-2 bridges) holds ``p``, in device order, read off each device's plan."""
    env = GroupingEnv(make_context(topo))
    order = topo.enumeration_order()
    expected: dict[PciAddress, list[PciFunction]] = {}
    for fn in order:
        aliases, walked, _stop = env.plan(fn)
        for p in dict.fromkeys(
            [*(who.address for who, _ in aliases), *(b.address for b in walked)]
        ):
            expected.setdefault(p, []).append(fn)
    for fn in order:
        got = env.passing(fn)
        assert [f.address for f in got] == [f.address for f in expected.get(fn.address, [])]


@settings(max_examples=80, deadline=None)
@given(topo=topologies(max_functions=30))
def test_plan_is_the_walk_read_from_first_principles(topo: Topology) -> None:
    """``GroupingEnv.plan(fn)`` (memoised per bus, each bus's aliases and walk built
    from another bus's) is steps 1-2 computed afresh for ``fn`` alone: the aliases
    ``pci_for_each_dma_alias`` visits after the own id (R4.1), then the bridges above
    the last of them (``Topology.bridges_above``) walked past while their path to the
    root is not ACS-isolated, stopping at the first that is (R4.2). Plans are asked
    last device first, so that a bus's memo is made before its parents'."""
    from iommugroups._kernel.acs import pci_acs_path_enabled
    from iommugroups._kernel.alias import pci_for_each_dma_alias
    from iommugroups._kernel.model import REQ_ACS_FLAGS

    env = GroupingEnv(make_context(topo))
    fresh = make_context(topo)  # nothing shared with the memos under test
    for fn in reversed(topo.enumeration_order()):
        aliases, walked, stop = env.plan(fn)
        expected = list(pci_for_each_dma_alias(fn, fresh))[1:]
        assert list(aliases) == expected
        start = expected[-1][0] if expected else fn
        want: list[PciFunction] = []
        want_stop: PciFunction | None = None
        for br in topo.bridges_above(start):
            if pci_acs_path_enabled(br, None, REQ_ACS_FLAGS, make_context(topo)):
                want_stop = br
                break
            want.append(br)
        assert [b.address for b in walked] == [b.address for b in want]
        assert (stop.address if stop else None) == (want_stop.address if want_stop else None)


@settings(max_examples=80, deadline=None)
@given(topo=topologies(max_functions=30))
def test_bus_aliases_memo_is_the_walk_step_by_step(topo: Topology) -> None:
    """``bus_aliases`` (memoised, each bus's answer built from another bus's) is the
    R3.4 walk taken one ``bus_alias_step`` at a time (``topology_aliases``); buses
    asked last device first, so that a bus is memoised before its parents."""
    from iommugroups._kernel.alias import bus_aliases, topology_aliases

    memo = make_context(topo)
    for fn in reversed(topo.enumeration_order()):
        a = fn.address
        walked = list(topology_aliases(a.domain, a.bus, make_context(topo)))
        assert list(bus_aliases(a.domain, a.bus, memo)) == walked


@settings(max_examples=80, deadline=None)
@given(topo=topologies(max_functions=30))
def test_plans_leave_bus_aliases_memo_as_the_walk(topo: Topology) -> None:
    """``GroupingEnv`` keeps each bus's R3.4 aliases in the context's memo as it
    plans (the fwspec of a device on the bus reads them there, R3.8): every
    entry it leaves is the walk taken one ``bus_alias_step`` at a time."""
    from iommugroups._kernel.alias import topology_aliases

    env = GroupingEnv(make_context(topo))
    for fn in topo.enumeration_order():
        env.plan(fn)
    assert env.ctx.alias_cache  # the plans filled it
    for (domain, bus), memo in env.ctx.alias_cache.items():
        assert list(memo) == list(topology_aliases(domain, bus, make_context(topo)))
