"""``simulate``'s result as text and as JSON (schema ``iommugroups.simulation/1``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._boot.simulator import DeviceFate, Marker, Message, SimulationResult
from .._kernel.groups import LogLine, device_sort_key
from .._kernel.model import Topology
from .text import listing, listing_line

__all__ = ["SIMULATION_SCHEMA", "render_simulation", "simulation_to_json"]

#: The ``schema`` of ``simulate --json``.
SIMULATION_SCHEMA = "iommugroups.simulation/1"


def _event_json(event: object) -> dict[str, Any]:
    if isinstance(event, LogLine):
        return {
            "kind": event.action,
            "prefix": event.prefix,
            "device": event.device,
            "group": event.group,
            "line": str(event),
        }
    if isinstance(event, Message):
        return {
            "kind": "message",
            "prefix": event.prefix,
            "device": event.device,
            "text": event.text,
            "line": str(event),
        }
    assert isinstance(event, Marker)
    return {"kind": "marker", "action": event.text.split()[1:], "line": str(event)}


def simulation_to_json(result: SimulationResult, *, markers: bool = True) -> dict[str, Any]:
    """The ``iommugroups.simulation/1`` document of ``simulate --json``."""
    grouping = result.grouping.to_json()
    return {
        "schema": SIMULATION_SCHEMA,
        "strategy": result.strategy,
        "kernel": result.kernel,
        "scenario": result.scenario,
        "log": list(result.log_lines(markers=markers)),
        "events": [_event_json(e) for e in result.events],
        "groups": grouping["groups"],
        "group_ids": grouping["group_ids"],
        "fates": {
            dev: {
                "state": fate.state,
                "driver": fate.driver,
                "group": fate.group,
                "detail": fate.detail,
            }
            for dev, fate in result.fates.items()
        },
        "notes": list(result.notes),
    }


def _fate_table(fates: Sequence[DeviceFate]) -> list[str]:
    """Fates as aligned columns: device, state, driver, group, detail."""
    rows = [("device", "state", "driver", "group", "detail")]
    rows += [
        (
            listing_line(f.device, None),
            f.state,
            f.driver or "-",
            "-" if f.group is None else str(f.group),
            f.detail,
        )
        for f in fates
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return [
        "\t" + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[4]
        for r in rows
    ]


def render_simulation(
    result: SimulationResult,
    topology: Topology | None = None,
    *,
    markers: bool = True,
    all_fates: bool = False,
) -> str:
    """The text output of ``simulate``: log, blank line, groups, then fates."""
    sections: list[str] = []
    log = result.log_lines(markers=markers)
    if log:
        sections.append("\n".join(log) + "\n")
    sections.append(listing(result.grouping, topology) or "No IOMMU groups.\n")
    fates = sorted(
        (f for f in result.fates.values() if all_fates or f.state != "bound" or f.group is None),
        key=lambda f: device_sort_key(f.device),
    )
    if fates:
        title = "Devices:" if all_fates else "Devices without a driver or a group:"
        sections.append("\n".join([title, *(line.rstrip() for line in _fate_table(fates))]) + "\n")
    if result.notes:
        sections.append("\n".join(["Refused by the driver core:", *result.notes]) + "\n")
    return "\n".join(sections)
