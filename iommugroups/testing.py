"""Hypothesis strategies for topologies, for property tests here and in other tools.

This module needs Hypothesis, which is only a test extra of this package::

    pip install 'iommugroups[test]'

What it generates:

* :func:`topologies`: random *valid* PCI topologies (:class:`~iommugroups.Topology`)
  with the features grouping depends on: several PCI domains and root buses,
  root ports and switch downstream ports with and without ACS, multifunction
  root ports, nested switches, PCIe-to-PCI bridges with conventional devices
  and conventional PCI-PCI bridges behind them, multifunction endpoints with
  mixed ACS, root-complex integrated endpoints, SR-IOV PFs and their VFs, and
  DMA-alias quirk devices. Bus numbers follow the kernel's depth-first
  numbering, so every bridge's range holds exactly its subtree.
* :func:`shuffled`: the same topology with its ``functions`` listed in
  another order (grouping must not care, see :class:`~iommugroups.Topology`).
* :func:`acs` and :func:`pci_addresses`: the building blocks.

And inputs for the driver-core simulator (:func:`~iommugroups.simulate`), to
state how the grouping strategies behave across driver probe orders:

* :func:`probe_scenarios`: a topology behind an IOMMU (:func:`with_iommu`),
  a boot, one driver per device and a random probe order, as a
  :class:`ProbeSetup`; :func:`parents_first_scenarios` only draws orders in
  which every device probes after every bridge above it.
* :func:`probe_orders`: the orders alone; :func:`probe_setup`: the input for
  one given order.

Sizes stay small (at most ``max_functions``, 40 by default) and every choice
shrinks towards "fewer, simpler devices", so a failing property comes back
as a small counterexample.

>>> from hypothesis import given, settings
>>> from iommugroups import canonical_groups
>>> @settings(max_examples=5, database=None)
... @given(topologies(max_functions=12))
... def check_every_function_is_grouped(topology):
...     groups = canonical_groups(topology)
...     assert sum(len(m) for m in groups.groups.values()) == len(topology)
>>> check_every_function_is_grouped()

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NamedTuple, TypeVar

import attrs

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "iommugroups.testing needs Hypothesis: pip install 'iommugroups[test]'"
    ) from exc

from ._boot.drivers import KNOWN_DRIVERS, Driver, ProbeResult
from ._boot.run import simulate
from ._boot.scenario import IOMMU_DRIVER, Action, Scenario
from ._boot.simulator import SimulationResult, StrategyLike
from ._kernel.model import (
    HEADER_BRIDGE,
    Acs,
    AcsFlags,
    IdMapping,
    IommuInstance,
    IommuKind,
    PciAddress,
    PcieType,
    PciFunction,
    SriovCapability,
    Topology,
)

__all__ = [
    "FULL_ACS",
    "ProbeSetup",
    "acs",
    "device_driver_name",
    "parents_first_scenarios",
    "pci_addresses",
    "probe_orders",
    "probe_scenarios",
    "probe_setup",
    "shuffled",
    "topologies",
    "with_iommu",
]

#: R2.1: the four controls IOMMU grouping requires, ``SV|RR|CR|UF``.
_REQ = AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF

#: An ACS capability that isolates (R2.1, R2.2), with capability and control ``SV|RR|CR|UF``.
FULL_ACS = Acs(cap=_REQ, ctrl=_REQ)

_OPTIONAL = (AcsFlags.TB, AcsFlags.EC, AcsFlags.DT)


def __dir__() -> list[str]:
    return list(__all__)


# --- building blocks -----------------------------------------------------------


def pci_addresses(
    *, domains: st.SearchStrategy[int] | None = None
) -> st.SearchStrategy[PciAddress]:
    """PCI function addresses ``dddd:bb:dd.f``.

    Args:
        domains: the domain numbers to use; by default 0, 1 and the first
            Intel VMD domain ``0x10000``.

    Returns:
        A strategy of :class:`~iommugroups.PciAddress`.
    """
    doms = domains if domains is not None else st.sampled_from([0, 1, 0x10000])
    return st.builds(
        PciAddress,
        doms,
        st.integers(0, 0xFF),
        st.integers(0, 0x1F),
        st.integers(0, 7),
    )


def _flags(bits: Sequence[AcsFlags]) -> st.SearchStrategy[AcsFlags]:
    def combine(chosen: Sequence[bool]) -> AcsFlags:
        out = AcsFlags.NONE
        for bit, on in zip(bits, chosen, strict=True):
            if on:
                out |= bit
        return out

    return st.lists(st.booleans(), min_size=len(bits), max_size=len(bits)).map(combine)


def _full_acs() -> st.SearchStrategy[Acs]:
    # Capability: SV|RR|CR|UF plus any of TB/EC/DT; control: SV|RR|CR|UF, maybe TB.
    def build(extra_cap: AcsFlags, tb_on: bool) -> Acs:
        ctrl = _REQ | (AcsFlags.TB if tb_on and AcsFlags.TB in extra_cap else AcsFlags.NONE)
        return Acs(cap=_REQ | extra_cap, ctrl=ctrl)

    return st.builds(build, _flags(_OPTIONAL), st.booleans())


def _partial_acs() -> st.SearchStrategy[Acs]:
    # A capability whose control word lacks some advertised bits (R2.2), or
    # registers drawn at random (control only ever holds advertised bits).
    def partial_ctrl(extra_cap: AcsFlags, keep: AcsFlags) -> Acs:
        cap = _REQ | extra_cap
        ctrl = cap & keep
        if _REQ & ~ctrl == AcsFlags.NONE:
            ctrl &= ~AcsFlags.RR  # really partial: one required control off
        return Acs(cap=cap, ctrl=ctrl)

    def any_registers(cap: AcsFlags, ctrl: AcsFlags) -> Acs:
        return Acs(cap=cap, ctrl=cap & ctrl)

    all_bits = [f for f in AcsFlags if f.value]
    return st.one_of(
        st.builds(partial_ctrl, _flags(_OPTIONAL), _flags(all_bits)),
        st.builds(any_registers, _flags(all_bits), _flags(all_bits)),
    )


def acs(
    *, absent: bool = True, partial: bool = True, full: bool = True
) -> st.SearchStrategy[Acs | None]:
    """ACS capabilities: absent, with some controls off, or isolating.

    Args:
        absent: include ``None`` (no ACS capability: R2.2 says not enabled).
        partial: include capabilities whose control word misses a required
            bit, and random register values (which may happen to isolate,
            since unadvertised features count as enabled).
        full: include isolating capabilities: ``SV|RR|CR|UF`` advertised and
            enabled, possibly with TB/EC/DT advertised too.

    Returns:
        A strategy of :class:`~iommugroups.Acs` or ``None``. Shrinks towards
        ``None``, then towards partial, then full.

    Raises:
        ValueError: every kind was turned off.
    """
    options: list[st.SearchStrategy[Acs | None]] = []
    if absent:
        options.append(st.none())
    if partial:
        options.append(_partial_acs())
    if full:
        options.append(_full_acs())
    if not options:
        raise ValueError("acs(): at least one of absent, partial, full must be true")
    return st.one_of(options)


def shuffled(topology: Topology) -> st.SearchStrategy[Topology]:
    """``topology`` with its ``functions`` tuple in another order.

    Everything else (platform devices, IOMMUs, ID mappings, name) is kept.
    Grouping must not depend on the order (the kernel's device-add order is
    derived from the tree, :meth:`~iommugroups.Topology.enumeration_order`).
    """
    return st.permutations(topology.functions).map(
        lambda functions: attrs.evolve(topology, functions=functions)
    )


# --- ids ---------------------------------------------------------------------------

_NEUTRAL_ROOT_PORTS = ((0x1B36, 0x000C),)  # QEMU pcie-root-port
_NEUTRAL_SWITCH = ((0x104C, 0x8232), (0x1B36, 0x000C))  # TI XIO3130, QEMU
_NEUTRAL_USP = ((0x104C, 0x8233),)
_NEUTRAL_PCIE_PCI = ((0x1B36, 0x000E),)  # QEMU pcie-pci-bridge
_NEUTRAL_PCI_PCI = ((0x1B36, 0x0001),)  # QEMU pci-bridge
#: (vendor, device, class); a PF's VFs get device id + 1 (ConnectX-5: 0x1018).
_NEUTRAL_ENDPOINTS = (
    (0x1B36, 0x0010, 0x010802),  # QEMU NVMe
    (0x1AF4, 0x1041, 0x020000),  # virtio-net
    (0x15B3, 0x1017, 0x020000),  # ConnectX-5 (no ACS quirk)
    (0x10DE, 0x1B80, 0x030000),  # GPU
    (0x1B36, 0x000D, 0x0C0330),  # QEMU xHCI
)
_NEUTRAL_CONVENTIONAL = (
    (0x1274, 0x5000, 0x040100),  # ES1370 audio
    (0x1B36, 0x0002, 0x070002),  # QEMU serial
    (0x8086, 0x100E, 0x020000),  # e1000 (no quirk as a conventional device)
)

# Kernel ACS quirks (R2.6), by the role they apply to.
_QUIRK_ROOT_PORTS = (
    (0x8086, 0x3B42),  # Intel PCH (pci_quirk_intel_pch_acs)
    (0x8086, 0xA110),  # Intel Sunrise Point (pci_quirk_intel_spt_pch_acs)
    (0x17CB, 0x0400),  # Qualcomm QDF2xxx (pci_quirk_qcom_rp_acs)
    (0x177D, 0xA000),  # Cavium ThunderX (pci_quirk_cavium_acs)
    (0x10E8, 0xE004),  # APM X-Gene (pci_quirk_xgene_acs)
    (0x1D17, 0x0710),  # Zhaoxin (pci_quirk_zhaoxin_pcie_ports_acs)
    (0x14E4, 0x9000),  # Broadcom ThunderX2 root: BRIDGE_XLATE_ROOT (R3.5)
)
_QUIRK_DOWNSTREAM = ((0x1D17, 0x0720),)  # Zhaoxin downstream ports
_QUIRK_MF_ENDPOINTS = (
    (0x8086, 0x10C9, 0x020000),  # Intel 82576 (pci_quirk_mf_endpoint_acs)
    (0x1924, 0x0903, 0x020000),  # Solarflare
    (0x19A2, 0x0710, 0x020000),  # Emulex BE3-R
    (0x8088, 0x1001, 0x020000),  # Wangxun
)
_QUIRK_ROOT_BUS = (
    (0x1002, 0x4385, 0x0C0500),  # AMD southbridge SMBus (pci_quirk_amd_sb_acs)
    (0x1002, 0x4383, 0x040300),  # AMD southbridge Azalia
)
_AMD_HOST_BRIDGE = (0x1022, 0x1450, 0x060000)  # makes make_context assume IVRS
_INTEL_RCIEP = (0x8086, 0x10D3, 0x020000)  # pci_quirk_rciep_acs (RC_END only)
_QUIRK_HIDDEN_BRIDGES = ((0x1B21, 0x1080), (0x10E3, 0x8113))  # PCIE_BRIDGE_ALIAS (R3.5)


_ANY_ACS = acs()
_FULL_ACS = _full_acs()
_ALIAS_KEYS = st.frozensets(st.integers(0, 8 + 0xFF), min_size=1, max_size=2)
_EXTRA_DOMAINS = (1, 2, 0xA, 0x10000, 0x10001)

_T = TypeVar("_T")


@functools.cache
def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


_UNIT = st.just(None)


def _span(build: Callable[[], _T]) -> st.SearchStrategy[_T]:
    # Runs ``build`` (which draws through the outer draw function) inside a span
    # of its own, so the shrinker can simplify or delete it as one unit.
    return _UNIT.map(lambda _: build())


class _Bus(enum.Enum):
    ROOT = "root"  # a root bus: root ports, RCiEPs, chipset devices
    LINK = "link"  # below a root/downstream port: one device, slot 0
    SWITCH = "switch"  # below an upstream port: downstream ports
    PCI = "pci"  # conventional PCI below a PCIe-to-PCI or PCI-PCI bridge


@attrs.frozen
class _Options:
    max_functions: int
    domains: int
    root_buses: int
    max_depth: int
    switches: bool
    conventional: bool
    multifunction: bool
    sriov: bool
    aliases: bool
    rciep: bool
    quirk_ids: bool
    full_acs: bool


@attrs.frozen
class _VfPlan:
    """A PF's VFs before bus numbers: their own fields, and where to put them."""

    vfs: tuple[tuple[bool, Acs | None], ...]  # (multifunction bit, ACS) per VF
    placement: int  # 0: after the PF, 1: devfn 0x80, 2: next bus
    stride: int
    spill_devfn: int  # first VF's devfn on the next bus (placement 2)
    spare_vfs: int  # total_vfs - num_vfs


@attrs.frozen
class _FnPlan:
    """One function before bus numbers; a bridge carries the plan of its secondary bus."""

    function: int
    fields: dict[str, Any]
    child: _BusPlan | None = None
    vfs: _VfPlan | None = None


@attrs.frozen
class _SlotPlan:
    device: int
    functions: tuple[_FnPlan, ...]


@attrs.frozen
class _BusPlan:
    slots: tuple[_SlotPlan, ...]


class _Builder:
    """Draws one topology in two passes.

    1. Draw a tree of bus plans, depth first, each slot, function and
       subtree in a span of its own and every repetition behind a "one more?"
       choice, so the shrinker can drop any part of it.
    2. Number it as ``pci_scan_child_bus`` does, per bus: the devices on it;
       the bus numbers its PFs' VFs need (``pci_iov_bus_range``, reserved
       before any bridge below is numbered); then each bridge in devfn order
       takes the next free number as its secondary bus, its subtree is
       numbered, and its subordinate bus is the last number the subtree used.
    """

    def __init__(self, draw: st.DrawFn, opts: _Options) -> None:
        self.draw = draw
        self.opts = opts
        self.remaining = opts.max_functions
        self.bus_room = 0  # bus numbers the current domain may still use

    # --- drawing helpers (strategies are cached: building one costs more than drawing) ---
    def take(self, n: int = 1) -> None:
        assert n <= self.remaining
        self.remaining -= n

    def chance(self, percent: int) -> bool:
        """True with about ``percent`` % probability; shrinks to False."""
        return self.draw(_integers(0, 99)) >= 100 - percent

    def more(self, done: int, limit: int, percent: int) -> bool:
        """Another repetition? Never beyond ``limit`` or the function budget."""
        return done < limit and self.remaining >= 1 and self.chance(percent)

    def upto(self, lo: int, hi: int) -> int:
        return lo if hi <= lo else self.draw(_integers(lo, hi))

    def pick(self, options: Sequence[_T]) -> _T:
        return options[0] if len(options) == 1 else options[self.upto(0, len(options) - 1)]

    def span(self, build: Callable[[], _T]) -> _T:
        return self.draw(_span(build))

    def acs(self) -> Acs | None:
        return self.draw(_FULL_ACS if self.opts.full_acs else _ANY_ACS)

    def quirky(self) -> bool:
        return self.opts.quirk_ids and self.chance(10)

    def ids(
        self, neutral: Sequence[tuple[int, int]], quirk: Sequence[tuple[int, int]] = ()
    ) -> dict[str, Any]:
        vendor, device = self.pick(quirk if quirk and self.quirky() else neutral)
        return {"vendor": vendor, "device": device}

    def can_bridge(self, depth: int) -> bool:
        return depth < self.opts.max_depth and self.remaining >= 1 and self.bus_room >= 1

    # --- pass 1: the tree ---
    def build(self) -> Topology:
        domains: list[tuple[int, list[tuple[int, _BusPlan]]]] = []
        while True:
            used = {d for d, _ in domains}
            dom = 0 if not domains else self.pick([d for d in _EXTRA_DOMAINS if d not in used])
            self.bus_room = 0xF0
            roots: list[tuple[int, _BusPlan]] = []
            while True:
                roots.append(self.span(functools.partial(self.root, bool(roots))))
                if not self.more(len(roots), self.opts.root_buses, 30):
                    break
            domains.append((dom, roots))
            if not self.more(len(domains), self.opts.domains, 30):
                break
        return Topology(_number(domains))

    def root(self, expander: bool) -> tuple[int, _BusPlan]:
        """A root bus; an expander root bus sits a little above what came before."""
        gap = self.upto(0, min(0x10, self.bus_room - 8)) if expander else 0
        self.bus_room -= gap + 1
        return gap, self.bus(_Bus.ROOT, 0)

    def bus(self, kind: _Bus, depth: int) -> _BusPlan:
        slots: list[_SlotPlan] = []
        if kind is _Bus.LINK:
            slot = self.link_slot(depth)
            return _BusPlan((slot,) if slot is not None else ())
        if kind is _Bus.ROOT:
            element, limit, percent = self.root_slot, 8, 75
            if self.quirky():
                # An AMD host bridge at 00.0 (the AMD southbridge ACS quirk needs IVRS).
                vendor, device, cls = _AMD_HOST_BRIDGE
                self.take()
                fields = {"vendor": vendor, "device": device, "class_code": cls}
                fields["pcie_type"] = PcieType.RC_END
                slots.append(_SlotPlan(0, (_FnPlan(0, fields),)))
        elif kind is _Bus.SWITCH:
            element, limit, percent = self.downstream_port, 4, 50
        else:
            element, limit, percent = self.pci_slot, 4, 50
        first = True
        while first or self.more(len(slots), limit, percent):
            if not first or slots:
                prev = slots[-1].device if slots else -1
                made = self.span(functools.partial(self.next_slot, prev, element, depth))
            else:  # the first slot of a conventional bus need not be 0
                start = self.upto(0, 4) if kind is _Bus.PCI else 0
                made = self.span(functools.partial(element, start, depth))
            first = False
            if made is None:
                break
            slots.append(made)
        return _BusPlan(tuple(slots))

    def next_slot(
        self, prev: int, element: Callable[[int, int], _SlotPlan | None], depth: int
    ) -> _SlotPlan | None:
        slot = prev + 1 + self.upto(0, 3)
        return element(slot, depth) if slot <= 0x1F else None

    def root_slot(self, slot: int, depth: int) -> _SlotPlan | None:
        opts = self.opts
        choices = ["endpoint", "root_port"]
        if opts.multifunction:
            choices.append("multifunction_root_port")
        if opts.rciep:
            choices.append("rciep")
        if opts.conventional:
            choices += ["pcie_pci_bridge", "conventional"]
        choices.append("rc_ec")
        what = self.pick(choices)
        if what in ("root_port", "multifunction_root_port") and self.can_bridge(depth):
            return self.root_ports(slot, depth, what == "multifunction_root_port")
        if what == "pcie_pci_bridge" and self.can_bridge(depth):
            fields = self.ids(_NEUTRAL_PCIE_PCI) | {"pcie_type": PcieType.PCI_BRIDGE}
            return _SlotPlan(slot, (self.bridge(0, fields, _Bus.PCI, depth),))
        if what == "conventional":
            return self.endpoint(slot, None)
        if what == "rciep":
            return self.endpoint(slot, PcieType.RC_END, root=True)
        if what == "rc_ec" and self.remaining >= 1:
            self.take()
            fields = {"vendor": 0x1B36, "device": 0x0020, "class_code": 0x080700}
            return _SlotPlan(slot, (_FnPlan(0, fields | {"pcie_type": PcieType.RC_EC}),))
        return self.endpoint(slot, PcieType.ENDPOINT, root=True)

    def bridge(self, function: int, fields: dict[str, Any], child: _Bus, depth: int) -> _FnPlan:
        self.take()
        self.bus_room -= 1
        plan = self.span(functools.partial(self.bus, child, depth + 1))
        return _FnPlan(function, fields, child=plan)

    def root_ports(self, slot: int, depth: int, multifunction: bool) -> _SlotPlan:
        """A root port, or a multifunction slot of them (Intel PCH style)."""
        ids = self.ids(_NEUTRAL_ROOT_PORTS, _QUIRK_ROOT_PORTS)
        ports = [self.root_port(0, multifunction, ids, depth)]
        fn = 0
        while multifunction and (len(ports) == 1 or self.more(len(ports), 4, 50)):
            fn += 1 + self.upto(0, 2)
            if fn > 7 or not self.can_bridge(depth):
                break
            # the kernel forces the multifunction bit on functions > 0 (R5.6)
            port = functools.partial(self.root_port, fn, None, ids, depth)
            ports.append(self.span(port))
        return _SlotPlan(slot, tuple(ports))

    def root_port(
        self, fn: int, multifunction: bool | None, ids: dict[str, Any], depth: int
    ) -> _FnPlan:
        fields = ids | {
            "pcie_type": PcieType.ROOT_PORT,
            "multifunction": self.chance(70) if multifunction is None else multifunction,
            "acs": self.acs(),
        }
        return self.bridge(fn, fields, _Bus.LINK, depth)

    def link_slot(self, depth: int) -> _SlotPlan | None:
        """What a PCIe link carries: one device (or none) at slot 0."""
        choices = ["endpoint", "empty", "legacy_endpoint"]
        if self.opts.switches:
            choices.append("switch")
        if self.opts.conventional:
            choices += ["pcie_pci_bridge", "hidden_pci_bridge"]
        what = self.pick(choices)
        if what == "empty" or self.remaining < 1:
            return None
        if what == "switch" and self.can_bridge(depth):
            fields = self.ids(_NEUTRAL_USP) | {
                "pcie_type": PcieType.UPSTREAM,
                "acs": self.acs() if self.opts.full_acs or self.chance(30) else None,
            }
            return _SlotPlan(0, (self.bridge(0, fields, _Bus.SWITCH, depth),))
        if what == "pcie_pci_bridge" and self.can_bridge(depth):
            fields = self.ids(_NEUTRAL_PCIE_PCI) | {"pcie_type": PcieType.PCI_BRIDGE}
            return _SlotPlan(0, (self.bridge(0, fields, _Bus.PCI, depth),))
        if what == "hidden_pci_bridge" and self.can_bridge(depth):
            # A PCIe-to-PCI bridge without a PCIe capability
            # (R3.5 quirk_use_pcie_bridge_dma_alias).
            fields = self.ids(_NEUTRAL_PCI_PCI, _QUIRK_HIDDEN_BRIDGES) | {"pcie_type": None}
            return _SlotPlan(0, (self.bridge(0, fields, _Bus.PCI, depth),))
        if what == "legacy_endpoint":
            return self.endpoint(0, PcieType.LEG_END)
        return self.endpoint(0, PcieType.ENDPOINT)

    def downstream_port(self, slot: int, depth: int) -> _SlotPlan | None:
        if not self.can_bridge(depth):
            return None
        fields = self.ids(_NEUTRAL_SWITCH, _QUIRK_DOWNSTREAM) | {
            "pcie_type": PcieType.DOWNSTREAM,
            "acs": self.acs(),
        }
        return _SlotPlan(slot, (self.bridge(0, fields, _Bus.LINK, depth),))

    def pci_slot(self, slot: int, depth: int) -> _SlotPlan | None:
        if self.chance(20) and self.can_bridge(depth):
            # A conventional PCI-PCI bridge (no PCIe capability).
            fields = self.ids(_NEUTRAL_PCI_PCI) | {"pcie_type": None}
            return _SlotPlan(slot, (self.bridge(0, fields, _Bus.PCI, depth),))
        return self.endpoint(slot, None)

    # --- devices ---
    def endpoint(
        self, slot: int, pcie_type: PcieType | None, *, root: bool = False
    ) -> _SlotPlan | None:
        """One device (1-8 functions) at ``slot``: neutral, ACS-quirk or alias-quirk ids."""
        if self.remaining < 1:
            return None
        opts = self.opts
        personalities = ["neutral"]
        if opts.quirk_ids:
            if pcie_type is not None:
                personalities.append("mf_acs_quirk")
            if root:
                personalities.append("amd_sb")
            if pcie_type is PcieType.RC_END:
                personalities.append("intel_rciep")
            if opts.aliases:
                personalities += ["marvell", "ricoh", "mic_x200", "plx_ntb", "adaptec"]
        who = self.pick(personalities) if self.chance(12) else "neutral"
        vendor, device, cls = self.pick(
            _NEUTRAL_CONVENTIONAL if pcie_type is None else _NEUTRAL_ENDPOINTS
        )
        sub = (0, 0)
        if who == "mf_acs_quirk":
            vendor, device, cls = self.pick(_QUIRK_MF_ENDPOINTS)
        elif who == "amd_sb":
            vendor, device, cls = self.pick(_QUIRK_ROOT_BUS)
        elif who == "intel_rciep":
            vendor, device, cls = _INTEL_RCIEP
        elif who == "marvell":  # quirk_dma_func1_alias: fn0 DMAs as fn1 (R3.5)
            vendor, device, cls = 0x1B4B, 0x9230, 0x010601
        elif who == "ricoh":  # quirk_dma_func0_alias: fn > 0 DMAs as fn0 (R3.5)
            vendor, device, cls = 0x1180, 0xE822, 0x080500
        elif who == "mic_x200":  # aliases 10.0, 11.0, 12.3
            vendor, device, cls = 0x8086, 0x2260, 0x0B4000
        elif who == "plx_ntb":  # aliases every devfn of its bus
            vendor, device, cls = 0x10B5, 0x87B0, 0x068000
        elif who == "adaptec":  # quirk_fixed_dma_alias: 01.0
            vendor, device, cls = 0x9005, 0x0285, 0x010400
            sub = (0x9005, 0x02BB)
        common: dict[str, Any] = {
            "vendor": vendor,
            "device": device,
            "class_code": cls,
            "pcie_type": pcie_type,
            "subsystem_vendor": sub[0],
            "subsystem_device": sub[1],
        }
        multi = (
            opts.multifunction
            and self.remaining > 1
            and (self.chance(70) if who in ("marvell", "ricoh") else self.chance(35))
        )
        # fn 0 of a single-function device may carry the multifunction bit too
        fn0_bit = multi or (opts.multifunction and self.chance(5))
        functions = [self.function(slot, 0, fn0_bit, common)]
        fn = 0
        while multi and (len(functions) == 1 or self.more(len(functions), 8, 50)):
            fn += 1 + self.upto(0, 2)
            if fn > 7 or self.remaining < 1:
                break
            fields = common
            if who == "ricoh" and len(functions) == 1:
                fields = common | {"device": 0xE832}
            # the kernel forces the bit on functions > 0 anyway (R5.6)
            functions.append(self.span(functools.partial(self.function, slot, fn, None, fields)))
        return _SlotPlan(slot, tuple(functions))

    def function(
        self, slot: int, fn: int, multifunction: bool | None, common: dict[str, Any]
    ) -> _FnPlan:
        self.take()
        mf = self.chance(60) if multifunction is None else multifunction
        pcie_type = common["pcie_type"]
        fields = common | {"multifunction": mf}
        if pcie_type is not None and (mf or fn > 0):
            fields["acs"] = self.acs()  # mixed: absent, partial or isolating per function
        elif pcie_type is not None and self.chance(10):
            fields["acs"] = self.draw(_ANY_ACS)  # ignored: single-function (R2.3 step 4)
        if self.opts.aliases and self.chance(8):  # explicit alias devfns (R3.3)
            # 0-7: a function of its own slot; 8-263: any devfn of its bus
            fields["dma_alias_devfns"] = frozenset(
                slot << 3 | k if k < 8 else k - 8 for k in self.draw(_ALIAS_KEYS)
            )
        vfs = None
        if (
            self.opts.sriov
            and pcie_type in (PcieType.ENDPOINT, PcieType.RC_END)
            and self.remaining >= 1
            and self.bus_room >= 2
            and self.chance(20)
        ):
            vfs = self.span(self.vf_plan)
        return _FnPlan(fn, fields, vfs=vfs)

    def vf_plan(self) -> _VfPlan:
        vfs: list[tuple[bool, Acs | None]] = []
        while not vfs or self.more(len(vfs), 4, 40):
            self.take()
            mf = self.opts.multifunction and self.chance(10)
            vfs.append((mf, self.acs() if mf else None))
        self.bus_room -= 2  # VFs may run over onto the next two bus numbers
        return _VfPlan(
            vfs=tuple(vfs),
            placement=self.upto(0, 2),
            stride=self.pick((1, 2)),
            spill_devfn=self.pick((0x00, 0x80, 0xFE)),
            spare_vfs=self.upto(0, 3),
        )


# --- pass 2: bus numbers ---------------------------------------------------------


def _number(domains: list[tuple[int, list[tuple[int, _BusPlan]]]]) -> list[PciFunction]:
    out: list[PciFunction] = []
    for dom, roots in domains:
        next_bus = 0
        for gap, plan in roots:
            root = next_bus + gap
            next_bus = _number_bus(out, dom, root, plan)
    return out


def _number_bus(out: list[PciFunction], dom: int, bus: int, plan: _BusPlan) -> int:
    """Number ``plan`` as bus ``bus``; returns the next free bus number."""
    next_bus = bus + 1
    bridges: list[tuple[PciAddress, _FnPlan]] = []
    pfs: list[tuple[int, _VfPlan]] = []  # (index into out, plan)
    taken: set[int] = set()  # requester ids used on this bus and the VF buses
    for slot in plan.slots:
        for fp in slot.functions:
            address = PciAddress(dom, bus, slot.device, fp.function)
            taken.add(address.rid)
            if fp.child is not None:
                bridges.append((address, fp))
                continue
            if fp.vfs is not None:
                pfs.append((len(out), fp.vfs))
            out.append(PciFunction(address, **fp.fields))
    cursor = max(taken, default=bus << 8) + 1
    for index, vp in pfs:
        pf = out[index]
        pf_rid = pf.address.rid
        n = len(vp.vfs)
        stride = vp.stride
        if vp.placement == 0:  # right after the PF (mlx5: PFs 00.0/00.1, VFs 00.2 ...)
            start = pf_rid + 1
        elif vp.placement == 1:  # Intel NICs: offset 0x80
            start = bus << 8 | 0x80
        else:  # on the next bus (a virtual bus), possibly running over to the one after
            start = (bus + 1) << 8 | vp.spill_devfn
        rids = [start + i * stride for i in range(n)]
        if start <= pf_rid or any(r in taken or r >> 8 > bus + 2 for r in rids):
            stride, start = 1, cursor
            rids = [start + i for i in range(n)]
        taken.update(rids)
        cursor = max(cursor, rids[-1] + 1)
        next_bus = max(next_bus, (rids[-1] >> 8) + 1)  # pci_iov_bus_range
        cap = SriovCapability(
            total_vfs=n + vp.spare_vfs,
            num_vfs=n,
            offset=start - pf_rid,
            stride=stride,
            vf_device=min(pf.device + 1, 0xFFFF),
        )
        out[index] = attrs.evolve(pf, sriov=cap)
        for rid, (mf, vf_acs) in zip(rids, vp.vfs, strict=True):
            out.append(
                PciFunction(
                    PciAddress.from_devfn(dom, rid >> 8, rid & 0xFF),
                    vendor=pf.vendor,
                    device=cap.vf_device,
                    class_code=pf.class_code,
                    multifunction=mf,
                    pcie_type=pf.pcie_type,
                    acs=vf_acs,
                    physfn=pf.address,
                )
            )
    for address, fp in bridges:  # already in devfn order
        assert fp.child is not None
        sec = next_bus
        next_bus = _number_bus(out, dom, sec, fp.child)
        out.append(
            PciFunction(
                address,
                **fp.fields,
                header_type=HEADER_BRIDGE,
                class_code=0x060400,
                secondary_bus=sec,
                subordinate_bus=next_bus - 1,
            )
        )
    return next_bus


@st.composite
def _topologies(draw: st.DrawFn, opts: _Options) -> Topology:
    return _Builder(draw, opts).build()


def topologies(
    *,
    max_functions: int = 40,
    domains: int = 2,
    root_buses: int = 2,
    max_depth: int = 6,
    switches: bool = True,
    conventional: bool = True,
    multifunction: bool = True,
    sriov: bool = True,
    aliases: bool = True,
    rciep: bool = True,
    quirk_ids: bool = True,
    full_acs: bool = False,
) -> st.SearchStrategy[Topology]:
    """Random valid PCI topologies, as the kernel would enumerate them.

    Each PCI domain has one or more root buses (several numbers in one domain
    model expander buses). Below them: root ports (single or multifunction
    slots), root-complex integrated endpoints and event collectors, chipset
    devices; switches (an upstream port and downstream ports, nested); PCIe
    endpoints with 1-8 functions; PCIe-to-PCI bridges and hidden
    (capability-less) ones with conventional PCI devices and PCI-PCI bridges
    behind them; SR-IOV PFs whose VFs sit in the PF's slot, higher on its
    bus, or on the next (virtual) buses. ACS is absent, partial or
    isolating, at random (:func:`acs`). Functions other than 0 carry the
    multifunction header bit only sometimes: the kernel forces it (R5.6).

    Ids are mostly neutral (QEMU ``0x1b36``, virtio ...), so kernel ACS quirks
    rarely apply; roughly one device in ten gets the ids of an ACS quirk
    (Intel PCH root ports, Intel multifunction NICs, AMD southbridge, Intel
    RCiEPs, ...) or a DMA-alias quirk (Marvell ``0x1b4b:0x9230`` -> function 1,
    Ricoh ``0x1180:0xe832`` -> function 0, Intel MIC x200, PLX NTB, Adaptec
    fixed alias). A few functions get explicit ``dma_alias_devfns``.

    Bus numbers are assigned depth-first: each bridge's secondary bus is the
    next free number and its subordinate bus the last number its subtree
    (VF buses included) used.

    Args:
        max_functions: upper bound on the number of PCI functions (VFs
            included). At least 1.
        domains: largest number of PCI domains, 1-6 (domain 0 always exists;
            others are drawn from 1, 2, 0xa and the VMD-style 0x10000, 0x10001).
        root_buses: largest number of root buses per domain, 1-8.
        max_depth: largest number of bridges on a path from a root bus.
        switches: generate PCIe switches.
        conventional: generate conventional PCI: PCIe-to-PCI bridges (with
            and without a PCIe capability), conventional devices and bridges.
        multifunction: generate multifunction devices and root-port slots,
            and the multifunction header bit on single-function devices and
            VFs. Off: every device has only function 0, with the bit clear
            (VFs may still share a slot with their PF, as single functions).
        sriov: generate SR-IOV PFs and VFs.
        aliases: generate DMA aliases: explicit ``dma_alias_devfns`` and the
            ids of alias quirks.
        rciep: generate root-complex integrated endpoints (``RC_END``).
        quirk_ids: sometimes use the ids of devices the kernel has quirks for.
        full_acs: every port and every function of a multifunction device
            gets an isolating ACS capability (:data:`FULL_ACS` or a superset).
            With ``quirk_ids``, a kernel ACS quirk may still overrule it.

    Returns:
        A strategy of :class:`~iommugroups.Topology`, each with at least one
        function and no platform devices or declared IOMMUs.

    Raises:
        ValueError: ``max_functions``, ``domains``, ``root_buses`` or
            ``max_depth`` out of range.
    """
    if max_functions < 1:
        raise ValueError(f"max_functions must be at least 1, not {max_functions}")
    if not 1 <= domains <= 6:
        raise ValueError(f"domains must be 1-6, not {domains}")
    if not 1 <= root_buses <= 8:
        raise ValueError(f"root_buses must be 1-8, not {root_buses}")
    if max_depth < 0:
        raise ValueError(f"max_depth must not be negative, not {max_depth}")
    return _topologies(
        _Options(
            max_functions=max_functions,
            domains=domains,
            root_buses=root_buses,
            max_depth=max_depth,
            switches=switches,
            conventional=conventional,
            multifunction=multifunction,
            sriov=sriov,
            aliases=aliases,
            rciep=rciep,
            quirk_ids=quirk_ids,
            full_acs=full_acs,
        )
    )


# --- simulator inputs: an IOMMU, a driver per device, a probe order -----------------

#: The built-in port driver (root, switch and RC event collector ports).
_PCIEPORT = "pcieport"


def with_iommu(topology: Topology, *, kind: IommuKind = IommuKind.VTD) -> Topology:
    """``topology`` behind IOMMUs: one instance per PCI domain, identity ID mappings.

    Instance ``iommu<n>`` (``n``: the domain's index in ascending order) of
    ``kind`` translates every requester id of its domain to stream id
    ``n << 16 | rid`` (R3.8), so stream ids never repeat across domains.
    Declared IOMMU instances and ID mappings are replaced; platform devices
    are kept as they are.

    Which ``kind``: the simulator gives SMMUv3 its stream-id table (R7.9:
    a device whose stream id another device already holds gets no group) and
    SMMUv2 its stream-match sharing (R1.7); any other kind (the default,
    VT-d) groups by ``pci_device_group`` alone (R4, R5). Under SMMUv3 the
    devices that share a stream id (two conventional devices behind one
    PCIe-to-PCI bridge both alias to its ``(secondary bus, 00.0)``, R3.4; a
    Marvell function 0 aliases to function 1, R3.5) make *which of them* is
    grouped depend on probe order as well, a second order dependence that
    would hide the one probe-order properties usually look at.

    >>> from iommugroups import PciFunction
    >>> topo = with_iommu(Topology([PciFunction("0001:00:00.0")]))
    >>> topo.iommus[0].name, topo.id_mappings[0].map(1, 0x0008)
    ('iommu0', 8)
    """
    domains = sorted({fn.address.domain for fn in topology.functions})
    iommus = [IommuInstance(f"iommu{n}", kind) for n in range(len(domains))]
    mappings = [IdMapping(dom, 0, 0x10000, n << 16, f"iommu{n}") for n, dom in enumerate(domains)]
    return attrs.evolve(topology, iommus=iommus, id_mappings=mappings)


def _must_follow(
    topology: Topology, parents_first: bool, movable: Iterable[PciAddress]
) -> dict[PciAddress, frozenset[PciAddress]]:
    """Per function, which of the ``movable`` functions must probe before it.

    Always: a VF after its PF and after every bridge above its PF (``sriov``
    needs the PF's driver bound, and under device links that waits for those
    bridges). With ``parents_first``: every function after every bridge above it.
    """
    moving = set(movable)
    out: dict[PciAddress, frozenset[PciAddress]] = {}
    for fn in topology.enumeration_order():
        need: set[PciAddress] = set()
        if fn.physfn is not None:
            need.add(fn.physfn)
            need.update(b.address for b in topology.bridges_above(topology.get(fn.physfn)))
        if parents_first:
            need.update(b.address for b in topology.bridges_above(fn))
        out[fn.address] = frozenset(need & moving)
    return out


@st.composite
def _linear_extensions(
    draw: st.DrawFn,
    items: tuple[PciAddress, ...],
    must_follow: dict[PciAddress, frozenset[PciAddress]],
) -> tuple[PciAddress, ...]:
    # Each item draws a delay; among the items whose predecessors are all placed,
    # the one with the smallest (delay, position in ``items``) goes next. Delays
    # shrink to 0, i.e. towards ``items`` itself. They are drawn last item first:
    # when the shrinker deletes devices of the topology (drawn before), mostly
    # early ones, the later devices keep their delays.
    top = max(len(items) - 1, 0)
    key = {a: (draw(_integers(0, top)), i) for i, a in reversed(list(enumerate(items)))}
    placed: set[PciAddress] = set()
    out: list[PciAddress] = []
    remaining = set(items)
    while remaining:
        ready = [a for a in remaining if must_follow.get(a, frozenset()) <= placed]
        chosen = min(ready, key=key.__getitem__)
        out.append(chosen)
        placed.add(chosen)
        remaining.discard(chosen)
    return tuple(out)


def probe_orders(
    topology: Topology,
    *,
    parents_first: bool = False,
    only: Iterable[PciAddress] | None = None,
) -> st.SearchStrategy[tuple[PciAddress, ...]]:
    """Orders in which the functions of ``topology`` could have their drivers probed.

    Every order puts an SR-IOV VF after its PF (the PF's driver enables it)
    and after the bridges above its PF. Orders shrink towards the kernel's
    device-add order (:meth:`~iommugroups.Topology.enumeration_order`),
    which is parents first.

    Args:
        topology: the machine.
        parents_first: only orders in which every function comes after every
            bridge above it (what grouping in device-add order, R10.1, or a
            device link to the parent bridge, R9.1, guarantee).
        only: order just these functions (default: all); constraints
            involving the others are dropped.

    Returns:
        A strategy of tuples of addresses, each function once.
    """
    everything = tuple(fn.address for fn in topology.enumeration_order())
    wanted = None if only is None else set(only)
    chosen = everything if wanted is None else tuple(a for a in everything if a in wanted)
    return _linear_extensions(chosen, _must_follow(topology, parents_first, chosen))


class ProbeSetup(NamedTuple):
    """One simulator input: what :func:`probe_scenarios` draws, :func:`probe_setup` builds.

    Attributes:
        topology: the machine, behind an IOMMU.
        scenario: the boot and the probe order as ``insmod``/``bind`` actions.
        drivers: the per-device drivers the scenario loads (for ``simulate``).
    """

    topology: Topology
    scenario: Scenario
    drivers: tuple[Driver, ...]

    def probe_order(self) -> tuple[str, ...]:
        """The devices in the order the scenario binds their own drivers."""
        return tuple(a.args[0] for a in self.scenario.actions if a.kind == "bind")

    def run(self, strategy: str | StrategyLike) -> SimulationResult:
        """``simulate`` this input under ``strategy``."""
        return simulate(self.topology, self.scenario, strategy, drivers=self.drivers)


def device_driver_name(address: PciAddress) -> str:
    """The name :func:`probe_scenarios` gives the driver of the function at ``address``."""
    return f"drv-{address}"


def _own_driver(address: PciAddress) -> Driver:
    return Driver(
        device_driver_name(address),
        override_only=True,
        about=f"the driver of {address} alone (bound through driver_override)",
    )


def _port_bound(topology: Topology) -> set[PciAddress]:
    """The functions the built-in ``pcieport`` binds (root, switch, RC_EC ports)."""
    pcieport = KNOWN_DRIVERS[_PCIEPORT]
    return {
        fn.address
        for fn in topology.enumeration_order()
        if not fn.is_virtfn and pcieport.matches(fn) and pcieport.probe(fn) is ProbeResult.OK
    }


def _below_failing(topology: Topology, fn: PciFunction, failing: set[PciAddress]) -> bool:
    """``fn`` is, or sits below, a function whose probe fails."""
    return fn.address in failing or any(b.address in failing for b in topology.bridges_above(fn))


def probe_setup(
    topology: Topology,
    order: Iterable[PciAddress | str],
    *,
    bridges: Literal["own", "pcieport"] = "own",
    kind: IommuKind = IommuKind.VTD,
    failing: Iterable[PciAddress | str] = (),
    firmware: Literal["dt", "acpi"] = "dt",
) -> ProbeSetup:
    """The simulator input that probes ``topology``'s devices in ``order``.

    What :func:`probe_scenarios` draws, for one given order (see there for
    the boot, the IOMMU and the drivers).

    Args:
        topology: the machine; given :func:`with_iommu` of ``kind`` if it
            declares no IOMMU.
        order: the devices whose own driver is bound, in that order. Devices
            left out are never probed by a driver of their own (ports under
            ``bridges="pcieport"`` are bound at boot and must be left out).
        bridges: ``"own"`` or ``"pcieport"`` (see :func:`probe_scenarios`).
        kind: the IOMMU kind when the topology has none.
        failing: functions whose driver (their own, or ``pcieport``) fails
            its probe for good (``Scenario.probe_failures``).
        firmware: ``"dt"`` or ``"acpi"`` (see :func:`probe_scenarios`).

    Returns:
        The topology (with its IOMMU), the scenario and the drivers.

    Raises:
        ValueError: ``order`` names a function twice, a port ``pcieport``
            binds, or a VF before its PF and the bridges above the PF are bound
            (or of a PF that never binds).
        UnknownDevice: ``order`` or ``failing`` names a function the topology lacks.

    The seed's bug in two functions: an endpoint probed before the root port
    above it, which has no ACS (R4.5, R7.8):

    >>> from iommugroups import PciFunction, PcieType
    >>> port = PciFunction("00:00.0", class_code=0x060400, header_type=1,
    ...                    pcie_type=PcieType.ROOT_PORT, secondary_bus=1, subordinate_bus=1)
    >>> nic = PciFunction("01:00.0", class_code=0x020000, pcie_type=PcieType.ENDPOINT)
    >>> setup = probe_setup(Topology([port, nic]), ["01:00.0", "00:00.0"])
    >>> print("\\n".join(setup.run("legacy-probe-time").log_lines(markers=True)))
    ACTION insmod drv-0000:01:00.0
    ACTION bind 0000:01:00.0 drv-0000:01:00.0
    drv-0000:01:00.0 0000:01:00.0: Adding to iommu group 0
    ACTION insmod drv-0000:00:00.0
    ACTION bind 0000:00:00.0 drv-0000:00:00.0
    drv-0000:00:00.0 0000:00:00.0: Adding to iommu group 1
    >>> setup.run("device-add").grouping.same_group("00:00.0", "01:00.0")
    True
    """
    if bridges not in ("own", "pcieport"):
        raise ValueError(f"bridges must be 'own' or 'pcieport', not {bridges!r}")
    if firmware not in ("dt", "acpi"):
        raise ValueError(f"firmware must be 'dt' or 'acpi', not {firmware!r}")
    topo = topology if topology.iommus else with_iommu(topology, kind=kind)
    by_port = _port_bound(topo) if bridges == "pcieport" else set()
    chosen = [topo.get(a).address for a in order]
    broken = {topo.get(a).address for a in failing}
    if len(set(chosen)) != len(chosen):
        raise ValueError("probe order names a function twice")
    if by_port & set(chosen):
        raise ValueError(
            f"{min(by_port & set(chosen))} is bound by the built-in pcieport, not in order"
        )
    # ``sriov PF N`` once the PF and the own-driver bridges above it are bound.
    waits: dict[PciAddress, set[PciAddress]] = {}
    for fn in topo.enumeration_order():
        if (
            fn.sriov is not None
            and topo.vfs_of(fn.address)
            and not _below_failing(topo, fn, broken)
        ):
            waits[fn.address] = {fn.address} | {
                b.address for b in topo.bridges_above(fn) if b.address not in by_port
            }
    actions: list[Action] = []
    done: set[PciAddress] = set()
    enabled: set[PciAddress] = set()
    for address in chosen:
        physfn = topo.get(address).physfn
        if physfn is not None and physfn not in enabled:
            raise ValueError(
                f"VF {address} comes before its PF {physfn} and the bridges above it are bound"
            )
        name = device_driver_name(address)
        actions += [Action("insmod", (name,)), Action("bind", (str(address), name))]
        done.add(address)
        for pf, need in list(waits.items()):
            if need <= done:
                actions.append(Action("sriov", (str(pf), str(len(topo.vfs_of(pf))))))
                enabled.add(pf)
                del waits[pf]
    probe_failures = {
        (_PCIEPORT if a in by_port else device_driver_name(a), str(a)) for a in broken
    }
    scenario = Scenario(
        name="probe order",
        firmware=firmware,
        builtin=(_PCIEPORT, IOMMU_DRIVER) if bridges == "pcieport" else (IOMMU_DRIVER,),
        actions=actions,
        probe_failures=probe_failures,
        # The strategies are compared on the topology's own ACS controls: a
        # kernel that does not enable ACS just before grouping on device-tree
        # machines (R2.7 moved that in ≈v7.0).
        kernel="6.15",
    )
    return ProbeSetup(topo, scenario, tuple(_own_driver(a) for a in chosen))


@st.composite
def _probe_scenarios(
    draw: st.DrawFn,
    topology: Topology,
    parents_first: bool,
    bridges: Literal["own", "pcieport"],
    kind: IommuKind,
    failures: bool,
    firmware: Literal["dt", "acpi"],
) -> ProbeSetup:
    by_port = _port_bound(topology) if bridges == "pcieport" else set()
    failing: set[PciAddress] = set()
    bridge_list = [fn.address for fn in topology.enumeration_order() if fn.is_bridge]
    if failures and bridge_list:
        failing = set(draw(st.sets(st.sampled_from(bridge_list), min_size=1)))
    # VFs of a PF that will not bind for sure (it or a bridge above it fails) stay off.
    movable = [
        fn.address
        for fn in topology.enumeration_order()
        if fn.address not in by_port
        and (fn.physfn is None or not _below_failing(topology, topology.get(fn.physfn), failing))
    ]
    order = draw(probe_orders(topology, parents_first=parents_first, only=movable))
    return probe_setup(
        topology, order, bridges=bridges, kind=kind, failing=failing, firmware=firmware
    )


def probe_scenarios(
    topology: Topology,
    *,
    parents_first: bool = False,
    bridges: Literal["own", "pcieport"] = "own",
    kind: IommuKind = IommuKind.VTD,
    failures: bool = False,
    firmware: Literal["dt", "acpi"] = "dt",
) -> st.SearchStrategy[ProbeSetup]:
    """Simulator inputs for ``topology``: an IOMMU, a driver per device, a probe order.

    What is drawn, and why:

    * **The IOMMU.** A topology that declares none gets :func:`with_iommu`
      of ``kind`` (default VT-d: grouping by ``pci_device_group`` alone; see
      there why not SMMUv3). A declared one is kept.
    * **The boot** (see :class:`~iommugroups.Scenario`). Firmware ``"dt"``
      (default): the IOMMU driver registers its instances before any PCI
      device exists, so nothing defers at boot; the PCI devices are then
      added in device order. ``"acpi"``: the PCI devices exist first (root
      bridges scanned at ``subsys_initcall``) and the IOMMU registers later,
      so a built-in ``pcieport`` defers (R7.3 step 4) until ``late_initcall``
      (R8.4), as on the seed's D05 (§11). No built-in endpoint driver.
    * **The drivers.** Every function gets a driver of its own,
      ``drv-<address>`` (:func:`device_driver_name`), matching nothing by id
      and bound to it through ``driver_override`` (a ``bind`` action): each
      device probes exactly when the order says, whatever ids it shares with
      others. With ``bridges="pcieport"`` the built-in ``pcieport`` binds the
      root, switch and event-collector ports during boot instead, in device
      order (parents first, R8.1); other bridges (PCIe-to-PCI, conventional)
      and the endpoints keep their own drivers.
    * **The order.** The scenario's actions are, per device in the drawn
      :func:`probe_orders` order, ``insmod drv-<address>`` then
      ``bind <address> drv-<address>``. A PF's VFs are enabled
      (``sriov PF N``, ``N`` the VFs the topology lists) as soon as the PF
      and the bridges above it are bound, and bound later in the order.
    * **Failures** (``failures=True``): a non-empty set of bridges (if
      there are any) whose driver fails its probe for good
      (``Scenario.probe_failures``). VFs of PFs that sit below, or are, a
      failing bridge are never enabled.

    Args:
        topology: the machine (keep it small, a dozen functions: every device
            adds two actions).
        parents_first: only orders in which every device probes after every
            bridge above it.
        bridges: ``"own"`` (bridges probe in the drawn order like any device)
            or ``"pcieport"`` (ports bound by the built-in ``pcieport`` at boot).
        kind: the IOMMU kind when the topology has none.
        failures: draw permanently failing bridge probes too.
        firmware: ``"dt"`` or ``"acpi"``.

    Returns:
        A strategy of :class:`ProbeSetup`; ``setup.run("legacy-probe-time")``
        simulates it. Orders shrink towards device-add order.

    Raises:
        ValueError: ``bridges`` or ``firmware`` is none of the above.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, database=None, deadline=None)
    ... @given(topologies(max_functions=6).flatmap(probe_scenarios))
    ... def check_device_add_ignores_probe_order(setup):
    ...     by_order = setup.run("device-add").grouping
    ...     assert by_order.partition() == setup.run("canonical").grouping.partition()
    >>> check_device_add_ignores_probe_order()
    """
    if bridges not in ("own", "pcieport"):
        raise ValueError(f"bridges must be 'own' or 'pcieport', not {bridges!r}")
    if firmware not in ("dt", "acpi"):
        raise ValueError(f"firmware must be 'dt' or 'acpi', not {firmware!r}")
    if not topology.iommus:
        topology = with_iommu(topology, kind=kind)
    return _probe_scenarios(topology, parents_first, bridges, kind, failures, firmware)


def parents_first_scenarios(
    topology: Topology,
    *,
    bridges: Literal["own", "pcieport"] = "own",
    kind: IommuKind = IommuKind.VTD,
    failures: bool = False,
    firmware: Literal["dt", "acpi"] = "dt",
) -> st.SearchStrategy[ProbeSetup]:
    """:func:`probe_scenarios` whose orders probe every device after every bridge above it.

    What grouping in device-add order (R10.1) and a device link from each
    device to its parent bridge (R9.1) guarantee; the order among siblings
    stays free.
    """
    return probe_scenarios(
        topology,
        parents_first=True,
        bridges=bridges,
        kind=kind,
        failures=failures,
        firmware=firmware,
    )
