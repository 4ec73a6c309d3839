"""``iommugroups vm``: the QEMU command line that builds a topology.

Ground truth: every x86 capture of the oracle (``tests/data/oracle``) records
the ``qemu_args`` that built the machine whose config space it holds. Reading
the capture back and writing a command line for it must give the same QEMU
device tree: the same models at the same slots and functions behind the same
parents, with the same ``multifunction``, ``disable-acs``, ``disable-legacy``,
``bus_nr`` and ``sriov_max_vfs`` settings (ids, chassis and serial numbers
aside). Booting such command lines under a real kernel is the harness's job
(``tools/kernel_harness``, ``tests/test_kernel_harness.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iommugroups import load
from iommugroups._cli.app import main
from iommugroups._errors import IommuGroupsError
from iommugroups._io.qemu import QemuCommand, UnbuildableTopology, qemu_command
from iommugroups._kernel.model import (
    FULL_ACS,
    Acs,
    AcsFlags,
    PcieType,
    PciFunction,
    PlatformDevice,
    SriovCapability,
    Topology,
)
from iommugroups.schemas import validate

DATA = Path(__file__).parent / "data" / "oracle"
CAPTURES = sorted((DATA / "captures").glob("*.json")) + sorted((DATA / "designed").glob("*.json"))

#: The settings that change what the guest sees.
_KEEP = {"multifunction", "disable-acs", "sriov_max_vfs", "disable-legacy", "bus_nr"}


def device_tree(argv: list[str]) -> tuple[Any, ...]:
    """QEMU's ``-device`` list as a tree: (model, slot.fn, settings, children), sorted.

    A device without ``addr`` takes the lowest free slot of its bus, as QEMU
    does; ``disable-acs`` on an ``ioh3420`` (which has no ACS capability) is
    dropped.
    """
    children: dict[str, list[list[Any]]] = {"pcie.0": []}
    for i, arg in enumerate(argv):
        if arg != "-device":
            continue
        model, *props = argv[i + 1].split(",")
        kv = dict(p.split("=", 1) for p in props)
        if model in ("intel-iommu", "nvme-subsys"):
            continue
        bus = kv.get("bus", "pcie.0")
        if "addr" in kv:
            slot, _, fn = kv["addr"].removeprefix("0x").partition(".")
            addr = f"{int(slot, 16):#x}.{fn or '0'}"
        else:
            used = {c[1] for c in children[bus]}
            free = next(s for s in range(32) if f"{s:#x}.0" not in used)
            addr = f"{free:#x}.0"
        keep = tuple(
            sorted(
                (k, v)
                for k, v in kv.items()
                if k in _KEEP and not (model == "ioh3420" and k == "disable-acs")
            )
        )
        node: list[Any] = [model, addr, keep, []]
        children[bus].append(node)
        if "id" in kv:
            children[kv["id"]] = node[3]

    def canon(nodes: list[list[Any]]) -> tuple[Any, ...]:
        return tuple(sorted((m, a, k, canon(c)) for m, a, k, c in nodes))

    return canon(children["pcie.0"])


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_capture_rebuilds_its_own_machine(capture: Path) -> None:
    """The command for a capture's config space builds the machine the capture was made on."""
    recorded = json.loads(capture.read_text())["qemu_args"]
    cmd = qemu_command(load(capture))
    assert device_tree(list(cmd.argv)) == device_tree(recorded)
    # the firmware numbers buses as the capture shows them
    assert all(k == v for k, v in cmd.addresses.items())
    assert cmd.notes == ()


def test_there_are_captures_with_every_model() -> None:
    models = set()
    for capture in CAPTURES:
        models |= {a.split(",")[0] for a in json.loads(capture.read_text())["qemu_args"]}
    assert {
        "pcie-root-port",
        "ioh3420",
        "x3130-upstream",
        "xio3130-downstream",
        "pxb-pcie",
        "pcie-pci-bridge",
        "pci-bridge",
        "e1000e",
        "e1000",
        "nvme",
        "virtio-net-pci",
    } <= models


# --- building blocks for hand-made topologies --------------------------------


def rp(addr: str, sec: int, *, acs: Acs | None = FULL_ACS, mf: bool = False) -> PciFunction:
    return PciFunction(
        addr,
        vendor=0x1B36,
        device=0x000C,
        class_code=0x060400,
        header_type=1,
        pcie_type=PcieType.ROOT_PORT,
        acs=acs,
        multifunction=mf,
        secondary_bus=sec,
        subordinate_bus=sec,
    )


def e1000e(addr: str, ptype: PcieType = PcieType.ENDPOINT, **kw: Any) -> PciFunction:
    return PciFunction(
        addr, vendor=0x8086, device=0x10D3, class_code=0x020000, pcie_type=ptype, **kw
    )


def nvme(addr: str, **kw: Any) -> PciFunction:
    return PciFunction(
        addr, vendor=0x1B36, device=0x0010, class_code=0x010802, pcie_type=PcieType.ENDPOINT, **kw
    )


def devices(cmd: QemuCommand) -> list[str]:
    return [cmd.argv[i + 1] for i, a in enumerate(cmd.argv) if a == "-device"]


def test_root_port_with_and_without_acs() -> None:
    topo = Topology(
        [rp("00:03.0", 1), e1000e("01:00.0"), rp("00:04.0", 2, acs=None), e1000e("02:00.0")]
    )
    devs = devices(qemu_command(topo))
    assert devs[1:] == [
        "pcie-root-port,id=rp1,bus=pcie.0,addr=0x3.0,chassis=1,slot=1",
        "e1000e,bus=rp1,addr=0x0.0",
        "pcie-root-port,id=rp2,bus=pcie.0,addr=0x4.0,chassis=2,slot=2,disable-acs=on",
        "e1000e,bus=rp2,addr=0x0.0",
    ]
    assert devs[0] == "intel-iommu,intremap=on"


def test_acs_control_left_to_the_kernel_is_noted() -> None:
    port = rp("00:03.0", 1, acs=Acs(cap=AcsFlags.parse("SV|RR|CR|UF"), ctrl=AcsFlags.NONE))
    cmd = qemu_command(Topology([port]))
    assert any("ACS control is set by the guest kernel" in n and "00:03.0" in n for n in cmd.notes)


def test_sriov_nvme_gets_a_subsystem_and_its_vfs_are_not_devices() -> None:
    cap = SriovCapability(total_vfs=3, num_vfs=3, offset=1, stride=1, vf_device=0x0010)
    pf = nvme("01:00.0", sriov=cap)
    vfs = [nvme(f"01:00.{i}", physfn="01:00.0") for i in (1, 2, 3)]
    cmd = qemu_command(Topology([rp("00:03.0", 1), pf, *vfs]))
    devs = devices(cmd)
    assert "nvme-subsys,id=ss01000" in devs
    (line,) = [d for d in devs if d.startswith("nvme,")]
    assert "subsys=ss01000" in line
    assert "sriov_max_vfs=3" in line
    assert cmd.addresses["0000:01:00.3"] == "0000:01:00.3"


def test_bus_numbers_the_firmware_gives_are_reported() -> None:
    # bus 5 below the first root port: SeaBIOS numbers it 1
    topo = Topology([rp("00:03.0", 5), e1000e("05:00.0")])
    cmd = qemu_command(topo)
    assert cmd.addresses["0000:05:00.0"] == "0000:01:00.0"
    assert any("0000:05:00.0 -> 0000:01:00.0" in n for n in cmd.notes)


def test_missing_machine_functions_are_noted() -> None:
    cmd = qemu_command(Topology([e1000e("00:03.0", PcieType.RC_END)]))
    assert any("0000:00:1f.0" in n for n in cmd.notes)


REFUSED = [
    (
        "unknown ids",
        [PciFunction("00:03.0", vendor=0x10EC, device=0x8168, class_code=0x020000)],
        "0000:00:03.0: no QEMU device model presents 10ec:8168",
    ),
    (
        "endpoint on slot 1 of a link",
        [rp("00:03.0", 1), e1000e("01:01.0")],
        "0000:01:01.0: below the PCIe port 0000:00:03.0 only device 0 exists",
    ),
    (
        "function 1 beside a single-function function 0",
        [rp("00:03.0", 1), e1000e("01:00.0"), e1000e("01:00.1")],
        "0000:01:00.1: function 0 of its slot (0000:01:00.0) lacks the multifunction bit",
    ),
    (
        "no function 0",
        [rp("00:03.0", 1), e1000e("01:00.1")],
        "0000:01:00.1: slot 01:00 has no function 0",
    ),
    (
        "partial ACS on a root port",
        [rp("00:03.0", 1, acs=Acs(cap=AcsFlags.parse("SV|CR|UF"), ctrl=AcsFlags.NONE))],
        "0000:00:03.0: ACS capability SV|CR|UF: QEMU's pcie-root-port offers",
    ),
    (
        "ACS on an endpoint",
        [rp("00:03.0", 1), e1000e("01:00.0", acs=FULL_ACS)],
        "0000:01:00.0: QEMU's e1000e has no ACS capability",
    ),
    (
        "wrong port type",
        [rp("00:03.0", 1), e1000e("01:00.0", PcieType.RC_END)],
        "the topology makes it a root-complex integrated endpoint, but QEMU's e1000e there "
        "is a PCIe endpoint",
    ),
    (
        "switch upstream port on the root bus",
        [
            PciFunction(
                "00:03.0",
                vendor=0x104C,
                device=0x8232,
                class_code=0x060400,
                header_type=1,
                pcie_type=PcieType.UPSTREAM,
                secondary_bus=1,
            )
        ],
        "0000:00:03.0: an x3130-upstream switch port must sit below a root or downstream port",
    ),
    (
        "the q35 LPC bridge's address",
        [e1000e("00:1f.0", PcieType.RC_END)],
        "0000:00:1f.0: this address belongs to the ICH9 LPC bridge (8086:2918)",
    ),
    (
        "a second root bus without an expander",
        [e1000e("80:00.0", PcieType.RC_END)],
        "root bus 80 has no pxb-pcie expander host bridge",
    ),
    (
        "SR-IOV stride QEMU does not have",
        [
            rp("00:03.0", 1),
            nvme(
                "01:00.0",
                sriov=SriovCapability(total_vfs=2, num_vfs=0, offset=1, stride=2, vf_device=0x10),
            ),
        ],
        "0000:01:00.0: SR-IOV VF device 0010, offset 1, stride 2",
    ),
    (
        "SR-IOV on an e1000e",
        [
            rp("00:03.0", 1),
            e1000e(
                "01:00.0",
                sriov=SriovCapability(total_vfs=2, num_vfs=0, offset=1, stride=1, vf_device=0x10),
            ),
        ],
        "0000:01:00.0: QEMU's e1000e has no SR-IOV capability",
    ),
    (
        "another PCI domain",
        [PciFunction("0001:00:03.0", vendor=0x8086, device=0x10D3, pcie_type=PcieType.RC_END)],
        "0001:00:03.0: QEMU puts every device in PCI domain 0000",
    ),
    (
        "two balloons",
        [
            PciFunction("00:03.0", vendor=0x1AF4, device=0x1045, class_code=0x00FF00),
            PciFunction("00:04.0", vendor=0x1AF4, device=0x1045, class_code=0x00FF00),
        ],
        "0000:00:04.0: QEMU supports only one virtio-balloon-pci",
    ),
]


@pytest.mark.parametrize(
    ("functions", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_refused_naming_the_device(functions: list[PciFunction], message: str) -> None:
    with pytest.raises(UnbuildableTopology) as info:
        qemu_command(Topology(functions))
    assert message in str(info.value)
    assert isinstance(info.value, IommuGroupsError)
    assert info.value.devices


def test_platform_devices_refused() -> None:
    topo = Topology([], platform_devices=[PlatformDevice("HISI0162:01", iommu="smmu0")])
    with pytest.raises(UnbuildableTopology, match="platform device HISI0162:01"):
        qemu_command(topo)


# --- arm64 -------------------------------------------------------------------


def test_arm64_device_tree_and_acpi() -> None:
    topo = Topology([rp("00:01.0", 1), nvme("01:00.0")])
    dt = qemu_command(topo, arch="aarch64")
    assert dt.argv[0] == "qemu-system-aarch64"
    assert "virt,iommu=smmuv3,acpi=off" in dt.argv
    assert "-bios" not in dt.argv
    assert "acpi=force" not in " ".join(dt.argv)
    acpi = qemu_command(topo, arch="aarch64", firmware="acpi", bios="/fw/QEMU_EFI.fd")
    assert "virt,iommu=smmuv3,acpi=on" in acpi.argv
    assert acpi.argv[acpi.argv.index("-bios") + 1] == "/fw/QEMU_EFI.fd"
    assert "acpi=force" in acpi.argv[acpi.argv.index("-append") + 1]
    assert devices(dt) == devices(acpi)


def test_arm64_refuses_the_q35_chipset_and_dt_expanders() -> None:
    q35 = load(DATA / "designed" / "rootports-acs.json")
    with pytest.raises(
        UnbuildableTopology, match="0000:00:00.0: this address belongs to the host"
    ):
        qemu_command(q35, arch="aarch64")
    without_host = q35.replace(functions=[f for f in q35 if f.address.device != 0])
    with pytest.raises(UnbuildableTopology, match="0000:00:1f.0: no QEMU device model"):
        qemu_command(without_host, arch="aarch64")
    expander = load(DATA / "designed" / "expander-bus.json")
    arm = expander.replace(functions=[f for f in expander if f.address.device not in (0, 0x1F)])
    with pytest.raises(UnbuildableTopology, match="use --firmware acpi"):
        qemu_command(arm, arch="aarch64")
    assert "pxb-pcie" in " ".join(qemu_command(arm, arch="aarch64", firmware="acpi").argv)


def test_bad_arch_or_firmware() -> None:
    topo = Topology([])
    with pytest.raises(ValueError, match="unknown arch"):
        qemu_command(topo, arch="riscv64")
    with pytest.raises(ValueError, match="ACPI only"):
        qemu_command(topo, firmware="dt")


# --- the command line ----------------------------------------------------------


def test_cli_prints_a_shell_command(capsys: pytest.CaptureFixture[str]) -> None:
    capture = DATA / "designed" / "switch.json"
    assert main(["vm", str(capture), "--kernel", "bzImage", "--initrd", "rd.gz"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("qemu-system-x86_64 \\\n")
    assert "  -kernel bzImage \\\n  -initrd rd.gz \\\n" in out
    assert "  -device x3130-upstream,id=up2,bus=rp1,addr=0x0.0 \\\n" in out
    # every -device on its own line, and the text is a valid shell word list
    import shlex

    words = shlex.split(out.replace("\\\n", " "))
    assert device_tree(words) == device_tree(json.loads(capture.read_text())["qemu_args"])


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vm", str(DATA / "designed" / "expander-bus.json"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"schema", "arch", "firmware", "argv", "addresses", "notes"}
    assert validate(data, "iommugroups.vm/1", strict=True) == []
    assert data["arch"] == "x86_64"
    assert data["firmware"] == "acpi"
    assert data["addresses"]["0000:82:00.0"] == "0000:82:00.0"


def test_cli_refusal_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vm", "--example", "desktop"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "iommugroups: error: 0000:00:00.0: this address belongs to the host bridge"
    )
    assert "Traceback" not in err
    assert err.count("\n") == 1


def test_cli_x86_has_no_device_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vm", "--example", "desktop", "--firmware", "dt"]) == 2
    assert "--firmware dt is for --arch aarch64" in capsys.readouterr().err
