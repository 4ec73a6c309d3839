"""Benchmark: canonical grouping scales linearly with the number of functions.

Builds synthetic machines of N PCI functions (many PCI domains, each with
root ports with and without ACS, a switch below each, multifunction
endpoints below the switch's downstream ports) and times, in one run:

* building the validated :class:`~iommugroups.Topology`, and
* ``canonical_groups`` on it,

for 100,000 and 1,000,000 functions (``--quick``: 10,000 and 100,000). It
prints the seconds for each size and the scaling ratio
``(t_big / t_small) / (n_big / n_small)``: 1.0 is perfectly linear.

Run: ``python benchmarks/bench_canonical.py [--quick] [--sizes N ...]``.
This is a measurement, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import time

from iommugroups import Acs, AcsFlags, PcieType, PciFunction, Topology, canonical_groups

ISOLATING = Acs(
    cap=AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF,
    ctrl=AcsFlags.SV | AcsFlags.RR | AcsFlags.CR | AcsFlags.UF,
)
ROOT_PORTS = 24
DSPS = 7
EP_FUNCTIONS = 4
PER_DOMAIN = ROOT_PORTS * (2 + DSPS * (1 + EP_FUNCTIONS))


def _bridge(
    dom: int,
    bus: int,
    dev: int,
    fn: int,
    kind: PcieType,
    sec: int,
    sub: int,
    acs: Acs | None,
    mf: bool = False,
) -> PciFunction:
    from iommugroups import PciAddress

    return PciFunction(
        PciAddress(dom, bus, dev, fn),
        vendor=0x1B36,
        device=0x000C,
        class_code=0x060400,
        header_type=1,
        multifunction=mf,
        pcie_type=kind,
        acs=acs,
        secondary_bus=sec,
        subordinate_bus=sub,
    )


def machine(n_functions: int) -> list[PciFunction]:
    """About ``n_functions`` functions (rounded up to whole domains)."""
    from iommugroups import PciAddress

    fns: list[PciFunction] = []
    domains = -(-n_functions // PER_DOMAIN)
    for dom in range(domains):
        bus = 1
        for rp in range(ROOT_PORTS):
            usp_bus, dsp_bus = bus, bus + 1
            sub = dsp_bus + DSPS
            acs = ISOLATING if rp % 2 else None
            fns.append(_bridge(dom, 0, rp + 1, 0, PcieType.ROOT_PORT, usp_bus, sub, acs))
            fns.append(_bridge(dom, usp_bus, 0, 0, PcieType.UPSTREAM, dsp_bus, sub, None))
            for d in range(DSPS):
                ep_bus = dsp_bus + 1 + d
                fns.append(
                    _bridge(
                        dom,
                        dsp_bus,
                        d,
                        0,
                        PcieType.DOWNSTREAM,
                        ep_bus,
                        ep_bus,
                        ISOLATING if d % 3 else None,
                    )
                )
                for f in range(EP_FUNCTIONS):
                    fns.append(
                        PciFunction(
                            PciAddress(dom, ep_bus, 0, f),
                            vendor=0x1B36,
                            device=0x0010,
                            class_code=0x010802,
                            multifunction=True,
                            pcie_type=PcieType.ENDPOINT,
                        )
                    )
            bus = sub + 1
    return fns


def measure(n: int) -> tuple[int, float, float]:
    fns = machine(n)
    gc.collect()
    t0 = time.perf_counter()
    topo = Topology(fns)
    t1 = time.perf_counter()
    groups = canonical_groups(topo)
    t2 = time.perf_counter()
    assert sum(len(m) for m in groups.groups.values()) == len(fns)
    return len(fns), t1 - t0, t2 - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10k and 100k instead of 100k and 1M")
    ap.add_argument("--sizes", type=int, nargs=2, metavar=("SMALL", "BIG"))
    args = ap.parse_args()
    small, big = args.sizes or ((10_000, 100_000) if args.quick else (100_000, 1_000_000))
    results = []
    for n in (small, big):
        real, t_topo, t_group = measure(n)
        results.append((real, t_topo, t_group))
        print(
            f"{real:>9,} functions: topology {t_topo:7.3f} s  canonical_groups "
            f"{t_group:7.3f} s  total {t_topo + t_group:7.3f} s"
        )
    (n1, a1, b1), (n2, a2, b2) = results
    ratio = ((a2 + b2) / (a1 + b1)) / (n2 / n1)
    print(f"scaling ratio (time ratio / size ratio, 1.0 = linear): {ratio:.2f}")


if __name__ == "__main__":
    main()
