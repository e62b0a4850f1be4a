"""The ``giftbot`` command: administers the wallet store and the console's agents, and mints
customer tokens.

Every command takes ``--json`` for machine-readable output. Bad input exits with status 2 and
a one-line reason on stderr, and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from sqlalchemy import inspect

from bot.settings import get_settings
from bot.tokens import mint_customer_token
from bot.wallet import codes, db, demo
from bot.wallet.money import AmountError, format_money, parse_amount, to_decimal_string
from bot.wallet.repository import AgentView, CardView, WalletError, WalletRepository


class UsageError(Exception):
    """Bad input: reported in one line, exit status 2."""


Output = dict[str, Any]
# The store keeps every account balance in one currency, so every card is issued in it.
STORE_CURRENCY = "USD"
FROM_STDIN = "-"


class _Parser(argparse.ArgumentParser):
    """Reports a usage error in one line too, instead of argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], tuple[Output, str]] = args.handler
    try:
        payload, text = handler(args)
    except (UsageError, WalletError, AmountError, codes.CodeFormatError) as exc:
        print(f"giftbot: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(payload, indent=2, default=str) if args.json else text)
    return 0


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")

    # Sub-parsers are made with the class of their parent, so they report errors the same way.
    parser = _Parser(prog="giftbot", description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True)

    wallet = groups.add_parser("wallet", help="the wallet store").add_subparsers(
        dest="command", required=True
    )
    wallet.add_parser("init", parents=[common], help="create or upgrade the schema").set_defaults(
        handler=_init
    )
    seed = wallet.add_parser("seed", parents=[common], help="load the demo data")
    seed.add_argument("--demo", action="store_true", required=True)
    seed.set_defaults(handler=_seed)

    customer = wallet.add_parser("create-customer", parents=[common], help="add a customer")
    customer.add_argument("--name", required=True)
    customer.add_argument("--email", required=True)
    customer.set_defaults(handler=_create_customer)

    issue = wallet.add_parser("issue-card", parents=[common], help="create an order and its card")
    issue.add_argument("--amount", required=True, help="e.g. 50.00")
    issue.add_argument("--purchaser", required=True, help="the purchasing customer's email")
    issue.add_argument("--recipient-name", required=True)
    delivery = issue.add_mutually_exclusive_group(required=True)
    delivery.add_argument("--recipient-email")
    delivery.add_argument("--shipping-address")
    issue.set_defaults(handler=_issue_card)

    card = wallet.add_parser("card", parents=[common], help="a card's state and value")
    card.add_argument("serial")
    card.set_defaults(handler=_card)

    show_customer = wallet.add_parser("customer", parents=[common], help="balance and ledger")
    show_customer.add_argument("email")
    show_customer.set_defaults(handler=_customer)

    agent = groups.add_parser("agent", help="agents of the handoff console").add_subparsers(
        dest="command", required=True
    )
    create_agent = agent.add_parser("create", parents=[common], help="add an agent")
    create_agent.add_argument("--username", required=True)
    create_agent.add_argument(
        "--password",
        required=True,
        help="at least 10 characters; '-' reads it from standard input, which keeps it out "
        "of the process list and the shell history",
    )
    create_agent.add_argument("--display-name", help="the name shoppers see (default: username)")
    create_agent.set_defaults(handler=_create_agent)
    agent.add_parser("list", parents=[common], help="every agent").set_defaults(
        handler=_list_agents
    )
    for name, handler, about in (
        ("disable", _disable_agent, "refuse an agent's sign-ins from now on"),
        ("enable", _enable_agent, "allow a disabled agent to sign in again"),
    ):
        command = agent.add_parser(name, parents=[common], help=about)
        command.add_argument("username")
        command.set_defaults(handler=handler)

    channels = groups.add_parser(
        "channels", parents=[common], help="the messaging channels that are on"
    )
    channels.set_defaults(handler=_list_channels)
    channel_commands = channels.add_subparsers(dest="command")
    write = channel_commands.add_parser(
        "credentials", parents=[common], help="write Rasa's credentials file for them"
    )
    write.add_argument("--output", default=None, help="default: var/credentials.yml")
    write.set_defaults(handler=_channel_credentials)
    register = channel_commands.add_parser(
        "register", parents=[common], help="register the webhooks a platform needs (Telegram)"
    )
    register.add_argument("--url", help="this server's public URL (default: GIFTBOT_PUBLIC_URL)")
    register.set_defaults(handler=_register_channels)

    token = groups.add_parser("token", parents=[common], help="mint a customer token")
    token.add_argument("email")
    token.set_defaults(handler=_token)
    return parser


def _repository(require_schema: bool = True) -> WalletRepository:
    repo = WalletRepository.from_settings()
    if require_schema:
        inspector = inspect(repo.engine)
        if not inspector.has_table("alembic_version"):
            raise UsageError("the wallet store has no schema yet: run 'giftbot wallet init' first")
        if not inspector.has_table("agents"):
            raise UsageError("the wallet store's schema is out of date: run 'giftbot wallet init'")
    return repo


# ---------------------------------------------------------------------------------- wallet


def _init(_args: argparse.Namespace) -> tuple[Output, str]:
    repo = _repository(require_schema=False)
    db.upgrade(repo.engine)
    url = repo.engine.url.render_as_string(hide_password=True)
    return {"status": "ok", "database": url}, f"Wallet store ready at {url}"


def _seed(_args: argparse.Namespace) -> tuple[Output, str]:
    repo = _repository()
    loaded = demo.seed(repo)
    settings = get_settings()
    customers = []
    for name, email in demo.CUSTOMERS:
        found = repo.find_customer_by_email(email)
        assert found is not None
        customers.append(
            {
                "name": name,
                "email": email,
                "token": mint_customer_token(found.id, settings.token_secret),
            }
        )
    cards = [
        {
            "label": c.label,
            "serial_number": c.serial,
            "claim_code": c.claim_code,
            "order_number": c.order_number,
            "amount": to_decimal_string(c.amount_minor),
            "purchaser": c.purchaser_email,
            "recipient_name": c.recipient_name,
            "recipient_email": c.recipient_email,
            "shipping_address": c.shipping_address,
        }
        for c in demo.CARDS
    ]
    lines = ["Demo data " + ("loaded." if loaded else "was already there."), "", "Customers:"]
    lines += [f"  {c['name']:<14} {c['email']}" for c in customers]
    lines += ["", "Cards (demo data: the store keeps only the claim codes' HMAC):"]
    lines += [
        f"  {c['label']:<18} serial {c['serial_number']}  claim code {c['claim_code']}  "
        f"order {c['order_number']}  ${c['amount']}"
        for c in cards
    ]
    username, display_name, password = demo.DEMO_AGENT
    agent = {"username": username, "display_name": display_name, "password": password}
    lines += ["", "Sign in as a customer: giftbot token EMAIL"]
    lines += [f"Support agent (console at :8080/agent): {username} / {password}"]
    payload = {"loaded": loaded, "customers": customers, "cards": cards, "agent": agent}
    return payload, "\n".join(lines)


def _create_customer(args: argparse.Namespace) -> tuple[Output, str]:
    customer = _repository().create_customer(args.name, args.email, actor="cli")
    payload = {"id": customer.id, "name": customer.name, "email": customer.email}
    return payload, f"Customer {customer.id}: {customer.name} <{customer.email}>"


def _issue_card(args: argparse.Namespace) -> tuple[Output, str]:
    amount_minor = parse_amount(args.amount)
    issued = _repository().issue_card(
        amount_minor=amount_minor,
        currency=STORE_CURRENCY,
        purchaser_email=args.purchaser,
        recipient_name=args.recipient_name,
        recipient_email=args.recipient_email,
        shipping_address=args.shipping_address,
        actor="cli",
    )
    payload = {
        "serial_number": issued.serial,
        "claim_code": codes.format_claim_code(issued.claim_code),
        "order_number": issued.order_number,
        "amount": to_decimal_string(issued.amount_minor),
        "currency": issued.currency,
    }
    text = (
        f"Issued {format_money(issued.amount_minor, issued.currency)} card\n"
        f"  serial number  {issued.serial}\n"
        f"  claim code     {payload['claim_code']}   (shown once: the store keeps only its HMAC)\n"
        f"  order number   {issued.order_number}"
    )
    return payload, text


def _card_payload(card: CardView) -> Output:
    return {
        "serial_number": card.serial,
        "state": card.display_state,
        "amount": to_decimal_string(card.amount_minor),
        "currency": card.currency,
        "order_number": card.order_number,
        "purchaser": card.purchaser_email,
        "recipient_name": card.recipient_name,
        "failed_attempts": card.failed_attempts,
        "redeemed_by": card.redeemed_by_email,
        "redeemed_at": card.redeemed_at.isoformat() if card.redeemed_at else None,
    }


def _card(args: argparse.Namespace) -> tuple[Output, str]:
    serial = codes.parse_serial(args.serial)
    card = _repository().find_card_by_serial(serial)
    if card is None:
        raise UsageError(f"no card with the serial number {serial}")
    payload = _card_payload(card)
    text = "\n".join(f"{key:<16} {value}" for key, value in payload.items() if value is not None)
    return payload, text


def _customer(args: argparse.Namespace) -> tuple[Output, str]:
    repo = _repository()
    customer = repo.find_customer_by_email(args.email)
    if customer is None:
        raise UsageError(f"no customer with the email {args.email}")
    ledger = repo.ledger(customer.id)
    balance = repo.account_balance(customer.id)
    payload = {
        "id": customer.id,
        "name": customer.name,
        "email": customer.email,
        "balance": to_decimal_string(balance),
        "currency": STORE_CURRENCY,
        "ledger": [
            {
                "amount": to_decimal_string(line.amount_minor),
                "currency": line.currency,
                "kind": line.kind,
                "card": line.masked_serial,
                "reason": line.reason,
                "at": line.created_at.isoformat(),
            }
            for line in ledger
        ],
    }
    lines = [f"{customer.name} <{customer.email}>  balance {format_money(balance)}"]
    lines += [
        f"  {line.created_at:%Y-%m-%d %H:%M}  {format_money(line.amount_minor, line.currency):>10}"
        f"  {line.kind}  {line.masked_serial or line.reason or ''}"
        for line in ledger
    ]
    return payload, "\n".join(lines)


def _token(args: argparse.Namespace) -> tuple[Output, str]:
    customer = _repository().find_customer_by_email(args.email)
    if customer is None:
        raise UsageError(f"no customer with the email {args.email}")
    token = mint_customer_token(customer.id, get_settings().token_secret)
    return {"email": customer.email, "customer_id": customer.id, "customer_token": token}, token


# -------------------------------------------------------------------------------- channels


def _list_channels(_args: argparse.Namespace) -> tuple[Output, str]:
    from bot.channels import registry
    from bot.settings import get_channel_settings

    settings = get_channel_settings()
    on = registry.enabled(settings)
    lines = []
    for name in registry.CHANNEL_CLASSES:
        if name not in on:
            lines.append(f"{name:<13} off (settings not set)")
            continue
        where = registry.webhook_url(settings.public_url or "https://<public URL>", name)
        lines.append(f"{name:<13} on   webhook {where}")
    return {"enabled": on}, "\n".join(lines)


def _channel_credentials(args: argparse.Namespace) -> tuple[Output, str]:
    from pathlib import Path

    from bot.channels import registry
    from bot.settings import get_channel_settings

    path = Path(args.output) if args.output else get_settings().var_dir / "credentials.yml"
    on = registry.write_credentials(path, get_channel_settings())
    platforms = ", ".join(on) or "none set up (README: Messaging platforms)"
    return {"path": str(path), "enabled": on}, f"{platforms} -> {path}"


def _register_channels(args: argparse.Namespace) -> tuple[Output, str]:
    import asyncio

    from bot.channels import registry
    from bot.channels.http import PlatformError
    from bot.channels.telegram import TelegramApi
    from bot.settings import get_channel_settings

    settings = get_channel_settings()
    public_url = args.url or settings.public_url
    if settings.telegram is None:
        return {"registered": []}, "Nothing to register: only Telegram needs it, and it is off."
    if not public_url:
        raise UsageError("give this server's public URL: --url or GIFTBOT_PUBLIC_URL")
    url = registry.webhook_url(public_url, "telegram")
    try:
        asyncio.run(TelegramApi(settings.telegram).set_webhook(url, settings.telegram.secret_token))
    except PlatformError as exc:
        raise UsageError(str(exc)) from exc
    return {"registered": [{"channel": "telegram", "url": url}]}, f"telegram: webhook {url}"


# ---------------------------------------------------------------------------------- agents


def _agent_payload(agent: AgentView) -> Output:
    return {
        "username": agent.username,
        "display_name": agent.display_name,
        "disabled": agent.disabled,
        "available": agent.available,
        "locked_until": agent.locked_until.isoformat() if agent.locked_until else None,
        "created_at": agent.created_at.isoformat(),
    }


def _agent_line(agent: AgentView) -> str:
    if agent.disabled:
        status = "disabled"
    elif agent.locked_until:
        status = f"sign-in locked until {agent.locked_until:%H:%M} UTC"
    else:
        status = "available" if agent.available else "away"
    return f"{agent.username:<20} {agent.display_name:<24} {status}"


def _create_agent(args: argparse.Namespace) -> tuple[Output, str]:
    password = args.password
    if password == FROM_STDIN:
        password = sys.stdin.readline().rstrip("\r\n")
    agent = _repository().create_agent(
        args.username, password, display_name=args.display_name, actor="cli"
    )
    return _agent_payload(agent), f"Agent {agent.username} ({agent.display_name}) created"


def _list_agents(_args: argparse.Namespace) -> tuple[Output, str]:
    agents = _repository().list_agents()
    text = "\n".join(_agent_line(agent) for agent in agents) or "No agents yet."
    return {"agents": [_agent_payload(agent) for agent in agents]}, text


def _disable_agent(args: argparse.Namespace) -> tuple[Output, str]:
    agent = _repository().disable_agent(args.username, actor="cli")
    return _agent_payload(agent), f"Agent {agent.username} is disabled"


def _enable_agent(args: argparse.Namespace) -> tuple[Output, str]:
    agent = _repository().enable_agent(args.username, actor="cli")
    return _agent_payload(agent), f"Agent {agent.username} is enabled"


if __name__ == "__main__":
    sys.exit(main())
