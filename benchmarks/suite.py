"""The benchmark suite: every operation, at 1k to 1M functions, time and peak memory.

For each shape of :mod:`shapes` and each size, a topology file is written
once; then every operation runs in a fresh process that loads the file and
runs it, so that each figure is one process's: the seconds the operation
took (the loading is an operation of its own, ``load``), and the process's
peak resident memory, also per function above the interpreter's own (an
empty run's peak, measured first). The operations:

* ``load``: ``iommugroups.load`` of the topology file;
* ``groups``: ``canonical_groups``;
* ``show``: ``show`` of the whole machine;
* ``check``: ``check`` against the canonical groups as a kernel would list
  them;
* ``what-if``: ``what_if`` with ``acs-override=downstream,multifunction``;
* ``explain``: ``explain`` of the device added last;
* ``simulate:<strategy>``: ``simulate`` of an ACPI boot with the default
  built-in drivers, for every strategy of the registry;
* ``reference`` (one row, shape ``machine``): no iommugroups code at all, a
  plain linear Python loop of the kind the library is made of (a table of
  ``n`` tuple-keyed records, then one look-up of each and of its bus's
  first function, in insertion order). Its 10x ratio is what this machine
  gives a loop that is linear by construction: memory caches and address
  translation make each look-up slower as the tables outgrow them, so an
  operation's ratio reads against this one, not against 10. (Its process
  runs it until the runs make 0.2 s, median: one run at 1k functions takes
  under a millisecond.)

``load()`` refuses files over 64 MiB (``MAX_INPUT_BYTES``); the measuring
processes lift that guard, since a topology of a million functions is about
220 MB of JSON.

Each row gives, per size, the seconds (the median of ``--repeat`` fresh
processes, each timing the operation's first call, as a command makes it)
and the peak memory (the highest of them), and the scaling ratio between consecutive
sizes: ``(t_big / t_small) / (n_big / n_small)`` x 10, i.e. how many times
longer 10x the functions take (10: linear). When the ``reference`` row was
measured, a last column gives each ratio against the machine's: the
operation's ratio x 10 / the reference's ratio for the same sizes (10: it
scales like the linear loop on this machine; above 10: worse than that).
A size is skipped for an operation once the smaller size took more than
``--budget`` seconds.

Run: ``python benchmarks/suite.py [--quick] [--shapes realistic,...]
[--sizes 1000,10000,...] [--markdown OUT.md]``. ``--quick`` (the CI smoke:
1k and 10k functions, the realistic shape, one run) asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

STRATEGIES = (
    "legacy-probe-time",
    "walk-down",
    "device-link",
    "bus-replay",
    "device-add",
    "canonical",
)
OPERATIONS = (
    "load",
    "groups",
    "show",
    "check",
    "what-if",
    "explain",
    *(f"simulate:{s}" for s in STRATEGIES),
    "reference",
)

#: What each measuring process runs (argv: topology file, operation).
CHILD = r"""
import gc, json, re, statistics, sys, time
path, op = sys.argv[1], sys.argv[2]
import iommugroups as ig
import iommugroups._io.load as loader
# load() refuses files over 64 MiB (a guard against a wrong file): a topology
# of 1M functions is about 220 MB of JSON, so the guard is lifted here
loader.MAX_INPUT_BYTES = max(loader.MAX_INPUT_BYTES, 2**31)

def timed(f):
    # the first call in this process, as a command makes it (the runs of a figure
    # are separate processes); the reference loop, which keeps nothing between
    # calls, is run again until its runs make 0.2 s (median): one run of it at
    # 1k or 10k functions takes well under a millisecond
    times = []
    while not times or (op == "reference" and sum(times) < 0.2 and len(times) < 101):
        gc.collect()
        t = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - t)
        del result
    return statistics.median(times)

if op == "baseline":
    seconds = 0.0
    n = 0
elif op == "reference":  # the machine's ratio for a loop linear by construction
    n = int(path)
    def reference():
        gc.disable()
        keys = [(i >> 16, (i >> 8) & 255, (i >> 3) & 31, i & 7) for i in range(n)]
        table = {k: [k[1], str(k[3])] for k in keys}
        out = {}
        for k in keys:
            v = table[k]
            out[k] = (v[0], v[1], table.get((k[0], k[1], 0, 0)))
        gc.enable()
        return out
    seconds = timed(reference)
else:
    if op == "load":
        seconds = timed(lambda: ig.load(path))
    topo = ig.load(path)
    n = len(topo)
    if op == "groups":
        seconds = timed(lambda: ig.canonical_groups(topo))
    elif op == "show":
        seconds = timed(lambda: ig.show(topo))
    elif op == "check":
        observed = ig.canonical_groups(topo)
        listed = ig.Grouping(dict(observed.groups), source="listing")
        seconds = timed(lambda: ig.check(topo, listed))
    elif op == "what-if":
        seconds = timed(lambda: ig.what_if(topo, ["acs-override=downstream,multifunction"]))
    elif op == "explain":
        last = str(topo.enumeration_order()[-1].address)
        seconds = timed(lambda: ig.explain(topo, last))
    elif op.startswith("simulate:"):
        strategy = op.split(":", 1)[1]
        seconds = timed(lambda: ig.simulate(topo, ig.Scenario(), strategy))
# VmHWM: this process's peak resident memory (ru_maxrss would count the
# parent's, which it inherits across exec)
with open("/proc/self/status") as status:
    peak = int(re.search(r"VmHWM:\s*(\d+) kB", status.read())[1]) * 1024
print(json.dumps({"seconds": seconds, "peak": peak, "functions": n}))
"""


def _child(path: Path, op: str, repeat: int, timeout: float) -> dict[str, float]:
    """``repeat`` fresh processes measure ``op``: the median seconds, the highest peak."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    runs = []
    for _ in range(max(repeat, 1)):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), op],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{op} on {path.name}: {done.stderr.strip().splitlines()[-1:]}")
        runs.append(json.loads(done.stdout.splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "peak": max(r["peak"] for r in runs),
        "functions": runs[0]["functions"],
    }


def _mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI smoke: 1k and 10k, realistic")
    ap.add_argument("--shapes", default="", help="comma-separated shapes (default: all)")
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--ops", default="", help="comma-separated operations (default: all)")
    ap.add_argument("--repeat", type=int, default=3, help="processes per figure (median)")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds before a size is skipped")
    ap.add_argument("--markdown", help="also write the table as Markdown to this file")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from shapes import SHAPES, build  # the generator, beside this file

    from iommugroups import dumps_topology

    shapes = [s for s in args.shapes.split(",") if s] or list(SHAPES)
    sizes = [int(x) for x in args.sizes.split(",")]
    ops = [o for o in args.ops.split(",") if o] or list(OPERATIONS)
    repeat = args.repeat
    if args.quick:
        shapes, sizes, repeat = ["realistic"], [1000, 10_000], 1
    started = time.time()
    rows: list[tuple[str, str, list[Cell | None]]] = []
    machine: list[Cell | None] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        baseline = _child(Path(tmp) / "none.json", "baseline", 1, 120)["peak"]
        if "reference" in ops:
            ref = [_child(Path(str(n)), "reference", repeat, 600) for n in sizes]
            machine = [(int(r["functions"]), r["seconds"], r["peak"]) for r in ref]
            rows.append(("machine", "reference", machine))
            _print_row("machine", "reference", machine, baseline, None)
            ops = [o for o in ops if o != "reference"]
        for shape in shapes:
            files: dict[int, Path] = {}
            for n in sizes:
                path = Path(tmp) / f"{shape}-{n}.json"
                path.write_text(dumps_topology(build(shape, n), "json"), encoding="utf-8")
                files[n] = path
            for op in ops:
                cells: list[Cell | None] = []
                over = False
                for n in sizes:
                    if over:
                        cells.append(None)
                        continue
                    try:
                        r = _child(files[n], op, repeat, timeout=max(args.budget * 20, 600))
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        print(f"  {shape} {op} {n}: {exc}", file=sys.stderr)
                        cells.append(None)
                        over = True
                        continue
                    cells.append((int(r["functions"]), r["seconds"], r["peak"]))
                    over = r["seconds"] > args.budget
                rows.append((shape, op, cells))
                _print_row(shape, op, cells, baseline, machine)
    elapsed = time.time() - started
    head = (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; baseline peak {_mib(baseline)}; {elapsed:.0f} s in all"
    )
    print(head)
    if args.markdown:
        text = _markdown(rows, sizes, baseline, head, machine)
        Path(args.markdown).write_text(text, encoding="utf-8")


Cell = tuple[int, float, float]  # functions, seconds, peak bytes


def _scale(a: Cell | None, b: Cell | None) -> float | None:
    """How many times longer 10x the functions take, from ``a`` to ``b`` (10: linear)."""
    if a is None or b is None or a[1] <= 0:
        return None
    return (b[1] / a[1]) / (b[0] / a[0]) * 10


def _ratios(cells: list[Cell | None]) -> list[float | None]:
    return [_scale(cells[i - 1], cells[i]) for i in range(1, len(cells))]


def _against(cells: list[Cell | None], machine: list[Cell | None] | None) -> list[float | None]:
    """Each ratio x 10 / the reference loop's ratio between the same sizes."""
    if machine is None:
        return []
    out: list[float | None] = []
    for mine, ref in zip(_ratios(cells), _ratios(machine), strict=False):
        out.append(None if mine is None or not ref else mine * 10 / ref)
    return out


def _fmt(ratios: list[float | None]) -> str:
    return ", ".join("-" if r is None else f"{r:.1f}" for r in ratios)


def _secs(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds >= 0.01 else f"{seconds * 1000:.2f} ms"


def _per_fn(cell: Cell, baseline: float) -> str:
    n, _s, peak = cell
    return f"{max(peak - baseline, 0) / max(n, 1):.0f} B/fn" if n else "-"


def _print_row(
    shape: str,
    op: str,
    cells: list[Cell | None],
    baseline: float,
    machine: list[Cell | None] | None,
) -> None:
    parts = []
    ratios = _ratios(cells)
    for i, c in enumerate(cells):
        if c is None:
            parts.append("skipped")
            continue
        ratio = ratios[i - 1] if i else None
        parts.append(
            f"{c[0]:>8,} {_secs(c[1]):>9} {_mib(c[2]):>8} ({_per_fn(c, baseline)})"
            + (f" x{ratio:.1f}" if ratio is not None else "")
        )
    against = _against(cells, machine)
    tail = f"  (against the machine: {_fmt(against)})" if against else ""
    print(f"{shape:12} {op:28} " + " | ".join(parts) + tail, flush=True)


def _markdown(
    rows: list[tuple[str, str, list[Cell | None]]],
    sizes: list[int],
    baseline: float,
    head: str,
    machine: list[Cell | None] | None,
) -> str:
    extra = " against the machine |" if machine is not None else ""
    out = [
        "| shape | operation | " + " | ".join(f"{n:,}" for n in sizes) + " | 10x ratios |" + extra,
        "|---|---|" + "---|" * (len(sizes) + 1) + ("---|" if extra else ""),
    ]
    for shape, op, cells in rows:
        shown = [
            "skipped" if c is None else f"{_secs(c[1])}, {_mib(c[2])} ({_per_fn(c, baseline)})"
            for c in cells
        ]
        line = f"| {shape} | {op} | " + " | ".join(shown) + f" | {_fmt(_ratios(cells))} |"
        if extra:
            line += f" {_fmt(_against(cells, machine))} |"
        out.append(line)
    return "\n".join(out) + f"\n\n{head}\n"


if __name__ == "__main__":
    main()
