"""The command-line tool: parse arguments, call the API, render.

Exit status: 0 success, 1 a finding (``check``: an isolation hole), 2 usage
or input error. No traceback is ever shown: errors are one line naming the
file, line and problem. Each command is a module of this package
(``cmd_*``: its parser and its ``run``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .._errors import IommuGroupsError
from .._version import __version__
from . import (
    cmd_check,
    cmd_explain,
    cmd_groups,
    cmd_orders,
    cmd_show,
    cmd_simulate,
    cmd_snapshot,
    cmd_vm,
    cmd_what_if,
)
from .common import EXIT_ERROR, EXIT_OK, Parser, UsageError

__all__ = ["main"]

#: The commands, in the order ``--help`` lists them.
COMMANDS = (
    cmd_groups,
    cmd_check,
    cmd_show,
    cmd_explain,
    cmd_what_if,
    cmd_snapshot,
    cmd_simulate,
    cmd_orders,
    cmd_vm,
)


def build_parser() -> Parser:
    """The argument parser of every command."""
    p = Parser(
        prog="iommugroups",
        description="Compute, explain and check Linux IOMMU groups.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return int(args.run(args))
    except (UsageError, IommuGroupsError) as exc:
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
