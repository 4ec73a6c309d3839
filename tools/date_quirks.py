"""Date the kernel's grouping quirks: which source tree has which entry.

Usage::

    python tools/date_quirks.py                      # the trees under ~/kernel-src, a report
    python tools/date_quirks.py --json tools/quirk_dates.json
    python tools/date_quirks.py --tree 6.1=/path/linux-6.1 --tree 7.3=/path/linux-7.3

The trees are unpacked by ``shared/tools/kernel-source VERSION`` (Debian's
``linux-source`` packages: ``drivers/pci`` and ``include/linux/pci*.h``).
From each tree's ``drivers/pci/quirks.c`` the script extracts, with the
macros of ``include/linux/pci_ids.h`` resolved:

* every entry of the ACS table ``pci_dev_acs_enabled[]`` (R2.5), as
  ``(vendor, device, function)``, ``PCI_ANY_ID`` written ``*``;
* the device ids tested *inside* the ACS functions and helpers that match
  by a list (``pci_quirk_intel_pch_acs_ids[]``, the ``switch``/``case``
  lists of the Intel SPT, Cavium, Zhaoxin and Wangxun functions) and the
  ids of ``pci_disable_broken_acs_cap`` (the ACS capability mask, R2.2),
  one entry per id or ``case LO ... HI`` range;
* the DMA-alias fixups (R3.5): ``DECLARE_PCI_FIXUP_*`` lines naming one
  of the ``pci_add_dma_alias`` quirks, the ``SWITCHTEC_*QUIRK(id)`` macro
  lines and the rows of ``fixed_dma_alias_tbl[]``;
* the bridge-flag fixups (R3.4): ``quirk_use_pcie_bridge_dma_alias``,
  ``quirk_bridge_cavm_thrx2_pcie_root`` and
  ``quirk_aspeed_pci_bridge_no_alias``;
* the body of every function the model mirrors, comments and blanks
  removed, so a change of logic between trees shows.

It then reports, for each entry not in every tree, the trees that have it,
and for each function whose body differs, which trees share which body.
``--json`` writes the whole extraction (``tools/quirk_dates.json`` is the
committed result; ``tests/test_quirk_versions.py`` compares it with the
model's dated tables and, when the trees are unpacked, with a new run).

Only the Python standard library is used; nothing is imported from the
package, so the extraction is independent of the model it checks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "ALIAS_FUNCTIONS",
    "BODY_FUNCTIONS",
    "BRIDGE_FUNCTIONS",
    "DEFAULT_TREES",
    "INNER_ID_FUNCTIONS",
    "date_entries",
    "dump",
    "extract",
    "main",
    "report",
    "tree_release",
]

#: The trees ``kernel-source`` unpacks, oldest first.
DEFAULT_TREES: tuple[tuple[str, Path], ...] = tuple(
    (v, Path.home() / "kernel-src" / f"linux-{v}") for v in ("6.1", "6.12", "7.2", "7.3")
)

#: ``pci_add_dma_alias`` fixups (R3.5).
ALIAS_FUNCTIONS = (
    "quirk_dma_func0_alias",
    "quirk_dma_func1_alias",
    "quirk_fixed_dma_alias",
    "quirk_mic_x200_dma_alias",
    "quirk_pex_vca_alias",
    "quirk_plx_ntb_dma_alias",
    "quirk_switchtec_ntb_dma_alias",
)
#: Bridge-flag fixups (R3.4).
BRIDGE_FUNCTIONS = (
    "quirk_use_pcie_bridge_dma_alias",
    "quirk_bridge_cavm_thrx2_pcie_root",
    "quirk_aspeed_pci_bridge_no_alias",
)
#: Functions (and one array) whose device-id lists are extracted, with the
#: vendor the ids belong to (the table entry or the function fixes it).
INNER_ID_FUNCTIONS: Mapping[str, str] = {
    "pci_quirk_intel_pch_acs_ids": "PCI_VENDOR_ID_INTEL",
    "pci_quirk_intel_spt_pch_acs_match": "PCI_VENDOR_ID_INTEL",
    "pci_quirk_cavium_acs_match": "PCI_VENDOR_ID_CAVIUM",
    "pci_quirk_zhaoxin_pcie_ports_acs": "PCI_VENDOR_ID_ZHAOXIN",
    "pci_quirk_wangxun_nic_acs": "PCI_VENDOR_ID_WANGXUN",
    "pci_disable_broken_acs_cap": "PCI_VENDOR_ID_IDT",
}
#: Functions whose logic the model re-expresses: their bodies are compared.
BODY_FUNCTIONS = (
    "pci_acs_ctrl_enabled",
    "pci_quirk_amd_sb_acs",
    "pci_quirk_cavium_acs_match",
    "pci_quirk_cavium_acs",
    "pci_quirk_xgene_acs",
    "pci_quirk_zhaoxin_pcie_ports_acs",
    "pci_quirk_intel_pch_acs_match",
    "pci_quirk_intel_pch_acs",
    "pci_quirk_qcom_rp_acs",
    "pci_quirk_nxp_rp_acs",
    "pci_quirk_al_acs",
    "pci_quirk_intel_spt_pch_acs_match",
    "pci_quirk_intel_spt_pch_acs",
    "pci_quirk_mf_endpoint_acs",
    "pci_quirk_rciep_acs",
    "pci_quirk_brcm_acs",
    "pci_quirk_loongson_acs",
    "pci_quirk_wangxun_nic_acs",
    "pci_dev_specific_acs_enabled",
    "pci_quirk_enable_intel_pch_acs",
    "pci_quirk_enable_intel_spt_pch_acs",
    "pci_disable_broken_acs_cap",
    *ALIAS_FUNCTIONS,
    *BRIDGE_FUNCTIONS,
)

_COMMENT_RE = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_DEFINE_RE = re.compile(r"^#define\s+(PCI_\w+)\s+(0x[0-9a-fA-F]+|\d+)\b", re.M)
_ACS_ENTRY_RE = re.compile(r"\{\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*\}")
_FIXUP_RE = re.compile(r"\bDECLARE_PCI_FIXUP_(\w+)\s*\(([^;]*?)\)\s*;", re.S)
_MACRO_USE_RE = re.compile(r"^\s*(SWITCHTEC\w*_QUIRK)\s*\(\s*(\w+)\s*\)\s*;", re.M)
_SUB_RE = re.compile(
    r"PCI_DEVICE_SUB\s*\(([^)]*)\)\s*,\s*\.driver_data\s*=\s*PCI_DEVFN\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)"
)
_CASE_RE = re.compile(r"case\s+(\w+)\s*(?:\.\.\.\s*(\w+)\s*)?:")
_EQ_RE = re.compile(r"->device\s*==\s*(0x[0-9a-fA-F]+)")
_HEX_RE = re.compile(r"\b0x[0-9a-fA-F]+\b")


def _strip_comments(text: str) -> str:
    return _COMMENT_RE.sub(" ", text)


def tree_release(tree: Path) -> str:
    """``VERSION.PATCHLEVEL.SUBLEVEL`` from the tree's ``Makefile`` ("" when absent)."""
    makefile = tree / "Makefile"
    if not makefile.exists():
        return ""
    head = makefile.read_text(errors="replace")[:2000]
    parts = [re.search(rf"^{k}\s*=\s*(\d*)", head, re.M) for k in ("VERSION", "PATCHLEVEL")]
    sub = re.search(r"^SUBLEVEL\s*=\s*(\d*)", head, re.M)
    if not all(parts):
        return ""
    out = ".".join(m[1] for m in parts if m)
    return f"{out}.{sub[1]}" if sub and sub[1] else out


def _macros(tree: Path, quirks_c: str) -> dict[str, int]:
    """``PCI_*`` macros with a number: ``pci_ids.h``, then the defines in quirks.c."""
    out: dict[str, int] = {"PCI_ANY_ID": -1}
    for header in ("include/linux/pci_ids.h", "include/linux/pci.h"):
        path = tree / header
        if path.exists():
            for name, value in _DEFINE_RE.findall(path.read_text(errors="replace")):
                out.setdefault(name, int(value, 0))
    for name, value in _DEFINE_RE.findall(quirks_c):
        out[name] = int(value, 0)
    return out


def _value(token: str, macros: Mapping[str, int]) -> int | None:
    """A C token as a number; ``None`` for ``PCI_ANY_ID``."""
    token = token.strip().rstrip("u").rstrip("U")
    if token.startswith("(u16)"):
        token = token[5:]
    n = macros[token] if token in macros else int(token, 0)
    return None if n in (-1, 0xFFFF, 0xFFFFFFFF) else n


def _id(value: int | None) -> str:
    return "*" if value is None else f"{value:04x}"


def _closing(text: str, start: int, open_: str, close: str) -> int:
    """The index of the bracket closing the one at ``start`` (-1 if none)."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == open_:
            depth += 1
        elif text[i] == close:
            depth -= 1
            if depth == 0:
                return i
    return -1


def _function_body(text: str, name: str) -> str | None:
    """The text of ``name``'s definition (signature to closing brace), or ``None``.

    A prototype (a signature followed by ``;``) is skipped; an array
    (``name[] = {...}``) counts as a definition.
    """
    for m in re.finditer(rf"^[\w ][\w \*]*\b{re.escape(name)}\s*(\(|\[\])", text, re.M):
        if m[1] == "(":
            end = _closing(text, m.end() - 1, "(", ")")
            rest = text[end + 1 :].lstrip() if end >= 0 else ""
            brace = len(text) - len(rest) if rest.startswith("{") else -1
        else:
            brace = text.find("{", m.end())
        if brace < 0:
            continue
        end = _closing(text, brace, "{", "}")
        if end >= 0:
            return text[m.start() : end + 1]
    return None


def _normalise(body: str) -> str:
    return " ".join(body.split())


def _acs_table(text: str, macros: Mapping[str, int]) -> Iterator[dict[str, Any]]:
    start = text.find("pci_dev_acs_enabled[] = {")
    if start < 0:
        raise ValueError("quirks.c: no pci_dev_acs_enabled[] table")
    end = text.find("{ 0 }", start)
    for order, (vendor, device, func) in enumerate(_ACS_ENTRY_RE.findall(text[start:end])):
        yield {
            "kind": "acs",
            "function": func,
            "vendor": _id(_value(vendor, macros)),
            "device": _id(_value(device, macros)),
            "order": order,
        }


def _inner_ids(text: str, macros: Mapping[str, int]) -> Iterator[dict[str, Any]]:
    for name, vendor_macro in INNER_ID_FUNCTIONS.items():
        body = _function_body(text, name)
        if body is None:
            continue
        vendor = _id(macros.get(vendor_macro))
        kind = "acs-cap" if name == "pci_disable_broken_acs_cap" else "acs-id"
        spans: list[tuple[int, int]] = []
        if name.endswith("_ids"):  # an array of ids
            inside = body[body.find("{") + 1 :]
            spans += [(int(h, 16), int(h, 16)) for h in _HEX_RE.findall(inside)]
        else:
            for lo, hi in _CASE_RE.findall(body):
                a = _value(lo, macros)
                b = _value(hi, macros) if hi else a
                if a is None or b is None:
                    raise ValueError(f"quirks.c: {name}: case label {lo!r} is not a device id")
                spans.append((a, b))
            spans += [(int(h, 16), int(h, 16)) for h in _EQ_RE.findall(body)]
        for lo, hi in spans:
            yield {
                "kind": kind,
                "function": name,
                "vendor": vendor,
                "device": _id(lo),
                "device_to": _id(hi),
            }


def _fixups(text: str, macros: Mapping[str, int]) -> Iterator[dict[str, Any]]:
    wanted = {*ALIAS_FUNCTIONS, *BRIDGE_FUNCTIONS}
    for phase, args in _FIXUP_RE.findall(text):
        parts = [a.strip() for a in args.split(",")]
        func = parts[-1]
        if func not in wanted or parts[0].startswith("vid"):  # a macro's own definition
            continue
        entry: dict[str, Any] = {
            "kind": "dma-alias" if func in ALIAS_FUNCTIONS else "bridge-flag",
            "function": func,
            "vendor": _id(_value(parts[0], macros)),
            "device": _id(_value(parts[1], macros)),
            "phase": phase.lower(),
        }
        if phase.startswith("CLASS_"):
            entry["class"] = f"{_value(parts[2], macros) or 0:04x}"
        yield entry
    # SWITCHTEC_QUIRK(id): the macro's definition names the vendor.
    for macro, device in _MACRO_USE_RE.findall(text):
        definition = re.search(
            rf"#define\s+{macro}\s*\(\s*vid\s*\)\s*\\?\s*DECLARE_PCI_FIXUP_(\w+)\s*\(\s*(\w+)",
            text,
        )
        if definition is None:
            raise ValueError(f"quirks.c: {macro} used but its definition was not found")
        yield {
            "kind": "dma-alias",
            "function": "quirk_switchtec_ntb_dma_alias",
            "vendor": _id(_value(definition[2], macros)),
            "device": _id(_value(device, macros)),
            "phase": definition[1].lower(),
            "class": f"{macros['PCI_CLASS_BRIDGE_OTHER']:04x}",
        }
    table = text.find("fixed_dma_alias_tbl[] = {")
    if table >= 0:
        for sub, slot, func in _SUB_RE.findall(text[table : text.find("{ 0 }", table)]):
            v, d, sv, sd = (_value(p, macros) for p in sub.split(","))
            yield {
                "kind": "dma-alias",
                "function": "quirk_fixed_dma_alias",
                "vendor": _id(v),
                "device": _id(d),
                "subsystem": f"{_id(sv)}:{_id(sd)}",
                "devfn": f"{int(slot, 0):02x}.{int(func, 0)}",
            }


def extract(tree: Path) -> dict[str, Any]:
    """Everything the script reads from one tree (see the module docstring).

    Raises:
        FileNotFoundError: the tree has no ``drivers/pci/quirks.c``.
        ValueError: the ACS table was not found.
    """
    raw = (tree / "drivers" / "pci" / "quirks.c").read_text(errors="replace")
    text = _strip_comments(raw)
    macros = _macros(tree, text)
    entries = [*_acs_table(text, macros), *_inner_ids(text, macros), *_fixups(text, macros)]
    bodies = {}
    for name in BODY_FUNCTIONS:
        body = _function_body(text, name)
        if body is not None:
            bodies[name] = hashlib.sha256(_normalise(body).encode()).hexdigest()[:16]
    return {"release": tree_release(tree), "entries": entries, "bodies": bodies}


def _key(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """What identifies an entry across trees (its table position does not)."""
    return tuple(f"{k}={entry[k]}" for k in sorted(entry) if k != "order")


def date_entries(trees: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Merge per-tree extractions: every entry with the trees that have it.

    Args:
        trees: ``(version, extract(tree))`` oldest first.

    Returns:
        ``{"trees": {version: release}, "entries": [...], "bodies": {...}}``:
        each entry once, with ``"trees"`` (the versions that have it); each
        function's bodies grouped into lists of versions sharing one body.
    """
    versions = [v for v, _ in trees]
    seen: dict[tuple[str, ...], dict[str, Any]] = {}
    for version, data in trees:
        for entry in data["entries"]:
            key = _key(entry)
            merged = seen.setdefault(key, {**{k: v for k, v in entry.items() if k != "order"}})
            merged.setdefault("trees", []).append(version)
    bodies: dict[str, list[list[str]]] = {}
    for name in BODY_FUNCTIONS:
        groups: dict[str, list[str]] = {}
        for version, data in trees:
            digest = data["bodies"].get(name)
            groups.setdefault(digest or "absent", []).append(version)
        bodies[name] = [groups[d] if d != "absent" else ["absent", *groups[d]] for d in groups]
    return {
        "trees": {v: data["release"] for v, data in trees},
        "versions": versions,
        "entries": list(seen.values()),
        "bodies": bodies,
    }


def _describe(entry: Mapping[str, Any]) -> str:
    dev = entry["device"]
    if entry.get("device_to", dev) != dev:
        dev = f"{dev}-{entry['device_to']}"
    extra = "".join(
        f" {k}={entry[k]}" for k in ("subsystem", "devfn", "class", "phase") if k in entry
    )
    return f"{entry['kind']:<11} {entry['function']:<36} {entry['vendor']}:{dev}{extra}"


def report(dated: Mapping[str, Any]) -> Iterable[str]:
    """Lines of text: the entries not in every tree, and the functions that changed."""
    versions: list[str] = dated["versions"]
    trees = ", ".join(f"{v} ({dated['trees'][v] or '?'})" for v in versions)
    yield f"trees: {trees}"
    entries = dated["entries"]
    partial = [e for e in entries if e["trees"] != versions]
    yield f"{len(entries)} entries, {len(entries) - len(partial)} in every tree"
    for e in partial:
        have = e["trees"]
        missing = [v for v in versions if v not in have]
        first = versions.index(have[0])
        gaps = [v for v in missing if versions.index(v) > first]
        if gaps:
            tail = f"not monotonic: missing from {', '.join(gaps)} after {have[0]}, a backport?"
        elif first:
            tail = f"added after {versions[first - 1]}, by {have[0]}"
        else:
            tail = f"removed by {missing[0]}"
        yield f"  {_describe(e)}: in {', '.join(have)}; not in {', '.join(missing)} ({tail})"
    for name, groups in dated["bodies"].items():
        if len(groups) > 1:
            yield f"  function {name} differs: " + " | ".join(", ".join(g) for g in groups)


def dump(dated: Mapping[str, Any]) -> str:
    """The extraction as JSON text, one entry per line (stable: sorted keys)."""
    lines = ["{"]
    for key in ("trees", "versions", "bodies"):
        lines.append(f"  {json.dumps(key)}: {json.dumps(dated[key], sort_keys=True)},")
    lines.append('  "entries": [')
    entries = [json.dumps(e, sort_keys=True) for e in dated["entries"]]
    lines += [f"    {e}," for e in entries[:-1]] + [f"    {e}" for e in entries[-1:]]
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def _parse_tree(text: str) -> tuple[str, Path]:
    version, sep, path = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--tree {text!r}: expected VERSION=PATH")
    return version, Path(path)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", type=_parse_tree, metavar="VERSION=PATH")
    parser.add_argument("--json", type=Path, help="write the extraction as JSON here")
    args = parser.parse_args(argv)
    trees: list[tuple[str, Path]] = args.tree or list(DEFAULT_TREES)
    present = [(v, p) for v, p in trees if (p / "drivers" / "pci" / "quirks.c").exists()]
    if not present:
        print("date_quirks: no tree found (shared/tools/kernel-source VERSION)", file=sys.stderr)
        return 2
    for v, p in trees:
        if (v, p) not in present:
            print(f"date_quirks: no {p}/drivers/pci/quirks.c, {v} skipped", file=sys.stderr)
    dated = date_entries([(v, extract(p)) for v, p in present])
    if args.json:
        args.json.write_text(dump(dated))
    for line in report(dated):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
