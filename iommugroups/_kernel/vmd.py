"""Intel VMD: devices behind a Volume Management Device do DMA as the VMD endpoint.

Models ``drivers/pci/controller/vmd.c`` (the domain the driver creates,
R11.1) and the x86 ``pci_real_dma_dev()`` of ``arch/x86/pci/common.c``
(R3.1): every device in a VMD domain has the VMD endpoint as its real DMA
device, so ``pci_for_each_dma_alias`` starts from the endpoint, the IOMMU
driver looks the endpoint's unit up (``device_lookup_iommu``) and
``pci_device_group`` finds the endpoint's group. Since v5.6 such a device
therefore joins the endpoint's group; before v5.6 it got no group.

The VMD domains a topology holds, and their endpoints, are facts of the
input (:attr:`~iommugroups.Platform.vmd`); a device in a domain numbered
like a VMD domain (``0x10000`` and up) whose endpoint the input does not
name is :func:`vmd_unknown`.
"""

from __future__ import annotations

from .model import VMD_DEVICE_IDS, VMD_DOMAIN_BASE, VMD_VENDOR, PciAddress, PciFunction, Topology

__all__ = [
    "VMD_DEVICE_IDS",
    "is_vmd_endpoint",
    "pci_real_dma_dev",
    "vmd_endpoint_of",
    "vmd_unknown",
]


def is_vmd_endpoint(fn: PciFunction) -> bool:
    """Whether ``fn`` is a device the ``vmd`` driver binds (its ids are in ``vmd_ids[]``).

    >>> is_vmd_endpoint(PciFunction("00:0e.0", vendor=0x8086, device=0x9A0B))
    True
    """
    return fn.vendor == VMD_VENDOR and fn.device in VMD_DEVICE_IDS


def vmd_endpoint_of(fn: PciFunction | PciAddress, topology: Topology) -> PciAddress | None:
    """The VMD endpoint whose domain ``fn`` is in (R11.1), or ``None``."""
    address = fn.address if isinstance(fn, PciFunction) else fn
    if address.domain < VMD_DOMAIN_BASE:
        return None
    return topology.platform.vmd_endpoint(address.domain)


def pci_real_dma_dev(fn: PciFunction, topology: Topology) -> PciFunction:
    """R3.1 ``pci_real_dma_dev``: the VMD endpoint for a device in a VMD domain, else ``fn``.

    >>> from iommugroups import Platform, Topology, VmdDomain
    >>> vmd = PciFunction("00:0e.0", vendor=0x8086, device=0x9A0B)
    >>> nvme = PciFunction("10000:e1:00.0")
    >>> topo = Topology([vmd, nvme], platform=Platform(vmd=[VmdDomain(0x10000, "00:0e.0")]))
    >>> str(pci_real_dma_dev(nvme, topo))
    '0000:00:0e.0'
    """
    endpoint = vmd_endpoint_of(fn, topology)
    return fn if endpoint is None else topology.get(endpoint)


def vmd_unknown(fn: PciFunction | PciAddress, topology: Topology) -> bool:
    """``fn`` is in a domain numbered like a VMD domain whose endpoint the input does not name.

    Its real DMA device (R3.1), and so its group, cannot be known.
    """
    address = fn.address if isinstance(fn, PciFunction) else fn
    return address.domain >= VMD_DOMAIN_BASE and vmd_endpoint_of(address, topology) is None
