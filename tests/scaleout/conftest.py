"""Scale-out fixtures: the loopback json:// receiver of the alarm tests."""

from __future__ import annotations

from tests.alarms.conftest import http_receiver

__all__ = ["http_receiver"]
