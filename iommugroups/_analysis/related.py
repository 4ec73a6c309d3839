"""What must go to a VM together with a device.

What goes to a VM together (:func:`related`)
--------------------------------------------
VFIO assigns IOMMU *groups*, not devices. For a device ``D`` in group ``G``:

* ``together``: every member of ``G`` that does not stay with the host
  (platform devices included), ``D`` included unless it stays.
  Before ``G`` can be used by VFIO, *each* of them must be bound to
  ``vfio-pci`` (or ``pci-stub``, or no driver): none may stay with a host
  driver, and all the ones a VM uses must go to the same VM (one VFIO
  container). A member not given to the VM is still lost to the host.
* ``bridges``: members that stay with the host
  (:func:`~iommugroups._kernel.vfio.stays_with_host`): a bridge header
  (PCI-PCI, CardBus), which ``vfio-pci`` never binds (R12.2), or a function
  of class 0x06 (a host or ISA bridge: the platform's own). They are never
  assigned; a bridge may stay bound to ``pcieport`` (R12.1), but they
  share the group's IOMMU domain: once ``G`` belongs to the VM, their own
  DMA is translated by the VM's mappings (their MSI error notifications
  may be affected).
* ``bus_reset``: devices outside ``G`` that a secondary bus reset of the
  bus ``D`` sits on would reset too (everything on that bus and below it).
  They matter only when ``D`` cannot be reset on its own (no function-level
  reset, which the model does not know): VFIO's hot reset then needs the
  user to own every group among them. Empty for a device on a root bus (no
  bridge can reset it) and for an SR-IOV VF (VFs must support FLR).

"""

from __future__ import annotations

from .._errors import InvalidAddress, UnknownDevice
from .._kernel.groups import device_sort_key
from .._kernel.model import PciAddress, PciFunction
from .._kernel.vfio import stays_with_host
from .show import Member, Related, ShowResult

__all__ = ["related"]


def _stays(m: Member) -> bool:
    return isinstance(m.node, PciFunction) and stays_with_host(m.node)


def related(result: ShowResult, device: str | PciAddress) -> Related:
    """What must go to a VM together with ``device`` (see the module docstring).

    Raises:
        UnknownDevice: ``device`` is not in the topology.

    >>> from iommugroups import examples, related, show
    >>> r = related(show(examples.desktop()), "03:00.0")
    >>> r.group, r.together, r.bridges
    (4, ('0000:03:00.0', '0000:04:00.0'), ('0000:00:1c.0', '0000:00:1c.1'))
    """
    topology = result.topology
    platform = {p.name for p in topology.platform_devices}
    name = device if isinstance(device, str) and device in platform else None
    if name is None:
        try:
            name = str(device if isinstance(device, PciAddress) else PciAddress.parse(device))
        except InvalidAddress:
            raise UnknownDevice(f"no device {device} in the topology") from None
        if name not in topology:
            raise UnknownDevice(f"no device {device} in the topology")
    gid = result.grouping.group_of(name)
    if gid is None:
        why = result.grouping.ungrouped.get(name, "no group")
        return Related(name, None, f"no group: {why}", (name,))
    view = result.group(gid)
    host = {m.name for m in view.members if _stays(m)}
    together = tuple(m.name for m in view.members if m.name not in host)
    bridges = tuple(m.name for m in view.members if m.name in host)
    reset: list[str] = []
    if name not in platform:
        fn = topology.get(name)
        above = topology.bridge_above(fn.address)
        if above is not None and fn.physfn is None and above.secondary_bus is not None:
            members = {m.name for m in view.members}
            under = topology.functions_below(fn.address.domain, above.secondary_bus)
            reset = sorted(
                (str(f.address) for f in under if str(f.address) not in members),
                key=device_sort_key,
            )
    groups = sorted({g for d in reset if (g := result.grouping.group_of(d)) is not None})
    return Related(name, gid, view.reason, together, bridges, tuple(reset), tuple(groups))
