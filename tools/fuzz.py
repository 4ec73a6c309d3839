"""Fuzz every reader with mutated real inputs: no unhandled error, no hang, no silent isolation.

The inputs are the real ones under ``tests/data`` (and the docs' snapshots):
``lspci -vv`` pastes, ``lspci -t`` trees, ``lspci -xxxx`` dumps, group
listings, kernel logs, the oracle's x86 and arm64 captures, snapshots,
topology files (JSON and TOML), scenario files, and sysfs trees built from
the captures. Large ones are cut into windows (a few consecutive device
blocks, a subset of a capture's devices) so that a run reads many inputs.
Each input is mutated once:

* text: a byte flipped, the text truncated, lines deleted or duplicated, a
  device block deleted, every line of one kind deleted (``Bus:``, the PCIe
  capability, ``ACSCtl``...), CR or CRLF line endings, a very long line, many
  blank lines;
* JSON/TOML: a value replaced by one of another type (or a huge one), a key
  deleted, a device put in a second group;
* sysfs: a file deleted, truncated, flipped or replaced by a FIFO, a link
  dangling or looping, thousands of empty groups.

Then it is read (:func:`iommugroups.read_text`, :func:`iommugroups.read`,
:func:`iommugroups.loads_scenario_file`), its canonical groups are computed
and, when it carries the kernel's groups, it is checked
(:func:`iommugroups.check`). What is counted, per reader:

* **unexpected exceptions**: anything but an
  :class:`~iommugroups.IommuGroupsError` (each saved with its input);
* **slow inputs**: over ``--limit`` seconds (2 by default) to read, group and
  check;
* **silent isolation gains**: for the mutations that only remove, repeat or
  re-encode information (all but byte flips and replaced JSON values, which
  can describe a different, valid machine: a flipped ACS bit), two devices
  of both readings that the undamaged input's canonical groups put together
  and the damaged one's put apart, with no note (an unknown fact of either
  device, or of the whole input) saying why.

Run ``python tools/fuzz.py --inputs 100000 --reader all`` (the long run of
``docs/fuzzing.md``); ``--seed`` makes a run repeatable; ``--save DIR`` keeps
the input of each finding. The quick profile of the test suite
(``tests/test_fuzz.py``) drives the same mutations with Hypothesis.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from iommugroups import (  # noqa: E402
    Grouping,
    IommuGroupsError,
    Reading,
    canonical_groups,
    check,
    examples,
    read,
    read_text,
)
from iommugroups._io.scenario_file import dumps_scenario, loads_scenario_file  # noqa: E402
from iommugroups._io.topology_file import dumps_topology  # noqa: E402

DATA = ROOT / "tests" / "data"
DOCS_DATA = ROOT / "docs" / "_data"

#: Facts that say why a device's group may differ: a note on either device of a pair
#: (or on the whole input) explains an isolation gain.
EXPLAINING = frozenset(
    {
        "acs",
        "pcie",
        "config",
        "bridge",
        "multifunction",
        "vmd",
        "bus-numbers",
        "ids",
        "sriov",
        "class",
        "subsystem",
        "topology",
    }
)

#: Mutations that can describe a different, valid machine: not checked for gains.
FACT_CHANGING = frozenset({"flip", "replace", "sysfs-flip"})


# ------------------------------------------------------------------------ seeds
def _blocks(text: str) -> list[str]:
    return [b for b in re.split(r"\n[ \t]*\n", text) if b.strip()]


def _windows(texts: Sequence[str], rng: random.Random, count: int, most: int) -> list[str]:
    """``count`` runs of 1..``most`` consecutive blocks of the texts."""
    out: list[str] = []
    blocks = [_blocks(t) for t in texts]
    blocks = [b for b in blocks if b]
    for _ in range(count):
        bs = rng.choice(blocks)
        n = rng.randint(1, min(most, len(bs)))
        start = rng.randint(0, len(bs) - n)
        out.append("\n\n".join(bs[start : start + n]) + "\n")
    return out


def _files(*patterns: str) -> list[Path]:
    found: set[Path] = set()
    for pattern in patterns:
        found.update(p for p in DATA.glob(pattern) if p.is_file())
    return sorted(found)


def _read(paths: Sequence[Path]) -> list[str]:
    return [p.read_text(encoding="utf-8", errors="replace") for p in paths]


def _capture_window(data: dict[str, Any], rng: random.Random, most: int) -> dict[str, Any]:
    """A capture with a subset of its devices (a run of them, in address order)."""
    names = sorted(data["devices"])
    n = rng.randint(1, min(most, len(names)))
    start = rng.randint(0, len(names) - n)
    keep = set(names[start : start + n])
    out = dict(data)
    out["devices"] = {k: v for k, v in data["devices"].items() if k in keep}
    if isinstance(data.get("groups"), dict):
        groups = {g: [m for m in ms if m in keep] for g, ms in data["groups"].items()}
        out["groups"] = {g: ms for g, ms in groups.items() if ms}
    if isinstance(data.get("dmesg"), list):
        out["dmesg"] = [line for line in data["dmesg"] if any(k in line for k in keep)][:200]
    return out


def _topology_texts(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """Topology files (JSON and TOML) of the examples and of capture windows."""
    topos = [examples.desktop(), examples.d05()]
    captures = _files("oracle/captures/*.json", "oracle/designed/*.json")
    for _ in range(count):
        data = json.loads(rng.choice(captures).read_text())
        window = _capture_window(data, rng, 12)
        with contextlib.suppress(IommuGroupsError):
            r = read_text(json.dumps({"devices": window["devices"], "name": "w"}))
            if r.topology is not None:
                topos.append(r.topology)
    out: list[tuple[str, str]] = []
    for t in topos:
        out.append(("json", dumps_topology(t, "json")))
        out.append(("toml", dumps_topology(t, "toml")))
    return out


def _scenario_texts() -> list[str]:
    out = []
    for builtin in (False, True):
        sc = examples.d05_scenario(builtin)
        out.append(dumps_scenario(examples.d05(), sc, fmt="json"))
        out.append(dumps_scenario(examples.d05(), sc, fmt="toml"))
    return out


# -------------------------------------------------------------------- mutations
_NOISE = ["+", "-", ":", " ", "\t", "\r", "\n", "0", "f", "x", "[", "]", "{", '"', "\x00", "é"]
_KEYS = (
    "Bus: primary",
    "Capabilities: [",
    "Express",
    "ACSCap",
    "ACSCtl",
    "IOMMU group",
    "Kernel driver",
    "Control:",
    "Status:",
    "Subsystem:",
)


def _lines(text: str) -> list[str]:
    return text.split("\n")


def m_flip(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        if not chars:
            break
        i = rng.randrange(len(chars))
        chars[i] = rng.choice(_NOISE) if rng.random() < 0.7 else chr(rng.randrange(32, 127))
    return "".join(chars)


def m_truncate(text: str, rng: random.Random) -> str:
    return text[: rng.randrange(len(text) + 1)]


def m_delete_lines(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    for _ in range(rng.randint(1, 3)):
        if len(lines) > 1:
            del lines[rng.randrange(len(lines))]
    return "\n".join(lines)


def m_duplicate_line(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines.insert(i, lines[i])
    return "\n".join(lines)


def m_delete_block(text: str, rng: random.Random) -> str:
    """A device block deleted: one between blank lines; in TOML, an array-of-tables
    item with its sub-tables (deleting only its first table would give its
    sub-tables to the item before, a different machine)."""
    if "\n[[" in text or text.startswith("[["):
        parts = re.split(r"(?m)^(?=\[\[)", text)
        items = [i for i, p in enumerate(parts) if p.startswith("[[")]
        if len(items) > 1:
            parts[rng.choice(items)] = ""
        return "".join(parts)
    blocks = re.split(r"(\n[ \t]*\n)", text)
    real = [i for i in range(0, len(blocks), 2) if blocks[i].strip()]
    if len(real) > 1:
        blocks[rng.choice(real)] = ""
    return "".join(blocks)


def m_cut_block(text: str, rng: random.Random) -> str:
    """A device block cut to its first line (its header)."""
    blocks = re.split(r"(\n[ \t]*\n)", text)
    real = [i for i in range(0, len(blocks), 2) if blocks[i].strip()]
    if real:
        i = rng.choice(real)
        blocks[i] = blocks[i].lstrip("\n").split("\n", 1)[0]
    return "".join(blocks)


def m_delete_key_lines(text: str, rng: random.Random) -> str:
    key = rng.choice(_KEYS)
    return "\n".join(line for line in _lines(text) if key not in line)


def m_endings(text: str, rng: random.Random) -> str:
    return text.replace("\n", rng.choice(["\r", "\r\n"]))


def m_long_line(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    piece = rng.choice(["a ", "x", " ", "\t", "Intel Corporation ", "0", "-"])
    size = rng.choice([1_000, 30_000, 400_000])
    at = rng.randint(0, len(lines[i]))
    lines[i] = lines[i][:at] + piece * (size // len(piece)) + lines[i][at:]
    return "\n".join(lines)


def m_blank_lines(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines) + 1)
    blank = rng.choice(["", " ", "\t"])
    return "\n".join([*lines[:i], *([blank] * rng.choice([100, 20_000, 80_000])), *lines[i:]])


TEXT_MUTATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "flip": m_flip,
    "truncate": m_truncate,
    "delete-lines": m_delete_lines,
    "duplicate-line": m_duplicate_line,
    "delete-block": m_delete_block,
    "cut-block": m_cut_block,
    "delete-key-lines": m_delete_key_lines,
    "endings": m_endings,
    "long-line": m_long_line,
    "blank-lines": m_blank_lines,
}

_VALUES: list[Callable[[random.Random], object]] = [
    lambda r: None,
    lambda r: True,
    lambda r: 0,
    lambda r: -1,
    lambda r: 2**70,
    lambda r: 1.5,
    lambda r: "",
    lambda r: "x",
    lambda r: "0000:00:00.0",
    lambda r: "0x1",
    lambda r: [],
    lambda r: {},
    lambda r: [1, "a", None],
    lambda r: {"a": 1},
    lambda r: ["0000:00:00.0"],
    lambda r: "k" * r.choice([100, 100_000]),
    lambda r: [None] * r.choice([10, 10_000]),
    lambda r: [[[[[[[[[[[]]]]]]]]]]],
]


def _nodes(value: object, path: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:50]):
            yield from _nodes(v, (*path, i))


def _parent(data: object, path: tuple[object, ...]) -> Any:
    node: Any = data
    for p in path[:-1]:
        node = node[p]
    return node


def _structure_mutation(data: object, rng: random.Random) -> tuple[str, object]:
    """One structural change of parsed JSON/TOML data (in place); its name."""
    paths = [p for p in _nodes(data) if p]
    if not paths:
        return "replace", rng.choice(_VALUES)(rng)
    kind = rng.choice(["replace", "replace", "delete-key", "second-group"])
    if kind == "second-group" and isinstance(data, dict) and isinstance(data.get("groups"), dict):
        groups = data["groups"]
        ids = [g for g, ms in groups.items() if isinstance(ms, list) and ms]
        if len(ids) >= 2:
            a, b = rng.sample(ids, 2)
            groups[b] = [*groups[b], rng.choice(groups[a])]
            return "second-group", data
    path = rng.choice(paths)
    parent = _parent(data, path)
    if kind == "delete-key" and isinstance(parent, dict):
        del parent[path[-1]]
        return "delete-key", data
    parent[path[-1]] = rng.choice(_VALUES)(rng)
    return "replace", data


# ------------------------------------------------------------------------- sysfs
def _build_tree(root: Path, capture: dict[str, Any]) -> None:
    """A live-layout sysfs tree (``root/sys/...``) holding a capture's devices and groups."""
    sys_dir = root / "sys"
    (sys_dir / "bus" / "pci" / "devices").mkdir(parents=True)
    groups_dir = sys_dir / "kernel" / "iommu_groups"
    groups_dir.mkdir(parents=True)
    member_of = {m: g for g, ms in capture.get("groups", {}).items() for m in ms}
    topo = read_text(json.dumps({"devices": capture["devices"]})).topology
    assert topo is not None
    for addr, dev in capture["devices"].items():
        # nested as the kernel nests them: pci0000:00/0000:00:1c.0/0000:01:00.0
        chain = topo.bridges_above(topo.get(addr))
        top = chain[-1].address if chain else topo.get(addr).address
        parent = "/".join(
            [f"pci{top.domain:04x}:{top.bus:02x}", *(str(b.address) for b in reversed(chain))]
        )
        dev_dir = sys_dir / "devices" / parent / addr
        dev_dir.mkdir(parents=True)
        (sys_dir / "bus" / "pci" / "devices" / addr).symlink_to(
            f"../../../devices/{parent}/{addr}"
        )
        config = bytes.fromhex(dev["config_hex"])
        (dev_dir / "config").write_bytes(config)
        (dev_dir / "vendor").write_text(f"0x{config[1]:02x}{config[0]:02x}\n")
        (dev_dir / "device").write_text(f"0x{config[3]:02x}{config[2]:02x}\n")
        (dev_dir / "class").write_text(f"0x{config[11]:02x}{config[10]:02x}{config[9]:02x}\n")
        group = member_of.get(addr)
        if group is not None:
            (dev_dir / "iommu_group").symlink_to(f"../../../../kernel/iommu_groups/{group}")
            members = groups_dir / str(group) / "devices"
            members.mkdir(parents=True, exist_ok=True)
            (members / addr).symlink_to(f"../../../../devices/{parent}/{addr}")


def _sysfs_mutation(root: Path, rng: random.Random) -> tuple[str, Callable[[], None]]:
    """Damage the tree below ``root``; returns the mutation and how to undo it."""
    devices = sorted((root / "sys" / "devices").glob("pci*/*"))
    dev = rng.choice(devices)
    kind = rng.choice(
        [
            "sysfs-delete",
            "sysfs-truncate",
            "sysfs-flip",
            "sysfs-fifo",
            "sysfs-dangling",
            "sysfs-loop",
            "sysfs-empty-groups",
            "sysfs-outside",
        ]
    )
    name = rng.choice(["config", "config", "vendor", "class", "iommu_group"])
    target = dev / name
    saved: bytes | str | None = None
    if target.is_symlink():
        saved = os.readlink(target)
    elif target.exists():
        saved = target.read_bytes()

    def restore() -> None:
        if target.is_symlink() or target.exists():
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        if isinstance(saved, str):
            target.symlink_to(saved)
        elif isinstance(saved, bytes):
            target.write_bytes(saved)

    if kind == "sysfs-empty-groups":
        groups = root / "sys" / "kernel" / "iommu_groups"
        made = [groups / str(100_000 + i) for i in range(rng.choice([10, 2000]))]
        for g in made:
            (g / "devices").mkdir(parents=True)
        return kind, lambda: [shutil.rmtree(g) for g in made] and None
    if saved is None:
        return "sysfs-none", lambda: None
    if target.is_symlink() or target.exists():
        target.unlink()
    if kind == "sysfs-delete":
        pass
    elif kind == "sysfs-truncate" and isinstance(saved, bytes):
        target.write_bytes(saved[: rng.randrange(len(saved) + 1)])
    elif kind == "sysfs-flip" and isinstance(saved, bytes) and saved:
        data = bytearray(saved)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        target.write_bytes(bytes(data))
    elif kind == "sysfs-fifo":
        os.mkfifo(target)
    elif kind == "sysfs-dangling":
        target.symlink_to("../nowhere/at/all")
    elif kind == "sysfs-loop":
        target.symlink_to(target.name)
    elif kind == "sysfs-outside":
        target.symlink_to("/etc/hostname" if name != "iommu_group" else "/proc/self")
    else:
        target.write_bytes(saved if isinstance(saved, bytes) else b"")
    return kind, restore


# ---------------------------------------------------------------------- readers
@dataclass
class Outcome:
    """What reading one input did."""

    reader: str
    mutation: str
    seconds: float
    refused: bool = False
    unexpected: str | None = None
    gains: list[str] = field(default_factory=list)


@dataclass
class Reader:
    """One input format: its seeds and how to read and mutate them."""

    name: str
    seeds: list[str]
    kind: str  # "text", "json", "toml", "scenario", "sysfs"

    def mutate(self, seed: str, rng: random.Random) -> tuple[str, str]:
        """``(mutation, mutated text)``."""
        if self.kind in ("json", "toml", "scenario") and rng.random() < 0.6:
            try:
                data = json.loads(seed) if seed.lstrip().startswith("{") else tomllib.loads(seed)
            except ValueError:
                data = None
            if data is not None:
                name, data = _structure_mutation(data, rng)
                if seed.lstrip().startswith("{") or not isinstance(data, dict):
                    return name, json.dumps(data)
                try:
                    return name, tomli_w.dumps(data)
                except (TypeError, ValueError):
                    return name, json.dumps(data)
        name = rng.choice(sorted(TEXT_MUTATIONS))
        return name, TEXT_MUTATIONS[name](seed, rng)


def _groups_of(topology_reading: Reading) -> Grouping | None:
    if topology_reading.topology is None:
        return None
    return canonical_groups(topology_reading.topology)


def _explained(reading: Reading, names: Sequence[str]) -> bool:
    whole = {u.fact for u in reading.unknowns if not u.device}
    if whole & EXPLAINING:
        return True
    wanted = set(names)
    for u in reading.unknowns:
        if u.device in wanted and u.fact in EXPLAINING:
            return True
    topo = reading.topology
    if topo is not None:
        by_name = topo.by_name()
        for n in names:
            fn = by_name.get(n)
            if fn is not None and fn.unknown & EXPLAINING:
                return True
    return False


def isolation_gains(before: Grouping, after: Grouping, reading: Reading) -> list[str]:
    """Pairs the undamaged input's groups put together and the damaged one's apart,
    with no note saying why (one pair per group of ``before``, at most)."""
    out: list[str] = []
    for members in before.groups.values():
        present = [m for m in members if after.group_of(m) is not None]
        if len(present) < 2:
            continue
        parts: dict[int, list[str]] = {}
        for m in present:
            gid = after.group_of(m)
            assert gid is not None
            parts.setdefault(gid, []).append(m)
        if len(parts) < 2:
            continue
        a, b = (ms[0] for ms in list(parts.values())[:2])
        if not _explained(reading, [a, b]):
            out.append(f"{a} and {b}")
    return out


def read_input(reader: Reader, text: str, tmp: Path) -> Reading:
    """Read one input of ``reader`` (the text written to a file for scenarios)."""
    if reader.kind == "scenario":
        sf = loads_scenario_file(text, None, str(tmp / "scenario.json"))
        return Reading(topology=sf.topology, source="scenario")
    path = "input.toml" if reader.kind == "toml" else "input.txt"
    return read_text(text, path)


def analyse(reading: Reading) -> Grouping | None:
    """The canonical groups, and a check when the reading carries the kernel's groups."""
    groups = _groups_of(reading)
    if reading.topology is not None and reading.observed is not None:
        observed = Grouping(dict(reading.observed.groups), source=reading.observed.source)
        check(reading.topology, observed, unknowns=reading.unknowns)
    return groups


class Baselines:
    """The undamaged seeds' readings and groups, computed once each."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, str], tuple[Reading, Grouping] | None] = {}

    def get(self, reader: Reader, seed: str, tmp: Path) -> tuple[Reading, Grouping] | None:
        key = (reader.name, seed)
        if key not in self.cache:
            try:
                r = read_input(reader, seed, tmp)
                g = _groups_of(r)
                self.cache[key] = (r, g) if g is not None else None
            except IommuGroupsError:
                self.cache[key] = None
        return self.cache[key]


def one(
    reader: Reader, rng: random.Random, baselines: Baselines, tmp: Path
) -> tuple[Outcome, str]:
    """Mutate one seed of ``reader``, read it, judge it; the outcome and the input."""
    seed = rng.choice(reader.seeds)
    mutation, text = reader.mutate(seed, rng)
    start = time.perf_counter()
    outcome = Outcome(reader.name, mutation, 0.0)
    try:
        reading = read_input(reader, text, tmp)
        after = analyse(reading)
    except IommuGroupsError:
        outcome.refused = True
        after = None
        reading = None
    except Exception as exc:  # the finding this tool looks for
        outcome.unexpected = f"{type(exc).__name__}: {exc}"[:300] + "\n" + traceback.format_exc()
        after = None
        reading = None
    outcome.seconds = time.perf_counter() - start
    if after is not None and reading is not None and mutation not in FACT_CHANGING:
        base = baselines.get(reader, seed, tmp)
        if base is not None:
            outcome.gains = isolation_gains(base[1], after, reading)
    return outcome, text


def one_sysfs(rng: random.Random, trees: list[Path]) -> Outcome:
    """Damage one of the trees, read it, undo the damage."""
    root = rng.choice(trees)
    mutation, undo = _sysfs_mutation(root, rng)
    start = time.perf_counter()
    outcome = Outcome("sysfs", mutation, 0.0)
    try:
        reading = read(root)
        analyse(reading)
    except IommuGroupsError:
        outcome.refused = True
    except Exception as exc:
        outcome.unexpected = f"{type(exc).__name__}: {exc}"[:300] + "\n" + traceback.format_exc()
    finally:
        outcome.seconds = time.perf_counter() - start
        undo()
    return outcome


def readers(rng: random.Random, windows: int = 300) -> dict[str, Reader]:
    """Every reader with its seeds (windows of the real inputs, made with ``rng``)."""
    vv = _read(
        [
            p
            for p in _files("oracle/lspci-vvv/*.txt", "realdata/*/lspci*.txt")
            if not p.name.endswith(".tree.txt") and "tree" not in p.name
        ]
    )
    trees = _read(_files("oracle/lspci-vvv/*.tree.txt", "realdata/*/lspci-tree.txt"))
    trees.append((DOCS_DATA / "d05-tree.txt").read_text())
    hexdumps = _read(_files("oracle/captures/*.lspci", "oracle/designed/*.lspci"))
    listings = _read(
        _files("oracle/captures/*.groups", "oracle/designed/*.groups", "listings/*/*")
    )
    logs = _read(_files("realdata/*/dmesg.txt"))
    logs += [(DOCS_DATA / n).read_text() for n in ("d05-log1.txt", "d05-log2.txt")]
    captures = [json.loads(p.read_text()) for p in _files("oracle/captures/*.json")]
    arm64 = [json.loads(p.read_text()) for p in _files("oracle/arm64/*.json")]
    snapshots = [json.loads((DOCS_DATA / n).read_text()) for n in ("machine.json",)]
    snapshots.append(json.loads((DOCS_DATA / "machine-nonroot.json").read_text()))
    topo = _topology_texts(rng, 40)
    log_windows = []
    for _ in range(windows):
        lines = rng.choice(logs).split("\n")
        n = rng.randint(5, 400)
        start = rng.randint(0, max(0, len(lines) - n))
        log_windows.append("\n".join(lines[start : start + n]))
    return {
        "lspci-vv": Reader("lspci-vv", _windows(vv, rng, windows, 10), "text"),
        "lspci-tree": Reader("lspci-tree", trees, "text"),
        "lspci-hex": Reader("lspci-hex", _windows(hexdumps, rng, windows, 10), "text"),
        "listing": Reader("listing", listings, "text"),
        "dmesg": Reader("dmesg", log_windows, "text"),
        "capture": Reader(
            "capture",
            [json.dumps(_capture_window(rng.choice(captures), rng, 10)) for _ in range(windows)],
            "json",
        ),
        "arm64-capture": Reader(
            "arm64-capture",
            [json.dumps(_capture_window(rng.choice(arm64), rng, 10)) for _ in range(windows)],
            "json",
        ),
        "snapshot": Reader(
            "snapshot",
            [json.dumps(_capture_window(rng.choice(snapshots), rng, 12)) for _ in range(windows)],
            "json",
        ),
        "topology-json": Reader("topology-json", [t for f, t in topo if f == "json"], "json"),
        "topology-toml": Reader("topology-toml", [t for f, t in topo if f == "toml"], "toml"),
        "scenario": Reader("scenario", _scenario_texts(), "scenario"),
    }


def sysfs_trees(base: Path, rng: random.Random, count: int = 4) -> list[Path]:
    """Sysfs trees of capture windows below ``base``."""
    captures = _files("oracle/captures/*.json")
    out = []
    for i in range(count):
        data = _capture_window(json.loads(rng.choice(captures).read_text()), rng, 16)
        root = base / f"tree{i}"
        _build_tree(root, data)
        out.append(root)
    return out


# ------------------------------------------------------------------------- runner
@dataclass
class Tally:
    """The figures of one reader."""

    inputs: int = 0
    refused: int = 0
    unexpected: int = 0
    slow: int = 0
    gains: int = 0
    gain_checked: int = 0
    slowest: float = 0.0
    seconds: float = 0.0


def run(
    names: Sequence[str], inputs: int, seed: int, limit: float, save: Path | None
) -> dict[str, Tally]:
    rng = random.Random(seed)
    tallies: dict[str, Tally] = {}
    baselines = Baselines()
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as t:
        tmp = Path(t)
        all_readers = readers(rng)
        trees = sysfs_trees(tmp, rng) if "sysfs" in names else []
        for name in names:
            tally = tallies[name] = Tally()
            begun = time.perf_counter()
            for i in range(inputs):
                if name == "sysfs":
                    outcome, text = one_sysfs(rng, trees), ""
                else:
                    outcome, text = one(all_readers[name], rng, baselines, tmp)
                tally.inputs += 1
                tally.refused += outcome.refused
                tally.seconds += outcome.seconds
                tally.slowest = max(tally.slowest, outcome.seconds)
                tally.gain_checked += outcome.mutation not in FACT_CHANGING
                findings = []
                if outcome.unexpected is not None:
                    tally.unexpected += 1
                    findings.append(("unexpected", outcome.unexpected))
                if outcome.seconds > limit:
                    tally.slow += 1
                    findings.append(("slow", f"{outcome.seconds:.2f} s"))
                if outcome.gains:
                    tally.gains += 1
                    findings.append(("gain", "; ".join(outcome.gains)))
                for what, detail in findings:
                    print(
                        f"{name} #{i} {outcome.mutation}: {what}: {detail.splitlines()[0]}",
                        file=sys.stderr,
                    )
                    if save is not None:
                        save.mkdir(parents=True, exist_ok=True)
                        stem = save / f"{name}-{i}-{what}"
                        stem.with_suffix(".txt").write_text(f"{outcome.mutation}\n{detail}\n")
                        if text:
                            stem.with_suffix(".input").write_text(text)
            print(
                f"{name}: {tally.inputs} inputs in {time.perf_counter() - begun:.0f} s",
                file=sys.stderr,
            )
    return tallies


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--inputs", type=int, default=1000, help="inputs per reader")
    p.add_argument("--reader", default="all", help="a reader, or 'all' (comma-separated list)")
    p.add_argument("--seed", type=int, default=10, help="the random seed (default 10)")
    p.add_argument("--limit", type=float, default=2.0, help="seconds an input may take")
    p.add_argument("--save", type=Path, help="keep each finding's input in this directory")
    args = p.parse_args(argv)
    known = [*readers(random.Random(0), windows=1), "sysfs"]
    names = known if args.reader == "all" else args.reader.split(",")
    for n in names:
        if n not in known:
            p.error(f"unknown reader {n!r} (one of: {', '.join(known)}, all)")
    tallies = run(names, args.inputs, args.seed, args.limit, args.save)
    print(
        f"{'reader':<14} {'inputs':>8} {'refused':>8} {'unexpected':>10} "
        f"{'>' + str(args.limit) + ' s':>7} {'checked':>8} {'gains':>6} {'slowest':>8} "
        f"{'mean ms':>8}"
    )
    for n, t in tallies.items():
        print(
            f"{n:<14} {t.inputs:>8} {t.refused:>8} {t.unexpected:>10} {t.slow:>7} "
            f"{t.gain_checked:>8} {t.gains:>6} {t.slowest:>8.2f} "
            f"{1000 * t.seconds / max(t.inputs, 1):>8.1f}"
        )
    bad = sum(t.unexpected + t.slow + t.gains for t in tallies.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
