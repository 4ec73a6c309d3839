"""Every command's JSON output against its schema (the schemas), and CLI hygiene.

* Each command is run in-process with ``--json`` (``--format json``) on the
  built-in examples, oracle captures (``lspci -xxxx`` dumps, JSON captures,
  arm64 captures), the seed thread's logs and tree, and a snapshot of a fake
  sysfs tree; its document must validate *strictly* (every key declared).
* The schemas are not vacuous: replacing any value of a real document with
  one of a wrong type, dropping any fixed key, or changing the ``schema`` id
  makes validation fail; the enums match the code's.
* ``--help`` of every command exits 0 and shows examples; bad usage exits 2
  with a one-line error and no traceback; ``-`` reads standard input.
"""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iommugroups._analysis.changes import Change
from iommugroups._analysis.check import CHECK_SCHEMA, REASON_KINDS, Verdict
from iommugroups._analysis.partition import GROUP_KINDS, DeviceStatus
from iommugroups._analysis.reasons import EXPLAIN_SCHEMA, LINK_KINDS
from iommugroups._analysis.show import SHOW_SCHEMA, AcsState
from iommugroups._analysis.whatif import WHATIF_SCHEMA
from iommugroups._cli.app import main
from iommugroups._io.snapshot import SNAPSHOT_SCHEMA
from iommugroups._kernel.groups import GROUPS_SCHEMA
from iommugroups._render.simulation import SIMULATION_SCHEMA
from iommugroups.schemas import SCHEMAS, validate

from .helpers import SCHEMA_KEYWORDS

DATA = Path(__file__).parent / "data"
CAPTURES = DATA / "oracle" / "captures"
ARM64 = DATA / "oracle" / "arm64"
SEED = DATA / "seed" / "000_995015e96200a173.txt"

COMMANDS = ("groups", "simulate", "check", "snapshot", "show", "explain", "what-if")
SCHEMA_OF = {
    "groups": GROUPS_SCHEMA,
    "simulate": SIMULATION_SCHEMA,
    "check": CHECK_SCHEMA,
    "snapshot": SNAPSHOT_SCHEMA,
    "show": SHOW_SCHEMA,
    "explain": EXPLAIN_SCHEMA,
    "what-if": WHATIF_SCHEMA,
    "orders": "iommugroups.orders/1",
    "vm": "iommugroups.vm/1",
    "passthrough": "iommugroups.passthrough/1",
}

#: Topology sources: (id, arguments naming the source for groups/check/show).
SOURCES = [
    ("desktop", ["--example", "desktop"]),
    ("d05", ["--example", "d05"]),
    ("q35-1000.lspci", [str(CAPTURES / "q35-1000.lspci")]),
    ("q35-1107.lspci", [str(CAPTURES / "q35-1107.lspci")]),
    ("q35-1003.json", [str(CAPTURES / "q35-1003.json")]),
    ("switch.json", [str(DATA / "oracle" / "designed" / "switch.json")]),
    ("arm64-121.json", [str(ARM64 / "arm64-121.json")]),
]
SOURCE_IDS = [s[0] for s in SOURCES]


def _run(
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    *,
    status: int | tuple[int, ...] = 0,
) -> str:
    try:
        got = main(argv)
    except SystemExit as exc:  # argparse: --help, usage errors
        got = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    wanted = status if isinstance(status, tuple) else (status,)
    assert got in wanted, f"{argv}: exit {got}\n{err}"
    assert "Traceback" not in err
    return out


def _doc(argv: list[str], capsys: pytest.CaptureFixture[str], **kw: Any) -> dict[str, Any]:
    """Run a command, parse its JSON, validate it strictly against its schema."""
    doc = json.loads(_run(argv, capsys, **kw))
    assert isinstance(doc, dict)
    command = argv[0]
    assert doc["schema"] == SCHEMA_OF[command]
    assert validate(doc, doc["schema"], strict=True) == []
    return doc


def _source_of(args: list[str]) -> list[str]:
    """The source as explain/what-if take it (``-i FILE``)."""
    return args if args[0].startswith("--") else ["-i", *args]


def _devices(args: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    g = _doc(["groups", *args, "--json"], capsys)
    return [d for members in g["groups"] for d in members] + sorted(g["ungrouped"])


def _seed_lines(first: int, count: int) -> str:
    return "\n".join(SEED.read_text().splitlines()[first - 1 : first - 1 + count]) + "\n"


def _fake_sysfs(root: Path) -> None:
    """Three devices of capture q35-1000 in a sysfs-shaped tree, with groups and a driver."""
    data = json.loads((CAPTURES / "q35-1000.json").read_text())
    devices = root / "sys" / "bus" / "pci" / "devices"
    devices.mkdir(parents=True)
    (root / "sys" / "bus" / "pci" / "drivers" / "e1000e").mkdir(parents=True)
    for i, addr in enumerate(("0000:00:00.0", "0000:00:03.0", "0000:00:04.0")):
        d = devices / addr
        d.mkdir()
        config = bytes.fromhex(data["devices"][addr]["config_hex"])
        (d / "config").write_bytes(config)
        (d / "vendor").write_text(f"0x{int.from_bytes(config[:2], 'little'):04x}\n")
        g = root / "sys" / "kernel" / "iommu_groups" / str(i) / "devices"
        g.mkdir(parents=True)
        (g / addr).symlink_to(f"../../../../bus/pci/devices/{addr}")
        (d / "iommu_group").symlink_to(f"../../../../kernel/iommu_groups/{i}")
    (devices / "0000:00:03.0" / "driver").symlink_to("../../drivers/e1000e")


# ============================================================ the schema table
def test_there_is_one_schema_per_command() -> None:
    assert set(SCHEMAS) == set(SCHEMA_OF.values())
    for schema_id, schema in SCHEMAS.items():
        assert schema["title"] == schema_id
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def _subschemas(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _subschemas(sub, f"{path}.properties.{name}")
    for name, sub in schema.get("$defs", {}).items():
        yield from _subschemas(sub, f"{path}.$defs.{name}")
    for word in ("items", "additionalProperties", "propertyNames"):
        if isinstance(schema.get(word), dict):
            yield from _subschemas(schema[word], f"{path}.{word}")
    for word in ("oneOf", "anyOf"):
        for i, sub in enumerate(schema.get(word, ())):
            yield from _subschemas(sub, f"{path}.{word}[{i}]")


@pytest.mark.parametrize("schema_id", sorted(SCHEMAS))
def test_schemas_use_only_the_keywords_validate_implements(schema_id: str) -> None:
    root = SCHEMAS[schema_id]
    for path, sub in _subschemas(root, schema_id):
        assert set(sub) <= SCHEMA_KEYWORDS, f"{path}: {set(sub) - SCHEMA_KEYWORDS}"
        if "$ref" in sub:
            name = sub["$ref"].removeprefix("#/$defs/")
            assert name in root.get("$defs", {}), f"{path}: dangling {sub['$ref']}"
        for key in sub.get("required", ()):
            assert key in sub["properties"], f"{path}: required {key} not in properties"
    json.dumps(root)  # plain JSON data


def _at(schema_id: str, *path: str) -> Any:
    node: Any = SCHEMAS[schema_id]
    for key in path:
        node = node[key]
    return node


def test_enums_match_the_code() -> None:
    assert _at(SHOW_SCHEMA, "$defs", "member", "properties", "acs", "enum") == [
        *(s.value for s in AcsState),
        None,
    ]
    assert _at(CHECK_SCHEMA, "properties", "verdict", "enum") == [v.value for v in Verdict]
    device = _at(CHECK_SCHEMA, "properties", "devices", "items", "properties")
    assert device["reason_kinds"]["items"]["enum"] == list(REASON_KINDS)
    status = _at(WHATIF_SCHEMA, "properties", "devices", "items", "properties", "status")
    assert status["enum"] == [s.value for s in DeviceStatus]
    kinds = _at(WHATIF_SCHEMA, "properties", "groups", "items", "properties", "kind")
    assert kinds["enum"] == list(GROUP_KINDS)
    change = _at(WHATIF_SCHEMA, "properties", "changes", "items", "properties", "kind")
    assert set(change["enum"]) == _change_kinds()
    reasons = _at(EXPLAIN_SCHEMA, "$defs", "reason", "properties", "kind", "enum")
    assert set(reasons) >= LINK_KINDS


def _change_kinds(cls: type[object] = Change) -> set[str]:
    """The ``kind`` of every concrete change class."""
    out = {str(vars(cls)["kind"])} if "kind" in vars(cls) else set()
    for sub in cls.__subclasses__():
        out |= _change_kinds(sub)
    return out


def test_validate_reports_paths() -> None:
    doc: dict[str, Any] = {"schema": GROUPS_SCHEMA, "groups": [["a"], "b"], "group_ids": [0, 1]}
    doc["group_ids"][1] = True
    assert validate(doc, GROUPS_SCHEMA) == [
        '$: missing required key "ungrouped"',
        '$: missing required key "strategy"',
        "$.groups[1]: expected array, got string",
        "$.group_ids[1]: expected integer, got boolean",
    ]
    doc = {"schema": "iommugroups.groups/2", "ungrouped": {"0000:00:1f.0": 3}}
    errors = validate(doc, GROUPS_SCHEMA)
    assert '$.schema: expected "iommugroups.groups/1", got "iommugroups.groups/2"' in errors
    assert '$.ungrouped["0000:00:1f.0"]: expected string, got integer' in errors
    with pytest.raises(KeyError):
        validate({}, "iommugroups.nothing/1")


# ============================================================= every command
@pytest.mark.parametrize("args", [s[1] for s in SOURCES], ids=SOURCE_IDS)
def test_groups_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    doc = _doc(["groups", *args, "--json"], capsys)
    assert doc["groups"]


@pytest.mark.parametrize("args", [s[1] for s in SOURCES], ids=SOURCE_IDS)
def test_show_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    devices = _devices(args, capsys)
    doc = _doc(["show", *args, "--json"], capsys)
    assert doc["groups"]
    _doc(["show", *args, "--format", "json", "--class", "net", "--class", "storage"], capsys)
    related = _doc(["show", *args, "--json", "--related", devices[-1]], capsys)
    assert related["related"]["device"] == devices[-1]
    _doc(["show", *args, "--json", "--group", "1", "--device", devices[0][:7]], capsys)


def test_show_json_with_observed_groups(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _doc(["show", str(CAPTURES / "q35-1003.json"), "--json"], capsys)
    assert doc["observed"] is not None
    assert all(g["observed_same"] is not None for g in doc["groups"])


def test_show_json_of_a_tree_with_unknown_facts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree.txt"
    tree.write_text(_seed_lines(38, 16))
    doc = _doc(["show", str(tree), "--json"], capsys)
    assert "ACS ?" in {m["acs"] for g in doc["groups"] for m in g["members"]}


@pytest.mark.parametrize("args", [s[1] for s in SOURCES], ids=SOURCE_IDS)
def test_explain_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    devices = _devices(args, capsys)
    src = _source_of(args)
    for device in {devices[0], devices[len(devices) // 2], devices[-1]}:
        doc = _doc(["explain", device, *src, "--json"], capsys)
        assert doc["type"] == "device"
    groups = _doc(["groups", *args, "--json"], capsys)["groups"]
    shared = next(g for g in groups if len(g) > 1)
    same = _doc(["explain", shared[0], shared[-1], *src, "--format", "json"], capsys)
    assert same["type"] == "pair"
    assert same["same_group"]
    apart = _doc(["explain", groups[0][0], groups[-1][0], *src, "--json"], capsys)
    assert not apart["same_group"]


@pytest.mark.parametrize(
    ("changes", "count"),
    [
        (["--acs-override", "downstream,multifunction"], 1),
        (["remove-acs=00:01.0"], 1),
        (["set-acs=00:1c.0:SV|RR|CR|UF"], 1),
        (["remove=0a:00", "--move", "09:00=>07:0a.0"], 2),
        (["quirk=isolated:1b36:000c", "config-acs=xxx0xxx@00:01.0"], 2),
    ],
    ids=["acs-override", "remove-acs", "set-acs", "move", "quirk+config-acs"],
)
def test_what_if_json_on_desktop(
    changes: list[str], count: int, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _doc(["what-if", "--example", "desktop", *changes, "--json"], capsys)
    assert len(doc["changes"]) == count


@pytest.mark.parametrize("args", [s[1] for s in SOURCES[1:]], ids=SOURCE_IDS[1:])
def test_what_if_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    devices = _devices(args, capsys)
    src = _source_of(args)
    doc = _doc(["what-if", *src, "acs-override=downstream,multifunction", "--json"], capsys)
    assert doc["upstream"] is False
    assert doc["labels"]
    pci = [d for d in devices if re.match(r"^[0-9a-f]{4}:", d)]
    doc = _doc(["what-if", *src, f"remove={pci[-1]}", "--format", "json"], capsys)
    assert doc["upstream"] is True
    assert pci[-1] in doc["removed"]


def test_check_json_of_captures(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("q35-1000.json", "q35-1107.json"):
        doc = _doc(["check", str(CAPTURES / name), "--json"], capsys)
        assert doc["verdict"] == "ok"
    doc = _doc(
        [
            "check",
            str(CAPTURES / "q35-1000.lspci"),
            "--observed",
            str(CAPTURES / "q35-1000.groups"),
            "--json",
        ],
        capsys,
    )
    assert doc["reproduction"] is None


def test_check_json_of_the_seed_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The thread's first log is a split (exit 1), its second is not; both replayed."""
    for first, status in ((22, 1), (79, 3)):  # 3: no split, some verdict unknown
        log = tmp_path / f"log{first}.txt"
        log.write_text(_seed_lines(first, 15))
        argv = ["check", "--example", "d05", "--observed", str(log), "--json"]
        doc = _doc(argv, capsys, status=status)
        assert doc["has_split"] is (status == 1)
        assert doc["reproduction"]["strategies"]
    tree = tmp_path / "tree.txt"
    tree.write_text(_seed_lines(38, 16))
    doc = _doc(
        ["check", str(tree), "--observed", str(tmp_path / "log22.txt"), "--json"], capsys, status=3
    )
    assert doc["unknown"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--example", "d05-builtin"],
        ["--example", "d05-module", "--no-markers"],
        [str(ARM64 / "arm64-121.json")],
        [str(ARM64 / "arm64-700.json"), "--strategy", "device-add"],
        [str(ARM64 / "arm64-100.json"), "--strategy", "canonical"],
    ],
    ids=["d05-builtin", "d05-module", "arm64-121", "arm64-700", "arm64-100"],
)
def test_simulate_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    doc = _doc(["simulate", *argv, "--json"], capsys)
    assert doc["events"]


def test_snapshot_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fake_sysfs(tmp_path)
    doc = _doc(["snapshot", "-", "--sysfs", str(tmp_path)], capsys)
    assert doc["devices"]["0000:00:03.0"]["driver"] == "e1000e"
    assert doc["groups"] == {"0": ["0000:00:00.0"], "1": ["0000:00:03.0"], "2": ["0000:00:04.0"]}
    out = tmp_path / "snap.json"
    assert _run(["snapshot", str(out), "--sysfs", str(tmp_path)], capsys) == ""
    snap = json.loads(out.read_text())
    assert validate(snap, SNAPSHOT_SCHEMA, strict=True) == []
    # every command reads the snapshot
    _doc(["groups", str(out), "--json"], capsys)
    _doc(["check", str(out), "--json"], capsys)
    shown = _doc(["show", str(out), "--json"], capsys)
    assert shown["observed"]["source"]
    _doc(["explain", "00:03.0", "00:04.0", "-i", str(out), "--json"], capsys)
    _doc(["what-if", "-i", str(out), "remove=00:03.0", "--json"], capsys)


# ========================================================= schemas are not vacuous
def _representatives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """A real document of each schema (two of check, show and explain), with few empty
    lists."""
    log = tmp_path / "log.txt"
    log.write_text(_seed_lines(22, 15))
    tree = tmp_path / "tree.txt"  # no capability shown: an isolating reading, unknowns
    tree.write_text(_seed_lines(38, 16))
    _fake_sysfs(tmp_path)
    snap = tmp_path / "snap.json"
    _run(["snapshot", str(snap), "--sysfs", str(tmp_path)], capsys)
    desktop = ["--example", "desktop"]
    argvs: list[tuple[list[str], int]] = [
        (["groups", "--example", "d05", "--json"], 0),
        (["simulate", "--example", "d05-builtin", "--json"], 0),
        (["check", "--example", "d05", "--observed", str(log), "--json"], 1),
        (["check", str(tree), "--observed", str(log), "--json"], 3),
        (["snapshot", "-", "--sysfs", str(tmp_path)], 0),
        (["show", *desktop, "--related", "09:00.0", "--json"], 0),
        (["show", str(snap), "--json"], 0),  # with observed groups
        (["explain", "01:00.0", *desktop, "--json"], 0),
        (["explain", "03:00.0", "04:00.0", *desktop, "--json"], 0),
        (["what-if", *desktop, "remove=0a:00", "move=09:00=>07:0a.0", "--json"], 0),
        (["orders", *desktop, "--json"], 1),
        (["vm", str(DATA / "oracle" / "designed" / "switch.json"), "--json"], 0),
        (["passthrough", str(DATA / "oracle" / "designed" / "switch.json"), "08:00", "--json"], 1),
        (["passthrough", str(snap), "00:03.0", "--json"], 0),  # a host driver bound
    ]
    return [json.loads(_run(argv, capsys, status=status)) for argv, status in argvs]


#: Keys whose object is a mapping (device -> ..., fact -> ...), not an object with fixed keys.
_MAPPINGS = {
    "addresses",
    "facts",
    "ungrouped",
    "fates",
    "renamed",
    "left_out",
    "devices",
    "groups",
    "iommus",
    "missing",
    "missing_why",
}
#: Keys added within a version: documents written before them lack them, so
#: the schema does not require them (and dropping one stays valid).
_OPTIONAL = {
    ("iommugroups.simulation/1", "kernel"),
    ("iommugroups.groups/1", "kernel"),
    ("iommugroups.groups/1", "kernel_groups"),
    ("iommugroups.groups/1", "devices"),
    ("iommugroups.check/2", "kernel"),
    ("iommugroups.show/1", "kernel"),
    ("iommugroups.show/1", "acs_state"),
    ("iommugroups.show/1", "acs_isolates"),
    ("iommugroups.show/1", "acs_known"),
    ("iommugroups.show/1", "pcie_type"),
    ("iommugroups.whatif/2", "kernel"),
    ("iommugroups.explain/1", "kernel"),
    ("iommugroups.explain/1", "kernel_groups"),
    ("iommugroups.snapshot/1", "vmd_domain"),
    ("iommugroups.snapshot/1", "iommus"),
}


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nodes(v, (*path, i))


def _is_mapping(path: tuple[Any, ...], value: Any) -> bool:
    return isinstance(value, dict) and bool(path) and path[-1] in _MAPPINGS


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def _replaced(doc: Any, path: tuple[Any, ...], new: Any) -> Any:
    out = copy.deepcopy(doc)
    node = _get(out, path[:-1])
    if new is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return out


_DELETE = object()
#: No schema accepts a float anywhere, so this is wrong wherever it is put.
_WRONG = 0.5


def test_every_value_of_a_real_document_is_constrained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Any value replaced by one of a wrong type, any fixed key dropped: invalid."""
    docs = _representatives(tmp_path, capsys)
    assert {d["schema"] for d in docs} == set(SCHEMAS)
    for doc in docs:
        schema_id = doc["schema"]
        assert validate(doc, schema_id, strict=True) == []
        paths = [p for p, _ in _nodes(doc) if p]
        assert len(paths) > 20
        for path in paths:
            assert validate(_replaced(doc, path, _WRONG), schema_id), (schema_id, path)
            parent = _get(doc, path[:-1])
            if (schema_id, path[-1]) in _OPTIONAL:
                assert not validate(_replaced(doc, path, _DELETE), schema_id), path
            elif isinstance(parent, dict) and not _is_mapping(path[:-1], parent):
                dropped = validate(_replaced(doc, path, _DELETE), schema_id)
                missing = f': missing required key "{path[-1]}"'
                assert any(e.endswith(missing) for e in dropped), (schema_id, path)


def test_schema_id_and_strictness(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong ``schema`` fails; an added key passes (keys are only ever added
    within a version) except in strict mode, which is how the tests find a key
    the schema does not document."""
    for doc in _representatives(tmp_path, capsys):
        schema_id = doc["schema"]
        name, _, version = schema_id.partition("/")
        assert validate({**doc, "schema": f"{name}/{int(version) + 1}"}, schema_id)
        assert validate([doc], schema_id)
        for path, value in _nodes(doc):
            if not isinstance(value, dict) or _is_mapping(path, value):
                continue
            grown = {**value, "zz_later": 1}
            doc2 = _replaced(doc, path, grown) if path else grown
            assert validate(doc2, schema_id) == [], (schema_id, path)
            assert validate(doc2, schema_id, strict=True), (schema_id, path)


# ================================================================ CLI hygiene
@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run([command, "--help"], capsys)
    assert out.startswith(f"usage: iommugroups {command}")
    assert "\nexamples:\n" in out


BAD_USAGE = [
    [],
    ["no-such-command"],
    ["groups", "--example", "desktop", "--sysfs", "/"],
    ["groups", "--example", "desktop", "--bogus"],
    ["groups", "--example", "nope"],
    ["groups", "/nonexistent/file.txt"],
    ["check", "--example", "desktop"],
    ["check", "--example", "desktop", "--observed", "/nonexistent"],
    ["snapshot"],
    ["snapshot", "-", "--sysfs", "/nonexistent"],
    ["simulate"],
    ["simulate", "--example", "nope"],
    ["simulate", "--example", "d05-builtin", "--strategy", "nope"],
    ["show", "--example", "desktop", "--class", "nonsense"],
    ["show", "--example", "desktop", "--related", "99:00.0"],
    ["show", "--example", "desktop", "--format", "png"],
    ["explain"],
    ["explain", "99:00.0", "--example", "desktop"],
    ["explain", "not-a-device", "--example", "desktop", "--json"],
    ["what-if", "--example", "desktop"],
    ["what-if", "--example", "desktop", "bogus=1"],
    ["what-if", "--example", "desktop", "remove=99:00.0"],
    ["what-if", "--example", "desktop", "move=01:00=>00:02.0"],
    ["what-if", "--example", "desktop", "--acs-override", "everything"],
]


@pytest.mark.parametrize("argv", BAD_USAGE, ids=lambda a: " ".join(a) or "(nothing)")
def test_bad_usage_exits_2_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert "Traceback" not in err
    assert "internal error" not in err
    assert re.search(r"^iommugroups( [a-z-]+)?: error: ", err, re.M) or err.startswith("usage:")


def test_explain_a_device_with_itself_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["explain", "01:00.0", "01:00.0", "--example", "desktop"]) == 2
    assert "internal error" not in capsys.readouterr().err


def _stdin(monkeypatch: pytest.MonkeyPatch, path: Path | str) -> None:
    text = path if isinstance(path, str) else path.read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


@pytest.mark.parametrize(
    "argv",
    [
        ["groups", "-", "--json"],
        ["show", "-", "--json"],
        ["check", "-", "--json"],
        ["explain", "00:03.0", "-i", "-", "--json"],
        ["what-if", "-i", "-", "acs-override=downstream", "--json"],
    ],
    ids=lambda a: a[0],
)
def test_dash_reads_stdin(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, CAPTURES / "q35-1001.json")
    from_stdin = _doc(argv, capsys)
    named = [str(CAPTURES / "q35-1001.json") if a == "-" else a for a in argv]
    assert from_stdin == _doc(named, capsys)


def test_dash_reads_stdin_for_simulate_and_observed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, ARM64 / "arm64-121.json")
    doc = _doc(["simulate", "-", "--json"], capsys)
    assert doc["scenario"]
    _stdin(monkeypatch, _seed_lines(22, 15))
    argv = ["check", "--example", "d05", "--observed", "-", "--json"]
    assert _doc(argv, capsys, status=1)["has_split"]
    _stdin(monkeypatch, "")
    _run(["groups", "-"], capsys, status=2)
