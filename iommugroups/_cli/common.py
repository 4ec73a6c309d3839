"""What every command shares: exit statuses, the parser classes, how the source is named.

Every command module (``cmd_*``) registers its sub-parser with ``add(sub)``
and runs with ``run(args) -> int``; :mod:`iommugroups._cli.app` assembles
them.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence

from .. import examples
from .._errors import IommuGroupsError
from .._io.pci_ids_file import choose_pci_ids
from .._io.read import read
from .._io.sysfs import read_sysfs
from .._kernel.groups import Grouping
from .._kernel.model import Topology
from .._kernel.pci_ids import PciIdsDatabase, using_database
from .._kernel.reading import Reading, Unknown
from .._kernel.x86 import x86_view
from .._render.dot import to_dot, to_svg
from .._render.text import note_lines

__all__ = [
    "EXIT_ERROR",
    "EXIT_FINDING",
    "EXIT_OK",
    "EXIT_UNKNOWN",
    "HelpFormatter",
    "Parser",
    "UsageError",
    "add_format",
    "add_input",
    "add_notes_options",
    "add_source",
    "default_reading",
    "emit_graph",
    "names_database",
    "output_format",
    "platform_notes",
    "print_notes",
    "reading_of",
    "report_notes",
    "topology_of",
]

#: Success (``check``: every verdict ok or merged).
EXIT_OK = 0

#: A finding (``check``: an isolation hole, a split).
EXIT_FINDING = 1

#: Bad usage or input.
EXIT_ERROR = 2

#: ``check``: no split, but some verdict unknown (the input lacks data it depends on).
EXIT_UNKNOWN = 3


class HelpFormatter(argparse.HelpFormatter):
    """Wraps one-paragraph descriptions; keeps multi-line epilogs (examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip("\n"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


class UsageError(Exception):
    pass


def add_source(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    src = p.add_mutually_exclusive_group(required=required)
    src.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="topology file (JSON/TOML), snapshot, `lspci -vvv`/`-xxxx` output, "
        "`lspci -tv` tree or oracle capture; - for stdin",
    )
    src.add_argument("--example", metavar="NAME", help="a built-in example topology")
    src.add_argument("--sysfs", metavar="DIR", help="a live (/) or copied sysfs tree")


def add_input(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "-i",
        "--input",
        dest="file",
        metavar="FILE",
        help="the source: topology file, snapshot, lspci output, capture; - for stdin "
        "(default: this machine)",
    )
    src.add_argument("--example", metavar="NAME", help="a built-in example topology")
    src.add_argument("--sysfs", metavar="DIR", help="a live (/) or copied sysfs tree")


def add_format(p: argparse.ArgumentParser, *, dot: bool) -> None:
    choices = ["text", "json", "dot", "svg"] if dot else ["text", "json"]
    p.add_argument(
        "--format",
        choices=choices,
        default="text",
        help="output format (svg needs Graphviz's `dot`)" if dot else "output format",
    )
    p.add_argument("--json", action="store_true", help="the same as --format json")


def output_format(args: argparse.Namespace) -> str:
    return "json" if args.json else str(args.format)


def default_reading(args: argparse.Namespace) -> Reading:
    """The source, or this machine when none is given (saying so when unusable)."""
    if args.file is not None or args.example is not None or args.sysfs is not None:
        return reading_of(args)
    names = ", ".join(sorted(examples.EXAMPLES))
    try:
        reading = read_sysfs("/")
    except IommuGroupsError as exc:
        raise UsageError(
            f"this machine shows no PCI devices to read ({exc}); give a FILE, --sysfs DIR "
            f"or a built-in example: --example {{{names}}}"
        ) from None
    if reading.topology is None or not len(reading.topology):
        raise UsageError(
            "this machine shows no PCI devices; give a FILE, --sysfs DIR or a built-in "
            f"example: --example {{{names}}}"
        )
    return reading


def reading_of(args: argparse.Namespace) -> Reading:
    if args.example is not None:
        try:
            return Reading(topology=examples.get(args.example), source="example")
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
    if args.sysfs is not None:
        return read_sysfs(args.sysfs)
    return read(args.file)


def topology_of(reading: Reading) -> Topology:
    if reading.topology is None:
        kind = reading.source or "file"
        holds = (
            "carries the kernel's groups but no topology"
            if reading.observed is not None
            else "holds no topology"
        )
        raise UsageError(
            f"{reading.path or 'the input'}: a {kind} {holds}; give a topology file, a "
            "snapshot, a sysfs tree or `lspci -vvv`/`-xxxx` output"
            + (" (use `check --observed` for the groups)" if reading.observed is not None else "")
        )
    return reading.topology


def print_notes(unknowns: Sequence[Unknown], limit: int = 20) -> None:
    """Every note (up to ``limit``), worded as ``note_lines`` words them."""
    for line in note_lines(unknowns, verbose=True, limit=limit):
        print(f"iommugroups: note: {line}", file=sys.stderr)


def add_notes_options(p: argparse.ArgumentParser) -> None:
    """``-v`` (every note) and ``--pci-ids`` (the PCI ID database for names and ids)."""
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show every note about the input (default: a summary)",
    )
    p.add_argument(
        "--pci-ids",
        metavar="FILE",
        help="the PCI ID database that names and ids are read and printed with: a pci.ids "
        "file, or 'bundled' (default: $IOMMUGROUPS_PCI_IDS, else /usr/share/misc/pci.ids or "
        "/usr/share/hwdata/pci.ids, else the bundled subset)",
    )


@contextlib.contextmanager
def names_database(args: argparse.Namespace) -> Iterator[PciIdsDatabase]:
    """Make the chosen PCI ID database current for the command's reading and printing."""
    db = choose_pci_ids(getattr(args, "pci_ids", None))
    with using_database(db) as current:
        yield current


def platform_notes(topology: Topology, kernel: str | None = None) -> list[Unknown]:
    """What the topology's tree and platform make of the input: bus conflicts (R11.8) and
    the assumptions of the group numbering (R1.9)."""
    out = [Unknown(str(c.bridge), "assumed", f"{c.why} (R11.8)") for c in topology.bus_conflicts()]
    out.extend(Unknown("", "assumed", n) for n in x86_view(topology, kernel).notes)
    return out


def report_notes(
    reading: Reading,
    args: argparse.Namespace,
    db: PciIdsDatabase | None = None,
    extra: Sequence[Unknown] = (),
) -> None:
    """The reading's notes on standard error: a summary, or all of them with ``-v``."""
    unknowns = [*reading.unknowns, *extra]
    if reading.topology is not None:
        unknowns.extend(platform_notes(reading.topology, reading.kernel))
    verbose = bool(getattr(args, "verbose", False))
    lines = note_lines(unknowns, verbose=verbose)
    if db is not None and (verbose or lines):
        lines.append(f"names and ids: {db.source}")
    for line in lines:
        print(f"iommugroups: note: {line}", file=sys.stderr)


def emit_graph(
    args: argparse.Namespace, topology: Topology, grouping: Grouping, title: str
) -> None:
    dot_text = to_dot(topology, grouping, title=title)
    if output_format(args) == "dot":
        sys.stdout.write(dot_text)
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(to_svg(dot_text))
