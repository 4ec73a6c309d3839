"""Deterministic generator of topologies QEMU can build (one per seed).

``generate(seed, arch="x86_64", firmware="acpi")`` returns an
``iommugroups.Topology`` made only of the device models ``iommugroups vm``
knows, with the facts QEMU 7.2 presents for them (ids, PCIe port types, the
pcie-root-port ACS capability, multifunction bits, nvme's SR-IOV capability
and its VFs) and bus numbers as the firmware assigns them (depth first). The
same seed gives the same topology on every machine and Python version (it
uses ``random.Random(seed)`` and nothing else).

Every seed mixes the generator's features, so thirty seeds cover each many
times: single-function root ports with ACS, without (``disable-acs=on``) and
``ioh3420``; multifunction root ports; switches (nested up to three deep);
``pxb-pcie`` expander root buses (x86 and arm64 with ACPI); PCIe-to-PCI and
PCI-PCI bridges with conventional ``e1000`` devices; endpoints ``e1000e``,
``e1000``, ``nvme``, ``virtio-net-pci`` and ``virtio-rng-pci``, on root buses
(integrated) and below ports; multifunction slots with the multifunction bit
on every function or on function 0 only; SR-IOV nvme PFs with their VFs.
``FEATURES`` names them; ``features(topology)`` says which one a topology has.

The ACS control the generated root ports show is what the guest kernel
enables (SV|RR|CR|UF on x86 at boot); the harness compares with the config
space the guest shows, not with these values.

Run it to write topology files: ``python -m kernel_harness.generate SEED...``
(from ``tools/``), or ``--out DIR``.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

from iommugroups import dumps_topology
from iommugroups._kernel.model import (
    REQ_ACS_FLAGS,
    Acs,
    AcsFlags,
    PcieType,
    PciFunction,
    SriovCapability,
    Topology,
)

#: (vendor, device, class) of each model.
IDS = {
    "pcie-root-port": (0x1B36, 0x000C, 0x060400),
    "ioh3420": (0x8086, 0x3420, 0x060400),
    "x3130-upstream": (0x104C, 0x8232, 0x060400),
    "xio3130-downstream": (0x104C, 0x8233, 0x060400),
    "pxb-pcie": (0x1B36, 0x000B, 0x060000),
    "pcie-pci-bridge": (0x1B36, 0x000E, 0x060400),
    "pci-bridge": (0x1B36, 0x0001, 0x060400),
    "e1000e": (0x8086, 0x10D3, 0x020000),
    "e1000": (0x8086, 0x100E, 0x020000),
    "nvme": (0x1B36, 0x0010, 0x010802),
    "virtio-net-pci": (0x1AF4, 0x1041, 0x020000),
    "virtio-rng-pci": (0x1AF4, 0x1044, 0x00FF00),
    "virtio-serial-pci": (0x1AF4, 0x1043, 0x078000),
    "virtio-balloon-pci": (0x1AF4, 0x1045, 0x00FF00),
    "virtio-scsi-pci": (0x1AF4, 0x1048, 0x010000),
}
ROOT_PORT_ACS = AcsFlags.SV | AcsFlags.TB | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF | AcsFlags.DT
ENDPOINTS = (
    "e1000e",
    "nvme",
    "virtio-net-pci",
    "e1000",
    "e1000e",
    "nvme",
    "virtio-net-pci",
    "virtio-rng-pci",
    "virtio-serial-pci",
    "virtio-scsi-pci",
)

FEATURES = (
    "root port with ACS",
    "root port without ACS (disable-acs=on)",
    "ioh3420 root port",
    "multifunction root ports",
    "switch",
    "nested switch",
    "pxb-pcie expander bus",
    "pcie-pci-bridge",
    "pci-bridge",
    "integrated endpoint",
    "multifunction slot, bit on every function",
    "multifunction slot, bit on function 0 only",
    "SR-IOV nvme PF",
    "e1000e",
    "e1000",
    "nvme",
    "virtio-net-pci",
    "virtio-rng-pci",
    "virtio-serial-pci",
    "virtio-scsi-pci",
)

# A node of the description: {"kind": ..., ...} as in the oracle's captures'
# "topology" field, plus "sriov" on nvme endpoints.
Node = dict[str, Any]


class _Gen:
    def __init__(self, seed: int, arch: str, firmware: str) -> None:
        self.rng = random.Random(seed)
        self.arch = arch
        self.firmware = firmware
        self.functions = 0

    def endpoint(self, pcie: bool, allow_sriov: bool) -> Node:
        r = self.rng
        models = ENDPOINTS if pcie else ("e1000",)
        model = r.choice(models)
        node: Node = {"kind": "ep", "model": model}
        if model == "nvme" and allow_sriov and r.random() < 0.35:
            node["sriov"] = r.choice((1, 2, 3))
        return node

    def slot(self, pcie: bool, allow_sriov: bool) -> Node:
        """One slot: a single endpoint or a multifunction slot."""
        r = self.rng
        if r.random() < 0.3:
            n = r.randint(2, 4)
            return {
                "kind": "mf",
                "functions": [self.endpoint(pcie, False) for _ in range(n)],
                "mf_bit_on_all": r.random() < 0.5,
            }
        return self.endpoint(pcie, allow_sriov)

    def below_port(self, depth: int) -> Node | None:
        r = self.rng
        x = r.random()
        if x < 0.1:
            return None
        if x < 0.45 and depth < 3:
            return self.switch(depth + 1)
        if x < 0.55:
            return self.p2p()
        return self.slot(True, True)

    def switch(self, depth: int) -> Node:
        return {
            "kind": "switch",
            "children": [self.below_port(depth) for _ in range(self.rng.randint(1, 3))],
        }

    def p2p(self) -> Node:
        r = self.rng
        children: list[Node] = [{"kind": "ep", "model": "e1000"} for _ in range(r.randint(1, 2))]
        if r.random() < 0.5:
            children.append(
                {"kind": "pcibr", "children": [{"kind": "ep", "model": "e1000"}] * r.randint(1, 2)}
            )
        return {"kind": "p2p", "children": children}

    def root_port(self, depth: int = 0) -> Node:
        r = self.rng
        model = "ioh3420" if r.random() < 0.25 else "pcie-root-port"
        return {
            "kind": "rp",
            "model": model,
            "acs": model == "pcie-root-port" and r.random() < 0.6,
            "child": self.below_port(depth),
        }

    def root_item(self, on_expander: bool) -> Node:
        r = self.rng
        x = r.random()
        if on_expander:  # expander root buses hold root ports
            if x < 0.25:
                return {
                    "kind": "mfrp",
                    "ports": [self.root_port() for _ in range(r.randint(2, 3))],
                }
            return self.root_port()
        if x < 0.35:
            return self.root_port()
        if x < 0.5:
            return {"kind": "mfrp", "ports": [self.root_port() for _ in range(r.randint(2, 3))]}
        if x < 0.62:
            return self.slot(True, True)  # integrated endpoints
        if x < 0.72:
            return self.p2p()
        if x < 0.78:
            return {"kind": "pcibr", "children": [{"kind": "ep", "model": "e1000"}]}
        if x < 0.9 and (self.arch == "x86_64" or self.firmware == "acpi"):
            return {"kind": "pxb", "ports": [self.root_item(True) for _ in range(r.randint(1, 2))]}
        return self.root_port()

    def description(self) -> list[Node]:
        return [self.root_item(False) for _ in range(self.rng.randint(3, 6))]


def describe(seed: int, arch: str = "x86_64", firmware: str = "acpi") -> list[Node]:
    """The seed's topology as a tree description (the oracle's ``topology`` form)."""
    return _Gen(seed, arch, firmware).description()


class _Builder:
    """Description -> PCI functions, with the facts QEMU presents and SeaBIOS's bus numbers."""

    def __init__(self, arch: str) -> None:
        self.arch = arch
        self.functions: list[PciFunction] = []
        self.next_bus = 0
        self.pxb_roots: list[tuple[int, list[Node]]] = []

    def fn(
        self,
        bus: int,
        slot: int,
        func: int,
        model: str,
        ptype: PcieType | None,
        mf: bool,
        **extra: Any,
    ) -> PciFunction:
        vendor, device, cls = IDS[model]
        f = PciFunction(
            address=f"00:{slot:02x}.{func}".replace("00:", f"{bus:02x}:", 1),
            vendor=vendor,
            device=device,
            class_code=cls,
            multifunction=mf,
            pcie_type=ptype,
            **extra,
        )
        self.functions.append(f)
        return f

    def ep_type(self, model: str, bus_kind: str) -> PcieType | None:
        if model == "e1000":
            return None
        if bus_kind == "root":
            return None if model.startswith("virtio") else PcieType.RC_END
        if bus_kind == "pci":
            return None
        return PcieType.ENDPOINT

    def place_slot(self, node: Node, bus: int, slot: int, bus_kind: str) -> None:
        """An endpoint or a multifunction slot of endpoints."""
        if node["kind"] == "mf":
            all_bit = node["mf_bit_on_all"]
            for i, ep in enumerate(node["functions"]):
                self.fn(
                    bus,
                    slot,
                    i,
                    ep["model"],
                    self.ep_type(ep["model"], bus_kind),
                    i == 0 or all_bit,
                )
            return
        model = node["model"]
        extra: dict[str, Any] = {}
        n = node.get("sriov")
        if n:
            extra["sriov"] = SriovCapability(
                total_vfs=n, num_vfs=n, offset=1, stride=1, vf_device=0x0010
            )
        pf = self.fn(bus, slot, 0, model, self.ep_type(model, bus_kind), False, **extra)
        if n:
            for vf in pf.sriov.vf_addresses(pf.address) if pf.sriov else ():
                vendor, _, cls = IDS["nvme"]
                self.functions.append(
                    PciFunction(
                        address=vf,
                        vendor=vendor,
                        device=0x0010,
                        class_code=cls,
                        pcie_type=pf.pcie_type,  # a VF has its PF's port type
                        physfn=pf.address,
                    )
                )

    def bridge(
        self,
        bus: int,
        slot: int,
        func: int,
        model: str,
        ptype: PcieType | None,
        mf: bool,
        below: Any,
        **extra: Any,
    ) -> None:
        """A bridge; ``below(secondary)`` places what is on its secondary bus."""
        self.next_bus += 1
        sec = self.next_bus
        idx = len(self.functions)
        self.fn(
            bus,
            slot,
            func,
            model,
            ptype,
            mf,
            header_type=1,
            secondary_bus=sec,
            subordinate_bus=sec,
            **extra,
        )
        below(sec)
        self.functions[idx] = self.functions[idx].__class__(
            **{**_fields(self.functions[idx]), "subordinate_bus": self.next_bus}
        )

    def root_port(self, node: Node, bus: int, slot: int, func: int, mf: bool) -> None:
        model = node["model"]
        extra: dict[str, Any] = {}
        if model == "pcie-root-port" and node["acs"]:
            extra["acs"] = Acs(cap=ROOT_PORT_ACS, ctrl=REQ_ACS_FLAGS)
        child = node["child"]
        self.bridge(
            bus,
            slot,
            func,
            model,
            PcieType.ROOT_PORT,
            mf,
            lambda sec: self.link(child, sec),
            **extra,
        )

    def link(self, node: Node | None, bus: int) -> None:
        """What sits below a root or downstream port (device 0 only)."""
        if node is None:
            return
        kind = node["kind"]
        if kind == "switch":
            self.bridge(
                bus,
                0,
                0,
                "x3130-upstream",
                PcieType.UPSTREAM,
                False,
                lambda sec: self.switch_ports(node["children"], sec),
            )
        elif kind == "p2p":
            self.p2p(node, bus, 0)
        else:
            self.place_slot(node, bus, 0, "link")

    def switch_ports(self, children: list[Node | None], bus: int) -> None:
        for i, child in enumerate(children):
            self.bridge(
                bus,
                i,
                0,
                "xio3130-downstream",
                PcieType.DOWNSTREAM,
                False,
                lambda sec, c=child: self.link(c, sec),
            )

    def p2p(self, node: Node, bus: int, slot: int) -> None:
        self.bridge(
            bus,
            slot,
            0,
            "pcie-pci-bridge",
            PcieType.PCI_BRIDGE,
            False,
            lambda sec: self.conventional(node["children"], sec),
        )

    def conventional(self, children: list[Node], bus: int) -> None:
        for i, child in enumerate(children, start=1):  # slots from 1, as the oracle did
            if child["kind"] == "pcibr":
                self.bridge(
                    bus,
                    i,
                    0,
                    "pci-bridge",
                    None,
                    False,
                    lambda sec, c=child: self.conventional(c["children"], sec),
                )
            else:
                self.fn(bus, i, 0, "e1000", None, False)

    def root_bus(self, items: list[Node], bus: int, first_slot: int) -> None:
        slot = first_slot
        for item in items:
            kind = item["kind"]
            if kind == "rp":
                self.root_port(item, bus, slot, 0, False)
            elif kind == "mfrp":
                for i, port in enumerate(item["ports"]):
                    self.root_port(port, bus, slot, i, i == 0)
            elif kind == "p2p":
                self.p2p(item, bus, slot)
            elif kind == "pcibr":
                self.bridge(
                    bus,
                    slot,
                    0,
                    "pci-bridge",
                    None,
                    False,
                    lambda sec, c=item: self.conventional(c["children"], sec),
                )
            elif kind == "pxb":
                self.fn(bus, slot, 0, "pxb-pcie", None, False)
                self.pxb_roots.append((slot, item["ports"]))
            else:
                self.place_slot(item, bus, slot, "root")
            slot += 1

    def build(self, items: list[Node]) -> list[PciFunction]:
        if self.arch == "x86_64":
            for addr, model_ids in (
                ("00:00.0", (0x8086, 0x29C0, 0x060000, False)),
                ("00:1f.0", (0x8086, 0x2918, 0x060100, True)),
                ("00:1f.2", (0x8086, 0x2922, 0x010601, True)),
                ("00:1f.3", (0x8086, 0x2930, 0x0C0500, True)),
            ):
                v, d, c, mf = model_ids
                self.functions.append(
                    PciFunction(address=addr, vendor=v, device=d, class_code=c, multifunction=mf)
                )
        else:
            self.functions.append(
                PciFunction(address="00:00.0", vendor=0x1B36, device=0x0008, class_code=0x060000)
            )
        self.root_bus(items, 0, 3)
        for i, (_slot, ports) in enumerate(self.pxb_roots):
            # 0x80 for the first expander, then the next multiple of 0x10 that is free
            root = 0x80 if i == 0 else (self.next_bus // 0x10 + 1) * 0x10
            if self.next_bus >= root or root > 0xF0:
                raise ValueError("too many buses below bus 00 for the expander bus numbers")
            self.next_bus = root
            self.root_bus(ports, root, 0)
        return self.functions


def _fields(fn: PciFunction) -> dict[str, Any]:
    import attrs

    return {a.name: getattr(fn, a.name) for a in attrs.fields(PciFunction)}


def generate(seed: int, arch: str = "x86_64", firmware: str = "acpi") -> Topology:
    """The topology of ``seed`` (x86_64 q35, or aarch64 virt with ``dt`` or ``acpi``)."""
    items = describe(seed, arch, firmware)
    functions = _Builder(arch).build(items)
    return Topology(functions, name=f"gen-{arch}-{firmware}-{seed}")


def features(topo: Topology) -> set[str]:
    """Which of ``FEATURES`` a generated topology has (read from the topology itself)."""
    from iommugroups._io.qemu import QEMU_MODELS

    out: set[str] = set()
    for fn in topo:
        if fn.address.bus == 0 and fn.address.device in (0, 0x1F):
            continue  # the machine's own functions
        model = QEMU_MODELS.get((fn.vendor, fn.device))
        if model == "pcie-root-port":
            out.add("root port with ACS" if fn.acs else "root port without ACS (disable-acs=on)")
        elif model == "ioh3420":
            out.add("ioh3420 root port")
        elif model == "x3130-upstream":
            out.add("switch")
            if any(
                QEMU_MODELS.get((b.vendor, b.device)) == "x3130-upstream"
                for b in topo.bridges_above(fn)
            ):
                out.add("nested switch")
        elif model == "pxb-pcie":
            out.add("pxb-pcie expander bus")
        elif model in ("pcie-pci-bridge", "pci-bridge") or model in IDS:
            out.add(model)
        if fn.pcie_type == PcieType.RC_END or (
            fn.address.bus == 0 and model in ENDPOINTS and fn.physfn is None
        ):
            out.add("integrated endpoint")
        if fn.sriov is not None:
            out.add("SR-IOV nvme PF")
        if fn.address.function and fn.physfn is None:
            if model in ("pcie-root-port", "ioh3420"):
                out.add("multifunction root ports")
            elif fn.multifunction:
                out.add("multifunction slot, bit on every function")
            else:
                out.add("multifunction slot, bit on function 0 only")
    return out & set(FEATURES)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write generated topologies as topology files.")
    p.add_argument("seeds", nargs="+", type=int)
    p.add_argument("--arch", default="x86_64", choices=("x86_64", "aarch64"))
    p.add_argument("--firmware", default=None, choices=("dt", "acpi"))
    p.add_argument("--out", type=Path, help="write SEED.json files here (default: stdout)")
    args = p.parse_args(argv)
    firmware = args.firmware or ("acpi" if args.arch == "x86_64" else "dt")
    for seed in args.seeds:
        text = dumps_topology(generate(seed, args.arch, firmware), "json")
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{args.arch}-{firmware}-{seed}.json").write_text(text)
        else:
            sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
