"""Errors that labctl reports to the user: each carries the exit code the CLI returns."""

from __future__ import annotations

from collections.abc import Sequence


class LabctlError(Exception):
    """Base of every error labctl reports without a traceback."""

    exit_code: int = 1


class TopologyError(LabctlError):
    """A topology file that cannot be used: bad YAML, unknown keys, values that do not fit.

    ``str()`` is one ``<file>: <key.path>: <problem> (got <value>)`` line per problem;
    ``problems`` holds the same lines one by one. Raised before anything is created.
    """

    exit_code = 2

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[str, ...] = tuple(problems) or (message,)


class UsageError(LabctlError):
    """Bad input on the command line (a lab or node name that does not exist...): exit code 2."""

    exit_code = 2


class LabStateError(LabctlError):
    """The lab is not in a state that allows the request (already up, not up, ...): exit code 3."""

    exit_code = 3
