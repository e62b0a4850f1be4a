"""The action server: rasa_sdk's app, answering Rasa only.

``rasa run actions`` (rasa_sdk 3.6.2) listens on every interface (``SANIC_HOST`` or 0.0.0.0),
runs an action for anyone who can reach it, and on an error answers with the whole request
body, slot values and all. Anyone on the network could then run ``action_handoff`` with a
forged ``verification`` slot, or read a claim code back out of an error. So the project runs
rasa_sdk's app with three changes, here and only here:

- it listens on ``GIFTBOT_ACTIONS_HOST`` (127.0.0.1 unless configured);
- every request but ``/health`` must carry ``X-Giftbot-Action-Secret`` with the shared secret
  (``GIFTBOT_ACTION_SERVER_SECRET``), which Rasa sends from ``endpoints.yml``; else 403;
- an action that fails answers a bare 500 and logs the exception's type, never the request.

Run: ``python -m bot.action_server [--port 5055] [--logging-config-file logging.yml]``.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import logging.config
from pathlib import Path

import yaml
from rasa_sdk import utils as sdk_utils
from rasa_sdk.endpoint import create_app
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.settings import get_settings

SECRET_HEADER = "X-Giftbot-Action-Secret"  # noqa: S105 - a header name, not a secret
DEFAULT_PORT = 5055
OPEN_PATHS = frozenset({"/health"})  # load balancers probe it without the secret

logger = logging.getLogger(__name__)


def build_app(secret: str, actions_package: str = "actions") -> Sanic:
    """rasa_sdk's app for ``actions_package``, refusing callers without ``secret``."""
    if not secret:
        raise SystemExit("the action server needs GIFTBOT_ACTION_SERVER_SECRET")
    app = create_app(actions_package, cors_origins=None)
    expected = secret.encode()

    @app.on_request
    async def require_the_shared_secret(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS:
            return None
        given = (request.headers.get(SECRET_HEADER) or "").encode()
        if not hmac.compare_digest(given, expected):
            return response.json({"error": "forbidden"}, status=403)
        return None

    # Registered after rasa_sdk's handler for Exception, so it replaces it.
    @app.exception(Exception)
    async def action_failed(request: Request, exception: Exception) -> HTTPResponse:
        logger.error("An action failed: %s", type(exception).__name__)
        return response.json({"error": "the action failed"}, status=500)

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--actions", default="actions")
    parser.add_argument("--logging-config-file", type=Path)
    args = parser.parse_args(argv)
    if args.logging_config_file:
        logging.config.dictConfig(yaml.safe_load(args.logging_config_file.read_text()))
    else:
        logging.basicConfig(level=logging.INFO)
    sdk_utils.update_sanic_log_level()
    settings = get_settings()
    app = build_app(settings.action_server_secret, args.actions)
    logger.info("Action server listening on %s:%d", settings.actions_host, args.port)
    app.run(
        settings.actions_host,
        args.port,
        workers=sdk_utils.number_of_sanic_workers(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
