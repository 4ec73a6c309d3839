"""Map the names ``lspci`` prints back to PCI ids, and ids to the names it prints.

``lspci`` without ``-n`` prints a device as ``"Vendor Device"`` names and its
class as a name, both taken from the PCI ID database (``pci.ids``). The
package bundles the part of that database it needs
(``iommugroups/_data/pci_ids_subset.json``): every vendor and class name, and
the devices the kernel's grouping quirk tables list, the devices the test
data name, and every other device printed under exactly the same name (so an
ambiguous name stays ambiguous). The machine's own ``pci.ids`` can stand in
for it (:class:`PciIdsDatabase`, :func:`using_database`; the command line
finds it). :func:`lookup_device_name` and :func:`lookup_class_name` read the
current database; :func:`device_label` and :func:`class_label` print ids as
``lspci -nn`` does.

A name can fit several ids. Which one it is matters to the grouping only
through the kernel's quirk tables, so :func:`quirk_signature` tells how those
tables tell ids apart: when every candidate has the same signature, the
lowest pair stands for them all. :func:`quirk_named_ids` lists every id pair
the tables name, which the bundled subset must hold; :func:`parse_pci_ids`
reads a whole ``pci.ids`` file (``tools/build_pci_ids_subset.py`` builds the
subset with both).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources

import attrs

from . import quirk_tables as T
from .quirks import DEFAULT_QUIRKS

__all__ = [
    "IdLookup",
    "PciIdsDatabase",
    "bundled_database",
    "class_label",
    "current_database",
    "device_label",
    "device_name",
    "lookup_class_name",
    "lookup_device_name",
    "parse_pci_ids",
    "quirk_named_ids",
    "quirk_signature",
    "subclass_names",
    "subsystem_decides_quirk",
    "using_database",
]

_UNNAMED_DEVICE_RE = re.compile(r"(?P<vendor>.+) Device (?P<d>[0-9a-f]{4})$")
_NO_VENDOR_RE = re.compile(r"Device (?P<v>[0-9a-f]{4}):(?P<d>[0-9a-f]{4})$")


def _show(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


@attrs.frozen
class IdLookup:
    """The ids a printed name stands for, as far as ``pci.ids`` can tell.

    Attributes:
        vendor: the vendor id, when every candidate has the same one.
        device: the device id, when every candidate has the same one.
        candidates: the (vendor, device) pairs the name fits (empty when the
            device name is not in the bundled subset).
        why: ``None`` when both ids are certain, else why not.
        matters: the grouping may depend on which of the candidates it is:
            their entries in the kernel's quirk tables differ, or the vendor
            is not known (vendor-wide quirks then cannot be told).
    """

    vendor: int | None
    device: int | None
    candidates: frozenset[tuple[int, int]] = frozenset()
    why: str | None = None
    matters: bool = False


@attrs.frozen
class PciIdsDatabase:
    """A PCI ID database (``pci.ids``), indexed both ways.

    The bundled subset (:func:`bundled_database`) or a whole ``pci.ids``
    file (:meth:`from_tables`, which ``iommugroups._io.pci_ids_file`` reads
    from the machine's own copy). The lookups of this module use the one
    :func:`using_database` made current, the bundled subset by default.

    Attributes:
        source: what it is, for notes (``"/usr/share/misc/pci.ids (version
            2023.04.10)"``, ``"the bundled subset of pci.ids ..."``).
        vendors: vendor name -> its ids.
        devices: the name ``lspci`` prints (``"Vendor Device"``) -> the id
            pairs printed so.
        subclasses: subclass name -> 16-bit class.
        class_names: 16-bit class -> subclass name.
        base_names: base class -> name.
        vendor_names: vendor id -> name.
        device_names: (vendor, device) -> the name ``lspci`` prints.
        complete: a whole ``pci.ids`` (not the subset): a device name it
            does not know is not in ``pci.ids`` at all.
    """

    source: str
    vendors: Mapping[str, tuple[int, ...]]
    devices: Mapping[str, tuple[tuple[int, int], ...]]
    subclasses: Mapping[str, int]
    class_names: Mapping[int, str]
    base_names: Mapping[int, str] = attrs.field(factory=dict)
    vendor_names: Mapping[int, str] = attrs.field(factory=dict)
    device_names: Mapping[tuple[int, int], str] = attrs.field(factory=dict)
    complete: bool = False

    @classmethod
    def from_tables(
        cls,
        source: str,
        vendors: Mapping[int, str],
        devices: Mapping[tuple[int, int], str],
        classes: Mapping[int, str],
        subclasses: Mapping[int, str],
    ) -> PciIdsDatabase:
        """The database of :func:`parse_pci_ids`'s four tables (a whole ``pci.ids``)."""
        by_name: dict[str, tuple[int, ...]] = {}
        for vid, name in vendors.items():
            by_name[name] = (*by_name.get(name, ()), vid)
        shown: dict[str, list[tuple[int, int]]] = {}
        names: dict[tuple[int, int], str] = {}
        for (v, d), name in devices.items():
            vendor = vendors.get(v)
            label = f"{vendor} {name}" if vendor is not None else name
            shown.setdefault(label, []).append((v, d))
            names[(v, d)] = label
        return cls(
            source=source,
            vendors=by_name,
            devices={k: tuple(sorted(v)) for k, v in shown.items()},
            subclasses={name: code for code, name in subclasses.items()},
            class_names=dict(subclasses),
            base_names=dict(classes),
            vendor_names=dict(vendors),
            device_names=names,
            complete=True,
        )


@functools.lru_cache(maxsize=1)
def bundled_database() -> PciIdsDatabase:
    """The subset of ``pci.ids`` the package bundles (``iommugroups/_data``)."""
    raw = resources.files("iommugroups._data").joinpath("pci_ids_subset.json").read_text("utf-8")
    data = json.loads(raw)
    vendors: dict[str, tuple[int, ...]] = {}
    vendor_names: dict[int, str] = {}
    for vid, name in data["vendors"].items():
        vendors[name] = (*vendors.get(name, ()), int(vid, 16))
        vendor_names[int(vid, 16)] = name
    devices = {
        shown: tuple((int(v, 16), int(d, 16)) for v, d in (pair.split(":") for pair in pairs))
        for shown, pairs in data["devices"].items()
    }
    device_names = {pair: shown for shown, pairs in devices.items() for pair in pairs}
    class_names = {int(code, 16): name for code, name in data["subclasses"].items()}
    subclasses = {name: code for code, name in class_names.items()}
    return PciIdsDatabase(
        f"the bundled subset of {data['source']}",
        vendors,
        devices,
        subclasses,
        class_names,
        vendor_names=vendor_names,
        device_names=device_names,
    )


_CURRENT: contextvars.ContextVar[PciIdsDatabase | None] = contextvars.ContextVar(
    "iommugroups_pci_ids", default=None
)


def current_database() -> PciIdsDatabase:
    """The database the lookups use: :func:`using_database`'s, else the bundled subset."""
    db = _CURRENT.get()
    return db if db is not None else bundled_database()


@contextlib.contextmanager
def using_database(db: PciIdsDatabase | None) -> Iterator[PciIdsDatabase]:
    """Make ``db`` the database of the lookups in the ``with`` block (``None``: bundled)."""
    token = _CURRENT.set(db)
    try:
        yield current_database()
    finally:
        _CURRENT.reset(token)


def _id_db() -> PciIdsDatabase:
    return current_database()


def device_label(vendor: int, device: int) -> str:
    """The vendor and device as ``lspci -nn`` prints them, ids last.

    ``"Vendor Device [vvvv:dddd]"``; a device the database does not name is
    ``"Vendor Device dddd [vvvv:dddd]"``, an unknown vendor
    ``"Device [vvvv:dddd]"`` (as ``lspci``).

    >>> device_label(0x8086, 0x1901)
    'Intel Corporation 6th-10th Gen Core Processor PCIe Controller (x16) [8086:1901]'
    >>> device_label(0x1234, 0x5678)
    'Device [1234:5678]'
    """
    db = _id_db()
    ids = f"[{vendor:04x}:{device:04x}]"
    name = db.device_names.get((vendor, device))
    if name is not None:
        return f"{name} {ids}"
    vendor_name = db.vendor_names.get(vendor)
    if vendor_name is not None:
        return f"{vendor_name} Device {device:04x} {ids}"
    return f"Device {ids}"


def device_name(vendor: int, device: int) -> str | None:
    """The vendor and device names ``lspci`` prints for these ids, ``None`` when not named.

    >>> device_name(0x8086, 0x1901)
    'Intel Corporation 6th-10th Gen Core Processor PCIe Controller (x16)'
    """
    return _id_db().device_names.get((vendor, device))


def class_label(class16: int) -> str:
    """The class as ``lspci -nn`` prints it: ``"PCI bridge [0604]"``.

    >>> class_label(0x0604), class_label(0xFE42)
    ('PCI bridge [0604]', 'Class [fe42]')
    """
    db = _id_db()
    name = db.class_names.get(class16) or db.base_names.get(class16 >> 8) or "Class"
    return f"{name} [{class16:04x}]"


def lookup_class_name(shown: str) -> int | None:
    """The 16-bit class (base class and subclass) ``lspci`` prints as ``shown``.

    ``lspci`` prints the subclass name, or the class name with the number
    when the subclass is not in the database, so a bare name is never
    ambiguous. ``None`` when ``pci.ids`` has no subclass of that name.

    >>> hex(lookup_class_name("PCI bridge")), lookup_class_name("Frobnicator")
    ('0x604', None)
    """
    return _id_db().subclasses.get(shown)


def subclass_names() -> dict[int, str]:
    """Every subclass name of ``pci.ids``, by 16-bit class (``0x0604`` -> ``"PCI bridge"``).

    >>> subclass_names()[0x0C03]
    'USB controller'
    """
    return dict(_id_db().class_names)


def _common(values: Iterable[int]) -> int | None:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _vendor_splits(db: PciIdsDatabase, shown: str) -> Iterator[tuple[str, str]]:
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

    Args:
        shown: the vendor and device part of an ``lspci`` device line,
            without the ``(rev xx)`` and ``(prog-if xx)`` suffixes.

    Returns:
        The ids, with the candidates the name fits and, when either id is
        not certain, why (see :func:`quirk_signature` for when the lowest of
        several candidates stands for them all).

    >>> shown = "Intel Corporation 6th-10th Gen Core Processor PCIe Controller (x16)"
    >>> r = lookup_device_name(shown)
    >>> hex(r.vendor), hex(r.device), r.why
    ('0x8086', '0x1901', None)
    >>> r = lookup_device_name("Intel Corporation 82574L Gigabit Network Connection")
    >>> hex(r.vendor), hex(r.device), sorted(hex(d) for _v, d in r.candidates), r.matters
    ('0x8086', '0x10d3', ['0x10d3', '0x10f6'], False)
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
        where = "pci.ids" if db.complete else "the bundled pci.ids subset"
        return IdLookup(
            vendor,
            None,
            frozenset(),
            f"device name in {_show(shown)} is not in {where} ({what}); no device of the "
            "kernel's quirk tables has that name",
            matters=vendor is None,
        )
    return IdLookup(
        None, None, frozenset(), f"no pci.ids vendor name starts {_show(shown)}", matters=True
    )


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
    signatures = {quirk_signature(v, d) for v, d in cands}
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
        vendor = _common(v for v, _ in cands)
        if vendor is None:  # vendors differ: keep what they share
            return IdLookup(
                None,
                _common(d for _, d in cands),
                cands,
                f"{what} fits {listed} in pci.ids; no quirk table lists any of them, so the "
                "grouping is the same for each",
            )
        v, d = min(cands)
        return IdLookup(
            v,
            d,
            cands,
            f"{what} fits {listed} in pci.ids; no quirk table lists any of them, so the "
            f"grouping is the same for each ({v:04x}:{d:04x} stands for them)",
        )
    return IdLookup(
        _common(v for v, _ in cands),
        _common(d for _, d in cands),
        cands,
        f"{what} fits {listed} in pci.ids (their quirk-table entries differ: the grouping "
        "may depend on which it is)",
        True,
    )


# =============================================================================
# What the kernel's quirk tables say about ids
# =============================================================================

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
def quirk_signature(vendor: int, device: int) -> tuple[int | None, frozenset[str]]:
    """How the kernel's grouping quirks tell these ids apart.

    Two devices with the same signature are treated alike by every grouping
    quirk (other facts, like the PCIe type, being equal), so when a printed
    name fits several ids that all have one signature, any of them can stand
    for the others.

    Args:
        vendor: the vendor id.
        device: the device id.

    Returns:
        ``(vendor, names)``: the vendor when some quirk entry matches every
        device of it (``None`` otherwise), and the entries that name this
        device id, plus the id lists tested inside vendor-wide entries that
        hold it.

    >>> quirk_signature(0x8086, 0xA110)
    (32902, frozenset({'intel_spt_pch_acs'}))
    >>> quirk_signature(0x1B21, 0x1142)
    (None, frozenset())
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
def quirk_named_ids() -> frozenset[tuple[int, int]]:
    """Every (vendor, device) pair the kernel's grouping quirk tables name.

    The raw id lists and ranges of :mod:`~iommugroups._kernel.quirk_tables`,
    and every entry of :data:`~iommugroups._kernel.quirks.DEFAULT_QUIRKS`
    that names one device. The bundled ``pci.ids`` subset holds the name of
    each of them that ``pci.ids`` names.

    >>> (0x8086, 0x8D18) in quirk_named_ids(), (0x1B21, 0x1142) in quirk_named_ids()
    (True, False)
    """
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


def subsystem_decides_quirk(vendor: int, device: int) -> bool:
    """Does a DMA-alias quirk tell devices with these ids apart by their subsystem ids?

    ``quirk_fixed_dma_alias`` matches by subsystem ids too, so a reader that
    cannot see them cannot tell whether it applies.

    >>> subsystem_decides_quirk(0x9005, 0x0285), subsystem_decides_quirk(0x8086, 0x1539)
    (True, False)
    """
    return any(vendor == v and device == d for v, d, *_rest in T.FIXED_DMA_ALIAS_TABLE)


# =============================================================================
# The pci.ids file
# =============================================================================


def parse_pci_ids(
    text: str,
) -> tuple[dict[int, str], dict[tuple[int, int], str], dict[int, str], dict[int, str]]:
    """Read a ``pci.ids`` file: vendor, device, class and subclass names.

    Subsystems, programming interfaces and the lists after the classes
    (``X``, ``R``, ...) are skipped.

    Args:
        text: the whole file.

    Returns:
        ``(vendors, devices, classes, subclasses)``: vendor id -> name,
        (vendor id, device id) -> device name, base class -> name, and
        16-bit class (``0x0604``) -> subclass name.

    >>> parse_pci_ids("8086  Intel\\n\\t1539  I211\\nC 06  Bridge\\n\\t04  PCI bridge\\n")
    ({32902: 'Intel'}, {(32902, 5433): 'I211'}, {6: 'Bridge'}, {1540: 'PCI bridge'})
    """
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
