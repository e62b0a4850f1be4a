"""Dependencies (finding 9): aiohttp 3.9 (Rasa 3.6 pins aiohttp<3.10) inflates a compressed
request body before ``client_max_size`` can stop it (CVE-2025-69223, fixed in 3.13.3). The web
server never decompresses request bodies, so a compressed one is refused unread, whatever it
would inflate to. Real HTTP to ``python -m bot.web``."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator

import pytest

from bot.wallet.repository import WalletRepository
from tests.security.webserver import WebServer, web_server

JSON = {"Content-Type": "application/json"}
MASK_BODY = json.dumps({"text": "my code is HX7K-M3QRTN-5WZE"}).encode()


@pytest.fixture(scope="module")
def server(wallet: WalletRepository) -> Iterator[WebServer]:
    with web_server() as running:
        yield running


def test_a_plain_body_is_read(server: WebServer) -> None:
    answer = server.request("POST", "/api/mask", headers=JSON, body=MASK_BODY)
    assert answer.status == 200 and json.loads(answer.body) == {
        "text": "my code is [claim code hidden]"
    }


@pytest.mark.parametrize(
    ("encoding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress)]
)
def test_a_compressed_body_is_not_inflated(
    server: WebServer, encoding: str, compress: object
) -> None:
    assert callable(compress)
    headers = {**JSON, "Content-Encoding": encoding}
    small = server.request("POST", "/api/mask", headers=headers, body=compress(MASK_BODY))
    assert small.status == 400 and b"JSON object" in small.body
    # 64 MiB of JSON whitespace squeezed into about 64 KiB: refused the same way, unread.
    bomb = compress(b"{" + b" " * (64 * 1024 * 1024) + b"}")
    refused = server.request("POST", "/api/mask", headers=headers, body=bomb)
    assert refused.status in (400, 413)
    assert server.request("GET", "/health").status == 200
