"""The public Hypothesis strategies (:mod:`iommugroups.testing`) generate what they promise.

Two kinds of checks:

* every generated topology is well formed beyond what ``Topology``
  validates: depth-first bus numbering, VFs where the SR-IOV capability puts
  them, feature flags honoured, size bounded;
* each feature is actually generated sometimes (``hypothesis.find`` with a
  fixed seed), so the strategies cannot silently become narrow.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from iommugroups import REQ_ACS_FLAGS, Acs, AcsFlags, PciAddress, PcieType, PciFunction, Topology
from iommugroups._kernel.acs import pci_acs_flags_enabled
from iommugroups.testing import FULL_ACS, acs, pci_addresses, shuffled, topologies

# --- helpers -----------------------------------------------------------------------


def ancestors(topology: Topology, fn: PciFunction) -> list[PciFunction]:
    """The bridges above ``fn``, bottom up (virtual buses stepped over)."""
    out = []
    dom, bus = fn.address.domain, fn.address.bus
    while not topology.is_root_bus(dom, bus):
        br = topology.bus_self(dom, bus)
        parent = topology.parent_bus(dom, bus)
        assert parent is not None
        if br is not None:
            out.append(br)
        bus = parent
    return out


def below(topology: Topology, bridge: PciFunction) -> list[PciFunction]:
    """The functions on ``bridge``'s secondary bus."""
    assert bridge.secondary_bus is not None
    return list(topology.devices_on_bus(bridge.address.domain, bridge.secondary_bus))


def slots(topology: Topology) -> dict[tuple[int, int, int], list[PciFunction]]:
    """Functions by (domain, bus, slot), VFs left out."""
    out: dict[tuple[int, int, int], list[PciFunction]] = {}
    for fn in topology:
        if not fn.is_virtfn:
            a = fn.address
            out.setdefault((a.domain, a.bus, a.device), []).append(fn)
    return out


def is_full(fn: PciFunction) -> bool:
    return fn.acs is not None and pci_acs_flags_enabled(fn, REQ_ACS_FLAGS)


def is_partial(fn: PciFunction) -> bool:
    return fn.acs is not None and not pci_acs_flags_enabled(fn, REQ_ACS_FLAGS)


def root_ports(t: Topology) -> list[PciFunction]:
    return [f for f in t if f.pcie_type is PcieType.ROOT_PORT]


# --- well-formedness ---------------------------------------------------------------


class TestWellFormed:
    """Beyond ``Topology``'s validation: what a kernel enumeration would produce."""

    @given(topologies(max_functions=25))
    def test_size_bounded(self, topology: Topology) -> None:
        assert 1 <= len(topology) <= 25
        assert not topology.platform_devices
        assert not topology.iommus

    @given(topologies())
    def test_depth_first_bus_numbers(self, topology: Topology) -> None:
        # Each bridge's range is exactly its subtree: secondary = the bus it
        # creates, subordinate = the highest bus used below it (VF buses too).
        for br in (f for f in topology if f.is_bridge):
            assert br.secondary_bus is not None
            assert br.subordinate_bus is not None
            subtree = [f for f in topology if br in ancestors(topology, f)]
            buses = {br.secondary_bus} | {f.address.bus for f in subtree}
            buses |= {f.secondary_bus for f in subtree if f.secondary_bus is not None}
            assert min(buses) == br.secondary_bus
            assert max(buses) == br.subordinate_bus
            assert buses == set(range(br.secondary_bus, br.subordinate_bus + 1))
        # Every non-root bus is a bridge's secondary bus or a VF-only virtual bus.
        for fn in topology:
            a = fn.address
            if not topology.is_root_bus(a.domain, a.bus) and topology.bridge_above(a) is None:
                assert all(f.is_virtfn for f in topology.devices_on_bus(a.domain, a.bus))

    @given(topologies())
    def test_slots_are_scannable(self, topology: Topology) -> None:
        # The slot scan finds functions > 0 only when function 0 says multifunction.
        for fns in slots(topology).values():
            numbers = [f.address.function for f in fns]
            assert 0 in numbers
            if len(fns) > 1:
                assert next(f for f in fns if f.address.function == 0).multifunction

    @given(topologies())
    def test_vfs_where_sriov_puts_them(self, topology: Topology) -> None:
        for pf in (f for f in topology if f.sriov is not None):
            cap = pf.sriov
            assert cap is not None
            vfs = topology.vfs_of(pf.address)
            assert len(vfs) == cap.num_vfs <= cap.total_vfs
            for i, vf in enumerate(vfs):
                assert vf.address.rid == cap.vf_rid(pf.address.rid, i)
                assert vf.vendor == pf.vendor
                assert vf.device == cap.vf_device
        for vf in (f for f in topology if f.is_virtfn):
            assert vf.physfn is not None
            assert topology.get(vf.physfn).sriov is not None

    @given(topologies())
    def test_link_buses_hold_one_device(self, topology: Topology) -> None:
        for port in topology:
            if port.pcie_type in (PcieType.ROOT_PORT, PcieType.DOWNSTREAM):
                regular = [f for f in below(topology, port) if not f.is_virtfn]
                assert {f.address.device for f in regular} <= {0}

    @given(st.data())
    def test_shuffled_keeps_the_functions(self, data: st.DataObject) -> None:
        topology = data.draw(topologies(max_functions=15))
        other = data.draw(shuffled(topology))
        assert sorted(other.functions, key=lambda f: f.address) == sorted(
            topology.functions, key=lambda f: f.address
        )
        assert other.name == topology.name

    @given(pci_addresses())
    def test_pci_addresses_round_trip(self, address: PciAddress) -> None:
        assert PciAddress.parse(str(address)) == address

    @given(acs(absent=False, partial=False))
    def test_full_acs_isolates(self, value: Acs | None) -> None:
        fn = PciFunction("00:1c.0", pcie_type=PcieType.ROOT_PORT, acs=value)
        assert pci_acs_flags_enabled(fn, REQ_ACS_FLAGS)

    @given(acs(absent=False, full=False))
    def test_partial_acs_has_a_capability(self, value: Acs | None) -> None:
        assert value is not None
        assert value.ctrl & ~value.cap == AcsFlags.NONE  # control only of what is advertised

    def test_acs_needs_a_kind(self) -> None:
        with pytest.raises(ValueError, match="at least one"):
            acs(absent=False, partial=False, full=False)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"max_functions": 0}, "max_functions"),
            ({"domains": 0}, "domains"),
            ({"domains": 7}, "domains"),
            ({"root_buses": 0}, "root_buses"),
            ({"max_depth": -1}, "max_depth"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, int], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            topologies(**kwargs)


#: The shape checks below are cheap to state and need fewer examples.
FEW = settings(max_examples=50)


class TestFlags:
    """Turning a feature off removes it."""

    @FEW
    @given(topologies(sriov=False))
    def test_no_sriov(self, topology: Topology) -> None:
        assert not any(f.is_virtfn or f.sriov is not None for f in topology)

    @FEW
    @given(topologies(multifunction=False))
    def test_no_multifunction(self, topology: Topology) -> None:
        assert not any(topology.is_multifunction(f) for f in topology)

    @FEW
    @given(topologies(conventional=False))
    def test_no_conventional(self, topology: Topology) -> None:
        assert all(f.is_pcie for f in topology)
        assert not any(f.pcie_type is PcieType.PCI_BRIDGE for f in topology)

    @FEW
    @given(topologies(aliases=False))
    def test_no_aliases(self, topology: Topology) -> None:
        assert not any(f.dma_alias_devfns for f in topology)
        assert not any(f.vendor in (0x1B4B, 0x1180, 0x10B5, 0x9005) for f in topology)

    @FEW
    @given(topologies(switches=False))
    def test_no_switches(self, topology: Topology) -> None:
        assert not any(f.pcie_type in (PcieType.UPSTREAM, PcieType.DOWNSTREAM) for f in topology)

    @FEW
    @given(topologies(rciep=False, quirk_ids=False))
    def test_no_rciep(self, topology: Topology) -> None:
        assert not any(f.pcie_type is PcieType.RC_END for f in topology)

    @FEW
    @given(topologies(domains=1, root_buses=1))
    def test_one_root_bus(self, topology: Topology) -> None:
        roots = {
            (f.address.domain, f.address.bus)
            for f in topology
            if topology.is_root_bus(f.address.domain, f.address.bus)
        }
        assert roots == {(0, 0)}

    @FEW
    @given(topologies(max_depth=0))
    def test_no_bridges(self, topology: Topology) -> None:
        assert not any(f.is_bridge for f in topology)

    @FEW
    @given(topologies(full_acs=True))
    def test_full_acs(self, topology: Topology) -> None:
        for fn in topology:
            if fn.pcie_type in (PcieType.ROOT_PORT, PcieType.DOWNSTREAM, PcieType.UPSTREAM):
                assert is_full(fn), fn
            if fn.is_pcie and topology.is_multifunction(fn):
                assert is_full(fn), fn


# --- every feature is generated sometimes ------------------------------------------


def has_slot(t: Topology, pred: Callable[[list[PciFunction]], bool]) -> bool:
    return any(pred(fns) for fns in slots(t).values())


def switch_ports_mixed(t: Topology) -> bool:
    return any(
        f.pcie_type is PcieType.UPSTREAM
        and any(is_full(d) for d in below(t, f))
        and any(d.acs is None for d in below(t, f))
        for f in t
    )


FEATURES: dict[str, Callable[[Topology], bool]] = {
    "several domains": lambda t: len({f.address.domain for f in t}) > 1,
    "several root buses in one domain": lambda t: any(
        len(
            {f.address.bus for f in t if f.address.domain == d and t.is_root_bus(d, f.address.bus)}
        )
        > 1
        for d in {f.address.domain for f in t}
    ),
    "root port without ACS": lambda t: any(f.acs is None for f in root_ports(t)),
    "root port with partial ACS": lambda t: any(is_partial(f) for f in root_ports(t)),
    "root port with full ACS": lambda t: any(is_full(f) for f in root_ports(t)),
    "multifunction root port": lambda t: has_slot(
        t, lambda fns: sum(f.pcie_type is PcieType.ROOT_PORT for f in fns) > 1
    ),
    "switch with mixed downstream ACS": switch_ports_mixed,
    "nested switch": lambda t: any(
        f.pcie_type is PcieType.UPSTREAM
        and any(b.pcie_type is PcieType.DOWNSTREAM for b in ancestors(t, f))
        for f in t
    ),
    "conventional devices behind a PCIe-to-PCI bridge": lambda t: any(
        f.pcie_type is PcieType.PCI_BRIDGE and any(not d.is_pcie for d in below(t, f)) for f in t
    ),
    "conventional PCI-PCI bridge behind a PCIe-to-PCI bridge": lambda t: any(
        f.is_bridge
        and not f.is_pcie
        and any(b.pcie_type is PcieType.PCI_BRIDGE for b in ancestors(t, f))
        for f in t
    ),
    "capability-less bridge below a root port": lambda t: any(
        f.is_bridge
        and not f.is_pcie
        and (up := t.bridge_above(f.address)) is not None
        and up.pcie_type is PcieType.ROOT_PORT
        for f in t
    ),
    "multifunction endpoint with mixed ACS": lambda t: has_slot(
        t,
        lambda fns: (
            all(f.pcie_type is PcieType.ENDPOINT for f in fns)
            and any(is_full(f) for f in fns)
            and any(f.acs is None or is_partial(f) for f in fns)
        ),
    ),
    "function > 0 without the multifunction bit": lambda t: any(
        f.address.function > 0 and not f.multifunction and not f.is_virtfn for f in t
    ),
    "single-function device with the multifunction bit": lambda t: has_slot(
        t, lambda fns: len(fns) == 1 and fns[0].multifunction
    ),
    "RCiEP on a root bus": lambda t: any(
        f.pcie_type is PcieType.RC_END and t.is_root_bus(f.address.domain, f.address.bus)
        for f in t
    ),
    "VF on its PF's bus": lambda t: any(
        f.physfn is not None and f.address.bus == f.physfn.bus for f in t
    ),
    "VF in its PF's slot": lambda t: any(
        f.physfn is not None
        and (f.address.bus, f.address.device) == (f.physfn.bus, f.physfn.device)
        for f in t
    ),
    "VF on a virtual bus below a bridge": lambda t: any(
        f.is_virtfn
        and t.bridge_above(f.address) is None
        and not t.is_root_bus(f.address.domain, f.address.bus)
        and f.physfn is not None
        and t.bridge_above(f.physfn) is not None
        for f in t
    ),
    "Marvell function-1 DMA alias": lambda t: any(
        f.vendor == 0x1B4B and f.device == 0x9230 and f.address.function == 0 for f in t
    ),
    "Ricoh function-0 DMA alias": lambda t: any(
        f.vendor == 0x1180 and f.device == 0xE832 and f.address.function > 0 for f in t
    ),
    "explicit DMA alias devfns": lambda t: any(f.dma_alias_devfns for f in t),
    "ACS-quirk root port": lambda t: any((f.vendor, f.device) == (0x8086, 0x3B42) for f in t),
}


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_feature_is_generated(feature: str) -> None:
    predicate = FEATURES[feature]
    found = find(
        topologies(),
        predicate,
        settings=settings(
            max_examples=3000,
            phases=[Phase.generate],
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
        random=random.Random(20250),
    )
    assert predicate(found)


def test_full_acs_mode_keeps_features() -> None:
    """``full_acs=True`` still has switches and PFs (only ACS changes)."""
    found = find(
        topologies(full_acs=True),
        lambda t: (
            any(f.pcie_type is PcieType.DOWNSTREAM for f in t) and any(f.is_virtfn for f in t)
        ),
        settings=settings(
            max_examples=2000,
            phases=[Phase.generate],
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
        random=random.Random(20250),
    )
    assert all(is_full(f) for f in found if f.pcie_type is PcieType.DOWNSTREAM)
    assert FULL_ACS.ctrl == REQ_ACS_FLAGS
