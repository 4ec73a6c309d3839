"""Device drivers, as far as IOMMU grouping cares: what they match, whether probe succeeds.

The simulator (:mod:`iommugroups._boot.simulator`) binds drivers to devices the way
the driver core does; which driver is bound when a device reaches
``dma_configure`` decides the ``<driver> <dev>: Adding to iommu group N``
prefix (R1.4), and whether a probe succeeds decides what binds next.

Matching follows ``pci_match_device``: a device whose ``driver_override`` is
set matches only the driver of that name (``pci-stub`` matches nothing
else); otherwise a driver matches by (vendor, device) or by class under a
mask. Platform drivers match platform devices by name prefix (an ACPI
``_HID``).

The catalogue, :data:`KNOWN_DRIVERS`, holds the drivers of the oracle's arm64
captures and of the seed thread's D05 board. Each entry says what it is and
where its behaviour was read from.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs

from .._kernel.model import PcieType, PciFunction, PlatformDevice

__all__ = ["KNOWN_DRIVERS", "Driver", "ProbeResult", "get_driver"]


class ProbeResult(enum.Enum):
    """What a driver's ``probe()`` returns, as the driver core sees it."""

    #: Bound.
    OK = "ok"
    #: An error other than -EPROBE_DEFER; the next driver may try.
    FAIL = "fail"
    #: -EPROBE_DEFER; retried later (R8.2).
    DEFER = "defer"


Device = PciFunction | PlatformDevice
ProbeRule = Callable[[Device], ProbeResult]


def _always_ok(_dev: Device) -> ProbeResult:
    return ProbeResult.OK


@attrs.frozen
class Driver:
    """A driver: its name, what it matches and how its probe turns out.

    Args:
        name: the driver's name (the log prefix while it probes).
        bus: ``"pci"`` or ``"platform"``.
        ids: (vendor, device) pairs it matches; ``None`` matches any device id.
        classes: (class code, mask) pairs it matches.
        platform_names: name prefixes of platform devices it matches.
        override_only: matches only devices whose ``driver_override`` names
            it (``pci-stub`` with no ``ids=``).
        probe: decides the probe's outcome for a device (default: success).
        about: one line on what it is and where its behaviour comes from.
    """

    name: str
    bus: str = "pci"
    ids: tuple[tuple[int, int | None], ...] = ()
    classes: tuple[tuple[int, int], ...] = ()
    platform_names: tuple[str, ...] = ()
    override_only: bool = False
    probe: ProbeRule = attrs.field(default=_always_ok, eq=False)
    about: str = ""

    def matches(self, dev: Device, override: str | None = None) -> bool:
        """``pci_match_device`` / platform name match for ``dev``."""
        if isinstance(dev, PlatformDevice):
            return self.bus == "platform" and any(
                dev.name.startswith(p) for p in self.platform_names
            )
        if self.bus != "pci":
            return False
        if override is not None:  # driver_override: only the named driver
            return override == self.name
        if self.override_only:
            return False
        if any(v == dev.vendor and (d is None or d == dev.device) for v, d in self.ids):
            return True
        return any(dev.class_code & mask == cls & mask for cls, mask in self.classes)


def _pcieport_probe(dev: Device) -> ProbeResult:
    """``pcie_portdrv_probe``: -ENODEV unless a root, switch or RC event collector port."""
    if isinstance(dev, PciFunction) and dev.pcie_type in (
        PcieType.ROOT_PORT,
        PcieType.UPSTREAM,
        PcieType.DOWNSTREAM,
        PcieType.RC_EC,
    ):
        return ProbeResult.OK
    return ProbeResult.FAIL


PCI_CAP_ID_SHPC = 0x0C


def _shpchp_probe(dev: Device) -> ProbeResult:
    """``shpc_probe``: -ENODEV unless ``is_shpc_capable`` (an SHPC capability)."""
    if isinstance(dev, PciFunction) and PCI_CAP_ID_SHPC in dev.capabilities:
        return ProbeResult.OK
    return ProbeResult.FAIL


def _nvme_probe(dev: Device) -> ProbeResult:
    """nvme binds PFs; the oracle's VFs are not provisioned and fail to probe."""
    if isinstance(dev, PciFunction) and dev.is_virtfn:
        return ProbeResult.FAIL
    return ProbeResult.OK


_BRIDGE_CLASSES = ((0x060400, 0xFFFFFF), (0x060401, 0xFFFFFF))

#: Drivers the simulator knows by name (scenarios may add their own).
KNOWN_DRIVERS: dict[str, Driver] = {
    d.name: d
    for d in (
        Driver(
            "pcieport",
            classes=(*_BRIDGE_CLASSES, (0x080700, 0xFFFFFF)),
            probe=_pcieport_probe,
            about="PCIe port services (drivers/pci/pcie/portdrv.c): matches every "
            "PCI-PCI bridge class, binds root/switch ports and RC event collectors "
            "only; built in",
        ),
        Driver(
            "shpchp",
            classes=((0x060400, 0xFFFFFF),),
            probe=_shpchp_probe,
            about="standard hot-plug controller (drivers/pci/hotplug): binds bridges "
            "with an SHPC capability; built in",
        ),
        Driver(
            "serial",
            classes=((0x070000, 0xFFFF00),),
            about="8250_pci: 16550-compatible serial ports (class 07:00); built in",
        ),
        Driver("e1000e", ids=((0x8086, 0x10D3),), about="Intel 82574L (QEMU e1000e)"),
        Driver("e1000", ids=((0x8086, 0x100E),), about="Intel 82540EM (QEMU e1000)"),
        Driver(
            "nvme",
            classes=((0x010802, 0xFFFFFF),),
            probe=_nvme_probe,
            about="NVM Express (class 01:08:02); the oracle's VFs fail to probe",
        ),
        Driver(
            "pci-stub",
            override_only=True,
            about="binds only what driver_override tells it to",
        ),
        Driver(
            "mlx5_core",
            ids=((0x15B3, None),),
            about="Mellanox ConnectX-4/5 (PFs and VFs)",
        ),
        Driver(
            "hisi_sas_v2_hw",
            bus="platform",
            platform_names=("HISI0162",),
            about="HiSilicon SAS v2 (D05)",
        ),
        Driver(
            "hns_dsaf",
            bus="platform",
            platform_names=("HISI00B2",),
            about="HiSilicon network subsystem (D05)",
        ),
        Driver(
            "ehci-platform",
            bus="platform",
            platform_names=("PNP0D20",),
            about="generic EHCI USB host (D05)",
        ),
    )
}


def get_driver(name: str) -> Driver:
    """The catalogue's driver called ``name``.

    Raises:
        KeyError: unknown driver (the message lists the known ones).
    """
    try:
        return KNOWN_DRIVERS[name]
    except KeyError:
        known = ", ".join(sorted(KNOWN_DRIVERS))
        raise KeyError(f"unknown driver {name!r}; known drivers: {known}") from None
