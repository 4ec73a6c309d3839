"""The seed thread's HiSilicon D05 board, replayed (kernel-semantics §11, §12 vector 7).

The two logs are read from the thread itself (``tests/data/seed/``): the
first message of "arm64 iommu groups issue" holds them as its only unquoted
timestamped ``Adding to iommu group`` lines, 15 with mlx5_core built in, then
15 with mlx5_core loaded as a module after boot. ``legacy-probe-time`` must
print each one line for line; ``device-add`` (the v6.15 fix) must group the
same devices as the module boot did, whatever the link order.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import attrs
import pytest

import iommugroups
from iommugroups import Scenario, SimulationResult, Topology, examples, simulate
from iommugroups._io.topology_file import TopologyFormat

SEED = Path(__file__).parent / "data" / "seed" / "000_995015e96200a173.txt"

#: ``[   84.322097] mlx5_core 000a:11:00.2: Adding to iommu group 8``, unquoted.
_LOG_LINE = re.compile(r"^\[\s*\d+\.\d+\] (?P<line>\S+ \S+: Adding to iommu group \d+)$")

SCENARIOS = {"builtin": True, "module": False}


def _seed_logs() -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(file line number, line without timestamp) of both logs of the first message."""
    text = SEED.read_text(encoding="utf-8")
    first_message = text.split("^ permalink raw reply", 1)[0]
    found = [
        (number, m["line"])
        for number, raw in enumerate(first_message.splitlines(), start=1)
        if (m := _LOG_LINE.match(raw.rstrip()))
    ]
    assert len(found) == 30, found
    return found[:15], found[15:]


FIRST_LOG = [line for _n, line in _seed_logs()[0]]
SECOND_LOG = [line for _n, line in _seed_logs()[1]]


def _run(mlx5_builtin: bool, strategy: str, *, no_pcieport: bool = False) -> SimulationResult:
    topo = examples.d05()
    scenario = examples.d05_scenario(mlx5_builtin)
    if no_pcieport:  # CONFIG_PCIEPORTBUS=n: the port driver does not exist
        scenario = attrs.evolve(
            scenario, builtin=tuple(d for d in scenario.builtin if d != "pcieport")
        )
    return simulate(topo, scenario, strategy)


def _log_partition(lines: list[str]) -> frozenset[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for line in lines:
        who, _, group = line.partition(": Adding to iommu group ")
        groups.setdefault(int(group), set()).add(who.split()[1])
    return frozenset(frozenset(g) for g in groups.values())


# --- the logs, as the thread has them ---------------------------------------------------


def test_the_logs_are_where_the_thread_has_them() -> None:
    first, second = _seed_logs()
    assert [n for n, _ in first] == list(range(22, 37))
    assert [n for n, _ in second] == list(range(79, 94))
    assert first[0][1] == "hisi_sas_v2_hw HISI0162:01: Adding to iommu group 0"
    assert second[-1][1] == "mlx5_core 000a:11:00.3: Adding to iommu group 6"


# --- legacy-probe-time: both logs, line for line ----------------------------------------


def test_mlx5_built_in_prints_the_first_log() -> None:
    """The bug: PF0 and PF1 get groups 2 and 3 before their port (R7.8, §11)."""
    assert list(_run(True, "legacy-probe-time").group_lines()) == FIRST_LOG


def test_mlx5_as_a_module_prints_the_second_log() -> None:
    """The control case: the ports are grouped first, every function joins 6."""
    assert list(_run(False, "legacy-probe-time").group_lines()) == SECOND_LOG


def test_the_full_legacy_log_holds_only_group_lines_and_markers() -> None:
    result = _run(False, "legacy-probe-time")
    assert list(result.log_lines(markers=True)) == [
        *SECOND_LOG[:11],
        "ACTION insmod mlx5_core",
        *SECOND_LOG[11:13],
        "ACTION sriov 000a:11:00.0 2",
        *SECOND_LOG[13:],
    ]


# --- device-add: the module boot's grouping, whatever the order -------------------------


@pytest.mark.parametrize(
    ("mlx5_builtin", "no_pcieport"),
    [(True, False), (False, False), (True, True)],
    ids=["builtin", "module", "builtin-no-pcieport"],
)
def test_device_add_gives_the_second_logs_groups(mlx5_builtin: bool, no_pcieport: bool) -> None:
    """R10.1: grouping at device_add / SMMU registration ignores drivers, so
    the ports get their groups first and every function below joins them."""
    result = _run(mlx5_builtin, "device-add", no_pcieport=no_pcieport)
    logged = {d for g in _log_partition(SECOND_LOG) for d in g}
    for dev in logged:
        assert result.fates[dev].group is not None, dev
    seen = frozenset(frozenset(g & logged) for g in result.grouping.partition() if g & logged)
    assert seen == _log_partition(SECOND_LOG)


# --- variant C: no port driver at all ---------------------------------------------------


@pytest.mark.parametrize("mlx5_builtin", [True, False], ids=list(SCENARIOS))
def test_variant_c_without_pcieport_nothing_shares(mlx5_builtin: bool) -> None:
    """Spec §12 vector 7, variant C (CONFIG_PCIEPORTBUS=n), under legacy-probe-time.

    The expected outcome is derived from the rules, not observed on a
    kernel [D]: with no port driver the root ports are never probed, so
    they never reach ``dma_configure`` and never get a group (R7.8). Every
    function below a port then walks up to its port (no ACS, R4.2), finds no
    group there, finds none by alias or function alias on the port's bus
    (R4.3, R5.2: the port is alone on a root bus) and starts its own group
    (R4.5): PF0, PF1, each VF and each serial function alone.
    """
    result = _run(mlx5_builtin, "legacy-probe-time", no_pcieport=True)
    ports = [str(f.address) for f in examples.d05() if f.secondary_bus is not None]
    for port in ports:
        assert result.fates[port].state == "no-driver", port
        assert result.fates[port].group is None, port
    alone = [
        "000a:11:00.0",
        "000a:11:00.1",
        "000a:11:00.2",
        "000a:11:00.3",
        "0002:f9:00.0",
        "0002:f9:00.1",
    ]
    groups = [result.fates[d].group for d in alone]
    assert None not in groups
    assert len(set(groups)) == len(alone)
    for dev in alone:
        assert {frozenset({dev})} <= result.grouping.partition()


def test_variant_c_built_in_log() -> None:
    """The same, as log lines [D]: mlx5 groups the PFs at its own link-order
    place; the serial functions, deferred while the SMMU was not registered
    (R7.3), are retried at late_initcall (R8.3, R8.4); the VFs come last."""
    assert list(_run(True, "legacy-probe-time", no_pcieport=True).group_lines()) == [
        "hisi_sas_v2_hw HISI0162:01: Adding to iommu group 0",
        "hns_dsaf HISI00B2:00: Adding to iommu group 1",
        "mlx5_core 000a:11:00.0: Adding to iommu group 2",
        "mlx5_core 000a:11:00.1: Adding to iommu group 3",
        "ehci-platform PNP0D20:00: Adding to iommu group 4",
        "serial 0002:f9:00.0: Adding to iommu group 5",
        "serial 0002:f9:00.1: Adding to iommu group 6",
        "mlx5_core 000a:11:00.2: Adding to iommu group 7",
        "mlx5_core 000a:11:00.3: Adding to iommu group 8",
    ]


# --- fates ------------------------------------------------------------------------------


@pytest.mark.parametrize("mlx5_builtin", [True, False], ids=list(SCENARIOS))
def test_fates_of_the_devices_the_logs_leave_out(mlx5_builtin: bool) -> None:
    result = _run(mlx5_builtin, "legacy-probe-time")
    for dev in ("0002:f9:00.2", "000c:21:00.0"):  # behind an SMMU, but no driver (R7.8)
        fate = result.fates[dev]
        assert (fate.state, fate.driver, fate.group) == ("no-driver", None, None), fate
    for port in ("0006:c0:00.0", "0007:90:00.0"):  # no SMMU on segments 6 and 7
        fate = result.fates[port]
        assert (fate.state, fate.driver, fate.group) == ("bound", "pcieport", None), fate
        assert "no IOMMU" in fate.detail
    assert result.fates["0007:91:00.0"].group is None
    for dev in ("000a:11:00.0", "000a:11:00.1", "000a:11:00.2", "000a:11:00.3"):
        assert result.fates[dev].driver == "mlx5_core"


def test_under_device_add_driverless_functions_are_grouped_too() -> None:
    result = _run(True, "device-add")
    assert result.grouping.same_group("0002:f9:00.2", "0002:f8:00.0")
    assert result.grouping.same_group("000c:21:00.0", "000c:20:00.0")
    assert result.fates["0002:f9:00.2"].state == "no-driver"
    assert result.fates["0007:91:00.0"].group is None


# --- the example registries -------------------------------------------------------------


def test_sim_examples() -> None:
    assert set(examples.SIM_EXAMPLES) == {"d05-builtin", "d05-module"}
    for name, build in examples.SIM_EXAMPLES.items():
        topo, scenario = build()
        assert isinstance(topo, Topology)
        assert isinstance(scenario, Scenario)
        assert scenario.name == name
        assert topo == examples.d05()
    assert examples.SIM_EXAMPLES["d05-builtin"]()[1] == examples.d05_scenario(True)
    assert examples.SIM_EXAMPLES["d05-module"]()[1] == examples.d05_scenario(False)


def test_topology_examples_keep_desktop_and_add_d05() -> None:
    assert {"desktop", "d05"} <= set(examples.EXAMPLES)
    assert examples.get("d05") == examples.d05()
    assert examples.get("desktop") == examples.desktop()
    with pytest.raises(KeyError, match="d05"):
        examples.get("d06")


def test_the_scenarios_link_order() -> None:
    from iommugroups._boot.scenario import IOMMU_DRIVER

    assert examples.d05_scenario(True).builtin == (
        "pcieport",
        "serial",
        IOMMU_DRIVER,
        "hisi_sas_v2_hw",
        "hns_dsaf",
        "mlx5_core",
        "ehci-platform",
    )
    module = examples.d05_scenario(False)
    assert "mlx5_core" not in module.builtin
    assert [str(a) for a in module.actions] == [
        "ACTION insmod mlx5_core",
        "ACTION sriov 000a:11:00.0 2",
    ]


@pytest.mark.parametrize("fmt", ["json", "toml"])
def test_d05_survives_a_topology_file(fmt: TopologyFormat) -> None:
    """What ``--example d05`` prints can be saved and read back unchanged."""
    topo = examples.d05()
    assert iommugroups.loads(iommugroups.dumps_topology(topo, fmt), fmt=fmt) == topo


def test_the_example_script_prints_both_logs(capsys: pytest.CaptureFixture[str]) -> None:
    """``python examples/d05.py`` runs and shows the thread's two logs."""
    script = Path(__file__).parent.parent / "examples" / "d05.py"
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    shown = [line.strip() for line in out.splitlines()]
    for log in (FIRST_LOG, SECOND_LOG):
        starts = range(len(shown) - len(log) + 1)
        assert any(shown[i : i + len(log)] == log for i in starts), log
    assert out.count("split: the bug") == 1
