"""docs/operations.md: the Prometheus snippets it gives operators are valid for Prometheus' own checker."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _yaml_after(marker: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    assert marker in text, f"docs/operations.md no longer has {marker!r}"
    return text.split(marker, 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is missing: `make test` installs prometheus (Makefile APT_TEST)")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)


def test_the_alert_rules_pass_promtool(tmp_path: Path) -> None:
    rules = _yaml_after("and alerts worth having:")
    path = tmp_path / "rules.yml"
    path.write_text(
        "groups:\n- name: rexmon\n  rules:\n" + "".join(f"  {line}\n" for line in rules.splitlines())
    )
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0 and "SUCCESS: 4 rules found" in result.stdout, result.stdout + result.stderr


def test_the_scrape_config_passes_promtool(tmp_path: Path) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(_yaml_after("A Prometheus configuration scraping both:"))
    result = _promtool("check", "config", str(path))
    assert result.returncode == 0 and "SUCCESS" in result.stdout + result.stderr, (
        result.stdout + result.stderr
    )
