"""``check``: the groups a kernel made against the canonical prediction.

The seed case first: the two D05 logs of John Garry's first message
(``tests/data/seed``), checked against :func:`iommugroups.examples.d05`. The
first log (mlx5 built in) has the isolation hole: the port and the two PFs,
which the rules put in one group (R4.2), are in three groups; replaying its
probe order reproduces it under ``legacy-probe-time`` and not under the
v6.15 ``device-add``. The second log (mlx5 as a module) has none.

Then the ground truth: every x86 capture of the oracle (a real 6.1 kernel,
which groups canonically) checks ok, and every arm64 capture without
hot-remove is reproduced by ``legacy-probe-time``. Then the definitions of
``unknown`` (missing ACS/PCIe facts, missing devices) and ``merged``, the
JSON schema and the text renderer, and properties on random topologies.

Last, the size of a report (issue 13): a device's entry names its groups and
counts, never their members, so ``check --json`` and the text grow linearly
with the devices of one large group (one PF whose VFs the kernel put each in
a group of its own), and each device's facts, read back from the document,
are the set computations of the module docstring over the groupings.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iommugroups import (
    Acs,
    LogLine,
    PcieType,
    Topology,
    canonical_groups,
    dumps_topology,
    examples,
    load,
    read,
)
from iommugroups._analysis.check import (
    CHECK_SCHEMA,
    REASON_KINDS,
    CheckReport,
    ShortLists,
    Verdict,
    check,
    isolating_topology,
)
from iommugroups._analysis.reproduce import replay_scenario
from iommugroups._cli.app import main
from iommugroups._io.arm64_capture import read_capture
from iommugroups._kernel.groups import Grouping
from iommugroups._kernel.reading import Unknown
from iommugroups._render.check import render_check, verdict_marks
from iommugroups.testing import FULL_ACS, topologies

from .helpers import ISOLATING, bridge, ep

DATA = Path(__file__).parent / "data"
SEED = DATA / "seed" / "000_995015e96200a173.txt"
X86 = sorted((DATA / "oracle" / "captures").glob("*.json")) + sorted(
    (DATA / "oracle" / "designed").glob("*.json")
)
ARM64 = sorted((DATA / "oracle" / "arm64").glob("*.json"))

PORT, PF0, PF1 = "000a:10:00.0", "000a:11:00.0", "000a:11:00.1"
VF0, VF1 = "000a:11:00.2", "000a:11:00.3"


# ------------------------------------------------------------------- helpers
def seed_logs() -> list[tuple[LogLine, ...]]:
    """The ``Adding to iommu group`` blocks of the seed's first message, in order.

    Quoted copies in the replies start with ``>`` and do not parse.
    """
    blocks: list[tuple[LogLine, ...]] = []
    current: list[LogLine] = []
    for text in SEED.read_text().splitlines():
        line = LogLine.parse(text)
        if line is not None:
            current.append(line)
        elif current:
            blocks.append(tuple(current))
            current = []
    return blocks[:2]


def observed_from(lines: Iterable[LogLine], source: str = "dmesg") -> Grouping:
    """The groups a log leaves (adds and removes applied), with the log."""
    log = tuple(lines)
    member_of: dict[str, int] = {}
    for line in log:
        if line.action == "add":
            member_of[line.device] = line.group
        else:
            member_of.pop(line.device, None)
    groups: dict[int, list[str]] = {}
    for dev, g in member_of.items():
        groups.setdefault(g, []).append(dev)
    return Grouping({g: tuple(ds) for g, ds in groups.items()}, log=log, source=source)


def observed(groups: Mapping[int, Sequence[str]]) -> Grouping:
    return Grouping({g: tuple(ds) for g, ds in groups.items()}, source="listing")


def seed_shaped(*, port_acs: Acs | None = None, pf_acs: Acs | None = None) -> Topology:
    """The seed's shape: a root port on a root bus, a two-function device below."""
    return Topology(
        [
            bridge(PORT, 0x11, 0x12, vendor=0x19E5, device=0x1610, acs=port_acs),
            ep(PF0, vendor=0x15B3, device=0x1017, class_code=0x020000, mf=True, acs=pf_acs),
            ep(PF1, vendor=0x15B3, device=0x1017, class_code=0x020000, mf=True, acs=pf_acs),
        ]
    )


def unknown_acs(topology: Topology, *names: str) -> Topology:
    """``topology`` where the ACS capability of ``names`` could not be read."""
    return topology.replace(
        functions=[
            attrs.evolve(f, acs=None, unknown={"acs"}) if str(f.address) in names else f
            for f in topology.functions
        ]
    )


# ------------------------------------------------------------------ the seed
def test_the_seed_has_two_logs_of_fifteen_lines() -> None:
    first, second = seed_logs()
    assert len(first) == len(second) == 15
    assert str(first[2]) == f"mlx5_core {PF0}: Adding to iommu group 2"
    assert str(second[-1]) == f"mlx5_core {VF1}: Adding to iommu group 6"


@pytest.fixture(scope="module")
def first_log() -> CheckReport:
    return check(examples.d05(), observed_from(seed_logs()[0]))


@pytest.fixture(scope="module")
def second_log() -> CheckReport:
    return check(examples.d05(), observed_from(seed_logs()[1]))


@pytest.fixture(scope="module")
def merged() -> CheckReport:
    """The desktop's canonical groups, with the ACS-isolated port 00:01.0 and
    the GPU below it observed in one group."""
    topo = examples.desktop()
    groups = {gid: list(ds) for gid, ds in canonical_groups(topo).groups.items()}
    port = canonical_groups(topo).group_of("00:01.0")
    gpu = canonical_groups(topo).group_of("01:00.0")
    assert port is not None
    assert gpu is not None
    assert port != gpu
    groups[port] += groups.pop(gpu)
    return check(topo, observed(groups))


class TestD05FirstLog:
    """mlx5 built in: the PFs were grouped before their port (R4.5), the bug."""

    def test_the_split_is_found(self, first_log: CheckReport) -> None:
        assert first_log.has_split
        assert first_log.verdict is Verdict.SPLIT
        (split,) = first_log.splits
        assert {PORT, PF0, PF1} <= set(split.devices)
        parts = dict(split.parts)
        assert parts[2] == (PF0,)
        assert parts[3] == (PF1,)
        assert parts[8] == (PORT, VF0, VF1)
        for dev in (PORT, PF0, PF1, VF0, VF1):
            assert first_log.device(dev).verdict is Verdict.SPLIT

    def test_evidence_names_the_rules(self, first_log: CheckReport) -> None:
        pf0 = first_log.device(PF0)
        assert pf0.canonical_group == first_log.canonical.group_of(PORT)
        assert pf0.observed_group == 2
        assert pf0.must_share == (PORT, PF0, PF1, VF0, VF1)  # itself included
        assert set(pf0.split_from) == {PORT, PF1, VF0, VF1}
        # R4.2: the PF's walk up finds the non-isolated root port's group
        (step,) = [s for s in pf0.rules if s.rule == "R4.2"]
        assert str(step.device) == PORT
        assert "not ACS-isolated" in step.text
        assert "isolation hole" in pf0.reasons[0]

    def test_the_vfs_are_placed_from_the_pf_sriov_capability(self, first_log: CheckReport) -> None:
        assert first_log.device(VF0).canonical_group == first_log.canonical.group_of(PORT)
        assert any("SR-IOV VFs observed" in n for n in first_log.notes)

    def test_the_rest_of_the_board(self, first_log: CheckReport) -> None:
        for dev in ("0002:f8:00.0", "0002:f9:00.0", "0002:f9:00.1", "HISI0162:01"):
            assert first_log.device(dev).verdict is Verdict.OK
        # segments 6 and 7 have no SMMU: no group predicted, none observed
        assert first_log.device("0007:91:00.0").verdict is Verdict.OK
        # driverless: canonical would group it, the arm64 kernel of the seed did not
        parport = first_log.device("0002:f9:00.2")
        assert parport.verdict is Verdict.UNKNOWN
        assert "R7.8" in parport.reasons[0]
        assert not first_log.merges

    def test_reproduced_by_probe_time_grouping_only(self, first_log: CheckReport) -> None:
        assert "legacy-probe-time" in first_log.reproduced_by
        assert "device-add" not in first_log.reproduced_by
        assert "canonical" not in first_log.reproduced_by
        assert "device-link" not in first_log.reproduced_by  # John's fix would have helped
        assert {r.strategy for r in first_log.reproduction} == {
            "legacy-probe-time",
            "walk-down",
            "device-link",
            "bus-replay",
            "device-add",
            "canonical",
        }

    def test_the_replayed_scenario(self, first_log: CheckReport) -> None:
        assert first_log.replay is not None
        lines = [str(a) for a in first_log.replay.scenario.actions]
        assert lines.index(f"ACTION bind {PF0} mlx5_core") < lines.index(
            f"ACTION bind {PORT} pcieport"
        )
        assert lines.index(f"ACTION bind {PORT} pcieport") < lines.index(f"ACTION sriov {PF0} 2")
        assert lines[-1] == f"ACTION bind {VF1} mlx5_core"
        assert "ACTION insmod hisi_sas_v2_hw" in lines
        assert not first_log.replay.left_out


class TestD05SecondLog:
    """mlx5 as a module, loaded after boot: the ports were grouped first."""

    def test_no_split(self, second_log: CheckReport) -> None:
        assert not second_log.has_split
        assert not second_log.splits
        assert not second_log.merges
        for dev in (PORT, PF0, PF1, VF0, VF1):
            assert second_log.device(dev).verdict is Verdict.OK

    def test_only_the_driverless_devices_are_unknown(self, second_log: CheckReport) -> None:
        assert {d.device for d in second_log.unknown} == {"0002:f9:00.2", "000c:21:00.0"}
        assert second_log.verdict is Verdict.UNKNOWN

    def test_reproduction(self, second_log: CheckReport) -> None:
        assert "legacy-probe-time" in second_log.reproduced_by
        assert "device-link" in second_log.reproduced_by
        # v6.15 would have grouped the driverless devices too
        assert "device-add" not in second_log.reproduced_by
        (dev_add,) = [r for r in second_log.reproduction if r.strategy == "device-add"]
        assert "0002:f9:00.2" in dev_add.detail


def test_a_seed_shaped_topology_without_the_vfs() -> None:
    report = check(seed_shaped(), observed_from(seed_logs()[0]))
    assert report.has_split
    assert {d.device for d in report.devices if d.verdict is Verdict.SPLIT} == {PORT, PF0, PF1}
    # the VF the topology does not list has no verdict: it is reported as such
    (vf,) = [n for n in report.not_listed if n.device == VF0]
    assert "does not list it" in vf.why
    with pytest.raises(KeyError):
        report.device(VF0)
    assert "legacy-probe-time" in report.reproduced_by
    assert "device-add" not in report.reproduced_by


# ------------------------------------------------------------- ground truth
def _capture_observed(path: Path) -> Grouping:
    data = json.loads(path.read_text())
    log = tuple(x for line in data["dmesg"] if (x := LogLine.parse(line)))
    groups = {int(k): tuple(v) for k, v in data["groups"].items()}
    return Grouping(groups, log=log, source="capture")


@pytest.mark.parametrize("capture", X86, ids=lambda p: p.stem)
def test_x86_captures_check_ok(capture: Path) -> None:
    """A real 6.1 kernel on q35 with VT-d groups canonically: every device ok."""
    report = check(load(capture.with_suffix(".lspci")), _capture_observed(capture))
    assert report.verdict is Verdict.OK, render_check(report)
    assert not report.splits
    assert not report.merges
    # the log says "pci ...": grouped at device add, not at driver probe
    assert "device-add" in report.reproduced_by
    assert "legacy-probe-time" not in report.reproduced_by


def test_there_are_captures() -> None:
    assert len(X86) >= 30
    assert len(ARM64) >= 30


@pytest.mark.parametrize("capture", ARM64, ids=lambda p: p.stem)
def test_arm64_captures_are_reproduced_by_legacy_probe_time(capture: Path) -> None:
    """Linux 6.1 arm64 groups at driver probe; the replay of its log (binds,
    hot-removes and rescans included) finds that."""
    cap = read_capture(json.loads(capture.read_text()), str(capture))
    log = tuple(x for line in cap.dmesg if (x := LogLine.parse(line)))
    report = check(cap.topology, Grouping(cap.groups, log=log, source="capture"))
    assert not report.merges
    assert "legacy-probe-time" in report.reproduced_by
    if report.has_split:
        assert "canonical" not in report.reproduced_by
        assert "device-add" not in report.reproduced_by


# ------------------------------------------------------------------ unknown
class TestUnknownAcs:
    """A verdict that depends on an unknown ACS capability is ``unknown``."""

    def test_the_port_decides_everything(self) -> None:
        # PFs isolated by their own ACS: only the port's ACS matters
        topo = unknown_acs(seed_shaped(pf_acs=ISOLATING), PORT)
        seen = observed({8: [PORT], 2: [PF0], 3: [PF1]})
        report = check(topo, seen)
        assert not report.has_split
        for dev in (PORT, PF0, PF1):
            d = report.device(dev)
            assert d.verdict is Verdict.UNKNOWN, d
            assert d.depends_on == (PORT,)
        pf0 = report.device(PF0)
        assert pf0.must_share == (PF0,)
        assert set(pf0.may_share) == {PORT, PF1}
        assert f"facts not known of {PORT}" in pf0.reasons[0]

    def test_declared_absent_the_split_is_flagged(self) -> None:
        # "This platform does not support ACS": no capability, known
        report = check(seed_shaped(pf_acs=ISOLATING), observed({8: [PORT], 2: [PF0], 3: [PF1]}))
        assert report.has_split
        assert report.device(PF0).verdict is Verdict.SPLIT
        assert report.device(PF0).depends_on == ()

    def test_declared_isolating_the_groups_are_ok(self) -> None:
        topo = seed_shaped(port_acs=ISOLATING, pf_acs=ISOLATING)
        report = check(topo, observed({8: [PORT], 2: [PF0], 3: [PF1]}))
        assert report.verdict is Verdict.OK

    def test_an_unknown_entry_counts_like_the_function_field(self) -> None:
        seen = observed({8: [PORT], 2: [PF0], 3: [PF1]})
        by_field = check(unknown_acs(seed_shaped(pf_acs=ISOLATING), PORT), seen)
        by_entry = check(
            seed_shaped(pf_acs=ISOLATING),
            seen,
            unknowns=[Unknown(PORT, "acs", "config space not readable")],
        )
        assert [d.verdict for d in by_entry.devices] == [d.verdict for d in by_field.devices]
        assert by_entry.device(PF0).depends_on == (PORT,)

    def test_a_whole_input_unknown_covers_every_function(self) -> None:
        report = check(
            seed_shaped(pf_acs=ISOLATING),
            observed({8: [PORT], 2: [PF0], 3: [PF1]}),
            unknowns=[Unknown("", "acs", "lspci run as a user")],
        )
        assert not report.has_split
        assert report.device(PORT).verdict is Verdict.UNKNOWN

    def test_function_aliases_do_not_depend_on_the_port(self) -> None:
        # R5.2: functions of one device without ACS share whatever the port has
        topo = unknown_acs(seed_shaped(), PORT)
        report = check(topo, observed({8: [PORT], 2: [PF0], 3: [PF1]}))
        assert report.has_split
        assert report.device(PF0).verdict is Verdict.SPLIT
        assert report.device(PF0).split_from == (PF1,)
        assert report.device(PORT).verdict is Verdict.UNKNOWN
        (split,) = report.splits
        assert split.uncertain == (PORT,)
        # why they share anyway: with the port isolating, R5.2 joins PF1 to PF0
        pf1 = report.device(PF1)
        assert [s.rule for s in pf1.rules] == ["R4.1", "R4.2"]
        assert [s.rule for s in pf1.rules_if_isolating][-2:] == ["R5.2", "R5.1"]
        assert "if the unknown facts are isolating:" in render_check(report)

    def test_observed_merged_with_an_unknown_port(self) -> None:
        # consistent with "no ACS"; would be a merge if the port had ACS
        topo = unknown_acs(seed_shaped(pf_acs=ISOLATING), PORT)
        report = check(topo, observed({0: [PORT, PF0, PF1]}))
        assert not report.merges
        assert all(d.verdict is Verdict.UNKNOWN for d in report.devices)

    def test_unknown_pcie_type(self) -> None:
        # 64 bytes of config space: neither the PCIe capability nor ACS known
        topo = seed_shaped(pf_acs=ISOLATING)
        port = attrs.evolve(topo.get(PORT), pcie_type=None, unknown={"pcie", "acs"})
        topo = topo.replace(functions=[port, topo.get(PF0), topo.get(PF1)])
        report = check(topo, observed({8: [PORT], 2: [PF0], 3: [PF1]}))
        assert report.device(PF0).verdict is Verdict.UNKNOWN
        iso = isolating_topology(topo, {PORT: frozenset({"pcie", "acs"})})
        assert iso.get(PORT).pcie_type is PcieType.ROOT_PORT
        assert iso.get(PORT).acs == FULL_ACS

    def test_other_facts_are_noted(self) -> None:
        report = check(
            seed_shaped(),
            observed({0: [PORT, PF0, PF1]}),
            unknowns=[Unknown(PF0, "ids", "vendor id unreadable"), Unknown("ff:00.0", "acs", "x")],
        )
        assert report.verdict is Verdict.OK
        assert report.notes == ()
        ids, stray = report.details
        assert (ids.device, ids.fact) == (PF0, "ids")
        assert "no such PCI function" in stray.why
        assert report.to_json()["details"][0] == {
            "device": PF0,
            "fact": "ids",
            "why": "vendor id unreadable",
        }


class TestMissingDevices:
    def test_in_the_topology_not_observed(self) -> None:
        report = check(seed_shaped(), observed({0: [PF0, PF1]}))
        port = report.device(PORT)
        assert port.verdict is Verdict.UNKNOWN
        assert "no observed group" in port.reasons[0]
        # the PFs are together, as the rules say; the port's absence is noted
        pf0 = report.device(PF0)
        assert pf0.verdict is Verdict.OK
        assert "in no observed group" in pf0.reasons[-1]
        assert not report.has_split

    def test_observed_not_in_the_topology(self) -> None:
        """A device the input does not list is reported as such, with no verdict: it
        says nothing of the model (the kernel grouped something the input hides)."""
        report = check(seed_shaped(), observed({0: [PORT, PF0, PF1], 1: ["ARMH0011:00"]}))
        (other,) = report.not_listed
        assert (other.device, other.observed_group) == ("ARMH0011:00", 1)
        assert "does not list it" in other.why
        assert "ARMH0011:00" not in {d.device for d in report.devices}
        assert report.to_json()["not_listed"] == [other.to_json()]

    def test_no_group_predicted(self) -> None:
        d05 = examples.d05()
        assert canonical_groups(d05).group_of("0007:91:00.0") is None
        quiet = check(d05, observed({}))
        assert quiet.device("0007:91:00.0").verdict is Verdict.OK
        loud = check(d05, observed({0: ["0007:91:00.0"]}))
        assert loud.device("0007:91:00.0").verdict is Verdict.UNKNOWN
        assert "the rules give it no group" in loud.device("0007:91:00.0").reasons[0]

    def test_short_addresses_are_normalised(self) -> None:
        topo = examples.desktop()
        g = canonical_groups(topo)
        short = {gid: [m[5:] for m in ds] for gid, ds in g.groups.items()}
        assert check(topo, observed(short)).verdict is Verdict.OK


# -------------------------------------------------------------------- merged
class TestMerged:
    """Observed together, though the rules isolate them: a quirk the model lacks."""

    def test_merge_found(self, merged: CheckReport) -> None:
        assert not merged.has_split
        assert merged.verdict is Verdict.MERGED
        (merge,) = merged.merges
        assert set(merge.devices) == {"0000:00:01.0", "0000:01:00.0", "0000:01:00.1"}
        assert len(merge.parts) == 2
        port = merged.device("00:01.0")
        assert port.verdict is Verdict.MERGED
        assert port.merged_with == ("0000:01:00.0", "0000:01:00.1")
        gpu = merged.device("01:00.0")
        assert gpu.merged_with == ("0000:00:01.0",)
        # why it is isolated: its walk stops at the ACS-isolated port (R4.2)
        assert any(s.rule == "R4.2" and "is ACS-isolated" in s.text for s in gpu.rules)

    def test_other_devices_stay_ok(self, merged: CheckReport) -> None:
        ok = len(merged.devices) - 3
        assert merged.counts() == {"ok": ok, "split": 0, "merged": 3, "unknown": 0}

    def test_split_wins_over_merged(self) -> None:
        seen = observed({0: [PORT, "0000:00:01.0"], 1: [PF0, PF1]})
        topo = Topology([*seed_shaped().functions, bridge("00:01.0", 1, acs=ISOLATING)])
        report = check(topo, seen)
        port = report.device(PORT)
        assert port.verdict is Verdict.SPLIT
        assert port.merged_with == ("0000:00:01.0",)
        assert report.merges  # 00:01.0 itself is merged
        assert report.device("00:01.0").verdict is Verdict.MERGED


# ------------------------------------------------------------ json and text
def test_json_schema() -> None:
    report = check(examples.d05(), observed_from(seed_logs()[0]))
    data = report.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["schema"] == CHECK_SCHEMA == "iommugroups.check/2"
    assert data["verdict"] == "split"
    assert data["has_split"] is True
    assert set(data) == {
        "schema",
        "verdict",
        "has_split",
        "counts",
        "devices",
        "splits",
        "merges",
        "unknown",
        "canonical",
        "isolating",
        "observed",
        "reproduction",
        "notes",
        "not_listed",
        "details",
        "missing",
        "missing_why",
    }
    pf0 = next(d for d in data["devices"] if d["device"] == PF0)
    assert pf0["verdict"] == "split"
    assert pf0["canonical_group"] == 6
    assert pf0["observed_group"] == 2
    # no fact unknown: the isolating reading is the canonical grouping
    assert data["isolating"] is None
    assert pf0["isolating_group"] == 6
    # who it must share with is its canonical group, listed once; the kernel put
    # the port, PF1 and the VFs elsewhere: four devices it is split from
    assert pf0["reason_kinds"] == ["split"]
    assert pf0["split_count"] == 4
    assert pf0["merged_count"] == 0
    assert pf0["about"] is None
    groups = dict(zip(data["canonical"]["group_ids"], data["canonical"]["groups"], strict=True))
    assert groups[6] == [PORT, PF0, PF1, VF0, VF1]
    assert "must_share" not in pf0
    assert "reasons" not in pf0
    assert pf0["rules"][-1] == {
        "rule": "R4.2",
        "device": PORT,
        "text": f"bridge {PORT}: path to the root not ACS-isolated; it is in group 6",
        "group": 6,
    }
    assert data["splits"][0]["parts"][0] == {"observed_group": 2, "devices": [PF0]}
    assert data["unknown"] == ["0002:f9:00.2", "000c:21:00.0"]
    assert "legacy-probe-time" in data["reproduction"]["reproduced_by"]
    assert data["reproduction"]["scenario"][0].startswith("ACTION insmod")
    ok = next(d for d in data["devices"] if d["device"] == "0002:f8:00.0")
    assert ok["rules"] == []  # traces only where the verdict is not ok
    assert ok["rules_if_isolating"] == []


def test_json_without_a_log() -> None:
    data = check(seed_shaped(), observed({0: [PORT, PF0, PF1]})).to_json()
    assert data["reproduction"] is None
    assert data["verdict"] == "ok"
    assert data["observed"] == {
        "source": "listing",
        "group_ids": [0],
        "groups": [[PORT, PF0, PF1]],
    }


def test_render_text() -> None:
    text = render_check(check(examples.d05(), observed_from(seed_logs()[0])))
    assert text.startswith("check: SPLIT")
    assert "\x1b" not in text
    assert text.endswith("\n")
    assert f"  canonical group 6: {PORT} {PF0} {PF1} {VF0} {VF1}\n" in text
    assert f"    observed group 2: {PF0}\n" in text
    assert f"R4.2 bridge {PORT}: path to the root not ACS-isolated" in text
    assert "Reproduced by: legacy-probe-time" in text
    assert "not device-add:" in text
    ok = render_check(check(seed_shaped(), observed({0: [PORT, PF0, PF1]})))
    assert ok.startswith("check: OK")
    assert "Reproduced by" not in ok


def test_strategies_can_be_chosen() -> None:
    seen = observed_from(seed_logs()[0])
    report = check(examples.d05(), seen, strategies=["legacy-probe-time"])
    assert [r.strategy for r in report.reproduction] == ["legacy-probe-time"]
    assert report.reproduced_by == ("legacy-probe-time",)
    with pytest.raises(KeyError, match="unknown strategy"):
        check(examples.d05(), seen, strategies=["no-such"])


def test_old_format_lines_bind_a_stand_in_driver() -> None:
    """``iommu: Adding device X to group N`` (before 5.1) names no driver."""
    log = [LogLine("", PF0, 0), LogLine("", PF1, 1), LogLine("", PORT, 2)]
    report = check(seed_shaped(), observed_from(log))
    assert report.replay is not None
    assert [str(a) for a in report.replay.scenario.actions] == [
        "ACTION insmod unnamed-driver",
        f"ACTION bind {PF0} unnamed-driver",
        f"ACTION bind {PF1} unnamed-driver",
        f"ACTION bind {PORT} unnamed-driver",
    ]
    assert report.has_split
    assert "legacy-probe-time" in report.reproduced_by
    assert "device-add" not in report.reproduced_by


def test_replay_left_out_and_driverless_lines() -> None:
    topo = examples.d05()
    log = [
        LogLine("pci", PORT, 0),
        LogLine("mlx5_core", VF0, 0),  # its PF is not in the log before it
        LogLine("pci", PF0, 0),
        LogLine("mlx5_core", VF1, 0),  # its PF was grouped without a driver
    ]
    replay = replay_scenario(topo, log)
    lines = [str(a) for a in replay.scenario.actions]
    assert lines == [
        "ACTION insmod sriov-pf-driver",
        f"ACTION bind {PF0} sriov-pf-driver",
        f"ACTION sriov {PF0} 2",
        "ACTION insmod mlx5_core",
        f"ACTION bind {VF1} mlx5_core",
    ]
    assert set(replay.left_out) == {VF0}
    assert VF0 not in replay.compared
    assert VF1 in replay.compared


# -------------------------------------------------------------- properties
@settings(max_examples=60, deadline=None)
@given(topologies(max_functions=25), st.data())
def test_isolating_assumption_only_splits_groups(topology: Topology, data: st.DataObject) -> None:
    """The basis of ``unknown``: with unknown ACS/PCIe facts taken as isolating,
    every canonical group is a subset of its as-read group (each joining rule,
    R3.4, R4.2, R5.2, needs a device that is *not* isolated)."""
    names = sorted(str(f.address) for f in topology.functions)
    chosen = data.draw(st.sets(st.sampled_from(names)) if names else st.just(set[str]()))
    facts = data.draw(st.sampled_from([frozenset({"acs"}), frozenset({"acs", "pcie"})]))
    if "pcie" in facts:  # what a reader of 64 bytes of config space produces
        topology = topology.replace(
            functions=[
                attrs.evolve(f, pcie_type=None, acs=None) if str(f.address) in chosen else f
                for f in topology.functions
            ]
        )
    read = canonical_groups(topology)
    iso = canonical_groups(isolating_topology(topology, dict.fromkeys(chosen, facts)))
    for members in iso.groups.values():
        group = read.group_of(members[0])
        assert group is not None
        assert set(members) <= set(read.groups[group])


@settings(max_examples=40, deadline=None)
@given(topologies(max_functions=25), st.data())
def test_the_prediction_itself_is_never_split_or_merged(
    topology: Topology, data: st.DataObject
) -> None:
    """Observing exactly the canonical groups is ok; with unknown facts it may be
    unknown, never split or merged."""
    groups = canonical_groups(topology).groups
    assert check(topology, Grouping(groups)).verdict is Verdict.OK
    names = sorted(str(f.address) for f in topology.functions)
    chosen = data.draw(st.sets(st.sampled_from(names)) if names else st.just(set[str]()))
    unsure = check(topology, Grouping(groups), unknowns=[Unknown(n, "acs", "") for n in chosen])
    assert not unsure.splits
    assert not unsure.merges


def test_a_large_group_observed_as_predicted_shares_one_member_tuple() -> None:
    """The report stays linear in size: the devices of a group the kernel made as
    the rules say all name the canonical group's own member tuple in ``must_share``."""
    port = bridge("00:01.0", 1)  # no ACS: everything below shares its group (R4.2)
    disks = [ep(f"01:{i >> 3:02x}.{i & 7}", mf=i & 7 == 0) for i in range(256)]
    topology = Topology([port, *disks])
    canon = canonical_groups(topology)
    [members] = canon.groups.values()
    report = check(topology, Grouping(dict(canon.groups), source="listing"))
    assert report.verdict is Verdict.OK
    [shared] = report.canonical.groups.values()
    assert shared == members
    assert all(d.must_share is shared for d in report.devices)
    assert all(d.reasons == () and d.may_share == () for d in report.devices)


# ------------------------------------------------------- the report's size (issue 13)
def _perturbed(groups: Mapping[int, Sequence[str]], data: st.DataObject) -> Grouping:
    """The groups with some split, some cut into single devices, some members dropped,
    and two neighbours merged: what a kernel could have made instead."""
    out: list[list[str]] = []
    for members in groups.values():
        ms = list(members)
        how = data.draw(st.sampled_from(["keep", "split", "alone", "drop"]))
        if how == "keep" or len(ms) == 1:
            out.append(ms)
        elif how == "split":
            k = data.draw(st.integers(1, len(ms) - 1))
            out += [ms[:k], ms[k:]]
        elif how == "alone":
            out += [[m] for m in ms]
        else:
            kept = [m for m in ms if data.draw(st.booleans())]
            if kept:
                out.append(kept)
    if len(out) > 1 and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(out) - 2))
        out[i] += out.pop(i + 1)
    return Grouping({i: tuple(ms) for i, ms in enumerate(out)}, source="listing")


def _groups_of(doc: Mapping[str, Any]) -> dict[int, frozenset[str]]:
    return {g: frozenset(ms) for g, ms in zip(doc["group_ids"], doc["groups"], strict=True)}


@settings(max_examples=80, deadline=None)
@given(topologies(max_functions=25), st.data())
def test_device_facts_are_set_computations_over_the_groupings(
    topology: Topology, data: st.DataObject
) -> None:
    """check/2 lists each group once; what a device's entry says (verdict, counts,
    reason kinds) and the devices behind it (:attr:`DeviceCheck.split_from`, ...) are the
    definitions of the module docstring, computed here as sets over the
    document's canonical, isolating and observed groupings: ``must_share`` is
    its canonical group within its isolating group, ``split_from`` those of them
    the kernel put in another group, ``merged_with`` the members of its
    observed group from another canonical group."""
    seen = _perturbed(canonical_groups(topology).groups, data)
    names = sorted(str(f.address) for f in topology.functions)
    chosen = data.draw(st.sets(st.sampled_from(names)) if names else st.just(set[str]()))
    unknowns = [Unknown(n, data.draw(st.sampled_from(["acs", "pcie"])), "") for n in chosen]
    report = check(topology, seen, unknowns=unknowns, strategies=())
    doc = report.to_json()
    canonical = _groups_of(doc["canonical"])
    isolating = canonical if doc["isolating"] is None else _groups_of(doc["isolating"])
    observed_groups = _groups_of(doc["observed"])
    canon_of = {m: g for g, ms in canonical.items() for m in ms}
    iso_of = {m: g for g, ms in isolating.items() for m in ms}
    obs_of = {m: g for g, ms in observed_groups.items() for m in ms}
    assert (doc["isolating"] is None) == (not chosen)
    for entry in doc["devices"]:
        name, cg, og = entry["device"], entry["canonical_group"], entry["observed_group"]
        assert (cg, og) == (canon_of.get(name), obs_of.get(name))
        assert entry["isolating_group"] == iso_of.get(name)
        found = report.device(name)
        if cg is None:
            assert entry["verdict"] == ("ok" if og is None else "unknown")
            assert found.must_share == ()
            continue
        members = canonical[cg]
        ig = entry["isolating_group"]
        must = members & isolating[ig] if ig is not None else frozenset({name})
        read = {m for m in members if m in obs_of}
        split: set[str] = set()
        merged: set[str] = set()
        if og is None:
            verdict = "unknown"
        else:
            split = {m for m in must if m in obs_of and obs_of[m] != og}
            merged = {m for m in observed_groups[og] if m in canon_of and canon_of[m] != cg}
            if split:
                verdict = "split"
            elif merged:
                verdict = "merged"
            elif not read <= must:  # the kernel's group lies between the two readings
                verdict = "unknown"
            else:
                verdict = "ok"
        assert entry["verdict"] == verdict, entry
        assert (entry["split_count"], entry["merged_count"]) == (len(split), len(merged))
        assert set(found.must_share) == must
        assert set(found.may_share) == members - must
        assert set(found.split_from) == split
        assert set(found.merged_with) == merged
        assert set(found.not_observed) == members - read
        facts = {m for m in members if m in chosen}
        assert set(found.depends_on) == (facts if must != members else set())
        kinds = entry["reason_kinds"]
        assert set(kinds) <= set(REASON_KINDS)
        assert ("members-not-observed" in kinds) == (og is not None and read != members)
        assert ("split" in kinds) == bool(split)
        # the report's words: as many sentences as kinds, cut lists when asked
        d = report.device(name)
        assert len(d.reasons) == len(kinds)
        assert (
            ShortLists(report, len(members) + len(observed_groups.get(og, ()))).reasons(d)
            == d.reasons
        )


def _big_pf(tmp_path: Path, n: int) -> tuple[Path, Path, int]:
    """The benchmark's ``big-pf`` shape (a root port without ACS, one PF and its VFs,
    R4.2: one group) as a topology file, and a listing that puts each of them in a
    group of its own: an isolation hole as large as the group."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from shapes import build

    topology = build("big-pf", n)
    canon = canonical_groups(topology)
    topo_file = tmp_path / f"big-pf-{n}.json"
    topo_file.write_text(dumps_topology(topology, "json"))
    names = [m for members in canon.groups.values() for m in members]
    lines = [f"IOMMU Group {i}:\n\t{m}" for i, m in enumerate(names)]
    listing = tmp_path / f"big-pf-{n}.txt"
    listing.write_text("\n".join(lines) + "\n")
    return topo_file, listing, max(len(ms) for ms in canon.groups.values())


def test_check_json_and_text_grow_linearly_with_one_large_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """4x the devices of one split group: at most about 4x the JSON and the text
    (version 1 listed the whole group in each device's entry: 16x)."""
    sizes: dict[int, tuple[int, int]] = {}
    for n in (250, 1000):
        topo_file, listing, largest = _big_pf(tmp_path, n)
        assert largest >= n - 2
        argv = ["check", str(topo_file), "--observed", str(listing)]
        assert main([*argv, "--json"]) == 1
        doc_text = capsys.readouterr().out
        doc = json.loads(doc_text)
        assert doc["counts"]["split"] == largest
        assert main(argv) == 1
        text = capsys.readouterr().out
        sizes[n] = (len(doc_text), len(text))
        # the JSON is json.dumps with indent=2, written entry by entry
        assert doc_text == json.dumps(doc, indent=2) + "\n"
    (json_small, text_small), (json_big, text_big) = sizes[250], sizes[1000]
    assert json_big <= 4.2 * json_small
    assert text_big <= 4.2 * text_small


def test_text_sums_up_a_large_split(tmp_path: Path) -> None:
    """A split of a thousand devices each alone: the group once, a few of the kernel's
    groups and their count, one line for the devices with the same verdict and reasons,
    and the first one's reasons with their lists cut short."""
    topo_file, listing, largest = _big_pf(tmp_path, 1000)
    seen = read(listing).observed
    assert seen is not None
    report = check(load(topo_file), seen)
    text = render_check(report)
    assert f"... ({largest:,} devices)" in text
    assert (
        f"observed groups ...: {largest - 6:,} more groups ({largest - 6:,} devices, each alone)"
        in text
    )
    first = report.splits[0].devices[0]
    assert (
        f"{first} and {largest - 1:,} more: split: each alone in the kernel's groups, "
        "predicted together" in text
    )
    # for instance, one of them, with its lists cut to eight names
    assert f"and {largest - 1 - 8:,} more, which the kernel put in groups" in text
    # every device still has its line in the table
    assert text.count("  split    canonical") == largest
    marks = verdict_marks(report)
    assert len(marks) == largest
    assert marks[first].endswith(f"and {largest - 4} more (isolation hole)")
