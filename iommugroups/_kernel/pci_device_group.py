"""``pci_device_group``: which group a PCI device joins, step by step (spec §4, §5).

Models ``drivers/iommu/iommu.c`` ``pci_device_group()`` with its helpers
``get_pci_alias_or_group``, ``get_pci_alias_group`` and
``get_pci_function_alias_group``, unchanged in structure from about v4.4 to
at least v7.3 (R4). The function is faithful to one call: its input says
which devices *already* hold which group (R4.5: a device that has not been
through IOMMU probe is invisible), and it returns either the group found or
"allocate a new one" (R4.4). It never looks at the IOMMU instance of the
devices whose groups it finds (R4.6). Strategies decide the order of calls.

With ``trace=True`` every decision is recorded as a :class:`Step` naming the
rule id, the kind of step, the devices it went from and to, and the ACS
verdict (register bits or quirk) that decided; :attr:`GroupDecision.links`
keeps the chain of steps that led to the group found. Analyses (``explain``,
``show``, ``check``) read these records instead of working the rules out
again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple, overload

import attrs

from .acs import (
    AcsPath,
    AcsVerdict,
    acs_path,
    pci_acs_path_enabled,
    pci_acs_verdict,
)
from .alias import bus_alias_step, bus_aliases, dma_alias_mask
from .model import REQ_ACS_FLAGS, PciAddress, PciFunction, Topology
from .quirks import QuirkContext

__all__ = ["STEP_KINDS", "GroupDecision", "GroupingEnv", "Step", "find_group", "pci_device_group"]


def _rid(rid: int) -> str:
    return f"{rid >> 8:02x}:{(rid >> 3) & 0x1F:02x}.{rid & 7}"


def _found(group: int | None, has: str, lacks: str) -> str:
    return has.format(group) if group is not None else lacks


class Step(NamedTuple):
    """One rule application inside :func:`pci_device_group`.

    Attributes:
        rule: the rule id (``"R4.2"``, ``"R5.2"``, ...).
        kind: what the step did, in the order ``pci_device_group`` can take
            them: ``"own-id"`` (R4.1, the device's own requester id),
            ``"devfn-alias"`` (R4.1, R3.3), ``"bridge-alias"`` (R4.1, R3.4),
            ``"upstream-bridge"`` (R4.2, a bridge whose path to the root is
            not isolated), ``"isolated-stop"`` (R4.2), ``"in-group"``
            (R5.1), ``"dma-alias-peer"`` (R5.1, R3.6), ``"function-alias"``
            (R5.2), ``"function-peer"`` (R5.2) or ``"new-group"`` (R4.4).
        device: the device the rule looked at: for a link, where it leads
            (the alias bridge, the bridge above, the peer); for
            ``"isolated-stop"`` the isolated bridge.
        origin: for a link (and ``"isolated-stop"``), the device it starts
            from: the device being grouped, or the ``pdev`` the walk had
            reached.
        group: the group found at the device looked at, if any.
        rid: the requester id of an alias step (R3.3, R3.4).
        acs: the ACS verdict that decided (register bits, quirk, unknown
            facts): of the peer for ``"function-peer"``, of the device for
            ``"function-alias"``.
        path: for a bridge of the upstream walk, its R2.4 path to the root
            (``"upstream-bridge"``: not isolated, with the device that blocks
            it; ``"isolated-stop"``: isolated), as :meth:`GroupingEnv.acs_path`
            returns it.
    """

    rule: str
    kind: str
    device: PciAddress
    origin: PciAddress | None = None
    group: int | None = None
    rid: int | None = None
    acs: AcsVerdict | None = None
    path: AcsPath | None = None

    @property
    def text(self) -> str:
        """The step in words."""
        kind, dev, g = self.kind, self.device, self.group
        if kind == "own-id":
            return f"own requester id {_rid(dev.rid)}" + _found(
                g, ": already in group {}", ": no group yet"
            )
        if kind in ("devfn-alias", "bridge-alias"):
            rid = self.rid if self.rid is not None else dev.rid
            return f"DMA alias {_rid(rid)} via {dev}" + _found(
                g, ": already in group {}", ": no group yet"
            )
        if kind == "upstream-bridge":
            return f"bridge {dev}: path to the root not ACS-isolated" + _found(
                g, "; it is in group {}", "; it has no group yet"
            )
        if kind == "isolated-stop":
            return f"bridge {dev}: path to the root is ACS-isolated; stop"
        if kind == "in-group":
            return f"{dev} is in group {g}"
        if kind == "dma-alias-peer":
            return f"{dev} and {self.origin} are DMA aliases of each other (R3.6)"
        if kind == "function-alias":
            return (
                f"{dev} is a function of a multifunction device without ACS isolation "
                "(SV|RR|CR|UF): its slot's non-isolated functions are looked at"
            )
        if kind == "function-peer":
            return f"{self.origin} and {dev} are non-isolated functions of one slot (R5.2)"
        return "no existing group found: allocate a new one"


#: The kinds of :class:`Step`, in the order ``pci_device_group`` can take them.
STEP_KINDS = (
    "own-id",  # R4.1: the device's own requester id
    "devfn-alias",  # R4.1, R3.3: a devfn alias on its own bus
    "bridge-alias",  # R4.1, R3.4: a bridge's requester id its DMA carries
    "upstream-bridge",  # R4.2: a bridge whose path to the root is not isolated
    "isolated-stop",  # R4.2: the walk stops below an isolated bridge
    "in-group",  # R5.1: pdev (or a peer) already has a group
    "dma-alias-peer",  # R5.1, R3.6: two devices of one bus alias each other
    "function-alias",  # R5.2: pdev is multifunction and not ACS-isolated
    "function-peer",  # R5.2: a non-isolated function of pdev's slot
    "new-group",  # R4.4: nothing found
)


@attrs.frozen
class GroupDecision:
    """The outcome of one ``pci_device_group`` call.

    Attributes:
        device: the device being grouped.
        group: the existing group it joins, or ``None``: allocate a new one.
        via: the device whose group was found (``None`` for a new group).
        step: where it was found: ``"alias"`` (step 1, R4.1), ``"upstream"``
            (step 2, R4.2), ``"alias-group"`` (step 3, R5.1),
            ``"function-alias"`` (step 4, R5.2) or ``"new"`` (step 5, R4.4).
        pdev: the device steps 3-4 ran on (R4.3): the device itself, its
            topmost aliasing bridge, or the highest non-isolated bridge.
        steps: the trace (empty unless asked for).
        links: the steps that lead from the device to ``via``, each from its
            ``origin`` to its ``device``, in order: a ``"bridge-alias"``
            (R3.4), ``"upstream-bridge"`` steps (R4.2), then
            ``"dma-alias-peer"`` (R5.1) and ``"function-peer"`` (R5.2) steps;
            for a new group, the links of the walk up to ``pdev`` (empty
            unless traced).
        walked: the bridges the whole upward walk passes (R4.2), whether or
            not the call went that far (empty unless traced).
        stop: the ACS-isolated bridge the walk stops below (``None``: it
            reaches a root bus; unset unless traced).
    """

    device: PciAddress
    group: int | None
    via: PciAddress | None
    step: str
    pdev: PciAddress
    steps: tuple[Step, ...] = ()
    links: tuple[Step, ...] = ()
    walked: tuple[PciAddress, ...] = ()
    stop: PciAddress | None = None


#: The bridges a walk moves through, nearest first, as pairs sharing their tails:
#: ``(bridge, the rest of the walk)``; ``None`` at its end.
_Links = tuple[PciFunction, "_Links"] | None


class Walk(Sequence[PciFunction]):
    """The bridges R4.2's upward walk moves ``pdev`` through, nearest first.

    A read-only sequence. The walk from a bus is its nearest bridge followed
    by the walk from that bridge's own bus, and is kept that way (each walk
    sharing the rest with the next one), so that the walks from every bus of
    a deep switch chain take memory linear in the number of buses. A short
    walk (the usual one) is also kept as a tuple, iterated at C speed.
    """

    __slots__ = ("_items", "_last", "_len", "_links")

    def __init__(
        self,
        links: _Links = None,
        length: int = 0,
        last: PciFunction | None = None,
        items: tuple[PciFunction, ...] | None = (),
    ) -> None:
        self._links = links
        self._len = length
        self._last = last
        self._items = items

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._links is not None

    def __iter__(self) -> Iterator[PciFunction]:
        if self._items is not None:
            return iter(self._items)
        return self._follow()

    def _follow(self) -> Iterator[PciFunction]:
        node = self._links
        while node is not None:
            yield node[0]
            node = node[1]

    @overload
    def __getitem__(self, index: int) -> PciFunction: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[PciFunction, ...]: ...

    def __getitem__(self, index: int | slice) -> PciFunction | tuple[PciFunction, ...]:
        if isinstance(index, slice):
            return tuple(self)[index]
        i = index + self._len if index < 0 else index
        if not 0 <= i < self._len:
            raise IndexError("walk index out of range")
        if self._items is not None:
            return self._items[i]
        if i == self._len - 1:
            assert self._last is not None
            return self._last
        for j, br in enumerate(self):
            if j == i:
                return br
        raise IndexError("walk index out of range")  # pragma: no cover - len is exact

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Walk):
            return self._len == other._len and all(
                a is b for a, b in zip(self, other, strict=True)
            )
        if isinstance(other, tuple):
            return tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Walk({[str(b.address) for b in self]})"

    def compact(self) -> Sequence[PciFunction]:
        """The walk as a tuple when it is short (kept as one), else itself."""
        return self._items if self._items is not None else self

    def through(self, bridge: PciFunction) -> Walk:
        """``bridge`` followed by this walk."""
        items = (bridge, *self._items) if self._items is not None and self._len < 8 else None
        return Walk((bridge, self._links), self._len + 1, self._last or bridge, items)


_NO_WALK = Walk()

#: Per device: (aliases after its own id, bridges step 2 walks past, isolated stop).
#: (The bridges are a tuple for a short walk, else its :class:`Walk`.)
_Plan = tuple[tuple[tuple[PciFunction, int], ...], Sequence[PciFunction], "PciFunction | None"]


_EMPTY: frozenset[int] = frozenset()

#: A bus with at most this many functions is scanned for a slot's functions;
#: a more crowded one (up to 256) is indexed by slot once.
_SCAN_BUS = 16


class _BusInfo:
    """DMA-alias facts of one bus on which some device has a devfn alias."""

    __slots__ = ("by_devfn", "masks", "reverse")

    def __init__(self, devices: tuple[PciFunction, ...], masks: dict[int, frozenset[int]]) -> None:
        self.by_devfn = {t.address.devfn: t for t in devices}
        self.masks = masks
        self.reverse: dict[int, list[PciFunction]] = {}
        for t in devices:  # device order
            for d in masks.get(t.address.devfn, ()):
                self.reverse.setdefault(d, []).append(t)


class GroupingEnv:
    """Per-topology working state for repeated ``pci_device_group`` calls.

    Holds the quirk context (:func:`make_context`) and what depends only on
    the topology, never on which devices hold groups, memoised so that
    grouping a whole topology is linear: ACS verdicts per device, DMA-alias
    masks, the bridges' aliases above each bus (R3.4), the non-isolated
    bridges above each bus (R4.2), alias candidates (R5.1) and slot peers
    (R5.2). Reuse one across calls on the same topology.
    """

    __slots__ = (
        "_acs",
        "_buses",
        "_cand",
        "_masks",
        "_passing",
        "_paths",
        "_slots",
        "_up",
        "ctx",
        "topology",
        "unmarked",
    )

    def __init__(self, ctx: QuirkContext) -> None:
        self.ctx = ctx
        self.topology: Topology = ctx.topology
        self._acs: dict[PciAddress, bool] = {}
        self._paths: dict[PciAddress, AcsPath] = {}
        #: (domain, bus) -> the walk from it, where it stops, and the plan of
        #: a device on it without devfn aliases of its own (one entry per bus)
        self._up: dict[tuple[int, int], tuple[Walk, PciFunction | None, _Plan]] = {}
        self._cand: dict[PciAddress, tuple[PciFunction, ...]] = {}
        #: (domain, bus) -> slot -> the functions of that slot, device order.
        self._slots: dict[tuple[int, int], dict[int, tuple[PciFunction, ...]]] = {}
        # Devfn aliases are rare: find the devices that have one in one pass,
        # so that buses without any need no per-bus index at all.
        masks: dict[tuple[int, int], dict[int, frozenset[int]]] = {}
        # (the vendors a quirk may give an alias: None when a quirk may give any
        # device one, or the platform's IVRS aliases may)
        vendors = None if ctx.topology.platform.units else ctx.quirks.dma_alias_vendors()
        for fn in self.topology.functions:
            if vendors is not None and not fn.dma_alias_devfns and fn.vendor not in vendors:
                continue  # no alias: dma_alias_mask would be empty
            mask = dma_alias_mask(fn, ctx)
            if mask:
                a = fn.address
                masks.setdefault((a.domain, a.bus), {})[a.devfn] = mask
        self._masks = masks
        self._buses: dict[tuple[int, int], _BusInfo] = {}
        self._passing: _PassingIndex | None = None
        #: Functions > 0 being added by a rescan, not yet marked multifunction
        #: by the slot scan (R5.7): only their own header bit counts.
        self.unmarked: set[PciAddress] = set()

    def is_multifunction(self, fn: PciFunction) -> bool:
        """``pdev->multifunction`` at this moment (R5.6, R5.7)."""
        if self.unmarked and fn.address in self.unmarked:
            return fn.multifunction
        return self.topology.is_multifunction(fn)

    def acs_enabled(self, fn: PciFunction) -> bool:
        """``pci_acs_enabled(fn, REQ_ACS_FLAGS)`` (R2.3), made once per device."""
        verdict = self._acs.get(fn.address)
        if verdict is None:
            verdict = pci_acs_verdict(fn, REQ_ACS_FLAGS, self.ctx).enabled
            self._acs[fn.address] = verdict
        return verdict

    def acs_verdict(self, fn: PciFunction) -> AcsVerdict:
        """:func:`pci_acs_verdict` of ``fn`` for ``REQ_ACS_FLAGS`` (made once per device)."""
        return pci_acs_verdict(fn, REQ_ACS_FLAGS, self.ctx)

    def acs_path(self, fn: PciFunction) -> AcsPath:
        """R2.4 ``pci_acs_path_enabled(fn, NULL, REQ_ACS_FLAGS)``, with the device that blocks it.

        A named tuple ``(isolated, blocker, certain)``: every device from
        ``fn`` to the root bus is ACS-enabled; the first device on the path
        that is not (``None`` when isolated); no unknown fact could change
        ``isolated``. Made once per device.
        """
        path = self._paths.get(fn.address)
        if path is None:
            path = acs_path(fn, self.ctx)
            self._paths[fn.address] = path
        return path

    def alias_mask(self, fn: PciFunction) -> frozenset[int]:
        """``dma_alias_mask(fn)`` (R3.3, R3.5), computed once per topology.

        ``fn`` must be the topology's function at its address.
        """
        if not self._masks:
            return _EMPTY
        a = fn.address
        bus = self._masks.get((a.domain, a.bus))
        return _EMPTY if bus is None else bus.get(a.devfn, _EMPTY)

    def _bus_info(self, domain: int, bus: int) -> _BusInfo | None:
        """The alias index of a bus, ``None`` when nobody on it has a devfn alias."""
        key = (domain, bus)
        info = self._buses.get(key)
        if info is None:
            masks = self._masks.get(key)
            if masks is None:
                return None
            info = _BusInfo(self.topology.devices_on_bus(domain, bus), masks)
            self._buses[key] = info
        return info

    def bus_aliases(self, domain: int, bus: int) -> tuple[tuple[PciFunction, int], ...]:
        """R3.4 for any device on ``bus``: ``bus_aliases`` of ``_kernel/alias.py``."""
        return bus_aliases(domain, bus, self.ctx)

    def acs_path_enabled(self, fn: PciFunction) -> bool:
        """``pci_acs_path_enabled(fn, NULL, REQ_ACS_FLAGS)`` (R2.4), cached."""
        verdict = self.ctx.path_cache.get(fn.address)
        if verdict is None:
            verdict = pci_acs_path_enabled(fn, None, REQ_ACS_FLAGS, self.ctx)
        return verdict

    def upstream(self, domain: int, bus: int) -> tuple[Sequence[PciFunction], PciFunction | None]:
        """R4.2 for a walk starting on ``bus``, independent of any group state.

        Returns the bridges the walk moves ``pdev`` through, in order (each
        one's path to the root is not ACS-isolated; a read-only sequence),
        and the bridge it stopped at because its path *is* isolated (``None``
        if it reached the root). The bridges are
        :meth:`Topology.bridges_above` (virtual buses skipped).
        """
        return self._upstream(domain, bus)

    def _upstream(self, domain: int, bus: int) -> tuple[Walk, PciFunction | None]:
        """:meth:`upstream`, the walk as a :class:`Walk` (memoised per bus)."""
        entry = self._up.get((domain, bus)) or self._bus(domain, bus)
        return entry[0], entry[1]

    def _bus(self, domain: int, bus: int) -> tuple[Walk, PciFunction | None, _Plan]:
        """The memo of one bus: its walk (R4.2), where it stops, and the plan of a
        device on it (:meth:`plan`) without devfn aliases of its own."""
        up = self._up
        key = (domain, bus)
        entry = up.get(key)
        if entry is not None:
            return entry
        index = self.topology._index
        br = index.bus_self.get(key) or index.nearest_bridge(domain, bus)
        walked: Walk
        above: tuple[Walk, PciFunction | None, _Plan] | None = None
        if br is None:
            walked, stop = _NO_WALK, None
        elif pci_acs_path_enabled(br, None, REQ_ACS_FLAGS, self.ctx):
            walked, stop = _NO_WALK, br
        else:  # through the nearest bridge, then on as from its own bus
            b = br.address
            above = up.get((b[0], b[1])) or self._bus(b[0], b[1])
            walked, stop = above[0].through(br), above[1]
        # R3.4 for this bus: bus_aliases' memo of it when the fwspec of a device on
        # it (R3.8) made it first; else its step, then the answer of the bus the
        # walk goes on from, kept in that bus's plan, and kept in that memo too
        shared = index.keys.get(key, key)
        alias_cache = self.ctx.alias_cache
        aliases = alias_cache.get(key)
        if aliases is None:
            nxt, aliases = bus_alias_step(domain, bus, self.ctx)
            if nxt is not None:
                if above is None or br is None or nxt != (br.address[0], br.address[1]):
                    above = up.get(nxt) or self._bus(*nxt)
                rest = above[2][0]
                aliases = aliases + rest if aliases else rest
            alias_cache[shared] = aliases
        if aliases:  # step 2 goes on from the bus of the last alias bridge (R4.1)
            plan = self._make_plan(aliases, domain, bus)
        else:
            plan = (aliases, walked.compact(), stop)
        entry = (walked, stop, plan)
        up[shared] = entry
        return entry

    def alias_candidates(self, pdev: PciFunction) -> tuple[PciFunction, ...]:
        """Devices ``t != pdev`` on ``pdev``'s bus with ``pci_devs_are_dma_aliases``.

        In global device order, as the kernel's ``for_each_pci_dev`` loop
        would meet them (R5.1 step 3, R5.5), found through the bus's devices
        instead of a scan of every device, and memoised.
        """
        if not self._masks:  # nobody has a devfn alias: no candidates anywhere
            return ()
        a = pdev.address
        cand = self._cand.get(a)
        if cand is not None:
            return cand
        info = self._bus_info(a.domain, a.bus)
        if info is None:  # nobody on this bus aliases anybody
            return ()
        mask = self.alias_mask(pdev)
        hits = {id(t) for t in info.reverse.get(a.devfn, ())}
        hits.update(id(info.by_devfn[d]) for d in mask if d in info.by_devfn)
        hits.discard(id(pdev))
        cand = (
            tuple(t for t in self.topology.devices_on_bus(a.domain, a.bus) if id(t) in hits)
            if hits
            else ()
        )
        self._cand[a] = cand
        return cand

    def plan(self, fn: PciFunction) -> _Plan:
        """Steps 1-2 of ``pci_device_group(fn)`` as far as the topology decides them.

        The aliases step 1 visits after the device's own id (R4.1), and the
        bridges step 2 walks past from the last of them (R4.2) with the
        isolated bridge it stops at. Only the lookups of existing groups
        remain to be done per call.
        """
        a = fn.address
        key = (a[0], a[1])
        if self._masks:
            masks = self._masks.get(key)
            mask = masks.get(a.devfn) if masks is not None else None
            if mask:  # its own devfn aliases first (R3.3)
                aliases = tuple((fn, a[1] << 8 | d) for d in sorted(mask))
                return self._make_plan(aliases + self.bus_aliases(*key), *key)
        entry = self._up.get(key) or self._bus(*key)  # usually: the same for the whole bus
        return entry[2]

    def _make_plan(
        self, aliases: tuple[tuple[PciFunction, int], ...], domain: int, bus: int
    ) -> _Plan:
        if aliases:
            last = aliases[-1][0].address
            domain, bus = last.domain, last.bus
        walked, stop = self._upstream(domain, bus)
        return (aliases, walked.compact(), stop)

    def passing(self, p: PciFunction) -> tuple[PciFunction, ...]:
        """The devices whose steps 1-2 (R4.1, R4.2) pass through ``p``, in device order.

        ``p`` is one of the aliases step 1 visits after the device's own id
        (R3.3, R3.4), or one of the bridges step 2 walks past (R4.2): the
        devices :meth:`plan` puts ``p`` in. Found in the tree below ``p``
        (see ``_PassingIndex``): in time linear in the topology once, then in
        the functions below ``p``. A walk that starts below a bridge whose path
        is open goes on through it, so no final ``pdev`` (R4.3) lies below
        one whose path is open: the subtrees read for the final ``pdev`` of
        every device do not overlap, and cost time linear in the topology,
        however deep the hierarchy.
        """
        index = self._passing
        if index is None:
            index = self._passing = _PassingIndex(self)
        return index.passing(p, self)

    def walk_top(self, fn: PciFunction) -> tuple[PciFunction, PciFunction | None]:
        """Where steps 1-2 leave ``pdev`` when no group interrupts them (R4.3).

        The topmost aliasing bridge or non-isolated bridge above ``fn`` (or
        ``fn`` itself), and the ACS-isolated bridge the walk stopped below
        (``None``: it reached a root bus).
        """
        aliases, walked, stop = self.plan(fn)
        top = walked[-1] if walked else (aliases[-1][0] if aliases else fn)
        return top, stop

    def function_peers(self, pdev: PciFunction) -> tuple[PciFunction, ...]:
        """The functions step 4 (R5.2) looks at from ``pdev``.

        Its non-isolated slot peers, when ``pdev`` is multifunction and not
        ACS-isolated itself; otherwise none.
        """
        if not self.is_multifunction(pdev) or self.acs_enabled(pdev):
            return ()
        return tuple(t for t in self.slot_peers(pdev) if not self.acs_enabled(t))

    def r5_linked(self, x: PciFunction, y: PciFunction) -> bool:
        """Whether a chain of step-3/4 links (R5.1 aliases, R5.2 functions) joins ``x`` and ``y``.

        The links are taken both ways: ``t`` is linked to ``p`` when either
        one's search (:meth:`alias_candidates`, :meth:`function_peers`) can
        reach the other.
        """
        seen = {x.address}
        todo = [x]
        while todo:
            p = todo.pop()
            nxt = [*self.alias_candidates(p), *self.function_peers(p)]
            if not self.acs_enabled(p):  # the reverse of R5.2, from t
                nxt += [t for t in self.slot_peers(p) if p in self.function_peers(t)]
            for t in nxt:
                if t.address not in seen:
                    seen.add(t.address)
                    todo.append(t)
        return y.address in seen

    def slot_peers(self, pdev: PciFunction) -> tuple[PciFunction, ...]:
        """Other functions of ``pdev``'s slot (``devfn >> 3``, R5.4), device order."""
        return tuple(t for t in self.slot_functions(pdev) if t is not pdev)

    def slot_functions(self, pdev: PciFunction) -> tuple[PciFunction, ...]:
        """Every function of ``pdev``'s slot, ``pdev`` included (R5.4), device order."""
        a = pdev.address
        on_bus = self.topology.devices_on_bus(a.domain, a.bus)
        if len(on_bus) <= _SCAN_BUS:
            slot = a.device
            return tuple(t for t in on_bus if t.address.device == slot)
        key = (a.domain, a.bus)
        slots = self._slots.get(key)
        if slots is None:  # a crowded bus's functions by slot, once per bus
            by_slot: dict[int, list[PciFunction]] = {}
            for t in on_bus:
                by_slot.setdefault(t.address.device, []).append(t)
            slots = {slot: tuple(fns) for slot, fns in by_slot.items()}
            self._slots[self.topology._index.bus_key(a.domain, a.bus)] = slots
        return slots.get(a.device, ())


class _PassingIndex:
    """:meth:`GroupingEnv.passing`: who passes whom, read off the tree below.

    A device's steps 1-2 visit its aliases (:meth:`GroupingEnv.plan`), then
    the bridges above the bus of the last one (or its own bus), up to the
    first whose path is ACS-isolated (R2.4, R4.2). A bridge's path includes
    the path of every bridge above it, so a walk that starts below ``p``
    passes ``p`` exactly when ``p``'s own path is not isolated. The devices
    passing ``p`` are therefore those that name it as an alias, and, when
    ``p``'s path is open, those below it whose walk starts below it: found
    in the tree, with a table of the (few) devices that have aliases.
    """

    __slots__ = ("_aliases", "_memo")

    def __init__(self, env: GroupingEnv) -> None:
        self._aliases: dict[PciAddress, dict[int, PciFunction]] = {}  # by id(device)
        self._memo: dict[PciAddress, tuple[PciFunction, ...]] = {}
        for fn in env.topology.enumeration_order():
            aliases = env.plan(fn)[0]
            for who, _rid in aliases:
                self._aliases.setdefault(who.address, {})[id(fn)] = fn

    def passing(self, p: PciFunction, env: GroupingEnv) -> tuple[PciFunction, ...]:
        # (the env is passed, not kept: the env keeps this index, and a
        # reference back would be a cycle, freed only by the collector)
        found = self._memo.get(p.address)
        if found is not None:
            return found
        topology = env.topology
        out: dict[int, PciFunction] = dict(self._aliases.get(p.address, {}))
        sec = p.secondary_bus
        br = topology.bus_self(p.address.domain, sec) if sec is not None else None
        if br is not None and br.address == p.address and not env.acs_path_enabled(br):
            for x in topology.subtree(br):
                aliases = env.plan(x)[0]
                start = aliases[-1][0] if aliases else x
                if start is x or br in topology.bridges_above(start):
                    out[id(x)] = x
        position = topology.position
        found = tuple(sorted(out.values(), key=lambda f: position(f.address)))
        self._memo[p.address] = found
        return found


class _Record:
    """What a traced call records: every step, and the chain of links to ``via``."""

    __slots__ = ("env", "links", "steps")

    def __init__(self, env: GroupingEnv) -> None:
        self.env = env
        self.steps: list[Step] = []
        self.links: list[Step] = []


def pci_device_group(
    fn: PciFunction,
    groups: Mapping[PciAddress, int],
    env: GroupingEnv,
    *,
    trace: bool = False,
) -> GroupDecision:
    """``pci_device_group(dev)``: find the group ``fn`` must join, or say "new".

    Args:
        fn: the device being probed.
        groups: devices that already hold a group (R4.5: all others are
            invisible), by address.
        env: the topology's :class:`GroupingEnv`.
        trace: record every rule application (:attr:`GroupDecision.steps`),
            the links to the group found and the whole upward walk.

    Returns:
        The decision. ``decision.group is None`` means step 5: the caller
        allocates a new group id (R1.1) and adds only ``fn`` to it (R4.4).
    """
    rec = _Record(env) if trace else None
    group, via, step, pdev = find_group(fn, groups, env, rec)
    via_addr = via.address if via is not None else None
    if rec is None:
        return GroupDecision(fn.address, group, via_addr, step, pdev.address)
    _aliases, walked, stop = env.plan(fn)
    return GroupDecision(
        fn.address,
        group,
        via_addr,
        step,
        pdev.address,
        tuple(rec.steps),
        tuple(rec.links),
        tuple(b.address for b in walked),
        stop.address if stop is not None else None,
    )


def find_group(
    fn: PciFunction,
    groups: Mapping[PciAddress, int],
    env: GroupingEnv,
    rec: _Record | None = None,
) -> tuple[int | None, PciFunction | None, str, PciFunction]:
    """The body of :func:`pci_device_group`: ``(group, via, step, pdev)``.

    For strategies that only need the answer; ``rec`` records the trace.
    """
    # Step 1 (R4.1): the DMA-alias walk; pdev = the last device the callback saw.
    a = fn.address
    g = groups.get(a)
    if rec is not None:
        rec.steps.append(Step("R4.1", "own-id", a, group=g))
    if g is not None:
        return g, fn, "alias", fn
    aliases, walked, stop = env.plan(fn)
    pdev = fn
    for who, rid in aliases:
        pdev = who
        g = groups.get(who.address)
        if rec is not None:
            if who is fn:  # R3.3: a devfn alias on its own bus
                rec.steps.append(Step("R4.1", "devfn-alias", a, group=g, rid=rid))
            else:  # R3.4: the bridge's requester id
                rec.steps.append(Step("R4.1", "bridge-alias", who.address, a, g, rid))
        if g is not None:
            if rec is not None and who is not fn:
                rec.links.append(rec.steps[-1]._replace(rule="R3.4"))
            return g, who, "alias", who
    if rec is not None and pdev is not fn:  # the walk goes on from the alias bridge
        rec.links.append(Step("R3.4", "bridge-alias", pdev.address, a, None, aliases[-1][1]))

    # Step 2 (R4.2): walk up while the bridge's path to the root is not ACS-isolated.
    for br in walked:
        g = groups.get(br.address)
        if rec is not None:
            step = Step(
                "R4.2", "upstream-bridge", br.address, pdev.address, g, path=env.acs_path(br)
            )
            rec.steps.append(step)
            rec.links.append(step)
        pdev = br
        if g is not None:
            return g, br, "upstream", pdev
    if rec is not None and stop is not None:
        rec.steps.append(
            Step("R4.2", "isolated-stop", stop.address, pdev.address, path=env.acs_path(stop))
        )

    # Step 3 (R5.1) and step 4 (R5.2) on the final pdev (R4.3), one bitmap (R5.3).
    devfns: set[int] = set()
    hit = _alias_group(pdev, devfns, groups, env, rec)
    if hit is not None:
        return hit[0], hit[1], "alias-group", pdev
    hit = _function_alias_group(pdev, devfns, groups, env, rec)
    if hit is not None:
        return hit[0], hit[1], "function-alias", pdev
    if rec is not None:
        rec.steps.append(Step("R4.4", "new-group", a))
    return None, None, "new", pdev


def _alias_group(
    pdev: PciFunction,
    devfns: set[int],
    groups: Mapping[PciAddress, int],
    env: GroupingEnv,
    rec: _Record | None,
) -> tuple[int, PciFunction] | None:
    """R5.1 ``get_pci_alias_group``."""
    a = pdev.address
    devfn = a[2] << 3 | a[3]
    if devfn in devfns:  # loop guard (test_and_set_bit)
        return None
    devfns.add(devfn)
    g = groups.get(a)
    if g is not None:
        if rec is not None:
            rec.steps.append(Step("R5.1", "in-group", a, group=g))
        return g, pdev
    if not env._masks:  # nobody has a devfn alias: no candidate (R3.6)
        return None
    for t in env.alias_candidates(pdev):
        if rec is not None:
            link = Step("R5.1", "dma-alias-peer", t.address, pdev.address)
            rec.steps.append(link)
            rec.links.append(link)
        hit = _alias_group(t, devfns, groups, env, rec)
        if hit is None:
            hit = _function_alias_group(t, devfns, groups, env, rec)
        if hit is not None:
            return hit
        if rec is not None:
            rec.links.pop()
    return None


def _function_alias_group(
    pdev: PciFunction,
    devfns: set[int],
    groups: Mapping[PciAddress, int],
    env: GroupingEnv,
    rec: _Record | None,
) -> tuple[int, PciFunction] | None:
    """R5.2 ``get_pci_function_alias_group``."""
    if not env.is_multifunction(pdev) or env.acs_enabled(pdev):
        return None
    if rec is not None:
        rec.steps.append(
            Step("R5.2", "function-alias", pdev.address, acs=rec.env.acs_verdict(pdev))
        )
    for t in env.slot_functions(pdev):
        if t is pdev or env.acs_enabled(t):
            continue
        if rec is not None:
            rec.links.append(
                Step("R5.2", "function-peer", t.address, pdev.address, acs=env.acs_verdict(t))
            )
        hit = _alias_group(t, devfns, groups, env, rec)
        if hit is not None:
            return hit
        if rec is not None:
            rec.links.pop()
    return None
