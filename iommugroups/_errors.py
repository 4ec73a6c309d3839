"""One error hierarchy, rooted at :class:`IommuGroupsError`.

Every error is also a builtin (``ValueError``, ``KeyError``) so callers can
catch it generically, the way :mod:`packaging` does with ``InvalidVersion``.
Errors about input carry structured fields (``path``, ``line``) so the CLI can
say *where* the problem is without a traceback.
"""

from __future__ import annotations

__all__ = [
    "ConfigSpaceError",
    "InputError",
    "InvalidAddress",
    "MAX_PROBLEM_CHARS",
    "IommuGroupsError",
    "ParameterError",
    "TopologyError",
    "UnknownDevice",
    "cut",
]


class IommuGroupsError(Exception):
    """Base class of every error this library raises on purpose."""


class InvalidAddress(IommuGroupsError, ValueError):
    """A PCI address string is not ``[dddd:]bb:dd.f``."""


class TopologyError(IommuGroupsError, ValueError):
    """A topology is inconsistent (duplicate addresses, overlapping buses, ...).

    Attributes:
        devices: the addresses (as strings) the problem is about.
    """

    def __init__(self, message: str, devices: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.devices = devices


class ParameterError(IommuGroupsError, ValueError):
    """A kernel parameter (``pci=config_acs=``, ``pcie_acs_override=``) cannot be parsed."""


class ConfigSpaceError(IommuGroupsError, ValueError):
    """Raw PCI configuration space cannot be decoded."""


class UnknownDevice(IommuGroupsError, KeyError):
    """A device named by the caller is not in the topology."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


#: Longest ``problem`` an :class:`InputError` keeps, in characters; the rest is
#: cut (an error must not echo a 3 MB key back at the user).
MAX_PROBLEM_CHARS = 2000


def cut(text: str, limit: int = MAX_PROBLEM_CHARS) -> str:
    """``text``, cut after ``limit`` characters with a count of what was left out.

    >>> cut("abcdef", 3)
    'abc... (3 more characters)'
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


class InputError(IommuGroupsError, ValueError):
    """Input we read is malformed: names the file and, where known, the line.

    Attributes:
        path: the file (or ``"<stdin>"``, ``"<string>"``).
        line: 1-based line number, or ``None`` when not line-oriented.
        problem: what is wrong, in words (cut after
            ``MAX_PROBLEM_CHARS`` characters).
    """

    def __init__(self, path: str, problem: str, line: int | None = None) -> None:
        self.path = path = cut(path, 4096)
        self.line = line
        self.problem = problem = cut(problem)
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")
