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
from collections.abc import Sequence
from typing import Any

import attrs

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "iommugroups.testing needs Hypothesis: pip install 'iommugroups[test]'"
    ) from exc

from ._model import (
    HEADER_BRIDGE,
    Acs,
    AcsFlags,
    PciAddress,
    PcieType,
    PciFunction,
    SriovCapability,
    Topology,
)

__all__ = [
    "FULL_ACS",
    "acs",
    "pci_addresses",
    "shuffled",
    "topologies",
]

#: R2.1: the four controls IOMMU grouping requires, ``SV|RR|CR|UF``.
_REQ = AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF

#: An ACS capability that isolates (R2.1, R2.2): capability and control ``SV|RR|CR|UF``.
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


@functools.cache
def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


@functools.cache
def _function_sets(max_size: int) -> st.SearchStrategy[frozenset[int]]:
    return st.frozensets(st.integers(1, 7), min_size=1, max_size=max_size)


_ALIAS_KEYS = st.frozensets(st.integers(0, 8 + 0xFF), min_size=1, max_size=2)


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


@attrs.define
class _PendingBridge:
    kwargs: dict[str, Any]
    child: _Bus


@attrs.define
class _PendingPf:
    index: int  # into _Builder.functions
    num_vfs: int


class _Builder:
    """Draws one topology: depth-first, bus by bus, as ``pci_scan_child_bus`` numbers them.

    Per bus: (1) the devices on it; (2) the bus numbers its PFs' VFs need
    (``pci_iov_bus_range``, reserved before any bridge below is numbered);
    (3) each bridge in devfn order takes the next free bus number as its
    secondary bus, its subtree is built, and its subordinate bus is the last
    number the subtree used.
    """

    def __init__(self, draw: st.DrawFn, opts: _Options) -> None:
        self.draw = draw
        self.opts = opts
        self.remaining = opts.max_functions
        self.reserved = 0  # functions kept back for later root buses
        self.functions: list[PciFunction] = []
        self.domain = 0
        self.next_bus = 0
        self.bus_room = 0  # bus numbers still free in this domain (kept < 0xff)

    # --- drawing helpers (strategies are cached: building one costs more than drawing) ---
    def room(self) -> int:
        return self.remaining - self.reserved

    def take(self, n: int = 1) -> None:
        assert n <= self.room()
        self.remaining -= n

    def chance(self, percent: int) -> bool:
        """True with about ``percent`` % probability; shrinks to False."""
        return self.draw(_integers(0, 99)) >= 100 - percent

    def upto(self, lo: int, hi: int) -> int:
        return lo if hi <= lo else self.draw(_integers(lo, hi))

    def pick(self, options: Sequence[Any]) -> Any:
        return options[0] if len(options) == 1 else options[self.upto(0, len(options) - 1)]

    def acs(self) -> Acs | None:
        return self.draw(_FULL_ACS if self.opts.full_acs else _ANY_ACS)

    def quirky(self) -> bool:
        return self.opts.quirk_ids and self.chance(10)

    # --- the whole topology ---
    def build(self) -> Topology:
        n_domains = self.upto(1, self.opts.domains)
        extra = sorted(
            self.draw(
                st.sets(
                    st.sampled_from([1, 2, 0xA, 0x10000, 0x10001]),
                    min_size=n_domains - 1,
                    max_size=n_domains - 1,
                )
            )
        )
        # (domain, index of the root bus in it), for every root bus to build
        plan = [(dom, i) for dom in [0, *extra] for i in range(self.upto(1, self.opts.root_buses))]
        for k, (dom, i) in enumerate(plan):
            self.reserved = len(plan) - k - 1  # one function for each later root bus
            if self.room() < 1:
                break
            if i == 0:
                self.domain = dom
                self.next_bus = 0
                self.bus_room = 0xF0
            else:  # an expander root bus, above everything numbered so far
                gap = self.upto(0, 0x10)
                self.next_bus += gap
                self.bus_room -= gap
            root = self.next_bus
            self.next_bus += 1
            self.bus_room -= 1
            self.populate(root, _Bus.ROOT, 0)
        return Topology(self.functions)

    # --- one bus ---
    def populate(self, bus: int, kind: _Bus, depth: int) -> None:
        assert self.next_bus == bus + 1
        bridges: dict[int, _PendingBridge] = {}
        pfs: list[_PendingPf] = []
        if kind is _Bus.ROOT:
            self.root_bus(bus, depth, bridges, pfs)
        elif kind is _Bus.LINK:
            self.link_bus(bus, depth, bridges, pfs)
        elif kind is _Bus.SWITCH:
            self.switch_bus(bus, depth, bridges)
        else:
            self.pci_bus(bus, depth, bridges)
        self.place_vfs(bus, pfs, set(bridges))
        for devfn in sorted(bridges):
            pending = bridges[devfn]
            sec = self.next_bus
            self.next_bus += 1
            self.populate(sec, pending.child, depth + 1)
            self.functions.append(
                PciFunction(
                    **pending.kwargs,
                    header_type=HEADER_BRIDGE,
                    class_code=0x060400,
                    secondary_bus=sec,
                    subordinate_bus=self.next_bus - 1,
                )
            )

    def can_bridge(self, depth: int, pending: int = 0) -> bool:
        return depth < self.opts.max_depth and self.room() >= 1 and self.bus_room > pending

    def bridge(
        self,
        bridges: dict[int, _PendingBridge],
        address: PciAddress,
        child: _Bus,
        **kwargs: Any,
    ) -> None:
        self.take()
        self.bus_room -= 1
        bridges[address.devfn] = _PendingBridge({"address": address, **kwargs}, child)

    def slots(self, count: int, first: int = 0) -> list[int]:
        out = [first]
        for _ in range(count - 1):
            nxt = out[-1] + 1 + self.upto(0, 3)
            if nxt > 0x1F:
                break
            out.append(nxt)
        return out

    def root_bus(
        self, bus: int, depth: int, bridges: dict[int, _PendingBridge], pfs: list[_PendingPf]
    ) -> None:
        choices = ["endpoint", "root_port", "multifunction_root_port"]
        if not self.opts.multifunction:
            choices.remove("multifunction_root_port")
        if self.opts.rciep:
            choices.append("rciep")
        if self.opts.conventional:
            choices += ["pcie_pci_bridge", "conventional"]
        choices.append("rc_ec")
        slots = self.slots(self.upto(1, min(6, self.room())))
        if self.quirky():
            # An AMD host bridge at 00.0: the AMD southbridge ACS quirk then applies.
            vendor, device, cls = _AMD_HOST_BRIDGE
            self.take()
            self.functions.append(
                PciFunction(
                    PciAddress(self.domain, bus, slots[0], 0),
                    vendor=vendor,
                    device=device,
                    class_code=cls,
                    pcie_type=PcieType.RC_END,
                )
            )
            slots = [s + 1 for s in slots if s + 1 <= 0x1F]
        for slot in slots:
            if self.room() < 1:
                break
            what = self.pick(choices)
            if what in ("root_port", "multifunction_root_port") and self.can_bridge(
                depth, len(bridges)
            ):
                self.ports(bus, slot, depth, bridges, what == "multifunction_root_port")
            elif what == "pcie_pci_bridge" and self.can_bridge(depth, len(bridges)):
                self.bridge(
                    bridges,
                    PciAddress(self.domain, bus, slot, 0),
                    _Bus.PCI,
                    **self.ids(_NEUTRAL_PCIE_PCI, ()),
                    pcie_type=PcieType.PCI_BRIDGE,
                )
            elif what == "conventional":
                self.endpoint_slot(bus, slot, None, pfs)
            elif what == "rciep":
                self.endpoint_slot(bus, slot, PcieType.RC_END, pfs, root=True)
            elif what == "rc_ec":
                self.take()
                self.functions.append(
                    PciFunction(
                        PciAddress(self.domain, bus, slot, 0),
                        vendor=0x1B36,
                        device=0x0020,
                        class_code=0x080700,
                        pcie_type=PcieType.RC_EC,
                    )
                )
            else:
                self.endpoint_slot(bus, slot, PcieType.ENDPOINT, pfs, root=True)

    def ports(
        self,
        bus: int,
        slot: int,
        depth: int,
        bridges: dict[int, _PendingBridge],
        multifunction: bool,
    ) -> None:
        """A root port, or a multifunction slot of root ports (Intel PCH style)."""
        functions = [0]
        if multifunction:
            functions += sorted(self.draw(_function_sets(3)))
        ids = self.ids(_NEUTRAL_ROOT_PORTS, _QUIRK_ROOT_PORTS)
        for fn in functions:
            if not self.can_bridge(depth, len(bridges)):
                break
            mf = (fn == 0 and len(functions) > 1) or (fn > 0 and self.chance(70))
            self.bridge(
                bridges,
                PciAddress(self.domain, bus, slot, fn),
                _Bus.LINK,
                **ids,
                pcie_type=PcieType.ROOT_PORT,
                multifunction=mf,
                acs=self.acs(),
            )

    def ids(
        self, neutral: Sequence[tuple[int, int]], quirk: Sequence[tuple[int, int]]
    ) -> dict[str, int]:
        pool = quirk if quirk and self.quirky() else neutral
        vendor, device = self.pick(pool)
        return {"vendor": vendor, "device": device}

    def link_bus(
        self, bus: int, depth: int, bridges: dict[int, _PendingBridge], pfs: list[_PendingPf]
    ) -> None:
        choices = ["endpoint", "empty", "legacy_endpoint"]
        if self.opts.switches:
            choices.append("switch")
        if self.opts.conventional:
            choices += ["pcie_pci_bridge", "hidden_pci_bridge"]
        what = self.pick(choices)
        address = PciAddress(self.domain, bus, 0, 0)
        if what == "empty" or self.room() < 1:
            return
        if what == "switch" and self.can_bridge(depth):
            self.bridge(
                bridges,
                address,
                _Bus.SWITCH,
                **self.ids(_NEUTRAL_USP, ()),
                pcie_type=PcieType.UPSTREAM,
                acs=self.acs() if self.opts.full_acs or self.chance(30) else None,
            )
        elif what == "pcie_pci_bridge" and self.can_bridge(depth):
            self.bridge(
                bridges,
                address,
                _Bus.PCI,
                **self.ids(_NEUTRAL_PCIE_PCI, ()),
                pcie_type=PcieType.PCI_BRIDGE,
            )
        elif what == "hidden_pci_bridge" and self.can_bridge(depth):
            # A PCIe-to-PCI bridge without a PCIe capability
            # (R3.5 quirk_use_pcie_bridge_dma_alias).
            self.bridge(
                bridges,
                address,
                _Bus.PCI,
                **self.ids(_NEUTRAL_PCI_PCI, _QUIRK_HIDDEN_BRIDGES),
                pcie_type=None,
            )
        elif what == "legacy_endpoint":
            self.endpoint_slot(bus, 0, PcieType.LEG_END, pfs)
        else:
            self.endpoint_slot(bus, 0, PcieType.ENDPOINT, pfs)

    def switch_bus(self, bus: int, depth: int, bridges: dict[int, _PendingBridge]) -> None:
        ids = self.ids(_NEUTRAL_SWITCH, _QUIRK_DOWNSTREAM)
        for slot in self.slots(self.upto(1, 4)):
            if not self.can_bridge(depth, len(bridges)):
                break
            self.bridge(
                bridges,
                PciAddress(self.domain, bus, slot, 0),
                _Bus.LINK,
                **ids,
                pcie_type=PcieType.DOWNSTREAM,
                acs=self.acs(),
            )

    def pci_bus(self, bus: int, depth: int, bridges: dict[int, _PendingBridge]) -> None:
        first = self.upto(0, 4)
        for slot in self.slots(self.upto(1, 4), first):
            if self.room() < 1:
                break
            if self.chance(20) and self.can_bridge(depth, len(bridges)):
                # A conventional PCI-PCI bridge (no PCIe capability).
                self.bridge(
                    bridges,
                    PciAddress(self.domain, bus, slot, 0),
                    _Bus.PCI,
                    **self.ids(_NEUTRAL_PCI_PCI, ()),
                    pcie_type=None,
                )
            else:
                self.endpoint_slot(bus, slot, None, [])

    # --- devices ---
    def endpoint_slot(
        self,
        bus: int,
        slot: int,
        pcie_type: PcieType | None,
        pfs: list[_PendingPf],
        *,
        root: bool = False,
    ) -> None:
        """One device (1-8 functions) at ``slot``: neutral, ACS-quirk or alias-quirk ids."""
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
        per_fn: dict[int, int] = {}
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

        functions = [0]
        if opts.multifunction and self.room() > 1:
            if who in ("marvell", "ricoh") and self.chance(70):
                functions.append(1)
            elif self.chance(35):
                functions += sorted(self.draw(_function_sets(min(7, self.room() - 1))))
            functions = sorted(set(functions))[: self.room()]
        if who == "ricoh" and len(functions) > 1:
            per_fn[functions[-1]] = 0xE832
        for fn in functions:
            if self.room() < 1:
                break
            self.take()
            if fn == 0:
                # The kernel scans functions > 0 only when fn 0 says multifunction (R5.6);
                # fn 0 of a single-function device may still carry the bit.
                mf = len(functions) > 1 or (opts.multifunction and self.chance(5))
            else:
                mf = self.chance(60)  # the kernel forces it on anyway (R5.6)
            if pcie_type is not None and (mf or len(functions) > 1):
                fn_acs = self.acs()  # mixed: absent, partial or isolating per function
            elif pcie_type is not None and self.chance(10):
                fn_acs = self.draw(_ANY_ACS)  # ignored: single-function (R2.3 step 4)
            else:
                fn_acs = None
            extra: dict[str, Any] = {}
            if opts.aliases and self.chance(8):  # explicit alias devfns (R3.3)
                # 0-7: a function of its own slot; 8-263: any devfn of its bus
                extra["dma_alias_devfns"] = frozenset(
                    slot << 3 | k if k < 8 else k - 8 for k in self.draw(_ALIAS_KEYS)
                )
            self.functions.append(
                PciFunction(
                    PciAddress(self.domain, bus, slot, fn),
                    vendor=vendor,
                    device=per_fn.get(fn, device),
                    class_code=cls,
                    multifunction=mf,
                    pcie_type=pcie_type,
                    acs=fn_acs,
                    subsystem_vendor=sub[0],
                    subsystem_device=sub[1],
                    **extra,
                )
            )
            if (
                opts.sriov
                and pcie_type in (PcieType.ENDPOINT, PcieType.RC_END)
                and self.room() >= 1
                and self.chance(20)
            ):
                n = self.upto(1, min(4, self.room()))
                self.take(n)
                pfs.append(_PendingPf(len(self.functions) - 1, n))

    def place_vfs(self, bus: int, pfs: list[_PendingPf], bridge_devfns: set[int]) -> None:
        """Give each PF its VFs: RID = PF RID + offset + i * stride (SR-IOV 9.3.3).

        VFs sit after the PF in its slot, higher on the same bus, or on the
        next bus numbers (virtual buses), which are reserved before any
        bridge on this bus is numbered, so they lie in the parent bridge's
        range (``pci_iov_bus_range``).
        """
        if not pfs:
            return
        dom = self.domain
        taken = {
            f.address.rid
            for f in self.functions
            if f.address.domain == dom and f.address.bus == bus
        } | {bus << 8 | d for d in bridge_devfns}
        cursor = max(taken) + 1
        top_bus = bus
        for pending in pfs:
            pf = self.functions[pending.index]
            pf_rid = pf.address.rid
            n = pending.num_vfs
            can_spill = self.bus_room > 3 and bus + 3 <= 0xFF
            mode = self.upto(0, 2 if can_spill else 1)
            stride = self.pick((1, 2))
            if mode == 0:  # right after the PF (mlx5: PFs 00.0/00.1, VFs 00.2...)
                start = pf_rid + 1
            elif mode == 1:  # Intel NICs: offset 0x80
                start = bus << 8 | 0x80
            else:  # on the next bus (virtual bus), possibly running over to the one after
                start = (bus + 1) << 8 | self.pick((0x00, 0x80, 0xFE))
            rids = [start + i * stride for i in range(n)]
            if start <= pf_rid or any(r in taken or r >> 8 > bus + 2 for r in rids):
                stride = 1
                start = cursor
                rids = [start + i for i in range(n)]
            taken.update(rids)
            cursor = max(cursor, rids[-1] + 1)
            top_bus = max(top_bus, rids[-1] >> 8)
            cap = SriovCapability(
                total_vfs=n + self.upto(0, 3),
                num_vfs=n,
                offset=start - pf_rid,
                stride=stride,
                vf_device=pf.device + 1 if pf.device < 0xFFFF else pf.device,
            )
            self.functions[pending.index] = attrs.evolve(pf, sriov=cap)
            for rid in rids:
                mf = self.opts.multifunction and self.chance(10)
                self.functions.append(
                    PciFunction(
                        PciAddress.from_devfn(dom, rid >> 8, rid & 0xFF),
                        vendor=pf.vendor,
                        device=cap.vf_device,
                        class_code=pf.class_code,
                        multifunction=mf,
                        pcie_type=pf.pcie_type,
                        acs=self.acs() if mf else None,
                        physfn=pf.address,
                    )
                )
        if top_bus > bus:
            used = top_bus - bus
            self.next_bus += used
            self.bus_room -= used


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
    rarely apply; about one device in ten gets the ids of an ACS quirk
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
        domains: largest number of PCI domains (domain 0 always exists;
            others are drawn from 1, 2, 0xa and the VMD-style 0x10000, 0x10001).
        root_buses: largest number of root buses per domain.
        max_depth: largest number of bridges on a path from a root bus.
        switches: generate PCIe switches.
        conventional: generate conventional PCI: PCIe-to-PCI bridges,
            conventional devices and bridges, legacy endpoints.
        multifunction: generate multifunction devices and root-port slots,
            and the multifunction header bit on single-function devices and
            VFs. Off: every slot has only function 0, with the bit clear.
        sriov: generate SR-IOV PFs and VFs.
        aliases: generate DMA aliases: explicit ``dma_alias_devfns`` and the
            ids of alias quirks.
        rciep: generate root-complex integrated endpoints (``RC_END``).
        quirk_ids: sometimes use the ids of devices the kernel has quirks for.
        full_acs: every port and every function of a multifunction device
            gets an isolating ACS capability (:data:`FULL_ACS` or a superset).

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
