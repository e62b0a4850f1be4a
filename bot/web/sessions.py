"""The agent console's sessions: Fernet-encrypted cookies, and CSRF tokens that go with them.

The cookie holds the whole session (agent, CSRF token, when it was issued), encrypted and
authenticated with ``settings.session_key``, so the server keeps no session table. Fernet
stamps each token with its creation time; a session older than ``SESSION_LIFETIME`` is refused
however the browser kept the cookie. Signing out forgets the session in this process as well
(``Revoked``), so a copy of the cookie made earlier stops working too.

Cookies are HTTP-only and SameSite=Strict, and Secure whenever the console is reached over
https (directly or through a proxy that sets ``X-Forwarded-Proto``). On plain http (localhost
development) browsers would drop a Secure cookie, so it is left off there.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import dataclass

from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken

COOKIE_NAME = "giftbot_agent"
CSRF_HEADER = "X-CSRF-Token"
SESSION_LIFETIME = 8 * 60 * 60  # one working day, in seconds
SIGN_IN_FORM_LIFETIME = 60 * 60  # the anonymous session that carries the sign-in form's token


@dataclass(frozen=True)
class AgentSession:
    session_id: str
    csrf_token: str
    username: str | None
    """None: a visitor on the sign-in form, who has a CSRF token but no access."""
    issued_at: int

    @property
    def signed_in(self) -> bool:
        return self.username is not None

    @classmethod
    def new(cls, username: str | None) -> AgentSession:
        """A fresh session: new id and CSRF token on every sign-in (no session fixation)."""
        return cls(
            session_id=secrets.token_urlsafe(16),
            csrf_token=secrets.token_urlsafe(32),
            username=username,
            issued_at=int(time.time()),
        )


class Revoked:
    """Sessions signed out in this process, kept until they would have expired anyway."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def add(self, session: AgentSession) -> None:
        now = time.time()
        self._until = {sid: until for sid, until in self._until.items() if until > now}
        self._until[session.session_id] = session.issued_at + SESSION_LIFETIME

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._until


class SessionCodec:
    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())
        self.revoked = Revoked()

    def load(self, request: web.Request) -> AgentSession | None:
        """The request's session; None when there is none, or it is forged, old or revoked."""
        raw = request.cookies.get(COOKIE_NAME)
        if not raw or len(raw) > 4096:
            return None
        try:
            payload = json.loads(self._fernet.decrypt(raw.encode(), ttl=SESSION_LIFETIME))
            session = AgentSession(
                session_id=str(payload["sid"]),
                csrf_token=str(payload["csrf"]),
                username=None if payload["user"] is None else str(payload["user"]),
                issued_at=int(payload["iat"]),
            )
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None
        if session.session_id in self.revoked:
            return None
        if not session.signed_in and time.time() - session.issued_at > SIGN_IN_FORM_LIFETIME:
            return None
        return session

    def store(
        self, request: web.Request, response: web.StreamResponse, session: AgentSession
    ) -> None:
        payload = {
            "sid": session.session_id,
            "csrf": session.csrf_token,
            "user": session.username,
            "iat": session.issued_at,
        }
        lifetime = SESSION_LIFETIME if session.signed_in else SIGN_IN_FORM_LIFETIME
        response.set_cookie(
            COOKIE_NAME,
            self._fernet.encrypt(json.dumps(payload).encode()).decode(),
            max_age=lifetime,
            path="/agent",
            secure=is_https(request),
            httponly=True,
            samesite="Strict",
        )

    def clear(self, request: web.Request, response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE_NAME, path="/agent")


def is_https(request: web.Request) -> bool:
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def csrf_ok(request: web.Request, session: AgentSession | None) -> bool:
    """The request carries the session's CSRF token in its header (compared in constant time)."""
    sent = request.headers.get(CSRF_HEADER, "")
    return session is not None and bool(sent) and hmac.compare_digest(sent, session.csrf_token)
