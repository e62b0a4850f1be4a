"""Start the real action server and Rasa server for a test session, on free ports.

They run from this checkout's virtualenv with the trained model (``make test`` trains it
first), against the session's throw-away wallet store, tracker store and secrets.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from bot.channels.registry import write_credentials
from bot.settings import get_settings, read_channel_settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL = ROOT / "models" / "giftbot.tar.gz"
STARTUP_LIMIT_SECONDS = 600  # a bound, not a speed test: a loaded 2-core machine is slow to load TF


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(
    url: str, process: subprocess.Popen[bytes], log: Path, limit: float = STARTUP_LIMIT_SECONDS
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up in {limit}s:\n{log.read_text()[-3000:]}")


def server_env(extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the test servers run with."""
    return {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        # The whole suite talks to one server from 127.0.0.1: far above a shopper's pace
        # (tests/security/ starts its own servers with the real limits).
        "GIFTBOT_RATE_LIMIT_MESSAGES": "100000",
        "GIFTBOT_RATE_LIMIT_CONNECTS": "100000",
        # Every conversation a server serves from memory is checked against the database, and
        # every prediction's past states against Rasa's own pass; a difference fails the turn
        # (bot/tracker_store.py, bot/rasa_ext/past_states.py): the whole suite checks that.
        "GIFTBOT_TRACKER_CACHE_CHECK": "1",
        # Rasa sends it to the action server (endpoints.yml), which refuses calls without it.
        "GIFTBOT_ACTION_SERVER_SECRET": get_settings().action_server_secret,
        **(extra_env or {}),
    }


def nothing_kept_differed(logs: Path) -> None:
    """Fail the tests that used these servers if any Rasa server found a conversation it kept in
    memory different from the database, or a prediction's past states carried forward different
    from Rasa's own pass (``GIFTBOT_TRACKER_CACHE_CHECK``: bot/tracker_store.py,
    bot/rasa_ext/past_states.py): Rasa's FailSafeTrackerStore turns the first error into a new
    conversation, which a test may not notice; the log line is kept."""
    from bot.rasa_ext.past_states import HISTORY_DIFFERS
    from bot.tracker_store import CACHE_DIFFERS

    for log in sorted(logs.glob("rasa*.log")):
        text = log.read_text(errors="replace")
        for differs in (CACHE_DIFFERS, HISTORY_DIFFERS):
            if differs in text:
                raise AssertionError(f"{log}: {differs}")


def actions_command(port: int) -> list[str]:
    return [
        str(BIN / "python"),
        "-m",
        "bot.action_server",
        "--port",
        str(port),
        "--logging-config-file",
        str(ROOT / "logging.yml"),
    ]


def rasa_command(
    port: int, credentials: Path, endpoints: Path, api_token: str, rasa_args: Sequence[str] = ()
) -> list[str]:
    return [
        str(BIN / "rasa"),
        "run",
        "--model",
        str(MODEL),
        "--port",
        str(port),
        "--credentials",
        str(credentials),
        "--endpoints",
        str(endpoints),
        "--enable-api",
        "--jwt-secret",
        api_token,
        "--jwt-method",
        "HS256",
        # No shopper's text, slot value or token in any log (bot/log_redaction.py).
        "--logging-config-file",
        str(ROOT / "logging.yml"),
        *rasa_args,
    ]


@dataclass
class Servers:
    rasa_url: str
    actions_url: str
    var_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    rasa_command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    api_token: str = field(default_factory=lambda: secrets.token_hex(16))
    """Rasa's HTTP API is on (a test may act as the agent console), as ``make run`` has it:
    keyed with this (``--jwt-secret``), credentials in the header only (``api_headers``)."""

    @classmethod
    def start(
        cls,
        var_dir: Path,
        extra_env: dict[str, str] | None = None,
        rasa_args: Sequence[str] = (),
    ) -> Servers:
        if not MODEL.exists():
            raise RuntimeError(
                f"no trained model at {MODEL}: run `make test`, which trains it first"
            )
        env = server_env(extra_env)
        logs = var_dir / "log"
        logs.mkdir(parents=True, exist_ok=True)
        rasa_port, actions_port = free_port(), free_port()
        endpoints = var_dir / "endpoints.yml"
        # The project's endpoints, pointed at this session's action server and tracker store.
        config = yaml.safe_load((ROOT / "endpoints.yml").read_text())
        config["action_endpoint"]["url"] = f"http://127.0.0.1:{actions_port}/webhook"
        config["tracker_store"]["db"] = str(var_dir / "tracker.db")
        endpoints.write_text(yaml.safe_dump(config))
        # The project's channels plus each messaging platform whose settings are in ``env``.
        credentials = var_dir / "credentials.yml"
        write_credentials(credentials, read_channel_settings(env))
        servers = cls(f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{actions_port}", var_dir)
        commands = {
            "actions": actions_command(actions_port),
            "rasa": rasa_command(rasa_port, credentials, endpoints, servers.api_token, rasa_args),
        }
        servers.rasa_command, servers.env = commands["rasa"], env
        try:
            for name, command in commands.items():
                log = logs / f"{name}.log"
                process = subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
                )
                servers.processes.append(process)
            _wait_until_up(
                f"{servers.actions_url}/health", servers.processes[0], logs / "actions.log"
            )
            _wait_until_up(servers.rasa_url, servers.processes[1], logs / "rasa.log")
        except BaseException:
            servers.stop()
            raise
        return servers

    def restart_rasa(self, while_down: Callable[[], object] | None = None) -> None:
        """Stop the Rasa server, run ``while_down``, start it again on the same port."""
        old = self.processes[1]
        old.terminate()
        try:
            old.wait(timeout=30)
        except subprocess.TimeoutExpired:
            old.kill()
            old.wait()
        if while_down is not None:
            while_down()
        log = self.var_dir / "log" / "rasa.log"
        self.processes[1] = subprocess.Popen(
            self.rasa_command,
            cwd=ROOT,
            env=self.env,
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
        )
        _wait_until_up(self.rasa_url, self.processes[1], log)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        nothing_kept_differed(self.var_dir / "log")

    def chat(self, token: str | None = None) -> Chat:
        return Chat(self.rasa_url, f"test-{uuid.uuid4().hex[:12]}", token)

    def api_headers(self) -> dict[str, str]:
        """What a call to Rasa's HTTP API carries: the console's kind of short-lived token."""
        from bot.web.rasa_api import api_token

        return {"Authorization": f"Bearer {api_token(self.api_token)}"}


@dataclass
class Chat:
    """One shopper's conversation over the REST channel."""

    rasa_url: str
    sender: str
    token: str | None = None
    transcript: list[tuple[str, str]] = field(default_factory=list)

    def say(self, message: str, metadata: dict[str, Any] | None = None) -> str:
        """Send a message; return the bot's replies joined into one text (buttons included)."""
        meta = dict(metadata or {})
        if self.token:
            meta["customer_token"] = self.token
        response = requests.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": self.sender, "message": message, "metadata": meta},
            timeout=60,
        )
        response.raise_for_status()
        replies = response.json()
        texts = []
        for reply in replies:
            if reply.get("text") or reply.get("buttons"):  # not a custom payload alone
                texts.append(reply.get("text", ""))
            texts.extend(f"[{b['title']}]" for b in reply.get("buttons", []))
        self.transcript.append(("user", message))
        self.transcript.extend(("bot", t) for t in texts)
        return "\n".join(texts)


@dataclass
class Topology:
    """The scaled topology of ``make run-scaled``, for tests: Rasa servers and action servers,
    each a process on a port of its own, behind HAProxy (bot/scaled.py renders its
    configuration), on deploy/endpoints.scaled.yml with the stores ``services_env`` names."""

    rasa_url: str
    """HAProxy's Rasa front, as shoppers reach it."""
    rasa_urls: list[str]
    """Each Rasa server directly, in start order."""
    var_dir: Path
    env: dict[str, str]
    api_token: str = field(default_factory=lambda: secrets.token_hex(16))
    commands: dict[str, list[str]] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        var_dir: Path,
        services_env: dict[str, str],
        rasa_instances: int = 2,
        action_instances: int = 2,
        haproxy: str = "haproxy",
    ) -> Topology:
        from bot.scaled import ENDPOINTS, haproxy_config

        if not MODEL.exists():
            raise RuntimeError(f"no trained model at {MODEL}: run `make test`, which trains it")
        logs = var_dir / "log"
        logs.mkdir(parents=True, exist_ok=True)
        rasa_front, actions_front = free_port(), free_port()
        rasa_ports = [free_port() for _ in range(rasa_instances)]
        action_ports = [free_port() for _ in range(action_instances)]
        env = server_env(
            {
                **services_env,
                "GIFTBOT_ACTION_ENDPOINT_URL": f"http://127.0.0.1:{actions_front}/webhook",
            }
        )
        credentials = var_dir / "credentials.yml"
        write_credentials(credentials, read_channel_settings(env))
        config = var_dir / "haproxy.cfg"
        config.write_text(
            haproxy_config(
                rasa_front, actions_front, rasa_ports, action_ports, check_interval_ms=500
            )
        )
        topology = cls(
            f"http://127.0.0.1:{rasa_front}",
            [f"http://127.0.0.1:{port}" for port in rasa_ports],
            var_dir,
            env,
        )
        for number, port in enumerate(action_ports, start=1):
            topology.commands[f"actions-{number}"] = actions_command(port)
        for number, port in enumerate(rasa_ports, start=1):
            topology.commands[f"rasa-{number}"] = rasa_command(
                port,
                credentials,
                ENDPOINTS,
                topology.api_token,
                # As make run-scaled: the widget's pages may call with credentials.
                ["--cors", *get_settings().widget_origins],
            )
        topology.commands["haproxy"] = [haproxy, "-db", "-f", str(config)]
        try:
            for name in topology.commands:
                topology.launch(name)
            for number, port in enumerate(action_ports, start=1):
                topology.wait_until_up(f"actions-{number}", f"http://127.0.0.1:{port}/health")
            for number, url in enumerate(topology.rasa_urls, start=1):
                topology.wait_until_up(f"rasa-{number}", url)
            topology.wait_until_up("haproxy", topology.rasa_url)
        except BaseException:
            topology.stop()
            raise
        return topology

    def launch(self, name: str) -> None:
        """Start (or start again) the process ``name``, e.g. ``rasa-2``."""
        log = (self.var_dir / "log" / f"{name}.log").open("a")
        self.processes[name] = subprocess.Popen(
            self.commands[name], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def wait_until_up(self, name: str, url: str) -> None:
        # Several Rasa servers start at once on a shared 2-core machine: allow them longer.
        log = self.var_dir / "log" / f"{name}.log"
        _wait_until_up(url, self.processes[name], log, limit=3 * STARTUP_LIMIT_SECONDS)

    def rss_megabytes(self) -> dict[str, int]:
        """Each live process's resident memory (VmRSS), in MB."""
        sizes = {}
        for name, process in self.processes.items():
            if process.poll() is None:
                status = Path(f"/proc/{process.pid}/status").read_text()
                kilobytes = next(line for line in status.splitlines() if line.startswith("VmRSS"))
                sizes[name] = int(kilobytes.split()[1]) // 1024
        return sizes

    def kill(self, name: str) -> None:
        """``kill -9``: the process dies holding whatever it held."""
        self.processes[name].kill()
        self.processes[name].wait()

    def restart_rasa(self, number: int) -> None:
        self.launch(f"rasa-{number}")
        self.wait_until_up(f"rasa-{number}", self.rasa_urls[number - 1])

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        nothing_kept_differed(self.var_dir / "log")

    def chat(self, token: str | None = None, rasa_url: str | None = None) -> Chat:
        return Chat(rasa_url or self.rasa_url, f"test-{uuid.uuid4().hex[:12]}", token)

    def api_headers(self) -> dict[str, str]:
        from bot.web.rasa_api import api_token

        return {"Authorization": f"Bearer {api_token(self.api_token)}"}
