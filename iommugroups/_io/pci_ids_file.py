"""The machine's own PCI ID database (``pci.ids``), where there is one.

``lspci`` prints names from the ``pci.ids`` of the machine it ran on; reading
its output back is most exact with the same (or a newer) database. The
command line uses, in this order:

1. the file given by ``--pci-ids PATH`` (``--pci-ids bundled`` asks for the
   bundled subset);
2. the file named by the environment variable ``IOMMUGROUPS_PCI_IDS`` (or
   ``bundled``);
3. ``/usr/share/misc/pci.ids`` or ``/usr/share/hwdata/pci.ids``, the places
   distributions install it;
4. the subset of ``pci.ids`` the package bundles.

:func:`choose_pci_ids` makes that choice and :func:`load_pci_ids` reads a
file into a :class:`~iommugroups._kernel.pci_ids.PciIdsDatabase`; the
database's ``source`` says which was used.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping

from .._errors import InputError
from .._kernel.pci_ids import PciIdsDatabase, bundled_database, parse_pci_ids

__all__ = ["ENV_VAR", "SYSTEM_PATHS", "choose_pci_ids", "load_pci_ids"]

#: The environment variable naming a ``pci.ids`` file (or ``bundled``).
ENV_VAR = "IOMMUGROUPS_PCI_IDS"
#: Where distributions install ``pci.ids`` (Debian: ``pci.ids``; Fedora: ``hwdata``).
SYSTEM_PATHS = ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids")
#: Refuse larger files (``pci.ids`` is about 1.4 MB).
_MAX_BYTES = 64 * 1024 * 1024
_VERSION_RE = re.compile(r"^#\s*Version:\s*(?P<version>\S+)", re.M)


@functools.lru_cache(maxsize=4)
def _load(path: str, _stamp: tuple[int, int]) -> PciIdsDatabase:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(path, f"cannot read the PCI ID database: {exc.strerror or exc}") from None
    if len(data) > _MAX_BYTES:
        raise InputError(path, f"larger than {_MAX_BYTES} bytes: not a pci.ids file")
    text = data.decode("utf-8", "replace")
    vendors, devices, classes, subclasses = parse_pci_ids(text)
    if not vendors:
        raise InputError(path, "no vendor lines: not a pci.ids file")
    m = _VERSION_RE.search(text[:4096])
    version = f" (version {m['version']})" if m else ""
    return PciIdsDatabase.from_tables(f"{path}{version}", vendors, devices, classes, subclasses)


def load_pci_ids(path: str) -> PciIdsDatabase:
    """Read a ``pci.ids`` file (cached while the file is unchanged).

    Raises:
        InputError: the file cannot be read, or holds no vendor.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(path, f"cannot read the PCI ID database: {exc.strerror or exc}") from None
    return _load(path, (st.st_mtime_ns, st.st_size))


def choose_pci_ids(
    option: str | None = None, environ: Mapping[str, str] | None = None
) -> PciIdsDatabase:
    """The database to use (see the module docstring for the order).

    Args:
        option: the ``--pci-ids`` value (a path, or ``bundled``).
        environ: the environment (default: ``os.environ``).

    Raises:
        InputError: a file named by the option or the environment cannot be
            read.
    """
    env = os.environ if environ is None else environ
    for chosen in (option, env.get(ENV_VAR) or None):
        if chosen is None:
            continue
        if chosen == "bundled":
            return bundled_database()
        return load_pci_ids(chosen)
    for path in SYSTEM_PATHS:
        if os.path.isfile(path):
            try:
                return load_pci_ids(path)
            except InputError:
                continue
    return bundled_database()
