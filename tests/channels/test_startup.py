"""Rasa starts with every messaging channel configured while every platform is down: the
suite's servers were started before any stand-in listened (tests/conftest.py), where
Rasa 3.6.21's own Telegram and Bot Framework connectors call their platform at start-up."""

from __future__ import annotations

import pytest
import requests
import yaml

from bot.channels.registry import CHANNEL_CLASSES
from tests.servers import Servers

pytestmark = pytest.mark.servers


def test_every_channel_is_on_and_answers_its_route(channel_servers: Servers) -> None:
    credentials = yaml.safe_load((channel_servers.var_dir / "credentials.yml").read_text())
    assert set(CHANNEL_CLASSES.values()) <= set(credentials)
    for platform in CHANNEL_CLASSES:
        answer = requests.get(f"{channel_servers.rasa_url}/webhooks/{platform}/", timeout=30)
        assert answer.json() == {"status": "ok"}, platform


def test_an_oversized_payload_is_refused_before_anything_reads_it(channel_servers: Servers) -> None:
    for platform in CHANNEL_CLASSES:
        answer = requests.post(
            f"{channel_servers.rasa_url}/webhooks/{platform}/webhook",
            data=b"x" * (300 * 1024),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert answer.status_code == 413, platform
