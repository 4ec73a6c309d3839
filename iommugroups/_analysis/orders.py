"""``order_dependence``: can the order of probes and adds change a machine's IOMMU groups?

For one topology and one grouping strategy of the registry, the answer is
*independent* (every order the kernel can go through ends in the same
groups, and the same devices without one), *dependent* (with a witness: two
complete orders, as scenarios :func:`~iommugroups.simulate` replays, that end
differently, differing in as few places as could be found, usually one
swap of two adjacent steps) or *unknown* (the question leaves the modelled
fragment: SMMUv2 stream sharing, a strategy with no structural model, or
unknown ACS facts that could change the answer).

The verdict is read from the rules' structure (:mod:`.orders_model`): which
device's ``pci_device_group`` can see which other device's group, and which
devices a strategy can have grouped at the moment it groups another; for
SMMUv3 stream-id clashes (R7.9), which devices hold each stream id in the
reference order and which of them some order can keep away. No order is
enumerated; a witness is built from the state that breaks the reference
groups, shrunk, and replayed (one pair of orders, or a bounded few when a
witness does not replay). The orders compared
(:class:`~.orders_space.OrderSpace`) and the proof for each strategy are in
the docs ("Order dependence").
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import attrs

from .._boot.strategies.registry import STRATEGIES
from .._io.scenario_file import ScenarioFile
from .._kernel.acs import GROUPING_FACTS, isolating_reading
from .._kernel.model import IommuKind, PciAddress, Topology
from .._kernel.quirks import Quirks
from .orders_model import (
    ADD_STRATEGIES,
    PROBE_STRATEGIES,
    Clash,
    Structure,
    Violation,
    violations,
)
from .orders_space import (
    OrderEvent,
    OrderOutcome,
    OrdersError,
    OrderSpace,
    analysed_topology,
    instances,
    reference_order,
    replay,
    schedule_file,
)

__all__ = ["ORDERS_SCHEMA", "VERDICTS", "OrderDependence", "OrderWitness", "order_dependence"]

#: The schema id of :meth:`OrderDependence.to_json`.
ORDERS_SCHEMA = "iommugroups.orders/1"

#: The three answers.
VERDICTS = ("independent", "dependent", "unknown")

#: How many states breaking the reference groups are tried for a witness.
WITNESS_TRIES = 8

#: The kernel models ``kernel=`` accepts (only the current one, for now).
KERNELS = (None, "current")


def _events(value: Iterable[OrderEvent]) -> tuple[OrderEvent, ...]:
    return tuple(value)


@attrs.frozen
class OrderWitness:
    """Two complete orders that end in different groups.

    Attributes:
        strategy: the strategy both are replayed under.
        first, second: the orders, as :class:`OrderEvent` lists (``str(event)`` is
            ``probe 0000:01:00.0``, ``iommu smmu0``, ...).
        first_outcome, second_outcome: what each ends with: the groups
            (``.groups``, a set of sets of device names) and the devices
            left without a group (``.ungrouped``), as replayed.
        devices: two devices that end together in one order and apart in the
            other (or with and without a group).
        why: the difference, in words.
        topology: the topology replayed (VFs the orders enable included).
        space: the orders compared.
    """

    strategy: str
    first: tuple[OrderEvent, ...] = attrs.field(converter=_events)
    second: tuple[OrderEvent, ...] = attrs.field(converter=_events)
    first_outcome: OrderOutcome
    second_outcome: OrderOutcome
    devices: tuple[str, str]
    why: str
    topology: Topology = attrs.field(repr=False, eq=False)
    space: OrderSpace = attrs.field(factory=OrderSpace)
    vfs: Mapping[PciAddress, tuple[PciAddress, ...]] = attrs.field(
        factory=dict, repr=False, eq=False
    )
    quirks: Quirks | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def kind(self) -> str:
        """``"scenario"`` (replayed by ``simulate``) or ``"add-order"`` (widened orders)."""
        return "add-order" if any(ev.kind == "add" for ev in self.first) else "scenario"

    @property
    def differ_at(self) -> int:
        """The index of the first step where the two orders differ."""
        n = 0
        for a, b in zip(self.first, self.second, strict=False):
            if a != b:
                break
            n += 1
        return n

    @property
    def differences(self) -> int:
        """How many steps differ, once the common beginning and end are set aside."""
        a, b = self.first, self.second
        start = self.differ_at
        end = 0
        while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
            end += 1
        return max(len(a), len(b)) - start - end

    def scenarios(self) -> tuple[ScenarioFile, ScenarioFile]:
        """The two orders as scenario files (``dumps_scenario(sf.topology, sf.scenario,
        drivers=sf.drivers)`` writes one).

        Raises:
            OrdersError: a widened device-add order, which no scenario can replay.
        """
        return (
            schedule_file(
                self.topology,
                self.first,
                self.vfs,
                space=self.space,
                name="order A",
                strategy=self.strategy,
            ),
            schedule_file(
                self.topology,
                self.second,
                self.vfs,
                space=self.space,
                name="order B",
                strategy=self.strategy,
            ),
        )

    def replay(self) -> tuple[OrderOutcome, OrderOutcome]:
        """Replay both orders (``simulate``, or ``canonical_groups`` for widened ones)."""
        return (
            replay(
                self.topology,
                self.first,
                self.vfs,
                self.strategy,
                space=self.space,
                quirks=self.quirks,
            ),
            replay(
                self.topology,
                self.second,
                self.vfs,
                self.strategy,
                space=self.space,
                quirks=self.quirks,
            ),
        )


@attrs.frozen
class OrderDependence:
    """The answer of :func:`order_dependence`.

    Attributes:
        strategy: the strategy asked about.
        verdict: ``"independent"``, ``"dependent"`` or ``"unknown"``.
        reason: why, in words with rule ids: for *independent*, which rule
            makes every order converge; for *dependent*, what the witness
            shows; for *unknown*, what is not modelled.
        rules: the rule ids the reason rests on.
        witness: for *dependent*, two orders and what each ends with.
        space: the orders compared.
        kernel: the kernel model (``None``: the current one).
        devices: how many devices the orders probe (PCI functions with the
            VFs they enable, and platform devices).
        notes: what else the caller should know (unknown facts, VFs added).
        topology: the topology analysed (with the VFs the orders enable).
    """

    strategy: str
    verdict: str
    reason: str
    rules: tuple[str, ...] = ()
    witness: OrderWitness | None = None
    space: OrderSpace = attrs.field(factory=OrderSpace)
    kernel: str | None = None
    devices: int = 0
    notes: tuple[str, ...] = ()
    topology: Topology | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def dependent(self) -> bool:
        """Whether some two orders end in different groups."""
        return self.verdict == "dependent"

    def to_json(self) -> dict[str, Any]:
        """The ``iommugroups.orders/1`` document (the ``orders --json`` output)."""
        w = self.witness
        return {
            "schema": ORDERS_SCHEMA,
            "strategy": self.strategy,
            "kernel": self.kernel,
            "verdict": self.verdict,
            "reason": self.reason,
            "rules": list(self.rules),
            "space": {
                "adds": self.space.adds,
                "hotplug": self.space.hotplug,
                "iommu_builtin": self.space.iommu_builtin,
            },
            "devices": self.devices,
            "witness": None if w is None else _witness_json(w),
            "notes": list(self.notes),
        }


def _outcome_json(o: OrderOutcome) -> dict[str, Any]:
    return {
        "groups": sorted(sorted(g) for g in o.groups),
        "ungrouped": sorted(o.ungrouped),
    }


def _witness_json(w: OrderWitness) -> dict[str, Any]:
    return {
        "kind": w.kind,
        "first": [str(e) for e in w.first],
        "second": [str(e) for e in w.second],
        "differ_at": w.differ_at,
        "differences": w.differences,
        "devices": list(w.devices),
        "why": w.why,
        "first_groups": _outcome_json(w.first_outcome),
        "second_groups": _outcome_json(w.second_outcome),
    }


# --------------------------------------------------------------------- the question
def order_dependence(
    topology: Topology,
    strategy: str = "legacy-probe-time",
    kernel: str | None = None,
    *,
    adds: str = "kernel",
    hotplug: bool = True,
    iommu_builtin: bool = True,
    vfs: Mapping[str, int] | None = None,
    quirks: Quirks | None = None,
    focus: Iterable[str] = (),
) -> OrderDependence:
    """Decide whether the order of device adds and driver probes can change the groups.

    Args:
        topology: the machine, with its IOMMU instances and ID mappings.
        strategy: a strategy name of :data:`~iommugroups.STRATEGIES`.
        kernel: the kernel whose rules apply. Only the current model is
            implemented (``None`` or ``"current"``); kernel versions are not
            modelled yet.
        adds: ``"kernel"``: the device-add orders PCI enumeration produces (a
            bridge before the devices below it, VFs when their PF's driver
            enables them); ``"any"``: every device-add order.
        hotplug: include hot-remove and rescan of any devices at any time.
        iommu_builtin: the IOMMU driver is built in (a probe before its IOMMU
            registered is deferred, R7.3); ``False``: a module loaded at some
            point, before which a probed device runs without an IOMMU (R7.4).
        vfs: SR-IOV VFs the orders enable beyond those the topology lists:
            PF -> count (``{"000a:11:00.0": 2}``).
        quirks: the quirk tables (default: the kernel's).
        focus: devices the witness should be about, if it can be (the
            grouping of these devices is examined first).

    Returns:
        The verdict, why, and for *dependent* a witness whose two orders
        :func:`~iommugroups.simulate` replays to different groups.

    Raises:
        OrdersError: an unknown strategy or kernel, a bad ``adds`` or ``vfs``.

    The seed's board under the arm64 kernels v5.3-v6.14: a PF probed before
    the root port above it starts a group of its own (R4.5):

    >>> from iommugroups import examples
    >>> answer = order_dependence(examples.d05(), "legacy-probe-time")
    >>> answer.verdict, answer.witness.differences
    ('dependent', 2)
    >>> order_dependence(examples.d05(), "device-add").verdict
    'independent'
    """
    if kernel not in KERNELS:
        raise OrdersError(
            f"kernel {kernel!r}: kernel versions are not modelled yet; "
            "only the current model (kernel=None) is implemented"
        )
    if strategy not in STRATEGIES:
        known = ", ".join(STRATEGIES)
        raise OrdersError(f"unknown strategy {strategy!r}; known strategies: {known}")
    space = OrderSpace(adds=adds, hotplug=hotplug, iommu_builtin=iommu_builtin)
    first = tuple(_full(d) for d in focus)
    answer = _decide(topology, strategy, space, vfs, quirks, first)
    unknown = sorted(str(f.address) for f in topology.functions if f.unknown & GROUPING_FACTS)
    if unknown and answer.verdict != "unknown":
        alt_topo = topology.replace(
            functions=[isolating_reading(f, topology) for f in topology.functions]
        )
        alt = _decide(alt_topo, strategy, space, vfs, quirks, first)
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        if alt.verdict != answer.verdict:
            return attrs.evolve(
                answer,
                verdict="unknown",
                reason=(
                    f"{answer.verdict} when the unknown ACS facts of {shown} are read as "
                    f"absent, {alt.verdict} when read as isolating: the answer depends on "
                    f"them. {answer.reason}"
                ),
                notes=(*answer.notes, f"unknown ACS/PCIe facts: {shown}"),
            )
        answer = attrs.evolve(
            answer,
            notes=(
                *answer.notes,
                f"unknown ACS/PCIe facts of {shown} do not change the answer",
            ),
        )
    return attrs.evolve(answer, kernel=kernel)


def _decide(
    topology: Topology,
    strategy: str,
    space: OrderSpace,
    vfs: Mapping[str, int] | None,
    quirks: Quirks | None,
    focus: tuple[str, ...] = (),
) -> OrderDependence:
    topo, by_pf = analysed_topology(topology, vfs)
    devices = len(topo.functions) + len(topo.platform_devices)
    notes: list[str] = []
    enabled = sum(len(v) for v in by_pf.values())
    if enabled:
        notes.append(f"{enabled} SR-IOV VF(s) enabled by their PF's driver in every order")
    base = OrderDependence(
        strategy, "unknown", "", space=space, devices=devices, topology=topo, notes=tuple(notes)
    )
    if strategy not in PROBE_STRATEGIES + ADD_STRATEGIES:
        return attrs.evolve(
            base,
            reason=f"strategy {strategy!r} has no structural model: only the registry's own "
            f"strategies ({', '.join(PROBE_STRATEGIES + ADD_STRATEGIES)}) are decided",
        )
    st = Structure(topo, strategy, by_pf, quirks=quirks, adds=space.adds, hotplug=space.hotplug)
    ctx = _Context(st, topo, by_pf, space, strategy, quirks)
    shared = [c for c in st.clashes if c.kind is IommuKind.SMMU_V2]
    if shared:
        c = shared[0]
        return attrs.evolve(
            base,
            reason=f"{c.first} and {c.second} share stream id {c.stream_id:#x} on SMMUv2 "
            f"{c.iommu}: stream-map sharing (R1.7) is not part of the decided fragment",
            rules=("R1.7",),
        )
    probe_time = strategy in PROBE_STRATEGIES
    # A device bound before its IOMMU's module loads runs without one; the
    # module's registration walk then leaves it alone too under device-add
    # (R10.1: no fwspec and a driver bound); canonical takes every IOMMU as
    # registered before any device.
    if (probe_time or strategy == "device-add") and not space.iommu_builtin:
        found = ctx.module_witness(probe_time)
        if found is not None:
            return attrs.evolve(base, verdict="dependent", **found)
    clash = ctx.clash_verdict()
    if clash is not None:
        return attrs.evolve(base, **clash)
    reference = ctx.reference_outcome()
    classes = _classes(reference)
    first_v: Violation | None = None
    used: Violation | None = None
    witness: OrderWitness | None = None
    for tried, cand in enumerate(violations(st, classes, focus=focus)):
        first_v = first_v or cand
        witness = ctx.witness(cand, classes)
        if witness is not None:
            used = cand
            break
        if tried >= WITNESS_TRIES:
            break
    if first_v is None:
        return attrs.evolve(base, verdict="independent", **ctx.independent_reason(classes))
    if witness is None or used is None:
        return attrs.evolve(
            base,
            reason=f"a state breaking the reference groups exists ({_describe(st, first_v)}) "
            "but no witness could be replayed from it",
            rules=_rules_of(st, first_v),
        )
    swap = _swap_reason(st, witness) if used.occasion.kind == "probe" else None
    reason, rules = swap if swap is not None else (_describe(st, used), _rules_of(st, used))
    return attrs.evolve(base, verdict="dependent", reason=reason, rules=rules, witness=witness)


def _full(name: str) -> str:
    try:
        return str(PciAddress.parse(name))
    except ValueError:
        return name


def _classes(outcome: OrderOutcome) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, members in enumerate(sorted(sorted(g) for g in outcome.groups)):
        for m in members:
            out[m] = i
    return out


# --------------------------------------------------------------------- witnesses
class StreamFlip(NamedTuple):
    """A device refused an SMMUv3 stream id in the reference order (R7.9) that another
    order lets keep it (see :meth:`_Context.stream_flips`).

    Attributes:
        device: the device refused in the reference order.
        blockers: the devices that hold its stream ids before it asks, there.
        later: PFs whose VFs (blockers) are enabled after ``device``'s PF's.
        removed: blockers hot-removed while ``device`` asks.
        how: ``"vf-order"``, ``"hot-remove"`` (a VF's PF enables it while
            the blockers are away), ``"walk-order"`` (``device-add`` with a
            modular IOMMU: the blockers are re-added before the registration
            walk) or ``"vf-alone"`` (the same, with a lower VF of its own PF
            removed alone: not replayed, so the verdict is *unknown*).
        clash: the clash ``device`` was found through.
    """

    device: str
    blockers: tuple[str, ...]
    later: tuple[str, ...]
    removed: tuple[str, ...]
    how: str
    clash: Clash


class _Context:
    """One decision in progress: the structure, the orders, and how to replay them."""

    def __init__(
        self,
        st: Structure,
        topo: Topology,
        vfs: Mapping[PciAddress, tuple[PciAddress, ...]],
        space: OrderSpace,
        strategy: str,
        quirks: Quirks | None,
    ) -> None:
        self.st = st
        self.topo = topo
        self.vfs = vfs
        self.space = space
        self.strategy = strategy
        self.quirks = quirks
        probe_like = strategy in PROBE_STRATEGIES or space.adds == "any"
        self.probe_like = probe_like
        #: grouping orders are written as ``add`` events (widened orders the
        #: simulator cannot replay) rather than probes
        self.as_adds = space.adds == "any" and (
            strategy in ADD_STRATEGIES or strategy == "device-link"
        )
        self.probe_order = strategy in PROBE_STRATEGIES

    # ---------------------------------------------------------------- orders
    def reference_outcome(self) -> OrderOutcome:
        """What the reference order ends with (the classes every order must end in)."""
        return self.st.evaluate(self.st.reference_sequence(), probe_order=self.probe_order)

    def events_of(self, sequence: Sequence[str]) -> tuple[OrderEvent, ...]:
        """A grouping order written as an order: registrations first, then probes (or adds)."""
        if self.as_adds:
            return tuple(OrderEvent("add", n) for n in sequence)
        out = [OrderEvent("iommu", i) for i in instances(self.topo)]
        for n in sequence:
            out.append(OrderEvent("probe", n))
            if n in self.st.vfs:
                out.append(OrderEvent("sriov", n))
        return tuple(out)

    def make(
        self, first: Sequence[OrderEvent], second: Sequence[OrderEvent]
    ) -> OrderWitness | None:
        """Replay both orders; a witness when they end differently."""
        a = replay(self.topo, first, self.vfs, self.strategy, space=self.space, quirks=self.quirks)
        b = replay(
            self.topo, second, self.vfs, self.strategy, space=self.space, quirks=self.quirks
        )
        if a == b:
            return None
        pair, why = _difference(a, b)
        return OrderWitness(
            self.strategy,
            first,
            second,
            a,
            b,
            pair,
            why,
            self.topo,
            self.space,
            dict(self.vfs),
            self.quirks,
        )

    # ------------------------------------------------------------ permutations
    def shrink(self, bad: list[str], front: int) -> tuple[list[str], list[str]] | None:
        """Two adjacent grouping orders with different ends, between ``bad`` and the reference.

        ``bad`` starts with ``front`` devices pulled forward; each is moved
        right, last first, to its reference place, one adjacent swap at a
        time (every intermediate order is a possible one); a binary search
        finds a swap that changes the end.
        """
        st = self.st
        rank = {n: i for i, n in enumerate(st.reference_sequence())}
        moves: list[tuple[int, int]] = []  # (from index, to index)
        work = list(bad)
        for i in range(front - 1, -1, -1):
            j = i
            while j + 1 < len(work) and rank[work[j + 1]] < rank[work[i]]:
                j += 1
            if j > i:
                moves.append((i, j))
                item = work.pop(i)
                work.insert(j, item)
        total = sum(j - i for i, j in moves)

        def order_at(t: int) -> list[str]:
            out = list(bad)
            for i, j in moves:
                step = min(t, j - i)
                if step <= 0:
                    break
                item = out.pop(i)
                out.insert(i + step, item)
                t -= step
            return out

        def outcome(t: int) -> OrderOutcome:
            return st.evaluate(order_at(t), probe_order=self.probe_order)

        lo, hi = 0, total
        o_lo, o_hi = outcome(lo), outcome(hi)
        if o_lo == o_hi:
            return None
        while hi - lo > 1:
            mid = (lo + hi) // 2
            o_mid = outcome(mid)
            if o_mid != o_lo:
                hi, o_hi = mid, o_mid
            else:
                lo, o_lo = mid, o_mid
        return order_at(hi), order_at(lo)

    def permutation_witness(self, v: Violation) -> OrderWitness | None:
        st = self.st
        x = v.occasion.device
        ref = st.reference_sequence()
        rank = {n: i for i, n in enumerate(ref)}
        state = (_down(st, x) - {x}) | _down(st, v.other)
        front = [*sorted(state, key=rank.__getitem__), x]
        chosen = set(front)
        bad = front + [n for n in ref if n not in chosen]
        pair = self.shrink(bad, len(front))
        if pair is None:
            return None
        return self.make(self.events_of(pair[0]), self.events_of(pair[1]))

    # ------------------------------------------------------------ registrations
    def registration_witness(self, v: Violation) -> OrderWitness | None:
        st = self.st
        x = v.occasion.device
        regs0 = list(instances(self.topo))
        mine = st.instance(x) or ""
        other = st.instance(v.other) or ""
        lead = [mine] if other in ("", mine) or v.occasion.must(v.other) else [other, mine]
        bad = lead + [i for i in regs0 if i not in lead]
        rank = {inst: i for i, inst in enumerate(regs0)}
        # adjacent swaps from ``bad`` to the topology's order, searched like ``shrink``
        path = [list(bad)]
        work = list(bad)
        changed = True
        while changed:
            changed = False
            for i in range(len(work) - 1):
                if rank[work[i]] > rank[work[i + 1]]:
                    work[i], work[i + 1] = work[i + 1], work[i]
                    path.append(list(work))
                    changed = True

        def outcome(regs: list[str]) -> OrderOutcome:
            return st.evaluate(st.reference_sequence(regs), probe_order=False)

        for a, b in itertools.pairwise(path):
            if outcome(a) != outcome(b):
                return self.make(
                    reference_order(self.topo, self.vfs, registrations=b),
                    reference_order(self.topo, self.vfs, registrations=a),
                )
        return None

    # ------------------------------------------------------------ VFs and hot-plug
    def vf_order_witness(self, pf_late: str, pf_first: str) -> OrderWitness | None:
        """The reference order, and the same with ``pf_first``'s VFs enabled just
        before ``pf_late``'s rather than just after."""
        ref = list(reference_order(self.topo, self.vfs))
        late, first = OrderEvent("sriov", pf_late), OrderEvent("sriov", pf_first)
        if late not in ref or first not in ref:
            return None
        ref.remove(late)
        at = ref.index(first)
        after = [*ref[: at + 1], late, *ref[at + 1 :]]
        before = [*ref[:at], late, *ref[at:]]
        return self.make(before, after)

    def removal(
        self, targets: Iterable[str], enabled: set[str]
    ) -> tuple[list[OrderEvent], set[str]]:
        """``remove`` events for ``targets`` as the kernel runs them (a PF's VFs go first),
        and every device they take away."""
        st = self.st
        events: list[OrderEvent] = []
        gone: set[str] = set()
        for t in targets:
            if t in gone:
                continue
            below = {n for n in st.pci if n == t or st.below(t, n)}
            pfs = {n for n in below if n in st.vfs}
            for pf in sorted(pfs, key=st.pos.__getitem__):
                for vf in st.vfs[pf]:
                    if pf in enabled and vf not in gone:
                        events.append(OrderEvent("remove", vf))
                        gone.add(vf)
            if t not in gone:
                events.append(OrderEvent("remove", t))
                gone |= below
        return events, gone

    def comeback(self, gone: set[str], enabled_again: set[str]) -> list[OrderEvent]:
        """``rescan`` and everything it takes to bring the removed devices back, bound."""
        st = self.st
        out = [OrderEvent("rescan")]
        again = set(enabled_again)
        for n in st.pci:
            if n in gone and n not in st.pf_of:
                out.append(OrderEvent("probe", n))
                if n in st.vfs:
                    out.append(OrderEvent("sriov", n))
                    again.add(n)
        for pf in st.vfs:
            if pf not in again and any(vf in gone for vf in st.vfs[pf]):
                out.append(OrderEvent("sriov", pf))
                again.add(pf)
        out += [OrderEvent("probe", n) for n in st.pci if n in gone and n in st.pf_of]
        return out

    def hotplug_witness(self, v: Violation) -> OrderWitness | None:
        st = self.st
        occ = v.occasion
        x = occ.device
        lst = list(st.full_list(x))
        if v.kind == "joins":
            decisive = lst[: lst.index(v.other)] if v.other in lst else []
        else:
            decisive = lst
        ref = list(reference_order(self.topo, self.vfs))
        enabled = set(st.vfs)
        absent = [w for w in decisive if not occ.must(w) and w not in st.losers]
        if occ.kind == "vf":
            pf = st.pf_of[x]
            first, gone = self.removal([x, *absent], enabled)
            block = [*first, OrderEvent("sriov", pf), *self.comeback(gone - {x}, {pf})]
            if x not in gone:
                return None
        else:
            first, gone = self.removal([x, *absent], enabled)
            block = [*first, *self.comeback(gone, set())]
        return self.make(ref, [*ref, *block])

    # ------------------------------------------------------------ the special cases
    def module_witness(self, probe_time: bool = True) -> dict[str, Any] | None:
        """With the IOMMU driver a module: a device probed before it loads has no group.

        ``probe_time``: grouping at driver probe (R7.3, R7.4); else device-add,
        whose registration walk skips a device already bound (R10.1).
        """
        st = self.st
        for n in st.reference_sequence():
            if n not in st.translated or st.predecessors(n):
                continue
            inst = st.instance(n) or ""
            rest = [i for i in instances(self.topo) if i != inst]
            others = [m for m in st.reference_sequence() if m != n]
            tail: list[OrderEvent] = []
            for m in others:
                tail.append(OrderEvent("probe", m))
                if m in st.vfs:
                    tail.append(OrderEvent("sriov", m))
            head = [OrderEvent("iommu", i) for i in rest]
            reg, probe = OrderEvent("iommu", inst), OrderEvent("probe", n)
            w = self.make([*head, reg, probe, *tail], [*head, probe, reg, *tail])
            if w is None:
                continue
            if not probe_time:
                return {
                    "reason": f"{n} can be bound before its IOMMU {inst}, a module, is "
                    "loaded: it then runs without an IOMMU, and the module's registration "
                    "walk leaves a bound device without a fwspec alone (R10.1), so it never "
                    "gets a group, while bound after the module loads, it is grouped",
                    "rules": ("R7.4", "R10.1"),
                    "witness": w,
                }
            return {
                "reason": f"{n} can be probed before its IOMMU {inst}, a module, is loaded: "
                "it then runs without an IOMMU and never gets a group (R7.3 step 4, R7.4), "
                "while probed after it, it is grouped",
                "rules": ("R7.3", "R7.4", "R7.8"),
                "witness": w,
            }
        return None

    def clash_verdict(self) -> dict[str, Any] | None:
        """R7.9: an order-dependent SMMUv3 stream-id clash, or the losers of fixed ones.

        Under the strategies that group at driver probe (and with widened
        device-add orders) the two devices of a clash are swapped. Under the
        add-time ones the flips are read from the reference order's stream-id
        holders (:meth:`stream_flips`) and only a flip's witness is replayed:
        at most ``WITNESS_TRIES + 1`` pairs, however many clashes there are.
        """
        st = self.st
        clashes = [c for c in st.clashes if c.kind is IommuKind.SMMU_V3]
        if not clashes:
            return None
        holders: dict[tuple[str, int], str] = {}
        ref_outcome = st.evaluate(
            st.reference_sequence(), probe_order=self.probe_order, holders=holders
        )
        if self.probe_like:
            for c in clashes:
                if c.first in _down(st, c.second) or c.second in _down(st, c.first):
                    continue
                w = self.clash_swap(c)
                if w is not None:
                    return self.clash_answer(c, w)
        else:
            first: StreamFlip | None = None
            for tried, flip in enumerate(self.stream_flips(clashes, ref_outcome, holders)):
                first = first or flip
                w = self.flip_witness(flip)
                if w is not None:
                    return self.flip_answer(flip, w, "dependent")
                if tried >= WITNESS_TRIES:
                    break
            if first is not None:
                return self.flip_answer(first, None, "unknown")
        st.losers = {n for n in ref_outcome.ungrouped if n in st.translated}
        return None

    def clash_swap(self, c: Clash) -> OrderWitness | None:
        st = self.st
        ref = st.reference_sequence()
        rank = {n: i for i, n in enumerate(ref)}
        q = sorted(
            (_down(st, c.first) | _down(st, c.second)) - {c.first, c.second},
            key=rank.__getitem__,
        )
        rest = [n for n in ref if n not in set(q) | {c.first, c.second}]
        return self.make(
            self.events_of([*q, c.first, c.second, *rest]),
            self.events_of([*q, c.second, c.first, *rest]),
        )

    def clash_answer(self, c: Clash, w: OrderWitness) -> dict[str, Any]:
        return {
            "verdict": "dependent",
            "reason": f"{c.first} and {c.second} share stream id {c.stream_id:#x} on SMMUv3 "
            f"{c.iommu}: whichever is grouped first keeps it, the other is refused and gets "
            "no group (R7.9), and the order decides which",
            "rules": ("R7.9", "R3.8"),
            "witness": w,
        }

    # ------------------------------------------------------------ stream ids at device_add
    def stream_flips(
        self,
        clashes: Sequence[Clash],
        ref: OrderOutcome,
        holders: Mapping[tuple[str, int], str],
    ) -> Iterator[StreamFlip]:
        """The devices refused a stream id in the reference order that some order lets
        keep it, under the strategies that group at ``device_add`` (docs: the proofs,
        *Stream ids*).

        With the orders' ACPI boot a device asks for its stream ids when it is
        added or, with the IOMMU driver a module, in a registration walk
        (R10.1), never at driver bind (R10.3). Before anything changes, a
        device refused in the reference order (R7.9) can keep its ids only if
        every device that holds one of them (its *holders*) is absent when it
        asks: a VF of another PF, whose VFs can be enabled later; a PCI device
        hot-removed before a VF's PF enables it (not the PF or a bridge above
        it); under ``device-add`` with a modular IOMMU, one hot-removed and
        re-added before the registration walk, which visits it after those
        that stayed (``bus_for_each_dev`` in add order), or there a lower VF
        of its own PF removed alone (not replayed: *unknown*). No other holder
        can be absent: a platform device is never removed, a lower VF of the
        same PF is enabled by the same write, and a PCI device added at boot
        comes back in device order, before the device it beat. So the stream
        ids end alike in every order exactly when no device flips: one pass
        over the refused devices' stream ids, no replay. They come in the
        order of the clashes.
        """
        st = self.st
        rank = {n: i for i, n in enumerate(st.reference_sequence())}
        walk = self.strategy == "device-add" and not self.space.iommu_builtin
        seen: set[str] = set()
        for c in clashes:
            for y in (c.second, c.first):
                if y in seen or y not in ref.ungrouped or y not in st.translated:
                    continue
                seen.add(y)
                spec = st.spec[y]
                if spec is None:  # not translated (excluded above)
                    continue
                held = {holders.get((spec.iommu, sid)) for sid in spec.stream_ids}
                blockers = sorted(
                    (h for h in held if h is not None and h != y and rank[h] < rank[y]),
                    key=rank.__getitem__,
                )
                flip = self._flip(y, c, tuple(blockers), walk)
                if flip is not None:
                    yield flip

    def _flip(self, y: str, c: Clash, blockers: tuple[str, ...], walk: bool) -> StreamFlip | None:
        """How ``y`` can ask for its stream ids while none of its ``blockers`` holds one
        (``walk``: ``device-add`` with a modular IOMMU), or ``None``."""
        st = self.st
        pf = st.pf_of.get(y)
        hotplug = self.space.hotplug
        later: list[str] = []
        removed: list[str] = []
        alone = False  # a lower VF of y's PF, hot-removed alone before the module loads
        for b in blockers:
            b_pf = st.pf_of.get(b)
            if b not in st.pos:
                return None  # a platform device is never removed
            if pf is not None and b_pf is not None and b_pf != pf:
                later.append(b_pf)  # its VFs enabled after y's
            elif b_pf is not None:
                if not (walk and hotplug):
                    return None  # enabled by the same write as y, before it
                alone = True
            elif not hotplug:
                return None
            elif pf is not None:
                if b == pf or st.below(b, pf):
                    return None  # removing it removes y's PF: both come back in order
                removed.append(b)
            elif walk and not st.below(b, y):
                removed.append(b)
            else:
                return None  # added at boot, it comes back before y
        if not blockers:
            return None
        how = "hot-remove" if pf is not None else "walk-order"
        if alone:
            how = "vf-alone"
        elif not removed:
            how = "vf-order"
        return StreamFlip(y, blockers, tuple(dict.fromkeys(later)), tuple(removed), how, c)

    def flip_witness(self, f: StreamFlip) -> OrderWitness | None:
        """Two orders, one ending as the reference, one in which ``f.device`` keeps its
        stream ids; ``None`` if the replays end alike."""
        st = self.st
        if f.how == "vf-alone":
            return None  # not replayed: the sriov write would have to be repeated
        refs = list(reference_order(self.topo, self.vfs))
        if f.how == "walk-order":
            # removed and re-added before the IOMMU module loads: the registration
            # walk finds f.device before them
            remove, _gone = self.removal(f.removed, set())
            return self.make(refs, [*remove, OrderEvent("rescan"), *refs])
        mine = OrderEvent("sriov", st.pf_of[f.device])
        moved = [OrderEvent("sriov", q) for q in f.later]
        if mine not in refs or any(ev not in refs for ev in moved):
            return None
        base = [ev for ev in refs if ev not in moved]
        at = base.index(mine)
        if not f.removed:
            # the other PFs' VFs enabled just before f.device's PF's, or just after
            return self.make(
                [*base[:at], *moved, *base[at:]], [*base[: at + 1], *moved, *base[at + 1 :]]
            )
        head = base[:at]
        remove, gone = self.removal(f.removed, {ev.target for ev in head if ev.kind == "sriov"})
        if mine.target in gone:
            return None
        later = [ev for ev in moved if ev.target not in gone]
        body = [ev for ev in base[at + 1 :] if not (ev.target in gone and ev.kind != "iommu")]
        rescan, *back = self.comeback(gone, set())
        # the PF enables its VFs just before the rescan (the holders away) or just after
        return self.make(
            [*head, *remove, rescan, mine, *back, *later, *body],
            [*head, *remove, mine, rescan, *back, *later, *body],
        )

    def flip_answer(self, f: StreamFlip, w: OrderWitness | None, verdict: str) -> dict[str, Any]:
        """The verdict of a stream-id flip: *dependent* with its witness, or *unknown*."""
        c, y = f.clash, f.device
        holders = ", ".join(f.blockers)
        how = {
            "vf-order": f"the VFs of {', '.join(f.later)} and of {self.st.pf_of.get(y)} can "
            "be enabled in either order",
            "hot-remove": f"{', '.join(f.removed)} can be hot-removed before "
            f"{self.st.pf_of.get(y)} enables {y} and come back after, and a driver bind "
            "does not ask again (R10.3)",
            "walk-order": f"{', '.join(f.removed)} can be hot-removed and rescanned before "
            f"the IOMMU module loads, and its registration walk reaches {y} first (R10.1)",
            "vf-alone": f"a VF of {self.st.pf_of.get(y)} holding them can be hot-removed alone "
            f"before the IOMMU module loads, and its registration walk then reaches {y} "
            "(R10.1); such orders are not replayed",
        }[f.how]
        head = (
            f"{c.first} and {c.second} share stream id {c.stream_id:#x} on SMMUv3 {c.iommu}: "
            f"the device added first keeps it, the other is refused and gets no group (R7.9); "
            f"{y} is refused in the reference order (by {holders}), but {how}"
        )
        rules = ("R7.9", "R3.8", "R10.1", *(("R10.3",) if f.how == "hot-remove" else ()))
        if verdict == "dependent":
            return {"verdict": verdict, "reason": head, "rules": rules, "witness": w}
        return {
            "verdict": verdict,
            "reason": f"{head}; no witness could be replayed from it",
            "rules": rules,
        }

    # ------------------------------------------------------------ dispatch
    def witness(self, v: Violation, classes: Mapping[str, int]) -> OrderWitness | None:
        kind = v.occasion.kind
        if kind == "probe":
            return self.permutation_witness(v)
        if kind == "boot":
            return self.registration_witness(v)
        if kind == "vf" and not self.space.hotplug:
            pf = self.st.pf_of[v.occasion.device]
            other = self.st.pf_of.get(v.other)
            if other is None or other == pf:
                return None
            return self.vf_order_witness(pf, other)
        return self.hotplug_witness(v)

    def independent_reason(self, classes: Mapping[str, int]) -> dict[str, Any]:
        return _independent(self, classes)


def _down(st: Structure, device: str) -> set[str]:
    """``device`` and every device grouped before it in every order of the model."""
    return set(st.down(device))


def _difference(a: OrderOutcome, b: OrderOutcome) -> tuple[tuple[str, str], str]:
    """Two devices whose fate differs between the outcomes, and how, in words."""
    ga = {d: g for g in a.groups for d in g}
    gb = {d: g for g in b.groups for d in g}
    for d in sorted(set(ga) | set(gb) | a.ungrouped | b.ungrouped):
        in_a, in_b = ga.get(d), gb.get(d)
        if in_a == in_b:
            continue
        if in_a is None or in_b is None:
            where = "first" if in_a is None else "second"
            other = "second" if in_a is None else "first"
            return (d, d), f"{d} has no group in the {where} order, but has one in the {other}"
        extra = sorted((in_a - in_b) | (in_b - in_a))
        e = extra[0]
        if e in in_a and d in in_a:
            return (d, e), f"{d} and {e} share a group in the first order, not in the second"
        return (d, e), f"{d} and {e} share a group in the second order, not in the first"
    return ("", ""), "the orders end alike"


STEP_WORDS = {
    "upstream": "a bridge above it that its pci_device_group walks to (R4.1, R4.2)",
    "peers": "a DMA-alias or slot peer of its final pdev (R5.1, R5.2)",
    "below": "a device below its final pdev, which walk-down's downward look finds",
}


def _step_text(st: Structure, device: str, other: str) -> str:
    step = st.step_of(device, other)
    if step == "upstream":
        aliases, _walked, _stop = st.env.plan(st.fn[device])
        if any(str(w.address) == other for w, _rid in aliases):
            return "the bridge its DMA is aliased to (R4.1, R3.4)"
        return "the bridge above it whose path to the root is not ACS-isolated (R4.2)"
    return STEP_WORDS.get(step, "")


def _describe(st: Structure, v: Violation) -> str:
    """The mechanism of a violation, in words (for a verdict's reason)."""
    x, o = v.occasion.device, v.other
    when = {
        "probe": "when it is probed",
        "boot": "when its IOMMU instance's registration walk reaches it",
        "vf": "when its PF enables it",
        "rescan": "when it is added again after a hot-remove and rescan",
    }[v.occasion.kind]
    if v.kind == "joins":
        return (
            f"{x}, {when}, can find first the group of {o}, "
            f"{_step_text(st, x, o) or 'which it looks up'}, though in the reference order "
            f"they end in different groups; groups are never merged or split later (R1.3)"
        )
    return (
        f"{x}, {when}, can be grouped while {o} has the group they share in the reference "
        f"order but no device {x}'s pci_device_group looks up has one (R4.5): it starts a "
        f"group of its own (R4.4), and groups are never merged later (R1.3)"
    )


def _rules_of(st: Structure, v: Violation) -> tuple[str, ...]:
    base = {
        "upstream": ("R4.1", "R4.2", "R4.5"),
        "peers": ("R5.1", "R5.2", "R4.3"),
        "below": ("R4.3", "R4.4"),
        "": ("R4.4", "R4.5"),
    }[v.step]
    when = {
        "probe": ("R7.8",),
        "boot": ("R10.1", "R4.6"),
        "vf": ("R10.1",),
        "rescan": ("R10.1", "R1.2"),
    }[v.occasion.kind]
    return (*base, "R1.3", *when)


_HEADS = {
    "legacy-probe-time": "A device is grouped when a driver probes it (R7.8), in any order.",
    "bus-replay": "A device is grouped when a driver probes it (R7.8), in any order; the "
    "replays at IOMMU registration find no device with a fwspec and no group (R7.7).",
    "walk-down": "A device is grouped when a driver probes it, in any order; one that finds "
    "no group joins a grouped device whose walk passes its final pdev (walk-down).",
    "device-link": "A device is grouped when a driver probes it, and it probes only after "
    "the bridge above it has bound (R9.1, R9.2), so bridges are grouped first.",
    "device-add": "A device is grouped when it is added, or in its IOMMU's registration "
    "walk, in device order: a bridge before the devices below it (R10.1).",
    "canonical": "A device is grouped when it is added, a bridge before the devices below "
    "it (R10.1).",
}


def _independent(ctx: _Context, classes: Mapping[str, int]) -> dict[str, Any]:
    """Why every order converges, from the reference order's joins (for the reason)."""
    st = ctx.st
    via: dict[str, str | None] = {}
    st.evaluate(st.reference_sequence(), probe_order=ctx.probe_order, via=via)
    counts = {"upstream": 0, "peers": 0, "below": 0, "": 0}
    for name, other in via.items():
        if name in st.fn:
            counts[st.step_of(name, other) if other is not None else ""] += 1
    parts = []
    if counts["upstream"]:
        parts.append(
            f"{counts['upstream']} device(s) join a bridge above them or the bridge their "
            "DMA is aliased to (R4.1, R4.2), grouped before them in every order"
        )
    if counts["peers"]:
        parts.append(
            f"{counts['peers']} join a DMA-alias or slot peer (R5.1, R5.2) through ties "
            "that find the same group whichever device comes first"
        )
    if counts["below"]:
        parts.append(f"{counts['below']} join a device below their final pdev (walk-down)")
    if counts[""]:
        parts.append(
            f"{counts['']} start a group of their own: nothing they look up can hold "
            "another group when they are grouped"
        )
    losers = sorted(st.losers)
    if losers:
        parts.append(
            f"{len(losers)} lose an SMMUv3 stream-id clash (R7.9) in every order "
            f"({', '.join(losers[:3])}{' ...' if len(losers) > 3 else ''})"
        )
    untranslated = len([n for n in st.pci if n not in st.translated])
    if untranslated:
        parts.append(f"{untranslated} have no IOMMU and never get a group (R3.8)")
    if ctx.space.hotplug and st.strategy in ADD_STRATEGIES and ctx.space.adds == "kernel":
        parts.append(
            "after a hot-remove and rescan, or when its PF enables it, a device finds its "
            "group again"
        )
    body = "; ".join(parts) if parts else "there is no device an IOMMU translates"
    rules = {
        "legacy-probe-time": ("R7.8",),
        "bus-replay": ("R7.7", "R7.8"),
        "walk-down": ("R7.8",),
        "device-link": ("R9.1", "R9.2"),
        "device-add": ("R10.1", "R4.6"),
        "canonical": ("R10.1",),
    }[st.strategy]
    return {
        "reason": f"{_HEADS[st.strategy]} {body[0].upper()}{body[1:]}.",
        "rules": ("R4.1", "R4.2", "R5.1", "R5.2", "R1.3", *rules),
    }


_STEP_RULES = {
    "upstream": ("R4.1", "R4.2"),
    "peers": ("R5.1", "R5.2"),
    "below": ("R4.3",),
    "": (),
}


def _swap_reason(st: Structure, w: OrderWitness) -> tuple[str, tuple[str, ...]] | None:
    """Why swapping the witness's two adjacent probes changes the groups, and the rules."""
    i = w.differ_at
    if w.differences != 2 or i + 1 >= len(w.first):
        return None
    u, v = w.first[i].target, w.first[i + 1].target
    u_in_v, v_in_u = st.looks_up(v, u), st.looks_up(u, v)
    adding = w.kind == "add-order"
    verb = "Adding" if adding else "Probing"
    what = f"{verb} {v} before {u} rather than after changes the groups: "
    tail = ("R4.4", "R4.5", "R1.3", "R10.1" if adding else "R7.8")
    if u_in_v and not v_in_u:
        return (
            what + f"{v} looks up {u}, {_step_text(st, v, u)}, but {u} never looks up {v}; "
            f"grouped before {u}, {v} cannot find its group and starts or joins another "
            "(R4.4, R4.5), and groups are never merged later (R1.3).",
            (*_STEP_RULES[st.step_of(v, u)], *tail),
        )
    if v_in_u and not u_in_v:
        return (
            what + f"{u} looks up {v}, {_step_text(st, u, v)}, but {v} never looks up {u}; "
            f"grouped after {v}, {u} finds its group, grouped before it, it does not, and "
            "groups are never merged later (R1.3).",
            (*_STEP_RULES[st.step_of(u, v)], *tail),
        )
    if u_in_v and v_in_u:
        return (
            what + f"{u} and {v} look each other up, but each can find another group "
            "first, so whichever is grouped first decides (R5.1, R5.2, R1.3).",
            ("R5.1", "R5.2", *tail),
        )
    return None
