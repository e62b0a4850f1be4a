"""socket.io rooms shared through Redis that reach this process's own sockets first, in order,
and still reach them when Redis is down.

python-socketio 5.9's ``AsyncRedisManager`` sends every emit through Redis, even to a socket
connected to the very process that emits. Two things follow:

- the shopper's replies (sent by the process that holds the shopper's socket) are delivered by
  the Redis listener task some time later, so they can reach the socket *after* the
  acknowledgement of the message they answer, or after a later reply sent directly;
- when Redis cannot be reached it logs "Cannot publish to redis... giving up" and the message is
  gone, so during a Redis outage every socket.io shopper would see no reply at all.

Here an emit is delivered to the room's sockets on this process at once (as python-socketio's
single-process manager does), then published through Redis for the other processes with those
sockets skipped, so nobody gets it twice. If Redis is unreachable only a message for a socket on
another process (an agent's message through another server) is lost while Redis is down.
Tested in tests/rasa_ext/test_socketio_rooms.py.
"""

from __future__ import annotations

import logging
import pickle
from typing import Any

import socketio
from redis.exceptions import RedisError  # type: ignore[import-untyped]

logger = logging.getLogger(__name__)


class LocalFallbackRedisManager(socketio.AsyncRedisManager):
    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: str | None = None,
        skip_sid: Any = None,
        callback: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("ignore_queue") or callback is not None:
            await super().emit(event, data, namespace, room, skip_sid, callback, **kwargs)
            return
        namespace = namespace or "/"
        skipped = list(skip_sid) if isinstance(skip_sid, list) else [skip_sid]
        local = []
        if namespace in self.rooms:
            local = [sid for sid, _ in self.get_participants(namespace, room) if sid not in skipped]
        await socketio.AsyncManager.emit(self, event, data, namespace, room=room, skip_sid=skipped)
        message = {
            "method": "emit",
            "event": event,
            "data": data,
            "namespace": namespace,
            "room": room,
            "skip_sid": skipped + local,
            "callback": None,
            "host_id": self.host_id,
        }
        if not await self._published(message):
            logger.warning("socket.io: Redis unreachable, delivered to this process's sockets only")

    async def _published(self, message: dict[str, Any]) -> bool:
        """Publish as python-socketio does (one reconnection), saying whether it went out."""
        for attempt in range(2):
            try:
                if attempt:
                    self._redis_connect()
                await self.redis.publish(self.channel, pickle.dumps(message))
                return True
            except RedisError:
                continue
        return False
