"""The ACS reachable-set proposal, v3 (rules R6.1-R6.13): ``iommugroups._kernel.reachable_set``.

Each test builds a small topology and states the groups the *patch code*
gives it, worked out by hand in the test's docstring from the v3 mails
(patch 2 ``pci_bus_isolated``/``pcie_switch_isolated``, patch 3
``pci_device_group``/``pci_hierarchy_group``, patch 5 ``pci_reachable_set``,
patch 6 ``pci_mfds_are_same_group``, patches 10-11 ACS Enhanced), and, where
the cover letter or a commit message states the effect, that statement. The
expected groups are never taken from the code under test.

Facts the model lacks are stated where a test needs them:
``KNOWN = ProposalFacts(acs_enhanced=False)`` says no port advertises ACS
Enhanced, which makes patch 10 drop the memory-target controls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iommugroups import (
    REQ_ACS_FLAGS,
    Acs,
    AcsFlags,
    AcsQuirk,
    GroupingEnv,
    IdMapping,
    IommuInstance,
    Platform,
    PlatformDevice,
    Quirks,
    Scenario,
    SriovCapability,
    Topology,
    VmdDomain,
    canonical_groups,
    examples,
    load,
    make_context,
    pci_for_each_dma_alias,
    simulate,
)
from iommugroups._analysis.change_grammar import parse_change
from iommugroups._analysis.changes import ReachableSet, WhatIfError
from iommugroups._analysis.whatif import what_if, why_after
from iommugroups._boot.strategies.registry import PROPOSALS, STRATEGIES, get_strategy
from iommugroups._cli.app import main
from iommugroups._kernel.model import PcieType, PciFunction
from iommugroups._kernel.reachable_set import (
    PATCHES,
    SERIES,
    BusIsolation,
    Outcome,
    ProposalFacts,
    ReachableEnv,
    pci_acs_enabled,
    pci_bus_isolated,
    pci_check_group_aliases,
    pci_mfds_are_same_group,
    reachable_set_groups,
)
from iommugroups.testing import parents_first_scenarios, probe_orders, topologies

from .helpers import bridge, ep

ROOT = Path(__file__).resolve().parent.parent
DESIGNED = ROOT / "tests" / "data" / "oracle" / "designed"

ON = Acs(cap=REQ_ACS_FLAGS, ctrl=REQ_ACS_FLAGS)  #: ACS implemented and enabled
OFF = Acs(cap=REQ_ACS_FLAGS, ctrl=AcsFlags.NONE)  #: ACS implemented, switched off
KNOWN = ProposalFacts(acs_enhanced=False)  #: no port advertises ACS Enhanced


def groups(topology: Topology, **kw: object) -> set[frozenset[str]]:
    """The proposal's groups, as sets of short names (``01:00.0``)."""
    g = reachable_set_groups(topology, **kw)  # type: ignore[arg-type]
    return {frozenset(m[5:] for m in members) for members in g.groups.values()}


def mainline(topology: Topology) -> set[frozenset[str]]:
    g = canonical_groups(topology)
    return {frozenset(m[5:] for m in members) for members in g.groups.values()}


def fs(*groups_: str) -> set[frozenset[str]]:
    """``fs("00:00.0", "01:00.0 01:00.1")``: groups written as space-separated names."""
    return {frozenset(g.split()) for g in groups_}


def usp(addr: str, sec: int, sub: int) -> PciFunction:
    return bridge(addr, sec, sub, kind=PcieType.UPSTREAM)


def dsp(addr: str, sec: int, acs: Acs | None) -> PciFunction:
    return bridge(addr, sec, kind=PcieType.DOWNSTREAM, acs=acs)


# --- the cover letter's switch (patch 3) ---------------------------------------------


def cover_switch(dsp_a: Acs | None, dsp_b: Acs | None) -> Topology:
    """``Root 00:00.0 -> USP 01:00.0 -> DSP 02:00.0 -> A, DSP 02:03.0 -> B`` (patch 3).

    The root port has ACS on; the switch's downstream ports as given.
    """
    return Topology(
        [
            bridge("00:00.0", 1, 5, acs=ON),
            usp("01:00.0", 2, 5),
            dsp("02:00.0", 3, dsp_a),
            dsp("02:03.0", 4, dsp_b),
            ep("03:00.0"),
            ep("04:00.0"),
        ]
    )


class TestSwitches:
    """R6.2-R6.4, R6.9: the switch example of patch 3's commit message and the cover letter."""

    def test_full_acs_gives_single_device_groups(self) -> None:
        """ "If ACS is fully activated we expect 00:00.0, 01:00.0, 02:00.0, 02:03.0, A, B to
        all have unique single device groups."

        By the patch: bus 01 is below a root port whose ACS has SV|RR|CR|UF, and
        DSP_MT_RR drops out without ACS Enhanced (patch 10): PCIE_ISOLATED (R6.2);
        bus 02 is the interior bus, both DSPs have every control:
        PCIE_ISOLATED (R6.4); buses 03 and 04 are below DSPs: PCIE_ISOLATED
        (R6.3). Every reachable set is one device (different slots, no
        aliases): six new groups."""
        assert groups(cover_switch(ON, ON), facts=KNOWN) == fs(
            "00:00.0", "01:00.0", "02:00.0", "02:03.0", "03:00.0", "04:00.0"
        )

    def test_dsps_with_acs_off_share_with_everything_below(self) -> None:
        """ "If both DSPs have ACS off then we expect 00:00.0 and 01:00.0 to have unique
        single device groups while 02:00.0, 02:03.0, A, B are part of one
        multi-device group."

        By the patch: 02:00.0 lacks PCI_ACS_ISOLATED, but its capability has
        USP_MT_RR hard-wired (not implemented, no ACS Enhanced), so bus 02 is
        PCIE_SWITCH_DSP_NON_ISOLATED (R6.4): 02:00.0 finds no group on the bus and
        makes a NON_ISOLATED one, 02:03.0 joins it (R6.9); A and B join it
        through pci_hierarchy_group (their bridge's group is flagged)."""
        expected = fs("00:00.0", "01:00.0", "02:00.0 02:03.0 03:00.0 04:00.0")
        assert groups(cover_switch(OFF, OFF), facts=KNOWN) == expected

    def test_asymmetric_acs_is_the_same(self) -> None:
        """ "If the DSPs have asymmetric ACS, with one fully isolating and one
        non-isolating we also expect the above multi-device group result."

        pcie_switch_isolated walks every device of the bus: the second port
        spoils it (R6.4), whatever the first one has."""
        expected = fs("00:00.0", "01:00.0", "02:00.0 02:03.0 03:00.0 04:00.0")
        assert groups(cover_switch(ON, OFF), facts=KNOWN) == expected
        assert groups(cover_switch(OFF, ON), facts=KNOWN) == expected

    def test_mainline_keeps_a_and_b_apart(self) -> None:
        """The cover letter's complaint: the current algorithm does not group A and B
        with ACS off on the DSPs ("It should at least group A/B together")."""
        g = canonical_groups(cover_switch(OFF, OFF))
        assert not g.same_group("03:00.0", "04:00.0")
        assert reachable_set_groups(cover_switch(OFF, OFF), facts=KNOWN).same_group(
            "03:00.0", "04:00.0"
        )

    def test_dsps_without_an_acs_capability_take_the_usp_along(self) -> None:
        """Patch 11: a DSP without ``USP_MT_RR`` makes the interior bus PCIE_NON_ISOLATED.

        A DSP with no ACS capability has no control at all: pci_acs_enabled(DSP,
        USP_MT_RR) is pci_acs_flags_enabled on a device with acs_cap == 0, false,
        so bus 02 is PCIE_NON_ISOLATED and 02:00.0 joins the USP's group, which
        gets the flag; everything below follows (R6.9). The root port keeps its
        own group (bus 01 is isolated)."""
        expected = fs("00:00.0", "01:00.0 02:00.0 02:03.0 03:00.0 04:00.0")
        assert groups(cover_switch(None, None), facts=KNOWN) == expected
        iso = _isolation(cover_switch(None, None), 0, 2)
        assert (iso.value, iso.rule, str(iso.device)) == (
            BusIsolation.PCIE_NON_ISOLATED,
            "R6.4",
            "0000:02:00.0",
        )

    def test_something_else_on_the_interior_bus(self) -> None:
        """R6.4: "Don't understand what this is, be conservative": an endpoint on the
        interior bus, or a DSP with a DMA alias, makes it PCIE_NON_ISOLATED."""
        odd = Topology(
            [
                bridge("00:00.0", 1, 3, acs=ON),
                usp("01:00.0", 2, 3),
                dsp("02:00.0", 3, ON),
                ep("02:01.0"),
            ]
        )
        assert _isolation(odd, 0, 2).value is BusIsolation.PCIE_NON_ISOLATED
        aliased = Topology(
            [
                bridge("00:00.0", 1, 3, acs=ON),
                usp("01:00.0", 2, 3),
                PciFunction(
                    "02:00.0",
                    header_type=1,
                    pcie_type=PcieType.DOWNSTREAM,
                    acs=ON,
                    secondary_bus=3,
                    dma_alias_devfns={0x08},
                ),
            ]
        )
        iso = _isolation(aliased, 0, 2)
        assert (iso.value, "DMA alias" in iso.why) == (BusIsolation.PCIE_NON_ISOLATED, True)

    def test_a_dsp_bus_is_isolated(self) -> None:
        """R6.3: below a downstream port the bus is PCIE_ISOLATED, even with ACS off."""
        assert _isolation(cover_switch(OFF, OFF), 0, 3).value is BusIsolation.PCIE_ISOLATED


def _isolation(topology: Topology, domain: int, bus: int, facts: ProposalFacts = KNOWN):  # type: ignore[no-untyped-def]
    env = ReachableEnv(GroupingEnv(make_context(topology)), facts)
    return pci_bus_isolated(domain, bus, env, _AllThere(topology))


class _AllThere:
    """Every device is on its bus; nothing has a group."""

    monotonic = True

    def __init__(self, topology: Topology) -> None:
        self.topology = topology

    def group_of(self, address: object) -> int | None:
        return None

    def non_isolated(self, group: int) -> bool:
        return False

    def flag_missing(self, group: int) -> frozenset[str]:
        return frozenset()

    def present(self, fn: PciFunction) -> bool:
        return True

    def bus_devices(self, domain: int, bus: int) -> tuple[PciFunction, ...]:
        return self.topology.devices_on_bus(domain, bus)


# --- root ports (patch 3, R6.2) -------------------------------------------------------


def cover_root_port(rp_acs: Acs | None, dev_acs: Acs | None = None) -> Topology:
    """``Root Port 00:01.0 -- Dev 01:00.0, Dev 01:00.1``, and ``Dev 00:17.0`` (patch 3)."""
    return Topology(
        [
            bridge("00:01.0", 1, acs=rp_acs),
            ep("01:00.0", mf=True, acs=dev_acs),
            ep("01:00.1", mf=True, acs=dev_acs),
            ep("00:17.0", kind=PcieType.RC_END),
        ]
    )


class TestRootPorts:
    """R6.2: "treat root ports with no ACS capability as lacking internal loopback"."""

    def test_no_acs_capability_no_longer_merges(self) -> None:
        """ "Previously would group [00:01.0, 01:00.0, 01:00.1] together if there is no ACS
        capability in the root port."

        By the patch: bus 01 is below a root port with acs_cap == 0:
        PCIE_ISOLATED (R6.2). 01:00.0 and 01:00.1 are multifunction without an ACS
        capability: not reachable from each other (R6.6). Four groups."""
        topo = cover_root_port(None)
        assert fs("00:01.0 01:00.0 01:00.1", "00:17.0") == mainline(topo)
        assert groups(topo) == fs("00:01.0", "01:00.0", "01:00.1", "00:17.0")

    def test_functions_with_acs_off_stay_together(self) -> None:
        """R6.6/R6.7: the functions have ACS capabilities with the controls off: each
        reaches the other; the first makes a NON_ISOLATED group, the second joins."""
        topo = cover_root_port(None, OFF)
        assert groups(topo) == fs("00:01.0", "01:00.0 01:00.1", "00:17.0")

    def test_acs_off_on_the_port_merges_it(self) -> None:
        """R6.2: a root port *with* an ACS capability that does not isolate makes its bus
        PCIE_NON_ISOLATED: the devices join the port's group (R6.9)."""
        topo = cover_root_port(OFF)
        assert groups(topo, facts=KNOWN) == fs("00:01.0 01:00.0 01:00.1", "00:17.0")

    def test_isolating_port(self) -> None:
        assert groups(cover_root_port(ON), facts=KNOWN) == fs(
            "00:01.0", "01:00.0", "01:00.1", "00:17.0"
        )


# --- multifunction devices (patch 6, R6.6, R6.7) ---------------------------------------


def rc_mfd(*acs: Acs | None, bridge_fn: int | None = None) -> Topology:
    """Functions 00:1f.0, .2, .6 of one root-complex device (patch 6's example).

    ``bridge_fn``: that function is a root port, with ``01:01.0`` below it.
    """
    fns: list[PciFunction] = []
    for f, a in zip((0, 2, 6), acs, strict=True):
        addr = f"00:1f.{f}"
        if f == bridge_fn:
            fns.append(bridge(addr, 1, acs=a, mf=True))
            fns.append(ep("01:01.0"))
        else:
            fns.append(ep(addr, kind=PcieType.RC_END, mf=True, acs=a))
    return Topology(fns)


class TestMultifunction:
    """R6.6: "assume if a MFD has no ACS capability then it does not support a loopback"."""

    def test_asymmetric_acs_joins_all_three(self) -> None:
        """Patch 6: 1f.0 and 1f.2 with ACS != REQ_ACS_FLAGS, 1f.6 with ACS =
        REQ_ACS_FLAGS: "we expect an iommu_group to contain all three devices.
        Instead the current algorithm gives a group of [1f.0, 1f.2] and a single
        device group of 1f.6."

        pci_mfds_are_same_group(1f.0, 1f.6) is true (1f.0 has a capability
        without isolation), so the reachable set of any of them is all three."""
        topo = rc_mfd(OFF, OFF, ON)
        assert mainline(topo) == fs("00:1f.0 00:1f.2", "00:1f.6")
        assert groups(topo) == fs("00:1f.0 00:1f.2 00:1f.6")

    def test_no_acs_capability_splits(self) -> None:
        """The cover letter: "MFD 00:1f.0 ACS not supported, 00:1f.2 ACS not supported,
        00:1f.6 ACS = REQ_ACS_FLAGS ... from a spec perspective each device should
        get its own group"."""
        topo = rc_mfd(None, None, ON)
        assert groups(topo) == fs("00:1f.0", "00:1f.2", "00:1f.6")

    def test_a_bridge_function_takes_what_is_below(self) -> None:
        """Patch 6: with 1f.2 a root port and internal loopback in the MFD, "the correct
        grouping will include 01:01.0, 00:1f.0/2/6 together in a group".

        The set {1f.0, 1f.2, 1f.6} gets a NON_ISOLATED group; 01:01.0's bridge
        (1f.2) is in it, so pci_hierarchy_group joins it (R6.9), although the
        root port's own bus would be isolated (it has ACS on)."""
        topo = rc_mfd(OFF, ON, ON, bridge_fn=2)
        assert groups(topo, facts=KNOWN) == fs("00:1f.0 00:1f.2 00:1f.6 01:01.0")

    def test_without_loopback_the_port_isolates(self) -> None:
        """The same with no capability on 1f.0: nothing loops back, so the functions
        split and the root port's bus is isolated (ACS on): four groups."""
        topo = rc_mfd(None, ON, ON, bridge_fn=2)
        assert groups(topo, facts=KNOWN) == fs("00:1f.0", "00:1f.2", "00:1f.6", "01:01.0")

    def test_the_pair_rule(self) -> None:
        """R6.6 pair by pair: different multifunction flags pair (conservative), two
        single-function devices never do, a slot apart never does."""
        a = ep("00:05.0", mf=False)
        b = PciFunction("00:05.1", pcie_type=PcieType.RC_END)  # forced multifunction
        c = ep("00:06.0", mf=True, acs=OFF)
        topo = Topology([a, b, c])
        env = ReachableEnv(GroupingEnv(make_context(topo)))
        assert pci_mfds_are_same_group(a, b, env).same  # 0 reads 0, 1 is forced 1
        assert not pci_mfds_are_same_group(a, c, env).same
        lone = Topology([ep("00:07.0"), ep("00:08.0")])
        env2 = ReachableEnv(GroupingEnv(make_context(lone)))
        f0, f1 = lone.functions
        assert pci_mfds_are_same_group(f0, f1, env2).why == "different slots"

    def test_an_unreadable_capability_pairs(self) -> None:
        """Fail closed: a function whose ACS capability could not be read counts as
        having one that does not isolate, and the decision says so."""
        a = PciFunction("00:1f.0", pcie_type=PcieType.RC_END, multifunction=True, unknown={"acs"})
        b = ep("00:1f.3", kind=PcieType.RC_END, mf=True)
        topo = Topology([a, b])
        g = reachable_set_groups(topo, record=True)
        assert g.same_group("00:1f.0", "00:1f.3")
        outcome = g.decisions.outcome("0000:00:1f.3")  # type: ignore[attr-defined]
        assert outcome is not None
        assert "acs" in outcome.missing

    def test_rc_mfds_of_the_desktop_split(self) -> None:
        """The cover letter's "Root-complex MFDs without an ACS cap split per function":
        the desktop's multifunction root port 00:1c and chipset device 00:1f."""
        g = reachable_set_groups(examples.desktop())
        for a, b in (("00:1c.0", "00:1c.1"), ("00:1f.0", "00:1f.2"), ("00:1f.2", "00:1f.3")):
            assert not g.same_group(a, b)


# --- conventional PCI (R6.5) ----------------------------------------------------------


def pci_bridge_topology(kind: PcieType | None = PcieType.PCI_BRIDGE) -> Topology:
    """A PCIe-to-PCI bridge 00:1e.0 (or another ``kind``) with two conventional devices."""
    return Topology(
        [
            bridge("00:1e.0", 5, kind=kind, vendor=0x1B36, device=0x000E),
            ep("05:01.0", kind=None),
            ep("05:02.0", kind=None),
        ]
    )


class TestConventional:
    """R6.5: "groups around a PCIe-to-PCI bridge no longer include the bridge unless the
    bridge has MMIO"."""

    def test_without_mmio_the_bridge_leaves(self) -> None:
        """PCI_BUS_NON_ISOLATED: 05:01.0 finds no group on bus 05 and makes a
        NON_ISOLATED one; 05:02.0 (its bridge's group is not flagged) finds it as
        the first grouped device of the bus (R6.9)."""
        facts = ProposalFacts(no_mmio=["00:1e.0"])
        assert groups(pci_bridge_topology(), facts=facts) == fs("00:1e.0", "05:01.0 05:02.0")

    def test_with_mmio_the_bridge_stays(self) -> None:
        """PCI_BRIDGE_NON_ISOLATED: both join the bridge's group (R6.9)."""
        facts = ProposalFacts(mmio=["00:1e.0"])
        assert groups(pci_bridge_topology(), facts=facts) == fs("00:1e.0 05:01.0 05:02.0")

    def test_unknown_mmio_is_read_as_mmio(self) -> None:
        """Fail closed: the model has no BARs, so the bridge has MMIO unless told; the
        decision records "mmio" as missing."""
        g = reachable_set_groups(pci_bridge_topology(), record=True)
        assert g.same_group("00:1e.0", "05:01.0")
        outcome = g.decisions.outcome("0000:05:01.0")  # type: ignore[attr-defined]
        assert outcome is not None
        assert outcome.missing == {"mmio"}
        assert outcome.isolation.value is BusIsolation.PCI_BRIDGE_NON_ISOLATED

    @pytest.mark.parametrize("kind", [None, PcieType.PCIE_BRIDGE])
    def test_other_bridges_stay(self, kind: PcieType | None) -> None:
        """A conventional bridge, or a PCI-to-PCIe bridge: PCI_BRIDGE_NON_ISOLATED, the
        bridge is in the group whatever its MMIO."""
        facts = ProposalFacts(no_mmio=["00:1e.0"])
        assert groups(pci_bridge_topology(kind), facts=facts) == fs("00:1e.0 05:01.0 05:02.0")

    def test_a_pcie_bridge_alias_makes_a_pcie_to_pci_bridge(self) -> None:
        """R6.5: a conventional bridge with PCIE_BRIDGE_ALIAS (R3.5) is taken as a
        PCIe-to-PCI bridge (so without MMIO it leaves its devices' group)."""
        from iommugroups import BridgeFlag, BridgeFlagQuirk

        quirks = Quirks().with_bridge_flag_quirk(
            BridgeFlagQuirk(0x1B36, 0x000E, BridgeFlag.PCIE_BRIDGE_ALIAS)
        )
        topo = Topology(
            [
                bridge("00:01.0", 1, 2, acs=None),
                bridge("01:00.0", 2, kind=None, vendor=0x1B36, device=0x000E),
                ep("02:01.0", kind=None),
            ]
        )
        facts = ProposalFacts(no_mmio=["01:00.0"])
        got = groups(topo, quirks=quirks, facts=facts)
        assert got == fs("00:01.0", "01:00.0", "02:01.0")
        assert groups(topo, facts=facts) == fs("00:01.0", "01:00.0 02:01.0")


# --- ACS Enhanced (patches 10, 11, R6.12) ---------------------------------------------


class TestAcsEnhanced:
    """R6.12, and failing closed where the model has no ACS Enhanced bits."""

    def test_unknown_enhanced_counts_as_not_isolating(self) -> None:
        """A root port with ACS on: DSP_MT_RR counts only with ACS Enhanced, which the
        model cannot tell, so the bus is PCIE_NON_ISOLATED and the device joins the
        port (a bigger group), recording "acs-enhanced" as missing; stated as
        absent, the bus is isolated."""
        topo = cover_root_port(ON)
        g = reachable_set_groups(topo, record=True)
        assert g.same_group("00:01.0", "01:00.0")
        outcome = g.decisions.outcome("0000:01:00.0")  # type: ignore[attr-defined]
        assert outcome is not None
        assert outcome.missing == {"acs-enhanced"}
        # the device that joined through the flagged group rests on it too
        later = g.decisions.outcome("0000:01:00.1")  # type: ignore[attr-defined]
        assert later is not None
        assert later.how == "hierarchy"
        assert later.missing
        assert not reachable_set_groups(topo, facts=KNOWN).same_group("00:01.0", "01:00.0")

    def test_a_port_without_acs_needs_no_fact(self) -> None:
        """R6.2 reads ``acs_cap`` first: a port without one isolates, no fact missing."""
        g = reachable_set_groups(cover_root_port(None), record=True)
        outcome = g.decisions.outcome("0000:01:00.0")  # type: ignore[attr-defined]
        assert outcome is not None
        assert outcome.certain

    def test_quirks_and_the_memory_target_controls(self) -> None:
        """A quirk answers with the request as given: a fixed set of controls without
        the memory-target ones refuses it (pci_acs_ctrl_enabled), a quirk that masks
        the request first (pci_quirk_amd_sb_acs) drops them."""
        port = bridge("00:01.0", 1, acs=ON, vendor=0x1234, device=0x5678)
        topo = Topology([port])
        quirks = Quirks().with_acs_quirk(AcsQuirk.isolated(0x1234, 0x5678))
        env = ReachableEnv(GroupingEnv(make_context(topo, quirks)), KNOWN)
        plain = pci_acs_enabled(port, REQ_ACS_FLAGS, env)
        assert plain.enabled
        assert plain.verdict.decided_by == "quirk"
        asked = pci_acs_enabled(port, REQ_ACS_FLAGS, env, dsp_mt_rr=True)
        assert (asked.enabled, asked.memory_target) == (False, "not-provided")
        sb = PciFunction(
            "00:14.0",
            vendor=0x1002,
            device=0x4385,
            pcie_type=PcieType.ENDPOINT,
            multifunction=True,
        )
        sb_topo = Topology([sb, ep("00:14.1", kind=PcieType.ENDPOINT)])
        import attrs

        ctx = attrs.evolve(make_context(sb_topo), amd_ivrs=True)
        sb_env = ReachableEnv(GroupingEnv(ctx), KNOWN)
        masked = pci_acs_enabled(sb, REQ_ACS_FLAGS, sb_env, usp_mt_rr=True)
        assert masked.verdict.decided_by == "quirk"
        assert masked.memory_target == "dropped"

    def test_zhaoxin_downstream_ports_spoil_the_switch(self) -> None:
        """A listed Zhaoxin downstream port (quirk: SV|RR|CR|UF provided) refuses
        DSP_MT_RR|USP_MT_RR and USP_MT_RR alone (pci_acs_ctrl_enabled), so its
        switch's interior bus is PCIE_NON_ISOLATED, even with the ACS Enhanced
        question settled (R6.4, R6.12)."""
        topo = Topology(
            [
                bridge("00:00.0", 1, 3, acs=ON),
                usp("01:00.0", 2, 3),
                bridge(
                    "02:00.0", 3, kind=PcieType.DOWNSTREAM, acs=None, vendor=0x1D17, device=0x0716
                ),
                ep("03:00.0"),
            ]
        )
        assert _isolation(topo, 0, 2).value is BusIsolation.PCIE_NON_ISOLATED
        assert canonical_groups(topo).group_of("01:00.0") != canonical_groups(topo).group_of(
            "03:00.0"
        )


# --- out-of-order probing, VMD, BRIDGE_XLATE_ROOT (R6.10, R6.11) -----------------------


class TestOrder:
    """R6.10: "Explicitly require ordering, or return EPROBE_DEFER if things are out of
    order"."""

    def test_a_child_before_its_bridge_defers(self) -> None:
        """pci_hierarchy_group: bus 02's bridge 00:02.0 has no group yet, so the patch
        returns -EPROBE_DEFER with its message; the device gets no group. Mainline
        gives it a group of its own (narrower than the topology's)."""
        topo = examples.desktop()
        g = reachable_set_groups(topo, order=["0000:02:00.0"], record=True)
        assert g.group_of("02:00.0") is None
        assert g.ungrouped["0000:02:00.0"] == (
            "PCI device is probing out of order, upstream bridge device of 0000:00:02.0 is "
            "not probed yet (R6.10)"
        )
        assert g.decisions.messages == [  # type: ignore[attr-defined]
            "0000:02:00.0: PCI device is probing out of order, upstream bridge device of "
            "0000:00:02.0 is not probed yet"
        ]
        assert canonical_groups(topo, order=["0000:02:00.0"]).groups[0] == ("0000:02:00.0",)

    def test_vmd_children_join_the_endpoint_or_defer(self) -> None:
        """R6.11: a device in a VMD domain joins its endpoint's group; asked before the
        endpoint has one, -EPROBE_DEFER ("real device of %s is not probed yet")."""
        vmd = PciFunction("00:0e.0", vendor=0x8086, device=0x9A0B, pcie_type=PcieType.RC_END)
        rp = bridge("10000:e0:01.0", 0xE1)
        nvme = ep("10000:e1:00.0")
        topo = Topology([vmd, rp, nvme], platform=Platform(vmd=[VmdDomain(0x10000, "00:0e.0")]))
        g = reachable_set_groups(topo)
        assert len(g.groups) == 1
        early = reachable_set_groups(topo, order=["10000:e0:01.0"])
        assert "real device of 0000:00:0e.0 is not probed yet" in early.ungrouped["10000:e0:01.0"]

    def test_bridge_xlate_root_gets_a_new_group(self) -> None:
        """R6.11: a bridge flagged BRIDGE_XLATE_ROOT (Broadcom 0x9000, R3.5) makes a new
        group before anything else is looked at, even where its bus would put it with
        the bridge above (a root port with ACS off)."""
        topo = Topology(
            [
                bridge("00:00.0", 1, 2, acs=OFF),
                bridge("01:00.0", 2, kind=PcieType.UPSTREAM, vendor=0x14E4, device=0x9000),
            ]
        )
        g = reachable_set_groups(topo, facts=KNOWN, record=True)
        assert not g.same_group("00:00.0", "01:00.0")
        assert g.decisions["0000:01:00.0"].how == "xlate-root"


# --- SR-IOV (R6.8) --------------------------------------------------------------------


def sriov_topology(rp_acs: Acs | None) -> Topology:
    """A root port, a PF ``01:00.0`` with two VFs on its own bus (``01:00.2``, ``01:00.3``)."""
    cap = SriovCapability(total_vfs=2, num_vfs=2, offset=2, stride=1, vf_device=0x10)
    pf = PciFunction("01:00.0", pcie_type=PcieType.ENDPOINT, multifunction=True, sriov=cap)
    return Topology(
        [
            bridge("00:01.0", 1, acs=rp_acs),
            pf,
            ep("01:00.1", mf=True, acs=OFF),
            PciFunction("01:00.2", pcie_type=PcieType.ENDPOINT, physfn="01:00.0"),
            PciFunction("01:00.3", pcie_type=PcieType.ENDPOINT, physfn="01:00.0"),
        ]
    )


class TestVfs:
    """R6.8: VFs go by their PF's bus and "We don't support VFs that also have ACS that are
    set to non-isolating"."""

    def test_vfs_do_not_pair_with_their_slot(self) -> None:
        """Bus 01 is isolated (a root port without ACS); the PF and 01:00.1 pair (01:00.1
        has ACS off); the VFs share slot 0 with them but pci_mfds_are_same_group is
        false for a VF: each VF has a group of its own."""
        assert groups(sriov_topology(None)) == fs(
            "00:01.0", "01:00.0 01:00.1", "01:00.2", "01:00.3"
        )

    def test_vfs_follow_a_non_isolated_bus(self) -> None:
        """With ACS off on the port, bus 01 is PCIE_NON_ISOLATED: the PF joins the
        port's group and flags it; the VFs find it through pci_hierarchy_group on
        their PF's bus."""
        assert groups(sriov_topology(OFF), facts=KNOWN) == fs(
            "00:01.0 01:00.0 01:00.1 01:00.2 01:00.3"
        )


# --- the alias check of patch 7 (R6.13) -----------------------------------------------


class TestAliasCheck:
    """R6.13: the check logs, it never changes a group."""

    def test_silent_on_the_examples(self) -> None:
        for topo in (examples.desktop(), examples.d05()):
            g = reachable_set_groups(topo, record=True)
            assert g.decisions.messages == []  # type: ignore[attr-defined]

    def test_a_bridge_alias_in_another_group_is_logged(self) -> None:
        """A device behind a conventional bridge carries the bridge's own requester id
        (R3.4), 00f0 on the bridge's bus 00: when the bridge is in another group the patch
        logs "alias processing needed dev ... to have the same group"."""
        topo = Topology([bridge("00:1e.0", 5, kind=None), ep("05:01.0", kind=None)])
        env = ReachableEnv(GroupingEnv(make_context(topo)))

        class Split(_AllThere):
            def group_of(self, address: object) -> int | None:
                return 7 if str(address) == "0000:00:1e.0" else 3

        msgs = pci_check_group_aliases(topo.get("05:01.0"), 3, Split(topo), env)
        assert msgs == (
            "During group construction alias processing needed dev 0000:00:1e.0 alias f0 to "
            "have the same group but 3 != 7",
        )


# --- properties ----------------------------------------------------------------------


def _coarser(a: set[frozenset[str]], b: set[frozenset[str]]) -> bool:
    """Every group of ``b`` lies inside one group of ``a``."""
    return all(any(g <= h for h in a) for g in b)


class TestProperties:
    """What the patch guarantees, on random topologies."""

    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(topologies(max_functions=30, sriov=False), st.data())
    def test_parents_first_orders_give_the_same_groups(
        self, topology: Topology, data: st.DataObject
    ) -> None:
        """Parents grouped first, every device enumerated: a device's reachable set is
        the same whenever it is asked (its bus holds the same devices), and a bus's
        class does not depend on what is grouped, so any parents-first order gives
        the same partition, and nothing defers (R6.10). (SR-IOV VFs are left out:
        they join their bus later, R6.7 reads the bus as it is.)"""
        order = data.draw(probe_orders(topology, parents_first=True))
        first = reachable_set_groups(topology)
        again = reachable_set_groups(topology, order=[str(a) for a in order])
        assert again.partition() == first.partition()
        assert not again.ungrouped
        assert reachable_set_groups(topology).groups == first.groups  # deterministic

    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(topologies(max_functions=30, sriov=False))
    def test_dma_aliases_share_a_group(self, topology: Topology) -> None:
        """Every requester id a device's DMA carries (R3) that belongs to a device of
        the topology names a device of its group: the consistency patch 7 checks
        (devfn aliases are edges of the reachable set, R6.7; a bridge whose id is an
        alias is part of its bus's group, R6.5/R6.9)."""
        g = reachable_set_groups(topology)
        ctx = make_context(topology)
        by_rid = {(f.address.domain, f.address.rid): f for f in topology.functions}
        for fn in topology.functions:
            for _who, rid in pci_for_each_dma_alias(fn, ctx):
                other = by_rid.get((fn.address.domain, rid))
                if other is not None:
                    assert g.same_group(fn.address, other.address), (fn.address, hex(rid))

    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(topologies(max_functions=30))
    def test_missing_facts_never_split(self, topology: Topology) -> None:
        """Fail closed: with the facts the model lacks left unknown, every group the
        proposal makes with them known (no ACS Enhanced; no bridge has MMIO) lies
        inside one of its groups."""
        unknown = groups(topology)
        no_enhanced = groups(topology, facts=KNOWN)
        bridges = [f.address for f in topology.functions if f.is_bridge]
        nothing = groups(topology, facts=ProposalFacts(acs_enhanced=False, no_mmio=bridges))
        assert _coarser(unknown, no_enhanced)
        assert _coarser(no_enhanced, nothing)

    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(topologies(max_functions=10, sriov=False).flatmap(parents_first_scenarios))
    def test_the_strategy_is_the_kernel_floor_with_the_iommu_first(self, setup) -> None:  # type: ignore[no-untyped-def]
        """The ``reachable-set`` strategy groups each device at device_add with the
        IOMMU registered (a device-tree boot): the same groups as
        reachable_set_groups(iommu_first=True), whatever the drivers do."""
        sim = setup.run("reachable-set").grouping
        assert (
            sim.partition() == reachable_set_groups(setup.topology, iommu_first=True).partition()
        )


class TestIommuFirst:
    """R6.4/R6.7 read ``bus->devices`` when they are called."""

    def test_a_later_sibling_does_not_pull_an_earlier_port_in(self) -> None:
        """A switch whose first downstream port isolates and whose second has no ACS
        capability. Every device enumerated first (x86): the interior bus is
        PCIE_NON_ISOLATED for both ports, both join the upstream port. The IOMMU
        first (each device grouped as it is added): when 02:00.0 is grouped only it
        is on the bus, which is then isolated, so it keeps a group of its own;
        02:03.0, added next, spoils the bus and joins the upstream port."""
        topo = cover_switch(ON, None)
        assert groups(topo, facts=KNOWN) == fs(
            "00:00.0", "01:00.0 02:00.0 02:03.0 03:00.0 04:00.0"
        )
        assert groups(topo, facts=KNOWN, iommu_first=True) == fs(
            "00:00.0", "01:00.0 02:03.0 04:00.0", "02:00.0", "03:00.0"
        )


# --- the strategy, what-if and the CLI -----------------------------------------------

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def go(*argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return status, out, err

    return go


class TestStrategy:
    def test_registered_as_an_out_of_tree_proposal(self) -> None:
        strategy = get_strategy("reachable-set")
        assert strategy is PROPOSALS["reachable-set"]
        assert "reachable-set" not in STRATEGIES  # the analyses' own list is unchanged
        assert strategy.upstream is False  # type: ignore[attr-defined]
        doc = (ROOT / "iommugroups/_boot/strategies/reachable_set.py").read_text()
        assert "not mainline" in strategy.kernel
        assert SERIES in doc

    def test_simulate_the_seed_boots(self, run: Run) -> None:
        """On the D05 the root ports have no ACS capability (R6.2) and the ConnectX-5's
        functions none either (R6.6): root port, PFs and VFs each alone, in both
        boots."""
        for example in ("d05-builtin", "d05-module"):
            status, out, _ = run(
                "simulate", "--example", example, "--strategy", "reachable-set", "--json"
            )
            assert status == 0
            doc = json.loads(out)
            assert doc["strategy"] == "reachable-set"
            lone = [g for g in doc["groups"] if set(g) & {"000a:10:00.0", "000a:11:00.0"}]
            assert lone == [["000a:10:00.0"], ["000a:11:00.0"]]
            status, text, _ = run("simulate", "--example", example, "--strategy", "reachable-set")
            assert status == 0
            assert "IOMMU Group" in text
        result = simulate(examples.d05(), examples.d05_scenario(True), "reachable-set")
        g = result.grouping
        assert not g.same_group("000a:10:00.0", "000a:11:00.0")
        assert not g.same_group("000a:11:00.0", "000a:11:00.1")
        assert not g.same_group("000a:11:00.0", "000a:11:00.2")  # a VF (R6.8)

    def test_a_defer_in_the_simulator(self) -> None:
        """R6.10 where a parent never gets a group: on an SMMUv3 the root port's stream
        id is held by a platform device (R7.9), so the port has no group; its device
        then gets -EPROBE_DEFER with the patch's message, at device_add and again when
        its driver's probe tries, and never a group (mainline gives it one of its
        own). The kernel floor agrees."""
        topo = Topology(
            [bridge("00:01.0", 1), ep("01:00.0")],
            platform_devices=[PlatformDevice("dma0", iommu="smmu0", stream_ids=(0x08,))],
            iommus=[IommuInstance("smmu0", "smmuv3")],
            id_mappings=[IdMapping(0, 0, 0x10000, 0, "smmu0")],
        )
        message = (
            "PCI device is probing out of order, upstream bridge device of 0000:00:01.0 is "
            "not probed yet"
        )
        result = simulate(topo, Scenario(name="clash"), "reachable-set")
        assert result.grouping.group_of("01:00.0") is None
        lines = [str(e) for e in result.events if message in str(e)]
        assert lines
        assert lines[0] == f"pci 0000:01:00.0: {message}"
        floor = reachable_set_groups(topo)
        assert floor.ungrouped["0000:01:00.0"] == f"{message} (R6.10)"
        assert canonical_groups(topo).group_of("01:00.0") is not None

    def test_unknown_name(self) -> None:
        with pytest.raises(KeyError, match="reachable-set"):
            get_strategy("no-such-strategy")


class TestWhatIf:
    def test_grammar(self) -> None:
        assert parse_change("reachable-set") == ReachableSet()
        assert parse_change("grouping=reachable-set") == ReachableSet()
        change = parse_change("reachable-set=no-acs-enhanced,no-mmio@00:1e.0")
        assert isinstance(change, ReachableSet)
        assert change.facts == ProposalFacts(acs_enhanced=False, no_mmio=["00:1e.0"])
        assert change.text == "reachable-set=no-acs-enhanced,no-mmio@0000:00:1e.0"
        assert not change.upstream
        assert SERIES in change.label
        for bad in ("reachable-set=bogus", "grouping=mainline", "reachable-set=mmio@zz"):
            with pytest.raises(WhatIfError):
                parse_change(bad)

    def test_the_desktop(self) -> None:
        """Before is mainline, after the proposal: 02:00.0 splits from its port (R6.2),
        the switch below 00:03.0 merges with its upstream port (R6.4)."""
        r = what_if(examples.desktop(), ["reachable-set=no-acs-enhanced"])
        assert r.before.strategy == "canonical"
        assert r.after.strategy == "reachable-set"
        assert r.device("02:00.0").status.value == "split"
        assert r.device("08:00.0").status.value == "merged"
        why = {w.device: w for w in why_after(r)}
        assert (why["0000:02:00.0"].rule, why["0000:02:00.0"].how) == ("R6.2", "new")
        assert why["0000:07:08.0"].rule == "R6.4"
        assert "0000:00:00.0" not in why  # unchanged devices have no entry
        doc = r.to_json()
        assert doc["grouping_after"] == "reachable-set"
        assert doc["facts"] == "no-acs-enhanced"
        assert {w["device"] for w in doc["reasons"]} == set(why)

    def test_combined_with_a_topology_change(self) -> None:
        """Changes apply in order; the proposal groups the changed machine."""
        r = what_if(examples.desktop(), ["remove-acs=00:01.0", "reachable-set"])
        assert r.after.strategy == "reachable-set"
        assert not r.after.same_group("00:01.0", "01:00.0")  # R6.2: no capability now

    def test_other_changes_keep_their_json(self) -> None:
        doc = what_if(examples.desktop(), ["remove-acs=00:01.0"]).to_json()
        assert "reasons" not in doc
        assert "grouping_after" not in doc

    def test_cli(self, run: Run) -> None:
        status, out, _ = run("what-if", "--example", "desktop", "reachable-set")
        assert status == 0
        assert "[NOT UPSTREAM] the ACS reachable-set series" in out
        assert "Why, after (the reachable-set proposal's decisions, rules R6.1-R6.13):" in out
        assert re.search(r"^  0000:02:00\.0  R6.2 ", out, re.M)
        assert "rests on facts not known: acs-enhanced" in out
        status, out2, _ = run("what-if", "--example", "desktop", "--reachable-set")
        assert (status, out2) == (0, out)
        status, out3, _ = run(
            "what-if", "--example", "desktop", "--reachable-set", "no-acs-enhanced", "--json"
        )
        assert json.loads(out3)["facts"] == "no-acs-enhanced"
        status, _, err = run("what-if", "--example", "desktop", "reachable-set=bogus")
        assert status == 2
        assert "unknown assumption 'bogus'" in err

    def test_an_oracle_capture(self) -> None:
        """A QEMU machine (its ports do not advertise ACS Enhanced: capability word
        0x005f): the xio3130 switch's downstream ports have no ACS capability, so
        the upstream port 01:00.0 joins them (R6.4); the root port 00:04.0, without
        one, leaves its switch (R6.2)."""
        topo = load(DESIGNED / "switch.lspci")
        got = groups(topo, facts=KNOWN)
        assert (
            frozenset(
                ["01:00.0", "02:00.0", "02:01.0", "02:02.0", "03:00.0", "04:00.0", "04:00.1"]
            )
            in got
        )
        assert frozenset({"00:04.0"}) in got


# --- the rule table's section (tests/test_rule_ids.py checks ids, anchors and use) -------


def test_the_r6_section_of_the_rule_table() -> None:
    """The proposal's rules, R6.1-R6.13, are the last section of the rule table; each
    cites its patch by Message-ID and says it is not in mainline (status historical)."""
    table = (ROOT / "docs" / "rule-table.md").read_text(encoding="utf-8")
    section = table[table.index("## Out-of-tree: the reachable-set proposal (v3)") :]
    assert "\n## " not in section[1:], "the section is the last one"
    entries = re.split(r"^\(rule-(R6\.\d+)\)=\n", section, flags=re.M)
    defined = dict(zip(entries[1::2], entries[2::2], strict=True))
    assert list(defined) == [f"R6.{n}" for n in range(1, 14)]
    for rule, body in defined.items():
        assert body.startswith(f"### {rule} "), rule
        source = body.split("- **Source:**")[1].split("- **Holds:**")[0]
        assert re.search(r"patch \d+", source), rule
        assert "not in mainline through 7.3; proposed v3 2025-09-05" in body, rule
        assert re.search(r"^- \*\*Status:\*\* historical$", body, flags=re.M), rule
    assert table.count("(rule-R6.") == 13  # nowhere else


def test_the_patches_are_cited() -> None:
    """Every patch the model follows is cited by its Message-ID in the module."""
    text = (ROOT / "iommugroups/_kernel/reachable_set.py").read_text(encoding="utf-8")
    assert SERIES in text
    for n in (2, 3, 5, 6, 7, 10, 11):
        assert f"<{n}-v3-" in text, n
    assert PATCHES[6] == "<6-v3-8827cc7fc4e0+23f-pcie_switch_groups_jgg@nvidia.com>"


def test_outcome_words() -> None:
    """An outcome says what happened in words, with its rule."""
    o = Outcome(
        examples.desktop().get("02:00.0").address,
        "deferred",
        "R6.10",
        ("R6.10",),
        message="PCI device is probing out of order",
    )
    assert o.refused
    assert o.text() == "PCI device is probing out of order (R6.10)"
