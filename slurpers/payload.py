"""Reading payloads safely: numbers that must be finite, JSON without NaN or infinity, HTTP errors.

Re-exported by ``slurpers/api.py`` (the module a plugin imports).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from slurpers.errors import PayloadError


def first_lines(text: str, limit: int = 300) -> str:
    """The first meaningful lines of a command's stderr or an HTTP body, joined with " / ", at most
    ``limit`` long: where a tool says what went wrong (its last line is often only a hint such as
    ``Try "sdiag --help" for more information``)."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return " / ".join(line for line in lines if line)[:limit]


def request_error_reason(exc: BaseException) -> str:
    """The useful part of an HTTP client error (requests buries it in nested reprs)."""
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "timed out",
        "certificate verify failed",
    ):
        if marker in text:
            return marker
    return text[:200]


def to_float(value: object, what: str) -> float:
    """Coerce a payload scalar (number or numeric string, as old FTS sends) to a finite float.

    Anything else, including NaN, infinity and integers beyond a float's range, is a PayloadError: a
    source that means 'unknown' says so with null, which the caller maps to None before calling this.
    """
    if isinstance(value, (bool, int, float)):
        number: float | None = _finite(value)
    elif isinstance(value, str):
        try:
            number = _finite(float(value.strip().rstrip("%")))
        except ValueError:
            raise PayloadError(f"{what}: expected a number, got {value!r:.80}") from None
    else:
        raise PayloadError(f"{what}: expected a number, got {value!r:.80}")
    if number is None:
        raise PayloadError(f"{what}: {value!r:.80} is not a finite number")
    return number


def _finite(value: float) -> float | None:
    """``float(value)`` if it is finite, else None (NaN, infinity, an int too large for a float)."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class _NonFinite(ValueError):
    """A JSON number or constant that is not a finite float (raised from inside the decoder)."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _refuse_constant(token: str) -> float:
    raise _NonFinite(token)


def _finite_json_float(token: str) -> float:
    number = float(token)
    if not math.isfinite(number):  # 1e999 overflows to inf without an error
        raise _NonFinite(token)
    return number


def json_decoder(
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> json.JSONDecoder:
    """A decoder like ``json.loads``'s that refuses ``NaN``, ``Infinity``, ``-Infinity`` and ``1e999``.

    Python's json accepts them by default, and they would reach the archive as bogus readings. A
    failure raises ValueError: turn it into a PayloadError with :func:`json_error`.
    """
    return json.JSONDecoder(
        parse_constant=_refuse_constant,
        parse_float=_finite_json_float,
        object_pairs_hook=object_pairs_hook,
    )


_FINITE_JSON = json_decoder()
# strings are skipped whole, so a "NaN" inside one is never mistaken for the constant
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN|-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?')


def _where(text: str, token: str) -> str:
    """'line L column C' of the first ``token`` outside a JSON string."""
    for m in _JSON_TOKEN.finditer(text):
        if m.group() == token:
            line = text.count("\n", 0, m.start()) + 1
            column = m.start() - text.rfind("\n", 0, m.start())
            return f"line {line} column {column}"
    return "an unknown position"


def json_error(exc: ValueError, text: str, what: str) -> PayloadError:
    """The PayloadError for a failure of a :func:`json_decoder` on ``text``, naming the position."""
    if isinstance(exc, _NonFinite):
        where = _where(text, exc.token)
        return PayloadError(f"{what}: {exc.token} at {where} is not a finite number")
    if isinstance(exc, json.JSONDecodeError):
        return PayloadError(f"{what}: not JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
    return PayloadError(f"{what}: not JSON ({exc})")  # e.g. an integer of more than 4300 digits


def load_json(
    text: str, what: str, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None
) -> Any:
    """``json.loads`` for payloads: bad JSON and non-finite numbers are a PayloadError naming ``what``."""
    decoder = _FINITE_JSON if object_pairs_hook is None else json_decoder(object_pairs_hook)
    try:
        return decoder.decode(text)
    except ValueError as exc:
        raise json_error(exc, text, what) from None
