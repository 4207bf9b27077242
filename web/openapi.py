"""The OpenAPI 3.1 description of the JSON API (served at /api/openapi.json, rendered into docs/api.md)."""

from __future__ import annotations

from typing import Any

_TIME = {"type": "string", "description": "epoch seconds or ISO 8601 (UTC unless an offset is given)"}
_ERROR = {
    "description": "a bad parameter; the body names it",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def _param(
    name: str, where: str, description: str, schema: dict[str, Any] | None = None, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


_ID = [
    _param("slurper", "path", "slurper id (first part of the metric id)", required=True),
    _param("metric", "path", "metric name (second part of the metric id)", required=True),
]
_RANGE = [
    _param(
        "period",
        "query",
        "hour, day, week, month or year ending at `end` (default day)",
        {"type": "string", "enum": ["hour", "day", "week", "month", "year"]},
    ),
    _param("start", "query", "range start; overrides period", _TIME),
    _param("end", "query", "range end (default now)", _TIME),
]


def _ok(description: str, schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


def _paths() -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Downtime"}
    return {
        "/api/metrics": {
            "get": {
                "summary": "Every metric with its last value, time and alarm state",
                "parameters": [_param("match", "query", "glob over metric ids, e.g. condor/*")],
                "responses": {
                    "200": _ok("metrics", {"type": "array", "items": {"$ref": "#/components/schemas/Metric"}})
                },
            }
        },
        "/api/metrics/{slurper}/{metric}/series": {
            "get": {
                "summary": "Archived values of one metric (JSON columns, or CSV with format=csv)",
                "parameters": [
                    *_ID,
                    *_RANGE,
                    _param(
                        "cf",
                        "query",
                        "consolidation function",
                        {"type": "string", "enum": ["AVERAGE", "MIN", "MAX"]},
                    ),
                    _param("resolution", "query", "seconds per point wanted", {"type": "integer"}),
                    _param(
                        "format",
                        "query",
                        "json (default) or csv",
                        {"type": "string", "enum": ["json", "csv"]},
                    ),
                ],
                "responses": {
                    "200": _ok("the series", {"$ref": "#/components/schemas/Series"}),
                    "400": _ERROR,
                    "404": _ERROR,
                },
            }
        },
        "/api/metrics/{slurper}/{metric}/series.csv": {
            "get": {
                "summary": "The series as CSV (time,value,unit; empty value = unknown)",
                "parameters": [*_ID, *_RANGE],
                "responses": {"200": _ok("CSV", {"type": "string"}, "text/csv"), "400": _ERROR},
            }
        },
        "/api/metrics/{slurper}/{metric}/annotations": {
            "get": {
                "summary": "Downtime bands and threshold lines for a metric's graph",
                "parameters": [*_ID, *_RANGE],
                "responses": {"200": _ok("bands and thresholds", {"type": "object"}), "400": _ERROR},
            }
        },
        "/api/alarms": {
            "get": {
                "summary": "Alarm states of metrics that are not OK (all=1: every metric)",
                "parameters": [_param("all", "query", "1 to include OK metrics")],
                "responses": {"200": _ok("states", {"type": "array", "items": {"type": "object"}})},
            }
        },
        "/api/downtimes": {
            "get": {
                "summary": "Downtimes",
                "parameters": [
                    _param(
                        "which",
                        "query",
                        "active, upcoming, past or all (default all)",
                        {"type": "string", "enum": ["active", "upcoming", "past", "all"]},
                    )
                ],
                "responses": {"200": _ok("downtimes", {"type": "array", "items": ref})},
            },
            "post": {
                "summary": "File a downtime (login required; the author is the logged-in user)",
                "security": [{"basic": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewDowntime"}}},
                },
                "responses": {
                    "201": _ok("the new downtime", ref),
                    "400": _ERROR,
                    "401": {"description": "no or wrong credentials"},
                    "415": {"description": "the body is not application/json"},
                },
            },
        },
        "/api/downtimes/{id}": {
            "get": {
                "summary": "One downtime with its audit trail",
                "parameters": [_param("id", "path", "downtime id", {"type": "integer"}, True)],
                "responses": {"200": _ok("the downtime", ref), "404": _ERROR},
            }
        },
        "/api/downtimes/preview": {
            "get": {
                "summary": "The metric ids a scope matches (before filing a downtime)",
                "parameters": [
                    _param("scope", "query", "globs over metric ids, comma or space separated", required=True)
                ],
                "responses": {"200": _ok("matches", {"type": "object"}), "400": _ERROR},
            }
        },
        **_action_paths(ref),
        "/downtimes.ics": {
            "get": {
                "summary": "Downtimes as an iCalendar feed (30 days back, a year ahead)",
                "responses": {"200": _ok("iCalendar", {"type": "string"}, "text/calendar")},
            }
        },
    }


def _write(summary: str, body: dict[str, Any] | None, ok: dict[str, Any], **errors: str) -> dict[str, Any]:
    """A POST that needs a login and a JSON body."""
    op: dict[str, Any] = {"summary": summary, "security": [{"basic": []}]}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    op["responses"] = {
        **ok,
        "400": _ERROR,
        "401": {"description": "no or wrong credentials"},
        "415": {"description": "the body is not application/json"},
        **{code: {"description": text} for code, text in errors.items()},
    }
    return op


def _action_paths(ref: dict[str, Any]) -> dict[str, Any]:
    """Acknowledging, ending/extending/cancelling downtimes, a metric's history (web/api_actions.py)."""
    did = [_param("id", "path", "downtime id", {"type": "integer"}, True)]

    def text(name: str, description: str) -> dict[str, Any]:
        return {
            "type": "object",
            "required": [name],
            "properties": {name: {"type": "string", "description": description}},
        }

    done = {"200": _ok("the downtime with its audit trail", ref)}
    return {
        "/api/metrics/{slurper}/{metric}/ack": {
            "post": {
                **_write(
                    "Acknowledge a metric's problem (no re-notification until it is OK again); "
                    "the author is the logged-in user",
                    text("comment", "what is being done (required, at most 2000 characters)"),
                    {"201": _ok("the metric's alarm state, acknowledged", {"type": "object"})},
                    **{"404": "no such metric", "409": "nothing to acknowledge: OK, or no rule judges it"},
                ),
                "parameters": _ID,
            }
        },
        "/api/metrics/{slurper}/{metric}/history": {
            "get": {
                "summary": "State changes, notifications sent and acknowledgements of a metric, newest first",
                "parameters": [*_ID, _param("limit", "query", "at most this many (1-1000, default 50)")],
                "responses": {
                    "200": _ok(
                        "events: time, kind (transition, notification, ack), summary, detail, "
                        "state, author, downtime_id",
                        {"type": "array", "items": {"type": "object"}},
                    ),
                },
            }
        },
        "/api/downtimes/{id}/end": {
            "post": {
                **_write("End a downtime now (body: {})", None, done, **{"404": "no such downtime"}),
                "parameters": did,
            }
        },
        "/api/downtimes/{id}/extend": {
            "post": {
                **_write(
                    "Move a downtime's end",
                    text(
                        "end", "the new end: +2h, 2026-11-22 12:00 (in the downtime's zone) or epoch seconds"
                    ),
                    done,
                    **{"404": "no such downtime", "409": "the downtime is cancelled or over"},
                ),
                "parameters": did,
            }
        },
        "/api/downtimes/{id}/cancel": {
            "post": {
                **_write(
                    "Cancel a downtime (kept, with the reason, in its audit trail)",
                    text("reason", "why it is cancelled"),
                    done,
                    **{"404": "no such downtime", "409": "the downtime cannot be cancelled"},
                ),
                "parameters": did,
            }
        },
    }


def _schemas() -> dict[str, Any]:
    num = {"type": ["number", "null"]}
    return {
        "Error": {
            "type": "object",
            "required": ["error", "status"],
            "properties": {
                "error": {"type": "string"},
                "status": {"type": "integer"},
                "parameter": {"type": "string", "description": "the query parameter or field at fault"},
            },
        },
        "Metric": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "value": num,
                "time": {"type": ["integer", "null"]},
                "display": {"type": "string", "description": "the value with unit and prefix: 69.6 MiB"},
                "unit": {
                    "type": "string",
                    "description": "unit of value (B, B/s, jobs; a counter's is a rate)",
                },
                "base": {"type": "integer", "enum": [1000, 1024], "description": "SI or IEC multiples"},
                "graph": {"type": "string", "description": "the graph the metric is drawn in"},
                "state": {
                    "type": "string",
                    "enum": ["OK", "WARNING", "CRITICAL", "UNKNOWN", "UNJUDGED"],
                    "description": "the alarm engine's state; UNJUDGED: no rule covers the metric",
                },
                "since": {"type": ["number", "null"], "description": "since when the metric is in state"},
                "rule": {"type": ["string", "null"], "description": "the rule judging it; null: unjudged"},
                "icon": {
                    "type": "string",
                    "description": "what the overview shows: critical, unknown, warning, "
                    "stale, acknowledged, downtime, ok or unjudged",
                },
                "label": {"type": "string", "description": "the icon's words"},
                "warning": {"type": ["string", "null"]},
                "critical": {"type": ["string", "null"]},
                "downtime_id": {"type": ["integer", "null"]},
            },
        },
        "Series": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "unit": {"type": "string"},
                "base": {"type": "integer", "enum": [1000, 1024]},
                "start": {"type": "integer"},
                "end": {"type": "integer"},
                "step": {"type": "integer"},
                "cf": {"type": "string"},
                "times": {"type": "array", "items": {"type": "integer"}},
                "values": {"type": "array", "items": num, "description": "as drawn: with `cdef` applied"},
                "cdef": {"type": "string", "description": "Munin's cdef applied to the values; empty: none"},
                "negative": {
                    "type": "string",
                    "description": "Munin's negative: the metric (of the same slurper) drawn mirrored below",
                },
            },
        },
        "NewDowntime": {
            "type": "object",
            "required": ["scope", "end", "reason"],
            "properties": {
                "scope": {"type": ["string", "array"], "description": "globs over metric ids"},
                "start": {**_TIME, "description": "default now"},
                "end": _TIME,
                "reason": {"type": "string"},
                "kind": {"type": "string", "enum": ["planned", "unplanned"]},
                "severity": {"type": "string", "enum": ["outage", "at-risk"]},
                "ticket": {"type": "string"},
                "rrule": {"type": "string", "description": "RFC 5545 RRULE"},
                "tz": {
                    "type": "string",
                    "description": "IANA zone of times without an offset and of the RRULE",
                },
            },
        },
        "Downtime": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "scope": {"type": "array", "items": {"type": "string"}},
                "start": {"type": "number"},
                "end": {"type": "number"},
                "reason": {"type": "string"},
                "author": {"type": "string"},
                "kind": {"type": "string"},
                "severity": {"type": "string"},
                "ticket": {"type": "string"},
                "rrule": {"type": ["string", "null"]},
                "tz": {"type": "string"},
                "phase": {"type": "string", "enum": ["active", "upcoming", "past", "cancelled", "invalid"]},
                "problem": {
                    "type": ["string", "null"],
                    "description": "why an invalid downtime (a row stored before the checks) covers nothing",
                },
                "cancel_reason": {"type": "string"},
                "audit": {
                    "type": "array",
                    "description": "GET /api/downtimes/{id} only: at, author, action, detail",
                    "items": {"type": "object"},
                },
            },
        },
    }


def openapi() -> dict[str, Any]:
    """The API description as a JSON-ready dict."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rexmon API",
            "version": "1",
            "description": "Read the archive, alarm states and downtimes; file downtimes. "
            "Reads follow [web] public_read; writes need HTTP Basic (or the "
            "reverse proxy's trusted header) and a JSON body.",
        },
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
    }


def markdown() -> str:
    """docs/api.md, generated from :func:`openapi` so the two cannot drift apart."""
    doc = openapi()
    lines = [
        "# rexmon JSON API",
        "",
        "<!-- generated by `python -m web.openapi > docs/api.md`; edit web/openapi.py instead -->",
        "",
        doc["info"]["description"],
        "",
        "The machine-readable description is served at `/api/openapi.json` (OpenAPI 3.1).",
        'Errors are JSON: `{"error": "...", "status": 400, "parameter": "start"}`; a bad query '
        "parameter is a 400 that names it. Times are UTC epoch seconds.",
        "",
        "Example: `curl -u alice -H 'Content-Type: application/json' -d "
        '\'{"scope": "condor/*", "end": "+2h", "reason": "upgrade"}\' https://rexmon.example/api/downtimes`',
        "",
    ]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            lines += [f"## {method.upper()} `{path}`", "", op["summary"], ""]
            params = op.get("parameters", [])
            if params:
                lines += ["| parameter | in | description |", "|---|---|---|"]
                for p in params:
                    enum = p["schema"].get("enum")
                    extra = f" ({', '.join(enum)})" if enum else ""
                    req = " **required**" if p.get("required") else ""
                    lines.append(f"| `{p['name']}` | {p['in']} | {p['description']}{extra}{req} |")
                lines.append("")
            codes = ", ".join(f"{c} {r['description']}" for c, r in op["responses"].items())
            lines += [f"Responses: {codes}.", ""]
    lines += ["## Schemas", ""]
    for name, schema in doc["components"]["schemas"].items():
        fields = ", ".join(f"`{k}`" for k in schema.get("properties", {}))
        lines += [f"- **{name}**: {fields}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(markdown())
