"""The REST channel (bot/channels/rest.py) against the real Rasa server: every malformed body
gets a clear 400 and changes nothing, an oversized message gets "please keep it shorter" and
nothing else, calls without a sender never share a conversation, and each client address has
its own limit (issue 8, findings 2, 3, 4 and 7)."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from bot.channels.edge import TOO_LONG
from bot.ratelimit import RATE_LIMITED
from tests.security.edge import (
    MAX_CHARS,
    MESSAGE_LIMIT,
    PROXY_HEADER,
    new_client_address,
    stored_events,
)
from tests.servers import Servers

pytestmark = pytest.mark.servers

BODY_SHAPE = 'The body must be a JSON object: {"sender": "...", "message": "...", "metadata": {}}.'
SHORTER = TOO_LONG.format(limit=MAX_CHARS)


def post(servers: Servers, body: bytes | str, address: str | None = None) -> requests.Response:
    return requests.post(
        f"{servers.rasa_url}/webhooks/rest/webhook",
        data=body.encode() if isinstance(body, str) else body,
        headers={"Content-Type": "application/json", PROXY_HEADER: address or new_client_address()},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("not json at all", BODY_SHAPE),
        ('{"sender": "x", "message": "hi"', BODY_SHAPE),
        ('["hi"]', BODY_SHAPE),
        ('"hi"', BODY_SHAPE),
        ("", BODY_SHAPE),
        ('{"sender": "{sender}"}', "'message' must be a string."),
        ('{"sender": "{sender}", "message": 5}', "'message' must be a string."),
        ('{"sender": "{sender}", "message": ["hi"]}', "'message' must be a string."),
        ('{"sender": "{sender}", "message": null}', "'message' must be a string."),
        ('{"sender": 7, "message": "hi"}', "'sender' must be a string."),
        ('{"sender": {"a": 1}, "message": "hi"}', "'sender' must be a string."),
        (
            '{"sender": "{sender}", "message": "hi", "metadata": "t"}',
            "'metadata' must be a JSON object.",
        ),
        (
            '{"sender": "{sender}", "message": "hi", "metadata": [1]}',
            "'metadata' must be a JSON object.",
        ),
    ],
)
def test_a_malformed_body_gets_a_clear_400_and_changes_nothing(
    edge_servers: Servers, body: str, error: str
) -> None:
    sender = f"bad-{uuid.uuid4().hex[:12]}"
    response = post(edge_servers, body.replace("{sender}", sender))
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert stored_events(edge_servers, sender) == []


def test_an_oversized_message_gets_keep_it_shorter_and_nothing_else(edge_servers: Servers) -> None:
    sender = f"long-{uuid.uuid4().hex[:12]}"
    text = "word " * (MAX_CHARS // 5) + "x"  # one character over the cap
    response = post(edge_servers, json.dumps({"sender": sender, "message": text}))
    assert response.status_code == 200
    assert response.json() == [{"recipient_id": sender, "text": SHORTER}]
    # No NLU, no turn: the conversation was not even started.
    assert stored_events(edge_servers, sender) == []

    # Exactly at the cap the assistant reads it (and answers something else).
    response = post(edge_servers, json.dumps({"sender": sender, "message": text[:MAX_CHARS]}))
    assert response.status_code == 200
    assert SHORTER not in [reply.get("text") for reply in response.json()]
    assert any(event["event"] == "user" for event in stored_events(edge_servers, sender))


def test_a_body_too_big_to_be_a_message_gets_413_before_it_is_read(edge_servers: Servers) -> None:
    sender = f"huge-{uuid.uuid4().hex[:12]}"
    body = json.dumps({"sender": sender, "message": "a" * 1_000_001})
    response = post(edge_servers, body)
    assert (response.status_code, response.json()) == (413, {"error": SHORTER})
    assert stored_events(edge_servers, sender) == []


def test_calls_without_a_sender_get_a_conversation_each(edge_servers: Servers) -> None:
    first = post(edge_servers, json.dumps({"message": "hi"}))
    second = post(edge_servers, json.dumps({"message": "hi", "sender": ""}))
    ids = []
    for response in (first, second):
        assert response.status_code == 200
        sender = response.headers["X-Giftbot-Sender"]
        assert {reply["recipient_id"] for reply in response.json()} == {sender}
        ids.append(sender)
    assert ids[0] != ids[1]
    assert all(sender.startswith("rest-") and len(sender) == 37 for sender in ids)
    assert stored_events(edge_servers, "default") == []
    # The id continues the conversation when sent back.
    again = post(edge_servers, json.dumps({"sender": ids[0], "message": "thanks"}))
    assert again.headers["X-Giftbot-Sender"] == ids[0]
    users = [e for e in stored_events(edge_servers, ids[0]) if e["event"] == "user"]
    assert len(users) == 2


def test_the_caller_cannot_name_another_channel(edge_servers: Servers) -> None:
    sender = f"chan-{uuid.uuid4().hex[:12]}"
    body = {"sender": sender, "message": "hi", "input_channel": "socketio"}
    assert post(edge_servers, json.dumps(body)).status_code == 200
    channels = {
        e["input_channel"] for e in stored_events(edge_servers, sender) if e["event"] == "user"
    }
    assert channels == {"rest"}


def test_each_client_address_has_its_own_message_limit(edge_servers: Servers) -> None:
    address, other = new_client_address(), new_client_address()
    # Every request counts, well-formed or not (these cost the server nothing to refuse).
    statuses = [post(edge_servers, "{}", address).status_code for _ in range(MESSAGE_LIMIT)]
    assert statuses == [400] * MESSAGE_LIMIT
    refused = post(edge_servers, json.dumps({"message": "hi"}), address)
    assert (refused.status_code, refused.json()) == (429, {"error": RATE_LIMITED})
    assert refused.headers["Retry-After"] == "60"
    # Another client is not held up by the first one.
    assert post(edge_servers, "{}", other).status_code == 400


def test_the_forwarded_header_counts_its_rightmost_entry_only(edge_servers: Servers) -> None:
    """A client cannot get a fresh count by prepending addresses of its choosing: our proxy's
    entry, the last one, is the one counted."""
    address = new_client_address()
    for n in range(MESSAGE_LIMIT):
        assert post(edge_servers, "{}", f"127.66.0.{n}, {address}").status_code == 400
    assert post(edge_servers, "{}", f"127.66.9.9, {address}").status_code == 429
