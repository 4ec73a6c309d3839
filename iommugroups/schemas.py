"""The JSON schemas of every command's JSON output, and a small validator.

Every JSON document the command-line tool prints has a ``schema`` key naming
its format and version, ``iommugroups.<name>/<version>``:

===============================  ======================================================
schema id                        printed by
===============================  ======================================================
``iommugroups.groups/1``         ``groups --json`` (:meth:`~iommugroups.Grouping.to_json`)
``iommugroups.simulation/1``     ``simulate --json``
``iommugroups.check/2``          ``check --json`` (:meth:`~iommugroups.CheckReport.to_json`)
``iommugroups.snapshot/1``       ``snapshot`` (the file it writes)
``iommugroups.show/1``           ``show --json``
``iommugroups.explain/1``        ``explain --json`` (one device, or a pair)
``iommugroups.whatif/2``         ``what-if --json``
``iommugroups.orders/1``         ``orders --json`` (:meth:`~iommugroups.OrderDependence.to_json`)
``iommugroups.vm/1``             ``vm --json``
``iommugroups.passthrough/1``    ``passthrough --json``
===============================  ======================================================

:data:`SCHEMAS` holds each format as a JSON Schema (draft 2020-12), written
with a small subset of the keywords, which :func:`validate` implements:
``type``, ``properties``, ``required``, ``additionalProperties``,
``propertyNames``, ``items``, ``enum``, ``const``, ``pattern``, ``minimum``,
``oneOf``, ``anyOf`` and ``$ref`` to the schema's own ``$defs``
(``title``, ``description`` and ``$schema`` are annotations).

Compatibility: within one version keys are only ever added, so the schemas
leave ``additionalProperties`` open on objects with fixed keys: a consumer
written for version 1 keeps validating later version-1 documents. To check
that a schema documents *every* key a document has, pass ``strict=True``
to :func:`validate`: undeclared keys are then errors (the tests do this).

>>> validate({"schema": "iommugroups.groups/1", "groups": [["0000:00:00.0"]],
...           "group_ids": [0], "ungrouped": {}, "strategy": "canonical"},
...          "iommugroups.groups/1")
[]
>>> validate({"schema": "iommugroups.groups/1", "groups": [[0]], "group_ids": [-1]},
...          "iommugroups.groups/1")  # doctest: +NORMALIZE_WHITESPACE
['$: missing required key "ungrouped"', '$: missing required key "strategy"',
 '$.groups[0][0]: expected string, got integer', '$.group_ids[0]: -1 is less than 0']
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["SCHEMAS", "Schema", "validate"]

#: A JSON Schema, as parsed JSON.
Schema = dict[str, Any]

_DIALECT = "https://json-schema.org/draft/2020-12/schema"


# --------------------------------------------------------------- building blocks
def _t(kind: str | list[str], description: str = "", **more: Any) -> Schema:
    out: Schema = {"type": kind}
    if description:
        out["description"] = description
    out.update(more)
    return out


def _obj(
    props: Mapping[str, Schema],
    description: str = "",
    *,
    nullable: bool = False,
    optional: Mapping[str, Schema] | None = None,
) -> Schema:
    """An object with these keys, all required, and the ``optional`` ones (added later in
    the version: documents written before them lack them)."""
    out = _t(["object", "null"] if nullable else "object", description)
    out["properties"] = {**props, **(optional or {})}
    out["required"] = list(props)
    return out


def _map(values: Schema, description: str = "") -> Schema:
    """An object used as a mapping: any keys, these values."""
    return _t("object", description, additionalProperties=values)


def _arr(items: Schema, description: str = "") -> Schema:
    return _t("array", description, items=items)


def _ref(name: str, description: str = "") -> Schema:
    out: Schema = {"$ref": f"#/$defs/{name}"}
    if description:
        out["description"] = description
    return out


def _enum(values: list[str], description: str = "", *, nullable: bool = False) -> Schema:
    out = _t(["string", "null"] if nullable else "string", description)
    out["enum"] = [*values, None] if nullable else values
    return out


def _doc(
    schema_id: str,
    about: str,
    props: Mapping[str, Schema],
    *,
    optional: Mapping[str, Schema] | None = None,
    **defs: Schema,
) -> Schema:
    """A top-level document: ``schema`` is ``schema_id``, then ``props`` (and ``optional``)."""
    out: Schema = {"$schema": _DIALECT, "title": schema_id, "description": about}
    out.update(_obj({"schema": {"const": schema_id}, **props}, optional=optional))
    if defs:
        out["$defs"] = defs
    return out


_STR = _t("string")
#: PCIe types as JSON documents name them (``iommugroups._analysis.names.PCIE_TYPE_KEYS``).
_PCIE_TYPES = [
    "endpoint",
    "legacy-endpoint",
    "root-port",
    "upstream-port",
    "downstream-port",
    "pcie-to-pci-bridge",
    "pci-to-pcie-bridge",
    "rc-endpoint",
    "rc-event-collector",
    "conventional",
]
#: The kernel version a command modelled (``--kernel``, else the source's, else the newest).
_KERNEL = {"kernel": _t("string", "the Linux version modelled, MAJOR.MINOR")}
_STRS = _arr(_STR)
_OPT_STR = _t(["string", "null"])
_BOOL = _t("boolean")
_GID = _t("integer", minimum=0)
_OPT_GID = _t(["integer", "null"], minimum=0)
_COUNT = _t("integer", minimum=0)
#: Device names: ``dddd:bb:dd.f`` for PCI functions, else a platform device's name.
_NAMES = _arr(_STR)


def _counts(keys: list[str], description: str) -> Schema:
    return _obj(dict.fromkeys(keys, _COUNT), description)


def _grouping_props() -> dict[str, Schema]:
    return {
        "groups": _arr(_NAMES, "the groups in id order, each a list of its members, sorted"),
        "group_ids": _arr(_GID, "the id of each group of groups, in the same order"),
        "ungrouped": _map(_STR, "devices that get no group -> why"),
        "strategy": _t("string", "the grouping strategy, e.g. canonical"),
    }


_GROUPING = _obj(
    {"schema": {"const": "iommugroups.groups/1"}, **_grouping_props()},
    "a grouping, as in iommugroups.groups/1",
)

_STEP = _obj(
    {
        "rule": _t("string", "the rule id, e.g. R4.2"),
        "device": _STR,
        "text": _STR,
        "group": _OPT_GID,
    },
    "one step of the pci_device_group trace",
)

_GROUP_MEMBERS = _obj({"group": _GID, "devices": _NAMES})

# --------------------------------------------------------------------- groups/1
_GROUPS_DOC = _doc(
    "iommugroups.groups/1",
    "groups --json: the canonical IOMMU groups of a topology (groups, group_ids), the "
    "kernel's own when the source has them (kernel_groups), and each device described",
    _grouping_props(),
    optional={
        **_KERNEL,
        "kernel_groups": _obj(
            {
                "groups": _arr(_NAMES, "the kernel's groups in id order, each its members"),
                "group_ids": _arr(_GID, "the id of each group of groups"),
            },
            "the groups the kernel made, as the source lists them (null: it lists none)",
            nullable=True,
        ),
        "devices": _arr(
            _obj(
                {
                    "device": _t("string", "dddd:bb:dd.f, or a platform device's name"),
                    "vendor": _t(["string", "null"], pattern=r"^[0-9a-f]{4}$"),
                    "device_id": _t(["string", "null"], pattern=r"^[0-9a-f]{4}$"),
                    "class_code": _t(["string", "null"], pattern=r"^[0-9a-f]{6}$"),
                    "class_name": _OPT_STR,
                    "name": _t(["string", "null"], "the device's name in the PCI ID database"),
                    "revision": _t(["integer", "null"], "the revision id, 0-255", minimum=0),
                    "driver": _OPT_STR,
                    "predicted_group": _OPT_GID,
                    "kernel_group": _OPT_GID,
                    "verdict": _enum(
                        ["ok", "split", "merged", "unknown"],
                        "check's verdict (null without the kernel's groups)",
                        nullable=True,
                    ),
                }
            ),
            "every device of either grouping, in address order",
        ),
    },
)

# ----------------------------------------------------------------- simulation/1
_EVENT = {
    "oneOf": [
        _obj(
            {
                "kind": _enum(["add", "remove"]),
                "prefix": _t("string", "the bound driver, else the bus (pci, platform)"),
                "device": _STR,
                "group": _GID,
                "line": _t("string", "the kernel line: Adding to / Removing from iommu group"),
            },
            "a device joined or left a group",
        ),
        _obj(
            {
                "kind": {"const": "message"},
                "prefix": _STR,
                "device": _STR,
                "text": _STR,
                "line": _STR,
            },
            "another kernel message about a device",
        ),
        _obj(
            {
                "kind": {"const": "marker"},
                "action": _arr(_STR, "the action's words after ACTION"),
                "line": _STR,
            },
            "an ACTION marker before an action's lines",
        ),
    ]
}

_SIMULATION_DOC = _doc(
    "iommugroups.simulation/1",
    "simulate --json: a replayed boot and its actions under one grouping strategy",
    {
        "strategy": _STR,
        "scenario": _t("string", "the scenario's name"),
        "log": _arr(_STR, "the kernel log lines, in order (ACTION markers unless --no-markers)"),
        "events": _arr(_ref("event"), "every log event, in order"),
        "groups": _arr(_NAMES, "the final groups in id order"),
        "group_ids": _arr(_GID),
        "fates": _map(
            _obj(
                {
                    "state": _enum(
                        ["bound", "no-driver", "deferred", "failed", "removed", "not-added"]
                    ),
                    "driver": _OPT_STR,
                    "group": _OPT_GID,
                    "detail": _t("string", "why, in words"),
                }
            ),
            "device -> what became of it",
        ),
        "notes": _arr(_STR, "what the driver core refused without a kernel message"),
    },
    optional={
        "kernel": _t(
            "string", "the kernel version modelled, MAJOR.MINOR (log messages, R2.7, R1.4)"
        )
    },
    event=_EVENT,
)

# ---------------------------------------------------------------------- check/2
_VERDICTS = ["ok", "split", "merged", "unknown"]
#: ``iommugroups._analysis.check.REASON_KINDS`` (tests/test_json_schemas.py pins them equal)
_CHECK_REASON_KINDS = [
    "no-group",
    "not-predicted",
    "not-observed",
    "split",
    "merged",
    "also-merged",
    "depends",
    "members-not-observed",
    "vmd",
    "bridge",
    "multifunction",
    "bridge-split",
]

_CHECK_DOC = _doc(
    "iommugroups.check/2",
    "check --json: the kernel's groups compared with the canonical prediction; each group "
    "listed once, each device's entry naming its groups",
    {
        "verdict": _enum(_VERDICTS, "the worst device verdict: split, merged, unknown, ok"),
        "has_split": _t("boolean", "an isolation hole was found (exit status 1)"),
        "counts": _counts(_VERDICTS, "verdict -> number of devices"),
        "devices": _arr(
            _obj(
                {
                    "device": _STR,
                    "verdict": _enum(_VERDICTS),
                    "canonical_group": _t(
                        ["integer", "null"], "its group in canonical (null: none)", minimum=0
                    ),
                    "observed_group": _t(
                        ["integer", "null"], "its group in observed (null: none)", minimum=0
                    ),
                    "isolating_group": _t(
                        ["integer", "null"],
                        "its group in isolating (in canonical when isolating is null)",
                        minimum=0,
                    ),
                    "split_count": _t(
                        "integer",
                        "devices that must share its group the kernel put in other groups",
                        minimum=0,
                    ),
                    "merged_count": _t(
                        "integer",
                        "devices of its observed group the rules isolate it from",
                        minimum=0,
                    ),
                    "reason_kinds": _arr(
                        _enum(_CHECK_REASON_KINDS),
                        "what its verdict rests on, one kind per reason",
                    ),
                    "about": _t(
                        ["string", "null"],
                        "the device whose missing bridge or multifunction bit a reason is about",
                    ),
                    "rules": _arr(_ref("step"), "only for devices whose verdict is not ok"),
                    "rules_if_isolating": _arr(_ref("step")),
                }
            ),
            "one verdict per device, in address order (who its companions are: set "
            "computations over canonical, isolating and observed)",
        ),
        "splits": _arr(
            _obj(
                {
                    "canonical_group": _GID,
                    "devices": _NAMES,
                    "parts": _arr(_obj({"observed_group": _GID, "devices": _NAMES})),
                    "not_observed": _NAMES,
                    "uncertain": _NAMES,
                }
            ),
            "canonical groups the kernel spread over several groups",
        ),
        "merges": _arr(
            _obj(
                {
                    "observed_group": _GID,
                    "devices": _NAMES,
                    "parts": _arr(_obj({"canonical_group": _GID, "devices": _NAMES})),
                }
            ),
            "observed groups holding devices of several canonical groups",
        ),
        "unknown": _arr(_STR, "devices whose verdict is unknown"),
        "canonical": _ref("grouping", "the prediction"),
        "isolating": _obj(
            {"group_ids": _arr(_GID), "groups": _arr(_NAMES)},
            "null when no ACS/PCIe fact is unknown; else the prediction with every unknown "
            "fact taken as isolating, groups in id order",
            nullable=True,
        ),
        "observed": _obj(
            {"source": _STR, "group_ids": _arr(_GID), "groups": _arr(_NAMES)},
            "the kernel's groups, in id order",
        ),
        "reproduction": _obj(
            {
                "method": _STR,
                "scenario": _arr(_STR, "the replayed action lines"),
                "left_out": _map(_STR, "device -> why it is not compared"),
                "strategies": _arr(_obj({"strategy": _STR, "reproduced": _BOOL, "detail": _STR})),
                "reproduced_by": _STRS,
            },
            "null without a kernel log; else the replay of the log under each strategy",
            nullable=True,
        ),
        "notes": _STRS,
        "not_listed": _arr(
            _obj({"device": _STR, "observed_group": _GID, "why": _STR}),
            "devices the kernel grouped that the input does not list (no verdict)",
        ),
        "details": _arr(
            _obj({"device": _STR, "fact": _STR, "why": _STR}),
            "what the input lacks that no verdict rests on",
        ),
        "missing": _map(
            _NAMES,
            "grouping fact (acs, pcie, config, bridge, multifunction) -> the devices it is "
            "not known of",
        ),
        "missing_why": _map(
            _STR,
            "device -> why, for each device whose missing bridge, multifunction bit or VMD "
            "endpoint a verdict rests on",
        ),
    },
    optional=_KERNEL,
    step=_STEP,
    grouping=_GROUPING,
)

# ------------------------------------------------------------------- snapshot/1
_HEX_ID = r"^0x[0-9a-f]{4}$"

_SNAPSHOT_DOC = _doc(
    "iommugroups.snapshot/1",
    "snapshot: a machine's sysfs PCI files and IOMMU groups, as written "
    "(readers also accept integer ids and group numbers)",
    {
        "taken": _t("string", "when, UTC, ISO 8601"),
        "kernel": _t(["string", "null"], "uname -r"),
        "cmdline": _t(["string", "null"], "/proc/cmdline"),
        "devices": _map(
            _obj(
                {
                    "config_hex": _t(
                        ["string", "null"],
                        "configuration space as read (64, 256 or 4096 bytes)",
                        pattern=r"^([0-9a-f]{2})*$",
                    ),
                    "driver": _OPT_STR,
                    "physfn": _t(["string", "null"], "an SR-IOV VF's PF"),
                    "iommu_group": _OPT_GID,
                    "vendor": _t(["string", "null"], pattern=_HEX_ID),
                    "device": _t(["string", "null"], pattern=_HEX_ID),
                    "class": _t(["string", "null"], pattern=r"^0x[0-9a-f]{6}$"),
                },
                optional={
                    "vmd_domain": _t(
                        ["string", "null"],
                        "a VMD endpoint's domain link (R11.1)",
                        pattern=r"^0x[0-9a-f]{5,8}$",
                    ),
                },
            ),
            "PCI address (dddd:bb:dd.f) -> its sysfs files",
        ),
        "groups": _t(
            ["object", "null"],
            "kernel/iommu_groups: group number -> members (null: the tree had none)",
            propertyNames={"pattern": "^[0-9]+$"},
            additionalProperties=_NAMES,
        ),
        "unknowns": _arr(
            _obj({"device": _STR, "fact": _STR, "why": _STR}), "problems met reading"
        ),
    },
    optional={
        "iommus": _map(
            _obj(
                {
                    "devices": _arr(_STR, "the devices it translates"),
                    "function": _t(["string", "null"], "an AMD IOMMU's own PCI function"),
                }
            ),
            "class/iommu: an x86 IOMMU's name (dmarN, ivhdN) -> its devices",
        ),
    },
)

# ----------------------------------------------------------------------- show/1
_ACS_STATES = ["ACS", "ACS off", "no ACS", "ACS quirk", "no ACS (quirk)", "ACS n/a", "ACS ?"]
_JOIN_STEPS = [
    "new",
    "alias",
    "upstream",
    "alias-group",
    "function-alias",
    "platform",
    "streams",
    "vmd",
    "other",
]
_CLAUSE_KINDS = [
    "below",
    "behind",
    "functions",
    "aliases",
    "streams",
    "vmd",
    "isolated",
    "alone",
    "platform",
    "other",
]
_HEX4 = r"^[0-9a-f]{4}$"

_MEMBER = _obj(
    {
        "device": _t("string", "dddd:bb:dd.f, or a platform device's name"),
        "address": _t("string", "the short form shown (bb:dd.f in domain 0)"),
        "class": _t(["string", "null"], "e.g. 0604", pattern=_HEX4),
        "class_code": _t(["string", "null"], "e.g. 060400", pattern=r"^[0-9a-f]{6}$"),
        "class_name": _STR,
        "vendor": _t(["string", "null"], pattern=_HEX4),
        "device_id": _t(["string", "null"], pattern=_HEX4),
        "driver": _OPT_STR,
        "kind": _t("string", "root port, endpoint, conventional PCI, SR-IOV VF, ..."),
        "bridge": _t("boolean", "a bridge header: VFIO never assigns it"),
        "acs": _enum(_ACS_STATES, "how grouping sees its ACS", nullable=True),
        "joined": _obj(
            {"step": _enum(_JOIN_STEPS), "rule": _STR, "via": _OPT_STR, "pdev": _OPT_STR},
            "how it joined its group",
            nullable=True,
        ),
        "observed_group": _OPT_GID,
        "match": _t("boolean", "it matches every filter applied"),
    },
    optional={
        "acs_state": _enum(
            ["enabled", "off", "absent", "quirk", "quirk-off", "not-needed", "unknown"],
            "the ACS state as a key (acs is its label)",
            nullable=True,
        ),
        "acs_isolates": _t(["boolean", "null"], "grouping counts it as ACS-isolated (R2.3)"),
        "acs_known": _t(["boolean", "null"], "false: its ACS could not be read (taken as absent)"),
        "pcie_type": _enum(
            _PCIE_TYPES,
            "its PCIe type, conventional without a PCIe capability (null: not known)",
            nullable=True,
        ),
    },
)

_SHOW_DOC = _doc(
    "iommugroups.show/1",
    "show --json: the groups, each member described, with the reason for each group's shape",
    {
        "topology": _t("string", "the topology's name"),
        "strategy": _STR,
        "filters": _arr(_STR, "the filters applied, in words (empty: none)"),
        "groups": _arr(
            _obj(
                {
                    "group": _GID,
                    "reason": _t("string", "one line"),
                    "rules": _STRS,
                    "clauses": _arr(
                        _obj(
                            {
                                "kind": _enum(_CLAUSE_KINDS),
                                "rules": _STRS,
                                "devices": _NAMES,
                                "text": _STR,
                            }
                        ),
                        "the reason, in parts",
                    ),
                    "observed_groups": _t(
                        ["array", "null"], "null without an observation", items=_GID
                    ),
                    "observed_same": _t(["boolean", "null"], "null without an observation"),
                    "members": _arr(_ref("member")),
                }
            ),
            "the groups shown, by id",
        ),
        "ungrouped": _arr(_obj({"device": _STR, "why": _STR})),
        "observed": _obj(
            {"source": _STR, "groups": _arr(_ref("group_members"))},
            "the kernel's groups, when the source has them",
            nullable=True,
        ),
        "observed_only": _arr(_obj({"device": _STR, "observed_group": _GID})),
        "related": _obj(
            {
                "device": _STR,
                "group": _OPT_GID,
                "reason": _STR,
                "together": _arr(_STR, "to assign together (bound to vfio-pci)"),
                "bridges": _arr(_STR, "bridges in the group: never assigned"),
                "bus_reset": _arr(_STR, "devices outside the group a bus reset also resets"),
                "bus_reset_groups": _arr(_GID),
            },
            "with --related: what must go to a VM together with the device",
            nullable=True,
        ),
    },
    optional=_KERNEL,
    member=_MEMBER,
    group_members=_GROUP_MEMBERS,
)

# -------------------------------------------------------------------- explain/1
_REASON_KINDS = [
    "acs",
    "unknown",
    "upstream-bridge",
    "bridge-alias",
    "dma-alias-peer",
    "function-peer",
    "stream-sharing",
    "new-group",
    "generic",
    "ungrouped",
    "isolated-stop",
    "root-bus",
    "common-bridge",
    "dma-alias",
    "chain",
    "isolated-by",
    "root-bus-top",
    "isolated-bridge",
    "separate-tops",
    "different-root-bus",
    "no-group",
    "platform",
    "reach",
    "vmd",
]
_JOINED = [
    "new",
    "upstream",
    "alias",
    "alias-group",
    "function-alias",
    "stream-sharing",
    "generic",
    "ungrouped",
    "vmd",
]

_REASON = _obj(
    {
        "kind": _enum(_REASON_KINDS, "which facts there are"),
        "rule": _t("string", "the rule id(s), e.g. R4.2"),
        "device": _STR,
        "text": _t("string", "for people; programs use kind and facts"),
        "facts": _map(_STR, "what decided, as strings (keys depend on kind)"),
    },
    "one rule application",
)
_REASONS = _arr(_ref("reason"))
_REACH = _obj(
    {"possible": _t(["boolean", "null"], "null: unknown"), "reason": _ref("reason")},
    "can a request reach the other device without the IOMMU",
)

_EXPLAIN_OPTIONAL: dict[str, Schema] = {
    **_KERNEL,
    "kernel_groups": _arr(
        _obj({"device": _STR, "group": _OPT_GID, "members": _NAMES}),
        "when the source has the kernel's groups: the group the kernel put each device in "
        "(group null: the kernel's groups do not list it)",
    ),
}

_EXPLAIN_DOC: Schema = {
    "$schema": _DIALECT,
    "title": "iommugroups.explain/1",
    "description": "explain --json: why a device is in its group (type device), or why two "
    "devices share a group or not (type pair)",
    "oneOf": [
        _obj(
            {
                "schema": {"const": "iommugroups.explain/1"},
                "type": {"const": "device"},
                "device": _STR,
                "group": _OPT_GID,
                "members": _NAMES,
                "joined": _enum(_JOINED, "how it got its group"),
                "via": _t(["string", "null"], "the device whose group it joined"),
                "chain": _arr(_ref("reason"), "from the device to the group's creator"),
                "acs": _arr(_ref("reason"), "the ACS verdict of it and every bridge above"),
                "unknown": _arr(_ref("reason"), "facts that could not be read"),
                "certain": _t("boolean", "no unknown fact could change a verdict involved"),
                "steps": _arr(_ref("step"), "the raw pci_device_group trace"),
            },
            "one device",
            optional=_EXPLAIN_OPTIONAL,
        ),
        _obj(
            {
                "schema": {"const": "iommugroups.explain/1"},
                "type": {"const": "pair"},
                "a": _STR,
                "b": _STR,
                "group_a": _OPT_GID,
                "group_b": _OPT_GID,
                "same_group": _BOOL,
                "cause": {"anyOf": [{"type": "null"}, _ref("reason")]},
                "chain": _arr(_ref("reason"), "one group: the links from a to b"),
                "separation": _arr(_ref("reason"), "different groups: what separates them"),
                "reach": _obj({"a_to_b": _REACH, "b_to_a": _REACH}),
                "acs": _REASONS,
                "unknown": _REASONS,
                "certain": _BOOL,
            },
            "two devices",
            optional=_EXPLAIN_OPTIONAL,
        ),
    ],
    "$defs": {"reason": _REASON, "step": _STEP},
}

# --------------------------------------------------------------------- whatif/2
_STATUSES = [
    "unchanged",
    "split",
    "merged",
    "regrouped",
    "removed",
    "now-grouped",
    "now-ungrouped",
]
_MATCH_KINDS = ["unchanged", "shrunk", "split", "merged", "regrouped", "gone", "new"]
_CHANGE_KINDS = [
    "acs-override",
    "config-acs",
    "set-acs",
    "remove-acs",
    "quirk",
    "remove",
    "move",
    "reachable-set",
]

_WHATIF_REASON = _obj(
    {
        "device": _t("string", "its name after"),
        "status": _enum(_STATUSES),
        "group": _OPT_GID,
        "how": _t("string", "how the proposal's pci_device_group decided (new, bridge, ...)"),
        "rule": _t("string", "the rule that decided (R6.1-R6.13, or a mainline rule)"),
        "rules": _arr(_STR, "every rule the decision rests on"),
        "text": _t("string", "the decision in words"),
        "missing": _arr(_STR, "facts it rests on that are not known (read as isolating least)"),
    },
    "why a device whose group changed is where it is after a reachable-set change",
)

_WHATIF_DOC = _doc(
    "iommugroups.whatif/2",
    "what-if --json: the groups before and after hypothetical changes, compared",
    {
        "upstream": _t("boolean", "every change is available without an out-of-tree patch"),
        "changes": _arr(
            _obj(
                {
                    "kind": _enum(_CHANGE_KINDS),
                    "text": _t("string", "the change in its CLI form"),
                    "label": _STR,
                    "upstream": _BOOL,
                    "cost": _t("string", "what it costs or risks, in isolation"),
                }
            ),
            "in the order applied",
        ),
        "labels": _arr(_obj({"label": _STR, "cost": _STR}), "the changes that are not upstream"),
        "counts": _counts(_STATUSES, "device status -> number of devices"),
        "group_counts": _counts(_MATCH_KINDS, "group match kind -> number"),
        "groups": _arr(
            _obj(
                {
                    "kind": _enum(_MATCH_KINDS),
                    "before": _arr(_ref("group_members"), "the groups before (names before)"),
                    "after": _arr(_ref("group_members"), "the groups after (names after)"),
                }
            ),
            "groups before and after matched by membership (ids are allocation order), "
            "each group change once, every member listed once",
        ),
        "devices": _arr(
            _obj(
                {
                    "device": _t("string", "its name after (before, if removed)"),
                    "was": _t(["string", "null"], "its name before, if a change moved it"),
                    "status": _enum(_STATUSES),
                    "group_before": _OPT_GID,
                    "group_after": _OPT_GID,
                    "match": _t(
                        ["integer", "null"],
                        "the index of its group change in groups (null: never in a group)",
                        minimum=0,
                    ),
                    "left_count": _t(
                        "integer", "former companions now in other groups or none", minimum=0
                    ),
                    "joined_count": _t("integer", "companions it did not have before", minimum=0),
                    "removed_count": _t("integer", "former companions taken out", minimum=0),
                }
            ),
            "per device, in address order (who left and joined: its entry of groups)",
        ),
        "renamed": _map(_STR, "name before -> name after of every moved function"),
        "removed": _arr(_STR, "names (before) of the functions taken out"),
        "before": _ref("grouping"),
        "after": _ref("grouping"),
        "notes": _STRS,
    },
    optional={
        **_KERNEL,
        "grouping_after": _enum(
            ["reachable-set"], "with a reachable-set change: the grouping after"
        ),
        "facts": _t("string", "with a reachable-set change: the facts it assumed, as written"),
        "reasons": _arr(
            _ref("reason"), "with a reachable-set change: per device whose group changed"
        ),
    },
    group_members=_GROUP_MEMBERS,
    grouping=_GROUPING,
    reason=_WHATIF_REASON,
)

# ---------------------------------------------------------------------- orders/1
_ORDER_OUTCOME = _obj(
    {
        "groups": _arr(_NAMES, "the groups the order ends with (ids forgotten), each sorted"),
        "ungrouped": _arr(_STR, "the present devices it leaves without a group, sorted"),
    },
    "what one order ends with",
)

_ORDERS_DOC = _doc(
    "iommugroups.orders/1",
    "orders --json: whether the order of adds and probes can change the groups",
    {
        "strategy": _STR,
        "kernel": _t(["string", "null"], "the kernel model (null: the current one)"),
        "verdict": _enum(["independent", "dependent", "unknown"]),
        "reason": _t("string", "why, in words with rule ids"),
        "rules": _arr(_STR, "the rule ids the reason rests on"),
        "space": _obj(
            {
                "adds": _enum(["kernel", "any"], "device-add orders compared"),
                "hotplug": _t("boolean", "hot-remove and rescan included"),
                "iommu_builtin": _t("boolean", "the IOMMU driver is built in"),
            },
            "the orders compared",
        ),
        "devices": _t("integer", "devices the orders probe", minimum=0),
        "witness": _obj(
            {
                "kind": _enum(["scenario", "add-order"]),
                "first": _arr(_STR, "order A, step by step (probe D, iommu I, ...)"),
                "second": _arr(_STR, "order B"),
                "differ_at": _t("integer", "index of the first step that differs", minimum=0),
                "differences": _t("integer", "steps that differ", minimum=0),
                "devices": _arr(_STR, "two devices whose groups differ"),
                "why": _STR,
                "first_groups": _ref("outcome"),
                "second_groups": _ref("outcome"),
            },
            "for a dependent verdict, two orders that end differently",
            nullable=True,
        ),
        "notes": _STRS,
    },
    outcome=_ORDER_OUTCOME,
)

# ---------------------------------------------------------------------- vm/1
_VM_DOC = _doc(
    "iommugroups.vm/1",
    "vm --json: the QEMU command line that builds a topology",
    {
        "arch": _enum(["x86_64", "aarch64"], "the guest architecture"),
        "firmware": _enum(["acpi", "dt"], "how the guest learns the hardware"),
        "argv": _arr(_STR, "qemu-system-ARCH and its arguments, one word each"),
        "addresses": _map(_STR, "topology address -> the address the device has in the guest"),
        "notes": _arr(_STR, "what the command line cannot build exactly, and why"),
    },
)

# -------------------------------------------------------------- passthrough/1
_HEX4_OR_NULL = _t(["string", "null"], pattern=r"^[0-9a-f]{4}$")
_AVAILABILITY = ["yes", "no", "unknown"]
_PT_MEMBER = _obj(
    {
        "device": _t("string", "dddd:bb:dd.f, or a name the kernel's group gives"),
        "role": _enum(
            ["card", "endpoint", "bridge", "unknown"],
            "card: a function of a named device's slot (or a VF of one); endpoint: another "
            "device, which goes to the VM too; bridge: stays with the host; unknown: not in "
            "the input, or its class not shown",
        ),
        "named": _t("boolean", "it is one of the devices named"),
        "vendor": _HEX4_OR_NULL,
        "device_id": _HEX4_OR_NULL,
        "class_code": _t(["string", "null"], "e.g. 030000", pattern=r"^[0-9a-f]{6}$"),
        "pcie_type": _enum(
            _PCIE_TYPES,
            "its PCIe type, conventional without a PCIe capability (null: not known)",
            nullable=True,
        ),
        "virtfn": _t("boolean", "an SR-IOV VF"),
        "bridge": _t("boolean", "role is bridge"),
        "driver": _t(["string", "null"], "the host driver bound (null: none, or not known)"),
        "driver_known": _t("boolean", "the input says which driver is bound, or that none is"),
        "blocks_vfio": _t(
            ["boolean", "null"],
            "its driver keeps VFIO from claiming the group (a driver other than vfio-pci, "
            "pci-stub or pcieport); null: not known",
        ),
    }
)
_PT_SLOTS = _obj(
    {
        "searched": _t("boolean", "false: the card cannot move (why)"),
        "why": _STR,
        "candidates": _t("integer", "free root/downstream ports in the topology", minimum=0),
        "capped": _t("boolean", "the search stopped before trying every candidate"),
        "tried": _arr(
            _obj(
                {
                    "port": _STR,
                    "change": _t("string", "the what-if change that moves the card there"),
                    "alone_after": _BOOL,
                    "group_after": _NAMES,
                }
            ),
            "the ports tried, in order",
        ),
        "options": _arr(_STR, "the ports where the card would be alone"),
    },
    "where the card could move (null: its group holds no other device)",
    nullable=True,
)
_PT_DEVICE = _obj(
    {
        "device": _STR,
        "selector": _t("string", "what named it (an address, a slot, an id or a class)"),
        "named": _arr(_STR, "the devices named that this entry answers for (its card's)"),
        "verdict": _enum(
            ["alone", "with-others", "isolation-hole", "no-group", "unknown"],
            "can it go to a VM alone",
        ),
        "groups_from": _enum(["kernel", "model"], "the kernel's groups or the predicted ones"),
        "group": _OPT_GID,
        "members": _arr(_PT_MEMBER, "its group's members, in address order"),
        "card": _arr(_STR, "the functions of its card (slot), whatever their group"),
        "card_elsewhere": _arr(_STR, "functions of its card in other groups"),
        "others": _arr(_STR, "members with role endpoint"),
        "check": _enum(
            ["ok", "split", "merged", "unknown"],
            "check's verdict on it (null: not in the topology)",
            nullable=True,
        ),
        "predicted": _arr(_STR, "its predicted group (as read)"),
        "same_as_predicted": _BOOL,
        "depends_on": _arr(_STR, "devices whose unknown facts its group depends on"),
        "vfio": _obj(
            {
                "bind": _arr(_STR, "the endpoints to bind to vfio-pci"),
                "ids": _arr(_t("string", pattern=r"^[0-9a-f]{4}:[0-9a-f]{4}$")),
                "ids_known": _t("boolean", "every endpoint's ids are known"),
                "ids_shared_with": _arr(
                    _STR, "devices outside bind that have one of the ids (the first 16)"
                ),
                "ids_shared_count": _t("integer", "how many such devices", minimum=0),
                "kernel_parameter": _t(["string", "null"], "vfio-pci.ids=..."),
                "modprobe": _arr(_STR, "the lines of /etc/modprobe.d/vfio.conf"),
                "driverctl": _arr(_STR, "driverctl set-override lines"),
                "host_drivers": _arr(
                    _obj({"device": _STR, "driver": _STR}),
                    "endpoints bound to a host driver now, and the driver",
                ),
                "blocking": _arr(
                    _obj({"device": _STR, "driver": _STR}),
                    "members whose driver keeps VFIO out of the group",
                ),
                "refused": _arr(
                    _obj({"device": _STR, "why": _STR}), "endpoints vfio-pci will not bind"
                ),
            }
        ),
        "reset": _arr(
            _obj(
                {
                    "device": _STR,
                    "available": _enum(_AVAILABILITY, "some method is (or may be) available"),
                    "bridge": _t(["string", "null"], "the bridge a bus reset goes through"),
                    "shares_bus": _arr(_STR, "other functions on its bus"),
                    "below": _arr(_STR, "what a reset of its bus resets besides it"),
                    "methods": _arr(
                        _obj(
                            {
                                "name": _STR,
                                "function": _STR,
                                "available": _enum(_AVAILABILITY),
                                "why": _STR,
                            }
                        ),
                        "pci_reset_fn_methods[] in the kernel's order",
                    ),
                }
            ),
            "per endpoint to bind",
        ),
        "libvirt": _arr(
            _obj(
                {
                    "device": _STR,
                    "domain": _t("integer", minimum=0),
                    "bus": _t("integer", minimum=0),
                    "slot": _t("integer", minimum=0),
                    "function": _t("integer", minimum=0),
                    "xml": _t("string", "the <hostdev> element"),
                }
            ),
            "per endpoint to bind",
        ),
        "slots": _PT_SLOTS,
        "acs_override": _obj(
            {
                "change": _STR,
                "label": _STR,
                "upstream": _t("boolean", "always false: an out-of-tree patch"),
                "cost": _STR,
                "alone_after": _BOOL,
                "group_after": _NAMES,
            },
            "what pcie_acs_override would do (null: not needed)",
            nullable=True,
        ),
        "reasons": _STRS,
    }
)
_PASSTHROUGH_DOC = _doc(
    "iommugroups.passthrough/1",
    "passthrough --json: per device named, its group and what goes with it, the vfio-pci "
    "lines, reset methods, libvirt hostdevs, and where else the card could go",
    {
        **_KERNEL,
        "groups_from": _enum(["kernel", "model"], "the kernel's groups or the predicted ones"),
        "verdict": _enum(
            ["alone", "with-others", "isolation-hole", "no-group", "unknown"],
            "the worst device verdict",
        ),
        "status": _t("integer", "the exit status: 0, 1 or 3", minimum=0),
        "devices": _arr(
            _PT_DEVICE, "one per device named, in the order named (one per card and group)"
        ),
        "notes": _STRS,
    },
)

#: Schema id -> JSON Schema of that document; each is a tree of its own, with no shared parts.
SCHEMAS: dict[str, Schema] = {
    s["title"]: copy.deepcopy(s)
    for s in (
        _GROUPS_DOC,
        _SIMULATION_DOC,
        _CHECK_DOC,
        _SNAPSHOT_DOC,
        _SHOW_DOC,
        _EXPLAIN_DOC,
        _WHATIF_DOC,
        _ORDERS_DOC,
        _VM_DOC,
        _PASSTHROUGH_DOC,
    )
}


# ---------------------------------------------------------------------- validate
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    for name, types in _TYPES.items():
        if isinstance(value, types):
            return name
    return type(value).__name__


def _is(value: object, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key)}]"


def _distance(errors: list[str], path: str) -> tuple[bool, int]:
    """How far an alternative of oneOf/anyOf is: a wrong type or const is farthest."""
    return errors[0].startswith(f"{path}: expected"), len(errors)


def _check(value: Any, schema: Schema, root: Schema, path: str, strict: bool) -> list[str]:
    if "$ref" in schema:
        ref = str(schema["$ref"])
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"unsupported $ref {ref!r}: only #/$defs/NAME")
        return _check(value, root["$defs"][ref[len("#/$defs/") :]], root, path, strict)
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, k) for k in kinds):
            return [f"{path}: expected {' or '.join(kinds)}, got {_type_name(value)}"]
    if "const" in schema and value != schema["const"]:
        return [f"{path}: expected {json.dumps(schema['const'])}, got {json.dumps(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {json.dumps(value)} is not one of {json.dumps(schema['enum'])}"]
    errors: list[str] = []
    for word in ("oneOf", "anyOf"):
        if word in schema:
            results = [_check(value, s, root, path, strict) for s in schema[word]]
            passed = sum(not r for r in results)
            if passed == 0:  # the problems of the closest alternative
                closest: list[str] = min(results, key=lambda r: _distance(r, path))
                errors += closest
            elif word == "oneOf" and passed > 1:
                errors.append(f"{path}: matches {passed} alternatives of oneOf, not exactly one")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{path}: {json.dumps(value)} does not match {schema['pattern']}")
    if _is(value, "number") and "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} is less than {schema['minimum']}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += _check(item, schema["items"], root, f"{path}[{i}]", strict)
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties", {})
        errors += [
            f"{path}: missing required key {json.dumps(k)}"
            for k in schema.get("required", ())
            if k not in value
        ]
        extra = schema.get("additionalProperties", not (strict and props))
        for k, v in value.items():
            where = _key(path, k)
            if "propertyNames" in schema:
                errors += _check(k, schema["propertyNames"], root, f"{where} (key)", strict)
            if k in props:
                errors += _check(v, props[k], root, where, strict)
            elif extra is False:
                errors.append(f"{path}: unexpected key {json.dumps(k)}")
            elif isinstance(extra, dict):
                errors += _check(v, extra, root, where, strict)
    return errors


def validate(doc: object, schema_id: str, *, strict: bool = False) -> list[str]:
    """The problems of ``doc`` (parsed JSON) against :data:`SCHEMAS` ``[schema_id]``.

    Args:
        doc: the document.
        schema_id: e.g. ``"iommugroups.show/1"``.
        strict: also report keys the schema does not declare (an object
            schema with ``properties`` and no ``additionalProperties`` is
            then closed).

    Returns:
        One ``"path: problem"`` string per problem (``$`` is the document,
        ``$.groups[0].members[1].acs`` a value inside it); empty when it is valid.

    Raises:
        KeyError: no such schema.
    """
    schema = SCHEMAS[schema_id]
    return _check(doc, schema, schema, "$", strict)
