"""The seed thread's HiSilicon D05 board, booted twice, under two kernels.

John Garry ("arm64 iommu groups issue", 2019) saw the two functions of a
ConnectX-5 land in different IOMMU groups from each other and from their
root port, on a board without ACS, where all of them must share one group.
The cause: on arm64 with ACPI/IORT, kernels v5.3-v6.14 make a PCI device's
group when its *driver* probes (``legacy-probe-time``). With mlx5_core built
in, it probes the PFs while the root port is still waiting (deferred) for its
SMMU to register, so each PF starts a group of its own; the port, grouped
later, never looks down. Loaded as a module after boot, mlx5_core finds the
port already grouped and every function joins it.

Since v6.15 (``device-add``) the IOMMU core configures and groups devices
itself, at device_add or when their SMMU registers, in device order, parents
first: both boots give the same, correct groups.

Run it: ``python examples/d05.py``.
"""

from __future__ import annotations

import iommugroups

STRATEGIES = {
    "legacy-probe-time": "arm64 ACPI/DT, v5.3-v6.14: groups made when a driver probes",
    "device-add": "v6.15 and later: groups made at device_add / SMMU registration",
}

BOOTS = {
    True: "mlx5_core built in (link order: pcieport, serial, SMMU, ..., mlx5_core)",
    False: "mlx5_core built as a module, loaded after boot",
}

#: The devices of the seed case: the root port, both PFs, both VFs.
SEED = ("000a:10:00.0", "000a:11:00.0", "000a:11:00.1", "000a:11:00.2", "000a:11:00.3")


def show(result: iommugroups.SimulationResult) -> None:
    print("  dmesg | grep 'Adding to iommu group':")
    for line in result.group_lines():
        print(f"    {line}")
    print("  groups:")
    for group, members in result.grouping.groups.items():
        print(f"    {group:2}: {' '.join(members)}")
    print("  no group:")
    for name, fate in result.fates.items():
        if fate.group is None and fate.state != "not-added":
            driver = fate.driver or "no driver"
            print(f"    {name} ({driver}): {fate.detail}")
    seed_groups = {result.fates[d].group for d in SEED}
    verdict = "one group, as it must be" if len(seed_groups) == 1 else "split: the bug"
    print(f"  root port 000a:10:00.0, PFs and VFs: {verdict}")


def main() -> None:
    topology = iommugroups.examples.d05()
    for strategy, what in STRATEGIES.items():
        for builtin, boot in BOOTS.items():
            scenario = iommugroups.examples.d05_scenario(builtin)
            print(f"== {strategy} ({what})")
            print(f"   {boot}, then 2 VFs enabled on 000a:11:00.0")
            show(iommugroups.simulate(topology, scenario, strategy))
            print()


if __name__ == "__main__":
    main()
