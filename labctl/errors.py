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
