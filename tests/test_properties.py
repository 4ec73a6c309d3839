"""Property tests: canonical grouping obeys the rules on random topologies.

Each class quotes, in its docstring, the rule of ``kernel-semantics.md`` it
checks and names the kernel function it mirrors. The topologies come from
:func:`iommugroups.testing.topologies`; the grouping is
:func:`~iommugroups._kernel.canonical.canonical_groups`, where every
device is probed in device-add order, parents before children, and no
IOMMU is declared (so every PCI function is translated).

The expected relations are derived here from the tree itself
(``Topology.bus_self`` / ``parent_bus`` / ``is_root_bus``) and the ACS and
alias primitives, not from ``pci_device_group``'s own steps.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import attrs
from hypothesis import given
from hypothesis import strategies as st

from iommugroups import (
    REQ_ACS_FLAGS,
    GroupingEnv,
    PciAddress,
    PciFunction,
    Topology,
    pci_acs_enabled,
    pci_acs_path_enabled,
    pci_device_group,
    pci_for_each_dma_alias,
)
from iommugroups._kernel.alias import pci_devs_are_dma_aliases
from iommugroups._kernel.canonical import canonical_groups
from iommugroups._kernel.quirks import QuirkContext, make_context
from iommugroups.testing import shuffled, topologies

TOPOLOGIES = topologies()


def alias_pdev(fn: PciFunction, ctx: QuirkContext) -> PciFunction:
    """R4.1: the last device ``pci_for_each_dma_alias`` hands its callback.

    The device itself, or its topmost aliasing bridge.
    """
    pdev = fn
    for who, _rid in pci_for_each_dma_alias(fn, ctx):
        pdev = who
    return pdev


def non_isolated_bridges_above(
    dev: PciFunction, topology: Topology, ctx: QuirkContext
) -> Iterator[PciFunction]:
    """The bridges above ``dev``, bottom up, until the first ACS-isolated one (excluded).

    A bridge is isolated when its whole path to the root is ACS-enabled
    (``pci_acs_path_enabled(bridge, NULL, REQ_ACS_FLAGS)``). Buses without a
    bridge (SR-IOV virtual buses) are stepped over.
    """
    dom, bus = dev.address.domain, dev.address.bus
    while not topology.is_root_bus(dom, bus):
        br = topology.bus_self(dom, bus)
        parent = topology.parent_bus(dom, bus)
        assert parent is not None
        if br is not None:
            if pci_acs_path_enabled(br, None, REQ_ACS_FLAGS, ctx):
                return
            yield br
        bus = parent


class TestPartition:
    """R1.3: "Groups are only ever joined, never merged or split" -- every PCI
    device that an IOMMU translates joins exactly one group, once.
    R1.1/R1.2: a new group gets "the lowest currently-free non-negative
    integer", and "boot-time ids are dense and follow allocation order".
    R1.4: one ``Adding to iommu group`` line per device, as it is added.
    (``iommu_group_get_for_dev``, ``iommu_group_alloc``.)
    """

    @given(TOPOLOGIES)
    def test_every_function_in_exactly_one_group(self, topology: Topology) -> None:
        groups = canonical_groups(topology)
        members = [m for ms in groups.groups.values() for m in ms]
        assert sorted(members) == sorted(str(f.address) for f in topology)
        assert len(members) == len(set(members))
        assert all(groups.groups.values())  # no empty group
        assert not groups.ungrouped  # no declared IOMMU: everything translated

    @given(TOPOLOGIES)
    def test_ids_dense_in_allocation_order_and_one_log_line_each(self, topology: Topology) -> None:
        groups = canonical_groups(topology)
        assert sorted(groups.groups) == list(range(len(groups.groups)))
        log = groups.log
        assert [line.device for line in log] == [
            str(f.address) for f in topology.enumeration_order()
        ]
        assert all(line.prefix == "pci" and line.action == "add" for line in log)
        assert all(groups.group_of(line.device) == line.group for line in log)
        first_seen = list(dict.fromkeys(line.group for line in log))
        assert first_seen == list(range(len(first_seen)))


class TestInputOrder:
    """§0: "Every 'for each PCI device' loop in the kernel iterates in [device
    registration] order", which the model derives from the tree
    (``Topology.enumeration_order``): "The order of ``functions`` is *not*
    significant for grouping". So the groups, their ids and the log are the
    same whatever order the input lists the functions in.
    """

    @given(st.data())
    def test_shuffled_functions_give_the_same_grouping(self, data: st.DataObject) -> None:
        topology = data.draw(TOPOLOGIES, label="topology")
        other = data.draw(shuffled(topology), label="shuffled")
        assert other.enumeration_order() == topology.enumeration_order()
        assert canonical_groups(other) == canonical_groups(topology)


class TestUpstreamWalk:
    """R4.2: "The walk starts at ``pdev``'s bus. At each non-root bus the test
    is ``pci_acs_path_enabled(bridge_above, None, REQ_ACS_FLAGS)``, i.e. the
    *whole path from that bridge to the root* [...]. On the first isolated
    bridge the walk stops, and that bridge is *not* included. Otherwise
    ``pdev`` moves up to the bridge, and if the bridge already has a group
    that group is returned." R4.1: ``pdev`` starts as "the device itself, or
    the topmost aliasing bridge". (``pci_device_group`` step 2.)

    Consequence checked: with parents grouped before children, every device
    shares a group with every bridge strictly above its alias ``pdev`` up to,
    not including, the first bridge whose path to the root is ACS-isolated.
    (By induction on depth: the device joins the first aliasing bridge's
    group in step 1, or the first non-isolated bridge's group in step 2, and
    that bridge already shares with everything above it.)
    """

    @given(TOPOLOGIES)
    def test_device_shares_with_non_isolated_bridges_above(self, topology: Topology) -> None:
        groups = canonical_groups(topology)
        ctx = make_context(topology)
        for fn in topology:
            for br in non_isolated_bridges_above(alias_pdev(fn, ctx), topology, ctx):
                assert groups.same_group(fn.address, br.address), (
                    f"{fn.address} not with non-isolated bridge {br.address} above it"
                )


class TestDmaAliases:
    """R3.4/R4.1: ``pci_for_each_dma_alias`` visits the device's own id, its
    devfn aliases, then the aliasing bridges up the tree; step 1 "aborts if
    that device already has a group" -- so a device joins the group of the
    first aliasing bridge, which (parents first) already shares with the
    ones above it.
    R5.1/R3.6: ``get_pci_alias_group`` looks, on ``pdev``'s bus, for devices
    ``t`` where "``b.devfn`` in ``a.dma_alias_mask``, or ``a.devfn`` in
    ``b.dma_alias_mask``" (``pci_devs_are_dma_aliases``) and joins their
    group, recursing through ungrouped aliases and their non-isolated
    sibling functions.
    """

    @given(TOPOLOGIES)
    def test_device_shares_with_every_device_its_alias_walk_visits(
        self, topology: Topology
    ) -> None:
        groups = canonical_groups(topology)
        ctx = make_context(topology)
        for fn in topology:
            for who, rid in pci_for_each_dma_alias(fn, ctx):
                assert groups.same_group(fn.address, who.address), (
                    f"{fn.address} not with {who.address} (alias rid {rid:04x})"
                )

    @given(TOPOLOGIES)
    def test_same_bus_dma_aliases_share(self, topology: Topology) -> None:
        groups = canonical_groups(topology)
        ctx = make_context(topology)
        by_bus: dict[tuple[int, int], list[PciFunction]] = {}
        for fn in topology:
            by_bus.setdefault((fn.address.domain, fn.address.bus), []).append(fn)
        for fns in by_bus.values():
            for a, b in itertools.combinations(fns, 2):
                if pci_devs_are_dma_aliases(a, b, ctx):
                    assert groups.same_group(a.address, b.address), (
                        f"DMA aliases {a.address} and {b.address} in different groups"
                    )


class TestFunctionAliases:
    """R5.2: ``get_pci_function_alias_group``: "If ``pdev`` is not
    multifunction, or ``pci_acs_enabled(pdev, REQ)`` is true, return nothing.
    For each ``t`` [...] same bus, same slot (``devfn>>3`` equal), and
    ``pci_acs_enabled(t, REQ)`` false: [join its alias group]". R5.6: the
    kernel marks every function other than 0 found by the slot scan
    multifunction.

    Consequence checked: two functions of one slot that are both
    multifunction (kernel view) and both fail ``pci_acs_enabled(REQ)`` are in
    one group.
    """

    @given(TOPOLOGIES)
    def test_non_isolated_functions_of_a_slot_share(self, topology: Topology) -> None:
        groups = canonical_groups(topology)
        ctx = make_context(topology)
        slots: dict[tuple[int, int, int], list[PciFunction]] = {}
        for fn in topology:
            a = fn.address
            if topology.is_multifunction(fn) and not pci_acs_enabled(fn, REQ_ACS_FLAGS, ctx):
                slots.setdefault((a.domain, a.bus, a.device), []).append(fn)
        for fns in slots.values():
            for a, b in itertools.combinations(fns, 2):
                assert groups.same_group(a.address, b.address), (
                    f"non-isolated functions {a.address} and {b.address} of one slot "
                    "in different groups"
                )


class TestFullAcsIsolates:
    """R2.1-R2.4: with ``SV|RR|CR|UF`` advertised and enabled on every port,
    every path to the root is ACS-isolated, and single-function endpoints
    "have no peer to reach, so ACS is 'effectively enabled'". Without DMA
    aliases (R3), conventional bridges (which always alias, R3.4) and
    multifunction devices (R5.2), nothing can share: every device is alone.
    """

    @given(
        topologies(
            full_acs=True, aliases=False, conventional=False, multifunction=False, quirk_ids=False
        )
    )
    def test_every_device_alone(self, topology: Topology) -> None:
        groups = canonical_groups(topology)
        assert len(groups.groups) == len(topology)
        assert all(len(members) == 1 for members in groups.groups.values())


class TestTrace:
    """``pci_device_group`` with ``trace=True`` only records its steps (rule
    ids R4.1-R5.2): the decision -- group, the device it was found on, the
    step and the final ``pdev`` (R4.3) -- is the one made without a trace.
    """

    @given(TOPOLOGIES)
    def test_trace_does_not_change_the_decision(self, topology: Topology) -> None:
        plain_env = GroupingEnv(make_context(topology))
        trace_env = GroupingEnv(make_context(topology))
        groups: dict[PciAddress, int] = {}
        for fn in topology.enumeration_order():
            plain = pci_device_group(fn, groups, plain_env)
            traced = pci_device_group(fn, groups, trace_env, trace=True)
            assert plain.steps == ()
            assert traced.steps, f"no trace for {fn.address}"
            assert all(s.rule.startswith("R") for s in traced.steps)
            assert attrs.evolve(traced, steps=(), links=(), walked=(), stop=None) == plain
            groups[fn.address] = (
                plain.group if plain.group is not None else len(set(groups.values()))
            )
        # The replay is canonical grouping (no IOMMU declared: no stream-id rules).
        assert groups == {
            PciAddress.parse(m): g
            for g, ms in canonical_groups(topology).groups.items()
            for m in ms
        }
