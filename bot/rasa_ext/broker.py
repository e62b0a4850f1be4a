"""Rasa's RabbitMQ event broker, redacting every event it publishes.

Changes to Rasa 3.6.21's ``PikaEventBroker`` (rasa/core/brokers/pika.py), each tested in
``tests/rasa_ext/test_broker.py``:

- **Redaction at the broker.** ``FailSafeTrackerStore`` (rasa/core/tracker_store.py) falls back
  to an ``InMemoryTrackerStore`` when PostgreSQL fails; that store streams the raw events to the
  broker, skipping ``RedactingSQLTrackerStore``'s redaction. So every event is redacted here,
  on whichever path it arrives: no claim code or customer token ever reaches the queue.
- **One URL setting** (``GIFTBOT_BROKER_URL``, queue and exchange from the settings too), and
  the password never in a log line (Rasa logs its ``host``).
- **No shopper text in the logs.** Rasa logs each published event (the shopper's words) at
  DEBUG, and at ERROR when publishing fails; here a failure logs only its kind and count.
- **Rasa starts without RabbitMQ.** Rasa's broker tried to connect 20 times, 5 s apart, and
  then Rasa did not start. Here it connects in the background for as long as it takes, and the
  events wait in memory meanwhile (up to ``MAX_WAITING_EVENTS``).
- **Waiting events go out on the next success.** Rasa keeps events that failed to publish in
  memory and sends them when the connection is re-established; one that failed just after that
  moment waited for the next outage. Here any successful publish also sends the ones waiting.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import AbstractEventLoop
from collections import OrderedDict, deque
from typing import Any
from urllib.parse import unquote, urlsplit

from rasa.core.brokers.pika import PikaEventBroker
from rasa.shared.core.events import Event
from rasa.utils.endpoints import EndpointConfig

from bot.settings import get_settings
from bot.tracker_store import Redactor

logger = logging.getLogger(__name__)
MAX_WAITING_EVENTS = 200_000
"""Events kept in memory while RabbitMQ is unreachable (the oldest go first beyond this)."""
CONVERSATIONS_FOLLOWED = 10_000
"""Conversations whose redaction context (was the claim code just asked for?) one broker keeps."""


class RedactingPikaEventBroker(PikaEventBroker):
    """Selected in deploy/endpoints.scaled.yml; its settings come from ``bot.settings``."""

    def __init__(
        self,
        url: str | None = None,
        queues: list[str] | str | None = None,
        exchange_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        settings = get_settings()
        self._amqp_url = url or settings.broker_url
        parts = urlsplit(self._amqp_url)
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise ValueError("GIFTBOT_BROKER_URL must be an amqp:// or amqps:// URL")
        super().__init__(
            # What Rasa logs as the broker's host: the address without the credentials.
            host=f"{parts.scheme}://{parts.hostname}:{parts.port or 5672}{parts.path}",
            username=unquote(parts.username or "guest"),
            password=unquote(parts.password or "guest"),
            port=parts.port or 5672,
            queues=queues or [settings.broker_queue],
            exchange_name=exchange_name or settings.broker_exchange,
            **kwargs,
        )
        self._redactors: OrderedDict[str, Redactor] = OrderedDict()
        self._unpublished_events: deque[dict[str, Any]] = deque(maxlen=MAX_WAITING_EVENTS)

    @classmethod
    async def from_endpoint_config(
        cls,
        broker_config: EndpointConfig | None,
        event_loop: AbstractEventLoop | None = None,
    ) -> RedactingPikaEventBroker | None:
        if broker_config is None:
            return None
        broker = cls(broker_config.url, **broker_config.kwargs, event_loop=event_loop)
        broker.start_connecting()
        return broker

    def start_connecting(self) -> None:
        """Connect in the background for as long as it takes; Rasa serves meanwhile (Rasa's
        own broker tried 20 times, 5 s apart, and then Rasa did not start at all)."""
        task = self._loop.create_task(self._connect_until_connected())
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)

    async def _connect_until_connected(self) -> None:
        while True:
            try:
                await self.connect()
            except Exception as error:  # whatever RabbitMQ's state, try again
                logger.warning(
                    "RabbitMQ unreachable (%s); %d event(s) wait in memory; trying again",
                    type(error).__name__,
                    len(self._unpublished_events),
                )
                await asyncio.sleep(self._retry_delay_in_seconds)
                continue
            self._publish_unpublished_messages()
            return

    def _configure_url(self) -> str:
        return self._amqp_url

    def publish(self, event: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        redacted = redact_serialised(event, self._redactor(str(event.get("sender_id"))))
        if redacted is not None:
            super().publish(redacted, headers)

    def _redactor(self, sender_id: str) -> Redactor:
        """The conversation's redactor, following its events in the order they are published
        (so an answer to "what is the claim code?" is hidden whole, as in the tracker store)."""
        redactor = self._redactors.pop(sender_id, None) or Redactor()
        self._redactors[sender_id] = redactor
        while len(self._redactors) > CONVERSATIONS_FOLLOWED:
            self._redactors.popitem(last=False)
        return redactor

    def _publish_unpublished_messages(self, *_: Any, **__: Any) -> None:
        # These were redacted when first published: out they go as they are.
        while self._unpublished_events:
            PikaEventBroker.publish(self, self._unpublished_events.popleft())

    async def _publish(self, event: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        # Rasa's own logs the event (the shopper's text) at DEBUG, and at ERROR when it fails;
        # and it dropped the event when not connected yet: here it waits for the connection.
        if self._exchange is None:
            self._unpublished_events.append(event)
            return
        try:
            await self._exchange.publish(self._message(event, headers), "")
        except Exception as error:  # any lost connection: keep the event for the reconnection
            if self.should_keep_unpublished_messages:
                self._unpublished_events.append(event)
            logger.error(
                "Publishing an event to RabbitMQ failed (%s); %d event(s) wait in memory",
                type(error).__name__,
                len(self._unpublished_events),
            )
            if self.raise_on_failure:
                await self.close()
                raise
            return
        if self._unpublished_events:
            self._publish_unpublished_messages()

    @property
    def unpublished_count(self) -> int:
        """Events waiting in this process's memory for RabbitMQ to come back."""
        return len(self._unpublished_events)


def redact_serialised(body: dict[str, Any], redactor: Redactor) -> dict[str, Any] | None:
    """``body`` (``{"sender_id": …, **event.as_dict()}``) as ``redactor`` keeps it; None when it
    is no Rasa event, so that nothing unexamined is ever published."""
    fields = {k: v for k, v in body.items() if k != "sender_id"}
    event = Event.from_parameters(fields)
    if event is None:
        logger.error("Not publishing an unknown event type %r", body.get("event"))
        return None
    return {"sender_id": body.get("sender_id"), **redactor.redact(event).as_dict()}
