"""Slurper discovery through the ``rexmon.slurpers`` entry-point group (built-ins register there too)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from slurpers.api import Slurper

log = logging.getLogger(__name__)
GROUP = "rexmon.slurpers"


class SlurperRegistry:
    """Maps a slurper ``type`` to its class, loading plugins lazily."""

    def __init__(self, loaders: Mapping[str, object]) -> None:
        # values are EntryPoint objects or already-loaded classes
        self._loaders = dict(loaders)
        self._cache: dict[str, type[Slurper[Any]]] = {}

    @classmethod
    def from_entry_points(cls) -> SlurperRegistry:
        return cls({ep.name: ep for ep in entry_points(group=GROUP)})

    def names(self) -> list[str]:
        return sorted(self._loaders)

    def register(self, name: str, slurper_cls: type[Slurper[Any]]) -> None:
        self._check(name, slurper_cls)
        self._loaders[name] = slurper_cls
        self._cache[name] = slurper_cls

    def get(self, name: str) -> type[Slurper[Any]]:
        if name in self._cache:
            return self._cache[name]
        if name not in self._loaders:
            raise LookupError(f"unknown slurper type {name!r} (known: {', '.join(self.names()) or 'none'})")
        target = self._loaders[name]
        if isinstance(target, type):
            obj: object = target
        else:
            try:
                obj = target.load()  # type: ignore[attr-defined]
            except Exception as exc:  # a broken plugin must not take the others down
                raise LookupError(f"slurper type {name!r} failed to load: {exc}") from exc
        self._check(name, obj)
        assert isinstance(obj, type)
        self._cache[name] = obj
        return obj

    @staticmethod
    def _check(name: str, obj: object) -> None:
        if not (isinstance(obj, type) and issubclass(obj, Slurper)):
            raise TypeError(f"slurper type {name!r} is {obj!r}, not a subclass of slurpers.api.Slurper")
        if not hasattr(obj, "Settings"):
            raise TypeError(
                f"slurper type {name!r} ({obj.__name__}) declares no settings type: "
                f"write class {obj.__name__}(Slurper[MySettings])"
            )
