"""The strategies by name, and a way to add one's own."""

from __future__ import annotations

from .base import Strategy, StrategyLike
from .bus_replay import BusReplay
from .canonical_sim import CanonicalSim
from .device_add import DeviceAdd
from .device_link import DeviceLink
from .legacy_probe_time import LegacyProbeTime
from .reachable_set import ReachableSet
from .walk_down import WalkDown

__all__ = ["PROPOSALS", "STRATEGIES", "get_strategy", "register_strategy"]

#: Strategy name -> strategy object: the kernels' strategies and the remedies
#: proposed for *when* devices are grouped, which the analyses go through
#: (``orders``, the reproduction of a kernel log in ``check``).
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

#: Out-of-tree proposals that change *how* a device is grouped (its
#: ``device_group``), not when: found by name (``simulate --strategy``,
#: :func:`get_strategy`) but not in ``STRATEGIES``, whose members the
#: order analysis models and the log reproduction tries. ``reachable-set``:
#: the ACS reachable-set series, v3 (rules R6.1-R6.13).
PROPOSALS: dict[str, StrategyLike] = {s.name: s for s in (ReachableSet(),)}


def get_strategy(name: str) -> StrategyLike:
    """The strategy called ``name``: one of :data:`STRATEGIES`, or an out-of-tree proposal
    (``reachable-set``).

    Raises:
        KeyError: no such strategy (the message lists the known ones).
    """
    found = STRATEGIES.get(name) or PROPOSALS.get(name)
    if found is None:
        known = ", ".join([*STRATEGIES, *PROPOSALS])
        raise KeyError(f"unknown strategy {name!r}; known strategies: {known}") from None
    return found


def register_strategy(strategy: StrategyLike) -> None:
    """Make ``strategy`` available by its name (replacing one of that name)."""
    STRATEGIES[strategy.name] = strategy


_ = Strategy  # re-exported for subclassing
