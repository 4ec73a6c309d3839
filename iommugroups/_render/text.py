"""Renderers: turn results into text. Pure functions returning strings."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from .._errors import InvalidAddress
from .._kernel.groups import Grouping
from .._kernel.model import PciAddress, Topology, full_name
from .._kernel.pci_ids import class_label, device_label, device_name
from .._kernel.reading import Unknown

__all__ = [
    "FACT_WORDS",
    "listing",
    "listing_line",
    "note_lines",
    "to_json_text",
    "write_json_document",
]

#: What each fact a reader could not establish is, in words, and whether it can
#: change a group (a grouping fact) or is only shown with ``-v``.
FACT_WORDS: dict[str, tuple[str, bool]] = {
    "acs": ("ACS capability bits not shown", True),
    "pcie": ("PCIe capability not shown", True),
    "config": ("configuration space not shown", True),
    "ids": ("ids not certain, and a kernel quirk may depend on them", True),
    "vmd": ("VMD endpoint not known (R3.1)", True),
    "bus-numbers": ("bridge bus numbers not configured", True),
    "sriov": ("SR-IOV capability not shown", True),
    "class": ("class not known", True),
    "topology": ("topology", True),
    "name": ("name fits several ids, none of them in a quirk table", False),
    "group": ("no IOMMU group shown", False),
    "subsystem": ("subsystem ids not shown", False),
    "capabilities": ("a capability lspci could not name", False),
    "physfn": ("SR-IOV PF link", False),
    "paste": ("paste repaired", False),
    "assumed": ("assumed", False),
}


def listing_line(name: str, topology: Topology | None, *, names: bool = False) -> str:
    """One member line of the listing: ``00:1c.0 [0604]: [8086:a110]``.

    With ``names``, as ``lspci -nns`` prints the device (the well-known
    listing): ``00:1c.0 PCI bridge [0604]: Intel Corporation ... [8086:a110]
    (rev f1)``, with the names of the current PCI ID database
    (:func:`~iommugroups._kernel.pci_ids.using_database`). Domain 0 is
    shortened as ``lspci`` does without ``-D``; other domains are shown in
    full. Non-PCI devices are shown by name. A class or ids the input did not
    give (an ``lspci -tv`` tree) show as ``????``; the revision only when the
    input gave it and it is not 0 (``lspci`` prints no ``(rev 00)``).
    """
    try:
        addr = PciAddress.parse(name)
    except InvalidAddress:
        return name
    shown = str(addr)[5:] if addr.domain == 0 else str(addr)
    if topology is None or addr not in topology:
        return shown
    fn = topology.get(addr)
    if not names:
        code = "????" if "class" in fn.unknown else f"{fn.class_code >> 8:04x}"
        pair = "????:????" if "ids" in fn.unknown else f"{fn.vendor:04x}:{fn.device:04x}"
        return f"{shown} [{code}]: [{pair}]"
    cls = "[????]" if "class" in fn.unknown else class_label(fn.class_code >> 8)
    if "ids" in fn.unknown:  # a name that fits several ids: the name, not the ids
        vendor = "????" if fn.vendor == 0xFFFF else f"{fn.vendor:04x}"
        named = device_name(fn.vendor, fn.device) if fn.device != 0xFFFF else None
        ids = f"{named} [{vendor}:????]" if named else f"[{vendor}:????]"
    else:
        ids = device_label(fn.vendor, fn.device)
    rev = f" (rev {fn.revision:02x})" if fn.revision else ""
    return f"{shown} {cls}: {ids}{rev}"


def note_lines(
    unknowns: Sequence[Unknown], *, verbose: bool = False, limit: int = 50
) -> list[str]:
    """The notes on what an input lacks: a summary by fact, or every note (``verbose``).

    The summary counts the devices per fact that can change a group, and
    gives whole-input notes and assumptions in full; notes about single
    devices that change no group (a name that fits several ids none of the
    quirk tables lists, a missing group line) are only shown with
    ``verbose``. A note never calls a fact unknown and then says it does not
    matter.
    """
    out: list[str] = []
    if verbose:
        out.extend(_one(u) for u in unknowns[:limit])
        if len(unknowns) > limit:
            out.append(f"... and {len(unknowns) - limit} more")
        return out
    counts: dict[str, set[str]] = {}
    hidden = 0
    for u in unknowns:
        grouping = FACT_WORDS.get(u.fact, (u.fact, True))[1]
        if not u.device or u.fact in ("assumed",):
            out.append(_one(u))
        elif grouping:
            counts.setdefault(u.fact, set()).add(u.device)
        else:
            hidden += 1
    for fact in sorted(counts, key=lambda f: (-len(counts[f]), f)):
        devices = sorted(counts[fact])
        words = FACT_WORDS.get(fact, (f"{fact} not known", True))[0]
        shown = ", ".join(d[5:] if d.startswith("0000:") else d for d in devices[:4])
        more = f" and {len(devices) - 4} more" if len(devices) > 4 else ""
        out.append(
            f"{words}: {len(devices)} device{'s' if len(devices) > 1 else ''} ({shown}{more}); "
            "a verdict or group that depends on them is unknown"
        )
    if hidden:
        out.append(f"{hidden} more note{'s' if hidden > 1 else ''} about single devices (-v)")
    return out


def _one(u: Unknown) -> str:
    if u.fact in ("assumed", "paste", "name"):
        who = f"{u.device}: " if u.device else ""
        return f"{who}{u.why}"
    return str(u)


def listing(
    grouping: Grouping,
    topology: Topology | None = None,
    *,
    names: bool = False,
    drivers: bool = False,
    marks: Mapping[str, str] | None = None,
) -> str:
    r"""The well-known ``IOMMU Group N:`` listing, groups and members sorted.

    ``names``: each device as ``lspci -nns`` prints it (:func:`listing_line`);
    ``drivers``: then the driver bound to it, when the input says;
    ``marks``: by full device name, a remark put after the device (``<- ...``).

    >>> from iommugroups import Grouping
    >>> g = Grouping({0: ("0000:00:00.0",), 1: ("0000:00:1c.0", "0000:01:00.0")})
    >>> listing(g).splitlines()
    ['IOMMU Group 0:', '\t00:00.0', 'IOMMU Group 1:', '\t00:1c.0', '\t01:00.0']
    """
    out: list[str] = []
    for gid in sorted(grouping.groups):
        out.append(f"IOMMU Group {gid}:")
        for m in grouping.groups[gid]:
            line = f"\t{listing_line(m, topology, names=names)}"
            if drivers and topology is not None:
                fn = topology.by_name().get(full_name(m))
                if fn is not None and fn.driver:
                    line += f"  driver {fn.driver}"
            if marks:
                mark = marks.get(full_name(m))
                if mark:
                    line += f"  <- {mark}"
            out.append(line)
    return "\n".join(out) + ("\n" if out else "")


def to_json_text(data: Any) -> str:
    """Stable JSON text: 2-space indent, trailing newline."""
    return json.dumps(data, indent=2) + "\n"


#: ``json.dumps``'s own string encoder (``ensure_ascii``).
_QUOTED: Callable[[str], str] = json.encoder.encode_basestring_ascii


def write_json_document(items: Iterable[tuple[str, Any]], write: Callable[[str], object]) -> None:
    """Write the object of ``items`` as ``json.dumps(dict(items), indent=2)`` writes it,
    and a newline.

    A value given as an iterator is a list written one entry at a time, so that a
    report of 100,000 devices is never held as JSON data or text all at once
    (``what-if --json``, ``check --json``).
    """
    write("{")
    first = True
    for key, value in items:
        write(("\n" if first else ",\n") + "  " + _QUOTED(key) + ": ")
        first = False
        if isinstance(value, Iterator):
            entries = False
            for entry in value:
                write(("[\n" if not entries else ",\n") + "    " + _json_at(entry, "    "))
                entries = True
            write("\n  ]" if entries else "[]")
        else:
            write(_json_at(value, "  "))
    write("}\n" if first else "\n}\n")


def _json_at(value: Any, pad: str) -> str:
    """``json.dumps(value, indent=2)`` at indentation ``pad``."""
    if isinstance(value, str):
        return _QUOTED(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    inner = pad + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        body = ",\n".join(f"{inner}{_QUOTED(k)}: {_json_at(v, inner)}" for k, v in value.items())
        return f"{{\n{body}\n{pad}}}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        return "[\n" + ",\n".join(inner + _json_at(v, inner) for v in value) + f"\n{pad}]"
    return json.dumps(value)  # a float; anything else is not JSON data: TypeError
