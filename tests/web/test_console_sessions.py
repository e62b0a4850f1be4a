"""The console's session cookies and what it shows of a tracker, without a browser or Rasa."""

from __future__ import annotations

import json
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from cryptography.fernet import Fernet

from bot.wallet import codes
from bot.wallet.demo import CARDS
from bot.web import sessions
from bot.web.console.views import mask, transcript
from bot.web.rasa_api import agent_payload
from bot.web.sessions import COOKIE_NAME, AgentSession, SessionCodec

KEY = Fernet.generate_key().decode()


def stored(session: AgentSession, headers: dict[str, str] | None = None) -> str:
    """The Set-Cookie header the codec writes for ``session``."""
    response = web.Response()
    SessionCodec(KEY).store(
        make_mocked_request("GET", "/agent", headers=headers), response, session
    )
    return response.cookies[COOKIE_NAME].OutputString()


def loaded(codec: SessionCodec, cookie: str) -> AgentSession | None:
    request = make_mocked_request("GET", "/agent", headers={"Cookie": f"{COOKIE_NAME}={cookie}"})
    return codec.load(request)


def cookie_value(set_cookie: str) -> str:
    return set_cookie.split(";")[0].split("=", 1)[1].strip('"')


def test_the_cookie_is_http_only_strict_and_expires() -> None:
    header = stored(AgentSession.new("sam"))
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/agent" in header
    assert f"Max-Age={sessions.SESSION_LIFETIME}" in header
    assert "Secure" not in header  # plain http: localhost development
    behind_tls = stored(AgentSession.new("sam"), {"X-Forwarded-Proto": "https"})
    assert "Secure" in behind_tls


def test_a_session_round_trips_and_reveals_nothing() -> None:
    session = AgentSession.new("sam")
    value = cookie_value(stored(session))
    assert "sam" not in value and session.csrf_token not in value  # encrypted, not just signed
    assert loaded(SessionCodec(KEY), value) == session
    assert loaded(SessionCodec(Fernet.generate_key().decode()), value) is None  # another key
    assert loaded(SessionCodec(KEY), value[:-4] + "AAAA") is None  # tampered


def test_old_and_revoked_sessions_are_refused() -> None:
    codec = SessionCodec(KEY)
    old = time.time() - sessions.SESSION_LIFETIME - 60
    payload = {"sid": "s1", "csrf": "t", "user": "sam", "iat": int(old)}
    expired = Fernet(KEY.encode()).encrypt_at_time(json.dumps(payload).encode(), int(old))
    assert loaded(codec, expired.decode()) is None

    session = AgentSession.new("sam")
    value = cookie_value(stored(session))
    assert loaded(codec, value) == session
    codec.revoked.add(session)
    assert loaded(codec, value) is None


@pytest.mark.parametrize(
    ("headers", "ok"),
    [({}, False), ({"X-CSRF-Token": "forged"}, False), ({"X-CSRF-Token": "right"}, True)],
)
def test_csrf_token_in_the_header(headers: dict[str, str], ok: bool) -> None:
    session = AgentSession("s", "right", "sam", int(time.time()))
    request = make_mocked_request("POST", "/agent/api/availability", headers=headers)
    assert sessions.csrf_ok(request, session) is ok
    assert sessions.csrf_ok(request, None) is False


def test_the_transcript_masks_serials_and_claim_codes() -> None:
    card = CARDS[0]
    events = [
        {"event": "user", "text": f"serial {card.serial} code {card.claim_code}", "timestamp": 1},
        {"event": "bot", "text": "Which card?", "data": {"buttons": [{"title": "Cancel"}]}},
        {"event": "pause", "timestamp": 2},
        agent_payload({"event": "agent_joined", "agent": {"name": "Sam"}}),
        agent_payload({"text": f"I see {card.serial}", "agent": {"name": "Sam"}}),
        {"event": "slot", "name": "serial_number", "value": card.serial},
        {"event": "resume", "timestamp": 3},
    ]
    lines = transcript(events)
    assert [line["from"] for line in lines] == [
        "shopper",
        "bot",
        "notice",
        "notice",
        "agent",
        "notice",
    ]
    shown = json.dumps(lines, ensure_ascii=False)
    assert card.serial not in shown and card.claim_code not in shown
    assert lines[0]["text"] == f"serial {codes.mask_serial(card.serial)} code [claim code hidden]"
    assert lines[1]["text"] == "Which card?\n[Cancel]"
    assert lines[3]["text"] == "Sam joined the chat."
    assert lines[4] == {
        "from": "agent",
        "agent": "Sam",
        "text": f"I see {codes.mask_serial(card.serial)}",
        "at": lines[4]["at"],
    }
    assert mask("order 112-5550198-3309277") == "order 112-5550198-3309277"
