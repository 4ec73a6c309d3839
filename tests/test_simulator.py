"""The driver-core simulator's hot-plug: remove and rescan (R1.2, R1.3)."""

from __future__ import annotations

from iommugroups import PcieType, PciFunction, Scenario, Topology, simulate


def _port_and_nic() -> Topology:
    rp = PciFunction(
        "00:02.0",
        class_code=0x060400,
        header_type=1,
        pcie_type=PcieType.ROOT_PORT,
        secondary_bus=2,
        subordinate_bus=2,
    )
    return Topology([rp, PciFunction("02:00.0", pcie_type=PcieType.ENDPOINT)])


def test_a_rescan_finds_the_devices_below_a_rescanned_bridge() -> None:
    """``pci_rescan_bus`` scans a re-found bridge's bus too: removing a root port
    removes what is below it, and a rescan brings both back (and regroups them)."""
    scenario = Scenario(actions=[("remove", "00:02.0"), ("rescan",)])
    result = simulate(_port_and_nic(), scenario, "canonical")
    assert result.fates["0000:02:00.0"].state != "removed"
    assert result.grouping.partition() == {frozenset({"0000:00:02.0", "0000:02:00.0"})}


def test_a_removed_device_stays_removed_without_a_rescan() -> None:
    result = simulate(_port_and_nic(), Scenario(actions=[("remove", "00:02.0")]), "canonical")
    assert result.fates["0000:00:02.0"].state == "removed"
    assert result.fates["0000:02:00.0"].state == "removed"
    assert result.grouping.groups == {}
