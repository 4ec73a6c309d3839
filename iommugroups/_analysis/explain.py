"""``explain``: why is a device in its IOMMU group, as data first and text second.

Theory of operation
-------------------
The group is the *canonical* one (:func:`~iommugroups.canonical_groups`): every
device grouped at device add, parents first. The grouping is run once with
``record=True``, so every device's :class:`~iommugroups.Decision` is kept:
the traced :func:`~iommugroups.pci_device_group` call that placed it, against
the groups of the devices added *before* it (groups only grow, R1.3). A
device that joined an existing group did so through a *via* device (the
bridge above it, its alias bridge, a sibling function...): the decision's
*links* lead there; following the via links from a device leads to the
device that created the group (R4.4). These links form a tree per group, and
two members of one group are connected through it. Every sentence is made
from the recorded steps and ACS verdicts (:class:`~iommugroups.AcsVerdict`);
no rule is worked out again here.

The values (:class:`Reason` and its kinds, :class:`Explanation`,
:class:`PairExplanation`) are described in :mod:`iommugroups._analysis.reasons`;
DMA reachability in :mod:`iommugroups._analysis.reach`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from .._errors import InvalidAddress, UnknownDevice
from .._kernel.acs import GROUPING_FACTS, REQ_ACS_FLAGS, AcsVerdict
from .._kernel.canonical import canonical_groups
from .._kernel.groups import Decision, Decisions, Grouping
from .._kernel.model import PciAddress, PcieType, PciFunction, Topology
from .._kernel.pci_device_group import GroupingEnv, Step
from .._kernel.quirks import Quirks
from .._kernel.version import KernelVersion
from .reach import Reach
from .reasons import (
    AcsWords,
    Explanation,
    PairExplanation,
    Reason,
    _bus_name,
    _flags,
    _pcie_unknown,
    _rid,
    _yn,
)

__all__ = ["Explainer", "explain", "explain_pair"]

_LINK_VERBS = {
    "upstream-bridge": "is below non-isolated bridge",
    "bridge-alias": "uses the requester id of bridge",
    "dma-alias-peer": "is a DMA alias of",
    "function-peer": "is a non-isolated sibling function of",
    "stream-sharing": "shares a stream id with",
    "vmd": "does its DMA as the VMD endpoint",
}


@attrs.frozen
class _Join:
    """How one device got its group, in reasons."""

    device: str
    group: int
    how: str
    via: str | None
    hops: tuple[Reason, ...]
    stop: Reason | None
    end: Reason | None
    steps: tuple[Step, ...]


class Explainer:
    """Explanations for one topology, sharing one recorded canonical grouping.

    :func:`explain` and :func:`explain_pair` build one per call; make one
    yourself to explain many devices or pairs of the same topology (the
    grouping and the ACS verdicts are computed once).

    Args:
        topology: the machine.
        quirks: the quirk table (default: the kernel's).
        kernel: the kernel version modelled (default: the newest).
    """

    def __init__(
        self,
        topology: Topology,
        *,
        quirks: Quirks | None = None,
        kernel: KernelVersion | str | None = None,
    ) -> None:
        self.topology = topology
        self.grouping: Grouping = canonical_groups(
            topology, quirks=quirks, record=True, kernel=kernel
        )
        decisions = self.grouping.decisions
        assert isinstance(decisions, Decisions)  # what record=True returns
        self.env: GroupingEnv = decisions.env  # the run's own ACS verdicts and walks
        self.ctx = self.env.ctx
        self._platform = {d.name: d for d in topology.platform_devices}
        self.words = AcsWords(topology)
        self._reach = Reach(self.env, self.words, frozenset(self._platform))
        self._joins: dict[str, _Join | None] = {}
        self._acs_reasons: dict[PciAddress, Reason] = {}

    # --- names ----------------------------------------------------------
    def _name(self, device: str | PciAddress) -> str:
        if isinstance(device, PciAddress):
            addr = device
        else:
            if device in self._platform:
                return device
            try:
                addr = PciAddress.parse(device)
            except InvalidAddress:
                raise UnknownDevice(f"no device {device!r} in the topology") from None
        if addr not in self.topology:
            raise UnknownDevice(f"no PCI function {addr} in the topology")
        return str(addr)

    def _pci(self, name: str) -> PciFunction | None:
        if name in self._platform:
            return None
        return self.topology.get(name)

    # --- ACS ------------------------------------------------------------
    def _verdict(self, fn: PciFunction) -> AcsVerdict:
        """The recorded ``pci_acs_enabled(fn, REQ_ACS_FLAGS)`` verdict (R2.3)."""
        return self.env.acs_verdict(fn)

    def _what(self, fn: PciFunction) -> str:
        return self.words.what(fn)

    def _why(self, fn: PciFunction, v: AcsVerdict) -> str:
        return self.words.why(fn, v)

    def acs_reason(self, fn: PciFunction) -> Reason:
        """The ``acs`` reason of one device: its R2.3 verdict, and R2.4 for a bridge."""
        cached = self._acs_reasons.get(fn.address)
        if cached is not None:
            return cached
        v = self._verdict(fn)
        what, addr = self._what(fn), str(fn.address)
        if fn.is_bridge:
            verdict_words = "isolated" if v.enabled else "it does not isolate its children"
        else:
            verdict_words = "isolated" if v.enabled else "not isolated from its peers"
        if v.decided_by == "registers":
            assert fn.acs is not None
            text = f"{what} {addr}: ACS cap {_flags(fn.acs.cap)}, ctrl {_flags(fn.acs.ctrl)} → "
            text += "" if v.enabled else f"ctrl lacks {_flags(v.missing)} → "
            text += f"{verdict_words} (R2.2)"
            if v.unimplemented:
                text += f"; {_flags(v.unimplemented)} not implemented, so counted as hard-wired on"
            rule = "R2.2"
        elif v.decided_by == "quirk":
            word = "isolated" if v.enabled else "not isolated"
            text = f"{what} {addr} [{fn.vendor:04x}:{fn.device:04x}]: {v.quirk} says {word} (R2.6)"
            rule = "R2.6"
        elif v.decided_by == "not-pcie" and not _pcie_unknown(fn):
            text = f"{what} {addr}: conventional PCI has no ACS → {verdict_words} (R2.3)"
            rule = "R2.3"
        elif v.decided_by == "bridge-type":
            text = f"{what} {addr}: such devices are never ACS-isolated → {verdict_words} (R2.3)"
            rule = "R2.3"
        else:
            text = f"{what} {addr} {self._why(fn, v)} → {verdict_words} (R2.3)"
            rule = "R2.3"
        facts: dict[str, str] = {
            "device": addr,
            "type": self.words.type_fact(fn),
            "multifunction": _yn(self.topology.is_multifunction(fn)),
            "acs_cap": self.words.acs_word(fn, "cap"),
            "acs_ctrl": self.words.acs_word(fn, "ctrl"),
            "required": _flags(REQ_ACS_FLAGS),
            "missing": _flags(v.missing),
            "unimplemented": _flags(v.unimplemented),
            "quirk": v.quirk or "",
            "decided_by": v.decided_by,
            "enabled": _yn(v.enabled),
            "certain": _yn(v.certain),
            "unknown": ",".join(sorted(fn.unknown & GROUPING_FACTS)),
        }
        if fn.is_bridge:
            isolated, blocker, certain = self.env.acs_path(fn)
            facts["path_isolated"] = _yn(isolated)
            facts["path_blocker"] = str(blocker.address) if blocker is not None else ""
            facts["path_certain"] = _yn(certain)
            if isolated:
                text += "; its whole path to the root is ACS-isolated (R2.4)"
            elif blocker is not None and blocker is not fn:
                text += (
                    f"; but {self._what(blocker)} {blocker.address} above it is not, "
                    "so its path to the root is not isolated (R2.4)"
                )
        if not v.certain:
            text += " [unknown: a readable capability could change this verdict]"
        elif fn.unknown & GROUPING_FACTS:
            text += " [a fact could not be read, but it cannot change this verdict]"
        reason = Reason(rule, addr, text, facts, "acs")
        self._acs_reasons[fn.address] = reason
        return reason

    def _path_acs(self, fn: PciFunction) -> list[Reason]:
        """ACS reasons of ``fn`` and of every bridge above it."""
        return [self.acs_reason(d) for d in (fn, *self.topology.bridges_above(fn))]

    def _unknown_reasons(self, devices: Iterable[PciFunction]) -> list[Reason]:
        """An ``unknown`` reason for each device with an unreadable grouping fact."""
        out: list[Reason] = []
        seen: set[PciAddress] = set()
        for fn in devices:
            if fn.address in seen:
                continue
            seen.add(fn.address)
            facts = fn.unknown & GROUPING_FACTS
            if not facts:
                continue
            v = self._verdict(fn)
            alias_changes = fn.is_bridge and _pcie_unknown(fn)  # R3.4 depends on the type
            matters = not v.certain or alias_changes
            what = []
            if "config" in facts:
                what.append("its configuration space")
            if "pcie" in facts:
                what.append("its PCIe capability")
            if "acs" in facts:
                what.append("its ACS capability")
            text = (
                f"{fn.address}: {' and '.join(what)} could not be read; the model takes it as "
                "absent (the least isolating reading)"
            )
            if matters:
                text += ", and a readable one could change its ACS verdict or DMA aliases"
                text += " and so the grouping: this part of the explanation is not certain"
            else:
                text += f", which cannot change anything here: it {self._why(fn, v)}"
            out.append(
                Reason(
                    "R2.3",
                    str(fn.address),
                    text,
                    {
                        "device": str(fn.address),
                        "facts": ",".join(sorted(facts)),
                        "assumed": "absent",
                        "matters": _yn(matters),
                    },
                    "unknown",
                )
            )
        return out

    # --- links ----------------------------------------------------------
    def _upstream_hop(self, x: PciFunction, br: PciFunction) -> Reason:
        isolated, blocker, _certain = self.env.acs_path(br)
        assert not isolated
        assert blocker is not None
        bv = self._verdict(blocker)
        what = self._what(br)
        if blocker is br:
            text = (
                f"{x.address} is below {what} {br.address}, which {self._why(br, bv)} "
                "→ it does not isolate its children (R4.2)"
            )
        else:
            text = (
                f"{x.address} is below {what} {br.address}; that port is ACS-isolated itself, "
                f"but {self._what(blocker)} {blocker.address} above it {self._why(blocker, bv)}, "
                "so its path to the root is not isolated (R2.4, R4.2)"
            )
        return Reason(
            "R4.2",
            str(x.address),
            text,
            {
                "from": str(x.address),
                "to": str(br.address),
                "bridge_type": self.words.type_fact(br),
                "blocker": str(blocker.address),
                "blocker_acs": self._why(blocker, bv),
            },
            "upstream-bridge",
        )

    def _alias_hop(self, x: PciFunction, br: PciFunction, rid: int) -> Reason:
        t = br.pcie_type
        if t == PcieType.PCI_BRIDGE:
            how = "a PCIe-to-PCI bridge: devices behind it use its requester id"
        elif t == PcieType.PCIE_BRIDGE:
            how = "a PCI-to-PCIe bridge: devices behind it use its own requester id"
        elif rid == br.address.rid:
            how = f"a {self._what(br)}: devices behind it use its own requester id"
        else:
            how = (
                f"a {self._what(br)} flagged PCIE_BRIDGE_ALIAS: devices behind it use "
                "the requester id"
            )
        text = (
            f"{x.address} is behind {br.address}, {how} {_rid(rid)} (R3.4), "
            "so it joins that bridge's group (R4.1)"
        )
        return Reason(
            "R3.4",
            str(x.address),
            text,
            {
                "from": str(x.address),
                "to": str(br.address),
                "bridge_type": self.words.type_fact(br),
                "alias_rid": _rid(rid),
            },
            "bridge-alias",
        )

    def _peer_hop(self, kind: str, x: PciFunction, t: PciFunction) -> Reason:
        a = x.address
        if kind == "dma-alias-peer":
            mx, mt = self.env.alias_mask(x), self.env.alias_mask(t)
            if t.address.devfn in mx:
                how = f"devfn {t.address.device:02x}.{t.address.function} is in {a}'s alias mask"
            else:
                how = f"devfn {a.device:02x}.{a.function} is in {t.address}'s alias mask"
            text = (
                f"{a} and {t.address} are DMA aliases of each other on bus "
                f"{_bus_name(a.domain, a.bus)}: {how} (R3.6, R5.1)"
            )
            facts = {
                "from": str(a),
                "to": str(t.address),
                "from_aliases": " ".join(f"{d:02x}" for d in sorted(mx)),
                "to_aliases": " ".join(f"{d:02x}" for d in sorted(mt)),
            }
            return Reason("R5.1", str(a), text, facts, kind)
        vx, vt = self._verdict(x), self._verdict(t)
        slot = f"{_bus_name(a.domain, a.bus)}:{a.device:02x}"
        text = (
            f"{a} and {t.address} are functions of one multifunction device ({slot}) and "
            f"neither is ACS-isolated: {a} {self._why(x, vx)}, {t.address} {self._why(t, vt)} "
            "(R5.2)"
        )
        facts = {
            "from": str(a),
            "to": str(t.address),
            "slot": slot,
            "from_acs": self._why(x, vx),
            "to_acs": self._why(t, vt),
        }
        return Reason("R5.2", str(a), text, facts, kind)

    def _walk_end(self, top: PciFunction, stop: PciFunction | None) -> Reason:
        """Where the upward walk (R4.2) that reached ``top`` ended."""
        a = top.address
        if stop is not None:
            v = self._verdict(stop)
            text = (
                f"the walk up from {a} stops below {self._what(stop)} {stop.address}: its path "
                f"to the root is ACS-isolated (it {self._why(stop, v)}) (R2.4, R4.2)"
            )
            facts = {"device": str(a), "bridge": str(stop.address)}
            return Reason("R4.2", str(a), text, facts, "isolated-stop")
        text = (
            f"the walk up reaches {a} on root bus {_bus_name(a.domain, a.bus)} without meeting "
            "an ACS-isolated bridge (R4.2)"
        )
        facts = {"device": str(a), "top": str(a), "bus": _bus_name(a.domain, a.bus)}
        return Reason("R4.2", str(a), text, facts, "root-bus")

    # --- the recorded decisions -------------------------------------------
    def _join(self, device: str | PciAddress) -> _Join | None:
        """How ``device`` came to its group, in reasons (``None``: it has none)."""
        name = self._name(device)
        if name in self._joins:
            return self._joins[name]
        d = self.grouping.decisions.get(name)
        join = None if d is None or d.group is None else self._decision_join(d, d.group)
        self._joins[name] = join
        return join

    def _decision_join(self, d: Decision, gid: int) -> _Join:
        name = d.device
        if d.how == "stream-sharing":
            assert d.via is not None
            text = (
                f"{name} and {d.via} share stream id {d.streams[0]:#x} on SMMUv2 {d.iommu}: "
                "devices whose stream-match entries are shared share a group (R1.7)"
            )
            facts = {
                "from": name,
                "to": d.via,
                "iommu": d.iommu or "",
                "streams": " ".join(f"{s:#x}" for s in d.streams),
            }
            hop = Reason("R1.7", name, text, facts, "stream-sharing")
            return _Join(name, gid, "stream-sharing", d.via, (hop,), None, None, ())
        if d.how == "vmd":  # R3.1: grouped from the VMD endpoint, its real DMA device
            endpoint = d.pdev or ""
            domain = name.split(":", 1)[0]
            joined = (
                f"joins its group {gid}"
                if d.via is not None
                else f"gets a new group {gid} (the endpoint has none)"
            )
            text = (
                f"{name} is in VMD domain {domain}: it does its DMA as the VMD endpoint "
                f"{endpoint} (pci_real_dma_dev), so pci_device_group starts from the endpoint and "
                f"{name} {joined} (R3.1, R11.1)"
            )
            facts = {"device": name, "endpoint": endpoint, "domain": domain}
            hop = Reason("R3.1", name, text, facts, "vmd")
            if d.via is not None:
                return _Join(name, gid, "vmd", d.via, (hop,), None, None, ())
            return _Join(name, gid, "vmd", None, (), None, hop, ())
        if d.pci is None:  # a platform device: generic_device_group (R1.5)
            text = (
                f"{name} is a {self._platform[name].bus} device: generic_device_group gives "
                f"it a new group {gid} of its own (R1.5)"
            )
            end = Reason("R1.5", name, text, {"device": name, "group": str(gid)}, "generic")
            return _Join(name, gid, "generic", None, (), None, end, ())
        dec = d.pci
        hops = tuple(self._hop(link) for link in dec.links)
        if d.how in ("alias", "upstream"):
            return _Join(name, gid, d.how, d.via, hops, None, None, dec.steps)
        top = self.topology.get(dec.pdev)
        stop = self.topology.get(dec.stop) if dec.stop is not None else None
        stop_reason = self._walk_end(top, stop)
        if d.how != "new":
            return _Join(name, gid, d.how, d.via, hops, stop_reason, None, dec.steps)
        passed = [str(link.device) for link in dec.links if link.kind == "upstream-bridge"]
        where = (
            f"the walk stopped below ACS-isolated {stop.address}"
            if stop is not None
            else f"the walk reached the root bus at {top.address}"
        )
        if passed:
            where += f", past {', '.join(passed)} (no group yet)"
        text = (
            f"{name} found no existing group ({where}; no DMA alias or non-isolated sibling "
            f"function of {top.address} had one), so it got a new group {gid} (R4.4)"
        )
        facts = {
            "device": name,
            "group": str(gid),
            "top": str(top.address),
            "stop": str(stop.address) if stop is not None else "root-bus",
            "walked": " ".join(passed),
        }
        end = Reason("R4.4", name, text, facts, "new-group")
        return _Join(name, gid, "new", None, (), stop_reason, end, dec.steps)

    def _hop(self, link: Step) -> Reason:
        """A recorded link (:attr:`GroupDecision.links`) in words."""
        assert link.origin is not None
        x, t = self.topology.get(link.origin), self.topology.get(link.device)
        if link.kind == "bridge-alias":
            assert link.rid is not None
            return self._alias_hop(x, t, link.rid)
        if link.kind == "upstream-bridge":
            return self._upstream_hop(x, t)
        return self._peer_hop(link.kind, x, t)

    def _ancestry(self, name: str) -> list[_Join]:
        """The joins from ``name`` to its group's creator."""
        out: list[_Join] = []
        j = self._join(name)
        while j is not None:
            out.append(j)
            j = self._join(j.via) if j.via is not None else None
        return out

    # --- explain --------------------------------------------------------
    def explain(self, device: str | PciAddress) -> Explanation:
        """Why ``device`` is in its canonical group (see :func:`explain`)."""
        name = self._name(device)
        fn = self._pci(name)
        acs = self._path_acs(fn) if fn is not None else []
        involved: list[PciFunction] = (
            [fn, *self.topology.bridges_above(fn)] if fn is not None else []
        )
        j = self._join(name)
        if j is None:
            why = self.grouping.ungrouped.get(name, "no group")
            m = re.search(r"R\d+\.\d+", why)
            decided = self.grouping.decisions.get(name)
            rule = decided.rule if decided is not None and decided.how == "ungrouped" else None
            rule = rule or (m.group(0) if m else "R3.8")
            reason = Reason(
                rule,
                name,
                f"{name} gets no IOMMU group: {why}" + ("" if rule in why else f" ({rule})"),
                {"device": name, "why": why},
                "ungrouped",
            )
            return Explanation(
                name, None, (), "ungrouped", None, (reason,), acs, self._unknown_reasons(involved)
            )
        chain: list[Reason] = []
        for step in self._ancestry(name):
            if step.stop is not None:
                chain.append(step.stop)
            chain.extend(step.hops)
            if step.end is not None:
                chain.append(step.end)
        for r in chain:
            for key in ("from", "to", "device"):
                other = r.facts.get(key)
                if other is not None and other not in self._platform and other in self.topology:
                    involved.append(self.topology.get(other))
        return Explanation(
            name,
            j.group,
            self.grouping.groups.get(j.group, ()),
            j.how,
            j.via,
            chain,
            acs,
            self._unknown_reasons(involved),
            j.steps,
        )

    def explain_pair(self, a: str | PciAddress, b: str | PciAddress) -> PairExplanation:
        """Why ``a`` and ``b`` share a group or not (see :func:`explain_pair`)."""
        na, nb = self._name(a), self._name(b)
        if na == nb:
            raise ValueError(f"explain_pair needs two different devices, got {na} twice")
        ja, jb = self._join(na), self._join(nb)
        ga = ja.group if ja is not None else None
        gb = jb.group if jb is not None else None
        same = ga is not None and ga == gb
        cause: Reason | None = None
        chain: list[Reason] = []
        separation: list[Reason] = []
        if same:
            chain, cause = self._connect(na, nb)
        else:
            separation = self._separate(na, nb, ja is not None, jb is not None)
        ra, rea = self._reach.reach(na, nb, ja is not None)
        rb, reb = self._reach.reach(nb, na, jb is not None)
        fa, fb = self._pci(na), self._pci(nb)
        acs: list[Reason] = []
        involved: list[PciFunction] = []
        for fn in (fa, fb):
            if fn is None:
                continue
            for r in self._path_acs(fn):
                if r not in acs:
                    acs.append(r)
            involved.extend([fn, *self.topology.bridges_above(fn)])
        for r in (*chain, *separation):
            for key in ("from", "to", "bridge", "top_a", "top_b"):
                other = r.facts.get(key)
                if other and other not in self._platform and other in self.topology:
                    involved.append(self.topology.get(other))
        return PairExplanation(
            na,
            nb,
            ga,
            gb,
            same,
            cause,
            chain,
            separation,
            ra,
            rea,
            rb,
            reb,
            acs,
            self._unknown_reasons(involved),
        )

    def _connect(self, na: str, nb: str) -> tuple[list[Reason], Reason]:
        up_a, up_b = self._ancestry(na), self._ancestry(nb)
        pos = {j.device: i for i, j in enumerate(up_a)}
        k = next(i for i, j in enumerate(up_b) if j.device in pos)
        meet = up_b[k].device
        side_a = [h for j in up_a[: pos[meet]] for h in j.hops]
        side_b = [h for j in up_b[:k] for h in j.hops]
        chain = side_a + side_b[::-1]
        return chain, self._cause(na, nb, meet, chain, side_a, side_b)

    def _cause(
        self,
        na: str,
        nb: str,
        meet: str,
        chain: list[Reason],
        side_a: list[Reason],
        side_b: list[Reason],
    ) -> Reason:
        kinds = {h.kind for h in chain}
        if kinds <= {"upstream-bridge", "bridge-alias"}:
            br = self.topology.get(meet)
            via_alias = any(h.kind == "bridge-alias" for h in chain)
            rule = "R3.4" if via_alias else "R4.2"
            v = self._verdict(br)
            isolated, blocker, _ = self.env.acs_path(br)
            if via_alias:
                how = "their DMA carries its requester id"
            elif blocker is br:
                how = f"it {self._why(br, v)}"
            else:
                assert blocker is not None
                assert not isolated
                how = f"its path to the root is not ACS-isolated ({blocker.address})"
            if meet in (na, nb):
                below = nb if meet == na else na
                text = (
                    f"{meet} is the upstream bridge of {below} and does not isolate it: {how} "
                    f"({rule})"
                )
                facts = {"bridge": meet, "device": below}
                return Reason(rule, meet, text, facts, "upstream-bridge")
            text = (
                f"{na} and {nb} are both below {self._what(br)} {meet}, which does not isolate "
                f"them: {how} ({rule})"
            )
            return Reason(rule, meet, text, {"bridge": meet}, "common-bridge")
        if kinds == {"function-peer"}:
            first = chain[0]
            text = (
                f"{na} and {nb} are functions of one multifunction device "
                f"({first.facts['slot']}) without ACS isolation (R5.2)"
            )
            return Reason("R5.2", na, text, {"slot": first.facts["slot"]}, "function-peer")
        if kinds == {"dma-alias-peer"}:
            text = f"{na} and {nb} are DMA aliases of each other (R3.6, R5.1)"
            return Reason("R3.6", na, text, {}, "dma-alias")
        if kinds == {"stream-sharing"}:
            text = f"{na} and {nb} share SMMUv2 stream ids (R1.7)"
            return Reason("R1.7", na, text, {}, "stream-sharing")
        parts = [f"{h.facts['from']} {_LINK_VERBS[h.kind]} {h.facts['to']}" for h in chain]
        rules = sorted({h.rule for h in chain}, key=lambda r: tuple(map(int, r[1:].split("."))))
        text = f"{na} and {nb} are linked in {len(chain)} steps: " + "; ".join(parts)
        text += f" ({', '.join(rules)})"
        return Reason(", ".join(rules), na, text, {"links": str(len(chain))}, "chain")

    def _boundary(self, fn: PciFunction) -> Reason:
        top, stop = self.env.walk_top(fn)
        a = str(fn.address)
        if stop is not None:
            v = self._verdict(stop)
            text = (
                f"{a}: the walk up stops below {self._what(stop)} {stop.address}, whose whole "
                f"path to the root is ACS-isolated (it {self._why(stop, v)}) (R2.4, R4.2)"
            )
            facts = {"device": a, "bridge": str(stop.address), "top": str(top.address)}
            return Reason("R4.2", a, text, facts, "isolated-by")
        t = top.address
        text = (
            f"{a}: the walk up reaches {t} on root bus {_bus_name(t.domain, t.bus)} without "
            "meeting an ACS-isolated bridge (R4.2)"
        )
        facts = {"device": a, "top": str(t), "bus": _bus_name(t.domain, t.bus)}
        return Reason("R4.2", a, text, facts, "root-bus-top")

    def _separate(self, na: str, nb: str, has_a: bool, has_b: bool) -> list[Reason]:
        out: list[Reason] = []
        for name, has in ((na, has_a), (nb, has_b)):
            if name in self._platform and has:
                text = (
                    f"{name} is a platform device: generic_device_group gives it a group of "
                    "its own (R1.5)"
                )
                out.append(Reason("R1.5", name, text, {"device": name}, "platform"))
            elif not has:
                why = self.grouping.ungrouped.get(name, "no group")
                text = f"{name} has no IOMMU group: {why}"
                out.append(Reason("R3.8", name, text, {"device": name, "why": why}, "no-group"))
        if out:
            return out
        fa, fb = self.topology.get(na), self.topology.get(nb)
        out = [self._boundary(fa), self._boundary(fb)]
        ta, sa = self.env.walk_top(fa)
        tb, sb = self.env.walk_top(fb)
        above_a = {d.address for d in self.topology.bridges_above(fa)}
        above_b = {d.address for d in self.topology.bridges_above(fb)}
        sa_addr = sa.address if sa is not None else None
        sb_addr = sb.address if sb is not None else None
        if sa_addr != sb_addr:
            for s, below, other, above_other in ((sa, fa, fb, above_b), (sb, fb, fa, above_a)):
                if s is None or s.address in above_other:
                    continue
                v = self._verdict(s)
                if s.address == other.address:
                    tail = f"{other.address} is that bridge itself"
                else:
                    tail = f"{other.address} is not below it"
                text = (
                    f"{self._what(s)} {s.address} is ACS-isolated with its whole path to the "
                    f"root (it {self._why(s, v)}): {below.address} is below it and {tail}, so "
                    f"{below.address}'s walk stops there (R2.4, R4.2)"
                )
                facts = {
                    "bridge": str(s.address),
                    "below": str(below.address),
                    "other": str(other.address),
                }
                out.append(Reason("R4.2", str(s.address), text, facts, "isolated-bridge"))
                return out
        a, b = ta.address, tb.address
        if (a.domain, a.bus) != (b.domain, b.bus):
            text = (
                f"{na} and {nb} are below different root buses ({_bus_name(a.domain, a.bus)} "
                f"at {a}, {_bus_name(b.domain, b.bus)} at {b}): pci_device_group never links "
                "devices across host bridges (R4.2, R5.1, R5.2)"
            )
            facts = {"top_a": str(a), "top_b": str(b)}
            out.append(Reason("R4.2", na, text, facts, "different-root-bus"))
            return out
        out.append(self._separate_tops(na, nb, ta, tb, sa))
        return out

    def _separate_tops(
        self, na: str, nb: str, ta: PciFunction, tb: PciFunction, stop: PciFunction | None
    ) -> Reason:
        a, b = ta.address, tb.address
        same_slot = a.device == b.device
        aliases = a.devfn in self.env.alias_mask(tb) or b.devfn in self.env.alias_mask(ta)
        peers = tb in self.env.function_peers(ta) or ta in self.env.function_peers(tb)
        linked = aliases or peers or self.env.r5_linked(ta, tb)
        where = (
            f"directly below ACS-isolated {stop.address}"
            if stop is not None
            else f"on root bus {_bus_name(a.domain, a.bus)}"
        )
        if ta is tb:
            why = "they are the same device (an inconsistency: the groups should be one)"
        elif not same_slot:
            why = "they are in different slots and no DMA alias links them (R3.6)"
        else:
            parts = []
            for t in (ta, tb):
                v = self._verdict(t)
                if v.enabled:
                    parts.append(f"{t.address} {self._why(t, v)} → ACS-isolated")
                elif not self.topology.is_multifunction(t):
                    parts.append(f"{t.address} is not multifunction")
            why = "; ".join(parts) + ", so R5.2 does not join them"
        if linked:
            why += " [yet R3.6/R5.2 links join them: the groups differ because of add order]"
        text = (
            f"the walks of {na} and {nb} end at different devices {a} and {b}, {where}: {why} "
            "(R4.3, R5.1, R5.2)"
        )
        facts = {
            "top_a": str(a),
            "top_b": str(b),
            "bus": _bus_name(a.domain, a.bus),
            "bridge": str(stop.address) if stop is not None else "",
            "same_slot": _yn(same_slot),
            "dma_aliases": _yn(aliases),
            "function_peers": _yn(peers),
            "linked": _yn(linked),
        }
        return Reason("R5.2", na, text, facts, "separate-tops")


# ---------------------------------------------------------------- functions
def explain(
    topology: Topology,
    device: str | PciAddress,
    *,
    quirks: Quirks | None = None,
    kernel: KernelVersion | str | None = None,
) -> Explanation:
    """Why ``device`` is in its canonical IOMMU group, as data.

    The canonical grouping is replayed in its own order up to the device;
    the device's ``pci_device_group`` decision, and those of the devices
    whose groups it joined, give the chain of rule applications; the ACS
    verdict of every bridge on its path says why each does or does not
    isolate it.

    Args:
        topology: the machine.
        device: a PCI address (``dddd:bb:dd.f`` or ``bb:dd.f``) or a platform
            device's name.
        quirks: the quirk table (default: the kernel's).
        kernel: the kernel version modelled (default: the newest).

    Returns:
        The :class:`Explanation`.

    Raises:
        UnknownDevice: no such device.

    >>> from iommugroups import examples
    >>> x = explain(examples.desktop(), "02:00.0")
    >>> x.members, [r.kind for r in x.chain]
    (('0000:00:02.0', '0000:02:00.0'), ['upstream-bridge', 'root-bus', 'new-group'])
    >>> print(x.chain[0].text)
    0000:02:00.0 is below root port 0000:00:02.0, which has no ACS capability → it does not isolate its children (R4.2)
    >>> x.chain[0].facts["to"], x.to_json()["schema"]
    ('0000:00:02.0', 'iommugroups.explain/1')
    """  # noqa: E501
    return Explainer(topology, quirks=quirks, kernel=kernel).explain(device)


def explain_pair(
    topology: Topology,
    a: str | PciAddress,
    b: str | PciAddress,
    *,
    quirks: Quirks | None = None,
    kernel: KernelVersion | str | None = None,
) -> PairExplanation:
    """Why ``a`` and ``b`` share a canonical group or not, and whether DMA connects them.

    Args:
        topology: the machine.
        a, b: two different devices (PCI addresses or platform names).
        quirks: the quirk table (default: the kernel's).
        kernel: the kernel version modelled (default: the newest).

    Returns:
        The :class:`PairExplanation`: for one group, the links joining them
        and their shared cause; for two, what isolates them; both ways, the
        DMA reachability by the rule of the module documentation.

    Raises:
        UnknownDevice: no such device.
        ValueError: ``a`` and ``b`` are the same device.

    >>> from iommugroups import examples
    >>> p = explain_pair(examples.desktop(), "05:01.0", "05:02.0")
    >>> p.same_group, p.cause.kind, p.cause.facts["bridge"], p.a_can_reach_b
    (True, 'common-bridge', '0000:00:1e.0', True)
    >>> q = explain_pair(examples.desktop(), "08:00.0", "09:00.0")  # per-DSP groups (§6)
    >>> q.same_group, q.separation[-1].kind, q.a_can_reach_b
    (False, 'separate-tops', True)
    """
    return Explainer(topology, quirks=quirks, kernel=kernel).explain_pair(a, b)
