"""The rule ids (``R4.2``, ``R7.2a``, ...) and the rule table that defines them.

``docs/rule-table.md`` defines every rule once: an anchor ``(rule-R4.2)=``,
then a heading that starts with the id, a statement, and ``Source``,
``Holds`` and ``Status`` lines; the status is ``current`` or ``historical``.
The tests check both directions, computing what is used at test time:

* every id used in the package (``iommugroups/**/*.py``), the tests
  (``tests/**/*.py``), the documentation (``docs/**/*.md``, ``docs/**/*.py``,
  without ``docs/_build``) or ``README.md`` is defined in the table; a range
  (``R7.1-R7.9``, or with an en dash) uses both of its ends and nothing between;
* every rule in the table is used outside it, or is historical.

They also check that nothing the project ships points outside the
repository (``../shared``, ``/work/``, ``shared/spec``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "rule-table.md"

_ID = r"R\d+\.\d+[a-z]?"
#: A rule id on its own: not inside a word (``PR1.2``), a longer id or a
#: dotted number (``R1.2.3``).
RULE_ID = re.compile(rf"(?<![\w.]){_ID}(?!\w|\.\d)")
#: A hyphen or an en dash, between the ends of a range.
_DASH = "[-\u2013]"
#: The end of a range written without its ``R`` (``R4.1-4.5``).
RANGE_END = re.compile(rf"(?<![\w.])R\d+\.\d+[a-z]?{_DASH}(\d+\.\d+[a-z]?)(?!\w|\.\d)")

_LABEL = re.compile(rf"^\(rule-({_ID})\)=\s*$")
_HEADING = re.compile(rf"^### ({_ID})(?:\s|$)")
_FIELD = re.compile(r"^- \*\*(Source|Holds|Status):\*\*(.*)$")
STATUSES = ("current", "historical")


class Rule(NamedTuple):
    """One entry of the rule table."""

    id: str
    line: int
    status: str


def rule_ids(text: str) -> list[str]:
    """The rule ids ``text`` uses, in order, both ends of a range included."""
    found = [(m.start(), m.group()) for m in RULE_ID.finditer(text)]
    found += [(m.start(1), "R" + m.group(1)) for m in RANGE_END.finditer(text)]
    return [rule for _, rule in sorted(found)]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _in_build(path: Path) -> bool:
    return path.relative_to(ROOT).parts[:2] == ("docs", "_build")


def scanned_files() -> list[Path]:
    """The files whose rule ids must be defined, sorted, the rule table last."""
    files = [
        *ROOT.glob("iommugroups/**/*.py"),
        *ROOT.glob("tests/**/*.py"),
        *ROOT.glob("docs/**/*.md"),
        *ROOT.glob("docs/**/*.py"),
        ROOT / "README.md",
    ]
    return sorted(
        {f for f in files if f.is_file() and not _in_build(f)}, key=lambda f: (f == TABLE, f)
    )


def used_ids(files: list[Path]) -> dict[str, str]:
    """Rule id -> ``path:line`` of its first use in ``files``."""
    first: dict[str, str] = {}
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for rule in rule_ids(line):
                first.setdefault(rule, f"{_rel(path)}:{number}")
    return first


def parse_table(text: str) -> tuple[dict[str, Rule], list[str]]:
    """The rules ``text`` defines, and what is wrong with its entries."""
    rules: dict[str, Rule] = {}
    problems: list[str] = []
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _LABEL.match(line)]
    for i, line in enumerate(lines):
        if _HEADING.match(line) and i - 1 not in starts:
            problems.append(f"line {i + 1}: rule heading without a (rule-<id>)= anchor above it")
    for n, start in enumerate(starts):
        rule = _LABEL.match(lines[start]).group(1)  # type: ignore[union-attr]
        where = f"line {start + 1} ({rule})"
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        body = lines[start + 1 : end]
        heading = _HEADING.match(body[0]) if body else None
        if heading is None or heading.group(1) != rule:
            problems.append(f"{where}: the anchor is not followed by '### {rule} <title>'")
        fields: dict[str, list[str]] = {}
        for entry in body:
            if field := _FIELD.match(entry):
                fields.setdefault(field.group(1), []).append(field.group(2).strip())
        for name in ("Source", "Holds", "Status"):
            if len(fields.get(name, [])) != 1:
                problems.append(f"{where}: needs exactly one '- **{name}:**' line")
        status = (fields.get("Status") or [""])[0]
        if status not in STATUSES:
            problems.append(f"{where}: status {status!r} is not one of {', '.join(STATUSES)}")
        if rule in rules:
            problems.append(f"{where}: defined again (first at line {rules[rule].line})")
            continue
        rules[rule] = Rule(rule, start + 1, status)
    return rules, problems


@pytest.fixture(scope="module")
def table() -> dict[str, Rule]:
    rules, _ = parse_table(TABLE.read_text(encoding="utf-8"))
    return rules


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("the walk stops (R4.2).", ["R4.2"]),
        ("R2.2/R2.3/R2.4", ["R2.2", "R2.3", "R2.4"]),
        ('Step("R4.2", "text")', ["R4.2"]),
        ('rules = ("R7.1-R7.9", "R10.2")', ["R7.1", "R7.9", "R10.2"]),
        ("## Group objects (R1.1\u2013R1.4)", ["R1.1", "R1.4"]),
        ("steps 1-4 (R4.1\u20134.5)", ["R4.1", "R4.5"]),
        ("steps (R4.1-4.5)", ["R4.1", "R4.5"]),
        ("The bus notifier (R7.2a): probe", ["R7.2a"]),
        ("{ref}`rule-R4.2`", ["R4.2"]),
        ("kernels v5.3 to v6.15 and 6.1.169", []),
        ("PCIe r7.0, sec 6.12; R4; rules R4/R5", []),
        ("PowerEdge R7625, 0x1d, R1.2.3, PR1.2, R1.2x3, R1.2ab", []),
        ("§6 S-downward-merge", []),
    ],
)
def test_rule_ids_are_recognised(text: str, ids: list[str]) -> None:
    assert rule_ids(text) == ids


def test_rule_table_entries_are_well_formed(table: dict[str, Rule]) -> None:
    _, problems = parse_table(TABLE.read_text(encoding="utf-8"))
    assert not problems, f"{_rel(TABLE)}:\n  " + "\n  ".join(problems)
    assert len(table) > 40


def test_every_used_rule_id_is_defined(table: dict[str, Rule]) -> None:
    undefined = {
        rule: where for rule, where in used_ids(scanned_files()).items() if rule not in table
    }
    assert not undefined, (
        f"rule ids used but not defined in {_rel(TABLE)} (first use shown):\n  "
        + "\n  ".join(f"{rule}  {where}" for rule, where in sorted(undefined.items()))
    )


def test_every_rule_is_used_or_historical(table: dict[str, Rule]) -> None:
    used = used_ids([f for f in scanned_files() if f != TABLE])
    unused = [r for r in table.values() if r.id not in used and r.status != "historical"]
    assert not unused, (
        "rules defined but used nowhere outside the table, and not marked historical:\n  "
        + "\n  ".join(f"{r.id}  {_rel(TABLE)}:{r.line}" for r in unused)
    )


#: Text that points outside the repository, and the top-level paths it is
#: forbidden in.
OUTSIDE = {
    "../shared": ("iommugroups", "docs", "README.md", "tests"),
    "/work/": ("iommugroups", "docs", "README.md", "tests"),
    "shared/spec": ("iommugroups", "docs", "README.md"),
}


def _shipped_files() -> list[Path]:
    """Package and docs files of any kind; the tests' code and notes (not captured data)."""
    files = [*(ROOT / "iommugroups").rglob("*"), *(ROOT / "docs").rglob("*"), ROOT / "README.md"]
    files += [*ROOT.glob("tests/**/*.py"), *ROOT.glob("tests/**/*.md")]
    here = Path(__file__).resolve()
    return sorted(
        f
        for f in files
        if f.is_file()
        and f != here
        and not _in_build(f)
        and "__pycache__" not in f.parts
        and f.suffix != ".pyc"
    )


def test_nothing_points_outside_the_repository() -> None:
    found = []
    for path in _shipped_files():
        top = path.relative_to(ROOT).parts[0]
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern, where in OUTSIDE.items():
            if top not in where or pattern not in text:
                continue
            for number, line in enumerate(text.splitlines(), 1):
                if pattern in line:
                    found.append(f"{_rel(path)}:{number}: {pattern!r} in {line.strip()!r}")
    assert not found, "references outside the repository:\n  " + "\n  ".join(found)
