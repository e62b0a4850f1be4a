"""Account linking end to end, on Telegram: "link my account", the link to the (demo) store's
sign-in page, the shopper then signed in on the platform, until "unlink my account"; an
expired and a reused link refused. And a claim code typed on a platform kept out of the
tracker store."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import update

from bot.channels.linking import mint_link_token
from bot.settings import get_settings
from bot.wallet.demo import CARDS
from bot.wallet.models import ChannelLink
from bot.wallet.repository import WalletRepository
from bot.wallet.repository.channels import ChannelsRepository
from tests.channels.conftest import Platforms, tracker_events
from tests.channels.test_telegram import TelegramShopper
from tests.conftest import token_for
from tests.servers import Servers

pytestmark = pytest.mark.servers

LINK = re.compile(r"(http://\S+/link\?token=\S+)")
SIGNED_IN = "Your gift card balance is <b>$"


@pytest.fixture
def shopper(channel_servers: Servers, platforms: Platforms) -> TelegramShopper:
    return TelegramShopper(channel_servers, platforms)


def channels_repository(wallet: WalletRepository) -> ChannelsRepository:
    settings = get_settings()
    return ChannelsRepository(wallet.engine, settings.claim_code_secret, settings.sealing_key)


def ask_for_link(shopper: TelegramShopper) -> str:
    said = shopper.command("Link my account")
    assert "open this link within 10 minutes and sign in" in said
    found = LINK.search(said)
    assert found is not None
    return found.group(1)


def sign_in_and_link(link: str, email: str = "ann@example.com") -> requests.Response:
    """The shopper opens the link, signs in on the demo store page, and submits."""
    page = requests.get(link, timeout=30)
    assert page.status_code == 200 and "<form method='post' action='/link'>" in page.text
    token = link.split("token=", 1)[1]
    return requests.post(link.split("?")[0], data={"token": token, "email": email}, timeout=30)


def test_link_sign_in_unlink(shopper: TelegramShopper) -> None:
    assert "sign in" in shopper.said("what is my gift card balance")  # a signed-out shopper
    link = ask_for_link(shopper)
    linked = sign_in_and_link(link)
    assert linked.status_code == 200 and "Account linked" in linked.text

    assert SIGNED_IN in shopper.said("what is my gift card balance")
    # The customer token the channel added is not kept in the tracker store.
    events = tracker_events(shopper.servers, shopper.conversation_id)
    tokens = [e["metadata"].get("customer_token") for e in events if e["event"] == "user"]
    assert tokens[-1] == "[redacted]"

    reused = sign_in_and_link_again(link)
    assert reused.status_code == 410 and "used already" in reused.text

    assert "no longer linked" in shopper.command("unlink my account")
    assert SIGNED_IN not in shopper.said("what is my gift card balance")
    print("\n".join(shopper.transcript))


def sign_in_and_link_again(link: str) -> requests.Response:
    token = link.split("token=", 1)[1]
    return requests.post(
        link.split("?")[0], data={"token": token, "email": "ann@example.com"}, timeout=30
    )


def test_an_expired_link_is_refused(shopper: TelegramShopper, wallet: WalletRepository) -> None:
    link = ask_for_link(shopper)
    token = link.split("token=", 1)[1]
    link_id = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["jti"]
    # The link's row says it expired (its token's own expiry is checked as well, below).
    with wallet.engine.begin() as connection:
        connection.execute(
            update(ChannelLink)
            .where(ChannelLink.id == link_id)
            .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
        )
    answer = sign_in_and_link_again(link)
    assert answer.status_code == 410 and "expired" in answer.text

    stale = mint_link_token(
        link_id, datetime.now(timezone.utc) - timedelta(seconds=1), get_settings().token_secret
    )
    page = requests.get(link.split("?")[0], params={"token": stale}, timeout=30)
    assert page.status_code == 400 and "expired" in page.text
    assert SIGNED_IN not in shopper.said("what is my gift card balance")


def test_a_forged_link_is_refused(shopper: TelegramShopper, wallet: WalletRepository) -> None:
    link = ask_for_link(shopper)
    token = link.split("token=", 1)[1]
    header, claims, _ = token.split(".")
    forged = requests.post(
        link.split("?")[0],
        data={"token": f"{header}.{claims}.AAAA", "email": "ann@example.com"},
        timeout=30,
    )
    assert forged.status_code == 400
    assert channels_repository(wallet).linked_customer("telegram", str(shopper.chat_id)) is None


def test_the_store_page_links_through_the_api(
    shopper: TelegramShopper, wallet: WalletRepository, platforms: Platforms
) -> None:
    link = ask_for_link(shopper)
    api = f"{platforms.store.url}/api/link"
    token = link.split("token=", 1)[1]
    refused = requests.post(api, json={"link_token": token, "customer_token": "x"}, timeout=30)
    assert refused.status_code == 401
    body = {"link_token": token, "customer_token": token_for(wallet, "ben@example.com")}
    assert requests.post(api, json=body, timeout=30).json() == {"linked": True}
    ben = wallet.find_customer_by_email("ben@example.com")
    assert ben is not None
    linked = channels_repository(wallet).linked_customer("telegram", str(shopper.chat_id))
    assert linked == ben.id


def test_a_claim_code_typed_on_a_platform_is_masked_in_the_tracker_store(
    shopper: TelegramShopper,
) -> None:
    claim_code = CARDS[0].claim_code
    shopper.say("my claim code doesn't work")
    shopper.say(f"it is {claim_code}")
    stored = json.dumps(tracker_events(shopper.servers, shopper.conversation_id))
    compact = re.sub(r"[\s\-]", "", stored).upper()
    assert re.sub(r"[\s\-]", "", claim_code).upper() not in compact
    assert "[claim code hidden]" in stored
