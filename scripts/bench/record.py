"""Record a conversation the bench held, as the assistant's tracker store keeps it, split into
the turns Rasa saved: the input of the tests that compare the speed-ups with Rasa 3.6.21's own
code (tests/rasa_ext/test_tracker_store_speed.py, tests/rasa_ext/test_speedups_states.py).

    .venv/bin/python -m scripts.bench.record var/bench/.../tracker.db tests/rasa_ext/data/bench_conversation.json

The stored events are already redacted (bot/tracker_store.py); the sealed slot values are
replaced by a plain text of their own, as they open only with the sealing key of the machine
that recorded them (a sealed and a plain value featurise alike: a text slot is set or not).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.wallet.codes import SEALED_PREFIX
from scripts.bench.speedups import stored_conversation

RECORDED_VALUE = "(sealed when recorded)"


def turns(events: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The events cut after each ``action_listen``: what each turn added to the conversation."""
    cut: list[list[dict[str, Any]]] = [[]]
    for event in events:
        cut[-1].append(_unsealed(event))
        if event.get("event") == "action" and event.get("name") == "action_listen":
            cut.append([])
    return [turn for turn in cut if turn]


def _unsealed(event: dict[str, Any]) -> dict[str, Any]:
    value = event.get("value")
    if event.get("event") == "slot" and isinstance(value, str) and value.startswith(SEALED_PREFIX):
        return {**event, "value": RECORDED_VALUE}
    return event


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench.record", description=__doc__)
    parser.add_argument("tracker_db", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    recorded = turns(stored_conversation(args.tracker_db))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    print(f"{sum(map(len, recorded))} events in {len(recorded)} turns -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
