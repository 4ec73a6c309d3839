"""Read anything we know: the one entry point of the readers.

:func:`read` takes a file (``-`` for standard input) or a directory (a live
or copied sysfs tree), detects the format and returns a
:class:`~iommugroups.Reading`: the topology when the input carries one, the
kernel's groups when it carries them, and what could not be known.

Formats, in the order they are tried:

========================  =========  ========  =========================
format                    topology   groups    detected by
========================  =========  ========  =========================
sysfs tree (directory)    yes        yes       a directory
snapshot (JSON)           yes        yes       ``schema: iommugroups.snapshot/...``
arm64 capture (JSON)      yes        yes       ``scenario`` + ``devices``
x86 capture (JSON)        yes        yes       ``devices`` + ``groups``
topology file JSON/TOML   yes        no        ``functions`` / ``schema``
``lspci -xxxx`` dump      yes        no        hex lines
``lspci -v/-vv/-vvv``     yes        if shown  ``Capabilities:``/``Kernel driver`` lines
``lspci -tv`` tree        yes (no    no        ``-[dddd:bb]-`` trees
                          ACS)
group listing             no         yes       ``IOMMU Group N``
``lspci -vmm``            no         yes       ``Slot:`` blocks
kernel log                no         yes       ``Adding to iommu group``
kernel command line       no         no        ``BOOT_IMAGE=``, ``root=``
========================  =========  ========  =========================

A kernel command line (``/proc/cmdline``) gives only the kernel release
(``Reading.kernel``, from ``BOOT_IMAGE=.../vmlinuz-<release>``) and its
IOMMU parameters, which the reading's notes name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import attrs

from .._bulk import paused_gc
from .._kernel.groups import Grouping
from .._kernel.reading import Reading, Unknown
from . import checks
from .arm64_capture import looks_like_capture, read_capture
from .listing import looks_like_dmesg, looks_like_listing, looks_like_vmm, read_observed
from .load import _decode, _read_file, _read_stdin, loads, unix_lines
from .lspci_tree import looks_like_lspci_tree, read_lspci_tree
from .lspci_verbose import looks_like_lspci_text, read_lspci_text
from .platform_facts import text_hints
from .root_buses import with_missing_bridges
from .snapshot import looks_like_snapshot, read_snapshot
from .sysfs import read_sysfs
from .topology_file import parse_json

__all__ = ["read", "read_text"]


def read(path: str | os.PathLike[str]) -> Reading:
    """Read a file, standard input (``"-"``) or a sysfs tree (a directory).

    Raises:
        InputError: unreadable, too large, binary, or of no known format;
            malformed content names the file and line.
    """
    name = os.fspath(path)
    if name == "-":
        return read_text(_decode(_read_stdin(), "<stdin>"), "<stdin>")
    if os.path.isdir(name):
        return read_sysfs(name)
    return read_text(_decode(_read_file(name), name), name)


def read_text(text: str, path: str = "<string>") -> Reading:
    """Detect the format of ``text`` and read it (see the module docstring).

    CRLF and CR-only line endings are read as lines.
    """
    with paused_gc():  # a reading is built in bulk, and holds no cycle
        return _read_text(unix_lines(text), path)


def _read_text(text: str, path: str) -> Reading:
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("{"):
        data = parse_json(text, path)
        return _read_json(data, text, path)
    if looks_like_lspci_tree(text) and not looks_like_lspci_text(text):
        return _with_log(read_lspci_tree(text, path), text, path)
    if looks_like_lspci_text(text):
        return _with_log(read_lspci_text(text, path), text, path)
    if looks_like_vmm(text) or looks_like_listing(text) or looks_like_dmesg(text):
        return read_observed(text, path)
    if looks_like_cmdline(text):
        return _read_cmdline(text, path)
    # topology files (TOML) and lspci -xxxx dumps: the topology loader detects them
    topology, notes = with_missing_bridges(loads(text, path=path))
    return Reading(topology=topology, unknowns=notes, source="topology", path=path)


_CMDLINE_TOKEN_RE = re.compile(r"^(?:[A-Za-z_][\w.-]*(?:=\S*)?|--)$")
_IOMMU_PARAM_RE = re.compile(
    r"^(?:intel_iommu|amd_iommu|iommu(?:\.\w+)?|pcie_acs_override|pci|vfio[-_]pci\.\w+)="
)


def looks_like_cmdline(text: str) -> bool:
    """Is ``text`` a kernel command line (one line of ``key=value`` words, with ``root=`` or
    ``BOOT_IMAGE=``)?

    >>> looks_like_cmdline("BOOT_IMAGE=/boot/vmlinuz-6.1.0 root=UUID=f00 ro quiet")
    True
    >>> looks_like_cmdline("IOMMU Group 0:")
    False
    """
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) != 1 or len(lines[0]) > 4096:
        return False
    words = lines[0].split()
    return any(w.startswith(("BOOT_IMAGE=", "root=")) for w in words) and all(
        _CMDLINE_TOKEN_RE.match(w) for w in words
    )


def _read_cmdline(text: str, path: str) -> Reading:
    hints = text_hints(text)
    params = [w for w in text.split() if _IOMMU_PARAM_RE.match(w)]
    shown = ", ".join(params) if params else "none"
    note = Unknown(
        "",
        "topology",
        "a kernel command line holds no topology and no IOMMU groups (its IOMMU parameters: "
        f"{shown})",
    )
    return Reading(source="cmdline", path=path, kernel=hints.kernel, unknowns=(note,))


def _read_json(data: Any, text: str, path: str) -> Reading:
    if looks_like_snapshot(data):
        return read_snapshot(data, path)
    if looks_like_capture(data):
        cap = read_capture(data, path)
        log = checks.log_lines(cap.dmesg, path)
        observed = Grouping(cap.groups, log, source="arm64-capture")
        topology, notes = with_missing_bridges(cap.topology)
        return Reading(
            topology=topology,
            observed=observed,
            unknowns=notes,
            source="arm64-capture",
            path=path,
        )
    if isinstance(data, Mapping) and "devices" in data and "groups" in data:
        # an x86 capture: its groups and log are checked before anything is built
        groups = checks.groups(data["groups"], path)
        lines = checks.text_list(data.get("dmesg", []), path, "dmesg")
        kernel = checks.opt_text(data.get("kernel"), "kernel", path)
        topology, notes = with_missing_bridges(loads(text, path=path))
        log = checks.log_lines(lines, path)
        return Reading(
            topology=topology,
            observed=Grouping(groups, log, source="capture"),
            unknowns=notes,
            source="capture",
            path=path,
            kernel=kernel,
        )
    topology, notes = with_missing_bridges(loads(text, path=path))
    return Reading(topology=topology, unknowns=notes, source="topology", path=path)


def _with_log(reading: Reading, text: str, path: str) -> Reading:
    """Add the groups of a kernel log pasted in the same text (a bug report)."""
    if reading.observed is not None or not looks_like_dmesg(text):
        return reading
    seen = read_observed(text, path)
    if seen.observed is None:
        return reading
    return attrs.evolve(
        reading, observed=seen.observed, unknowns=(*reading.unknowns, *seen.unknowns)
    )
