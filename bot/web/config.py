"""The web server's settings, from environment variables (see the README's table)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bot.settings import PROJECT_ROOT


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SystemExit(f"{name} must be a TCP port number, got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class WebConfig:
    host: str
    port: int
    rasa_url: str | None
    """The Rasa server as the shopper's browser reaches it; None: the page's host name on
    ``rasa_port``, so that the demo works whether it is opened as localhost or by address."""
    rasa_port: int
    widget_dir: Path
    socketio_dist: Path
    """node_modules/socket.io-client/dist, installed by scripts/setup_web.sh (npm ci)."""

    @classmethod
    def from_env(cls) -> WebConfig:
        return cls(
            host=os.environ.get("GIFTBOT_WEB_HOST") or "0.0.0.0",  # noqa: S104 - like Rasa's server
            port=_port("GIFTBOT_WEB_PORT", 8080),
            rasa_url=(os.environ.get("GIFTBOT_RASA_URL") or "").rstrip("/") or None,
            rasa_port=_port("GIFTBOT_RASA_PORT", 5005),
            widget_dir=PROJECT_ROOT / "widget",
            socketio_dist=PROJECT_ROOT / "node_modules" / "socket.io-client" / "dist",
        )

    def check_installed(self) -> None:
        """Stop with what to run when the npm dependencies are missing."""
        if not (self.socketio_dist / "socket.io.esm.min.js").is_file():
            raise SystemExit(
                f"{self.socketio_dist} is missing: run scripts/setup_web.sh (it runs npm ci)"
            )
