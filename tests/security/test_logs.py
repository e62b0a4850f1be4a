"""No claim code and no customer token in any file the servers write (issue 8, finding 2).

Turns are ended badly every way a client can (hanging up mid-turn, timing out, bad JSON, wrong
types, oversized, over the rate limit) and well, over REST and socket.io, with a real claim code
in every spelling the parser accepts and a real customer token in the message and metadata; then
every file under the servers' folder (logs, tracker store) is searched for both.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from bot.wallet.demo import CARDS
from bot.wallet.repository import WalletRepository
from tests.conftest import token_for
from tests.security.edge import MESSAGE_LIMIT, PROXY_HEADER, new_client_address
from tests.security.sockets import Shopper
from tests.servers import ROOT, Servers

pytestmark = pytest.mark.servers

CODE = CARDS[0].claim_code  # RW7T-K4NMPX-2H9C, a real card of the demo store
SPELLINGS = [
    CODE,
    CODE.lower(),
    CODE.replace("-", " "),
    CODE.replace("-", ""),
    CODE.lower().replace("-", "  "),
    CODE.replace("-", " - "),
]


def webhook(servers: Servers) -> str:
    return f"{servers.rasa_url}/webhooks/rest/webhook"


def post(
    servers: Servers, body: str, address: str | None = None, **kwargs: object
) -> requests.Response:
    headers = {"Content-Type": "application/json", PROXY_HEADER: address or new_client_address()}
    return requests.post(webhook(servers), data=body.encode(), headers=headers, **kwargs)  # type: ignore[arg-type]


def hang_up_mid_turn(servers: Servers, body: str) -> None:
    """Send a whole request and close the connection without reading the answer."""
    parts = urlsplit(servers.rasa_url)
    raw = body.encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(
            b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: rasa\r\n"
            b"Content-Type: application/json\r\n"
            + f"{PROXY_HEADER}: {new_client_address()}\r\n".encode()
            + f"Content-Length: {len(raw)}\r\n\r\n".encode()
            + raw
        )


def files_under(folder: Path) -> Iterator[Path]:
    return (path for path in folder.rglob("*") if path.is_file())


def leaks(folder: Path, token: str) -> list[str]:
    """Where the claim code (in any spelling) or the token (or a recognisable part) is."""
    payload, signature = token.split(".")[1:]
    code = re.sub(r"[^A-Z0-9]", "", CODE.upper())
    found = []
    for path in files_under(folder):
        raw = path.read_bytes().decode("latin-1")
        if code in re.sub(r"[^A-Z0-9]", "", raw.upper()):
            found.append(f"claim code in {path}")
        for part in (token, payload[:30], signature):
            if part in raw:
                found.append(f"token in {path}")
    return found


def test_no_claim_code_or_token_is_written_anywhere(
    edge_servers: Servers, wallet: WalletRepository
) -> None:
    token = token_for(wallet, CARDS[0].purchaser_email)
    signed_in = {"customer_token": token}

    # --- REST, turns that end well: the claim-code journey in every spelling.
    sender = f"logs-{uuid.uuid4().hex[:12]}"
    for spelling in SPELLINGS:
        for text in ("my claim code doesn't work", spelling, f"it is {spelling}, token {token}"):
            body = {"sender": sender, "message": text, "metadata": signed_in}
            assert post(edge_servers, json.dumps(body), timeout=120).status_code == 200

    # --- REST, turns that end badly.
    sentence = f"my claim code {CODE} does not work {token}"
    turn = json.dumps({"sender": sender, "message": sentence, "metadata": signed_in})
    hang_up_mid_turn(edge_servers, turn)
    with pytest.raises(requests.exceptions.Timeout):
        post(edge_servers, turn, timeout=0.01)  # the client gives up: a timeout
    for body in [
        turn[:-5],  # bad JSON
        json.dumps({"sender": sender, "message": [CODE], "metadata": signed_in}),
        json.dumps({"sender": sender, "message": sentence, "metadata": token}),
        json.dumps({"sender": {"code": CODE, "token": token}, "message": sentence}),
        json.dumps({"sender": sender, "message": 7, "metadata": {"customer_token": [token]}}),
        json.dumps({"sender": sender, "message": (sentence + " ") * 60, "metadata": signed_in}),
        json.dumps({"sender": sender, "message": sentence * 30_000, "metadata": signed_in}),
    ]:
        assert post(edge_servers, body, timeout=120).status_code in (200, 400, 413)
    limited = new_client_address()
    for _ in range(MESSAGE_LIMIT):
        post(edge_servers, "{}", limited, timeout=120)
    assert post(edge_servers, turn, limited, timeout=120).status_code == 429

    # --- socket.io, well and badly.
    async def over_socketio() -> None:
        shopper = Shopper(edge_servers)
        await shopper.connect()
        await shopper.session({"session_secret": uuid.uuid4().hex})
        await shopper.say("my claim code doesn't work", signed_in)
        await shopper.say(CODE.replace("-", " - ").lower(), signed_in)
        for data in (
            {"message": (sentence + " ") * 60, "metadata": signed_in},
            {"message": [CODE], "metadata": signed_in},
            {"message": sentence, "metadata": token},
            {"message": sentence, "metadata": json.dumps(signed_in)[:-2]},
        ):
            await shopper.send(data)
        for _ in range(MESSAGE_LIMIT):
            await shopper.send({"message": sentence, "metadata": signed_in})
        await shopper.close()

    asyncio.run(over_socketio())

    # The turns whose clients left run on to the end: one more turn in that conversation
    # waits for them (Rasa handles a conversation's messages one at a time).
    body = {"sender": sender, "message": "thanks", "metadata": signed_in}
    assert post(edge_servers, json.dumps(body), timeout=120).status_code == 200

    assert leaks(edge_servers.var_dir, token) == []


# What Rasa 3.6.21, Sanic and Python do with user text, reproduced in a fresh interpreter that
# reads logging.yml the way `rasa run --logging-config-file` does. These lines leak on purpose
# (a test code and a test token): the test asserts that nothing of them reaches the output.
LOGGING_PROBE = """
import json, logging, sys, warnings
import yaml
logging.config.dictConfig(yaml.safe_load(open(sys.argv[1])))
code, token = sys.argv[2], sys.argv[3]
log = logging.getLogger("rasa.core.channels.rest")
log.error(json.dumps({"event": "rest.message.received.timeout", "text": "it is " + code,
                      "metadata": {"customer_token": token}, "level": "error"}))
log.info("Received user message %r with metadata %s", "my code " + code.lower(), token[:80])
try:
    raise ValueError("invalid literal: " + code.replace("-", " "))
except ValueError:
    logging.getLogger("sanic.error").exception("Exception occurred while handling uri")
warnings.warn("Categorical slot 'name' is set to a value ('Ann Lee') that is not specified")
logging.getLogger("rasa").debug("Predicted next action with slots %s", "Ann Lee")
"""


def test_logging_yml_redacts_every_record_of_the_process() -> None:
    token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLW9mLXRoaXMtdG9rZW4"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import logging.config\n" + LOGGING_PROBE,
            str(ROOT / "logging.yml"),
            CODE,
            token,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = result.stdout + result.stderr
    # Rasa's structured event keeps its name only; the traceback its place and type only.
    assert (
        '{"event": "rest.message.received.timeout", "text": "[redacted]", '
        '"metadata": "[redacted]", "level": "error"}'
    ) in out
    assert "Traceback (most recent call last; values withheld):" in out
    assert "\nValueError\n" in out and "invalid literal" not in out
    assert "UserWarning: Categorical slot [redacted] is set to a value ([redacted])" in out
    assert "Ann Lee" not in out and "Predicted next action" not in out  # DEBUG is not written
    assert re.sub(r"[^A-Z0-9]", "", CODE.upper()) not in re.sub(r"[^A-Z0-9]", "", out.upper())
    assert token.split(".")[1] not in out and token.split(".")[2] not in out


def test_a_structured_traceback_keeps_its_frames_but_no_value_or_variable() -> None:
    """What structlog's dict_tracebacks (Rasa's JSON logs) makes of an exception."""
    from bot.log_redaction import redact_message

    event = {
        "event": "rest.message.received.failure",
        "level": "error",
        "text": CODE,
        "exception": [
            {
                "exc_type": "TypeError",
                "exc_value": f"bad {CODE}",
                "frames": [
                    {
                        "filename": "rasa/core/channels/rest.py",
                        "lineno": 161,
                        "name": "receive",
                        "line": "",
                        "locals": {"text": f"'{CODE}'", "metadata": "{'customer_token': 'eyJhbGc"},
                    }
                ],
            }
        ],
    }
    assert json.loads(redact_message(json.dumps(event))) == {
        "event": "rest.message.received.failure",
        "level": "error",
        "text": "[redacted]",
        "exception": [
            {
                "exc_type": "TypeError",
                "frames": [
                    {"filename": "rasa/core/channels/rest.py", "lineno": 161, "name": "receive"}
                ],
            }
        ],
    }
