"""The command-line tool: parse arguments, call the API, render.

Exit status: 0 success, 1 a finding (``check``: an isolation hole), 2 usage
or input error. No traceback is ever shown: errors are one line naming the
file, line and problem. Each command is a module of this package
(``cmd_*``: its parser and its ``run``).
"""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Sequence
from typing import Any

from .._errors import IommuGroupsError
from .._version import __version__
from . import (
    cmd_check,
    cmd_explain,
    cmd_groups,
    cmd_orders,
    cmd_passthrough,
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
    cmd_passthrough,
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


class _ClosedOutput(OSError):
    """Standard output was closed when the tool started."""


class _NoStdout(io.TextIOBase):
    """Stands for a closed standard output: writing to it is an error, not a crash."""

    encoding = "utf-8"

    def write(self, text: str) -> int:
        raise _ClosedOutput(errno.EBADF, "standard output is closed")

    @property
    def buffer(self) -> Any:
        raise _ClosedOutput(errno.EBADF, "standard output is closed")


def _discard_stdout() -> None:
    """After a failed write, point standard output at /dev/null, so that the
    interpreter's own flush at exit fails no more."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(fd, sys.stdout.fileno())
        finally:
            os.close(fd)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


def _output_error(exc: BaseException) -> str:
    if isinstance(exc, UnicodeEncodeError):
        encoding = getattr(sys.stdout, "encoding", None) or exc.encoding
        bad = exc.object[exc.start : exc.end]
        return (
            f"cannot write the output: standard output's encoding ({encoding}) cannot show "
            f"{bad!r}; set PYTHONIOENCODING=utf-8 (or a UTF-8 locale)"
        )
    assert isinstance(exc, OSError)
    return f"cannot write the output: {exc.strerror or exc}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status.

    Errors are one line on standard error, never a traceback: bad input or
    usage (exit 2), and output that cannot be written (a full disk,
    ``/dev/full``, a closed standard output, an encoding that cannot show a
    name; exit 2). A closed pipe (``| head``) ends quietly (exit 0).
    """
    if sys.stdout is None:
        sys.stdout = _NoStdout()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        status = int(args.run(args))
        sys.stdout.flush()  # a write error shows here, not at exit
        return status
    except (UsageError, IommuGroupsError) as exc:
        _error(f"iommugroups: error: {exc}")
        return EXIT_ERROR
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except (UnicodeEncodeError, OSError) as exc:  # the readers turn theirs into InputError
        _discard_stdout()
        _error(f"iommugroups: error: {_output_error(exc)}")
        return EXIT_ERROR
    except Exception as exc:  # never a traceback
        _error(
            f"iommugroups: internal error: {type(exc).__name__}: {exc} "
            "(please report this with the input that caused it)"
        )
        return EXIT_ERROR


def _error(line: str) -> None:
    """One line on standard error (which may be closed, or unable to show it)."""
    if sys.stderr is None:
        return
    try:
        print(line, file=sys.stderr)
    except (OSError, UnicodeEncodeError):
        try:
            print(line.encode("ascii", "backslashreplace").decode("ascii"), file=sys.stderr)
        except (OSError, UnicodeEncodeError):
            pass
