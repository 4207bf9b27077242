"""The Flask app factory: read-only pages over the archive and database, plus the downtime writes."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from downtime.db import mask
from rexmon.config import Config
from web.auth import Auth
from web.compress import compress
from web.context import error_response, ext, fmt_time, fmt_time_in, fmt_value, monitor
from web.data import ICON_LABELS, Monitor
from web.params import ParamError, input_time

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: the largest request body rexmon reads (forms and JSON bodies are a few kB): a larger one is a 413
#: before the login is checked; `rexmon web` gives waitress the same cap, so it is never buffered
MAX_BODY = 1 << 20
csrf = CSRFProtect()


def create_app(config: Config, *, clock: Callable[[], float] = time.time) -> Flask:
    """Build the web app for ``config``; ``clock`` gives "now" (tests pass a fixed one)."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(Path(__file__).parent / "static"),
    )
    web = config.web
    secret = web.secret_key.get() if web.secret_key is not None else os.urandom(32).hex()
    app.config.update(SECRET_KEY=secret, WTF_CSRF_TIME_LIMIT=None, MAX_CONTENT_LENGTH=MAX_BODY)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    htpasswd = config.resolve(web.htpasswd) if web.htpasswd else None
    app.extensions["rexmon"] = {
        "config": config,
        "clock": clock,
        "monitor": Monitor(config, clock),
        "auth": Auth(htpasswd, web.trusted_header),
    }
    app.before_request(_authenticate)  # before CSRF: an anonymous write is a 401, not a form error
    csrf.init_app(app)
    from web import api, downtimes, graphs, health, views

    app.register_blueprint(views.bp)
    app.register_blueprint(graphs.bp)
    app.register_blueprint(downtimes.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)  # /metrics, /healthz, /readyz
    csrf.exempt(api.bp)  # the JSON API takes only application/json bodies, which forms cannot send
    from web import acks, api_actions, dashboards

    app.register_blueprint(acks.bp)
    app.register_blueprint(api_actions.bp)
    app.register_blueprint(dashboards.bp)  # [[dashboard]] and [[experiment]] pages
    csrf.exempt(api_actions.bp)  # JSON bodies only, as api.bp
    app.after_request(_security_headers)
    app.after_request(compress)  # gzip for text answers (web/compress.py)
    app.context_processor(_template_globals)
    app.add_template_filter(fmt_time, "time")
    app.add_template_filter(fmt_value, "value")
    app.add_template_filter(fmt_time_in, "time_in")
    app.add_template_filter(input_time, "input_time")
    _register_errors(app)
    return app


def _authenticate() -> Response | None:
    if (request.content_length or 0) > MAX_BODY:  # refused unread, whoever sends it
        raise RequestEntityTooLarge(f"the request body is larger than {MAX_BODY} bytes")
    auth: Auth = ext("auth")
    g.user = auth.user(request)
    if g.user is not None or request.endpoint == "static" or request.blueprint == "health":
        return None
    config: Config = ext("config")
    if request.method not in READ_METHODS:
        return auth.challenge("writing needs a login")
    if not config.web.public_read:
        return auth.challenge("reading needs a login on this site")
    return None


def _security_headers(resp: Response) -> Response:
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    resp.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    )
    return resp


def _template_globals() -> dict[str, Any]:
    auth: Auth = ext("auth")
    return {
        "user": g.get("user"),
        "can_login": auth.can_login,
        "icon_labels": ICON_LABELS,
        "archive_warning": monitor().archive.flush_error,  # set by this request's reads, if they failed
    }


def _register_errors(app: Flask) -> None:
    @app.errorhandler(ParamError)
    def _param(exc: ParamError) -> tuple[Any, int]:
        return error_response(400, exc.message, exc.parameter)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> tuple[Any, int]:
        return error_response(400, f"the form has expired or was not sent from this site ({exc.description})")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        if exc.code == 401:
            return ext("auth").challenge()
        return error_response(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(SQLAlchemyError)
    def _database(exc: SQLAlchemyError) -> tuple[Any, int]:
        config: Config = ext("config")
        log.error("database %s on %s %s: %s", mask(config.database_url), request.method, request.path, exc)
        return error_response(
            503,
            f"the database {mask(config.database_url)} cannot be read ({type(exc).__name__}); a new one gets "
            "its schema from `rexmon db upgrade` (`rexmon web` runs it at start)",
        )

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> tuple[Any, int]:
        log.exception("internal error on %s %s", request.method, request.path)
        return error_response(500, "internal error; the details are in the server log")
