"""Read a machine's PCI functions and IOMMU groups from sysfs, or from a copy of it.

:func:`read_sysfs` reads, below a root directory (``/`` for the running
machine)::

    sys/bus/pci/devices/<dddd:bb:dd.f>/config        raw configuration space
                                      /vendor, device, class   (text, "0x8086")
                                      /driver        link: its name is the driver
                                      /physfn        link: an SR-IOV VF's PF
                                      /iommu_group   link: its name is the group
                                      /domain        link (a VMD endpoint): its VMD domain
    sys/kernel/iommu_groups/<N>/devices/<device>     the kernel's groups
    sys/class/iommu/<dmarN|ivhdN>/devices/<device>   each x86 IOMMU's devices (VT-d, AMD)
                             /device                 link (AMD): the IOMMU's own function
    proc/sys/kernel/osrelease, proc/cmdline          the kernel release, its arguments
                                                     (``os.uname()`` for ``/`` and ``/sys``
                                                     when there is no ``proc``)

The root may also be the ``sys`` directory itself, or a copy of either (a
tarball of ``/sys/bus/pci`` and ``/sys/kernel/iommu_groups``, say). Each
device's domain and bus come from its directory name; the functions are
built from their configuration space by
:func:`~iommugroups._kernel.config.functions_from_configs` (which identifies SR-IOV
VFs from their PFs' SR-IOV capabilities), with the ``physfn`` links and the
``vendor``/``device`` files filling in a VF whose PF's capability cannot be
read. What cannot be read is reported as :class:`~iommugroups._kernel.reading.Unknown`
facts, never guessed: run as non-root, sysfs shows only the first 64 bytes of
configuration space, so ACS and the PCIe port type are unknown.

The groups are those of ``kernel/iommu_groups`` (which also names non-PCI
devices), checked against the devices' ``iommu_group`` links; a tree without
either gives ``observed=None`` and the note "this machine has no IOMMU groups
(IOMMU off?)".

The x86 platform facts go into the topology's
:class:`~iommugroups.Platform`: each ``class/iommu`` entry becomes an
:class:`~iommugroups.IommuUnit` (``dmarN``: VT-d, its devices the unit's
scope; ``ivhdN``: AMD-Vi, with the function its ``device`` link names), a VMD
endpoint's ``domain`` link (``pci10000:e0``) a
:class:`~iommugroups.VmdDomain`, and ``intel_iommu=igfx_off`` on the
command line :attr:`~iommugroups.Platform.igfx_off`; an AMD IOMMU's own
function (class 0x0806, vendor AMD) is recognised without ``class/iommu``
too (R11.1-R11.6).

Safety, since the tree may be a copy from anywhere:

* Every path is resolved component by component from a descriptor of the
  root (``openat`` with ``O_NOFOLLOW``), symbolic links textually: a ``..``
  above the root, or an absolute link target outside it, is refused; more
  than :data:`MAX_LINK_HOPS` links in one path is taken to be a loop.
  Nothing is ever read outside the root.
* The attribute files themselves must be regular files, not links; the
  ``driver``, ``physfn`` and ``iommu_group`` links are only read
  (``readlink``), never followed.
* At most :data:`MAX_CONFIG_BYTES` of ``config`` and :data:`MAX_ATTR_BYTES`
  of any other file are read (a 1 GB ``config`` costs 4 KB); FIFOs and
  devices are refused without blocking; at most :data:`MAX_DEVICES` devices
  and :data:`MAX_GROUP_ENTRIES` group members are read.
* On a live machine, as root, ``config`` is read in full, as ``lspci -xxxx``
  reads it; the ``lspci`` manual warns that a few devices misbehave when
  some parts of their configuration space are read.
* An unreadable file (``PermissionError``), a dangling link (a partial copy)
  or a malformed value makes that fact unknown; only a root that is not a
  directory, or holds no ``bus/pci/devices``, is an
  :class:`~iommugroups._errors.InputError`.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from .._errors import ConfigSpaceError, InputError, InvalidAddress, TopologyError
from .._kernel.config import _AddressedConfigSpaceError, decode_config, functions_from_configs
from .._kernel.groups import Grouping, device_sort_key
from .._kernel.model import IommuKind, IommuUnit, PciAddress, PciFunction, Topology
from .._kernel.reading import Reading, Unknown
from .platform_facts import text_hints, vmd_domain_of_bus_name, with_platform
from .root_buses import with_missing_bridges

__all__ = [
    "MAX_ATTR_BYTES",
    "MAX_CONFIG_BYTES",
    "MAX_DEVICES",
    "MAX_GROUP_ENTRIES",
    "MAX_LINK_HOPS",
    "read_sysfs",
]


def __dir__() -> list[str]:
    return __all__


#: Bytes of ``config`` read: PCIe's whole extended configuration space.
MAX_CONFIG_BYTES = 4096
#: Bytes of any other file read (sysfs attributes are at most a page).
MAX_ATTR_BYTES = 4096
#: Symbolic links followed while resolving one path (as the kernel's ``MAXSYMLINKS``).
MAX_LINK_HOPS = 40
#: PCI device directories read; more are reported and skipped.
MAX_DEVICES = 65536
#: Entries read below ``kernel/iommu_groups`` (groups and their members together).
MAX_GROUP_ENTRIES = 262144

#: Configuration space below this is unusable (the standard header).
_MIN_CONFIG = 64
_MAX_GROUP_ID = 2**31 - 1
_MAX_NAME = 255
#: Directories a walk keeps open, so that it resolves each once.
_CACHED_DIRS = 64
#: How often a decoding or validation failure may drop devices and try again.
_MAX_RETRIES = 32

_O_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_NO_GROUPS = "this machine has no IOMMU groups (IOMMU off?)"


# --- what was read -----------------------------------------------------------


@attrs.frozen
class _Device:
    """One PCI device's sysfs files, as read (``None``: absent or unreadable)."""

    config: bytes | None = None
    driver: str | None = None
    physfn: str | None = None
    iommu_group: int | None = None
    vendor: int | None = None
    device: int | None = None
    class_code: int | None = None
    vmd_domain: int | None = None


@attrs.frozen
class _Iommu:
    """One ``class/iommu`` entry: the devices it translates, and (AMD) its own function."""

    devices: tuple[str, ...] = ()
    function: str | None = None


@attrs.frozen
class _Machine:
    """Everything read from one tree; a snapshot holds exactly this.

    ``groups`` is ``None`` when the tree has no ``kernel/iommu_groups``;
    ``unknowns`` are the problems met while reading files.
    """

    devices: Mapping[str, _Device]
    groups: Mapping[int, tuple[str, ...]] | None
    unknowns: tuple[Unknown, ...] = ()
    kernel: str | None = None
    cmdline: str | None = None
    iommus: Mapping[str, _Iommu] = attrs.field(factory=dict)
    root_buses: tuple[tuple[int, int], ...] = ()


# --- walking the tree --------------------------------------------------------


class _Refused(Exception):
    """A path the reader does not follow: it leaves the tree, or loops."""


def _components(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


class _Tree:
    """A directory tree read through descriptors, links resolved inside it.

    Directories met while resolving paths are kept open (the last
    :data:`_CACHED_DIRS` of them), so a walk resolves each directory once:
    reading ``kernel/iommu_groups/N/devices`` for 260,000 groups opens each
    group's directory, not the path from the root again.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.real = os.path.realpath(root)
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._dirs: OrderedDict[str, int] = OrderedDict()

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()
        os.close(self.fd)

    def _inside(self, target: str) -> list[str] | None:
        """An absolute link target as components below the root, if it is inside."""
        if self.real == "/":
            return _components(target)
        if target == self.real or target.startswith(self.real.rstrip("/") + "/"):
            return _components(target[len(self.real) :])
        return None

    def _cached(self, key: str) -> int | None:
        fd = self._dirs.get(key)
        if fd is None:
            return None
        self._dirs.move_to_end(key)
        return os.dup(fd)

    def _remember(self, key: str, fd: int) -> None:
        if key in self._dirs:
            return
        self._dirs[key] = os.dup(fd)
        if len(self._dirs) > _CACHED_DIRS:
            _old, evicted = self._dirs.popitem(last=False)
            os.close(evicted)

    def open(self, path: str, *, directory: bool = False) -> int:
        """A descriptor of ``ROOT/path``, links resolved without leaving the root.

        The last component, unless ``directory``, must be a regular file: it
        is checked (``lstat``) before it is opened, so a device node, a FIFO
        or a socket is never opened (opening a watchdog or a tape acts).

        Raises:
            _Refused: the path leaves the root, has too many links, or ends in
                something that is not a regular file.
            OSError: as ``open`` (``FileNotFoundError``, ``PermissionError``...).
        """
        parts = deque(_components(path))
        stack = [os.dup(self.fd)]
        where: list[str] = []  # the directories of ``stack`` below the root, by name
        hops = 0
        try:
            while parts:
                name = parts.popleft()
                if name == "..":
                    if len(stack) == 1:
                        raise _Refused(f"{path}: leads out of the tree")
                    os.close(stack.pop())
                    where.pop()
                    continue
                final = not parts
                want_dir = directory or not final
                key = "/".join((*where, name))
                fd: int | None = self._cached(key) if want_dir else None
                if fd is None:
                    try:
                        if not want_dir:
                            _check_regular(name, stack[-1], path)
                        fd = os.open(
                            name, _O_READ | (os.O_DIRECTORY if want_dir else 0), dir_fd=stack[-1]
                        )
                    except OSError as exc:
                        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                            raise
                        target = _readlink(name, stack[-1])
                        if target is None:
                            raise
                        hops += 1
                        if hops > MAX_LINK_HOPS:
                            raise _Refused(f"{path}: too many symbolic links (a loop?)") from None
                        if target.startswith("/"):
                            inside = self._inside(target)
                            if inside is None:
                                raise _Refused(
                                    f"{path}: symbolic link to {target}, outside the tree"
                                ) from None
                            while len(stack) > 1:
                                os.close(stack.pop())
                            where.clear()
                            parts.extendleft(reversed(inside))
                        else:
                            parts.extendleft(reversed(_components(target)))
                        continue
                    if want_dir:
                        self._remember(key, fd)
                if not want_dir:
                    return fd
                stack.append(fd)
                where.append(name)
            return os.dup(stack[-1])
        finally:
            for fd in stack:
                os.close(fd)

    def read(self, path: str, limit: int) -> bytes:
        """Up to ``limit`` + 1 bytes of the regular file ``ROOT/path``."""
        fd = self.open(path)
        try:
            return _read_regular(fd, path, limit)
        finally:
            os.close(fd)


def _check_regular(name: str, dir_fd: int, path: str) -> None:
    """Refuse ``name`` unless it is a regular file or a link (``lstat``, before any open).

    Raises:
        _Refused: a device node, a FIFO, a socket or a directory.
        OSError: as ``lstat`` (``FileNotFoundError``...).
    """
    mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise _Refused(f"{path}: not a regular file")


def _readlink(name: str, dir_fd: int) -> str | None:
    """The target of link ``name``, or ``None`` when it is not a link."""
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return None
        raise


def _read_regular(fd: int, name: str, limit: int) -> bytes:
    """Up to ``limit`` + 1 bytes (one more tells a too-large file)."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise _Refused(f"{name}: not a regular file")
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = os.read(fd, limit + 1 - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _read_attr(dev_fd: int, name: str, limit: int) -> bytes:
    """An attribute file of a device directory; it must be a regular file, not a link."""
    try:
        if stat.S_ISLNK(os.stat(name, dir_fd=dev_fd, follow_symlinks=False).st_mode):
            raise _Refused(f"{name} is a symbolic link, not a file")
        _check_regular(name, dev_fd, name)
        fd = os.open(name, _O_READ, dir_fd=dev_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Refused(f"{name} is a symbolic link, not a file") from None
        raise
    try:
        return _read_regular(fd, name, limit)
    finally:
        os.close(fd)


def _scandir(fd: int, limit: int) -> Iterator[str]:
    """Up to ``limit`` names in the directory ``fd`` (not followed)."""
    with os.scandir(fd) as it:
        for count, entry in enumerate(it):
            if count >= limit:
                return
            yield entry.name


def _why(exc: BaseException) -> str:
    if isinstance(exc, _Refused):
        return f"refused: {exc}"
    if isinstance(exc, FileNotFoundError):
        return "missing (a dangling link or a partial copy?)"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)  # pragma: no cover - only OSError and _Refused are caught


def _printable(name: str) -> bool:
    return 0 < len(name) <= _MAX_NAME and name.isprintable() and not any(c.isspace() for c in name)


class _Reader:
    """Reads one tree into a :class:`_Machine`."""

    def __init__(self, tree: _Tree) -> None:
        self.tree = tree
        self.unknowns: list[Unknown] = []

    def note(self, device: str, fact: str, why: str) -> None:
        self.unknowns.append(Unknown(device, fact, why))

    def layout(self) -> tuple[str, str | None]:
        """``(devices directory, sys directory or None)`` inside the root."""
        refused: list[str] = []
        for sys_dir in ("sys", ""):
            devices = f"{sys_dir}/bus/pci/devices".lstrip("/")
            try:
                os.close(self.tree.open(devices, directory=True))
            except _Refused as exc:
                refused.append(str(exc))
                continue
            except OSError:
                continue
            return devices, sys_dir
        try:
            names = list(_scandir(self.tree.fd, MAX_DEVICES))
        except OSError:
            names = []
        if any(_address(n) is not None for n in names):
            return "", None  # a copy of bus/pci/devices itself
        why = "; ".join(refused) if refused else "no bus/pci/devices below it"
        raise InputError(
            self.tree.root, f"not a sysfs tree ({why}): give /, /sys, or a copy of either"
        )

    def machine(self) -> _Machine:
        devices_dir, sys_dir = self.layout()
        devices, roots = self.devices(devices_dir)
        groups = None if sys_dir is None else self.groups(f"{sys_dir}/kernel/iommu_groups")
        iommus = {} if sys_dir is None else self.iommus(f"{sys_dir}/class/iommu".lstrip("/"))
        kernel = cmdline = None
        if sys_dir == "sys":
            kernel = self.text("proc/sys/kernel/osrelease", 256)
            cmdline = self.text("proc/cmdline", MAX_ATTR_BYTES)
        if kernel is None and self.tree.real in ("/", "/sys"):
            kernel = os.uname().release
        return _Machine(devices, groups, tuple(self.unknowns), kernel, cmdline, iommus, roots)

    def iommus(self, path: str) -> dict[str, _Iommu]:
        """``class/iommu``: the x86 IOMMUs (``dmarN``, ``ivhdN``) and their devices."""
        try:
            fd = self.tree.open(path, directory=True)
        except (OSError, _Refused):
            return {}
        try:
            names = sorted(n for n in _scandir(fd, 4096) if _unit_kind(n) is not None)
        finally:
            os.close(fd)
        out: dict[str, _Iommu] = {}
        budget = MAX_GROUP_ENTRIES
        for name in names:
            where = f"{path}/{name}"
            try:
                ufd = self.tree.open(where, directory=True)
            except (OSError, _Refused) as exc:
                self.note("", "iommu", f"{where}: {_why(exc)}")
                continue
            try:
                function = self.link(ufd, name, "device", "iommu")
                dfd = os.open("devices", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=ufd)
            except OSError:
                dfd = -1
            finally:
                os.close(ufd)
            members: list[str] = []
            if dfd >= 0:
                try:
                    for raw in _scandir(dfd, max(budget, 0)):
                        address = _address(raw)
                        if address is not None:
                            members.append(str(address))
                finally:
                    os.close(dfd)
            budget -= len(members)
            fn_address = _address(function) if function is not None else None
            out[name] = _Iommu(
                tuple(sorted(members)), str(fn_address) if fn_address is not None else None
            )
        return out

    def text(self, path: str, limit: int) -> str | None:
        try:
            data = self.tree.read(path, limit)
        except (OSError, _Refused):
            return None
        if len(data) > limit:
            return None
        text = data.decode("utf-8", "replace").replace("\0", " ").strip()
        return text if text.isprintable() else None

    def devices(self, devices_dir: str) -> tuple[dict[str, _Device], tuple[tuple[int, int], ...]]:
        """The devices, and the root buses their links name (``pciDDDD:BB``: R11.8);
        no root buses unless every device's link names one."""
        try:
            fd = self.tree.open(devices_dir, directory=True)
        except (OSError, _Refused) as exc:  # pragma: no cover - layout() opened it
            raise InputError(self.tree.root, f"{devices_dir}: {_why(exc)}") from None
        roots: set[tuple[int, int]] | None = set()
        try:
            names = list(_scandir(fd, MAX_DEVICES + 1))
            for name in names[:MAX_DEVICES]:
                root = _root_bus(fd, name) if roots is not None else None
                if root is None:
                    roots = None
                elif roots is not None:
                    roots.add(root)
        finally:
            os.close(fd)
        if len(names) > MAX_DEVICES:
            self.note("", "config", f"more than {MAX_DEVICES} devices: the rest were not read")
            names = names[:MAX_DEVICES]
        found: dict[PciAddress, _Device] = {}
        for name in names:
            address = _address(name)
            if address is None:
                self.note(name[:80], "config", f"{devices_dir}/{name[:80]}: not a PCI address")
                continue
            if address in found:
                self.note(str(address), "config", f"{name}: the same device twice")
                continue
            device = self.device(f"{devices_dir}/{name}".lstrip("/"), str(address))
            if device is not None:
                found[address] = device
        return {str(a): found[a] for a in sorted(found)}, tuple(sorted(roots or ()))

    def device(self, path: str, name: str) -> _Device | None:
        try:
            dev_fd = self.tree.open(path, directory=True)
        except (OSError, _Refused) as exc:
            self.note(name, "config", f"{path}: {_why(exc)}")
            return None
        try:
            config = self.config(dev_fd, name)
            return _Device(
                config=config,
                driver=self.link(dev_fd, name, "driver", "driver"),
                physfn=self.physfn(dev_fd, name),
                iommu_group=self.group_link(dev_fd, name),
                vendor=self.hex_attr(dev_fd, name, "vendor", 0xFFFF),
                device=self.hex_attr(dev_fd, name, "device", 0xFFFF),
                class_code=self.hex_attr(dev_fd, name, "class", 0xFFFFFF),
                vmd_domain=self.vmd_domain(dev_fd, name),
            )
        finally:
            os.close(dev_fd)

    def config(self, dev_fd: int, name: str) -> bytes | None:
        try:
            data = _read_attr(dev_fd, "config", MAX_CONFIG_BYTES)
        except (OSError, _Refused) as exc:
            self.note(name, "config", f"config: {_why(exc)}")
            return None
        if len(data) > MAX_CONFIG_BYTES:
            self.note(
                name,
                "config",
                f"config is larger than {MAX_CONFIG_BYTES} bytes (not a sysfs file?): only "
                f"the first {MAX_CONFIG_BYTES} were read",
            )
            data = data[:MAX_CONFIG_BYTES]
        return data

    def link(self, dev_fd: int, name: str, attr: str, fact: str) -> str | None:
        """The last component of link ``attr``; ``None`` if there is none."""
        try:
            target = _readlink(attr, dev_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.note(name, fact, f"{attr}: {_why(exc)}")
            return None
        if target is None:
            self.note(name, fact, f"{attr} is not a symbolic link (a copy that followed links?)")
            return None
        last = target.rstrip("/").rsplit("/", 1)[-1]
        if not _printable(last):
            self.note(name, fact, f"{attr}: link target {target[:80]!r} names nothing usable")
            return None
        return last

    def vmd_domain(self, dev_fd: int, name: str) -> int | None:
        """A VMD endpoint's ``domain`` link (``../pci10000:e0``): its domain (R11.1)."""
        last = self.link(dev_fd, name, "domain", "vmd")
        if last is None:
            return None
        domain = vmd_domain_of_bus_name(last)
        if domain is None:
            self.note(name, "vmd", f"domain: {last[:80]!r} is not a VMD root bus (pciDDDDD:BB)")
        return domain

    def physfn(self, dev_fd: int, name: str) -> str | None:
        last = self.link(dev_fd, name, "physfn", "physfn")
        if last is None:
            return None
        address = _address(last)
        if address is None:
            self.note(name, "physfn", f"physfn: {last[:80]!r} is not a PCI address")
            return None
        return str(address)

    def group_link(self, dev_fd: int, name: str) -> int | None:
        last = self.link(dev_fd, name, "iommu_group", "group")
        if last is None:
            return None
        if not (_is_number(last) and int(last) <= _MAX_GROUP_ID):
            self.note(name, "group", f"iommu_group: {last[:80]!r} is not a group number")
            return None
        return int(last)

    def hex_attr(self, dev_fd: int, name: str, attr: str, limit: int) -> int | None:
        try:
            data = _read_attr(dev_fd, attr, MAX_ATTR_BYTES)
        except FileNotFoundError:
            return None
        except (OSError, _Refused) as exc:
            self.note(name, "ids", f"{attr}: {_why(exc)}")
            return None
        text = data[:MAX_ATTR_BYTES].decode("ascii", "replace").strip()
        try:
            value = int(text, 16) if len(text) <= 10 else -1
        except ValueError:
            value = -1
        if not 0 <= value <= limit:
            self.note(name, "ids", f"{attr}: {text[:40]!r} is not a hex number up to {limit:#x}")
            return None
        return value

    def groups(self, path: str) -> dict[int, tuple[str, ...]] | None:
        try:
            fd = self.tree.open(path, directory=True)
        except FileNotFoundError:
            return None
        except (OSError, _Refused) as exc:
            self.note("", "group", f"{path}: {_why(exc)}")
            return None
        budget = MAX_GROUP_ENTRIES
        try:
            ids = sorted(int(n) for n in _scandir(fd, budget) if _is_number(n))
        finally:
            os.close(fd)
        budget -= len(ids)
        groups: dict[int, list[str]] = {}
        member_of: dict[str, int] = {}
        for gid in ids:
            if gid > _MAX_GROUP_ID:
                continue
            where = f"{path}/{gid}/devices"
            try:
                dfd = self.tree.open(where, directory=True)
            except (OSError, _Refused) as exc:
                self.note("", "group", f"{where}: {_why(exc)}")
                continue
            try:
                names = list(_scandir(dfd, max(budget, 0)))
            finally:
                os.close(dfd)
            budget -= len(names)
            for raw in names:
                member = _member_name(raw)
                if member is None:
                    self.note("", "group", f"{where}: {raw[:80]!r} is not a device name")
                elif member in member_of:
                    self.note(
                        member,
                        "group",
                        f"listed in groups {member_of[member]} and {gid} (changed while "
                        "being read?)",
                    )
                else:
                    member_of[member] = gid
                    groups.setdefault(gid, []).append(member)
            if budget <= 0:
                self.note("", "group", f"more than {MAX_GROUP_ENTRIES} entries: the rest unread")
                break
        return _sorted_groups(groups)


def _root_bus(dir_fd: int, name: str) -> tuple[int, int] | None:
    """The root bus a ``bus/pci/devices`` link names (the last ``pciDDDD:BB`` of
    ``../../../devices/pci0000:00/0000:00:1c.0/0000:01:00.0``), if it is a link."""
    try:
        target = _readlink(name, dir_fd)
    except OSError:
        return None
    if target is None:
        return None
    for part in reversed(_components(target)):
        m = _ROOT_BUS_RE.match(part)
        if m is not None:
            return int(m["domain"], 16), int(m["bus"], 16)
    return None


_ROOT_BUS_RE = re.compile(r"^pci(?P<domain>[0-9a-f]{4,8}):(?P<bus>[0-9a-f]{2})$")


def _unit_kind(name: str) -> IommuKind | None:
    """``dmarN`` is a VT-d unit, ``ivhdN`` an AMD IOMMU; other entries are not x86 IOMMUs."""
    for prefix, kind in (("dmar", IommuKind.VTD), ("ivhd", IommuKind.AMD_VI)):
        if name.startswith(prefix) and _is_number(name[len(prefix) :]):
            return kind
    return None


def _is_number(text: str) -> bool:
    """Decimal ASCII digits, at most ten (``str.isdigit`` also takes ``"²"``)."""
    return 0 < len(text) <= 10 and text.isascii() and text.isdigit()


def _address(name: str) -> PciAddress | None:
    try:
        return PciAddress.parse(name)
    except InvalidAddress:
        return None


def _member_name(raw: str) -> str | None:
    address = _address(raw)
    if address is not None:
        return str(address)
    return raw if _printable(raw) else None


def _sorted_groups(groups: Mapping[int, Iterable[str]]) -> dict[int, tuple[str, ...]]:
    out = {gid: tuple(sorted(set(devs), key=device_sort_key)) for gid, devs in groups.items()}
    return {gid: out[gid] for gid in sorted(out) if out[gid]}


def _read_machine(root: str | os.PathLike[str]) -> _Machine:
    name = os.fspath(root)
    try:
        tree = _Tree(name)
    except FileNotFoundError:
        raise InputError(name, "no such directory") from None
    except NotADirectoryError:
        raise InputError(name, "not a directory") from None
    except PermissionError:
        raise InputError(name, "permission denied") from None
    except OSError as exc:
        raise InputError(name, f"cannot open: {exc.strerror or exc}") from None
    try:
        return _Reader(tree).machine()
    finally:
        tree.close()


# --- from what was read to a Reading ------------------------------------------


def _why_unknown(fact: str, size: int) -> str:
    if size < 256:
        return (
            f"only {size} bytes of configuration space readable (sysfs shows the rest "
            "to root only)"
        )
    if size < MAX_CONFIG_BYTES:
        return f"only {size} bytes of configuration space readable (no extended space)"
    if fact in ("class", "subsystem"):
        return "its configuration space reads all-ones (a VF whose PF was reset?)"
    return "not readable in its configuration space"


def _vf_claimed(pf: PciFunction | None, address: PciAddress, all_ones: bool) -> bool:
    """Does ``pf``'s SR-IOV capability place a VF at ``address``?

    Among its enabled VFs, or among all it offers when the function's
    configuration space reads all-ones (a VF whose PF was reset).
    """
    if pf is None or pf.sriov is None:
        return False
    count = pf.sriov.total_vfs if all_ones else pf.sriov.num_vfs
    return pf.sriov.vf_index(pf.address, address, count) is not None


def _as_vf(fn: PciFunction, pf_address: PciAddress, pf: PciFunction | None) -> PciFunction:
    """A function its ``physfn`` link names a VF, as ``pci_iov_add_virtfn`` sets it up.

    A VF has no SR-IOV capability of its own and is never multifunction; it
    is the same kind of PCIe function as its PF (as
    :func:`~iommugroups._kernel.config.functions_from_configs` assumes).
    """
    unknown = set(fn.unknown) - {"sriov"}
    pcie_type = fn.pcie_type
    if pcie_type is None and "pcie" in unknown and pf is not None and pf.pcie_type is not None:
        pcie_type = pf.pcie_type
        unknown.discard("pcie")
    return attrs.evolve(
        fn,
        physfn=pf_address,
        multifunction=False,
        sriov=None,
        pcie_type=pcie_type,
        unknown=frozenset(unknown),
    )


def _padded(config: bytes) -> bool:
    """A config longer than 64 bytes that is zero past 64 although its status
    register announces a capability list pointing past the header."""
    if len(config) <= _MIN_CONFIG or any(config[_MIN_CONFIG:]):
        return False
    status_caps = config[0x06] & 0x10
    return bool(status_caps) and config[0x34] >= _MIN_CONFIG


def _topology(machine: _Machine) -> tuple[Topology | None, list[Unknown]]:
    notes: list[Unknown] = []
    configs: dict[PciAddress, bytes] = {}
    drivers: dict[PciAddress, str] = {}
    links: dict[PciAddress, PciAddress] = {}
    decoded: dict[PciAddress, PciFunction] = {}
    candidates: list[PciAddress] = []
    for name, dev in machine.devices.items():
        address = PciAddress.parse(name)
        if dev.physfn is not None:
            links[address] = PciAddress.parse(dev.physfn)
        config = dev.config
        if config is None:
            continue
        if len(config) < _MIN_CONFIG:
            notes.append(
                Unknown(
                    name,
                    "config",
                    f"only {len(config)} bytes of configuration space (the header needs "
                    f"{_MIN_CONFIG}): left out of the topology",
                )
            )
            continue
        if _padded(config):
            notes.append(
                Unknown(
                    name,
                    "config",
                    "the bytes past 64 are all zero although the header announces a "
                    "capability list: a padded copy (e.g. by tar) of a non-root read; "
                    "taken as 64 bytes",
                )
            )
            config = config[:_MIN_CONFIG]
        if config[:2] == b"\xff\xff":
            candidates.append(address)
        else:
            try:
                decoded[address] = decode_config(address, config)
            except ConfigSpaceError as exc:
                notes.append(Unknown(name, "config", f"{exc}: left out of the topology"))
                continue
        configs[address] = config
        if dev.driver is not None:
            drivers[address] = dev.driver

    # A VF reads vendor 0xffff; its PF's SR-IOV capability identifies it. Where
    # that capability is unknown (a non-root read), sysfs's ids and physfn link do.
    patched: dict[PciAddress, PciAddress] = {}
    for address in candidates:
        pf_address = links.get(address)
        if pf_address is None:
            continue  # functions_from_configs searches every PF
        config = configs[address]
        if _vf_claimed(decoded.get(pf_address), address, set(config) <= {0xFF}):
            continue
        dev = machine.devices[str(address)]
        if dev.vendor is None or dev.device is None or dev.vendor == 0xFFFF:
            notes.append(
                Unknown(
                    str(address),
                    "config",
                    "vendor id reads 0xffff (an SR-IOV VF) and neither its PF's SR-IOV "
                    "capability nor sysfs's vendor/device files identify it: left out",
                )
            )
            del configs[address]
            continue
        ids = dev.vendor.to_bytes(2, "little") + dev.device.to_bytes(2, "little")
        configs[address] = ids + config[4:]
        patched[address] = pf_address

    functions: tuple[PciFunction, ...] = ()
    for _ in range(_MAX_RETRIES):
        try:
            functions = functions_from_configs(configs, drivers)
            break
        except _AddressedConfigSpaceError as exc:
            notes.append(Unknown(str(exc.address), "config", f"{exc.problem}: left out"))
            if configs.pop(exc.address, None) is None:  # pragma: no cover - defensive
                return None, notes
        except ConfigSpaceError as exc:
            notes.append(Unknown("", "topology", str(exc)))
            return None, notes
    else:
        notes.append(Unknown("", "topology", "too many devices cannot be decoded"))
        return None, notes

    by_address = {fn.address: fn for fn in functions}
    fixed: list[PciFunction] = []
    for fn in functions:
        address = fn.address
        link = links.get(address)
        if link is not None and (address in patched or fn.physfn is None):
            fn = _as_vf(fn, link, by_address.get(link))
        elif link is not None and fn.physfn != link:
            notes.append(
                Unknown(
                    str(address),
                    "physfn",
                    f"its physfn link names {link}, but {fn.physfn}'s SR-IOV capability "
                    "places it: the capability is used",
                )
            )
        fixed.append(fn)

    topology = None
    for _ in range(_MAX_RETRIES):
        try:
            topology = Topology(fixed)
            break
        except TopologyError as exc:
            drop = set(exc.devices)
            if not drop or not any(str(fn.address) in drop for fn in fixed):
                notes.append(Unknown("", "topology", str(exc)))
                return None, notes
            for dev_name in sorted(drop):
                notes.append(Unknown(dev_name, "config", f"{exc}: left out"))
            fixed = [fn for fn in fixed if str(fn.address) not in drop]
    if topology is None:
        notes.append(Unknown("", "topology", "too many inconsistent devices"))
        return None, notes

    # sysfs shows root the kernel's cfg_size: 256 bytes means the kernel found
    # no extended configuration space (pci_cfg_space_size), so no ACS or SR-IOV
    # capability can exist; the decoder alone cannot tell that from a short copy.
    if any(len(configs[fn.address]) == 256 and fn.unknown for fn in topology.functions):
        topology = topology.replace(
            functions=[
                attrs.evolve(fn, unknown=fn.unknown - {"acs", "sriov"})
                if len(configs[fn.address]) == 256
                else fn
                for fn in topology.functions
            ]
        )
    short = 0
    for fn in topology.functions:
        size = len(configs[fn.address])
        short += size < 256
        notes.extend(
            Unknown(str(fn.address), fact, _why_unknown(fact, size)) for fact in sorted(fn.unknown)
        )
    if short:
        notes.append(
            Unknown(
                "",
                "config",
                f"{short} device(s) show fewer than 256 bytes of configuration space: sysfs "
                "gives the rest to root only; read as root to know ACS and PCIe capabilities",
            )
        )
    return topology, notes


def _observed(machine: _Machine) -> tuple[Grouping | None, list[Unknown]]:
    notes: list[Unknown] = []
    links = {
        name: dev.iommu_group
        for name, dev in machine.devices.items()
        if dev.iommu_group is not None
    }
    if machine.groups:
        member_of = {d: g for g, ds in machine.groups.items() for d in ds}
        for name, gid in links.items():
            listed = member_of.get(name)
            if listed != gid:
                where = f"group {listed}" if listed is not None else "no group"
                notes.append(
                    Unknown(
                        name,
                        "group",
                        f"its iommu_group link names group {gid}, but kernel/iommu_groups "
                        f"lists it in {where} (did it change while being read?)",
                    )
                )
        return Grouping(dict(machine.groups), source="sysfs"), notes
    if links:
        groups: dict[int, list[str]] = {}
        for name, gid in links.items():
            groups.setdefault(gid, []).append(name)
        state = "is empty" if machine.groups is not None else "is not in the tree"
        notes.append(
            Unknown(
                "",
                "group",
                f"kernel/iommu_groups {state}: the groups are those of the devices' "
                "iommu_group links, without non-PCI devices",
            )
        )
        return Grouping(_sorted_groups(groups), source="sysfs"), notes
    return None, [Unknown("", "group", _NO_GROUPS)]


def _unknowns(items: Iterable[Unknown]) -> Any:
    """``tuple(items)`` for ``Reading.unknowns`` (its ``converter=tuple``
    leaves mypy an unsolvable type variable, as ``_config._unknown`` explains)."""
    return tuple(items)


def _platform(machine: _Machine, topology: Topology) -> tuple[Topology, list[Unknown]]:
    """The topology with the platform facts the tree shows (R11)."""
    units: list[IommuUnit] = []
    for name, unit in machine.iommus.items():
        kind = _unit_kind(name)
        assert kind is not None
        members = [PciAddress.parse(d) for d in unit.devices]
        segment = members[0].domain if members else 0
        function = PciAddress.parse(unit.function) if unit.function is not None else None
        if function is not None:
            segment = function.domain
        units.append(
            IommuUnit(
                name,
                kind,
                segment=min(segment, 0xFFFF),
                scope=members,
                function=function if kind is IommuKind.AMD_VI else None,
            )
        )
    vmd = {
        PciAddress.parse(name): dev.vmd_domain
        for name, dev in machine.devices.items()
        if dev.vmd_domain is not None
    }
    return with_platform(
        topology, units=units, vmd_links=vmd, hints=text_hints(machine.cmdline or "")
    )


def _reading(machine: _Machine, path: str, source: str) -> Reading:
    """The :class:`Reading` of what was read (shared by sysfs and snapshots)."""
    topology, topo_notes = _topology(machine)
    if topology is not None:
        topology, platform_notes = _platform(machine, topology)
        topo_notes.extend(platform_notes)
        topology, bridge_notes = with_missing_bridges(topology, machine.root_buses)
        topo_notes.extend(bridge_notes)
    observed, group_notes = _observed(machine)
    return Reading(
        topology=topology,
        observed=observed,
        unknowns=_unknowns([*machine.unknowns, *topo_notes, *group_notes]),
        source=source,
        path=path,
        kernel=machine.kernel,
    )


def read_sysfs(root: str | os.PathLike[str] = "/") -> Reading:
    """Read the PCI topology and the kernel's IOMMU groups below ``root``.

    Args:
        root: ``/`` for the running machine, the ``sys`` directory itself, or
            a copy of either.

    Returns:
        A :class:`~iommugroups._kernel.reading.Reading` (source ``"sysfs"``) with
        the topology (``None`` if it cannot be built), the observed groups
        (``None`` without IOMMU groups), the kernel release, and what could
        not be read.

    Raises:
        InputError: ``root`` is not a directory, or holds no
            ``bus/pci/devices``.
    """
    return _reading(_read_machine(root), os.fspath(root), "sysfs")
