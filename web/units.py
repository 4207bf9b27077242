"""Values with their unit, scaled by SI (``k``, ``M``, ...) or IEC (``Ki``, ``Mi``, ...) prefixes.

The one formatter of the web site: the overview, the metric page, the API's ``display`` text and the
graph legends all call :func:`format_value`, so ``7.3e7`` bytes read ``69.6 MiB`` everywhere.

``base`` is the metric's (a slurper's ``MetricSpec.base``, Munin's ``graph_args --base``): 1000 gives
SI prefixes, 1024 IEC ones. Three significant digits, like rrdtool's ``%.3lf%s``; a count below 1000
that is a whole number is printed whole (``12 jobs``, not ``12.0 jobs``).
"""

from __future__ import annotations

import math
import re

BASES = (1000, 1024)
_SI_UP = ("", "k", "M", "G", "T", "P", "E")
_IEC_UP = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_SI_DOWN = ("m", "µ", "n", "p")
#: unit spellings sources use, and the symbol the page shows
_ALIASES = {
    "byte": "B",
    "bytes": "B",
    "octets": "B",
    "bit": "b",
    "bits": "b",
    "second": "s",
    "seconds": "s",
    "sec": "s",
    "percent": "%",
}
#: units a value below 1 is scaled down for (0.004 s is 4 ms; a 0.047 success ratio stays 0.047)
_SCALE_DOWN = frozenset({"s", "W", "V", "A", "Hz", "J", "B", "b"})
#: units that never take a prefix
_NO_PREFIX = frozenset({"%", "°C", "K", "dB"})


class UnitError(ValueError):
    """A unit base that is neither 1000 nor 1024."""


def normalize(unit: str) -> str:
    """A unit as the page writes it: ``bytes`` -> ``B``, ``bytes/s`` -> ``B/s``; others unchanged."""
    unit = unit.strip()
    for per in (" per ${graph_period}", " per second", " per sec"):  # Munin's vlabels
        if unit.endswith(per):
            unit = unit[: -len(per)] + "/s"
    head, sep, tail = unit.partition("/")
    head = _ALIASES.get(head.lower(), head)
    if sep:
        tail = _ALIASES.get(tail.lower(), tail)
    return head + sep + tail


def rate_unit(unit: str) -> str:
    """The unit of a counter's per-second rate: ``B`` -> ``B/s``; ``""`` -> ``/s``; ``B/s`` stays."""
    unit = normalize(unit)
    return unit if unit.endswith("/s") else f"{unit}/s"


def check_base(base: int) -> int:
    """``base`` when it is 1000 or 1024, else a :class:`UnitError` naming it."""
    if base not in BASES:
        raise UnitError(f"unit base {base!r}: must be 1000 (SI prefixes) or 1024 (IEC prefixes)")
    return base


def format_value(value: float | None, unit: str = "", base: int = 1000) -> str:
    """``value`` with a prefix and ``unit``: ``format_value(7.3e7, "B", 1024)`` is ``"69.6 MiB"``.

    None (no value; Munin's ``U``) is ``"U"``. A unit starting with ``/`` (a unitless rate) is joined
    without a space: ``"3.20 k/s"``.
    """
    if value is None:
        return "U"
    check_base(base)
    unit = normalize(unit)
    if not math.isfinite(value):
        return _join(str(value), "", unit)
    value, unit, base = unprefixed(float(value), unit, base)
    number, prefix = _scaled(float(value), unit, base)
    return _join(number, prefix, unit)


_PREFIXED = re.compile(r"^([kKMGTPE])(i?)([Bb])$")


def unprefixed(value: float, unit: str, base: int) -> tuple[float, str, int]:
    """A unit that carries its own prefix (``MiB``, ``kB/s``, as HTCondor and Enstore report) in its
    base unit, so that it takes one prefix, not two: 512,000 MiB is ``500 GiB``, never ``512 kMiB``.
    The prefix's kind (``Mi`` or ``M``) decides the base."""
    head, sep, tail = unit.partition("/")
    m = _PREFIXED.match(head)
    if not m:
        return value, unit, base
    step = 1024 if m.group(2) else 1000
    exp = "kMGTPE".index(m.group(1).lower() if m.group(1) == "K" else m.group(1)) + 1
    return value * float(step) ** exp, m.group(3) + sep + tail, step


def _scaled(value: float, unit: str, base: int) -> tuple[str, str]:
    """The number text and the prefix for ``value``."""
    size = abs(value)
    head = unit.split("/", 1)[0]
    if head in _NO_PREFIX or size == 0:
        return _number(value), ""
    if size < 1:
        if head not in _SCALE_DOWN or base != 1000:
            return _digits(value), ""
        exp = min(len(_SI_DOWN), math.ceil(-math.log10(size) / 3))
        return _digits(value * 1000.0**exp), _SI_DOWN[exp - 1]
    ups = _IEC_UP if base == 1024 else _SI_UP
    exp = min(len(ups) - 1, int(math.log(size, base)) if size >= base else 0)
    scaled = value / float(base) ** exp
    if (
        round(abs(scaled), 2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0) >= base
        and exp < len(ups) - 1
    ):
        exp, scaled = exp + 1, value / float(base) ** (exp + 1)  # 999.97 k rounds to 1.00 M, not 1000 k
    if exp == 0:
        return _number(value), ""
    return _digits(scaled, small=False), ups[exp]


def _number(value: float) -> str:
    """A value without a prefix: whole numbers whole, others with three significant digits."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return _digits(value)


def _digits(value: float, *, small: bool = True) -> str:
    """Three significant digits: ``1.23``, ``12.3``, ``123``; small values as ``0.0472``.

    ``small=False`` for a scaled value, where 0.99997 M is ``1.00`` M.
    """
    size = abs(value)
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1 or not small:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _join(number: str, prefix: str, unit: str) -> str:
    if not unit:
        return f"{number} {prefix}".rstrip()
    if unit.startswith("/"):
        return f"{number} {prefix}{unit}" if prefix else f"{number}{unit}"
    return f"{number} {prefix}{unit}"
