"""Reading ``lspci -v``/``-vv``/``-vvv`` text and ``lspci -t`` trees.

(``_io.lspci_verbose``, ``_io.lspci_tree``, and the names they map back to
ids, ``_kernel.pci_ids`` with the bundled subset that
``tools/build_pci_ids_subset.py`` builds.)

Three kinds of evidence:

* real machines (``data/realdata``, public mailing-list reports, see its
  README): every file reads or is refused with an ``InputError``; for every
  *paired* x86 machine the canonical grouping predicted from the lspci text
  alone equals the groups the kernel reported in the same text, which are
  cross-checked with the derived listings and the kernel logs;
* the oracle captures rendered by Debian's ``lspci -F NAME.lspci -vvv``
  (``data/oracle/lspci-vvv``): the text gives the same topology as the
  configuration-space dump and the kernel's groups;
* small hand-written texts for each format feature and each error, and
  Hypothesis mutations of real files (only ``InputError`` may escape).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iommugroups import AcsFlags, InputError, PcieType, canonical_groups, load
from iommugroups._io.lspci_tree import looks_like_lspci_tree, read_lspci_tree
from iommugroups._io.lspci_verbose import looks_like_lspci_text, read_lspci_text
from iommugroups._kernel import pci_ids
from iommugroups._kernel.acs import REQ_ACS_FLAGS, pci_acs_enabled
from iommugroups._kernel.model import Topology
from iommugroups._kernel.pci_ids import lookup_device_name
from iommugroups._kernel.quirks import DEFAULT_QUIRKS, QuirkContext, make_context
from iommugroups._kernel.reading import Reading

DATA = Path(__file__).parent / "data"
REAL = DATA / "realdata"
ORACLE = DATA / "oracle"
VVV = ORACLE / "lspci-vvv"
CAPTURES = sorted((ORACLE / "captures").glob("*.json")) + sorted(
    (ORACLE / "designed").glob("*.json")
)

#: Real files that hold lspci device blocks -> number of devices in them.
TEXTS: dict[str, int] = {
    "p01-hp-spectre-x360-15-df1xxx/lspci.txt": 34,
    "p02-asus-pn51-amd-cezanne/lspci.txt": 34,
    "p04-dell-1028-08b0-icelake-laptop/lspci.txt": 25,
    "p06-dell-cometlake-u-laptop/lspci.txt": 22,
    "p07-xeon-e3-pex8748-switch/lspci.txt": 42,
    "p07-xeon-e3-pex8748-switch/report.txt": 42,  # the same lspci among other output
    "p11-apple-macmini8-1-tb3-egpu/lspci.txt": 48,
    "p16-lenovo-thinkpad-e15-gen3-amd/lspci.txt": 29,
    # 3 devices, each shown twice (lspci -vvvv -s X, then lspci -xxxx -s X)
    "p18-intel-x99-i7-5930k-groups-regression/lspci-partial-message.txt": 3,
    "s01-amd-desktop-bar-resize-lspci-v/lspci-v.txt": 47,
    "s02-amd-desktop-gavrilov-lspci-v/lspci-v.txt": 49,
    "s07-laptop-ath9k-nonroot-danjean/lspci.txt": 36,
    "u02-xeon-e3-v6-many-wifi-greear/lspci.txt": 43,
    "u04-intel-xeon-e5-v3-haswell-ep/lspci.txt": 86,
    "u07-dell-laptop-crudup-2019-lspci-vvnn/lspci.txt": 27,
}
#: Real files that hold an lspci -t tree -> number of devices in it.
TREES: dict[str, int] = {
    "p07-xeon-e3-pex8748-switch/report.txt": 42,
    "p11-apple-macmini8-1-tb3-egpu/lspci-tree.txt": 48,
    # inline in the mail; its first line lost two columns of indentation
    "p20-arm64-hisilicon-d05-probe-order/message.txt": 17,
    "s01-amd-desktop-bar-resize-lspci-v/lspci-tree.txt": 47,
}
#: Paired x86 machines: lspci text with ACS bits and the kernel's groups.
PAIRED: dict[str, str] = {
    "p01": "p01-hp-spectre-x360-15-df1xxx/lspci.txt",
    "p02": "p02-asus-pn51-amd-cezanne/lspci.txt",
    "p04": "p04-dell-1028-08b0-icelake-laptop/lspci.txt",
    "p06": "p06-dell-cometlake-u-laptop/lspci.txt",
    "p07": "p07-xeon-e3-pex8748-switch/lspci.txt",
    "p11": "p11-apple-macmini8-1-tb3-egpu/lspci.txt",
    "p16": "p16-lenovo-thinkpad-e15-gen3-amd/lspci.txt",
    "p18": "p18-intel-x99-i7-5930k-groups-regression/lspci-partial-message.txt",
}
#: Devices of the paired machines that the kernel gave no group: on AMD the
#: root complex and the IOMMU function itself (the AMD IOMMU driver only
#: probes the devices its IVRS table covers, and not itself).
UNGROUPED: dict[str, set[str]] = {
    "p02": {"0000:00:00.0", "0000:00:00.2"},
    "p16": {"0000:00:00.0", "0000:00:00.2"},
}
#: Semi-paired machines: groups, but no ACS bits (lspci -v, or not root).
SEMI = {
    "s01": "s01-amd-desktop-bar-resize-lspci-v/lspci-v.txt",
    "s02": "s02-amd-desktop-gavrilov-lspci-v/lspci-v.txt",
    "s07": "s07-laptop-ath9k-nonroot-danjean/lspci.txt",
}

_ADD_RE = re.compile(r"\] (?:pci|\S+) (\S+): Adding to iommu group (\d+)")


def real(name: str) -> Reading:
    path = REAL / name
    return read_lspci_text(path.read_text(errors="replace"), str(path))


def partition(groups: Mapping[int, tuple[str, ...]]) -> set[frozenset[str]]:
    return {frozenset(members) for members in groups.values()}


def predicted(reading: Reading) -> set[frozenset[str]]:
    """The canonical groups of the reading's topology, on the devices the kernel grouped."""
    assert reading.topology is not None
    assert reading.observed is not None
    grouped = {d for members in reading.observed.groups.values() for d in members}
    got = canonical_groups(reading.topology)
    return {frozenset(d for d in m if d in grouped) for m in got.groups.values()} - {frozenset()}


def derived_groups(path: Path) -> dict[int, tuple[str, ...]]:
    """``groups.derived.txt``: ``IOMMU Group N: bb:dd.f ...`` after a comment line."""
    out: dict[int, tuple[str, ...]] = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"IOMMU Group (\d+): (.*)", line)
        if m:
            out[int(m[1])] = tuple(
                sorted(a if a.count(":") == 2 else f"0000:{a}" for a in m[2].split())
            )
    return out


def dmesg_groups(text: str) -> tuple[list[str], dict[str, int]]:
    """Boot order and groups of the ``pci ...: Adding to iommu group N`` lines."""
    order: list[str] = []
    groups: dict[str, int] = {}
    for m in _ADD_RE.finditer(text):
        if m[1] not in groups:
            order.append(m[1])
        groups[m[1]] = int(m[2])
    return order, groups


def error(text: str, fn: object = read_lspci_text) -> InputError:
    assert callable(fn)
    with pytest.raises(InputError) as info:
        fn(text, "paste.txt")
    return info.value


# =============================================================================
# Real machines
# =============================================================================

REAL_FILES = sorted(p for p in REAL.rglob("*") if p.is_file())


def test_realdata_is_complete() -> None:
    assert len(REAL_FILES) >= 40
    for name in (*TEXTS, *TREES):
        assert (REAL / name).is_file(), name


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: str(p.relative_to(REAL)))
def test_every_real_file_reads_or_is_refused(path: Path) -> None:
    name = str(path.relative_to(REAL))
    text = path.read_text(errors="replace")
    if name in TEXTS:
        reading = read_lspci_text(text, str(path))
        assert reading.topology is not None
        assert len(reading.topology) == TEXTS[name]
    else:
        error(text)  # genuinely not lspci device blocks
    if name in TREES:
        tree = read_lspci_tree(text, str(path))
        assert tree.topology is not None
        assert len(tree.topology) == TREES[name]
    else:
        error(text, read_lspci_tree)
    assert looks_like_lspci_text(text) == (name in TEXTS)
    assert looks_like_lspci_tree(text) == (name in TREES)


@pytest.mark.parametrize("name", sorted(TEXTS), ids=str)
def test_observed_groups_match_the_derived_listing_and_the_kernel_log(name: str) -> None:
    reading = real(name)
    folder = (REAL / name).parent
    derived = folder / "groups.derived.txt"
    if reading.observed is None:
        assert not derived.exists() or "lspci" not in derived.read_text().splitlines()[0]
        return
    assert reading.source in ("lspci-v", "lspci-vv")
    if derived.exists() and Path(name).name in derived.read_text().splitlines()[0]:
        assert dict(reading.observed.groups) == derived_groups(derived)
    dmesg = folder / "dmesg.txt"
    if dmesg.exists():
        _order, kernel = dmesg_groups(dmesg.read_text(errors="replace"))
        assert {d: reading.observed.group_of(d) for d in kernel} == kernel
        assert set(kernel) == {d for m in reading.observed.groups.values() for d in m}


@pytest.mark.parametrize("machine", sorted(PAIRED))
def test_paired_machine_prediction_equals_the_kernel(machine: str) -> None:
    """Canonical grouping from the lspci text alone == the kernel's IOMMU groups."""
    reading = real(PAIRED[machine])
    assert reading.topology is not None
    assert reading.observed is not None
    grouped = {d for m in reading.observed.groups.values() for d in m}
    everything = {str(f.address) for f in reading.topology}
    assert everything - grouped == UNGROUPED.get(machine, set())
    assert {u.device for u in reading.unknowns if u.fact == "group"} == UNGROUPED.get(
        machine, set()
    )
    # every ACS fact the grouping needs was in the text
    assert not {u.fact for u in reading.unknowns} & {"acs", "pcie", "config", "bus-numbers"}
    assert predicted(reading) == partition(reading.observed.groups)


@pytest.mark.parametrize(
    ("machine", "kernel"),
    [
        ("p01", None),
        ("p02", None),
        ("p04", "5.16"),
        ("p06", "5.10"),
        ("p07", None),
        ("p11", None),
        ("p16", "5.15.44"),
    ],
)
def test_paired_machine_group_numbers(machine: str, kernel: str | None) -> None:
    """The group numbers match too, from the lspci text alone (R1.9).

    Since v6.1 VT-d units register one by one: Intel client firmware gives
    the integrated GPU (00:02.0) a DMAR unit of its own, which registers
    first, so on p01 and p07 (2025 mails, 6.x kernels) it has group 0. p04
    and p06 were mailed in 2022 and 2021, before v6.1 was released, and p16's
    log says 5.15.44: there every device was grouped in bus order, and the
    GPU comes after the host bridge.
    """
    reading = real(PAIRED[machine])
    assert reading.topology is not None
    assert reading.observed is not None
    ungrouped = UNGROUPED.get(machine, set())
    topo = reading.topology.replace(
        functions=[f for f in reading.topology if str(f.address) not in ungrouped]
    )
    assert dict(canonical_groups(topo, kernel=kernel).groups) == dict(reading.observed.groups)


@pytest.mark.parametrize(
    ("machine", "log"),
    [
        ("p01", "p01-hp-spectre-x360-15-df1xxx/dmesg.txt"),
        ("p07", "p07-xeon-e3-pex8748-switch/report.txt"),
        ("p11", "p11-apple-macmini8-1-tb3-egpu/dmesg.txt"),
        ("p16", "p16-lenovo-thinkpad-e15-gen3-amd/dmesg.txt"),
    ],
)
def test_paired_machine_group_numbers_in_the_kernel_log_order(machine: str, log: str) -> None:
    """With the kernel's add order, the numbers match too.

    On p01 and p07 the integrated GPU 00:02.0 gets group 0, before the host
    bridge: VT-d's dedicated graphics unit registers (and probes its device)
    before the catch-all unit. lspci cannot show the DMAR table, so only the
    log order reproduces that. On p07 the log also lists functions
    01:00.1-01:00.4 that were gone when lspci ran; they are not compared.
    """
    reading = real(PAIRED[machine])
    assert reading.topology is not None
    assert reading.observed is not None
    order, kernel = dmesg_groups((REAL / log).read_text(errors="replace"))
    present = [d for d in order if d in reading.topology]
    ungrouped = UNGROUPED.get(machine, set())
    topo = reading.topology.replace(
        functions=[f for f in reading.topology if str(f.address) not in ungrouped]
    )
    got = canonical_groups(topo, order=present)
    assert {d: got.group_of(d) for d in present} == {d: kernel[d] for d in present}
    assert dict(got.groups) == dict(reading.observed.groups)


def _decision(reading: Reading, address: str, ctx: QuirkContext | None = None) -> str | None:
    assert reading.topology is not None
    fn = reading.topology.get(address)
    ctx = ctx or make_context(reading.topology)
    _verdict, quirk = ctx.quirks.acs_decision(fn, REQ_ACS_FLAGS, ctx)
    return None if quirk is None else quirk.name


def test_p07_sunrise_point_root_ports_are_isolated_by_the_spt_quirk() -> None:
    """ACSCtl reads all '-' at the standard offset; the control really sits at cap+8.

    ``pci_quirk_intel_spt_pch_acs`` (8086:a110-a11f) reads it there after
    ``pci_quirk_enable_intel_spt_pch_acs`` enabled it: each I210 behind those
    root ports has a group of its own, as the kernel reports.
    """
    reading = real(PAIRED["p07"])
    assert reading.topology is not None
    assert reading.observed is not None
    for port in ("00:1c.0", "00:1c.1", "00:1c.2", "00:1c.3"):
        fn = reading.topology.get(port)
        assert 0xA110 <= fn.device <= 0xA113
        assert fn.acs is not None
        assert fn.acs.ctrl == AcsFlags.NONE
        assert _decision(reading, port) == "pci_quirk_intel_spt_pch_acs"
    without = canonical_groups(
        reading.topology, quirks=DEFAULT_QUIRKS.without("pci_quirk_intel_spt_pch_acs")
    )
    assert without.same_group("00:1c.0", "00:1c.1")
    assert not canonical_groups(reading.topology).same_group("00:1c.0", "00:1c.1")


@pytest.mark.parametrize(("machine", "rciep"), [("p04", "00:14.3"), ("p06", "00:14.3")])
def test_intel_rciep_quirk_splits_the_cnvi_function(machine: str, rciep: str) -> None:
    """The CNVi Wi-Fi function is an Intel RCiEP in a multifunction slot without ACS.

    ``pci_quirk_rciep_acs`` (Intel, any device) makes it isolated, so it has
    a group of its own while its slot siblings share one.
    """
    reading = real(PAIRED[machine])
    assert reading.topology is not None
    assert reading.observed is not None
    fn = reading.topology.get(rciep)
    assert fn.pcie_type is PcieType.RC_END
    assert reading.topology.is_multifunction(fn)
    assert _decision(reading, rciep) == "pci_quirk_rciep_acs"
    g = reading.observed.group_of(f"0000:{rciep}")
    assert reading.observed.groups[g] == (f"0000:{rciep}",)
    without = canonical_groups(
        reading.topology, quirks=DEFAULT_QUIRKS.without("pci_quirk_rciep_acs")
    )
    assert len(without.groups[without.group_of(rciep)]) > 1


@pytest.mark.parametrize("machine", ["p01", "p07", "p11"])
def test_cpu_root_ports_without_acs_share_their_subtree(machine: str) -> None:
    """The 6th-10th gen CPU PEG ports (8086:1901/1905/1909) have no ACS and no quirk.

    So everything below them, and (multifunction, p07/p11) the ports of one
    slot, is one group: on p11 that includes the whole Thunderbolt eGPU tree.
    """
    reading = real(PAIRED[machine])
    topo, observed = reading.topology, reading.observed
    assert topo is not None
    assert observed is not None
    ports = [f for f in topo if f.vendor == 0x8086 and f.device in (0x1901, 0x1905, 0x1909)]
    assert ports
    below = 0
    for port in ports:
        assert port.acs is None
        assert port.pcie_type is PcieType.ROOT_PORT
        assert _decision(reading, str(port.address)) is None
        for fn in topo:
            up = topo.bridge_above(fn.address)
            while up is not None and up is not port:
                up = topo.bridge_above(up.address)
            if up is port:
                below += 1
                assert observed.group_of(str(fn.address)) == observed.group_of(str(port.address))
    assert below


def test_p18_pch_root_port_quirk_and_the_v5_9_regression() -> None:
    """X99 (Wellsburg) PCH root port 8086:8d18: no ACS capability, isolated by a quirk.

    ``pci_quirk_intel_pch_acs`` counts SV|RR|CR|UF as provided once
    ``pci_quirk_enable_intel_pch_acs`` ran; v5.9 stopped calling that enable
    quirk for ports without an ACS capability (commit 52fbf5bdeeef, the
    reporter's regression, fixed in v5.10), which the model expresses as
    ``acs_requested=False``: the port is then no longer isolated.
    """
    name = PAIRED["p18"]
    reading = real(name)
    assert reading.topology is not None
    assert reading.observed is not None
    port = reading.topology.get("00:1c.4")
    assert (port.vendor, port.device, port.acs, port.pcie_type) == (
        0x8086,
        0x8D18,
        None,
        PcieType.ROOT_PORT,
    )
    assert _decision(reading, "00:1c.4") == "pci_quirk_intel_pch_acs"
    ctx = make_context(reading.topology)
    assert pci_acs_enabled(port, REQ_ACS_FLAGS, ctx)
    regressed = QuirkContext(reading.topology, amd_ivrs=False, acs_requested=False)
    assert not pci_acs_enabled(port, REQ_ACS_FLAGS, regressed)
    # the ids came from the hex dump; from the name alone they resolve to the
    # same quirk family (8d18 and 8d19 share the name and the quirk entries)
    text = (REAL / name).read_text()
    no_hex = "\n".join(
        line for line in text.splitlines() if not re.match(r"[0-9a-f]{2,3}: ", line)
    )
    by_name = read_lspci_text(no_hex).topology
    assert by_name is not None
    fn = by_name.get("00:1c.4")
    assert (fn.vendor, fn.device) == (0x8086, 0x8D18)
    assert "ids" in fn.unknown
    assert _decision(read_lspci_text(no_hex), "00:1c.4") == "pci_quirk_intel_pch_acs"


@pytest.mark.parametrize("machine", sorted(SEMI))
def test_semi_paired_prediction_is_never_finer_than_the_kernel(machine: str) -> None:
    """Without ACS bits the prediction can only merge: each kernel group fits in one."""
    reading = real(SEMI[machine])
    assert reading.topology is not None
    assert reading.observed is not None
    pred = predicted(reading)
    for group in partition(reading.observed.groups):
        assert any(group <= p for p in pred), sorted(group)
    unknown_acs = {u.device for u in reading.unknowns if u.fact == "acs"}
    assert unknown_acs
    for fn in reading.topology:
        if str(fn.address) in unknown_acs:
            assert "acs" in fn.unknown
            assert fn.acs is None


def test_lspci_v_acs_capability_without_bits_is_unknown() -> None:
    reading = real(SEMI["s01"])
    assert reading.topology is not None
    acs_unknown = {u.device for u in reading.unknowns if u.fact == "acs"}
    assert "0000:00:1c.0" in acs_unknown
    assert all("lspci -v" in u.why for u in reading.unknowns if u.fact == "acs")
    assert reading.source == "lspci-v"


def test_non_root_lspci_has_unknown_capabilities() -> None:
    reading = real(SEMI["s07"])
    assert reading.topology is not None
    fn = reading.topology.get("00:1c.0")
    assert {"acs", "pcie"} <= fn.unknown
    assert fn.pcie_type is None
    assert fn.secondary_bus is not None  # the header part is readable


def test_unpaired_machines_read_and_group() -> None:
    for name in (
        "u02-xeon-e3-v6-many-wifi-greear/lspci.txt",
        "u07-dell-laptop-crudup-2019-lspci-vvnn/lspci.txt",
    ):
        reading = real(name)
        assert reading.topology is not None
        assert reading.observed is None
        assert canonical_groups(reading.topology).groups


@pytest.mark.parametrize(
    ("tree", "text"),
    [
        ("p07-xeon-e3-pex8748-switch/report.txt", "p07-xeon-e3-pex8748-switch/lspci.txt"),
        (
            "p11-apple-macmini8-1-tb3-egpu/lspci-tree.txt",
            "p11-apple-macmini8-1-tb3-egpu/lspci.txt",
        ),
        (
            "s01-amd-desktop-bar-resize-lspci-v/lspci-tree.txt",
            "s01-amd-desktop-bar-resize-lspci-v/lspci-v.txt",
        ),
    ],
)
def test_real_tree_agrees_with_the_text(tree: str, text: str) -> None:
    a = read_lspci_tree((REAL / tree).read_text()).topology
    b = real(text).topology
    assert a is not None
    assert b is not None
    assert _shape(a) == _shape(b)
    for fn in a:
        if "ids" not in fn.unknown:
            assert (fn.vendor, fn.device) == (b.get(fn.address).vendor, b.get(fn.address).device)


def _shape(topo: Topology) -> dict[str, tuple[int | None, int | None, bool]]:
    return {
        str(f.address): (f.secondary_bus, f.subordinate_bus, topo.is_multifunction(f))
        for f in topo
    }


def test_p20_tree_with_domains_and_a_shifted_first_line() -> None:
    reading = read_lspci_tree((REAL / TREES_P20).read_text())
    topo = reading.topology
    assert topo is not None
    assert topo.get("000a:10:00.0").secondary_bus == 0x11
    assert topo.get("000a:10:00.0").subordinate_bus == 0x12
    assert [str(f.address) for f in topo.devices_on_bus(0xA, 0x11)] == [
        f"000a:11:00.{i}" for i in range(4)
    ]
    assert topo.is_root_bus(0x000D, 0x30)
    assert {u.fact for u in reading.unknowns} >= {"acs", "pcie", "class"}


TREES_P20 = "p20-arm64-hisilicon-d05-probe-order/message.txt"


# =============================================================================
# The oracle captures, as lspci -vvv renders them
# =============================================================================


def test_oracle_texts_are_present() -> None:
    assert len(CAPTURES) == 34
    for cap in CAPTURES:
        for suffix in (".txt", ".vvnn.txt", ".tree.txt"):
            assert (VVV / f"{cap.stem}{suffix}").is_file()


_FIELDS = (
    "vendor",
    "device",
    "class_code",
    "header_type",
    "pcie_type",
    "acs",
    "secondary_bus",
    "subordinate_bus",
    "physfn",
    "sriov",
    "subsystem_vendor",
    "subsystem_device",
)


@pytest.mark.parametrize("suffix", [".txt", ".vvnn.txt"])
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_oracle_lspci_text_predicts_the_kernel_groups(capture: Path, suffix: str) -> None:
    kernel = json.loads(capture.read_text())["groups"]
    path = VVV / f"{capture.stem}{suffix}"
    reading = read_lspci_text(path.read_text(), str(path))
    assert reading.topology is not None
    assert reading.observed is None
    assert canonical_groups(reading.topology).partition() == {
        frozenset(v) for v in kernel.values()
    }
    # and the text gives the configuration-space dump's topology, field by field
    ref = load(capture.with_suffix(".lspci"))
    assert len(reading.topology) == len(ref)
    for want in ref:
        got = reading.topology.get(want.address)
        assert reading.topology.is_multifunction(got) == ref.is_multifunction(want)
        for field in _FIELDS:
            if field in ("vendor", "device") and "ids" in got.unknown:
                continue
            if field.startswith("subsystem") and "subsystem" in got.unknown:
                continue
            assert getattr(got, field) == getattr(want, field), (str(want.address), field)
    if suffix == ".vvnn.txt":
        assert not [u for u in reading.unknowns if u.fact == "ids" and "VF" not in u.why]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_oracle_tree_gives_the_bus_structure(capture: Path) -> None:
    path = VVV / f"{capture.stem}.tree.txt"
    tree = read_lspci_tree(path.read_text(), str(path)).topology
    assert tree is not None
    ref = load(capture.with_suffix(".lspci"))
    assert {str(f.address): (f.secondary_bus, f.subordinate_bus) for f in tree} == {
        str(f.address): (f.secondary_bus, f.subordinate_bus) for f in ref
    }


# =============================================================================
# The pci.ids subset
# =============================================================================


def test_name_lookup() -> None:
    r = lookup_device_name("Intel Corporation 6th-10th Gen Core Processor PCIe Controller (x16)")
    assert (r.vendor, r.device, r.why) == (0x8086, 0x1901, None)
    # ambiguous, none of them in a quirk table: the lowest stands for them (the
    # grouping is the same for each), and it does not matter which
    r = lookup_device_name("Intel Corporation 82574L Gigabit Network Connection")
    assert (r.vendor, r.device, r.matters) == (0x8086, 0x10D3, False)
    assert "no quirk table" in (r.why or "")
    # ambiguous, in different quirk tables: unknown, and said to matter
    r = lookup_device_name("Adaptec AAC-RAID")
    assert r.device is None
    assert r.matters
    assert "may depend" in (r.why or "")
    # a device pci.ids does not name; a vendor name three vendors share
    r = lookup_device_name("Red Hat, Inc. Device 000e")
    assert (r.vendor, r.device) == (None, 0x000E)
    r = lookup_device_name("Device 1234:5678")
    assert (r.vendor, r.device, r.why) == (0x1234, 0x5678, None)
    # a name not in the bundled subset
    r = lookup_device_name("Intel Corporation Frobnicator 9000")
    assert (r.vendor, r.device) == (0x8086, None)
    r = lookup_device_name("Nobody Inc. Thing")
    assert (r.vendor, r.device) == (None, None)


def test_subset_holds_every_quirk_table_id() -> None:
    db = pci_ids._id_db()
    shown = {pair for pairs in db.devices.values() for pair in pairs}
    quirk_ids = pci_ids.quirk_named_ids()
    for q in DEFAULT_QUIRKS.acs_entries():
        if q.vendor is not None and q.device is not None:
            assert (q.vendor, q.device) in quirk_ids
    named_quirk_ids = quirk_ids & shown
    assert (0x8086, 0x8D18) in named_quirk_ids
    assert (0x8086, 0xA110) in named_quirk_ids
    assert db.subclasses["PCI bridge"] == 0x0604


PCI_IDS = Path("/usr/share/misc/pci.ids")
BUILDER = Path(__file__).resolve().parent.parent / "tools" / "build_pci_ids_subset.py"
BUNDLED = Path(pci_ids.__file__).parent.parent / "_data" / "pci_ids_subset.json"


@functools.lru_cache(maxsize=1)
def _builder() -> ModuleType:
    """``tools/build_pci_ids_subset.py``, imported from its path."""
    spec = importlib.util.spec_from_file_location("build_pci_ids_subset", BUILDER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not PCI_IDS.exists(), reason="needs pci.ids (apt-get install pci.ids)")
def test_subset_is_what_the_builder_makes_from_pci_ids() -> None:
    """Regenerate the bundled subset from the installed database and compare."""
    bundled = json.loads(BUNDLED.read_text())
    texts = [p.read_text(errors="replace") for p in sorted(DATA.rglob("*.txt"))]
    made = _builder().build_pci_ids_subset(
        PCI_IDS.read_text(errors="replace"), texts, source=bundled["source"]
    )
    if made["vendors"] != bundled["vendors"]:
        pytest.skip("the installed pci.ids is not the version the subset was made from")
    assert made == bundled


def _pci_ids_of(subset: Mapping[str, Mapping[str, Any]]) -> str:
    """A ``pci.ids`` file holding exactly what ``subset`` names (and a device no one names)."""
    vendors = {int(v, 16): str(name) for v, name in subset["vendors"].items()}
    devices: dict[int, dict[int, str]] = {0x8086: {0xFFFE: "Nobody's Device"}}
    for shown, pairs in subset["devices"].items():
        for pair in pairs:
            v, d = (int(x, 16) for x in pair.split(":"))
            devices.setdefault(v, {})[d] = shown[len(vendors[v]) + 1 :]
    lines = ["# made from the bundled subset", "#\tVersion: 2023.04.11", ""]
    for v, name in sorted(vendors.items()):
        lines.append(f"{v:04x}  {name}")
        for d, device in sorted(devices.get(v, {}).items()):
            lines += [f"\t{d:04x}  {device}", "\t\t1234 5678  A subsystem"]
    classes: dict[int, dict[int, str]] = {}
    for code, class_name in subset["subclasses"].items():
        classes.setdefault(int(code, 16) >> 8, {})[int(code, 16) & 0xFF] = str(class_name)
    for c, subs in sorted(classes.items()):
        lines.append(f"C {c:02x}  Class {c:02x}")
        for sub, sub_name in sorted(subs.items()):
            lines += [f"\t{sub:02x}  {sub_name}", "\t\t00  A programming interface"]
    lines += ["X 00  Another list", "\t0000  Not a device"]
    return "\n".join(lines) + "\n"


def test_builder_script_remakes_the_subset_from_the_names_it_holds(tmp_path: Path) -> None:
    """The builder, run as a script on a ``pci.ids`` holding just the subset's names,
    writes the bundled file byte for byte (the source it records kept)."""
    bundled = BUNDLED.read_text(encoding="utf-8")
    source = tmp_path / "pci.ids"
    source.write_text(_pci_ids_of(json.loads(bundled)))
    out = tmp_path / "pci_ids_subset.json"
    out.write_text(json.dumps({"source": json.loads(bundled)["source"]}))
    assert _builder().main([str(source), "--output", str(out), "--texts", str(DATA)]) == 0
    assert out.read_text(encoding="utf-8") == bundled


def test_builder_script_on_a_tiny_pci_ids(tmp_path: Path) -> None:
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text(
        "03:00.0 Ethernet controller: Intel Corporation I211 Gigabit Network Connection "
        "(rev 03)\n-[0000:00]-+-00.0  Intel Corporation I211 Gigabit Network Connection\n"
    )
    (tmp_path / "pci.ids").write_text(
        "#\tVersion: 2099.01.01\n8086  Intel Corporation\n\t1539  I211 Gigabit Network "
        "Connection\n\ta110  Some Root Port\n\t1234  Unnamed Thing\n"
        "C 06  Bridge device\n\t04  PCI bridge\n\t\t00  Normal decode\n"
    )
    out = tmp_path / "out.json"
    argv = [str(tmp_path / "pci.ids"), "--texts", str(tmp_path / "texts"), "--output", str(out)]
    assert _builder().main(argv) == 0
    assert json.loads(out.read_text()) == {
        "source": "pci.ids 2099.01.01",
        "vendors": {"8086": "Intel Corporation"},
        "subclasses": {"0604": "PCI bridge"},
        "devices": {
            "Intel Corporation I211 Gigabit Network Connection": ["8086:1539"],
            "Intel Corporation Some Root Port": ["8086:a110"],  # a quirk table lists it
        },
    }


# =============================================================================
# Format features, on small texts
# =============================================================================

RP = """\
{addr} PCI bridge [0604]: Intel Corporation Device [8086:a110] (rev f1) (prog-if 00 [Normal deco])
\tControl: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B-
\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR-
\tIOMMU group: {group}
\tBus: primary={pri}, secondary={sec}, subordinate={sub}, sec-latency=0
\tCapabilities: [40] Express (v2) Root Port (Slot+), MSI 00
\tCapabilities: [100 v1] Access Control Services
\t\tACSCap:\tSrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-
\t\tACSCtl:\tSrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-
\tKernel driver in use: pcieport
"""
EP = """\
{addr} Ethernet controller [0200]: Intel Corporation I211 Gigabit Network Connection [8086:1539]
\tControl: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B-
\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR-
\tIOMMU group: {group}
\tCapabilities: [70] Express (v2) Endpoint, MSI 00
\tKernel driver in use: igb
"""


def rp(addr: str = "00:1c.0", sec: str = "02", sub: str = "02", group: int = 1) -> str:
    return RP.format(addr=addr, pri=addr.split(":")[-2][-2:], sec=sec, sub=sub, group=group)


def ep(addr: str = "02:00.0", group: int = 2) -> str:
    return EP.format(addr=addr, group=group)


def test_minimal_machine() -> None:
    reading = read_lspci_text(rp() + "\n" + ep())
    topo = reading.topology
    assert topo is not None
    port, nic = topo.get("00:1c.0"), topo.get("02:00.0")
    assert (port.vendor, port.device, port.class_code) == (0x8086, 0xA110, 0x060400)
    assert (port.header_type, port.secondary_bus, port.subordinate_bus) == (1, 2, 2)
    assert port.pcie_type is PcieType.ROOT_PORT
    assert port.driver == "pcieport"
    assert port.acs is not None
    assert port.acs.cap.names() == "SV|TB|RR|CR|UF"
    assert nic.pcie_type is PcieType.ENDPOINT
    assert nic.class_code == 0x020000
    assert reading.observed is not None
    assert reading.observed.source == "lspci-vv"
    assert dict(reading.observed.groups) == {1: ("0000:00:1c.0",), 2: ("0000:02:00.0",)}
    assert reading.unknowns == ()


def test_domains_and_vmd_domains() -> None:
    text = rp("10000:e0:01.0", "e1", "e1") + "\n" + ep("10000:e1:00.0")
    topo = read_lspci_text(text).topology
    assert topo is not None
    assert topo.bridge_above(topo.get("10000:e1:00.0").address) is topo.get("10000:e0:01.0")


@pytest.mark.parametrize("form", ["00:1c.0/02:00.0", "00:1c.0/00.0", "0000:00:1c.0/02:00.0"])
def test_path_forms(form: str) -> None:
    topo = read_lspci_text(rp() + "\n" + ep(form)).topology
    assert topo is not None
    assert "0000:02:00.0" in topo


def test_path_form_needs_the_bridge() -> None:
    assert "not in the input" in str(error(ep("00:1d.0/00.0")))


def test_mail_mangling_is_tolerated() -> None:
    """Non-breaking spaces for tabs, spaces for tabs, a wrapped header and ACS line."""
    text = rp() + "\n" + ep()
    mangled = text.replace("\t\t", "\u00a0 \u00a0 \u00a0 \u00a0 ").replace("\t", "        ")
    mangled = mangled.replace("Intel Corporation I211 ", "Intel Corporation I211 \n", 1)
    mangled = mangled.replace("CmpltRedir+ UpstreamFwd+", "CmpltRedir+ \nUpstreamFwd+")
    assert read_lspci_text(mangled).topology == read_lspci_text(text).topology


def test_text_around_blocks_is_skipped() -> None:
    text = "Hi all,\n\nlspci -vvv:\n" + rp() + "\nThanks,\n  Someone\n\n" + ep() + "Bye\n-- \nsig"
    reading = read_lspci_text(text)
    assert reading.topology == read_lspci_text(rp() + "\n" + ep()).topology
    # a short line at column 0 ends a block: what follows is not the device's
    err = error(rp() + "Bye\n\tIOMMU group: 9\n")
    assert "outside a device block" in str(err)


def test_lspci_v_flags_group_and_acs_capability_without_bits() -> None:
    text = """\
00:1c.0 PCI bridge: Intel Corporation Device a110 (rev f1) (prog-if 00 [Normal decode])
\tFlags: bus master, fast devsel, latency 0, IRQ 120, IOMMU group 9
\tBus: primary=00, secondary=02, subordinate=02, sec-latency=0
\tCapabilities: [40] Express Root Port (Slot+), MSI 00
\tCapabilities: [100] Access Control Services
\tKernel driver in use: pcieport
"""
    reading = read_lspci_text(text)
    assert reading.source == "lspci-v"
    assert reading.observed is not None
    assert dict(reading.observed.groups) == {9: ("0000:00:1c.0",)}
    assert reading.topology is not None
    fn = reading.topology.get("00:1c.0")
    assert fn.acs is None
    assert "acs" in fn.unknown
    assert (fn.vendor, fn.device) == (0x8086, 0xA110)  # "Vendor Device a110"
    assert fn.class_code == 0x060400


def test_access_denied() -> None:
    text = """\
00:1c.0 PCI bridge [0604]: Intel Corporation Device [8086:a110] (rev f1)
\tControl: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B-
\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR-
\tIOMMU group: 3
\tBus: primary=00, secondary=02, subordinate=02, sec-latency=0
\tCapabilities: <access denied>
"""
    reading = read_lspci_text(text)
    assert reading.topology is not None
    fn = reading.topology.get("00:1c.0")
    assert {"pcie", "acs"} <= fn.unknown
    assert fn.pcie_type is None
    assert {(u.fact, u.device) for u in reading.unknowns} == {
        ("pcie", "0000:00:1c.0"),
        ("acs", "0000:00:1c.0"),
    }


def test_plain_lspci_has_unknown_config() -> None:
    text = (
        "00:1c.0 PCI bridge: Intel Corporation Device a110\n"
        "00:1f.0 ISA bridge: Intel Corporation Device a149\n"
    )
    reading = read_lspci_text(text)
    assert reading.source == "lspci"
    facts = {(u.device, u.fact) for u in reading.unknowns}
    assert ("0000:00:1c.0", "bus-numbers") in facts
    assert ("0000:00:1f.0", "config") in facts


def test_multifunction_is_derived_from_the_slot() -> None:
    text = ep("00:1f.0") + "\n" + ep("00:1f.3", 2) + "\n" + ep("00:14.0", 3)
    topo = read_lspci_text(text).topology
    assert topo is not None
    assert topo.get("00:1f.0").multifunction
    assert topo.is_multifunction(topo.get("00:1f.3"))
    assert not topo.get("00:14.0").multifunction


def test_sriov_vfs_are_recognised() -> None:
    pf = """\
03:00.0 Ethernet controller [0200]: Intel Corporation I350 Gigabit Network Connection [8086:1521]
\tControl: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B-
\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR-
\tCapabilities: [a0] Express (v2) Endpoint, MSI 00
\tCapabilities: [160 v1] Single Root I/O Virtualization (SR-IOV)
\t\tIOVCap:\tMigration- 10BitTagReq- Interrupt Message Number: 000
\t\tIOVCtl:\tEnable+ Migration- Interrupt- MSE+ ARIHierarchy+ 10BitTagReq-
\t\tIOVSta:\tMigration-
\t\tInitial VFs: 8, Total VFs: 8, Number of VFs: 2, Function Dependency Link: 00
\t\tVF offset: 128, stride: 4, Device ID: 1520
"""
    vf = """\
03:{slot}.0 Ethernet controller [0200]: Intel Corporation I350 Virtual Function [8086:1520]
\tControl: I/O- Mem- BusMaster- SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B-
\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR-
\tCapabilities: [70] Express (v2) Endpoint, MSI 00
"""
    text = (
        pf
        + "\n"
        + vf.format(slot="10")
        + "\n"
        + vf.format(slot="10").replace("03:10.0", "03:10.4")
    )
    topo = read_lspci_text(text).topology
    assert topo is not None
    pf_fn = topo.get("03:00.0")
    assert pf_fn.sriov is not None
    assert pf_fn.sriov.num_vfs == 2
    assert [str(f) for f in topo.vfs_of(pf_fn.address)] == ["0000:03:10.0", "0000:03:10.4"]
    assert not topo.is_multifunction(topo.get("03:10.4"))


def test_duplicate_blocks_merge_when_they_agree() -> None:
    text = rp() + "\n" + rp() + "\n" + ep()
    assert read_lspci_text(text).topology == read_lspci_text(rp() + "\n" + ep()).topology


def test_hex_dump_gives_exact_ids_and_header() -> None:
    row0 = "00: 86 80 10 a1 07 04 10 00 f1 00 04 06 10 00 81 00\n"
    # in the block (lspci -vvvxxx), or as a second block (lspci -xxx -s ...)
    second = "00:1c.0 PCI bridge: Intel Corporation Device a110\n" + row0
    for text in (rp() + row0, rp() + "\n" + second):
        topo = read_lspci_text(text).topology
        assert topo is not None
        assert topo.get("00:1c.0").multifunction  # bit 7 of the header type byte
    bad = row0.replace("86 80 10 a1", "86 80 11 a1")
    assert "hex dump reads ids 8086:a111" in str(error(rp() + bad))
    assert "two different ids" in str(error(rp() + "\n" + second.replace(row0, bad)))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            (
                "UpstreamFwd+ EgressCtrl- DirectTrans-\n\t\tACSCtl",
                "EgressCtrl- DirectTrans-\n\t\tACSCtl",
            ),
            "lacks UpstreamFwd",
        ),
        (("SrcValid+ TransBlk+", "SrcValid+ TransBlk? "), "unexpected"),
        (("subordinate=02, sec", "subordinate=2, sec"), "malformed bridge bus line"),
        (("IOMMU group: 1", "IOMMU group: one"), "malformed IOMMU group"),
        (("Express (v2) Root Port", "Express (v2) Root Pork"), "unknown PCIe port type"),
        (("Capabilities: [40]", "Capabilities: [40"), "malformed capability line"),
        (
            ("\tKernel driver in use: pcieport", "\n\tKernel driver in use: pcieport"),
            "outside a device block",
        ),
        (("\tCapabilities: [100 v1] Access Control Services\n", ""), "outside an Access Control"),
        (("PCI bridge [0604]: ", "PCI bridge [0604] "), "without 'class: vendor device'"),
    ],
)
def test_malformed_structures_are_input_errors(change: tuple[str, str], problem: str) -> None:
    text = rp()
    assert change[0] in text
    err = error(text.replace(*change))
    assert problem in str(err)
    assert err.path == "paste.txt"
    assert err.line is not None


def test_conflicting_duplicates_are_input_errors() -> None:
    err = error(rp() + "\n" + rp(group=7))
    assert "two different IOMMU groups" in str(err)


def test_inconsistent_topology_is_an_input_error() -> None:
    err = error(rp("00:1c.0", "02", "02") + "\n" + rp("00:1d.0", "02", "02"))
    assert "claimed by two bridges" in str(err)


def test_no_device_is_an_input_error() -> None:
    assert "no lspci device" in str(error("Hello\n\nworld\n"))
    assert "no lspci tree" in str(error("Hello\n", read_lspci_tree))


def test_unknown_header_type_device_is_left_out() -> None:
    text = (
        ep("00:1f.0")
        + "\n00:1f.7 Non-VGA unclassified device: Intel Corporation Device 1234\n"
        + "\t!!! Unknown header type 7f\n"
    )
    reading = read_lspci_text(text)
    assert reading.topology is not None
    assert "0000:00:1f.7" not in reading.topology
    assert ("0000:00:1f.7", "config") in {(u.device, u.fact) for u in reading.unknowns}


def test_detectors() -> None:
    assert looks_like_lspci_text(rp())
    assert not looks_like_lspci_text((ORACLE / "designed" / "switch.lspci").read_text())
    assert not looks_like_lspci_text('{"functions": []}')
    assert looks_like_lspci_tree("-[0000:00]-+-00.0\n           \\-1f.0")
    assert not looks_like_lspci_tree(rp())


def test_tree_forms() -> None:
    text = """\
-+-[0000:80]-+-00.0-[81]----00.0  Intel Corporation 82574L Gigabit Network Connection [8086:10d3]
 |           \\-01.0-[82-83]--+-00.0-[83]--
 |                           \\-00.1
 \\-[0000:00]-+-00.0
             \\-1f.0
"""
    topo = read_lspci_tree(text).topology
    assert topo is not None
    assert [str(f) for f in topo.enumeration_order()] == [
        "0000:00:00.0",
        "0000:00:1f.0",
        "0000:80:00.0",
        "0000:80:01.0",
        "0000:81:00.0",
        "0000:82:00.0",
        "0000:82:00.1",
    ]
    nic = topo.get("81:00.0")
    assert (nic.vendor, nic.device) == (0x8086, 0x10D3)
    assert "ids" not in nic.unknown
    assert topo.get("80:01.0").subordinate_bus == 0x83
    assert topo.get("82:00.0").multifunction
    assert "continues no bus" in str(error(text + "      +-02.0\n", read_lspci_tree))


# =============================================================================
# Fuzzing: mutated real files raise nothing but InputError
# =============================================================================

FUZZ_FILES = [REAL / n for n in sorted({*TEXTS, *TREES})] + [
    VVV / "q35-1102.txt",
    VVV / "q35-1102.tree.txt",
]
_SEEDS = [p.read_text(errors="replace").split("\n") for p in FUZZ_FILES]
_JUNK = [
    "",
    "\u00a0",
    "\tIOMMU group: 5",
    "\t\tACSCap:\tSrcValid+",
    "00: ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff",
    "00:1f.7 Host bridge: Intel Corporation Device 1234",
    "\tBus: primary=00, secondary=00, subordinate=00, sec-latency=0",
    "   +-1f.0",
    "-[0000:00]-+-00.0",
    "\t\tVF offset: 1, stride: 0, Device ID: 0010",
    "\t\tInitial VFs: 8, Total VFs: 8, Number of VFs: 9, Function Dependency Link: 00",
    "\tCapabilities: [100 v1] Single Root I/O Virtualization (SR-IOV)",
    "ff:1f.7/00.0 Foo: Bar",
]

_edit = st.tuples(
    st.sampled_from(["delete", "duplicate", "swap", "truncate", "insert", "nbsp", "cut", "char"]),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(_JUNK),
)


def _mutate(lines: list[str], edits: list[tuple[str, int, int, str]]) -> str:
    lines = list(lines)
    for op, i, j, junk in edits:
        if not lines:
            break
        i %= len(lines)
        j %= len(lines)
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[j])
        elif op == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "truncate":
            lines = lines[: i + 1]
        elif op == "insert":
            lines.insert(i, junk)
        elif op == "nbsp":
            lines[i] = lines[i].replace("\t", "\u00a0", 1 + j % 3)
        elif op == "cut":
            lines[i] = lines[i][: j % (len(lines[i]) + 1)]
        else:
            k = j % (len(lines[i]) + 1)
            lines[i] = lines[i][:k] + "0+:[]. \t/x"[j % 10] + lines[i][k:]
    return "\n".join(lines)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=len(_SEEDS) - 1),
    edits=st.lists(_edit, min_size=1, max_size=6),
)
def test_mutated_real_files_raise_only_input_errors(
    seed: int, edits: list[tuple[str, int, int, str]]
) -> None:
    text = _mutate(_SEEDS[seed], edits)
    problems: list[InputError] = []
    for reader in (read_lspci_text, read_lspci_tree):
        try:
            reading = reader(text, "mutated.txt")
        except InputError as exc:
            problems.append(exc)
            continue
        assert reading.topology is not None
        canonical_groups(reading.topology)  # whatever was read can be grouped
    assert all(p.path == "mutated.txt" for p in problems)
    looks_like_lspci_text(text)
    looks_like_lspci_tree(text)
