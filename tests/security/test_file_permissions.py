"""Finding 8 (low): database files, secrets and logs are for the user who runs the assistant:
every folder under ``GIFTBOT_VAR_DIR`` 0700, every file 0600, whatever the umask.

The real set-up step (``giftbot wallet init`` and ``seed``, as ``make run`` runs them) on a
fresh var dir, and the tracker store ``endpoints.yml`` selects, writing a conversation."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from pathlib import Path

from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.tracker_store import RedactingSQLTrackerStore
from tests.servers import BIN, ROOT

LOOSE_UMASK = 0o022  # the common default: files 0644, folders 0755


def _modes(root: Path) -> dict[str, int]:
    """Every path under ``root`` (and ``root``) with its permission bits."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _assert_private(root: Path) -> None:
    for name, mode in _modes(root).items():
        path = root / name
        expected = 0o700 if path.is_dir() else 0o600
        assert mode == expected, f"{name}: {oct(mode)}, expected {oct(expected)}"


def _giftbot(var_dir: Path, *args: str) -> None:
    env = {**os.environ, "GIFTBOT_VAR_DIR": str(var_dir)}
    env.pop("GIFTBOT_DB_URL", None)  # the default: a SQLite file in the var dir
    subprocess.run(
        [str(BIN / "giftbot"), *args],
        cwd=ROOT,
        env=env,
        umask=LOOSE_UMASK,
        check=True,
        capture_output=True,
    )


def test_the_set_up_creates_a_private_var_dir(tmp_path: Path) -> None:
    var_dir = tmp_path / "fresh" / "var"
    _giftbot(var_dir, "wallet", "init")
    _giftbot(var_dir, "wallet", "seed", "--demo")
    names = set(_modes(var_dir))
    assert {"wallet.db", "secrets.env", "log"} <= names, names
    _assert_private(tmp_path / "fresh")


def test_an_open_var_dir_of_an_older_version_is_closed_up(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    (var_dir / "log").mkdir(parents=True)
    (var_dir / "wallet.db").touch()
    os.chmod(var_dir, 0o755)
    os.chmod(var_dir / "log", 0o755)
    os.chmod(var_dir / "wallet.db", 0o644)
    _giftbot(var_dir, "wallet", "init")
    _assert_private(var_dir)


def test_the_tracker_store_file_is_private(tmp_path: Path) -> None:
    database = tmp_path / "state" / "tracker.db"
    old = os.umask(LOOSE_UMASK)
    try:
        store = RedactingSQLTrackerStore(domain=Domain.empty(), dialect="sqlite", db=str(database))
        tracker = DialogueStateTracker.from_events(
            "permissions-1", [ActionExecuted("action_listen"), UserUttered("hello")]
        )
        asyncio.run(store.save(tracker))
        store.engine.dispose()
    finally:
        os.umask(old)
    assert database.stat().st_size > 0
    _assert_private(tmp_path / "state")
