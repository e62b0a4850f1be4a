"""Support agents of the handoff console: usernames, the password policy, the password hash.

Passwords are hashed with argon2id (argon2-cffi's defaults: RFC 9106's low-memory profile).
The store keeps only the hash; nothing here returns, prints or logs a password or a hash.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 10
# Bounds the work one sign-in attempt can ask of the server.
MAX_PASSWORD_LENGTH = 1024
MIN_DISTINCT_CHARACTERS = 5
# Sign-in throttling, per account AND client: this many failures in a row from one client lock
# that client (not the agent) out for SIGN_IN_LOCKOUT after the last of them, so a stranger
# cannot lock an agent out by guessing from elsewhere.
MAX_FAILED_SIGN_INS = 5
SIGN_IN_LOCKOUT = timedelta(minutes=15)
# The account's ceiling over every client, with the same window: it bounds a guesser who
# spreads attempts over many addresses (a botnet, an IPv6 range) to 50 guesses per 15 minutes,
# about 4,800 a day, against argon2id hashes of passwords the policy above accepts; locking
# the agent out this way takes failures from at least 10 clients (or /64s), far beyond anyone
# mistyping. Every failure is in the audit log with its client.
MAX_FAILED_SIGN_INS_PER_ACCOUNT = 50

# Short and plain: usernames go into audit actors ("agent:sam") and the console's URLs.
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,39}")


def is_present(available: bool, present_until: datetime | None) -> bool:
    """Available, and (when a console keeps it) the console's heartbeat has not lapsed: the
    open console renews it (``GIFTBOT_AGENT_PRESENCE_SECONDS``); a closed tab lets it lapse."""
    return available and (present_until is None or present_until > datetime.now(timezone.utc))


LOCAL_CLIENT = "local"
"""The client of a sign-in that did not come over the network (the CLI, a test)."""


def sign_in_client(address: str | None) -> str:
    """The throttle's key for a client address: the address itself, but an IPv6 address's
    /64 network (one subscriber's share), since a single host can rotate through all of it."""
    if not address:
        return LOCAL_CLIENT
    try:
        parsed = ipaddress.ip_address(address.strip().split("%", 1)[0])
    except ValueError:
        return address.strip()[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class AgentInputError(ValueError):
    """A username, display name or password the policy refuses; the message is one line."""


def parse_username(text: str) -> str:
    """The canonical (lower-case) username in ``text``."""
    username = text.strip().lower()
    if not _USERNAME.fullmatch(username):
        raise AgentInputError(
            "a username has 2 to 40 characters (letters, digits, '.', '_', '-') and starts "
            "with a letter or a digit"
        )
    return username


def parse_display_name(text: str | None, username: str) -> str:
    """The name shoppers and colleagues see; the username when none is given."""
    if text is None:
        return username
    name = text.strip()
    if not name or len(name) > 200 or not name.isprintable():
        raise AgentInputError("a display name has 1 to 200 printable characters")
    return name


def check_password(password: str, username: str) -> None:
    """Refuse a password that is easy to guess. The message never repeats the password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AgentInputError(
            f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AgentInputError(
            f"the password is too long: use at most {MAX_PASSWORD_LENGTH} characters"
        )
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        raise AgentInputError(
            f"the password is too repetitive: use at least {MIN_DISTINCT_CHARACTERS} "
            "different characters"
        )
    if username in password.lower():
        raise AgentInputError("the password must not contain the username")


def agent_actor(username: str) -> str:
    """How an agent is named in the audit log and the ledger."""
    return f"agent:{username}"


def default_password_hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id


def password_matches(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    """True when ``password`` is the one hashed; a damaged hash matches nothing."""
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
