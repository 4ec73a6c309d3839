"""``read_sysfs``: real machines' sysfs, copies of it, and hostile trees.

The fake trees are built the way the kernel lays sysfs out: device
directories under ``sys/devices``, reached through the symbolic links of
``sys/bus/pci/devices``; ``driver``, ``physfn`` and ``iommu_group`` links;
``sys/kernel/iommu_groups/N/devices/<dev>`` links. Their configuration space
is that of the oracle's real-kernel captures, so what is read can be compared
with what the kernel reported.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from iommugroups import canonical_groups
from iommugroups._errors import InputError
from iommugroups._io import sysfs as sysfs_module
from iommugroups._io.load import loads
from iommugroups._io.sysfs import MAX_CONFIG_BYTES, read_sysfs
from iommugroups._kernel.model import PciAddress, Topology
from iommugroups._kernel.reading import Reading, Unknown

CAPTURES = Path(__file__).parent / "data" / "oracle" / "captures"
NO_GROUPS = "this machine has no IOMMU groups (IOMMU off?)"


def capture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CAPTURES / f"{name}.json").read_text())
    return data


def capture_topology(name: str) -> Topology:
    """The capture's topology as sysfs shows it to root.

    A config file of exactly 256 bytes is the kernel's ``cfg_size``: no
    extended space, so no ACS or SR-IOV capability (``pci_cfg_space_size``);
    the bytes alone leave that open, sysfs does not.
    """
    topo = loads((CAPTURES / f"{name}.json").read_text(), path=f"{name}.json")
    sizes = {a: len(d["config_hex"]) // 2 for a, d in capture(name)["devices"].items()}
    return topo.replace(
        functions=[
            attrs.evolve(fn, unknown=fn.unknown - {"acs", "sriov"})
            if sizes[str(fn.address)] == 256
            else fn
            for fn in topo.functions
        ]
    )


def capture_groups(name: str) -> dict[int, tuple[str, ...]]:
    return {int(g): tuple(m) for g, m in capture(name)["groups"].items() if m}


def capture_unknowns(name: str) -> set[tuple[str, str]]:
    return {(str(fn.address), fact) for fn in capture_topology(name) for fact in fn.unknown}


def make_tree(
    base: Path,
    name: str = "q35-1001",
    *,
    size: int | None = None,
    layout: str = "live",
    groups: str = "dir",
    drivers: dict[str, str] | None = None,
    kernel: str | None = "6.1.0-test",
) -> Path:
    """A sysfs tree holding capture ``name``; returns the root to read.

    Args:
        size: truncate every ``config`` to this many bytes (64: non-root).
        layout: ``"live"`` (``ROOT/sys/...`` with the kernel's links and a
            ``proc``), ``"sys"`` (the root is the ``sys`` directory) or
            ``"copy"`` (real directories in ``bus/pci/devices``, every link
            dangling, as ``cp -r`` of parts of ``/sys`` leaves them).
        groups: ``"dir"`` (``kernel/iommu_groups`` and the devices' links),
            ``"links"`` (links only), ``"empty"`` (an empty
            ``kernel/iommu_groups``, no links) or ``"none"``.
    """
    data = capture(name)
    topo = capture_topology(name)
    drivers = drivers or {}
    root = base / "root"
    sys_dir = root / "sys" if layout == "live" else root
    (sys_dir / "bus" / "pci" / "devices").mkdir(parents=True)
    groups_dir = sys_dir / "kernel" / "iommu_groups"
    if groups in ("dir", "empty"):
        groups_dir.mkdir(parents=True)
    for addr, dev in data["devices"].items():
        a = PciAddress.parse(addr)
        fn = topo.get(a)
        # as the kernel nests them: /sys/devices/pci0000:00/0000:00:1c.0/0000:01:00.0
        chain = topo.bridges_above(fn)
        top = chain[-1].address if chain else a
        parent = "/".join(
            [f"pci{top.domain:04x}:{top.bus:02x}", *(str(b.address) for b in reversed(chain))]
        )
        if layout == "copy":
            dev_dir = sys_dir / "bus" / "pci" / "devices" / addr
            dev_dir.mkdir()
        else:
            dev_dir = sys_dir / "devices" / parent / addr
            dev_dir.mkdir(parents=True)
            (sys_dir / "bus" / "pci" / "devices" / addr).symlink_to(
                f"../../../devices/{parent}/{addr}"
            )
        config = bytes.fromhex(dev["config_hex"])
        (dev_dir / "config").write_bytes(config if size is None else config[:size])
        (dev_dir / "vendor").write_text(f"0x{fn.vendor:04x}\n")
        (dev_dir / "device").write_text(f"0x{fn.device:04x}\n")
        (dev_dir / "class").write_text(f"0x{fn.class_code:06x}\n")
        if addr in drivers:
            (dev_dir / "driver").symlink_to(f"../../../../bus/pci/drivers/{drivers[addr]}")
        if fn.physfn is not None:
            (dev_dir / "physfn").symlink_to(f"../{fn.physfn}")
        group = dev.get("group")
        if group is not None and groups in ("dir", "links"):
            (dev_dir / "iommu_group").symlink_to(f"../../../../kernel/iommu_groups/{group}")
        if group is not None and groups == "dir":
            members = groups_dir / str(group) / "devices"
            members.mkdir(parents=True, exist_ok=True)
            (members / addr).symlink_to(f"../../../../devices/{parent}/{addr}")
    if layout == "live" and kernel is not None:
        (root / "proc" / "sys" / "kernel").mkdir(parents=True)
        (root / "proc" / "sys" / "kernel" / "osrelease").write_text(kernel + "\n")
        (root / "proc" / "cmdline").write_text("BOOT_IMAGE=/vmlinuz intel_iommu=on\n")
    return root


def device_dir(root: Path, addr: str) -> Path:
    """The real directory of ``addr`` in a ``"live"`` tree."""
    return (root / "sys" / "bus" / "pci" / "devices" / addr).resolve()


def facts(reading: Reading, device: str) -> dict[str, str]:
    return {u.fact: u.why for u in reading.unknowns if u.device == device}


def by_address(topo: Topology | None) -> dict[str, Any]:
    assert topo is not None
    return {str(fn.address): fn for fn in topo}


def leaf(name: str) -> str:
    """An endpoint of the capture that no other device depends on."""
    topo = capture_topology(name)
    for fn in topo:
        if not fn.is_bridge and fn.physfn is None and not topo.vfs_of(fn.address):
            return str(fn.address)
    raise AssertionError("no leaf")  # pragma: no cover


# --- what a root reads --------------------------------------------------------


class TestFullConfigSpace:
    """As root, ``config`` is the whole 4096 bytes: the topology is the capture's."""

    @pytest.mark.parametrize("name", ["q35-1000", "q35-1001", "q35-1102"])
    def test_topology_and_groups_are_the_captures(self, tmp_path: Path, name: str) -> None:
        reading = read_sysfs(make_tree(tmp_path, name))
        assert reading.source == "sysfs"
        assert reading.kernel == "6.1.0-test"
        assert by_address(reading.topology) == by_address(capture_topology(name))
        # Only what the configuration space itself leaves open.
        assert {(u.device, u.fact) for u in reading.unknowns} == capture_unknowns(name)
        assert reading.observed is not None
        assert reading.observed.source == "sysfs"
        assert dict(reading.observed.groups) == capture_groups(name)

    def test_canonical_grouping_reproduces_what_sysfs_shows(self, tmp_path: Path) -> None:
        reading = read_sysfs(make_tree(tmp_path, "q35-1000"))
        assert reading.topology is not None
        assert reading.observed is not None
        predicted = canonical_groups(reading.topology)
        assert {frozenset(m) for m in predicted.groups.values()} == {
            frozenset(m) for m in reading.observed.groups.values()
        }

    def test_vfs_from_the_pfs_sriov_capability(self, tmp_path: Path) -> None:
        reading = read_sysfs(make_tree(tmp_path, "q35-1102"))
        fns = by_address(reading.topology)
        vfs = {a: fn.physfn for a, fn in fns.items() if fn.physfn is not None}
        assert vfs == {"0000:04:00.1": PciAddress.parse("04:00.0")} | {
            "0000:04:00.2": PciAddress.parse("04:00.0")
        }
        assert fns["0000:04:00.1"].vendor != 0xFFFF

    def test_drivers_from_the_driver_links(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, drivers={"0000:00:00.0": "intel_host", "0000:00:1f.2": "ahci"})
        fns = by_address(read_sysfs(root).topology)
        assert fns["0000:00:00.0"].driver == "intel_host"
        assert fns["0000:00:1f.2"].driver == "ahci"
        assert fns["0000:00:1f.0"].driver is None

    def test_kernel_and_path(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, kernel="5.15.0-91-generic")
        reading = read_sysfs(str(root))
        assert reading.kernel == "5.15.0-91-generic"
        assert reading.path == str(root)


class TestDegradedConfigSpace:
    """Less configuration space: facts become unknown, never guessed."""

    def test_256_bytes_is_the_kernels_view(self, tmp_path: Path) -> None:
        """A 256-byte sysfs config is the kernel's ``cfg_size``: it found no
        extended space (no MMCONFIG, or behind a conventional bridge), so its
        ``pci_find_ext_capability`` sees no ACS either: absent, not unknown."""
        reading = read_sysfs(make_tree(tmp_path, "q35-1001", size=256))
        topo = reading.topology
        assert topo is not None
        pcie = [fn for fn in topo if fn.pcie_type is not None]
        assert pcie
        for fn in pcie:
            assert fn.acs is None
            assert "acs" not in fn.unknown
            assert "acs" not in facts(reading, str(fn.address))

    def test_tar_padded_non_root_copy_is_64_bytes(self, tmp_path: Path) -> None:
        """tar pads a short read (64 bytes, non-root) with zeros up to the
        announced size; that must not read as "no capabilities"."""
        root = make_tree(tmp_path, "q35-1001", size=64)
        for config in Path(root).rglob("config"):
            config.write_bytes(config.read_bytes()[:64].ljust(4096, b"\0"))
        reading = read_sysfs(root)
        assert reading.topology is not None
        padded = [u for u in reading.unknowns if "padded copy" in u.why]
        assert padded
        assert any("acs" in fn.unknown for fn in reading.topology)

    def test_64_bytes_non_root(self, tmp_path: Path) -> None:
        reading = read_sysfs(make_tree(tmp_path, "q35-1000", size=64))
        topo = reading.topology
        assert topo is not None
        assert len(topo) == len(capture("q35-1000")["devices"])
        full = capture_topology("q35-1000")
        for fn in topo:
            ref = full.get(fn.address)
            assert (fn.vendor, fn.device, fn.class_code) == (
                ref.vendor,
                ref.device,
                ref.class_code,
            )
            assert fn.acs is None
            if ref.pcie_type is not None:
                assert fn.pcie_type is None
                assert {"acs", "pcie"} <= fn.unknown
                why = facts(reading, str(fn.address))
                assert "acs" in why
                assert "pcie" in why
                assert "64 bytes" in why["acs"]
        assert any(u.device == "" and "root" in u.why for u in reading.unknowns)
        # The kernel's groups are still read.
        assert reading.observed is not None
        assert dict(reading.observed.groups) == capture_groups("q35-1000")

    def test_64_bytes_vfs_from_sysfs_ids_and_physfn(self, tmp_path: Path) -> None:
        """Non-root, a PF's SR-IOV capability is unreadable: ids and physfn come from sysfs."""
        reading = read_sysfs(make_tree(tmp_path, "q35-1102", size=64))
        fns = by_address(reading.topology)
        full = by_address(capture_topology("q35-1102"))
        for addr in ("0000:04:00.1", "0000:04:00.2"):
            assert fns[addr].physfn == PciAddress.parse("04:00.0")
            assert (fns[addr].vendor, fns[addr].device) == (
                full[addr].vendor,
                full[addr].device,
            )
            assert fns[addr].multifunction is False

    def test_vf_without_ids_is_left_out(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1102", size=64)
        (device_dir(root, "0000:04:00.1") / "vendor").unlink()
        reading = read_sysfs(root)
        assert "0000:04:00.1" not in by_address(reading.topology)
        assert "0xffff" in facts(reading, "0000:04:00.1")["config"]

    def test_short_config_is_left_out(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001")
        victim = leaf("q35-1001")
        (device_dir(root, victim) / "config").write_bytes(b"\x86\x80")
        reading = read_sysfs(root)
        assert victim not in by_address(reading.topology)
        assert "2 bytes" in facts(reading, victim)["config"]


class TestLayouts:
    """``/``, the ``sys`` directory itself, and copies."""

    def test_sys_directory_as_root(self, tmp_path: Path) -> None:
        reading = read_sysfs(make_tree(tmp_path, "q35-1001", layout="sys"))
        assert by_address(reading.topology) == by_address(capture_topology("q35-1001"))
        assert reading.observed is not None
        assert dict(reading.observed.groups) == capture_groups("q35-1001")
        assert reading.kernel is None  # no proc next to it

    def test_copied_tree_with_dangling_links(self, tmp_path: Path) -> None:
        reading = read_sysfs(make_tree(tmp_path, "q35-1001", layout="copy"))
        assert by_address(reading.topology) == by_address(capture_topology("q35-1001"))
        assert reading.observed is not None
        assert dict(reading.observed.groups) == capture_groups("q35-1001")

    def test_copy_of_the_devices_directory_only(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001", layout="copy", groups="links")
        reading = read_sysfs(root / "bus" / "pci" / "devices")
        assert by_address(reading.topology) == by_address(capture_topology("q35-1001"))
        assert reading.observed is not None
        assert dict(reading.observed.groups) == capture_groups("q35-1001")

    def test_groups_from_links_only(self, tmp_path: Path) -> None:
        reading = read_sysfs(make_tree(tmp_path, "q35-1001", groups="links"))
        assert reading.observed is not None
        assert dict(reading.observed.groups) == capture_groups("q35-1001")
        assert any("not in the tree" in u.why for u in reading.unknowns)

    @pytest.mark.parametrize("groups", ["none", "empty"])
    def test_no_iommu_groups(self, tmp_path: Path, groups: str) -> None:
        reading = read_sysfs(make_tree(tmp_path, "q35-1001", groups=groups))
        assert reading.observed is None
        assert Unknown("", "group", NO_GROUPS) in reading.unknowns
        assert reading.topology is not None

    def test_link_and_directory_disagree(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001")
        victim = leaf("q35-1001")
        link = device_dir(root, victim) / "iommu_group"
        link.unlink()
        link.symlink_to("../../../../kernel/iommu_groups/999")
        reading = read_sysfs(root)
        assert "999" in facts(reading, victim)["group"]
        assert reading.observed is not None
        assert dict(reading.observed.groups) == capture_groups("q35-1001")

    def test_non_pci_devices_in_groups(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001")
        platform = root / "sys" / "kernel" / "iommu_groups" / "77" / "devices"
        platform.mkdir(parents=True)
        (platform / "HISI0162:01").symlink_to("../../../../devices/platform/HISI0162:01")
        reading = read_sysfs(root)
        assert reading.observed is not None
        assert reading.observed.groups[77] == ("HISI0162:01",)

    def test_this_machine(self) -> None:
        """``read_sysfs("/")`` on the machine running the tests must not crash."""
        if not Path("/sys/bus/pci/devices").is_dir():
            with pytest.raises(InputError):
                read_sysfs("/")
            return
        reading = read_sysfs("/")
        assert reading.source == "sysfs"
        assert reading.kernel == os.uname().release
        if reading.observed is None:
            assert Unknown("", "group", NO_GROUPS) in reading.unknowns
        else:
            assert all(reading.observed.groups.values())

    def test_sys_of_this_machine(self) -> None:
        if not Path("/sys/bus/pci/devices").is_dir():  # pragma: no cover
            pytest.skip("no PCI in this machine's sysfs")
        whole, sys_only = read_sysfs("/"), read_sysfs("/sys")
        assert sys_only.topology == whole.topology
        assert sys_only.observed == whole.observed


class TestErrors:
    def test_missing_root(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="no such directory"):
            read_sysfs(tmp_path / "nope")

    def test_root_is_a_file(self, tmp_path: Path) -> None:
        (tmp_path / "f").write_text("x")
        with pytest.raises(InputError, match="not a directory"):
            read_sysfs(tmp_path / "f")

    def test_not_sysfs(self, tmp_path: Path) -> None:
        (tmp_path / "etc").mkdir()
        with pytest.raises(InputError, match="not a sysfs tree"):
            read_sysfs(tmp_path)

    def test_sys_linked_outside(self, tmp_path: Path) -> None:
        root = tmp_path / "root"
        root.mkdir()
        (root / "sys").symlink_to("/sys")
        with pytest.raises(InputError, match="outside the tree"):
            read_sysfs(root)


# --- hostile trees ----------------------------------------------------------------


class TestHostileTrees:
    """Nothing outside the root is read; nothing loops, blocks or eats memory."""

    def replace_device_link(self, root: Path, addr: str, target: str) -> None:
        link = root / "sys" / "bus" / "pci" / "devices" / addr
        link.unlink()
        link.symlink_to(target)

    @pytest.mark.parametrize(
        "target",
        ["/etc", "/sys/devices/pci0000:00/0000:00:00.0", "../../../../../../../../../../etc"],
    )
    def test_device_link_out_of_the_root(self, tmp_path: Path, target: str) -> None:
        root = make_tree(tmp_path, "q35-1001")
        victim = leaf("q35-1001")
        self.replace_device_link(root, victim, target)
        reading = read_sysfs(root)
        assert victim not in by_address(reading.topology)
        why = facts(reading, victim)["config"]
        assert "refused" in why
        assert "outside" in why or "out of the tree" in why
        assert len(by_address(reading.topology)) == len(capture("q35-1001")["devices"]) - 1

    def test_absolute_link_inside_the_root_is_followed(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001")
        victim = leaf("q35-1001")
        real = device_dir(root, victim)
        self.replace_device_link(root, victim, str(real))
        reading = read_sysfs(root)
        assert victim in by_address(reading.topology)
        assert {(u.device, u.fact) for u in reading.unknowns} == capture_unknowns("q35-1001")

    def test_symlink_loop(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001")
        victim = leaf("q35-1001")
        devices = root / "sys" / "bus" / "pci" / "devices"
        (root / "sys" / "loop-a").symlink_to("loop-b")
        (root / "sys" / "loop-b").symlink_to("loop-a")
        self.replace_device_link(root, victim, "../../../loop-a")
        (devices.parent / "self").symlink_to(".")
        reading = read_sysfs(root)
        assert "too many symbolic links" in facts(reading, victim)["config"]

    def test_loop_through_dotdot(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001")
        victim = leaf("q35-1001")
        self.replace_device_link(root, victim, f"../devices/{victim}/x")
        reading = read_sysfs(root)
        assert "too many symbolic links" in facts(reading, victim)["config"]

    def test_config_link_to_a_secret(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001")
        victim = leaf("q35-1001")
        secret = tmp_path / "secret"
        secret.write_bytes(b"\x86\x80\xd3\x10" + bytes(60))
        config = device_dir(root, victim) / "config"
        config.unlink()
        config.symlink_to(secret)
        reading = read_sysfs(root)
        assert victim not in by_address(reading.topology)
        assert "symbolic link" in facts(reading, victim)["config"]

    def test_config_is_a_fifo(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001")
        victim = leaf("q35-1001")
        config = device_dir(root, victim) / "config"
        config.unlink()
        os.mkfifo(config)
        start = time.monotonic()
        reading = read_sysfs(root)
        assert time.monotonic() - start < 10
        assert "not a regular file" in facts(reading, victim)["config"]

    def test_config_is_a_directory(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001")
        victim = leaf("q35-1001")
        config = device_dir(root, victim) / "config"
        config.unlink()
        config.mkdir()
        assert "not a regular file" in facts(read_sysfs(root), victim)["config"]

    def test_huge_sparse_config_reads_4096_bytes(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001")
        victim = leaf("q35-1001")
        config = device_dir(root, victim) / "config"
        with config.open("r+b") as f:
            f.truncate(1 << 30)  # 1 GB, sparse
        reads: list[int] = []
        real_read = os.read

        def counting_read(fd: int, n: int) -> bytes:
            data = real_read(fd, n)
            reads.append(len(data))
            return data

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "read", counting_read)
            reading = read_sysfs(root)
        assert sum(reads) < 1 << 20
        assert victim in by_address(reading.topology)
        assert f"first {MAX_CONFIG_BYTES}" in facts(reading, victim)["config"]

    def test_huge_attribute_file(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001")
        victim = leaf("q35-1001")
        with (device_dir(root, victim) / "vendor").open("wb") as f:
            f.truncate(1 << 30)
        reading = read_sysfs(root)
        assert victim in by_address(reading.topology)
        assert "vendor" in facts(reading, victim)["ids"]

    def test_unreadable_config(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        root = make_tree(tmp_path, "q35-1001")
        victim = leaf("q35-1001")
        victim_dir = device_dir(root, victim)
        (victim_dir / "config").chmod(0)
        real_open: Callable[..., int] = os.open

        def guarded_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            dir_fd = kwargs.get("dir_fd")
            is_victim = dir_fd is not None and os.readlink(f"/proc/self/fd/{dir_fd}") == str(
                victim_dir
            )
            if path == "config" and is_victim:
                raise PermissionError(errno.EACCES, "Permission denied", path)
            return real_open(path, flags, *args, **kwargs)

        if os.geteuid() == 0:  # root reads mode-000 files: simulate the refusal
            monkeypatch.setattr(os, "open", guarded_open)
        reading = read_sysfs(root)
        assert facts(reading, victim)["config"] == "config: permission denied"
        assert victim not in by_address(reading.topology)

    def test_unreadable_groups_directory(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001")
        groups = root / "sys" / "kernel" / "iommu_groups"
        os.rename(groups, tmp_path / "moved")
        groups.symlink_to("/sys/kernel/iommu_groups")
        reading = read_sysfs(root)
        assert any("outside the tree" in u.why for u in reading.unknowns if u.fact == "group")
        assert reading.observed is not None  # from the links
        assert dict(reading.observed.groups) == capture_groups("q35-1001")

    def test_odd_entries(self, tmp_path: Path) -> None:
        root = make_tree(tmp_path, "q35-1001")
        devices = root / "sys" / "bus" / "pci" / "devices"
        (devices / "not-a-device").mkdir()
        victim = leaf("q35-1001")
        vdir = device_dir(root, victim)
        (vdir / "iommu_group").unlink()
        (vdir / "iommu_group").symlink_to("../../../etc/passwd")
        (vdir / "driver").mkdir()  # a copy that followed links
        (vdir / "physfn").symlink_to("../garbage")
        (vdir / "class").write_text("bogus\n")
        groups = root / "sys" / "kernel" / "iommu_groups"
        (groups / "notanumber").mkdir()
        (groups / "12345678901234").mkdir()
        reading = read_sysfs(root)
        assert "not a PCI address" in facts(reading, "not-a-device")["config"]
        why = facts(reading, victim)
        assert "not a group number" in why["group"]
        assert "not a symbolic link" in why["driver"]
        assert "not a PCI address" in why["physfn"]
        assert "class" in why["ids"]
        assert victim in by_address(reading.topology)

    def test_too_many_devices_are_not_read(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(sysfs_module, "MAX_DEVICES", 3)
        reading = read_sysfs(make_tree(tmp_path, "q35-1001"))
        assert any("more than 3 devices" in u.why for u in reading.unknowns)

    def test_garbage_config_everywhere(self, tmp_path: Path) -> None:
        """Configuration space that cannot be decoded leaves devices out, never raises."""
        root = make_tree(tmp_path, "q35-1001")
        for entry in (root / "sys" / "bus" / "pci" / "devices").iterdir():
            (entry.resolve() / "config").write_bytes(b"\xff" * 64)
        reading = read_sysfs(root)
        assert reading.topology is None or len(reading.topology) == 0
        assert reading.observed is not None
