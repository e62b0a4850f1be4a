"""Finding 9: ``make audit`` (scripts/audit.py) tells "no advisory database answered" from "no
advisories", accepts only the advisories SECURITY.md accounts for, and never crashes.

pip-audit is played by a stand-in executable printing pip-audit's documented ``--format json``
report (or failing as pip-audit does without a network)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT

AUDIT = ROOT / "scripts" / "audit.py"
SKIPPED = {
    "name": "aiohttp",
    "skip_reason": "Dependency not found on PyPI and could not be audited: aiohttp (3.9.5)",
}


def _vulnerable(advisory: str, aliases: list[str]) -> dict[str, object]:
    return {
        "name": "aiohttp",
        "version": "3.9.5",
        "vulns": [
            {"id": advisory, "fix_versions": ["3.13.3"], "aliases": aliases, "description": "…"}
        ],
    }


def _run(tmp_path: Path, report: dict[str, object] | None) -> tuple[int, str]:
    """scripts/audit.py with a stand-in pip-audit that prints ``report`` (None: a crash)."""
    stand_in = tmp_path / "pip-audit"
    if report is None:
        body = "import sys\nprint('Traceback (most recent call last): ...', file=sys.stderr)\nsys.exit(1)\n"
    else:
        body = f"print({json.dumps(json.dumps(report))})\n"
    stand_in.write_text(f"#!{sys.executable}\n{body}")
    stand_in.chmod(0o700)
    done = subprocess.run(
        [sys.executable, str(AUDIT), str(stand_in)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout


@pytest.mark.parametrize(
    "report",
    [None, {"dependencies": [SKIPPED, {**SKIPPED, "name": "sanic"}], "fixes": []}],
    ids=["pip-audit fails", "every package skipped"],
)
def test_no_answer_is_said_plainly_and_is_not_a_failure(
    tmp_path: Path, report: dict[str, object] | None
) -> None:
    status, out = _run(tmp_path, report)
    assert status == 0
    assert "NO ADVISORY CHECK WAS MADE" in out and "No known vulnerabilities" not in out


def test_an_advisory_security_md_accounts_for_is_accepted(tmp_path: Path) -> None:
    report = {
        "dependencies": [_vulnerable("PYSEC-2099-1", ["CVE-2025-69223"]), SKIPPED],
        "fixes": [],
    }
    status, out = _run(tmp_path, report)
    assert status == 0, out
    assert "1 locked packages checked" in out and "(1 could not be looked up)" in out
    assert "PYSEC-2099-1" in out and "accepted, see SECURITY.md" in out


def test_a_new_advisory_fails_the_audit(tmp_path: Path) -> None:
    report = {"dependencies": [_vulnerable("GHSA-zzzz-zzzz-zzzz", ["CVE-2099-0001"])]}
    status, out = _run(tmp_path, report)
    assert status == 1
    assert "GHSA-zzzz-zzzz-zzzz" in out and "NEW" in out and "not in SECURITY.md" in out
