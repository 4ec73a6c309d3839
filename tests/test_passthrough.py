"""``passthrough``: every part of the answer checked against the input, independently.

Inputs: every built-in example, every oracle capture and designed machine in
``tests/data/oracle`` (``lspci -xxxx`` dumps, JSON captures with the kernel's
groups, the 7.3 captures, arm64 captures) and every file of
``tests/data/realdata`` that holds a topology. Every endpoint of each input is
named, and each part of each answer is checked against the input itself,
never against what the code under test printed elsewhere:

* members: the kernel's group of the device as the input lists it (its
  group lines), or, without them, the group ``canonical_groups`` gives it;
* roles: a bridge by its header type or class (``vfio_pci_core_register_device``
  binds header type 0 only; class 0x06 is the platform's own), a card function
  by its slot, everything else an endpoint that must be bound;
* ids: the endpoints' ``vendor:device`` as the input shows them;
* drivers: the topology's, and for ``lspci`` text the ``Kernel driver in use``
  lines of the file itself, read here with a regular expression;
* reset: FLR and PM from the raw configuration space of the JSON captures,
  decoded here byte by byte (PCIe DevCap bit 28, PMCSR No_Soft_Reset), and the
  bus reset from the bus numbers in the bridges' raw registers (offset 0x19):
  ``pci_parent_bus_reset`` only for a device alone on a non-root bus;
* slots: every port tried is moved to with ``what_if`` and the card's group
  after is checked; the ACS override the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings

import iommugroups
from iommugroups import (
    Acs,
    Grouping,
    PciAddress,
    PcieType,
    PciFunction,
    Reading,
    SriovCapability,
    Topology,
    UnknownDevice,
    canonical_groups,
    examples,
    parse_change,
    passthrough,
    read,
    what_if,
)
from iommugroups._analysis.names import PCIE_TYPE_KEYS
from iommugroups._analysis.passthrough import (
    DEVICE_CLASSES,
    PASSTHROUGH_SCHEMA,
    PassthroughReport,
    PassthroughVerdict,
    Role,
)
from iommugroups._cli.app import main
from iommugroups._kernel.reset import (
    RESET_METHODS,
    Availability,
    ResetRegisters,
    pci_reset_methods,
    reset_registers,
)
from iommugroups._kernel.vfio import DRIVER_MANAGED_DMA, blocks_dma_owner
from iommugroups.schemas import SCHEMAS, validate
from iommugroups.testing import topologies

DATA = Path(__file__).parent / "data"
ORACLE = DATA / "oracle"
REAL = DATA / "realdata"
ROOT = Path(__file__).resolve().parent.parent

#: Captures and designed machines: JSON (with the kernel's groups and raw config)
#: and lspci -xxxx dumps (the prediction).
CAPTURES = sorted(
    [
        *ORACLE.glob("captures/*.json"),
        *ORACLE.glob("captures/*.lspci"),
        *ORACLE.glob("designed/*.json"),
        *ORACLE.glob("designed/*.lspci"),
        *ORACLE.glob("k7/x86/*.json"),
        *ORACLE.glob("k7/designed/*.json"),
        *ORACLE.glob("arm64/*.json"),
        *ORACLE.glob("k7/arm64/*.json"),
    ]
)
REALDATA = sorted(p for p in REAL.glob("*/*.txt"))
SNAPSHOTS = sorted((ROOT / "docs" / "_data").glob("machine*.json"))


def _rel(path: Path) -> str:
    return str(path.relative_to(path.parents[2]))


# ------------------------------------------------------------------ the inputs
class Input(NamedTuple):
    name: str
    reading: Reading
    drivers_known: bool
    configs: Mapping[str, bytes]
    text: str


@cache
def _input(path: str) -> Input | None:
    p = Path(path)
    reading = read(p)
    if reading.topology is None or not len(reading.topology):
        return None
    configs: dict[str, bytes] = {}
    text = ""
    if p.suffix == ".json":
        data = json.loads(p.read_text())
        devices = data.get("devices") if isinstance(data, dict) else None
        if isinstance(devices, dict):
            for name, dev in devices.items():
                if isinstance(dev, dict) and isinstance(dev.get("config_hex"), str):
                    configs[name] = bytes.fromhex(dev["config_hex"])
    else:
        text = p.read_text(errors="replace")
    shown = reading.source in ("sysfs", "snapshot") or (
        reading.source.startswith("lspci") and any(f.driver for f in reading.topology.functions)
    )
    return Input(_rel(p), reading, shown, configs, text)


def _inputs() -> Iterator[tuple[str, str]]:
    for name in sorted(examples.EXAMPLES):
        yield f"example:{name}", name
    for path in [*CAPTURES, *REALDATA, *SNAPSHOTS]:
        yield _rel(path), str(path)


#: Every input, as (label, source); those with no topology or no endpoint (a
#: kernel log, a group listing) are counted in ``test_the_inputs_are_all_there``.
ALL_INPUTS = list(_inputs())


def _get(source: str) -> Input | None:
    if source in examples.EXAMPLES:
        return Input(
            f"example:{source}",
            Reading(topology=examples.get(source), source="example"),
            False,
            {},
            "",
        )
    return _input(source)


def _endpoints(topo: Topology) -> list[str]:
    return [str(f.address) for f in sorted(topo.functions, key=lambda f: f.address) if _ep(f)]


def _ep(f: PciFunction) -> bool:
    """An endpoint by its header type and class (the test's own reading of the spec)."""
    return f.header_type == 0 and f.class_code >> 16 != 0x06


def _norm(name: str) -> str:
    try:
        return str(PciAddress.parse(name))
    except ValueError:
        return name


@cache
def _report(source: str) -> tuple[Input, PassthroughReport] | None:
    inp = _get(source)
    if inp is None:
        return None
    r = inp.reading
    assert r.topology is not None
    names = _endpoints(r.topology)
    if not names:
        return None
    report = passthrough(
        r.topology,
        names,
        observed=r.observed,
        unknowns=r.unknowns,
        kernel=r.kernel,
        drivers_known=inp.drivers_known,
        configs=inp.configs or None,
    )
    return inp, report


def _answers(source: str) -> tuple[Input, PassthroughReport]:
    got = _report(source)
    if got is None:
        pytest.skip("no topology, or no endpoint")
    return got


INPUTS = [(label, source) for label, source in ALL_INPUTS if _report(source) is not None]


def test_the_inputs_are_all_there() -> None:
    assert len(CAPTURES) >= 150
    assert len(REALDATA) >= 30
    assert len(SNAPSHOTS) >= 2
    assert len(INPUTS) >= 150
    without = [label for label, source in ALL_INPUTS if _report(source) is None]
    # kernel logs and group listings: no topology to answer from
    assert all("realdata" in label for label in without), without


# ---------------------------------------------------------------- the members
def _kernel_groups(r: Reading) -> dict[str, tuple[str, ...]] | None:
    """Device -> its group's members, as the input's group lines list them."""
    if r.observed is None or not r.observed.groups:
        return None
    out: dict[str, tuple[str, ...]] = {}
    for members in r.observed.groups.values():
        names = tuple(sorted(_norm(m) for m in members))
        for n in names:
            out[n] = names
    return out


@pytest.mark.parametrize(("label", "source"), INPUTS, ids=[i[0] for i in INPUTS])
def test_members_roles_ids_and_drivers(label: str, source: str) -> None:
    inp, report = _answers(source)
    r = inp.reading
    topo = report.topology
    assert topo is not None
    kernel = _kernel_groups(r)
    assert report.groups_from == ("kernel" if kernel is not None else "model")
    if kernel is None:
        model = canonical_groups(topo, kernel=r.kernel)
    by_name = topo.by_name()
    named = set(_endpoints(r.topology or topo))
    answered: set[str] = set()
    for d in report.devices:
        answered.update(d.named)
        assert d.device in named
        # members: the kernel's group as listed, else the prediction
        if kernel is not None:
            want = kernel.get(d.device)
        else:
            gid = model.group_of(d.device)
            want = tuple(sorted(model.groups[gid])) if gid is not None else None
        if want is None:
            assert d.verdict in (PassthroughVerdict.NO_GROUP, PassthroughVerdict.UNKNOWN)
            assert d.members == ()
            continue
        assert tuple(sorted(m.name for m in d.members)) == want
        # roles: by header type and class, by slot
        fn = by_name[d.device]
        head = by_name[str(fn.physfn)] if fn.physfn is not None else fn
        a = head.address
        for m in d.members:
            f = by_name.get(m.name)
            if f is None:
                assert m.role is Role.UNKNOWN
            elif not _ep(f) or f.is_bridge:
                assert m.role is Role.BRIDGE, m
            else:
                top = by_name[str(f.physfn)] if f.physfn is not None else f
                same_slot = (top.address.domain, top.address.bus, top.address.device) == (
                    a.domain,
                    a.bus,
                    a.device,
                )
                if same_slot:
                    assert m.role is Role.CARD, m
                elif "class" in f.unknown:  # a host bridge or a device: not shown
                    assert m.role is Role.UNKNOWN, m
                else:
                    assert m.role is Role.ENDPOINT, m
            assert m.named == (m.name in named)
        # the endpoints to bind, their ids, the kernel parameter
        bind = [m.name for m in d.members if m.role in (Role.CARD, Role.ENDPOINT)]
        assert list(d.vfio.bind) == bind
        ids = [
            (by_name[n].vendor, by_name[n].device)
            for n in bind
            if n in by_name and "ids" not in by_name[n].unknown
        ]
        assert list(d.vfio.ids) == list(dict.fromkeys(ids))
        if ids:
            text = ",".join(f"{v:04x}:{dv:04x}" for v, dv in dict.fromkeys(ids))
            assert d.vfio.kernel_parameter == f"vfio-pci.ids={text}"
            assert d.vfio.modprobe[0] == f"options vfio-pci ids={text}"
        assert d.vfio.driverctl == tuple(f"driverctl set-override {n} vfio-pci" for n in bind)
        elsewhere = [
            str(f.address)
            for f in topo.functions
            if str(f.address) not in bind
            and "ids" not in f.unknown
            and (f.vendor, f.device) in set(ids)
        ]
        assert d.vfio.ids_shared_count == len(elsewhere)
        assert set(d.vfio.ids_shared_with) <= set(elsewhere)
        assert len(d.vfio.ids_shared_with) == min(16, len(elsewhere))
        assert [x["device"] for x in d.to_json()["libvirt"]] == bind
        # drivers: the topology's; known only where the input says
        for m in d.members:
            f = by_name.get(m.name)
            if f is None:
                continue
            assert m.driver == f.driver
            assert m.driver_known == (f.driver is not None or inp.drivers_known)
            if m.driver_known:
                assert m.blocks_vfio == (
                    f.driver is not None
                    and f.driver not in ("pcieport", "pci-stub", "vfio-pci")
                    and not f.driver.endswith("_vfio_pci")
                )
            else:
                assert m.blocks_vfio is None
        assert dict(d.vfio.host_drivers) == {
            n: by_name[n].driver
            for n in bind
            if by_name[n].driver is not None and by_name[n].driver != "vfio-pci"
        }
        # the verdict follows from the roles
        others = [m for m in d.members if m.role is Role.ENDPOINT]
        if d.verdict is PassthroughVerdict.ALONE:
            assert not others
            assert all(m.role is not Role.UNKNOWN for m in d.members)
        if others and kernel is not None:
            assert d.verdict is PassthroughVerdict.WITH_OTHERS
        if not others and d.verdict is PassthroughVerdict.WITH_OTHERS:
            pytest.fail(f"{d.device}: with-others without another endpoint")
    assert answered == named
    assert validate(report.to_json(), PASSTHROUGH_SCHEMA, strict=True) == []


_DRIVER_LINE = re.compile(r"^\s+Kernel driver in use: (\S+)\s*$")
_HEAD_LINE = re.compile(r"^(?:(?P<dom>[0-9a-f]{4,8}):)?(?P<addr>[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) ")


def _drivers_in_text(text: str) -> dict[str, str]:
    """``Kernel driver in use`` per device, read straight from ``lspci`` text."""
    out: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        m = _HEAD_LINE.match(line)
        if m:
            current = f"{m['dom'] or '0000'}:{m['addr']}"
            continue
        d = _DRIVER_LINE.match(line)
        if d and current is not None:
            out.setdefault(current, d[1])
    return out


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in REALDATA
        if "Kernel driver in use" in p.read_text(errors="replace") and _report(str(p))
    ],
    ids=_rel,
)
def test_bound_drivers_are_the_ones_lspci_printed(path: Path) -> None:
    inp, report = _answers(str(path))
    printed = _drivers_in_text(inp.text)
    assert printed
    seen = 0
    for d in report.devices:
        for m in d.members:
            if m.function is None:
                continue
            assert m.driver_known
            assert m.driver == printed.get(m.name), m.name
            seen += 1
        for n, drv in d.vfio.host_drivers.items():
            assert printed[n] == drv
    assert seen


# ---------------------------------------------------------------------- reset
def _u16(cfg: bytes, off: int) -> int | None:
    return int.from_bytes(cfg[off : off + 2], "little") if off + 2 <= len(cfg) else None


def _u32(cfg: bytes, off: int) -> int | None:
    return int.from_bytes(cfg[off : off + 4], "little") if off + 4 <= len(cfg) else None


def _cap(cfg: bytes, want: int) -> int | None:
    """The standard capability ``want``, walked here from the raw bytes."""
    if len(cfg) < 0x40 or not cfg[0x06] & 0x10:
        return None
    pos = cfg[0x34]
    for _ in range(48):
        if pos < 0x40 or pos + 2 > len(cfg):
            return None
        pos &= ~3
        if cfg[pos] == 0xFF:
            return None
        if cfg[pos] == want:
            return pos
        pos = cfg[pos + 1]
    return None


def _captures_with_config() -> list[Path]:
    return [p for p in CAPTURES if p.suffix == ".json" and _has_config(p)]


def _has_config(p: Path) -> bool:
    data = json.loads(p.read_text())
    devices = data.get("devices")
    return isinstance(devices, dict) and any(
        isinstance(d, dict) and d.get("config_hex") for d in devices.values()
    )


@pytest.mark.parametrize("path", _captures_with_config(), ids=_rel)
def test_reset_methods_from_the_raw_registers(path: Path) -> None:
    got = _report(str(path))
    if got is None:
        pytest.skip("no endpoint")
    inp, report = got
    cfgs = {_norm(k): v for k, v in inp.configs.items()}
    # bus numbers: each bridge's secondary bus from its own registers (0x19)
    secondary = {
        (int(n[:4], 16), cfg[0x19])
        for n, cfg in cfgs.items()
        if len(cfg) > 0x19 and cfg[0x0E] & 0x7F in (1, 2)
    }
    on_bus: dict[tuple[int, int], list[str]] = {}
    for n in cfgs:
        a = PciAddress.parse(n)
        on_bus.setdefault((a.domain, a.bus), []).append(n)
    checked = 0
    for d in report.devices:
        for r in d.reset:
            cfg = cfgs.get(r.device)
            assert [m.name for m in r.methods][:6] == [n for n, _ in RESET_METHODS][:6]
            if cfg is None:
                continue
            # FLR: the PCIe capability's Device Capabilities, bit 28
            exp = _cap(cfg, 0x10)
            devcap = _u32(cfg, exp + 4) if exp is not None else 0
            flr = r.method("flr").available
            if devcap is not None:
                assert flr is (Availability.YES if devcap & (1 << 28) else Availability.NO)
            # PM reset: a PM capability whose PMCSR has No_Soft_Reset (bit 3) clear
            pm_pos = _cap(cfg, 0x01)
            csr = _u16(cfg, pm_pos + 4) if pm_pos is not None else None
            pm = r.method("pm").available
            if pm_pos is None:
                assert pm is Availability.NO
            elif csr is not None:
                assert pm is (Availability.NO if csr & 0x08 else Availability.YES)
            # bus: alone on a bus some bridge has as its secondary bus
            a = PciAddress.parse(r.device)
            key = (a.domain, a.bus)
            bus = r.method("bus").available
            if key not in secondary:
                assert bus is Availability.NO  # a root bus: no bridge to reset it
            elif on_bus[key] == [r.device]:
                assert bus is Availability.YES
                assert r.shares_bus == ()
            else:
                assert bus is not Availability.YES
                assert set(r.shares_bus) == set(on_bus[key]) - {r.device}
            checked += 1
    if report.devices:
        assert checked


def test_without_the_registers_flr_and_pm_are_unknown() -> None:
    report = passthrough(examples.desktop(), ["gpu", "usb", "nvme"])
    for d in report.devices:
        for r in d.reset:
            for name in ("flr", "af_flr", "pm"):
                m = r.method(name)
                if m.available is not Availability.NO:  # a quirk may take it away
                    assert m.available is Availability.UNKNOWN
    assert any("FLR" in n for n in report.notes)


def test_reset_quirks_as_the_kernels_have_them() -> None:
    """drivers/pci/quirks.c of 6.1, 6.12, 7.2 and 7.3."""
    port = PciFunction(
        "00:01.0",
        class_code=0x060400,
        header_type=1,
        pcie_type=PcieType.ROOT_PORT,
        secondary_bus=1,
        subordinate_bus=1,
    )

    def methods(
        vendor: int,
        device: int,
        kernel: str,
        regs: ResetRegisters | None = None,
        cls: int = 0x028000,
        rev: int | None = None,
    ) -> dict[str, str]:
        fn = PciFunction(
            "01:00.0",
            vendor=vendor,
            device=device,
            class_code=cls,
            pcie_type=PcieType.ENDPOINT,
            revision=rev,
        )
        topo = Topology([port, fn])
        got = pci_reset_methods(topo, fn, regs, kernel=kernel)
        return {m.name: m.available.value for m in got.methods}

    # quirk_no_bus_reset: Atheros in every kernel, Qualcomm WCN6855 since 6.12
    assert methods(0x168C, 0x0030, "6.1")["bus"] == "no"
    assert methods(0x17CB, 0x1103, "6.1")["bus"] == "yes"
    assert methods(0x17CB, 0x1103, "6.12")["bus"] == "no"
    assert methods(0x10DE, 0x2345, "7.3")["bus"] == "no"  # (device & 0xffc0) == 0x2340
    assert methods(0x10DE, 0x2385, "7.3")["bus"] == "yes"
    # quirk_no_flr: AMD 0x1502 only since 7.2; SolidRun SNET revision 1 only
    flr = ResetRegisters(flr=True, af_flr=False, pm=False)
    assert methods(0x1022, 0x1502, "6.12", flr)["flr"] == "yes"
    assert methods(0x1022, 0x1502, "7.2", flr)["flr"] == "no"
    assert methods(0xD063, 0x1000, "7.3", flr, rev=1)["flr"] == "no"
    assert methods(0xD063, 0x1000, "7.3", flr, rev=2)["flr"] == "yes"
    assert methods(0xD063, 0x1000, "7.3", flr)["flr"] == "unknown"  # revision not shown
    # quirk_no_pm_reset: ATI VGA below a port; Mellanox Spectrum
    pm = ResetRegisters(flr=False, af_flr=False, pm=True, no_soft_reset=False)
    assert methods(0x1002, 0x687F, "7.3", pm, cls=0x030000)["pm"] == "no"
    assert methods(0x1002, 0x687F, "7.3", pm, cls=0x040300)["pm"] == "yes"
    assert methods(0x15B3, 0xCF70, "6.1", pm)["pm"] == "no"
    nsr = ResetRegisters(flr=False, af_flr=False, pm=True, no_soft_reset=True)
    assert methods(0x8086, 0x1533, "7.3", nsr)["pm"] == "no"
    # pci_dev_reset_methods[]: Chelsio, any device, has an entry
    assert methods(0x1425, 0x1234, "7.3")["device_specific"] == "unknown"
    assert methods(0x8086, 0x1533, "7.3")["device_specific"] == "no"
    # cxl_bus is not in 6.1's pci_reset_fn_methods[]
    assert "cxl_bus" not in methods(0x8086, 0x1533, "6.1")
    assert methods(0x8086, 0x1533, "7.3")["cxl_bus"] == "unknown"


def test_bus_reset_refusals() -> None:
    """pci_parent_bus_reset: a root bus, a virtual bus, a bridge, another function."""
    topo = examples.desktop()
    root = pci_reset_methods(topo, topo.get("00:1f.2"))
    assert root.method("bus").available is Availability.NO
    assert root.bridge is None
    bridge = pci_reset_methods(topo, topo.get("07:08.0"))
    assert bridge.method("bus").available is Availability.NO
    mf = pci_reset_methods(topo, topo.get("0a:00.1"))
    assert mf.method("bus").available is Availability.NO
    assert mf.shares_bus == ("0000:0a:00.0",)
    # a PF alone on its bus: a bus reset resets its VFs (on the virtual bus) too
    port = PciFunction(
        "00:01.0",
        class_code=0x060400,
        header_type=1,
        pcie_type=PcieType.ROOT_PORT,
        secondary_bus=1,
        subordinate_bus=2,
    )
    cap = SriovCapability(total_vfs=2, num_vfs=2, offset=0x100, stride=1, vf_device=0x10ED)
    pf = PciFunction(
        "01:00.0", vendor=0x8086, device=0x10FB, pcie_type=PcieType.ENDPOINT, sriov=cap
    )
    vf = PciFunction(
        "02:00.0", vendor=0x8086, device=0x10ED, physfn="01:00.0", pcie_type=PcieType.ENDPOINT
    )
    t = Topology([port, pf, vf])
    r = pci_reset_methods(t, pf)
    assert r.method("bus").available is Availability.YES
    assert r.below == ("0000:02:00.0",)
    v = pci_reset_methods(t, vf)
    assert v.method("bus").available is Availability.NO  # no dev->bus->self
    assert v.method("device_specific").available is Availability.UNKNOWN  # 82599 VF


def test_reset_registers_of_a_partial_dump_are_unknown() -> None:
    cfg = bytes.fromhex(
        json.loads((ORACLE / "captures" / "q35-1000.json").read_text())["devices"]["0000:00:03.0"][
            "config_hex"
        ]
    )
    full = reset_registers(cfg)
    assert full.pm is not None
    assert full.flr is not None
    assert reset_registers(cfg[:64]) == ResetRegisters()


# ---------------------------------------------------------- slots and override
def _alone(topo: Topology, group: tuple[str, ...], card: set[str]) -> bool:
    by = topo.by_name()
    return all(n in card or (n in by and not _ep(by[n])) or by[n].is_bridge for n in group)


def _slot_devices() -> list[tuple[str, str]]:
    out = []
    for label, source in INPUTS:
        got = _report(source)
        if got is None:
            continue
        if any(d.slots is not None and d.slots.tried for d in got[1].devices):
            out.append((label, source))
    return out


SLOT_INPUTS = _slot_devices()


def test_slot_searches_were_made() -> None:
    assert len(SLOT_INPUTS) >= 20
    options = sum(
        len(d.slots.options)
        for _, s in SLOT_INPUTS
        for d in _answers(s)[1].devices
        if d.slots is not None
    )
    assert options >= 50


@pytest.mark.parametrize(("label", "source"), SLOT_INPUTS, ids=[i[0] for i in SLOT_INPUTS])
def test_every_slot_tried_is_what_what_if_says(label: str, source: str) -> None:
    inp, report = _answers(source)
    topo = report.topology
    assert topo is not None
    kernel = inp.reading.kernel
    for d in report.devices:
        if d.slots is None:
            continue
        assert d.others
        for option in d.slots.tried:
            change = parse_change(option.change)
            result = what_if(topo, [change], kernel=kernel)
            moved = result.renamed.get(d.device, d.device)
            card = {result.renamed.get(n, n) for n in d.card}
            gid = result.after.group_of(moved)
            assert gid is not None
            group = tuple(result.after.groups[gid])
            assert group == option.group_after
            assert option.alone_after == _alone(result.topology_after, group, card)
            assert option.port in {str(f.address) for f in topo.functions if f.is_bridge}
            port = topo.get(option.port)
            assert port.pcie_type in (PcieType.ROOT_PORT, PcieType.DOWNSTREAM)
            assert not topo.subtree(port)
        assert d.slots.candidates >= len(d.slots.tried)
        assert d.acs_override is not None
        result = what_if(topo, ["acs-override=downstream,multifunction"], kernel=kernel)
        gid = result.after.group_of(d.device)
        assert gid is not None
        assert tuple(result.after.groups[gid]) == d.acs_override.group_after
        assert d.acs_override.alone_after == _alone(
            result.topology_after, d.acs_override.group_after, set(d.card)
        )


def test_a_card_on_a_root_bus_cannot_move() -> None:
    report = passthrough(iommugroups.examples.desktop(), ["00:1f.2"])
    d = report.devices[0]
    # 00:1f.2 shares its slot with 00:1f.3 and the ISA bridge 00:1f.0: it is alone
    assert d.verdict is PassthroughVerdict.ALONE
    assert [m.role for m in d.members] == [Role.BRIDGE, Role.CARD, Role.CARD]
    assert d.slots is None
    nic = passthrough(examples.desktop(), ["03:00.0"]).devices[0]
    assert nic.verdict is PassthroughVerdict.WITH_OTHERS
    assert nic.slots is not None
    assert not nic.slots.searched
    assert "no free root or downstream port" in nic.slots.why


# ------------------------------------------------------------------- verdicts
def _port(
    addr: str, bus: int, acs: bool = False, kind: PcieType = PcieType.ROOT_PORT
) -> PciFunction:
    full = Acs(cap=iommugroups.REQ_ACS_FLAGS, ctrl=iommugroups.REQ_ACS_FLAGS)
    return PciFunction(
        addr,
        vendor=0x8086,
        device=0x1234,
        class_code=0x060400,
        header_type=1,
        pcie_type=kind,
        acs=full if acs else None,
        secondary_bus=bus,
        subordinate_bus=bus,
        multifunction=addr.endswith("1c.0"),
    )


def _ep_fn(addr: str, vendor: int = 0x10DE, device: int = 0x1B80, **kw: Any) -> PciFunction:
    return PciFunction(
        addr, vendor=vendor, device=device, class_code=0x030000, pcie_type=PcieType.ENDPOINT, **kw
    )


def test_unknown_acs_makes_other_endpoints_unknown_not_with_others() -> None:
    """Isolation only splits: an endpoint in the group only when a fact is absent is unknown."""
    ports = [_port("00:1c.0", 1), _port("00:1c.1", 2)]
    ports = [PciFunction(**{**_fields(p), "unknown": frozenset({"acs"})}) for p in ports]
    topo = Topology([*ports, _ep_fn("01:00.0"), _ep_fn("02:00.0", device=0x1234)])
    d = passthrough(topo, ["01:00.0"], search=False).devices[0]
    assert d.others == ("0000:02:00.0",)
    assert d.verdict is PassthroughVerdict.UNKNOWN
    assert passthrough(topo, ["01:00.0"]).status == 3
    # known without ACS: certain
    known = Topology(
        [_port("00:1c.0", 1), _port("00:1c.1", 2), _ep_fn("01:00.0"), _ep_fn("02:00.0")]
    )
    assert passthrough(known, ["01:00.0"]).devices[0].verdict is PassthroughVerdict.WITH_OTHERS


def _fields(fn: PciFunction) -> dict[str, Any]:
    import attrs

    return attrs.asdict(fn, recurse=False)


def test_the_kernels_group_is_used_and_a_split_is_a_hole() -> None:
    topo = Topology(
        [_port("00:1c.0", 1), _port("00:1c.1", 2), _ep_fn("01:00.0"), _ep_fn("02:00.0")]
    )
    # the kernel (wrongly) isolated 01:00.0: an isolation hole, exit 1
    seen = Grouping(
        {0: ("0000:00:1c.0", "0000:00:1c.1", "0000:02:00.0"), 1: ("0000:01:00.0",)},
        source="sysfs",
    )
    d = passthrough(topo, ["01:00.0"], observed=seen).devices[0]
    assert d.groups_from == "kernel"
    assert d.group == 1
    assert [m.name for m in d.members] == ["0000:01:00.0"]
    assert d.verdict is PassthroughVerdict.ISOLATION_HOLE
    # a listing that may be cut short says nothing of a device it does not list
    cut = Grouping({0: ("0000:02:00.0",)}, source="listing")
    assert passthrough(topo, ["01:00.0"], observed=cut).devices[0].verdict is (
        PassthroughVerdict.UNKNOWN
    )
    whole = Grouping({0: ("0000:02:00.0",)}, source="sysfs")
    assert passthrough(topo, ["01:00.0"], observed=whole).devices[0].verdict is (
        PassthroughVerdict.NO_GROUP
    )


def test_a_machine_without_iommu_groups_says_so() -> None:
    none = iommugroups.Unknown("", "group", "this machine has no IOMMU groups (IOMMU off?)")
    report = passthrough(examples.desktop(), ["gpu"], unknowns=[none])
    assert report.groups_from == "model"
    assert any("no IOMMU groups at all" in n for n in report.notes)


def test_dma_ownership_a_bridge_driver_keeps_vfio_out() -> None:
    """iommu_group_claim_dma_owner refuses while a member uses the DMA API (v5.19+)."""
    assert {"pcieport", "pci-stub", "vfio-pci"} == DRIVER_MANAGED_DMA
    assert not blocks_dma_owner("pcieport")
    assert blocks_dma_owner("shpchp")
    bridge = PciFunction(**{**_fields(_port("00:1c.0", 1)), "driver": "shpchp"})
    card = PciFunction(**{**_fields(_ep_fn("01:00.0")), "driver": "nouveau"})
    d = passthrough(Topology([bridge, card]), ["01:00.0"], drivers_known=True).devices[0]
    assert d.verdict is PassthroughVerdict.ALONE
    assert d.vfio.blocking == (("0000:00:1c.0", "shpchp"), ("0000:01:00.0", "nouveau"))
    assert d.vfio.modprobe[-1] == "softdep nouveau pre: vfio-pci"
    assert dict(d.vfio.host_drivers) == {"0000:01:00.0": "nouveau"}


def test_vfio_pci_refuses_a_pf_with_vfs_enabled() -> None:
    cap = SriovCapability(total_vfs=4, num_vfs=2, offset=1, stride=1, vf_device=0x10ED)
    pf = PciFunction(
        "01:00.0",
        vendor=0x8086,
        device=0x10FB,
        class_code=0x020000,
        pcie_type=PcieType.ENDPOINT,
        sriov=cap,
    )
    topo = Topology([_port("00:01.0", 1, acs=True), pf])
    d = passthrough(topo, ["01:00.0"]).devices[0]
    assert d.vfio.refused
    assert "SR-IOV" in d.vfio.refused[0][1]


# ------------------------------------------------------------- naming devices
def test_naming_devices() -> None:
    topo = examples.desktop()

    def named(*sel: str) -> list[str]:
        return [n for d in passthrough(topo, list(sel), search=False).devices for n in d.named]

    assert named("01:00.0") == named("0000:01:00.0") == ["0000:01:00.0"]
    assert named("01:00") == ["0000:01:00.0", "0000:01:00.1"]  # one entry for the card
    assert len(passthrough(topo, ["01:00"], search=False).devices) == 1
    assert named("10de:1b80") == ["0000:01:00.0"]
    assert named("gpu") == ["0000:01:00.0", "0000:09:00.0"]
    assert named("audio") == ["0000:01:00.1"]  # 0403; the EMU10k1 is 0401
    assert named("nic") == named("network") == named("net") == ["0000:03:00.0", "0000:08:00.0"]
    assert named("nvme") == ["0000:02:00.0"]
    assert named("usb") == ["0000:04:00.0", "0000:0a:00.0", "0000:0a:00.1"]
    assert set(DEVICE_CLASSES) >= {"gpu", "nic", "network", "nvme", "usb", "audio", "storage"}
    with pytest.raises(UnknownDevice, match="vendor 10de: 10de:1b80, 10de:10f0"):
        passthrough(topo, ["10de:1b81"])
    with pytest.raises(UnknownDevice, match="only bridges"):
        passthrough(topo, ["00:1c"])
    with pytest.raises(UnknownDevice, match="not a device"):
        passthrough(topo, ["sata"])
    with pytest.raises(UnknownDevice, match="on bus 01 the input lists 01:00.0, 01:00.1"):
        passthrough(topo, ["01:05.0"])
    with pytest.raises(UnknownDevice):
        passthrough(topo, [])


# ------------------------------------------------------------------------ CLI
def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


def test_cli_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _cli(["passthrough", "--example", "desktop", "gpu"], capsys)
    assert status == 0
    assert "vfio-pci.ids=10de:1b80,10de:10f0" in out
    switch = str(ORACLE / "designed" / "switch.json")
    status, out, _ = _cli(["passthrough", switch, "08:00.0"], capsys)
    assert status == 1
    assert "02:02.0: alone" in out
    assert "[NOT UPSTREAM]" in out
    status, _, err = _cli(["passthrough", "--example", "desktop", "10de:1b81"], capsys)
    assert status == 2
    assert "no device matches" in err
    status, _, err = _cli(["passthrough", "--example", "desktop"], capsys)
    assert status == 2
    assert "name a device" in err
    tree = str(REAL / "p11-apple-macmini8-1-tb3-egpu" / "lspci-tree.txt")
    status, out, _ = _cli(["passthrough", tree, "03:00.0"], capsys)
    assert status == 3, out


def test_cli_help_shows_the_device_names(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _cli(["passthrough", "--help"], capsys)
    assert status == 0
    assert out.startswith("usage: iommugroups passthrough")
    assert "\nexamples:\n" in out
    assert "exit status:" in out
    for name in DEVICE_CLASSES:
        assert name in out


def test_cli_json_is_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = str(ROOT / "docs" / "_data" / "machine.json")
    status, out, _ = _cli(["passthrough", snapshot, "nvme", "05:00", "--json"], capsys)
    doc = json.loads(out)
    assert status == doc["status"] == 0
    assert doc["schema"] == PASSTHROUGH_SCHEMA
    assert PASSTHROUGH_SCHEMA in SCHEMAS
    assert validate(doc, PASSTHROUGH_SCHEMA, strict=True) == []
    assert doc["groups_from"] == "kernel"
    member = doc["devices"][0]["members"][0]
    assert member["driver_known"] is True
    assert member["driver"] is None
    # the schema's enums are the code's
    props = SCHEMAS[PASSTHROUGH_SCHEMA]["properties"]["devices"]["items"]["properties"]
    assert props["verdict"]["enum"] == [v.value for v in PassthroughVerdict]
    assert props["members"]["items"]["properties"]["role"]["enum"] == [r.value for r in Role]
    assert props["members"]["items"]["properties"]["pcie_type"]["enum"][:-1] == [
        *PCIE_TYPE_KEYS.values(),
        "conventional",
    ]
    show_member = SCHEMAS["iommugroups.show/1"]["$defs"]["member"]["properties"]
    assert (
        show_member["pcie_type"]["enum"]
        == props["members"]["items"]["properties"]["pcie_type"]["enum"]
    )  # one vocabulary for both documents
    assert props["reset"]["items"]["properties"]["available"]["enum"] == [
        a.value for a in Availability
    ]


def test_cli_reads_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    text = (ORACLE / "captures" / "q35-1000.lspci").read_text()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    status, out, _ = _cli(["passthrough", "-", "nvme"], capsys)
    assert status in (0, 1)
    assert "IOMMU group" in out


# ------------------------------------------------------------------ property
@settings(max_examples=25, deadline=None)
@given(topologies(max_functions=24))
def test_members_are_the_prediction_and_roles_partition_them(topo: Topology) -> None:
    names = _endpoints(topo)
    if not names:
        return
    report = passthrough(topo, names[:6])
    canon = canonical_groups(topo)
    for d in report.devices:
        gid = canon.group_of(d.device)
        if gid is None:
            assert d.verdict is PassthroughVerdict.NO_GROUP
            continue
        assert sorted(m.name for m in d.members) == sorted(canon.groups[gid])
        others = {m.name for m in d.members if m.role is Role.ENDPOINT}
        assert set(d.others) == others
        assert (d.verdict is PassthroughVerdict.ALONE) <= (not others)
        assert (d.verdict is PassthroughVerdict.WITH_OTHERS) <= bool(others)
