"""Sphinx extension: show the real output of an ``iommugroups`` command.

Usage in a MyST page::

    ```{command-output} iommugroups groups --example desktop
    ```

The command is run in-process at build time through
:func:`iommugroups._cli.app.main` (no subprocess, no shell), and the page shows
``$ <command>`` followed by what it printed on stdout. The page is re-read on
every build, so the output shown can never drift from what the code prints.

Options:

``:returncode: N``
    The exit status the command must return (default 0). Any other status
    is a build error, as is a command that does not start with
    ``iommugroups``.

``:cwd: DIR``
    Run the command in ``DIR``, so that the file names it is given are the
    ones a reader types: relative to the page's own directory, or to the
    documentation's source directory when it starts with ``/`` (as for
    ``literalinclude``). ``:cwd: ..`` is the repository root. Without it
    the command runs in whatever directory the build was started from.

``:stderr:``
    Also show what the command printed on standard error (notes, warnings),
    interleaved with standard output as a terminal shows them.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

PROGRAM = "iommugroups"


class CommandOutput(SphinxDirective):
    """``command-output``: run an ``iommugroups`` command, show its stdout."""

    required_arguments = 1
    optional_arguments = 0
    final_argument_whitespace = True
    has_content = False
    option_spec: ClassVar[dict[str, Any]] = {
        "returncode": directives.nonnegative_int,
        "cwd": directives.path,
        "stderr": directives.flag,
    }

    def run(self) -> list[nodes.Node]:
        from iommugroups._cli.app import main

        command = self.arguments[0].strip()
        argv = shlex.split(command)
        if not argv or argv[0] != PROGRAM:
            raise self.error(f"command-output: only {PROGRAM!r} commands can run: {command!r}")
        expected = self.options.get("returncode", 0)
        cwd = None
        if "cwd" in self.options:
            cwd = self.env.relfn2path(self.options["cwd"])[1]
            if not os.path.isdir(cwd):
                raise self.error(f"command-output: :cwd: {cwd} is not a directory")
        out = io.StringIO()
        err = out if "stderr" in self.options else io.StringIO()
        previous = os.getcwd()
        try:
            if cwd is not None:
                os.chdir(cwd)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    status = main(argv[1:])
                except SystemExit as exc:  # argparse usage errors, --version
                    status = exc.code if isinstance(exc.code, int) else 1
        finally:
            os.chdir(previous)
        if status != expected:
            raise self.error(
                f"command-output: {command!r} exited {status}, expected {expected}\n"
                f"stderr:\n{err.getvalue()}"
            )
        # Re-run on every build: the output comes from the code, not the page.
        self.env.note_reread()
        text = f"$ {command}\n{out.getvalue().expandtabs(8).rstrip()}"
        block = nodes.literal_block(text, text, language="console")
        self.set_source_info(block)
        return [block]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("command-output", CommandOutput)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
