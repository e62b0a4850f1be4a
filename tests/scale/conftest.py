"""One scaled topology for every test of this folder: 2 Rasa servers and 2 action servers
behind HAProxy, on PostgreSQL (wallet and tracker store), Redis (lock store, socket.io rooms)
and RabbitMQ (events), each reached through a TCP proxy of the tests' own, so that a fault
test cuts a service for these servers alone; the machine's services stay up.

Starting a Rasa server costs about 30 s of CPU on this 2-core machine, so the topology is
started once per session; a test that kills a server starts it again.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.rasa_ext.tracker_store import prepare
from bot.settings import get_settings
from bot.wallet import db, demo
from bot.wallet.repository import WalletRepository
from tests.servers import Topology
from tests.services import require_haproxy, require_rabbitmq, require_redis
from tests.tcp_proxy import TcpProxy


@dataclass
class Scaled:
    topology: Topology
    wallet: WalletRepository
    tracker_url: str
    tracker_direct_url: str
    """The tracker store's database, not through the proxy: for the tests' own reads."""
    exchange: str
    """The fanout exchange the Rasa servers publish to; a test binds a queue of its own."""
    amqp_url: str
    postgres: TcpProxy
    redis: TcpProxy
    rabbitmq: TcpProxy

    def token(self, email: str) -> str:
        from bot.tokens import mint_customer_token

        customer = self.wallet.find_customer_by_email(email)
        assert customer is not None
        return mint_customer_token(customer.id, get_settings().token_secret)


def _schema_url(url: str, schema: str, port: int) -> str:
    return (
        make_url(url)
        .set(port=port, host="127.0.0.1")
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


@pytest.fixture(scope="session")
def scaled(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scaled]:
    redis_url, amqp_url, haproxy = require_redis(), require_rabbitmq(), require_haproxy()
    pg, red = make_url(pg_url), redis.Redis.from_url(redis_url)
    redis_kwargs = red.connection_pool.connection_kwargs
    amqp = urlsplit(amqp_url)
    proxies = {
        "postgres": TcpProxy(pg.host or "127.0.0.1", pg.port or 5432),
        "redis": TcpProxy(redis_kwargs["host"], redis_kwargs["port"]),
        "rabbitmq": TcpProxy(amqp.hostname or "127.0.0.1", amqp.port or 5672),
    }
    name = f"giftbot_scale_{secrets.token_hex(5)}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for schema in (f"{name}_wallet", f"{name}_tracker"):
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    wallet_url = _schema_url(pg_url, f"{name}_wallet", proxies["postgres"].port)
    tracker_url = _schema_url(pg_url, f"{name}_tracker", proxies["postgres"].port)
    settings = get_settings()
    wallet = WalletRepository(
        db.make_engine(wallet_url), settings.claim_code_secret, settings.sealing_key
    )
    db.upgrade(wallet.engine)
    demo.seed(wallet)
    prepare(tracker_url)
    via_redis = f"redis://127.0.0.1:{proxies['redis'].port}/{redis_kwargs.get('db', 0)}"
    credentials = f"{amqp.username or 'guest'}:{amqp.password or 'guest'}"
    broker_url = amqp._replace(
        netloc=f"{credentials}@127.0.0.1:{proxies['rabbitmq'].port}"
    ).geturl()
    var_dir = Path(tmp_path_factory.mktemp("scaled"))
    topology = None
    try:
        topology = Topology.start(
            var_dir,
            {
                "GIFTBOT_DB_URL": wallet_url,
                "GIFTBOT_TRACKER_DB_URL": tracker_url,
                "GIFTBOT_LOCK_STORE_URL": via_redis,
                "GIFTBOT_SOCKETIO_REDIS_URL": via_redis,
                "GIFTBOT_RATE_LIMIT_REDIS_URL": via_redis,
                "GIFTBOT_BROKER_URL": broker_url,
                "GIFTBOT_BROKER_QUEUE": name,
                "GIFTBOT_BROKER_EXCHANGE": name,
            },
            haproxy=haproxy,
        )
        sizes = topology.rss_megabytes()
        print(f"\n[scale figures] RSS of the topology: {sum(sizes.values())} MB {sizes}")
        yield Scaled(
            topology,
            wallet,
            tracker_url,
            _schema_url(pg_url, f"{name}_tracker", pg.port or 5432),
            name,
            amqp_url,
            proxies["postgres"],
            proxies["redis"],
            proxies["rabbitmq"],
        )
    finally:
        if topology is not None:
            topology.stop()
        for proxy in proxies.values():
            proxy.cut()
        wallet.engine.dispose()
        with admin.connect() as connection:
            for schema in (f"{name}_wallet", f"{name}_tracker"):
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
        _delete_exchange_and_queue(amqp_url, name)


def _delete_exchange_and_queue(amqp_url: str, name: str) -> None:
    import asyncio

    import aio_pika

    async def delete() -> None:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(name)
            await channel.exchange_delete(name)

    asyncio.run(delete())
