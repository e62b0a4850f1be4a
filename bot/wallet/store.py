"""What every repository of the store shares (the wallet's and the support desk's): errors,
one short transaction per call, the audit log and aware timestamps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.desk import agents
from bot.wallet import codes
from bot.wallet.models import AuditEntry


class WalletError(Exception):
    """A request the store refuses; the message is one line, fit to show an operator."""


class ConflictError(WalletError):
    """Someone got there first, or the request or case moved on: a web console's HTTP 409."""


class RepositoryBase:
    """The engine, the secrets and one short transaction per call; the parts build on it."""

    def __init__(
        self,
        engine: Engine,
        claim_code_secret: bytes,
        sealing_key: str,
        password_hasher: PasswordHasher | None = None,
    ) -> None:
        self.engine = engine
        self._claim_code_secret = claim_code_secret
        self._sealing_key = sealing_key
        self._hasher = password_hasher or agents.default_password_hasher()
        self._dummy_hash: str | None = None

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with Session(self.engine, future=True) as session, session.begin():
            yield session

    def _hmac(self, claim_code: str) -> str:
        return codes.claim_code_hmac(claim_code, self._claim_code_secret)


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; the views carry aware UTC ones on every backend."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc(moment)


def _audit(s: Session, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
    s.add(AuditEntry(actor=actor, action=action, subject=subject, details=details))
