"""The scaled topology on one machine (``make run-scaled``, the scale tests): its databases, its
HAProxy configuration and the environment its servers run with.

``python -m bot.scaled databases``   create the wallet and tracker databases when missing, and
                                     the tracker store's table and indexes
``python -m bot.scaled migrate``     the wallet schema and the tracker indexes up to date (a
                                     cluster's migration job; GIFTBOT_DB_URL, …_TRACKER_DB_URL)
``python -m bot.scaled env``         the settings the servers need, as shell ``export`` lines
``python -m bot.scaled haproxy --rasa-port 5005 --actions-port 5055 --rasa 5101 5102 …``
                                     HAProxy's configuration (deploy/haproxy/haproxy.cfg.template)

HAProxy sends socket.io and the HTTP API round robin, sticky by cookie, and REST turns by a
consistent hash of the body's ``sender``: each Rasa server keeps the conversations it saved last
in memory (bot/tracker_store.py), which saves a read only when the next turn comes back to it;
a dead server's conversations move to the live ones (README: Scaling out).
"""

from __future__ import annotations

import argparse
import shlex
import string
import sys
from collections.abc import Sequence

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.settings import PROJECT_ROOT, get_edge_settings, get_settings

HAPROXY_TEMPLATE = PROJECT_ROOT / "deploy" / "haproxy" / "haproxy.cfg.template"
ENDPOINTS = PROJECT_ROOT / "deploy" / "endpoints.scaled.yml"


def create_database(url: str) -> bool:
    """Create the PostgreSQL database ``url`` names unless it exists; True when created now."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return False
    name = parsed.database
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"database name {name!r}: use letters, digits and underscores")
    admin = create_engine(
        parsed.set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if exists:
                return False
            connection.execute(text(f'CREATE DATABASE "{name}"'))
            return True
    except Exception as exc:  # every driver error says what to fix in its first line
        first_line = str(exc).strip().splitlines()[0]
        raise SystemExit(
            f"cannot create database {name!r} on {parsed.render_as_string()}: {first_line}\n"
            "Start PostgreSQL or point GIFTBOT_SCALED_DB_URL / GIFTBOT_TRACKER_DB_URL at one "
            "(README: Scaling out)."
        ) from exc
    finally:
        admin.dispose()


def environment() -> dict[str, str]:
    """What every server of the topology runs with: the scaled wallet store as its
    ``GIFTBOT_DB_URL``, each service's URL (``${…}`` in deploy/endpoints.scaled.yml), and Redis
    for what the Rasa servers share besides the locks (one Redis unless set apart)."""
    settings, edge = get_settings(), get_edge_settings()
    return {
        "GIFTBOT_DB_URL": settings.scaled_db_url,
        "GIFTBOT_ACTION_ENDPOINT_URL": settings.action_endpoint_url,
        "GIFTBOT_TRACKER_DB_URL": settings.tracker_db_url,
        "GIFTBOT_LOCK_STORE_URL": settings.lock_store_url,
        "GIFTBOT_BROKER_URL": settings.broker_url,
        "GIFTBOT_BROKER_QUEUE": settings.broker_queue,
        "GIFTBOT_BROKER_EXCHANGE": settings.broker_exchange,
        # socket.io rooms and the rate limits shared by every Rasa server (bot/channels/).
        "GIFTBOT_SOCKETIO_REDIS_URL": edge.socketio_redis_url or settings.lock_store_url,
        "GIFTBOT_RATE_LIMIT_REDIS_URL": edge.rate_limit_redis_url or settings.lock_store_url,
        # HAProxy appends the shopper's address to it (deploy/haproxy/).
        "GIFTBOT_TRUSTED_PROXY_HEADER": edge.trusted_proxy_header or "X-Forwarded-For",
        # Rasa sends it to the action servers (deploy/endpoints.scaled.yml), which refuse
        # calls without it (bot/action_server.py).
        "GIFTBOT_ACTION_SERVER_SECRET": settings.action_server_secret,
        "GIFTBOT_RASA_INSTANCES": str(settings.rasa_instances),
        "GIFTBOT_ACTION_INSTANCES": str(settings.action_instances),
    }


def summary() -> str:
    """Where each service of the topology is, for people: no password is shown."""
    settings = get_settings()

    def hidden(url: str) -> str:
        return make_url(url).render_as_string(hide_password=True)

    return "\n".join(
        [
            f"  Wallet store       {hidden(settings.scaled_db_url)}",
            f"  Tracker store      {hidden(settings.tracker_db_url)}",
            f"  Lock store         {hidden(settings.lock_store_url)}",
            f"  Event broker       {hidden(settings.broker_url)} queue {settings.broker_queue}",
        ]
    )


def haproxy_config(
    rasa_port: int,
    actions_port: int,
    rasa_servers: Sequence[int],
    action_servers: Sequence[int],
    bind: str = "127.0.0.1",
    check_interval_ms: int = 1000,
) -> str:
    """HAProxy in front of the Rasa servers and the action servers. The Rasa servers twice:
    sticky by cookie (socket.io, the API), and by a hash of the conversation (REST turns, which
    bring no cookie), the second set following the first one's health checks."""

    def servers(name: str, ports: Sequence[int], sticky: bool) -> str:
        lines = []
        for number, port in enumerate(ports, start=1):
            cookie = f" cookie {name}{number}" if sticky else ""
            lines.append(
                f"    server {name}{number} 127.0.0.1:{port} check inter {check_interval_ms}"
                f" fall 2 rise 1{cookie}"
            )
        return "\n".join(lines)

    def tracking(name: str, ports: Sequence[int], backend: str) -> str:
        return "\n".join(
            f"    server {name}{number} 127.0.0.1:{port} track {backend}/{name}{number}"
            for number, port in enumerate(ports, start=1)
        )

    return string.Template(HAPROXY_TEMPLATE.read_text()).substitute(
        bind=bind,
        rasa_port=rasa_port,
        actions_port=actions_port,
        rasa_servers=servers("rasa", rasa_servers, sticky=True),
        rasa_tracking_servers=tracking("rasa", rasa_servers, "rasa_servers"),
        action_servers=servers("actions", action_servers, sticky=False),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.scaled")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("databases", help="create the wallet and tracker databases")
    commands.add_parser(
        "migrate", help="bring the wallet store's schema and the tracker store's indexes up to date"
    )
    commands.add_parser("env", help="print the servers' environment as export lines")
    commands.add_parser("summary", help="print where each service is, without passwords")
    haproxy = commands.add_parser("haproxy", help="print HAProxy's configuration")
    haproxy.add_argument("--bind", default="127.0.0.1", help="the address HAProxy listens on")
    haproxy.add_argument("--rasa-port", type=int, required=True)
    haproxy.add_argument("--actions-port", type=int, required=True)
    haproxy.add_argument("--rasa", type=int, nargs="+", required=True, metavar="PORT")
    haproxy.add_argument("--actions", type=int, nargs="+", required=True, metavar="PORT")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "databases":
        for url in (settings.scaled_db_url, settings.tracker_db_url):
            if create_database(url):
                print(f"created database {make_url(url).database}")
        from bot.rasa_ext import tracker_store  # imports Rasa: only here

        tracker_store.prepare(settings.tracker_db_url)
    elif args.command == "migrate":
        from bot.rasa_ext import tracker_store  # imports Rasa: only here
        from bot.wallet import db

        engine = db.make_engine(settings.db_url)
        try:
            db.upgrade(engine)
        finally:
            engine.dispose()
        tracker_store.prepare(settings.tracker_db_url)
    elif args.command == "env":
        for name, value in environment().items():
            print(f"export {name}={shlex.quote(value)}")
    elif args.command == "summary":
        print(summary())
    else:
        sys.stdout.write(haproxy_config(args.rasa_port, args.actions_port, args.rasa, args.actions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
