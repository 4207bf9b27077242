"""FTS over TLS with X.509 client certificates, against real peers.

STOMP: a real ActiveMQ with a ``stomp+ssl`` connector that requires a client certificate (as the WLCG
brokers do). ftsmon: an HTTPS server on loopback that requires one too (``ssl.CERT_REQUIRED``) and
serves the ftsmon pages in tests/data/fts. ``ca`` is a CA file or a hashed directory laid out like
/etc/grid-security/certificates.
"""

from __future__ import annotations

import itertools
import shutil
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import stomp

from rexmon.config import load
from rexmon.demo.httpd import LoopbackHTTP
from rexmon.service import Service
from tests.fixtures.activemq import ActiveMQ
from tests.fixtures.pki import PKI, KeyPair, hashed_dir, issue, make_pki
from tests.fixtures.pki import available as openssl_available
from tests.transfer.conftest import Metrics, run_once, wait_for
from tests.transfer.test_fts_bus import LINK, completions, publish

DATA = Path(__file__).resolve().parent.parent / "data" / "fts"
NOW = 1716400800.0
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_names = itertools.count(1)


@pytest.fixture
def queue() -> str:
    """A destination of its own for each test: the module shares one broker."""
    return f"/queue/rexmon.test.fts_tls.{next(_names)}"


def ca_setting(kind: str, certs: PKI, directory: Path) -> Path:
    """``ca`` as a single file, or as a grid-style directory that also holds an unrelated CA."""
    if kind == "file":
        return certs.ca.cert
    return hashed_dir(directory / "certificates", certs.other_ca.cert, certs.ca.cert)


# -- STOMP over TLS -----------------------------------------------------------------------------------
def stomp_config(
    broker: ActiveMQ, queue: str, cert: str, key: str, ca: Path | str, interval: int = 60
) -> str:
    assert broker.tls is not None
    return f"""
        [[slurper]]
        id = "fts"
        type = "fts"
        interval = {interval}
        timeout = 10
        cert = "{cert}"
        key = "{key}"
        ca = "{ca}"
        [slurper.stomp]
        host = "{broker.host}"
        port = {broker.tls.port}
        ssl = true
        destinations = ["{queue}"]
        backoff_max = "1s"
        """


def client_config(
    broker: ActiveMQ, queue: str, ca: Path | str, client: KeyPair | None = None, interval: int = 60
) -> str:
    """The consumer with a client certificate (the broker's client certificate unless ``client``)."""
    assert broker.tls is not None
    pair = broker.tls.pki.client if client is None else client
    return stomp_config(broker, queue, str(pair.cert), str(pair.key), ca, interval)


def publish_tls(broker: ActiveMQ, queue: str, bodies: list[str]) -> None:
    """Publish over the TLS connector, with the client certificate (as FTS itself does)."""
    assert broker.tls is not None
    where = [(broker.host, broker.tls.port)]
    certs = broker.tls.pki
    conn = stomp.Connection11(where, reconnect_attempts_max=3)
    conn.set_ssl(
        where, cert_file=str(certs.client.cert), key_file=str(certs.client.key), ca_certs=str(certs.ca.cert)
    )
    conn.connect(wait=True)
    try:
        for body in bodies:
            conn.send(queue, body, headers={"persistent": "true"})
    finally:
        conn.disconnect(receipt="bye")
        conn.transport.stop()


@pytest.mark.parametrize("ca_kind", ["file", "directory"])
def test_stomp_over_tls_with_client_certificate(
    activemq_tls: ActiveMQ,
    queue: str,
    ca_kind: str,
    tmp_path: Path,
    write_config: Callable[..., Path],
    metrics: Metrics,
) -> None:
    assert activemq_tls.tls is not None
    ca = ca_setting(ca_kind, activemq_tls.tls.pki, tmp_path)
    config = write_config(client_config(activemq_tls, queue, ca))
    publish_tls(activemq_tls, queue, completions(3, 1))
    publish(activemq_tls, queue, completions(2, start=1716400100.0))  # and some on the plain port

    assert run_once(config)["fts"].error is None
    got = metrics(config)
    assert got[f"fts/bus.link.{LINK}.ok"] == 5
    assert got[f"fts/bus.link.{LINK}.error"] == 1
    assert got[f"fts/bus.link.{LINK}.bytes"] == 6_000_000
    assert (got["fts/bus.messages"], got["fts/bus.connected"], got["rexmon/fts.errors"]) == (6, 1, 0)


def test_stomp_untrusted_broker_is_reported_retried_and_recovers(
    activemq_tls: ActiveMQ,
    queue: str,
    tmp_path: Path,
    write_config: Callable[..., Path],
    metrics: Metrics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert activemq_tls.tls is not None
    certs = activemq_tls.tls.pki
    cadir = hashed_dir(tmp_path / "certificates", certs.other_ca.cert)  # the broker's CA is missing
    config = write_config(client_config(activemq_tls, queue, cadir, interval=1))
    publish(activemq_tls, queue, completions(4))

    error = str(run_once(config)["fts"].error)
    assert error.startswith(f"FTS STOMP consumer: cannot connect to 127.0.0.1:{activemq_tls.tls.port}: ")
    assert f"TLS: the broker's certificate is not trusted by ca {cadir} (certificate verify failed" in error
    assert error.endswith("(retrying with backoff)")
    got = metrics(config)
    assert got["rexmon/fts.errors"] == 1
    assert not [m for m in got if m.startswith("fts/")]

    def retries() -> int:
        return sum(
            "; reconnecting in" in r.getMessage()
            for r in caplog.records
            if "TLS: the broker" in r.getMessage()
        )

    service = Service(load(config))
    service.start()
    try:
        before = retries()
        wait_for("the consumer to retry with backoff", lambda: retries() >= before + 2)
        hashed_dir(cadir, certs.ca.cert)  # the CA distribution is updated (as ca-policy packages do)
        wait_for(
            "the consumer to connect and count", lambda: metrics(config).get(f"fts/bus.link.{LINK}.ok") == 4
        )
        wait_for("a clean run", lambda: metrics(config).get("rexmon/fts.errors") == 0)
    finally:
        service.stop()


def test_stomp_without_client_certificate_is_a_clear_error(
    activemq_tls: ActiveMQ, queue: str, write_config: Callable[..., Path], metrics: Metrics
) -> None:
    assert activemq_tls.tls is not None
    config = write_config(stomp_config(activemq_tls, queue, "", "", activemq_tls.tls.pki.ca.cert))
    error = str(run_once(config)["fts"].error)
    assert f"cannot connect to 127.0.0.1:{activemq_tls.tls.port}: TLS: the broker requires a client" in error
    assert "set cert and key" in error
    assert metrics(config)["rexmon/fts.errors"] == 1


def test_stomp_client_certificate_of_another_ca_is_refused(
    activemq_tls: ActiveMQ, queue: str, tmp_path: Path, write_config: Callable[..., Path], metrics: Metrics
) -> None:
    assert activemq_tls.tls is not None
    certs = activemq_tls.tls.pki
    stranger = issue(certs.other_ca, tmp_path, "stranger", "client")
    config = write_config(client_config(activemq_tls, queue, certs.ca.cert, stranger))
    error = str(run_once(config)["fts"].error)
    assert f"TLS: the broker rejected the client certificate {stranger.cert} (" in error
    assert metrics(config)["rexmon/fts.errors"] == 1


# -- ftsmon over HTTPS --------------------------------------------------------------------------------
@dataclass
class Ftsmon:
    """What a loopback ftsmon served: request paths, client certificate names, refused handshakes."""

    url: str
    paths: list[str] = field(default_factory=list)
    clients: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def ftsmon_handler(record: Ftsmon, tls: ssl.SSLContext | None) -> type[BaseHTTPRequestHandler]:
    """Serves overview.json and stats.json as ftsmon does; with ``tls``, HTTPS on each connection."""

    class Handler(BaseHTTPRequestHandler):
        handshake_failed = False

        def setup(self) -> None:
            if tls is not None:
                try:
                    self.request = tls.wrap_socket(self.request, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    record.refused.append(str(exc))
                    self.handshake_failed = True
                    return
                cert = self.request.getpeercert() or {}
                record.clients += [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
            super().setup()

        def handle(self) -> None:
            if not self.handshake_failed:
                super().handle()

        def finish(self) -> None:
            if not self.handshake_failed:
                super().finish()
            self.request.close()

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            record.paths.append(path)
            page = {"/fts3/ftsmon/overview": "overview.json", "/fts3/ftsmon/stats": "stats.json"}.get(path)
            body = (DATA / page).read_bytes() if page else b"not found"
            self.send_response(200 if page else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    if not openssl_available():
        pytest.skip("openssl is not installed")
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def serve_ftsmon(pki: PKI) -> Iterator[Callable[..., Ftsmon]]:
    """serve_ftsmon(tls=True, server=pki.server) -> a running ftsmon on loopback; stopped afterwards."""
    servers: list[LoopbackHTTP] = []

    def _serve(tls: bool = True, server: KeyPair = pki.server) -> Ftsmon:
        context = None
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(server.cert, server.key)
            context.load_verify_locations(pki.ca.cert)
            context.verify_mode = ssl.CERT_REQUIRED
        httpd = LoopbackHTTP("ftsmon-https" if tls else "ftsmon-http")
        record = Ftsmon("")
        httpd.serve(ftsmon_handler(record, context))
        servers.append(httpd)
        scheme = "https" if tls else "http"
        record.url = f"{httpd.url.replace('http', scheme, 1)}/fts3/ftsmon"
        return record

    yield _serve
    for httpd in servers:
        httpd.stop()


def ftsmon_config(
    sid: str, url: str, cert: Path | str = "", key: Path | str = "", ca: Path | str = ""
) -> str:
    return f"""
        [[slurper]]
        id = "{sid}"
        type = "fts"
        timeout = 5
        ftsmon_url = "{url}"
        cert = "{cert}"
        key = "{key}"
        ca = "{ca}"
        """


@pytest.mark.parametrize("ca_kind", ["file", "directory"])
def test_ftsmon_over_https_matches_plain_http(
    pki: PKI,
    serve_ftsmon: Callable[..., Ftsmon],
    ca_kind: str,
    tmp_path: Path,
    write_config: Callable[..., Path],
    metrics: Metrics,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # common on grid hosts; requests lets it override a Session's verify, so ca must win over it
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_BUNDLE)
    plain, https = serve_ftsmon(tls=False), serve_ftsmon()
    ca = ca_setting(ca_kind, pki, tmp_path)
    config = write_config(
        ftsmon_config("http", plain.url)
        + ftsmon_config("https", https.url, pki.client.cert, pki.client.key, ca)
    )
    results = run_once(config, NOW)
    assert (results["http"].error, results["https"].error) == (None, None)
    got = metrics(config)
    over_http = {m.removeprefix("http/"): v for m, v in got.items() if m.startswith("http/")}
    over_https = {m.removeprefix("https/"): v for m, v in got.items() if m.startswith("https/")}
    assert over_https == over_http
    assert over_https["ftsmon.stats.lasthour.total"] == 463
    assert len([m for m in over_https if m.startswith("ftsmon.link.")]) > 10
    assert https.paths == ["/fts3/ftsmon/overview", "/fts3/ftsmon/stats"]
    assert set(https.clients) == {"rexmon-client"}  # the server saw the client certificate


@pytest.mark.parametrize(
    "case",
    [
        "no client certificate",
        "key of another certificate",
        "wrong ca",
        "ca directory not hashed",
        "certificate of another host",
    ],
)
def test_ftsmon_https_failures_name_the_url_and_the_cause(
    pki: PKI,
    serve_ftsmon: Callable[..., Ftsmon],
    case: str,
    tmp_path: Path,
    write_config: Callable[..., Path],
    metrics: Metrics,
) -> None:
    cert: Path | str = pki.client.cert
    key: Path | str = pki.client.key
    ca: Path = pki.ca.cert
    server = pki.server
    if case == "no client certificate":
        cert = key = ""
        expected = "TLS: the server requires a client certificate ("
    elif case == "key of another certificate":
        key = pki.server.key
        expected = f"cert {cert} with key {key}: key values mismatch"
    elif case == "wrong ca":
        ca = pki.other_ca.cert
        expected = f"TLS: the server's certificate is not trusted by ca {ca} (certificate verify failed"
    elif case == "ca directory not hashed":
        ca = tmp_path / "certificates"
        ca.mkdir()
        shutil.copy(pki.ca.cert, ca)
        expected = f"ca {ca} holds no hashed CA certificates (HASH.0 files): run openssl rehash {ca}"
    else:
        server = issue(pki.ca, tmp_path, "fts3.example.org", "server", san="DNS:fts3.example.org")
        expected = "TLS: the server's certificate is not valid for 127.0.0.1 ("
    ftsmon = serve_ftsmon(server=server)
    config = write_config(ftsmon_config("fts", ftsmon.url, cert, key, ca))
    error = str(run_once(config, NOW)["fts"].error)
    assert error.startswith(f"cannot reach ftsmon at {ftsmon.url}/overview: "), error
    assert expected in error, error
    assert ftsmon.paths == []  # no page was served
    got = metrics(config)
    assert got["rexmon/fts.errors"] == 1
    assert not [m for m in got if m.startswith("fts/")]
