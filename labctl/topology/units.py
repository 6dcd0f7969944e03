"""Sizes ("64MiB", "1GiB", 4096) and durations ("1", "1s", "200ms", 1.5) as the topology writes them.

Each parser returns the value, or raises ``ValueError`` whose text is the problem, ready to be
prefixed with the file and key path by the loader.
"""

from __future__ import annotations

import re

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

_SIZE_UNITS = {"": 1, "B": 1, "KiB": KiB, "MiB": MiB, "GiB": GiB, "TiB": TiB}
_SIZE_RE = re.compile(r"(?P<num>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]*)\Z")
_DECIMAL_HINT = {
    "K": "KiB",
    "KB": "KiB",
    "M": "MiB",
    "MB": "MiB",
    "G": "GiB",
    "GB": "GiB",
    "T": "TiB",
    "TB": "TiB",
    "k": "KiB",
    "kB": "KiB",
    "kb": "KiB",
    "mb": "MiB",
    "gb": "GiB",
}

_DURATION_RE = re.compile(r"(?P<num>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>ms|s)?\Z")


def parse_size(value: object) -> int:
    """Bytes from an integer or a string with a binary unit: B, KiB, MiB, GiB, TiB."""
    if isinstance(value, bool):
        raise ValueError("is not a size (an integer of bytes or a string such as '64MiB')")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if not isinstance(value, str):
        raise ValueError("is not a size (an integer of bytes or a string such as '64MiB')")
    match = _SIZE_RE.match(value.strip())
    if match is None:
        raise ValueError("is not a size (an integer of bytes or a string such as '64MiB', '1GiB')")
    unit = match["unit"]
    if unit not in _SIZE_UNITS:
        hint = _DECIMAL_HINT.get(unit)
        if hint:
            raise ValueError(f"unit '{unit}' is ambiguous: write binary units, e.g. '{match['num']}{hint}'")
        raise ValueError(f"unknown size unit '{unit}' (use B, KiB, MiB, GiB or TiB)")
    # Fractions are exact in binary units only when they land on whole bytes ("1.5GiB" does).
    whole, _, frac = match["num"].partition(".")
    numerator = int(whole + frac) * _SIZE_UNITS[unit]
    denominator = 10 ** len(frac)
    if numerator % denominator:
        raise ValueError("is not a whole number of bytes")
    return numerator // denominator


def parse_duration_ms(value: object) -> int:
    """Milliseconds from seconds (1, 1.5, "2", "2s") or milliseconds ("200ms"), as heartbeat reads them."""
    if isinstance(value, bool):
        raise ValueError("is not a duration (seconds such as 10 or '10s', or milliseconds such as '200ms')")
    if isinstance(value, int | float):
        text = repr(value) if isinstance(value, float) else str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ValueError("is not a duration (seconds such as 10 or '10s', or milliseconds such as '200ms')")
    match = _DURATION_RE.match(text)
    if match is None:
        raise ValueError("is not a duration (seconds such as 10 or '10s', or milliseconds such as '200ms')")
    whole, _, frac = match["num"].partition(".")
    scale = 1 if match["unit"] == "ms" else 1000
    numerator = int(whole + frac) * scale
    denominator = 10 ** len(frac)
    if numerator % denominator:
        raise ValueError("is not a whole number of milliseconds")
    return numerator // denominator


def format_size(size: int) -> str:
    """The largest binary unit that shows ``size`` exactly: 67108864 -> '64MiB'."""
    for unit, factor in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def format_ms(ms: int) -> str:
    """A duration for ha.cf: always in milliseconds with the unit, so no reader has to guess ('1000ms')."""
    return f"{ms}ms"


def human_ms(ms: int) -> str:
    """A duration for people: '10s', '200ms', '1.5s'."""
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    if ms > 1000:
        return f"{ms / 1000:g}s"
    return f"{ms}ms"
