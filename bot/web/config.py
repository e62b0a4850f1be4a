"""The web server's configuration: its settings (from bot.settings) and where its files are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.settings import PROJECT_ROOT, get_settings


@dataclass(frozen=True)
class WebConfig:
    host: str
    port: int
    rasa_url: str | None
    """The Rasa server as the shopper's browser reaches it; None: the page's host name on
    ``rasa_port``, so that the demo works whether it is opened as localhost or by address."""
    rasa_port: int
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
            rasa_url=settings.rasa_url,
            rasa_port=settings.rasa_port,
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
