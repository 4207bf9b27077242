"""A small, safe evaluator of Munin's ``cdef`` (rrdtool RPN) for the values the web shows as numbers.

rrdtool draws a cdef itself (rrd/graphargs.py hands it over as a CDEF); the series JSON/CSV that uPlot draws
and the last value a page prints are computed here, with the same meaning. Only what Munin's plugins use
is understood: numbers, ``+ - * /``, ``UN``, ``ADDNAN``, ``IF``, ``MIN``, ``MAX`` and the field names of
the plugin's graph. Anything else is refused with an :class:`RPNError` naming the token; callers then show
the raw value and log a warning, so a bad cdef never breaks a page.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)
_NUMBER = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: operator -> (operands it pops)
OPERATORS = {"+": 2, "-": 2, "*": 2, "/": 2, "UN": 1, "ADDNAN": 2, "IF": 3, "MIN": 2, "MAX": 2}
MAX_TOKENS = 64


class RPNError(ValueError):
    """A cdef this evaluator does not accept; the message names the expression and the token."""


def tokens(expr: str, names: Sequence[str]) -> list[str]:
    """The checked tokens of ``expr``: numbers, known operators and ``names`` (the graph's fields).

    The stack is simulated, so an expression that would underflow or leave more than one value is
    refused here rather than while drawing.
    """
    parts = expr.split(",")
    if not expr or len(parts) > MAX_TOKENS:
        raise RPNError(f"cdef {expr[:60]!r}: empty or longer than {MAX_TOKENS} tokens")
    depth = 0
    for tok in parts:
        if tok in OPERATORS:
            need = OPERATORS[tok]
            if depth < need:
                raise RPNError(f"cdef {expr[:60]!r}: {tok!r} needs {need} values, the stack has {depth}")
            depth -= need - 1
        elif _NUMBER.match(tok) or (_NAME.match(tok) and tok in names):
            depth += 1
        else:
            what = "field" if _NAME.match(tok) else "token"
            raise RPNError(
                f"cdef {expr[:60]!r}: unknown {what} {tok[:40]!r} (known: numbers, fields, "
                f"{' '.join(OPERATORS)})"
            )
    if depth != 1:
        raise RPNError(f"cdef {expr[:60]!r} leaves {depth} values on the stack, not 1")
    return parts


def _apply(op: str, args: list[float]) -> float:
    nan = math.nan
    if op == "UN":
        return 1.0 if math.isnan(args[0]) else 0.0
    if op == "IF":
        cond, yes, no = args
        return nan if math.isnan(cond) else (no if cond == 0 else yes)
    a, b = args
    if op == "ADDNAN":  # NaN counts as 0 unless both are NaN
        return (
            nan
            if math.isnan(a) and math.isnan(b)
            else (0.0 if math.isnan(a) else a) + (0.0 if math.isnan(b) else b)
        )
    if math.isnan(a) or math.isnan(b):
        return nan
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return nan if b == 0 else a / b
    return min(a, b) if op == "MIN" else max(a, b)


def evaluate(parts: Sequence[str], env: Mapping[str, float | None]) -> float | None:
    """The value of checked ``parts`` (from :func:`tokens`) with the fields' values; None for unknown."""
    stack: list[float] = []
    for tok in parts:
        if tok in OPERATORS:
            n = OPERATORS[tok]
            args = stack[-n:]
            del stack[-n:]
            stack.append(_apply(tok, args))
        elif tok in env:
            v = env[tok]
            stack.append(math.nan if v is None else float(v))
        else:
            stack.append(float(tok))
    out = stack[-1]
    return out if math.isfinite(out) else None


def series(expr: str, columns: Mapping[str, Sequence[float | None]]) -> list[float | None]:
    """``expr`` over aligned columns of values (one per field name it may use); RPNError if refused."""
    parts = tokens(expr, list(columns))
    length = min((len(c) for c in columns.values()), default=0)
    return [evaluate(parts, {k: c[i] for k, c in columns.items()}) for i in range(length)]


def to_rrd(expr: str, defs: Mapping[str, str]) -> str:
    """``expr`` as an rrdtool CDEF body, each field name replaced by its DEF's name; RPNError if refused."""
    return ",".join(defs.get(tok, tok) for tok in tokens(expr, list(defs)))


def fields(expr: str) -> list[str]:
    """The names ``expr`` mentions (what must be fetched to evaluate it), in order, once each."""
    out: list[str] = []
    for tok in expr.split(","):
        if _NAME.match(tok) and tok not in OPERATORS and tok not in out:
            out.append(tok)
    return out


def field_ids(metric_id: str, expr: str) -> dict[str, str]:
    """The metric id of each field ``expr`` names, next to ``metric_id`` in its graph.

    Munin metrics are ``<slurper>/<field>`` or ``<slurper>/<graph>.<field>``: a field of the same graph
    shares everything before the last dot (or the slash).
    """
    slurper, _, name = metric_id.partition("/")
    graph, dot, _field = name.rpartition(".")
    prefix = f"{slurper}/{graph}{dot}"
    return {f: prefix + f for f in fields(expr)}


def field_of(metric_id: str) -> str:
    """The Munin field name of a metric id (``munin/if_eth0/up`` -> ``up``)."""
    return metric_id.partition("/")[2].rpartition(".")[2]


@functools.lru_cache(maxsize=4096)
def _own_tokens(expr: str, field: str) -> tuple[str, ...] | str:
    try:
        return tuple(tokens(expr, [field]))
    except RPNError as exc:
        log.warning("cdef of field %s shown raw: %s", field, exc)  # once per expression, not per page
        return str(exc)


def shown_value(expr: str, metric_id: str, value: float | None) -> float | None:
    """A metric's last value as a page prints it: its cdef applied when the cdef uses only its own
    field (``up,8,*``); a cdef over other fields, or a refused one, leaves the value as archived."""
    if not expr or value is None:
        return value
    field = field_of(metric_id)
    parts = _own_tokens(expr, field)
    return value if isinstance(parts, str) else evaluate(parts, {field: value})
