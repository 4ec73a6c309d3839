"""``show``: a topology's IOMMU groups for people, with the reason for each group's shape.

The pure core of ``iommugroups show``. :func:`show` computes the canonical
groups (:func:`~iommugroups.canonical_groups`) and describes every group:
its members (address, class, ids, driver, port type, ACS state) and a
one-line *reason* for its shape, derived from how each member joined its
group in :func:`~iommugroups.pci_device_group` (never from canned text per
topology). With an observation (:class:`~iommugroups.Grouping`) the
kernel's group of every member is shown alongside.

Reasons
-------
Members are replayed in the canonical order, each through
``pci_device_group`` against the groups of the members before it, which
says *how* it joined (:class:`Join`). A group's reason is made of
:class:`Clause` objects, one per way of joining found in the group:

* ``below`` (R2.3, R4.2): members that joined through the upstream walk
  share the group of the topmost bridge ``T`` the walk passed (the top of
  their walk inside this group). ``T`` does not isolate: its path to the
  root is not ACS-isolated, and since the bridge above ``T`` (if any) is,
  ``T``'s *own* ACS is not enabled; the clause says why (no capability,
  controls off, a quirk, a bridge type that never isolates, unknown).
  "devices below root port 00:1c.0, which has no ACS capability (R2.3, R4.2)".
* ``behind`` (R3.4): members whose DMA alias is a bridge already in the
  group: "conventional PCI devices behind PCIe-to-PCI bridge 00:1e.0 (R3.4)".
* ``functions`` (R5.2): functions of one multifunction device without ACS
  isolation: "functions of multifunction device 01:00 without ACS (R5.2)".
* ``aliases`` (R3.6, R5.1): devices that are DMA aliases of each other.
* ``streams`` (R1.7): devices sharing IOMMU stream ids (SMMUv2 stream
  matching), grouped without ``pci_device_group``.
* A group of one device: ``isolated`` (its path to the root is ACS-isolated,
  R4.2), ``alone`` (nothing shares it: single-function, on a root bus,
  nothing below it, ...) or ``platform`` (a platform device, R1.5).

The reason is the clauses' texts joined with ``"; "``, ordered ``below``,
``behind``, ``functions``, ``aliases``, ``streams``.

"""

from __future__ import annotations

import enum
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import attrs

from .._bulk import paused_gc
from .._kernel.acs import REQ_ACS_FLAGS, AcsVerdict, pci_acs_verdict
from .._kernel.canonical import canonical_groups
from .._kernel.groups import Decisions, Grouping, device_sort_key
from .._kernel.model import PciAddress, PcieType, PciFunction, PlatformDevice, Topology, full_name
from .._kernel.pci_device_group import GroupingEnv
from .._kernel.quirks import QuirkContext, Quirks
from .._kernel.version import KernelVersion
from .names import (
    _and,
    _is_interconnect,
    _rule_key,
    _slot,
    class_name,
    device_kind,
    pcie_type_key,
    short_name,
)

__all__ = [
    "SHOW_SCHEMA",
    "AcsState",
    "Clause",
    "GroupView",
    "Join",
    "Member",
    "Related",
    "ShowResult",
    "acs_state",
    "show",
]


def __dir__() -> list[str]:
    return __all__


#: The ``schema`` value of :meth:`ShowResult.to_json`.
SHOW_SCHEMA = "iommugroups.show/1"


# =============================================================================
# ACS state
# =============================================================================


class AcsState(str, enum.Enum):
    """What grouping makes of a function's ACS (R2.2-R2.5), for display.

    The value is the label shown in brackets (``[ACS]``). :attr:`isolates`
    is ``pci_acs_enabled(fn, REQ_ACS_FLAGS)`` for every state but
    :attr:`UNKNOWN` (which grouping takes as absent: not isolated).
    """

    #: ACS capability with ``SV|RR|CR|UF`` enabled (those implemented).
    ENABLED = "ACS"
    #: ACS capability present, but some of ``SV|RR|CR|UF`` not enabled.
    OFF = "ACS off"
    #: No ACS capability where it is needed, or a type that never isolates
    #: (conventional PCI, PCIe-to-PCI and PCI-to-PCIe bridges).
    ABSENT = "no ACS"
    #: A device-specific quirk says it isolates (R2.5).
    QUIRK = "ACS quirk"
    #: A device-specific quirk says it does not isolate (R2.5).
    QUIRK_OFF = "no ACS (quirk)"
    #: Isolates without ACS, as a single-function endpoint or upstream port has
    #: no peer to reach (R2.3 step 4).
    NOT_NEEDED = "ACS n/a"
    #: The ACS capability (or PCIe type) could not be read; taken as absent.
    UNKNOWN = "ACS ?"

    def __str__(self) -> str:
        return self.value

    @property
    def isolates(self) -> bool:
        """Grouping counts the function as ACS-isolated (R2.3)."""
        return self in (AcsState.ENABLED, AcsState.QUIRK, AcsState.NOT_NEEDED)


_STATES = {
    "not-pcie": AcsState.ABSENT,
    "bridge-type": AcsState.ABSENT,
    "no-capability": AcsState.ABSENT,
    "no-peer": AcsState.NOT_NEEDED,
}


def _state(v: AcsVerdict) -> AcsState:
    """The :class:`AcsState` of a recorded ``pci_acs_enabled`` verdict (R2.3)."""
    if not v.certain:  # an unknown fact could make it isolate
        return AcsState.UNKNOWN
    if v.decided_by == "quirk":
        return AcsState.QUIRK if v.enabled else AcsState.QUIRK_OFF
    if v.decided_by == "registers":
        return AcsState.ENABLED if v.enabled else AcsState.OFF
    return _STATES[v.decided_by]


def acs_state(fn: PciFunction, ctx: QuirkContext) -> AcsState:
    """The :class:`AcsState` of ``fn`` in the topology and quirks of ``ctx``.

    >>> from iommugroups import examples
    >>> from iommugroups._kernel.quirks import make_context
    >>> topo = examples.desktop()
    >>> ctx = make_context(topo)
    >>> [acs_state(topo.get(a), ctx).value for a in ("00:01.0", "00:02.0", "06:00.0")]
    ['ACS', 'no ACS', 'ACS n/a']
    """
    return _state(pci_acs_verdict(fn, REQ_ACS_FLAGS, ctx))


def _why_not(v: AcsVerdict) -> str:
    """Why a device does not isolate, as a relative clause with ``{has}``-style verbs."""
    state = _state(v)
    if state is AcsState.QUIRK_OFF:
        return f"which an ACS quirk ({v.quirk}) says does not isolate"
    if state is AcsState.UNKNOWN:
        return "whose ACS {capability} could not be read (taken as absent)"
    if state is AcsState.OFF:
        return f"which {{has}} ACS with {v.missing.names()} not enabled"
    if v.decided_by == "not-pcie":
        return "which {is} conventional PCI (no ACS)"
    if v.decided_by == "bridge-type":
        return "which never {provides} ACS isolation"
    if v.decided_by == "no-capability":
        return "which {has} no ACS capability"
    return "whose path to the root lacks ACS isolation"  # pragma: no cover - not reached


_SINGULAR = {"has": "has", "is": "is", "provides": "provides", "capability": "capability"}
_PLURAL = {"has": "have", "is": "are", "provides": "provide", "capability": "capabilities"}

# =============================================================================
# Data
# =============================================================================


class Join(NamedTuple):
    """How a device joined its group, as ``pci_device_group`` found it.

    Attributes:
        step: ``"new"`` (it made the group, R4.4), ``"alias"`` (its DMA alias
            already had the group, R4.1/R3.4), ``"upstream"`` (a bridge above
            it had it, R4.2), ``"alias-group"`` (R5.1), ``"function-alias"``
            (R5.2), ``"platform"`` (a platform device's own group, R1.5),
            ``"streams"`` (IOMMU stream ids shared, R1.7), ``"vmd"`` (a device
            in a VMD domain, grouped as the VMD endpoint's DMA, R3.1) or
            ``"other"``.
        rule: the rule id of the step.
        via: the device whose group it joined, if any.
        pdev: the device steps 3-4 ran on (R4.3), for PCI devices.

    (A named tuple: a large machine shows one per device.)
    """

    step: str
    rule: str
    via: str | None = None
    pdev: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "rule": self.rule, "via": self.via, "pdev": self.pdev}


class Clause(NamedTuple):
    """One part of a group's reason (see the module docstring).

    Attributes:
        kind: ``"below"``, ``"behind"``, ``"functions"``, ``"aliases"``,
            ``"streams"``, ``"vmd"``, ``"isolated"``, ``"alone"``, ``"platform"`` or
            ``"other"``.
        rules: the rule ids it rests on.
        devices: the devices it names: the non-isolating top bridges
            (``below``), the alias bridges (``behind``), the functions of the
            multifunction devices (``functions``), the aliasing devices
            (``aliases``), the single member (``isolated``, ``alone``,
            ``platform``), the members (``streams``, ``other``); full names.
        text: the clause in words.
    """

    kind: str
    rules: tuple[str, ...]
    devices: tuple[str, ...]
    text: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rules": list(self.rules),
            "devices": list(self.devices),
            "text": self.text,
        }


class Member(NamedTuple):
    """One device of a group, as shown.

    Attributes:
        name: ``dddd:bb:dd.f``, or a platform device's name.
        node: the device (a :class:`~iommugroups.PciFunction` or
            :class:`~iommugroups.PlatformDevice`).
        acs: its :class:`AcsState` (``None`` for a platform device).
        show_acs: the ACS state matters for grouping (a bridge, or a function
            of a multifunction device): renderers show it.
        join: how it joined its group, as ``pci_device_group`` found it: a
            named tuple ``(step, rule, via, pdev)``: the step (``"new"``,
            R4.4; ``"alias"``, R4.1/R3.4; ``"upstream"``, R4.2;
            ``"alias-group"``, R5.1; ``"function-alias"``, R5.2;
            ``"platform"``, R1.5; ``"streams"``, R1.7; or ``"other"``), its
            rule id, the device whose group it joined, if any, and the device
            steps 3-4 ran on (R4.3), for PCI devices.
        observed_group: its group in the observation, if one was given.
        match: matches every filter applied (all members without filters).

    The display values (``shown``, ``class_code``, ``class_name``,
    ``vendor``, ``device``, ``driver``, ``kind``, ``bridge``) are read from
    the device itself (``node``) when asked for.

    (A named tuple: a large machine shows one per device.)
    """

    name: str
    node: PciFunction | PlatformDevice
    acs: AcsState | None
    show_acs: bool
    join: Join | None
    observed_group: int | None = None
    match: bool = True

    @property
    def shown(self) -> str:
        """The short form of the name (a PCI address in domain 0 without it)."""
        return short_name(self.name)

    @property
    def class_code(self) -> int | None:
        """The 24-bit class code (``None``: a platform device, or not known)."""
        fn = self.node
        if not isinstance(fn, PciFunction) or "class" in fn.unknown:
            return None
        return fn.class_code

    @property
    def class_name(self) -> str:
        """The ``pci.ids`` name of the class (``""`` for a platform device)."""
        fn = self.node
        if not isinstance(fn, PciFunction):
            return ""
        return "unknown class" if "class" in fn.unknown else class_name(fn.class_code)

    @property
    def vendor(self) -> int | None:
        """The vendor id (``None``: a platform device, or not known)."""
        fn = self.node
        return fn.vendor if isinstance(fn, PciFunction) and "ids" not in fn.unknown else None

    @property
    def device(self) -> int | None:
        """The device id (``None``: a platform device, or not known)."""
        fn = self.node
        return fn.device if isinstance(fn, PciFunction) and "ids" not in fn.unknown else None

    @property
    def driver(self) -> str | None:
        """The bound driver, if known."""
        return self.node.driver

    @property
    def kind(self) -> str:
        """``device_kind`` of a PCI function, or ``"platform device"``."""
        fn = self.node
        return device_kind(fn) if isinstance(fn, PciFunction) else "platform device"

    @property
    def bridge(self) -> bool:
        """A bridge header: VFIO never assigns it."""
        fn = self.node
        return isinstance(fn, PciFunction) and _is_interconnect(fn)

    @property
    def ids(self) -> str:
        """``vvvv:dddd``, or ``""`` for a platform device."""
        if self.vendor is None or self.device is None:
            return ""
        return f"{self.vendor:04x}:{self.device:04x}"

    def to_json(self) -> dict[str, Any]:
        cc = self.class_code
        return {
            "device": self.name,
            "address": self.shown,
            "class": None if cc is None else f"{cc >> 8:04x}",
            "class_code": None if cc is None else f"{cc:06x}",
            "class_name": self.class_name,
            "vendor": None if self.vendor is None else f"{self.vendor:04x}",
            "device_id": None if self.device is None else f"{self.device:04x}",
            "driver": self.driver,
            "kind": self.kind,
            "bridge": self.bridge,
            "acs": None if self.acs is None else self.acs.value,
            "joined": None if self.join is None else self.join.to_json(),
            "observed_group": self.observed_group,
            "match": self.match,
            "acs_state": None if self.acs is None else self.acs.name.lower().replace("_", "-"),
            "acs_isolates": None if self.acs is None else self.acs.isolates,
            "acs_known": None if self.acs is None else self.acs is not AcsState.UNKNOWN,
            "pcie_type": pcie_type_key(self.node) if isinstance(self.node, PciFunction) else None,
        }


def _groups_tuple(value: Iterable[GroupView]) -> tuple[GroupView, ...]:
    return tuple(value)


@attrs.frozen
class GroupView:
    """One IOMMU group, as shown.

    Attributes:
        id: the group id.
        members: in address order (platform devices by name).
        clauses: the reason, in parts, one per way of joining found in the
            group. Each has a ``kind`` (``"below"``, ``"behind"``,
            ``"functions"``, ``"aliases"``, ``"streams"``, ``"isolated"``,
            ``"alone"``, ``"platform"`` or ``"other"``), the ``rules`` it
            rests on, the ``devices`` it names (full names: the
            non-isolating top bridges for ``below``, the alias bridges for
            ``behind``, the functions of the multifunction devices for
            ``functions``, the aliasing devices for ``aliases``, the single
            member for ``isolated``, ``alone`` and ``platform``, the members
            otherwise) and its ``text``.
        observed: the observed groups of its members (empty without an
            observation).
        observed_same: with an observation, whether exactly these devices
            form one observed group; ``None`` without one.
    """

    id: int
    members: tuple[Member, ...]
    clauses: tuple[Clause, ...]
    observed: tuple[int, ...] = ()
    observed_same: bool | None = None

    @property
    def reason(self) -> str:
        """The one-line reason for the group's shape."""
        return "; ".join(c.text for c in self.clauses)

    @property
    def rules(self) -> tuple[str, ...]:
        """The rule ids the reason rests on, in rule order."""
        return tuple(sorted({r for c in self.clauses for r in c.rules}, key=_rule_key))

    def to_json(self, *, observed: bool) -> dict[str, Any]:
        return {
            "group": self.id,
            "reason": self.reason,
            "rules": list(self.rules),
            "clauses": [c.to_json() for c in self.clauses],
            "observed_groups": list(self.observed) if observed else None,
            "observed_same": self.observed_same,
            "members": [m.to_json() for m in self.members],
        }


@attrs.frozen
class Related:
    """What must go to a VM with a device (see the module docstring).

    Attributes:
        device: the device (full name).
        group: its group id (``None``: it has none, and cannot be assigned).
        reason: its group's reason (or why it has no group).
        together: the group's members that are not bridges (the device
            included, unless it is a bridge): all bound to ``vfio-pci`` (or ``pci-stub``, or no
            driver), the ones used given to the same VM.
        bridges: the group's bridges: never assigned, may stay with the host.
        bus_reset: devices outside the group a secondary bus reset of the
            device's bus also resets.
        bus_reset_groups: the groups of ``bus_reset``.
    """

    device: str
    group: int | None
    reason: str
    together: tuple[str, ...]
    bridges: tuple[str, ...] = ()
    bus_reset: tuple[str, ...] = ()
    bus_reset_groups: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "group": self.group,
            "reason": self.reason,
            "together": list(self.together),
            "bridges": list(self.bridges),
            "bus_reset": list(self.bus_reset),
            "bus_reset_groups": list(self.bus_reset_groups),
        }


@attrs.frozen
class ShowResult:
    """What :func:`show` found, possibly filtered.

    Attributes:
        groups: the groups shown, by id.
        ungrouped: devices with no group -> why, by name.
        observed: the observation, if given.
        observed_only: observed devices that are not in the topology, with
            their observed group.
        filters: the filters applied, in words (empty: nothing filtered).
        related: set by :func:`by_related`.
        topology: the topology grouped (observed SR-IOV VFs added).
        grouping: the canonical grouping.
        all_groups: every group, whatever the filters.
    """

    groups: tuple[GroupView, ...] = attrs.field(converter=_groups_tuple)
    ungrouped: tuple[tuple[str, str], ...]
    observed: Grouping | None
    observed_only: tuple[tuple[str, int], ...]
    topology: Topology = attrs.field(eq=False, repr=False)
    grouping: Grouping = attrs.field(eq=False, repr=False)
    all_groups: tuple[GroupView, ...] = attrs.field(eq=False, repr=False)
    filters: tuple[str, ...] = ()
    related: Related | None = None

    def group(self, gid: int) -> GroupView:
        """The group ``gid`` (among all groups, shown or not).

        Raises:
            KeyError: no such group.
        """
        for g in self.all_groups:
            if g.id == gid:
                return g
        raise KeyError(f"no IOMMU group {gid}")

    def to_json(self) -> dict[str, Any]:
        """The result as JSON data, schema ``"iommugroups.show/1"``.

        Keys:

        * ``schema``: ``"iommugroups.show/1"``.
        * ``topology``: the topology's name; ``strategy``: ``"canonical"``.
        * ``filters``: the filters applied, in words (empty list: none).
        * ``groups``: the groups shown, by id: ``group`` (int), ``reason``
          (one line), ``rules`` (rule ids), ``clauses`` (``{"kind", "rules",
          "devices", "text"}``, see :attr:`GroupView.clauses`), ``observed_groups``
          (observed group ids of its members; null without an observation),
          ``observed_same`` (these devices are exactly one observed group;
          null without an observation), ``members``.
        * a member: ``device`` (``dddd:bb:dd.f`` or a platform name),
          ``address`` (short form), ``class`` (``"0604"``) and ``class_code``
          (``"060400"``), ``class_name``, ``vendor`` and ``device_id``
          (4 hex digits), ``driver``, ``kind`` (``"root port"``,
          ``"endpoint"``, ``"conventional PCI"``, ``"SR-IOV VF"``,
          ``"platform device"``, ...), ``bridge`` (bool), ``acs`` (an
          :class:`AcsState` label such as ``"ACS"``, ``"no ACS"``,
          ``"ACS off"``, ``"ACS quirk"``, ``"ACS ?"``), ``joined``
          (``{"step", "rule", "via", "pdev"}``, see :attr:`Member.join`),
          ``observed_group``, ``match`` (bool); ids, class and ``acs`` are
          null for a platform device.
        * ``ungrouped``: ``[{"device", "why"}]``.
        * ``observed``: null, or ``{"source", "groups": [{"group",
          "devices"}]}`` (full names, by group id).
        * ``observed_only``: ``[{"device", "observed_group"}]``.
        * ``related``: null, or ``{"device", "group", "reason", "together",
          "bridges", "bus_reset", "bus_reset_groups"}`` (see :class:`Related`).

        Within one schema version keys are only ever added.
        """
        observed: dict[str, Any] | None = None
        if self.observed is not None:
            observed = {
                "source": self.observed.source,
                "groups": [
                    {"group": g, "devices": [full_name(m) for m in self.observed.groups[g]]}
                    for g in sorted(self.observed.groups)
                ],
            }
        return {
            "schema": SHOW_SCHEMA,
            "topology": self.topology.name,
            "strategy": self.grouping.strategy,
            "filters": list(self.filters),
            "groups": [g.to_json(observed=self.observed is not None) for g in self.groups],
            "ungrouped": [{"device": d, "why": w} for d, w in self.ungrouped],
            "observed": observed,
            "observed_only": [{"device": d, "observed_group": g} for d, g in self.observed_only],
            "related": None if self.related is None else self.related.to_json(),
        }


# =============================================================================
# show
# =============================================================================


def show(
    topology: Topology,
    *,
    observed: Grouping | None = None,
    quirks: Quirks | None = None,
    kernel: KernelVersion | str | None = None,
) -> ShowResult:
    """The canonical IOMMU groups of ``topology``, described for people.

    Args:
        topology: the machine.
        observed: the groups a kernel made, shown beside the canonical ones;
            SR-IOV VFs it names that the topology does not list are added as
            their PF's SR-IOV capability places them (as ``check`` does).
        quirks: the quirk tables (default: the kernel's).
        kernel: the kernel version modelled (default: the newest).

    Returns:
        Every group by id, with members in address order and its reason.

    >>> from iommugroups import examples
    >>> result = show(examples.desktop())
    >>> result.group(7).reason
    'functions of multifunction device 01:00 without ACS (R5.2)'
    >>> result.group(1).reason
    'alone: its path to the root is ACS-isolated (R4.2)'
    >>> print(result.group(2).reason)
    devices below root port 00:02.0, which has no ACS capability (R2.3, R4.2)
    """
    with paused_gc():  # many small values, kept: see iommugroups._bulk
        return _show(topology, observed, quirks, kernel)


def _show(
    topology: Topology,
    observed: Grouping | None,
    quirks: Quirks | None,
    kernel: KernelVersion | str | None,
) -> ShowResult:
    obs_of: dict[str, int] = {}
    obs_members: dict[int, set[str]] = {}
    if observed is not None:
        for gid in sorted(observed.groups):
            for m in observed.groups[gid]:
                name = full_name(m)
                if name not in obs_of:
                    obs_of[name] = gid
                    obs_members.setdefault(gid, set()).add(name)
        topology, _added = topology.with_vfs(obs_of)
    grouping = canonical_groups(topology, quirks=quirks, record=True, kernel=kernel)
    decisions = grouping.decisions
    assert isinstance(decisions, Decisions)  # what record=True returns
    env = decisions.env  # the run's own ACS verdicts and walks
    by_name = topology.by_name()
    joins = {s[0]: _join(s) for s in decisions.summaries() if s[1] is not None}
    platform = {p.name: p for p in topology.platform_devices}
    explainer = _Explainer(topology, by_name, env, joins)
    make = _Members(by_name, platform, env)

    views: list[GroupView] = []
    for gid in sorted(grouping.groups):
        names = grouping.groups[gid]
        members = tuple(make(n, joins.get(n), obs_of.get(n) if observed else None) for n in names)
        seen: tuple[int, ...] = ()
        same: bool | None = None
        if observed is not None:
            seen = tuple(sorted({g for n in names if (g := obs_of.get(n)) is not None}))
            same = len(seen) == 1 and obs_members[seen[0]] == set(names)
        views.append(GroupView(gid, members, explainer.clauses(names), seen, same))
    known = by_name.keys() | platform.keys() if observed is not None else set()
    return ShowResult(
        groups=views,
        ungrouped=tuple(sorted(grouping.ungrouped.items(), key=lambda i: device_sort_key(i[0]))),
        observed=observed,
        observed_only=tuple(
            sorted(
                ((n, g) for n, g in obs_of.items() if n not in known),
                key=lambda i: device_sort_key(i[0]),
            )
        ),
        topology=topology,
        grouping=grouping,
        all_groups=tuple(views),
    )


class _Members:
    """Makes the :class:`Member` values of one topology (what many share, made once)."""

    def __init__(
        self,
        by_name: Mapping[str, PciFunction],
        platform: Mapping[str, PlatformDevice],
        env: GroupingEnv,
    ) -> None:
        self.by_name = by_name
        self.platform = platform
        self.env = env
        self._verdicts = env.ctx.acs_cache

    def __call__(self, name: str, join: Join | None, observed_group: int | None) -> Member:
        fn = self.by_name.get(name)
        if fn is None:
            return Member(name, self.platform[name], None, False, join, observed_group)
        verdict = self._verdicts.get(fn.address)  # the run's own verdicts, read directly
        if verdict is None:
            verdict = self.env.acs_verdict(fn)
        return Member(
            name,
            fn,
            _state(verdict),
            fn.is_bridge or self.env.topology.is_multifunction(fn),
            join,
            observed_group,
        )


def _join(summary: tuple[str, int | None, str, str, str | None, str | None]) -> Join:
    """How a device joined its group, from the decision the grouping recorded."""
    _name, _group, how, rule, via, pdev = summary
    if how == "generic":
        return Join("platform", rule)
    if how == "stream-sharing":
        return Join("streams", rule, via)
    return Join(how, rule, via, pdev)


def _address(fn: PciFunction) -> PciAddress:
    return fn.address


class _Explainer:
    """Builds the clauses of each group from the members' joins and the topology."""

    def __init__(
        self,
        topology: Topology,
        by_name: Mapping[str, PciFunction],
        env: GroupingEnv,
        joins: Mapping[str, Join],
    ) -> None:
        self.topology = topology
        self.by_name = by_name
        self.env = env
        self.joins = joins
        self.platform = {p.name for p in topology.platform_devices}
        #: one object per distinct clause text and rule list (many groups share them)
        self._texts: dict[str, str] = {}
        self._rules: dict[tuple[str, ...], tuple[str, ...]] = {}

    def _top_in_group(
        self,
        domain: int,
        bus: int,
        group: Container[str],
        memo: dict[tuple[int, int], str | None],
    ) -> str | None:
        """The topmost bridge in ``group`` of the upward walk (R4.2) from ``bus``.

        The walk from a bus is its first bridge, then the walk from that
        bridge's own bus (``GroupingEnv.upstream``): memoised per bus in
        ``memo``, the walks of a deep chain of buses cost one step per bus.
        """
        pending: list[tuple[tuple[int, int], str]] = []
        key = (domain, bus)
        top: str | None = None
        while key not in memo:
            walked, _stop = self.env.upstream(*key)
            if not walked:
                memo[key] = None
                break
            first = walked[0]
            pending.append((key, str(first.address)))
            key = (first.address.domain, first.address.bus)
        top = memo[key]
        for k, name in reversed(pending):
            if top is None and name in group:
                top = name
            memo[k] = top
        return memo[(domain, bus)]

    def clauses(self, names: Sequence[str]) -> tuple[Clause, ...]:
        """The clauses of the group made of ``names`` (see the module docstring)."""
        if len(names) == 1:
            return (self._alone(names[0]),)
        tops: dict[str, None] = {}  # names, as insertion-ordered sets
        behind: dict[str, None] = {}
        # per bus: the topmost bridge in the group of the walk (R4.2) from that bus
        walks: dict[tuple[int, int], str | None] = {}
        slots: dict[tuple[int, int, int], list[str]] = {}
        aliases: list[str] = []
        streams: list[str] = []
        vmd: dict[str, list[str]] = {}  # endpoint -> the devices of its domain
        other: list[str] = []
        group_set = set(names)
        for name in names:
            join = self.joins.get(name)
            if join is None:
                continue
            if join.step == "upstream":
                walk_aliases = self.env.plan(self.by_name[name])[0]
                # the walk (R4.2) starts on the bus of the last alias (R4.1), or the device's
                start = walk_aliases[-1][0].address if walk_aliases else self.by_name[name].address
                top = self._top_in_group(start.domain, start.bus, group_set, walks)
                tops[top if top is not None else (join.via or name)] = None
            elif join.step == "alias" and join.via is not None and join.via != name:
                behind[join.via] = None
            elif join.step == "function-alias" and join.pdev is not None:
                a = self.by_name[join.pdev].address
                slots.setdefault((a.domain, a.bus, a.device), [])
            elif join.step == "alias-group":
                for d in (join.pdev, join.via):
                    if d is not None and d not in aliases:
                        aliases.append(d)
            elif join.step == "streams":
                streams.append(name)
            elif join.step == "vmd" and join.pdev is not None:
                vmd.setdefault(join.pdev, []).append(name)
            elif join.step == "other":  # pragma: no cover - see _joins
                other.append(name)
        out: list[Clause] = []
        by_name = self.by_name
        if tops:
            out.append(self._below_clause(sorted((by_name[t] for t in tops), key=_address)))
        if behind:
            out.append(self._behind_clause(sorted((by_name[b] for b in behind), key=_address)))
        if slots:
            for name in names:  # the slots' functions R5.2 looks at (not isolated)
                if name in self.platform:
                    continue
                fn = self.by_name[name]
                a = fn.address
                key = (a.domain, a.bus, a.device)
                if key in slots and not self.env.acs_enabled(fn):
                    slots[key].append(name)
            fns = [n for key in sorted(slots) for n in slots[key]]
            shown = _and([_slot(PciAddress(d, b, s, 0)) for d, b, s in sorted(slots)])
            plural = "s" if len(slots) > 1 else ""
            out.append(
                Clause(
                    "functions",
                    ("R5.2",),
                    tuple(fns),
                    f"functions of multifunction device{plural} {shown} without ACS (R5.2)",
                )
            )
        if aliases:
            ordered = sorted(aliases, key=device_sort_key)
            out.append(
                Clause(
                    "aliases",
                    ("R3.6", "R5.1"),
                    tuple(ordered),
                    f"DMA aliases of each other: {_and([short_name(a) for a in ordered])} "
                    "(R3.6, R5.1)",
                )
            )
        if streams:  # the devices that joined by stream ids, and whom they joined
            vias = {j.via for n in streams if (j := self.joins[n]).via is not None}
            devs = tuple(sorted({*streams, *vias}, key=device_sort_key))
            out.append(
                Clause(
                    "streams",
                    ("R1.7",),
                    devs,
                    f"sharing IOMMU stream ids: {_and([short_name(d) for d in devs])} (R1.7)",
                )
            )
        for endpoint, members in vmd.items():
            domain = members[0].split(":", 1)[0]
            out.append(
                Clause(
                    "vmd",
                    ("R3.1",),
                    (endpoint, *members),
                    f"devices of VMD domain {domain}, which do their DMA as the VMD endpoint "
                    f"{short_name(endpoint)} (R3.1)",
                )
            )
        if other or not out:  # pragma: no cover - every join above is explained
            out.append(Clause("other", (), tuple(names), "grouped by the IOMMU driver"))
        return tuple(out)

    def _below_clause(self, tops: Sequence[PciFunction]) -> Clause:
        # one phrase per (kind, why), in the order of the first bridge
        parts: dict[tuple[str, str], list[PciFunction]] = {}
        for t in tops:
            parts.setdefault((device_kind(t), _why_not(self.env.acs_verdict(t))), []).append(t)
        phrases = []
        for (kind, why), fns in parts.items():
            many = len(fns) > 1
            words = _PLURAL if many else _SINGULAR
            phrases.append(
                f"{kind}{'s' if many else ''} {_and([short_name(f.address) for f in fns])}, "
                + why.format(**words)
            )
        return Clause(
            "below",
            ("R2.3", "R4.2"),
            tuple(str(t.address) for t in tops),
            f"devices below {'; and '.join(phrases)} (R2.3, R4.2)",
        )

    def _behind_clause(self, bridges: Sequence[PciFunction]) -> Clause:
        phrases = []
        for br in bridges:
            kind = device_kind(br)
            if br.pcie_type == PcieType.PCI_BRIDGE:
                phrases.append(f"conventional PCI devices behind {kind} {short_name(br.address)}")
            else:
                phrases.append(
                    f"devices behind {kind} {short_name(br.address)}, "
                    "which DMA with its requester id"
                )
        return Clause(
            "behind",
            ("R3.4",),
            tuple(str(b.address) for b in bridges),
            f"{'; '.join(phrases)} (R3.4)",
        )

    def _alone(self, name: str) -> Clause:
        if name in self.platform:
            join = self.joins.get(name)
            if join is not None and join.step == "streams":  # pragma: no cover - needs 2 members
                return Clause("streams", ("R1.7",), (name,), "sharing IOMMU stream ids (R1.7)")
            return Clause(
                "platform",
                ("R1.5",),
                (name,),
                "alone: a platform device gets a group of its own (R1.5)",
            )
        topo = self.topology
        fn = self.by_name[name]
        if self.env.acs_path_enabled(fn):
            return Clause(
                "isolated",
                ("R4.2",),
                (name,),
                "alone: its path to the root is ACS-isolated (R4.2)",
            )
        parts: list[str] = []
        rules = ["R4.2"]
        if not topo.is_multifunction(fn):
            parts.append("single-function")
        else:
            rules.append("R5.2")
            peers = self.env.slot_peers(fn)
            grouped = [t for t in peers if str(t.address) in self.joins]
            if self.env.acs_enabled(fn):
                parts.append("its ACS isolates it from the other functions of its slot")
            elif grouped and all(self.env.acs_enabled(t) for t in grouped):
                parts.append("the other functions of its slot are ACS-isolated")
            elif grouped:  # pragma: no cover - a non-isolated peer would share its group
                parts.append("the other functions of its slot are in other groups")
            elif peers:
                parts.append("the other functions of its slot have no group")
            else:
                parts.append("no other function of its slot is present")
        walked, stop = self.env.upstream(fn.address.domain, fn.address.bus)
        if walked:
            parts.append("the bridges above it that do not isolate it have no group")
        elif stop is not None:
            parts.append(
                f"{device_kind(stop)} {short_name(stop.address)} above it is ACS-isolated"
            )
        else:
            parts.append("on a root bus")
        if fn.is_bridge:
            below = fn.secondary_bus is not None and topo.devices_on_bus(
                fn.address.domain, fn.secondary_bus
            )
            parts.append(
                "the devices below it have other groups or none" if below else "nothing below it"
            )
        text = f"alone: {', '.join(parts)} ({', '.join(rules)})"
        shared = tuple(rules)
        return Clause(
            "alone",
            self._rules.setdefault(shared, shared),
            (name,),
            self._texts.setdefault(text, text),
        )
