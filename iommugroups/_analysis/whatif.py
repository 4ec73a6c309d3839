"""What if...? Apply hypothetical changes to a machine and compare its IOMMU groups.

:func:`what_if` applies a list of changes to a topology (and its quirk
tables), groups the machine before and after with
:func:`~iommugroups.canonical_groups`, and reports the difference: per
device, whether its group *split* (companions left), *merged* (companions
joined) or stayed the same, and per group how the groups of the two runs
match up by membership (group ids are not compared: they are allocation
order). Every change says whether it is available in an upstream kernel
(``upstream``), what it is (``label``) and what it costs (``cost``); the
result's :attr:`WhatIfResult.labels` lists the non-upstream ones with their
cost, so that a report never shows a patched kernel's groups without saying so.

>>> from iommugroups import examples
>>> r = what_if(examples.desktop(), ["acs-override=downstream,multifunction"])
>>> r.device("0000:02:00.0").status.value, r.device("0000:02:00.0").left
('split', ('0000:00:02.0',))
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
>>> r.device("0000:02:00.0").status.value, r.device("0000:02:00.0").left
('split', ('0000:00:02.0',))
>>> [(w.rule, w.how) for w in why_after(r) if w.device == "0000:02:00.0"]
[('R6.2', 'new')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
from .partition import (
    GROUP_KINDS,
    DeviceDiff,
    DeviceStatus,
    GroupMatch,
    _device_diffs,
    _group_matches,
    _sorted,
)

__all__ = ["WHATIF_SCHEMA", "WhatIfResult", "WhyAfter", "apply_changes", "what_if", "why_after"]

#: The ``schema`` value of :meth:`WhatIfResult.to_json`.
WHATIF_SCHEMA = "iommugroups.whatif/1"


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
    current: dict[PciAddress, PciAddress] = {f.address: f.address for f in topology.functions}
    removed: set[PciAddress] = set()
    notes: list[str] = []
    proposal: ProposalFacts | None = None
    for item in changes:
        change = _as_change(item)
        step = change.apply(topo, q)
        topo, q = step.topology, step.quirks
        proposal = step.proposal if step.proposal is not None else proposal
        notes.extend(step.notes)
        for orig, cur in list(current.items()):
            if cur in step.removed:
                removed.add(orig)
                del current[orig]
            elif cur in step.renamed:
                current[orig] = step.renamed[cur]
    renamed = {o: c for o, c in current.items() if o != c}
    return Applied(
        topo,
        q,
        renamed=renamed,
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
        devices: per device (every PCI function and platform device before,
            by name after), in address order.
        groups: groups matched across the change by membership.
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
    devices: tuple[DeviceDiff, ...]
    groups: tuple[GroupMatch, ...]
    renamed: Mapping[str, str]
    removed: tuple[str, ...]
    notes: tuple[str, ...] = ()
    proposal: str | None = None

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
        key = str(name)
        if not isinstance(name, PciAddress):
            try:
                key = str(PciAddress.parse(key))
            except InvalidAddress:
                pass
        for d in self.devices:
            if key in (d.device, d.was):
                return d
        raise UnknownDevice(f"no device {name} in the what-if result")

    def counts(self) -> dict[str, int]:
        """Device status -> number of devices."""
        out = {s.value: 0 for s in DeviceStatus}
        for d in self.devices:
            out[d.status.value] += 1
        return out

    def group_counts(self) -> dict[str, int]:
        """Group match kind -> number of matches."""
        out = dict.fromkeys(GROUP_KINDS, 0)
        for g in self.groups:
            out[g.kind] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        """The result as JSON data, schema ``"iommugroups.whatif/1"``.

        Keys:

        * ``schema``: ``"iommugroups.whatif/1"``.
        * ``upstream``: bool, every change is available upstream.
        * ``changes``: ``[{"kind", "text", "label", "upstream", "cost"}]`` in
          the order applied (``kind`` is the CLI key: ``acs-override``,
          ``config-acs``, ``set-acs``, ``remove-acs``, ``quirk``,
          ``remove``, ``move``).
        * ``labels``: ``[{"label", "cost"}]`` of the non-upstream changes.
        * ``counts``: device status -> number (``unchanged``, ``split``,
          ``merged``, ``regrouped``, ``removed``, ``now-grouped``,
          ``now-ungrouped``); ``group_counts``: match kind -> number.
        * ``devices``: per device, in address order: ``device`` (name
          after), ``was`` (name before if it moved, else null), ``status``,
          ``group_before``, ``group_after`` (int or null), ``left``,
          ``joined`` (names after), ``removed`` (names before).
        * ``groups``: ``[{"kind", "before": [{"group", "devices"}], "after":
          [{"group", "devices"}]}]``; kinds as :class:`GroupMatch`.
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

        Within one schema version keys are only ever added.
        """
        doc = {
            "schema": WHATIF_SCHEMA,
            "upstream": self.upstream,
            "changes": [c.to_json() for c in self.changes],
            "labels": [{"label": label, "cost": cost} for label, cost in self.labels],
            "counts": self.counts(),
            "group_counts": self.group_counts(),
            "devices": [d.to_json() for d in self.devices],
            "groups": [g.to_json() for g in self.groups],
            "renamed": dict(sorted(self.renamed.items())),
            "removed": list(self.removed),
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "notes": list(self.notes),
        }
        if self.proposal is not None:
            doc["grouping_after"] = self.after.strategy
            doc["facts"] = self.proposal
            doc["reasons"] = [w.to_json() for w in why_after(self)]
        return doc


def _device_names(topology: Topology) -> list[str]:
    return [str(f.address) for f in topology.functions] + [
        p.name for p in topology.platform_devices
    ]


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
    names = _device_names(topology)
    return WhatIfResult(
        changes=parsed,
        topology_before=topology,
        topology_after=applied.topology,
        before=before,
        after=after,
        devices=_device_diffs(before, after, names, fwd, removed),
        groups=_group_matches(before, after, fwd, removed),
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
