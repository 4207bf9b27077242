"""The fts and netbeam settings: the shipped examples load, bad keys are errors naming file and key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rexmon.config import ConfigError, load

ETC = Path(__file__).resolve().parents[2] / "etc" / "conf.d"


def test_examples_load_when_enabled(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTS_STOMP_PASSWORD", "s3cret")
    fts = (ETC / "30-fts.toml").read_text().replace("enabled = false", "enabled = true")
    fts = fts.replace("# password = {", "password = {")
    netbeam = (ETC / "31-netbeam.toml").read_text().replace("enabled = false", "enabled = true")
    cfg = load(write_config("", confd={"30-fts.toml": fts, "31-netbeam.toml": netbeam}))
    by_id = {s.id: s for s in cfg.slurpers}
    stomp = by_id["fts"].settings.stomp
    assert stomp.password.get() == "s3cret" and "s3cret" not in repr(stomp)
    assert by_id["fts"].settings.time_window == 3600
    nb = by_id["esnet"].settings
    assert (nb.backfill, nb.chunk, nb.lag) == (2 * 86400, 6 * 3600, 900)
    assert "devices/albq-asw1/interfaces/gr-0%2F0%2F0" in nb.interfaces


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('type = "fts"', "set ftsmon_url, a [stomp] table, or both"),
        ('type = "fts"\nftsmon_url = "fts3.example.org/ftsmon"', "must be an http(s):// URL"),
        (
            'type = "fts"\nftsmon_url = "https://f/ftsmon"\ntime_window = "90m"',
            "time_window must be whole hours",
        ),
        ('type = "fts"\nftsmon_url = "https://f/ftsmon"\nwindow = 1', "window: unknown key"),
        (
            'type = "fts"\nstomp = { host = "b", destinations = ["transfer.complete"] }',
            "destinations must be",
        ),
        ('type = "fts"\nstomp = { host = "b", pasword = "x" }', "stomp.pasword: unknown key"),
        ('type = "netbeam"', "interfaces: list at least one resource"),
        ('type = "netbeam"\ninterfaces = ["devices/a/interfaces/b"]\nchunk = "1d"', "less than a day"),
        ('type = "netbeam"\ninterfaces = ["/devices/a"]', "is not a resource path"),
        ('type = "netbeam"\ninterfaces = ["devices/a"]\nseries = ["bandwidth"]', "series.0"),
        ('type = "netbeam"\ninterfaces = ["devices/a"]\nbackfill = "two days"', "not a duration"),
    ],
)
def test_bad_settings_name_the_key(write_config: Callable[..., Path], table: str, message: str) -> None:
    path = write_config(f'[[slurper]]\nid = "x"\n{table}\n')
    with pytest.raises(ConfigError) as info:
        load(path)
    text = "\n".join(info.value.errors)
    assert message in text
    assert f"{path}: [[slurper]] 'x'" in text
