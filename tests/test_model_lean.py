"""A function costs little to build and to keep, and is checked as its fields say.

``PciFunction`` checks its fields in one go where the values are the usual
ones; any other value goes through each field's own validator, in field
order, with the same words (``vendor: 65536 is not a valid vendor id
(0x0-0xffff)``). Equal sets of facts and capability ids, and the empty ones,
are one object shared by the functions that have them; driver names too.
"""

from __future__ import annotations

import enum
import re

import attrs
import pytest

from iommugroups import InvalidAddress, PciAddress, PcieType, PciFunction


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"vendor": 0x10000}, "vendor: 65536 is not a valid vendor id (0x0-0xffff)"),
        ({"vendor": -1}, "vendor: -1 is not a valid vendor id (0x0-0xffff)"),
        ({"vendor": True}, "vendor: True is not a valid vendor id (0x0-0xffff)"),
        ({"device": 1.0}, "device: 1.0 is not a valid device id (0x0-0xffff)"),
        ({"class_code": 0x1000000}, "class_code: 16777216 is not a valid class code"),
        ({"header_type": 0x80}, "header_type: 128 is not a valid header type (bit 7 excluded)"),
        ({"dma_alias_devfns": [0x100]}, "dma_alias_devfns: 256 is not a valid devfn (0x0-0xff)"),
        ({"secondary_bus": 0x100}, "secondary_bus: 256 is not a valid bus number (0x0-0xff)"),
        ({"subordinate_bus": "1"}, "subordinate_bus: '1' is not a valid bus number"),
        ({"subsystem_vendor": -2}, "subsystem_vendor: -2 is not a valid vendor id"),
        ({"subsystem_device": 0x10000}, "subsystem_device: 65536 is not a valid device id"),
        ({"capabilities": [0x10, 0x100]}, "capabilities: 256 is not a valid capability id"),
        ({"capabilities": [True]}, "capabilities: True is not a valid capability id"),
        ({"revision": 0x100}, "revision: 256 is not a valid revision id (0x0-0xff)"),
        # two bad fields: the first in field order is named
        ({"revision": -1, "device": -1}, "device: -1 is not a valid device id"),
        ({"capabilities": [-1], "class_code": -1}, "class_code: -1 is not a valid class code"),
    ],
)
def test_each_field_is_checked_with_its_own_words(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        PciFunction("00:01.0", **fields)  # type: ignore[arg-type]


def test_the_address_is_converted_before_any_field_is_checked() -> None:
    with pytest.raises(InvalidAddress):
        PciFunction("00:20.0", vendor=-1)
    with pytest.raises(InvalidAddress):
        PciFunction("00:01.0", physfn="nowhere", vendor=-1)


def test_values_the_validators_take_that_are_not_plain_ints() -> None:
    """The one-go check is for the usual values only; the validators still decide."""

    class Small(enum.IntEnum):
        ONE = 1

    fn = PciFunction("00:01.0", vendor=Small.ONE, header_type=Small.ONE, secondary_bus=Small.ONE)
    assert fn.vendor is Small.ONE
    assert PciFunction("00:01.0", vendor=None).vendor is None  # type: ignore[arg-type]
    assert PciFunction("00:01.0", capabilities=(0x10, 0x01)).capabilities == {0x01, 0x10}


def test_converted_fields() -> None:
    fn = PciFunction(
        "0000:02:00.1", physfn="02:00.0", dma_alias_devfns=[8], unknown=["acs"], capabilities=[16]
    )
    assert fn.address == PciAddress(0, 2, 0, 1)
    assert fn.physfn == PciAddress(0, 2, 0, 0)
    assert fn.dma_alias_devfns == frozenset({8})
    assert fn.unknown == frozenset({"acs"})
    assert fn.capabilities == frozenset({0x10})
    assert attrs.evolve(fn, vendor=0x8086).vendor == 0x8086
    with pytest.raises(ValueError, match="vendor: 65536"):
        attrs.evolve(fn, vendor=0x10000)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fn.vendor = 1  # type: ignore[misc]


def test_equal_sets_are_one_object() -> None:
    a = PciFunction("00:01.0", unknown={"acs", "pcie"}, capabilities=[0x10, 0x05])
    b = PciFunction("00:02.0", unknown=("pcie", "acs"), capabilities={0x05, 0x10})
    assert a.unknown is b.unknown
    assert a.capabilities is b.capabilities
    empty = PciFunction("00:03.0", unknown=frozenset(), capabilities=[], dma_alias_devfns=())
    sets: list[frozenset[object]] = [empty.unknown, empty.capabilities, empty.dma_alias_devfns]
    assert sets[0] is sets[1] is sets[2]
    assert empty.unknown is PciFunction("00:04.0").unknown


def test_a_set_holding_true_is_not_taken_for_one_holding_1() -> None:
    """``{True} == {1}``: sharing must not turn one into the other."""
    assert PciFunction("00:01.0", capabilities={1}).capabilities == {1}
    with pytest.raises(ValueError, match="capabilities: True is not a valid capability id"):
        PciFunction("00:01.0", capabilities={True})
    PciFunction("00:01.0", unknown={1})  # type: ignore[arg-type]
    facts: frozenset[object] = PciFunction("00:01.0", unknown={True}).unknown  # type: ignore[arg-type]
    (fact,) = facts
    assert fact is True


def test_driver_names_are_shared() -> None:
    name = "".join(["ix", "gbe"])
    other = "".join(["ixg", "be"])
    assert name is not other
    a = PciFunction("00:01.0", driver=name)
    b = PciFunction("00:02.0", driver=other)
    assert a.driver == "ixgbe"
    assert a.driver is b.driver


def test_a_function_is_as_it_was() -> None:
    fn = PciFunction("00:1c.0", vendor=0x8086, pcie_type=PcieType.ROOT_PORT)
    assert fn == PciFunction("0000:00:1c.0", vendor=0x8086, pcie_type=PcieType.ROOT_PORT)
    assert hash(fn) == hash(
        PciFunction("0000:00:1c.0", vendor=0x8086, pcie_type=PcieType.ROOT_PORT)
    )
    assert repr(fn).startswith("PciFunction(address=PciAddress('0000:00:1c.0'), vendor=32902, ")
    assert [a.name for a in attrs.fields(PciFunction)][:3] == ["address", "vendor", "device"]
