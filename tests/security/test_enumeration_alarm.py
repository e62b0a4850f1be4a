"""Finding 7 (enumeration): failed lookups are counted across every conversation, and a
surge logs one alarm line that names counts only, never a card, code or conversation."""

from __future__ import annotations

import logging

import pytest

from actions import verification
from actions.balance import ActionCheckBalance
from bot.settings import get_settings
from bot.wallet.repository import WalletRepository
from tests.actions.conftest import Conversation

pytestmark = pytest.mark.anyio

UNKNOWN_SERIAL = "1722222222222222222"


async def test_a_surge_of_failed_lookups_logs_one_alarm(
    domain: dict, wallet: WalletRepository, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    monkeypatch.setattr(verification, "_last_alarm", 0.0)  # no alarm yet in this process
    threshold = get_settings().enumeration_alarm_per_minute
    slots = {"serial_number": UNKNOWN_SERIAL, "order_number": "111-1111111-1111111"}
    senders = []
    with caplog.at_level(logging.WARNING, logger="actions.verification"):
        for _ in range(threshold + 5):  # a new conversation each time, as a script would
            conversation = Conversation(domain)
            senders.append(conversation.sender_id)
            await conversation.run(ActionCheckBalance(), slots=slots)
    alarms = [r for r in caplog.records if r.getMessage().startswith("ALARM failed card lookups")]
    assert len(alarms) == 1  # once a minute at most, however long the surge lasts
    line = alarms[0].getMessage()
    assert UNKNOWN_SERIAL not in line and not any(sender in line for sender in senders)
