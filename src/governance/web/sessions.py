"""Console sign-in: an API key exchanged for a signed, expiring session cookie.

The cookie carries a random session id, its expiry and an HMAC of both. The database keeps
only the id's SHA-256 with the key it belongs to, so every page checks that the sign-in has
not ended (sign-out) and that its key is not revoked, on whichever worker serves it.

CSRF tokens are derived from the session id (an HMAC under the same secret): one token per
session, never stored, different for every sign-in. The sign-in form, which has no session yet,
uses a signed double-submit cookie instead.

The signing secret is `GOVERNANCE_SESSION_SECRET`; when unset, one is generated on first use
and kept in the `web_secrets` table, so restarts and every worker sign alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from governance.audit import service as audit
from governance.auth import service as auth_service
from governance.auth.principal import Principal
from governance.db import Database, utcnow
from governance.web.models import WebSession
from governance.web.repository import WebSecretRepository, WebSessionRepository

COOKIE = "gov_session"
SIGN_IN_COOKIE = "gov_sign_in"
SECRET_NAME = "session_signing_key"
# Expired sign-ins are deleted this long after they expire, the next time someone signs in.
PURGE_AFTER = timedelta(days=7)


def same_token(given: str, expected: str) -> bool:
    """A constant-time comparison of a token the browser sent (a cookie, a form field, a
    header) with ours; as bytes, since `hmac.compare_digest` raises on a str with any
    non-ASCII character, which a forged cookie or form may well carry."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Signer:
    """HMACs under one secret, each purpose with its own prefix so no value is reusable as
    another (a CSRF token is never a valid cookie signature)."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"governance.web\x00" + secret.encode()).digest()

    def mac(self, purpose: str, value: str) -> str:
        digest = hmac.new(self._key, f"{purpose}\x00{value}".encode(), hashlib.sha256).digest()
        return _b64(digest)

    def cookie(self, session_id: str, expires: int) -> str:
        payload = f"{session_id}.{expires}"
        return f"{payload}.{self.mac('session', payload)}"

    def open_cookie(self, value: str) -> str | None:
        """The session id of a well-signed, unexpired cookie; None for anything else."""
        parts = value.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        session_id, expires, signature = parts
        if not same_token(signature, self.mac("session", f"{session_id}.{expires}")):
            return None
        if int(expires) <= time.time():
            return None
        return session_id

    def csrf(self, session_id: str) -> str:
        return self.mac("csrf", session_id)

    def sign_in_token(self, nonce: str) -> str:
        return self.mac("sign-in", nonce)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking at a page: the signed-in key's principal and the session's CSRF token."""

    principal: Principal
    session_id: str
    csrf_token: str
    expires_at: datetime


class Sessions:
    """The app's session signer, built once per process from the setting or the database."""

    def __init__(self, db: Database, configured_secret: str | None, hours: float) -> None:
        self.db = db
        self.hours = hours
        self._configured = configured_secret
        self._signer: Signer | None = None
        self._lock = threading.Lock()

    @property
    def signer(self) -> Signer:
        signer = self._signer
        if signer is None:
            with self._lock:
                if self._signer is None:
                    self._signer = Signer(self._configured or self._stored_secret())
                signer = self._signer
        return signer

    def _stored_secret(self) -> str:
        with self.db.unit_of_work() as session:
            repo = WebSecretRepository(session)
            return repo.get(SECRET_NAME) or repo.create_once(SECRET_NAME, secrets.token_urlsafe(48))

    def start(self, session: Session, api_key: str) -> tuple[str, Viewer] | None:
        """Sign in with an API key: the cookie value and the viewer, or None for a key that is
        unknown or revoked."""
        principal = auth_service.verify(session, api_key)
        if principal is None or principal.key_id is None:
            return None
        now = utcnow()
        repo = WebSessionRepository(session)
        repo.purge(now - PURGE_AFTER)
        session_id = secrets.token_urlsafe(32)
        expires_at = now + timedelta(hours=self.hours)
        repo.add(
            WebSession(
                token_hash=_hash(session_id),
                key_id=principal.key_id,
                expires_at=expires_at,
                created_at=now,
                updated_at=now,
            )
        )
        audit.record(
            session,
            principal,
            "web.signed_in",
            "api_key",
            principal.key_id,
            after={"expires_at": expires_at.isoformat()},
        )
        signer = self.signer
        cookie = signer.cookie(session_id, int(expires_at.timestamp()))
        return cookie, Viewer(principal, session_id, signer.csrf(session_id), expires_at)

    def current(self, session: Session, cookie: str | None) -> Viewer | None:
        """The viewer a session cookie stands for, or None when it is forged, expired, signed
        out, or its key was revoked."""
        if not cookie:
            return None
        signer = self.signer
        session_id = signer.open_cookie(cookie)
        if session_id is None:
            return None
        found = WebSessionRepository(session).with_key(_hash(session_id))
        if found is None:
            return None
        row, key = found
        if row.ended_at is not None or key.revoked_at is not None or row.expires_at <= utcnow():
            return None
        principal = auth_service.principal_of(key)
        return Viewer(principal, session_id, signer.csrf(session_id), row.expires_at)

    def end(self, session: Session, viewer: Viewer) -> None:
        """Sign out: the cookie stops working everywhere at once."""
        repo = WebSessionRepository(session)
        if repo.end(_hash(viewer.session_id), utcnow()):
            audit.record(
                session, viewer.principal, "web.signed_out", "api_key", viewer.principal.key_id
            )

    def new_sign_in_nonce(self) -> tuple[str, str]:
        """A nonce for the sign-in form's cookie and the token its form carries."""
        nonce = secrets.token_urlsafe(24)
        return nonce, self.signer.sign_in_token(nonce)

    def sign_in_token_ok(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return same_token(token, self.signer.sign_in_token(nonce))
