"""The strategies by name, and a way to add one's own."""

from __future__ import annotations

from .base import Strategy, StrategyLike
from .bus_replay import BusReplay
from .canonical_sim import CanonicalSim
from .device_add import DeviceAdd
from .device_link import DeviceLink
from .legacy_probe_time import LegacyProbeTime
from .walk_down import WalkDown

__all__ = ["STRATEGIES", "get_strategy", "register_strategy"]

#: Strategy name -> strategy object.
STRATEGIES: dict[str, StrategyLike] = {
    s.name: s
    for s in (
        LegacyProbeTime(),
        WalkDown(),
        DeviceLink(),
        BusReplay(),
        DeviceAdd(),
        CanonicalSim(),
    )
}


def get_strategy(name: str) -> StrategyLike:
    """The strategy called ``name``.

    Raises:
        KeyError: no such strategy (the message lists the known ones).
    """
    try:
        return STRATEGIES[name]
    except KeyError:
        known = ", ".join(STRATEGIES)
        raise KeyError(f"unknown strategy {name!r}; known strategies: {known}") from None


def register_strategy(strategy: StrategyLike) -> None:
    """Make ``strategy`` available by its name (replacing one of that name)."""
    STRATEGIES[strategy.name] = strategy


_ = Strategy  # re-exported for subclassing
