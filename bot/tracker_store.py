"""Rasa's SQL tracker store, minus the secrets shoppers type.

A conversation's events are kept for as long as the tracker store keeps them, and an agent
console or an event broker may read them. Before an event is stored or streamed:

- claim codes in the shopper's text and entities are masked (``[claim code hidden]``);
- the ``claim_code`` slot is sealed with the sealing key (the action server opens it again,
  e.g. for "yes, apply it" one turn after the code was given);
- the customer token in message metadata is dropped (it is a bearer credential).

The turn being processed is untouched: Rasa and the actions see what the shopper typed.
Selected in endpoints.yml with ``type: bot.tracker_store.RedactingSQLTrackerStore``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.settings import get_settings
from bot.wallet import codes

REDACTED = "[redacted]"
SECRET_METADATA = ("customer_token",)


class RedactingSQLTrackerStore(SQLTrackerStore):
    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator[Event]:
        for event in super()._additional_events(session, tracker):
            yield redact(event)

    async def _stream_new_events(
        self, event_broker: EventBroker, new_events: list[Event], sender_id: str
    ) -> None:
        await super()._stream_new_events(
            event_broker, [redact(event) for event in new_events], sender_id
        )


def redact(event: Event) -> Event:
    """A copy of ``event`` fit to keep; the event itself is not changed."""
    if isinstance(event, UserUttered):
        redacted = copy.deepcopy(event)
        redacted.text = codes.mask_claim_codes(event.text) if event.text else event.text
        redacted.entities = [_redact_entity(e) for e in event.entities]
        redacted.metadata = _redact_metadata(event.metadata)
        parse_data: dict[str, Any] = dict(redacted.parse_data)
        if parse_data.get("text"):
            parse_data["text"] = codes.mask_claim_codes(parse_data["text"])
        parse_data["entities"] = [_redact_entity(e) for e in parse_data.get("entities") or []]
        parse_data["metadata"] = _redact_metadata(parse_data.get("metadata"))
        redacted.parse_data = parse_data
        return redacted
    if isinstance(event, SlotSet):
        if event.key == "claim_code" and isinstance(event.value, str):
            sealed = codes.seal_claim_code(
                codes.unseal_claim_code(event.value, get_settings().sealing_key),
                get_settings().sealing_key,
            )
            return SlotSet(event.key, sealed, event.timestamp, event.metadata)
        if event.key == "session_started_metadata":
            return SlotSet(
                event.key, _redact_metadata(event.value), event.timestamp, event.metadata
            )
    return event


def _redact_entity(entity: dict[str, Any]) -> dict[str, Any]:
    if entity.get("entity") != "claim_code":
        return entity
    return {**entity, "value": codes.MASKED_CLAIM_CODE}


def _redact_metadata(metadata: Any) -> Any:
    if not isinstance(metadata, dict) or not any(k in metadata for k in SECRET_METADATA):
        return metadata
    return {k: (REDACTED if k in SECRET_METADATA else v) for k, v in metadata.items()}
