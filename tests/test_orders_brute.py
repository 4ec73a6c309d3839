"""``order_dependence`` against brute force: every order of small topologies, through ``simulate``.

For each topology of at most 7 devices (PCI functions, the VFs they enable
and platform devices) and each strategy of the registry, every order of the
decided space (docs: "Order dependence", *What an order is*) that a test can
enumerate is replayed through :func:`~iommugroups.simulate`, and:

* the verdict is *dependent* exactly when two of those orders end differently
  (different groups, or different devices without a group);
* every witness's two orders, replayed, end differently.

What is enumerated, per topology and strategy (each as scenario actions):

* every driver probe order (a VF after its PF, whose ``sriov`` follows its
  probe), with every IOMMU registered first; for ``device-link`` only the
  orders in which a device probes after the bridges above it: any other is
  deferred into one of those (R9.1, R9.2), except that the scenario's
  ``sriov`` would be refused for a PF still waiting for its bridge;
* for ``device-add``, every registration order of the IOMMU instances too,
  with the reference probe order;
* for ``device-add`` and ``canonical``, on the reference order (under every
  registration order), every hot-remove of up to ``REMOVED`` devices (a PF's
  VFs removed first, as the kernel does), at every position, with the rescan
  at every later position, the removed devices probed again after it and
  their VFs enabled again; for the strategies that group at driver probe
  the same on topologies of up to 5 functions, where it must add no outcome.

The corpus: topologies Hypothesis draws with :func:`iommugroups.testing.topologies`
(behind a VT-d-like IOMMU and behind SMMUv3s), hand-made ones for the shapes
the generator rarely draws (one-way slot ties, split IOMMU instances, an
untranslated root port, stream ids shared through the IORT mapping by an
endpoint and a VF or by the VFs of two PFs, R7.9), and the built-in examples
cut into pieces of at most 7 devices. The widened device-add orders
(``adds="any"``) and a modular IOMMU (``iommu_builtin=False``, without
hot-plug for every strategy, with it for the add-time ones) are checked on
smaller topologies.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iommugroups import (
    STRATEGIES,
    IdMapping,
    IommuInstance,
    IommuKind,
    PcieType,
    PciFunction,
    SriovCapability,
    Topology,
    canonical_groups,
    examples,
    simulate,
)
from iommugroups._analysis.orders import order_dependence
from iommugroups._analysis.orders_space import (
    OrderEvent,
    OrderOutcome,
    OrderSpace,
    analysed_topology,
    instances,
    outcome_of,
    reference_order,
    schedule_file,
)
from iommugroups.testing import topologies, with_iommu

from .helpers import bridge, ep, one_way_vf

MAX_DEVICES = 7
#: Devices removed together by one hot-remove, at most.
REMOVED = 3
#: Hypothesis examples per IOMMU kind (``ORDERS_BRUTE_EXAMPLES`` overrides).
EXAMPLES = int(os.environ.get("ORDERS_BRUTE_EXAMPLES", "15"))

#: What was enumerated, for the summary test (topologies, orders replayed).
TALLY = {"topologies": 0, "orders": 0, "dependent": 0, "independent": 0}

Space = tuple[Topology, dict[str, tuple[str, ...]]]


def _replay(
    topo: Topology,
    vfs: object,
    events: Sequence[OrderEvent],
    strategy: str,
    space: OrderSpace | None = None,
) -> OrderOutcome:
    sf = schedule_file(topo, events, vfs, space=space)  # type: ignore[arg-type]
    result = simulate(sf.topology, sf.scenario, strategy, drivers=sf.drivers)
    unbound = [n for n, f in result.fates.items() if f.state != "bound"]
    assert not unbound, (unbound, [str(e) for e in events])  # every order is complete
    return outcome_of(result)


def probe_orders(
    topo: Topology, vfs: dict[str, tuple[str, ...]], *, parents_first: bool
) -> Iterator[list[OrderEvent]]:
    """Every driver probe order: a VF after its PF, each PF enabling its VFs as it binds."""
    pf_of = {v: pf for pf, vs in vfs.items() for v in vs}
    names = [d.name for d in topo.platform_devices]
    names += [str(f.address) for f in topo.enumeration_order()]
    above: dict[str, set[str]] = {}
    for f in topo.enumeration_order():
        need = {str(b.address) for b in topo.bridges_above(f)}
        if f.physfn is not None:
            need |= {str(b.address) for b in topo.bridges_above(topo.get(f.physfn))}
        above[str(f.address)] = need

    def rec(done: list[str], rest: list[str]) -> Iterator[list[str]]:
        if not rest:
            yield list(done)
            return
        placed = set(done)
        for a in rest:
            if a in pf_of and pf_of[a] not in placed:
                continue
            if parents_first and not above.get(a, set()) <= placed:
                continue
            done.append(a)
            yield from rec(done, [b for b in rest if b != a])
            done.pop()

    for order in rec([], names):
        events = []
        for n in order:
            events.append(OrderEvent("probe", n))
            if n in vfs:
                events.append(OrderEvent("sriov", n))
        yield events


def hotplug_orders(
    topo: Topology,
    vfs: dict[str, tuple[str, ...]],
    base: list[OrderEvent],
    removed: int,
    *,
    start: int | None = None,
) -> Iterator[list[OrderEvent]]:
    """``base`` with a hot-remove of up to ``removed`` devices and a later rescan.

    The remove block goes at any position from ``start`` on (by default,
    after the IOMMU registrations that begin ``base``; a PF's enabled VFs
    removed first), the rescan at any later one; after the rescan the
    removed devices are probed again, in device order, each PF enabling its
    VFs again as it binds.
    """
    names = [str(f.address) for f in topo.enumeration_order()]
    pf_of = {v: pf for pf, vs in vfs.items() for v in vs}
    below = {n: {str(f.address) for f in topo.subtree(topo.get(n))} for n in names}

    def under(r: str) -> set[str]:
        out = {r} | below[r]
        return out | {v for v, pf in pf_of.items() if pf in out}

    first = sum(1 for e in base if e.kind == "iommu") if start is None else start
    for k in range(1, min(removed, len(names)) + 1):
        for chosen in itertools.combinations(names, k):
            gone: set[str] = set().union(*(under(r) for r in chosen))
            for i in range(first, len(base) + 1):
                pre = base[:i]
                enabled = {e.target for e in pre if e.kind == "sriov"}
                if any(r in pf_of and pf_of[r] not in enabled for r in chosen):
                    continue
                remove: list[OrderEvent] = []
                done: set[str] = set()
                for r in chosen:
                    if r in done:
                        continue
                    for pf in [n for n in names if n in under(r) and n in vfs]:
                        if pf in enabled:
                            for v in vfs[pf]:
                                if v not in done:
                                    remove.append(OrderEvent("remove", v))
                                    done.add(v)
                    if r not in done:
                        remove.append(OrderEvent("remove", r))
                        done |= {r} | below[r]
                for j in range(i, len(base) + 1):
                    mid = [e for e in base[i:j] if not (e.kind != "iommu" and e.target in gone)]
                    post = [e for e in base[j:] if not (e.kind != "iommu" and e.target in gone)]
                    on = enabled | {e.target for e in mid if e.kind == "sriov"}
                    back = [OrderEvent("rescan")]
                    again: set[str] = set()
                    for n in names:
                        if n in gone and n not in pf_of:
                            back.append(OrderEvent("probe", n))
                            if n in vfs:
                                back.append(OrderEvent("sriov", n))
                                again.add(n)
                    for pf, vs in vfs.items():
                        if pf not in again | gone and pf in on and any(v in gone for v in vs):
                            back.append(OrderEvent("sriov", pf))
                            again.add(pf)
                    back += [
                        OrderEvent("probe", n)
                        for n in names
                        if n in gone and pf_of.get(n) in again
                    ]
                    tail: list[OrderEvent] = []
                    for e in post:
                        tail.append(e)
                        if e.kind == "sriov":
                            tail += [
                                OrderEvent("probe", v)
                                for v in vfs.get(e.target, ())
                                if v in gone and OrderEvent("probe", v) not in back
                            ]
                    yield pre + remove + mid + back + tail


#: Strategies whose groups are made at device_add, for which hot-plug is enumerated on
#: every topology; for the others it is on small ones (``test_hotplug_adds_nothing``).
ADD_TIME = ("device-add", "canonical")


def brute(
    topology: Topology, strategy: str, *, hotplug: bool | None = None
) -> tuple[set[OrderOutcome], int]:
    """The outcomes of every enumerated order, and how many orders were replayed."""
    if hotplug is None:
        hotplug = strategy in ADD_TIME
    topo, by_pf = analysed_topology(topology)
    vfs = {str(pf): tuple(str(v) for v in vs) for pf, vs in by_pf.items()}
    outcomes: set[OrderOutcome] = set()
    n = 0
    regs_all = (
        list(itertools.permutations(instances(topo)))
        if strategy == "device-add"
        else [instances(topo)]
    )
    linked = strategy == "device-link"
    for k, regs in enumerate(regs_all):
        head = [OrderEvent("iommu", i) for i in regs]
        # every probe order under the topology's registration order; each other
        # registration order (device-add) with the reference probes, below
        for events in probe_orders(topo, vfs, parents_first=linked) if k == 0 else ():
            outcomes.add(_replay(topo, by_pf, head + events, strategy))
            n += 1
        base = list(reference_order(topo, by_pf, registrations=list(regs)))
        outcomes.add(_replay(topo, by_pf, base, strategy))
        n += 1
        for events in hotplug_orders(topo, vfs, base, REMOVED) if hotplug else ():
            if linked and not _parents_first(topo, events):
                continue
            outcomes.add(_replay(topo, by_pf, events, strategy))
            n += 1
    return outcomes, n


def _parents_first(topo: Topology, events: Sequence[OrderEvent]) -> bool:
    """Whether every probe comes after the bridges above the device are bound (device-link)."""
    bound: set[str] = set()
    for e in events:
        if e.kind == "probe" and e.target[:1].isdigit() and ":" in e.target:
            fn = topo.get(e.target)
            need = {str(b.address) for b in topo.bridges_above(fn)}
            if fn.physfn is not None:
                need |= {str(b.address) for b in topo.bridges_above(topo.get(fn.physfn))}
            if not need <= bound:
                return False
            bound.add(e.target)
        elif e.kind == "remove":
            fn = topo.get(e.target)
            bound -= {e.target} | {str(f.address) for f in topo.subtree(fn)}
    return True


@pytest.fixture(scope="module", autouse=True)
def _tally() -> Iterator[None]:
    """``ORDERS_BRUTE_REPORT=FILE`` writes what was enumerated there (for the record)."""
    yield
    where = os.environ.get("ORDERS_BRUTE_REPORT")
    if where:
        with open(where, "w", encoding="utf-8") as out:
            json.dump(TALLY, out, indent=1)


def check(topology: Topology, strategies: Sequence[str] = tuple(STRATEGIES)) -> None:
    """The verdict of every strategy agrees with brute force; witnesses replay differently."""
    topo, _vfs = analysed_topology(topology)
    devices = len(topo.functions) + len(topo.platform_devices)
    assert devices <= MAX_DEVICES
    TALLY["topologies"] += 1
    for strategy in strategies:
        answer = order_dependence(topology, strategy)
        outcomes, n = brute(topology, strategy)
        TALLY["orders"] += n
        TALLY[answer.verdict] = TALLY.get(answer.verdict, 0) + 1
        assert answer.verdict != "unknown", (strategy, answer.reason)
        assert (answer.verdict == "dependent") == (len(outcomes) > 1), (
            strategy,
            answer.verdict,
            answer.reason,
            sorted(sorted(sorted(g) for g in o.groups) for o in outcomes)[:3],
        )
        if answer.witness is not None:
            first, second = answer.witness.replay()
            assert first != second
            assert (first, second) == (answer.witness.first_outcome, answer.witness.second_outcome)
            assert {first, second} <= outcomes or answer.witness.differences > 2


def small(topology: Topology) -> bool:
    topo, _vfs = analysed_topology(topology)
    return len(topo.functions) + len(topo.platform_devices) <= MAX_DEVICES


SMALL = topologies(max_functions=MAX_DEVICES).filter(small)
CROSS_CHECK = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def _one_way_vf() -> Topology:
    """A Wangxun VF in the slot of a multifunction endpoint without ACS: the endpoint
    looks at the VF (R5.2), the VF, not multifunction (R5.6), at nobody."""
    return with_iommu(one_way_vf())


def _split_instances() -> Topology:
    """A root port on one SMMUv3 and the bus below it on another (R4.6)."""
    t = Topology([bridge("00:01.0", 1), ep("01:00.0"), ep("01:00.1", mf=True)])
    return t.replace(
        iommus=[
            IommuInstance("smmu0", IommuKind.SMMU_V3),
            IommuInstance("smmu1", IommuKind.SMMU_V3),
        ],
        id_mappings=[
            IdMapping(0, 0x0000, 0x100, 0, "smmu0"),
            IdMapping(0, 0x100, 0x100, 0x100, "smmu1"),
        ],
    )


def _untranslated_port() -> Topology:
    """A root port no IOMMU translates, a DMA alias of the device beside it (R3.3)."""
    t = Topology([ep("00:00.0", aliases=frozenset({0x08})), bridge("00:01.0", 1), ep("01:00.0")])
    return t.replace(
        iommus=[IommuInstance("smmu0", IommuKind.SMMU_V3)],
        id_mappings=[
            IdMapping(0, 0x0000, 0x8, 0, "smmu0"),
            IdMapping(0, 0x100, 0x100, 0x100, "smmu0"),
        ],
    )


def _pf(addr: str, offset: int) -> PciFunction:
    """An SR-IOV PF with one VF, ``offset`` routing ids past it."""
    return PciFunction(
        addr,
        vendor=0x8086,
        device=0x10C9,
        class_code=0x020000,
        pcie_type=PcieType.ENDPOINT,
        sriov=SriovCapability(total_vfs=1, num_vfs=1, offset=offset, stride=1, vf_device=0x10CA),
    )


def _vf(addr: str, pf: str) -> PciFunction:
    return PciFunction(
        addr,
        vendor=0x8086,
        device=0x10CA,
        class_code=0x020000,
        pcie_type=PcieType.ENDPOINT,
        physfn=pf,
    )


def endpoint_and_vf_share_a_stream_id() -> Topology:
    """An IORT mapping that sends bus 0 and bus 1 onto the same stream ids (R3.8): the
    root-complex endpoint ``00:02.0`` and the VF ``01:02.0`` share stream id 0x110 on
    one SMMUv3. The endpoint, added at boot, keeps it in the reference order; hot-removed
    before the PF enables its VF and rescanned after, it is the one refused (R7.9)."""
    t = Topology(
        [
            bridge("00:01.0", 1),
            _pf("01:00.0", 0x10),
            _vf("01:02.0", "01:00.0"),
            ep("00:02.0", kind=PcieType.RC_END),
        ]
    )
    return t.replace(
        iommus=[IommuInstance("smmu0", IommuKind.SMMU_V3)],
        id_mappings=[
            IdMapping(0, 0x000, 0x100, 0x100, "smmu0"),
            IdMapping(0, 0x100, 0x100, 0x100, "smmu0"),
        ],
    )


def vfs_of_two_pfs_share_stream_ids() -> Topology:
    """Buses 1 and 2 mapped onto the same stream ids (R3.8): the PFs clash at boot
    (device order decides), their VFs when they are enabled (the PFs' order decides)."""
    t = Topology(
        [
            bridge("00:01.0", 1),
            _pf("01:00.0", 1),
            _vf("01:00.1", "01:00.0"),
            bridge("00:02.0", 2),
            _pf("02:00.0", 1),
            _vf("02:00.1", "02:00.0"),
        ]
    )
    return t.replace(
        iommus=[IommuInstance("smmu0", IommuKind.SMMU_V3)],
        id_mappings=[
            IdMapping(0, 0x000, 0x100, 0x000, "smmu0"),
            IdMapping(0, 0x100, 0x100, 0x1000, "smmu0"),
            IdMapping(0, 0x200, 0x100, 0x1000, "smmu0"),
        ],
    )


def conventional_pair() -> Topology:
    """Two conventional devices behind a PCIe-to-PCI bridge alias to its secondary bus
    (R3.4) and so share a stream id on an SMMUv3 (R7.9)."""
    return with_iommu(
        Topology(
            [
                bridge("00:01.0", 1, kind=PcieType.PCI_BRIDGE, device=0x000E),
                ep("01:01.0", vendor=0x1274, device=0x5000, class_code=0x040100, kind=None),
                ep("01:02.0", vendor=0x1274, device=0x5000, class_code=0x040100, kind=None),
            ]
        ),
        kind=IommuKind.SMMU_V3,
    )


HAND_MADE = {
    "one-way VF tie": _one_way_vf,
    "multifunction root ports": lambda: with_iommu(
        Topology(
            [
                bridge("00:1c.0", 1, mf=True),
                bridge("00:1c.1", 2, mf=True),
                ep("01:00.0"),
                ep("02:00.0"),
            ]
        )
    ),
    "DMA alias of a root port": lambda: with_iommu(
        Topology([ep("00:00.0", aliases=frozenset({0x08})), bridge("00:01.0", 1), ep("01:00.0")])
    ),
    "split IOMMU instances": _split_instances,
    "untranslated root port": _untranslated_port,
    "seed shape": lambda: with_iommu(
        Topology(
            [
                bridge("00:00.0", 1),
                ep("01:00.0", vendor=0x15B3, device=0x1017, mf=True),
                ep("01:00.1", vendor=0x15B3, device=0x1017, mf=True),
            ]
        ),
        kind=IommuKind.SMMU_V3,
    ),
    "endpoint and VF share a stream id": endpoint_and_vf_share_a_stream_id,
    "VFs of two PFs share stream ids": vfs_of_two_pfs_share_stream_ids,
    "conventional devices behind a PCIe-to-PCI bridge": conventional_pair,
}


class TestAgainstBruteForce:
    """Every order the space holds, replayed; the verdict is decided from structure alone."""

    @CROSS_CHECK
    @given(SMALL)
    def test_behind_a_vtd_like_iommu(self, topology: Topology) -> None:
        check(with_iommu(topology))

    @CROSS_CHECK
    @given(SMALL)
    def test_behind_smmuv3s(self, topology: Topology) -> None:
        """R7.9: under SMMUv3 a shared stream id makes the order pick who keeps it."""
        check(with_iommu(topology, kind=IommuKind.SMMU_V3))

    @pytest.mark.parametrize("name", sorted(HAND_MADE))
    def test_hand_made(self, name: str) -> None:
        check(HAND_MADE[name]())

    @settings(
        max_examples=max(EXAMPLES // 2, 5),
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(topologies(max_functions=5), st.sampled_from([IommuKind.VTD, IommuKind.SMMU_V3]))
    def test_hotplug_adds_nothing_to_probe_time(self, topology: Topology, kind: IommuKind) -> None:
        """For the strategies that group at driver probe, hot-remove and rescan add no
        outcome the probe orders do not have: a removed device is probed again after
        the rescan, in an order a plain probe order has too (docs: the reductions)."""
        topo = with_iommu(topology, kind=kind)
        for strategy in STRATEGIES:
            if strategy in ADD_TIME:
                continue
            plain, n = brute(topo, strategy, hotplug=False)
            more, m = brute(topo, strategy, hotplug=True)
            TALLY["orders"] += n + m
            assert more == plain, strategy

    @settings(
        max_examples=max(EXAMPLES // 2, 5),
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(topologies(max_functions=4))
    def test_any_device_add_order(self, topology: Topology) -> None:
        """``adds="any"``: every device-add order (a VF after its PF), grouped as it is
        added, replayed by ``canonical_groups(order=...)``."""
        topo = with_iommu(topology)
        full, by_pf = analysed_topology(topo)
        pf_of = {str(v): str(pf) for pf, vs in by_pf.items() for v in vs}
        names = [d.name for d in full.platform_devices]
        names += [str(f.address) for f in full.enumeration_order()]
        outcomes = set()
        for order in itertools.permutations(names):
            if any(n in pf_of and order.index(pf_of[n]) > order.index(n) for n in order):
                continue
            g = canonical_groups(full, order=list(order))
            outcomes.add(OrderOutcome(g.partition(), frozenset(g.ungrouped)))
            TALLY["orders"] += 1
        for strategy in ("device-link", "device-add", "canonical"):
            answer = order_dependence(topo, strategy, adds="any")
            assert (answer.verdict == "dependent") == (len(outcomes) > 1), strategy
            if answer.witness is not None:
                assert answer.witness.kind == "add-order"
                first, second = answer.witness.replay()
                assert first != second
                assert {first, second} <= outcomes

    @settings(
        max_examples=max(EXAMPLES // 2, 5),
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(topologies(max_functions=4))
    def test_iommu_driver_a_module(self, topology: Topology) -> None:
        """``iommu_builtin=False``: the registrations at every place among the probes."""
        topo = with_iommu(topology)
        full, by_pf = analysed_topology(topo)
        vfs = {str(pf): tuple(str(v) for v in vs) for pf, vs in by_pf.items()}
        space = OrderSpace(iommu_builtin=False)
        for strategy in ("legacy-probe-time", "device-link", "canonical"):
            outcomes = set()
            for events in probe_orders(full, vfs, parents_first=strategy == "device-link"):
                insts = instances(full)
                for at in itertools.product(range(len(events) + 1), repeat=len(insts)):
                    order = list(events)
                    for inst, i in sorted(zip(insts, at, strict=True), key=lambda t: -t[1]):
                        order.insert(i, OrderEvent("iommu", inst))
                    outcomes.add(_replay(full, by_pf, order, strategy, space))
                    TALLY["orders"] += 1
            # the orders above have no hot-remove and rescan (R5.7 makes those matter)
            answer = order_dependence(topo, strategy, iommu_builtin=False, hotplug=False)
            assert (answer.verdict == "dependent") == (len(outcomes) > 1), strategy

    @settings(
        max_examples=max(EXAMPLES // 2, 5),
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(topologies(max_functions=4), st.sampled_from([IommuKind.VTD, IommuKind.SMMU_V3]))
    def test_iommu_module_and_hot_plug(self, topology: Topology, kind: IommuKind) -> None:
        """``iommu_builtin=False`` with hot-plug, under the add-time strategies: the
        registration at every place among the probes and, on the reference probe order,
        a hot-remove of up to two devices at every place before or after it (R10.1: a
        device re-added before the module loads is walked after those that stayed)."""
        check_module(with_iommu(topology, kind=kind))

    @pytest.mark.parametrize(
        "make", [conventional_pair, endpoint_and_vf_share_a_stream_id], ids=lambda f: f.__name__
    )
    def test_iommu_module_and_hot_plug_clashes(self, make: Callable[[], Topology]) -> None:
        """R7.9 under a modular SMMUv3 driver: ``device-add`` depends on the order (the
        winner re-added before the module loads is walked last), ``canonical`` only
        where a VF is involved (it groups at ``device_add``, the IOMMU taken as ready)."""
        verdicts = check_module(make())
        assert verdicts["device-add"] == "dependent"

    def test_example_pieces(self) -> None:
        pieces = list(example_pieces())
        assert len(pieces) >= 8
        for piece in pieces:
            check(piece)


def check_module(topology: Topology) -> dict[str, str]:
    """Brute force for a modular IOMMU driver with hot-plug (add-time strategies);
    returns each strategy's verdict."""
    full, by_pf = analysed_topology(topology)
    assert len(full.functions) + len(full.platform_devices) <= 5
    vfs = {str(pf): tuple(str(v) for v in vs) for pf, vs in by_pf.items()}
    space = OrderSpace(iommu_builtin=False)
    insts = instances(full)
    TALLY["topologies"] += 1
    verdicts = {}
    for strategy in ADD_TIME:
        outcomes = set()
        for k, events in enumerate(probe_orders(full, vfs, parents_first=False)):
            for at in itertools.product(range(len(events) + 1), repeat=len(insts)):
                order = list(events)
                for inst, i in sorted(zip(insts, at, strict=True), key=lambda t: -t[1]):
                    order.insert(i, OrderEvent("iommu", inst))
                outcomes.add(_replay(full, by_pf, order, strategy, space))
                TALLY["orders"] += 1
                for more in hotplug_orders(full, vfs, order, 2, start=0) if k == 0 else ():
                    outcomes.add(_replay(full, by_pf, more, strategy, space))
                    TALLY["orders"] += 1
        answer = order_dependence(topology, strategy, iommu_builtin=False)
        assert (answer.verdict == "dependent") == (len(outcomes) > 1), (strategy, answer.reason)
        if answer.witness is not None:
            first, second = answer.witness.replay()
            assert first != second
        verdicts[strategy] = answer.verdict
    return verdicts


def _trimmed(piece: Topology) -> Topology:
    """``piece`` with only the IOMMU instances and ID mappings its devices use."""
    domains = {f.address.domain for f in piece.functions}
    mappings = [m for m in piece.id_mappings if m.domain in domains]
    used = {m.iommu for m in mappings} | {d.iommu for d in piece.platform_devices}
    return piece.replace(id_mappings=mappings, iommus=[i for i in piece.iommus if i.name in used])


def _cut(topology: Topology, members: list[PciFunction]) -> list[PciFunction]:
    """``members`` (in device order) without their last endpoints, down to 7 functions."""
    out = list(members)
    while len(out) > MAX_DEVICES:
        leaves = [f for f in out if not f.is_bridge]
        out.remove(leaves[-1])
    return out


def example_pieces() -> Iterator[Topology]:
    """The built-in examples cut into pieces of at most 7 devices.

    ``d05``: each PCI segment alone with its SMMU and ID mapping (segment
    ``000a`` with two VFs enabled on PF 0, as in the seed), and the three
    platform devices with segment 2. ``desktop``: each slot of the root bus
    with everything below it (the switch slot without its last endpoints).
    """
    d05 = examples.d05()
    for dom in sorted({f.address.domain for f in d05.functions}):
        fns = [f for f in d05.functions if f.address.domain == dom]
        piece = _trimmed(d05.replace(functions=fns, platform_devices=()))
        if dom == 0xA:
            piece, _ = piece.with_vfs(["000a:11:00.2", "000a:11:00.3"])
        yield piece
    yield _trimmed(d05.replace(functions=[f for f in d05.functions if f.address.domain == 2]))
    desktop = examples.desktop()
    slots: dict[int, list[PciFunction]] = {}
    for f in desktop.functions:
        if f.address.bus == 0:
            slots.setdefault(f.address.device, []).append(f)
    for fns in slots.values():
        members = list(fns)
        for f in fns:
            members += list(desktop.subtree(f))
        members.sort(key=lambda f: desktop.position(f.address))
        yield with_iommu(desktop.replace(functions=_cut(desktop, members)))
