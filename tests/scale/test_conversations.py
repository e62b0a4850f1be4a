"""Conversations across two Rasa servers behind HAProxy: a form whose turns alternate between
the servers, agent messages to a shopper on the other server, engine.io long-polling through
the balancer (from Rasa's origin and from the web app's), and one conversation's messages sent
to both servers at once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import aiohttp
import pytest
import requests
import socketio

from bot.channels.socketio import session_sender
from bot.settings import get_edge_settings, get_settings
from bot.wallet.demo import CARDS
from bot.web.rasa_api import agent_payload
from tests.scale.conftest import Scaled
from tests.scale.events import duplicates, event_key, stored_events
from tests.servers import Chat

pytestmark = pytest.mark.servers
ACTIVE = CARDS[0]


def test_a_form_whose_turns_alternate_between_the_servers_keeps_its_slots(
    scaled: Scaled,
) -> None:
    first, second = scaled.topology.rasa_urls
    chat = scaled.topology.chat(rasa_url=first)
    turns = [
        (first, "how much money is on my gift card? I don't want to redeem it yet"),
        (second, "1712 3456 7890"),
        (first, ACTIVE.serial),
        (second, ACTIVE.order_number),
    ]
    replies = []
    for url, message in turns:
        chat.rasa_url = url
        replies.append(chat.say(message))
    assert "serial number" in replies[0]
    assert "19 digits; I counted 12" in replies[1]  # the form, asked on the other server
    assert "order number" in replies[2]
    assert "$50.00" in replies[3]  # the serial given on one server, the order on the other

    events = stored_events(scaled.tracker_direct_url, chat.sender)
    assert duplicates(events) == 0
    assert [e["text"] for e in events if e["event"] == "user"] == [m for _, m in turns]


def _socket_client(cookies: bool = True) -> tuple[socketio.AsyncClient, aiohttp.ClientSession]:
    # aiohttp keeps no cookie of an IP address unless told to; DummyCookieJar keeps none.
    jar: aiohttp.abc.AbstractCookieJar = (
        aiohttp.CookieJar(unsafe=True) if cookies else aiohttp.DummyCookieJar()
    )
    session = aiohttp.ClientSession(cookie_jar=jar)
    return socketio.AsyncClient(http_session=session, reconnection=False), session


async def _open_session(
    url: str, secret: str, transports: list[str], cookies: bool = True
) -> tuple[socketio.AsyncClient, asyncio.Queue[Any], aiohttp.ClientSession]:
    client, session = _socket_client(cookies)
    received: asyncio.Queue[Any] = asyncio.Queue()
    confirmed = asyncio.Event()
    client.on("bot_uttered", received.put_nowait)
    client.on("session_confirm", lambda _: confirmed.set())
    await client.connect(url, transports=transports, socketio_path="socket.io")
    await client.emit("session_request", {"session_secret": secret})
    await asyncio.wait_for(confirmed.wait(), 30)
    return client, received, session


def test_an_agent_message_sent_through_one_server_reaches_a_shopper_on_the_other(
    scaled: Scaled,
) -> None:
    first, second = scaled.topology.rasa_urls
    secret = f"scale-{threading.get_ident()}-agent-message"
    sender = session_sender(secret, get_edge_settings().socket_session_key)

    async def test() -> dict[str, Any]:
        client, received, session = await _open_session(second, secret, ["polling"])
        try:
            answer = await asyncio.to_thread(
                requests.post,
                f"{first}/conversations/{sender}/tracker/events",
                params={"output_channel": "socketio", "execute_side_effects": "true"},
                headers=scaled.topology.api_headers(),
                # What the agent console sends (bot/web/rasa_api.py).
                json=[
                    agent_payload({"text": "Hi, I'm Sam from support.", "agent": {"name": "Sam"}})
                ],
                timeout=30,
            )
            answer.raise_for_status()
            return await asyncio.wait_for(received.get(), 30)
        finally:
            await client.disconnect()
            await session.close()

    message = asyncio.run(test())
    # Rasa's socket.io output sends a custom payload as the event's data, as the widget reads it.
    assert message == {"text": "Hi, I'm Sam from support.", "agent": {"name": "Sam"}}


def test_a_polling_only_shopper_through_the_balancer_keeps_its_session(scaled: Scaled) -> None:
    """engine.io long-polling sends each poll as its own request: without the balancer's
    sticky cookie they land on both servers and the one that did not open the session
    answers "Session ID unknown"."""

    async def conversation(cookies: bool) -> list[Any]:
        secret = f"scale-polling-{cookies}-{threading.get_ident()}"
        client, received, session = await _open_session(
            scaled.topology.rasa_url, secret, ["polling"], cookies
        )
        replies = []
        try:
            for message in ("hi", "how much money is on my gift card?", "stop"):
                await client.emit("user_uttered", {"message": message})
                replies.append(await asyncio.wait_for(received.get(), 30))
        finally:
            await client.disconnect()
            await session.close()
        return replies

    assert len(asyncio.run(conversation(cookies=True))) == 3
    # The same client without cookies, for contrast: the test can tell stickiness is missing.
    with pytest.raises((socketio.exceptions.ConnectionError, asyncio.TimeoutError)):
        asyncio.run(conversation(cookies=False))


def test_a_polling_only_widget_on_the_web_apps_origin_keeps_its_session(scaled: Scaled) -> None:
    """The widget's page on the web app's origin (:8080), Rasa behind the balancer on another
    (:5005): a browser sends the balancer's sticky cookie with a cross-origin poll only with
    credentials (``withCredentials``, widget/connection.js), and hands the page the answer only
    when it allows credentials for the page's origin. Here every polling answer of a whole
    conversation does, for the widget's origins (GIFTBOT_WIDGET_ORIGINS) and for no other."""
    origin = get_settings().widget_origins[0]
    allow = ("Access-Control-Allow-Origin", "Access-Control-Allow-Credentials")

    def cors(asked: str) -> tuple[str | None, ...]:
        answer = requests.get(
            f"{scaled.topology.rasa_url}/socket.io/?EIO=4&transport=polling",
            headers={"Origin": asked},
            timeout=30,
        )
        answer.raise_for_status()
        return tuple(answer.headers.get(name) for name in allow)

    assert cors(origin) == (origin, "true")
    assert cors("http://elsewhere.example") == (None, None)  # a browser refuses the page

    async def conversation() -> tuple[list[Any], list[tuple[str | None, ...]]]:
        seen: list[tuple[str | None, ...]] = []

        async def answered(_: Any, __: Any, params: aiohttp.TraceRequestEndParams) -> None:
            seen.append(tuple(params.response.headers.get(name) for name in allow))

        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(answered)
        # A browser's cookie jar, and its Origin header on every request of the page.
        session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), trace_configs=[trace]
        )
        client = socketio.AsyncClient(http_session=session, reconnection=False)
        received: asyncio.Queue[Any] = asyncio.Queue()
        confirmed = asyncio.Event()
        client.on("bot_uttered", received.put_nowait)
        client.on("session_confirm", lambda _: confirmed.set())
        replies = []
        try:
            await client.connect(
                scaled.topology.rasa_url,
                headers={"Origin": origin},
                transports=["polling"],
                socketio_path="socket.io",
            )
            secret = f"scale-cross-origin-{threading.get_ident()}"
            await client.emit("session_request", {"session_secret": secret})
            await asyncio.wait_for(confirmed.wait(), 30)
            for message in ("hi", "how much money is on my gift card?", "stop"):
                await client.emit("user_uttered", {"message": message})
                replies.append(await asyncio.wait_for(received.get(), 30))
        finally:
            await client.disconnect()
            await session.close()
        return replies, seen

    replies, seen = asyncio.run(conversation())
    assert len(replies) == 3  # no "Session ID unknown": every poll reached the same server
    assert len(seen) > 3 and set(seen) == {(origin, "true")}


def test_messages_of_one_conversation_sent_to_both_servers_at_once_run_one_after_the_other(
    scaled: Scaled,
) -> None:
    first, second = scaled.topology.rasa_urls
    chat = scaled.topology.chat(rasa_url=first)
    chat.say("hi")
    sends = [
        (text, url)
        for text in ("how much money is on my gift card?", "what is a claim code?")
        for url in (first, second)
    ]
    barrier = threading.Barrier(len(sends))
    replies: dict[tuple[str, str], str] = {}

    def send(text: str, url: str) -> None:
        barrier.wait()  # all four requests leave together
        replies[(text, url)] = Chat(url, chat.sender).say(text)

    threads = [threading.Thread(target=send, args=send_args) for send_args in sends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(replies) == sorted(sends) and all(replies.values())
    events = stored_events(scaled.tracker_direct_url, chat.sender)
    assert duplicates(events) == 0
    users = [index for index, event in enumerate(events) if event["event"] == "user"]
    assert len(users) == 1 + len(sends)  # none lost
    # One turn at a time: each message is read while the assistant listens, after the turn
    # before it ended, so an action_listen stands right before every user event.
    for index in users:
        before = events[index - 1]
        assert (before["event"], before.get("name")) == ("action", "action_listen"), [
            event_key(e) for e in events
        ]
