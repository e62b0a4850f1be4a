"""Rasa's SQL tracker store, minus the secrets shoppers type.

A conversation's events are kept for as long as the tracker store keeps them, and an agent
console or an event broker may read them. Before an event is stored or streamed:

- everything in the shopper's text that could be a claim code is masked
  (``codes.mask_claim_codes``: whatever ``parse_claim_code`` accepts), and when the assistant
  had just asked for the claim code, the whole answer is, even if it does not parse;
- entities overlapping a masked stretch are dropped (DIET may tag a code's last group as a
  ``person``), and a ``claim_code`` entity keeps only its type;
- the ``claim_code`` slot and the free-text slots (names, addresses: a claim code typed there
  must not land in clear) are sealed with the sealing key; the action server opens them again
  (``actions.context.slot_text``), e.g. for "yes, apply it" one turn after the code was given;
- the customer token in message metadata is dropped (it is a bearer credential), and a token
  pasted into the text is masked (``tokens.mask_tokens``).

The turn being processed is untouched: Rasa and the actions see what the shopper typed.
Selected in endpoints.yml with ``type: bot.tracker_store.RedactingSQLTrackerStore``; an event
broker redacts with the same :class:`Redactor`.

It also does less work per turn than Rasa 3.6.21's ``SQLTrackerStore`` for the same result
(``retrieve`` and ``save`` below say how; tests/rasa_ext/test_tracker_store_speed.py compares
the two on recorded conversations, docs/performance.md has the figures).
"""

from __future__ import annotations

import collections
import copy
import itertools
import json
import logging
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import ujson
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import (
    ActiveLoop,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
    deserialise_events,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from bot.private_files import private_file
from bot.rasa_ext import inbox, model_loading, speedups
from bot.settings import get_settings
from bot.tokens import mask_tokens
from bot.wallet import codes, db

# Every Rasa server of the project imports this module (endpoints.yml) before its first turn:
# Rasa 3.6.21 made cheaper per turn, same behaviour (bot/rasa_ext/speedups.py says why here).
speedups.apply()
# ... and a message survives the server handling it (bot/rasa_ext/inbox.py says why).
inbox.install()
# ... and its TensorFlow models load without tracing training (bot/rasa_ext/model_loading.py).
model_loading.install()

CACHE_DIFFERS = "A conversation kept in memory differs from the database"
"""Logged, and raised, by a check of the kept conversations (``tracker_cache_check``)."""
KEPT_CONVERSATIONS = 256
"""Conversations whose latest session a Rasa server keeps in memory between turns (the most
recently saved). Measured: the server's RSS after make bench's runs (124 conversations of 10
to 40 turns) was 961 MB with them kept, 918 MB before, so about 0.35 MB a conversation."""
REDACTED = "[redacted]"
SECRET_METADATA = ("customer_token",)
# Slots kept sealed at rest. claim_code is the secret itself; the others are free text a
# shopper may type anything into (and personal data besides).
SEALED_SLOTS = frozenset({"claim_code", "purchaser_name", "recipient_name", "delivery_contact"})


# Rasa's own logger for what this store logs as Rasa 3.6.21's SQLTrackerStore did.
rasa_logger = logging.getLogger("rasa.core.tracker_store")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Stored:
    """What the database holds of one tracker object this store loaded or saved: the number
    Rasa 3.6.21's save would count (the events of the conversation's latest session), and the
    timestamp of that session's ``SessionStarted`` (None: the conversation has none)."""

    tracker: weakref.ref[DialogueStateTracker]
    events: int
    session_start: float | None
    image: tuple[Event, ...] | None = None
    """Those events as a load from the database makes them (redacted, deserialised), when
    known: what :class:`_Kept` holds once the tracker is saved."""


@dataclass(frozen=True)
class _Kept:
    """A conversation's latest session as this store last wrote it (see ``_retrieve``)."""

    version: tuple[int, int]
    """The conversation's row count and highest row id in the database then."""
    image: tuple[Event, ...]


class RedactingSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Rasa's SQLite file (var/tracker.db) is created 0600 before SQLAlchemy opens it.
        if kwargs.get("dialect", "sqlite") == "sqlite" and kwargs.get("db", "rasa.db"):
            database = str(kwargs.get("db", "rasa.db"))
            if database != ":memory:" and not kwargs.get("host"):
                private_file(Path(database))
        super().__init__(*args, **kwargs)
        engine: sa.engine.Engine = self.engine  # type: ignore[has-type]
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            self.engine = pooled_sqlite_engine(engine)
            self.sessionmaker = sa.orm.sessionmaker(bind=self.engine)
        self._stored: dict[str, _Stored] = {}
        self._statements: dict[bool, sa.sql.Select] = {}
        table = self.SQLEvent.__table__  # the row count and highest id, for the kept ones
        self._version_statement = sa.select(sa.func.count(), sa.func.max(table.c.id)).where(
            table.c.sender_id == sa.bindparam("sender_id")
        )
        self._kept: collections.OrderedDict[str, _Kept] = collections.OrderedDict()
        self._check_kept = get_settings().tracker_cache_check

    async def _retrieve(
        self, sender_id: str, fetch_events_from_all_sessions: bool
    ) -> DialogueStateTracker | None:
        """Rasa 3.6.21's ``SQLTrackerStore._retrieve``: the same rows of the same query, in the
        same order, replayed into a tracker; but only their ``data`` column is read (Rasa built
        an ORM object per row and used nothing else of it), by a statement built once rather
        than an ORM query per call (:func:`events_statement`), parsed by ujson
        (:func:`parse_event`); and the number of rows read is remembered for ``save``.

        And the conversation this store saved last is not read again: the latest session, as a
        load makes it (the stored events, redacted, deserialised), is kept after each save,
        with the conversation's row count and highest row id then. A load asks the database
        for those two numbers; while they are the same, nothing has been stored or deleted for
        the conversation since (rows are only ever added, under the conversation's lock, and a
        deletion changes the count), and the kept events are replayed instead of read, parsed
        and deserialised again: a turn's load costs the same at turn 40 as at turn 4 but for
        the replay. Another server's turn, a new session, a deletion: the numbers differ and
        the load reads the database. The events are shared with the trackers made from them,
        as a load's are with its tracker: nothing changes an event once made. The test suite's
        servers check every such load against the database (``GIFTBOT_TRACKER_CACHE_CHECK``)."""
        statement = self._statements.get(fetch_events_from_all_sessions)
        if statement is None:
            table = self.SQLEvent.__table__
            statement = events_statement(table, latest_session=not fetch_events_from_all_sessions)
            self._statements[fetch_events_from_all_sessions] = statement
        kept = None if fetch_events_from_all_sessions else self._kept.get(sender_id)
        image: tuple[Event, ...] | None = None
        with self.session_scope() as session:
            if kept is not None and self._version(session, sender_id) == kept.version:
                self._kept.move_to_end(sender_id)
                if self._check_kept:
                    self._check(session, statement, sender_id, kept)
                image = kept.image
                count = len(image)
            else:
                rows = session.execute(statement, {"sender_id": sender_id}).scalars().all()
                count = len(rows)
        if image is None:
            events = stored_events(rows)
            image = tuple(events) if count == len(events) else None
        else:
            events = list(image)
        if self.domain and len(events) > 0:
            rasa_logger.debug(f"Recreating tracker from sender id '{sender_id}'")
            tracker = DialogueStateTracker.from_events(sender_id, events, self.domain.slots)
            if not fetch_events_from_all_sessions:
                self._remember(tracker, count, _latest_session_start(tracker.events), image)
            return tracker
        rasa_logger.debug(
            f"Can't retrieve tracker matching sender id '{sender_id}' from SQL storage. "
            f"Returning `None` instead."
        )
        return None

    def _version(self, session: Any, sender_id: str) -> tuple[int, int]:
        """The conversation's row count and highest row id (0, 0 when it has none)."""
        count, highest = session.execute(self._version_statement, {"sender_id": sender_id}).one()
        return int(count), int(highest or 0)

    def _check(self, session: Any, statement: Any, sender_id: str, kept: _Kept) -> None:
        rows = session.execute(statement, {"sender_id": sender_id}).scalars().all()
        loaded = stored_events(rows)
        if [_canonical(e) for e in loaded] != [_canonical(e) for e in kept.image]:
            logger.critical(CACHE_DIFFERS)
            raise RuntimeError(CACHE_DIFFERS)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Rasa 3.6.21's ``SQLTrackerStore.save``: stream the new events to the broker, then
        store them; redacted, once for both, following the conversation's redaction context
        from its latest event that sets it (not from its start), and stored in one statement.

        Rasa finds the new events by counting the stored events of the conversation's latest
        session (a query per save, and one more to stream them) and skipping as many of the
        tracker's. Counted once per tracker instead: a tracker this store loaded (or saved)
        holds that many already, and a conversation is processed under its lock (one Rasa
        server at a time, also with several on PostgreSQL), so nothing else has stored events
        for it since: the count Rasa would make is the one remembered. Saving a tracker the
        store has not seen, or after a failed save (which may have stored something: the
        scaled store tries again), counts as Rasa does.
        """
        known = self._known(tracker)
        self._stored.pop(tracker.sender_id, None)  # until this save is committed
        self._kept.pop(tracker.sender_id, None)
        with self.session_scope() as session:
            stored = known.events if known is not None else self._count_stored(session, tracker)
            new_events = list(itertools.islice(tracker.events, stored, len(tracker.events)))
            redactor = Redactor()
            stored_newest_first = itertools.islice(
                reversed(tracker.events), max(len(tracker.events) - stored, 0), None
            )
            redactor.observe_latest(stored_newest_first)
            kept = [redactor.redact(event) for event in new_events]
            if self.event_broker is not None:
                for event in kept:
                    self.event_broker.publish({"sender_id": tracker.sender_id, **event.as_dict()})
            else:
                rasa_logger.debug("No event broker configured. Skipping streaming events.")
            rows = []
            for event in kept:
                data = event.as_dict()
                rows.append(
                    {
                        "sender_id": tracker.sender_id,
                        "type_name": event.type_name,
                        "timestamp": data.get("timestamp"),
                        "intent_name": data.get("parse_data", {})
                        .get("intent", {})
                        .get(INTENT_NAME_KEY),
                        "action_name": data.get("name"),
                        "data": json.dumps(data),
                    }
                )
            if rows:  # Rasa's rows, in one statement rather than an ORM object each
                session.execute(self.SQLEvent.__table__.insert(), rows)
            session_start = known.session_start if known is not None else None
            same_session = (known is not None or stored == 0) and _same_session(
                new_events, session_start
            )
            base = () if stored == 0 else known.image if known is not None else None
            version = self._version(session, tracker.sender_id) if same_session else None
            session.commit()
        rasa_logger.debug(f"Tracker with sender_id '{tracker.sender_id}' stored to database")
        if same_session:
            # What Rasa would count next: the same session, grown by what was just stored.
            image = None
            if base is not None and version is not None:
                added = stored_events(row["data"] for row in rows)
                image = (*base, *added) if len(added) == len(rows) else None
            self._remember(tracker, stored + len(new_events), session_start, image)
            if image is not None and version is not None:
                self._keep(tracker.sender_id, _Kept(version, image))

    def _count_stored(self, session: Any, tracker: DialogueStateTracker) -> int:
        """Rasa 3.6.21's count of a conversation's stored events (its latest session)."""
        return int(
            self._event_query(
                session, tracker.sender_id, fetch_events_from_all_sessions=False
            ).count()
        )

    def _known(self, tracker: DialogueStateTracker) -> _Stored | None:
        stored = self._stored.get(tracker.sender_id)
        if stored is None or stored.tracker() is not tracker:
            return None
        return stored

    def _remember(
        self,
        tracker: DialogueStateTracker,
        events: int,
        session_start: float | None,
        image: tuple[Event, ...] | None = None,
    ) -> None:
        sender_id = tracker.sender_id
        stored_map = self._stored

        def forget(reference: weakref.ref[DialogueStateTracker]) -> None:
            entry = stored_map.get(sender_id)
            if entry is not None and entry.tracker is reference:
                del stored_map[sender_id]

        stored_map[sender_id] = _Stored(weakref.ref(tracker, forget), events, session_start, image)

    def _keep(self, sender_id: str, kept: _Kept) -> None:
        self._kept[sender_id] = kept
        self._kept.move_to_end(sender_id)
        while len(self._kept) > KEPT_CONVERSATIONS:
            self._kept.popitem(last=False)

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator[Event]:
        new_events = list(super()._additional_events(session, tracker))
        redactor = Redactor()
        redactor.observe(list(tracker.events)[: len(tracker.events) - len(new_events)])
        for event in new_events:
            yield redactor.redact(event)

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Publish this turn's events, redacted with their conversation's context.

        Rasa 3.6.21's ``TrackerStore.stream_events`` retrieves the whole tracker again to find
        the new events and publishes them as they are; here they are found as ``save`` finds
        them (by counting the stored rows) and redacted in order, so an answer to "what is the
        claim code?" is hidden on the queue too. The broker (bot/rasa_ext/broker.py) redacts
        once more, for the paths that do not come through here. (``save`` streams its new
        events itself; this is for callers of Rasa's API.)
        """
        if self.event_broker is None:
            return
        with self.session_scope() as session:
            new_events = list(self._additional_events(session, tracker))
        for event in new_events:
            self.event_broker.publish({"sender_id": tracker.sender_id, **event.as_dict()})


def pooled_sqlite_engine(engine: sa.engine.Engine) -> sa.engine.Engine:
    """``make run``'s SQLite tracker store (var/tracker.db) with its connections kept open, in
    write-ahead-log mode. Rasa 3.6.21's engine (SQLAlchemy 1.4's default for a SQLite file)
    opens a connection for every session and closes it after, about five a turn (a load, a
    save, the inbox's read and two writes: bot/rasa_ext/inbox.py), each ~0.7 ms of CPU; and
    SQLite's rollback journal syncs the disk two or three times a commit and makes a reader
    wait while another connection commits, while 20 shoppers' turns interleave. Here the
    connections are pooled as the wallet's are (``db.sqlite_file_engine``: each is used by one
    thread at a time, the inbox's worker threads included, hence ``check_same_thread``) and
    the file keeps a write-ahead log (SQLite records the mode in the file): a commit syncs
    once and reads do not wait for writes. As durable as before: synchronous stays FULL, so a
    committed turn survives a power cut. The -wal and -shm files take the database's 0600."""
    pooled = db.sqlite_file_engine(engine.url)
    engine.dispose()
    with pooled.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    return pooled


def _canonical(event: Event) -> str:
    return json.dumps(event.as_dict(), sort_keys=True)


def events_statement(table: sa.Table, latest_session: bool) -> sa.sql.Select:
    """The ``data`` of the rows Rasa 3.6.21's ``SQLTrackerStore._event_query`` selects for the
    bound ``sender_id``, in its order (by id): with ``latest_session``, those from the latest
    ``SessionStarted`` on (all of them if there is none). Rasa joins the one-row subquery of
    that timestamp; a scalar subquery compared in the WHERE clause selects the same rows."""
    sender_id = sa.bindparam("sender_id")
    query = sa.select(table.c.data).where(table.c.sender_id == sender_id)
    if latest_session:
        session_start = (
            sa.select(sa.func.max(table.c.timestamp))
            .where(
                table.c.sender_id == sender_id,
                table.c.type_name == SessionStarted.type_name,
            )
            .scalar_subquery()
        )
        query = query.where(sa.or_(table.c.timestamp >= session_start, session_start.is_(None)))
    return query.order_by(table.c.id)


def stored_events(rows: Iterable[str]) -> list[Event]:
    """Stored events (their JSON) as a load makes them."""
    return deserialise_events([parse_event(data) for data in rows])


def parse_event(data: str) -> Any:
    """A stored event's JSON, read by ujson (about twice as fast as the json module on these
    rows); what ujson refuses (an integer beyond 64 bits, say) is read by the json module."""
    try:
        return ujson.loads(data)
    except (ValueError, OverflowError):
        return json.loads(data)


def _latest_session_start(events: Iterable[Event]) -> float | None:
    """The timestamp Rasa 3.6.21's query takes as the session's start (the latest stored
    ``SessionStarted``), from the events it loaded: that event is always among them."""
    starts = [event.timestamp for event in events if isinstance(event, SessionStarted)]
    return max(starts) if starts else None


def _same_session(new_events: list[Event], session_start: float | None) -> bool:
    """Whether Rasa's next count takes in every event just stored: none starts a session and,
    when one has started, none is timestamped before its start (Rasa counts by timestamp)."""
    if any(isinstance(event, SessionStarted) for event in new_events):
        return False
    return session_start is None or all(event.timestamp >= session_start for event in new_events)


class Redactor:
    """Redacts a conversation's events in order, remembering whether the assistant has just
    asked for the claim code (so the next message is secret as a whole)."""

    def __init__(self) -> None:
        self.claim_code_asked = False

    def observe(self, events: Iterable[Event]) -> None:
        """Follow events already redacted (or stored) without copying them."""
        for event in events:
            self._follow(event)

    def redact(self, event: Event) -> Event:
        """A copy of ``event`` fit to keep; the event itself is not changed."""
        secret_answer = isinstance(event, UserUttered) and self.claim_code_asked
        self._follow(event)
        return redact(event, secret_answer=secret_answer)

    def observe_latest(self, newest_first: Iterable[Event]) -> None:
        """``observe`` of the same events given newest first, reading only back to the latest
        one that sets the context: each such event sets it whatever came before."""
        for event in newest_first:
            if _sets_context(event):
                self._follow(event)
                return

    def _follow(self, event: Event) -> None:
        if _sets_context(event):
            # Asked for the claim code, or (a new message, a session, a loop ended) not.
            self.claim_code_asked = isinstance(event, SlotSet) and event.value == "claim_code"


def _sets_context(event: Event) -> bool:
    """Whether ``event`` sets the redaction context, whatever it was before."""
    return (
        (isinstance(event, SlotSet) and event.key == "requested_slot")
        or (isinstance(event, ActiveLoop) and event.name is None)
        or isinstance(event, Restarted | SessionStarted | UserUttered)
    )


def redact(event: Event, *, secret_answer: bool = False) -> Event:
    """A copy of ``event`` fit to keep. ``secret_answer``: the message answers a request for
    the claim code, so none of its text or entities is kept."""
    if isinstance(event, UserUttered):
        return _redact_user_message(event, secret_answer)
    if isinstance(event, SlotSet):
        if event.key in SEALED_SLOTS and isinstance(event.value, str):
            key = get_settings().sealing_key
            sealed = codes.seal_claim_code(codes.unseal_claim_code(event.value, key), key)
            return SlotSet(event.key, sealed, event.timestamp, event.metadata)
        if event.key == "session_started_metadata":
            return SlotSet(
                event.key, _redact_metadata(event.value), event.timestamp, event.metadata
            )
    return event


def _redact_user_message(event: UserUttered, secret_answer: bool) -> UserUttered:
    redacted = copy.deepcopy(event)
    text = event.text or ""
    spans = [(0, len(text))] if secret_answer else codes.claim_code_spans(text)
    if text:
        redacted.text = (
            codes.MASKED_CLAIM_CODE if secret_answer else mask_tokens(codes.mask_claim_codes(text))
        )
    redacted.entities = _redact_entities(event.entities, spans, secret_answer)
    redacted.metadata = _redact_metadata(event.metadata)
    parse_data: dict[str, Any] = dict(redacted.parse_data)
    if parse_data.get("text"):
        parse_data["text"] = redacted.text
    parse_data["entities"] = _redact_entities(
        parse_data.get("entities") or [], spans, secret_answer
    )
    parse_data["metadata"] = _redact_metadata(parse_data.get("metadata"))
    redacted.parse_data = parse_data
    return redacted


def _redact_entities(
    entities: list[dict[str, Any]], spans: list[tuple[int, int]], secret_answer: bool
) -> list[dict[str, Any]]:
    """Entities fit to keep: a claim code keeps only its type; any other entity that overlaps
    a masked stretch (or a whole secret answer) is dropped."""
    kept = []
    for entity in entities:
        if entity.get("entity") == "claim_code":
            kept.append({**entity, "value": codes.MASKED_CLAIM_CODE})
        elif not secret_answer and not _overlaps(entity, spans):
            kept.append(entity)
    return kept


def _overlaps(entity: dict[str, Any], spans: list[tuple[int, int]]) -> bool:
    start, end = entity.get("start"), entity.get("end")
    if not isinstance(start, int) or not isinstance(end, int):
        return bool(spans)  # no position: it may be anywhere
    return any(start < span_end and span_start < end for span_start, span_end in spans)


def _redact_metadata(metadata: Any) -> Any:
    if not isinstance(metadata, dict) or not any(k in metadata for k in SECRET_METADATA):
        return metadata
    return {k: (REDACTED if k in SECRET_METADATA else v) for k, v in metadata.items()}
