"""The demo store page: ``widget/demo/index.html`` with the demo data and options filled in."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from bot.wallet import demo
from bot.wallet.money import format_money

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def _sections(state: str) -> re.Pattern[str]:
    """A ``<!-- sign-in:STATE … -->`` … ``<!-- /sign-in:STATE -->`` section of the template."""
    return re.compile(
        rf"[ ]*<!-- sign-in:{state}\b.*?-->\n(.*?)[ ]*<!-- /sign-in:{state} -->\n", re.S
    )


def render_demo_page(template: Path, *, page_origin: str, socket_url: str, demo_mode: bool) -> str:
    """The page; every value is escaped here, and a placeholder left unfilled is an error.

    Without demo mode the sign-in form is left out and the page says sign-in is unavailable.
    """
    page = template.read_text()
    shown, dropped = ("on", "off") if demo_mode else ("off", "on")
    page = _sections(dropped).sub("", page)
    page = _sections(shown).sub(lambda match: match.group(1), page)
    values = {
        "socket_url": escape(socket_url),
        "customer_options": "\n".join(
            f'            <option value="{escape(email)}">{escape(name)} ({escape(email)})</option>'
            for name, email in demo.CUSTOMERS
        ),
        "card_rows": "\n".join(
            "              <tr>"
            + "".join(
                f"<td>{escape(cell)}</td>"
                for cell in (
                    card.label,
                    card.serial,
                    card.claim_code,
                    card.order_number,
                    format_money(card.amount_minor),
                )
            )
            + "</tr>"
            for card in demo.CARDS
        ),
        "embed_snippet": escape(embed_snippet(page_origin, socket_url)),
    }
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], page)


def embed_snippet(page_origin: str, socket_url: str) -> str:
    """The tag a store adds to its pages (shown on the demo page and in the README)."""
    return (
        f'<script type="module" src="{page_origin}/widget/giftbot-chat.js"\n'
        f'        data-socket-url="{socket_url}"\n'
        '        data-title="Gift card help"\n'
        '        data-customer-token="TOKEN YOUR SERVER SIGNED (empty when signed out)">\n'
        "</script>"
    )
