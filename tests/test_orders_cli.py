"""``iommugroups orders``: text, JSON against its schema, the saved witness, errors.

The text shows the verdict, the witness as two short columns from a little
before the first difference, and the groups that differ side by side; the
JSON document validates strictly against ``iommugroups.orders/1``; the
files ``--save-witness`` writes are scenarios ``iommugroups simulate``
replays to the groups the witness reports. Bad usage exits 2 with one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iommugroups._cli.app import main
from iommugroups.schemas import SCHEMAS, validate

D05_CARD = ["--example", "d05", "--vfs", "000a:11:00.0=2", "--device", "000a:11:00.1"]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


def test_text_of_a_dependent_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _err = run(["orders", *D05_CARD, "--strategy", "legacy-probe-time"], capsys)
    assert status == 1
    assert "DEPENDENT" in out.splitlines()[0]
    assert "witness: two orders differing in 2 places" in out
    lines = out.splitlines()
    first = next(line for line in lines if "<- first difference" in line)
    assert "probe 000a:10:00.0" in first
    assert "probe 000a:11:00.1" in first
    assert "groups that differ:" in out
    assert "000a:10:00.0 000a:11:00.1 000a:11:00.2 000a:11:00.3" in out


def test_text_of_an_independent_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _err = run(["orders", "--example", "d05", "--strategy", "device-add"], capsys)
    assert status == 0
    assert "INDEPENDENT" in out.splitlines()[0]
    assert "R10.1" in out
    assert "witness" not in out


@pytest.mark.parametrize(
    "extra",
    [
        ["--strategy", "legacy-probe-time"],
        ["--strategy", "canonical"],
        ["--strategy", "canonical", "--adds", "any"],
        ["--strategy", "walk-down", "--no-hotplug", "--iommu-module"],
    ],
)
def test_json_validates_strictly(extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _err = run(["orders", "--example", "d05", "--json", *extra], capsys)
    doc = json.loads(out)
    assert status == (0 if doc["verdict"] == "independent" else 1)
    assert validate(doc, "iommugroups.orders/1", strict=True) == []
    assert doc["schema"] in SCHEMAS


def test_the_schema_is_not_vacuous() -> None:
    from iommugroups import examples
    from iommugroups._analysis.orders import order_dependence

    doc = order_dependence(examples.d05(), "legacy-probe-time").to_json()
    assert validate(doc, "iommugroups.orders/1", strict=True) == []
    for key in list(doc):
        broken = dict(doc)
        del broken[key]
        assert validate(broken, "iommugroups.orders/1"), key
    assert validate({**doc, "verdict": "maybe"}, "iommugroups.orders/1")
    witness = dict(doc["witness"])
    witness["differences"] = "two"
    assert validate({**doc, "witness": witness}, "iommugroups.orders/1")


def test_saved_witness_replays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = tmp_path / "d05"
    status, out, err = run(["orders", *D05_CARD, "--json", "--save-witness", str(prefix)], capsys)
    assert status == 1
    witness = json.loads(out)["witness"]
    assert "wrote order A" in err
    for label, key in (("a", "first_groups"), ("b", "second_groups")):
        status, sim, _err = run(
            ["simulate", f"{prefix}-{label}.json", "--strategy", "legacy-probe-time", "--json"],
            capsys,
        )
        assert status == 0
        groups = sorted(sorted(g) for g in json.loads(sim)["groups"])
        assert groups == witness[key]["groups"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["orders", "--example", "d05", "--strategy", "nope"], "unknown strategy"),
        (["orders", "--example", "d05", "--kernel", "6.1"], "not modelled yet"),
        (["orders", "--example", "d05", "--vfs", "000a:11:00.0"], "expected PF=N"),
        (["orders", "--example", "d05", "--vfs", "0002:f8:00.0=1"], "not an SR-IOV"),
        (["orders", "--example", "nope"], "no example"),
        (
            [
                "orders",
                "--example",
                "d05",
                "--strategy",
                "canonical",
                "--adds",
                "any",
                "--save-witness",
                "/tmp/never",
            ],
            "has no scenario",
        ),
    ],
)
def test_bad_usage(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, _out, err = run(argv, capsys)
    assert status == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _err = run(["orders", "--help"], capsys)
    assert status == 0
    assert "examples:" in out
    assert "--save-witness" in out
