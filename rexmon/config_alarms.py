"""The alarm tables of the configuration: ``[[alarm]]`` rules and the ``[alarms]`` defaults they override.

Types and ranges of single keys are checked by pydantic; :func:`flap_errors` checks what needs two
keys or two tables (``flap_stop < flap_start`` after a rule's keys override ``[alarms]``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import field
from typing import Any

from pydantic import ConfigDict, Field, field_validator
from pydantic.dataclasses import dataclass as pdataclass

from alarms.ranges import RangeError, parse_range
from alarms.rules import FlapSettings
from slurpers.api import Duration

_STRICT = ConfigDict(extra="forbid")
_FLAP = FlapSettings()
#: a week of changes per metric is already a lot to keep (they are stored with its state)
MAX_FLAP_WINDOW = 7 * 86400.0
MAX_FLAP_START = 1000


def _check_range(v: str | None) -> str | None:
    if v is not None:
        try:
            parse_range(v)
        except RangeError as exc:
            raise ValueError(str(exc)) from None
    return v


def _check_window(v: float | None) -> float | None:
    if v is not None and not 0 < v <= MAX_FLAP_WINDOW:
        raise ValueError(f"must be more than 0 s and at most 1w ({MAX_FLAP_WINDOW:g} s), got {v:g} s")
    return v


@pdataclass(frozen=True, config=_STRICT)
class AlarmsConfig:
    """``[alarms]``: defaults for every alarm rule (flap detection), overridden key by key per rule."""

    #: false: no flap detection, every state change is told
    flapping: bool = Field(default=_FLAP.enabled, strict=True)
    #: flapping = at least flap_start state changes within flap_window ...
    flap_window: Duration = _FLAP.window
    flap_start: int = Field(default=_FLAP.start, ge=2, le=MAX_FLAP_START, strict=True)
    #: ... until no more than flap_stop changes remain within it
    flap_stop: int = Field(default=_FLAP.stop, ge=0, strict=True)

    @field_validator("flap_window")
    @classmethod
    def _window(cls, v: float) -> float:
        _check_window(v)
        return v


@pdataclass(frozen=True, config=_STRICT)
class AlarmRule:
    """One ``[[alarm]]``: tolerances for the metrics whose id matches ``match``."""

    match: list[str]
    warning: str | None = None
    critical: str | None = None
    recover_warning: str | None = None
    recover_critical: str | None = None
    for_: Duration = Field(default=0.0, alias="for")
    samples: int = Field(default=1, ge=1, le=10000)
    #: no new value for this long -> UNKNOWN; None = 3 x the slurper's interval
    stale: Duration | None = None
    renotify: Duration = 0.0
    notify: list[str] = field(default_factory=list)
    name: str = ""
    #: flap detection of the matched metrics; None: as ``[alarms]`` says
    flapping: bool | None = Field(default=None, strict=True)
    flap_window: Duration | None = None
    flap_start: int | None = Field(default=None, ge=2, le=MAX_FLAP_START, strict=True)
    flap_stop: int | None = Field(default=None, ge=0, strict=True)

    @field_validator("match", mode="before")
    @classmethod
    def _match(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not v or any(not isinstance(p, str) or not p.strip() for p in v):
            raise ValueError("match needs at least one non-empty glob over metric ids")
        return v

    @field_validator("warning", "critical", "recover_warning", "recover_critical")
    @classmethod
    def _ranges(cls, v: str | None) -> str | None:
        return _check_range(v)

    @field_validator("flap_window")
    @classmethod
    def _window(cls, v: float | None) -> float | None:
        return _check_window(v)


def flap_errors(
    defaults: AlarmsConfig,
    default_keys: Collection[str],
    where: Callable[[str], str],
    rules: Iterable[tuple[AlarmRule, Callable[[str], str]]],
) -> list[str]:
    """``flap_stop`` must stay below ``flap_start`` in ``[alarms]`` and in every rule once it inherits.

    ``default_keys`` are the keys ``[alarms]`` sets; ``where(key)`` names file, table and key. The error
    names a key the table sets, so that it points at the line to change.
    """

    def inherited(key: str) -> str:
        return "from [alarms]" if key in default_keys else "the default"

    out = []
    bad = _order(defaults.flap_start, defaults.flap_stop, default_keys, lambda key: "the default")
    if bad is not None:
        out.append(f"{where(bad[0])}: {bad[1]}")
    for rule, where_rule in rules:
        own = {k for k in ("flap_start", "flap_stop") if getattr(rule, k) is not None}
        start = defaults.flap_start if rule.flap_start is None else rule.flap_start
        stop = defaults.flap_stop if rule.flap_stop is None else rule.flap_stop
        bad = _order(start, stop, own, inherited)
        if bad is not None:
            out.append(f"{where_rule(bad[0])}: {bad[1]}")
    return out


def _order(
    start: int, stop: int, own: Collection[str], inherited: Callable[[str], str]
) -> tuple[str, str] | None:
    """(key, message) if ``stop >= start``, blaming a key set in the table at hand; else None."""
    if stop < start:
        return None
    if "flap_stop" in own:
        source = "" if "flap_start" in own else f", {inherited('flap_start')}"
        return "flap_stop", f"must be less than flap_start ({start}{source}), got {stop}"
    if "flap_start" in own:
        return "flap_start", f"must be greater than flap_stop ({stop}, {inherited('flap_stop')}), got {start}"
    return None  # inherited both: reported where they are set
