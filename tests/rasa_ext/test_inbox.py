"""The inbox (bot/rasa_ext/inbox.py) through Rasa's ``Agent.handle_message``, on the tracker
store's database (SQLite and PostgreSQL): a message left by a server that died mid-turn is
handled first by the next turn of its conversation, once; it is sealed at rest and deleted once
handled. Rasa's message processor is stood in for by a recorder (loading a model here would
cost a minute); tests/scale/test_kill.py kills a real server mid-action."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.lock_store import InMemoryLockStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

import bot.tracker_store  # noqa: F401  (installs the inbox, as Rasa importing endpoints.yml does)
from bot.rasa_ext import inbox
from bot.rasa_ext.lock_store import AtomicRedisLockStore
from bot.settings import get_settings
from bot.tracker_store import RedactingSQLTrackerStore
from bot.wallet import codes
from tests.services import require_redis
from tests.tcp_proxy import TcpProxy

CODE = "AQ4T-B7XWZC-9M2P"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


class Processor:
    """Stands in for Rasa's MessageProcessor: records each turn and answers on its channel."""

    def __init__(self, tracker_store: Any, fail_on: str | None = None) -> None:
        self.tracker_store = tracker_store
        self.turns: list[tuple[str, Any, dict[str, Any] | None]] = []
        self.fail_on = fail_on

    async def handle_message(self, message: UserMessage) -> Any:
        self.turns.append((message.text or "", message.output_channel, message.metadata))
        if message.text == self.fail_on:
            raise RuntimeError("a turn that fails")
        await message.output_channel.send_text_message(message.sender_id, f"re: {message.text}")
        return getattr(message.output_channel, "messages", None)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[RedactingSQLTrackerStore]:
    if request.param == "sqlite":
        tracker_store = RedactingSQLTrackerStore(Domain.empty(), db=str(tmp_path / "tracker.db"))
    else:
        url = request.getfixturevalue("pg_schema_url")
        tracker_store = RedactingSQLTrackerStore(Domain.empty(), host=url)
    yield tracker_store
    tracker_store.engine.dispose()


def _agent(store: RedactingSQLTrackerStore, lock_store: Any = None, **kwargs: Any) -> Agent:
    agent = Agent(tracker_store=store, lock_store=lock_store or InMemoryLockStore())
    agent.processor = Processor(agent.tracker_store, **kwargs)  # type: ignore[assignment]
    return agent


def _sender() -> str:
    return f"inbox-{secrets.token_hex(6)}"


def _rows(store: RedactingSQLTrackerStore) -> list[Any]:
    with store.engine.connect() as connection:
        return list(connection.execute(sa.select(inbox.inbox_table)).all())


def _make_stale(store: RedactingSQLTrackerStore, entry_id: int) -> None:
    """As if the message had waited in the inbox longer than a replay is worth."""
    with store.engine.begin() as connection:
        connection.execute(
            inbox.inbox_table.update()
            .where(inbox.inbox_table.c.id == entry_id)
            .values(received_at=time.time() - inbox.REPLAY_WITHIN_SECONDS - 1)
        )


def _left_by_a_dead_server(store: RedactingSQLTrackerStore, message: UserMessage) -> int:
    """What a server killed mid-turn leaves: the message it wrote before the turn."""
    return inbox.Inbox(store.engine).put(message)


def test_an_orphan_is_handled_before_the_next_message_and_both_leave_the_inbox(
    store: RedactingSQLTrackerStore,
) -> None:
    agent, sender = _agent(store), _sender()
    _left_by_a_dead_server(
        store, UserMessage("my serial is 1712", CollectingOutputChannel(), sender)
    )
    channel = CollectingOutputChannel()
    replies = asyncio.run(agent.handle_message(UserMessage("and the order?", channel, sender)))

    processor = agent.processor
    assert [(text, out) for text, out, _ in processor.turns] == [  # type: ignore[union-attr]
        ("my serial is 1712", channel),  # the orphan first, answered on this turn's channel
        ("and the order?", channel),
    ]
    assert [r["text"] for r in replies] == ["re: my serial is 1712", "re: and the order?"]
    assert _rows(store) == []


def test_a_message_is_sealed_in_the_inbox_while_its_turn_runs(
    store: RedactingSQLTrackerStore,
) -> None:
    agent, sender = _agent(store), _sender()
    seen: list[list[Any]] = []

    class Looking(Processor):
        async def handle_message(self, message: UserMessage) -> Any:
            seen.append(_rows(store))  # mid-turn: what a kill now would leave
            return await super().handle_message(message)

    agent.processor = Looking(agent.tracker_store)  # type: ignore[assignment]
    metadata = {"customer_token": TOKEN}
    asyncio.run(
        agent.handle_message(
            UserMessage(f"my code is {CODE}", CollectingOutputChannel(), sender, metadata=metadata)
        )
    )
    [[row]] = seen
    assert row.sender_id == sender
    assert row.sealed.startswith(codes.SEALED_PREFIX)
    assert CODE not in row.sealed and TOKEN not in row.sealed
    opened = json.loads(codes.unseal_claim_code(row.sealed, get_settings().sealing_key))
    assert opened["text"] == f"my code is {CODE}" and opened["metadata"] == metadata
    assert _rows(store) == []  # and gone once the turn ended


def test_a_replay_keeps_the_message_id_and_metadata(store: RedactingSQLTrackerStore) -> None:
    agent, sender = _agent(store), _sender()
    orphan = UserMessage(
        "redeem it", None, sender, input_channel="socketio", metadata={"customer_token": TOKEN}
    )
    _left_by_a_dead_server(store, orphan)
    replayed: list[UserMessage] = []

    class Keeping(Processor):
        async def handle_message(self, message: UserMessage) -> Any:
            replayed.append(message)
            return await super().handle_message(message)

    agent.processor = Keeping(agent.tracker_store)  # type: ignore[assignment]
    asyncio.run(agent.handle_message(UserMessage("hi", CollectingOutputChannel(), sender)))
    first = replayed[0]
    assert (first.message_id, first.input_channel, first.metadata) == (
        orphan.message_id,
        "socketio",
        {"customer_token": TOKEN},
    )


def test_a_message_its_client_sends_again_runs_once(store: RedactingSQLTrackerStore) -> None:
    """The widget sends an unacknowledged message again after a reconnect, with its own id."""
    agent, sender = _agent(store), _sender()
    metadata = {"message_id": "widget-7"}
    _left_by_a_dead_server(
        store, UserMessage("my serial", CollectingOutputChannel(), sender, metadata=metadata)
    )
    again = UserMessage("my serial", CollectingOutputChannel(), sender, metadata=metadata)
    asyncio.run(agent.handle_message(again))
    turns = agent.processor.turns  # type: ignore[union-attr]
    assert [text for text, _, _ in turns] == ["my serial"]
    assert _rows(store) == []


def test_an_orphan_whose_turn_was_saved_is_not_run_again(
    store: RedactingSQLTrackerStore,
) -> None:
    """The server died after saving the turn, before deleting the message."""
    agent, sender = _agent(store), _sender()
    orphan = UserMessage("my serial", CollectingOutputChannel(), sender)
    _left_by_a_dead_server(store, orphan)
    tracker = DialogueStateTracker(sender, [])
    tracker.update(UserUttered("my serial", message_id=orphan.message_id))
    asyncio.run(store.save(tracker))

    asyncio.run(agent.handle_message(UserMessage("next", CollectingOutputChannel(), sender)))
    turns = agent.processor.turns  # type: ignore[union-attr]
    assert [text for text, _, _ in turns] == ["next"]
    assert _rows(store) == []


def test_an_orphan_is_tried_a_bounded_number_of_times(store: RedactingSQLTrackerStore) -> None:
    agent, sender = _agent(store, fail_on="poison"), _sender()
    _left_by_a_dead_server(store, UserMessage("poison", CollectingOutputChannel(), sender))
    for number in range(inbox.MAX_ATTEMPTS + 1):
        asyncio.run(
            agent.handle_message(UserMessage(f"next {number}", CollectingOutputChannel(), sender))
        )
    texts = [text for text, _, _ in agent.processor.turns]  # type: ignore[union-attr]
    # Received once (by the dead server), then replayed until MAX_ATTEMPTS, then dropped.
    assert texts.count("poison") == inbox.MAX_ATTEMPTS - 1
    assert [t for t in texts if t != "poison"] == [f"next {n}" for n in range(4)]
    assert _rows(store) == []


def test_a_failed_turn_leaves_nothing_and_a_cancelled_one_leaves_its_message(
    store: RedactingSQLTrackerStore,
) -> None:
    agent, sender = _agent(store, fail_on="boom"), _sender()
    with pytest.raises(RuntimeError):
        asyncio.run(agent.handle_message(UserMessage("boom", CollectingOutputChannel(), sender)))
    assert _rows(store) == []  # this server handled it, if badly: not replayed

    async def cancelled() -> None:
        started = asyncio.Event()

        class Hanging(Processor):
            async def handle_message(self, message: UserMessage) -> Any:
                started.set()
                await asyncio.sleep(3600)  # a turn stopped before its end (e.g. at shutdown)

        agent.processor = Hanging(agent.tracker_store)  # type: ignore[assignment]
        task = asyncio.create_task(
            agent.handle_message(UserMessage("slow", CollectingOutputChannel(), sender))
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert [row.sender_id for row in _rows(store)] == [sender]


def test_an_orphan_left_too_long_is_dropped(store: RedactingSQLTrackerStore) -> None:
    agent, sender = _agent(store), _sender()
    entry = _left_by_a_dead_server(store, UserMessage("old", CollectingOutputChannel(), sender))
    _make_stale(store, entry)
    asyncio.run(agent.handle_message(UserMessage("new", CollectingOutputChannel(), sender)))
    assert [text for text, _, _ in agent.processor.turns] == ["new"]  # type: ignore[union-attr]
    assert _rows(store) == []


def test_without_the_lock_store_a_turn_neither_replays_nor_journals(
    store: RedactingSQLTrackerStore,
) -> None:
    """Redis unreachable: the turn runs without the lock (bot/rasa_ext/lock_store.py), so a
    message in the inbox may be another server's turn in progress: it is left alone."""
    require_redis()
    proxy = TcpProxy("127.0.0.1", 6379)
    proxy.cut()
    lock_store = AtomicRedisLockStore(url=f"redis://127.0.0.1:{proxy.port}/15")
    agent, sender = _agent(store, lock_store), _sender()
    _left_by_a_dead_server(store, UserMessage("in progress", CollectingOutputChannel(), sender))
    seen: list[int] = []

    class Counting(Processor):
        async def handle_message(self, message: UserMessage) -> Any:
            seen.append(len(_rows(store)))
            return await super().handle_message(message)

    agent.processor = Counting(agent.tracker_store)  # type: ignore[assignment]
    asyncio.run(agent.handle_message(UserMessage("new", CollectingOutputChannel(), sender)))
    assert [text for text, _, _ in agent.processor.turns] == ["new"]  # type: ignore[union-attr]
    assert seen == [1]  # the other message only: this one was not written
    assert len(_rows(store)) == 1


@pytest.mark.postgres
def test_with_its_database_unreachable_a_turn_goes_on_without_the_inbox(
    pg_url: str, pg_schema_url: str
) -> None:
    pg = sa.engine.make_url(pg_url)
    proxy = TcpProxy(pg.host or "127.0.0.1", pg.port or 5432)
    url = sa.engine.make_url(pg_schema_url).set(host="127.0.0.1", port=proxy.port)
    store = RedactingSQLTrackerStore(Domain.empty(), host=url.render_as_string(hide_password=False))
    try:
        agent, sender = _agent(store), _sender()
        channel = CollectingOutputChannel()
        asyncio.run(agent.handle_message(UserMessage("first", channel, sender)))  # inbox made
        store.engine.dispose()
        proxy.cut()
        replies = asyncio.run(agent.handle_message(UserMessage("second", channel, sender)))
        assert [r["text"] for r in replies] == ["re: first", "re: second"]
    finally:
        proxy.cut()
        store.engine.dispose()


def test_another_conversations_stale_message_is_purged_by_a_later_turn(
    store: RedactingSQLTrackerStore,
) -> None:
    """A conversation that never comes back leaves nothing for ever: a server purges stale
    messages at its first turn and every ``PURGE_EVERY_SECONDS`` after (not on every turn: a
    turn with no orphan only reads the inbox)."""
    agent, gone, other = _agent(store), _sender(), _sender()
    stale = _left_by_a_dead_server(store, UserMessage("old", CollectingOutputChannel(), gone))
    recent = _left_by_a_dead_server(store, UserMessage("new", CollectingOutputChannel(), gone))
    _make_stale(store, stale)
    asyncio.run(agent.handle_message(UserMessage("hi", CollectingOutputChannel(), other)))
    assert [row.id for row in _rows(store)] == [recent]
