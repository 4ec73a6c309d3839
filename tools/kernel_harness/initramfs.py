"""The guest's initramfs: busybox and one script that prints what the kernel did.

The script (``INIT`` below) mounts proc and sysfs, loads the modules it was
given (the nvme driver and its dependencies, so that SR-IOV VFs can be
enabled), enables every VF each PF offers (``sriov_totalvfs`` ->
``sriov_numvfs``), then prints, for every PCI device in sysfs, its
``iommu_group``, its driver and its whole configuration space in hex, then
the kernel's log lines about IOMMUs and ACS, and powers off. These are the
steps the oracle's captures were made with. Every line it prints for the
host starts with ``@@`` (see ``boot.parse_console``).

The archive is written here in the ``newc`` cpio format and gzipped: no
``cpio`` program is needed.
"""

from __future__ import annotations

import gzip
import io
import lzma
import re
from pathlib import Path

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in $(cat /modules.load 2>/dev/null); do insmod "/modules/$m" 2>/dev/null; done
# Enable every VF a PF offers, once its driver is bound (nvme's probe is asynchronous).
for d in /sys/bus/pci/devices/*; do
  [ -f "$d/sriov_totalvfs" ] || continue
  t=$(cat "$d/sriov_totalvfs")
  [ "$t" -gt 0 ] 2>/dev/null || continue
  i=0
  while [ ! -e "$d/driver" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  echo "$t" > "$d/sriov_numvfs" 2>/dev/null || echo "@@NOTE ${d##*/}: sriov_numvfs failed"
done
sleep 1
echo "@@KERNEL $(uname -r)"
echo "@@CMDLINE $(cat /proc/cmdline)"
for d in /sys/bus/pci/devices/*; do
  a=${d##*/}
  g=-; [ -e "$d/iommu_group" ] && g=$(readlink "$d/iommu_group") && g=${g##*/}
  v=-; [ -e "$d/driver" ] && v=$(readlink "$d/driver") && v=${v##*/}
  echo "@@DEV $a $g $v"
  echo "@@CFG $a $(hexdump -v -e '/1 "%02x"' "$d/config")"
done
dmesg | grep -E 'iommu|IOMMU|DMAR|[^F]ACS|smmu|SMMU|StreamID' | sed 's/^/@@DMESG /'
echo "@@END"
poweroff -f
"""


def _newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A ``newc`` cpio archive of (name, mode, data); directories have mode 0o40755."""
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        nlink = 2 if mode & 0o040000 else 1
        fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        header = b"070701" + b"".join(f"{f:08x}".encode() for f in fields)
        out.write(header + name.encode() + b"\0")
        out.write(b"\0" * (-out.tell() % 4))
        out.write(data)
        out.write(b"\0" * (-out.tell() % 4))
    return out.getvalue()


def _read_module(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".zst"):
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:  # pragma: no cover - depends on the host
            raise RuntimeError(
                f"{path}: a zstd-compressed module; pip install zstandard"
            ) from None
        return bytes(zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 26))
    return data


def module_load_order(modules_dir: Path, wanted: list[str]) -> list[Path]:
    """The module files to insmod, dependencies first, for module names ``wanted``.

    Each module's dependencies are read from its own ``.modinfo`` section
    (``depends=``), so no ``modules.dep`` (made by ``depmod`` at install) is
    needed. Names not found are skipped: a kernel with the driver built in
    needs no module.
    """
    files: dict[str, Path] = {}
    for path in modules_dir.rglob("*.ko*"):
        name = re.sub(r"\.ko(\.\w+)?$", "", path.name).replace("-", "_")
        files.setdefault(name, path)
    order: list[Path] = []

    def visit(name: str) -> None:
        path = files.get(name.replace("-", "_"))
        if path is None or path in order:
            return
        m = re.search(rb"(?:^|\0)depends=([^\0]*)", _read_module(path))
        for dep in m[1].decode().split(",") if m else []:
            if dep:
                visit(dep)
        order.append(path)

    for name in wanted:
        visit(name)
    return order


def build_initramfs(busybox: Path, dest: Path, modules: list[Path] | None = None) -> Path:
    """Write the gzipped initramfs to ``dest`` and return it."""
    entries: list[tuple[str, int, bytes]] = [
        ("bin", 0o040755, b""),
        ("bin/busybox", 0o100755, busybox.read_bytes()),
        ("init", 0o100755, INIT.encode()),
        ("modules", 0o040755, b""),
    ]
    names = []
    for path in modules or []:
        name = re.sub(r"\.(xz|zst)$", "", path.name)
        entries.append((f"modules/{name}", 0o100644, _read_module(path)))
        names.append(name)
    entries.append(("modules.load", 0o100644, ("\n".join(names) + "\n").encode()))
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(gzip.compress(_newc(entries), compresslevel=6))
    return dest
