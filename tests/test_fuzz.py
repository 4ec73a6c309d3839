"""Fuzz every reader with mutated real inputs, driven by Hypothesis (issue 10).

The mutations, the readers and the judgement are those of ``tools/fuzz.py``
(see its docstring and ``docs/fuzzing.md``): each input is a real one under
``tests/data`` (or a window of one), mutated once (a byte flipped, a line or a
device block deleted, the text cut short, CR or CRLF line endings, a very long
line, many blank lines; a JSON/TOML value replaced or a key deleted; a sysfs
file deleted, truncated, replaced by a FIFO, a dangling or looping link).
Reading it, grouping it and checking it must:

* raise nothing but an :class:`~iommugroups.IommuGroupsError`;
* take bounded time (the long run counts inputs over 2 s; here the bound is
  looser, as CI machines are shared);
* never give two devices separate groups that the undamaged input's groups
  put together, unless a note (an unknown fact of either device, or of the
  whole input) says why: for the mutations that only remove, repeat or
  re-encode information (a flipped byte can describe a different, valid
  machine).

This is the quick profile (a few dozen inputs per reader, derandomized, so CI
always tries the same ones); ``python tools/fuzz.py --inputs 100000 --reader
all`` is the long run.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools import fuzz

READERS = fuzz.readers(random.Random(10), windows=40)
BASELINES = fuzz.Baselines()
#: Seconds one input may take here (the long run's bound is 2 s).
LIMIT = 10.0

QUICK = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("sysfs")
    return fuzz.sysfs_trees(base, random.Random(10), count=2)


def _judge(outcome: fuzz.Outcome) -> None:
    assert outcome.unexpected is None, outcome.unexpected
    assert outcome.seconds < LIMIT, (outcome.mutation, outcome.seconds)
    assert not outcome.gains, (outcome.mutation, outcome.gains)


@pytest.mark.parametrize("name", sorted(READERS))
@QUICK
@given(rnd=st.randoms(use_true_random=False))
def test_a_damaged_input_fails_closed(name: str, rnd: random.Random, tmp: Path) -> None:
    outcome, _text = fuzz.one(READERS[name], rnd, BASELINES, tmp)
    _judge(outcome)


@QUICK
@given(rnd=st.randoms(use_true_random=False))
def test_a_damaged_sysfs_tree_fails_closed(rnd: random.Random, trees: list[Path]) -> None:
    _judge(fuzz.one_sysfs(rnd, trees))


def test_every_reader_is_fuzzed() -> None:
    """The readers of ``read_text`` and ``read``, and the scenario files."""
    assert set(READERS) == {
        "lspci-vv",
        "lspci-tree",
        "lspci-hex",
        "listing",
        "dmesg",
        "capture",
        "arm64-capture",
        "snapshot",
        "topology-json",
        "topology-toml",
        "scenario",
    }
    assert all(r.seeds for r in READERS.values())


def test_the_judge_sees_a_silent_gain() -> None:
    """The isolation-gain check itself: a bridge taken away without a note is a gain."""
    text = (Path(__file__).parent / "data" / "oracle" / "designed" / "switch.lspci").read_text()
    before = fuzz.read_text(text)
    after = fuzz.read_text(text)
    assert before.topology is not None
    groups = fuzz.canonical_groups(before.topology)
    names = sorted(m for ms in groups.groups.values() for m in ms)
    apart = fuzz.Grouping({i: (m,) for i, m in enumerate(names)})
    together = [ms for ms in groups.groups.values() if len(ms) > 1]
    assert together
    assert fuzz.isolation_gains(groups, apart, after)
