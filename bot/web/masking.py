"""Hides claim codes in a shopper's own message before the widget shows or stores it.

The widget asks the server rather than matching codes itself, so that the card formats stay
defined in one place, ``bot.wallet.codes``.
"""

from __future__ import annotations

from bot.wallet.codes import find_codes

HIDDEN_CLAIM_CODE = "[claim code hidden]"


def mask_claim_codes(text: str) -> str:
    """``text`` with every claim code replaced by a placeholder that keeps none of its characters."""
    pieces: list[str] = []
    position = 0
    for found in find_codes(text):
        if found.label == "claim_code":
            pieces += [text[position : found.start], HIDDEN_CLAIM_CODE]
            position = found.end
    pieces.append(text[position:])
    return "".join(pieces)
