"""The demo's configuration file and login: real slurpers pointed at the simulators on loopback."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import bcrypt

USER = "demo"
TOKEN_FILE = "slurm.jwt"
MUNIN_PLUGINS = ("cpu", "load", "memory", "df")
#: the metric the demo's [[alarm]] rule holds out of tolerance at every hour of the day
BREACHING = "condor/schedd.schedd01.example.org.idle"


@dataclass(frozen=True)
class Peers:
    """Where the simulators listen."""

    bin_dir: Path
    slurmrestd: str
    notify_url: str
    saag_url: str
    ftsmon_url: str = ""
    netbeam_url: str = ""
    stomp: tuple[str, int] | None = None
    #: the file naming the demo billing database's URL (a secret by reference); "" when not started
    billing_url_file: str = ""


def q(value: object) -> str:
    """A TOML value (JSON strings and lists are valid TOML)."""
    return json.dumps(value)


def write_htpasswd(path: Path, password: str) -> None:
    """An htpasswd file with one bcrypt entry for the demo user (like ``htpasswd -B``)."""
    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    path.write_text(f"{USER}:{digest}\n", encoding="utf-8")
    path.chmod(0o600)


def new_password() -> str:
    """A random demo password, easy to type."""
    return secrets.token_urlsafe(9)


def slurpers_toml(peers: Peers, munin_dir: Path) -> str:
    """The [[slurper]] tables of the demo."""
    b = peers.bin_dir
    parts = [
        f"""[[slurper]]
id = "condor"
type = "htcondor"
interval = 60
timeout = 30
condor_status = {q(str(b / "condor_status"))}
condor_q = {q(str(b / "condor_q"))}
group_by = ["Owner"]
""",
        f"""[[slurper]]
id = "slurm"
type = "slurm"
interval = 60
timeout = 30
mode = "cli"
squeue = {q(str(b / "squeue"))}
sinfo = {q(str(b / "sinfo"))}
sdiag = {q(str(b / "sdiag"))}
""",
        f"""[[slurper]]
id = "slurm-rest"
type = "slurm"
interval = 60
timeout = 20
mode = "rest"
url = {q(peers.slurmrestd)}
token = {{ file = {q(str(peers.bin_dir.parent / TOKEN_FILE))} }}
""",
        f"""[[slurper]]
id = "tape"
type = "enstore"
interval = 60
timeout = 45
enstore = {q(str(b / "enstore"))}
library_managers = ["LTO8"]
movers = "all"
status_url = {q(peers.saag_url)}
""",
    ]
    if peers.ftsmon_url:
        stomp = ""
        if peers.stomp is not None:
            stomp = f"stomp = {{ host = {q(peers.stomp[0])}, port = {peers.stomp[1]} }}\n"
        parts.append(
            f"""[[slurper]]
id = "fts"
type = "fts"
interval = 60
timeout = 20
ftsmon_url = {q(peers.ftsmon_url)}
{stomp}"""
        )
    if peers.netbeam_url:
        parts.append(
            f"""[[slurper]]
id = "netbeam"
type = "netbeam"
interval = 120
timeout = 20
base_url = {q(peers.netbeam_url)}
interfaces = ["devices/albq-asw1/interfaces/ae10", "devices/chic-cr55/interfaces/xe-0%2F1%2F0"]
series = ["traffic", "errors"]
lag = "30s"                    # the simulator's newest points are complete at once
"""
        )
    if peers.billing_url_file:
        parts.append(
            f"""[[slurper]]
id = "dcache"
type = "dcache"
interval = 60
timeout = 50
url = {{ file = {q(peers.billing_url_file)} }}
backfill = "3h"                # the simulator wrote the three hours before the demo started
"""
        )
    for name in MUNIN_PLUGINS:
        parts.append(
            f"""[[slurper]]
id = {q(name)}
type = "munin"
interval = 60
timeout = 10
plugin = {q(f"/usr/share/munin/plugins/{name}")}
plugstate = {q(str(munin_dir / name))}
"""
        )
    return "\n".join(parts)


def config_toml(peers: Peers, listen: str, base_url: str, munin_dir: Path) -> str:
    """The whole demo rexmon.toml (relative paths resolve against the demo directory)."""
    return f"""# Written by `rexmon demo`: the real slurpers pointed at simulators on loopback.
# Every key is documented in docs/configuration.md.

[archive]
rrd_dir = "rrd"
step = 60
rrdcached = "unix:rrdcached/rrdcached.sock"

[database]
url = "sqlite:///rexmon.db"

[scheduler]
workers = 8
jitter = 2
state_dir = "state"
evaluate_alarms = true

[web]
listen = {q(listen)}
public_read = true
htpasswd = "htpasswd"
base_url = {q(base_url)}
graph_cache_dir = "graphs"

{slurpers_toml(peers, munin_dir)}
# One metric held out of tolerance: schedd01 always has more than 15 idle jobs queued.
[[alarm]]
name = "schedd01 idle queue"
match = {q(BREACHING)}
warning = "~:15"
critical = "~:250"
notify = ["demo"]

# The tape library's read backlog (builds by day, worked off at night).
[[alarm]]
name = "tape read backlog"
match = "tape/lm.LTO8.pending_reads"
warning = "~:250"
critical = "~:400"
for = "10m"
notify = ["demo"]

[[notify]]
name = "demo log"
url = {q(peers.notify_url)}
tags = ["demo"]
"""
