"""Where a Rasa server's time goes under load: py-spy samples it (without touching its code)
while the load runs, and each sample is put in the first group one of its frames belongs to."""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("jsonschema: validating action server responses", ("jsonschema/",)),
    (
        "the project's NLU components (bot/nlu/: sentence encoder, onnxruntime)",
        ("bot/nlu/sentence", "onnxruntime/"),
    ),
    ("TensorFlow: TED inference", ("tensorflow/", "run_inference")),
    (
        "tracker store: loading a conversation",
        ("_retrieve (rasa/core/tracker_store.py", "_retrieve (bot/tracker_store.py"),
    ),
    (
        "tracker store: saving a conversation",
        ("save (rasa/core/tracker_store.py", "save (bot/tracker_store.py"),
    ),
    ("spaCy: tokenising and the entity rules", ("spacy/", "bot/nlu/card_entities")),
    (
        "featurising the tracker's past states (policies)",
        ("past_states", "tracker_featurizers.py", "single_state_featurizer.py"),
    ),
    ("rule and memoization policies", ("rule_policy.py", "memoization.py")),
    ("NLU featurizers and classifiers (outside TensorFlow)", ("rasa/nlu/",)),
    ("calling the action server (aiohttp, JSON)", ("aiohttp/", "rasa/utils/endpoints.py")),
    ("logging", ("logging/", "structlog/", "bot/log_redaction.py")),
    ("events: copying and (de)serialising", ("deepcopy", "events.py", "json/")),
    ("SQLAlchemy, elsewhere", ("sqlalchemy/",)),
)
OTHER = "everything else (Sanic, asyncio, Rasa's processor)"


def record(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` for ``seconds`` into ``out`` (py-spy's collapsed stacks)."""
    return subprocess.Popen(  # noqa: S603 - our venv's py-spy, fixed arguments
        [
            str(BIN / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            "50",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def groups(collapsed: str) -> list[tuple[str, float]]:
    """Share of the samples in each group, largest first."""
    counts: collections.Counter[str] = collections.Counter()
    for line in collapsed.splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        frames = [re.sub(r":\d+\)", ")", frame) for frame in stack.split(";")]
        group = next(
            (
                name
                for name, patterns in GROUPS
                if any(pattern in frame for frame in frames for pattern in patterns)
            ),
            OTHER,
        )
        counts[group] += int(number)
    total = sum(counts.values()) or 1
    return [(name, count / total) for name, count in counts.most_common()]


def markdown(collapsed: str, what: str) -> str:
    samples = sum(int(line.rpartition(" ")[2]) for line in collapsed.splitlines() if line)
    lines = [
        f"py-spy, {samples} samples of {what}; each sample counted once, in the first group "
        "(in this order of the table's source, `scripts/bench/profile.py`) one of its frames "
        "falls in:",
        "",
        "| where | share |",
        "|---|---|",
    ]
    lines += [f"| {name} | {share:.0%} |" for name, share in groups(collapsed)]
    return "\n".join(lines)
