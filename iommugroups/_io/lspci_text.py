"""Read ``lspci`` text as people paste it: ``-vvv``/``-vv``/``-v`` and ``-tv`` trees.

Bug reports carry the output of ``lspci -vvv`` (run as root it shows every
ACS register), often ``lspci -vvnn`` (numeric ids too), ``lspci -v`` (no ACS
bits) or ``lspci -tv`` (the bus tree). Recent pciutils also print each
device's real IOMMU group (``IOMMU group: N`` with ``-vv``, ``IOMMU group N``
at the end of ``Flags:`` with ``-v``), so one paste can hold a topology, its
ACS bits *and* the groups the kernel made. :func:`read_lspci_text` and
:func:`read_lspci_tree` turn such text into a
:class:`~iommugroups._kernel.reading.Reading`.

What is read from a device block
--------------------------------
* Address: ``bb:dd.f``, ``dddd:bb:dd.f`` (``-D``; domains wider than four
  digits, Intel VMD's ``10000:e0:01.1``), or a path (``-P``
  ``00:1c.0/00.0``, ``-PP`` ``00:1c.0/02:00.0``), whose last element is the
  device; a ``-P`` element without a bus number is on the secondary bus of
  the bridge before it, which must be in the input.
* Class: ``[0604]`` (``-nn``), ``0604`` (``-n``), ``Class 0604``, or the class
  name mapped back through ``pci.ids`` (``lspci`` prints the subclass name, or
  the class name *with* the number when the subclass is not in the
  database, so a bare name is never ambiguous). The programming interface
  comes from ``(prog-if 02 [...])``, which verbose ``lspci`` always prints
  when it is not zero.
* Vendor and device ids: ``[8086:1901]`` (``-nn``), ``8086:1901`` (``-n``),
  ``Vendor Device 1901`` (a device ``pci.ids`` does not name), or the names
  mapped back through the bundled ``pci.ids`` subset *when the name is
  unambiguous* (:func:`lookup_device_name`); otherwise the ids are recorded as
  unknown. A hex dump in the block (``lspci -vvvxxx``, or a second
  ``lspci -xxx`` block of the same device) gives the ids, class, header type
  and multifunction bit exactly.
* Header type: a ``Bus: primary=.., secondary=.., subordinate=..`` line
  (``lspci`` prints it for every PCI-PCI and CardBus bridge) makes the device
  a bridge with those bus numbers.
* Multifunction: ``lspci`` does not print the header-type bit. A function
  other than 0 is multifunction anyway (R5.6: the slot scan marks it); a
  function 0 is taken to be multifunction iff another (non-VF) function of its
  slot is in the input.
* PCIe: ``Express (v2) Root Port (Slot+)``, ``Downstream Port``, ``Upstream
  Port``, ``Endpoint``, ``Legacy Endpoint``, ``Root Complex Integrated
  Endpoint``, ``PCI-Express to PCI/PCI-X Bridge``, ``PCI/PCI-X to
  PCI-Express Bridge``, ``Root Complex Event Collector``.
* ACS: ``ACSCap:`` / ``ACSCtl:`` (``SrcValid TransBlk ReqRedir CmpltRedir
  UpstreamFwd EgressCtrl DirectTrans``, each ``+`` or ``-``).
* SR-IOV: ``IOVCtl: Enable+``, ``Initial VFs / Total VFs / Number of VFs``,
  ``VF offset / stride / Device ID``; a device at one of an enabled PF's VF
  routing ids is that PF's VF (vendor = the PF's, device = the VF Device ID).
* ``Kernel driver in use:``, ``IOMMU group: N`` / ``Flags: ..., IOMMU group N``.

Documented degradations
-----------------------
Each is an :class:`~iommugroups._kernel.reading.Unknown` in the reading, and the
fact is named in the function's ``unknown`` set; nothing is guessed.

=========================================  =====================================
Input                                      Unknown
=========================================  =====================================
``Capabilities: <access denied>`` (not     ``pcie``, ``acs`` (and ``sriov``)
root)
ACS capability listed without ``ACSCap``/  ``acs`` (grouping treats it as
``ACSCtl`` lines (``lspci -v``)            absent, which can only merge)
``Status: Cap+`` but no capability line    ``pcie``, ``acs`` (a capability
and no ``Kernel driver`` line after them   pointer of 0 looks the same)
a device header with no verbose lines      ``config`` (``pcie``, ``acs``;
(plain ``lspci``, ``-k``, a cut paste)     ``bus-numbers`` for a bridge class)
SR-IOV capability without its details      ``sriov``
a name ``pci.ids`` does not resolve to     ``ids``: the ids all candidates share
exactly one vendor/device pair             are kept, the others read 0xffff;
                                           when every candidate has the same
                                           entries in the kernel's quirk tables
                                           the lowest pair stands for them, so
                                           the quirks still apply
a class name not in ``pci.ids``            ``class``
a device without ``IOMMU group`` when      ``group``
others have one (the AMD IOMMU itself)
a bridge whose secondary bus is 0          ``bus-numbers`` (not configured)
``!!! Unknown header type``                ``config``; the device is left out,
                                           as the kernel ignores it
=========================================  =====================================

Tolerance, and where it stops
-----------------------------
Real pastes are mangled by mail clients, so the reader accepts: tabs turned
into spaces or non-breaking spaces (indentation is any whitespace), lines
wrapped by the mail client (a non-indented line inside a device block that is
neither a device header nor a hex row continues the line before it when that
one ends in a space or is long enough to have been wrapped), text before the
first device and between blocks (mail prose, command lines, ``lspci -t``
trees, ``dmesg``; a blank line, or any other non-indented line, ends a
block), the same device shown twice (``lspci -vvv -s X`` then
``lspci -xxx -s X``: merged, and every fact must agree), ``<?>`` and every
decoding line the reader does not need.

It never guesses: a line that starts like a fact the grouping needs but does
not parse (an ``ACSCap:`` line missing a bit, a ``Bus:`` line cut short, an
``IOMMU group:`` that is not a number), a verbose line orphaned outside any
device block (a blank line inside a block), two blocks of one device that
disagree, a hex dump that contradicts the text, an inconsistent topology, or
input with no device at all is an :class:`~iommugroups._errors.InputError`
naming the file and line.

``lspci -t`` trees
------------------
:func:`read_lspci_tree` reads ``lspci -t``, ``-tv``, ``-tvv`` and ``-tvnn``
trees (also with the text around them): which device is on which bus, and
each bridge's secondary/subordinate bus range, as ``lspci``'s ``ls-tree.c``
prints them. A tree shows no classes and no capabilities, so every function's
PCIe type, ACS capability and class are unknown. A tree whose first line lost
its indentation against the others (mail clients do that) is re-read with
that line shifted.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import PurePath
from typing import Any

import attrs

from .._errors import InputError, InvalidAddress
from .._kernel import quirk_tables as T
from .._kernel.groups import Grouping
from .._kernel.model import (
    HEADER_BRIDGE,
    HEADER_CARDBUS,
    HEADER_NORMAL,
    Acs,
    AcsFlags,
    PciAddress,
    PcieType,
    PciFunction,
    SriovCapability,
    Topology,
)
from .._kernel.quirks import DEFAULT_QUIRKS
from .._kernel.reading import Reading, Unknown
from .lspci_hex import topology_at_lines

__all__ = [
    "MAX_DEVICES",
    "MAX_TEXT_CHARS",
    "IdLookup",
    "build_pci_ids_subset",
    "looks_like_lspci_text",
    "looks_like_lspci_tree",
    "lookup_device_name",
    "read_lspci_text",
    "read_lspci_tree",
]

#: Inputs longer than this many characters (64 MiB) are refused.
MAX_TEXT_CHARS = 64 * 1024 * 1024
#: More device blocks than this are refused.
MAX_DEVICES = 65536
#: Upper bound on SR-IOV VF positions examined (hostile input).
_VF_BUDGET = 1 << 20

_HEX = "0-9a-fA-F"
_ADDR = rf"(?:[{_HEX}]{{4,8}}:)?[{_HEX}]{{2}}:[{_HEX}]{{2}}\.[0-7]"
_PATH_TAIL = rf"(?:/(?:[{_HEX}]{{2}}:)?[{_HEX}]{{2}}\.[0-7])*"
#: A device header: address (or path) at column 0, whitespace, the rest.
_HEADER_RE = re.compile(rf"(?P<addr>{_ADDR}{_PATH_TAIL})[ \t]+(?P<rest>\S.*)$")
#: A hex-dump row: offset, colon (``00:`` / ``000:``).
_HEXROW_START_RE = re.compile(rf"[{_HEX}]{{2,3}}:(?:[ \t]|$)")
_HEXROW_RE = re.compile(
    rf"(?P<off>[{_HEX}]{{2,3}}):(?P<bytes>(?:[ \t]+[{_HEX}]{{2}}){{16}})[ \t]*$"
)

#: Whitespace that mail clients substitute for tabs/spaces.
_ODD_SPACE = str.maketrans({"\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u3000": " "})

# --- verbose lines ------------------------------------------------------------
_VERBOSE_KEY_RE = re.compile(
    r"(?:Subsystem|Control|Status|Flags|Capabilities|Kernel driver in use|Kernel modules"
    r"|IOMMU group|Bus|ACSCap|ACSCtl|Latency|Interrupt|Region \d|Expansion ROM|DeviceName"
    r"|NUMA node|Physical Slot|I/O behind bridge|Memory behind bridge"
    r"|Prefetchable memory behind bridge|Secondary status|BridgeCtl)\b"
)
_SUBSYS_RE = re.compile(r"Subsystem: (?P<name>.*)$")
_CONTROL_RE = re.compile(r"Control: I/O[+-] ")
_STATUS_RE = re.compile(r"Status: Cap(?P<cap>[+-]) ")
_FLAGS_RE = re.compile(r"Flags: (?P<flags>.*\bdevsel\b.*)$")
_FLAGS_GROUP_RE = re.compile(r",\s*IOMMU group (?P<group>\S+)$")
_GROUP_PREFIX = "IOMMU group:"
_GROUP_RE = re.compile(r"IOMMU group: (?P<group>\d+)$")
_BUS_PREFIX = "Bus: primary="
_BUS_RE = re.compile(
    r"Bus: primary=(?P<pri>[0-9a-f]{2}), secondary=(?P<sec>[0-9a-f]{2}), "
    r"subordinate=(?P<sub>[0-9a-f]{2}), sec-latency=\d+$"
)
_CAP_RE = re.compile(r"Capabilities: \[(?P<off>[0-9a-f]{1,3})(?: v\d+)?\] (?P<what>.*)$")
_CAP_DENIED = "Capabilities: <access denied>"
_EXPRESS_RE = re.compile(
    r"Express (?:\(v\d+\) )?(?P<type>.+?)(?: \(Slot[+-]\))?"
    r"(?:, (?:MSI [0-9a-f]{2}|IntMsgNum \d+))?$"
)
_ACS_RE = re.compile(r"(?P<reg>ACSCap|ACSCtl): ?(?P<bits>.*)$")
_IOVCTL_RE = re.compile(r"IOVCtl: Enable(?P<en>[+-])")
_VFS_PREFIX = "Initial VFs:"
_VFS_RE = re.compile(
    r"Initial VFs: (?P<initial>\d+), Total VFs: (?P<total>\d+), "
    r"Number of VFs: (?P<num>\d+), Function Dependency Link: [0-9a-f]{2}$"
)
_VFOFF_PREFIX = "VF offset:"
_VFOFF_RE = re.compile(
    r"VF offset: (?P<offset>\d+), stride: (?P<stride>\d+), Device ID: (?P<did>[0-9a-f]{4})$"
)
_DRIVER_PREFIX = "Kernel driver in use:"
_DRIVER_RE = re.compile(r"Kernel driver in use: (?P<driver>\S+)$")
_BAD_HTYPE_RE = re.compile(r"!!! Unknown header type (?P<ht>[0-9a-f]{2})$")

#: ``ACSCap``/``ACSCtl`` bit names, as ``ls-ecaps.c`` prints them.
_ACS_BITS: dict[str, AcsFlags] = {
    "SrcValid": AcsFlags.SV,
    "TransBlk": AcsFlags.TB,
    "ReqRedir": AcsFlags.RR,
    "CmpltRedir": AcsFlags.CR,
    "UpstreamFwd": AcsFlags.UF,
    "EgressCtrl": AcsFlags.EC,
    "DirectTrans": AcsFlags.DT,
}

#: PCIe device/port types, as ``ls-caps.c`` ``cap_express`` prints them.
_PCIE_TYPES: dict[str, PcieType] = {
    "Endpoint": PcieType.ENDPOINT,
    "Legacy Endpoint": PcieType.LEG_END,
    "Root Port": PcieType.ROOT_PORT,
    "Upstream Port": PcieType.UPSTREAM,
    "Downstream Port": PcieType.DOWNSTREAM,
    "PCI-Express to PCI/PCI-X Bridge": PcieType.PCI_BRIDGE,
    "PCI/PCI-X Bridge": PcieType.PCI_BRIDGE,  # pciutils before 3.1
    "PCI/PCI-X to PCI-Express Bridge": PcieType.PCIE_BRIDGE,
    "Root Complex Integrated Endpoint": PcieType.RC_END,
    "Root Complex Event Collector": PcieType.RC_EC,
}

#: Standard capability ids by the words ``ls-caps.c`` starts their line with.
_STD_CAPS: tuple[tuple[str, int], ...] = (
    ("Power Management version", 0x01),
    ("AGP version", 0x02),
    ("Vital Product Data", 0x03),
    ("Slot ID", 0x04),
    ("MSI-X:", 0x11),
    ("MSI:", 0x05),
    ("CompactPCI hot-swap", 0x06),
    ("PCI-X", 0x07),
    ("HyperTransport", 0x08),
    ("Vendor Specific Information", 0x09),
    ("Debug port", 0x0A),
    ("CompactPCI central resource control", 0x0B),
    ("Hot-plug capable", 0x0C),
    ("Subsystem:", 0x0D),
    ("AGP3", 0x0E),
    ("Secure device", 0x0F),
    ("Express", 0x10),
    ("SATA HBA", 0x12),
    ("PCI Advanced Features", 0x13),
    ("Enhanced Allocation", 0x14),
)
_STD_CAP_UNKNOWN_RE = re.compile(r"(?:#|Capability ID 0x)(?P<id>[0-9a-f]{2})\b")

# --- header ------------------------------------------------------------------
_PROGIF_SUFFIX_RE = re.compile(r" \(prog-if (?P<pi>[0-9a-f]{2})(?: \[[^\]]*\])?\)$")
_REV_SUFFIX_RE = re.compile(r" \(rev (?P<rev>[0-9a-f]{2})\)$")
_NUM_CLASS_RE = re.compile(r"(?:Class )?(?P<cls>[0-9a-f]{4})$")
_NAMED_CLASS_RE = re.compile(r"(?P<name>.*) \[(?P<cls>[0-9a-f]{4})\]$")
_NUM_IDS_RE = re.compile(r"(?P<v>[0-9a-f]{4}):(?P<d>[0-9a-f]{4})$")
_MIXED_IDS_RE = re.compile(r"(?P<name>.*?) ?\[(?P<v>[0-9a-f]{4}):(?P<d>[0-9a-f]{4})\]$")
_UNNAMED_DEVICE_RE = re.compile(r"(?P<vendor>.+) Device (?P<d>[0-9a-f]{4})$")
_NO_VENDOR_RE = re.compile(r"Device (?P<v>[0-9a-f]{4}):(?P<d>[0-9a-f]{4})$")

_BRIDGE_CLASSES = frozenset({0x0604, 0x0607, 0x0609})


def _show(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


# =============================================================================
# The pci.ids subset: names -> ids
# =============================================================================


@attrs.frozen
class IdLookup:
    """The ids a printed name stands for, as far as ``pci.ids`` can tell.

    Attributes:
        vendor: the vendor id, when every candidate has the same one.
        device: the device id, when every candidate has the same one.
        candidates: the (vendor, device) pairs the name fits (empty when the
            device name is not in the bundled subset).
        why: ``None`` when both ids are certain, else why not.
    """

    vendor: int | None
    device: int | None
    candidates: frozenset[tuple[int, int]] = frozenset()
    why: str | None = None


@attrs.frozen
class _IdDb:
    version: str
    vendors: Mapping[str, tuple[int, ...]]
    devices: Mapping[str, tuple[tuple[int, int], ...]]
    subclasses: Mapping[str, int]


@functools.lru_cache(maxsize=1)
def _id_db() -> _IdDb:
    raw = resources.files("iommugroups._data").joinpath("pci_ids_subset.json").read_text("utf-8")
    data = json.loads(raw)
    vendors: dict[str, tuple[int, ...]] = {}
    for vid, name in data["vendors"].items():
        vendors[name] = (*vendors.get(name, ()), int(vid, 16))
    devices = {
        shown: tuple((int(v, 16), int(d, 16)) for v, d in (pair.split(":") for pair in pairs))
        for shown, pairs in data["devices"].items()
    }
    subclasses = {name: int(code, 16) for code, name in data["subclasses"].items()}
    return _IdDb(str(data["source"]), vendors, devices, subclasses)


def _common(values: Iterable[int]) -> int | None:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _vendor_splits(db: _IdDb, shown: str) -> Iterator[tuple[str, str]]:
    """Every (vendor name, rest) split of ``shown`` at a space."""
    start = 0
    while True:
        i = shown.find(" ", start)
        if i < 0:
            return
        if shown[:i] in db.vendors:
            yield shown[:i], shown[i + 1 :]
        start = i + 1


def lookup_device_name(shown: str) -> IdLookup:
    """Map the vendor/device text ``lspci`` printed back to ids.

    ``shown`` is what ``pci_lookup_name(PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE)``
    prints: ``"Vendor Device"`` names, ``"Vendor Device 1234"`` for a device
    the database does not name, or ``"Device 1234:5678"`` for an unknown
    vendor. Names are looked up in the bundled ``pci.ids`` subset, which holds
    every device named exactly like any device it holds, so a name it knows is
    resolved exactly when it is unambiguous in the whole database.

    >>> shown = "Intel Corporation 6th-10th Gen Core Processor PCIe Controller (x16)"
    >>> r = lookup_device_name(shown)
    >>> hex(r.vendor), hex(r.device), r.why
    ('0x8086', '0x1901', None)
    >>> r = lookup_device_name("Intel Corporation 82574L Gigabit Network Connection")
    >>> hex(r.vendor), r.device, sorted(hex(d) for _v, d in r.candidates)
    ('0x8086', None, ['0x10d3', '0x10f6'])
    >>> r = lookup_device_name("Red Hat, Inc. Device 000e")
    >>> r.vendor is None, hex(r.device)
    (True, '0xe')
    """
    db = _id_db()
    m = _NO_VENDOR_RE.fullmatch(shown)
    if m:
        v, d = int(m["v"], 16), int(m["d"], 16)
        return IdLookup(v, d, frozenset({(v, d)}))
    pairs = db.devices.get(shown)
    if pairs:
        return _ambiguous(frozenset(pairs), f"the name {_show(shown)}")
    m = _UNNAMED_DEVICE_RE.fullmatch(shown)
    if m and m["vendor"] in db.vendors:
        d = int(m["d"], 16)
        return _ambiguous(
            frozenset((v, d) for v in db.vendors[m["vendor"]]),
            f"the vendor name {_show(m['vendor'])}",
        )
    vendor_ids = {v for name, _rest in _vendor_splits(db, shown) for v in db.vendors[name]}
    if vendor_ids:
        vendor = _common(vendor_ids)
        what = (
            f"vendor {vendor:04x}"
            if vendor is not None
            else "vendors " + ", ".join(f"{v:04x}" for v in sorted(vendor_ids))
        )
        return IdLookup(
            vendor,
            None,
            frozenset(),
            f"device name in {_show(shown)} not in the bundled pci.ids subset ({what}); "
            "not a device of the kernel's quirk tables by its pci.ids name",
        )
    return IdLookup(None, None, frozenset(), f"no pci.ids vendor name starts {_show(shown)}")


def _ambiguous(cands: frozenset[tuple[int, int]], what: str) -> IdLookup:
    """The lookup result for a name that fits the pairs ``cands``.

    One pair: exact. Several: the ids they share are kept; the others are
    unknown, unless every candidate has the same entries in the kernel's
    quirk tables, and some: then the lowest pair stands for them all (the
    grouping cannot depend on which one it is), and ``why`` says so.
    """
    if len(cands) == 1:
        ((v, d),) = cands
        return IdLookup(v, d, cands)
    listed = ", ".join(f"{v:04x}:{d:04x}" for v, d in sorted(cands))
    signatures = {_quirk_signature(v, d) for v, d in cands}
    if len(signatures) == 1:
        ((_vendor_wide, specific),) = signatures
        if specific:
            v, d = min(cands)
            return IdLookup(
                v,
                d,
                cands,
                f"{what} fits {listed} in pci.ids; all of them have the same quirk-table "
                f"entries ({', '.join(sorted(specific))}), so {v:04x}:{d:04x} stands for "
                "them",
            )
        note = "no quirk table lists any of them"
    else:
        note = "their quirk-table entries differ: the grouping may depend on which it is"
    return IdLookup(
        _common(v for v, _ in cands),
        _common(d for _, d in cands),
        cands,
        f"{what} fits {listed} in pci.ids ({note})",
    )


#: Device-id sets that vendor-wide quirk entries test inside their function.
_ID_SETS: tuple[tuple[str, int, tuple[tuple[int, int], ...]], ...] = (
    ("intel_pch_acs_ids", T.VENDOR_INTEL, tuple((d, d) for d in T.INTEL_PCH_ACS_IDS)),
    ("intel_spt_pch_acs", T.VENDOR_INTEL, T.INTEL_SPT_ACS_RANGES),
    ("cavium_root_ports", T.VENDOR_CAVIUM, T.CAVIUM_RP_RANGES),
    ("zhaoxin_ports", T.VENDOR_ZHAOXIN, T.ZHAOXIN_PORT_RANGES),
    ("wangxun_nics", T.VENDOR_WANGXUN, T.WANGXUN_NIC_RANGES),
)


def _id_fits(want: int | None, have: int) -> bool:
    return want is None or want == have


@functools.lru_cache(maxsize=4096)
def _quirk_signature(vendor: int, device: int) -> tuple[int | None, frozenset[str]]:
    """How the kernel's grouping quirks tell these ids apart.

    ``(vendor, names)``: the vendor when some quirk entry matches every
    device of it (``None`` otherwise), and the entries that name this device
    id, plus the id lists tested inside vendor-wide entries that hold it.
    Two devices with the same signature are treated alike by every grouping
    quirk (other facts, like the PCIe type, being equal).
    """
    names: set[str] = set()
    vendor_wide = False
    entries: list[tuple[int | None, int | None, str]] = [
        *((q.vendor, q.device, q.name) for q in DEFAULT_QUIRKS.acs_entries()),
        *((a.vendor, a.device, a.name) for a in DEFAULT_QUIRKS.dma_alias),
        *((f.vendor, f.device, f.name) for f in DEFAULT_QUIRKS.bridge_flags),
    ]
    for v, d, name in entries:
        if not _id_fits(v, vendor):
            continue
        if d is None:
            vendor_wide = True
        elif d == device:
            names.add(name)
    for label, v, spans in _ID_SETS:
        if vendor == v and any(lo <= device <= hi for lo, hi in spans):
            names.add(label)
    return (vendor if vendor_wide else None), frozenset(names)


@functools.lru_cache(maxsize=1)
def _quirk_ids() -> frozenset[tuple[int, int]]:
    """Every (vendor, device) pair the kernel's grouping quirk tables name."""
    out: set[tuple[int, int]] = set()

    def ranges(vendor: int, spans: Iterable[tuple[int, int]]) -> None:
        for lo, hi in spans:
            out.update((vendor, d) for d in range(lo, hi + 1))

    pairs: tuple[tuple[int, int], ...] = (
        *T.AMD_SB_IDS,
        *T.QCOM_RP_IDS,
        *T.EMULEX_MF_IDS,
        *T.XGENE_IDS,
        *T.DMA_FUNC0_IDS,
        *T.DMA_FUNC1_IDS,
        *T.PCIE_BRIDGE_ALIAS_IDS,
        *T.BRIDGE_XLATE_ROOT_IDS,
        *((v, d) for v, d, *_ in T.FIXED_DMA_ALIAS_TABLE),
    )
    out.update(pairs)
    for vendor, ids in (
        (T.VENDOR_SOLARFLARE, T.SOLARFLARE_MF_IDS),
        (T.VENDOR_INTEL, T.INTEL_MF_IDS),
        (T.VENDOR_CAVIUM, T.CAVIUM_MF_IDS),
        (T.VENDOR_BROADCOM, T.BROADCOM_MF_IDS),
        (T.VENDOR_BROADCOM, T.BROADCOM_RP_IDS),
        (T.VENDOR_LOONGSON, T.LOONGSON_RP_IDS),
        (T.VENDOR_AMAZON_ANNAPURNA_LABS, T.ANNAPURNA_IDS),
        (T.VENDOR_ZHAOXIN, T.ZHAOXIN_MF_IDS),
        (T.VENDOR_NXP, T.NXP_RP_IDS),
        (T.VENDOR_INTEL, T.INTEL_PCH_ACS_IDS),
        (T.VENDOR_INTEL, T.MIC_X200_IDS),
        (T.VENDOR_INTEL, T.PEX_VCA_IDS),
        (T.VENDOR_MICROSEMI, T.SWITCHTEC_MICROSEMI_IDS),
        (T.VENDOR_EFAR, T.SWITCHTEC_EFAR_IDS),
        (T.VENDOR_PLX, T.PLX_NTB_IDS),
    ):
        out.update((vendor, d) for d in ids)
    ranges(T.VENDOR_INTEL, T.INTEL_SPT_ACS_RANGES)
    ranges(T.VENDOR_CAVIUM, T.CAVIUM_RP_RANGES)
    ranges(T.VENDOR_ZHAOXIN, T.ZHAOXIN_PORT_RANGES)
    ranges(T.VENDOR_WANGXUN, T.WANGXUN_NIC_RANGES)
    # entries of the tables themselves (a guard against ids added there only)
    for q in DEFAULT_QUIRKS.acs_entries():
        if q.vendor is not None and q.device is not None:
            out.add((q.vendor, q.device))
    for a in DEFAULT_QUIRKS.dma_alias:
        if a.vendor is not None and a.device is not None:
            out.add((a.vendor, a.device))
    for f in DEFAULT_QUIRKS.bridge_flags:
        if f.vendor is not None and f.device is not None:
            out.add((f.vendor, f.device))
    return frozenset(out)


def _parse_pci_ids(
    text: str,
) -> tuple[dict[int, str], dict[tuple[int, int], str], dict[int, str], dict[int, str]]:
    """(vendors, devices, classes, subclasses) of a ``pci.ids`` file."""
    vendors: dict[int, str] = {}
    devices: dict[tuple[int, int], str] = {}
    classes: dict[int, str] = {}
    subclasses: dict[int, str] = {}
    section = ""
    vendor = cls = -1
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("C "):
            m = re.fullmatch(r"C ([0-9a-f]{2})\s+(.*)", line)
            if m:
                section, cls = "C", int(m[1], 16)
                classes[cls] = m[2]
            continue
        m = re.fullmatch(r"([0-9a-f]{4})\s+(.*)", line)
        if m:
            section, vendor = "V", int(m[1], 16)
            vendors[vendor] = m[2]
            continue
        if line.startswith("\t\t"):
            continue  # subsystems and programming interfaces
        m = re.fullmatch(r"\t([0-9a-f]{2,4})\s+(.*)", line)
        if not m:
            continue
        if section == "V" and len(m[1]) == 4:
            devices[(vendor, int(m[1], 16))] = m[2]
        elif section == "C" and len(m[1]) == 2:
            subclasses[cls << 8 | int(m[1], 16)] = m[2]
        elif len(m[1]) == 4 or len(m[1]) == 2:
            section = ""  # another list (e.g. ``X`` / ``R``): not ours
    return vendors, devices, classes, subclasses


def build_pci_ids_subset(
    pci_ids: str, texts: Iterable[str], *, source: str = "pci.ids"
) -> dict[str, Any]:
    """The data of ``iommugroups/_data/pci_ids_subset.json``.

    Args:
        pci_ids: a complete ``pci.ids`` file.
        texts: ``lspci`` texts and trees whose device names must resolve.
        source: the database's name and version, recorded in the result.

    Returns:
        ``{"source", "vendors", "subclasses", "devices"}``: every vendor
        (id -> name) and every subclass (``"0604"`` -> name), and, by the
        name ``lspci`` prints (``"Vendor Device"``), the ids of every device
        that the texts name or the kernel's quirk tables list, plus every
        other device printed under the same name.

    Regenerate the bundled file (Debian: ``apt-get install pci.ids``)::

        python -c 'import json, pathlib, sys
        from iommugroups._io.lspci_text import build_pci_ids_subset as b
        texts = [p.read_text(errors="replace") for p in sorted(pathlib.Path("tests/data")
                 .rglob("*.txt"))]
        d = b(pathlib.Path("/usr/share/misc/pci.ids").read_text(errors="replace"), texts,
              source=sys.argv[1])
        pathlib.Path("iommugroups/_data/pci_ids_subset.json").write_text(
            json.dumps(d, indent=0, sort_keys=True) + "\\n")' "pci.ids 2023.04.11 (Debian)"
    """
    vendors, devices, _classes, subclasses = _parse_pci_ids(pci_ids)
    by_shown: dict[str, list[tuple[int, int]]] = {}
    for (v, d), name in devices.items():
        if v in vendors:
            by_shown.setdefault(f"{vendors[v]} {name}", []).append((v, d))
    wanted: set[str] = set()
    for v, d in _quirk_ids():
        if (v, d) in devices and v in vendors:
            wanted.add(f"{vendors[v]} {devices[(v, d)]}")
    for text in texts:
        for shown in _names_in(text):
            if shown in by_shown:
                wanted.add(shown)
    return {
        "source": source,
        "vendors": {f"{v:04x}": n for v, n in sorted(vendors.items())},
        "subclasses": {f"{c:04x}": n for c, n in sorted(subclasses.items())},
        "devices": {
            shown: sorted(f"{v:04x}:{d:04x}" for v, d in by_shown[shown])
            for shown in sorted(wanted)
        },
    }


def _names_in(text: str) -> Iterator[str]:
    """The vendor/device names of every device header and tree leaf in ``text``."""
    for raw in text.splitlines():
        line = raw.translate(_ODD_SPACE).rstrip()
        m = _HEADER_RE.match(line)
        if m:
            _cls, sep, desc = " ".join(m["rest"].split()).partition(": ")
            if sep:
                yield _strip_suffixes(desc)[0]
            continue
        leaf = _TREE_LEAF_RE.search(line)
        if leaf:
            yield _strip_suffixes(" ".join(leaf["name"].split()))[0]


# =============================================================================
# lspci -v / -vv / -vvv text
# =============================================================================


@attrs.define
class _Line:
    """A logical line: text (wrapped continuations joined) and where it started."""

    number: int
    text: str


@attrs.define
class _Block:
    """One device block as it appears in the text."""

    path: str  # the address or -P/-PP path, as printed
    header: _Line
    details: list[_Line] = attrs.field(factory=list)
    hexrows: dict[int, bytes] = attrs.field(factory=dict)


@attrs.define
class _Facts:
    """What one or more blocks say about one device."""

    address: PciAddress
    line: int
    lines: list[int]
    class16: int | None = None
    class_why: str | None = None
    progif: int | None = None
    vendor: int | None = None
    device: int | None = None
    ids_why: str | None = None
    ids_exact: bool = False  # numeric ids (-n/-nn or a hex dump)
    subsys: tuple[int, int] | None = None
    verbose: int = 0  # 2: -vv lines seen, 1: -v "Flags:" seen
    cap_list: bool | None = None
    access_denied: bool = False
    caps: set[int] = attrs.field(factory=set)
    caps_unrecognised: bool = False
    chain_broken: bool = False
    pcie: PcieType | None = None
    pcie_why: str | None = None
    acs_seen: bool = False
    acs_cap: AcsFlags | None = None
    acs_ctl: AcsFlags | None = None
    sriov_seen: bool = False
    iov_enabled: bool | None = None
    vfs: tuple[int, int] | None = None  # (total, num)
    vf_layout: tuple[int, int, int] | None = None  # (offset, stride, device id)
    bus: tuple[int, int, int] | None = None
    group: int | None = None
    driver: str | None = None
    bad_header_type: int | None = None
    hex_header: bytes | None = None
    tail_seen: bool = False  # a line lspci prints after the capabilities


#: A line this long (or ending in a space) may have been wrapped by a mail client.
_WRAP_MIN = 60


def _logical_lines(text: str, path: str) -> list[tuple[str, _Line]]:
    """Classify lines: ``("header"|"hex"|"detail"|"junk"|"blank", line)``.

    Joins wrapped lines: inside a block, a line at column 0 that is neither a
    header nor a hex row continues the previous line if that one looks
    wrapped (it ends in a space, as format=flowed mail leaves it, or it is at
    least ``_WRAP_MIN`` characters long). Any other line at column 0 ends the
    block, like a blank line.
    """
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            path, f"input is {len(text)} characters long; refusing more than {MAX_TEXT_CHARS}"
        )
    if text.startswith("\ufeff"):
        text = text[1:]
    out: list[tuple[str, _Line]] = []
    in_block = seen_header = False
    previous = ""  # the last physical line of the current logical line
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r").translate(_ODD_SPACE)
        if not line.strip():
            out.append(("blank", _Line(number, "")))
            in_block = False
            continue
        if not line[0].isspace():
            m = _HEADER_RE.match(line)
            if m:
                out.append(("header", _Line(number, line)))
                in_block = seen_header = True
                previous = line
                continue
            if in_block and _HEXROW_START_RE.match(line):
                out.append(("hex", _Line(number, line)))
                previous = ""
                continue
            kind, last = out[-1] if out else ("", _Line(0, ""))
            wrapped = previous[-1:].isspace() or len(previous) >= _WRAP_MIN
            if in_block and kind in ("header", "detail") and wrapped:
                last.text = last.text + ("" if previous[-1:].isspace() else " ") + line
                previous = line
                continue
            out.append(("junk", _Line(number, line)))
            in_block = False
            continue
        if in_block:
            out.append(("detail", _Line(number, line)))
            previous = line
            continue
        stripped = " ".join(line.split())
        # Only an error once a device has been seen: before the first header
        # anything may be mail prose or another command's output.
        if seen_header and _VERBOSE_KEY_RE.match(stripped):
            raise InputError(
                path,
                f"lspci detail line outside a device block (a blank line inside a "
                f"block?): {_show(stripped)}",
                line=number,
            )
        out.append(("junk", _Line(number, line)))
    return out


def _blocks(text: str, path: str) -> list[_Block]:
    blocks: list[_Block] = []
    block: _Block | None = None
    for kind, ln in _logical_lines(text, path):
        if kind == "header":
            m = _HEADER_RE.match(ln.text)
            assert m is not None
            if len(blocks) >= MAX_DEVICES:
                raise InputError(
                    path, f"more than {MAX_DEVICES} devices; refusing the input", ln.number
                )
            block = _Block(m["addr"].lower(), ln)
            blocks.append(block)
        elif kind == "detail":
            assert block is not None
            block.details.append(ln)
        elif kind == "hex":
            assert block is not None
            m = _HEXROW_RE.fullmatch(ln.text)
            if m is None:
                raise InputError(
                    path,
                    f"malformed hex dump row (expected an offset and 16 bytes): "
                    f"{_show(ln.text.strip())}",
                    ln.number,
                )
            off = int(m["off"], 16)
            if off % 16 or off >= 4096:
                raise InputError(path, f"hex dump offset {off:#x} is not a row offset", ln.number)
            data = bytes.fromhex(m["bytes"])
            if block.hexrows.get(off, data) != data:
                raise InputError(
                    path, f"hex dump row {off:#05x} given twice, differently", ln.number
                )
            block.hexrows[off] = data
        else:
            if kind == "blank":
                block = None
    if not blocks:
        raise InputError(
            path,
            "no lspci device found (expected lines like '00:1c.0 PCI bridge: Intel "
            "Corporation ...' at the start of a line)",
        )
    return blocks


def _strip_suffixes(desc: str) -> tuple[str, int | None]:
    """``(desc without " (rev xx)" and " (prog-if xx [...])", prog-if)``."""
    progif = None
    m = _PROGIF_SUFFIX_RE.search(desc)
    if m:
        progif = int(m["pi"], 16)
        desc = desc[: m.start()]
    m = _REV_SUFFIX_RE.search(desc)
    if m:
        desc = desc[: m.start()]
    return desc, progif


def _parse_header(facts: _Facts, rest: str, path: str, line: int) -> None:
    rest = " ".join(rest.split())
    cls, sep, desc = rest.partition(": ")
    if not sep:
        raise InputError(
            path, f"device header without 'class: vendor device': {_show(rest)}", line
        )
    # class
    m = _NUM_CLASS_RE.fullmatch(cls) or _NAMED_CLASS_RE.fullmatch(cls)
    if m:
        facts.class16 = int(m["cls"], 16)
    else:
        code = _id_db().subclasses.get(cls)
        if code is None:
            facts.class_why = f"class name {_show(cls)} is not in pci.ids"
        else:
            facts.class16 = code
    desc, progif = _strip_suffixes(desc)
    facts.progif = progif
    # ids
    m = _NUM_IDS_RE.fullmatch(desc) or _MIXED_IDS_RE.fullmatch(desc)
    if m:
        facts.vendor, facts.device = int(m["v"], 16), int(m["d"], 16)
        facts.ids_exact = True
        return
    if desc.endswith("..."):
        facts.ids_why = f"name {_show(desc)} was truncated by lspci"
        return
    found = lookup_device_name(desc)
    facts.vendor, facts.device, facts.ids_why = found.vendor, found.device, found.why


def _parse_acs_bits(bits: str, path: str, line: int, reg: str) -> AcsFlags:
    flags = AcsFlags.NONE
    seen: set[str] = set()
    for tok in bits.split():
        name, sign = tok[:-1], tok[-1:]
        if name not in _ACS_BITS or sign not in "+-" or name in seen:
            raise InputError(path, f"{reg}: unexpected {_show(tok)} in {_show(bits)}", line)
        seen.add(name)
        if sign == "+":
            flags |= _ACS_BITS[name]
    missing = [n for n in _ACS_BITS if n not in seen]
    if missing:
        raise InputError(
            path, f"{reg} line lacks {', '.join(missing)} (cut or wrapped?): {_show(bits)}", line
        )
    return flags


def _set(facts: _Facts, field: str, value: object, what: str, path: str, line: int) -> None:
    old = getattr(facts, field)
    if old is not None and old != value:
        raise InputError(
            path, f"device {facts.address}: two different {what} ({old!r} and {value!r})", line
        )
    setattr(facts, field, value)


def _parse_details(facts: _Facts, block: _Block, path: str) -> None:
    current_cap = ""  # what the last "Capabilities:" line was
    for ln in block.details:
        s = " ".join(ln.text.split())
        n = ln.number
        if s.startswith("Capabilities:"):
            if s == _CAP_DENIED:
                facts.access_denied = True
                current_cap = ""
                continue
            m = _CAP_RE.fullmatch(s)
            if m is None:
                raise InputError(path, f"malformed capability line: {_show(s)}", n)
            off, what = int(m["off"], 16), m["what"]
            current_cap = what
            if what.startswith("<chain"):
                facts.chain_broken = True
                continue
            if off < 0x100:
                for prefix, cap_id in _STD_CAPS:
                    if what.startswith(prefix):
                        facts.caps.add(cap_id)
                        break
                else:
                    um = _STD_CAP_UNKNOWN_RE.match(what)
                    if um:
                        facts.caps.add(int(um["id"], 16))
                    else:
                        facts.caps_unrecognised = True
                if what.startswith("Express"):
                    em = _EXPRESS_RE.fullmatch(what)
                    kind = _PCIE_TYPES.get(em["type"]) if em else None
                    if kind is None:
                        if em and em["type"].startswith("Unknown type"):
                            facts.pcie_why = f"reserved PCIe device/port type: {_show(what)}"
                            continue
                        raise InputError(path, f"unknown PCIe port type in {_show(s)}", n)
                    _set(facts, "pcie", kind, "PCIe port types", path, n)
            elif what.startswith("Access Control Services"):
                facts.acs_seen = True
            elif what.startswith("Single Root I/O Virtualization"):
                facts.sriov_seen = True
            continue
        if s.startswith(("ACSCap", "ACSCtl")):
            m = _ACS_RE.fullmatch(s)
            if m is None or not current_cap.startswith("Access Control Services"):
                raise InputError(
                    path, f"{s[:6]} line outside an Access Control Services capability", n
                )
            reg = m["reg"]
            flags = _parse_acs_bits(m["bits"], path, n, reg)
            _set(facts, "acs_cap" if reg == "ACSCap" else "acs_ctl", flags, reg, path, n)
            continue
        if current_cap.startswith("Single Root I/O Virtualization"):
            if s.startswith("IOVCtl:"):
                m = _IOVCTL_RE.match(s)
                if m is None:
                    raise InputError(path, f"malformed IOVCtl line: {_show(s)}", n)
                _set(facts, "iov_enabled", m["en"] == "+", "IOVCtl enables", path, n)
                continue
            if s.startswith(_VFS_PREFIX):
                m = _VFS_RE.fullmatch(s)
                if m is None:
                    raise InputError(path, f"malformed SR-IOV line: {_show(s)}", n)
                _set(facts, "vfs", (int(m["total"]), int(m["num"])), "VF counts", path, n)
                continue
            if s.startswith(_VFOFF_PREFIX):
                m = _VFOFF_RE.fullmatch(s)
                if m is None:
                    raise InputError(path, f"malformed SR-IOV line: {_show(s)}", n)
                layout = (int(m["offset"]), int(m["stride"]), int(m["did"], 16))
                _set(facts, "vf_layout", layout, "VF layouts", path, n)
                continue
        if s.startswith(_BUS_PREFIX):
            m = _BUS_RE.fullmatch(s)
            if m is None:
                raise InputError(path, f"malformed bridge bus line: {_show(s)}", n)
            bus = (int(m["pri"], 16), int(m["sec"], 16), int(m["sub"], 16))
            _set(facts, "bus", bus, "bridge bus numbers", path, n)
            continue
        if s.startswith(_GROUP_PREFIX):
            m = _GROUP_RE.fullmatch(s)
            if m is None or len(m["group"]) > 9:
                raise InputError(path, f"malformed IOMMU group line: {_show(s)}", n)
            _set(facts, "group", int(m["group"]), "IOMMU groups", path, n)
            facts.verbose = max(facts.verbose, 2)
            continue
        if s.startswith(_DRIVER_PREFIX):
            m = _DRIVER_RE.fullmatch(s)
            if m is None:
                raise InputError(path, f"malformed driver line: {_show(s)}", n)
            _set(facts, "driver", m["driver"], "drivers", path, n)
            facts.tail_seen = True
            continue
        if s.startswith("Kernel modules:"):
            facts.tail_seen = True
            continue
        if _CONTROL_RE.match(s):
            facts.verbose = max(facts.verbose, 2)
            continue
        m = _STATUS_RE.match(s)
        if m:
            facts.verbose = max(facts.verbose, 2)
            _set(facts, "cap_list", m["cap"] == "+", "capability-list bits", path, n)
            continue
        m = _FLAGS_RE.match(s)
        if m and not current_cap:
            facts.verbose = max(facts.verbose, 1)
            gm = _FLAGS_GROUP_RE.search(m["flags"])
            if gm:
                if not gm["group"].isdigit() or len(gm["group"]) > 9:
                    raise InputError(path, f"malformed IOMMU group in {_show(s)}", n)
                _set(facts, "group", int(gm["group"]), "IOMMU groups", path, n)
            elif "IOMMU group" in m["flags"]:
                raise InputError(path, f"malformed IOMMU group in {_show(s)}", n)
            continue
        m = _SUBSYS_RE.match(s)
        if m and not current_cap:
            ids = _NUM_IDS_RE.fullmatch(m["name"]) or _MIXED_IDS_RE.fullmatch(m["name"])
            if ids:
                sub = (int(ids["v"], 16), int(ids["d"], 16))
                _set(facts, "subsys", sub, "subsystem ids", path, n)
            continue
        m = _BAD_HTYPE_RE.fullmatch(s)
        if m:
            facts.bad_header_type = int(m["ht"], 16)
            continue
        if s == "<access denied to the rest>":
            facts.access_denied = True
            continue


def _apply_hex(facts: _Facts, block: _Block, path: str) -> None:
    row = block.hexrows.get(0)
    if row is None:
        return
    vendor = row[0] | row[1] << 8
    device = row[2] | row[3] << 8
    class16 = row[10] | row[11] << 8
    line = block.header.number
    if facts.ids_exact and (facts.vendor, facts.device) != (vendor, device):
        raise InputError(
            path,
            f"device {facts.address}: the hex dump reads ids {vendor:04x}:{device:04x}, the "
            f"text says {facts.vendor:04x}:{facts.device:04x}",
            line,
        )
    if facts.class16 is not None and facts.class16 != class16:
        raise InputError(
            path,
            f"device {facts.address}: the hex dump reads class {class16:04x}, the text says "
            f"{facts.class16:04x}",
            line,
        )
    facts.vendor, facts.device, facts.ids_exact, facts.ids_why = vendor, device, True, None
    facts.class16, facts.class_why = class16, None
    facts.progif = row[9]
    _set(facts, "hex_header", bytes(row), "hex dumps", path, line)


#: Facts two blocks of one device must agree on, and how errors name them.
_MERGED_FIELDS: tuple[tuple[str, str], ...] = (
    ("class16", "classes"),
    ("bus", "bridge bus numbers"),
    ("group", "IOMMU groups"),
    ("driver", "drivers"),
    ("pcie", "PCIe port types"),
    ("acs_cap", "ACSCap values"),
    ("acs_ctl", "ACSCtl values"),
    ("subsys", "subsystem ids"),
    ("iov_enabled", "IOVCtl enables"),
    ("vfs", "VF counts"),
    ("vf_layout", "VF layouts"),
    ("cap_list", "capability-list bits"),
    ("hex_header", "hex dumps"),
)


def _merge(into: _Facts, other: _Facts, path: str, line: int) -> None:
    """Fold a second block of the same device into the first; facts must agree."""
    for field, what in _MERGED_FIELDS:
        value = getattr(other, field)
        if value is not None:
            _set(into, field, value, what, path, line)
    if other.ids_exact:
        if into.ids_exact and (into.vendor, into.device) != (other.vendor, other.device):
            raise InputError(
                path,
                f"device {into.address}: two different ids ({into.vendor:04x}:"
                f"{into.device:04x} and {other.vendor:04x}:{other.device:04x})",
                line,
            )
        into.vendor, into.device, into.ids_exact, into.ids_why = (
            other.vendor,
            other.device,
            True,
            None,
        )
    elif not into.ids_exact and into.ids_why is not None and other.ids_why is None:
        into.vendor, into.device, into.ids_why = other.vendor, other.device, None
    if into.class_why is not None and other.class16 is not None:
        into.class_why = None
    if other.progif is not None:
        into.progif = other.progif
    into.verbose = max(into.verbose, other.verbose)
    into.access_denied |= other.access_denied
    into.caps |= other.caps
    into.caps_unrecognised |= other.caps_unrecognised
    into.chain_broken |= other.chain_broken
    into.acs_seen |= other.acs_seen
    into.sriov_seen |= other.sriov_seen
    into.tail_seen |= other.tail_seen
    if other.pcie_why and not into.pcie_why:
        into.pcie_why = other.pcie_why
    if other.bad_header_type is not None:
        into.bad_header_type = other.bad_header_type
    into.lines.extend(other.lines)


def _resolve_addresses(blocks: list[_Block], facts_of: list[_Facts | None], path: str) -> None:
    """Give every block its address; ``-P`` paths need their parent's secondary bus."""
    by_path: dict[str, int] = {}
    for i, b in enumerate(blocks):
        by_path.setdefault(b.path, i)
    resolving: set[int] = set()

    def resolve(i: int) -> PciAddress:
        b = blocks[i]
        done = facts_of[i]
        if done is not None:
            return done.address
        line = b.header.number
        parts = b.path.split("/")
        try:
            if len(parts) == 1 or ":" in parts[-1]:
                last = parts[-1]
                if len(parts) > 1:
                    first = PciAddress.parse(parts[0])
                    return PciAddress.parse(f"{first.domain:04x}:{last}")
                return PciAddress.parse(last)
        except InvalidAddress as exc:
            raise InputError(path, str(exc), line) from None
        parent_path = "/".join(parts[:-1])
        j = by_path.get(parent_path)
        if j is None or j == i or j in resolving:
            raise InputError(
                path,
                f"cannot place {b.path}: its bridge {parent_path} is not in the input",
                line,
            )
        resolving.add(i)
        parent = resolve(j)
        resolving.discard(i)
        pb = _bridge_bus(blocks[j], path)
        if pb is None:
            raise InputError(
                path,
                f"cannot place {b.path}: bridge {parent_path} shows no 'Bus:' line",
                line,
            )
        try:
            return PciAddress.parse(f"{parent.domain:04x}:{pb:02x}:{parts[-1]}")
        except InvalidAddress as exc:
            raise InputError(path, str(exc), line) from None

    for i in range(len(blocks)):
        address = resolve(i)
        facts_of[i] = _Facts(address, blocks[i].header.number, [blocks[i].header.number])


def _bridge_bus(block: _Block, path: str) -> int | None:
    for ln in block.details:
        s = " ".join(ln.text.split())
        if s.startswith(_BUS_PREFIX):
            m = _BUS_RE.fullmatch(s)
            if m is None:
                raise InputError(path, f"malformed bridge bus line: {_show(s)}", ln.number)
            return int(m["sec"], 16)
    return None


def read_lspci_text(text: str, path: str = "<string>") -> Reading:
    """Read ``lspci -v``/``-vv``/``-vvv`` (any ``-n``/``-nn``/``-D``/``-P``) text.

    Args:
        text: the text (pasted, wrapped, with junk around it: see the module
            docstring for what is tolerated).
        path: where it came from, for error messages; a real path also names
            the topology (its stem).

    Returns:
        A :class:`~iommugroups._kernel.reading.Reading` with the topology, the
        kernel's groups when the text shows them (``observed``), and the
        facts it could not establish (``unknowns``).

    Raises:
        InputError: malformed input (see the module docstring).

    >>> text = '''
    ... 00:1c.0 PCI bridge [0604]: Intel Corporation Device [8086:a110] (rev f1)
    ... \\tControl: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping-
    ... \\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort-
    ... \\tIOMMU group: 7
    ... \\tBus: primary=00, secondary=02, subordinate=02, sec-latency=0
    ... \\tCapabilities: [40] Express (v2) Root Port (Slot+), MSI 00
    ... \\tCapabilities: [140 v1] Access Control Services
    ... \\tACSCap: SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-
    ... \\tACSCtl: SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-
    ...
    ... 02:00.0 Ethernet controller [0200]: Intel Corporation I211 [8086:1539] (rev 03)
    ... \\tControl: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping-
    ... \\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort-
    ... \\tIOMMU group: 8
    ... \\tCapabilities: [70] Express (v2) Endpoint, MSI 00
    ... '''
    >>> r = read_lspci_text(text)
    >>> rp = r.topology.get("00:1c.0")
    >>> rp.pcie_type.name, rp.acs.ctrl.names(), rp.secondary_bus
    ('ROOT_PORT', 'SV|RR|CR|UF', 2)
    >>> dict(r.observed.groups)
    {7: ('0000:00:1c.0',), 8: ('0000:02:00.0',)}
    """
    blocks = _blocks(text, path)
    facts_of: list[_Facts | None] = [None] * len(blocks)
    _resolve_addresses(blocks, facts_of, path)
    merged: dict[PciAddress, _Facts] = {}
    for block, facts in zip(blocks, facts_of, strict=True):
        assert facts is not None
        header = _HEADER_RE.match(block.header.text)
        assert header is not None
        _parse_header(facts, header["rest"], path, block.header.number)
        _parse_details(facts, block, path)
        _apply_hex(facts, block, path)
        first = merged.get(facts.address)
        if first is None:
            merged[facts.address] = facts
        else:
            _merge(first, facts, path, block.header.number)
    return _build(list(merged.values()), text, path)


def _build(all_facts: list[_Facts], text: str, path: str) -> Reading:
    unknowns: list[Unknown] = []
    facts_list: list[_Facts] = []
    for f in all_facts:
        if f.bad_header_type is not None:
            unknowns.append(
                Unknown(
                    str(f.address),
                    "config",
                    f"lspci: unknown header type {f.bad_header_type:02x} (line {f.line}); the "
                    "kernel ignores such a device, so it is left out",
                )
            )
            continue
        facts_list.append(f)
    by_addr = {f.address: f for f in facts_list}

    # --- SR-IOV: which functions are VFs of which PF ------------------------
    vf_of: dict[PciAddress, tuple[_Facts, int]] = {}
    budget = _VF_BUDGET
    for pf in facts_list:
        if not pf.sriov_seen:
            continue
        if pf.vfs is None or pf.vf_layout is None or pf.iov_enabled is None:
            unknowns.append(
                Unknown(
                    str(pf.address),
                    "sriov",
                    f"SR-IOV capability shown without its VF layout (line {pf.line}): "
                    "functions of this device's VFs cannot be recognised",
                )
            )
            continue
        if not pf.iov_enabled:
            continue
        total, num = pf.vfs
        offset, stride, _did = pf.vf_layout
        num = min(num, total)
        if num == 0 or offset == 0 or (stride == 0 and num > 1):
            continue
        base = pf.address.rid + offset
        for i in range(num):
            budget -= 1
            if budget < 0:
                raise InputError(path, "SR-IOV capabilities place too many VFs", pf.line)
            rid = base + i * stride
            if rid > 0xFFFF:
                break
            vf_addr = PciAddress.from_devfn(pf.address.domain, rid >> 8, rid & 0xFF)
            if vf_addr in by_addr and vf_addr != pf.address:
                other = vf_of.get(vf_addr)
                if other is not None and other[0] is not pf:
                    raise InputError(
                        path,
                        f"{vf_addr} is a VF of both {other[0].address} and {pf.address}",
                        by_addr[vf_addr].line,
                    )
                vf_of[vf_addr] = (pf, i)

    # --- slots, for the multifunction bit ------------------------------------
    slots: dict[tuple[int, int, int], int] = {}
    for f in facts_list:
        if f.address not in vf_of:
            key = (f.address.domain, f.address.bus, f.address.device)
            slots[key] = slots.get(key, 0) + 1

    any_group = any(f.group is not None for f in facts_list)
    functions: list[PciFunction] = []
    lines: dict[PciAddress, int] = {}
    for f in facts_list:
        name = str(f.address)
        lines[f.address] = f.line
        unknown: set[str] = set()

        def note(fact: str, why: str, name: str = name, unknown: set[str] = unknown) -> None:
            unknown.add(fact)
            unknowns.append(Unknown(name, fact, why))

        vendor, device = f.vendor, f.device
        vf = vf_of.get(f.address)
        physfn = None
        if vf is not None:
            pf, _index = vf
            assert pf.vf_layout is not None
            vf_device = pf.vf_layout[2]
            if f.ids_exact and vendor != 0xFFFF and (vendor, device) != (pf.vendor, vf_device):
                raise InputError(
                    path,
                    f"{f.address} sits at a VF position of {pf.address} but its ids "
                    f"{vendor:04x}:{device:04x} are not the PF's vendor and VF Device ID",
                    f.line,
                )
            physfn = pf.address
            vendor, device = pf.vendor, vf_device
            if pf.ids_why is not None:
                note("ids", f"its PF's ids are unknown: {pf.ids_why}")
        elif f.ids_why is not None:
            note("ids", f.ids_why)
        elif vendor == 0xFFFF:
            note("ids", "vendor id reads ffff and no PF's SR-IOV capability places a VF here")

        class16 = f.class16
        if class16 is None:
            note("class", f.class_why or "class not shown")
        class_code = ((class16 or 0) << 8) | (f.progif or 0)

        # header type, bus numbers, multifunction
        hx = f.hex_header
        secondary = subordinate = None
        if hx is not None:
            header_type = hx[14] & 0x7F
            multifunction = bool(hx[14] & 0x80)
            if header_type not in (HEADER_NORMAL, HEADER_BRIDGE, HEADER_CARDBUS):
                unknowns.append(
                    Unknown(name, "config", f"header type {header_type:#04x}; left out")
                )
                continue
        else:
            slot_count = slots.get((f.address.domain, f.address.bus, f.address.device), 0)
            multifunction = physfn is None and (f.address.function != 0 or slot_count > 1)
            if f.bus is not None:
                header_type = HEADER_CARDBUS if class16 == 0x0607 else HEADER_BRIDGE
            else:
                header_type = HEADER_NORMAL
        if physfn is not None:
            multifunction = False
        if f.bus is not None:
            _pri, sec, sub = f.bus
            if sec == 0 or sec <= f.address.bus:
                note(
                    "bus-numbers",
                    f"bridge bus numbers secondary={sec:02x}, subordinate={sub:02x} "
                    "(not configured)",
                )
            else:
                secondary, subordinate = sec, sub
        elif f.verbose == 0 and class16 in _BRIDGE_CLASSES:
            note("bus-numbers", f"a bridge (class {class16:04x}) whose 'Bus:' line is not shown")
            header_type = HEADER_BRIDGE

        # capabilities
        pcie = f.pcie
        acs: Acs | None = None
        sriov: SriovCapability | None = None
        if f.access_denied:
            why = "capabilities not readable ('<access denied>': lspci not run as root)"
            if pcie is None:
                note("pcie", why)
            note("acs", why)
            unknown.add("sriov")
        elif f.verbose == 0 and not f.caps:
            why = "no configuration lines shown for this device"
            note("config", why)
            unknown.update(("pcie", "acs", "sriov"))
        else:
            if f.pcie_why is not None:
                note("pcie", f.pcie_why)
            elif f.chain_broken and pcie is None:
                note("pcie", "capability chain broken before a PCIe capability")
            elif f.cap_list and not f.caps and not f.tail_seen:
                note(
                    "pcie",
                    "'Status: Cap+' but no capability line and no 'Kernel driver' line "
                    "after them: the block may be cut",
                )
            if f.acs_seen:
                if f.acs_cap is not None and f.acs_ctl is not None:
                    acs = Acs(f.acs_cap, f.acs_ctl)
                else:
                    note(
                        "acs",
                        "ACS capability listed without its ACSCap/ACSCtl lines"
                        + (" (lspci -v)" if f.verbose < 2 else ""),
                    )
            elif f.acs_cap is not None or f.acs_ctl is not None:
                raise InputError(path, "ACS bits without an ACS capability", f.line)
            elif f.chain_broken or (f.cap_list and not f.caps and not f.tail_seen):
                note("acs", "capability list not (fully) shown")
            if f.sriov_seen and f.vfs is not None and f.vf_layout is not None:
                total, num = f.vfs
                offset, stride, did = f.vf_layout
                if total and offset and (stride or num <= 1) and num <= 0xFFFF:
                    try:
                        sriov = SriovCapability(
                            total_vfs=total,
                            num_vfs=min(num, total) if f.iov_enabled else 0,
                            offset=offset,
                            stride=stride,
                            vf_device=did,
                        )
                    except ValueError as exc:  # pragma: no cover - attrs has no validators
                        raise InputError(path, str(exc), f.line) from None
            elif f.sriov_seen:
                unknown.add("sriov")
        if f.caps_unrecognised:
            unknown.add("capabilities")
        if physfn is not None:
            sriov = None
        subsys = f.subsys or (0, 0)
        if f.subsys is None:
            unknown.add("subsystem")
            if any(vendor == v and device == d for v, d, *_rest in T.FIXED_DMA_ALIAS_TABLE):
                note("subsystem", "subsystem ids decide a DMA-alias quirk for this device")
        if any_group and f.group is None:
            unknowns.append(Unknown(name, "group", "no IOMMU group shown for this device"))
        try:
            functions.append(
                PciFunction(
                    f.address,
                    vendor=0xFFFF if vendor is None else vendor,
                    device=0xFFFF if device is None else device,
                    class_code=class_code,
                    header_type=header_type,
                    multifunction=multifunction,
                    pcie_type=pcie,
                    acs=acs,
                    physfn=physfn,
                    sriov=sriov,
                    driver=f.driver,
                    secondary_bus=secondary,
                    subordinate_bus=subordinate,
                    subsystem_vendor=subsys[0],
                    subsystem_device=subsys[1],
                    unknown=unknown,
                    capabilities=f.caps,
                )
            )
        except (ValueError, TypeError) as exc:
            raise InputError(path, f"device {f.address}: {exc}", f.line) from None

    topology = _topology(functions, lines, path)
    observed = None
    if any_group:
        groups: dict[int, list[str]] = {}
        for f in facts_list:
            if f.group is not None and f.address in topology:
                groups.setdefault(f.group, []).append(str(f.address))
        source = "lspci-vv" if any(f.verbose >= 2 for f in facts_list) else "lspci-v"
        observed = Grouping(
            groups={g: tuple(sorted(m)) for g, m in sorted(groups.items())}, source=source
        )
    level = max((f.verbose for f in facts_list), default=0)
    return Reading(
        topology=topology,
        observed=observed,
        **_unknowns(unknowns),
        source=("lspci", "lspci-v", "lspci-vv")[level],
        path=path,
    )


def _unknowns(unknowns: list[Unknown]) -> dict[str, Any]:
    """``Reading(unknowns=...)`` as keyword arguments.

    (Passed through a ``dict[str, Any]`` because mypy's attrs plugin cannot
    type the generic ``converter=tuple`` of that field.)
    """
    return {"unknowns": tuple(unknowns)}


def _topology(
    functions: list[PciFunction], lines: Mapping[PciAddress, int], path: str
) -> Topology:
    name = "" if path.startswith("<") else PurePath(path).stem
    return topology_at_lines(functions, lines, path, name)


def looks_like_lspci_text(text: str) -> bool:
    """Does ``text`` hold ``lspci`` device blocks (not just a hex dump)?

    True when a device header (``00:1c.0 PCI bridge: ...``) appears at the
    start of a line within the first 400 lines and its block is not made of
    hex rows only (that is an ``lspci -x`` dump: see
    :func:`~iommugroups._io.lspci_hex.looks_like_lspci_hex`, which should be
    tried first, as it gives the whole configuration space). Text before the
    first header is allowed.

    >>> looks_like_lspci_text("00:1c.0 PCI bridge: Intel Corporation Device a110\\n\\tBus: pri")
    True
    >>> looks_like_lspci_text("0000:00:1c.0 0604: 8086:a110\\n000: " + "00 " * 16)
    False
    """
    header_seen = False
    hexrows = verbose = 0
    for count, raw in enumerate(text.lstrip("\ufeff").split("\n", 400)):
        if count >= 400:
            break
        line = raw.rstrip("\r").translate(_ODD_SPACE)
        if not header_seen:
            m = _HEADER_RE.match(line)
            if m and ": " in m["rest"]:
                header_seen = True
            continue
        if not line.strip():
            break
        if _HEADER_RE.match(line):
            if hexrows:
                break
            verbose += 1
            continue
        if _HEXROW_RE.fullmatch(line):
            hexrows += 1
        elif line[0].isspace():
            verbose += 1
    return header_seen and (verbose > 0 or hexrows == 0)


# =============================================================================
# lspci -t trees
# =============================================================================

#: The start of a tree: ``-[0000:00]-``, ``-+-[0000:00]-`` or a filtered
#: ``0000:00:1c.0-[02]--`` line.
_TREE_ROOT_RE = re.compile(
    rf"(?:-\+?-?\[[{_HEX}]{{4,8}}:[{_HEX}]{{2}}\]-|[{_HEX}]{{4,8}}:[{_HEX}]{{2}}:[{_HEX}]{{2}}\.[0-7]-\[)"
)
_TREE_DEV_RE = re.compile(rf"(?P<dev>[{_HEX}]{{2}})\.(?P<fn>[0-7])")
_TREE_BUSRANGE_RE = re.compile(rf"-\[(?P<sec>[{_HEX}]{{2}})(?:-(?P<sub>[{_HEX}]{{2}}))?\]-")
_TREE_ROOTBUS_RE = re.compile(rf"\[(?P<dom>[{_HEX}]{{4,8}}):(?P<bus>[{_HEX}]{{2}})\]-")
#: A named leaf of a tree (``-tv``): ``-00.0  Vendor Device``.
_TREE_LEAF_RE = re.compile(rf"-[{_HEX}]{{2}}\.[0-7]  (?P<name>\S.*)$")
_TREE_BASES_RE = re.compile(
    r"(?:Region \d+: |\[virtual\] |\[enhanced\] )?(?:Memory at|I/O ports at)\b"
)


@attrs.define
class _TreeDev:
    address: PciAddress
    line: int
    name: str | None = None
    bus_range: tuple[int, int] | None = None


class _TreeParser:
    """Parses the grid ``ls-tree.c`` draws (see its ``show_tree_*`` functions)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.devices: dict[PciAddress, _TreeDev] = {}
        # column of a "+-"/"\-" branch list -> what it lists
        self.columns: dict[int, tuple[str, int, int]] = {}
        self.line = 0

    def fail(self, problem: str) -> InputError:
        return InputError(self.path, problem, self.line)

    def first_line(self, text: str, shift: int = 0) -> None:
        self.columns = {}
        if shift:
            self.host(" " * shift + text, shift)
            return
        m = re.match(rf"(?P<dom>[{_HEX}]{{4,8}}):(?P<bus>[{_HEX}]{{2}}):", text)
        if m:  # a filtered tree (lspci -t -s ...): starts at a bridge
            self.device(text, m.end(), int(m["dom"], 16), int(m["bus"], 16))
            return
        self.host(text, 0)

    def continuation(self, text: str) -> None:
        col = 0
        while col < len(text) and text[col] in " |":
            col += 1
        rest = text[col:]
        if not rest:
            return
        if _TREE_BASES_RE.match(rest):
            return  # lspci -tvv: a device's resources
        if rest[:2] not in ("+-", "\\-"):
            raise self.fail(f"not an lspci tree line: {_show(text.strip())}")
        where = self.columns.get(col)
        if where is None:
            raise self.fail(f"tree branch at column {col} continues no bus: {_show(text)}")
        kind, dom, bus = where
        if rest[:2] == "\\-":
            del self.columns[col]
        if kind == "host":
            self.root_bus(text, col + 2)
        else:
            self.device(text, col + 2, dom, bus)

    def host(self, text: str, pos: int) -> None:
        # show_tree_bridge(host): "-" then "[dddd:bb]-" or "+-[dddd:bb]-" ...
        if text[pos : pos + 1] != "-":
            raise self.fail(f"not an lspci tree: {_show(text)}")
        pos += 1
        if text[pos : pos + 2] in ("+-", "\\-"):
            if text[pos] == "+":
                self.columns[pos] = ("host", 0, 0)
            self.root_bus(text, pos + 2)
        else:
            self.root_bus(text, pos)

    def root_bus(self, text: str, pos: int) -> None:
        m = _TREE_ROOTBUS_RE.match(text, pos)
        if m is None:
            raise self.fail(f"expected a root bus '[dddd:bb]' in {_show(text)}")
        self.bus(text, m.end(), int(m["dom"], 16), int(m["bus"], 16))

    def bus(self, text: str, pos: int, dom: int, bus: int) -> None:
        # show_tree_bus: nothing (empty), "--dev", or "+-dev" / "\-dev"
        two = text[pos : pos + 2]
        if pos >= len(text) or not text[pos:].strip():
            return
        if two == "--":
            self.device(text, pos + 2, dom, bus)
        elif two in ("+-", "\\-"):
            if two == "+-":
                self.columns[pos] = ("bus", dom, bus)
            self.device(text, pos + 2, dom, bus)
        else:
            raise self.fail(f"unexpected {_show(text[pos:])} in the tree")

    def device(self, text: str, pos: int, dom: int, bus: int) -> None:
        m = _TREE_DEV_RE.match(text, pos)
        if m is None:
            raise self.fail(f"expected a device 'dd.f' at {_show(text[pos:])}")
        try:
            address = PciAddress(dom, bus, int(m["dev"], 16), int(m["fn"]))
        except InvalidAddress as exc:
            raise self.fail(str(exc)) from None
        if address in self.devices:
            raise self.fail(f"device {address} appears twice in the tree")
        if len(self.devices) >= MAX_DEVICES:
            raise self.fail(f"more than {MAX_DEVICES} devices; refusing the input")
        dev = _TreeDev(address, self.line)
        self.devices[address] = dev
        pos = m.end()
        r = _TREE_BUSRANGE_RE.match(text, pos)
        if r:
            sec = int(r["sec"], 16)
            sub = int(r["sub"], 16) if r["sub"] else sec
            dev.bus_range = (sec, sub)
            # show_tree_bridge: "-" then one bus (its number is the secondary)
            # or several "+-[dddd:bb]-" buses
            pos = r.end()
            if text[pos : pos + 1] != "-" and pos < len(text):
                raise self.fail(f"unexpected {_show(text[pos:])} after a bridge")
            pos += 1
            if text[pos : pos + 3] in ("+-[", "\\-["):
                if text[pos] == "+":
                    self.columns[pos] = ("host", dom, 0)
                self.root_bus(text, pos + 2)
            else:
                self.bus(text, pos, dom, sec)
            return
        rest = text[pos:]
        if rest.startswith("  "):
            dev.name = " ".join(rest.split())
        elif rest.strip():
            raise self.fail(f"unexpected {_show(rest)} after device {address}")


def read_lspci_tree(text: str, path: str = "<string>") -> Reading:
    """Read an ``lspci -t`` / ``-tv`` / ``-tvv`` / ``-tvnn`` tree: topology only.

    Text around the tree (mail prose, other commands' output) is skipped; a
    tree line that does not parse is an :class:`InputError`. Every function's
    PCIe type, ACS capability and class are unknown (a tree does not show
    them), and so are the ids of devices without a name (bridges never have
    one in a tree) or with an ambiguous one.

    >>> r = read_lspci_tree('''-[0000:00]-+-00.0  Intel Corporation Device 3e34
    ...            +-1c.0-[02-03]----00.0-[03]----00.0
    ...            \\\\-1f.0''')
    >>> [str(f) for f in r.topology.enumeration_order()]
    ['0000:00:00.0', '0000:00:1c.0', '0000:00:1f.0', '0000:02:00.0', '0000:03:00.0']
    >>> r.topology.get("00:1c.0").secondary_bus, sorted(r.topology.get("00:1c.0").unknown)
    (2, ['acs', 'class', 'ids', 'pcie', 'sriov', 'subsystem'])
    """
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            path, f"input is {len(text)} characters long; refusing more than {MAX_TEXT_CHARS}"
        )
    devices: dict[PciAddress, _TreeDev] = {}
    for tree in _tree_blocks(text):
        found = _parse_tree(tree, path)
        for address, dev in found.items():
            if address in devices:
                raise InputError(path, f"device {address} appears in two trees", dev.line)
            devices[address] = dev
            if len(devices) > MAX_DEVICES:
                raise InputError(path, f"more than {MAX_DEVICES} devices; refusing the input")
    if not devices:
        raise InputError(path, "no lspci tree found (expected a line starting '-[0000:00]-')")
    return _tree_reading(devices, path)


def _tree_blocks(text: str) -> Iterator[list[tuple[int, str]]]:
    """Each tree in ``text``: its first line and the continuation lines after it."""
    tree: list[tuple[int, str]] = []
    for number, raw in enumerate(text.lstrip("\ufeff").split("\n"), start=1):
        line = raw.rstrip("\r").translate(_ODD_SPACE).rstrip()
        if _TREE_ROOT_RE.match(line):
            if tree:
                yield tree
            tree = [(number, line)]
        elif tree and line[:1] in (" ", "|", "\\", "+") and line.strip():
            tree.append((number, line))
        elif tree:
            yield tree
            tree = []
    if tree:
        yield tree


#: How far a mail client may have shifted a tree's first line against the rest.
_MAX_TREE_SHIFT = 8


def _parse_tree(tree: list[tuple[int, str]], path: str) -> dict[PciAddress, _TreeDev]:
    """Parse one tree; tolerate a first line shifted left against the others.

    Pasted trees sometimes lose the indentation of their first line only (the
    ``-[`` moved to column 0 while ``|`` and ``+-`` below keep theirs). The
    grid is then re-read with the first line indented by 1 to
    ``_MAX_TREE_SHIFT`` columns, and the first shift under which every line
    continues a bus is taken; if none works, the unshifted error is raised.
    """
    first_error: InputError | None = None
    for shift in range(_MAX_TREE_SHIFT + 1):
        parser = _TreeParser(path)
        try:
            for i, (number, line) in enumerate(tree):
                parser.line = number
                if i == 0:
                    parser.first_line(line, shift)
                else:
                    parser.continuation(line)
        except InputError as exc:
            if first_error is None:
                first_error = exc
            if not tree[0][1].startswith("-"):
                break  # only a "-[dddd:bb]" root line can have lost its indent
            continue
        return parser.devices
    assert first_error is not None
    raise first_error


def _tree_reading(devices: Mapping[PciAddress, _TreeDev], path: str) -> Reading:
    unknowns: list[Unknown] = [
        Unknown("", "pcie", "an lspci tree shows no capabilities"),
        Unknown("", "acs", "an lspci tree shows no capabilities"),
        Unknown("", "class", "an lspci tree shows no device classes"),
    ]
    slots: dict[tuple[int, int, int], int] = {}
    for a in devices:
        slots[(a.domain, a.bus, a.device)] = slots.get((a.domain, a.bus, a.device), 0) + 1
    functions: list[PciFunction] = []
    lines: dict[PciAddress, int] = {}
    for a, d in devices.items():
        lines[a] = d.line
        unknown = {"pcie", "acs", "class", "sriov", "subsystem"}
        vendor = device = None
        if d.name is None:
            unknown.add("ids")
            if d.bus_range is None:
                unknowns.append(Unknown(str(a), "ids", "the tree shows no name (lspci -t)"))
        else:
            shown, _pi = _strip_suffixes(d.name)
            m = _NUM_IDS_RE.fullmatch(shown) or _MIXED_IDS_RE.fullmatch(shown)
            if m:
                vendor, device = int(m["v"], 16), int(m["d"], 16)
            else:
                found = (
                    lookup_device_name(shown)
                    if not shown.endswith("...")
                    else IdLookup(None, None, why=f"name {_show(shown)} was truncated")
                )
                vendor, device = found.vendor, found.device
                if found.why is not None:
                    unknown.add("ids")
                    unknowns.append(Unknown(str(a), "ids", found.why))
        sec = sub = None
        if d.bus_range is not None:
            sec, sub = d.bus_range
        slot_count = slots[(a.domain, a.bus, a.device)]
        try:
            functions.append(
                PciFunction(
                    a,
                    vendor=0xFFFF if vendor is None else vendor,
                    device=0xFFFF if device is None else device,
                    header_type=HEADER_BRIDGE if sec is not None else HEADER_NORMAL,
                    multifunction=a.function != 0 or slot_count > 1,
                    secondary_bus=sec,
                    subordinate_bus=sub,
                    unknown=unknown,
                )
            )
        except (ValueError, TypeError) as exc:
            raise InputError(path, f"device {a}: {exc}", d.line) from None
    if any(d.bus_range is not None for d in devices.values()):
        unknowns.append(Unknown("", "ids", "an lspci tree names no bridge (lspci -t)"))
    return Reading(
        topology=_topology(functions, lines, path),
        **_unknowns(unknowns),
        source="lspci-tree",
        path=path,
    )


def looks_like_lspci_tree(text: str) -> bool:
    """Does an ``lspci -t`` tree start a line within the first 400 lines?

    >>> looks_like_lspci_tree("-[0000:00]-+-00.0\\n           \\\\-1f.0")
    True
    >>> looks_like_lspci_tree("00:00.0 Host bridge: Intel Corporation Device 3e34")
    False
    """
    for count, raw in enumerate(text.lstrip("\ufeff").split("\n", 400)):
        if count >= 400:
            break
        if _TREE_ROOT_RE.match(raw.translate(_ODD_SPACE)):
            return True
    return False
