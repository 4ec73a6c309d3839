"""Reading a topology file's JSON entry by entry: what it reads is what the converter reads.

``parse_json_topology`` reads a file's ``functions`` list entry by entry and
builds each function as it goes, so that the parsed entries never all exist
at once; an entry whose text after its address is that of an entry read
before is that entry's function at its own address. Whatever the layout, the
result must be the topology the converter makes of ``parse_json``'s data
(``docs/topology-format.md``), and every problem must be worded as the
converter and the JSON parser word it: same message, same line, same field
path and address.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iommugroups import InputError, PcieType, PciFunction, Topology, loads
from iommugroups._io.topology_file import (
    _JsonTopologyReader,
    dumps_topology,
    loads_topology,
    parse_json,
    parse_json_topology,
    topology_from_dict,
    topology_to_dict,
)
from iommugroups.testing import topologies

SCHEMA = "iommugroups.topology/1"


def _converter(text: str) -> Topology | str:
    """What the converter makes of the text: the topology, or the error's words."""
    try:
        return topology_from_dict(parse_json(text, "t.json"), "t.json")
    except InputError as exc:
        return str(exc)


def _reader(text: str) -> Topology | str:
    """What reading it entry by entry makes of it."""
    try:
        return loads_topology(text, "json", "t.json")
    except InputError as exc:
        return str(exc)


def _same(text: str) -> Topology | str:
    """Both readings agree; their result."""
    ours, theirs = _reader(text), _converter(text)
    assert ours == theirs
    return ours


def _functions(*entries: object, indent: int | str | None = 2) -> str:
    return json.dumps({"schema": SCHEMA, "functions": list(entries)}, indent=indent)


_BRIDGE = {
    "vendor": "0x8086",
    "device": "0x1234",
    "class_code": "0x060400",
    "header_type": 1,
    "pcie_type": "root_port",
    "acs": {"cap": "SV|RR|CR|UF", "ctrl": "SV|RR|CR|UF"},
}
_NIC = {
    "vendor": "0x8086",
    "device": "0x10fb",
    "class_code": "0x020000",
    "multifunction": True,
    "pcie_type": "endpoint",
    "driver": "ixgbe",
}


def _machine(buses: int = 40) -> list[dict[str, object]]:
    """Root ports, each with a two-function NIC below it: entries of two kinds."""
    out: list[dict[str, object]] = []
    for bus in range(1, buses + 1):
        out.append(
            {"address": f"0000:00:{bus % 32:02x}.{bus // 32}", **_BRIDGE}
            | {"secondary_bus": f"0x{bus:02x}", "subordinate_bus": f"0x{bus:02x}"}
        )
        out += [{"address": f"0000:{bus:02x}:00.{fn}", **_NIC} for fn in range(2)]
    return out


@given(topologies())
def test_a_written_file_reads_back_as_the_converter_reads_it(topo: Topology) -> None:
    text = dumps_topology(topo, "json")
    data, built = parse_json_topology(text, "t.json")
    assert built
    assert isinstance(data, dict)
    assert all(isinstance(f, PciFunction) for f in data["functions"])
    assert _same(text) == topo


@pytest.mark.parametrize("indent", [None, 0, 1, 2, 4, "\t", " \t "])
def test_any_layout_reads_as_the_converter_reads_it(indent: int | str | None) -> None:
    topo = _same(_functions(*_machine(), indent=indent))
    assert isinstance(topo, Topology)
    assert len(topo) == 120
    nic = topo.get("0000:28:00.1")
    assert nic.driver == "ixgbe"
    assert nic.multifunction
    assert topo.get("0000:00:08.1").secondary_bus == 0x28


def test_entries_read_the_quick_way_are_the_functions_at_their_own_address() -> None:
    text = _functions(*_machine())
    reader = _JsonTopologyReader(text)
    reader.document()
    # a root port's entry names its buses: one kind per bus; the NICs are of one kind
    assert len(reader.templates) == 40 + 1
    topo = loads_topology(text, "json", "t.json")
    assert [str(f.address) for f in topo.functions[:4]] == [
        "0000:00:01.0",
        "0000:01:00.0",
        "0000:01:00.1",
        "0000:00:02.0",
    ]
    # the same values, each function its own object
    assert topo.functions[1] == PciFunction(
        "0000:01:00.0",
        vendor=0x8086,
        device=0x10FB,
        class_code=0x020000,
        multifunction=True,
        pcie_type=PcieType.ENDPOINT,
        driver="ixgbe",
    )
    assert topo.functions[1] is not topo.functions[4]


def test_keys_in_another_order_and_extra_spaces() -> None:
    entries = _machine(3)
    reordered = [dict(reversed(list(e.items()))) for e in entries]
    _same(_functions(*reordered))
    spaced = _functions(*entries).replace('": ', '"  :   ').replace(",\n", " ,\n")
    assert _same(spaced) == _same(_functions(*entries))


def test_a_boolean_where_an_integer_was_read_before_is_refused() -> None:
    """``True == 1``: the text after the address differs, so nothing read before is reused."""
    one = {"header_type": 1, "secondary_bus": 1}
    text = _functions(
        {"address": "0000:00:00.0", **one},
        {"address": "0000:00:01.0", **one, "secondary_bus": 2},
        {"address": "0000:00:02.0", "header_type": True, "secondary_bus": 1},
    ).replace('"secondary_bus": 2', '"secondary_bus": 1')
    result = _same(text)
    assert isinstance(result, str)
    assert "functions[2].header_type: expected" in result
    assert "functions[1]" not in result.replace("functions[1].", "")


def test_a_key_twice_after_entries_read_before() -> None:
    entries = _machine(3)
    text = _functions(*entries, {"address": "0000:09:00.0", **_NIC})
    twice = text.replace(
        '"driver": "ixgbe"\n    }\n  ]', '"driver": "ixgbe",\n"driver": "x"\n    }\n  ]'
    )
    assert twice != text
    result = _same(twice)
    assert isinstance(result, str)
    assert "invalid JSON: duplicate key 'driver'" in result


def test_the_functions_key_twice() -> None:
    text = json.dumps({"schema": SCHEMA, "functions": []})[:-1] + ', "functions": []}'
    assert "duplicate key 'functions'" in str(_same(text))


@pytest.mark.parametrize(
    "damage",
    [
        ('"0x10fb",\n', '"0x10fb"\n'),  # a comma missing
        ('"ixgbe"', '"ixgbe'),  # an unterminated string
        ("    },\n    {", "    }\n    {"),  # entries without a comma
        ("\n  ]\n}", "\n  ]\n}\n{}"),  # extra data
        ("\n  ]\n}", "\n  ]\n"),  # the object not closed
        ('"endpoint"', "endpoint"),  # not a value
        ('"multifunction": true', '"multifunction": tru'),
        ('"header_type": 1', '"header_type": 1' + "[" * 100_000 + "]" * 100_000),  # too deep
    ],
)
def test_syntax_errors_are_worded_by_the_parser(damage: tuple[str, str]) -> None:
    text = _functions(*_machine(5))
    broken = text.replace(*damage)
    assert broken != text
    result = _same(broken)
    assert isinstance(result, str)
    assert "invalid JSON" in result


def test_a_nested_object_closed_at_the_entrys_indentation() -> None:
    """A hand-made layout: the brace that closes the ACS object sits where an
    entry's own would; the entry is read whole, not cut there."""
    entry = (
        '{\n"address": "0000:00:0%d.0",\n"acs": {\n"cap": "SV",\n"ctrl": "SV"\n},\n'
        '"vendor": "0x808%d"\n}'
    )
    entries = ",\n".join(entry % (i, i % 2) for i in range(4))
    text = f'{{"functions": [\n{entries}\n]}}'
    topo = _same(text)
    assert isinstance(topo, Topology)
    assert [f.vendor for f in topo.functions] == [0x8080, 0x8081, 0x8080, 0x8081]
    assert all(f.acs is not None for f in topo.functions)


def test_strings_with_braces_and_escapes() -> None:
    names = ["a}b", 'q"x', "new\nline", "\u00e9t\u00e9", "}\n    }", "\\", "0000:00:00.0"]
    entries = [
        {"address": f"0000:0{bus}:0{i}.0", "driver": name}
        for bus in range(2)
        for i, name in enumerate(names)
    ]
    text = _functions(*entries)
    topo = _same(text)
    assert isinstance(topo, Topology)
    assert [f.driver for f in topo.functions] == names * 2
    reader = _JsonTopologyReader(text)
    reader.document()
    assert len(reader.templates) == len(names)  # the second bus's entries: read the quick way


def test_addresses_not_written_as_the_writer_does() -> None:
    entries = [
        {"address": a, **_NIC}
        for a in ["0000:01:00.0", "01:00.1", " 0000:01:00.2", "0000:01:00.3 ", "0000:01:1F.0"]
    ]
    topo = _same(_functions(*entries))
    assert isinstance(topo, Topology)
    assert [str(f.address) for f in topo.functions] == [
        "0000:01:00.0",
        "0000:01:00.1",
        "0000:01:00.2",
        "0000:01:00.3",
        "0000:01:1f.0",
    ]
    bad = _same(_functions(*entries, {"address": "0000:01:20.0", **_NIC}))
    assert isinstance(bad, str)
    assert "functions[5].address: PCI device 0x20 out of range" in bad


def test_bad_entries_among_entries_read_the_quick_way() -> None:
    entries = _machine(5)
    entries[7] = {**entries[7], "vendor": "0x18086"}
    entries[9] = {**entries[9], "vendr": "0x8086"}
    entries.insert(3, "not an object")  # type: ignore[arg-type]
    result = _same(_functions(*entries))
    assert isinstance(result, str)
    assert "functions[3]: expected an object, got the string 'not an object'" in result
    assert "functions[8].vendor: 0x18086 is out of range for a vendor id" in result
    assert "[0000:03:00.0]" in result
    assert "functions[10]: unknown key 'vendr'" in result


@pytest.mark.parametrize(
    "text",
    [
        '{"schema": "iommugroups.topology/1", "functions": []}',
        '{"functions": [], "schema": "iommugroups.topology/1", "name": "x"}',
        '{"schema": "iommugroups.topology/1", "functions": {}}',
        '{"schema": "iommugroups.topology/1", "functions": [1, null, []]}',
        '{"schema": "iommugroups.topology/2", "functions": []}',
        '{"schema": "iommugroups.topology/1", "functions": [{"address": NaN}]}',
        '{"schema": "iommugroups.topology/1", "functions": [{"address": "00:00.0"}]} ',
        "{}",
        "[]",
        '"functions"',
        '\ufeff{"functions": []}',
        '{"functions": [{"vendor": "0x8086", "address": "0000:00:00.0"}]}',
        '{"functions": [{"address": "0000:00:00.0"}], "platform": {"vmd": [{"domain": '
        '"0x10000", "endpoint": "0000:00:00.0"}]}}',
        '{"functions": [{"address": "0000:00:00.0"}], "platform": {"address": "0000:00:00.0"}}',
        '{"functions": [{"address": "0000:00:00.0"}, {"address": "0000:00:00.0"}]}',
    ],
)
def test_odd_files(text: str) -> None:
    _same(text)


def test_reading_a_file_marks_what_the_converter_marks() -> None:
    """``loads`` reads entry by entry, then marks functions below missing bridges
    and those of a slot whose function 0 says it is single-function."""
    lost = {"pcie_type": "endpoint", "multifunction": True}
    entries = [*_machine(3), {"address": "0000:40:00.0", **lost}, {"address": "0000:40:00.1"}]
    text = _functions(*entries)
    topo = loads(text, path="t.json")
    assert topo.get("0000:40:00.0").unknown == {"bridge"}
    assert topo.get("0000:40:00.1").unknown == {"bridge"}
    assert topo.get("0000:01:00.0").unknown == frozenset()
    assert [f.address for f in topo.functions] == [
        f.address for f in topology_from_dict(parse_json(text, "t.json")).functions
    ]


@given(topologies(), st.sampled_from([None, 1, 3]))
def test_other_writers_layouts(topo: Topology, indent: int | None) -> None:
    text = json.dumps(topology_to_dict(topo), indent=indent)
    assert _same(text) == topo


def test_addresses_with_spaces_inside_their_string() -> None:
    """``" 0000:01:00.1 "`` is read as ``PciAddress.parse`` reads it, however many
    entries share the text after it."""
    entries = [{"address": f"0000:01:00.{fn} ", **_NIC} for fn in range(4)]
    entries += [{"address": f"0000:02:00.{fn}\u2003", **_NIC} for fn in range(4)]
    topo = _same(_functions(*entries))
    assert isinstance(topo, Topology)
    assert [str(f.address)[5:] for f in topo.functions] == [
        f"0{bus}:00.{fn}" for bus in (1, 2) for fn in range(4)
    ]


_LINES = _functions(*_machine(3), {"address": "0000:09:00.0", **_NIC, "unknown": ["acs"]})


@given(
    st.lists(
        st.tuples(
            st.integers(0, len(_LINES) - 1),
            st.sampled_from(["", "{", "}", "[", "]", ",", ":", '"', "\n", " ", "1", "a", "\\"]),
            st.integers(0, 3),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_damaged_files_read_as_the_converter_reads_them(
    edits: list[tuple[int, str, int]],
) -> None:
    """Characters replaced, inserted or deleted anywhere: the same topology, or the
    same words for the problem."""
    text = _LINES
    for at, char, cut in edits:
        text = text[:at] + char + text[at + cut :]
    _same(text)


@given(st.integers(0, _LINES.count("\n")), st.integers(1, 3))
def test_lines_repeated_or_dropped(line: int, times: int) -> None:
    lines = _LINES.split("\n")
    _same("\n".join(lines[:line] + lines[line : line + 1] * times + lines[line + 1 :]))
    _same("\n".join(lines[:line] + lines[line + times :]))
