"""The shipped examples etc/conf.d/20-22 validate and stay disabled (the demo hosts have no batch systems)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from rexmon.cli import cli

ETC = Path(__file__).resolve().parents[2] / "etc"


def test_rexmon_check_passes_with_the_examples(runner) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(cli, ["--config", str(ETC / "rexmon.toml"), "check"])
    assert result.exit_code == 0, result.output
    assert ": ok (" in result.output


@pytest.mark.parametrize(
    ("name", "kind"),
    [("20-htcondor.toml", "htcondor"), ("21-slurm.toml", "slurm"), ("22-enstore.toml", "enstore")],
)
def test_examples_are_disabled(name: str, kind: str) -> None:
    slurpers = tomllib.loads((ETC / "conf.d" / name).read_text())["slurper"]
    assert slurpers and all(s["type"] == kind and s["enabled"] is False for s in slurpers)
