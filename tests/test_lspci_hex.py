"""Reading ``lspci -x``/``-xxx``/``-xxxx`` dumps (``iommugroups._io.lspci_hex``)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iommugroups import InputError, PciAddress, PcieType
from iommugroups._io import lspci_hex
from iommugroups._io.lspci_hex import looks_like_lspci_hex, read_lspci_hex
from iommugroups._kernel.config import functions_from_configs

from .test_config import Cfg, endpoint, root_port

DATA = Path(__file__).parent / "data" / "oracle"
DUMPS = sorted(DATA.glob("captures/*.lspci")) + sorted(DATA.glob("designed/*.lspci"))


def hexdump(data: bytes, *, width: int = 3) -> str:
    return "\n".join(
        f"{off:0{width}x}: " + " ".join(f"{b:02x}" for b in data[off : off + 16])
        for off in range(0, len(data), 16)
    )


def block(header: str, data: bytes, **kw: int) -> str:
    return f"{header}\n{hexdump(data, **kw)}\n"


def error(text: str) -> InputError:
    with pytest.raises(InputError) as info:
        read_lspci_hex(text, "dump.txt")
    return info.value


# --- the oracle dumps ---------------------------------------------------------


def test_oracle_dumps_are_present() -> None:
    assert len(DUMPS) == 34


@pytest.mark.parametrize("path", DUMPS, ids=lambda p: p.stem)
def test_oracle_dump_matches_its_capture(path: Path) -> None:
    topo = read_lspci_hex(path.read_text(), str(path))
    assert topo.name == path.stem
    capture = json.loads(path.with_suffix(".json").read_text())
    configs = {
        PciAddress.parse(a): bytes.fromhex(d["config_hex"]) for a, d in capture["devices"].items()
    }
    assert {fn.address for fn in topo} == set(configs)
    expected = {fn.address: fn for fn in functions_from_configs(configs)}
    for fn in topo:
        assert fn == expected[fn.address]
        raw = configs[fn.address]
        if not fn.is_virtfn:
            assert fn.multifunction == bool(raw[0x0E] & 0x80)
        if fn.is_bridge:
            assert (fn.secondary_bus, fn.subordinate_bus) == (raw[0x19], raw[0x1A])


def test_oracle_vfs() -> None:
    topo = read_lspci_hex((DATA / "captures" / "q35-1107.lspci").read_text())
    vfs = {str(fn.address): str(fn.physfn) for fn in topo if fn.is_virtfn}
    assert vfs == {
        "0000:05:00.1": "0000:05:00.0",
        "0000:05:00.2": "0000:05:00.0",
        "0000:89:00.1": "0000:89:00.0",
        "0000:89:00.2": "0000:89:00.0",
    }
    total = sum(fn.is_virtfn for p in DUMPS for fn in read_lspci_hex(p.read_text()))
    assert total == 8


def test_oracle_acs_on_root_ports() -> None:
    topo = read_lspci_hex((DATA / "designed" / "rootports-acs.lspci").read_text())
    ports = [fn for fn in topo if fn.pcie_type is PcieType.ROOT_PORT]
    assert ports
    assert any(fn.acs is not None for fn in ports)
    assert any(fn.acs is None for fn in ports)  # ioh3420: no ACS capability
    assert all("acs" not in fn.unknown for fn in ports)


@pytest.mark.parametrize("path", DUMPS[:3], ids=lambda p: p.stem)
def test_looks_like_oracle_dumps(path: Path) -> None:
    assert looks_like_lspci_hex(path.read_text())


# --- header variants ----------------------------------------------------------


def test_header_without_domain_and_with_names() -> None:
    text = block("00:1c.0 PCI bridge: Intel Corporation Device a110 (rev f0)", root_port().bytes())
    (fn,) = read_lspci_hex(text)
    assert str(fn.address) == "0000:00:1c.0"
    assert fn.pcie_type is PcieType.ROOT_PORT


def test_wide_domain() -> None:
    text = block("10000:e0:01.1 0604: 8086:464d", root_port(sec=0xE1).bytes())
    (fn,) = read_lspci_hex(text)
    assert fn.address == PciAddress(0x10000, 0xE0, 1, 1)


def test_two_digit_offsets_of_plain_lspci() -> None:
    text = block("00:02.0 Ethernet controller: Intel", endpoint().bytes(256), width=2)
    (fn,) = read_lspci_hex(text)
    assert fn.unknown == {"acs", "sriov"}


def test_verbose_lines_are_skipped_and_name_the_driver() -> None:
    text = (
        "0000:00:02.0 0108: 1b36:0010 (rev 02) (prog-if 02 [NVM Express])\n"
        "\tSubsystem: 1af4:1100\n"
        "\tCapabilities: [80] Express (v2) Endpoint, MSI 00\n"
        "\tKernel driver in use: nvme\n"
        "\tKernel modules: nvme\n"
        f"{hexdump(endpoint().bytes())}\n"
    )
    (fn,) = read_lspci_hex(text)
    assert fn.driver == "nvme"


def test_blocks_without_blank_lines_between_them() -> None:
    text = block("00:1c.0 0604: 1b36:000c", root_port().bytes()) + block(
        "01:00.0 0108: 1b36:0010", endpoint().bytes()
    )
    assert len(read_lspci_hex(text)) == 2


def test_crlf_and_bom() -> None:
    text = "\ufeff" + block("00:02.0 0108: 1b36:0010", endpoint().bytes()).replace("\n", "\r\n")
    assert len(read_lspci_hex(text)) == 1


def test_64_byte_dump_leaves_capabilities_unknown() -> None:
    (fn,) = read_lspci_hex(block("00:02.0 0108: 1b36:0010", endpoint().bytes(64)))
    assert fn.pcie_type is None
    assert fn.unknown == {"pcie", "acs", "sriov"}


def test_missing_lines_are_unreadable() -> None:
    data = endpoint().acs(0x100, 0x1F, 0x1D).bytes()
    lines = hexdump(data).split("\n")
    del lines[4]  # offset 0x040: the PCIe capability
    (fn,) = read_lspci_hex("00:02.0 0108: 1b36:0010\n" + "\n".join(lines) + "\n")
    assert fn.unknown == {"pcie", "acs", "sriov"}


def test_vf_resolution_through_a_dump() -> None:
    pf = endpoint().sriov(0x100, total=2, num=1)
    vf = Cfg().klass(0x010802).u32(0, 0xFFFFFFFF)
    text = block("0000:03:00.0 0108: 1b36:0010", pf.bytes()) + "\n"
    text += block("0000:03:00.1 0108: ffff:ffff", vf.bytes())
    pf_fn, vf_fn = read_lspci_hex(text)
    assert vf_fn.physfn == pf_fn.address
    assert vf_fn.device == 0x0010


# --- errors -------------------------------------------------------------------


def test_offset_out_of_order() -> None:
    data = endpoint().bytes(64)
    lines = hexdump(data).split("\n")
    lines[1], lines[2] = lines[2], lines[1]
    exc = error("00:02.0 x\n" + "\n".join(lines))
    assert exc.line == 4
    assert exc.problem == "offset 0x010 out of order (after 0x020)"


def test_repeated_offset() -> None:
    lines = hexdump(endpoint().bytes(64)).split("\n")
    exc = error("00:02.0 x\n" + "\n".join([*lines, lines[-1]]))
    assert (exc.line, exc.problem) == (6, "offset 0x030 out of order (after 0x030)")


def test_unaligned_offset() -> None:
    exc = error("00:02.0 x\n008: " + "00 " * 16)
    assert (exc.line, exc.problem) == (2, "offset 0x008 is not a multiple of 16")


def test_offset_beyond_config_space() -> None:
    exc = error("00:02.0 x\n1000: " + "00 " * 16)
    assert exc.line == 2
    assert "beyond the 4096-byte" in exc.problem


def test_short_hex_line() -> None:
    exc = error("00:02.0 x\n000: " + "00 " * 15)
    assert (exc.line, exc.problem) == (2, "offset 0x000: expected 16 hex bytes, found 15")


def test_long_hex_line() -> None:
    exc = error("00:02.0 x\n000: " + "00 " * 17)
    assert exc.problem == "offset 0x000: expected 16 hex bytes, found 17"


def test_odd_separators_in_hex_line() -> None:
    exc = error("00:02.0 x\n000:" + " 00" * 15 + "\f00")
    assert exc.problem == "offset 0x000: hex bytes must be separated by spaces"


def test_non_hex_garbage_in_hex_line() -> None:
    exc = error("00:02.0 x\n000: 86 80 zz" + " 00" * 13)
    assert (exc.line, exc.problem) == (2, "offset 0x000: not a hex byte: 'zz'")
    exc = error("00:02.0 x\n000: 8680" + " 00" * 14)
    assert exc.problem == "offset 0x000: not a hex byte: '8680'"


def test_hex_before_any_header() -> None:
    exc = error("000: " + "00 " * 16)
    assert (exc.line, exc.problem) == (1, "no header line before hex data")


def test_hex_after_a_blank_line() -> None:
    text = block("00:02.0 x", endpoint().bytes(64)) + "\n" + "040: " + "00 " * 16
    exc = error(text)
    assert (exc.line, exc.problem) == (7, "no header line before hex data")


def test_duplicate_device() -> None:
    text = block("0000:00:1c.0 x", root_port().bytes(64)) + "\n"
    text += block("00:1c.0 y", root_port().bytes(64))
    exc = error(text)
    assert exc.line == 7
    assert exc.problem == "duplicate device 0000:00:1c.0 (first at line 1)"


def test_garbage_line() -> None:
    exc = error("hello world\n")
    assert exc.line == 1
    assert "not an lspci hex dump line" in exc.problem


def test_malformed_address() -> None:
    exc = error("00:1c.9 PCI bridge\n000: " + "00 " * 16)
    assert (exc.line, exc.problem) == (1, "malformed device address '00:1c.9'")
    exc = error("00:20.0 PCI bridge\n000: " + "00 " * 16)
    assert exc.line == 1
    assert "out of range" in exc.problem


def test_indented_line_outside_a_block() -> None:
    exc = error("\tKernel driver in use: nvme\n")
    assert (exc.line, exc.problem) == (
        1,
        "indented line outside a device block: 'Kernel driver in use: nvme'",
    )


def test_header_without_hex_lines() -> None:
    exc = error("00:02.0 x\n\n" + block("00:03.0 y", endpoint().bytes(64)))
    assert exc.line == 1
    assert "no hex dump lines" in exc.problem


def test_undecodable_device_names_its_header_line() -> None:
    text = block("00:02.0 x", endpoint().bytes(64)) + "\n" + block("00:03.0 y", bytes(64))
    exc = error(text)
    assert exc.line == 7
    assert "0000:00:03.0" in exc.problem
    assert "empty slot" in exc.problem


def test_unclaimed_vf_names_its_header_line() -> None:
    exc = error(block("00:03.0 y", b"\xff" * 256))
    assert exc.line == 1
    assert "no PF" in exc.problem


def test_too_few_bytes_names_its_header_line() -> None:
    exc = error("00:02.0 x\n000: " + "00 " * 16)
    assert exc.line == 1
    assert "only 16 bytes" in exc.problem


def test_inconsistent_topology_names_a_header_line() -> None:
    text = block("00:1c.0 a", root_port(sec=1).bytes(64)) + "\n"
    text += block("00:1d.0 b", root_port(sec=1).bytes(64))
    exc = error(text)
    assert exc.line in (1, 7)
    assert "claimed by two bridges" in exc.problem


def test_huge_input_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lspci_hex, "MAX_TEXT_CHARS", 100)
    exc = error(block("00:02.0 x", endpoint().bytes(64)))
    assert exc.line is None
    assert "refusing more than" in exc.problem


def test_too_many_devices_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lspci_hex, "MAX_DEVICES", 1)
    text = block("00:02.0 x", endpoint().bytes(64)) + block("00:03.0 x", endpoint().bytes(64))
    exc = error(text)
    assert exc.line == 6
    assert "more than 1 devices" in exc.problem


def test_error_message_carries_path_and_line() -> None:
    exc = error("00:02.0 x\n000: 00")
    assert str(exc).startswith("dump.txt:2: ")


# --- format detection ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        '{"functions": []}',
        "schema = 1\n",
        "00:1c.0 PCI bridge\n\n000: " + "00 " * 16,
        "00:1c.0 PCI bridge\n000: 00 00",
        "hello\n00:1c.0 x\n000: " + "00 " * 16,
    ],
)
def test_does_not_look_like_lspci(text: str) -> None:
    assert not looks_like_lspci_hex(text)


def test_looks_like_lspci_with_verbose_lines() -> None:
    text = "\n0000:00:02.0 0108: 1b36:0010\n\tSubsystem: x\n000: " + "00 " * 16
    assert looks_like_lspci_hex(text)


# --- arbitrary input ----------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "",
                    "00:02.0 x",
                    "0000:00:03.0 0108: 1b36:0010",
                    "\tKernel driver in use: nvme",
                    "000: " + "00 " * 16,
                    "010: " + "ff " * 16,
                    "030: 00 00 00 00 40 00 00 00 00 00 00 00 00 00 00 00",
                ]
            ),
            st.text(max_size=60),
        ),
        max_size=30,
    )
)
def test_arbitrary_text_reads_or_raises_input_error(lines: list[str]) -> None:
    text = "\n".join(lines)
    with contextlib.suppress(InputError):
        read_lspci_hex(text)
    looks_like_lspci_hex(text)
