"""Local stand-ins for the platforms' HTTP APIs: each records what the channel sent and answers
as the platform's documentation shows. They run in one background thread's event loop.

A stand-in's port is chosen before the Rasa server starts and the stand-in started only after
it is up, so the Rasa server starts with every channel configured and every platform down.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BasicAuth, web

from tests.servers import free_port

WAIT_LIMIT_SECONDS = 90  # a guard against hanging, not a timing assertion


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: Any
    """JSON body, or the form fields of a form-encoded one."""
    accepted: bool = True
    """The stand-in accepted the call (right credentials, well-formed), as the platform would."""


@dataclass
class StandIn:
    """One platform's API: ``routes`` get the call and answer like the platform."""

    name: str
    port: int = field(default_factory=free_port)
    calls: list[Call] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def record(self, call: Call) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def wait_for(
        self, select: Callable[[Call], bool], count: int, what: str = "calls"
    ) -> list[Call]:
        """The first ``count`` recorded calls that ``select`` picks, once there are that many."""
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        with self._changed:
            while True:
                found = [call for call in self.calls if select(call)]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.name}: {len(found)} of {count} {what} after "
                        f"{WAIT_LIMIT_SECONDS}s: {found}"
                    )
                self._changed.wait(left)

    def matching(self, select: Callable[[Call], bool]) -> list[Call]:
        with self._changed:
            return [call for call in self.calls if select(call)]


class StandInServer:
    """Runs stand-in applications on their ports in one thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runners: list[web.AppRunner] = []

    def start(self, apps: list[tuple[StandIn, web.Application]]) -> None:
        self._thread.start()
        for stand_in, app in apps:
            asyncio.run_coroutine_threadsafe(self._serve(stand_in, app), self._loop).result(30)

    async def _serve(self, stand_in: StandIn, app: web.Application) -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", stand_in.port).start()
        self._runners.append(runner)

    def stop(self) -> None:
        async def cleanup() -> None:
            for runner in self._runners:
                await runner.cleanup()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(cleanup(), self._loop).result(30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
        self._loop.close()


async def read_body(request: web.Request) -> Any:
    if request.content_type == "application/json":
        return await request.json()
    if request.content_type == "application/x-www-form-urlencoded":
        return dict(await request.post())
    return await request.text()


def recording(stand_in: StandIn, answer: Callable[[web.Request, Any], web.Response]) -> Any:
    """A handler that records the call, then answers it with ``answer(request, body)``."""

    async def handler(request: web.Request) -> web.Response:
        body = await read_body(request)
        response = answer(request, body)
        refused = response.status >= 300 or '"ok": false' in (response.text or "")
        stand_in.record(Call(request.path, dict(request.headers), body, accepted=not refused))
        return response

    return handler


# ------------------------------------------------------------------------------ Telegram


def telegram_app(stand_in: StandIn, bot_token: str) -> web.Application:
    """https://core.telegram.org/bots/api: POST /bot<token>/<method>, {"ok": true, ...}."""

    def answer(request: web.Request, body: Any) -> web.Response:
        if request.match_info["token"] != bot_token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        if method == "sendMessage":
            result: Any = {
                "message_id": len(stand_in.calls),
                "date": int(time.time()),
                "chat": {"id": int(body["chat_id"]), "type": "private"},
                "text": body["text"],
            }
        elif method == "setWebhook":
            return web.json_response({"ok": True, "result": True, "description": "Webhook was set"})
        else:
            result = True
        return web.json_response({"ok": True, "result": result})

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", recording(stand_in, answer))
    return app


# --------------------------------------------------------------------------------- Slack


def slack_app(stand_in: StandIn, bot_token: str) -> web.Application:
    """https://api.slack.com/methods/chat.postMessage: HTTP 200 and {"ok": ...} either way."""

    def answer(request: web.Request, body: Any) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {bot_token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        ts = f"{time.time():.6f}"
        return web.json_response(
            {
                "ok": True,
                "channel": body["channel"],
                "ts": ts,
                "message": {"type": "message", "text": body["text"], "ts": ts},
            }
        )

    app = web.Application()
    app.router.add_post("/chat.postMessage", recording(stand_in, answer))
    return app


# ----------------------------------------------------------------------------- Messenger


def messenger_app(stand_in: StandIn, page_token: str) -> web.Application:
    """The Send API: POST /me/messages -> {"recipient_id", "message_id"}."""

    def answer(request: web.Request, body: Any) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {page_token}":
            error = {
                "message": "Invalid OAuth access token.",
                "type": "OAuthException",
                "code": 190,
            }
            return web.json_response({"error": error}, status=400)
        return web.json_response(
            {"recipient_id": body["recipient"]["id"], "message_id": f"m_{len(stand_in.calls)}"}
        )

    app = web.Application()
    app.router.add_post("/me/messages", recording(stand_in, answer))
    return app


# -------------------------------------------------------------------------------- Twilio


def twilio_app(stand_in: StandIn, account_sid: str, auth_token: str) -> web.Application:
    """POST /2010-04-01/Accounts/{sid}/Messages.json, HTTP basic auth: 201 and the Message."""
    expected = BasicAuth(account_sid, auth_token).encode()

    def answer(request: web.Request, body: Any) -> web.Response:
        if request.headers.get("Authorization") != expected:
            error = {"code": 20003, "message": "Authenticate", "status": 401}
            return web.json_response(error, status=401)
        message = {
            "sid": f"SM{len(stand_in.calls):032x}",
            "account_sid": account_sid,
            "status": "queued",
            "to": body["To"],
            "from": body["From"],
            "body": body["Body"],
        }
        return web.json_response(message, status=201)

    app = web.Application()
    app.router.add_post(
        f"/2010-04-01/Accounts/{account_sid}/Messages.json", recording(stand_in, answer)
    )
    return app


# ------------------------------------------------------------------------- Bot Framework


def botframework_app(
    stand_in: StandIn, jwks: dict[str, Any], tenant: str, app_id: str, app_password: str
) -> web.Application:
    """login.botframework.com's OpenID configuration and keys, the tenant's token endpoint, and
    the Bot Connector's POST /v3/conversations/{id}/activities (the activity's serviceUrl)."""
    access_token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.stand-in-connector-token"

    def openid(request: web.Request, body: Any) -> web.Response:
        return web.json_response(
            {
                "issuer": "https://api.botframework.com",
                "authorization_endpoint": "https://invalid.botframework.com",
                "jwks_uri": f"{stand_in.url}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    def keys(request: web.Request, body: Any) -> web.Response:
        return web.json_response(jwks)

    def token(request: web.Request, body: Any) -> web.Response:
        if request.match_info["tenant"] != tenant or (
            body.get("client_id"),
            body.get("client_secret"),
        ) != (app_id, app_password):
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": access_token,
            }
        )

    def activity(request: web.Request, body: Any) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {access_token}":
            return web.json_response({"error": {"code": "Unauthorized"}}, status=401)
        return web.json_response({"id": f"1:{len(stand_in.calls)}"})

    app = web.Application()
    app.router.add_get("/v1/.well-known/openidconfiguration", recording(stand_in, openid))
    app.router.add_get("/v1/.well-known/keys", recording(stand_in, keys))
    app.router.add_post("/{tenant}/oauth2/v2.0/token", recording(stand_in, token))
    app.router.add_post(
        "/v3/conversations/{conversation}/activities", recording(stand_in, activity)
    )
    return app
