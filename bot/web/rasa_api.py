"""The console's client of Rasa's HTTP API (``rasa run --enable-api --jwt-secret KEY``).

Reading a conversation is ``GET /conversations/{id}/tracker``; everything the console does to
a conversation is events appended to its tracker, with their side effects executed so that bot
events reach the shopper through the channel they last wrote on (the widget's socket.io).

Every call carries a short-lived admin token in the ``Authorization: Bearer`` header, never a
credential in its URL (URLs end up in access logs and proxies' logs). Rasa 3.6.21's
``requires_auth`` (rasa/server.py) reads its static ``--auth-token`` only from the ``?token=``
query parameter; the header is read by its JWT path (sanic-jwt, HS256 with ``--jwt-secret``),
which accepts a token whose ``user.role`` is ``admin``. So ``make run`` enables the API with
``--jwt-secret`` alone, keyed with ``GIFTBOT_RASA_API_TOKEN``, and no static token exists.

``python -m bot.web.rasa_api`` prints such a token (valid 5 minutes) for an operator's curl.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import aiohttp
import jwt

API_TOKEN_SECONDS = 60
"""A token lives long enough for one call; each call signs a new one. (Rasa's sanic-jwt
accepts a token up to 180 seconds past its ``exp``: its default clock leeway.)"""
API_USER = "giftbot-console"


def conversation_path(conversation_id: str) -> str:
    """The conversation id as a path segment of Rasa's HTTP API.

    Rasa 3.6.21's ``/conversations/<conversation_id:path>`` routes do not unquote (Sanic's
    default), so an escaped character reaches Rasa escaped: ``telegram%3A42`` would be another
    conversation than ``telegram:42``. ``:``, ``+`` and ``@`` (in messaging platforms' ids, see
    bot/channels) are valid in a path segment and stay as they are; the rest is escaped.
    """
    return quote(conversation_id, safe=":+@")


class RasaError(Exception):
    """Rasa's HTTP API did not answer as expected; the message is one line."""


def agent_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A bot event that carries the widget's agent convention (see the README)."""
    return {"event": "bot", "text": None, "data": {"custom": {"data": payload}}}


def api_token(key: str, seconds: int = API_TOKEN_SECONDS) -> str:
    """An admin token for Rasa's HTTP API, signed with its ``--jwt-secret`` (HS256)."""
    now = int(time.time())
    claims = {"user": {"username": API_USER, "role": "admin"}, "iat": now, "exp": now + seconds}
    return jwt.encode(claims, key, algorithm="HS256")


class RasaApi:
    def __init__(self, base_url: str, key: str, session: aiohttp.ClientSession) -> None:
        self._base = base_url.rstrip("/")
        self._key = key
        self._http = session

    def _url(self, conversation_id: str, tail: str) -> str:
        return f"{self._base}/conversations/{conversation_path(conversation_id)}/{tail}"

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_token(self._key)}"}

    async def tracker(self, conversation_id: str) -> dict[str, Any]:
        try:
            async with self._http.get(
                self._url(conversation_id, "tracker"),
                params={"include_events": "ALL"},
                headers=self._auth(),
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
                params={"output_channel": "latest", "execute_side_effects": "true"},
                headers=self._auth(),
                json=events,
            ) as response:
                if response.status != 200:
                    raise RasaError(f"Rasa answered {response.status} to the console's events")
        except aiohttp.ClientError as exc:
            raise RasaError(f"the Rasa server is not reachable: {exc}") from exc


if __name__ == "__main__":
    from bot.settings import get_settings

    print(api_token(get_settings().rasa_api_token, seconds=300))
