"""The problem collector: every wrong value becomes a ``Problem`` line, and all of them are reported at once.

A section reader asks ``Checker`` for a mapping, a list or a converted value. A wrong value is
recorded (``<file>: <key.path>: <problem> (got <value>)``) and the reader gets None (``get``) or
``Invalid`` (``field`` and the converters) instead, so it can go on to the next key: the user sees
every problem of the file in one run, not one per run.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address, IPv4Network
from typing import Any, TypeVar, cast

from labctl.errors import TopologyError
from labctl.topology.model import HOSTNAME_RE
from labctl.topology.units import parse_duration_ms, parse_size

T = TypeVar("T")

# "No value given", distinct from a YAML null (None), which means "use the default" for most keys.
MISSING: Any = object()


def show(value: object) -> str:
    """A value as the user wrote it, short."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, str):
        plain = value and value.isprintable() and not any(ch.isspace() for ch in value)
        text = value if plain else json.dumps(value)
    elif isinstance(value, int | float | IPv4Address | IPv4Network):
        text = str(value)
    else:
        try:
            text = json.dumps(value, default=str, sort_keys=False)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def key_path(base: str, sub: str | int) -> str:
    """``base`` one level down: ``nodes`` + 1 -> ``nodes[1]``, ``nodes[1]`` + ``ip`` -> ``nodes[1].ip``."""
    if isinstance(sub, int):
        return f"{base}[{sub}]"
    return f"{base}.{sub}" if base else str(sub)


@dataclass(frozen=True)
class Problem:
    """One line of a ``TopologyError``; ``value`` is what the user wrote, shown as ``(got ...)``."""

    file: str
    key: str
    problem: str
    value: Any = MISSING

    def __str__(self) -> str:
        text = f"{self.file}: {self.key or '(top level)'}: {self.problem}"
        if self.value is not MISSING:
            shown = show(self.value)
            if not self.problem.startswith(shown + " "):
                text += f" (got {shown})"
        return text


class Invalid(Exception):
    """A value was wrong; the problem is already recorded."""


class Checker:
    """Collects the problems of one file (``shown`` is its name in messages) and converts values."""

    def __init__(self, shown: str) -> None:
        self.file = shown
        self.problems: list[Problem] = []

    def error(self, key: str, problem: str, value: Any = MISSING) -> None:
        """Record a problem and go on."""
        self.problems.append(Problem(self.file, key, problem, value))

    def fail(self, key: str, problem: str, value: Any = MISSING) -> Invalid:
        """Record a problem and return the exception to raise: ``raise c.fail(...)``."""
        self.error(key, problem, value)
        return Invalid()

    # -- structure

    def mapping(
        self, data: Any, key: str, known: Iterable[str], required: Iterable[str] = ()
    ) -> dict[str, Any]:
        """``data`` as a mapping with only ``known`` keys; missing required keys are reported."""
        if not isinstance(data, dict):
            raise self.fail(key, f"must be a mapping of {', '.join(known)}", data)
        known = tuple(known)
        for name, value in data.items():
            if name not in known:
                close = difflib.get_close_matches(str(name), known, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                self.error(
                    key_path(key, str(name)),
                    f"unknown key ({hint}known keys here: {', '.join(known)})",
                    value,
                )
        for name in required:
            if name not in data:
                self.error(key_path(key, name), "required key is missing")
            elif data[name] is None:
                self.error(key_path(key, name), "must not be empty")
        return {k: v for k, v in data.items() if k in known}

    def sequence(self, data: Any, key: str) -> list[Any]:
        if not isinstance(data, list):
            raise self.fail(key, "must be a list", data)
        return data

    def get(
        self,
        data: Mapping[str, Any],
        key: str,
        name: str,
        convert: Callable[[str, Any], T],
        default: T | Any = MISSING,
    ) -> T | None:
        """``field()``, or None when the value is missing or wrong (the problem is then recorded)."""
        try:
            return self.field(data, key, name, convert, default)
        except Invalid:
            return None

    def field(
        self,
        data: Mapping[str, Any],
        key: str,
        name: str,
        convert: Callable[[str, Any], T],
        default: T | Any = MISSING,
    ) -> T:
        """Convert ``data[name]``; a missing value gives ``default`` (or Invalid if there is none)."""
        path = key_path(key, name)
        if name not in data or data[name] is None:
            if default is MISSING:
                raise Invalid()  # reported by mapping() as a missing required key
            return cast(T, default)
        return convert(path, data[name])

    # -- scalar converters: (key path, raw value) -> value, or record the problem and raise Invalid

    def string(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(key, "must be a string", value)
        return value

    def integer(self, key: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer {low}..{high}", value)
        if not low <= value <= high:
            raise self.fail(key, f"must be in {low}..{high}", value)
        return value

    def port(self, key: str, value: Any) -> int:
        return self.integer(key, value, 1, 65535)

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false", value)
        return value

    def ip(self, key: str, value: Any) -> IPv4Address:
        if not isinstance(value, str):
            raise self.fail(key, "must be an IPv4 address such as 192.0.2.10 (a string)", value)
        try:
            return IPv4Address(value)
        except AddressValueError:
            raise self.fail(key, "is not an IPv4 address", value) from None

    def hostname(self, key: str, value: Any) -> str:
        name = self.string(key, value)
        if name != name.lower() and HOSTNAME_RE.match(name.lower()):
            raise self.fail(
                key,
                "must be lower case (heartbeat lower-cases `uname -n` and its node lines, "
                "so a mixed-case name would not match)",
                value,
            )
        if not HOSTNAME_RE.match(name):
            raise self.fail(
                key,
                "is not a valid host name (a letter, then letters, digits or '-', "
                "at most 63, not ending in '-')",
                value,
            )
        if name == "localhost":
            raise self.fail(key, "cannot be 'localhost'", value)
        return name

    def size(self, key: str, value: Any) -> int:
        try:
            return parse_size(value)
        except ValueError as exc:
            raise self.fail(key, str(exc), value) from None

    def duration(self, key: str, value: Any) -> int:
        try:
            ms = parse_duration_ms(value)
        except ValueError as exc:
            raise self.fail(key, str(exc), value) from None
        if ms <= 0:
            raise self.fail(key, "must be more than 0 (heartbeat refuses it)", value)
        return ms

    def choice(self, key: str, value: Any, choices: Iterable[Any]) -> Any:
        choices = tuple(choices)
        if isinstance(value, bool) or value not in choices:
            raise self.fail(key, f"must be one of {', '.join(str(c) for c in choices)}", value)
        return value

    def matching(self, key: str, value: Any, pattern: re.Pattern[str], what: str) -> str:
        text = self.string(key, value)
        if not pattern.match(text):
            raise self.fail(key, f"is not {what}", value)
        return text


def attempt(fn: Callable[[], T]) -> T | None:
    """``fn()``, or None when it raised ``Invalid`` (its problem is already recorded)."""
    try:
        return fn()
    except Invalid:
        return None


def topology_error(checker: Checker) -> TopologyError:
    """One error carrying every recorded problem, one per line."""
    lines = [str(p) for p in checker.problems]
    return TopologyError("\n".join(lines), lines)
