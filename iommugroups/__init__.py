"""iommugroups: an executable specification of Linux IOMMU grouping.

Given a PCI topology, compute the IOMMU groups exactly as Linux does, explain
why, and compare the strategies the kernel has used. Rule ids (``R4.2``...)
refer to the project's rule table (the docs' "The rules, numbered").

Everything public is importable from this package (its ``__all__``), plus
three public submodules: :mod:`iommugroups.examples` (built-in topologies
and boots), :mod:`iommugroups.schemas` (the JSON output schemas and a
validator) and :mod:`iommugroups.testing` (Hypothesis strategies; it needs
Hypothesis and is imported on first use). Modules whose names start with an
underscore are internal.

>>> import iommugroups
>>> topo = iommugroups.examples.desktop()
>>> groups = iommugroups.canonical_groups(topo)
>>> groups.group_of("00:1c.1") == groups.group_of("04:00.0")
True
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from . import examples, schemas
from ._analysis.change_grammar import parse_change
from ._analysis.changes import (
    AcsOverride,
    AddQuirk,
    Change,
    ConfigAcs,
    MoveCard,
    RemoveAcs,
    RemoveDevice,
    SetAcs,
    WhatIfError,
)
from ._analysis.check import (
    CheckReport,
    DeviceCheck,
    Merge,
    NotListed,
    Split,
    Verdict,
    check,
)
from ._analysis.explain import Explainer, explain, explain_pair
from ._analysis.filters import ShowFilterError, by_address, by_class, by_group, by_related
from ._analysis.orders import OrderDependence, OrderWitness, order_dependence
from ._analysis.orders_space import OrderEvent, OrderOutcome, OrdersError, OrderSpace
from ._analysis.partition import Companions, DeviceDiff, DeviceStatus, GroupMatch
from ._analysis.passthrough import PassthroughReport, passthrough
from ._analysis.reasons import Explanation, PairExplanation, Reason
from ._analysis.related import related
from ._analysis.reproduce import Reproduction
from ._analysis.show import AcsState, GroupView, Member, Related, ShowResult, show
from ._analysis.whatif import WhatIfResult, what_if
from ._boot.drivers import KNOWN_DRIVERS, Driver, ProbeResult
from ._boot.run import default_strategy, simulate
from ._boot.scenario import Action, Scenario, ScenarioError
from ._boot.simulator import DeviceFate, SimDevice, SimulationResult, Simulator, StrategyLike
from ._boot.strategies.base import Strategy
from ._boot.strategies.registry import STRATEGIES, get_strategy, register_strategy
from ._errors import (
    ConfigSpaceError,
    InputError,
    InvalidAddress,
    IommuGroupsError,
    ParameterError,
    TopologyError,
    UnknownDevice,
)
from ._io.load import load, loads
from ._io.read import read, read_text
from ._io.scenario_file import (
    ScenarioFile,
    dumps_scenario,
    load_scenario_file,
    loads_scenario_file,
)
from ._io.snapshot import take_snapshot
from ._io.sysfs import read_sysfs
from ._io.topology_file import dumps_topology
from ._kernel.acs import AcsVerdict, pci_acs_enabled, pci_acs_path_enabled, pci_acs_verdict
from ._kernel.alias import pci_for_each_dma_alias
from ._kernel.canonical import canonical_groups
from ._kernel.groups import Decision, Grouping, LogLine
from ._kernel.model import (
    REQ_ACS_FLAGS,
    Acs,
    AcsFlags,
    BusConflict,
    IdMapping,
    IommuInstance,
    IommuKind,
    IommuUnit,
    PciAddress,
    PcieType,
    PciFunction,
    Platform,
    PlatformDevice,
    SriovCapability,
    Topology,
    VmdDomain,
)
from ._kernel.pci_device_group import GroupDecision, GroupingEnv, Step, pci_device_group
from ._kernel.quirks import (
    DEFAULT_QUIRKS,
    AcsQuirk,
    BridgeFlag,
    BridgeFlagQuirk,
    DmaAliasKind,
    DmaAliasQuirk,
    Quirks,
    make_context,
)
from ._kernel.reachable_set import ProposalFacts, reachable_set_groups
from ._kernel.reading import Reading, Unknown
from ._kernel.version import InvalidKernelVersion, KernelVersion
from ._version import __version__

if TYPE_CHECKING:
    from . import testing

__all__ = [
    # modules
    "examples",
    "testing",
    "schemas",
    "__version__",
    # errors
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
    # the model
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
    # reading and writing
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
    # groupings and the rules
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
    # simulating a boot
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
    # check
    "check",
    "CheckReport",
    "DeviceCheck",
    "Verdict",
    "Split",
    "Merge",
    "NotListed",
    "Reproduction",
    # explain
    "explain",
    "explain_pair",
    "Explainer",
    "Explanation",
    "PairExplanation",
    "Reason",
    # show
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
    # what-if
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
    # passthrough
    "passthrough",
    "PassthroughReport",
    # order dependence
    "order_dependence",
    "OrderDependence",
    "OrderWitness",
    "OrderSpace",
    "OrderEvent",
    "OrderOutcome",
    "OrdersError",
]


def __getattr__(name: str) -> ModuleType:
    """``iommugroups.testing``, imported on first use: it needs Hypothesis.

    Without Hypothesis the attribute is missing (an :exc:`AttributeError`
    saying why), so ``dir()``-driven tools such as ``help(iommugroups)``
    still work; ``import iommugroups.testing`` raises the :exc:`ImportError`.
    """
    if name == "testing":
        try:
            import iommugroups.testing
        except ImportError as exc:
            raise AttributeError(f"iommugroups.testing is not available: {exc}") from exc
        return iommugroups.testing
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(__all__)
