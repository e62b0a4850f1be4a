"""How HAProxy balances REST turns, which bring no cookie: by a hash of the body's ``sender``
(deploy/haproxy/haproxy.cfg.template, backend rasa_by_conversation), so that one conversation's
turns reach the Rasa server that keeps it in memory. Which server answered is read from the
``X-Giftbot-Server`` header HAProxy adds to every answer of a Rasa server.

(Named to run before test_kill.py, which leaves a Rasa server dead.)
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest
import requests

from bot.channels.edge import TOO_LONG
from bot.channels.rest import SENDER_HEADER, max_body_bytes
from bot.settings import get_edge_settings
from bot.wallet.demo import CARDS
from tests.scale.conftest import Scaled
from tests.scale.events import duplicates, stored_events
from tests.servers import Topology

pytestmark = pytest.mark.servers
ACTIVE = CARDS[0]
SERVER_HEADER = "X-Giftbot-Server"
BALANCE_TURNS = [
    ("how much money is on my gift card? I don't want to redeem it yet", "serial number"),
    ("1712 3456 7890", "19 digits; I counted 12"),
    (ACTIVE.serial, "order number"),
    (ACTIVE.order_number, "$50.00"),
]
"""A balance check, each message with what its reply says: the form's slots carry over."""


def _post(topology: Topology, body: Any) -> requests.Response:
    """One REST call through the balancer, without cookies (as REST clients send them)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(
        f"{topology.rasa_url}/webhooks/rest/webhook",
        data=data,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )


def _turn(topology: Topology, sender: str, message: str) -> tuple[str, str]:
    """The server that answered, and the replies' texts joined."""
    answer = _post(topology, {"sender": sender, "message": message})
    answer.raise_for_status()
    return answer.headers[SERVER_HEADER], "\n".join(r.get("text", "") for r in answer.json())


def _both_servers_up(topology: Topology) -> None:
    """Both Rasa servers running, and counted up by HAProxy's checks (a server just started may
    not be yet): asked for each by its sticky cookie, HAProxy sends to that one."""
    for number in (1, 2):
        if topology.processes[f"rasa-{number}"].poll() is not None:
            topology.restart_rasa(number)
    deadline = time.monotonic() + 60
    for name in ("rasa1", "rasa2"):
        while _sticky_get(topology, name).headers[SERVER_HEADER] != name:
            assert time.monotonic() < deadline, f"HAProxy never counted {name} up"
            time.sleep(0.2)


def _sticky_get(topology: Topology, server: str) -> requests.Response:
    """Rasa's health page through the balancer, asking for ``server`` by the sticky cookie."""
    return requests.get(topology.rasa_url, cookies={"GIFTBOT_RASA": server}, timeout=30)


def test_each_conversations_turns_are_answered_by_one_server(scaled: Scaled) -> None:
    """Eight conversations of four turns each, one conversation after the other: round robin
    would answer every conversation from both servers in turn."""
    topology = scaled.topology
    _both_servers_up(topology)
    senders = [f"balancing-{number}" for number in range(8)]
    routes: dict[str, list[str]] = {}
    for sender in senders:
        for message, expected in BALANCE_TURNS:
            server, reply = _turn(topology, sender, message)
            assert expected in reply, (sender, message, reply)
            routes.setdefault(sender, []).append(server)

    assert routes == {
        sender: [servers[0]] * len(BALANCE_TURNS) for sender, servers in routes.items()
    }
    # Conversations are spread over the servers, not all sent to one (these names hash to both).
    assert {servers[0] for servers in routes.values()} == {"rasa1", "rasa2"}
    print(f"[scale figures] REST conversations by server: {routes}")


def _wait_for_haproxy(topology: Topology, line: str, seen_before: int) -> None:
    """Until HAProxy has logged ``line`` once more than ``seen_before`` times."""
    log = topology.var_dir / "log" / "haproxy.log"
    deadline = time.monotonic() + 60
    while log.read_text().count(line) <= seen_before:
        assert time.monotonic() < deadline, f"HAProxy never logged {line!r}"
        time.sleep(0.2)


def test_a_conversation_moves_while_its_server_is_down_and_comes_back_with_its_slots(
    scaled: Scaled,
) -> None:
    """Its server stops answering (SIGSTOP) until HAProxy's checks mark it down: the next turn
    is answered by the other server; back up, the server gets the conversation again and reads
    what the other one stored, not the copy it kept from before (the cache check of the test
    servers would fail the turn if it served a copy that differs from the database)."""
    topology = scaled.topology
    _both_servers_up(topology)
    sender = f"balancing-failover-{time.time_ns()}"
    (first, expected), *rest = BALANCE_TURNS
    home, reply = _turn(topology, sender, first)
    assert expected in reply
    other = {"rasa1": "rasa2", "rasa2": "rasa1"}[home]
    process = topology.processes[f"rasa-{home.removeprefix('rasa')}"]
    log = topology.var_dir / "log" / "haproxy.log"
    down = f"Server rasa_by_conversation/{home} is DOWN"
    up = f"Server rasa_by_conversation/{home} is UP"
    os.kill(process.pid, signal.SIGSTOP)
    try:
        _wait_for_haproxy(topology, down, log.read_text().count(down))
        routes = [home]
        message, expected = rest[0]
        server, reply = _turn(topology, sender, message)
        assert expected in reply
        routes.append(server)
        ups = log.read_text().count(up)
    finally:
        os.kill(process.pid, signal.SIGCONT)
    _wait_for_haproxy(topology, up, ups)
    for message, expected in rest[1:]:
        server, reply = _turn(topology, sender, message)
        assert expected in reply, (message, reply)
        routes.append(server)

    assert routes == [home, other, home, home]
    events = stored_events(scaled.tracker_direct_url, sender)
    assert duplicates(events) == 0
    assert [e["text"] for e in events if e["event"] == "user"] == [m for m, _ in BALANCE_TURNS]


def test_bodies_the_balancer_cannot_hash_are_still_answered(scaled: Scaled) -> None:
    topology = scaled.topology
    _both_servers_up(topology)
    # No sender: round robin, and Rasa starts a conversation of its own, named in a header;
    # its next turns, with that name as sender, stay on one server.
    started = _post(topology, {"message": "hi"})
    started.raise_for_status()
    sender = started.headers[SENDER_HEADER]
    assert sender.startswith("rest-") and started.json()[0]["recipient_id"] == sender
    later = [_turn(topology, sender, message)[0] for message, _ in BALANCE_TURNS[:3]]
    assert later == [later[0]] * 3

    # Not JSON: Rasa says what is wrong.
    bad = _post(topology, b"hello")
    assert (bad.status_code, bad.json()) == (
        400,
        {
            "error": 'The body must be a JSON object: {"sender": "...", '
            '"message": "...", "metadata": {}}.'
        },
    )

    # Bigger than HAProxy's request buffer (16 kB) yet within Rasa's limit: passed on whole.
    limit = max_body_bytes(get_edge_settings().max_message_chars)
    big = {"sender": f"balancing-big-{time.time_ns()}", "message": "hi", "metadata": {}}
    big["metadata"] = {"note": "x" * (limit - len(json.dumps(big)) - 100)}
    answer = _post(topology, big)
    answer.raise_for_status()
    assert answer.json() and answer.headers[SENDER_HEADER] == big["sender"]
    # Over it: Rasa's 413, as without the balancer.
    big["metadata"] = {"note": "x" * limit}
    refused = _post(topology, big)
    limit_text = TOO_LONG.format(limit=get_edge_settings().max_message_chars)
    assert (refused.status_code, refused.json()) == (413, {"error": limit_text})
