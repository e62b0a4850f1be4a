"""The demo data set: a few customers and a card in every state.

The values are fixed so that the README, the demo page and a person trying the assistant can
refer to them. They are demo data, not secrets: the store still keeps only the codes' HMACs.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.wallet.models import CardState
from bot.wallet.repository import WalletRepository

CUSTOMERS = [
    ("Ann Lee", "ann@example.com"),
    ("Ben Okafor", "ben@example.com"),
    ("Chloé Martin", "chloe@example.com"),
]


@dataclass(frozen=True)
class DemoCard:
    label: str
    serial: str
    claim_code: str
    order_number: str
    amount_minor: int
    purchaser_email: str
    recipient_name: str
    recipient_email: str | None
    shipping_address: str | None
    state: CardState
    locked: bool = False
    redeemed_by: str | None = None


CARDS = [
    DemoCard(
        "active, emailed",
        "1712345678901234567",
        "RW7T-K4NMPX-2H9C",
        "D01-4826153-7730941",
        50_00,
        "ann@example.com",
        "Ben Okafor",
        "ben@example.com",
        None,
        CardState.ACTIVE,
    ),
    DemoCard(
        "active, shipped",
        "1798765432109876543",
        "HX7K-M3QRTN-5WZE",
        "112-5550198-3309277",
        25_00,
        "ann@example.com",
        "Chloé Martin",
        None,
        "12 Rue des Lilas, 75011 Paris, France",
        CardState.ACTIVE,
    ),
    DemoCard(
        "redeemed by Ben",
        "1700011122233344455",
        "ZP3N-8VKQYD-4TRC",
        "D01-1937465-2846173",
        100_00,
        "chloe@example.com",
        "Ben Okafor",
        "ben@example.com",
        None,
        CardState.ACTIVE,
        redeemed_by="ben@example.com",
    ),
    DemoCard(
        "not yet activated",
        "1755566677788899900",
        "MW9E-T2GHJB-6SXA",
        "113-8675309-4451236",
        20_00,
        "ben@example.com",
        "Ann Lee",
        "ann@example.com",
        None,
        CardState.INACTIVE,
    ),
    DemoCard(
        "cancelled",
        "1744433322211100099",
        "KC5R-N8PFWY-3DMU",
        "D01-5551234-9988776",
        75_00,
        "ben@example.com",
        "Ann Lee",
        "ann@example.com",
        None,
        CardState.CANCELLED,
    ),
    DemoCard(
        "locked",
        "1733322211100099988",
        "TB6Y-Q4XEVN-8HJK",
        "114-2468013-5791357",
        30_00,
        "chloe@example.com",
        "Ann Lee",
        "ann@example.com",
        None,
        CardState.ACTIVE,
        locked=True,
    ),
]


# A support agent for trying the handoff console (demo data, like the cards above). Not
# available until they say so in the console, so handoffs take the no-agent path by default.
DEMO_AGENT = ("sam", "Sam Rivera", "harbor-lantern-42")


def seed(repo: WalletRepository) -> bool:
    """Load the demo data unless it is there already; True when it was loaded now."""
    username, display_name, password = DEMO_AGENT
    if repo.find_agent(username) is None:
        repo.create_agent(username, password, display_name=display_name, actor="demo-seed")
    if repo.find_customer_by_email(CUSTOMERS[0][1]) is not None:
        return False
    for name, email in CUSTOMERS:
        repo.create_customer(name, email, actor="demo-seed")
    for card in CARDS:
        repo.issue_card(
            amount_minor=card.amount_minor,
            purchaser_email=card.purchaser_email,
            recipient_name=card.recipient_name,
            recipient_email=card.recipient_email,
            shipping_address=card.shipping_address,
            state=card.state,
            actor="demo-seed",
            serial=card.serial,
            claim_code=card.claim_code,
            order_number=card.order_number,
        )
        if card.redeemed_by:
            customer = repo.find_customer_by_email(card.redeemed_by)
            assert customer is not None
            repo.redeem(card.claim_code, customer.id, actor="demo-seed")
        if card.locked:
            repo.lock_card(card.serial, actor="demo-seed")
    return True
