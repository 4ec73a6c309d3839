"""Benchmark: recorded decisions cost little; show and explain stay near canonical_groups.

Measures, in one run, on the machine of ``bench_canonical.py`` (``--size``
functions, default 100,000):

* ``canonical_groups`` of the code in this checkout, and of the code at a
  baseline revision (``--baseline``, default ``0f0399c``: the last commit
  before the rules recorded their decisions), each in its own process,
  alternating, the minimum of ``--repeat`` runs each; the ratio
  ``current / baseline`` (the goal: at most 1.05);
* ``show`` of the whole machine and ``explain`` of the device added last
  (the one whose explanation used to need the whole replay), against
  ``canonical_groups`` measured in the same process (the goal: at most 2).

The baseline's package is taken from ``git archive`` of that revision into a
temporary folder; without git, or outside a checkout, that part is skipped
and says so. Run: ``python benchmarks/bench_decisions.py [--quick]``. A
measurement, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: What runs in each measuring process (``sys.argv``: package root, size, repeat, what).
CHILD = r"""
import gc, json, sys, time
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
from bench_canonical import machine
from iommugroups import Topology, canonical_groups
size, repeat, what = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split(",")
topo = Topology(machine(size))
canonical_groups(topo)  # warm: imports, caches of the quirk tables

def best(f):
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - t)
        del result  # freeing the result is not part of making it
    return min(times)

out = {"functions": len(topo), "canonical": best(lambda: canonical_groups(topo))}
if "show" in what:
    from iommugroups import show
    out["show"] = best(lambda: show(topo))
if "explain" in what:
    from iommugroups import explain
    last = str(topo.enumeration_order()[-1].address)
    out["explain"] = best(lambda: explain(topo, last))
print(json.dumps(out))
"""


def _run(package_root: Path, size: int, repeat: int, what: str) -> dict[str, float]:
    cmd = [sys.executable, "-c", CHILD, str(package_root), str(HERE), str(size), str(repeat), what]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def _baseline(rev: str, into: Path) -> Path | None:
    try:
        data = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "iommugroups"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"baseline {rev}: not available ({exc}); its comparison is skipped")
        return None
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100_000, help="functions (default 100,000)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per measure (minimum kept)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per side")
    ap.add_argument("--baseline", default="0f0399c", help="revision to compare with")
    ap.add_argument("--quick", action="store_true", help="10,000 functions, 2 runs, 1 round")
    args = ap.parse_args()
    size, repeat, rounds = args.size, args.repeat, args.rounds
    if args.quick:
        size, repeat, rounds = 10_000, 2, 1

    with tempfile.TemporaryDirectory() as tmp:
        base = _baseline(args.baseline, Path(tmp))
        current: list[dict[str, float]] = []
        before: list[dict[str, float]] = []
        for _ in range(rounds):
            current.append(_run(ROOT, size, repeat, "show,explain"))
            if base is not None:
                before.append(_run(base, size, repeat, ""))
    n = int(current[0]["functions"])
    canon = min(r["canonical"] for r in current)
    show = min(r["show"] for r in current)
    explain = min(r["explain"] for r in current)
    print(f"{n:,} functions, best of {repeat} runs x {rounds} rounds")
    print(f"  canonical_groups (this checkout)   {canon:7.3f} s")
    if before:
        old = min(r["canonical"] for r in before)
        print(f"  canonical_groups ({args.baseline})        {old:7.3f} s")
        print(f"  ratio this / {args.baseline}: {canon / old:.3f}  (goal <= 1.05)")
    for label, t in (("show, whole machine", show), ("explain, last device", explain)):
        print(f"  {label:<34} {t:7.3f} s  ({t / canon:.2f}x canonical)")
    print("  goal for show and explain: <= 2x canonical")


if __name__ == "__main__":
    main()
