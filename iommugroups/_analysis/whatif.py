"""What if...? Apply hypothetical changes to a machine and compare its IOMMU groups.

:func:`what_if` applies a list of changes to a topology (and its quirk
tables), groups the machine before and after with
:func:`~iommugroups.canonical_groups`, and reports the difference: per
group, how the groups of the two runs match up by membership (group ids are
not compared: they are allocation order), each group change described once;
per device, its groups before and after and whether its group *split*
(companions left), *merged* (companions joined) or stayed the same, with how
many companions left and joined. Who they are is worked out on demand
(:meth:`WhatIfResult.companions`): the result is linear in the number of
devices however large the groups. Every change says whether it is available
in an upstream kernel (``upstream``), what it is (``label``) and what it
costs (``cost``); the result's :attr:`WhatIfResult.labels` lists the
non-upstream ones with their cost, so that a report never shows a patched
kernel's groups without saying so.

>>> from iommugroups import examples
>>> r = what_if(examples.desktop(), ["acs-override=downstream,multifunction"])
>>> d = r.device("0000:02:00.0")
>>> d.status.value, d.group_before, d.group_after, d.left_count
('split', 2, 10, 1)
>>> r.companions("0000:02:00.0").left
('0000:00:02.0',)
>>> r.groups[d.match].kind, r.groups[d.match].after
('split', ((2, ('0000:00:02.0',)), (10, ('0000:02:00.0',))))
>>> r.labels[0][0]
'pcie_acs_override=downstream,multifunction'

The changes are described in :mod:`iommugroups._analysis.changes`, their
command-line form in :func:`~iommugroups.parse_change`, and the kernel
parameters they model (``pcie_acs_override=``, ``pci=config_acs=``) on the
docs page "Kernel parameters".

The change ``reachable-set`` groups the machine after with the out-of-tree
ACS reachable-set proposal instead of mainline (``reachable_set_groups``);
:func:`why_after` then says, for every device whose group changed, which of
the proposal's rules (R6.1-R6.13) put it where it is.

>>> r = what_if(examples.desktop(), ["reachable-set=no-acs-enhanced"])
>>> r.device("0000:02:00.0").status.value, r.companions("0000:02:00.0").left
('split', ('0000:00:02.0',))
>>> [(w.rule, w.how) for w in why_after(r) if w.device == "0000:02:00.0"]
[('R6.2', 'new')]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import attrs

from .._errors import InvalidAddress, UnknownDevice
from .._kernel.canonical import canonical_groups
from .._kernel.groups import Grouping
from .._kernel.model import PciAddress, Topology
from .._kernel.quirks import DEFAULT_QUIRKS, Quirks, kernel_quirks
from .._kernel.reachable_set import ProposalFacts, ReachableDecisions, reachable_set_groups
from .._kernel.version import KernelVersion
from .change_grammar import parse_change
from .changes import Applied, Change
from .partition import Companions, DeviceDiff, DeviceStatus, GroupingDiff, GroupMatch, _sorted

__all__ = ["WHATIF_SCHEMA", "WhatIfResult", "WhyAfter", "apply_changes", "what_if", "why_after"]

#: The ``schema`` value of :meth:`WhatIfResult.to_json`.
WHATIF_SCHEMA = "iommugroups.whatif/2"


def _as_change(item: Change | str) -> Change:
    if isinstance(item, Change):
        return item
    return parse_change(item)


def apply_changes(
    topology: Topology,
    changes: Iterable[Change | str],
    *,
    quirks: Quirks | None = None,
) -> Applied:
    """Apply ``changes`` in order; strings are parsed with :func:`parse_change`.

    The result's ``renamed`` and ``removed`` are in terms of ``topology``'s
    addresses (a function moved twice maps to its last address).

    Raises:
        WhatIfError: a change cannot be parsed or applied.
    """
    topo = topology
    q = quirks if quirks is not None else DEFAULT_QUIRKS
    moved: dict[PciAddress, PciAddress] = {}  # original address -> current, moved ones only
    origin: dict[PciAddress, PciAddress] = {}  # current address -> original, moved ones only
    removed: set[PciAddress] = set()
    notes: list[str] = []
    proposal: ProposalFacts | None = None
    for item in changes:
        change = _as_change(item)
        step = change.apply(topo, q)
        topo, q = step.topology, step.quirks
        proposal = step.proposal if step.proposal is not None else proposal
        notes.extend(step.notes)
        for cur in step.removed:
            orig = origin.pop(cur, cur)  # a function that never moved is where it was
            moved.pop(orig, None)
            removed.add(orig)
        steps = [(origin.pop(cur, cur), new) for cur, new in step.renamed.items()]
        for orig, new in steps:
            if orig == new:
                moved.pop(orig, None)
            else:
                moved[orig] = origin[new] = new
    return Applied(
        topo,
        q,
        renamed=moved,
        removed=frozenset(removed),
        notes=tuple(notes),
        proposal=proposal,
    )


class WhyAfter(NamedTuple):
    """Why a device whose group changed is where it is after a ``reachable-set`` change.

    Attributes:
        device: its name after.
        status: its :class:`DeviceStatus` value.
        group: its group after (``None``: none).
        how: how the proposal's ``pci_device_group`` decided (``"new"``,
            ``"bridge"``, ``"hierarchy"``, ``"reachable"``, ... or
            ``"ungrouped"``).
        rule: the rule that decided (``R6.1``-``R6.13``, or a mainline rule
            for a device the proposal does not group).
        rules: every rule the decision rests on.
        text: the decision in words.
        missing: facts it rests on that are not known (read the way that
            isolates least).
    """

    device: str
    status: str
    group: int | None
    how: str
    rule: str
    rules: tuple[str, ...]
    text: str
    missing: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """One entry of the ``reasons`` of :meth:`WhatIfResult.to_json`."""
        return {
            "device": self.device,
            "status": self.status,
            "group": self.group,
            "how": self.how,
            "rule": self.rule,
            "rules": list(self.rules),
            "text": self.text,
            "missing": list(self.missing),
        }


@attrs.frozen
class WhatIfResult:
    """What :func:`what_if` found.

    Attributes:
        changes: the changes, in the order applied.
        topology_before, topology_after: the machine before and after.
        before, after: the canonical groups before and after.
        renamed: name before -> name after of every moved function.
        removed: names (before) of the functions taken out.
        notes: how the changes applied (devices a change skipped, ...).
        proposal: with a ``reachable-set`` change, the facts the proposal
            grouped the machine after with, as that change writes them
            (``""``: none stated); ``None``: both groupings are mainline's.
    """

    changes: tuple[Change, ...]
    topology_before: Topology
    topology_after: Topology
    before: Grouping
    after: Grouping
    renamed: Mapping[str, str]
    removed: tuple[str, ...]
    notes: tuple[str, ...] = ()
    proposal: str | None = None
    _diff: GroupingDiff = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        names = _device_names(self.topology_before)
        diff = GroupingDiff(self.before, self.after, names, self.renamed, self.removed)
        object.__setattr__(self, "_diff", diff)

    @property
    def devices(self) -> Sequence[DeviceDiff]:
        """Per device (every PCI function and platform device before, by its name after),
        in address order: its groups, status, match and how many companions changed."""
        return self._diff.devices

    @property
    def groups(self) -> Sequence[GroupMatch]:
        """The groups before and after matched by membership, each group change once
        (members listed once): changed groups in the order of their first member after,
        then the groups that are gone."""
        return self._diff.groups

    @property
    def labels(self) -> tuple[tuple[str, str], ...]:
        """``(label, cost)`` of every change that is **not upstream**."""
        return tuple((c.label, c.cost) for c in self.changes if not c.upstream)

    @property
    def upstream(self) -> bool:
        """Every change is available without an out-of-tree patch."""
        return all(c.upstream for c in self.changes)

    def device(self, name: str | PciAddress) -> DeviceDiff:
        """The entry of one device, by its name after (or before) the changes.

        Raises:
            UnknownDevice: no such device.
        """
        try:
            return self._diff.device(str(name))
        except (KeyError, InvalidAddress):
            raise UnknownDevice(f"no device {name} in the what-if result") from None

    def companions(self, name: str | PciAddress) -> Companions:
        """Who left one device's group, who joined it and who was taken out.

        Returns:
            A named tuple ``(left, joined, removed)``: the former companions
            now in other groups (or in none) and the new ones, by their names
            after, and the former companions taken out, by their names before,
            each sorted. Worked out from the device's two groups, in time
            linear in their sizes.

        Raises:
            UnknownDevice: no such device.
        """
        try:
            return self._diff.companions(str(name))
        except (KeyError, InvalidAddress):
            raise UnknownDevice(f"no device {name} in the what-if result") from None

    def counts(self) -> dict[str, int]:
        """Device status -> number of devices."""
        return self._diff.counts()

    def group_counts(self) -> dict[str, int]:
        """Group match kind -> number of matches."""
        return self._diff.group_counts()

    def to_json(self) -> dict[str, Any]:
        """The result as JSON data, schema ``"iommugroups.whatif/2"``.

        Keys:

        * ``schema``: ``"iommugroups.whatif/2"``.
        * ``upstream``: bool, every change is available upstream.
        * ``changes``: ``[{"kind", "text", "label", "upstream", "cost"}]`` in
          the order applied (``kind`` is the CLI key: ``acs-override``,
          ``config-acs``, ``set-acs``, ``remove-acs``, ``quirk``,
          ``remove``, ``move``, ``reachable-set``).
        * ``labels``: ``[{"label", "cost"}]`` of the non-upstream changes.
        * ``counts``: device status -> number (``unchanged``, ``split``,
          ``merged``, ``regrouped``, ``removed``, ``now-grouped``,
          ``now-ungrouped``); ``group_counts``: match kind -> number.
        * ``groups``: each group change once, ``[{"kind", "before": [{"group",
          "devices"}], "after": [{"group", "devices"}]}]`` (members by names
          before and after); kinds as :class:`GroupMatch`.
        * ``devices``: per device, in address order: ``device`` (name
          after), ``was`` (name before if it moved, else null), ``status``,
          ``group_before``, ``group_after`` (int or null), ``match`` (the
          index of its entry in ``groups``, null without a group on either
          side), ``left_count``, ``joined_count``, ``removed_count`` (how
          many former companions are now elsewhere, how many are new, how
          many were taken out: who they are is in its ``groups`` entry).
        * ``renamed``: name before -> name after; ``removed``: names before.
        * ``before``, ``after``: the groupings, as ``Grouping.to_json``
          (``groups``, ``group_ids``, ``ungrouped``, ``strategy``).
        * ``notes``: strings.

        With a ``reachable-set`` change, also:

        * ``grouping_after``: ``"reachable-set"``; ``facts``: the facts it
          assumed (its text, ``""`` for none);
        * ``reasons``: per device whose group changed, why it is where it is
          after, ``{"device", "status", "group", "how", "rule", "rules",
          "text", "missing"}``.

        Version 2 lists each device's former and new companions once, in its
        group change, instead of in every device's entry (version 1's
        ``left``, ``joined`` and ``removed`` lists, quadratic in a group's
        size). Within one schema version keys are only ever added.
        """
        return {k: list(v) if isinstance(v, Iterator) else v for k, v in self.json_items()}

    def json_items(self) -> Iterator[tuple[str, Any]]:
        """The keys and values of :meth:`to_json`, in order; ``groups``, ``devices``
        and ``reasons`` as iterators of their entries, made as they are read (to
        write a large result without holding it all as JSON data)."""
        yield "schema", WHATIF_SCHEMA
        yield "upstream", self.upstream
        yield "changes", [c.to_json() for c in self.changes]
        yield "labels", [{"label": label, "cost": cost} for label, cost in self.labels]
        yield "counts", self.counts()
        yield "group_counts", self.group_counts()
        yield "groups", (g.to_json() for g in self.groups)
        yield "devices", (d.to_json() for d in self.devices)
        yield "renamed", dict(sorted(self.renamed.items()))
        yield "removed", list(self.removed)
        yield "before", self.before.to_json()
        yield "after", self.after.to_json()
        yield "notes", list(self.notes)
        if self.proposal is not None:
            yield "grouping_after", self.after.strategy
            yield "facts", self.proposal
            yield "reasons", (w.to_json() for w in why_after(self))


def _device_names(topology: Topology) -> list[str]:
    """Every device's name: the PCI functions in address order, then the platform devices."""
    return [str(a) for a in sorted(f.address for f in topology.functions)] + sorted(
        p.name for p in topology.platform_devices
    )


def what_if(
    topology: Topology,
    changes: Iterable[Change | str],
    *,
    quirks: Quirks | None = None,
    kernel: KernelVersion | str | None = None,
) -> WhatIfResult:
    """Group ``topology`` before and after ``changes`` and compare.

    Args:
        topology: the machine as it is.
        changes: :class:`Change` values or their :func:`parse_change` text,
            applied in order.
        quirks: the quirk tables of the kernel as it is (default: the
            kernel's); changes that add quirks extend them.
        kernel: the kernel version modelled (default: the newest): the
            kernel's quirk tables as it has them, and its rules.

    Both groupings are :func:`~iommugroups.canonical_groups` (Linux v6.15+,
    x86 always), except that with a ``reachable-set`` change the machine
    after is grouped by the out-of-tree ACS reachable-set proposal, with its
    decisions recorded (see ``why_after``).

    Raises:
        WhatIfError: a change cannot be parsed or applied.
    """
    parsed = tuple(_as_change(c) for c in changes)
    base = quirks if quirks is not None else kernel_quirks(kernel)
    applied = apply_changes(topology, parsed, quirks=base)
    before = canonical_groups(topology, quirks=base, kernel=kernel)
    if applied.proposal is not None:
        after = reachable_set_groups(
            applied.topology, quirks=applied.quirks, record=True, facts=applied.proposal
        )
    else:
        after = canonical_groups(applied.topology, quirks=applied.quirks, kernel=kernel)
    fwd = {str(o): str(n) for o, n in applied.renamed.items()}
    removed = frozenset(str(a) for a in applied.removed)
    return WhatIfResult(
        changes=parsed,
        topology_before=topology,
        topology_after=applied.topology,
        before=before,
        after=after,
        renamed=fwd,
        removed=_sorted(removed),
        notes=applied.notes,
        proposal=applied.proposal.text if applied.proposal is not None else None,
    )


def why_after(result: WhatIfResult) -> tuple[WhyAfter, ...]:
    """With a ``reachable-set`` change: why each device whose group changed is where it is
    after, as the proposal decided, in address order (empty without one)."""
    decisions = result.after.decisions
    if result.proposal is None or not isinstance(decisions, ReachableDecisions):
        return ()
    out: list[WhyAfter] = []
    for d in result.devices:
        if d.status is DeviceStatus.UNCHANGED or d.device not in decisions:
            continue
        dec = decisions[d.device]
        outcome = decisions.outcome(d.device)
        rules = outcome.rules if outcome is not None else (dec.rule,)
        missing = tuple(sorted(outcome.missing)) if outcome is not None else ()
        why = WhyAfter(d.device, d.status.value, dec.group, dec.how, dec.rule, rules, dec.why)
        out.append(why._replace(missing=missing))
    return tuple(out)
