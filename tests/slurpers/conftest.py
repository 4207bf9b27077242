"""Fixtures for slurper tests: fake executables that replay tests/data payloads, and a rexmon runner."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rexmon.cli import cli

DATA = Path(__file__).resolve().parent.parent / "data"

_SCRIPT = """#!{python}
import json, sys, time
routes = json.loads({routes!r})
with open({log!r}, "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
time.sleep({sleep!r})
args = " ".join(sys.argv[1:])
for key, path in routes:
    if key in args:
        sys.stdout.write(open(path, encoding="utf-8").read())
        break
sys.stderr.write({stderr!r})
sys.exit({code!r})
"""


class Fakes:
    """Writes executables into tmp_path/bin; each logs its argv to <name>.argv."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)

    def command(
        self,
        name: str,
        routes: Mapping[str, Path] | Path | None = None,
        *,
        code: int = 0,
        sleep: float = 0.0,
        stderr: str = "",
    ) -> Path:
        """A command printing the payload of the first route whose key occurs in its arguments."""
        if isinstance(routes, Path):
            routes = {"": routes}
        pairs = [(k, str(v)) for k, v in (routes or {}).items()]
        path = self.bin / name
        path.write_text(
            _SCRIPT.format(
                python=sys.executable,
                routes=json.dumps(pairs),
                log=str(self.bin / f"{name}.argv"),
                sleep=sleep,
                stderr=stderr,
                code=code,
            ),
            encoding="utf-8",
        )
        path.chmod(0o755)
        return path

    def calls(self, name: str) -> list[list[str]]:
        log = self.bin / f"{name}.argv"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    return Fakes(tmp_path)


@pytest.fixture
def rexmon_once(runner: CliRunner) -> Callable[[Path], tuple[Any, dict[str, float | None]]]:
    """Run ``rexmon run --once`` then ``metrics --json``: (run result, {metric id: last value})."""

    def _run(config: Path) -> tuple[Any, dict[str, float | None]]:
        run = runner.invoke(cli, ["--config", str(config), "run", "--once"])
        listed = runner.invoke(cli, ["--config", str(config), "metrics", "--json"])
        assert listed.exit_code == 0, listed.output
        return run, {row["id"]: row["value"] for row in json.loads(listed.stdout)}

    return _run
