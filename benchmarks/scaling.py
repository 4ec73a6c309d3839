"""Is an operation's 10x ratio real superlinear work, or the memory hierarchy?

Runs one operation of the suite (``benchmarks/suite.py``) under ``cProfile``
on one shape at two sizes, and compares each function's *call count* with
the growth of the topology. Real superlinear work shows as functions whose
calls grow faster than the number of functions (a loop over a bus, a list
scanned per device: ``calls x`` well above the size ratio); when every count
grows with the size and only the time per call grows, the ratio is the cost
of a working set that no longer fits in the processor's caches (dictionaries
of 100,000 entries, objects spread over hundreds of megabytes), not an
algorithm to fix.

Run: ``python benchmarks/scaling.py OPERATION SHAPE [--sizes 10000,100000]``,
e.g. ``python benchmarks/scaling.py simulate:walk-down realistic``. Prints
the CPU seconds at each size, then the functions whose call counts grow
more than 1.5 times faster than the topology (none: linear), then the top
functions by own time at the larger size with their call and time ratios.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

import iommugroups as ig

HERE = Path(__file__).resolve().parent

_Key = tuple[str, int, str]


def _operation(op: str) -> Callable[[ig.Topology], object]:
    """The operation as the suite's measuring process runs it."""
    if op == "load":
        raise SystemExit("load reads a file: profile it with the suite's own timing")
    if op == "groups":
        return ig.canonical_groups
    if op == "show":
        return ig.show
    if op == "what-if":
        return lambda t: ig.what_if(t, ["acs-override=downstream,multifunction"])
    if op == "explain":
        return lambda t: ig.explain(t, str(t.enumeration_order()[-1].address))
    if op == "check":

        def check(t: ig.Topology) -> object:
            listed = ig.Grouping(dict(ig.canonical_groups(t).groups), source="listing")
            return ig.check(t, listed)

        return check
    if op.startswith("simulate:"):
        strategy = op.split(":", 1)[1]
        return lambda t: ig.simulate(t, ig.Scenario(), strategy)
    raise SystemExit(f"unknown operation {op!r}")


def _profile(
    run: Callable[[ig.Topology], object], topo: ig.Topology
) -> dict[_Key, tuple[int, float]]:
    run(topo)  # warm: memos made per topology are made in both runs alike
    profiler = cProfile.Profile()
    profiler.enable()
    run(topo)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    return {key: (value[1], value[2]) for key, value in stats.items()}


def _name(key: _Key) -> str:
    return f"{Path(key[0]).name}:{key[1]}({key[2]})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("operation")
    ap.add_argument("shape")
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from shapes import build  # the generator, beside this file

    run = _operation(args.operation)
    small_n, big_n = (int(x) for x in args.sizes.split(","))
    profiles = []
    sizes = []
    for n in (small_n, big_n):
        topo = build(args.shape, n)
        start = time.process_time()
        run(topo)
        took = time.process_time() - start
        print(f"{args.operation} on {args.shape}, {len(topo):,} functions: {took:.3f} s CPU")
        profiles.append(_profile(run, topo))
        sizes.append(len(topo))
    grow = sizes[1] / sizes[0]
    small, big = profiles
    faster = [
        (calls / small[key][0], key, calls)
        for key, (calls, _t) in big.items()
        if key in small and small[key][0] and calls / small[key][0] > 1.5 * grow
    ]
    print(f"\nsize ratio {grow:.1f}; functions whose calls grow faster than that:")
    for ratio, key, calls in sorted(faster, reverse=True)[: args.top]:
        print(f"  x{ratio:7.1f} {calls:>12,} calls  {_name(key)}")
    if not faster:
        print("  none: every call count grows with the topology")
    print(f"\ntop {args.top} by own time at {sizes[1]:,} (calls ratio, own time ratio):")
    ranked = sorted(big.items(), key=lambda kv: -kv[1][1])[: args.top]
    for key, (calls, own) in ranked:
        s_calls, s_own = small.get(key, (0, 0.0))
        c_ratio = f"x{calls / s_calls:5.1f}" if s_calls else "  new"
        t_ratio = f"x{own / s_own:5.1f}" if s_own else "    -"
        print(f"  {own:8.3f} s {calls:>12,} calls {c_ratio} {t_ratio}  {_name(key)}")


if __name__ == "__main__":
    main()
