"""What the messaging channels share between Rasa instances (bot/channels/).

A repository of its own rather than a part of ``WalletRepository``: only the Rasa servers'
channels and the account-linking page use it, on the same engine.
"""

from __future__ import annotations

import enum
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from bot.wallet.models import (
    ChannelBinding,
    ChannelConversation,
    ChannelDelivery,
    ChannelLink,
    ConversationOwner,
    utcnow,
)
from bot.wallet.repository.base import RepositoryBase, _audit, _utc


class LinkOutcome(str, enum.Enum):
    LINKED = "linked"
    EXPIRED = "expired"
    USED = "used"
    UNKNOWN = "unknown"


class ChannelsRepository(RepositoryBase):
    # --------------------------------------------------------------- at most once

    def take_in_delivery(self, channel: str, message_id: str) -> bool:
        """True the first time a platform message id is seen, on any instance; then False."""
        try:
            with self._transaction() as s:
                s.add(ChannelDelivery(channel=channel, message_id=message_id[:255]))
        except IntegrityError:
            return False
        return True

    def forget_deliveries_before(self, moment: datetime) -> int:
        """Drop ids older than any platform redelivers (Slack and Meta retry for hours)."""
        with self._transaction() as s:
            result = s.execute(delete(ChannelDelivery).where(ChannelDelivery.received_at < moment))
            return int(result.rowcount or 0)

    # ------------------------------------------------------- where replies go, options

    def save_reference(self, channel: str, sender_id: str, reference: dict[str, Any]) -> None:
        """Remember how to reach ``sender_id`` (e.g. a Teams service URL) for later replies."""
        self._upsert(channel, sender_id, reference=reference)

    def reference(self, channel: str, sender_id: str) -> dict[str, Any] | None:
        with self._transaction() as s:
            row = s.get(ChannelConversation, (channel, sender_id))
            return dict(row.reference) if row is not None else None

    def offer_options(self, channel: str, sender_id: str, options: list[dict[str, str]]) -> None:
        """The options just sent (title and payload), so that "2" can be mapped back."""
        self._upsert(channel, sender_id, options=options)

    def offered_options(self, channel: str, sender_id: str) -> list[dict[str, str]]:
        with self._transaction() as s:
            row = s.get(ChannelConversation, (channel, sender_id))
            return list(row.options) if row is not None else []

    def _upsert(self, channel: str, sender_id: str, **values: Any) -> None:
        for attempt in range(2):
            try:
                with self._transaction() as s:
                    row = s.get(ChannelConversation, (channel, sender_id))
                    if row is None:
                        row = ChannelConversation(
                            channel=channel, sender_id=sender_id, reference={}, options=[]
                        )
                        s.add(row)
                    for name, value in values.items():
                        setattr(row, name, value)
                    row.updated_at = utcnow()
                return
            except IntegrityError:  # another instance inserted the row first: update it
                if attempt:
                    raise

    # ---------------------------------------------------------------- account linking

    def create_link(
        self, channel: str, sender_id: str, lifetime: timedelta
    ) -> tuple[str, datetime]:
        """A new single-use link id for ``sender_id`` and when it expires."""
        link_id = secrets.token_urlsafe(24)
        expires_at = utcnow() + lifetime
        with self._transaction() as s:
            s.add(
                ChannelLink(id=link_id, channel=channel, sender_id=sender_id, expires_at=expires_at)
            )
        return link_id, expires_at

    def use_link(self, link_id: str, customer_id: int) -> LinkOutcome:
        """Bind the link's platform user to ``customer_id``, once, before the link expires."""
        now = utcnow()
        with self._transaction() as s:
            link = s.get(ChannelLink, link_id)
            if link is None:
                return LinkOutcome.UNKNOWN
            if link.used_at is not None:
                return LinkOutcome.USED
            if _utc(link.expires_at) <= now:
                return LinkOutcome.EXPIRED
            # Guarded update: of two concurrent uses of one link, exactly one wins.
            taken = s.execute(
                update(ChannelLink)
                .where(ChannelLink.id == link_id, ChannelLink.used_at.is_(None))
                .values(used_at=now)
            )
            if taken.rowcount != 1:
                return LinkOutcome.USED
            channel, sender_id = link.channel, link.sender_id
            binding = s.get(ChannelBinding, (channel, sender_id))
            if binding is None:
                s.add(ChannelBinding(channel=channel, sender_id=sender_id, customer_id=customer_id))
            else:
                binding.customer_id, binding.linked_at = customer_id, now
            _audit(s, f"customer:{customer_id}", "channel_linked", channel, {})
        return LinkOutcome.LINKED

    def linked_customer(self, channel: str, sender_id: str) -> int | None:
        with self._transaction() as s:
            return s.execute(
                select(ChannelBinding.customer_id).where(
                    ChannelBinding.channel == channel, ChannelBinding.sender_id == sender_id
                )
            ).scalar_one_or_none()

    def unlink(self, channel: str, sender_id: str, conversation_id: str) -> bool:
        """Undo the link. It signs the platform user out of their conversation for good too,
        so that a later link to another account owns it (actions/context.py)."""
        with self._transaction() as s:
            binding = s.get(ChannelBinding, (channel, sender_id))
            if binding is None:
                return False
            _audit(s, f"customer:{binding.customer_id}", "channel_unlinked", channel, {})
            s.delete(binding)
            owner = s.get(ConversationOwner, conversation_id)
            if owner is not None:
                s.delete(owner)
        return True
