"""Every setting of the project, read from the environment in this one module.

Secrets are never constants in the code: when the environment does not provide one, a random
value is generated once into ``var/secrets.env`` (git-ignored, mode 0600) so that the CLI, the
action server and the web server of one installation agree without any manual step.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from bot.private_files import private_dir

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# name of the environment variable -> how to generate a value for a fresh installation
_GENERATED_SECRETS = {
    "GIFTBOT_CLAIM_CODE_SECRET": lambda: secrets.token_hex(32),
    "GIFTBOT_TOKEN_SECRET": lambda: secrets.token_hex(32),
    "GIFTBOT_SEALING_KEY": lambda: _fernet_key(),
    "GIFTBOT_RASA_API_TOKEN": lambda: secrets.token_urlsafe(32),
    "GIFTBOT_SESSION_KEY": lambda: _fernet_key(),
    "GIFTBOT_ACTION_SERVER_SECRET": lambda: secrets.token_urlsafe(32),
    "GIFTBOT_SOCKET_SESSION_KEY": lambda: secrets.token_hex(32),
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
    """Key of Rasa's HTTP API (``--jwt-secret``): the console signs short-lived HS256 tokens
    with it and sends them in the Authorization header (``bot.web.rasa_api``)."""
    session_key: str
    """Fernet key of the agent console's encrypted session cookies."""
    agent_presence_seconds: int
    """An agent whose console sends no heartbeat for this long is away: unavailable, their
    conversations back in the queue (the console beats every third of it)."""
    max_failures_per_conversation: int
    max_failures_per_customer: int
    max_failures_per_card: int
    failure_window_hours: int
    enumeration_alarm_per_minute: int
    """Failed card lookups a minute, across all conversations, that log an enumeration alarm."""
    action_server_secret: str
    """Shared secret Rasa sends the action server (``X-Giftbot-Action-Secret``); it refuses
    every request without it."""
    actions_host: str
    """The address the action server listens on (loopback unless configured)."""
    web_host: str
    """The address the web server (demo page, widget, console) listens on: loopback by default."""
    web_port: int
    public_web_url: str
    """The web server as browsers reach it: the demo page's links. Never the Host header."""
    widget_origins: tuple[str, ...]
    """Origins of the pages the widget runs on (``GIFTBOT_WIDGET_ORIGINS``, separated by spaces
    or commas; default: ``public_web_url``'s). Rasa answers their cross-origin requests with
    credentials allowed (``--cors``; engine.io long-polling through the balancer needs its
    sticky cookie), and no other origin's; ``*`` is refused."""
    rasa_url: str
    """The Rasa server as shoppers' browsers reach it: the widget's socket URL and the demo
    page's CSP. Never derived from the Host header, which any client can forge."""
    rasa_api_url: str
    """The Rasa server as the web server reaches it for Rasa's HTTP API (the console's calls):
    an internal address in production (``GIFTBOT_RASA_API_URL``); by default ``rasa_url``."""
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
    tracker_cache_check: bool
    """Check every conversation a Rasa server serves from memory against the database, and every
    prediction's past states carried forward against Rasa's own pass, and fail the turn where
    they differ (bot/tracker_store.py, bot/rasa_ext/past_states.py; the test suite's servers
    run with it)."""


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


def _origins_env(name: str, default_url: str) -> tuple[str, ...]:
    """Web origins (``scheme://host[:port]``); anything else, ``*`` included, stops the program."""
    raw = os.environ.get(name) or "{0.scheme}://{0.netloc}".format(urlsplit(default_url))
    origins = []
    for item in raw.replace(",", " ").split():
        parts = urlsplit(item.rstrip("/"))
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or "*" in item
            or parts.path
            or parts.query
            or parts.username
        ):
            raise SystemExit(f"{name} must list http(s) origins (no path, no *), got {item!r}")
        origins.append(f"{parts.scheme}://{parts.netloc}")
    if not origins:
        raise SystemExit(f"{name} is set but lists no origin")
    return tuple(origins)


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
        private_dir(var_dir, tighten=True)
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
    # Stores, secrets and logs: for this user alone, also where an older version left them open.
    private_dir(var_dir / "log", tighten=True)
    private_dir(var_dir, tighten=True)
    secret_values = _load_or_create_secrets(var_dir)
    public_web_url = _url_env(
        "GIFTBOT_PUBLIC_WEB_URL", f"http://localhost:{_port_env('GIFTBOT_WEB_PORT', 8080)}"
    )
    return Settings(
        var_dir=var_dir,
        db_url=os.environ.get("GIFTBOT_DB_URL") or f"sqlite:///{var_dir / 'wallet.db'}",
        claim_code_secret=secret_values["GIFTBOT_CLAIM_CODE_SECRET"].encode(),
        token_secret=secret_values["GIFTBOT_TOKEN_SECRET"],
        sealing_key=secret_values["GIFTBOT_SEALING_KEY"],
        rasa_api_token=secret_values["GIFTBOT_RASA_API_TOKEN"],
        session_key=secret_values["GIFTBOT_SESSION_KEY"],
        agent_presence_seconds=max(_int_env("GIFTBOT_AGENT_PRESENCE_SECONDS", 30), 3),
        max_failures_per_conversation=_int_env("GIFTBOT_MAX_FAILURES_PER_CONVERSATION", 3),
        max_failures_per_customer=_int_env("GIFTBOT_MAX_FAILURES_PER_CUSTOMER", 5),
        max_failures_per_card=_int_env("GIFTBOT_MAX_FAILURES_PER_CARD", 5),
        failure_window_hours=_int_env("GIFTBOT_FAILURE_WINDOW_HOURS", 24),
        enumeration_alarm_per_minute=_int_env("GIFTBOT_ENUMERATION_ALARM_PER_MINUTE", 30),
        action_server_secret=secret_values["GIFTBOT_ACTION_SERVER_SECRET"],
        actions_host=os.environ.get("GIFTBOT_ACTIONS_HOST") or "127.0.0.1",
        web_host=os.environ.get("GIFTBOT_WEB_HOST") or "127.0.0.1",
        web_port=_port_env("GIFTBOT_WEB_PORT", 8080),
        public_web_url=public_web_url,
        widget_origins=_origins_env("GIFTBOT_WIDGET_ORIGINS", public_web_url),
        rasa_url=_url_env(
            "GIFTBOT_RASA_URL", f"http://localhost:{_port_env('GIFTBOT_RASA_PORT', 5005)}"
        ),
        rasa_api_url=_url_env(
            "GIFTBOT_RASA_API_URL",
            _url_env(
                "GIFTBOT_RASA_URL", f"http://localhost:{_port_env('GIFTBOT_RASA_PORT', 5005)}"
            ),
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
        lock_lifetime_seconds=_int_env("GIFTBOT_LOCK_LIFETIME", 10),
        broker_url=os.environ.get("GIFTBOT_BROKER_URL") or "amqp://guest:guest@127.0.0.1:5672/",
        broker_queue=os.environ.get("GIFTBOT_BROKER_QUEUE") or "giftbot_events",
        broker_exchange=os.environ.get("GIFTBOT_BROKER_EXCHANGE") or "giftbot-events",
        rasa_instances=_int_env("GIFTBOT_RASA_INSTANCES", 2),
        action_instances=_int_env("GIFTBOT_ACTION_INSTANCES", 2),
        tracker_cache_check=_flag_env("GIFTBOT_TRACKER_CACHE_CHECK"),
    )


# ------------------------------------------------------------------------ messaging channels
# Each platform's channel is on only when all of its settings are present (bot/channels/).


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str
    signing_secret: str
    api_url: str


@dataclass(frozen=True)
class TelegramSettings:
    bot_token: str
    bot_name: str
    secret_token: str
    """Telegram sends it back in ``X-Telegram-Bot-Api-Secret-Token`` (set by setWebhook)."""
    api_url: str


@dataclass(frozen=True)
class FacebookSettings:
    page_access_token: str
    app_secret: str
    verify_token: str
    api_url: str


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str
    auth_token: str
    sms_number: str | None
    whatsapp_number: str | None
    public_url: str
    """This server as Twilio reaches it: Twilio signs the full webhook URL."""
    api_url: str


@dataclass(frozen=True)
class BotFrameworkSettings:
    app_id: str
    app_password: str
    tenant_id: str
    api_url: str | None
    """Stand-in for login.botframework.com (OpenID, JWKS) and login.microsoftonline.com."""


@dataclass(frozen=True)
class ChannelSettings:
    slack: SlackSettings | None
    telegram: TelegramSettings | None
    facebook: FacebookSettings | None
    twilio: TwilioSettings | None
    botframework: BotFrameworkSettings | None
    account_link_url: str
    """The store's sign-in page that links a platform user to a customer (demo: bot/web)."""
    account_link_minutes: int
    public_url: str | None
    """This server as the platforms reach it (Twilio's signed URL, Telegram's webhook)."""


def _platform(env: Mapping[str, str], platform: str, *required: str) -> dict[str, str] | None:
    """The platform's required settings, None when none is set; some but not all is an error."""
    values = {name: (env.get(name) or "").strip() for name in required}
    missing = [name for name, value in values.items() if not value]
    if len(missing) == len(required):
        return None
    if missing:
        raise SystemExit(f"the {platform} channel needs {', '.join(missing)} as well")
    return values


def read_channel_settings(env: Mapping[str, str]) -> ChannelSettings:
    """The channel settings of ``env`` (a mapping, so a test can read another process's)."""

    def url(name: str, default: str) -> str:
        return (env.get(name) or default).rstrip("/")

    slack = _platform(env, "Slack", "GIFTBOT_SLACK_BOT_TOKEN", "GIFTBOT_SLACK_SIGNING_SECRET")
    telegram = _platform(
        env,
        "Telegram",
        "GIFTBOT_TELEGRAM_BOT_TOKEN",
        "GIFTBOT_TELEGRAM_BOT_NAME",
        "GIFTBOT_TELEGRAM_SECRET_TOKEN",
    )
    if telegram and not re.fullmatch(
        r"[A-Za-z0-9_-]{1,256}", telegram["GIFTBOT_TELEGRAM_SECRET_TOKEN"]
    ):
        raise SystemExit(
            "GIFTBOT_TELEGRAM_SECRET_TOKEN must be 1-256 of A-Z, a-z, 0-9, _ and - (Telegram's rule)"
        )
    facebook = _platform(
        env,
        "Messenger",
        "GIFTBOT_FACEBOOK_PAGE_ACCESS_TOKEN",
        "GIFTBOT_FACEBOOK_APP_SECRET",
        "GIFTBOT_FACEBOOK_VERIFY_TOKEN",
    )
    twilio = _platform(
        env,
        "Twilio",
        "GIFTBOT_TWILIO_ACCOUNT_SID",
        "GIFTBOT_TWILIO_AUTH_TOKEN",
        "GIFTBOT_PUBLIC_URL",
    )
    sms_number = env.get("GIFTBOT_TWILIO_NUMBER") or None
    whatsapp_number = env.get("GIFTBOT_TWILIO_WHATSAPP_NUMBER") or None
    if twilio and not (sms_number or whatsapp_number):
        raise SystemExit(
            "the Twilio channel needs GIFTBOT_TWILIO_NUMBER or GIFTBOT_TWILIO_WHATSAPP_NUMBER"
        )
    botframework = _platform(
        env,
        "Bot Framework",
        "GIFTBOT_BOTFRAMEWORK_APP_ID",
        "GIFTBOT_BOTFRAMEWORK_APP_PASSWORD",
        "GIFTBOT_BOTFRAMEWORK_TENANT_ID",
    )
    web_port = _port_env("GIFTBOT_WEB_PORT", 8080)
    minutes = env.get("GIFTBOT_ACCOUNT_LINK_MINUTES") or "10"
    if not minutes.isdigit() or int(minutes) < 1:
        raise SystemExit(f"GIFTBOT_ACCOUNT_LINK_MINUTES must be a whole number, got {minutes!r}")
    return ChannelSettings(
        slack=(
            SlackSettings(
                bot_token=slack["GIFTBOT_SLACK_BOT_TOKEN"],
                signing_secret=slack["GIFTBOT_SLACK_SIGNING_SECRET"],
                api_url=url("GIFTBOT_SLACK_API_URL", "https://slack.com/api"),
            )
            if slack
            else None
        ),
        telegram=(
            TelegramSettings(
                bot_token=telegram["GIFTBOT_TELEGRAM_BOT_TOKEN"],
                bot_name=telegram["GIFTBOT_TELEGRAM_BOT_NAME"],
                secret_token=telegram["GIFTBOT_TELEGRAM_SECRET_TOKEN"],
                api_url=url("GIFTBOT_TELEGRAM_API_URL", "https://api.telegram.org"),
            )
            if telegram
            else None
        ),
        facebook=(
            FacebookSettings(
                page_access_token=facebook["GIFTBOT_FACEBOOK_PAGE_ACCESS_TOKEN"],
                app_secret=facebook["GIFTBOT_FACEBOOK_APP_SECRET"],
                verify_token=facebook["GIFTBOT_FACEBOOK_VERIFY_TOKEN"],
                api_url=url("GIFTBOT_FACEBOOK_API_URL", "https://graph.facebook.com/v18.0"),
            )
            if facebook
            else None
        ),
        twilio=(
            TwilioSettings(
                account_sid=twilio["GIFTBOT_TWILIO_ACCOUNT_SID"],
                auth_token=twilio["GIFTBOT_TWILIO_AUTH_TOKEN"],
                sms_number=sms_number,
                whatsapp_number=whatsapp_number,
                public_url=twilio["GIFTBOT_PUBLIC_URL"].rstrip("/"),
                api_url=url("GIFTBOT_TWILIO_API_URL", "https://api.twilio.com"),
            )
            if twilio
            else None
        ),
        botframework=(
            BotFrameworkSettings(
                app_id=botframework["GIFTBOT_BOTFRAMEWORK_APP_ID"],
                app_password=botframework["GIFTBOT_BOTFRAMEWORK_APP_PASSWORD"],
                tenant_id=botframework["GIFTBOT_BOTFRAMEWORK_TENANT_ID"],
                api_url=(env.get("GIFTBOT_BOTFRAMEWORK_API_URL") or "").rstrip("/") or None,
            )
            if botframework
            else None
        ),
        account_link_url=url(
            "GIFTBOT_ACCOUNT_LINK_URL",
            (env.get("GIFTBOT_PUBLIC_WEB_URL") or f"http://localhost:{web_port}").rstrip("/")
            + "/link",
        ),
        account_link_minutes=int(minutes),
        public_url=(env.get("GIFTBOT_PUBLIC_URL") or "").rstrip("/") or None,
    )


@lru_cache(maxsize=1)
def get_channel_settings() -> ChannelSettings:
    get_settings()  # reads the project's .env file into the environment first
    return read_channel_settings(os.environ)


# ------------------------------------------------------------------------------------ edge
# What every way in (REST, socket.io, the web server's public routes) enforces per client.


@dataclass(frozen=True)
class EdgeSettings:
    max_message_chars: int
    """Longest message the assistant reads (NLU memory grows with the square of the words)."""
    rate_limit_messages: int
    """Messages per client address per minute (REST, socket.io, and /api/mask separately)."""
    rate_limit_connects: int
    """socket.io connections per client address per minute."""
    rate_limit_sign_ins: int
    """Sign-in attempts (demo and agent console) per client address per minute."""
    trusted_proxy_header: str | None
    """Header our own proxy puts the client address in; None: the socket's peer address."""
    rate_limit_redis_url: str | None
    """Redis that keeps the counts, shared by every process; None: each process counts alone."""
    socketio_redis_url: str | None
    """Redis through which socket.io rooms are shared between Rasa processes; None: one process."""
    socket_session_key: bytes
    """HMAC key that binds a socket.io conversation to the secret its first client holds."""


@lru_cache(maxsize=1)
def get_edge_settings() -> EdgeSettings:
    settings = get_settings()  # reads the project's .env file into the environment first
    secret = _load_or_create_secrets(settings.var_dir)["GIFTBOT_SOCKET_SESSION_KEY"]
    return EdgeSettings(
        max_message_chars=_int_env("GIFTBOT_MAX_MESSAGE_CHARS", 2_000),
        rate_limit_messages=_int_env("GIFTBOT_RATE_LIMIT_MESSAGES", 30),
        rate_limit_connects=_int_env("GIFTBOT_RATE_LIMIT_CONNECTS", 20),
        rate_limit_sign_ins=_int_env("GIFTBOT_RATE_LIMIT_SIGN_INS", 10),
        trusted_proxy_header=os.environ.get("GIFTBOT_TRUSTED_PROXY_HEADER", "").strip() or None,
        rate_limit_redis_url=os.environ.get("GIFTBOT_RATE_LIMIT_REDIS_URL") or None,
        socketio_redis_url=os.environ.get("GIFTBOT_SOCKETIO_REDIS_URL") or None,
        socket_session_key=secret.encode(),
    )
