"""A durable inbox: a shopper's message survives the Rasa server that was handling it.

Rasa 3.6.21 keeps a turn in memory until it ends: ``MessageProcessor.handle_message``
(rasa/core/processor.py) logs the message with ``should_save_tracker=False``, runs the
prediction loop (each custom action an HTTP call that may take up to 300 s) and only then
``save_tracker``. A server killed in between (``kill -9``, an out-of-memory kill, a node lost)
took the shopper's message with it: nothing was stored, nothing answered it, and no client but
the project's widget (which sends an unacknowledged message again) ever sent it again.

Here each message is written to an inbox before its turn and deleted after it, and a message
found there by the next turn of its conversation is handled first (its replies go to that
turn's output channel). The one hook is ``Agent.handle_message`` (rasa/core/agent.py), the
only place where Rasa takes the conversation's lock (``lock_store.lock(sender_id)``) around
``processor.handle_message``: every channel, the REST webhook and socket.io alike, comes
through it. Rasa 3.6.21 has no pluggable point there (a lock store sees only the sender id, a
tracker store no message), so :func:`install` replaces that method, once, for every Rasa
server of the project (``bot/tracker_store.py`` calls it when Rasa loads the tracker store).

- **Only orphans are replayed.** The inbox is read inside the conversation's lock: while a
  server holds it nobody else is handling that conversation, so a message left there belongs to
  a server that stopped mid-turn. When the lock store cannot be reached (the turn runs without
  the lock, ``bot/rasa_ext/lock_store.py``) that is not known, so such a turn neither reads nor
  writes the inbox (Rasa's behaviour).
- **At least once.** A replayed turn may have run some of its actions before the server died
  (an action server finishes a call whose caller is gone): actions with side effects must be
  safe to run twice. Redeeming is (a card redeemed again by the same customer answers "already
  in your balance" and credits nothing: ``tests/actions/test_claim_code.py``). A message that
  was stored by the dead server's last save (it died between the save and the delete) is found
  in the tracker and dropped, not replayed. A message sent again by its client (the widget does
  that after a reconnect; it puts its own ``message_id`` in the metadata) replaces its copy
  here rather than running twice. A message is tried at most :data:`MAX_ATTEMPTS` times (a
  message that kills its server every time must not block its conversation for ever), and one
  left for longer than :data:`REPLAY_WITHIN_SECONDS` is dropped.
- **Sealed at rest.** The message (text and metadata, which may hold a customer token) is
  stored only sealed with the sealing key (``codes.seal_claim_code``, as the tracker store's
  sealed slots), and deleted once handled.
- **Where.** A table (``giftbot_inbox``) in the tracker store's own database: SQLite for
  ``make run``, PostgreSQL for ``make run-scaled`` and a cluster. It is in both topologies, as
  durable as the conversation it feeds, and needs no service of its own (Redis, the other
  candidate, is absent from ``make run`` and, as configured here, keeps nothing on disk).
  While that database is unreachable the turn goes on without the inbox, as before.

When the next message of the conversation comes, it first waits for the dead server's lock to
expire (``GIFTBOT_LOCK_LIFETIME``, 10 s at most) and then replays the orphan; a conversation
that never sends another message is not answered (its orphan is dropped after an hour).
Tested in ``tests/rasa_ext/test_inbox.py`` and, with a real kill, ``tests/scale/test_kill.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from rasa.core.agent import Agent
from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.events import UserUttered
from sqlalchemy.engine import Engine

from bot.settings import get_settings
from bot.wallet import codes

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""The turn that first received a message, then at most two replays."""
REPLAY_WITHIN_SECONDS = 3600
"""An orphan older than this is dropped unanswered (the shopper has long moved on)."""
PURGE_EVERY_SECONDS = 600.0
"""How often a server drops the stale messages of conversations that never came back."""
PAUSE_AFTER_FAILURE_SECONDS = 5.0
"""After the inbox's database failed, turns skip the inbox this long (no wait on each turn)."""
CLIENT_ID_KEY = "message_id"
"""Metadata key of a client's own message id (the widget's), kept when it sends again."""

metadata = sa.MetaData()
inbox_table = sa.Table(
    "giftbot_inbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("sealed", sa.Text, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
)

Process = Callable[[UserMessage], Awaitable[Any]]


@dataclass(frozen=True)
class Entry:
    """A message waiting in the inbox."""

    id: int
    key: str
    """The client's message id if it gave one, else Rasa's."""
    attempts: int
    text: str
    metadata: dict[str, Any] | None
    input_channel: str | None
    message_id: str | None

    def message(self, sender_id: str, output_channel: OutputChannel) -> UserMessage:
        """The message again, its replies going to ``output_channel``."""
        return UserMessage(
            self.text,
            output_channel,
            sender_id,
            input_channel=self.input_channel,
            message_id=self.message_id,
            metadata=self.metadata,
        )


def message_key(message: UserMessage) -> str:
    client_id = (message.metadata or {}).get(CLIENT_ID_KEY)
    if isinstance(client_id, str) and 0 < len(client_id) <= 128:
        return f"client:{client_id}"
    return f"rasa:{message.message_id}"


def create_table(engine: Engine) -> None:
    """Create the inbox table unless it exists (servers starting together may race)."""
    try:
        metadata.create_all(engine, checkfirst=True)
    except sa.exc.DBAPIError:
        if not sa.inspect(engine).has_table(inbox_table.name):
            raise


# Each statement built once, its values bound at each call: SQLAlchemy then compiles it once
# and finds it again by identity, where a statement built per call (``.values(...)``,
# ``.where(... == value)``) was built, keyed and looked up anew each time (three to five a turn).
_PUT = inbox_table.insert()
_WAITING = (
    sa.select(inbox_table)
    .where(inbox_table.c.sender_id == sa.bindparam("sender_id"))
    .order_by(inbox_table.c.id)
)
_REMOVE = inbox_table.delete().where(inbox_table.c.id == sa.bindparam("entry_id"))
_REMOVE_ALL = inbox_table.delete().where(
    inbox_table.c.id.in_(sa.bindparam("entry_ids", expanding=True))
)
_PURGE = inbox_table.delete().where(inbox_table.c.received_at < sa.bindparam("before"))
_COUNT_ATTEMPT = (
    inbox_table.update()
    .where(inbox_table.c.id == sa.bindparam("entry_id"))
    .values(attempts=inbox_table.c.attempts + 1)
)


class Inbox:
    """The inbox in one database; each method one short transaction."""

    def __init__(self, engine: Engine, sealing_key: str | None = None) -> None:
        self.engine = engine
        self.sealing_key = sealing_key or get_settings().sealing_key
        self._purge_due = 0.0
        create_table(engine)

    def put(self, message: UserMessage) -> int:
        payload = {
            "text": message.text or "",
            "metadata": message.metadata,
            "input_channel": message.input_channel,
            "message_id": message.message_id,
        }
        sealed = codes.seal_claim_code(json.dumps(payload), self.sealing_key)
        with self.engine.begin() as connection:
            result = connection.execute(
                _PUT,
                {
                    "sender_id": message.sender_id,
                    "key": message_key(message),
                    "sealed": sealed,
                    "received_at": time.time(),
                    "attempts": 1,
                },
            )
            return int(result.inserted_primary_key[0])

    def left(self, sender_id: str) -> list[Entry]:
        """The conversation's messages waiting, oldest first; any too old are dropped. A read
        and nothing more on a turn with no orphan (nearly every turn); other conversations'
        stale messages are purged every :data:`PURGE_EVERY_SECONDS`."""
        now = time.time()
        if now >= self._purge_due:
            self._purge_due = now + PURGE_EVERY_SECONDS
            with self.engine.begin() as connection:
                connection.execute(_PURGE, {"before": now - REPLAY_WITHIN_SECONDS})
        with self.engine.connect() as connection:
            rows = connection.execute(_WAITING, {"sender_id": sender_id}).all()
        stale = [row.id for row in rows if row.received_at < now - REPLAY_WITHIN_SECONDS]
        if stale:
            with self.engine.begin() as connection:
                connection.execute(_REMOVE_ALL, {"entry_ids": stale})
        return [self._entry(row) for row in rows if row.id not in stale]

    def _entry(self, row: Any) -> Entry:
        payload = json.loads(codes.unseal_claim_code(row.sealed, self.sealing_key))
        return Entry(
            id=row.id,
            key=row.key,
            attempts=row.attempts,
            text=payload["text"],
            metadata=payload.get("metadata"),
            input_channel=payload.get("input_channel"),
            message_id=payload.get("message_id"),
        )

    def count_attempt(self, entry_id: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(_COUNT_ATTEMPT, {"entry_id": entry_id})

    def remove(self, entry_id: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(_REMOVE, {"entry_id": entry_id})


class Guarded:
    """An inbox whose database failures never fail a turn: the turn goes on without it, and
    the next turns skip it for a few seconds rather than each wait on a dead database.

    Each call runs in a worker thread: a commit waits on the disk (about 10 ms on SQLite here),
    and Rasa's event loop serves the other conversations meanwhile."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.paused_until = 0.0

    async def call(self, method: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        if time.monotonic() < self.paused_until:
            return default
        try:
            return await asyncio.to_thread(method, *args)
        except sa.exc.SQLAlchemyError as error:
            logger.warning("Inbox unavailable (%s); turns go on without it", type(error).__name__)
            self.paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
            return default


async def handle_in_order(
    inbox: Guarded,
    message: UserMessage,
    process: Process,
    stored: Callable[[str, str | None], Awaitable[bool]],
) -> Any:
    """Inside the conversation's lock: the orphans of ``message``'s conversation, then
    ``message`` itself, each through ``process``. ``stored(sender, message_id)`` says whether the
    tracker store already holds that message."""
    key = message_key(message)
    for entry in await inbox.call(inbox.inbox.left, message.sender_id, default=[]):
        if entry.key == key:
            # Its client sent it again: this turn is that message.
            await inbox.call(inbox.inbox.remove, entry.id)
            continue
        if entry.attempts >= MAX_ATTEMPTS:
            logger.warning("Dropping a message that stopped %d turns", entry.attempts)
            await inbox.call(inbox.inbox.remove, entry.id)
            continue
        if await stored(message.sender_id, entry.message_id):
            # Its turn was saved; only the delete was lost.
            await inbox.call(inbox.inbox.remove, entry.id)
            continue
        logger.warning("Replaying a message whose turn stopped with its Rasa server")
        await inbox.call(inbox.inbox.count_attempt, entry.id)
        try:
            await process(entry.message(message.sender_id, message.output_channel))
        except Exception:
            logger.exception("Replaying a message failed")  # kept for the next turn, if any
            continue
        await inbox.call(inbox.inbox.remove, entry.id)

    entry_id = await inbox.call(inbox.inbox.put, message)
    try:
        result = await process(message)
    except Exception:
        # Handled here, if badly: the same failure would come back. (A cancelled or killed turn
        # raises no Exception, and its message stays for the next turn.)
        if entry_id is not None:
            await inbox.call(inbox.inbox.remove, entry_id)
        raise
    if entry_id is not None:
        await inbox.call(inbox.inbox.remove, entry_id)
    return result


def _sql_store(tracker_store: TrackerStore | None) -> SQLTrackerStore | None:
    """The SQL tracker store inside Rasa's wrappers (FailSafe-, AwaitableTrackerStore)."""
    store: Any = tracker_store
    while store is not None and not isinstance(store, SQLTrackerStore):
        store = getattr(store, "_tracker_store", None)
    return store


def inbox_of(tracker_store: TrackerStore | None) -> Guarded | None:
    """The inbox in the tracker store's database, made once per store; None: no SQL store."""
    store = _sql_store(tracker_store)
    if store is None:
        return None
    inbox: Guarded | None = getattr(store, "_giftbot_inbox", None)
    if inbox is None:
        if time.monotonic() < getattr(store, "_giftbot_inbox_retry_at", 0.0):
            return None
        try:
            inbox = Guarded(Inbox(store.engine))
        except sa.exc.SQLAlchemyError as error:
            logger.warning("Inbox unavailable (%s); turns go on without it", type(error).__name__)
            store._giftbot_inbox_retry_at = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
            return None
        store._giftbot_inbox = inbox
    return inbox


async def already_stored(
    tracker_store: TrackerStore, sender_id: str, message_id: str | None
) -> bool:
    """Whether the conversation's stored events hold the message ``message_id``."""
    tracker = await tracker_store.retrieve(sender_id)
    return tracker is not None and any(
        isinstance(event, UserUttered) and event.message_id == message_id
        for event in tracker.events
    )


ORIGINAL_HANDLE_MESSAGE = Agent.handle_message


async def handle_message(self: Agent, message: UserMessage) -> Any:
    """``Agent.handle_message`` of Rasa 3.6.21 with the inbox inside the conversation lock."""
    inbox = inbox_of(self.tracker_store) if self.is_ready() else None
    if inbox is None:
        return await ORIGINAL_HANDLE_MESSAGE(self, message)
    processor = self.processor
    assert processor is not None  # is_ready()

    async def stored(sender_id: str, message_id: str | None) -> bool:
        return await already_stored(processor.tracker_store, sender_id, message_id)

    async with self.lock_store.lock(message.sender_id) as lock:
        if not lock.tickets:  # the lock store is unreachable: no lock held, so no inbox
            return await processor.handle_message(message)
        return await handle_in_order(inbox, message, processor.handle_message, stored)


def install() -> None:
    """Put the inbox into every Rasa server of this process (idempotent)."""
    Agent.handle_message = handle_message
