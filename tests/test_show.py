"""``show``: groups for people, the reason for each group's shape, filters, the tree.

The reasons are checked against the rules, not against canned text: on the
oracle captures (real 6.1 kernels), the built-in examples and random
topologies, every clause must be true of the group it describes (a bridge
named as not isolating is in the group, is not ACS-isolated and has its whole
subtree in the group; the functions named as R5.2 peers are multifunction
and not ACS-enabled; a group "alone" has one member; ...). Then the filters,
``related``, the tree's structure (every device once, indentation = bus
depth), colour on and off (``NO_COLOR``, ``TERM=dumb``) and the JSON schema.
"""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings

from iommugroups import (
    DEFAULT_QUIRKS,
    REQ_ACS_FLAGS,
    Acs,
    AcsFlags,
    AcsQuirk,
    Grouping,
    IommuGroupsError,
    IommuInstance,
    IommuKind,
    PciAddress,
    PcieType,
    PciFunction,
    PlatformDevice,
    Topology,
    UnknownDevice,
    canonical_groups,
    examples,
    load,
    make_context,
    pci_acs_enabled,
    pci_acs_path_enabled,
)
from iommugroups._analysis.filters import (
    CLASS_KEYWORDS,
    ShowFilterError,
    by_address,
    by_class,
    by_group,
    by_related,
)
from iommugroups._analysis.names import class_name
from iommugroups._analysis.related import related
from iommugroups._analysis.show import (
    SHOW_SCHEMA,
    AcsState,
    GroupView,
    ShowResult,
    acs_state,
    show,
)
from iommugroups._render.show import render_related, render_show, render_tree, use_color
from iommugroups.testing import topologies

from .helpers import FULL, ISOLATING, bridge, ep

DATA = Path(__file__).parent / "data" / "oracle"
CAPTURES = sorted((DATA / "captures").glob("*.lspci"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@functools.cache
def _capture(name: str) -> Topology:
    return load(DATA / "captures" / f"{name}.lspci")


def _topologies() -> Iterator[tuple[str, Topology]]:
    yield "desktop", examples.desktop()
    yield "d05", examples.d05()
    for path in CAPTURES:
        yield path.stem, _capture(path.stem)


NAMED = [pytest.param(t, id=name) for name, t in _topologies()]


def _subtree(topo: Topology, br: PciFunction) -> list[PciFunction]:
    """Every function below bridge ``br`` (its secondary bus and below)."""

    def below(fn: PciFunction) -> bool:
        dom, bus = fn.address.domain, fn.address.bus
        while True:
            if topo.bus_self(dom, bus) is br:
                return True
            parent = topo.parent_bus(dom, bus)
            if parent is None:
                return False
            bus = parent

    return [f for f in topo.functions if below(f)]


def _short(name: str) -> str:
    a = PciAddress.parse(name)
    return str(a)[5:] if a.domain == 0 else str(a)


def _slot_text(a: PciAddress) -> str:
    text = f"{a.bus:02x}:{a.device:02x}"
    return text if a.domain == 0 else f"{a.domain:04x}:{text}"


def assert_reasons_follow_the_rules(result: ShowResult) -> None:
    """Every clause of every group is true of the group (see the module docstring)."""
    topo = result.topology
    grouping = result.grouping
    ctx = make_context(topo)
    assert [g.id for g in result.groups] == sorted(grouping.groups)
    for g in result.groups:
        names = [m.name for m in g.members]
        assert tuple(names) == grouping.groups[g.id]
        members = set(names)
        assert g.clauses, g
        assert "\n" not in g.reason
        assert g.reason == "; ".join(c.text for c in g.clauses)
        for rule in g.rules:
            assert rule in g.reason
        kinds = {c.kind for c in g.clauses}
        single = {"isolated", "alone", "platform"}
        if len(names) == 1:
            assert len(g.clauses) == 1, g.reason
            assert kinds <= single, g.reason
        else:
            assert not kinds & single, g.reason
        if re.search(r"\bisolated\b", g.reason):  # "ACS-isolated" included
            assert len(names) == 1 or kinds == {"aliases"}, g.reason
        for c in g.clauses:
            assert set(c.devices) <= members, (g.reason, c)
            if c.kind == "isolated":
                fn = topo.get(names[0])
                assert pci_acs_path_enabled(fn, None, REQ_ACS_FLAGS, ctx)
                assert c.text.startswith("alone: ")
            elif c.kind == "alone":
                fn = topo.get(names[0])
                assert not pci_acs_path_enabled(fn, None, REQ_ACS_FLAGS, ctx)
                assert c.text.startswith("alone: ")
            elif c.kind == "platform":
                assert names[0] in {p.name for p in topo.platform_devices}
            elif c.kind == "below":
                assert c.text.startswith("devices below ")
                for x in c.devices:
                    br = topo.get(x)
                    assert br.is_bridge
                    assert not pci_acs_path_enabled(br, None, REQ_ACS_FLAGS, ctx), x
                    assert not pci_acs_enabled(br, REQ_ACS_FLAGS, ctx), x
                    assert _short(x) in c.text
                    below = _subtree(topo, br)
                    assert any(str(f.address) in members for f in below)
                    for f in below:  # the whole subtree shares the bridge's group
                        gid = grouping.group_of(f.address)
                        assert gid is None or gid == g.id, (x, f.address)
            elif c.kind == "behind":
                for x in c.devices:
                    br = topo.get(x)
                    assert br.is_bridge
                    assert br.pcie_type in (None, PcieType.PCI_BRIDGE, PcieType.PCIE_BRIDGE)
                    assert _short(x) in c.text
                    assert any(str(f.address) in members for f in _subtree(topo, br))
            elif c.kind == "functions":
                assert len(c.devices) >= 2, c
                slots = {PciAddress.parse(d)[:3] for d in c.devices}
                for d in c.devices:
                    fn = topo.get(d)
                    assert topo.is_multifunction(fn)
                    assert not pci_acs_enabled(fn, REQ_ACS_FLAGS, ctx)
                for dom, bus, dev in slots:
                    assert _slot_text(PciAddress(dom, bus, dev, 0)) in c.text
                    same_slot = [
                        d for d in c.devices if PciAddress.parse(d)[:3] == (dom, bus, dev)
                    ]
                    assert len(same_slot) >= 2
            elif c.kind == "aliases" or c.kind == "streams":
                assert len(c.devices) >= 2
            else:  # pragma: no cover - a clause kind the test does not know
                pytest.fail(f"unknown clause kind {c.kind}")


# ---------------------------------------------------------------- reasons


@pytest.mark.parametrize("topology", NAMED)
def test_reasons_follow_the_rules(topology: Topology) -> None:
    assert_reasons_follow_the_rules(show(topology))


@settings(max_examples=40, deadline=None)
@given(topologies(max_functions=25))
def test_reasons_follow_the_rules_on_random_topologies(topology: Topology) -> None:
    assert_reasons_follow_the_rules(show(topology))


def test_desktop_reasons() -> None:
    """One reason per rule family, derived from the structure (see examples.desktop)."""
    result = show(examples.desktop())
    reasons = {g.id: g.reason for g in result.groups}
    assert reasons == {
        0: "alone: single-function, on a root bus (R4.2)",
        1: "alone: its path to the root is ACS-isolated (R4.2)",
        2: "devices below root port 00:02.0, which has no ACS capability (R2.3, R4.2)",
        3: "alone: its path to the root is ACS-isolated (R4.2)",
        4: "devices below root ports 00:1c.0 and 00:1c.1, which have no ACS capability "
        "(R2.3, R4.2); functions of multifunction device 00:1c without ACS (R5.2)",
        5: "conventional PCI devices behind PCIe-to-PCI bridge 00:1e.0 (R3.4)",
        6: "functions of multifunction device 00:1f without ACS (R5.2)",
        7: "functions of multifunction device 01:00 without ACS (R5.2)",
        8: "alone: its path to the root is ACS-isolated (R4.2)",
        9: "devices below downstream port 07:08.0, which has no ACS capability (R2.3, R4.2)",
        10: "devices below downstream port 07:09.0, which has no ACS capability (R2.3, R4.2)",
        11: "alone: its path to the root is ACS-isolated (R4.2)",
        12: "functions of multifunction device 0a:00 without ACS (R5.2)",
    }
    assert result.group(4).rules == ("R2.3", "R4.2", "R5.2")
    joins = {m.name: m.join for g in result.groups for m in g.members}
    assert joins["0000:00:1c.1"] is not None
    assert joins["0000:00:1c.1"].step == "function-alias"
    assert joins["0000:03:00.0"] is not None
    assert joins["0000:03:00.0"].via == "0000:00:1c.0"
    assert joins["0000:05:01.0"] is not None
    assert joins["0000:05:01.0"].rule == "R3.4"
    assert joins["0000:00:00.0"] is not None
    assert joins["0000:00:00.0"].step == "new"


def test_conventional_bridge_behind_a_pcie_to_pci_bridge() -> None:
    topo = _capture("q35-1003")
    texts = [g.reason for g in show(topo).groups]
    assert any(
        "conventional PCI devices behind PCIe-to-PCI bridge" in t
        and "devices behind conventional PCI bridge" in t
        for t in texts
    ), texts


def _port_with(**kw: object) -> Topology:
    return Topology([bridge("00:1c.0", 1, **kw), ep("01:00.0")])  # type: ignore[arg-type]


def test_why_a_bridge_does_not_isolate() -> None:
    off = Acs(cap=FULL | AcsFlags.TB, ctrl=AcsFlags.SV)
    assert show(_port_with(acs=off)).groups[0].reason == (
        "devices below root port 00:1c.0, which has ACS with RR|CR|UF not enabled (R2.3, R4.2)"
    )
    unknown = Topology([attrs.evolve(bridge("00:1c.0", 1), unknown={"acs"}), ep("01:00.0")])
    assert "whose ACS capability could not be read (taken as absent)" in (
        show(unknown).groups[0].reason
    )
    quirk = AcsQuirk.not_isolated(0x1B36, 0x000C, name="no_acs_here")
    got = show(_port_with(acs=ISOLATING), quirks=DEFAULT_QUIRKS.with_acs_quirk(quirk))
    assert "which an ACS quirk (no_acs_here) says does not isolate" in got.groups[0].reason
    pcie_pci = Topology(
        [bridge("00:1e.0", 1, kind=PcieType.PCIE_BRIDGE), ep("01:00.0", kind=PcieType.ENDPOINT)]
    )
    reason = show(pcie_pci).groups[0].reason
    assert "PCI-to-PCIe bridge 00:1e.0" in reason


def test_dma_aliases_of_each_other() -> None:
    topo = Topology(
        [
            bridge("00:01.0", 1, acs=ISOLATING),
            ep("01:00.0", aliases=frozenset({0x08})),  # 01:01.0's devfn
            ep("01:01.0"),
        ]
    )
    result = show(topo)
    assert_reasons_follow_the_rules(result)
    (group,) = [g for g in result.groups if len(g.members) == 2]
    assert group.reason == "DMA aliases of each other: 01:00.0 and 01:01.0 (R3.6, R5.1)"


def test_platform_devices_and_stream_sharing() -> None:
    # b's *last* stream-map entry (id 1) remembers a's group: arm_smmu_device_group
    # takes the last entry's group (R1.7)
    topo = Topology(
        [],
        platform_devices=[
            PlatformDevice("a", iommu="smmu", stream_ids=(1,)),
            PlatformDevice("b", iommu="smmu", stream_ids=(2, 1)),
            PlatformDevice("c", iommu="smmu", stream_ids=(3,)),
        ],
        iommus=[IommuInstance("smmu", IommuKind.SMMU_V2)],
    )
    result = show(topo)
    assert_reasons_follow_the_rules(result)
    assert [g.reason for g in result.groups] == [
        "sharing IOMMU stream ids: a and b (R1.7)",
        "alone: a platform device gets a group of its own (R1.5)",
    ]
    assert result.groups[0].members[1].join is not None
    assert result.groups[0].members[1].join.step == "streams"


def test_stream_sharing_follows_the_last_entry() -> None:
    """R1.7 as ``arm_smmu_device_group`` (arm-smmu.c) has it: the group is the one the
    device's *last* stream-map entry remembers, so b, whose last id (2) no other device
    uses, gets a group of its own although its first id is a's."""
    topo = Topology(
        [],
        platform_devices=[
            PlatformDevice("a", iommu="smmu", stream_ids=(1,)),
            PlatformDevice("b", iommu="smmu", stream_ids=(1, 2)),
        ],
        iommus=[IommuInstance("smmu", IommuKind.SMMU_V2)],
    )
    result = show(topo)
    assert [len(g.members) for g in result.groups] == [1, 1]
    assert canonical_groups(topo).partition() == {frozenset({"a"}), frozenset({"b"})}


def test_alone_for_other_reasons() -> None:
    # a multifunction endpoint whose function 0 isolates, function 1 does not
    topo = Topology(
        [
            bridge("00:01.0", 1, acs=ISOLATING),
            ep("01:00.0", mf=True, acs=ISOLATING),
            ep("01:00.1", mf=True),
            bridge("00:02.0", 2, acs=None),  # nothing below it
        ]
    )
    result = show(topo)
    assert_reasons_follow_the_rules(result)
    reasons = {m.name: g.reason for g in result.groups for m in g.members}
    assert reasons["0000:01:00.1"] == (
        "alone: the other functions of its slot are ACS-isolated, "
        "root port 00:01.0 above it is ACS-isolated (R4.2, R5.2)"
    )
    assert reasons["0000:00:02.0"] == (
        "alone: single-function, on a root bus, nothing below it (R4.2)"
    )


# ----------------------------------------------------------------- ACS state


@pytest.mark.parametrize("topology", NAMED)
def test_acs_state_is_what_grouping_sees(topology: Topology) -> None:
    ctx = make_context(topology)
    for fn in topology.functions:
        state = acs_state(fn, ctx)
        enabled = pci_acs_enabled(fn, REQ_ACS_FLAGS, ctx)
        assert state.isolates == enabled or (state is AcsState.UNKNOWN and not enabled), fn


def test_acs_states() -> None:
    def state(fn: PciFunction, quirks: object = None) -> AcsState:
        topo = Topology([fn])
        return acs_state(fn, make_context(topo, quirks))  # type: ignore[arg-type]

    assert state(bridge("00:1c.0", 1, acs=ISOLATING)) is AcsState.ENABLED
    assert state(bridge("00:1c.0", 1, acs=None)) is AcsState.ABSENT
    off = Acs(cap=FULL, ctrl=AcsFlags.SV | AcsFlags.RR)
    assert state(bridge("00:1c.0", 1, acs=off)) is AcsState.OFF
    quirks = DEFAULT_QUIRKS.with_acs_quirk(AcsQuirk.isolated(0x1B36, 0x000C))
    assert state(bridge("00:1c.0", 1, acs=None), quirks) is AcsState.QUIRK
    quirks = DEFAULT_QUIRKS.with_acs_quirk(AcsQuirk.not_isolated(0x1B36, 0x000C))
    assert state(bridge("00:1c.0", 1, acs=ISOLATING), quirks) is AcsState.QUIRK_OFF
    unknown = attrs.evolve(bridge("00:1c.0", 1), unknown={"acs"})
    assert state(unknown) is AcsState.UNKNOWN
    assert state(ep("00:02.0", kind=PcieType.RC_END)) is AcsState.NOT_NEEDED
    assert state(bridge("00:1e.0", 1, kind=PcieType.PCI_BRIDGE, acs=ISOLATING)) is AcsState.ABSENT
    assert [s.value for s in AcsState] == [
        "ACS",
        "ACS off",
        "no ACS",
        "ACS quirk",
        "no ACS (quirk)",
        "ACS n/a",
        "ACS ?",
    ]


def test_class_names() -> None:
    assert class_name(0x060400) == "PCI bridge"
    assert class_name(0x030000) == "VGA compatible controller"
    assert class_name(0x020000) == "Ethernet controller"
    assert class_name(0x010802) == "Non-Volatile memory controller"
    assert class_name(0x0C0330) == "USB controller"
    assert class_name(0x040300) == "Audio device"
    assert class_name(0x0C7700) == "Serial bus controller"  # subclass not in pci.ids
    assert class_name(0x770000) == "Class 7700"


# ------------------------------------------------------------------- filters


def _ids(result: ShowResult) -> list[int]:
    return [g.id for g in result.groups]


def test_class_filters() -> None:
    result = show(examples.desktop())
    assert _ids(by_class(result, "gpu")) == [7, 10]
    assert _ids(by_class(result, "usb")) == [4, 12]
    assert _ids(by_class(result, "net")) == [4, 9]
    assert _ids(by_class(result, "nvme")) == [2]
    assert _ids(by_class(result, "audio")) == [5, 7]
    assert _ids(by_class(result, "storage")) == [2, 6]
    assert _ids(by_class(result, "0c03")) == _ids(by_class(result, "USB"))
    assert _ids(by_class(result, "gpu", "nvme")) == [2, 7, 10]
    assert set(CLASS_KEYWORDS) >= {"gpu", "usb", "net", "nvme", "audio", "storage"}
    gpu = by_class(result, "gpu")
    matched = {m.shown for g in gpu.groups for m in g.members if m.match}
    shown = {m.shown for g in gpu.groups for m in g.members}
    assert matched == {"01:00.0", "09:00.0"}
    assert shown == {"01:00.0", "01:00.1", "07:09.0", "09:00.0"}  # whole groups
    with pytest.raises(ShowFilterError, match="unknown device class 'gpus'") as info:
        by_class(result, "gpus")
    assert isinstance(info.value, IommuGroupsError)
    assert isinstance(info.value, ValueError)


def test_address_group_and_combined_filters() -> None:
    result = show(examples.desktop())
    assert _ids(by_address(result, "01:00")) == [7]
    one = by_address(result, "0000:01:00.1")
    assert [(m.shown, m.match) for m in one.groups[0].members] == [
        ("01:00.0", False),
        ("01:00.1", True),
    ]
    assert _ids(by_group(result, 4, 2, 99)) == [2, 4]
    assert _ids(by_address(result, "ff:")) == []
    both = by_address(by_class(result, "gpu"), "09")
    assert _ids(both) == [10]
    assert both.filters == ("class gpu", "address 09")
    assert len(both.all_groups) == len(result.groups)
    text = render_show(by_address(result, "ff:"))
    assert text == "No IOMMU group matches the filters.\n"
    marked = render_show(by_address(result, "01:00.1")).splitlines()
    assert [line[:5] for line in marked if "01:00." in line] == ["    0", "  * 0"]


# ------------------------------------------------------------------- related


def test_related_is_the_group_split_into_assignable_and_bridges() -> None:
    result = show(examples.desktop())
    r = related(result, "03:00.0")
    assert (r.group, r.together, r.bridges) == (
        4,
        ("0000:03:00.0", "0000:04:00.0"),
        ("0000:00:1c.0", "0000:00:1c.1"),
    )
    assert r.bus_reset == ()  # alone on the bus below 00:1c.0
    assert r.reason == result.group(4).reason
    port = related(result, PciAddress.parse("07:08.0"))
    assert port.together == ("0000:08:00.0",)
    assert port.bridges == ("0000:07:08.0",)
    # a reset of bus 07 resets every downstream port of the switch and what is below
    assert port.bus_reset == (
        "0000:07:09.0",
        "0000:07:0a.0",
        "0000:09:00.0",
        "0000:0a:00.0",
        "0000:0a:00.1",
    )
    assert port.bus_reset_groups == (10, 11, 12)
    assert related(result, "00:1f.2").bus_reset == ()  # root bus: no bridge resets it


def test_related_bus_reset_of_isolated_functions() -> None:
    topo = Topology(
        [
            bridge("00:01.0", 1, acs=ISOLATING),
            ep("01:00.0", mf=True, acs=ISOLATING),
            ep("01:00.1", mf=True, acs=ISOLATING),
        ]
    )
    r = related(show(topo), "01:00.0")
    assert r.together == ("0000:01:00.0",)
    assert r.bus_reset == ("0000:01:00.1",)
    assert r.bus_reset_groups == (2,)


def test_related_vfs_platform_and_ungrouped_devices() -> None:
    pf = attrs.evolve(
        ep("01:00.0", acs=ISOLATING),
        sriov=None,
    )
    topo = Topology(
        [
            bridge("00:01.0", 1, acs=ISOLATING),
            pf,
            ep("01:00.1", physfn="01:00.0"),
        ]
    )
    assert related(show(topo), "01:00.1").bus_reset == ()  # VFs have FLR
    d05 = show(examples.d05())
    sas = related(d05, "HISI0162:01")
    assert sas.together == ("HISI0162:01",)
    assert sas.bridges == ()
    assert sas.bus_reset == ()
    none = related(d05, "0007:91:00.0")
    assert none.group is None
    assert none.reason.startswith("no group: ")
    assert "cannot be assigned" in render_related(none)
    for bad in ("05:1f.7", "not-a-device"):
        with pytest.raises(UnknownDevice):
            related(d05, bad)


def test_by_related() -> None:
    result = by_related(show(examples.desktop()), "01:00.1")
    assert _ids(result) == [7]
    assert [m.match for m in result.groups[0].members] == [False, True]
    assert result.related is not None
    assert result.related.group == 7
    text = render_show(result)
    assert text.startswith("Related to 01:00.1: IOMMU group 7 (")
    assert "assign together: 01:00.0 01:00.1" in text
    assert render_related(result.related) in text


# ------------------------------------------------------------------ observed


def test_observed_side_by_side() -> None:
    topo = examples.desktop()
    canon = canonical_groups(topo)
    same = Grouping({g + 100: tuple(map(_short, ms)) for g, ms in canon.groups.items()})
    result = show(topo, observed=same)
    assert all(g.observed_same for g in result.groups)
    assert all(g.observed == (g.id + 100,) for g in result.groups)
    assert "IOMMU Group 7  (2 devices; observed: group 107)" in render_show(result)

    groups = dict(canon.groups)
    groups[7] = ("0000:01:00.0",)
    groups[13] = ("0000:01:00.1", "0000:42:00.0")
    result = show(topo, observed=Grouping(groups, source="listing"))
    g7 = result.group(7)
    assert g7.observed == (7, 13)
    assert g7.observed_same is False
    assert [m.observed_group for m in g7.members] == [7, 13]
    assert result.observed_only == (("0000:42:00.0", 13),)
    text = render_show(result)
    assert "(2 devices; observed: groups 7, 13, differs)" in text
    assert "Observed, but not in the topology:\n  42:00.0: observed group 13" in text
    data = result.to_json()
    assert data["observed"]["source"] == "listing"
    assert data["observed_only"] == [{"device": "0000:42:00.0", "observed_group": 13}]


@pytest.mark.parametrize("path", CAPTURES[:8], ids=lambda p: p.stem)
def test_observed_capture_groups_are_the_canonical_ones(path: Path) -> None:
    data = json.loads(path.with_suffix(".json").read_text())
    observed = Grouping({int(k): tuple(v) for k, v in data["groups"].items()})
    result = show(_capture(path.stem), observed=observed)
    assert all(g.observed_same for g in result.groups)


def test_observed_vfs_are_added() -> None:
    seen = Grouping({8: ("000a:10:00.0", "000a:11:00.0", "000a:11:00.1", "000a:11:00.2")})
    result = show(examples.d05(), observed=seen)
    assert "000a:11:00.2" in [m.name for m in result.group(6).members]
    assert result.group(6).observed_same is True
    vf = next(m for m in result.group(6).members if m.name == "000a:11:00.2")
    assert vf.kind == "SR-IOV VF"
    assert vf.ids == "15b3:1018"


# --------------------------------------------------------------------- tree

_TREE_LINE = re.compile(r"^(?P<indent>(?:[| ]   )*)[+\\]-- (?P<what>\S+)")


def _bus_depth(topo: Topology, dom: int, bus: int) -> int:
    depth = 0
    while (parent := topo.parent_bus(dom, bus)) is not None:
        depth += 1
        bus = parent
    return depth


def assert_tree_structure(topo: Topology) -> None:
    grouping = canonical_groups(topo)
    text = render_tree(topo, grouping)
    lines = text.splitlines()
    seen: list[str] = []
    # per line: the indentation depth and what it is (device address or bus)
    stack: list[tuple[int, str]] = []
    ctx = make_context(topo)
    for line in lines:
        if line.startswith("["):  # a root bus
            m = re.match(r"^\[([0-9a-f]{4,}):([0-9a-f]{2})\]$", line)
            assert m, line
            assert topo.is_root_bus(int(m[1], 16), int(m[2], 16))
            stack = []
            continue
        if " platform device (" in line:
            name = line.split()[0]
            gid = grouping.group_of(name)
            assert line.endswith("no group" if gid is None else f"group {gid}")
            seen.append(name)
            continue
        m = _TREE_LINE.match(line)
        assert m, line
        depth = len(m["indent"]) // 4
        stack = stack[:depth]
        what = m["what"]
        if what.startswith("["):  # a virtual bus line
            dom, bus = (int(x, 16) for x in what.strip("[]").split(":"))
            assert topo.bus_self(dom, bus) is None
            assert not topo.is_root_bus(dom, bus)
            assert _bus_depth(topo, dom, bus) == depth + 1
            stack.append((depth, what))
            continue
        fn = topo.get(what)
        seen.append(str(fn.address))
        dom, bus = fn.address.domain, fn.address.bus
        assert depth == _bus_depth(topo, dom, bus), line
        # the line above at depth - 1 is the bridge above (or the virtual bus)
        if depth:
            parent = stack[depth - 1][1]
            above = topo.bus_self(dom, bus)
            if above is not None:
                assert parent == str(above.address), line
            else:
                assert parent == f"[{dom:04x}:{bus:02x}]", line
        stack.append((depth, str(fn.address)))
        gid = grouping.group_of(fn.address)
        assert line.endswith("no group" if gid is None else f"group {gid}"), line
        if fn.is_bridge:
            assert f"[{acs_state(fn, ctx).value}]" in line
    expected = [str(f.address) for f in topo.functions] + [p.name for p in topo.platform_devices]
    assert sorted(seen) == sorted(expected)  # every device exactly once
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("topology", NAMED)
def test_tree_structure(topology: Topology) -> None:
    assert_tree_structure(topology)


def test_tree_with_a_virtual_bus() -> None:
    topo = Topology(
        [
            bridge("00:01.0", 1, acs=ISOLATING),
            ep("01:00.0"),
            ep("02:00.0", physfn="01:00.0"),
            ep("02:00.1", physfn="01:00.0"),
        ]
    )
    assert_tree_structure(topo)
    text = render_tree(topo, canonical_groups(topo))
    assert "    \\-- [0000:02] SR-IOV virtual bus" in text


@settings(max_examples=30, deadline=None)
@given(topologies(max_functions=25))
def test_tree_structure_on_random_topologies(topology: Topology) -> None:
    assert_tree_structure(topology)


def test_tree_groups_column_is_aligned() -> None:
    topo = examples.desktop()
    lines = render_tree(topo, canonical_groups(topo)).splitlines()[1:]
    assert len({line.index(" group ") for line in lines}) == 1


# ------------------------------------------------------------------- colour


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_use_color() -> None:
    assert use_color(_Tty(), {}) is True
    assert use_color(_Tty(), {"NO_COLOR": "1"}) is False
    assert use_color(_Tty(), {"NO_COLOR": ""}) is True  # only a non-empty value disables
    assert use_color(_Tty(), {"TERM": "dumb"}) is False
    assert use_color(io.StringIO(), {}) is False
    assert use_color(object(), {}) is False
    closed = io.StringIO()
    closed.close()
    assert use_color(closed, {}) is False  # isatty() raises on a closed stream

    class _Broken:
        def isatty(self) -> bool:
            raise ValueError("I/O operation on closed file")

    assert use_color(_Broken(), {}) is False


def test_colour_only_when_asked() -> None:
    topo = examples.desktop()
    result = by_related(by_class(show(topo), "gpu"), "01:00.0")
    for plain, coloured in [
        (render_show(show(topo)), render_show(show(topo), color=True)),
        (render_show(result), render_show(result, color=True)),
        (render_tree(topo, result.grouping), render_tree(topo, result.grouping, color=True)),
    ]:
        assert "\x1b" not in plain
        assert "\x1b[" in coloured
        assert ANSI.sub("", coloured) == plain


# --------------------------------------------------------------------- JSON


def test_json_schema() -> None:
    result = by_related(show(examples.d05()), "000a:11:00.0")
    data = json.loads(json.dumps(result.to_json()))
    assert data["schema"] == SHOW_SCHEMA == "iommugroups.show/1"
    assert set(data) == {
        "schema",
        "topology",
        "strategy",
        "filters",
        "groups",
        "ungrouped",
        "observed",
        "observed_only",
        "related",
    }
    assert data["topology"] == "d05"
    assert data["strategy"] == "canonical"
    assert data["filters"] == ["related to 000a:11:00.0"]
    (group,) = data["groups"]
    assert set(group) == {
        "group",
        "reason",
        "rules",
        "clauses",
        "observed_groups",
        "observed_same",
        "members",
    }
    assert group["observed_groups"] is None
    assert group["observed_same"] is None
    assert set(group["clauses"][0]) == {"kind", "rules", "devices", "text"}
    member = group["members"][1]
    assert set(member) == {
        "device",
        "address",
        "class",
        "class_code",
        "class_name",
        "vendor",
        "device_id",
        "driver",
        "kind",
        "bridge",
        "acs",
        "joined",
        "observed_group",
        "match",
        "acs_state",
        "acs_isolates",
        "acs_known",
        "pcie_type",
    }
    assert member["device"] == "000a:11:00.0"
    assert (member["class"], member["class_code"], member["class_name"]) == (
        "0200",
        "020000",
        "Ethernet controller",
    )
    assert (member["vendor"], member["device_id"], member["kind"]) == ("15b3", "1017", "endpoint")
    assert member["joined"] == {
        "step": "upstream",
        "rule": "R4.2",
        "via": "000a:10:00.0",
        "pdev": "000a:10:00.0",
    }
    assert set(data["related"]) == {
        "device",
        "group",
        "reason",
        "together",
        "bridges",
        "bus_reset",
        "bus_reset_groups",
    }
    assert {"device": "0006:c0:00.0", "why": "no IOMMU translates this device"} in data[
        "ungrouped"
    ]
    full = show(examples.d05()).to_json()
    platform = full["groups"][0]["members"][0]
    assert platform["kind"] == "platform device"
    assert platform["acs"] is None
    assert platform["class"] is None
    assert platform["vendor"] is None


def test_show_result_is_a_value() -> None:
    a, b = show(examples.desktop()), show(examples.desktop())
    assert a == b
    assert render_show(a) == render_show(b)
    assert isinstance(a.groups[0], GroupView)
    with pytest.raises(KeyError):
        a.group(99)


def test_empty_topology() -> None:
    result = show(Topology([]))
    assert result.groups == ()
    assert render_show(result) == "No IOMMU groups.\n"
    assert render_tree(Topology([]), canonical_groups(Topology([]))) == ""


_LABEL_STATE = {  # the label shown, the key for programs, grouping counts it isolated (R2.3)
    "ACS": ("enabled", True),
    "ACS off": ("off", False),
    "no ACS": ("absent", False),
    "ACS quirk": ("quirk", True),
    "no ACS (quirk)": ("quirk-off", False),
    "ACS n/a": ("not-needed", True),
    "ACS ?": ("unknown", False),
}
_KIND_TYPE = {
    "endpoint": "endpoint",
    "root port": "root-port",
    "upstream port": "upstream-port",
    "downstream port": "downstream-port",
    "conventional PCI": "conventional",
    "conventional PCI bridge": "conventional",
}


def test_json_members_carry_fields_not_only_labels() -> None:
    """Issue 12: tools get booleans and enums, not display strings: each member's
    ``acs_state``/``acs_isolates``/``acs_known`` agree with its label, and ``pcie_type``
    with the PCIe type of the function itself."""
    from iommugroups import PcieType

    for topo in (examples.desktop(), examples.d05()):
        data = show(topo).to_json()
        by_name = topo.by_name()
        for group in data["groups"]:
            for m in group["members"]:
                if m["acs"] is None:
                    assert (m["acs_state"], m["acs_isolates"], m["acs_known"]) == (None,) * 3
                else:
                    state, isolates = _LABEL_STATE[m["acs"]]
                    assert (m["acs_state"], m["acs_isolates"]) == (state, isolates)
                    assert m["acs_known"] is (m["acs"] != "ACS ?")
                fn = by_name.get(m["device"])
                if fn is None:
                    assert m["pcie_type"] is None
                elif fn.pcie_type is PcieType.ROOT_PORT:
                    assert m["pcie_type"] == "root-port"
                elif fn.pcie_type is None and not fn.unknown & {"pcie", "config"}:
                    assert m["pcie_type"] == "conventional"
                if m["kind"] in _KIND_TYPE and fn is not None and fn.physfn is None:
                    assert m["pcie_type"] == _KIND_TYPE[m["kind"]], m


def test_related_keeps_host_and_isa_bridges_with_the_host() -> None:
    """Issue 12: `--related` once listed a host bridge among the devices to give a VM.
    A function of class 0x06 (host, ISA bridge) is the platform's own and vfio-pci never
    binds a bridge header (R12.2): both are under ``bridges``, never ``together``."""
    topo = examples.desktop()
    rel = related(show(topo), "00:1f.2")
    assert rel.group is not None
    members = {m.name for m in show(topo).group(rel.group).members}
    assert len(members) == 3
    for name in members:
        fn = topo.get(name)
        stays = fn.header_type != 0 or fn.class_code >> 16 == 0x06
        assert (name in rel.bridges) is stays, name
        assert (name in rel.together) is not stays, name
    assert "0000:00:1f.0" in rel.bridges  # the ISA bridge of the desktop's LPC slot
