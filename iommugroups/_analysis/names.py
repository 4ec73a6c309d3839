"""Devices in words: class names, short addresses, kinds of device.

Display helpers shared by the analyses and the renderers; nothing here
decides a rule.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from .._errors import InvalidAddress
from .._kernel.model import HEADER_CARDBUS, HEADER_NORMAL, PciAddress, PcieType, PciFunction
from .._kernel.pci_ids import subclass_names

__all__ = ["PCIE_TYPE_KEYS", "class_name", "device_kind", "listed", "pcie_type_key", "short_name"]

#: The base-class names of ``pci.ids`` (subclass names come from the bundled subset).
_BASE_CLASSES: Mapping[int, str] = {
    0x00: "Unclassified device",
    0x01: "Mass storage controller",
    0x02: "Network controller",
    0x03: "Display controller",
    0x04: "Multimedia controller",
    0x05: "Memory controller",
    0x06: "Bridge",
    0x07: "Communication controller",
    0x08: "Generic system peripheral",
    0x09: "Input device controller",
    0x0A: "Docking station",
    0x0B: "Processor",
    0x0C: "Serial bus controller",
    0x0D: "Wireless controller",
    0x0E: "Intelligent controller",
    0x0F: "Satellite communications controller",
    0x10: "Encryption controller",
    0x11: "Signal processing controller",
    0x12: "Processing accelerators",
    0x13: "Non-Essential Instrumentation",
    0x40: "Coprocessor",
    0xFF: "Unassigned class",
}

_KIND_BY_TYPE: Mapping[PcieType, str] = {
    PcieType.ENDPOINT: "endpoint",
    PcieType.LEG_END: "legacy endpoint",
    PcieType.ROOT_PORT: "root port",
    PcieType.UPSTREAM: "upstream port",
    PcieType.DOWNSTREAM: "downstream port",
    PcieType.PCI_BRIDGE: "PCIe-to-PCI bridge",
    PcieType.PCIE_BRIDGE: "PCI-to-PCIe bridge",
    PcieType.RC_END: "integrated endpoint",
    PcieType.RC_EC: "RC event collector",
}


@functools.lru_cache(maxsize=1)
def _subclass_names() -> dict[int, str]:
    return subclass_names()


def class_name(class_code: int) -> str:
    """The ``pci.ids`` name of a 24-bit class code, as ``lspci`` prints it.

    The subclass name when known, else the base class name, else
    ``"Class xxxx"``.

    >>> class_name(0x030000), class_name(0x0C0330), class_name(0x010802)
    ('VGA compatible controller', 'USB controller', 'Non-Volatile memory controller')
    >>> class_name(0x02FF00), class_name(0xAB0000)
    ('Network controller', 'Class ab00')
    """
    name = _subclass_names().get(class_code >> 8)
    if name is not None:
        return name
    return _BASE_CLASSES.get(class_code >> 16, f"Class {class_code >> 8:04x}")


def short_name(name: str | PciAddress) -> str:
    """A device as listings show it: ``bb:dd.f`` in domain 0, else in full.

    >>> short_name("0000:01:00.0"), short_name("000a:11:00.1"), short_name("HISI0162:01")
    ('01:00.0', '000a:11:00.1', 'HISI0162:01')
    """
    if isinstance(name, PciAddress):
        addr = name
    else:
        try:
            addr = PciAddress.parse(name)
        except InvalidAddress:
            return name
    text = str(addr)
    return text[5:] if addr.domain == 0 else text


def _slot(addr: PciAddress) -> str:
    text = f"{addr.bus:02x}:{addr.device:02x}"
    return text if addr.domain == 0 else f"{addr.domain:04x}:{text}"


def device_kind(fn: PciFunction) -> str:
    """What a PCI function is, in words: its PCIe port type, or conventional.

    >>> from iommugroups import examples
    >>> topo = examples.desktop()
    >>> device_kind(topo.get("00:1c.0")), device_kind(topo.get("05:01.0"))
    ('root port', 'conventional PCI')
    """
    if fn.physfn is not None:
        return "SR-IOV VF"
    if fn.pcie_type is not None:
        return _KIND_BY_TYPE.get(fn.pcie_type, f"PCIe type {int(fn.pcie_type):#x}")
    if fn.unknown & {"pcie", "config"}:  # the PCIe capability was not shown (not root)
        return "bridge of unknown PCIe type" if fn.is_bridge else "unknown PCIe type"
    if fn.is_bridge:
        return "CardBus bridge" if fn.header_type == HEADER_CARDBUS else "conventional PCI bridge"
    return "conventional PCI"


#: PCIe port types as JSON documents name them (``show``, ``passthrough``).
PCIE_TYPE_KEYS: Mapping[PcieType, str] = {
    PcieType.ENDPOINT: "endpoint",
    PcieType.LEG_END: "legacy-endpoint",
    PcieType.ROOT_PORT: "root-port",
    PcieType.UPSTREAM: "upstream-port",
    PcieType.DOWNSTREAM: "downstream-port",
    PcieType.PCI_BRIDGE: "pcie-to-pci-bridge",
    PcieType.PCIE_BRIDGE: "pci-to-pcie-bridge",
    PcieType.RC_END: "rc-endpoint",
    PcieType.RC_EC: "rc-event-collector",
}


def pcie_type_key(fn: PciFunction | None) -> str | None:
    """A function's PCIe type for JSON: a :data:`PCIE_TYPE_KEYS` value, ``conventional``
    without a PCIe capability, ``None`` when not known (not shown, or no function).

    >>> from iommugroups import examples
    >>> pcie_type_key(examples.desktop().get("00:1c.0")), pcie_type_key(None)
    ('root-port', None)
    """
    if fn is None:
        return None
    if fn.pcie_type is not None:
        return PCIE_TYPE_KEYS.get(fn.pcie_type)
    if fn.physfn is not None:  # an SR-IOV VF: an endpoint whose capability the model skips
        return "endpoint"
    return None if fn.unknown & {"pcie", "config"} else "conventional"


def _is_interconnect(fn: PciFunction) -> bool:
    """A bridge header (VFIO's ``hdr_type != PCI_HEADER_TYPE_NORMAL``)."""
    return fn.header_type != HEADER_NORMAL


def _rule_key(rule: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in rule.lstrip("R").split("."))
    except ValueError:
        return (999,)


def _and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def listed(names: Sequence[str]) -> str:
    """``names`` (already in order) for a sentence: comma-separated, or "no other device"."""
    return ", ".join(names) if names else "no other device"
