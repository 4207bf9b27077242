"""Login timing: a user name that does not exist against a wrong password for one that does.

The peer, measured in the same run, is the answer an attacker compares with: a wrong password for an
existing user (one bcrypt check). rexmon's answer for an unknown name must cost the same, or the time
tells which names exist. Both go through the htpasswd checker the web app uses, with a bcrypt cost of
10 (``htpasswd -B -C 10``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import bcrypt

from bench.common import print_table, standalone, summary
from web.auth import Htpasswd

COST = 10


def _times(check: Htpasswd, tries: list[tuple[str, str]], n: int) -> list[list[float]]:
    """Seconds per answer for each (user, password), the tries interleaved so load on the machine
    falls on both alike."""
    out: list[list[float]] = [[] for _ in tries]
    for i in range(n):
        for j, (user, password) in enumerate(tries):
            t0 = time.perf_counter()
            assert not check.check(user, f"{password}{i}")
            out[j].append(time.perf_counter() - t0)
    return out


def run(quick: bool = False, rounds: int = 21) -> dict[str, Any]:
    if quick:
        rounds = 7
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "htpasswd"
        hashed = bcrypt.hashpw(b"the right one", bcrypt.gensalt(rounds=COST)).decode().replace("$2b$", "$2y$")
        path.write_text(f"alice:{hashed}\n", encoding="utf-8")
        check = Htpasswd(path)
        check.check("nobody", "warm-up")  # the dummy hash is made once per process
        times = _times(check, [("nobody", "guess"), ("alice", "guess")], rounds)
        unknown, wrong = summary(times[0]), summary(times[1])
    ratio = unknown["median"] / wrong["median"]
    out = {"bcrypt_cost": COST, "unknown_user_s": unknown, "wrong_password_s": wrong, "ratio": ratio}
    print_table(
        f"login answer time, bcrypt cost {COST}, {rounds} tries each (median [min-max])",
        [
            ("unknown user name", unknown["median"], f"s [{unknown['min']:.4f}-{unknown['max']:.4f}]"),
            (
                "known user, wrong password (peer)",
                wrong["median"],
                f"s [{wrong['min']:.4f}-{wrong['max']:.4f}]",
            ),
            ("unknown / wrong password", ratio, "x (target 0.8-1.25)"),
        ],
    )
    return out


def main() -> None:
    standalone(run, __doc__)


if __name__ == "__main__":
    main()
