"""Every ``iommugroups`` command the docs and the README show runs, as written (issue 12).

What is run: each ``$ ...`` line of a ``console`` block in ``docs/*.md`` and
``README.md`` that runs ``iommugroups``, and each ``{command-output}``
directive (whose output the documentation build shows). A reader pastes them
at the repository root, so they run there: in a copy of the working tree
(without the package, which is imported from where it is installed), with
``IOMMUGROUPS_PCI_IDS=bundled`` as the docs build sets it.

How: a line made only of plain words (letters, digits and ``_ . / : , = @ + % -``,
and a trailing ``# comment``) is split by :func:`shlex.split`, which then
splits it as any shell would, and runs in-process through
:func:`iommugroups._cli.app.main`. Any other line runs through ``bash -c``
exactly as written, so that ``|`` is a pipe and ``>`` a redirection, as in
the reader's shell (``iommugroups`` is this interpreter's console script).

What must hold:

* the exit status is the one the page documents: 0, a directive's
  ``:returncode:``, or the status :data:`EXPECTED_STATUS` gives with its reason;
* no traceback and no internal error;
* the command creates and changes no file in the copy, except the files its
  own redirections name (``> d05.svg``): ``move=09:00=>07:0a.0`` typed
  unquoted creates a file ``07:0a.0``, which fails here;
* the output lines a console block shows after a command are what it prints
  on standard output, alone or with standard error as a terminal interleaves
  them (a line ``...`` stands for any lines);
* a directive that names a file of the repository runs at the repository
  root (``:cwd: ..``), as the test does, so the page shows what a reader types.

What is not run is in :data:`SKIP` (needs root, the machine the tests run
on, or installs the package), each with its reason, and the commands that
need Graphviz's ``dot`` when it is not installed. A command with ``sudo`` or
``pip`` that is not in :data:`SKIP` fails without being run.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from iommugroups._cli.app import main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
PROGRAM = "iommugroups"

#: Commands that are not run, each with why. Keep it small: a command a
#: reader could run from the repository root is rewritten to run, not listed.
SKIP: dict[str, str] = {
    "sudo iommugroups snapshot machine.json": "needs root and the reader's own /sys "
    "(docs/_data/machine.json is such a snapshot, taken from a QEMU guest's sysfs)",
    "pip install . && iommugroups groups --example desktop": "installs the package; "
    "`iommugroups groups --example desktop` alone is the README's next command, run here",
    "iommugroups groups --sysfs /": "reads whatever machine the tests run on",
    "iommugroups check machine.json --observed groups.log": "the reader's own snapshot and "
    "kernel log, made by the two commands before it (sudo)",
}

#: Documented exit statuses other than 0 of console-block commands, with the
#: reason the page gives (a directive states its own with ``:returncode:``).
EXPECTED_STATUS: dict[str, tuple[int, str]] = {
    "iommugroups check --example d05 --observed docs/_data/d05-log1.txt": (
        1,
        "the seed's first log is an isolation hole: check exits 1 on a split",
    ),
    "iommugroups orders --example d05": (
        1,
        "the seed's board under legacy-probe-time is order dependent: orders exits 1",
    ),
    "iommugroups vm --example desktop": (
        2,
        "the page shows QEMU's q35 machine refusing the example's own host bridge",
    ),
    "iommugroups check tests/data/realdata/p11-apple-macmini8-1-tb3-egpu/lspci-tree.txt "
    "--observed tests/data/realdata/p11-apple-macmini8-1-tb3-egpu/groups.derived.txt": (
        3,
        "a tree shows no capability: most verdicts are unknown, as the page says",
    ),
}

#: Files under docs/_data that commands read and a page shows in full:
#: (file, page, the page's block language, which block of that language).
SHOWN_FILES = [
    ("docs/_data/bridge-and-modules.toml", "docs/scenario-format.md", "toml", 0),
    ("docs/_data/arm64-example.toml", "docs/topology-format.md", "toml", 0),
]

#: A line of plain words, which shlex.split splits as a shell does (comment aside).
_PLAIN = re.compile(r"^[\w./:,=@+%\s-]*$")
#: A redirection of standard output to a file, starting a word (``> x``, ``2>> x``).
_REDIRECT = re.compile(r"(?:^|\s)\d?>>?\s*([^\s|;&<>]+)")
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*(.*)$")
_OPTION = re.compile(r"^\s*:([\w-]+):\s*(.*)$")
_RUNS_PROGRAM = re.compile(rf"(?:^|[|&;]\s*|\bsudo\s+){PROGRAM}\b")
#: What the copy of the working tree leaves out, at its top: what no command
#: reads, and the package, which is imported from where it is installed.
_NOT_COPIED = {
    ".git",
    ".hypothesis",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "build",
    "dist",
    "venv",
    ".venv",
    PROGRAM,
}


class DocCommand(NamedTuple):
    """One command as a page shows it."""

    page: str  #: relative to the repository root
    line: int  #: 1-based line of the command
    command: str  #: as written, without the prompt
    directive: bool  #: a ``{command-output}`` directive (else a console block)
    status: int  #: the exit status the page documents
    shown: tuple[str, ...] | None  #: output lines a console block shows, if any
    cwd: str | None  #: a directive's ``:cwd:``

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def key(self) -> str:
        """The command without its trailing comment: what :data:`SKIP` and
        :data:`EXPECTED_STATUS` are keyed by."""
        return _key(self.command)


def _key(command: str) -> str:
    return " ".join(command.partition(" #")[0].split())


def _blocks(text: str) -> Iterator[tuple[int, str, list[str]]]:
    """Every fenced block: (line of its fence, its info string, its lines)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, fence, info = m.groups()
        end = i + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence) and not lines[end].strip().strip(fence[0])
        ):
            end += 1
        body = [
            line[len(indent) :] if line.startswith(indent) else line for line in lines[i + 1 : end]
        ]
        yield i + 1, info, body
        i = end + 1


def _console_commands(page: str, start: int, body: list[str]) -> Iterator[DocCommand]:
    i = 0
    while i < len(body):
        line = body[i]
        if not line.startswith("$ "):
            i += 1
            continue
        first = i
        command = line[2:].rstrip()
        while command.endswith("\\") and i + 1 < len(body):  # continuation lines
            i += 1
            command = command[:-1].rstrip() + " " + body[i].strip()
        i += 1
        shown = []
        while i < len(body) and not body[i].startswith("$ "):
            shown.append(body[i])
            i += 1
        while shown and not shown[-1].strip():
            shown.pop()
        if _RUNS_PROGRAM.search(command):
            status = EXPECTED_STATUS.get(_key(command), (0, ""))[0]
            yield DocCommand(
                page, start + 1 + first, command, False, status, tuple(shown) or None, None
            )


def commands_of(page: str, text: str) -> list[DocCommand]:
    """Every command of a page's text that runs ``iommugroups``, in page order."""
    found: list[DocCommand] = []
    for start, info, body in _blocks(text):
        if info.startswith("{command-output}"):
            options = {}
            for line in body:
                m = _OPTION.match(line)
                if m is None:
                    break
                options[m[1]] = m[2].strip()
            command = info[len("{command-output}") :].strip()
            status = int(options.get("returncode", "0"))
            found.append(DocCommand(page, start, command, True, status, None, options.get("cwd")))
        elif info.split()[:1] == ["console"]:
            found.extend(_console_commands(page, start, body))
    return found


def collect(pages: list[Path] = PAGES) -> list[DocCommand]:
    """Every command of ``pages`` that runs ``iommugroups``."""
    return [
        cmd
        for path in pages
        for cmd in commands_of(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"))
    ]


COMMANDS = collect()


# --- running them -------------------------------------------------------------------------


class Tree:
    """A copy of the working tree, and how to tell what a command did to it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(ROOT, root, ignore=self._ignore, symlinks=True)
        self.baseline = self.listing()

    @staticmethod
    def _ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == ROOT
        skip = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        if top:
            skip |= _NOT_COPIED & set(names)
        if Path(folder) == ROOT / "docs":
            skip |= {"_build"} & set(names)
        return skip

    def listing(self) -> dict[str, tuple[int, int]]:
        """Every file and folder: its size and modification time."""
        out = {}
        for folder, dirs, names in os.walk(self.root):
            for name in dirs + names:
                path = os.path.join(folder, name)
                st = os.lstat(path)
                size = 0 if os.path.isdir(path) and not os.path.islink(path) else st.st_size
                out[os.path.relpath(path, self.root)] = (size, st.st_mtime_ns)
        return out

    def changes(self) -> tuple[list[str], list[str]]:
        """What is new, and what changed, since the copy was made; then undo it."""
        now = self.listing()
        new = sorted(p for p in now if p not in self.baseline)
        changed = sorted(
            p
            for p, v in now.items()
            if p in self.baseline and v != self.baseline[p] and not os.path.isdir(self.root / p)
        )
        for p in reversed(new):
            path = self.root / p
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif os.path.lexists(path):
                path.unlink()
        if changed:  # put the originals back for the commands after
            for p in changed:
                shutil.copy2(ROOT / p, self.root / p)
            self.baseline = self.listing()
        return new, changed


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return Tree(tmp_path_factory.mktemp("docs-commands") / "repo")


class Run(NamedTuple):
    """What a command did."""

    status: int
    output: str  #: standard output and error, interleaved as a terminal shows them
    stdout: str | None  #: standard output alone (``None``: not captured apart)


class _Sink(io.RawIOBase):
    """Bytes written to a stream, also copied to the stream shared with the other one."""

    def __init__(self, shared: bytearray) -> None:
        super().__init__()
        self.shared = shared
        self.own = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.own += chunk
        self.shared += chunk
        return len(chunk)


def _stream(sink: _Sink) -> io.TextIOWrapper:
    """A text stream with a ``buffer`` (``--format svg`` writes bytes), unbuffered."""
    return io.TextIOWrapper(sink, encoding="utf-8", write_through=True)  # type: ignore[arg-type]


def _in_process(argv: list[str], tree: Tree, monkeypatch: pytest.MonkeyPatch) -> Run:
    both = bytearray()
    out, err = _Sink(both), _Sink(both)
    monkeypatch.chdir(tree.root)
    with contextlib.redirect_stdout(_stream(out)), contextlib.redirect_stderr(_stream(err)):
        try:
            status = main(argv[1:])
        except SystemExit as exc:  # argparse: --help, usage errors
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    text = bytes(both).decode("utf-8", "replace")
    return Run(status, text, bytes(out.own).decode("utf-8", "replace"))


def _through_bash(command: str, tree: Tree) -> Run:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash on this machine")
    # `iommugroups` is this interpreter's: its console script when installed, as a
    # reader runs it, else `python -m iommugroups` (the copy holds no package to shadow it)
    script = Path(sys.executable).with_name(PROGRAM)
    runner = [str(script)] if script.is_file() else [sys.executable, "-m", PROGRAM]
    env = {
        **os.environ,
        "IOMMUGROUPS_PCI_IDS": "bundled",
        "NO_COLOR": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    shell = f'{PROGRAM}() {{ {shlex.join(runner)} "$@"; }}\n{command}\n'
    done = subprocess.run(
        [bash, "-c", shell],
        cwd=tree.root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    return Run(done.returncode, done.stdout, None)


def _matches(shown: tuple[str, ...], printed: list[str]) -> bool:
    """``shown`` equals ``printed`` line for line, a line ``...`` standing for any lines."""
    want = [line.expandtabs(8).rstrip() for line in shown]
    got = [line.expandtabs(8).rstrip() for line in printed]

    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(got)
        if want[i].strip() == "...":
            return any(match(i + 1, k) for k in range(j, len(got) + 1))
        return j < len(got) and want[i] == got[j] and match(i + 1, j + 1)

    return match(0, 0)


def _needs_graphviz(command: str) -> bool:
    return "--format svg" in command or re.search(r"\|\s*dot\b", command) is not None


@pytest.mark.parametrize("cmd", COMMANDS, ids=[c.id for c in COMMANDS])
def test_command_runs_as_written(
    cmd: DocCommand, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    if cmd.key in SKIP:
        pytest.skip(SKIP[cmd.key])
    if re.search(r"\b(sudo|pip)\b", cmd.key):
        pytest.fail(f"{cmd.id}: {cmd.command!r} needs root or installs: rewrite it, or SKIP it")
    if _needs_graphviz(cmd.command) and shutil.which("dot") is None:
        pytest.skip("needs Graphviz's dot, which is not installed")
    monkeypatch.setenv("IOMMUGROUPS_PCI_IDS", "bundled")
    monkeypatch.setenv("NO_COLOR", "1")
    if _PLAIN.match(cmd.key):
        run = _in_process(shlex.split(cmd.key), tree, monkeypatch)
    else:
        run = _through_bash(cmd.command, tree)
    new, changed = tree.changes()
    where = f"{cmd.id}: {cmd.command!r}"
    output = run.output
    assert "Traceback" not in output, f"{where}\n{output}"
    assert "internal error" not in output, f"{where}\n{output}"
    assert run.status == cmd.status, f"{where} exited {run.status}, not {cmd.status}\n{output}"
    redirected = set(_REDIRECT.findall(cmd.command))
    assert [p for p in new if p not in redirected] == [], f"{where} created files"
    assert changed == [], f"{where} changed files of the repository"
    if cmd.shown is not None:  # what it printed, or its standard output alone (no notes)
        printed = [output] if run.stdout is None else [output, run.stdout]
        assert any(_matches(cmd.shown, text.splitlines()) for text in printed), (
            f"{where}: the page shows\n" + "\n".join(cmd.shown) + f"\nit prints\n{output}"
        )


# --- the pages themselves ---------------------------------------------------------------


def test_commands_are_found() -> None:
    """The extraction finds what the pages hold (so the test above is not vacuous)."""
    pages = {c.page for c in COMMANDS}
    assert {"README.md", "docs/cmd-what-if.md", "docs/check-your-machine.md"} <= pages
    assert sum(c.directive for c in COMMANDS) >= 30
    assert sum(not c.directive for c in COMMANDS) >= 10
    run = [c for c in COMMANDS if c.key not in SKIP]
    assert len(SKIP) <= 6 < len(run)
    assert set(SKIP) <= {c.key for c in COMMANDS}, "a SKIP entry no page shows"
    assert set(EXPECTED_STATUS) <= {c.key for c in COMMANDS}, "a status no page shows"


def test_extraction() -> None:
    """Console prompts, continuations, shown output, directive options."""
    text = (
        "```console\n$ iommugroups groups \\\n    --example desktop\nIOMMU Group 0:\n"
        "\n$ echo not ours\n$ sudo iommugroups snapshot m.json\n```\n\n"
        "```{command-output} iommugroups check x.json\n:cwd: ..\n:returncode: 3\n```\n"
        "```text\n$ iommugroups ignored\n```\n"
    )
    found = commands_of("p", text)
    assert found == [
        DocCommand(
            "p", 2, "iommugroups groups --example desktop", False, 0, ("IOMMU Group 0:",), None
        ),
        DocCommand("p", 7, "sudo iommugroups snapshot m.json", False, 0, None, None),
        DocCommand("p", 10, "iommugroups check x.json", True, 3, None, ".."),
    ]


def test_a_command_the_shell_takes_apart_is_caught(tree: Tree) -> None:
    """The issue's example: unquoted, ``=>`` is a redirection that creates a file."""
    run = _through_bash(
        "iommugroups what-if --example desktop remove=0a:00 move=09:00=>07:0a.0", tree
    )
    assert run.status == 2  # what-if was given "move=09:00=" ...
    assert tree.changes() == (["07:0a.0"], [])  # ... and the shell created the file
    assert tree.changes() == ([], [])  # which is removed for the commands after
    run = _through_bash("iommugroups what-if --example desktop set-acs=00:1c.0:SV|RR", tree)
    assert run.status == 127  # "RR: command not found"


def test_matching_shown_output() -> None:
    assert _matches(("a", "...", "d"), ["a", "b", "c", "d"])
    assert _matches(("a", "...", "d"), ["a", "d"])
    assert _matches(("a\tb",), ["a       b  "])
    assert not _matches(("a", "d"), ["a", "b", "d"])
    assert not _matches(("a", "..."), ["b"])


@pytest.mark.parametrize("cmd", [c for c in COMMANDS if c.directive], ids=lambda c: c.id)
def test_directives_run_at_the_repository_root(cmd: DocCommand) -> None:
    """A directive naming a file of the repository says ``:cwd: ..``; no other cwd is used."""
    assert cmd.cwd in (None, ".."), f"{cmd.id}: :cwd: {cmd.cwd} (run it at the root: :cwd: ..)"
    files = [w for w in shlex.split(cmd.command)[1:] if "/" in w and (ROOT / w).exists()]
    if files:
        assert cmd.cwd == "..", f"{cmd.id}: names {files[0]} but has no ':cwd: ..'"
    for word in shlex.split(cmd.command)[1:]:
        if (
            re.fullmatch(r"[\w.-]+\.(json|txt|lspci|toml|log)", word)
            and not (ROOT / word).exists()
        ):
            pytest.fail(f"{cmd.id}: {word} is no file at the repository root")


@pytest.mark.parametrize(("path", "page", "lang", "index"), SHOWN_FILES)
def test_files_the_commands_read_are_the_pages_examples(
    path: str, page: str, lang: str, index: int
) -> None:
    """A file a page's command reads is the example the page shows, byte for byte."""
    text = (ROOT / page).read_text(encoding="utf-8")
    blocks = re.findall(rf"^```{lang}\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    assert (ROOT / path).read_text(encoding="utf-8") == blocks[index]
    assert any(path in c.command for c in COMMANDS) or path in text
