"""Ground truth for probe-time grouping: arm64 Linux 6.1 captures (R7, R8, R9).

Every capture in ``tests/data/oracle/arm64`` (copied from ``shared/oracle``)
is replayed by the simulator under ``legacy-probe-time``: its log (group
lines, SMMU warnings and action markers, in order) and its final groups
must be exactly the kernel's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iommugroups import simulate
from iommugroups._io.arm64_capture import read_capture

CAPTURES = sorted((Path(__file__).parent / "data" / "oracle" / "arm64").glob("*.json"))


def test_there_are_captures() -> None:
    assert len(CAPTURES) >= 36


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_legacy_probe_time_reproduces_the_kernel(path: Path) -> None:
    cap = read_capture(json.loads(path.read_text()), str(path))
    result = simulate(cap.topology, cap.scenario, "legacy-probe-time")
    assert list(result.log_lines(markers=True)) == list(cap.dmesg)
    assert dict(result.grouping.groups) == dict(cap.groups)
    for dev, driver in cap.drivers.items():
        fate = result.fates[dev]
        assert fate.driver == driver, (dev, fate)


def test_the_seed_bug_on_a_real_kernel() -> None:
    """arm64-121: two functions of one device behind a non-isolating root port
    without a driver start their own groups (R4.3, R4.5); after a hot-remove
    and rescan one of them joins the port's later group instead."""
    path = next(p for p in CAPTURES if p.stem == "arm64-121")
    cap = read_capture(json.loads(path.read_text()), str(path))
    result = simulate(cap.topology, cap.scenario, "legacy-probe-time")
    g = result.grouping
    assert g.group_of("01:00.0") != g.group_of("01:00.1")
    canonical = simulate(cap.topology, cap.scenario, "canonical").grouping
    assert canonical.same_group("01:00.0", "01:00.1")


def test_device_add_groups_regardless_of_drivers() -> None:
    """R10.1: under device-add every capture's devices below one non-isolating
    port end up together, whatever the drivers did."""
    for path in CAPTURES:
        cap = read_capture(json.loads(path.read_text()), str(path))
        dev_add = simulate(cap.topology, cap.scenario, "device-add").grouping
        canon = simulate(cap.topology, cap.scenario, "canonical").grouping
        assert dev_add.partition() == canon.partition(), path.stem
