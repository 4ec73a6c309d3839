"""Reasons: rule applications in words and as checkable facts (``explain``'s values).

The values :func:`~iommugroups.explain` and :func:`~iommugroups.explain_pair`
return, and the words they use for an ACS verdict. Nothing here decides a
rule: every verdict put into words is one the rule modules recorded
(:class:`~iommugroups._kernel.acs.AcsVerdict`).


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

JSON (schema ``"iommugroups.explain/1"``)
-----------------------------------------
A reason is ``{"kind", "rule", "device", "text", "facts": {str: str}}``.
:meth:`Explanation.to_json` and :meth:`PairExplanation.to_json` document
their keys. Consumers should key on ``kind`` and ``facts``, never on
``text``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from .._kernel.acs import AcsVerdict
from .._kernel.model import AcsFlags, PcieType, PciFunction, Topology
from .._kernel.pci_device_group import Step

__all__ = [
    "EXPLAIN_SCHEMA",
    "LINK_KINDS",
    "AcsWords",
    "Explanation",
    "Facts",
    "PairExplanation",
    "Reason",
]

#: The ``schema`` value of every ``to_json`` of these values.
EXPLAIN_SCHEMA = "iommugroups.explain/1"

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
        facts: what decided, as an immutable, hashable ``str -> str``
            mapping whose keys depend on ``kind`` (a link between two
            devices has ``from`` and ``to``; an ``"acs"`` reason has
            ``decided_by``, ``enabled``, ``acs_cap``, ``acs_ctrl``...).
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


def _rid(rid: int) -> str:
    return f"{rid >> 8:02x}:{(rid >> 3) & 0x1F:02x}.{rid & 7}"


def _yn(value: bool) -> str:
    return "yes" if value else "no"


def _flags(value: AcsFlags) -> str:
    return value.names()


def _bus_name(domain: int, bus: int) -> str:
    return f"{domain:04x}:{bus:02x}"


def _pcie_unknown(fn: PciFunction) -> bool:
    return fn.pcie_type is None and bool(fn.unknown & {"pcie", "config"})


class AcsWords:
    """ACS verdicts (:class:`~iommugroups._kernel.acs.AcsVerdict`) in words, for one topology."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology

    def what(self, fn: PciFunction) -> str:
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

    def type_fact(self, fn: PciFunction) -> str:
        if _pcie_unknown(fn):
            return "unknown"
        return fn.pcie_type.name if fn.pcie_type is not None else "conventional"

    def why(self, fn: PciFunction, v: AcsVerdict) -> str:
        """Why ``fn``'s verdict is what it is, as a clause after "which"."""
        if v.decided_by == "quirk":
            word = "isolated" if v.enabled else "not isolated"
            return f"is declared {word} by quirk {v.quirk} ({fn.vendor:04x}:{fn.device:04x})"
        if v.decided_by == "not-pcie":
            if _pcie_unknown(fn):
                return "has a PCIe capability that could not be read (unknown; taken as absent)"
            return "is conventional PCI (never ACS-isolated)"
        if v.decided_by == "bridge-type":
            return f"is a {self.what(fn)} (never ACS-isolated)"
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

    @staticmethod
    def acs_word(fn: PciFunction, which: str) -> str:
        if fn.acs is None:
            return "unknown" if fn.unknown & {"acs", "config"} else "absent"
        return _flags(fn.acs.cap if which == "cap" else fn.acs.ctrl)
