"""Account linking: a platform user proves who they are by signing in on the store's page.

The link carries a token signed with the store's token secret (HS256, its own audience, so it
is never taken for a customer token) naming a ``channel_links`` row; the row makes it single
use. The sign-in page (bot/web/link.py for the demo) reads the token and binds the user.
"""

from __future__ import annotations

from datetime import datetime

import jwt

AUDIENCE = "giftbot:account-link"
ALGORITHM = "HS256"


def mint_link_token(link_id: str, expires_at: datetime, secret: str) -> str:
    return jwt.encode({"jti": link_id, "aud": AUDIENCE, "exp": expires_at}, secret, ALGORITHM)


class LinkTokenError(Exception):
    """A link token that is forged, malformed or expired; the message is fit for the page."""


def read_link_token(token: object, secret: str) -> str:
    """The link id of a genuine, unexpired token."""
    if not isinstance(token, str) or not token or len(token) > 1000:
        raise LinkTokenError("This link is not valid. Ask the assistant for a new one.")
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], audience=AUDIENCE, options={"require": ["jti"]}
        )
    except jwt.ExpiredSignatureError:
        raise LinkTokenError("This link has expired. Ask the assistant for a new one.") from None
    except jwt.PyJWTError:
        raise LinkTokenError("This link is not valid. Ask the assistant for a new one.") from None
    return str(claims["jti"])


def link_text(url: str, minutes: int) -> str:
    return (
        f"To link this chat to your store account, open this link within {minutes} minutes "
        f"and sign in: {url}\n"
        'The link works once. To undo it later, say "unlink my account".'
    )


def unlinked_text(was_linked: bool) -> str:
    if was_linked:
        return "Done: this chat is no longer linked to your store account."
    return "This chat isn't linked to a store account."
