"""Which messaging channels are on, and Rasa's credentials file that turns them on.

Rasa reads its channels from ``--credentials``. ``giftbot channels credentials`` writes
``var/credentials.yml``: the project's ``credentials.yml`` (the web channels) plus one entry per
platform whose settings are present. The entries carry no secret: each channel reads its
settings from bot.settings when Rasa creates it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from bot.private_files import private_file
from bot.settings import PROJECT_ROOT, ChannelSettings

# platform -> the channel class Rasa loads (the platform's name is also its route)
CHANNEL_CLASSES = {
    "slack": "bot.channels.slack.SlackChannel",
    "telegram": "bot.channels.telegram.TelegramChannel",
    "facebook": "bot.channels.facebook.FacebookChannel",
    "twilio": "bot.channels.twilio.TwilioChannel",
    "botframework": "bot.channels.botframework.BotFrameworkChannel",
}
BASE_CREDENTIALS = PROJECT_ROOT / "credentials.yml"


def enabled(settings: ChannelSettings) -> list[str]:
    """The platforms whose settings are present, in a stable order."""
    return [name for name in CHANNEL_CLASSES if getattr(settings, name) is not None]


def credentials(settings: ChannelSettings, base: Path = BASE_CREDENTIALS) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(base.read_text()) or {}
    for name in enabled(settings):
        config[CHANNEL_CLASSES[name]] = None
    return config


def write_credentials(path: Path, settings: ChannelSettings) -> list[str]:
    """Write Rasa's credentials file for ``settings``; the platforms turned on."""
    # The platforms' tokens and secrets are in it: 0600, like everything under var/.
    tmp = private_file(path.with_suffix(f".{os.getpid()}.tmp"))
    header = "# Written by `giftbot channels credentials` from credentials.yml and the settings.\n"
    tmp.write_text(header + yaml.safe_dump(credentials(settings), sort_keys=False))
    tmp.replace(path)
    return enabled(settings)


def webhook_url(public_url: str, platform: str) -> str:
    return f"{public_url.rstrip('/')}/webhooks/{platform}/webhook"
