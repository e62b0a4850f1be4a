"""``giftbot channels``: which channels are on, Rasa's credentials file, Telegram's webhook."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.settings import get_channel_settings
from tests.channels import standins
from tests.channels.standins import StandIn, StandInServer

TELEGRAM = {
    "GIFTBOT_TELEGRAM_BOT_TOKEN": "7000002:cli-test-token",
    "GIFTBOT_TELEGRAM_BOT_NAME": "giftbot_cli_bot",
    "GIFTBOT_TELEGRAM_SECRET_TOKEN": "cli-secret_token-1",
}


@pytest.fixture
def telegram(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    stand_in = StandIn("telegram")
    server = StandInServer()
    server.start(
        [(stand_in, standins.telegram_app(stand_in, TELEGRAM["GIFTBOT_TELEGRAM_BOT_TOKEN"]))]
    )
    for name, value in {**TELEGRAM, "GIFTBOT_TELEGRAM_API_URL": stand_in.url}.items():
        monkeypatch.setenv(name, value)
    get_channel_settings.cache_clear()
    yield stand_in
    server.stop()
    monkeypatch.undo()
    get_channel_settings.cache_clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    status = main([*argv, "--json"])
    out = capsys.readouterr().out
    return status, json.loads(out) if status == 0 else {}


def test_lists_the_channels_whose_settings_are_set(
    telegram: StandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "channels") == (0, {"enabled": ["telegram"]})


def test_writes_rasas_credentials_without_secrets(
    telegram: StandIn, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "credentials.yml"
    status, _ = run(capsys, "channels", "credentials", "--output", str(path))
    assert status == 0
    written = yaml.safe_load(path.read_text())
    base = yaml.safe_load((Path(__file__).parents[2] / "credentials.yml").read_text())
    assert written == {**base, "bot.channels.telegram.TelegramChannel": None}
    assert TELEGRAM["GIFTBOT_TELEGRAM_BOT_TOKEN"] not in path.read_text()


def test_registers_telegrams_webhook_with_the_secret_token(
    telegram: StandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run(capsys, "channels", "register", "--url", "https://bot.example.com/")
    url = "https://bot.example.com/webhooks/telegram/webhook"
    assert (status, out) == (0, {"registered": [{"channel": "telegram", "url": url}]})
    (call,) = telegram.matching(lambda c: c.path.endswith("/setWebhook"))
    assert call.body == {
        "url": url,
        "secret_token": TELEGRAM["GIFTBOT_TELEGRAM_SECRET_TOKEN"],
        "allowed_updates": ["message", "callback_query"],
    }


def test_register_without_a_public_url_is_a_usage_error(
    telegram: StandIn, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GIFTBOT_PUBLIC_URL", raising=False)
    get_channel_settings.cache_clear()
    assert main(["channels", "register"]) == 2
    assert "GIFTBOT_PUBLIC_URL" in capsys.readouterr().err
    assert telegram.calls == []
