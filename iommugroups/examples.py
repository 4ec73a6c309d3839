"""Built-in example topologies.

Each example is a function returning a :class:`~iommugroups.Topology`, listed
in :data:`EXAMPLES` by name (the CLI's ``--example NAME``).

* ``desktop``: a small PC that shows every rule family once: a root port
  with ACS and a GPU with its audio function, a root port without ACS,
  multifunction root ports without ACS, a switch with and without ACS on
  its downstream ports, a PCIe-to-PCI bridge with conventional devices and a
  conventional multifunction chipset device.

>>> from iommugroups import canonical_groups
>>> groups = canonical_groups(desktop())
>>> for members in groups.groups.values():
...     print(" ".join(m[5:] for m in members))
00:00.0
00:01.0
00:02.0 02:00.0
00:03.0
00:1c.0 00:1c.1 03:00.0 04:00.0
00:1e.0 05:01.0 05:02.0
00:1f.0 00:1f.2 00:1f.3
01:00.0 01:00.1
06:00.0
07:08.0 08:00.0
07:09.0 09:00.0
07:0a.0
0a:00.0 0a:00.1
"""

from __future__ import annotations

from collections.abc import Callable

from ._model import HEADER_BRIDGE, Acs, AcsFlags, PcieType, PciFunction, Topology

__all__ = ["EXAMPLES", "desktop", "get"]

_ISOLATING = Acs(
    cap=AcsFlags.SV | AcsFlags.TB | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF,
    ctrl=AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF,
)


def _port(
    addr: str,
    sec: int,
    sub: int | None = None,
    *,
    kind: PcieType = PcieType.ROOT_PORT,
    acs: Acs | None = _ISOLATING,
    mf: bool = False,
    ids: tuple[int, int] = (0x1B36, 0x000C),
) -> PciFunction:
    return PciFunction(
        addr,
        vendor=ids[0],
        device=ids[1],
        class_code=0x060400,
        header_type=HEADER_BRIDGE,
        multifunction=mf,
        pcie_type=kind,
        acs=acs,
        secondary_bus=sec,
        subordinate_bus=sub if sub is not None else sec,
    )


def _ep(
    addr: str,
    vendor: int,
    device: int,
    class_code: int,
    *,
    mf: bool = False,
    pcie: PcieType | None = PcieType.ENDPOINT,
) -> PciFunction:
    return PciFunction(
        addr,
        vendor=vendor,
        device=device,
        class_code=class_code,
        multifunction=mf,
        pcie_type=pcie,
    )


def desktop() -> Topology:
    """A desktop PC exercising each grouping rule once (see the module doc).

    Expected groups, by rule:

    * ``00:01.0`` has ACS (R2.3): alone; GPU ``01:00.0`` and its audio
      ``01:00.1`` are functions of one device without ACS (R5.2): together.
    * ``00:02.0`` has no ACS capability (R2.3): it shares with NVMe ``02:00.0``.
    * ``00:1c.0``/``00:1c.1`` are a multifunction root port without ACS: the
      walk from each device below stops at its port, and step 4 joins the
      sibling port (R4.2, R4.3, R5.2), so all four share.
    * ``00:1e.0`` is a PCIe-to-PCI bridge: the conventional devices behind
      it alias to it (R3.4) and share its group.
    * ``00:1f.*``: conventional multifunction chipset functions (R2.3 step 2,
      R5.2) share.
    * switch below ``00:03.0`` (ACS): the single-function upstream port
      isolates by definition (R2.3 step 4) and is alone; ``07:08.0`` and
      ``07:09.0`` have no ACS and share with what is below them, not with
      each other (R4.2); ``07:0a.0`` has ACS and is alone, while the two
      functions of the USB controller below it share (R5.2).
    """
    return Topology(
        [
            _ep("00:00.0", 0x1B36, 0x0008, 0x060000, pcie=None),
            _port("00:01.0", 0x01),
            _ep("01:00.0", 0x10DE, 0x1B80, 0x030000, mf=True),
            _ep("01:00.1", 0x10DE, 0x10F0, 0x040300, mf=True),
            _port("00:02.0", 0x02, acs=None),
            _ep("02:00.0", 0x144D, 0xA808, 0x010802),
            _port("00:03.0", 0x06, 0x0A),
            _port("06:00.0", 0x07, 0x0A, kind=PcieType.UPSTREAM, acs=None, ids=(0x10B5, 0x8747)),
            _port("07:08.0", 0x08, kind=PcieType.DOWNSTREAM, acs=None, ids=(0x10B5, 0x8747)),
            _port("07:09.0", 0x09, kind=PcieType.DOWNSTREAM, acs=None, ids=(0x10B5, 0x8747)),
            _port("07:0a.0", 0x0A, kind=PcieType.DOWNSTREAM, ids=(0x10B5, 0x8747)),
            _ep("08:00.0", 0x8086, 0x1533, 0x020000),
            _ep("09:00.0", 0x1002, 0x687F, 0x030000),
            _ep("0a:00.0", 0x1912, 0x0015, 0x0C0330, mf=True),
            _ep("0a:00.1", 0x1912, 0x0015, 0x0C0330, mf=True),
            _port("00:1c.0", 0x03, acs=None, mf=True),
            _port("00:1c.1", 0x04, acs=None, mf=True),
            _ep("03:00.0", 0x10EC, 0x8168, 0x020000),
            _ep("04:00.0", 0x1B21, 0x1242, 0x0C0330),
            _port("00:1e.0", 0x05, kind=PcieType.PCI_BRIDGE, acs=None, ids=(0x1B36, 0x000E)),
            _ep("05:01.0", 0x1102, 0x0002, 0x040100, pcie=None),
            _ep("05:02.0", 0x9710, 0x9865, 0x070002, pcie=None),
            _ep("00:1f.0", 0x8086, 0x2918, 0x060100, mf=True, pcie=None),
            _ep("00:1f.2", 0x8086, 0x2922, 0x010601, mf=True, pcie=None),
            _ep("00:1f.3", 0x8086, 0x2930, 0x0C0500, mf=True, pcie=None),
        ],
        name="desktop",
    )


#: Example name -> function building it.
EXAMPLES: dict[str, Callable[[], Topology]] = {"desktop": desktop}


def get(name: str) -> Topology:
    """The example topology called ``name``.

    Raises:
        KeyError: no such example (the message lists the known ones).
    """
    try:
        factory = EXAMPLES[name]
    except KeyError:
        known = ", ".join(sorted(EXAMPLES))
        raise KeyError(f"no example called {name!r}; known examples: {known}") from None
    return factory()
