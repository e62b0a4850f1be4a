"""The web server (bot.web) on its own: no browser, no Rasa."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.settings import get_settings
from bot.tokens import verify_customer_token
from bot.wallet.codes import mask_claim_codes
from bot.wallet.demo import CARDS
from bot.wallet.repository import WalletRepository
from bot.web.app import create_app
from bot.web.config import WebConfig


@pytest.fixture
def config() -> WebConfig:
    return dataclasses.replace(
        WebConfig.from_env(),
        public_url="http://localhost:8080",
        rasa_url="http://localhost:5005",
        demo_mode=True,
    )


def call(
    app_config: WebConfig,
    wallet: WalletRepository,
    method: str,
    path: str,
    **kwargs: Any,
) -> tuple[int, dict[str, str], str]:
    async def run() -> tuple[int, dict[str, str], str]:
        async with TestClient(TestServer(create_app(app_config, wallet))) as client:
            response = await client.request(method, path, **kwargs)
            return response.status, dict(response.headers), await response.text()

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("my code is AQ4T-B7XWZC-9M2P", "my code is [claim code hidden]"),
        ("AQ4T B7XWZC 9M2P doesn't work", "[claim code hidden] doesn't work"),
        ("aq4tb7xwzc9m2p", "[claim code hidden]"),
        # Serials, order numbers and ordinary words stay as typed.
        (f"serial {CARDS[0].serial}, order {CARDS[0].order_number}", None),
        ("I have 2 cards worth 50 dollars, ann@example.com", None),
        # Words that add up to a claim code the parser would accept are hidden: one rule.
        ("card 1234 dollars", "[claim code hidden]"),
    ],
)
def test_mask_hides_claim_codes_only(text: str, shown: str | None) -> None:
    assert mask_claim_codes(text) == (shown if shown is not None else text)


def test_mask_endpoint(config: WebConfig, wallet: WalletRepository) -> None:
    status, headers, body = call(
        config, wallet, "POST", "/api/mask", json={"text": "code HX7K-M3QRTN-5WZE please"}
    )
    assert status == 200 and body == '{"text": "code [claim code hidden] please"}'
    assert headers["Access-Control-Allow-Origin"] == "*"
    for bad in ({"text": 5}, ["text"], {"text": "x" * 5001}):
        assert call(config, wallet, "POST", "/api/mask", json=bad)[0] == 400
    assert call(config, wallet, "POST", "/api/mask", data=b"\xff not json")[0] == 400


def test_sign_in_mints_a_token_for_a_demo_customer_only(
    config: WebConfig, wallet: WalletRepository
) -> None:
    status, _, body = call(
        config, wallet, "POST", "/demo/sign-in", json={"email": " Ann@Example.com"}
    )
    assert status == 200
    signed_in = json.loads(body)
    customer = wallet.find_customer_by_email("ann@example.com")
    assert customer is not None and signed_in["name"] == "Ann Lee"
    assert (
        verify_customer_token(signed_in["customer_token"], get_settings().token_secret)
        == customer.id
    )

    wallet.create_customer("Real Shopper", "real@example.com")
    status, _, body = call(
        config, wallet, "POST", "/demo/sign-in", json={"email": "real@example.com"}
    )
    assert status == 404 and "demo customers" in body


def test_demo_page_embeds_the_widget_with_one_script_tag(
    config: WebConfig, wallet: WalletRepository
) -> None:
    status, headers, page = call(config, wallet, "GET", "/")
    assert status == 200
    assert page.count('src="/widget/giftbot-chat.js"') == 1
    assert 'data-socket-url="http://localhost:5005"' in page  # the configured Rasa URL
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "ws://localhost:5005" in csp
    assert "{{" not in page and CARDS[0].serial in page


def test_a_forged_host_header_does_not_reach_the_page(
    config: WebConfig, wallet: WalletRepository
) -> None:
    _, headers, page = call(
        config, wallet, "GET", "/", headers={"Host": 'x"><script>alert(1)</script>'}
    )
    assert "<script>alert" not in page and "script" not in headers["Content-Security-Policy"]
    assert 'data-socket-url="http://localhost:5005"' in page


def test_static_files_come_from_this_server(config: WebConfig, wallet: WalletRepository) -> None:
    for path in (
        "/widget/giftbot-chat.js",
        "/widget/giftbot-chat.css",
        "/vendor/socket.io/socket.io.esm.min.js",
    ):
        status, headers, _ = call(config, wallet, "GET", path)
        assert status == 200, path
        assert headers["Access-Control-Allow-Origin"] == "*"
