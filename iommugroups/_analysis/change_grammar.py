"""The command-line form of a ``what-if`` change: :func:`parse_change`.

CLI grammar (:func:`parse_change`)
----------------------------------
::

    acs-override=MODE[,MODE...]        MODE: downstream | multifunction | id:VVVV:DDDD
                                       (also: pcie_acs_override=...)
    config-acs=FLAGS@DEV[,FLAGS@DEV]   (also ';' between entries, the kernel's
                                       separator; pci=config_acs=... takes the
                                       kernel's text as is, ';' only)
    set-acs=ADDR[:CTRL[:CAP]]          CTRL, CAP: ACS flags joined by ',' (or '+'
                                       or '|'), such as SV,RR,CR,UF; '-' for none
    remove-acs=ADDR
    remove=ADDR  or  remove=SLOT
    move=SLOT@PORT                     (also SLOT=>PORT and SLOT->PORT)
    quirk=isolated:VVVV:DDDD[:upstream]
    quirk=not-isolated:VVVV:DDDD[:upstream]
    quirk=dma-alias:VVVV:DDDD:ALIAS[,ALIAS...][:upstream]
                                       ALIAS: fnN (function N of the device's own
                                       slot) or SS.F (a devfn on its own bus)
    reachable-set[=FACT[,FACT...]]     (also grouping=reachable-set) FACT:
                                       no-acs-enhanced, acs-enhanced,
                                       mmio@BRIDGE or no-mmio@BRIDGE

``ADDR`` is ``[DDDD:]BB:SS.F``, ``SLOT`` is ``[DDDD:]BB:SS``, ids are hex
(``any``, or ``*``, for any device id in a quirk). Bad text raises
:class:`WhatIfError`.

Each change has a spelling that needs no quoting in a POSIX shell: it uses
none of ``| & ; < > ( ) $ ` \\ " ' * ? [ ] ! # ~`` nor spaces. The older
spellings that do (``SV|RR``, ``=>``, ``;``, ``*``) are still accepted,
quoted. ``move`` takes no ``SLOT:PORT``: with a PCI domain of one or two
hex digits, ``0:09:00:07:0a.0`` would be both slot ``0:09:00`` with port
``07:0a.0`` and slot ``0:09`` with port ``00:07:0a.0``.
"""

from __future__ import annotations

import re

from .._errors import InvalidAddress
from .._kernel.config_acs import _devfn
from .._kernel.model import PciAddress
from .._kernel.quirks import AcsQuirk, DmaAliasKind, DmaAliasQuirk
from .changes import (
    AcsOverride,
    AddQuirk,
    Change,
    ConfigAcs,
    MoveCard,
    ReachableSet,
    RemoveAcs,
    RemoveDevice,
    SetAcs,
    Slot,
    WhatIfError,
    _to_address,
)

__all__ = ["parse_change"]


_ADDR = r"(?:[0-9a-fA-F]{1,8}:)?[0-9a-fA-F]{1,2}:[0-9a-fA-F]{1,2}\.[0-7]"
_SET_ACS_RE = re.compile(rf"^(?P<addr>{_ADDR})(?::(?P<ctrl>[^:]*))?(?::(?P<cap>[^:]*))?$")
_HEX_ID = r"[0-9a-fA-F]{1,4}"
_QUIRK_RE = re.compile(
    rf"^(?P<verdict>isolated|not-isolated|not_isolated|dma-alias|dma_alias):"
    rf"(?P<vendor>{_HEX_ID}):(?P<device>{_HEX_ID}|\*|(?i:any))"
    r"(?::(?!upstream$)(?P<aliases>[^:]+))?(?P<upstream>:upstream)?$"
)
_KEYS = {
    "acs-override": "acs-override",
    "pcie_acs_override": "acs-override",
    "config-acs": "config-acs",
    "pci=config_acs": "pci=config_acs",
    "config_acs": "config-acs",
    "set-acs": "set-acs",
    "remove-acs": "remove-acs",
    "remove": "remove",
    "move": "move",
    "quirk": "quirk",
    "reachable-set": "reachable-set",
    "reachable_set": "reachable-set",
    "grouping": "grouping",
}
#: What may separate a card's slot from its new port in ``move=``: ``@`` needs no
#: shell quoting; ``=>`` and ``->`` (the older spellings) do.
_MOVE_SEPARATORS = ("@", "=>", "->")
#: Kinds that may be given without ``=VALUE``.
_BARE = frozenset({"reachable-set"})
_GRAMMAR = {
    "acs-override": "acs-override=MODE[,MODE...] with MODE downstream, multifunction or "
    "id:VVVV:DDDD",
    "config-acs": "config-acs=FLAGS@DEVICE[,FLAGS@DEVICE...]",
    "pci=config_acs": "pci=config_acs=FLAGS@DEVICE[;FLAGS@DEVICE...] (the kernel's text)",
    "set-acs": "set-acs=ADDR[:CTRL[:CAP]] with CTRL and CAP ACS flags joined by ',', "
    "e.g. set-acs=00:1c.0:SV,RR,CR,UF",
    "remove-acs": "remove-acs=ADDR",
    "remove": "remove=ADDR or remove=SLOT",
    "move": "move=SLOT@PORT, e.g. move=01:00@00:1c.4 (or, quoted, move=SLOT=>PORT)",
    "quirk": "quirk=isolated:VVVV:DDDD, quirk=not-isolated:VVVV:DDDD or "
    "quirk=dma-alias:VVVV:DDDD:ALIAS[,ALIAS...], each optionally ending in :upstream; "
    "DDDD may be any",
    "reachable-set": "reachable-set[=FACT[,FACT...]] with FACT no-acs-enhanced, acs-enhanced, "
    "mmio@BRIDGE or no-mmio@BRIDGE",
    "grouping": "grouping=reachable-set",
}


def parse_change(text: str) -> Change:
    """Parse the CLI form of a change (grammar in the module docstring).

    >>> parse_change("acs-override=downstream,multifunction")
    AcsOverride(modes=('downstream', 'multifunction'))
    >>> parse_change("move=01:00@00:1c.4").label
    'move the card in slot 0000:01:00 below 0000:00:1c.4'
    >>> parse_change("move=01:00@00:1c.4") == parse_change("move=01:00=>00:1c.4")
    True
    >>> parse_change("set-acs=00:1c.0:SV,RR,CR,UF").label
    'set ACS on 0000:00:1c.0: ctrl SV|RR|CR|UF'
    >>> parse_change("quirk=isolated:8086:1234").upstream
    False
    >>> parse_change("reachable-set").text, parse_change("grouping=reachable-set").kind
    ('reachable-set', 'reachable-set')

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
    if not sep and kind in _BARE:
        return _parse_value(kind, "")
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
        return ConfigAcs(value.replace(",", ";"))
    if kind == "pci=config_acs":  # the kernel's own text: ',' would end the pci= option
        return ConfigAcs(value)
    if kind == "set-acs":
        m = _SET_ACS_RE.match(value)
        if m is None:
            raise WhatIfError(f"set-acs: cannot parse {value!r}")
        ctrl = _acs_flags(m["ctrl"]) if m["ctrl"] else None
        cap = _acs_flags(m["cap"]) if m["cap"] else None
        return SetAcs(m["addr"], ctrl, cap)
    if kind == "remove-acs":
        return RemoveAcs(value)
    if kind == "reachable-set":
        return ReachableSet(value)
    if kind == "grouping":
        if value.lower() not in ("reachable-set", "reachable_set"):
            raise WhatIfError(f"grouping: {value!r} is not a grouping (expected reachable-set)")
        return ReachableSet()
    if kind == "remove":
        try:
            return RemoveDevice(PciAddress.parse(value))
        except InvalidAddress:
            slot = Slot.parse(value)
            return RemoveDevice(PciAddress(slot.domain, slot.bus, slot.device, 0), whole_slot=True)
    if kind == "move":
        for arrow in _MOVE_SEPARATORS:
            left, sep, right = value.partition(arrow)
            if sep:
                return MoveCard(Slot.parse(left), _to_address(right.strip()))
        raise WhatIfError(
            f"move: {value!r} has no '@', no '=>' and no '->' between the slot and the port"
            + (
                " (':' cannot separate them: addresses contain ':')"
                if value.count(":") > 2
                else ""
            )
        )
    assert kind == "quirk"
    m = _QUIRK_RE.match(value)
    if m is None:
        raise WhatIfError(f"quirk: cannot parse {value!r}")
    vendor = int(m["vendor"], 16)
    device = None if m["device"] == "*" or m["device"].lower() == "any" else int(m["device"], 16)
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


def _acs_flags(text: str) -> str:
    """ACS flags joined by ``,``, ``+`` or ``|`` (``SV,RR``, ``SV+RR``, ``SV|RR``) as ``SV|RR``."""
    return "|".join(part.strip() for part in re.split(r"[,+|]", text))


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
