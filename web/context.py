"""What blueprints take from the running app: its objects (through ``current_app``) and the formatters.

Blueprints import from here, never from :mod:`web.app`, which imports them to register them: so the
web package has no import circle (the Flask tutorial's ``flaskr/blog.py`` habit).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any

from dateutil.tz import gettz
from flask import current_app, jsonify, render_template, request

from downtime.timeparse import format_local

if TYPE_CHECKING:
    from web.data import Monitor


def ext(name: str) -> Any:
    """One of the objects ``create_app`` keeps in ``app.extensions["rexmon"]``."""
    return current_app.extensions["rexmon"][name]


def monitor() -> Monitor:
    m: Monitor = ext("monitor")
    return m


def now() -> float:
    clock: Callable[[], float] = ext("clock")
    return clock()


@functools.lru_cache(maxsize=4096)  # the overview formats the same few times thousands of times
def fmt_time(t: float | None) -> str:
    if t is None:
        return "never"
    return format_local(float(t), UTC)


def fmt_time_in(t: float | None, zone: str) -> str:
    """A time in the named zone with the zone's abbreviation (``2026-11-22 08:00 CET``)."""
    tz = gettz(zone)
    if t is None or tz is None:
        return fmt_time(t)
    return format_local(float(t), tz)


def fmt_value(v: float | None) -> str:
    return "U" if v is None else f"{v:.4g}"


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.endswith(".json")


def error_response(status: int, message: str, parameter: str | None = None) -> tuple[Any, int]:
    """A JSON error for the API, an HTML page elsewhere; never a stack trace."""
    if wants_json():
        body: dict[str, Any] = {"error": message, "status": status}
        if parameter:
            body["parameter"] = parameter
        return jsonify(body), status
    text = f"{parameter}: {message}" if parameter else message
    return render_template("web/error.html", status=status, message=text), status
