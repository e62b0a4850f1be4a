"""The routes: the demo page, the widget's files, demo sign-in and claim-code masking.

What the page says about where things are (its links, the widget's socket URL, the CSP) comes
from the configured URLs only: a request's Host header is the client's to forge.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

from bot.settings import get_settings
from bot.tokens import mint_customer_token
from bot.wallet import codes, demo
from bot.wallet.repository import WalletRepository
from bot.web.config import WebConfig
from bot.web.console import create_console_app
from bot.web.http import json_body, json_error, string_field
from bot.web.link import setup_account_linking
from bot.web.pages import render_demo_page
from bot.web.ratelimits import rate_limits

CONFIG = web.AppKey("config", WebConfig)
REPOSITORY = web.AppKey("repository", WalletRepository)

MAX_MESSAGE_CHARS = 5_000
DEMO_EMAILS = frozenset(email for _, email in demo.CUSTOMERS)
# Served to any origin: a store embeds the widget (an ES module) from this server.
SHARED_PREFIXES = ("/widget/", "/vendor/", "/api/")


def create_app(config: WebConfig, repository: WalletRepository | None = None) -> web.Application:
    # Per-client limits inside _headers, so that a 429 carries the same headers (CORS).
    app = web.Application(
        middlewares=[_headers, rate_limits()],
        client_max_size=64 * 1024,
        # Never inflate a request body: aiohttp 3.9 (Rasa 3.6 pins <3.10) decompresses before
        # client_max_size can stop it, so a small gzip body becomes gigabytes in memory
        # (CVE-2025-69223, fixed in 3.13.3). Browsers never compress what they send.
        handler_args={"auto_decompress": False},
    )
    app[CONFIG] = config
    app[REPOSITORY] = repository or WalletRepository.from_settings()
    app.cleanup_ctx.append(_dispose_on_exit)
    app.router.add_get("/", demo_page)
    app.router.add_get("/health", health)
    app.router.add_get("/favicon.ico", no_icon)
    if config.demo_mode:  # else 404, like any route that does not exist
        app.router.add_post("/demo/sign-in", sign_in)
    app.router.add_post("/api/mask", mask)
    app.router.add_route("OPTIONS", "/api/mask", preflight)
    app.add_subapp("/agent", create_console_app(app[REPOSITORY], config.console_dir))
    setup_account_linking(app, app[REPOSITORY], config.demo_mode)
    app.router.add_static("/widget/", config.widget_dir)
    app.router.add_static("/vendor/socket.io/", config.socketio_dist)
    return app


async def _dispose_on_exit(app: web.Application) -> AsyncIterator[None]:
    yield
    app[REPOSITORY].engine.dispose()


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.path.startswith(SHARED_PREFIXES):
        response.headers["Access-Control-Allow-Origin"] = "*"
        # Revalidate (ETag / Last-Modified) so that a new widget version is picked up at once.
        response.headers.setdefault("Cache-Control", "no-cache")
    return response


def _content_security_policy(rasa: URL) -> str:
    origin = rasa.origin()
    socket_origin = origin.with_scheme("wss" if origin.scheme == "https" else "ws")
    return "; ".join(
        [
            "default-src 'self'",
            f"connect-src 'self' {origin} {socket_origin}",
            "img-src 'self' data: https:",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


async def demo_page(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    rasa = URL(config.rasa_url)
    page = render_demo_page(
        config.widget_dir / "demo" / "index.html",
        page_origin=config.public_url,
        socket_url=config.rasa_url,
        demo_mode=config.demo_mode,
    )
    response = web.Response(text=page, content_type="text/html")
    response.headers["Content-Security-Policy"] = _content_security_policy(rasa)
    response.headers["Cache-Control"] = "no-store"
    return response


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def sign_in(request: web.Request) -> web.Response:
    """Sign in as a demo customer: the token a store would hand its own widget."""
    email = string_field(await json_body(request), "email").strip().lower()
    if email not in DEMO_EMAILS:
        raise json_error(web.HTTPNotFound, "Only the demo customers can sign in on the demo page.")
    repository = request.app[REPOSITORY]
    customer = await asyncio.to_thread(repository.find_customer_by_email, email)
    if customer is None:
        raise json_error(web.HTTPNotFound, "No such customer: run `giftbot wallet seed --demo`.")
    token = mint_customer_token(customer.id, get_settings().token_secret)
    return web.json_response({"customer_token": token, "name": customer.name, "email": email})


async def mask(request: web.Request) -> web.Response:
    text = string_field(await json_body(request), "text")
    if len(text) > MAX_MESSAGE_CHARS:
        raise json_error(
            web.HTTPBadRequest, f"'text' can have at most {MAX_MESSAGE_CHARS} characters."
        )
    return web.json_response({"text": codes.mask_claim_codes(text)})


async def preflight(request: web.Request) -> web.Response:
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "86400",
        },
    )
