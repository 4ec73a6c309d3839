"""``show``: a topology's IOMMU groups for people, with the reason for each group's shape.

The pure core of ``iommugroups show``. :func:`show` computes the canonical
groups (:func:`~iommugroups.canonical_groups`) and describes every group:
its members (address, class, ids, driver, port type, ACS state) and a
one-line *reason* for its shape, derived from how each member joined its
group in :func:`~iommugroups.pci_device_group` (never from canned text per
topology). With an observation (:class:`~iommugroups.ObservedGroups`) the
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

Filters
-------
:func:`by_class`, :func:`by_group`, :func:`by_address` and :func:`by_related`
take a :class:`ShowResult` and return one. Filters work on *members* and
show whole *groups*: a member matches when it matches every filter applied
so far (:attr:`Member.match`), and a group is kept when one of its members
matches; the other members are still shown, because a group is what VFIO
assigns. Filtering never raises for "no match" (the result is empty); a
malformed class keyword raises :class:`ShowFilterError`.

Class keywords (:data:`CLASS_KEYWORDS`; a keyword matches a class code whose
hex digits start with one of its prefixes):

============  ==================  ===============================================
keyword       class code prefix   PCI class
============  ==================  ===============================================
``gpu``       ``03``              display controllers (VGA, XGA, 3D, other)
``usb``       ``0c03``            USB controllers (UHCI, OHCI, EHCI, xHCI, ...)
``net``       ``02``              network controllers (Ethernet, InfiniBand, ...)
``nvme``      ``0108``            non-volatile memory controllers (NVMe)
``audio``     ``0401``, ``0403``  multimedia audio controllers, HD audio devices
``storage``   ``01``              mass storage controllers (SATA, SAS, RAID, NVMe)
``bridge``    ``06``              bridges (host, ISA, PCI-PCI, ...)
============  ==================  ===============================================

A class filter may also be given as 2, 4 or 6 hex digits (``0c03``,
``030000``), which match as a prefix of the 6-digit class code.

What goes to a VM together (:func:`related`)
--------------------------------------------
VFIO assigns IOMMU *groups*, not devices. For a device ``D`` in group ``G``:

* ``together``: every member of ``G`` that is not a PCI bridge (header
  type 0, and platform devices), ``D`` included unless it is a bridge.
  Before ``G`` can be used by VFIO, *each* of them must be bound to
  ``vfio-pci`` (or ``pci-stub``, or no driver): none may stay with a host
  driver, and all the ones a VM uses must go to the same VM (one VFIO
  container). A member not given to the VM is still lost to the host.
* ``bridges``: members with a bridge header (PCI-PCI, CardBus). They are
  never assigned and may stay bound to their host driver (VFIO accepts
  any driver on a bridge; ``pcieport`` does no DMA of its own), but they
  share the group's IOMMU domain: once ``G`` belongs to the VM, their own
  DMA is translated by the VM's mappings (their MSI error notifications
  may be affected).
* ``bus_reset``: devices outside ``G`` that a secondary bus reset of the
  bus ``D`` sits on would reset too (everything on that bus and below it).
  They matter only when ``D`` cannot be reset on its own (no function-level
  reset, which the model does not know): VFIO's hot reset then needs the
  user to own every group among them. Empty for a device on a root bus (no
  bridge can reset it) and for an SR-IOV VF (VFs must support FLR).

Rendering
---------
:func:`render_show` (text, ANSI colour only when asked: :func:`use_color`
decides from the stream and the environment), :meth:`ShowResult.to_json`
(schema ``"iommugroups.show/1"``) and :func:`render_tree` (the bus tree, like
``lspci -tv``, with group numbers and ACS states) are pure functions.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

import attrs

from .._errors import InvalidAddress, IommuGroupsError, UnknownDevice
from .._io.reading import ObservedGroups
from .._kernel.acs import REQ_ACS_FLAGS, pci_acs_path_enabled
from .._kernel.canonical import canonical_groups
from .._kernel.groups import Grouping, device_sort_key
from .._kernel.model import (
    HEADER_CARDBUS,
    HEADER_NORMAL,
    AcsFlags,
    PciAddress,
    PcieType,
    PciFunction,
    PlatformDevice,
    Topology,
)
from .._kernel.pci_device_group import GroupingEnv, pci_device_group
from .._kernel.quirks import QuirkContext, Quirks, make_context
from .check import with_observed_vfs

__all__ = [
    "CLASS_KEYWORDS",
    "SHOW_SCHEMA",
    "AcsState",
    "Clause",
    "GroupView",
    "Join",
    "Member",
    "Related",
    "ShowFilterError",
    "ShowResult",
    "acs_state",
    "by_address",
    "by_class",
    "by_group",
    "by_related",
    "class_name",
    "device_kind",
    "related",
    "render_related",
    "render_show",
    "render_tree",
    "short_name",
    "show",
    "use_color",
]


def __dir__() -> list[str]:
    return __all__


#: The ``schema`` value of :meth:`ShowResult.to_json`.
SHOW_SCHEMA = "iommugroups.show/1"

#: Class keyword -> class-code prefixes (hex digits of the 24-bit class code).
CLASS_KEYWORDS: Mapping[str, tuple[str, ...]] = {
    "gpu": ("03",),
    "usb": ("0c03",),
    "net": ("02",),
    "nvme": ("0108",),
    "audio": ("0401", "0403"),
    "storage": ("01",),
    "bridge": ("06",),
}

#: The base-class names of ``pci.ids`` (subclass names come from the bundled subset).
_BASE_CLASSES: Mapping[int, str] = {
    0x00: "Unclassified device",
    0x01: "Mass storage controller",
    0x02: "Network controller",
    0x03: "Display controller",
    0x04: "Multimedia controller",
    0x05: "Memory controller",
    0x06: "Bridge",
    0x07: "Communication controller",
    0x08: "Generic system peripheral",
    0x09: "Input device controller",
    0x0A: "Docking station",
    0x0B: "Processor",
    0x0C: "Serial bus controller",
    0x0D: "Wireless controller",
    0x0E: "Intelligent controller",
    0x0F: "Satellite communications controller",
    0x10: "Encryption controller",
    0x11: "Signal processing controller",
    0x12: "Processing accelerators",
    0x13: "Non-Essential Instrumentation",
    0x40: "Coprocessor",
    0xFF: "Unassigned class",
}

_KIND_BY_TYPE: Mapping[PcieType, str] = {
    PcieType.ENDPOINT: "endpoint",
    PcieType.LEG_END: "legacy endpoint",
    PcieType.ROOT_PORT: "root port",
    PcieType.UPSTREAM: "upstream port",
    PcieType.DOWNSTREAM: "downstream port",
    PcieType.PCI_BRIDGE: "PCIe-to-PCI bridge",
    PcieType.PCIE_BRIDGE: "PCI-to-PCIe bridge",
    PcieType.RC_END: "integrated endpoint",
    PcieType.RC_EC: "RC event collector",
}

#: Facts whose absence changes grouping (as in ``check``).
_GROUPING_FACTS = frozenset({"acs", "pcie", "config"})


class ShowFilterError(IommuGroupsError, ValueError):
    """A filter argument is malformed (e.g. an unknown class keyword)."""


# =============================================================================
# Names
# =============================================================================


@functools.lru_cache(maxsize=1)
def _subclass_names() -> dict[int, str]:
    raw = resources.files("iommugroups._data").joinpath("pci_ids_subset.json").read_text("utf-8")
    return {int(code, 16): name for code, name in json.loads(raw)["subclasses"].items()}


def class_name(class_code: int) -> str:
    """The ``pci.ids`` name of a 24-bit class code, as ``lspci`` prints it.

    The subclass name when known, else the base class name, else
    ``"Class xxxx"``.

    >>> class_name(0x030000), class_name(0x0C0330), class_name(0x010802)
    ('VGA compatible controller', 'USB controller', 'Non-Volatile memory controller')
    >>> class_name(0x02FF00), class_name(0xAB0000)
    ('Network controller', 'Class ab00')
    """
    name = _subclass_names().get(class_code >> 8)
    if name is not None:
        return name
    return _BASE_CLASSES.get(class_code >> 16, f"Class {class_code >> 8:04x}")


def short_name(name: str | PciAddress) -> str:
    """A device as listings show it: ``bb:dd.f`` in domain 0, else in full.

    >>> short_name("0000:01:00.0"), short_name("000a:11:00.1"), short_name("HISI0162:01")
    ('01:00.0', '000a:11:00.1', 'HISI0162:01')
    """
    if isinstance(name, PciAddress):
        addr = name
    else:
        try:
            addr = PciAddress.parse(name)
        except InvalidAddress:
            return name
    text = str(addr)
    return text[5:] if addr.domain == 0 else text


def _slot(addr: PciAddress) -> str:
    text = f"{addr.bus:02x}:{addr.device:02x}"
    return text if addr.domain == 0 else f"{addr.domain:04x}:{text}"


def device_kind(fn: PciFunction) -> str:
    """What a PCI function is, in words: its PCIe port type, or conventional.

    >>> from iommugroups import examples
    >>> topo = examples.desktop()
    >>> device_kind(topo.get("00:1c.0")), device_kind(topo.get("05:01.0"))
    ('root port', 'conventional PCI')
    """
    if fn.physfn is not None:
        return "SR-IOV VF"
    if fn.pcie_type is not None:
        return _KIND_BY_TYPE.get(fn.pcie_type, f"PCIe type {int(fn.pcie_type):#x}")
    if fn.is_bridge:
        return "CardBus bridge" if fn.header_type == HEADER_CARDBUS else "conventional PCI bridge"
    return "conventional PCI"


def _is_interconnect(fn: PciFunction) -> bool:
    """A bridge header (VFIO's ``hdr_type != PCI_HEADER_TYPE_NORMAL``)."""
    return fn.header_type != HEADER_NORMAL


def _norm(name: str) -> str:
    try:
        return str(PciAddress.parse(name))
    except InvalidAddress:
        return name


def _rule_key(rule: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in rule.lstrip("R").split("."))
    except ValueError:
        return (999,)


def _and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


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


def _acs(fn: PciFunction, ctx: QuirkContext) -> tuple[AcsState, str]:
    """``(state, quirk name)`` following ``pci_acs_enabled`` (R2.3) step by step."""
    verdict, quirk = ctx.quirks.acs_decision(fn, REQ_ACS_FLAGS, ctx)
    if verdict is not None:  # R2.3 step 1
        name = quirk.name if quirk is not None else ""
        return (AcsState.QUIRK if verdict else AcsState.QUIRK_OFF), name
    t = fn.pcie_type
    state: AcsState
    if t is None or t in (PcieType.PCIE_BRIDGE, PcieType.PCI_BRIDGE, PcieType.RC_EC):
        state = AcsState.ABSENT  # R2.3 steps 2-3
    elif t in (PcieType.DOWNSTREAM, PcieType.ROOT_PORT) or ctx.topology.is_multifunction(fn):
        if fn.acs is None:
            state = AcsState.ABSENT
        else:
            required = REQ_ACS_FLAGS.value & (fn.acs.cap.value | AcsFlags.EC.value)
            enabled = fn.acs.ctrl.value & required == required
            state = AcsState.ENABLED if enabled else AcsState.OFF
    else:
        state = AcsState.NOT_NEEDED  # R2.3 step 4
    relevant = fn.unknown & _GROUPING_FACTS
    if t is None and "pcie" not in fn.unknown:
        relevant -= {"acs"}  # known conventional PCI: ACS cannot matter (R2.3 step 2)
    if not state.isolates and relevant:
        state = AcsState.UNKNOWN
    return state, ""


def acs_state(fn: PciFunction, ctx: QuirkContext) -> AcsState:
    """The :class:`AcsState` of ``fn`` in the topology and quirks of ``ctx``.

    >>> from iommugroups import examples, make_context
    >>> topo = examples.desktop()
    >>> ctx = make_context(topo)
    >>> [acs_state(topo.get(a), ctx).value for a in ("00:01.0", "00:02.0", "06:00.0")]
    ['ACS', 'no ACS', 'ACS n/a']
    """
    return _acs(fn, ctx)[0]


def _why_not(fn: PciFunction, ctx: QuirkContext) -> str:
    """Why ``fn`` does not isolate, as a relative clause with ``{has}``-style verbs."""
    state, quirk = _acs(fn, ctx)
    if state is AcsState.QUIRK_OFF:
        return f"which an ACS quirk ({quirk}) says does not isolate"
    if state is AcsState.UNKNOWN:
        return "whose ACS {capability} could not be read (taken as absent)"
    if state is AcsState.OFF:
        assert fn.acs is not None
        required = REQ_ACS_FLAGS & (fn.acs.cap | AcsFlags.EC)
        missing = AcsFlags(required.value & ~fn.acs.ctrl.value)
        return f"which {{has}} ACS with {missing.names()} not enabled"
    if state is AcsState.ABSENT:
        if fn.pcie_type is None:
            return "which {is} conventional PCI (no ACS)"
        if fn.pcie_type in (PcieType.PCIE_BRIDGE, PcieType.PCI_BRIDGE, PcieType.RC_EC):
            return "which never {provides} ACS isolation"
        return "which {has} no ACS capability"
    return "whose path to the root lacks ACS isolation"  # pragma: no cover - not reached


_SINGULAR = {"has": "has", "is": "is", "provides": "provides", "capability": "capability"}
_PLURAL = {"has": "have", "is": "are", "provides": "provide", "capability": "capabilities"}


# =============================================================================
# Data
# =============================================================================


@attrs.frozen
class Join:
    """How a device joined its group, as ``pci_device_group`` found it.

    Attributes:
        step: ``"new"`` (it made the group, R4.4), ``"alias"`` (its DMA alias
            already had the group, R4.1/R3.4), ``"upstream"`` (a bridge above
            it had it, R4.2), ``"alias-group"`` (R5.1), ``"function-alias"``
            (R5.2), ``"platform"`` (a platform device's own group, R1.5),
            ``"streams"`` (IOMMU stream ids shared, R1.7) or ``"other"``.
        rule: the rule id of the step.
        via: the device whose group it joined, if any.
        pdev: the device steps 3-4 ran on (R4.3), for PCI devices.
    """

    step: str
    rule: str
    via: str | None = None
    pdev: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "rule": self.rule, "via": self.via, "pdev": self.pdev}


_STEP_RULES = {
    "new": "R4.4",
    "alias": "R4.1",
    "upstream": "R4.2",
    "alias-group": "R5.1",
    "function-alias": "R5.2",
}


@attrs.frozen
class Clause:
    """One part of a group's reason (see the module docstring).

    Attributes:
        kind: ``"below"``, ``"behind"``, ``"functions"``, ``"aliases"``,
            ``"streams"``, ``"isolated"``, ``"alone"``, ``"platform"`` or
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


@attrs.frozen
class Member:
    """One device of a group, as shown.

    Attributes:
        name: ``dddd:bb:dd.f``, or a platform device's name.
        shown: the short form (``short_name``).
        class_code: 24-bit class code (``None`` for a platform device).
        class_name: its ``pci.ids`` name (``""`` for a platform device).
        vendor, device: ids (``None`` for a platform device).
        driver: bound driver, if known.
        kind: ``device_kind``, or ``"platform device"``.
        bridge: a bridge header (VFIO never assigns it).
        acs: its :class:`AcsState` (``None`` for a platform device).
        show_acs: the ACS state matters for grouping (a bridge, or a function
            of a multifunction device): renderers show it.
        join: how it joined its group.
        observed_group: its group in the observation, if one was given.
        match: matches every filter applied (all members without filters).
    """

    name: str
    shown: str
    class_code: int | None
    class_name: str
    vendor: int | None
    device: int | None
    driver: str | None
    kind: str
    bridge: bool
    acs: AcsState | None
    show_acs: bool
    join: Join | None
    observed_group: int | None = None
    match: bool = True

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
        }


def _groups_tuple(value: Iterable[GroupView]) -> tuple[GroupView, ...]:
    return tuple(value)


@attrs.frozen
class GroupView:
    """One IOMMU group, as shown.

    Attributes:
        id: the group id.
        members: in address order (platform devices by name).
        clauses: the reason, in parts.
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
    observed: ObservedGroups | None
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
          "devices", "text"}``, see :class:`Clause`), ``observed_groups``
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
          (``{"step", "rule", "via", "pdev"}``, see :class:`Join`),
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
                    {"group": g, "devices": [_norm(m) for m in self.observed.groups[g]]}
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
    observed: ObservedGroups | None = None,
    quirks: Quirks | None = None,
) -> ShowResult:
    """The canonical IOMMU groups of ``topology``, described for people.

    Args:
        topology: the machine.
        observed: the groups a kernel made, shown beside the canonical ones;
            SR-IOV VFs it names that the topology does not list are added as
            their PF's SR-IOV capability places them (as ``check`` does).
        quirks: the quirk tables (default: the kernel's).

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
    obs_of: dict[str, int] = {}
    obs_members: dict[int, set[str]] = {}
    if observed is not None:
        for gid in sorted(observed.groups):
            for m in observed.groups[gid]:
                name = _norm(m)
                if name not in obs_of:
                    obs_of[name] = gid
                    obs_members.setdefault(gid, set()).add(name)
        topology, _added = with_observed_vfs(topology, obs_of)
    grouping = canonical_groups(topology, quirks=quirks)
    ctx = make_context(topology, quirks)
    env = GroupingEnv(ctx)
    by_name = {str(f.address): f for f in topology.functions}
    joins = _joins(by_name, grouping, env)
    platform = {p.name: p for p in topology.platform_devices}
    explainer = _Explainer(topology, by_name, env, joins)

    views: list[GroupView] = []
    for gid in sorted(grouping.groups):
        names = grouping.groups[gid]
        members = tuple(
            _member(n, by_name, platform, ctx, joins.get(n), obs_of.get(n) if observed else None)
            for n in names
        )
        seen: tuple[int, ...] = ()
        same: bool | None = None
        if observed is not None:
            seen = tuple(sorted({g for n in names if (g := obs_of.get(n)) is not None}))
            same = len(seen) == 1 and obs_members[seen[0]] == set(names)
        views.append(GroupView(gid, members, explainer.clauses(names), seen, same))
    known = {str(f.address) for f in topology.functions} | set(platform)
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


def _member(
    name: str,
    by_name: Mapping[str, PciFunction],
    platform: Mapping[str, PlatformDevice],
    ctx: QuirkContext,
    join: Join | None,
    observed_group: int | None,
) -> Member:
    if name in platform:
        dev = platform[name]
        return Member(
            name=name,
            shown=name,
            class_code=None,
            class_name="",
            vendor=None,
            device=None,
            driver=dev.driver,
            kind="platform device",
            bridge=False,
            acs=None,
            show_acs=False,
            join=join,
            observed_group=observed_group,
        )
    fn = by_name[name]
    class_known = "class" not in fn.unknown
    ids_known = "ids" not in fn.unknown
    return Member(
        name=name,
        shown=short_name(fn.address),
        class_code=fn.class_code if class_known else None,
        class_name=class_name(fn.class_code) if class_known else "unknown class",
        vendor=fn.vendor if ids_known else None,
        device=fn.device if ids_known else None,
        driver=fn.driver,
        kind=device_kind(fn),
        bridge=_is_interconnect(fn),
        acs=acs_state(fn, ctx),
        show_acs=fn.is_bridge or ctx.topology.is_multifunction(fn),
        join=join,
        observed_group=observed_group,
    )


def _joins(
    by_name: Mapping[str, PciFunction], grouping: Grouping, env: GroupingEnv
) -> dict[str, Join]:
    """Replay the canonical log: how each device joined its group.

    Each PCI device goes through ``pci_device_group`` against the groups of
    the devices logged before it (groups only grow, R1.3, so their final ids
    are the ids they had then). A device whose decision differs from the
    group it got was grouped by something else: IOMMU stream ids (R1.7).
    """
    out: dict[str, Join] = {}
    groups: dict[PciAddress, int] = {}
    first: dict[int, str] = {}
    for line in grouping.log:
        if line.action != "add" or line.device in out:
            continue
        name, gid = line.device, line.group
        founder = first.setdefault(gid, name)
        fn = by_name.get(name)
        if fn is None:  # a platform device
            out[name] = (
                Join("platform", "R1.5") if founder == name else Join("streams", "R1.7", founder)
            )
            continue
        decision = pci_device_group(fn, groups, env)
        groups[fn.address] = gid
        via = None if decision.via is None else str(decision.via)
        if decision.group is None:
            out[name] = (
                Join("new", "R4.4", pdev=str(decision.pdev))
                if founder == name
                else Join("streams", "R1.7", founder, str(decision.pdev))
            )
        elif decision.group == gid:
            rule = _STEP_RULES.get(decision.step, decision.step)
            if decision.step == "alias" and via != name:
                rule = "R3.4"
            out[name] = Join(decision.step, rule, via, str(decision.pdev))
        else:  # pragma: no cover - canonical grouping follows pci_device_group
            out[name] = Join("other", "", via, str(decision.pdev))
    return out


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
        self.ctx = env.ctx
        self.joins = joins
        self.platform = {p.name for p in topology.platform_devices}

    def clauses(self, names: Sequence[str]) -> tuple[Clause, ...]:
        """The clauses of the group made of ``names`` (see the module docstring)."""
        if len(names) == 1:
            return (self._alone(names[0]),)
        tops: list[PciFunction] = []
        behind: list[PciFunction] = []
        slots: dict[tuple[int, int, int], list[str]] = {}
        aliases: list[str] = []
        streams: list[str] = []
        other: list[str] = []
        group_set = set(names)
        for name in names:
            join = self.joins.get(name)
            if join is None:
                continue
            if join.step == "upstream":
                fn = self.by_name[name]
                walked = self.env.plan(fn)[1]
                inside = [b for b in walked if str(b.address) in group_set]
                top = inside[-1] if inside else self.by_name[join.via or name]
                if top not in tops:
                    tops.append(top)
            elif join.step == "alias" and join.via is not None and join.via != name:
                br = self.by_name[join.via]
                if br not in behind:
                    behind.append(br)
            elif join.step == "function-alias" and join.pdev is not None:
                a = PciAddress.parse(join.pdev)
                slots.setdefault((a.domain, a.bus, a.device), [])
            elif join.step == "alias-group":
                for d in (join.pdev, join.via):
                    if d is not None and d not in aliases:
                        aliases.append(d)
            elif join.step == "streams":
                streams.append(name)
            elif join.step == "other":  # pragma: no cover - see _joins
                other.append(name)
        out: list[Clause] = []
        if tops:
            out.append(self._below_clause(sorted(tops, key=lambda f: f.address)))
        if behind:
            out.append(self._behind_clause(sorted(behind, key=lambda f: f.address)))
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
        if other or not out:  # pragma: no cover - every join above is explained
            out.append(Clause("other", (), tuple(names), "grouped by the IOMMU driver"))
        return tuple(out)

    def _below_clause(self, tops: Sequence[PciFunction]) -> Clause:
        # one phrase per (kind, why), in the order of the first bridge
        parts: dict[tuple[str, str], list[PciFunction]] = {}
        for t in tops:
            parts.setdefault((device_kind(t), _why_not(t, self.ctx)), []).append(t)
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
        if pci_acs_path_enabled(fn, None, REQ_ACS_FLAGS, self.ctx):
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
            if self.env.acs_enabled(fn):
                parts.append("its ACS isolates it from the other functions of its slot")
            elif peers:
                parts.append("the other functions of its slot are ACS-isolated")
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
        return Clause(
            "alone", tuple(rules), (name,), f"alone: {', '.join(parts)} ({', '.join(rules)})"
        )


# =============================================================================
# Filters
# =============================================================================


def _filtered(
    result: ShowResult, keep: Callable[[Member, GroupView], bool], label: str
) -> ShowResult:
    groups: list[GroupView] = []
    for g in result.groups:
        members = tuple(
            m if not m.match or keep(m, g) else attrs.evolve(m, match=False) for m in g.members
        )
        if any(m.match for m in members):
            groups.append(attrs.evolve(g, members=members))
    return attrs.evolve(result, groups=groups, filters=(*result.filters, label))


def _class_prefixes(keyword: str) -> tuple[str, ...]:
    key = keyword.strip().lower()
    if key in CLASS_KEYWORDS:
        return CLASS_KEYWORDS[key]
    if len(key) in (2, 4, 6) and all(c in "0123456789abcdef" for c in key):
        return (key,)
    known = ", ".join(CLASS_KEYWORDS)
    raise ShowFilterError(
        f"unknown device class {keyword!r}: use one of {known}, or a class code "
        "as 2, 4 or 6 hex digits (e.g. 0c03)"
    )


def by_class(result: ShowResult, *keywords: str) -> ShowResult:
    """Keep the groups with a member of one of the classes (see :data:`CLASS_KEYWORDS`).

    Raises:
        ShowFilterError: a keyword is neither known nor a hex class code.

    >>> from iommugroups import examples
    >>> [g.id for g in by_class(show(examples.desktop()), "gpu").groups]
    [7, 10]
    """
    prefixes = tuple(p for k in keywords for p in _class_prefixes(k))

    def keep(m: Member, _g: GroupView) -> bool:
        return m.class_code is not None and f"{m.class_code:06x}".startswith(prefixes)

    return _filtered(result, keep, f"class {', '.join(keywords)}")


def by_group(result: ShowResult, *ids: int) -> ShowResult:
    """Keep the groups with one of the ids (unknown ids match nothing).

    >>> from iommugroups import examples
    >>> [g.id for g in by_group(show(examples.desktop()), 2, 99).groups]
    [2]
    """
    wanted = frozenset(ids)
    return _filtered(
        result, lambda _m, g: g.id in wanted, f"group {', '.join(str(i) for i in ids)}"
    )


def by_address(result: ShowResult, *prefixes: str) -> ShowResult:
    """Keep the groups with a member whose address starts with a prefix.

    A prefix matches the short form (``01:00`` matches ``01:00.0`` and
    ``01:00.1`` in domain 0) or the full form (``0000:01``), case-insensitive;
    platform devices match by name.

    >>> from iommugroups import examples
    >>> [m.shown for g in by_address(show(examples.desktop()), "01:00").groups for m in g.members]
    ['01:00.0', '01:00.1']
    """
    wanted = tuple(p.strip().lower() for p in prefixes if p.strip())

    def keep(m: Member, _g: GroupView) -> bool:
        return bool(wanted) and (
            m.shown.lower().startswith(wanted) or m.name.lower().startswith(wanted)
        )

    return _filtered(result, keep, f"address {', '.join(prefixes)}")


def _bus_children(topology: Topology) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Bus -> its child buses (behind bridges, or virtual SR-IOV buses)."""
    children: dict[tuple[int, int], set[tuple[int, int]]] = {}
    buses = {(f.address.domain, f.address.bus) for f in topology.functions}
    for f in topology.functions:
        if f.is_bridge and f.secondary_bus is not None:
            buses.add((f.address.domain, f.secondary_bus))
    for dom, bus in buses:
        parent = topology.parent_bus(dom, bus)
        if parent is not None:
            children.setdefault((dom, parent), set()).add((dom, bus))
    return {k: sorted(v) for k, v in children.items()}


def _under_bus(
    topology: Topology,
    start: tuple[int, int],
    children: Mapping[tuple[int, int], Sequence[tuple[int, int]]],
) -> list[PciFunction]:
    """Every function on bus ``start`` and on the buses below it."""
    out: list[PciFunction] = []
    stack = [start]
    seen: set[tuple[int, int]] = set()
    while stack:
        key = stack.pop()
        if key in seen:  # pragma: no cover - the topology has no bus loops
            continue
        seen.add(key)
        out.extend(topology.devices_on_bus(*key))
        stack.extend(children.get(key, ()))
    return out


def related(result: ShowResult, device: str | PciAddress) -> Related:
    """What must go to a VM together with ``device`` (see the module docstring).

    Raises:
        UnknownDevice: ``device`` is not in the topology.

    >>> from iommugroups import examples
    >>> r = related(show(examples.desktop()), "03:00.0")
    >>> r.group, r.together, r.bridges
    (4, ('0000:03:00.0', '0000:04:00.0'), ('0000:00:1c.0', '0000:00:1c.1'))
    """
    topology = result.topology
    platform = {p.name for p in topology.platform_devices}
    name = device if isinstance(device, str) and device in platform else None
    if name is None:
        try:
            name = str(device if isinstance(device, PciAddress) else PciAddress.parse(device))
        except InvalidAddress:
            raise UnknownDevice(f"no device {device} in the topology") from None
        if name not in topology:
            raise UnknownDevice(f"no device {device} in the topology")
    gid = result.grouping.group_of(name)
    if gid is None:
        why = result.grouping.ungrouped.get(name, "no group")
        return Related(name, None, f"no group: {why}", (name,))
    view = result.group(gid)
    together = tuple(m.name for m in view.members if not m.bridge)
    bridges = tuple(m.name for m in view.members if m.bridge)
    reset: list[str] = []
    if name not in platform:
        fn = topology.get(name)
        above = topology.bridge_above(fn.address)
        if above is not None and fn.physfn is None and above.secondary_bus is not None:
            start = (fn.address.domain, above.secondary_bus)
            members = {m.name for m in view.members}
            under = _under_bus(topology, start, _bus_children(topology))
            reset = sorted(
                (str(f.address) for f in under if str(f.address) not in members),
                key=device_sort_key,
            )
    groups = sorted({g for d in reset if (g := result.grouping.group_of(d)) is not None})
    return Related(name, gid, view.reason, together, bridges, tuple(reset), tuple(groups))


def by_related(result: ShowResult, device: str | PciAddress) -> ShowResult:
    """Keep ``device``'s group, with :func:`related` in :attr:`ShowResult.related`.

    Raises:
        UnknownDevice: ``device`` is not in the topology.
    """
    rel = related(result, device)
    out = _filtered(
        result,
        lambda m, g: g.id == rel.group and m.name == rel.device,
        f"related to {short_name(rel.device)}",
    )
    return attrs.evolve(out, related=rel)


# =============================================================================
# Rendering
# =============================================================================

_RESET = "\x1b[0m"
_BOLD = "1"
_DIM = "2"
_RED = "31"
_GREEN = "32"
_YELLOW = "33"
_CYAN = "36"
_GROUP_COLOURS = ("34", "35", "36", "32", "33", "94", "95", "96")


def use_color(stream: object, env: Mapping[str, str]) -> bool:
    """Whether to write ANSI colour to ``stream``.

    No when ``NO_COLOR`` is set to a non-empty value (https://no-color.org),
    when ``TERM`` is ``dumb``, or when the stream is not a terminal.

    >>> import io
    >>> use_color(io.StringIO(), {})
    False
    """
    if env.get("NO_COLOR"):
        return False
    if env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    if not callable(isatty):
        return False
    try:
        return bool(isatty())
    except (ValueError, OSError):  # a closed stream
        return False


def _paint(text: str, code: str, on: bool) -> str:
    return f"\x1b[{code}m{text}{_RESET}" if on and text else text


def _acs_colour(state: AcsState) -> str:
    if state is AcsState.UNKNOWN or state in (AcsState.QUIRK, AcsState.QUIRK_OFF):
        return _YELLOW
    return _GREEN if state.isolates else _RED


#: A cell of a rendered table: (plain text, text as written); widths use the plain text.
_Cell = tuple[str, str]


def _cell(text: str, code: str | None = None, on: bool = False) -> _Cell:
    return (text, _paint(text, code, on) if code is not None else text)


def _join_cells(cells: Sequence[_Cell], widths: Sequence[int]) -> str:
    parts = []
    for (plain, painted), width in zip(cells, widths, strict=False):
        parts.append(painted + " " * (width - len(plain)))
    return "  ".join(parts).rstrip()


def _member_cells(m: Member, *, observed: bool, color: bool) -> list[_Cell]:
    cls = "" if m.class_code is None else f"{m.class_name} [{m.class_code >> 8:04x}]"
    kind = _cell(m.kind)
    if m.show_acs and m.acs is not None:
        label = f"[{m.acs.value}]"
        kind = (f"{m.kind} {label}", f"{m.kind} {_paint(label, _acs_colour(m.acs), color)}")
    cells = [
        _cell(m.shown, _BOLD, color and m.match),
        _cell(cls),
        _cell(f"[{m.ids}]" if m.ids else ""),
        _cell(m.driver or "-"),
        kind,
    ]
    if observed:
        cells.append(_cell("obs -" if m.observed_group is None else f"obs {m.observed_group}"))
    return cells


def render_show(result: ShowResult, *, color: bool = False) -> str:
    """The result as text, ending with a newline; ANSI colour only if ``color``.

    Per group: a header (id, size, observed groups), the reason, then one
    line per member: address, class name and code, ids, driver, kind with
    the ACS state where it matters, observed group. With filters applied,
    matching members are marked ``*``.

    >>> from iommugroups import examples
    >>> text = render_show(show(examples.desktop()))
    >>> print("\\n".join(text.splitlines()[6:9]))
    IOMMU Group 2  (2 devices)
      why: devices below root port 00:02.0, which has no ACS capability (R2.3, R4.2)
        00:02.0  PCI bridge [0604]                      [1b36:000c]  -  root port [no ACS]
    """
    out: list[str] = []
    observed = result.observed is not None
    marks = bool(result.filters)
    if result.related is not None:
        out.extend(_related_lines(result.related, color))
        out.append("")
    rows = {
        (g.id, m.name): _member_cells(m, observed=observed, color=color and marks)
        for g in result.groups
        for m in g.members
    }
    ncols = max((len(c) for c in rows.values()), default=0)
    widths = [max((len(c[i][0]) for c in rows.values()), default=0) for i in range(ncols)]
    for g in result.groups:
        n = len(g.members)
        info = f"{n} device{'s' if n != 1 else ''}"
        differs = False
        if observed:
            if not g.observed:
                info += "; observed: in no group"
            else:
                label = "group" if len(g.observed) == 1 else "groups"
                info += f"; observed: {label} {', '.join(map(str, g.observed))}"
            if not g.observed_same:
                info += ", differs" if g.observed else ""
                differs = True
        info_text = _paint(info, _RED, color) if differs else info
        out.append(f"{_paint(f'IOMMU Group {g.id}', _BOLD, color)}  ({info_text})")
        out.append(f"  {_paint('why:', _DIM, color)} {_paint(g.reason, _CYAN, color)}")
        for m in g.members:
            mark = "*" if marks and m.match else " "
            out.append(f"  {mark} {_join_cells(rows[(g.id, m.name)], widths)}")
    if not result.groups:
        out.append("No IOMMU group matches the filters." if result.filters else "No IOMMU groups.")
    if result.ungrouped and not result.filters:
        out.append("")
        out.append("Devices without a group:")
        out.extend(f"  {short_name(d)}: {why}" for d, why in result.ungrouped)
    if result.observed_only and not result.filters:
        out.append("")
        out.append("Observed, but not in the topology:")
        out.extend(f"  {short_name(d)}: observed group {g}" for d, g in result.observed_only)
    return "\n".join(out) + "\n"


def _related_lines(rel: Related, color: bool) -> list[str]:
    def names(items: Sequence[str]) -> str:
        return " ".join(short_name(d) for d in items) if items else "none"

    head = _paint(f"Related to {short_name(rel.device)}", _BOLD, color)
    if rel.group is None:
        return [f"{head}: {rel.reason}; it cannot be assigned with VFIO"]
    lines = [
        f"{head}: IOMMU group {rel.group} ({rel.reason})",
        f"  assign together: {names(rel.together)}"
        " (each bound to vfio-pci, pci-stub or no driver; all used by one VM)",
    ]
    if rel.bridges:
        lines.append(
            f"  bridges in the group: {names(rel.bridges)} (not assigned; may keep pcieport)"
        )
    if rel.bus_reset:
        groups = ", ".join(str(g) for g in rel.bus_reset_groups)
        lines.append(
            f"  a bus reset also resets: {names(rel.bus_reset)} (group"
            f"{'s' if len(rel.bus_reset_groups) > 1 else ''} {groups}; only without FLR)"
        )
    return lines


def render_related(rel: Related, *, color: bool = False) -> str:
    """:func:`related`'s answer as text, ending with a newline.

    >>> from iommugroups import examples
    >>> print(render_related(related(show(examples.desktop()), "01:00.1")), end="")
    Related to 01:00.1: IOMMU group 7 (functions of multifunction device 01:00 without ACS (R5.2))
      assign together: 01:00.0 01:00.1 (each bound to vfio-pci, pci-stub or no driver; all used by one VM)
    """  # noqa: E501
    return "\n".join(_related_lines(rel, color)) + "\n"


# --------------------------------------------------------------------- tree


def render_tree(
    topology: Topology,
    grouping: Grouping,
    *,
    quirks: Quirks | None = None,
    color: bool = False,
) -> str:
    """The bus tree, like ``lspci -tv``, with each device's group and bridges' ACS.

    Every root bus (by domain, then number) is a ``[dddd:bb]`` line; below
    it, one line per PCI function on the bus, in device order, indented four
    columns per bus level: a bridge's secondary bus is one level below the
    bridge's own bus, so its devices are drawn under the bridge; an SR-IOV
    virtual bus is a ``[dddd:bb] SR-IOV virtual bus`` line after the devices
    of its PF's bus, its VFs one level below. A device line: tree prefix,
    address, class name and code, ids, kind; a bridge adds its ACS state
    (``[ACS]``, ``[no ACS]``, ``[ACS off]``, ``[ACS quirk]``, ``[ACS ?]``,
    ... see :class:`AcsState`) and its bus range; then, in one column,
    ``group N`` (or ``no group``). Platform devices follow, one line each.

    >>> from iommugroups import PciFunction, PcieType, Topology, canonical_groups
    >>> topo = Topology([
    ...     PciFunction("00:00.0", vendor=0x8086, device=0x3E30, class_code=0x060000),
    ...     PciFunction("00:1c.0", vendor=0x8086, device=0xA110, class_code=0x060400,
    ...                 header_type=1, pcie_type=PcieType.ROOT_PORT, secondary_bus=1),
    ...     PciFunction("01:00.0", vendor=0x144D, device=0xA808, class_code=0x010802,
    ...                 pcie_type=PcieType.ENDPOINT),
    ... ])
    >>> print(render_tree(topo, canonical_groups(topo)), end="")
    [0000:00]
    +-- 00:00.0  Host bridge [0600] [8086:3e30]  conventional PCI                 group 0
    \\-- 00:1c.0  PCI bridge [0604] [8086:a110]  root port [no ACS] bus 01         group 1
        \\-- 01:00.0  Non-Volatile memory controller [0108] [144d:a808]  endpoint  group 1
    """
    ctx = make_context(topology, quirks)
    children = _bus_children(topology)
    # (body as (plain, painted), group tag or None for a bus line, group id)
    rows: list[tuple[_Cell, str | None, int | None]] = []

    def device_row(prefix: str, fn: PciFunction) -> None:
        text = (
            f"{prefix}{short_name(fn.address)}  {class_name(fn.class_code)} "
            f"[{fn.class_code >> 8:04x}] [{fn.vendor:04x}:{fn.device:04x}]  {device_kind(fn)}"
        )
        painted = text
        if fn.is_bridge:
            state = acs_state(fn, ctx)
            sec = fn.secondary_bus
            sub = fn.subordinate_bus if fn.subordinate_bus is not None else sec
            buses = f"bus {sec:02x}" if sec == sub else f"buses {sec:02x}-{sub:02x}"
            label = f"[{state.value}]"
            painted = f"{text} {_paint(label, _acs_colour(state), color)} {buses}"
            text = f"{text} {label} {buses}"
        gid = grouping.group_of(fn.address)
        rows.append(((text, painted), "no group" if gid is None else f"group {gid}", gid))

    def walk(key: tuple[int, int], indent: str) -> None:
        items: list[PciFunction | tuple[int, int]] = list(topology.devices_on_bus(*key))
        items += [c for c in children.get(key, ()) if topology.bus_self(*c) is None]
        for i, item in enumerate(items):
            last = i == len(items) - 1
            prefix = indent + ("\\-- " if last else "+-- ")
            deeper = indent + ("    " if last else "|   ")
            if isinstance(item, PciFunction):
                device_row(prefix, item)
                if item.is_bridge and item.secondary_bus is not None:
                    walk((item.address.domain, item.secondary_bus), deeper)
            else:  # an SR-IOV virtual bus
                rows.append(
                    (
                        _cell(f"{prefix}[{item[0]:04x}:{item[1]:02x}] SR-IOV virtual bus"),
                        None,
                        None,
                    )
                )
                walk(item, deeper)

    roots = sorted(
        {
            (f.address.domain, f.address.bus)
            for f in topology.functions
            if topology.is_root_bus(f.address.domain, f.address.bus)
        }
    )
    for key in roots:
        rows.append((_cell(f"[{key[0]:04x}:{key[1]:02x}]"), None, None))
        walk(key, "")
    for p in topology.platform_devices:
        gid = grouping.group_of(p.name)
        label = "no group" if gid is None else f"group {gid}"
        rows.append((_cell(f"{p.name}  platform device ({p.bus})"), label, gid))

    width = max((len(body[0]) for body, tag, _g in rows if tag is not None), default=0)
    out: list[str] = []
    for (plain, painted), tag, gid in rows:
        if tag is None:
            out.append(painted)
            continue
        code = _DIM if gid is None else _GROUP_COLOURS[gid % len(_GROUP_COLOURS)]
        out.append(f"{painted}{' ' * (width - len(plain) + 2)}{_paint(tag, code, color)}")
    return "\n".join(out) + ("\n" if out else "")
