"""The x86 platform facts a reader can see, recorded into the topology's :class:`Platform`.

Every reader of a real machine calls :func:`with_platform` once it has the
topology. It records only what the input shows (the rules that read the
facts are in the kernel floor, R11):

* **AMD IOMMUs**: a function of class 0x0806 (IOMMU) from AMD (vendor
  0x1022) is an AMD IOMMU's own function (the IVHD's device id, R11.2); so
  are the functions ``/sys/class/iommu/ivhdN/device`` names. Each becomes an
  :class:`~iommugroups.IommuUnit` (``ivhd0``, ``ivhd1``... in address order
  when the input does not name them), whose IVHD scope is not known unless
  sysfs lists its devices.
* **VT-d units**: ``/sys/class/iommu/dmarN`` and their devices.
* **VMD domains** (R11.1): a sysfs ``domain`` link of an endpoint names its
  domain. Without one (``lspci -D`` text, a dump), the domains numbered from
  ``0x10000`` are paired with the VMD endpoints (the functions bound to
  ``vmd``, or, when the input shows no drivers, those with a ``vmd_ids[]``
  id) in order: the ``vmd`` driver binds its endpoints in device order and
  numbers each new domain from 0x10000 up. When the counts differ the
  pairing is not known, and every device of those domains gets the unknown
  fact ``"vmd"``.
* **Text hints** (:func:`text_hints`): a kernel log or command line pasted
  with the output: the kernel release (``Linux version``, ``BOOT_IMAGE=``),
  ``DMAR:``/``AMD-Vi:`` lines, ``intel_iommu=igfx_off``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import attrs

from .._kernel.model import (
    VMD_DEVICE_IDS,
    VMD_DOMAIN_BASE,
    VMD_VENDOR,
    IommuKind,
    IommuUnit,
    PciAddress,
    PciFunction,
    Platform,
    Topology,
    VmdDomain,
)
from .._kernel.reading import Unknown

__all__ = [
    "TextHints",
    "is_amd_iommu_function",
    "text_hints",
    "vmd_domain_of_bus_name",
    "with_platform",
]

_AMD = 0x1022
_CLASS_IOMMU = 0x0806
_BUS_NAME_RE = re.compile(r"^pci(?P<domain>[0-9a-f]{4,8}):(?P<bus>[0-9a-f]{2})$")
_LINUX_VERSION_RE = re.compile(r"\bLinux version (?P<release>\S+)")
_BOOT_IMAGE_RE = re.compile(r"\bBOOT_IMAGE=\S*?vmlinu[xz]-(?P<release>[^\s/]+)")
_CMDLINE_RE = re.compile(r"(?:Kernel command line|Command line):\s*(?P<args>.*)$", re.M)
_IGFX_OFF_RE = re.compile(r"(?:^|\s)intel_iommu=\S*\bigfx_off\b")
_DMAR_RE = re.compile(r"(?:^|[\s\]])(?:DMAR|DMAR-IR):\s", re.M)
_AMDVI_RE = re.compile(r"(?:^|[\s\]])AMD-Vi:\s", re.M)


@attrs.frozen
class TextHints:
    """What a kernel log or command line pasted with the data says.

    Attributes:
        kernel: the kernel release, if shown.
        iommu: VT-d (``DMAR:`` lines) or AMD-Vi (``AMD-Vi:`` lines), if shown.
        igfx_off: ``intel_iommu=igfx_off`` is on the command line shown
            (``None``: no command line is shown).
        cmdline: the kernel command line, if shown.
    """

    kernel: str | None = None
    iommu: IommuKind | None = None
    igfx_off: bool | None = None
    cmdline: str | None = None


def text_hints(text: str) -> TextHints:
    """The hints in ``text`` (see :class:`TextHints`).

    >>> h = text_hints("BOOT_IMAGE=/boot/vmlinuz-6.17.0-19-generic ro intel_iommu=on,igfx_off")
    >>> h.kernel, h.igfx_off
    ('6.17.0-19-generic', True)
    >>> text_hints("[    0.0] AMD-Vi: Using global IVHD EFR").iommu
    <IommuKind.AMD_VI: 'amd-vi'>
    """
    if not text:
        return TextHints()
    m = _LINUX_VERSION_RE.search(text)
    kernel = m["release"] if m else None
    cmdline: str | None = None
    cm = _CMDLINE_RE.search(text)
    if cm:
        cmdline = cm["args"].strip()
    elif "BOOT_IMAGE=" in text or text.lstrip().startswith(("root=", "ro ", "quiet")):
        cmdline = text.strip().splitlines()[0].strip() if text.strip() else None
    if kernel is None:
        b = _BOOT_IMAGE_RE.search(cmdline or text)
        kernel = b["release"] if b else None
    iommu: IommuKind | None = None
    if _AMDVI_RE.search(text):
        iommu = IommuKind.AMD_VI
    elif _DMAR_RE.search(text):
        iommu = IommuKind.VTD
    igfx = None if cmdline is None else bool(_IGFX_OFF_RE.search(" " + cmdline))
    return TextHints(kernel, iommu, igfx, cmdline)


def vmd_domain_of_bus_name(name: str) -> int | None:
    """The domain of a VMD root bus named as sysfs does (``pci10000:e0``), else ``None``.

    >>> hex(vmd_domain_of_bus_name("pci10000:e0")), vmd_domain_of_bus_name("pci0000:00")
    ('0x10000', None)
    """
    m = _BUS_NAME_RE.match(name)
    if m is None:
        return None
    domain = int(m["domain"], 16)
    return domain if VMD_DOMAIN_BASE <= domain <= 0xFFFFFFFF else None


def is_amd_iommu_function(fn: PciFunction) -> bool:
    """An AMD IOMMU's own function: class 0x0806 (IOMMU), vendor AMD (R11.2)."""
    return fn.vendor == _AMD and fn.class_code >> 8 == _CLASS_IOMMU and "ids" not in fn.unknown


def _vmd_endpoints(functions: Iterable[PciFunction]) -> list[PciFunction]:
    below = [f for f in functions if f.address.domain < VMD_DOMAIN_BASE]
    if any(f.driver is not None for f in below):
        return [f for f in below if f.driver == "vmd"]
    return [f for f in below if f.vendor == VMD_VENDOR and f.device in VMD_DEVICE_IDS]


def with_platform(
    topology: Topology,
    *,
    units: Iterable[IommuUnit] = (),
    vmd_links: Mapping[PciAddress, int] | None = None,
    hints: TextHints | None = None,
) -> tuple[Topology, list[Unknown]]:
    """``topology`` with the platform facts the input shows, and what stays unknown.

    Args:
        topology: the topology read.
        units: the IOMMUs the input lists (sysfs ``class/iommu``).
        vmd_links: VMD endpoint -> its domain, where the input links them.
        hints: what a pasted log or command line says.
    """
    notes: list[Unknown] = []
    hints = hints or TextHints()
    units = list(units)
    known_functions = {u.function for u in units if u.function is not None}
    amd = [
        f
        for f in topology.functions
        if is_amd_iommu_function(f) and f.address not in known_functions
    ]
    taken = {u.name for u in units}
    index = 0
    for f in sorted(amd, key=lambda f: f.address):
        while f"ivhd{index}" in taken:
            index += 1
        name = f"ivhd{index}"
        taken.add(name)
        units.append(
            IommuUnit(
                name, IommuKind.AMD_VI, segment=min(f.address.domain, 0xFFFF), function=f.address
            )
        )
    kinds = {u.kind for u in units}
    iommu = next(iter(kinds)) if len(kinds) == 1 else hints.iommu

    vmd: list[VmdDomain] = []
    domains = sorted(
        {f.address.domain for f in topology.functions if f.address.domain >= VMD_DOMAIN_BASE}
    )
    linked = dict(vmd_links or {})
    for endpoint, domain in sorted(linked.items()):
        if endpoint in topology and endpoint.domain < VMD_DOMAIN_BASE:
            vmd.append(VmdDomain(domain, endpoint))
    unpaired = [d for d in domains if d not in {v.domain for v in vmd}]
    if unpaired:
        endpoints = [e for e in _vmd_endpoints(topology.functions) if e.address not in linked]
        if len(endpoints) == len(unpaired):
            for endpoint, domain in zip(
                sorted(e.address for e in endpoints), unpaired, strict=True
            ):
                vmd.append(VmdDomain(domain, endpoint))
            notes.append(
                Unknown(
                    "",
                    "assumed",
                    "VMD domains paired with their endpoints in order ("
                    + ", ".join(
                        f"{d:x} behind {e}"
                        for d, e in zip(
                            unpaired, sorted(e.address for e in endpoints), strict=True
                        )
                    )
                    + "): the vmd driver numbers each new domain from 10000 up as it binds its "
                    "endpoints in device order (R11.1)",
                )
            )
        else:
            shown = ", ".join(f"{d:x}" for d in unpaired)
            why = (
                f"domains {shown} are numbered like VMD domains, but the input names "
                f"{len(endpoints)} VMD endpoint(s) for them: which endpoint each device does "
                "its DMA through (R3.1) is not known"
            )
            marked: list[PciFunction] = []
            for f in topology.functions:
                if f.address.domain in unpaired:
                    notes.append(Unknown(str(f.address), "vmd", why))
                    marked.append(attrs.evolve(f, unknown=f.unknown | {"vmd"}))
                else:
                    marked.append(f)
            topology = topology.replace(functions=marked)
    platform = Platform(
        iommu=iommu,
        units=tuple(units),
        vmd=tuple(sorted(vmd, key=lambda v: v.domain)),
        igfx_off=hints.igfx_off,
    )
    if platform.is_default:
        return topology, notes
    return topology.replace(platform=platform), notes
