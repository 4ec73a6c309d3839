"""The reset methods the PCI core finds for a function: ``pci_init_reset_methods``.

When a device is added, ``pci_init_reset_methods`` (``drivers/pci/pci.c``,
R12.3) probes each entry of ``pci_reset_fn_methods[]`` in table order and keeps
those that answer 0; ``/sys/bus/pci/devices/*/reset_method`` lists them, and
``pci_reset_function`` (which ``vfio-pci`` calls between VM runs) tries them
in that order. The entries, as Linux 6.1, 6.12, 7.2 and 7.3 have them
(``cxl_bus`` is not in 6.1 and is in 6.12):

================  ==========================  ======================================
method            kernel function             available when
================  ==========================  ======================================
device_specific   ``pci_dev_specific_reset``  the device is in ``pci_dev_reset_methods[]``
                                              (``drivers/pci/quirks.c``) and its entry's
                                              probe agrees (not modelled: unknown)
acpi              ``pci_dev_acpi_reset``      the firmware gives the device an ``_RST``
                                              method (the input never shows it: unknown)
flr (R12.4)       ``pcie_reset_flr``          the PCIe Device Capabilities register has
                                              Function Level Reset (bit 28,
                                              ``PCI_EXP_DEVCAP_FLR``), and no quirk sets
                                              ``PCI_DEV_FLAGS_NO_FLR_RESET``
af_flr            ``pci_af_flr``              an Advanced Features capability with both
                                              ``TP`` and ``FLR`` (``PCI_AF_CAP``), same
                                              quirk
pm (R12.5)        ``pci_pm_reset``            a Power Management capability whose
                                              PMCSR has ``No_Soft_Reset`` clear
                                              (``PCI_PM_CTRL_NO_SOFT_RESET``), and no quirk
                                              sets ``PCI_DEV_FLAGS_NO_PM_RESET``
bus (R12.6)       ``pci_reset_bus_function``  a hot-plug slot's reset
                                              (``pci_dev_reset_slot_function``), else a
                                              secondary bus reset of the bridge above
                                              (``pci_parent_bus_reset``): only for a device
                                              that is not a bridge, not on a root bus,
                                              below a bridge, alone on its bus (no other
                                              function, not even of the same device), and
                                              without ``PCI_DEV_FLAGS_NO_BUS_RESET``
cxl_bus           ``cxl_reset_bus_function``  the bridge above is a CXL port (its DVSEC;
                                              not in the model: unknown)
================  ==========================  ======================================

The topology has the tree, so ``bus`` is decided from it (except for
hot-plug slots, which the model does not know). ``flr``, ``af_flr`` and
``pm`` need registers the model does not keep in :class:`PciFunction`: they
are decided only from a function's raw configuration space
(:func:`reset_registers`), and are unknown otherwise. The quirks that take a
method away are modelled as the four kernels have them
(:data:`NO_FLR_RESET`, :data:`NO_PM_RESET`, :data:`NO_BUS_RESET`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from .config import (
    PCI_CAP_ID_EXP,
    PCI_HEADER_TYPE,
    ConfigData,
    _as_space,
    _Reader,
    _walk_std_caps,
)
from .model import PciFunction, Topology
from .version import NEWEST, KernelVersion, resolve_kernel

__all__ = [
    "NO_BUS_RESET",
    "NO_FLR_RESET",
    "NO_PM_RESET",
    "RESET_METHODS",
    "Availability",
    "ResetMethod",
    "ResetMethods",
    "ResetRegisters",
    "pci_reset_methods",
    "reset_registers",
]

# include/uapi/linux/pci_regs.h
PCI_CAP_ID_PM = 0x01
PCI_CAP_ID_AF = 0x13
PCI_PM_CTRL = 4
PCI_PM_CTRL_NO_SOFT_RESET = 0x0008
PCI_AF_CAP = 3
PCI_AF_CAP_TP = 0x01
PCI_AF_CAP_FLR = 0x02
PCI_EXP_DEVCAP = 4
PCI_EXP_DEVCAP_FLR = 0x10000000

#: ``pci_reset_fn_methods[]`` in table order: (name, kernel function).
RESET_METHODS: tuple[tuple[str, str], ...] = (
    ("device_specific", "pci_dev_specific_reset"),
    ("acpi", "pci_dev_acpi_reset"),
    ("flr", "pcie_reset_flr"),
    ("af_flr", "pci_af_flr"),
    ("pm", "pci_pm_reset"),
    ("bus", "pci_reset_bus_function"),
    ("cxl_bus", "cxl_reset_bus_function"),
)

#: ``cxl_bus`` is in 6.12, 7.2 and 7.3, not in 6.1.
_CXL_BUS_SINCE = KernelVersion(6, 12)

_V61 = KernelVersion(6, 1)
_V612 = KernelVersion(6, 12)
_V72 = KernelVersion(7, 2)
_ANY = -1

#: ``pci_dev_reset_methods[]`` (drivers/pci/quirks.c): (vendor, device; -1 any).
#: The same nine entries in 6.1, 6.12, 7.2 and 7.3.
_DEVICE_SPECIFIC: tuple[tuple[int, int], ...] = (
    (0x8086, 0x10ED),  # 82599 SFP VF: reset_intel_82599_sfp_virtfn
    (0x8086, 0x0156),  # Ivy Bridge IGD: reset_ivb_igd
    (0x8086, 0x0166),
    (0x144D, 0xA804),  # Samsung SM961/PM961 NVMe: nvme_disable_and_flr
    (0x8086, 0x0953),  # Intel 750 NVMe: delay_250ms_after_flr
    (0x8086, 0x0A54),
    (0x025E, 0xF1AC),  # Solidigm
    (0x1425, _ANY),  # Chelsio: reset_chelsio_generic_dev
    (0x19E5, 0x375E),  # Huawei HiNIC VF: reset_hinic_vf_dev
)

#: ``quirk_no_flr`` (and ``quirk_no_flr_snet``, revision 1 only): (vendor,
#: device, first checked tree that has it). FLR may hang these devices.
NO_FLR_RESET: tuple[tuple[int, int, KernelVersion], ...] = (
    (0x1022, 0x1487, _V61),  # AMD Starship/Matisse HD audio
    (0x1022, 0x148C, _V61),  # AMD Starship USB 3.0
    (0x1022, 0x149C, _V61),  # AMD Matisse USB 3.0
    (0x1022, 0x7901, _V61),
    (0x1022, 0x1502, _V72),  # AMD NPU (not in 6.12)
    (0x1022, 0x17F0, _V72),
    (0x8086, 0x1502, _V61),  # Intel 82579LM
    (0x8086, 0x1503, _V61),  # Intel 82579V
    (0x14C3, 0x0616, _V612),  # MediaTek MT7922 (not in 6.1)
    (0x14C3, 0x7925, _V612),  # MediaTek MT7925
)
_SNET = (0xD063, 0x1000)  # SolidRun SNET DPU, revision 1 (quirk_no_flr_snet)

#: ``quirk_no_pm_reset`` by id (Mellanox Spectrum switches); also every ATI/AMD
#: (vendor 0x1002) VGA controller not on a root bus (a class quirk). In all four.
NO_PM_RESET: tuple[tuple[int, int], ...] = (
    (0x15B3, 0xCB84),
    (0x15B3, 0xCF6C),
    (0x15B3, 0xCF70),
    (0x15B3, 0xCF80),
)

#: ``quirk_no_bus_reset``: (vendor, device, first checked tree that has it);
#: also NVIDIA devices with ``(device & 0xffc0) == 0x2340``
#: (``quirk_nvidia_no_bus_reset``), in all four.
NO_BUS_RESET: tuple[tuple[int, int, KernelVersion], ...] = (
    (0x10DE, 0x22CE, _V61),  # NVIDIA GB10 root ports
    (0x10DE, 0x22D0, _V61),
    (0x168C, 0x0030, _V61),  # Atheros AR9xxx, QCA988x
    (0x168C, 0x0032, _V61),
    (0x168C, 0x003C, _V61),
    (0x168C, 0x0033, _V61),
    (0x168C, 0x0034, _V61),
    (0x168C, 0x003E, _V61),
    (0x17CB, 0x1103, _V612),  # Qualcomm WCN6855 (not in 6.1)
    (0x17CB, 0x1107, _V612),  # WCN7850
    (0x17CB, 0x0308, _V612),  # SDX62/SDX65
    (0x177D, 0xA100, _V61),  # Cavium CN8xxx root port
    (0x104C, 0xB005, _V61),  # TI KeyStone C667X
    (0x1B21, 0x1164, _V61),  # ASMedia ASM1164
)


class Availability(str, enum.Enum):
    """Whether the kernel would find a reset method (its probe answers 0)."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class ResetRegisters:
    """The configuration-space bits the reset probes read (``None``: not readable).

    Attributes:
        flr: the PCIe Device Capabilities register's Function Level Reset bit
            (``False`` too for a function without a PCIe capability).
        af_flr: an Advanced Features capability advertising both Transactions
            Pending and FLR (``False`` when there is none).
        pm: a Power Management capability is present.
        no_soft_reset: its PMCSR's ``No_Soft_Reset`` bit (``None`` without one).
    """

    flr: bool | None = None
    af_flr: bool | None = None
    pm: bool | None = None
    no_soft_reset: bool | None = None


def reset_registers(config: ConfigData) -> ResetRegisters:
    """Read the bits the reset probes look at from raw configuration space.

    The capability list is walked as ``pci_find_capability`` walks it (the
    walk :mod:`~iommugroups._kernel.config` uses); a register that cannot be
    read (a 64-byte dump, a hole) leaves its bit ``None``.

    >>> from iommugroups._kernel.config import ConfigSpace
    >>> cfg = bytearray(256)
    >>> cfg[0x06], cfg[0x34] = 0x10, 0x40                 # capability list at 0x40
    >>> cfg[0x40:0x42] = bytes([0x01, 0x50])              # PM, next at 0x50
    >>> cfg[0x44] = 0x08                                  # PMCSR: No_Soft_Reset
    >>> cfg[0x50:0x52] = bytes([0x10, 0x00])              # PCI Express, last
    >>> cfg[0x54:0x58] = (1 << 28).to_bytes(4, "little")  # DevCap: FLR
    >>> reset_registers(bytes(cfg))
    ResetRegisters(flr=True, af_flr=False, pm=True, no_soft_reset=True)
    >>> reset_registers(bytes(cfg[:64]))
    ResetRegisters(flr=None, af_flr=None, pm=None, no_soft_reset=None)
    """
    rd = _Reader(_as_space(config))
    header = rd.u8(PCI_HEADER_TYPE)
    if header is None:
        return ResetRegisters()
    caps = _walk_std_caps(rd, header & 0x7F)

    flr: bool | None = None
    exp, known = caps.lookup(PCI_CAP_ID_EXP)
    if exp is not None:
        devcap = rd.u32(exp + PCI_EXP_DEVCAP)
        flr = None if devcap is None else bool(devcap & PCI_EXP_DEVCAP_FLR)
    elif known:
        flr = False

    af_flr: bool | None = None
    af, known = caps.lookup(PCI_CAP_ID_AF)
    if af is not None:
        cap = rd.u8(af + PCI_AF_CAP)
        af_flr = None if cap is None else bool(cap & PCI_AF_CAP_TP and cap & PCI_AF_CAP_FLR)
    elif known:
        af_flr = False

    pm: bool | None = None
    no_soft_reset: bool | None = None
    pos, known = caps.lookup(PCI_CAP_ID_PM)
    if pos is not None:
        pm = True
        csr = rd.u16(pos + PCI_PM_CTRL)
        no_soft_reset = None if csr is None else bool(csr & PCI_PM_CTRL_NO_SOFT_RESET)
    elif known:
        pm = False
    return ResetRegisters(flr=flr, af_flr=af_flr, pm=pm, no_soft_reset=no_soft_reset)


@attrs.frozen
class ResetMethod:
    """One entry of ``pci_reset_fn_methods[]`` for one function.

    Attributes:
        name: the name ``reset_method`` in sysfs shows (``"flr"``, ``"bus"``...).
        function: the kernel function that probes it.
        available: whether its probe would answer 0.
        why: in words, with the register bit, quirk or tree fact that decided.
    """

    name: str
    function: str
    available: Availability
    why: str


def _strs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _methods(value: Iterable[ResetMethod]) -> tuple[ResetMethod, ...]:
    return tuple(value)


@attrs.frozen
class ResetMethods:
    """The reset methods of one function, in the kernel's order.

    Attributes:
        device: the function (``dddd:bb:dd.f``).
        methods: one :class:`ResetMethod` per entry of ``pci_reset_fn_methods[]``
            the kernel modelled has.
        bridge: the bridge a bus reset would go through (``dev->bus->self``),
            ``None`` on a root bus or a virtual (SR-IOV) bus.
        shares_bus: the other functions on the device's bus, which a secondary
            bus reset would reset too (so ``pci_parent_bus_reset`` refuses).
        below: what a secondary bus reset of ``bridge`` would reset besides the
            device (its VFs), where the kernel would do one; empty otherwise.
    """

    device: str
    methods: tuple[ResetMethod, ...] = attrs.field(converter=_methods)
    bridge: str | None = None
    shares_bus: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    below: tuple[str, ...] = attrs.field(default=(), converter=_strs)

    @property
    def available(self) -> Availability:
        """``yes`` if some method is available, ``no`` if none can be, else ``unknown``."""
        seen = {m.available for m in self.methods}
        if Availability.YES in seen:
            return Availability.YES
        if Availability.UNKNOWN in seen:
            return Availability.UNKNOWN
        return Availability.NO

    def method(self, name: str) -> ResetMethod:
        """The entry called ``name``.

        Raises:
            KeyError: the kernel modelled has no such method.
        """
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(name)


def _in_table(
    fn: PciFunction, table: Iterable[tuple[int, int, KernelVersion]], kernel: KernelVersion
) -> bool:
    return any(
        fn.vendor == v and fn.device == d and since <= max(kernel, _V61) for v, d, since in table
    )


def _no_flr_quirk(fn: PciFunction, kernel: KernelVersion) -> bool | None:
    """``PCI_DEV_FLAGS_NO_FLR_RESET`` (``quirk_no_flr``, ``quirk_no_flr_snet``)."""
    if _in_table(fn, NO_FLR_RESET, kernel):
        return True
    if (fn.vendor, fn.device) == _SNET:
        return None if fn.revision is None else fn.revision == 0x1
    return False


def _no_pm_quirk(fn: PciFunction, topology: Topology) -> bool:
    """``PCI_DEV_FLAGS_NO_PM_RESET`` (``quirk_no_pm_reset``)."""
    if (fn.vendor, fn.device) in NO_PM_RESET:
        return True
    # DECLARE_PCI_FIXUP_CLASS_HEADER(ATI, ANY, PCI_CLASS_DISPLAY_VGA, 8, ...): not
    # on a root bus, where no bus reset could replace the (ineffective) PM reset.
    return (
        fn.vendor == 0x1002
        and fn.class_code >> 8 == 0x0300
        and not topology.is_root_bus(fn.address.domain, fn.address.bus)
    )


def _no_bus_quirk(fn: PciFunction, kernel: KernelVersion) -> bool:
    """``PCI_DEV_FLAGS_NO_BUS_RESET`` (``quirk_no_bus_reset``, ``quirk_nvidia_no_bus_reset``)."""
    if fn.vendor == 0x10DE and fn.device & 0xFFC0 == 0x2340:
        return True
    return _in_table(fn, NO_BUS_RESET, kernel)


def _register_method(
    name: str,
    function: str,
    bit: bool | None,
    quirk: bool | None,
    what: str,
    missing: str,
    quirk_name: str,
) -> ResetMethod:
    if quirk:
        return ResetMethod(name, function, Availability.NO, f"a quirk sets {quirk_name}")
    if bit is None:
        return ResetMethod(name, function, Availability.UNKNOWN, missing)
    if not bit:
        return ResetMethod(name, function, Availability.NO, f"no {what}")
    if quirk is None:
        return ResetMethod(
            name, function, Availability.UNKNOWN, f"{what}, but a quirk may set {quirk_name}"
        )
    return ResetMethod(name, function, Availability.YES, what)


_NOT_KEPT = "not known: the model keeps no {} (pass the raw configuration space)"


def pci_reset_methods(
    topology: Topology,
    fn: PciFunction,
    registers: ResetRegisters | None = None,
    *,
    kernel: KernelVersion | str | None = None,
) -> ResetMethods:
    """What ``pci_init_reset_methods`` finds for ``fn`` (see the module docstring).

    Args:
        topology: the machine (the bus ``fn`` sits on, the bridge above it).
        fn: the function.
        registers: its reset bits (:func:`reset_registers`); ``None``: not
            known, so ``flr``, ``af_flr`` and ``pm`` are unknown.
        kernel: the kernel modelled (its quirk tables; ``cxl_bus`` since 6.12).

    >>> from iommugroups import examples
    >>> topo = examples.desktop()
    >>> r = pci_reset_methods(topo, topo.get("01:00.0"))
    >>> r.method("bus").available.value, r.shares_bus
    ('no', ('0000:01:00.1',))
    >>> r = pci_reset_methods(topo, topo.get("08:00.0"), ResetRegisters(flr=True))
    >>> r.method("flr").available.value, r.method("bus").available.value, r.bridge
    ('yes', 'yes', '0000:07:08.0')
    """
    version = resolve_kernel(kernel) if kernel is not None else NEWEST
    regs = registers if registers is not None else ResetRegisters()
    ids_known = "ids" not in fn.unknown
    out: list[ResetMethod] = []

    # device_specific: the first pci_dev_reset_methods[] entry that matches
    match = [(v, d) for v, d in _DEVICE_SPECIFIC if v == fn.vendor and d in (fn.device, _ANY)]
    if not ids_known:
        out.append(
            ResetMethod(
                "device_specific",
                "pci_dev_specific_reset",
                Availability.UNKNOWN,
                "the input does not show the device's ids",
            )
        )
    elif match:
        out.append(
            ResetMethod(
                "device_specific",
                "pci_dev_specific_reset",
                Availability.UNKNOWN,
                "the kernel's pci_dev_reset_methods[] has an entry for it, whose own probe "
                "the model does not run",
            )
        )
    else:
        out.append(
            ResetMethod(
                "device_specific",
                "pci_dev_specific_reset",
                Availability.NO,
                "not in the kernel's pci_dev_reset_methods[]",
            )
        )

    out.append(
        ResetMethod(
            "acpi",
            "pci_dev_acpi_reset",
            Availability.UNKNOWN,
            "needs the firmware's ACPI _RST method for it, which the input does not show",
        )
    )

    no_flr = _no_flr_quirk(fn, version) if ids_known else None
    out.append(
        _register_method(
            "flr",
            "pcie_reset_flr",
            regs.flr,
            no_flr,
            "Function Level Reset in the PCIe Device Capabilities (bit 28)",
            _NOT_KEPT.format("PCIe Device Capabilities"),
            "PCI_DEV_FLAGS_NO_FLR_RESET",
        )
    )
    out.append(
        _register_method(
            "af_flr",
            "pci_af_flr",
            regs.af_flr,
            no_flr,
            "Advanced Features capability with TP and FLR",
            _NOT_KEPT.format("Advanced Features capability"),
            "PCI_DEV_FLAGS_NO_FLR_RESET",
        )
    )

    pm_bit: bool | None
    if regs.pm is False:
        pm_bit = False
        pm_what = "Power Management capability"
    elif regs.pm and regs.no_soft_reset is not None:
        pm_bit = not regs.no_soft_reset
        pm_what = (
            "No_Soft_Reset clear in the PM control/status register"
            if pm_bit
            else "soft reset: No_Soft_Reset is set in the PM control/status register"
        )
    else:
        pm_bit = None
        pm_what = ""
    no_pm = _no_pm_quirk(fn, topology) if ids_known else None
    out.append(
        _register_method(
            "pm",
            "pci_pm_reset",
            pm_bit,
            no_pm,
            pm_what,
            _NOT_KEPT.format("PM control/status register"),
            "PCI_DEV_FLAGS_NO_PM_RESET",
        )
    )

    bus, bridge, shares, below = _bus_reset(topology, fn, version, ids_known)
    out.append(bus)

    if version >= _CXL_BUS_SINCE:
        if bridge is None:
            out.append(
                ResetMethod(
                    "cxl_bus",
                    "cxl_reset_bus_function",
                    Availability.NO,
                    "no bridge above it (pci_upstream_bridge)",
                )
            )
        else:
            out.append(
                ResetMethod(
                    "cxl_bus",
                    "cxl_reset_bus_function",
                    Availability.UNKNOWN,
                    f"needs a CXL port DVSEC on the bridge above ({bridge}), which the model "
                    "does not know",
                )
            )
    return ResetMethods(str(fn.address), out, bridge, shares, below)


def _bus_reset(
    topology: Topology, fn: PciFunction, kernel: KernelVersion, ids_known: bool
) -> tuple[ResetMethod, str | None, tuple[str, ...], tuple[str, ...]]:
    """``pci_reset_bus_function``: a hot-plug slot's reset, else ``pci_parent_bus_reset``."""
    name, function = "bus", "pci_reset_bus_function"
    addr = fn.address
    self_ = topology.bus_self(addr.domain, addr.bus)  # dev->bus->self
    bridge = str(self_.address) if self_ is not None else None
    others = tuple(
        str(f.address) for f in topology.devices_on_bus(addr.domain, addr.bus) if f is not fn
    )
    # a secondary bus reset resets everything below the bridge: computed only where the
    # kernel would do one (alone on the bus: then only the device's VFs are below)
    below = (
        tuple(
            str(f.address) for f in topology.functions_below(addr.domain, addr.bus) if f is not fn
        )
        if self_ is not None and not others
        else ()
    )

    def result(
        avail: Availability, why: str
    ) -> tuple[ResetMethod, str | None, tuple[str, ...], tuple[str, ...]]:
        return ResetMethod(name, function, avail, why), bridge, others, below

    if fn.is_bridge:
        return result(
            Availability.NO, "a bridge (dev->subordinate): the kernel resets only what is below it"
        )
    if not ids_known:
        return result(Availability.UNKNOWN, "the input does not show the device's ids (quirks)")
    if _no_bus_quirk(fn, kernel):
        return result(Availability.NO, "a quirk sets PCI_DEV_FLAGS_NO_BUS_RESET")
    if topology.is_root_bus(addr.domain, addr.bus):
        return result(Availability.NO, "on a root bus: no bridge above it to reset its bus")
    if self_ is None:
        return result(
            Availability.NO, "on a virtual (SR-IOV) bus, which has no bridge (dev->bus->self)"
        )
    if not others:
        return result(
            Availability.YES,
            f"alone on its bus: a secondary bus reset of {bridge} (pci_parent_bus_reset)",
        )
    shown = ", ".join(others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4 else "")
    refused = f"pci_parent_bus_reset refuses: {shown} also on its bus would be reset too"
    if topology.is_multifunction(fn):
        return result(
            Availability.NO,
            f"{refused}; a hot-plug slot's reset is refused for a multifunction device "
            "(unless the platform makes slots per function, as s390 does)",
        )
    return result(
        Availability.UNKNOWN,
        f"{refused}; a hot-plug slot's reset (pci_dev_reset_slot_function) could serve, and "
        "the model does not know slots",
    )
