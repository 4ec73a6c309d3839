"""Property tests: how the grouping strategies behave across probe orders (§6, §7, §9, §10).

The simulator inputs come from :func:`iommugroups.testing.probe_scenarios`:
a random topology behind a VT-d-like IOMMU (grouping by ``pci_device_group``
alone, no SMMUv3 stream-id clashes, R7.9), a DT boot in which the IOMMU
registers before any PCI device exists (nothing defers at boot), no built-in
endpoint driver, and one driver per device bound in a random order
(``insmod drv-<dev>`` + ``bind <dev> drv-<dev>``). The reference is the
``canonical`` strategy: every device grouped at ``device_add``, parents first
(R10.1; :func:`~iommugroups.canonical_groups`).

Each class quotes, in its docstring, the rules it states. The facts, in short:

* ``device-add`` and ``canonical`` group identically for every order (R10.1).
* ``legacy-probe-time`` equals canonical when every device probes after the
  bridges above it, or when ``pcieport`` is built in; otherwise Hypothesis
  finds the seed's shape: a device probed before its non-isolated upstream
  bridge (R4.5, R7.8).
* ``device-link`` equals canonical when every bridge binds; below a bridge
  whose driver fails for good, devices stay deferred, waiting for it (R9.3).
* ``bus-replay`` groups exactly as ``legacy-probe-time`` (R7.7).
* ``walk-down`` is order-independent exactly when no bridge that is some
  device's final ``pdev`` (R4.3) is tied, by steps 3-4 (R5.1/R5.2), to
  another device on its own bus, e.g. multifunction root ports without ACS.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from iommugroups import (
    GroupingEnv,
    IommuKind,
    PciAddress,
    PcieType,
    PciFunction,
    Scenario,
    SimulationResult,
    Topology,
    canonical_groups,
    make_context,
    pci_device_group,
    simulate,
)
from iommugroups._scenario import IOMMU_DRIVER
from iommugroups.testing import (
    ProbeSetup,
    device_driver_name,
    parents_first_scenarios,
    probe_scenarios,
    probe_setup,
    topologies,
    with_iommu,
)

from .helpers import ISOLATING, bridge, ep

#: Small topologies: every device costs two actions and a probe per strategy run.
TOPOLOGIES = topologies(max_functions=12)
ANY_ORDER = TOPOLOGIES.flatmap(probe_scenarios)

#: Simulations are fast (a few ms) but draws are nested: no deadline.
FAST = settings(deadline=None, max_examples=100)

Partition = frozenset[frozenset[str]]


def partition(result: SimulationResult) -> Partition:
    """The groups of a simulation as a set of sets of devices (ids forgotten)."""
    return result.grouping.partition()


def find_setup(
    strategy: st.SearchStrategy[ProbeSetup],
    condition: Callable[[ProbeSetup], bool],
    *,
    seed: int,
    max_examples: int = 2000,
) -> ProbeSetup:
    """``hypothesis.find`` with a fixed seed: the smallest input meeting ``condition``."""
    return find(
        strategy,
        condition,
        settings=settings(
            max_examples=max_examples,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
        random=random.Random(seed),
    )


def env_of(topology: Topology) -> GroupingEnv:
    """The grouping environment the simulator uses for ``topology``."""
    return GroupingEnv(make_context(topology))


def groups_through(device: PciFunction, above: PciFunction, env: GroupingEnv) -> bool:
    """Whether ``pci_device_group(device)`` takes ``above``'s group, had it one (R4.1, R4.2).

    True when ``above`` is an aliasing bridge of ``device`` (step 1) or a
    bridge its upstream walk passes (step 2) before any other device is looked at.
    """
    decision = pci_device_group(device, {above.address: 0}, env)
    return decision.group == 0 and decision.step in ("alias", "upstream")


def reaches(a: PciFunction, b: PciFunction, env: GroupingEnv) -> bool:
    """Whether steps 3-4 of ``pci_device_group(a)`` (R5.1 ``get_pci_alias_group``,
    R5.2 ``get_pci_function_alias_group``) find ``b``'s group, were ``b`` the only
    device with one."""
    decision = pci_device_group(a, {b.address: 0}, env)
    return decision.group == 0 and decision.step in ("alias-group", "function-alias")


def own_pdevs(topology: Topology, env: GroupingEnv) -> list[PciFunction]:
    """Devices that are their own final ``pdev`` (R4.3): on a root bus or below an
    ACS-isolated path, not behind an aliasing bridge. Steps 3-4 only ever run on these."""
    return [f for f in topology if pci_device_group(f, {}, env).pdev == f.address]


def one_way_ties(topology: Topology) -> list[tuple[PciFunction, PciFunction]]:
    """Pairs ``(a, b)`` of own-``pdev`` devices on one bus where steps 3-4 of ``a``
    reach ``b`` but not the other way round.

    Generated topologies have them only where a VF lands in the slot of a
    multifunction device without ACS and the VF's own ACS check fails (a
    Wangxun id the kernel's quirk does not list, R2.6): the multifunction
    function looks at its non-isolated slot peers (R5.2), the VF, not being
    multifunction (R5.6), looks at nobody.
    """
    env = env_of(topology)
    mine = own_pdevs(topology, env)
    out = []
    for a in mine:
        for b in mine:
            if a.address.bus == b.address.bus and a.address.domain == b.address.domain:
                if a is not b and reaches(a, b, env) and not reaches(b, a, env):
                    out.append((a, b))
    return out


def step34_partners(topology: Topology, env: GroupingEnv, pdev: PciFunction) -> list[PciFunction]:
    """Devices on ``pdev``'s bus tied to it by steps 3-4 (R5.1, R5.2), either way round."""
    a = pdev.address
    return [
        q
        for q in topology.devices_on_bus(a.domain, a.bus)
        if q is not pdev and (reaches(pdev, q, env) or reaches(q, pdev, env))
    ]


def walk_down_witnesses(
    topology: Topology,
) -> list[tuple[PciFunction, PciFunction, PciFunction]]:
    """Every ``(x, p, q)``: ``p`` is ``x``'s final ``pdev`` (R4.3), ``p`` is not ``x``,
    and ``q`` is a steps 3-4 partner of ``p`` on ``p``'s bus."""
    env = env_of(topology)
    out = []
    for x in topology.enumeration_order():
        p_addr = pci_device_group(x, {}, env).pdev
        if p_addr == x.address:
            continue
        p = topology.get(p_addr)
        out.extend((x, p, q) for q in step34_partners(topology, env, p))
    return out


def seed_shape(*, port_acs: bool = False, domains: tuple[int, ...] = (0,)) -> Topology:
    """§11 in small: a root port (without ACS by default) above a two-function ConnectX-5.

    Per domain ``d``: root port ``d:00:00.0`` -> bus 1: PFs ``d:01:00.0`` and
    ``d:01:00.1`` (mlx5_core matches them by vendor); one SMMUv3 per domain.
    """
    functions = []
    for d in domains:
        functions.append(bridge(f"{d:04x}:00:00.0", 1, acs=ISOLATING if port_acs else None))
        functions += [
            ep(f"{d:04x}:01:00.{f}", vendor=0x15B3, device=0x1017, class_code=0x020000, mf=True)
            for f in (0, 1)
        ]
    return with_iommu(Topology(functions), kind=IommuKind.SMMU_V3)


def bridges_above(topology: Topology, fn: PciFunction) -> list[PciFunction]:
    """The bridges above ``fn``, bottom up (SR-IOV virtual buses stepped over)."""
    out = []
    dom, bus = fn.address.domain, fn.address.bus
    while not topology.is_root_bus(dom, bus):
        br = topology.bus_self(dom, bus)
        if br is not None:
            out.append(br)
        parent = topology.parent_bus(dom, bus)
        assert parent is not None
        bus = parent
    return out


#: §11 boot order A: ACPI, pcieport -> SMMU -> mlx5_core all built in (R8.1).
SEED_BOOT = Scenario(
    name="seed, mlx5 built in", firmware="acpi", builtin=("pcieport", IOMMU_DRIVER, "mlx5_core")
)


#: Topologies whose steps 3-4 ties all go both ways (see :func:`one_way_ties`).
SYMMETRIC = TOPOLOGIES.filter(lambda t: not one_way_ties(with_iommu(t)))
PARENTS_FIRST = SYMMETRIC.flatmap(parents_first_scenarios)


# --- the generator ---------------------------------------------------------------------


class TestProbeScenarios:
    """What :func:`~iommugroups.testing.probe_scenarios` promises: every function
    probes once, through its own driver, in an order that puts each VF after its
    PF and, for :func:`~iommugroups.testing.parents_first_scenarios`, every
    device after every bridge above it; the scenario runs under every strategy.
    """

    @FAST
    @given(ANY_ORDER)
    def test_every_function_probes_once_through_its_own_driver(self, setup: ProbeSetup) -> None:
        topo = setup.topology
        order = setup.probe_order()
        assert sorted(order) == sorted(str(f.address) for f in topo)
        assert topo.iommus and topo.id_mappings
        result = setup.run("legacy-probe-time")
        for fn in topo:
            fate = result.fates[str(fn.address)]
            assert fate.state == "bound"
            assert fate.driver == device_driver_name(fn.address)
            assert fate.group is not None  # VT-d: nothing refuses a device (no R7.9)
        for i, name in enumerate(order):
            physfn = topo.get(name).physfn
            if physfn is not None:
                assert order.index(str(physfn)) < i

    @FAST
    @given(PARENTS_FIRST)
    def test_parents_first_orders(self, setup: ProbeSetup) -> None:
        topo = setup.topology
        position = {name: i for i, name in enumerate(setup.probe_order())}
        for fn in topo:
            br = topo.bridge_above(fn.address)
            if br is not None:
                assert position[str(br.address)] < position[str(fn.address)]

    @FAST
    @given(TOPOLOGIES.flatmap(lambda t: probe_scenarios(t, bridges="pcieport")))
    def test_pcieport_binds_the_ports_at_boot(self, setup: ProbeSetup) -> None:
        result = setup.run("device-link")
        order = set(setup.probe_order())
        for fn in setup.topology:
            fate = result.fates[str(fn.address)]
            assert fate.state == "bound"
            assert (fate.driver == "pcieport") == (str(fn.address) not in order)


# --- device-add and canonical ------------------------------------------------------------


class TestDeviceAddIsCanonical:
    """R10.1: since v6.15 "groups are therefore created: at ``device_add`` (bus
    notifier), if the SMMU is already registered; otherwise during the
    registration walk of the SMMU (``bus_for_each_dev`` in device order). In both
    cases this is independent of drivers, and parents come before children."
    R1.4: "groups assigned at device_add or at IOMMU registration log with the
    bus name". (``iommu_probe_device`` from ``iommu_bus_notifier``; bcb81ac6ae3c.)

    So ``device-add`` and ``canonical`` (IOMMU ready before any device) make the
    same groups with the same ids whatever the drivers do and in which order,
    and those are :func:`~iommugroups.canonical_groups` of the topology. Also
    under SMMUv3, whose stream-id refusals (R7.9) follow device order too.
    """

    @FAST
    @given(TOPOLOGIES.flatmap(lambda t: probe_scenarios(t, kind=IommuKind.SMMU_V3)))
    def test_same_groups_whatever_the_probe_order(self, setup: ProbeSetup) -> None:
        dev_add = setup.run("device-add")
        canonical = setup.run("canonical")
        assert dict(dev_add.grouping.groups) == dict(canonical.grouping.groups)
        assert partition(canonical) == canonical_groups(setup.topology).partition()
        assert all(line.prefix == "pci" for line in dev_add.grouping.log)


# --- legacy-probe-time -------------------------------------------------------------------


class TestLegacyParentsFirst:
    """R7.8: "A PCI device gets its group *when its own driver probe reaches
    dma_configure with its SMMU registered* [...] Group formation order equals
    driver-probe order, not topology order." R4.2: the upstream walk returns the
    group of the first non-isolated bridge that has one; R1.3: a device keeps
    its group.

    When every device probes after every bridge above it, each bridge already
    has its group when a device below asks (as in canonical), so probe-time
    grouping is the canonical grouping, whatever the order among siblings.
    With ``pcieport`` built in the same holds for *any* order of the other
    drivers: it binds every port at boot, in device order (R8.1), and a
    PCIe-to-PCI or conventional bridge it fails on still keeps the group its
    ``dma_configure`` gave it (R8.5: "An IOMMU group that was already assigned
    is **not** removed").
    """

    @FAST
    @given(PARENTS_FIRST)
    def test_parents_first_is_canonical(self, setup: ProbeSetup) -> None:
        assert partition(setup.run("legacy-probe-time")) == partition(setup.run("canonical"))

    @FAST
    @given(TOPOLOGIES.flatmap(lambda t: probe_scenarios(t, bridges="pcieport")))
    def test_builtin_pcieport_makes_any_order_canonical(self, setup: ProbeSetup) -> None:
        assert partition(setup.run("legacy-probe-time")) == partition(setup.run("canonical"))


class TestLegacyOrderDependent:
    """R4.5: "Only devices that already have a group are visible [...] a bridge
    with no driver in the arm64 driver-probe era" is transparent. R4.4: a new
    group "is *not* attached to any of the bridges walked past". R1.3: "No code
    path re-evaluates or merges groups when a 'better' ancestor group appears
    later." R7.8: group formation follows driver-probe order.

    So probe order matters, and the smallest input where it does is the seed's
    shape (§11): a device probed before the non-isolated bridge above it
    (a root port without ACS, R2.3/R4.2, or a PCIe-to-PCI bridge it aliases
    to, R3.4/R4.1). The device starts its own group, the bridge later starts
    another, and they stay apart, where canonical puts them together.
    """

    def test_hypothesis_finds_the_seed_shape(self) -> None:
        found = find_setup(
            ANY_ORDER,
            lambda s: partition(s.run("legacy-probe-time")) != partition(s.run("canonical")),
            seed=1,
        )
        topo, order = found.topology, found.probe_order()
        legacy = found.run("legacy-probe-time").grouping
        canonical = found.run("canonical").grouping
        assert len(topo) == 2  # one bridge, one device below it
        env = env_of(topo)
        (br,) = [f for f in topo if f.is_bridge]
        (dev,) = [f for f in topo if not f.is_bridge]
        assert topo.bridge_above(dev.address) == br
        assert groups_through(dev, br, env)  # R4.1 alias or R4.2 non-isolated
        assert order == (str(dev.address), str(br.address))  # the device first
        assert not legacy.same_group(dev.address, br.address)
        assert canonical.same_group(dev.address, br.address)

    def test_seed_shape_by_hand(self) -> None:
        """The D05 PFs probed before their port: {PF0}, {PF1}, {port} (§11 steps 5-8)."""
        topo = seed_shape()
        setup = probe_setup(topo, ["01:00.0", "01:00.1", "00:00.0"])
        legacy = setup.run("legacy-probe-time").grouping
        assert legacy.partition() == {
            frozenset({"0000:01:00.0"}),
            frozenset({"0000:01:00.1"}),
            frozenset({"0000:00:00.0"}),
        }
        assert partition(setup.run("canonical")) == {
            frozenset({"0000:00:00.0", "0000:01:00.0", "0000:01:00.1"})
        }

    def test_conventional_device_before_its_pcie_to_pci_bridge(self) -> None:
        """§12 vector 4 (R4.1, R4.5): the device's alias walk ends at the bridge,
        which has no group yet; steps 3-4 on the bridge find nothing."""
        topo = Topology(
            [
                bridge("00:01.0", 1, kind=PcieType.PCI_BRIDGE, device=0x000E),
                ep("01:00.0", vendor=0x1274, device=0x5000, class_code=0x040100, kind=None),
            ]
        )
        early = probe_setup(topo, ["01:00.0", "00:01.0"]).run("legacy-probe-time").grouping
        assert not early.same_group("01:00.0", "00:01.0")
        late = probe_setup(topo, ["00:01.0", "01:00.0"]).run("legacy-probe-time").grouping
        assert late.same_group("01:00.0", "00:01.0")

    def test_seed_boot(self) -> None:
        """§11 boot order A reproduced: the ports defer (no SMMU ops yet, R7.3),
        mlx5_core groups PF0 and PF1 apart, the port gets a third group at
        late_initcall (R8.4); with ACS on the port, the split is correct."""
        result = simulate(seed_shape(), SEED_BOOT, "legacy-probe-time")
        assert result.group_lines() == (
            "mlx5_core 0000:01:00.0: Adding to iommu group 0",
            "mlx5_core 0000:01:00.1: Adding to iommu group 1",
            "pcieport 0000:00:00.0: Adding to iommu group 2",
        )
        isolated = simulate(seed_shape(port_acs=True), SEED_BOOT, "legacy-probe-time")
        assert partition(isolated) == partition(
            simulate(seed_shape(port_acs=True), SEED_BOOT, "canonical")
        )


# --- device-link -------------------------------------------------------------------------


class TestDeviceLink:
    """R9.1: "A non-STATELESS link consumer->supplier blocks the consumer's probe
    [...] until the link is AVAILABLE. The link becomes AVAILABLE when the
    supplier binds a driver." R9.2: with ``DL_FLAG_AUTOPROBE_CONSUMER`` the
    consumer is retried when the supplier binds. R9.3: "if the supplier driver
    is blacklisted or missing, the consumer will never be probed"; "if the port
    driver fails in probing -- and not just for -EPROBE_DEFER -- then the child
    device will never probe". R9.5: why it was not merged.

    John Garry's patch links every PCI device to its parent bridge, so
    whatever the order drivers load in, a device probes only after the bridge
    above it bound: a parents-first order, hence canonical groups. When a
    bridge's driver fails for good, every device below it is reported as
    deferred, waiting for its own parent bridge (named in the detail), with no
    group, and never bound; the rest is grouped as canonical.
    """

    @FAST
    @given(ANY_ORDER)
    def test_every_bridge_binds_then_canonical(self, setup: ProbeSetup) -> None:
        result = setup.run("device-link")
        assert partition(result) == partition(setup.run("canonical"))
        assert all(fate.state == "bound" for fate in result.fates.values())

    @FAST
    @given(TOPOLOGIES.flatmap(lambda t: probe_scenarios(t, failures=True)))
    def test_failed_bridge_blocks_everything_below_it(self, setup: ProbeSetup) -> None:
        topo = setup.topology
        failing = {device for _driver, device in setup.scenario.probe_failures}
        result = setup.run("device-link")
        blocked: set[str] = set()
        for fn in topo:
            name = str(fn.address)
            fate = result.fates[name]
            supplier = topo.bridge_above(fn.address)
            if supplier is None and fn.physfn is not None:
                supplier = topo.bridge_above(fn.physfn)
            above = bridges_above(topo, fn)
            if any(str(b.address) in failing for b in above):
                blocked.add(name)
                assert fate.group is None
                if fn.is_virtfn:  # its PF never bound, so it was never enabled
                    assert fate.state == "not-added"
                    continue
                assert fate.state == "deferred", fate
                assert supplier is not None
                assert str(supplier.address) in fate.detail, fate
            elif name in failing:
                assert fate.state == "failed", fate
                assert device_driver_name(fn.address) in fate.detail
            else:
                assert fate.state == "bound", fate

        def unblocked(groups: Partition) -> Partition:
            kept = (frozenset(m for m in g if m not in blocked) for g in groups)
            return frozenset(g for g in kept if g)

        assert partition(result) == unblocked(partition(result))
        assert partition(result) == unblocked(partition(setup.run("canonical")))

    def test_seed_shape_with_a_failing_port_driver(self) -> None:
        """The PFs wait for ever for port ``00:00.0``, whatever order the drivers load."""
        topo = seed_shape()
        for order in (["01:00.0", "01:00.1", "00:00.0"], ["00:00.0", "01:00.1", "01:00.0"]):
            setup = probe_setup(topo, order, failing=["00:00.0"])
            result = setup.run("device-link")
            port = result.fates["0000:00:00.0"]
            assert port.state == "failed"
            for pf in ("0000:01:00.0", "0000:01:00.1"):
                fate = result.fates[pf]
                assert (fate.state, fate.driver, fate.group) == ("deferred", None, None)
                assert "supplier 0000:00:00.0" in fate.detail
            # without the link, the PFs bind (legacy: the port's group stays, R8.5)
            legacy = setup.run("legacy-probe-time")
            assert {legacy.fates[pf].state for pf in ("0000:01:00.0", "0000:01:00.1")} == {
                "bound"
            }


# --- bus-replay --------------------------------------------------------------------------


class TestBusReplay:
    """R7.6/R7.7: "At the first-SMMU replay, devices that deferred in R7.3 have no
    fwspec, so ``add_device`` returns -ENODEV and they get no group. Any other
    device not yet probed, or with no driver at all, also has no fwspec."
    Robin Murphy's hack replays ``add_iommu_group`` at *every* SMMU
    registration; each replay still meets devices without a fwspec (a deferral
    happens before ``iommu_fwspec_init``, R7.4), so it changes nothing: the
    groups and the log are those of ``legacy-probe-time``, the seed split included.
    """

    @FAST
    @given(TOPOLOGIES.flatmap(lambda t: probe_scenarios(t, kind=IommuKind.SMMU_V3)))
    def test_same_as_legacy_probe_time(self, setup: ProbeSetup) -> None:
        replay = setup.run("bus-replay")
        legacy = setup.run("legacy-probe-time")
        assert replay.grouping.groups == legacy.grouping.groups
        assert replay.log_lines() == legacy.log_lines()

    def test_seed_boot_stays_split(self) -> None:
        """§11 boot A on two root complexes, one SMMU each, so two replays run:
        still {PF0}, {PF1}, {port} on each."""
        topo = seed_shape(domains=(0, 1))
        assert len(topo.iommus) == 2
        replay = simulate(topo, SEED_BOOT, "bus-replay")
        assert replay.group_lines() == simulate(topo, SEED_BOOT, "legacy-probe-time").group_lines()
        assert len(replay.grouping.groups) == 6
        assert len(simulate(topo, SEED_BOOT, "canonical").grouping.groups) == 2
