"""`rasa test` on the end-to-end test stories, failing on any wrong prediction."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import MODEL, ROOT


def test_end_to_end_stories_are_predicted_turn_by_turn(tmp_path: Path) -> None:
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make test`, which trains it first")
    log = tmp_path / "rasa-test.log"
    with log.open("w") as out:
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "rasa"),
                "test",
                "core",
                "--model",
                str(MODEL),
                "--stories",
                str(ROOT / "tests" / "stories"),
                "--fail-on-prediction-errors",
                "--out",
                str(tmp_path / "results"),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            check=False,
        )
    failed = tmp_path / "results" / "failed_test_stories.yml"
    details = failed.read_text() if failed.exists() else log.read_text()[-4000:]
    assert done.returncode == 0, details
