"""`rexmon web` serves the app; docs/api.md is the OpenAPI description rendered."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from rexmon.cli import cli
from tests.fixtures.rrdcached import free_port
from tests.web.conftest import fill_archive
from web.openapi import markdown

ROOT = Path(__file__).resolve().parents[2]


def test_docs_api_md_matches_openapi() -> None:
    assert (ROOT / "docs" / "api.md").read_text(encoding="utf-8") == markdown()


def test_web_rejects_a_bad_listen_address(runner: CliRunner, write_config: Callable[..., Path]) -> None:
    path = write_config()
    result = runner.invoke(cli, ["--config", str(path), "web", "--listen", "nonsense"])
    assert result.exit_code == 2 and "HOST:PORT" in result.output


def test_rexmon_web_serves_the_overview(write_config: Callable[..., Path], tmp_path: Path) -> None:
    path = write_config(f'[web]\ngraph_cache_dir = "{tmp_path / "graphs"}"\n')
    fill_archive(tmp_path / "rrd").close()
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "rexmon"),
            "--config",
            str(path),
            "web",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    html = resp.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        assert 'data-slurper="condor"' in html and 'data-slurper="load"' in html
        assert '<span class="count-name">OK</span>' in html
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
