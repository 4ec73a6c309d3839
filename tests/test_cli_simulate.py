"""``iommugroups simulate``: the command, its text and JSON output, its errors.

Every arm64 capture run through the command prints the kernel's own log,
line for line, markers included; ``--json`` follows the documented
``iommugroups.simulation/1`` schema (checked by a small checker below);
bad input exits 2 with one line on stderr and never a traceback.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from iommugroups import (
    STRATEGIES,
    Grouping,
    IdMapping,
    IommuInstance,
    IommuKind,
    PcieType,
    PciFunction,
    Scenario,
    SriovCapability,
    Topology,
    examples,
)
from iommugroups._boot.strategies.registry import PROPOSALS
from iommugroups._cli.app import main
from iommugroups._io.arm64_capture import read_capture
from iommugroups._io.scenario_file import SCHEMA, dumps_scenario
from iommugroups._render.text import listing

from .helpers import bridge, ep

HERE = Path(__file__).parent
DOC = HERE.parent / "docs" / "scenario-format.md"
CAPTURES = sorted((HERE / "data" / "oracle" / "arm64").glob("*.json"))

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run the CLI; return (status, stdout, stderr)."""

    def go(*argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return status, out, err

    return go


def _capture(path: Path) -> Any:
    return read_capture(json.loads(path.read_text()), str(path))


def _machine() -> Topology:
    pf = PciFunction(
        "01:00.0",
        vendor=0x1B36,
        device=0x0010,
        class_code=0x010802,
        pcie_type=PcieType.ENDPOINT,
        sriov=SriovCapability(total_vfs=2, num_vfs=0, offset=1, stride=1, vf_device=0x0010),
    )
    return Topology(
        [
            PciFunction("00:00.0", vendor=0x1B36, device=0x0008, class_code=0x060000),
            bridge("00:01.0", 1),
            pf,
            bridge("00:02.0", 2),
            ep("02:00.0", vendor=0x8086, device=0x10D3, class_code=0x020000),
        ],
        iommus=[IommuInstance("smmu0", IommuKind.SMMU_V3)],
        id_mappings=[IdMapping(0, 0, 0x10000, 0, "smmu0")],
        name="machine",
    )


def _write(tmp_path: Path, scenario: Scenario, name: str = "s.toml", **kw: Any) -> str:
    path = tmp_path / name
    fmt = "toml" if name.endswith(".toml") else "json"
    path.write_text(dumps_scenario(_machine(), scenario, fmt, **kw))
    return str(path)


# --- a checker for the documented JSON schema -----------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_simulation(doc: Any, *, complete: bool = True) -> None:
    """Assert ``doc`` follows ``iommugroups.simulation/1`` (docs/scenario-format.md).

    ``complete=False`` checks the shape only (an abridged document).
    """
    assert isinstance(doc, dict)
    assert set(doc) == {
        "schema",
        "strategy",
        "kernel",
        "scenario",
        "log",
        "events",
        "groups",
        "group_ids",
        "fates",
        "notes",
    }
    assert isinstance(doc["notes"], list)
    assert all(isinstance(n, str) for n in doc["notes"])
    assert doc["schema"] == "iommugroups.simulation/1"
    assert isinstance(doc["strategy"], str)
    assert isinstance(doc["scenario"], str)
    assert isinstance(doc["log"], list)
    assert all(isinstance(line, str) for line in doc["log"])
    keys = {
        "add": {"kind", "prefix", "device", "group", "line"},
        "remove": {"kind", "prefix", "device", "group", "line"},
        "message": {"kind", "prefix", "device", "text", "line"},
        "marker": {"kind", "action", "line"},
    }
    assert isinstance(doc["events"], list)
    for event in doc["events"]:
        assert isinstance(event, dict)
        assert event.get("kind") in keys
        kind = event["kind"]
        assert set(event) == keys[kind], event
        assert isinstance(event["line"], str)
        if kind in ("add", "remove"):
            verb = "Adding to" if kind == "add" else "Removing from"
            assert _is_int(event["group"])
            assert event["line"] == (
                f"{event['prefix']} {event['device']}: {verb} iommu group {event['group']}"
            )
        elif kind == "message":
            assert event["line"] == f"{event['prefix']} {event['device']}: {event['text']}"
        else:
            assert isinstance(event["action"], list)
            assert all(isinstance(a, str) for a in event["action"])
            assert event["line"] == " ".join(["ACTION", *event["action"]])
    assert isinstance(doc["groups"], list)
    assert isinstance(doc["group_ids"], list)
    assert len(doc["groups"]) == len(doc["group_ids"])
    assert all(_is_int(g) for g in doc["group_ids"])
    assert doc["group_ids"] == sorted(doc["group_ids"])
    for members in doc["groups"]:
        assert isinstance(members, list)
        assert members
        assert all(isinstance(m, str) for m in members)
    assert isinstance(doc["fates"], dict)
    for dev, fate in doc["fates"].items():
        assert isinstance(dev, str)
        assert set(fate) == {"state", "driver", "group", "detail"}
        assert fate["state"] in {
            "bound",
            "no-driver",
            "deferred",
            "failed",
            "removed",
            "not-added",
        }
        assert fate["driver"] is None or isinstance(fate["driver"], str)
        assert fate["group"] is None or _is_int(fate["group"])
        assert isinstance(fate["detail"], str)
        assert (fate["driver"] is not None) == (fate["state"] == "bound")
    if not complete:
        return
    # the parts agree with one another
    members = {m: g for g, ms in zip(doc["group_ids"], doc["groups"], strict=True) for m in ms}
    assert {d: f["group"] for d, f in doc["fates"].items() if f["group"] is not None} == members
    assert [e["line"] for e in doc["events"] if e["kind"] != "marker"] == [
        line for line in doc["log"] if not line.startswith("ACTION ")
    ]


# --- the arm64 captures ------------------------------------------------------------------------


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_a_capture_prints_the_kernels_log(run: Run, path: Path) -> None:
    cap = _capture(path)
    status, out, err = run("simulate", str(path), "--strategy", "legacy-probe-time")
    # the capture says which kernel it came from
    assert (status, err) == (
        0,
        "iommugroups: note: modelled Linux 6.1, strategy legacy-probe-time\n",
    )
    lines = out.splitlines()
    n = len(cap.dmesg)
    assert lines[:n] == list(cap.dmesg)
    assert lines[n] == ""
    # then the groups, in the listing form, as the kernel left them
    groups = listing(Grouping(cap.groups), None).splitlines()
    shown = [re.sub(r" \[.*$", "", x) for x in lines[n + 1 : n + 1 + len(groups)]]
    assert shown == groups
    # the default strategy is legacy-probe-time
    assert run("simulate", str(path))[1] == out


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_a_capture_as_json(run: Run, path: Path) -> None:
    cap = _capture(path)
    status, out, _ = run("simulate", str(path), "--json")
    assert status == 0
    doc = json.loads(out)
    check_simulation(doc)
    assert doc["log"] == list(cap.dmesg)
    assert doc["strategy"] == "legacy-probe-time"
    assert doc["scenario"] == path.stem
    assert dict(zip(doc["group_ids"], map(tuple, doc["groups"]), strict=True)) == dict(cap.groups)
    for dev, driver in cap.drivers.items():
        assert doc["fates"][dev]["driver"] == driver


def test_no_markers(run: Run) -> None:
    path = next(p for p in CAPTURES if p.stem == "arm64-703")
    cap = _capture(path)
    _, out, _ = run("simulate", str(path), "--no-markers")
    kernel = [x for x in cap.dmesg if not x.startswith("ACTION ")]
    assert out.splitlines()[: len(kernel) + 1] == [*kernel, ""]
    _, out, _ = run("simulate", str(path), "--no-markers", "--json")
    doc = json.loads(out)
    check_simulation(doc)
    assert doc["log"] == kernel
    assert any(e["kind"] == "marker" for e in doc["events"])  # events are always complete


def test_other_strategies_on_a_capture(run: Run) -> None:
    path = next(p for p in CAPTURES if p.stem == "arm64-121")
    for name in STRATEGIES:
        status, out, _ = run("simulate", str(path), "--strategy", name, "--json")
        assert status == 0
        doc = json.loads(out)
        check_simulation(doc)
        assert doc["strategy"] == name


# --- scenario files ----------------------------------------------------------------------------


def test_a_scenario_file(run: Run, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        Scenario(
            name="s",
            kernel="6.1",
            firmware="dt",
            actions=[("insmod", "nvme"), ("sriov", "0000:01:00.0", "2"), ("remove", "02:00.0")],
        ),
    )
    status, out, err = run("simulate", path)
    assert (status, err) == (
        0,
        "iommugroups: note: modelled Linux 6.1, strategy legacy-probe-time\n",
    )
    log, groups, fates = out.split("\n\n")
    assert log.splitlines() == [
        "pcieport 0000:00:01.0: Adding to iommu group 0",
        "pcieport 0000:00:02.0: Adding to iommu group 1",
        "ACTION insmod nvme",
        "nvme 0000:01:00.0: Adding to iommu group 0",
        "ACTION sriov 0000:01:00.0 2",
        "nvme 0000:01:00.1: Adding to iommu group 0",
        "nvme 0000:01:00.2: Adding to iommu group 0",
        "ACTION remove 02:00.0",
    ]
    assert groups.splitlines() == [
        "IOMMU Group 0:",
        "\t00:01.0 [0604]: [1b36:000c]",
        "\t01:00.0 [0108]: [1b36:0010]",
        "\t01:00.1 [0108]: [1b36:0010]",  # a VF: shown with its ids too
        "\t01:00.2 [0108]: [1b36:0010]",
        "IOMMU Group 1:",
        "\t00:02.0 [0604]: [1b36:000c]",
    ]
    assert fates.splitlines() == [
        "Devices without a driver or a group:",
        "\tdevice   state      driver  group  detail",
        "\t00:00.0  no-driver  -       -      never reached dma_configure",
        "\t01:00.1  failed     -       0      probe failed: nvme",  # nvme fails on VFs
        "\t01:00.2  failed     -       0      probe failed: nvme",
        "\t02:00.0  removed    -       -      hot-removed",
    ]
    assert out.endswith("hot-removed\n")


def test_all_lines(run: Run, tmp_path: Path) -> None:
    path = _write(tmp_path, Scenario(firmware="dt", actions=[("insmod", "e1000e")], kernel="6.1"))
    _, out, _ = run("simulate", path, "--all-lines")
    fates = out.split("\n\n")[-1].splitlines()
    assert fates[0] == "Devices:"
    assert len(fates) == 2 + len(_machine().functions)
    assert "\t02:00.0  bound      e1000e    1" in fates


def test_nothing_logged(run: Run, tmp_path: Path) -> None:
    path = _write(tmp_path, Scenario(firmware="dt", builtin=(), kernel="6.1"))
    status, out, _ = run("simulate", path)
    assert status == 0
    assert out.startswith("No IOMMU groups.\n\nDevices without a driver or a group:\n")


def test_the_files_strategy_and_the_command_line(run: Run, tmp_path: Path) -> None:
    path = _write(tmp_path, Scenario(firmware="dt"), "s.json", strategy="device-add")
    doc = json.loads(run("simulate", path, "--json")[1])
    assert doc["strategy"] == "device-add"
    doc = json.loads(run("simulate", path, "--json", "--strategy", "canonical")[1])
    assert doc["strategy"] == "canonical"


def test_stdin(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    text = dumps_scenario(_machine(), Scenario(name="piped"), "toml")
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    status, out, _ = run("simulate", "-", "--json")
    assert status == 0
    assert json.loads(out)["scenario"] == "piped"


def test_file_drivers(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps(
            {
                "schema": SCHEMA,
                "kernel": "6.1",
                "firmware": "dt",
                "actions": [["insmod", "slow"]],
                "drivers": [{"name": "slow", "ids": [["0x8086", "0x10d3"]], "probe": "defer"}],
                "topology_file": "m.toml",
            }
        )
    )
    from iommugroups._io.topology_file import dumps_topology

    (tmp_path / "m.toml").write_text(dumps_topology(_machine(), "toml"))
    doc = json.loads(run("simulate", str(path), "--json")[1])
    check_simulation(doc)
    assert doc["fates"]["0000:02:00.0"] == {
        "state": "deferred",
        "driver": None,
        "group": 1,
        "detail": "slow asked for a later probe",
    }


# --- examples ------------------------------------------------------------------------------------


def _fake_example() -> tuple[Topology, Scenario]:
    """A fake example: one NIC, loaded after boot."""
    return _machine(), Scenario(
        name="fake", firmware="dt", actions=[("insmod", "e1000e")], kernel="6.1"
    )


@pytest.fixture
def fake_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        examples,
        "SIM_EXAMPLES",
        {"fake": _fake_example, "lambda": lambda: (_machine(), Scenario(iommu_builtin=False))},
        raising=False,
    )


@pytest.mark.usefixtures("fake_examples")
def test_list_examples(run: Run) -> None:
    status, out, _ = run("simulate", "--list-examples")
    assert status == 0
    assert out.splitlines() == [
        "fake    A fake example: one NIC, loaded after boot.",
        "lambda  machine: ACPI boot, IOMMU driver a module",
    ]
    doc = json.loads(run("simulate", "--list-examples", "--json")[1])
    assert doc[0] == {"name": "fake", "about": "A fake example: one NIC, loaded after boot."}


@pytest.mark.usefixtures("fake_examples")
def test_run_an_example(run: Run) -> None:
    status, out, _ = run("simulate", "--example", "fake")
    assert status == 0
    assert out.splitlines()[:3] == [
        "pcieport 0000:00:01.0: Adding to iommu group 0",
        "pcieport 0000:00:02.0: Adding to iommu group 1",
        "ACTION insmod e1000e",
    ]
    doc = json.loads(run("simulate", "--example", "fake", "--json", "--strategy", "device-add")[1])
    check_simulation(doc)
    assert (doc["scenario"], doc["strategy"]) == ("fake", "device-add")


@pytest.mark.usefixtures("fake_examples")
def test_unknown_example(run: Run) -> None:
    status, out, err = run("simulate", "--example", "nope")
    assert (status, out) == (2, "")
    assert err == (
        "iommugroups: error: no example scenario called 'nope'; known examples: fake, lambda\n"
    )


@pytest.mark.parametrize("name", sorted(getattr(examples, "SIM_EXAMPLES", {})))
def test_the_packaged_examples_run(run: Run, name: str) -> None:
    status, out, _ = run("simulate", "--example", name, "--json")
    assert status == 0
    check_simulation(json.loads(out))
    assert name in run("simulate", "--list-examples")[1]


# --- strategies ----------------------------------------------------------------------------------


def test_list_strategies(run: Run) -> None:
    status, out, _ = run("simulate", "--list-strategies")
    assert status == 0
    lines = out.splitlines()
    every = {**STRATEGIES, **PROPOSALS}
    assert len(lines) == 2 * len(every)
    for i, (name, strategy) in enumerate(every.items()):
        title, kernel, upstream = (getattr(strategy, k) for k in ("title", "kernel", "upstream"))
        assert lines[2 * i].split()[0] == name
        assert title in lines[2 * i]
        yes = "yes" if upstream else "no"
        assert lines[2 * i + 1].strip() == f"kernel: {kernel}; upstream: {yes}"
    defaults = [line.split()[0] for line in lines if line.endswith("(default on Linux 7.3)")]
    assert defaults == ["device-add", "canonical"]  # arm64 since v6.15 (R10.1), x86
    doc = json.loads(run("simulate", "--list-strategies", "--json")[1])
    assert [d["name"] for d in doc] == list(every)
    assert {d["name"]: d["upstream"] for d in doc}["walk-down"] is False
    assert set(doc[0]) == {"name", "title", "kernel", "upstream", "default"}


# --- errors --------------------------------------------------------------------------------------


def test_unknown_strategy(run: Run, tmp_path: Path) -> None:
    path = _write(tmp_path, Scenario(kernel="6.1"))
    status, out, err = run("simulate", path, "--strategy", "fastest")
    assert (status, out) == (2, "")
    assert err.startswith("iommugroups: error: unknown strategy 'fastest'; known strategies: ")
    assert err.count("\n") == 1


def test_missing_file(run: Run, tmp_path: Path) -> None:
    status, out, err = run("simulate", str(tmp_path / "nope.toml"))
    assert (status, out) == (2, "")
    assert err == f"iommugroups: error: {tmp_path}/nope.toml: no such file\n"


def test_a_bad_scenario_file(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('firmware = "uefi"\nactions = [["insmod", "e1000x"]]\ntopology_file = "m"\n')
    status, out, err = run("simulate", str(path))
    assert (status, out) == (2, "")
    assert err.startswith(f"iommugroups: error: {path}: topology_file: m: no such file")
    assert "firmware: expected 'acpi' or 'dt', got 'uefi'" in err
    assert err.count("\n") == 1


def test_a_syntax_error(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('name = "x"\nfirmware = dt\n')
    status, _, err = run("simulate", str(path))
    assert status == 2
    assert err.startswith(f"iommugroups: error: {path}:2: invalid TOML: ")


def test_a_scenario_the_driver_core_refuses(run: Run, tmp_path: Path) -> None:
    # VFs need the PF's driver bound; nvme is never loaded here, so the kernel
    # refuses the sriov_numvfs write (-ENOENT) without a message and goes on
    path = _write(
        tmp_path,
        Scenario(name="novf", actions=[("sriov", "0000:01:00.0", "1")], kernel="6.1"),
    )
    status, out, err = run("simulate", path)
    assert (status, err) == (
        0,
        "iommugroups: note: modelled Linux 6.1, strategy legacy-probe-time\n",
    )
    assert out.endswith(
        "Refused by the driver core:\n"
        "sriov 0000:01:00.0 1: refused, no driver is bound to the PF (-ENOENT)\n"
    )
    assert "0000:01:00.1" not in out.split("Devices")[0]


@pytest.mark.usefixtures("fake_examples")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "give a scenario FILE or --example NAME (--list-examples lists the examples)"),
        (("x.toml", "--example", "fake"), "give a scenario FILE or --example NAME, not both"),
    ],
)
def test_usage_errors(run: Run, argv: tuple[str, ...], message: str) -> None:
    status, out, err = run("simulate", *argv)
    assert (status, out) == (2, "")
    assert err == f"iommugroups: error: {message}\n"


def test_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--strategy"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "iommugroups simulate: error: argument --strategy: expected one argument" in err
    assert "Traceback" not in err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: iommugroups simulate [-h]" in out
    assert "examples:\n  iommugroups simulate --list-examples\n" in out
    for option in ("--list-strategies", "--no-markers", "--all-lines", "--json"):
        assert option in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "simulate" in capsys.readouterr().out


# --- the documentation ---------------------------------------------------------------------------


def test_the_doc_output_is_real(run: Run, tmp_path: Path) -> None:
    text = DOC.read_text()
    (toml_text,) = re.findall(r"^```toml\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    (console,) = re.findall(r"^```console\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    command, _, shown = console.partition("\n")
    assert command == "$ iommugroups simulate docs/_data/bridge-and-modules.toml"
    (tmp_path / "scenario.toml").write_text(toml_text)
    status, out, _ = run("simulate", str(tmp_path / "scenario.toml"))
    assert status == 0
    assert out == shown


def test_the_doc_json_example_is_an_excerpt_of_the_real_one(run: Run, tmp_path: Path) -> None:
    text = DOC.read_text()
    (toml_text,) = re.findall(r"^```toml\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    blocks = re.findall(r"^```json\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    excerpt = json.loads(blocks[-1])
    check_simulation(excerpt, complete=False)
    (tmp_path / "scenario.toml").write_text(toml_text)
    doc = json.loads(run("simulate", str(tmp_path / "scenario.toml"), "--json")[1])
    for key in ("schema", "strategy", "scenario"):
        assert excerpt[key] == doc[key]
    assert excerpt["log"] == doc["log"][: len(excerpt["log"])]
    assert all(e in doc["events"] for e in excerpt["events"])
    assert excerpt["groups"][0] == doc["groups"][0]
    for dev, fate in excerpt["fates"].items():
        assert doc["fates"][dev] == fate
