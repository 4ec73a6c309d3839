"""Device quirks that change grouping: ACS quirks and DMA-alias quirks (R2.5, R2.6, R3.5).

A faithful model of the grouping-relevant quirk tables of the Linux kernel's
``drivers/pci/quirks.c``:

* the ``pci_dev_acs_enabled[]`` table consulted by
  ``pci_dev_specific_acs_enabled`` (R2.5), every entry in table order, with the
  logic of each ``pci_quirk_*_acs`` function (R2.6);
* the header-phase fixups that fill ``dma_alias_mask`` (R3.5):
  ``quirk_dma_func0_alias``, ``quirk_dma_func1_alias``,
  ``quirk_fixed_dma_alias``, ``quirk_mic_x200_dma_alias``,
  ``quirk_pex_vca_alias``, ``quirk_plx_ntb_dma_alias`` and the (final-phase)
  ``quirk_switchtec_ntb_dma_alias``;
* the three bridge flags: ``PCI_DEV_FLAG_PCIE_BRIDGE_ALIAS``
  (``quirk_use_pcie_bridge_dma_alias``), ``PCI_DEV_FLAGS_BRIDGE_XLATE_ROOT``
  (``quirk_bridge_cavm_thrx2_pcie_root``) and, since ≈v7.0,
  ``PCI_DEV_FLAGS_PCI_BRIDGE_NO_ALIAS`` (``quirk_aspeed_pci_bridge_no_alias``,
  R3.4);
* since ≈v7.0, ``pci_disable_broken_acs_cap``, which removes SV from the
  ACS capability the kernel caches for some IDT switches (R2.2).

Kernel source read
------------------
``drivers/pci/quirks.c`` of the modelled kernels, Debian's 6.1 (6.1.176),
6.12 (6.12.117), 7.2 (7.2.13) and 7.3 (7.3.4) trees, compared entry by entry
by ``tools/date_quirks.py`` (first read from a v6.18.y tree). The ACS
functions, the alias and bridge-flag fixups and their logic are the same in
the four trees; entries differ (see below). Vendor ids are the
``PCI_VENDOR_ID_*`` values of ``include/linux/pci_ids.h``. No kernel code is
reproduced; the logic is re-expressed in Python and the raw id lists live in
:mod:`iommugroups._kernel.quirk_tables`.

Versions
--------
A :class:`Quirks` value models one kernel (:attr:`Quirks.kernel`, the
newest modelled by default; :meth:`Quirks.for_kernel`). Its tables hold the
entries of every modelled kernel, each with the versions it holds in
(:class:`QuirkVersions`); only those the kernel had are consulted. Most
entries are in every modelled kernel; :data:`KERNEL_QUIRK_DATES` lists the
others. A series stands for its latest stable update (the trees above), so
an entry that reached an older series by a stable backport holds there;
for a series no tree was read for, such an entry is only known from its
mainline version.

When an entry's presence in the modelled kernel is not known (a version
between two bounds, or a series older than the entry's mainline version
that may or may not have had the backport), the model fails closed: an entry
that can only make groups bigger (a DMA alias, ``PCIE_BRIDGE_ALIAS``, or the
"not enabled" answer of a vendor-wide ACS function for ids it does not
list) is kept; one that could split a group (an ACS quirk, ids that an ACS
function declares isolated, the ACS capability mask, ``BRIDGE_XLATE_ROOT``,
``PCI_BRIDGE_NO_ALIAS``) is left out. :attr:`Quirks.uncertain` lists both,
so an analysis can say the result may differ on that kernel.

Approximations (the model has no chipset registers, ACPI tables or MMIO)
------------------------------------------------------------------------
* ``pci_quirk_amd_sb_acs`` looks for an ACPI IVRS table: modelled by
  :attr:`QuirkContext.amd_ivrs` (``CONFIG_ACPI=y`` is assumed).
* ``pci_quirk_intel_pch_acs`` tests ``PCI_DEV_FLAGS_ACS_ENABLED_QUIRK``, set by
  ``pci_quirk_enable_intel_pch_acs`` when an IOMMU requested ACS before the
  port was enumerated *and* the LPC's RCBA window is enabled: modelled as
  "set iff :attr:`QuirkContext.acs_requested`" (assumes firmware enabled RCBA,
  which is the normal case on an IOMMU-enabled machine).
* ``pci_quirk_intel_spt_pch_acs`` reads the ACS control register at the
  non-standard offset cap+8: ``fn.acs.ctrl`` is taken to be *that* register
  (the control the port really applies), and when
  :attr:`QuirkContext.acs_requested` is set the enable quirk
  ``pci_quirk_enable_intel_spt_pch_acs`` is applied first (it ORs
  cap & (SV|RR|CR|UF) into it). With ACS requested the firmware value
  therefore does not matter for ``REQ_ACS_FLAGS``. Without an ACS capability
  the kernel quirk answers -ENOTTY, and so does the model.
* ``quirk_switchtec_ntb_dma_alias`` reads its proxy-id table from the
  device's BAR 0: the model has no MMIO, so these quirks are listed (for
  :meth:`Quirks.dma_alias_quirks_for`) but add no devfn; give the proxy ids
  in ``PciFunction.dma_alias_devfns`` or with a user :class:`DmaAliasQuirk`.

User quirks
-----------
:meth:`Quirks.with_acs_quirk` puts user ACS quirks *before* the kernel table
by default, as a kernel patch adding a quirk ahead of the existing entries
would. This is the only placement that lets a user quirk take effect for
devices a kernel entry already answers: several kernel entries match any
device of a vendor and never fall through (``pci_quirk_wangxun_nic_acs``
answers "not enabled" for *every* Wangxun id it does not list, and
``pci_quirk_zhaoxin_pcie_ports_acs`` for every unlisted Zhaoxin port), so an
entry appended after them could never be reached. A user check may still
return ``None`` to fall through to the kernel's entries. ``first=False``
appends after the kernel table instead (only reached when no kernel entry
answered). DMA-alias and bridge-flag quirks are unions, so order does not
matter for them.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import attrs

from . import quirk_tables as T
from .model import REQ_ACS_FLAGS, AcsFlags, IommuKind, PciAddress, PcieType, PciFunction, Topology
from .version import MODELLED, NEWEST, KernelVersion, resolve_kernel

__all__ = [
    "ALWAYS",
    "DEFAULT_QUIRKS",
    "KERNEL_QUIRK_DATES",
    "AcsCapQuirk",
    "AcsCheck",
    "AcsQuirk",
    "BridgeFlag",
    "BridgeFlagQuirk",
    "DatedQuirk",
    "DmaAliasKind",
    "DmaAliasQuirk",
    "QuirkContext",
    "QuirkVersions",
    "Quirks",
    "UncertainQuirk",
    "kernel_quirks",
    "make_context",
    "pci_acs_ctrl_enabled",
]

#: What ``pci_quirk_mf_endpoint_acs`` treats as provided: every control but EC.
_MF_ENDPOINT_MASK = (
    AcsFlags.SV | AcsFlags.TB | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF | AcsFlags.DT
)

#: An ACS quirk function: ``None`` is -ENOTTY/-ENODEV ("does not apply"),
#: ``True``/``False`` a final verdict (R2.5).
AcsCheck = Callable[[PciFunction, AcsFlags, "QuirkContext"], "bool | None"]


def pci_acs_ctrl_enabled(requested: AcsFlags, provided: AcsFlags) -> bool:
    """``pci_acs_ctrl_enabled``: are all ``requested`` controls among ``provided``?

    >>> pci_acs_ctrl_enabled(AcsFlags.SV | AcsFlags.RR, AcsFlags.SV | AcsFlags.RR | AcsFlags.CR)
    True
    >>> pci_acs_ctrl_enabled(AcsFlags.EC, AcsFlags.SV)
    False
    >>> pci_acs_ctrl_enabled(AcsFlags.NONE, AcsFlags.NONE)
    True
    """
    return (requested & provided) == requested


def _in_ranges(value: int, ranges: Iterable[tuple[int, int]]) -> bool:
    return any(lo <= value <= hi for lo, hi in ranges)


def _parse_int(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 0) if value.strip()[:2].lower() == "0x" else int(value, 16)
        except ValueError:
            pass
    raise ValueError(f"{what}: expected an integer or hex string, got {value!r}")


def _parse_id(value: object, what: str) -> int | None:
    """A vendor/device id: int, hex string (``"8086"``/``"0x8086"``), or any (``None``/``"*"``)."""
    if value is None or value == "*" or value == 0xFFFF:
        return None
    v = _parse_int(value, what)
    if not 0 <= v <= 0xFFFF:
        raise ValueError(f"{what}: {v:#x} is not a 16-bit id")
    return v


def _fmt_id(value: int | None) -> str:
    return "*" if value is None else f"{value:04x}"


def _check_id(_inst: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and not 0 <= value <= 0xFFFE:
        raise ValueError(f"{attribute.name} {value:#x} is not a 16-bit id (use None for any)")


def _acs_tuple(value: Iterable[AcsQuirk]) -> tuple[AcsQuirk, ...]:
    return tuple(value)


def _alias_tuple(value: Iterable[DmaAliasQuirk]) -> tuple[DmaAliasQuirk, ...]:
    return tuple(value)


def _flag_tuple(value: Iterable[BridgeFlagQuirk]) -> tuple[BridgeFlagQuirk, ...]:
    return tuple(value)


def _cap_tuple(value: Iterable[AcsCapQuirk]) -> tuple[AcsCapQuirk, ...]:
    return tuple(value)


def _int_frozenset(value: Iterable[int]) -> frozenset[int]:
    return frozenset(value)


def _id_matches(want: int | None, have: int) -> bool:
    return want is None or want == have


# ============================================================================
# Versions: which kernels have an entry
# ============================================================================


def _version(value: KernelVersion | tuple[int, int] | str | None) -> KernelVersion | None:
    if value is None or isinstance(value, KernelVersion):
        return value
    if isinstance(value, str):
        return KernelVersion.parse(value)
    return KernelVersion(*value)


def _versions(
    value: Iterable[KernelVersion | tuple[int, int] | str],
) -> frozenset[KernelVersion]:
    return frozenset(v for v in map(_version, value) if v is not None)


@attrs.frozen
class QuirkVersions:
    """The kernels a quirk entry is in (R2.5, R2.6, R2.2, R3.4, R3.5).

    Attributes:
        since: the first mainline version with the entry (``None``: in
            every modelled kernel).
        after: when ``since`` could only be bounded, the last version known
            without it; a version in between is uncertain.
        until: the first version without it again (``None``: still in the
            newest modelled kernel).
        backports: modelled series older than ``since`` whose source tree has
            the entry all the same (a stable backport). A series older than
            ``since`` that no tree was read for may or may not have had the
            backport: uncertain.
        source: where the dates come from (commit, trees, stable mails).

    >>> v = QuirkVersions(since=(7, 2), after=(6, 12))
    >>> [v.holds(KernelVersion(*k)) for k in ((6, 12), (7, 0), (7, 2))]
    [False, None, True]
    >>> b = QuirkVersions(since=(6, 16), after=(6, 14), backports=[(6, 1), (6, 12)])
    >>> [b.holds(KernelVersion(*k)) for k in ((6, 1), (6, 6), (6, 12), (6, 15), (6, 16))]
    [True, None, True, None, True]
    """

    since: KernelVersion | None = attrs.field(default=None, converter=_version)
    after: KernelVersion | None = attrs.field(default=None, converter=_version)
    until: KernelVersion | None = attrs.field(default=None, converter=_version)
    backports: frozenset[KernelVersion] = attrs.field(default=frozenset(), converter=_versions)
    source: str = ""

    @property
    def everywhere(self) -> bool:
        """In every modelled kernel (no date)."""
        return self.since is None and self.until is None

    def holds(self, kernel: KernelVersion) -> bool | None:
        """Whether ``kernel`` has the entry; ``None`` when that is not known."""
        if self.until is not None and kernel >= self.until:
            return False
        if self.since is None or kernel >= self.since or kernel in self.backports:
            return True
        if self.after is not None and kernel > self.after:
            return None  # between the bounds of ``since``
        if self.backports and kernel not in MODELLED:
            return None  # an older series: a backport is possible, not checked
        return False

    def describe(self) -> str:
        """The versions in words (for listings and the docs).

        >>> QuirkVersions(since=(7, 2), after=(6, 12)).describe()
        'from 7.2 (after 6.12; not dated closer)'
        >>> QuirkVersions(since=(6, 8), backports=[(6, 1)]).describe()
        'from 6.8; backported to 6.1'
        """
        if self.since is None:
            text = "every modelled version"
        elif self.after is not None:
            text = f"from {self.since} (after {self.after}; not dated closer)"
        else:
            text = f"from {self.since}"
        if self.backports:
            text += "; backported to " + ", ".join(str(v) for v in sorted(self.backports))
        if self.until is not None:
            text += f"; until {self.until}"
        return text


#: The versions of an entry in every modelled kernel.
ALWAYS = QuirkVersions()

#: The rule each kind of dated entry belongs to.
_KIND_RULE = {
    "acs": "R2.6",
    "acs-id": "R2.6",
    "acs-cap": "R2.2",
    "dma-alias": "R3.5",
    "bridge-flag": "R3.4",
}


def _kept_if_uncertain(kind: str, function: str, device: int | None) -> bool:
    """The fail-closed rule: keep an entry of uncertain presence only if it cannot split.

    DMA aliases and ``PCIE_BRIDGE_ALIAS`` only add requester ids (bigger
    groups); a vendor-wide ACS entry whose function answers "not enabled"
    for every id it does not list is kept too, its own ids being dated
    separately. Everything else could declare a device isolated or remove
    an alias, and is left out.
    """
    if kind == "dma-alias":
        return True
    if kind == "bridge-flag":
        return function == "quirk_use_pcie_bridge_dma_alias"
    return kind == "acs" and device is None


@attrs.frozen
class DatedQuirk:
    """A kernel quirk entry, or ids of an entry's list, with the kernels it is in.

    Attributes:
        kind: ``"acs"`` (an entry of ``pci_dev_acs_enabled[]``), ``"acs-id"``
            (ids an ACS function tests), ``"acs-cap"`` (the ACS capability
            mask), ``"dma-alias"`` or ``"bridge-flag"``.
        function: the kernel function.
        vendor: the vendor id (``None``: any).
        first, last: the device ids, inclusive (``None``: any).
        versions: the kernels it is in.
    """

    kind: str
    function: str
    vendor: int | None
    first: int | None
    last: int | None
    versions: QuirkVersions = ALWAYS

    @property
    def rule(self) -> str:
        """The rule id the entry belongs to."""
        return _KIND_RULE.get(self.kind, "R2.6")

    @property
    def devices(self) -> str:
        """``vendor:device`` as ``lspci -n`` prints it, a range as ``lo-hi``.

        >>> DatedQuirk("acs-id", "f", 0x1D17, 0x0733, 0x0752).devices
        '1d17:0733-0752'
        """
        dev = _fmt_id(self.first)
        if self.last is not None and self.last != self.first:
            dev += f"-{self.last:04x}"
        return f"{_fmt_id(self.vendor)}:{dev}"

    @property
    def kept_if_uncertain(self) -> bool:
        """Whether a kernel of uncertain presence keeps it (see :class:`Quirks`)."""
        return _kept_if_uncertain(self.kind, self.function, self.first)

    def matches(self, vendor: int, device: int) -> bool:
        """Whether a device with these ids falls under the entry."""
        if self.vendor is not None and self.vendor != vendor:
            return False
        if self.first is None:
            return True
        return self.first <= device <= (self.last if self.last is not None else self.first)


#: Every kernel quirk entry that is not in every modelled kernel, from
#: :data:`iommugroups._kernel.quirk_tables.DATED`.
KERNEL_QUIRK_DATES: tuple[DatedQuirk, ...] = tuple(
    DatedQuirk(
        d.kind,
        d.function,
        d.vendor,
        d.first,
        d.last,
        QuirkVersions(d.since, d.after, d.until, d.backports, d.source),
    )
    for d in T.DATED
)

_DATES: dict[tuple[str, str, int | None, int | None, int | None], QuirkVersions] = {
    (q.kind, q.function, q.vendor, q.first, q.last): q.versions for q in KERNEL_QUIRK_DATES
}


def _date(
    kind: str, function: str, vendor: int | None, first: int | None, last: int | None = None
) -> QuirkVersions:
    """The versions of a kernel entry (:data:`ALWAYS` when it is not dated)."""
    return _DATES.get((kind, function, vendor, first, first if last is None else last), ALWAYS)


class UncertainQuirk(NamedTuple):
    """A quirk entry whose presence in the modelled kernel is not known.

    Attributes:
        quirk: the entry and its versions.
        kept: ``True`` if the model keeps it (it can only make groups
            bigger), ``False`` if it is left out (it could split a group).
    """

    quirk: DatedQuirk
    kept: bool


# ============================================================================
# The kernel's ACS quirk functions (R2.6)
# ============================================================================


def pci_quirk_amd_sb_acs(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
    """``pci_quirk_amd_sb_acs`` (R2.6): AMD/ATI southbridge functions.

    Applies only to a multifunction device on a root bus, and only when an
    ACPI IVRS table exists (:attr:`QuirkContext.amd_ivrs`); otherwise -ENODEV.
    The request is reduced to RR|CR|EC|DT, and RR and CR count as provided.
    """
    topo = ctx.topology
    if not topo.is_multifunction(fn) or not topo.is_root_bus(fn.address.domain, fn.address.bus):
        return None
    if not ctx.amd_ivrs:
        return None
    flags &= AcsFlags.RR | AcsFlags.CR | AcsFlags.EC | AcsFlags.DT
    return pci_acs_ctrl_enabled(flags, AcsFlags.RR | AcsFlags.CR)


def pci_quirk_mf_endpoint_acs(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
    """``pci_quirk_mf_endpoint_acs`` (R2.6): vendor-verified non-P2P multifunction devices.

    SV, TB, RR, CR, UF and DT count as provided; a request with EC fails.
    """
    return pci_acs_ctrl_enabled(flags, _MF_ENDPOINT_MASK)


def pci_quirk_rciep_acs(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
    """``pci_quirk_rciep_acs`` (R2.6): Intel root-complex integrated endpoints.

    Only for PCIe type RC_END (anything else, including conventional PCI, is
    -ENOTTY); SV|RR|CR|UF count as provided (VT-d spec r3.1 sec 3.16).
    """
    if fn.pcie_type != PcieType.RC_END:
        return None
    return pci_acs_ctrl_enabled(flags, REQ_ACS_FLAGS)


def pci_quirk_qcom_rp_acs(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
    """``pci_quirk_qcom_rp_acs`` (R2.6): Qualcomm/HXT root ports, SV|RR|CR|UF provided."""
    return pci_acs_ctrl_enabled(flags, REQ_ACS_FLAGS)


def _intel_pch_acs_match(fn: PciFunction) -> bool:
    """``pci_quirk_intel_pch_acs_match``: a root port with an id of the PCH list."""
    return fn.pcie_type == PcieType.ROOT_PORT and fn.device in _INTEL_PCH_IDS


_INTEL_PCH_IDS = frozenset(T.INTEL_PCH_ACS_IDS)


def pci_quirk_intel_pch_acs(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
    """``pci_quirk_intel_pch_acs`` (R2.6): Intel PCH root ports without an ACS capability.

    With ``PCI_DEV_FLAGS_ACS_ENABLED_QUIRK`` set, SV|RR|CR|UF count as
    provided; without it nothing does. The flag is set by the enable quirk
    ``pci_quirk_enable_intel_pch_acs`` when an IOMMU requested ACS; the model
    takes it as set iff :attr:`QuirkContext.acs_requested` (approximation: it
    assumes the LPC's RCBA window is enabled, so the enable quirk succeeds).
    """
    if not _intel_pch_acs_match(fn):
        return None
    if ctx.acs_requested:
        return pci_acs_ctrl_enabled(flags, REQ_ACS_FLAGS)
    return pci_acs_ctrl_enabled(flags, AcsFlags.NONE)


def pci_quirk_intel_spt_pch_acs_match(fn: PciFunction) -> bool:
    """``pci_quirk_intel_spt_pch_acs_match``: Sunrise/Union Point and mobile root ports."""
    return fn.pcie_type == PcieType.ROOT_PORT and _in_ranges(fn.device, T.INTEL_SPT_ACS_RANGES)


def pci_quirk_intel_spt_pch_acs(
    fn: PciFunction, flags: AcsFlags, ctx: QuirkContext
) -> bool | None:
    """``pci_quirk_intel_spt_pch_acs`` (R2.6): ACS control at a non-standard offset.

    These root ports have an ACS capability whose control register sits at
    cap+8 instead of cap+6. No capability: -ENOTTY. Otherwise the request is
    filtered as ``pci_acs_flags_enabled`` does (unimplemented bits dropped,
    except EC) and compared with that control register.

    Approximation (no raw config space in the model): ``fn.acs.ctrl`` stands
    for the control register at cap+8. When :attr:`QuirkContext.acs_requested`
    is set, ``pci_quirk_enable_intel_spt_pch_acs`` has run and set every
    implemented SV/RR/CR/UF bit in it. (The TB bit that quirk adds for
    untrusted ports or with ATS disabled is not modelled.)
    """
    if not pci_quirk_intel_spt_pch_acs_match(fn):
        return None
    if fn.acs is None:
        return None
    cap = fn.acs.cap
    ctrl = fn.acs.ctrl
    if ctx.acs_requested:
        ctrl |= cap & REQ_ACS_FLAGS
    flags &= cap | AcsFlags.EC
    return pci_acs_ctrl_enabled(flags, ctrl)


def _cavium_acs_match(fn: PciFunction) -> bool:
    """``pci_quirk_cavium_acs_match``: ThunderX1/2/3 root ports."""
    return fn.pcie_type == PcieType.ROOT_PORT and _in_ranges(fn.device, T.CAVIUM_RP_RANGES)


def pci_quirk_cavium_acs(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
    """``pci_quirk_cavium_acs`` (R2.6): Cavium ThunderX root ports, SV|RR|CR|UF provided.

    The table entry matches every Cavium device; the function answers only
    for root ports with a ThunderX id and is -ENOTTY for the rest.
    """
    if not _cavium_acs_match(fn):
        return None
    return pci_acs_ctrl_enabled(flags, REQ_ACS_FLAGS)


def pci_quirk_xgene_acs(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
    """``pci_quirk_xgene_acs`` (R2.6): APM X-Gene / Ampere root ports, SV|RR|CR|UF provided."""
    return pci_acs_ctrl_enabled(flags, REQ_ACS_FLAGS)


def pci_quirk_brcm_acs(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
    """``pci_quirk_brcm_acs`` (R2.6): Broadcom iProc PAXB root ports, SV|RR|CR|UF provided."""
    return pci_acs_ctrl_enabled(flags, REQ_ACS_FLAGS)


def pci_quirk_loongson_acs(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
    """``pci_quirk_loongson_acs`` (R2.6): Loongson root ports, SV|RR|CR|UF provided."""
    return pci_acs_ctrl_enabled(flags, REQ_ACS_FLAGS)


def pci_quirk_al_acs(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
    """``pci_quirk_al_acs`` (R2.6): Amazon Annapurna Labs root ports.

    Root ports only (else -ENOTTY); SV|RR|CR|UF are masked out of the request
    and it succeeds iff nothing is left.
    """
    if fn.pcie_type != PcieType.ROOT_PORT:
        return None
    return not (flags & ~REQ_ACS_FLAGS)


def pci_quirk_nxp_rp_acs(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
    """``pci_quirk_nxp_rp_acs`` (R2.6): NXP LX2xxx root ports, SV|RR|CR|UF provided."""
    return pci_acs_ctrl_enabled(flags, REQ_ACS_FLAGS)


def pci_quirk_zhaoxin_pcie_ports_acs(
    fn: PciFunction, flags: AcsFlags, ctx: QuirkContext
) -> bool | None:
    """``pci_quirk_zhaoxin_pcie_ports_acs`` (R2.6): Zhaoxin root and downstream ports.

    Not a root/downstream port: -ENOTTY. A port whose id is in the list:
    SV|RR|CR|UF provided. Any *other* Zhaoxin port: the kernel answers 0
    ("not enabled", a final verdict), so it is never isolated even if it has a
    working ACS capability. (The newest list; the table entry uses the list
    of the kernel modelled.)
    """
    return _zhaoxin_pcie_ports_acs(fn, flags, ctx, T.ZHAOXIN_PORT_RANGES)


def _zhaoxin_pcie_ports_acs(
    fn: PciFunction, flags: AcsFlags, ctx: QuirkContext, spans: Sequence[tuple[int, int]]
) -> bool | None:
    if fn.pcie_type not in (PcieType.ROOT_PORT, PcieType.DOWNSTREAM):
        return None
    if _in_ranges(fn.device, spans):
        return pci_acs_ctrl_enabled(flags, REQ_ACS_FLAGS)
    return False


def pci_quirk_wangxun_nic_acs(fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
    """``pci_quirk_wangxun_nic_acs`` (R2.6): Wangxun NICs, SV|RR|CR|UF provided.

    The entry matches every Wangxun device. For an id that is not in the
    list the kernel answers 0 ("not enabled", final), never -ENOTTY. (The
    newest list; the table entry uses the list of the kernel modelled.)
    """
    return _wangxun_nic_acs(fn, flags, ctx, T.WANGXUN_NIC_RANGES)


def _wangxun_nic_acs(
    fn: PciFunction, flags: AcsFlags, ctx: QuirkContext, spans: Sequence[tuple[int, int]]
) -> bool | None:
    if _in_ranges(fn.device, spans):
        return pci_acs_ctrl_enabled(flags, REQ_ACS_FLAGS)
    return False


_ListFunction = Callable[
    [PciFunction, AcsFlags, "QuirkContext", Sequence[tuple[int, int]]], "bool | None"
]


@attrs.frozen
class _IdListCheck:
    """An ACS function that tests the device id against a list, with one kernel's list.

    ``spans`` are the inclusive id ranges of the list; :class:`Quirks` gives
    the check of a table entry the spans its kernel had.
    """

    function: _ListFunction
    spans: tuple[tuple[int, int], ...]

    def __call__(self, fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
        return self.function(fn, flags, ctx, self.spans)


# ============================================================================
# Quirk value types
# ============================================================================


@attrs.frozen
class _ProvidesCheck:
    """The check of a declarative :class:`AcsQuirk`.

    Applies (else ``None``) when the function's PCIe type is in
    ``pcie_types`` (``None``: any type, also conventional PCI); then answers
    ``pci_acs_ctrl_enabled(flags, provides)``.
    """

    provides: AcsFlags
    pcie_types: frozenset[PcieType] | None = None

    def __call__(self, fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
        if self.pcie_types is not None and fn.pcie_type not in self.pcie_types:
            return None
        return pci_acs_ctrl_enabled(flags, self.provides)


def _to_pcie_types(value: Iterable[PcieType | str | int] | None) -> frozenset[PcieType] | None:
    if value is None:
        return None
    out: set[PcieType] = set()
    for item in value:
        if isinstance(item, PcieType):
            out.add(item)
        elif isinstance(item, str):
            try:
                out.add(PcieType[item.strip().upper()])
            except KeyError:
                raise ValueError(f"unknown PCIe type {item!r}") from None
        else:
            out.add(PcieType(item))
    return frozenset(out)


@attrs.frozen
class AcsQuirk:
    """One entry of an ACS quirk table: ``(vendor, device, check)`` (R2.5).

    Args:
        vendor: vendor id, or ``None`` for any (the kernel's ``PCI_ANY_ID``).
        device: device id, or ``None`` for any.
        name: the quirk function's name (kernel entries use the kernel name).
        check: ``check(fn, flags, ctx)`` returning ``True``/``False`` (final
            verdict) or ``None`` (does not apply: try the next entry).
        origin: ``"kernel"`` for the kernel's tables, ``"user"`` otherwise.
        versions: the kernels the entry is in (``ALWAYS`` unless dated).

    The declarative forms :meth:`isolated` and :meth:`not_isolated` need no
    Python callable and round-trip through :meth:`to_mapping` /
    :meth:`from_mapping` (for TOML/JSON topology files).
    """

    vendor: int | None = attrs.field(validator=_check_id)
    device: int | None = attrs.field(validator=_check_id)
    name: str
    check: AcsCheck
    origin: str = "user"
    versions: QuirkVersions = ALWAYS

    def matches(self, fn: PciFunction) -> bool:
        """Does the (vendor, device) part of the entry match ``fn``?"""
        return _id_matches(self.vendor, fn.vendor) and _id_matches(self.device, fn.device)

    @property
    def is_declarative(self) -> bool:
        """Built by :meth:`isolated` / :meth:`not_isolated` (serialisable)."""
        return isinstance(self.check, _ProvidesCheck)

    @classmethod
    def isolated(
        cls,
        vendor: int | None,
        device: int | None,
        *,
        provides: AcsFlags = REQ_ACS_FLAGS,
        pcie_types: Iterable[PcieType | str | int] | None = None,
        name: str | None = None,
    ) -> AcsQuirk:
        """A quirk declaring that the device provides the ``provides`` ACS controls.

        Like the kernel's root-port quirks: a request is granted iff every
        requested control is in ``provides`` (default SV|RR|CR|UF, so a
        request for EC is refused). ``pcie_types`` restricts the quirk to
        those PCIe port types; other types fall through (``None``).

        >>> q = AcsQuirk.isolated(0x1234, 0x5678, pcie_types=["ROOT_PORT"])
        >>> q.name, q.to_mapping()["provides"], q.to_mapping()["pcie_types"]
        ('user_isolated_1234_5678', 'SV|RR|CR|UF', ['ROOT_PORT'])
        """
        check = _ProvidesCheck(AcsFlags(provides), _to_pcie_types(pcie_types))
        label = name or f"user_isolated_{_fmt_id(vendor)}_{_fmt_id(device)}"
        return cls(vendor, device, label, check)

    @classmethod
    def not_isolated(
        cls,
        vendor: int | None,
        device: int | None,
        *,
        pcie_types: Iterable[PcieType | str | int] | None = None,
        name: str | None = None,
    ) -> AcsQuirk:
        """A quirk declaring that the device provides no ACS control at all.

        Any non-empty request is refused, whatever the device's ACS
        capability says (as ``pci_quirk_intel_pch_acs`` without its flag).
        """
        check = _ProvidesCheck(AcsFlags.NONE, _to_pcie_types(pcie_types))
        label = name or f"user_not_isolated_{_fmt_id(vendor)}_{_fmt_id(device)}"
        return cls(vendor, device, label, check)

    def to_mapping(self) -> dict[str, Any]:
        """A plain dict for TOML/JSON (declarative quirks only).

        Raises:
            ValueError: the quirk has a Python callable check.
        """
        if not isinstance(self.check, _ProvidesCheck):
            raise ValueError(f"ACS quirk {self.name!r} has a Python check; not serialisable")
        out: dict[str, Any] = {
            "vendor": _fmt_id(self.vendor),
            "device": _fmt_id(self.device),
            "name": self.name,
        }
        if self.check.provides == AcsFlags.NONE:
            out["verdict"] = "not_isolated"
        else:
            out["verdict"] = "isolated"
            out["provides"] = self.check.provides.names()
        if self.check.pcie_types is not None:
            out["pcie_types"] = sorted(t.name for t in self.check.pcie_types)
        return out

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AcsQuirk:
        """Build a declarative quirk from a dict (inverse of :meth:`to_mapping`).

        Keys: ``vendor``, ``device`` (int, hex string, or ``"*"``),
        ``verdict`` (``"isolated"`` or ``"not_isolated"``), optional
        ``provides`` (``"SV|RR|CR|UF"``, only with ``isolated``), optional
        ``pcie_types`` (list of :class:`PcieType` names), optional ``name``.

        >>> q = AcsQuirk.from_mapping({"vendor": "1234", "device": "*", "verdict": "isolated"})
        >>> hex(q.vendor), q.device
        ('0x1234', None)

        Raises:
            ValueError: a key is missing, unknown or malformed.
        """
        known = {"vendor", "device", "verdict", "provides", "pcie_types", "name"}
        extra = set(data) - known
        if extra:
            raise ValueError(f"unknown ACS quirk keys: {', '.join(sorted(extra))}")
        for key in ("vendor", "device", "verdict"):
            if key not in data:
                raise ValueError(f"ACS quirk needs {key!r}")
        vendor = _parse_id(data["vendor"], "vendor")
        device = _parse_id(data["device"], "device")
        verdict = str(data["verdict"]).strip().lower().replace("-", "_")
        name = data.get("name")
        pcie_types = data.get("pcie_types")
        if verdict == "isolated":
            provides = AcsFlags.parse(str(data.get("provides", "SV|RR|CR|UF")))
            return cls.isolated(
                vendor, device, provides=provides, pcie_types=pcie_types, name=name
            )
        if verdict == "not_isolated":
            if "provides" in data:
                raise ValueError("'provides' only goes with verdict 'isolated'")
            return cls.not_isolated(vendor, device, pcie_types=pcie_types, name=name)
        raise ValueError(
            f"ACS quirk verdict must be 'isolated' or 'not_isolated', not {verdict!r}"
        )


class DmaAliasKind(str, enum.Enum):
    """How a :class:`DmaAliasQuirk` computes the devfns it adds (R3.5)."""

    #: Add ``devfns`` as given (absolute devfns on the device's own bus):
    #: ``quirk_fixed_dma_alias``, ``quirk_mic_x200_dma_alias``,
    #: ``quirk_pex_vca_alias``, ``quirk_plx_ntb_dma_alias``.
    FIXED = "fixed"
    #: For each function number *f* in ``functions``, add devfn (own slot, *f*)
    #: unless the device *is* function *f*: ``quirk_dma_func0_alias`` and
    #: ``quirk_dma_func1_alias``.
    SLOT_FUNCTION = "slot_function"
    #: Aliases read from the device at run time (``quirk_switchtec_ntb_dma_alias``
    #: reads BAR 0); the model adds nothing, ``devfns`` is ignored.
    RUNTIME = "runtime"


def _devfn_converter(value: Iterable[int | str]) -> frozenset[int]:
    out: set[int] = set()
    for item in value:
        if isinstance(item, str) and "." in item:
            slot, _, func = item.partition(".")
            out.add(int(slot, 16) << 3 | int(func))
        else:
            out.add(_parse_int(item, "devfn"))
    return frozenset(out)


def _check_devfns(_inst: object, attribute: attrs.Attribute[Any], value: frozenset[int]) -> None:
    bad = [d for d in value if not 0 <= d <= 0xFF]
    if bad:
        raise ValueError(f"{attribute.name}: devfn {bad[0]} out of range 0-255")


def _check_functions(
    _inst: object, attribute: attrs.Attribute[Any], value: frozenset[int]
) -> None:
    bad = [f for f in value if not 0 <= f <= 7]
    if bad:
        raise ValueError(f"{attribute.name}: function {bad[0]} out of range 0-7")


@attrs.frozen
class DmaAliasQuirk:
    """A quirk that adds devfns to a function's ``dma_alias_mask`` (R3.3, R3.5).

    Args:
        vendor, device: ids to match, ``None`` for any.
        devfns: for :attr:`DmaAliasKind.FIXED`, the devfns to add, on the
            device's own bus. Ints, or ``"dd.f"`` strings (hex slot).
        kind: see :class:`DmaAliasKind` (a string is accepted).
        functions: for :attr:`DmaAliasKind.SLOT_FUNCTION`, function numbers.
        subsystem_vendor, subsystem_device: also match these, if given
            (``quirk_fixed_dma_alias`` matches by subsystem ids).
        class_code, class_shift: also require ``class_code >> class_shift ==
            class_code`` of the quirk, if given (class-matched fixups).
        name: the kernel function name, or a user label.
        origin: ``"kernel"`` or ``"user"``.
        versions: the kernels the entry is in (``ALWAYS`` unless dated).

    >>> q = DmaAliasQuirk(0x1234, 0x5678, devfns=["01.0", 3])
    >>> sorted(q.aliases(PciFunction("03:00.0", 0x1234, 0x5678)))
    [3, 8]
    """

    vendor: int | None = attrs.field(validator=_check_id)
    device: int | None = attrs.field(validator=_check_id)
    devfns: frozenset[int] = attrs.field(
        default=frozenset(), converter=_devfn_converter, validator=_check_devfns
    )
    kind: DmaAliasKind = attrs.field(default=DmaAliasKind.FIXED, converter=DmaAliasKind)
    functions: frozenset[int] = attrs.field(
        default=frozenset(), converter=_int_frozenset, validator=_check_functions
    )
    subsystem_vendor: int | None = attrs.field(default=None, validator=_check_id)
    subsystem_device: int | None = attrs.field(default=None, validator=_check_id)
    class_code: int | None = None
    class_shift: int = 8
    name: str = "user_dma_alias"
    origin: str = "user"
    versions: QuirkVersions = ALWAYS

    def matches(self, fn: PciFunction) -> bool:
        """Does the quirk apply to ``fn`` (ids, subsystem ids, class)?"""
        return (
            _id_matches(self.vendor, fn.vendor)
            and _id_matches(self.device, fn.device)
            and _id_matches(self.subsystem_vendor, fn.subsystem_vendor)
            and _id_matches(self.subsystem_device, fn.subsystem_device)
            and (self.class_code is None or fn.class_code >> self.class_shift == self.class_code)
        )

    def aliases(self, fn: PciFunction) -> frozenset[int]:
        """Devfns this quirk adds for ``fn`` (empty when it does not match).

        As ``pci_add_dma_alias`` does, ``fn``'s own devfn is not filtered out
        (``quirk_plx_ntb_dma_alias`` and ``quirk_pex_vca_alias`` add it too).
        """
        if not self.matches(fn):
            return frozenset()
        if self.kind is DmaAliasKind.FIXED:
            return self.devfns
        if self.kind is DmaAliasKind.SLOT_FUNCTION:
            slot, own = fn.address.device, fn.address.function
            return frozenset(slot << 3 | f for f in self.functions if f != own)
        return frozenset()  # RUNTIME: read from MMIO, which the model does not have

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DmaAliasQuirk:
        """Build from a dict, as a TOML/JSON file would give it.

        Keys: ``vendor``, ``device`` (int, hex string or ``"*"``), optional
        ``kind`` (default ``"fixed"``), ``devfns`` (ints or ``"dd.f"``),
        ``functions``, ``subsystem_vendor``, ``subsystem_device``, ``name``.

        Raises:
            ValueError: a key is missing, unknown or malformed.
        """
        known = {
            "vendor", "device", "kind", "devfns", "functions",
            "subsystem_vendor", "subsystem_device", "name",
        }  # fmt: skip
        extra = set(data) - known
        if extra:
            raise ValueError(f"unknown DMA alias quirk keys: {', '.join(sorted(extra))}")
        for key in ("vendor", "device"):
            if key not in data:
                raise ValueError(f"DMA alias quirk needs {key!r}")
        sub_v = data.get("subsystem_vendor")
        sub_d = data.get("subsystem_device")
        return cls(
            _parse_id(data["vendor"], "vendor"),
            _parse_id(data["device"], "device"),
            devfns=data.get("devfns", ()),
            kind=data.get("kind", "fixed"),
            functions=(_parse_int(f, "function") for f in data.get("functions", ())),
            subsystem_vendor=None if sub_v is None else _parse_id(sub_v, "subsystem_vendor"),
            subsystem_device=None if sub_d is None else _parse_id(sub_d, "subsystem_device"),
            name=str(data.get("name", "user_dma_alias")),
        )


class BridgeFlag(str, enum.Enum):
    """Bridge flags a quirk can set (R3.4)."""

    #: ``PCI_DEV_FLAG_PCIE_BRIDGE_ALIAS`` (``quirk_use_pcie_bridge_dma_alias``).
    PCIE_BRIDGE_ALIAS = "pcie_bridge_alias"
    #: ``PCI_DEV_FLAGS_BRIDGE_XLATE_ROOT`` (``quirk_bridge_cavm_thrx2_pcie_root``).
    BRIDGE_XLATE_ROOT = "bridge_xlate_root"
    #: ``PCI_DEV_FLAGS_PCI_BRIDGE_NO_ALIAS`` (``quirk_aspeed_pci_bridge_no_alias``,
    #: ≈v7.0): a PCIe-to-PCI bridge that forwards requester ids unchanged.
    PCI_BRIDGE_NO_ALIAS = "pci_bridge_no_alias"


@attrs.frozen
class BridgeFlagQuirk:
    """A quirk setting a bridge flag on devices with these ids.

    :attr:`BridgeFlag.PCIE_BRIDGE_ALIAS` is set only under the conditions of
    ``quirk_use_pcie_bridge_dma_alias`` (see :meth:`Quirks.pcie_bridge_alias`);
    :attr:`BridgeFlag.BRIDGE_XLATE_ROOT` and :attr:`BridgeFlag.PCI_BRIDGE_NO_ALIAS`
    unconditionally.
    """

    vendor: int | None = attrs.field(validator=_check_id)
    device: int | None = attrs.field(validator=_check_id)
    flag: BridgeFlag = attrs.field(converter=BridgeFlag)
    name: str = "user_bridge_flag"
    origin: str = "user"
    versions: QuirkVersions = ALWAYS

    def matches(self, fn: PciFunction) -> bool:
        """Does the (vendor, device) part match ``fn``?"""
        return _id_matches(self.vendor, fn.vendor) and _id_matches(self.device, fn.device)


@attrs.frozen
class AcsCapQuirk:
    """A quirk that removes controls from the ACS capability the kernel caches (R2.2).

    ``pci_disable_broken_acs_cap`` (≈v7.0) clears SV in
    ``pdev->acs_capabilities`` of some IDT switches: SV then counts as not
    implemented (hard-wired on) and is never enabled. See
    :meth:`Quirks.acs_capabilities`.
    """

    vendor: int | None = attrs.field(validator=_check_id)
    device: int | None = attrs.field(validator=_check_id)
    clear: AcsFlags
    name: str = "user_acs_cap"
    origin: str = "user"
    versions: QuirkVersions = ALWAYS

    def matches(self, fn: PciFunction) -> bool:
        """Does the (vendor, device) part match ``fn``?"""
        return _id_matches(self.vendor, fn.vendor) and _id_matches(self.device, fn.device)


# ============================================================================
# The kernel's tables
# ============================================================================


def _k_acs(
    vendor: int | None, device: int | None, check: AcsCheck, name: str | None = None
) -> AcsQuirk:
    label = name if name is not None else str(getattr(check, "__name__", "acs_quirk"))
    versions = _date("acs", label, vendor, device)
    return AcsQuirk(vendor, device, label, check, origin="kernel", versions=versions)


def _k_list(
    vendor: int, name: str, function: _ListFunction, spans: Iterable[tuple[int, int]]
) -> AcsQuirk:
    """A vendor-wide entry whose function tests the id against a dated list."""
    return _k_acs(vendor, None, _IdListCheck(function, tuple(spans)), name)


def _kernel_acs_table() -> tuple[AcsQuirk, ...]:
    """``pci_dev_acs_enabled[]``, entry by entry, in kernel table order."""
    mf = pci_quirk_mf_endpoint_acs
    e: list[AcsQuirk] = []
    e += [_k_acs(v, d, pci_quirk_amd_sb_acs) for v, d in T.AMD_SB_IDS]
    e += [_k_acs(T.VENDOR_SOLARFLARE, d, mf) for d in T.SOLARFLARE_MF_IDS]
    e += [_k_acs(T.VENDOR_INTEL, d, mf) for d in T.INTEL_MF_IDS]
    e.append(_k_acs(T.VENDOR_INTEL, None, pci_quirk_rciep_acs))
    e += [_k_acs(v, d, pci_quirk_qcom_rp_acs) for v, d in T.QCOM_RP_IDS]
    e.append(_k_acs(T.VENDOR_INTEL, None, pci_quirk_intel_pch_acs))
    e.append(_k_acs(T.VENDOR_INTEL, None, pci_quirk_intel_spt_pch_acs))
    e += [_k_acs(v, d, mf) for v, d in T.EMULEX_MF_IDS]
    e.append(_k_acs(T.VENDOR_CAVIUM, None, pci_quirk_cavium_acs))
    e += [_k_acs(T.VENDOR_CAVIUM, d, mf) for d in T.CAVIUM_MF_IDS]
    e += [_k_acs(v, d, pci_quirk_xgene_acs) for v, d in T.XGENE_IDS]
    e += [_k_acs(T.VENDOR_BROADCOM, d, mf) for d in T.BROADCOM_MF_IDS]
    e += [_k_acs(T.VENDOR_BROADCOM, d, pci_quirk_brcm_acs) for d in T.BROADCOM_RP_IDS]
    e += [_k_acs(T.VENDOR_LOONGSON, d, pci_quirk_loongson_acs) for d in T.LOONGSON_RP_IDS]
    e += [_k_acs(T.VENDOR_AMAZON_ANNAPURNA_LABS, d, pci_quirk_al_acs) for d in T.ANNAPURNA_IDS]
    e += [_k_acs(T.VENDOR_ZHAOXIN, d, mf) for d in T.ZHAOXIN_MF_IDS]
    e += [_k_acs(T.VENDOR_NXP, d, pci_quirk_nxp_rp_acs) for d in T.NXP_RP_IDS]
    e.append(
        _k_list(
            T.VENDOR_ZHAOXIN,
            "pci_quirk_zhaoxin_pcie_ports_acs",
            _zhaoxin_pcie_ports_acs,
            T.ZHAOXIN_PORT_RANGES,
        )
    )
    e.append(
        _k_list(
            T.VENDOR_WANGXUN, "pci_quirk_wangxun_nic_acs", _wangxun_nic_acs, T.WANGXUN_NIC_RANGES
        )
    )
    return tuple(e)


def _kernel_dma_alias_table() -> tuple[DmaAliasQuirk, ...]:
    """The ``pci_add_dma_alias`` fixups of quirks.c, in file order."""

    def k(vendor: int, device: int, name: str, **kw: Any) -> DmaAliasQuirk:
        versions = _date("dma-alias", name, vendor, device)
        return DmaAliasQuirk(vendor, device, name=name, origin="kernel", versions=versions, **kw)

    slot = DmaAliasKind.SLOT_FUNCTION
    e: list[DmaAliasQuirk] = []
    e += [k(v, d, "quirk_dma_func0_alias", kind=slot, functions={0}) for v, d in T.DMA_FUNC0_IDS]
    e += [k(v, d, "quirk_dma_func1_alias", kind=slot, functions={1}) for v, d in T.DMA_FUNC1_IDS]
    e += [
        k(
            v,
            d,
            "quirk_fixed_dma_alias",
            devfns={alias},
            subsystem_vendor=sv,
            subsystem_device=sd,
        )
        for v, d, sv, sd, alias in T.FIXED_DMA_ALIAS_TABLE
    ]
    e += [
        k(T.VENDOR_INTEL, d, "quirk_mic_x200_dma_alias", devfns=T.MIC_X200_DEVFNS)
        for d in T.MIC_X200_IDS
    ]
    e += [
        k(T.VENDOR_INTEL, d, "quirk_pex_vca_alias", devfns=T.PEX_VCA_DEVFNS) for d in T.PEX_VCA_IDS
    ]
    runtime = DmaAliasKind.RUNTIME
    cls_other = T.PCI_CLASS_BRIDGE_OTHER
    e += [
        k(v, d, "quirk_switchtec_ntb_dma_alias", kind=runtime, class_code=cls_other)
        for v, ids in (
            (T.VENDOR_MICROSEMI, T.SWITCHTEC_MICROSEMI_IDS),
            (T.VENDOR_EFAR, T.SWITCHTEC_EFAR_IDS),
        )
        for d in ids
    ]
    e += [k(T.VENDOR_PLX, d, "quirk_plx_ntb_dma_alias", devfns=range(256)) for d in T.PLX_NTB_IDS]
    return tuple(e)


def _kernel_bridge_flag_table() -> tuple[BridgeFlagQuirk, ...]:
    """The bridge-flag fixups of quirks.c, in file order."""
    flag = BridgeFlag
    tables = (
        ("quirk_use_pcie_bridge_dma_alias", flag.PCIE_BRIDGE_ALIAS, T.PCIE_BRIDGE_ALIAS_IDS),
        ("quirk_bridge_cavm_thrx2_pcie_root", flag.BRIDGE_XLATE_ROOT, T.BRIDGE_XLATE_ROOT_IDS),
        ("quirk_aspeed_pci_bridge_no_alias", flag.PCI_BRIDGE_NO_ALIAS, T.PCI_BRIDGE_NO_ALIAS_IDS),
    )
    return tuple(
        BridgeFlagQuirk(
            v, d, bit, name=name, origin="kernel", versions=_date("bridge-flag", name, v, d)
        )
        for name, bit, ids in tables
        for v, d in ids
    )


def _kernel_acs_cap_table() -> tuple[AcsCapQuirk, ...]:
    """``pci_disable_broken_acs_cap`` (R2.2): SV removed from the cached capability."""
    name = "pci_disable_broken_acs_cap"
    return tuple(
        AcsCapQuirk(
            v, d, AcsFlags.SV, name=name, origin="kernel", versions=_date("acs-cap", name, v, d)
        )
        for v, d in T.ACS_BROKEN_SV_IDS
    )


_KERNEL_ACS = _kernel_acs_table()
_KERNEL_DMA_ALIAS = _kernel_dma_alias_table()
_KERNEL_BRIDGE_FLAGS = _kernel_bridge_flag_table()
_KERNEL_ACS_CAPS = _kernel_acs_cap_table()


# ============================================================================
# The table holder
# ============================================================================


_Q = TypeVar("_Q", AcsQuirk, DmaAliasQuirk, BridgeFlagQuirk, AcsCapQuirk)
_AnyQuirk = AcsQuirk | DmaAliasQuirk | BridgeFlagQuirk | AcsCapQuirk


class _VendorIndex(Generic[_Q]):
    """Entries of one table grouped by vendor id, table order kept.

    ``for_vendor(v)`` yields exactly the entries whose vendor is ``v`` or
    any (``None``), in their original order.
    """

    __slots__ = ("_any", "_by", "may_match")

    def __init__(self, entries: Iterable[_Q]) -> None:
        ordered = list(entries)
        self._any: tuple[_Q, ...] = tuple(q for q in ordered if q.vendor is None)
        vendors = {q.vendor for q in ordered if q.vendor is not None}
        self._by: dict[int, tuple[_Q, ...]] = {
            v: tuple(q for q in ordered if q.vendor is None or q.vendor == v) for v in vendors
        }
        #: Whether any entry can match a device of a vendor (most vendors have
        #: none): asked once per device, so a call into C, not Python.
        self.may_match: Callable[[int], bool] = (
            _any_vendor if self._any else frozenset(vendors).__contains__
        )

    def for_vendor(self, vendor: int) -> tuple[_Q, ...]:
        return self._by.get(vendor, self._any)


def _any_vendor(vendor: int) -> bool:  # (a table with an entry for any vendor)
    return True


def _kind(quirk: _AnyQuirk) -> str:
    if isinstance(quirk, AcsQuirk):
        return "acs"
    if isinstance(quirk, DmaAliasQuirk):
        return "dma-alias"
    if isinstance(quirk, BridgeFlagQuirk):
        return "bridge-flag"
    return "acs-cap"


def _dated(kind: str, quirk: _AnyQuirk) -> DatedQuirk:
    return DatedQuirk(kind, quirk.name, quirk.vendor, quirk.device, quirk.device, quirk.versions)


class _Tables(NamedTuple):
    """The entries one kernel has, and those whose presence is not known."""

    acs: tuple[AcsQuirk, ...]
    dma_alias: tuple[DmaAliasQuirk, ...]
    bridge_flags: tuple[BridgeFlagQuirk, ...]
    acs_caps: tuple[AcsCapQuirk, ...]
    uncertain: tuple[UncertainQuirk, ...]


def _for_kernel(
    kernel: KernelVersion,
    acs: Iterable[AcsQuirk],
    dma_alias: Iterable[DmaAliasQuirk],
    bridge_flags: Iterable[BridgeFlagQuirk],
    acs_caps: Iterable[AcsCapQuirk],
) -> _Tables:
    """Keep the entries ``kernel`` has, by the fail-closed rule where that is not known."""
    uncertain: list[UncertainQuirk] = []

    def active(entries: Iterable[_Q]) -> list[_Q]:
        out: list[_Q] = []
        for q in entries:
            if q.versions.everywhere:
                out.append(q)
                continue
            held = q.versions.holds(kernel)
            if held is None:
                kind = _kind(q)
                kept = _kept_if_uncertain(kind, q.name, q.device)
                uncertain.append(UncertainQuirk(_dated(kind, q), kept))
                held = kept
            if held:
                out.append(q)
        return out

    def bind(q: AcsQuirk) -> AcsQuirk:
        """An id-list entry with the ids ``kernel`` has (uncertain ones left out)."""
        check = q.check
        if not isinstance(check, _IdListCheck) or q.vendor is None:
            return q
        spans = []
        for lo, hi in check.spans:
            versions = _date("acs-id", q.name, q.vendor, lo, hi)
            held = versions.holds(kernel)
            if held is None:
                dq = DatedQuirk("acs-id", q.name, q.vendor, lo, hi, versions)
                uncertain.append(UncertainQuirk(dq, False))
            if held:
                spans.append((lo, hi))
        if len(spans) == len(check.spans):
            return q
        return attrs.evolve(q, check=_IdListCheck(check.function, tuple(spans)))

    return _Tables(
        tuple(bind(q) for q in active(acs)),
        tuple(active(dma_alias)),
        tuple(active(bridge_flags)),
        tuple(active(acs_caps)),
        tuple(uncertain),
    )


def _to_kernel(value: KernelVersion | str | None) -> KernelVersion:
    return resolve_kernel(value)


@attrs.frozen
class Quirks:
    """The quirk tables of one kernel; ``Quirks()`` is the newest one's (:data:`DEFAULT_QUIRKS`).

    Args:
        user_acs: ACS quirks tried *before* ``acs`` (see the module docstring).
        acs: the ACS table in order (default: ``pci_dev_acs_enabled[]``, with
            the entries of every modelled kernel).
        dma_alias: DMA-alias quirks (a union: order does not matter).
        bridge_flags: bridge-flag quirks.
        acs_caps: ACS capability masks (``pci_disable_broken_acs_cap``).
        kernel: the kernel modelled (a version or a release string; default
            the newest): of the entries above, only those it has are used
            (each entry's ``versions``; where that is not known, the
            fail-closed rule of the kernel versions page, and :attr:`uncertain`
            says so).

    Values are immutable; the ``with_*``, :meth:`without` and
    :meth:`for_kernel` methods return new tables.

    >>> loongson = PciFunction("00:09.0", 0x0014, 0x7A09, pcie_type=PcieType.ROOT_PORT)
    >>> [q.name for q in DEFAULT_QUIRKS.acs_entries_for(0x0014)][:1]
    ['pci_quirk_loongson_acs']
    >>> old = DEFAULT_QUIRKS.for_kernel("6.6")  # before v6.16, and no 6.6 tree was read
    >>> old.acs_entries_for(0x0014)
    ()
    >>> [(u.quirk.devices, u.quirk.versions.since, u.kept) for u in old.uncertain_for(loongson)]
    [('0014:7a09', KernelVersion(major=6, minor=16), False)]
    """

    user_acs: tuple[AcsQuirk, ...] = attrs.field(default=(), converter=_acs_tuple)
    acs: tuple[AcsQuirk, ...] = attrs.field(default=_KERNEL_ACS, converter=_acs_tuple)
    dma_alias: tuple[DmaAliasQuirk, ...] = attrs.field(
        default=_KERNEL_DMA_ALIAS, converter=_alias_tuple
    )
    bridge_flags: tuple[BridgeFlagQuirk, ...] = attrs.field(
        default=_KERNEL_BRIDGE_FLAGS, converter=_flag_tuple
    )
    acs_caps: tuple[AcsCapQuirk, ...] = attrs.field(default=_KERNEL_ACS_CAPS, converter=_cap_tuple)
    kernel: KernelVersion = attrs.field(default=NEWEST, converter=_to_kernel)
    # The entries ``kernel`` has, and those of unknown presence.
    _tables: _Tables = attrs.field(init=False, eq=False, repr=False, hash=False)
    # Per-vendor views of the tables, in table order, so a lookup only tries
    # entries whose vendor can match (the answer is the same as a full scan).
    _acs_by_vendor: _VendorIndex[AcsQuirk] = attrs.field(
        init=False, eq=False, repr=False, hash=False
    )
    _alias_by_vendor: _VendorIndex[DmaAliasQuirk] = attrs.field(
        init=False, eq=False, repr=False, hash=False
    )
    _flags_by_vendor: _VendorIndex[BridgeFlagQuirk] = attrs.field(
        init=False, eq=False, repr=False, hash=False
    )
    _caps_by_vendor: _VendorIndex[AcsCapQuirk] = attrs.field(
        init=False, eq=False, repr=False, hash=False
    )
    # The DMA-alias and bridge-flag entries matching a device depend only on
    # its ids (``matches``): found once per distinct ids.
    _alias_memo: dict[_Ids, tuple[DmaAliasQuirk, ...]] = attrs.field(
        init=False, factory=dict, eq=False, repr=False, hash=False
    )
    _flags_memo: dict[_Ids, frozenset[BridgeFlag]] = attrs.field(
        init=False, factory=dict, eq=False, repr=False, hash=False
    )

    def __attrs_post_init__(self) -> None:
        tables = _for_kernel(
            self.kernel,
            (*self.user_acs, *self.acs),
            self.dma_alias,
            self.bridge_flags,
            self.acs_caps,
        )
        object.__setattr__(self, "_tables", tables)
        object.__setattr__(self, "_acs_by_vendor", _VendorIndex(tables.acs))
        object.__setattr__(self, "_alias_by_vendor", _VendorIndex(tables.dma_alias))
        object.__setattr__(self, "_flags_by_vendor", _VendorIndex(tables.bridge_flags))
        object.__setattr__(self, "_caps_by_vendor", _VendorIndex(tables.acs_caps))

    @classmethod
    def none(cls) -> Quirks:
        """Tables with no quirk at all (generic rules only)."""
        return cls(user_acs=(), acs=(), dma_alias=(), bridge_flags=(), acs_caps=())

    # --- versions -----------------------------------------------------------
    def for_kernel(self, kernel: KernelVersion | str | None) -> Quirks:
        """These tables as ``kernel`` has them (``None``: the newest modelled kernel).

        User quirks are kept; of the kernel's entries only those ``kernel``
        has are used. ``DEFAULT_QUIRKS.for_kernel(NEWEST)`` is
        :data:`DEFAULT_QUIRKS`.

        Raises:
            InvalidKernelVersion: ``kernel`` is not a version.
        """
        return attrs.evolve(self, kernel=kernel)

    @property
    def uncertain(self) -> tuple[UncertainQuirk, ...]:
        """The entries (and listed ids) whose presence in ``kernel`` is not known.

        Each says whether the model kept it (it can only make groups bigger)
        or left it out (it could split a group); a result that depends on
        one of them may differ on that kernel.
        """
        return self._tables.uncertain

    def uncertain_for(self, fn: PciFunction) -> tuple[UncertainQuirk, ...]:
        """The :attr:`uncertain` entries that match ``fn``'s vendor and device ids."""
        return tuple(u for u in self._tables.uncertain if u.quirk.matches(fn.vendor, fn.device))

    # --- building -----------------------------------------------------------
    def with_acs_quirk(self, *quirks: AcsQuirk, first: bool = True) -> Quirks:
        """Add ACS quirks; by default tried before every kernel entry.

        Quirks added by one call, and by successive calls, are tried in the
        order they were added. ``first=False`` appends them after the current
        ``acs`` table instead.
        """
        if first:
            return attrs.evolve(self, user_acs=(*self.user_acs, *quirks))
        return attrs.evolve(self, acs=(*self.acs, *quirks))

    def with_dma_alias_quirk(self, *quirks: DmaAliasQuirk) -> Quirks:
        """Add DMA-alias quirks (their devfns are unioned with the others')."""
        return attrs.evolve(self, dma_alias=(*self.dma_alias, *quirks))

    def with_bridge_flag_quirk(self, *quirks: BridgeFlagQuirk) -> Quirks:
        """Add bridge-flag quirks."""
        return attrs.evolve(self, bridge_flags=(*self.bridge_flags, *quirks))

    def without(self, *names: str) -> Quirks:
        """Drop every quirk (of any kind) whose name is in ``names``.

        E.g. ``DEFAULT_QUIRKS.without("pci_quirk_rciep_acs")`` models a kernel
        before that quirk was merged.
        """
        drop = set(names)
        return attrs.evolve(
            self,
            user_acs=tuple(q for q in self.user_acs if q.name not in drop),
            acs=tuple(q for q in self.acs if q.name not in drop),
            dma_alias=tuple(q for q in self.dma_alias if q.name not in drop),
            bridge_flags=tuple(q for q in self.bridge_flags if q.name not in drop),
            acs_caps=tuple(q for q in self.acs_caps if q.name not in drop),
        )

    # --- ACS (R2.5) ---------------------------------------------------------
    def acs_entries(self) -> Iterator[AcsQuirk]:
        """Every ACS entry ``kernel`` has, in the order they are tried (user ones first)."""
        yield from self._tables.acs

    def dma_alias_entries(self) -> tuple[DmaAliasQuirk, ...]:
        """The DMA-alias entries ``kernel`` has."""
        return self._tables.dma_alias

    def bridge_flag_entries(self) -> tuple[BridgeFlagQuirk, ...]:
        """The bridge-flag entries ``kernel`` has."""
        return self._tables.bridge_flags

    def acs_cap_entries(self) -> tuple[AcsCapQuirk, ...]:
        """The ACS capability masks ``kernel`` has."""
        return self._tables.acs_caps

    def acs_entries_for(self, vendor: int) -> tuple[AcsQuirk, ...]:
        """The ACS entries that can apply to a device of ``vendor``, in order (R2.5)."""
        return self._acs_by_vendor.for_vendor(vendor)

    def acs_quirk_may_match(self, vendor: int) -> bool:
        """Whether any ACS entry can apply to a device of ``vendor`` (most have none)."""
        return self._acs_by_vendor.may_match(vendor)

    def acs_decision(
        self, fn: PciFunction, flags: AcsFlags, ctx: QuirkContext
    ) -> tuple[bool | None, AcsQuirk | None]:
        """The verdict of :meth:`acs_enabled` and the entry that gave it.

        ``(None, None)`` when no entry applies.
        """
        for quirk in self._acs_by_vendor.for_vendor(fn.vendor):
            if quirk.matches(fn):
                verdict = quirk.check(fn, flags, ctx)
                if verdict is not None:
                    return verdict, quirk
        return None, None

    def acs_enabled(self, fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
        """R2.5 ``pci_dev_specific_acs_enabled``: the first applicable entry's verdict.

        Entries whose vendor and device match (``None`` matching any) are
        tried in order; the first one whose check returns non-``None`` wins.
        ``None``: no quirk applies (-ENOTTY), so the generic rules run.
        """
        return self.acs_decision(fn, flags, ctx)[0]

    # --- DMA aliases (R3.5) -------------------------------------------------
    def dma_alias_quirks_for(self, fn: PciFunction) -> tuple[DmaAliasQuirk, ...]:
        """The DMA-alias quirks that match ``fn`` (including run-time ones)."""
        index = self._alias_by_vendor
        if not index.may_match(fn.vendor):
            return ()
        key = _ids(fn)
        found = self._alias_memo.get(key)
        if found is None:
            entries = index.for_vendor(fn.vendor)
            found = tuple(q for q in entries if q.matches(fn))
            self._alias_memo[key] = found
        return found

    def dma_alias_quirk_may_match(self, vendor: int) -> bool:
        """Whether any DMA-alias entry can apply to a device of ``vendor`` (most have none)."""
        return self._alias_by_vendor.may_match(vendor)

    def dma_alias_vendors(self) -> frozenset[int] | None:
        """The vendors whose devices a DMA-alias quirk may match (``None``: any vendor)."""
        index = self._alias_by_vendor
        return None if index._any else frozenset(index._by)

    def dma_alias_devfns(self, fn: PciFunction) -> frozenset[int]:
        """R3.5: devfns that the header-phase quirks add to ``fn``'s ``dma_alias_mask``.

        Does not include ``fn.dma_alias_devfns`` (the caller merges those).
        The devfns are on ``fn``'s own bus (R3.3).
        """
        entries = self.dma_alias_quirks_for(fn)
        if not entries:
            return _NO_DEVFNS
        out: set[int] = set()
        for quirk in entries:
            out |= quirk.aliases(fn)
        return frozenset(out) if out else _NO_DEVFNS

    # --- bridge flags (R3.4, R3.5) -----------------------------------------
    def pcie_bridge_alias(self, fn: PciFunction, topology: Topology) -> bool:
        """``PCI_DEV_FLAG_PCIE_BRIDGE_ALIAS``, as ``quirk_use_pcie_bridge_dma_alias`` sets it.

        For a listed device, the flag is set iff: it is not on a root bus, its
        header type is a PCI-PCI bridge, it has no PCIe capability, and the
        bridge above it is PCIe but not a PCIe-to-PCI bridge (R3.5).
        """
        if BridgeFlag.PCIE_BRIDGE_ALIAS not in self._bridge_flags(fn):
            return False
        addr = fn.address
        if topology.is_root_bus(addr.domain, addr.bus):
            return False
        if fn.header_type != _HEADER_TYPE_BRIDGE or fn.is_pcie:
            return False
        parent = topology.bridge_above(addr)
        if parent is None:  # a virtual bus; the kernel would not get here
            return False
        return parent.is_pcie and parent.pcie_type != PcieType.PCI_BRIDGE

    def bridge_xlate_root(self, fn: PciFunction) -> bool:
        """``PCI_DEV_FLAGS_BRIDGE_XLATE_ROOT`` (``quirk_bridge_cavm_thrx2_pcie_root``)."""
        flags = self._bridge_flags(fn)  # (usually none: no enum member hashed)
        return bool(flags) and BridgeFlag.BRIDGE_XLATE_ROOT in flags

    def pci_bridge_no_alias(self, fn: PciFunction) -> bool:
        """``PCI_DEV_FLAGS_PCI_BRIDGE_NO_ALIAS`` (``quirk_aspeed_pci_bridge_no_alias``).

        Set unconditionally on the listed ids; ``pci_for_each_dma_alias``
        reads it only for a PCIe-to-PCI bridge, which then adds no alias
        (R3.4, since ≈v7.0).
        """
        flags = self._bridge_flags(fn)
        return bool(flags) and BridgeFlag.PCI_BRIDGE_NO_ALIAS in flags

    # --- the ACS capability (R2.2) ------------------------------------------
    def acs_capabilities(self, fn: PciFunction) -> AcsFlags | None:
        """``pdev->acs_capabilities``: ``fn``'s ACS capability as the kernel caches it.

        The capability register, less the controls a quirk removes
        (``pci_disable_broken_acs_cap`` clears SV on IDT 0x80b5 and 0x8090
        since ≈v7.0, so SV counts as not implemented: R2.2 drops it from a
        request, R2.7 never enables it). ``None`` without an ACS capability.

        >>> from iommugroups import Acs
        >>> idt = PciFunction("02:01.0", 0x111D, 0x80B5, pcie_type=PcieType.DOWNSTREAM,
        ...                   acs=Acs(REQ_ACS_FLAGS, AcsFlags.RR | AcsFlags.CR | AcsFlags.UF))
        >>> DEFAULT_QUIRKS.acs_capabilities(idt).names()
        'RR|CR|UF'
        >>> DEFAULT_QUIRKS.for_kernel("6.12").acs_capabilities(idt).names()
        'SV|RR|CR|UF'
        """
        acs = fn.acs
        if acs is None:
            return None
        cap = acs.cap.value
        for quirk in self._caps_by_vendor.for_vendor(fn.vendor):
            if quirk.matches(fn):
                cap &= ~quirk.clear.value
        return AcsFlags(cap)

    def _bridge_flags(self, fn: PciFunction) -> frozenset[BridgeFlag]:
        """The flags the bridge-flag quirks matching ``fn`` set, found once per distinct ids."""
        index = self._flags_by_vendor
        if not index.may_match(fn.vendor):
            return _NO_FLAGS
        key = _ids(fn)
        found = self._flags_memo.get(key)
        if found is None:
            entries = index.for_vendor(fn.vendor)
            found = frozenset(q.flag for q in entries if q.matches(fn)) or _NO_FLAGS
            self._flags_memo[key] = found
        return found


_HEADER_TYPE_BRIDGE = 1
_Ids = tuple[int, int, int, int, int]


def _ids(fn: PciFunction) -> _Ids:
    """What a DMA-alias or bridge-flag quirk's ``matches`` reads of a device."""
    return (fn.vendor, fn.device, fn.subsystem_vendor, fn.subsystem_device, fn.class_code)


_NO_DEVFNS: frozenset[int] = frozenset()
_NO_FLAGS: frozenset[BridgeFlag] = frozenset()

#: The newest modelled kernel's tables (:data:`~iommugroups._kernel.version.NEWEST`).
DEFAULT_QUIRKS = Quirks()


@functools.lru_cache(maxsize=32)
def _kernel_quirks(kernel: KernelVersion) -> Quirks:
    return DEFAULT_QUIRKS if kernel == NEWEST else DEFAULT_QUIRKS.for_kernel(kernel)


def kernel_quirks(kernel: KernelVersion | str | None = None) -> Quirks:
    """The kernel's quirk tables as ``kernel`` has them (``None``: :data:`DEFAULT_QUIRKS`).

    Made once per version.

    >>> kernel_quirks() is DEFAULT_QUIRKS, kernel_quirks("7.3.4-amd64") is DEFAULT_QUIRKS
    (True, True)
    >>> str(kernel_quirks("6.1").kernel)
    '6.1'

    Raises:
        InvalidKernelVersion: ``kernel`` is not a version.
    """
    return _kernel_quirks(resolve_kernel(kernel))


@attrs.frozen
class QuirkContext:
    """What rules need beyond one device: the topology, quirks, platform facts.

    Args:
        topology: the topology ``fn`` belongs to.
        quirks: the quirk tables.
        amd_ivrs: an ACPI IVRS table (AMD IOMMU) exists (``pci_quirk_amd_sb_acs``).
        acs_requested: an IOMMU called ``pci_request_acs()`` before enumeration
            (R2.7); also drives the Intel PCH enable quirks.
        acs_cache: per-topology cache of ``pci_acs_enabled(fn, REQ_ACS_FLAGS)``
            verdicts (:class:`~iommugroups._kernel.acs.AcsVerdict`; not part of
            equality).
        path_cache: per-topology cache for ``pci_acs_path_enabled`` (not
            part of equality).
        alias_cache: per-topology cache of the aliases bridges add for a
            bus (``alias.bus_aliases``, R3.4; not part of equality).
    """

    topology: Topology
    quirks: Quirks = DEFAULT_QUIRKS
    amd_ivrs: bool = False
    acs_requested: bool = True
    path_cache: dict[PciAddress, bool] = attrs.field(factory=dict, eq=False, repr=False)
    acs_cache: dict[PciAddress, Any] = attrs.field(factory=dict, eq=False, repr=False)
    alias_cache: dict[tuple[int, int], tuple[tuple[PciFunction, int], ...]] = attrs.field(
        factory=dict, eq=False, repr=False
    )


def make_context(
    topology: Topology,
    quirks: Quirks | None = None,
    *,
    kernel: KernelVersion | str | None = None,
) -> QuirkContext:
    """The rule context for ``topology``: quirks and platform facts.

    ``quirks`` are used as given; without them, the kernel's tables as
    ``kernel`` has them (``kernel_quirks``; ``None``: the newest).

    ``amd_ivrs`` (an ACPI IVRS table exists, which ``pci_quirk_amd_sb_acs``
    requires) is true when an AMD-Vi instance is declared, or the
    topology's platform facts say AMD-Vi (``Topology.platform``), or,
    when neither is declared, when an AMD host bridge (vendor 0x1022, class
    0x0600) sits on a root bus -- an AMD x86 machine with its IOMMU on.
    """
    ivrs = any(i.kind is IommuKind.AMD_VI for i in topology.iommus)
    platform = topology.platform
    if platform.iommu is not None or platform.units:
        ivrs = platform.iommu is IommuKind.AMD_VI or any(
            u.kind is IommuKind.AMD_VI for u in platform.units
        )
    elif not topology.iommus:
        ivrs = any(
            f.vendor == 0x1022
            and f.class_code >> 8 == 0x0600
            and topology.is_root_bus(f.address.domain, f.address.bus)
            for f in topology.functions
        )
    tables = quirks if quirks is not None else kernel_quirks(kernel)
    return QuirkContext(topology, tables, amd_ivrs=ivrs)
