"""Load, merge and validate the TOML configuration.

``rexmon.toml`` is read first, then ``conf.d/*.toml`` beside it in name order. Tables merge key by key
(the last file wins, like Munin's plugin-conf.d); ``[[slurper]]``, ``[[alarm]]`` and ``[[notify]]``
entries accumulate. Every error names the file and the key; :func:`load` collects all of them before
raising so ``rexmon check`` can print them at once.

Relative paths (``rrd_dir``, ``state_dir``, a ``sqlite:///`` database, ``htpasswd``) are resolved against
the directory of the main config file.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic.dataclasses import dataclass as pdataclass

from alarms.state import STATES, State
from rexmon.config_alarms import AlarmRule as AlarmRule  # re-exported: ``[[alarm]]`` is part of Config
from rexmon.config_alarms import AlarmsConfig as AlarmsConfig
from rexmon.config_alarms import flap_errors
from rexmon.config_pages import Dashboard, Experiment, page_errors
from rrd.retention import DEFAULT as RETENTION_DEFAULT
from rrd.retention import DEFAULT_RETENTION, Retention, RetentionError, parse_retention
from slurpers.api import DEFAULT_MAX_OUTPUT, Duration, Secret, Slurper
from slurpers.registry import SlurperRegistry

DEFAULT_CONFIG = "etc/rexmon.toml"
RESERVED_SLURPER_IDS = frozenset({"rexmon"})
#: bounds of the scheduling keys: anything outside is a config error naming the file and the key
MAX_WORKERS = 512
MAX_JITTER = 3600.0
MIN_INTERVAL, MAX_INTERVAL = 1.0, 7 * 86400.0
MIN_TIMEOUT, MAX_TIMEOUT = 0.1, 86400.0
#: a slurper's output cap (``max_output``, stdout and stderr of one command) and metric-name cap
DEFAULT_MAX_METRICS = 20_000
MAX_OUTPUT_RANGE = (1024, 1 << 30)
MAX_METRICS_RANGE = (1, 1_000_000)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_STRICT = ConfigDict(extra="forbid")
Severity = State  # a [[notify]] target's severities are alarm states (alarms/state.py defines them)
SEVERITIES: tuple[Severity, ...] = STATES


class ConfigError(Exception):
    """One or more configuration errors, each naming file and key."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@pdataclass(frozen=True, config=_STRICT)
class ArchiveConfig:
    rrd_dir: str = "var/rrd"
    step: int = Field(default=60, gt=0, le=86400, strict=True)
    #: "" (write files directly), "unix:/path/to/rrdcached.sock", or "host:port" (TCP)
    rrdcached: str = ""
    #: the RRAs of new files, "<resolution>:<span>, ..." (rrd/retention.py); [[slurper]] retention overrides
    retention: str = DEFAULT_RETENTION
    #: ``rexmon archive check`` lists files no metric has written for this long
    stale_after: Duration = 30 * 86400.0

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: str) -> str:
        parse_retention(v)  # RetentionError (a ValueError) names the tier
        return v

    @model_validator(mode="after")
    def _retention_steps(self) -> ArchiveConfig:
        if parse_retention(self.retention) != RETENTION_DEFAULT:  # the default follows any step
            parse_retention(self.retention).check(self.step)
        return self

    @field_validator("rrdcached")
    @classmethod
    def _addr(cls, v: str) -> str:
        if v and not (v.startswith("unix:") or re.fullmatch(r"\[?[A-Za-z0-9.:-]+\]?:\d{1,5}", v)):
            raise ValueError('rrdcached must be "", "unix:/path" or "host:port"')
        return v


@pdataclass(frozen=True, config=_STRICT)
class DatabaseConfig:
    url: str = "sqlite:///var/rexmon.db"


@pdataclass(frozen=True, config=_STRICT)
class SchedulerConfig:
    #: threads running slurpers at once
    workers: int = Field(default=16, ge=1, le=MAX_WORKERS, strict=True)
    #: random delay added to each run (seconds) so that slurpers with one interval do not fire together;
    #: each run falls in [phase + k x interval, + jitter), jitter at most half the slurper's interval
    jitter: Duration = Field(default=5.0, ge=0, le=MAX_JITTER)
    #: checkpoints of slurpers that keep one (e.g. netbeam), as JSON files
    state_dir: str = "var/state"
    #: "I/N": run only the slurpers of shard I (1-based) of N, for several collector hosts
    shard: str = ""
    #: evaluate alarms on this host (exactly one host of a scale-out should)
    evaluate_alarms: bool = Field(default=True, strict=True)
    #: "HOST:PORT" where the collector serves /metrics, /healthz and /readyz; "" (the default) is off
    metrics_listen: str = ""

    @field_validator("metrics_listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        if v and not re.fullmatch(r"\[?[A-Za-z0-9.:-]*\]?:\d{1,5}", v):
            raise ValueError('metrics_listen must be "" (off) or "HOST:PORT", e.g. "127.0.0.1:9108"')
        return v

    @field_validator("shard")
    @classmethod
    def _shard(cls, v: str) -> str:
        if v:
            parse_shard(v)
        return v


def parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2))):
        raise ValueError(f"shard {text!r} must be I/N with 1 <= I <= N, e.g. 1/3")
    return int(m.group(1)), int(m.group(2))


@pdataclass(frozen=True, config=_STRICT)
class NotifyTarget:
    """One ``[[notify]]``: an apprise URL (a secret, as it embeds credentials)."""

    url: Secret
    name: str = ""
    tags: list[str] = field(default_factory=list)
    severities: list[Severity] = field(default_factory=lambda: list(SEVERITIES))


@pdataclass(frozen=True, config=_STRICT)
class WebConfig:
    listen: str = "127.0.0.1:8080"
    public_read: bool = Field(default=True, strict=True)
    #: htpasswd file with bcrypt hashes (htpasswd -B)
    htpasswd: str = ""
    #: trust this request header (e.g. REMOTE_USER) set by a reverse proxy that did the login
    trusted_header: str = ""
    #: used to sign sessions and CSRF tokens; generated per start when unset
    secret_key: Secret | None = None
    #: absolute URL of the site, for links in notifications
    base_url: str = "http://127.0.0.1:8080"
    graph_cache_dir: str = "var/graphs"
    #: the site's time zone, offered by the pages' zone picker next to UTC and the browser's
    zone: str = "UTC"

    @field_validator("zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"zone {v[:64]!r} is not an IANA time zone (e.g. Europe/Zurich)") from None
        return v


@pdataclass(frozen=True, config=_STRICT)
class WatchdogConfig:
    """``[watchdog]``: the dead man's switch watching the collectors' heartbeats."""

    #: a collector whose heartbeat is older than this is reported down to the ``watchdog`` targets
    max_age: Duration = 300.0
    #: how often ``rexmon web`` (and ``rexmon watchdog --loop``) checks the heartbeats
    check_interval: Duration = 60.0
    #: whether ``rexmon web`` runs the check itself (else only ``rexmon watchdog`` from cron does)
    in_web: bool = True
    #: apprise URL hit every ``deadman_interval`` while every collector is fresh (external dead-man service)
    deadman_url: Secret | None = None
    deadman_interval: Duration = 300.0


@dataclass(frozen=True)
class SlurperConfig:
    id: str
    type: str
    interval: float
    timeout: float
    #: an instance of the type's Settings dataclass (its type depends on ``type``)
    settings: Any
    source: str
    enabled: bool = True
    #: bytes one command of this slurper may print before it is stopped and the run fails
    max_output: int = DEFAULT_MAX_OUTPUT
    #: distinct metric names this slurper may produce; a run with more fails, names past it are refused
    max_metrics: int = DEFAULT_MAX_METRICS
    #: the RRAs of this slurper's new files; None: ``[archive] retention``
    retention: str | None = None


@dataclass(frozen=True)
class Config:
    path: Path
    base_dir: Path
    archive: ArchiveConfig
    database: DatabaseConfig
    scheduler: SchedulerConfig
    web: WebConfig
    slurpers: tuple[SlurperConfig, ...]
    alarms: tuple[AlarmRule, ...]
    notify: tuple[NotifyTarget, ...]
    files: tuple[Path, ...] = ()
    #: ``[alarms]``: what every rule does unless it says otherwise (flap detection)
    alarm_defaults: AlarmsConfig = field(default_factory=AlarmsConfig)
    #: the slurper types the config was checked against; :func:`build_slurper` builds from it
    registry: SlurperRegistry = field(default_factory=SlurperRegistry.from_entry_points, compare=False)
    #: ``[watchdog]``: heartbeat age and the dead-man service
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    #: ``[[dashboard]]`` and ``[[experiment]]`` pages (rexmon/config_pages.py), in config order
    dashboards: tuple[Dashboard, ...] = ()
    experiments: tuple[Experiment, ...] = ()

    @property
    def rrd_dir(self) -> Path:
        return self.resolve(self.archive.rrd_dir)

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.scheduler.state_dir)

    @property
    def database_url(self) -> str:
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
            return prefix + str(self.resolve(url[len(prefix) :]))
        return url

    @property
    def rrdcached(self) -> str:
        addr = self.archive.rrdcached
        if addr.startswith("unix:"):
            return "unix:" + str(self.resolve(addr[5:]))
        return addr

    def retention(self, slurper_id: str | None = None) -> Retention:
        """The retention plan of a slurper's new files (its own, or ``[archive] retention``)."""
        own = self._own_retention.get(slurper_id or "")
        return parse_retention(own or self.archive.retention)

    @functools.cached_property
    def _own_retention(self) -> dict[str, str]:
        return {s.id: s.retention for s in self.slurpers if s.retention is not None}

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)


_SECTIONS: dict[str, type[Any]] = {
    "archive": ArchiveConfig,
    "database": DatabaseConfig,
    "scheduler": SchedulerConfig,
    "web": WebConfig,
    "alarms": AlarmsConfig,
    "watchdog": WatchdogConfig,
}
_ARRAYS = ("slurper", "alarm", "notify", "dashboard", "experiment")
_SLURPER_COMMON = ("id", "type", "interval", "timeout", "enabled", "max_output", "max_metrics", "retention")


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--config, else $REXMON_CONFIG, else etc/rexmon.toml."""
    return Path(explicit or os.environ.get("REXMON_CONFIG") or DEFAULT_CONFIG)


def config_files(path: Path) -> list[Path]:
    confd = path.parent / "conf.d"
    extra = sorted(confd.glob("*.toml")) if confd.is_dir() else []
    return [path, *extra]


def load(path: str | os.PathLike[str] | None = None, registry: SlurperRegistry | None = None) -> Config:
    """Read, merge and validate; raise :class:`ConfigError` listing every problem."""
    main = config_path(path)
    errors: list[str] = []
    if not main.is_file():
        raise ConfigError([f"{main}: config file not found"])
    merged: dict[str, Any] = {}
    origin: dict[tuple[str, str], Path] = {}
    arrays: dict[str, list[tuple[Path, int, Any]]] = {k: [] for k in _ARRAYS}
    files = config_files(main)
    for f in files:
        try:
            with f.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            errors.append(f"{f}: not valid TOML: {exc}")
            continue
        except OSError as exc:
            errors.append(f"{f}: cannot read: {exc.strerror}")
            continue
        _merge_file(f, data, merged, origin, arrays, errors)

    base_dir = main.resolve().parent
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        table = merged.get(name, {})
        sections[name] = _validate(cls, table, lambda key, n=name: _where(origin, n, key, main), errors)

    reg = registry or SlurperRegistry.from_entry_points()
    slurpers = _load_slurpers(arrays["slurper"], reg, errors)
    if sections["archive"] is not None:
        errors += _retention_steps(slurpers, sections["archive"].step)
        errors += _bucket_steps(slurpers, sections["archive"].step)
    alarms = _load_alarms(arrays["alarm"], sections["alarms"], merged.get("alarms", {}), origin, main, errors)
    notify = tuple(
        n
        for n in (
            _validate(NotifyTarget, t, lambda key, f=f, i=i: f"{f}: [[notify]] #{i + 1}: {key}", errors)
            for f, i, t in arrays["notify"]
        )
        if n is not None
    )
    dashboards, experiments = _load_pages(arrays["dashboard"], arrays["experiment"], errors)
    if errors:
        raise ConfigError(errors)
    return Config(
        path=main,
        base_dir=base_dir,
        archive=sections["archive"],
        database=sections["database"],
        scheduler=sections["scheduler"],
        web=sections["web"],
        slurpers=tuple(slurpers),
        alarms=alarms,
        notify=notify,
        files=tuple(files),
        alarm_defaults=sections["alarms"],
        registry=reg,
        watchdog=sections["watchdog"],
        dashboards=dashboards,
        experiments=experiments,
    )


def _merge_file(
    f: Path,
    data: Mapping[str, Any],
    merged: dict[str, Any],
    origin: dict[tuple[str, str], Path],
    arrays: dict[str, list[tuple[Path, int, Any]]],
    errors: list[str],
) -> None:
    for key, value in data.items():
        if key in _ARRAYS:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                errors.append(f"{f}: {key}: write it as [[{key}]] tables")
                continue
            start = len(arrays[key])
            arrays[key].extend((f, start + i, v) for i, v in enumerate(value))
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                hint = " (alarm rules are [[alarm]] tables)" if key == "alarms" else ""
                errors.append(f"{f}: {key}: must be a table [{key}]{hint}")
                continue
            table = merged.setdefault(key, {})
            for k, v in value.items():
                table[k] = v
                origin[(key, k)] = f
        else:
            known = ", ".join([*(f"[{s}]" for s in _SECTIONS), *(f"[[{a}]]" for a in _ARRAYS)])
            errors.append(f"{f}: unknown section or key {key!r} (known: {known})")


def _load_alarms(
    entries: Iterable[tuple[Path, int, Any]],
    defaults: AlarmsConfig | None,
    default_keys: Mapping[str, Any],
    origin: Mapping[tuple[str, str], Path],
    main: Path,
    errors: list[str],
) -> tuple[AlarmRule, ...]:
    """The ``[[alarm]]`` rules, checked on their own and against the ``[alarms]`` defaults they override."""
    rules: list[tuple[AlarmRule, Callable[[str], str]]] = []
    for f, i, table in entries:

        def where(key: str, f: Path = f, i: int = i) -> str:
            return f"{f}: [[alarm]] #{i + 1}: {key}"

        rule = _validate(AlarmRule, table, where, errors)
        if rule is not None:
            rules.append((rule, where))
    if defaults is not None:  # else [alarms] is wrong already, and rules cannot be judged against it
        errors += flap_errors(defaults, default_keys, lambda key: _where(origin, "alarms", key, main), rules)
    return tuple(rule for rule, _ in rules)


def _load_pages(
    dash_entries: Iterable[tuple[Path, int, Any]],
    exp_entries: Iterable[tuple[Path, int, Any]],
    errors: list[str],
) -> tuple[tuple[Dashboard, ...], tuple[Experiment, ...]]:
    """The ``[[dashboard]]`` and ``[[experiment]]`` pages, each error naming its file, table and key."""
    loaded: dict[str, list[tuple[Any, Callable[[str], str]]]] = {"dashboard": [], "experiment": []}
    tables = (("dashboard", Dashboard, dash_entries), ("experiment", Experiment, exp_entries))
    for kind, cls, entries in tables:
        for f, i, table in entries:

            def where(key: str, f: Path = f, i: int = i, kind: str = kind) -> str:
                return f"{f}: [[{kind}]] #{i + 1}: {key}"

            page = _validate(cls, table, where, errors)
            if page is not None:
                loaded[kind].append((page, where))
    errors += page_errors(loaded["dashboard"], loaded["experiment"])
    return tuple(p for p, _ in loaded["dashboard"]), tuple(p for p, _ in loaded["experiment"])


def _where(origin: Mapping[tuple[str, str], Path], section: str, key: str, default: Path) -> str:
    top = key.split(".", 1)[0]
    return f"{origin.get((section, top), default)}: [{section}] {key}"


def _validate(
    cls: type[Any], table: Any, where: Any, errors: list[str], context: dict[str, Any] | None = None
) -> Any:
    try:
        return TypeAdapter(cls).validate_python(table, context=context)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(table)"
            msg = err["msg"]
            if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
                msg = "unknown key"
            elif err["type"] == "missing":
                msg = "required key is missing"
            errors.append(f"{where(loc)}: {msg}")
        return None


def _load_slurpers(
    entries: Iterable[tuple[Path, int, Any]], reg: SlurperRegistry, errors: list[str]
) -> list[SlurperConfig]:
    out: list[SlurperConfig] = []
    seen: dict[str, Path] = {}
    for f, i, table in entries:
        sid = table.get("id")
        label = f"{f}: [[slurper]] {sid!r}" if isinstance(sid, str) else f"{f}: [[slurper]] #{i + 1}"
        start = len(errors)
        if not isinstance(sid, str) or not _ID.match(sid):
            errors.append(f"{label}: id: required, letters, digits, '.', '_' or '-' (max 100)")
        elif sid in RESERVED_SLURPER_IDS:
            errors.append(f"{label}: id: {sid!r} is reserved for rexmon's own health metrics")
        elif sid in seen:
            errors.append(f"{label}: id: duplicate slurper id (first defined in {seen[sid]})")
        else:
            seen[sid] = f
        stype = table.get("type")
        cls: type[Slurper[Any]] | None = None
        if not isinstance(stype, str):
            errors.append(f"{label}: type: required (known: {', '.join(reg.names())})")
        else:
            try:
                cls = reg.get(stype)
            except LookupError as exc:
                errors.append(f"{label}: type: {exc}")
        interval = _number(
            table.get("interval", 60), f"{label}: interval", errors, MIN_INTERVAL, MAX_INTERVAL
        )
        timeout = _number(
            table.get("timeout", min(10.0, interval)), f"{label}: timeout", errors, MIN_TIMEOUT, MAX_TIMEOUT
        )
        max_output = _count(table, "max_output", DEFAULT_MAX_OUTPUT, MAX_OUTPUT_RANGE, label, errors)
        max_metrics = _count(table, "max_metrics", DEFAULT_MAX_METRICS, MAX_METRICS_RANGE, label, errors)
        enabled = table.get("enabled", True)
        if not isinstance(enabled, bool):
            errors.append(f"{label}: enabled: must be true or false")
        retention = _retention(table.get("retention"), label, errors)
        own = {k: v for k, v in table.items() if k not in _SLURPER_COMMON}
        settings = None
        if cls is not None:
            # a disabled slurper may name a secret that is not there yet (it is checked when enabled)
            defer = {"defer_secrets": enabled is False}
            settings = _validate(cls.Settings, own, lambda key, label=label: f"{label}: {key}", errors, defer)
        if len(errors) == start and cls is not None and isinstance(sid, str) and isinstance(stype, str):
            rest = (settings, str(f), bool(enabled), max_output, max_metrics, retention)
            out.append(SlurperConfig(sid, stype, interval, timeout, *rest))
    return out


def _retention_steps(slurpers: Iterable[SlurperConfig], step: int) -> list[str]:
    """Each slurper's own retention must fit the archive's step (whole steps per row)."""
    errors = []
    for sc in slurpers:
        if sc.retention is not None:
            try:
                parse_retention(sc.retention).check(step)
            except RetentionError as exc:
                errors.append(f"{sc.source}: [[slurper]] {sc.id!r}: retention: {exc}")
    return errors


def _bucket_steps(slurpers: Iterable[SlurperConfig], step: int) -> list[str]:
    """A slurper that writes back-dated buckets (its ``step`` setting: dcache) must use the archive's."""
    errors = []
    for sc in slurpers:
        own = getattr(sc.settings, "step", None)
        if isinstance(own, int) and own != step:
            errors.append(f"{sc.source}: [[slurper]] {sc.id!r}: step: {own} must equal [archive] step {step}")
    return errors


def _retention(value: Any, label: str, errors: list[str]) -> str | None:
    """A ``[[slurper]]``'s own retention text (checked against the step in :meth:`Config.retention`)."""
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise RetentionError(f'must be a string such as "{DEFAULT_RETENTION}"')
        parse_retention(value)
    except RetentionError as exc:
        errors.append(f"{label}: retention: {exc}")
        return None
    return value


def _number(value: Any, where: str, errors: list[str], low: float, high: float) -> float:
    from slurpers.api import parse_duration

    try:
        v = parse_duration(value)
    except ValueError as exc:
        errors.append(f"{where}: {exc}")
        return low
    if not low <= v <= high:
        errors.append(f"{where}: must be from {low:g} s to {high:g} s, got {v:g}")
        return low
    return v


def _count(
    table: Mapping[str, Any], key: str, default: int, bounds: tuple[int, int], label: str, errors: list[str]
) -> int:
    """An integer key of a ``[[slurper]]`` (a TOML integer: ``"100"`` and ``true`` are refused)."""
    value = table.get(key, default)
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(f"{label}: {key}: must be an integer (no quotes), got {value!r:.40}")
    elif not low <= value <= high:
        errors.append(f"{label}: {key}: must be from {low} to {high}, got {value}")
    else:
        return value
    return default


def build_slurper(sc: SlurperConfig, registry: SlurperRegistry | None = None) -> Slurper[Any]:
    """The slurper ``sc`` configures, its class from ``registry`` (the one the config was loaded with:
    ``build_slurper(sc, config.registry)``; the installed entry points when none is given)."""
    reg = registry if registry is not None else SlurperRegistry.from_entry_points()
    slurper = reg.get(sc.type)(sc.id, sc.settings, interval=sc.interval, timeout=sc.timeout)
    slurper.type_name = sc.type
    return slurper
