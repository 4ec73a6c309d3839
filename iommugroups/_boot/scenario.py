"""Scenarios: how a boot goes, and what is done after it.

A :class:`Scenario` says how the kernel learnt the hardware (``"acpi"`` or
``"dt"``), which drivers are built in and in which link order (R8.1), which
of them an ``initcall_blacklist=`` keeps from registering, where the IOMMU
driver sits in that order, and the :class:`Action` list run after boot:
loading a module, binding a driver to one device, hot-remove, rescan,
enabling SR-IOV VFs, registering a further IOMMU instance.

The boot the simulator replays from it (R7, R8, R10.1):

* ``acpi``: PCI and platform devices exist before any driver registers (the
  root bridges are scanned at ``subsys_initcall``). Built-in drivers then
  register in link order; the IOMMU driver registers its instances at its
  own place in that order.
* ``dt``: built-in drivers and the IOMMU register first; the PCI host bridge
  waits for its IOMMU (fw_devlink, R9.4) and is probed at ``late_initcall``, so
  PCI devices are added after every built-in driver, each then bound to the
  first driver that accepts it. (A decision: the oracle's arm64 captures fit
  both this and driver-by-driver binding; this is what fw_devlink implies.)
* Then ``late_initcall`` enables deferred probing and flushes it (R8.4).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .._errors import IommuGroupsError
from .._kernel.version import InvalidKernelVersion, KernelVersion

__all__ = [
    "ACTION_KINDS",
    "DEFAULT_BUILTIN",
    "IOMMU_DRIVER",
    "Action",
    "Scenario",
    "ScenarioError",
]

#: The name standing for the IOMMU driver in a link order.
IOMMU_DRIVER = "arm-smmu-v3"

#: Link order of the built-in drivers of the oracle's arm64 kernel: ``pci/``
#: (pcieport, shpchp), ``tty/`` (8250 serial), ``iommu/`` (R8.1).
DEFAULT_BUILTIN: tuple[str, ...] = ("pcieport", "shpchp", "serial", IOMMU_DRIVER)

#: Initcall names of ``initcall_blacklist=`` and the drivers they register.
INITCALLS = {
    "pcie_portdrv_init": "pcieport",
    "shpcd_init": "shpchp",
    "serial_pci_driver_init": "serial",
}

#: Action kinds and their arguments.
ACTION_KINDS: dict[str, tuple[str, ...]] = {
    "insmod": ("driver",),
    "bind": ("device", "driver"),
    "remove": ("device",),
    "rescan": (),
    "sriov": ("pf", "count"),
    "iommu": ("instance",),
}


class ScenarioError(IommuGroupsError, ValueError):
    """A scenario cannot be run as written (unknown driver, device, action...)."""


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


@attrs.frozen
class Action:
    """One driver-core action after boot.

    * ``insmod DRIVER``: the module's driver registers and binds every
      matching device without a driver, in device order.
    * ``bind DEVICE DRIVER``: set ``driver_override`` and probe the device.
    * ``remove DEVICE``: hot-remove it and everything below it.
    * ``rescan``: re-add removed devices; registered drivers bind them.
    * ``sriov PF N``: enable N VFs on the PF (its driver must be bound).
    * ``iommu INSTANCE``: a further IOMMU instance registers now.

    ``str(action)`` is the marker line the oracle's captures use
    (``ACTION insmod e1000``).
    """

    kind: str
    args: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)

    def __attrs_post_init__(self) -> None:
        want = ACTION_KINDS.get(self.kind)
        if want is None:
            raise ScenarioError(f"unknown action {self.kind!r}; known: {', '.join(ACTION_KINDS)}")
        if len(self.args) != len(want):
            raise ScenarioError(
                f"action {self.kind} takes {len(want)} argument(s) "
                f"({' '.join(want) or 'none'}), got {len(self.args)}"
            )
        if self.kind == "sriov" and not _vf_count(self.args[1]):
            shown = self.args[1] if len(self.args[1]) <= 20 else self.args[1][:20] + "..."
            raise ScenarioError(
                f"sriov: VF count must be a whole number up to 65535 (TotalVFs is 16 bits), "
                f"not {shown!r}"
            )

    def __str__(self) -> str:
        return " ".join(("ACTION", self.kind, *self.args))


def _vf_count(text: str) -> bool:
    """An SR-IOV VF count: ASCII digits, at most 65535 (read without int() of a huge string)."""
    return text.isascii() and text.isdigit() and len(text) <= 5 and int(text) <= 0xFFFF


def _actions(value: Iterable[Action | Iterable[str]]) -> tuple[Action, ...]:
    out = []
    for item in value:
        if isinstance(item, Action):
            out.append(item)
        else:
            words = [str(w) for w in item]
            if not words:
                raise ScenarioError("an empty action")
            out.append(Action(words[0], words[1:]))
    return tuple(out)


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _name_set(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _failures(value: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    return frozenset((str(d), str(a)) for d, a in value)


@attrs.frozen
class Scenario:
    """A boot and what follows it (see the module docstring).

    Args:
        name: a label.
        firmware: ``"acpi"`` or ``"dt"``.
        builtin: built-in drivers in link order; ``"arm-smmu-v3"`` marks
            where the IOMMU driver registers the topology's instances (all
            not yet registered; further ones by an ``iommu`` action).
        blacklist: drivers kept from registering at boot
            (``initcall_blacklist=``); they can still be ``insmod``-ed.
        iommu_builtin: the IOMMU driver is built in: clients of an
            unregistered instance defer; as a module they run without an
            IOMMU (R7.3 step 4, R7.4).
        actions: what is done after boot, in order.
        probe_failures: (driver, device) pairs whose probe fails permanently.
        kernel: the kernel version the scenario is for (``"6.1"``, a release
            string; ``None``: not said, and :func:`~iommugroups.simulate`
            models the newest kernel unless told otherwise).
    """

    name: str = ""
    firmware: str = "acpi"
    builtin: tuple[str, ...] = attrs.field(default=DEFAULT_BUILTIN, converter=_names)
    blacklist: frozenset[str] = attrs.field(default=frozenset(), converter=_name_set)
    iommu_builtin: bool = True
    actions: tuple[Action, ...] = attrs.field(default=(), converter=_actions)
    probe_failures: frozenset[tuple[str, str]] = attrs.field(
        default=frozenset(), converter=_failures
    )
    kernel: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.firmware not in ("acpi", "dt"):
            raise ScenarioError(f"firmware must be 'acpi' or 'dt', not {self.firmware!r}")
        if self.kernel is not None:
            try:
                KernelVersion.parse(self.kernel)
            except InvalidKernelVersion as exc:
                raise ScenarioError(f"kernel: {exc}") from None
