"""``passthrough``: can a device go to a VM, and what has to go with it.

The pure core of ``iommugroups passthrough DEVICE...``. For each device
named (by address, slot, ``vendor:device`` id or class name; see
:data:`DEVICE_CLASSES`), :func:`passthrough` answers what a VFIO user asks
first:

* **the group**: the kernel's, when the input carries the groups a kernel
  made (a snapshot, sysfs, ``lspci -vv`` with groups, a capture), else the
  prediction (:func:`~iommugroups.canonical_groups`); which one is said
  (``groups_from``). Where both exist, :func:`~iommugroups.check`'s verdict on
  the device says whether they agree; nothing is derived a second time.
* **every member and its role**: the *card* (the named device and the other
  functions of its slot, and their VFs), a *bridge* that stays with the host
  (``vfio-pci`` binds no bridge header; host and ISA bridges are the
  platform's own), or another *endpoint* that must go to the VM with it (or
  at least lose its host driver): :mod:`iommugroups._kernel.vfio`.
* **the verdict**: ``alone`` when the group holds only the card and bridges;
  ``with-others`` when it holds another endpoint; ``isolation-hole`` when
  the kernel's group is smaller than the rules allow (``check``: split);
  ``no-group`` when the device has none (no IOMMU translates it);
  ``unknown`` when the answer depends on facts the input lacks (an ACS
  capability not readable, a bridge missing from the input, a member the
  input does not list). For the prediction, isolation only ever splits
  groups, so a card alone in the group as read (every unknown fact taken as
  absent) is alone however the facts turn out; other endpoints that are in
  its group only when the facts are absent make the verdict unknown.
* **what to paste**: the ``vfio-pci.ids=`` kernel parameter, the
  ``/etc/modprobe.d`` lines, ``driverctl`` lines, a libvirt ``<hostdev>``
  per endpoint, and the host drivers still bound (a driver the input does
  not show is *unknown*, never assumed absent).
* **reset**: :func:`~iommugroups._kernel.reset.pci_reset_methods` per
  endpoint (FLR, PM and AF FLR need configuration-space bits the model does
  not keep: pass ``configs`` to decide them).
* **when the group is too big**: the free slots (root and downstream ports
  with nothing below them) where moving the card (the ``what-if`` change
  :class:`~iommugroups.MoveCard`) gives it a group of its own, each verified
  by grouping the moved machine again; and what ``pcie_acs_override=`` (the
  ``what-if`` change :class:`~iommugroups.AcsOverride`) would do, and its
  cost. The slot search is bounded (:data:`MAX_SLOT_TRIES` per device,
  :data:`REGROUP_BUDGET` functions regrouped per report) and says when it
  stopped early.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._errors import UnknownDevice
from .._kernel.canonical import canonical_groups
from .._kernel.config import ConfigData
from .._kernel.groups import Grouping, device_sort_key
from .._kernel.model import PciAddress, PcieType, PciFunction, Topology, full_name
from .._kernel.quirks import Quirks, kernel_quirks
from .._kernel.reading import Unknown
from .._kernel.reset import ResetMethods, pci_reset_methods, reset_registers
from .._kernel.version import KernelVersion, resolve_kernel
from .._kernel.vfio import blocks_dma_owner, is_vfio_driver, stays_with_host, vfio_pci_refuses
from .changes import AcsOverride, MoveCard, Slot, WhatIfError
from .check import CheckReport, DeviceCheck, Verdict, check, untranslated_from_observation
from .names import pcie_type_key, short_name
from .whatif import apply_changes

__all__ = [
    "DEVICE_CLASSES",
    "MAX_SLOT_TRIES",
    "PASSTHROUGH_SCHEMA",
    "REGROUP_BUDGET",
    "GroupMember",
    "OverrideOutcome",
    "PassthroughDevice",
    "PassthroughReport",
    "PassthroughVerdict",
    "Role",
    "SlotOption",
    "SlotSearch",
    "VfioSetup",
    "hostdev_xml",
    "passthrough",
    "select_devices",
]


def __dir__() -> list[str]:
    return __all__


#: The ``schema`` value of :meth:`PassthroughReport.to_json`.
PASSTHROUGH_SCHEMA = "iommugroups.passthrough/1"

#: Class names a device may be named by -> the class code prefixes they match
#: (hex digits of the 24-bit class code).
DEVICE_CLASSES: Mapping[str, tuple[str, ...]] = {
    "gpu": ("03",),  # display controllers: VGA, XGA, 3D, other
    "nic": ("02",),  # network controllers: Ethernet, InfiniBand, ...
    "network": ("02",),
    "net": ("02",),
    "nvme": ("010802",),  # NVM Express controllers
    "usb": ("0c03",),  # USB controllers: UHCI, OHCI, EHCI, xHCI, ...
    "audio": ("0403",),  # HD audio devices (a GPU's HDMI audio, a chipset's)
    "storage": ("01",),  # mass storage: SATA, SAS, RAID, NVMe, ...
}

#: Devices a list in the answer names at most (the rest are counted).
MAX_SHOWN = 16

#: Free ports tried per device (the best candidates first), at most.
MAX_SLOT_TRIES = 8
#: A device's slot search stops after this many slots that isolate the card.
MAX_SLOT_OPTIONS = 3
#: Functions regrouped per report by the slot search and the ACS override, at
#: most (each groups the whole changed machine once): large machines stay fast
#: (a machine of 100,000 functions gets the override and three tries).
REGROUP_BUDGET = 400_000

#: Sources whose groups say of every device whether it has one (a device they
#: list in no group has none); a log or a listing may be cut short.
_SAYS_EVERY_GROUP = frozenset(
    {"lspci-vv", "lspci-v", "sysfs", "snapshot", "capture", "arm64-capture"}
)

#: Facts whose absence from the input can only have *removed* devices from a
#: group (a bridge the input lacks, R4.2; a slot's multifunction bit, R5.2; a
#: VMD endpoint, R3.1): the group as read is then no upper bound.
_DARK = frozenset({"bridge", "multifunction", "vmd"})

_SLOT_RE = re.compile(
    r"^(?:(?P<domain>[0-9a-fA-F]{1,8}):)?(?P<bus>[0-9a-fA-F]{1,2}):(?P<dev>[0-9a-fA-F]{1,2})"
    r"(?:\.(?P<fn>[0-7]))?$"
)
_ID_RE = re.compile(r"^(?P<vendor>[0-9a-fA-F]{4}):(?P<device>[0-9a-fA-F]{4})$")


class Role(str, enum.Enum):
    """What a group member is to the devices named."""

    CARD = "card"  #: a function of a named device's slot (or a VF of one)
    ENDPOINT = "endpoint"  #: another device: goes to the VM too, or loses its driver
    BRIDGE = "bridge"  #: a bridge (header type 1/2, or class 0x06): stays with the host
    UNKNOWN = "unknown"  #: not in the input, or its class not shown: not known

    def __str__(self) -> str:
        return self.value


class PassthroughVerdict(str, enum.Enum):
    """Can the device go to a VM alone (see the module docstring)."""

    ALONE = "alone"
    WITH_OTHERS = "with-others"
    ISOLATION_HOLE = "isolation-hole"
    NO_GROUP = "no-group"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


def _strs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _hex4(value: int | None) -> str | None:
    return None if value is None else f"{value:04x}"


@attrs.frozen
class GroupMember:
    """One member of a named device's group.

    Attributes:
        name: ``dddd:bb:dd.f`` (or a name the input gives).
        role: see :class:`Role`.
        named: it is one of the devices named.
        function: the function, ``None`` for a member the input does not list.
        driver: the host driver bound, ``None`` for none or not known.
        driver_known: the input says which driver is bound (or that none is).
        blocks_vfio: its driver keeps VFIO from claiming the group (a driver
            other than ``vfio-pci``, ``pci-stub`` or ``pcieport``);
            ``None``: not known.
    """

    name: str
    role: Role
    named: bool = False
    function: PciFunction | None = None
    driver: str | None = None
    driver_known: bool = False
    blocks_vfio: bool | None = None

    @property
    def ids(self) -> tuple[int, int] | None:
        """``(vendor, device)``, or ``None`` when the input does not show them."""
        fn = self.function
        if fn is None or "ids" in fn.unknown:
            return None
        return fn.vendor, fn.device

    def to_json(self) -> dict[str, Any]:
        """The member's entry of a device's ``members``."""
        fn = self.function
        ids = self.ids
        class_known = fn is not None and "class" not in fn.unknown
        return {
            "device": self.name,
            "role": self.role.value,
            "named": self.named,
            "vendor": _hex4(ids[0]) if ids else None,
            "device_id": _hex4(ids[1]) if ids else None,
            "class_code": f"{fn.class_code:06x}" if fn is not None and class_known else None,
            "pcie_type": pcie_type_key(fn),
            "virtfn": fn is not None and fn.physfn is not None,
            "bridge": self.role is Role.BRIDGE,
            "driver": self.driver,
            "driver_known": self.driver_known,
            "blocks_vfio": self.blocks_vfio,
        }


@attrs.frozen
class VfioSetup:
    """What to paste to give the endpoints of a group to ``vfio-pci``.

    Attributes:
        bind: the endpoints to bind (card functions and other endpoints).
        ids: their ``(vendor, device)`` ids, once each, in member order.
        ids_known: every endpoint's ids are known (else ``ids`` lacks some).
        ids_shared_with: devices outside ``bind`` with one of the ids (the
            first :data:`MAX_SHOWN`): a ``vfio-pci.ids=`` list takes them too.
        ids_shared_count: how many such devices there are.
        host_drivers: endpoint -> the host driver bound to it now (known ones).
        blocking: ``(member, driver)``: members whose driver keeps VFIO out
            of the group (bridges included).
        refused: ``(endpoint, why)``: endpoints ``vfio-pci`` will not bind.
    """

    bind: tuple[str, ...] = attrs.field(converter=_strs)
    ids: tuple[tuple[int, int], ...] = ()
    ids_known: bool = True
    ids_shared_with: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    ids_shared_count: int = 0
    host_drivers: Mapping[str, str] = attrs.field(factory=dict)
    blocking: tuple[tuple[str, str], ...] = ()
    refused: tuple[tuple[str, str], ...] = ()

    @property
    def id_list(self) -> str:
        """``10de:1b80,10de:10f0``."""
        return ",".join(f"{v:04x}:{d:04x}" for v, d in self.ids)

    @property
    def kernel_parameter(self) -> str | None:
        """``vfio-pci.ids=...`` for the kernel command line (``None``: no ids known)."""
        return f"vfio-pci.ids={self.id_list}" if self.ids else None

    @property
    def modprobe(self) -> tuple[str, ...]:
        """The lines of ``/etc/modprobe.d/vfio.conf``: the ids, and a ``softdep`` per host driver.

        ``softdep`` names a module; for most drivers the name is the module's
        (``nouveau``, ``snd_hda_intel``), but not for all (``xhci_hcd`` is in
        ``xhci_pci``: ``lspci -k`` shows "Kernel modules").
        """
        lines = [f"options vfio-pci ids={self.id_list}"] if self.ids else []
        drivers = dict.fromkeys(d for d in self.host_drivers.values() if blocks_dma_owner(d))
        lines.extend(f"softdep {d} pre: vfio-pci" for d in drivers)
        return tuple(lines)

    @property
    def driverctl(self) -> tuple[str, ...]:
        """``driverctl set-override ADDRESS vfio-pci``, one per endpoint (PCI ones)."""
        return tuple(f"driverctl set-override {n} vfio-pci" for n in self.bind if _is_pci(n))

    def to_json(self) -> dict[str, Any]:
        """The device's ``vfio`` entry."""
        return {
            "bind": list(self.bind),
            "ids": [f"{v:04x}:{d:04x}" for v, d in self.ids],
            "ids_known": self.ids_known,
            "ids_shared_with": list(self.ids_shared_with),
            "ids_shared_count": self.ids_shared_count,
            "kernel_parameter": self.kernel_parameter,
            "modprobe": list(self.modprobe),
            "driverctl": list(self.driverctl),
            "host_drivers": [{"device": d, "driver": drv} for d, drv in self.host_drivers.items()],
            "blocking": [{"device": d, "driver": drv} for d, drv in self.blocking],
            "refused": [{"device": d, "why": why} for d, why in self.refused],
        }


@attrs.frozen
class SlotOption:
    """A free port tried for the card, and the card's group after the move.

    Attributes:
        port: the root or downstream port.
        change: the ``what-if`` change (``move=...``).
        alone_after: the card's group after the move holds only the card and
            bridges (as read: facts the input lacks taken as absent).
        group_after: the card's group after the move (names after the move).
    """

    port: str
    change: str
    alone_after: bool
    group_after: tuple[str, ...] = attrs.field(converter=_strs)

    def to_json(self) -> dict[str, Any]:
        """One entry of ``slots.tried``."""
        return {
            "port": self.port,
            "change": self.change,
            "alone_after": self.alone_after,
            "group_after": list(self.group_after),
        }


def _options(value: Iterable[SlotOption]) -> tuple[SlotOption, ...]:
    return tuple(value)


@attrs.frozen
class SlotSearch:
    """Where the card could move to get a group of its own.

    Attributes:
        searched: a search was made (``False``: the card cannot move; ``why``).
        why: in words (why no search, or how it ended).
        candidates: free root/downstream ports in the topology.
        tried: every port tried, in the order tried, with the outcome.
        capped: the search stopped before trying every candidate.
    """

    searched: bool
    why: str
    candidates: int = 0
    tried: tuple[SlotOption, ...] = attrs.field(default=(), converter=_options)
    capped: bool = False

    @property
    def options(self) -> tuple[SlotOption, ...]:
        """The ports where the card would be alone."""
        return tuple(o for o in self.tried if o.alone_after)

    def to_json(self) -> dict[str, Any]:
        """The device's ``slots`` entry."""
        return {
            "searched": self.searched,
            "why": self.why,
            "candidates": self.candidates,
            "capped": self.capped,
            "tried": [o.to_json() for o in self.tried],
            "options": [o.port for o in self.options],
        }


@attrs.frozen
class OverrideOutcome:
    """What ``pcie_acs_override=`` would make of the card's group.

    Attributes:
        change: the ``what-if`` change.
        label: the kernel parameter.
        cost: what it gives up, in words.
        alone_after: the card's group would hold only the card and bridges.
        group_after: the card's group with the override.
    """

    change: str
    label: str
    cost: str
    alone_after: bool
    group_after: tuple[str, ...] = attrs.field(converter=_strs)

    def to_json(self) -> dict[str, Any]:
        """The device's ``acs_override`` entry."""
        return {
            "change": self.change,
            "label": self.label,
            "upstream": False,
            "cost": self.cost,
            "alone_after": self.alone_after,
            "group_after": list(self.group_after),
        }


def _members(value: Iterable[GroupMember]) -> tuple[GroupMember, ...]:
    return tuple(value)


def _resets(value: Iterable[ResetMethods]) -> tuple[ResetMethods, ...]:
    return tuple(value)


@attrs.frozen
class PassthroughDevice:
    """The answer for one named device.

    Attributes:
        device: its name (``dddd:bb:dd.f``).
        selector: what it was named by (the first name that matched it).
        verdict: see :class:`PassthroughVerdict`.
        groups_from: ``"kernel"`` (the input's groups) or ``"model"`` (the
            prediction).
        group: its group id there (``None``: no group).
        members: the group's members, in address order.
        card: the functions of its card (slot), whatever their group.
        check: ``check``'s verdict on it (against the kernel's groups; or, for
            the prediction, whether facts the input lacks can change it).
        predicted: its group as predicted (as read).
        depends_on: devices whose unknown facts its group depends on.
        vfio: what to paste (:class:`VfioSetup`).
        reset: reset methods of each endpoint to bind.
        slots: where the card could move (``None``: not needed).
        acs_override: what ``pcie_acs_override`` would do (``None``: not needed).
        reasons: the verdict in words, and caveats.
    """

    device: str
    selector: str
    verdict: PassthroughVerdict
    groups_from: str
    group: int | None
    members: tuple[GroupMember, ...] = attrs.field(converter=_members)
    card: tuple[str, ...] = attrs.field(converter=_strs)
    check: Verdict | None = None
    predicted: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    vfio: VfioSetup = attrs.field(factory=lambda: VfioSetup(()))
    reset: tuple[ResetMethods, ...] = attrs.field(default=(), converter=_resets)
    slots: SlotSearch | None = None
    acs_override: OverrideOutcome | None = None
    reasons: tuple[str, ...] = attrs.field(default=(), converter=_strs)

    @property
    def others(self) -> tuple[str, ...]:
        """The endpoints in its group that are not its card's."""
        return tuple(m.name for m in self.members if m.role is Role.ENDPOINT)

    @property
    def named(self) -> tuple[str, ...]:
        """The devices named that this entry answers for: it, and other named functions
        of its card in its group (one entry covers them all)."""
        return tuple(m.name for m in self.members if m.named and m.role is Role.CARD) or (
            self.device,
        )

    @property
    def hostdevs(self) -> tuple[str, ...]:
        """The PCI endpoints to give the guest (one libvirt ``<hostdev>`` each)."""
        return tuple(n for n in self.vfio.bind if _is_pci(n))

    @property
    def card_elsewhere(self) -> tuple[str, ...]:
        """Functions of its card in other groups."""
        inside = {m.name for m in self.members}
        return tuple(n for n in self.card if n not in inside)

    def to_json(self) -> dict[str, Any]:
        """The device's entry of :meth:`PassthroughReport.to_json`."""
        return {
            "device": self.device,
            "selector": self.selector,
            "named": list(self.named),
            "verdict": self.verdict.value,
            "groups_from": self.groups_from,
            "group": self.group,
            "members": [m.to_json() for m in self.members],
            "card": list(self.card),
            "card_elsewhere": list(self.card_elsewhere),
            "others": list(self.others),
            "check": None if self.check is None else self.check.value,
            "predicted": list(self.predicted),
            "same_as_predicted": set(self.predicted) == {m.name for m in self.members},
            "depends_on": list(self.depends_on),
            "vfio": self.vfio.to_json(),
            "reset": [_reset_json(r) for r in self.reset],
            "libvirt": [_hostdev_json(n) for n in self.hostdevs],
            "slots": None if self.slots is None else self.slots.to_json(),
            "acs_override": None if self.acs_override is None else self.acs_override.to_json(),
            "reasons": list(self.reasons),
        }


def _devices(value: Iterable[PassthroughDevice]) -> tuple[PassthroughDevice, ...]:
    return tuple(value)


#: Verdict -> exit status of ``iommugroups passthrough``.
_STATUS = {
    PassthroughVerdict.ALONE: 0,
    PassthroughVerdict.WITH_OTHERS: 1,
    PassthroughVerdict.ISOLATION_HOLE: 1,
    PassthroughVerdict.NO_GROUP: 1,
    PassthroughVerdict.UNKNOWN: 3,
}


@attrs.frozen
class PassthroughReport:
    """What :func:`passthrough` found, per named device.

    Attributes:
        devices: one entry per device named, in the order named; named
            functions of one card in one group share the first one's entry.
        groups_from: ``"kernel"`` or ``"model"`` (see :class:`PassthroughDevice`).
        kernel: the kernel version modelled.
        notes: caveats about the whole answer.
        topology: the machine answered for (SR-IOV VFs the kernel grouped added).
    """

    devices: tuple[PassthroughDevice, ...] = attrs.field(converter=_devices)
    groups_from: str
    kernel: KernelVersion
    notes: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    topology: Topology | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def verdict(self) -> PassthroughVerdict:
        """The worst device verdict (a finding first, then unknown, else ``alone``)."""
        seen = {d.verdict for d in self.devices}
        for v in (
            PassthroughVerdict.ISOLATION_HOLE,
            PassthroughVerdict.WITH_OTHERS,
            PassthroughVerdict.NO_GROUP,
            PassthroughVerdict.UNKNOWN,
        ):
            if v in seen:
                return v
        return PassthroughVerdict.ALONE

    @property
    def status(self) -> int:
        """The exit status (0 every device alone, 1 a finding, 3 unknown facts decide)."""
        codes = {_STATUS[d.verdict] for d in self.devices}
        return 1 if 1 in codes else 3 if 3 in codes else 0

    def device(self, name: str) -> PassthroughDevice:
        """The entry of ``name`` (any address form).

        Raises:
            KeyError: it was not named.
        """
        key = full_name(name)
        for d in self.devices:
            if d.device == key or key in d.named:
                return d
        raise KeyError(f"{name} was not named")

    def to_json(self) -> dict[str, Any]:
        """The report as JSON data, schema ``"iommugroups.passthrough/1"``.

        Keys: ``schema``; ``kernel`` (``MAJOR.MINOR``); ``groups_from``
        (``kernel`` or ``model``); ``verdict`` (the worst device verdict) and
        ``status`` (the exit status); ``devices``, one per device named:
        ``device``, ``selector``, ``named``, ``verdict``, ``groups_from``, ``group``,
        ``members`` (``device``, ``role``, ``named``, ``vendor``,
        ``device_id``, ``class_code``, ``pcie_type``, ``virtfn``, ``bridge``, ``driver``,
        ``driver_known``, ``blocks_vfio``), ``card``, ``card_elsewhere``,
        ``others``, ``check``, ``predicted``, ``same_as_predicted``,
        ``depends_on``, ``vfio`` (``bind``, ``ids``, ``ids_known``,
        ``ids_shared_with``, ``kernel_parameter``, ``modprobe``,
        ``driverctl``, ``host_drivers``, ``blocking``, ``refused``),
        ``reset`` (per endpoint: ``device``, ``available``, ``bridge``,
        ``shares_bus``, ``below``, ``methods``: ``name``, ``function``,
        ``available``, ``why``), ``libvirt`` (per endpoint: ``device``,
        ``domain``, ``bus``, ``slot``, ``function``, ``xml``), ``slots``
        (``searched``, ``why``, ``candidates``, ``capped``, ``tried``:
        ``port``, ``change``, ``alone_after``, ``group_after``; ``options``)
        or null, ``acs_override`` (``change``, ``label``, ``upstream``,
        ``cost``, ``alone_after``, ``group_after``) or null, ``reasons``;
        ``notes``.

        Within one schema version keys are only ever added.
        """
        return {
            "schema": PASSTHROUGH_SCHEMA,
            "kernel": str(self.kernel),
            "groups_from": self.groups_from,
            "verdict": self.verdict.value,
            "status": self.status,
            "devices": [d.to_json() for d in self.devices],
            "notes": list(self.notes),
        }


# ------------------------------------------------------------------ JSON helpers
def _is_pci(name: str) -> bool:
    try:
        PciAddress.parse(name)
    except ValueError:
        return False
    return True


def _reset_json(r: ResetMethods) -> dict[str, Any]:
    return {
        "device": r.device,
        "available": r.available.value,
        "bridge": r.bridge,
        "shares_bus": list(r.shares_bus),
        "below": list(r.below),
        "methods": [
            {"name": m.name, "function": m.function, "available": m.available.value, "why": m.why}
            for m in r.methods
        ],
    }


def hostdev_xml(name: str) -> str:
    """The libvirt ``<hostdev>`` element that gives the PCI function ``name`` to a guest.

    >>> print(hostdev_xml("0000:01:00.1"))
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source>
        <address domain='0x0000' bus='0x01' slot='0x00' function='0x1'/>
      </source>
    </hostdev>
    """
    a = PciAddress.parse(name)
    return (
        "<hostdev mode='subsystem' type='pci' managed='yes'>\n"
        "  <source>\n"
        f"    <address domain='0x{a.domain:04x}' bus='0x{a.bus:02x}' slot='0x{a.device:02x}' "
        f"function='0x{a.function:x}'/>\n"
        "  </source>\n"
        "</hostdev>"
    )


def _hostdev_json(name: str) -> dict[str, Any]:
    a = PciAddress.parse(name)
    return {
        "device": name,
        "domain": a.domain,
        "bus": a.bus,
        "slot": a.device,
        "function": a.function,
        "xml": hostdev_xml(name),
    }


# -------------------------------------------------------------- naming devices
def _class_matches(fn: PciFunction, prefixes: tuple[str, ...]) -> bool:
    return "class" not in fn.unknown and f"{fn.class_code:06x}".startswith(prefixes)


def _select(topology: Topology, selector: str) -> tuple[PciFunction, ...]:
    """The functions ``selector`` names (empty: none); bad syntax raises UnknownDevice."""
    text = selector.strip()
    key = text.lower()
    if key in DEVICE_CLASSES:
        prefixes = DEVICE_CLASSES[key]
        return tuple(
            f
            for f in sorted(topology.functions, key=lambda f: f.address)
            if _class_matches(f, prefixes)
        )
    m = _ID_RE.match(text)
    if m is not None:
        ids = (int(m["vendor"], 16), int(m["device"], 16))
        return tuple(
            f
            for f in sorted(topology.functions, key=lambda f: f.address)
            if "ids" not in f.unknown and (f.vendor, f.device) == ids
        )
    m = _SLOT_RE.match(text)
    if m is None or int(m["dev"], 16) > 0x1F:
        raise UnknownDevice(
            f"not a device: {selector!r}: give an address (01:00.0, 0000:01:00.0), a slot "
            f"(01:00: every function), a vendor:device id (10de:1b80) or a class "
            f"({', '.join(DEVICE_CLASSES)})"
        )
    domain, bus, dev = int(m["domain"] or "0", 16), int(m["bus"], 16), int(m["dev"], 16)
    on_bus = topology.devices_on_bus(domain, bus)
    if m["fn"] is not None:
        want = PciAddress(domain, bus, dev, int(m["fn"]))
        return tuple(f for f in on_bus if f.address == want)
    return tuple(sorted((f for f in on_bus if f.address.device == dev), key=lambda f: f.address))


def _near(topology: Topology, selector: str) -> str:
    """What the input lists that is close to a selector that matched nothing."""
    text = selector.strip()
    key = text.lower()
    fns = sorted(topology.functions, key=lambda f: f.address)
    if key in DEVICE_CLASSES:
        counts: dict[str, int] = {}
        for f in fns:
            if "class" in f.unknown or stays_with_host(f):
                continue
            for name, prefixes in DEVICE_CLASSES.items():
                if name in ("network", "net"):
                    continue
                if _class_matches(f, prefixes):
                    counts[name] = counts.get(name, 0) + 1
        unknown = sum(1 for f in fns if "class" in f.unknown)
        shown = ", ".join(f"{n} ({c})" for n, c in counts.items()) or "none of them"
        more = f"; {unknown} devices whose class the input does not show" if unknown else ""
        return f"of these classes, the input lists {shown}{more}"
    m = _ID_RE.match(text)
    if m is not None:
        vendor = int(m["vendor"], 16)
        same = [f for f in fns if f.vendor == vendor and "ids" not in f.unknown]
        pool = same or [f for f in fns if "ids" not in f.unknown and not stays_with_host(f)]
        ids = list(dict.fromkeys(f"{f.vendor:04x}:{f.device:04x}" for f in pool))
        what = f"ids of vendor {vendor:04x}" if same else "these endpoint ids"
        more = f" and {len(ids) - 12} more" if len(ids) > 12 else ""
        return f"the input lists {what}: {', '.join(ids[:12]) or 'none'}{more}"
    m = _SLOT_RE.match(text)
    if m is not None:
        domain, bus = int(m["domain"] or "0", 16), int(m["bus"], 16)
        here = [short_name(f.address) for f in topology.devices_on_bus(domain, bus)]
        if here:
            return f"on bus {bus:02x} the input lists {', '.join(here[:12])}"
        buses = sorted({(f.address.domain, f.address.bus) for f in fns})
        shown = ", ".join(f"{b:02x}" if d == 0 else f"{d:04x}:{b:02x}" for d, b in buses[:16])
        more = f" and {len(buses) - 16} more" if len(buses) > 16 else ""
        return f"the input lists devices on buses {shown}{more}"
    return ""


def select_devices(
    topology: Topology, selectors: Sequence[str]
) -> tuple[tuple[PciFunction, str], ...]:
    """Each function the selectors name, once, with the first selector that named it.

    Bridges (which stay with the host) are left out of what a slot or an id
    names.

    Raises:
        UnknownDevice: a selector is malformed or names nothing the topology
            lists (the message says what it lists that is close).
    """
    out: dict[PciAddress, tuple[PciFunction, str]] = {}
    for selector in selectors:
        everything = _select(topology, selector)
        found = tuple(f for f in everything if not stays_with_host(f))
        if everything and not found:
            shown = ", ".join(short_name(f.address) for f in everything[:4])
            raise UnknownDevice(
                f"{selector!r} names only bridges ({shown}): they stay with the host (vfio-pci "
                "binds no bridge); name a device below one"
            )
        if not found:
            near = _near(topology, selector)
            raise UnknownDevice(f"no device matches {selector!r}" + (f"; {near}" if near else ""))
        for fn in found:
            out.setdefault(fn.address, (fn, selector))
    return tuple(out.values())


# ------------------------------------------------------------------- the answer
def _card(topology: Topology, fn: PciFunction) -> tuple[PciFunction, ...]:
    """The functions of ``fn``'s card: its slot (a VF: its PF's), and their VFs."""
    head = topology.get(fn.physfn) if fn.physfn is not None else fn
    a = head.address
    slot = [
        f
        for f in topology.devices_on_bus(a.domain, a.bus)
        if f.address.device == a.device and f.physfn is None
    ]
    out = list(slot)
    for f in slot:
        out.extend(topology.vfs_of(f.address))
    return tuple(sorted(out, key=lambda f: f.address))


def _by_id(topology: Topology) -> dict[tuple[int, int], tuple[str, ...]]:
    """``(vendor, device)`` -> the functions with these ids, in address order."""
    out: dict[tuple[int, int], list[str]] = {}
    for f in sorted(topology.functions, key=lambda f: f.address):
        if "ids" not in f.unknown:
            out.setdefault((f.vendor, f.device), []).append(str(f.address))
    return {k: tuple(v) for k, v in out.items()}


def _driver_known(fn: PciFunction, drivers_known: bool | None) -> bool:
    return fn.driver is not None or bool(drivers_known)


@attrs.frozen
class _Context:
    topology: Topology
    kernel: KernelVersion
    quirks: Quirks
    report: CheckReport
    by_device: Mapping[str, DeviceCheck]
    groups: Mapping[int, tuple[str, ...]]
    from_kernel: bool
    complete: bool
    drivers_known: bool | None
    configs: Mapping[str, ConfigData]
    dark: frozenset[str]
    named: frozenset[str]
    by_id: Mapping[tuple[int, int], tuple[str, ...]]


def passthrough(
    topology: Topology,
    devices: str | Sequence[str],
    *,
    observed: Grouping | None = None,
    unknowns: Sequence[Unknown] = (),
    kernel: KernelVersion | str | None = None,
    quirks: Quirks | None = None,
    drivers_known: bool | None = None,
    configs: Mapping[str, bytes] | None = None,
    search: bool = True,
) -> PassthroughReport:
    """Can each named device go to a VM, and what goes with it (see the module docstring).

    Args:
        topology: the machine.
        devices: what to pass through: addresses (``01:00.0``), slots
            (``01:00``: every function), ``vendor:device`` ids (``10de:1b80``)
            or class names (``gpu``, ``nic``/``network``, ``nvme``, ``usb``,
            ``audio``, ``storage``).
        observed: the groups the kernel made, when the input carries them:
            they are the groups VFIO sees, and are used; else the prediction.
        unknowns: facts the reader could not establish (as for :func:`check`).
        kernel: the kernel modelled (default: the newest).
        quirks: the quirk tables (default: the kernel's).
        drivers_known: the input says of every function which driver is bound
            (a sysfs tree, a snapshot, ``lspci -k``/``-v``), so a function
            without one has none; ``None``/``False``: only the drivers it
            names are known.
        configs: raw configuration space by device name, to decide the reset
            methods that read registers the model does not keep (FLR, PM).
        search: look for free slots and try ``pcie_acs_override`` when a
            group holds other endpoints.

    Raises:
        UnknownDevice: a device name is malformed or names nothing.

    >>> from iommugroups import examples
    >>> r = passthrough(examples.desktop(), ["gpu"])
    >>> for d in r.devices:
    ...     print(d.device, d.verdict.value, d.vfio.kernel_parameter)
    0000:01:00.0 alone vfio-pci.ids=10de:1b80,10de:10f0
    0000:09:00.0 alone vfio-pci.ids=1002:687f
    >>> usb = passthrough(examples.desktop(), ["04:00.0"]).device("04:00.0")
    >>> usb.verdict.value, usb.others, usb.slots.why
    ('with-others', ('0000:03:00.0',), 'the topology has no free root or downstream port')
    >>> usb.acs_override.alone_after, usb.acs_override.label
    (True, 'pcie_acs_override=downstream,multifunction')
    """
    selectors = [devices] if isinstance(devices, str) else list(devices)
    if not selectors:
        raise UnknownDevice("name at least one device")
    version = resolve_kernel(kernel)
    base = quirks if quirks is not None else kernel_quirks(version)
    from_kernel = False
    topo = topology
    notes: list[str] = []
    if observed is not None and observed.groups:
        from_kernel = True
        names = {full_name(m) for ms in observed.groups.values() for m in ms}
        topo, added = topo.with_vfs(names)
        topo, _untranslated = untranslated_from_observation(topo, observed, names)
        if added:
            notes.append(f"SR-IOV VFs the kernel grouped, added: {', '.join(added)}")
    selected = select_devices(topo, selectors)  # a bad name fails before any grouping
    if observed is not None and from_kernel:
        report = check(
            topo, observed, unknowns=unknowns, quirks=base, kernel=version, strategies=()
        )
        groups = {
            gid: tuple(sorted({full_name(m) for m in ms}, key=device_sort_key))
            for gid, ms in observed.groups.items()
        }
    else:
        predicted = canonical_groups(topo, quirks=base, kernel=version)
        itself = Grouping(predicted.groups, source="prediction")
        report = check(topo, itself, unknowns=unknowns, quirks=base, kernel=version, strategies=())
        groups = dict(report.canonical.groups)
    dark = frozenset(
        [str(f.address) for f in topo.functions if f.unknown & _DARK]
        + [full_name(u.device) for u in unknowns if u.fact in _DARK and u.device]
    )
    ctx = _Context(
        topology=topo,
        kernel=version,
        quirks=base,
        report=report,
        by_device={d.device: d for d in report.devices},
        groups=groups,
        from_kernel=from_kernel,
        complete=observed is not None and observed.source in _SAYS_EVERY_GROUP,
        drivers_known=drivers_known,
        configs={full_name(k): v for k, v in (configs or {}).items()},
        dark=dark,
        named=frozenset(str(fn.address) for fn, _ in selected),
        by_id=_by_id(topo),
    )
    answers: list[PassthroughDevice] = []
    covered: set[str] = set()  # named functions of a card already answered for
    for fn, selector in selected:
        if str(fn.address) in covered:
            continue
        d = _answer(ctx, fn, selector)
        answers.append(d)
        covered.update(d.named)
    if search:
        answers = _search(ctx, answers)
    none = [u for u in unknowns if u.fact == "group" and not u.device]
    if not from_kernel and none:
        notes.append(
            f"the input shows no IOMMU groups at all ({none[0].why}): VFIO assigns devices "
            "only in the kernel's IOMMU groups, so none can go to a VM until the IOMMU is on "
            "(in the firmware, and e.g. intel_iommu=on where the kernel does not enable it by "
            "default); the groups here are the ones predicted for when it is"
        )
    elif not from_kernel:
        notes.append(
            "the input carries no groups a kernel made: these are the predicted groups "
            "(canonical_groups); a snapshot or sysfs tree of the machine gives the kernel's"
        )
    if any(not m.driver_known for d in answers for m in d.members if m.function is not None):
        notes.append(
            "drivers: the input does not say which driver every device has (a snapshot, "
            "sysfs or `lspci -k` does); those are shown as unknown"
        )
    if configs is None:
        notes.append(
            "reset: FLR and PM reset read registers the model does not keep (PCIe Device "
            "Capabilities, PM control/status): unknown"
        )
    return PassthroughReport(
        answers, "kernel" if from_kernel else "model", version, notes, topology=topo
    )


def _answer(ctx: _Context, fn: PciFunction, selector: str) -> PassthroughDevice:
    name = str(fn.address)
    dc = ctx.by_device.get(name)
    card_fns = _card(ctx.topology, fn)
    card = frozenset(str(f.address) for f in card_fns)
    predicted: tuple[str, ...] = ()
    check_verdict: Verdict | None = None
    depends: tuple[str, ...] = ()
    gid: int | None = None
    if dc is not None:
        check_verdict = dc.verdict
        depends = dc.depends_on
        gid = dc.observed_group if ctx.from_kernel else dc.canonical_group
        if dc.canonical_group is not None:
            predicted = ctx.report.canonical.groups.get(dc.canonical_group, ())
    common = PassthroughDevice(
        device=name,
        selector=selector,
        verdict=PassthroughVerdict.NO_GROUP,
        groups_from="kernel" if ctx.from_kernel else "model",
        group=None,
        members=(),
        card=tuple(sorted(card, key=device_sort_key)),
        check=check_verdict,
        predicted=predicted,
        depends_on=depends,
    )
    if gid is None or gid not in ctx.groups:
        if ctx.from_kernel and not ctx.complete:
            return attrs.evolve(
                common,
                verdict=PassthroughVerdict.UNKNOWN,
                reasons=(
                    "the input's groups do not list it, and may be cut short: its group is "
                    "not known",
                ),
            )
        why = (
            "the kernel gave it no IOMMU group"
            if ctx.from_kernel
            else f"it has no IOMMU group: {ctx.report.canonical.ungrouped.get(name, 'no group')}"
        )
        return attrs.evolve(
            common, reasons=(f"{why}: VFIO can only assign devices in an IOMMU group",)
        )
    by_name = ctx.topology.by_name()
    members: list[GroupMember] = []
    for m in ctx.groups[gid]:
        f = by_name.get(m)
        if f is None:
            members.append(GroupMember(m, Role.UNKNOWN, named=m in ctx.named))
            continue
        if stays_with_host(f):
            role = Role.BRIDGE
        elif m in card:
            role = Role.CARD
        elif "class" in f.unknown:  # a host or ISA bridge, or a device: not shown
            role = Role.UNKNOWN
        else:
            role = Role.ENDPOINT
        known = _driver_known(f, ctx.drivers_known)
        members.append(
            GroupMember(
                m,
                role,
                named=m in ctx.named,
                function=f,
                driver=f.driver,
                driver_known=known,
                blocks_vfio=blocks_dma_owner(f.driver) if known else None,
            )
        )
    verdict, reasons = _verdict(ctx, dc, members, predicted)
    bind = [m for m in members if m.role in (Role.CARD, Role.ENDPOINT)]
    return attrs.evolve(
        common,
        verdict=verdict,
        group=gid,
        members=tuple(members),
        vfio=_vfio(ctx, bind, members),
        reset=tuple(
            pci_reset_methods(
                ctx.topology,
                m.function,
                reset_registers(ctx.configs[m.name]) if m.name in ctx.configs else None,
                kernel=ctx.kernel,
            )
            for m in bind
            if m.function is not None
        ),
        reasons=tuple(reasons),
    )


def _few(names: Sequence[str], limit: int = 6) -> str:
    """Short names for a sentence, the first ``limit`` and how many more."""
    shown = ", ".join(short_name(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _verdict(
    ctx: _Context,
    dc: DeviceCheck | None,
    members: Sequence[GroupMember],
    predicted: Sequence[str],
) -> tuple[PassthroughVerdict, list[str]]:
    others = [m.name for m in members if m.role is Role.ENDPOINT]
    unknown = [m.name for m in members if m.role is Role.UNKNOWN]
    depends = list(dc.depends_on) if dc is not None else []
    reasons: list[str] = []
    what = "the kernel's group" if ctx.from_kernel else "its group"
    if ctx.from_kernel:
        certain = others
    else:  # the group as read is the largest it can be: only `must_share` is certain
        must = set(dc.must_share) if dc is not None else set()
        certain = [n for n in others if n in must]
    if certain:
        reasons.append(f"{what} also holds {_few(certain)}: they go to the VM with it")
        return PassthroughVerdict.WITH_OTHERS, reasons
    if ctx.from_kernel and dc is not None and dc.verdict is Verdict.SPLIT:
        reasons.append(
            f"the kernel's group leaves out {_few(dc.split_from)}, which the rules put with "
            "it under every assumption (check: split): an isolation hole, not a safe assignment"
        )
        return PassthroughVerdict.ISOLATION_HOLE, reasons
    if others:
        reasons.append(
            f"{what} holds {_few(others)} only if facts the input lacks (of {_few(depends)}) "
            "are absent: with them isolating, it is alone"
        )
        return PassthroughVerdict.UNKNOWN, reasons
    if unknown:
        reasons.append(
            f"{what} also holds {_few(unknown)}, which the input does not list or whose class "
            "it does not show: whether they are devices that go with it is not known"
        )
        return PassthroughVerdict.UNKNOWN, reasons
    reasons.append(f"{what} holds only it, its card's functions and bridges")
    if ctx.from_kernel:
        if dc is not None and dc.verdict is Verdict.UNKNOWN:
            reasons.append(
                "the rules cannot confirm the kernel's group: it depends on facts the input "
                f"lacks (of {_few(depends) or 'the devices around it'}); VFIO uses the kernel's"
            )
        elif dc is not None and dc.verdict is Verdict.MERGED:
            reasons.append(
                "the kernel's group is larger than the prediction (check: merged): a quirk "
                "or kernel behaviour the model does not know"
            )
        return PassthroughVerdict.ALONE, reasons
    # a dark fact (a bridge the input lacks, ...) can only have left devices out
    dark = [n for n in (*predicted, *depends) if n in ctx.dark]
    if dark or (dc is not None and dc.verdict is Verdict.UNKNOWN and not dc.may_share):
        reasons[-1] = (
            f"{what} holds only it, its card's functions and bridges as the input shows them, "
            f"but facts the input lacks (of {_few(dark or depends)}) can only have left devices "
            "out of it: it may be larger"
        )
        return PassthroughVerdict.UNKNOWN, reasons
    if dc is not None and dc.may_share:
        reasons.append(
            f"facts the input lacks can only make it smaller: {_few(dc.may_share)} may not be "
            "in it"
        )
    return PassthroughVerdict.ALONE, reasons


def _vfio(ctx: _Context, bind: Sequence[GroupMember], members: Sequence[GroupMember]) -> VfioSetup:
    ids = [m.ids for m in bind]
    known = [i for i in ids if i is not None]
    inside = {m.name for m in bind}
    shared: list[str] = []
    count = 0
    for i in dict.fromkeys(known):
        everyone = ctx.by_id.get(i, ())
        count += len(everyone) - sum(1 for m in bind if m.ids == i)
        for n in everyone:  # the first few, without scanning them all
            if len(shared) >= MAX_SHOWN:
                break
            if n not in inside:
                shared.append(n)
    host = {
        m.name: m.driver for m in bind if m.driver is not None and not is_vfio_driver(m.driver)
    }
    blocking = tuple((m.name, m.driver) for m in members if m.driver and m.blocks_vfio)
    refused = tuple(
        (m.name, why)
        for m in bind
        if m.function is not None and (why := vfio_pci_refuses(m.function, ctx.topology))
    )
    return VfioSetup(
        bind=tuple(m.name for m in bind),
        ids=tuple(dict.fromkeys(known)),
        ids_known=len(known) == len(ids),
        ids_shared_with=sorted(shared, key=device_sort_key),
        ids_shared_count=count,
        host_drivers=host,
        blocking=blocking,
        refused=refused,
    )


# --------------------------------------------------------- slots and the override
def _free_ports(topology: Topology) -> list[PciFunction]:
    """Root and downstream ports with nothing below them."""
    out = []
    for f in topology.functions:
        sec = f.secondary_bus
        if f.pcie_type not in (PcieType.ROOT_PORT, PcieType.DOWNSTREAM) or sec is None:
            continue
        dom = f.address.domain
        if topology.bus_self(dom, sec) is not f:  # a bus another host bridge owns (R11.8)
            continue
        if not topology.devices_on_bus(dom, sec) and not topology.child_buses(dom, sec):
            out.append(f)
    return sorted(out, key=lambda f: f.address)


def _alone_in(topology: Topology, group: Iterable[str], card: set[str]) -> bool:
    by_name = topology.by_name()
    for n in group:
        if n in card:
            continue
        f = by_name.get(n)
        if f is None or not stays_with_host(f):
            return False
    return True


def _search(ctx: _Context, answers: list[PassthroughDevice]) -> list[PassthroughDevice]:
    """Slots and the ACS override for every device whose group holds other endpoints."""
    need = [
        i
        for i, d in enumerate(answers)
        if d.others and d.verdict in (PassthroughVerdict.WITH_OTHERS, PassthroughVerdict.UNKNOWN)
    ]
    if not need:
        return answers
    topo = ctx.topology
    model = ctx.report.canonical
    ports = _free_ports(topo)
    # the best candidates first: a port alone in its group now (its path isolates)
    size = {n: len(model.groups[g]) for g in model.groups for n in model.groups[g]}
    ports.sort(key=lambda p: (size.get(str(p.address), 0) != 1, p.address))
    budget = REGROUP_BUDGET - max(1, len(topo))  # the override's regrouping counts
    override = AcsOverride(("downstream", "multifunction"))
    applied = apply_changes(topo, [override], quirks=ctx.quirks)
    with_override = canonical_groups(applied.topology, quirks=applied.quirks, kernel=ctx.kernel)
    out = list(answers)
    for i in need:
        d = answers[i]
        card = set(d.card)
        gid = with_override.group_of(d.device)
        group = with_override.groups[gid] if gid is not None else ()
        outcome = OverrideOutcome(
            change=override.text,
            label=override.label,
            cost=override.cost,
            alone_after=gid is not None and _alone_in(applied.topology, group, card),
            group_after=group,
        )
        slots, budget = _slots(ctx, d, ports, budget)
        out[i] = attrs.evolve(d, slots=slots, acs_override=outcome)
    return out


def _slots(
    ctx: _Context, d: PassthroughDevice, ports: Sequence[PciFunction], budget: int
) -> tuple[SlotSearch, int]:
    topo = ctx.topology
    fn = topo.get(d.device)
    head = topo.get(fn.physfn) if fn.physfn is not None else fn
    a = head.address
    slot = Slot(a.domain, a.bus, a.device)
    if topo.is_root_bus(a.domain, a.bus):
        return SlotSearch(
            False,
            f"slot {short_name(str(slot))} is on a root bus: part of the root complex or "
            "chipset, it cannot move",
        ), budget
    if not ports:
        return SlotSearch(False, "the topology has no free root or downstream port"), budget
    tried: list[SlotOption] = []
    capped = False
    cost = max(1, len(topo))
    for port in ports:
        if len([o for o in tried if o.alone_after]) >= MAX_SLOT_OPTIONS:
            capped = len(tried) < len(ports)
            break
        if len(tried) >= MAX_SLOT_TRIES or budget < cost:
            capped = True
            break
        change = MoveCard(slot, port.address)
        try:
            applied = apply_changes(topo, [change], quirks=ctx.quirks)
        except WhatIfError:
            continue  # on the card itself, or too few bus numbers below it
        budget -= cost
        after = canonical_groups(applied.topology, quirks=applied.quirks, kernel=ctx.kernel)
        renamed = {str(k): str(v) for k, v in applied.renamed.items()}
        moved = renamed.get(d.device, d.device)
        card_after = {renamed.get(n, n) for n in d.card}
        gid = after.group_of(moved)
        group = after.groups[gid] if gid is not None else ()
        alone = gid is not None and _alone_in(applied.topology, group, card_after)
        tried.append(SlotOption(str(port.address), change.text, alone, group))
    found = sum(o.alone_after for o in tried)
    why = (
        f"{found} of {len(tried)} tried give it a group of its own"
        + (f" (the search stopped after {len(tried)})" if capped else "")
        + "; the groups after a move are predicted"
        + (" (facts the input lacks taken as absent)" if d.depends_on else "")
    )
    return SlotSearch(True, why, len(ports), tried, capped), budget
