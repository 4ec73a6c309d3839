"""What a reader returns: the model it could build and what it could not know.

Every reader of a real machine's data (sysfs, snapshots, ``lspci`` text,
group listings, ``dmesg``) returns a :class:`Reading`: a topology when the
input carries one, the groups the kernel *observed* when it carries them
(a :class:`~iommugroups.Grouping` with its ``source``),
and a list of :class:`Unknown` facts (e.g. "ACS capability of 0000:00:1c.0:
config space not readable as non-root"), so that a verdict that depends on
missing data can say so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .groups import Grouping
from .model import Topology

__all__ = ["Reading", "Unknown"]


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
    observed: Grouping | None = None
    unknowns: tuple[Unknown, ...] = attrs.field(default=(), converter=_unknowns)
    source: str = ""
    path: str = ""
    kernel: str | None = None
