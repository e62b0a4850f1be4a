"""The probe's claim-code steps, repeated against the real servers: a signed-in shopper types
the code in every spelling the probe used, then nothing under the server's var dir (tracker
store, logs), nothing Rasa's API serves (what the console reads), and nothing ``/api/mask``
returns holds the code."""

from __future__ import annotations

import json
import re

import requests

from bot.wallet import codes
from bot.wallet.repository import ClaimCodeStatus, WalletRepository
from tests.actions.conftest import new_card, new_customer
from tests.security.webserver import web_server
from tests.servers import Servers


def _spellings(code: str) -> list[str]:
    a, b, c = code[:4], code[4:10], code[10:]
    return [f"{a} {b} {c}".lower(), f"{a}  {b}  {c}", f"{a} - {b} - {c}", f"{a}{b} {c}".lower()]


def _holds(haystack: str, code: str) -> bool:
    return code in re.sub(r"[^A-Za-z0-9]", "", haystack).upper()


def test_no_spelling_of_a_used_code_is_kept_anywhere(
    servers: Servers, wallet: WalletRepository
) -> None:
    email, token = new_customer(wallet, "Probe Shopper")
    card = new_card(wallet, email, recipient_email=email)
    chats = []
    for spelling in _spellings(card.claim_code):
        chat = servers.chat(token)
        chat.say("my claim code doesn't work")
        answer = chat.say(spelling)
        assert "apply it to your gift card balance" in answer, chat.transcript  # it was used
        chat.say("no thanks")
        chats.append(chat)
    customer = wallet.find_customer_by_email(email)
    assert wallet.claim_code_status(card.claim_code, customer.id) == ClaimCodeStatus.REDEEMABLE

    for path in servers.var_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes().decode("utf-8", "replace")
            assert not _holds(content, card.claim_code), path
            assert token not in content, path

    for chat in chats:
        tracker = requests.get(
            f"{servers.rasa_url}/conversations/{chat.sender}/tracker",
            headers=servers.api_headers(),
            timeout=30,
        )
        assert tracker.status_code == 200
        assert not _holds(tracker.text, card.claim_code)

    # The widget keeps in the browser only what /api/mask returns.
    with web_server() as web:
        for spelling in _spellings(card.claim_code):
            body = json.dumps({"text": f"it's {spelling}!"}).encode()
            masked = web.request("POST", "/api/mask", {"Content-Type": "application/json"}, body)
            assert masked.status == 200
            assert not _holds(masked.text, card.claim_code)
            assert codes.MASKED_CLAIM_CODE in json.loads(masked.text)["text"]
