"""The web side: Flask app factory, pages, JSON API, auth (reads the archive and the database)."""

from __future__ import annotations

from web.app import create_app

__all__ = ["create_app"]
