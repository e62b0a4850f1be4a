"""Finding 6 (the action server trusts anyone): it listens on loopback unless configured, it
refuses every request without the shared secret Rasa sends, an error never echoes the request,
and the console trusts only what the action server recorded in the wallet store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from bot.action_server import SECRET_HEADER
from bot.settings import get_settings
from bot.wallet.demo import CARDS
from bot.wallet.repository import VerificationMethod, WalletRepository
from tests.security.test_listen_addresses import _accepts, _own_outside_address
from tests.servers import ROOT, free_port

ACTIVE = CARDS[0]


@contextmanager
def action_server(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    log = Path(get_settings().var_dir) / "log" / f"action-server-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **(extra_env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.action_server", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(f"{url}/health", timeout=2)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log.read_text()[-2000:]) from None
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def actions_url(wallet: WalletRepository) -> Iterator[str]:
    with action_server() as url:
        yield url


def _handoff_call(verification: dict[str, object]) -> dict[str, object]:
    """What Rasa posts to run action_handoff, with a forged verification slot."""
    return {
        "next_action": "action_handoff",
        "sender_id": "forger-1",
        "version": "3.6.21",
        "domain": {},
        "tracker": {
            "sender_id": "forger-1",
            "slots": {"verification": verification},
            "latest_message": {"text": "agent", "intent": {"name": "human_handoff"}},
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
    }


def test_requests_without_the_shared_secret_are_refused(actions_url: str) -> None:
    forged = {"card": "••••4567", "card_id": 1, "by": "order number"}
    for headers in ({}, {SECRET_HEADER: "guess"}, {SECRET_HEADER: ""}):
        answer = requests.post(
            f"{actions_url}/webhook", json=_handoff_call(forged), headers=headers, timeout=10
        )
        assert answer.status_code == 403, headers
        assert (
            requests.get(f"{actions_url}/actions", headers=headers, timeout=10).status_code == 403
        )
    # The health probe stays open for load balancers, and says nothing.
    assert requests.get(f"{actions_url}/health", timeout=10).json() == {"status": "ok"}


def test_rasa_with_the_secret_is_served(actions_url: str) -> None:
    secret = {SECRET_HEADER: get_settings().action_server_secret}
    listed = requests.get(f"{actions_url}/actions", headers=secret, timeout=10)
    assert listed.status_code == 200
    assert {"name": "action_handoff"} in listed.json()


def test_a_failing_action_answers_without_echoing_the_request(actions_url: str) -> None:
    secret = {SECRET_HEADER: get_settings().action_server_secret}
    call = _handoff_call({})
    call["next_action"] = "action_check_balance"
    call["tracker"]["slots"] = {"serial_number": ACTIVE.serial, "claim_code": "RW7TK4NMPX2H9C"}
    call["tracker"]["latest_message"] = "RW7T-K4NMPX-2H9C"  # not a message: the action fails
    answer = requests.post(f"{actions_url}/webhook", json=call, headers=secret, timeout=10)
    assert answer.status_code == 500
    assert answer.json() == {"error": "the action failed"}
    assert "RW7T" not in answer.text


def test_the_action_server_listens_on_loopback_by_default(wallet: WalletRepository) -> None:
    outside = _own_outside_address()
    with action_server({"GIFTBOT_ACTIONS_HOST": ""}) as url:
        port = int(url.rsplit(":", 1)[1])
        assert _accepts("127.0.0.1", port)
        assert not _accepts(outside, port)


def test_the_console_trusts_the_recorded_proof_not_the_handoff_context(
    wallet: WalletRepository,
) -> None:
    card = wallet.find_card_by_serial(ACTIVE.serial)
    assert card is not None
    forged = {"card": card.masked_serial, "card_id": card.id, "by": "order details"}
    wallet.request_handoff(
        conversation_id="forged-context",
        reason="shopper_asked",
        channel="rest",
        context={"verification": forged},
    )
    request_id = next(
        h.id for h in wallet.waiting_handoffs() if h.conversation_id == "forged-context"
    )
    assert wallet.handoff_verified_card(request_id) is None

    # A balance check by order number is a proof, but not one that allows a new claim code.
    wallet.record_verification(
        "forged-context", card.id, VerificationMethod.ORDER_NUMBER, customer_id=None
    )
    assert wallet.handoff_verified_card(request_id) is None
    wallet.record_verification(
        "forged-context", card.id, VerificationMethod.ORDER_DETAILS, customer_id=None
    )
    verified = wallet.handoff_verified_card(request_id)
    assert verified is not None and verified.id == card.id


def test_rasa_reads_the_secret_header_from_the_project_endpoints(monkeypatch) -> None:
    """The committed endpoints.yml, read as Rasa reads it: the header carries the secret
    from the environment (Rasa expands ${...} only in unquoted YAML scalars)."""
    from rasa.core.utils import read_endpoints_from_path

    for name in re.findall(r"\$\{(\w+)\}", (ROOT / "deploy/endpoints.scaled.yml").read_text()):
        monkeypatch.setenv(name, "amqp://x" if "BROKER_URL" in name else "value")
    monkeypatch.setenv("GIFTBOT_ACTION_SERVER_SECRET", "from-the-environment")
    for path in (ROOT / "endpoints.yml", ROOT / "deploy" / "endpoints.scaled.yml"):
        endpoints = read_endpoints_from_path(str(path))
        assert endpoints.action.headers == {SECRET_HEADER: "from-the-environment"}, path
