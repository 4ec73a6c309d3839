"""What VFIO needs of an IOMMU group before a VM can have one of its devices.

Two kernel rules decide whether ``vfio-pci`` can take a device and use its
group:

* **DMA ownership** (R12.1; since v5.19, "vfio: Set DMA ownership for VFIO
  devices"; checked in 6.1, 6.12, 7.2 and 7.3). When a driver binds to a PCI
  device, ``pci_dma_configure`` (``drivers/pci/pci-driver.c``) calls
  ``iommu_device_use_default_domain``, which counts the device as a user of
  its group's kernel DMA domain (``group->owner_cnt``), unless the driver
  sets ``driver_managed_dma``. VFIO takes the group with
  ``iommu_group_claim_dma_owner`` (``drivers/iommu/iommu.c``), which
  refuses (-EPERM) while that count is not zero. So every member of the
  group must have no driver, or one that manages DMA itself: in
  ``drivers/pci`` those are ``pcieport`` (``portdrv.c``) and ``pci-stub``;
  and ``vfio-pci`` itself (``drivers/vfio/pci/vfio_pci.c``) and its variant
  drivers. Any other host driver, on an endpoint *or a
  bridge* (``shpchp``, say), keeps VFIO out of the group.
* **What vfio-pci binds** (R12.2; ``vfio_pci_core_register_device`` in
  ``drivers/vfio/pci/vfio_pci_core.c``): only functions with a normal
  header (type 0): never a PCI-to-PCI or CardBus bridge, so bridges stay
  with the host (bound to ``pcieport``, which is allowed above); and not a
  PF whose SR-IOV VFs are enabled.

Bridges (header type 1 or 2) and the other members of class 0x06 (host,
ISA, other bridges: header type 0, but nothing a VM is given) stay with the
host; every other member must go to the VM with the device, or at least be
left without a driver.
"""

from __future__ import annotations

from .model import HEADER_NORMAL, PciFunction, Topology

__all__ = [
    "DRIVER_MANAGED_DMA",
    "blocks_dma_owner",
    "is_vfio_driver",
    "stays_with_host",
    "vfio_pci_refuses",
]

#: Drivers that set ``driver_managed_dma`` (or are VFIO): binding them does not
#: count the device as a user of its group's kernel DMA domain.
DRIVER_MANAGED_DMA = frozenset({"pcieport", "pci-stub", "vfio-pci"})


def is_vfio_driver(driver: str | None) -> bool:
    """``vfio-pci``, or one of VFIO's PCI variant drivers built on ``vfio_pci_core``
    (``mlx5_vfio_pci``, ``ice-vfio-pci``, ...), which set ``driver_managed_dma`` too.

    >>> is_vfio_driver("vfio-pci"), is_vfio_driver("mlx5_vfio_pci"), is_vfio_driver("nvme")
    (True, True, False)
    """
    return driver is not None and (
        driver == "vfio-pci" or driver.endswith(("_vfio_pci", "-vfio-pci"))
    )


def blocks_dma_owner(driver: str | None) -> bool:
    """Does a member bound to ``driver`` keep VFIO from claiming its group?

    ``None`` is no driver. A driver this module does not know to manage DMA
    itself is taken to use the kernel's DMA API (as every driver does unless
    it says otherwise).

    >>> blocks_dma_owner("pcieport"), blocks_dma_owner(None), blocks_dma_owner("nouveau")
    (False, False, True)
    """
    return driver is not None and driver not in DRIVER_MANAGED_DMA and not is_vfio_driver(driver)


def stays_with_host(fn: PciFunction) -> bool:
    """A bridge: header type 1 or 2, or class 0x06 (host, ISA, PCI, other bridges).

    ``vfio-pci`` binds no bridge header, and a host or ISA bridge is the
    platform's own: neither is given to a VM.
    """
    return fn.header_type != HEADER_NORMAL or fn.is_bridge or fn.class_code >> 16 == 0x06


def vfio_pci_refuses(fn: PciFunction, topology: Topology) -> str | None:
    """Why ``vfio-pci`` would not bind ``fn`` (``vfio_pci_core_register_device``), or ``None``."""
    if fn.header_type != HEADER_NORMAL:
        return "vfio-pci binds only functions with a normal header (type 0)"
    enabled = len(topology.vfs_of(fn.address))
    if fn.sriov is not None:
        enabled = max(enabled, fn.sriov.num_vfs)
    if enabled:
        return (
            f"a PF with {enabled} SR-IOV VF{'s' if enabled > 1 else ''} enabled: vfio-pci "
            "refuses it until sriov_numvfs is 0"
        )
    return None
