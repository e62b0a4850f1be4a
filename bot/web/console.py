"""The live agent console at ``/agent``: sign-in, the handoff queue, and taking conversations over.

Pages and their JSON API share one encrypted session cookie (``bot.web.sessions``). Without a
session the pages are the sign-in form and the API answers 401; every state-changing request
must carry the session's CSRF token in the ``X-CSRF-Token`` header, else 403. Everything the
console changes goes through the wallet repository with the agent as the actor (so it is in
the audit log), and everything it says to the shopper goes through Rasa's HTTP API
(``bot.web.rasa_api``) as tracker events. The browser polls the API every 2 seconds.

Serials are shown as their last 4 digits and claim codes never, whatever the source: the
tracker store already masks claim codes, and this module masks again before anything leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from html import escape
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.ratelimit import client_address
from bot.settings import get_edge_settings, get_settings
from bot.wallet import codes
from bot.desk import agents
from bot.wallet.models import CardState, HandoffStatus
from bot.wallet.money import AmountError, format_money, parse_amount
from bot.wallet.repository import (
    AgentView,
    CardView,
    ConflictError,
    HandoffView,
    WalletError,
    WalletRepository,
)
from bot.web.rasa_api import RasaApi, RasaError, agent_payload
from bot.web.sessions import AgentSession, SessionCodec, csrf_ok

SESSIONS = web.AppKey("console_sessions", SessionCodec)
RASA = web.AppKey("console_rasa", RasaApi)
CONSOLE_DIR = web.AppKey("console_dir", Path)
REPOSITORY = web.AppKey("console_repository", WalletRepository)

SIGN_IN_FAILED = "Wrong username or password, or too many attempts"
# Each sign-in attempt is one argon2id verification (64 MiB, deliberately slow): at most this
# many run at once, so a flood of attempts queues instead of exhausting the server's memory.
CONCURRENT_SIGN_INS = 2
SIGN_IN_SLOTS = web.AppKey("console_sign_in_slots", asyncio.Semaphore)
MAX_USERNAME_CHARS = 100
MAX_MESSAGE_CHARS = 2_000
HAND_BACK_MESSAGE = (
    "You're back with the gift card assistant. Ask me anything about your gift cards, "
    "or say you'd like a person again."
)
# Served without a session: the sign-in form needs them. The console's script is not.
PUBLIC_ASSETS = {"console.css": "text/css", "sign-in.js": "text/javascript"}
PRIVATE_ASSETS = {"console.js": "text/javascript"}
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


def setup_console(app: web.Application, repository: WalletRepository, console_dir: Path) -> None:
    """Add the console's routes; its files in ``console_dir`` are served by these alone."""
    settings = get_settings()
    app[REPOSITORY] = repository
    app[SESSIONS] = SessionCodec(settings.session_key)
    app[CONSOLE_DIR] = console_dir
    app[SIGN_IN_SLOTS] = asyncio.Semaphore(CONCURRENT_SIGN_INS)
    app.cleanup_ctx.append(_rasa_client)
    router = app.router
    router.add_get("/agent", console_page)
    router.add_get("/agent/", console_page)
    router.add_get("/agent/assets/{name}", asset)
    router.add_post("/agent/sign-in", sign_in)
    router.add_post("/agent/sign-out", sign_out)
    router.add_get("/agent/api/me", me)
    router.add_post("/agent/api/availability", availability)
    router.add_get("/agent/api/queue", queue)
    router.add_get("/agent/api/conversations/{id:[0-9]{1,12}}", conversation)
    for action, handler in {
        "take": take,
        "reply": reply,
        "notes": add_note,
        "hand-back": hand_back,
        "replacement": replacement,
        "adjustment": adjustment,
        "close": close_case,
    }.items():
        router.add_post(f"/agent/api/conversations/{{id:[0-9]{{1,12}}}}/{action}", handler)


async def _rasa_client(app: web.Application) -> AsyncIterator[None]:
    settings = get_settings()
    # Server to server through the URL browsers use (GIFTBOT_RASA_URL; make run: localhost).
    base = settings.rasa_url
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        app[RASA] = RasaApi(base, settings.rasa_api_token, http)
        yield


def _repository(request: web.Request) -> WalletRepository:
    return request.app[REPOSITORY]


# ----------------------------------------------------------------------------- sessions


async def _signed_in_agent(request: web.Request) -> tuple[AgentSession, AgentView] | None:
    """The session and its agent; None without one, or when the agent was disabled since."""
    session = request.app[SESSIONS].load(request)
    if session is None or session.username is None:
        return None
    agent = await asyncio.to_thread(_repository(request).find_agent, session.username)
    if agent is None or agent.disabled:
        return None
    return session, agent


def _json_error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json")


async def _api_agent(request: web.Request) -> AgentView:
    """The signed-in agent of an API request: 401 without a session, 403 without its token."""
    found = await _signed_in_agent(request)
    if found is None:
        raise _json_error(web.HTTPUnauthorized, "Sign in first.")
    session, agent = found
    if request.method not in ("GET", "HEAD") and not csrf_ok(request, session):
        raise _json_error(web.HTTPForbidden, "Missing or wrong CSRF token: reload the page.")
    return agent


def _no_store(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Cache-Control"] = "no-store"
    return response


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise _json_error(web.HTTPBadRequest, "The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise _json_error(web.HTTPBadRequest, "The body must be a JSON object.")
    return body


def _text(body: dict[str, Any], name: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _json_error(web.HTTPBadRequest, f"'{name}' must be a non-empty string.")
    if len(value) > limit:
        raise _json_error(web.HTTPBadRequest, f"'{name}' can have at most {limit} characters.")
    return value.strip()


# -------------------------------------------------------------------------------- pages


def _render(template: Path, values: dict[str, str]) -> str:
    page = template.read_text()
    for name, value in values.items():
        page = page.replace("{{" + name + "}}", escape(value))
    return page


async def console_page(request: web.Request) -> web.Response:
    """The console for a signed-in agent; the sign-in form for anyone else."""
    sessions, folder = request.app[SESSIONS], request.app[CONSOLE_DIR]
    found = await _signed_in_agent(request)
    if found is not None:
        session, agent = found
        page = _render(
            folder / "console.html",
            {"csrf_token": session.csrf_token, "agent_name": agent.display_name},
        )
        response = web.Response(text=page, content_type="text/html")
    else:
        session = sessions.load(request) or AgentSession.new(None)
        if session.signed_in:  # signed in as an agent who has been disabled since
            session = AgentSession.new(None)
        page = _render(folder / "sign-in.html", {"csrf_token": session.csrf_token})
        response = web.Response(text=page, content_type="text/html")
        sessions.store(request, response, session)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    _no_store(response)
    return response


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name in PRIVATE_ASSETS:
        if await _signed_in_agent(request) is None:
            raise _json_error(web.HTTPUnauthorized, "Sign in first.")
        content_type = PRIVATE_ASSETS[name]
    elif name in PUBLIC_ASSETS:
        content_type = PUBLIC_ASSETS[name]
    else:
        raise web.HTTPNotFound()
    response = web.FileResponse(request.app[CONSOLE_DIR] / name)
    response.content_type = content_type
    response.headers["Cache-Control"] = "no-cache" if name in PUBLIC_ASSETS else "no-store"
    return response


# -------------------------------------------------------------------- signing in and out


async def sign_in(request: web.Request) -> web.Response:
    sessions = request.app[SESSIONS]
    if not csrf_ok(request, sessions.load(request)):
        raise _json_error(web.HTTPForbidden, "Missing or wrong CSRF token: reload the page.")
    body = await _body(request)
    username, password = body.get("username"), body.get("password")
    if (
        not isinstance(username, str)
        or not isinstance(password, str)
        or len(username) > MAX_USERNAME_CHARS
        or len(password) > agents.MAX_PASSWORD_LENGTH
    ):
        raise _json_error(web.HTTPUnauthorized, SIGN_IN_FAILED)
    # Throttled per account and client address, so a stranger cannot lock an agent out.
    trusted_header = get_edge_settings().trusted_proxy_header
    client = client_address(request.remote, request.headers, trusted_header)
    # Unknown, disabled, throttled and wrong all look the same, here and in the repository.
    async with request.app[SIGN_IN_SLOTS]:
        agent = await asyncio.to_thread(
            _repository(request).verify_agent_password, username, password, client
        )
    if agent is None:
        raise _json_error(web.HTTPUnauthorized, SIGN_IN_FAILED)
    response = web.json_response({"agent": _agent_json(agent)})
    sessions.store(request, response, AgentSession.new(agent.username))
    return response


async def sign_out(request: web.Request) -> web.Response:
    sessions = request.app[SESSIONS]
    session = sessions.load(request)
    if session is None or not session.signed_in:
        raise _json_error(web.HTTPUnauthorized, "Sign in first.")
    if not csrf_ok(request, session):
        raise _json_error(web.HTTPForbidden, "Missing or wrong CSRF token: reload the page.")
    assert session.username is not None
    repository = _repository(request)
    # Nobody should queue for an agent who has left.
    with contextlib.suppress(WalletError):  # disabled or removed meanwhile: nothing to mark
        await asyncio.to_thread(repository.set_agent_available, session.username, False)
    sessions.revoked.add(session)
    response = web.json_response({"signed_out": True})
    sessions.clear(request, response)
    return response


# ------------------------------------------------------------------------------- the API


def _agent_json(agent: AgentView) -> dict[str, Any]:
    return {
        "username": agent.username,
        "display_name": agent.display_name,
        "available": agent.available,
    }


async def me(request: web.Request) -> web.StreamResponse:
    agent = await _api_agent(request)
    return _no_store(web.json_response({"agent": _agent_json(agent)}))


async def availability(request: web.Request) -> web.StreamResponse:
    agent = await _api_agent(request)
    available = (await _body(request)).get("available")
    if not isinstance(available, bool):
        raise _json_error(web.HTTPBadRequest, "'available' must be true or false.")
    updated = await _wallet_call(
        request, _repository(request).set_agent_available, agent.username, available
    )
    return _no_store(web.json_response({"agent": _agent_json(updated)}))


async def queue(request: web.Request) -> web.StreamResponse:
    agent = await _api_agent(request)
    repository = _repository(request)
    waiting, mine = await asyncio.gather(
        asyncio.to_thread(repository.waiting_handoffs),
        asyncio.to_thread(repository.handoffs_taken_by, agent.username),
    )
    return _no_store(
        web.json_response(
            {
                "agent": _agent_json(agent),
                "waiting": [_handoff_json(h) for h in waiting],
                "mine": [_handoff_json(h) for h in mine],
            }
        )
    )


async def conversation(request: web.Request) -> web.StreamResponse:
    agent = await _api_agent(request)
    handoff = await _handoff(request)
    repository = _repository(request)
    # Without Rasa the agent still sees the context and notes, and is told what is missing.
    transcript_error = None
    try:
        tracker = await request.app[RASA].tracker(handoff.conversation_id)
    except RasaError as exc:
        tracker, transcript_error = {}, f"The transcript could not be read: {exc}."
    notes = await asyncio.to_thread(repository.notes, handoff.id)
    case = (
        await asyncio.to_thread(repository.case_details, handoff.case_reference)
        if handoff.case_reference
        else None
    )
    card = await _replaceable_card(request, handoff)
    yours = handoff.status == HandoffStatus.TAKEN and handoff.taken_by == agent.username
    return _no_store(
        web.json_response(
            {
                "handoff": _handoff_json(handoff),
                "yours": yours,
                "transcript": transcript(tracker.get("events") or []),
                "paused": bool(tracker.get("paused")),
                "transcript_error": transcript_error,
                "notes": [
                    {
                        "author": note.author,
                        "text": mask(note.text),
                        "at": note.created_at.isoformat(),
                    }
                    for note in notes
                ],
                "case": _case_json(handoff.case_reference, case),
                "can_replace": card is not None,
                "replace_card": card.masked_serial if card else None,
                "can_adjust": handoff.customer_id is not None,
            }
        )
    )


async def take(request: web.Request) -> web.StreamResponse:
    agent = await _api_agent(request)
    handoff = await _wallet_call(
        request, _repository(request).take_handoff, _request_id(request), agent.username
    )
    joined = agent_payload({"event": "agent_joined", "agent": {"name": agent.display_name}})
    await _tell_rasa(request, handoff, [{"event": "pause"}, joined])
    return _no_store(web.json_response({"handoff": _handoff_json(handoff)}))


async def reply(request: web.Request) -> web.StreamResponse:
    agent = await _api_agent(request)
    text = codes.mask_claim_codes(_text(await _body(request), "text"))
    handoff = await _own_handoff(request, agent)
    message = agent_payload({"text": text, "agent": {"name": agent.display_name}})
    await _tell_rasa(request, handoff, [message])
    return _no_store(web.json_response({"sent": True}))


async def add_note(request: web.Request) -> web.StreamResponse:
    agent = await _api_agent(request)
    text = _text(await _body(request), "text")
    handoff = await _handoff(request)
    note = await _wallet_call(
        request, _repository(request).add_internal_note, handoff.id, agent.username, text
    )
    return _no_store(web.json_response({"note": {"author": note.author, "text": note.text}}))


async def hand_back(request: web.Request) -> web.StreamResponse:
    agent = await _api_agent(request)
    handoff = await _wallet_call(
        request, _repository(request).hand_back, _request_id(request), agent.username
    )
    left = agent_payload({"event": "agent_left", "agent": {"name": agent.display_name}})
    await _tell_rasa(
        request,
        handoff,
        [{"event": "resume"}, left, {"event": "bot", "text": HAND_BACK_MESSAGE}],
    )
    return _no_store(web.json_response({"handoff": _handoff_json(handoff)}))


async def replacement(request: web.Request) -> web.StreamResponse:
    agent = await _api_agent(request)
    handoff = await _own_handoff(request, agent)
    card = await _replaceable_card(request, handoff)
    if card is None:
        raise _json_error(
            web.HTTPConflict,
            "This conversation names no verified damaged card whose code can be replaced.",
        )
    done = await _wallet_call(
        request,
        _repository(request).replace_claim_code,
        card.id,
        agent.actor,
        handoff.conversation_id,
    )
    # The code goes to the order's email address through the outbox, never into the chat.
    return _no_store(web.json_response({"sent_to": codes.mask_email(done.sent_to)}))


async def adjustment(request: web.Request) -> web.StreamResponse:
    agent = await _api_agent(request)
    body = await _body(request)
    reason = _text(body, "reason", limit=500)
    amount_text = _text(body, "amount", limit=30)
    sign = -1 if amount_text.startswith("-") else 1
    try:
        amount = sign * parse_amount(amount_text.lstrip("+-"))
    except AmountError as exc:
        raise _json_error(web.HTTPBadRequest, str(exc)) from None
    handoff = await _own_handoff(request, agent)
    if handoff.customer_id is None:
        raise _json_error(
            web.HTTPConflict, "The shopper is not signed in: there is no account to adjust."
        )
    balance = await _wallet_call(
        request,
        _repository(request).adjust_balance,
        handoff.customer_id,
        amount,
        reason,
        agent.actor,
    )
    return _no_store(web.json_response({"balance": format_money(balance)}))


async def close_case(request: web.Request) -> web.StreamResponse:
    agent = await _api_agent(request)
    resolution = _text(await _body(request), "resolution")
    handoff = await _own_handoff(request, agent)
    if not handoff.case_reference:
        raise _json_error(web.HTTPConflict, "This conversation has no case to close.")
    case = await _wallet_call(
        request, _repository(request).close_case, handoff.case_reference, agent.username, resolution
    )
    return _no_store(
        web.json_response({"case": {"reference": case.reference, "status": case.status}})
    )


# ------------------------------------------------------------------------------ helpers


def _request_id(request: web.Request) -> int:
    return int(request.match_info["id"])


async def _handoff(request: web.Request) -> HandoffView:
    handoff = await asyncio.to_thread(_repository(request).get_handoff, _request_id(request))
    if handoff is None:
        raise _json_error(web.HTTPNotFound, "No such conversation in the queue.")
    return handoff


async def _own_handoff(request: web.Request, agent: AgentView) -> HandoffView:
    """The conversation, when this agent has taken it (only they act in it)."""
    handoff = await _handoff(request)
    if handoff.status != HandoffStatus.TAKEN or handoff.taken_by != agent.username:
        raise _json_error(web.HTTPConflict, "Take the conversation first.")
    return handoff


async def _wallet_call(request: web.Request, method: Callable[..., Any], *args: Any) -> Any:
    """A repository call off the event loop; its refusals as 409 (conflict) or 400."""
    try:
        return await asyncio.to_thread(method, *args)
    except ConflictError as exc:
        message = str(exc)
        raise _json_error(web.HTTPConflict, message[:1].upper() + message[1:] + ".") from None
    except WalletError as exc:
        message = str(exc)
        raise _json_error(web.HTTPBadRequest, message[:1].upper() + message[1:] + ".") from None


async def _tell_rasa(
    request: web.Request, handoff: HandoffView, events: list[dict[str, Any]]
) -> None:
    try:
        await request.app[RASA].append(handoff.conversation_id, events)
    except RasaError as exc:
        raise _json_error(
            web.HTTPBadGateway, f"The shopper's conversation could not be updated: {exc}."
        ) from None


async def _replaceable_card(request: web.Request, handoff: HandoffView) -> CardView | None:
    """The card the shopper proved theirs before the handoff, while it still has a code."""
    card = await asyncio.to_thread(_repository(request).handoff_verified_card, handoff.id)
    if card is None or card.state not in (CardState.ACTIVE, CardState.INACTIVE):
        return None
    return card


def mask(text: str) -> str:
    """Text fit for the console: claim codes hidden, serials cut to their last 4 digits."""
    return codes.mask_claim_codes(text, serials=True)


def _masked_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {str(k): _masked_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked_value(v) for v in value]
    return value


def _verification_text(verification: Any) -> str:
    """The context's summary of what the action server recorded (``VerificationView``)."""
    return mask(verification) if isinstance(verification, str) and verification else "not verified"


def _handoff_json(handoff: HandoffView) -> dict[str, Any]:
    serial = handoff.context.get("serial")
    return {
        "id": handoff.id,
        "status": handoff.status.value,
        "reason": handoff.reason.replace("_", " "),
        "channel": handoff.channel,
        "signed_in": handoff.signed_in,
        "verification": _verification_text(handoff.context.get("verification")),
        "serial": mask(serial) if isinstance(serial, str) else None,
        "last_intent": handoff.context.get("last_intent"),
        "case_reference": handoff.case_reference,
        "created_at": handoff.created_at.isoformat(),
        "waited_seconds": int(handoff.waited().total_seconds()),
        "taken_by": handoff.taken_by,
        "conversation": handoff.conversation_id[:8],
    }


def _case_json(reference: str | None, case: dict[str, Any] | None) -> dict[str, Any] | None:
    if reference is None or case is None:
        return None
    return {
        "reference": reference,
        "kind": str(case.get("kind", "")).replace("_", " "),
        "status": case.get("status"),
        "details": _masked_value(case.get("details") or {}),
    }


def transcript(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The shopper's, the assistant's and agents' turns, and what happened to the chat."""
    lines: list[dict[str, Any]] = []
    for event in events:
        kind, at = event.get("event"), event.get("timestamp") or time.time()
        if kind == "user":
            text = event.get("text") or ""
            if text:
                lines.append({"from": "shopper", "text": mask(text), "at": at})
        elif kind == "bot":
            line = _bot_line(event)
            if line:
                lines.append({**line, "at": at})
        elif kind == "pause":
            lines.append({"from": "notice", "text": "The assistant is paused.", "at": at})
        elif kind == "resume":
            lines.append({"from": "notice", "text": "The assistant is back on.", "at": at})
    return lines


def _bot_line(event: dict[str, Any]) -> dict[str, Any] | None:
    data = event.get("data") or {}
    custom = data.get("custom") if isinstance(data, dict) else None
    payload = custom.get("data", custom) if isinstance(custom, dict) else None
    if isinstance(payload, dict) and isinstance(payload.get("agent"), dict):
        name = str(payload["agent"].get("name") or "An agent")[:60]
        if payload.get("event") == "agent_joined":
            return {"from": "notice", "text": f"{name} joined the chat."}
        if payload.get("event") == "agent_left":
            return {"from": "notice", "text": f"{name} left the chat."}
        if isinstance(payload.get("text"), str):
            return {"from": "agent", "agent": name, "text": mask(payload["text"])}
        return None
    text = event.get("text") or ""
    buttons = data.get("buttons") if isinstance(data, dict) else None
    if isinstance(buttons, list):
        titles = [str(b.get("title")) for b in buttons if isinstance(b, dict) and b.get("title")]
        if titles:
            text += "\n" + " ".join(f"[{title}]" for title in titles)
    return {"from": "bot", "text": mask(text)} if text.strip() else None
