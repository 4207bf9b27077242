"""Shared fixtures: a config builder writing real TOML, a CLI runner, and real rrdcached daemons.

Area-specific fixtures (PostgreSQL, ActiveMQ, SMTP, Chromium) live in tests/fixtures/ and are
registered here so every test directory can use them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest_plugins = [
    "tests.fixtures.rrdcached",
    "tests.fixtures.chromium",
    "tests.fixtures.smtp",
    "tests.fixtures.activemq",
    "tests.fixtures.postgres",
    "tests.fixtures.slurm",
]


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """write_config(text, confd={"10-x.toml": text}) -> path of rexmon.toml in tmp_path/etc.

    Unless the text sets them, [archive] and [database] point into tmp_path, so nothing leaks.
    """

    def _write(text: str = "", confd: dict[str, str] | None = None) -> Path:
        etc = tmp_path / "etc"
        etc.mkdir(exist_ok=True)
        body = textwrap.dedent(text)
        head = ""
        if "[archive]" not in body:
            head += f'[archive]\nrrd_dir = "{tmp_path / "rrd"}"\nstep = 60\n\n'
        if "[database]" not in body:
            head += f'[database]\nurl = "sqlite:///{tmp_path / "rexmon.db"}"\n\n'
        if "[scheduler]" not in body:
            head += f'[scheduler]\nstate_dir = "{tmp_path / "state"}"\njitter = 0\n\n'
        path = etc / "rexmon.toml"
        path.write_text(head + body, encoding="utf-8")
        if confd:
            (etc / "conf.d").mkdir(exist_ok=True)
            for name, content in confd.items():
                (etc / "conf.d" / name).write_text(textwrap.dedent(content), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
