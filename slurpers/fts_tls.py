"""TLS for the FTS slurper: grid-style CA directories, client contexts, and errors a user can act on.

A CA directory is what OpenSSL reads as ``capath`` (``/etc/grid-security/certificates``): certificates
found by their subject hash, ``HASH.N`` files made by ``openssl rehash`` or ``c_rehash``. Clients that
take only a CA file (stomp.py) get a bundle of exactly those certificates.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeGuard

#: file names OpenSSL's CA directory lookup reads (``openssl rehash``/``c_rehash``); ``HASH.rN`` are CRLs
HASHED_CERT = re.compile(r"^[0-9a-f]{8}\.\d+$")
PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
#: TLS alerts by which a server refuses the client's certificate (OpenSSL reason codes)
CLIENT_CERT_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "TLSV1_ALERT_UNKNOWN_CA",
    "TLSV1_ALERT_ACCESS_DENIED",
}
#: X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
HOST_MISMATCH = {62, 64}
#: how long a probe waits, after the handshake, for a TLS 1.3 server to refuse the client certificate
REJECT_WAIT = 2.0


class TLSSetupError(Exception):
    """The configured cert, key or ca cannot be used (missing, unreadable, an empty CA directory)."""


def check_files(cert: str, key: str, ca: str) -> None:
    """Name the setting whose file is missing or unreadable (OpenSSL's own errors do not say which)."""
    for setting, path in (("cert", cert), ("key", key), ("ca", ca)):
        if path and not os.access(path, os.R_OK):
            why = "does not exist" if not os.path.exists(path) else "is not readable"
            raise TLSSetupError(f"{setting} {path} {why}")


def check_ca(ca: str) -> None:
    """A CA directory must offer OpenSSL at least one hashed certificate."""
    if ca and os.path.isdir(ca):
        hashed_ca_certs(ca)


def hashed_ca_certs(directory: str) -> list[str]:
    """The PEM certificates a CA directory offers OpenSSL: its ``HASH.N`` files, each file once."""
    paths = {p.resolve() for p in Path(directory).iterdir() if HASHED_CERT.match(p.name) and p.is_file()}
    certs: list[str] = []
    for path in sorted(paths):
        certs += PEM_CERT.findall(path.read_text(encoding="ascii", errors="replace"))
    if not certs:
        raise TLSSetupError(
            f"ca {directory} holds no hashed CA certificates (HASH.0 files): run openssl rehash {directory}"
        )
    return certs


@contextmanager
def ca_file(ca: str) -> Iterator[str | None]:
    """``ca`` as one file, for clients that take only a CA file: a directory becomes a temporary bundle."""
    if not ca or not os.path.isdir(ca):
        yield ca or None
        return
    certs = hashed_ca_certs(ca)
    with tempfile.NamedTemporaryFile("w", prefix="rexmon-ca-", suffix=".pem", encoding="ascii") as bundle:
        bundle.write("\n".join(certs) + "\n")
        bundle.flush()
        yield bundle.name


def client_context(cert: str, key: str, ca: str, verify: bool = True) -> ssl.SSLContext:
    """A client context as stomp.py builds it: server certificate and host name verified (if ``verify``)."""
    check_files(cert, key, ca)
    check_ca(ca)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if ca and os.path.isdir(ca):
            ctx.load_verify_locations(capath=ca)
        elif ca:
            ctx.load_verify_locations(cafile=ca)
        else:
            ctx.load_default_certs()
    except ssl.SSLError as exc:
        raise TLSSetupError(f"ca {ca}: {_text(exc)}") from None
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        if cert:
            ctx.load_cert_chain(cert, key or None)
    except ssl.SSLError as exc:  # not PEM, or a key that is not the certificate's
        raise TLSSetupError(
            f"cert {cert}" + (f" with key {key}" if key else "") + f": {_text(exc)}"
        ) from None
    return ctx


def ssl_error_in(exc: BaseException) -> ssl.SSLError | None:
    """The ssl error behind ``exc``, however deeply an HTTP or STOMP client wrapped it."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLError):
            return e
        todo += [*e.args, getattr(e, "reason", None), e.__cause__, e.__context__]
    return None


def _text(err: ssl.SSLError) -> str:
    """OpenSSL's message without the ``[SSL: CODE]`` prefix and the ``(_ssl.c:NNN)`` suffix."""
    raw = str(err.args[1] if len(err.args) > 1 else err)
    return re.sub(r"^\[[^]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", raw)


def conclusive(err: ssl.SSLError | None) -> TypeGuard[ssl.SSLError]:
    """Whether the error itself says which certificate was refused (an EOF or a reset does not)."""
    return isinstance(err, ssl.SSLCertVerificationError) or (
        err is not None and err.reason in CLIENT_CERT_ALERTS
    )


def describe(err: ssl.SSLError, *, peer: str, host: str, cert: str, ca: str) -> str:
    """What a TLS failure means for the user: which side refused which certificate, and why."""
    text = _text(err)
    if isinstance(err, ssl.SSLCertVerificationError):
        if err.verify_code in HOST_MISMATCH:
            return f"TLS: the {peer}'s certificate is not valid for {host} ({text})"
        trust = f"ca {ca}" if ca else "the system's default CAs (set ca)"
        return f"TLS: the {peer}'s certificate is not trusted by {trust} ({text})"
    if err.reason in CLIENT_CERT_ALERTS:
        if not cert:
            return f"TLS: the {peer} requires a client certificate ({text}): set cert and key"
        return f"TLS: the {peer} rejected the client certificate {cert} ({text})"
    return f"TLS: {text}"


def probe(
    host: str,
    port: int,
    *,
    cert: str,
    key: str,
    ca: str,
    peer: str,
    verify: bool = True,
    timeout: float = 10.0,
) -> str | None:
    """Why a TLS connection to ``host:port`` fails, or None if it does not fail here.

    Nothing is sent after the handshake, so a TLS 1.3 server's refusal of the client certificate
    arrives as its alert, not lost to a connection reset as when a client sends its request at once.
    """
    try:
        context = client_context(cert, key, ca, verify)
        sock = socket.create_connection((host, port), timeout)
    except TLSSetupError as exc:
        return str(exc)
    except OSError as exc:
        return exc.strerror or str(exc)
    try:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            tls.settimeout(REJECT_WAIT)
            if tls.recv(1) == b"":
                return f"TLS: the {peer} closed the connection after the handshake"
    except TimeoutError:
        return None  # the server waits for our request: TLS is fine
    except ssl.SSLError as exc:
        return describe(exc, peer=peer, host=host, cert=cert, ca=ca)
    except OSError as exc:
        return f"TLS: {exc.strerror or exc}"
    finally:
        sock.close()
    return None
