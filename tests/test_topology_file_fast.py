"""The topology file's quick path: what it builds is what the converter builds.

``_structure_lists`` structures each entry of a file's lists with the same
field hooks as the cattrs converter, converting each distinct leaf value
once; any entry it does not take goes to the converter, which words the
problem. These tests hold the two paths to the same results, and to the same
refusals (``docs/topology-format.md``).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given

from iommugroups import InputError, PciFunction, Topology, loads
from iommugroups._io.topology_file import (
    _converter,
    _structure_lists,
    dumps_topology,
    topology_to_dict,
)
from iommugroups._kernel.pci_device_group import Walk
from iommugroups.testing import topologies


@given(topologies())
def test_the_quick_path_builds_what_the_converter_builds(topo: Topology) -> None:
    body = topology_to_dict(topo)
    body.pop("schema")
    items = body.get("functions", [])
    quick = _structure_lists(body)["functions"]
    slow = [_converter.structure(item, PciFunction) for item in items]
    assert quick == slow
    assert quick == list(topo.functions)


def test_consuming_drops_each_entry_once_built() -> None:
    topo = Topology([PciFunction("00:00.0"), PciFunction("00:01.0", vendor=0x8086)])
    body = topology_to_dict(topo)
    body.pop("schema")
    built = _structure_lists(body, consume=True)["functions"]
    assert built == list(topo.functions)
    assert body["functions"] == [None, None]


def _file(*functions: dict[str, object]) -> str:
    return json.dumps({"schema": "iommugroups.topology/1", "functions": list(functions)})


def test_a_value_met_before_is_not_taken_for_one_of_another_type() -> None:
    """``True == 1``: a boolean where an integer is expected is refused, even
    after the integer 1 was read for the same field."""
    text = _file(
        {"address": "00:00.0", "header_type": 0},
        {"address": "00:01.0", "header_type": 1, "secondary_bus": 1},
        {"address": "00:02.0", "header_type": True},
    )
    with pytest.raises(InputError, match=r"functions\[2\]\.header_type: expected"):
        loads(text, path="t.json")


def test_a_bad_entry_after_good_ones_gets_the_converters_error() -> None:
    good = {"address": "00:00.0", "vendor": "0x8086", "device": "0x1234"}
    text = _file(good, {**good, "address": "00:01.0", "vendor": "0x18086"})
    with pytest.raises(InputError) as err:
        loads(text, path="t.json")
    assert "functions[1].vendor: 0x18086 is out of range for a vendor id" in str(err.value)
    assert "[0000:00:01.0]" in str(err.value)


def test_an_unknown_key_still_gets_its_hint() -> None:
    text = _file({"address": "00:00.0", "vendr": "0x8086"})
    with pytest.raises(InputError, match=r"unknown key 'vendr' \(did you mean 'vendor'\?\)"):
        loads(text, path="t.json")


def test_addresses_not_written_as_the_writer_does_go_through_the_parser() -> None:
    """The quick address reading takes ``dddd:bb:dd.f`` only; the others are parsed."""
    text = _file({"address": "00:1f.7"}, {"address": " 0000:00:1E.0"}, {"address": "1:00:00.0"})
    topo = loads(text, path="t.json")
    assert [str(f.address) for f in topo.functions] == [
        "0000:00:1f.7",
        "0000:00:1e.0",
        "0001:00:00.0",
    ]
    with pytest.raises(InputError, match=r"functions\[0\]\.address: PCI device 0x20"):
        loads(_file({"address": "0000:00:20.0"}), path="t.json")


def test_a_file_written_and_read_back_is_the_same_topology() -> None:
    topo = Topology(
        [
            PciFunction("00:00.0", vendor=0x8086, device=0x1234, class_code=0x060000),
            PciFunction("00:01.0", vendor=0x8086, device=0x1234, class_code=0x060000),
        ]
    )
    assert loads(dumps_topology(topo), path="t.json") == topo


def test_a_walk_is_a_sequence_sharing_its_tail() -> None:
    """R4.2's walk: nearest bridge first; each walk is its bridge and the next walk."""
    fns = [PciFunction(f"00:{i:02x}.0") for i in range(12)]
    walk = Walk()
    walks = []
    for fn in reversed(fns):
        walk = walk.through(fn)
        walks.append(walk)
    assert list(walk) == fns
    assert len(walk) == 12
    assert walk[0] is fns[0]
    assert walk[-1] is fns[-1]
    assert walk[5] is fns[5]
    assert walk[2:4] == (fns[2], fns[3])
    assert walk == tuple(fns)
    assert walk != tuple(fns[1:])
    assert list(walks[3]) == fns[-4:]  # a short walk (kept as a tuple too)
    assert walks[3].compact() == tuple(fns[-4:])
    assert walk.compact() is walk  # a long one stays a chain
    assert not Walk()
    assert len(Walk()) == 0
    assert list(Walk()) == []
    with pytest.raises(IndexError):
        walk[12]


@given(topologies(max_functions=20))
def test_names_kept_from_the_file_are_the_addresses_written_out(topo: Topology) -> None:
    """The quick path keeps each address's text as its ``str``: it must be exactly
    what formatting the address makes (domain wider than four digits included)."""
    from iommugroups._kernel import model

    text = dumps_topology(topo, "json")
    model._NAMES.clear()  # nothing formatted before: every name is the file's
    loaded = loads(text, fmt="json")
    for fn in loaded.functions:
        assert str(fn.address) == model.address_name(fn.address)


def test_an_address_in_upper_case_is_named_in_lower_case() -> None:
    from iommugroups._kernel import model

    text = dumps_topology(Topology([PciFunction("0000:0a:1f.7")]), "json").replace(
        "0000:0a:1f.7", "0000:0A:1F.7"
    )
    model._NAMES.clear()
    (fn,) = loads(text, fmt="json").functions
    assert str(fn.address) == "0000:0a:1f.7"


def test_names_kept_on_the_quick_path() -> None:
    """Entries alike but for their address go the quick way; their names are kept."""
    from iommugroups._kernel import model

    fns = [
        PciFunction(f"0000:{b:02x}:{d:02x}.{f}")
        for b in (1, 0xAB)
        for d in (0, 0x1F)
        for f in range(8)
    ]
    text = dumps_topology(Topology(fns), "json")
    model._NAMES.clear()
    loaded = loads(text, fmt="json")
    assert len(model._NAMES) == len(fns)  # kept while reading, none formatted yet
    assert [str(f.address) for f in loaded.functions] == [
        model.address_name(f.address) for f in loaded.functions
    ]
