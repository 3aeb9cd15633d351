"""Byte-size parsing and formatting shared by instances, reports and the CLI.

Capacities are written the way hardware papers write them: ``64 KiB`` is
65536 bytes (binary prefix), ``100 KB`` is 100000 bytes (decimal prefix), and
a plain integer is a byte count.  Everything internal is kept in bits so that
tensors of different precisions can share one buffer without rounding.
"""

from __future__ import annotations

import re
from fractions import Fraction

_PREFIX = {"": 1, **{p: 1000**(i + 1) for i, p in enumerate("kmgtpezy")},
           **{p + "i": 1024**(i + 1) for i, p in enumerate("kmgtpezy")}}
"""Decimal and binary prefixes up to yotta: a size past the supported range
(``MAX_BYTES``) is then told so, rather than called unreadable."""
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*([kKmMgGtTpPeEzZyY][iI]?)?\s*([bB])?\s*$")


MAX_BYTES = 2**50
"""The largest size any capacity may have (1 PiB): beyond it no machine
exists to model, and the exact models' coefficients lose precision."""


def parse_bytes(value: object, limit: int = MAX_BYTES) -> int:
    """Return the byte count of ``64 KiB``, ``100 KB``, ``4096`` or ``4096 B``
    (at most ``limit``, by default :data:`MAX_BYTES`).

    Raises ValueError with a message fit for the user when the text is not a
    size, is not a whole number of bytes, or is larger than ``limit``.
    """
    size = _parse_bytes(value)
    if size > limit:
        raise ValueError(f"size {value!r} is beyond the supported range (1 B to {_whole_units(limit)})")
    return size


def _whole_units(n_bytes: int) -> str:
    """``n_bytes`` in the largest binary unit that holds it whole (``1 TiB``)."""
    for power, unit in ((5, "PiB"), (4, "TiB"), (3, "GiB"), (2, "MiB"), (1, "KiB")):
        if n_bytes % 1024**power == 0:
            return f"{n_bytes // 1024**power:,} {unit}"
    return f"{n_bytes:,} B"


def _parse_bytes(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as '64 KiB', got {value!r}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"size must be positive, got {value}")
        return value
    if isinstance(value, float):
        if value <= 0 or value != int(value):
            raise ValueError(f"size must be a positive whole number of bytes, got {value}")
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a size such as '64 KiB', got {value!r}")
    match = _SIZE.match(value)
    if not match and _SIZE.match(value.strip().lstrip("-")):
        raise ValueError(f"size must be positive, got {value!r}")
    if not match:
        raise ValueError(f"cannot read {value!r} as a size; write e.g. '64 KiB', '100 KB' or 65536")
    number, prefix, unit = match.groups()
    if unit == "b":  # a lowercase b is a bit (64 kb is 64 kilobits): never taken for a byte silently
        bytes_then = f"'{number} {prefix or ''}B'"
        decimal = dict(zip("kmgtpezy", ("kilo", "mega", "giga", "tera", "peta", "exa", "zetta", "yotta")))
        binary = dict(zip("kmgtpezy", ("kibi", "mebi", "gibi", "tebi", "pebi", "exbi", "zebi", "yobi")))
        named = ((binary if prefix.lower().endswith("i") else decimal)[prefix[0].lower()]) if prefix else ""
        raise ValueError(f"{value!r} reads as {named}bits (a lowercase b is a bit); write {bytes_then} for bytes, "
                         "or give the size in bytes")
    if prefix and not unit:
        raise ValueError(f"cannot read {value!r} as a size; add the unit B, e.g. '{number} {prefix}B'")
    scale = _PREFIX[(prefix or "").lower()]
    size = Fraction(number) * scale  # exact: 1.5 KiB is 1536 B, and a huge size stays a whole number
    if size <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    if size.denominator != 1:
        raise ValueError(f"size {value!r} is not a whole number of bytes")
    return int(size)


def format_bytes(n_bytes: float) -> str:
    """Human-readable size with binary prefixes (``1.5 MiB``), exact below 1 KiB."""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            if unit == "B":
                return f"{value:,.0f} B" if value == int(value) else f"{value:g} B"
            return f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_count(n: float) -> str:
    """Compact count (``6.85M``) as architects quote traffic figures."""
    value = float(n)
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:g}"


def format_value(value: float | None) -> str:
    """An objective or bound for a sentence: whole numbers with thousands
    separators, others with four significant digits ('-' for None)."""
    if value is None:
        return "-"
    value = float(value)
    if value.is_integer() or abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:,.4g}"


def format_quantity(value: float | None, unit: str) -> str:
    """A total as a person scans it in a table or on an axis: ``888.4 M MAC``,
    ``2.43 MiB`` (bytes get binary prefixes), ``-`` for None."""
    if value is None:
        return "-"
    if unit == "bytes":
        return format_bytes(value)
    magnitude = abs(value)
    for factor, suffix in ((1e15, " P"), (1e12, " T"), (1e9, " G"), (1e6, " M")):
        if magnitude >= factor:
            return f"{value / factor:.4g}{suffix} {unit}".strip()
    return f"{format_value(value)} {unit}".strip()


def whole_number(value: object, what: str) -> int:
    """``value`` as an int when it is one (2 or 2.0), else ValueError naming
    ``what``: a stored tile of 64.5 must be refused, not cut to 64."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------
# durations

MAX_SECONDS = 7 * 24 * 3600.0
"""The longest time limit (a week): longer is a typo, not a plan."""
_SECONDS_PER = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
                "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
                "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(rf"(?:\s*{_NUMBER}\s*[a-zA-Z]+)+\s*")
"""One or more (number, unit) pairs: ``1.5 h``, ``1h 30m``."""
_DURATION_PART = re.compile(rf"({_NUMBER})\s*([a-zA-Z]+)")
_WRITE = "write seconds (90) or a duration (90 s, 3 min, 1.5 h, 1h 30m)"


def parse_seconds(value: object) -> float:
    """Return the seconds of a time limit: a number (seconds) or text such as
    ``90``, ``90 s``, ``3 min``, ``3m``, ``1.5 h`` or ``1h 30m``.

    Raises ValueError with a message fit for the user when the value is not
    a duration, is not positive, or is longer than :data:`MAX_SECONDS`.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"is empty; {_WRITE}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and _is_number(value):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.fullmatch(value) and all(
            unit.lower() in _SECONDS_PER for _, unit in _DURATION_PART.findall(value)):
        seconds = sum(float(number) * _SECONDS_PER[unit.lower()] for number, unit in _DURATION_PART.findall(value))
    else:
        raise ValueError(f"{value!r} is not a duration; {_WRITE}")
    if not seconds > 0:
        raise ValueError(f"{value!r}: a time limit must be positive")
    if not seconds <= MAX_SECONDS:  # also refuses inf and nan
        raise ValueError(f"{value!r} is beyond the supported range (at most a week, {MAX_SECONDS:,.0f} s)")
    return seconds


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def article(word) -> str:
    """``word`` with its indefinite article: ``an add``, ``a conv2d``."""
    text = str(word)
    return f"{'an' if text[:1].lower() in 'aeio' else 'a'} {text}"


def format_number(value: float | None, digits: int = 0) -> str:
    """A value with thousands separators, '-' for None; a fraction keeps up
    to three decimals below 1,000 (296.972 pJ is not 297) and two above, so
    that a product of two shown values (EDP) can be checked by hand."""
    if value is None:
        return "-"
    if digits == 0 and value != round(value):
        places = 3 if abs(value) < 1000 else 2
        return f"{value:,.{places}f}".rstrip("0").rstrip(".")
    return f"{value:,.{digits}f}"
