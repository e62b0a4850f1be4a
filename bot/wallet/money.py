"""Money as integer minor units: parsing what people type and formatting for people."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}
MAX_CARD_AMOUNT_MINOR = 2_000_00  # the store's limit for a single gift card


class AmountError(ValueError):
    pass


def parse_amount(text: str) -> int:
    """``"50"``, ``"50.00"``, ``"$1,000.5"`` -> minor units; refuses anything not positive."""
    cleaned = text.strip().lstrip("$€£").replace(",", "").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation as exc:
        raise AmountError(f"amount must be a number like 50.00, got {text!r}") from exc
    if not value.is_finite() or value <= 0:
        raise AmountError(f"amount must be more than zero, got {text!r}")
    # A comparison, before any arithmetic: quantize() and * raise on values like 1e30 or 1e999999.
    if value > Decimal(MAX_CARD_AMOUNT_MINOR).scaleb(-2):
        raise AmountError(f"amount can be at most {format_money(MAX_CARD_AMOUNT_MINOR)}")
    if value != value.quantize(Decimal("0.01")):
        raise AmountError(f"amount can have at most two decimals, got {text!r}")
    return int(value * 100)


def format_money(minor: int, currency: str = "USD") -> str:
    sign = "-" if minor < 0 else ""
    symbol = CURRENCY_SYMBOLS.get(currency, currency + " ")
    return f"{sign}{symbol}{abs(minor) // 100:,}.{abs(minor) % 100:02d}"


def to_decimal_string(minor: int) -> str:
    """For machine-readable output: ``5000`` -> ``"50.00"``."""
    return f"{'-' if minor < 0 else ''}{abs(minor) // 100}.{abs(minor) % 100:02d}"
