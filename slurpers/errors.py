"""The errors a slurper raises (re-exported by slurpers/api.py, the module plugins import)."""

from __future__ import annotations


class SlurperError(Exception):
    """A source could not be read or its payload could not be understood.

    The message must say what was wrong (which command, which URL, which field) so an operator can act.
    """


class PayloadError(SlurperError):
    """A payload was received but is malformed: nothing from it is archived."""


class CommandTimeout(SlurperError):
    """A command did not finish within its deadline (it was killed with everything it started)."""
