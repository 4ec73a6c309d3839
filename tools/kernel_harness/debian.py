"""Debian packages through a private apt configuration: kernels and busybox.

Nothing is installed on the system. Like ``shared/tools/kernel-source``, a
private apt state (sources list, package lists, cache) lives under the cache
directory, pointing at the Debian mirror this machine's own apt configuration
already uses, with one suite per kernel series:

    6.1 -> bookworm    6.12 -> trixie    7.2 -> sid    7.3 -> trixie-backports

``fetch_kernel("6.1", "amd64", cache)`` downloads the newest
``linux-image-6.1*-amd64`` package of that suite (through the
``linux-image-amd64`` metapackage), unpacks it and returns the kernel image,
its modules directory and the package's exact version. Needs ``apt-get`` and
``dpkg-deb`` (root for apt's own locking is not needed: the state is private).
"""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
from pathlib import Path

import attrs

SUITES = {"6.1": "bookworm", "6.12": "trixie", "7.2": "sid", "7.3": "trixie-backports"}
#: busybox-static comes from the stable suite whatever the kernel.
BUSYBOX_SUITE = "bookworm"


class AptUnavailable(RuntimeError):
    """The Debian mirror cannot be reached (or apt is missing): the caller may skip."""


@attrs.frozen
class Kernel:
    """An unpacked kernel package."""

    image: Path  #: vmlinuz
    modules: Path | None  #: lib/modules/RELEASE, or None
    release: str  #: uname -r
    package: str  #: e.g. linux-image-6.1.0-44-amd64
    version: str  #: the package version, e.g. 6.1.164-1

    def describe(self) -> str:
        return f"{self.package} {self.version}"


def _mirror() -> str:
    texts = []
    for pattern in ("/etc/apt/sources.list.d/*.sources", "/etc/apt/sources.list",
                    "/etc/apt/sources.list.d/*.list"):  # fmt: skip
        for name in glob.glob(pattern):
            texts.append(Path(name).read_text(errors="replace"))
    for text in texts:
        for m in re.finditer(r"^URIs:\s*(\S+)", text, re.M):
            if "security" not in m[1]:
                return m[1]
        for m in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M):
            if "security" not in m[1]:
                return m[1]
    raise AptUnavailable("no Debian mirror found in /etc/apt")


class PrivateApt:
    """``apt-get``/``apt-cache`` with a private state for one suite and architecture."""

    def __init__(self, cache: Path, suite: str, arch: str) -> None:
        if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
            raise AptUnavailable("apt-get or dpkg-deb is not installed")
        self.root = cache / "apt" / f"{suite}-{arch}"
        (self.root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (self.root / "sources.list").write_text(f"deb {_mirror()} {suite} main\n")
        self.opts = [
            "-o", f"Dir::Etc::sourcelist={self.root / 'sources.list'}",
            "-o", "Dir::Etc::sourceparts=/dev/null",
            "-o", f"Dir::State::Lists={self.root / 'lists'}",
            "-o", f"Dir::Cache={self.root / 'cache'}",
            "-o", "Dir::State::status=/dev/null",
            "-o", f"APT::Architecture={arch}",
            "-o", f"APT::Architectures={arch}",
            "-o", "APT::Sandbox::User=root",
            "-o", "Acquire::Retries=2",
            "-o", "Acquire::http::Timeout=20",
        ]  # fmt: skip
        self.updated = False

    def _run(self, *args: str, cwd: Path | None = None) -> str:
        cmd = [args[0], *self.opts, *args[1:]]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
        if proc.returncode != 0:
            err = (proc.stderr or proc.stdout).strip().splitlines()
            raise AptUnavailable(f"{' '.join(args)}: {err[-1] if err else 'failed'}")
        return proc.stdout

    def update(self) -> None:
        if not self.updated:
            self._run("apt-get", "-qq", "update")
            self.updated = True

    def versions(self, package: str) -> list[tuple[str, str]]:
        """(version, Depends) of every version of ``package`` the suite has."""
        self.update()
        out = self._run("apt-cache", "show", package)
        result = []
        for stanza in out.split("\n\n"):
            ver = re.search(r"^Version:\s*(\S+)", stanza, re.M)
            dep = re.search(r"^Depends:\s*(.*)$", stanza, re.M)
            if ver:
                result.append((ver[1], dep[1] if dep else ""))
        return result

    def download(self, package: str, dest: Path) -> Path:
        """Download ``package`` (``name`` or ``name=version``) into ``dest``; the .deb."""
        self.update()
        dest.mkdir(parents=True, exist_ok=True)
        name = package.split("=")[0]
        for old in dest.glob(f"{name}_*.deb"):
            old.unlink()
        self._run("apt-get", "-qq", "download", package, cwd=dest)
        debs = sorted(dest.glob(f"{name}_*.deb"))
        if not debs:
            raise AptUnavailable(f"apt-get download {package}: no .deb appeared")
        return debs[-1]


def _extract(deb: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)


def fetch_kernel(series: str, arch: str, cache: Path) -> Kernel:
    """The newest Debian kernel package of ``series`` (6.1, 6.12, 7.2, 7.3) for ``arch``.

    ``arch`` is Debian's: ``amd64`` or ``arm64``. Cached: a second call with
    the package already unpacked does not download again (the package lists
    are refreshed, so a newer upload is picked up).
    """
    suite = SUITES.get(series)
    if suite is None:
        raise ValueError(f"unknown kernel series {series!r} (one of {', '.join(SUITES)})")
    try:
        return _fetch_kernel(series, suite, arch, cache)
    except AptUnavailable:
        cached = _cached_kernel(series, arch, cache)
        if cached is None:
            raise
        return cached


def _cached_kernel(series: str, arch: str, cache: Path) -> Kernel | None:
    """The newest kernel of ``series`` already unpacked in the cache (the mirror is down)."""
    found = []
    for root in (cache / "kernels").glob(f"linux-image-{series}*-{arch}_*"):
        if not re.match(rf"linux-image-{re.escape(series)}[.+-]", root.name):
            continue  # 6.12 is not 6.1
        images = sorted(root.glob("boot/vmlinuz-*")) + sorted(
            root.glob("usr/lib/modules/*/vmlinuz")
        )
        if images:
            found.append((root, images[0]))
    if not found:
        return None
    root, image = max(found, key=lambda x: _vkey(x[0].name.split("_", 1)[1]))
    package, version = root.name.split("_", 1)
    release = image.parent.name if image.name == "vmlinuz" else image.name.removeprefix("vmlinuz-")
    modules = next((p for p in root.glob(f"*lib/modules/{release}") if p.is_dir()), None)
    if modules is None:
        modules = next((p for p in root.glob(f"usr/lib/modules/{release}") if p.is_dir()), None)
    return Kernel(image, modules, release, package, version)


def _fetch_kernel(series: str, suite: str, arch: str, cache: Path) -> Kernel:
    apt = PrivateApt(cache, suite, arch)
    meta = f"linux-image-{arch}"
    best: tuple[str, str] | None = None
    for version, depends in apt.versions(meta):
        m = re.search(r"(linux-image-(\d+\.\d+)[^\s,]*-" + arch + r")\b", depends)
        if m and m[2] == series and (best is None or _newer(version, best[0])):
            best = (version, m[1])
    if best is None:
        raise AptUnavailable(f"{suite} has no {meta} depending on a {series} kernel")
    package = best[1]
    pkg_versions = apt.versions(package)
    version = max((v for v, _ in pkg_versions), key=_vkey)
    root = cache / "kernels" / f"{package}_{version}"
    release = package.removeprefix("linux-image-").removesuffix("-unsigned")
    image = root / "boot" / f"vmlinuz-{release}"
    if not image.exists():
        # Debian's newer packaging splits the image package: the kernel in
        # linux-binary-RELEASE, the modules in linux-modules-RELEASE.
        depends = dict(pkg_versions).get(version, "")
        parts = [package, *re.findall(r"\b(linux-(?:binary|modules)-[^\s,(]+)", depends)]
        for part in parts:
            deb = apt.download(f"{part}={version}", cache / "debs")
            _extract(deb, root)
            deb.unlink()
    if not image.exists():
        found = sorted((root / "boot").glob("vmlinuz-*"))
        found += sorted(root.glob("usr/lib/modules/*/vmlinuz"))
        if not found:
            raise RuntimeError(f"{package} {version}: no boot/vmlinuz-* in the package")
        image = found[0]
        release = (
            image.parent.name if image.name == "vmlinuz" else image.name.removeprefix("vmlinuz-")
        )
    modules = root / "lib" / "modules" / release
    if not modules.exists():
        modules = root / "usr" / "lib" / "modules" / release
    return Kernel(
        image=image,
        modules=modules if modules.exists() else None,
        release=release,
        package=package,
        version=version,
    )


def fetch_busybox(arch: str, cache: Path) -> Path:
    """Debian's statically linked busybox for ``arch`` (``amd64``, ``arm64``)."""
    root = cache / "busybox" / arch
    binary = root / "bin" / "busybox"
    if binary.exists():
        return binary
    apt = PrivateApt(cache, BUSYBOX_SUITE, arch)
    deb = apt.download("busybox-static", cache / "debs")
    _extract(deb, root)
    deb.unlink()
    if not binary.exists():
        raise RuntimeError("busybox-static: no bin/busybox in the package")
    return binary


def _vkey(version: str) -> list[object]:
    """A sort key approximating dpkg's version order (enough for kernel versions)."""
    parts: list[object] = []
    for chunk in re.split(r"([0-9]+)", version.replace("~", "\x00")):
        if chunk.isdigit():
            parts.append((1, int(chunk)))
        elif chunk:
            parts.append((0, chunk))
    return parts


def _newer(a: str, b: str) -> bool:
    return _vkey(a) > _vkey(b)
