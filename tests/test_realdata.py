"""Every real machine of ``tests/data/realdata`` (copies of the shared real-machine data).

The acceptance of issue 9, machine by machine: every file is read; where a
file holds a topology, ``groups`` and ``show`` read it (exit 0); where it also
holds the kernel's groups, ``check`` exits 0 (no isolation hole: unknown is
fine where the ACS bits are missing, split is not); and where it holds the
ACS bits as well, the prediction equals the kernel's groups as partitions.
The kernel's groups are the ones the machines' owners posted (the ``IOMMU
group`` lines of their ``lspci``), never output of this library.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from iommugroups import Verdict, canonical_groups, check, read
from iommugroups._cli.app import main
from iommugroups._io.pci_ids_file import ENV_VAR

REAL = Path(__file__).parent / "data" / "realdata"
FILES = sorted(
    p for p in REAL.glob("*/*") if p.is_file() and p.suffix in (".txt",) and p.name != "source.md"
)
#: Files whose ``lspci`` shows the ACS registers of every device that has them
#: (run as root with ``-vv``) and the kernel's groups.
WITH_ACS_BITS = {
    "p01-hp-spectre-x360-15-df1xxx/lspci.txt",
    "p02-asus-pn51-amd-cezanne/lspci.txt",
    "p04-dell-1028-08b0-icelake-laptop/lspci.txt",
    "p06-dell-cometlake-u-laptop/lspci.txt",
    "p07-xeon-e3-pex8748-switch/lspci.txt",
    "p07-xeon-e3-pex8748-switch/report.txt",
    "p11-apple-macmini8-1-tb3-egpu/lspci.txt",
    "p16-lenovo-thinkpad-e15-gen3-amd/lspci.txt",
    "p18-intel-x99-i7-5930k-groups-regression/lspci-partial-message.txt",
}


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.fixture(autouse=True)
def _bundled_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "bundled")


def test_the_copies_are_all_there() -> None:
    assert len(FILES) >= 30
    assert {_id(p) for p in FILES} >= WITH_ACS_BITS


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_every_file_is_read(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reading = read(path)
    assert reading.topology is not None or reading.observed is not None or reading.kernel
    if reading.topology is None:
        return
    assert main(["groups", str(path)]) == 0
    assert main(["show", str(path)]) == 0
    capsys.readouterr()
    if reading.observed is None:
        return
    report = check(reading.topology, reading.observed, unknowns=reading.unknowns)
    assert not report.has_split
    # exit 3 when some verdict is unknown (issue 10), else 0
    expected = 3 if report.unknown else 0
    assert main(["check", str(path)]) == expected, capsys.readouterr().out


@pytest.mark.parametrize("path", [p for p in FILES if _id(p) in WITH_ACS_BITS], ids=_id)
def test_with_the_acs_bits_the_prediction_is_the_kernels(path: Path) -> None:
    """Equal as partitions, over the devices the kernel grouped; and check says OK."""
    reading = read(path)
    assert reading.topology is not None
    assert reading.observed is not None
    report = check(reading.topology, reading.observed, unknowns=reading.unknowns)
    assert report.verdict is Verdict.OK, [d for d in report.devices if d.verdict is not Verdict.OK]
    seen = {d for members in reading.observed.groups.values() for d in members}
    predicted = canonical_groups(reading.topology)
    ours = {
        frozenset(d for d in members if d in seen) for members in predicted.groups.values()
    } - {frozenset()}
    assert ours == reading.observed.partition()


@pytest.mark.parametrize(
    "name",
    ["p02-asus-pn51-amd-cezanne", "p16-lenovo-thinkpad-e15-gen3-amd"],
)
def test_amd_machines_end_ok(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The only devices without a group are the IOMMU's own function (R11.2) and the
    root complex IVRS leaves out (R11.3): known facts, so check ends OK."""
    path = REAL / name / "lspci.txt"
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("check: OK")
    assert "0000:00:00.2  ok" in out


@pytest.mark.parametrize(
    "name",
    [
        "p01-hp-spectre-x360-15-df1xxx",
        "p02-asus-pn51-amd-cezanne",
        "p07-xeon-e3-pex8748-switch",
        "p11-apple-macmini8-1-tb3-egpu",
        "p16-lenovo-thinkpad-e15-gen3-amd",
    ],
)
def test_groups_prints_the_kernels_numbers(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """R1.9 (Intel: the graphics unit first) and R11.2/R11.3 (AMD: the IOMMU function
    and the root complex IVRS leaves out have no group): the ids ``groups`` prints
    are the kernel's. (p04 and p06 ran kernels older than v6.1, whose ids followed
    device order; their files do not say so.)"""
    import json

    path = REAL / name / "lspci.txt"
    assert main(["groups", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    reading = read(path)
    assert reading.observed is not None
    ours = {
        gid: tuple(members) for gid, members in zip(doc["group_ids"], doc["groups"], strict=True)
    }
    assert ours == dict(reading.observed.groups)
