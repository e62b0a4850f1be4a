"""What the speed-up tests run Rasa's code and the project's on: the recorded bench conversation
(``data/bench_conversation.json``, written by ``scripts/bench/record.py``) and the trained model."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event
from rasa.shared.core.trackers import DialogueStateTracker

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "giftbot.tar.gz"
RECORDED = Path(__file__).resolve().parent / "data" / "bench_conversation.json"


def recorded_trackers(domain: Domain) -> list[DialogueStateTracker]:
    """The conversation before each action of it (what the policies were asked about)."""
    events = [Event.from_parameters(e) for turn in json.loads(RECORDED.read_text()) for e in turn]
    tracker = DialogueStateTracker("recorded", domain.slots)
    trackers = []
    for event in events:
        if isinstance(event, ActionExecuted) and tracker.events:
            trackers.append(tracker.copy())
        tracker.update(event, domain)
    return trackers


@contextlib.contextmanager
def trained_model() -> Iterator[tuple[LocalModelStorage, Any]]:
    """The trained model's storage and metadata, unpacked for the duration."""
    if not MODEL.exists():
        raise RuntimeError(f"no trained model at {MODEL}: run `make test`, which trains it first")
    with tempfile.TemporaryDirectory() as storage_path:
        yield LocalModelStorage.from_model_archive(Path(storage_path), MODEL)
