"""Account linking for the messaging channels (bot/channels/linking.py).

A platform user who says "link my account" gets a one-time link to the store's sign-in page
(``GIFTBOT_ACCOUNT_LINK_URL``). Two ways to finish it:

- ``POST /api/link`` ``{"link_token", "customer_token"}``: for the store's own sign-in page,
  once the shopper signed in there (the customer token is the store-signed one the widget
  gets too);
- ``GET``/``POST /link``: the demo store's sign-in page, in demo mode only, where anyone may
  sign in as a demo customer (like the demo page's sign-in).

Either way the link is single use and expiring, and the platform user then counts as that
customer on their platform until they say "unlink my account".
"""

from __future__ import annotations

import asyncio
from html import escape

from aiohttp import web

from bot.channels.linking import LinkTokenError, read_link_token
from bot.settings import get_settings
from bot.tokens import verify_customer_token
from bot.wallet import demo
from bot.wallet.repository import WalletRepository
from bot.wallet.repository.channels import ChannelsRepository, LinkOutcome

CHANNELS = web.AppKey("channels_repository", ChannelsRepository)
WALLET = web.AppKey("link_wallet", WalletRepository)
OUTCOME_TEXT = {
    LinkOutcome.EXPIRED: "This link has expired. Ask the assistant for a new one.",
    LinkOutcome.USED: "This link has been used already. Ask the assistant for a new one.",
    LinkOutcome.UNKNOWN: "This link is not valid. Ask the assistant for a new one.",
}
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"


def setup_account_linking(
    app: web.Application, repository: WalletRepository, demo_mode: bool
) -> None:
    settings = get_settings()
    app[WALLET] = repository
    app[CHANNELS] = ChannelsRepository(
        repository.engine, settings.claim_code_secret, settings.sealing_key
    )
    app.router.add_post("/api/link", link_api)
    if demo_mode:  # else 404: the store's own sign-in page plays this part
        app.router.add_get("/link", demo_link_page)
        app.router.add_post("/link", demo_link)


async def _link(app: web.Application, link_token: object, customer_id: int) -> LinkOutcome:
    try:
        link_id = read_link_token(link_token, get_settings().token_secret)
    except LinkTokenError:
        return LinkOutcome.UNKNOWN
    return await asyncio.to_thread(app[CHANNELS].use_link, link_id, customer_id)


async def link_api(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return web.json_response({"error": "The body must be a JSON object."}, status=400)
    customer_id = verify_customer_token(body.get("customer_token"), get_settings().token_secret)
    if customer_id is None:
        return web.json_response({"error": "Sign in first: no valid customer token."}, status=401)
    try:
        read_link_token(body.get("link_token"), get_settings().token_secret)
    except LinkTokenError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    outcome = await _link(request.app, body.get("link_token"), customer_id)
    if outcome is LinkOutcome.LINKED:
        return web.json_response({"linked": True})
    return web.json_response({"error": OUTCOME_TEXT[outcome]}, status=410)


# -------------------------------------------------------------------- demo sign-in page


def _page(title: str, body: str, status: int = 200) -> web.Response:
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>body{{font-family:system-ui,sans-serif;"
        "max-width:32rem;margin:3rem auto;padding:0 1rem}}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    response = web.Response(text=html, content_type="text/html", status=status)
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["Cache-Control"] = "no-store"
    return response


async def demo_link_page(request: web.Request) -> web.Response:
    token = request.query.get("token", "")
    try:
        read_link_token(token, get_settings().token_secret)
    except LinkTokenError as exc:
        return _page("Link your account", f"<p>{escape(str(exc))}</p>", status=400)
    options = "".join(
        f"<option value='{escape(email)}'>{escape(name)} ({escape(email)})</option>"
        for name, email in demo.CUSTOMERS
    )
    form = (
        "<p>Sign in to link your chat to your store account. (Demo store: choose a demo "
        "customer.)</p><form method='post' action='/link'>"
        f"<input type='hidden' name='token' value='{escape(token)}'>"
        f"<label>Customer <select name='email'>{options}</select></label> "
        "<button type='submit'>Sign in and link</button></form>"
    )
    return _page("Link your account", form)


async def demo_link(request: web.Request) -> web.Response:
    form = await request.post()
    email = str(form.get("email") or "").strip().lower()
    if email not in {address for _, address in demo.CUSTOMERS}:
        return _page("Link your account", "<p>Only the demo customers can sign in.</p>", 404)
    found = await asyncio.to_thread(request.app[WALLET].find_customer_by_email, email)
    if found is None:
        return _page("Link your account", "<p>Run giftbot wallet seed --demo first.</p>", 404)
    outcome = await _link(request.app, form.get("token"), found.id)
    if outcome is not LinkOutcome.LINKED:
        status = 400 if outcome is LinkOutcome.UNKNOWN else 410
        return _page("Link your account", f"<p>{escape(OUTCOME_TEXT[outcome])}</p>", status)
    return _page(
        "Account linked",
        "<p>Your chat is now linked to your store account. Go back to the chat: the "
        "assistant knows who you are there now. To undo it, say \u201cunlink my account\u201d "
        "in the chat.</p>",
    )
