"""Benchmark: ``order_dependence`` decides a 10,000-device machine in seconds, linearly.

Builds machines of the suite's shapes (``benchmarks/shapes.py``: ``realistic``,
the large server mix behind a VT-d-like IOMMU, and ``smmu``, the same behind
SMMUv3 instances with IORT-like mappings, where stream-id clashes appear) at
two sizes, N and 4N devices (default 10,000 and 40,000; ``--quick``: 2,000
and 8,000), and times, in one run, :func:`iommugroups.order_dependence` under
every strategy of the registry: the verdict and, when dependent, the witness
shrunk and replayed twice through ``simulate``.

It prints, per shape and strategy, the verdict, the seconds at both sizes,
the scaling ratio ``(t_big / t_small) / (n_big / n_small)`` (1.0 is
linear) and how many orders each verdict replayed at both sizes (calls of
``simulate`` and ``canonical_groups``: bounded, whatever the machine's
size), then the slowest verdict at N devices, against the 10 s goal.
``--shapes`` adds others (``one-bus``, ``big-pf``, ``deep-switch``, ...).

Run: ``python benchmarks/bench_orders.py [--quick] [--size N] [--shapes a,b]``.
A measurement, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shapes import SHAPES, build

from iommugroups._analysis import orders_space
from iommugroups._analysis.orders import order_dependence
from iommugroups._boot.strategies.registry import STRATEGIES

#: The time the issue allows for one verdict on a 10,000-device machine.
GOAL = 10.0

#: Orders replayed so far (``simulate`` and ``canonical_groups`` calls of ``replay``).
REPLAYS = [0]


def _counted(fn: Any) -> Any:
    def counting(*args: Any, **kwargs: Any) -> Any:
        REPLAYS[0] += 1
        return fn(*args, **kwargs)

    return counting


orders_space.simulate = _counted(orders_space.simulate)  # type: ignore[assignment]
orders_space.canonical_groups = _counted(orders_space.canonical_groups)  # type: ignore[assignment]


def _time(topo: object, strategy: str) -> tuple[float, str, int]:
    gc.collect()
    REPLAYS[0] = 0
    t = time.perf_counter()
    answer = order_dependence(topo, strategy)  # type: ignore[arg-type]
    took = time.perf_counter() - t
    return took, answer.verdict, REPLAYS[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10_000, help="devices (default 10,000)")
    ap.add_argument("--quick", action="store_true", help="2,000 and 8,000 devices")
    ap.add_argument("--shapes", default="realistic,smmu", help="shapes, comma separated")
    args = ap.parse_args()
    small = 2_000 if args.quick else args.size
    big = 4 * small
    worst = 0.0
    print(f"order_dependence at {small:,} and {big:,} devices (ratio 1.0: linear)")
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        topo_small, topo_big = build(shape, small), build(shape, big)
        n_small, n_big = len(topo_small), len(topo_big)
        print(f"\n{name}: {n_small:,} and {n_big:,} PCI functions")
        for strategy in STRATEGIES:
            t_small, verdict, r_small = _time(topo_small, strategy)
            t_big, _, r_big = _time(topo_big, strategy)
            worst = max(worst, t_small)
            ratio = (t_big / t_small) / (n_big / n_small) if t_small > 0 else float("nan")
            print(
                f"  {strategy:<18} {verdict:<11} {t_small:7.2f} s  {t_big:7.2f} s  "
                f"ratio {ratio:5.2f}  replays {r_small}/{r_big}",
                flush=True,
            )
    print(f"\nslowest verdict at {small:,} devices: {worst:.2f} s")
    print(f"goal: under {GOAL:.0f} s at 10,000 devices, ratios near 1")


if __name__ == "__main__":
    main()
