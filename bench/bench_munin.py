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

A second part measures one plugin with 10,000 fields (a storage server's ``diskstats``, a switch): the
plugin prints a fixed config and fixed values. rexmon's CPU for one run of its munin slurper (both
plugin runs, parsing, and turning 10,000 readings into archive updates, in this process; target: under
1 s) against munin-node printing the same plugin to a client speaking the munin protocol (``config``
then ``fetch``, munin-node's CPU with the plugin), alternating, in the same run.
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
from rexmon.config import build_slurper, load
from rexmon.runner import Runner
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

    def __init__(self, home: Path, plugins: list[str], extra: dict[str, Path] | None = None) -> None:
        self.home = home
        self.port = free_port()
        (home / "plugins").mkdir(parents=True)
        (home / "plugin-conf.d").mkdir()
        (home / "state").mkdir()
        for p in plugins:
            (home / "plugins" / p).symlink_to(PLUGIN_DIR / p)
        for name, path in (extra or {}).items():
            (home / "plugins" / name).symlink_to(path)
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


# -- one plugin with many fields --------------------------------------------------------------------------
WIDE_FIELDS = 10_000


def wide_plugin(tmp: Path, fields: int = WIDE_FIELDS) -> Path:
    """A plugin with ``fields`` fields, printing a fixed config and values (its own cost: one ``cat``)."""
    tmp.mkdir(parents=True, exist_ok=True)
    config = ["graph_title Disk operations", "graph_vlabel ops/s", "graph_args --base 1000"]
    values = []
    for i in range(fields):
        config += [f"sd{i}_rd.label sd{i} reads", f"sd{i}_rd.type DERIVE", f"sd{i}_rd.min 0"]
        values.append(f"sd{i}_rd.value {1000 + i}")
    (tmp / "wide.config").write_text("\n".join(config) + "\n")
    (tmp / "wide.values").write_text("\n".join(values) + "\n")
    path = tmp / "wide"
    cat = f"exec cat {tmp / 'wide.config'}"
    path.write_text(f'#!/bin/sh\nif [ "$1" = config ]; then {cat}; fi\nexec cat {tmp / "wide.values"}\n')
    path.chmod(0o755)
    return path


def rexmon_wide(tmp: Path, plugin: Path) -> tuple[Runner, Any]:
    """A runner with one munin slurper for the wide plugin (a dry run: nothing archived)."""
    etc = tmp / "etc"
    etc.mkdir(parents=True)
    (etc / "rexmon.toml").write_text(
        f'[archive]\nrrd_dir = "{tmp / "rrd"}"\nstep = 300\n[database]\nurl = "sqlite:///{tmp / "db"}"\n'
        f'[scheduler]\nstate_dir = "{tmp / "state"}"\n'
        f'[[slurper]]\nid = "wide"\ntype = "munin"\ninterval = 300\ntimeout = 120\nplugin = "{plugin}"\n'
        f'plugstate = "{tmp / "plugstate"}"\n'
    )
    cfg = load(etc / "rexmon.toml")
    slurper = build_slurper(cfg.slurpers[0], cfg.registry)
    return Runner(cfg, [slurper], dry_run=True), slurper


def rexmon_wide_round(runner: Runner, slurper: Any) -> tuple[Round, float, int]:
    """One run: (wall and rexmon's own CPU, the plugin's CPU, readings turned into updates)."""
    cpu, kids, start = time.process_time(), _children_cpu(), time.perf_counter()
    result = runner.run(slurper)
    wall = time.perf_counter() - start
    if result.error:
        raise RuntimeError(f"rexmon: {result.error}")
    return Round(wall, time.process_time() - cpu), _children_cpu() - kids, len(result.updates)


def munin_node_wide_round(node: MuninNode, name: str) -> tuple[Round, int]:
    """``config`` and ``fetch`` of one plugin from munin-node: (wall, munin-node's CPU with the plugin;
    values received)."""
    import socket

    before = node.cpu_s()
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", node.port), 30) as sock, sock.makefile("rb") as fh:
        fh.readline()  # the banner
        got = {}
        for command in ("config", "fetch"):
            sock.sendall(f"{command} {name}\n".encode())
            lines = []
            while (line := fh.readline()) not in (b".\n", b""):
                lines.append(line)
            got[command] = lines
        sock.sendall(b"quit\n")
    wall = time.perf_counter() - start
    time.sleep(0.2)  # munin-node reaps its connection fork on SIGCHLD
    values = sum(1 for line in got["fetch"] if b".value " in line)
    return Round(wall, node.cpu_s() - before), values


def run_wide(tmp: Path, rounds: int) -> dict[str, Any]:
    """rexmon and munin-node, alternating, on one plugin with WIDE_FIELDS fields."""
    plugin = wide_plugin(tmp / "wideplugin")
    runner, slurper = rexmon_wide(tmp / "widerexmon", plugin)
    node = MuninNode(tmp / "widenode", [], {"wide": plugin})
    try:
        first, _, _ = rexmon_wide_round(runner, slurper)  # the first run also builds the specs
        munin_node_wide_round(node, "wide")
        rex: list[Round] = []
        plug: list[float] = []
        mun: list[Round] = []
        for _ in range(rounds):
            r, p, n = rexmon_wide_round(runner, slurper)
            rex.append(r)
            plug.append(p)
            m, got = munin_node_wide_round(node, "wide")
            mun.append(m)
            if n != WIDE_FIELDS or got != WIDE_FIELDS:
                raise RuntimeError(
                    f"expected {WIDE_FIELDS} values, rexmon made {n}, munin-node printed {got}"
                )
    finally:
        node.stop()
    return {
        "fields": WIDE_FIELDS,
        "rounds": rounds,
        "rexmon_first_run_cpu_s": first.cpu_s,
        "rexmon_cpu_s": summary([r.cpu_s for r in rex]),
        "rexmon_wall_s": summary([r.wall_s for r in rex]),
        "plugin_cpu_s": summary(plug),
        "munin_node_cpu_s": summary([m.cpu_s for m in mun]),
        "munin_node_wall_s": summary([m.wall_s for m in mun]),
    }


def print_wide(w: dict[str, Any]) -> None:
    rc, rw, mc, mw = w["rexmon_cpu_s"], w["rexmon_wall_s"], w["munin_node_cpu_s"], w["munin_node_wall_s"]
    print_table(
        f"One Munin plugin with {w['fields']:,} fields, {w['rounds']} rounds (median [min-max])",
        [
            (
                "rexmon CPU, one run (config + fetch + parse + updates)",
                rc["median"],
                _span(rc, "CPU-s (target: < 1)"),
            ),
            ("rexmon CPU, its first run (specs built)", w["rexmon_first_run_cpu_s"], "CPU-s (target: < 1)"),
            ("rexmon wall, one run", rw["median"], _span(rw, "s")),
            ("the plugin's own CPU (cat) under rexmon", w["plugin_cpu_s"]["median"], "CPU-s"),
            ("munin-node CPU printing it (peer)", mc["median"], _span(mc, "CPU-s")),
            ("munin-node wall, config + fetch (peer)", mw["median"], _span(mw, "s")),
            ("rexmon CPU / munin-node CPU", rc["median"] / mc["median"], "x"),
        ],
    )


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
        wide = run_wide(tmp, rounds)
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
        "wide_plugin": wide,
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
    print_wide(wide)
    return out


def _span(s: dict[str, float], unit: str) -> str:
    return f"{unit} [{s['min']:.2f}-{s['max']:.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--hosts", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--wide-only", action="store_true", help="only the plugin with 10,000 fields")
    args = ap.parse_args()
    if args.wide_only:
        with scratch("rexmon-bench-munin-") as tmp:
            os.chmod(tmp, 0o755)
            out = run_wide(tmp, 3 if args.quick else args.rounds)
        print_wide(out)
    else:
        out = run(quick=args.quick, hosts=args.hosts, rounds=args.rounds)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    if shutil.which("perl") is None:
        sys.exit("perl not found (munin-node needs it)")
    main()
