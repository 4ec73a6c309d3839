"""What every command shares: exit statuses, the parser classes, how the source is named.

Every command module (``cmd_*``) registers its sub-parser with ``add(sub)``
and runs with ``run(args) -> int``; :mod:`iommugroups._cli.app` assembles
them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from .. import examples
from .._errors import IommuGroupsError
from .._io.pci_ids_file import choose_pci_ids
from .._io.read import read
from .._io.sysfs import read_sysfs
from .._kernel.groups import Grouping
from .._kernel.model import IommuKind, Topology
from .._kernel.pci_ids import PciIdsDatabase, using_database
from .._kernel.reading import Reading, Unknown
from .._kernel.version import (
    NEWEST,
    InvalidKernelVersion,
    KernelVersion,
    holds,
    kernel_version,
    resolve_kernel,
)
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
    "add_kernel",
    "add_model_options",
    "add_notes_options",
    "add_source",
    "add_source_then",
    "default_reading",
    "emit_graph",
    "json_with_kernel",
    "kernel_note",
    "modelled_kernel",
    "names_database",
    "output_format",
    "platform_notes",
    "print_notes",
    "reading_of",
    "report_notes",
    "take_source",
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


_SOURCE_HELP = (
    "the source: a topology file (JSON/TOML), a snapshot, `lspci -vvv`/`-xxxx` output, an "
    "`lspci -tv` tree, a group listing or an oracle capture; - for stdin (default: this "
    "machine, /sys)"
)


class _ListExamples(argparse.Action):
    """``--list-examples``: print the built-in example topologies and exit."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        for name in sorted(examples.EXAMPLES):
            doc = (examples.EXAMPLES[name].__doc__ or "").strip().splitlines()
            about = doc[0].replace("``", "`") if doc else ""
            print(f"{name:<10}  {about}".rstrip())
        parser.exit(EXIT_OK)


def add_source(
    p: argparse.ArgumentParser, *, positional: bool = True, required: bool = False
) -> None:
    """The source, named the same way by every command.

    A positional ``SOURCE`` (a file, ``-`` for stdin; commands whose other
    positional arguments are devices or changes take it first, see
    :func:`take_source`), or ``--sysfs DIR``, or ``--example NAME``; none of
    them: this machine. ``--list-examples`` lists the examples. The old
    ``-i/--input FILE`` is kept, deprecated, for one release. (``required``
    is accepted for the callers of old and changes nothing: every command
    reads this machine when no source is named.)
    """
    del required
    if positional:
        p.add_argument("file", nargs="?", metavar="SOURCE", help=_SOURCE_HELP)
    else:
        p.set_defaults(file=None)
    src = p.add_argument_group("source")
    src.add_argument("--sysfs", metavar="DIR", help="a live (/) or copied sysfs tree")
    src.add_argument("--example", metavar="NAME", help="a built-in example topology")
    src.add_argument(
        "--list-examples", action=_ListExamples, help="list the built-in examples and exit"
    )
    src.add_argument("-i", "--input", dest="input", metavar="FILE", help=argparse.SUPPRESS)


def add_source_then(
    p: argparse.ArgumentParser, metavar: str, then: str, *, nargs: str = "+"
) -> None:
    """The source first, then other positional words (``args.words``; split them with
    :func:`take_source`): ``explain``'s devices, ``passthrough``'s."""
    p.add_argument(
        "words",
        nargs=nargs,
        metavar=f"[SOURCE] {metavar}",
        help=f"the source (a file, - for stdin; default: this machine), then {then}",
    )
    add_source(p, positional=False)


def take_source(args: argparse.Namespace, words: Sequence[str]) -> list[str]:
    """Set ``args.file`` from the first of ``words`` when it names the source; the rest.

    For commands whose positional arguments are devices (``explain``) or
    changes (``what-if``): the first word is the source when it is ``-`` or
    names an existing file or directory (device addresses and change specs
    are neither).
    """
    rest = list(words)
    if rest and (rest[0] == "-" or os.path.exists(rest[0])):
        if args.file is not None:
            raise UsageError(f"two sources: {args.file} and {rest[0]}")
        args.file = rest.pop(0)
    return rest


def _source_args(args: argparse.Namespace) -> None:
    """Fold the deprecated ``-i/--input`` into ``args.file``; refuse two sources."""
    old = getattr(args, "input", None)
    if old is not None:
        print(
            "iommugroups: note: -i/--input is deprecated and goes in the next release: give "
            "the source as the first argument",
            file=sys.stderr,
        )
        if getattr(args, "file", None) is not None:
            raise UsageError(f"two sources: {args.file} and -i {old}")
        args.file = old
        args.input = None
    given = [
        f"{what} {value}"
        for what, value in (
            ("", getattr(args, "file", None)),
            ("--sysfs", getattr(args, "sysfs", None)),
            ("--example", getattr(args, "example", None)),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise UsageError("give one source, not " + " and ".join(g.strip() for g in given))


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
    _source_args(args)
    if args.file is not None or args.example is not None or args.sysfs is not None:
        return _given_reading(args)
    names = ", ".join(sorted(examples.EXAMPLES))
    try:
        reading = read_sysfs("/")
    except IommuGroupsError as exc:
        raise UsageError(
            f"this machine shows no PCI devices to read ({exc}); give a SOURCE, --sysfs DIR "
            f"or a built-in example: --example {{{names}}}"
        ) from None
    if reading.topology is None or not len(reading.topology):
        raise UsageError(
            "this machine shows no PCI devices; give a SOURCE, --sysfs DIR or a built-in "
            f"example: --example {{{names}}}"
        )
    return reading


#: Every command reads its source the same way (this machine when none is given).
reading_of = default_reading


def _given_reading(args: argparse.Namespace) -> Reading:
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


def add_model_options(p: argparse.ArgumentParser, *, dot: bool = False) -> None:
    """What every command that models a kernel takes: ``--kernel``, the output format
    (:func:`add_format`), ``-v`` and ``--pci-ids`` (:func:`add_notes_options`)."""
    add_kernel(p)
    add_format(p, dot=dot)
    add_notes_options(p)


def add_kernel(p: argparse.ArgumentParser) -> None:
    """``--kernel VERSION``: the kernel whose rules are modelled."""
    p.add_argument(
        "--kernel",
        metavar="VERSION",
        help=f"the Linux version to model, e.g. 6.1 (default: the one the source shows, else "
        f"the newest modelled, {NEWEST})",
    )


def modelled_kernel(args: argparse.Namespace, reading: Reading | None = None) -> KernelVersion:
    """``--kernel``, else the kernel the source shows, else :data:`NEWEST`."""
    try:
        return resolve_kernel(getattr(args, "kernel", None), reading.kernel if reading else None)
    except InvalidKernelVersion as exc:
        raise UsageError(f"--kernel: {exc}") from None


def kernel_note(
    kernel: KernelVersion,
    args: argparse.Namespace,
    reading: Reading | None = None,
    topology: Topology | None = None,
) -> None:
    """Say on standard error which kernel version was modelled, and where that came from."""
    if getattr(args, "kernel", None) is not None:
        why = "--kernel"
    elif reading is not None and kernel_version(reading.kernel) is not None:
        why = f"the source's kernel, {reading.kernel}"
    else:
        why = "the newest modelled; --kernel VERSION for another"
    print(f"iommugroups: note: modelled Linux {kernel} ({why})", file=sys.stderr)
    arm = topology is not None and any(
        i.kind in (IommuKind.SMMU_V2, IommuKind.SMMU_V3) for i in topology.iommus
    )
    if arm and holds("probe-time-arm64", kernel):
        print(
            f"iommugroups: note: Linux {kernel} groups arm64 devices at driver probe (R7.1): "
            "these are the groups of the order-independent rules; `iommugroups simulate` "
            "replays a boot in its probe order",
            file=sys.stderr,
        )


def json_with_kernel(doc: dict[str, Any], kernel: KernelVersion) -> dict[str, Any]:
    """``doc`` with ``"kernel": "MAJOR.MINOR"`` after its ``schema``."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        out[key] = value
        if key == "schema":
            out["kernel"] = str(kernel)
    out.setdefault("kernel", str(kernel))
    return out


def emit_graph(
    args: argparse.Namespace, topology: Topology, grouping: Grouping, title: str
) -> None:
    dot_text = to_dot(topology, grouping, title=title)
    if output_format(args) == "dot":
        sys.stdout.write(dot_text)
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(to_svg(dot_text))
