"""Snapshots: ``take_snapshot`` writes what ``read_sysfs`` reads; ``read_snapshot`` gives it back.

A snapshot round-trips through JSON to the same topology, observed groups,
kernel and unknowns as reading the tree itself; a malformed snapshot is an
``InputError`` naming the key.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iommugroups._errors import InputError
from iommugroups._io.snapshot import (
    SNAPSHOT_SCHEMA,
    looks_like_snapshot,
    read_snapshot,
    take_snapshot,
)
from iommugroups._io.sysfs import read_sysfs
from iommugroups._kernel.reading import Reading, Unknown

from .test_sysfs import NO_GROUPS, device_dir, leaf, make_tree


def round_trip(root: Path | str) -> tuple[Reading, Reading]:
    snapshot = json.loads(json.dumps(take_snapshot(root)))
    return read_snapshot(snapshot, "snap.json"), read_sysfs(root)


def assert_same(from_snapshot: Reading, from_sysfs: Reading) -> None:
    assert from_snapshot.topology == from_sysfs.topology
    assert from_snapshot.observed == from_sysfs.observed
    assert from_snapshot.unknowns == from_sysfs.unknowns
    assert from_snapshot.kernel == from_sysfs.kernel
    assert from_snapshot.source == "snapshot"
    assert from_snapshot.path == "snap.json"


class TestRoundTrip:
    @pytest.mark.parametrize(
        ("name", "size"),
        [
            ("q35-1000", None),
            ("q35-1000", 256),
            ("q35-1000", 64),
            ("q35-1102", None),
            ("q35-1102", 64),
        ],
    )
    def test_equals_read_sysfs(self, tmp_path: Path, name: str, size: int | None) -> None:
        root = make_tree(tmp_path, name, size=size, drivers={"0000:00:00.0": "host"})
        from_snapshot, from_sysfs = round_trip(root)
        assert from_sysfs.topology is not None
        assert from_sysfs.observed is not None
        assert_same(from_snapshot, from_sysfs)

    @pytest.mark.parametrize("groups", ["none", "empty", "links"])
    def test_without_group_directory(self, tmp_path: Path, groups: str) -> None:
        from_snapshot, from_sysfs = round_trip(make_tree(tmp_path, groups=groups))
        assert_same(from_snapshot, from_sysfs)
        if groups != "links":
            assert from_snapshot.observed is None
            assert Unknown("", "group", NO_GROUPS) in from_snapshot.unknowns

    def test_problems_met_while_reading_are_kept(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001")
        victim = leaf("q35-1001")
        huge = "0000:00:1f.2"
        assert huge != victim
        with (device_dir(root, huge) / "config").open("r+b") as f:
            f.truncate(1 << 30)
        link = root / "sys" / "bus" / "pci" / "devices" / victim
        link.unlink()
        link.symlink_to("/etc")
        snapshot = take_snapshot(root)
        assert {u["device"] for u in snapshot["unknowns"]} == {victim, huge}
        assert len(snapshot["devices"][huge]["config_hex"]) == 2 * 4096
        assert_same(*round_trip(root))

    def test_this_machine(self) -> None:
        if not Path("/sys/bus/pci/devices").is_dir():  # pragma: no cover
            pytest.skip("no PCI in this machine's sysfs")
        from_snapshot, from_sysfs = round_trip("/")
        assert_same(from_snapshot, from_sysfs)
        assert from_snapshot.kernel == os.uname().release


class TestFormat:
    def test_schema_and_keys(self, tmp_path: Path) -> None:
        snapshot = take_snapshot(make_tree(tmp_path, drivers={"0000:00:1f.2": "ahci"}))
        assert list(snapshot) == [
            "schema",
            "taken",
            "kernel",
            "cmdline",
            "devices",
            "groups",
            "unknowns",
            "iommus",
        ]
        assert snapshot["schema"] == SNAPSHOT_SCHEMA == "iommugroups.snapshot/1"
        taken = datetime.datetime.fromisoformat(snapshot["taken"])
        assert taken.utcoffset() == datetime.timedelta(0)
        assert snapshot["kernel"] == "6.1.0-test"
        assert snapshot["cmdline"] == "BOOT_IMAGE=/vmlinuz intel_iommu=on"
        assert list(snapshot["devices"]) == sorted(snapshot["devices"])
        sata = snapshot["devices"]["0000:00:1f.2"]
        assert list(sata) == [
            "config_hex",
            "driver",
            "physfn",
            "iommu_group",
            "vendor",
            "device",
            "class",
            "vmd_domain",
        ]
        assert sata["driver"] == "ahci"
        assert sata["vendor"] == "0x8086"
        assert sata["class"].startswith("0x01")
        assert isinstance(sata["iommu_group"], int)
        assert all(isinstance(k, str) for k in snapshot["groups"])
        json.dumps(snapshot)  # plain JSON

    def test_vf_fields(self, tmp_path: Path) -> None:
        snapshot = take_snapshot(make_tree(tmp_path, "q35-1102"))
        vf = snapshot["devices"]["0000:04:00.1"]
        assert vf["physfn"] == "0000:04:00.0"
        assert vf["config_hex"].startswith("ffffffff")

    def test_looks_like_snapshot(self, tmp_path: Path) -> None:
        assert looks_like_snapshot(take_snapshot(make_tree(tmp_path)))
        assert looks_like_snapshot({"schema": "iommugroups.snapshot/2"})
        assert not looks_like_snapshot({"schema": "iommugroups.topology/1"})
        assert not looks_like_snapshot({"devices": {}})
        assert not looks_like_snapshot([SNAPSHOT_SCHEMA])

    def test_unknown_keys_are_ignored(self, tmp_path: Path) -> None:
        snapshot = take_snapshot(make_tree(tmp_path))
        snapshot["later"] = {"anything": 1}
        for dev in snapshot["devices"].values():
            dev["numa_node"] = 0
        reading = read_snapshot(snapshot)
        assert reading.topology is not None

    def test_minimal_snapshot(self) -> None:
        reading = read_snapshot({"schema": SNAPSHOT_SCHEMA, "devices": {}}, "min.json")
        assert reading.topology is not None
        assert len(reading.topology) == 0
        assert reading.observed is None
        assert reading.kernel is None

    def test_addresses_are_normalised(self, tmp_path: Path) -> None:
        snapshot = take_snapshot(make_tree(tmp_path))
        devices = snapshot["devices"]
        devices["00:1f.2"] = devices.pop("0000:00:1f.2")
        groups = snapshot["groups"]
        for gid, members in groups.items():
            groups[gid] = [m.replace("0000:00:1f.2", "00:1f.2") for m in members]
        assert read_snapshot(snapshot) == read_snapshot(take_snapshot(make_tree(tmp_path / "b")))


def _bad(snapshot: dict[str, Any], edit: str) -> dict[str, Any]:
    bad = copy.deepcopy(snapshot)
    dev = bad["devices"]["0000:00:00.0"]
    if edit == "schema-missing":
        del bad["schema"]
    elif edit == "schema-other":
        bad["schema"] = "iommugroups.topology/1"
    elif edit == "schema-v2":
        bad["schema"] = "iommugroups.snapshot/2"
    elif edit == "devices-list":
        bad["devices"] = []
    elif edit == "devices-missing":
        del bad["devices"]
    elif edit == "address":
        bad["devices"]["not-an-address"] = dev
    elif edit == "address-twice":
        bad["devices"]["00:00.0"] = dev
    elif edit == "device-not-object":
        bad["devices"]["0000:00:00.0"] = "x"
    elif edit == "config-odd":
        dev["config_hex"] = dev["config_hex"][:-1]
    elif edit == "config-not-hex":
        dev["config_hex"] = "zz" + dev["config_hex"][2:]
    elif edit == "config-too-long":
        dev["config_hex"] = "00" * 4097
    elif edit == "config-number":
        dev["config_hex"] = 12
    elif edit == "vendor":
        dev["vendor"] = "0x123456"
    elif edit == "vendor-bool":
        dev["vendor"] = True
    elif edit == "class":
        dev["class"] = "purple"
    elif edit == "group-negative":
        dev["iommu_group"] = -1
    elif edit == "group-bool":
        dev["iommu_group"] = False
    elif edit == "group-text":
        dev["iommu_group"] = "seven"
    elif edit == "driver":
        dev["driver"] = "two words"
    elif edit == "physfn":
        dev["physfn"] = "nope"
    elif edit == "kernel":
        bad["kernel"] = 6
    elif edit == "groups-list":
        bad["groups"] = [["0000:00:00.0"]]
    elif edit == "groups-key":
        bad["groups"]["x"] = []
    elif edit == "groups-members":
        bad["groups"]["0"] = "0000:00:00.0"
    elif edit == "groups-twice":
        bad["groups"]["999"] = ["0000:00:00.0"]
    elif edit == "groups-name":
        bad["groups"]["999"] = [17]
    elif edit == "unknowns-object":
        bad["unknowns"] = {}
    elif edit == "unknowns-item":
        bad["unknowns"] = [{"device": "", "fact": 1, "why": ""}]
    elif edit == "not-object":
        return ["snapshot"]  # type: ignore[return-value]
    else:  # pragma: no cover
        raise AssertionError(edit)
    return bad


BAD_EDITS = [
    "schema-missing",
    "schema-other",
    "schema-v2",
    "devices-list",
    "devices-missing",
    "address",
    "address-twice",
    "device-not-object",
    "config-odd",
    "config-not-hex",
    "config-too-long",
    "config-number",
    "vendor",
    "vendor-bool",
    "class",
    "group-negative",
    "group-bool",
    "group-text",
    "driver",
    "physfn",
    "kernel",
    "groups-list",
    "groups-key",
    "groups-members",
    "groups-twice",
    "groups-name",
    "unknowns-object",
    "unknowns-item",
    "not-object",
]


@pytest.fixture(scope="module")
def good_snapshot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return take_snapshot(make_tree(tmp_path_factory.mktemp("snap")))


@pytest.mark.parametrize("edit", BAD_EDITS)
def test_bad_snapshots(good_snapshot: dict[str, Any], edit: str) -> None:
    with pytest.raises(InputError) as info:
        read_snapshot(_bad(good_snapshot, edit), "bad.json")
    assert info.value.path == "bad.json"


def test_version_message(good_snapshot: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="version 2 is not supported"):
        read_snapshot(_bad(good_snapshot, "schema-v2"), "bad.json")


def test_take_snapshot_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        take_snapshot(tmp_path / "missing")
    with pytest.raises(InputError, match="not a sysfs tree"):
        take_snapshot(tmp_path)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70000) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_only_input_errors(good_snapshot: dict[str, Any], data: st.DataObject) -> None:
    """Any edit of a snapshot reads or raises ``InputError``, nothing else."""
    snapshot = copy.deepcopy(good_snapshot)
    for _ in range(data.draw(st.integers(1, 4))):
        target: Any = snapshot
        keys = []
        while isinstance(target, (dict, list)) and target and data.draw(st.booleans()):
            key = data.draw(
                st.sampled_from(sorted(target) if isinstance(target, dict) else range(len(target)))
            )
            keys.append(key)
            if not isinstance(target[key], (dict, list)):
                break
            target = target[key]
        if isinstance(target, dict) and target:
            key = data.draw(st.sampled_from(sorted(target)))
            if data.draw(st.booleans()):
                del target[key]
            else:
                target[key] = data.draw(_JSON)
        elif isinstance(target, list) and target:
            target[data.draw(st.integers(0, len(target) - 1))] = data.draw(_JSON)
    try:
        reading = read_snapshot(snapshot, "fuzz.json")
    except InputError:
        return
    assert isinstance(reading, Reading)
