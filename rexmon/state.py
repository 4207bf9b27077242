"""Slurper checkpoints: one JSON file per slurper, replaced atomically (write, fsync, rename)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from rrd.names import clean_part

log = logging.getLogger(__name__)


class CheckpointStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, slurper_id: str) -> Path:
        return self.directory / f"{clean_part(slurper_id)}.json"

    def load(self, slurper_id: str) -> dict[str, Any]:
        path = self._path(slurper_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # a damaged checkpoint must not stop the slurper: start over, and say so
            log.error("checkpoint %s is unreadable (%s); starting %s without it", path, exc, slurper_id)
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, slurper_id: str, state: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(slurper_id)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(state, fh, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
