"""The redacting tracker store reads and saves with less work than Rasa 3.6.21's SQLTrackerStore
(bot/tracker_store.py) and stores, publishes and returns the same: the store and the same store
on Rasa's own code path (``AsInRasa``) are given the same turns, side by side, and compared.

The turns are those of the bench's 40-turn conversation as the assistant stored them
(``data/bench_conversation.json``, written by ``scripts/bench/record.py``) and a few made here
for the cases that conversation does not reach: a second session, an event timestamped before
its session began, a failed save tried again, two Rasa servers taking turns on one conversation.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

from bot import tracker_store
from bot.settings import get_settings
from bot.tracker_store import (
    SEALED_SLOTS,
    RedactingSQLTrackerStore,
    Redactor,
    events_statement,
    parse_event,
)
from bot.wallet import codes

ROOT = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).resolve().parent / "data" / "bench_conversation.json"
DOMAIN = Domain.load(str(ROOT / "domain.yml"))


class AsInRasa(RedactingSQLTrackerStore):
    """The store on Rasa 3.6.21's path: its ``save`` (stream the new events, count the stored
    ones, store the rest) and ``_retrieve``, with the project's redaction as before."""

    save = SQLTrackerStore.save  # type: ignore[assignment]
    _retrieve = SQLTrackerStore._retrieve  # type: ignore[assignment]


class RecordingBroker(EventBroker):
    """Rasa's broker interface, keeping what is published (RabbitMQ: tests/rasa_ext/test_broker.py);
    ``fail_next`` makes the next publish raise, as a broker that lost its connection may."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.fail_next = False

    def publish(self, event: dict[str, Any]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("broker gone")
        self.published.append(copy.deepcopy(event))


def _store(cls: type[RedactingSQLTrackerStore], db: Path) -> tuple[Any, RecordingBroker]:
    broker = RecordingBroker()
    return cls(DOMAIN, dialect="sqlite", db=str(db), event_broker=broker), broker


def _opened(data: dict[str, Any]) -> dict[str, Any]:
    """An event as stored, with sealed slots opened: sealing is randomised (Fernet), the value
    sealed is what must match."""
    if data.get("event") == "slot" and data.get("name") in SEALED_SLOTS:
        value = data.get("value")
        if isinstance(value, str):
            data = {**data, "value": codes.unseal_claim_code(value, get_settings().sealing_key)}
    return data


def _rows(store: RedactingSQLTrackerStore) -> list[tuple[Any, ...]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT sender_id, type_name, timestamp, intent_name, action_name, data "
                "FROM events ORDER BY id"
            )
        ).all()
    return [(*row[:5], _opened(json.loads(row[5]))) for row in rows]


def _state(tracker: DialogueStateTracker | None) -> Any:
    if tracker is None:
        return None
    state = tracker.current_state(EventVerbosity.ALL)
    state["events"] = [_opened(event) for event in state["events"]]
    state["slots"] = {
        name: _opened({"event": "slot", "name": name, "value": value})["value"]
        for name, value in state["slots"].items()
    }
    return state


async def _converse(
    store: RedactingSQLTrackerStore, sender: str, turns: Sequence[Sequence[Event]]
) -> list[Any]:
    """Each turn as Rasa's processor runs it: load (or create) the tracker, add the turn's
    events, save; what each turn loaded."""
    loaded = []
    for events in turns:
        tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
        loaded.append(_state(tracker))
        for event in events:
            tracker.update(copy.deepcopy(event), DOMAIN)
        await store.save(tracker)
    loaded.append(_state(await store.retrieve(sender)))
    loaded.append(_state(await store.retrieve_full_tracker(sender)))
    return loaded


def _recorded_turns() -> list[list[Event]]:
    return [
        [Event.from_parameters(data) for data in turn] for turn in json.loads(RECORDED.read_text())
    ]


def _made_turns() -> list[list[Event]]:
    """A claim code asked for and answered across two turns, then a second session; made
    with timestamps a second apart."""
    start = time.time() - 3600
    turns: list[list[Event]] = [
        [
            ActionExecuted("action_session_start"),
            SessionStarted(),
            ActionExecuted("action_listen"),
            UserUttered("hi", {"name": "greet", "confidence": 1.0}),
            ActionExecuted("utter_greet"),
            BotUttered("Hi! I'm the gift card assistant."),
            ActionExecuted("action_listen"),
        ],
        [
            UserUttered("my claim code doesn't work", {"name": "claim_code_not_working"}),
            ActionExecuted("claim_code_form"),
            ActiveLoop("claim_code_form"),
            SlotSet("requested_slot", "claim_code"),
            BotUttered("What is the claim code?"),
            ActionExecuted("action_listen"),
        ],
        [
            UserUttered("fvxm 5454ug e7m", {"name": "inform", "confidence": 0.4}),
            SlotSet("claim_code", "fvxm 5454ug e7m"),
            ActionExecuted("claim_code_form"),
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            ActionExecuted("action_listen"),
        ],
        [
            ActionExecuted("action_session_start"),
            SessionStarted(),
            SlotSet("claim_code", "fvxm 5454ug e7m"),
            ActionExecuted("action_listen"),
            UserUttered("hello again", {"name": "greet", "confidence": 1.0}),
            ActionExecuted("utter_greet"),
            ActionExecuted("action_listen"),
        ],
        [
            UserUttered("thanks", {"name": "thank", "confidence": 1.0}),
            ActionExecuted("utter_welcome"),
            ActionExecuted("action_listen"),
        ],
    ]
    for number, event in enumerate(e for turn in turns for e in turn):
        event.timestamp = start + number
    return turns


TURNS: dict[str, Callable[[], list[list[Event]]]] = {
    "the bench conversation": _recorded_turns,
    "a secret answer, then a second session": _made_turns,
}


@pytest.mark.anyio
@pytest.mark.parametrize("turns", TURNS.values(), ids=TURNS.keys())
async def test_a_conversation_is_stored_published_and_loaded_as_rasa_does(
    tmp_path: Path, turns: Callable[[], list[list[Event]]]
) -> None:
    fast, fast_broker = _store(RedactingSQLTrackerStore, tmp_path / "fast.db")
    rasa, rasa_broker = _store(AsInRasa, tmp_path / "rasa.db")
    conversation = turns()
    assert len(conversation) >= 5
    fast_loaded = await _converse(fast, "shopper", conversation)
    rasa_loaded = await _converse(rasa, "shopper", conversation)
    assert _rows(fast) == _rows(rasa)
    assert len(_rows(fast)) == sum(len(turn) for turn in conversation)
    assert [_opened(e) for e in fast_broker.published] == [
        _opened(e) for e in rasa_broker.published
    ]
    assert fast_loaded == rasa_loaded


@pytest.mark.anyio
async def test_a_loaded_conversation_is_saved_without_counting_it_again(tmp_path: Path) -> None:
    """What makes the save cheaper: no count of the stored events when the store loaded the
    tracker, and the turn's events in one statement (their rows are checked by the test
    above)."""
    store, _ = _store(RedactingSQLTrackerStore, tmp_path / "t.db")
    first, second = _made_turns()[:2]
    await _converse(store, "ann", [first])
    statements: list[tuple[str, Any]] = []
    sa.event.listen(
        store.engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, parameters, *rest: statements.append(
            (statement, parameters)
        ),
    )
    tracker = await store.retrieve("ann")
    assert tracker is not None
    for event in second:
        tracker.update(event, DOMAIN)
    await store.save(tracker)
    # Rasa counts the latest session's rows (a count over the session-start subquery); the
    # store asks only for the conversation's row count and highest id (its kept version).
    counts = [s for s, _ in statements if "count(" in s.lower() and "timestamp" in s.lower()]
    inserts = [p for s, p in statements if s.lstrip().upper().startswith("INSERT")]
    assert counts == []
    assert [len(rows) for rows in inserts] == [len(second)]  # one statement, a row per event


@pytest.mark.anyio
async def test_a_tracker_saved_twice_without_loading_stores_each_event_once(
    tmp_path: Path,
) -> None:
    """As the security tests save: a tracker the store never loaded, saved, grown, saved."""
    first, second = _made_turns()[:2]
    results = []
    for cls in (RedactingSQLTrackerStore, AsInRasa):
        store, broker = _store(cls, tmp_path / f"{cls.__name__}.db")
        tracker = DialogueStateTracker.from_events("bob", copy.deepcopy(first), DOMAIN.slots)
        await store.save(tracker)
        for event in copy.deepcopy(second):
            tracker.update(event, DOMAIN)
        await store.save(tracker)
        await store.save(tracker)  # nothing new
        results.append((_rows(store), [_opened(e) for e in broker.published]))
    assert results[0] == results[1]
    # Rasa counts the session from its SessionStarted, which comes after the tracker's first
    # event (action_session_start): the second save stores the first turn's last event again.
    assert len(results[0][0]) == len(first) + len(second) + 1


@pytest.mark.anyio
async def test_a_failed_save_tried_again_stores_each_event_once(tmp_path: Path) -> None:
    """The scaled store tries a failed save again; the count is then made afresh, as Rasa's."""
    first, second = _made_turns()[:2]
    results = []
    for cls in (RedactingSQLTrackerStore, AsInRasa):
        store, broker = _store(cls, tmp_path / f"{cls.__name__}.db")
        await _converse(store, "cy", [first])
        tracker = await store.retrieve("cy")
        for event in copy.deepcopy(second):
            tracker.update(event, DOMAIN)
        broker.fail_next = True
        with pytest.raises(ConnectionError):
            await store.save(tracker)
        await store.save(tracker)
        results.append((_rows(store), [_opened(e) for e in broker.published]))
    assert results[0] == results[1]
    assert len(results[0][0]) == len(first) + len(second)


@pytest.mark.anyio
async def test_two_servers_taking_turns_store_what_one_server_stores(tmp_path: Path) -> None:
    """The scaled topology: a conversation's turns go to either Rasa server (one at a time, under
    the conversation's lock); each server's store loads what the other stored, not what it
    kept from its own last turn."""
    conversation = _recorded_turns()
    one, _ = _store(AsInRasa, tmp_path / "one.db")
    loaded_by_one = await _converse(one, "dee", conversation)
    first, _ = _store(RedactingSQLTrackerStore, tmp_path / "shared.db")
    other, _ = _store(RedactingSQLTrackerStore, tmp_path / "shared.db")
    kept, loaded = [], []  # the trackers stay alive, as a server's may between turns
    for number, events in enumerate(conversation):
        store = (first, other)[number % 2]
        tracker = await store.get_or_create_tracker("dee", append_action_listen=False)
        loaded.append(_state(tracker))
        for event in events:
            tracker.update(copy.deepcopy(event), DOMAIN)
        await store.save(tracker)
        kept.append(tracker)
    assert _rows(first) == _rows(one)
    assert loaded == loaded_by_one[: len(conversation)]


@pytest.mark.anyio
async def test_events_timestamped_before_their_session_are_counted_as_rasa_counts(
    tmp_path: Path,
) -> None:
    """Rasa counts a session's events by timestamp: an event older than the session's start is
    stored but not counted, so Rasa stores the tracker's last event again on the next save.
    The store does what Rasa does."""
    first = _made_turns()[0]
    now = time.time()
    results = []
    for cls in (RedactingSQLTrackerStore, AsInRasa):
        store, _ = _store(cls, tmp_path / f"{cls.__name__}.db")
        await _converse(store, "eve", [first])
        tracker = await store.retrieve("eve")
        late = UserUttered("hello", {"name": "greet"}, timestamp=first[0].timestamp - 60)
        tracker.update(late, DOMAIN)
        await store.save(tracker)
        tracker.update(ActionExecuted("utter_greet", timestamp=now), DOMAIN)
        await store.save(tracker)
        results.append(_rows(store))
    assert results[0] == results[1]
    assert len(results[0]) == len(first) + 3  # Rasa stored the early message twice


def test_the_redaction_context_read_from_the_latest_event_is_the_one_followed_from_the_start() -> (
    None
):
    """``save`` reads whether the claim code was just asked for from the stored events newest
    first (``Redactor.observe_latest``), back to the latest one that decides it; it is what
    following every event from the start (``Redactor.observe``) gives, after every event of the
    recorded conversation and of the made one."""
    for turns in (_recorded_turns(), _made_turns()):
        events = [event for turn in turns for event in turn]
        asked = []
        for end in range(len(events) + 1):
            forward, backward = Redactor(), Redactor()
            forward.observe(events[:end])
            backward.observe_latest(reversed(events[:end]))
            assert backward.claim_code_asked == forward.claim_code_asked
            asked.append(forward.claim_code_asked)
        assert True in asked and False in asked


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_the_load_statement_selects_the_rows_of_rasas_query(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``events_statement`` against Rasa 3.6.21's ``_event_query``, on SQLite and PostgreSQL:
    two sessions, events stamped at their session's very start and before it, a conversation
    with no session start, another sender's rows in between, an unknown sender."""
    if backend == "sqlite":
        store = RedactingSQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "t.db"))
    else:
        store = RedactingSQLTrackerStore(DOMAIN, host=request.getfixturevalue("pg_schema_url"))
    rows = [
        ("a", "action", 1.0), ("a", SessionStarted.type_name, 2.0), ("b", "user", 2.5),
        ("a", "user", 2.0), ("a", "bot", 3.0), ("a", SessionStarted.type_name, 5.0),
        ("a", "slot", 4.0), ("a", "user", 5.0), ("b", "bot", 6.0), ("a", "bot", 7.0),
    ]  # fmt: skip
    table = store.SQLEvent.__table__
    with store.session_scope() as session:
        session.execute(
            table.insert(),
            [
                {"sender_id": s, "type_name": t, "timestamp": ts, "data": f"{s}-{n}"}
                for n, (s, t, ts) in enumerate(rows)
            ],
        )
        session.commit()
    try:
        with store.session_scope() as session:
            for sender, everything in itertools.product(["a", "b", "nobody"], [False, True]):
                ours = (
                    session.execute(
                        events_statement(table, latest_session=not everything),
                        {"sender_id": sender},
                    )
                    .scalars()
                    .all()
                )
                rasas = [
                    data
                    for (data,) in store._event_query(session, sender, everything)
                    .with_entities(store.SQLEvent.data)
                    .all()
                ]
                assert ours == rasas, (sender, everything)
        with store.session_scope() as session:  # the cases are not all alike
            latest = session.execute(events_statement(table, True), {"sender_id": "a"})
            assert latest.scalars().all() == ["a-5", "a-7", "a-9"]
    finally:
        store.engine.dispose()


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_a_stored_event_is_read_as_the_json_module_reads_it(value: Any) -> None:
    """ujson, or the json module where ujson refuses (integers beyond 64 bits)."""
    for stored in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        parsed = parse_event(stored)
        assert parsed == json.loads(stored)
        assert json.dumps(parsed) == json.dumps(json.loads(stored))  # floats' bits, -0.0 too


def test_every_recorded_event_is_read_as_the_json_module_reads_it() -> None:
    for turn in json.loads(RECORDED.read_text()):
        for event in turn:
            stored = json.dumps(event)
            assert parse_event(stored) == json.loads(stored)


@pytest.mark.anyio
async def test_a_sqlite_store_keeps_a_write_ahead_log_as_durable_as_before(tmp_path: Path) -> None:
    store, _ = _store(RedactingSQLTrackerStore, tmp_path / "tracker.db")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    tracker = DialogueStateTracker.from_events("shopper", _made_turns()[0], DOMAIN.slots)
    await store.save(tracker)
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["tracker.db", "tracker.db-shm", "tracker.db-wal"]
    assert {f.stat().st_mode & 0o777 for f in files} == {0o600}
    store.engine.dispose()


def _statements_of(store: RedactingSQLTrackerStore) -> list[str]:
    seen: list[str] = []
    sa.event.listen(
        store.engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: seen.append(statement),
    )
    return seen


@pytest.mark.anyio
async def test_a_conversation_saved_here_is_loaded_from_memory_as_the_database_has_it(
    tmp_path: Path,
) -> None:
    """The next turn's load replays the kept session instead of reading its rows; the tracker
    is the one a load from the database makes (another store on the same file), turn by turn
    through the recorded conversation."""
    store, _ = _store(RedactingSQLTrackerStore, tmp_path / "t.db")
    reader, _ = _store(RedactingSQLTrackerStore, tmp_path / "t.db")
    statements = _statements_of(store)
    read_rows = []
    for events in _recorded_turns():
        statements.clear()
        tracker = await store.get_or_create_tracker("eve", append_action_listen=False)
        fresh = await reader.retrieve("eve")
        if fresh is not None:  # nothing stored before the first turn
            assert _state(tracker) == _state(fresh)
        read_rows.append(any("events.data" in s for s in statements))
        for event in events:
            tracker.update(copy.deepcopy(event), DOMAIN)
        await store.save(tracker)
    # Read: the first turn (nothing stored yet) and the one after it, whose turn started the
    # session (a new session is loaded from the database); every later turn came from memory.
    assert read_rows[:2] == [True, True] and not any(read_rows[2:])


@pytest.mark.anyio
async def test_a_deletion_or_a_new_session_is_read_from_the_database(tmp_path: Path) -> None:
    store, _ = _store(RedactingSQLTrackerStore, tmp_path / "t.db")
    first, second, third, fourth = _made_turns()[:4]
    await _converse(store, "fay", [first, second])
    assert "fay" in store._kept
    with store.engine.begin() as connection:  # an erasure of the conversation's oldest row
        connection.exec_driver_sql(
            "DELETE FROM events WHERE id = (SELECT min(id) FROM events WHERE sender_id = 'fay')"
        )
    reader, _ = _store(RedactingSQLTrackerStore, tmp_path / "t.db")
    expected = await reader.retrieve("fay")
    assert _state(await store.retrieve("fay")) == _state(expected)
    # _made_turns' fourth turn starts a second session: Rasa's load then holds only that one.
    await _converse(store, "fay", [third])
    assert "fay" in store._kept
    await _converse(store, "fay", [fourth])
    assert "fay" not in store._kept
    assert _state(await store.retrieve("fay")) == _state(await reader.retrieve("fay"))


@pytest.mark.anyio
async def test_with_the_check_on_a_kept_session_that_differs_fails_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test suite's servers run with ``GIFTBOT_TRACKER_CACHE_CHECK``: were an event kept in
    memory ever changed in place, the turn would fail rather than go on from it."""
    monkeypatch.setenv("GIFTBOT_TRACKER_CACHE_CHECK", "1")
    get_settings.cache_clear()
    try:
        store, _ = _store(RedactingSQLTrackerStore, tmp_path / "t.db")
    finally:  # the other tests' settings stay as they were
        monkeypatch.delenv("GIFTBOT_TRACKER_CACHE_CHECK")
        get_settings.cache_clear()
    await _converse(store, "gus", _made_turns()[:2])
    assert await store.retrieve("gus") is not None  # the same: loads
    kept_message = next(e for e in store._kept["gus"].image if isinstance(e, UserUttered))
    kept_message.text = "changed in place"
    with pytest.raises(RuntimeError, match="differs from the database"):
        await store.retrieve("gus")


@pytest.mark.anyio
async def test_only_the_most_recent_conversations_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracker_store, "KEPT_CONVERSATIONS", 2)
    store, _ = _store(RedactingSQLTrackerStore, tmp_path / "t.db")
    for sender in ("a", "b", "c"):
        await _converse(store, sender, _made_turns()[:2])
    assert list(store._kept) == ["b", "c"]
