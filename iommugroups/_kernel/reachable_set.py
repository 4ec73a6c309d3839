"""The ACS reachable-set proposal: ``pci_device_group`` as Jason Gunthorpe's v3 series rewrites it.

What it models: "[PATCH v3 00/11] Fix incorrect iommu_groups with PCIe ACS"
(Jason Gunthorpe, 2025-09-05, ``<0-v3-8827cc7fc4e0+23f-pcie_switch_groups_jgg@nvidia.com>``,
based on v6.17-rc4; branch ``pcie_switch_groups`` of github.com/jgunthorpe/linux),
the latest version posted. It is **not in mainline** through 7.3 (its
``drivers/pci`` and ``drivers/iommu`` have no ``pci_bus_isolated``); it was
reported carried as a test branch (leon/linux-rdma ``rdma-next``, July 2025)
and in NVIDIA's kernels (NV-Kernels pull request 164, Ubuntu ``linux-nvidia``
6.14). Its rules are ``R6.1``-``R6.13`` of the rule table ("Out-of-tree: the
reachable-set proposal (v3)").

One function per kernel function of the series, each citing its patch mail:

* :func:`pci_bus_isolated` and :func:`pcie_switch_isolated` (patch 2,
  ``<2-v3-8827cc7fc4e0+23f-pcie_switch_groups_jgg@nvidia.com>``, as patch 11,
  ``<11-v3-...>``, amends them), with :func:`pci_has_mmio`: each *bus* is
  one of five :class:`BusIsolation` classes (R6.1-R6.5);
* :func:`pci_acs_enabled`: ``pci_acs_enabled()`` with the control mask of
  patch 10 (``<10-v3-...>``): the ACS Enhanced memory-target bits count only
  on a device that advertises ACS Enhanced (R6.12);
* :func:`pci_mfds_are_same_group` and :func:`pci_devs_are_same_group`
  (patch 6, ``<6-v3-...>``): a function *without* an ACS capability is taken
  to have no internal loopback (R6.6); VFs never pair (R6.8);
* :func:`pci_reachable_set` (patch 5, ``<5-v3-...>``): the connected set of
  a bus under that relation (R6.7);
* :func:`pci_get_function_group`, :func:`pci_hierarchy_group` and
  :func:`pci_device_group` (patch 3, ``<3-v3-...>``, as patch 6 amends it):
  the group flag ``BUS_DATA_PCI_NON_ISOLATED`` carries a non-isolated bus's
  group to everything below it (R6.9); a device whose upstream bridge (or
  real DMA device) has no group yet gets ``-EPROBE_DEFER`` (R6.10);
* :func:`pci_check_group_aliases` (patch 7, ``<7-v3-...>``): a log-only check
  that the DMA aliases of a device are in its group (R6.13).

Patch 9 (``<9-v3-...>``) makes ``enable_acs`` set the ACS Enhanced controls;
patches 1, 4 and 8 move or add definitions and change no group.

Where v3 differs from v2 (2025-07-09,
``<0-v2-4a9b9c983431+10e2-pcie_switch_groups_jgg@nvidia.com>``, 16 patches;
v1 was ``<0-v1-74184c5043c6+195-pcie_switch_groups_jgg@nvidia.com>`` of
2025-06-30), as its cover letter says and the patch text shows: v2's
``pci_mfds_are_same_group`` paired two functions when either lacked ACS
isolation, an absent capability included (as mainline does, R5.2), unless a
new ``pci_mfd_isolated`` quirk said otherwise, and it paired VFs as
functions; v3 drops those quirk patches, reads an absent capability as *no*
loopback (R6.6) and never pairs VFs (R6.8).

Facts the model does not keep
-----------------------------
The proposal reads three facts the model (:class:`~iommugroups.PciFunction`)
does not hold. Where the caller does not state them
(:class:`ProposalFacts`) the decision takes the reading that isolates
least, and records the fact as missing (the ``missing`` of each decision):

* **MMIO of a PCIe-to-PCI bridge** (``pci_has_mmio``: a memory BAR or an
  expansion ROM): not known means "has MMIO", so the bridge stays in the
  group of the devices behind it (R6.5), as mainline has it.
* **ACS Enhanced** (capability bit 7, and the memory-target controls of
  bits 8-11): the model keeps the seven ACS bits of R2.1. A request with
  ``DSP_MT_RR`` or ``USP_MT_RR`` (patch 11) on a port whose ACS registers
  decide, and whose standard controls are on, therefore counts as *not*
  enabled unless the caller states that no device advertises ACS Enhanced
  (``ProposalFacts(acs_enhanced=False)``; QEMU's ports do not: capability
  word 0x005f). Such a root port's bus is then non-isolated (R6.2), and such
  a switch's interior bus too (R6.4): everything below joins one group.
* **The Egress Control Vector Size** of a port that implements P2P Egress
  Control: ``pci_quirk_intel_spt_pch_acs`` masks a request with the whole
  capability word, so ``DSP_MT_RR`` survives when bit 9 (the vector size's
  bit 1) is set; for such a port that the model cannot tell, the request
  counts as not enabled. Without Egress Control the field is taken as zero.

A fact the input could not read (:attr:`PciFunction.unknown`: ``"acs"``,
``"pcie"``, ``"config"``) is read the same way: an ACS capability that could
not be read counts as present and not isolating (the reverse of mainline's
reading, because here an *absent* capability isolates).

Group state
-----------
:func:`pci_device_group` is one call: it reads which devices hold which
group, which groups carry ``BUS_DATA_PCI_NON_ISOLATED`` and which devices
are on a bus so far (a :class:`GroupState`), and returns an :class:`Outcome`
(the group found, or "a new one", and whether the group is marked
non-isolated), which the caller applies. :func:`reachable_set_groups` groups
a whole topology in the kernel's device-add order, as
:func:`~iommugroups.canonical_groups` does, with every enumerated device on
its bus when the IOMMU groups it (x86: the IOMMU comes up after PCI
enumeration; SR-IOV VFs are added later, by their PF's driver), or, with
``iommu_first``, only the devices added before it (arm64 since v6.15 with
the SMMU probed first). The proposal reads the bus at every call, so the
two can differ where mainline's groups do not.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple, Protocol

import attrs

from .acs import AcsVerdict, pci_acs_verdict
from .canonical import _device_order
from .fwspec import Refused, StreamTree, iommu_lookup
from .groups import Decision, Grouping, GroupTable
from .model import (
    REQ_ACS_FLAGS,
    AcsFlags,
    IommuKind,
    PciAddress,
    PcieType,
    PciFunction,
    Topology,
)
from .pci_device_group import GroupingEnv
from .quirks import Quirks, make_context
from .vmd import pci_real_dma_dev
from .x86 import x86_view

__all__ = [
    "BASE_KERNEL",
    "PATCHES",
    "REACHABLE_SET",
    "SERIES",
    "AcsAnswer",
    "BusIsolation",
    "GroupState",
    "Isolation",
    "Outcome",
    "ProposalFacts",
    "Reach",
    "ReachableDecisions",
    "ReachableEnv",
    "pci_acs_enabled",
    "pci_bus_isolated",
    "pci_check_group_aliases",
    "pci_device_group",
    "pci_devs_are_same_group",
    "pci_get_function_group",
    "pci_has_mmio",
    "pci_hierarchy_group",
    "pci_mfds_are_same_group",
    "pci_reachable_set",
    "pcie_switch_isolated",
    "reachable_set_groups",
]

#: The strategy's name, and :attr:`Grouping.strategy` of its groups.
REACHABLE_SET = "reachable-set"

#: The cover letter of the series modelled (v3, the latest posted).
SERIES = "<0-v3-8827cc7fc4e0+23f-pcie_switch_groups_jgg@nvidia.com>"

#: Patch number -> the Message-ID of its mail (v3, 2025-09-05).
PATCHES: dict[int, str] = {
    n: f"<{n}-v3-8827cc7fc4e0+23f-pcie_switch_groups_jgg@nvidia.com>" for n in range(1, 12)
}

#: The kernel the series is based on (v6.17-rc4): the x86 platform rules
#: (VMD, IOMMU-by-IOMMU ids) are taken as of that version.
BASE_KERNEL = "6.17"

#: ``PCI_ACS_ISOLATED`` of patch 1: ``REQ_ACS_FLAGS`` moved to ``pci_regs.h``.
PCI_ACS_ISOLATED = REQ_ACS_FLAGS


class BusIsolation(enum.Enum):
    """``enum pci_bus_isolation`` (patch 2): how isolated a bus is (R6.1).

    ``PCIE_SWITCH_DSP_NON_ISOLATED`` and ``PCI_BUS_NON_ISOLATED`` group the
    same way (the bus's devices share a group, the bridge above keeps its
    own), as do ``PCIE_NON_ISOLATED`` and ``PCI_BRIDGE_NON_ISOLATED`` (the
    bus's devices join the bridge's group).
    """

    #: No peer-to-peer on this bus.
    PCIE_ISOLATED = "PCIE_ISOLATED"
    #: A switch's interior bus: the downstream ports reach each other, not the upstream port.
    PCIE_SWITCH_DSP_NON_ISOLATED = "PCIE_SWITCH_DSP_NON_ISOLATED"
    #: The bus and its bridge's MMIO are reachable.
    PCIE_NON_ISOLATED = "PCIE_NON_ISOLATED"
    #: A conventional bus whose (PCIe) bridge is isolated from it.
    PCI_BUS_NON_ISOLATED = "PCI_BUS_NON_ISOLATED"
    #: A conventional bus the bridge is part of (its MMIO, its requester id as an alias).
    PCI_BRIDGE_NON_ISOLATED = "PCI_BRIDGE_NON_ISOLATED"

    @property
    def isolated(self) -> bool:
        """``PCIE_ISOLATED``."""
        return self is BusIsolation.PCIE_ISOLATED

    @property
    def with_bridge(self) -> bool:
        """The bus's devices join the group of the bridge above (``PCIE_NON_ISOLATED``,
        ``PCI_BRIDGE_NON_ISOLATED``)."""
        return self in (BusIsolation.PCIE_NON_ISOLATED, BusIsolation.PCI_BRIDGE_NON_ISOLATED)


def _addrs(value: Iterable[PciAddress | str]) -> frozenset[PciAddress]:
    return frozenset(v if isinstance(v, PciAddress) else PciAddress.parse(v) for v in value)


@attrs.frozen
class ProposalFacts:
    """Facts the proposal reads that the model does not keep, as the caller states them.

    Anything not stated is not known, and the decision that needs it takes
    the reading that isolates least (and says so in the decision's ``missing``).

    Attributes:
        acs_enhanced: ``False``: no device's ACS capability advertises ACS
            Enhanced (capability bit 7), so the memory-target controls drop
            out of every request (patch 10, R6.12). ``None`` (default) or
            ``True``: a request for them, on a device whose ACS registers
            decide, counts as not enabled (the model has no such controls).
        mmio: bridges known to have MMIO (a memory BAR or expansion ROM:
            ``pci_has_mmio``, R6.5).
        no_mmio: bridges known to have none.

    >>> ProposalFacts(acs_enhanced=False, no_mmio=["00:1e.0"]).text
    'no-acs-enhanced,no-mmio@0000:00:1e.0'
    """

    acs_enhanced: bool | None = None
    mmio: frozenset[PciAddress] = attrs.field(default=frozenset(), converter=_addrs)
    no_mmio: frozenset[PciAddress] = attrs.field(default=frozenset(), converter=_addrs)

    def __attrs_post_init__(self) -> None:
        both = self.mmio & self.no_mmio
        if both:
            raise ValueError(f"bridge {min(both)} is said to have MMIO and to have none")

    @property
    def text(self) -> str:
        """The facts as the ``what-if`` change writes them (``""``: none stated)."""
        parts: list[str] = []
        if self.acs_enhanced is not None:
            parts.append("acs-enhanced" if self.acs_enhanced else "no-acs-enhanced")
        parts += [f"mmio@{a}" for a in sorted(self.mmio)]
        parts += [f"no-mmio@{a}" for a in sorted(self.no_mmio)]
        return ",".join(parts)


#: Nothing stated: every fact the model lacks is read the way that isolates least.
NO_FACTS = ProposalFacts()


class Isolation(NamedTuple):
    """What :func:`pci_bus_isolated` answered for one bus, and why.

    Attributes:
        value: the class of the bus.
        rule: the rule that decided (``R6.1``-``R6.5``).
        domain, bus: the bus.
        bridge: ``bus->self`` (``None`` on a root bus).
        device: for a switch's interior bus (R6.4), the device on it that
            decided (``None`` when every downstream port isolates).
        why: in words.
        missing: facts that decided and are not known (the reading that
            isolates least was taken).
    """

    value: BusIsolation
    rule: str
    domain: int
    bus: int
    bridge: PciAddress | None
    device: PciAddress | None
    why: str
    missing: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        """``dddd:bb``."""
        return f"{self.domain:04x}:{self.bus:02x}"


class AcsAnswer(NamedTuple):
    """:func:`pci_acs_enabled` for one request, with how it was decided.

    Attributes:
        enabled: the verdict.
        verdict: the R2.3 verdict for the request's standard controls
            (quirk, registers, ...: :class:`~iommugroups.AcsVerdict`).
        memory_target: how the ACS Enhanced memory-target controls of the
            request were treated: ``""`` (none asked), ``"dropped"`` (not
            required: no ACS Enhanced, or a quirk masks them away),
            ``"ignored"`` (the quirk answers whatever is asked),
            ``"not-provided"`` (a quirk that grants only a fixed set without
            them), ``"moot"`` (the answer does not depend on them) or
            ``"unknown"`` (the model cannot tell: counted as not enabled).
        missing: facts that decided and are not known.
    """

    enabled: bool
    verdict: AcsVerdict
    memory_target: str = ""
    missing: frozenset[str] = frozenset()


class Reach(NamedTuple):
    """Whether two devices must share a group (:func:`pci_devs_are_same_group`), and why.

    Attributes:
        same: the verdict.
        rule: ``R6.6`` (functions of one device), ``R6.8`` (a VF) or ``R3.6``
            (DMA aliases).
        why: in words.
        missing: facts that made it ``True`` and are not known.
    """

    same: bool
    rule: str
    why: str
    missing: frozenset[str] = frozenset()


class GroupState(Protocol):
    """What :func:`pci_device_group` reads of the run: groups, their flag, the buses so far."""

    def group_of(self, address: PciAddress) -> int | None:
        """``iommu_group_get``: the device's group, ``None`` before it has one."""
        ...

    def non_isolated(self, group: int) -> bool:
        """Whether the group carries ``BUS_DATA_PCI_NON_ISOLATED``."""
        ...

    def flag_missing(self, group: int) -> frozenset[str]:
        """The facts not known that the decision marking ``group`` non-isolated rested on."""
        ...

    def bus_devices(self, domain: int, bus: int) -> Sequence[PciFunction]:
        """``bus->devices``: the devices added to the bus so far, in list order."""
        ...

    def present(self, fn: PciFunction) -> bool:
        """Whether ``fn`` has been added (is on its bus's list)."""
        ...

    @property
    def monotonic(self) -> bool:
        """Devices are only ever added (a bus's class may be kept per device count)."""
        ...


class ReachableEnv:
    """Per-topology working state of the proposal: the quirk context, facts, memos.

    Args:
        grouping: the topology's :class:`~iommugroups.GroupingEnv` (its ACS
            verdicts and DMA-alias masks, R2.3, R3.3, made once).
        facts: what the caller states about facts the model lacks.
    """

    __slots__ = (
        "_buses",
        "_loop",
        "_slots",
        "_switch",
        "explain",
        "facts",
        "grouping",
        "rid_bridges",
        "topology",
    )

    def __init__(
        self, grouping: GroupingEnv, facts: ProposalFacts | None = None, *, explain: bool = True
    ) -> None:
        self.grouping = grouping
        self.topology: Topology = grouping.topology
        self.facts = facts if facts is not None else NO_FACTS
        #: Work out what only an explanation needs (why a lone function's slot
        #: peers do not reach it); off for a run that records nothing.
        self.explain = explain
        self._buses: dict[tuple[int, int], Isolation] = {}
        self._switch: dict[tuple[int, int, int], Isolation] = {}
        self._slots: dict[tuple[int, int], dict[int, tuple[PciFunction, ...]]] = {}
        self._loop: dict[PciAddress, Reach | None] = {}
        #: Some bridge adds its own requester id as an alias (R3.4: a PCI-to-PCIe
        #: bridge, a conventional bridge), the only aliases patch 7 can check.
        self.rid_bridges = any(
            f.is_bridge and f.pcie_type in (None, PcieType.PCIE_BRIDGE)
            for f in self.topology.functions
        )

    def loopback(self, fn: PciFunction) -> Reach | None:
        """R6.6 for one function (made once): why it can reach the other functions of its
        device through internal loopback, ``None`` when it cannot."""
        a = fn.address
        if a in self._loop:
            return self._loop[a]
        out = _loopback(fn, self)
        self._loop[a] = out
        return out

    def slot(self, fn: PciFunction) -> tuple[PciFunction, ...]:
        """Every function of ``fn``'s slot on its bus (``PCI_SLOT(devfn)``), in devfn order."""
        a = fn.address
        key = (a.domain, a.bus)
        slots = self._slots.get(key)
        if slots is None:
            build: dict[int, list[PciFunction]] = {}
            for t in self.topology.devices_on_bus(a.domain, a.bus):
                build.setdefault(t.address.device, []).append(t)
            slots = {
                s: tuple(sorted(ts, key=lambda f: f.address.devfn)) for s, ts in build.items()
            }
            self._slots[key] = slots
        return slots.get(a.device, ())


def _missing_config(fn: PciFunction) -> bool:
    return "config" in fn.unknown


def _acs_cap(fn: PciFunction) -> bool | None:
    """``fn->acs_cap != 0``; ``None`` when the capability could not be read."""
    if fn.acs is not None:
        return True
    if fn.unknown & {"acs", "config"}:
        return None
    return False


def _pcie_unknown(fn: PciFunction) -> frozenset[str]:
    """``{"pcie"}`` when ``fn`` reads as conventional PCI only because its PCIe capability
    could not be read."""
    if fn.pcie_type is None and fn.unknown & {"pcie", "config"}:
        return frozenset({"pcie"})
    return frozenset()


# ============================================================================
# ACS, as patches 10 and 11 ask it (R6.12)
# ============================================================================

#: Kernel ACS quirks that mask the request before comparing it, so the
#: memory-target controls drop out: ``pci_quirk_amd_sb_acs`` keeps
#: RR|CR|EC|DT only.
_QUIRKS_MASKING = frozenset({"pci_quirk_amd_sb_acs"})
#: Quirk checks that answer without looking at the request
#: (``pcie_acs_overrides`` of the out-of-tree override patch).
_QUIRKS_IGNORING = frozenset({"pcie_acs_overrides"})
#: ``pci_quirk_intel_spt_pch_acs``: masks with its whole capability word.
_SPT_QUIRK = "pci_quirk_intel_spt_pch_acs"


def pci_acs_enabled(
    fn: PciFunction,
    flags: AcsFlags,
    env: ReachableEnv,
    *,
    dsp_mt_rr: bool = False,
    usp_mt_rr: bool = False,
) -> AcsAnswer:
    """``pci_acs_enabled(fn, flags [| PCI_ACS_DSP_MT_RR] [| PCI_ACS_USP_MT_RR])`` (R6.12).

    R2.3 decides the standard controls (a quirk first, then the device's
    kind, then its ACS registers). The ACS Enhanced memory-target controls
    of patch 8, which patch 11 asks for, are then:

    * through a quirk: dropped by ``pci_quirk_amd_sb_acs`` (it masks the
      request), ignored by a check that does not read the request, dropped
      by ``pci_quirk_intel_spt_pch_acs`` for a port without Egress Control
      (the capability word it masks with has no vector size) and not known
      for one with it; every other quirk grants only a fixed set of
      controls without them, so the answer is "not enabled";
    * through the ACS registers (patch 10, ``pci_acs_ctrl_mask``): required
      only when the capability advertises ACS Enhanced, which the model
      does not keep (see the module docstring and :class:`ProposalFacts`);
    * otherwise (no capability, conventional PCI, a bridge type, a device
      with no peer): the answer does not depend on them.

    Patch 10 also stops requiring Egress Control when the capability lacks
    it; grouping never asks for it, so :data:`REQ_ACS_FLAGS` verdicts are
    unchanged (R2.2).

    >>> from iommugroups import Acs, AcsFlags, PcieType, PciFunction, Topology, make_context
    >>> from iommugroups import REQ_ACS_FLAGS, GroupingEnv
    >>> rp = PciFunction("00:01.0", header_type=1, secondary_bus=1, pcie_type=PcieType.ROOT_PORT,
    ...                  acs=Acs(cap=REQ_ACS_FLAGS, ctrl=REQ_ACS_FLAGS))
    >>> env = ReachableEnv(GroupingEnv(make_context(Topology([rp]))))
    >>> a = pci_acs_enabled(rp, REQ_ACS_FLAGS, env, dsp_mt_rr=True)
    >>> a.enabled, a.memory_target, sorted(a.missing)
    (False, 'unknown', ['acs-enhanced'])
    >>> known = ReachableEnv(env.grouping, ProposalFacts(acs_enhanced=False))
    >>> pci_acs_enabled(rp, REQ_ACS_FLAGS, known, dsp_mt_rr=True).enabled
    True
    """
    verdict = pci_acs_verdict(fn, flags, env.grouping.ctx)
    missing = verdict.unknown if not verdict.certain else frozenset()
    if not (dsp_mt_rr or usp_mt_rr):
        return AcsAnswer(verdict.enabled, verdict, "", missing)
    if verdict.decided_by == "quirk":
        name = verdict.quirk or ""
        if name in _QUIRKS_MASKING:
            return AcsAnswer(verdict.enabled, verdict, "dropped", missing)
        if name in _QUIRKS_IGNORING:
            return AcsAnswer(verdict.enabled, verdict, "ignored", missing)
        if name == _SPT_QUIRK and fn.acs is not None:
            if AcsFlags.EC not in fn.acs.cap:
                return AcsAnswer(verdict.enabled, verdict, "dropped", missing)
            if not verdict.enabled:
                return AcsAnswer(False, verdict, "moot", missing)
            return AcsAnswer(False, verdict, "unknown", missing | {"acs-egress-vector-size"})
        _, quirk = env.grouping.ctx.quirks.acs_decision(fn, flags, env.grouping.ctx)
        if quirk is not None and (quirk.origin == "kernel" or quirk.is_declarative):
            return AcsAnswer(False, verdict, "not-provided", missing)
        # a user check: what it answers for controls it cannot be asked about is not known
        return AcsAnswer(False, verdict, "unknown", missing | {"user-quirk"})
    if verdict.decided_by == "registers":
        if not verdict.enabled:
            return AcsAnswer(False, verdict, "moot", missing)
        if env.facts.acs_enhanced is False:
            return AcsAnswer(True, verdict, "dropped", missing)
        return AcsAnswer(False, verdict, "unknown", missing | {"acs-enhanced"})
    return AcsAnswer(verdict.enabled, verdict, "moot", missing)


def _acs_words(flags: AcsFlags, dsp: bool, usp: bool) -> str:
    parts = [f.name for f in AcsFlags if f.value and f in flags and f.name]
    if dsp:
        parts.append("DSP_MT_RR")
    if usp:
        parts.append("USP_MT_RR")
    return "|".join(parts) if parts else "-"


def _acs_reason(answer: AcsAnswer) -> str:
    v = answer.verdict
    if answer.memory_target == "unknown" and v.enabled:
        if "acs-enhanced" in answer.missing:
            return (
                "its standard controls are on, but whether it advertises ACS Enhanced (and so "
                "needs the memory-target controls) is not in the model: counted as not enabled"
            )
        if "acs-egress-vector-size" in answer.missing:
            return (
                f"quirk {v.quirk} masks the request with the capability's Egress Control "
                "Vector Size, which is not in the model: counted as not enabled"
            )
        return f"user quirk {v.quirk} cannot be asked about the memory-target controls"
    if answer.memory_target == "not-provided":
        return f"quirk {v.quirk} grants only controls without the memory-target ones"
    if v.decided_by == "quirk":
        return f"quirk {v.quirk}"
    if v.decided_by == "registers":
        if v.enabled:
            return "its ACS controls are on"
        return f"its ACS controls {v.missing.names()} are off"
    if v.decided_by == "no-capability":
        return "it has no ACS capability"
    if v.decided_by == "not-pcie":
        return "it is conventional PCI"
    if v.decided_by == "bridge-type":
        return "its kind never isolates"
    return "it has no peer"


# ============================================================================
# pci_bus_isolated (R6.1-R6.5)
# ============================================================================


def pci_has_mmio(bridge: PciFunction, facts: ProposalFacts) -> tuple[bool, bool]:
    """``pci_has_mmio`` (patch 2): does ``bridge`` have a memory BAR or an expansion ROM?

    The model has no BARs: the answer is the caller's (:class:`ProposalFacts`),
    else "yes" (the reading that isolates least, R6.5). Returns
    ``(has_mmio, known)``.
    """
    if bridge.address in facts.no_mmio:
        return False, True
    if bridge.address in facts.mmio:
        return True, True
    return True, False


def pcie_switch_isolated(domain: int, bus: int, env: ReachableEnv, state: GroupState) -> Isolation:
    """``pcie_switch_isolated`` (patch 2, as patch 11 amends it): a switch's interior bus (R6.4).

    The devices on the bus, in list order: the first that is not a PCIe
    downstream port, or has a DMA alias, makes the bus ``PCIE_NON_ISOLATED``
    ("don't understand what this is, be conservative"); the first
    downstream port without ``PCI_ACS_ISOLATED | DSP_MT_RR | USP_MT_RR``
    (:func:`pci_acs_enabled`) makes it ``PCIE_SWITCH_DSP_NON_ISOLATED`` if
    the port has ``USP_MT_RR`` (the upstream port's MMIO is out of reach),
    else ``PCIE_NON_ISOLATED``. So a port *without* an ACS capability, which
    has no control on, makes the upstream port part of the group too.
    Otherwise the bus is ``PCIE_ISOLATED``. Only the devices already added
    count (``bus->devices``).
    """
    bridge = env.topology.bus_self(domain, bus)
    devices = state.bus_devices(domain, bus)
    key = (domain, bus, len(devices))
    if state.monotonic:
        known = env._switch.get(key)
        if known is not None:
            return known
    out = _switch(domain, bus, bridge, devices, env)
    if state.monotonic:
        env._switch[key] = out
    return out


def _switch(
    domain: int,
    bus: int,
    bridge: PciFunction | None,
    devices: Sequence[PciFunction],
    env: ReachableEnv,
) -> Isolation:
    up = bridge.address if bridge is not None else None
    for pdev in devices:
        a = pdev.address
        if pdev.pcie_type is None:
            why = f"{a} on the switch's interior bus is not PCIe: not understood, be conservative"
            return Isolation(
                BusIsolation.PCIE_NON_ISOLATED,
                "R6.4",
                domain,
                bus,
                up,
                a,
                why,
                _pcie_unknown(pdev),
            )
        if pdev.pcie_type is not PcieType.DOWNSTREAM:
            why = (
                f"{a} on the switch's interior bus is not a downstream port: not understood, "
                "be conservative"
            )
            return Isolation(BusIsolation.PCIE_NON_ISOLATED, "R6.4", domain, bus, up, a, why)
        if env.grouping.alias_mask(pdev):
            why = f"downstream port {a} has a DMA alias: not understood, be conservative"
            return Isolation(BusIsolation.PCIE_NON_ISOLATED, "R6.4", domain, bus, up, a, why)
        full = pci_acs_enabled(pdev, PCI_ACS_ISOLATED, env, dsp_mt_rr=True, usp_mt_rr=True)
        if full.enabled:
            continue
        usp = pci_acs_enabled(pdev, AcsFlags.NONE, env, usp_mt_rr=True)
        missing = full.missing | usp.missing
        asked = _acs_words(PCI_ACS_ISOLATED, True, True)
        if not usp.enabled:
            why = (
                f"downstream port {a} lacks {asked} ({_acs_reason(full)}) and USP_MT_RR "
                f"({_acs_reason(usp)}): the upstream port's MMIO is reachable too"
            )
            return Isolation(
                BusIsolation.PCIE_NON_ISOLATED, "R6.4", domain, bus, up, a, why, missing
            )
        why = (
            f"downstream port {a} lacks {asked} ({_acs_reason(full)}): the downstream ports "
            "reach each other, not the upstream port"
        )
        return Isolation(
            BusIsolation.PCIE_SWITCH_DSP_NON_ISOLATED, "R6.4", domain, bus, up, a, why, missing
        )
    why = "every downstream port on the interior bus has SV|RR|CR|UF|DSP_MT_RR|USP_MT_RR"
    return Isolation(BusIsolation.PCIE_ISOLATED, "R6.4", domain, bus, up, None, why)


def pci_bus_isolated(domain: int, bus: int, env: ReachableEnv, state: GroupState) -> Isolation:
    """``pci_bus_isolated(bus)`` (patch 2, as patch 11 amends it): the class of one bus.

    * R6.1: a root bus is ``PCIE_ISOLATED`` ("historically ... optimistic").
      A bus without ``bus->self`` (an SR-IOV virtual bus: callers pass the
      PF's bus) is ``PCI_BRIDGE_NON_ISOLATED`` after a ``WARN_ON``.
    * R6.5: below a conventional bridge, ``PCI_BRIDGE_NON_ISOLATED``, unless
      the bridge has ``PCI_DEV_FLAG_PCIE_BRIDGE_ALIAS`` (R3.5), which makes
      it a PCIe-to-PCI bridge; below a PCIe-to-PCI bridge,
      ``PCI_BRIDGE_NON_ISOLATED`` if it has MMIO (:func:`pci_has_mmio`),
      else ``PCI_BUS_NON_ISOLATED``; below a PCI-to-PCIe bridge or any other
      kind, ``PCI_BRIDGE_NON_ISOLATED``.
    * R6.2: below a root port, ``PCIE_NON_ISOLATED`` only if the port *has*
      an ACS capability without ``PCI_ACS_ISOLATED | DSP_MT_RR``
      (:func:`pci_acs_enabled`); a root port without one counts as
      isolated ("like MFDs assume if there is no ACS cap then there is no
      loopback"), the reverse of R2.3.
    * R6.3: below a downstream port, ``PCIE_ISOLATED`` (a point-to-point link).
    * R6.4: below an upstream port, :func:`pcie_switch_isolated`.
    """
    key = (domain, bus)
    known = env._buses.get(key)
    if known is not None:
        return known
    topo = env.topology
    if topo.is_root_bus(domain, bus):
        why = "a root bus: the root complex is taken to send everything to the IOMMU"
        out = Isolation(BusIsolation.PCIE_ISOLATED, "R6.1", domain, bus, None, None, why)
        env._buses[key] = out
        return out
    bridge = topo.bus_self(domain, bus)
    if bridge is None:
        why = "a bus without a bridge (an SR-IOV virtual bus): WARN_ON, not isolated"
        out = Isolation(BusIsolation.PCI_BRIDGE_NON_ISOLATED, "R6.1", domain, bus, None, None, why)
        env._buses[key] = out
        return out
    b = bridge.address
    kind = bridge.pcie_type
    alias_bridge = False
    if kind is None:
        if env.grouping.ctx.quirks.pcie_bridge_alias(bridge, topo):
            kind, alias_bridge = PcieType.PCI_BRIDGE, True
        else:
            why = f"below the conventional PCI bridge {b}: any device can claim any transaction"
            out = Isolation(
                BusIsolation.PCI_BRIDGE_NON_ISOLATED,
                "R6.5",
                domain,
                bus,
                b,
                None,
                why,
                _pcie_unknown(bridge),
            )
            env._buses[key] = out
            return out
    if kind is PcieType.UPSTREAM:
        return pcie_switch_isolated(domain, bus, env, state)  # depends on what is on the bus
    if kind is PcieType.ROOT_PORT:
        out = _root_port(domain, bus, bridge, env)
    elif kind is PcieType.DOWNSTREAM:
        why = f"below the downstream port {b}: a point-to-point link"
        out = Isolation(BusIsolation.PCIE_ISOLATED, "R6.3", domain, bus, b, None, why)
    elif kind is PcieType.PCI_BRIDGE:
        has, known_mmio = pci_has_mmio(bridge, env.facts)
        what = (
            "the conventional bridge with PCIE_BRIDGE_ALIAS"
            if alias_bridge
            else "the PCIe-to-PCI bridge"
        )
        if has:
            said = "it has MMIO"
            if not known_mmio:
                said = "whether it has MMIO is not known: taken as yes"
            why = f"a conventional bus below {what} {b}; {said}, not isolated from the bus"
            missing = frozenset() if known_mmio else frozenset({"mmio"})
            value = BusIsolation.PCI_BRIDGE_NON_ISOLATED
        else:
            why = f"a conventional bus below {what} {b}, which has no MMIO: isolated from it"
            missing = frozenset()
            value = BusIsolation.PCI_BUS_NON_ISOLATED
        out = Isolation(value, "R6.5", domain, bus, b, None, why, missing)
    else:
        what = "PCI-to-PCIe bridge" if kind is PcieType.PCIE_BRIDGE else f"{kind.name} bridge"
        why = f"below the {what} {b}: a conventional bus lies above, not isolated"
        out = Isolation(BusIsolation.PCI_BRIDGE_NON_ISOLATED, "R6.5", domain, bus, b, None, why)
    env._buses[key] = out
    return out


def _root_port(domain: int, bus: int, port: PciFunction, env: ReachableEnv) -> Isolation:
    b = port.address
    cap = _acs_cap(port)
    if cap is False:
        why = (
            f"below the root port {b}, which has no ACS capability: taken as no internal "
            "loopback, isolated"
        )
        return Isolation(BusIsolation.PCIE_ISOLATED, "R6.2", domain, bus, b, None, why)
    if cap is None:
        why = (
            f"below the root port {b}, whose ACS capability could not be read: taken as "
            "present and not isolating"
        )
        return Isolation(
            BusIsolation.PCIE_NON_ISOLATED, "R6.2", domain, bus, b, None, why, frozenset({"acs"})
        )
    answer = pci_acs_enabled(port, PCI_ACS_ISOLATED, env, dsp_mt_rr=True)
    asked = _acs_words(PCI_ACS_ISOLATED, True, False)
    if answer.enabled:
        why = f"below the root port {b}, which has {asked}"
        return Isolation(BusIsolation.PCIE_ISOLATED, "R6.2", domain, bus, b, None, why)
    why = (
        f"below the root port {b}, which has an ACS capability without {asked} "
        f"({_acs_reason(answer)}): its MMIO is reachable"
    )
    return Isolation(
        BusIsolation.PCIE_NON_ISOLATED, "R6.2", domain, bus, b, None, why, answer.missing
    )


# ============================================================================
# Functions and aliases on one bus (R6.6-R6.8)
# ============================================================================


def pci_mfds_are_same_group(a: PciFunction, b: PciFunction, env: ReachableEnv) -> Reach:
    """``pci_mfds_are_same_group`` (patch 6): must two functions of one device share a group?

    * R6.8: never for an SR-IOV VF ("we don't support VFs that also have ACS
      that are set to non-isolating").
    * Not for different slots (``PCI_SLOT(devfn)``, even with ARI, R5.4).
    * Always when one is marked multifunction and the other is not ("don't
      understand what is happening, be conservative"); never when neither
      is.
    * R6.6: otherwise iff either function *has* an ACS capability without
      ``PCI_ACS_ISOLATED`` (R2.3, quirks first). A function without one is
      taken to have no loopback (PCIe r6 sec 6.12.1.2), the reverse of
      R5.2.

    ``multifunction`` is the kernel's flag (R5.6). A flag or a capability
    that could not be read counts as the reading that pairs them.
    """
    if a.is_virtfn or b.is_virtfn:
        vf = a if a.is_virtfn else b
        return Reach(False, "R6.8", f"{vf.address} is an SR-IOV VF")
    if a.address.device != b.address.device:
        return _DIFFERENT_SLOTS
    topo = env.topology
    unsure = a if a.address.function == 0 and "config" in a.unknown else None
    if unsure is None and b.address.function == 0 and "config" in b.unknown:
        unsure = b
    if unsure is not None:
        why = f"whether {unsure.address} is multifunction is not known: taken as different"
        return Reach(True, "R6.6", why, frozenset({"config"}))
    mfa = topo.is_multifunction(a)
    if mfa != topo.is_multifunction(b):
        return _MF_DIFFERS
    if not mfa:
        return _NOT_MF
    la, lb = env.loopback(a), env.loopback(b)
    if la is not None and not la.missing:
        return la
    if lb is not None and not lb.missing:
        return lb
    return la or lb or _NO_LOOPBACK


_DIFFERENT_SLOTS = Reach(False, "R6.6", "different slots")
_MF_DIFFERS = Reach(True, "R6.6", "one is marked multifunction and the other is not")
_NOT_MF = Reach(False, "R6.6", "not a multifunction device")
_NO_LOOPBACK = Reach(False, "R6.6", "each has no ACS capability (no loopback) or an isolating one")


def _loopback(f: PciFunction, env: ReachableEnv) -> Reach | None:
    """R6.6 for one function: why it can loop back to the others of its device (``None``: it
    cannot)."""
    cap = _acs_cap(f)
    if cap is None:
        why = f"{f.address}'s ACS capability could not be read: taken as not isolating"
        return Reach(True, "R6.6", why, frozenset({"acs"}))
    if not cap:
        return None
    v = pci_acs_verdict(f, PCI_ACS_ISOLATED, env.grouping.ctx)
    if v.enabled:
        return None
    reason = _acs_reason(AcsAnswer(False, v))
    why = f"{f.address} has an ACS capability without SV|RR|CR|UF ({reason})"
    return Reach(True, "R6.6", why, v.unknown if not v.certain else frozenset())


def pci_devs_are_same_group(a: PciFunction, b: PciFunction, env: ReachableEnv) -> Reach:
    """``pci_devs_are_same_group`` (patch 6): DMA aliases (R3.6), else
    :func:`pci_mfds_are_same_group`."""
    if b in env.grouping.alias_candidates(a):
        return Reach(True, "R3.6", "DMA aliases of each other")
    return pci_mfds_are_same_group(a, b, env)


def pci_reachable_set(
    start: PciFunction, env: ReachableEnv, state: GroupState
) -> tuple[tuple[PciFunction, ...], tuple[tuple[PciFunction, PciFunction, Reach], ...]]:
    """``pci_reachable_set(start, &devfns, pci_devs_are_same_group)`` (patch 5), R6.7.

    The devices on ``start``'s bus (those added so far) connected to it by
    :func:`pci_devs_are_same_group`, ``start`` included, in devfn order, and
    the edges that connected them ``(from, to, why)``. The relation is only
    ever true between DMA aliases (R3.6) and functions of one slot, so only
    those pairs are asked; the set is the same as the kernel's pairwise loop.
    """
    seen = {start.address: start}
    edges: list[tuple[PciFunction, PciFunction, Reach]] = []
    todo = [start]
    while todo:
        a = todo.pop()
        cand = [*env.slot(a), *env.grouping.alias_candidates(a)]
        for b in cand:
            if b.address in seen or not state.present(b):
                continue
            r = pci_devs_are_same_group(a, b, env)
            if r.same:
                seen[b.address] = b
                edges.append((a, b, r))
                todo.append(b)
    members = tuple(sorted(seen.values(), key=lambda f: f.address.devfn))
    return members, tuple(edges)


# ============================================================================
# pci_device_group (R6.7, R6.9-R6.11)
# ============================================================================

#: The ways :func:`pci_device_group` can end (:attr:`Outcome.how`), with the rule.
HOW = {
    "real-dma": "R6.11",  # joined the group of its real DMA device (VMD)
    "xlate-root": "R6.11",  # PCI_DEV_FLAGS_BRIDGE_XLATE_ROOT: a new group
    "hierarchy": "R6.9",  # the bridge above carries NON_ISOLATED: joined its group
    "reachable": "R6.7",  # joined the first existing group of its reachable set
    "reachable-new": "R6.7",  # a reachable set without a group: a new NON_ISOLATED group
    "new": "R6.1",  # nothing reaches it: a new group (the rule is the bus's)
    "bridge": "R6.9",  # PCIE_/PCI_BRIDGE_NON_ISOLATED: joined the bridge's group
    "bus-peer": "R6.9",  # DSP_/PCI_BUS_NON_ISOLATED: joined a group on its bus
    "bus-new": "R6.9",  # ... none yet: a new NON_ISOLATED group
    "deferred": "R6.10",  # -EPROBE_DEFER: probing out of order
    "error": "R6.10",  # -EINVAL: the patch has no group to give
}


@attrs.frozen
class Outcome:
    """What one :func:`pci_device_group` call decided, for the caller to apply.

    Attributes:
        device: the device grouped.
        how: one of :data:`HOW`.
        rule: the rule that decided (the bus's class rule for ``"new"``,
            ``"bridge"``, ``"bus-peer"`` and ``"bus-new"``).
        rules: every rule the decision rests on, in order.
        found: the existing group it joins (``None``: a new group, or none
            for ``"deferred"``/``"error"``).
        via: the device whose group it joins (or that it waits for).
        non_isolated: the group carries ``BUS_DATA_PCI_NON_ISOLATED`` after
            the call (a new group made so, or the flag set on the one found).
        isolation: the class of the device's bus, where it was asked.
        reachable: for ``"reachable"``/``"reachable-new"``/``"new"``, the
            reachable set (:func:`pci_reachable_set`), in devfn order.
        edges: the pairs that made the set, ``(from, to, why)``; for
            ``"new"``, the functions of its slot judged not to reach it.
        missing: facts the decision rests on that are not known (the
            reading that isolates least was taken).
        warning: a ``WARN_ON`` the call hits (the group found lacked the
            flag, and gets it), else ``""``.
        message: for ``"deferred"``/``"error"``, the kernel's message.
    """

    device: PciAddress
    how: str
    rule: str
    rules: tuple[str, ...]
    found: int | None = None
    via: PciAddress | None = None
    non_isolated: bool = False
    isolation: Isolation | None = None
    reachable: tuple[PciAddress, ...] = ()
    edges: tuple[tuple[PciAddress, PciAddress, Reach], ...] = ()
    missing: frozenset[str] = frozenset()
    warning: str = ""
    message: str = ""

    @property
    def refused(self) -> bool:
        """No group: ``-EPROBE_DEFER`` or ``-EINVAL`` (R6.10)."""
        return self.how in ("deferred", "error")

    @property
    def certain(self) -> bool:
        """No fact the decision rests on is missing."""
        return not self.missing

    def text(self, group: int | None = None) -> str:
        """The decision in words (``group``: the id it ended in, where known)."""
        g = f" {group}" if group is not None else ""
        bus = ""
        if self.isolation is not None:
            iso = self.isolation
            bus = f"bus {iso.name} is {iso.value.value} ({iso.rule}: {iso.why})"
        via = str(self.via) if self.via is not None else ""
        how = self.how
        if how == "real-dma":
            return f"its DMA is done by {via}: joined its group{g} (R6.11)"
        if how == "xlate-root":
            return f"a bridge flagged BRIDGE_XLATE_ROOT: a new group{g} (R6.11)"
        if how == "hierarchy":
            return (
                f"the bridge above, {via}, is in a group that carries NON_ISOLATED: "
                f"joined that group{g} (R6.9)"
            )
        if how in ("deferred", "error"):
            return f"{self.message} (R6.10)"
        reach = ""
        if self.edges:
            reach = "; ".join(f"{a} reaches {b} ({r.rule}: {r.why})" for a, b, r in self.edges)
        if how == "reachable":
            return f"{bus}; {reach}: joined the group{g} of {via}, marked NON_ISOLATED (R6.7)"
        if how == "reachable-new":
            return f"{bus}; {reach}: none has a group yet: a new group{g}, NON_ISOLATED (R6.7)"
        if how == "new":
            apart = "; ".join(f"not with {b} ({r.rule}: {r.why})" for _a, b, r in self.edges)
            apart = f"; {apart}" if apart else ""
            return f"{bus}{apart}; nothing on its bus reaches it (R6.7): a new group{g}"
        if how == "bridge":
            return f"{bus}: joined the group{g} of the bridge {via}, marked NON_ISOLATED (R6.9)"
        if how == "bus-peer":
            return f"{bus}: joined the group{g} of {via} on the same bus (R6.9)"
        return f"{bus}: nothing on the bus has a group yet: a new group{g}, NON_ISOLATED (R6.9)"


def _physfn(fn: PciFunction, env: ReachableEnv) -> PciFunction:
    """``pci_physfn``: the PF of a VF, else the device itself (R6.8)."""
    if fn.physfn is None:
        return fn
    return env.topology.get(fn.physfn)


def pci_hierarchy_group(fn: PciFunction, env: ReachableEnv, state: GroupState) -> Outcome | None:
    """``pci_hierarchy_group`` (patch 3): does the hierarchy above force a group? (R6.9, R6.10)

    From the bus of ``pci_physfn(fn)`` (R6.8): on a root bus, no. Otherwise
    the bridge above must already have a group, else ``-EPROBE_DEFER``
    ("PCI device is probing out of order", R6.10): the design requires
    parents to be grouped first. If that group carries
    ``BUS_DATA_PCI_NON_ISOLATED``, join it (R6.9); else no.
    """
    a = fn.address
    phys = _physfn(fn, env)
    d, bus = phys.address.domain, phys.address.bus
    if env.topology.is_root_bus(d, bus):
        return None
    above = env.topology.bus_self(d, bus)
    rules = ("R6.8", "R6.9") if phys is not fn else ("R6.9",)
    if above is None:  # pci_physfn's bus always has one; the WARN_ON of the patch
        msg = f"{phys.address}'s bus has no bridge above it: WARN_ON, -EINVAL"
        return Outcome(a, "error", "R6.10", (*rules, "R6.10"), message=msg)
    g = state.group_of(above.address)
    if g is None:
        msg = (
            "PCI device is probing out of order, upstream bridge device of "
            f"{above.address} is not probed yet"
        )
        return Outcome(a, "deferred", "R6.10", (*rules, "R6.10"), via=above.address, message=msg)
    if state.non_isolated(g):
        missing = state.flag_missing(g)
        return Outcome(a, "hierarchy", "R6.9", rules, g, above.address, True, missing=missing)
    return None


def pci_get_function_group(
    fn: PciFunction, env: ReachableEnv, state: GroupState, isolation: Isolation
) -> Outcome | None:
    """``pci_get_function_group`` (patch 3 as patch 6 rewrites it): aliases and MFDs (R6.7).

    The reachable set of ``fn`` (:func:`pci_reachable_set`). Only ``fn``:
    ``None`` (the caller allocates a plain group). Otherwise the first
    member in devfn order that has a group gives it (``pci_get_slot``); the
    group must carry ``BUS_DATA_PCI_NON_ISOLATED``, and gets it after a
    ``WARN_ON`` if it does not. None has one: a new group with the flag, so
    that everything below a bridge function of the set joins it too.
    """
    members, edges = pci_reachable_set(fn, env, state)
    reach = tuple(m.address for m in members)
    edge_addrs = tuple((x.address, y.address, r) for x, y, r in edges)
    missing = isolation.missing.union(*(r.missing for _x, _y, r in edges))
    if len(members) == 1:
        return None
    rules = (isolation.rule, *dict.fromkeys(r.rule for _x, _y, r in edges), "R6.7")
    for m in members:
        if m is fn:
            continue
        g = state.group_of(m.address)
        if g is None:
            continue
        warning = ""
        if not state.non_isolated(g):
            warning = (
                f"WARN_ON: group {g} of {m.address}, found through the reachable set of "
                f"{fn.address}, lacked BUS_DATA_PCI_NON_ISOLATED; set now"
            )
        return Outcome(
            fn.address,
            "reachable",
            "R6.7",
            rules,
            g,
            m.address,
            True,
            isolation,
            reach,
            edge_addrs,
            missing,
            warning,
        )
    return Outcome(
        fn.address,
        "reachable-new",
        "R6.7",
        rules,
        None,
        None,
        True,
        isolation,
        reach,
        edge_addrs,
        missing,
    )


def pci_device_group(fn: PciFunction, state: GroupState, env: ReachableEnv) -> Outcome:
    """``pci_device_group(dev)`` as the series rewrites it (patch 3, as patch 6 amends it).

    1. R6.11: if ``pci_real_dma_dev(fn)`` is another device (a VMD endpoint,
       R3.1), join its group; if it has none yet, ``-EPROBE_DEFER`` (R6.10).
    2. R6.11: a bridge flagged ``PCI_DEV_FLAGS_BRIDGE_XLATE_ROOT`` gets a new
       group.
    3. :func:`pci_hierarchy_group` (R6.9, R6.10).
    4. By the class of the bus of ``pci_physfn(fn)`` (:func:`pci_bus_isolated`):

       * ``PCIE_ISOLATED``: :func:`pci_get_function_group`, else a new group;
       * ``PCI_BRIDGE_NON_ISOLATED``, ``PCIE_NON_ISOLATED``: join the group of
         the bridge above (``pdev->bus->self``) and mark it non-isolated (R6.9);
       * ``PCI_BUS_NON_ISOLATED``, ``PCIE_SWITCH_DSP_NON_ISOLATED``: join the
         first group held by a device on the same bus, in device order
         (``for_each_pci_dev``), marking it; none: a new non-isolated group
         (R6.9).

    The call only reads ``state``; the caller applies the :class:`Outcome`
    (allocates the group, sets the flag).
    """
    a = fn.address
    topo = env.topology
    real = pci_real_dma_dev(fn, topo)
    if real is not fn:
        g = state.group_of(real.address)
        if g is None:
            msg = (
                f"PCI device is probing out of order, real device of {real.address} is not "
                "probed yet"
            )
            return Outcome(
                a, "deferred", "R6.10", ("R6.11", "R6.10"), via=real.address, message=msg
            )
        return Outcome(a, "real-dma", "R6.11", ("R6.11",), g, real.address, state.non_isolated(g))
    if env.grouping.ctx.quirks.bridge_xlate_root(fn):
        return Outcome(a, "xlate-root", "R6.11", ("R6.11",))
    up = pci_hierarchy_group(fn, env, state)
    if up is not None:
        return up
    phys = _physfn(fn, env)
    iso = pci_bus_isolated(phys.address.domain, phys.address.bus, env, state)
    vf = ("R6.8",) if phys is not fn else ()
    if iso.value.isolated:
        found = pci_get_function_group(fn, env, state, iso)
        if found is not None:
            return attrs.evolve(found, rules=(*vf, *found.rules))
        # Alone: the functions of its slot were judged not to reach it (R6.6, R6.8).
        peers = [b for b in env.slot(fn) if b is not fn and state.present(b)]
        rule = iso.rule
        if peers:
            rule = "R6.8" if fn.is_virtfn or peers[0].is_virtfn else "R6.6"
        apart = tuple(
            (a, b.address, pci_mfds_are_same_group(fn, b, env)) for b in peers if env.explain
        )
        rules = (*vf, iso.rule, *(() if rule == iso.rule else (rule,)), "R6.7")
        return Outcome(
            a,
            "new",
            rule,
            rules,
            isolation=iso,
            reachable=(a,),
            edges=apart,
            missing=iso.missing,
        )
    rules = (*vf, iso.rule, "R6.9")
    if iso.value.with_bridge:
        above = topo.bus_self(a.domain, a.bus)  # pdev->bus->self, not the PF's
        if above is None:
            msg = (
                f"bus {iso.name} is {iso.value.value} but {a}'s own bus has no bridge "
                "(the patch dereferences pdev->bus->self)"
            )
            return Outcome(a, "error", "R6.10", (*rules, "R6.10"), isolation=iso, message=msg)
        g = state.group_of(above.address)
        if g is None:
            msg = f"WARN_ON: the bridge {above.address} above has no group, -EINVAL"
            return Outcome(a, "error", "R6.10", (*rules, "R6.10"), isolation=iso, message=msg)
        return Outcome(
            a, "bridge", iso.rule, rules, g, above.address, True, iso, missing=iso.missing
        )
    for peer in state.bus_devices(a.domain, a.bus):
        g = state.group_of(peer.address)
        if g is None:
            continue
        warning = ""
        if not state.non_isolated(g):
            warning = (
                f"WARN_ON: group {g} of {peer.address} on bus {iso.name} lacked "
                "BUS_DATA_PCI_NON_ISOLATED; set now"
            )
        return Outcome(
            a,
            "bus-peer",
            iso.rule,
            rules,
            g,
            peer.address,
            True,
            iso,
            missing=iso.missing,
            warning=warning,
        )
    return Outcome(a, "bus-new", iso.rule, rules, None, None, True, iso, missing=iso.missing)


def pci_check_group_aliases(
    fn: PciFunction, group: int, state: GroupState, env: ReachableEnv
) -> tuple[str, ...]:
    """``pci_check_group_aliases`` (patch 7): ``fn``'s DMA aliases must be in its group (R6.13).

    After the group is chosen, ``pci_for_each_dma_alias`` (R3) is walked;
    for each alias whose bus number is the reporting device's own bus, that
    device's group (if it has one) must be ``group``, else the kernel logs
    "During group construction alias processing needed dev ... to have the
    same group". For an alias on another bus (a PCIe-to-PCI bridge's
    ``(secondary, 00.0)``), the patch's loop compares the alias's bus with
    the bridge's own bus again, which never matches, so nothing is checked.
    Log only: no group changes. Returns the messages.
    """
    out: list[str] = []
    # pci_for_each_dma_alias (R3.1-R3.4), with the bridges' part memoised per bus
    real = pci_real_dma_dev(fn, env.topology)
    ra = real.address
    walk = [(real, ra.rid)]
    walk += ((real, ra.bus << 8 | d) for d in sorted(env.grouping.alias_mask(real)))
    if env.rid_bridges:  # only a bridge's own requester id can name a device on its bus
        walk += env.grouping.bus_aliases(ra.domain, ra.bus)
    for who, rid in walk:
        if who.address.bus != rid >> 8:
            continue
        g = state.group_of(who.address)
        if g is not None and g != group:
            out.append(
                "During group construction alias processing needed dev "
                f"{who.address} alias {rid:x} to have the same group but {group} != {g}"
            )
    return tuple(out)


# ============================================================================
# A whole topology
# ============================================================================


class ReachableDecisions(Mapping[str, Decision]):
    """The decisions of one :func:`reachable_set_groups` run, by device, in add order.

    Each is a :class:`~iommugroups.Decision` whose ``how`` is one of
    :data:`HOW` (or ``"generic"``, ``"stream-sharing"``, ``"ungrouped"`` as
    :func:`~iommugroups.canonical_groups` records them), ``rule`` an ``RS``
    rule, ``via`` the device whose group it joined, ``pdev`` the bridge
    above whose bus decided, and ``why`` the decision in words.
    :meth:`outcome` gives the whole :class:`Outcome`.

    Attributes:
        messages: the kernel messages of the run, in order: deferrals,
            ``WARN_ON``\\ s and the alias check of patch 7 (R6.13), each
            ``"<device>: <text>"``.
    """

    def __init__(self) -> None:
        # name -> a Decision, or (group, outcome) to make one from when it is read
        self._decisions: dict[str, Decision | tuple[int, Outcome]] = {}
        self._outcomes: dict[str, Outcome] = {}
        self.messages: list[str] = []

    def add(self, name: str, decision: Decision, outcome: Outcome | None = None) -> None:
        """Record one device's decision (and the :class:`Outcome` behind it)."""
        self._decisions[name] = decision
        if outcome is not None:
            self._outcomes[name] = outcome

    def add_outcome(self, name: str, group: int, outcome: Outcome) -> None:
        """Record that ``name`` joined ``group`` as ``outcome`` says (the
        :class:`~iommugroups.Decision` is made when read)."""
        self._decisions[name] = (group, outcome)
        self._outcomes[name] = outcome

    def outcome(self, name: str) -> Outcome | None:
        """The :class:`Outcome` of a PCI device's ``pci_device_group`` call, if it had one."""
        return self._outcomes.get(name)

    def __getitem__(self, name: str) -> Decision:
        made = self._decisions[name]
        if isinstance(made, Decision):
            return made
        decision = _decision(name, made[0], made[1])
        self._decisions[name] = decision
        return decision

    def __iter__(self) -> Iterator[str]:
        return iter(self._decisions)

    def __len__(self) -> int:
        return len(self._decisions)


class _RunState:
    """:class:`GroupState` of :func:`reachable_set_groups`: every enumerated device is on
    its bus, an SR-IOV VF from its place in the order on (``iommu_first``: every device
    from its place on)."""

    __slots__ = (
        "flags",
        "groups",
        "iommu_first",
        "missing",
        "now",
        "position",
        "topology",
        "vf_buses",
    )

    monotonic = True

    def __init__(
        self, topology: Topology, position: Mapping[PciAddress, int], iommu_first: bool
    ) -> None:
        self.topology = topology
        self.iommu_first = iommu_first
        self.groups: dict[PciAddress, int] = {}
        self.flags: dict[int, bool] = {}
        self.missing: dict[int, frozenset[str]] = {}
        self.position = position
        self.now = 0
        self.vf_buses = {
            (f.address.domain, f.address.bus) for f in topology.functions if f.is_virtfn
        }

    def group_of(self, address: PciAddress) -> int | None:
        return self.groups.get(address)

    def non_isolated(self, group: int) -> bool:
        return self.flags.get(group, False)

    def flag_missing(self, group: int) -> frozenset[str]:
        return self.missing.get(group, frozenset())

    def mark(self, group: int, outcome: Outcome, new: bool) -> None:
        """Apply ``outcome``'s flag to ``group`` (a ``new`` one starts without it)."""
        if new:
            self.flags[group] = outcome.non_isolated
            self.missing[group] = outcome.missing if outcome.non_isolated else frozenset()
        elif outcome.non_isolated and not self.flags.get(group, False):
            self.flags[group] = True
            self.missing[group] = outcome.missing

    def present(self, fn: PciFunction) -> bool:
        if not fn.is_virtfn and not self.iommu_first:
            return True
        return self.position.get(fn.address, 1 << 62) <= self.now

    def bus_devices(self, domain: int, bus: int) -> Sequence[PciFunction]:
        devices = self.topology.devices_on_bus(domain, bus)
        if not self.iommu_first and (domain, bus) not in self.vf_buses:
            return devices
        here = [f for f in devices if self.present(f)]  # bus->devices: in the order added
        return sorted(here, key=lambda f: self.position.get(f.address, 0))


def _decision(name: str, group: int, outcome: Outcome) -> Decision:
    iso = outcome.isolation
    pdev = str(iso.bridge) if iso is not None and iso.bridge is not None else None
    via = str(outcome.via) if outcome.via is not None else None
    return Decision(name, group, outcome.how, outcome.rule, via, pdev, why=outcome.text(group))


def reachable_set_groups(
    topology: Topology,
    *,
    quirks: Quirks | None = None,
    order: Iterable[str | PciAddress] | None = None,
    record: bool = False,
    facts: ProposalFacts | None = None,
    iommu_first: bool = False,
) -> Grouping:
    """Group a whole topology as a kernel carrying the reachable-set series (v3) would.

    Devices are grouped as :func:`~iommugroups.canonical_groups` groups them
    (platform devices first, then PCI functions in the kernel's device-add
    order, parents first, with the x86 platform rules of v6.17, the
    series' base, and the arm64 stream-id rules), each PCI function by the
    proposal's ``pci_device_group`` (R6.1-R6.13). When the IOMMU groups a device,
    every enumerated device is on its bus (an SR-IOV VF from its place in
    the order on): the IOMMU comes up after PCI enumeration, as on x86.
    With ``iommu_first`` the IOMMU is there first and groups each device as
    it is added (arm64 since v6.15 when the SMMU probes before the host
    bridge): only the devices added before it are on its bus. The proposal
    reads the bus at every call (R6.4, R6.7), so the two can differ: a device
    whose alias or non-isolating sibling comes later on its bus keeps a
    group of its own.

    A device asked before the bridge above it (an explicit ``order``) gets
    ``-EPROBE_DEFER`` (R6.10) and no group: it is in
    :attr:`~iommugroups.Grouping.ungrouped` with the kernel's message.

    Args:
        topology: the machine.
        quirks: the quirk tables (default: the kernel's).
        order: an explicit device-add order, as for ``canonical_groups``.
        record: keep every device's decision in
            :attr:`~iommugroups.Grouping.decisions` (a ``ReachableDecisions``:
            each a :class:`~iommugroups.Decision` with an R6 rule, its
            ``outcome`` and the run's kernel ``messages``).
        facts: what is known beyond the model (:class:`ProposalFacts`;
            default: nothing, every missing fact read the way that isolates
            least).
        iommu_first: each device is grouped as it is added, with only the
            devices added before it on its bus (see above).

    >>> from iommugroups import examples
    >>> g = reachable_set_groups(examples.desktop())
    >>> g.same_group("00:02.0", "02:00.0")  # R6.2: no ACS capability, no loopback
    False
    >>> g.same_group("00:1c.0", "00:1c.1")  # R6.6: functions without ACS split
    False
    >>> g.same_group("06:00.0", "08:00.0")  # R6.4: a downstream port without ACS
    True
    >>> d = reachable_set_groups(examples.desktop(), record=True).decisions["0000:02:00.0"]
    >>> d.how, d.rule, d.pdev
    ('new', 'R6.2', '0000:00:02.0')
    """
    ctx = make_context(topology, quirks)
    env = ReachableEnv(GroupingEnv(ctx), facts, explain=record)
    view = x86_view(topology, BASE_KERNEL)
    devices = _device_order(topology, order, view.order)
    position = {d.address: i for i, d in enumerate(devices) if isinstance(d, PciFunction)}
    state = _RunState(topology, position, iommu_first)
    table = GroupTable()
    kinds = {i.name: i.kind for i in topology.iommus}
    streams = StreamTree()
    recorded = ReachableDecisions() if record else None

    def ungrouped(name: str, why: str, rule: str, outcome: Outcome | None = None) -> None:
        table.ungrouped[name] = why
        if recorded is not None:
            recorded.add(name, Decision(name, None, "ungrouped", rule, why=why), outcome)

    for i, dev in enumerate(devices):
        state.now = i
        name = str(dev.address) if isinstance(dev, PciFunction) else dev.name
        found_spec = iommu_lookup(dev, name, ctx, view.untranslated, kinds, streams)
        if isinstance(found_spec, Refused):
            ungrouped(name, found_spec.why, found_spec.rule)
            continue
        spec, bus, kind, v2 = found_spec
        group: int | None = None
        shared: str | None = None  # SMMUv2: the device whose entry gave the group (R1.7)
        if v2 is not None:  # R1.7
            group, shared = v2.group, (v2.via or "") if v2.group is not None else None
        outcome: Outcome | None = None
        if group is None and isinstance(dev, PciFunction):
            outcome = pci_device_group(dev, state, env)
            if outcome.refused:
                if recorded is not None:
                    recorded.messages.append(f"{name}: {outcome.message}")
                ungrouped(name, outcome.text(), outcome.rule, outcome)
                continue
            if outcome.warning and recorded is not None:
                recorded.messages.append(f"{name}: {outcome.warning}")
            group = outcome.found
        new = group is None
        if group is None:
            group = table.new_group()
        if outcome is not None:
            state.mark(group, outcome, new)
        if kind is IommuKind.SMMU_V2 and shared is None:  # made for it: remembered (R1.7)
            streams.remember(spec, group)
        if isinstance(dev, PciFunction):
            table.add(name, group, bus, dev.address)
            state.groups[dev.address] = group
            if recorded is not None:
                recorded.messages.extend(
                    f"{name}: {m}" for m in pci_check_group_aliases(dev, group, state, env)
                )
        else:
            table.add(name, group, bus)
        if recorded is not None:
            if outcome is not None:
                recorded.add_outcome(name, group, outcome)
            elif shared is not None:
                decision = Decision(
                    name, group, "stream-sharing", "R1.7", shared or None, iommu=spec.iommu
                )
                recorded.add(name, decision)
            else:
                recorded.add(name, Decision(name, group, "generic", "R1.5"))
        streams.add(spec, name)
    return table.snapshot(REACHABLE_SET, recorded)
