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

from aiohttp import web

from tests.servers import free_port

WAIT_LIMIT_SECONDS = 90  # a guard against hanging, not a timing assertion


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: Any
    """JSON body, or the form fields of a form-encoded one."""


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
        stand_in.record(Call(request.path, dict(request.headers), body))
        return answer(request, body)

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
