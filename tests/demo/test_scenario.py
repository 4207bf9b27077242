"""The demo's first alarm round: every pre-filled metric, Munin's too, reaches the catalogue with its unit."""

from __future__ import annotations

from pathlib import Path

from rexmon.config import build_slurper, load
from rexmon.demo import history
from rexmon.demo.scenario import history_sources, last_observations, munin_now

PLUGIN = Path("/usr/share/munin/plugins/memory")


def test_munin_values_are_observed_with_their_unit_before_the_first_live_run(tmp_path: Path) -> None:
    """The web read "1.71 G" for Munin's memory until the collector's first run told the catalogue
    its unit (graph_vlabel bytes, base 1024); the pre-filled newest value now carries it."""
    cfg_path = tmp_path / "rexmon.toml"
    cfg_path.write_text(
        f'[archive]\nrrd_dir = "{tmp_path / "rrd"}"\n[scheduler]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[[slurper]]\nid = "memory"\ntype = "munin"\ninterval = 60\ntimeout = 10\nplugin = "{PLUGIN}"\n'
        f'plugstate = "{tmp_path / "plugstate"}"\n',
        encoding="utf-8",
    )
    cfg = load(cfg_path)
    slurpers = [build_slurper(sc) for sc in cfg.slurpers]
    times = [1_700_000_000 - 300, 1_700_000_000]
    sources, extra = history_sources(cfg, slurpers, times, seed=7)
    readings = munin_now(slurpers)["memory"]
    assert readings, "the real Munin memory plugin printed no value"

    seen = {o.metric_id: o for o in last_observations(cfg, slurpers, sources, times[-1], 7, extra)}

    known = [r.metric for r in readings if r.value is not None]
    assert {f"memory/{m}" for m in known} <= set(seen), sorted(seen)
    for name in known:
        obs = seen[f"memory/{name}"]
        assert obs.unit.lower() == "bytes" and obs.base == 1024, (name, obs.unit, obs.base)
        assert obs.time == times[-1]
    assert not [o for o in seen.values() if o.metric_id.startswith(history.HEALTH + "/")]
