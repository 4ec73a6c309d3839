"""The data model: immutable, validated values in the kernel's vocabulary.

Nothing here knows about files. A :class:`Topology` is a set of PCI functions
(:class:`PciFunction`), optional non-PCI platform devices, and optional
firmware facts (IOMMU instances and an IORT-like RID -> stream-id mapping).

Vocabulary is the kernel's (see the rule table in the docs): a PCI device has
a domain, a bus number and a ``devfn``; buses have a ``self`` bridge (none for
root buses and for the virtual buses SR-IOV VFs can sit on); every "for each
PCI device" loop runs in *device-add order*.
"""

from __future__ import annotations

import contextvars
import enum
import itertools
import operator
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import attrs

from .._errors import InvalidAddress, TopologyError, UnknownDevice

__all__ = [
    "FULL_ACS",
    "REQ_ACS_FLAGS",
    "VMD_DEVICE_IDS",
    "VMD_DOMAIN_BASE",
    "VMD_VENDOR",
    "Acs",
    "AcsFlags",
    "BusConflict",
    "FwSpec",
    "IdMapping",
    "IommuInstance",
    "IommuKind",
    "IommuUnit",
    "MissingBridge",
    "PciAddress",
    "PciFunction",
    "PcieType",
    "Platform",
    "PlatformDevice",
    "SriovCapability",
    "Topology",
    "VmdDomain",
    "address_name",
    "full_name",
]

_ADDR_RE = re.compile(
    r"^(?:(?P<domain>[0-9a-fA-F]{1,8}):)?(?P<bus>[0-9a-fA-F]{1,2}):"
    r"(?P<dev>[0-9a-fA-F]{1,2})\.(?P<fn>[0-7])$"
)


class _Address(NamedTuple):
    domain: int
    bus: int
    device: int
    function: int


#: Addresses already written out (names key every lookup the analyses do, and
#: formatting one costs ten dictionary lookups); bounded, so a long-running
#: process reading many machines does not grow without end.
_NAMES: dict[_Address, str] = {}
_NAMES_MAX = 1 << 21


class PciAddress(_Address):
    """A PCI function address ``dddd:bb:dd.f`` (domain, bus, device, function).

    An immutable value; ordering is numeric (domain, bus, device, function),
    which is how group listings sort their members. (A tuple underneath:
    addresses key every lookup the grouping does, and tuples of ints hash
    and compare in C and cost the garbage collector nothing.)

    >>> PciAddress.parse("00:1c.0")
    PciAddress('0000:00:1c.0')
    >>> PciAddress.parse("0000:00:1c.4").devfn
    228
    >>> PciAddress(0, 0, 0x1c, 0) < PciAddress.parse("0000:00:1c.4")
    True
    """

    __slots__ = ()

    def __new__(cls, domain: int, bus: int, device: int, function: int) -> PciAddress:
        if (  # the usual case, checked at once; the loop below words any problem
            domain.__class__ is int
            and bus.__class__ is int
            and device.__class__ is int
            and function.__class__ is int
            and 0 <= domain <= 0xFFFFFFFF
            and 0 <= bus <= 0xFF
            and 0 <= device <= 0x1F
            and 0 <= function <= 7
        ):
            return tuple.__new__(cls, (domain, bus, device, function))
        for value, hi, what in (
            (domain, 0xFFFFFFFF, "domain"),
            (bus, 0xFF, "bus"),
            (device, 0x1F, "device"),
            (function, 7, "function"),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= hi:
                shown = f"{value:#x}" if isinstance(value, int) else repr(value)
                raise InvalidAddress(f"PCI {what} {shown} out of range 0-{hi:#x}")
        return super().__new__(cls, domain, bus, device, function)

    @classmethod
    def parse(cls, text: str) -> PciAddress:
        """Parse ``dddd:bb:dd.f`` or ``bb:dd.f`` (domain 0).

        Domains wider than four digits (Intel VMD, ``10000:e0:01.1``) are
        accepted.

        Raises:
            InvalidAddress: the text is not a PCI address.
        """
        m = _ADDR_RE.match(text.strip()) if isinstance(text, str) else None
        if m is None:
            raise InvalidAddress(f"not a PCI address: {text!r} (expected dddd:bb:dd.f or bb:dd.f)")
        return cls(int(m["domain"] or "0", 16), int(m["bus"], 16), int(m["dev"], 16), int(m["fn"]))

    @classmethod
    def from_devfn(cls, domain: int, bus: int, devfn: int) -> PciAddress:
        """Build an address from a bus number and an 8-bit ``devfn``."""
        return cls(domain, bus, devfn >> 3, devfn & 7)

    @property
    def devfn(self) -> int:
        """``slot << 3 | function``, as the kernel stores it."""
        return self[2] << 3 | self[3]

    def sort_key(self) -> tuple[int, int, int, int]:
        """A plain tuple that sorts like the address."""
        return (self[0], self[1], self[2], self[3])

    @property
    def rid(self) -> int:
        """The 16-bit requester id, ``bus << 8 | devfn``."""
        return self[1] << 8 | self[2] << 3 | self[3]

    def __str__(self) -> str:
        name = _NAMES.get(self)
        if name is None:
            name = address_name(self)
            if len(_NAMES) < _NAMES_MAX:
                _NAMES[self] = name
        return name

    def __repr__(self) -> str:
        return f"PciAddress({str(self)!r})"


def named_address(domain: int, bus: int, device: int, function: int, name: str) -> PciAddress:
    """The address, with ``name`` kept as its ``str`` (the text it was read from).

    For readers that meet an address written in full, in lower case
    (``dddd:bb:dd.f``, exactly what ``str`` would make): formatting it again
    later would cost ten times what keeping the text read costs.

    >>> a = named_address(0, 0x1C, 0, 4, "0000:1c:00.4")
    >>> str(a) == address_name(a)
    True
    """
    address = PciAddress(domain, bus, device, function)
    if len(_NAMES) < _NAMES_MAX:
        _NAMES[address] = name
    return address


def address_name(address: PciAddress) -> str:
    """``str(address)``, without keeping it (for names made once, of addresses that
    may not live long: the table ``str`` keeps them in would keep the addresses).

    >>> address_name(PciAddress(0x10000, 0xE0, 1, 1))
    '10000:e0:01.1'
    """
    return f"{address[0]:04x}:{address[1]:02x}:{address[2]:02x}.{address[3]:x}"


def full_name(name: str) -> str:
    """A device name with a PCI address in full form (``dddd:bb:dd.f``); others unchanged.

    >>> full_name("01:00.0"), full_name("0000:01:00.0"), full_name("HISI0162:01")
    ('0000:01:00.0', '0000:01:00.0', 'HISI0162:01')
    """
    if len(name) == 12 and name[4] == ":" and name[7] == ":":  # already full (usual)
        return name
    try:
        return str(PciAddress.parse(name))
    except InvalidAddress:
        return name


def _to_address(value: PciAddress | str) -> PciAddress:
    return value if isinstance(value, PciAddress) else PciAddress.parse(value)


def _to_opt_address(value: PciAddress | str | None) -> PciAddress | None:
    return None if value is None else _to_address(value)


def _int_tuple(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


#: The empty set every function without DMA aliases, unknown facts or known
#: capabilities shares (an empty ``frozenset`` is 216 bytes, and not a singleton).
_NO_SET: frozenset[Any] = frozenset()

#: Sets of facts and capability ids met before, shared by the functions that
#: have them (a machine's functions have few distinct ones); bounded.
_SETS: dict[frozenset[Any], frozenset[Any]] = {}
_SETS_MAX = 1 << 16


def _shared_set(value: Iterable[Any]) -> frozenset[Any]:
    """``frozenset(value)``, or an equal set met before.

    Only sets of plain ``int`` and ``str`` values are shared: ``True == 1``,
    and a set holding ``True`` must stay one (a validator refuses it).
    """
    made = value if value.__class__ is frozenset else frozenset(value)
    if not made:
        return _NO_SET
    if not all(v.__class__ is int or v.__class__ is str for v in made):
        return made
    found = _SETS.get(made)
    if found is not None:
        return found
    if len(_SETS) < _SETS_MAX:
        _SETS[made] = made
    return made


#: ``object.__setattr__`` bound to an instance: how a frozen class sets its fields.
_SETATTR = object.__setattr__.__get__
_intern = sys.intern


def _range(lo: int, hi: int, what: str) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None or (value.__class__ is int and lo <= value <= hi):
            return
        values = value if isinstance(value, (frozenset, tuple)) else (value,)
        for v in values:
            if not isinstance(v, int) or isinstance(v, bool) or not (lo <= v <= hi):
                raise ValueError(
                    f"{attribute.name}: {v!r} is not a valid {what} ({lo:#x}-{hi:#x})"
                )

    return check


class AcsFlags(enum.Flag):
    """ACS capability/control bits, with the PCIe register bit values (R2.1)."""

    NONE = 0
    SV = 0x01  #: Source Validation
    TB = 0x02  #: Translation Blocking
    RR = 0x04  #: P2P Request Redirect
    CR = 0x08  #: P2P Completion Redirect
    UF = 0x10  #: Upstream Forwarding
    EC = 0x20  #: P2P Egress Control
    DT = 0x40  #: Direct Translated P2P

    @classmethod
    def from_word(cls, word: int) -> AcsFlags:
        """Keep the seven defined bits of a 16-bit register value."""
        return cls(word & 0x7F)

    @classmethod
    def parse(cls, text: str) -> AcsFlags:
        """Parse ``"SV|RR|CR|UF"`` (also ``,`` or spaces; ``""`` or ``"-"`` = none)."""
        flags = cls.NONE
        for part in re.split(r"[|,\s]+", text.strip()):
            if not part or part == "-":
                continue
            try:
                flags |= cls[part.upper()]
            except KeyError:
                raise ValueError(f"unknown ACS flag {part!r}") from None
        return flags

    def names(self) -> str:
        """``"SV|RR|CR|UF"``, or ``"-"`` when empty, in register bit order."""
        parts = [f.name for f in AcsFlags if f.value and f in self and f.name]
        return "|".join(parts) if parts else "-"


#: R2.1: the ACS controls IOMMU grouping requires for isolation, ``SV|RR|CR|UF``
#: (0x1d; ``REQ_ACS_FLAGS`` of ``drivers/iommu/iommu.c``).
REQ_ACS_FLAGS = AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF


class PcieType(enum.IntEnum):
    """PCIe device/port type (the PCIe capability's type field)."""

    ENDPOINT = 0x0
    LEG_END = 0x1
    ROOT_PORT = 0x4
    UPSTREAM = 0x5
    DOWNSTREAM = 0x6
    PCI_BRIDGE = 0x7  #: PCIe-to-PCI/PCI-X bridge
    PCIE_BRIDGE = 0x8  #: PCI/PCI-X-to-PCIe ("reverse") bridge
    RC_END = 0x9  #: root-complex integrated endpoint
    RC_EC = 0xA  #: root-complex event collector


@attrs.frozen
class Acs:
    """A function's ACS extended capability: the capability and control words.

    An absent capability is ``PciFunction.acs is None`` (R2.2: not enabled).
    """

    cap: AcsFlags = attrs.field(converter=AcsFlags)
    ctrl: AcsFlags = attrs.field(converter=AcsFlags)


#: An ACS capability with every required control implemented and enabled: the
#: most isolating reading of a capability that could not be read.
FULL_ACS = Acs(cap=REQ_ACS_FLAGS, ctrl=REQ_ACS_FLAGS)


@attrs.frozen
class SriovCapability:
    """The parts of an SR-IOV capability that place VFs (PCIe SR-IOV spec 9.3.3).

    VF *n* (0-based) of a PF has routing id ``PF RID + offset + n * stride``.
    """

    total_vfs: int
    num_vfs: int
    offset: int
    stride: int
    vf_device: int

    def vf_rid(self, pf_rid: int, index: int) -> int:
        """Routing id of VF ``index`` (0-based), as ``pci_iov_virtfn_bus/devfn``."""
        return pf_rid + self.offset + index * self.stride

    def vf_address(self, pf: PciAddress, index: int) -> PciAddress | None:
        """Where VF ``index`` (0-based) of the PF at ``pf`` sits.

        ``None`` when its routing id lies past bus 0xff (the kernel's
        ``pci_iov_virtfn_bus`` would need a bus number that does not exist).

        >>> cap = SriovCapability(total_vfs=8, num_vfs=2, offset=2, stride=1, vf_device=0x1018)
        >>> cap.vf_address(PciAddress.parse("0000:11:00.0"), 1)
        PciAddress('0000:11:00.3')
        """
        rid = self.vf_rid(pf.rid, index)
        if rid > 0xFFFF:
            return None
        return PciAddress.from_devfn(pf.domain, rid >> 8, rid & 0xFF)

    def vf_addresses(self, pf: PciAddress, count: int | None = None) -> tuple[PciAddress, ...]:
        """The addresses of VFs ``0 .. count - 1`` (default ``total_vfs``), in index order.

        Stops at the first one past bus 0xff.
        """
        out: list[PciAddress] = []
        for index in range(self.total_vfs if count is None else count):
            addr = self.vf_address(pf, index)
            if addr is None:
                break
            out.append(addr)
        return tuple(out)

    def vf_index(self, pf: PciAddress, vf: PciAddress, count: int | None = None) -> int | None:
        """Which VF of the PF at ``pf`` sits at ``vf`` (0-based), among the first ``count``.

        ``count`` defaults to ``total_vfs``. ``None`` when no VF sits there.
        """
        if vf.domain != pf.domain:
            return None
        limit = self.total_vfs if count is None else count
        delta = vf.rid - self.vf_rid(pf.rid, 0)
        if delta < 0 or limit <= 0:
            return None
        if self.stride == 0:
            return 0 if delta == 0 else None
        index, rem = divmod(delta, self.stride)
        return index if rem == 0 and index < limit else None


#: Header types (low 7 bits of config offset 0x0e).
HEADER_NORMAL = 0
HEADER_BRIDGE = 1
HEADER_CARDBUS = 2


@attrs.frozen(init=False)
class PciFunction:
    """One PCI function, as much as grouping needs of its configuration space.

    Args:
        address: where it sits.
        vendor, device: ids (a VF's are its PF's vendor and the SR-IOV VF id).
        class_code: 24-bit class code (``0x060400`` is a PCI-PCI bridge).
        header_type: 0 normal, 1 PCI-PCI bridge, 2 CardBus bridge.
        multifunction: bit 7 of the header-type register *as read*. The kernel
            also marks every non-zero function the slot scan finds (R5.6);
            :meth:`Topology.is_multifunction` gives the kernel's view.
        pcie_type: PCIe port type, or ``None`` for conventional PCI / PCI-X.
        acs: ACS capability and control, or ``None`` when absent.
        dma_alias_devfns: extra DMA-alias devfns on the function's own bus,
            beyond those the kernel's quirks add (R3.3, R3.5).
        physfn: for an SR-IOV VF, its PF's address.
        sriov: the SR-IOV capability of a PF, if any.
        driver: bound driver name, if known.
        secondary_bus, subordinate_bus: a bridge's bus range.
        subsystem_vendor, subsystem_device: used by ``quirk_fixed_dma_alias``.
        unknown: facts that could not be read (e.g. ``"acs"`` when only 64
            bytes of config space were readable); grouping treats an unknown
            ACS capability as absent, which can only merge, never split.
        capabilities: ids of the standard capabilities present (``0x10``
            PCI Express, ``0x0c`` standard hot-plug controller, ...), where
            known; drivers' probe decisions use them (``shpchp``).
        revision: the revision id (config offset 0x08), ``None`` when the
            input does not show it; listings print it as ``lspci`` does,
            ``(rev a1)``. Grouping never reads it.
    """

    address: PciAddress = attrs.field(converter=_to_address)
    vendor: int = attrs.field(default=0xFFFF, validator=_range(0, 0xFFFF, "vendor id"))
    device: int = attrs.field(default=0xFFFF, validator=_range(0, 0xFFFF, "device id"))
    class_code: int = attrs.field(default=0, validator=_range(0, 0xFFFFFF, "class code"))
    header_type: int = attrs.field(
        default=HEADER_NORMAL, validator=_range(0, 0x7F, "header type (bit 7 excluded)")
    )
    multifunction: bool = False
    pcie_type: PcieType | None = None
    acs: Acs | None = None
    dma_alias_devfns: frozenset[int] = attrs.field(
        default=_NO_SET, converter=_shared_set, validator=_range(0, 0xFF, "devfn")
    )
    physfn: PciAddress | None = attrs.field(default=None, converter=_to_opt_address)
    sriov: SriovCapability | None = None
    driver: str | None = None
    secondary_bus: int | None = attrs.field(default=None, validator=_range(0, 0xFF, "bus number"))
    subordinate_bus: int | None = attrs.field(
        default=None, validator=_range(0, 0xFF, "bus number")
    )
    subsystem_vendor: int = attrs.field(default=0, validator=_range(0, 0xFFFF, "vendor id"))
    subsystem_device: int = attrs.field(default=0, validator=_range(0, 0xFFFF, "device id"))
    unknown: frozenset[str] = attrs.field(default=_NO_SET, converter=_shared_set)
    capabilities: frozenset[int] = attrs.field(
        default=_NO_SET, converter=_shared_set, validator=_range(0, 0xFF, "capability id")
    )
    revision: int | None = attrs.field(default=None, validator=_range(0, 0xFF, "revision id"))

    def __init__(
        self,
        address: PciAddress | str,
        vendor: int = 0xFFFF,
        device: int = 0xFFFF,
        class_code: int = 0,
        header_type: int = HEADER_NORMAL,
        multifunction: bool = False,
        pcie_type: PcieType | None = None,
        acs: Acs | None = None,
        dma_alias_devfns: Iterable[int] = _NO_SET,
        physfn: PciAddress | str | None = None,
        sriov: SriovCapability | None = None,
        driver: str | None = None,
        secondary_bus: int | None = None,
        subordinate_bus: int | None = None,
        subsystem_vendor: int = 0,
        subsystem_device: int = 0,
        unknown: Iterable[str] = _NO_SET,
        capabilities: Iterable[int] = _NO_SET,
        revision: int | None = None,
    ) -> None:
        # What the generated ``__init__`` of the fields above does (their
        # converters in field order, then their validators in field order),
        # with the validators' usual case checked at once: a machine has
        # 100,000 functions, and a reader builds each.
        if address.__class__ is not PciAddress:
            address = _to_address(address)
        if dma_alias_devfns is not _NO_SET:
            dma_alias_devfns = _shared_set(dma_alias_devfns)
        if physfn is not None and physfn.__class__ is not PciAddress:
            physfn = _to_address(physfn)
        if unknown is not _NO_SET:
            unknown = _shared_set(unknown)
        if capabilities is not _NO_SET:
            capabilities = _shared_set(capabilities)
        if type(driver) is str:
            driver = _intern(driver)
        put = _SETATTR(self)
        put("address", address)
        put("vendor", vendor)
        put("device", device)
        put("class_code", class_code)
        put("header_type", header_type)
        put("multifunction", multifunction)
        put("pcie_type", pcie_type)
        put("acs", acs)
        put("dma_alias_devfns", dma_alias_devfns)
        put("physfn", physfn)
        put("sriov", sriov)
        put("driver", driver)
        put("secondary_bus", secondary_bus)
        put("subordinate_bus", subordinate_bus)
        put("subsystem_vendor", subsystem_vendor)
        put("subsystem_device", subsystem_device)
        put("unknown", unknown)
        put("capabilities", capabilities)
        put("revision", revision)
        if not (
            vendor.__class__ is int
            and device.__class__ is int
            and class_code.__class__ is int
            and header_type.__class__ is int
            and subsystem_vendor.__class__ is int
            and subsystem_device.__class__ is int
            and 0 <= vendor <= 0xFFFF
            and 0 <= device <= 0xFFFF
            and 0 <= class_code <= 0xFFFFFF
            and 0 <= header_type <= 0x7F
            and 0 <= subsystem_vendor <= 0xFFFF
            and 0 <= subsystem_device <= 0xFFFF
            and (
                secondary_bus is None
                or (secondary_bus.__class__ is int and 0 <= secondary_bus <= 0xFF)
            )
            and (
                subordinate_bus is None
                or (subordinate_bus.__class__ is int and 0 <= subordinate_bus <= 0xFF)
            )
            and (revision is None or (revision.__class__ is int and 0 <= revision <= 0xFF))
            and not dma_alias_devfns
            and not capabilities
        ):
            for a, check in _FUNCTION_VALIDATORS:  # each field's own check, in field order
                check(self, a, getattr(self, a.name))

    @property
    def is_bridge(self) -> bool:
        """A PCI-PCI or CardBus bridge (header type 1 or 2) with a secondary bus."""
        return (
            self.header_type in (HEADER_BRIDGE, HEADER_CARDBUS) and self.secondary_bus is not None
        )

    @property
    def is_pcie(self) -> bool:
        """Has a PCIe capability (``pci_is_pcie``)."""
        return self.pcie_type is not None

    @property
    def is_virtfn(self) -> bool:
        """An SR-IOV virtual function."""
        return self.physfn is not None

    @property
    def base_class(self) -> int:
        """The top byte of the class code."""
        return self.class_code >> 16

    def __str__(self) -> str:
        return str(self.address)


#: The fields of :class:`PciFunction` with a validator, and the validator, in field order.
_FUNCTION_VALIDATORS: tuple[tuple[attrs.Attribute[Any], Callable[..., Any]], ...] = tuple(
    (a, a.validator) for a in attrs.fields(PciFunction) if a.validator is not None
)


def make_vf(pf: PciFunction, address: PciAddress | str) -> PciFunction:
    """The VF at ``address`` as ``pci_iov_add_virtfn`` makes it from ``pf``.

    The PF's vendor, the SR-IOV capability's VF device id, the PF's class, a
    PCIe endpoint, ``physfn`` set (its multifunction flag is cleared, R5.6).

    Raises:
        ValueError: ``pf`` has no SR-IOV capability.
    """
    if pf.sriov is None:
        raise ValueError(f"{pf.address} has no SR-IOV capability")
    return PciFunction(
        address,
        vendor=pf.vendor,
        device=pf.sriov.vf_device,
        class_code=pf.class_code,
        pcie_type=PcieType.ENDPOINT,
        physfn=pf.address,
    )


class IommuKind(enum.Enum):
    """IOMMU hardware families the model knows.

    Not modelled: fsl-mc devices and their container groups (R1.6), and
    drivers that give every device of an instance one group (R1.8).
    """

    SMMU_V3 = "smmuv3"
    SMMU_V2 = "smmuv2"
    VTD = "vt-d"
    AMD_VI = "amd-vi"
    VIRTIO_IOMMU = "virtio-iommu"


@attrs.frozen
class IommuInstance:
    """One IOMMU instance (an SMMU, a VT-d DRHD unit, ...), named uniquely."""

    name: str
    kind: IommuKind = attrs.field(converter=IommuKind)


@attrs.frozen
class IdMapping:
    """IORT-like mapping of a root complex's requester ids to stream ids.

    RIDs ``rid_base .. rid_base + count - 1`` of PCI ``domain`` map to
    stream ids ``output_base + (rid - rid_base)`` on IOMMU ``iommu`` (R3.8).
    """

    domain: int
    rid_base: int
    count: int
    output_base: int
    iommu: str

    def map(self, domain: int, rid: int) -> int | None:
        """The stream id for ``rid``, or ``None`` when outside the mapping."""
        if domain == self.domain and self.rid_base <= rid < self.rid_base + self.count:
            return self.output_base + (rid - self.rid_base)
        return None


class FwSpec(NamedTuple):
    """A device's firmware IOMMU spec: which instance, which stream ids.

    (A named tuple: one is made per device of an IORT machine, and a tuple is
    cheaper to make than an attrs class.)
    """

    iommu: str
    stream_ids: tuple[int, ...]


@attrs.frozen
class PlatformDevice:
    """A non-PCI device behind an IOMMU (``platform``/``amba`` bus).

    ``stream_ids`` are its named-component stream ids; ``iommu`` is ``None``
    for a device no IOMMU translates (it then never gets a group).
    """

    name: str
    iommu: str | None = None
    stream_ids: tuple[int, ...] = attrs.field(default=(), converter=_int_tuple)
    driver: str | None = None
    bus: str = "platform"


#: The first PCI domain number the ``vmd`` driver gives a VMD domain (R11.1):
#: emulated domains start above the 16-bit ACPI ``_SEG`` numbers.
VMD_DOMAIN_BASE = 0x10000

#: The vendor of every VMD endpoint (Intel).
VMD_VENDOR = 0x8086

#: The device ids (vendor Intel) the ``vmd`` driver binds: ``vmd_ids[]`` of
#: ``drivers/pci/controller/vmd.c`` in 7.3 (6.1 has the first ten but 0x28c1;
#: 0xb60b and 0xb06f came in 6.12's time; 0xb07f, 0xd70b and 0xd73b later).
VMD_DEVICE_IDS = frozenset(
    {
        0x201D,
        0x28C0,
        0x28C1,
        0x467F,
        0x4C3D,
        0xA77F,
        0x7D0B,
        0xAD0B,
        0x9A0B,
        0xB60B,
        0xB06F,
        0xB07F,
        0xD70B,
        0xD73B,
    }
)


def _vmd_domain(_inst: Any, _attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"domain: {value!r} is not a PCI domain number")
    if not VMD_DOMAIN_BASE <= value <= 0xFFFFFFFF:
        raise ValueError(
            f"domain: {value:#x} is not a VMD domain (those are numbered from "
            f"{VMD_DOMAIN_BASE:#x})"
        )


@attrs.frozen
class VmdDomain:
    """An Intel VMD domain: the PCI domain the ``vmd`` driver creates behind a VMD endpoint.

    Every device in the domain does its DMA through the endpoint
    (``pci_real_dma_dev``, R3.1), so it joins the endpoint's group (R11.1).

    Attributes:
        domain: the domain number (``0x10000`` and up).
        endpoint: the VMD endpoint, a function of a lower domain.
    """

    domain: int = attrs.field(validator=_vmd_domain)
    endpoint: PciAddress = attrs.field(converter=_to_address)


def _opt_address_tuple(value: Iterable[PciAddress | str] | None) -> tuple[PciAddress, ...] | None:
    return None if value is None else tuple(_to_address(v) for v in value)


def _address_tuple(value: Iterable[PciAddress | str]) -> tuple[PciAddress, ...]:
    return tuple(_to_address(v) for v in value)


def _alias_pairs(
    value: Iterable[tuple[PciAddress | str, PciAddress | str]],
) -> tuple[tuple[PciAddress, PciAddress], ...]:
    return tuple((_to_address(a), _to_address(b)) for a, b in value)


def _opt_kind(value: IommuKind | str | None) -> IommuKind | None:
    return None if value is None else IommuKind(value)


@attrs.frozen
class IommuUnit:
    """One x86 IOMMU as the firmware tables describe it: a VT-d DRHD or an AMD IVHD.

    Attributes:
        name: a unique name; readers use the kernel's (``dmar0``, ``ivhd0``:
            ``/sys/class/iommu``).
        kind: :attr:`IommuKind.VTD` or :attr:`IommuKind.AMD_VI`.
        segment: the PCI segment (domain) it serves.
        include_all: VT-d: the DRHD's ``INCLUDE_PCI_ALL`` flag (it translates
            every device of its segment that no other unit's scope lists);
            ``None`` when not known.
        scope: the devices the unit translates as the firmware lists them,
            ``None`` when not known. VT-d: the DRHD's device scope (an entry
            for a bridge covers every device below it, R11.5); AMD: the
            devices the IVHD's entries select (R11.3).
        function: AMD: the IOMMU's own PCI function (the IVHD's device id),
            which no IOMMU translates (R11.2).
        aliases: AMD: IVRS alias entries (``DEV_ALIAS``, ``DEV_ALIAS_RANGE``)
            as (device, alias) pairs (R11.4).
    """

    name: str
    kind: IommuKind = attrs.field(converter=IommuKind)
    segment: int = attrs.field(default=0, validator=_range(0, 0xFFFF, "PCI segment"))
    include_all: bool | None = None
    scope: tuple[PciAddress, ...] | None = attrs.field(default=None, converter=_opt_address_tuple)
    function: PciAddress | None = attrs.field(default=None, converter=_to_opt_address)
    aliases: tuple[tuple[PciAddress, PciAddress], ...] = attrs.field(
        default=(), converter=_alias_pairs
    )

    def __attrs_post_init__(self) -> None:
        if self.kind not in (IommuKind.VTD, IommuKind.AMD_VI):
            raise ValueError(f"kind: {self.kind.value!r} is not an x86 IOMMU (vt-d, amd-vi)")


def _units(value: Iterable[IommuUnit]) -> tuple[IommuUnit, ...]:
    return tuple(value)


def _vmds(value: Iterable[VmdDomain]) -> tuple[VmdDomain, ...]:
    return tuple(value)


@attrs.frozen
class Platform:
    """What the input says about an x86 machine's IOMMUs, beyond its PCI functions.

    Readers record here what they see (a VMD domain and its endpoint, an AMD
    IOMMU's own function, the DMAR units of ``/sys/class/iommu``, the kernel
    command line); the rules that read it are in the kernel floor (R11).
    Everything defaults to "not known".

    Attributes:
        iommu: the IOMMU family, :attr:`IommuKind.VTD` or
            :attr:`IommuKind.AMD_VI`; ``None`` when not known.
        units: the IOMMUs, in the order of the firmware table (DMAR, IVRS).
        vmd: the VMD domains.
        igfx_off: graphics-only DMAR units are ignored (``intel_iommu=igfx_off``,
            or a chipset quirk; R11.6); ``None`` when not known.
        untranslated: devices no IOMMU translates, as known from outside the
            tables (e.g. an x86 kernel gave them no group): they get none
            (R11.3, R11.5).
    """

    iommu: IommuKind | None = attrs.field(default=None, converter=_opt_kind)
    units: tuple[IommuUnit, ...] = attrs.field(default=(), converter=_units)
    vmd: tuple[VmdDomain, ...] = attrs.field(default=(), converter=_vmds)
    igfx_off: bool | None = None
    untranslated: tuple[PciAddress, ...] = attrs.field(default=(), converter=_address_tuple)

    def __attrs_post_init__(self) -> None:
        names = [u.name for u in self.units]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"units: the name {dup[0]!r} is given to two units")
        domains = [v.domain for v in self.vmd]
        if len(set(domains)) != len(domains):
            dup_domain = min(d for d in domains if domains.count(d) > 1)
            raise ValueError(f"vmd: domain {dup_domain:#x} is given two endpoints")
        if self.iommu is not None and self.iommu not in (IommuKind.VTD, IommuKind.AMD_VI):
            raise ValueError(f"iommu: {self.iommu.value!r} is not an x86 IOMMU (vt-d, amd-vi)")

    @property
    def is_default(self) -> bool:
        """Nothing is known (the value a topology without platform facts has)."""
        return self == _NO_PLATFORM

    def vmd_endpoint(self, domain: int) -> PciAddress | None:
        """The VMD endpoint behind which ``domain`` lies, if it is a known VMD domain."""
        for v in self.vmd:
            if v.domain == domain:
                return v.endpoint
        return None


_NO_PLATFORM = Platform()


class BusConflict(NamedTuple):
    """A bus number two parts of the tree claim, and what Linux makes of it (R11.8).

    Attributes:
        bridge: the bridge whose bus range holds the bus.
        bus: the bus, a root bus of another host bridge.
        why: in words: what the configuration says and what the kernel does.
    """

    bridge: PciAddress
    bus: int
    why: str


class MissingBridge(NamedTuple):
    """A bus the input shows devices on but no bridge for, where that cannot be a root bus.

    A bus no bridge claims is a root bus to the tree (nothing is above it).
    It really is one when the input says so (:meth:`Topology.missing_bridges`'
    ``root_buses``: a sysfs tree, an ``lspci -t`` tree), when it is bus 0, or
    when a device on it sits *only* on a root bus: a Root Port, a Root Complex
    Integrated Endpoint or Event Collector (R11.8). Conventional PCI devices
    may sit on one (another host bridge's bus, a Xeon's uncore bus) or below
    a bridge the input lost: which is not known. A PCIe Endpoint, Legacy Endpoint,
    Upstream or Downstream Port or PCIe-to-PCI bridge never does: its
    upstream side is a Link, below a Root Port or a Downstream Port
    (PCI Express Base Specification, 1.3 "PCI Express Fabric Topology"). On
    such a bus the input itself proves that the bridge above is missing (a
    deleted or cut ``lspci`` block, a lost ``Bus:`` line, an unreadable sysfs
    directory), and the devices below it are not "alone on a root bus" (R4.2):
    their groups depend on a bridge the input does not show.

    Attributes:
        domain: the PCI domain.
        bus: the bus no bridge claims.
        certain: the devices' types prove that a bridge is missing; ``False``
            when the input cannot tell (a device whose PCIe type is not known,
            conventional PCI devices only).
        why: in words, naming the bus, the device that gives it away and the
            bridges that may be the missing one.
        devices: every function on the bus and below it.
    """

    domain: int
    bus: int
    certain: bool
    why: str
    devices: tuple[PciAddress, ...] = ()


def _functions_converter(value: Iterable[PciFunction]) -> tuple[PciFunction, ...]:
    return tuple(value)


def _platform_converter(value: Iterable[PlatformDevice]) -> tuple[PlatformDevice, ...]:
    return tuple(value)


def _iommus_converter(value: Iterable[IommuInstance]) -> tuple[IommuInstance, ...]:
    return tuple(value)


def _mappings_converter(value: Iterable[IdMapping]) -> tuple[IdMapping, ...]:
    return tuple(value)


@attrs.frozen
class Topology:
    """An immutable, validated set of PCI functions plus optional firmware facts.

    Construction validates: duplicate addresses, a bus claimed by two bridges,
    bridge ranges that are inverted or that do not nest, a VF whose PF is
    missing, ... each raises :class:`TopologyError` naming the devices.

    The order of ``functions`` is *not* significant for grouping: the kernel's
    device-add order is derived from the tree (:meth:`enumeration_order`).

    ``platform`` holds what the input says about an x86 machine's IOMMUs (VMD
    domains, VT-d and AMD units, :class:`Platform`). Bus numbers that the
    firmware gave twice, a bridge's range holding another host bridge's root
    bus, are not an error: the topology follows the kernel
    (``pci_scan_bridge_extend``, R11.8) and :meth:`bus_conflicts` names them.
    """

    functions: tuple[PciFunction, ...] = attrs.field(converter=_functions_converter)
    platform_devices: tuple[PlatformDevice, ...] = attrs.field(
        default=(), converter=_platform_converter
    )
    iommus: tuple[IommuInstance, ...] = attrs.field(default=(), converter=_iommus_converter)
    id_mappings: tuple[IdMapping, ...] = attrs.field(default=(), converter=_mappings_converter)
    name: str = ""
    platform: Platform = attrs.field(default=_NO_PLATFORM)
    _index: _Index = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.platform, Platform):
            raise TopologyError(f"platform: not a Platform: {self.platform!r}")
        reuse = _REUSE.get()
        if reuse is not None and reuse[0] is self.functions:
            index = reuse[1]
        else:
            index = _Index.build(self)
        for v in self.platform.vmd:
            if v.endpoint not in index.by_addr:
                raise TopologyError(
                    f"VMD domain {v.domain:x} names endpoint {v.endpoint}, which is not in "
                    "the topology",
                    (str(v.endpoint),),
                )
            if v.endpoint.domain >= VMD_DOMAIN_BASE:
                raise TopologyError(
                    f"VMD endpoint {v.endpoint} of domain {v.domain:x} is itself in a VMD domain",
                    (str(v.endpoint),),
                )
        object.__setattr__(self, "_index", index)

    # --- lookups -----------------------------------------------------------
    def __len__(self) -> int:
        return len(self.functions)

    def __iter__(self) -> Iterator[PciFunction]:
        return iter(self.functions)

    def __contains__(self, address: object) -> bool:
        if isinstance(address, str):
            try:
                address = PciAddress.parse(address)
            except InvalidAddress:
                return False
        return address in self._index.by_addr

    def get(self, address: PciAddress | str) -> PciFunction:
        """The function at ``address``.

        Raises:
            UnknownDevice: no such function.
        """
        addr = _to_address(address)
        try:
            return self._index.by_addr[addr]
        except KeyError:
            raise UnknownDevice(f"no PCI function {addr} in the topology") from None

    def by_name(self) -> Mapping[str, PciFunction]:
        """Every function by its full name (``dddd:bb:dd.f``), made once per topology."""
        index = self._index
        if index.names is None:
            object.__setattr__(index, "names", {str(a): f for a, f in index.by_addr.items()})
        assert index.names is not None
        return index.names

    def bus_conflicts(self) -> tuple[BusConflict, ...]:
        """Buses a bridge's range holds that are root buses all the same (R11.8).

        Each is a bus that firmware left inside a bridge's bus range (or gave
        a bridge as its secondary bus) while another host bridge owns it as a
        root bus; Linux keeps it a root bus (``pci_scan_bridge_extend``
        finds it with ``pci_find_bus`` and does not add it again, and a Root
        Port sits on a root bus), so nothing below the bridge is on it.
        """
        return self._index.conflicts

    def missing_bridges(
        self, root_buses: Iterable[tuple[int, int]] = ()
    ) -> tuple[MissingBridge, ...]:
        """The buses whose bridge the input lacks, by the input's own evidence.

        A non-zero bus that no bridge claims (and that is not an SR-IOV
        virtual bus) is a root bus only when the input says so
        (``root_buses``: ``(domain, bus)`` pairs a sysfs tree or an ``lspci
        -t`` tree declares) or its devices may sit on a root bus (see
        ``MissingBridge``). Bus 0 is always a root bus. Otherwise the
        bridge above it is missing from the input: for certain when a device on
        it is a PCIe Endpoint, Upstream or Downstream Port (or another type
        with a Link above it); possibly when a device's PCIe type is not
        known, or its devices are conventional PCI (it may also be another
        host bridge's root bus, R11.8).

        >>> t = Topology([PciFunction("01:00.0", pcie_type=PcieType.ENDPOINT)])
        >>> (m,) = t.missing_bridges()
        >>> m.bus, m.certain, [str(d) for d in m.devices]
        (1, True, ['0000:01:00.0'])
        >>> t.missing_bridges(root_buses=[(0, 1)])
        ()
        """
        declared = set(root_buses)
        out: list[MissingBridge] = []
        for suspect in self._index.suspects:
            if (suspect.domain, suspect.bus) in declared:
                continue
            below = self.functions_below(suspect.domain, suspect.bus)
            out.append(suspect._replace(devices=tuple(f.address for f in below)))
        return tuple(out)

    def bridge_above(self, address: PciAddress) -> PciFunction | None:
        """``dev->bus->self``: the bridge whose secondary bus the device is on.

        ``None`` on a root bus and on a virtual (SR-IOV) bus.
        """
        return self._index.bus_self.get((address.domain, address.bus))

    def bus_self(self, domain: int, bus: int) -> PciFunction | None:
        """``bus->self``: the bridge whose secondary bus this is, if any."""
        return self._index.bus_self.get((domain, bus))

    def parent_bus(self, domain: int, bus: int) -> int | None:
        """``bus->parent->number``, or ``None`` for a root bus."""
        return self._index.bus_parent.get((domain, bus))

    def is_root_bus(self, domain: int, bus: int) -> bool:
        """``pci_is_root_bus``: no parent bus."""
        return (domain, bus) not in self._index.bus_parent

    def devices_on_bus(self, domain: int, bus: int) -> tuple[PciFunction, ...]:
        """Functions on one bus, in device-add order."""
        return self._index.on_bus.get((domain, bus), ())

    def bridges_above(self, device: PciFunction | PciAddress) -> tuple[PciFunction, ...]:
        """The bridges above ``device``, nearest first, up to the one on its root bus.

        Each is the ``bus->self`` of a bus on the way up: the path that
        ``pci_acs_path_enabled`` (R2.4), the bridge aliases of
        ``pci_for_each_dma_alias`` (R3.4) and the upstream walk of
        ``pci_device_group`` (R4.2) follow. An SR-IOV virtual bus has no
        ``self``; it is stepped over to its parent, the PF's bus. Empty for a
        device on a root bus.

        >>> from iommugroups import examples
        >>> [str(b) for b in examples.desktop().bridges_above(PciAddress.parse("09:00.0"))]
        ['0000:07:09.0', '0000:06:00.0', '0000:00:03.0']
        """
        a = device.address if isinstance(device, PciFunction) else device
        return self._index.bridges_above(a.domain, a.bus)

    def upstream_bridge(self, device: PciFunction | PciAddress) -> PciFunction | None:
        """The nearest bridge above ``device`` (virtual buses stepped over), if any."""
        chain = self.bridges_above(device)
        return chain[0] if chain else None

    def link_bus(self, domain: int, bus: int) -> int:
        """``bus``, or for an SR-IOV virtual bus the bus of its PF (the VFs' link)."""
        while (domain, bus) not in self._index.bus_self:
            parent = self._index.bus_parent.get((domain, bus))
            if parent is None:  # a root bus
                return bus
            bus = parent
        return bus

    def child_buses(self, domain: int, bus: int) -> tuple[int, ...]:
        """The buses whose parent is ``bus``: bridges' secondary buses and virtual buses."""
        return self._index.child_buses.get((domain, bus), ())

    def children(self, bridge: PciFunction) -> tuple[PciFunction, ...]:
        """The functions directly below a bridge, in device-add order.

        Those on its secondary bus, and the SR-IOV VFs on virtual buses that
        hang off that bus (``bus->devices`` and the VF buses of its PFs).
        Empty for a function that is not a bridge.
        """
        if not bridge.is_bridge or bridge.secondary_bus is None:
            return ()
        dom, sec = bridge.address.domain, bridge.secondary_bus
        index = self._index
        on = self.devices_on_bus(dom, sec)  # in device-add order
        virtual = [c for c in self.child_buses(dom, sec) if (dom, c) not in index.bus_self]
        if not virtual:
            return on
        out = list(on)
        for child in virtual:  # VFs, added after every other function
            out.extend(self.devices_on_bus(dom, child))
        return tuple(sorted(out, key=lambda f: index.position(f.address)))

    def functions_below(self, domain: int, bus: int) -> tuple[PciFunction, ...]:
        """Every function on ``bus`` and on every bus below it, bus by bus (depth first)."""
        out: list[PciFunction] = []
        stack = [bus]
        while stack:
            b = stack.pop()
            out.extend(self.devices_on_bus(domain, b))
            stack.extend(reversed(self.child_buses(domain, b)))
        return tuple(out)

    def subtree(self, bridge: PciFunction) -> tuple[PciFunction, ...]:
        """Everything below a bridge (on its secondary bus and below); empty for others.

        SR-IOV VFs of a PF below it are included, wherever their virtual bus is.
        """
        if not bridge.is_bridge or bridge.secondary_bus is None:
            return ()
        return self.functions_below(bridge.address.domain, bridge.secondary_bus)

    def is_multifunction(self, fn: PciFunction) -> bool:
        """``pdev->multifunction`` as the kernel sets it (R5.6).

        Function 0: its header-type bit 7. Any other function found by the
        slot scan (``pci_scan_slot``): forced on. SR-IOV VFs are not found by
        the slot scan; ``pci_iov_add_virtfn`` clears the flag on every VF,
        whatever its header says (drivers/pci/iov.c, checked in kernel source:
        stricter than spec R5.6, which reads the VF's own header bit).
        """
        if fn.physfn is not None:
            return False
        if fn.address.function == 0:
            return fn.multifunction
        return True

    def enumeration_order(self) -> tuple[PciFunction, ...]:
        """The kernel's ``device_add`` order (see ``_Index``)."""
        return self._index.order

    def position(self, address: PciAddress) -> int:
        """Index of ``address`` in :meth:`enumeration_order`."""
        return self._index.position(address)

    def vfs_of(self, pf: PciAddress) -> tuple[PciFunction, ...]:
        """The VFs of a PF present in the topology, in VF-index order."""
        return self._index.vfs.get(pf, ())

    def vf_slots(self) -> dict[PciAddress, tuple[PciFunction, int]]:
        """Every address a PF's SR-IOV capability can place a VF at -> (PF, VF index).

        Up to each PF's ``total_vfs``; where two PFs claim one address, the
        first PF in the topology's order keeps it.
        """
        out: dict[PciAddress, tuple[PciFunction, int]] = {}
        for fn in self.functions:
            if fn.sriov is None or fn.physfn is not None:
                continue
            for i, vf in enumerate(fn.sriov.vf_addresses(fn.address)):
                out.setdefault(vf, (fn, i))
        return out

    def with_vfs(self, names: Iterable[str | PciAddress]) -> tuple[Topology, tuple[str, ...]]:
        """This topology plus the SR-IOV VFs among ``names`` that it does not list.

        A VF is enabled at run time (``sriov_numvfs``), so a topology read from
        the PFs' configuration may not list the VFs an observation names. Each
        name that is the routing id of a VF some PF's SR-IOV capability offers
        becomes a function as ``pci_iov_add_virtfn`` makes it (the PF's vendor
        and class, the capability's VF device id, a PCIe endpoint with
        ``physfn`` set).
        Returns the topology and the names added (``self`` when none).
        """
        slots = self.vf_slots()
        if not slots:
            return self, ()
        wanted: set[PciAddress] = set()
        for name in names:
            if isinstance(name, PciAddress):
                addr = name
            else:
                try:
                    addr = PciAddress.parse(name)
                except InvalidAddress:
                    continue
            if addr in slots and addr not in self._index.by_addr:
                wanted.add(addr)
        if not wanted:
            return self, ()
        extra = [make_vf(slots[a][0], a) for a in sorted(wanted)]
        return self.replace(functions=(*self.functions, *extra)), tuple(
            str(a) for a in sorted(wanted)
        )

    def replace(self, **changes: Any) -> Topology:
        """A copy with some fields changed (re-validated)."""
        if set(changes) == {"functions"}:
            # The same functions with only some unknown facts changed (a
            # reader marking what it could not read): the tree is the same,
            # and the index is this one's with those functions put in.
            functions = _functions_converter(changes["functions"])
            index = self._index.substituted(self.functions, functions)
            if index is not None:
                token = _REUSE.set((functions, index))
                try:
                    return attrs.evolve(self, functions=functions)
                finally:
                    _REUSE.reset(token)
        return attrs.evolve(self, **changes)


#: A bus's bridges, nearest first, as a chain of pairs that share their tails:
#: ``(bridge, the chain of the bridge's own bus)``; ``None`` above a root bus.
_Chain = tuple[PciFunction, "_Chain"] | None

#: Not in a memo yet (``None`` is a chain: a root bus's).
_UNKNOWN: Any = object()

#: ``(bus,)`` for each bus number: a bus's only child bus, shared.
_ONE_BUS: tuple[tuple[int], ...] = tuple((b,) for b in range(256))


def _one_bus(bus: int) -> tuple[int]:
    return _ONE_BUS[bus] if 0 <= bus <= 0xFF else (bus,)


#: An index :meth:`Topology.replace` made for the functions it passes on.
_REUSE: contextvars.ContextVar[tuple[tuple[PciFunction, ...], _Index] | None] = (
    contextvars.ContextVar("iommugroups_index_reuse", default=None)
)

#: The unknown facts the index reads (``_bus_evidence``).
_EVIDENCE_FACTS = frozenset({"pcie", "config"})

#: Chains up to this length are also kept as tuples (the depth of any usual
#: machine), so that :meth:`Topology.bridges_above` answers them at once; a
#: deeper one is made again when asked, so that memory stays linear.
_KEEP_TUPLES = 8


@attrs.frozen
class _Index:
    """Derived structure of a topology, built once and cached on it.

    * ``bus_self``: (domain, bus) -> bridge with that secondary bus.
    * ``bus_parent``: (domain, bus) -> parent bus number, for non-root buses.
      A bus with a ``self`` has the bridge's bus as parent; a bus holding only
      VFs and claimed by no bridge is a *virtual* bus whose parent is the PF's
      bus (``virtfn_add_bus``); any other unclaimed bus is a root bus.
    * ``order``: device-add order. Per root bus (by domain, then number): the
      devices on the bus in devfn order, then each bridge's subtree in devfn
      order (``pci_scan_child_bus``: ``pci_scan_slot`` over the bus, then
      ``pci_scan_bridge`` per bridge). SR-IOV VFs are added afterwards, when
      the PF driver enables them, PF by PF in that order.
    * ``chains``: (domain, bus) -> the bridges above a device on that bus
      (``_Chain``, each bus's chain sharing its parent's), made when first
      asked; ``tuples``: the short ones as tuples.
    * ``keys``: one ``(domain, bus)`` object per bus, shared by the tables
      keyed by bus (here and in the memos of the rules, :meth:`bus_key`): a
      machine of deep switch chains has nearly as many buses as functions.
    * ``pos``: address -> index in ``order``, made when first asked
      (:meth:`position`): few callers need it, and it costs 80 bytes a function.
    """

    by_addr: dict[PciAddress, PciFunction]
    bus_self: dict[tuple[int, int], PciFunction]
    bus_parent: dict[tuple[int, int], int]
    on_bus: dict[tuple[int, int], tuple[PciFunction, ...]]
    order: tuple[PciFunction, ...]
    vfs: dict[PciAddress, tuple[PciFunction, ...]]
    child_buses: dict[tuple[int, int], tuple[int, ...]]
    chains: dict[tuple[int, int], _Chain]
    tuples: dict[tuple[int, int], tuple[PciFunction, ...]]
    keys: dict[tuple[int, int], tuple[int, int]]
    mappings: dict[int, tuple[IdMapping, ...]] | None = None
    conflicts: tuple[BusConflict, ...] = ()
    suspects: tuple[MissingBridge, ...] = ()
    names: dict[str, PciFunction] | None = None
    pos: dict[PciAddress, int] | None = None

    def position(self, address: PciAddress) -> int:
        """Index of ``address`` in ``order`` (the table made when first asked)."""
        if self.pos is None:
            object.__setattr__(self, "pos", {f.address: i for i, f in enumerate(self.order)})
        assert self.pos is not None
        return self.pos[address]

    def mappings_of(
        self, id_mappings: tuple[IdMapping, ...], domain: int
    ) -> tuple[IdMapping, ...]:
        """The topology's ``id_mappings`` of one PCI domain, in their order (made
        once per topology; a mapping of another domain never maps, R3.8)."""
        if self.mappings is None:
            by_domain: dict[int, list[IdMapping]] = {}
            for m in id_mappings:
                by_domain.setdefault(m.domain, []).append(m)
            object.__setattr__(self, "mappings", {d: tuple(ms) for d, ms in by_domain.items()})
        assert self.mappings is not None
        return self.mappings.get(domain, ())

    def bus_key(self, domain: int, bus: int) -> tuple[int, int]:
        """The shared ``(domain, bus)`` key of a bus (a new tuple for a bus without one)."""
        key = (domain, bus)
        return self.keys.get(key, key)

    def nearest_bridge(self, domain: int, bus: int) -> PciFunction | None:
        """The first bridge above a device on ``bus`` (the head of :meth:`chain`),
        found without making the chain: virtual buses are stepped over."""
        key = (domain, bus)
        bus_self, bus_parent = self.bus_self, self.bus_parent
        while True:
            br = bus_self.get(key)
            if br is not None:
                return br
            parent = bus_parent.get(key)
            if parent is None:  # a root bus
                return None
            key = (domain, parent)

    def chain(self, domain: int, bus: int) -> _Chain:
        """The bridges above a device on ``bus``, nearest first, as a shared chain.

        Memoised per bus; a bus's chain is its ``self`` (if it has one: a
        virtual bus is stepped over) in front of its parent bus's chain, so
        the chains of every bus take memory linear in the number of buses.
        """
        chains = self.chains
        key = (domain, bus)
        found: _Chain = chains.get(key, _UNKNOWN)
        if found is not _UNKNOWN:
            return found
        # Walk up to the first bus already known, then fill in on the way back.
        path: list[tuple[int, int]] = []
        chain: _Chain = None
        while True:
            parent = self.bus_parent.get(key)
            if parent is None:  # a root bus
                chains[self.keys.get(key, key)] = None
                break
            path.append(key)
            key = (domain, parent)
            if key in chains:
                chain = chains[key]
                break
        bus_self, keys = self.bus_self, self.keys
        for k in reversed(path):
            br = bus_self.get(k)
            if br is not None:
                chain = (br, chain)
            chains[keys.get(k, k)] = chain
        return chains[(domain, bus)]

    def bridges_above(self, domain: int, bus: int) -> tuple[PciFunction, ...]:
        """The bridges above a device on ``bus``, nearest first, as a tuple."""
        key = (domain, bus)
        found = self.tuples.get(key)
        if found is not None:
            return found
        out: list[PciFunction] = []
        node = self.chain(domain, bus)
        while node is not None:
            out.append(node[0])
            node = node[1]
        above = tuple(out)
        if len(above) <= _KEEP_TUPLES:
            self.tuples[key] = above
        return above

    def substituted(
        self, old: tuple[PciFunction, ...], new: tuple[PciFunction, ...]
    ) -> _Index | None:
        """This index for ``new``, the functions ``old`` it was built from with some
        replaced by functions that differ only in facts the index does not read
        (``unknown`` facts other than those of ``_EVIDENCE_FACTS``); ``None``
        otherwise (the caller builds the index anew).

        What :meth:`build` makes of ``new``: the tree, the order, the
        conflicts and the suspects are the same, with the new functions in
        place of the old.
        """
        if len(old) != len(new):
            return None
        changed: dict[PciAddress, PciFunction] = {}
        for o, n in zip(old, new, strict=True):
            if o is n:
                continue
            if (
                n.__class__ is not PciFunction
                or o.address != n.address
                or o.unknown & _EVIDENCE_FACTS != n.unknown & _EVIDENCE_FACTS
                or attrs.evolve(n, unknown=o.unknown) != o
            ):
                return None
            changed[o.address] = n
        if not changed:
            return self

        def put(fns: tuple[PciFunction, ...]) -> tuple[PciFunction, ...]:
            return tuple(map(changed.get, map(_ADDRESS, fns), fns))

        by_addr = dict(self.by_addr)
        by_addr.update(changed)
        bus_self = dict(self.bus_self)
        on_bus = dict(self.on_bus)
        vfs = dict(self.vfs)
        buses: set[tuple[int, int]] = set()
        pfs: set[PciAddress] = set()
        for address, fn in changed.items():
            buses.add((address.domain, address.bus))
            if fn.is_bridge and bus_self.get((address.domain, fn.secondary_bus or 0)) is not None:
                sec_key = (address.domain, fn.secondary_bus or 0)
                if bus_self[sec_key].address == address:
                    bus_self[sec_key] = fn
            if fn.physfn is not None:
                pfs.add(fn.physfn)
        for key in buses:
            on_bus[key] = put(on_bus[key])
        for pf in pfs:
            vfs[pf] = put(vfs[pf])
        return _Index(
            by_addr=by_addr,
            bus_self=bus_self,
            bus_parent=self.bus_parent,
            on_bus=on_bus,
            order=put(self.order),
            vfs=vfs,
            child_buses=self.child_buses,
            chains={},
            tuples={},
            keys=self.keys,
            conflicts=self.conflicts,
            suspects=self.suspects,
            pos=self.pos,
        )

    @classmethod
    def build(cls, topo: Topology) -> _Index:
        functions = topo.functions
        # The functions by address, in the topology's order. (Steps over every
        # function run in C where they can: a machine has 100,000 of them.)
        if not _FUNCTION_CLASS.issuperset(map(type, functions)):
            _check_functions(functions)  # a subclass passes; anything else is named
        by_addr = dict(zip(map(_ADDRESS, functions), functions, strict=True))
        if len(by_addr) != len(functions):
            _check_functions(functions)
        # The bridges, the VFs and the bridges without bus numbers in the
        # topology's order; the buses Root Ports sit on.
        headed = [fn for fn in functions if fn.header_type in _BRIDGE_HEADERS]
        bridges = [fn for fn in headed if fn.secondary_bus is not None]
        unnumbered: dict[int, list[PciFunction]] = {}
        if len(bridges) != len(headed):
            for fn in headed:
                if fn.secondary_bus is None:
                    unnumbered.setdefault(fn.address.domain, []).append(fn)
        virtfns = [fn for fn in functions if fn.physfn is not None]
        root_port_buses = {
            (fn.address.domain, fn.address.bus)
            for fn in functions
            if fn.pcie_type is PcieType.ROOT_PORT and fn.physfn is None
        }
        # The functions of each bus, in devfn order (one key object per bus,
        # shared by every table of the index below).
        ordered = sorted(functions, key=_ADDRESS)
        on_bus: dict[tuple[int, int], tuple[PciFunction, ...]] = {}
        start, dom, bus = 0, -1, -1
        for i, fn in enumerate(ordered):
            a = fn.address
            if a[1] != bus or a[0] != dom:
                if i:
                    on_bus[(dom, bus)] = tuple(ordered[start:i])
                start, dom, bus = i, a[0], a[1]
        if ordered:
            on_bus[(dom, bus)] = tuple(ordered[start:])
        del ordered
        keys = {key: key for key in on_bus}
        intern = keys.setdefault

        bus_self: dict[tuple[int, int], PciFunction] = {}
        for fn in bridges:
            sec = fn.secondary_bus
            sub = fn.subordinate_bus if fn.subordinate_bus is not None else sec
            assert sec is not None
            if not (0 <= sec <= 0xFF and sub is not None and 0 <= sub <= 0xFF):
                raise TopologyError(
                    f"bridge {fn.address} has bus numbers out of range "
                    f"(secondary {sec}, subordinate {sub})",
                    (str(fn.address),),
                )
            if sub < sec:
                raise TopologyError(
                    f"bridge {fn.address} has subordinate bus {sub:02x} below its "
                    f"secondary bus {sec:02x}",
                    (str(fn.address),),
                )
            a = fn.address
            if sec <= a[1]:
                raise TopologyError(
                    f"bridge {a} has secondary bus {sec:02x}, not above its own bus {a[1]:02x}",
                    (str(a),),
                )
            key = (a[0], sec)
            key = intern(key, key)
            other = bus_self.get(key)
            if other is not None:
                raise TopologyError(
                    f"bus {a[0]:04x}:{sec:02x} is claimed by two bridges, {other.address} and {a}",
                    (str(other.address), str(a)),
                )
            bus_self[key] = fn

        # R11.8: a Root Port sits on a root bus. A bridge whose secondary bus
        # holds one was handed a bus another host bridge owns; the kernel
        # finds that root bus (pci_find_bus in pci_scan_bridge_extend) and
        # does not add it a second time, so the bridge is not its ``self``.
        conflicts: list[BusConflict] = []
        for key in sorted(root_port_buses & bus_self.keys()):
            br = bus_self.pop(key)
            conflicts.append(
                BusConflict(
                    br.address,
                    key[1],
                    f"bridge {br.address} has secondary bus {key[1]:02x}, but a Root Port sits "
                    f"on bus {key[1]:02x}, so it is a root bus of another host bridge: Linux "
                    "does not add it a second time, and nothing below the bridge is on it",
                )
            )

        popped = bool(conflicts)

        def subordinate(fn: PciFunction) -> int:
            sub = fn.subordinate_bus
            return sub if sub is not None else (fn.secondary_bus or 0)

        bus_parent: dict[tuple[int, int], int] = {}
        for key, br in bus_self.items():
            dom, sec = key
            own = br.address[1]
            bus_parent[key] = own
            # The bridge's own bus must be inside its parent bridge's range.
            parent = bus_self.get((dom, own))
            if parent is not None:
                psec, psub = parent.secondary_bus, parent.subordinate_bus
                sub = br.subordinate_bus
                if psub is None:
                    psub = psec or 0
                if sub is None:
                    sub = sec
                if psec is None or psec > sec or sub > psub:
                    raise TopologyError(
                        f"bridge {br.address} (buses {sec:02x}-{subordinate(br):02x}) is "
                        f"outside the range of the bridge above it, {parent.address} "
                        f"(buses {parent.secondary_bus or 0:02x}-{subordinate(parent):02x})",
                        (str(br.address), str(parent.address)),
                    )

        # A PF's VFs.
        vfs: dict[PciAddress, list[PciFunction]] = {}
        for fn in virtfns:
            assert fn.physfn is not None
            pf = by_addr.get(fn.physfn)
            if pf is None:
                raise TopologyError(
                    f"VF {fn.address} names PF {fn.physfn}, which is not in the topology",
                    (str(fn.address), str(fn.physfn)),
                )
            if pf.physfn is not None:
                raise TopologyError(
                    f"VF {fn.address} names {pf.address} as its PF, but that is itself a VF",
                    (str(fn.address), str(pf.address)),
                )
            if fn.address.domain != pf.address.domain or fn.address.rid <= pf.address.rid:
                raise TopologyError(
                    f"VF {fn.address} cannot belong to PF {pf.address}: a VF's "
                    "routing id lies above its PF's, in the same domain",
                    (str(fn.address), str(pf.address)),
                )
            pf_vfs = vfs.get(fn.physfn)
            if pf_vfs is None:
                vfs[fn.physfn] = [fn]
            else:
                pf_vfs.append(fn)
        vf_buses = {(fn.address.domain, fn.address.bus) for fn in virtfns}

        # Buses claimed by no bridge: virtual VF buses, root buses, or buses whose
        # bridge the input lacks (MissingBridge).
        suspects: list[MissingBridge] = []
        bridges_by_domain: dict[int, list[PciFunction]] | None = None
        given: dict[PciAddress, int] | None = None
        for key in sorted([key for key in on_bus if key not in bus_self]):
            fns = on_bus[key]
            dom, bus = key
            if key in vf_buses:
                pf_buses = {by_addr[f.physfn].address.bus for f in fns if f.physfn is not None}
                if len(pf_buses) == 1 and all(f.is_virtfn for f in fns):
                    (pf_bus,) = pf_buses
                    if pf_bus != bus:
                        bus_parent[keys[key]] = pf_bus
                        continue
                if all(f.is_virtfn for f in fns):
                    continue
            if bridges_by_domain is None:
                bridges_by_domain = {}
                for (d, _sec), br in bus_self.items():
                    bridges_by_domain.setdefault(d, []).append(br)
            holders = [
                br
                for br in bridges_by_domain.get(dom, ())
                if br.secondary_bus is not None and br.secondary_bus <= bus <= subordinate(br)
            ]
            kind, culprit = _bus_evidence(fns)
            if kind in ("link", "unknown") and len(fns) > 1:  # the first to give it away
                if given is None:  # where each function is in the topology's order
                    given = {f.address: i for i, f in enumerate(functions)}
                table = given
                kind, culprit = _bus_evidence(sorted(fns, key=lambda f: table[f.address]))
            if bus == 0 or kind == "root":
                # A root bus inside some bridge's bus range: the firmware gave the
                # bridge buses another host bridge owns. The kernel scans only the
                # bridge's secondary bus below it, never this one (R11.8).
                for br in holders:
                    sec = br.secondary_bus
                    conflicts.append(
                        BusConflict(
                            br.address,
                            bus,
                            f"bridge {br.address} is given buses {sec:02x}-"
                            f"{subordinate(br):02x}, which hold bus {bus:02x}, a root bus of "
                            "another host bridge: Linux keeps it a root bus, below no bridge",
                        )
                    )
                continue
            suspects.append(
                _suspect(dom, bus, kind, culprit, holders, unnumbered.get(dom, ()), subordinate)
            )

        # Device-add order: DFS per root bus (``pci_scan_child_bus``: the
        # functions of the bus, VFs aside, in devfn order, then below each of
        # its bridges, in devfn order); VFs after everything else.
        placed_on = on_bus
        if vf_buses:
            placed_on = dict(on_bus)
            for key in vf_buses:
                placed_on[key] = tuple(f for f in on_bus[key] if f.physfn is None)
        order: list[PciFunction] = []
        # A bus is reached twice only when it is a root bus a bridge was
        # given as well (R11.8, above); otherwise each is reached once.
        seen_bus: set[tuple[int, int]] | None = set() if popped else None
        for root in sorted([key for key in on_bus if key not in bus_parent]):
            stack = [root]
            while stack:
                key = stack.pop()
                if seen_bus is not None:
                    if key in seen_bus:
                        continue
                    seen_bus.add(key)
                on = placed_on.get(key)
                if on is None:
                    continue
                order.extend(on)
                for f in reversed(on):  # the first bridge's bus on top
                    if f.secondary_bus is not None and f.header_type in _BRIDGE_HEADERS:
                        stack.append((key[0], f.secondary_bus))
        placed = len(order)
        if placed != len(by_addr) - len(virtfns):  # pragma: no cover - caught above
            seen = {f.address for f in order}
            missing = [f for f in by_addr.values() if f.address not in seen and not f.is_virtfn]
            raise TopologyError(
                "functions not reachable from any root bus",
                tuple(str(f.address) for f in missing[:5]),
            )
        vfs_sorted = {
            pf: tuple(v if len(v) == 1 else sorted(v, key=_ADDRESS)) for pf, v in vfs.items()
        }
        if vfs_sorted:  # each PF's VFs, PF by PF in the order above
            added = itertools.chain.from_iterable(
                filter(None, map(vfs_sorted.get, map(_ADDRESS, order)))
            )
            order.extend(list(added))
            # A bus's functions in device-add order: its VFs come last, PF by
            # PF (in devfn order already when they are one PF's).
            rank: dict[PciAddress, int] | None = None
            for key in vf_buses:
                added_vfs = [f for f in on_bus[key] if f.physfn is not None]
                if len({f.physfn for f in added_vfs}) > 1:
                    if rank is None:
                        rank = {f.address: i for i, f in enumerate(order[placed:])}
                    ranks = rank
                    added_vfs.sort(key=lambda f: ranks[f.address])
                on_bus[key] = (*placed_on[key], *added_vfs)
        child_buses: dict[tuple[int, int], tuple[int, ...]] = {}
        several: list[tuple[int, int]] = []
        for (dom, child), parent_bus in bus_parent.items():
            key = (dom, parent_bus)
            kin = child_buses.get(key)
            if kin is None:
                child_buses[intern(key, key)] = _one_bus(child)
            else:
                if len(kin) == 1:
                    several.append(key)
                child_buses[key] = (*kin, child)
        for key in several:
            child_buses[key] = tuple(sorted(child_buses[key]))
        return cls(
            by_addr=by_addr,
            bus_self=bus_self,
            bus_parent=bus_parent,
            on_bus=on_bus,
            order=tuple(order),
            vfs=vfs_sorted,
            child_buses=child_buses,
            chains={},
            tuples={},
            keys=keys,
            conflicts=tuple(sorted(conflicts, key=lambda c: (c.bridge, c.bus))),
            suspects=tuple(sorted(suspects, key=lambda m: (m.domain, m.bus))),
        )


_ADDRESS = operator.attrgetter("address")
_FUNCTION_CLASS = frozenset({PciFunction})
_BRIDGE_HEADERS = (HEADER_BRIDGE, HEADER_CARDBUS)


def _check_functions(functions: Iterable[object]) -> None:
    """Raise for the first entry that is not a :class:`PciFunction`, or whose
    address an earlier one has (``_Index.build``'s checks, one by one)."""
    seen: set[PciAddress] = set()
    for fn in functions:
        if not isinstance(fn, PciFunction):
            raise TopologyError(f"not a PciFunction: {fn!r}")
        a = fn.address
        if a in seen:
            raise TopologyError(f"duplicate PCI address {a}", (str(a),))
        seen.add(a)


#: PCIe types that sit only on a root bus, the Root Complex's own (R11.8).
_ROOT_BUS_TYPES = frozenset({PcieType.ROOT_PORT, PcieType.RC_END, PcieType.RC_EC})
#: PCIe types with a Link above them: below a Root Port or a Downstream Port
#: (or a PCI/PCI-X-to-PCIe bridge), never on a root bus; with their names.
_LINK_TYPES: dict[PcieType, str] = {
    PcieType.ENDPOINT: "a PCIe Endpoint",
    PcieType.LEG_END: "a PCIe Legacy Endpoint",
    PcieType.UPSTREAM: "a PCIe Upstream Port",
    PcieType.DOWNSTREAM: "a PCIe Downstream Port",
    PcieType.PCI_BRIDGE: "a PCIe-to-PCI bridge",
}


def _short(address: PciAddress) -> str:
    """``bb:dd.f`` in domain 0 (as ``lspci`` prints it), else ``dddd:bb:dd.f``."""
    name = str(address)
    return name[5:] if address.domain == 0 else name


def _bus_name(domain: int, bus: int) -> str:
    return f"bus {bus:02x}" if domain == 0 else f"bus {domain:04x}:{bus:02x}"


def _bus_evidence(fns: Iterable[PciFunction]) -> tuple[str, PciFunction | None]:
    """What the functions on a bus no bridge claims say of it (SR-IOV VFs say nothing).

    ``("root", fn)``: a function that sits only on a root bus; ``("link", fn)``:
    one that never does; ``("unknown", fn)``: one whose PCIe type is not known;
    ``("conventional", None)``: conventional PCI functions only.
    """
    link: PciFunction | None = None
    unknown: PciFunction | None = None
    for f in fns:
        if f.physfn is not None:
            continue
        if f.pcie_type in _ROOT_BUS_TYPES:
            return "root", f
        if f.pcie_type in _LINK_TYPES:
            link = link or f
        elif f.pcie_type is None and f.unknown & {"pcie", "config"}:
            unknown = unknown or f
    if link is not None:
        return "link", link
    if unknown is not None:
        return "unknown", unknown
    return "conventional", None


def _suspect(
    domain: int,
    bus: int,
    kind: str,
    culprit: PciFunction | None,
    holders: Iterable[PciFunction],
    unnumbered: Iterable[PciFunction],
    subordinate: Callable[[PciFunction], int],
) -> MissingBridge:
    """A :class:`MissingBridge` for ``bus``, with why (devices are filled in later)."""
    where = _bus_name(domain, bus)
    holders = sorted(holders, key=lambda b: b.address)
    candidates = sorted((b for b in unnumbered if b.address.bus < bus), key=lambda b: b.address)
    if kind == "link":
        assert culprit is not None
        assert culprit.pcie_type is not None
        why = (
            f"{where} has no bridge in the input; {_short(culprit.address)} is "
            f"{_LINK_TYPES[culprit.pcie_type]}, which never sits on a root bus: the bridge "
            "above it is missing"
        )
    elif kind == "unknown":
        assert culprit is not None
        why = (
            f"{where} has no bridge in the input, and the PCIe type of "
            f"{_short(culprit.address)} is not known: it may sit on a root bus, or below a "
            "bridge missing from the input"
        )
    elif holders:
        br = holders[0]
        why = (
            f"{where} lies in the bus range {br.secondary_bus or 0:02x}-{subordinate(br):02x} "
            f"of bridge {_short(br.address)}, but no bridge in the input has it as its "
            "secondary bus: a bridge is missing from the input, or it is the root bus of "
            "another host bridge (R11.8)"
        )
        holders = holders[1:]
    else:
        why = (
            f"{where} has no bridge in the input and holds conventional PCI devices only: it "
            "may be the root bus of another host bridge (as a Xeon's uncore bus is; the "
            "input does not list its root buses), or the bridge above it is missing"
        )
    if holders and kind != "conventional":
        why += f" (it lies in the bus range of {', '.join(_short(b.address) for b in holders)})"
    if candidates:
        shown = ", ".join(_short(b.address) for b in candidates[:4])
        more = f" and {len(candidates) - 4} more" if len(candidates) > 4 else ""
        why += f"; bridges whose bus numbers the input does not show: {shown}{more}"
    return MissingBridge(domain, bus, kind == "link", why)
