"""``groups --json``: each device described, the kernel's group and the rules' side by side."""

from __future__ import annotations

from typing import Any

from .._analysis.check import CheckReport
from .._kernel.groups import Grouping
from .._kernel.model import Topology, full_name
from .._kernel.pci_ids import class_label, device_name

__all__ = ["groups_json"]


def _hex(value: int | None, width: int) -> str | None:
    return None if value is None else f"{value:0{width}x}"


def groups_json(
    predicted: Grouping,
    topology: Topology,
    observed: Grouping | None = None,
    report: CheckReport | None = None,
) -> dict[str, Any]:
    """The ``iommugroups.groups/1`` document of ``groups --json``.

    ``groups``/``group_ids`` are the rules' prediction (``strategy``), as
    :meth:`Grouping.to_json` gives them; ``kernel_groups`` the kernel's own
    when the source has them (else ``null``); ``devices`` one entry per
    device of either, with its ids, class, revision, driver, name, both
    group ids and ``check``'s verdict (``null`` without the kernel's groups).
    """
    doc = predicted.to_json()
    predicted_of = {m: g for g, ms in predicted.groups.items() for m in ms}
    kernel_of: dict[str, int] = {}
    if observed is not None:
        for gid in sorted(observed.groups):
            for m in observed.groups[gid]:
                kernel_of.setdefault(full_name(m), gid)
        ids = sorted(observed.groups)
        doc["kernel_groups"] = {
            "groups": [[full_name(m) for m in observed.groups[g]] for g in ids],
            "group_ids": ids,
        }
    else:
        doc["kernel_groups"] = None
    verdicts = {d.device: d.verdict.value for d in report.devices} if report else {}
    by_name = topology.by_name()
    names = {*predicted_of, *kernel_of, *(p.name for p in topology.platform_devices)}
    devices: list[dict[str, Any]] = []
    for name in sorted(names, key=_sort_key):
        fn = by_name.get(name)
        entry: dict[str, Any] = {
            "device": name,
            "vendor": None,
            "device_id": None,
            "class_code": None,
            "class_name": None,
            "name": None,
            "revision": None,
            "driver": None,
            "predicted_group": predicted_of.get(name),
            "kernel_group": kernel_of.get(name),
            "verdict": verdicts.get(name),
        }
        if fn is not None:
            ids_known = "ids" not in fn.unknown
            class_known = "class" not in fn.unknown
            entry.update(
                vendor=_hex(fn.vendor, 4) if ids_known else None,
                device_id=_hex(fn.device, 4) if ids_known else None,
                class_code=_hex(fn.class_code, 6) if class_known else None,
                class_name=class_label(fn.class_code >> 8).rsplit(" [", 1)[0]
                if class_known
                else None,
                name=device_name(fn.vendor, fn.device) if ids_known else None,
                revision=fn.revision,
                driver=fn.driver,
            )
        devices.append(entry)
    doc["devices"] = devices
    return doc


def _sort_key(name: str) -> tuple[int, str]:
    return (0 if name[:4].isalnum() and name[4:5] == ":" else 1, name)
