"""Local state is for the user who runs the assistant alone: folders 0700, files 0600.

The wallet store, the tracker store, generated secrets, channel credentials and logs all live
under ``GIFTBOT_VAR_DIR``; some hold personal data, some hold keys. They are created private
here whatever the process's umask (``scripts/serve.sh`` and the Makefile also set 077 for what
shell redirections create), and ``var/`` itself is closed up when an older version left it
open. A folder that is not ours to manage (the parent of a database file set in
``GIFTBOT_DB_URL``) is created private when missing but never changed when it exists.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path, *, tighten: bool = False) -> Path:
    """``path`` as a folder, each missing part created 0700; ``tighten``: an existing ``path``
    that others may read is made 0700 too."""
    missing = []
    for part in (path, *path.parents):
        if part.exists():
            break
        missing.append(part)
    for part in reversed(missing):
        # The umask can only take bits away from 0700. Another process may create it first.
        with contextlib.suppress(FileExistsError):
            part.mkdir(mode=PRIVATE_DIR)
    if tighten:
        _tighten(path, PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """``path`` created empty and 0600 when missing (its contents are someone else's to write,
    e.g. SQLite's), or made 0600 when it exists with more."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    os.close(fd)
    _tighten(path, PRIVATE_FILE)
    return path


def _tighten(path: Path, mode: int) -> None:
    info = path.stat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, mode)
