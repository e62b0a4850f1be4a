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
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import (
    ActiveLoop,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.private_files import private_file
from bot.rasa_ext import inbox, speedups
from bot.settings import get_settings
from bot.tokens import mask_tokens
from bot.wallet import codes

# Every Rasa server of the project imports this module (endpoints.yml) before its first turn:
# Rasa 3.6.21 made cheaper per turn, same behaviour (bot/rasa_ext/speedups.py says why here).
speedups.apply()
# ... and a message survives the server handling it (bot/rasa_ext/inbox.py says why).
inbox.install()

REDACTED = "[redacted]"
SECRET_METADATA = ("customer_token",)
# Slots kept sealed at rest. claim_code is the secret itself; the others are free text a
# shopper may type anything into (and personal data besides).
SEALED_SLOTS = frozenset({"claim_code", "purchaser_name", "recipient_name", "delivery_contact"})


class RedactingSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Rasa's SQLite file (var/tracker.db) is created 0600 before SQLAlchemy opens it.
        if kwargs.get("dialect", "sqlite") == "sqlite" and kwargs.get("db", "rasa.db"):
            database = str(kwargs.get("db", "rasa.db"))
            if database != ":memory:" and not kwargs.get("host"):
                private_file(Path(database))
        super().__init__(*args, **kwargs)

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
        once more, for the paths that do not come through here.
        """
        if self.event_broker is None:
            return
        with self.session_scope() as session:
            new_events = list(self._additional_events(session, tracker))
        for event in new_events:
            self.event_broker.publish({"sender_id": tracker.sender_id, **event.as_dict()})


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

    def _follow(self, event: Event) -> None:
        if isinstance(event, SlotSet) and event.key == "requested_slot":
            self.claim_code_asked = event.value == "claim_code"
        elif (isinstance(event, ActiveLoop) and event.name is None) or isinstance(
            event, Restarted | SessionStarted | UserUttered
        ):
            self.claim_code_asked = False


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
