"""Customer tokens: HS256 JWTs signed by the store, whose ``sub`` is the customer id."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import jwt

ALGORITHM = "HS256"
MASKED_TOKEN = "[token hidden]"  # noqa: S105 - a placeholder, not a secret
# A JWT, or any piece of one from its start: base64url of '{"' is "eyJ".
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]{4,}(?:\.[A-Za-z0-9_\-]*){0,2}")
DEFAULT_LIFETIME = timedelta(hours=12)


def mint_customer_token(
    customer_id: int, secret: str, lifetime: timedelta = DEFAULT_LIFETIME
) -> str:
    now = datetime.now(timezone.utc)
    claims = {"sub": str(customer_id), "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_customer_token(token: object, secret: str) -> int | None:
    """The customer id of a valid token; None for anything forged, expired or malformed."""
    if not isinstance(token, str) or not token:
        return None
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]}
        )
    except jwt.PyJWTError:
        return None
    subject = claims.get("sub")
    # isascii: "²" and Arabic-Indic digits are str.isdigit() too; int("²") raises.
    if not isinstance(subject, str) or not (subject.isascii() and subject.isdigit()):
        return None
    return int(subject)


def mask_tokens(text: str) -> str:
    """``text`` with every token (or start of one) hidden: a shopper who pastes theirs into
    the chat must not find it in a stored transcript or a log."""
    return _JWT.sub(MASKED_TOKEN, text)
