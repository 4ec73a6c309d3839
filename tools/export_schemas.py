"""Write every JSON schema of :mod:`iommugroups.schemas` to ``iommugroups/_data/schemas/``.

Usage::

    python tools/export_schemas.py            # (re)write the files, remove stale ones
    python tools/export_schemas.py --check    # exit 1 if a file is missing, differs or is stale

Schema ``iommugroups.NAME/VERSION`` goes to ``NAME-VERSION.json`` (``groups-1.json``),
exactly as :data:`iommugroups.schemas.SCHEMAS` holds it, so that programs not
written in Python can validate the commands' JSON output with any JSON Schema
(draft 2020-12) validator. The package ships the files;
``tests/test_schema_files.py`` checks they are what the module holds, so a
schema changed or added without re-running this tool fails the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # export from this checkout, installed or not
    sys.path.insert(0, str(ROOT))

from iommugroups.schemas import SCHEMAS  # noqa: E402

__all__ = ["DEFAULT_OUTPUT", "file_name", "main", "schema_files"]

#: The directory the package ships the files in.
DEFAULT_OUTPUT = ROOT / "iommugroups" / "_data" / "schemas"
_PREFIX = "iommugroups."


def file_name(schema_id: str) -> str:
    """``iommugroups.groups/1`` -> ``groups-1.json``.

    Raises:
        ValueError: not an ``iommugroups.NAME/VERSION`` id.
    """
    name, slash, version = schema_id.removeprefix(_PREFIX).partition("/")
    if not schema_id.startswith(_PREFIX) or not slash or not name or not version.isdigit():
        raise ValueError(f"not a schema id of the form iommugroups.NAME/VERSION: {schema_id!r}")
    return f"{name}-{version}.json"


def schema_files() -> dict[str, str]:
    """Every file's name and text: the schema as JSON, two-space indented, UTF-8."""
    return {
        file_name(schema_id): json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for schema_id, schema in SCHEMAS.items()
    }


def _differences(out: Path, want: dict[str, str]) -> list[str]:
    problems = []
    for name, text in sorted(want.items()):
        path = out / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from iommugroups.schemas")
    for path in sorted(out.glob("*.json")) if out.is_dir() else ():
        if path.name not in want:
            problems.append(f"{path}: no schema in iommugroups.schemas has this file (stale)")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or, with ``--check``, compare) the schema files; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when a file is missing, differs or is stale",
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}"
    )
    args = parser.parse_args(argv)
    out: Path = args.output
    want = schema_files()
    problems = _differences(out, want)
    if args.check:
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run: python tools/export_schemas.py", file=sys.stderr)
        return 1 if problems else 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(want.items()):
        path = out / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    for path in sorted(out.glob("*.json")):
        if path.name not in want:
            path.unlink()
            print(f"removed {path} (no such schema)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
