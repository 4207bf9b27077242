"""Munin: one collection round of the same Munin plugins by rexmon and by Munin itself, in the same run.

The plugins are the core ones from /usr/share/munin/plugins that work on this machine (~30), replicated
as N "hosts" (N copies of every plugin) to give a load:
- rexmon: ``rexmon run --once`` (one process per round, as from cron) with one munin slurper per plugin
  and host, writing RRD files directly;
- peer: Munin's own munin-node (started on a free loopback port, plugin dir of symlinks) polled by
  ``munin-update`` (run as the munin user) with N hosts in munin.conf, writing its RRD files directly.
Both run every plugin twice per round (``config``, then the values); ``rexmon run --once`` with no
slurper is timed too, to show what starting the process costs. Wall time per round and CPU per
round (rexmon and its plugins; munin-update and munin-node with their plugins) are the medians of
several rounds after a first round that creates the files. Rounds alternate between the two.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import print_table, scratch, summary
from slurpers.api import PayloadError
from slurpers.munin import parse_config, parse_values
from tests.fixtures.rrdcached import free_port

PLUGIN_DIR = Path("/usr/share/munin/plugins")
MUNIN_UPDATE = Path("/usr/share/munin/munin-update")
MUNIN_NODE = Path("/usr/sbin/munin-node")
#: core plugins that read only local /proc, /sys or commands (no services, no network)
CANDIDATES = (
    "load", "cpu", "memory", "df", "df_inode", "df_abs", "uptime", "processes", "threads", "entropy",
    "forks", "open_files", "open_inodes", "interrupts", "irqstats", "vmstat", "swap", "users", "proc_pri",
    "netstat", "diskstats", "iostat", "meminfo", "fw_packets", "tcp", "cpuspeed", "buddyinfo", "proc",
    "netstat_multi", "fw_conntrack", "fw_forwarded_local", "ntp_kernel_err",
)  # fmt: skip
HZ = os.sysconf("SC_CLK_TCK")


@dataclass
class Round:
    wall_s: float
    cpu_s: float


def working_plugins(state: Path) -> list[str]:
    """The candidates that run here and whose output both sides can read."""
    env = {**os.environ, "MUNIN_LIBDIR": "/usr/share/munin", "MUNIN_PLUGSTATE": str(state)}
    state.mkdir(parents=True, exist_ok=True)
    ok = []
    for name in CANDIDATES:
        path = PLUGIN_DIR / name
        if not os.access(path, os.X_OK):
            continue
        try:
            cfg = subprocess.run([path, "config"], capture_output=True, text=True, env=env, timeout=20)
            val = subprocess.run([path], capture_output=True, text=True, env=env, timeout=20)
        except subprocess.TimeoutExpired:
            continue
        if cfg.returncode or val.returncode:
            continue
        try:
            parse_config(cfg.stdout, name)
            if parse_values(val.stdout, name):
                ok.append(name)
        except PayloadError:
            continue
    return ok


# -- rexmon ---------------------------------------------------------------------------------------------
def rexmon_config(tmp: Path, plugins: list[str], hosts: int) -> Path:
    etc = tmp / "etc"
    etc.mkdir(parents=True)
    body = [
        f'[archive]\nrrd_dir = "{tmp / "rrd"}"\nstep = 300\n',
        f'[database]\nurl = "sqlite:///{tmp / "rexmon.db"}"\n',
        f'[scheduler]\nstate_dir = "{tmp / "state"}"\nworkers = 16\njitter = 0\n',
    ]
    for h in range(1, hosts + 1):
        for p in plugins:
            body.append(
                f'[[slurper]]\nid = "node{h}-{p}"\ntype = "munin"\ninterval = 300\ntimeout = 30\n'
                f'plugin = "{PLUGIN_DIR / p}"\nplugstate = "{tmp / "plugstate" / f"node{h}"}"\n'
            )
    path = etc / "rexmon.toml"
    path.write_text("\n".join(body), encoding="utf-8")
    return path


def rexmon_round(config: Path) -> tuple[Round, int]:
    """One ``rexmon run --once``: (wall and CPU incl. its plugins, number of failed slurpers)."""
    exe = Path(sys.executable).with_name("rexmon")
    cmd = [str(exe), "--config", str(config), "run", "--once"]
    before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    failed = proc.stdout.count("FAILED") + proc.stderr.count("archive:")
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"rexmon run --once exited {proc.returncode}: {proc.stderr[-2000:]}")
    return Round(wall, _children_cpu() - before), failed


# -- Munin ----------------------------------------------------------------------------------------------
class MuninNode:
    """Debian's munin-node on loopback, its config, plugin dir and plugin state all in ``home``."""

    def __init__(self, home: Path, plugins: list[str]) -> None:
        self.home = home
        self.port = free_port()
        (home / "plugins").mkdir(parents=True)
        (home / "plugin-conf.d").mkdir()
        (home / "state").mkdir()
        for p in plugins:
            (home / "plugins" / p).symlink_to(PLUGIN_DIR / p)
        # plugins run as root, like the rexmon side (the Debian default is nobody)
        (home / "plugin-conf.d" / "bench").write_text("[*]\nuser root\ngroup root\n")
        (home / "munin-node.conf").write_text(
            f"log_level 4\nlog_file {home}/munin-node.log\npid_file {home}/munin-node.pid\n"
            "background 0\nsetsid 0\nuser root\ngroup root\nhost_name benchnode\n"
            f"allow ^127\\.0\\.0\\.1$\nhost 127.0.0.1\nport {self.port}\ntimeout 30\n"
        )
        # Munin's own munin-node, with only its compiled-in directories pointed at ``home``
        # (like a build with another prefix: munin-node has no option for its plugin dir)
        script = (
            f'$Munin::Common::Defaults::MUNIN_CONFDIR = "{home}";'
            f'$Munin::Common::Defaults::MUNIN_PLUGSTATE = "{home}/state";'
            f'@ARGV = ("--config", "{home}/munin-node.conf");'
            f'require "{MUNIN_NODE}"; exit main();'
        )
        self.proc = subprocess.Popen(
            ["perl", "-MMunin::Common::Defaults", "-e", script],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait()

    def _wait(self) -> None:
        import socket

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"munin-node exited: {err[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                    if s.recv(100).startswith(b"# munin node"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("munin-node did not answer within 20 s")

    def cpu_s(self) -> float:
        """CPU of munin-node and of the children it has reaped (its forks and their plugins)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / HZ

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def munin_config(home: Path, port: int, hosts: int) -> Path:
    for d in ("db", "html", "log", "run"):
        (home / d).mkdir(parents=True)
    lines = [f"{d}dir {home / d}" for d in ("db", "html", "log", "run")]
    lines.append("timeout 60")
    for h in range(1, hosts + 1):
        lines.append(f"[bench;node{h}]\n    address 127.0.0.1\n    port {port}\n    use_node_name yes")
    path = home / "munin.conf"
    path.write_text("\n".join(lines) + "\n")
    if os.geteuid() == 0:  # munin-update refuses to run as root
        pw = pwd.getpwnam("munin")
        for p in [home, *home.rglob("*")]:
            os.chown(p, pw.pw_uid, pw.pw_gid)
    return path


def munin_round(config: Path, node: MuninNode) -> tuple[Round, int]:
    """One munin-update: (wall, CPU of munin-update + munin-node + plugins, [ERROR] lines logged)."""
    as_munin = ["runuser", "-u", "munin", "--"] if os.geteuid() == 0 else []
    log = config.parent / "log" / "munin-update.log"
    seen = log.read_text(errors="replace").count("[ERROR]") if log.exists() else 0
    before, node_before = _children_cpu(), node.cpu_s()
    start = time.perf_counter()
    proc = subprocess.run(
        [*as_munin, str(MUNIN_UPDATE), "--config_file", str(config)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=config.parent,
    )
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"munin-update exited {proc.returncode}: {proc.stderr[-2000:]}")
    time.sleep(0.2)  # munin-node reaps its connection forks on SIGCHLD
    cpu = _children_cpu() - before + node.cpu_s() - node_before
    errors = log.read_text(errors="replace").count("[ERROR]") - seen if log.exists() else 0
    return Round(wall, cpu), errors


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _count_rrd(path: Path) -> int:
    return sum(1 for _ in path.rglob("*.rrd"))


def run(quick: bool = False, hosts: int = 2, rounds: int = 5) -> dict[str, Any]:
    if quick:
        hosts, rounds = 1, 3
    for exe in (MUNIN_UPDATE, MUNIN_NODE):
        if not exe.exists():
            raise RuntimeError(f"{exe} not found: install the munin and munin-node packages (make setup)")
    with scratch("rexmon-bench-munin-") as tmp:
        os.chmod(tmp, 0o755)  # the munin user must reach its dirs below
        plugins = working_plugins(tmp / "probe")
        if not plugins:
            raise RuntimeError(f"no Munin plugin in {PLUGIN_DIR} works here")
        rex_cfg = rexmon_config(tmp / "rexmon", plugins, hosts)
        empty_cfg = rexmon_config(tmp / "empty", [], hosts)  # what starting rexmon costs
        node = MuninNode(tmp / "node", plugins)
        try:
            mun_cfg = munin_config(tmp / "munin", node.port, hosts)
            rex_first, _ = rexmon_round(rex_cfg)
            mun_first, _ = munin_round(mun_cfg, node)
            rex: list[Round] = []
            mun: list[Round] = []
            empty: list[Round] = []
            rex_err = mun_err = 0
            for _ in range(rounds):
                time.sleep(1.0)  # both archives take one value per second per series
                r, e = rexmon_round(rex_cfg)
                rex.append(r)
                rex_err += e
                m, e = munin_round(mun_cfg, node)
                mun.append(m)
                mun_err += e
                empty.append(rexmon_round(empty_cfg)[0])
        finally:
            node.stop()
        rex_files, mun_files = _count_rrd(tmp / "rexmon" / "rrd"), _count_rrd(tmp / "munin" / "db")
    rw, rc = summary([r.wall_s for r in rex]), summary([r.cpu_s for r in rex])
    mw, mc = summary([r.wall_s for r in mun]), summary([r.cpu_s for r in mun])
    ew, ec = summary([r.wall_s for r in empty]), summary([r.cpu_s for r in empty])
    out = {
        "plugins": plugins,
        "plugin_count": len(plugins),
        "hosts": hosts,
        "plugin_runs_per_round": len(plugins) * hosts,
        "rounds": rounds,
        "rexmon_wall_s": rw,
        "rexmon_cpu_s": rc,
        "rexmon_startup_wall_s": ew,
        "rexmon_startup_cpu_s": ec,
        "munin_update_wall_s": mw,
        "munin_update_cpu_s": mc,
        "first_round_wall_s": {"rexmon": rex_first.wall_s, "munin": mun_first.wall_s},
        "ratio_munin_over_rexmon_wall": mw["median"] / rw["median"],
        "ratio_munin_over_rexmon_cpu": mc["median"] / rc["median"],
        "rrd_files": {"rexmon": rex_files, "munin": mun_files},
        "errors_in_timed_rounds": {"rexmon": rex_err, "munin": mun_err},
    }
    n = len(plugins) * hosts
    print_table(
        f"Munin plugins: {len(plugins)} plugins x {hosts} hosts = {n} plugin runs per round, "
        f"{rounds} rounds (median [min-max])",
        [
            ("rexmon run --once, wall", rw["median"], _span(rw, "s/round")),
            ("munin-update + munin-node, wall (peer)", mw["median"], _span(mw, "s/round")),
            ("rexmon CPU (incl. plugins)", rc["median"], _span(rc, "CPU-s/round")),
            ("Munin CPU (incl. plugins) (peer)", mc["median"], _span(mc, "CPU-s/round")),
            ("rexmon run --once with no slurper, CPU", ec["median"], _span(ec, "CPU-s (start-up)")),
            ("munin / rexmon wall", out["ratio_munin_over_rexmon_wall"], "x (target: > 1, rexmon faster)"),
            ("munin / rexmon CPU", out["ratio_munin_over_rexmon_cpu"], "x"),
            (
                "RRD files rexmon / munin",
                f"{rex_files} / {mun_files}",
                "(rexmon: +2 health series per slurper)",
            ),
            ("errors in timed rounds rexmon / munin", f"{rex_err} / {mun_err}", ""),
        ],
    )
    return out


def _span(s: dict[str, float], unit: str) -> str:
    return f"{unit} [{s['min']:.2f}-{s['max']:.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--hosts", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out = run(quick=args.quick, hosts=args.hosts, rounds=args.rounds)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    if shutil.which("perl") is None:
        sys.exit("perl not found (munin-node needs it)")
    main()
