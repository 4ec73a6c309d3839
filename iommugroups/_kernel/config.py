"""Build :class:`PciFunction` values from raw PCI configuration space.

This mirrors what the kernel reads when it adds a device:
``pci_setup_device`` (ids, class, header type, multifunction bit, subsystem
ids), ``set_pcie_port_type`` (the PCIe capability's device/port type),
``pci_scan_bridge`` (a bridge's secondary/subordinate bus),
``pci_cfg_space_size`` (does extended config space exist at all),
``pci_find_capability`` / ``pci_find_ext_capability`` (the capability walks,
with the same pointer masking and loop guards: ``PCI_FIND_CAP_TTL`` = 48 for
the standard list, ``(4096 - 256) / 8`` = 480 for the extended list),
``pci_acs_init`` (the ACS capability) and ``sriov_init`` (the SR-IOV
capability of a PF). :func:`functions_from_configs` then places SR-IOV VFs
the way ``pci_iov_add_virtfn`` does, using ``pci_iov_virtfn_bus`` /
``pci_iov_virtfn_devfn``.

Input may be truncated or hostile. Decoding never loops forever and never
guesses silently: it either raises :class:`~iommugroups.ConfigSpaceError`,
or it records what it could not read in :attr:`PciFunction.unknown`.
**Callers must treat a name in** ``unknown`` **as unknown**, not as the
absent/default value the corresponding field holds (``acs=None`` next to
``"acs" in unknown`` means "could not tell", not "no ACS").

Names used in ``unknown``:

* ``"pcie"``: whether there is a PCIe capability, or its port type, could not
  be read (``pcie_type`` is ``None``). Also used for a PCIe capability that
  reports a reserved device/port type, which :class:`PcieType` cannot hold.
* ``"acs"``: the ACS extended capability could not be read (``acs`` is
  ``None``).
* ``"sriov"``: the SR-IOV extended capability could not be read (``sriov``
  is ``None``).
* ``"subsystem"``: the subsystem ids could not be read (both are 0).
* ``"class"``: an SR-IOV VF whose whole config space reads all-ones (its PF
  was removed): its class code is its PF's.

Degradation table (what is readable -> what is unknown):

=================================================  ===========================
Readable configuration space                       Result
=================================================  ===========================
fewer than 64 bytes, more than 4096 bytes          ``ConfigSpaceError``
vendor id 0xffff (``decode_config`` only)          ``ConfigSpaceError``: a VF or
                                                   no device; see
                                                   :func:`functions_from_configs`
ids 0x00000000 / 0xffff0000                        ``ConfigSpaceError`` (the
                                                   kernel sees an empty slot)
header type other than 0, 1, 2                     ``ConfigSpaceError`` (the
                                                   kernel ignores the device)
64 bytes (non-root sysfs read, ``lspci -x``),      ``{"pcie", "acs", "sriov"}``
capability list present (status bit 4 set and      (plus ``"subsystem"`` for a
first pointer >= 0x40)                             bridge or CardBus bridge)
64 bytes, no capability list                       nothing: conventional PCI,
                                                   no extended space (a host
                                                   bridge, class 0x0600, gets
                                                   ``{"acs"}``)
256 bytes, PCIe endpoint / RCiEP                   ``{"acs", "sriov"}``
256 bytes, other PCIe port types                   ``{"acs"}`` (only endpoints
                                                   can be PFs)
256 bytes, conventional PCI                        nothing: ``acs=None`` (a
                                                   host bridge: ``{"acs"}``)
any size, below a bridge that cannot forward       nothing: no extended
extended config requests (conventional or          capabilities, as the kernel
PCIe-to-PCI bridge; ``functions_from_configs``)    (``PCI_BUS_FLAGS_NO_EXTCFG``)
standard-capability chain runs out of the buffer   the capabilities not reached
(or into a gap)                                    (``"pcie"``, then the
                                                   extended ones it decides;
                                                   ``"subsystem"`` for bridges)
extended chain runs out of the buffer / a gap      the extended capabilities
                                                   not reached
a capability found, its registers beyond the data  that capability's name
capability loop, TTL exhausted                     nothing: like the kernel,
                                                   the capability is absent
pointer < 0x40 (standard) / < 0x100 (extended)     end of list, as the kernel
dword 0x100 is 0, 0xffffffff, or aliases dword 0   no extended capabilities
=================================================  ===========================

Readable bytes need not be contiguous: a :class:`ConfigSpace` can carry
holes (e.g. missing lines of an ``lspci`` dump); a read touching a hole is
treated exactly like a read past the end.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .._errors import ConfigSpaceError
from .model import (
    HEADER_BRIDGE,
    HEADER_CARDBUS,
    HEADER_NORMAL,
    Acs,
    AcsFlags,
    PciAddress,
    PcieType,
    PciFunction,
    SriovCapability,
)

__all__ = [
    "ConfigSpace",
    "decode_config",
    "functions_from_configs",
]

# Register layout, include/uapi/linux/pci_regs.h.
PCI_VENDOR_ID = 0x00
PCI_STATUS = 0x06
PCI_STATUS_CAP_LIST = 0x10
PCI_CLASS_REVISION = 0x08
PCI_HEADER_TYPE = 0x0E
PCI_SECONDARY_BUS = 0x19
PCI_SUBORDINATE_BUS = 0x1A
PCI_SUBSYSTEM_VENDOR_ID = 0x2C
PCI_SUBSYSTEM_ID = 0x2E
PCI_CAPABILITY_LIST = 0x34
PCI_CB_CAPABILITY_LIST = 0x14
PCI_CB_SUBSYSTEM_VENDOR_ID = 0x40
PCI_CB_SUBSYSTEM_ID = 0x42
PCI_STD_HEADER_SIZEOF = 0x40
PCI_CFG_SPACE_SIZE = 0x100
PCI_CFG_SPACE_EXP_SIZE = 0x1000

PCI_FIND_CAP_TTL = 48
#: ``pci_find_next_ext_capability``: "minimum 8 bytes per capability".
PCI_FIND_EXT_CAP_TTL = (PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) // 8

PCI_CAP_ID_PCIX = 0x07
PCI_CAP_ID_SSVID = 0x0D
PCI_CAP_ID_EXP = 0x10
PCI_SSVID_VENDOR_ID = 4
PCI_SSVID_DEVICE_ID = 6
PCI_X_STATUS = 4
PCI_X_STATUS_266MHZ = 0x40000000
PCI_X_STATUS_533MHZ = 0x80000000
PCI_EXP_FLAGS = 2
PCI_EXP_FLAGS_TYPE = 0x00F0

PCI_EXT_CAP_ID_ACS = 0x000D
PCI_EXT_CAP_ID_SRIOV = 0x0010
PCI_ACS_CAP = 4
PCI_ACS_CTRL = 6
PCI_SRIOV_TOTAL_VF = 0x0E
PCI_SRIOV_NUM_VF = 0x10
PCI_SRIOV_VF_OFFSET = 0x14
PCI_SRIOV_VF_STRIDE = 0x16
PCI_SRIOV_VF_DID = 0x1A

PCI_CLASS_BRIDGE_HOST = 0x0600
PCI_CLASS_BRIDGE_PCI = 0x0604
PCI_CLASS_BRIDGE_CARDBUS = 0x0607
PCI_CLASS_NOT_DEFINED = 0x0000

#: Port types whose ACS-free secondary side is still PCIe
#: (``pci_bridge_child_ext_cfg_accessible``).
_PCIE_BOTH_SIDES = (PcieType.ROOT_PORT, PcieType.UPSTREAM, PcieType.DOWNSTREAM)
#: ``sriov_init`` only accepts these.
_PF_TYPES = (PcieType.ENDPOINT, PcieType.RC_END)
_PCIE_TYPES = frozenset(int(t) for t in PcieType)


def _holes_converter(value: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    holes = []
    for start, end in value:
        if not (0 <= start <= end):
            raise ValueError(f"bad hole [{start:#x}, {end:#x})")
        if end > start:
            holes.append((start, end))
    return tuple(sorted(holes))


@attrs.frozen
class ConfigSpace:
    """Raw configuration space, possibly with unreadable stretches.

    Args:
        data: the bytes from offset 0; everything past ``len(data)`` is
            unreadable.
        holes: half-open ``(start, end)`` offset ranges inside ``data`` that
            could not be read (their bytes in ``data`` are placeholders).

    >>> cs = ConfigSpace.from_chunks({0: bytes(64), 0x100: bytes(16)})
    >>> len(cs.data), cs.holes
    (272, ((64, 256),))
    >>> cs.readable(0x3C, 4), cs.readable(0x3C, 8)
    (True, False)
    """

    data: bytes = attrs.field(converter=bytes)
    holes: tuple[tuple[int, int], ...] = attrs.field(default=(), converter=_holes_converter)

    @classmethod
    def from_chunks(cls, chunks: Mapping[int, bytes]) -> ConfigSpace:
        """Assemble from ``{offset: bytes}`` pieces; what lies between is a hole.

        Raises:
            ValueError: pieces overlap or an offset is negative.
        """
        buf = bytearray()
        holes: list[tuple[int, int]] = []
        for offset in sorted(chunks):
            piece = chunks[offset]
            if offset < len(buf) or offset < 0:
                raise ValueError(f"config space piece at {offset:#x} overlaps the previous one")
            if offset > len(buf):
                holes.append((len(buf), offset))
                buf.extend(b"\xff" * (offset - len(buf)))
            buf.extend(piece)
        return cls(bytes(buf), tuple(holes))

    def readable(self, offset: int, size: int) -> bool:
        """Can ``size`` bytes at ``offset`` be read?"""
        end = offset + size
        if offset < 0 or end > len(self.data):
            return False
        return all(end <= h_start or offset >= h_end for h_start, h_end in self.holes)

    def readable_bytes(self) -> bytes:
        """All readable bytes, concatenated (for the all-ones test)."""
        if not self.holes:
            return self.data
        parts = []
        pos = 0
        for h_start, h_end in self.holes:
            parts.append(self.data[pos:h_start])
            pos = max(pos, h_end)
        parts.append(self.data[pos:])
        return b"".join(parts)


#: What a function's configuration space may be given as.
ConfigData = bytes | bytearray | memoryview | ConfigSpace


def _as_space(data: ConfigData) -> ConfigSpace:
    if isinstance(data, ConfigSpace):
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return ConfigSpace(bytes(data))
    raise TypeError(f"configuration space must be bytes or ConfigSpace, not {type(data).__name__}")


class _AddressedConfigSpaceError(ConfigSpaceError):
    """A :class:`ConfigSpaceError` that knows which function it is about."""

    def __init__(self, address: PciAddress, problem: str) -> None:
        super().__init__(f"{address}: {problem}")
        self.address = address
        self.problem = problem


class _Reader:
    """Little-endian reads that answer ``None`` for unreadable bytes."""

    def __init__(self, space: ConfigSpace) -> None:
        self.space = space

    def u8(self, offset: int) -> int | None:
        if not self.space.readable(offset, 1):
            return None
        return self.space.data[offset]

    def u16(self, offset: int) -> int | None:
        if not self.space.readable(offset, 2):
            return None
        return int(struct.unpack_from("<H", self.space.data, offset)[0])

    def u32(self, offset: int) -> int | None:
        if not self.space.readable(offset, 4):
            return None
        return int(struct.unpack_from("<I", self.space.data, offset)[0])


@attrs.frozen
class _CapList:
    """Result of walking a capability list: first position per id.

    ``complete`` is false when the walk hit an unreadable pointer before it
    ended; ids not in ``found`` are then unknown rather than absent.
    """

    found: dict[int, int]
    complete: bool

    def lookup(self, cap_id: int) -> tuple[int | None, bool]:
        """``(position or None, known)`` for one capability id."""
        pos = self.found.get(cap_id)
        if pos is not None:
            return pos, True
        return None, self.complete


_NO_CAPS = _CapList({}, True)
_UNREADABLE_CAPS = _CapList({}, False)


def _walk_std_caps(rd: _Reader, header_type: int) -> _CapList:
    """``pci_find_capability`` for every id at once.

    ``__pci_bus_find_cap_start`` (status bit ``PCI_STATUS_CAP_LIST``; list
    head at 0x34, or 0x14 for CardBus) then ``__pci_find_next_cap_ttl``:
    stop below 0x40, mask the pointer with ``~3``, stop at id 0xff, at most
    ``PCI_FIND_CAP_TTL`` steps. The kernel searches per id and stops at the
    first match; recording first positions in one walk is equivalent.
    """
    status = rd.u16(PCI_STATUS)
    if status is None:
        return _UNREADABLE_CAPS
    if not status & PCI_STATUS_CAP_LIST:
        return _NO_CAPS
    start = PCI_CB_CAPABILITY_LIST if header_type == HEADER_CARDBUS else PCI_CAPABILITY_LIST
    pos = rd.u8(start)
    if pos is None:
        return _UNREADABLE_CAPS
    found: dict[int, int] = {}
    for _ in range(PCI_FIND_CAP_TTL):
        if pos < PCI_STD_HEADER_SIZEOF:
            break
        pos &= ~3
        ent = rd.u16(pos)
        if ent is None:
            return _CapList(found, False)
        cap_id = ent & 0xFF
        if cap_id == 0xFF:
            break
        found.setdefault(cap_id, pos)
        pos = ent >> 8
    return _CapList(found, True)


def _walk_ext_caps(rd: _Reader, header: int) -> _CapList:
    """``pci_find_ext_capability`` for every id at once.

    ``header`` is the dword at 0x100. A header of 0 means no capabilities;
    the next pointer is ``(header >> 20) & 0xffc`` and the walk stops below
    0x100, on an unreadable header, or after ``PCI_FIND_EXT_CAP_TTL`` steps.
    """
    if header == 0:
        return _NO_CAPS
    pos = PCI_CFG_SPACE_SIZE
    found: dict[int, int] = {}
    for _ in range(PCI_FIND_EXT_CAP_TTL):
        found.setdefault(header & 0xFFFF, pos)
        pos = (header >> 20) & 0xFFC
        if pos < PCI_CFG_SPACE_SIZE:
            break
        nxt = rd.u32(pos)
        if nxt is None:
            return _CapList(found, False)
        header = nxt
    return _CapList(found, True)


def _ext_cfg_aliased(rd: _Reader, header: int) -> bool | None:
    """``pci_ext_cfg_is_aliased``: does every 256-byte block repeat dword 0?

    ``None`` when the readable blocks all repeat it but some are unreadable.
    """
    first = rd.u32(PCI_VENDOR_ID)
    if first is None or header != first:
        return False
    unknown = False
    for pos in range(PCI_CFG_SPACE_SIZE, PCI_CFG_SPACE_EXP_SIZE, PCI_CFG_SPACE_SIZE):
        value = rd.u32(pos)
        if value is None:
            unknown = True
        elif value != first:
            return False
    return None if unknown else True


@attrs.frozen
class _Decoded:
    """A decoded function plus what :func:`functions_from_configs` needs."""

    fn: PciFunction
    #: PCIe capability present (``pci_is_pcie``); ``None`` if unknown.
    is_pcie: bool | None
    #: PCI-X capability reporting 266/533 MHz (PCI-X Mode 2).
    pcix_mode2: bool | None


def _unknown(names: Iterable[str]) -> Any:
    """``frozenset(names)`` for ``PciFunction.unknown``.

    Typed ``Any`` because the model's ``converter=frozenset`` leaves mypy an
    unsolvable type variable for that argument.
    """
    return frozenset(names)


def _check_size(address: PciAddress, space: ConfigSpace) -> None:
    n = len(space.data)
    if n < PCI_STD_HEADER_SIZEOF:
        raise _AddressedConfigSpaceError(
            address,
            f"only {n} bytes of configuration space; the standard header needs "
            f"{PCI_STD_HEADER_SIZEOF}",
        )
    if n > PCI_CFG_SPACE_EXP_SIZE:
        raise _AddressedConfigSpaceError(
            address,
            f"{n} bytes of configuration space; PCI configuration space has at most "
            f"{PCI_CFG_SPACE_EXP_SIZE}",
        )


def _required(address: PciAddress, value: int | None, what: str) -> int:
    if value is None:
        raise _AddressedConfigSpaceError(address, f"the {what} cannot be read")
    return value


def _decode(
    address: PciAddress,
    space: ConfigSpace,
    driver: str | None,
    *,
    virtfn: bool = False,
) -> _Decoded:
    """``pci_setup_device`` and the capability set-up that grouping needs.

    With ``virtfn`` (an SR-IOV VF being added by ``pci_iov_add_virtfn``) the
    vendor/device ids are not checked (a VF reads 0xffff; the caller
    substitutes the PF's), the config space counts as extended
    (``pci_cfg_space_size`` returns 4096 for a VF) and no SR-IOV capability
    is looked for.
    """
    _check_size(address, space)
    rd = _Reader(space)
    unknown: set[str] = set()

    ids = _required(address, rd.u32(PCI_VENDOR_ID), "vendor/device id")
    vendor, device = ids & 0xFFFF, ids >> 16
    if not virtfn:
        # pci_bus_generic_read_dev_vendor_id: these read as an empty slot.
        if ids in (0x00000000, 0xFFFF0000):
            raise _AddressedConfigSpaceError(
                address, f"vendor/device id reads {ids:#010x}: the kernel sees an empty slot"
            )
        if vendor == 0xFFFF:
            raise _AddressedConfigSpaceError(
                address,
                "vendor id reads 0xffff: no device, or an SR-IOV VF, which only its PF's "
                "SR-IOV capability can identify (decode it with functions_from_configs, "
                "together with its PF)",
            )

    class_revision = _required(address, rd.u32(PCI_CLASS_REVISION), "class code")
    raw_class = class_revision >> 8
    hdr = _required(address, rd.u8(PCI_HEADER_TYPE), "header type")
    header_type = hdr & 0x7F
    multifunction = bool(hdr & 0x80)
    if header_type not in (HEADER_NORMAL, HEADER_BRIDGE, HEADER_CARDBUS):
        raise _AddressedConfigSpaceError(
            address,
            f"unknown header type {header_type:#04x}; the kernel ignores such a device "
            "(pci_setup_device)",
        )
    if virtfn and header_type != HEADER_NORMAL:
        raise _AddressedConfigSpaceError(
            address, f"an SR-IOV VF with header type {header_type:#04x}; VFs have type 0"
        )

    # pci_setup_device: a class that contradicts the header type is dropped.
    class_code = raw_class
    cls16 = raw_class >> 8
    if (header_type == HEADER_NORMAL and cls16 == PCI_CLASS_BRIDGE_PCI) or (
        header_type == HEADER_CARDBUS and cls16 != PCI_CLASS_BRIDGE_CARDBUS
    ):
        class_code = PCI_CLASS_NOT_DEFINED << 8

    caps = _walk_std_caps(rd, header_type)

    # set_pcie_port_type
    pcie_type: PcieType | None = None
    exp_pos, exp_known = caps.lookup(PCI_CAP_ID_EXP)
    is_pcie: bool | None
    if exp_pos is not None:
        is_pcie = True
        flags = rd.u16(exp_pos + PCI_EXP_FLAGS)
        port = None if flags is None else (flags & PCI_EXP_FLAGS_TYPE) >> 4
        if port is not None and port in _PCIE_TYPES:
            pcie_type = PcieType(port)
        else:
            unknown.add("pcie")
    else:
        is_pcie = False if exp_known else None
        if not exp_known:
            unknown.add("pcie")

    # Subsystem ids (pci_setup_device, per header type).
    subsystem_vendor = subsystem_device = 0
    ss_vendor: int | None
    ss_device: int | None
    if header_type == HEADER_NORMAL:
        ss_vendor, ss_device = rd.u16(PCI_SUBSYSTEM_VENDOR_ID), rd.u16(PCI_SUBSYSTEM_ID)
    elif header_type == HEADER_CARDBUS:
        ss_vendor, ss_device = rd.u16(PCI_CB_SUBSYSTEM_VENDOR_ID), rd.u16(PCI_CB_SUBSYSTEM_ID)
    else:
        ssvid_pos, ssvid_known = caps.lookup(PCI_CAP_ID_SSVID)
        if ssvid_pos is not None:
            ss_vendor = rd.u16(ssvid_pos + PCI_SSVID_VENDOR_ID)
            ss_device = rd.u16(ssvid_pos + PCI_SSVID_DEVICE_ID)
        elif ssvid_known:
            ss_vendor = ss_device = 0
        else:
            ss_vendor = ss_device = None
    if ss_vendor is None or ss_device is None:
        unknown.add("subsystem")
    else:
        subsystem_vendor, subsystem_device = ss_vendor, ss_device

    # pci_scan_bridge: bus numbers of PCI-PCI and CardBus bridges.
    secondary_bus = subordinate_bus = None
    if header_type in (HEADER_BRIDGE, HEADER_CARDBUS):
        secondary_bus = _required(address, rd.u8(PCI_SECONDARY_BUS), "secondary bus number")
        subordinate_bus = _required(address, rd.u8(PCI_SUBORDINATE_BUS), "subordinate bus number")

    # PCI-X Mode 2 (decides extended config space for conventional devices).
    pcix_pos, pcix_known = caps.lookup(PCI_CAP_ID_PCIX)
    pcix_mode2: bool | None
    if pcix_pos is not None:
        pcix_status = rd.u32(pcix_pos + PCI_X_STATUS)
        pcix_mode2 = (
            None
            if pcix_status is None
            else bool(pcix_status & (PCI_X_STATUS_266MHZ | PCI_X_STATUS_533MHZ))
        )
    else:
        pcix_mode2 = False if pcix_known else None

    # pci_cfg_space_size: is there extended configuration space?
    ext: _CapList
    header100 = rd.u32(PCI_CFG_SPACE_SIZE)
    if virtfn:
        ext = _UNREADABLE_CAPS if header100 is None else _walk_ext_caps(rd, header100)
    else:
        candidate: bool | None
        if cls16 == PCI_CLASS_BRIDGE_HOST or is_pcie or pcix_mode2:
            candidate = True
        elif is_pcie is False and pcix_mode2 is False:
            candidate = False
        else:
            candidate = None
        if candidate is False:
            ext = _NO_CAPS
        elif header100 is None:
            ext = _UNREADABLE_CAPS
        elif header100 in (0, 0xFFFFFFFF):  # no capabilities / no extended space
            ext = _NO_CAPS
        else:
            aliased = _ext_cfg_aliased(rd, header100)
            if aliased:
                ext = _NO_CAPS
            elif aliased is None or candidate is None:
                ext = _UNREADABLE_CAPS
            else:
                ext = _walk_ext_caps(rd, header100)

    # pci_acs_init
    acs: Acs | None = None
    acs_pos, acs_known = ext.lookup(PCI_EXT_CAP_ID_ACS)
    if acs_pos is not None:
        cap_word = rd.u16(acs_pos + PCI_ACS_CAP)
        ctrl_word = rd.u16(acs_pos + PCI_ACS_CTRL)
        if cap_word is None or ctrl_word is None:
            unknown.add("acs")
        else:
            acs = Acs(cap=AcsFlags.from_word(cap_word), ctrl=AcsFlags.from_word(ctrl_word))
    elif not acs_known:
        unknown.add("acs")

    # pci_iov_init / sriov_init (PCIe endpoints and RCiEPs only).
    sriov: SriovCapability | None = None
    if not virtfn and is_pcie is not False:
        if pcie_type is not None and pcie_type not in _PF_TYPES:
            pass  # sriov_init refuses other port types: known absent
        else:
            sriov_pos, sriov_known = ext.lookup(PCI_EXT_CAP_ID_SRIOV)
            if sriov_pos is not None and pcie_type is None:
                unknown.add("sriov")  # cannot tell whether sriov_init accepts it
            elif sriov_pos is not None:
                sriov, readable = _read_sriov(rd, sriov_pos)
                if not readable:
                    unknown.add("sriov")
            elif not sriov_known:
                unknown.add("sriov")

    fn = PciFunction(
        address=address,
        vendor=vendor,
        device=device,
        class_code=class_code,
        header_type=header_type,
        multifunction=multifunction,
        pcie_type=pcie_type,
        acs=acs,
        sriov=sriov,
        driver=driver,
        secondary_bus=secondary_bus,
        subordinate_bus=subordinate_bus,
        subsystem_vendor=subsystem_vendor,
        subsystem_device=subsystem_device,
        unknown=_unknown(unknown),
        capabilities=frozenset(caps.found),
        revision=class_revision & 0xFF,
    )
    return _Decoded(fn, is_pcie, pcix_mode2)


def _read_sriov(rd: _Reader, pos: int) -> tuple[SriovCapability | None, bool]:
    """``sriov_init``: ``(capability or None, readable)``.

    The kernel ignores the capability when TotalVFs is 0, when First VF
    Offset is 0, or when the VF Stride is 0 with more than one VF
    (``compute_max_vf_buses``). NumVFs above TotalVFs cannot be written
    through the kernel; it is clamped to TotalVFs.
    """
    total = rd.u16(pos + PCI_SRIOV_TOTAL_VF)
    num = rd.u16(pos + PCI_SRIOV_NUM_VF)
    offset = rd.u16(pos + PCI_SRIOV_VF_OFFSET)
    stride = rd.u16(pos + PCI_SRIOV_VF_STRIDE)
    vf_device = rd.u16(pos + PCI_SRIOV_VF_DID)
    if total is None or num is None or offset is None or stride is None or vf_device is None:
        return None, False
    if total == 0 or offset == 0 or (total > 1 and stride == 0):
        return None, True
    return SriovCapability(
        total_vfs=total,
        num_vfs=min(num, total),
        offset=offset,
        stride=stride,
        vf_device=vf_device,
    ), True


def decode_config(
    address: PciAddress, data: ConfigData, *, driver: str | None = None
) -> PciFunction:
    """Decode one function's raw configuration space, as ``pci_setup_device`` does.

    Args:
        address: where the function sits.
        data: its configuration space from offset 0 (64, 256 or 4096 bytes
            usually; any length from 64 to 4096 is accepted, bytes past the
            end count as unreadable), or a :class:`ConfigSpace` with holes.
        driver: the bound driver, if known.

    Returns:
        The function. What could not be read is named in ``unknown`` (see the
        module documentation for the table); callers must treat those facts
        as unknown.

    Raises:
        ConfigSpaceError: fewer than 64 or more than 4096 bytes, an unknown
            header type, ids that read as an empty slot, or vendor id 0xffff
            (an SR-IOV VF cannot be identified on its own: use
            :func:`functions_from_configs`).

    >>> cfg = bytearray(64)
    >>> cfg[0:4] = bytes.fromhex("8680d310")      # 8086:10d3
    >>> cfg[9:12] = bytes.fromhex("000002")       # class 0x020000
    >>> fn = decode_config(PciAddress.parse("01:00.0"), bytes(cfg))
    >>> hex(fn.vendor), hex(fn.device), hex(fn.class_code), fn.pcie_type, fn.unknown
    ('0x8086', '0x10d3', '0x20000', None, frozenset())
    """
    return _decode(address, _as_space(data), driver).fn


def _items(
    configs: Mapping[PciAddress, ConfigData] | Iterable[tuple[PciAddress, ConfigData]],
) -> list[tuple[PciAddress, ConfigSpace]]:
    pairs = configs.items() if isinstance(configs, Mapping) else configs
    out: list[tuple[PciAddress, ConfigSpace]] = []
    seen: set[PciAddress] = set()
    for address, data in pairs:
        if not isinstance(address, PciAddress):
            raise TypeError(f"expected a PciAddress, got {address!r}")
        if address in seen:
            raise _AddressedConfigSpaceError(address, "configuration space given twice")
        seen.add(address)
        out.append((address, _as_space(data)))
    return out


def functions_from_configs(
    configs: Mapping[PciAddress, ConfigData] | Iterable[tuple[PciAddress, ConfigData]],
    drivers: Mapping[PciAddress, str] | None = None,
) -> tuple[PciFunction, ...]:
    """Decode many functions and identify SR-IOV VFs, as the kernel does.

    Every function is decoded with :func:`decode_config`'s rules, except that
    a function whose vendor id reads 0xffff is taken to be an SR-IOV VF: it
    belongs to the PF whose SR-IOV capability (NumVFs > 0) places a VF at its
    routing id, ``pci_iov_virtfn_bus/devfn``: ``PF RID + offset + i * stride``
    for ``i < NumVFs``. Like ``pci_iov_add_virtfn``, the VF gets the PF's
    vendor id, the SR-IOV VF Device ID as device id, and
    ``multifunction=False``; its class code and subsystem ids come from VF 0's
    configuration space (``pci_read_vf_config_common``) when that is readable,
    else from its own. Its capabilities (PCIe, ACS) are its own.

    A VF whose configuration space reads all-ones throughout (its PF was
    removed and re-added, which also resets NumVFs) is matched against the PF's
    TotalVFs instead; its class and subsystem ids are then the PF's (named in
    ``unknown`` as ``"class"`` and ``"subsystem"``), its port type is the PF's
    and its ACS capability is unknown.

    Devices below a bridge that cannot forward extended configuration
    requests (``PCI_BUS_FLAGS_NO_EXTCFG``, ``pci_bridge_child_ext_cfg_accessible``:
    any bridge other than a root/switch port, unless it is PCI-X Mode 2) have
    no extended capabilities, whatever the data says, as on the kernel.

    Args:
        configs: address -> configuration space (bytes or
            :class:`ConfigSpace`), as a mapping or (address, data) pairs.
        drivers: address -> bound driver name, for the functions that have one.

    Returns:
        The functions, in input order.

    Raises:
        ConfigSpaceError: a function cannot be decoded (the message starts
            with its address), an address is given twice, or a 0xffff function
            is claimed by no PF, or by more than one.
    """
    items = _items(configs)
    drivers = drivers or {}
    decoded: dict[PciAddress, _Decoded] = {}
    vf_candidates: list[tuple[PciAddress, ConfigSpace]] = []
    for address, space in items:
        _check_size(address, space)
        vendor = _Reader(space).u16(PCI_VENDOR_ID)
        if vendor == 0xFFFF:
            vf_candidates.append((address, space))
        else:
            decoded[address] = _decode(address, space, drivers.get(address))

    vfs = _resolve_vfs(vf_candidates, decoded, drivers)
    _apply_no_extcfg(decoded)
    result = {addr: d.fn for addr, d in decoded.items()}
    result.update(vfs)
    return tuple(result[address] for address, _ in items)


#: Upper bound on the VF positions :func:`_vf_claims` may test (hostile input).
_VF_SEARCH_BUDGET = 1 << 22


def _vf_claims(
    pfs: list[PciFunction], candidates: list[PciAddress], *, use_total: bool
) -> dict[PciAddress, list[tuple[PciFunction, int]]]:
    """Which PFs place a VF at which candidate address, and as which VF index.

    VF ``i`` of a PF sits at routing id ``PF RID + offset + i * stride``
    (``pci_iov_virtfn_bus`` / ``pci_iov_virtfn_devfn``), ``i`` below NumVFs
    (or TotalVFs with ``use_total``), within the PF's domain and below
    0x10000. Per PF, the cheaper of "walk the candidates in its range" and
    "walk its VF indices" is taken, so ordinary inputs cost next to nothing;
    a hostile input that would need more than ``_VF_SEARCH_BUDGET`` steps is
    refused.

    Raises:
        ConfigSpaceError: the search budget is exhausted.
    """
    rids: dict[int, list[int]] = {}
    for a in candidates:
        rids.setdefault(a.domain, []).append(a.rid)
    for lst in rids.values():
        lst.sort()
    wanted = {(a.domain, a.rid) for a in candidates}
    out: dict[PciAddress, list[tuple[PciFunction, int]]] = {}
    budget = _VF_SEARCH_BUDGET
    for pf in pfs:
        sriov = pf.sriov
        assert sriov is not None
        count = sriov.total_vfs if use_total else sriov.num_vfs
        domain = pf.address.domain
        base = sriov.vf_rid(pf.address.rid, 0)
        if count == 0 or base > 0xFFFF or domain not in rids:
            continue
        stride = sriov.stride
        n_index = 1 if stride == 0 else min(count, (0xFFFF - base) // stride + 1)
        last = base + (n_index - 1) * stride
        lst = rids[domain]
        lo, hi = bisect.bisect_left(lst, base), bisect.bisect_right(lst, last)
        hits: list[tuple[int, int]] = []
        if hi - lo <= n_index:
            budget -= hi - lo
            if budget < 0:
                break
            for rid in lst[lo:hi]:
                index, rem = divmod(rid - base, stride) if stride else (0, rid - base)
                if rem == 0:
                    hits.append((rid, index))
        else:
            budget -= n_index
            if budget < 0:
                break
            hits = [
                (base + i * stride, i)
                for i in range(n_index)
                if (domain, base + i * stride) in wanted
            ]
        for rid, index in hits:
            address = PciAddress.from_devfn(domain, rid >> 8, rid & 0xFF)
            out.setdefault(address, []).append((pf, index))
    if budget < 0:
        raise ConfigSpaceError(
            "too many possible SR-IOV VF positions to check: the PFs' SR-IOV "
            "capabilities overlap beyond anything real hardware does"
        )
    return out


def _resolve_vfs(
    candidates: list[tuple[PciAddress, ConfigSpace]],
    decoded: Mapping[PciAddress, _Decoded],
    drivers: Mapping[PciAddress, str],
) -> dict[PciAddress, PciFunction]:
    pfs = [d.fn for d in decoded.values() if d.fn.sriov is not None]
    spaces = dict(candidates)
    by_num = _vf_claims(pfs, [a for a, _ in candidates], use_total=False)
    all_ones_vfs = [a for a, sp in candidates if set(sp.readable_bytes()) <= {0xFF}]
    by_total = _vf_claims(pfs, all_ones_vfs, use_total=True)

    def claims(address: PciAddress, use_total: bool) -> list[tuple[PciFunction, int]]:
        return (by_total if use_total else by_num).get(address, [])

    out: dict[PciAddress, PciFunction] = {}
    for address, space in candidates:
        all_ones = set(space.readable_bytes()) <= {0xFF}
        found = claims(address, use_total=False)
        if not found and all_ones:
            found = claims(address, use_total=True)
        if not found:
            raise _AddressedConfigSpaceError(
                address,
                "vendor id reads 0xffff but no PF's SR-IOV capability places a VF here "
                "(no device, or its PF is missing)",
            )
        if len(found) > 1:
            names = ", ".join(str(pf.address) for pf, _ in found)
            raise _AddressedConfigSpaceError(
                address, f"vendor id reads 0xffff and several PFs place a VF here: {names}"
            )
        pf, _index = found[0]
        sriov = pf.sriov
        assert sriov is not None
        driver = drivers.get(address)
        if all_ones:
            out[address] = PciFunction(
                address=address,
                vendor=pf.vendor,
                device=sriov.vf_device,
                class_code=pf.class_code,
                pcie_type=pf.pcie_type,
                physfn=pf.address,
                driver=driver,
                subsystem_vendor=pf.subsystem_vendor,
                subsystem_device=pf.subsystem_device,
                unknown=_unknown({"acs", "class", "subsystem"}),
            )
            continue
        own = _decode(address, space, driver, virtfn=True).fn
        class_code, ss_vendor, ss_device = (
            own.class_code,
            own.subsystem_vendor,
            own.subsystem_device,
        )
        unknown = set(own.unknown)
        vf0 = _vf0(pf, sriov, spaces)
        if vf0 is not None and vf0[0] != address:
            vf0_fn = _decode(vf0[0], vf0[1], None, virtfn=True).fn
            class_code = vf0_fn.class_code
            ss_vendor, ss_device = vf0_fn.subsystem_vendor, vf0_fn.subsystem_device
            unknown.discard("subsystem")
            if "subsystem" in vf0_fn.unknown:
                unknown.add("subsystem")
        pcie_type = own.pcie_type
        if pcie_type is None:
            # A VF is the same kind of function as its PF (SR-IOV 3.1: VFs
            # implement the PCIe capability; endpoints' VFs are endpoints).
            pcie_type = pf.pcie_type
            unknown.discard("pcie")
        out[address] = attrs.evolve(
            own,
            vendor=pf.vendor,
            device=sriov.vf_device,
            class_code=class_code,
            subsystem_vendor=ss_vendor,
            subsystem_device=ss_device,
            multifunction=False,  # pci_iov_add_virtfn: virtfn->multifunction = 0
            pcie_type=pcie_type,
            physfn=pf.address,
            sriov=None,
            unknown=_unknown(unknown),
        )
    return out


def _vf0(
    pf: PciFunction, sriov: SriovCapability, spaces: Mapping[PciAddress, ConfigSpace]
) -> tuple[PciAddress, ConfigSpace] | None:
    """VF 0's address and configuration space, if given and not all-ones."""
    rid = sriov.vf_rid(pf.address.rid, 0)
    if rid > 0xFFFF:
        return None
    address = PciAddress.from_devfn(pf.address.domain, rid >> 8, rid & 0xFF)
    space = spaces.get(address)
    if space is None or set(space.readable_bytes()) <= {0xFF}:
        return None
    return address, space


def _apply_no_extcfg(decoded: dict[PciAddress, _Decoded]) -> None:
    """``PCI_BUS_FLAGS_NO_EXTCFG``: drop extended capabilities the kernel cannot see.

    A bus gets the flag when the bridge above it sits on a flagged bus, or is
    not a PCIe root/switch port and not PCI-X Mode 2
    (``pci_bridge_child_ext_cfg_accessible``). Where the bridge's nature is
    unknown, nothing is changed.
    """
    bridges: dict[tuple[int, int], _Decoded] = {}
    for d in decoded.values():
        fn = d.fn
        if fn.is_bridge and fn.secondary_bus is not None:
            bridges.setdefault((fn.address.domain, fn.secondary_bus), d)

    memo: dict[tuple[int, int], bool | None] = {}

    def no_extcfg(key: tuple[int, int], depth: int = 0) -> bool | None:
        if key in memo:
            return memo[key]
        bridge = bridges.get(key)
        result: bool | None
        if bridge is None or depth > 256:  # root bus (or a cycle: let Topology report it)
            result = False
        else:
            fn = bridge.fn
            above = no_extcfg((fn.address.domain, fn.address.bus), depth + 1)
            own: bool | None
            if fn.pcie_type in _PCIE_BOTH_SIDES or bridge.pcix_mode2:
                own = False
            elif "pcie" in fn.unknown or bridge.pcix_mode2 is None:
                own = None
            else:
                own = True
            if above or own:
                result = True
            elif above is False and own is False:
                result = False
            else:
                result = None
        memo[key] = result
        return result

    for address, d in decoded.items():
        if no_extcfg((address.domain, address.bus)):
            fn = d.fn
            if fn.acs is not None or fn.sriov is not None or fn.unknown & {"acs", "sriov"}:
                decoded[address] = attrs.evolve(
                    d,
                    fn=attrs.evolve(
                        fn, acs=None, sriov=None, unknown=_unknown(fn.unknown - {"acs", "sriov"})
                    ),
                )
