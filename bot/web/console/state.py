"""What the console's handlers share: the app's keys, the signed-in agent of a request, and
calls to the store and to Rasa that turn their refusals into the right HTTP answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.desk.views import AgentView, HandoffView
from bot.wallet.repository import ConflictError, WalletError, WalletRepository
from bot.web.http import json_error
from bot.web.rasa_api import RasaApi, RasaError
from bot.web.sessions import AgentSession, SessionCodec

REPOSITORY = web.AppKey("console_repository", WalletRepository)
SESSIONS = web.AppKey("console_sessions", SessionCodec)
RASA = web.AppKey("console_rasa", RasaApi)
CONSOLE_DIR = web.AppKey("console_dir", Path)
PRESENCE_SECONDS = web.AppKey("console_presence_seconds", int)
SIGN_IN_SLOTS = web.AppKey("console_sign_in_slots", asyncio.Semaphore)
# Set by the guard middleware on every request.
SESSION = "console_session"
AGENT = "console_agent"

MAX_MESSAGE_CHARS = 2_000


def store(request: web.Request) -> WalletRepository:
    return request.app[REPOSITORY]


def session_of(request: web.Request) -> AgentSession | None:
    session: AgentSession | None = request.get(SESSION)
    return session


def agent_of(request: web.Request) -> AgentView:
    """The signed-in agent (the guard let only signed-in agents reach this handler)."""
    agent: AgentView = request[AGENT]
    return agent


async def call(request: web.Request, method: Callable[..., Any], *args: Any) -> Any:
    """A repository call off the event loop; its refusals as 409 (conflict) or 400."""
    try:
        return await asyncio.to_thread(method, *args)
    except ConflictError as exc:
        raise json_error(web.HTTPConflict, _sentence(str(exc))) from None
    except WalletError as exc:
        raise json_error(web.HTTPBadRequest, _sentence(str(exc))) from None


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + "."


async def tell_rasa(
    request: web.Request, handoff: HandoffView, events: list[dict[str, Any]]
) -> None:
    try:
        await request.app[RASA].append(handoff.conversation_id, events)
    except RasaError as exc:
        raise json_error(
            web.HTTPBadGateway, f"The shopper's conversation could not be updated: {exc}."
        ) from None
