"""ACS: when does a PCI device isolate what is below it? (spec §2).

Models ``drivers/pci/pci.c``: ``pci_acs_flags_enabled`` (R2.2),
``pci_acs_enabled`` (R2.3) and ``pci_acs_path_enabled`` (R2.4), and the
``REQ_ACS_FLAGS`` set of ``drivers/iommu/iommu.c`` (R2.1). Device-specific
answers come from the quirk table (:mod:`iommugroups._kernel.quirks`,
R2.5-R2.6), consulted first, exactly as the kernel does.

Each decision is made once, here, and returned *with its provenance*
(:class:`AcsVerdict`: which step of R2.3 decided, the quirk, the register
bits, the facts that were unknown and whether they could change it), so
that explanations read the decision instead of working it out again.
"""

from __future__ import annotations

from typing import NamedTuple

import attrs

from .model import FULL_ACS, REQ_ACS_FLAGS, Acs, AcsFlags, PcieType, PciFunction, Topology
from .quirks import QuirkContext

__all__ = [
    "AcsPath",
    "AcsVerdict",
    "FULL_ACS",
    "GROUPING_FACTS",
    "REQ_ACS_FLAGS",
    "acs_path",
    "isolating_reading",
    "pci_acs_enabled",
    "pci_acs_flags_enabled",
    "pci_acs_path_enabled",
    "pci_acs_verdict",
    "pci_std_enable_acs",
    "with_acs_enabled",
]

#: Unknown facts of a function that can change an ACS verdict (and so its
#: group): its ACS capability, its PCIe capability, or its whole
#: configuration space (:attr:`PciFunction.unknown`).
GROUPING_FACTS = frozenset({"acs", "pcie", "config"})

_NEVER_ISOLATED = (PcieType.PCIE_BRIDGE, PcieType.PCI_BRIDGE, PcieType.RC_EC)
_PORTS = (PcieType.DOWNSTREAM, PcieType.ROOT_PORT)
_PEER_CAPABLE = (PcieType.ENDPOINT, PcieType.UPSTREAM, PcieType.LEG_END, PcieType.RC_END)
_EC = AcsFlags.EC.value


def pci_acs_flags_enabled(fn: PciFunction, flags: AcsFlags) -> bool:
    """R2.2 ``pci_acs_flags_enabled``: are the requested controls on?

    No ACS capability: false. Otherwise every requested bit the capability
    does not advertise is dropped (it counts as hard-wired on), except EC,
    which must really be on; what remains must be set in the control word.

    >>> from iommugroups import PciFunction, Acs, AcsFlags
    >>> rp = PciFunction("00:1c.0", acs=Acs(cap=AcsFlags.SV | AcsFlags.RR, ctrl=AcsFlags.SV))
    >>> pci_acs_flags_enabled(rp, AcsFlags.SV | AcsFlags.RR)
    False
    >>> pci_acs_flags_enabled(rp, AcsFlags.SV | AcsFlags.UF)  # UF not implemented
    True
    """
    acs = fn.acs
    if acs is None:
        return False
    # int arithmetic: enum.Flag operators are slow and this is a hot path
    required = flags.value & (acs.cap.value | _EC)
    return (acs.ctrl.value & required) == required


def pci_std_enable_acs(acs: Acs) -> AcsFlags:
    """R2.7 ``pci_std_enable_acs``: the control word once the kernel has enabled ACS.

    Every implemented SV, RR, CR and UF is turned on, the rest kept (TB, for
    external-facing or untrusted devices and ``noats``, is not modelled).

    >>> from iommugroups import Acs, AcsFlags
    >>> port = Acs(cap=AcsFlags.SV | AcsFlags.RR | AcsFlags.EC, ctrl=AcsFlags.EC)
    >>> pci_std_enable_acs(port).names()
    'SV|RR|EC'
    """
    return AcsFlags((acs.ctrl.value | (acs.cap.value & REQ_ACS_FLAGS.value)) & 0x7F)


def with_acs_enabled(topology: Topology) -> Topology:
    """R2.7: ``topology`` once the kernel has enabled every device's ACS controls.

    Each function with a known ACS capability gets the control word of
    :func:`pci_std_enable_acs` (a function whose ACS could not be read is
    left as it is). The same topology when nothing changes.
    """
    changed = False
    functions = []
    for fn in topology.functions:
        acs = fn.acs
        if acs is not None and "acs" not in fn.unknown:
            ctrl = pci_std_enable_acs(acs)
            if ctrl != acs.ctrl:
                fn = attrs.evolve(fn, acs=Acs(acs.cap, ctrl))
                changed = True
        functions.append(fn)
    return topology.replace(functions=functions) if changed else topology


class AcsVerdict(NamedTuple):
    """How ``pci_acs_enabled(fn, flags)`` decided (R2.3), with its provenance.

    Attributes:
        enabled: the verdict.
        decided_by: the step of R2.3 that gave it: ``"quirk"`` (step 1, a
            device-specific entry, R2.5/R2.6), ``"not-pcie"`` (step 2),
            ``"bridge-type"`` (step 3: PCIe-to-PCI, PCI-to-PCIe bridges and
            event collectors never isolate), ``"no-capability"`` or
            ``"registers"`` (step 3: a port or a multifunction device, whose
            ACS registers decide, R2.2) or ``"no-peer"`` (step 4).
        flags: the controls asked for.
        quirk: the name of the quirk entry, for ``"quirk"``.
        acs: the ACS capability the registers were read from (``None``: none).
        unknown: the facts of the device that could not be read and bear
            on ACS (a subset of ``{"acs", "pcie", "config"}``, see
            :attr:`PciFunction.unknown`).
        certain: no reading of those facts could change the verdict.
    """

    enabled: bool
    decided_by: str
    flags: AcsFlags
    quirk: str | None = None
    acs: Acs | None = None
    unknown: frozenset[str] = frozenset()
    certain: bool = True

    @property
    def rule(self) -> str:
        """The rule id that decided, R2.6 (quirk), R2.2 (registers) or R2.3."""
        return {"quirk": "R2.6", "registers": "R2.2"}.get(self.decided_by, "R2.3")

    @property
    def required(self) -> AcsFlags:
        """The requested controls the capability implements, and EC; these must be on."""
        if self.acs is None:
            return AcsFlags.NONE
        return AcsFlags(self.flags.value & (self.acs.cap.value | _EC))

    @property
    def missing(self) -> AcsFlags:
        """Required controls that are off (``"registers"`` verdicts only)."""
        if self.decided_by != "registers" or self.acs is None:
            return AcsFlags.NONE
        return AcsFlags(self.required.value & ~self.acs.ctrl.value)

    @property
    def unimplemented(self) -> AcsFlags:
        """Requested controls the capability does not implement, so hard-wired on (R2.2)."""
        if self.decided_by != "registers" or self.acs is None:
            return AcsFlags.NONE
        return AcsFlags(self.flags.value & ~self.acs.cap.value & ~_EC)


def _decide(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> AcsVerdict:
    """R2.3 step by step, for the facts as read."""
    if ctx.quirks.acs_quirk_may_match(fn.vendor):  # most vendors have none
        verdict, quirk = ctx.quirks.acs_decision(fn, flags, ctx)
        if verdict is not None:  # R2.3 step 1 / R2.5: first quirk answer >= 0 wins
            return AcsVerdict(verdict, "quirk", flags, quirk.name if quirk is not None else None)
    t = fn.pcie_type
    if t is None:  # R2.3 step 2
        return _shared(False, "not-pcie", flags)
    if t in _NEVER_ISOLATED:  # R2.3 step 3
        return _shared(False, "bridge-type", flags)
    if t in _PORTS or (t in _PEER_CAPABLE and ctx.topology.is_multifunction(fn)):
        if fn.acs is None:
            return _shared(False, "no-capability", flags)
        return AcsVerdict(pci_acs_flags_enabled(fn, flags), "registers", flags, acs=fn.acs)
    return _shared(True, "no-peer", flags)  # R2.3 step 4


#: The verdicts that depend on the flags asked for only, made once each (a
#: large machine would otherwise hold one per device, in ``ctx.acs_cache``).
_SHARED: dict[tuple[bool, str, int], AcsVerdict] = {}


def _shared(enabled: bool, decided_by: str, flags: AcsFlags) -> AcsVerdict:
    """``AcsVerdict(enabled, decided_by, flags)``, one object per value."""
    # (keyed by the flags' identity: an enum member hashes in Python code, and
    # each value of AcsFlags is one object, kept alive by the verdict)
    key = (enabled, decided_by, id(flags))
    verdict = _SHARED.get(key)
    if verdict is None:
        verdict = _SHARED[key] = AcsVerdict(enabled, decided_by, flags)
    return verdict


def pci_acs_verdict(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> AcsVerdict:
    """R2.3 ``pci_acs_enabled``, with how it decided.

    1. A device-specific quirk's answer is final (even for conventional PCI).
    2. Conventional PCI / PCI-X: false.
    3. PCIe-to-PCI, PCI-to-PCIe bridges and RC event collectors: false.
       Root and downstream ports: the ACS registers decide (no capability
       means not isolated). Multifunction endpoints, legacy endpoints, RCiEPs
       and upstream ports: the ACS registers decide.
    4. Everything else (single-function endpoints and upstream ports, ...)
       has no peer to reach: true.

    "Multifunction" is the kernel's ``pdev->multifunction`` (R5.6). A device
    whose ACS or PCIe capability could not be read is decided as read (the
    capability absent: the least isolating reading); ``certain`` says
    whether the most isolating reading (every such fact read as isolating
    as it can be) would give the same verdict.

    >>> from iommugroups import examples
    >>> from iommugroups import make_context
    >>> topo = examples.desktop()
    >>> v = pci_acs_verdict(topo.get("00:02.0"), REQ_ACS_FLAGS, make_context(topo))
    >>> v.enabled, v.decided_by, v.rule
    (False, 'no-capability', 'R2.3')
    """
    cache = ctx.acs_cache if flags == REQ_ACS_FLAGS else None
    if cache is not None:
        known: AcsVerdict | None = cache.get(fn.address)
        if known is not None:
            return known
    verdict = _decide(fn, flags, ctx)
    unknown = fn.unknown & GROUPING_FACTS if fn.unknown else None
    if unknown:
        alt = _decide(isolating_reading(fn, ctx.topology), flags, ctx)
        verdict = verdict._replace(unknown=unknown, certain=alt.enabled == verdict.enabled)
    if cache is not None:
        cache[fn.address] = verdict
    return verdict


def pci_acs_enabled(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool:
    """R2.3 ``pci_acs_enabled``: does ``fn`` provide the ACS ``flags``?

    The verdict of :func:`pci_acs_verdict` (for ``REQ_ACS_FLAGS`` made once
    per device and kept in ``ctx``).
    """
    if flags == REQ_ACS_FLAGS:
        return pci_acs_verdict(fn, flags, ctx).enabled
    return _decide(fn, flags, ctx).enabled


def isolating_reading(fn: PciFunction, topology: Topology) -> PciFunction:
    """``fn`` with every unknown ACS/PCIe fact read in the most isolating way.

    A function with an unknown ``"acs"``, ``"pcie"`` or ``"config"`` fact gets
    :data:`FULL_ACS`; one whose PCIe type is unknown (``"pcie"``/``"config"``,
    ``pcie_type`` ``None``) also gets the most isolating type for its place: a
    root port (on a root bus) or downstream port for a bridge, an RCiEP (on a
    root bus) or endpoint otherwise. A function with no such unknown is
    returned as it is. Quirks still apply first (R2.3 step 1).
    """
    unknown = fn.unknown & GROUPING_FACTS
    if not unknown:
        return fn
    if fn.pcie_type is None and unknown & {"pcie", "config"}:
        on_root = topology.is_root_bus(fn.address.domain, fn.address.bus)
        if fn.is_bridge:
            t = PcieType.ROOT_PORT if on_root else PcieType.DOWNSTREAM
        else:
            t = PcieType.RC_END if on_root else PcieType.ENDPOINT
        return attrs.evolve(fn, acs=FULL_ACS, pcie_type=t)
    return attrs.evolve(fn, acs=FULL_ACS)


class AcsPath(NamedTuple):
    """``pci_acs_path_enabled(start, NULL, REQ_ACS_FLAGS)`` with its provenance (R2.4).

    Attributes:
        isolated: every device from ``start`` to the root bus is ACS-enabled.
        blocker: the first device on the path that is not (``None`` when
            isolated).
        certain: no unknown fact could change ``isolated``: it is isolated,
            or some device on the path is certainly not ACS-enabled.
    """

    isolated: bool
    blocker: PciFunction | None
    certain: bool


def acs_path(start: PciFunction, ctx: QuirkContext) -> AcsPath:
    """R2.4 for ``REQ_ACS_FLAGS`` and no end device, with the device that blocks it.

    The walk is ``start`` and :meth:`Topology.bridges_above` ``start``.
    """
    path = (start, *ctx.topology.bridges_above(start))
    blocker: PciFunction | None = None
    certain = False
    for dev in path:
        v = pci_acs_verdict(dev, REQ_ACS_FLAGS, ctx)
        if not v.enabled:
            blocker = blocker or dev
            certain = certain or v.certain
    return AcsPath(blocker is None, blocker, blocker is None or certain)


def pci_acs_path_enabled(
    start: PciFunction,
    end: PciFunction | None,
    flags: AcsFlags,
    ctx: QuirkContext,
) -> bool:
    """R2.4 ``pci_acs_path_enabled``: is every device from ``start`` up ACS-enabled?

    Walks from ``start`` towards the root (:meth:`Topology.bridges_above`).
    Fails at the first device without the ACS ``flags``. On reaching the
    top of the path (a device on a root bus) it succeeds only if ``end`` is
    ``None``, even when that device *is* ``end`` (the kernel tests
    ``pci_is_root_bus`` before ``pdev == end``). Succeeds after checking
    ``end`` itself below the top.

    An SR-IOV virtual bus has no ``self`` bridge: it is stepped over to its
    parent; the kernel never walks such a path (R2.4 model note), so this is
    a documented choice, not observed behaviour.
    """
    cache = ctx.path_cache if end is None and flags == REQ_ACS_FLAGS else None
    if cache is not None:
        known = cache.get(start.address)
        if known is not None:
            return known
    # the bridges above start, nearest first (Topology.bridges_above, one at a time)
    nearest = ctx.topology._index.nearest_bridge
    walked: list[PciFunction] = []
    dev = start
    while True:  # (start's own answer is not known: looked up above)
        walked.append(dev)
        if not (
            pci_acs_verdict(dev, flags, ctx).enabled  # (pci_acs_enabled, one call less)
            if flags == REQ_ACS_FLAGS
            else pci_acs_enabled(dev, flags, ctx)
        ):
            result = False
            break
        above = nearest(dev.address.domain, dev.address.bus)
        if above is None:  # the top: pci_is_root_bus(pdev->bus)
            result = end is None
            break
        if end is not None and dev.address == end.address:
            result = True
            break
        dev = above
        if cache is not None:
            known = cache.get(dev.address)
            if known is not None:
                result = known
                break
    if cache is not None:
        # With end=None the answer for every device walked past is the same
        # as for start: each one's own path is the tail of start's path.
        for d in walked:
            cache[d.address] = result
    return result
