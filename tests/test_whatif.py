"""What-if changes (``iommugroups.what_if``).

The acceptance test of the issue: ``what-if --acs-override
downstream,multifunction`` gives the groups this file derives independently.
The derivation (:class:`Derivation`) does not use the library's grouping
rules (``_acs``, ``_alias``, ``_pci_device_group``, the strategies): it
states from first principles, for the override, which devices count as
isolated, which relations bind two devices into one group, and closes them
with a union-find:

* a device behind a PCIe-to-PCI or conventional bridge is bound to the
  nearest such bridge (its DMA carries the bridge's requester id; ACS does
  not matter);
* otherwise a device is bound to the bridge above it when that bridge's
  path to the root is not wholly isolated;
* otherwise it is bound to devices on its bus that share a DMA alias, and,
  when it is a non-isolated multifunction function, to the non-isolated
  functions of its slot added before it.

A device joins *one* existing group in the kernel (the first found), while a
union-find merges every group a device relates to; the two agree unless some
device relates to two different earlier groups. The derivation detects that
("ambiguous") and then only checks that every kernel group lies inside one
derived component; otherwise the partitions must be equal. The same
derivation without the override is checked against the canonical grouping,
so the derivation itself is validated on the oracle captures.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iommugroups import (
    DEFAULT_QUIRKS,
    Acs,
    AcsFlags,
    AcsQuirk,
    DmaAliasKind,
    DmaAliasQuirk,
    IommuGroupsError,
    PciAddress,
    PcieType,
    PciFunction,
    SriovCapability,
    Topology,
    canonical_groups,
    examples,
    load,
    make_context,
)
from iommugroups._analysis.change_grammar import _KEYS, parse_change
from iommugroups._analysis.changes import (
    AcsOverride,
    AddQuirk,
    Change,
    ConfigAcs,
    MoveCard,
    ReachableSet,
    RemoveAcs,
    RemoveDevice,
    SetAcs,
    Slot,
    WhatIfError,
)
from iommugroups._analysis.partition import DeviceStatus
from iommugroups._analysis.whatif import WHATIF_SCHEMA, WhatIfResult, apply_changes, what_if
from iommugroups._cli.app import main
from iommugroups._kernel.groups import device_sort_key
from iommugroups._render.whatif import render_whatif
from iommugroups.testing import topologies

from .helpers import FULL, ISOLATING, bridge, ep

DATA = Path(__file__).parent / "data" / "oracle"
CAPTURES = sorted((DATA / "captures").glob("*.lspci")) + sorted(
    (DATA / "designed").glob("*.lspci")
)
REQ = AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF
OVERRIDE = "acs-override=downstream,multifunction"

Partition = frozenset[frozenset[str]]


# ============================================================================
# The independent derivation
# ============================================================================


class Derivation:
    """Expected groups of ``topology`` under ``pcie_acs_override`` (or without it).

    Args:
        downstream, multifunction: the override's modes (both off: no override).
    """

    PORTS = (PcieType.ROOT_PORT, PcieType.DOWNSTREAM)
    MF_TYPES = (PcieType.ENDPOINT, PcieType.UPSTREAM, PcieType.LEG_END, PcieType.RC_END)
    NEVER = (PcieType.PCI_BRIDGE, PcieType.PCIE_BRIDGE, PcieType.RC_EC)

    def __init__(
        self, topology: Topology, *, downstream: bool = False, multifunction: bool = False
    ) -> None:
        self.topo = topology
        self.downstream = downstream
        self.multifunction = multifunction
        self.quirks = DEFAULT_QUIRKS
        self.ctx = make_context(topology, DEFAULT_QUIRKS)  # platform facts only

    # --- facts about one device ---
    @staticmethod
    def mf(fn: PciFunction) -> bool:
        """The kernel's multifunction flag: forced on functions > 0 the slot scan finds."""
        if fn.physfn is not None:
            return False
        return fn.multifunction if fn.address.function == 0 else True

    @staticmethod
    def registers_isolate(fn: PciFunction) -> bool:
        """The ACS capability provides SV, RR, CR and UF (missing ones hard-wired on)."""
        if fn.acs is None:
            return False
        needed = REQ & fn.acs.cap
        return (fn.acs.ctrl & needed) == needed

    def isolated(self, fn: PciFunction) -> bool:
        # 1. the kernel's quirk table answers first (the override entry is its last)
        verdict = self.quirks.acs_enabled(fn, REQ, self.ctx)
        if verdict is not None:
            return verdict
        # 2. the override patch: PCIe devices without an ACS capability
        if fn.pcie_type is not None and fn.acs is None:
            if self.downstream and fn.pcie_type in self.PORTS:
                return True
            if self.multifunction and fn.pcie_type in self.MF_TYPES and self.mf(fn):
                return True
        # 3. the generic rule
        t = fn.pcie_type
        if t is None or t in self.NEVER:
            return False
        if t in self.PORTS or self.mf(fn):
            return self.registers_isolate(fn)
        return True  # nothing to reach: a single-function endpoint or upstream port

    def bridges_above(self, fn: PciFunction) -> Iterator[PciFunction]:
        """The bridges from ``fn`` to its root bus, nearest first (VF buses skipped)."""
        dom, bus = fn.address.domain, fn.address.bus
        while not self.topo.is_root_bus(dom, bus):
            br = self.topo.bus_self(dom, bus)
            parent = self.topo.parent_bus(dom, bus)
            assert parent is not None
            bus = parent
            if br is not None:
                yield br

    def path_isolated(self, br: PciFunction) -> bool:
        return self.isolated(br) and all(self.isolated(b) for b in self.bridges_above(br))

    def aliasing_bridge(self, fn: PciFunction) -> PciFunction | None:
        for br in self.bridges_above(fn):
            if self.quirks.bridge_xlate_root(br):
                return None
            if br.pcie_type is None or br.pcie_type in (PcieType.PCI_BRIDGE, PcieType.PCIE_BRIDGE):
                return br
        return None

    def alias_devfns(self, fn: PciFunction) -> frozenset[int]:
        return fn.dma_alias_devfns | self.quirks.dma_alias_devfns(fn)

    def translated(self, fn: PciFunction) -> bool:
        if not self.topo.iommus:
            return True
        a = fn.address
        return any(m.map(a.domain, a.rid) is not None for m in self.topo.id_mappings)

    # --- relations and their closure ---
    def relations(self, fn: PciFunction) -> list[PciFunction]:
        """The devices ``fn`` is bound to (see the module docstring)."""
        br = self.aliasing_bridge(fn)
        if br is not None:
            return [br]
        up = next(self.bridges_above(fn), None)
        if up is not None and not self.path_isolated(up):
            return [up]
        a = fn.address
        out = [
            t
            for t in self.topo.devices_on_bus(a.domain, a.bus)
            if t is not fn
            and (t.address.devfn in self.alias_devfns(fn) or a.devfn in self.alias_devfns(t))
        ]
        if self.mf(fn) and not self.isolated(fn):
            pos = self.topo.position(a)
            out += [
                t
                for t in self.topo.devices_on_bus(a.domain, a.bus)
                if t is not fn
                and t.address.device == a.device
                and self.topo.position(t.address) < pos
                and not self.isolated(t)
            ]
        return out

    def groups(self) -> tuple[Partition, bool]:
        """(expected partition, ambiguous): see the module docstring."""
        order = [f for f in self.topo.enumeration_order() if self.translated(f)]
        pos = {f.address: i for i, f in enumerate(order)}
        parent = {f.address: f.address for f in order}

        def find(x: PciAddress) -> PciAddress:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        earlier: dict[PciAddress, set[PciAddress]] = {f.address: set() for f in order}
        for fn in order:
            for other in self.relations(fn):
                assert other.address in pos, f"{fn} relates to untranslated {other}"
                a, b = sorted((fn.address, other.address), key=pos.__getitem__)
                earlier[b].add(a)
        ambiguous = False
        for fn in order:
            roots = {find(e) for e in earlier[fn.address]}
            ambiguous = ambiguous or len(roots) > 1
            for r in roots:
                parent[r] = find(fn.address)
        comps: dict[PciAddress, set[str]] = {}
        for f in order:
            comps.setdefault(find(f.address), set()).add(str(f.address))
        part = {frozenset(c) for c in comps.values()}
        part |= {frozenset({p.name}) for p in self.topo.platform_devices}
        return frozenset(part), ambiguous


def check_against(derived: Partition, ambiguous: bool, got: Partition) -> None:
    """Equal when unambiguous; always: every group lies inside one derived component."""
    if not ambiguous:
        assert got == derived
    for group in got:
        assert any(group <= comp for comp in derived), group


def override_groups(topology: Topology) -> Partition:
    return what_if(topology, [OVERRIDE]).after.partition()


# ============================================================================
# Acceptance: acs-override downstream,multifunction
# ============================================================================


def test_there_are_captures() -> None:
    assert len(CAPTURES) >= 28


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_override_on_captures(capture: Path) -> None:
    topo = load(capture)
    derived, ambiguous = Derivation(topo, downstream=True, multifunction=True).groups()
    assert not ambiguous
    assert override_groups(topo) == derived


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_derivation_without_override_is_the_kernels(capture: Path) -> None:
    # validates the derivation itself against the oracle-checked canonical groups
    topo = load(capture)
    derived, ambiguous = Derivation(topo).groups()
    assert not ambiguous
    assert canonical_groups(topo).partition() == derived


@pytest.mark.parametrize("name", ["desktop", "d05"])
def test_override_on_examples(name: str) -> None:
    topo = examples.get(name)
    derived, ambiguous = Derivation(topo, downstream=True, multifunction=True).groups()
    assert not ambiguous
    result = what_if(topo, [OVERRIDE])
    assert result.after.partition() == derived
    assert set(result.after.ungrouped) == set(result.before.ungrouped)


def test_override_on_desktop_by_hand() -> None:
    groups = {tuple(sorted(m[5:] for m in g)) for g in override_groups(examples.desktop())}
    shared = {g for g in groups if len(g) > 1}
    # only DMA aliases (PCIe-to-PCI bridge) and conventional PCI still bind
    assert shared == {("00:1e.0", "05:01.0", "05:02.0"), ("00:1f.0", "00:1f.2", "00:1f.3")}


def test_override_on_d05_isolates_every_translated_device() -> None:
    result = what_if(examples.d05(), [OVERRIDE])
    assert all(len(g) == 1 for g in result.after.groups.values())
    assert result.after.group_of("0007:91:00.0") is None  # no SMMU: still no group


_SETTINGS = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@_SETTINGS
@given(topologies(max_functions=24))
def test_override_on_random_topologies(topo: Topology) -> None:
    derived, ambiguous = Derivation(topo, downstream=True, multifunction=True).groups()
    check_against(derived, ambiguous, override_groups(topo))


@_SETTINGS
@given(topologies(max_functions=24, aliases=False))
def test_override_on_random_topologies_without_aliases_is_exact(topo: Topology) -> None:
    derived, ambiguous = Derivation(topo, downstream=True, multifunction=True).groups()
    assert not ambiguous
    assert override_groups(topo) == derived


@_SETTINGS
@given(topologies(max_functions=24))
def test_derivation_without_override_on_random_topologies(topo: Topology) -> None:
    derived, ambiguous = Derivation(topo).groups()
    check_against(derived, ambiguous, canonical_groups(topo).partition())


@_SETTINGS
@given(topologies(max_functions=24), st.booleans(), st.booleans())
def test_each_override_mode_on_random_topologies(
    topo: Topology, downstream: bool, multifunction: bool
) -> None:
    modes = [m for m, on in (("downstream", downstream), ("multifunction", multifunction)) if on]
    derived, ambiguous = Derivation(
        topo, downstream=downstream, multifunction=multifunction
    ).groups()
    got = what_if(topo, [AcsOverride(modes)] if modes else []).after.partition()
    check_against(derived, ambiguous, got)


# ============================================================================
# AcsOverride: the patch's exact conditions
# ============================================================================


def _topo(*fns: PciFunction) -> Topology:
    return Topology(list(fns))


def test_override_leaves_ports_that_have_an_acs_capability() -> None:
    # the patch: "Never override ACS for legacy devices or devices with ACS caps"
    off = Acs(cap=FULL, ctrl=AcsFlags.NONE)
    topo = _topo(bridge("00:1c.0", 1, acs=off), ep("01:00.0"), bridge("00:1d.0", 2), ep("02:00.0"))
    result = what_if(topo, [AcsOverride("downstream")])
    assert result.after.same_group("00:1c.0", "01:00.0")
    assert not result.after.same_group("00:1d.0", "02:00.0")
    assert any("0000:00:1c.0" in n and "does not touch it" in n for n in result.notes)


def test_override_comes_after_the_kernel_quirks() -> None:
    # an unlisted Zhaoxin port: the kernel quirk answers "not enabled" first
    zx = bridge("00:1c.0", 1, vendor=0x1D17, device=0x0001)
    topo = _topo(zx, ep("01:00.0"))
    assert what_if(topo, [OVERRIDE]).after.same_group("00:1c.0", "01:00.0")
    # the same port with neutral ids is overridden
    neutral = _topo(bridge("00:1c.0", 1), ep("01:00.0"))
    assert not what_if(neutral, [OVERRIDE]).after.same_group("00:1c.0", "01:00.0")


def test_override_never_touches_conventional_pci_or_pcie_to_pci_bridges() -> None:
    result = what_if(examples.desktop(), [OVERRIDE])
    assert result.device("00:1f.0").status is DeviceStatus.UNCHANGED
    assert result.device("05:01.0").status is DeviceStatus.UNCHANGED
    assert result.after.same_group("00:1e.0", "05:02.0")


def test_override_downstream_alone_leaves_multifunction_endpoints() -> None:
    result = what_if(examples.desktop(), [AcsOverride(["downstream"])])
    assert result.after.same_group("01:00.0", "01:00.1")
    assert not result.after.same_group("00:02.0", "02:00.0")


def test_override_multifunction_alone_leaves_ports_and_single_functions() -> None:
    result = what_if(examples.desktop(), [AcsOverride("multifunction")])
    assert not result.after.same_group("01:00.0", "01:00.1")
    assert result.after.same_group("00:02.0", "02:00.0")  # a port: downstream's business
    assert result.after.same_group("07:08.0", "08:00.0")


def test_override_multifunction_uses_the_kernels_flag() -> None:
    # function 1 without the header bit still counts: the slot scan sets it (R5.6)
    topo = _topo(bridge("00:1c.0", 1, acs=ISOLATING), ep("01:00.0", mf=True), ep("01:00.1"))
    assert canonical_groups(topo).same_group("01:00.0", "01:00.1")
    result = what_if(topo, [AcsOverride("multifunction")])
    assert not result.after.same_group("01:00.0", "01:00.1")


def test_override_by_id_applies_to_that_id_only() -> None:
    result = what_if(examples.desktop(), ["acs-override=id:10de:1b80"])
    # 01:00.0 counts as isolated: neither function finds the other (R5.2 needs both)
    assert not result.after.same_group("01:00.0", "01:00.1")
    assert result.after.same_group("00:02.0", "02:00.0")
    assert AcsOverride("id:10DE:1B80").ids == frozenset({(0x10DE, 0x1B80)})


def test_override_notes_unknown_acs() -> None:
    port = attrs.evolve(bridge("00:1c.0", 1), unknown=frozenset({"acs"}))
    result = what_if(_topo(port, ep("01:00.0")), [OVERRIDE])
    assert any("could not be read" in n for n in result.notes)


@pytest.mark.parametrize(
    "modes",
    ["", "upstream", "id:8086", "id:86:1234", "id:8086:12345", "downstream,bogus"],
)
def test_override_rejects_bad_modes(modes: str) -> None:
    with pytest.raises(WhatIfError):
        AcsOverride(modes)


def test_override_keeps_at_most_fifteen_ids() -> None:
    ids = [f"id:8086:{i:04x}" for i in range(16)]
    AcsOverride(ids[:15])
    with pytest.raises(WhatIfError, match="15"):
        AcsOverride(ids)


# ============================================================================
# ConfigAcs
# ============================================================================


def _cfg_topo(
    ctrl: AcsFlags = AcsFlags.NONE, *, vendor: int = 0x1B36, device: int = 0x0C
) -> Topology:
    acs = Acs(cap=FULL | AcsFlags.TB, ctrl=ctrl)
    port = bridge("00:1c.0", 1, acs=acs, vendor=vendor, device=device)
    return _topo(port, ep("01:00.0"), bridge("00:1d.0", 2), ep("02:00.0"))


def _ctrl(topo: Topology, address: str) -> AcsFlags | None:
    acs = topo.get(address).acs
    return None if acs is None else acs.ctrl


def test_config_acs_enables_controls() -> None:
    result = what_if(_cfg_topo(), ["config-acs=11101@00:1c.0"])
    assert result.device("01:00.0").status is DeviceStatus.SPLIT
    assert result.topology_after.get("00:1c.0").acs == Acs(FULL | AcsFlags.TB, FULL)
    assert result.upstream
    assert result.labels == ()


def test_config_acs_disables_controls() -> None:
    result = what_if(_cfg_topo(FULL), ["config-acs=0xx@00:1c.0"])  # RR off
    assert result.device("01:00.0").status is DeviceStatus.MERGED
    assert _ctrl(result.topology_after, "00:1c.0") == FULL & ~AcsFlags.RR


def test_config_acs_x_bits_take_the_firmware_value() -> None:
    spec = "1x1x1@00:1c.0"  # SV, RR, UF on; TB and CR unchanged
    recorded = what_if(_cfg_topo(FULL), [f"config-acs={spec}"])
    assert recorded.device("01:00.0").status is DeviceStatus.UNCHANGED
    firmware_off = what_if(_cfg_topo(FULL), [ConfigAcs(spec, firmware_ctrl=AcsFlags.NONE)])
    assert firmware_off.device("01:00.0").status is DeviceStatus.MERGED  # CR from firmware: off


def test_config_acs_first_matching_entry_wins() -> None:
    result = what_if(_cfg_topo(), ["config-acs=11111@00:1c.0;00000@00:1c.0"])
    assert _ctrl(result.topology_after, "00:1c.0") == FULL | AcsFlags.TB


def test_config_acs_device_forms() -> None:
    topo = _cfg_topo()
    for spec in ("11111@pci:0:0", "11111@pci:1b36:c", "11111@0000:00:1c.0", "1@pci:1b36:c:0:0"):
        ctrl = _ctrl(apply_changes(topo, [ConfigAcs(spec)]).topology, "00:1c.0")
        assert ctrl is not None, spec
        assert AcsFlags.SV in ctrl, spec
    assert apply_changes(topo, [ConfigAcs("11111@pci:8086:0")]).notes  # matches nothing


def test_config_acs_path_form() -> None:
    # 01:00.0 reached as "the device 00.0 below 00:1c.0"
    dev = attrs.evolve(ep("01:00.0", mf=True), acs=Acs(cap=FULL, ctrl=AcsFlags.NONE))
    topo = _topo(bridge("00:1c.0", 1, acs=ISOLATING), dev)
    out = apply_changes(topo, [ConfigAcs("11111@00:1c.0/00.0")]).topology
    assert out.get("01:00.0").acs == Acs(FULL, FULL)
    miss = apply_changes(topo, [ConfigAcs("11111@00:1d.0/00.0")])
    assert miss.topology.get("01:00.0").acs == Acs(FULL, AcsFlags.NONE)


def test_config_acs_ignores_devices_without_acs_and_masks_with_cap() -> None:
    topo = _topo(
        bridge("00:1c.0", 1, acs=Acs(cap=AcsFlags.SV | AcsFlags.RR, ctrl=AcsFlags.NONE)),
        ep("01:00.0"),
        bridge("00:1d.0", 2),
    )
    out = apply_changes(topo, [ConfigAcs("1111111@pci:0:0")])
    assert out.topology.get("00:1c.0").acs == Acs(
        AcsFlags.SV | AcsFlags.RR, AcsFlags.SV | AcsFlags.RR
    )
    assert out.topology.get("00:1d.0").acs is None
    assert any("00:1d.0" in n and "without an ACS capability" in n for n in out.notes)


def test_config_acs_on_intel_spt_ports_clears_redirect() -> None:
    topo = _cfg_topo(vendor=0x8086, device=0xA110)
    assert not canonical_groups(topo).same_group("00:1c.0", "01:00.0")  # enable quirk
    result = what_if(topo, ["config-acs=1111111@00:1c.0"])
    assert result.after.same_group("00:1c.0", "01:00.0")  # RR, CR cleared
    assert any("Sunrise Point" in n for n in result.notes)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("00:1c.0", "flags missing"),
        ("1x2@00:1c.0", "not 0, 1 or x"),
        ("10000000@00:1c.0", "bit 7"),
        ("1@zz", "cannot parse the device"),
        ("1@00:1c.0,1@00:1d.0", "','"),
        ("1@00:3c.0", "above 1f"),
    ],
)
def test_config_acs_errors(spec: str, message: str) -> None:
    with pytest.raises(WhatIfError, match=message):
        ConfigAcs(spec)


# ============================================================================
# SetAcs, RemoveAcs, AddQuirk, RemoveDevice
# ============================================================================


def test_set_acs_splits_below_a_port() -> None:
    result = what_if(examples.desktop(), ["set-acs=00:02.0:SV|RR|CR|UF"])
    assert result.device("02:00.0").status is DeviceStatus.SPLIT
    assert result.companions("02:00.0").left == ("0000:00:02.0",)
    assert result.device("02:00.0").left_count == 1
    assert result.topology_after.get("00:02.0").acs == Acs(FULL, FULL)


def test_set_acs_defaults() -> None:
    topo = examples.desktop()
    assert apply_changes(topo, [SetAcs("00:02.0")]).topology.get("00:02.0").acs == Acs(FULL, FULL)
    partial = _cfg_topo(AcsFlags.SV)
    got = apply_changes(partial, [SetAcs("00:1c.0")]).topology.get("00:1c.0").acs
    assert got == Acs(FULL | AcsFlags.TB, FULL)  # what the kernel enables (R2.7)
    only_cap = apply_changes(topo, [SetAcs("00:02.0", cap="SV|RR")]).topology.get("00:02.0")
    assert only_cap.acs == Acs(AcsFlags.SV | AcsFlags.RR, AcsFlags.SV | AcsFlags.RR)


def test_set_acs_errors() -> None:
    with pytest.raises(WhatIfError, match="conventional PCI"):
        apply_changes(examples.desktop(), ["set-acs=00:1f.0"])
    with pytest.raises(WhatIfError, match="no PCI function"):
        apply_changes(examples.desktop(), ["set-acs=00:09.0"])
    with pytest.raises(WhatIfError, match="does not implement"):
        SetAcs("00:02.0", ctrl="SV|RR", cap="SV")
    with pytest.raises(WhatIfError, match="unknown ACS flag"):
        SetAcs("00:02.0", ctrl="SV|XX")


def test_remove_acs_merges() -> None:
    result = what_if(examples.desktop(), [RemoveAcs("00:01.0")])
    assert result.device("00:01.0").status is DeviceStatus.MERGED
    assert result.companions("00:01.0").joined == ("0000:01:00.0", "0000:01:00.1")
    assert result.device("00:01.0").joined_count == 2
    assert [g.kind for g in result.groups if g.kind != "unchanged"] == ["merged"]
    with pytest.raises(WhatIfError, match="no ACS capability"):
        apply_changes(examples.desktop(), ["remove-acs=00:02.0"])


def test_add_acs_quirk() -> None:
    change = AddQuirk(AcsQuirk.isolated(0x10DE, None))
    result = what_if(examples.desktop(), [change])
    assert not result.after.same_group("01:00.0", "01:00.1")
    assert not change.upstream
    assert result.labels == ((change.label, change.cost),)
    merged = AddQuirk(AcsQuirk.isolated(0x10DE, None), upstream=True)
    assert what_if(examples.desktop(), [merged]).labels == ()


def test_add_not_isolated_quirk_merges() -> None:
    result = what_if(examples.desktop(), ["quirk=not-isolated:1b36:000c"])  # every port
    assert result.after.same_group("00:01.0", "01:00.0")
    assert "not isolating" in result.changes[0].cost


def test_add_dma_alias_quirk_merges() -> None:
    # the host bridge 00:00.0 also DMAs as 00:1f.0
    result = what_if(examples.desktop(), ["quirk=dma-alias:1b36:0008:1f.0"])
    assert result.after.same_group("00:00.0", "00:1f.0")
    assert result.device("00:00.0").status is DeviceStatus.MERGED
    slot_fn = parse_change("quirk=dma-alias:1b4b:9230:fn1:upstream")
    assert isinstance(slot_fn, AddQuirk)
    assert slot_fn.upstream
    assert slot_fn.quirk == DmaAliasQuirk(
        0x1B4B, 0x9230, kind=DmaAliasKind.SLOT_FUNCTION, functions={1}
    )


def test_remove_a_function() -> None:
    result = what_if(examples.desktop(), ["remove=01:00.1"])
    assert result.removed == ("0000:01:00.1",)
    d = result.device("01:00.0")
    assert d.status is DeviceStatus.SPLIT
    assert result.companions("01:00.0").removed == ("0000:01:00.1",)
    assert not result.companions("01:00.0").left
    assert (d.removed_count, d.left_count, d.joined_count) == (1, 0, 0)
    assert result.device("01:00.1").status is DeviceStatus.REMOVED
    assert "shrunk" in {g.kind for g in result.groups}


def test_remove_function_zero_takes_the_slot_and_below() -> None:
    result = what_if(examples.desktop(), ["remove=00:1c.0"])
    assert result.removed == ("0000:00:1c.0", "0000:00:1c.1", "0000:03:00.0", "0000:04:00.0")
    assert any("function 0 takes the rest" in n for n in result.notes)
    assert [g.kind for g in result.groups if g.kind != "unchanged"] == ["gone"]


def test_remove_a_switch_and_a_slot() -> None:
    result = what_if(examples.desktop(), ["remove=00:03.0"])
    assert set(result.removed) == {
        "0000:00:03.0", "0000:06:00.0", "0000:07:08.0", "0000:07:09.0", "0000:07:0a.0",
        "0000:08:00.0", "0000:09:00.0", "0000:0a:00.0", "0000:0a:00.1",
    }  # fmt: skip
    assert what_if(examples.desktop(), ["remove=0a:00"]).removed == (
        "0000:0a:00.0",
        "0000:0a:00.1",
    )
    with pytest.raises(WhatIfError, match="no device in slot"):
        apply_changes(examples.desktop(), ["remove=0a:05"])


def test_remove_a_pf_takes_its_vfs() -> None:
    pf = attrs.evolve(
        ep("01:00.0"),
        sriov=SriovCapability(total_vfs=2, num_vfs=2, offset=0x80, stride=1, vf_device=0x11),
    )
    vfs = [ep(f"01:10.{i}", physfn="01:00.0") for i in range(2)]
    topo = _topo(bridge("00:1c.0", 1, acs=ISOLATING), pf, *vfs)
    assert apply_changes(topo, ["remove=01:00.0"]).removed == {
        PciAddress.parse(a) for a in ("01:00.0", "01:10.0", "01:10.1")
    }
    assert apply_changes(topo, ["remove=01:10.1"]).removed == {PciAddress.parse("01:10.1")}


# ============================================================================
# MoveCard
# ============================================================================


def _desktop_with_spare_ports() -> Topology:
    topo = examples.desktop()
    return topo.replace(
        functions=[
            *topo.functions,
            bridge("00:1d.0", 0x0B, acs=ISOLATING),
            bridge("00:1d.1", 0x0C, 0x10, acs=ISOLATING, mf=True),
        ]
    )


def test_move_a_card_below_an_isolating_port() -> None:
    result = what_if(_desktop_with_spare_ports(), ["move=02:00=>00:1d.0"])
    assert result.renamed == {"0000:02:00.0": "0000:0b:00.0"}
    d = result.device("0b:00.0")
    assert d.was == "0000:02:00.0"
    assert d.status is DeviceStatus.SPLIT
    assert result.device("02:00.0") == d  # found by its old name too
    assert result.topology_after.get("0b:00.0").vendor == 0x144D


def test_move_a_switch_card_renumbers_its_buses() -> None:
    topo = _desktop_with_spare_ports()
    applied = apply_changes(topo, [MoveCard("06:00", "00:1d.1")])
    new = applied.topology
    usp = new.get("0c:00.0")
    assert (usp.pcie_type, usp.secondary_bus, usp.subordinate_bus) == (
        PcieType.UPSTREAM,
        0xD,
        0x10,
    )
    assert {str(a): str(b) for a, b in applied.renamed.items()} == {
        "0000:06:00.0": "0000:0c:00.0", "0000:07:08.0": "0000:0d:08.0",
        "0000:07:09.0": "0000:0d:09.0", "0000:07:0a.0": "0000:0d:0a.0",
        "0000:08:00.0": "0000:0e:00.0", "0000:09:00.0": "0000:0f:00.0",
        "0000:0a:00.0": "0000:10:00.0", "0000:0a:00.1": "0000:10:00.1",
    }  # fmt: skip
    assert len(new) == len(topo)
    groups = canonical_groups(new)
    assert groups.same_group("0d:08.0", "0e:00.0")
    assert groups.same_group("10:00.0", "10:00.1")


def test_move_vfs_follow_their_pf() -> None:
    pf = attrs.evolve(
        ep("01:00.0"),
        sriov=SriovCapability(total_vfs=4, num_vfs=3, offset=0xFF, stride=1, vf_device=0x11),
    )
    # VFs at routing ids 0x0100 + 0xff ...: 01:1f.7, then 02:00.0 and 02:00.1 (a virtual bus)
    vfs = [ep(a, physfn="01:00.0") for a in ("01:1f.7", "02:00.0", "02:00.1")]
    topo = _topo(bridge("00:1c.0", 1, 2), pf, *vfs, bridge("00:1d.0", 3, 5, acs=ISOLATING))
    new = apply_changes(topo, ["move=01:00=>00:1d.0"]).topology
    assert new.get("03:00.0").sriov == pf.sriov
    moved = new.vfs_of(PciAddress.parse("03:00.0"))
    assert [str(v.address) for v in moved] == ["0000:03:1f.7", "0000:04:00.0", "0000:04:00.1"]
    assert new.parent_bus(0, 4) == 3  # a virtual bus below the PF's


def test_move_refuses_an_occupied_port() -> None:
    topo = apply_changes(_desktop_with_spare_ports(), ["move=09:00=>00:1d.0"]).topology
    with pytest.raises(WhatIfError, match="occupied: 0000:0b:00.0"):
        apply_changes(topo, ["move=02:00=>00:1d.0"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("move=06:00=>00:1d.0", "no room"),
        ("move=02:00=>02:00.0", "not a bridge"),
        ("move=00:1f=>00:1d.0", "root bus"),
        ("move=07:08=>07:0a.0", "occupied"),
        ("move=06:00=>07:08.0", "on the card"),
        ("move=02:00=>00:02.0", "already below"),
        ("move=02:05=>00:1d.0", "no device in slot"),
        ("move=02:00=>00:09.0", "no PCI function"),
    ],
)
def test_move_refusals(text: str, message: str) -> None:
    with pytest.raises(WhatIfError, match=message):
        apply_changes(_desktop_with_spare_ports(), [text])


def _with_spare_domain(topo: Topology) -> tuple[Topology, PciAddress]:
    spare = bridge("0020:00:01.0", 1, 0xFF, acs=ISOLATING)
    return topo.replace(functions=[*topo.functions, spare]), spare.address


@_SETTINGS
@given(topologies(max_functions=24), st.data())
def test_move_any_card_gives_a_valid_topology(topo: Topology, data: st.DataObject) -> None:
    topo, port = _with_spare_domain(topo)
    slots = sorted(
        {
            Slot(f.address.domain, f.address.bus, f.address.device)
            for f in topo.functions
            if not f.is_virtfn and not topo.is_root_bus(f.address.domain, f.address.bus)
        }
    )
    if not slots:
        return
    slot = data.draw(st.sampled_from(slots))
    applied = apply_changes(topo, [MoveCard(slot, port)])
    new = applied.topology  # constructed, hence validated
    assert len(new) == len(topo)
    assert not applied.removed
    renamed = applied.renamed
    assert len(set(renamed.values())) == len(renamed)
    card = [a for a in renamed if (a.domain, a.bus, a.device) == tuple(slot)]
    assert card
    assert all(renamed[a].bus == 1 and renamed[a].device == 0 for a in card)
    for old, addr in renamed.items():
        before, after = topo.get(old), new.get(addr)
        assert after.vendor == before.vendor
        assert after.acs == before.acs
        if not after.is_virtfn:
            assert new.bridge_above(addr) is not None
        if before.physfn is not None:  # a VF keeps its offset from its PF
            assert after.physfn is not None
            pf_old, pf_new = topo.get(before.physfn), new.get(after.physfn)
            assert addr.rid - pf_new.address.rid == old.rid - pf_old.address.rid
        if before.is_bridge:  # same subtree below, renamed
            below_old = {f.address for f in topo.functions if _inside(topo, before, f.address)}
            below_new = {f.address for f in new.functions if _inside(new, after, f.address)}
            assert {renamed.get(a, a) for a in below_old} == below_new
    # unmoved devices keep their addresses and fields
    for f in topo.functions:
        if f.address not in renamed:
            assert new.get(f.address) == f
    assert not what_if(topo, [MoveCard(slot, port)]).after.ungrouped


def _inside(topo: Topology, br: PciFunction, addr: PciAddress) -> bool:
    lo, hi = br.secondary_bus or 0, br.subordinate_bus or 0
    return addr.domain == br.address.domain and lo <= addr.bus <= hi


# ============================================================================
# parse_change
# ============================================================================


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (OVERRIDE, AcsOverride(("downstream", "multifunction"))),
        ("pcie_acs_override=downstream", AcsOverride("downstream")),
        ("acs-override=id:8086:1234", AcsOverride("id:8086:1234")),
        ("config-acs=1x1x1@00:1c.0", ConfigAcs("1x1x1@00:1c.0")),
        ("pci=config_acs=101@pci:8086:0", ConfigAcs("101@pci:8086:0")),
        ("set-acs=00:1c.0:SV|RR|CR|UF", SetAcs("00:1c.0", FULL)),
        ("set-acs=0000:00:1c.0", SetAcs("00:1c.0")),
        ("set-acs=00:1c.0::SV|RR", SetAcs("00:1c.0", cap=AcsFlags.SV | AcsFlags.RR)),
        ("set-acs=00:1c.0:SV|RR:SV|RR|CR", SetAcs("00:1c.0", "SV|RR", "SV|RR|CR")),
        ("remove-acs=00:1c.0", RemoveAcs("00:1c.0")),
        ("remove=01:00.0", RemoveDevice("01:00.0")),
        ("remove=01:00", RemoveDevice("01:00.0", whole_slot=True)),
        ("move=01:00=>00:1c.4", MoveCard("01:00", "00:1c.4")),
        (" move = 0001:01:00 -> 00:1c.4 ", MoveCard(Slot(1, 1, 0), "00:1c.4")),
        ("quirk=isolated:8086:1234", AddQuirk(AcsQuirk.isolated(0x8086, 0x1234))),
        ("quirk=isolated:8086:*:upstream", AddQuirk(AcsQuirk.isolated(0x8086, None), True)),
        ("quirk=not-isolated:1b36:000c", AddQuirk(AcsQuirk.not_isolated(0x1B36, 0x000C))),
        (
            "quirk=dma-alias:1b36:0008:1f.0,00.3",
            AddQuirk(DmaAliasQuirk(0x1B36, 0x0008, devfns={0xF8, 0x03})),
        ),
    ],
)
def test_parse_change(text: str, want: Change) -> None:
    got = parse_change(text)
    assert got == want
    assert parse_change(got.text) == got  # the text form round-trips


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a change"),
        ("downstream", "not a change"),
        ("frobnicate=1", "not a change"),
        ("acs-override=", "unknown mode"),
        ("acs-override=downstream;multifunction", "unknown mode"),
        ("config-acs=1@", "cannot parse the device"),
        ("set-acs=00:1c", "cannot parse"),
        ("set-acs=00:1c.0:SV|XY", "unknown ACS flag"),
        ("remove-acs=00:1c", "not a PCI address"),
        ("remove=1:2:3:4", "not a PCI slot"),
        ("move=01:00", "no '=>'"),
        ("move=01:00=>00:1c", "not a PCI address"),
        ("move=zz=>00:1c.0", "not a PCI slot"),
        ("quirk=isolated:8086", "cannot parse"),
        ("quirk=isolated:8086:1234:fn1", "takes no aliases"),
        ("quirk=dma-alias:8086:1234", "needs its aliases"),
        ("quirk=dma-alias:8086:1234:fn9", "not fnN or SS.F"),
        ("quirk=dma-alias:8086:1234:fn1,00.1", "not both"),
    ],
)
def test_parse_change_errors(text: str, message: str) -> None:
    with pytest.raises(WhatIfError, match=message) as info:
        parse_change(text)
    assert isinstance(info.value, IommuGroupsError)
    assert isinstance(info.value, ValueError)


def test_parse_errors_name_the_grammar() -> None:
    with pytest.raises(WhatIfError, match=r"grammar: move=SLOT@PORT"):
        parse_change("move=01:00")


# ============================================================================
# Labels, JSON, text
# ============================================================================


def test_upstream_labels() -> None:
    changes = [
        parse_change(OVERRIDE),
        parse_change("config-acs=1@00:1c.0"),
        parse_change("set-acs=00:1c.0"),
        parse_change("remove-acs=00:1c.0"),
        parse_change("quirk=isolated:8086:1234"),
        parse_change("quirk=isolated:8086:1234:upstream"),
        parse_change("remove=01:00.0"),
        parse_change("move=01:00=>00:1c.4"),
    ]
    assert [c.upstream for c in changes] == [False, True, True, True, False, True, True, True]
    for c in changes:
        assert c.label
        assert c.cost
        assert c.text
    assert "peer-to-peer DMA" in changes[0].cost
    assert "never merged upstream" in changes[0].cost


def test_labels_list_every_non_upstream_change_with_its_cost() -> None:
    result = what_if(examples.desktop(), [OVERRIDE, "set-acs=00:02.0", "quirk=isolated:10de:*"])
    assert [label for label, _ in result.labels] == [
        "pcie_acs_override=downstream,multifunction",
        "ACS quirk user_isolated_10de_*: 10de:* isolated",
    ]
    assert all(cost for _, cost in result.labels)
    assert not result.upstream


def test_to_json() -> None:
    result = what_if(_desktop_with_spare_ports(), [OVERRIDE, "move=02:00=>00:1d.0"])
    data = json.loads(json.dumps(result.to_json()))
    assert data["schema"] == WHATIF_SCHEMA == "iommugroups.whatif/2"
    assert data["upstream"] is False
    assert [c["kind"] for c in data["changes"]] == ["acs-override", "move"]
    assert data["labels"] == [{"label": result.changes[0].label, "cost": result.changes[0].cost}]
    assert data["renamed"] == {"0000:02:00.0": "0000:0b:00.0"}
    assert sum(data["counts"].values()) == len(data["devices"])
    entry = next(d for d in data["devices"] if d["device"] == "0000:0b:00.0")
    assert entry["was"] == "0000:02:00.0"
    assert entry["status"] == "split"
    assert {g["kind"] for g in data["groups"]} <= {
        "unchanged", "shrunk", "split", "merged", "regrouped", "gone", "new"
    }  # fmt: skip
    assert data["before"]["groups"]
    assert data["after"]["groups"]


def test_no_changes_changes_nothing() -> None:
    result = what_if(examples.desktop(), [])
    assert all(d.status is DeviceStatus.UNCHANGED for d in result.devices)
    assert {g.kind for g in result.groups} == {"unchanged"}
    assert result.upstream
    assert result.labels == ()


def test_render() -> None:
    text = render_whatif(what_if(examples.desktop(), [OVERRIDE, "remove=01:00.1"]))
    assert text.endswith("\n")
    assert "[NOT UPSTREAM] pcie_acs_override=downstream,multifunction" in text
    assert "[upstream] remove 0000:01:00.1" in text
    assert "split:" in text
    assert "0000:02:00.0  split" in text
    assert "removed: 0000:01:00.1" in text
    assert "patched" in text


def test_d05_moving_the_moschip_card_into_an_unmapped_segment_ungroups_it() -> None:
    result = what_if(examples.d05(), ["move=0002:f9:00=>0004:88:00.0"])
    d = result.device("0004:89:00.0")  # leaves 0002:f8:00.0 for 0004:88:00.0 (no ACS)
    assert d.status is DeviceStatus.REGROUPED
    who = result.companions("0004:89:00.0")
    assert (who.left, who.joined) == (("0002:f8:00.0",), ("0004:88:00.0",))
    assert (d.left_count, d.joined_count) == (1, 1)
    unmapped = what_if(examples.d05(), ["move=0002:f9:00=>0006:c0:00.0"])
    assert unmapped.device("0006:c1:00.0").status is DeviceStatus.NOW_UNGROUPED


def test_render_names_each_devices_groups() -> None:
    text = render_whatif(what_if(examples.desktop(), [OVERRIDE, "remove=01:00.1"]))
    assert re.search(r"^  0000:02:00\.0  split +group 2 -> \d+; left: 0000:00:02\.0$", text, re.M)
    assert re.search(r"^  0000:01:00\.1  removed +group 7 -> removed$", text, re.M)


def test_a_name_a_moved_device_takes_from_a_removed_one() -> None:
    """``0a:00.0`` is taken out, and the card of ``09:00`` moves into its slot."""
    result = what_if(examples.desktop(), ["remove=0a:00", "move=09:00@07:0a.0"])
    entries = [d for d in result.devices if d.device == "0000:0a:00.0"]
    assert [(d.status, d.was) for d in entries] == [
        (DeviceStatus.SPLIT, "0000:09:00.0"),
        (DeviceStatus.REMOVED, None),
    ]
    assert result.device("0a:00.0").was == "0000:09:00.0"  # the name after wins
    assert result.device("09:00.0").was == "0000:09:00.0"
    assert result.companions("09:00.0").left == ("0000:07:09.0",)  # R4.2: port without ACS


# ============================================================================
# The result's size: each group change once (issue 13)
# ============================================================================


def _pf_with_vfs(n: int) -> Topology:
    """A root port without ACS and one SR-IOV PF with ``n`` VFs: one group (R4.2)."""
    sriov = SriovCapability(total_vfs=n, num_vfs=n, offset=1, stride=1, vf_device=0x11)
    pf = attrs.evolve(ep("01:00.0", class_code=0x020000), sriov=sriov)
    vfs = [
        ep(str(PciAddress.from_devfn(0, 1 + (1 + i) // 256, (1 + i) % 256)), physfn="01:00.0")
        for i in range(n)
    ]
    return _topo(bridge("00:01.0", 1, 1 + n // 256), pf, *vfs)


def test_a_large_group_change_is_described_once() -> None:
    """The override isolates the port (downstream) and so every VF: 2 + n groups of one."""
    n = 300
    topo = _pf_with_vfs(n)
    result = what_if(topo, [OVERRIDE])
    assert len(result.before.groups) == 1
    assert len(result.after.groups) == n + 2
    [change] = result.groups
    assert change.kind == "split"
    assert [ds for _, ds in change.before] == [result.before.groups[0]]
    assert sorted(ds for _, ds in change.after) == sorted((str(f.address),) for f in topo)
    for d in result.devices:
        assert (d.status, d.match) == (DeviceStatus.SPLIT, 0)
        assert (d.left_count, d.joined_count, d.removed_count) == (n + 1, 0, 0)
    vf = str(topo.functions[-1].address)
    assert result.companions(vf).left == tuple(str(f.address) for f in topo.functions[:-1])


def test_what_if_json_and_text_grow_linearly_with_a_group() -> None:
    """Version 1 listed every former companion in every device's entry: 4x the
    devices made 16x the JSON. Now 4x the devices make at most 4x the JSON, and the
    text does not grow at all (the group change is summed up)."""
    small, large = (what_if(_pf_with_vfs(n), [OVERRIDE]) for n in (100, 400))
    size = [len(json.dumps(r.to_json())) for r in (small, large)]
    assert size[1] < 4.2 * size[0]
    text = [render_whatif(r) for r in (small, large)]
    assert len(text[1].splitlines()) == len(text[0].splitlines())
    summary = "and 401 more of group 0 before, in 402 groups after: 402 split, each now alone"
    assert summary in text[1]
    assert "after  ...: 396 more groups (396 devices, each alone)" in text[1]


def _companions_by_definition(
    result: WhatIfResult, name: str
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Who left, joined, was removed: set differences of the device's two groups."""
    d = result.device(name)
    before = result.before.groups[d.group_before] if d.group_before is not None else ()
    after = result.after.groups[d.group_after] if d.group_after is not None else ()
    me = d.was or d.device
    gone = set(result.removed)
    kept = {result.renamed.get(m, m) for m in before if m not in gone and m != me}
    mates = set(after) - {d.device}
    key = device_sort_key
    return (
        tuple(sorted(kept - mates, key=key)),
        tuple(sorted(mates - kept, key=key)),
        tuple(sorted((m for m in before if m in gone), key=key)),
    )


@_SETTINGS
@given(topologies(max_functions=24), st.data())
def test_each_device_and_group_change_as_the_groupings_define_them(
    topo: Topology, data: st.DataObject
) -> None:
    """Per device, the counts, the names and the status are those of its two groups;
    every group before and every group after is in exactly one change, the one its
    devices name."""
    topo, port = _with_spare_domain(topo)
    addresses = [str(f.address) for f in topo.functions if f.address != port]
    changes: list[Change | str] = []
    if data.draw(st.booleans(), label="override"):
        changes.append(OVERRIDE)
    if data.draw(st.booleans(), label="remove"):
        changes.append(f"remove={data.draw(st.sampled_from(addresses), label='removed')}")
    slots = sorted(
        {
            Slot(f.address.domain, f.address.bus, f.address.device)
            for f in topo.functions
            if not f.is_virtfn and not topo.is_root_bus(f.address.domain, f.address.bus)
        }
    )
    if slots and data.draw(st.booleans(), label="move"):
        changes.append(MoveCard(data.draw(st.sampled_from(slots), label="slot"), port))
    try:
        result = what_if(topo, changes)
    except WhatIfError:
        return  # a move of a card the removal took, or onto its own port
    seen_before: list[int] = []
    seen_after: list[int] = []
    for g in result.groups:
        seen_before += [gid for gid, _ in g.before]
        seen_after += [gid for gid, _ in g.after]
        assert [ds for _, ds in g.before] == [result.before.groups[gid] for gid, _ in g.before]
        assert [ds for _, ds in g.after] == [result.after.groups[gid] for gid, _ in g.after]
    assert sorted(seen_before) == sorted(result.before.groups)
    assert sorted(seen_after) == sorted(result.after.groups)
    gone = set(result.removed)
    for d in result.devices:
        if d.match is None:
            assert (d.group_before, d.group_after) == (None, None)
        else:
            g = result.groups[d.match]
            assert d.group_before in {gid for gid, _ in g.before} or (
                d.group_before is None and d.group_after in {gid for gid, _ in g.after}
            )
        if d.status is DeviceStatus.REMOVED:
            assert (d.was or d.device) in gone
            continue
        left, joined, removed = _companions_by_definition(result, d.was or d.device)
        if sum(1 for e in result.devices if e.device == d.device) == 1:
            assert tuple(result.companions(d.was or d.device)) == (left, joined, removed)
        assert (d.left_count, d.joined_count, d.removed_count) == (
            len(left),
            len(joined),
            len(removed),
        )
        if d.group_before is None:
            want = (
                DeviceStatus.NOW_GROUPED if d.group_after is not None else DeviceStatus.UNCHANGED
            )
        elif d.group_after is None:
            want = DeviceStatus.NOW_UNGROUPED
        elif (left or removed) and joined:
            want = DeviceStatus.REGROUPED
        elif left or removed:
            want = DeviceStatus.SPLIT
        else:
            want = DeviceStatus.MERGED if joined else DeviceStatus.UNCHANGED
        assert d.status is want


# ============================================================================
# Spellings that need no shell quoting (issue 12)
# ============================================================================

#: What a POSIX shell (bash, dash, zsh) treats specially in an unquoted word,
#: besides whitespace: pipes, redirections, lists, subshells, expansions,
#: quotes, globs, history, comments, brace expansion.
SHELL_METACHARACTERS = frozenset("|&;<>()$`\\\"'*?[]!#~{} \t\n")

#: Every kind of change with a spelling that needs no quoting, the older
#: spellings it still equals, and the change it means, built without the parser.
SHELL_SAFE: list[tuple[str, str, list[str], Change]] = [
    (
        "acs-override",
        "acs-override=downstream,multifunction,id:8086:1234",
        ["pcie_acs_override=downstream,multifunction,id:8086:1234"],
        AcsOverride(("downstream", "multifunction", "id:8086:1234")),
    ),
    (
        "config-acs",
        "config-acs=1x1x1@00:1c.0,101@pci:8086:0",
        ["config-acs=1x1x1@00:1c.0;101@pci:8086:0", "pci=config_acs=1x1x1@00:1c.0;101@pci:8086:0"],
        ConfigAcs("1x1x1@00:1c.0;101@pci:8086:0"),
    ),
    (
        "set-acs",
        "set-acs=00:1c.0:SV,RR,CR,UF",
        [
            "set-acs=00:1c.0:SV|RR|CR|UF",
            "set-acs=00:1c.0:SV+RR+CR+UF",
            "set-acs=00:1c.0:UF|CR,RR+SV",
        ],
        SetAcs("00:1c.0", FULL),
    ),
    (
        "set-acs",
        "set-acs=00:1c.0:SV,RR:SV,TB,RR,CR",
        ["set-acs=00:1c.0:SV|RR:SV|TB|RR|CR", "set-acs=00:1c.0:SV+RR:SV+TB+RR+CR"],
        SetAcs(
            "00:1c.0",
            AcsFlags.SV | AcsFlags.RR,
            AcsFlags.SV | AcsFlags.TB | AcsFlags.RR | AcsFlags.CR,
        ),
    ),
    (
        "set-acs",
        "set-acs=00:1c.0:-:SV,RR",
        ["set-acs=00:1c.0:-:SV|RR"],
        SetAcs("00:1c.0", AcsFlags.NONE, AcsFlags.SV | AcsFlags.RR),
    ),
    (
        "pci=config_acs",
        "pci=config_acs=1x1x1@00:1c.0",
        ["config_acs=1x1x1@00:1c.0"],
        ConfigAcs("1x1x1@00:1c.0"),
    ),
    ("remove-acs", "remove-acs=00:1c.0", [], RemoveAcs("00:1c.0")),
    ("remove", "remove=01:00", [], RemoveDevice("01:00.0", whole_slot=True)),
    (
        "move",
        "move=09:00@07:0a.0",
        ["move=09:00=>07:0a.0", "move=09:00->07:0a.0", " move = 0000:09:00 => 0000:07:0a.0 "],
        MoveCard(Slot(0, 9, 0), "07:0a.0"),
    ),
    (
        "move",
        "move=0002:f9:00@0004:88:00.0",
        ["move=0002:f9:00=>0004:88:00.0"],
        MoveCard(Slot(2, 0xF9, 0), "0004:88:00.0"),
    ),
    (
        "quirk",
        "quirk=isolated:10de:any:upstream",
        ["quirk=isolated:10de:*:upstream", "quirk=isolated:10de:ANY:upstream"],
        AddQuirk(AcsQuirk.isolated(0x10DE, None), upstream=True),
    ),
    (
        "quirk",
        "quirk=dma-alias:1b4b:9230:fn0,fn1",
        [],
        AddQuirk(DmaAliasQuirk(0x1B4B, 0x9230, kind=DmaAliasKind.SLOT_FUNCTION, functions={0, 1})),
    ),
    (
        "reachable-set",
        "reachable-set=no-acs-enhanced,no-mmio@00:1e.0",
        ["reachable_set=no-acs-enhanced,no-mmio@0000:00:1e.0"],
        ReachableSet("no-acs-enhanced,no-mmio@00:1e.0"),
    ),
    ("grouping", "grouping=reachable-set", ["reachable-set"], ReachableSet()),
]


def test_every_kind_of_change_has_a_shell_safe_spelling() -> None:
    assert {kind for kind, *_ in SHELL_SAFE} == set(_KEYS.values())
    for _, safe, _, _ in SHELL_SAFE:
        assert not SHELL_METACHARACTERS & set(safe), safe


@pytest.mark.parametrize(("kind", "safe", "older", "want"), SHELL_SAFE, ids=lambda v: str(v))
def test_shell_safe_spellings_mean_what_the_older_ones_do(
    kind: str, safe: str, older: list[str], want: Change
) -> None:
    got = parse_change(safe)
    assert got == want
    assert got.kind == {"grouping": "reachable-set", "pci=config_acs": "config-acs"}.get(
        kind, kind
    )
    for text in older:
        assert parse_change(text) == want, text


def test_shell_safe_spellings_are_one_word_each_in_a_real_shell(tmp_path: Path) -> None:
    """Typed unquoted, each is one argument, unchanged, and the shell creates no file."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash on this machine")
    words = [safe for _, safe, _, _ in SHELL_SAFE]
    done = subprocess.run(
        [bash, "-c", "printf '%s\\n' " + " ".join(words)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines() == words
    assert list(tmp_path.iterdir()) == []


def test_the_older_spellings_do_need_quotes(tmp_path: Path) -> None:
    """Why the new spellings exist: bash reads '|' as a pipe and '>' as a redirection."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash on this machine")
    done = subprocess.run(
        [bash, "-c", "printf '%s\\n' move=09:00=>07:0a.0 set-acs=00:1c.0:SV|cat"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert [p.name for p in tmp_path.iterdir()] == ["07:0a.0"]  # the redirection's file
    assert "move=09:00=>07:0a.0" not in done.stdout
    assert "set-acs=00:1c.0:SV|cat" not in done.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("move=09:00:07:0a.0", "':' cannot separate them"),
        ("move=09:00", "no '@'"),
        ("move=09:00@07:0a", "not a PCI address"),
        ("set-acs=00:1c.0:SV,XY", "unknown ACS flag 'XY'"),
        ("set-acs=00:1c.0:SV,RR:SV", "does not implement"),
        ("pci=config_acs=1@00:1c.0,1@00:1d.0", "contains ','"),
        ("quirk=isolated:10de:anything", "cannot parse"),
    ],
)
def test_shell_safe_spelling_errors(text: str, message: str) -> None:
    with pytest.raises(WhatIfError, match=message):
        parse_change(text)


@pytest.mark.parametrize(
    "changes",
    [[OVERRIDE, "remove=01:00.1"], ["remove=0a:00", "move=09:00@07:0a.0"], ["reachable-set"]],
    ids=["override", "move", "reachable-set"],
)
def test_cli_json_is_written_as_json_dumps_writes_the_document(
    changes: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``what-if --json`` writes the document entry by entry; the text is exactly
    ``json.dumps(doc, indent=2)`` of the API's document with the kernel added."""
    assert main(["what-if", "--example", "desktop", *changes, "--json"]) == 0
    out = capsys.readouterr().out
    doc = what_if(examples.desktop(), changes).to_json()
    want = {"schema": doc.pop("schema"), "kernel": json.loads(out)["kernel"], **doc}
    assert out == json.dumps(want, indent=2) + "\n"
