"""``rexmon demo``: simulators on loopback, real slurpers, rrdcached, SQLite, alarms and the web site.

:class:`Demo` starts everything in order (simulators, rrdcached, config, a week of history, downtimes,
the collector, the web site) and stops exactly what it started, in reverse order.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alarms.pipeline import build as build_alarms
from rexmon.absent import AbsentFill
from rexmon.config import Config, build_slurper, load
from rexmon.demo import democonfig, history
from rexmon.demo.daemons import RRDCached, WebServer, port_open, start_rrdcached
from rexmon.demo.fakecmd import FakeSlurmrestd, install_fake_commands
from rexmon.demo.loopback import LoopbackPeer
from rexmon.demo.transfer_sim import TransferSim
from rrd.archive import Archive
from slurpers.api import Slurper

log = logging.getLogger(__name__)
STOMP = ("127.0.0.1", 61613)
Say = Callable[[str], None]


@dataclass
class DemoOptions:
    """What ``rexmon demo`` was asked for."""

    directory: Path = Path("var/demo")
    listen: str = "127.0.0.1:8080"
    seed: int = 1
    workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    history: bool = True


def split_listen(text: str) -> tuple[str, int]:
    """HOST:PORT -> (host, port); port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def free_port(host: str) -> int:
    """A port nobody listens on right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Demo:
    """The whole demo in one process; ``start()`` returns once the site answers, ``stop()`` ends it."""

    def __init__(self, options: DemoOptions, say: Say | None = None) -> None:
        self.options = options
        self.dir = options.directory.resolve()
        self.say: Say = say or log.info
        self.notes: list[str] = []
        self.password = ""
        self.url = ""
        #: the time of the pre-filled history's last point; the collector's live runs come after it
        self.history_end: float | None = None
        self.config: Config | None = None
        self.prefill_stats: history.PrefillStats | None = None
        self._stops: list[tuple[str, Callable[[], None]]] = []
        self._transfer: Any = None
        self._rrdcached: RRDCached | None = None

    @property
    def user(self) -> str:
        return democonfig.USER

    @property
    def config_path(self) -> Path:
        return self.dir / "rexmon.toml"

    # -- start ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start everything; on any failure stop what was already started and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        for sub in ("bin", "rrd", "state", "graphs", "rrdcached", "munin"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        host, port = split_listen(self.options.listen)
        port = port or free_port(host)
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
        peers = self._start_simulators()
        self._rrdcached = start_rrdcached(self.dir / "rrd", self.dir / "rrdcached")
        self._on_stop("rrdcached", self._rrdcached.stop)
        self.password = self._password()
        self.config_path.write_text(
            democonfig.config_toml(peers, f"{host}:{port}", self.url.rstrip("/"), self.dir / "munin"),
            encoding="utf-8",
        )
        cfg = self.config = load(self.config_path)
        slurpers = [build_slurper(sc) for sc in cfg.slurpers if sc.enabled]
        alarms = self._alarms(cfg)
        self._downtimes(cfg)
        if self.options.history:
            self._history(cfg, slurpers, alarms)
        self._start_collector(cfg, slurpers, alarms)
        self._start_web(cfg, host, port)

    def _on_stop(self, name: str, fn: Callable[[], None]) -> None:
        self._stops.append((name, fn))

    def _start_simulators(self) -> democonfig.Peers:
        bins = install_fake_commands(self.dir / "bin")
        token = secrets.token_hex(16)
        # the config names the file, never the token; the CLI pointed at the demo's config reads it too
        token_file = self.dir / democonfig.TOKEN_FILE
        token_file.write_text(token + "\n", encoding="utf-8")
        token_file.chmod(0o600)
        rest = FakeSlurmrestd(token).start()
        self._on_stop("slurmrestd simulator", rest.stop)
        peer = LoopbackPeer(self.dir / "notifications.log", seed=self.options.seed).start()
        self._on_stop("notification receiver", peer.stop)
        stomp: tuple[str, int] | None = None
        self._transfer = TransferSim(seed=self.options.seed).start()
        self._on_stop("FTS/Netbeam simulator", self._transfer.stop)
        ftsmon, netbeam = self._transfer.ftsmon_url, self._transfer.netbeam_url
        if port_open(*STOMP):
            stomp = STOMP
            self._start_stomp_feed()
        else:
            self.notes.append(
                f"no STOMP broker on {STOMP[0]}:{STOMP[1]}: the FTS message-bus feed is skipped "
                "(start ActiveMQ and run the demo again to see it)"
            )
        bin_dir = next(iter(bins.values())).parent
        billing = self._start_billing()
        return democonfig.Peers(
            bin_dir, rest.url, peer.notify_url, peer.saag_url, ftsmon, netbeam, stomp, billing
        )

    def _start_billing(self) -> str:
        """A dCache billing database when PostgreSQL is installed: the file naming its URL, else ""."""
        import importlib.util

        from rexmon.demo.billing_sim import BillingSim, server_binaries

        bin_dir = server_binaries()
        if bin_dir is None or importlib.util.find_spec("psycopg") is None:
            self.notes.append(
                "no PostgreSQL server (package postgresql) or no psycopg (pip install 'rexmon[postgres]'): "
                "the dCache billing slurper is skipped"
            )
            return ""
        sim = BillingSim(self.dir / "billing", self.options.seed)
        try:
            sim.start(bin_dir)
        except Exception as exc:  # the demo goes on without this one source
            sim.stop()
            self.notes.append(
                f"the demo's PostgreSQL did not start ({exc}): the dCache billing slurper is skipped"
            )
            return ""
        self._on_stop("dCache billing database", sim.stop)
        url_file = self.dir / "billing.url"
        url_file.write_text(sim.url + "\n", encoding="utf-8")
        url_file.chmod(0o600)
        return str(url_file)

    def _start_stomp_feed(self) -> None:
        from rexmon.demo.stomp_feed import StompFeed

        feed = StompFeed(*STOMP, seed=self.options.seed)
        try:
            feed.start()
        except Exception as exc:  # a broker that refuses us must not stop the demo
            self.notes.append(f"STOMP broker on {STOMP[0]}:{STOMP[1]} refused the feed: {exc}")
            return
        self._on_stop("STOMP feed", feed.stop)

    def _password(self) -> str:
        """The demo login: kept in DIR/password so a restarted demo keeps it."""
        pw_file = self.dir / "password"
        if pw_file.is_file() and (self.dir / "htpasswd").is_file():
            return pw_file.read_text(encoding="utf-8").strip()
        password = democonfig.new_password()
        pw_file.write_text(password + "\n", encoding="utf-8")
        pw_file.chmod(0o600)
        democonfig.write_htpasswd(self.dir / "htpasswd", password)
        return password

    def _alarms(self, cfg: Config) -> Any:
        return build_alarms(cfg)

    def _downtimes(self, cfg: Config) -> None:
        from rexmon.demo.scenario import file_downtimes

        try:
            filed = file_downtimes(cfg, time.time())
        except Exception as exc:  # the demo goes on without its downtimes, and says why
            log.exception("filing the demo downtimes failed")
            self.notes.append(f"could not file the demo downtimes: {type(exc).__name__}: {exc}")
            return
        if filed:
            self.say(f"filed {filed} planned downtime(s)")

    # -- history -------------------------------------------------------------------------------------
    def _history(self, cfg: Config, slurpers: Sequence[Slurper[Any]], alarms: Any) -> None:
        from rexmon.demo.scenario import history_sources, last_observations

        now = time.time()
        archive = Archive(cfg.rrd_dir, cfg.archive.step, cfg.rrdcached)
        try:
            newest = archive.last("rexmon/condor.errors")
            times = history.history_times(now, newest[0] if newest else None)
            sources, extra = history_sources(cfg, slurpers, times, self.options.seed)
            self.say(
                f"pre-filling {len(times)} points per metric ({len(times) * history.STEP / 86400:.1f} days)"
            )
            stats = history.prefill(
                archive,
                slurpers,
                sources,
                extra,
                times,
                seed=self.options.seed,
                workers=self.options.workers,
                absent=AbsentFill(cfg.state_dir / "absent"),  # where the collector's Runner keeps them
            )
            self.prefill_stats = stats
            self.history_end = times[-1] if times else None
            self.say(
                f"pre-filled {stats.written} values of {stats.metrics} metrics in {stats.batches} batches "
                f"in {stats.seconds:.1f} s"
            )
            if alarms is not None and times:
                first = last_observations(cfg, slurpers, sources, times[-1], self.options.seed, extra)
                alarms.observe(first, now)
        finally:
            archive.close()

    # -- collector and web ---------------------------------------------------------------------------
    def _start_collector(self, cfg: Config, slurpers: Sequence[Slurper[Any]], alarms: Any) -> None:
        from rexmon.service import Service

        service = Service(cfg, slurpers=slurpers, alarms=alarms)
        service.start()
        self._on_stop("collector", service.stop)

    def _start_web(self, cfg: Config, host: str, port: int) -> None:
        from web import create_app

        app = create_app(cfg)
        # newest first: the server stops, then the site's rrdcached and database connections close
        self._on_stop("web site's connections", app.extensions["rexmon"]["monitor"].close)
        server = WebServer(app, host, port).start()
        self._on_stop("web site", server.stop)

    # -- stop ----------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop what was started, newest first; one failure does not keep the rest running."""
        while self._stops:
            name, fn = self._stops.pop()
            try:
                fn()
            except Exception:
                log.exception("stopping the %s failed", name)
            else:
                log.info("stopped the %s", name)

    def __enter__(self) -> Demo:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
