"""Renderers: turn results into text. Pure functions returning strings."""

from __future__ import annotations

import json
from typing import Any

from .._errors import InvalidAddress
from .._kernel.groups import Grouping
from .._kernel.model import PciAddress, Topology

__all__ = ["listing", "listing_line", "to_json_text"]


def listing_line(name: str, topology: Topology | None) -> str:
    """One member line of the listing: ``00:1c.0 [0604]: [8086:a110]``.

    Domain 0 is shortened as ``lspci`` does without ``-D``; other domains
    are shown in full. Non-PCI devices are shown by name. A class or ids the
    input did not give (an ``lspci -tv`` tree) show as ``????``.
    """
    try:
        addr = PciAddress.parse(name)
    except InvalidAddress:
        return name
    shown = str(addr)[5:] if addr.domain == 0 else str(addr)
    if topology is None or addr not in topology:
        return shown
    fn = topology.get(addr)
    cls = "????" if "class" in fn.unknown else f"{fn.class_code >> 8:04x}"
    ids = "????:????" if "ids" in fn.unknown else f"{fn.vendor:04x}:{fn.device:04x}"
    return f"{shown} [{cls}]: [{ids}]"


def listing(grouping: Grouping, topology: Topology | None = None) -> str:
    r"""The well-known ``IOMMU Group N:`` listing, groups and members sorted.

    >>> from iommugroups import Grouping
    >>> g = Grouping({0: ("0000:00:00.0",), 1: ("0000:00:1c.0", "0000:01:00.0")})
    >>> listing(g).splitlines()
    ['IOMMU Group 0:', '\t00:00.0', 'IOMMU Group 1:', '\t00:1c.0', '\t01:00.0']
    """
    out: list[str] = []
    for gid in sorted(grouping.groups):
        out.append(f"IOMMU Group {gid}:")
        out.extend(f"\t{listing_line(m, topology)}" for m in grouping.groups[gid])
    return "\n".join(out) + ("\n" if out else "")


def to_json_text(data: Any) -> str:
    """Stable JSON text: 2-space indent, trailing newline."""
    return json.dumps(data, indent=2) + "\n"
