"""Write a QEMU command line that builds a topology (``iommugroups vm``).

A writer, the inverse of the readers: it maps every PCI function of a
:class:`~iommugroups._kernel.model.Topology` to the QEMU device model that
presents the same facts to the guest kernel (vendor and device id, PCIe port
type, ACS capability, header type and multifunction bit, SR-IOV capability),
places it at the same slot and function behind the same parent, and refuses,
with an :class:`UnbuildableTopology` naming the device, what QEMU cannot
build. The machines are those the oracle's captures were made on:

* ``x86_64``: ``q35`` with an emulated Intel IOMMU (``intel-iommu``, the
  kernel booted with ``intel_iommu=on``); the chipset's own functions
  (host bridge ``00:00.0``, ICH9 ``00:1f.0``, ``00:1f.2``, ``00:1f.3``)
  come with the machine;
* ``aarch64``: ``virt`` with an emulated SMMUv3 (``iommu=smmuv3``), booted
  with a device tree (``dt``) or through UEFI with ACPI tables and an IORT
  (``acpi``); the host bridge ``00:00.0`` comes with the machine.

The device models are QEMU 7.2's (Debian 12): ``pcie-root-port`` (with the
ACS capability SV|TB|RR|CR|UF|DT, or none with ``disable-acs=on``),
``ioh3420`` (no ACS capability), ``x3130-upstream`` and
``xio3130-downstream`` (no ACS capability), ``pxb-pcie`` (an expander host
bridge on ``pcie.0`` opening a new root bus), ``pcie-pci-bridge`` and
``pci-bridge``, the endpoints ``e1000e``, ``e1000``, ``nvme`` (with SR-IOV
through an ``nvme-subsys``) and the modern virtio devices. An endpoint QEMU
builds as PCIe (``e1000e``, ``nvme``, virtio below a port) is a
root-complex integrated endpoint on a root bus; modern virtio devices are
conventional PCI there.

Bus numbers are not QEMU's to choose: the firmware (SeaBIOS on q35) numbers
buses depth first, in slot order, from each root bus up. Where the
topology's numbers differ, the command still builds the same tree, and
:attr:`QemuCommand.addresses` says where each function will appear (x86).
SR-IOV VFs are not devices of the command line: the guest enables them
(``sriov_numvfs``) once the PF's driver is bound.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping
from typing import Literal

import attrs

from .._errors import TopologyError
from .._kernel.model import (
    REQ_ACS_FLAGS,
    AcsFlags,
    PciAddress,
    PcieType,
    PciFunction,
    Topology,
)

__all__ = [
    "ARCHES",
    "DEFAULT_BIOS",
    "DEFAULT_INITRD",
    "DEFAULT_KERNEL",
    "FIRMWARES",
    "QEMU_MODELS",
    "Arch",
    "Firmware",
    "QemuCommand",
    "VM_SCHEMA",
    "UnbuildableTopology",
    "qemu_command",
]

#: The ``schema`` value of ``vm --json``.
VM_SCHEMA = "iommugroups.vm/1"


def __dir__() -> list[str]:
    return __all__


Arch = Literal["x86_64", "aarch64"]
Firmware = Literal["dt", "acpi"]
ARCHES: tuple[str, ...] = ("x86_64", "aarch64")
FIRMWARES: tuple[str, ...] = ("dt", "acpi")


class UnbuildableTopology(TopologyError):
    """QEMU cannot build the topology; ``devices`` names the function(s) at fault."""


#: (vendor, device) -> the QEMU device model that presents those ids.
QEMU_MODELS: Mapping[tuple[int, int], str] = {
    (0x1B36, 0x000C): "pcie-root-port",
    (0x8086, 0x3420): "ioh3420",
    (0x104C, 0x8232): "x3130-upstream",
    (0x104C, 0x8233): "xio3130-downstream",
    (0x1B36, 0x000B): "pxb-pcie",
    (0x1B36, 0x000E): "pcie-pci-bridge",
    (0x1B36, 0x0001): "pci-bridge",
    (0x8086, 0x10D3): "e1000e",
    (0x8086, 0x100E): "e1000",
    (0x1B36, 0x0010): "nvme",
    (0x1AF4, 0x1041): "virtio-net-pci",
    (0x1AF4, 0x1043): "virtio-serial-pci",
    (0x1AF4, 0x1044): "virtio-rng-pci",
    (0x1AF4, 0x1045): "virtio-balloon-pci",
    (0x1AF4, 0x1048): "virtio-scsi-pci",
}

#: The functions a machine brings by itself: address -> (vendor, device, what).
_BUILTIN: Mapping[str, Mapping[PciAddress, tuple[int, int, str]]] = {
    "x86_64": {
        PciAddress(0, 0, 0, 0): (0x8086, 0x29C0, "the host bridge"),
        PciAddress(0, 0, 0x1F, 0): (0x8086, 0x2918, "the ICH9 LPC bridge"),
        PciAddress(0, 0, 0x1F, 2): (0x8086, 0x2922, "the ICH9 SATA controller"),
        PciAddress(0, 0, 0x1F, 3): (0x8086, 0x2930, "the ICH9 SMBus controller"),
    },
    "aarch64": {
        PciAddress(0, 0, 0, 0): (0x1B36, 0x0008, "the host bridge"),
    },
}
#: Root-bus slots a machine keeps for itself.
_RESERVED_SLOTS: Mapping[str, frozenset[int]] = {
    "x86_64": frozenset({0, 0x1F}),
    "aarch64": frozenset({0}),
}

_ROOT_PORTS = frozenset({"pcie-root-port", "ioh3420"})
_PCIE_ENDPOINTS = frozenset({"e1000e", "nvme"})
_VIRTIO = frozenset(m for m in QEMU_MODELS.values() if m.startswith("virtio-"))
_BRIDGES = frozenset(
    {"pcie-root-port", "ioh3420", "x3130-upstream", "xio3130-downstream"}
    | {"pcie-pci-bridge", "pci-bridge"}
)
#: The ACS capability QEMU's pcie-root-port offers (hw/pci/pcie.c, ``pcie_acs_init``).
_ROOT_PORT_ACS = AcsFlags.SV | AcsFlags.TB | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF | AcsFlags.DT
#: QEMU's nvme SR-IOV capability: VF device id, First VF Offset, VF Stride.
_NVME_VF = (0x0010, 1, 1)
#: The prefix of ``-device`` ids, by model.
_ID_PREFIX = {
    "pcie-root-port": "rp",
    "ioh3420": "rp",
    "x3130-upstream": "up",
    "xio3130-downstream": "dn",
    "pxb-pcie": "pxb",
    "pcie-pci-bridge": "p2p",
    "pci-bridge": "pcibr",
}
_TYPE_NAMES = {
    None: "conventional PCI",
    PcieType.ENDPOINT: "a PCIe endpoint",
    PcieType.LEG_END: "a legacy PCIe endpoint",
    PcieType.ROOT_PORT: "a PCIe root port",
    PcieType.UPSTREAM: "a switch upstream port",
    PcieType.DOWNSTREAM: "a switch downstream port",
    PcieType.PCI_BRIDGE: "a PCIe-to-PCI bridge",
    PcieType.PCIE_BRIDGE: "a PCI-to-PCIe bridge",
    PcieType.RC_END: "a root-complex integrated endpoint",
    PcieType.RC_EC: "a root-complex event collector",
}

#: Default paths of the kernel and initramfs, and the UEFI firmware for ``acpi``
#: (Debian's ``qemu-efi-aarch64``).
DEFAULT_KERNEL = "vmlinuz"
DEFAULT_INITRD = "initrd.img"
DEFAULT_BIOS = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"


@attrs.frozen
class QemuCommand:
    """A QEMU command line that builds a topology.

    Attributes:
        argv: the program and its arguments.
        arch: ``"x86_64"`` or ``"aarch64"``.
        firmware: ``"dt"`` or ``"acpi"`` (``"acpi"`` on x86, whose SeaBIOS
            always gives ACPI tables).
        addresses: every function of the topology that the command builds
            (SR-IOV VFs included) -> the address it will have in the guest,
            with buses numbered as the firmware numbers them (exact on x86;
            on arm64 the kernel or UEFI numbers them and may leave gaps).
        notes: what the reader should know (renumbered buses, facts the
            guest kernel sets by itself, the machine's own functions).
    """

    argv: tuple[str, ...]
    arch: str
    firmware: str
    addresses: Mapping[str, str]
    notes: tuple[str, ...] = ()

    def shell(self) -> str:
        """The command as shell text, one ``-device`` per line.

        >>> cmd = QemuCommand(("qemu", "-device", "e1000,bus=pcie.0"), "x86_64", "acpi", {})
        >>> print(cmd.shell())
        qemu \\
          -device e1000,bus=pcie.0
        """
        parts = [shlex.quote(self.argv[0])]
        args = self.argv[1:]
        i = 0
        while i < len(args):
            if args[i].startswith("-") and i + 1 < len(args) and not args[i + 1].startswith("-"):
                parts.append(f"{shlex.quote(args[i])} {shlex.quote(args[i + 1])}")
                i += 2
            else:
                parts.append(shlex.quote(args[i]))
                i += 1
        return " \\\n  ".join(parts)

    def to_json(self) -> dict[str, object]:
        """The command as a JSON-ready dict (the ``vm --json`` output)."""
        return {
            "schema": VM_SCHEMA,
            "arch": self.arch,
            "firmware": self.firmware,
            "argv": list(self.argv),
            "addresses": dict(self.addresses),
            "notes": list(self.notes),
        }


def _fail(fn: PciFunction | PciAddress, problem: str) -> UnbuildableTopology:
    addr = fn.address if isinstance(fn, PciFunction) else fn
    return UnbuildableTopology(f"{addr}: {problem}", (str(addr),))


def _slot(fn: PciFunction) -> str:
    return f"{fn.address.device:#x}.{fn.address.function}"


class _Writer:
    """One pass over the topology, parents before children (QEMU needs a bus to exist)."""

    def __init__(self, topo: Topology, arch: str, firmware: str) -> None:
        self.topo = topo
        self.arch = arch
        self.firmware = firmware
        self.devices: list[str] = []
        self.notes: list[str] = []
        self.ids: dict[PciAddress, str] = {}
        self.counter = 0
        self.chassis = 0
        self.pci_chassis = 0
        self.serial = 0
        self.addresses: dict[str, str] = {}
        self.acs_enabled_by_kernel: list[str] = []
        self.balloon: PciAddress | None = None

    # --- the checks -----------------------------------------------------

    def model_of(self, fn: PciFunction) -> str:
        model = QEMU_MODELS.get((fn.vendor, fn.device))
        if model is None:
            raise _fail(
                fn,
                f"no QEMU device model presents {fn.vendor:04x}:{fn.device:04x} "
                f"({_TYPE_NAMES.get(fn.pcie_type, 'a PCI function')}); the models are "
                + ", ".join(sorted(set(QEMU_MODELS.values()))),
            )
        return model

    def bus_kind(self, bus: int) -> tuple[str, PciFunction | None]:
        """``"root"``, ``"link"`` (below a root or downstream port), ``"switch"``
        (an upstream port's bus), ``"pci"`` (conventional) or ``"other"``."""
        if self.topo.is_root_bus(0, bus):
            return "root", None
        br = self.topo.bus_self(0, bus)
        if br is None:  # a virtual bus of VFs only
            return "other", None
        if br.pcie_type in (PcieType.ROOT_PORT, PcieType.DOWNSTREAM):
            return "link", br
        if br.pcie_type == PcieType.UPSTREAM:
            return "switch", br
        if br.pcie_type is None or br.pcie_type == PcieType.PCI_BRIDGE:
            return "pci", br
        return "other", br

    def expected_type(self, fn: PciFunction, model: str, bus: str) -> PcieType | None:
        if model in _ROOT_PORTS:
            if bus != "root":
                raise _fail(fn, f"a {model} root port must sit on a root bus")
            return PcieType.ROOT_PORT
        if model == "x3130-upstream":
            if bus != "link":
                raise _fail(
                    fn, "an x3130-upstream switch port must sit below a root or downstream port"
                )
            return PcieType.UPSTREAM
        if model == "xio3130-downstream":
            if bus != "switch":
                raise _fail(fn, "an xio3130-downstream port must sit on an upstream port's bus")
            return PcieType.DOWNSTREAM
        if model == "pxb-pcie":
            if fn.address.bus != 0:
                raise _fail(fn, "a pxb-pcie expander host bridge must sit on pcie.0 (bus 00)")
            return None
        if model == "pcie-pci-bridge":
            if bus not in ("root", "link"):
                raise _fail(fn, "a pcie-pci-bridge must sit on a PCIe bus (a root bus or a port)")
            return PcieType.PCI_BRIDGE
        if model in ("pci-bridge", "e1000"):
            if bus in ("switch", "other"):
                raise _fail(fn, f"QEMU cannot put {model} on this bus")
            return None
        if model in _PCIE_ENDPOINTS:
            if bus == "root":
                return PcieType.RC_END
            if bus == "link":
                return PcieType.ENDPOINT
            raise _fail(fn, f"QEMU's {model} is PCIe: it cannot sit on a conventional PCI bus")
        # virtio (modern): PCIe below a port, conventional on a root or PCI bus
        if bus == "link":
            return PcieType.ENDPOINT
        if bus in ("root", "pci"):
            return None
        raise _fail(fn, f"QEMU cannot put {model} on this bus")

    def check(self, fn: PciFunction, model: str) -> list[str]:
        """The function's facts against the model's; returns the model's extra options."""
        kind, parent = self.bus_kind(fn.address.bus)
        want = self.expected_type(fn, model, kind)
        if fn.pcie_type != want:
            raise _fail(
                fn,
                f"the topology makes it {_TYPE_NAMES.get(fn.pcie_type, 'unknown')}, but "
                f"QEMU's {model} there is {_TYPE_NAMES.get(want, 'unknown')}",
            )
        if kind == "link" and fn.address.device != 0:
            assert parent is not None
            raise _fail(
                fn,
                f"below the PCIe port {parent.address} only device 0 exists (a link has one "
                "device; Linux scans no other slot there)",
            )
        if model in _BRIDGES and fn.header_type != 1:
            raise _fail(fn, f"QEMU's {model} is a PCI-PCI bridge (header type 1)")
        if model not in _BRIDGES and fn.header_type != 0:
            raise _fail(
                fn, f"QEMU's {model} has header type 0, the topology says {fn.header_type}"
            )
        if fn.dma_alias_devfns:
            raise _fail(fn, "extra DMA aliases cannot be given to a QEMU device")
        options: list[str] = []
        if model == "pcie-root-port":
            if "acs" in fn.unknown:
                raise _fail(
                    fn, "its ACS capability is unknown: QEMU needs to know whether to offer one"
                )
            if fn.acs is None:
                options.append("disable-acs=on")
            elif REQ_ACS_FLAGS & fn.acs.cap != REQ_ACS_FLAGS & _ROOT_PORT_ACS:
                raise _fail(
                    fn,
                    f"ACS capability {fn.acs.cap.names()}: QEMU's pcie-root-port offers "
                    f"{_ROOT_PORT_ACS.names()} or (disable-acs=on) none",
                )
            elif REQ_ACS_FLAGS & fn.acs.ctrl != REQ_ACS_FLAGS:
                self.acs_enabled_by_kernel.append(str(fn.address))
        elif fn.acs is not None:
            raise _fail(fn, f"QEMU's {model} has no ACS capability")
        if fn.sriov is not None and model != "nvme":
            raise _fail(fn, f"QEMU's {model} has no SR-IOV capability (only nvme has one)")
        return options

    # --- the walk -------------------------------------------------------

    def new_id(self, model: str) -> str:
        self.counter += 1
        return f"{_ID_PREFIX[model]}{self.counter}"

    def bus_name(self, bus: int) -> str:
        if bus == 0:
            return "pcie.0"
        if self.topo.is_root_bus(0, bus):
            return self.ids[self.root_hosts[bus].address]
        br = self.topo.bus_self(0, bus)
        assert br is not None
        return self.ids[br.address]

    def slots(self, bus: int) -> Iterator[list[PciFunction]]:
        """The non-VF functions on a bus, slot by slot, in devfn order."""
        by_slot: dict[int, list[PciFunction]] = {}
        for fn in self.topo.devices_on_bus(0, bus):
            if fn.physfn is None:
                by_slot.setdefault(fn.address.device, []).append(fn)
        for slot in sorted(by_slot):
            yield sorted(by_slot[slot], key=lambda f: f.address.function)

    def emit_bus(self, bus: int) -> None:
        for funcs in self.slots(bus):
            first = funcs[0]
            if first.address.function != 0:
                raise _fail(
                    first,
                    f"slot {first.address.bus:02x}:{first.address.device:02x} has no function 0: "
                    "QEMU would build it, but Linux scans a slot's other functions only "
                    "after function 0",
                )
            if len(funcs) > 1 and not first.multifunction:
                raise _fail(
                    funcs[1],
                    f"function 0 of its slot ({first.address}) lacks the multifunction bit: "
                    "QEMU cannot populate another function beside it",
                )
            for fn in funcs:
                self.emit(fn, bus)

    def emit(self, fn: PciFunction, bus: int) -> None:
        builtin = _BUILTIN[self.arch].get(fn.address)
        if builtin is not None:
            vendor, device, what = builtin
            if (fn.vendor, fn.device) != (vendor, device):
                raise _fail(
                    fn,
                    f"this address belongs to {what} ({vendor:04x}:{device:04x}) of the "
                    f"{'q35' if self.arch == 'x86_64' else 'virt'} machine",
                )
            return
        if bus == 0 and fn.address.device in _RESERVED_SLOTS[self.arch]:
            raise _fail(
                fn,
                f"slot 00:{fn.address.device:02x} belongs to the "
                f"{'q35' if self.arch == 'x86_64' else 'virt'} machine's own functions",
            )
        model = self.model_of(fn)
        options = self.check(fn, model)
        if model == "virtio-balloon-pci":
            if self.balloon is not None:
                raise _fail(
                    fn, f"QEMU supports only one virtio-balloon-pci (the first is {self.balloon})"
                )
            self.balloon = fn.address
        parts = [model]
        dev_id = None
        if model in _ID_PREFIX:
            dev_id = self.new_id(model)
            self.ids[fn.address] = dev_id
            parts.append(f"id={dev_id}")
        if model == "pxb-pcie":
            root = self.pxb_bus[fn.address]
            parts.append(f"bus_nr={root}")
        parts.append(f"bus={self.bus_name(bus)}")
        parts.append(f"addr={_slot(fn)}")
        if model in _ROOT_PORTS or model == "xio3130-downstream":
            self.chassis += 1
            parts.append(f"chassis={self.chassis},slot={self.chassis}")
        if model == "pci-bridge":
            self.pci_chassis += 1
            parts.append(f"chassis_nr={self.pci_chassis}")
        if model in _VIRTIO:
            parts.append("disable-legacy=on")
        if model == "nvme":
            self.serial += 1
            parts.append(f"serial=n{self.serial}")
            if fn.sriov is not None:
                parts.extend(self.sriov_options(fn))
        parts.extend(options)
        if fn.multifunction:
            parts.append("multifunction=on")
        self.devices.extend(["-device", ",".join(parts)])
        if fn.is_bridge and fn.secondary_bus is not None:
            self.emit_bus(fn.secondary_bus)
        if model == "pxb-pcie":
            self.emit_bus(self.pxb_bus[fn.address])

    def sriov_options(self, fn: PciFunction) -> list[str]:
        cap = fn.sriov
        assert cap is not None
        if (cap.vf_device, cap.offset, cap.stride) != _NVME_VF:
            raise _fail(
                fn,
                f"SR-IOV VF device {cap.vf_device:04x}, offset {cap.offset}, stride "
                f"{cap.stride}: QEMU's nvme has VF device 0010, offset 1, stride 1",
            )
        if not 1 <= cap.total_vfs <= 127:
            raise _fail(fn, f"SR-IOV TotalVFs {cap.total_vfs}: QEMU's nvme offers 1 to 127")
        for vf in cap.vf_addresses(fn.address):
            other = self.topo.get(vf) if vf in self.topo else None
            if other is not None and other.physfn is None:
                raise _fail(fn, f"its VF {vf} would take the place of {other.address}")
        n = cap.total_vfs
        sub = f"ss{fn.address.bus:02x}{fn.address.device:02x}{fn.address.function}"
        self.devices.extend(["-device", f"nvme-subsys,id={sub}"])
        # QEMU's constraints (hw/nvme/ctrl.c): 2 flexible queues and 1 interrupt per VF,
        # and room for the PF's own.
        return [
            f"subsys={sub}",
            f"sriov_max_vfs={n}",
            f"sriov_vq_flexible={2 * n}",
            f"sriov_vi_flexible={n}",
            f"max_ioqpairs={2 * n + 4}",
            f"msix_qsize={n + 4}",
        ]

    # --- the whole topology ----------------------------------------------

    def run(self) -> list[str]:
        topo = self.topo
        others = sorted({f.address.domain for f in topo} - {0})
        if others:
            raise _fail(
                next(f for f in topo if f.address.domain == others[0]),
                "QEMU puts every device in PCI domain 0000",
            )
        if topo.platform_devices:
            raise UnbuildableTopology(
                f"platform device {topo.platform_devices[0].name}: QEMU's machines have no "
                "platform devices behind the IOMMU to give it",
                (topo.platform_devices[0].name,),
            )
        if topo.iommus or topo.id_mappings:
            self.notes.append(
                "the topology's IOMMU instances and ID mappings are not used: the machine's "
                "own firmware describes its one IOMMU, every requester id its stream id"
            )
        for vf in (f for f in topo if f.physfn is not None):
            pf = topo.get(vf.physfn) if vf.physfn is not None else None
            if pf is None or pf.sriov is None or self.model_of(pf) != "nvme":
                raise _fail(vf, "an SR-IOV VF whose PF is not a QEMU nvme with SR-IOV")
        # Root buses: 00 is pcie.0; each other one needs a pxb-pcie host bridge.
        roots = sorted(
            b for b in {f.address.bus for f in topo if f.physfn is None} if topo.is_root_bus(0, b)
        )
        extra = [b for b in roots if b != 0]
        pxbs = [
            f
            for f in topo.devices_on_bus(0, 0)
            if QEMU_MODELS.get((f.vendor, f.device)) == "pxb-pcie"
        ]
        if extra and self.arch == "aarch64" and self.firmware == "dt":
            raise _fail(
                pxbs[0].address if pxbs else PciAddress(0, extra[0], 0, 0),
                "a pxb-pcie expander root bus needs firmware to describe it: use --firmware acpi",
            )
        if len(pxbs) != len(extra):
            where = pxbs[len(extra)] if len(pxbs) > len(extra) else None
            if where is not None:
                raise _fail(where, "a pxb-pcie expander host bridge with no root bus of its own")
            missing = extra[len(pxbs)]
            raise _fail(
                PciAddress(0, missing, 0, 0),
                f"root bus {missing:02x} has no pxb-pcie expander host bridge on bus 00 "
                "to open it",
            )
        self.pxb_bus = {p.address: b for p, b in zip(pxbs, extra, strict=True)}
        self.root_hosts = {b: p for p, b in zip(pxbs, extra, strict=True)}
        self.number_buses(roots)
        for root in roots:
            if root == 0:
                self.emit_bus(0)
        return self.devices

    def dfs_numbers(self, root: int) -> tuple[dict[int, int], int]:
        """Topology bus -> guest bus below ``root``, and the last number used.

        SeaBIOS (``pci_bios_init_bus_rec``) gives each bridge, in devfn order,
        the next number, and numbers everything below it before the next bridge.
        """
        mapping = {root: root}
        last = root
        stack = [iter(self.topo.devices_on_bus(0, root))]
        while stack:
            fn = next(stack[-1], None)
            if fn is None:
                stack.pop()
                continue
            if fn.is_bridge and fn.secondary_bus is not None and fn.physfn is None:
                last += 1
                mapping[fn.secondary_bus] = last
                stack.append(iter(self.topo.devices_on_bus(0, fn.secondary_bus)))
        return mapping, last

    def number_buses(self, roots: list[int]) -> None:
        """Where each function will appear: buses numbered depth first (SeaBIOS)."""
        topo = self.topo
        renumbered: list[str] = []
        limits = [*roots[1:], 0x100]
        for root, limit in zip(roots, limits, strict=True):
            mapping, last = self.dfs_numbers(root)
            if last >= limit:
                raise UnbuildableTopology(
                    f"the buses below root bus {root:02x} need numbers up to {last:02x}, "
                    "past " + (f"the next root bus {limit:02x}" if limit < 0x100 else "ff")
                )
            for fn in topo.functions_below(0, root):
                bus = mapping.get(fn.address.bus, fn.address.bus)
                new = PciAddress(0, bus, fn.address.device, fn.address.function)
                self.addresses[str(fn.address)] = str(new)
                if new != fn.address and len(renumbered) < 3:
                    renumbered.append(f"{fn.address} -> {new}")
        for vf in (f for f in topo if f.physfn is not None):
            pf_new = PciAddress.parse(self.addresses[str(vf.physfn)])
            pf_old = vf.physfn
            assert pf_old is not None
            delta = vf.address.rid - pf_old.rid
            rid = pf_new.rid + delta
            self.addresses[str(vf.address)] = str(PciAddress.from_devfn(0, rid >> 8, rid & 0xFF))
        if renumbered:
            self.notes.append(
                "the firmware numbers buses depth first, so the guest shows some functions "
                "elsewhere: " + ", ".join(renumbered) + (", ..." if len(renumbered) == 3 else "")
            )


def qemu_command(
    topo: Topology,
    *,
    arch: str = "x86_64",
    firmware: str | None = None,
    kernel: str = DEFAULT_KERNEL,
    initrd: str = DEFAULT_INITRD,
    append: str = "",
    bios: str = DEFAULT_BIOS,
    memory_mb: int | None = None,
) -> QemuCommand:
    """A QEMU command line that builds ``topo`` and boots ``kernel`` with ``initrd``.

    Args:
        topo: the topology (any that :func:`iommugroups.load` reads).
        arch: ``"x86_64"`` (q35 + intel-iommu) or ``"aarch64"`` (virt + SMMUv3).
        firmware: ``"dt"`` or ``"acpi"`` for aarch64 (default ``"dt"``); x86
            always boots with ACPI (``"acpi"``).
        kernel, initrd: the files ``-kernel`` and ``-initrd`` name.
        append: extra kernel command-line arguments.
        bios: the UEFI firmware for aarch64 with ``acpi``.
        memory_mb: guest memory (default 512 on x86, 1024 on aarch64).

    Raises:
        UnbuildableTopology: a function QEMU cannot build, named.
        ValueError: an unknown ``arch`` or ``firmware``.

    >>> from iommugroups._kernel.model import Acs, PcieType, PciFunction, Topology
    >>> rp = PciFunction("00:03.0", vendor=0x1B36, device=0x000C, class_code=0x060400,
    ...     header_type=1, pcie_type=PcieType.ROOT_PORT, secondary_bus=1, subordinate_bus=1)
    >>> nic = PciFunction("01:00.0", vendor=0x8086, device=0x10D3, class_code=0x020000,
    ...     pcie_type=PcieType.ENDPOINT)
    >>> cmd = qemu_command(Topology([rp, nic]))
    >>> [a for a in cmd.argv if "bus=" in a]  # doctest: +NORMALIZE_WHITESPACE
    ['pcie-root-port,id=rp1,bus=pcie.0,addr=0x3.0,chassis=1,slot=1,disable-acs=on',
     'e1000e,bus=rp1,addr=0x0.0']
    """
    if arch not in ARCHES:
        raise ValueError(f"unknown arch {arch!r} (one of: {', '.join(ARCHES)})")
    if firmware is None:
        firmware = "acpi" if arch == "x86_64" else "dt"
    if firmware not in FIRMWARES:
        raise ValueError(f"unknown firmware {firmware!r} (one of: {', '.join(FIRMWARES)})")
    if arch == "x86_64" and firmware != "acpi":
        raise ValueError("x86 (q35) boots with ACPI only: firmware 'acpi'")
    writer = _Writer(topo, arch, firmware)
    devices = writer.run()
    notes = list(writer.notes)
    if writer.acs_enabled_by_kernel:
        notes.append(
            "ACS control is set by the guest kernel, not by QEMU: "
            + ", ".join(writer.acs_enabled_by_kernel[:3])
            + (", ..." if len(writer.acs_enabled_by_kernel) > 3 else "")
            + " will read it enabled"
            + (" (x86 enables it at boot)" if arch == "x86_64" else "")
        )
    missing = [str(a) for a in _BUILTIN[arch] if a not in topo]
    if missing:
        notes.append(
            "the machine brings functions the topology does not list: " + ", ".join(missing)
        )
    if arch == "x86_64":
        argv = [
            "qemu-system-x86_64",
            "-machine", "q35,kernel-irqchip=split",
            "-accel", "tcg",
            "-m", str(memory_mb or 512),
            "-smp", "1",
            "-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
            "-device", "intel-iommu,intremap=on",
        ]  # fmt: skip
        cmdline = "console=ttyS0 intel_iommu=on quiet loglevel=3 panic=-1"
    else:
        acpi = "on" if firmware == "acpi" else "off"
        argv = [
            "qemu-system-aarch64",
            "-machine", f"virt,iommu=smmuv3,acpi={acpi}",
            "-cpu", "max",
            "-accel", "tcg",
            "-m", str(memory_mb or 1024),
            "-smp", "1",
            "-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
        ]  # fmt: skip
        if firmware == "acpi":
            argv += ["-bios", bios]
        cmdline = "console=ttyAMA0 quiet loglevel=3 panic=-1" + (
            " acpi=force" if firmware == "acpi" else ""
        )
    if append:
        cmdline += " " + append
    argv += ["-kernel", kernel, "-initrd", initrd, "-append", cmdline, *devices]
    return QemuCommand(
        argv=tuple(argv),
        arch=arch,
        firmware=firmware,
        addresses=dict(sorted(writer.addresses.items())),
        notes=tuple(notes),
    )
