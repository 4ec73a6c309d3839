"""Ground truth: captures from real Linux 6.1 and 7.3 kernels (q35, VT-d).

For every capture in ``tests/data/oracle/{captures,designed}`` (Linux 6.1)
and ``tests/data/oracle/k7/{x86,designed}`` (the same machines on Linux
7.3), copied from ``shared/oracle``: loading its config spaces and grouping
canonically for the capture's kernel gives
exactly the kernel's groups as sets of addresses, and exactly the kernel's
group *numbers* when devices are added in the order of its ``dmesg`` lines.

Where the kernel's add order equals our default enumeration order, the
numbers match without help, and our text listing equals the capture's
``.groups`` file byte for byte. The exceptions are captures with two
``pxb-pcie`` expander root buses: Linux scans root buses in ACPI namespace
order, where QEMU lists the later expander first; config space cannot show
that, so those captures only match ids in dmesg order.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from iommugroups import canonical_groups, load
from iommugroups._cli.app import main
from iommugroups._render.text import listing

DATA = Path(__file__).parent / "data" / "oracle"
CAPTURES = [
    *sorted((DATA / "captures").glob("*.json")),
    *sorted((DATA / "designed").glob("*.json")),
    *sorted((DATA / "k7" / "x86").glob("*.json")),
    *sorted((DATA / "k7" / "designed").glob("*.json")),
]
_ADD = re.compile(r"(\S+): Adding to iommu group (\d+)")


def _kernel(path: Path) -> tuple[dict[int, tuple[str, ...]], list[str]]:
    data = json.loads(path.read_text())
    groups = {int(k): tuple(sorted(v)) for k, v in data["groups"].items()}
    order = [m.group(1) for line in data["dmesg"] if (m := _ADD.search(line))]
    return groups, order


def _release(path: Path) -> str:
    """The kernel the capture was made on (``6.1.0-...`` or ``7.3.4+deb13-amd64``)."""
    release = json.loads(path.read_text())["kernel"]
    assert isinstance(release, str)
    return release


def _id(path: Path) -> str:
    return f"{path.stem}@{_release(path).split('.')[0]}.{_release(path).split('.')[1]}"


def test_there_are_captures() -> None:
    assert len([p for p in CAPTURES if _release(p).startswith("6.1.")]) >= 30
    assert len([p for p in CAPTURES if _release(p).startswith("7.3.")]) >= 30


@pytest.mark.parametrize("capture", CAPTURES, ids=_id)
class TestCapture:
    def test_groups_as_sets(self, capture: Path) -> None:
        want, _ = _kernel(capture)
        got = canonical_groups(load(capture.with_suffix(".lspci")), kernel=_release(capture))
        assert got.partition() == {frozenset(v) for v in want.values()}
        assert not got.ungrouped

    def test_group_numbers_in_dmesg_order(self, capture: Path) -> None:
        want, order = _kernel(capture)
        got = canonical_groups(
            load(capture.with_suffix(".lspci")), order=order, kernel=_release(capture)
        )
        assert dict(got.groups) == want
        # the log lines are the kernel's, in the kernel's order (timestamps aside)
        data = json.loads(capture.read_text())
        kernel_lines = [
            re.sub(r"^\[\s*[\d.]+\]\s*", "", x) for x in data["dmesg"] if "Adding" in x
        ]
        assert [str(x) for x in got.log] == kernel_lines

    def test_json_capture_loads_the_same(self, capture: Path) -> None:
        assert load(capture) == load(capture.with_suffix(".lspci"))

    def test_listing_equals_groups_file_when_orders_agree(self, capture: Path) -> None:
        _, order = _kernel(capture)
        topo = load(capture.with_suffix(".lspci"))
        ours = [str(f.address) for f in topo.enumeration_order()]
        text = listing(canonical_groups(topo), topo)
        if ours == order:
            # The capture's listing was made from raw config space, where a VF
            # reads ffff:ffff; we show the ids the kernel derives from the PF.
            for vf in (f for f in topo if f.is_virtfn):
                short = str(vf.address)[5:]
                text = text.replace(
                    f"\t{short} [{vf.class_code >> 8:04x}]: [{vf.vendor:04x}:{vf.device:04x}]",
                    f"\t{short} [{vf.class_code >> 8:04x}]: [ffff:ffff]",
                )
            assert text == capture.with_suffix(".groups").read_text()
        else:  # only the expander-bus order differs (see module docstring)
            roots = {a[:7] for a in order if topo.is_root_bus(0, int(a[5:7], 16))}
            assert len(roots) >= 3


def test_cli_json_every_capture(capsys: pytest.CaptureFixture[str]) -> None:
    """``iommugroups groups NAME.lspci --json`` gives the kernel's groups."""
    for capture in CAPTURES:
        want, _ = _kernel(capture)
        assert main(["groups", str(capture.with_suffix(".lspci")), "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert {frozenset(g) for g in out["groups"]} == {frozenset(v) for v in want.values()}
        assert all(
            re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", a)
            for g in out["groups"]
            for a in g
        )
