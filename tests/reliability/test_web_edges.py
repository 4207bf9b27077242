"""The web site's edges: oversized bodies, a forged trusted header, login timing, a fresh database.

Bodies past the cap are refused before the login, a client cannot forge the proxy's user header, login
answers do not tell which user names exist, and a database without its schema is created or named."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import pytest

from rexmon.config import load
from tests.fixtures.smtp import free_port
from tests.ops.conftest import Rexmon, get
from tests.web.conftest import USER, Site, basic, make_site, site  # noqa: F401 (fixtures)
from web import create_app
from web.app import MAX_BODY

DOWNTIME = {"scope": "load/*", "end": "+1h", "reason": "forged"}


@pytest.fixture
def web_process(tmp_path: Path) -> Iterator[Callable[[Path], tuple[Rexmon, int]]]:
    """web_process(config) -> a running `rexmon web` on a free loopback port, stopped afterwards."""
    started: list[Rexmon] = []

    def _start(config: Path) -> tuple[Rexmon, int]:
        port = free_port()
        args = ["--config", str(config), "web", "--listen", f"127.0.0.1:{port}", "--threads", "2"]
        proc = Rexmon(args, tmp_path / f"web-{len(started)}.log").start()
        started.append(proc)
        proc.wait_for(f"http://127.0.0.1:{port}/healthz")
        return proc, port

    yield _start
    for p in started:
        p.stop()


def _raw(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send a request as bytes; the server's first answer (it must come without the rest of the body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head + body)
        try:
            return s.recv(4096)
        except TimeoutError:
            return b"(no answer within 30 s: the server waits for the rest of the body)"


def test_oversized_body_is_refused_before_login(
    web_process: Callable[[Path], tuple[Rexmon, int]], write_config: Callable[..., Path]
) -> None:
    """An anonymous POST announcing a 1 GB body, or sending a chunked one past the cap, to a real `rexmon web`: 413 at once, without the body being read or a login asked for."""  # noqa: E501
    _, port = web_process(write_config(""))
    head = (
        b"POST /api/downtimes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000000\r\n\r\n"
    )
    answer = _raw(port, head, b"{")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
    chunked = b"POST /downtimes/new HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = _raw(port, chunked, chunk * (MAX_BODY // (64 * 1024) + 1))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_oversized_body_is_413_not_401_in_the_app(site: Site) -> None:  # noqa: F811
    """The same through the app alone (any WSGI server): a body past the cap is a 413 before the login check, a small one without login a 401."""  # noqa: E501
    client = site.client()
    big = client.post("/api/downtimes", data=b"x" * (MAX_BODY + 1), content_type="application/json")
    assert big.status_code == 413 and "larger than" in big.get_json()["error"]
    assert client.post("/api/downtimes", json=DOWNTIME).status_code == 401


@pytest.mark.parametrize(
    ("trusted", "forged"),
    [
        ("REMOTE_USER", "Remote-User"),
        ("REMOTE_USER", "remote-user"),
        ("remote_user", "Remote-User"),
        ("X-Remote-User", "Remote-User"),
    ],
)
def test_a_client_cannot_forge_the_trusted_header(
    make_site: Callable[..., Site],  # noqa: F811
    trusted: str,
    forged: str,
) -> None:
    """trusted_header set (REMOTE_USER, remote_user, X-Remote-User) and a client sending a Remote-User header naming mallory, which WSGI files as HTTP_REMOTE_USER: not logged in, nothing filed; the server's variable and the proxy's exact header still log in."""  # noqa: E501
    web = make_site(trusted_header=trusted)
    client = web.client()
    forged_post = client.post("/api/downtimes", json=DOWNTIME, headers={forged: "mallory"})
    assert forged_post.status_code == 401
    assert client.get("/api/downtimes?which=all").get_json() == []
    if "-" not in trusted:
        ok = client.post("/api/downtimes", json=DOWNTIME, environ_base={trusted: "carol"})
    else:
        ok = client.post("/api/downtimes", json=DOWNTIME, headers={trusted: "carol"})
    assert ok.status_code == 201 and ok.get_json()["author"] == "carol"


def test_unknown_user_costs_a_bcrypt_check_like_a_wrong_password(
    site: Site,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Logins with a user name that does not exist: one bcrypt check at the file's cost, as a wrong password costs, so the answer time does not tell which names exist (figures: bench/bench_login.py)."""  # noqa: E501
    checked: list[int] = []
    real = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        checked.append(int(hashed[4:6]))
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    client = site.client()
    file_cost = {int(line.split(":", 1)[1][4:6]) for line in _bcrypt_lines(site)}
    for user, password in (("nobody", "x"), (USER, "wrong"), ("nobody", "y")):
        before = len(checked)
        r = client.post("/api/downtimes", json=DOWNTIME, headers=basic(user, password))
        assert r.status_code == 401
        assert len(checked) == before + 1 and {checked[-1]} == file_cost, (user, checked)


def _bcrypt_lines(web: Site) -> list[str]:
    text = (web.tmp / "htpasswd").read_text(encoding="utf-8")
    return [ln for ln in text.splitlines() if ln.partition(":")[2].startswith("$2")]


def test_fresh_database_gets_its_schema(
    web_process: Callable[[Path], tuple[Rexmon, int]], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    """`rexmon web` on a database that was never migrated: it creates the schema at start, so the downtime pages and the API answer instead of a 500."""  # noqa: E501
    db = tmp_path / "fresh" / "rexmon.db"
    _, port = web_process(write_config(f'[database]\nurl = "sqlite:///{db}"\n'))
    for path in ("/downtimes", "/api/downtimes", "/api/alarms"):
        status, body = get(f"http://127.0.0.1:{port}{path}")
        assert status == 200, (path, body[:300])


def test_database_without_schema_is_named_not_a_500(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    """A page read while the database is away or has no schema: 503 naming the database (password masked) and `rexmon db upgrade`, not a 500."""  # noqa: E501
    port = free_port()
    url = f"postgresql+psycopg2://rexmon:secret@127.0.0.1:{port}/rexmon"
    (tmp_path / "rrd").mkdir()
    app = create_app(load(write_config(f'[database]\nurl = "{url}"\n')))
    for path in ("/downtimes", "/api/downtimes"):
        r = app.test_client().get(path)
        text = r.get_data(as_text=True)
        assert r.status_code == 503, (path, text[:300])
        assert f"127.0.0.1:{port}" in text and "rexmon db upgrade" in text and "secret" not in text
