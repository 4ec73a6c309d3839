"""Compare what a guest kernel did with the model.

``compare(generated, capture)`` takes the topology that was asked for and the
capture the guest printed (``boot.boot``) and answers two questions:

* **built**: is the machine QEMU built the topology that was asked for?
  Every function at the address ``iommugroups vm`` said it would have, with
  the same ids, PCIe port type, header type, multifunction bit, presence of
  an ACS capability, SR-IOV capability and bridge bus numbers, and nothing
  else. (ACS *control* is not compared: the guest kernel sets it.)
* **groups**: does the model agree with the kernel? The reference is
  ``canonical_groups`` of the topology *read back from the guest's config
  space*, with devices added in the order of the kernel's ``Adding to iommu
  group`` lines: the same groups as sets (the verdict), and the same group
  numbers. On arm64 kernels before v6.15 a device is grouped only when a
  driver probes it, so only the devices the kernel grouped are compared, and
  the verdict says so (``fits``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

from iommugroups import Topology, canonical_groups, loads
from iommugroups._kernel.model import IdMapping, IommuInstance, PciFunction

_ADD = re.compile(r"(\S+): Adding to iommu group (\d+)")


@attrs.frozen
class Verdict:
    name: str
    kernel: str
    verdict: str  #: "agree", "fits" (arm64 < 6.15, grouped devices only) or "DISAGREE"
    numbers: bool  #: group numbers equal too (in the kernel's add order)
    built: tuple[str, ...]  #: differences between asked-for and built topology (empty: same)
    functions: int
    groups: int
    boot_seconds: float
    details: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _release(kernel: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", kernel or "")
    return (int(m[1]), int(m[2])) if m else (0, 0)


def _facts(fn: PciFunction) -> tuple[object, ...]:
    return (
        f"{fn.vendor:04x}:{fn.device:04x}" if fn.physfn is None else "vf",
        fn.pcie_type.name if fn.pcie_type is not None else "conventional",
        fn.header_type,
        fn.multifunction if fn.physfn is None else "-",
        "acs" if fn.acs is not None else "no acs",
        (fn.sriov.total_vfs, fn.sriov.offset, fn.sriov.stride) if fn.sriov else None,
        (fn.secondary_bus, fn.subordinate_bus) if fn.is_bridge else None,
        str(fn.physfn) if fn.physfn is not None else None,
    )


def built_differences(
    asked: Topology, built: Topology, addresses: dict[str, str] | None = None
) -> list[str]:
    """What differs between the topology asked for and the one the guest shows."""
    addresses = addresses or {}
    want = {addresses.get(str(f.address), str(f.address)): _facts(f) for f in asked}
    got = {str(f.address): _facts(f) for f in built}
    out = []
    for addr in sorted(set(want) | set(got)):
        if addr not in got:
            out.append(f"{addr}: asked for, not in the guest")
        elif addr not in want:
            out.append(f"{addr}: in the guest, not asked for ({got[addr][0]})")
        elif want[addr] != got[addr]:
            out.append(f"{addr}: asked {want[addr]}, built {got[addr]}")
    return out


def read_back(capture: dict[str, Any]) -> Topology:
    """The topology of the guest's config space (what ``iommugroups.load`` makes of it)."""
    return loads(json.dumps(capture), path=f"<{capture.get('name', 'capture')}>", fmt="capture")


def compare(
    asked: Topology, capture: dict[str, Any], addresses: dict[str, str] | None = None
) -> Verdict:
    """The verdict on one boot."""
    built = read_back(capture)
    diffs = built_differences(asked, built, addresses)
    kernel = capture.get("kernel") or "?"
    if "arm64" in kernel or "aarch64" in kernel:
        # The virt machine's firmware (IORT, or the DT's iommu-map) sends every
        # requester id to the one SMMUv3 as the same stream id (R3.8, R7.9).
        built = built.replace(
            iommus=(IommuInstance("smmuv3", "smmuv3"),),
            id_mappings=(IdMapping(0, 0, 0x10000, 0, "smmuv3"),),
        )
    observed = {int(k): frozenset(v) for k, v in capture["groups"].items()}
    order = [m[1] for line in capture["dmesg"] if (m := _ADD.search(line))]
    known = {str(f.address) for f in built}
    order = [a for a in dict.fromkeys(order) if a in known]
    model = canonical_groups(built, order=order or None)
    arm_probe_time = "arm64" in kernel and _release(kernel) < (6, 15)
    details: list[str] = []
    if arm_probe_time:
        grouped = set().union(*observed.values()) if observed else set()
        want = {g & grouped for g in model.partition()} - {frozenset()}
        same = want == set(observed.values())
        verdict = "fits" if same else "DISAGREE"
        numbers = False
        details.append(
            f"probe-time grouping (arm64 < 6.15): {len(grouped)} of {len(built)} devices grouped"
        )
    else:
        same = model.partition() == set(observed.values())
        verdict = "agree" if same else "DISAGREE"
        numbers = {k: frozenset(v) for k, v in model.groups.items()} == observed
        want = model.partition()
    if not same:
        for g in sorted(want - set(observed.values()), key=sorted):
            details.append("model only: " + " ".join(sorted(g)))
        for g in sorted(set(observed.values()) - want, key=sorted):
            details.append("kernel only: " + " ".join(sorted(g)))
    return Verdict(
        name=capture.get("name", ""),
        kernel=kernel,
        verdict=verdict,
        numbers=numbers,
        built=tuple(diffs),
        functions=len(built),
        groups=len(observed),
        boot_seconds=float(capture.get("boot_seconds") or 0.0),
        details=tuple(details),
    )
