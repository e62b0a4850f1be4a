"""Who is there: availability, the console's heartbeat, and what happens when an agent goes.

An agent is present while their console is open: it beats every third of
``GIFTBOT_AGENT_PRESENCE_SECONDS`` (30 s by default) and a sweep every few seconds marks an
agent whose beats stopped as away. An agent who goes (signs out, is disabled, or goes away)
hands their conversations back to the queue, notes and all, and each shopper is told; when the
last available agent goes, each waiting shopper's request becomes a case answered by email,
and the shopper is told so through Rasa's API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from aiohttp import web

from bot.desk.views import AgentView, HandoffView
from bot.wallet import codes
from bot.wallet.repository import WalletError
from bot.web.console.state import PRESENCE_SECONDS, RASA, REPOSITORY, agent_of, call, store
from bot.web.http import json_body, json_error
from bot.web.rasa_api import RasaError, agent_payload

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

SWEEP_SECONDS = 3
BACK_IN_QUEUE = (
    "{name} had to leave. You're back in the queue: the next person from our support team "
    "will pick up where they left off."
)
CASE_BY_EMAIL_ACCOUNT = (
    "No one from our support team is free any more, so rather than keep you waiting I've "
    "opened case {reference} with what we've covered. We'll email you at {email}, the address "
    "on your account."
)
CASE_BY_EMAIL_ASK = (
    "No one from our support team is free any more, so rather than keep you waiting I've "
    "opened case {reference} with what we've covered. What email address should we reply to?"
)


def lease(request: web.Request) -> timedelta:
    return timedelta(seconds=request.app[PRESENCE_SECONDS])


def agent_json(agent: AgentView) -> dict[str, Any]:
    return {
        "username": agent.username,
        "display_name": agent.display_name,
        "available": agent.available,
    }


@routes.get("/api/me")
async def me(request: web.Request) -> web.StreamResponse:
    return web.json_response({"agent": agent_json(agent_of(request))})


@routes.post("/api/availability")
async def availability(request: web.Request) -> web.StreamResponse:
    agent = agent_of(request)
    available = (await json_body(request)).get("available")
    if not isinstance(available, bool):
        raise json_error(web.HTTPBadRequest, "'available' must be true or false.")
    updated = await call(
        request, store(request).set_agent_available, agent.username, available, lease(request)
    )
    if not available:
        await move_waiting_to_cases(request.app)
    return web.json_response({"agent": agent_json(updated)})


@routes.post("/api/heartbeat")
async def heartbeat(request: web.Request) -> web.StreamResponse:
    """The console is open: the agent stays present for the lease from now."""
    agent = agent_of(request)
    updated = await call(request, store(request).agent_heartbeat, agent.username, lease(request))
    return web.json_response({"agent": agent_json(updated)})


async def agent_leaves(app: web.Application, username: str, why: str) -> None:
    """The agent is gone (``why``): unavailable, their chats back in the queue, and the
    waiting shoppers moved to cases when nobody else is available."""
    repository = app[REPOSITORY]
    with contextlib.suppress(WalletError):  # removed meanwhile: nothing to mark
        await asyncio.to_thread(repository.sign_out_agent, username)
    await return_to_queue(app, username, why)
    await move_waiting_to_cases(app)


async def return_to_queue(app: web.Application, username: str, why: str) -> None:
    repository = app[REPOSITORY]
    agent = await asyncio.to_thread(repository.find_agent, username)
    name = agent.display_name if agent else username
    for handoff in await asyncio.to_thread(repository.return_handoffs_of, username, why):
        left = agent_payload({"event": "agent_left", "agent": {"name": name}})
        # The assistant answers again while the shopper waits, as before the take.
        await _tell(
            app,
            handoff,
            [{"event": "resume"}, left, _bot(BACK_IN_QUEUE.format(name=name))],
        )


async def move_waiting_to_cases(app: web.Application) -> None:
    """With no agent available, every waiting shopper gets a case instead of a wait."""
    repository = app[REPOSITORY]
    for handoff, reference in await asyncio.to_thread(repository.move_waiting_to_cases):
        customer = (
            await asyncio.to_thread(repository.get_customer, handoff.customer_id)
            if handoff.customer_id is not None
            else None
        )
        events: list[dict[str, Any]] = [_slot("case_reference", reference)]
        if customer is not None:
            await asyncio.to_thread(repository.add_case_contact, reference, customer.email)
            text = CASE_BY_EMAIL_ACCOUNT.format(
                reference=reference, email=codes.mask_email(customer.email)
            )
            events += [_slot("contact_requested", False), _bot(text)]
        else:
            # The shopper's next message (an email address) goes to action_save_contact.
            events += [
                _slot("contact_requested", True),
                _bot(CASE_BY_EMAIL_ASK.format(reference=reference)),
            ]
        await _tell(app, handoff, events)


async def _tell(app: web.Application, handoff: HandoffView, events: list[dict[str, Any]]) -> None:
    """Best effort: the store already holds the truth; a shopper Rasa cannot reach now sees
    the state of their case when they come back."""
    try:
        await app[RASA].append(handoff.conversation_id, events)
    except RasaError as exc:
        logger.warning("could not update conversation of handoff %s: %s", handoff.id, exc)


def _bot(text: str) -> dict[str, Any]:
    return {"event": "bot", "text": text}


def _slot(name: str, value: Any) -> dict[str, Any]:
    return {"event": "slot", "name": name, "value": value}


async def sweep(app: web.Application) -> None:
    """Agents whose console went quiet are away; disabled agents hold no conversation."""
    repository = app[REPOSITORY]
    for username in await asyncio.to_thread(repository.lapsed_agents):
        await return_to_queue(app, username, "went away")
    for username in await asyncio.to_thread(repository.disabled_agents_holding_chats):
        await return_to_queue(app, username, "disabled")
    if not await asyncio.to_thread(repository.available_agents):
        await move_waiting_to_cases(app)


async def sweeping(app: web.Application) -> AsyncIterator[None]:
    """Run ``sweep`` every few seconds while the server runs."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await sweep(app)
            except Exception:  # the next sweep tries again; never let the loop die
                logger.exception("presence sweep failed")

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
