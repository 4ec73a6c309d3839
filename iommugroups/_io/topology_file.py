"""Our own topology file format, ``iommugroups.topology/1``, in JSON and TOML.

The file is the :class:`~iommugroups._kernel.model.Topology` value written out field
by field: keys are the model's attribute names, and a field that has its
default value is left out, so files stay short. One configured
:class:`cattrs.Converter` does the work in both directions; the hooks below
only say how the leaf values are spelled:

* a PCI address is ``"dddd:bb:dd.f"`` (``"bb:dd.f"`` is accepted, domain 0);
* vendor, device, subsystem and VF device ids are hex strings (``"0x8086"``),
  the class code a six-digit hex string (``"0x060400"``); so are the parts of
  a PCI address used on their own: bus numbers (``"0x03"``), PCI domains and
  requester ids (``"0x0000"``); a DMA-alias devfn is ``"dd.f"``, the slot and
  function as in an address. On input, each of these also takes an integer,
  and a string is read as hex with or without ``0x``;
* ACS flags are ``"SV|RR|CR|UF"`` (``""`` for none);
* a PCIe type is its lower-case name (``"root_port"``), the kernel's
  ``PCI_EXP_TYPE_*`` names are accepted in any case;
* an IOMMU kind is its value (``"smmuv3"``);
* counts and stream ids are plain integers (a ``"0x..."`` string is accepted).

``docs/topology-format.md`` is the user-facing description of the schema.

Errors never escape as cattrs exception groups: every problem in a file
becomes one :class:`~iommugroups._errors.InputError` naming the file and the
field path, then the function's address: ``functions[3].acs.ctrl: unknown ACS
flag 'XX' (known flags: ...) [0000:00:1c.0]``. Syntax errors give the line.
"""

from __future__ import annotations

import difflib
import json
import operator
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
import tomli_w
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .._errors import InputError, IommuGroupsError
from .._kernel.model import (
    Acs,
    AcsFlags,
    IdMapping,
    IommuInstance,
    IommuKind,
    IommuUnit,
    PciAddress,
    PcieType,
    PciFunction,
    Platform,
    PlatformDevice,
    SriovCapability,
    Topology,
    VmdDomain,
    named_address,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "SCHEMA",
    "TopologyFormat",
    "TopologyProblems",
    "dumps_topology",
    "loads_topology",
    "parse_json",
    "parse_json_topology",
    "parse_toml",
    "structure_topology",
    "topology_from_dict",
    "topology_to_dict",
]


def __dir__() -> list[str]:
    return __all__


#: The value of the top-level ``schema`` key this module reads and writes.
SCHEMA = "iommugroups.topology/1"

#: The two spellings of the format.
TopologyFormat = Literal["json", "toml"]

_T = TypeVar("_T")


class _FieldError(ValueError):
    """A leaf value is wrong; the message is shown to the user as is."""


def _describe(value: object) -> str:
    """A short description of a value of the wrong kind, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


# --- integers ---------------------------------------------------------------

_HEX_RE = re.compile(r"^(?:0[xX])?([0-9a-fA-F]+)$")
_PREFIXED_HEX_RE = re.compile(r"^0[xX]([0-9a-fA-F]+)$")


def _int_value(value: object, *, bare_hex: bool, what: str) -> int:
    """An integer, or a hex string (``0x`` optional when ``bare_hex``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        m = (_HEX_RE if bare_hex else _PREFIXED_HEX_RE).match(value.strip())
        if m is not None:
            return int(m[1], 16)
    spelling = "hex string like '0x8086'" if bare_hex else "'0x' hex string"
    raise _FieldError(f"expected {what} (an integer or a {spelling}), got {_describe(value)}")


def _hex_parser(what: str, bits: int) -> Callable[[object], int]:
    limit = (1 << bits) - 1
    width = (bits + 3) // 4

    def parse(value: object) -> int:
        n = _int_value(value, bare_hex=True, what=what)
        if not 0 <= n <= limit:
            raise _FieldError(
                f"{_fmt_hex(n, width)} is out of range for {what} "
                f"(0x{0:0{width}x}-0x{limit:0{width}x})"
            )
        return n

    return parse


def _fmt_hex(n: int, width: int) -> str:
    return f"-0x{-n:0{width}x}" if n < 0 else f"0x{n:0{width}x}"


def _hex_formatter(width: int) -> Callable[[int], str]:
    def fmt(n: int) -> str:
        return _fmt_hex(n, width)

    return fmt


def _plain_int(value: object, _type: object = int) -> int:
    n = _int_value(value, bare_hex=False, what="a non-negative integer")
    if n < 0:
        raise _FieldError(f"expected a non-negative integer, got {n}")
    return n


def _devfn_value(value: object) -> int:
    """A devfn: ``"dd.f"`` (slot and function, hex slot), or an integer."""
    if isinstance(value, str):
        m = re.match(r"^([0-9a-fA-F]{1,2})\.([0-7])$", value.strip())
        if m is not None:
            slot = int(m[1], 16)
            if slot > 0x1F:
                raise _FieldError(f"devfn {value!r}: slot {slot:#x} is out of range 00-1f")
            return slot << 3 | int(m[2])
        if _PREFIXED_HEX_RE.match(value.strip()) is None:
            raise _FieldError(
                f"{value!r} is not a devfn: expected 'dd.f' (slot.function) or an integer"
            )
    n = _int_value(value, bare_hex=False, what="a devfn ('dd.f')")
    if not 0 <= n <= 0xFF:
        raise _FieldError(f"devfn {n:#x} is out of range 0x00-0xff")
    return n


def _fmt_devfn(devfn: int) -> str | int:
    if 0 <= devfn <= 0xFF:
        return f"{devfn >> 3:02x}.{devfn & 7:x}"
    return devfn  # not a devfn; written as is, refused on reading


# --- other leaves -----------------------------------------------------------


def _str_value(value: object, _type: object = str) -> str:
    if not isinstance(value, str):
        raise _FieldError(f"expected a string, got {_describe(value)}")
    return value


def _bool_value(value: object, _type: object = bool) -> bool:
    if not isinstance(value, bool):
        raise _FieldError(f"expected true or false, got {_describe(value)}")
    return value


#: An address as this module writes it (``dddd:bb:dd.f``), read without the parser.
_WRITTEN_ADDRESS_RE = re.compile(r"([0-9a-f]{4}):([0-9a-f]{2}):([01][0-9a-f])\.([0-7])")


def _address_value(value: object, _type: object = PciAddress) -> PciAddress:
    if not isinstance(value, str):
        raise _FieldError(f"expected a PCI address 'dddd:bb:dd.f', got {_describe(value)}")
    m = _WRITTEN_ADDRESS_RE.fullmatch(value)
    if m is not None:
        return PciAddress(int(m[1], 16), int(m[2], 16), int(m[3], 16), int(m[4]))
    try:
        return PciAddress.parse(value)
    except ValueError as exc:
        raise _FieldError(str(exc)) from None


def _acs_flags_value(value: object, _type: object = AcsFlags) -> AcsFlags:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 0x7F:
            raise _FieldError(f"ACS flags {value:#x} have bits outside the defined 0x7f (SV..DT)")
        return AcsFlags.from_word(value)
    if not isinstance(value, str):
        raise _FieldError(f"expected ACS flags like 'SV|RR|CR|UF', got {_describe(value)}")
    if value.strip() == "-":
        return AcsFlags.NONE
    try:
        return AcsFlags.parse(value)
    except ValueError as exc:
        known = "|".join(f.name for f in AcsFlags if f.value and f.name)
        raise _FieldError(f"{exc} (known flags: {known})") from None


def _fmt_acs_flags(flags: AcsFlags) -> str:
    names = flags.names()
    return "" if names == "-" else names


_PCIE_TYPE_NAMES = ", ".join(t.name.lower() for t in PcieType)


def _pcie_type_value(value: object, _type: object = PcieType) -> PcieType:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return PcieType(value)
        except ValueError:
            raise _FieldError(
                f"{value:#x} is not a PCIe port type (one of: {_PCIE_TYPE_NAMES})"
            ) from None
    if not isinstance(value, str):
        raise _FieldError(f"expected a PCIe type like 'root_port', got {_describe(value)}")
    name = value.strip().upper()
    if name.startswith("PCI_EXP_TYPE_"):
        name = name[len("PCI_EXP_TYPE_") :]
    try:
        return PcieType[name]
    except KeyError:
        raise _FieldError(f"unknown PCIe type {value!r} (one of: {_PCIE_TYPE_NAMES})") from None


def _iommu_kind_value(value: object, _type: object = IommuKind) -> IommuKind:
    known = ", ".join(k.value for k in IommuKind)
    if not isinstance(value, str):
        raise _FieldError(f"expected an IOMMU kind ({known}), got {_describe(value)}")
    text = value.strip().lower()
    for kind in IommuKind:
        if text in (kind.value, kind.name.lower()):
            return kind
    raise _FieldError(f"unknown IOMMU kind {value!r} (one of: {known})")


# --- collections ------------------------------------------------------------


def _list_hook(
    item: Callable[[object], _T], container: Callable[[list[_T]], Any], type_: object
) -> Callable[[object, object], Any]:
    """Structure a JSON/TOML list item by item, reporting bad items by index.

    cattrs' own collection hooks accept any iterable (a string would become
    a list of characters); this one wants a list.
    """

    def hook(value: object, _type: object) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _FieldError(f"expected a list, got {_describe(value)}")
        out: list[_T] = []
        errors: list[Exception] = []
        for i, element in enumerate(value):
            try:
                out.append(item(element))
            except Exception as exc:
                note = IterableValidationNote(f"Structuring item {i}", i, type_)
                setattr(exc, "__notes__", [*getattr(exc, "__notes__", []), note])  # noqa: B010
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {type_!r}", errors, type_)  # type: ignore[arg-type]
        return container(out)

    return hook


def _is_collection(type_: Any) -> bool:
    return get_origin(type_) in (tuple, frozenset)


def _is_frozenset(type_: Any) -> bool:
    return type_ is frozenset or get_origin(type_) is frozenset


def _is_tuple(type_: Any) -> bool:
    return type_ is tuple or get_origin(type_) is tuple


def _collection_hook_factory(
    converter: cattrs.Converter,
) -> Callable[[Any], Callable[[object, object], Any]]:
    def factory(type_: Any) -> Callable[[object, object], Any]:
        elem_type = get_args(type_)[0]

        def item(element: object) -> Any:
            return converter.structure(element, elem_type)

        container: Callable[[list[Any]], Any] = get_origin(type_)
        return _list_hook(item, container, type_)

    return factory


def _sorted_list(value: frozenset[Any]) -> list[Any]:
    return sorted(value)


# --- the converter ----------------------------------------------------------


def _mapping_only(cl: type[_T], inner: Callable[[Any, Any], _T]) -> Callable[[object, object], _T]:
    """Wrap a generated class hook so a non-object gives one clear error."""

    def hook(value: object, type_: object) -> _T:
        if not isinstance(value, Mapping):
            raise _FieldError(f"expected an object, got {_describe(value)}")
        return inner(value, type_)

    return hook


def _make_converter() -> tuple[cattrs.Converter, dict[type, dict[str, Any]]]:
    conv = cattrs.Converter(omit_if_default=True, forbid_extra_keys=True)

    # Leaves: strict, no int("3") / bool("no") / str(5) coercions.
    conv.register_structure_hook(str, _str_value)
    conv.register_structure_hook(bool, _bool_value)
    conv.register_structure_hook(int, _plain_int)
    conv.register_structure_hook(PciAddress, _address_value)
    conv.register_unstructure_hook(PciAddress, str)
    conv.register_structure_hook(AcsFlags, _acs_flags_value)
    conv.register_unstructure_hook(AcsFlags, _fmt_acs_flags)
    conv.register_structure_hook(PcieType, _pcie_type_value)
    conv.register_unstructure_hook(PcieType, lambda t: t.name.lower())
    conv.register_structure_hook(IommuKind, _iommu_kind_value)
    conv.register_unstructure_hook(IommuKind, lambda k: k.value)

    # Collections: lists in the file; frozensets sorted.
    conv.register_structure_hook_factory(_is_collection, _collection_hook_factory(conv))
    conv.register_unstructure_hook_func(_is_frozenset, _sorted_list)
    conv.register_unstructure_hook_func(_is_tuple, lambda v: [conv.unstructure(x) for x in v])

    def hex_field(what: str, bits: int, width: int = 0, optional: bool = False) -> Any:
        parse = _hex_parser(what, bits)
        width = width or (bits + 3) // 4

        def struct(value: object, _type: object) -> int | None:
            if optional and value is None:
                return None
            return parse(value)

        return override(struct_hook=struct, unstruct_hook=_hex_formatter(width))

    devfns = override(
        struct_hook=_list_hook(_devfn_value, frozenset, frozenset[int]),
        unstruct_hook=lambda s: [_fmt_devfn(d) for d in sorted(s)],
    )
    # Nested classes first: a class's generated hook binds its fields' hooks.
    overrides: dict[type, dict[str, Any]] = {
        Acs: {},
        SriovCapability: {"vf_device": hex_field("a VF device id", 16)},
        PciFunction: {
            "vendor": hex_field("a vendor id", 16),
            "device": hex_field("a device id", 16),
            "class_code": hex_field("a class code", 24),
            "dma_alias_devfns": devfns,
            "secondary_bus": hex_field("a bus number", 8, optional=True),
            "subordinate_bus": hex_field("a bus number", 8, optional=True),
            "subsystem_vendor": hex_field("a subsystem vendor id", 16),
            "subsystem_device": hex_field("a subsystem device id", 16),
            "revision": hex_field("a revision id", 8, optional=True),
        },
        PlatformDevice: {},
        VmdDomain: {"domain": hex_field("a PCI domain", 32, width=4)},
        IommuUnit: {"segment": hex_field("a PCI segment", 16)},
        Platform: {},
        IommuInstance: {},
        IdMapping: {
            "domain": hex_field("a PCI domain", 32, width=4),
            "rid_base": hex_field("a requester id", 16),
        },
        Topology: {},
    }
    for cl, fields in overrides.items():
        conv.register_unstructure_hook(
            cl, make_dict_unstructure_fn(cl, conv, _cattrs_omit_if_default=True, **fields)
        )
        inner: Callable[[Any, Any], Any] = make_dict_structure_fn(
            cl, conv, _cattrs_forbid_extra_keys=True, **fields
        )
        conv.register_structure_hook(cl, _mapping_only(cl, inner))
    return conv, overrides


#: The converter, and the per-class field overrides it was made with.
_converter, _OVERRIDES = _make_converter()


# --- errors -----------------------------------------------------------------


def _known_keys(cl: type) -> list[str]:
    keys = [a.name for a in attrs.fields(cl) if a.init]
    return ["schema", *keys] if cl is Topology else keys


def _cut_key(key: str) -> str:
    """A key quoted for an error message, cut to 40 characters."""
    shown = repr(key)
    return shown if len(shown) <= 40 else f"{shown[:40]}...' ({len(key)} characters)"


def _format_exception(exc: BaseException, _type: object) -> str:
    if isinstance(exc, _FieldError):
        return str(exc)
    if isinstance(exc, ForbiddenExtraKeysError):
        known = _known_keys(exc.cl)
        parts = []
        extra = sorted(exc.extra_fields)
        for key in extra[:_MAX_REPORTED]:
            close = difflib.get_close_matches(key, known, n=1) if len(key) <= 64 else []
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            parts.append(f"unknown key {_cut_key(key)} ({hint})")
        if len(extra) > _MAX_REPORTED:
            parts.append(f"and {len(extra) - _MAX_REPORTED} more unknown keys")
        return "; ".join(parts)
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, IommuGroupsError):
        return str(exc)
    return f"invalid value ({type(exc).__name__}: {exc})"


_INDEXED_RE = re.compile(r"^(functions|platform_devices)\[(\d+)\]")


def _item_label(path: str, data: object) -> str:
    """For ``functions[3]...``: `` [0000:00:1c.0]``, the item's address, when known."""
    m = _INDEXED_RE.match(path)
    if m is None or not isinstance(data, Mapping):
        return ""
    items = data.get(m[1])
    key = "address" if m[1] == "functions" else "name"
    try:
        label = items[int(m[2])][key]  # type: ignore[index]
    except (LookupError, TypeError):
        return ""
    if not isinstance(label, str):
        return ""
    if key == "address":
        try:
            label = str(PciAddress.parse(label))
        except ValueError:
            return ""
    return f" [{label}]"


_MAX_REPORTED = 10
#: Problems counted at most: past them a file is refused without reading further.
_MAX_COUNTED = 10_000


def _problems(exc: Exception, data: object, prefix: str = "") -> list[tuple[str, str]]:
    """The problems a cattrs error holds: ``(field.path, problem [address])`` each."""
    if not isinstance(exc, (ClassValidationError, IterableValidationError)):
        return [(prefix, _format_exception(exc, None))]
    out = []
    for line in cattrs.transform_error(exc, path=prefix, format_exception=_format_exception):
        problem, _, where = line.rpartition(" @ ")
        where = where.lstrip(".")
        out.append((where, problem + _item_label(where, data)))
    return out


class TopologyProblems(Exception):
    """What is wrong with a topology's data: the first problems, and how many there are.

    Attributes:
        problems: ``(field path, problem)`` pairs, at most :data:`_MAX_REPORTED`.
        count: how many problems there are in all.
    """

    def __init__(
        self, problems: list[tuple[str, str]], count: int, *, stopped: bool = False
    ) -> None:
        super().__init__(problems, count)
        self.problems = problems[:_MAX_REPORTED]
        self.count = max(count, len(problems))
        self.stopped = stopped

    def text(self, prefix: str = "") -> str:
        """``where: problem; ...; and N more problems``, each path after ``prefix``."""
        parts = []
        for where, problem in self.problems:
            full = f"{prefix}.{where}" if prefix and where else (prefix or where)
            parts.append(f"{full}: {problem}" if full else problem)
        extra = self.count - len(self.problems)
        text = "; ".join(parts)
        if self.stopped:
            text += f"; and at least {extra} more problems (counting stopped at {self.count})"
        elif extra > 0:
            text += f"; and {extra} more problem{'s' if extra > 1 else ''}"
        return text


#: The lists of a topology file, structured item by item (so that a file with
#: 300,000 bad entries costs one failed item each, and only the problems
#: reported are put in words).
_LISTS: tuple[tuple[str, type], ...] = (
    ("functions", PciFunction),
    ("platform_devices", PlatformDevice),
    ("iommus", IommuInstance),
    ("id_mappings", IdMapping),
)


def _field_hooks(cl: type) -> dict[str, tuple[Callable[[Any, Any], Any], Any]]:
    """Each init field of ``cl`` -> (the structure hook the converter's generated
    function calls for it, the type it passes): the field's override, else the
    converter's hook for the field's type."""
    overrides = _OVERRIDES.get(cl, {})
    hooks: dict[str, tuple[Callable[[Any, Any], Any], Any]] = {}
    for a in attrs.fields(cl):
        if not a.init:
            continue
        o = overrides.get(a.name)
        hook = o.struct_hook if o is not None and o.struct_hook is not None else None
        hooks[a.name] = (hook or _converter.get_structure_hook(a.type), a.type)
    return hooks


_MISSING = object()


class _Fast:
    """Structures a list item the quick way, ``None`` when it must go the slow way.

    The quick way calls, key by key, the same hooks as the converter's
    generated function and then the class itself, so what it makes is what
    the converter makes; a leaf value met before (a vendor id, a PF's
    address, an ACS capability) is converted once per file. An item it does
    not take (not a ``dict``, a key the class does not know, any value a hook
    or the class refuses) is left to the converter, which then finds and words
    the problem; nothing is checked less.
    """

    __slots__ = ("cache", "cl", "hooks")

    def __init__(self, cl: type) -> None:
        self.cl = cl
        self.hooks = _field_hooks(cl)
        #: (key, value) -> converted value, for values of exactly str or int
        #: (never bool: ``True == 1``) and objects holding only those.
        self.cache: dict[tuple[str, Any], Any] = {}

    def __call__(self, item: object) -> Any:
        kwargs = self.arguments(item)
        if kwargs is None:
            return None
        try:
            return self.cl(**kwargs)
        except Exception:  # the converter finds it again and says what it is
            return None

    def arguments(self, item: object) -> dict[str, Any] | None:
        """The class's arguments for ``item``, converted; ``None`` when a hook refuses one."""
        if type(item) is not dict:
            return None
        hooks, cache = self.hooks, self.cache
        kwargs: dict[str, Any] = {}
        try:
            for key, value in item.items():
                t = value.__class__
                if t is str or t is int:
                    ck: tuple[str, Any] | None = (key, value)
                elif t is dict and all(
                    v.__class__ is str or v.__class__ is int for v in value.values()
                ):
                    ck = (key, tuple(value.items()))
                else:
                    ck = None
                if ck is not None:
                    found = cache.get(ck, _MISSING)
                    if found is not _MISSING:
                        kwargs[key] = found
                        continue
                hook, type_ = hooks[key]
                made = kwargs[key] = hook(value, type_)
                if ck is not None and key != "address":  # an address is met once
                    cache[ck] = made
        except Exception:  # the converter finds it again and says what it is
            return None
        return kwargs


#: The device and function of each slot-and-function part of a written address
#: (``"1f.7"``: the text after ``dddd:bb:``), as :data:`_WRITTEN_ADDRESS_RE` reads it.
_WRITTEN_DEVFNS: dict[str, tuple[int, int]] = {
    f"{dev:02x}.{fn:x}": (dev, fn) for dev in range(32) for fn in range(8)
}
#: The bus part of a written address (``"1f:"``) -> the bus number.
_WRITTEN_BUSES: dict[str, int] = {f"{bus:02x}:": bus for bus in range(256)}
#: The domain part of a written address, ``dddd:``.
_WRITTEN_DOMAIN_RE = re.compile(r"([0-9a-f]{4}):")

#: JSON whitespace, as the ``json`` module skips it.
_JSON_WS = re.compile(r"[ \t\n\r]*")
#: The start of a function's entry up to its address's opening quote.
_ENTRY_HEAD_RE = re.compile(r'\{[ \t\n\r]*"address"[ \t\n\r]*:[ \t\n\r]*"')
#: A function's fields after its address, in order (what an entry read before
#: gives the entries whose text after the address is its own).
_AFTER_ADDRESS = operator.attrgetter(*(a.name for a in attrs.fields(PciFunction)[1:]))


class _NotQuick(Exception):
    """The text is not read the quick way; :func:`parse_json` reads it."""


class _JsonTopologyReader:
    """Reads a topology file's JSON text as :func:`parse_json` does, but builds
    the entries of its top-level ``functions`` list into their
    :class:`PciFunction` as they are read, so that the parsed entries never all
    exist at the same time.

    The document is read with the ``json`` module's own scanner, value by
    value (every value but the ``functions`` list, and every entry of it that
    is not taken the quick way below, is what :func:`parse_json` makes of
    it). An entry goes the quick way of :class:`_Fast`; one it does not take
    stays an object, for the converter to word its problem.

    The quick way of a file this module wrote: the text of an entry after its
    address (``"dddd:bb:dd.f"``) up to the brace that closes it, on a line
    of its own, is the same in many entries (a machine has many functions of
    one kind); an entry whose text after its address is that of an entry read
    before (which was parsed, had no key twice and ended at that brace) is
    that entry's function at its own address. Anything unusual (a key
    twice, a syntax error, a value too deep) stops the reading: the caller
    parses the text with :func:`parse_json`, which words the problem.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        decoder = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys)
        # the decoder's own scanners (``raw_decode`` calls them on the whole text)
        self.scan: Callable[[str, int], tuple[Any, int]] = decoder.scan_once  # type: ignore[attr-defined]
        self.string: Callable[[str, int], tuple[str, int]] = decoder.parse_string  # type: ignore[attr-defined]
        self.fast = _Fast(PciFunction)
        #: the text after an address -> the other fields of its function
        self.templates: dict[str, tuple[Any, ...]] = {}
        #: ``"dddd:"`` -> domain, for the written addresses met
        self.domains: dict[str, int] = {}

    def document(self) -> dict[str, Any]:
        """The top-level object (``json.loads``' ``decode``, key by key)."""
        text = self.text
        idx = _skip(text, 0)
        if not text.startswith("{", idx):
            raise _NotQuick
        idx = _skip(text, idx + 1)
        data: dict[str, Any] = {}
        while True:
            if not text.startswith('"', idx):
                raise _NotQuick  # "{}" too: nothing to gain
            key, idx = self.string(text, idx + 1)
            idx = _skip(text, idx)
            if not text.startswith(":", idx) or key in data:
                raise _NotQuick
            idx = _skip(text, idx + 1)
            if key == "functions" and text.startswith("[", idx):
                data[key], idx = self.functions(idx)
            else:
                data[key], idx = self.scan(text, idx)
            idx = _skip(text, idx)
            if text.startswith(",", idx):
                idx = _skip(text, idx + 1)
            elif text.startswith("}", idx):
                break
            else:
                raise _NotQuick
        if _skip(text, idx + 1) != len(text):
            raise _NotQuick
        return data

    def functions(self, idx: int) -> tuple[list[Any], int]:
        """The ``functions`` list at ``idx`` (its ``[``) and the index after it."""
        text = self.text
        out: list[Any] = []
        idx = _skip(text, idx + 1)
        if text.startswith("]", idx):
            return out, idx + 1
        # The quick way's spellings, from the first entry: its text up to the
        # address, and the line that closes it (the entry's own indentation).
        quick: tuple[str, str] | None = None
        m = _ENTRY_HEAD_RE.match(text, idx)
        line = text.rfind("\n", 0, idx) + 1
        if m is not None and line and not text[line:idx].strip(" \t"):
            quick = (m[0], "\n" + text[line:idx] + "}")
        between: str | None = None  # the text between two entries
        head, close = quick if quick is not None else ("\0", "\0")  # "\0": never in JSON
        templates, domains, append = self.templates, self.domains, out.append
        while True:
            # An entry read the quick way: ``entry``'s first steps, the usual case inline.
            end = -1
            if text.startswith(head, idx):
                at = idx + len(head)
                stop = text.find(close, at + 12)
                if stop >= 0:
                    values = templates.get(text[at + 12 : stop])
                    if values is not None:
                        domain = domains.get(text[at : at + 5])
                        bus = _WRITTEN_BUSES.get(text[at + 5 : at + 8])
                        devfn = _WRITTEN_DEVFNS.get(text[at + 8 : at + 12])
                        if domain is not None and bus is not None and devfn is not None:
                            address = named_address(domain, bus, *devfn, text[at : at + 12])
                            append(PciFunction(address, *values))
                            end = stop + len(close)
            if end < 0:
                end = self.entry(idx, quick, out)
            if between is not None and text.startswith(between, end):
                idx = end + len(between)
                continue
            after = _skip(text, end)
            if text.startswith("]", after):
                return out, after + 1
            if not text.startswith(",", after):
                raise _NotQuick
            idx = _skip(text, after + 1)
            if between is None:
                between = text[end:idx]

    def entry(self, idx: int, quick: tuple[str, str] | None, out: list[Any]) -> int:
        """Read the entry at ``idx`` into ``out``; the index after it."""
        text = self.text
        key: str | None = None
        if quick is not None and text.startswith(quick[0], idx):
            head, close = quick
            at = idx + len(head)
            stop = text.find(close, at + 12)
            if stop >= 0:
                key = text[at + 12 : stop]
                values = self.templates.get(key)
                if values is not None:
                    address = self.address(text, at)
                    if address is not None:
                        out.append(PciFunction(address, *values))
                        return stop + len(close)
        item, end = self.scan(text, idx)
        made = self.fast(item)
        if made is None:
            out.append(item)  # the converter words its problem
            return end
        out.append(made)
        if key is not None and quick is not None:
            at = idx + len(quick[0])
            # it ended at the line that closes it, and its address is written as usual
            if (
                end == at + 12 + len(key) + len(quick[1])
                and self.address(text, at) == made.address
            ):
                self.templates[key] = _AFTER_ADDRESS(made)
        return end

    def address(self, text: str, at: int) -> PciAddress | None:
        """The written address (``dddd:bb:dd.f``) at ``at``, if there is one."""
        devfn = _WRITTEN_DEVFNS.get(text[at + 8 : at + 12])
        bus = _WRITTEN_BUSES.get(text[at + 5 : at + 8])
        if devfn is None or bus is None:
            return None
        domain = self.domains.get(text[at : at + 5])
        if domain is None:
            m = _WRITTEN_DOMAIN_RE.fullmatch(text, at, at + 5)
            if m is None:
                return None
            domain = self.domains[m[0]] = int(m[1], 16)
        return named_address(domain, bus, devfn[0], devfn[1], text[at : at + 12])


def _skip(text: str, idx: int) -> int:
    """The index of the first character at or after ``idx`` that is not JSON whitespace."""
    m = _JSON_WS.match(text, idx)
    return idx if m is None else m.end()


def parse_json_topology(text: str, path: str) -> tuple[object, bool]:
    """Parse JSON text as :func:`parse_json` does (the same errors), building
    the entries of a topology file's ``functions`` as they are read.

    Returns the data and whether its ``functions`` list holds functions
    already built (:class:`PciFunction`, for :func:`_topology_from_dict`'s
    ``built``) in place of the entries that make them; otherwise the data is
    what :func:`parse_json` returns.
    """
    try:
        return _JsonTopologyReader(text).document(), True
    except Exception:  # anything unusual: read as it is, and any problem worded
        return parse_json(text, path), False


_FUNCTION_TYPE = frozenset({PciFunction})


def _structure_lists(
    body: Mapping[str, Any], *, consume: bool = False, built: bool = False
) -> dict[str, list[Any]]:
    """Structure each list of ``body`` item by item.

    With ``consume``, each item of ``body``'s lists is dropped once it is
    structured (the caller owns ``body`` and wants the memory back at once).
    With ``built``, entries of ``functions`` that are a :class:`PciFunction`
    already are taken as they are (:func:`parse_json_topology`).

    Raises:
        TopologyProblems: the first problems, and their count.
    """
    out: dict[str, list[Any]] = {}
    problems: list[tuple[str, str]] = []
    count = 0
    first: BaseException | None = None
    for field, cls in _LISTS:
        value = body.get(field)
        if not isinstance(value, list):
            continue  # absent, or not a list: the converter says so
        take = built and cls is PciFunction
        if take and _FUNCTION_TYPE.issuperset(map(type, value)):  # all built already
            out[field] = value if consume else list(value)
            continue
        items: list[Any] = []
        fast = _Fast(cls)
        for i, item in enumerate(value):
            made = item if take and item.__class__ is PciFunction else fast(item)
            if made is not None:
                items.append(made)
                if consume:
                    value[i] = None
                continue
            try:
                items.append(_converter.structure(item, cls))
                if consume:
                    value[i] = None
            except (ClassValidationError, IterableValidationError, _FieldError) as exc:
                first = first or exc
                if len(problems) < _MAX_REPORTED:
                    found = _problems(exc, body, f"{field}[{i}]")
                    problems += found
                    count += len(found)
                else:
                    count += 1
                if count >= _MAX_COUNTED:
                    raise TopologyProblems(problems, count, stopped=True) from first
        out[field] = items
    if count:
        raise TopologyProblems(problems, count) from first
    return out


def structure_topology(body: Mapping[str, Any]) -> Topology:
    """A :class:`Topology` from a topology file's data (its ``schema`` key removed).

    The lists are structured item by item, the rest as a whole, and the
    topology is validated once.

    Raises:
        TopologyProblems: the data does not follow the schema (the cattrs
            error is its ``__cause__``).
        IommuGroupsError: the topology it describes is inconsistent
            (:class:`~iommugroups.TopologyError`).
    """
    return _structure_topology(body, consume=False)


def _structure_topology(
    body: Mapping[str, Any], *, consume: bool, built: bool = False
) -> Topology:
    """:func:`structure_topology`; for ``consume`` and ``built``, see :func:`_structure_lists`."""
    lists: dict[str, Any] = _structure_lists(body, consume=consume, built=built)
    # the rest with the lists empty, and the platform facts (which name
    # functions) aside; then the whole topology validated once
    rest = {**body, **{field: [] for field in lists}}
    platform = rest.pop("platform", None)
    try:
        topo: Topology = _converter.structure(rest, Topology)
    except (ClassValidationError, IterableValidationError, _FieldError) as exc:
        found = _problems(exc, body)
        raise TopologyProblems(found, len(found)) from exc
    if platform is not None:
        try:
            lists["platform"] = _converter.structure(platform, Platform)
        except (ClassValidationError, IterableValidationError, _FieldError) as exc:
            found = _problems(exc, body, "platform")
            raise TopologyProblems(found, len(found)) from exc
    seen: dict[str, int] = {}
    for i, dev in enumerate(lists.get("platform_devices", ())):
        if dev.iommu is None:
            continue  # never grouped
        if dev.name in seen:  # the kernel's names are unique; groups are kept by name
            raise TopologyProblems(
                [
                    (
                        f"platform_devices[{i}].name",
                        f"{dev.name[:80]!r} is also the name of "
                        f"platform_devices[{seen[dev.name]}]",
                    )
                ],
                1,
            )
        seen[dev.name] = i
    return attrs.evolve(topo, **lists) if lists else topo


# --- public functions -------------------------------------------------------


def topology_to_dict(topo: Topology) -> dict[str, Any]:
    """The topology as plain JSON/TOML data, ``schema`` first, defaults left out.

    >>> from iommugroups._kernel.model import PciFunction
    >>> topology_to_dict(Topology([PciFunction("00:02.0", vendor=0x8086, device=0x1234)]))
    {'schema': 'iommugroups.topology/1', 'functions': [{'address': '0000:00:02.0', \
'vendor': '0x8086', 'device': '0x1234'}]}
    """
    body: dict[str, Any] = _converter.unstructure(topo, Topology)
    out: dict[str, Any] = {"schema": SCHEMA}
    if "name" in body:
        out["name"] = body.pop("name")
    out.update(body)
    return out


def topology_from_dict(data: object, path: str = "<string>") -> Topology:
    """Build a :class:`Topology` from parsed JSON/TOML data.

    A missing ``schema`` key is accepted; a different one is refused.

    Raises:
        InputError: the data does not follow the schema (the message names
            the field path, e.g. ``functions[3].acs.ctrl``), or the topology
            it describes is inconsistent (duplicate addresses, ...).
    """
    return _topology_from_dict(data, path, consume=False)


def _topology_from_dict(
    data: object, path: str, *, consume: bool, built: bool = False
) -> Topology:
    """:func:`topology_from_dict`; with ``consume`` (the caller owns ``data`` and
    drops it afterwards) each entry of its lists is dropped once structured;
    with ``built``, the data is from :func:`parse_json_topology`."""
    if not isinstance(data, Mapping):
        raise InputError(path, f"expected an object at the top level, got {_describe(data)}")
    body = dict(data)
    schema = body.pop("schema", SCHEMA)
    if schema != SCHEMA:
        raise InputError(
            path, f"schema: unsupported schema {schema!r} (this version reads {SCHEMA!r})"
        )
    try:
        return _structure_topology(body, consume=consume, built=built)
    except TopologyProblems as exc:
        raise InputError(path, exc.text()) from exc.__cause__
    except IommuGroupsError as exc:  # TopologyError from Topology's validation
        raise InputError(path, str(exc)) from exc


def dumps_topology(topo: Topology, fmt: TopologyFormat = "json") -> str:
    """Write a topology as JSON (2-space indent) or TOML, ending in a newline."""
    data = topology_to_dict(topo)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "toml":
        return tomli_w.dumps(data)
    raise ValueError(f"unknown topology format {fmt!r} (expected 'json' or 'toml')")


_TOML_WHERE_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):  # the usual case: no key twice
        return out
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            raise _FieldError(f"duplicate key {key!r}")
        seen.add(key)
    raise AssertionError("unreachable: a key was repeated")  # pragma: no cover


def parse_json(text: str, path: str) -> object:
    """Parse JSON text; syntax errors become :class:`InputError` with a line."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InputError(
            path, f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno
        ) from None
    except RecursionError:
        raise InputError(path, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # a duplicate key, an integer too long to convert
        raise InputError(path, f"invalid JSON: {exc}") from None


def parse_toml(text: str, path: str) -> dict[str, Any]:
    """Parse TOML text; syntax errors become :class:`InputError` with a line."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, text, path) from None
    except RecursionError:
        raise InputError(path, "invalid TOML: nested too deeply") from None
    except ValueError as exc:  # an integer too long to convert
        raise InputError(path, f"invalid TOML: {exc}") from None
    return data


def _toml_error(exc: ValueError, text: str, path: str) -> InputError:
    # Python 3.14 (and tomli 2.2) have msg/lineno/colno; older ones put the
    # place at the end of the message: "Invalid value (at line 3, column 7)".
    msg, lineno, colno = (getattr(exc, a, None) for a in ("msg", "lineno", "colno"))
    if isinstance(msg, str) and isinstance(lineno, int):
        return InputError(path, f"invalid TOML: {msg} (column {colno})", lineno)
    message = str(exc)
    m = _TOML_WHERE_RE.search(message)
    if m is not None:
        return InputError(path, f"invalid TOML: {message[: m.start()]} (column {m[2]})", int(m[1]))
    if message.endswith("(at end of document)"):
        message = message[: -len("(at end of document)")].rstrip()
        return InputError(path, f"invalid TOML: {message} (at end of file)", text.count("\n") + 1)
    return InputError(path, f"invalid TOML: {message}")


def loads_topology(text: str, fmt: TopologyFormat, path: str = "<string>") -> Topology:
    """Read a topology file's text (JSON or TOML).

    Raises:
        InputError: a syntax error (with its line) or a schema error (with
            the field path).
    """
    if fmt == "json":
        data, built = parse_json_topology(text, path)
        return _topology_from_dict(data, path, consume=True, built=built)
    if fmt == "toml":
        return topology_from_dict(parse_toml(text, path), path)
    raise ValueError(f"unknown topology format {fmt!r} (expected 'json' or 'toml')")
