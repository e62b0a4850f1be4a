"""The installed ``giftbot`` command, run as a subprocess against a SQLite file in a temp dir."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest

from bot.settings import _read_env_file
from bot.tokens import verify_customer_token
from bot.wallet import codes, db, demo
from bot.wallet.db import make_engine
from bot.wallet.repository import ClaimCodeStatus, WalletRepository
from tests.wallet.dbcheck import claim_codes_in_bytes

GIFTBOT = Path(sys.executable).parent / "giftbot"
CARD_STATES = {"active", "redeemed", "inactive", "cancelled", "locked"}


@dataclass
class Giftbot:
    """``giftbot`` with its own var dir (secrets.env) and wallet database."""

    var_dir: Path

    @property
    def database(self) -> Path:
        return self.var_dir / "wallet.db"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.database}"

    def env(self) -> dict[str, str]:
        # None of the developer's GIFTBOT_* settings (secrets included) may leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTBOT_")}
        env.update(GIFTBOT_VAR_DIR=str(self.var_dir), GIFTBOT_DB_URL=self.url)
        return env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(GIFTBOT), *args], env=self.env(), capture_output=True, text=True, check=False
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def secret(self, name: str) -> str:
        return _read_env_file(self.var_dir / "secrets.env")[name]

    def repository(self) -> WalletRepository:
        """The same store in-process, with the secrets the command generated."""
        return WalletRepository(
            make_engine(self.url),
            self.secret("GIFTBOT_CLAIM_CODE_SECRET").encode(),
            self.secret("GIFTBOT_SEALING_KEY"),
        )

    def state(self) -> tuple[list[str], dict[str, bytes]]:
        """Every row (as an SQL dump) and every other file: what a refused command must keep."""
        connection = sqlite3.connect(self.database)
        try:
            dump = list(connection.iterdump())
        finally:
            connection.close()
        files = {
            p.name: p.read_bytes()
            for p in sorted(self.var_dir.iterdir())
            if p.is_file() and not p.name.startswith("wallet.db")
        }
        return dump, files


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not GIFTBOT.exists():
        pytest.fail(f"{GIFTBOT} is not installed: run 'make setup'", pytrace=False)
    var_dir = tmp_path_factory.mktemp("initialised") / "var"
    Giftbot(var_dir).ok("wallet", "init")
    return var_dir


@pytest.fixture(scope="module")
def seeded(initialised: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    var_dir = tmp_path_factory.mktemp("seeded") / "var"
    shutil.copytree(initialised, var_dir)
    Giftbot(var_dir).ok("wallet", "seed", "--demo")
    return var_dir


@pytest.fixture
def giftbot(initialised: Path, tmp_path: Path) -> Giftbot:
    """A copy of an initialised store (schema, no data) for this test alone."""
    shutil.copytree(initialised, tmp_path / "var")
    return Giftbot(tmp_path / "var")


@pytest.fixture
def seeded_giftbot(seeded: Path, tmp_path: Path) -> Giftbot:
    """A copy of a store with the demo data, for this test alone."""
    shutil.copytree(seeded, tmp_path / "var")
    return Giftbot(tmp_path / "var")


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line reason, got:\n{result.stderr}"
    assert lines[0].startswith("giftbot")
    assert fragment in lines[0]


# ----------------------------------------------------------------------------- init, seed


def test_init_creates_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    giftbot = Giftbot(tmp_path / "var")
    assert giftbot.json("wallet", "init") == {"status": "ok", "database": giftbot.url}
    assert giftbot.json("wallet", "init")["status"] == "ok"

    with sqlite3.connect(giftbot.database) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"customers", "orders", "gift_cards", "ledger_entries", "alembic_version"} <= names
    secrets_file = giftbot.var_dir / "secrets.env"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600


def test_commands_before_init_ask_for_init(tmp_path: Path) -> None:
    result = Giftbot(tmp_path / "var").run("wallet", "seed", "--demo")
    assert_one_line_error(result, "giftbot wallet init")


def test_seed_demo_loads_cards_in_every_state(giftbot: Giftbot) -> None:
    seeded = giftbot.json("wallet", "seed", "--demo")
    assert seeded["loaded"] is True
    assert [c["email"] for c in seeded["customers"]] == [e for _, e in demo.CUSTOMERS]
    assert [c["serial_number"] for c in seeded["cards"]] == [c.serial for c in demo.CARDS]

    repo = giftbot.repository()
    token_secret = giftbot.secret("GIFTBOT_TOKEN_SECRET")
    for customer in seeded["customers"]:
        stored = repo.find_customer_by_email(customer["email"])
        assert stored is not None
        assert verify_customer_token(customer["token"], token_secret) == stored.id
    states = set()
    for card in seeded["cards"]:
        stored_card = repo.find_card_by_serial(card["serial_number"])
        assert stored_card is not None
        states.add(stored_card.display_state)
    repo.engine.dispose()
    assert states == CARD_STATES
    redeemed = giftbot.json("wallet", "card", demo.CARDS[2].serial)
    assert (redeemed["state"], redeemed["redeemed_by"]) == ("redeemed", demo.CARDS[2].redeemed_by)

    before = giftbot.state()
    again = giftbot.json("wallet", "seed", "--demo")
    assert again["loaded"] is False
    assert giftbot.state() == before


# ------------------------------------------------------------------ customers and cards


def test_create_customer_and_issue_cards(giftbot: Giftbot) -> None:
    customer = giftbot.json(
        "wallet", "create-customer", "--name", "Dana Reyes", "--email", "Dana@Example.com"
    )
    assert customer["email"] == "dana@example.com"
    assert customer["name"] == "Dana Reyes"
    assert isinstance(customer["id"], int)

    emailed = giftbot.json(
        "wallet", "issue-card", "--amount", "50.00", "--purchaser", "dana@example.com",
        "--recipient-name", "Eli", "--recipient-email", "eli@example.com",
    )  # fmt: skip
    shipped = giftbot.json(
        "wallet", "issue-card", "--amount", "$1,000.5",
        "--purchaser", "DANA@example.com", "--recipient-name", "Eli",
        "--shipping-address", "1 Main St, Springfield",
    )  # fmt: skip
    for issued in (emailed, shipped):
        assert set(issued) == {"serial_number", "claim_code", "order_number", "amount", "currency"}
        assert re.fullmatch(r"17[0-9]{17}", issued["serial_number"])
        compact = issued["claim_code"].replace("-", "")
        assert re.fullmatch(r"[A-Z0-9]{14,15}", compact)
        assert re.search("[A-Z]", compact) and re.search("[0-9]", compact)
        assert re.fullmatch(r"(?:[0-9]{3}|D01)-[0-9]{7}-[0-9]{7}", issued["order_number"])
    assert (emailed["amount"], emailed["currency"]) == ("50.00", "USD")
    assert (shipped["amount"], shipped["currency"]) == ("1000.50", "USD")
    assert emailed["order_number"].startswith("D01-")
    assert not shipped["order_number"].startswith("D01-")

    card = giftbot.json("wallet", "card", emailed["serial_number"])
    assert card == {
        "serial_number": emailed["serial_number"],
        "state": "active",
        "amount": "50.00",
        "currency": "USD",
        "order_number": emailed["order_number"],
        "purchaser": "dana@example.com",
        "recipient_name": "Eli",
        "failed_attempts": 0,
        "redeemed_by": None,
        "redeemed_at": None,
    }
    # The serial may be typed the way it is printed.
    spaced = " ".join(re.findall(".{1,4}", shipped["serial_number"]))
    assert giftbot.json("wallet", "card", spaced)["amount"] == "1000.50"

    # The claim codes were shown once and stored nowhere: not in any file of the var dir.
    plain = [emailed["claim_code"], shipped["claim_code"]]
    files = [p for p in giftbot.var_dir.rglob("*") if p.is_file()]
    assert giftbot.database in files
    assert claim_codes_in_bytes(files, plain) == []


def test_text_output_is_for_people(giftbot: Giftbot) -> None:
    giftbot.ok("wallet", "create-customer", "--name", "Dana Reyes", "--email", "dana@example.com")
    text = giftbot.ok(
        "wallet", "issue-card", "--amount", "20", "--purchaser", "dana@example.com",
        "--recipient-name", "Eli", "--recipient-email", "eli@example.com",
    )  # fmt: skip
    assert "$20.00" in text
    serial = re.search(r"17[0-9]{17}", text)
    assert serial is not None
    card_text = giftbot.ok("wallet", "card", serial.group())
    assert "active" in card_text and "20.00" in card_text


def test_customer_shows_balance_and_ledger_after_a_redemption(giftbot: Giftbot) -> None:
    giftbot.ok("wallet", "create-customer", "--name", "Dana Reyes", "--email", "dana@example.com")
    giftbot.ok("wallet", "create-customer", "--name", "Eli Stone", "--email", "eli@example.com")
    issued = giftbot.json(
        "wallet", "issue-card", "--amount", "50.00", "--purchaser", "dana@example.com",
        "--recipient-name", "Eli Stone", "--recipient-email", "eli@example.com",
    )  # fmt: skip

    # Redeem in-process with the secrets the command generated: the HMACs must agree.
    repo = giftbot.repository()
    eli = repo.find_customer_by_email("eli@example.com")
    assert eli is not None
    result = repo.redeem(issued["claim_code"], eli.id, actor="test")
    assert (result.status, result.redeemed) == (ClaimCodeStatus.REDEEMED_BY_YOU, True)
    repo.engine.dispose()

    shown = giftbot.json("wallet", "customer", "ELI@example.com")
    assert (shown["id"], shown["email"], shown["name"]) == (eli.id, "eli@example.com", "Eli Stone")
    assert (shown["balance"], shown["currency"]) == ("50.00", "USD")
    [line] = shown["ledger"]
    assert (line["amount"], line["kind"]) == ("50.00", "redemption")
    assert line["card"] == codes.mask_serial(issued["serial_number"])
    assert giftbot.json("wallet", "customer", "dana@example.com")["ledger"] == []

    card = giftbot.json("wallet", "card", issued["serial_number"])
    assert (card["state"], card["redeemed_by"]) == ("redeemed", "eli@example.com")
    assert card["redeemed_at"] is not None


# -------------------------------------------------------------------------------- tokens


def test_token_is_a_jwt_for_the_customer(seeded_giftbot: Giftbot) -> None:
    giftbot = seeded_giftbot
    ben = giftbot.json("wallet", "customer", "ben@example.com")
    secret = giftbot.secret("GIFTBOT_TOKEN_SECRET")

    token = giftbot.ok("token", "Ben@Example.com").strip()
    assert verify_customer_token(token, secret) == ben["id"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert jwt.decode(token, secret, algorithms=["HS256"])["sub"] == str(ben["id"])
    assert verify_customer_token(token, secret + "x") is None

    payload = giftbot.json("token", "ben@example.com")
    assert (payload["email"], payload["customer_id"]) == ("ben@example.com", ben["id"])
    assert verify_customer_token(payload["customer_token"], secret) == ben["id"]


SECRET = "s" * 64


def _signed(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        42,
        "not.a.jwt",
        _signed({"sub": "7", "exp": 1}),  # expired long ago
        _signed({"sub": "7", "exp": 4_102_444_800}, secret="another secret" * 4),
        _signed({"sub": "7"}),  # no expiry
        _signed({"exp": 4_102_444_800}),  # no subject
        _signed({"sub": "ann", "exp": 4_102_444_800}),
        _signed({"sub": "-7", "exp": 4_102_444_800}),
        _signed({"sub": "\u00b2", "exp": 4_102_444_800}),  # "²".isdigit(), but no number
        _signed({"sub": "\u0667", "exp": 4_102_444_800}),  # Arabic-Indic seven
        _signed({"sub": "7", "exp": 4_102_444_800}, secret="", algorithm="none"),
    ],
)
def test_verify_customer_token_refuses_anything_but_a_valid_token(token: object) -> None:
    assert verify_customer_token(token, SECRET) is None


def test_verify_customer_token_accepts_a_valid_token() -> None:
    assert verify_customer_token(_signed({"sub": "7", "exp": 4_102_444_800}), SECRET) == 7


# ---------------------------------------------------------------------------- bad input

ISSUE = ["wallet", "issue-card", "--purchaser", "ann@example.com", "--recipient-name", "Ben"]
ISSUE_BY_NOBODY = [
    "wallet",
    "issue-card",
    "--purchaser",
    "nobody@example.com",
    "--recipient-name",
    "Ben",
]
TO_BEN = ["--recipient-email", "ben@example.com"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["wallet", "card", "1234"], "19 digits"),
        (["wallet", "card", "17123456789012345AB"], "no letters"),
        (["wallet", "card", "2712345678901234567"], "start with 17"),
        (["wallet", "card", "1700000000000000000"], "no card"),
        ([*ISSUE, *TO_BEN, "--amount", "0"], "more than zero"),
        ([*ISSUE, *TO_BEN, "--amount", "-5"], "more than zero"),
        ([*ISSUE, *TO_BEN, "--amount=-0.01"], "more than zero"),
        ([*ISSUE, *TO_BEN, "--amount", "fifty"], "must be a number"),
        ([*ISSUE, *TO_BEN, "--amount", "12.345"], "two decimals"),
        ([*ISSUE, *TO_BEN, "--amount", "1e30"], "at most"),
        ([*ISSUE, *TO_BEN, "--amount", "NaN"], "more than zero"),
        ([*ISSUE_BY_NOBODY, "--amount", "5", *TO_BEN], "no customer"),
        ([*ISSUE, "--amount", "5"], "--recipient-email --shipping-address is required"),
        ([*ISSUE, "--amount", "5", *TO_BEN, "--shipping-address", "1 Main St"], "not allowed"),
        ([*ISSUE, "--amount", "5", "--recipient-email", "ben.example.com"], "not an email"),
        ([*ISSUE[:-1], " ", "--amount", "5", *TO_BEN], "name"),
        (["wallet", "create-customer", "--name", "Ann", "--email", "ANN@example.com"], "exists"),
        (["wallet", "create-customer", "--name", "Ann", "--email", "ann.example.com"], "email"),
        (["wallet", "create-customer", "--name", "", "--email", "new@example.com"], "name"),
        (["wallet", "create-customer", "--email", "new@example.com"], "--name"),
        (["wallet", "customer", "nobody@example.com"], "no customer"),
        (["token", "nobody@example.com"], "no customer"),
        (["wallet", "seed"], "--demo"),
        (["wallet", "frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_refused_in_one_line_and_writes_nothing(
    seeded_giftbot: Giftbot, args: list[str], reason: str
) -> None:
    before = seeded_giftbot.state()
    result = seeded_giftbot.run(*args)
    assert_one_line_error(result, reason)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert seeded_giftbot.state() == before


# -------------------------------------------------------------------------------- agents

AGENT_PASSWORD = "correct horse battery"


def test_agent_create_list_disable(giftbot: Giftbot) -> None:
    assert giftbot.json("agent", "list") == {"agents": []}
    assert "No agents yet" in giftbot.ok("agent", "list")

    sam = giftbot.json(
        "agent", "create", "--username", "Sam", "--password", AGENT_PASSWORD,
        "--display-name", "Sam Lee",
    )  # fmt: skip
    assert {k: v for k, v in sam.items() if k != "created_at"} == {
        "username": "sam",
        "display_name": "Sam Lee",
        "disabled": False,
        "available": False,
        "locked_until": None,
    }
    text = giftbot.ok("agent", "create", "--username", "zoe", "--password", "her own passphrase")
    assert text.strip() == "Agent zoe (zoe) created"

    listed = giftbot.json("agent", "list")["agents"]
    assert [(a["username"], a["display_name"]) for a in listed] == [
        ("sam", "Sam Lee"),
        ("zoe", "zoe"),
    ]
    assert listed[0] == sam
    lines = giftbot.ok("agent", "list").splitlines()
    assert [line.split()[0] for line in lines] == ["sam", "zoe"]
    assert all(line.endswith("away") for line in lines)

    disabled = giftbot.json("agent", "disable", "SAM")
    assert (disabled["username"], disabled["disabled"]) == ("sam", True)
    assert giftbot.ok("agent", "list").splitlines()[0].endswith("disabled")
    assert giftbot.ok("agent", "enable", "sam").strip() == "Agent sam is enabled"

    # The password works in-process with the stored hash; it is nowhere in plain text.
    repo = giftbot.repository()
    assert repo.verify_agent_password("sam", AGENT_PASSWORD) is not None
    assert repo.verify_agent_password("sam", "her own passphrase") is None
    entries = [e for e in repo.audit_log() if e["action"].startswith("agent.")]
    repo.engine.dispose()
    assert {(e["actor"], e["action"]) for e in entries} >= {
        ("cli", "agent.created"),
        ("cli", "agent.disabled"),
        ("cli", "agent.enabled"),
    }
    files = [p for p in giftbot.var_dir.rglob("*") if p.is_file()]
    assert giftbot.database in files
    for path in files:
        data = path.read_bytes()
        for password in (AGENT_PASSWORD, "her own passphrase"):
            assert password.encode() not in data, path
            assert password.encode("utf-16-le") not in data, path


def test_agent_password_from_standard_input(giftbot: Giftbot) -> None:
    result = subprocess.run(
        [str(GIFTBOT), "agent", "create", "--username", "sam", "--password", "-", "--json"],
        env=giftbot.env(),
        input=AGENT_PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert AGENT_PASSWORD not in result.stdout
    repo = giftbot.repository()
    assert repo.verify_agent_password("sam", AGENT_PASSWORD) is not None
    repo.engine.dispose()


def test_agent_commands_never_print_the_password_or_its_hash(giftbot: Giftbot) -> None:
    outputs = []
    for args in (
        ["agent", "create", "--username", "sam", "--password", AGENT_PASSWORD],
        ["agent", "list"],
        ["agent", "disable", "sam"],
        ["agent", "create", "--username", "sam", "--password", AGENT_PASSWORD],  # duplicate
        ["agent", "create", "--username", "ann", "--password", "short pw"],  # too short
    ):
        for extra in ([], ["--json"]):
            result = giftbot.run(*args, *extra)
            outputs.append(result.stdout + result.stderr)
    assert all(AGENT_PASSWORD not in output and "short pw" not in output for output in outputs)
    assert all("argon2" not in output for output in outputs)


AGENT = ["agent", "create", "--username"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ([*AGENT, "sam", "--password", "123456789"], "too short"),
        ([*AGENT, "sam", "--password", ""], "too short"),
        ([*AGENT, "sam", "--password", "aaaaaaaaaaaaaaa"], "repetitive"),
        ([*AGENT, "sam", "--password", "i am sam, hello"], "must not contain the username"),
        ([*AGENT, "SAM", "--password", "another fine passphrase"], "sam already exists"),
        ([*AGENT, "sam lee", "--password", AGENT_PASSWORD], "a username has"),
        ([*AGENT, "x", "--password", AGENT_PASSWORD], "a username has"),
        ([*AGENT, "zoe", "--password", AGENT_PASSWORD, "--display-name", " "], "display name"),
        ([*AGENT, "zoe"], "--password"),
        (["agent", "create", "--password", AGENT_PASSWORD], "--username"),
        (["agent", "disable", "nobody"], "no agent with the username nobody"),
        (["agent", "enable", "nobody"], "no agent with the username nobody"),
        (["agent", "disable"], "username"),
        (["agent"], "command"),
        (["agent", "frobnicate"], "invalid choice"),
    ],
)
def test_bad_agent_input_is_refused_in_one_line_and_writes_nothing(
    giftbot: Giftbot, args: list[str], reason: str
) -> None:
    giftbot.ok("agent", "create", "--username", "sam", "--password", AGENT_PASSWORD)
    before = giftbot.state()
    result = giftbot.run(*args)
    assert_one_line_error(result, reason)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert giftbot.state() == before


def test_agent_commands_on_an_old_schema_ask_for_init(giftbot: Giftbot) -> None:
    """A store made before the console existed: 'wallet init' upgrades it."""
    engine = make_engine(giftbot.url)
    db.downgrade(engine, "0001")
    engine.dispose()
    result = giftbot.run("agent", "list")
    assert_one_line_error(result, "giftbot wallet init")
    giftbot.ok("wallet", "init")
    assert giftbot.json("agent", "list") == {"agents": []}
