"""The public API: what ``iommugroups`` exports, and that the docs name nothing else."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import iommugroups
import iommugroups.schemas

DOCS = Path(__file__).resolve().parent.parent / "docs"

#: Exactly the names of ``iommugroups.__all__``, by topic (as docs/api.md).
PUBLIC = {
    "modules": ["examples", "testing", "schemas", "__version__"],
    "errors": [
        "IommuGroupsError",
        "InputError",
        "InvalidAddress",
        "TopologyError",
        "UnknownDevice",
        "ConfigSpaceError",
        "ParameterError",
        "ScenarioError",
        "InvalidKernelVersion",
        "ShowFilterError",
        "WhatIfError",
    ],
    "model": [
        "PciAddress",
        "PciFunction",
        "Topology",
        "Acs",
        "AcsFlags",
        "PcieType",
        "SriovCapability",
        "PlatformDevice",
        "IommuInstance",
        "IommuKind",
        "IdMapping",
        "Platform",
        "IommuUnit",
        "VmdDomain",
        "BusConflict",
        "REQ_ACS_FLAGS",
        "KernelVersion",
    ],
    "reading and writing": [
        "load",
        "loads",
        "dumps_topology",
        "read",
        "read_text",
        "read_sysfs",
        "take_snapshot",
        "Reading",
        "Unknown",
        "load_scenario_file",
        "loads_scenario_file",
        "dumps_scenario",
        "ScenarioFile",
    ],
    "groupings and rules": [
        "canonical_groups",
        "Grouping",
        "Decision",
        "LogLine",
        "pci_device_group",
        "GroupDecision",
        "Step",
        "GroupingEnv",
        "make_context",
        "AcsVerdict",
        "pci_acs_enabled",
        "pci_acs_verdict",
        "pci_acs_path_enabled",
        "pci_for_each_dma_alias",
        "Quirks",
        "DEFAULT_QUIRKS",
        "AcsQuirk",
        "DmaAliasQuirk",
        "DmaAliasKind",
        "BridgeFlagQuirk",
        "BridgeFlag",
    ],
    "boot": [
        "simulate",
        "default_strategy",
        "reachable_set_groups",
        "ProposalFacts",
        "Scenario",
        "Action",
        "SimulationResult",
        "DeviceFate",
        "Simulator",
        "SimDevice",
        "Strategy",
        "StrategyLike",
        "STRATEGIES",
        "get_strategy",
        "register_strategy",
        "Driver",
        "ProbeResult",
        "KNOWN_DRIVERS",
    ],
    "check": [
        "check",
        "CheckReport",
        "DeviceCheck",
        "Verdict",
        "Split",
        "Merge",
        "NotListed",
        "Reproduction",
    ],
    "explain": [
        "explain",
        "explain_pair",
        "Explainer",
        "Explanation",
        "PairExplanation",
        "Reason",
    ],
    "show": [
        "show",
        "ShowResult",
        "GroupView",
        "Member",
        "AcsState",
        "Related",
        "related",
        "by_class",
        "by_group",
        "by_address",
        "by_related",
    ],
    "what-if": [
        "what_if",
        "WhatIfResult",
        "parse_change",
        "Change",
        "AcsOverride",
        "ConfigAcs",
        "SetAcs",
        "RemoveAcs",
        "AddQuirk",
        "RemoveDevice",
        "MoveCard",
        "DeviceDiff",
        "Companions",
        "DeviceStatus",
        "GroupMatch",
    ],
    "passthrough": ["passthrough", "PassthroughReport"],
    "order dependence": [
        "order_dependence",
        "OrderDependence",
        "OrderWitness",
        "OrderSpace",
        "OrderEvent",
        "OrderOutcome",
        "OrdersError",
    ],
}


def test_all_is_exactly_the_public_api() -> None:
    expected = [name for names in PUBLIC.values() for name in names]
    assert len(set(expected)) == len(expected)
    assert len(set(iommugroups.__all__)) == len(iommugroups.__all__), "duplicates in __all__"
    assert sorted(iommugroups.__all__) == sorted(expected)


def test_every_public_name_resolves_and_dir_is_all() -> None:
    for name in iommugroups.__all__:
        assert hasattr(iommugroups, name), name
    assert dir(iommugroups) == sorted(iommugroups.__all__)


def test_internals_are_not_in_the_package_namespace() -> None:
    for name in ("QuirkContext", "Facts", "render_show", "read_capture", "IdAllocator", "FwSpec"):
        assert not hasattr(iommugroups, name), name


def test_public_submodules() -> None:
    assert isinstance(iommugroups.examples, ModuleType)
    assert iommugroups.schemas is sys.modules["iommugroups.schemas"]
    assert iommugroups.schemas.__all__ == ["SCHEMAS", "Schema", "validate"]
    assert iommugroups.testing is sys.modules["iommugroups.testing"]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_importing_the_package_does_not_import_hypothesis() -> None:
    done = _python("import sys, iommugroups; print('hypothesis' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_testing_without_hypothesis_is_missing_not_broken() -> None:
    """``help(iommugroups)`` and ``hasattr`` work; the error says what to install."""
    done = _python(
        "import sys; sys.modules['hypothesis'] = None\n"
        "import pydoc, iommugroups\n"
        "assert not hasattr(iommugroups, 'testing')\n"
        "pydoc.render_doc(iommugroups)\n"
        "try:\n"
        "    iommugroups.testing\n"
        "except AttributeError as exc:\n"
        "    print(exc)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'iommugroups[test]'" in done.stdout


@pytest.mark.skipif(not DOCS.is_dir(), reason="the docs are not here")
def test_docs_name_no_private_module() -> None:
    private = re.compile(r"iommugroups\._\w")
    found = [
        f"{page.name}:{n}: {line.strip()}"
        for page in sorted(DOCS.glob("*.md"))
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if private.search(line)
    ]
    assert not found, "\n".join(found)
