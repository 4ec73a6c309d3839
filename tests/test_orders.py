"""``order_dependence``: the verdicts the issue asks for, against the seed and the simulator.

* On the seed's D05 (``tests/data/seed``, docs/tutorial-seed.md) the arm64
  probe-time grouping of v5.3-v6.14 (``legacy-probe-time``) depends on the
  order, with a witness whose second order ends in the seed's split: PF 0 and
  PF 1 alone, the root port with the VFs (R4.5, R4.3); ``device-add`` (v6.15,
  R10.1) and ``canonical`` do not, under the orders the kernel can produce.
* Every witness is two scenarios that :func:`~iommugroups.simulate` replays,
  from a scenario file too, to different groups, and a probe-order witness
  differs in two adjacent steps.
* What is not decided says so (fail closed): SMMUv2 stream sharing (R1.7),
  a strategy with no structural model, unknown ACS facts that change the
  answer; kernel versions are not modelled yet.

The agreement with brute force over every order is ``test_orders_brute.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from iommugroups import (
    IdMapping,
    IommuInstance,
    IommuKind,
    LogLine,
    PlatformDevice,
    Topology,
    dumps_scenario,
    examples,
    loads_scenario_file,
    register_strategy,
    simulate,
)
from iommugroups._analysis.orders import VERDICTS, OrderDependence, order_dependence
from iommugroups._analysis.orders_space import OrderEvent, OrdersError, OrderSpace
from iommugroups._boot.strategies.legacy_probe_time import LegacyProbeTime
from iommugroups._boot.strategies.registry import STRATEGIES
from iommugroups.testing import with_iommu

from .helpers import bridge, ep, one_way_vf

SEED = Path(__file__).parent / "data" / "seed" / "000_995015e96200a173.txt"
_LOG_LINE = re.compile(r"^\[\s*\d+\.\d+\] (?P<line>\S+ \S+: Adding to iommu group \d+)$")
CARD = ("000a:10:00.0", "000a:11:00.0", "000a:11:00.1", "000a:11:00.2", "000a:11:00.3")


def seed_card_groups() -> frozenset[frozenset[str]]:
    """How the seed's first log (mlx5 built in) groups the port, the PFs and the VFs."""
    first = SEED.read_text(encoding="utf-8").split("^ permalink raw reply", 1)[0]
    lines = [m["line"] for raw in first.splitlines() if (m := _LOG_LINE.match(raw.rstrip()))]
    groups: dict[int, set[str]] = {}
    for line in lines[:15]:
        parsed = LogLine.parse(line)
        assert parsed is not None
        if parsed.device in CARD:
            groups.setdefault(parsed.group, set()).add(parsed.device)
    return frozenset(frozenset(g) for g in groups.values())


def card(groups: frozenset[frozenset[str]]) -> frozenset[frozenset[str]]:
    """The groups restricted to the card below root port ``000a:10:00.0``."""
    kept = (frozenset(d for d in g if d in CARD) for g in groups)
    return frozenset(g for g in kept if g)


class TestSeed:
    """§11: the D05 with mlx5 built in split the card; the v6.15 fix does not."""

    def test_the_seed_log_splits_the_card(self) -> None:
        assert seed_card_groups() == {
            frozenset({"000a:11:00.0"}),
            frozenset({"000a:11:00.1"}),
            frozenset({"000a:10:00.0", "000a:11:00.2", "000a:11:00.3"}),
        }

    def test_legacy_probe_time_is_dependent_with_the_seeds_split(self) -> None:
        """R4.5, R4.3: PF 1 probed before its port starts a group of its own; with
        PF 0 probed first too, the second order ends exactly as the seed's log."""
        answer = order_dependence(
            examples.d05(),
            "legacy-probe-time",
            vfs={"000a:11:00.0": 2},
            focus=["000a:11:00.1"],
        )
        assert answer.verdict == "dependent"
        w = answer.witness
        assert w is not None
        assert w.differences == 2  # one swap of two adjacent probes
        i = w.differ_at
        assert {str(w.first[i]), str(w.first[i + 1])} == {
            "probe 000a:10:00.0",
            "probe 000a:11:00.1",
        }
        assert w.first[i : i + 2] == w.second[i : i + 2][::-1]
        assert card(w.second_outcome.groups) == seed_card_groups()
        assert card(w.first_outcome.groups) != seed_card_groups()
        assert "R4.2" in answer.rules

    def test_the_witness_replays_from_scenario_files(self) -> None:
        answer = order_dependence(
            examples.d05(), "legacy-probe-time", vfs={"000a:11:00.0": 2}, focus=["000a:11:00.1"]
        )
        w = answer.witness
        assert w is not None
        ends = []
        for sf in w.scenarios():
            text = dumps_scenario(sf.topology, sf.scenario, drivers=sf.drivers)
            back = loads_scenario_file(text, "json")
            result = simulate(
                back.topology, back.scenario, "legacy-probe-time", drivers=back.drivers
            )
            assert all(f.state == "bound" for f in result.fates.values())
            ends.append(result.grouping.partition())
        assert ends[0] != ends[1]
        assert card(ends[1]) == seed_card_groups()

    @pytest.mark.parametrize("strategy", ["device-add", "canonical"])
    @pytest.mark.parametrize("vfs", [None, {"000a:11:00.0": 2}])
    def test_the_fix_is_independent(self, strategy: str, vfs: dict[str, int] | None) -> None:
        """R10.1: grouped at device_add or in the registration walk, parents first;
        hot-remove, rescan and VFs enabled at any time included."""
        answer = order_dependence(examples.d05(), strategy, vfs=vfs)
        assert answer.verdict == "independent", answer.reason
        assert answer.witness is None
        assert "R10.1" in answer.rules
        assert answer.space == OrderSpace()

    def test_the_remedies(self) -> None:
        """Walk-down and device links fix the D05 (no partner of a lone port; every
        device after its port), bus-replay does not (R7.7)."""
        d05 = examples.d05()
        assert order_dependence(d05, "walk-down").verdict == "independent"
        assert order_dependence(d05, "device-link").verdict == "independent"
        assert order_dependence(d05, "bus-replay").verdict == "dependent"

    def test_widened_add_orders_make_the_fix_dependent(self) -> None:
        """Were a device added before its bridge, device_add grouping would split it
        as the seed did; no PCI enumeration does that, so the witness is an add order."""
        answer = order_dependence(examples.d05(), "device-add", adds="any")
        assert answer.verdict == "dependent"
        w = answer.witness
        assert w is not None
        assert w.kind == "add-order"
        assert all(e.kind == "add" for e in w.first)
        a, b = w.replay()
        assert a != b
        with pytest.raises(OrdersError, match="no scenario"):
            w.scenarios()


def one_way_tie() -> Topology:
    """A Wangxun VF lands in the slot of a multifunction endpoint without ACS (R5.2,
    R5.6): the endpoint looks at the VF, the VF at nobody."""
    return with_iommu(one_way_vf())


class TestShapes:
    """The shapes of tests/test_strategies_properties.py, now decided for all orders."""

    def test_seed_shape_without_acs_and_with(self) -> None:
        bare = with_iommu(Topology([bridge("00:00.0", 1), ep("01:00.0")]))
        assert order_dependence(bare, "legacy-probe-time").verdict == "dependent"
        from .helpers import ISOLATING

        isolated = with_iommu(Topology([bridge("00:00.0", 1, acs=ISOLATING), ep("01:00.0")]))
        answer = order_dependence(isolated, "legacy-probe-time")
        assert answer.verdict == "independent", answer.reason

    def test_multifunction_root_ports_break_walk_down(self) -> None:
        """§12 vector 3: the downward look from one port does not see the other's child."""
        topo = with_iommu(
            Topology(
                [
                    bridge("00:1c.0", 1, mf=True),
                    bridge("00:1c.1", 2, mf=True),
                    ep("01:00.0"),
                    ep("02:00.0"),
                ]
            )
        )
        answer = order_dependence(topo, "walk-down")
        assert answer.verdict == "dependent"
        assert answer.witness is not None
        assert answer.witness.differences == 2
        assert order_dependence(topo, "device-link").verdict == "independent"

    def test_a_one_way_tie_and_hot_plug(self) -> None:
        """Canonical grouping is order-independent at boot (the VF comes last), but the
        endpoint hot-removed and rescanned finds the VF's group (R5.2): dependent,
        and not without hot-plug."""
        topo = one_way_tie()
        answer = order_dependence(topo, "canonical")
        assert answer.verdict == "dependent"
        w = answer.witness
        assert w is not None
        added = [str(e) for e in w.second[w.differ_at :]]
        assert added == ["remove 0000:00:01.0", "rescan", "probe 0000:00:01.0"]
        assert not w.first_outcome.together("0000:00:01.0", "0000:00:01.1")
        assert w.second_outcome.together("0000:00:01.0", "0000:00:01.1")
        assert order_dependence(topo, "canonical", hotplug=False).verdict == "independent"

    def test_iommu_instances_registering_in_another_order(self) -> None:
        """R4.6: pci_device_group does not look at instances; a root port on one
        SMMU and its bus on another are grouped in registration order."""
        t = Topology([bridge("00:01.0", 1), ep("01:00.0")])
        t = t.replace(
            iommus=[
                IommuInstance("smmu0", IommuKind.SMMU_V3),
                IommuInstance("smmu1", IommuKind.SMMU_V3),
            ],
            id_mappings=[
                IdMapping(0, 0x0000, 0x100, 0, "smmu0"),
                IdMapping(0, 0x100, 0x100, 0x100, "smmu1"),
            ],
        )
        answer = order_dependence(t, "device-add")
        assert answer.verdict == "dependent"
        w = answer.witness
        assert w is not None
        assert w.differences == 2
        assert {e.kind for e in w.first[w.differ_at : w.differ_at + 2]} == {"iommu"}
        assert order_dependence(t, "canonical").verdict == "independent"

    def test_a_stream_id_clash(self) -> None:
        """R7.9: two conventional devices behind a PCIe-to-PCI bridge share its
        alias stream id; under probe-time grouping the first probed keeps it."""
        from iommugroups import PcieType

        topo = with_iommu(
            Topology(
                [
                    bridge("00:01.0", 1, kind=PcieType.PCI_BRIDGE, device=0x000E),
                    ep("01:01.0", vendor=0x1274, device=0x5000, class_code=0x040100, kind=None),
                    ep("01:02.0", vendor=0x1274, device=0x5000, class_code=0x040100, kind=None),
                ]
            ),
            kind=IommuKind.SMMU_V3,
        )
        answer = order_dependence(topo, "legacy-probe-time")
        assert answer.verdict == "dependent"
        assert "R7.9" in answer.rules
        w = answer.witness
        assert w is not None
        assert w.first_outcome.ungrouped != w.second_outcome.ungrouped

    def test_iommu_driver_as_a_module(self) -> None:
        """R7.4: probed before the module loads, a device runs without an IOMMU."""
        topo = with_iommu(Topology([ep("00:01.0")]))
        answer = order_dependence(topo, "legacy-probe-time", iommu_builtin=False)
        assert answer.verdict == "dependent"
        assert answer.witness is not None
        assert answer.witness.second_outcome.ungrouped == {"0000:00:01.0"}
        assert order_dependence(topo, "legacy-probe-time").verdict == "independent"
        # R10.1: bound before the module loads, the registration walk leaves it alone
        added = order_dependence(topo, "device-add", iommu_builtin=False)
        assert added.verdict == "dependent"
        assert "R10.1" in added.rules
        assert added.witness is not None
        assert added.witness.second_outcome.ungrouped == {"0000:00:01.0"}
        assert added.witness.first_outcome.ungrouped == set()
        assert order_dependence(topo, "canonical", iommu_builtin=False).verdict == "independent"


class TestFailsClosed:
    """A question outside the decided fragment is answered *unknown*, with why."""

    def test_smmuv2_stream_sharing(self) -> None:
        topo = Topology(
            [ep("00:01.0")],
            platform_devices=[
                PlatformDevice("A:00", iommu="smmu", stream_ids=(1,)),
                PlatformDevice("B:00", iommu="smmu", stream_ids=(1,)),
            ],
            iommus=[IommuInstance("smmu", IommuKind.SMMU_V2)],
            id_mappings=[IdMapping(0, 0, 0x10000, 0x100, "smmu")],
        )
        answer = order_dependence(topo, "canonical")
        assert answer.verdict == "unknown"
        assert "R1.7" in answer.reason

    def test_unknown_acs_that_decides(self) -> None:
        """R2.3: an unreadable ACS capability on the port is absent to the model, but
        isolating would make every order converge: the answer is unknown."""
        port = attrs.evolve(bridge("00:00.0", 1), unknown=frozenset({"acs"}))
        topo = with_iommu(Topology([port, ep("01:00.0")]))
        answer = order_dependence(topo, "legacy-probe-time")
        assert answer.verdict == "unknown"
        assert "0000:00:00.0" in answer.reason
        assert order_dependence(topo, "canonical").verdict == "independent"

    def test_a_strategy_without_a_model(self) -> None:
        class Mine(LegacyProbeTime):
            name = "mine"

        register_strategy(Mine())
        try:
            answer = order_dependence(examples.desktop(), "mine")
        finally:
            del STRATEGIES["mine"]
        assert answer.verdict == "unknown"
        assert "no structural model" in answer.reason

    def test_kernel_versions_are_not_modelled_yet(self) -> None:
        topo = examples.desktop()
        assert order_dependence(topo, "canonical", kernel="current").kernel == "current"
        assert order_dependence(topo, "canonical", None).kernel is None
        with pytest.raises(OrdersError, match="not modelled yet"):
            order_dependence(topo, "canonical", kernel="6.1")

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"strategy": "nope"}, "unknown strategy"),
            ({"adds": "some"}, "adds must be"),
            ({"vfs": {"00:02.0": 2}}, "not an SR-IOV"),
            ({"vfs": {"99:00.0": 2}}, "no device"),
        ],
    )
    def test_bad_questions(self, kwargs: dict[str, object], message: str) -> None:
        with pytest.raises(OrdersError, match=message):
            order_dependence(examples.desktop(), **kwargs)  # type: ignore[arg-type]


class TestResult:
    def test_json_document(self) -> None:
        answer = order_dependence(examples.d05(), "legacy-probe-time")
        doc = answer.to_json()
        assert doc["schema"] == "iommugroups.orders/1"
        assert doc["verdict"] in VERDICTS
        w = doc["witness"]
        assert w["kind"] == "scenario"
        assert w["first"][w["differ_at"]] != w["second"][w["differ_at"]]
        assert w["differences"] == 2
        assert isinstance(answer, OrderDependence)
        assert answer.dependent

    def test_events_read_as_the_docs_write_them(self) -> None:
        assert str(OrderEvent("probe", "0000:01:00.0")) == "probe 0000:01:00.0"
        assert str(OrderEvent("rescan")) == "rescan"

    def test_every_strategy_answers_on_the_examples(self) -> None:
        for name in ("desktop", "d05"):
            topo = examples.get(name)
            for strategy in STRATEGIES:
                answer = order_dependence(topo, strategy)
                assert answer.verdict in ("independent", "dependent"), answer.reason
                if answer.witness is not None:
                    a, b = answer.witness.replay()
                    assert a != b
