"""The canonical strategy beyond PCI rules: firmware, platform devices, order.

R1.1 dense ids in allocation order; R1.5 one group per platform device;
R1.7 SMMUv2 stream-match sharing; R7.9 SMMUv3 refuses a stream id another
device holds; R3.8 stream ids from the DMA aliases through the ID mapping.
"""

from __future__ import annotations

import pytest

from iommugroups import (
    IdMapping,
    IommuInstance,
    IommuKind,
    PciAddress,
    PcieType,
    PlatformDevice,
    Topology,
    UnknownDevice,
    canonical_groups,
    make_context,
)
from iommugroups._kernel.fwspec import pci_fwspec

from .helpers import ISOLATING, bridge, ep


def _conventional_pair(kind: IommuKind) -> Topology:
    """Two conventional devices behind a PCIe-to-PCI bridge, identity-mapped."""
    return Topology(
        [
            bridge("00:02.0", 1, kind=PcieType.PCI_BRIDGE),
            ep("01:01.0", kind=None),
            ep("01:02.0", kind=None),
        ],
        iommus=[IommuInstance("smmu0", kind)],
        id_mappings=[IdMapping(0, 0, 0x10000, 0, "smmu0")],
    )


class TestFwspecR3_8:
    def test_stream_ids_follow_the_alias_walk(self) -> None:
        t = _conventional_pair(IommuKind.SMMU_V3)
        spec = pci_fwspec(t.get("01:02.0"), make_context(t))
        assert spec is not None
        assert (spec.iommu, spec.stream_ids) == ("smmu0", (0x0110, 0x0100))

    def test_unmapped_device_has_no_fwspec(self) -> None:
        t = Topology(
            [ep("00:01.0"), ep("0001:00:01.0")],
            iommus=[IommuInstance("smmu0", IommuKind.SMMU_V3)],
            id_mappings=[IdMapping(0, 0, 0x10000, 0x20000, "smmu0")],
        )
        assert pci_fwspec(t.get("0001:00:01.0"), make_context(t)) is None
        g = canonical_groups(t)
        assert g.group_of("0001:00:01.0") is None
        assert g.ungrouped["0001:00:01.0"] == "no IOMMU translates this device"


def test_smmuv3_refuses_a_shared_stream_r7_9() -> None:
    g = canonical_groups(_conventional_pair(IommuKind.SMMU_V3))
    assert g.group_of("01:01.0") == g.group_of("00:02.0")
    assert g.group_of("01:02.0") is None
    assert g.ungrouped["0000:01:02.0"] == (
        "stream 256 already in tree from dev 0000:01:01.0 (R7.9)"
    )


def test_vtd_like_iommu_has_no_stream_semantics() -> None:
    g = canonical_groups(_conventional_pair(IommuKind.VTD))
    assert len(g.groups) == 1
    assert not g.ungrouped


class TestSmmuV2R1_7:
    def test_platform_devices_sharing_a_stream_share_a_group(self) -> None:
        t = Topology(
            [],
            platform_devices=[
                PlatformDevice("a", "smmu", (1, 2)),
                PlatformDevice("b", "smmu", (3,)),
                PlatformDevice("c", "smmu", (2,)),
            ],
            iommus=[IommuInstance("smmu", IommuKind.SMMU_V2)],
        )
        g = canonical_groups(t)
        assert g.partition() == {frozenset({"a", "c"}), frozenset({"b"})}

    def test_entries_in_two_groups_is_an_error(self) -> None:
        t = Topology(
            [],
            platform_devices=[
                PlatformDevice("a", "smmu", (1,)),
                PlatformDevice("b", "smmu", (2,)),
                PlatformDevice("c", "smmu", (1, 2)),
            ],
            iommus=[IommuInstance("smmu", IommuKind.SMMU_V2)],
        )
        g = canonical_groups(t)
        assert g.group_of("c") is None
        assert "-EINVAL, R1.7" in g.ungrouped["c"]


class TestPlatformDevicesR1_5:
    def test_one_group_each_before_pci(self) -> None:
        t = Topology(
            [bridge("00:01.0", 1), ep("01:00.0")],
            platform_devices=[
                PlatformDevice("HISI0162:01", "smmu", (0x100,), bus="platform"),
                PlatformDevice("PNP0D20:00", "smmu", (0x200,)),
                PlatformDevice("no-iommu", None),
            ],
            iommus=[IommuInstance("smmu", IommuKind.SMMU_V3)],
            id_mappings=[IdMapping(0, 0, 0x10000, 0x10000, "smmu")],
        )
        g = canonical_groups(t)
        assert [str(x) for x in g.log] == [
            "platform HISI0162:01: Adding to iommu group 0",
            "platform PNP0D20:00: Adding to iommu group 1",
            "pci 0000:00:01.0: Adding to iommu group 2",
            "pci 0000:01:00.0: Adding to iommu group 2",
        ]
        assert g.group_of("no-iommu") is None


class TestOrder:
    def topo(self) -> Topology:
        return Topology(
            [bridge("00:01.0", 1, acs=ISOLATING), ep("01:00.0"), ep("00:02.0"), ep("00:03.0")]
        )

    def test_explicit_order_sets_ids_r1_1(self) -> None:
        g = canonical_groups(self.topo(), order=["00:03.0", "0000:01:00.0"])
        assert [(x.device, x.group) for x in g.log] == [
            ("0000:00:03.0", 0),
            ("0000:01:00.0", 1),
            ("0000:00:01.0", 2),
            ("0000:00:02.0", 3),
        ]

    def test_child_before_parent_changes_membership(self) -> None:
        """R4.5: the order is device-add order; a child added before its
        non-isolating parent does not find the parent's group."""
        t = Topology([bridge("00:01.0", 1), ep("01:00.0")])
        assert len(canonical_groups(t).groups) == 1
        assert len(canonical_groups(t, order=["01:00.0"]).groups) == 2

    def test_unknown_and_repeated_devices(self) -> None:
        with pytest.raises(UnknownDevice, match="00:1f.0"):
            canonical_groups(self.topo(), order=["00:1f.0"])
        with pytest.raises(ValueError, match="twice"):
            canonical_groups(self.topo(), order=["00:02.0", "0000:00:02.0"])


def test_wide_domains_sort_numerically() -> None:
    t = Topology(
        [
            bridge("ffff:00:01.0", 1),
            ep("ffff:01:00.0"),
            bridge("10000:00:01.0", 1),
            ep("10000:01:00.0"),
        ]
    )
    g = canonical_groups(t)
    assert [m for ms in g.groups.values() for m in ms] == [
        "ffff:00:01.0",
        "ffff:01:00.0",
        "10000:00:01.0",
        "10000:01:00.0",
    ]
    assert g.group_of(PciAddress.parse("10000:01:00.0")) == 1


def test_log_equals_a_plain_sequence() -> None:
    t = Topology([ep("00:01.0"), ep("00:02.0")])
    log = canonical_groups(t).log
    assert list(log) == [tuple(x) for x in log]
    assert log == tuple(log)
    assert log[-1].group == 1
    assert log[:1] == (log[0],)
