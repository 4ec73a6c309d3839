"""``pci=config_acs=``: the kernel parameter that sets ACS controls (v6.11+, v6.15 semantics).

Models ``__pci_config_acs``, ``pci_enable_acs``, ``pci_dev_str_match`` and
``pci_dev_str_match_path`` of ``drivers/pci/pci.c`` as fixed by 9cf8a952d57b
(v6.15, 6.13-stable), and ``pci_quirk_disable_intel_spt_pch_acs_redir`` of
``drivers/pci/quirks.c``; where they were read and what the older v6.11-v6.14
code did differently is in the docs ("Kernel parameters"). In short:

* ``FLAGS@DEVICE[;FLAGS@DEVICE...]``; FLAGS right to left from bit 0 (SV,
  TB, RR, CR, UF, EC, DT): ``1`` on, ``0`` off, ``x`` keep; DEVICE a path
  ``[DDDD:]BB:SS.F[/SS.F...]`` or ids ``pci:VVVV:DDDD[:SVVV:SDDD]``; the
  first matching entry is used;
* only a device with an ACS capability is configured, to
  ``(fw_ctrl & ~mask) | (flags & mask)`` (bits the capability does not
  implement read back as 0);
* an Intel Sunrise Point PCH root port is not written: the redirect
  workaround clears RR, CR and EC in its real control register instead.
"""

from __future__ import annotations

import re

import attrs

from .._errors import ParameterError
from .model import REQ_ACS_FLAGS, Acs, AcsFlags, PciAddress, PciFunction, Topology
from .quirks import AcsQuirk, QuirkContext, pci_acs_ctrl_enabled, pci_quirk_intel_spt_pch_acs_match

__all__ = [
    "AcsEntry",
    "ConfigAcsResult",
    "IdSpec",
    "PathSpec",
    "SptRedirCheck",
    "config_acs",
    "parse_config_acs",
]

_VENDOR_INTEL = 0x8086

_ID_SPEC_RE = re.compile(
    r"^pci:([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4})(?::([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4}))?$"
)
_PATH_SPEC_RE = re.compile(
    r"^(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])"
    r"((?:/[0-9a-fA-F]{1,2}\.[0-7])*)$"
)


@attrs.frozen
class IdSpec:
    """``pci:VVVV:DDDD[:SVVV:SDDD]`` of ``pci_dev_str_match``: 0 matches any."""

    vendor: int
    device: int
    subsystem_vendor: int = 0
    subsystem_device: int = 0

    def matches(self, fn: PciFunction, topology: Topology) -> bool:
        """Whether ``fn``'s ids match."""
        return (
            (not self.vendor or self.vendor == fn.vendor)
            and (not self.device or self.device == fn.device)
            and (not self.subsystem_vendor or self.subsystem_vendor == fn.subsystem_vendor)
            and (not self.subsystem_device or self.subsystem_device == fn.subsystem_device)
        )


@attrs.frozen
class PathSpec:
    """``[DDDD:]BB:SS.F[/SS.F...]`` of ``pci_dev_str_match_path``.

    The last element is the device's own devfn, each earlier one its
    upstream bridge's (``pci_upstream_bridge``: a VF's PF's), the first a
    full address.
    """

    domain: int
    bus: int
    devfn: int
    path: tuple[int, ...]

    def matches(self, fn: PciFunction, topology: Topology) -> bool:
        """Whether ``fn`` sits at this path."""
        dev: PciFunction | None = fn
        for devfn in reversed(self.path):
            assert dev is not None
            if dev.address.devfn != devfn:
                return False
            dev = topology.upstream_bridge(dev)
            if dev is None:
                return False
        assert dev is not None
        a = dev.address
        return (a.domain, a.bus, a.devfn) == (self.domain, self.bus, self.devfn)


@attrs.frozen
class AcsEntry:
    """One ``FLAGS@DEVICE`` entry: the controls it sets (``mask``) to ``flags``."""

    text: str
    mask: AcsFlags
    flags: AcsFlags
    device: IdSpec | PathSpec


def _devfn(slot: str, func: str, where: str) -> int:
    s = int(slot, 16)
    if s > 0x1F:
        raise ParameterError(f"{where}: device number {slot} is above 1f")
    return s << 3 | int(func)


def _parse_dev_spec(text: str, where: str) -> IdSpec | PathSpec:
    m = _ID_SPEC_RE.match(text)
    if m is not None:
        return IdSpec(*(int(g, 16) if g is not None else 0 for g in m.groups()))
    m = _PATH_SPEC_RE.match(text)
    if m is not None:
        parts = [part.split(".") for part in m[5].split("/")[1:] if part]
        path = tuple(_devfn(slot, func, where) for slot, func in parts)
        return PathSpec(int(m[1] or "0", 16), int(m[2], 16), _devfn(m[3], m[4], where), path)
    raise ParameterError(
        f"{where}: cannot parse the device {text!r} (expected [DDDD:]BB:SS.F[/SS.F...] or "
        "pci:VVVV:DDDD[:SVVV:SDDD]; the kernel says 'Can't parse ACS command line parameter')"
    )


def parse_config_acs(spec: str) -> tuple[AcsEntry, ...]:
    """The entries of a ``pci=config_acs=`` value (``__pci_config_acs``'s parsing).

    Where the kernel gives up and configures nothing, this raises.

    Raises:
        ParameterError: the value cannot be parsed (the message says what
            the kernel would print).

    >>> [(e.mask.names(), e.flags.names()) for e in parse_config_acs("1x1x1@00:1c.0")]
    [('SV|RR|UF', 'SV|RR|UF')]
    """
    spec = spec.strip()
    if not spec:
        raise ParameterError("config_acs: empty specification (expected FLAGS@DEVICE[;...])")
    if "," in spec:
        raise ParameterError(
            f"config_acs: {spec!r} contains ',': that ends the pci= option; "
            "separate entries with ';'"
        )
    entries: list[AcsEntry] = []
    for raw in spec.split(";"):
        where = f"config_acs entry {raw!r}"
        if "@" not in raw:
            raise ParameterError(
                f"{where}: flags missing (expected FLAGS@DEVICE; the kernel says 'ACS Flags "
                "missing' and configures nothing)"
            )
        flags_text, _, dev_text = raw.partition("@")
        mask = flags = 0
        for shift, ch in enumerate(reversed(flags_text)):
            if ch in "xX":
                continue
            if ch not in "01":
                raise ParameterError(
                    f"{where}: {ch!r} is not 0, 1 or x (the kernel says 'Invalid ACS flags... "
                    "Ignoring' and configures nothing)"
                )
            if shift > 6:
                raise ParameterError(
                    f"{where}: bit {shift} does not exist (bits 0-6: SV TB RR CR UF EC DT; the "
                    "kernel says 'Invalid ACS flags specified' and configures nothing)"
                )
            mask |= 1 << shift
            if ch == "1":
                flags |= 1 << shift
        entries.append(
            AcsEntry(
                raw,
                AcsFlags.from_word(mask),
                AcsFlags.from_word(flags),
                _parse_dev_spec(dev_text, where),
            )
        )
    return tuple(entries)


@attrs.frozen
class SptRedirCheck:
    """``pci_quirk_intel_spt_pch_acs`` after ``pci_quirk_disable_intel_spt_pch_acs_redir``.

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
            ctrl |= cap & REQ_ACS_FLAGS
        ctrl &= ~(AcsFlags.RR | AcsFlags.CR | AcsFlags.EC)
        return pci_acs_ctrl_enabled(flags & (cap | AcsFlags.EC), ctrl)


@attrs.frozen
class ConfigAcsResult:
    """What ``pci=config_acs=`` does to a topology.

    Attributes:
        functions: the functions, with the configured ACS controls.
        quirk: the redirect workaround's quirk for the Sunrise Point PCH root
            ports an entry matched, to try first (``None``: none matched).
        spt: those ports.
        matched: per entry, the devices it matched (the first matching
            entry wins).
        without_acs: per entry, the matched devices it left alone because
            they have no ACS capability.
    """

    functions: tuple[PciFunction, ...]
    quirk: AcsQuirk | None
    spt: tuple[PciAddress, ...]
    matched: tuple[tuple[PciAddress, ...], ...]
    without_acs: tuple[tuple[PciAddress, ...], ...]


def config_acs(
    topology: Topology, entries: tuple[AcsEntry, ...], firmware_ctrl: AcsFlags | None = None
) -> ConfigAcsResult:
    """``pci_enable_acs`` -> ``__pci_config_acs`` on every function of ``topology``.

    Args:
        topology: the machine.
        entries: from :func:`parse_config_acs`.
        firmware_ctrl: the firmware's control value the ``x`` bits keep;
            ``None``: each device's recorded ``Acs.ctrl`` stands for it.
    """
    matched: list[list[PciAddress]] = [[] for _ in entries]
    without_acs: list[list[PciAddress]] = [[] for _ in entries]
    spt: list[PciAddress] = []
    out: list[PciFunction] = []
    for fn in topology.functions:
        index = next((i for i, e in enumerate(entries) if e.device.matches(fn, topology)), None)
        if index is None:
            out.append(fn)
            continue
        matched[index].append(fn.address)
        if fn.acs is None:  # pci_enable_acs: no dev->acs_cap, nothing to configure
            without_acs[index].append(fn.address)
            out.append(fn)
            continue
        if fn.vendor == _VENDOR_INTEL and pci_quirk_intel_spt_pch_acs_match(fn):
            spt.append(fn.address)
            out.append(fn)
            continue
        entry = entries[index]
        fw = fn.acs.ctrl if firmware_ctrl is None else firmware_ctrl
        ctrl = ((fw & ~entry.mask) | (entry.flags & entry.mask)) & fn.acs.cap
        out.append(attrs.evolve(fn, acs=Acs(fn.acs.cap, ctrl)))
    quirk = None
    if spt:
        quirk = AcsQuirk(
            _VENDOR_INTEL,
            None,
            "pci_quirk_disable_intel_spt_pch_acs_redir",
            SptRedirCheck(frozenset(spt)),
        )
    return ConfigAcsResult(
        tuple(out),
        quirk,
        tuple(spt),
        tuple(map(tuple, matched)),
        tuple(map(tuple, without_acs)),
    )
