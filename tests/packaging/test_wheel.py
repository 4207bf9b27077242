"""The package a site installs: built as sdist and wheel, installed into a clean virtualenv, run from there.

Nothing here imports rexmon from the checkout: the smoke test runs the installed ``rexmon`` command from a
directory outside the repository, in a virtualenv that has only the wheel and its dependencies.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest

ROOT = Path(__file__).resolve().parents[2]
MUNIN_LOAD = Path("/usr/share/munin/plugins/load")
VERSION = "0.1.0"
USER, PASSWORD = "smoke", "smoke test password"
#: a first install downloads and builds the dependencies (rrdtool compiles against librrd)
INSTALL_TIMEOUT = 900

pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT + 300)


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path  # built from the sdist (python -m build's default route)
    direct: Path  # built straight from the checkout


def _snapshot(dest: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) copied to ``dest``: one state for both builds,
    and no build/ or egg-info left in the checkout."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True,
    )  # fmt: skip
    if listed.returncode != 0:  # not a git checkout (an unpacked sdist): take it as it is
        shutil.copytree(
            ROOT, dest, ignore=shutil.ignore_patterns(".venv", "var", "*.egg-info", "__pycache__")
        )
        return dest
    for name in filter(None, listed.stdout.split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _build(source: Path, args: list[str], out: Path) -> list[Path]:
    out.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-m", "build", *args, "--outdir", str(out), str(source)],
        capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return sorted(out.iterdir())


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    base = tmp_path_factory.mktemp("dist")
    source = _snapshot(base / "source")
    via_sdist = _build(source, [], base / "via-sdist")
    direct = _build(source, ["--wheel"], base / "direct")
    sdist = next(p for p in via_sdist if p.name.endswith(".tar.gz"))
    wheel = next(p for p in via_sdist if p.name.endswith(".whl"))
    return Dists(sdist, wheel, direct[0])


def _contents(wheel: Path) -> dict[str, str]:
    """File name -> sha256 of every file in a wheel but its RECORD (which lists the others)."""
    with zipfile.ZipFile(wheel) as z:
        return {
            n: hashlib.sha256(z.read(n)).hexdigest()
            for n in z.namelist()
            if not n.endswith("dist-info/RECORD")
        }


def test_the_sdist_builds_the_same_wheel_as_the_checkout(dists: Dists) -> None:
    assert dists.wheel.name == dists.direct.name == f"rexmon-{VERSION}-py3-none-any.whl"
    via_sdist, direct = _contents(dists.wheel), _contents(dists.direct)
    assert sorted(set(via_sdist) ^ set(direct)) == []
    assert [n for n in via_sdist if via_sdist[n] != direct[n]] == []


def test_the_wheel_carries_templates_static_files_migrations_and_licences(dists: Dists) -> None:
    names = set(_contents(dists.wheel))
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "templates", "web/static", "downtime/migrations"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    tracked = [n for n in tracked if (ROOT / n).is_file()]  # not those deleted and not yet committed
    if not tracked:  # not a git checkout (an unpacked sdist): the directories as they are
        tracked = [
            str(p.relative_to(ROOT))
            for d in ("templates", "web/static", "downtime/migrations")
            for p in (ROOT / d).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        ]
    assert tracked and sorted(set(tracked) - names) == []
    assert {
        "downtime/alembic.ini",
        "web/static/vendor/uPlot.iife.min.js",
        "web/static/vendor/uPlot.LICENSE",
    } <= names
    assert f"rexmon-{VERSION}.dist-info/licenses/LICENSE" in names
    with zipfile.ZipFile(dists.wheel) as z:
        meta = z.read(f"rexmon-{VERSION}.dist-info/METADATA").decode()
    assert "License-Expression: BSD-3-Clause" in meta and "Requires-Dist: prometheus_client" in meta


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Installed:
    venv: Path
    home: Path  # a directory outside the checkout: the config, the archive, the database

    @property
    def rexmon(self) -> str:
        return str(self.venv / "bin" / "rexmon")

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.rexmon, "--config", str(self.home / "etc" / "rexmon.toml"), *args],
            cwd=self.home, capture_output=True, text=True, timeout=timeout, env=_clean_env(),
        )  # fmt: skip


def _clean_env() -> dict[str, str]:
    """The environment without anything pointing back to the checkout or its virtualenv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "REXMON_CONFIG")}
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if not p.startswith(str(ROOT)))
    return env


@pytest.fixture(scope="module")
def installed(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    if not MUNIN_LOAD.is_file():
        pytest.fail(f"{MUNIN_LOAD} is missing: `make test` installs munin-plugins-core (APT_RUN)")
    base = tmp_path_factory.mktemp("installed")
    venv = base / "venv"
    python = shutil.which("python3", path="/usr/bin:/bin") or "python3"  # the system's, not ours
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120, env=_clean_env())
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(dists.wheel)],
        capture_output=True, text=True, timeout=INSTALL_TIMEOUT, env=_clean_env(),
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    home = base / "site"
    (home / "etc").mkdir(parents=True)
    htpasswd = home / "etc" / "htpasswd"
    htpasswd.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    (home / "etc" / "rexmon.toml").write_text(
        f"""
[archive]
rrd_dir = "{home / "rrd"}"
step = 60

[database]
url = "sqlite:///{home / "rexmon.db"}"

[scheduler]
state_dir = "{home / "state"}"
jitter = 0

[web]
htpasswd = "{htpasswd}"

[[slurper]]
id = "load"
type = "munin"
interval = 60
plugin = "{MUNIN_LOAD}"
"""
    )
    return Installed(venv, home)


def test_the_installed_package_is_imported_from_the_virtualenv(installed: Installed) -> None:
    probe = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", "import rexmon, templates; print(rexmon.__file__)"],
        cwd=installed.home, capture_output=True, text=True, check=True, env=_clean_env(),
    )  # fmt: skip
    assert probe.stdout.strip().startswith(str(installed.venv / "lib"))
    version = installed.run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"rexmon {VERSION}"


@pytest.fixture(scope="module")
def web_site(installed: Installed) -> Iterator[str]:
    """`rexmon db upgrade`, `rexmon run --once` on a Munin plugin, then `rexmon web` from the virtualenv."""
    upgrade = installed.run("db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    current = installed.run("db", "current")
    assert current.returncode == 0 and current.stdout.strip(), current.stderr  # the newest revision
    once = installed.run("run", "--once")
    assert once.returncode == 0, once.stdout + once.stderr
    assert once.stdout.startswith("load: ") and "value(s)" in once.stdout
    add = installed.run("downtime", "add", "--scope", "load/*", "--duration", "2h", "--reason", "smoke test")
    assert add.returncode == 0, add.stdout + add.stderr
    port = _free_port()
    # its log goes to a file: a pipe nobody reads leaks and would stall the server once full
    log = installed.home / "web.log"
    with log.open("wb") as err_out:
        proc = subprocess.Popen(
            [installed.rexmon, "--config", str(installed.home / "etc" / "rexmon.toml"), "web", "--listen",
             f"127.0.0.1:{port}"],
            cwd=installed.home, stdout=subprocess.DEVNULL, stderr=err_out, env=_clean_env(),
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = log.read_text(errors="replace")
                    raise AssertionError(f"rexmon web did not start: {err}") from None
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _get(url: str) -> tuple[int, bytes]:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    req = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _pages(installed: Installed) -> tuple[list[str], list[str]]:
    """Every GET route of the installed app: those whose parameters the smoke run can fill (it made a
    metric ``load/load`` and downtime 1), and the others, with their parameters set to ``smoke``."""
    code = (
        "import json, sys\n"
        "from rexmon.config import load\n"
        "from web import create_app\n"
        "app = create_app(load(sys.argv[1]))\n"
        "print(json.dumps(sorted(r.rule for r in app.url_map.iter_rules() if 'GET' in r.methods)))\n"
    )
    out = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", code, str(installed.home / "etc" / "rexmon.toml")],
        cwd=installed.home, capture_output=True, text=True, check=True, env=_clean_env(),
    )  # fmt: skip
    fill = {
        "<slurper>": "load",
        "<metric>": "load",
        "<any(png, svg):fmt>": "png",
        "<int(max=9223372036854775807):downtime_id>": "1",
    }
    #: pages that need a query to say what to show
    query = {"/api/downtimes/preview": "?scope=load/*&start=now&duration=1h"}
    pages, unknown = [], []
    for rule in json.loads(out.stdout):
        if rule.startswith("/static/"):
            continue
        for k, v in fill.items():
            rule = rule.replace(k, v)
        if "<" in rule:  # a page about something this site does not have (a dashboard it has no config of)
            unknown.append(re.sub(r"<[^>]+>", "smoke", rule))
        else:
            pages.append(rule + query.get(rule, ""))
    return pages, unknown


def test_every_page_and_static_asset_of_the_installed_web_site_answers_200(
    installed: Installed, web_site: str
) -> None:
    site = installed.venv / "lib"
    static = next(site.glob("python3*/site-packages/web/static"))
    assets = ["/static/" + str(p.relative_to(static)) for p in sorted(static.rglob("*")) if p.is_file()]
    assert "/static/vendor/uPlot.iife.min.js" in assets
    pages, unknown = _pages(installed)
    assert {"/", "/graph/load/load", "/downtimes/1", "/metrics", "/readyz"} <= set(pages)
    # a group image needs its group: take the address the slurper's page shows
    group_page = _get(web_site + "/graph/load")[1].decode()
    linked = re.search(r"/img/load\.png\?[^\"' ]+", group_page)
    assert linked is not None, group_page[:2000]
    pages = [html.unescape(linked.group(0)) if p == "/img/load.png" else p for p in pages]
    # so does a sparkline: take the address the overview's row carries
    spark = re.search(r"/overview/spark/load\.svg\?[^\"' ]+", _get(web_site + "/")[1].decode())
    assert spark is not None
    pages = [html.unescape(spark.group(0)) if p == "/overview/spark/load.svg" else p for p in pages]
    answers = {path: _get(web_site + path) for path in pages + assets}
    bad = {path: (status, body[:300]) for path, (status, body) in answers.items() if status != 200}
    assert bad == {}
    # a page about something the site does not have says so (404), it does not fail to render (500)
    missing = {path: _get(web_site + path) for path in unknown}
    assert {p: (st, body[:300]) for p, (st, body) in missing.items() if st != 404} == {}
    assert answers["/graph/load/load"][1].count(b"uPlot") >= 1
    assert answers["/img/load/load.png"][1].startswith(b"\x89PNG")
    ready = json.loads(answers["/readyz"][1])
    assert ready["ready"] is True and ready["checks"]["heartbeat"]["ok"] is True
