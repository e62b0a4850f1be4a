"""The console's one middleware: session, CSRF, and the headers of every answer.

Every route needs a signed-in, enabled agent unless its handler is marked ``@public`` (the
sign-in form and what it needs); without one the API answers 401. Every state-changing
request must carry the session's CSRF token in ``X-CSRF-Token``, else 403 (sign-in too: its
token comes with the form). Nothing the console answers is cached, and its pages run under a
strict Content-Security-Policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.web.console.state import AGENT, SESSION, SESSIONS, store
from bot.web.http import json_error
from bot.web.sessions import csrf_ok

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SAFE_METHODS = ("GET", "HEAD")

H = TypeVar("H", bound=Callable[[web.Request], Awaitable[web.StreamResponse]])


def public(handler: H) -> H:
    """Reachable without signing in (the sign-in form, its assets, signing in)."""
    handler.console_public = True  # type: ignore[attr-defined]
    return handler


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    session = request.app[SESSIONS].load(request)
    request[SESSION] = session
    request[AGENT] = None
    if session is not None and session.username is not None:
        agent = await asyncio.to_thread(store(request).find_agent, session.username)
        if agent is not None and not agent.disabled:
            request[AGENT] = agent
    target = request.match_info.handler
    unmatched = request.match_info.http_exception is not None  # a 404 or 405 stays one
    try:
        if (
            request[AGENT] is None
            and not unmatched
            and not getattr(target, "console_public", False)
        ):
            raise json_error(web.HTTPUnauthorized, "Sign in first.")
        if request.method not in SAFE_METHODS and not csrf_ok(request, session):
            raise json_error(web.HTTPForbidden, "Missing or wrong CSRF token: reload the page.")
        response = await handler(request)
    except web.HTTPException as exc:
        _secure(exc)
        raise
    return _secure(response)


def _secure(response: web.StreamResponse) -> web.StreamResponse:
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    return response
