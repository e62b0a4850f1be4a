"""The one way the channels' platform adapters call a platform's HTTP API."""

from __future__ import annotations

from typing import Any

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=15)


class PlatformError(Exception):
    """The platform did not accept a call; the message names the call and status, no content."""


async def call(
    method: str,
    url: str,
    *,
    what: str,
    json: Any = None,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    auth: aiohttp.BasicAuth | None = None,
) -> Any:
    """The JSON answer of one API call (None when it has none); ``what`` names it in errors."""
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as http,
            http.request(method, url, json=json, data=data, headers=headers, auth=auth) as answer,
        ):
            if answer.status >= 300:
                raise PlatformError(f"{what}: the platform answered HTTP {answer.status}")
            if answer.content_type == "application/json":
                return await answer.json()
            return None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise PlatformError(f"{what}: {type(exc).__name__}") from exc
