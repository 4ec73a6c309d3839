"""The simulator's indexed IOMMU registration walks equal the kernel's full walks.

``bus_iommu_probe`` (R10.1) and ``bus_set_iommu``'s replay (R7.7) visit every
device on the bus for every IOMMU instance that registers. The simulator
visits only the devices a walk can change (:meth:`Simulator.walk_devices`,
:meth:`Simulator.replay_devices`): devices deferred or failed for another,
still unregistered instance, and devices without a fwspec, are skipped. This
test runs random topologies behind several IOMMU instances (some requester
ids unmapped, some mapped twice onto one stream id so that SMMUv3 refuses
one device, R7.9), random boots (ACPI or DT, the IOMMU built in or a module,
registered at boot or later) and random actions (``iommu``, ``insmod``,
``bind``, ``remove``, ``rescan``), under every strategy, once with the index
and once with the full walk (``Simulator.index_walks = False``), and asks
for the same log, fates and groups.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iommugroups import (
    IdMapping,
    IommuInstance,
    IommuKind,
    Scenario,
    SimulationResult,
    Topology,
    simulate,
)
from iommugroups._boot.scenario import IOMMU_DRIVER, Action, ScenarioError
from iommugroups._boot.simulator import Simulator
from iommugroups._boot.strategies.device_add import DeviceAdd
from iommugroups._boot.strategies.device_link import DeviceLink
from iommugroups._boot.strategies.registry import STRATEGIES
from iommugroups.testing import topologies

_KINDS = (IommuKind.SMMU_V3, IommuKind.SMMU_V2, IommuKind.VTD)


class _LinkedDeviceAdd(DeviceAdd):
    """device-add plus device-link's links: a device waiting for its IOMMU can
    then come to wait for its supplier instead (R9.1), which the index must see."""

    name = "linked-device-add"
    links_for = DeviceLink.links_for


_STRATEGIES: tuple[str | DeviceAdd, ...] = (*STRATEGIES, _LinkedDeviceAdd())


@contextmanager
def _full_walks() -> Iterator[None]:
    Simulator.index_walks = False
    try:
        yield
    finally:
        Simulator.index_walks = True


@st.composite
def _machines(draw: st.DrawFn) -> Topology:
    """A topology behind 1-4 IOMMU instances, requester ids split among them."""
    topo = draw(topologies(max_functions=14))
    n = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(_KINDS))
    iommus = [IommuInstance(f"smmu{i}", kind) for i in range(n)]
    mappings = []
    for dom in sorted({f.address.domain for f in topo.functions}):
        cuts = sorted(draw(st.sets(st.integers(1, 0xFFFF), max_size=3)))
        edges = [0, *cuts, 0x10000]
        for lo, hi in itertools.pairwise(edges):
            if draw(st.integers(0, 5)) == 0:
                continue  # an unmapped range: no IOMMU translates these devices
            inst = draw(st.integers(0, n - 1))
            # a shared output base makes two requester ids one stream id (R7.9)
            base = draw(st.sampled_from((lo, 0, dom << 16 | lo)))
            mappings.append(IdMapping(dom, lo, hi - lo, base, f"smmu{inst}"))
    return topo.replace(iommus=tuple(iommus), id_mappings=tuple(mappings))


@st.composite
def _scenarios(draw: st.DrawFn, topo: Topology) -> Scenario:
    names = [str(f.address) for f in topo.functions if not f.is_virtfn]
    instances = [i.name for i in topo.iommus]
    at_boot = draw(st.booleans())
    builtin = ["pcieport", "shpchp", "serial"]
    if at_boot:
        builtin.insert(draw(st.integers(0, len(builtin))), IOMMU_DRIVER)
    actions: list[Action] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(("iommu", "iommu", "insmod", "bind", "remove", "rescan")))
        if kind == "iommu":
            actions.append(Action("iommu", (draw(st.sampled_from(instances)),)))
        elif kind == "insmod":
            actions.append(Action("insmod", (draw(st.sampled_from(("nvme", "e1000e"))),)))
        elif kind == "bind":
            dev = draw(st.sampled_from(names))
            actions.append(Action("bind", (dev, draw(st.sampled_from(("nvme", "pcieport"))))))
        elif kind == "remove":
            actions.append(Action("remove", (draw(st.sampled_from(names)),)))
        else:
            actions.append(Action("rescan", ()))
    return Scenario(
        name="walks",
        firmware=draw(st.sampled_from(("acpi", "dt"))),
        builtin=tuple(builtin),
        iommu_builtin=draw(st.booleans()),
        actions=tuple(actions),
    )


def _run(topo: Topology, scenario: Scenario, strategy: str | DeviceAdd) -> SimulationResult | str:
    try:
        return simulate(topo, scenario, strategy)
    except ScenarioError as exc:
        return f"error: {exc}"


def _same(a: SimulationResult | str, b: SimulationResult | str) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    assert a.events == b.events
    assert a.fates == b.fates
    assert a.grouping.groups == b.grouping.groups


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_indexed_walks_equal_full_walks(data: st.DataObject) -> None:
    topo = data.draw(_machines())
    scenario = data.draw(_scenarios(topo))
    for strategy in _STRATEGIES:
        indexed = _run(topo, scenario, strategy)
        with _full_walks():
            full = _run(topo, scenario, strategy)
        _same(indexed, full)


def test_walks_skip_devices_waiting_for_another_instance() -> None:
    """The index does work: with one instance per domain, a registration walk
    visits the devices of its own instance, not every deferred device."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from shapes import build

    topo = build("smmu", 3000)
    seen: list[int] = []
    walk = Simulator.walk_devices

    def counting(self: Simulator) -> list:  # type: ignore[type-arg]
        found = walk(self)
        seen.append(len(found))
        return found

    Simulator.walk_devices = counting  # type: ignore[method-assign]
    try:
        indexed = simulate(topo, Scenario(), "device-add")
    finally:
        Simulator.walk_devices = walk  # type: ignore[method-assign]
    with _full_walks():
        full = simulate(topo, Scenario(), "device-add")
    _same(indexed, full)
    assert len(seen) == len(topo.iommus) > 2
    # the first walk meets its own instance's devices only, not all of them
    assert seen[0] < len(topo) / 2
    assert sum(seen) < 2 * len(topo)


@pytest.mark.parametrize("strategy", ["device-add", "bus-replay"])
def test_late_instances_group_their_waiting_devices(strategy: str) -> None:
    """Devices deferred for an instance registered by a later ``iommu`` action
    are grouped by that instance's walk (device-add) or their next probe."""
    from iommugroups import PciFunction

    topo = Topology(
        [PciFunction("00:01.0"), PciFunction("00:02.0"), PciFunction("00:03.0")],
        iommus=[IommuInstance("a", IommuKind.SMMU_V3), IommuInstance("b", IommuKind.SMMU_V3)],
        id_mappings=[IdMapping(0, 0, 0x10, 0, "a"), IdMapping(0, 0x10, 0xFFF0, 0x10, "b")],
    )
    scenario = Scenario(
        builtin=("pcieport", "serial"),
        actions=(Action("iommu", ("a",)), Action("iommu", ("b",))),
    )
    result = simulate(topo, scenario, strategy)
    with _full_walks():
        full = simulate(topo, scenario, strategy)
    _same(result, full)
    if strategy == "device-add":
        assert {f.group is not None for f in result.fates.values()} == {True}


def test_a_parked_device_that_comes_to_wait_for_its_supplier_is_walked_again() -> None:
    """A device deferred for instance ``a`` (parked) that then defers for its
    supplier (R9.1) is visited by the next walk, which defers it for ``a``
    again: its fate says so, as the kernel's full walk would leave it."""
    from iommugroups import PcieType, PciFunction

    port = PciFunction(
        "00:01.0",
        header_type=1,
        secondary_bus=1,
        subordinate_bus=1,
        pcie_type=PcieType.ROOT_PORT,
        class_code=0x060400,
    )
    nvme = PciFunction("01:00.0", class_code=0x010802, pcie_type=PcieType.ENDPOINT)
    topo = Topology(
        [port, nvme],
        iommus=[IommuInstance(n, IommuKind.SMMU_V3) for n in "abcd"],
        id_mappings=[
            IdMapping(0, 0, 0x100, 0, "b"),
            IdMapping(0, 0x100, 0xFF00, 0x100, "a"),
            IdMapping(7, 0, 0x100, 0, "c"),
            IdMapping(7, 0x100, 0x100, 0x100, "d"),
        ],
    )
    scenario = Scenario(
        builtin=("pcieport",),
        actions=(
            Action("iommu", ("c",)),
            Action("insmod", ("nvme",)),
            Action("iommu", ("d",)),
        ),
        probe_failures=(("pcieport", "0000:00:01.0"),),
    )
    strategy = _LinkedDeviceAdd()
    indexed = simulate(topo, scenario, strategy)
    with _full_walks():
        full = simulate(topo, scenario, strategy)
    _same(indexed, full)
    assert "its IOMMU a has not registered" in full.fates["0000:01:00.0"].detail


def test_refused_stream_id_logged_per_walk_under_device_add_once_under_canonical() -> None:
    """R7.9 with three SMMUv3 instances registering after PCI enumeration (ACPI).

    device-add: the refused device has no driver during the walks, so each
    instance's ``bus_iommu_probe`` runs ``dma_configure`` for it again
    (``iommu_init_device``: no fwspec, no driver; the failed probe freed
    ``dev->iommu``) and SMMUv3 refuses it again: one message per walk.
    canonical: the IOMMU is taken as registered before any device, so its
    walk meets no device: the refusal at ``device_add`` is logged once.
    """
    from iommugroups import PciFunction
    from iommugroups._boot.simulator import Message

    topo = Topology(
        [PciFunction("00:01.0"), PciFunction("00:02.0")],
        iommus=[IommuInstance(n, IommuKind.SMMU_V3) for n in ("s0", "s1", "s2")],
        # both requester ids (0x08, 0x10) onto stream id 0: the second device clashes
        id_mappings=[IdMapping(0, 0x08, 1, 0, "s0"), IdMapping(0, 0x10, 1, 0, "s0")],
    )
    counts: dict[str, int] = {}
    for strategy in ("device-add", "canonical"):
        result = simulate(topo, Scenario(builtin=("pcieport", IOMMU_DRIVER)), strategy)
        counts[strategy] = sum(
            isinstance(e, Message) and "Aliasing StreamID" in e.text for e in result.events
        )
    assert counts == {"device-add": 3, "canonical": 1}


@pytest.mark.parametrize("bind_first", [True, False])
def test_a_device_bound_before_its_modular_iommu_loads_stays_ungrouped(bind_first: bool) -> None:
    """R10.1, ``iommu_init_device`` (v6.15+, drivers/iommu/iommu.c): the IOMMU core
    runs ``dma_configure`` itself only for a device with no fwspec *and no driver*
    ("The device already having a driver bound means dma_configure has already
    run and found no IOMMU to wait for"). A device whose driver bound while its
    IOMMU was a module not loaded (R7.4: it runs without one, no fwspec) is left
    alone by the module's registration walk: -ENODEV, no group. Not bound yet,
    the walk configures and groups it."""
    from iommugroups import PciFunction

    topo = Topology(
        [PciFunction("00:01.0", class_code=0x010802)],
        iommus=[IommuInstance("a", IommuKind.SMMU_V3)],
        id_mappings=[IdMapping(0, 0, 0x10000, 0, "a")],
    )
    load = Action("iommu", ("a",))
    bind = Action("insmod", ("nvme",))
    scenario = Scenario(
        builtin=("pcieport",),
        iommu_builtin=False,
        actions=(bind, load) if bind_first else (load, bind),
    )
    fate = simulate(topo, scenario, "device-add").fates["0000:00:01.0"]
    assert fate.state == "bound"
    assert (fate.group is None) is bind_first


def test_a_refused_device_bound_under_dt_is_not_refused_again_by_later_walks() -> None:
    """R7.9 + R10.1 under device tree: the refusal frees the fwspec; the driver's
    bind replays the IOMMU probe (``of_iommu_configure``, R10.3), refused and freed
    again; a later instance's walk then skips the bound device (no fwspec, a
    driver): one message at the first walk, one at the bind, none after."""
    from iommugroups import PciFunction
    from iommugroups._boot.simulator import Message

    topo = Topology(
        [PciFunction("00:01.0", class_code=0x010802), PciFunction("00:02.0", class_code=0x010802)],
        iommus=[IommuInstance(n, IommuKind.SMMU_V3) for n in ("s0", "s1")],
        id_mappings=[IdMapping(0, 0x08, 1, 0, "s0"), IdMapping(0, 0x10, 1, 0, "s0")],
    )
    scenario = Scenario(
        firmware="dt",
        builtin=("pcieport",),
        actions=(Action("iommu", ("s0",)), Action("insmod", ("nvme",)), Action("iommu", ("s1",))),
    )
    result = simulate(topo, scenario, "device-add")
    refusals = [e for e in result.events if isinstance(e, Message) and "StreamID" in e.text]
    assert [e.device for e in refusals] == ["0000:00:02.0", "0000:00:02.0"]
    assert [e.prefix for e in refusals] == ["pci", "nvme"]
