"""Finding 8 (low): the demo page's URLs come from the settings, never from the Host header;
demo sign-in exists only in demo mode. Real HTTP to ``python -m bot.web``."""

from __future__ import annotations

import json
import re

from bot.settings import get_settings
from bot.tokens import verify_customer_token
from bot.wallet.repository import WalletRepository
from tests.security.webserver import web_server

FORGED_HOSTS = (
    "evil.example",
    "evil.example:5005",
    "127.0.0.1.evil.example:8080",
    "[::1]:1",
    'x"><script>alert(1)</script>',
)
SIGN_IN = {"Content-Type": "application/json"}


def _socket_url(page: str) -> str:
    found = re.search(
        r'<script type="module" src="/widget/giftbot-chat.js" data-socket-url="([^"]*)"', page
    )
    assert found, page[:500]
    return found.group(1)


def test_a_forged_host_header_never_reaches_the_page_or_its_csp(wallet: WalletRepository) -> None:
    # make run's defaults: nothing configured but the ports.
    env = {"GIFTBOT_RASA_URL": "", "GIFTBOT_PUBLIC_WEB_URL": "", "GIFTBOT_RASA_PORT": "5005"}
    with web_server(env) as server:
        for host in FORGED_HOSTS:
            answer = server.request("GET", "/", headers={"Host": host})
            assert answer.status == 200, host
            csp = answer.headers["Content-Security-Policy"]
            assert _socket_url(answer.text) == "http://localhost:5005", host
            assert "connect-src 'self' http://localhost:5005 ws://localhost:5005;" in csp, host
            embed = f"http://localhost:{server.port}/widget/giftbot-chat.js"
            assert embed in answer.text, host
            for part in ("evil", "::1", "alert", ":1/"):
                assert part not in answer.text and part not in csp, (host, part)


def test_the_configured_public_urls_are_used(wallet: WalletRepository) -> None:
    env = {
        "GIFTBOT_RASA_URL": "https://rasa.shop.test/",
        "GIFTBOT_PUBLIC_WEB_URL": "https://assistant.shop.test",
    }
    with web_server(env) as server:
        answer = server.request("GET", "/", headers={"Host": "evil.example"})
        assert _socket_url(answer.text) == "https://rasa.shop.test"
        assert "https://assistant.shop.test/widget/giftbot-chat.js" in answer.text
        csp = answer.headers["Content-Security-Policy"]
        assert "connect-src 'self' https://rasa.shop.test wss://rasa.shop.test;" in csp
        assert "evil" not in answer.text + csp


def test_demo_sign_in_is_off_unless_demo_mode_is_on(wallet: WalletRepository) -> None:
    body = json.dumps({"email": "ann@example.com"}).encode()
    with web_server({"GIFTBOT_DEMO_MODE": ""}) as server:
        refused = server.request("POST", "/demo/sign-in", headers=SIGN_IN, body=body)
        assert refused.status == 404 and b"customer_token" not in refused.body
        page = server.request("GET", "/").text
        assert "Demo sign-in is unavailable" in page
        assert 'id="sign-in"' not in page and "/demo/sign-in" not in page

    with web_server({"GIFTBOT_DEMO_MODE": "1"}) as server:
        signed_in = server.request("POST", "/demo/sign-in", headers=SIGN_IN, body=body)
        assert signed_in.status == 200
        token = json.loads(signed_in.body)["customer_token"]
        customer = wallet.find_customer_by_email("ann@example.com")
        assert customer is not None
        assert verify_customer_token(token, get_settings().token_secret) == customer.id
        page = server.request("GET", "/").text
        assert 'id="sign-in"' in page and "Demo sign-in is unavailable" not in page
