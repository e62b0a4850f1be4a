"""One line per speed-up of bot/rasa_ext/speedups.py and of the tracker store (bot/tracker_store.py):
Rasa 3.6.21's code and the replacement timed on the same real inputs, in this process: the events
of a conversation the bench just held (read back from the assistant's tracker store) and an action
server's answer."""

from __future__ import annotations

import asyncio
import copy
import json
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bot.tracker_store  # noqa: F401 - installs the speed-ups, as in the Rasa server
from bot.rasa_ext import speedups

ROOT = Path(__file__).resolve().parents[2]


def _per_call(function: Callable[[], Any], seconds: float = 0.5) -> float:
    """Microseconds of this process's CPU per call, best of three rounds (CPU time: the machine
    may be busy with other work, which stretches the wall clock, not this)."""
    return _per_call_with_setup(lambda: None, lambda _: function(), seconds)


def _per_call_with_setup(
    prepare: Callable[[], Any], function: Callable[[Any], Any], seconds: float = 0.5
) -> float:
    """Microseconds of CPU per call of ``function(prepare())``, ``prepare`` not counted; best
    of three rounds."""
    best = float("inf")
    for _ in range(3):
        calls, spent, started = 0, 0.0, time.perf_counter()
        while time.perf_counter() - started < seconds / 3 or calls == 0:
            argument = prepare()
            began = time.process_time()
            function(argument)
            spent += time.process_time() - began
            calls += 1
        best = min(best, spent / calls * 1e6)
    return best


def longest_sender(tracker_db: Path) -> str:
    with sqlite3.connect(tracker_db) as connection:
        (sender,) = connection.execute(
            "SELECT sender_id FROM events GROUP BY sender_id ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
    return str(sender)


def stored_conversation(tracker_db: Path) -> list[dict[str, Any]]:
    """The longest conversation in a SQLite tracker store, as its stored events."""
    sender = longest_sender(tracker_db)
    with sqlite3.connect(tracker_db) as connection:
        rows = connection.execute(
            "SELECT data FROM events WHERE sender_id = ? ORDER BY id", (sender,)
        ).fetchall()
    return [json.loads(data) for (data,) in rows]


def action_response() -> dict[str, Any]:
    """What the action server answers a form's turn: slots, the loop, a response."""
    from rasa_sdk.events import ActiveLoop, SlotSet

    return {
        "events": [
            SlotSet("serial_number", "1712345678901234567"),
            SlotSet("requested_slot", "order_number"),
            ActiveLoop("balance_form"),
        ],
        "responses": [{"response": "utter_ask_balance_form_order_number", "template": None}],
    }


def _tracker_store(tracker_db: Path, work: Path) -> list[dict[str, Any]]:
    """Loading the longest conversation, and saving its last turn, with Rasa 3.6.21's
    ``SQLTrackerStore`` code and engine (and the project's redaction, as before) and with the
    store's (its statements, ujson, pooled connections, write-ahead log)."""
    import sqlalchemy as sa
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, Event

    from bot.tracker_store import RedactingSQLTrackerStore

    class AsInRasa(RedactingSQLTrackerStore):
        save = SQLTrackerStore.save  # type: ignore[assignment]
        _retrieve = SQLTrackerStore._retrieve  # type: ignore[assignment]

    sender = longest_sender(tracker_db)
    domain = Domain.load(str(ROOT / "domain.yml"))
    events = [Event.from_parameters(e) for e in stored_conversation(tracker_db)]
    last_listen = max(
        i
        for i, e in enumerate(events[:-1])
        if isinstance(e, ActionExecuted) and e.action_name == "action_listen"
    )
    last_turn = events[last_listen + 1 :]
    keep = (
        "DELETE FROM events WHERE sender_id = ? AND id > (SELECT id FROM events "
        "WHERE sender_id = ? ORDER BY id LIMIT 1 OFFSET ?)"
    )
    loop = asyncio.new_event_loop()
    figures = {}
    loaded = 0
    try:
        for name, cls in (("before", AsInRasa), ("after", RedactingSQLTrackerStore)):
            db = work / f"{name}.db"
            source, copy_to = sqlite3.connect(tracker_db), sqlite3.connect(db)
            try:
                source.backup(copy_to)  # a consistent copy while the server may be writing
            finally:
                source.close()
                copy_to.close()
            store = cls(domain, dialect="sqlite", db=str(db))
            if cls is AsInRasa:  # Rasa's engine: a connection per session, rollback journal
                store.engine.dispose()
                store.engine = sa.create_engine(f"sqlite:///{db}")
                store.sessionmaker = sa.orm.sessionmaker(bind=store.engine)
                with store.engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA journal_mode=DELETE")

            def load(store: Any = store) -> Any:
                return loop.run_until_complete(store.retrieve(sender))

            def turn(store: Any = store, db: Path = db) -> Any:
                """The conversation as its last turn loaded it, and that turn's events."""
                with sqlite3.connect(db) as connection:
                    connection.execute(keep, (sender, sender, last_listen))
                tracker = load(store)
                for event in copy.deepcopy(last_turn):
                    tracker.update(event, domain)
                return tracker

            def save(tracker: Any, store: Any = store) -> None:
                loop.run_until_complete(store.save(tracker))

            loaded = len(turn().events) - len(last_turn)
            figures[name] = (_per_call(load), _per_call_with_setup(turn, save))
            store.engine.dispose()
    finally:
        loop.close()
    return [
        {
            "name": "RedactingSQLTrackerStore.retrieve",
            "what": f"loading a stored {loaded}-event conversation (SQLite)",
            "before_us": figures["before"][0],
            "after_us": figures["after"][0],
            "per_turn": "once a turn",
        },
        {
            "name": "RedactingSQLTrackerStore.save",
            "what": f"storing a turn of {len(last_turn)} events after it (SQLite, committed)",
            "before_us": figures["before"][1],
            "after_us": figures["after"][1],
            "per_turn": "once a turn (with an event broker Rasa counted twice: to stream, to store)",
        },
    ]


def _past_states(tracker_db: Path) -> dict[str, Any]:
    """The policies' past states for one prediction at the end of the longest conversation:
    the calls the memoization policy, the rule policy (by text, then by intent) and TED make;
    with the speed-up, after a prediction at the turn before (``past_states``: kept)."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.rasa_ext import past_states

    domain = Domain.load(str(ROOT / "domain.yml"))
    tracker = DialogueStateTracker.from_dict("bench", stored_conversation(tracker_db), domain.slots)
    last_listen = max(
        i
        for i, e in enumerate(list(tracker.events)[:-1])
        if isinstance(e, ActionExecuted) and e.action_name == "action_listen"
    )
    turn_before = DialogueStateTracker.from_events(
        "bench", list(tracker.events)[: last_listen + 1], domain.slots
    )
    rule_only = rule_only_data()
    original = speedups.ORIGINALS["share_past_states_within_a_prediction"][0]
    calls = [(False, True), (False, False), (False, False), (False, True)]

    def before() -> None:
        for omit, ignore in calls:
            original(domain, tracker, omit, ignore, rule_only)

    def predict(on: DialogueStateTracker) -> None:
        with speedups.one_prediction():
            for omit, ignore in calls:
                domain.states_for_tracker_history(on, omit, ignore, rule_only)

    def the_turn_before() -> None:
        past_states.forget()
        predict(turn_before)

    return {
        "name": "share_past_states_within_a_prediction",
        "what": f"the policies' past states for one prediction, {len(tracker.events)} events "
        "(the conversation's prediction a turn before kept)",
        "before_us": _per_call(before),
        "after_us": _per_call_with_setup(the_turn_before, lambda _: predict(tracker)),
        "per_turn": "once per action predicted (about 2.4 a turn)",
    }


def _rule_first(tracker_db: Path) -> dict[str, Any]:
    """One prediction of the next action after the last message of the longest conversation,
    by the trained model's whole predict graph (TED included) and by the rule policy first."""
    from rasa.engine.constants import PLACEHOLDER_TRACKER
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.rasa_ext import rule_first

    events = stored_conversation(tracker_db)
    last_message = max(i for i, e in enumerate(events) if e["event"] == UserUttered.type_name)
    with tempfile.TemporaryDirectory(prefix="bench-model-") as storage_path:
        storage, metadata = LocalModelStorage.from_model_archive(
            Path(storage_path), ROOT / "models" / "giftbot.tar.gz"
        )
        core = metadata.predict_schema.minimal_graph_schema([metadata.core_target])
        runner = DaskGraphRunner(core, storage, ExecutionContext(core, metadata.model_id), [])
        tracker = DialogueStateTracker.from_dict(
            "bench", events[: last_message + 1], metadata.domain.slots
        )
        target = [metadata.core_target]

        plan = rule_first.plan_for(runner)
        assert plan is not None, "the trained graph is not of the shape rule_first knows"
        rule = rule_first.ORIGINAL_RUN(runner, {PLACEHOLDER_TRACKER: tracker}, [plan.rule])
        decided = rule_first.decisive(plan, rule[plan.rule], tracker)

        def before() -> None:  # in one prediction's scope, as the processor runs it
            with speedups.one_prediction():
                rule_first.ORIGINAL_RUN(runner, {PLACEHOLDER_TRACKER: tracker}, target)

        def after() -> None:
            with speedups.one_prediction():
                runner.run({PLACEHOLDER_TRACKER: tracker}, target)

        return {
            "name": "ask_the_rule_policy_first",
            "what": f"predicting the next action after a message, {len(tracker.events)} events "
            f"({'a rule decides' if decided else 'no rule decides'})",
            "before_us": _per_call(before),
            "after_us": _per_call(after),
            "per_turn": "once per action predicted (about 2.4 a turn); in the bench's "
            "conversations a rule decided every prediction",
        }


def _action_call_json(tracker_db: Path) -> dict[str, Any]:
    """Writing the body of a call to the action server at the end of the longest conversation
    (the whole conversation, as ``RemoteAction`` sends it): the json module, then ujson."""
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.load(str(ROOT / "domain.yml"))
    tracker = DialogueStateTracker.from_dict("bench", stored_conversation(tracker_db), domain.slots)
    body = RemoteAction("balance_form", None)._action_call_format(tracker, domain)
    return {
        "name": "serialise_endpoint_requests_with_ujson",
        "what": f"writing an action server call's body, {len(tracker.events)} events "
        f"({len(json.dumps(body)) // 1000} kB)",
        "before_us": _per_call(lambda: json.dumps(body)),
        "after_us": _per_call(lambda: speedups.dumps_json(body)),
        "per_turn": "once per call to the action server (1.2 a turn in the bench)",
    }


def _form_validation_body(tracker_db: Path) -> dict[str, Any]:
    """Making and writing the body of a form validation's call at the end of the longest
    conversation: the whole conversation (Rasa), then from the latest message on."""
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.load(str(ROOT / "domain.yml"))
    tracker = DialogueStateTracker.from_dict("bench", stored_conversation(tracker_db), domain.slots)
    action = RemoteAction("validate_balance_form", None)
    original = speedups.ORIGINALS["send_form_validation_the_latest_turn"]
    whole = speedups.dumps_json(original(action, tracker, domain))
    latest = speedups.dumps_json(action._action_call_format(tracker, domain))
    return {
        "name": "send_form_validation_the_latest_turn",
        "what": f"a form validation's call, {len(tracker.events)} events "
        f"({len(whole) // 1000} kB, now {len(latest) // 1000} kB; the action server parses "
        "it too)",
        "before_us": _per_call(lambda: speedups.dumps_json(original(action, tracker, domain))),
        "after_us": _per_call(
            lambda: speedups.dumps_json(action._action_call_format(tracker, domain))
        ),
        "per_turn": "once or twice on a form's turn",
    }


def _tracker_copy(tracker_db: Path) -> dict[str, Any]:
    """A copy of the longest conversation's tracker: replayed (Rasa), then copied as it is."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.load(str(ROOT / "domain.yml"))
    tracker = DialogueStateTracker.from_dict("bench", stored_conversation(tracker_db), domain.slots)
    original = speedups.ORIGINALS["copy_trackers_without_replaying"]
    return {
        "name": "copy_trackers_without_replaying",
        "what": f"a copy of the conversation's tracker, {len(tracker.events)} events",
        "before_us": _per_call(lambda: original(tracker)),
        "after_us": _per_call(tracker.copy),
        "per_turn": "once per action run (about 2.4 a turn), and when a form starts",
    }


def _form_validation_tracker(tracker_db: Path) -> dict[str, Any]:
    """The tracker a form's validation is called with, at the end of the longest conversation:
    replayed (Rasa), then copied."""
    from rasa.core.actions.forms import FormAction
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import SlotSet
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.load(str(ROOT / "domain.yml"))
    tracker = DialogueStateTracker.from_dict("bench", stored_conversation(tracker_db), domain.slots)
    action = FormAction("balance_form", None)
    candidate = [SlotSet("serial_number", "1712345678901234567")]
    original = speedups.ORIGINALS["copy_the_tracker_for_form_validation"]
    return {
        "name": "copy_the_tracker_for_form_validation",
        "what": f"the tracker a form's validation is called with, {len(tracker.events)} events",
        "before_us": _per_call(lambda: original(action, tracker, candidate, domain)),
        "after_us": _per_call(lambda: action._temporary_tracker(tracker, candidate, domain)),
        "per_turn": "once or twice on a form's turn",
    }


def _rule_policy_lines(tracker_db: Path) -> list[dict[str, Any]]:
    """The trained rule policy at the end of the longest conversation: fitting the rules to
    its states (both lookups, as a prediction does), and formatting the states for the debug
    line, with structlog as the Rasa server has it (INFO)."""
    import logging

    import structlog
    from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RulePolicy
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.log_utils import configure_structlog

    events = stored_conversation(tracker_db)
    with tempfile.TemporaryDirectory(prefix="bench-model-") as storage_path:
        storage, metadata = LocalModelStorage.from_model_archive(
            Path(storage_path), ROOT / "models" / "giftbot.tar.gz"
        )
        schema = metadata.predict_schema
        node = next(node for node in schema.nodes.values() if node.uses is RulePolicy)
        policy = RulePolicy.load(
            {**RulePolicy.get_default_config(), **node.config},
            storage,
            node.resource,
            ExecutionContext(schema, metadata.model_id),
        )
        tracker = DialogueStateTracker.from_dict("bench", events, metadata.domain.slots)
        states = policy._prediction_states(tracker, metadata.domain, False)
    keys_original = speedups.ORIGINALS["match_rules_within_their_length"]
    format_original = speedups.ORIGINALS["format_rule_states_only_for_a_debug_log"]
    lookups = [policy.lookup[RULES], policy.lookup[RULES_FOR_LOOP_UNHAPPY_PATH]]
    saved = structlog.get_config()
    configure_structlog(logging.INFO)
    try:
        formatting = (
            _per_call(lambda: format_original(states)),
            _per_call(lambda: RulePolicy.format_tracker_states(states)),
        )
    finally:
        structlog.configure(**saved)
    return [
        {
            "name": "match_rules_within_their_length",
            "what": f"fitting the {sum(map(len, lookups))} trained rules to {len(states)} past "
            "states",
            "before_us": _per_call(lambda: [keys_original(policy, k, states) for k in lookups]),
            "after_us": _per_call(lambda: [policy._get_possible_keys(k, states) for k in lookups]),
            "per_turn": "once or twice per action predicted (about 2.4 a turn)",
        },
        {
            "name": "format_rule_states_only_for_a_debug_log",
            "what": f"the rule policy's debug line of {len(states)} past states, logging at INFO",
            "before_us": formatting[0],
            "after_us": formatting[1],
            "per_turn": "once or twice per action predicted (about 2.4 a turn)",
        },
    ]


def rule_only_data() -> dict[str, Any] | None:
    """What the trained rule policy reports as rule-only slots and loops (the model's file)."""
    model = ROOT / "models" / "giftbot.tar.gz"
    if not model.exists():
        return None
    with tarfile.open(model) as archive:
        for member in archive.getmembers():
            if member.name.endswith("rule_only_data.json") and "RulePolicy" in member.name:
                data = archive.extractfile(member)
                return json.load(data) if data is not None else None
    return None


def measure(tracker_db: Path) -> list[dict[str, Any]]:
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.events import Event

    events = stored_conversation(tracker_db)
    action, answer = RemoteAction("balance_form", None), action_response()
    resolve_original = speedups.ORIGINALS["cache_event_type_resolution"]
    validate_original = speedups.ORIGINALS["cache_action_response_validator"]
    names = [event["event"] for event in events]
    return [
        {
            "name": "cache_action_response_validator",
            "what": "validating an action server's answer",
            "before_us": _per_call(lambda: validate_original(action, answer)),
            "after_us": _per_call(lambda: RemoteAction._validate_action_result(action, answer)),
            "per_turn": "once per call to the action server (a form's turn: 1-2)",
        },
        {
            "name": "cache_event_type_resolution",
            "what": f"resolving the event types of a stored {len(events)}-event conversation",
            "before_us": _per_call(lambda: [resolve_original(n) for n in names]),
            "after_us": _per_call(lambda: [Event.resolve_by_type(n) for n in names]),
            "per_turn": "each time the conversation is loaded (once a turn), and per event an "
            "action returns",
        },
        _past_states(tracker_db),
        _rule_first(tracker_db),
        _action_call_json(tracker_db),
        _form_validation_body(tracker_db),
        _tracker_copy(tracker_db),
        _form_validation_tracker(tracker_db),
        *_rule_policy_lines(tracker_db),
        *_store_figures(tracker_db),
    ]


def _store_figures(tracker_db: Path) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-store-") as work:
        return _tracker_store(tracker_db, Path(work))
