"""Which tolerances apply to a metric: the last matching ``[[alarm]]`` rule, else the slurper's defaults.

Resolution per metric id:

1. every ``[[alarm]]`` whose ``match`` globs match the id is a candidate; the **last** one in config
   order (``rexmon.toml`` first, then ``conf.d/*.toml`` by name) wins, like Munin's plugin-conf.d;
2. otherwise the ``warning``/``critical`` the slurper (or Munin plugin) declared for the metric;
3. otherwise the metric has no alarm.

A rule that sets neither ``warning`` nor ``critical`` inherits the slurper's defaults, so a rule can
change only ``for``, ``renotify``, flap detection or ``notify`` tags of metrics whose tolerances come
from a plugin. Flap detection is ``[alarms]``' :class:`FlapSettings`, overridden key by key by the
``flap*`` keys of the winning rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from alarms.globs import GlobIndex
from alarms.ranges import Range, RangeError, parse_range

#: stale after this many collection intervals without a value, unless a rule says otherwise
STALE_INTERVALS = 3.0


@dataclass(frozen=True)
class FlapSettings:
    """Flapping: ``start`` state changes within ``window`` seconds; it ends at ``stop`` or fewer.

    ``enabled = False`` switches detection off: every state change is told.
    """

    window: float = 1800.0
    start: int = 6
    stop: int = 2
    enabled: bool = True

    def __post_init__(self) -> None:
        if not (self.window > 0 and self.start >= 2 and 0 <= self.stop < self.start):
            raise ValueError(f"flapping needs window > 0, start >= 2 and 0 <= stop < start: {self}")


class FlapKeys(Protocol):
    """The flap keys of ``[alarms]`` or of one ``[[alarm]]`` (``None``: not set there)."""

    @property
    def flapping(self) -> bool | None: ...
    @property
    def flap_window(self) -> float | None: ...
    @property
    def flap_start(self) -> int | None: ...
    @property
    def flap_stop(self) -> int | None: ...


def with_flap_keys(base: FlapSettings, keys: FlapKeys) -> FlapSettings:
    """``base`` with the flap keys that ``keys`` sets; a key left unset keeps ``base``'s value."""
    return FlapSettings(
        window=base.window if keys.flap_window is None else float(keys.flap_window),
        start=base.start if keys.flap_start is None else int(keys.flap_start),
        stop=base.stop if keys.flap_stop is None else int(keys.flap_stop),
        enabled=base.enabled if keys.flapping is None else bool(keys.flapping),
    )


def sets_flap_keys(keys: FlapKeys) -> bool:
    """Whether any flap key is set (a rule without one follows the engine's default)."""
    return any(k is not None for k in (keys.flapping, keys.flap_window, keys.flap_start, keys.flap_stop))


@dataclass(frozen=True)
class Rule:
    """The tolerances and timing that apply to one metric."""

    name: str
    warning: Range | None = None
    critical: Range | None = None
    recover_warning: Range | None = None
    recover_critical: Range | None = None
    for_: float = 0.0
    samples: int = 1
    stale: float | None = None
    renotify: float = 0.0
    notify: tuple[str, ...] = ()
    #: flap detection of this rule's metrics; None: the engine's default (``[alarms]``)
    flap: FlapSettings | None = None

    def stale_after(self, interval: float) -> float:
        """Seconds without a value after which the metric is UNKNOWN."""
        return self.stale if self.stale is not None else STALE_INTERVALS * interval


def _opt(text: str | None) -> Range | None:
    return None if text is None else parse_range(text)


class AlarmRuleLike(FlapKeys, Protocol):
    """The fields of ``rexmon.config.AlarmRule`` (one ``[[alarm]]`` table) this module reads."""

    match: list[str]
    warning: str | None
    critical: str | None
    recover_warning: str | None
    recover_critical: str | None
    for_: float
    samples: int
    stale: float | None
    renotify: float
    notify: list[str]
    name: str


def rule_from_config(rule: AlarmRuleLike, index: int, flap: FlapSettings | None = None) -> Rule:
    """Compile one validated ``[[alarm]]`` table into a :class:`Rule`.

    ``flap`` is the default (``[alarms]``) that the rule's own flap keys override.
    """
    return Rule(
        name=rule.name or f"alarm #{index + 1}",
        warning=_opt(rule.warning),
        critical=_opt(rule.critical),
        recover_warning=_opt(rule.recover_warning),
        recover_critical=_opt(rule.recover_critical),
        for_=float(rule.for_),
        samples=int(rule.samples),
        stale=rule.stale,
        renotify=float(rule.renotify),
        notify=tuple(rule.notify),
        flap=with_flap_keys(flap or FlapSettings(), rule) if sets_flap_keys(rule) else None,
    )


class RuleSet:
    """Resolves the :class:`Rule` of a metric id; results are cached (rules do not change at runtime)."""

    def __init__(self, rules: Sequence[tuple[Sequence[str], Rule]], flap: FlapSettings | None = None) -> None:
        #: flap detection for metrics whose rule sets none (``[alarms]``)
        self.flap = flap if flap is not None else FlapSettings()
        self._index: GlobIndex[Rule] = GlobIndex(rules)
        #: metric id -> (slurper warning, slurper critical, resolved rule)
        self._cache: dict[str, tuple[str | None, str | None, Rule | None]] = {}
        self._spec_ranges: dict[str | None, Range | None] = {None: None}

    @classmethod
    def from_config(cls, alarm_rules: Sequence[AlarmRuleLike], defaults: FlapKeys | None = None) -> RuleSet:
        """Build from ``Config.alarms`` (the ``[[alarm]]`` tables in config order) and ``[alarms]``."""
        flap = FlapSettings() if defaults is None else with_flap_keys(FlapSettings(), defaults)
        return cls([(list(r.match), rule_from_config(r, i, flap)) for i, r in enumerate(alarm_rules)], flap)

    def resolve(self, metric_id: str, warning: str | None = None, critical: str | None = None) -> Rule | None:
        """The rule for ``metric_id`` given the slurper's default ranges (``warning``/``critical``)."""
        hit = self._cache.get(metric_id)
        if hit is not None and hit[0] == warning and hit[1] == critical:
            return hit[2]
        rule = self._index.last_match(metric_id)
        if rule is not None and rule.warning is None and rule.critical is None:
            rule = _with_ranges(rule, self._spec(warning), self._spec(critical))
        elif rule is None and (warning is not None or critical is not None):
            rule = Rule(name="slurper default", warning=self._spec(warning), critical=self._spec(critical))
        if rule is not None and rule.warning is None and rule.critical is None:
            rule = None
        self._cache[metric_id] = (warning, critical, rule)
        return rule

    def _spec(self, text: str | None) -> Range | None:
        if text not in self._spec_ranges:
            try:
                self._spec_ranges[text] = parse_range(text) if text is not None else None
            except RangeError:  # a plugin declared nonsense: no default tolerance rather than a crash
                self._spec_ranges[text] = None
        return self._spec_ranges[text]


def _with_ranges(rule: Rule, warning: Range | None, critical: Range | None) -> Rule:
    return replace(rule, warning=warning, critical=critical)
