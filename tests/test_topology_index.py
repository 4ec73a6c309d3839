"""The topology's index: built once, in linear time and memory, and reused when a
reader only marks unknown facts.

``Topology.replace(functions=...)`` with functions that differ only in
``unknown`` facts the index does not read reuses the index with the new
functions put in: every answer must be the one a fresh build gives. The
chains of bridges above each bus (R2.4, R3.4 and R4.2 walk them) share their
tails, so a deep switch chain costs memory linear in its depth.
"""

from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st

from iommugroups import PciAddress, PcieType, PciFunction, SriovCapability, Topology
from iommugroups._kernel.model import _KEEP_TUPLES, _Index, make_vf
from iommugroups.testing import topologies


def _fields(index: _Index) -> dict[str, object]:
    """The index's answers (the caches made on demand left out)."""
    skip = {"chains", "tuples", "names"}
    return {a.name: getattr(index, a.name) for a in attrs.fields(_Index) if a.name not in skip}


def _same_objects(a: _Index, b: _Index) -> None:
    """Equal, and holding the very function objects of their own topology."""
    assert _fields(a) == _fields(b)
    assert all(x is y for x, y in zip(a.order, b.order, strict=True))
    for key, fns in a.on_bus.items():
        assert all(x is y for x, y in zip(fns, b.on_bus[key], strict=True))
    for key, br in a.bus_self.items():
        assert br is b.bus_self[key]
    for pf, vfs in a.vfs.items():
        assert all(x is y for x, y in zip(vfs, b.vfs[pf], strict=True))
    for address, fn in a.by_addr.items():
        assert fn is b.by_addr[address]


@given(topologies(), st.data())
def test_replace_reuses_the_index_as_a_fresh_build_would_make_it(
    topo: Topology, data: st.DataObject
) -> None:
    facts = st.frozensets(st.sampled_from(["acs", "bridge", "multifunction", "pcie", "config"]))
    marks = data.draw(st.lists(st.tuples(st.sampled_from(topo.functions), facts), max_size=4))
    new = {fn.address: attrs.evolve(fn, unknown=fn.unknown | more) for fn, more in marks}
    functions = [new.get(f.address, f) for f in topo.functions]
    # some bridges were asked for before: the new index must not keep them
    for fn in topo.functions[:3]:
        topo.bridges_above(fn)
    replaced = topo.replace(functions=functions)
    fresh = Topology(functions)
    _same_objects(replaced._index, fresh._index)
    for fn in replaced.functions:
        assert replaced.bridges_above(fn) == fresh.bridges_above(fn)
        pairs = zip(replaced.bridges_above(fn), fresh.bridges_above(fn), strict=True)
        assert all(x is y for x, y in pairs)
    assert replaced.missing_bridges() == fresh.missing_bridges()
    assert replaced.bus_conflicts() == fresh.bus_conflicts()


def test_a_change_the_index_reads_builds_it_anew() -> None:
    """An unknown PCIe type makes a bus's evidence "unknown" (``_bus_evidence``)."""
    topo = Topology([PciFunction("01:00.0"), PciFunction("00:00.0")])
    (before,) = topo.missing_bridges()
    assert before.why.startswith("bus 01 has no bridge in the input and holds conventional")
    marked = [attrs.evolve(f, unknown={"pcie"}) for f in topo.functions]
    assert topo._index.substituted(topo.functions, tuple(marked)) is None
    (after,) = topo.replace(functions=marked).missing_bridges()
    assert "the PCIe type of 01:00.0 is not known" in after.why


def test_other_changes_build_it_anew() -> None:
    topo = Topology([PciFunction("00:00.0"), PciFunction("00:01.0")])
    moved = (topo.functions[0], PciFunction("00:02.0"))
    assert topo._index.substituted(topo.functions, moved) is None
    assert [str(f) for f in topo.replace(functions=moved).enumeration_order()] == [
        "0000:00:00.0",
        "0000:00:02.0",
    ]


def _chain_topology(depth: int) -> Topology:
    """A root port and ``depth`` switches in a chain, one endpoint at the bottom."""
    last = 2 * depth + 1
    fns = [
        PciFunction(
            "00:01.0",
            header_type=1,
            pcie_type=PcieType.ROOT_PORT,
            secondary_bus=1,
            subordinate_bus=last,
        )
    ]
    for level in range(depth):
        up, internal = 2 * level + 1, 2 * level + 2
        fns.append(
            PciFunction(
                PciAddress(0, up, 0, 0),
                header_type=1,
                pcie_type=PcieType.UPSTREAM,
                secondary_bus=internal,
                subordinate_bus=last,
            )
        )
        fns.append(
            PciFunction(
                PciAddress(0, internal, 0, 0),
                header_type=1,
                pcie_type=PcieType.DOWNSTREAM,
                secondary_bus=internal + 1,
                subordinate_bus=last,
            )
        )
    fns.append(PciFunction(PciAddress(0, last, 0, 0), pcie_type=PcieType.ENDPOINT))
    return Topology(fns)


def test_bridges_above_a_deep_chain_shares_its_tails() -> None:
    """R4.2's walk: every bridge up to the root bus, nearest first; the index keeps
    one pair per bus, however deep the chain."""
    depth = 100
    topo = _chain_topology(depth)
    bottom = topo.get(PciAddress(0, 2 * depth + 1, 0, 0))
    above = topo.bridges_above(bottom)
    assert len(above) == 2 * depth + 1
    assert [f.address.bus for f in above] == list(range(2 * depth, -1, -1))
    for fn in topo.functions:
        topo.bridges_above(fn)
    index = topo._index
    assert len(index.chains) == 2 * depth + 2  # one entry per bus
    # a chain's tail is its parent bus's chain: the very same object
    node = index.chains[(0, 2 * depth + 1)]
    assert node is not None
    assert node[1] is index.chains[(0, 2 * depth)]
    # only short chains are kept as tuples
    assert all(len(t) <= _KEEP_TUPLES for t in index.tuples.values())
    assert topo.bridges_above(bottom) == above
    assert topo.upstream_bridge(bottom) == above[0]


def test_replace_marking_every_function_reuses_the_index() -> None:
    """However many functions a reader marks, the index is this one's with them put in."""
    topo = _chain_topology(10)
    marked = [attrs.evolve(f, unknown={"bridge"}) for f in topo.functions]
    replaced = topo.replace(functions=marked)
    _same_objects(replaced._index, Topology(marked)._index)
    assert topo._index.substituted(topo.functions, topo.functions) is topo._index


def _two_pfs_on_one_vf_bus() -> Topology:
    """A root port; below it, two PFs whose VFs (offset 0x100: the next bus;
    stride 2) share bus 02, interleaved: 02:00.0 and .2 are 01:00.0's, .1 and .3
    01:00.1's."""
    sriov = SriovCapability(total_vfs=2, num_vfs=2, offset=0x100, stride=2, vf_device=0x10ED)
    port = PciFunction(
        "00:01.0", header_type=1, pcie_type=PcieType.ROOT_PORT, secondary_bus=1, subordinate_bus=1
    )
    pfs = [
        PciFunction(f"01:00.{fn}", multifunction=fn == 0, pcie_type=PcieType.ENDPOINT, sriov=sriov)
        for fn in range(2)
    ]
    vfs = [make_vf(pf, address) for pf in pfs for address in sriov.vf_addresses(pf.address)]
    # listed out of order: the order is the kernel's, not the input's
    return Topology([vfs[3], vfs[0], pfs[1], port, vfs[2], pfs[0], vfs[1]])


def test_vfs_of_two_pfs_on_one_bus_come_pf_by_pf() -> None:
    """VFs are added when their PF's driver enables them, PF by PF in device-add
    order (``pci_iov_add_virtfn``); on their bus they come in that order, not in
    devfn order."""
    topo = _two_pfs_on_one_vf_bus()
    pf_by_pf = ["02:00.0", "02:00.2", "02:00.1", "02:00.3"]
    order = [str(f.address)[5:] for f in topo.enumeration_order()]
    assert order == ["00:01.0", "01:00.0", "01:00.1", *pf_by_pf]
    assert [str(f.address)[5:] for f in topo.devices_on_bus(0, 2)] == pf_by_pf
    assert [str(f.address)[5:] for f in topo.vfs_of(PciAddress(0, 1, 0, 1))] == pf_by_pf[2:]
    for i, fn in enumerate(topo.enumeration_order()):
        assert topo.position(fn.address) == i
    port = topo.get("00:01.0")
    assert [str(f.address)[5:] for f in topo.children(port)] == order[1:]
    assert topo.child_buses(0, 1) == (2,)
    assert topo.parent_bus(0, 2) == 1
    assert topo.bridges_above(PciAddress(0, 2, 0, 3)) == (port,)


def test_a_missing_bridge_is_named_by_the_first_device_listed() -> None:
    """The evidence for a bus without its bridge names the first device of the
    input that gives it away (R11.8), whatever their addresses."""
    endpoints = [PciFunction(f"05:0{d}.0", pcie_type=PcieType.ENDPOINT) for d in (3, 1, 2)]
    for listed in (endpoints, endpoints[::-1]):
        (missing,) = Topology(listed).missing_bridges()
        first = str(listed[0].address)[5:]
        assert f"{first} is a PCIe Endpoint, which never sits on a root bus" in missing.why
        assert missing.devices == tuple(sorted(f.address for f in endpoints))
