"""The servers under test, each started from nothing so that its cold start is measured:

- **assistant**: ``make run``'s stack (action server, Rasa with the project's channels, SQLite
  tracker store, the web app), started by ``tests/servers.py`` on free ports against a wallet
  store of the bench's own with the demo data;
- **scaled**: ``make run-scaled``'s topology (N Rasa and M action servers behind HAProxy,
  PostgreSQL, Redis, RabbitMQ), started by ``tests.servers.Topology`` in schemas, a queue and an
  exchange of the bench's own, removed afterwards;
- **plain**: the bot ``rasa init --no-prompt`` makes, as it comes (its credentials plus Rasa's
  socket.io channel, in-memory tracker store, no action server), trained once and cached in
  ``var/bench/plain/`` with the time its training took (``make test``'s tiny run: the same bot
  trained for one epoch, in ``var/bench/plain-1-epochs/``).

Every server runs with the rate limits raised far above the load (the load generator is one
client address) and Rasa's telemetry off (nothing here needs a network).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.servers import ROOT, Servers, Topology, free_port, server_env

BIN = Path(sys.executable).parent
BENCH_DIR = ROOT / "var" / "bench"
"""Trained models and their training times, kept between runs."""

ENV = {
    "RASA_TELEMETRY_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    "GIFTBOT_RATE_LIMIT_MESSAGES": "10000000",
    "GIFTBOT_RATE_LIMIT_CONNECTS": "10000000",
    # The test suite's servers check each conversation kept in memory against the database
    # (tests/servers.py); measured servers run as make run's do.
    "GIFTBOT_TRACKER_CACHE_CHECK": "0",
}
STARTUP_LIMIT_SECONDS = 900.0


@dataclass
class Stack:
    """A running stack: where shoppers talk to it and the processes it is made of."""

    name: str
    rasa_url: str
    processes: dict[str, int]
    """Process name -> pid, for their memory."""
    cold_start: float | None
    """Seconds from starting the processes to the first answer (None: started elsewhere)."""
    socketio: bool = True
    tracker_db: Path | None = None
    """The SQLite tracker store, when it is one."""


@dataclass(frozen=True)
class Training:
    seconds: float
    trained_at: str
    load_average: str
    cached: bool
    measured: bool = True
    """False: the tiny run's plain bot, trained for fewer epochs: not a measurement."""


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def first_answer(rasa_url: str, started: float, limit: float = STARTUP_LIMIT_SECONDS) -> float:
    """Seconds from ``started`` until the REST channel answers a message: Rasa accepts no
    connection before its model is loaded, so any list of replies counts, even an empty one
    (make test's one-epoch plain bot may say nothing to "hi")."""
    deadline = started + limit
    while time.perf_counter() < deadline:
        try:
            response = requests.post(
                f"{rasa_url}/webhooks/rest/webhook",
                json={"sender": f"bench-cold-{secrets.token_hex(8)}", "message": "hi"},
                timeout=60,
            )
            if response.ok and isinstance(response.json(), list):
                return time.perf_counter() - started
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{rasa_url} did not answer within {limit:.0f} s")


# ------------------------------------------------------------------------------- training


def _timed(command: list[str], cwd: Path, log: Path) -> float:
    """Seconds ``command`` took, with an empty Rasa training cache (RASA_CACHE_DIRECTORY): Rasa
    otherwise reuses every component an earlier training of the same data left in its cache
    (``.rasa/cache`` under the working directory), and times a cache hit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("w") as out, tempfile.TemporaryDirectory(prefix="rasa-cache-") as cache:
        done = subprocess.run(  # noqa: S603 - our venv's rasa, fixed arguments
            command,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **ENV, "RASA_CACHE_DIRECTORY": cache},
        )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed; see {log}")
    return time.perf_counter() - started


def _cached(meta: Path, key: str, produce: Callable[[], float], measured: bool = True) -> Training:
    if meta.exists():
        known = json.loads(meta.read_text())
        if known.get("key") == key:
            return Training(
                known["seconds"], known["trained_at"], known["load_average"], True, measured
            )
    load = load_average()
    seconds = produce()
    trained_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta.write_text(
        json.dumps({"key": key, "seconds": seconds, "trained_at": trained_at, "load_average": load})
    )
    return Training(seconds, trained_at, load, False, measured)


def _plain_config(epochs: int) -> dict[str, Any]:
    """Rasa 3.6.21's default configuration (what ``rasa init``'s empty config.yml stands for),
    with every component's epochs set to ``epochs``."""
    from rasa.engine.recipes import default_recipe

    default = Path(default_recipe.__file__).parent / "config_files" / "default_config.yml"
    config = yaml.safe_load(default.read_text())
    for component in config["pipeline"] + config["policies"]:
        if "epochs" in component:
            component["epochs"] = epochs
    return dict(config)


def plain_model(epochs: int | None = None) -> tuple[Path, Training]:
    """The ``rasa init --no-prompt`` bot (which trains as part of init), made once per Rasa
    version: its model and how long init took.

    With ``epochs`` (``make test``'s tiny run, which proves the bench works, not how fast
    anything is): the same project and components trained for that many epochs, kept apart
    from the measured one, its time marked as not a measurement."""
    import rasa
    from rasa.cli.scaffold import create_initial_project

    measured = epochs is None
    project = BENCH_DIR / ("plain" if measured else f"plain-{epochs}-epochs")

    def init() -> float:
        shutil.rmtree(project, ignore_errors=True)
        project.mkdir(parents=True)
        if epochs is None:
            command = [str(BIN / "rasa"), "init", "--no-prompt", "--init-dir", str(project)]
        else:
            create_initial_project(str(project))
            (project / "config.yml").write_text(yaml.safe_dump(_plain_config(epochs)))
            command = [str(BIN / "rasa"), "train"]
        return _timed(command, project, BENCH_DIR / f"{project.name}-init.log")

    meta = BENCH_DIR / f"{project.name}.json"
    training = _cached(meta, f"rasa {rasa.__version__}", init, measured)
    models = sorted((project / "models").glob("*.tar.gz"))
    if not models:  # the cache was emptied by hand: make it again
        meta.unlink()
        return plain_model(epochs)
    return models[-1], training


def assistant_training() -> Training:
    """How long ``rasa train`` takes for the assistant's current config, domain and data:
    measured once per fingerprint (``scripts/train_if_changed.py``'s), into ``var/bench/``."""
    from scripts.train_if_changed import fingerprint

    out = BENCH_DIR / "assistant-model"

    def train() -> float:
        shutil.rmtree(out, ignore_errors=True)
        return _timed(
            [str(BIN / "rasa"), "train", "--out", str(out), "--fixed-model-name", "giftbot"],
            ROOT,
            BENCH_DIR / "assistant-train.log",
        )

    return _cached(BENCH_DIR / "assistant-train.json", fingerprint(), train)


# --------------------------------------------------------------------------------- stacks


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def seed_wallet(url: str) -> None:
    """The wallet store at ``url``, migrated, with the demo customers and cards."""
    from bot.settings import get_settings
    from bot.wallet import db, demo
    from bot.wallet.repository import WalletRepository

    settings = get_settings()
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        demo.seed(WalletRepository(engine, settings.claim_code_secret, settings.sealing_key))
    finally:
        engine.dispose()


@contextlib.contextmanager
def assistant(work: Path) -> Iterator[Stack]:
    """``make run``'s stack on free ports, on a fresh wallet and tracker store in ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    wallet = f"sqlite:///{work / 'wallet.db'}"
    seed_wallet(wallet)
    env = {**ENV, "GIFTBOT_DB_URL": wallet}
    started = time.perf_counter()
    servers = Servers.start(work, extra_env=env)
    web_port = free_port()
    web_env = {**server_env(env), "GIFTBOT_WEB_PORT": str(web_port)}
    web = subprocess.Popen(  # noqa: S603 - our venv's python, fixed arguments
        [str(BIN / "python"), "-m", "bot.web"],
        cwd=ROOT,
        env=web_env,
        stdout=(work / "log" / "web.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        cold = first_answer(servers.rasa_url, started)
        actions, rasa = servers.processes
        yield Stack(
            "assistant",
            servers.rasa_url,
            {"Rasa": rasa.pid, "action server": actions.pid, "web app": web.pid},
            cold,
            tracker_db=work / "tracker.db",
        )
    finally:
        _stop_all([web])
        servers.stop()


@contextlib.contextmanager
def running_assistant(servers: Servers) -> Iterator[Stack]:
    """The assistant's servers another part started (the test suite's): measured as they are,
    with no cold start and no web app."""
    actions, rasa = servers.processes
    yield Stack(
        "assistant",
        servers.rasa_url,
        {"Rasa": rasa.pid, "action server": actions.pid},
        None,
        tracker_db=servers.var_dir / "tracker.db",
    )


@contextlib.contextmanager
def plain(work: Path, model: Path) -> Iterator[Stack]:
    """The ``rasa init`` bot served as it comes, plus Rasa's own socket.io channel."""
    work.mkdir(parents=True, exist_ok=True)
    project = model.parent.parent
    credentials = work / "credentials.yml"
    channels = yaml.safe_load((project / "credentials.yml").read_text()) or {}
    channels["socketio"] = {
        "user_message_evt": "user_uttered",
        "bot_message_evt": "bot_uttered",
        "session_persistence": True,
    }
    credentials.write_text(yaml.safe_dump(channels))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(BIN / "rasa"),
        "run",
        "--model",
        str(model),
        "--port",
        str(port),
        "--credentials",
        str(credentials),
        "--endpoints",
        str(project / "endpoints.yml"),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our venv's rasa, fixed arguments
        command,
        cwd=project,
        env={**os.environ, **ENV},
        stdout=(work / "plain-rasa.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        cold = first_answer(url, started)
        yield Stack("plain rasa init", url, {"Rasa": process.pid}, cold)
    finally:
        _stop_all([process])


@contextlib.contextmanager
def scaled(work: Path, rasa_instances: int, action_instances: int) -> Iterator[Stack]:
    """``make run-scaled``'s topology in schemas, a queue and an exchange of its own."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from bot.rasa_ext.tracker_store import prepare
    from bot.scaled import create_database
    from bot.settings import get_settings

    settings = get_settings()
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if haproxy is None:
        raise RuntimeError("HAProxy is not installed: scripts/install_haproxy.sh installs it")
    database = make_url(settings.tracker_db_url).set(database="giftbot_bench")
    create_database(database.render_as_string(hide_password=False))
    name = f"giftbot_bench_{secrets.token_hex(4)}"
    schemas = {"wallet": f"{name}_wallet", "tracker": f"{name}_tracker"}
    admin = create_engine(database, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for schema in schemas.values():
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    urls = {
        part: database.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
        for part, schema in schemas.items()
    }
    topology = None
    try:
        seed_wallet(urls["wallet"])
        prepare(urls["tracker"])
        started = time.perf_counter()
        topology = Topology.start(
            work,
            {
                **ENV,
                "GIFTBOT_DB_URL": urls["wallet"],
                "GIFTBOT_TRACKER_DB_URL": urls["tracker"],
                "GIFTBOT_LOCK_STORE_URL": settings.lock_store_url,
                "GIFTBOT_SOCKETIO_REDIS_URL": settings.lock_store_url,
                "GIFTBOT_RATE_LIMIT_REDIS_URL": settings.lock_store_url,
                "GIFTBOT_BROKER_URL": settings.broker_url,
                "GIFTBOT_BROKER_QUEUE": name,
                "GIFTBOT_BROKER_EXCHANGE": name,
            },
            rasa_instances=rasa_instances,
            action_instances=action_instances,
            haproxy=haproxy,
        )
        cold = first_answer(topology.rasa_url, started)
        yield Stack(
            f"scaled ({rasa_instances} Rasa, {action_instances} action servers)",
            topology.rasa_url,
            {name: process.pid for name, process in topology.processes.items()},
            cold,
            socketio=False,
        )
    finally:
        if topology is not None:
            topology.stop()
        with admin.connect() as connection:
            for schema in schemas.values():
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
        _delete_queue(settings.broker_url, name)


def _delete_queue(amqp_url: str, name: str) -> None:
    import asyncio

    import aio_pika

    async def delete() -> None:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(name)
            await channel.exchange_delete(name)

    asyncio.run(delete())


# --------------------------------------------------------------------------------- memory


def memory(pid: int) -> tuple[float, float]:
    """Resident memory of a process and of its children, now and at its peak, in MB
    (``/proc``: VmRSS and VmHWM)."""
    now = peak = 0.0
    for each in [pid, *_descendants(pid)]:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        now += int(fields.get("VmRSS", "0 kB").split()[0]) / 1024
        peak += int(fields.get("VmHWM", "0 kB").split()[0]) / 1024
    return now, peak


def memory_map(pid: int, top: int = 8) -> list[tuple[str, float]]:
    """Where a process's resident memory is (``/proc/<pid>/smaps``): the largest mappings by
    file (shared libraries, the model's files) or kind (``[heap]``, ``[anon]``), in MB."""
    sizes: dict[str, float] = {}
    name = "[anon]"
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5 and ":" not in fields[0]:
            path = fields[5] if len(fields) > 5 else "[anon]"
            name = path.split("site-packages/")[-1]
        elif fields[0] == "Rss:":
            sizes[name] = sizes.get(name, 0.0) + int(fields[1]) / 1024
    return sorted(sizes.items(), key=lambda item: -item[1])[:top]


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found
