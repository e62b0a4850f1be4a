"""``python -m bot.web``: serve the demo store page and the chat widget (port 8080)."""

from __future__ import annotations

import logging

from aiohttp import web

from bot.settings import get_settings
from bot.web.app import create_app
from bot.web.config import WebConfig


def main() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("aiohttp").setLevel(logging.INFO)
    get_settings()  # reads .env first, so that the web settings below see it too
    config = WebConfig.from_env()
    config.check_installed()
    print(f"Shopper demo page on {config.public_url}/ (listening on {config.host})", flush=True)
    web.run_app(create_app(config), host=config.host, port=config.port, print=None)


if __name__ == "__main__":
    main()
