"""Scenario files, ``iommugroups.scenario/1`` (docs/scenario-format.md).

Round trips: a scenario we write reads back to equal values (topology,
scenario, drivers with their probe rules, strategy), and is written again
byte for byte. Every problem is one ``InputError`` naming the file and the
field path (or the line, for syntax errors). An arm64 capture is read as a
scenario too.
"""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from iommugroups import (
    KNOWN_DRIVERS,
    STRATEGIES,
    Driver,
    IdMapping,
    InputError,
    IommuInstance,
    IommuKind,
    PlatformDevice,
    ProbeResult,
    Scenario,
    SriovCapability,
    Topology,
    simulate,
)
from iommugroups._io.scenario_file import (
    SCHEMA,
    ScenarioFile,
    ScenarioFormat,
    dumps_scenario,
    load_scenario,
    load_scenario_file,
    loads_scenario,
    loads_scenario_file,
    scenario_from_dict,
    scenario_to_dict,
)
from iommugroups._io.topology_file import dumps_topology
from iommugroups._kernel.model import PcieType, PciFunction

from .helpers import bridge, ep

HERE = Path(__file__).parent
DOC = HERE.parent / "docs" / "scenario-format.md"
CAPTURES = sorted((HERE / "data" / "oracle" / "arm64").glob("*.json"))
FORMATS: tuple[ScenarioFormat, ...] = ("json", "toml")

SMMU = IommuInstance("smmu0", IommuKind.SMMU_V3)
IDENTITY = IdMapping(0, 0, 0x10000, 0, "smmu0")


def _topology() -> Topology:
    """A root port with an SR-IOV NVMe PF, a NIC and a platform device."""
    pf = PciFunction(
        "01:00.0",
        vendor=0x1B36,
        device=0x0010,
        class_code=0x010802,
        pcie_type=PcieType.ENDPOINT,
        sriov=SriovCapability(total_vfs=4, num_vfs=0, offset=1, stride=1, vf_device=0x0010),
    )
    return Topology(
        [
            PciFunction("00:00.0", vendor=0x1B36, device=0x0008, class_code=0x060000),
            bridge("00:01.0", 1),
            pf,
            bridge("00:02.0", 2),
            ep("02:00.0", vendor=0x8086, device=0x10D3, class_code=0x020000),
        ],
        platform_devices=[PlatformDevice("HISI0162:01", "smmu0", (0x40000,))],
        iommus=[SMMU],
        id_mappings=[IDENTITY],
        name="machine",
    )


def _drivers() -> tuple[Driver, ...]:
    return (
        Driver("vnic", ids=((0x8086, 0x10D3), (0x15B3, None)), about="a NIC"),
        Driver(
            "bad",
            classes=((0x010802, 0xFFFFFF), (0x020000, 0xFF0000)),
            probe=lambda _d: ProbeResult.FAIL,
        ),
        Driver("waits", override_only=True),
        Driver("sas", bus="platform", platform_names=("HISI0162", "HISI0163")),
    )


def _full() -> ScenarioFile:
    """A scenario using every field and every action kind."""
    text = json.dumps(
        {
            "schema": SCHEMA,
            "name": "everything",
            "firmware": "dt",
            "builtin": ["pcieport", "arm-smmu-v3", "serial", "sas"],
            "blacklist": ["serial", "shpchp"],
            "iommu_builtin": False,
            "strategy": "device-add",
            "actions": [
                ["insmod", "nvme"],
                ["insmod", "vnic"],
                ["bind", "0000:00:02.0", "pci-stub"],
                ["sriov", "0000:01:00.0", "2"],
                ["remove", "0000:02:00.0"],
                ["rescan"],
                ["iommu", "smmu0"],
                ["bind", "0000:01:00.2", "waits"],
            ],
            "probe_failures": [["nvme", "0000:01:00.1"], ["vnic", "0000:02:00.0"]],
            "drivers": [
                {"name": "vnic", "ids": [["0x8086", "0x10d3"], ["0x15b3"]], "about": "a NIC"},
                {
                    "name": "bad",
                    "classes": [["0x010802", "0xffffff"], ["0x020000", "0xff0000"]],
                    "probe": "fail",
                },
                {"name": "waits", "override_only": True, "probe": "defer"},
                {"name": "sas", "bus": "platform", "platform_names": ["HISI0162", "HISI0163"]},
            ],
            "topology": json.loads(dumps_topology(_topology(), "json")),
        }
    )
    return loads_scenario_file(text, "json")


# --- round trips --------------------------------------------------------------


def _same(a: ScenarioFile, b: ScenarioFile) -> None:
    assert a.topology == b.topology
    assert a.scenario == b.scenario
    assert a.drivers == b.drivers
    assert [d.probe for d in a.drivers] == [d.probe for d in b.drivers]
    assert a.strategy == b.strategy


class TestRoundTrip:
    def test_full_file_reads_as_written(self) -> None:
        sf = _full()
        assert sf.topology == _topology()
        sc = sf.scenario
        assert (sc.name, sc.firmware, sc.iommu_builtin) == ("everything", "dt", False)
        assert sc.builtin == ("pcieport", "arm-smmu-v3", "serial", "sas")
        assert sc.blacklist == {"serial", "shpchp"}
        assert [str(a) for a in sc.actions][3] == "ACTION sriov 0000:01:00.0 2"
        assert sc.probe_failures == {("nvme", "0000:01:00.1"), ("vnic", "0000:02:00.0")}
        assert sf.strategy == "device-add"
        assert sf.capture is None
        vnic, bad, waits, sas = sf.drivers
        assert vnic.ids == ((0x8086, 0x10D3), (0x15B3, None))
        assert vnic.about == "a NIC"
        assert bad.classes == ((0x010802, 0xFFFFFF), (0x020000, 0xFF0000))
        assert bad.probe(ep("00:05.0")) is ProbeResult.FAIL
        assert waits.override_only
        assert waits.probe(ep("00:05.0")) is ProbeResult.DEFER
        assert vnic.probe(ep("00:05.0")) is ProbeResult.OK
        assert sas.bus == "platform"
        assert sas.platform_names == ("HISI0162", "HISI0163")

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_full_file(self, fmt: ScenarioFormat) -> None:
        sf = _full()
        text = dumps_scenario(
            sf.topology, sf.scenario, fmt, drivers=sf.drivers, strategy=sf.strategy
        )
        again = loads_scenario_file(text, fmt)
        _same(again, sf)
        assert (
            dumps_scenario(
                again.topology, again.scenario, fmt, drivers=again.drivers, strategy=again.strategy
            )
            == text
        )

    @pytest.mark.parametrize("fmt", FORMATS)
    @pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
    def test_every_capture(self, path: Path, fmt: ScenarioFormat) -> None:
        sf = load_scenario_file(path)
        text = dumps_scenario(sf.topology, sf.scenario, fmt)
        topo, scenario, drivers = loads_scenario(text, fmt)
        assert (topo, scenario, drivers) == (sf.topology, sf.scenario, [])
        assert dumps_scenario(topo, scenario, fmt) == text

    def test_json_and_toml_hold_the_same(self) -> None:
        sf = _full()
        as_json = dumps_scenario(sf.topology, sf.scenario, "json", drivers=sf.drivers)
        as_toml = dumps_scenario(sf.topology, sf.scenario, "toml", drivers=sf.drivers)
        _same(loads_scenario_file(as_json), loads_scenario_file(as_toml, None, "x.toml"))

    def test_defaults_are_left_out(self) -> None:
        data = scenario_to_dict(_topology(), Scenario())
        assert list(data) == ["schema", "topology"]
        assert "schema" not in data["topology"]

    def test_key_order(self) -> None:
        sf = _full()
        data = scenario_to_dict(sf.topology, sf.scenario, drivers=sf.drivers, strategy=sf.strategy)
        assert list(data) == [
            "schema",
            "name",
            "firmware",
            "builtin",
            "blacklist",
            "iommu_builtin",
            "strategy",
            "actions",
            "probe_failures",
            "drivers",
            "topology",
        ]

    def test_default_scenario_is_minimal(self) -> None:
        text = dumps_scenario(_topology(), Scenario(), "toml")
        assert text.startswith(f'schema = "{SCHEMA}"\n\n[topology]\n')
        assert loads_scenario(text, "toml")[1] == Scenario()

    def test_topology_reference(self, tmp_path: Path) -> None:
        (tmp_path / "machine.toml").write_text(dumps_topology(_topology(), "toml"))
        text = dumps_scenario(
            _topology(),
            Scenario(actions=[("insmod", "nvme")]),
            "toml",
            topology_file="machine.toml",
        )
        assert 'topology_file = "machine.toml"' in text
        assert "[topology]" not in text
        (tmp_path / "s.toml").write_text(text)
        topo, scenario, _ = load_scenario(tmp_path / "s.toml")
        assert topo == _topology()
        assert [str(a) for a in scenario.actions] == ["ACTION insmod nvme"]

    def test_a_driver_with_its_own_probe_cannot_be_written(self) -> None:
        drv = Driver("own", probe=lambda _d: ProbeResult.OK)
        with pytest.raises(ValueError, match="'own' has its own probe rule"):
            dumps_scenario(_topology(), Scenario(), "json", drivers=[drv])

    def test_catalogue_drivers_with_plain_probes_can_be_written(self) -> None:
        drivers = [KNOWN_DRIVERS[n] for n in ("e1000e", "serial", "pci-stub", "mlx5_core")]
        text = dumps_scenario(_topology(), Scenario(), "json", drivers=drivers)
        assert loads_scenario(text)[2] == drivers

    def test_unknown_format(self) -> None:
        with pytest.raises(ValueError, match="unknown scenario format 'yaml'"):
            dumps_scenario(_topology(), Scenario(), "yaml")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="unknown scenario format 'yaml'"):
            loads_scenario("{}", "yaml")  # type: ignore[arg-type]


# --- what reading accepts -------------------------------------------------------------


def _base(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "topology": json.loads(dumps_topology(_topology(), "json")),
    }
    data.update(extra)
    return data


def _read(data: object, path: str = "s.json") -> ScenarioFile:
    return scenario_from_dict(data, path, strategies=STRATEGIES)


class TestSpellings:
    def test_kernel(self) -> None:
        """The version the scenario is for (``simulate`` models it), kept as written."""
        assert _read(_base(kernel="6.1.0-56-arm64")).scenario.kernel == "6.1.0-56-arm64"
        assert _read(_base()).scenario.kernel is None
        text = dumps_scenario(_topology(), Scenario(kernel="6.1"), "toml")
        assert 'kernel = "6.1"' in text
        assert loads_scenario_file(text, "toml").scenario.kernel == "6.1"

    def test_schema_may_be_missing(self) -> None:
        data = _base()
        del data["schema"]
        assert _read(data).topology == _topology()

    def test_inline_topology_may_carry_its_schema(self) -> None:
        data = _base()
        data["topology"]["schema"] = "iommugroups.topology/1"
        assert _read(data).topology == _topology()

    def test_actions_as_strings(self) -> None:
        sf = _read(_base(actions=["insmod nvme", "sriov 0000:01:00.0 2", "rescan"]))
        assert [str(a) for a in sf.scenario.actions] == [
            "ACTION insmod nvme",
            "ACTION sriov 0000:01:00.0 2",
            "ACTION rescan",
        ]

    def test_vf_count_may_be_an_integer(self) -> None:
        sf = _read(_base(actions=[["insmod", "nvme"], ["sriov", "0000:01:00.0", 2]]))
        assert sf.scenario.actions[1].args == ("0000:01:00.0", "2")

    def test_action_devices_are_kept_as_written(self) -> None:
        # the marker line shows what the file says
        sf = _read(_base(actions=[["remove", "02:00.0"]]))
        assert str(sf.scenario.actions[0]) == "ACTION remove 02:00.0"

    def test_probe_failure_devices_are_normalised(self) -> None:
        sf = _read(_base(probe_failures=[["nvme", "01:00.0"]]))
        assert sf.scenario.probe_failures == {("nvme", "0000:01:00.0")}

    def test_vfs_of_sriov_actions_are_devices(self) -> None:
        sf = _read(
            _base(
                actions=[["insmod", "nvme"], ["sriov", "01:00.0", "2"], ["remove", "01:00.2"]],
                probe_failures=[["nvme", "01:00.1"]],
            )
        )
        assert sf.scenario.probe_failures == {("nvme", "0000:01:00.1")}

    def test_platform_devices_by_name(self) -> None:
        sf = _read(_base(probe_failures=[["hisi_sas_v2_hw", "HISI0162:01"]]))
        assert sf.scenario.probe_failures == {("hisi_sas_v2_hw", "HISI0162:01")}

    def test_hex_spellings_of_driver_ids(self) -> None:
        sf = _read(_base(drivers=[{"name": "x", "ids": [[0x8086, "10d3"]], "classes": [[1]]}]))
        (drv,) = sf.drivers
        assert drv.ids == ((0x8086, 0x10D3),)
        assert drv.classes == ((1, 0xFFFFFF),)

    def test_a_file_driver_replaces_a_catalogue_driver(self) -> None:
        sf = _read(_base(drivers=[{"name": "nvme", "classes": [["0x010802"]], "probe": "fail"}]))
        result = simulate(sf.topology, Scenario(actions=[("insmod", "nvme")]), drivers=sf.drivers)
        assert result.fates["0000:01:00.0"].state == "failed"

    def test_blacklisting_the_iommu_driver(self) -> None:
        sf = _read(_base(blacklist=["arm-smmu-v3"]))
        assert sf.scenario.blacklist == {"arm-smmu-v3"}

    def test_strategy_names_are_checked_against_the_callers(self, tmp_path: Path) -> None:
        data = _base(strategy="mine")
        # no names given: the file's strategy is not checked
        assert scenario_from_dict(data, "s.json").strategy == "mine"
        assert loads_scenario_file(json.dumps(data)).strategy == "mine"
        assert scenario_from_dict(data, "s.json", strategies={"mine"}).strategy == "mine"
        # the names given: another is refused, with the closest name suggested
        wanted = "strategy: unknown strategy 'mine' (known: other, theirs)"
        with pytest.raises(InputError) as info:
            scenario_from_dict(data, "s.json", strategies=("theirs", "other"))
        assert (info.value.path, info.value.line, info.value.problem) == ("s.json", None, wanted)
        path = tmp_path / "s.toml"
        path.write_text('strategy = "device-ad"\ntopology_file = "m.json"\n')
        (tmp_path / "m.json").write_text(dumps_topology(_topology(), "json"))
        assert load_scenario_file(path).strategy == "device-ad"
        assert load_scenario(path)[0] == _topology()
        wanted = "strategy: unknown strategy 'device-ad' (did you mean 'device-add'?)"
        for read in (
            lambda: load_scenario_file(path, strategies=STRATEGIES),
            lambda: load_scenario(path, strategies=STRATEGIES),
            lambda: loads_scenario_file(path.read_text(), None, str(path), strategies=STRATEGIES),
            lambda: loads_scenario(path.read_text(), "toml", str(path), strategies=STRATEGIES),
        ):
            with pytest.raises(InputError) as info:
                read()
            assert (info.value.path, info.value.line) == (str(path), None)
            assert info.value.problem == wanted

    def test_format_detection(self, tmp_path: Path) -> None:
        toml_text = dumps_scenario(_topology(), Scenario(name="t"), "toml")
        json_text = dumps_scenario(_topology(), Scenario(name="j"), "json")
        assert loads_scenario_file(toml_text).scenario.name == "t"
        assert loads_scenario_file(json_text).scenario.name == "j"
        (tmp_path / "a.toml").write_text(toml_text)
        (tmp_path / "b.json").write_text(json_text)
        (tmp_path / "c").write_text(toml_text)
        assert load_scenario(tmp_path / "a.toml")[1].name == "t"
        assert load_scenario(tmp_path / "b.json")[1].name == "j"
        assert load_scenario(tmp_path / "c")[1].name == "t"

    def test_stdin(self, monkeypatch: pytest.MonkeyPatch) -> None:
        text = dumps_scenario(_topology(), Scenario(name="piped"), "json")
        monkeypatch.setattr("sys.stdin", io.StringIO(text))
        assert load_scenario("-")[1].name == "piped"

    def test_file_drivers_run(self) -> None:
        sf = _read(
            _base(
                firmware="dt",
                actions=[["insmod", "late"], ["bind", "0000:02:00.0", "late"]],
                drivers=[
                    {"name": "late", "ids": [["0x8086", "0x10d3"]], "probe": "defer"},
                ],
            )
        )
        result = simulate(sf.topology, sf.scenario, drivers=sf.drivers)
        fate = result.fates["0000:02:00.0"]
        assert (fate.state, fate.detail) == ("deferred", "late asked for a later probe")


# --- topology by reference --------------------------------------------------------------


class TestTopologyFile:
    def test_relative_to_the_scenario_file(self, tmp_path: Path) -> None:
        (tmp_path / "machines").mkdir()
        (tmp_path / "scenarios").mkdir()
        (tmp_path / "machines" / "m.json").write_text(dumps_topology(_topology(), "json"))
        scenario = tmp_path / "scenarios" / "s.toml"
        scenario.write_text(
            f'schema = "{SCHEMA}"\ntopology_file = "../machines/m.json"\n'
            'actions = [["insmod", "nvme"]]\n'
        )
        # outside the scenario file's directory: only when allowed (issue 10)
        with pytest.raises(InputError, match="outside the scenario file's directory"):
            load_scenario(scenario)
        topo, sc, _ = load_scenario(scenario, allow_paths_outside=True)
        assert topo == _topology()
        assert len(sc.actions) == 1

    def test_below_the_scenario_file(self, tmp_path: Path) -> None:
        (tmp_path / "machines").mkdir()
        (tmp_path / "machines" / "m.json").write_text(dumps_topology(_topology(), "json"))
        scenario = tmp_path / "s.toml"
        scenario.write_text(f'schema = "{SCHEMA}"\ntopology_file = "machines/m.json"\n')
        topo, _, _ = load_scenario(scenario)
        assert topo == _topology()

    def test_a_link_out_of_the_directory_is_outside(self, tmp_path: Path) -> None:
        (tmp_path / "m.json").write_text(dumps_topology(_topology(), "json"))
        (tmp_path / "conf").mkdir()
        (tmp_path / "conf" / "m.json").symlink_to(tmp_path / "m.json")
        scenario = tmp_path / "conf" / "s.toml"
        scenario.write_text('topology_file = "m.json"\n')
        with pytest.raises(InputError, match="outside"):
            load_scenario(scenario)

    def test_an_oracle_capture_as_topology(self, tmp_path: Path) -> None:
        scenario = tmp_path / "s.json"
        capture = CAPTURES[0].resolve()
        scenario.write_text(json.dumps({"topology_file": str(capture)}))
        topo, _, _ = load_scenario(scenario, allow_paths_outside=True)
        assert len(topo.functions) > 3

    def test_missing(self, tmp_path: Path) -> None:
        scenario = tmp_path / "s.toml"
        scenario.write_text('topology_file = "nowhere/m.toml"\n')
        with pytest.raises(InputError) as info:
            load_scenario(scenario)
        assert info.value.path == str(scenario)
        assert info.value.problem == (
            f"topology_file: nowhere/m.toml: no such file (looked for {tmp_path}/nowhere/m.toml)"
        )

    def test_a_directory(self, tmp_path: Path) -> None:
        (tmp_path / "d").mkdir()
        with pytest.raises(InputError, match="topology_file: d: is a directory, not a file"):
            scenario_from_dict({"topology_file": "d"}, str(tmp_path / "s.json"))

    def test_relative_to_the_current_directory_for_strings(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "m.toml").write_text(dumps_topology(_topology(), "toml"))
        monkeypatch.chdir(tmp_path)
        assert loads_scenario('{"topology_file": "m.toml"}')[0] == _topology()

    def test_errors_in_it_name_it(self, tmp_path: Path) -> None:
        (tmp_path / "m.json").write_text('{"functions": [{"address": "00:00.0", "vendr": 1}]}')
        with pytest.raises(InputError) as info:
            scenario_from_dict({"topology_file": "m.json"}, str(tmp_path / "s.json"))
        assert info.value.path == str(tmp_path / "m.json")
        assert "functions[0]: unknown key 'vendr'" in info.value.problem

    def test_not_a_path(self) -> None:
        with pytest.raises(InputError, match="topology_file: expected a path, got the integer 3"):
            _read({"topology_file": 3})


# --- errors -----------------------------------------------------------------------------


def _problem(data: object) -> str:
    with pytest.raises(InputError) as info:
        _read(data)
    assert info.value.path == "s.json"
    assert info.value.line is None
    return info.value.problem


class TestErrors:
    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ({"name": 3}, "name: expected a string, got the integer 3"),
            ({"firmware": "uefi"}, "firmware: expected 'acpi' or 'dt', got 'uefi'"),
            (
                {"kernel": "seven"},
                "kernel: not a kernel version: 'seven' (expected MAJOR.MINOR, e.g. 6.12 or "
                "7.3.4-amd64)",
            ),
            ({"kernel": 7.3}, "kernel: expected a string, got the number 7.3"),
            ({"firmware": None}, "firmware: expected a string, got null"),
            (
                {"iommu_builtin": "yes"},
                "iommu_builtin: expected true or false, got the string 'yes'",
            ),
            ({"builtin": "pcieport"}, "builtin: expected a list, got the string 'pcieport'"),
            (
                {"builtin": ["pcieport", "pcieportt"]},
                "builtin[1]: unknown driver 'pcieportt' (did you mean 'pcieport'?)",
            ),
            ({"builtin": ["serial", "serial"]}, "builtin[1]: 'serial' is listed twice"),
            ({"blacklist": [1]}, "blacklist[0]: expected a string, got the integer 1"),
            (
                {"strategy": "legacy-probetime"},
                "strategy: unknown strategy 'legacy-probetime' "
                "(did you mean 'legacy-probe-time'?)",
            ),
            ({"actions": {"insmod": "nvme"}}, "actions: expected a list, got an object"),
            (
                {"actions": [3]},
                'actions[0]: expected a list like ["insmod", "e1000e"], got the integer 3',
            ),
            ({"actions": [[]]}, "actions[0]: an empty action"),
            ({"actions": [""]}, "actions[0]: an empty action"),
            (
                {"actions": [["load", "nvme"]]},
                "actions[0][0]: unknown action 'load' "
                "(known: bind, insmod, iommu, remove, rescan, sriov)",
            ),
            (
                {"actions": [["insmodd", "nvme"]]},
                "actions[0][0]: unknown action 'insmodd' (did you mean 'insmod'?)",
            ),
            (
                {"actions": [["bind", "0000:02:00.0"]]},
                "actions[0]: action bind takes 2 argument(s) (device driver), got 1",
            ),
            (
                {"actions": [["insmod", 3]]},
                "actions[0][1]: expected a string, got the integer 3",
            ),
            (
                {"actions": [["insmod", "e1000x"]]},
                "actions[0][1]: unknown driver 'e1000x' (did you mean 'e1000'?)",
            ),
            (
                {"actions": [["bind", "0000:02:00.0", "pci-stubb"]]},
                "actions[0][2]: unknown driver 'pci-stubb' (did you mean 'pci-stub'?)",
            ),
            (
                {"actions": [["remove", "0000:09:00.0"]]},
                "actions[0][1]: no device 0000:09:00.0 in the topology",
            ),
            (
                {"actions": [["remove", "eth0"]]},
                "actions[0][1]: 'eth0' is neither a PCI address nor a platform device of the "
                "topology",
            ),
            (
                {"actions": [["sriov", "0000:01:00.0", "7"]]},
                "actions[0][2]: 0000:01:00.0 offers 4 VFs, not 7",
            ),
            (
                {"actions": [["sriov", "0000:01:00.0", "-1"]]},
                "actions[0]: sriov: VF count must be a whole number up to 65535 (TotalVFs is "
                "16 bits), not '-1'",
            ),
            (
                {"actions": [["sriov", "0000:02:00.0", "1"]]},
                "actions[0][1]: 0000:02:00.0 is not an SR-IOV capable PF",
            ),
            (
                {"actions": [["sriov", "0000:07:00.0", "1"]]},
                "actions[0][1]: no device 0000:07:00.0 in the topology",
            ),
            (
                {"actions": [["remove", "0000:01:00.3"]]},
                "actions[0][1]: no device 0000:01:00.3 in the topology",
            ),
            (
                {"actions": [["iommu", "smmu1"]]},
                "actions[0][1]: unknown IOMMU instance 'smmu1' (did you mean 'smmu0'?)",
            ),
            (
                {"probe_failures": [["nvme"]]},
                'probe_failures[0]: expected a [driver, device] pair like ["nvme", '
                '"0000:01:00.0"], got a list of 1',
            ),
            (
                {"probe_failures": ["nvme"]},
                'probe_failures[0]: expected a [driver, device] pair like ["nvme", '
                "\"0000:01:00.0\"], got the string 'nvme'",
            ),
            (
                {"probe_failures": [["nvmee", "0000:01:00.0"]]},
                "probe_failures[0][0]: unknown driver 'nvmee' (did you mean 'nvme'?)",
            ),
            (
                {"probe_failures": [["nvme", "0000:05:00.0"]]},
                "probe_failures[0][1]: no device 0000:05:00.0 in the topology",
            ),
            ({"drivers": {}}, "drivers: expected a list, got an object"),
            ({"drivers": ["x"]}, "drivers[0]: expected an object, got the string 'x'"),
            ({"drivers": [{"bus": "pci"}]}, "drivers[0].name: required key missing"),
            (
                {"drivers": [{"name": "x", "prob": "ok"}]},
                "drivers[0]: unknown key 'prob' (did you mean 'probe'?)",
            ),
            (
                {"drivers": [{"name": "x", "probe": "maybe"}]},
                "drivers[0].probe: expected one of 'ok', 'fail', 'defer', got 'maybe'",
            ),
            (
                {"drivers": [{"name": "x", "bus": "usb"}]},
                "drivers[0].bus: expected 'pci' or 'platform', got 'usb'",
            ),
            (
                {"drivers": [{"name": "x", "ids": [["0x18086", "0x1"]]}]},
                "drivers[0].ids: [0]: 0x18086 is out of range for a vendor id (0x0000-0xffff)",
            ),
            (
                {"drivers": [{"name": "x", "ids": ["0x8086"]}]},
                "drivers[0].ids: [0]: expected [vendor, device] or [vendor], "
                "got the string '0x8086'",
            ),
            (
                {"drivers": [{"name": "x", "classes": [["0x01", "zz"]]}]},
                "drivers[0].classes: [0]: expected a class code (an integer or a hex string "
                "like '0x8086'), got the string 'zz'",
            ),
            (
                {"drivers": [{"name": "x", "override_only": 1}]},
                "drivers[0].override_only: expected true or false, got the integer 1",
            ),
            (
                {"drivers": [{"name": "arm-smmu-v3"}]},
                "drivers[0].name: 'arm-smmu-v3' names the IOMMU driver, not a device driver",
            ),
            (
                {"drivers": [{"name": "two words"}]},
                "drivers[0].name: a driver name is one word, not 'two words'",
            ),
            (
                {"drivers": [{"name": "x"}, {"name": "x"}]},
                "drivers[1].name: driver 'x' is defined twice",
            ),
            (
                {"drivers": [{"name": "x", "platform_names": ["HISI"]}]},
                "drivers[0].platform_names: a PCI driver matches no platform device",
            ),
            (
                {"drivers": [{"name": "x", "bus": "platform", "ids": [["1", "2"]]}]},
                "drivers[0]: a platform driver matches by platform_names, not ids/classes",
            ),
            ({"action": []}, "unknown key 'action' (did you mean 'actions'?)"),
        ],
    )
    def test_field_error(self, extra: dict[str, Any], message: str) -> None:
        assert _problem(_base(**extra)) == message

    def test_vfs_past_bus_ff(self) -> None:
        pf = PciFunction(
            "ff:1f.0",
            vendor=0x1B36,
            device=0x0010,
            class_code=0x010802,
            pcie_type=PcieType.ENDPOINT,
            sriov=SriovCapability(total_vfs=8, num_vfs=0, offset=1, stride=1, vf_device=0x0010),
        )
        data = _base(actions=[["sriov", "ff:1f.0", "7"], ["remove", "ff:1f.7"]])
        data["topology"] = json.loads(dumps_topology(Topology([pf]), "json"))
        assert [str(a) for a in _read(data).scenario.actions][1] == "ACTION remove ff:1f.7"
        data["actions"] = [["sriov", "ff:1f.0", "8"]]
        assert _problem(data) == (
            "actions[0][2]: 0000:ff:1f.0 cannot enable 8 VFs: VF 7 would sit past bus 0xff"
        )

    def test_inline_topology_errors_have_the_topology_prefix(self) -> None:
        data = _base()
        data["topology"]["functions"][0]["vendr"] = "0x8086"
        data["topology"]["functions"][2]["vendor"] = 0x18086
        assert _problem(data) == (
            "topology.functions[0]: unknown key 'vendr' (did you mean 'vendor'?) [0000:00:00.0]; "
            "topology.functions[2].vendor: 0x18086 is out of range for a vendor id "
            "(0x0000-0xffff) [0000:01:00.0]"
        )

    def test_inline_topology_inconsistent(self) -> None:
        data = _base()
        data["topology"]["functions"].append({"address": "0000:02:00.0"})
        assert _problem(data).startswith("topology: duplicate PCI address 0000:02:00.0")

    @pytest.mark.parametrize(
        ("topology", "message"),
        [
            ([], "topology: expected an object, got a list"),
            (
                {"schema": "iommugroups.topology/2", "functions": []},
                "topology.schema: unsupported schema 'iommugroups.topology/2' "
                "(this version reads 'iommugroups.topology/1')",
            ),
            ({}, "topology.functions: required key missing"),
        ],
    )
    def test_inline_topology_shape(self, topology: object, message: str) -> None:
        assert _problem({"topology": topology}) == message

    def test_no_topology(self) -> None:
        assert _problem({"name": "x"}) == (
            "no topology: give 'topology' (inline) or 'topology_file' (a path)"
        )

    def test_both_topologies(self) -> None:
        assert _problem(_base(topology_file="m.toml")) == (
            "give either 'topology' or 'topology_file', not both"
        )

    @pytest.mark.parametrize("schema", ["iommugroups.scenario/2", 1, None])
    def test_wrong_schema(self, schema: object) -> None:
        assert _problem(_base(schema=schema)) == (
            f"schema: unsupported schema {schema!r} (this version reads {SCHEMA!r})"
        )

    def test_a_topology_file_is_not_a_scenario(self) -> None:
        data = json.loads(dumps_topology(_topology(), "json"))
        assert _problem(data).startswith(
            "schema: this is a topology file ('iommugroups.topology/1'); a scenario file "
            "refers to it with 'topology_file'"
        )

    @pytest.mark.parametrize("data", [[], "text", 3, None])
    def test_top_level_not_an_object(self, data: object) -> None:
        assert _problem(data).startswith("expected an object at the top level, got ")

    def test_unknown_keys_together(self) -> None:
        assert _problem(_base(x=1, y=2, actoins=[])).split("; ") == [
            "unknown key 'actoins' (did you mean 'actions'?)",
            "unknown keys 'x', 'y' (known keys: schema, name, kernel, firmware, builtin, "
            "blacklist, iommu_builtin, strategy, actions, probe_failures, drivers, "
            "topology_file, topology)",
        ]

    def test_an_x86_capture_is_not_a_scenario(self) -> None:
        data = {"name": "q35", "devices": {}, "topology": [], "dmesg": []}
        assert _problem(data).startswith(
            "an oracle capture without a 'scenario' (no boot to replay), not a scenario file"
        )

    def test_several_problems_together(self) -> None:
        problem = _problem(
            _base(firmware="uefi", actions=[["insmod", "x"]], probe_failures=[["y", "00:00.0"]])
        )
        first, second, third = problem.split("; ")
        assert first == "firmware: expected 'acpi' or 'dt', got 'uefi'"
        assert second.startswith("actions[0][1]: unknown driver 'x' (known: e1000, e1000e, ")
        assert third.startswith("probe_failures[0][0]: unknown driver 'y' (known: ")

    def test_many_problems_are_counted(self) -> None:
        problem = _problem(_base(actions=[["insmod", f"x{i}"] for i in range(13)]))
        assert problem.endswith("; and 3 more problems")
        assert problem.count("unknown driver") == 10

    def test_names_are_not_checked_when_the_topology_is_bad(self) -> None:
        data = _base(actions=[["remove", "0000:09:00.0"]])
        data["topology"]["functions"][0]["vendor"] = "zz"
        problem = _problem(data)
        assert problem.startswith("topology.functions[0].vendor: ")
        assert "actions" not in problem

    def test_input_is_not_modified(self) -> None:
        data = _base(actions=[["insmod", "nvme"]])
        before = copy.deepcopy(data)
        _read(data)
        assert data == before

    def test_errors_are_value_errors(self) -> None:
        with pytest.raises(ValueError, match="firmware"):
            _read(_base(firmware="x"))


class TestSyntaxErrors:
    def test_json_line(self) -> None:
        text = '{\n  "schema": "iommugroups.scenario/1",\n  "name": "x"\n  "firmware": "dt"\n}\n'
        with pytest.raises(InputError) as info:
            loads_scenario(text, "json", "bad.json")
        assert info.value.line == 4
        assert str(info.value) == "bad.json:4: invalid JSON: Expecting ',' delimiter (column 3)"

    def test_toml_line(self) -> None:
        with pytest.raises(InputError) as info:
            loads_scenario('name = "x"\nfirmware = dt\n', "toml", "bad.toml")
        assert info.value.line == 2
        assert info.value.problem.startswith("invalid TOML: ")

    def test_file_errors(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="no such file"):
            load_scenario(tmp_path / "missing.toml")
        (tmp_path / "bin").write_bytes(b"\0\1\2")
        with pytest.raises(InputError, match="binary file"):
            load_scenario(tmp_path / "bin")
        with pytest.raises(InputError, match="is a directory"):
            load_scenario(tmp_path)


# --- arm64 captures -----------------------------------------------------------------------


class TestCaptures:
    @pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
    def test_a_capture_is_a_scenario(self, path: Path) -> None:
        sf = load_scenario_file(path)
        assert sf.capture is not None
        assert sf.scenario.name == path.stem
        assert sf.drivers == ()
        assert sf.strategy is None
        result = simulate(sf.topology, sf.scenario, "legacy-probe-time")
        assert list(result.log_lines(markers=True)) == list(sf.capture.dmesg)

    def test_from_text_without_a_name(self) -> None:
        data = json.loads(CAPTURES[0].read_text())
        data.pop("name", None)
        data["scenario"].pop("name", None)
        sf = loads_scenario_file(json.dumps(data))
        assert sf.capture is not None
        assert sf.scenario.name == ""

    def test_a_bad_capture(self) -> None:
        data = json.loads(CAPTURES[0].read_text())
        data["scenario"]["actions"] = [["fly"]]
        with pytest.raises(InputError, match="scenario: unknown action 'fly'"):
            loads_scenario_file(json.dumps(data), "json", "cap.json")

    def test_a_capture_with_a_schema_is_read_as_a_scenario_file(self) -> None:
        data = json.loads(CAPTURES[0].read_text())
        data["schema"] = SCHEMA
        with pytest.raises(InputError, match="unknown keys .*'devices'"):
            loads_scenario_file(json.dumps(data))


# --- the documentation ----------------------------------------------------------------------


def _doc_blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", DOC.read_text(), re.MULTILINE | re.DOTALL)


class TestDocs:
    def test_complete_examples_are_what_we_write(self) -> None:
        (toml_text,) = _doc_blocks("toml")
        json_text = _doc_blocks("json")[0]
        from_toml = loads_scenario_file(toml_text, "toml")
        from_json = loads_scenario_file(json_text, "json")
        _same(from_toml, from_json)
        sf = from_toml
        assert dumps_scenario(sf.topology, sf.scenario, "toml", drivers=sf.drivers) == toml_text
        assert dumps_scenario(sf.topology, sf.scenario, "json", drivers=sf.drivers) == json_text

    def test_error_examples_are_real(self) -> None:
        (errors,) = _doc_blocks("text")
        lines = errors.splitlines()
        (toml_text,) = _doc_blocks("toml")
        base = dict(loads_toml(toml_text))
        topology = base["topology"]
        # the page's messages are about a machine with an SR-IOV PF at 01:00.0
        topology["functions"][2]["sriov"] = {
            "total_vfs": 4,
            "num_vfs": 0,
            "offset": 1,
            "stride": 1,
            "vf_device": "0x10d3",
        }
        cases: list[dict[str, Any]] = [
            {"actions": [["insmod", "e1000"], ["insmod", "pci-stub"], ["insmod", "e1000x"]]},
            {"actions": [["load", "x"]]},
            {"actions": [["rescan"], ["rescan"], ["rescan"], ["remove", "0000:09:00.0"]]},
            {"actions": [["rescan"]] * 4 + [["sriov", "0000:01:00.0", "7"]]},
            {"probe_failures": [["nvmee", "0000:01:00.0"]]},
            {"firmware": "uefi"},
            {"drivers": [{"name": "x", "probe": "maybe"}]},
            {"action": []},
        ]
        seen = []
        for extra in cases:
            data = {k: v for k, v in base.items() if k not in ("actions", "probe_failures")}
            data.update(extra)
            with pytest.raises(InputError) as info:
                scenario_from_dict(data, "scenario.toml")
            seen.append(str(info.value))
        data = copy.deepcopy(base)
        data["topology"]["functions"][0]["vendr"] = "0x1b36"
        with pytest.raises(InputError) as info:
            scenario_from_dict(data, "scenario.toml")
        seen.append(str(info.value))
        data = {k: v for k, v in base.items() if k != "topology"}
        data["topology_file"] = "machine.toml"
        with pytest.raises(InputError) as info:
            scenario_from_dict(data, "conf/scenario.toml")
        seen.append(str(info.value))
        data["topology_file"] = "../machine.toml"
        with pytest.raises(InputError) as info:
            scenario_from_dict(data, "conf/scenario.toml")
        seen.append(str(info.value))
        with pytest.raises(InputError) as info:
            loads_scenario(
                '{\n  "schema": "iommugroups.scenario/1",\n  "name": "x",\n  "firmware": "dt",\n'
                '  "actions": [],\n  "drivers": []\n    "topology": {}\n}',
                "json",
                "scenario.json",
            )
        seen.append(str(info.value))
        assert sorted(seen) == sorted(lines)


def loads_toml(text: str) -> dict[str, Any]:
    from iommugroups._io.topology_file import parse_toml

    return parse_toml(text, "<doc>")
