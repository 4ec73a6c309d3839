"""``explain``: why is a device in its IOMMU group, as data first and text second.

Theory of operation
-------------------
The group is the *canonical* one (:func:`~iommugroups.canonical_groups`): every
device grouped at device add, parents first. To say why a device is where it
is, the canonical grouping is replayed in its own log order: each device gets
the :func:`~iommugroups.pci_device_group` decision (with its trace) against
the groups of the devices added *before* it, which is exactly what the kernel
saw then (groups only grow, R1.3). A device that joined an existing group
did so through a *via* device (the bridge above it, its alias bridge, a
sibling function...); following the via links from a device leads to the
device that created the group (R4.4). These links form a tree per group, and
two members of one group are connected through it.

Every rule application is a :class:`Reason`: a rule id, the device the rule
looked at, a sentence, and ``facts``, a string mapping a program can check
without parsing the sentence. The ``kind`` says which facts there are.

Reason kinds
------------
*Links* (one rule that puts two devices in one group; facts ``from`` and
``to``, addresses):

* ``upstream-bridge`` (R4.2): ``to`` is the bridge directly above ``from``
  (SR-IOV virtual buses skipped) and its path to the root is not
  ACS-isolated (R2.4). Facts ``bridge_type``, ``blocker`` (the first device on
  the bridge's path to the root that is not ACS-enabled, R2.3) and
  ``blocker_acs`` (why, in words).
* ``bridge-alias`` (R3.4, R4.1): ``from``'s DMA carries the requester id of
  bridge ``to`` (``alias_rid``, ``bb:dd.f``), so it joins the bridge's group.
* ``dma-alias-peer`` (R3.6, R5.1): ``from`` and ``to`` are on one bus and one's
  devfn is in the other's DMA-alias mask.
* ``function-peer`` (R5.2): ``from`` and ``to`` are functions of one slot,
  ``from`` is multifunction, and neither is ACS-enabled (R2.3).
* ``stream-sharing`` (R1.7): behind one SMMUv2 they share a stream id
  (facts ``iommu``, ``streams``).

*Group ends*: ``new-group`` (R4.4: nothing found, a new group; facts
``stop``, ``walked``), ``generic`` (R1.5: a platform device),
``ungrouped`` (no group at all), ``isolated-stop`` / ``root-bus`` (R4.2: where
the upward walk of a device that did not join the bridge above it ended).

*ACS* (``acs``, R2.2/R2.3/R2.6): one per device on a path, how
``pci_acs_enabled(dev, SV|RR|CR|UF)`` decided: facts ``decided_by``
(``quirk``, ``not-pcie``, ``bridge-type``, ``no-capability``, ``registers``,
``no-peer``), ``enabled``, ``acs_cap``/``acs_ctrl`` (flag names, ``absent``
or ``unknown``), ``missing`` (required bits the capability advertises but
the control word lacks), ``unimplemented`` (required bits the capability
does not advertise: hard-wired on, R2.2), ``quirk``, ``certain``; for a bridge
also ``path_isolated`` and ``path_blocker`` (R2.4).

*Unknown facts* (``unknown``): a device whose ACS or PCIe capability could
not be read (:attr:`PciFunction.unknown`). The model takes such a fact as
absent (the least isolating reading); ``matters`` says whether the other
extreme (a fully enabled ACS capability, the most isolating port type) would
change an ACS verdict, and so possibly the group. Explanations say this
instead of guessing; :attr:`Explanation.certain` is false when one matters.

*Pairs in one group*: :attr:`PairExplanation.chain` is the path of links
between them through the join tree, and ``cause`` sums it up:
``common-bridge`` (both below one bridge that does not isolate them, R4.2
or R3.4; fact ``bridge``), ``upstream-bridge`` (one is the other's upstream
bridge; facts ``bridge``, ``device``), ``function-peer`` (functions of one
non-isolated multifunction slot, R5.2), ``dma-alias`` (R3.6),
``stream-sharing`` (R1.7) or ``chain`` (a mix; the links say it all).

*Pairs in different groups*: :attr:`PairExplanation.separation` has, per
device, where its walk ends (``isolated-by``: the first bridge whose path to
the root is ACS-isolated, R4.2, fact ``bridge``; or ``root-bus-top``: it
reached the root bus, fact ``top``), then what separates them:
``isolated-bridge`` (that ACS-isolated bridge is above one of them and not
the other; facts ``bridge``, ``below``, ``other``), ``separate-tops`` (their
walks end at two different devices on one bus, below one isolated bridge or
on one root bus, that no alias or function link joins; facts ``top_a``,
``top_b``, ``bus``, ``bridge``, ``same_slot``, ``dma_aliases``,
``function_peers``, ``linked``), ``different-root-bus`` (different host
bridges), ``no-group`` or ``platform``.

DMA reachability
----------------
:attr:`PairExplanation.a_can_reach_b` answers: can a request from ``a``
addressed to ``b`` reach ``b`` *without* passing the IOMMU? (``True``: ACS
does not force it upstream, so the IOMMU cannot isolate them; ``False``: it
is redirected upstream to the root complex and translated there; ``None``:
unknown.) The rule, from ACS semantics (ACS is an egress control on the
requester's side, spec §2 and §6 "S-reachable-set"):

1. Find the lowest bus both devices are on or below (SR-IOV virtual buses
   count as their parent bus) and, on it, ``x_a``/``x_b``: ``a``/``b`` or the
   bridge above them there. The request turns towards ``b`` there, entering
   through ``x_a``: only ``x_a`` can redirect it. Lower bridges only forward
   it upstream (its address is not below them).
2. One device is a bridge on the other's path: ``None`` (a request to or from
   a bridge on one's own path is not a peer-to-peer request ACS governs;
   not modelled).
3. The bus is a conventional PCI bus (behind a conventional or PCIe-to-PCI
   bridge): ``True``. A shared bus: every device sees every transaction, and
   conventional PCI has no ACS (R2.3 step 2).
4. ``x_a`` and ``x_b`` are functions of one device (the same slot, or any two
   functions on the link below a root/downstream port: one device, ARI and
   SR-IOV VFs included, R5.4): ``False`` iff ``x_a`` *redirects* peer
   requests, else ``True``. Redirects means the kernel's own
   ``pci_acs_enabled(x_a, RR)`` (R2.2/R2.3: ``RR`` set in the control word,
   or not implemented and so hard-wired; a quirk's word is final, R2.6),
   except that its "single function: no peer" shortcut (R2.3 step 4) is not
   taken, since a peer function exists (a PF and its VFs are not marked
   multifunction): then ``x_a``'s ACS registers decide, as for a
   multifunction device (no capability: it does not redirect).
5. The bus is a switch's internal bus: ``False`` iff the downstream port
   ``x_a`` redirects (as in 4); else ``True``: the switch routes the request
   to ``x_b`` directly. (Legacy grouping puts two such ports' subtrees in
   different groups, §6: the answer can be ``True`` for a pair in different
   groups; that is the known hole, not a bug here.)
6. The bus is a root bus, or there is none (different host bridges):
   ``False`` if ``x_a``'s registers or a quirk say it redirects; otherwise
   ``None``: whether a root complex routes peer-to-peer between its ports
   without translating it is implementation-specific (the PCIe
   specification leaves it open), and the kernel's "a single-function
   integrated device has no peer" (R2.3 step 4) is an assumption, not a
   register.
7. Whenever the deciding fact is unknown (``x_a``'s ACS or PCIe capability,
   or the PCIe type of the bridge that makes the bus), ``None``. Non-PCI
   devices, and devices no IOMMU translates: ``None``.

Egress Control (EC) and Upstream Forwarding are not considered: EC can only
block more, so a ``True`` may be ``False`` on hardware that programs EC.

JSON (schema ``"iommugroups.explain/1"``)
-----------------------------------------
A reason is ``{"kind", "rule", "device", "text", "facts": {str: str}}``.
:meth:`Explanation.to_json` and :meth:`PairExplanation.to_json` document
their keys. Consumers should key on ``kind`` and ``facts``, never on
``text``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

import attrs

from .._errors import InvalidAddress, UnknownDevice
from .._kernel.acs import REQ_ACS_FLAGS, pci_acs_enabled, pci_acs_path_enabled
from .._kernel.canonical import canonical_groups
from .._kernel.fwspec import StreamTree, pci_fwspec, platform_fwspec
from .._kernel.groups import Grouping, LogLine
from .._kernel.model import (
    Acs,
    AcsFlags,
    FwSpec,
    IommuKind,
    PciAddress,
    PcieType,
    PciFunction,
    PlatformDevice,
    Topology,
)
from .._kernel.pci_device_group import GroupDecision, GroupingEnv, Step, pci_device_group
from .._kernel.quirks import Quirks, make_context

__all__ = [
    "EXPLAIN_SCHEMA",
    "LINK_KINDS",
    "Explainer",
    "Explanation",
    "Facts",
    "PairExplanation",
    "Reason",
    "explain",
    "explain_pair",
    "render_explanation",
    "render_pair",
]

#: The ``schema`` value of every ``to_json`` of this module.
EXPLAIN_SCHEMA = "iommugroups.explain/1"

#: Unknown facts that can change grouping (``"config"``: nothing could be read).
_GROUPING_FACTS = frozenset({"acs", "pcie", "config"})

_FULL = Acs(cap=REQ_ACS_FLAGS, ctrl=REQ_ACS_FLAGS)
_BRIDGE_TYPES = (PcieType.PCIE_BRIDGE, PcieType.PCI_BRIDGE, PcieType.RC_EC)
_PORT_TYPES = (PcieType.DOWNSTREAM, PcieType.ROOT_PORT)
_MF_TYPES = (PcieType.ENDPOINT, PcieType.UPSTREAM, PcieType.LEG_END, PcieType.RC_END)
_LINK_TYPES = (PcieType.ROOT_PORT, PcieType.DOWNSTREAM, PcieType.PCIE_BRIDGE)

_TYPE_WORDS = {
    PcieType.ENDPOINT: "PCIe endpoint",
    PcieType.LEG_END: "legacy PCIe endpoint",
    PcieType.ROOT_PORT: "root port",
    PcieType.UPSTREAM: "switch upstream port",
    PcieType.DOWNSTREAM: "switch downstream port",
    PcieType.PCI_BRIDGE: "PCIe-to-PCI bridge",
    PcieType.PCIE_BRIDGE: "PCI-to-PCIe bridge",
    PcieType.RC_END: "integrated endpoint (RCiEP)",
    PcieType.RC_EC: "root-complex event collector",
}

#: Link kinds: the rules that put two devices in one group.
LINK_KINDS = frozenset(
    {"upstream-bridge", "bridge-alias", "dma-alias-peer", "function-peer", "stream-sharing"}
)

_LINK_VERBS = {
    "upstream-bridge": "is below non-isolated bridge",
    "bridge-alias": "uses the requester id of bridge",
    "dma-alias-peer": "is a DMA alias of",
    "function-peer": "is a non-isolated sibling function of",
    "stream-sharing": "shares a stream id with",
}


# ------------------------------------------------------------------ values
class Facts(Mapping[str, str]):
    """An immutable, hashable ``str -> str`` mapping (insertion order kept).

    >>> f = Facts({"bridge": "0000:00:1c.0", "enabled": "no"})
    >>> f["enabled"], len(f), f == {"enabled": "no", "bridge": "0000:00:1c.0"}
    ('no', 2, True)
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: dict[str, str] = {str(k): str(v) for k, v in pairs}

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._items == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"Facts({self._items!r})"


def _to_facts(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> Facts:
    return value if isinstance(value, Facts) else Facts(value)


@attrs.frozen
class Reason:
    """One rule application, in words and as checkable facts.

    Attributes:
        rule: the spec rule id(s) (``"R4.2"``, ``"R2.2"``...).
        device: the device the rule looked at (an address or platform name).
        text: the sentence, for people. Programs use ``kind`` and ``facts``.
        facts: what decided, as strings (keys depend on ``kind``; see the
            module documentation).
        kind: what sort of reason this is (``"upstream-bridge"``, ``"acs"``...).
    """

    rule: str
    device: str
    text: str
    facts: Facts = attrs.field(converter=_to_facts)
    kind: str = ""

    def to_json(self) -> dict[str, Any]:
        """``{"kind", "rule", "device", "text", "facts"}``."""
        return {
            "kind": self.kind,
            "rule": self.rule,
            "device": self.device,
            "text": self.text,
            "facts": dict(self.facts),
        }


def _reasons(value: Iterable[Reason]) -> tuple[Reason, ...]:
    return tuple(value)


def _steps(value: Iterable[Step]) -> tuple[Step, ...]:
    return tuple(value)


def _step_json(step: Step) -> dict[str, Any]:
    return {"rule": step.rule, "device": str(step.device), "text": step.text, "group": step.group}


@attrs.frozen
class Explanation:
    """Why one device is in its canonical IOMMU group.

    Attributes:
        device: the device (``dddd:bb:dd.f`` or a platform device's name).
        group: its canonical group id, ``None`` when it gets none.
        members: the group's members (empty without a group).
        joined: how it got the group: ``"new"`` (R4.4), ``"upstream"`` (R4.2),
            ``"alias"`` (R4.1), ``"alias-group"`` (R5.1), ``"function-alias"``
            (R5.2), ``"stream-sharing"`` (R1.7), ``"generic"`` (R1.5) or
            ``"ungrouped"``.
        via: the device whose group it joined (``None`` for a new group).
        chain: the rule applications from the device to the group's creator:
            links, walk ends, and last the creation (``new-group``...).
        acs: the ACS verdict of the device and of every bridge above it, to
            the root (R2.2-R2.4, R2.6).
        unknown: facts of the devices involved that could not be read.
        steps: the raw ``pci_device_group`` trace of the device's own call.
    """

    device: str
    group: int | None
    members: tuple[str, ...]
    joined: str
    via: str | None
    chain: tuple[Reason, ...] = attrs.field(converter=_reasons)
    acs: tuple[Reason, ...] = attrs.field(converter=_reasons)
    unknown: tuple[Reason, ...] = attrs.field(default=(), converter=_reasons)
    steps: tuple[Step, ...] = attrs.field(default=(), converter=_steps)

    @property
    def certain(self) -> bool:
        """No unknown fact could change an ACS verdict involved."""
        return all(u.facts.get("matters") != "yes" for u in self.unknown)

    def to_json(self) -> dict[str, Any]:
        """The explanation as JSON data, schema ``"iommugroups.explain/1"``.

        Keys: ``schema``; ``type`` = ``"device"``; ``device``; ``group`` (int
        or null); ``members`` (list); ``joined``; ``via`` (or null);
        ``chain``, ``acs``, ``unknown`` (lists of reasons, each ``{"kind",
        "rule", "device", "text", "facts"}``); ``certain`` (bool); ``steps``
        (the trace: ``{"rule", "device", "text", "group"}``).
        """
        return {
            "schema": EXPLAIN_SCHEMA,
            "type": "device",
            "device": self.device,
            "group": self.group,
            "members": list(self.members),
            "joined": self.joined,
            "via": self.via,
            "chain": [r.to_json() for r in self.chain],
            "acs": [r.to_json() for r in self.acs],
            "unknown": [r.to_json() for r in self.unknown],
            "certain": self.certain,
            "steps": [_step_json(s) for s in self.steps],
        }


@attrs.frozen
class PairExplanation:
    """Why two devices share a canonical group or not, and whether DMA connects them.

    Attributes:
        a, b: the two devices.
        group_a, group_b: their canonical groups (``None``: no group).
        same_group: both have a group and it is the same.
        cause: for one group, the shared cause in one reason (kinds
            ``common-bridge``, ``upstream-bridge``, ``function-peer``,
            ``dma-alias``, ``stream-sharing``, ``chain``); else ``None``.
        chain: for one group, the links joining ``a`` to ``b`` in order;
            each has facts ``from`` and ``to``.
        separation: for different groups, where each walk ends and what
            separates them (see the module documentation).
        a_can_reach_b: can a request from ``a`` reach ``b`` without the
            IOMMU (``None``: unknown); the rule is in the module documentation.
        a_to_b: why.
        b_can_reach_a: the same from ``b``.
        b_to_a: why.
        acs: ACS verdicts of both devices and every bridge above them.
        unknown: facts of the devices involved that could not be read.
    """

    a: str
    b: str
    group_a: int | None
    group_b: int | None
    same_group: bool
    cause: Reason | None
    chain: tuple[Reason, ...] = attrs.field(converter=_reasons)
    separation: tuple[Reason, ...] = attrs.field(converter=_reasons)
    a_can_reach_b: bool | None
    a_to_b: Reason
    b_can_reach_a: bool | None
    b_to_a: Reason
    acs: tuple[Reason, ...] = attrs.field(default=(), converter=_reasons)
    unknown: tuple[Reason, ...] = attrs.field(default=(), converter=_reasons)

    @property
    def certain(self) -> bool:
        """No unknown fact could change an ACS verdict involved."""
        return all(u.facts.get("matters") != "yes" for u in self.unknown)

    def to_json(self) -> dict[str, Any]:
        """The pair as JSON data, schema ``"iommugroups.explain/1"``.

        Keys: ``schema``; ``type`` = ``"pair"``; ``a``, ``b``; ``group_a``,
        ``group_b`` (int or null); ``same_group`` (bool); ``cause`` (a reason
        or null); ``chain``, ``separation`` (lists of reasons); ``reach``:
        ``{"a_to_b": {"possible": bool or null, "reason": reason},
        "b_to_a": {...}}``; ``acs``, ``unknown`` (lists of reasons);
        ``certain`` (bool).
        """
        return {
            "schema": EXPLAIN_SCHEMA,
            "type": "pair",
            "a": self.a,
            "b": self.b,
            "group_a": self.group_a,
            "group_b": self.group_b,
            "same_group": self.same_group,
            "cause": self.cause.to_json() if self.cause is not None else None,
            "chain": [r.to_json() for r in self.chain],
            "separation": [r.to_json() for r in self.separation],
            "reach": {
                "a_to_b": {"possible": self.a_can_reach_b, "reason": self.a_to_b.to_json()},
                "b_to_a": {"possible": self.b_can_reach_a, "reason": self.b_to_a.to_json()},
            },
            "acs": [r.to_json() for r in self.acs],
            "unknown": [r.to_json() for r in self.unknown],
            "certain": self.certain,
        }


# ------------------------------------------------------------ internal records
@attrs.frozen
class _Verdict:
    """How ``pci_acs_enabled(fn, flags)`` decided (R2.3)."""

    enabled: bool
    decided_by: str
    quirk: str | None
    missing: AcsFlags
    unimplemented: AcsFlags
    certain: bool


@attrs.frozen
class _Join:
    """How one device got its group in the canonical replay."""

    device: str
    group: int
    how: str
    via: str | None
    hops: tuple[Reason, ...]
    stop: Reason | None
    end: Reason | None
    steps: tuple[Step, ...]


_Hit = tuple[str, PciFunction, PciFunction]


class _ResultFn(Protocol):
    def __call__(
        self, possible: bool | None, rule: str, case: str, text: str, **more: str
    ) -> tuple[bool | None, Reason]: ...


def _rid(rid: int) -> str:
    return f"{rid >> 8:02x}:{(rid >> 3) & 0x1F:02x}.{rid & 7}"


def _yn(value: bool) -> str:
    return "yes" if value else "no"


def _flags(value: AcsFlags) -> str:
    return value.names()


def _bus_name(domain: int, bus: int) -> str:
    return f"{domain:04x}:{bus:02x}"


def _isolating_type(fn: PciFunction, topology: Topology) -> PcieType:
    on_root = topology.is_root_bus(fn.address.domain, fn.address.bus)
    if fn.is_bridge:
        return PcieType.ROOT_PORT if on_root else PcieType.DOWNSTREAM
    return PcieType.RC_END if on_root else PcieType.ENDPOINT


def _pcie_unknown(fn: PciFunction) -> bool:
    return fn.pcie_type is None and bool(fn.unknown & {"pcie", "config"})


# ------------------------------------------------------------------ explainer
class Explainer:
    """Explanations for one topology, sharing one canonical replay.

    :func:`explain` and :func:`explain_pair` build one per call; make one
    yourself to explain many devices or pairs of the same topology (the
    replay and the ACS verdicts are computed once).

    Args:
        topology: the machine.
        quirks: the quirk table (default: the kernel's).
    """

    def __init__(self, topology: Topology, *, quirks: Quirks | None = None) -> None:
        self.topology = topology
        self.ctx = make_context(topology, quirks)
        self.env = GroupingEnv(self.ctx)
        self.grouping: Grouping = canonical_groups(topology, quirks=quirks)
        self._platform = {d.name: d for d in topology.platform_devices}
        self._adds: list[LogLine] = [x for x in self.grouping.log if x.action == "add"]
        self._index = {x.device: i for i, x in enumerate(self._adds)}
        self._kinds = {i.name: i.kind for i in topology.iommus}
        self._joins: dict[str, _Join] = {}
        self._cursor = 0
        self._held: dict[PciAddress, int] = {}
        self._seen: set[int] = set()
        self._streams = StreamTree()
        self._verdicts: dict[tuple[PciAddress, int], _Verdict] = {}
        self._acs_reasons: dict[PciAddress, Reason] = {}

    # --- names ----------------------------------------------------------
    def _name(self, device: str | PciAddress) -> str:
        if isinstance(device, PciAddress):
            addr = device
        else:
            if device in self._platform:
                return device
            try:
                addr = PciAddress.parse(device)
            except InvalidAddress:
                raise UnknownDevice(f"no device {device!r} in the topology") from None
        if addr not in self.topology:
            raise UnknownDevice(f"no PCI function {addr} in the topology")
        return str(addr)

    def _pci(self, name: str) -> PciFunction | None:
        if name in self._platform:
            return None
        return self.topology.get(name)

    # --- ACS ------------------------------------------------------------
    def _verdict(self, fn: PciFunction, flags: AcsFlags = REQ_ACS_FLAGS) -> _Verdict:
        """How ``pci_acs_enabled(fn, flags)`` decides, step by step (R2.3)."""
        key = (fn.address, flags.value)
        cached = self._verdicts.get(key)
        if cached is not None:
            return cached
        ctx = self.ctx
        enabled, quirk = ctx.quirks.acs_decision(fn, flags, ctx)
        missing = unimplemented = AcsFlags.NONE
        if enabled is not None:
            decided_by = "quirk"
        else:
            t = fn.pcie_type
            if t is None:
                enabled, decided_by = False, "not-pcie"
            elif t in _BRIDGE_TYPES:
                enabled, decided_by = False, "bridge-type"
            elif t in _PORT_TYPES or (t in _MF_TYPES and self.topology.is_multifunction(fn)):
                if fn.acs is None:
                    enabled, decided_by = False, "no-capability"
                else:
                    cap, ctrl = fn.acs.cap, fn.acs.ctrl
                    required = flags & (cap | AcsFlags.EC)
                    missing = required & ~ctrl
                    unimplemented = flags & ~cap & ~AcsFlags.EC
                    enabled, decided_by = not missing, "registers"
            else:
                enabled, decided_by = True, "no-peer"
        assert enabled == pci_acs_enabled(fn, flags, ctx), fn.address
        certain = True
        if fn.unknown & _GROUPING_FACTS:
            changes: dict[str, Any] = {"acs": _FULL}
            if _pcie_unknown(fn):
                changes["pcie_type"] = _isolating_type(fn, self.topology)
            alt = pci_acs_enabled(attrs.evolve(fn, **changes), flags, ctx)
            certain = alt == enabled
        v = _Verdict(
            enabled,
            decided_by,
            quirk.name if quirk is not None else None,
            missing,
            unimplemented,
            certain,
        )
        self._verdicts[key] = v
        return v

    def _above(self, fn: PciFunction) -> PciFunction | None:
        """The bridge above ``fn`` (virtual buses skipped), as R2.4 steps."""
        topo = self.topology
        dom, bus = fn.address.domain, fn.address.bus
        if topo.is_root_bus(dom, bus):
            return None
        above = topo.bus_self(dom, bus)
        while above is None:
            parent = topo.parent_bus(dom, bus)
            if parent is None or topo.is_root_bus(dom, parent):
                return None
            bus = parent
            above = topo.bus_self(dom, bus)
        return above

    def _bridges_above(self, fn: PciFunction) -> list[PciFunction]:
        """Every bridge above ``fn``, nearest first, to the one on the root bus."""
        out: list[PciFunction] = []
        cur = self._above(fn)
        while cur is not None:
            out.append(cur)
            cur = self._above(cur)
        return out

    def _path(self, fn: PciFunction) -> tuple[bool, PciFunction | None, bool]:
        """``pci_acs_path_enabled(fn, None, REQ)`` (R2.4): (isolated, blocker, certain).

        ``blocker`` is the first device on the path that is not ACS-enabled.
        ``certain`` is false when every such device's verdict rests on an
        unknown fact.
        """
        devices = [fn, *self._bridges_above(fn)]
        verdicts = [self._verdict(d) for d in devices]
        blocker = next((d for d, v in zip(devices, verdicts, strict=True) if not v.enabled), None)
        isolated = blocker is None
        assert isolated == pci_acs_path_enabled(fn, None, REQ_ACS_FLAGS, self.ctx), fn.address
        certain = isolated or any(not v.enabled and v.certain for v in verdicts)
        return isolated, blocker, certain

    def _what(self, fn: PciFunction) -> str:
        if _pcie_unknown(fn):
            return "bridge of unknown PCIe type" if fn.is_bridge else "device of unknown PCIe type"
        t = fn.pcie_type
        if t is None:
            return "conventional PCI bridge" if fn.is_bridge else "conventional PCI device"
        word = _TYPE_WORDS[t]
        if t in (PcieType.ENDPOINT, PcieType.LEG_END, PcieType.RC_END) and (
            self.topology.is_multifunction(fn)
        ):
            return "multifunction " + word
        return word

    def _type_fact(self, fn: PciFunction) -> str:
        if _pcie_unknown(fn):
            return "unknown"
        return fn.pcie_type.name if fn.pcie_type is not None else "conventional"

    def _why(self, fn: PciFunction, v: _Verdict) -> str:
        """Why ``fn``'s verdict is what it is, as a clause after "which"."""
        if v.decided_by == "quirk":
            word = "isolated" if v.enabled else "not isolated"
            return f"is declared {word} by quirk {v.quirk} ({fn.vendor:04x}:{fn.device:04x})"
        if v.decided_by == "not-pcie":
            if _pcie_unknown(fn):
                return "has a PCIe capability that could not be read (unknown; taken as absent)"
            return "is conventional PCI (never ACS-isolated)"
        if v.decided_by == "bridge-type":
            return f"is a {self._what(fn)} (never ACS-isolated)"
        if v.decided_by == "no-capability":
            if "acs" in fn.unknown or "config" in fn.unknown:
                return "has an ACS capability that could not be read (unknown; taken as absent)"
            return "has no ACS capability"
        if v.decided_by == "registers":
            assert fn.acs is not None
            regs = f"ACS cap {_flags(fn.acs.cap)}, ctrl {_flags(fn.acs.ctrl)}"
            if v.enabled:
                return f"has {regs}"
            return f"has ACS control lacking {_flags(v.missing)} ({regs})"
        return "is single-function: it has no peer to reach (counts as ACS-enabled)"

    def acs_reason(self, fn: PciFunction) -> Reason:
        """The ``acs`` reason of one device: its R2.3 verdict, and R2.4 for a bridge."""
        cached = self._acs_reasons.get(fn.address)
        if cached is not None:
            return cached
        v = self._verdict(fn)
        what, addr = self._what(fn), str(fn.address)
        if fn.is_bridge:
            verdict_words = "isolated" if v.enabled else "it does not isolate its children"
        else:
            verdict_words = "isolated" if v.enabled else "not isolated from its peers"
        if v.decided_by == "registers":
            assert fn.acs is not None
            text = f"{what} {addr}: ACS cap {_flags(fn.acs.cap)}, ctrl {_flags(fn.acs.ctrl)} → "
            text += "" if v.enabled else f"ctrl lacks {_flags(v.missing)} → "
            text += f"{verdict_words} (R2.2)"
            if v.unimplemented:
                text += f"; {_flags(v.unimplemented)} not implemented, so counted as hard-wired on"
            rule = "R2.2"
        elif v.decided_by == "quirk":
            word = "isolated" if v.enabled else "not isolated"
            text = f"{what} {addr} [{fn.vendor:04x}:{fn.device:04x}]: {v.quirk} says {word} (R2.6)"
            rule = "R2.6"
        elif v.decided_by == "not-pcie" and not _pcie_unknown(fn):
            text = f"{what} {addr}: conventional PCI has no ACS → {verdict_words} (R2.3)"
            rule = "R2.3"
        elif v.decided_by == "bridge-type":
            text = f"{what} {addr}: such devices are never ACS-isolated → {verdict_words} (R2.3)"
            rule = "R2.3"
        else:
            text = f"{what} {addr} {self._why(fn, v)} → {verdict_words} (R2.3)"
            rule = "R2.3"
        facts: dict[str, str] = {
            "device": addr,
            "type": self._type_fact(fn),
            "multifunction": _yn(self.topology.is_multifunction(fn)),
            "acs_cap": self._acs_word(fn, "cap"),
            "acs_ctrl": self._acs_word(fn, "ctrl"),
            "required": _flags(REQ_ACS_FLAGS),
            "missing": _flags(v.missing),
            "unimplemented": _flags(v.unimplemented),
            "quirk": v.quirk or "",
            "decided_by": v.decided_by,
            "enabled": _yn(v.enabled),
            "certain": _yn(v.certain),
            "unknown": ",".join(sorted(fn.unknown & _GROUPING_FACTS)),
        }
        if fn.is_bridge:
            isolated, blocker, certain = self._path(fn)
            facts["path_isolated"] = _yn(isolated)
            facts["path_blocker"] = str(blocker.address) if blocker is not None else ""
            facts["path_certain"] = _yn(certain)
            if isolated:
                text += "; its whole path to the root is ACS-isolated (R2.4)"
            elif blocker is not None and blocker is not fn:
                text += (
                    f"; but {self._what(blocker)} {blocker.address} above it is not, "
                    "so its path to the root is not isolated (R2.4)"
                )
        if not v.certain:
            text += " [unknown: a readable capability could change this verdict]"
        elif fn.unknown & _GROUPING_FACTS:
            text += " [a fact could not be read, but it cannot change this verdict]"
        reason = Reason(rule, addr, text, facts, "acs")
        self._acs_reasons[fn.address] = reason
        return reason

    @staticmethod
    def _acs_word(fn: PciFunction, which: str) -> str:
        if fn.acs is None:
            return "unknown" if fn.unknown & {"acs", "config"} else "absent"
        return _flags(fn.acs.cap if which == "cap" else fn.acs.ctrl)

    def _path_acs(self, fn: PciFunction) -> list[Reason]:
        """ACS reasons of ``fn`` and of every bridge above it."""
        return [self.acs_reason(d) for d in (fn, *self._bridges_above(fn))]

    def _unknown_reasons(self, devices: Iterable[PciFunction]) -> list[Reason]:
        """An ``unknown`` reason for each device with an unreadable grouping fact."""
        out: list[Reason] = []
        seen: set[PciAddress] = set()
        for fn in devices:
            if fn.address in seen:
                continue
            seen.add(fn.address)
            facts = fn.unknown & _GROUPING_FACTS
            if not facts:
                continue
            v = self._verdict(fn)
            alias_changes = fn.is_bridge and _pcie_unknown(fn)  # R3.4 depends on the type
            matters = not v.certain or alias_changes
            what = []
            if "config" in facts:
                what.append("its configuration space")
            if "pcie" in facts:
                what.append("its PCIe capability")
            if "acs" in facts:
                what.append("its ACS capability")
            text = (
                f"{fn.address}: {' and '.join(what)} could not be read; the model takes it as "
                "absent (the least isolating reading)"
            )
            if matters:
                text += ", and a readable one could change its ACS verdict or DMA aliases"
                text += " and so the grouping: this part of the explanation is not certain"
            else:
                text += f", which cannot change anything here: it {self._why(fn, v)}"
            out.append(
                Reason(
                    "R2.3",
                    str(fn.address),
                    text,
                    {
                        "device": str(fn.address),
                        "facts": ",".join(sorted(facts)),
                        "assumed": "absent",
                        "matters": _yn(matters),
                    },
                    "unknown",
                )
            )
        return out

    # --- links ----------------------------------------------------------
    def _upstream_hop(self, x: PciFunction, br: PciFunction) -> Reason:
        isolated, blocker, _certain = self._path(br)
        assert not isolated
        assert blocker is not None
        bv = self._verdict(blocker)
        what = self._what(br)
        if blocker is br:
            text = (
                f"{x.address} is below {what} {br.address}, which {self._why(br, bv)} "
                "→ it does not isolate its children (R4.2)"
            )
        else:
            text = (
                f"{x.address} is below {what} {br.address}; that port is ACS-isolated itself, "
                f"but {self._what(blocker)} {blocker.address} above it {self._why(blocker, bv)}, "
                "so its path to the root is not isolated (R2.4, R4.2)"
            )
        return Reason(
            "R4.2",
            str(x.address),
            text,
            {
                "from": str(x.address),
                "to": str(br.address),
                "bridge_type": self._type_fact(br),
                "blocker": str(blocker.address),
                "blocker_acs": self._why(blocker, bv),
            },
            "upstream-bridge",
        )

    def _alias_hop(self, x: PciFunction, br: PciFunction, rid: int) -> Reason:
        t = br.pcie_type
        if t == PcieType.PCI_BRIDGE:
            how = "a PCIe-to-PCI bridge: devices behind it use its requester id"
        elif t == PcieType.PCIE_BRIDGE:
            how = "a PCI-to-PCIe bridge: devices behind it use its own requester id"
        elif rid == br.address.rid:
            how = f"a {self._what(br)}: devices behind it use its own requester id"
        else:
            how = (
                f"a {self._what(br)} flagged PCIE_BRIDGE_ALIAS: devices behind it use "
                "the requester id"
            )
        text = (
            f"{x.address} is behind {br.address}, {how} {_rid(rid)} (R3.4), "
            "so it joins that bridge's group (R4.1)"
        )
        return Reason(
            "R3.4",
            str(x.address),
            text,
            {
                "from": str(x.address),
                "to": str(br.address),
                "bridge_type": self._type_fact(br),
                "alias_rid": _rid(rid),
            },
            "bridge-alias",
        )

    def _peer_hop(self, kind: str, x: PciFunction, t: PciFunction) -> Reason:
        a = x.address
        if kind == "dma-alias-peer":
            mx, mt = self.env.alias_mask(x), self.env.alias_mask(t)
            if t.address.devfn in mx:
                how = f"devfn {t.address.device:02x}.{t.address.function} is in {a}'s alias mask"
            else:
                how = f"devfn {a.device:02x}.{a.function} is in {t.address}'s alias mask"
            text = (
                f"{a} and {t.address} are DMA aliases of each other on bus "
                f"{_bus_name(a.domain, a.bus)}: {how} (R3.6, R5.1)"
            )
            facts = {
                "from": str(a),
                "to": str(t.address),
                "from_aliases": " ".join(f"{d:02x}" for d in sorted(mx)),
                "to_aliases": " ".join(f"{d:02x}" for d in sorted(mt)),
            }
            return Reason("R5.1", str(a), text, facts, kind)
        vx, vt = self._verdict(x), self._verdict(t)
        slot = f"{_bus_name(a.domain, a.bus)}:{a.device:02x}"
        text = (
            f"{a} and {t.address} are functions of one multifunction device ({slot}) and "
            f"neither is ACS-isolated: {a} {self._why(x, vx)}, {t.address} {self._why(t, vt)} "
            "(R5.2)"
        )
        facts = {
            "from": str(a),
            "to": str(t.address),
            "slot": slot,
            "from_acs": self._why(x, vx),
            "to_acs": self._why(t, vt),
        }
        return Reason("R5.2", str(a), text, facts, kind)

    def _r5_path(
        self, pdev: PciFunction, groups: Mapping[PciAddress, int]
    ) -> tuple[str, PciFunction, list[_Hit]] | None:
        """Steps 3-4 (R5.1, R5.2) with the path of links to the device found.

        The same search as ``get_pci_alias_group`` and
        ``get_pci_function_alias_group`` (one devfn bitmap, R5.3; first
        match wins, R5.5), keeping the links that led to the hit.
        """
        env = self.env
        devfns: set[int] = set()
        path: list[_Hit] = []

        def alias_group(p: PciFunction) -> PciFunction | None:
            if p.address.devfn in devfns:
                return None
            devfns.add(p.address.devfn)
            if p.address in groups:
                return p
            for t in env.alias_candidates(p):
                path.append(("dma-alias-peer", p, t))
                hit = alias_group(t)
                if hit is None:
                    hit = function_alias_group(t)
                if hit is not None:
                    return hit
                path.pop()
            return None

        def function_alias_group(p: PciFunction) -> PciFunction | None:
            if not self.topology.is_multifunction(p) or env.acs_enabled(p):
                return None
            for t in env.slot_peers(p):
                if env.acs_enabled(t):
                    continue
                path.append(("function-peer", p, t))
                hit = alias_group(t)
                if hit is not None:
                    return hit
                path.pop()
            return None

        hit = alias_group(pdev)
        if hit is not None:
            return "alias-group", hit, path
        hit = function_alias_group(pdev)
        if hit is not None:
            return "function-alias", hit, path
        return None

    def _walk_end(self, top: PciFunction, stop: PciFunction | None) -> Reason:
        """Where the upward walk (R4.2) that reached ``top`` ended."""
        a = top.address
        if stop is not None:
            v = self._verdict(stop)
            text = (
                f"the walk up from {a} stops below {self._what(stop)} {stop.address}: its path "
                f"to the root is ACS-isolated (it {self._why(stop, v)}) (R2.4, R4.2)"
            )
            facts = {"device": str(a), "bridge": str(stop.address)}
            return Reason("R4.2", str(a), text, facts, "isolated-stop")
        text = (
            f"the walk up reaches {a} on root bus {_bus_name(a.domain, a.bus)} without meeting "
            "an ACS-isolated bridge (R4.2)"
        )
        facts = {"device": str(a), "top": str(a), "bus": _bus_name(a.domain, a.bus)}
        return Reason("R4.2", str(a), text, facts, "root-bus")

    def _walk(self, fn: PciFunction) -> tuple[PciFunction, PciFunction | None]:
        """Steps 1-2 (R4.1, R4.2) from ``fn`` when no group interrupts them.

        Returns the device steps 3-4 would run on (the topmost aliasing
        bridge or non-isolated bridge) and the ACS-isolated bridge the walk
        stopped at (``None``: it reached the root bus).
        """
        aliases, walked, stop = self.env.plan(fn)
        top = walked[-1] if walked else (aliases[-1][0] if aliases else fn)
        return top, stop

    # --- replay ---------------------------------------------------------
    def _join(self, device: str | PciAddress) -> _Join | None:
        """The replayed join of ``device`` (``None``: it has no group)."""
        name = self._name(device)
        i = self._index.get(name)
        if i is None:
            return None
        while self._cursor <= i:
            self._replay(self._adds[self._cursor])
            self._cursor += 1
        return self._joins[name]

    def _replay(self, line: LogLine) -> None:
        name, gid = line.device, line.group
        fresh = gid not in self._seen
        dev: PciFunction | PlatformDevice
        spec: FwSpec | None
        if name in self._platform:
            dev = self._platform[name]
            spec = platform_fwspec(dev)
        else:
            dev = self.topology.get(name)
            spec = pci_fwspec(dev, self.ctx)
        join: _Join | None = None
        if spec is not None and self._kinds.get(spec.iommu) is IommuKind.SMMU_V2 and not fresh:
            join = self._stream_join(name, gid, spec)
        if join is None:
            if isinstance(dev, PciFunction):
                dec = pci_device_group(dev, self._held, self.env, trace=True)
                assert dec.group == (None if fresh else gid), name
                join = self._decision_join(dev, gid, dec)
            else:
                assert fresh, name
                text = (
                    f"{name} is a {dev.bus} device: generic_device_group gives it a new group "
                    f"{gid} of its own (R1.5)"
                )
                end = Reason("R1.5", name, text, {"device": name, "group": str(gid)}, "generic")
                join = _Join(name, gid, "generic", None, (), None, end, ())
        self._joins[name] = join
        self._seen.add(gid)
        if isinstance(dev, PciFunction):
            self._held[dev.address] = gid
        if spec is not None:
            self._streams.add(spec, name)

    def _stream_join(self, name: str, gid: int, spec: FwSpec) -> _Join | None:
        for sid in spec.stream_ids:
            owner = self._streams.holder(spec.iommu, sid)
            if owner is None or owner == name or self._joins[owner].group != gid:
                continue
            shared = sorted(
                s for s in spec.stream_ids if self._streams.holder(spec.iommu, s) == owner
            )
            text = (
                f"{name} and {owner} share stream id {sid:#x} on SMMUv2 {spec.iommu}: "
                "devices whose stream-match entries are shared share a group (R1.7)"
            )
            facts = {
                "from": name,
                "to": owner,
                "iommu": spec.iommu,
                "streams": " ".join(f"{s:#x}" for s in shared),
            }
            hop = Reason("R1.7", name, text, facts, "stream-sharing")
            return _Join(name, gid, "stream-sharing", owner, (hop,), None, None, ())
        return None

    def _decision_join(self, fn: PciFunction, gid: int, dec: GroupDecision) -> _Join:
        name = str(fn.address)
        aliases, walked, stop = self.env.plan(fn)
        hops: list[Reason] = []
        if dec.step == "alias":
            assert dec.via is not None
            if dec.via != fn.address:
                rid = next(r for w, r in aliases if w.address == dec.via)
                hops.append(self._alias_hop(fn, self.topology.get(dec.via), rid))
            return _Join(name, gid, "alias", str(dec.via), tuple(hops), None, None, dec.steps)
        start = fn
        if aliases and aliases[-1][0].address != fn.address:
            start, rid = aliases[-1]
            hops.append(self._alias_hop(fn, start, rid))
        prev = start
        if dec.step == "upstream":
            for br in walked:
                hops.append(self._upstream_hop(prev, br))
                prev = br
                if br.address == dec.via:
                    break
            return _Join(name, gid, "upstream", str(dec.via), tuple(hops), None, None, dec.steps)
        passed: list[PciFunction] = []
        for br in walked:  # bridges without a group (R4.5): the walk moved past them
            hops.append(self._upstream_hop(prev, br))
            passed.append(br)
            prev = br
        assert prev.address == dec.pdev, name
        stop_reason = self._walk_end(prev, stop)
        if dec.step == "new":
            where = (
                f"the walk stopped below ACS-isolated {stop.address}"
                if stop is not None
                else f"the walk reached the root bus at {prev.address}"
            )
            if passed:
                where += f", past {', '.join(str(b.address) for b in passed)} (no group yet)"
            text = (
                f"{name} found no existing group ({where}; no DMA alias or non-isolated sibling "
                f"function of {prev.address} had one), so it got a new group {gid} (R4.4)"
            )
            facts = {
                "device": name,
                "group": str(gid),
                "top": str(prev.address),
                "stop": str(stop.address) if stop is not None else "root-bus",
                "walked": " ".join(str(b.address) for b in passed),
            }
            end = Reason("R4.4", name, text, facts, "new-group")
            return _Join(name, gid, "new", None, (), stop_reason, end, dec.steps)
        found = self._r5_path(prev, self._held)
        assert found is not None, name
        assert found[0] == dec.step, name
        step, hit, path = found
        assert hit.address == dec.via, name
        hops.extend(self._peer_hop(kind, x, t) for kind, x, t in path)
        return _Join(name, gid, step, str(hit.address), tuple(hops), stop_reason, None, dec.steps)

    def _ancestry(self, name: str) -> list[_Join]:
        """The joins from ``name`` to its group's creator."""
        out: list[_Join] = []
        j = self._join(name)
        while j is not None:
            out.append(j)
            j = self._joins[j.via] if j.via is not None else None
        return out

    # --- explain --------------------------------------------------------
    def explain(self, device: str | PciAddress) -> Explanation:
        """Why ``device`` is in its canonical group (see :func:`explain`)."""
        name = self._name(device)
        fn = self._pci(name)
        acs = self._path_acs(fn) if fn is not None else []
        involved: list[PciFunction] = [fn, *self._bridges_above(fn)] if fn is not None else []
        j = self._join(name)
        if j is None:
            why = self.grouping.ungrouped.get(name, "no group")
            m = re.search(r"R\d+\.\d+", why)
            reason = Reason(
                m.group(0) if m else "R3.8",
                name,
                f"{name} gets no IOMMU group: {why}",
                {"device": name, "why": why},
                "ungrouped",
            )
            return Explanation(
                name, None, (), "ungrouped", None, (reason,), acs, self._unknown_reasons(involved)
            )
        chain: list[Reason] = []
        for step in self._ancestry(name):
            if step.stop is not None:
                chain.append(step.stop)
            chain.extend(step.hops)
            if step.end is not None:
                chain.append(step.end)
        for r in chain:
            for key in ("from", "to", "device"):
                other = r.facts.get(key)
                if other is not None and other not in self._platform and other in self.topology:
                    involved.append(self.topology.get(other))
        return Explanation(
            name,
            j.group,
            self.grouping.groups.get(j.group, ()),
            j.how,
            j.via,
            chain,
            acs,
            self._unknown_reasons(involved),
            j.steps,
        )

    def explain_pair(self, a: str | PciAddress, b: str | PciAddress) -> PairExplanation:
        """Why ``a`` and ``b`` share a group or not (see :func:`explain_pair`)."""
        na, nb = self._name(a), self._name(b)
        if na == nb:
            raise ValueError(f"explain_pair needs two different devices, got {na} twice")
        ja, jb = self._join(na), self._join(nb)
        ga = ja.group if ja is not None else None
        gb = jb.group if jb is not None else None
        same = ga is not None and ga == gb
        cause: Reason | None = None
        chain: list[Reason] = []
        separation: list[Reason] = []
        if same:
            chain, cause = self._connect(na, nb)
        else:
            separation = self._separate(na, nb, ja is not None, jb is not None)
        ra, rea = self._reach(na, nb, ja is not None)
        rb, reb = self._reach(nb, na, jb is not None)
        fa, fb = self._pci(na), self._pci(nb)
        acs: list[Reason] = []
        involved: list[PciFunction] = []
        for fn in (fa, fb):
            if fn is None:
                continue
            for r in self._path_acs(fn):
                if r not in acs:
                    acs.append(r)
            involved.extend([fn, *self._bridges_above(fn)])
        for r in (*chain, *separation):
            for key in ("from", "to", "bridge", "top_a", "top_b"):
                other = r.facts.get(key)
                if other and other not in self._platform and other in self.topology:
                    involved.append(self.topology.get(other))
        return PairExplanation(
            na,
            nb,
            ga,
            gb,
            same,
            cause,
            chain,
            separation,
            ra,
            rea,
            rb,
            reb,
            acs,
            self._unknown_reasons(involved),
        )

    def _connect(self, na: str, nb: str) -> tuple[list[Reason], Reason]:
        up_a, up_b = self._ancestry(na), self._ancestry(nb)
        pos = {j.device: i for i, j in enumerate(up_a)}
        k = next(i for i, j in enumerate(up_b) if j.device in pos)
        meet = up_b[k].device
        side_a = [h for j in up_a[: pos[meet]] for h in j.hops]
        side_b = [h for j in up_b[:k] for h in j.hops]
        chain = side_a + side_b[::-1]
        return chain, self._cause(na, nb, meet, chain, side_a, side_b)

    def _cause(
        self,
        na: str,
        nb: str,
        meet: str,
        chain: list[Reason],
        side_a: list[Reason],
        side_b: list[Reason],
    ) -> Reason:
        kinds = {h.kind for h in chain}
        if kinds <= {"upstream-bridge", "bridge-alias"}:
            br = self.topology.get(meet)
            via_alias = any(h.kind == "bridge-alias" for h in chain)
            rule = "R3.4" if via_alias else "R4.2"
            v = self._verdict(br)
            isolated, blocker, _ = self._path(br)
            if via_alias:
                how = "their DMA carries its requester id"
            elif blocker is br:
                how = f"it {self._why(br, v)}"
            else:
                assert blocker is not None
                assert not isolated
                how = f"its path to the root is not ACS-isolated ({blocker.address})"
            if meet in (na, nb):
                below = nb if meet == na else na
                text = (
                    f"{meet} is the upstream bridge of {below} and does not isolate it: {how} "
                    f"({rule})"
                )
                facts = {"bridge": meet, "device": below}
                return Reason(rule, meet, text, facts, "upstream-bridge")
            text = (
                f"{na} and {nb} are both below {self._what(br)} {meet}, which does not isolate "
                f"them: {how} ({rule})"
            )
            return Reason(rule, meet, text, {"bridge": meet}, "common-bridge")
        if kinds == {"function-peer"}:
            first = chain[0]
            text = (
                f"{na} and {nb} are functions of one multifunction device "
                f"({first.facts['slot']}) without ACS isolation (R5.2)"
            )
            return Reason("R5.2", na, text, {"slot": first.facts["slot"]}, "function-peer")
        if kinds == {"dma-alias-peer"}:
            text = f"{na} and {nb} are DMA aliases of each other (R3.6, R5.1)"
            return Reason("R3.6", na, text, {}, "dma-alias")
        if kinds == {"stream-sharing"}:
            text = f"{na} and {nb} share SMMUv2 stream ids (R1.7)"
            return Reason("R1.7", na, text, {}, "stream-sharing")
        parts = [f"{h.facts['from']} {_LINK_VERBS[h.kind]} {h.facts['to']}" for h in chain]
        rules = sorted({h.rule for h in chain}, key=lambda r: tuple(map(int, r[1:].split("."))))
        text = f"{na} and {nb} are linked in {len(chain)} steps: " + "; ".join(parts)
        text += f" ({', '.join(rules)})"
        return Reason(", ".join(rules), na, text, {"links": str(len(chain))}, "chain")

    def _boundary(self, fn: PciFunction) -> Reason:
        top, stop = self._walk(fn)
        a = str(fn.address)
        if stop is not None:
            v = self._verdict(stop)
            text = (
                f"{a}: the walk up stops below {self._what(stop)} {stop.address}, whose whole "
                f"path to the root is ACS-isolated (it {self._why(stop, v)}) (R2.4, R4.2)"
            )
            facts = {"device": a, "bridge": str(stop.address), "top": str(top.address)}
            return Reason("R4.2", a, text, facts, "isolated-by")
        t = top.address
        text = (
            f"{a}: the walk up reaches {t} on root bus {_bus_name(t.domain, t.bus)} without "
            "meeting an ACS-isolated bridge (R4.2)"
        )
        facts = {"device": a, "top": str(t), "bus": _bus_name(t.domain, t.bus)}
        return Reason("R4.2", a, text, facts, "root-bus-top")

    def _separate(self, na: str, nb: str, has_a: bool, has_b: bool) -> list[Reason]:
        out: list[Reason] = []
        for name, has in ((na, has_a), (nb, has_b)):
            if name in self._platform and has:
                text = (
                    f"{name} is a platform device: generic_device_group gives it a group of "
                    "its own (R1.5)"
                )
                out.append(Reason("R1.5", name, text, {"device": name}, "platform"))
            elif not has:
                why = self.grouping.ungrouped.get(name, "no group")
                text = f"{name} has no IOMMU group: {why}"
                out.append(Reason("R3.8", name, text, {"device": name, "why": why}, "no-group"))
        if out:
            return out
        fa, fb = self.topology.get(na), self.topology.get(nb)
        out = [self._boundary(fa), self._boundary(fb)]
        ta, sa = self._walk(fa)
        tb, sb = self._walk(fb)
        above_a = {d.address for d in self._bridges_above(fa)}
        above_b = {d.address for d in self._bridges_above(fb)}
        sa_addr = sa.address if sa is not None else None
        sb_addr = sb.address if sb is not None else None
        if sa_addr != sb_addr:
            for s, below, other, above_other in ((sa, fa, fb, above_b), (sb, fb, fa, above_a)):
                if s is None or s.address in above_other:
                    continue
                v = self._verdict(s)
                if s.address == other.address:
                    tail = f"{other.address} is that bridge itself"
                else:
                    tail = f"{other.address} is not below it"
                text = (
                    f"{self._what(s)} {s.address} is ACS-isolated with its whole path to the "
                    f"root (it {self._why(s, v)}): {below.address} is below it and {tail}, so "
                    f"{below.address}'s walk stops there (R2.4, R4.2)"
                )
                facts = {
                    "bridge": str(s.address),
                    "below": str(below.address),
                    "other": str(other.address),
                }
                out.append(Reason("R4.2", str(s.address), text, facts, "isolated-bridge"))
                return out
        a, b = ta.address, tb.address
        if (a.domain, a.bus) != (b.domain, b.bus):
            text = (
                f"{na} and {nb} are below different root buses ({_bus_name(a.domain, a.bus)} "
                f"at {a}, {_bus_name(b.domain, b.bus)} at {b}): pci_device_group never links "
                "devices across host bridges (R4.2, R5.1, R5.2)"
            )
            facts = {"top_a": str(a), "top_b": str(b)}
            out.append(Reason("R4.2", na, text, facts, "different-root-bus"))
            return out
        out.append(self._separate_tops(na, nb, ta, tb, sa))
        return out

    def _linked_on_bus(self, x: PciFunction, y: PciFunction) -> bool:
        """Whether a chain of R3.6/R5.2 links on their bus joins ``x`` and ``y``."""
        seen = {x.address}
        todo = [x]
        while todo:
            p = todo.pop()
            nxt = list(self.env.alias_candidates(p))
            if self.topology.is_multifunction(p) and not self.env.acs_enabled(p):
                nxt += [t for t in self.env.slot_peers(p) if not self.env.acs_enabled(t)]
            if not self.env.acs_enabled(p):  # the reverse of R5.2, from t
                nxt += [
                    t
                    for t in self.env.slot_peers(p)
                    if self.topology.is_multifunction(t) and not self.env.acs_enabled(t)
                ]
            for t in nxt:
                if t.address not in seen:
                    seen.add(t.address)
                    todo.append(t)
        return y.address in seen

    def _separate_tops(
        self, na: str, nb: str, ta: PciFunction, tb: PciFunction, stop: PciFunction | None
    ) -> Reason:
        a, b = ta.address, tb.address
        same_slot = a.device == b.device
        aliases = a.devfn in self.env.alias_mask(tb) or b.devfn in self.env.alias_mask(ta)
        peers = (
            same_slot
            and not self.env.acs_enabled(ta)
            and not self.env.acs_enabled(tb)
            and (self.topology.is_multifunction(ta) or self.topology.is_multifunction(tb))
        )
        linked = aliases or peers or self._linked_on_bus(ta, tb)
        where = (
            f"directly below ACS-isolated {stop.address}"
            if stop is not None
            else f"on root bus {_bus_name(a.domain, a.bus)}"
        )
        if ta is tb:
            why = "they are the same device (an inconsistency: the groups should be one)"
        elif not same_slot:
            why = "they are in different slots and no DMA alias links them (R3.6)"
        else:
            parts = []
            for t in (ta, tb):
                v = self._verdict(t)
                if v.enabled:
                    parts.append(f"{t.address} {self._why(t, v)} → ACS-isolated")
                elif not self.topology.is_multifunction(t):
                    parts.append(f"{t.address} is not multifunction")
            why = "; ".join(parts) + ", so R5.2 does not join them"
        if linked:
            why += " [yet R3.6/R5.2 links join them: the groups differ because of add order]"
        text = (
            f"the walks of {na} and {nb} end at different devices {a} and {b}, {where}: {why} "
            "(R4.3, R5.1, R5.2)"
        )
        facts = {
            "top_a": str(a),
            "top_b": str(b),
            "bus": _bus_name(a.domain, a.bus),
            "bridge": str(stop.address) if stop is not None else "",
            "same_slot": _yn(same_slot),
            "dma_aliases": _yn(aliases),
            "function_peers": _yn(peers),
            "linked": _yn(linked),
        }
        return Reason("R5.2", na, text, facts, "separate-tops")

    # --- reachability ---------------------------------------------------
    def _ladder(self, fn: PciFunction) -> list[tuple[tuple[int, int], PciFunction]]:
        """(bus, the device on it) from ``fn`` up: ``fn`` or the bridge above it there.

        A virtual (SR-IOV) bus counts as its parent bus: the VFs are functions
        of their PF's device, on its link.
        """
        topo = self.topology
        out: list[tuple[tuple[int, int], PciFunction]] = []
        cur: PciFunction | None = fn
        while cur is not None:
            dom, bus = cur.address.domain, cur.address.bus
            while not topo.is_root_bus(dom, bus) and topo.bus_self(dom, bus) is None:
                parent = topo.parent_bus(dom, bus)
                assert parent is not None
                bus = parent
            out.append(((dom, bus), cur))
            cur = None if topo.is_root_bus(dom, bus) else topo.bus_self(dom, bus)
        return out

    def _reach(self, src: str, dst: str, translated: bool) -> tuple[bool | None, Reason]:
        def result(
            possible: bool | None, rule: str, case: str, text: str, **more: str
        ) -> tuple[bool | None, Reason]:
            word = {True: "yes", False: "no", None: "unknown"}[possible]
            facts = {"from": src, "to": dst, "possible": word, "case": case, **more}
            return possible, Reason(rule, src, text, facts, "reach")

        a, b = self._pci(src), self._pci(dst)
        if a is None or b is None:
            return result(
                None,
                "R1.5",
                "not-modelled",
                f"{src} → {dst}: not modelled (only PCI peer-to-peer is)",
            )
        if not translated:
            return result(
                None,
                "R3.8",
                "not-translated",
                f"{src} → {dst}: no IOMMU translates {src}, so there is nothing to bypass; "
                "whether the request reaches it depends on routing the model does not have",
            )
        la, lb = self._ladder(a), self._ladder(b)
        on_b = dict(lb)
        meet = next(((bus, x, on_b[bus]) for bus, x in la if bus in on_b), None)
        if meet is not None and meet[1] is meet[2]:
            return result(
                None,
                "R2.3",
                "own-path",
                f"{src} → {dst}: one is a bridge on the other's path; a request between a "
                "device and a bridge above it is not a peer-to-peer request ACS governs "
                "(not modelled)",
            )
        if meet is None:
            xa = la[-1][1]
            return self._root_complex(src, dst, xa, result, different=True)
        (dom, bus), xa, xb = meet
        point = _bus_name(dom, bus)
        topo = self.topology
        br = topo.bus_self(dom, bus)
        if br is not None and _pcie_unknown(br):
            return result(
                None,
                "R2.3",
                "unknown",
                f"{src} → {dst}: they meet on bus {point}, made by {br.address}, whose PCIe "
                "capability could not be read: conventional or PCIe, unknown",
                point=point,
                ingress=str(xa.address),
            )
        if br is not None and (br.pcie_type is None or br.pcie_type == PcieType.PCI_BRIDGE):
            return result(
                True,
                "R2.3",
                "conventional-bus",
                f"{src} → {dst}: possible: they meet on conventional PCI bus {point} behind "
                f"{self._what(br)} {br.address}, a shared bus where every device sees every "
                "transaction and there is no ACS (R2.3)",
                point=point,
                ingress=str(xa.address),
            )
        on_link = br is not None and br.pcie_type in _LINK_TYPES
        if xa.address.device == xb.address.device or on_link:
            return self._ingress(src, dst, xa, xb, point, "same-device", result)
        if br is None:
            return self._root_complex(src, dst, xa, result, different=False)
        return self._ingress(src, dst, xa, xb, point, "switch", result)

    def _redirect(self, x: PciFunction) -> tuple[bool, bool, str, str]:
        """Does ``x`` redirect peer requests to its peer functions upstream?

        ``(redirects, certain, why, rule)``: the kernel's
        ``pci_acs_enabled(x, RR)`` (R2.2, R2.3, R2.6), except that its "single
        function: no peer" shortcut (R2.3 step 4) is not taken, since here a
        peer exists: then the registers decide, as for a multifunction device.
        """
        v = self._verdict(x, AcsFlags.RR)
        if v.decided_by != "no-peer":
            rule = {"quirk": "R2.6", "registers": "R2.2"}.get(v.decided_by, "R2.3")
            return v.enabled, v.certain, self._why(x, v), rule
        shortcut = "is not marked multifunction (the kernel assumes no peer, R2.3), but"
        if x.acs is None:
            unknown = bool(x.unknown & {"acs", "config"})
            what = "an ACS capability that could not be read" if unknown else "no ACS capability"
            return False, not unknown, f"{shortcut} has {what}", "R2.3"
        required = AcsFlags.RR & (x.acs.cap | AcsFlags.EC)
        redirects = (x.acs.ctrl & required) == required
        regs = f"ACS cap {_flags(x.acs.cap)}, ctrl {_flags(x.acs.ctrl)}"
        return redirects, True, f"{shortcut} has {regs}", "R2.2"

    def _ingress(
        self,
        src: str,
        dst: str,
        xa: PciFunction,
        xb: PciFunction,
        point: str,
        case: str,
        result: _ResultFn,
    ) -> tuple[bool | None, Reason]:
        redirects, certain, why, rule = self._redirect(xa)
        where = (
            f"{xa.address} and {xb.address} are functions of one device on bus {point}"
            if case == "same-device"
            else f"they meet on switch bus {point}, entering through {xa.address}"
        )
        if not certain:
            return result(
                None,
                rule,
                case,
                f"{src} → {dst}: unknown: {where}, and whether {xa.address} redirects peer "
                f"requests (RR) is not known: it {why}",
                point=point,
                ingress=str(xa.address),
            )
        if redirects:
            text = (
                f"{src} → {dst}: blocked: {where}; {xa.address} {why}, so its peer requests "
                "are redirected upstream to the IOMMU (RR)"
            )
            return result(False, rule, case, text, point=point, ingress=str(xa.address))
        if case == "same-device":
            tail = "it may be routed between the functions internally, bypassing the IOMMU"
        else:
            tail = f"the switch routes it to {xb.address} directly, bypassing the IOMMU"
        text = (
            f"{src} → {dst}: possible: {where}; {xa.address} {why}, so it does not redirect "
            f"peer requests (no RR): {tail}"
        )
        return result(True, rule, case, text, point=point, ingress=str(xa.address))

    def _root_complex(
        self, src: str, dst: str, xa: PciFunction, result: _ResultFn, *, different: bool
    ) -> tuple[bool | None, Reason]:
        v = self._verdict(xa, AcsFlags.RR)
        rule = {"quirk": "R2.6", "registers": "R2.2"}.get(v.decided_by, "R2.3")
        where = (
            "they are below different root buses"
            if different
            else "they meet in the root complex, on root bus "
            f"{_bus_name(xa.address.domain, xa.address.bus)}"
        )
        case = "root-complex"
        why = self._why(xa, v)
        if v.certain and v.enabled and v.decided_by != "no-peer":
            text = (
                f"{src} → {dst}: blocked: {where}, and {xa.address} {why}, so its peer requests "
                "go upstream to the IOMMU"
            )
            return result(False, rule, case, text, ingress=str(xa.address))
        if not v.certain:
            text = (
                f"{src} → {dst}: unknown: {where}, and whether {xa.address} redirects peer "
                f"requests is not known: it {why}"
            )
        elif v.enabled:
            text = (
                f"{src} → {dst}: unknown: {where}; the kernel assumes {xa.address} has no peer "
                "(single-function, R2.3), but whether the root complex routes its requests to "
                "other ports without translating them is implementation-specific"
            )
        else:
            text = (
                f"{src} → {dst}: unknown: {where}; {xa.address} {why}, so it does not redirect "
                "peer requests, but whether the root complex routes peer-to-peer between its "
                "ports without translating it is implementation-specific"
            )
        return result(None, rule, case, text, ingress=str(xa.address))


# ---------------------------------------------------------------- functions
def explain(
    topology: Topology, device: str | PciAddress, *, quirks: Quirks | None = None
) -> Explanation:
    """Why ``device`` is in its canonical IOMMU group, as data.

    The canonical grouping is replayed in its own order up to the device;
    the device's ``pci_device_group`` decision, and those of the devices
    whose groups it joined, give the chain of rule applications; the ACS
    verdict of every bridge on its path says why each does or does not
    isolate it.

    Args:
        topology: the machine.
        device: a PCI address (``dddd:bb:dd.f`` or ``bb:dd.f``) or a platform
            device's name.
        quirks: the quirk table (default: the kernel's).

    Returns:
        The :class:`Explanation`.

    Raises:
        UnknownDevice: no such device.

    >>> from iommugroups import examples
    >>> x = explain(examples.desktop(), "02:00.0")
    >>> x.members, [r.kind for r in x.chain]
    (('0000:00:02.0', '0000:02:00.0'), ['upstream-bridge', 'root-bus', 'new-group'])
    >>> print(x.chain[0].text)
    0000:02:00.0 is below root port 0000:00:02.0, which has no ACS capability → it does not isolate its children (R4.2)
    >>> x.chain[0].facts["to"], x.to_json()["schema"]
    ('0000:00:02.0', 'iommugroups.explain/1')
    """  # noqa: E501
    return Explainer(topology, quirks=quirks).explain(device)


def explain_pair(
    topology: Topology,
    a: str | PciAddress,
    b: str | PciAddress,
    *,
    quirks: Quirks | None = None,
) -> PairExplanation:
    """Why ``a`` and ``b`` share a canonical group or not, and whether DMA connects them.

    Args:
        topology: the machine.
        a, b: two different devices (PCI addresses or platform names).
        quirks: the quirk table (default: the kernel's).

    Returns:
        The :class:`PairExplanation`: for one group, the links joining them
        and their shared cause; for two, what isolates them; both ways, the
        DMA reachability by the rule of the module documentation.

    Raises:
        UnknownDevice: no such device.
        ValueError: ``a`` and ``b`` are the same device.

    >>> from iommugroups import examples
    >>> p = explain_pair(examples.desktop(), "05:01.0", "05:02.0")
    >>> p.same_group, p.cause.kind, p.cause.facts["bridge"], p.a_can_reach_b
    (True, 'common-bridge', '0000:00:1e.0', True)
    >>> q = explain_pair(examples.desktop(), "08:00.0", "09:00.0")  # per-DSP groups (§6)
    >>> q.same_group, q.separation[-1].kind, q.a_can_reach_b
    (False, 'separate-tops', True)
    """
    return Explainer(topology, quirks=quirks).explain_pair(a, b)


def _lines(reasons: Iterable[Reason], bullet: str) -> list[str]:
    return [f"  {bullet if bullet != '#' else f'{i}.'} {r.text}" for i, r in enumerate(reasons, 1)]


def render_explanation(x: Explanation) -> str:
    """Plain text for an :class:`Explanation`.

    >>> from iommugroups import examples
    >>> print(render_explanation(explain(examples.desktop(), "00:1f.2")).splitlines()[0])
    0000:00:1f.2 is in IOMMU group 6 with 0000:00:1f.0, 0000:00:1f.3
    """
    if x.group is None:
        head = f"{x.device} is in no IOMMU group"
    else:
        others = [m for m in x.members if m != x.device]
        head = f"{x.device} is in IOMMU group {x.group}"
        head += f" with {', '.join(others)}" if others else ", alone"
    out = [head, "Why:", *_lines(x.chain, "#")]
    if x.acs:
        out += ["ACS on its path:", *_lines(x.acs, "-")]
    if x.unknown:
        out += ["Unknown:", *_lines(x.unknown, "-")]
    return "\n".join(out) + "\n"


def render_pair(x: PairExplanation) -> str:
    """Plain text for a :class:`PairExplanation`.

    >>> from iommugroups import examples
    >>> print(render_pair(explain_pair(examples.desktop(), "01:00.0", "01:00.1")).splitlines()[0])
    0000:01:00.0 and 0000:01:00.1 are in the same IOMMU group (7)
    """
    if x.same_group:
        out = [f"{x.a} and {x.b} are in the same IOMMU group ({x.group_a})"]
        if x.cause is not None:
            out += ["Cause:", f"  {x.cause.text}"]
        out += ["Links:", *_lines(x.chain, "#")]
    else:
        ga = "no group" if x.group_a is None else f"group {x.group_a}"
        gb = "no group" if x.group_b is None else f"group {x.group_b}"
        out = [f"{x.a} ({ga}) and {x.b} ({gb}) are in different IOMMU groups"]
        out += ["What separates them:", *_lines(x.separation, "-")]
    out += ["DMA between them:", f"  - {x.a_to_b.text}", f"  - {x.b_to_a.text}"]
    if x.acs:
        out += ["ACS on their paths:", *_lines(x.acs, "-")]
    if x.unknown:
        out += ["Unknown:", *_lines(x.unknown, "-")]
    return "\n".join(out) + "\n"
