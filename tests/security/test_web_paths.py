"""Finding 8 (low): the console's private files must not be reachable through a static route,
whatever the spelling of the path. Raw request lines over real HTTP to ``python -m bot.web``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.wallet.repository import WalletRepository
from tests.security.webserver import WebServer, web_server
from tests.servers import ROOT

# The console's page (a template with the session's CSRF token) and its script.
PRIVATE = ("console.js", "console.html")
SPELLINGS = (
    "/widget/console/{f}",
    "/widget/./console/{f}",
    "/widget/%2e/console/{f}",
    "/widget/%2E/console/{f}",
    "/widget/%63onsole/{f}",
    "/widget/%2563onsole/{f}",  # double-encoded
    "/widget/%252e/console/{f}",
    "/widget/Console/{f}",
    "/WIDGET/console/{f}",
    "/widget/CONSOLE/{F}",
    "/widget/console/{f}/",
    "/widget//console/{f}",
    "/widget/console//{f}",
    "/widget/console%2f{f}",
    "/widget/console%2F{f}",
    "/widget/console\\{f}",
    "/widget\\console\\{f}",
    "/widget/console%5c{f}",
    "/widget/demo/../console/{f}",
    "/widget/demo/%2e%2e/console/{f}",
    "/widget/../console/{f}",
    "/widget/%2e%2e/console/{f}",
    "/widget/..%2fconsole/{f}",
    "/widget/..%5cconsole/{f}",
    "/widget/../widget/console/{f}",
    "/widget/%2e%2e/widget/console/{f}",
    "/vendor/socket.io/../../../console/{f}",
    "/vendor/socket.io/%2e%2e/%2e%2e/%2e%2e/console/{f}",
    "/vendor/socket.io/%2e%2e/%2e%2e/%2e%2e/widget/console/{f}",
    "/widget/" + str(ROOT) + "/console/{f}",
    "/widget/" + str(ROOT) + "/widget/console/{f}",
    "/console/{f}",
    "/agent/assets/..%2f{f}",
    "/agent/assets/{f}/",
    "/agent/./assets/{f}",
    "/agent/assets/%63onsole.js",
)


@pytest.fixture(scope="module")
def server(wallet: WalletRepository) -> Iterator[WebServer]:
    with web_server() as running:
        yield running


@pytest.mark.parametrize("name", PRIVATE)
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_no_spelling_serves_a_console_file_without_a_session(
    server: WebServer, spelling: str, name: str
) -> None:
    path = spelling.format(f=name, F=name.upper())
    answer = server.request("GET", path)
    assert answer.status in (400, 401, 403, 404), (path, answer.status, answer.text[:200])
    assert b"csrf" not in answer.body.lower(), path


def test_the_console_routes_still_serve_what_they_should(server: WebServer) -> None:
    assert server.request("GET", "/agent/assets/console.js").status == 401
    assert server.request("GET", "/agent/assets/sign-in.js").status == 200
    assert server.request("GET", "/agent/assets/console.css").status == 200
    sign_in = server.request("GET", "/agent")
    assert sign_in.status == 200 and "Sign in" in sign_in.text and "Reply" not in sign_in.text
    for path in ("/widget/giftbot-chat.js", "/widget/demo/demo.js", "/widget/giftbot-chat.css"):
        assert server.request("GET", path).status == 200, path
