"""The only surface a slurper plugin imports: base class, metric specs, readings, helpers for I/O.

A slurper *measures only*. It never writes RRD files, checks thresholds or renders anything:
it turns a source's payload into :class:`Reading` objects and describes them with :class:`MetricSpec`.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import os
import re
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, Literal, TypeVar

from downtime.timeparse import parse_duration as parse_duration
from slurpers.command import DEFAULT_MAX_OUTPUT as DEFAULT_MAX_OUTPUT
from slurpers.command import CommandResult as CommandResult
from slurpers.command import output_limit as output_limit
from slurpers.command import run_command as run_command
from slurpers.errors import CommandTimeout as CommandTimeout
from slurpers.errors import PayloadError as PayloadError
from slurpers.errors import SlurperError as SlurperError
from slurpers.payload import json_decoder as json_decoder
from slurpers.payload import json_error as json_error
from slurpers.payload import load_json as load_json
from slurpers.payload import request_error_reason as request_error_reason
from slurpers.payload import to_float as to_float

log = logging.getLogger(__name__)

DSType = Literal["GAUGE", "COUNTER", "DERIVE", "ABSOLUTE"]
DS_TYPES: tuple[str, ...] = ("GAUGE", "COUNTER", "DERIVE", "ABSOLUTE")

# Metric names are the part after "<slurper id>/" in a metric id. The archive sanitises them again
# (defence in depth), but slurpers should produce clean names so ids are stable and readable.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def metric_name(*parts: object) -> str:
    """Join name parts with '.', replacing anything outside ``[A-Za-z0-9._-]`` by '_'.

    Dots inside a part are kept so hosts stay readable (``schedd.schedd01.example.org.running``);
    runs of dots are collapsed so a name can never climb out of a directory.
    """
    joined = ".".join(_UNSAFE.sub("_", str(p)).strip("._") or "_" for p in parts)
    joined = re.sub(r"\.{2,}", ".", joined)
    return joined or "_"


@dataclass(frozen=True)
class MetricSpec:
    """How one metric (or, with a glob in ``name``, a family of dynamic metrics) is archived.

    ``warning``/``critical`` are default tolerances in the Nagios range grammar; ``[[alarm]]`` rules
    in the config override them.
    """

    name: str
    ds_type: DSType = "GAUGE"
    unit: str = ""
    min: float | None = None
    max: float | None = None
    label: str = ""
    warning: str | None = None
    critical: str | None = None
    #: Metrics with the same graph key are drawn together (e.g. running/idle/held of one schedd).
    graph: str = ""
    description: str = ""
    #: For a glob family of counts (jobs of a user, pending jobs by reason): the value a name that an
    #: earlier run reported and this run does not gets (0), instead of going stale; the service writes
    #: it for up to a week after the name vanished (rexmon/absent.py). None: nothing is written.
    when_absent: float | None = None
    #: 1024 when the unit's multiples are binary (memory, file sizes: Munin's ``graph_args --base 1024``),
    #: so pages print ``MiB``; 1000 gives SI prefixes
    base: int = 1000
    #: how the value is drawn, never how it is archived (Munin's ``<field>.cdef``): rrdtool RPN over the
    #: field names of the same graph, e.g. ``up,8,*`` (bytes counted, bits drawn); "" draws the value
    cdef: str = ""
    #: the metric (a name of the same slurper) drawn mirrored below the axis in this metric's graph, as
    #: the other half of an in/out pair (Munin's ``<field>.negative``); "" for none
    negative: str = ""

    def __post_init__(self) -> None:
        if self.ds_type not in DS_TYPES:
            raise ValueError(f"metric {self.name!r}: DS type {self.ds_type!r} is not one of {DS_TYPES}")
        if self.base not in (1000, 1024):
            raise ValueError(f"metric {self.name!r}: base {self.base!r} is not 1000 or 1024")

    def matches(self, name: str) -> bool:
        return self.name == name or (_is_pattern(self.name) and fnmatch.fnmatchcase(name, self.name))


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


def _fill_graph(spec: MetricSpec, name: str) -> str:
    """A glob spec's graph key may hold a ``<placeholder>``: fill it with what the first ``*`` matched.

    ``MetricSpec("schedd.*.running", graph="schedd.<name>")`` gives ``schedd.s1`` for ``schedd.s1.running``.
    """
    if "<" not in spec.graph or "*" not in spec.name:
        return spec.graph
    m = re.fullmatch(re.escape(spec.name).replace(r"\*", "(.+)"), name)
    if not m:
        return spec.graph
    head, _, rest = spec.graph.partition("<")
    return head + m.group(1) + rest.partition(">")[2]


@dataclass(frozen=True)
class Reading:
    """One value of one metric. ``value`` None means unknown (Munin's ``U``); ``time`` None means 'now'."""

    metric: str
    value: float | None
    time: float | None = None

    def __post_init__(self) -> None:
        if self.value is not None and not isinstance(self.value, (int, float)):
            raise TypeError(f"metric {self.metric!r}: value {self.value!r} is not a number")
        if isinstance(self.value, float) and math.isnan(self.value):
            object.__setattr__(self, "value", None)


@dataclass
class CollectContext:
    """What the service hands a slurper for one run.

    ``state`` is the slurper's checkpoint as committed after its last *successfully archived* run
    (empty on first run). A slurper that needs a checkpoint (e.g. Netbeam's 'fetched up to') puts the
    new one in ``new_state``; the service commits it only after the readings are archived, so a crash
    in between re-fetches a window rather than leaving a gap.
    """

    now: float
    timeout: float
    state: Mapping[str, Any] = field(default_factory=dict)
    new_state: dict[str, Any] | None = None


class SpecIndex:
    """A slurper's specs by exact name (one dict lookup), with the glob families kept apart.

    A concrete name gets its exact spec if there is one, else the first glob family it matches (with the
    name and the graph key filled in), else a plain GAUGE. Lookups cost O(1) for exact names and
    O(number of globs) for dynamic ones, whatever the number of metrics.
    """

    def __init__(self, specs: Iterable[MetricSpec]) -> None:
        self._exact: dict[str, MetricSpec] = {}
        self._globs: list[tuple[re.Pattern[str], MetricSpec]] = []
        for spec in specs:
            self._exact.setdefault(spec.name, spec)
            if _is_pattern(spec.name):
                self._globs.append((re.compile(fnmatch.translate(spec.name)), spec))

    def __len__(self) -> int:
        return len(self._exact)

    def get(self, name: str) -> MetricSpec:
        hit = self._exact.get(name)
        if hit is not None:
            return hit
        for pattern, spec in self._globs:
            if pattern.match(name):
                return replace(spec, name=name, graph=_fill_graph(spec, name))
        return MetricSpec(name=name)


S = TypeVar("S")


class Slurper(ABC, Generic[S]):
    """Base class of every slurper, generic over its settings type.

    A subclass names its settings dataclass (made with :func:`settings`) as the type parameter,
    ``class UPSSlurper(Slurper[UPSSettings])``: ``self.settings`` is then typed, and the class' ``Settings``
    (what the config is validated against) is taken from the parameter. The type name users write in
    ``type = "..."`` is the entry point's name; ``type_name`` holds it on a slurper built from config.
    """

    #: the settings dataclass: the type parameter of ``Slurper[...]`` (set when the subclass is made)
    Settings: ClassVar[type[Any]]
    #: the ``type`` it was configured under (the entry point name); set by ``rexmon.config.build_slurper``
    type_name: str = ""
    #: bumped by :meth:`specs_changed`; whoever caches what :meth:`spec_for` answered compares it
    spec_generation: int = 0
    _spec_index: SpecIndex | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Settings" not in cls.__dict__:
            found = _settings_parameter(cls)
            if found is not None:
                cls.Settings = found

    def __init__(self, slurper_id: str, settings: S, *, interval: float, timeout: float) -> None:
        self.id = slurper_id
        self.settings: S = settings
        self.interval = interval
        self.timeout = timeout

    # -- description -------------------------------------------------------------------------------
    @abstractmethod
    def metrics(self) -> Sequence[MetricSpec]:
        """Specs of the metrics this slurper produces; names may be globs for dynamic metrics."""

    def spec_for(self, name: str) -> MetricSpec:
        """The spec of a concrete metric name: exact name first, then the first matching glob (O(1))."""
        if self._spec_index is None:
            self._spec_index = SpecIndex(self.metrics())
        return self._spec_index.get(name)

    def specs_changed(self) -> None:
        """Say that :meth:`metrics` now answers differently (a Munin plugin's config changed).

        The specs are indexed once and reused; a slurper whose specs depend on what the source says
        calls this when they change, and the runner re-reads them.
        """
        self._spec_index = None
        self.spec_generation += 1

    # -- life cycle --------------------------------------------------------------------------------
    def start(self) -> None:  # noqa: B027 - optional hook
        """Start long-lived resources (e.g. a STOMP consumer). Called once before the first collect."""

    @abstractmethod
    def collect(self, ctx: CollectContext) -> Sequence[Reading]:
        """Measure once. Raise :class:`SlurperError` with a clear message when the source fails."""

    def on_archived(self, ctx: CollectContext) -> None:  # noqa: B027 - optional hook
        """Called after this run's readings are archived and ``ctx.new_state`` is committed.

        A consumer of a message bus acknowledges its messages here, so nothing acknowledged is lost.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release long-lived resources. Called once at shutdown."""


# -- I/O helpers: slurpers/command.py (run_command), slurpers/payload.py (numbers, JSON) ----------


# -- settings types (a slurper's Settings dataclass uses these) -----------------------------------


class Secret:
    """A secret given by reference: ``{ env = "NAME" }`` or ``{ file = "/path" }`` (or, discouraged, inline).

    ``str()`` and ``repr()`` never show the value; call :meth:`get`.

    A disabled slurper's settings are validated with secrets *deferred* (``context={"defer_secrets":
    True}``): a variable that is not set or a file that cannot be read is no config error then, and
    :meth:`get` raises :class:`SlurperError` saying why, should the slurper be run (``rexmon slurp``).
    """

    __slots__ = ("_missing", "_value", "source")

    def __init__(self, value: str, source: str = "inline", missing: str | None = None) -> None:
        self._value = value
        self.source = source
        self._missing = missing

    def get(self) -> str:
        if self._missing is not None:
            raise SlurperError(self._missing)
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<{self.source}>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def resolve(cls, raw: object) -> Secret:
        if isinstance(raw, Secret):
            return raw
        if isinstance(raw, str):
            return cls(raw, "inline")
        if isinstance(raw, Mapping) and len(raw) == 1:
            ((kind, ref),) = raw.items()
            if kind == "env" and isinstance(ref, str):
                if ref not in os.environ:
                    raise SecretUnavailable(
                        f"environment variable {ref} (named by {{ env = {ref!r} }}) is not set"
                    )
                return cls(os.environ[ref], f"env:{ref}")
            if kind == "file" and isinstance(ref, str):
                try:
                    with open(ref, encoding="utf-8") as fh:
                        return cls(fh.read().strip(), f"file:{ref}")
                except OSError as exc:
                    raise SecretUnavailable(f"cannot read secret file {ref}: {exc.strerror}") from None
        raise ValueError('a secret is { env = "NAME" } or { file = "/path" } (or an inline string)')

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.with_info_plain_validator_function(cls._validate)

    @classmethod
    def _validate(cls, raw: object, info: Any) -> Secret:
        try:
            return cls.resolve(raw)
        except SecretUnavailable as exc:
            if not (info.context or {}).get("defer_secrets"):
                raise
            kind, ref = next(iter(raw.items())) if isinstance(raw, Mapping) else ("inline", "")
            return cls("", f"{kind}:{ref}", missing=str(exc))


class SecretUnavailable(ValueError):
    """A secret's reference is well formed but names no value (variable not set, file unreadable)."""


def _duration_type() -> Any:
    from typing import Annotated

    from pydantic import BeforeValidator

    return Annotated[float, BeforeValidator(parse_duration)]


#: A duration in seconds; config accepts 90, "90", "5m", "2h", "1d".
Duration = _duration_type()


_T = TypeVar("_T")


@typing.dataclass_transform(frozen_default=True, field_specifiers=(field,))
def settings(cls: type[_T]) -> type[_T]:
    """Decorator for a slurper's Settings: a frozen dataclass validated by pydantic, unknown keys refused.

    Integers, booleans and floats are strict (``port = "61613"`` or ``ssl = "yes"`` is an error naming the
    key, as in rexmon's own sections); durations (:data:`Duration`) still take ``"5m"``.
    """
    from pydantic import ConfigDict
    from pydantic.dataclasses import dataclass as pdataclass

    _strict_scalars(cls)
    made = pdataclass(frozen=True, config=ConfigDict(extra="forbid", strict=False))(cls)
    return typing.cast("type[_T]", made)


def _strict_scalars(cls: type[Any]) -> None:
    """Make the fields annotated ``int``, ``bool``, ``float`` (or ``... | None``) strict in place."""
    from pydantic import Strict

    scalars: dict[str, type[Any]] = {"int": int, "bool": bool, "float": float}
    own = cls.__dict__.get("__annotations__", {})
    for name, annotation in list(own.items()):
        text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        base, optional = text.removesuffix(" | None"), text.endswith(" | None")
        if base in scalars:
            strict: Any = typing.Annotated[scalars[base], Strict()]
            own[name] = strict | None if optional else strict


def _settings_parameter(cls: type[Any]) -> type[Any] | None:
    """``UPSSettings`` for ``class UPSSlurper(Slurper[UPSSettings])``; None when not given there."""
    for base in getattr(cls, "__orig_bases__", ()):
        origin = typing.get_origin(base)
        if isinstance(origin, type) and issubclass(origin, Slurper):
            (arg,) = typing.get_args(base)
            if isinstance(arg, type):
                return arg
    return None
