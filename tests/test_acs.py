"""ACS rules (spec §2): REQ_ACS_FLAGS, pci_acs_flags_enabled, pci_acs_enabled,
pci_acs_path_enabled."""

from __future__ import annotations

import pytest

from iommugroups import (
    REQ_ACS_FLAGS,
    Acs,
    AcsFlags,
    PcieType,
    PciFunction,
    Topology,
    make_context,
    pci_acs_enabled,
    pci_acs_path_enabled,
)
from iommugroups._kernel.acs import pci_acs_flags_enabled

from .helpers import FULL, ISOLATING, bridge, ep

SV, TB, RR, CR, UF, EC, DT = (
    AcsFlags.SV,
    AcsFlags.TB,
    AcsFlags.RR,
    AcsFlags.CR,
    AcsFlags.UF,
    AcsFlags.EC,
    AcsFlags.DT,
)


def test_req_acs_flags_r2_1() -> None:
    """R2.1: SV|RR|CR|UF, 0x001d; TB, EC and DT not required."""
    assert REQ_ACS_FLAGS == SV | RR | CR | UF
    assert REQ_ACS_FLAGS.value == 0x1D


class TestFlagsEnabled:
    """R2.2: bits the capability lacks count as enabled, except EC."""

    @pytest.mark.parametrize(
        ("cap", "ctrl", "flags", "expected"),
        [
            (FULL, FULL, REQ_ACS_FLAGS, True),
            (FULL, SV | RR | CR, REQ_ACS_FLAGS, False),  # UF implemented but off
            (SV | RR | CR, SV | RR | CR, REQ_ACS_FLAGS, True),  # UF not implemented
            (AcsFlags.NONE, AcsFlags.NONE, REQ_ACS_FLAGS, True),  # nothing implemented
            (FULL, FULL, REQ_ACS_FLAGS | EC, False),  # EC requested, not implemented
            (FULL | EC, FULL | EC, REQ_ACS_FLAGS | EC, True),
            (FULL, AcsFlags.NONE, REQ_ACS_FLAGS, False),  # firmware left ctrl at 0
        ],
    )
    def test_vectors(self, cap: AcsFlags, ctrl: AcsFlags, flags: AcsFlags, expected: bool) -> None:
        fn = PciFunction("00:01.0", acs=Acs(cap, ctrl))
        assert pci_acs_flags_enabled(fn, flags) is expected

    def test_absent_capability_is_false(self) -> None:
        assert pci_acs_flags_enabled(PciFunction("00:01.0"), REQ_ACS_FLAGS) is False


def _enabled(fn: PciFunction, *others: PciFunction) -> bool:
    ctx = make_context(Topology([fn, *others]))
    return pci_acs_enabled(fn, REQ_ACS_FLAGS, ctx)


class TestAcsEnabled:
    """R2.3: the decision order of pci_acs_enabled."""

    def test_conventional_pci_is_false(self) -> None:
        assert not _enabled(ep("00:05.0", kind=None))

    @pytest.mark.parametrize("kind", [PcieType.PCI_BRIDGE, PcieType.PCIE_BRIDGE, PcieType.RC_EC])
    def test_bridges_and_event_collectors_false_even_with_acs(self, kind: PcieType) -> None:
        assert not _enabled(ep("00:05.0", kind=kind, acs=ISOLATING))

    @pytest.mark.parametrize("kind", [PcieType.ROOT_PORT, PcieType.DOWNSTREAM])
    def test_ports_need_acs_single_function_too(self, kind: PcieType) -> None:
        assert not _enabled(bridge("00:1c.0", 1, kind=kind))
        assert _enabled(bridge("00:1c.0", 1, kind=kind, acs=ISOLATING))
        partial = Acs(cap=FULL, ctrl=SV | RR)
        assert not _enabled(bridge("00:1c.0", 1, kind=kind, acs=partial))

    @pytest.mark.parametrize(
        "kind", [PcieType.ENDPOINT, PcieType.LEG_END, PcieType.RC_END, PcieType.UPSTREAM]
    )
    def test_single_function_endpoints_are_isolated(self, kind: PcieType) -> None:
        assert _enabled(ep("00:05.0", kind=kind))

    @pytest.mark.parametrize("kind", [PcieType.ENDPOINT, PcieType.LEG_END, PcieType.UPSTREAM])
    def test_multifunction_needs_acs(self, kind: PcieType) -> None:
        f0 = ep("00:05.0", kind=kind, mf=True)
        f1 = ep("00:05.1", kind=kind, mf=True, acs=ISOLATING)
        assert not _enabled(f0, f1)
        assert _enabled(f1, f0)

    def test_function_without_mf_bit_is_multifunction_r5_6(self) -> None:
        """R5.6: a non-zero function found by the slot scan is multifunction."""
        f0 = ep("01:00.0", mf=True)
        f1 = ep("01:00.1", mf=False)
        assert not _enabled(f1, f0)

    def test_quirk_first_intel_rciep(self) -> None:
        """R2.3 step 1 / R2.6: the Intel RCiEP quirk isolates an Intel RC_END
        even when multifunction without ACS (confirmed by the oracle)."""
        f0 = ep("00:03.0", vendor=0x8086, device=0x10D3, kind=PcieType.RC_END, mf=True)
        f1 = ep("00:03.1", kind=PcieType.RC_END, mf=True)
        assert _enabled(f0, f1)
        assert not _enabled(f1, f0)


class TestPathEnabled:
    """R2.4: every device from start up to the root bus must be ACS-enabled."""

    def topo(self, rp_acs: Acs | None, dsp_acs: Acs | None) -> Topology:
        return Topology(
            [
                bridge("00:01.0", 1, 3, acs=rp_acs),
                bridge("01:00.0", 2, 3, kind=PcieType.UPSTREAM),
                bridge("02:00.0", 3, kind=PcieType.DOWNSTREAM, acs=dsp_acs),
                ep("03:00.0"),
            ]
        )

    @pytest.mark.parametrize(
        ("rp", "dsp", "expected"),
        [(ISOLATING, ISOLATING, True), (None, ISOLATING, False), (ISOLATING, None, False)],
    )
    def test_whole_path(self, rp: Acs | None, dsp: Acs | None, expected: bool) -> None:
        t = self.topo(rp, dsp)
        ctx = make_context(t)
        assert pci_acs_path_enabled(t.get("02:00.0"), None, REQ_ACS_FLAGS, ctx) is expected

    def test_end_reached_before_root(self) -> None:
        t = self.topo(None, ISOLATING)
        ctx = make_context(t)
        dsp, usp, rp = t.get("02:00.0"), t.get("01:00.0"), t.get("00:01.0")
        # stops with success after checking `end` itself; the root port is never looked at
        assert pci_acs_path_enabled(dsp, usp, REQ_ACS_FLAGS, ctx)
        # a walk meant to stop at `end` that reaches the root bus first fails
        assert not pci_acs_path_enabled(dsp, ep("00:1f.0"), REQ_ACS_FLAGS, ctx)
        assert not pci_acs_path_enabled(dsp, rp, REQ_ACS_FLAGS, ctx)  # rp has no ACS

    def test_cache_does_not_change_answers(self) -> None:
        t = self.topo(None, ISOLATING)
        ctx = make_context(t)
        first = [pci_acs_path_enabled(f, None, REQ_ACS_FLAGS, ctx) for f in t]
        fresh = [pci_acs_path_enabled(f, None, REQ_ACS_FLAGS, make_context(t)) for f in t]
        assert first == fresh == [False, False, False, False]
