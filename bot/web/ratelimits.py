"""Per-client rate limits of the web server's public routes, with the limiter of the Rasa
server's channels (bot/ratelimit.py): claim-code masking (one call per widget message) and the
two sign-ins (demo customers, agents). Over its limit a client gets a generic 429."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.ratelimit import RATE_LIMITED, Limit, RateLimiter, client_address
from bot.settings import get_edge_settings


def rate_limits(limiter: RateLimiter | None = None) -> Middleware:
    """The middleware; each limited route counts separately per client address."""
    edge = get_edge_settings()
    limiter = limiter or RateLimiter.from_settings()
    limits = {
        ("POST", "/api/mask"): Limit("web-mask", edge.rate_limit_messages),
        ("POST", "/demo/sign-in"): Limit("web-demo-sign-in", edge.rate_limit_sign_ins),
        ("POST", "/agent/sign-in"): Limit("web-agent-sign-in", edge.rate_limit_sign_ins),
    }

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        limit = limits.get((request.method, request.path))
        if limit is not None:
            client = client_address(request.remote, request.headers, edge.trusted_proxy_header)
            if not await limiter.allow(limit, client):
                return web.json_response(
                    {"error": RATE_LIMITED}, status=429, headers={"Retry-After": "60"}
                )
        return await handler(request)

    return middleware
