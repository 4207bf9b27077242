"""Who is asking: HTTP Basic against an htpasswd file (bcrypt, ``htpasswd -B``) or a proxy's header.

Reading is public or login-required (``[web] public_read``); writing always needs a user. A reverse
proxy that authenticated the user passes the name in ``[web] trusted_header``, read exactly as named:
a name with a ``-`` (``X-Remote-User``) is that HTTP request header, which the proxy must set or strip on
every request; any other name (``REMOTE_USER``) is the WSGI environment variable of exactly that name,
which only the server sets, never a client's ``Remote-User`` header (WSGI files both under similar keys).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import logging
import threading
from pathlib import Path

import bcrypt
from flask import Request, Response

log = logging.getLogger(__name__)
REALM = "rexmon"
_BCRYPT_PREFIXES = ("$2y$", "$2b$", "$2a$")
_DEFAULT_COST = 12


class Htpasswd:
    """An htpasswd file of bcrypt hashes, re-read when it changes; other hash kinds are refused."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._users: dict[str, str] = {}
        self._mtime: float | None = None
        # bcrypt is slow on purpose; remember successful checks so each request does not pay for it
        self._verified: set[str] = set()
        self._lock = threading.Lock()

    def _load(self) -> dict[str, str]:
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            log.error("htpasswd file %s is unreadable: %s", self.path, exc)
            return {}
        with self._lock:
            if mtime != self._mtime:
                self._users = self._parse(self.path.read_text(encoding="utf-8"))
                self._verified.clear()
                self._mtime = mtime
            return self._users

    def _parse(self, text: str) -> dict[str, str]:
        users = {}
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep or not hashed.startswith(_BCRYPT_PREFIXES):
                log.warning(
                    "%s line %d: not a bcrypt entry (create it with htpasswd -B); ignored", self.path, n
                )
                continue
            users[user] = hashed
        return users

    def check(self, user: str, password: str) -> bool:
        """True when ``password`` is ``user``'s password."""
        users = self._load()
        hashed = users.get(user)
        if hashed is None:  # as slow as a wrong password, so the time does not tell which names exist
            bcrypt.checkpw(password.encode()[:72], _dummy_hash(_cost(users)))
            return False
        token = hashlib.sha256(f"{user}\0{password}\0{hashed}".encode()).hexdigest()
        if token in self._verified:
            return True
        try:
            # bcrypt reads the first 72 bytes, all htpasswd -B hashed; bcrypt 5 refuses a longer password
            ok = bcrypt.checkpw(password.encode()[:72], hashed.encode())
        except ValueError:
            log.warning("%s: the hash of user %r is malformed", self.path, user)
            return False
        if ok:
            self._verified.add(token)
        return ok


def _cost(users: dict[str, str]) -> int:
    """The bcrypt cost of the file's hashes (the highest; 12 for an empty file)."""
    costs = [int(h[4:6]) for h in users.values() if h[4:6].isdigit()]
    return max(costs, default=_DEFAULT_COST)


@functools.lru_cache(maxsize=8)
def _dummy_hash(cost: int) -> bytes:
    """A hash of nothing at ``cost``, checked for user names that are not in the file."""
    return bcrypt.hashpw(b"rexmon: no such user", bcrypt.gensalt(rounds=min(max(cost, 4), 31)))


class Auth:
    """Resolves the user of a request; ``None`` is an anonymous reader."""

    def __init__(self, htpasswd: Path | None, trusted_header: str = "") -> None:
        self.htpasswd = Htpasswd(htpasswd) if htpasswd else None
        self.trusted_header = trusted_header

    @property
    def can_login(self) -> bool:
        return self.htpasswd is not None or bool(self.trusted_header)

    def user(self, request: Request) -> str | None:
        if self.trusted_header:
            name = self._trusted(request)
            if isinstance(name, str) and name.strip():
                return name.strip()[:100]
        return self._basic(request)

    def _trusted(self, request: Request) -> object:
        """The value of ``trusted_header`` exactly as named: an environment variable such as REMOTE_USER
        only from the environment (a client's ``Remote-User`` header is HTTP_REMOTE_USER there), an HTTP
        header such as X-Remote-User only from the headers."""
        if "-" not in self.trusted_header:  # REMOTE_USER, remote_user: never HTTP_REMOTE_USER
            return request.environ.get(self.trusted_header)
        return request.environ.get("HTTP_" + self.trusted_header.upper().replace("-", "_"))

    def _basic(self, request: Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if self.htpasswd is None or not header.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        if not sep or not user:
            return None
        return user if self.htpasswd.check(user, password) else None

    def challenge(self, message: str = "login required") -> Response:
        """A 401 that makes browsers ask for a user name and password (or 403 with no way to log in)."""
        if not self.can_login:
            return Response(
                "writing needs a login, and [web] configures none (htpasswd or trusted_header)\n",
                403,
                mimetype="text/plain",
            )
        resp = Response(message + "\n", 401, mimetype="text/plain")
        if self.htpasswd is not None:
            resp.headers["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
        return resp
