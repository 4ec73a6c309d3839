"""What if...? Apply hypothetical changes to a machine and compare its IOMMU groups.

:func:`what_if` applies a list of changes to a topology (and its quirk
tables), groups the machine before and after with
:func:`~iommugroups.canonical_groups`, and reports the difference: per
device, whether its group *split* (companions left), *merged* (companions
joined) or stayed the same, and per group how the groups of the two runs
match up by membership (group ids are not compared: they are allocation
order). Every change says whether it is available in an upstream kernel
(``upstream``), what it is (``label``) and what it costs (``cost``); the
result's :attr:`WhatIfResult.labels` lists the non-upstream ones with their
cost, so that a report never shows a patched kernel's groups without saying so.

>>> from iommugroups import examples
>>> r = what_if(examples.desktop(), ["acs-override=downstream,multifunction"])
>>> r.device("0000:02:00.0").status.value, r.device("0000:02:00.0").left
('split', ('0000:00:02.0',))
>>> r.labels[0][0]
'pcie_acs_override=downstream,multifunction'

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
=====================  ==========  =============================================

Changes apply in order, each to the result of the previous ones.
:class:`AcsOverride` and :class:`AddQuirk` change the quirk tables, which
act when the final machine is grouped; the others change the topology.

``pcie_acs_override=`` (not upstream) -- what was read and modelled
------------------------------------------------------------------
The patch ("PCI: Enable overrides for missing ACS capabilities", carried by
distribution and community kernels, never merged) was read in several
copies of the same text found by searching for ``pcie_acs_override``: a
v4.10-era diff of ``Documentation/kernel-parameters.txt`` and
``drivers/pci/quirks.c`` quoted on a forum, gist copies for 3.15/3.19 and
4.10+, and a 2024 openSUSE package ``0001-add-acs-overrides.patch``; the
logic is the same in all of them:

* ``pcie_acs_override_setup`` parses a comma-separated list; an option
  matches by prefix (``strncmp``): ``downstream``, ``multifunction``,
  ``id:VVVV:DDDD``. Each id field is read as exactly four characters
  (``snprintf(opt, 5, ...)`` then ``kstrtol(opt, 16)``), so ids must be
  written with four hex digits; at most 15 ids are kept (``NUM_ACS_IDS`` 16,
  the check is ``max_acs_id >= NUM_ACS_IDS - 1``), later ones are dropped
  with "Out of PCIe ACS override slots". Unknown options are silently
  ignored by the kernel; :func:`parse_change` rejects them instead.
* ``pcie_acs_overrides(dev, acs_flags)`` is appended as the **last** entry of
  ``pci_dev_acs_enabled[]`` (``{ PCI_ANY_ID, PCI_ANY_ID, pcie_acs_overrides }``
  just before the terminator), so every kernel quirk that answers for a
  device wins over it (R2.5): an Intel PCH root port keeps the PCH quirk's
  answer, an unlisted Zhaoxin port stays "not enabled". Modelled with
  ``Quirks.with_acs_quirk(..., first=False)``, i.e. after the kernel table.
* It answers -ENOTTY (no verdict, generic rules follow) for a device that is
  **not PCIe or that has an ACS extended capability**: a port whose ACS
  capability exists but is not enabled is *not* overridden. Otherwise it
  answers 1 ("enabled", whatever controls were requested) when the device's
  vendor:device is in the id list; or when it is a downstream or root port
  and ``downstream`` is on; or when it is an endpoint, upstream port, legacy
  endpoint or RCiEP, ``dev->multifunction`` is set (the kernel's flag, R5.6)
  and ``multifunction`` is on. Anything else (PCIe-to-PCI bridges, event
  collectors, single-function endpoints) gets -ENOTTY.

A device whose ACS capability could not be read (``"acs"`` in
``PciFunction.unknown``) is modelled as having none, as grouping does; the
result notes every such device the override would touch.

``pci=config_acs=`` (upstream) -- what was read and modelled
------------------------------------------------------------
Added by commit 47c8846a49ba "PCI: Extend ACS configurability" (v6.11), fixed
by 9cf8a952d57b "PCI/ACS: Fix 'pci=config_acs=' parameter" (v6.15, and
6.13-stable). The text read: ``__pci_config_acs``, ``pci_enable_acs``,
``pci_dev_str_match`` and ``pci_dev_str_match_path`` of ``drivers/pci/pci.c``
(a recent annotated copy of the fixed code, and the fix's stable-review
mail), the ``kernel-parameters.txt`` entry as quoted in the 2024-2025
"Documentation: Fix config_acs= example" thread, and
``pci_quirk_disable_intel_spt_pch_acs_redir`` of ``quirks.c``.

* Syntax: ``FLAGS@DEVICE[;FLAGS@DEVICE...]`` (``;`` separates entries: a
  ``,`` would end the whole ``pci=`` option). FLAGS is read right to left,
  the last character is bit 0: SV, TB, RR, CR, UF, EC, DT. ``1`` forces the
  control on, ``0`` forces it off, ``x``/``X`` leaves it. A ``0``/``1``
  beyond bit 6 is "Invalid ACS flags specified", any other character
  "Invalid ACS flags... Ignoring", an entry without ``@`` "ACS Flags
  missing": the kernel then configures nothing; :func:`parse_change` raises.
* DEVICE is ``[DDDD:]BB:SS.F[/SS.F...]`` (a path: the last element is the
  device's own devfn, each earlier one its upstream bridge's, the first one
  a full address) or ``pci:VVVV:DDDD[:SVVV:SDDD]`` (``0`` is a wildcard).
  Entries are tried in order and the **first** that matches the device is
  used.
* Only a device **with an ACS capability** is configured (``pci_enable_acs``
  returns before when ``dev->acs_cap`` is 0). It happens whether or not an
  IOMMU requested ACS, after the kernel's own enabling, and the new control
  word is ``(fw_ctrl & ~mask) | (flags & mask)``: the ``x`` bits take the
  *firmware* value, not the one the kernel would have enabled. The model has
  no separate firmware value: by default the recorded ``Acs.ctrl`` stands for
  it (right for a topology described before boot; on a capture from a kernel
  with an IOMMU it already holds the bits the kernel enabled), or give
  :attr:`ConfigAcs.firmware_ctrl`. Bits the capability does not implement
  are taken to read back as 0.
* On Intel Sunrise Point PCH root ports (``pci_quirk_intel_spt_pch_acs_match``)
  a matching entry does not write the standard control at all:
  ``pci_dev_specific_disable_acs_redir`` runs
  ``pci_quirk_disable_intel_spt_pch_acs_redir`` instead, which clears RR, CR
  and EC in the port's real (non-standard) control register, whatever the
  flags say. Modelled by a first-tried ACS quirk for those ports.
* Kernels v6.11-v6.14 without the fix computed
  ``(ctrl & ~mask) | (fw_ctrl & mask) | flags`` and could not parse more
  than one entry; that older behaviour is not modelled.

CLI grammar (:func:`parse_change`)
----------------------------------
::

    acs-override=MODE[,MODE...]        MODE: downstream | multifunction | id:VVVV:DDDD
                                       (also: pcie_acs_override=...)
    config-acs=FLAGS@DEV[;FLAGS@DEV]   (also: pci=config_acs=...)
    set-acs=ADDR[:CTRL[:CAP]]          CTRL, CAP: ACS flags such as SV|RR|CR|UF, or -
    remove-acs=ADDR
    remove=ADDR | remove=SLOT
    move=SLOT=>PORT                    (also ->)
    quirk=isolated:VVVV:DDDD[:upstream]
    quirk=not-isolated:VVVV:DDDD[:upstream]
    quirk=dma-alias:VVVV:DDDD:ALIAS[,ALIAS...][:upstream]
                                       ALIAS: fnN (function N of the device's own
                                       slot) or SS.F (a devfn on its own bus)

``ADDR`` is ``[DDDD:]BB:SS.F``, ``SLOT`` is ``[DDDD:]BB:SS``, ids are hex
(``*`` for any device id in a quirk). Bad text raises :class:`WhatIfError`.
"""

from __future__ import annotations

import abc
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import attrs

from .._errors import InvalidAddress, IommuGroupsError, TopologyError, UnknownDevice
from .._kernel.canonical import canonical_groups
from .._kernel.groups import Grouping, device_sort_key
from .._kernel.model import Acs, AcsFlags, PciAddress, PcieType, PciFunction, Topology
from .._kernel.quirks import (
    DEFAULT_QUIRKS,
    AcsQuirk,
    DmaAliasKind,
    DmaAliasQuirk,
    QuirkContext,
    Quirks,
    _intel_spt_pch_acs_match,
    make_context,
    pci_acs_ctrl_enabled,
)

__all__ = [
    "WHATIF_SCHEMA",
    "AcsOverride",
    "AddQuirk",
    "Applied",
    "Change",
    "ConfigAcs",
    "DeviceDiff",
    "DeviceStatus",
    "GroupMatch",
    "MoveCard",
    "RemoveAcs",
    "RemoveDevice",
    "SetAcs",
    "Slot",
    "WhatIfError",
    "WhatIfResult",
    "apply_changes",
    "parse_change",
    "render_whatif",
    "what_if",
]

#: The ``schema`` value of :meth:`WhatIfResult.to_json`.
WHATIF_SCHEMA = "iommugroups.whatif/1"

#: R2.1 ``REQ_ACS_FLAGS``.
_REQ = AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF
_VENDOR_INTEL = 0x8086
#: ``NUM_ACS_IDS - 1``: ids the override patch keeps.
_MAX_OVERRIDE_IDS = 15


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
    """

    topology: Topology
    quirks: Quirks
    renamed: Mapping[PciAddress, PciAddress] = attrs.field(factory=dict)
    removed: frozenset[PciAddress] = frozenset()
    notes: tuple[str, ...] = ()


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

_OVERRIDE_ID_RE = re.compile(r"^id:([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$")
_PORT_TYPES = frozenset({PcieType.DOWNSTREAM, PcieType.ROOT_PORT})
_MF_TYPES = frozenset({PcieType.ENDPOINT, PcieType.UPSTREAM, PcieType.LEG_END, PcieType.RC_END})


def _override_modes(value: str | Iterable[str]) -> tuple[str, ...]:
    parts = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for raw in parts:
        mode = raw.strip().lower()
        if mode not in ("downstream", "multifunction") and not _OVERRIDE_ID_RE.match(mode):
            raise WhatIfError(
                f"pcie_acs_override: unknown mode {raw.strip()!r} (expected downstream, "
                "multifunction or id:VVVV:DDDD with four hex digits each; the kernel would "
                "silently ignore it)"
            )
        if mode not in out:
            out.append(mode)
    if not out:
        raise WhatIfError("pcie_acs_override: no mode given")
    if sum(m.startswith("id:") for m in out) > _MAX_OVERRIDE_IDS:
        raise WhatIfError(
            f"pcie_acs_override: more than {_MAX_OVERRIDE_IDS} ids; the patch keeps "
            f"{_MAX_OVERRIDE_IDS} (NUM_ACS_IDS - 1) and drops the rest "
            "('Out of PCIe ACS override slots')"
        )
    return tuple(out)


@attrs.frozen
class _OverrideCheck:
    """``pcie_acs_overrides`` of the patch (see the module docstring)."""

    downstream: bool
    multifunction: bool
    ids: frozenset[tuple[int, int]]

    def __call__(self, fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
        # "Never override ACS for legacy devices or devices with ACS caps"
        if fn.pcie_type is None or fn.acs is not None:
            return None
        if (fn.vendor, fn.device) in self.ids:
            return True
        if fn.pcie_type in _PORT_TYPES:
            return True if self.downstream else None
        if fn.pcie_type in _MF_TYPES and self.multifunction:
            return True if ctx.topology.is_multifunction(fn) else None
        return None


@attrs.frozen
class AcsOverride(Change):
    """The out-of-tree ``pcie_acs_override=`` patch. **Not upstream.**

    Args:
        modes: ``"downstream"``, ``"multifunction"``, ``"id:VVVV:DDDD"``, as a
            comma-separated string or an iterable.

    Adds the patch's ``pcie_acs_overrides`` as the last ACS quirk entry (see
    the module docstring for its exact conditions and where they were read).

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
        return frozenset(
            (int(m[3:7], 16), int(m[8:12], 16)) for m in self.modes if m.startswith("id:")
        )

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
        check = _OverrideCheck(self.downstream, self.multifunction, self.ids)
        quirk = AcsQuirk(None, None, "pcie_acs_overrides", check)
        notes: list[str] = []
        ctx = make_context(topology, quirks)
        for fn in topology.enumeration_order():
            if fn.pcie_type is None:
                continue
            if fn.acs is None:
                if "acs" in fn.unknown and check(fn, _REQ, ctx):
                    notes.append(
                        f"{fn.address}: its ACS capability could not be read; the override "
                        "was applied as if it has none (the patch skips devices that have one)"
                    )
                continue
            # A device the patch would cover, but which has an ACS capability
            # that does not isolate: the patch leaves it alone.
            covered = (fn.vendor, fn.device) in self.ids or (
                fn.pcie_type in _PORT_TYPES and self.downstream
            )
            covered = covered or (
                fn.pcie_type in _MF_TYPES and self.multifunction and topology.is_multifunction(fn)
            )
            if covered and quirks.acs_enabled(fn, _REQ, ctx) is None:
                required = _REQ & (fn.acs.cap | AcsFlags.EC)
                if (fn.acs.ctrl & required) != required:
                    notes.append(
                        f"{fn.address}: pcie_acs_override does not touch it: it has an ACS "
                        f"capability (ctrl {fn.acs.ctrl.names()}), and the patch only "
                        "overrides devices without one"
                    )
        return Applied(topology, quirks.with_acs_quirk(quirk, first=False), notes=tuple(notes))


# --- pci=config_acs= -----------------------------------------------------------

_ID_SPEC_RE = re.compile(
    r"^pci:([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4})(?::([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4}))?$"
)
_PATH_SPEC_RE = re.compile(
    r"^(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])"
    r"((?:/[0-9a-fA-F]{1,2}\.[0-7])*)$"
)


@attrs.frozen
class _IdSpec:
    """``pci:VVVV:DDDD[:SVVV:SDDD]`` of ``pci_dev_str_match``: 0 matches any."""

    vendor: int
    device: int
    subsystem_vendor: int = 0
    subsystem_device: int = 0

    def matches(self, fn: PciFunction, topology: Topology) -> bool:
        return (
            (not self.vendor or self.vendor == fn.vendor)
            and (not self.device or self.device == fn.device)
            and (not self.subsystem_vendor or self.subsystem_vendor == fn.subsystem_vendor)
            and (not self.subsystem_device or self.subsystem_device == fn.subsystem_device)
        )


@attrs.frozen
class _PathSpec:
    """``[DDDD:]BB:SS.F[/SS.F...]`` of ``pci_dev_str_match_path``."""

    domain: int
    bus: int
    devfn: int
    path: tuple[int, ...]

    def matches(self, fn: PciFunction, topology: Topology) -> bool:
        dev: PciFunction | None = fn
        for devfn in reversed(self.path):
            assert dev is not None
            if dev.address.devfn != devfn:
                return False
            dev = _upstream_bridge(dev, topology)
            if dev is None:
                return False
        assert dev is not None
        a = dev.address
        return (a.domain, a.bus, a.devfn) == (self.domain, self.bus, self.devfn)


def _upstream_bridge(fn: PciFunction, topology: Topology) -> PciFunction | None:
    """``pci_upstream_bridge``: the bridge above (a VF's PF's), ``None`` on a root bus."""
    if fn.physfn is not None and fn.physfn in topology:
        fn = topology.get(fn.physfn)
    a = fn.address
    if topology.is_root_bus(a.domain, a.bus):
        return None
    return topology.bus_self(a.domain, a.bus)


def _devfn(slot: str, func: str, where: str) -> int:
    s = int(slot, 16)
    if s > 0x1F:
        raise WhatIfError(f"{where}: device number {slot} is above 1f")
    return s << 3 | int(func)


def _parse_dev_spec(text: str, where: str) -> _IdSpec | _PathSpec:
    m = _ID_SPEC_RE.match(text)
    if m is not None:
        return _IdSpec(*(int(g, 16) if g is not None else 0 for g in m.groups()))
    m = _PATH_SPEC_RE.match(text)
    if m is not None:
        parts = [part.split(".") for part in m[5].split("/")[1:] if part]
        path = tuple(_devfn(slot, func, where) for slot, func in parts)
        return _PathSpec(int(m[1] or "0", 16), int(m[2], 16), _devfn(m[3], m[4], where), path)
    raise WhatIfError(
        f"{where}: cannot parse the device {text!r} (expected [DDDD:]BB:SS.F[/SS.F...] or "
        "pci:VVVV:DDDD[:SVVV:SDDD]; the kernel says 'Can't parse ACS command line parameter')"
    )


@attrs.frozen
class _AcsEntry:
    text: str
    mask: AcsFlags
    flags: AcsFlags
    device: _IdSpec | _PathSpec


def _parse_config_acs(spec: str) -> tuple[_AcsEntry, ...]:
    spec = spec.strip()
    if not spec:
        raise WhatIfError("config_acs: empty specification (expected FLAGS@DEVICE[;...])")
    if "," in spec:
        raise WhatIfError(
            f"config_acs: {spec!r} contains ',': that ends the pci= option; "
            "separate entries with ';'"
        )
    entries: list[_AcsEntry] = []
    for raw in spec.split(";"):
        where = f"config_acs entry {raw!r}"
        if "@" not in raw:
            raise WhatIfError(
                f"{where}: flags missing (expected FLAGS@DEVICE; the kernel says 'ACS Flags "
                "missing' and configures nothing)"
            )
        flags_text, _, dev_text = raw.partition("@")
        mask = flags = 0
        for shift, ch in enumerate(reversed(flags_text)):
            if ch in "xX":
                continue
            if ch not in "01":
                raise WhatIfError(
                    f"{where}: {ch!r} is not 0, 1 or x (the kernel says 'Invalid ACS flags... "
                    "Ignoring' and configures nothing)"
                )
            if shift > 6:
                raise WhatIfError(
                    f"{where}: bit {shift} does not exist (bits 0-6: SV TB RR CR UF EC DT; the "
                    "kernel says 'Invalid ACS flags specified' and configures nothing)"
                )
            mask |= 1 << shift
            if ch == "1":
                flags |= 1 << shift
        entries.append(
            _AcsEntry(
                raw,
                AcsFlags.from_word(mask),
                AcsFlags.from_word(flags),
                _parse_dev_spec(dev_text, where),
            )
        )
    return tuple(entries)


def _spec_converter(value: str) -> str:
    if not isinstance(value, str):
        raise WhatIfError(f"config_acs: expected a string, got {value!r}")
    return value.strip()


@attrs.frozen
class _SptRedirCheck:
    """``pci_quirk_intel_spt_pch_acs`` after ``..._disable_intel_spt_pch_acs_redir``.

    The port's real control register (``fn.acs.ctrl`` in the model) as the
    enable quirk left it (ORed with cap & SV|RR|CR|UF when ACS was requested),
    then with RR, CR and EC cleared by the config_acs redirect workaround.
    """

    addresses: frozenset[PciAddress]

    def __call__(self, fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
        if fn.address not in self.addresses or fn.acs is None:
            return None
        cap, ctrl = fn.acs.cap, fn.acs.ctrl
        if ctx.acs_requested:
            ctrl |= cap & _REQ
        ctrl &= ~(AcsFlags.RR | AcsFlags.CR | AcsFlags.EC)
        return pci_acs_ctrl_enabled(flags & (cap | AcsFlags.EC), ctrl)


@attrs.frozen
class ConfigAcs(Change):
    """The upstream ``pci=config_acs=`` kernel parameter (v6.11+; v6.15 semantics).

    Args:
        spec: ``FLAGS@DEVICE[;FLAGS@DEVICE...]`` (see the module docstring).
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
    entries: tuple[_AcsEntry, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "entries", _parse_config_acs(self.spec))

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
        return f"config-acs={self.spec}"

    def apply(self, topology: Topology, quirks: Quirks) -> Applied:
        used = [False] * len(self.entries)
        without_acs: list[list[PciAddress]] = [[] for _ in self.entries]
        spt: set[PciAddress] = set()
        notes: list[str] = []
        out: list[PciFunction] = []
        for fn in topology.functions:
            index = next(
                (i for i, e in enumerate(self.entries) if e.device.matches(fn, topology)), None
            )
            if index is None:
                out.append(fn)
                continue
            used[index] = True
            if fn.acs is None:
                without_acs[index].append(fn.address)
                out.append(fn)
                continue
            if fn.vendor == _VENDOR_INTEL and _intel_spt_pch_acs_match(fn):
                spt.add(fn.address)
                notes.append(
                    f"config_acs: {fn.address} is an Intel Sunrise Point PCH root port: the "
                    "kernel clears its RR, CR and EC controls instead of applying the flags "
                    "(pci_quirk_disable_intel_spt_pch_acs_redir)"
                )
                out.append(fn)
                continue
            entry = self.entries[index]
            fw = fn.acs.ctrl if self.firmware_ctrl is None else self.firmware_ctrl
            ctrl = ((fw & ~entry.mask) | (entry.flags & entry.mask)) & fn.acs.cap
            out.append(attrs.evolve(fn, acs=Acs(fn.acs.cap, ctrl)))
        for entry, hit, bare in zip(self.entries, used, without_acs, strict=True):
            if not hit:
                notes.append(f"config_acs: entry {entry.text!r} matches no device")
            elif bare:
                shown = _names(bare[:6]) + (f" and {len(bare) - 6} more" if len(bare) > 6 else "")
                notes.append(
                    f"config_acs: entry {entry.text!r} matches {len(bare)} device"
                    f"{'s' if len(bare) != 1 else ''} without an ACS capability, which it "
                    f"leaves alone: {shown}"
                )
        new_quirks = quirks
        if spt:
            quirk = AcsQuirk(
                _VENDOR_INTEL,
                None,
                "pci_quirk_disable_intel_spt_pch_acs_redir",
                _SptRedirCheck(frozenset(spt)),
            )
            new_quirks = quirks.with_acs_quirk(quirk)
        return Applied(topology.replace(functions=out), new_quirks, notes=tuple(notes))


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
        if self.ctrl is not None and (self.ctrl & _REQ) != _REQ:
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
            out += f":{self.ctrl.names() if self.ctrl is not None else ''}"
        if self.cap is not None:
            out += f":{self.cap.names()}"
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
            cap = self.ctrl if self.ctrl is not None else _REQ
        if self.ctrl is not None:
            ctrl = self.ctrl
        else:
            ctrl = ((old.ctrl if old is not None else AcsFlags.NONE) | (cap & _REQ)) & cap
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
                return f"quirk={verdict}:{self._ids}{up}"
        if isinstance(q, DmaAliasQuirk) and q.name == "user_dma_alias" and q.vendor is not None:
            spec = _alias_text(q)
            if spec is not None:
                return f"quirk=dma-alias:{self._ids}:{spec}{up}"
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
    """``top``, everything in its bridges' bus ranges, and the VFs of all of them."""
    out = {f.address: f for f in top}
    dom = top[0].address.domain
    ranges = [(f.secondary_bus or 0, _subordinate(f)) for f in top if f.is_bridge]
    if ranges:
        for f in topology.functions:
            a = f.address
            if a.domain == dom and any(lo <= a.bus <= hi for lo, hi in ranges):
                out[a] = f
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
        from_slot: the card's slot (``[dddd:]bb:dd``; an address names its slot).
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
        return f"move={self.from_slot}=>{self.to_port}"

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
        occupants = sorted(
            f.address
            for f in topology.functions
            if f.address.domain == tdom
            and sec_t <= f.address.bus <= sub_t
            and f.address not in moved
        )
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


# ============================================================================
# Parsing
# ============================================================================

_ADDR = r"(?:[0-9a-fA-F]{1,8}:)?[0-9a-fA-F]{1,2}:[0-9a-fA-F]{1,2}\.[0-7]"
_SET_ACS_RE = re.compile(rf"^(?P<addr>{_ADDR})(?::(?P<ctrl>[^:]*))?(?::(?P<cap>[^:]*))?$")
_HEX_ID = r"[0-9a-fA-F]{1,4}"
_QUIRK_RE = re.compile(
    rf"^(?P<verdict>isolated|not-isolated|not_isolated|dma-alias|dma_alias):"
    rf"(?P<vendor>{_HEX_ID}):(?P<device>{_HEX_ID}|\*)"
    r"(?::(?!upstream$)(?P<aliases>[^:]+))?(?P<upstream>:upstream)?$"
)
_KEYS = {
    "acs-override": "acs-override",
    "pcie_acs_override": "acs-override",
    "config-acs": "config-acs",
    "pci=config_acs": "config-acs",
    "config_acs": "config-acs",
    "set-acs": "set-acs",
    "remove-acs": "remove-acs",
    "remove": "remove",
    "move": "move",
    "quirk": "quirk",
}
_GRAMMAR = {
    "acs-override": "acs-override=MODE[,MODE...] with MODE downstream, multifunction or "
    "id:VVVV:DDDD",
    "config-acs": "config-acs=FLAGS@DEVICE[;FLAGS@DEVICE...]",
    "set-acs": "set-acs=ADDR[:CTRL[:CAP]], e.g. set-acs=00:1c.0:SV|RR|CR|UF",
    "remove-acs": "remove-acs=ADDR",
    "remove": "remove=ADDR or remove=SLOT",
    "move": "move=SLOT=>PORT, e.g. move=01:00=>00:1c.4",
    "quirk": "quirk=isolated:VVVV:DDDD, quirk=not-isolated:VVVV:DDDD or "
    "quirk=dma-alias:VVVV:DDDD:ALIASES, each optionally ending in :upstream",
}


def parse_change(text: str) -> Change:
    """Parse the CLI form of a change (grammar in the module docstring).

    >>> parse_change("acs-override=downstream,multifunction")
    AcsOverride(modes=('downstream', 'multifunction'))
    >>> parse_change("move=01:00=>00:1c.4").label
    'move the card in slot 0000:01:00 below 0000:00:1c.4'
    >>> parse_change("quirk=isolated:8086:1234").upstream
    False

    Raises:
        WhatIfError: the text is not a change; the message gives the grammar.
    """
    if not isinstance(text, str):
        raise WhatIfError(f"a change must be text, not {text!r}")
    raw = text.strip()
    key, sep, value = raw.partition("=")
    if key == "pci" and value.startswith("config_acs="):
        key, value = "pci=config_acs", value[len("config_acs=") :]
    kind = _KEYS.get(key.strip().lower())
    if not sep or kind is None:
        kinds = ", ".join(sorted(set(_KEYS.values())))
        raise WhatIfError(f"not a change: {text!r} (expected KIND=VALUE, KIND one of {kinds})")
    value = value.strip()
    try:
        return _parse_value(kind, value)
    except WhatIfError as exc:
        raise WhatIfError(f"{exc} [grammar: {_GRAMMAR[kind]}]") from None
    except (InvalidAddress, ValueError) as exc:
        raise WhatIfError(f"{kind}: {exc} [grammar: {_GRAMMAR[kind]}]") from None


def _parse_value(kind: str, value: str) -> Change:
    if kind == "acs-override":
        return AcsOverride(value)
    if kind == "config-acs":
        return ConfigAcs(value)
    if kind == "set-acs":
        m = _SET_ACS_RE.match(value)
        if m is None:
            raise WhatIfError(f"set-acs: cannot parse {value!r}")
        ctrl = m["ctrl"] if m["ctrl"] else None
        cap = m["cap"] if m["cap"] else None
        return SetAcs(m["addr"], ctrl, cap)
    if kind == "remove-acs":
        return RemoveAcs(value)
    if kind == "remove":
        try:
            return RemoveDevice(PciAddress.parse(value))
        except InvalidAddress:
            slot = Slot.parse(value)
            return RemoveDevice(PciAddress(slot.domain, slot.bus, slot.device, 0), whole_slot=True)
    if kind == "move":
        left, arrow, right = value.partition("=>")
        if not arrow:
            left, arrow, right = value.partition("->")
        if not arrow:
            raise WhatIfError(f"move: {value!r} has no '=>' between the slot and the port")
        return MoveCard(Slot.parse(left), _to_address(right.strip()))
    assert kind == "quirk"
    m = _QUIRK_RE.match(value)
    if m is None:
        raise WhatIfError(f"quirk: cannot parse {value!r}")
    vendor = int(m["vendor"], 16)
    device = None if m["device"] == "*" else int(m["device"], 16)
    upstream = m["upstream"] is not None
    verdict = m["verdict"].replace("_", "-")
    aliases = m["aliases"]
    if verdict == "dma-alias":
        if aliases is None:
            raise WhatIfError("quirk: dma-alias needs its aliases (fnN,... or SS.F,...)")
        return AddQuirk(_parse_alias_quirk(vendor, device, aliases), upstream=upstream)
    if aliases is not None:
        raise WhatIfError(f"quirk: {verdict} takes no aliases (got {aliases!r})")
    if verdict == "isolated":
        return AddQuirk(AcsQuirk.isolated(vendor, device), upstream=upstream)
    return AddQuirk(AcsQuirk.not_isolated(vendor, device), upstream=upstream)


_FN_RE = re.compile(r"^fn([0-7])$")
_DEVFN_RE = re.compile(r"^([0-9a-fA-F]{1,2})\.([0-7])$")


def _parse_alias_quirk(vendor: int, device: int | None, text: str) -> DmaAliasQuirk:
    functions: set[int] = set()
    devfns: set[int] = set()
    for part in text.split(","):
        item = part.strip().lower()
        if m := _FN_RE.match(item):
            functions.add(int(m[1]))
        elif m := _DEVFN_RE.match(item):
            devfns.add(_devfn(m[1], m[2], "quirk"))
        else:
            raise WhatIfError(f"quirk: {part!r} is not fnN or SS.F")
    if functions and devfns:
        raise WhatIfError("quirk: give either functions (fnN) or devfns (SS.F), not both")
    if functions:
        return DmaAliasQuirk(vendor, device, kind=DmaAliasKind.SLOT_FUNCTION, functions=functions)
    return DmaAliasQuirk(vendor, device, devfns=devfns)


# ============================================================================
# Applying and comparing
# ============================================================================


def _as_change(item: Change | str) -> Change:
    if isinstance(item, Change):
        return item
    return parse_change(item)


def apply_changes(
    topology: Topology,
    changes: Iterable[Change | str],
    *,
    quirks: Quirks | None = None,
) -> Applied:
    """Apply ``changes`` in order; strings are parsed with :func:`parse_change`.

    The result's ``renamed`` and ``removed`` are in terms of ``topology``'s
    addresses (a function moved twice maps to its last address).

    Raises:
        WhatIfError: a change cannot be parsed or applied.
    """
    topo = topology
    q = quirks if quirks is not None else DEFAULT_QUIRKS
    current: dict[PciAddress, PciAddress] = {f.address: f.address for f in topology.functions}
    removed: set[PciAddress] = set()
    notes: list[str] = []
    for item in changes:
        change = _as_change(item)
        step = change.apply(topo, q)
        topo, q = step.topology, step.quirks
        notes.extend(step.notes)
        for orig, cur in list(current.items()):
            if cur in step.removed:
                removed.add(orig)
                del current[orig]
            elif cur in step.renamed:
                current[orig] = step.renamed[cur]
    renamed = {o: c for o, c in current.items() if o != c}
    return Applied(topo, q, renamed=renamed, removed=frozenset(removed), notes=tuple(notes))


class DeviceStatus(str, enum.Enum):
    """How one device's group changed."""

    UNCHANGED = "unchanged"
    #: Former companions are no longer with it (moved to other groups, or removed).
    SPLIT = "split"
    #: New companions joined it.
    MERGED = "merged"
    #: Both at once, some companions left and others joined.
    REGROUPED = "regrouped"
    #: The device was taken out.
    REMOVED = "removed"
    #: It had no group and now has one (e.g. moved behind an IOMMU).
    NOW_GROUPED = "now-grouped"
    #: It had a group and now has none.
    NOW_UNGROUPED = "now-ungrouped"


@attrs.frozen
class DeviceDiff:
    """One device's change.

    Attributes:
        device: its name after the changes (before, if removed).
        was: its name before, when a change moved it; else ``None``.
        status: see :class:`DeviceStatus`.
        group_before, group_after: its group ids (``None``: no group).
        left: former companions now in other groups (or without one), by
            their names after.
        joined: companions it did not have before, by their names after.
        removed: former companions that were taken out, by their names before.
    """

    device: str
    was: str | None
    status: DeviceStatus
    group_before: int | None
    group_after: int | None
    left: tuple[str, ...] = ()
    joined: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The device's entry of :meth:`WhatIfResult.to_json`."""
        return {
            "device": self.device,
            "was": self.was,
            "status": self.status.value,
            "group_before": self.group_before,
            "group_after": self.group_after,
            "left": list(self.left),
            "joined": list(self.joined),
            "removed": list(self.removed),
        }


Members = tuple[tuple[int, tuple[str, ...]], ...]


@attrs.frozen
class GroupMatch:
    """Groups before and after that share members (matched by membership, not id).

    Attributes:
        kind: ``"unchanged"`` (same members), ``"shrunk"`` (members taken
            out, nothing else), ``"split"`` (one group became several, or
            lost members to no group), ``"merged"`` (several became one, or
            it gained devices that had no group), ``"regrouped"`` (several
            became several), ``"gone"`` (no member left in any group),
            ``"new"`` (only devices that had no group).
        before: (id, members by names before) of the groups before.
        after: (id, members by names after) of the groups after.
    """

    kind: str
    before: Members
    after: Members

    def to_json(self) -> dict[str, Any]:
        """The entry of :meth:`WhatIfResult.to_json`."""
        return {
            "kind": self.kind,
            "before": [{"group": g, "devices": list(ds)} for g, ds in self.before],
            "after": [{"group": g, "devices": list(ds)} for g, ds in self.after],
        }


GROUP_KINDS = ("unchanged", "shrunk", "split", "merged", "regrouped", "gone", "new")


@attrs.frozen
class WhatIfResult:
    """What :func:`what_if` found.

    Attributes:
        changes: the changes, in the order applied.
        topology_before, topology_after: the machine before and after.
        before, after: the canonical groups before and after.
        devices: per device (every PCI function and platform device before,
            by name after), in address order.
        groups: groups matched across the change by membership.
        renamed: name before -> name after of every moved function.
        removed: names (before) of the functions taken out.
        notes: how the changes applied (devices a change skipped, ...).
    """

    changes: tuple[Change, ...]
    topology_before: Topology
    topology_after: Topology
    before: Grouping
    after: Grouping
    devices: tuple[DeviceDiff, ...]
    groups: tuple[GroupMatch, ...]
    renamed: Mapping[str, str]
    removed: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def labels(self) -> tuple[tuple[str, str], ...]:
        """``(label, cost)`` of every change that is **not upstream**."""
        return tuple((c.label, c.cost) for c in self.changes if not c.upstream)

    @property
    def upstream(self) -> bool:
        """Every change is available without an out-of-tree patch."""
        return all(c.upstream for c in self.changes)

    def device(self, name: str | PciAddress) -> DeviceDiff:
        """The entry of one device, by its name after (or before) the changes.

        Raises:
            UnknownDevice: no such device.
        """
        key = str(name)
        if not isinstance(name, PciAddress):
            try:
                key = str(PciAddress.parse(key))
            except InvalidAddress:
                pass
        for d in self.devices:
            if key in (d.device, d.was):
                return d
        raise UnknownDevice(f"no device {name} in the what-if result")

    def counts(self) -> dict[str, int]:
        """Device status -> number of devices."""
        out = {s.value: 0 for s in DeviceStatus}
        for d in self.devices:
            out[d.status.value] += 1
        return out

    def group_counts(self) -> dict[str, int]:
        """Group match kind -> number of matches."""
        out = dict.fromkeys(GROUP_KINDS, 0)
        for g in self.groups:
            out[g.kind] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        """The result as JSON data, schema ``"iommugroups.whatif/1"``.

        Keys:

        * ``schema``: ``"iommugroups.whatif/1"``.
        * ``upstream``: bool, every change is available upstream.
        * ``changes``: ``[{"kind", "text", "label", "upstream", "cost"}]`` in
          the order applied (``kind`` is the CLI key: ``acs-override``,
          ``config-acs``, ``set-acs``, ``remove-acs``, ``quirk``,
          ``remove``, ``move``).
        * ``labels``: ``[{"label", "cost"}]`` of the non-upstream changes.
        * ``counts``: device status -> number (``unchanged``, ``split``,
          ``merged``, ``regrouped``, ``removed``, ``now-grouped``,
          ``now-ungrouped``); ``group_counts``: match kind -> number.
        * ``devices``: per device, in address order: ``device`` (name
          after), ``was`` (name before if it moved, else null), ``status``,
          ``group_before``, ``group_after`` (int or null), ``left``,
          ``joined`` (names after), ``removed`` (names before).
        * ``groups``: ``[{"kind", "before": [{"group", "devices"}], "after":
          [{"group", "devices"}]}]``; kinds as :class:`GroupMatch`.
        * ``renamed``: name before -> name after; ``removed``: names before.
        * ``before``, ``after``: the groupings, as ``Grouping.to_json``
          (``groups``, ``group_ids``, ``ungrouped``, ``strategy``).
        * ``notes``: strings.

        Within one schema version keys are only ever added.
        """
        return {
            "schema": WHATIF_SCHEMA,
            "upstream": self.upstream,
            "changes": [c.to_json() for c in self.changes],
            "labels": [{"label": label, "cost": cost} for label, cost in self.labels],
            "counts": self.counts(),
            "group_counts": self.group_counts(),
            "devices": [d.to_json() for d in self.devices],
            "groups": [g.to_json() for g in self.groups],
            "renamed": dict(sorted(self.renamed.items())),
            "removed": list(self.removed),
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "notes": list(self.notes),
        }


def _device_names(topology: Topology) -> list[str]:
    return [str(f.address) for f in topology.functions] + [
        p.name for p in topology.platform_devices
    ]


def _companions(g: Grouping, name: str) -> frozenset[str]:
    gid = g.group_of(name)
    if gid is None:
        return frozenset()
    return frozenset(g.groups[gid]) - {name}


def _sorted(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(names, key=device_sort_key))


def _device_diffs(
    before: Grouping,
    after: Grouping,
    names: Sequence[str],
    fwd: Mapping[str, str],
    removed: frozenset[str],
) -> tuple[DeviceDiff, ...]:
    out: list[DeviceDiff] = []
    for b in names:
        gb = before.group_of(b)
        if b in removed:
            out.append(DeviceDiff(b, None, DeviceStatus.REMOVED, gb, None))
            continue
        a = fwd.get(b, b)
        was = b if a != b else None
        ga = after.group_of(a)
        old = _companions(before, b)
        gone = _sorted(x for x in old if x in removed)
        kept = {fwd.get(x, x) for x in old if x not in removed}
        new = _companions(after, a)
        left, joined = _sorted(kept - new), _sorted(new - kept)
        if gb is None and ga is None:
            status = DeviceStatus.UNCHANGED
        elif gb is None:
            status = DeviceStatus.NOW_GROUPED
        elif ga is None:
            status = DeviceStatus.NOW_UNGROUPED
        elif (left or gone) and joined:
            status = DeviceStatus.REGROUPED
        elif left or gone:
            status = DeviceStatus.SPLIT
        elif joined:
            status = DeviceStatus.MERGED
        else:
            status = DeviceStatus.UNCHANGED
        out.append(DeviceDiff(a, was, status, gb, ga, left, joined, gone))
    out.sort(key=lambda d: device_sort_key(d.device))
    return tuple(out)


def _group_matches(
    before: Grouping, after: Grouping, fwd: Mapping[str, str], removed: frozenset[str]
) -> tuple[GroupMatch, ...]:
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(x: tuple[str, int]) -> tuple[str, int]:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for gid in before.groups:
        find(("b", gid))
    for gid in after.groups:
        find(("a", gid))
    for gid, members in before.groups.items():
        for m in members:
            if m in removed:
                continue
            ga = after.group_of(fwd.get(m, m))
            if ga is not None:
                parent[find(("b", gid))] = find(("a", ga))
    comps: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for node in list(parent):
        comps.setdefault(find(node), []).append(node)
    out: list[GroupMatch] = []
    for nodes in comps.values():
        bs = sorted(g for side, g in nodes if side == "b")
        as_ = sorted(g for side, g in nodes if side == "a")
        b_members = [m for g in bs for m in before.groups[g]]
        had_removed = any(m in removed for m in b_members)
        kept = {fwd.get(m, m) for m in b_members if m not in removed}
        a_members = {m for g in as_ for m in after.groups[g]}
        if not as_:
            kind = "gone"
        elif not bs:
            kind = "new"
        elif len(bs) == 1 and len(as_) == 1:
            if kept == a_members:
                kind = "shrunk" if had_removed else "unchanged"
            elif kept < a_members:
                kind = "merged"
            elif kept > a_members:
                kind = "split"
            else:
                kind = "regrouped"
        elif len(bs) == 1:
            kind = "split"
        elif len(as_) == 1:
            kind = "merged"
        else:
            kind = "regrouped"
        out.append(
            GroupMatch(
                kind,
                tuple((g, before.groups[g]) for g in bs),
                tuple((g, after.groups[g]) for g in as_),
            )
        )

    def key(m: GroupMatch) -> tuple[int, tuple[int, tuple[int, int, int, int], str]]:
        first = m.after[0][1][0] if m.after else fwd.get(m.before[0][1][0], m.before[0][1][0])
        return (0 if m.after else 1, device_sort_key(first))

    out.sort(key=key)
    return tuple(out)


def what_if(
    topology: Topology,
    changes: Iterable[Change | str],
    *,
    quirks: Quirks | None = None,
) -> WhatIfResult:
    """Group ``topology`` before and after ``changes`` and compare.

    Args:
        topology: the machine as it is.
        changes: :class:`Change` values or their :func:`parse_change` text,
            applied in order.
        quirks: the quirk tables of the kernel as it is (default: the
            kernel's); changes that add quirks extend them.

    Both groupings are :func:`~iommugroups.canonical_groups` (Linux v6.15+,
    x86 always).

    Raises:
        WhatIfError: a change cannot be parsed or applied.
    """
    parsed = tuple(_as_change(c) for c in changes)
    base = quirks if quirks is not None else DEFAULT_QUIRKS
    applied = apply_changes(topology, parsed, quirks=base)
    before = canonical_groups(topology, quirks=base)
    after = canonical_groups(applied.topology, quirks=applied.quirks)
    fwd = {str(o): str(n) for o, n in applied.renamed.items()}
    removed = frozenset(str(a) for a in applied.removed)
    names = _device_names(topology)
    return WhatIfResult(
        changes=parsed,
        topology_before=topology,
        topology_after=applied.topology,
        before=before,
        after=after,
        devices=_device_diffs(before, after, names, fwd, removed),
        groups=_group_matches(before, after, fwd, removed),
        renamed=fwd,
        removed=_sorted(removed),
        notes=applied.notes,
    )


# ============================================================================
# Rendering
# ============================================================================


def _short(names: Iterable[str]) -> str:
    return " ".join(names)


def render_whatif(result: WhatIfResult) -> str:
    """The result as plain text for people, ending with a newline."""
    out: list[str] = []
    n = len(result.changes)
    upstream = "all upstream" if result.upstream else "NOT all upstream"
    out.append(f"what-if: {n} change{'s' if n != 1 else ''} ({upstream})")
    for c in result.changes:
        tag = "upstream" if c.upstream else "NOT UPSTREAM"
        out.append(f"  [{tag}] {c.label}")
        out.append(f"      cost: {c.cost}")
    counts = result.counts()
    gcounts = result.group_counts()
    out.append("")
    out.append(
        f"Groups: {len(result.before.groups)} before, {len(result.after.groups)} after; "
        + ", ".join(f"{gcounts[k]} {k}" for k in GROUP_KINDS if gcounts[k])
    )
    changed = [g for g in result.groups if g.kind != "unchanged"]
    if changed:
        out.append("")
        out.append("Group changes (matched by members, ids are allocation order):")
        for g in changed:
            out.append(f"  {g.kind}:")
            for gid, ds in g.before:
                out.append(f"    before {gid:>3}: {_short(ds)}")
            for gid, ds in g.after:
                out.append(f"    after  {gid:>3}: {_short(ds)}")
    out.append("")
    out.append(
        "Devices: "
        + ", ".join(f"{counts[s.value]} {s.value}" for s in DeviceStatus if counts[s.value])
    )
    width = max((len(d.device) for d in result.devices), default=0)
    for d in result.devices:
        if d.status is DeviceStatus.UNCHANGED and d.was is None:
            continue
        parts: list[str] = []
        if d.was is not None:
            parts.append(f"was {d.was}")
        if d.left:
            parts.append(f"left: {_short(d.left)}")
        if d.removed:
            parts.append(f"removed: {_short(d.removed)}")
        if d.joined:
            parts.append(f"joined: {_short(d.joined)}")
        out.append(f"  {d.device:<{width}}  {d.status.value:<13}  {'; '.join(parts)}".rstrip())
    if result.labels:
        out.append("")
        out.append("Not upstream: the groups after need a kernel patched for")
        out.extend(f"  {label} (its cost is above)" for label, _ in result.labels)
    if result.notes:
        out.append("")
        out.append("Notes:")
        out.extend(f"  - {note}" for note in result.notes)
    return "\n".join(out) + "\n"
