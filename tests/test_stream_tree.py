"""The SMMU stream-id tree (R7.9, R1.7): ``StreamTree`` against a plain model of it.

``StreamTree`` keeps its tables per IOMMU instance and per stream id (for
speed); the model below keeps one table keyed by ``(iommu, stream id)`` and
says what the docstrings of ``StreamTree`` say, operation by operation. Any
sequence of registrations, releases and remembered groups must answer every
question the same in both.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from iommugroups._kernel.fwspec import SmmuV2Group, StreamTree
from iommugroups._kernel.model import FwSpec

Key = tuple[str, int]


class _Model:
    """One table per fact, keyed by (iommu, stream id)."""

    def __init__(self) -> None:
        self.holder: dict[Key, str] = {}
        self.remembered: dict[Key, int] = {}
        self.users: dict[Key, int] = {}

    def clash(self, spec: FwSpec, device: str) -> tuple[int, str] | None:
        # R7.9: the first id another device holds
        for sid in spec.stream_ids:
            other = self.holder.get((spec.iommu, sid))
            if other is not None and other != device:
                return sid, other
        return None

    def smmu_v2_group(self, spec: FwSpec) -> SmmuV2Group:
        # R1.7: the last entry's group; two different ones: -EINVAL
        group = last = None
        for sid in spec.stream_ids:
            g = self.remembered.get((spec.iommu, sid))
            if group is not None and g is not None and group != g:
                return SmmuV2Group(True, None)
            group, last = g, sid
        if group is None or last is None:
            return SmmuV2Group(False, None)
        via = self.holder.get((spec.iommu, last))
        ids = {s for s in spec.stream_ids if self.holder.get((spec.iommu, s)) == via}
        return SmmuV2Group(False, group, via, tuple(sorted(ids)))

    def remember(self, spec: FwSpec, group: int) -> None:
        for sid in spec.stream_ids:
            self.remembered[(spec.iommu, sid)] = group

    def add(self, spec: FwSpec, device: str) -> None:
        for sid in spec.stream_ids:
            self.holder.setdefault((spec.iommu, sid), device)
            self.users[(spec.iommu, sid)] = self.users.get((spec.iommu, sid), 0) + 1

    def release(self, spec: FwSpec, device: str) -> None:
        for sid in spec.stream_ids:
            key = (spec.iommu, sid)
            if self.holder.get(key) == device:
                del self.holder[key]
            self.users[key] = self.users.get(key, 0) - 1
            if self.users[key] <= 0:
                del self.users[key]
                self.remembered.pop(key, None)


_SPEC = st.builds(
    FwSpec,
    st.sampled_from(["smmu0", "smmu1"]),
    st.lists(st.integers(0, 5), max_size=3).map(tuple),
)
_OP = st.tuples(
    st.sampled_from(["add", "release", "remember"]),
    _SPEC,
    st.sampled_from(["a", "b", "c"]),
    st.integers(0, 3),
)


@given(st.lists(_OP, max_size=30), st.lists(st.tuples(_SPEC, st.sampled_from("abc")), max_size=5))
def test_stream_tree_answers_as_the_model(
    ops: list[tuple[str, FwSpec, str, int]], asks: list[tuple[FwSpec, str]]
) -> None:
    tree, model = StreamTree(), _Model()
    for op, spec, device, group in ops:
        if op == "add":
            tree.add(spec, device)
            model.add(spec, device)
        elif op == "release":
            tree.release(spec, device)
            model.release(spec, device)
        else:
            tree.remember(spec, group)
            model.remember(spec, group)
        for ask, who in [*asks, (spec, device)]:
            assert tree.clash(ask, who) == model.clash(ask, who)
            assert tree.smmu_v2_group(ask) == model.smmu_v2_group(ask)
            for sid in range(6):
                assert tree.holder(ask.iommu, sid) == model.holder.get((ask.iommu, sid))


def test_a_clash_names_the_first_id_held_by_another_device() -> None:
    tree = StreamTree()
    tree.add(FwSpec("smmu0", (4, 7)), "0000:00:01.0")
    assert tree.clash(FwSpec("smmu0", (3, 7, 4)), "0000:00:02.0") == (7, "0000:00:01.0")
    assert tree.clash(FwSpec("smmu0", (4,)), "0000:00:01.0") is None  # its own
    assert tree.clash(FwSpec("smmu1", (4,)), "0000:00:02.0") is None  # another SMMU
