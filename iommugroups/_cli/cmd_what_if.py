"""``iommugroups what-if``: hypothetical changes and the groups they would make."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from .._analysis.change_grammar import parse_change
from .._analysis.whatif import what_if
from .._render.whatif import render_whatif, write_whatif_json
from .common import (
    EXIT_OK,
    HelpFormatter,
    UsageError,
    add_format,
    add_kernel,
    add_source,
    default_reading,
    emit_graph,
    kernel_note,
    modelled_kernel,
    output_format,
    print_notes,
    take_source,
    topology_of,
)

__all__ = ["add", "run"]

_WHATIF_EPILOG = """\
changes (positional CHANGE text, or the options):
  acs-override=downstream,multifunction   out-of-tree pcie_acs_override= (NOT upstream)
  acs-override=id:8086:1234               the same, for devices with these ids
  config-acs=SPEC                         upstream pci=config_acs= (see the docs)
  set-acs=00:1c.0:SV,RR,CR,UF             ACS control bits on a port (flags joined by ,)
  remove-acs=00:1c.0                      no ACS capability on a port
  quirk=isolated:8086:1234                an ACS quirk for these ids
  remove=01:00.0                          remove a device (and what is below it)
  move=01:00@00:1c.4                      move the card in slot 01:00 below port 00:1c.4
  reachable-set                           group with the out-of-tree ACS reachable-set
                                          series (v3) instead of mainline (NOT upstream)
  reachable-set=no-acs-enhanced,no-mmio@00:1e.0
                                          the same, with facts the model lacks stated
  (none of these needs quotes in a shell; the older spellings SV|RR|CR|UF, SLOT=>PORT,
  ';' between config-acs entries and '*' for any device id still work, quoted)

examples:
  iommugroups what-if --example desktop --acs-override downstream,multifunction
  iommugroups what-if docs/_data/machine.json remove-acs=00:03.0 --json
  iommugroups what-if --example desktop --kernel 6.1 remove-acs=00:1c.0

The source comes first when it is a file (or - for stdin); -i FILE is the old,
deprecated spelling.
  iommugroups what-if --example desktop reachable-set
"""


#: what-if options: (option, metavar, help); each becomes "option=VALUE".
_WHATIF_OPTIONS = (
    ("acs-override", "MODES", "out-of-tree pcie_acs_override= modes (not upstream)"),
    ("config-acs", "SPEC", "upstream pci=config_acs= specification"),
    ("set-acs", "PORT:FLAGS", "set a port's ACS control bits"),
    ("remove-acs", "PORT", "remove a port's ACS capability"),
    ("quirk", "QUIRK", "add an ACS quirk (isolated:VVVV:DDDD)"),
    ("remove", "DEVICE", "remove a device and what is below it"),
    ("move", "SLOT@PORT", "move a card to below another port"),
)


class _ChangeAction(argparse.Action):
    """Collect what-if changes, positional or by option, in command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        texts = list(getattr(namespace, "changes", None) or [])
        if option_string is None:  # the positional words: the source first, then changes
            words = [str(v) for v in (values or ())]
            if getattr(namespace, "file", None) is None:
                words = take_source(namespace, words)
            texts.extend(words)
        elif values is None:  # an option given without its optional value
            texts.append(option_string.removeprefix("--"))
        else:
            texts.append(f"{option_string.removeprefix('--')}={values}")
        namespace.changes = texts


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``what-if`` command."""
    wi = sub.add_parser(
        "what-if",
        help="apply changes (ACS override, ACS on a port, a quirk, moving a card, the "
        "reachable-set proposal) and diff",
        description="Apply hypothetical changes to the topology and print the difference of "
        "the groups: which split, which merged, which are unchanged. Changes that no "
        "upstream kernel makes (the out-of-tree pcie_acs_override patch) are labelled as "
        "such, with what they cost in isolation. The source defaults to this machine.",
        epilog=_WHATIF_EPILOG,
        formatter_class=HelpFormatter,
    )
    wi.add_argument(
        "changes",
        nargs="*",
        metavar="[SOURCE] CHANGE",
        action=_ChangeAction,
        help="the source (a file, - for stdin; default: this machine), then changes in the "
        "text form (see the epilog), e.g. acs-override=downstream; changes apply in "
        "command-line order",
    )
    for opt, metavar, text in _WHATIF_OPTIONS:
        wi.add_argument(
            f"--{opt}", dest="changes", action=_ChangeAction, metavar=metavar, help=text
        )
    wi.add_argument(
        "--reachable-set",
        dest="changes",
        action=_ChangeAction,
        nargs="?",
        metavar="FACTS",
        help="group with the out-of-tree ACS reachable-set series instead of mainline "
        "(not upstream); FACTS: no-acs-enhanced, mmio@BRIDGE, no-mmio@BRIDGE",
    )
    add_source(wi, positional=False)
    add_kernel(wi)
    add_format(wi, dot=True)

    wi.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    texts = list(args.changes or ())
    if not texts:
        raise UsageError("no change given (see `iommugroups what-if --help`)")
    changes = [parse_change(t) for t in texts]
    reading = default_reading(args)
    topo = topology_of(reading)
    kernel = modelled_kernel(args, reading)
    print_notes(reading.unknowns)
    kernel_note(kernel, args, reading, topo)
    result = what_if(topo, changes, kernel=kernel)
    fmt = output_format(args)
    if fmt == "json":  # entry by entry: a large result is never held as JSON text
        items = result.json_items()
        schema = next(items)
        write_whatif_json([schema, ("kernel", str(kernel)), *items], sys.stdout.write)
    elif fmt in ("dot", "svg"):
        emit_graph(args, result.topology_after, result.after, "after: " + "; ".join(texts))
    else:
        sys.stdout.write(render_whatif(result))
    return EXIT_OK
