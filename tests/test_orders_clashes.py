"""SMMUv3 stream-id clashes (R7.9) under the add-time strategies, decided from structure.

With the orders' ACPI boot a device asks for its stream ids when it is added
(R10.1), not when a driver binds it (R10.3), so under ``device-add`` and
``canonical`` the holder of a stream id can change only when the device it
beat in the reference order is added while every holder of its ids is absent
(docs: "Order dependence", the proofs, *Stream ids*). ``order_dependence``
reads that from the reference order's holders and replays one witness; it
used to replay one pair of orders per clash, which made the verdict
quadratic on machines with many clashes (issue 14, ``benchmarks/bench_orders.py
--shapes smmu``).

* The number of simulations a verdict makes is pinned: none when the clashes
  cannot flip, one pair for a witness, at most ``WITNESS_TRIES + 1`` pairs
  when no witness replays, whatever the number of clashes.
* On the benchmark's ``smmu`` shape, and on clash topologies, the verdict and
  the witness are those of the per-clash replays the structural test
  replaced (run here as they were written), except where those missed a
  flip: a VF beaten by a device that can be hot-removed before the VF's PF
  enables it, which brute force confirms (``test_orders_brute.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from iommugroups import (
    IdMapping,
    IommuInstance,
    IommuKind,
    PcieType,
    PlatformDevice,
    Topology,
)
from iommugroups._analysis import orders, orders_space
from iommugroups._analysis.orders import WITNESS_TRIES, OrderWitness, order_dependence
from iommugroups._analysis.orders_model import Clash, Structure
from iommugroups._analysis.orders_space import OrderEvent, OrderOutcome, reference_order
from iommugroups._boot.strategies.registry import STRATEGIES

from .helpers import bridge, ep
from .test_orders_brute import (
    _pf,
    _vf,
    brute,
    endpoint_and_vf_share_a_stream_id,
    vfs_of_two_pfs_share_stream_ids,
)

ADD_TIME = ("device-add", "canonical")
PROBE_TIME = tuple(s for s in STRATEGIES if s not in ADD_TIME)


@pytest.fixture
def replays(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every replay a verdict makes: ``simulate`` and ``canonical_groups`` (widened orders),
    the two entry points of :func:`~iommugroups._analysis.orders_space.replay`."""
    calls: list[str] = []
    simulate, canonical = orders_space.simulate, orders_space.canonical_groups

    def counting_simulate(*args: Any, **kwargs: Any) -> Any:
        calls.append("simulate")
        return simulate(*args, **kwargs)

    def counting_canonical(*args: Any, **kwargs: Any) -> Any:
        calls.append("canonical_groups")
        return canonical(*args, **kwargs)

    monkeypatch.setattr(orders_space, "simulate", counting_simulate)
    monkeypatch.setattr(orders_space, "canonical_groups", counting_canonical)
    return calls


def conventional_bridges(n: int, per: int = 4) -> Topology:
    """``n`` root ports, each above a PCIe-to-PCI bridge with ``per`` conventional
    devices, behind one SMMUv3: the devices behind one bridge all alias to its secondary
    bus (R3.4), one stream id (R3.8), so ``n * (per - 1)`` clashes."""
    fns = []
    for k in range(n):
        sec = 2 * k + 1
        fns.append(bridge(f"00:{k + 1:02x}.0", sec, sec + 1))
        fns.append(bridge(f"{sec:02x}:00.0", sec + 1, kind=PcieType.PCI_BRIDGE, device=0x000E))
        for d in range(1, per + 1):
            fns.append(
                ep(
                    f"{sec + 1:02x}:{d:02x}.0",
                    vendor=0x1274,
                    device=0x5000,
                    class_code=0x040100,
                    kind=None,
                )
            )
    return Topology(fns).replace(
        iommus=[IommuInstance("smmu0", IommuKind.SMMU_V3)],
        id_mappings=[IdMapping(0, 0, 0x10000, 0, "smmu0")],
    )


def pfs_sharing_stream_ids(n: int, *, platform: bool = False) -> Topology:
    """``n`` PFs, one per root port, with one VF each; every PF's bus is mapped onto the
    same stream ids (R3.8), so the PFs clash at boot and the VFs when enabled. With
    ``platform``, a platform device holds the VFs' stream id from the start (R7.9)."""
    fns = []
    for k in range(1, n + 1):
        pf = f"{k:02x}:00.0"
        fns += [bridge(f"00:{k:02x}.0", k), _pf(pf, 1), _vf(f"{k:02x}:00.1", pf)]
    maps = [IdMapping(0, 0, 0x100, 0, "smmu0")]
    maps += [IdMapping(0, k << 8, 0x100, 0x1000, "smmu0") for k in range(1, n + 1)]
    plat = [PlatformDevice("dma:00", iommu="smmu0", stream_ids=(0x1001,))] if platform else []
    return Topology(fns, platform_devices=plat).replace(
        iommus=[IommuInstance("smmu0", IommuKind.SMMU_V3)], id_mappings=maps
    )


def smmu_shape(n: int) -> Topology:
    """The benchmark suite's ``smmu`` shape (one SMMUv3 per PCI domain, IORT-like
    mappings, conventional devices behind PCIe-to-PCI bridges) at about ``n`` functions."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from shapes import build

    return build("smmu", n)


# --------------------------------------------------------------- the old code path
def per_clash_verdict(self: Any) -> dict[str, Any] | None:
    """``_Context.clash_verdict`` as it was before issue 14's last fix: under the add-time
    strategies, one witness built and replayed per clash (``old_clash_flip``) until one
    ends differently. Kept here, as written then, as the reference the structural test
    must agree with."""
    st = self.st
    clashes = [c for c in st.clashes if c.kind is IommuKind.SMMU_V3]
    if not clashes:
        return None
    ref_outcome = self.reference_outcome()
    if self.probe_like:
        for c in clashes:
            if c.first in st.down(c.second) or c.second in st.down(c.first):
                continue
            w = self.clash_swap(c)
            if w is not None:
                return dict(self.clash_answer(c, w))
    else:
        for c in clashes:
            w = old_clash_flip(self, c, ref_outcome)
            if w is not None:
                return dict(self.clash_answer(c, w))
    st.losers = {n for n in ref_outcome.ungrouped if n in st.translated}
    return None


def old_clash_flip(self: Any, c: Clash, ref: OrderOutcome) -> OrderWitness | None:
    """Canonical orders: the winner hot-removed while the loser is probed, or VFs of
    two PFs enabled in either order (as it was written)."""
    st = self.st
    pf_a, pf_b = st.pf_of.get(c.first), st.pf_of.get(c.second)
    if pf_a is not None and pf_b is not None and pf_a != pf_b:
        early, late = sorted((pf_a, pf_b), key=st.pos.__getitem__)
        w: OrderWitness | None = self.vf_order_witness(early, late)
        return w
    if not self.space.hotplug:
        return None
    if c.first in ref.ungrouped:
        winner, loser = c.second, c.first
    elif c.second in ref.ungrouped:
        winner, loser = c.first, c.second
    else:
        return None
    refs = list(reference_order(self.topo, self.vfs))
    probe_l = OrderEvent("probe", loser)
    if probe_l not in refs:
        return None
    enabled = set(st.vfs)
    remove, gone = self.removal([winner], enabled)
    if loser in gone:
        return None
    at = refs.index(probe_l)
    body = [ev for ev in refs[at + 1 :] if not (ev.target in gone and ev.kind != "iommu")]
    rescan, *back = self.comeback(gone, set())
    head = [*refs[:at], *remove]
    during = [*head, probe_l, rescan, *back, *body]
    after = [*head, rescan, probe_l, *back, *body]
    return self.make(after, during)  # type: ignore[no-any-return]


def old_answer(
    monkeypatch: pytest.MonkeyPatch, topo: Topology, strategy: str, **kwargs: Any
) -> orders.OrderDependence:
    with monkeypatch.context() as m:
        m.setattr(orders._Context, "clash_verdict", per_clash_verdict)
        return order_dependence(topo, strategy, **kwargs)


def same_answer(a: orders.OrderDependence, b: orders.OrderDependence) -> None:
    assert a.verdict == b.verdict, (a.reason, b.reason)
    if a.witness is None or b.witness is None:
        assert a.witness is b.witness is None
        assert (a.reason, a.rules) == (b.reason, b.rules)
        return
    assert a.witness.first == b.witness.first
    assert a.witness.second == b.witness.second
    assert a.witness.first_outcome == b.witness.first_outcome
    assert a.witness.second_outcome == b.witness.second_outcome


# --------------------------------------------------------------- the tests
class TestReplaysAreBounded:
    """The verdict replays a bounded number of orders, however many clashes there are."""

    @pytest.mark.parametrize("n", [2, 24])
    @pytest.mark.parametrize("strategy", ADD_TIME)
    def test_clashes_that_cannot_flip_replay_nothing(
        self, replays: list[str], strategy: str, n: int
    ) -> None:
        """R7.9, R10.1, R10.3: devices added at boot come back in device order after a
        hot-remove, so the device that lost keeps losing: independent, nothing replayed."""
        topo = conventional_bridges(n)
        assert len(Structure(topo, strategy, {}).clashes) == 3 * n
        answer = order_dependence(topo, strategy)
        assert answer.verdict == "independent", answer.reason
        assert replays == []

    @pytest.mark.parametrize("n", [2, 24])
    @pytest.mark.parametrize("strategy", PROBE_TIME)
    def test_probe_time_clashes_replay_one_witness(
        self, replays: list[str], strategy: str, n: int
    ) -> None:
        answer = order_dependence(conventional_bridges(n), strategy)
        assert answer.verdict == "dependent"
        assert "R7.9" in answer.rules
        assert replays == ["simulate", "simulate"]

    @pytest.mark.parametrize("n", [2, 24])
    def test_a_modular_iommu_replays_one_witness(self, replays: list[str], n: int) -> None:
        """``device-add`` with the IOMMU driver a module: a device bound before the
        module loads is left alone by its registration walk (R10.1: no fwspec, a
        driver), a dependence that needs no clash: found first, one pair replayed
        however many clashes there are."""
        answer = order_dependence(conventional_bridges(n), "device-add", iommu_builtin=False)
        assert answer.verdict == "dependent", answer.reason
        assert "R10.1" in answer.rules
        assert replays == ["simulate", "simulate"]
        w = answer.witness
        assert w is not None
        assert w.first_outcome != w.second_outcome

    @pytest.mark.parametrize("n", [2, 20])
    @pytest.mark.parametrize("strategy", ADD_TIME)
    def test_vfs_of_many_pfs(self, replays: list[str], strategy: str, n: int) -> None:
        """Every PF's VF clashes with every other's: the first flip's witness is the one
        replayed; held by a platform device from the start, none can flip."""
        answer = order_dependence(pfs_sharing_stream_ids(n), strategy)
        assert answer.verdict == "dependent"
        assert replays == ["simulate", "simulate"]
        replays.clear()
        blocked = order_dependence(pfs_sharing_stream_ids(n, platform=True), strategy)
        assert blocked.verdict == "independent", blocked.reason
        assert replays == []

    def test_no_witness_is_unknown_after_a_bounded_number_of_tries(
        self, replays: list[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Fail closed: when no flip's witness replays, the verdict is unknown, after at
        most ``WITNESS_TRIES + 1`` pairs of replays."""
        make = orders._Context.make

        def ends_alike(self: Any, first: Any, second: Any) -> None:
            make(self, first, second)

        monkeypatch.setattr(orders._Context, "make", ends_alike)
        answer = order_dependence(pfs_sharing_stream_ids(20), "canonical")
        assert answer.verdict == "unknown"
        assert "no witness could be replayed" in answer.reason
        assert len(replays) == 2 * (WITNESS_TRIES + 1)


class TestSameAsThePerClashReplays:
    """The verdict and witness of the per-clash replays, computed by running them."""

    @pytest.mark.parametrize("hotplug", [True, False])
    @pytest.mark.parametrize("strategy", ADD_TIME)
    def test_the_smmu_shape(
        self, monkeypatch: pytest.MonkeyPatch, replays: list[str], strategy: str, hotplug: bool
    ) -> None:
        topo = smmu_shape(600)
        clashes = Structure(topo, strategy, {}).clashes
        assert len(clashes) >= 4
        new = order_dependence(topo, strategy, hotplug=hotplug)
        assert replays == []
        old = old_answer(monkeypatch, topo, strategy, hotplug=hotplug)
        # the per-clash replays: one pair per clash (with hot-plug), none ending otherwise
        assert len(replays) == (2 * len(clashes) if hotplug else 0)
        same_answer(new, old)
        assert new.verdict == "independent"

    @pytest.mark.parametrize(
        "make",
        [
            lambda: conventional_bridges(3),
            vfs_of_two_pfs_share_stream_ids,
            lambda: pfs_sharing_stream_ids(5),
            lambda: pfs_sharing_stream_ids(5, platform=True),
        ],
        ids=["conventional", "two-pfs", "five-pfs", "five-pfs-platform"],
    )
    @pytest.mark.parametrize("strategy", [*ADD_TIME, "legacy-probe-time"])
    def test_clash_topologies(
        self, monkeypatch: pytest.MonkeyPatch, make: Callable[[], Topology], strategy: str
    ) -> None:
        topo = make()
        same_answer(order_dependence(topo, strategy), old_answer(monkeypatch, topo, strategy))

    @pytest.mark.parametrize("strategy", ADD_TIME)
    def test_the_flip_the_per_clash_replays_missed(
        self, monkeypatch: pytest.MonkeyPatch, strategy: str
    ) -> None:
        """The endpoint that keeps the stream id at boot can be hot-removed before the PF
        enables its VF and come back after: the VF keeps it then (R7.9, R10.3). Brute
        force finds the two outcomes; the per-clash replays (the loser *probed* while the
        winner is away, which asks for nothing, R10.3) did not."""
        topo = endpoint_and_vf_share_a_stream_id()
        outcomes, _n = brute(topo, strategy)
        assert len(outcomes) == 2
        assert old_answer(monkeypatch, topo, strategy).verdict == "independent"
        answer = order_dependence(topo, strategy)
        assert answer.verdict == "dependent"
        assert "R10.3" in answer.rules
        w = answer.witness
        assert w is not None
        assert w.differences == 2
        i = w.differ_at
        assert {str(w.first[i]), str(w.first[i + 1])} == {"rescan", "sriov 0000:01:00.0"}
        assert w.first[i : i + 2] == w.second[i : i + 2][::-1]
        assert {w.first_outcome, w.second_outcome} == outcomes
        assert w.first_outcome.ungrouped == {"0000:01:02.0"}
        assert w.second_outcome.ungrouped == {"0000:00:02.0"}
        assert order_dependence(topo, strategy, hotplug=False).verdict == "independent"


def test_replay_counter_sees_replays(replays: list[str]) -> None:
    """The fixture counts what ``replay`` runs (so a count of zero means something)."""
    topo = conventional_bridges(1)
    orders_space.replay(topo, reference_order(topo, {}), {}, "canonical")
    orders_space.replay(topo, [OrderEvent("add", str(f.address)) for f in topo.functions], {}, "x")
    assert replays == ["simulate", "canonical_groups"]
