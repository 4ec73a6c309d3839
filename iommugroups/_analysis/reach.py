"""DMA reachability: can a request from one device reach another without the IOMMU?

DMA reachability
----------------
:attr:`PairExplanation.a_can_reach_b` answers: can a request from ``a``
addressed to ``b`` reach ``b`` *without* passing the IOMMU? (``True``: ACS
does not force it upstream, so the IOMMU cannot isolate them; ``False``: it
is redirected upstream to the root complex and translated there; ``None``:
unknown.) The rule, from ACS semantics (ACS is an egress control on the
requester's side, spec §2 and §6 "S-reachable-set"):

1. Find the lowest bus both devices are on or below (SR-IOV virtual buses
   count as their parent bus) and, on it, ``x_a``/``x_b``: ``a``/``b`` or the
   bridge above them there. The request turns towards ``b`` there, entering
   through ``x_a``: only ``x_a`` can redirect it. Lower bridges only forward
   it upstream (its address is not below them).
2. One device is a bridge on the other's path: ``None`` (a request to or from
   a bridge on one's own path is not a peer-to-peer request ACS governs;
   not modelled).
3. The bus is a conventional PCI bus (behind a conventional or PCIe-to-PCI
   bridge): ``True``. A shared bus: every device sees every transaction, and
   conventional PCI has no ACS (R2.3 step 2).
4. ``x_a`` and ``x_b`` are functions of one device (the same slot, or any two
   functions on the link below a root/downstream port: one device, ARI and
   SR-IOV VFs included, unlike the kernel's slot test of R5.4): ``False``
   iff ``x_a`` *redirects* peer
   requests, else ``True``. Redirects means the kernel's own
   ``pci_acs_enabled(x_a, RR)`` (R2.2/R2.3: ``RR`` set in the control word,
   or not implemented and so hard-wired; a quirk's word is final, R2.6),
   except that its "single function: no peer" shortcut (R2.3 step 4) is not
   taken, since a peer function exists (a PF and its VFs are not marked
   multifunction): then ``x_a``'s ACS registers decide, as for a
   multifunction device (no capability: it does not redirect).
5. The bus is a switch's internal bus: ``False`` iff the downstream port
   ``x_a`` redirects (as in 4); else ``True``: the switch routes the request
   to ``x_b`` directly. (Legacy grouping puts two such ports' subtrees in
   different groups, §6: the answer can be ``True`` for a pair in different
   groups; that is the known hole, not a bug here.)
6. The bus is a root bus, or there is none (different host bridges):
   ``False`` if ``x_a``'s registers or a quirk say it redirects; otherwise
   ``None``: whether a root complex routes peer-to-peer between its ports
   without translating it is implementation-specific (the PCIe
   specification leaves it open), and the kernel's "a single-function
   integrated device has no peer" (R2.3 step 4) is an assumption, not a
   register.
7. Whenever the deciding fact is unknown (``x_a``'s ACS or PCIe capability,
   or the PCIe type of the bridge that makes the bus), ``None``. Non-PCI
   devices, and devices no IOMMU translates: ``None``.

Egress Control (EC) and Upstream Forwarding are not considered: EC can only
block more, so a ``True`` may be ``False`` on hardware that programs EC.

"""

from __future__ import annotations

from typing import Protocol

from .._kernel.acs import REQ_ACS_FLAGS, AcsVerdict, pci_acs_flags_enabled, pci_acs_verdict
from .._kernel.model import AcsFlags, PcieType, PciFunction, Topology
from .._kernel.pci_device_group import GroupingEnv
from .reasons import AcsWords, Reason, _bus_name, _flags, _pcie_unknown

__all__ = ["Reach"]

_LINK_TYPES = (PcieType.ROOT_PORT, PcieType.DOWNSTREAM, PcieType.PCIE_BRIDGE)


class _ResultFn(Protocol):
    def __call__(
        self, possible: bool | None, rule: str, case: str, text: str, **more: str
    ) -> tuple[bool | None, Reason]: ...


class Reach:
    """The reachability rule of this module for one topology.

    Args:
        env: the topology's grouping state (its ACS verdicts are read).
        words: how verdicts are put in words.
        platform: names of the topology's platform devices.
    """

    def __init__(self, env: GroupingEnv, words: AcsWords, platform: frozenset[str]) -> None:
        self.env = env
        self.topology: Topology = env.topology
        self.words = words
        self._platform = platform

    def _pci(self, name: str) -> PciFunction | None:
        if name in self._platform:
            return None
        return self.topology.get(name)

    def _verdict(self, fn: PciFunction, flags: AcsFlags = REQ_ACS_FLAGS) -> AcsVerdict:
        if flags == REQ_ACS_FLAGS:
            return self.env.acs_verdict(fn)
        return pci_acs_verdict(fn, flags, self.env.ctx)

    def _ladder(self, fn: PciFunction) -> list[tuple[tuple[int, int], PciFunction]]:
        """(bus, the device on it) from ``fn`` up: ``fn`` or the bridge above it there.

        A virtual (SR-IOV) bus counts as its parent bus: the VFs are functions
        of their PF's device, on its link.
        """
        topo = self.topology
        dom = fn.address.domain
        return [
            ((dom, topo.link_bus(dom, x.address.bus)), x) for x in (fn, *topo.bridges_above(fn))
        ]

    def reach(self, src: str, dst: str, translated: bool) -> tuple[bool | None, Reason]:
        """Whether a request from ``src`` can reach ``dst`` without the IOMMU, and why."""

        def result(
            possible: bool | None, rule: str, case: str, text: str, **more: str
        ) -> tuple[bool | None, Reason]:
            word = {True: "yes", False: "no", None: "unknown"}[possible]
            facts = {"from": src, "to": dst, "possible": word, "case": case, **more}
            return possible, Reason(rule, src, text, facts, "reach")

        a, b = self._pci(src), self._pci(dst)
        if a is None or b is None:
            return result(
                None,
                "R1.5",
                "not-modelled",
                f"{src} → {dst}: not modelled (only PCI peer-to-peer is)",
            )
        if not translated:
            return result(
                None,
                "R3.8",
                "not-translated",
                f"{src} → {dst}: no IOMMU translates {src}, so there is nothing to bypass; "
                "whether the request reaches it depends on routing the model does not have",
            )
        la, lb = self._ladder(a), self._ladder(b)
        on_b = dict(lb)
        meet = next(((bus, x, on_b[bus]) for bus, x in la if bus in on_b), None)
        if meet is not None and meet[1] is meet[2]:
            return result(
                None,
                "R2.3",
                "own-path",
                f"{src} → {dst}: one is a bridge on the other's path; a request between a "
                "device and a bridge above it is not a peer-to-peer request ACS governs "
                "(not modelled)",
            )
        if meet is None:
            xa = la[-1][1]
            return self._root_complex(src, dst, xa, result, different=True)
        (dom, bus), xa, xb = meet
        point = _bus_name(dom, bus)
        topo = self.topology
        br = topo.bus_self(dom, bus)
        if br is not None and _pcie_unknown(br):
            return result(
                None,
                "R2.3",
                "unknown",
                f"{src} → {dst}: they meet on bus {point}, made by {br.address}, whose PCIe "
                "capability could not be read: conventional or PCIe, unknown",
                point=point,
                ingress=str(xa.address),
            )
        if br is not None and (br.pcie_type is None or br.pcie_type == PcieType.PCI_BRIDGE):
            return result(
                True,
                "R2.3",
                "conventional-bus",
                f"{src} → {dst}: possible: they meet on conventional PCI bus {point} behind "
                f"{self.words.what(br)} {br.address}, a shared bus where every device sees every "
                "transaction and there is no ACS (R2.3)",
                point=point,
                ingress=str(xa.address),
            )
        on_link = br is not None and br.pcie_type in _LINK_TYPES
        if xa.address.device == xb.address.device or on_link:
            return self._ingress(src, dst, xa, xb, point, "same-device", result)
        if br is None:
            return self._root_complex(src, dst, xa, result, different=False)
        return self._ingress(src, dst, xa, xb, point, "switch", result)

    def _redirect(self, x: PciFunction) -> tuple[bool, bool, str, str]:
        """Does ``x`` redirect peer requests to its peer functions upstream?

        ``(redirects, certain, why, rule)``: the kernel's
        ``pci_acs_enabled(x, RR)`` (R2.2, R2.3, R2.6), except that its "single
        function: no peer" shortcut (R2.3 step 4) is not taken, since here a
        peer exists: then the registers decide, as for a multifunction device.
        """
        v = self._verdict(x, AcsFlags.RR)
        if v.decided_by != "no-peer":
            rule = {"quirk": "R2.6", "registers": "R2.2"}.get(v.decided_by, "R2.3")
            return v.enabled, v.certain, self.words.why(x, v), rule
        shortcut = "is not marked multifunction (the kernel assumes no peer, R2.3), but"
        if x.acs is None:
            unknown = bool(x.unknown & {"acs", "config"})
            what = "an ACS capability that could not be read" if unknown else "no ACS capability"
            return False, not unknown, f"{shortcut} has {what}", "R2.3"
        redirects = pci_acs_flags_enabled(x, AcsFlags.RR)  # R2.2 on the registers
        regs = f"ACS cap {_flags(x.acs.cap)}, ctrl {_flags(x.acs.ctrl)}"
        return redirects, True, f"{shortcut} has {regs}", "R2.2"

    def _ingress(
        self,
        src: str,
        dst: str,
        xa: PciFunction,
        xb: PciFunction,
        point: str,
        case: str,
        result: _ResultFn,
    ) -> tuple[bool | None, Reason]:
        redirects, certain, why, rule = self._redirect(xa)
        where = (
            f"{xa.address} and {xb.address} are functions of one device on bus {point}"
            if case == "same-device"
            else f"they meet on switch bus {point}, entering through {xa.address}"
        )
        if not certain:
            return result(
                None,
                rule,
                case,
                f"{src} → {dst}: unknown: {where}, and whether {xa.address} redirects peer "
                f"requests (RR) is not known: it {why}",
                point=point,
                ingress=str(xa.address),
            )
        if redirects:
            text = (
                f"{src} → {dst}: blocked: {where}; {xa.address} {why}, so its peer requests "
                "are redirected upstream to the IOMMU (RR)"
            )
            return result(False, rule, case, text, point=point, ingress=str(xa.address))
        if case == "same-device":
            tail = "it may be routed between the functions internally, bypassing the IOMMU"
        else:
            tail = f"the switch routes it to {xb.address} directly, bypassing the IOMMU"
        text = (
            f"{src} → {dst}: possible: {where}; {xa.address} {why}, so it does not redirect "
            f"peer requests (no RR): {tail}"
        )
        return result(True, rule, case, text, point=point, ingress=str(xa.address))

    def _root_complex(
        self, src: str, dst: str, xa: PciFunction, result: _ResultFn, *, different: bool
    ) -> tuple[bool | None, Reason]:
        v = self._verdict(xa, AcsFlags.RR)
        rule = {"quirk": "R2.6", "registers": "R2.2"}.get(v.decided_by, "R2.3")
        where = (
            "they are below different root buses"
            if different
            else "they meet in the root complex, on root bus "
            f"{_bus_name(xa.address.domain, xa.address.bus)}"
        )
        case = "root-complex"
        why = self.words.why(xa, v)
        if v.certain and v.enabled and v.decided_by != "no-peer":
            text = (
                f"{src} → {dst}: blocked: {where}, and {xa.address} {why}, so its peer requests "
                "go upstream to the IOMMU"
            )
            return result(False, rule, case, text, ingress=str(xa.address))
        if not v.certain:
            text = (
                f"{src} → {dst}: unknown: {where}, and whether {xa.address} redirects peer "
                f"requests is not known: it {why}"
            )
        elif v.enabled:
            text = (
                f"{src} → {dst}: unknown: {where}; the kernel assumes {xa.address} has no peer "
                "(single-function, R2.3), but whether the root complex routes its requests to "
                "other ports without translating them is implementation-specific"
            )
        else:
            text = (
                f"{src} → {dst}: unknown: {where}; {xa.address} {why}, so it does not redirect "
                "peer requests, but whether the root complex routes peer-to-peer between its "
                "ports without translating it is implementation-specific"
            )
        return result(None, rule, case, text, ingress=str(xa.address))
