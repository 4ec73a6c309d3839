"""Our topology file format, ``iommugroups.topology/1`` (docs/topology-format.md).

Round trips: ``topology_from_dict(topology_to_dict(t)) == t`` for every
topology, and a file we wrote is written again byte for byte after reading.
Every problem in a file is one ``InputError`` naming the field path (or the
line, for syntax errors).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iommugroups import examples
from iommugroups._errors import InputError
from iommugroups._io.topology_file import (
    SCHEMA,
    TopologyFormat,
    dumps_topology,
    loads_topology,
    topology_from_dict,
    topology_to_dict,
)
from iommugroups._kernel.model import (
    Acs,
    AcsFlags,
    IdMapping,
    IommuInstance,
    IommuKind,
    PciAddress,
    PcieType,
    PciFunction,
    PlatformDevice,
    SriovCapability,
    Topology,
)
from iommugroups.testing import topologies

from .helpers import ISOLATING, bridge, ep

DOC = Path(__file__).parent.parent / "docs" / "topology-format.md"
FORMATS: tuple[TopologyFormat, ...] = ("json", "toml")
FULL = AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF


# --- hand-built topologies ------------------------------------------------------


def _switch_and_bridges() -> Topology:
    """Root ports with and without ACS, a switch, a PCIe-to-PCI bridge, aliases."""
    return Topology(
        [
            PciFunction("00:00.0", vendor=0x8086, device=0x3E30, class_code=0x060000),
            bridge("00:1c.0", 0x01, 0x03, acs=ISOLATING, mf=True),
            bridge("00:1c.4", 0x04, acs=Acs(FULL, AcsFlags.NONE)),
            bridge("00:1e.0", 0x05, kind=PcieType.PCI_BRIDGE, vendor=0x8086, device=0x244E),
            bridge("01:00.0", 0x02, 0x03, kind=PcieType.UPSTREAM),
            bridge("02:00.0", 0x03, kind=PcieType.DOWNSTREAM, acs=ISOLATING),
            ep("03:00.0", vendor=0x10DE, device=0x1C82, class_code=0x030000, mf=True),
            ep("03:00.1", vendor=0x10DE, device=0x0FB9, class_code=0x040300, mf=True),
            ep("04:00.0", kind=PcieType.LEG_END),
            ep("05:01.0", kind=None, aliases=frozenset({0x00, 0x0A, 0xFF})),
            PciFunction(
                "00:1f.3",
                vendor=0x8086,
                device=0xA348,
                class_code=0x040380,
                multifunction=True,
                pcie_type=PcieType.RC_END,
                subsystem_vendor=0x1028,
                subsystem_device=0x0869,
                unknown={"acs", "sriov"},
            ),
        ],
        name="bridges",
    )


def _sriov() -> Topology:
    """A PF with VFs on its own bus and on a virtual bus above the bridge's range."""
    pf = PciFunction(
        "01:00.0",
        vendor=0x8086,
        device=0x1572,
        class_code=0x020000,
        pcie_type=PcieType.ENDPOINT,
        acs=Acs(FULL, FULL),
        sriov=SriovCapability(total_vfs=64, num_vfs=3, offset=0x7F, stride=0x80, vf_device=0x154C),
        driver="i40e",
    )
    vfs = [
        PciFunction(
            addr,
            vendor=0x8086,
            device=0x154C,
            class_code=0x020000,
            pcie_type=PcieType.ENDPOINT,
            physfn="01:00.0",
            driver="iavf" if i else None,
        )
        for i, addr in enumerate(["01:0f.7", "01:1f.7", "02:0f.7"])
    ]
    return Topology(
        [PciFunction("00:00.0", vendor=0x8086), bridge("00:01.0", 0x01, acs=ISOLATING), pf, *vfs]
    )


def _arm64() -> Topology:
    """Platform devices, IOMMU instances and ID mappings, with a wide VMD-style domain."""
    return Topology(
        [
            PciFunction("10000:00:00.0", vendor=0x19E5, device=0xA120, class_code=0x060400),
            bridge("10000:00:08.0", 0x7D, 0x7E, vendor=0x19E5, device=0xA121),
            ep("10000:7d:00.0", vendor=0x15B3, device=0x1017, class_code=0x020000),
        ],
        platform_devices=[
            PlatformDevice(
                "HISI0162:01", iommu="smmu1", stream_ids=(0x7F00, 3), driver="hisi_sas"
            ),
            PlatformDevice("uart0", bus="amba"),
        ],
        iommus=[
            IommuInstance("smmu0", IommuKind.SMMU_V3),
            IommuInstance("smmu1", IommuKind.SMMU_V2),
            IommuInstance("viommu", IommuKind.VIRTIO_IOMMU),
        ],
        id_mappings=[
            IdMapping(
                domain=0x10000, rid_base=0x7D00, count=0x200, output_base=0x7D00, iommu="smmu0"
            ),
            IdMapping(domain=0, rid_base=0, count=0x10000, output_base=0, iommu="smmu1"),
        ],
        name="d05-like ünicode",
    )


TOPOLOGIES: dict[str, Callable[[], Topology]] = {
    "empty": lambda: Topology([]),
    "bare-function": lambda: Topology([PciFunction("00:00.0")]),
    "bridges": _switch_and_bridges,
    "sriov": _sriov,
    "arm64": _arm64,
    "desktop": examples.desktop,
}


@pytest.fixture(params=sorted(TOPOLOGIES))
def topo(request: pytest.FixtureRequest) -> Topology:
    return TOPOLOGIES[request.param]()


# --- round trips ---------------------------------------------------------------------


class TestRoundTrip:
    def test_dict(self, topo: Topology) -> None:
        assert topology_from_dict(topology_to_dict(topo)) == topo

    def test_dict_survives_json(self, topo: Topology) -> None:
        data = json.loads(json.dumps(topology_to_dict(topo)))
        assert topology_from_dict(data) == topo

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_text(self, topo: Topology, fmt: TopologyFormat) -> None:
        text = dumps_topology(topo, fmt)
        back = loads_topology(text, fmt, "t")
        assert back == topo
        assert back.name == topo.name
        assert dumps_topology(back, fmt) == text

    def test_json_and_toml_hold_the_same(self, topo: Topology) -> None:
        assert loads_topology(dumps_topology(topo, "toml"), "toml") == loads_topology(
            dumps_topology(topo, "json"), "json"
        )

    def test_function_order_is_kept(self) -> None:
        topo = _switch_and_bridges()
        shuffled = topo.replace(functions=tuple(reversed(topo.functions)))
        assert topology_from_dict(topology_to_dict(shuffled)).functions == shuffled.functions


class TestWriting:
    def test_json_layout(self) -> None:
        text = dumps_topology(Topology([PciFunction("00:02.0", vendor=0x8086)]), "json")
        assert text == (
            "{\n"
            '  "schema": "iommugroups.topology/1",\n'
            '  "functions": [\n'
            "    {\n"
            '      "address": "0000:00:02.0",\n'
            '      "vendor": "0x8086"\n'
            "    }\n"
            "  ]\n"
            "}\n"
        )

    def test_defaults_are_left_out(self) -> None:
        data = topology_to_dict(Topology([PciFunction("00:00.0")]))
        assert data == {"schema": SCHEMA, "functions": [{"address": "0000:00:00.0"}]}

    def test_schema_then_name_first(self) -> None:
        data = topology_to_dict(_arm64())
        assert list(data)[:3] == ["schema", "name", "functions"]

    def test_value_spellings(self) -> None:
        data = topology_to_dict(_switch_and_bridges())
        fns = {f["address"]: f for f in data["functions"]}
        port = fns["0000:00:1c.0"]
        assert port["vendor"] == "0x1b36"
        assert port["class_code"] == "0x060400"
        assert port["secondary_bus"] == "0x01"
        assert port["subordinate_bus"] == "0x03"
        assert port["pcie_type"] == "root_port"
        assert port["acs"] == {"cap": "SV|TB|RR|CR|UF", "ctrl": "SV|RR|CR|UF"}
        assert fns["0000:00:1c.4"]["acs"]["ctrl"] == ""
        assert fns["0000:05:01.0"]["dma_alias_devfns"] == ["00.0", "01.2", "1f.7"]
        assert "pcie_type" not in fns["0000:05:01.0"]
        audio = fns["0000:00:1f.3"]
        assert audio["unknown"] == ["acs", "sriov"]
        assert (audio["subsystem_vendor"], audio["subsystem_device"]) == ("0x1028", "0x0869")

    def test_arm64_spellings(self) -> None:
        data = topology_to_dict(_arm64())
        assert data["iommus"][1] == {"name": "smmu1", "kind": "smmuv2"}
        assert data["id_mappings"][0] == {
            "domain": "0x10000",
            "rid_base": "0x7d00",
            "count": 512,
            "output_base": 32000,
            "iommu": "smmu0",
        }
        assert data["platform_devices"][1] == {"name": "uart0", "bus": "amba"}
        assert data["functions"][0]["address"] == "10000:00:00.0"

    def test_sriov_spelling(self) -> None:
        data = topology_to_dict(_sriov())
        assert data["functions"][2]["sriov"] == {
            "total_vfs": 64,
            "num_vfs": 3,
            "offset": 127,
            "stride": 128,
            "vf_device": "0x154c",
        }
        assert data["functions"][3]["physfn"] == "0000:01:00.0"

    def test_toml_tables(self) -> None:
        text = dumps_topology(_sriov(), "toml")
        assert text.startswith('schema = "iommugroups.topology/1"\n')
        assert "[[functions]]" in text
        assert "[functions.sriov]" in text
        assert "[functions.acs]" in text

    def test_unknown_format(self) -> None:
        with pytest.raises(ValueError, match="unknown topology format 'yaml'"):
            dumps_topology(Topology([]), "yaml")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="unknown topology format"):
            loads_topology("", "yaml")  # type: ignore[arg-type]


# --- what reading accepts ------------------------------------------------------------


def _one(fn: dict[str, Any], **top: Any) -> PciFunction:
    return topology_from_dict({"functions": [fn], **top}).functions[0]


class TestAccepted:
    @pytest.mark.parametrize("value", [0x8086, "0x8086", "8086", "0X8086", " 0x8086 "])
    def test_hex_ids(self, value: object) -> None:
        fn = _one({"address": "00:00.0", "vendor": value, "subsystem_device": value})
        assert fn.vendor == fn.subsystem_device == 0x8086

    def test_class_code_and_buses_in_hex(self) -> None:
        fn = _one(
            {
                "address": "00:01.0",
                "class_code": "060400",
                "header_type": 1,
                "secondary_bus": "10",
                "subordinate_bus": 0x1F,
            }
        )
        assert (fn.class_code, fn.secondary_bus, fn.subordinate_bus) == (0x060400, 0x10, 0x1F)

    def test_toml_hex_integers(self) -> None:
        text = '[[functions]]\naddress = "00:1f.0"\nvendor = 0x8086\nclass_code = 0x060100\n'
        fn = loads_topology(text, "toml").functions[0]
        assert (fn.vendor, fn.class_code) == (0x8086, 0x060100)

    @pytest.mark.parametrize(
        ("text", "want"),
        [
            ("00:1c.0", "0000:00:1c.0"),
            ("0001:0A:1F.7", "0001:0a:1f.7"),
            ("10000:e0:01.1", "10000:e0:01.1"),
        ],
    )
    def test_addresses(self, text: str, want: str) -> None:
        assert _one({"address": text}).address == PciAddress.parse(want)

    @pytest.mark.parametrize(
        ("value", "want"),
        [
            ("root_port", PcieType.ROOT_PORT),
            ("ROOT_PORT", PcieType.ROOT_PORT),
            ("PCI_EXP_TYPE_DOWNSTREAM", PcieType.DOWNSTREAM),
            ("pci_exp_type_rc_end", PcieType.RC_END),
            ("Pcie_Bridge", PcieType.PCIE_BRIDGE),
            (4, PcieType.ROOT_PORT),
            (None, None),
        ],
    )
    def test_pcie_type(self, value: object, want: PcieType | None) -> None:
        assert _one({"address": "00:00.0", "pcie_type": value}).pcie_type is want

    @pytest.mark.parametrize(
        ("value", "want"),
        [
            ("SV|RR|CR|UF", FULL),
            ("sv, rr cr|uf", FULL),
            ("", AcsFlags.NONE),
            ("-", AcsFlags.NONE),
            ("DT|EC|TB", AcsFlags.DT | AcsFlags.EC | AcsFlags.TB),
            (0x1D, FULL),
            (0, AcsFlags.NONE),
        ],
    )
    def test_acs_flags(self, value: object, want: AcsFlags) -> None:
        fn = _one({"address": "00:00.0", "acs": {"cap": value, "ctrl": value}})
        assert fn.acs == Acs(want, want)

    @pytest.mark.parametrize(
        ("value", "want"), [("1f.7", 0xFF), ("0.1", 1), (10, 10), ("0x0a", 10), ("02.0", 0x10)]
    )
    def test_devfns(self, value: object, want: int) -> None:
        fn = _one({"address": "00:00.0", "dma_alias_devfns": [value, value]})
        assert fn.dma_alias_devfns == frozenset({want})

    @pytest.mark.parametrize("value", ["smmuv3", "SMMUv3", "SMMU_V3", "smmu_v3"])
    def test_iommu_kind(self, value: str) -> None:
        topo = topology_from_dict({"functions": [], "iommus": [{"name": "s", "kind": value}]})
        assert topo.iommus[0].kind is IommuKind.SMMU_V3

    def test_nulls_mean_absent(self) -> None:
        fn = _one(
            {
                "address": "00:00.0",
                "pcie_type": None,
                "acs": None,
                "physfn": None,
                "sriov": None,
                "driver": None,
                "secondary_bus": None,
            }
        )
        assert fn == PciFunction("00:00.0")

    def test_schema_may_be_missing(self) -> None:
        assert topology_from_dict({"functions": []}) == Topology([])

    def test_counts_take_0x_strings(self) -> None:
        topo = topology_from_dict(
            {
                "functions": [],
                "platform_devices": [{"name": "x", "stream_ids": ["0x10", 17]}],
            }
        )
        assert topo.platform_devices[0].stream_ids == (16, 17)


# --- what reading refuses ----------------------------------------------------------------


def _base() -> dict[str, Any]:
    return topology_to_dict(_sriov()) | {
        "platform_devices": [{"name": "dev0", "iommu": "smmu0", "stream_ids": [1]}],
        "iommus": [{"name": "smmu0", "kind": "smmuv3"}],
        "id_mappings": [
            {"domain": 0, "rid_base": 0, "count": 16, "output_base": 0, "iommu": "smmu0"}
        ],
    }


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A mutation: set ``a.b[2].c`` to ``value`` (``...`` deletes it)."""

    def apply(data: dict[str, Any]) -> None:
        keys: list[Any] = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]
        target: Any = data
        for key in keys[:-1]:
            target = target[key]
        if value is ...:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value

    return apply


# functions[2] is the PF 0000:01:00.0; functions[1] the root port 0000:00:01.0.
ERRORS: list[tuple[str, object, str]] = [
    (
        "functions[1].acs.ctrl",
        "SV|XX",
        "functions[1].acs.ctrl: unknown ACS flag 'XX' (known flags: SV|TB|RR|CR|UF|EC|DT) "
        "[0000:00:01.0]",
    ),
    ("functions[1].acs.cap", 0x80, "functions[1].acs.cap: ACS flags 0x80 have bits outside"),
    ("functions[1].acs.cap", True, "functions[1].acs.cap: expected ACS flags"),
    ("functions[1].acs.ctrl", ..., "functions[1].acs.ctrl: required key missing"),
    ("functions[1].acs", "SV", "functions[1].acs: expected an object, got the string 'SV'"),
    (
        "functions[2].vendor",
        "zz",
        "functions[2].vendor: expected a vendor id (an integer or a hex string like '0x8086'), "
        "got the string 'zz' [0000:01:00.0]",
    ),
    (
        "functions[2].vendor",
        0x18086,
        "functions[2].vendor: 0x18086 is out of range for a vendor id (0x0000-0xffff)",
    ),
    ("functions[2].device", -1, "functions[2].device: -0x0001 is out of range"),
    ("functions[2].vendor", 1.5, "functions[2].vendor: expected a vendor id"),
    ("functions[2].vendor", True, "got a boolean (true)"),
    ("functions[2].class_code", "0x1000000", "0x1000000 is out of range for a class code"),
    ("functions[1].secondary_bus", "0x100", "functions[1].secondary_bus: 0x100 is out of range"),
    ("functions[2].header_type", "1", "functions[2].header_type: expected a non-negative"),
    ("functions[2].header_type", -1, "expected a non-negative integer, got -1"),
    ("functions[2].multifunction", "yes", "expected true or false, got the string 'yes'"),
    ("functions[2].multifunction", 1, "expected true or false, got the integer 1"),
    ("functions[2].driver", 5, "functions[2].driver: expected a string, got the integer 5"),
    ("functions[2].pcie_type", "rootport", "functions[2].pcie_type: unknown PCIe type 'rootport'"),
    ("functions[2].pcie_type", 3, "functions[2].pcie_type: 0x3 is not a PCIe port type"),
    ("functions[2].pcie_type", [], "functions[2].pcie_type: expected a PCIe type"),
    ("functions[2].address", "00:20.0", "functions[2].address: PCI device 0x20 out of range"),
    ("functions[2].address", "nope", "functions[2].address: not a PCI address: 'nope'"),
    ("functions[2].address", 0, "functions[2].address: expected a PCI address"),
    ("functions[2].address", ..., "functions[2].address: required key missing"),
    ("functions[3].physfn", "bus", "functions[3].physfn: not a PCI address"),
    ("functions[2].unknown", "acs", "functions[2].unknown: expected a list, got the string"),
    ("functions[2].unknown", [1], "functions[2].unknown[0]: expected a string, got the integer 1"),
    (
        "functions[2].dma_alias_devfns",
        ["1f.0", "20.0", 300, "x"],
        "functions[2].dma_alias_devfns[1]: devfn '20.0': slot 0x20 is out of range 00-1f "
        "[0000:01:00.0]; functions[2].dma_alias_devfns[2]: devfn 0x12c is out of range "
        "0x00-0xff [0000:01:00.0]; functions[2].dma_alias_devfns[3]: 'x' is not a devfn",
    ),
    ("functions[2].sriov.vf_device", "g", "functions[2].sriov.vf_device: expected a VF device"),
    ("functions[2].sriov.stride", ..., "functions[2].sriov.stride: required key missing"),
    ("functions[2].sriov", [], "functions[2].sriov: expected an object, got a list"),
    ("functions[2]", "x", "functions[2]: expected an object, got the string 'x'"),
    ("functions[2]", None, "functions[2]: expected an object, got null"),
    ("functions", "abc", "functions: expected a list, got the string 'abc'"),
    ("functions", {}, "functions: expected a list, got an object"),
    ("functions", ..., "functions: required key missing"),
    ("name", 3, "name: expected a string, got the integer 3"),
    ("iommus[0].kind", "x", "iommus[0].kind: unknown IOMMU kind 'x' (one of: smmuv3, smmuv2,"),
    ("iommus[0].kind", 3, "iommus[0].kind: expected an IOMMU kind"),
    ("iommus[0].name", ..., "iommus[0].name: required key missing"),
    ("id_mappings[0].count", "12", "id_mappings[0].count: expected a non-negative integer"),
    ("id_mappings[0].rid_base", "0x10000", "id_mappings[0].rid_base: 0x10000 is out of range"),
    ("id_mappings[0].domain", "0x100000000", "id_mappings[0].domain: 0x100000000 is out of"),
    (
        "platform_devices[0].stream_ids",
        [1, "a", True],
        "platform_devices[0].stream_ids[1]: expected a non-negative integer (an integer or a "
        "'0x' hex string), got the string 'a' [dev0]; platform_devices[0].stream_ids[2]: "
        "expected a non-negative integer (an integer or a '0x' hex string), got a boolean",
    ),
    ("platform_devices[0].iommu", 0, "platform_devices[0].iommu: expected a string"),
    ("platform_devices", "dev0", "platform_devices: expected a list"),
]


class TestRefused:
    @pytest.mark.parametrize(("where", "value", "message"), ERRORS)
    def test_field_error(self, where: str, value: object, message: str) -> None:
        data = _base()
        _set(where, value)(data)
        with pytest.raises(InputError) as info:
            topology_from_dict(data, "topo.json")
        err = info.value
        assert err.path == "topo.json"
        assert err.line is None
        assert message in err.problem
        assert str(err) == f"topo.json: {err.problem}"
        assert err.__cause__ is not None  # the cattrs exception group, kept for debugging

    @pytest.mark.parametrize(
        ("where", "key", "message"),
        [
            ("", "functons", "unknown key 'functons' (did you mean 'functions'?)"),
            ("", "zzz", "unknown key 'zzz' (known keys: schema, functions, platform_devices,"),
            (
                "functions[2]",
                "zzz",
                "functions[2]: unknown key 'zzz' (known keys: address, vendor",
            ),
            (
                "functions[1].acs",
                "zzz",
                "functions[1].acs: unknown key 'zzz' (known keys: cap, ctrl)",
            ),
            ("functions[2].sriov", "zzz", "functions[2].sriov: unknown key 'zzz'"),
            ("iommus[0]", "zzz", "iommus[0]: unknown key 'zzz' (known keys: name, kind)"),
            ("id_mappings[0]", "zzz", "id_mappings[0]: unknown key 'zzz'"),
            ("platform_devices[0]", "zzz", "platform_devices[0]: unknown key 'zzz'"),
        ],
    )
    def test_unknown_key(self, where: str, key: str, message: str) -> None:
        data = _base()
        target: Any = data
        for part in re.findall(r"[^.\[\]]+", where):
            target = target[int(part) if part.isdigit() else part]
        target[key] = 1
        with pytest.raises(InputError, match=re.escape(message)):
            topology_from_dict(data)

    def test_two_unknown_keys(self) -> None:
        data = _base()
        data["functions"][0] |= {"zzz": 1, "yyy": 2}
        with pytest.raises(InputError) as info:
            topology_from_dict(data)
        assert "unknown key 'yyy'" in info.value.problem
        assert "unknown key 'zzz'" in info.value.problem

    def test_misspelt_key_suggests(self) -> None:
        data = _base()
        data["functions"][2]["vendr"] = "0x8086"
        with pytest.raises(InputError) as info:
            topology_from_dict(data)
        assert info.value.problem == (
            "functions[2]: unknown key 'vendr' (did you mean 'vendor'?) [0000:01:00.0]"
        )

    def test_top_level_schema_is_a_known_key(self) -> None:
        data = _base()
        data["shema"] = SCHEMA
        with pytest.raises(InputError, match=r"unknown key 'shema' \(did you mean 'schema'\?\)"):
            topology_from_dict(data)

    @pytest.mark.parametrize("schema", ["iommugroups.topology/2", "", "other", 1, None])
    def test_wrong_schema(self, schema: object) -> None:
        data = _base() | {"schema": schema}
        with pytest.raises(InputError) as info:
            topology_from_dict(data, "t.toml")
        assert info.value.problem == (
            f"schema: unsupported schema {schema!r} (this version reads {SCHEMA!r})"
        )

    @pytest.mark.parametrize("data", [[], "x", 3, None])
    def test_top_level_not_an_object(self, data: object) -> None:
        with pytest.raises(InputError, match="expected an object at the top level"):
            topology_from_dict(data)

    def test_many_problems_are_counted(self) -> None:
        data = {"functions": [{"address": "00:00.0", "vendor": "x"}] * 14}
        with pytest.raises(InputError) as info:
            topology_from_dict(data)
        assert info.value.problem.count("functions[") == 10
        assert info.value.problem.endswith("; and 4 more problems")

    def test_input_is_not_modified(self) -> None:
        data = _base()
        before = copy.deepcopy(data)
        topology_from_dict(data)
        assert data == before

    def test_errors_are_value_errors(self) -> None:
        with pytest.raises(ValueError, match="schema"):
            topology_from_dict({"schema": "x", "functions": []})


class TestTopologyErrors:
    """Model validation (TopologyError) surfaces as an InputError naming the devices."""

    def test_duplicate_address(self) -> None:
        data = {"functions": [{"address": "00:00.0"}, {"address": "0000:00:00.0"}]}
        with pytest.raises(InputError) as info:
            topology_from_dict(data, "dup.json")
        assert str(info.value) == "dup.json: duplicate PCI address 0000:00:00.0"

    def test_missing_pf(self) -> None:
        data = {"functions": [{"address": "00:00.0"}, {"address": "00:01.0", "physfn": "00:00.7"}]}
        with pytest.raises(InputError, match=r"names PF 0000:00:00\.7, which is not in the"):
            topology_from_dict(data)

    def test_bus_claimed_twice(self) -> None:
        data = {
            "functions": [
                {"address": "00:01.0", "header_type": 1, "secondary_bus": "0x01"},
                {"address": "00:02.0", "header_type": 1, "secondary_bus": "0x01"},
            ]
        }
        with pytest.raises(InputError, match="claimed by two bridges"):
            topology_from_dict(data)


class TestSyntaxErrors:
    def test_json_line(self) -> None:
        text = '{\n  "functions": [\n    {"address": "00:00.0"}\n    {"address": "00:01.0"}\n]}\n'
        with pytest.raises(InputError) as info:
            loads_topology(text, "json", "bad.json")
        assert info.value.line == 4
        assert str(info.value) == "bad.json:4: invalid JSON: Expecting ',' delimiter (column 5)"

    def test_toml_line(self) -> None:
        text = '[[functions]]\naddress = "00:00.0"\nvendor = 0xzz\n'
        with pytest.raises(InputError) as info:
            loads_topology(text, "toml", "bad.toml")
        assert info.value.line == 3
        assert info.value.problem.startswith("invalid TOML: ")
        assert "at line" not in info.value.problem

    def test_toml_end_of_file(self) -> None:
        text = '[[functions]]\naddress = "00:00.0'
        with pytest.raises(InputError) as info:
            loads_topology(text, "toml", "bad.toml")
        assert info.value.line is not None
        assert str(info.value).startswith("bad.toml:")

    def test_toml_duplicate_key(self) -> None:
        with pytest.raises(InputError, match="invalid TOML") as info:
            loads_topology('schema = "a"\nschema = "b"\n', "toml")
        assert info.value.line == 2

    def test_json_duplicate_key(self) -> None:
        with pytest.raises(InputError, match="invalid JSON: duplicate key 'vendor'"):
            loads_topology(
                '{"functions": [{"address": "00:00.0", "vendor": 1, "vendor": 2}]}', "json"
            )

    def test_json_nested_too_deep(self) -> None:
        with pytest.raises(InputError, match="invalid JSON"):
            loads_topology("[" * 100_000 + "]" * 100_000, "json")

    @pytest.mark.parametrize(
        ("fmt", "text"),
        [("json", '{"functions": [], "x": ' + "1" * 5000 + "}"), ("toml", "x = " + "1" * 5000)],
    )
    def test_integer_too_long(self, fmt: TopologyFormat, text: str) -> None:
        # Python's int conversion limit (3.10.7+) or our unknown-key check: never a ValueError
        with pytest.raises(InputError):
            loads_topology(text, fmt)

    def test_toml_semantic_error_has_no_line(self) -> None:
        with pytest.raises(InputError) as info:
            loads_topology('[[functions]]\naddress = "00:00.0"\nvendor = "x"\n', "toml", "t.toml")
        assert info.value.line is None
        assert info.value.problem.startswith("functions[0].vendor: ")


# --- the documentation's examples -------------------------------------------------------------


def _doc_blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", DOC.read_text(), re.MULTILINE | re.DOTALL)


class TestDocs:
    def test_complete_examples_are_what_we_write(self) -> None:
        (json_text,) = _doc_blocks("json")
        toml_text = _doc_blocks("toml")[0]
        topo = loads_topology(json_text, "json")
        assert loads_topology(toml_text, "toml") == topo
        assert dumps_topology(topo, "json") == json_text
        assert dumps_topology(topo, "toml") == toml_text
        assert {f.address.bus for f in topo} == {0, 1, 2}
        assert topo.vfs_of(PciAddress.parse("01:00.0"))

    def test_short_toml_example(self) -> None:
        short = _doc_blocks("toml")[1]
        (fn,) = loads_topology(short, "toml").functions
        assert (fn.vendor, fn.device, fn.class_code) == (0x1B36, 0x0008, 0x060000)

    def test_platform_example(self) -> None:
        """The x86 platform section's example (rules R11, R1.9) reads, and the ids
        follow the DMAR units: the graphics unit's device gets group 0."""
        from iommugroups import canonical_groups

        topo = loads_topology(_doc_blocks("toml")[2], "toml")
        assert [u.name for u in topo.platform.units] == ["dmar0", "dmar1"]
        assert topo.platform.vmd_endpoint(0x10000) == PciAddress.parse("00:0e.0")
        groups = canonical_groups(topo)
        assert groups.group_of("00:02.0") == 0
        assert groups.same_group("00:0e.0", "10000:e1:00.0")
        assert loads_topology(dumps_topology(topo, "toml"), "toml") == topo

    def test_error_examples_are_real(self) -> None:
        (errors,) = re.findall(r"^```text\n(.*?)^```$", DOC.read_text(), re.MULTILINE | re.DOTALL)
        data = _base()
        data["functions"][2]["vendor"] = 0x18086
        with pytest.raises(InputError) as info:
            topology_from_dict(data, "topo.json")
        # the message shape (field path, then address) is what the page shows
        line = next(x for x in errors.splitlines() if ".vendor:" in x)
        assert str(info.value) == line


# --- property: every topology round-trips ------------------------------------------------

_ids = st.integers(0, 0xFFFF)
_flags = st.builds(AcsFlags.from_word, st.integers(0, 0x7F))


@st.composite
def flat_topologies(draw: st.DrawFn) -> Topology:
    """Functions on root bus 0 with random ids, ACS, aliases and PCIe types."""
    devfns = draw(st.lists(st.integers(0, 0xFF), unique=True, max_size=12))
    functions = [
        PciFunction(
            PciAddress.from_devfn(draw(st.sampled_from([0, 1, 0x10000])), 0, devfn),
            vendor=draw(_ids),
            device=draw(_ids),
            class_code=draw(st.integers(0, 0xFFFFFF)),
            multifunction=draw(st.booleans()),
            pcie_type=draw(st.none() | st.sampled_from(PcieType)),
            acs=draw(st.none() | st.builds(Acs, _flags, _flags)),
            dma_alias_devfns=draw(st.frozensets(st.integers(0, 0xFF), max_size=3)),
            driver=draw(st.none() | st.text(max_size=8)),
            subsystem_vendor=draw(_ids),
            subsystem_device=draw(_ids),
            unknown=draw(st.frozensets(st.sampled_from(["acs", "pcie", "sriov"]))),
        )
        for devfn in devfns
    ]
    platform = draw(
        st.lists(
            st.builds(
                PlatformDevice,
                name=st.text(min_size=1, max_size=8),
                iommu=st.none() | st.just("smmu0"),
                stream_ids=st.lists(st.integers(0, 2**32 - 1), max_size=3).map(tuple),
                driver=st.none() | st.text(max_size=4),
                bus=st.sampled_from(["platform", "amba"]),
            ),
            max_size=2,
            unique_by=lambda d: d.name,  # the kernel's device names are unique
        )
    )
    mappings = draw(
        st.lists(
            st.builds(
                IdMapping,
                domain=st.integers(0, 0xFFFFFFFF),
                rid_base=_ids,
                count=st.integers(0, 0x10000),
                output_base=st.integers(0, 2**32),
                iommu=st.just("smmu0"),
            ),
            max_size=2,
        )
    )
    iommus = draw(
        st.lists(
            st.builds(IommuInstance, st.text(max_size=6), st.sampled_from(IommuKind)), max_size=2
        )
    )
    return Topology(
        functions,
        platform_devices=platform,
        iommus=iommus,
        id_mappings=mappings,
        name=draw(st.text(max_size=10)),
    )


class TestRoundTripProperty:
    """Every valid topology survives both spellings unchanged."""

    @settings(max_examples=50, deadline=None)
    @given(topo=flat_topologies() | topologies(max_functions=20))
    def test_round_trip(self, topo: Topology) -> None:
        assert topology_from_dict(topology_to_dict(topo)) == topo
        for fmt in FORMATS:
            text = dumps_topology(topo, fmt)
            assert loads_topology(text, fmt) == topo
