"""Buses whose bridge the input lost: recorded as unknown facts of the devices below them.

Every reader that builds a topology calls :func:`with_missing_bridges` once
it has it, passing the root buses its input declares (a sysfs tree's
``pciDDDD:BB`` directories, an ``lspci -t`` tree's ``[dddd:bb]``; most inputs
declare none). :meth:`~iommugroups.Topology.missing_bridges` says which buses
no bridge claims although their devices cannot sit on a root bus (a PCIe
Endpoint, Upstream or Downstream Port), or may not (a device whose PCIe type
is not known). Each function on such a bus or below it gets the unknown fact
``"bridge"`` (:attr:`~iommugroups.PciFunction.unknown`) and a note
(:class:`~iommugroups.Unknown`) naming the bus and the evidence, so that
``check`` makes its verdict unknown instead of taking it to be alone on a
root bus (R4.2), which only a bridge the input lost made it look.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .._errors import InvalidAddress
from .._kernel.model import PciAddress, Topology, address_name, full_name
from .._kernel.reading import Unknown

__all__ = [
    "BRIDGE_FACT",
    "MULTIFUNCTION_FACT",
    "parse_bus",
    "with_missing_bridges",
    "with_root_buses",
]

#: The unknown fact of a function below a bus whose bridge the input lacks.
BRIDGE_FACT = "bridge"
#: The unknown fact of the functions of a slot whose multifunction bit contradicts them.
MULTIFUNCTION_FACT = "multifunction"


def with_missing_bridges(
    topology: Topology, root_buses: Iterable[tuple[int, int]] = ()
) -> tuple[Topology, list[Unknown]]:
    """``topology`` with every function below a missing bridge marked, and the notes.

    Args:
        topology: the topology read.
        root_buses: ``(domain, bus)`` pairs the input declares to be root buses.

    Returns:
        The topology (``topology`` itself when no bridge is missing; marking is
        idempotent) and one :class:`Unknown` (fact ``"bridge"``) per function
        below a missing bridge, in bus order.
    """
    notes: list[Unknown] = []
    marks: dict[PciAddress, set[str]] = {}
    for m in topology.missing_bridges(root_buses):
        for address in m.devices:
            notes.append(Unknown(address_name(address), BRIDGE_FACT, m.why))
            marks.setdefault(address, set()).add(BRIDGE_FACT)
    for address, why in _single_function_slots(topology):
        notes.append(Unknown(address_name(address), MULTIFUNCTION_FACT, why))
        marks.setdefault(address, set()).add(MULTIFUNCTION_FACT)
    if all(facts <= topology.get(a).unknown for a, facts in marks.items()):
        return topology, notes
    functions = [
        attrs.evolve(f, unknown=f.unknown | marks[f.address]) if f.address in marks else f
        for f in topology.functions
    ]
    return topology.replace(functions=functions), notes


def _single_function_slots(topology: Topology) -> list[tuple[PciAddress, str]]:
    """The functions of each slot whose function 0 says it is single-function (header
    type bit 7 clear) while other functions of the slot are in the input.

    ``pci_scan_slot`` would not have looked for them (``next_fn``: "only
    multifunction devices may have more functions"), unless the bus has ARI:
    the bit, or the functions, are wrong, and so may be which of them share a
    group (R5.2, R5.6).
    """
    # In device-add order, a bus's functions (VFs aside) come together, in
    # devfn order: a slot's function 0 comes first, the slot's others next.
    flagged: set[tuple[int, int, int]] = set()
    single: PciAddress | None = None  # the last function 0 that says single-function
    for f in topology.enumeration_order():
        if f.physfn is not None:
            break  # the VFs, added after every other function
        a = f.address
        if not a[3]:
            single = None if f.multifunction else a
        elif single is not None and single[2] == a[2] and single[1] == a[1] and single[0] == a[0]:
            flagged.add((a[0], a[1], a[2]))
    if not flagged:
        return []
    slots: dict[tuple[int, int, int], list[PciAddress]] = {}
    for f in topology.functions:
        a = f.address
        if f.physfn is None and (a[0], a[1], a[2]) in flagged:
            slots.setdefault((a[0], a[1], a[2]), []).append(a)
    out: list[tuple[PciAddress, str]] = []
    for members in slots.values():
        if len(members) < 2:
            continue
        first = min(members)
        fn0 = topology.get(first)
        if first.function != 0 or fn0.multifunction:
            continue
        others = ", ".join(_short(a) for a in sorted(members)[1:4])
        why = (
            f"{_short(first)} says it is single-function "
            f"(header type bit 7), but {others} of its slot are in the input: the kernel "
            "would not have looked for them (pci_scan_slot) unless the bus has ARI; which "
            "of them share a group (R5.2) is not known"
        )
        out.extend((a, why) for a in sorted(members))
    return out


def _short(address: PciAddress) -> str:
    """``bb:dd.f`` in domain 0, else ``dddd:bb:dd.f``."""
    name = address_name(address)
    return name[5:] if address.domain == 0 else name


def with_root_buses(
    topology: Topology, unknowns: Iterable[Unknown], root_buses: Iterable[tuple[int, int]]
) -> tuple[Topology, list[Unknown]]:
    """``topology`` and ``unknowns`` once the user says which buses are root buses.

    What the input could not say (``check --root-bus ff``: an ``lspci -vv``
    paste shows no host bridges, and a Xeon's uncore bus ``ff`` holds only
    conventional PCI devices): the functions that are no longer below a
    missing bridge lose the ``"bridge"`` fact and its notes.
    """
    roots = set(root_buses)
    still = {str(a) for m in topology.missing_bridges(roots) for a in m.devices}
    functions = [
        attrs.evolve(f, unknown=f.unknown - {BRIDGE_FACT})
        if BRIDGE_FACT in f.unknown and str(f.address) not in still
        else f
        for f in topology.functions
    ]
    kept = [
        u
        for u in unknowns
        if u.fact != BRIDGE_FACT or not u.device or full_name(u.device) in still
    ]
    return topology.replace(functions=functions), kept


def parse_bus(text: str) -> tuple[int, int]:
    """``(domain, bus)`` of ``"dddd:bb"`` or ``"bb"`` (domain 0).

    >>> parse_bus("ff"), parse_bus("10000:e0")
    ((0, 255), (65536, 224))

    Raises:
        InvalidAddress: not a bus.
    """
    dom, sep, bus = text.strip().rpartition(":")
    try:
        domain = int(dom, 16) if sep else 0
        number = int(bus, 16)
    except ValueError:
        raise InvalidAddress(f"not a PCI bus: {text[:40]!r} (expected dddd:bb or bb)") from None
    if not (0 <= domain <= 0xFFFFFFFF and 0 <= number <= 0xFF) or len(bus) > 2 or not bus:
        raise InvalidAddress(f"not a PCI bus: {text[:40]!r} (expected dddd:bb or bb)")
    return domain, number
