"""The console's page, its files, and signing in and out."""

from __future__ import annotations

import asyncio
from html import escape
from pathlib import Path

from aiohttp import web

from bot.desk import agents
from bot.ratelimit import client_address
from bot.settings import get_edge_settings
from bot.web.console.guard import public
from bot.web.console.presence import agent_json, agent_leaves, lease
from bot.web.console.state import (
    AGENT,
    CONSOLE_DIR,
    PRESENCE_SECONDS,
    SESSIONS,
    SIGN_IN_SLOTS,
    session_of,
    store,
)
from bot.web.http import json_body, json_error
from bot.web.sessions import AgentSession

routes = web.RouteTableDef()

SIGN_IN_FAILED = "Wrong username or password, or too many attempts"
MAX_USERNAME_CHARS = 100
# Served without a session: the sign-in form needs them. The console's script is not.
PUBLIC_ASSETS = {"console.css": "text/css", "sign-in.js": "text/javascript"}
PRIVATE_ASSETS = {"console.js": "text/javascript"}


def _render(template: Path, values: dict[str, str]) -> str:
    page = template.read_text()
    for name, value in values.items():
        page = page.replace("{{" + name + "}}", escape(value))
    return page


@routes.get("")
@routes.get("/")
@public
async def console_page(request: web.Request) -> web.Response:
    """The console for a signed-in agent; the sign-in form for anyone else."""
    folder = request.app[CONSOLE_DIR]
    agent = request[AGENT]
    if agent is not None:
        session = session_of(request)
        assert session is not None
        # Opening the console makes the agent present (their heartbeat keeps them so).
        await asyncio.to_thread(store(request).agent_heartbeat, agent.username, lease(request))
        page = _render(
            folder / "console.html",
            {
                "csrf_token": session.csrf_token,
                "agent_name": agent.display_name,
                "heartbeat_ms": str(request.app[PRESENCE_SECONDS] * 1000 // 3),
            },
        )
        return web.Response(text=page, content_type="text/html")
    sessions = request.app[SESSIONS]
    session = session_of(request) or AgentSession.new(None)
    if session.signed_in:  # signed in as an agent who has been disabled since
        session = AgentSession.new(None)
    page = _render(folder / "sign-in.html", {"csrf_token": session.csrf_token})
    response = web.Response(text=page, content_type="text/html")
    sessions.store(request, response, session)
    return response


@routes.get("/assets/{name}")
@public
async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name in PRIVATE_ASSETS:
        if request[AGENT] is None:
            raise json_error(web.HTTPUnauthorized, "Sign in first.")
        content_type = PRIVATE_ASSETS[name]
    elif name in PUBLIC_ASSETS:
        content_type = PUBLIC_ASSETS[name]
    else:
        raise web.HTTPNotFound()
    response = web.FileResponse(request.app[CONSOLE_DIR] / name)
    response.content_type = content_type
    response.headers["Cache-Control"] = "no-cache" if name in PUBLIC_ASSETS else "no-store"
    return response


@routes.post("/sign-in")
@public
async def sign_in(request: web.Request) -> web.Response:
    body = await json_body(request)
    username, password = body.get("username"), body.get("password")
    if (
        not isinstance(username, str)
        or not isinstance(password, str)
        or len(username) > MAX_USERNAME_CHARS
        or len(password) > agents.MAX_PASSWORD_LENGTH
    ):
        raise json_error(web.HTTPUnauthorized, SIGN_IN_FAILED)
    # Throttled per account and client address, so a stranger cannot lock an agent out.
    trusted_header = get_edge_settings().trusted_proxy_header
    client = client_address(request.remote, request.headers, trusted_header)
    # Unknown, disabled, throttled and wrong all look the same, here and in the repository.
    async with request.app[SIGN_IN_SLOTS]:
        agent = await asyncio.to_thread(
            store(request).verify_agent_password, username, password, client
        )
    if agent is None:
        raise json_error(web.HTTPUnauthorized, SIGN_IN_FAILED)
    response = web.json_response({"agent": agent_json(agent)})
    request.app[SESSIONS].store(request, response, AgentSession.new(agent.username))
    return response


@routes.post("/sign-out")
@public
async def sign_out(request: web.Request) -> web.Response:
    sessions = request.app[SESSIONS]
    session = session_of(request)
    if session is None or not session.signed_in:
        raise json_error(web.HTTPUnauthorized, "Sign in first.")
    assert session.username is not None
    sessions.revoked.add(session)
    # Nobody should queue for an agent who has left, and their chats go back to the queue.
    await agent_leaves(request.app, session.username, "signed out")
    response = web.json_response({"signed_out": True})
    sessions.clear(request, response)
    return response
