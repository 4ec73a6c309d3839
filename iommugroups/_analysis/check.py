"""``check``: compare the groups a real kernel made with what the rules say.

The pure core of ``iommugroups check``. Input: a :class:`~iommugroups.Topology`
(the machine) and :class:`Grouping` (the groups a running kernel made,
from a listing, sysfs or a ``dmesg`` log), plus the facts the reader could not
establish (:class:`Unknown`, and :attr:`PciFunction.unknown`). Output: a
:class:`CheckReport` with one verdict per device.

Theory of operation
-------------------
The *prediction* is the canonical grouping (:func:`canonical_groups`): every
device grouped parents first at device add, as x86 always does and arm64 does
since v6.15 (R10.1). It is the grouping the rules R4/R5 ask for, whatever the
probe order. Devices are compared by *membership*, never by group id (ids
depend on the order devices were added, R1.1). Names are compared in full
form (``dddd:bb:dd.f``; ``bb:dd.f`` is domain 0). SR-IOV VFs the observation
names and the topology does not list, but a PF's SR-IOV capability places,
are added to the topology first (:meth:`Topology.with_vfs`): VFs are enabled
at run time.

A device is **comparable** when it is in the topology, the prediction gives it
a group and the kernel gave it one. For a comparable device ``d`` let

* ``O`` = the comparable devices in ``d``'s observed group;
* ``R`` = the comparable devices in ``d``'s canonical group *as read*: every
  fact a reader could not establish taken as absent (an unknown ACS
  capability is no ACS, an unknown PCIe capability is conventional PCI), the
  library's default;
* ``I`` = the same under the *isolating* assumption: every device with an
  unknown ``"acs"`` (or ``"pcie"``, or ``"config"``) fact given a fully
  enabled ACS capability (``SV|RR|CR|UF`` in capability and control) and,
  when its PCIe type is unknown, the most isolating type for its place (root
  port / downstream port for a bridge, RCiEP / endpoint otherwise); then
  intersected with ``R``.

Isolation only ever *splits* groups: each rule that joins groups (R3.4
aliases, R4.2 upstream walk, R5.2 function aliases) requires a device *not*
to be isolated, so with more isolation every group is a subset of its
as-read group (``tests/test_check.py`` checks this property on random
topologies). The two assumptions are therefore the extremes, and every
assignment of the unknown facts gives ``d`` a group between ``I`` and ``R``.
That is what makes two recomputations enough (linear in the topology, not
one per unknown device). The verdicts:

* **split** (``I - O`` not empty): devices the rules put with ``d`` under
  *every* assumption were put elsewhere by the kernel: an isolation hole,
  the seed thread's bug (``has_split``; exit status 1 in the CLI).
* **merged** (``O - R`` not empty, and not split; a device that is both is
  reported split, with ``merged_with`` filled in): the kernel put ``d`` with
  devices the rules isolate it from under every assumption: a quirk or a
  kernel behaviour the model does not know (safe, but a model gap).
* **unknown**: the verdict depends on missing data:

  - ``I != R`` and neither of the above: the grouping of ``d`` changes with
    the unknown facts of the devices named in ``depends_on`` (under one
    assumption the observation is correct, under the other it is not);
  - the device is missing from one side: in the topology (and given a
    group by the rules) but in no observed group (e.g. on arm64 IORT/DT
    before v6.15 a device gets a group only when its driver probes, R7.8, so
    a device without a driver has none); or the rules give it no group (no
    IOMMU translates it, R3.8; or an SMMUv3 stream-id clash, R7.9) while the
    kernel did;
  - its real DMA device is a VMD endpoint the input does not name (R3.1),
    or it shares a canonical group with such a device.

* **ok** otherwise: ``O == R == I``, or no group on either side.

A device the kernel grouped that the topology does not list gets no verdict:
it is reported in :attr:`CheckReport.not_listed` (a function the firmware
hides, such as Intel's P2SB, which the kernel adds and removes again, R11.7;
a device removed since; a platform device when the topology comes from
``lspci``).

On x86 (:func:`~iommugroups._kernel.x86.platform_iommu`), an observation
that says of every device whether it has a group (``lspci -v``/``-vv``,
sysfs, a snapshot) also says which devices no IOMMU translates: an x86
kernel groups every device an IOMMU translates when it is added, so a device
it left without a group is outside IVRS (AMD-Vi, R11.3) or every DMAR unit
(VT-d, R11.5). That is taken as a fact of the machine
(:attr:`Platform.untranslated`) before the prediction is made; an AMD IOMMU's
own function has no group by rule anyway (R11.2).

Members of ``d``'s canonical group that have no observed group do not change
``d``'s verdict (they get ``unknown`` themselves); ``d``'s reasons name them.
The evidence of a device that is not ok includes ``rules``: the trace of
``pci_device_group`` (:func:`pci_device_group` with ``trace=True``) for the
device, against the groups of the devices added before it in canonical order,
which says how it came to join its group (e.g. R4.2: the bridge above it is
not ACS-isolated; R5.2: a function of the same multifunction device).

When the observation is a kernel log, :mod:`iommugroups._analysis.reproduce`
says which strategies reproduce it (``reproduced_by``).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import attrs

from .._boot.strategies.registry import STRATEGIES
from .._kernel.acs import GROUPING_FACTS, isolating_reading
from .._kernel.canonical import canonical_groups
from .._kernel.groups import Grouping, device_sort_key
from .._kernel.model import IommuKind, PcieType, PciFunction, Topology, full_name
from .._kernel.pci_device_group import Step
from .._kernel.quirks import Quirks
from .._kernel.reading import Unknown
from .._kernel.version import KernelVersion
from .._kernel.x86 import platform_iommu, x86_view
from .names import listed
from .reproduce import Replay, Reproduction, replay_scenario, reproduce

__all__ = [
    "CHECK_SCHEMA",
    "assume_no_acs",
    "GROUPING_FACTS",
    "CheckReport",
    "DeviceCheck",
    "Merge",
    "NotListed",
    "Split",
    "Verdict",
    "check",
    "isolating_topology",
    "untranslated_from_observation",
]


def __dir__() -> list[str]:
    return __all__


#: The ``schema`` value of :meth:`CheckReport.to_json`.
CHECK_SCHEMA = "iommugroups.check/1"

_NO_GROUP_HINT = (
    "the kernel gave it no group, or the input does not list it (no IOMMU translates "
    "it, as for an AMD IOMMU's own PCI function; or, on arm64 IORT/DT before v6.15, "
    "no driver probed it, R7.8)"
)


class Verdict(str, enum.Enum):
    """The verdict on one device (see the module docstring)."""

    OK = "ok"
    SPLIT = "split"
    MERGED = "merged"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _steps(value: Iterable[Step]) -> tuple[Step, ...]:
    return tuple(value)


def _strs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _unknown_tuple(value: Iterable[Unknown]) -> tuple[Unknown, ...]:
    return tuple(value)


@attrs.frozen
class DeviceCheck:
    """The verdict on one device, with its evidence.

    Attributes:
        device: ``dddd:bb:dd.f`` or a platform device's name.
        verdict: see :class:`Verdict`.
        canonical_group: its group id in the canonical grouping (as read),
            ``None`` when the rules give it none or it is not in the topology.
        observed_group: its observed group id, ``None`` when not observed.
        must_share: the devices the rules put in its group under every
            assumption about unknown facts, itself included (one tuple shared
            by the group's devices, so a report stays linear in size).
        may_share: devices in its group only if the unknown facts are absent.
        split_from: observed devices it must share with that the kernel put
            in other groups (verdict ``split``).
        merged_with: observed devices in its group that the rules isolate it
            from (verdict ``merged``).
        depends_on: devices whose unknown facts its grouping depends on.
        rules: ``pci_device_group`` of the device in canonical order, traced:
            how it found (or did not find) the group it joins (R4, R5); only
            for devices whose verdict is not ``ok``.
        rules_if_isolating: the same with the unknown facts taken as
            isolating, when that changes its group (``may_share`` not empty).
        reasons: the verdict in words, and caveats.
    """

    device: str
    verdict: Verdict
    canonical_group: int | None = None
    observed_group: int | None = None
    must_share: tuple[str, ...] = attrs.field(default=(), converter=_names)
    may_share: tuple[str, ...] = attrs.field(default=(), converter=_names)
    split_from: tuple[str, ...] = attrs.field(default=(), converter=_names)
    merged_with: tuple[str, ...] = attrs.field(default=(), converter=_names)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_names)
    rules: tuple[Step, ...] = attrs.field(default=(), converter=_steps)
    rules_if_isolating: tuple[Step, ...] = attrs.field(default=(), converter=_steps)
    reasons: tuple[str, ...] = attrs.field(default=(), converter=_strs)

    def to_json(self) -> dict[str, Any]:
        """The device's entry of :meth:`CheckReport.to_json`."""
        return {
            "device": self.device,
            "verdict": self.verdict.value,
            "canonical_group": self.canonical_group,
            "observed_group": self.observed_group,
            "must_share": list(self.must_share),
            "may_share": list(self.may_share),
            "split_from": list(self.split_from),
            "merged_with": list(self.merged_with),
            "depends_on": list(self.depends_on),
            "rules": [_step_json(s) for s in self.rules],
            "rules_if_isolating": [_step_json(s) for s in self.rules_if_isolating],
            "reasons": list(self.reasons),
        }


def _step_json(step: Step) -> dict[str, Any]:
    return {"rule": step.rule, "device": str(step.device), "text": step.text, "group": step.group}


Parts = tuple[tuple[int, tuple[str, ...]], ...]


@attrs.frozen
class Split:
    """A canonical group the kernel spread over several groups (an isolation hole).

    Attributes:
        canonical_group: its id in the canonical grouping.
        devices: all its members.
        parts: observed group id -> its members of this canonical group.
        not_observed: members in no observed group.
        uncertain: members whose separation depends on unknown facts.
    """

    canonical_group: int
    devices: tuple[str, ...]
    parts: Parts
    not_observed: tuple[str, ...] = ()
    uncertain: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The split's entry of :meth:`CheckReport.to_json`."""
        return {
            "canonical_group": self.canonical_group,
            "devices": list(self.devices),
            "parts": [{"observed_group": g, "devices": list(ds)} for g, ds in self.parts],
            "not_observed": list(self.not_observed),
            "uncertain": list(self.uncertain),
        }


@attrs.frozen
class Merge:
    """An observed group holding devices of several canonical groups.

    Attributes:
        observed_group: its id.
        devices: all its members (as observed).
        parts: canonical group id -> its members in this observed group.
    """

    observed_group: int
    devices: tuple[str, ...]
    parts: Parts

    def to_json(self) -> dict[str, Any]:
        """The merge's entry of :meth:`CheckReport.to_json`."""
        return {
            "observed_group": self.observed_group,
            "devices": list(self.devices),
            "parts": [{"canonical_group": g, "devices": list(ds)} for g, ds in self.parts],
        }


@attrs.frozen
class NotListed:
    """A device in the kernel's groups that the input does not list.

    Not a verdict: nothing is known of the device to predict its group. A
    hidden function (Intel's P2SB, R11.7) or one removed since, a non-PCI
    device when the topology comes from ``lspci``.

    Attributes:
        device: its name.
        observed_group: its group in the observation.
        why: in words.
    """

    device: str
    observed_group: int
    why: str

    def to_json(self) -> dict[str, Any]:
        """The device's entry of the report's ``not_listed``."""
        return {"device": self.device, "observed_group": self.observed_group, "why": self.why}


@attrs.frozen
class CheckReport:
    """What :func:`check` found.

    Attributes:
        devices: one verdict per device (topology and observed), in address
            order.
        splits: canonical groups the kernel separated (see :class:`Split`).
        merges: observed groups that join canonically isolated devices.
        canonical: the prediction (as read).
        observed: the observation.
        reproduction: per strategy, whether replaying ``observed.log``
            reproduces the observed groups (empty without a log).
        replay: the replayed scenario (``None`` without a log): an object
            holding the ``scenario`` (a :class:`~iommugroups.Scenario`), the
            stand-in ``drivers`` its actions load, the devices ``compared``
            and those ``left_out`` of the comparison, with why.
        notes: caveats about the whole check.
        not_listed: devices the kernel grouped that the input does not list
            (:class:`NotListed`); they have no verdict.
        details: what the reader could not establish that no verdict rests
            on (a name that fits several ids none of the quirk tables lists,
            a missing group line, a repaired paste), one :class:`Unknown`
            each.
        missing: each grouping fact (``"acs"``, ``"pcie"``, ``"config"``) ->
            the devices it is not known of; the verdicts that depend on them
            name them in ``depends_on``.
    """

    devices: tuple[DeviceCheck, ...]
    splits: tuple[Split, ...]
    merges: tuple[Merge, ...]
    canonical: Grouping
    observed: Grouping
    reproduction: tuple[Reproduction, ...] = ()
    replay: Replay | None = None
    notes: tuple[str, ...] = ()
    not_listed: tuple[NotListed, ...] = ()
    details: tuple[Unknown, ...] = attrs.field(default=(), converter=_unknown_tuple)
    missing: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)

    @property
    def has_split(self) -> bool:
        """Some devices the rules put together are in different observed groups."""
        return bool(self.splits)

    @property
    def unknown(self) -> tuple[DeviceCheck, ...]:
        """The devices whose verdict depends on missing data."""
        return tuple(d for d in self.devices if d.verdict is Verdict.UNKNOWN)

    @property
    def reproduced_by(self) -> tuple[str, ...]:
        """The strategies whose replay of the log ends with the observed groups."""
        return tuple(r.strategy for r in self.reproduction if r.reproduced)

    @property
    def verdict(self) -> Verdict:
        """``split`` if any, else ``merged`` if any, else ``unknown`` if any, else ``ok``."""
        seen = {d.verdict for d in self.devices}
        for v in (Verdict.SPLIT, Verdict.MERGED, Verdict.UNKNOWN):
            if v in seen:
                return v
        return Verdict.OK

    def device(self, name: str) -> DeviceCheck:
        """The verdict on ``name`` (an address in any form, or a platform name).

        Raises:
            KeyError: no such device in the report.
        """
        key = full_name(name)
        for d in self.devices:
            if d.device == key:
                return d
        raise KeyError(f"no device {name} in the check report")

    def counts(self) -> dict[str, int]:
        """Number of devices per verdict."""
        out = {v.value: 0 for v in Verdict}
        for d in self.devices:
            out[d.verdict.value] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        """The report as JSON data, schema ``"iommugroups.check/1"``.

        Keys:

        * ``schema``: ``"iommugroups.check/1"``.
        * ``verdict``: ``"split"``, ``"merged"``, ``"unknown"`` or ``"ok"``
          (the worst device verdict, in that order); ``has_split``: bool.
        * ``counts``: verdict -> number of devices.
        * ``devices``: per device, in address order: ``device``,
          ``verdict``, ``canonical_group`` and ``observed_group`` (int or
          null), ``must_share``, ``may_share``, ``split_from``,
          ``merged_with``, ``depends_on`` (lists of device names),
          ``rules`` (``{"rule", "device", "text", "group"}`` steps of
          ``pci_device_group``, only for devices whose verdict is not ok),
          ``rules_if_isolating`` (the same steps with the unknown facts taken
          as isolating, when that changes the device's group),
          ``reasons`` (strings).
        * ``splits``: ``{"canonical_group", "devices", "parts":
          [{"observed_group", "devices"}], "not_observed", "uncertain"}``.
        * ``merges``: ``{"observed_group", "devices", "parts":
          [{"canonical_group", "devices"}]}``.
        * ``unknown``: names of the devices whose verdict is unknown.
        * ``canonical``: the prediction, as ``Grouping.to_json``
          (``groups``, ``group_ids``, ``ungrouped``, ``strategy``).
        * ``observed``: ``{"source", "group_ids", "groups"}`` (groups in id
          order, as lists of names).
        * ``reproduction``: null without a log, else ``{"method",
          "scenario"`` (the replayed action lines), ``"left_out"`` (device ->
          why), ``"strategies": [{"strategy", "reproduced", "detail"}],
          "reproduced_by"}``.
        * ``notes``: strings.
        * ``not_listed``: ``{"device", "observed_group", "why"}`` for each
          device the kernel grouped that the input does not list (no verdict).
        * ``details``: ``{"device", "fact", "why"}``: what the input lacks
          that no verdict rests on.
        * ``missing``: grouping fact -> the devices it is not known of.

        Within one schema version keys are only ever added.
        """
        ids = sorted(self.observed.groups)
        reproduction: dict[str, Any] | None = None
        if self.replay is not None:
            reproduction = {
                "method": "replay of the log's probe order and drivers under each strategy; "
                "final partitions compared",
                "scenario": [str(a) for a in self.replay.scenario.actions],
                "left_out": dict(sorted(self.replay.left_out.items())),
                "strategies": [
                    {"strategy": r.strategy, "reproduced": r.reproduced, "detail": r.detail}
                    for r in self.reproduction
                ],
                "reproduced_by": list(self.reproduced_by),
            }
        return {
            "schema": CHECK_SCHEMA,
            "verdict": self.verdict.value,
            "has_split": self.has_split,
            "counts": self.counts(),
            "devices": [d.to_json() for d in self.devices],
            "splits": [s.to_json() for s in self.splits],
            "merges": [m.to_json() for m in self.merges],
            "unknown": [d.device for d in self.unknown],
            "canonical": self.canonical.to_json(),
            "observed": {
                "source": self.observed.source,
                "group_ids": ids,
                "groups": [[full_name(m) for m in self.observed.groups[g]] for g in ids],
            },
            "reproduction": reproduction,
            "notes": list(self.notes),
            "not_listed": [n.to_json() for n in self.not_listed],
            "details": [{"device": u.device, "fact": u.fact, "why": u.why} for u in self.details],
            "missing": {fact: list(names) for fact, names in self.missing.items()},
        }


# --------------------------------------------------------------------- helpers
class _Normaliser:
    """:func:`full_name`, leaving the topology's platform devices' names as they are."""

    def __init__(self, topology: Topology) -> None:
        self.platform = frozenset(p.name for p in topology.platform_devices)

    def __call__(self, name: str) -> str:
        return name if name in self.platform else full_name(name)


def _unknown_facts(
    topology: Topology, unknowns: Sequence[Unknown]
) -> tuple[dict[str, frozenset[str]], list[Unknown]]:
    """Per PCI function, the grouping facts not known (from both sources)."""
    facts: dict[str, set[str]] = {}
    for fn in topology.functions:
        f = fn.unknown & GROUPING_FACTS
        if f:
            facts[str(fn.address)] = set(f)
    notes: list[Unknown] = []
    if not unknowns:
        return {k: frozenset(v) for k, v in facts.items()}, notes
    names = {str(fn.address) for fn in topology.functions}
    for u in unknowns:
        if u.fact not in GROUPING_FACTS:
            notes.append(u)
            continue
        if not u.device:
            for n in names:
                facts.setdefault(n, set()).add(u.fact)
            continue
        name = full_name(u.device)
        if name not in names:
            notes.append(
                Unknown(
                    u.device, u.fact, f"{u.why} (not taken into account: no such PCI function)"
                )
            )
            continue
        facts.setdefault(name, set()).add(u.fact)
    return {k: frozenset(v) for k, v in facts.items()}, notes


def isolating_topology(topology: Topology, facts: Mapping[str, frozenset[str]]) -> Topology:
    """``topology`` with every unknown ACS/PCIe fact taken as isolating.

    Each function with unknown facts in ``facts`` (beyond its own
    :attr:`PciFunction.unknown`) is read as :func:`isolating_reading` reads
    it: a fully enabled ACS capability and, when its PCIe type is unknown,
    the most isolating type for its place. Quirks still apply first (R2.3
    step 1).
    """
    if not facts:
        return topology
    out: list[PciFunction] = []
    for fn in topology.functions:
        f = facts.get(str(fn.address))
        if f and not f <= fn.unknown:
            fn = attrs.evolve(fn, unknown=fn.unknown | f)
        out.append(isolating_reading(fn, topology) if f else fn)
    return topology.replace(functions=out)


def _traces(
    topology: Topology,
    grouping: Grouping | None,
    wanted: set[str],
    quirks: Quirks | None,
    kernel: KernelVersion | str | None = None,
) -> dict[str, tuple[Step, ...]]:
    """The ``pci_device_group`` trace of each wanted device, as the canonical grouping recorded it.

    ``grouping``: the canonical grouping of ``topology``, read when it
    recorded its decisions; else (or ``None``) the grouping is run again,
    recording them. Each device's call ran against the groups of the devices
    added before it (groups only grow, R1.3). Devices not grouped by
    ``pci_device_group`` (platform devices, SMMUv2 stream sharing) have no
    trace.
    """
    if not wanted:
        return {}
    decisions = grouping.decisions if grouping is not None else {}
    if not decisions:
        decisions = canonical_groups(topology, quirks=quirks, record=True, kernel=kernel).decisions
    out: dict[str, tuple[Step, ...]] = {}
    for name in wanted:
        d = decisions.get(name)
        if d is not None and d.pci is not None:
            out[name] = d.pci.steps
    return out


def _surely_unknown(topology: Topology, unknowns: Sequence[Unknown]) -> bool:
    """Some verdict is unknown whatever the kernel did: a grouping fact, a bridge, a slot's
    multifunction bit or a VMD endpoint the input lacks."""
    missing = GROUPING_FACTS | _DARK_FACTS.keys() | {"vmd"}
    return any(u.fact in missing for u in unknowns) or any(
        f.unknown & missing for f in topology.functions
    )


# ----------------------------------------------------------------------- check
def check(
    topology: Topology,
    observed: Grouping,
    *,
    unknowns: Sequence[Unknown] = (),
    quirks: Quirks | None = None,
    strategies: Iterable[str] | None = None,
    bridges_without_acs: bool = False,
    kernel: KernelVersion | str | None = None,
) -> CheckReport:
    """Compare the groups a kernel made with the canonical prediction, per device.

    Args:
        topology: the machine.
        observed: the groups the kernel made (with its log, when known).
        unknowns: facts a reader could not establish; those about ``"acs"``,
            ``"pcie"`` or ``"config"`` of a PCI function (or of the whole
            input, ``device=""``) are taken into account like
            :attr:`PciFunction.unknown`, others are listed in the notes.
        quirks: the quirk tables (default: the kernel's).
        strategies: the strategies to replay ``observed.log`` with (default:
            every strategy of the registry).
        bridges_without_acs: take each bridge the input lacks (a bus whose
            devices cannot sit on a root bus, fact ``"bridge"``) to be one
            without ACS, as ``assume_no_acs`` takes the functions whose ACS
            could not be read: every device below it then shares its group
            (R4.2), so a kernel that put them in different groups is a split.
        kernel: the kernel version the rules are those of (a version or a
            release string; default: the newest modelled, see
            :class:`~iommugroups.KernelVersion`).

    Returns:
        The report (see the module docstring for the definitions).

    Raises:
        KeyError: an unknown strategy name.

    >>> from iommugroups import PciFunction, PcieType, Topology
    >>> from iommugroups import Grouping
    >>> port = PciFunction("00:01.0", class_code=0x060400, header_type=1,
    ...                    pcie_type=PcieType.ROOT_PORT, secondary_bus=1)
    >>> nic = PciFunction("01:00.0", pcie_type=PcieType.ENDPOINT)
    >>> seen = Grouping({0: ("0000:00:01.0",), 1: ("0000:01:00.0",)})
    >>> report = check(Topology([port, nic]), seen)
    >>> report.has_split, report.device("01:00.0").split_from
    (True, ('0000:00:01.0',))
    """
    norm = _Normaliser(topology)
    observed_names = {norm(m) for members in observed.groups.values() for m in members}
    observed_names.update(norm(line.device) for line in observed.log)
    in_topology = {str(f.address) for f in topology.functions}
    # only a name the topology does not list can be a VF to add
    topology, added = topology.with_vfs([n for n in observed_names if n not in in_topology])
    topology, untranslated = untranslated_from_observation(topology, observed, observed_names)
    del observed_names, in_topology  # not held while the machine is grouped
    facts, details = _unknown_facts(topology, unknowns)
    # the decisions are recorded in this run when some verdict cannot be ok whatever the
    # kernel did (a fact is missing): its evidence needs them, and a second run is saved
    record = _surely_unknown(topology, unknowns)
    canon = canonical_groups(topology, quirks=quirks, kernel=kernel, record=record)
    notes: list[str] = []
    if added:
        notes.insert(
            0,
            f"SR-IOV VFs observed and added to the topology: {', '.join(added)} "
            "(placed as their PF's SR-IOV capability says)",
        )
    notes.extend(f"{c.why} (R11.8)" for c in topology.bus_conflicts())
    if untranslated:
        kind = platform_iommu(topology)
        table, rule = ("IVRS", "R11.3") if kind is IommuKind.AMD_VI else ("DMAR", "R11.5")
        them = "them" if len(untranslated) > 1 else "it"
        notes.insert(
            0,
            f"{kind.value if kind is not None else 'x86'}: the kernel gave "
            f"{listed(untranslated)} no group: no IOMMU translates {them} (the {table} table "
            f"leaves {them} out, {rule}), taken as a fact of this machine",
        )
    seen = _Observed(observed, norm)
    obs_of = seen.of
    iso_topology = isolating_topology(topology, facts)
    iso = canonical_groups(iso_topology, quirks=quirks, kernel=kernel) if facts else canon

    # address order (numeric), then platform devices by name
    topo_names = [str(a) for a in sorted(f.address for f in topology.functions)]
    topo_names += sorted(p.name for p in topology.platform_devices)
    notes.extend(seen.notes)

    results = _Judge(canon, iso, obs_of, seen, facts).judge(topo_names)
    del topo_names, iso
    _vmd_unknown(topology, canon, results)
    dark_facts = _bridge_unknown(topology, canon, results, unknowns, obs_of, bridges_without_acs)
    not_listed = tuple(
        NotListed(name, obs_of[name], _not_listed_why(name, topology))
        for name in sorted((n for n in obs_of if n not in results), key=device_sort_key)
    )

    # The evidence: how each device that is not ok came to its group, as the
    # grouping recorded it (a second, recorded run only when this one did not).
    wanted = {
        n
        for n, r in results.items()
        if r.verdict is not Verdict.OK and r.canonical_group is not None
    }
    for n, steps in _traces(topology, canon, wanted, quirks, kernel).items():
        results[n] = attrs.evolve(results[n], rules=steps)
    wanted = {n for n in wanted if results[n].may_share}
    for n, steps in _traces(iso_topology, None, wanted, quirks, kernel).items():
        results[n] = attrs.evolve(results[n], rules_if_isolating=steps)
    del iso_topology

    devices = tuple(results.values())  # topology in address order, then the others
    splits = _splits(canon, results, obs_of)
    merges = _merges(seen, results)
    del results

    reproduction: tuple[Reproduction, ...] = ()
    replay: Replay | None = None
    if observed.log:
        names = list(STRATEGIES) if strategies is None else list(strategies)
        replay = replay_scenario(topology, observed.log)
        reproduction = reproduce(topology, observed, replay, names, quirks=quirks, kernel=kernel)
    return CheckReport(
        devices=devices,
        splits=splits,
        merges=merges,
        canonical=canon,
        observed=observed,
        reproduction=reproduction,
        replay=replay,
        notes=tuple(notes),
        not_listed=not_listed,
        details=tuple(u for u in details if u.fact not in _DARK_FACTS),
        missing=_missing(
            {
                n: facts.get(n, frozenset()) | dark_facts.get(n, frozenset())
                for n in {*facts, *dark_facts}
            }
        ),
    )


def _missing(facts: Mapping[str, frozenset[str]]) -> dict[str, tuple[str, ...]]:
    """Fact -> the devices it is not known of (grouping facts only), in address order."""
    out: dict[str, list[str]] = {}
    for name in sorted(facts, key=device_sort_key):
        for fact in sorted(facts[name]):
            out.setdefault(fact, []).append(name)
    return {fact: tuple(names) for fact, names in sorted(out.items())}


#: Sources whose groups say of every device whether it has one (a device they
#: do not list has none); a log or a listing may be cut short.
_COMPLETE_SOURCES = frozenset({"lspci-vv", "lspci-v", "sysfs", "snapshot", "capture"})


def untranslated_from_observation(
    topology: Topology, observed: Grouping, observed_names: Collection[str] | None = None
) -> tuple[Topology, tuple[str, ...]]:
    """On x86, a device the kernel gave no group is one no IOMMU translates (R11.3, R11.5).

    An x86 kernel groups every device an IOMMU translates when it is added
    (R10.1), so when the observation says of each device whether it has a
    group (``lspci -v``/``-vv``, sysfs, a snapshot), one it lists without a
    group is outside IVRS or every DMAR unit: a fact of the machine, which
    the prediction then takes as given (:attr:`Platform.untranslated`).
    """
    if observed.source not in _COMPLETE_SOURCES or not observed.groups:
        return topology, ()
    if observed_names is None:
        observed_names = {full_name(m) for ms in observed.groups.values() for m in ms}
    if platform_iommu(topology) is None:
        return topology, ()
    view = x86_view(topology)
    missing = tuple(
        f.address
        for f in topology.functions
        if str(f.address) not in observed_names
        and f.address not in view.untranslated
        and "vmd" not in f.unknown
    )
    if not missing:
        return topology, ()
    platform = attrs.evolve(
        topology.platform, untranslated=(*topology.platform.untranslated, *missing)
    )
    return topology.replace(platform=platform), tuple(str(a) for a in sorted(missing))


def _vmd_unknown(topology: Topology, canon: Grouping, results: dict[str, DeviceCheck]) -> None:
    """R3.1: a device whose VMD endpoint is not known, and its canonical group, are unknown."""
    dark = [str(f.address) for f in topology.functions if "vmd" in f.unknown]
    if not dark:
        return
    affected: set[str] = set(dark)
    groups = {r.canonical_group for n in dark if (r := results.get(n)) is not None}
    for gid in groups:
        if gid is not None:
            affected.update(canon.groups[gid])
    why = (
        "its VMD endpoint (through which it does its DMA, R3.1) is not known"
        if len(dark) == 1
        else "the VMD endpoints of its domain (through which its devices do their DMA, R3.1) "
        "are not known"
    )
    of_them = f"{why} of {listed(sorted(dark))}"
    dark_set = frozenset(dark)
    for name in sorted(affected, key=device_sort_key):
        r = results.get(name)
        if r is None or r.verdict is Verdict.UNKNOWN:
            continue
        if r.canonical_group is None and r.observed_group is None:
            continue
        results[name] = attrs.evolve(
            r,
            verdict=Verdict.UNKNOWN,
            reasons=(*r.reasons, why if name in dark_set else of_them),
        )


#: Facts the input lacks that can only have added devices to a group, so that the
#: two readings of check (unknown facts absent, or isolating) do not bound it:
#: the bridge above a device (R4.2, R3.4), the multifunction bit of its slot
#: (R5.2). A device with one, and its canonical group, are unknown unless split.
_DARK_FACTS = {
    "bridge": "the bridge above it is not in the input",
    "multifunction": "whether its slot is a multifunction device is not known",
}


def _bridge_unknown(
    topology: Topology,
    canon: Grouping,
    results: dict[str, DeviceCheck],
    unknowns: Sequence[Unknown],
    obs_of: Mapping[str, int],
    without_acs: bool,
) -> dict[str, frozenset[str]]:
    """A device below a bridge the input lacks, and its canonical group, are unknown.

    The same for a function of a slot whose multifunction bit contradicts the
    functions the input shows (fact ``"multifunction"``), which R5.2 reads.
    The fact ``"bridge"`` (a reader's :func:`~iommugroups.Topology.missing_bridges`):
    the input shows devices on a bus no bridge claims that cannot be a root
    bus. The rules, given no bridge, put them alone on a root bus (R4.2); the
    kernel walked up through the bridge, which can only have added devices to
    their groups (R4.2, R3.4: a bridge joins, never separates). So a split
    found without the bridge stands; any other verdict depends on the bridge
    and is unknown. With ``without_acs`` the bridge is taken to have no ACS:
    everything below it shares its group, and a kernel that separated two of
    them made a split.
    """
    why: dict[str, str] = {}
    facts: dict[str, set[str]] = {}
    for u in unknowns:
        if u.fact in _DARK_FACTS and u.device:
            name = full_name(u.device)
            why.setdefault(name, u.why)
            if name in results:
                facts.setdefault(name, set()).add(u.fact)
    for f in topology.functions:
        if f.unknown & _DARK_FACTS.keys():
            facts.setdefault(str(f.address), set()).update(f.unknown & _DARK_FACTS.keys())
    dark = set(facts)
    if not dark:
        return {}
    for m in topology.missing_bridges():
        for a in m.devices:
            why.setdefault(str(a), m.why)
    by_name = topology.by_name()
    affected: dict[str, tuple[str, str]] = {}  # device -> (why, the device it is about)
    done: set[int] = set()  # canonical groups whose members have their entry
    for name in sorted(dark, key=device_sort_key):
        text = why.get(name, _DARK_FACTS[min(facts[name])])
        affected.setdefault(name, (text, name))
        r = results.get(name)
        gid = r.canonical_group if r is not None else None
        if gid is not None and gid not in done:  # its first dark member speaks for it
            done.add(gid)
            for other in canon.groups[gid]:
                affected.setdefault(other, (f"{text} (of {name}, in its canonical group)", name))
    tops: dict[str, list[str]] = {}
    if without_acs:
        for name in dark:
            fn = by_name.get(name)
            if fn is not None and "bridge" in fn.unknown:
                chain = topology.bridges_above(fn)
                top = chain[-1].address.bus if chain else fn.address.bus
                tops.setdefault(f"{fn.address.domain:04x}:{top:02x}", []).append(name)
    below_of = {n: members for members in tops.values() for n in members}
    for name, (text, about) in affected.items():
        r = results.get(name)
        if r is None or r.verdict is Verdict.SPLIT:
            continue  # a split without the bridge is a split with it
        if r.canonical_group is None and r.observed_group is None:
            continue
        og = obs_of.get(name)
        mates = below_of.get(name, [])
        apart = sorted(
            (m for m in mates if m in obs_of and og is not None and obs_of[m] != og),
            key=device_sort_key,
        )
        if apart:
            parts = sorted({obs_of[m] for m in apart})
            results[name] = attrs.evolve(
                r,
                verdict=Verdict.SPLIT,
                split_from=tuple(apart),
                reasons=(
                    f"{text}; taken as a bridge without ACS (--assume-no-acs), it puts "
                    f"{listed(apart)} in its group (R4.2), which the kernel put in "
                    f"group{'s' if len(parts) > 1 else ''} {', '.join(map(str, parts))}: "
                    "an isolation hole",
                ),
            )
            continue
        results[name] = attrs.evolve(
            r,
            verdict=Verdict.UNKNOWN,
            depends_on=tuple(sorted({*r.depends_on, about}, key=device_sort_key)),
            reasons=(*r.reasons, f"{text}: its group depends on it"),
        )
    return {name: frozenset(f) for name, f in facts.items()}


#: Where Intel's Primary-to-Sideband bridge sits (``p2sb.c``: 1f.1; 0d.0, and
#: the SPI controller 0d.2 it brings along, on Goldmont): R11.7.
_P2SB = frozenset({"0000:00:1f.1", "0000:00:0d.0", "0000:00:0d.2"})


def _not_listed_why(name: str, topology: Topology) -> str:
    if name in _P2SB and platform_iommu(topology) is IommuKind.VTD:
        return (
            "the input does not list it: the firmware hides this function (Intel's P2SB); "
            "the kernel adds it to read its BAR and removes it again, which gives it a "
            "group for a moment (R11.7)"
        )
    return "the input does not list it (a hidden or removed function, or a non-PCI device)"


class _Judge:
    """The verdict on each device of the topology (see the module docstring).

    Devices are judged one canonical group at a time. A group whose members
    all have one observed group that holds exactly them (among the comparable
    devices), with no unknown fact splitting it, is ok as a whole: each
    member's ``must_share`` is the group's own member tuple. Otherwise what
    depends only on a device's (canonical, isolating, observed) groups is
    worked out once per such triple, from sets of the group at hand, so that
    a large group costs linear time and the judge keeps no index of its own
    beyond the observed groups' sizes.
    """

    def __init__(
        self,
        canon: Grouping,
        iso: Grouping,
        obs_of: Mapping[str, int],
        observed: _Observed,
        facts: Mapping[str, frozenset[str]],
    ) -> None:
        self.canon = canon
        self.iso = iso
        self.obs_of = obs_of
        self.observed = observed
        self.facts = facts
        self._iso_of: dict[str, int] | None = None  # only when the readings differ
        self._grouped: frozenset[str] | None = None  # names with a canonical group
        self._obs_sets: dict[int, frozenset[str]] = {}  # comparable members, large groups
        # observed group -> how many of its members have a canonical group
        self.comparable_in: dict[int, int] = {}
        for members in canon.groups.values():
            for m in members:
                og = obs_of.get(m)
                if og is not None:
                    self.comparable_in[og] = self.comparable_in.get(og, 0) + 1

    def judge(self, names: Iterable[str]) -> dict[str, DeviceCheck]:
        """Every device's verdict, keyed by name in the order of ``names``."""
        results: dict[str, DeviceCheck | None] = dict.fromkeys(names)
        same_reading = self.iso is self.canon
        obs_of = self.obs_of
        for cg, members in self.canon.groups.items():
            og = obs_of.get(members[0])
            if (
                same_reading
                and og is not None
                and self.comparable_in.get(og) == len(members)
                and all(obs_of.get(m) == og for m in members)
            ):  # ok as a whole: observed as predicted, nothing unknown splits it
                for m in members:
                    results[m] = DeviceCheck(m, Verdict.OK, cg, og, must_share=members)
                continue
            triples: dict[tuple[int | str, int | None], _Triple] = {}
            for m in members:
                results[m] = self._device(m, cg, members, triples)
            del triples
        for name, r in results.items():
            if r is None:
                results[name] = self._ungrouped(name)
        return cast(dict[str, DeviceCheck], results)  # every value is set above

    def _ungrouped(self, name: str) -> DeviceCheck:
        og = self.obs_of.get(name)
        why = self.canon.ungrouped.get(name, "no group")
        if og is None:
            return DeviceCheck(name, Verdict.OK, reasons=(f"no group, as predicted: {why}",))
        return DeviceCheck(
            name,
            Verdict.UNKNOWN,
            observed_group=og,
            reasons=(f"the rules give it no group ({why}), but the kernel put it in group {og}",),
        )

    def _iso_group(self, name: str) -> int | None:
        if self.iso is self.canon:
            return None  # not used: the readings agree
        if self._iso_of is None:
            self._iso_of = {m: g for g, ms in self.iso.groups.items() for m in ms}
        return self._iso_of.get(name)

    def _comparable(self, og: int) -> frozenset[str]:
        """The members of observed group ``og`` that have a canonical group."""
        found = self._obs_sets.get(og)
        if found is not None:
            return found
        if self._grouped is None:
            self._grouped = frozenset(m for ms in self.canon.groups.values() for m in ms)
        grouped = self._grouped
        found = frozenset(d for d in self.observed.members(og) if d in grouped)
        if len(found) > 16:  # kept: a large group is read by many triples
            self._obs_sets[og] = found
        return found

    def _triple(
        self, name: str, members: tuple[str, ...], og: int | None, ik: int | None
    ) -> _Triple:
        obs_of = self.obs_of
        full_read = frozenset(members)
        if self.iso is self.canon:
            full_iso = full_read
        elif ik is not None:
            full_iso = frozenset(self.iso.groups[ik]) & full_read
        else:
            full_iso = frozenset({name})
        same_full = full_iso == full_read
        t = _Triple(
            must=members if same_full else tuple(d for d in members if d in full_iso),
            may=() if same_full else tuple(d for d in members if d not in full_iso),
            depends=() if same_full else tuple(d for d in members if d in self.facts),
            missing=tuple(d for d in members if d not in obs_of),
        )
        if og is None:
            return t
        read = frozenset(d for d in members if d in obs_of)
        iso = full_iso & read
        obs = self._comparable(og)
        t.split_from = tuple(d for d in members if d in iso and d not in obs)
        t.merged_with = _by_address(obs - read)
        t.same = iso == read
        if t.split_from:
            parts = sorted({obs_of[d] for d in t.split_from})
            t.reason = (
                f"the rules put it with {listed(t.split_from)}, which the kernel put "
                f"in group{'s' if len(parts) > 1 else ''} "
                f"{', '.join(map(str, parts))}: an isolation hole"
            )
        elif t.merged_with:
            t.reason = (
                f"the kernel put it with {listed(t.merged_with)}, which the rules "
                "isolate it from: a quirk or kernel behaviour the model does not know"
            )
        elif not t.same:
            t.reason = (
                f"its group depends on facts not known of {listed(t.depends)}: with "
                f"them absent its group is {listed(tuple(d for d in members if d in read))}; "
                f"with them isolating, {listed(tuple(d for d in members if d in iso))}; "
                f"the kernel's is {listed(_by_address(obs))}"
            )
        return t

    def _device(
        self,
        name: str,
        cg: int,
        members: tuple[str, ...],
        triples: dict[tuple[int | str, int | None], _Triple],
    ) -> DeviceCheck:
        og = self.obs_of.get(name)
        ik = self._iso_group(name)
        # the same readings: one triple per observed group; else per isolating group too
        key = (cg if self.iso is self.canon else ik if ik is not None else name, og)
        t = triples.get(key)
        if t is None:
            t = triples[key] = self._triple(name, members, og, ik)
        must, may = t.must, t.may
        if og is None:
            return DeviceCheck(
                name,
                Verdict.UNKNOWN,
                canonical_group=cg,
                must_share=must,
                may_share=may,
                depends_on=t.depends,
                reasons=(f"in canonical group {cg} but in no observed group: {_NO_GROUP_HINT}",),
            )
        if t.split_from:
            verdict = Verdict.SPLIT
        elif t.merged_with:
            verdict = Verdict.MERGED
        elif not t.same:
            verdict = Verdict.UNKNOWN
        else:
            verdict = Verdict.OK
        reasons = [t.reason] if t.reason else []
        if t.split_from and t.merged_with:
            reasons.append(
                f"the kernel also put it with {listed(t.merged_with)}, which it must not"
            )
        if t.missing:
            reasons.append(f"{listed(t.missing)}, of its canonical group, in no observed group")
        return DeviceCheck(
            name,
            verdict,
            canonical_group=cg,
            observed_group=og,
            must_share=must,
            may_share=may,
            split_from=t.split_from,
            merged_with=t.merged_with,
            depends_on=t.depends,
            reasons=reasons,
        )


def _by_address(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(names, key=device_sort_key))


@attrs.define
class _Triple:
    """What a (canonical, isolating, observed) group triple decides."""

    must: tuple[str, ...]
    may: tuple[str, ...]
    depends: tuple[str, ...]
    missing: tuple[str, ...]
    split_from: tuple[str, ...] = ()
    merged_with: tuple[str, ...] = ()
    same: bool = True
    reason: str = ""


class _Observed:
    """The observed groups by full name, each device once (its first group).

    A group whose names are all full and listed nowhere else is the
    observation's own member tuple; only the others are kept again.
    """

    def __init__(self, observed: Grouping, norm: _Normaliser) -> None:
        self.groups = observed.groups
        self.of: dict[str, int] = {}
        self.notes: list[str] = []
        self._changed: dict[int, tuple[str, ...]] = {}
        of = self.of
        for gid in sorted(observed.groups):
            raw = observed.groups[gid]
            kept: list[str] = []
            for m in raw:
                name = norm(m)
                if name in of:
                    if of[name] != gid:
                        self.notes.append(
                            f"{name} is listed in observed groups {of[name]} and {gid}; "
                            f"group {of[name]} is used"
                        )
                    continue
                of[name] = gid
                kept.append(name)
            if len(kept) != len(raw) or any(a is not b for a, b in zip(kept, raw, strict=True)):
                self._changed[gid] = tuple(kept)

    def members(self, gid: int) -> tuple[str, ...]:
        """The group's members by full name (without those listed in an earlier group)."""
        found = self._changed.get(gid)
        return found if found is not None else self.groups[gid]

    def ids(self) -> Iterator[int]:
        """The groups with members, in id order."""
        return (g for g in sorted(self.groups) if self.members(g))


def _splits(
    canon: Grouping, results: Mapping[str, DeviceCheck], obs_of: Mapping[str, int]
) -> tuple[Split, ...]:
    out: list[Split] = []
    for gid in sorted(canon.groups):
        members = canon.groups[gid]
        if not any(results[d].verdict is Verdict.SPLIT for d in members):
            continue
        parts: dict[int, list[str]] = {}
        for d in members:
            if d in obs_of:
                parts.setdefault(obs_of[d], []).append(d)
        out.append(
            Split(
                canonical_group=gid,
                devices=tuple(members),
                parts=tuple((g, tuple(ds)) for g, ds in sorted(parts.items())),
                not_observed=tuple(d for d in members if d not in obs_of),
                uncertain=tuple(d for d in members if results[d].verdict is Verdict.UNKNOWN),
            )
        )
    return tuple(out)


def _merges(seen: _Observed, results: Mapping[str, DeviceCheck]) -> tuple[Merge, ...]:
    out: list[Merge] = []
    merged = {r.observed_group for r in results.values() if r.verdict is Verdict.MERGED}
    for gid in sorted(g for g in merged if g is not None):
        members = seen.members(gid)
        parts: dict[int, list[str]] = {}
        for d in members:
            r = results.get(d)
            g = r.canonical_group if r is not None else None
            if g is not None:
                parts.setdefault(g, []).append(d)
        out.append(
            Merge(
                observed_group=gid,
                devices=_by_address(members),
                parts=tuple((g, _by_address(ds)) for g, ds in sorted(parts.items())),
            )
        )
    return tuple(out)


def assume_no_acs(
    topology: Topology, unknowns: Sequence[Unknown] = ()
) -> tuple[Topology, tuple[Unknown, ...]]:
    """Take every device whose ACS or PCIe type could not be read as PCIe without ACS.

    What a user states with ``check --assume-no-acs`` ("this platform does
    not support ACS", as the seed thread says of D05). A function whose
    ``acs`` fact is unknown gets no ACS capability; one whose ``pcie`` fact
    is unknown too becomes PCIe: a bridge on a root bus a root port, any
    other bridge a downstream port, anything else an endpoint. Without ACS,
    none of those bridges isolates (R2.3), so the verdicts that depended on
    the missing facts become definite. The ``acs`` and ``pcie`` unknowns are
    dropped; other unknowns stay.
    """
    changed = []
    for fn in topology.functions:
        if not fn.unknown & {"acs", "pcie"}:
            changed.append(fn)
            continue
        pcie_type = fn.pcie_type
        if "pcie" in fn.unknown or pcie_type is None:
            a = fn.address
            if fn.is_bridge:
                on_root = topology.is_root_bus(a.domain, a.bus)
                pcie_type = PcieType.ROOT_PORT if on_root else PcieType.DOWNSTREAM
            else:
                pcie_type = PcieType.ENDPOINT
        changed.append(
            attrs.evolve(fn, acs=None, pcie_type=pcie_type, unknown=fn.unknown - {"acs", "pcie"})
        )
    kept = tuple(u for u in unknowns if u.fact not in ("acs", "pcie"))
    return topology.replace(functions=changed), kept
