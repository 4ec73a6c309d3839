"""What a reader returns: the model it could build and what it could not know.

Every reader of a real machine's data (sysfs, snapshots, ``lspci`` text,
group listings, ``dmesg``) returns a :class:`Reading`: a topology when the
input carries one, the groups the kernel *observed* when it carries them,
and a list of :class:`Unknown` facts (e.g. "ACS capability of 0000:00:1c.0:
config space not readable as non-root"), so that a verdict that depends on
missing data can say so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from .._kernel.groups import LogLine
from .._kernel.model import Topology

__all__ = ["ObservedGroups", "Reading", "Unknown"]


@attrs.frozen
class Unknown:
    """One fact a reader could not establish.

    Attributes:
        device: the device it is about (``dddd:bb:dd.f`` or a name), or
            ``""`` for the whole input.
        fact: what is unknown: ``"acs"``, ``"pcie"``, ``"ids"``,
            ``"bus-numbers"``, ``"group"``, ``"config"``, ...
        why: in words, naming the file/line when useful.
    """

    device: str
    fact: str
    why: str

    def __str__(self) -> str:
        who = f"{self.device}: " if self.device else ""
        return f"{who}{self.fact} unknown: {self.why}"


@attrs.frozen
class ObservedGroups:
    """The IOMMU groups a real kernel made, as some input reports them.

    Attributes:
        groups: group id -> member device names (``dddd:bb:dd.f`` for PCI).
        log: the ``Adding to iommu group`` lines in kernel order, when the
            input is a kernel log (they give the probe order and drivers).
        source: the format they were read from (``"listing"``,
            ``"lspci-vv"``, ``"dmesg"``, ``"sysfs"``, ...).
    """

    groups: Mapping[int, tuple[str, ...]]
    log: tuple[LogLine, ...] = ()
    source: str = ""

    def group_of(self, device: str) -> int | None:
        """The observed group of ``device``, if reported."""
        for gid, members in self.groups.items():
            if device in members:
                return gid
        return None


def _unknowns(value: Iterable[Unknown]) -> tuple[Unknown, ...]:
    return tuple(value)


@attrs.frozen
class Reading:
    """The result of reading one input.

    Attributes:
        topology: the PCI topology, if the input carries one.
        observed: the kernel's groups, if the input carries them.
        unknowns: facts that could not be established.
        source: the detected format.
        path: where it was read from.
        kernel: the kernel release, when the input says.
    """

    topology: Topology | None = None
    observed: ObservedGroups | None = None
    unknowns: tuple[Unknown, ...] = attrs.field(default=(), converter=_unknowns)
    source: str = ""
    path: str = ""
    kernel: str | None = None
