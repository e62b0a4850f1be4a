"""Looking at a wallet database from the outside: every row of every table, and the raw bytes.

The tests use these to prove that a refused request wrote nothing and that no claim code was
ever stored in plain text, whatever table or column the code might have slipped into.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, select
from sqlalchemy.engine import Engine, make_url

from bot.wallet import codes

Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(engine: Engine) -> Snapshot:
    """Every row of every table (found by reflection, so new tables are included)."""
    meta = MetaData()
    meta.reflect(bind=engine)
    with engine.connect() as connection:
        return {
            name: sorted((tuple(row) for row in connection.execute(select(table))), key=repr)
            for name, table in sorted(meta.tables.items())
        }


def row_counts(engine: Engine) -> dict[str, int]:
    return {name: len(rows) for name, rows in snapshot(engine).items()}


def spellings(claim_code: str) -> list[str]:
    """The ways a claim code could have been written down: compact and as printed, any case."""
    canonical = codes.parse_claim_code(claim_code)
    printed = codes.format_claim_code(canonical)
    return [canonical, printed, printed.replace("-", " ")]


def claim_codes_in_rows(engine: Engine, claim_codes: list[str]) -> list[tuple[str, str]]:
    """(table, value) for every stored value that contains one of the codes."""
    hits = []
    for table, rows in snapshot(engine).items():
        for row in rows:
            for value in row:
                text = str(value).upper()
                for code in claim_codes:
                    if any(spelling in text for spelling in spellings(code)):
                        hits.append((table, str(value)))
    return hits


def sqlite_files(engine: Engine) -> list[Path]:
    """The database file and its WAL/journal files, as far as they exist."""
    database = make_url(str(engine.url)).database
    assert database, "not a SQLite file database"
    path = Path(database)
    candidates = [path, *(path.with_name(path.name + s) for s in ("-wal", "-journal", "-shm"))]
    return [p for p in candidates if p.exists()]


def claim_codes_in_bytes(paths: list[Path], claim_codes: list[str]) -> list[tuple[Path, str]]:
    hits = []
    for path in paths:
        data = path.read_bytes()
        for code in claim_codes:
            for spelling in spellings(code):
                for variant in (spelling, spelling.lower()):
                    for encoded in (variant.encode("ascii"), variant.encode("utf-16-le")):
                        if encoded in data:
                            hits.append((path, variant))
    return hits
