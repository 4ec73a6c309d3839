"""``pcie_acs_override=``: the out-of-tree ACS override patch, as an ACS quirk (not upstream).

Models ``pcie_acs_overrides()`` of "PCI: Enable overrides for missing ACS
capabilities", a patch carried by distribution and community kernels and
never merged. Its exact behaviour, and the copies of it that were read, are
described in the docs ("Kernel parameters"). In short:

* the parameter is a comma-separated list of ``downstream``,
  ``multifunction`` and ``id:VVVV:DDDD`` (at most 15 ids are kept);
* the check is appended as the **last** entry of ``pci_dev_acs_enabled[]``,
  so every kernel quirk that answers for a device wins over it (R2.5);
* it answers nothing (``-ENOTTY``) for conventional PCI and for a device
  that *has* an ACS capability, enabled or not; otherwise "enabled" when
  the device's ids are listed, when it is a root or downstream port and
  ``downstream`` is on, or when it is a multifunction endpoint, upstream
  port, legacy endpoint or RCiEP (the kernel's ``dev->multifunction``, R5.6)
  and ``multifunction`` is on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from .._errors import ParameterError
from .model import AcsFlags, PcieType, PciFunction, Topology
from .quirks import AcsQuirk, QuirkContext

__all__ = ["MAX_OVERRIDE_IDS", "AcsOverrideCheck", "parse_acs_override"]

#: ``NUM_ACS_IDS - 1``: the ids the patch keeps.
MAX_OVERRIDE_IDS = 15

_ID_RE = re.compile(r"^id:([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$")
_PORT_TYPES = frozenset({PcieType.DOWNSTREAM, PcieType.ROOT_PORT})
_MF_TYPES = frozenset({PcieType.ENDPOINT, PcieType.UPSTREAM, PcieType.LEG_END, PcieType.RC_END})


def parse_acs_override(value: str | Iterable[str]) -> tuple[str, ...]:
    """``pcie_acs_override_setup``: the modes of a ``pcie_acs_override=`` value, normalised.

    Modes match as the patch reads them (each id field exactly four hex
    digits); duplicates are dropped. Unlike the kernel, which silently
    ignores an unknown option, an unknown mode is an error here.

    Raises:
        ParameterError: an unknown mode, no mode, or more ids than the patch keeps.

    >>> parse_acs_override("downstream, ID:8086:1234,downstream")
    ('downstream', 'id:8086:1234')
    """
    parts = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for raw in parts:
        mode = raw.strip().lower()
        if mode not in ("downstream", "multifunction") and not _ID_RE.match(mode):
            raise ParameterError(
                f"pcie_acs_override: unknown mode {raw.strip()!r} (expected downstream, "
                "multifunction or id:VVVV:DDDD with four hex digits each; the kernel would "
                "silently ignore it)"
            )
        if mode not in out:
            out.append(mode)
    if not out:
        raise ParameterError("pcie_acs_override: no mode given")
    if sum(m.startswith("id:") for m in out) > MAX_OVERRIDE_IDS:
        raise ParameterError(
            f"pcie_acs_override: more than {MAX_OVERRIDE_IDS} ids; the patch keeps "
            f"{MAX_OVERRIDE_IDS} (NUM_ACS_IDS - 1) and drops the rest "
            "('Out of PCIe ACS override slots')"
        )
    return tuple(out)


@attrs.frozen
class AcsOverrideCheck:
    """``pcie_acs_overrides(dev, acs_flags)`` of the patch, an ACS quirk check (R2.5).

    Attributes:
        downstream: root and downstream ports without an ACS capability count as isolated.
        multifunction: multifunction functions without one count as isolated.
        ids: (vendor, device) pairs whose functions without one count as isolated.
    """

    downstream: bool
    multifunction: bool
    ids: frozenset[tuple[int, int]]

    @classmethod
    def from_modes(cls, modes: Iterable[str]) -> AcsOverrideCheck:
        """The check for modes as :func:`parse_acs_override` returns them."""
        modes = tuple(modes)
        ids = frozenset((int(m[3:7], 16), int(m[8:12], 16)) for m in modes if m.startswith("id:"))
        return cls("downstream" in modes, "multifunction" in modes, ids)

    def covers(self, fn: PciFunction, topology: Topology) -> bool:
        """Whether ``fn`` is of a kind the override names, whatever its ACS capability."""
        if fn.pcie_type is None:
            return False
        if (fn.vendor, fn.device) in self.ids:
            return True
        if fn.pcie_type in _PORT_TYPES:
            return self.downstream
        return fn.pcie_type in _MF_TYPES and self.multifunction and topology.is_multifunction(fn)

    def __call__(self, fn: PciFunction, flags: AcsFlags, ctx: QuirkContext) -> bool | None:
        # "Never override ACS for legacy devices or devices with ACS caps"
        if fn.pcie_type is None or fn.acs is not None:
            return None
        return True if self.covers(fn, ctx.topology) else None

    def quirk(self) -> AcsQuirk:
        """The entry the patch appends to ``pci_dev_acs_enabled[]`` (any vendor, any device)."""
        return AcsQuirk(None, None, "pcie_acs_overrides", self)
