"""Cases: what came in while nobody could chat (or needed a person later), answered by email.

Open cases are listed oldest first; an agent reads one (reason, context, transcript, contact
address, age), adds notes, answers the shopper by email (through the outbox, in the desk's
template, with the case reference) and closes it with a resolution. All of it is audited.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.desk.views import CaseView
from bot.web.console.state import MAX_MESSAGE_CHARS, RASA, agent_of, call, store
from bot.web.console.views import case_json, transcript
from bot.web.http import json_body, json_error, text_field
from bot.web.rasa_api import RasaError

routes = web.RouteTableDef()

CASE = "/api/cases/{reference:GC-[A-Z0-9]{8}}"


@routes.get("/api/cases")
async def open_cases(request: web.Request) -> web.StreamResponse:
    cases = await asyncio.to_thread(store(request).open_cases)
    return web.json_response({"cases": [case_json(case) for case in cases]})


@routes.get(CASE)
async def case(request: web.Request) -> web.StreamResponse:
    found = await _case(request)
    lines, transcript_error = [], None
    if found.conversation_id:
        try:
            tracker = await request.app[RASA].tracker(found.conversation_id)
            lines = transcript(tracker.get("events") or [])
        except RasaError as exc:
            transcript_error = f"The transcript could not be read: {exc}."
    return web.json_response(
        {
            "case": case_json(found, full=True),
            "transcript": lines,
            "transcript_error": transcript_error,
        }
    )


@routes.post(CASE + "/notes")
async def add_note(request: web.Request) -> web.StreamResponse:
    text = text_field(await json_body(request), "text", MAX_MESSAGE_CHARS)
    reference = request.match_info["reference"]
    await call(request, store(request).add_case_note, reference, agent_of(request).username, text)
    return web.json_response({"case": case_json(await _case(request), full=True)})


@routes.post(CASE + "/reply")
async def reply(request: web.Request) -> web.StreamResponse:
    """Email the shopper (the outbox sends it); the chat is not involved."""
    text = text_field(await json_body(request), "text", MAX_MESSAGE_CHARS)
    reference = request.match_info["reference"]
    await call(request, store(request).reply_to_case, reference, agent_of(request).username, text)
    return web.json_response({"case": case_json(await _case(request), full=True)})


@routes.post(CASE + "/close")
async def close(request: web.Request) -> web.StreamResponse:
    resolution = text_field(await json_body(request), "resolution", MAX_MESSAGE_CHARS)
    reference = request.match_info["reference"]
    await call(
        request, store(request).close_case, reference, agent_of(request).username, resolution
    )
    return web.json_response({"case": case_json(await _case(request), full=True)})


async def _case(request: web.Request) -> CaseView:
    found = await asyncio.to_thread(store(request).get_case, request.match_info["reference"])
    if found is None:
        raise json_error(web.HTTPNotFound, "No such case.")
    return found
