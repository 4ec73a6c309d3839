"""Filters on a :class:`~iommugroups.ShowResult`: by class, group, address, related device.

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

"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import attrs

from .._errors import IommuGroupsError
from .._kernel.model import PciAddress
from .names import short_name
from .related import related
from .show import GroupView, Member, ShowResult

__all__ = [
    "CLASS_KEYWORDS",
    "ShowFilterError",
    "by_address",
    "by_class",
    "by_device",
    "by_group",
    "by_related",
    "resolve_device",
]

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


class ShowFilterError(IommuGroupsError, ValueError):
    """A filter argument is malformed (e.g. an unknown class keyword)."""


def _filtered(
    result: ShowResult, keep: Callable[[Member, GroupView], bool], label: str
) -> ShowResult:
    groups: list[GroupView] = []
    for g in result.groups:
        members = tuple(
            m if not m.match or keep(m, g) else m._replace(match=False) for m in g.members
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
    """Keep the groups with a member of one of the classes.

    A keyword matches a class code whose hex digits start with one of its
    prefixes:

    ============  ==================  ============================================
    keyword       class code prefix   PCI class
    ============  ==================  ============================================
    ``gpu``       ``03``              display controllers (VGA, XGA, 3D, other)
    ``usb``       ``0c03``            USB controllers (UHCI, OHCI, EHCI, xHCI, ...)
    ``net``       ``02``              network controllers (Ethernet, InfiniBand, ...)
    ``nvme``      ``0108``            non-volatile memory controllers (NVMe)
    ``audio``     ``0401``, ``0403``  multimedia audio controllers, HD audio devices
    ``storage``   ``01``              mass storage controllers (SATA, SAS, RAID, NVMe)
    ``bridge``    ``06``              bridges (host, ISA, PCI-PCI, ...)
    ============  ==================  ============================================

    A class may also be given as 2, 4 or 6 hex digits (``0c03``,
    ``030000``), which match as a prefix of the 6-digit class code.

    Raises:
        ShowFilterError: a keyword is neither known nor a hex class code.

    >>> from iommugroups import examples, related, show
    >>> [g.id for g in by_class(show(examples.desktop()), "gpu").groups]
    [7, 10]
    """
    prefixes = tuple(p for k in keywords for p in _class_prefixes(k))

    def keep(m: Member, _g: GroupView) -> bool:
        return m.class_code is not None and f"{m.class_code:06x}".startswith(prefixes)

    return _filtered(result, keep, f"class {', '.join(keywords)}")


def by_group(result: ShowResult, *ids: int) -> ShowResult:
    """Keep the groups with one of the ids (unknown ids match nothing).

    >>> from iommugroups import examples, related, show
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

    >>> from iommugroups import examples, related, show
    >>> [m.shown for g in by_address(show(examples.desktop()), "01:00").groups for m in g.members]
    ['01:00.0', '01:00.1']
    """
    wanted = tuple(p.strip().lower() for p in prefixes if p.strip())

    def keep(m: Member, _g: GroupView) -> bool:
        return bool(wanted) and (
            m.shown.lower().startswith(wanted) or m.name.lower().startswith(wanted)
        )

    return _filtered(result, keep, f"address {', '.join(prefixes)}")


_IDS_RE = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$")


def by_device(result: ShowResult, *specs: str) -> ShowResult:
    """Keep the groups with a member that one of ``specs`` names, however it is named.

    A spec is ``vvvv:dddd`` (vendor and device id, four hex digits each), a
    class keyword or hex class code as :func:`by_class` takes it, or else
    an address prefix as :func:`by_address` takes it (``01:00``,
    ``0000:01``, a platform device's name). ``10de:1b80`` is ids, never an
    address: a bus has two hex digits.

    Raises:
        ShowFilterError: a spec is none of these (an unknown class keyword
            that is not a hex code and matches no address either is an
            address that matches nothing: the result is empty, not an error).

    >>> from iommugroups import examples, show
    >>> r = show(examples.desktop())
    >>> [m.shown for g in by_device(r, "10de:1b80").groups for m in g.members if m.match]
    ['01:00.0']
    >>> [g.id for g in by_device(r, "gpu").groups] == [g.id for g in by_class(r, "gpu").groups]
    True
    """
    ids: set[tuple[int, int]] = set()
    classes: list[str] = []
    prefixes: list[str] = []
    for spec in specs:
        text = spec.strip()
        m = _IDS_RE.match(text)
        if m:
            ids.add((int(m[1], 16), int(m[2], 16)))
        elif text.lower() in CLASS_KEYWORDS:
            classes.extend(_class_prefixes(text))
        elif text:
            prefixes.append(text.lower())
    wanted_classes = tuple(classes)
    wanted_prefixes = tuple(prefixes)

    def keep(m: Member, _g: GroupView) -> bool:
        if m.vendor is not None and (m.vendor, m.device) in ids:
            return True
        if (
            wanted_classes
            and m.class_code is not None
            and f"{m.class_code:06x}".startswith(wanted_classes)
        ):
            return True
        return bool(wanted_prefixes) and (
            m.shown.lower().startswith(wanted_prefixes)
            or m.name.lower().startswith(wanted_prefixes)
        )

    return _filtered(result, keep, f"device {', '.join(specs)}")


def resolve_device(result: ShowResult, spec: str) -> str:
    """The one device ``spec`` names: an address as given, or the only function with ids
    ``vvvv:dddd``.

    Raises:
        ShowFilterError: ``spec`` is ids that no function, or several, have.
    """
    m = _IDS_RE.match(spec.strip())
    if not m:
        return spec
    want = (int(m[1], 16), int(m[2], 16))
    found = sorted(
        mem.name
        for g in result.all_groups
        for mem in g.members
        if mem.vendor is not None and (mem.vendor, mem.device) == want
    )
    if len(found) == 1:
        return found[0]
    if not found:
        raise ShowFilterError(f"no device has the ids {spec}")
    shown = ", ".join(short_name(n) for n in found[:8])
    raise ShowFilterError(f"several devices have the ids {spec} ({shown}): give an address")


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
