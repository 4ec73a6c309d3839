"""``load`` / ``loads``: format detection and defensive reading.

Our JSON and TOML topology files, ``lspci -xxxx`` dumps and the oracle's
capture JSON are told apart by their content (and a ``.toml`` suffix); files
too large, binary or not UTF-8 are refused before parsing; every failure is
an ``InputError`` naming the file.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from iommugroups._errors import InputError
from iommugroups._io import load as load_module
from iommugroups._io.load import FORMATS, MAX_INPUT_BYTES, load, loads
from iommugroups._io.topology_file import dumps_topology
from iommugroups._kernel.model import PciAddress, PcieType, PciFunction, Topology

from .helpers import ISOLATING, bridge, ep

ORACLE = Path(__file__).parent / "data" / "oracle"

#: ``lspci -D -n -xxx`` of a host bridge and a root port with an endpoint below it.
LSPCI = """\
0000:00:00.0 0600: 8086:29c0
000: 86 80 c0 29 03 01 00 00 00 00 00 06 00 00 00 00
010: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
020: 00 00 00 00 00 00 00 00 00 00 00 00 f4 1a 00 11
030: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00

0000:00:02.0 0200: 8086:10d3
000: 86 80 d3 10 00 00 00 00 00 00 00 02 00 00 00 00
010: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
020: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
030: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
"""


def _topo() -> Topology:
    return Topology(
        [
            PciFunction("00:00.0", vendor=0x8086, device=0x29C0, class_code=0x060000),
            bridge("00:1c.0", 0x01, acs=ISOLATING),
            ep("01:00.0"),
        ],
        name="small",
    )


def _capture() -> dict[str, object]:
    """A capture as the oracle writes it, built from the lspci dump above."""
    devices: dict[str, object] = {}
    for block in LSPCI.strip().split("\n\n"):
        header, *rows = block.splitlines()
        config = "".join(row.split(":", 1)[1].replace(" ", "") for row in rows)
        devices[header.split()[0]] = {"group": 0, "config_hex": config}
    return {"name": "tiny", "kernel": "6.1.0", "devices": devices, "groups": {}, "dmesg": []}


# --- detection ------------------------------------------------------------------------------


class TestDetection:
    def test_our_json(self) -> None:
        assert loads(dumps_topology(_topo(), "json")) == _topo()

    def test_our_json_without_schema(self) -> None:
        topo = loads('{"functions": [{"address": "00:00.0"}]}')
        assert topo == Topology([PciFunction("00:00.0")])

    def test_our_json_with_only_a_schema(self) -> None:
        with pytest.raises(InputError, match="functions: required key missing"):
            loads('{"schema": "iommugroups.topology/1"}')

    def test_our_toml_by_content(self) -> None:
        assert loads(dumps_topology(_topo(), "toml")) == _topo()

    def test_hand_written_toml_without_schema(self) -> None:
        text = '# my machine\n\n[[functions]]\naddress = "00:00.0"\nvendor = 0x8086\n'
        (fn,) = loads(text).functions
        assert fn.vendor == 0x8086

    def test_toml_with_a_quoted_key(self) -> None:
        assert loads('"functions" = [{address = "00:00.0"}]\n') == Topology(
            [PciFunction("00:00.0")]
        )

    def test_toml_by_suffix(self) -> None:
        # no functions key: only the suffix says TOML, so the schema error shows
        with pytest.raises(InputError) as info:
            loads('name = "x"\n', path="t.toml")
        assert info.value.problem == "functions: required key missing"

    def test_toml_syntax_error_gets_a_line(self) -> None:
        with pytest.raises(InputError) as info:
            loads('schema = "iommugroups.topology/1"\n[[functions]\n', path="<stdin>")
        assert info.value.line == 2

    def test_lspci(self) -> None:
        topo = loads(LSPCI)
        assert [str(f.address) for f in topo] == ["0000:00:00.0", "0000:00:02.0"]
        assert topo.get("00:02.0").device == 0x10D3

    def test_lspci_without_domains_and_with_names(self) -> None:
        text = LSPCI.replace("0000:00:00.0 0600: 8086:29c0", "00:00.0 Host bridge: Intel Corp.")
        assert len(loads(text)) == 2

    def test_capture(self) -> None:
        topo = loads(json.dumps(_capture()))
        assert topo.functions == loads(LSPCI).functions
        assert topo.name == "tiny"

    def test_capture_drivers(self) -> None:
        capture = _capture()
        devices = capture["devices"]
        assert isinstance(devices, dict)
        devices["0000:00:02.0"]["driver"] = "e1000e"
        devices["0000:00:00.0"]["driver"] = None
        topo = loads(json.dumps(capture))
        assert topo.get("00:02.0").driver == "e1000e"
        assert topo.get("00:00.0").driver is None

    def test_capture_name_from_path(self, tmp_path: Path) -> None:
        capture = _capture()
        del capture["name"]
        path = tmp_path / "q35-9999.json"
        path.write_text(json.dumps(capture))
        assert load(path).name == "q35-9999"

    def test_json_object_of_no_known_kind(self) -> None:
        with pytest.raises(InputError, match=r"neither 'functions'.* nor 'devices'"):
            loads('{"groups": {}}')

    def test_json_syntax_error_gets_a_line(self) -> None:
        with pytest.raises(InputError) as info:
            loads('{\n"functions": [,]\n}')
        assert info.value.line == 2
        assert info.value.problem.startswith("invalid JSON: ")

    def test_json_suffix_means_json(self) -> None:
        with pytest.raises(InputError, match="invalid JSON"):
            loads("[[functions]]\n", path="t.json")

    @pytest.mark.parametrize("text", ["hello\n", "[1, 2]", "x = 1\n", "00:00.0 junk\n"])
    def test_unknown(self, text: str) -> None:
        with pytest.raises(InputError, match="unknown format"):
            loads(text, path="what.txt")

    @pytest.mark.parametrize("text", ["", "  \n\n"])
    def test_empty(self, text: str) -> None:
        with pytest.raises(InputError, match="empty input"):
            loads(text)

    def test_bom_is_skipped(self) -> None:
        assert loads("\ufeff" + dumps_topology(_topo(), "json")) == _topo()


class TestExplicitFormat:
    def test_formats(self) -> None:
        assert FORMATS == ("json", "toml", "lspci", "capture")

    def test_each(self) -> None:
        assert loads(dumps_topology(_topo(), "json"), fmt="json") == _topo()
        assert loads(dumps_topology(_topo(), "toml"), fmt="toml") == _topo()
        assert len(loads(LSPCI, fmt="lspci")) == 2
        assert len(loads(json.dumps(_capture()), fmt="capture")) == 2

    def test_format_wins_over_content(self) -> None:
        with pytest.raises(InputError, match="invalid TOML"):
            loads(dumps_topology(_topo(), "json"), fmt="toml")
        with pytest.raises(InputError, match="devices: expected an object"):
            loads(dumps_topology(_topo(), "json"), fmt="capture")
        with pytest.raises(InputError, match="unknown key 'devices'"):
            loads(json.dumps(_capture()), fmt="json")

    def test_unknown_format_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError, match="unknown input format 'yaml'") as info:
            loads("{}", fmt="yaml")
        assert not isinstance(info.value, InputError)


class TestCaptureErrors:
    def _devices(self, devices: object) -> str:
        return json.dumps({"devices": devices})

    def test_bad_address(self) -> None:
        with pytest.raises(InputError, match=r"devices\['00:zz.0'\]: not a PCI address"):
            loads(self._devices({"00:zz.0": {"config_hex": "00"}}))

    def test_not_an_object(self) -> None:
        with pytest.raises(InputError, match=r"devices\['00:00.0'\]: expected an object"):
            loads(self._devices({"00:00.0": "86 80"}))

    def test_missing_config(self) -> None:
        with pytest.raises(InputError, match=r"devices\['00:00.0'\].config_hex: expected"):
            loads(self._devices({"00:00.0": {"group": 1}}))

    def test_bad_hex(self) -> None:
        with pytest.raises(InputError, match=r"devices\['00:00.0'\].config_hex: not hex"):
            loads(self._devices({"00:00.0": {"config_hex": "8680zz"}}))

    def test_bad_driver(self) -> None:
        dev = {"config_hex": "00" * 64, "driver": 3}
        with pytest.raises(InputError, match=r"devices\['00:00.0'\].driver: expected a string"):
            loads(self._devices({"00:00.0": dev}))

    def test_devices_not_an_object(self) -> None:
        with pytest.raises(InputError, match="devices: expected an object"):
            loads(self._devices([1, 2]))

    def test_undecodable_config(self) -> None:
        with pytest.raises(InputError) as info:
            loads(self._devices({"00:00.0": {"config_hex": "8680"}}), path="cap.json")
        assert info.value.path == "cap.json"
        assert "0000:00:00.0" in info.value.problem

    def test_bad_name(self) -> None:
        capture = _capture() | {"name": 3}
        with pytest.raises(InputError, match="name: expected a string"):
            loads(json.dumps(capture))


# --- the oracle's real captures ------------------------------------------------------------

CAPTURES = (
    sorted((ORACLE / "captures").glob("q35-1*.json"))[:6]
    + sorted((ORACLE / "arm64").glob("arm64-1*.json"))[:4]
)


@pytest.mark.skipif(not CAPTURES, reason="no oracle captures in tests/data/oracle")
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_real_capture(capture: Path) -> None:
    data = json.loads(capture.read_text())
    topo = load(capture)
    assert topo.name == data["name"]
    assert {str(f.address) for f in topo} == set(data["devices"])
    for addr, dev in data["devices"].items():
        assert topo.get(addr).driver == dev.get("driver")
    lspci = capture.with_suffix(".lspci")
    if lspci.exists():
        assert load(lspci).functions == topo.functions
    # and our own format holds it unchanged
    for fmt in ("json", "toml"):
        assert loads(dumps_topology(topo, fmt), fmt=fmt) == topo


# --- reading files defensively -------------------------------------------------------------


class TestFiles:
    def test_load_path_and_str(self, tmp_path: Path) -> None:
        path = tmp_path / "t.json"
        path.write_text(dumps_topology(_topo(), "json"))
        assert load(path) == load(str(path)) == _topo()

    def test_toml_file(self, tmp_path: Path) -> None:
        path = tmp_path / "t.toml"
        path.write_text(dumps_topology(_topo(), "toml"))
        assert load(path) == _topo()

    def test_lspci_file(self, tmp_path: Path) -> None:
        path = tmp_path / "machine.lspci"
        path.write_text(LSPCI)
        topo = load(path)
        assert topo.name == "machine"
        assert len(topo) == 2

    def test_fmt_for_files(self, tmp_path: Path) -> None:
        path = tmp_path / "t.txt"
        path.write_text(dumps_topology(_topo(), "toml"))
        assert load(path, fmt="toml") == _topo()

    def test_errors_name_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "t.json"
        path.write_text('{"functions": [{"address": "00:00.0", "vendor": "x"}]}')
        with pytest.raises(InputError) as info:
            load(path)
        assert info.value.path == str(path)
        assert info.value.problem.startswith("functions[0].vendor: ")

    def test_missing(self, tmp_path: Path) -> None:
        path = tmp_path / "nope.json"
        with pytest.raises(InputError) as info:
            load(path)
        assert str(info.value) == f"{path}: no such file"

    def test_directory(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="is a directory"):
            load(tmp_path)

    @pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything"
    )
    def test_permission(self, tmp_path: Path) -> None:
        path = tmp_path / "secret.json"
        path.write_text("{}")
        path.chmod(0)
        with pytest.raises(InputError, match="permission denied"):
            load(path)

    def test_too_large(self, tmp_path: Path) -> None:
        path = tmp_path / "huge.json"
        with path.open("wb") as f:
            f.truncate(MAX_INPUT_BYTES + 1)  # sparse: nothing is written or read
        with pytest.raises(InputError, match="file too large"):
            load(path)

    def test_largest_accepted_is_the_limit(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        text = dumps_topology(_topo(), "json").encode()
        path = tmp_path / "t.json"
        path.write_bytes(text)
        monkeypatch.setattr(load_module, "MAX_INPUT_BYTES", len(text))
        assert load(path) == _topo()
        monkeypatch.setattr(load_module, "MAX_INPUT_BYTES", len(text) - 1)
        with pytest.raises(InputError, match="too large"):
            load(path)
        with pytest.raises(InputError, match="larger than"):
            loads(text.decode())

    def test_binary(self, tmp_path: Path) -> None:
        path = tmp_path / "t.json"
        path.write_bytes(b'{"functions": []}\x00\x01\x02')
        with pytest.raises(InputError) as info:
            load(path)
        assert info.value.problem == "binary file (NUL byte at offset 17), not a topology"

    def test_nul_after_the_probe_is_left_to_the_parser(self, tmp_path: Path) -> None:
        path = tmp_path / "t.json"
        path.write_bytes(b'{"functions": []}' + b" " * 9000 + b"\x00")
        with pytest.raises(InputError, match="invalid JSON"):
            load(path)

    def test_binary_text(self) -> None:
        with pytest.raises(InputError, match="NUL character at offset 3"):
            loads("abc\x00")

    def test_not_utf8(self, tmp_path: Path) -> None:
        path = tmp_path / "t.json"
        path.write_bytes(b'{\n"name": "caf\xe9",\n"functions": []}')
        with pytest.raises(InputError) as info:
            load(path)
        assert info.value.line == 2
        assert info.value.problem == "not UTF-8 text: invalid byte 0xe9 at offset 14"

    @pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
    def test_special_file(self) -> None:
        with pytest.raises(InputError, match="/dev/null: empty input"):
            load("/dev/null")


class TestStdin:
    def test_binary_stdin(self, monkeypatch: pytest.MonkeyPatch) -> None:
        data = dumps_topology(_topo(), "toml").encode()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        assert load("-") == _topo()

    def test_text_stdin(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(LSPCI))
        assert load("-").get("00:00.0").vendor == 0x8086

    def test_errors_name_stdin(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(sys, "stdin", io.StringIO('{"functions": 1}'))
        with pytest.raises(InputError) as info:
            load("-")
        assert info.value.path == "<stdin>"

    def test_stdin_not_utf8(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfe")))
        with pytest.raises(InputError, match="<stdin>:1: not UTF-8 text: invalid byte 0xff at"):
            load("-")

    def test_stdin_too_large(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(load_module, "MAX_INPUT_BYTES", 10)
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"{" + b" " * 20 + b"}")))
        with pytest.raises(InputError, match="<stdin>: file too large"):
            load("-")


def test_loaded_topology_works() -> None:
    """What ``loads`` returns is an ordinary topology."""
    topo = loads(dumps_topology(_topo(), "json"))
    assert topo.bridge_above(PciAddress.parse("01:00.0")) == topo.get("00:1c.0")
    assert topo.get("00:1c.0").pcie_type is PcieType.ROOT_PORT


class TestReadingLarge:
    """A file is read as it is, once: no buffer of the largest size accepted, no copy."""

    def test_a_pipe_reports_no_size_and_is_read_whole(self) -> None:
        text = dumps_topology(_topo(), "json")
        read, write = os.pipe()
        os.write(write, text.encode())
        os.close(write)
        try:
            assert load(f"/proc/self/fd/{read}") == _topo()
        finally:
            os.close(read)

    def test_a_pipe_larger_than_the_limit_is_refused(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(load_module, "MAX_INPUT_BYTES", 64)
        read, write = os.pipe()
        os.write(write, b"{" + b" " * 100 + b"}")
        os.close(write)
        try:
            with pytest.raises(InputError, match="file too large"):
                load(f"/proc/self/fd/{read}")
        finally:
            os.close(read)

    @pytest.mark.parametrize("space", ["", "\n", " \t\r\n \n"])
    def test_json_after_leading_whitespace(self, space: str, tmp_path: Path) -> None:
        path = tmp_path / "t.data"
        path.write_text(space + dumps_topology(_topo(), "json"))
        assert load(path) == _topo()

    def test_other_leading_whitespace_is_not_json_whitespace(self, tmp_path: Path) -> None:
        """Text that starts with ``{`` after any whitespace is taken for JSON, and
        JSON allows only spaces, tabs and line ends before a value."""
        path = tmp_path / "t.data"
        path.write_text("\u2003\n" + dumps_topology(_topo(), "json"))
        with pytest.raises(InputError, match=r"t\.data:1: invalid JSON: Expecting value"):
            load(path)

    def test_the_functions_are_built_as_they_are_read(self) -> None:
        """``load`` hands the reader's functions on: none is built twice."""
        text = dumps_topology(_topo(), "json")
        topo = loads(text)
        assert topo == _topo()
        assert [f.address for f in topo.functions] == [f.address for f in _topo().functions]
