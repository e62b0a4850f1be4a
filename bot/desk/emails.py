"""The emails the support desk sends, as templates in one place (the outbox stores them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Email:
    subject: str
    body: str


def case_reply(reference: str, agent_name: str, text: str) -> Email:
    """An agent's answer to a case; the reference in the subject threads the shopper's reply."""
    return Email(
        subject=f"Your gift card support case {reference}",
        body=(
            "Hello,\n\n"
            f"{text}\n\n"
            f"{agent_name}\nGift card support\n\n"
            f"Case {reference}: quote it if you write back or chat with us again.\n"
        ),
    )
