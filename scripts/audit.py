"""``make audit``: known advisories of the locked stack (requirements.lock), by pip-audit.

pip-audit runs from its own virtualenv (``.venv-audit``, locked in requirements-audit.lock):
it needs packaging>=23 and Rasa 3.6 pins packaging<21. Every pin of the lock is looked up as
it is (``--no-deps --disable-pip``: the lock is the whole stack, nothing is installed).

pip-audit prints "No known vulnerabilities found" even when it could look nothing up (an
unreachable or filtered advisory service reports each package as "not found"), so this script
reads its JSON and says which it was:

- no advisory service answered: a message, exit 0 (there is nothing to act on, and a machine
  without the network must not fail ``make audit``); tried: PyPI's, then OSV's;
- advisories found: each is *accepted* when its id or an alias (GHSA-…, PYSEC-…, CVE-…) is in
  SECURITY.md, which says why it is mitigated or not reachable; any other fails (exit 1).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
POLICY = ROOT / "SECURITY.md"
SERVICES = ("pypi", "osv")
TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    looked_up: int
    skipped: int
    findings: tuple[Finding, ...]

    @property
    def reached(self) -> bool:
        """Whether the advisory service answered for at least one package."""
        return self.looked_up > 0


def parse(report: dict[str, Any]) -> Report:
    """pip-audit's ``--format json``: {"dependencies": [{"name", "version", "vulns": [{"id",
    "fix_versions", "aliases", ...}]} or {"name", "skip_reason"}], "fixes": [...]}."""
    looked_up, skipped, findings = 0, 0, []
    for dependency in report.get("dependencies", []):
        if dependency.get("skip_reason"):
            skipped += 1
            continue
        looked_up += 1
        for vuln in dependency.get("vulns", []):
            findings.append(
                Finding(
                    package=dependency["name"],
                    version=dependency.get("version", "?"),
                    advisory=vuln["id"],
                    aliases=tuple(vuln.get("aliases", [])),
                    fixed_in=tuple(vuln.get("fix_versions", [])),
                )
            )
    return Report(looked_up, skipped, tuple(findings))


def accepted_ids(policy: str) -> set[str]:
    """Advisory ids named in SECURITY.md."""
    return set(re.findall(r"\b(?:GHSA(?:-[0-9a-z]{4}){3}|PYSEC-\d{4}-\d+|CVE-\d{4}-\d+)\b", policy))


def run_pip_audit(pip_audit: str, service: str) -> dict[str, Any] | None:
    """pip-audit's JSON report; None when it failed without one (e.g. no network at all)."""
    command = [
        pip_audit,
        "-r",
        str(LOCK),
        "--no-deps",
        "--disable-pip",
        "--vulnerability-service",
        service,
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    try:
        done = subprocess.run(  # noqa: S603 - our own command line, no shell
            command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        return None
    try:
        report = json.loads(done.stdout)
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def main(argv: list[str]) -> int:
    pip_audit = argv[1] if len(argv) > 1 else "pip-audit"
    for service in SERVICES:
        raw = run_pip_audit(pip_audit, service)
        report = parse(raw) if raw is not None else None
        if report is None or not report.reached:
            print(f"make audit: the {service} advisory database could not be reached.")
            continue
        return summarise(service, report, accepted_ids(POLICY.read_text()))
    print(
        "make audit: NO ADVISORY CHECK WAS MADE: no advisory database could be reached from "
        "this machine. Run `make audit` where https://pypi.org or https://api.osv.dev is "
        "reachable; SECURITY.md lists the advisories known when it was last written."
    )
    return 0


def summarise(service: str, report: Report, accepted: set[str]) -> int:
    print(
        f"make audit: {report.looked_up} locked packages checked against the {service} "
        f"advisory database ({report.skipped} could not be looked up)."
    )
    new = []
    for finding in report.findings:
        ids = {finding.advisory, *finding.aliases}
        known = bool(ids & accepted)
        fixed = ", ".join(finding.fixed_in) or "no fixed version"
        state = "accepted, see SECURITY.md" if known else "NEW"
        print(
            f"  {finding.package} {finding.version}: {finding.advisory} "
            f"({', '.join(finding.aliases) or 'no aliases'}; fixed in {fixed}): {state}"
        )
        if not known:
            new.append(finding)
    if new:
        print(
            f"make audit: {len(new)} advisories are not in SECURITY.md: upgrade, or write down "
            "there why each is not reachable in this deployment."
        )
        return 1
    print("make audit: no advisory beyond those SECURITY.md accounts for.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
