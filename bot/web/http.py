"""HTTP helpers every part of the web server shares: JSON errors and JSON request bodies."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def json_error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    """An HTTP error whose body is ``{"error": message}``, for a script to show as it is."""
    return kind(text=json.dumps({"error": message}), content_type="application/json")


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; anything else is a 400 that says so."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise json_error(web.HTTPBadRequest, "The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise json_error(web.HTTPBadRequest, "The body must be a JSON object.")
    return body


def string_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise json_error(web.HTTPBadRequest, f"'{name}' must be a string.")
    return value


def text_field(body: dict[str, Any], name: str, limit: int) -> str:
    """A non-empty string of at most ``limit`` characters, stripped."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise json_error(web.HTTPBadRequest, f"'{name}' must be a non-empty string.")
    if len(value) > limit:
        raise json_error(web.HTTPBadRequest, f"'{name}' can have at most {limit} characters.")
    return value.strip()
