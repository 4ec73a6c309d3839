"""The model: addresses, ACS flags and topology validation (spec §0)."""

from __future__ import annotations

import pytest

from iommugroups import (
    AcsFlags,
    InvalidAddress,
    PciAddress,
    PcieType,
    PciFunction,
    SriovCapability,
    Topology,
    TopologyError,
    UnknownDevice,
)

from .helpers import bridge, ep


class TestPciAddress:
    def test_parse_full_and_short(self) -> None:
        assert PciAddress.parse("0000:00:1c.0") == PciAddress.parse("00:1c.0")
        assert PciAddress.parse("000a:11:00.3") == PciAddress(0xA, 0x11, 0, 3)

    def test_wide_domain(self) -> None:
        a = PciAddress.parse("10000:e0:01.1")
        assert (a.domain, a.bus, a.device, a.function) == (0x10000, 0xE0, 1, 1)
        assert str(a) == "10000:e0:01.1"

    def test_str_and_devfn_and_rid(self) -> None:
        a = PciAddress.parse("00:1c.4")
        assert str(a) == "0000:00:1c.4"
        assert a.devfn == 0x1C << 3 | 4
        assert PciAddress.parse("11:00.1").rid == 0x1101

    @pytest.mark.parametrize(
        "text", ["", "00:1c", "00:20.0", "00:1c.8", "0:0:0.0.0", "zz:00.0", "00:1c.0 ", "1:2"]
    )
    def test_bad_strings(self, text: str) -> None:
        if text == "00:1c.0 ":  # surrounding blanks are tolerated
            assert PciAddress.parse(text) == PciAddress(0, 0, 0x1C, 0)
            return
        with pytest.raises(InvalidAddress, match="PCI address|out of range"):
            PciAddress.parse(text)

    def test_invalid_address_is_value_error(self) -> None:
        with pytest.raises(ValueError, match="not a PCI address"):
            PciAddress.parse("nonsense")

    def test_range_checked(self) -> None:
        with pytest.raises(InvalidAddress, match="device"):
            PciAddress(0, 0, 32, 0)

    def test_sorting_is_numeric(self) -> None:
        addrs = [PciAddress.parse(a) for a in ("0001:00:00.0", "00:1f.0", "00:02.0", "10:00.0")]
        assert [str(a) for a in sorted(addrs)] == [
            "0000:00:02.0",
            "0000:00:1f.0",
            "0000:10:00.0",
            "0001:00:00.0",
        ]


class TestAcsFlags:
    def test_bit_values_r2_1(self) -> None:
        assert [f.value for f in (AcsFlags.SV, AcsFlags.TB, AcsFlags.RR, AcsFlags.CR)] == [
            1,
            2,
            4,
            8,
        ]
        assert (AcsFlags.UF.value, AcsFlags.EC.value, AcsFlags.DT.value) == (0x10, 0x20, 0x40)

    def test_parse_and_names(self) -> None:
        flags = AcsFlags.parse("SV|RR, cr uf")
        assert flags == AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF
        assert flags.names() == "SV|RR|CR|UF"
        assert AcsFlags.parse("").names() == "-"
        with pytest.raises(ValueError, match="XX"):
            AcsFlags.parse("SV|XX")

    def test_from_word_drops_reserved_bits(self) -> None:
        assert AcsFlags.from_word(0xFF9D) == AcsFlags.from_word(0x1D)


class TestTopologyValidation:
    def test_duplicate_address(self) -> None:
        with pytest.raises(TopologyError, match="duplicate PCI address 0000:00:01.0") as e:
            Topology([ep("00:01.0"), ep("0000:00:01.0")])
        assert e.value.devices == ("0000:00:01.0",)

    def test_bus_claimed_by_two_bridges(self) -> None:
        with pytest.raises(TopologyError, match=r"claimed by two bridges.*00:01\.0.*00:02\.0"):
            Topology([bridge("00:01.0", 1), bridge("00:02.0", 1)])

    def test_inverted_range(self) -> None:
        with pytest.raises(TopologyError, match="subordinate bus 01 below its secondary bus 02"):
            Topology([bridge("00:01.0", 2, 1)])

    def test_secondary_not_above_own_bus(self) -> None:
        with pytest.raises(TopologyError, match="not above its own bus"):
            Topology([bridge("00:01.0", 1, 3), bridge("01:00.0", 1, kind=PcieType.UPSTREAM)])

    def test_child_range_outside_parent(self) -> None:
        with pytest.raises(TopologyError, match=r"outside the range of the bridge above it"):
            Topology([bridge("00:01.0", 1, 2), bridge("01:00.0", 2, 5, kind=PcieType.UPSTREAM)])

    def test_bus_inside_range_without_bridge_is_a_root_bus(self) -> None:
        """R11.8: a bus inside a bridge's range that no bridge has as its secondary
        bus, holding a Root Port, is another host bridge's root bus;
        ``pci_scan_bridge_extend`` scans only the bridge's secondary bus, so nothing
        is added below the bridge."""
        topo = Topology([bridge("00:01.0", 1, 4), bridge("03:00.0", 5)])
        assert topo.is_root_bus(0, 3)
        assert topo.bridges_above(PciAddress.parse("03:00.0")) == ()
        (conflict,) = topo.bus_conflicts()
        assert (str(conflict.bridge), conflict.bus) == ("0000:00:01.0", 3)
        assert "buses 01-04" in conflict.why
        assert "root bus" in conflict.why
        assert topo.missing_bridges() == ()


class TestMissingBridges:
    """A non-zero bus no bridge claims is a root bus only when the input says so or
    its devices may sit on one (a Root Port, an RCiEP or RCEC sit only there; R11.8)."""

    def test_an_endpoint_on_a_bus_no_bridge_claims(self) -> None:
        topo = Topology([bridge("00:01.0", 1), ep("02:00.0"), ep("02:00.1", mf=True)])
        (m,) = topo.missing_bridges()
        assert (m.domain, m.bus, m.certain) == (0, 2, True)
        assert [str(d) for d in m.devices] == ["0000:02:00.0", "0000:02:00.1"]
        assert m.why.startswith("bus 02 has no bridge in the input; 02:00.0 is a PCIe Endpoint")
        assert topo.bus_conflicts() == ()  # a missing bridge, not another root bus

    def test_inside_a_range_it_names_the_bridge(self) -> None:
        (m,) = Topology([bridge("00:01.0", 1, 4), ep("03:00.0")]).missing_bridges()
        assert m.certain
        assert "bus range of 00:01.0" in m.why

    def test_everything_below_it_is_named(self) -> None:
        topo = Topology(
            [
                bridge("05:00.0", 6, 7, kind=PcieType.UPSTREAM),
                bridge("06:00.0", 7, kind=PcieType.DOWNSTREAM),
                ep("07:00.0"),
            ]
        )
        (m,) = topo.missing_bridges()
        assert m.bus == 5
        assert "Upstream Port" in m.why
        assert [str(d) for d in m.devices] == ["0000:05:00.0", "0000:06:00.0", "0000:07:00.0"]

    @pytest.mark.parametrize("kind", [PcieType.RC_END, PcieType.RC_EC])
    def test_what_sits_only_on_a_root_bus(self, kind: PcieType) -> None:
        assert Topology([ep("80:00.0", kind=kind), ep("80:01.0")]).missing_bridges() == ()

    def test_a_root_port_makes_a_root_bus(self) -> None:
        assert Topology([bridge("80:01.0", 0x81), ep("81:00.0")]).missing_bridges() == ()

    def test_bus_0_is_a_root_bus(self) -> None:
        assert Topology([ep("00:02.0"), ep("0001:00:02.0")]).missing_bridges() == ()

    def test_declared_root_buses(self) -> None:
        topo = Topology([ep("ff:0b.0", kind=None), ep("7f:0b.0", kind=None)])
        assert [m.bus for m in topo.missing_bridges()] == [0x7F, 0xFF]
        assert not topo.missing_bridges()[0].certain
        assert "conventional PCI devices only" in topo.missing_bridges()[0].why
        assert topo.missing_bridges(root_buses=[(0, 0x7F), (0, 0xFF)]) == ()

    def test_an_unknown_type_may_be_a_missing_bridge(self) -> None:
        fn = PciFunction("04:00.0", unknown={"pcie", "acs"})
        (m,) = Topology([fn]).missing_bridges()
        assert not m.certain
        assert "PCIe type of 04:00.0 is not known" in m.why

    def test_bridges_without_bus_numbers_are_named(self) -> None:
        port = PciFunction("00:1c.0", class_code=0x060400, header_type=1)
        (m,) = Topology([port, ep("01:00.0")]).missing_bridges()
        assert "bridges whose bus numbers the input does not show: 00:1c.0" in m.why

    def test_sr_iov_virtual_buses_are_not_missing_bridges(self) -> None:
        pf = PciFunction(
            "00:02.0",
            pcie_type=PcieType.RC_END,
            sriov=SriovCapability(total_vfs=300, num_vfs=300, offset=1, stride=1, vf_device=0x10),
        )
        vf = PciFunction("01:00.0", pcie_type=PcieType.ENDPOINT, physfn="00:02.0")
        assert Topology([pf, vf]).missing_bridges() == ()

    def test_vf_without_pf(self) -> None:
        with pytest.raises(TopologyError, match="names PF 0000:01:00.0, which is not"):
            Topology([bridge("00:01.0", 1), ep("01:00.1", physfn="01:00.0")])

    def test_vf_of_vf(self) -> None:
        with pytest.raises(TopologyError, match="itself a VF"):
            Topology(
                [
                    bridge("00:01.0", 1),
                    ep("01:00.0"),
                    ep("01:00.1", physfn="01:00.0"),
                    ep("01:00.2", physfn="01:00.1"),
                ]
            )

    def test_not_a_function(self) -> None:
        with pytest.raises(TopologyError, match="not a PciFunction"):
            Topology(["00:00.0"])  # type: ignore[list-item]

    def test_get_unknown(self) -> None:
        topo = Topology([ep("00:01.0")])
        with pytest.raises(UnknownDevice, match="no PCI function 0000:00:02.0"):
            topo.get("00:02.0")
        with pytest.raises(KeyError, match="no PCI function"):
            topo.get("00:02.0")
        assert "00:01.0" in topo
        assert "bad" not in topo


class TestStructure:
    def topo(self) -> Topology:
        return Topology(
            [
                ep("02:00.2", physfn="02:00.0"),
                bridge("00:1c.0", 2, 3, mf=True),
                ep("00:00.0", kind=None),
                bridge("00:1c.1", 4, mf=True),
                ep("04:00.0"),
                PciFunction(
                    "02:00.0",
                    pcie_type=PcieType.ENDPOINT,
                    sriov=SriovCapability(8, 2, 2, 1, 0x10),
                ),
                ep("03:00.1", physfn="02:00.0"),  # a VF on a virtual bus
            ]
        )

    def test_enumeration_order_is_dfs_then_vfs(self) -> None:
        order = [str(f.address)[5:] for f in self.topo().enumeration_order()]
        assert order == [
            "00:00.0",
            "00:1c.0",
            "00:1c.1",
            "02:00.0",
            "04:00.0",
            "02:00.2",
            "03:00.1",
        ]

    def test_buses(self) -> None:
        t = self.topo()
        assert t.is_root_bus(0, 0)
        assert not t.is_root_bus(0, 2)
        bridge_above = t.bridge_above(PciAddress.parse("04:00.0"))
        assert bridge_above is not None
        assert str(bridge_above.address) == "0000:00:1c.1"
        # bus 3 holds only a VF and no bridge claims it: a virtual bus whose
        # parent is the PF's bus (virtfn_add_bus)
        assert t.bus_self(0, 3) is None
        assert t.parent_bus(0, 3) == 2
        assert [str(f.address) for f in t.vfs_of(PciAddress.parse("02:00.0"))] == [
            "0000:02:00.2",
            "0000:03:00.1",
        ]

    def test_multifunction_r5_6(self) -> None:
        # R5.6: the slot scan forces multifunction on every function but 0;
        # VFs keep their own header bit.
        t = Topology([ep("00:03.0", mf=True), ep("00:03.1", mf=False)])
        assert t.is_multifunction(t.get("00:03.1"))
        single = Topology([ep("00:03.0", mf=False)])
        assert not single.is_multifunction(single.get("00:03.0"))
        vf = self.topo().get("02:00.2")
        assert not self.topo().is_multifunction(vf)

    def test_listing_order_does_not_matter(self) -> None:
        t = self.topo()
        rev = Topology(tuple(reversed(t.functions)))
        assert rev.enumeration_order() == t.enumeration_order()
