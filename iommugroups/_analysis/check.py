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

The report's size
-----------------
``O``, ``R`` and ``I`` are sets of the groups at hand, so a device's verdict
rests on a few numbers: in each canonical group, the members that share
their isolating group (a *part*, ``I`` of each of them) are counted per
observed group once, and ``I - O`` is empty exactly when the part's observed
members all are in ``d``'s observed group. A :class:`DeviceCheck` therefore
holds ``d``'s three group ids, ``|I - O|`` and ``|O - R|`` and the *kinds*
of its reasons, never a list of members: the report, and
``iommugroups.check/2`` (:meth:`CheckReport.to_json`, which lists each group
once), are linear in the number of devices however large a group is. The
members behind a verdict (``split_from``, ``merged_with``, ...) and the
reasons in words are worked out again from the groupings when read, for one
device in time linear in its groups; the text report reads them cut short
(:class:`ShortLists`), keeping what one device needed of its groups for the
next one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, cast

import attrs

from .._boot.strategies.registry import STRATEGIES
from .._bulk import paused_gc
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
    "REASON_KINDS",
    "assume_no_acs",
    "GROUPING_FACTS",
    "CheckReport",
    "Cut",
    "DeviceCheck",
    "Merge",
    "NotListed",
    "ShortLists",
    "Split",
    "Verdict",
    "check",
    "isolating_topology",
    "untranslated_from_observation",
]


def __dir__() -> list[str]:
    return __all__


#: The ``schema`` value of :meth:`CheckReport.to_json`.
CHECK_SCHEMA = "iommugroups.check/2"

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


#: The kinds of :attr:`DeviceCheck.reason_kinds`, each a sentence of
#: :attr:`DeviceCheck.reasons`:
#:
#: * ``no-group``: no group, as predicted (verdict ok);
#: * ``not-predicted``: the rules give it no group, the kernel gave it one (unknown);
#: * ``not-observed``: in a canonical group, in no observed group (unknown);
#: * ``split``: the rules put it with devices the kernel put in other groups;
#: * ``merged``: the kernel put it with devices the rules isolate it from;
#: * ``also-merged``: both (verdict split);
#: * ``depends``: its group depends on facts the input lacks (unknown);
#: * ``members-not-observed``: members of its canonical group are in no observed group;
#: * ``vmd``: its VMD endpoint, or that of a member of its canonical group, is not
#:   known (R3.1, unknown);
#: * ``bridge``, ``multifunction``: the bridge above a member of its canonical group
#:   is not in the input, or the multifunction bit of its slot is contradicted
#:   (:attr:`DeviceCheck.about` names that member; unknown);
#: * ``bridge-split``: a lost bridge taken to have no ACS (``--assume-no-acs``) puts
#:   it with devices the kernel put in other groups (split).
REASON_KINDS = (
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
)


def _steps(value: Iterable[Step]) -> tuple[Step, ...]:
    return tuple(value)


def _strs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _unknown_tuple(value: Iterable[Unknown]) -> tuple[Unknown, ...]:
    return tuple(value)


@attrs.frozen
class DeviceCheck:
    """The verdict on one device: its groups, how many devices differ, and why.

    A device's entry holds group ids, counts and reason kinds, never a list
    of its group's members, so that a report is linear in size however
    large a group is. Who the devices behind the verdict are is worked out
    from the groupings when read, by the properties :attr:`must_share`,
    :attr:`may_share`, :attr:`split_from`, :attr:`merged_with`,
    :attr:`depends_on`, :attr:`not_observed` and :attr:`reasons`, each in
    time linear in the sizes of the device's groups: for one device, not
    for every device of a large group (that takes time quadratic in its
    size; the text report reads them cut short, in linear time).

    Attributes:
        device: ``dddd:bb:dd.f`` or a platform device's name.
        verdict: see :class:`Verdict`.
        canonical_group: its group id in the canonical grouping (as read),
            ``None`` when the rules give it none or it is not in the topology.
        observed_group: its observed group id, ``None`` when not observed.
        isolating_group: its group id in :attr:`CheckReport.isolating` (the
            canonical grouping with the unknown facts taken as isolating; the
            same as ``canonical_group`` when no fact is unknown).
        split_count: how many devices it must share a group with the kernel
            put in other groups (``len(split_from)``).
        merged_count: how many devices of its observed group the rules
            isolate it from (``len(merged_with)``).
        reason_kinds: what :attr:`reasons` says, one kind per sentence, in the
            same order (:ref:`the kinds <json-check>`: ``split``, ``merged``,
            ``depends``, ``not-observed``, ...).
        about: for the kinds ``bridge``, ``multifunction`` and
            ``bridge-split``: the device whose missing fact it is.
        rules: ``pci_device_group`` of the device in canonical order, traced:
            how it found (or did not find) the group it joins (R4, R5); only
            for devices whose verdict is not ``ok``.
        rules_if_isolating: the same with the unknown facts taken as
            isolating, when that changes its group (``may_share`` not empty).
    """

    device: str
    verdict: Verdict
    canonical_group: int | None = None
    observed_group: int | None = None
    isolating_group: int | None = None
    split_count: int = 0
    merged_count: int = 0
    reason_kinds: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    about: str | None = None
    rules: tuple[Step, ...] = attrs.field(default=(), converter=_steps)
    rules_if_isolating: tuple[Step, ...] = attrs.field(default=(), converter=_steps)
    _judged: _Judged | None = attrs.field(default=None, init=False, eq=False, repr=False)

    def _lists(self) -> _Lists:
        return _Lists() if self._judged is None else _Cutter(self._judged, None).lists(self)

    @property
    def must_share(self) -> tuple[str, ...]:
        """The devices the rules put in its group under every assumption about the unknown
        facts, itself included: its canonical group's members in its isolating group."""
        return self._lists().must.head

    @property
    def may_share(self) -> tuple[str, ...]:
        """Devices in its canonical group only if the unknown facts are absent (the
        rest of its canonical group)."""
        return self._lists().may.head

    @property
    def split_from(self) -> tuple[str, ...]:
        """Devices it must share its group with that the kernel put in other groups
        (verdict ``split``)."""
        return self._lists().split_from.head

    @property
    def merged_with(self) -> tuple[str, ...]:
        """Devices in its observed group whose canonical group is another one, which the
        rules isolate it from (verdict ``merged``), by address."""
        return self._lists().merged_with.head

    @property
    def depends_on(self) -> tuple[str, ...]:
        """Devices whose unknown facts its grouping depends on."""
        return self._lists().depends_on.head

    @property
    def not_observed(self) -> tuple[str, ...]:
        """Members of its canonical group in no observed group."""
        return self._lists().not_observed.head

    @property
    def reasons(self) -> tuple[str, ...]:
        """The verdict in words, and caveats, one sentence per kind of :attr:`reason_kinds`."""
        if self._judged is None:
            return ()
        return _Cutter(self._judged, None).reasons(self)

    def to_json(self) -> dict[str, Any]:
        """The device's entry of :meth:`CheckReport.to_json`."""
        return {
            "device": self.device,
            "verdict": self.verdict.value,
            "canonical_group": self.canonical_group,
            "observed_group": self.observed_group,
            "isolating_group": self.isolating_group,
            "split_count": self.split_count,
            "merged_count": self.merged_count,
            "reason_kinds": list(self.reason_kinds),
            "about": self.about,
            "rules": [_step_json(s) for s in self.rules],
            "rules_if_isolating": [_step_json(s) for s in self.rules_if_isolating],
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
        isolating: the prediction with every unknown ACS/PCIe fact taken as
            isolating (a fully enabled ACS capability, the most isolating PCIe
            type for its place); ``canonical`` itself when
            no such fact is unknown.
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
        missing_why: the devices a verdict's missing bridge, multifunction
            bit or VMD endpoint is about (:attr:`DeviceCheck.about`, and the
            devices whose VMD endpoint is not known) -> why, in words.
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
    isolating: Grouping = attrs.field(
        default=attrs.Factory(lambda self: self.canonical, takes_self=True), eq=False
    )
    missing_why: Mapping[str, str] = attrs.field(factory=dict)
    _judged: _Judged | None = attrs.field(default=None, init=False, eq=False, repr=False)
    _index: Mapping[str, DeviceCheck] | None = attrs.field(
        default=None, init=False, eq=False, repr=False
    )

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
        index = self._index
        if index is not None:
            found = index.get(name)
            if found is None:
                try:
                    found = index.get(full_name(name))
                except ValueError:
                    found = None
        else:  # a report made by hand: look for it
            key = name if name in {d.device for d in self.devices} else full_name(name)
            found = next((d for d in self.devices if d.device == key), None)
        if found is None:
            raise KeyError(f"no device {name} in the check report")
        return found

    def counts(self) -> dict[str, int]:
        """Number of devices per verdict."""
        out = {v.value: 0 for v in Verdict}
        for d in self.devices:
            out[d.verdict.value] += 1
        return out

    def depending(self) -> dict[str, int]:
        """Each fact of :attr:`missing` -> how many ``unknown`` verdicts depend on a
        device it is not known of (one whose ``depends_on`` names such a device).

        Worked out once per group, not from each device's ``depends_on``.
        """
        if self._judged is None:
            return {
                fact: sum(1 for d in self.unknown if set(d.depends_on) & set(names))
                for fact, names in self.missing.items()
            }
        return self._judged.depending(self.devices, self.missing)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON data, schema ``"iommugroups.check/2"``.

        Keys:

        * ``schema``: ``"iommugroups.check/2"``.
        * ``verdict``: ``"split"``, ``"merged"``, ``"unknown"`` or ``"ok"``
          (the worst device verdict, in that order); ``has_split``: bool.
        * ``counts``: verdict -> number of devices.
        * ``devices``: per device, in address order: ``device``,
          ``verdict``, ``canonical_group``, ``observed_group`` and
          ``isolating_group`` (int or null: its group in ``canonical``,
          ``observed`` and ``isolating``), ``split_count`` and
          ``merged_count`` (how many devices the kernel separated it from
          that the rules put with it, and how many it put it with that the
          rules isolate it from), ``reason_kinds`` (see
          :ref:`json-check`), ``about`` (the device whose missing bridge
          or multifunction bit a reason is about, or null), ``rules``
          (``{"rule", "device", "text", "group"}`` steps of
          ``pci_device_group``, only for devices whose verdict is not ok),
          ``rules_if_isolating`` (the same steps with the unknown facts taken
          as isolating, when that changes the device's group).
        * ``splits``: ``{"canonical_group", "devices", "parts":
          [{"observed_group", "devices"}], "not_observed", "uncertain"}``.
        * ``merges``: ``{"observed_group", "devices", "parts":
          [{"canonical_group", "devices"}]}``.
        * ``unknown``: names of the devices whose verdict is unknown.
        * ``canonical``: the prediction, as ``Grouping.to_json``
          (``groups``, ``group_ids``, ``ungrouped``, ``strategy``).
        * ``isolating``: null when no ACS/PCIe fact is unknown (the
          ``isolating_group`` of each device is then its
          ``canonical_group``); else ``{"group_ids", "groups"}``: the
          prediction with every unknown fact taken as isolating.
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
        * ``missing_why``: device -> why, for each device whose missing
          bridge, multifunction bit or VMD endpoint a verdict rests on.

        Each group is listed once, every member once (in ``canonical``,
        ``isolating`` and ``observed``); a device's entry names its groups,
        so the document is linear in the number of devices however large a
        group is. A device's companions are set computations over its
        groups: ``must_share`` is its canonical group's members in its
        isolating group; ``split_from`` those of them in an observed group
        other than its own; ``merged_with`` the members of its observed
        group whose canonical group is another one. Version 1 listed them in
        each device's entry (``must_share``, ``may_share``, ``split_from``,
        ``merged_with``, ``depends_on``, and ``reasons`` naming them), which
        was quadratic in a group's size. Within one schema version keys are
        only ever added.
        """
        return {k: list(v) if isinstance(v, Iterator) else v for k, v in self.json_items()}

    def json_items(self) -> Iterator[tuple[str, Any]]:
        """The keys and values of :meth:`to_json`, in order; ``devices`` as an iterator
        of its entries, made as they are read (to write a large report without holding
        it all as JSON data)."""
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
        isolating = self.isolating
        yield "schema", CHECK_SCHEMA
        yield "verdict", self.verdict.value
        yield "has_split", self.has_split
        yield "counts", self.counts()
        yield "devices", (d.to_json() for d in self.devices)
        yield "splits", [s.to_json() for s in self.splits]
        yield "merges", [m.to_json() for m in self.merges]
        yield "unknown", [d.device for d in self.unknown]
        yield "canonical", self.canonical.to_json()
        if isolating is self.canonical:
            yield "isolating", None
        else:
            iso_ids = sorted(isolating.groups)
            yield (
                "isolating",
                {"group_ids": iso_ids, "groups": [list(isolating.groups[g]) for g in iso_ids]},
            )
        yield (
            "observed",
            {
                "source": self.observed.source,
                "group_ids": ids,
                "groups": [[full_name(m) for m in self.observed.groups[g]] for g in ids],
            },
        )
        yield "reproduction", reproduction
        yield "notes", list(self.notes)
        yield "not_listed", [n.to_json() for n in self.not_listed]
        yield (
            "details",
            [{"device": u.device, "fact": u.fact, "why": u.why} for u in self.details],
        )
        yield "missing", {fact: list(names) for fact, names in self.missing.items()}
        yield "missing_why", dict(self.missing_why)


# ------------------------------------------------------------ the lists, on demand
class Cut(NamedTuple):
    """The first names of a list (all of them, when not cut) and how many it has."""

    head: tuple[str, ...]
    total: int

    def text(self, none: str = "no other device") -> str:
        """For a sentence: ``a, b, c`` (:func:`listed`), or ``a, b and 3,997 more``."""
        more = self.total - len(self.head)
        if more <= 0:
            return listed(self.head) if self.head else none
        return f"{', '.join(self.head)} and {more:,} more"


_EMPTY = Cut((), 0)


@attrs.frozen
class _Lists:
    """The lists behind one device's verdict, each as a :class:`Cut`."""

    must: Cut = _EMPTY
    may: Cut = _EMPTY
    split_from: Cut = _EMPTY
    split_parts: Cut = _EMPTY  # the observed groups of split_from, ids as text
    merged_with: Cut = _EMPTY
    depends_on: Cut = _EMPTY
    not_observed: Cut = _EMPTY


class ShortLists:
    """The lists and reasons of many devices of one report, each cut to ``limit`` names.

    What the text report and the listing's marks read: what one device's
    lists need of its groups is worked out once per group (and per pair of
    canonical and observed group) and kept for the next device, so that
    reading every device of a report takes time linear in its size, however
    large a group is. Reading :attr:`DeviceCheck.reasons` of every device
    instead works each one out again, from whole groups.
    """

    def __init__(self, report: CheckReport, limit: int) -> None:
        self._cutter = _Cutter(report._judged, limit) if report._judged is not None else None

    def split_from(self, d: DeviceCheck) -> Cut:
        """The first ``limit`` devices of ``d.split_from``, and how many there are."""
        return _EMPTY if self._cutter is None else self._cutter.split_from(d)[0]

    def merged_with(self, d: DeviceCheck) -> Cut:
        """The first ``limit`` devices of ``d.merged_with``, and how many there are."""
        return _EMPTY if self._cutter is None else self._cutter.merged_with(d)

    def depends_on(self, d: DeviceCheck) -> Cut:
        """The first ``limit`` devices of ``d.depends_on``, and how many there are."""
        return _EMPTY if self._cutter is None else self._cutter.lists(d).depends_on

    def reasons(self, d: DeviceCheck) -> tuple[str, ...]:
        """``d.reasons`` with every list of names cut to ``limit`` (``a, b and 3,997 more``)."""
        return () if self._cutter is None else self._cutter.reasons(d)


class _Judged:
    """What :func:`check` worked out of the groupings, kept with the report.

    Per device the report keeps group ids, counts and reason kinds; the
    names behind them (:attr:`DeviceCheck.split_from`, ..., the reasons' words) are set
    computations over the groupings held here, made when read
    (:class:`_Cutter`).
    """

    def __init__(
        self,
        canon: Grouping,
        iso: Grouping,
        seen: _Observed,
        facts: Mapping[str, frozenset[str]],
    ) -> None:
        self.canon = canon
        self.iso = iso
        self.seen = seen
        self.facts = facts
        #: observed group -> how many of its members have a canonical group
        self.comparable_in: dict[int, int] = {}
        obs_of = seen.of
        for members in canon.groups.values():
            for m in members:
                og = obs_of.get(m)
                if og is not None:
                    self.comparable_in[og] = self.comparable_in.get(og, 0) + 1
        #: a device a reason of kind bridge or multifunction is about -> (fact, why)
        self.dark_why: dict[str, tuple[str, str]] = {}
        #: the devices whose VMD endpoint is not known (R3.1), and why
        self.vmd_dark: tuple[str, ...] = ()
        self.vmd_why = ""
        #: a device below a lost bridge taken without ACS -> every device below it
        self.below: dict[str, tuple[str, ...]] = {}
        self._iso_of: dict[str, int] | None = None
        self._canon_of: dict[str, int] | None = None

    def canonical_group(self, name: str) -> int | None:
        """The device's canonical group (by its full name), ``None`` without one."""
        if self._canon_of is None:
            self._canon_of = {m: g for g, ms in self.canon.groups.items() for m in ms}
        return self._canon_of.get(name)

    @property
    def same_reading(self) -> bool:
        """No fact is unknown: the isolating reading is the canonical grouping."""
        return self.iso is self.canon

    def iso_key(self, name: str, cg: int) -> int | str:
        """The part of its canonical group ``cg`` a device shares under every
        assumption: its isolating group's id (``cg`` when the readings agree), or
        its own name when the isolating reading gives it no group."""
        if self.iso is self.canon:
            return cg
        if self._iso_of is None:
            self._iso_of = {m: g for g, ms in self.iso.groups.items() for m in ms}
        ik = self._iso_of.get(name)
        return ik if ik is not None else name

    def depending(
        self, devices: Iterable[DeviceCheck], missing: Mapping[str, Sequence[str]]
    ) -> dict[str, int]:
        """:meth:`CheckReport.depending`, one pass over each canonical group."""
        lacks: dict[str, set[str]] = {}
        for fact, names in missing.items():
            for n in names:
                lacks.setdefault(n, set()).add(fact)
        out = dict.fromkeys(missing, 0)
        if not lacks:
            return out
        parts: dict[int, tuple[dict[int | str, int], frozenset[str]]] = {}
        for d in devices:
            if d.verdict is not Verdict.UNKNOWN:
                continue
            facts: set[str] = set()
            cg = d.canonical_group
            if cg is not None:
                found = parts.get(cg)
                if found is None:
                    members = self.canon.groups[cg]
                    sizes: dict[int | str, int] = {}
                    for m in members:
                        k = self.iso_key(m, cg)
                        sizes[k] = sizes.get(k, 0) + 1
                    of_group = frozenset(
                        f for m in members if m in self.facts for f in lacks.get(m, ())
                    )
                    found = parts[cg] = (sizes, of_group)
                sizes, of_group = found
                if sizes[self.iso_key(d.device, cg)] < len(self.canon.groups[cg]):
                    facts |= of_group
            if d.about is not None and _dark_kind(d) in _DARK_FACTS:
                facts |= lacks.get(d.about, set())
            for f in facts:
                out[f] += 1
        return out


def _dark_kind(d: DeviceCheck) -> str:
    """The kind of ``d``'s reason about a missing bridge or multifunction bit, or ``""``."""
    for kind in d.reason_kinds:
        if kind in _DARK_FACTS or kind == "bridge-split":
            return kind
    return ""


@attrs.define
class _Class:
    """The devices of a canonical group that share it under every assumption."""

    inside: tuple[str, ...]  # in the group's order (the group's own tuple when whole)
    observed: tuple[str, ...]  # those in an observed group
    tally: dict[int, int]  # observed group -> how many of them are in it
    parts: tuple[int, ...] | None = None  # the observed groups, sorted (when asked)


@attrs.define
class _Group:
    """A canonical group as the lists read it."""

    members: tuple[str, ...]
    read: tuple[str, ...]  # the members in an observed group
    read_in: dict[int, int]  # observed group -> how many members are in it
    missing: tuple[str, ...]  # the members in no observed group
    depends: tuple[str, ...]  # the members with unknown facts
    classes: dict[int | str, _Class]


class _Cutter:
    """The lists behind verdicts, cut to ``limit`` names (``None``: whole).

    What a device's lists need of its groups is kept per canonical group, per
    part of one (:class:`_Class`), per observed group and per pair, so that
    the lists of every device cost time linear in the report; the cut lists
    themselves are scanned only as far as ``limit`` names. A cutter that is
    not cut is made for one device.
    """

    def __init__(self, judged: _Judged, limit: int | None) -> None:
        self.j = judged
        self.limit = limit
        self._groups: dict[int, _Group] = {}
        self._kernel: dict[int, tuple[str, ...]] = {}
        self._may: dict[tuple[int, int | str], Cut] = {}
        self._split: dict[tuple[int, int | str, int], Cut] = {}
        self._merged: dict[tuple[int, int], Cut] = {}
        self._depends: dict[tuple[int, str], tuple[str, ...]] = {}
        self._below: dict[int, _Class] = {}

    # ------------------------------------------------------------- pieces
    def cut(self, names: Sequence[str]) -> Cut:
        if self.limit is None or len(names) <= self.limit:
            return Cut(tuple(names), len(names))
        return Cut(tuple(names[: self.limit]), len(names))

    def _scan(self, names: Iterable[str], skip: Callable[[str], bool], total: int) -> Cut:
        """The first ``limit`` of ``names`` not skipped; ``total`` of them in all."""
        head: list[str] = []
        if total:
            for x in names:
                if self.limit is not None and len(head) >= self.limit:
                    break
                if not skip(x):
                    head.append(x)
        return Cut(tuple(head), total)

    def group(self, cg: int) -> _Group:
        found = self._groups.get(cg)
        if found is not None:
            return found
        j = self.j
        members = j.canon.groups[cg]
        obs_of = j.seen.of
        read: list[str] = []
        read_in: dict[int, int] = {}
        missing: list[str] = []
        for m in members:
            og = obs_of.get(m)
            if og is None:
                missing.append(m)
            else:
                read.append(m)
                read_in[og] = read_in.get(og, 0) + 1
        inside: dict[int | str, list[str]] = {}
        if not j.same_reading:
            for m in members:
                inside.setdefault(j.iso_key(m, cg), []).append(m)
        classes: dict[int | str, _Class] = {}
        for key, ms in inside.items() if inside else [(cg, members)]:
            tally: dict[int, int] = {}
            seen: list[str] = []
            for m in ms:
                og = obs_of.get(m)
                if og is not None:
                    seen.append(m)
                    tally[og] = tally.get(og, 0) + 1
            whole = len(ms) == len(members)
            classes[key] = _Class(members if whole else tuple(ms), tuple(seen), tally)
        found = self._groups[cg] = _Group(
            members,
            tuple(read),
            read_in,
            tuple(missing),
            tuple(m for m in members if m in j.facts),
            classes,
        )
        return found

    def kernel(self, og: int) -> tuple[str, ...]:
        """The members of observed group ``og`` that have a canonical group, by address."""
        found = self._kernel.get(og)
        if found is None:
            group_of = self.j.canonical_group
            found = _by_address(m for m in self.j.seen.members(og) if group_of(m) is not None)
            self._kernel[og] = found
        return found

    def _parts(self, c: _Class, og: int | None) -> Cut:
        if c.parts is None:
            c.parts = tuple(sorted(c.tally))
        ids = [str(g) for g in c.parts[: (self.limit or len(c.parts)) + 1] if g != og]
        total = len(c.parts) - (1 if og in c.tally else 0)
        return Cut(tuple(ids[: self.limit] if self.limit is not None else ids), total)

    # -------------------------------------------------------------- lists
    def lists(self, d: DeviceCheck) -> _Lists:
        """The lists behind ``d``'s verdict."""
        j = self.j
        cg, name = d.canonical_group, d.device
        dark = _dark_kind(d)
        if cg is None:
            about = (d.about,) if d.about is not None and dark in _DARK_FACTS else ()
            return _Lists(depends_on=Cut(about, len(about)))
        g = self.group(cg)
        key = j.iso_key(name, cg)
        c = g.classes[key]
        whole = c.inside is g.members
        if whole:
            may = _EMPTY
            depends: tuple[str, ...] = ()
        else:
            may = self._may.get((cg, key), _EMPTY)
            if may is _EMPTY:
                may = self._scan(
                    g.members,
                    lambda m: j.iso_key(m, cg) == key,
                    len(g.members) - len(c.inside),
                )
                if self.limit is not None:
                    self._may[(cg, key)] = may
            depends = g.depends
        if d.about is not None and dark in _DARK_FACTS:
            depends = self._with_about(cg, whole, depends, d.about)
        split_from, split_parts = self.split_from(d)
        return _Lists(
            must=self.cut(c.inside),
            may=may,
            split_from=split_from,
            split_parts=split_parts,
            merged_with=self.merged_with(d),
            depends_on=self.cut(depends),
            not_observed=self.cut(g.missing),
        )

    def split_from(self, d: DeviceCheck) -> tuple[Cut, Cut]:
        """The devices ``d`` must share a group with that the kernel put in other groups,
        and those groups' ids."""
        j = self.j
        cg, og, name = d.canonical_group, d.observed_group, d.device
        if og is None or cg is None:
            return _EMPTY, _EMPTY
        if _dark_kind(d) == "bridge-split":
            return self._apart(name, og)
        key = j.iso_key(name, cg)
        c = self.group(cg).classes[key]
        found = self._split.get((cg, key, og), _EMPTY)
        if found is _EMPTY:
            obs_of = j.seen.of
            found = self._scan(
                c.observed, lambda m: obs_of[m] == og, len(c.observed) - c.tally.get(og, 0)
            )
            if self.limit is not None:
                self._split[(cg, key, og)] = found
        return found, self._parts(c, og)

    def merged_with(self, d: DeviceCheck) -> Cut:
        """The devices of ``d``'s observed group whose canonical group is another one."""
        j = self.j
        cg, og = d.canonical_group, d.observed_group
        if og is None or cg is None:
            return _EMPTY
        found = self._merged.get((cg, og), _EMPTY)
        if found is _EMPTY:
            group_of = j.canonical_group
            found = self._scan(
                self.kernel(og),
                lambda m: group_of(m) == cg,
                j.comparable_in.get(og, 0) - self.group(cg).read_in.get(og, 0),
            )
            if self.limit is not None:
                self._merged[(cg, og)] = found
        return found

    def _with_about(
        self, cg: int, whole: bool, depends: tuple[str, ...], about: str
    ) -> tuple[str, ...]:
        """``depends`` and the device a missing bridge or multifunction bit is about."""
        key = (cg if not whole else -1 - cg, about)
        found = self._depends.get(key)
        if found is None:
            found = _by_address({*depends, about})
            if self.limit is not None:
                self._depends[key] = found
        return found

    def _apart(self, name: str, og: int) -> tuple[Cut, Cut]:
        """The devices below the same lost bridge that the kernel put in other groups
        (``--assume-no-acs``), by address, and their observed groups."""
        mates = self.j.below.get(name, ())
        obs_of = self.j.seen.of
        c = self._below.get(id(mates))
        if c is None:
            seen = _by_address(m for m in mates if m in obs_of)
            tally: dict[int, int] = {}
            for m in seen:
                tally[obs_of[m]] = tally.get(obs_of[m], 0) + 1
            c = _Class(seen, seen, tally)
            if self.limit is not None:
                self._below[id(mates)] = c
        apart = self._scan(
            c.observed, lambda m: obs_of[m] == og, len(c.observed) - c.tally.get(og, 0)
        )
        return apart, self._parts(c, og)

    # ------------------------------------------------------------ reasons
    def reasons(self, d: DeviceCheck) -> tuple[str, ...]:
        """``d``'s reasons in words, one per kind, lists cut to ``limit`` names."""
        kinds = d.reason_kinds
        if not kinds:
            return ()
        j = self.j
        name, cg, og = d.device, d.canonical_group, d.observed_group
        lists = self.lists(d) if any(k in _LISTING for k in kinds) else _Lists()
        out: list[str] = []
        for kind in kinds:
            if kind == "no-group":
                out.append(f"no group, as predicted: {j.canon.ungrouped.get(name, 'no group')}")
            elif kind == "not-predicted":
                why = j.canon.ungrouped.get(name, "no group")
                out.append(
                    f"the rules give it no group ({why}), but the kernel put it in group {og}"
                )
            elif kind == "not-observed":
                out.append(f"in canonical group {cg} but in no observed group: {_NO_GROUP_HINT}")
            elif kind == "split":
                parts = lists.split_parts
                out.append(
                    f"the rules put it with {lists.split_from.text()}, which the kernel put "
                    f"in group{'s' if parts.total > 1 else ''} {parts.text()}: an isolation hole"
                )
            elif kind == "merged":
                out.append(
                    f"the kernel put it with {lists.merged_with.text()}, which the rules "
                    "isolate it from: a quirk or kernel behaviour the model does not know"
                )
            elif kind == "also-merged":
                out.append(
                    f"the kernel also put it with {lists.merged_with.text()}, which it must not"
                )
            elif kind == "depends":
                out.append(self._depends_text(d))
            elif kind == "members-not-observed":
                out.append(
                    f"{lists.not_observed.text()}, of its canonical group, in no observed group"
                )
            elif kind == "vmd":
                if name in j.vmd_dark:
                    out.append(j.vmd_why)
                else:
                    out.append(f"{j.vmd_why} of {self.cut(j.vmd_dark).text()}")
            elif kind in _DARK_FACTS:
                out.append(f"{self._dark_text(d)}: its group depends on it")
            elif kind == "bridge-split":
                parts = lists.split_parts
                out.append(
                    f"{self._dark_text(d)}; taken as a bridge without ACS (--assume-no-acs), it "
                    f"puts {lists.split_from.text()} in its group (R4.2), which the kernel put in "
                    f"group{'s' if parts.total > 1 else ''} {parts.text()}: an isolation hole"
                )
        return tuple(out)

    def _dark_text(self, d: DeviceCheck) -> str:
        about = d.about or d.device
        text = self.j.dark_why.get(about, ("", ""))[1]
        return text if about == d.device else f"{text} (of {about}, in its canonical group)"

    def _depends_text(self, d: DeviceCheck) -> str:
        """Its group with the unknown facts absent, with them isolating, and the kernel's."""
        cg, og = d.canonical_group, d.observed_group
        if cg is None or og is None:
            return ""
        g = self.group(cg)
        c = g.classes[self.j.iso_key(d.device, cg)]
        depends = g.depends if c.inside is not g.members else ()
        return (
            f"its group depends on facts not known of {self.cut(depends).text()}: with "
            f"them absent its group is {self.cut(g.read).text()}; with them isolating, "
            f"{self.cut(c.observed).text()}; the kernel's is {self.cut(self.kernel(og)).text()}"
        )


#: The reason kinds whose words name devices of the lists.
_LISTING = frozenset({"split", "merged", "also-merged", "members-not-observed", "bridge-split"})


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
        pci = d.pci if d is not None else None  # traced when read: once
        if pci is not None:
            out[name] = pci.steps
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
    with paused_gc():  # bulk building (see _bulk): the working state goes with the
        # call, before the collector is back, so it only ever sees the report
        return _check(
            topology, observed, unknowns, quirks, strategies, bridges_without_acs, kernel
        )


def _check(
    topology: Topology,
    observed: Grouping,
    unknowns: Sequence[Unknown],
    quirks: Quirks | None,
    strategies: Iterable[str] | None,
    bridges_without_acs: bool,
    kernel: KernelVersion | str | None,
) -> CheckReport:
    """:func:`check`'s body."""
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
    # the verdicts and what they rest on: many small acyclic values
    seen = _Observed(observed, norm)
    obs_of = seen.of
    iso_topology = isolating_topology(topology, facts)
    iso = canonical_groups(iso_topology, quirks=quirks, kernel=kernel) if facts else canon

    # address order (numeric), then platform devices by name
    topo_names = [str(a) for a in sorted(f.address for f in topology.functions)]
    topo_names += sorted(p.name for p in topology.platform_devices)
    notes.extend(seen.notes)

    judged = _Judged(canon, iso, seen, facts)
    judge = _Judge(judged)
    results = judge.judge(topo_names)
    del topo_names
    _vmd_unknown(topology, judged, results)
    dark_facts = _bridge_unknown(topology, judged, results, unknowns, bridges_without_acs)
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
        results[n] = _with_rules(results[n], steps, ())
    wanted &= judge.partial  # its group as read is larger than in the isolating reading
    for n, steps in _traces(iso_topology, None, wanted, quirks, kernel).items():
        r = results[n]
        results[n] = _with_rules(r, r.rules, steps)
    del iso_topology, wanted, judge

    devices = tuple(results.values())  # topology in address order, then the others
    splits = _splits(canon, results, obs_of)
    merges = _merges(seen, results)
    missing_why = {d.about: judged.dark_why[d.about][1] for d in devices if d.about is not None}
    missing_why.update(dict.fromkeys(judged.vmd_dark, judged.vmd_why))

    reproduction: tuple[Reproduction, ...] = ()
    replay: Replay | None = None
    if observed.log:
        names = list(STRATEGIES) if strategies is None else list(strategies)
        replay = replay_scenario(topology, observed.log)
        reproduction = reproduce(topology, observed, replay, names, quirks=quirks, kernel=kernel)
    report = CheckReport(
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
        isolating=iso,
        missing_why=dict(sorted(missing_why.items(), key=lambda kv: device_sort_key(kv[0]))),
    )
    object.__setattr__(report, "_judged", judged)  # the names behind the verdicts, on demand
    object.__setattr__(report, "_index", results)
    return report


def _with_rules(
    r: DeviceCheck, rules: tuple[Step, ...], if_isolating: tuple[Step, ...]
) -> DeviceCheck:
    """``r`` with its traces (as :func:`attrs.evolve` makes it, without its look-ups)."""
    d = DeviceCheck(
        r.device,
        r.verdict,
        r.canonical_group,
        r.observed_group,
        r.isolating_group,
        r.split_count,
        r.merged_count,
        r.reason_kinds,
        r.about,
        rules,
        if_isolating,
    )
    return _of(r._judged, d)


def _of(judged: _Judged | None, d: DeviceCheck) -> DeviceCheck:
    """``d``, whose lists and words are worked out from ``judged`` when read."""
    object.__setattr__(d, "_judged", judged)
    return d


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


def _vmd_unknown(topology: Topology, judged: _Judged, results: dict[str, DeviceCheck]) -> None:
    """R3.1: a device whose VMD endpoint is not known, and its canonical group, are unknown."""
    dark = [str(f.address) for f in topology.functions if "vmd" in f.unknown]
    if not dark:
        return
    affected: set[str] = set(dark)
    groups = {r.canonical_group for n in dark if (r := results.get(n)) is not None}
    for gid in groups:
        if gid is not None:
            affected.update(judged.canon.groups[gid])
    judged.vmd_why = (
        "its VMD endpoint (through which it does its DMA, R3.1) is not known"
        if len(dark) == 1
        else "the VMD endpoints of its domain (through which its devices do their DMA, R3.1) "
        "are not known"
    )
    judged.vmd_dark = tuple(sorted(dark))
    for name in affected:
        r = results.get(name)
        if r is None or r.verdict is Verdict.UNKNOWN:
            continue
        if r.canonical_group is None and r.observed_group is None:
            continue
        r = attrs.evolve(r, verdict=Verdict.UNKNOWN, reason_kinds=(*r.reason_kinds, "vmd"))
        results[name] = _of(judged, r)


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
    judged: _Judged,
    results: dict[str, DeviceCheck],
    unknowns: Sequence[Unknown],
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
    why: dict[str, tuple[str, str]] = {}  # device -> (fact, why)
    facts: dict[str, set[str]] = {}
    for u in unknowns:
        if u.fact in _DARK_FACTS and u.device:
            name = full_name(u.device)
            why.setdefault(name, (u.fact, u.why))
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
            why.setdefault(str(a), ("bridge", m.why))
    by_name = topology.by_name()
    affected: dict[str, str] = {}  # device -> the device whose fact it is about
    done: set[int] = set()  # canonical groups whose members have their entry
    for name in sorted(dark, key=device_sort_key):
        fact = min(facts[name])
        judged.dark_why[name] = why.get(name, (fact, _DARK_FACTS[fact]))
        affected.setdefault(name, name)
        r = results.get(name)
        gid = r.canonical_group if r is not None else None
        if gid is not None and gid not in done:  # its first dark member speaks for it
            done.add(gid)
            for other in judged.canon.groups[gid]:
                affected.setdefault(other, name)
    tops: dict[str, list[str]] = {}
    if without_acs:
        for name in dark:
            fn = by_name.get(name)
            if fn is not None and "bridge" in fn.unknown:
                chain = topology.bridges_above(fn)
                top = chain[-1].address.bus if chain else fn.address.bus
                tops.setdefault(f"{fn.address.domain:04x}:{top:02x}", []).append(name)
    # per lost bridge: the devices below it, and how many of them each observed group holds
    obs_of = judged.seen.of
    below: dict[str, tuple[tuple[str, ...], int, dict[int, int]]] = {}
    for members in tops.values():
        mates = tuple(members)
        tally: dict[int, int] = {}
        for mate in mates:
            if mate in obs_of:
                tally[obs_of[mate]] = tally.get(obs_of[mate], 0) + 1
        entry = (mates, sum(tally.values()), tally)
        for mate in mates:
            below[mate] = entry
    for name, about in affected.items():
        r = results.get(name)
        if r is None or r.verdict is Verdict.SPLIT:
            continue  # a split without the bridge is a split with it
        if r.canonical_group is None and r.observed_group is None:
            continue
        og = obs_of.get(name)
        found = below.get(name)
        apart = found[1] - found[2].get(og, 0) if found is not None and og is not None else 0
        if found is not None and apart:
            judged.below[name] = found[0]
            r = attrs.evolve(
                r,
                verdict=Verdict.SPLIT,
                split_count=apart,
                reason_kinds=("bridge-split",),
                about=about,
            )
            results[name] = _of(judged, r)
            continue
        r = attrs.evolve(
            r,
            verdict=Verdict.UNKNOWN,
            reason_kinds=(*r.reason_kinds, judged.dark_why[about][0]),
            about=about,
        )
        results[name] = _of(judged, r)
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
    devices), with no unknown fact splitting it, is ok as a whole. Otherwise
    the group is cut into the parts its members share under every assumption
    (their isolating groups), and each part's members are counted per
    observed group: a device's verdict then rests on a few numbers (how many
    devices it must share with are elsewhere, how many in its observed group
    belong to other canonical groups), so a large group costs linear time
    and a device's entry names no other device.
    """

    def __init__(self, judged: _Judged) -> None:
        self.j = judged
        #: devices whose part of their canonical group is smaller than the group
        self.partial: set[str] = set()
        self._kinds: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per kind list

    def judge(self, names: Iterable[str]) -> dict[str, DeviceCheck]:
        """Every device's verdict, keyed by name in the order of ``names``."""
        results: dict[str, DeviceCheck | None] = dict.fromkeys(names)
        j = self.j
        obs_of = j.seen.of
        for cg, members in j.canon.groups.items():
            og = obs_of.get(members[0])
            if (
                j.same_reading
                and og is not None
                and j.comparable_in.get(og) == len(members)
                and all(obs_of.get(m) == og for m in members)
            ):  # ok as a whole: observed as predicted, nothing unknown splits it
                for m in members:
                    results[m] = _of(j, DeviceCheck(m, Verdict.OK, cg, og, cg))
                continue
            self._group(cg, members, results)
        for name, r in results.items():
            if r is None:
                results[name] = self._ungrouped(name)
        return cast(dict[str, DeviceCheck], results)  # every value is set above

    def _ungrouped(self, name: str) -> DeviceCheck:
        j = self.j
        og = j.seen.of.get(name)
        ig = j.iso_key(name, -1) if not j.same_reading else None
        ig = ig if isinstance(ig, int) else None
        if og is None:
            kinds = self._kinds_of(("no-group",))
            return _of(j, DeviceCheck(name, Verdict.OK, None, None, ig, reason_kinds=kinds))
        kinds = self._kinds_of(("not-predicted",))
        return _of(j, DeviceCheck(name, Verdict.UNKNOWN, None, og, ig, reason_kinds=kinds))

    def _kinds_of(self, kinds: tuple[str, ...]) -> tuple[str, ...]:
        return self._kinds.setdefault(kinds, kinds)

    def _group(
        self, cg: int, members: tuple[str, ...], results: dict[str, DeviceCheck | None]
    ) -> None:
        """The verdicts on the members of canonical group ``cg``."""
        j = self.j
        obs_of = j.seen.of
        read = 0  # members in an observed group
        read_in: dict[int, int] = {}  # observed group -> members in it
        for m in members:
            og = obs_of.get(m)
            if og is not None:
                read += 1
                read_in[og] = read_in.get(og, 0) + 1
        some_missing = read < len(members)
        parts: dict[int | str, list[str]] = {}
        if j.same_reading:
            parts[cg] = list(members)
        else:
            for m in members:
                parts.setdefault(j.iso_key(m, cg), []).append(m)
        for key, inside in parts.items():
            if len(inside) < len(members):
                self.partial.update(inside)
            tally: dict[int, int] = {}  # observed group -> members of this part in it
            for m in inside:
                og = obs_of.get(m)
                if og is not None:
                    tally[og] = tally.get(og, 0) + 1
            seen = sum(tally.values())
            same = seen == read  # every observed member is in this part
            ig = key if isinstance(key, int) else None
            for m in inside:
                og = obs_of.get(m)
                if og is None:
                    kinds = self._kinds_of(("not-observed",))
                    d = DeviceCheck(m, Verdict.UNKNOWN, cg, None, ig, reason_kinds=kinds)
                    results[m] = _of(j, d)
                    continue
                split = seen - tally[og]  # it must share with them; the kernel separated
                merged = j.comparable_in[og] - read_in[og]  # the kernel joined other groups
                found: list[str] = []
                if split:
                    verdict = Verdict.SPLIT
                    found.append("split")
                    if merged:
                        found.append("also-merged")
                elif merged:
                    verdict = Verdict.MERGED
                    found.append("merged")
                elif not same:
                    verdict = Verdict.UNKNOWN
                    found.append("depends")
                else:
                    verdict = Verdict.OK
                if some_missing:
                    found.append("members-not-observed")
                d = DeviceCheck(
                    m, verdict, cg, og, ig, split, merged, self._kinds_of(tuple(found))
                )
                results[m] = _of(j, d)


def _by_address(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(names, key=device_sort_key))


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
