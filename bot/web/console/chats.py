"""Live chats: the queue, a conversation, taking it over, replying, notes, the resolving tools
(replacement code, balance adjustment, closing its case) and handing it back."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.desk.views import AgentView, HandoffView
from bot.wallet import codes
from bot.wallet.models import CardState, HandoffStatus
from bot.wallet.money import AmountError, format_money, parse_amount
from bot.wallet.repository import CardView
from bot.web.console.presence import agent_json
from bot.web.console.state import (
    MAX_MESSAGE_CHARS,
    RASA,
    agent_of,
    call,
    store,
    tell_rasa,
)
from bot.web.console.views import case_json, handoff_json, mask, transcript
from bot.web.http import json_body, json_error, text_field
from bot.web.rasa_api import RasaError, agent_payload

routes = web.RouteTableDef()

CONVERSATION = "/api/conversations/{id:[0-9]{1,12}}"
HAND_BACK_MESSAGE = (
    "You're back with the gift card assistant. Ask me anything about your gift cards, "
    "or say you'd like a person again."
)
FOLLOW_UP_ASK_EMAIL = (
    "You're back with the gift card assistant. Our team will finish this by email under case "
    "{reference}: what email address should we reply to?"
)


@routes.get("/api/queue")
async def queue(request: web.Request) -> web.StreamResponse:
    agent = agent_of(request)
    repository = store(request)
    waiting, mine, cases = await asyncio.gather(
        asyncio.to_thread(repository.waiting_handoffs),
        asyncio.to_thread(repository.handoffs_taken_by, agent.username),
        asyncio.to_thread(repository.open_cases),
    )
    return web.json_response(
        {
            "agent": agent_json(agent),
            "waiting": [handoff_json(h) for h in waiting],
            "mine": [handoff_json(h) for h in mine],
            "open_cases": len(cases),
        }
    )


@routes.get(CONVERSATION)
async def conversation(request: web.Request) -> web.StreamResponse:
    agent = agent_of(request)
    handoff = await _handoff(request)
    repository = store(request)
    # Without Rasa the agent still sees the context and notes, and is told what is missing.
    transcript_error = None
    try:
        tracker = await request.app[RASA].tracker(handoff.conversation_id)
    except RasaError as exc:
        tracker, transcript_error = {}, f"The transcript could not be read: {exc}."
    notes = await asyncio.to_thread(repository.notes, handoff.id)
    case = (
        await asyncio.to_thread(repository.get_case, handoff.case_reference)
        if handoff.case_reference
        else None
    )
    card = await _replaceable_card(request, handoff)
    yours = handoff.status == HandoffStatus.TAKEN and handoff.taken_by == agent.username
    return web.json_response(
        {
            "handoff": handoff_json(handoff),
            "yours": yours,
            "transcript": transcript(tracker.get("events") or []),
            "paused": bool(tracker.get("paused")),
            "transcript_error": transcript_error,
            "notes": [
                {"author": note.author, "text": mask(note.text), "at": note.created_at.isoformat()}
                for note in notes
            ],
            "case": case_json(case, full=True) if case else None,
            "can_replace": card is not None,
            "replace_card": card.masked_serial if card else None,
            "can_adjust": handoff.customer_id is not None,
        }
    )


@routes.post(CONVERSATION + "/take")
async def take(request: web.Request) -> web.StreamResponse:
    """Take the conversation and pause the assistant; if Rasa cannot be told, the take is
    undone (the shopper would otherwise wait for an agent who cannot reach them)."""
    agent = agent_of(request)
    repository = store(request)
    handoff = await call(request, repository.take_handoff, _request_id(request), agent.username)
    joined = agent_payload({"event": "agent_joined", "agent": {"name": agent.display_name}})
    try:
        await request.app[RASA].append(handoff.conversation_id, [{"event": "pause"}, joined])
    except RasaError as exc:
        await asyncio.to_thread(
            repository.untake_handoff, handoff.id, agent.username, "assistant unreachable"
        )
        raise json_error(
            web.HTTPBadGateway,
            f"The assistant could not be reached ({exc}), so the conversation was not taken: "
            "it is back in the queue. Try again in a moment.",
        ) from None
    return web.json_response({"handoff": handoff_json(handoff)})


@routes.post(CONVERSATION + "/reply")
async def reply(request: web.Request) -> web.StreamResponse:
    agent = agent_of(request)
    text = codes.mask_claim_codes(text_field(await json_body(request), "text", MAX_MESSAGE_CHARS))
    handoff = await _own_handoff(request, agent)
    message = agent_payload({"text": text, "agent": {"name": agent.display_name}})
    await tell_rasa(request, handoff, [message])
    return web.json_response({"sent": True})


@routes.post(CONVERSATION + "/notes")
async def add_note(request: web.Request) -> web.StreamResponse:
    agent = agent_of(request)
    text = text_field(await json_body(request), "text", MAX_MESSAGE_CHARS)
    handoff = await _handoff(request)
    note = await call(request, store(request).add_internal_note, handoff.id, agent.username, text)
    return web.json_response({"note": {"author": note.author, "text": note.text}})


@routes.post(CONVERSATION + "/hand-back")
async def hand_back(request: web.Request) -> web.StreamResponse:
    """The assistant has the conversation again. With ``follow_up`` (what is left to do) the
    chat ends unresolved: a case is opened for it, answered by email."""
    agent = agent_of(request)
    body = await json_body(request) if request.body_exists else {}
    follow_up = text_field(body, "follow_up", MAX_MESSAGE_CHARS) if body.get("follow_up") else None
    repository = store(request)
    handoff = await call(request, repository.hand_back, _request_id(request), agent.username)
    left = agent_payload({"event": "agent_left", "agent": {"name": agent.display_name}})
    events = [{"event": "resume"}, left, {"event": "bot", "text": HAND_BACK_MESSAGE}]
    reference = None
    if follow_up is not None:
        reference = await call(
            request, repository.follow_up_case, handoff.id, agent.username, follow_up
        )
        case = await asyncio.to_thread(repository.get_case, reference)
        if case is not None and case.contact_email is None:
            # The shopper's next message (an email address) goes to action_save_contact.
            events[2:] = [
                {"event": "slot", "name": "case_reference", "value": reference},
                {"event": "slot", "name": "contact_requested", "value": True},
                {"event": "bot", "text": FOLLOW_UP_ASK_EMAIL.format(reference=reference)},
            ]
    await tell_rasa(request, handoff, events)
    return web.json_response({"handoff": handoff_json(handoff), "case_reference": reference})


@routes.post(CONVERSATION + "/replacement")
async def replacement(request: web.Request) -> web.StreamResponse:
    agent = agent_of(request)
    handoff = await _own_handoff(request, agent)
    card = await _replaceable_card(request, handoff)
    if card is None:
        raise json_error(
            web.HTTPConflict,
            "This conversation names no verified damaged card whose code can be replaced.",
        )
    done = await call(
        request, store(request).replace_claim_code, card.id, agent.actor, handoff.conversation_id
    )
    # The code goes to the order's email address through the outbox, never into the chat.
    return web.json_response({"sent_to": codes.mask_email(done.sent_to)})


@routes.post(CONVERSATION + "/adjustment")
async def adjustment(request: web.Request) -> web.StreamResponse:
    agent = agent_of(request)
    body = await json_body(request)
    reason = text_field(body, "reason", 500)
    amount_text = text_field(body, "amount", 30)
    sign = -1 if amount_text.startswith("-") else 1
    try:
        amount = sign * parse_amount(amount_text.lstrip("+-"))
    except AmountError as exc:
        raise json_error(web.HTTPBadRequest, str(exc)) from None
    handoff = await _own_handoff(request, agent)
    if handoff.customer_id is None:
        raise json_error(
            web.HTTPConflict, "The shopper is not signed in: there is no account to adjust."
        )
    balance = await call(
        request, store(request).adjust_balance, handoff.customer_id, amount, reason, agent.actor
    )
    return web.json_response({"balance": format_money(balance)})


@routes.post(CONVERSATION + "/close")
async def close_case(request: web.Request) -> web.StreamResponse:
    agent = agent_of(request)
    resolution = text_field(await json_body(request), "resolution", MAX_MESSAGE_CHARS)
    handoff = await _own_handoff(request, agent)
    if not handoff.case_reference:
        raise json_error(web.HTTPConflict, "This conversation has no case to close.")
    case = await call(
        request, store(request).close_case, handoff.case_reference, agent.username, resolution
    )
    return web.json_response({"case": {"reference": case.reference, "status": case.status}})


def _request_id(request: web.Request) -> int:
    return int(request.match_info["id"])


async def _handoff(request: web.Request) -> HandoffView:
    handoff = await asyncio.to_thread(store(request).get_handoff, _request_id(request))
    if handoff is None:
        raise json_error(web.HTTPNotFound, "No such conversation in the queue.")
    return handoff


async def _own_handoff(request: web.Request, agent: AgentView) -> HandoffView:
    """The conversation, when this agent has taken it (only they act in it)."""
    handoff = await _handoff(request)
    if handoff.status != HandoffStatus.TAKEN or handoff.taken_by != agent.username:
        raise json_error(web.HTTPConflict, "Take the conversation first.")
    return handoff


async def _replaceable_card(request: web.Request, handoff: HandoffView) -> CardView | None:
    """The damaged card the shopper proved theirs before the handoff, while it has a code."""
    card = await asyncio.to_thread(store(request).handoff_verified_card, handoff.id)
    if card is None or card.state not in (CardState.ACTIVE, CardState.INACTIVE):
        return None
    return card
