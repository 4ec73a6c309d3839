"""The command-line tool: parse arguments, call the API, render.

Exit status: 0 success, 1 a finding (later commands), 2 usage or input
error. No traceback is ever shown: errors are one line naming the file,
line and problem.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import examples
from ._errors import IommuGroupsError
from ._io.load import load
from ._model import Topology
from ._render import listing, to_json_text
from ._strategies.canonical import canonical_groups
from ._version import __version__

__all__ = ["main"]

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_ERROR = 2

_GROUPS_EPILOG = """\
examples:
  iommugroups groups --example desktop
  iommugroups groups machine.lspci          # an `lspci -xxxx` dump
  iommugroups groups topology.toml --json
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="iommugroups",
        description="Compute, explain and check Linux IOMMU groups.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    g = sub.add_parser(
        "groups",
        help="print the IOMMU groups Linux makes for a topology",
        description="Print the IOMMU groups Linux (v6.15+, x86 always) makes for a topology: "
        "devices grouped in device-add order, parents first (the canonical strategy).",
        epilog=_GROUPS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="topology file (JSON/TOML), `lspci -xxxx` dump or oracle capture; - for stdin",
    )
    src.add_argument("--example", metavar="NAME", help="a built-in example topology")
    g.add_argument("--json", action="store_true", help="print JSON instead of the listing")
    return p


def _topology(args: argparse.Namespace) -> Topology:
    if args.example is not None:
        try:
            return examples.get(args.example)
        except KeyError as exc:
            raise _UsageError(str(exc.args[0])) from None
    return load(args.file)


class _UsageError(Exception):
    pass


def _cmd_groups(args: argparse.Namespace) -> int:
    topo = _topology(args)
    grouping = canonical_groups(topo)
    if args.json:
        data = grouping.to_json()
        sys.stdout.write(to_json_text(data))
    else:
        sys.stdout.write(listing(grouping, topo))
        for dev, why in sorted(grouping.ungrouped.items()):
            print(f"iommugroups: note: {dev} has no IOMMU group: {why}", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        if args.command == "groups":
            return _cmd_groups(args)
        parser.error(f"unknown command {args.command}")  # pragma: no cover
    except _UsageError as exc:
        print(f"iommugroups: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except IommuGroupsError as exc:
        print(f"iommugroups: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback
        print(
            f"iommugroups: internal error: {type(exc).__name__}: {exc} "
            "(please report this with the input that caused it)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return EXIT_OK  # pragma: no cover
