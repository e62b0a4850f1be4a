"""The live agent console, a nested application at ``/agent``: sign-in, live chats and cases.

Pages and their JSON API share one encrypted session cookie (``bot.web.sessions``); one
middleware (``guard``) checks the session and the CSRF token and sets the headers of every
answer. Everything the console changes goes through the store with the agent as the actor
(so it is in the audit log), and everything it says to a shopper in a chat goes through Rasa's
HTTP API (``bot.web.rasa_api``) as tracker events; email goes through the outbox. The browser
polls the API every 2 seconds and beats (``presence``) while the console is open.

- ``pages``: the page, its files, signing in and out
- ``chats``: the queue and live conversations
- ``cases``: cases answered by email
- ``presence``: availability, heartbeat, and what happens when an agent goes
- ``views``: how all of it looks, masked
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.settings import get_settings
from bot.wallet.repository import WalletRepository
from bot.web.console import cases, chats, pages, presence
from bot.web.console.chats import HAND_BACK_MESSAGE
from bot.web.console.guard import guard
from bot.web.console.state import (
    CONSOLE_DIR,
    PRESENCE_SECONDS,
    RASA,
    REPOSITORY,
    SESSIONS,
    SIGN_IN_SLOTS,
)
from bot.web.rasa_api import RasaApi
from bot.web.sessions import SessionCodec

# Each sign-in attempt is one argon2id verification (64 MiB, deliberately slow): at most this
# many run at once, so a flood of attempts queues instead of exhausting the server's memory.
CONCURRENT_SIGN_INS = 2

__all__ = ["HAND_BACK_MESSAGE", "create_console_app"]


def create_console_app(repository: WalletRepository, console_dir: Path) -> web.Application:
    """The console; its files in ``console_dir`` are served by its routes alone."""
    settings = get_settings()
    app = web.Application(middlewares=[guard])
    app[REPOSITORY] = repository
    app[SESSIONS] = SessionCodec(settings.session_key)
    app[CONSOLE_DIR] = console_dir
    app[PRESENCE_SECONDS] = settings.agent_presence_seconds
    app[SIGN_IN_SLOTS] = asyncio.Semaphore(CONCURRENT_SIGN_INS)
    app.cleanup_ctx.append(_rasa_client)
    app.cleanup_ctx.append(presence.sweeping)
    for part in (pages, chats, cases, presence):
        app.router.add_routes(part.routes)
    return app


async def _rasa_client(app: web.Application) -> AsyncIterator[None]:
    settings = get_settings()
    # Server to server: GIFTBOT_RASA_API_URL, an internal address (make run: localhost), so
    # that Rasa's HTTP API need not be published where browsers reach Rasa.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        app[RASA] = RasaApi(settings.rasa_api_url, settings.rasa_api_token, http)
        yield
