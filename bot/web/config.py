"""The web server's configuration: its settings (from bot.settings) and where its files are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.settings import PROJECT_ROOT, get_settings


@dataclass(frozen=True)
class WebConfig:
    host: str
    port: int
    public_url: str
    """This server as browsers reach it (``GIFTBOT_PUBLIC_WEB_URL``): the demo page's links."""
    rasa_url: str
    """The Rasa server as the shopper's browser reaches it (``GIFTBOT_RASA_URL``). Both URLs are
    configured, never taken from a request's Host header, which any client can forge."""
    demo_mode: bool
    """Demo sign-in on (``GIFTBOT_DEMO_MODE``): anyone may sign in as a demo customer."""
    widget_dir: Path
    """The chat widget and the demo page: public, served by the ``/widget/`` static route."""
    console_dir: Path
    """The agent console's pages and scripts: outside ``widget_dir`` so that no static route
    reaches them, whatever the spelling of the path; only the console's routes serve them."""
    socketio_dist: Path
    """node_modules/socket.io-client/dist, installed by scripts/setup_web.sh (npm ci)."""

    @classmethod
    def from_env(cls) -> WebConfig:
        settings = get_settings()
        return cls(
            host=settings.web_host,
            port=settings.web_port,
            public_url=settings.public_web_url,
            rasa_url=settings.rasa_url,
            demo_mode=settings.demo_mode,
            widget_dir=PROJECT_ROOT / "widget",
            console_dir=PROJECT_ROOT / "console",
            socketio_dist=PROJECT_ROOT / "node_modules" / "socket.io-client" / "dist",
        )

    def check_installed(self) -> None:
        """Stop with what to run when the npm dependencies are missing."""
        if not (self.socketio_dist / "socket.io.esm.min.js").is_file():
            raise SystemExit(
                f"{self.socketio_dist} is missing: run scripts/setup_web.sh (it runs npm ci)"
            )
