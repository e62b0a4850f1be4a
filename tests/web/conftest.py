"""Browser tests of the shopper chat widget: Debian's chromium driven by Playwright, against
the real Rasa server (socket.io), the real action server and our web server (``bot.web``).

Without /usr/bin/chromium (installed by scripts/setup_web.sh) or the playwright package the
tests are skipped with the reason, except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ROOT, Servers, _wait_until_up, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Rasa answers in well under a second when idle; a loaded CI machine can be much slower.
REPLY_TIMEOUT_MS = 60_000
PRESENCE_SECONDS = 9


try:
    from playwright.sync_api import expect

    expect.set_options(timeout=REPLY_TIMEOUT_MS)
except ImportError:  # reported by the browser fixture
    pass


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure)", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last (a stable sort): Playwright's sync API keeps an event loop running in
    the main thread for the rest of the session, and asyncio.run() (used by the web server's
    own tests) refuses to run inside one."""
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Chromium; checked before the servers start, so a skip costs nothing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        _unavailable(
            f"{CHROMIUM} is missing: run scripts/setup_web.sh as root (apt-get install chromium)"
        )
    if not (ROOT / "node_modules" / "socket.io-client").is_dir():
        _unavailable("node_modules is missing: run scripts/setup_web.sh (npm ci)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def site(browser: Any, servers: Servers) -> Iterator[str]:
    """``python -m bot.web`` on a free port, pointed at the test Rasa server."""
    port = free_port()
    log = servers.var_dir / "log" / "web.log"
    env = {
        **os.environ,
        "GIFTBOT_WEB_PORT": str(port),
        "GIFTBOT_PUBLIC_WEB_URL": f"http://127.0.0.1:{port}",
        "GIFTBOT_RASA_URL": servers.rasa_url,
        # The widget tests sign in as demo customers on the demo page.
        "GIFTBOT_DEMO_MODE": "1",
        # The agent console writes to conversations through Rasa's HTTP API.
        "GIFTBOT_RASA_API_TOKEN": servers.api_token,
        # An agent whose console closes is away after this (the console beats every 3 s).
        "GIFTBOT_AGENT_PRESENCE_SECONDS": str(PRESENCE_SECONDS),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.web"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{url}/health", process, log)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def context_options() -> dict[str, Any]:
    """Overridden by tests that need another viewport or browser setting."""
    return {"viewport": DESKTOP}


@pytest.fixture
def page(browser: Any, site: str, context_options: dict[str, Any]) -> Iterator[Any]:
    """A fresh browser profile (empty storage) on the demo page; fails on any script error."""
    context = browser.new_context(base_url=site, **context_options)
    context.set_default_timeout(REPLY_TIMEOUT_MS)
    errors: list[str] = []
    opened = context.new_page()
    context.on("weberror", lambda error: errors.append(str(error.error)))
    opened.goto("/")
    yield opened
    context.close()
    assert not errors, f"script errors on the page: {errors}"
