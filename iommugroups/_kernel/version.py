"""Kernel versions: which kernel a result stands for, and what changed when.

The grouping rules themselves (``pci_device_group``, R4, R5) are the same
in every kernel this project models; what changed between versions is
around them: when grouping happens (R7, R10.1), what is logged (R1.4,
R7.9), when the PCI core enables ACS (R2.7), how x86 numbers groups
(R1.9), VMD (R3.1). Each such change is one :class:`VersionChange` in
:data:`CHANGES`, with its rule, the kernel source that shows it and the
first version it holds in; the code asks :func:`holds` and the docs'
"Kernel versions" page is made from the same table.

A version is ``major.minor`` (:class:`KernelVersion`): stable updates of one
series are not told apart. Where a change could be dated only between two
source trees (6.1, 6.12, 7.2 and 7.3 are the ones checked), ``since`` is the
first tree that has it and ``after`` the last that does not; a version in
between is modelled as the older behaviour, and :func:`uncertain` says so.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import attrs

from .._errors import IommuGroupsError

__all__ = [
    "CHANGES",
    "MODELLED",
    "NEWEST",
    "InvalidKernelVersion",
    "KernelVersion",
    "VersionChange",
    "change",
    "holds",
    "kernel_version",
    "resolve_kernel",
    "uncertain",
]


class InvalidKernelVersion(IommuGroupsError, ValueError):
    """A kernel version that is not ``MAJOR.MINOR[...]``."""


_STRICT_RE = re.compile(r"^\s*v?(\d+)\.(\d+)(?:[.\-+~_ ][\w.+~\-]*)?\s*$")
_SEARCH_RE = re.compile(r"(?:^|\D)(\d+)\.(\d+)")


class KernelVersion(NamedTuple):
    """A kernel series, ``major.minor`` (``KernelVersion(6, 12)`` is 6.12.y).

    >>> KernelVersion.parse("6.1.0-50-amd64"), KernelVersion.parse("v7.3")
    (KernelVersion(major=6, minor=1), KernelVersion(major=7, minor=3))
    >>> str(KernelVersion(6, 12)), KernelVersion(6, 12) < KernelVersion(7, 0)
    ('6.12', True)
    """

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> KernelVersion:
        """A version as a user writes it: ``7.3``, ``v6.15``, ``6.12.11``, a ``uname -r``.

        Raises:
            InvalidKernelVersion: the text does not start with ``MAJOR.MINOR``.
        """
        m = _STRICT_RE.match(text) if isinstance(text, str) else None
        if m is None or len(text) > 200:
            raise InvalidKernelVersion(
                f"not a kernel version: {str(text)[:60]!r} (expected MAJOR.MINOR, e.g. 6.12 or "
                "7.3.4-amd64)"
            )
        major, minor = int(m[1]), int(m[2])
        if not 2 <= major <= 99 or minor > 999:
            raise InvalidKernelVersion(f"not a Linux kernel version: {text.strip()!r}")
        return cls(major, minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


def kernel_version(release: str | None) -> KernelVersion | None:
    """The version in a release string found in an input, ``None`` when there is none.

    Lenient, for what inputs carry (``uname -r``, a boot image name, a log
    line): the first ``N.N`` in the text.

    >>> kernel_version("6.12.11.mx64.479"), kernel_version("vmlinuz-6.17.0-19-generic")
    (KernelVersion(major=6, minor=12), KernelVersion(major=6, minor=17))
    >>> kernel_version(None) is None
    True
    """
    if not release:
        return None
    m = _SEARCH_RE.search(release[:200])
    return KernelVersion(int(m[1]), int(m[2])) if m else None


#: The newest kernel the model was checked against: the default.
NEWEST = KernelVersion(7, 3)
#: The source trees every rule was compared with (``shared/tools/kernel-source``).
MODELLED: tuple[KernelVersion, ...] = (
    KernelVersion(6, 1),
    KernelVersion(6, 12),
    KernelVersion(7, 2),
    KernelVersion(7, 3),
)


def resolve_kernel(kernel: str | KernelVersion | None, found: str | None = None) -> KernelVersion:
    """The version to model: the one asked for, else the one the input says, else :data:`NEWEST`.

    >>> print(resolve_kernel(None), resolve_kernel("6.1", found="7.3.4"))
    7.3 6.1
    >>> print(resolve_kernel(None, found="6.12.5-amd64"))
    6.12

    Raises:
        InvalidKernelVersion: ``kernel`` is not a version.
    """
    if isinstance(kernel, KernelVersion):
        return kernel
    if kernel is not None:
        return KernelVersion.parse(kernel)
    return kernel_version(found) or NEWEST


@attrs.frozen
class VersionChange:
    """One behaviour that depends on the kernel version.

    Attributes:
        name: the key the code asks :func:`holds` with.
        rule: the rule id it belongs to (the rule table defines it).
        since: the first version with the behaviour (``None``: all modelled ones).
        until: the first version without it again (``None``: still current).
        after: when ``since`` could only be bounded by source trees, the last
            version known not to have it (``None``: ``since`` is exact).
        what: the behaviour, in a sentence.
        source: where it shows in the kernel (file, function, commit).
    """

    name: str
    rule: str
    since: KernelVersion | None
    until: KernelVersion | None
    after: KernelVersion | None
    what: str
    source: str


_V = KernelVersion

#: Every version-dependent behaviour the model has, oldest first.
CHANGES: tuple[VersionChange, ...] = (
    VersionChange(
        "vmd-grouping",
        "R3.1",
        _V(5, 6),
        None,
        None,
        "devices behind an Intel VMD endpoint are grouped with the endpoint (before: no group)",
        "drivers/pci/controller/vmd.c, pci_real_dma_dev(); ≈v5.6",
    ),
    VersionChange(
        "probe-time-arm64",
        "R7.1",
        _V(5, 3),
        _V(6, 15),
        None,
        "arm64 (IORT and device tree) groups a device when its driver probes",
        "drivers/iommu/iommu.c, iommu_probe_device() from of/acpi_dma_configure(); until "
        "bcb81ac6ae3c",
    ),
    VersionChange(
        "per-unit-ids",
        "R1.9",
        _V(6, 1),
        None,
        None,
        "x86 IOMMUs register one by one, each grouping its own devices, so group ids go unit "
        "by unit",
        'drivers/iommu/iommu.c, iommu_device_register(); "iommu: Move bus setup to IOMMU '
        'device registration"',
    ),
    VersionChange(
        "remove-log",
        "R1.4",
        None,
        _V(6, 4),
        None,
        "a device leaving its group on hot-remove logs 'Removing from iommu group N'",
        "drivers/iommu/iommu.c: iommu_release_device() calls iommu_group_remove_device() in "
        "6.1, __iommu_group_remove_device() (no message) in 6.12 and later: 293f2564f3dd "
        '"iommu: Split iommu_group_remove_device() into helpers" (≈v6.4)',
    ),
    VersionChange(
        "device-add-arm64",
        "R10.1",
        _V(6, 15),
        None,
        None,
        "arm64 groups a device when it is added (or when its IOMMU registers), whatever the "
        "drivers do",
        'bcb81ac6ae3c "iommu: Get DT/ACPI parsing into the proper probe path" (v6.15)',
    ),
    VersionChange(
        "acs-at-dma-configure",
        "R2.7",
        _V(7, 0),
        None,
        _V(6, 12),
        "on device-tree machines the PCI core enables ACS in pci_dma_configure(), just before "
        "the device is grouped (before: at enumeration, too early for a device-tree IOMMU)",
        "drivers/pci/pci-driver.c, pci_dma_configure() (7.2, 7.3); b20b659c2c6a (≈v7.0)",
    ),
    VersionChange(
        "aliasing-streamid-message",
        "R7.9",
        _V(7, 2),
        None,
        _V(6, 12),
        "SMMUv3 refusing a shared stream id logs 'Aliasing StreamID 0x.. (from ..) "
        "unsupported, expect DMA to be broken' (before: 'stream N already in tree from dev ..')",
        "drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c, arm_smmu_insert_master(): old text in "
        "6.1 and 6.12, new in 7.2 and 7.3",
    ),
)

_BY_NAME = {c.name: c for c in CHANGES}


def change(name: str) -> VersionChange:
    """The :class:`VersionChange` called ``name``."""
    return _BY_NAME[name]


def holds(name: str, kernel: KernelVersion) -> bool:
    """Whether the version-dependent behaviour ``name`` holds in ``kernel``.

    >>> holds("remove-log", KernelVersion(6, 1)), holds("remove-log", KernelVersion(7, 3))
    (True, False)
    """
    c = _BY_NAME[name]
    if c.since is not None and kernel < c.since:
        return False
    return c.until is None or kernel < c.until


def uncertain(kernel: KernelVersion) -> tuple[VersionChange, ...]:
    """The changes whose version is only bounded and ``kernel`` falls in between.

    For such a kernel the model uses the older behaviour; a result for it
    should say so.

    >>> [c.name for c in uncertain(KernelVersion(6, 15))]
    ['acs-at-dma-configure', 'aliasing-streamid-message']
    >>> uncertain(KernelVersion(7, 3))
    ()
    """
    return tuple(
        c
        for c in CHANGES
        if c.after is not None and c.since is not None and c.after < kernel < c.since
    )
