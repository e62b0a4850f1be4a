"""Every setting of the project, read from the environment in this one module.

Secrets are never constants in the code: when the environment does not provide one, a random
value is generated once into ``var/secrets.env`` (git-ignored, mode 0600) so that the CLI, the
action server and the web server of one installation agree without any manual step.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# name of the environment variable -> how to generate a value for a fresh installation
_GENERATED_SECRETS = {
    "GIFTBOT_CLAIM_CODE_SECRET": lambda: secrets.token_hex(32),
    "GIFTBOT_TOKEN_SECRET": lambda: secrets.token_hex(32),
    "GIFTBOT_SEALING_KEY": lambda: _fernet_key(),
    "GIFTBOT_RASA_API_TOKEN": lambda: secrets.token_urlsafe(32),
    "GIFTBOT_SESSION_KEY": lambda: _fernet_key(),
}


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    db_url: str
    claim_code_secret: bytes
    """Key of the HMAC under which claim codes are stored."""
    token_secret: str
    """HS256 key with which the store signs customer tokens."""
    sealing_key: str
    """Fernet key that seals claim codes at rest: in outbox emails and conversation slots."""
    rasa_api_token: str
    """Rasa's HTTP API is only ever enabled with this token (``--auth-token``)."""
    session_key: str
    """Fernet key of the agent console's encrypted session cookies."""
    max_failures_per_conversation: int
    max_failures_per_customer: int
    max_failures_per_card: int
    failure_window_hours: int
    web_host: str
    """The address the web server (demo page, widget, console) listens on: loopback by default."""
    web_port: int
    public_web_url: str
    """The web server as browsers reach it: the demo page's links. Never the Host header."""
    rasa_url: str
    """The Rasa server as shoppers' browsers reach it: the widget's socket URL and the demo
    page's CSP. Never derived from the Host header, which any client can forge."""
    rasa_host: str
    """The address ``make run`` starts Rasa on (``rasa run --interface``): loopback by default."""
    rasa_port: int
    demo_mode: bool
    """Demo sign-in (``/demo/sign-in`` mints customer tokens for the demo customers): only on
    when set, as ``make run`` does; off everywhere else."""
    # The scaled topology (make run-scaled, deploy/): each service's URL, for managed services too.
    scaled_db_url: str
    """Wallet store of ``make run-scaled`` (PostgreSQL shared by every action server)."""
    action_endpoint_url: str
    """The action servers as the Rasa servers reach them (behind HAProxy or a Service)."""
    tracker_db_url: str
    """Rasa's tracker store of the scaled topology (PostgreSQL shared by every Rasa server)."""
    lock_store_url: str
    """Redis holding the conversation locks, so that one conversation runs on one Rasa at once."""
    lock_lifetime_seconds: int
    """How long a lock outlives a Rasa process that died holding it (live holders renew it)."""
    broker_url: str
    """RabbitMQ (AMQP URL) that every conversation event is published to."""
    broker_queue: str
    """The durable queue the events land in."""
    broker_exchange: str
    """The fanout exchange the Rasa servers publish to (the queue is bound to it)."""
    rasa_instances: int
    action_instances: int


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from exc
    if value < 1:
        raise SystemExit(f"{name} must be at least 1, got {value}")
    return value


def _port_env(name: str, default: int) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SystemExit(f"{name} must be a TCP port number, got {raw!r}")
    return int(raw)


def _url_env(name: str, default: str) -> str:
    """An http(s) origin-like URL without a trailing slash; anything else stops the program."""
    raw = (os.environ.get(name) or default).strip().rstrip("/")
    scheme, _, rest = raw.partition("://")
    if scheme not in ("http", "https") or not rest or any(c in rest for c in " \"'<>"):
        raise SystemExit(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return raw


def _flag_env(name: str) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SystemExit(f"{name} must be 1 or 0, got {raw!r}")


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _load_or_create_secrets(var_dir: Path) -> dict[str, str]:
    """The secrets from the environment, else from var/secrets.env, generated when missing."""
    path = var_dir / "secrets.env"
    stored = _read_env_file(path)
    missing = [name for name in _GENERATED_SECRETS if name not in stored]
    if missing:
        var_dir.mkdir(parents=True, exist_ok=True)
        for name in missing:
            stored[name] = _GENERATED_SECRETS[name]()
        body = "# Generated on first run; keep private. Environment variables override these.\n"
        body += "".join(f"{name}={stored[name]}\n" for name in sorted(stored))
        # Write-then-rename so that two processes starting together never read half a file.
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(body)
        if path.exists():
            tmp.replace(path)  # add the new names to an existing file
        else:
            try:
                os.link(tmp, path)  # atomic: fails if another process created it first
            except FileExistsError:
                stored = _read_env_file(path)  # that process won the race: use its values
            tmp.unlink()
    return {name: os.environ.get(name) or stored[name] for name in _GENERATED_SECRETS}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings: environment variables first, then the project's ``.env`` file."""
    for name, value in _read_env_file(PROJECT_ROOT / ".env").items():
        os.environ.setdefault(name, value)
    var_dir = Path(os.environ.get("GIFTBOT_VAR_DIR") or PROJECT_ROOT / "var")
    secret_values = _load_or_create_secrets(var_dir)
    return Settings(
        var_dir=var_dir,
        db_url=os.environ.get("GIFTBOT_DB_URL") or f"sqlite:///{var_dir / 'wallet.db'}",
        claim_code_secret=secret_values["GIFTBOT_CLAIM_CODE_SECRET"].encode(),
        token_secret=secret_values["GIFTBOT_TOKEN_SECRET"],
        sealing_key=secret_values["GIFTBOT_SEALING_KEY"],
        rasa_api_token=secret_values["GIFTBOT_RASA_API_TOKEN"],
        session_key=secret_values["GIFTBOT_SESSION_KEY"],
        max_failures_per_conversation=_int_env("GIFTBOT_MAX_FAILURES_PER_CONVERSATION", 3),
        max_failures_per_customer=_int_env("GIFTBOT_MAX_FAILURES_PER_CUSTOMER", 5),
        max_failures_per_card=_int_env("GIFTBOT_MAX_FAILURES_PER_CARD", 5),
        failure_window_hours=_int_env("GIFTBOT_FAILURE_WINDOW_HOURS", 24),
        web_host=os.environ.get("GIFTBOT_WEB_HOST") or "127.0.0.1",
        web_port=_port_env("GIFTBOT_WEB_PORT", 8080),
        public_web_url=_url_env(
            "GIFTBOT_PUBLIC_WEB_URL", f"http://localhost:{_port_env('GIFTBOT_WEB_PORT', 8080)}"
        ),
        rasa_url=_url_env(
            "GIFTBOT_RASA_URL", f"http://localhost:{_port_env('GIFTBOT_RASA_PORT', 5005)}"
        ),
        rasa_host=os.environ.get("GIFTBOT_RASA_HOST") or "127.0.0.1",
        rasa_port=_port_env("GIFTBOT_RASA_PORT", 5005),
        demo_mode=_flag_env("GIFTBOT_DEMO_MODE"),
        scaled_db_url=os.environ.get("GIFTBOT_SCALED_DB_URL")
        or "postgresql://postgres@127.0.0.1:5432/giftbot_wallet",
        action_endpoint_url=os.environ.get("GIFTBOT_ACTION_ENDPOINT_URL")
        or "http://127.0.0.1:5055/webhook",
        tracker_db_url=os.environ.get("GIFTBOT_TRACKER_DB_URL")
        or "postgresql://postgres@127.0.0.1:5432/giftbot_tracker",
        lock_store_url=os.environ.get("GIFTBOT_LOCK_STORE_URL") or "redis://127.0.0.1:6379/1",
        lock_lifetime_seconds=_int_env("GIFTBOT_LOCK_LIFETIME", 20),
        broker_url=os.environ.get("GIFTBOT_BROKER_URL") or "amqp://guest:guest@127.0.0.1:5672/",
        broker_queue=os.environ.get("GIFTBOT_BROKER_QUEUE") or "giftbot_events",
        broker_exchange=os.environ.get("GIFTBOT_BROKER_EXCHANGE") or "giftbot-events",
        rasa_instances=_int_env("GIFTBOT_RASA_INSTANCES", 2),
        action_instances=_int_env("GIFTBOT_ACTION_INSTANCES", 2),
    )
