"""``make bench`` once, on a tiny load: it starts both stacks, drives them over REST and
socket.io in the closed and the open loop, and writes a report whose every part is there.
Every turn gets an answer (an HTTP or socket.io acknowledgement; from the assistant, a message).
A proof that the benchmark works, never a speed test: no figure is compared with a limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.rasa_ext.speedups import SPEEDUPS
from scripts.bench import journeys, report, stacks
from scripts.bench.__main__ import Parameters, bench
from tests.servers import Servers

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def results(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> report.Results:
    """The plain bot started by the bench; the assistant is the suite's servers (one Rasa
    start fewer: ``make bench`` itself starts the assistant and times its cold start)."""
    return bench(
        Parameters.tiny(), tmp_path_factory.mktemp("bench"), stacks.running_assistant(servers)
    )


def test_every_turn_of_every_run_was_answered(results: report.Results) -> None:
    params = Parameters.tiny()
    assert [s.name for s in results.stacks] == ["plain rasa init", "assistant"]
    for stack in results.stacks:
        runs = {(r["name"], r["transport"]): r for r in stack.runs}
        assert set(runs) == {
            (name, transport)
            for name in (
                "closed-1",
                f"closed-{params.closed_shoppers}",
                f"open-{params.open_shoppers}",
            )
            for transport in ("REST", "socket.io")
        }
        for run in runs.values():
            assert run["messages"] == run["shoppers"] * run["turns"] > 0
            assert run["answered"] == run["messages"], (stack.name, run)
            assert run["errors"] == []
            if stack.name == "assistant":  # the plain bot may choose to say nothing
                assert run["silent"] == 0
            assert run["msg_per_s"] > 0 and run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"]


def test_the_alternated_rounds_drove_both_stacks(results: report.Results) -> None:
    """Both stacks up at once, each driven in turn; the one-instance target is read from
    these rounds."""
    params = Parameters.tiny()
    assert [pair["round"] for pair in results.paired] == [1]
    for role in ("plain", "assistant"):
        run = results.paired[0][role]
        assert run["messages"] == run["answered"] == params.closed_shoppers * params.turns
    (ratio,) = results.paired_ratios()
    assert ratio > 0
    one_instance = next(row for row in report.targets(results) if "one instance" in row[0])
    assert "median of" in one_instance[1]


def test_the_assistant_walked_the_scripted_journeys(results: report.Results) -> None:
    """The answers were the journeys' (the wallet store's $50.00 among them), not fallbacks."""
    assert "$50.00" in journeys.SHOPPER[Parameters.tiny().turns - 1].expect
    assistant = results.stack("assistant")
    assert assistant is not None
    for run in assistant.runs:
        assert run["as_scripted"] == run["messages"], run["not_as_scripted"]


def test_memory_cold_start_and_training_are_reported(results: report.Results) -> None:
    assistant, plain = results.stack("assistant"), results.stack("plain")
    assert assistant is not None and plain is not None
    assert set(assistant.memory_mb) == {"Rasa", "action server"}
    assert set(plain.memory_mb) == {"Rasa"}
    assert plain.cold_start_s is not None and plain.cold_start_s > 0
    for stack in (assistant, plain):
        assert all(0 < now <= peak for now, peak in stack.memory_mb.values())
    assert [s["name"] for s in results.speedups] == [f.__name__ for f in SPEEDUPS] + [
        "RedactingSQLTrackerStore.retrieve",
        "RedactingSQLTrackerStore.save",
    ]
    assert all(s["before_us"] > 0 and s["after_us"] > 0 for s in results.speedups)
    (training,) = results.training.values()
    assert training["seconds"] > 0


def test_the_report_says_everything_with_the_conditions(results: report.Results) -> None:
    text = report.markdown(results)
    for heading in ("## Conditions", "## Targets (issue 10)", "## Throughput and latency"):
        assert heading in text
    assert (
        f"Load average (1, 5, 15 min) at the start of the run: **{results.load_at_start}**" in text
    )
    assert results.machine["cpu"] in text
    targets = report.targets(results)
    assert [label for label, _, _ in targets][:2] == [
        "20 shoppers, zero think time: scaled ≥ 3\N{MULTIPLICATION SIGN} plain",
        "20 shoppers, zero think time: one instance ≥ 1.5\N{MULTIPLICATION SIGN} plain",
    ]
    json.dumps(results.as_dict())  # the JSON beside the report


def test_notes_written_by_hand_survive_a_new_report(
    tmp_path: Path, results: report.Results
) -> None:
    out = tmp_path / "performance.md"
    out.write_text(report.markdown(results, "What was tried: everything."))
    assert "What was tried: everything." in report.markdown(
        results, report.kept_notes(out.read_text())
    )
