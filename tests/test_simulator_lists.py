"""The simulator's compact bookkeeping keeps the driver core's semantics.

A large machine has as many simulated devices as functions, so the simulator
keeps its per-device records in the devices themselves and its lists as
plain sequences (issue 13). These tests pin the behaviour those records
stand for, as ``drivers/base`` has it:

* the deferred-probe lists (R8.2-R8.4): ``driver_deferred_probe_add`` puts a
  device at the tail of the pending list once (``list_empty`` check);
  ``device_del`` takes a hot-removed device off it
  (``driver_deferred_probe_del``), so a device removed while waiting and
  added again by a rescan waits at the tail, after those that waited before
  it, and only once;
* device links (R9.1, R9.2): consumers are queued in the order their links
  were made, once each, and a re-added consumer is not linked twice;
* the log keeps every event in order, whatever its kind.
"""

from __future__ import annotations

from iommugroups import (
    IdMapping,
    IommuInstance,
    IommuKind,
    LogLine,
    PcieType,
    PciFunction,
    Scenario,
    Topology,
    simulate,
)
from iommugroups._boot.simulator import Marker, Message, _EventLog


def _nic(address: str) -> PciFunction:
    return PciFunction(
        address, vendor=0x8086, device=0x10D3, class_code=0x020000, pcie_type=PcieType.ENDPOINT
    )


def _machine() -> Topology:
    """Three e1000e NICs and an NVMe drive on a root bus, all behind SMMUv3 ``a``."""
    nvme = PciFunction("00:04.0", class_code=0x010802, pcie_type=PcieType.ENDPOINT)
    return Topology(
        [_nic("00:01.0"), _nic("00:02.0"), _nic("00:03.0"), nvme],
        iommus=[IommuInstance("a", IommuKind.SMMU_V3)],
        id_mappings=[IdMapping(0, 0, 0x10000, 0, "a")],
    )


def _probe_order(actions: list[tuple[str, ...]]) -> list[str]:
    """The NICs in the order their deferred probes ran, once the IOMMU came.

    The IOMMU driver is not built in, so every NIC's probe defers (R7.3) and
    waits on the pending list; after the actions, instance ``a`` registers
    and the NVMe driver binds the drive, which triggers the deferred probes
    (R8.3): each NIC is grouped in its own probe, in list order.
    """
    scenario = Scenario(
        builtin=("e1000e",),
        actions=[*actions, ("iommu", "a"), ("insmod", "nvme")],
    )
    result = simulate(_machine(), scenario, "legacy-probe-time")
    return [line.device for line in result.grouping.log if line.prefix == "e1000e"]


def test_deferred_probes_run_in_the_order_they_were_queued() -> None:
    assert _probe_order([]) == ["0000:00:01.0", "0000:00:02.0", "0000:00:03.0"]


def test_a_device_removed_while_deferred_waits_at_the_tail_once_added_again() -> None:
    """``driver_deferred_probe_del`` on removal, then a new ``driver_deferred_probe_add``:
    the rescanned NIC probes after the two that kept waiting, and once."""
    order = _probe_order([("remove", "00:01.0"), ("rescan",)])
    assert order == ["0000:00:02.0", "0000:00:03.0", "0000:00:01.0"]


def test_devices_removed_and_not_added_again_leave_the_lists() -> None:
    order = _probe_order([("remove", "00:01.0"), ("remove", "00:03.0")])
    assert order == ["0000:00:02.0"]


def test_two_removals_before_one_rescan() -> None:
    order = _probe_order([("remove", "00:02.0"), ("remove", "00:01.0"), ("rescan",)])
    # rescan re-adds in device order, each queued as it is probed
    assert order == ["0000:00:03.0", "0000:00:01.0", "0000:00:02.0"]


def test_a_device_that_was_never_deferred_is_not_reported_deferred() -> None:
    scenario = Scenario(builtin=("e1000e",), actions=[("remove", "00:01.0")])
    fates = simulate(_machine(), scenario, "legacy-probe-time").fates
    assert fates["0000:00:01.0"].state == "removed"
    assert fates["0000:00:02.0"].state == "deferred"
    assert fates["0000:00:04.0"].state == "no-driver"


def _chain() -> Topology:
    """Root port 00:01.0 above a two-function NIC."""
    port = PciFunction(
        "00:01.0",
        class_code=0x060400,
        header_type=1,
        pcie_type=PcieType.ROOT_PORT,
        secondary_bus=1,
        subordinate_bus=1,
    )
    return Topology([port, _nic("01:00.0"), _nic("01:00.1")])


def test_device_links_queue_each_consumer_once_in_link_order() -> None:
    """device-link (R9.1, R9.2): both NIC functions are consumers of the port;
    with pcieport blacklisted they wait for it. A remove and rescan of one
    re-makes its link and queues it again, at the tail; ``insmod pcieport``
    binds the port, and the consumers, already waiting, keep their places."""
    scenario = Scenario(
        builtin=("e1000e", "arm-smmu-v3"),
        blacklist=["pcieport"],
        actions=[("remove", "01:00.0"), ("rescan",), ("insmod", "pcieport")],
    )
    result = simulate(_chain(), scenario, "device-link")
    probed = [line.device for line in result.grouping.log if line.prefix == "e1000e"]
    assert probed == ["0000:01:00.1", "0000:01:00.0"]
    assert {f.state for f in result.fates.values()} == {"bound"}


def test_the_event_log_gives_back_every_event_in_order() -> None:
    events = [
        LogLine("pci", "0000:00:01.0", 0),
        Marker("ACTION remove 0000:00:01.0"),
        LogLine("pci", "0000:00:01.0", 0, "remove"),
        Message("arm-smmu-v3", "0000:00:02.0", "stream 2 already in tree from dev x"),
        LogLine("e1000e", "0000:00:02.0", 7),
    ]
    log = _EventLog()
    for event in events:
        log.append(event)
    assert len(log) == len(events)
    back = list(log)
    assert back == events
    assert [type(e) for e in back] == [type(e) for e in events]
