"""Config values of the wrong type or out of bounds, and slurpers that emit unbounded metric names.

`rexmon check` names the file and the key of each; a slurper is held to its `max_metrics`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from rexmon.cli import cli
from rexmon.config import build_slurper, load
from rexmon.runner import Runner

PLUGIN = "/usr/share/munin/plugins/load"


BAD_VALUES = [
    ('[archive]\nstep = "60"\n', "[archive] step: Input should be a valid integer"),
    ("[archive]\nstep = 60.5\n", "[archive] step: Input should be a valid integer"),
    ("[scheduler]\nworkers = true\n", "[scheduler] workers: Input should be a valid integer"),
    ("[scheduler]\nworkers = 0\n", "[scheduler] workers: Input should be greater than or equal to 1"),
    ("[scheduler]\nworkers = 100000\n", "[scheduler] workers: Input should be less than or equal to 512"),
    ("[scheduler]\njitter = 1e12\n", "[scheduler] jitter: Input should be less than or equal to 3600"),
    ('[scheduler]\njitter = "2h"\n', "[scheduler] jitter: Input should be less than or equal to 3600"),
    (
        "[scheduler]\njitter = -1\n",
        "[scheduler] jitter: Value error, duration must be a finite number >= 0",
    ),
    (
        '[scheduler]\nevaluate_alarms = "yes"\n',
        "[scheduler] evaluate_alarms: Input should be a valid boolean",
    ),
    ("[web]\npublic_read = 1\n", "[web] public_read: Input should be a valid boolean"),
    ("interval = 1e12\n", "[[slurper]] 's': interval: must be from 1 s to 604800 s, got 1e+12"),
    ("interval = 0.5\n", "[[slurper]] 's': interval: must be from 1 s to 604800 s, got 0.5"),
    ("interval = true\n", "[[slurper]] 's': interval: not a duration: True"),
    ("timeout = 1e9\n", "[[slurper]] 's': timeout: must be from 0.1 s to 86400 s, got 1e+09"),
    ('max_output = "4MB"\n', "[[slurper]] 's': max_output: must be an integer (no quotes), got '4MB'"),
    ("max_output = 10\n", "[[slurper]] 's': max_output: must be from 1024 to 1073741824, got 10"),
    ("max_metrics = true\n", "[[slurper]] 's': max_metrics: must be an integer (no quotes), got True"),
    ("max_metrics = 0\n", "[[slurper]] 's': max_metrics: must be from 1 to 1000000, got 0"),
]


@pytest.mark.parametrize(
    ("toml", "expected"), BAD_VALUES, ids=[toml.strip().splitlines()[-1] for toml, _ in BAD_VALUES]
)
def test_wrong_type_or_out_of_bounds(
    toml: str, expected: str, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    """A config key of the wrong type or out of its bounds: `rexmon check` exits 2 naming the file and the key."""  # noqa: E501
    slurper = f'[[slurper]]\nid = "s"\ntype = "munin"\nplugin = "{PLUGIN}"\n'
    text = toml + slurper if toml.startswith("[") else slurper + toml
    path = write_config(text)
    result = runner.invoke(cli, ["--config", str(path), "check"])
    assert result.exit_code == 2, result.output
    assert f"{path}: {expected}" in result.output


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('type = "slurm"\nper_account = "yes"\n', "per_account: Input should be a valid boolean"),
        (
            'type = "netbeam"\nurl = "http://127.0.0.1:1"\nmax_windows = "16"\n',
            "max_windows: Input should be a valid integer",
        ),
        (
            'type = "fts"\nftsmon = ""\nstomp = { host = "127.0.0.1", port = "61613" }\n',
            "stomp.port: Input should be a valid integer",
        ),
    ],
    ids=["slurm-bool", "netbeam-int", "fts-stomp-port"],
)
def test_slurper_setting_of_the_wrong_type(
    table: str, expected: str, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    """A slurper's own setting of the wrong type (`per_account = "yes"`, `port = "61613"`): `rexmon check` exits 2 naming the slurper and the key."""  # noqa: E501
    path = write_config(f'[[slurper]]\nid = "s"\n{table}')
    result = runner.invoke(cli, ["--config", str(path), "check"])
    assert result.exit_code == 2, result.output
    assert f"{path}: [[slurper]] 's': {expected}" in result.output


def test_every_bad_key_is_named_at_once(write_config: Callable[..., Path], runner: CliRunner) -> None:
    """Several bad scheduling keys in one file and in conf.d: every one is listed with its own file, not just the first."""  # noqa: E501
    path = write_config(
        "[scheduler]\nworkers = true\njitter = 1e12\n"
        f'[[slurper]]\nid = "s"\ntype = "munin"\ninterval = 1e12\nplugin = "{PLUGIN}"\n',
        confd={"60-more.toml": '[archive]\nstep = "60"\n'},
    )
    result = runner.invoke(cli, ["--config", str(path), "check"])
    assert result.exit_code == 2
    for line in (
        f"{path}: [scheduler] workers:",
        f"{path}: [scheduler] jitter:",
        f"{path}: [[slurper]] 's': interval:",
        f"{path.parent / 'conf.d' / '60-more.toml'}: [archive] step:",
    ):
        assert line in result.output, line


def _fields_plugin(tmp_path: Path, count_file: Path | None, fields: int) -> Path:
    """A Munin plugin printing ``fields`` fields; with a count file, named anew on every run."""
    prefix = (
        f"n=$(cat {count_file} 2>/dev/null || echo 0)\necho $((n + 1)) > {count_file}\n"
        if count_file
        else "n=0\n"
    )
    body = (
        "#!/bin/sh\n"
        'if [ "$1" = config ]; then exit 0; fi\n'
        + prefix
        + f'i=0\nwhile [ $i -lt {fields} ]; do echo "r${{n}}_f$i.value $i"; i=$((i + 1)); done\n'
    )
    path = tmp_path / "fields"
    path.write_text(body)
    path.chmod(0o755)
    return path


def test_more_metric_names_than_max_metrics_in_one_run(
    tmp_path: Path, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    """A plugin printing 50 fields with `max_metrics = 20`: the run fails naming max_metrics, no RRD file is created."""  # noqa: E501
    plugin = _fields_plugin(tmp_path, None, 50)
    path = write_config(f'[[slurper]]\nid = "wide"\ntype = "munin"\nmax_metrics = 20\nplugin = "{plugin}"\n')
    result = runner.invoke(cli, ["--config", str(path), "run", "--once"])
    assert result.exit_code == 1
    assert (
        "wide: FAILED: slurper wide produced 50 metric names, more than its max_metrics = 20" in result.output
    )
    assert not (tmp_path / "rrd" / "wide").exists()


def test_new_metric_names_every_run(
    tmp_path: Path, write_config: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A plugin whose 10 field names change on every run (`max_metrics = 25`): the first names are archived, new names past 25 are refused with one log line per run."""  # noqa: E501
    plugin = _fields_plugin(tmp_path, tmp_path / "count", 10)
    cfg = load(
        write_config(f'[[slurper]]\nid = "churn"\ntype = "munin"\nmax_metrics = 25\nplugin = "{plugin}"\n')
    )
    slurper = build_slurper(cfg.slurpers[0], cfg.registry)
    runner = Runner(cfg, [slurper], dry_run=True)
    archived = [len(runner.run(slurper).updates) for _ in range(4)]
    assert archived == [10, 10, 5, 0]
    refused = [r.getMessage() for r in caplog.records if "new metric names refused" in r.getMessage()]
    assert refused == [
        "slurper churn: 5 new metric names refused (it has 25 names, its max_metrics is 25)",
        "slurper churn: 10 new metric names refused (it has 25 names, its max_metrics is 25)",
    ]
