"""The plugin contract: a third-party slurper written from docs/slurpers/index.md type-checks under
``mypy --strict``, is found through a registry, and gets its settings type and type name without
repeating them; specs are looked up by exact name with the glob families apart."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from rexmon.config import ConfigError, build_slurper, load
from rexmon.runner import Runner
from slurpers.api import CollectContext, MetricSpec, Reading, Slurper, SpecIndex, settings
from slurpers.registry import SlurperRegistry

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "slurpers" / "index.md"
#: what upsc from Network UPS Tools prints for ``upsc ups@localhost`` (NUT 2.8, an APC Smart-UPS)
UPSC_OUTPUT = (
    "battery.charge: 97\nbattery.runtime: 2340\ndevice.mfr: American Power Conversion\n"
    "ups.load: 23\nups.status: OL\n"
)


def doc_example() -> str:
    """The Python example of 'Writing a slurper', exactly as the docs show it."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Writing a slurper", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def mypy_strict(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    pkg = tmp_path / "mysite"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "ups.py").write_text(source)
    env = {**os.environ, "MYPYPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), "--config-file", str(REPO / "pyproject.toml"),
         str(pkg / "ups.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_documented_example_type_checks_under_mypy_strict(tmp_path: Path) -> None:
    proc = mypy_strict(tmp_path, doc_example())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found in 1 source file" in proc.stdout


def test_its_settings_are_typed_so_mypy_catches_a_wrong_key(tmp_path: Path) -> None:
    """Were ``self.settings`` Any, a misspelt setting would pass the type check and fail at run time."""
    source = doc_example().replace("[s.upsc, s.ups]", "[s.upsc_path, s.ups]")
    proc = mypy_strict(tmp_path, source)
    assert proc.returncode == 1
    assert '"UPSSettings" has no attribute "upsc_path"' in proc.stdout


@pytest.fixture
def ups_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EntryPoint]:
    """The docs' example as an installed module ``mysite.ups``, and its entry point."""
    pkg = tmp_path / "site" / "mysite"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "ups.py").write_text(doc_example())
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield EntryPoint(name="ups", value="mysite.ups:UPSSlurper", group="rexmon.slurpers")
    for name in ("mysite.ups", "mysite"):
        sys.modules.pop(name, None)


def test_the_example_runs_from_config_with_the_type_name_of_its_entry_point(
    tmp_path: Path, write_config, ups_entry_point: EntryPoint
) -> None:
    registry = SlurperRegistry({"ups": ups_entry_point})
    ups_cls = registry.get("ups")
    module = sys.modules["mysite.ups"]
    assert ups_cls is module.UPSSlurper
    assert ups_cls.Settings is module.UPSSettings  # taken from Slurper[UPSSettings]
    upsc = tmp_path / "upsc"
    upsc.write_text(f"#!/bin/sh\ncat <<'EOF'\n{UPSC_OUTPUT}EOF\n")
    upsc.chmod(0o755)
    cfg = load(write_config(f'[[slurper]]\nid = "ups1"\ntype = "ups"\nupsc = "{upsc}"\n'), registry=registry)
    assert cfg.registry is registry
    slurper = build_slurper(cfg.slurpers[0], cfg.registry)
    assert slurper.type_name == "ups" and slurper.settings == ups_cls.Settings(upsc=str(upsc))
    result = Runner(cfg, [slurper], dry_run=True).run(slurper)
    assert result.error is None
    assert {(u.metric_id, u.value) for u in result.updates} == {("ups1/charge", 97.0), ("ups1/load", 23.0)}
    # an unknown key of its settings is refused at load, naming the key
    with pytest.raises(ConfigError, match=r"\[\[slurper\]\] 'ups1': upsc_path: unknown key"):
        load(write_config('[[slurper]]\nid = "ups1"\ntype = "ups"\nupsc_path = "x"\n'), registry=registry)


def test_build_slurper_uses_the_registry_it_is_given(write_config) -> None:
    """A type only the given registry knows is built from it, not looked up in the entry points."""

    @settings
    class NoSettings:
        pass

    class Local(Slurper[NoSettings]):
        def metrics(self) -> Sequence[MetricSpec]:
            return []

        def collect(self, ctx: CollectContext) -> Sequence[Reading]:
            return [Reading("x", 1.0)]

    registry = SlurperRegistry({"local-only": Local})
    cfg = load(write_config('[[slurper]]\nid = "l"\ntype = "local-only"\n'), registry=registry)
    built = build_slurper(cfg.slurpers[0], cfg.registry)
    assert isinstance(built, Local) and built.type_name == "local-only"
    with pytest.raises(LookupError, match="unknown slurper type 'local-only'"):
        build_slurper(cfg.slurpers[0], SlurperRegistry({}))


def test_a_class_without_a_settings_type_is_refused_naming_the_fix() -> None:
    class Bare(Slurper):  # type: ignore[type-arg]
        def metrics(self) -> Sequence[MetricSpec]:
            return []

        def collect(self, ctx: CollectContext) -> Sequence[Reading]:
            return []

    with pytest.raises(
        TypeError, match=r"declares no settings type: write class Bare\(Slurper\[MySettings\]\)"
    ):
        SlurperRegistry({"bare": Bare}).get("bare")
    with pytest.raises(TypeError, match="not a subclass of slurpers.api.Slurper"):
        SlurperRegistry({"dict": dict}).get("dict")


@pytest.mark.parametrize(
    ("name", "expected_name", "ds_type", "graph"),
    [
        ("jobs.total", "jobs.total", "GAUGE", "jobs"),  # exact
        ("schedd.s1.running", "schedd.s1.running", "GAUGE", "schedd.s1"),  # glob, graph filled
        ("jobs.*", "jobs.*", "DERIVE", ""),  # a literal name equal to a glob: the exact spec wins
        ("other", "other", "GAUGE", ""),  # unknown: a plain GAUGE
    ],
)
def test_spec_index_exact_first_then_the_first_glob(
    name: str, expected_name: str, ds_type: str, graph: str
) -> None:
    index = SpecIndex(
        [
            MetricSpec("jobs.total", graph="jobs"),
            MetricSpec("jobs.*", "DERIVE"),
            MetricSpec("schedd.*.running", graph="schedd.<name>"),
            MetricSpec("schedd.*", "COUNTER"),
        ]
    )
    spec = index.get(name)
    assert (spec.name, spec.ds_type, spec.graph) == (expected_name, ds_type, graph)


def test_specs_are_read_once_until_the_slurper_says_they_changed() -> None:
    @settings
    class NoSettings:
        pass

    class Counting(Slurper[NoSettings]):
        calls = 0
        unit = "s"

        def metrics(self) -> Sequence[MetricSpec]:
            Counting.calls += 1
            return [MetricSpec(f"f{i}", unit=self.unit) for i in range(10_000)]

        def collect(self, ctx: CollectContext) -> Sequence[Reading]:
            return []

    s = Counting("c", NoSettings(), interval=60, timeout=10)
    assert [s.spec_for(f"f{i}").name for i in range(0, 10_000, 999)] == [
        f"f{i}" for i in range(0, 10_000, 999)
    ]
    assert Counting.calls == 1
    generation = s.spec_generation
    s.unit = "ms"
    s.specs_changed()
    assert s.spec_generation == generation + 1 and s.spec_for("f5").unit == "ms" and Counting.calls == 2
