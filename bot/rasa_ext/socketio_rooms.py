"""socket.io rooms shared through Redis that still reach this process's own sockets when Redis
is down.

python-socketio 5.9's ``AsyncRedisManager`` sends every emit through Redis, even to a socket
connected to the very process that emits; when Redis cannot be reached it logs "Cannot publish
to redis... giving up" and the message is gone. A shopper's replies come from the process that
holds the shopper's socket, so during a Redis outage every socket.io shopper would see none.
Here an emit that cannot be published is delivered to the sockets of this process instead:
only a message for a socket on another process (an agent's message through another server) is
lost while Redis is down. Tested in tests/rasa_ext/test_socketio_rooms.py.
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
        message = {
            "method": "emit",
            "event": event,
            "data": data,
            "namespace": namespace,
            "room": room,
            "skip_sid": skip_sid,
            "callback": None,
            "host_id": self.host_id,
        }
        if await self._published(message):
            return
        logger.warning("socket.io: Redis unreachable, delivering to this process's sockets only")
        await socketio.AsyncManager.emit(self, event, data, namespace, room=room, skip_sid=skip_sid)

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
