"""iommugroups: an executable specification of Linux IOMMU grouping.

Given a PCI topology, compute the IOMMU groups exactly as Linux does, explain
why, and compare the strategies the kernel has used. Rule ids (``R4.2``...)
refer to the project's rule table (the docs' "The rules, numbered").

>>> import iommugroups
>>> topo = iommugroups.examples.desktop()
>>> groups = iommugroups.canonical_groups(topo)
>>> groups.group_of("00:1c.1") == groups.group_of("04:00.0")
True
"""

from __future__ import annotations

from . import examples
from ._analysis.change_grammar import parse_change
from ._analysis.changes import (
    AcsOverride,
    AddQuirk,
    Applied,
    Change,
    ConfigAcs,
    MoveCard,
    RemoveAcs,
    RemoveDevice,
    SetAcs,
    Slot,
    WhatIfError,
)
from ._analysis.check import (
    CHECK_SCHEMA,
    CheckReport,
    DeviceCheck,
    Merge,
    Split,
    Verdict,
    check,
)
from ._analysis.explain import Explainer, explain, explain_pair
from ._analysis.filters import (
    CLASS_KEYWORDS,
    ShowFilterError,
    by_address,
    by_class,
    by_group,
    by_related,
)
from ._analysis.partition import DeviceDiff, DeviceStatus, GroupMatch
from ._analysis.reasons import EXPLAIN_SCHEMA, Explanation, Facts, PairExplanation, Reason
from ._analysis.related import related
from ._analysis.reproduce import Reproduction
from ._analysis.show import (
    SHOW_SCHEMA,
    AcsState,
    Clause,
    GroupView,
    Join,
    Member,
    Related,
    ShowResult,
    show,
)
from ._analysis.whatif import WHATIF_SCHEMA, WhatIfResult, what_if
from ._boot.drivers import KNOWN_DRIVERS, Driver, ProbeResult
from ._boot.run import simulate
from ._boot.scenario import Action, Scenario, ScenarioError
from ._boot.simulator import (
    DeviceFate,
    Marker,
    Message,
    SimDevice,
    SimulationResult,
    Simulator,
    StrategyLike,
)
from ._boot.strategies.base import Strategy
from ._boot.strategies.registry import STRATEGIES, get_strategy, register_strategy
from ._errors import (
    ConfigSpaceError,
    InputError,
    InvalidAddress,
    IommuGroupsError,
    TopologyError,
    UnknownDevice,
)
from ._io.arm64_capture import Capture, read_capture
from ._io.listing import read_observed
from ._io.load import load, loads
from ._io.lspci_tree import read_lspci_tree
from ._io.lspci_verbose import read_lspci_text
from ._io.read import read, read_text
from ._io.scenario_file import (
    ScenarioFile,
    dumps_scenario,
    load_scenario,
    load_scenario_file,
    loads_scenario,
    loads_scenario_file,
)
from ._io.snapshot import read_snapshot, take_snapshot
from ._io.sysfs import read_sysfs
from ._io.topology_file import dumps_topology
from ._kernel.acs import (
    REQ_ACS_FLAGS,
    pci_acs_enabled,
    pci_acs_flags_enabled,
    pci_acs_path_enabled,
)
from ._kernel.alias import dma_alias_mask, pci_devs_are_dma_aliases, pci_for_each_dma_alias
from ._kernel.canonical import canonical_groups
from ._kernel.config import ConfigSpace, decode_config, functions_from_configs
from ._kernel.fwspec import pci_fwspec
from ._kernel.groups import Grouping, IdAllocator, LogLine
from ._kernel.model import (
    Acs,
    AcsFlags,
    FwSpec,
    IdMapping,
    IommuInstance,
    IommuKind,
    PciAddress,
    PcieType,
    PciFunction,
    PlatformDevice,
    SriovCapability,
    Topology,
)
from ._kernel.pci_device_group import GroupDecision, GroupingEnv, Step, pci_device_group
from ._kernel.quirks import (
    DEFAULT_QUIRKS,
    AcsQuirk,
    BridgeFlag,
    BridgeFlagQuirk,
    DmaAliasKind,
    DmaAliasQuirk,
    QuirkContext,
    Quirks,
    make_context,
)
from ._kernel.reading import Reading, Unknown
from ._render.check import render_check
from ._render.dot import GraphvizError, GraphvizMissing, to_dot, to_svg
from ._render.explain import render_explanation, render_pair
from ._render.show import render_show, render_tree
from ._render.whatif import render_whatif
from ._version import __version__

__all__ = [
    "DEFAULT_QUIRKS",
    "KNOWN_DRIVERS",
    "STRATEGIES",
    "CHECK_SCHEMA",
    "CheckReport",
    "DeviceCheck",
    "Merge",
    "Reading",
    "Reproduction",
    "Split",
    "Unknown",
    "Verdict",
    "check",
    "SHOW_SCHEMA",
    "CLASS_KEYWORDS",
    "AcsState",
    "Clause",
    "GroupView",
    "Join",
    "Member",
    "Related",
    "Facts",
    "Applied",
    "DeviceDiff",
    "DeviceStatus",
    "GroupMatch",
    "Slot",
    "GraphvizError",
    "GraphvizMissing",
    "ShowFilterError",
    "ShowResult",
    "by_address",
    "by_class",
    "by_group",
    "by_related",
    "related",
    "render_show",
    "render_tree",
    "show",
    "to_dot",
    "to_svg",
    "EXPLAIN_SCHEMA",
    "Explainer",
    "Explanation",
    "PairExplanation",
    "Reason",
    "explain",
    "explain_pair",
    "render_explanation",
    "render_pair",
    "WHATIF_SCHEMA",
    "AcsOverride",
    "AddQuirk",
    "Change",
    "ConfigAcs",
    "MoveCard",
    "RemoveAcs",
    "RemoveDevice",
    "SetAcs",
    "WhatIfError",
    "WhatIfResult",
    "parse_change",
    "render_whatif",
    "what_if",
    "read",
    "read_lspci_text",
    "read_lspci_tree",
    "read_observed",
    "read_snapshot",
    "read_sysfs",
    "read_text",
    "render_check",
    "take_snapshot",
    "Action",
    "ScenarioFile",
    "dumps_scenario",
    "load_scenario",
    "load_scenario_file",
    "loads_scenario",
    "loads_scenario_file",
    "Capture",
    "DeviceFate",
    "Driver",
    "Marker",
    "Message",
    "ProbeResult",
    "Scenario",
    "ScenarioError",
    "SimDevice",
    "SimulationResult",
    "Simulator",
    "Strategy",
    "StrategyLike",
    "get_strategy",
    "read_capture",
    "register_strategy",
    "simulate",
    "REQ_ACS_FLAGS",
    "Acs",
    "AcsFlags",
    "AcsQuirk",
    "BridgeFlag",
    "BridgeFlagQuirk",
    "ConfigSpace",
    "ConfigSpaceError",
    "DmaAliasKind",
    "DmaAliasQuirk",
    "FwSpec",
    "GroupDecision",
    "Grouping",
    "GroupingEnv",
    "IdAllocator",
    "IdMapping",
    "InputError",
    "InvalidAddress",
    "IommuGroupsError",
    "IommuInstance",
    "IommuKind",
    "LogLine",
    "PciAddress",
    "PciFunction",
    "PcieType",
    "PlatformDevice",
    "QuirkContext",
    "Quirks",
    "SriovCapability",
    "Step",
    "Topology",
    "TopologyError",
    "UnknownDevice",
    "__version__",
    "canonical_groups",
    "decode_config",
    "dma_alias_mask",
    "dumps_topology",
    "examples",
    "functions_from_configs",
    "load",
    "loads",
    "make_context",
    "pci_acs_enabled",
    "pci_acs_flags_enabled",
    "pci_acs_path_enabled",
    "pci_device_group",
    "pci_devs_are_dma_aliases",
    "pci_for_each_dma_alias",
    "pci_fwspec",
]


def __dir__() -> list[str]:
    return list(__all__)
