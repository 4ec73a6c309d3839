"""``reachable-set``: the ACS reachable-set proposal (v3), grouped at device_add. Not upstream.

What it models: Jason Gunthorpe's series "Fix incorrect iommu_groups with
PCIe ACS", v3 of 2025-09-05 (``<0-v3-8827cc7fc4e0+23f-pcie_switch_groups_jgg@nvidia.com>``,
11 patches on v6.17-rc4), the latest version posted, which replaces
``pci_device_group`` with one that classifies each *bus* (``pci_bus_isolated``)
and carries a non-isolated bus's group to everything below it
(``BUS_DATA_PCI_NON_ISOLATED``); its rules are R6.1-R6.13 of the rule table.
Which kernels carry it: no mainline kernel (it is not in 7.3); reported
carried as a test branch in leon/linux-rdma ``rdma-next`` (July 2025) and as
NVIDIA SAUCE in NV-Kernels pull request 164 (July 2025, "present in ...
ubuntu/+source/linux-nvidia ... nvidia-6.14-next"), so Ubuntu's
``linux-nvidia`` 6.14 kernels may group this way (reported, not checked
here).

When groups are made: as ``canonical`` (every device at ``device_add``, the
IOMMU taken as ready, parents first); only the IOMMU driver's
``device_group`` differs: the proposal's ``pci_device_group`` (in
``iommugroups._kernel.reachable_set``) for PCI devices, after SMMUv2 stream
sharing (R1.7). A device asked before the bridge
above it (or before its VMD endpoint) gets ``-EPROBE_DEFER`` (R6.10): it is
not grouped, the kernel's message is logged, and a driver probing it is
deferred until it can be.

Unlike ``reachable_set_groups`` (same module) by default, which has every
enumerated device on its bus when the IOMMU groups it (x86), the simulator
adds devices one at a time with the IOMMU ready, so a bus is judged on the
devices added so far (R6.4, R6.7): a downstream port grouped before a
non-isolating sibling is added keeps a group of its own
(``reachable_set_groups(..., iommu_first=True)`` gives the same groups).
Facts the model lacks (ACS Enhanced, the MMIO of a PCIe-to-PCI bridge) are
read the way that isolates least (see ``ProposalFacts`` there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ..._kernel.model import IommuKind, PciAddress, PciFunction
from ..._kernel.reachable_set import (
    REACHABLE_SET,
    Outcome,
    ProposalFacts,
    ReachableEnv,
    pci_device_group,
)
from ..drivers import ProbeResult
from ..simulator import Message, SimDevice, Simulator
from .canonical_sim import CanonicalSim

__all__ = ["ReachableSet"]

_STATE = "reachable-set"


class _Run:
    """The proposal's state in one simulation: its env and the groups' flag."""

    __slots__ = ("env", "flags", "missing")

    def __init__(self, env: ReachableEnv) -> None:
        self.env = env
        self.flags: dict[int, bool] = {}  # group id -> BUS_DATA_PCI_NON_ISOLATED
        self.missing: dict[int, frozenset[str]] = {}  # the facts the flag rests on


class _SimState:
    """The proposal's ``GroupState`` in a simulation."""

    __slots__ = ("run", "sim")

    monotonic = False  # devices are removed and re-added

    def __init__(self, sim: Simulator, run: _Run) -> None:
        self.sim = sim
        self.run = run

    def group_of(self, address: PciAddress) -> int | None:
        return self.sim.pci_groups.get(address)

    def non_isolated(self, group: int) -> bool:
        return self.run.flags.get(group, False)

    def flag_missing(self, group: int) -> frozenset[str]:
        return self.run.missing.get(group, frozenset())

    def present(self, fn: PciFunction) -> bool:
        dev = self.sim.devices.get(str(fn.address))
        return dev is not None and dev.present

    def bus_devices(self, domain: int, bus: int) -> Sequence[PciFunction]:
        sim = self.sim
        on_bus = [f for f in sim.topology.devices_on_bus(domain, bus) if self.present(f)]
        seq = sim.order  # when each was added
        return sorted(on_bus, key=lambda f: seq.get(str(f.address), 0))  # bus->devices


class ReachableSet(CanonicalSim):
    """Grouped at device_add, with the reachable-set proposal's ``pci_device_group`` (v3).

    Args:
        facts: facts the model lacks, as known (default: none, read the way
            that isolates least).
    """

    name: ClassVar[str] = REACHABLE_SET
    title: ClassVar[str] = "the ACS reachable-set proposal (v3, 2025-09-05), at device_add"
    kernel: ClassVar[str] = (
        "not mainline (through 7.3); posted v3 2025-09-05; reported in rdma-next (2025-07) "
        "and NVIDIA linux-nvidia 6.14"
    )
    rules: ClassVar[tuple[str, ...]] = ("R6.1-R6.13",)
    upstream: ClassVar[bool] = False

    def __init__(self, facts: ProposalFacts | None = None) -> None:
        self.facts = facts

    def _run(self, sim: Simulator) -> _Run:
        run = sim.state.get(_STATE)
        if not isinstance(run, _Run):
            run = _Run(ReachableEnv(sim.env, self.facts))
            sim.state[_STATE] = run
        return run

    def _outcome(self, sim: Simulator, dev: SimDevice) -> Outcome | None:
        fn = dev.fn
        if fn is None:
            return None
        run = self._run(sim)
        return pci_device_group(fn, _SimState(sim, run), run.env)

    def _refused(self, sim: Simulator, dev: SimDevice) -> bool:
        """R6.10: ``pci_device_group`` would return -EPROBE_DEFER or -EINVAL: log it, no group.

        A device whose stream id another holds is left to ``probe_device``,
        which refuses it first (R7.9), as ``arm_smmu_probe_device`` runs
        before ``device_group``.
        """
        spec = dev.fwspec
        if (
            spec is not None
            and sim.kinds.get(spec.iommu) is IommuKind.SMMU_V3
            and sim.streams.clash(spec, dev.name) is not None
        ):
            return False
        outcome = self._outcome(sim, dev)
        if outcome is None or not outcome.refused:
            return False
        sim.events.append(Message(dev.driver or dev.bus, dev.name, outcome.message))
        dev.no_group = outcome.text()
        dev.waiting = outcome.text()
        return True

    def _probe(self, sim: Simulator, dev: SimDevice) -> None:
        configured = sim.configure(dev, registered=self.ready(sim, dev)) is None
        if configured and not self._refused(sim, dev):
            sim.probe_device(dev)

    def dma_configure(self, sim: Simulator, dev: SimDevice) -> ProbeResult | None:
        """At driver probe: usually already grouped; else try again, and defer the
        driver's probe while the proposal says ``-EPROBE_DEFER`` (R6.10)."""
        if sim.group_of(dev) is not None:
            return None
        result = sim.configure(dev, registered=self.ready(sim, dev))
        if result is ProbeResult.DEFER:
            return ProbeResult.DEFER
        if result is None:
            if self._refused(sim, dev):
                outcome = self._outcome(sim, dev)
                if outcome is not None and outcome.how == "deferred":
                    return ProbeResult.DEFER
                return None
            sim.probe_device(dev)
        return None

    def device_group(self, sim: Simulator, dev: SimDevice) -> int | None:
        """SMMUv2 stream sharing (R1.7), else the proposal's ``pci_device_group`` for a PCI
        device (allocating the group it asks for, with its flag), else a new group (R1.5)."""
        spec = dev.fwspec
        if spec is not None and sim.kinds.get(spec.iommu) is IommuKind.SMMU_V2:
            remembered = sim.streams.smmu_v2_group(spec).group
            if remembered is not None:
                return remembered
        outcome = self._outcome(sim, dev)
        if outcome is None:
            return None
        if outcome.refused:  # every caller asked _refused first
            raise RuntimeError(f"{dev.name}: device_group reached after {outcome.how}")
        run = self._run(sim)
        group = outcome.found
        if group is None:  # a new group (an id freed by a hot-remove starts afresh)
            group = sim.table.new_group()
            run.flags[group] = outcome.non_isolated
            run.missing[group] = outcome.missing if outcome.non_isolated else frozenset()
        elif outcome.non_isolated and not run.flags.get(group, False):
            run.flags[group] = True
            run.missing[group] = outcome.missing
        return group
