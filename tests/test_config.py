"""Decoding raw configuration space (``iommugroups._kernel.config``).

Hand-built vectors for every rule and degradation of the decoder, a
Hypothesis test that arbitrary bytes never hang or escape as another
exception, and the real captures in ``tests/data/oracle``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iommugroups import Acs, AcsFlags, ConfigSpaceError, PciAddress, PcieType, PciFunction
from iommugroups._kernel import config as _config
from iommugroups._kernel.config import (
    PCI_FIND_CAP_TTL,
    PCI_FIND_EXT_CAP_TTL,
    ConfigSpace,
    decode_config,
    functions_from_configs,
)
from iommugroups._kernel.model import SriovCapability, Topology

DATA = Path(__file__).parent / "data" / "oracle"

FULL = AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF


def addr(text: str) -> PciAddress:
    return PciAddress.parse(text)


class Cfg:
    """A configuration space under construction (little-endian writes)."""

    def __init__(self, size: int = 4096, *, vendor: int = 0x1B36, device: int = 0x0010) -> None:
        self.buf = bytearray(size)
        self.u16(0x00, vendor)
        self.u16(0x02, device)

    def u8(self, off: int, value: int) -> Cfg:
        self.buf[off] = value
        return self

    def u16(self, off: int, value: int) -> Cfg:
        struct.pack_into("<H", self.buf, off, value)
        return self

    def u32(self, off: int, value: int) -> Cfg:
        struct.pack_into("<I", self.buf, off, value)
        return self

    def klass(self, code: int) -> Cfg:
        self.buf[0x09:0x0C] = code.to_bytes(3, "little")
        return self

    def header(self, htype: int, *, mf: bool = False) -> Cfg:
        return self.u8(0x0E, htype | (0x80 if mf else 0))

    def caps(self, first: int, *, cardbus: bool = False) -> Cfg:
        """Set the capability-list status bit and the list head."""
        self.u16(0x06, 0x0010)
        return self.u8(0x14 if cardbus else 0x34, first)

    def cap(self, pos: int, cap_id: int, nxt: int) -> Cfg:
        return self.u8(pos, cap_id).u8(pos + 1, nxt)

    def pcie(self, pos: int, port: PcieType | int, nxt: int = 0) -> Cfg:
        self.cap(pos, 0x10, nxt)
        return self.u16(pos + 2, (int(port) << 4) | 0x2)

    def ext(self, pos: int, cap_id: int, nxt: int, version: int = 1) -> Cfg:
        return self.u32(pos, cap_id | version << 16 | nxt << 20)

    def acs(self, pos: int, cap: int, ctrl: int, nxt: int = 0) -> Cfg:
        self.ext(pos, 0x000D, nxt)
        return self.u16(pos + 4, cap).u16(pos + 6, ctrl)

    def sriov(
        self,
        pos: int,
        *,
        total: int,
        num: int,
        offset: int = 1,
        stride: int = 1,
        vf_device: int = 0x0010,
        nxt: int = 0,
    ) -> Cfg:
        self.ext(pos, 0x0010, nxt)
        self.u16(pos + 0x0E, total).u16(pos + 0x10, num)
        return self.u16(pos + 0x14, offset).u16(pos + 0x16, stride).u16(pos + 0x1A, vf_device)

    def bytes(self, size: int | None = None) -> bytes:
        return bytes(self.buf[:size] if size is not None else self.buf)


def root_port(*, acs: tuple[int, int] | None = (0x001F, 0x001D), sec: int = 1) -> Cfg:
    cfg = Cfg(vendor=0x1B36, device=0x000C).klass(0x060400).header(1)
    cfg.u8(0x18, 0).u8(0x19, sec).u8(0x1A, sec)
    cfg.caps(0x40).pcie(0x40, PcieType.ROOT_PORT)
    if acs is not None:
        cfg.acs(0x100, *acs)
    return cfg


def endpoint(size: int = 4096, *, port: PcieType = PcieType.ENDPOINT, mf: bool = False) -> Cfg:
    cfg = Cfg(size).klass(0x010802).header(0, mf=mf)
    cfg.u16(0x2C, 0x1AF4).u16(0x2E, 0x1100)
    return cfg.caps(0x40).pcie(0x40, port)


def conventional(size: int = 256) -> Cfg:
    return Cfg(size, vendor=0x8086, device=0x100E).klass(0x020000).header(0)


# --- the header ---------------------------------------------------------------


def test_ids_class_header_and_subsystem() -> None:
    fn = decode_config(addr("00:03.0"), endpoint(mf=True).bytes(), driver="nvme")
    assert (fn.vendor, fn.device, fn.class_code) == (0x1B36, 0x0010, 0x010802)
    assert fn.header_type == 0
    assert fn.multifunction
    assert (fn.subsystem_vendor, fn.subsystem_device) == (0x1AF4, 0x1100)
    assert fn.driver == "nvme"
    assert fn.pcie_type is PcieType.ENDPOINT
    assert fn.acs is None
    assert fn.unknown == frozenset()


def test_root_port_with_acs() -> None:
    fn = decode_config(addr("00:1c.0"), root_port(sec=5).bytes())
    assert fn.pcie_type is PcieType.ROOT_PORT
    assert fn.acs == Acs(cap=FULL | AcsFlags.TB, ctrl=FULL)
    assert (fn.secondary_bus, fn.subordinate_bus) == (5, 5)
    assert fn.is_bridge
    assert fn.unknown == frozenset()


def test_acs_words_keep_only_the_defined_bits() -> None:
    # The capability word carries the egress control vector size in bits 15:8.
    fn = decode_config(addr("00:1c.0"), root_port(acs=(0x207F, 0xFF1D)).bytes())
    assert fn.acs == Acs(cap=AcsFlags(0x7F), ctrl=FULL)


def test_bridge_bus_numbers_and_ssvid() -> None:
    cfg = Cfg(256, vendor=0x1B36, device=0x0001).klass(0x060400).header(1)
    cfg.u8(0x18, 0x0A).u8(0x19, 0x0B).u8(0x1A, 0x0D)
    cfg.caps(0x50).cap(0x50, 0x0D, 0).u16(0x54, 0x1AF4).u16(0x56, 0x1100)
    fn = decode_config(addr("0a:01.0"), cfg.bytes())
    assert (fn.secondary_bus, fn.subordinate_bus) == (0x0B, 0x0D)
    assert (fn.subsystem_vendor, fn.subsystem_device) == (0x1AF4, 0x1100)
    assert fn.pcie_type is None
    assert fn.acs is None
    assert fn.unknown == frozenset()


def test_cardbus_uses_its_own_list_head_and_subsystem_registers() -> None:
    cfg = Cfg(256, vendor=0x104C, device=0xAC56).klass(0x060700).header(2)
    cfg.u8(0x19, 2).u8(0x1A, 5).u16(0x40, 0x1028).u16(0x42, 0x0123)
    cfg.caps(0x80, cardbus=True).pcie(0x80, PcieType.ENDPOINT)  # odd, but tests the head
    cfg.u8(0x34, 0x00)
    fn = decode_config(addr("00:1e.0"), cfg.bytes())
    assert fn.header_type == 2
    assert (fn.secondary_bus, fn.subordinate_bus) == (2, 5)
    assert (fn.subsystem_vendor, fn.subsystem_device) == (0x1028, 0x0123)
    assert fn.pcie_type is PcieType.ENDPOINT


@pytest.mark.parametrize(
    ("htype", "klass"),
    [(0, 0x060400), (2, 0x060400), (2, 0x020000)],
)
def test_class_that_contradicts_the_header_is_dropped(htype: int, klass: int) -> None:
    cfg = Cfg(256).klass(klass).header(htype)
    assert decode_config(addr("00:02.0"), cfg.bytes()).class_code == 0


def test_bridge_header_keeps_any_class() -> None:
    cfg = Cfg(256).klass(0x020000).header(1).u8(0x19, 1).u8(0x1A, 1)
    assert decode_config(addr("00:02.0"), cfg.bytes()).class_code == 0x020000


# --- errors -------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 4, 63])
def test_fewer_than_64_bytes_is_an_error(size: int) -> None:
    with pytest.raises(ConfigSpaceError, match=f"only {size} bytes"):
        decode_config(addr("00:02.0"), endpoint().bytes(size))


def test_more_than_4096_bytes_is_an_error() -> None:
    with pytest.raises(ConfigSpaceError, match="at most 4096"):
        decode_config(addr("00:02.0"), endpoint().bytes() + b"\0")


def test_vendor_ffff_cannot_be_decoded_alone() -> None:
    cfg = endpoint().u32(0, 0xFFFFFFFF)
    with pytest.raises(ConfigSpaceError, match=r"0000:00:02\.0: vendor id reads 0xffff"):
        decode_config(addr("00:02.0"), cfg.bytes())


@pytest.mark.parametrize("ids", [0x00000000, 0xFFFF0000])
def test_empty_slot_ids_are_an_error(ids: int) -> None:
    with pytest.raises(ConfigSpaceError, match="empty slot"):
        decode_config(addr("00:02.0"), endpoint().u32(0, ids).bytes())


@pytest.mark.parametrize("htype", [3, 0x7F])
def test_unknown_header_type_is_an_error(htype: int) -> None:
    with pytest.raises(ConfigSpaceError, match="unknown header type"):
        decode_config(addr("00:02.0"), endpoint().header(htype).bytes())


def test_unreadable_bus_numbers_are_an_error() -> None:
    space = ConfigSpace(root_port().bytes(256), holes=((0x10, 0x20),))
    with pytest.raises(ConfigSpaceError, match="secondary bus number"):
        decode_config(addr("00:1c.0"), space)


# --- standard capability list -------------------------------------------------


def test_no_capability_list_means_conventional() -> None:
    fn = decode_config(addr("00:02.0"), conventional(64).bytes())
    assert fn.pcie_type is None
    assert fn.acs is None
    assert fn.unknown == frozenset()


def test_capability_loop_ends_like_the_kernel() -> None:
    cfg = conventional().caps(0x40).cap(0x40, 0x01, 0x48).cap(0x48, 0x05, 0x40)
    fn = decode_config(addr("00:02.0"), cfg.bytes())
    assert fn.pcie_type is None  # the kernel gives up after PCI_FIND_CAP_TTL steps
    assert fn.unknown == frozenset()


def test_capability_found_before_the_loop_closes() -> None:
    cfg = conventional(4096).caps(0x40).cap(0x40, 0x01, 0x50).pcie(0x50, PcieType.ENDPOINT, 0x40)
    fn = decode_config(addr("00:02.0"), cfg.bytes())
    assert fn.pcie_type is PcieType.ENDPOINT


def test_capability_at_the_end_of_a_48_long_chain_is_found() -> None:
    # 0x40..0xfc holds exactly PCI_FIND_CAP_TTL dword slots, so the TTL can only
    # ever stop loops; the 48th capability must still be reached.
    cfg = conventional(4096).caps(0x40)
    positions = list(range(0x40, 0x100, 4))
    assert len(positions) == PCI_FIND_CAP_TTL
    for here, nxt in zip(positions, [*positions[1:], 0], strict=True):
        cfg.cap(here, 0x09, nxt)
    cfg.pcie(positions[-1], PcieType.ENDPOINT)
    assert decode_config(addr("00:02.0"), cfg.bytes()).pcie_type is PcieType.ENDPOINT


@pytest.mark.parametrize("head", [0x00, 0x30, 0x3F])
def test_pointer_below_0x40_ends_the_list(head: int) -> None:
    cfg = conventional().caps(head).pcie(0x40, PcieType.ENDPOINT)
    fn = decode_config(addr("00:02.0"), cfg.bytes())
    assert fn.pcie_type is None
    assert fn.unknown == frozenset()


def test_pointer_low_bits_are_masked() -> None:
    cfg = endpoint().caps(0x43)
    assert decode_config(addr("00:02.0"), cfg.bytes()).pcie_type is PcieType.ENDPOINT
    cfg = endpoint().caps(0x40).cap(0x40, 0x01, 0x53).pcie(0x50, PcieType.RC_END)
    assert decode_config(addr("00:02.0"), cfg.bytes()).pcie_type is PcieType.RC_END


def test_id_ff_ends_the_list() -> None:
    cfg = conventional().caps(0x40).cap(0x40, 0xFF, 0x50).pcie(0x50, PcieType.ENDPOINT)
    assert decode_config(addr("00:02.0"), cfg.bytes()).pcie_type is None


def test_pointer_out_of_the_buffer_makes_the_rest_unknown() -> None:
    cfg = endpoint(256).caps(0x40).cap(0x40, 0x01, 0xF0).u8(0x34, 0x40)
    # 0xf0 is inside 256 bytes but the buffer is cut at 0xa0: unknown from there.
    fn = decode_config(addr("00:02.0"), cfg.bytes(0xA0))
    assert fn.pcie_type is None
    assert fn.unknown == {"pcie", "acs", "sriov"}


def test_pointer_into_a_hole_makes_the_rest_unknown() -> None:
    data = endpoint().acs(0x100, 0x1F, 0x1D).bytes()
    space = ConfigSpace.from_chunks({0: data[:0x40], 0x50: data[0x50:]})
    fn = decode_config(addr("00:02.0"), space)
    assert fn.unknown == {"pcie", "acs", "sriov"}
    # Dword 0x100 reading 0 means "no extended capabilities" whatever the device is.
    data = endpoint().bytes()
    space = ConfigSpace.from_chunks({0: data[:0x40], 0x50: data[0x50:]})
    assert decode_config(addr("00:02.0"), space).unknown == {"pcie"}


def test_pcie_flags_out_of_the_buffer() -> None:
    cfg = endpoint(256).caps(0xFC).pcie(0xFC, PcieType.ENDPOINT)
    fn = decode_config(addr("00:02.0"), cfg.bytes(0xFE))
    # PCIe for sure (so there is extended space: unknown here), type unknown.
    assert fn.pcie_type is None
    assert fn.unknown == {"pcie", "acs", "sriov"}


def test_reserved_port_type_is_unknown() -> None:
    fn = decode_config(addr("00:02.0"), endpoint(port=0x3).bytes())  # type: ignore[arg-type]
    assert fn.pcie_type is None
    assert "pcie" in fn.unknown


# --- truncation table ---------------------------------------------------------


def test_64_bytes_of_a_pcie_endpoint() -> None:
    fn = decode_config(addr("00:02.0"), endpoint().bytes(64))
    assert (fn.pcie_type, fn.acs, fn.sriov) == (None, None, None)
    assert fn.unknown == {"pcie", "acs", "sriov"}


def test_64_bytes_of_a_bridge_also_loses_the_subsystem_ids() -> None:
    fn = decode_config(addr("00:1c.0"), root_port().bytes(64))
    assert fn.unknown == {"pcie", "acs", "sriov", "subsystem"}
    assert (fn.secondary_bus, fn.subordinate_bus) == (1, 1)


def test_256_bytes_of_a_pcie_endpoint() -> None:
    fn = decode_config(addr("00:02.0"), endpoint().bytes(256))
    assert fn.pcie_type is PcieType.ENDPOINT
    assert fn.unknown == {"acs", "sriov"}


def test_256_bytes_of_a_root_port() -> None:
    fn = decode_config(addr("00:1c.0"), root_port().bytes(256))
    assert fn.unknown == {"acs"}  # only endpoints can be SR-IOV PFs


def test_256_bytes_of_conventional_pci() -> None:
    fn = decode_config(addr("00:02.0"), conventional(256).bytes())
    assert fn.acs is None
    assert fn.unknown == frozenset()


def test_256_bytes_of_a_host_bridge() -> None:
    # pci_cfg_space_size looks for extended space on host bridges; only PCIe
    # functions can be PFs.
    cfg = conventional(256).klass(0x060000)
    assert decode_config(addr("00:00.0"), cfg.bytes()).unknown == {"acs"}


@pytest.mark.parametrize("size", [64, 100, 255, 256, 1000, 4095, 4096])
def test_any_length_from_64_decodes(size: int) -> None:
    fn = decode_config(addr("00:02.0"), endpoint().bytes(size))
    assert fn.vendor == 0x1B36


# --- extended capabilities ----------------------------------------------------


def test_acs_found_down_the_extended_list() -> None:
    cfg = root_port(acs=None).ext(0x100, 0x0001, 0x148).ext(0x148, 0x000B, 0x200)
    cfg.acs(0x200, 0x1F, 0x1D)
    fn = decode_config(addr("00:1c.0"), cfg.bytes())
    assert fn.acs == Acs(cap=FULL | AcsFlags.TB, ctrl=FULL)


def test_extended_loop_ends_like_the_kernel() -> None:
    cfg = root_port(acs=None).ext(0x100, 0x0001, 0x140).ext(0x140, 0x0002, 0x100)
    fn = decode_config(addr("00:1c.0"), cfg.bytes())
    assert fn.acs is None
    assert fn.unknown == frozenset()


@pytest.mark.parametrize(("length", "found"), [(PCI_FIND_EXT_CAP_TTL, True), (481, False)])
def test_extended_chain_longer_than_the_ttl_is_cut(length: int, found: bool) -> None:
    # Extended pointers have dword granularity: 4-byte headers can chain 960 deep.
    cfg = root_port(acs=None)
    positions = list(range(0x100, 0x100 + 4 * length, 4))
    for here, nxt in zip(positions, [*positions[1:], 0], strict=True):
        cfg.ext(here, 0x0001, nxt)
    cfg.acs(positions[-1], 0x1F, 0x1D)
    fn = decode_config(addr("00:1c.0"), cfg.bytes())
    assert (fn.acs is not None) is found
    assert fn.unknown == frozenset()


def test_extended_pointer_low_bits_are_masked() -> None:
    cfg = root_port(acs=None).u32(0x100, 0x0001 | 1 << 16 | 0x203 << 20)
    cfg.acs(0x200, 0x1F, 0x1D)
    assert decode_config(addr("00:1c.0"), cfg.bytes()).acs is not None


def test_extended_pointer_below_0x100_ends_the_list() -> None:
    cfg = root_port(acs=None).ext(0x100, 0x0001, 0x0F0)
    fn = decode_config(addr("00:1c.0"), cfg.bytes())
    assert fn.acs is None
    assert fn.unknown == frozenset()


def test_extended_pointer_out_of_the_buffer() -> None:
    cfg = root_port(acs=None).ext(0x100, 0x0001, 0x800).acs(0x800, 0x1F, 0x1D)
    fn = decode_config(addr("00:1c.0"), cfg.bytes(0x400))
    assert fn.acs is None
    assert fn.unknown == {"acs"}


def test_acs_registers_out_of_the_buffer() -> None:
    cfg = root_port(acs=None).ext(0x100, 0x0001, 0x3FC).ext(0x3FC, 0x000D, 0)
    fn = decode_config(addr("00:1c.0"), cfg.bytes(0x400))
    assert fn.unknown == {"acs"}


@pytest.mark.parametrize("header", [0x00000000, 0xFFFFFFFF])
def test_no_extended_capabilities(header: int) -> None:
    cfg = root_port(acs=None).u32(0x100, header)
    fn = decode_config(addr("00:1c.0"), cfg.bytes())
    assert fn.acs is None
    assert fn.unknown == frozenset()


def test_aliased_extended_space_is_ignored() -> None:
    cfg = root_port(acs=None)
    first = int.from_bytes(cfg.bytes()[:4], "little")
    for pos in range(0x100, 0x1000, 0x100):
        cfg.u32(pos, first)
    assert decode_config(addr("00:1c.0"), cfg.bytes()).unknown == frozenset()


def test_conventional_device_has_no_extended_space() -> None:
    cfg = conventional(4096).acs(0x100, 0x1F, 0x1D)
    fn = decode_config(addr("00:02.0"), cfg.bytes())
    assert fn.acs is None
    assert fn.unknown == frozenset()


@pytest.mark.parametrize(("status", "has_acs"), [(0x40000000, True), (0x00000000, False)])
def test_pci_x_mode_2_has_extended_space(status: int, has_acs: bool) -> None:
    cfg = conventional(4096).caps(0x40).cap(0x40, 0x07, 0).u32(0x44, status)
    cfg.acs(0x100, 0x1F, 0x1D)
    assert (decode_config(addr("00:02.0"), cfg.bytes()).acs is not None) is has_acs


# --- SR-IOV -------------------------------------------------------------------


def test_sriov_capability() -> None:
    cfg = endpoint().ext(0x100, 0x0001, 0x120).sriov(0x120, total=4, num=2, offset=0x80, stride=2)
    fn = decode_config(addr("00:02.0"), cfg.bytes())
    assert fn.sriov == SriovCapability(
        total_vfs=4, num_vfs=2, offset=0x80, stride=2, vf_device=0x10
    )
    assert fn.sriov.vf_rid(fn.address.rid, 1) == 0x10 + 0x80 + 2


@pytest.mark.parametrize(
    ("total", "offset", "stride"),
    [(0, 1, 1), (2, 0, 1), (2, 1, 0)],
)
def test_sriov_the_kernel_refuses(total: int, offset: int, stride: int) -> None:
    cfg = endpoint().sriov(0x100, total=total, num=0, offset=offset, stride=stride)
    fn = decode_config(addr("00:02.0"), cfg.bytes())
    assert fn.sriov is None
    assert fn.unknown == frozenset()


def test_sriov_on_a_port_is_ignored() -> None:
    cfg = root_port(acs=None).sriov(0x100, total=2, num=2)
    fn = decode_config(addr("00:1c.0"), cfg.bytes())
    assert fn.sriov is None
    assert fn.unknown == frozenset()


def test_num_vfs_is_clamped_to_total() -> None:
    cfg = endpoint().sriov(0x100, total=2, num=7)
    assert decode_config(addr("00:02.0"), cfg.bytes()).sriov.num_vfs == 2  # type: ignore[union-attr]


def test_sriov_fields_out_of_the_buffer() -> None:
    cfg = endpoint().ext(0x100, 0x0001, 0x3F0).sriov(0x3F0, total=2, num=2)
    assert decode_config(addr("00:02.0"), cfg.bytes(0x400)).unknown == {"sriov"}


# --- functions_from_configs: SR-IOV VFs ---------------------------------------


def pf_cfg(*, total: int = 2, num: int = 2, offset: int = 1, stride: int = 1) -> Cfg:
    return endpoint().sriov(0x100, total=total, num=num, offset=offset, stride=stride)


def vf_cfg(*, klass: int = 0x010802, header: int = 0x80) -> Cfg:
    cfg = endpoint().klass(klass).u8(0x0E, header).u32(0, 0xFFFFFFFF)
    return cfg.u16(0x2C, 0x1AF4).u16(0x2E, 0x1100)


def test_vfs_get_their_identity_from_the_pf() -> None:
    configs = {
        addr("03:00.0"): pf_cfg().bytes(),
        addr("03:00.1"): vf_cfg().bytes(),
        addr("03:00.2"): vf_cfg().bytes(),
    }
    pf, vf1, vf2 = functions_from_configs(configs, {addr("03:00.1"): "nvme"})
    assert pf.physfn is None
    assert pf.sriov is not None
    for vf in (vf1, vf2):
        assert vf.physfn == pf.address
        assert (vf.vendor, vf.device, vf.class_code) == (0x1B36, 0x0010, 0x010802)
        assert vf.pcie_type is PcieType.ENDPOINT
        assert not vf.multifunction  # pci_iov_add_virtfn forces 0, whatever the header says
        assert vf.sriov is None
        assert vf.unknown == frozenset()
    assert vf1.driver == "nvme"
    topo = Topology((pf, vf1, vf2))
    assert [f.address for f in topo.vfs_of(pf.address)] == [vf1.address, vf2.address]


def test_vfs_take_class_from_vf0() -> None:
    configs = [
        (addr("03:00.0"), pf_cfg().bytes()),
        (addr("03:00.2"), vf_cfg(klass=0x020000).bytes()),
        (addr("03:00.1"), vf_cfg(klass=0x010802).bytes()),
    ]
    _, vf2, vf1 = functions_from_configs(configs)
    assert vf1.class_code == vf2.class_code == 0x010802


def test_vf_on_a_virtual_bus() -> None:
    configs = {
        addr("03:00.0"): pf_cfg(total=4, num=4, offset=0x100, stride=0x100).bytes(),
        addr("04:00.0"): vf_cfg().bytes(),
        addr("05:00.0"): vf_cfg().bytes(),
    }
    fns = functions_from_configs(configs)
    assert [f.physfn for f in fns] == [None, addr("03:00.0"), addr("03:00.0")]
    Topology(fns)


def test_interleaved_vfs_of_two_pfs() -> None:
    configs = {
        addr("03:00.0"): pf_cfg(total=2, num=2, offset=2, stride=2).bytes(),
        addr("03:00.1"): pf_cfg(total=2, num=2, offset=2, stride=2).bytes(),
        **{addr(f"03:00.{i}"): vf_cfg().bytes() for i in range(2, 6)},
    }
    fns = functions_from_configs(configs)
    assert [str(f.physfn) for f in fns[2:]] == [
        "0000:03:00.0",
        "0000:03:00.1",
        "0000:03:00.0",
        "0000:03:00.1",
    ]


def test_wide_vf_ranges_are_cheap() -> None:
    # 200 PFs each offering 65535 VFs, with few VFs present: no quadratic search.
    pf = pf_cfg(total=0xFFFF, num=0xFFFF, offset=0x100, stride=1).bytes()
    configs: dict[PciAddress, bytes] = {PciAddress(d, 0, 0, 0): pf for d in range(200)}
    configs[PciAddress(7, 1, 0, 0)] = vf_cfg().bytes()
    fns = functions_from_configs(configs)
    assert fns[-1].physfn == PciAddress(7, 0, 0, 0)


def test_hostile_vf_search_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_config, "_VF_SEARCH_BUDGET", 3)
    configs = {addr("03:00.0"): pf_cfg(total=4, num=4).bytes()}
    configs.update({addr(f"03:00.{i}"): vf_cfg().bytes() for i in range(1, 5)})
    with pytest.raises(ConfigSpaceError, match="too many possible SR-IOV VF positions"):
        functions_from_configs(configs)


def test_vf_beyond_num_vfs_is_unclaimed() -> None:
    configs = {addr("03:00.0"): pf_cfg(total=4, num=1).bytes(), addr("03:00.2"): vf_cfg().bytes()}
    with pytest.raises(ConfigSpaceError, match=r"^0000:03:00\.2: .*no PF"):
        functions_from_configs(configs)


def test_unclaimed_ffff_function_is_an_error() -> None:
    with pytest.raises(ConfigSpaceError, match=r"0000:00:05\.0"):
        functions_from_configs({addr("00:05.0"): vf_cfg().bytes()})


def test_vf_claimed_by_two_pfs_is_an_error() -> None:
    configs = {
        addr("03:00.0"): pf_cfg(offset=2).bytes(),
        addr("03:00.1"): pf_cfg(offset=1).bytes(),
        addr("03:00.2"): vf_cfg().bytes(),
    }
    with pytest.raises(ConfigSpaceError, match="several PFs"):
        functions_from_configs(configs)


def test_all_ones_vf_of_a_removed_and_readded_pf() -> None:
    # arm64-703: NumVFs went back to 0, the VF stayed and reads all-ones.
    configs = {
        addr("01:00.0"): pf_cfg(total=2, num=0).bytes(),
        addr("01:00.1"): b"\xff" * 4096,
    }
    pf, vf = functions_from_configs(configs)
    assert vf.physfn == pf.address
    assert (vf.vendor, vf.device, vf.class_code) == (pf.vendor, 0x0010, pf.class_code)
    assert vf.pcie_type is PcieType.ENDPOINT
    assert vf.unknown == {"acs", "class", "subsystem"}


def test_readable_vf_needs_num_vfs() -> None:
    configs = {addr("01:00.0"): pf_cfg(total=2, num=0).bytes(), addr("01:00.1"): vf_cfg().bytes()}
    with pytest.raises(ConfigSpaceError, match="no PF"):
        functions_from_configs(configs)


def test_vf_with_unreadable_pcie_capability_takes_the_pf_type() -> None:
    pf = endpoint(port=PcieType.RC_END).sriov(0x100, total=1, num=1)
    configs = {addr("00:04.0"): pf.bytes(), addr("00:04.1"): vf_cfg().bytes(64)}
    _, vf = functions_from_configs(configs)
    assert vf.pcie_type is PcieType.RC_END
    assert vf.unknown == {"acs"}


def test_duplicate_addresses_are_an_error() -> None:
    pairs = [(addr("00:02.0"), endpoint().bytes()), (addr("00:02.0"), endpoint().bytes())]
    with pytest.raises(ConfigSpaceError, match="given twice"):
        functions_from_configs(pairs)


def test_decode_errors_name_the_address() -> None:
    with pytest.raises(ConfigSpaceError, match=r"^0000:00:02\.0: only 10 bytes"):
        functions_from_configs({addr("00:02.0"): bytes(10)})


# --- functions_from_configs: buses without extended config space ------------


def conv_bridge(sec: int) -> Cfg:
    return conventional(256).klass(0x060400).header(1).u8(0x19, sec).u8(0x1A, sec)


def test_no_extended_space_below_a_conventional_bridge() -> None:
    ep = endpoint().acs(0x100, 0x1F, 0x1D)
    fns = functions_from_configs(
        {
            addr("00:1e.0"): conv_bridge(1).bytes(),
            addr("01:00.0"): ep.bytes(),
            addr("01:01.0"): endpoint().bytes(256),
        }
    )
    assert fns[1].acs is None
    assert fns[1].unknown == frozenset()
    assert fns[2].unknown == frozenset()


def test_extended_space_below_a_root_port() -> None:
    ep = endpoint().acs(0x100, 0x1F, 0x1D)
    fns = functions_from_configs(
        {addr("00:1c.0"): root_port().bytes(), addr("01:00.0"): ep.bytes()}
    )
    assert fns[1].acs is not None


def test_extended_space_below_an_unknown_bridge_is_left_alone() -> None:
    fns = functions_from_configs(
        {addr("00:1c.0"): root_port().bytes(64), addr("01:00.0"): endpoint().bytes(256)}
    )
    assert fns[1].unknown == {"acs", "sriov"}


# --- ConfigSpace --------------------------------------------------------------


def test_config_space_holes() -> None:
    cs = ConfigSpace.from_chunks({0: b"\x01" * 16, 32: b"\x02" * 16})
    assert cs.holes == ((16, 32),)
    assert cs.readable(0, 16)
    assert not cs.readable(15, 2)
    assert not cs.readable(40, 16)
    assert cs.readable_bytes() == b"\x01" * 16 + b"\x02" * 16
    with pytest.raises(ValueError, match="overlaps"):
        ConfigSpace.from_chunks({0: bytes(16), 8: bytes(16)})


# --- arbitrary bytes ----------------------------------------------------------


def _decode_or_error(data: bytes) -> None:
    try:
        fn = decode_config(addr("00:02.0"), data)
    except ConfigSpaceError:
        return
    assert isinstance(fn, PciFunction)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=64, max_size=4096))
def test_arbitrary_bytes_decode_or_raise(data: bytes) -> None:
    _decode_or_error(data)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=64, max_size=4096),
    st.sampled_from([0, 1, 2]),
    st.integers(0x40, 0xFF),
    st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=64),
)
def test_plausible_headers_with_arbitrary_capabilities(
    data: bytes, htype: int, head: int, pokes: list[tuple[int, int]]
) -> None:
    buf = bytearray(data)
    for off, value in pokes:  # sprinkle plausible pointers and ids
        if off < len(buf):
            buf[off] = value
    buf[0:4] = b"\x86\x80\x00\x10"
    buf[0x06] |= 0x10
    buf[0x0E] = htype
    buf[0x34] = head
    if len(buf) >= 0x104:
        buf[0x100:0x104] = (0x000D | 1 << 16 | 0x100 << 20).to_bytes(4, "little")
    _decode_or_error(bytes(buf))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=64, max_size=512), min_size=1, max_size=6))
def test_arbitrary_function_sets_decode_or_raise(blobs: list[bytes]) -> None:
    configs = {PciAddress(0, 1, 0, i): blob for i, blob in enumerate(blobs)}
    try:
        fns = functions_from_configs(configs)
    except ConfigSpaceError:
        return
    assert len(fns) == len(blobs)


# --- real captures ------------------------------------------------------------


def _capture_configs(path: Path) -> tuple[dict[PciAddress, bytes], dict[PciAddress, str]]:
    data = json.loads(path.read_text())
    configs = {
        PciAddress.parse(a): bytes.fromhex(d["config_hex"]) for a, d in data["devices"].items()
    }
    drivers = {
        PciAddress.parse(a): d["driver"] for a, d in data["devices"].items() if d.get("driver")
    }
    return configs, drivers


CAPTURES = sorted(DATA.glob("captures/*.json")) + sorted(DATA.glob("designed/*.json"))
ARM64 = sorted(DATA.glob("arm64/*.json"))


def test_oracle_data_is_present() -> None:
    assert len(CAPTURES) >= 34
    assert len(ARM64) >= 36


@pytest.mark.parametrize("path", CAPTURES + ARM64, ids=lambda p: p.stem)
def test_every_capture_decodes(path: Path) -> None:
    configs, drivers = _capture_configs(path)
    fns = functions_from_configs(configs, drivers)
    topo = Topology(fns)
    for fn in topo:
        raw = configs[fn.address]
        if fn.is_virtfn:
            continue
        assert fn.multifunction == bool(raw[0x0E] & 0x80)
        if fn.is_bridge:
            assert (fn.secondary_bus, fn.subordinate_bus) == (raw[0x19], raw[0x1A])
        # Only host bridges (class 0x0600, 256 bytes) may leave ACS unknown here:
        # sysfs gave 4096 bytes for everything with extended space.
        assert fn.unknown <= {"acs"} or fn.is_virtfn
        if fn.unknown:
            assert fn.class_code >> 8 == 0x0600
            assert len(raw) == 256
    # Every function whose vendor id reads 0xffff became a VF of some PF.
    for a, raw in configs.items():
        assert (raw[:2] == b"\xff\xff") == topo.get(a).is_virtfn


def test_q35_vfs() -> None:
    expected = {
        "q35-1102": {"0000:04:00.1": "0000:04:00.0", "0000:04:00.2": "0000:04:00.0"},
        "q35-1104": {"0000:0d:00.1": "0000:0d:00.0", "0000:0d:00.2": "0000:0d:00.0"},
        "q35-1107": {
            "0000:05:00.1": "0000:05:00.0",
            "0000:05:00.2": "0000:05:00.0",
            "0000:89:00.1": "0000:89:00.0",
            "0000:89:00.2": "0000:89:00.0",
        },
    }
    for path in sorted(DATA.glob("captures/q35-11*.json")):
        configs, _ = _capture_configs(path)
        fns = functions_from_configs(configs)
        vfs = {str(f.address): str(f.physfn) for f in fns if f.is_virtfn}
        assert vfs == expected.get(path.stem, {}), path.stem
        for f in fns:
            if f.is_virtfn:
                assert (f.vendor, f.device, f.class_code) == (0x1B36, 0x0010, 0x010802)
                assert f.pcie_type is PcieType.ENDPOINT
                assert not f.multifunction
                assert f.unknown == frozenset()


def test_arm64_vfs_including_an_all_ones_one() -> None:
    expected = {
        "arm64-703": {"0000:01:00.1": "0000:01:00.0"},
        "arm64-708": None,
        "arm64-709": {
            "0000:03:00.1": "0000:03:00.0",
            "0000:03:00.2": "0000:03:00.0",
            "0000:06:00.1": "0000:06:00.0",
        },
        "arm64-710": {"0000:02:00.1": "0000:02:00.0"},
    }
    for stem, vfs in expected.items():
        configs, drivers = _capture_configs(DATA / "arm64" / f"{stem}.json")
        fns = functions_from_configs(configs, drivers)
        got = {str(f.address): str(f.physfn) for f in fns if f.is_virtfn}
        if vfs is not None:
            assert got == vfs, stem
        else:
            assert len(got) == 1, stem
    configs, _ = _capture_configs(DATA / "arm64" / "arm64-703.json")
    vf = {f.address: f for f in functions_from_configs(configs)}[addr("01:00.1")]
    assert vf.unknown == {"acs", "class", "subsystem"}
    assert (vf.vendor, vf.device) == (0x1B36, 0x0010)
