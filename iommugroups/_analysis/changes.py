"""The hypothetical changes ``what-if`` applies to a machine, each a frozen value.

Changes
-------
=====================  ==========  =============================================
change                 upstream    what it models
=====================  ==========  =============================================
:class:`AcsOverride`   no          the out-of-tree ``pcie_acs_override=`` patch
:class:`ConfigAcs`     yes         the ``pci=config_acs=`` parameter (v6.11+)
:class:`SetAcs`        yes         hardware/firmware giving a port ACS
:class:`RemoveAcs`     yes         hardware/firmware without ACS on a port
:class:`AddQuirk`      if you say  a kernel patch adding an ACS or DMA-alias quirk
:class:`RemoveDevice`  yes         taking a device (and what is below it) out
:class:`MoveCard`      yes         moving a card to the slot of another port
:class:`ReachableSet`  no          a kernel carrying the ACS reachable-set series
=====================  ==========  =============================================

Changes apply in order, each to the result of the previous ones.
:class:`AcsOverride` and :class:`AddQuirk` change the quirk tables, which
act when the final machine is grouped; :class:`ReachableSet` changes how it
is grouped (the proposal's ``pci_device_group`` instead of mainline's); the
others change the topology.


Every change has ``upstream`` (available in an upstream kernel or as a pure
hardware/firmware change, with no kernel patch), ``label``, ``cost`` and
``text`` (its :func:`~iommugroups.parse_change` form). The kernel parameters
themselves are modelled in the kernel floor
(:mod:`iommugroups._kernel.acs_override`, :mod:`iommugroups._kernel.config_acs`);
here they are only applied.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import attrs

from .._errors import (
    InvalidAddress,
    IommuGroupsError,
    ParameterError,
    TopologyError,
    UnknownDevice,
)
from .._kernel.acs import pci_acs_flags_enabled, pci_std_enable_acs
from .._kernel.acs_override import AcsOverrideCheck, parse_acs_override
from .._kernel.config_acs import AcsEntry, config_acs, parse_config_acs
from .._kernel.model import REQ_ACS_FLAGS, Acs, AcsFlags, PciAddress, PciFunction, Topology
from .._kernel.quirks import AcsQuirk, DmaAliasKind, DmaAliasQuirk, Quirks, make_context
from .._kernel.reachable_set import SERIES, ProposalFacts

__all__ = [
    "AcsOverride",
    "AddQuirk",
    "Applied",
    "Change",
    "ConfigAcs",
    "MoveCard",
    "RemoveAcs",
    "ReachableSet",
    "RemoveDevice",
    "SetAcs",
    "Slot",
    "WhatIfError",
]


class WhatIfError(IommuGroupsError, ValueError):
    """A change cannot be parsed, or cannot be applied to this topology."""


# ============================================================================
# Small value types
# ============================================================================

_SLOT_RE = re.compile(
    r"^(?:(?P<domain>[0-9a-fA-F]{1,8}):)?(?P<bus>[0-9a-fA-F]{1,2}):(?P<dev>[0-9a-fA-F]{1,2})"
    r"(?:\.[0-7])?$"
)


class Slot(NamedTuple):
    """A slot (device number) on a bus: ``dddd:bb:dd``, all its functions.

    >>> Slot.parse("01:00"), str(Slot.parse("0000:03:1c.4"))
    (Slot(domain=0, bus=1, device=0), '0000:03:1c')
    """

    domain: int
    bus: int
    device: int

    @classmethod
    def parse(cls, text: str) -> Slot:
        """``[dddd:]bb:dd``; a function address's function number is ignored.

        Raises:
            WhatIfError: not a slot.
        """
        m = _SLOT_RE.match(text.strip()) if isinstance(text, str) else None
        if m is None:
            raise WhatIfError(f"not a PCI slot: {text!r} (expected [dddd:]bb:dd)")
        dev = int(m["dev"], 16)
        if dev > 0x1F:
            raise WhatIfError(f"not a PCI slot: {text!r} (device number above 1f)")
        return cls(int(m["domain"] or "0", 16), int(m["bus"], 16), dev)

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.device:02x}"


def _to_slot(value: Slot | PciAddress | str) -> Slot:
    if isinstance(value, PciAddress):
        return Slot(value.domain, value.bus, value.device)
    if isinstance(value, Slot):
        return value
    return Slot.parse(value)


def _to_address(value: PciAddress | str) -> PciAddress:
    if isinstance(value, PciAddress):
        return value
    try:
        return PciAddress.parse(value)
    except InvalidAddress as exc:
        raise WhatIfError(str(exc)) from None


def _opt_flags(value: AcsFlags | str | int | None) -> AcsFlags | None:
    if value is None:
        return None
    if isinstance(value, AcsFlags):
        return value
    if isinstance(value, str):
        try:
            return AcsFlags.parse(value)
        except ValueError as exc:
            raise WhatIfError(str(exc)) from None
    return AcsFlags.from_word(value)


def _subordinate(fn: PciFunction) -> int:
    sec = fn.secondary_bus
    assert sec is not None
    return fn.subordinate_bus if fn.subordinate_bus is not None else sec


def _get(topology: Topology, address: PciAddress, what: str) -> PciFunction:
    try:
        return topology.get(address)
    except UnknownDevice:
        raise WhatIfError(f"{what}: no PCI function {address} in the topology") from None


def _fmt_id(value: int | None) -> str:
    return "*" if value is None else f"{value:04x}"


# ============================================================================
# Changes
# ============================================================================


@attrs.frozen
class Applied:
    """A topology and quirk tables after some changes, and what happened.

    Attributes:
        topology: the changed machine.
        quirks: the changed quirk tables.
        renamed: old address -> new address of every function that moved.
        removed: addresses (old names) of functions taken out.
        notes: things worth knowing about how the changes applied.
        proposal: the machine is grouped by the reachable-set proposal with
            these facts (:class:`ReachableSet`); ``None``: by mainline.
    """

    topology: Topology
    quirks: Quirks
    renamed: Mapping[PciAddress, PciAddress] = attrs.field(factory=dict)
    removed: frozenset[PciAddress] = frozenset()
    notes: tuple[str, ...] = ()
    proposal: ProposalFacts | None = None


class Change(abc.ABC):
    """Base of the change kinds: a frozen value that knows how to apply itself.

    Every change has ``upstream`` (available in an upstream kernel or as a
    pure hardware/firmware change, with no kernel patch), ``label`` (what it
    is, one line), ``cost`` (what it costs or risks, honestly) and ``text``
    (its :func:`parse_change` form, where it has one).
    """

    __slots__ = ()

    #: The key of the change's CLI form and of its JSON entry.
    kind: ClassVar[str]

    @property
    @abc.abstractmethod
    def upstream(self) -> bool:
        """Available without an out-of-tree kernel patch."""

    @property
    @abc.abstractmethod
    def label(self) -> str:
        """What the change is, in one line."""

    @property
    @abc.abstractmethod
    def cost(self) -> str:
        """What the change costs or risks, in isolation."""

    @property
    @abc.abstractmethod
    def text(self) -> str:
        """The change's :func:`parse_change` form (a description when it has none)."""

    @abc.abstractmethod
    def apply(self, topology: Topology, quirks: Quirks) -> Applied:
        """Apply the change.

        Returns:
            An object holding the changed ``topology`` and ``quirks``, the
            functions ``renamed`` (old address -> new address) and
            ``removed`` (old addresses), and ``notes`` on how it applied.

        Raises:
            WhatIfError: it cannot be applied to this topology.
        """

    def to_json(self) -> dict[str, Any]:
        """``{"kind", "text", "label", "upstream", "cost"}``."""
        return {
            "kind": self.kind,
            "text": self.text,
            "label": self.label,
            "upstream": self.upstream,
            "cost": self.cost,
        }


# --- pcie_acs_override= --------------------------------------------------------


def _override_modes(value: str | Iterable[str]) -> tuple[str, ...]:
    try:
        return parse_acs_override(value)
    except ParameterError as exc:
        raise WhatIfError(str(exc)) from None


@attrs.frozen
class AcsOverride(Change):
    """The out-of-tree ``pcie_acs_override=`` patch. **Not upstream.**

    Args:
        modes: ``"downstream"``, ``"multifunction"``, ``"id:VVVV:DDDD"``, as a
            comma-separated string or an iterable.

    Adds the patch's ``pcie_acs_overrides`` as the last ACS quirk entry
    (its exact conditions and where they were read are on the docs page
    "Kernel parameters").

    >>> o = AcsOverride("downstream,id:8086:1234")
    >>> o.modes, o.downstream, o.multifunction, sorted(o.ids)
    (('downstream', 'id:8086:1234'), True, False, [(32902, 4660)])
    """

    kind: ClassVar[str] = "acs-override"

    modes: tuple[str, ...] = attrs.field(converter=_override_modes)

    @property
    def downstream(self) -> bool:
        """Root and downstream ports without an ACS capability count as isolated."""
        return "downstream" in self.modes

    @property
    def multifunction(self) -> bool:
        """Functions of multifunction devices without an ACS capability count as isolated."""
        return "multifunction" in self.modes

    @property
    def ids(self) -> frozenset[tuple[int, int]]:
        """(vendor, device) pairs whose functions without ACS count as isolated."""
        return AcsOverrideCheck.from_modes(self.modes).ids

    @property
    def upstream(self) -> bool:
        return False

    @property
    def label(self) -> str:
        return f"pcie_acs_override={','.join(self.modes)}"

    @property
    def cost(self) -> str:
        return (
            "claims isolation the hardware may not provide: devices it separates can still "
            "reach each other by peer-to-peer DMA that the IOMMU never sees, so giving one of "
            "them to a VM can expose the others (and what the host mapped for them); needs a "
            "kernel built with the out-of-tree patch (some distribution and community "
            "kernels), never merged upstream"
        )

    @property
    def text(self) -> str:
        return f"acs-override={','.join(self.modes)}"

    def apply(self, topology: Topology, quirks: Quirks) -> Applied:
        check = AcsOverrideCheck.from_modes(self.modes)
        notes: list[str] = []
        ctx = make_context(topology, quirks)
        for fn in topology.enumeration_order():
            if fn.pcie_type is None:
                continue
            if fn.acs is None:
                if "acs" in fn.unknown and check(fn, REQ_ACS_FLAGS, ctx):
                    notes.append(
                        f"{fn.address}: its ACS capability could not be read; the override "
                        "was applied as if it has none (the patch skips devices that have one)"
                    )
                continue
            # A device the patch would cover, but which has an ACS capability
            # that does not isolate: the patch leaves it alone.
            if (
                check.covers(fn, topology)
                and quirks.acs_enabled(fn, REQ_ACS_FLAGS, ctx) is None
                and not pci_acs_flags_enabled(fn, REQ_ACS_FLAGS)
            ):
                notes.append(
                    f"{fn.address}: pcie_acs_override does not touch it: it has an ACS "
                    f"capability (ctrl {fn.acs.ctrl.names()}), and the patch only "
                    "overrides devices without one"
                )
        new = quirks.with_acs_quirk(check.quirk(), first=False)
        return Applied(topology, new, notes=tuple(notes))


# --- pci=config_acs= -----------------------------------------------------------


def _spec_converter(value: str) -> str:
    if not isinstance(value, str):
        raise WhatIfError(f"config_acs: expected a string, got {value!r}")
    return value.strip()


@attrs.frozen
class ConfigAcs(Change):
    """The upstream ``pci=config_acs=`` kernel parameter (v6.11+; v6.15 semantics).

    Args:
        spec: ``FLAGS@DEVICE[;FLAGS@DEVICE...]`` (the kernel's syntax, on
            the docs page "Kernel parameters").
        firmware_ctrl: the firmware's ACS control value, which the ``x`` bits
            keep; ``None`` (default): each device's recorded ``Acs.ctrl``.

    >>> c = ConfigAcs("1x1x1@00:1c.0")
    >>> c.label
    'pci=config_acs=1x1x1@00:1c.0'
    >>> [(e.mask.names(), e.flags.names()) for e in c.entries]
    [('SV|RR|UF', 'SV|RR|UF')]
    """

    kind: ClassVar[str] = "config-acs"

    spec: str = attrs.field(converter=_spec_converter)
    firmware_ctrl: AcsFlags | None = attrs.field(default=None, converter=_opt_flags)
    entries: tuple[AcsEntry, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        try:
            entries = parse_config_acs(self.spec)
        except ParameterError as exc:
            raise WhatIfError(str(exc)) from None
        object.__setattr__(self, "entries", entries)

    @property
    def upstream(self) -> bool:
        return True

    @property
    def label(self) -> str:
        fw = (
            ""
            if self.firmware_ctrl is None
            else f" (firmware ctrl taken as {self.firmware_ctrl.names()})"
        )
        return f"pci=config_acs={self.spec}{fw}"

    @property
    def cost(self) -> str:
        return (
            "changes real ACS controls (upstream since v6.11): isolation it grants is real "
            "only for controls the hardware implements, and only devices with an ACS "
            "capability are affected; controls forced on (RR, CR) send peer-to-peer traffic "
            "through the root complex (slower P2P, no P2PDMA between those devices); controls "
            "forced off remove isolation and merge groups; 'x' bits take the firmware value, "
            "not the one the kernel would have enabled"
        )

    @property
    def text(self) -> str:
        return f"config-acs={self.spec.replace(';', ',')}"

    def apply(self, topology: Topology, quirks: Quirks) -> Applied:
        done = config_acs(topology, self.entries, self.firmware_ctrl)
        notes = [
            f"config_acs: {a} is an Intel Sunrise Point PCH root port: the kernel clears its "
            "RR, CR and EC controls instead of applying the flags "
            "(pci_quirk_disable_intel_spt_pch_acs_redir)"
            for a in done.spt
        ]
        for entry, hit, bare in zip(self.entries, done.matched, done.without_acs, strict=True):
            if not hit:
                notes.append(f"config_acs: entry {entry.text!r} matches no device")
            elif bare:
                shown = _names(bare[:6]) + (f" and {len(bare) - 6} more" if len(bare) > 6 else "")
                notes.append(
                    f"config_acs: entry {entry.text!r} matches {len(bare)} device"
                    f"{'s' if len(bare) != 1 else ''} without an ACS capability, which it "
                    f"leaves alone: {shown}"
                )
        new_quirks = quirks if done.quirk is None else quirks.with_acs_quirk(done.quirk)
        return Applied(topology.replace(functions=done.functions), new_quirks, notes=tuple(notes))


# --- SetAcs / RemoveAcs ----------------------------------------------------------


@attrs.frozen
class SetAcs(Change):
    """Give a PCIe function an ACS capability, or change it (hardware/firmware).

    Args:
        device: the function (usually a root or downstream port).
        ctrl: the control word; ``None``: what a kernel whose IOMMU requested
            ACS enables (R2.7): the current control plus every implemented
            SV, RR, CR and UF.
        cap: the capability word; ``None``: the current capability united
            with ``ctrl``, or ``ctrl`` (SV|RR|CR|UF when that is ``None`` too)
            when the function has none.

    >>> SetAcs("00:1c.0", "SV|RR|CR|UF").label
    'set ACS on 0000:00:1c.0: ctrl SV|RR|CR|UF'
    """

    kind: ClassVar[str] = "set-acs"

    device: PciAddress = attrs.field(converter=_to_address)
    ctrl: AcsFlags | None = attrs.field(default=None, converter=_opt_flags)
    cap: AcsFlags | None = attrs.field(default=None, converter=_opt_flags)

    def __attrs_post_init__(self) -> None:
        if self.ctrl is not None and self.cap is not None and self.ctrl & ~self.cap:
            raise WhatIfError(
                f"set-acs {self.device}: ctrl {self.ctrl.names()} enables controls the "
                f"capability {self.cap.names()} does not implement "
                f"({(self.ctrl & ~self.cap).names()})"
            )

    @property
    def upstream(self) -> bool:
        return True

    @property
    def label(self) -> str:
        parts = [f"ctrl {self.ctrl.names()}" if self.ctrl is not None else "ctrl as enabled"]
        if self.cap is not None:
            parts.append(f"cap {self.cap.names()}")
        return f"set ACS on {self.device}: {', '.join(parts)}"

    @property
    def cost(self) -> str:
        if self.ctrl is not None and (self.ctrl & REQ_ACS_FLAGS) != REQ_ACS_FLAGS:
            return (
                "a hardware or firmware change; a control word without all of SV, RR, CR and "
                "UF leaves the port non-isolating unless the capability lacks the missing ones"
            )
        return (
            "a hardware or firmware change (a port, switch or card that implements ACS, or a "
            "firmware setting): the isolation is real if the device really implements the "
            "controls; with RR and CR on, peer-to-peer traffic between the devices below goes "
            "through the root complex (lower P2P bandwidth)"
        )

    @property
    def text(self) -> str:
        out = f"set-acs={self.device}"
        if self.ctrl is not None or self.cap is not None:
            out += f":{self.ctrl.names().replace('|', ',') if self.ctrl is not None else ''}"
        if self.cap is not None:
            out += f":{self.cap.names().replace('|', ',')}"
        return out

    def apply(self, topology: Topology, quirks: Quirks) -> Applied:
        fn = _get(topology, self.device, "set-acs")
        if fn.pcie_type is None:
            raise WhatIfError(
                f"set-acs: {fn.address} is conventional PCI; ACS is a PCIe extended "
                "capability (conventional devices are never ACS-isolated, R2.3)"
            )
        old = fn.acs
        if self.cap is not None:
            cap = self.cap
        elif old is not None:
            cap = old.cap | (self.ctrl or AcsFlags.NONE)
        else:
            cap = self.ctrl if self.ctrl is not None else REQ_ACS_FLAGS
        if self.ctrl is not None:
            ctrl = self.ctrl
        else:  # what the kernel enables (R2.7)
            ctrl = pci_std_enable_acs(Acs(cap, old.ctrl if old is not None else AcsFlags.NONE))
            ctrl &= cap
        if ctrl & ~cap:
            raise WhatIfError(
                f"set-acs {fn.address}: ctrl {ctrl.names()} enables controls the capability "
                f"{cap.names()} does not implement"
            )
        new = attrs.evolve(fn, acs=Acs(cap, ctrl), unknown=fn.unknown - {"acs"})
        return Applied(_replace_fn(topology, fn, new), quirks)


@attrs.frozen
class RemoveAcs(Change):
    """Take away a function's ACS capability (hardware or firmware without ACS)."""

    kind: ClassVar[str] = "remove-acs"

    device: PciAddress = attrs.field(converter=_to_address)

    @property
    def upstream(self) -> bool:
        return True

    @property
    def label(self) -> str:
        return f"remove the ACS capability of {self.device}"

    @property
    def cost(self) -> str:
        return (
            "isolation at this device is lost: what is below a port without ACS shares the "
            "port's group (models hardware, or firmware hiding the capability, without ACS)"
        )

    @property
    def text(self) -> str:
        return f"remove-acs={self.device}"

    def apply(self, topology: Topology, quirks: Quirks) -> Applied:
        fn = _get(topology, self.device, "remove-acs")
        if fn.acs is None:
            raise WhatIfError(f"remove-acs: {fn.address} has no ACS capability to remove")
        new = attrs.evolve(fn, acs=None, unknown=fn.unknown - {"acs"})
        return Applied(_replace_fn(topology, fn, new), quirks)


def _replace_fn(topology: Topology, old: PciFunction, new: PciFunction) -> Topology:
    return topology.replace(functions=[new if f is old else f for f in topology.functions])


# --- AddQuirk --------------------------------------------------------------------


@attrs.frozen
class AddQuirk(Change):
    """A device quirk, as a kernel patch would add it.

    Args:
        quirk: an :class:`~iommugroups.AcsQuirk` (tried before the kernel's
            entries, as ``Quirks.with_acs_quirk`` does) or a
            :class:`~iommugroups.DmaAliasQuirk`.
        upstream: the quirk is in the kernel you will run (say so only if it
            is merged); a patch of your own is not upstream.
    """

    kind: ClassVar[str] = "quirk"

    quirk: AcsQuirk | DmaAliasQuirk
    upstream: bool = False

    @property
    def _ids(self) -> str:
        return f"{_fmt_id(self.quirk.vendor)}:{_fmt_id(self.quirk.device)}"

    @property
    def label(self) -> str:
        q = self.quirk
        if isinstance(q, DmaAliasQuirk):
            return f"DMA alias quirk {q.name} for {self._ids}"
        if q.is_declarative:
            verdict = q.to_mapping()["verdict"].replace("_", "-")
            return f"ACS quirk {q.name}: {self._ids} {verdict}"
        return f"ACS quirk {q.name} for {self._ids}"

    @property
    def cost(self) -> str:
        where = "" if self.upstream else "; a kernel patch (not upstream)"
        q = self.quirk
        if isinstance(q, DmaAliasQuirk):
            return (
                f"adds DMA aliases to {self._ids}: can only merge groups; right when the "
                "device really issues DMA with those requester ids, needlessly restrictive "
                f"otherwise{where}"
            )
        if q.is_declarative and q.to_mapping()["verdict"] == "not_isolated":
            return (
                f"declares {self._ids} not isolating: safe (it can only merge groups), but its "
                f"devices can no longer be assigned separately{where}"
            )
        return (
            f"declares ACS isolation for {self._ids} without the ACS capability saying so: only "
            "as safe as the vendor's assurance that the device does no internal peer-to-peer; "
            f"if that is wrong, devices it separates can reach each other by DMA{where}"
        )

    @property
    def text(self) -> str:
        q = self.quirk
        up = ":upstream" if self.upstream else ""
        if isinstance(q, AcsQuirk) and q.is_declarative and q.name == _default_acs_name(q):
            m = q.to_mapping()
            if m.get("provides", "SV|RR|CR|UF") == "SV|RR|CR|UF" and "pcie_types" not in m:
                verdict = m["verdict"].replace("_", "-")
                return f"quirk={verdict}:{self._ids.replace('*', 'any')}{up}"
        if isinstance(q, DmaAliasQuirk) and q.name == "user_dma_alias" and q.vendor is not None:
            spec = _alias_text(q)
            if spec is not None:
                return f"quirk=dma-alias:{self._ids.replace('*', 'any')}:{spec}{up}"
        return f"quirk {q.name} ({self._ids})"

    def apply(self, topology: Topology, quirks: Quirks) -> Applied:
        if isinstance(self.quirk, AcsQuirk):
            return Applied(topology, quirks.with_acs_quirk(self.quirk))
        return Applied(topology, quirks.with_dma_alias_quirk(self.quirk))


def _default_acs_name(q: AcsQuirk) -> str:
    verdict = q.to_mapping()["verdict"]
    return f"user_{verdict}_{_fmt_id(q.vendor)}_{_fmt_id(q.device)}"


def _alias_text(q: DmaAliasQuirk) -> str | None:
    if (
        q.subsystem_vendor is not None
        or q.subsystem_device is not None
        or q.class_code is not None
    ):
        return None
    if q.kind is DmaAliasKind.SLOT_FUNCTION and q.functions and not q.devfns:
        return ",".join(f"fn{f}" for f in sorted(q.functions))
    if q.kind is DmaAliasKind.FIXED and q.devfns and not q.functions:
        return ",".join(f"{d >> 3:02x}.{d & 7}" for d in sorted(q.devfns))
    return None


# --- RemoveDevice / MoveCard -----------------------------------------------------


def _subtree(topology: Topology, top: Sequence[PciFunction]) -> dict[PciAddress, PciFunction]:
    """``top``, everything below its bridges, and the VFs of all of them."""
    out = {f.address: f for f in top}
    for br in top:
        out.update((f.address, f) for f in topology.subtree(br))
    for pf in list(out.values()):
        for vf in topology.vfs_of(pf.address):
            out[vf.address] = vf
    return out


def _slot_functions(topology: Topology, slot: Slot) -> list[PciFunction]:
    return [
        f
        for f in topology.devices_on_bus(slot.domain, slot.bus)
        if f.address.device == slot.device and not f.is_virtfn
    ]


def _names(addresses: Iterable[PciAddress]) -> str:
    return " ".join(str(a) for a in sorted(addresses))


@attrs.frozen
class RemoveDevice(Change):
    """Take a function out of the machine, with everything below it.

    Args:
        address: the function.
        whole_slot: remove every function of its slot (``remove=BB:SS``).

    A bridge takes its whole bus range with it; a PF takes its VFs. Removing
    function 0 removes the whole slot: without function 0 the kernel's slot
    scan (``pci_scan_slot``) finds no other function.
    """

    kind: ClassVar[str] = "remove"

    address: PciAddress = attrs.field(converter=_to_address)
    whole_slot: bool = False

    @property
    def upstream(self) -> bool:
        return True

    @property
    def _target(self) -> str:
        a = self.address
        return f"slot {Slot(a.domain, a.bus, a.device)}" if self.whole_slot else str(a)

    @property
    def label(self) -> str:
        return f"remove {self._target} and everything below it"

    @property
    def cost(self) -> str:
        return (
            "the device is taken out (or disabled in firmware): what it and the devices below "
            "it provide is gone"
        )

    @property
    def text(self) -> str:
        a = self.address
        return f"remove={Slot(a.domain, a.bus, a.device) if self.whole_slot else a}"

    def apply(self, topology: Topology, quirks: Quirks) -> Applied:
        a = self.address
        slot = Slot(a.domain, a.bus, a.device)
        notes: list[str] = []
        if self.whole_slot:
            top = _slot_functions(topology, slot)
            if not top:
                raise WhatIfError(f"remove: no device in slot {slot}")
        else:
            fn = _get(topology, a, "remove")
            top = [fn]
            if a.function == 0 and not fn.is_virtfn:
                top = _slot_functions(topology, slot)
                if len(top) > 1:
                    notes.append(
                        f"remove {a}: function 0 takes the rest of slot {slot} with it "
                        f"({_names(f.address for f in top if f is not fn)}): without it the "
                        "slot scan finds no other function"
                    )
        gone = _subtree(topology, top)
        rest = [f for f in topology.functions if f.address not in gone]
        try:
            new = topology.replace(functions=rest)
        except TopologyError as exc:  # pragma: no cover - removal keeps validity
            raise WhatIfError(f"remove {self._target}: {exc}") from exc
        return Applied(new, quirks, removed=frozenset(gone), notes=tuple(notes))


@attrs.frozen
class MoveCard(Change):
    """Move a card (every function of a slot, and a switch below it) below another port.

    Args:
        from_slot: the card's slot (``[dddd:]bb:dd``; an address names its
            slot), kept as a named tuple ``(domain, bus, device)``.
        to_port: a bridge whose secondary bus is empty.

    The card lands in device 0 of the port's secondary bus, keeping its
    function numbers. Routing ids of the card's functions and of their VFs
    shift by one amount (a VF keeps its offset from its PF, as SR-IOV
    computes it), so VFs may land on the buses after the port's secondary
    bus; bridges on the card keep the size of their bus ranges, placed after
    those VF buses, with everything below them renumbered by the same shift.
    Explicit DMA-alias devfns of a moved function shift with its devfn.

    Refused (:class:`WhatIfError`) when the slot is empty or on a root bus
    (part of the root complex), when the port is unknown, not a bridge,
    below the card itself or occupied (a device in its bus range), and when
    its bus range is too small for the card.
    """

    kind: ClassVar[str] = "move"

    from_slot: Slot = attrs.field(converter=_to_slot)
    to_port: PciAddress = attrs.field(converter=_to_address)

    @property
    def upstream(self) -> bool:
        return True

    @property
    def label(self) -> str:
        return f"move the card in slot {self.from_slot} below {self.to_port}"

    @property
    def cost(self) -> str:
        return (
            "a physical change: the card must fit the port's slot (form factor, lanes, power); "
            "its group then follows the new port's ACS, and what was below the old port changes"
        )

    @property
    def text(self) -> str:
        return f"move={self.from_slot}@{self.to_port}"

    def apply(self, topology: Topology, quirks: Quirks) -> Applied:
        slot, port = self.from_slot, self.to_port
        top = _slot_functions(topology, slot)
        if not top:
            raise WhatIfError(f"move: no device in slot {slot}")
        if topology.is_root_bus(slot.domain, slot.bus):
            raise WhatIfError(
                f"move: slot {slot} is on a root bus: it is part of the root complex or "
                "chipset, not a card"
            )
        target = _get(topology, port, "move")
        if not target.is_bridge:
            raise WhatIfError(f"move: {port} is not a bridge: nothing plugs in below it")
        moved = _subtree(topology, top)
        if target.address in moved:
            raise WhatIfError(f"move: {port} is on the card in slot {slot} itself")
        tdom = target.address.domain
        sec_t, sub_t = target.secondary_bus or 0, _subordinate(target)
        if (tdom, sec_t) == (slot.domain, slot.bus):
            raise WhatIfError(f"move: the card in slot {slot} is already below {port}")
        occupants = sorted(f.address for f in topology.subtree(target) if f.address not in moved)
        if occupants:
            shown = _names(occupants[:4]) + (" ..." if len(occupants) > 4 else "")
            raise WhatIfError(f"move: {port} is occupied: {shown} already below it")
        top_addrs = {f.address for f in top}
        card_vfs = [f for f in moved.values() if f.physfn is not None and f.physfn in top_addrs]
        delta = (sec_t << 8) - (slot.bus << 8 | slot.device << 3)
        new_addr: dict[PciAddress, PciAddress] = {}
        for f in (*top, *card_vfs):
            rid = f.address.rid + delta
            if not 0 <= rid <= 0xFFFF:  # pragma: no cover - bus ranges keep rids in range
                raise WhatIfError(f"move: {f.address} would leave the routing-id space")
            new_addr[f.address] = PciAddress.from_devfn(tdom, rid >> 8, rid & 0xFF)
        next_free = max(a.bus for a in new_addr.values()) + 1
        shifts: list[tuple[int, int, int]] = []  # (old secondary, old subordinate, shift)
        for br in sorted((f for f in top if f.is_bridge), key=lambda f: f.address.devfn):
            lo, hi = br.secondary_bus or 0, _subordinate(br)
            shifts.append((lo, hi, next_free - lo))
            next_free += hi - lo + 1
        if next_free - 1 > sub_t:
            raise WhatIfError(
                f"move: no room below {port}: the card needs buses {sec_t:02x}-"
                f"{next_free - 1:02x} ({next_free - sec_t}), the port's range is "
                f"{sec_t:02x}-{sub_t:02x} ({sub_t - sec_t + 1})"
            )

        def shift_bus(bus: int) -> int:
            for lo, hi, c in shifts:
                if lo <= bus <= hi:
                    return bus + c
            raise AssertionError(f"bus {bus:02x} is not on the card")  # pragma: no cover

        for a in moved:
            if a not in new_addr:
                new_addr[a] = PciAddress(tdom, shift_bus(a.bus), a.device, a.function)
        notes: list[str] = []
        rebuilt: list[PciFunction] = []
        for a, f in moved.items():
            na = new_addr[a]
            fields: dict[str, Any] = {"address": na}
            if f.is_bridge:
                fields["secondary_bus"] = shift_bus(f.secondary_bus or 0)
                fields["subordinate_bus"] = shift_bus(_subordinate(f))
            if f.physfn is not None:
                fields["physfn"] = new_addr.get(f.physfn, f.physfn)
            shift = na.devfn - a.devfn
            if shift and f.dma_alias_devfns:
                kept = frozenset(d + shift for d in f.dma_alias_devfns if 0 <= d + shift <= 0xFF)
                if len(kept) != len(f.dma_alias_devfns):
                    notes.append(
                        f"move: {a} -> {na}: DMA-alias devfns that fall off the bus were dropped"
                    )
                fields["dma_alias_devfns"] = kept
            rebuilt.append(attrs.evolve(f, **fields))
        rest = [f for f in topology.functions if f.address not in moved]
        try:
            new = topology.replace(functions=[*rest, *rebuilt])
        except TopologyError as exc:
            raise WhatIfError(f"move: the moved card does not fit below {port}: {exc}") from exc
        return Applied(new, quirks, renamed=new_addr, notes=tuple(notes))


# --- the ACS reachable-set proposal ------------------------------------------------


def _facts_converter(value: ProposalFacts | str | None) -> ProposalFacts:
    if value is None:
        return ProposalFacts()
    if isinstance(value, ProposalFacts):
        return value
    return parse_proposal_facts(value)


def parse_proposal_facts(text: str) -> ProposalFacts:
    """``ASSUMPTION[,ASSUMPTION...]`` of ``reachable-set=...``, as :class:`ProposalFacts`.

    ``no-acs-enhanced`` (no device advertises ACS Enhanced), ``acs-enhanced``,
    ``mmio@BRIDGE`` and ``no-mmio@BRIDGE`` (a PCIe-to-PCI bridge has, or has
    no, MMIO); ``""`` states nothing.

    >>> parse_proposal_facts("no-acs-enhanced,no-mmio@00:1e.0").text
    'no-acs-enhanced,no-mmio@0000:00:1e.0'

    Raises:
        WhatIfError: an assumption it does not know.
    """
    enhanced: bool | None = None
    mmio: set[PciAddress] = set()
    no_mmio: set[PciAddress] = set()
    for part in (p.strip() for p in text.split(",")):
        key, at, where = part.partition("@")
        key = key.strip().lower().replace("_", "-")
        if not part:
            continue
        if not at and key in ("no-acs-enhanced", "acs-enhanced"):
            enhanced = key == "acs-enhanced"
        elif at and key in ("mmio", "no-mmio"):
            (mmio if key == "mmio" else no_mmio).add(_to_address(where.strip()))
        else:
            raise WhatIfError(
                f"reachable-set: unknown assumption {part!r} (expected no-acs-enhanced, "
                "acs-enhanced, mmio@BRIDGE or no-mmio@BRIDGE)"
            )
    try:
        return ProposalFacts(enhanced, mmio, no_mmio)
    except ValueError as exc:
        raise WhatIfError(f"reachable-set: {exc}") from None


@attrs.frozen
class ReachableSet(Change):
    """A kernel carrying the ACS reachable-set series (v3, 2025-09-05). **Not upstream.**

    Args:
        facts: what is known beyond the model (ACS Enhanced, bridges' MMIO),
            as a ``ProposalFacts`` (``iommugroups._kernel.reachable_set``) or
            the text of :func:`parse_proposal_facts`; default: nothing, each
            missing fact read the way that isolates least.

    The topology is not changed: the machine after is grouped by the
    proposal's ``pci_device_group`` (rules R6.1-R6.13 of the rule table), the
    machine before by mainline's, so the report shows what the series would
    change on this machine.

    >>> r = ReachableSet("no-acs-enhanced")
    >>> r.text, r.upstream
    ('reachable-set=no-acs-enhanced', False)
    """

    kind: ClassVar[str] = "reachable-set"

    facts: ProposalFacts = attrs.field(default=None, converter=_facts_converter)

    @property
    def upstream(self) -> bool:
        return False

    @property
    def label(self) -> str:
        said = f" (assuming {self.facts.text})" if self.facts.text else ""
        return (
            "the ACS reachable-set series (Jason Gunthorpe, v3 of 2025-09-05, "
            f"{SERIES}; not in mainline through 7.3){said}"
        )

    @property
    def cost(self) -> str:
        return (
            "needs a kernel carrying the out-of-tree series (reported: NVIDIA's linux-nvidia "
            "6.14); by design it widens groups where ACS is missing, off or asymmetric "
            "(a switch whose downstream ports lack ACS becomes one group with what is below "
            "it), which can make devices unusable for VFIO on their own; it splits root "
            "ports without an ACS capability from their devices and the functions of a "
            "multifunction device without one, taking the PCIe spec's word that such "
            "hardware has no internal loopback, which older hardware may not honour"
        )

    @property
    def text(self) -> str:
        return f"reachable-set={self.facts.text}" if self.facts.text else "reachable-set"

    def apply(self, topology: Topology, quirks: Quirks) -> Applied:
        notes: list[str] = []
        if self.facts.acs_enhanced is not False and any(
            f.acs is not None and f.pcie_type is not None for f in topology.functions
        ):
            notes.append(
                "reachable-set: whether ports advertise ACS Enhanced is not in the model; "
                "ports with an ACS capability count as not isolating their memory targets "
                "(R6.12). Add 'no-acs-enhanced' if they do not (QEMU's ports do not)"
            )
        return Applied(topology, quirks, notes=tuple(notes), proposal=self.facts)
