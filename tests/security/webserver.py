"""The web server (``python -m bot.web``) in a subprocess on a free port, spoken to over raw HTTP.

Raw, because the findings are about request lines a browser or an HTTP client library would
normalise before sending (``/widget/./console/…``, ``%63onsole``, a forged ``Host``).
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.settings import get_settings
from tests.servers import ROOT, _wait_until_up, free_port


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class WebServer:
    host: str
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Answer:
        """One request with ``path`` sent exactly as given (http.client does not normalise)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            return Answer(response.status, dict(response.headers), response.read())
        finally:
            connection.close()


@contextmanager
def web_server(
    env: Mapping[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[WebServer]:
    """``python -m bot.web`` with ``env`` on top of this test session's environment, waited
    for on ``host``."""
    port = free_port()
    logs = Path(get_settings().var_dir) / "log"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"web-security-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.web"],
        cwd=ROOT,
        env={**os.environ, "GIFTBOT_WEB_PORT": str(port), **(env or {})},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_up(f"http://{host}:{port}/health", process, log)
        yield WebServer(host, port, log)
    finally:
        process.terminate()
        process.wait(timeout=30)
