"""The dcache slurper's config: checked at load (rexmon check), the shipped example stays valid."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from rexmon.cli import cli

ETC = Path(__file__).resolve().parents[2] / "etc"


def test_the_example_is_disabled_and_its_url_is_a_reference() -> None:
    """etc/conf.d/40-dcache.toml: type dcache, disabled, the URL by { env = ... } (never inline)."""
    (slurper,) = tomllib.loads((ETC / "conf.d" / "40-dcache.toml").read_text())["slurper"]
    assert slurper["type"] == "dcache" and slurper["enabled"] is False
    assert slurper["url"] == {"env": "DCACHE_BILLING_URL"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("step = 300", "'dc': step: 300 must equal [archive] step 60"),
        ('local_timezone = "Mars/Olympus"', "local_timezone 'Mars/Olympus' is not a known time zone"),
        ('lag = "soon"', "'dc': lag: Value error, not a duration: 'soon'"),
    ],
)
def test_rexmon_check_names_the_bad_key(
    runner: CliRunner, write_config: Callable[..., Path], line: str, message: str
) -> None:
    """A step other than the archive's, an unknown zone, a bad duration: refused, naming the key."""
    config = write_config(
        f"""
        [[slurper]]
        id = "dc"
        type = "dcache"
        url = "postgresql://reader@127.0.0.1:1/billing"
        {line}
        """
    )
    result = runner.invoke(cli, ["--config", str(config), "check"])
    assert result.exit_code != 0 and message in result.output, result.output
