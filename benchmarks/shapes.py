"""Realistic and pathological PCI topologies of any size, for the benchmarks.

A topology is built from a :class:`Shape` by repeating one *root port
subtree* (a root port, maybe a chain of switches, endpoints, maybe SR-IOV
PFs with their VFs, maybe a PCIe-to-PCI bridge with conventional devices)
until it has the number of functions asked for. Root ports sit on root
buses; a domain holds as many root buses and subtrees as its 256 bus
numbers allow, then the next domain starts. Everything is deterministic
(a seed picks which ports have ACS and which slots are multifunction).

Shape parameters (see :class:`Shape`): ``root_buses`` per domain (host
bridges, ``pxb``-like), ``ports_per_bus``, ``acs_share`` (root and
downstream ports with ACS enabled), ``switch_depth`` and ``switch_fanout``
(a chain of switches below a root port: downstream port 0 of each switch
leads to the next one, the others to endpoints), ``functions`` (per
endpoint slot; more than one is a multifunction device), ``sriov_every``
and ``vfs`` (every n-th endpoint is an SR-IOV PF with that many enabled
VFs), ``conventional_every`` (every n-th root port leads to a PCIe-to-PCI
bridge with conventional devices), ``one_bus`` (devices straight on the
root bus instead of root ports), ``smmu`` (an SMMUv3 instance per domain
and an IORT-like ID mapping).

:data:`SHAPES` names the ones the suite runs: ``realistic`` (the mix of a
large server), and the pathological ``one-bus`` (256 devices on one bus),
``big-pf`` (one PF with tens of thousands of VFs), ``deep-switch``
(120-deep switch chains), ``root-buses`` (many root buses),
``domains`` (one root port per domain) and ``smmu`` (arm64 SMMUv3 with
IORT mappings).

Run ``python benchmarks/shapes.py SHAPE N OUT.json`` to write one as a
topology file.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from iommugroups import (
    Acs,
    AcsFlags,
    IdMapping,
    IommuInstance,
    IommuKind,
    PciAddress,
    PcieType,
    PciFunction,
    SriovCapability,
    Topology,
    dumps_topology,
)

ISOLATING = Acs(
    cap=AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF,
    ctrl=AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF,
)
#: Ids the simulator's driver catalogue binds (nvme, e1000e, e1000, pcieport).
NVME = (0x144D, 0xA808, 0x010802)
NIC = (0x8086, 0x10D3, 0x020000)
CONVENTIONAL_NIC = (0x8086, 0x100E, 0x020000)
BRIDGE_IDS = (0x1B36, 0x000C, 0x060400)


@dataclass(frozen=True)
class Shape:
    """How a topology is built (see the module docstring)."""

    name: str
    root_buses: int = 4
    ports_per_bus: int = 24
    acs_share: float = 0.5
    switch_depth: int = 1
    switch_fanout: int = 6
    functions: int = 2
    sriov_every: int = 5
    vfs: int = 4
    conventional_every: int = 8
    one_bus: bool = False
    smmu: bool = False


#: The shapes the suite runs.
SHAPES: dict[str, Shape] = {
    s.name: s
    for s in (
        Shape("realistic"),
        Shape("one-bus", root_buses=1, one_bus=True, functions=8, sriov_every=0),
        Shape(
            "big-pf",
            root_buses=1,
            ports_per_bus=1,
            switch_depth=0,
            functions=1,
            sriov_every=1,
            vfs=60_000,
            conventional_every=0,
        ),
        Shape(
            "deep-switch",
            root_buses=1,
            ports_per_bus=1,
            switch_depth=120,
            switch_fanout=1,
            functions=1,
            sriov_every=0,
            conventional_every=0,
        ),
        Shape("root-buses", root_buses=250, ports_per_bus=1, switch_depth=0, sriov_every=0),
        Shape(
            "domains",
            root_buses=1,
            ports_per_bus=1,
            switch_depth=0,
            functions=1,
            sriov_every=0,
            conventional_every=0,
        ),
        Shape("smmu", smmu=True),
    )
}


class _Builder:
    """Lays out functions domain by domain, bus numbers allocated in order."""

    def __init__(self, shape: Shape, target: int, seed: int) -> None:
        self.shape = shape
        self.target = target
        self.rng = random.Random(seed)
        self.functions: list[PciFunction] = []
        self.domain = -1
        self.next_bus = 0
        self.endpoints = 0
        self.ports = 0

    def full(self) -> bool:
        return len(self.functions) >= self.target

    def _new_domain(self) -> None:
        self.domain += 1
        self.next_bus = 0

    def _bus(self, count: int = 1) -> int:
        bus = self.next_bus
        self.next_bus += count
        return bus

    def _fn(self, bus: int, dev: int, fn: int, ids: tuple[int, int, int], **kw: object) -> None:
        vendor, device, cls = ids
        self.functions.append(
            PciFunction(
                PciAddress(self.domain, bus, dev, fn),
                vendor=vendor,
                device=device,
                class_code=cls,
                **kw,  # type: ignore[arg-type]
            )
        )

    def _bridge(
        self, bus: int, dev: int, kind: PcieType | None, sec: int, sub: int, acs: Acs | None
    ) -> None:
        vendor, device, cls = BRIDGE_IDS
        self.functions.append(
            PciFunction(
                PciAddress(self.domain, bus, dev, 0),
                vendor=vendor,
                device=device,
                class_code=cls,
                header_type=1,
                pcie_type=kind,
                acs=acs,
                secondary_bus=sec,
                subordinate_bus=sub,
            )
        )

    def _port_acs(self) -> Acs | None:
        return ISOLATING if self.rng.random() < self.shape.acs_share else None

    def _endpoint_buses(self) -> int:
        """Buses one endpoint slot needs (a PF's VFs spill over to the next buses)."""
        s = self.shape
        if s.sriov_every and self.endpoints % s.sriov_every == 0:
            return 1 + (s.vfs + 1) // 256
        return 1

    def _endpoint(self, bus: int) -> None:
        """One endpoint slot on ``bus`` (its VFs on the buses after it)."""
        s = self.shape
        pf = s.sriov_every and self.endpoints % s.sriov_every == 0
        self.endpoints += 1
        if pf:
            sriov = SriovCapability(
                total_vfs=s.vfs, num_vfs=s.vfs, offset=1, stride=1, vf_device=0x10ED
            )
            self._fn(bus, 0, 0, NIC, pcie_type=PcieType.ENDPOINT, sriov=sriov)
            pf_fn = self.functions[-1]
            for i in range(s.vfs):
                addr = sriov.vf_address(pf_fn.address, i)
                assert addr is not None
                self.functions.append(
                    PciFunction(
                        addr,
                        vendor=NIC[0],
                        device=0x10ED,
                        class_code=NIC[2],
                        pcie_type=PcieType.ENDPOINT,
                        physfn=pf_fn.address,
                    )
                )
            return
        mf = s.functions > 1
        for f in range(s.functions):
            self._fn(bus, 0, f, NVME, pcie_type=PcieType.ENDPOINT, multifunction=mf)

    def _conventional(self) -> bool:
        """Whether the next root port leads to a PCIe-to-PCI bridge."""
        every = self.shape.conventional_every
        return bool(every) and (self.ports + 1) % every == 0

    def _subtree_buses(self) -> int:
        s = self.shape
        if self._conventional():
            return 2
        if s.switch_depth == 0:
            return self._endpoint_buses()
        # per level: the upstream port's bus, the internal bus, one bus per endpoint port
        per_level = 2 + (s.switch_fanout - 1)
        return s.switch_depth * per_level + 1 + self._endpoint_buses()

    def _subtree(self, root_bus: int, dev: int) -> None:
        """A root port at ``root_bus:dev.0`` and what is below it."""
        s = self.shape
        conventional = self._conventional()
        need = self._subtree_buses()
        self.ports += 1
        sec = self._bus(need)
        sub = sec + need - 1
        if conventional:
            self._bridge(root_bus, dev, PcieType.ROOT_PORT, sec, sub, self._port_acs())
            self._bridge(sec, 0, PcieType.PCI_BRIDGE, sec + 1, sec + 1, None)
            for d in range(4):
                self._fn(sec + 1, d, 0, CONVENTIONAL_NIC)
            return
        self._bridge(root_bus, dev, PcieType.ROOT_PORT, sec, sub, self._port_acs())
        bus = sec
        for level in range(s.switch_depth):
            internal = bus + 1
            self._bridge(bus, 0, PcieType.UPSTREAM, internal, sub, None)
            nxt = internal + 1
            last = level == s.switch_depth - 1
            for d in range(s.switch_fanout):
                chain = d == 0 and not last
                if chain:
                    width = sub - nxt + 1 - (s.switch_fanout - 1)
                    self._bridge(internal, d, PcieType.DOWNSTREAM, nxt, nxt + width - 1, None)
                    chain_bus = nxt
                    nxt += width
                    continue
                width = self._endpoint_buses()
                self._bridge(
                    internal, d, PcieType.DOWNSTREAM, nxt, nxt + width - 1, self._port_acs()
                )
                self._endpoint(nxt)
                nxt += width
            if last:
                return
            bus = chain_bus
        self._endpoint(bus)

    def build(self) -> list[PciFunction]:
        s = self.shape
        while not self.full():
            self._new_domain()
            root_buses = 0
            while not self.full() and root_buses < s.root_buses:
                root = self._bus()
                root_buses += 1
                self._fn(root, 0, 0, (0x1B36, 0x0008, 0x060000))  # the host bridge
                if s.one_bus:
                    for dev in range(1, 32):
                        for f in range(s.functions):
                            self._fn(
                                root, dev, f, NVME, pcie_type=PcieType.RC_END, multifunction=True
                            )
                    continue
                for dev in range(1, s.ports_per_bus + 1):
                    if self.full() or self.next_bus + self._subtree_buses() > 256:
                        break
                    self._subtree(root, dev)
                if self.next_bus >= 255:
                    break
        return self.functions


def build(shape: Shape | str, n_functions: int, seed: int = 0) -> Topology:
    """A topology of about ``n_functions`` functions (whole subtrees) in ``shape``."""
    s = SHAPES[shape] if isinstance(shape, str) else shape
    if s.name == "big-pf":  # one PF: its VFs make the size
        s = replace(s, vfs=min(max(n_functions - 2, 1), 60_000))
    functions = _Builder(s, n_functions, seed).build()
    iommus: list[IommuInstance] = []
    mappings: list[IdMapping] = []
    if s.smmu:
        domains = sorted({f.address.domain for f in functions})
        iommus = [IommuInstance(f"smmu{d}", IommuKind.SMMU_V3) for d in domains]
        mappings = [IdMapping(d, 0, 0x10000, d << 16, f"smmu{d}") for d in domains]
    return Topology(functions, iommus=iommus, id_mappings=mappings, name=f"{s.name}-{n_functions}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("n", type=int, help="number of functions (about)")
    ap.add_argument("out", help="the topology file to write (.json or .toml)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    topo = build(args.shape, args.n, args.seed)
    fmt = "toml" if args.out.endswith(".toml") else "json"
    Path(args.out).write_text(dumps_topology(topo, fmt), encoding="utf-8")
    print(f"{args.out}: {len(topo)} functions ({args.shape})", file=sys.stderr)


if __name__ == "__main__":
    main()
