"""Which device's grouping can see which other device's group: the structure of a verdict.

Every strategy of the registry makes a device's group with the kernel's
``pci_device_group`` (R4, R5), called when the strategy says (at driver
probe, at ``device_add``, in an IOMMU registration walk). One call looks
for an existing group in a fixed sequence of devices and joins the *first*
one that has a group, else starts a new one (R4.4); groups are never merged
(R1.3). The sequence, a device's *lookup list*, depends only on the
topology, never on which devices hold groups (R4.5 is about *whether* each
has one): its own requester id and DMA aliases (step 1, R4.1, R3.3, R3.4),
the bridges of its upstream walk (step 2, R4.2), then the DMA-alias and slot
peers of the final ``pdev`` (steps 3-4, R5.1, R5.2, searched depth first).
``walk-down`` appends the devices whose own walk passes that ``pdev``, in
device-add order (its downward look). It is read here by calling the kernel
floor's :func:`~iommugroups._kernel.pci_device_group.find_group` once per
device with an empty group map that records every ``iommu_group_get`` it
makes: the lookups are the rule's own, not a second copy of it.

So a grouping run is a *first-fit* process: devices are grouped in some
order, each joins the group of the first already grouped device of its
list. Which orders a strategy allows is its *presence model*: at the moment
device ``x`` is grouped, which devices are certainly grouped (``must``),
certainly not (``never``), and which others must be grouped along with a
given one (``needs``). A verdict follows from one invariant (see the docs'
proofs): let ``classes`` be the groups of the reference order; every run
ends in ``classes`` exactly when, at every moment a device ``x`` can be
grouped, (a) the first grouped device of its list, if any, is in ``x``'s
class, and (b) if some member of ``x``'s class is grouped, one of its list
is. A state breaking (a) or (b) is a :class:`Violation`, and the run that
reaches it ends in other groups (no merge repairs it): the verdict is
*dependent*. :func:`violations` checks (a) and (b) for the *smallest* state
of each kind, which is exact (every state containing a device contains its
forced ones), in time linear in the lists' total length.

This module also replays probe orders quickly (:meth:`Structure.evaluate`,
the first-fit process itself, used to shrink a witness), and finds the
SMMUv3 stream-id clashes (R7.9) and SMMUv2 stream sharing (R1.7).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

from .._kernel.fwspec import pci_fwspec, platform_fwspec
from .._kernel.model import FwSpec, IommuKind, PciAddress, PciFunction, Topology
from .._kernel.pci_device_group import GroupingEnv, find_group
from .._kernel.quirks import Quirks, make_context
from .orders_space import OrderOutcome, instances

__all__ = [
    "ADD_STRATEGIES",
    "PROBE_STRATEGIES",
    "Clash",
    "Occasion",
    "Structure",
    "Violation",
    "lookup_list",
    "violations",
]

#: Strategies that group a device when a driver probes it (R7.8).
PROBE_STRATEGIES = ("legacy-probe-time", "walk-down", "device-link", "bus-replay")
#: Strategies that group a device when it is added, or in an IOMMU registration walk (R10.1).
ADD_STRATEGIES = ("device-add", "canonical")


class _Recorder(Mapping[PciAddress, int]):
    """An empty group map that records what ``pci_device_group`` asks of it (R4.5)."""

    __slots__ = ("asked",)

    def __init__(self) -> None:
        self.asked: list[PciAddress] = []

    def __getitem__(self, key: PciAddress) -> int:
        raise KeyError(key)

    def get(self, key: PciAddress, default: object = None) -> None:  # type: ignore[override]
        self.asked.append(key)

    def __iter__(self) -> Iterator[PciAddress]:
        return iter(())

    def __len__(self) -> int:
        return 0


def lookup_list(fn: PciFunction, env: GroupingEnv) -> tuple[tuple[PciAddress, ...], int]:
    """The devices ``pci_device_group(fn)`` looks up, in order, and how many come from steps 1-2.

    The first ``n`` entries are its DMA aliases and upstream bridges (R4.1,
    R4.2), the rest the alias and slot peers of the final ``pdev`` (R5.1,
    R5.2). ``fn`` itself and repeated lookups are left out.
    """
    rec = _Recorder()
    find_group(fn, rec, env)
    aliases, walked, _stop = env.plan(fn)
    upto = 1 + len(aliases) + len(walked)  # own id, each alias, each walked bridge
    out: list[PciAddress] = []
    seen = {fn.address}
    steps12 = 0
    for i, a in enumerate(rec.asked):
        if a in seen:
            continue
        seen.add(a)
        out.append(a)
        if i < upto:
            steps12 += 1
    return tuple(out), steps12


class Clash(NamedTuple):
    """Two devices whose fwspecs share a stream id of one SMMU instance."""

    first: str
    second: str
    iommu: str
    stream_id: int
    kind: IommuKind


class Occasion(NamedTuple):
    """One moment a device can be grouped, and which states are possible then.

    Attributes:
        device: the device grouped.
        kind: ``"probe"`` (a driver probes it, R7.8), ``"boot"`` (added at
            boot or in an IOMMU registration walk, R10.1), ``"vf"`` (its PF
            enables it, SR-IOV), ``"rescan"`` (re-added after hot-remove).
        must: grouped at every such moment.
        never: grouped at no such moment (the device itself included).
        needs: ``needs(y)``: what must be grouped whenever ``y`` is, as keys
            (device names, or ``("instance", name)`` for a whole IOMMU
            instance's boot devices).
        key: ``key(w)``: the key under which device ``w`` is needed.
        below_never: every device below ``device`` is ``never`` (a search
            may skip them at once).
        lookup: the device's lookup list at this occasion when it is not
            its usual one (a function > 0 re-added by a rescan is grouped
            before the slot scan marks it multifunction, R5.7).
    """

    device: str
    kind: str
    must: Callable[[str], bool]
    never: Callable[[str], bool]
    needs: Callable[[str], Iterable[object]]
    key: Callable[[str], object]
    below_never: bool = False
    lookup: tuple[str, ...] | None = None


class Violation(NamedTuple):
    """A state in which grouping ``device`` breaks the reference classes.

    Attributes:
        occasion: when ``device`` is grouped.
        kind: ``"joins"`` (it joins ``other``, of another class) or
            ``"misses"`` (it starts a group while ``other``, of its own
            class, has one).
        other: the device of the state that decides.
        step: where ``other`` is in ``device``'s lookup list: ``"upstream"``
            (steps 1-2), ``"peers"`` (steps 3-4), ``"below"`` (walk-down's
            downward look); ``""`` for ``"misses"``.
    """

    occasion: Occasion
    kind: str
    other: str
    step: str


class Structure:
    """Everything a verdict reads, for one topology and one strategy.

    Args:
        topology: the analysed topology (VFs to enable included).
        strategy: a strategy name of the registry.
        vfs: each PF's VFs, in index order.
        quirks: the quirk tables.
        adds: ``"kernel"`` or ``"any"`` (see :class:`OrderSpace`).
        hotplug: hot-remove and rescan are part of the orders.
    """

    def __init__(
        self,
        topology: Topology,
        strategy: str,
        vfs: Mapping[PciAddress, tuple[PciAddress, ...]],
        *,
        quirks: Quirks | None = None,
        adds: str = "kernel",
        hotplug: bool = True,
    ) -> None:
        self.topology = topology
        self.strategy = strategy
        self.adds = adds
        self.hotplug = hotplug
        self.ctx = make_context(topology, quirks)
        self.env = GroupingEnv(self.ctx)
        kinds = {i.name: i.kind for i in topology.iommus}
        self.kinds = kinds
        order = topology.enumeration_order()
        #: PCI functions in device order (VFs last), then nothing else.
        self.pci: list[str] = [str(f.address) for f in order]
        self.platform: list[str] = [d.name for d in topology.platform_devices]
        self.pos: dict[str, int] = {n: i for i, n in enumerate(self.pci)}
        self.fn: dict[str, PciFunction] = {str(f.address): f for f in order}
        self.pf_of: dict[str, str] = {
            str(f.address): str(f.physfn) for f in order if f.physfn is not None
        }
        self.vfs: dict[str, tuple[str, ...]] = {
            str(pf): tuple(str(v) for v in vs) for pf, vs in vfs.items()
        }
        #: A VF's place among its PF's VFs.
        self.vf_index: dict[str, int] = {
            v: i for vs in self.vfs.values() for i, v in enumerate(vs)
        }
        self.spec: dict[str, FwSpec | None] = {}
        for f in order:
            self.spec[str(f.address)] = pci_fwspec(f, self.ctx)
        for d in topology.platform_devices:
            self.spec[d.name] = platform_fwspec(d)
        #: Devices an IOMMU translates (the others never get a group).
        self.translated: set[str] = {n for n, s in self.spec.items() if s is not None}
        self.ancestors: dict[str, tuple[str, ...]] = {}
        self.end: dict[str, int] = {}  # device-order position past a bridge's subtree
        for f in order:
            name = str(f.address)
            self.ancestors[name] = tuple(str(b.address) for b in topology.bridges_above(f))
        for name in self.pci:
            fn = self.fn[name]
            below = topology.subtree(fn)
            if below:
                self.end[name] = max(self.pos[str(b.address)] for b in below) + 1
        self.clashes = self._clashes()
        #: Devices refused a group in every order (SMMUv3 clash losers), set by the caller.
        self.losers: set[str] = set()
        #: Each translated PCI device's lookup list (steps 1-4), translated devices only.
        self.lists: dict[str, tuple[str, ...]] = {}
        self.steps12: dict[str, int] = {}
        #: The lookup lists of functions > 0 re-added by a rescan, where they
        #: differ (R5.7: not yet marked multifunction).
        self.rescan_lists: dict[str, tuple[str, ...]] = {}
        #: walk-down: the final pdev each device looks down from, the devices below
        #: each pdev (in device order), and the pdevs each device is below.
        self.top: dict[str, str] = {}
        self.below_pdev: dict[str, tuple[str, ...]] = {}
        self.below_set: dict[str, frozenset[str]] = {}
        self.passes: dict[str, list[str]] = {}
        self._sets: dict[str, frozenset[str]] = {}
        self._lists()

    # ------------------------------------------------------------ relations
    def _lists(self) -> None:
        env = self.env
        walk_down = self.strategy == "walk-down"
        if walk_down:
            # the downward look: devices whose walk up passes pdev (the strategy's index)
            through: dict[str, list[str]] = {}
            for name in self.pci:
                if name not in self.translated:
                    continue
                aliases, walked, _stop = env.plan(self.fn[name])
                for p in {str(b.address) for b in walked} | {str(w.address) for w, _ in aliases}:
                    through.setdefault(p, []).append(name)
                    self.passes.setdefault(name, []).append(p)
            self.below_pdev = {p: tuple(ns) for p, ns in through.items()}
            self.below_set = {p: frozenset(ns) for p, ns in through.items()}
        rescans = self.hotplug and self.strategy in ADD_STRATEGIES
        for name in self.pci:
            if name not in self.translated:
                continue
            fn = self.fn[name]
            self.lists[name], self.steps12[name] = self._translated_list(fn)
            if (
                rescans
                and fn.address.function > 0
                and fn.physfn is None
                and env.is_multifunction(fn) != fn.multifunction
            ):
                # R5.7: re-added by a rescan, only its own header bit counts
                env.unmarked.add(fn.address)
                try:
                    again, _n12 = self._translated_list(fn)
                finally:
                    env.unmarked.discard(fn.address)
                if again != self.lists[name]:
                    self.rescan_lists[name] = again
            if walk_down:
                top, _stop = env.walk_top(fn)
                self.top[name] = str(top.address)

    def _translated_list(self, fn: PciFunction) -> tuple[tuple[str, ...], int]:
        """``fn``'s lookup list kept to translated devices, once each, and how many
        of them come from steps 1-2."""
        found, n12 = lookup_list(fn, self.env)
        name = str(fn.address)
        seen = {name}
        out: list[str] = []
        kept12 = 0
        for i, a in enumerate(found):
            s = str(a)
            if s in self.translated and s not in seen:
                seen.add(s)
                out.append(s)
                kept12 += i < n12
        return tuple(out), kept12

    def _set(self, device: str) -> frozenset[str]:
        got = self._sets.get(device)
        if got is None:
            got = frozenset(self.lists.get(device, ()))
            self._sets[device] = got
        return got

    def full_list(self, device: str) -> Iterator[str]:
        """``device``'s whole lookup list, with walk-down's downward look after steps 1-4."""
        yield from self.lists.get(device, ())
        top = self.top.get(device)
        if top is not None:
            own = self._set(device)
            for s in self.below_pdev.get(top, ()):
                if s != device and s not in own:
                    yield s

    def looks_up(self, device: str, other: str) -> bool:
        """Whether ``other`` is in ``device``'s lookup list."""
        if other == device:
            return False
        if other in self._set(device):
            return True
        top = self.top.get(device)
        return top is not None and other in self.below_set.get(top, frozenset())

    def step_of(self, device: str, other: str) -> str:
        """Where ``other`` sits in ``device``'s lookup list (see :class:`Violation`)."""
        lst = self.lists.get(device, ())
        if other in self._set(device):
            return "upstream" if lst.index(other) < self.steps12[device] else "peers"
        return "below" if self.looks_up(device, other) else ""

    def _clashes(self) -> list[Clash]:
        holders: dict[tuple[str, int], str] = {}
        out: list[Clash] = []
        seen: set[tuple[str, str]] = set()
        for name in [*self.platform, *self.pci]:
            spec = self.spec.get(name)
            if spec is None:
                continue
            kind = self.kinds.get(spec.iommu)
            if kind not in (IommuKind.SMMU_V3, IommuKind.SMMU_V2):
                continue
            for sid in spec.stream_ids:
                other = holders.setdefault((spec.iommu, sid), name)
                if other != name and (other, name) not in seen:
                    seen.add((other, name))
                    out.append(Clash(other, name, spec.iommu, sid, kind))
        return out

    def instance(self, device: str) -> str | None:
        """The IOMMU instance translating ``device``, or ``None``."""
        spec = self.spec.get(device)
        return None if spec is None else spec.iommu

    def below(self, bridge: str, device: str) -> bool:
        """Whether ``device`` sits below ``bridge`` (VFs of PFs below included)."""
        end = self.end.get(bridge)
        if end is None:
            return False
        p = self.pos.get(device)
        if p is None:
            return False
        if self.pos[bridge] < p < end:
            return True
        pf = self.pf_of.get(device)
        return pf is not None and self.below(bridge, pf)

    # ------------------------------------------------------------ the orders
    def predecessors(self, device: str) -> tuple[str, ...]:
        """The devices that are grouped (or bound) before ``device`` in every probe order.

        A VF after its PF (its driver enables the VF) and, under
        ``device-link`` with kernel device-add orders, after every bridge
        above it (R9.1); so also after the bridges above its PF.
        """
        out: list[str] = []
        pf = self.pf_of.get(device)
        linked = self.strategy == "device-link" and self.adds == "kernel"
        if pf is not None:
            out.append(pf)
            if linked:
                out.extend(self.ancestors[pf])
        if linked:
            out.extend(self.ancestors.get(device, ()))
        return tuple(dict.fromkeys(out))

    def reference_sequence(self, registrations: Sequence[str] | None = None) -> list[str]:
        """The order devices are grouped in the reference order (the classes' order).

        Platform devices first, then PCI functions in device order, VFs last;
        under ``device-add`` the boot devices instance by instance, in
        registration order (each instance's walk in device order).
        """
        if self.strategy == "device-add" and self.adds == "kernel":
            regs = list(registrations or instances(self.topology))
            rank = {inst: i for i, inst in enumerate(regs)}
            boot = [n for n in self.pci if n not in self.pf_of]
            boot.sort(key=lambda n: (rank.get(self.instance(n) or "", len(regs)), self.pos[n]))
            plat = sorted(self.platform, key=lambda n: rank.get(self.instance(n) or "", len(regs)))
            return plat + boot + [n for n in self.pci if n in self.pf_of]
        return self.platform + self.pci

    def evaluate(
        self,
        sequence: Iterable[str],
        *,
        probe_order: bool = True,
        via: dict[str, str | None] | None = None,
        holders: dict[tuple[str, int], str] | None = None,
    ) -> OrderOutcome:
        """The first-fit process over ``sequence`` (grouping order), as the simulator ends.

        ``probe_order``: the sequence is a driver probe order (each VF added
        when its PF is probed, for walk-down's device-add order); otherwise a
        device-add order. Untranslated devices and SMMUv3 clash losers end
        without a group; platform devices get a group of their own (R1.5).
        ``via``, when given, receives the device each one joined (``None``: a
        new group); ``holders``, the first device grouped with each
        ``(instance, stream id)`` (under an SMMUv3, the one that keeps it, R7.9).
        """
        group: dict[str, int] = {}
        holder: dict[tuple[str, int], str] = {} if holders is None else holders
        ungrouped: set[str] = set()
        added: dict[str, int] = {}
        best: dict[str, tuple[int, int, str]] = {}  # walk-down: per pdev, the first added grouped
        walk_down = self.strategy == "walk-down"
        if walk_down and probe_order:
            for n in self.pci:
                if n not in self.pf_of:
                    added[n] = len(added)
        next_group = 0
        for name in sequence:
            if not probe_order and name not in added:
                added[name] = len(added)
            spec = self.spec.get(name)
            if spec is None:
                ungrouped.add(name)
                continue
            if self.kinds.get(spec.iommu) is IommuKind.SMMU_V3 and any(
                holder.get((spec.iommu, sid), name) != name for sid in spec.stream_ids
            ):  # R7.9: a stream id another device holds
                ungrouped.add(name)
                continue
            g: int | None = None
            found: str | None = None
            for w in self.lists.get(name, ()):
                g = group.get(w)
                if g is not None:
                    found = w
                    break
            top = self.top.get(name)
            if g is None and top is not None and top in best:  # walk-down's downward look
                _seq, g, found = best[top]
            if via is not None:
                via[name] = found
            if g is None:
                g = next_group
                next_group += 1
            group[name] = g
            for p in self.passes.get(name, ()):
                seq = added.get(name, len(added))
                if p not in best or seq < best[p][0]:
                    best[p] = (seq, g, name)
            for sid in spec.stream_ids:
                holder.setdefault((spec.iommu, sid), name)
            if probe_order and name in self.vfs:  # its VFs are added now
                for v in self.vfs[name]:
                    added.setdefault(v, len(added))
        members: dict[int, set[str]] = {}
        for n, g in group.items():
            members.setdefault(g, set()).add(n)
        return OrderOutcome(
            frozenset(frozenset(m) for m in members.values()), frozenset(ungrouped)
        )

    # ------------------------------------------------------------ presence
    def occasions(self, focus: Sequence[str] = ()) -> Iterator[Occasion]:
        """Every moment a grouping can happen, with its presence model (see the module doc).

        The occasions of the ``focus`` devices come first.
        """
        probe_like = self.strategy in PROBE_STRATEGIES or self.adds == "any"
        wanted = [n for n in focus if n in self.pos]
        chosen = set(wanted)
        candidates = [
            n
            for n in [*wanted, *(n for n in self.pci if n not in chosen)]
            if n in self.translated and n not in self.losers
        ]
        if probe_like:
            for x in candidates:
                yield self._probe_occasion(x)
            return
        # grouping at device_add (canonical, device-add), kernel device-add orders
        if self.strategy == "device-add" and len(instances(self.topology)) > 1:
            for x in candidates:
                if x not in self.pf_of:
                    yield self._boot_occasion(x)
        for x in candidates:
            if x in self.pf_of:
                yield self._vf_occasion(x)
            elif self.hotplug:
                yield self._rescan_occasion(x)

    def down(self, device: str) -> frozenset[str]:
        """``device`` and every device grouped (or bound) before it in every probe order.

        :meth:`predecessors` is already closed: a predecessor's own ones are
        among them.
        """
        return frozenset((device, *self.predecessors(device)))

    def _probe_occasion(self, x: str) -> Occasion:
        mine = self.down(x) - {x}

        def never(y: str) -> bool:
            return y == x or x in self.predecessors(y)

        return Occasion(
            x,
            "probe",
            mine.__contains__,
            never,
            self.down,
            _name_key,
            self.strategy == "device-link" and self.adds == "kernel",
        )

    def _boot_occasion(self, x: str) -> Occasion:
        inst = self.instance(x)
        px = self.pos[x]

        def must(y: str) -> bool:
            return y not in self.pf_of and self.instance(y) == inst and self.pos[y] < px

        def never(y: str) -> bool:
            return y in self.pf_of or (self.instance(y) == inst and self.pos[y] >= px)

        def needs(y: str) -> tuple[object, ...]:  # an instance's walk groups all its devices
            return (("instance", self.instance(y)),)

        def key(w: str) -> object:
            return None if w in self.pf_of else ("instance", self.instance(w))

        return Occasion(x, "boot", must, never, needs, key)

    def _vf_occasion(self, x: str) -> Occasion:
        pf = self.pf_of[x]
        index = self.vf_index
        mine = index.get(x, 0)
        fixed = {pf, *self.ancestors[pf]}
        hotplug = self.hotplug

        def lower(y: str) -> bool:  # enabled before x by the same sriov_numvfs write
            return self.pf_of.get(y) == pf and index.get(y, 0) < mine

        def must(y: str) -> bool:
            if y in fixed or lower(y):
                return True
            return not hotplug and y not in self.pf_of  # boot devices stay without hot-remove

        def never(y: str) -> bool:
            if y == x:
                return True
            return not hotplug and self.pf_of.get(y) == pf and not lower(y)

        return Occasion(x, "vf", must, never, self._needs_present, _name_key)

    def _rescan_occasion(self, x: str) -> Occasion:
        px = self.pos[x]

        def must(y: str) -> bool:
            return y not in self.pf_of and self.pos.get(y, px) < px

        def never(y: str) -> bool:
            if y == x or self.below(x, y):
                return True
            pf = self.pf_of.get(y)
            return pf is not None and (pf == x or self.below(x, pf))

        lookup = self.rescan_lists.get(x)
        return Occasion(x, "rescan", must, never, self._needs_present, _name_key, True, lookup)

    def _needs_present(self, y: str) -> tuple[str, ...]:
        """A present device needs the bridges above it, and a VF its PF (and its bridges)."""
        pf = self.pf_of.get(y)
        if pf is None:
            return (y, *self.ancestors.get(y, ()))
        return (y, pf, *self.ancestors.get(y, ()), *self.ancestors.get(pf, ()))


def _in(members: frozenset[str]) -> Callable[[str, str], bool]:
    """A ``looks_up(device, other)`` for one fixed lookup list."""

    def looks_up(_device: str, other: str) -> bool:
        return other in members

    return looks_up


def _name_key(w: str) -> object:
    return w


def _possible(structure: Structure, occ: Occasion, y: str) -> bool:
    """Whether ``y`` can be grouped at ``occ``: neither it nor what it needs is ``never``."""
    if occ.never(y) or y in structure.losers or y not in structure.translated:
        return False
    return not any(isinstance(w, str) and occ.never(w) for w in occ.needs(y))


def violations(
    structure: Structure,
    classes: Mapping[str, int],
    *,
    focus: Sequence[str] = (),
) -> Iterator[Violation]:
    """The states that break the reference ``classes`` (device -> class), occasion by occasion.

    For each occasion: (a) a device of the lookup list that can be the first
    grouped one while in another class; (b) a member of the device's own
    class that can be grouped while no device of the list is. The occasions
    of the ``focus`` devices come first.
    """
    st = structure
    members: dict[int, list[str]] = {}
    for name in st.pci:
        c = classes.get(name)
        if c is not None:
            members.setdefault(c, []).append(name)
    keys = {c: [st.pos[z] for z in group] for c, group in members.items()}
    # walk-down: the one class every device below a pdev is in, if there is one
    mono: dict[str, int | None] = {}
    for p, below in st.below_pdev.items():
        found = {classes.get(n) for n in below if n not in st.losers}
        mono[p] = found.pop() if len(found) == 1 else None
    for occ in st.occasions(focus):
        x = occ.device
        cx = classes.get(x)
        blocked = False
        seen: set[object] = set()
        top = st.top.get(x)
        own = occ.lookup if occ.lookup is not None else st.lists.get(x, ())
        # the downward look can be skipped when it only holds x's class: then only
        # the first predecessor of x in it can matter ("must"), checked below
        skip_below = top is not None and cx is not None and mono.get(top) == cx
        lst: Iterable[str] = own if skip_below or occ.lookup is not None else st.full_list(x)
        looks_up: Callable[[str, str], bool] = st.looks_up
        if occ.lookup is not None:
            looks_up = _in(frozenset(occ.lookup))
        hit: Violation | None = None
        for y in lst:
            if y in st.losers:
                continue
            if occ.must(y):  # always grouped: the first of the list when nothing before is
                if classes.get(y) != cx:
                    hit = Violation(occ, "joins", y, st.step_of(x, y))
                blocked = True
                break
            if (
                classes.get(y) != cx
                and _possible(st, occ, y)
                and not any(k in seen for k in occ.needs(y))
            ):
                hit = Violation(occ, "joins", y, st.step_of(x, y))
                break
            seen.add(occ.key(y))
        if hit is None and not blocked and skip_below and top is not None:
            blocked = any(
                occ.must(y) for y in st.below_pdev.get(top, ()) if y != x and y not in st.losers
            )
        if hit is not None:
            yield hit
        if blocked or cx is None:
            continue
        listed_keys: set[object] | None = None
        if occ.kind == "boot":
            listed_keys = {occ.key(w) for w in own}
        group = members.get(cx, [])
        for z in _candidates(st, occ, group, keys.get(cx, []), x):
            if looks_up(x, z) or not _possible(st, occ, z):
                continue
            needs = occ.needs(z)
            if listed_keys is not None:
                if any(k in listed_keys for k in needs):
                    continue
            elif any(isinstance(k, str) and looks_up(x, k) for k in needs):
                continue
            yield Violation(occ, "misses", z, "")
            break


def _candidates(
    structure: Structure, occ: Occasion, group: list[str], keys: list[int], x: str
) -> Iterator[str]:
    """The members of ``x``'s class worth trying for (b), skipping ``x``'s subtree at once.

    ``keys`` are the members' device-order positions (increasing).
    """
    end = structure.end.get(x) if occ.below_never else None
    if end is None:
        yield from (z for z in group if z != x)
        return
    px = structure.pos[x]
    lo = bisect.bisect_right(keys, px)
    hi = bisect.bisect_left(keys, end)
    for i, z in enumerate(group):
        if lo <= i < hi or z == x:
            continue
        yield z
