"""Who a conversation belongs to, and what the assistant verified in it.

Both are written only by the action server, which alone checks customer tokens and card
details; the agent console trusts these rows, never a slot value that travelled through Rasa.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.wallet.models import (
    ConversationOwner,
    FailedAttempt,
    GiftCard,
    HandoffRequest,
    Verification,
    utcnow,
)
from bot.wallet.repository.base import RepositoryBase, _card_query, _card_view
from bot.wallet.repository.views import CardView, VerificationMethod, VerificationView


class ConversationsRepository(RepositoryBase):
    def claim_conversation(self, conversation_id: str, customer_id: int) -> int:
        """The conversation's owner: ``customer_id`` if nobody signed in to it before, else
        whoever did first (two racing first sign-ins: the insert that commits first wins)."""
        try:
            with self._transaction() as s:
                owner = s.get(ConversationOwner, conversation_id)
                if owner is not None:
                    return int(owner.customer_id)
                s.add(ConversationOwner(conversation_id=conversation_id, customer_id=customer_id))
                return customer_id
        except IntegrityError:
            with self._transaction() as s:
                return int(s.get(ConversationOwner, conversation_id).customer_id)

    def record_verification(
        self,
        conversation_id: str,
        card_id: int,
        method: VerificationMethod,
        customer_id: int | None,
    ) -> None:
        with self._transaction() as s:
            s.add(
                Verification(
                    conversation_id=conversation_id,
                    gift_card_id=card_id,
                    method=method.value,
                    customer_id=customer_id,
                )
            )

    def latest_verification(
        self, conversation_id: str, methods: frozenset[VerificationMethod] | None = None
    ) -> VerificationView | None:
        """The newest proof recorded in this conversation (of the given kinds), with its card."""
        with self._transaction() as s:
            query = select(Verification).where(Verification.conversation_id == conversation_id)
            if methods is not None:
                query = query.where(Verification.method.in_([m.value for m in methods]))
            row = s.execute(
                query.order_by(Verification.created_at.desc(), Verification.id.desc()).limit(1)
            ).scalar_one_or_none()
            if row is None:
                return None
            card = s.execute(_card_query().where(GiftCard.id == row.gift_card_id)).scalar_one()
            return VerificationView(
                card=_card_view(card),
                method=VerificationMethod(row.method),
                customer_id=row.customer_id,
                conversation_id=row.conversation_id,
                created_at=row.created_at,
            )

    def verified_card(
        self, conversation_id: str, method: VerificationMethod, customer_id: int | None
    ) -> CardView | None:
        """The card proved in this conversation by ``method`` for exactly this customer."""
        found = self.latest_verification(conversation_id, frozenset({method}))
        if found is None or found.customer_id != customer_id:
            return None
        return found.card

    def handoff_verified_card(self, request_id: int) -> CardView | None:
        """The damaged card the shopper proved theirs (all five order details) in the handed-off
        conversation, as the action server recorded it; never what a context or slot says."""
        with self._transaction() as s:
            request = s.get(HandoffRequest, request_id)
            conversation_id = request.conversation_id if request else None
        if conversation_id is None:
            return None
        found = self.latest_verification(
            conversation_id, frozenset({VerificationMethod.ORDER_DETAILS})
        )
        return found.card if found else None

    def failed_lookups_since(self, window: timedelta) -> int:
        """Failed lookups across every conversation: the enumeration alarm's measure."""
        with self._transaction() as s:
            return int(
                s.execute(
                    select(func.count(FailedAttempt.id)).where(
                        FailedAttempt.created_at >= utcnow() - window
                    )
                ).scalar_one()
            )
