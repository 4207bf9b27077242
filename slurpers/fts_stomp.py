"""A long-lived STOMP consumer for FTS messages: reconnects with backoff, acks only what was committed.

Deliveries are kept (keyed by ``message-id``) until the slurper has archived them and committed its
checkpoint; only then does :meth:`BusConsumer.ack` acknowledge them (client-individual). A message
delivered on an older connection is never acked on a newer one: the broker redelivers it, and the
slurper's checkpoint of recently committed message ids keeps it from being counted twice.

TLS: stomp.py loads ``ca_certs`` as one file and, when a connection fails, logs the reason and raises
an empty exception. So a CA directory (/etc/grid-security/certificates) is handed to it as a bundle
(:func:`slurpers.fts_tls.ca_file`, built afresh on each connect), and a failed connect is diagnosed on
a connection of our own with the same settings (:func:`diagnose`).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import stomp
import stomp.exception

from slurpers import fts_parse, fts_tls
from slurpers.api import PayloadError

log = logging.getLogger(__name__)
BACKOFF_START = 0.5
#: a CONNECTED frame later than this (brokers answer in milliseconds) gets a TLS connection diagnosed
CONNECTED_LATE = 1.0


class _Refused(Exception):
    """The broker did not accept the connection; the message says why."""


@dataclass(frozen=True)
class Delivery:
    """One received message: its ids for the ack, the parsed body or the reason it could not be parsed."""

    message_id: str
    subscription: str
    generation: int
    doc: dict[str, Any] | None
    error: str | None = None


@dataclass(frozen=True)
class BrokerAddress:
    """Where and how to connect; ``password`` already resolved by the caller."""

    host: str
    port: int
    user: str
    password: str
    destinations: tuple[str, ...]
    durable: str = ""
    ssl: bool = False
    cert: str = ""
    key: str = ""
    ca: str = ""
    prefetch: int = 10000
    backoff_max: float = 60.0
    heartbeat_ms: int = 10000


class _Listener(stomp.ConnectionListener):  # type: ignore[misc]
    """Forwards one connection's events, so a late event of a dropped connection is recognised as such."""

    def __init__(self, owner: BusConsumer) -> None:
        self.owner = owner

    def on_connected(self, frame: Any) -> None:
        self.owner.on_connected(self, frame)

    def on_disconnected(self) -> None:
        self.owner.on_disconnected(self)

    def on_error(self, frame: Any) -> None:
        self.owner.on_error(self, frame)

    def on_message(self, frame: Any) -> None:
        self.owner.on_message(self, frame)


class BusConsumer:
    """Consumes the configured destinations in a supervisor thread that reconnects with backoff."""

    def __init__(self, address: BrokerAddress, name: str, connect_timeout: float = 10.0) -> None:
        self.address = address
        self.name = name
        self.connect_timeout = connect_timeout
        self.last_error = "not connected yet"
        self._lock = threading.Lock()
        self._pending: dict[str, Delivery] = {}
        self._arrivals = 0
        self._generation = 0
        self._conn: stomp.Connection11 | None = None
        self._listener: _Listener | None = None
        self._connected = threading.Event()
        self._attempted = threading.Event()
        self._down = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the supervisor; wait (up to connect_timeout) for the first attempt to connect."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._attempted.clear()
        self._thread = threading.Thread(target=self._supervise, name=f"stomp-{self.name}", daemon=True)
        self._thread.start()
        self._attempted.wait(self.connect_timeout)

    def close(self) -> None:
        """Stop reconnecting and disconnect; unacked deliveries are redelivered to the next consumer."""
        self._stop.set()
        self._down.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _supervise(self) -> None:
        backoff = BACKOFF_START
        while not self._stop.is_set():
            conn = self._connect()
            self._attempted.set()  # last_error (or the connection) is final for this attempt
            if conn is not None:
                backoff = BACKOFF_START
                self._down.wait()
            self._connected.clear()
            self._drop(conn)
            if not self._stop.is_set():
                log.warning("STOMP %s: %s; reconnecting in %.1f s", self._where(), self.last_error, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.address.backoff_max)

    def _connect(self) -> stomp.Connection11 | None:
        a = self.address
        hb = (a.heartbeat_ms, a.heartbeat_ms)
        conn = stomp.Connection11([(a.host, a.port)], reconnect_attempts_max=1, heartbeats=hb, timeout=10.0)
        listener = _Listener(self)
        with self._lock:
            self._listener = listener
        conn.set_listener("rexmon", listener)
        self._down.clear()
        headers = {"client-id": a.durable} if a.durable else {}
        try:
            with fts_tls.ca_file(a.ca if a.ssl else "") as ca_file:
                if a.ssl:
                    fts_tls.check_files(a.cert, a.key, a.ca)
                    conn.set_ssl(
                        [(a.host, a.port)], key_file=a.key or None, cert_file=a.cert or None, ca_certs=ca_file
                    )
                conn.connect(a.user, a.password, wait=False, headers=headers)  # the TLS handshake is here
            refused = self._wait_connected()
            if refused is not None:
                raise _Refused(refused)
            with self._lock:
                self._generation += 1
                self._conn = conn
            self._subscribe(conn)
        except (fts_tls.TLSSetupError, _Refused) as exc:
            self.last_error = f"cannot connect to {self._where()}: {exc}"
            self._drop(conn)
            return None
        except (stomp.exception.StompException, OSError) as exc:  # stomp.py's are empty: find out why
            self._drop(conn)
            reason = diagnose(a, self.connect_timeout) or str(exc) or "connection failed"
            self.last_error = f"cannot connect to {self._where()}: {reason}"
            return None
        log.info("STOMP %s: connected, consuming %s", self._where(), ", ".join(a.destinations))
        return conn

    def _wait_connected(self) -> str | None:
        """None once CONNECTED arrives, else why not.

        A broker that refuses the client certificate after a TLS 1.3 handshake may leave stomp.py
        waiting, so a late CONNECTED over TLS is diagnosed (on a connection of our own) without waiting
        for connect_timeout.
        """
        a = self.address
        started = time.monotonic()
        probed = not a.ssl
        while not self._connected.wait(0.05):
            waited = time.monotonic() - started
            if self._down.is_set() or waited > self.connect_timeout:
                break
            if not probed and waited > CONNECTED_LATE:
                probed = True
                reason = diagnose(a, self.connect_timeout)
                if reason is not None:
                    return reason
        if self._connected.is_set() and not self._down.is_set():
            return None
        return diagnose(a, self.connect_timeout) or "no CONNECTED frame from the broker"

    def _subscribe(self, conn: stomp.Connection11) -> None:
        a = self.address
        for i, dest in enumerate(a.destinations):
            headers = {"activemq.prefetchSize": str(a.prefetch)}
            if a.durable and dest.startswith("/topic/"):
                headers["activemq.subscriptionName"] = f"{a.durable}-{i}"
            conn.subscribe(dest, id=str(i), ack="client-individual", headers=headers)

    def _drop(self, conn: stomp.Connection11 | None) -> None:
        with self._lock:
            if self._conn is conn:
                self._conn = None
        if conn is None:
            return
        try:
            if conn.is_connected():
                conn.disconnect()
        except (stomp.exception.StompException, OSError):
            pass
        conn.transport.stop()

    def _where(self) -> str:
        return f"{self.address.host}:{self.address.port}"

    # -- listener callbacks (stomp.py's receiver thread) --------------------------------------------
    def on_connected(self, listener: _Listener, frame: Any) -> None:
        if listener is self._listener:
            self._connected.set()

    def on_disconnected(self, listener: _Listener) -> None:
        if listener is not self._listener:
            return
        if not self._stop.is_set():
            self.last_error = f"connection to {self._where()} lost"
        self._connected.clear()
        self._down.set()

    def on_error(self, listener: _Listener, frame: Any) -> None:
        self.last_error = f"broker error: {frame.headers.get('message', '')} {str(frame.body)[:200]}".strip()
        log.error("STOMP %s: %s", self._where(), self.last_error)

    def on_message(self, listener: _Listener, frame: Any) -> None:
        mid = frame.headers.get("message-id", "")
        doc: dict[str, Any] | None = None
        error = None
        try:
            doc = fts_parse.decode_body(frame.body)
            fts_parse.kind_of(doc)
        except PayloadError as exc:
            error = f"{exc} (from {frame.headers.get('destination', '?')})"
            doc = None
        with self._lock:
            if listener is not self._listener:
                return
            d = Delivery(mid, frame.headers.get("subscription", ""), self._generation, doc, error)
            self._pending[mid] = d
            self._arrivals += 1

    # -- the slurper's side -------------------------------------------------------------------------
    def settle(self, quiet: float, limit: float) -> None:
        """Wait until no message arrived for ``quiet`` s (at most ``limit``): a run sees a burst whole."""
        deadline = time.monotonic() + limit
        while self.connected and time.monotonic() < deadline:
            with self._lock:
                seen = self._arrivals
            if self._stop.wait(min(quiet, max(0.0, deadline - time.monotonic()))):
                return
            with self._lock:
                if self._arrivals == seen:
                    return

    def pending(self) -> list[Delivery]:
        """Everything received and not yet committed, in arrival order."""
        with self._lock:
            return list(self._pending.values())

    def ack(self, deliveries: Sequence[Delivery]) -> int:
        """Forget committed deliveries; ack those received on the current connection. Returns acks sent."""
        sent = 0
        with self._lock:
            conn, generation = self._conn, self._generation
            current = [self._pending.pop(d.message_id) for d in deliveries if d.message_id in self._pending]
        for d in current:
            if conn is None or d.generation != generation:
                continue  # the broker redelivers it; the checkpoint's ids keep it from counting twice
            try:
                conn.ack(d.message_id, d.subscription)
                sent += 1
            except (stomp.exception.StompException, OSError) as exc:
                log.warning(
                    "STOMP %s: ack of %s failed (%s); it will be redelivered",
                    self._where(),
                    d.message_id,
                    exc,
                )
        return sent


def diagnose(a: BrokerAddress, timeout: float) -> str | None:
    """Why connecting to the broker fails, found on a connection of our own (stomp.py hides the cause)."""
    if a.ssl:
        return fts_tls.probe(a.host, a.port, cert=a.cert, key=a.key, ca=a.ca, peer="broker", timeout=timeout)
    try:
        socket.create_connection((a.host, a.port), timeout).close()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
