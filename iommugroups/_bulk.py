"""Building many values at once: a large machine's groups, members, decisions.

Values built in bulk are small, acyclic and kept: the cyclic garbage
collector's passes over them, triggered by the allocations themselves, are
wasted work that grows with what is already alive (on a 100,000-function
machine, a third of ``show``'s time). :func:`paused_gc` suspends it for the
duration and restores it; nothing that is built meanwhile can form a cycle
that would need it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["paused_gc"]


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Suspend the cyclic garbage collector inside the block (if it was on), then restore it."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
