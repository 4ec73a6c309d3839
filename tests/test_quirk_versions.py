"""The kernel's quirk tables by version (R2.2, R2.5, R2.6, R3.4, R3.5).

Every entry of the quirk tables carries the kernels it is in
(:class:`QuirkVersions`); ``Quirks.for_kernel`` gives a kernel's tables.
What each modelled kernel has is read from its source tree by
``tools/date_quirks.py`` (committed result: ``tools/quirk_dates.json``);
the tests below check a few of its findings against ``grep`` on the trees,
the model's tables against all of them, and the fail-closed rule for a
kernel where an entry's presence is not known.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from iommugroups import canonical_groups
from iommugroups._boot.scenario import Scenario
from iommugroups._boot.simulator import Simulator
from iommugroups._boot.strategies.registry import STRATEGIES
from iommugroups._kernel import quirk_tables as T
from iommugroups._kernel.model import Acs, AcsFlags, PcieType, PciFunction, Topology
from iommugroups._kernel.quirks import (
    DEFAULT_QUIRKS,
    KERNEL_QUIRK_DATES,
    QuirkContext,
    Quirks,
    QuirkVersions,
    kernel_quirks,
    make_context,
)
from iommugroups._kernel.version import MODELLED, NEWEST, KernelVersion

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "date_quirks.py"
COMMITTED = ROOT / "tools" / "quirk_dates.json"
TREES = [(str(v), Path.home() / "kernel-src" / f"linux-{v}") for v in MODELLED]

EVERY = ("6.1", "6.12", "7.2", "7.3")
REQ = AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF
V = KernelVersion


@functools.lru_cache(maxsize=1)
def _tool() -> ModuleType:
    """``tools/date_quirks.py``, imported from its path."""
    spec = importlib.util.spec_from_file_location("date_quirks", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=1)
def _dated() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(COMMITTED.read_text())
    return data


def _trees_of(kind: str, function: str, vendor: str, device: str) -> list[str]:
    """The trees the committed extraction found an entry in."""
    found = [
        e["trees"]
        for e in _dated()["entries"]
        if (e["kind"], e["function"], e["vendor"], e["device"]) == (kind, function, vendor, device)
    ]
    assert len(found) == 1, (kind, function, vendor, device)
    trees: list[str] = found[0]
    return trees


# --- the dating script, checked by hand ----------------------------------------------


def test_the_trees_are_debians_latest_stable_updates() -> None:
    # The Makefiles: VERSION, PATCHLEVEL, SUBLEVEL of the unpacked trees.
    assert _dated()["trees"] == {
        "6.1": "6.1.176",
        "6.12": "6.12.117",
        "7.2": "7.2.13",
        "7.3": "7.3.4",
    }


@pytest.mark.parametrize(
    ("entry", "trees"),
    [
        # grep -c 'PCI_VENDOR_ID_INTEL, 0x10C6, pci_quirk_mf_endpoint_acs': 1 in each tree
        (("acs", "pci_quirk_mf_endpoint_acs", "8086", "10c6"), list(EVERY)),
        # Hamoa (≈v7.0) is in all four: stable backports reached 6.1.176 and 6.12.117
        (("acs", "pci_quirk_qcom_rp_acs", "17cb", "0111"), list(EVERY)),
        # 'case 0x0723 ... 0x0752:' (the v6.8 extension) in each tree
        (("acs-id", "pci_quirk_zhaoxin_pcie_ports_acs", "1d17", "0723"), list(EVERY)),
        # SWITCHTEC_PCI100X_QUIRK(0x1008): added between 6.1 and 6.12, missing from 7.2.13
        (("dma-alias", "quirk_switchtec_ntb_dma_alias", "1055", "1008"), ["6.12", "7.3"]),
        # quirk_aspeed_pci_bridge_no_alias on PCI_VENDOR_ID_ASPEED (0x1a03): 7.x only
        (("bridge-flag", "quirk_aspeed_pci_bridge_no_alias", "1a03", "1150"), ["7.2", "7.3"]),
        # pci_disable_broken_acs_cap ('pdev->device == 0x80b5'): 7.x only
        (("acs-cap", "pci_disable_broken_acs_cap", "111d", "80b5"), ["7.2", "7.3"]),
    ],
)  # fmt: skip
def test_dating_of_entries_checked_by_hand(
    entry: tuple[str, str, str, str], trees: list[str]
) -> None:
    assert _trees_of(*entry) == trees


def test_function_bodies_are_the_same_in_every_tree() -> None:
    """The logic of every quirk function is the same; only new functions differ."""
    every = [str(v) for v in MODELLED]
    changed = {name for name, groups in _dated()["bodies"].items() if groups != [every]}
    assert changed == {"pci_disable_broken_acs_cap", "quirk_aspeed_pci_bridge_no_alias"}
    assert _dated()["bodies"]["quirk_aspeed_pci_bridge_no_alias"] == [
        ["absent", "6.1", "6.12"],
        ["7.2", "7.3"],
    ]


@pytest.mark.skipif(
    not all((p / "drivers" / "pci" / "quirks.c").exists() for _, p in TREES),
    reason="needs the kernel trees (shared/tools/kernel-source 6.1, 6.12, 7.2, 7.3)",
)
def test_committed_extraction_is_what_the_trees_give() -> None:
    tool = _tool()
    dated = tool.date_entries([(v, tool.extract(p)) for v, p in TREES])
    assert tool.dump(dated) == COMMITTED.read_text()


# --- the model's tables are the trees' ---------------------------------------------


def _ids(spans: Iterable[tuple[int, int]]) -> set[int]:
    return {d for lo, hi in spans for d in range(lo, hi + 1)}


def _fmt(value: int | None) -> str:
    return "*" if value is None else f"{value:04x}"


def _in_tree(version: str, kind: str) -> list[Mapping[str, Any]]:
    return [e for e in _dated()["entries"] if e["kind"] == kind and version in e["trees"]]


@pytest.mark.parametrize("version", [str(v) for v in MODELLED])
def test_tables_for_each_tree_are_the_trees(version: str) -> None:
    """``for_kernel(T)`` for a tree T uses exactly the entries T's quirks.c has."""
    q = DEFAULT_QUIRKS.for_kernel(version)
    assert q.uncertain == ()  # a modelled tree is never uncertain

    want = {(e["function"], e["vendor"], e["device"]) for e in _in_tree(version, "acs")}
    have = {(a.name, _fmt(a.vendor), _fmt(a.device)) for a in q.acs_entries()}
    assert have == want

    lists = {
        "pci_quirk_intel_pch_acs_ids": set(T.INTEL_PCH_ACS_IDS),
        "pci_quirk_intel_spt_pch_acs_match": _ids(T.INTEL_SPT_ACS_RANGES),
        "pci_quirk_cavium_acs_match": _ids(T.CAVIUM_RP_RANGES),
    }
    for a in q.acs_entries():
        if a.name in ("pci_quirk_zhaoxin_pcie_ports_acs", "pci_quirk_wangxun_nic_acs"):
            lists[a.name] = _ids(a.check.spans)  # type: ignore[attr-defined]
    for function, ids in lists.items():
        listed = [e for e in _in_tree(version, "acs-id") if e["function"] == function]
        assert ids == _ids((int(e["device"], 16), int(e["device_to"], 16)) for e in listed)

    want = {(e["vendor"], e["device"]) for e in _in_tree(version, "acs-cap")}
    assert {(_fmt(c.vendor), _fmt(c.device)) for c in q.acs_cap_entries()} == want

    want = {(e["function"], e["vendor"], e["device"]) for e in _in_tree(version, "dma-alias")}
    have = {(a.name, _fmt(a.vendor), _fmt(a.device)) for a in q.dma_alias_entries()}
    assert have == want
    subsystems = {
        (e["subsystem"], e["devfn"]) for e in _in_tree(version, "dma-alias") if "subsystem" in e
    }
    fixed = {
        (f"{_fmt(a.subsystem_vendor)}:{_fmt(a.subsystem_device)}", f"{d >> 3:02x}.{d & 7}")
        for a in q.dma_alias_entries()
        if a.name == "quirk_fixed_dma_alias"
        for d in a.devfns
    }
    assert fixed == subsystems

    want = {(e["function"], e["vendor"], e["device"]) for e in _in_tree(version, "bridge-flag")}
    have = {(b.name, _fmt(b.vendor), _fmt(b.device)) for b in q.bridge_flag_entries()}
    assert have == want


def test_every_entry_not_in_every_tree_is_dated() -> None:
    every = [str(v) for v in MODELLED]
    partial = [e for e in _dated()["entries"] if e["trees"] != every]
    for e in partial:
        (dated,) = [
            d
            for d in KERNEL_QUIRK_DATES
            if d.function == e["function"] and d.devices == f"{e['vendor']}:{e['device']}"
        ]
        assert not dated.versions.everywhere
        for v in MODELLED:
            assert dated.versions.holds(v) is (str(v) in e["trees"])


def test_newest_tables_hold_every_entry_of_every_tree() -> None:
    """The 7.3 tables are the union: nothing was removed (so ``until`` is unused)."""
    newest = str(NEWEST)
    assert all(newest in e["trees"] or e["trees"] == ["6.12"] for e in _dated()["entries"])
    assert all(d.versions.until is None for d in KERNEL_QUIRK_DATES)


def test_default_is_the_newest_kernels() -> None:
    assert DEFAULT_QUIRKS.kernel == NEWEST
    assert DEFAULT_QUIRKS.for_kernel(NEWEST) == DEFAULT_QUIRKS
    assert DEFAULT_QUIRKS.for_kernel(None) == DEFAULT_QUIRKS
    assert kernel_quirks() is DEFAULT_QUIRKS
    assert kernel_quirks("7.3.4+deb13-amd64") is DEFAULT_QUIRKS
    assert Quirks() == DEFAULT_QUIRKS
    # for_kernel only selects: going back and forth gives the same tables.
    assert DEFAULT_QUIRKS.for_kernel("6.6").for_kernel("7.3") == DEFAULT_QUIRKS


# --- what each kernel has -----------------------------------------------------------


def _fn(addr: str, vendor: int, device: int, **kw: Any) -> PciFunction:
    return PciFunction(addr, vendor, device, **kw)


def _verdict(fn: PciFunction, quirks: Quirks, *others: PciFunction) -> bool | None:
    ctx = QuirkContext(Topology([fn, *others]), quirks=quirks)
    return quirks.acs_enabled(fn, REQ, ctx)


AST1150 = _fn(
    "01:00.0", 0x1A03, 0x1150, class_code=0x060400, header_type=1,
    pcie_type=PcieType.PCI_BRIDGE, secondary_bus=2, subordinate_bus=2,
)  # fmt: skip
IDT_PORT = _fn(
    "02:01.0", 0x111D, 0x80B5, class_code=0x060400, header_type=1,
    pcie_type=PcieType.DOWNSTREAM, secondary_bus=3, subordinate_bus=3,
    acs=Acs(REQ, AcsFlags.RR | AcsFlags.CR | AcsFlags.UF),
)  # fmt: skip
PCI1008 = _fn("0a:00.1", 0x1055, 0x1008, class_code=0x068000)


def test_for_kernel_6_1() -> None:
    q = kernel_quirks("6.1")
    assert not q.pci_bridge_no_alias(AST1150)
    assert q.acs_capabilities(IDT_PORT) == REQ
    assert q.dma_alias_quirks_for(PCI1008) == ()
    # reached 6.1.y by stable backports: in the 6.1 tree
    assert _verdict(_fn("00:09.0", 0x0014, 0x7A09, pcie_type=PcieType.ROOT_PORT), q) is True
    assert _verdict(_fn("00:01.0", 0x17CB, 0x0111, pcie_type=PcieType.ROOT_PORT), q) is True


def test_for_kernel_6_12_and_7_2() -> None:
    q = kernel_quirks("6.12")
    assert not q.pci_bridge_no_alias(AST1150)
    assert q.acs_capabilities(IDT_PORT) == REQ
    assert len(q.dma_alias_quirks_for(PCI1008)) == 1  # a backport to 6.12.y
    q = kernel_quirks("7.2")
    assert q.pci_bridge_no_alias(AST1150)
    assert q.acs_capabilities(IDT_PORT) == AcsFlags.RR | AcsFlags.CR | AcsFlags.UF
    assert q.dma_alias_quirks_for(PCI1008) == ()  # not in 7.2.13


def test_for_kernel_7_3() -> None:
    q = kernel_quirks("7.3")
    assert q.pci_bridge_no_alias(AST1150)
    assert q.acs_capabilities(IDT_PORT) == AcsFlags.RR | AcsFlags.CR | AcsFlags.UF
    assert len(q.dma_alias_quirks_for(PCI1008)) == 1


def test_versions_between_the_bounds() -> None:
    assert QuirkVersions(since=(7, 0), after=(6, 12)).holds(V(6, 13)) is None
    assert QuirkVersions(since=(7, 0), after=(6, 12)).holds(V(7, 0)) is True
    assert QuirkVersions(since=(7, 0), after=(6, 12)).holds(V(6, 12)) is False
    assert QuirkVersions(since=(6, 8), backports=[(6, 1)]).holds(V(6, 6)) is None
    assert QuirkVersions(since=(6, 8), backports=[(6, 1)]).holds(V(6, 1)) is True
    assert QuirkVersions(since=(6, 8), backports=[(6, 1)]).holds(V(6, 8)) is True
    assert QuirkVersions(since=(6, 8)).holds(V(6, 6)) is False
    assert QuirkVersions(until=(7, 0)).holds(V(7, 0)) is False
    # a modelled tree without a backported entry: known absent
    assert QuirkVersions(since=(7, 3), after=(7, 2), backports=[(6, 12)]).holds(V(7, 2)) is False


# --- fail closed where a kernel's entry is not known -------------------------------


def test_uncertain_acs_quirk_is_left_out() -> None:
    """R2.6: Loongson root ports (mainline ≈v6.16) on 6.6, for which no tree was read."""
    rp = _fn("00:09.0", 0x0014, 0x7A09, pcie_type=PcieType.ROOT_PORT)
    q = kernel_quirks("6.6")
    assert _verdict(rp, q) is None  # no quirk answers: the generic rules decide
    (u,) = q.uncertain_for(rp)
    assert u.kept is False
    assert u.quirk.function == "pci_quirk_loongson_acs"
    assert u.quirk.versions.since == V(6, 16)


def test_uncertain_listed_ids_are_left_out_but_the_denial_stays() -> None:
    """pci_quirk_wangxun_nic_acs answers "not enabled" for ids it does not list.

    On 6.6 the FF5xxx ids (v6.13) may be missing: the function then denies
    them, as a kernel without them does. On 6.2 even the entry (≈v6.3) is
    uncertain: it is kept, with none of its ids, so every Wangxun device is
    denied (a kernel without the entry could only have said more).
    """
    aml = _fn("01:00.0", 0x8088, 0x5010, multifunction=True)
    em = _fn("01:00.0", 0x8088, 0x0100, multifunction=True)
    assert _verdict(aml, DEFAULT_QUIRKS) is True
    assert _verdict(aml, kernel_quirks("6.6")) is False
    assert _verdict(em, kernel_quirks("6.6")) is True
    assert [u.kept for u in kernel_quirks("6.6").uncertain_for(aml)] == [False]
    old = kernel_quirks("6.2")
    assert _verdict(em, old) is False
    assert _verdict(_fn("01:00.0", 0x8088, 0x1000), old) is False
    assert sorted(u.kept for u in old.uncertain_for(em)) == [False, True]


def test_uncertain_alias_quirk_is_kept() -> None:
    """R3.5: Glenfly's function 0 alias (≈v6.12) on 6.6 is kept: it can only merge."""
    gpu_audio = _fn("05:00.1", 0x6766, 0x3D41)
    q = kernel_quirks("6.6")
    assert q.dma_alias_devfns(gpu_audio) == {0x00}
    (u,) = q.uncertain_for(gpu_audio)
    assert u.kept is True


def test_uncertain_bridge_flag_and_capability_mask_are_left_out() -> None:
    """On 7.0 the AST1150 flag is between its bounds (after 6.12, by 7.2): left out.

    The IDT mask holds from v7.0 (with R2.7's series) and is uncertain on 6.19.
    """
    q = kernel_quirks("7.0")
    assert not q.pci_bridge_no_alias(AST1150)
    assert [u.kept for u in q.uncertain_for(AST1150)] == [False]
    assert q.acs_capabilities(IDT_PORT) == AcsFlags.RR | AcsFlags.CR | AcsFlags.UF
    q = kernel_quirks("6.19")
    assert q.acs_capabilities(IDT_PORT) == REQ
    assert [u.kept for u in q.uncertain_for(IDT_PORT)] == [False]
    assert len(kernel_quirks("7.0").dma_alias_quirks_for(PCI1008)) == 1  # kept


def test_uncertain_list_names_every_dated_entry_of_an_old_kernel() -> None:
    q = kernel_quirks("5.15")  # older than every tree: the backports are not known
    names = {(u.quirk.function, u.quirk.devices) for u in q.uncertain}
    assert ("pci_quirk_qcom_rp_acs", "17cb:0111") in names
    assert ("pci_quirk_zhaoxin_pcie_ports_acs", "1d17:0733-0752") in names
    assert ("quirk_aspeed_pci_bridge_no_alias", "1a03:1150") not in names  # known absent


# --- the kernel's groups -------------------------------------------------------------


def _two_ports(vendor: int, device: int, port: PcieType = PcieType.ROOT_PORT) -> Topology:
    """Two ports without an ACS capability, each with a single-function endpoint below."""

    def bridge(addr: str, bus: int) -> PciFunction:
        return _fn(
            addr, vendor, device, class_code=0x060400, header_type=1, pcie_type=port,
            secondary_bus=bus, subordinate_bus=bus,
        )  # fmt: skip

    return Topology(
        [
            bridge("00:09.0", 1),
            bridge("00:0a.0", 2),
            _fn("01:00.0", 0x1B36, 0x0010, class_code=0x010802, pcie_type=PcieType.ENDPOINT),
            _fn("02:00.0", 0x1B36, 0x0010, class_code=0x010802, pcie_type=PcieType.ENDPOINT),
        ]
    )


def _groups(topology: Topology, **kw: Any) -> set[frozenset[str]]:
    return {frozenset(str(d) for d in g) for g in canonical_groups(topology, **kw).groups.values()}


ISOLATED = {
    frozenset({"0000:00:09.0"}),
    frozenset({"0000:00:0a.0"}),
    frozenset({"0000:01:00.0"}),
    frozenset({"0000:02:00.0"}),
}
BEHIND_PORT = {
    frozenset({"0000:00:09.0", "0000:01:00.0"}),
    frozenset({"0000:00:0a.0", "0000:02:00.0"}),
}


def test_loongson_root_ports_group_by_kernel() -> None:
    """``pci_device_group()`` (R4.2) stops at a root port whose path is ACS-isolated.

    ``pci_quirk_loongson_acs`` declares SV|RR|CR|UF for Loongson root ports
    without an ACS capability (quirks.c): with it each endpoint gets a group
    of its own; without it the port does not isolate (R2.3: no capability),
    so the endpoint joins the port's group. The 6.1, 6.12 and 7.3 trees have
    the entry (6.1.176 and 6.12.117 by backports); on 6.6 it is uncertain and
    left out.
    """
    topo = _two_ports(0x0014, 0x7A09)
    assert _groups(topo) == ISOLATED
    assert _groups(topo, kernel="7.3") == ISOLATED
    assert _groups(topo, kernel="6.1") == ISOLATED
    assert _groups(topo, kernel="6.12") == ISOLATED
    assert _groups(topo, kernel="6.6") == BEHIND_PORT
    assert _groups(topo, kernel="6.15") == BEHIND_PORT  # between ≈6.14 and 6.16
    # an explicit table is used as given, whatever the kernel
    assert _groups(topo, kernel="6.6", quirks=DEFAULT_QUIRKS) == ISOLATED


def test_zhaoxin_port_added_in_6_8_groups_by_kernel() -> None:
    """``pci_quirk_zhaoxin_pcie_ports_acs`` lists 0x0733-0x0752 since v6.8 (e367e3c765f5).

    Before, the function answers "not enabled" for them (a final verdict), so
    a downstream port 0x0740 does not isolate even with ACS on: the
    endpoint joins its port's group. 6.7 is older than v6.8 and no 6.7 tree
    was read (it did get the backport, unchecked): the ids are left out, the
    denial stays.
    """
    topo = _two_ports(0x1D17, 0x0740, PcieType.ROOT_PORT)
    assert _groups(topo, kernel="6.8") == ISOLATED
    assert _groups(topo, kernel="6.1") == ISOLATED  # the 6.1 tree has the backport
    assert _groups(topo, kernel="6.7") == BEHIND_PORT


def test_simulator_uses_the_kernels_tables() -> None:
    topo = _two_ports(0x0014, 0x7A09)
    strategy = STRATEGIES["device-add"]
    old = Simulator(topo, Scenario(), strategy, kernel="6.6")
    assert old.ctx.quirks == kernel_quirks("6.6")
    new = Simulator(topo, Scenario(), strategy, kernel="7.3")
    assert new.ctx.quirks is DEFAULT_QUIRKS
    given = Simulator(topo, Scenario(), strategy, kernel="6.6", quirks=DEFAULT_QUIRKS)
    assert given.ctx.quirks is DEFAULT_QUIRKS


def test_make_context_takes_the_kernel() -> None:
    topo = _two_ports(0x0014, 0x7A09)
    assert make_context(topo).quirks is DEFAULT_QUIRKS
    assert make_context(topo, kernel="6.6").quirks == kernel_quirks("6.6")
    assert make_context(topo, Quirks.none(), kernel="6.6").quirks == Quirks.none()


def test_aspeed_no_alias_bridge_adds_no_alias_from_7x() -> None:
    """R3.4: ``pci_for_each_dma_alias`` skips a PCIe-to-PCI bridge flagged
    PCI_DEV_FLAGS_PCI_BRIDGE_NO_ALIAS (drivers/pci/search.c in 7.2/7.3); the
    flag's quirk is not in 6.x, where the bridge adds (secondary bus, 00.0)."""
    from iommugroups._kernel.alias import pci_for_each_dma_alias
    from iommugroups._kernel.quirks import make_context

    root = _fn(
        "00:01.0", 0x8086, 0x1234, class_code=0x060400, header_type=1,
        pcie_type=PcieType.ROOT_PORT, secondary_bus=1, subordinate_bus=2,
    )  # fmt: skip
    dev = _fn("02:03.0", 0x1234, 0x0001, class_code=0x020000, pcie_type=None)
    topo = Topology([root, AST1150, dev])

    def rids(kernel: str) -> list[str]:
        ctx = make_context(topo, kernel=kernel)
        return [f"{rid:04x}" for _d, rid in pci_for_each_dma_alias(topo.get("02:03.0"), ctx)]

    assert rids("6.12") == ["0218", "0200"]  # the bridge's (secondary bus, 00.0)
    assert rids("7.2") == ["0218"]
    assert rids("7.3") == ["0218"]
