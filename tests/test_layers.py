"""The package's floors: imports only go down, and no module imports itself round a cycle.

The floors, from the bottom (a module may import its own package's modules
and any lower floor, never a higher one):

0. ``_errors``, ``_version``, ``_data``, ``_bulk``: the error classes, constants and
   bulk-building helpers.
1. ``_kernel``: the model (addresses, functions, topologies, config-space
   decoding, groupings, readings, the PCI id database) and the kernel rules
   (ACS, DMA aliases, quirks, ``pci_device_group``, firmware specs, kernel
   parameters, canonical grouping).
2. ``_boot``: the driver core simulator, drivers, scenarios, strategies.
3. ``examples``: the built-in topologies and scenarios.
4. ``_io``: readers and writers. They import *only the model* (and the
   scenario and driver value types): never a rule, a strategy or anything
   above.
5. ``testing``: Hypothesis strategies for other tools.
6. ``_analysis``: check, explain, show, what-if and their parts.
7. ``_render``, ``schemas``: text, JSON schemas, DOT.
8. ``_cli``: the command-line tool.
9. the package's ``__init__`` (the public API) and ``__main__``.

Every import counts, wherever it is written (inside functions and
``TYPE_CHECKING`` blocks too).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "iommugroups"
ROOT = "iommugroups"

#: Package or module prefix -> floor (the longest matching prefix wins).
FLOORS: dict[str, int] = {
    "iommugroups._errors": 0,
    "iommugroups._version": 0,
    "iommugroups._data": 0,
    "iommugroups._bulk": 0,
    "iommugroups._kernel": 1,
    "iommugroups._boot": 2,
    "iommugroups.examples": 3,
    "iommugroups._io": 4,
    "iommugroups.testing": 5,
    "iommugroups._analysis": 6,
    "iommugroups._render": 7,
    "iommugroups.schemas": 7,
    "iommugroups._cli": 8,
    "iommugroups": 9,
    "iommugroups.__main__": 9,
}

#: What the readers may import besides their own package and the error classes.
READER_ALLOWED = (
    "iommugroups._kernel.model",
    "iommugroups._kernel.config",
    "iommugroups._kernel.groups",
    "iommugroups._kernel.reading",
    "iommugroups._kernel.pci_ids",
    "iommugroups._kernel.version",
    "iommugroups._bulk",
    "iommugroups._boot.scenario",
    "iommugroups._boot.drivers",
)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """The package modules ``module`` imports, with the line of each import."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == ROOT or alias.name.startswith(ROOT + "."):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = _resolve(module, is_package, node.level, node.module)
            elif node.module and (node.module == ROOT or node.module.startswith(ROOT + ".")):
                target = node.module
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                # ``from pkg import module`` imports the module itself
                yield (sub if sub in MODULES else target), node.lineno


def floor_of(module: str) -> tuple[int, str]:
    """(floor, the prefix that placed it) of a package module."""
    best = max((p for p in FLOORS if module == p or module.startswith(p + ".")), key=len)
    return FLOORS[best], best


def test_every_module_has_a_floor() -> None:
    assert MODULES, "no modules found"
    for module in MODULES:
        _floor, prefix = floor_of(module)
        assert prefix != ROOT or module == ROOT, f"{module} is on no floor: add it to FLOORS"


def test_imports_only_go_down() -> None:
    """A module imports its own package's modules and lower floors, nothing above or beside."""
    problems = []
    for module in MODULES:
        floor, prefix = floor_of(module)
        for target, line in imports_of(module):
            if target not in MODULES:
                problems.append(f"{module}:{line}: imports {target}, which is not a module")
                continue
            t_floor, t_prefix = floor_of(target)
            if t_prefix == prefix and module != ROOT:
                continue
            if t_floor >= floor:
                problems.append(
                    f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}: {module} (floor "
                    f"{floor}) imports {target} (floor {t_floor})"
                )
    assert not problems, "imports that do not go down:\n" + "\n".join(problems)


def test_readers_import_only_the_model() -> None:
    problems = []
    for module in MODULES:
        if not module.startswith("iommugroups._io"):
            continue
        for target, line in imports_of(module):
            if target.startswith(("iommugroups._io", "iommugroups._errors")):
                continue
            if not target.startswith(READER_ALLOWED):
                problems.append(f"{module}:{line}: a reader imports {target}")
    assert not problems, "\n".join(problems)


def test_no_cycles() -> None:
    """Tarjan's algorithm over the import graph: every strongly connected part has one module."""
    graph = {m: sorted({t for t, _ in imports_of(m) if t in MODULES and t != m}) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                cycles.append(sorted(part))

    for m in graph:
        if m not in index:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from .model import X", "iommugroups._kernel.model"),
        ("from ..examples import X", "iommugroups.examples"),
        ("from . import quirk_tables", "iommugroups._kernel.quirk_tables"),
        ("from .._errors import E", "iommugroups._errors"),
    ],
)
def test_the_resolver_itself(source: str, expected: str) -> None:
    """The checker resolves relative imports the way Python does (a check on the checker)."""
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.ImportFrom)
    module = "iommugroups._kernel.acs"
    target = _resolve(module, False, node.level, node.module)
    sub = f"{target}.{node.names[0].name}"
    assert (sub if sub in MODULES else target) == expected
