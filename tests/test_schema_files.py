"""The JSON schemas shipped as files (``iommugroups/_data/schemas/*.json``).

Programs not written in Python validate the commands' JSON output with these
files. Each must be exactly the schema :data:`iommugroups.schemas.SCHEMAS`
holds (so ``tools/export_schemas.py`` must be re-run when a schema changes),
every schema must have its file (a new schema without one fails here), no
file may outlive its schema, and each file must stand alone: a draft 2020-12
document whose references all resolve inside it.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from iommugroups.schemas import SCHEMAS

from .helpers import SCHEMA_KEYWORDS

TOOL = Path(__file__).resolve().parent.parent / "tools" / "export_schemas.py"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


@cache
def _tool() -> ModuleType:
    """``tools/export_schemas.py``, imported from its path."""
    spec = importlib.util.spec_from_file_location("export_schemas", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _shipped() -> dict[str, str]:
    """The files as the installed package holds them, read through importlib.resources."""
    folder = files("iommugroups") / "_data" / "schemas"  # as docs/json.md says
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    }


def test_every_schema_has_its_file() -> None:
    shipped = _shipped()
    missing = [sid for sid in SCHEMAS if _tool().file_name(sid) not in shipped]
    assert not missing, (
        f"no file for {missing}: run `python tools/export_schemas.py` after changing "
        "iommugroups/schemas.py"
    )


def test_every_file_is_a_schema_of_the_module() -> None:
    names = {_tool().file_name(sid) for sid in SCHEMAS}
    assert sorted(set(_shipped()) - names) == [], "stale files: run tools/export_schemas.py"


@pytest.mark.parametrize("schema_id", sorted(SCHEMAS))
def test_file_equals_the_module_schema(schema_id: str) -> None:
    name = _tool().file_name(schema_id)
    text = _shipped().get(name)
    if text is None:
        pytest.fail(f"{name} missing: run `python tools/export_schemas.py`")
    assert json.loads(text) == SCHEMAS[schema_id], (
        f"{name} differs from iommugroups.schemas: run `python tools/export_schemas.py`"
    )
    assert text == _tool().schema_files()[name]  # byte for byte what the tool writes


def test_file_names() -> None:
    assert _tool().file_name("iommugroups.groups/1") == "groups-1.json"
    assert _tool().file_name("iommugroups.whatif/12") == "whatif-12.json"
    for bad in ("groups/1", "iommugroups.groups", "iommugroups.groups/v1", "iommugroups./1"):
        with pytest.raises(ValueError, match="not a schema id"):
            _tool().file_name(bad)
    assert len({_tool().file_name(sid) for sid in SCHEMAS}) == len(SCHEMAS)


def _walk(node: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object inside a schema, with where it is."""
    if not isinstance(node, dict):
        return
    yield path, node
    for key in ("properties", "$defs"):
        for name, sub in node.get(key, {}).items():
            yield from _walk(sub, f"{path}.{key}.{name}")
    for key in ("items", "additionalProperties", "propertyNames"):
        if isinstance(node.get(key), dict):
            yield from _walk(node[key], f"{path}.{key}")
    for key in ("oneOf", "anyOf"):
        for i, sub in enumerate(node.get(key, ())):
            yield from _walk(sub, f"{path}.{key}[{i}]")


@pytest.mark.parametrize("schema_id", sorted(SCHEMAS))
def test_each_file_stands_alone(schema_id: str) -> None:
    """Draft 2020-12, only the documented keywords, every ``$ref`` inside the file."""
    doc = json.loads(_shipped()[_tool().file_name(schema_id)])
    assert doc["$schema"] == DRAFT_2020_12
    assert doc["title"] == schema_id
    defs = doc.get("$defs", {})
    named = [
        n["properties"]["schema"] for _, n in _walk(doc) if "schema" in n.get("properties", {})
    ]
    assert {"const": schema_id} in named, "no object of the file is a document of its schema"
    assert all(s.get("const") in SCHEMAS for s in named)  # embedded documents: known schemas
    for where, node in _walk(doc):
        assert set(node) <= SCHEMA_KEYWORDS, f"{where}: {sorted(set(node) - SCHEMA_KEYWORDS)}"
        ref = node.get("$ref")
        if ref is not None:
            assert ref.startswith("#/$defs/"), f"{where}: {ref}"
            assert ref.removeprefix("#/$defs/") in defs, f"{where}: {ref} does not resolve"


def _export(*argv: str) -> int:
    status: int = _tool().main(list(argv))
    return status


def test_tool_check_passes_on_the_shipped_files() -> None:
    assert _export("--check") == 0


def test_tool_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "schemas"
    assert _export("--check", "--output", str(out)) == 1  # nothing there yet
    assert "missing" in capsys.readouterr().err
    assert _export("--output", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(_tool().schema_files())
    assert _export("--check", "--output", str(out)) == 0
    capsys.readouterr()

    (out / "groups-1.json").write_text("{}\n")  # edited by hand
    (out / "gone-1.json").write_text("{}\n")  # a schema that no longer exists
    assert _export("--check", "--output", str(out)) == 1
    err = capsys.readouterr().err
    assert "groups-1.json: differs" in err
    assert "gone-1.json: no schema" in err

    assert _export("--output", str(out)) == 0  # rewrites one, removes the other
    assert not (out / "gone-1.json").exists()
    assert _export("--check", "--output", str(out)) == 0
