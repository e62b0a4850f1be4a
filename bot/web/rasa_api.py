"""The console's client of Rasa's HTTP API (``rasa run --enable-api --auth-token ...``).

Reading a conversation is ``GET /conversations/{id}/tracker``; everything the console does to
a conversation is events appended to its tracker, with their side effects executed so that bot
events reach the shopper through the channel they last wrote on (the widget's socket.io).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp


class RasaError(Exception):
    """Rasa's HTTP API did not answer as expected; the message is one line."""


def agent_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A bot event that carries the widget's agent convention (see the README)."""
    return {"event": "bot", "text": None, "data": {"custom": {"data": payload}}}


class RasaApi:
    def __init__(self, base_url: str, token: str, session: aiohttp.ClientSession) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._http = session

    def _url(self, conversation_id: str, tail: str) -> str:
        return f"{self._base}/conversations/{quote(conversation_id, safe='')}/{tail}"

    async def tracker(self, conversation_id: str) -> dict[str, Any]:
        try:
            async with self._http.get(
                self._url(conversation_id, "tracker"),
                params={"token": self._token, "include_events": "ALL"},
            ) as response:
                if response.status != 200:
                    raise RasaError(f"Rasa answered {response.status} for the conversation")
                body = await response.json()
        except aiohttp.ClientError as exc:
            raise RasaError(f"the Rasa server is not reachable: {exc}") from exc
        if not isinstance(body, dict):
            raise RasaError("Rasa sent something other than a tracker")
        return body

    async def append(self, conversation_id: str, events: list[dict[str, Any]]) -> None:
        """Append ``events``; bot events are sent to the shopper's latest channel."""
        try:
            async with self._http.post(
                self._url(conversation_id, "tracker/events"),
                params={
                    "token": self._token,
                    "output_channel": "latest",
                    "execute_side_effects": "true",
                },
                json=events,
            ) as response:
                if response.status != 200:
                    raise RasaError(f"Rasa answered {response.status} to the console's events")
        except aiohttp.ClientError as exc:
            raise RasaError(f"the Rasa server is not reachable: {exc}") from exc
