"""Figures from the runs, and docs/performance.md made of them.

The results are kept as plain data (``Results.as_dict``: also written as JSON next to the
report) so that a test can check the report's structure without reading markdown.
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.bench.load import Run, Sample


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def run_figures(run: Run) -> dict[str, Any]:
    latencies = [s.latency for s in run.samples if s.error is None]
    return {
        "name": run.name,
        "transport": run.transport,
        "shoppers": run.shoppers,
        "turns": run.turns,
        "offered_rate": run.offered_rate,
        "messages": len(run.samples),
        "answered": sum(1 for s in run.samples if s.error is None),
        "silent": sum(1 for s in run.samples if s.error is None and not s.replies),
        "as_scripted": sum(1 for s in run.samples if s.as_scripted),
        "errors": sorted({s.error for s in run.samples if s.error}),
        "late_sends": sum(1 for s in run.samples if s.late),
        "duration_s": run.duration,
        "msg_per_s": len(latencies) / run.duration if run.duration else 0.0,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "turn_4_ms": _median_of_turn(run.samples, 4),
        "turn_40_ms": _median_of_turn(run.samples, 40),
        "not_as_scripted": sorted({s.turn for s in run.samples if s.replies and not s.as_scripted}),
    }


def _median_of_turn(samples: Sequence[Sample], turn: int) -> float | None:
    values = [s.latency for s in samples if s.turn == turn and s.error is None]
    return statistics.median(values) * 1000 if values else None


@dataclass
class StackResult:
    name: str
    cold_start_s: float | None
    runs: list[dict[str, Any]] = field(default_factory=list)
    memory_mb: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Process -> (RSS after the runs, peak RSS), MB."""
    rasa_memory_map: list[tuple[str, float]] = field(default_factory=list)
    """The Rasa server's largest resident mappings after the runs, MB."""

    def run(self, name: str, transport: str = "REST") -> dict[str, Any] | None:
        return next(
            (r for r in self.runs if r["name"] == name and r["transport"] == transport), None
        )


@dataclass
class Results:
    machine: dict[str, str]
    load_at_start: str
    parameters: dict[str, Any]
    stacks: list[StackResult] = field(default_factory=list)
    training: dict[str, dict[str, Any]] = field(default_factory=dict)
    speedups: list[dict[str, Any]] = field(default_factory=list)
    load_at_end: str = ""
    profile: str = ""
    skipped: list[str] = field(default_factory=list)
    paired: list[dict[str, Any]] = field(default_factory=list)
    """The alternated 20-shopper runs: the round's number, and the figures of "plain" and of
    "assistant"."""

    def paired_ratios(self) -> list[float]:
        """The assistant's throughput over the plain bot's, in each alternated round."""
        return [
            pair["assistant"]["msg_per_s"] / pair["plain"]["msg_per_s"]
            for pair in self.paired
            if pair["plain"]["msg_per_s"]
        ]

    def stack(self, prefix: str) -> StackResult | None:
        return next((s for s in self.stacks if s.name.startswith(prefix)), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "load_at_start": self.load_at_start,
            "load_at_end": self.load_at_end,
            "parameters": self.parameters,
            "training": self.training,
            "speedups": self.speedups,
            "skipped": self.skipped,
            "profile": self.profile,
            "paired": self.paired,
            "stacks": [
                {
                    "name": s.name,
                    "cold_start_s": s.cold_start_s,
                    "memory_mb": {k: list(v) for k, v in s.memory_mb.items()},
                    "rasa_memory_map": s.rasa_memory_map,
                    "runs": s.runs,
                }
                for s in self.stacks
            ],
        }


def machine() -> dict[str, str]:
    import rasa
    import tensorflow as tf

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except OSError:
        memory_kb = 0
    return {
        "cpu": f"{model}, {os.cpu_count()} cores",
        "memory": f"{memory_kb / 1024 / 1024:.1f} GB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "rasa": rasa.__version__,
        "tensorflow": tf.__version__,
    }


# ------------------------------------------------------------------------------ markdown


TIMES = "\N{MULTIPLICATION SIGN}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.0f} ms"


def _seconds(value: float | None) -> str:
    return "n/a (started before the bench)" if value is None else f"{value:.1f} s"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}{TIMES}" if a and b else "n/a"


def _run_row(stack: str, r: dict[str, Any]) -> str:
    offered = f"{r['offered_rate']:.0f} msg/s offered" if r["offered_rate"] else "zero think time"
    problems = []
    if r["answered"] != r["messages"]:
        problems.append(f"{r['messages'] - r['answered']} unanswered")
    if r["silent"]:
        problems.append(f"{r['silent']} answered with no message")
    if r["errors"]:
        problems.append("errors: " + ", ".join(r["errors"]))
    if r["late_sends"]:
        problems.append(f"{r['late_sends']} sent late")
    return (
        f"| {stack} | {r['transport']} | {r['shoppers']} {TIMES} {r['turns']} turns, {offered} "
        f"| {r['messages']} | {r['msg_per_s']:.1f} | {_ms(r['p50_ms'])} | {_ms(r['p95_ms'])} "
        f"| {_ms(r['p99_ms'])} | {'; '.join(problems) or 'every turn answered'} |"
    )


def targets(results: Results) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met?) for each of the issue's targets; None: not measured."""
    full, plain, scale = (results.stack(p) for p in ("assistant", "plain", "scaled"))
    rows: list[tuple[str, str, bool | None]] = []

    def rate(stack: StackResult | None, run: str) -> float | None:
        found = stack.run(run) if stack else None
        return found["msg_per_s"] if found else None

    base = rate(plain, "closed-20")
    mine = rate(scale, "closed-20")
    rows.append(
        (
            f"20 shoppers, zero think time: scaled ≥ 3{TIMES} plain",
            _ratio(mine, base),
            mine / base >= 3.0 if mine and base else None,
        )
    )
    label = f"20 shoppers, zero think time: one instance ≥ 1.5{TIMES} plain"
    ratios = results.paired_ratios()
    if ratios:  # the alternated rounds' median: each pair a minute apart, not ten
        middle = statistics.median(ratios)
        each = ", ".join(f"{r:.2f}{TIMES}" for r in ratios)
        rows.append((label, f"{middle:.2f}{TIMES} (median of {each})", middle >= 1.5))
    else:
        mine = rate(full, "closed-20")
        rows.append((label, _ratio(mine, base), mine / base >= 1.5 if mine and base else None))
    open_run = full.run("open-100") if full else None
    p95 = open_run["p95_ms"] if open_run else None
    rows.append(("100 shoppers at 20 msg/s: p95 ≤ 300 ms", _ms(p95), p95 <= 300 if p95 else None))
    one = full.run("closed-1") if full else None
    p50 = one["p50_ms"] if one else None
    rows.append(("one shopper: p50 ≤ 40 ms", _ms(p50), p50 <= 40 if p50 else None))
    t4, t40 = (one["turn_4_ms"], one["turn_40_ms"]) if one else (None, None)
    rows.append(
        (
            f"one shopper: turn 40 ≤ 1.1{TIMES} turn 4",
            f"{_ratio(t40, t4)} ({_ms(t40)} / {_ms(t4)})",
            t40 / t4 <= 1.1 if t4 and t40 else None,
        )
    )
    if full:
        total = sum(peak for _, peak in full.memory_mb.values())
        rows.append(
            ("`make run` stack RSS ≤ 1.5 GB (peak)", f"{total / 1024:.2f} GB", total <= 1536)
        )
        cold = full.cold_start_s
        rows.append(("cold start ≤ 20 s", _seconds(cold), cold <= 20 if cold else None))
    trained = results.training.get("assistant")
    if trained:
        rows.append(
            (
                "training ≤ 3 min",
                f"{trained['seconds'] / 60:.1f} min",
                trained["seconds"] <= 180,
            )
        )
    return rows


def markdown(results: Results, notes: str = "") -> str:
    """docs/performance.md: the measured part; ``notes`` (what was tried, where time goes) is
    kept from the previous report between the markers."""
    m = results.machine
    lines = [
        "# Performance",
        "",
        "Measured by `make bench` (`scripts/bench/`), one run: the full assistant and a plain",
        "`rasa init --no-prompt` bot served by the same Rasa on the same machine, driven by the",
        "same load generator in the same run, so every headline figure is a ratio measured side",
        "by side. The conversation is `scripts/bench/journeys.py`: 40 turns of a signed-out",
        "shopper walking every journey (balance by order number, FAQ, claim code diagnosis,",
        "damaged card with a digression and stop, out-of-scope, chit-chat) against the real",
        "wallet store; the plain bot gets the same 40 messages.",
        "",
        "## Conditions",
        "",
        f"- Machine: {m['cpu']}, {m['memory']} RAM; {m['os']}",
        f"- Python {m['python']}, Rasa {m['rasa']}, TensorFlow {m['tensorflow']}",
        f"- Load average (1, 5, 15 min) at the start of the run: **{results.load_at_start}**; "
        f"at the end: {results.load_at_end}. The machine is shared: figures taken under load "
        "are lower than an idle machine's, the ratios less so (both bots ran under the same "
        "conditions).",
        f"- Parameters: {', '.join(f'{k} = {v}' for k, v in results.parameters.items())}",
        "",
        *(f"- Not measured in this run: {reason}" for reason in results.skipped),
        "",
        "## Targets (issue 10)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for label, measured, met in targets(results):
        verdict = "not measured" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {label} | {measured} | {verdict} |")
    lines += [
        "",
        "## Throughput and latency",
        "",
        "| stack | over | load | messages | msg/s | p50 | p95 | p99 | |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for stack in results.stacks:
        for r in stack.runs:
            lines.append(_run_row(stack.name, r))
    full, plain = results.stack("assistant"), results.stack("plain")
    lines += ["", "Side by side (assistant ÷ plain, same load, same run):", ""]
    if full and plain:
        for r in full.runs:
            other = plain.run(r["name"], r["transport"])
            if other:
                lines.append(
                    f"- {r['name']} over {r['transport']}: throughput "
                    f"{_ratio(r['msg_per_s'], other['msg_per_s'])}, p50 "
                    f"{_ratio(r['p50_ms'], other['p50_ms'])}, p95 "
                    f"{_ratio(r['p95_ms'], other['p95_ms'])}"
                )
    if results.paired:
        lines += [
            "",
            "Alternated, both stacks running: the 20-shopper loop over REST on the plain bot, "
            "then on the assistant, each round a minute apart (the one-instance target is "
            "their median):",
            "",
            "| round | plain rasa init | assistant | ratio |",
            "|---|---|---|---|",
        ]
        for pair in results.paired:
            theirs, ours = pair["plain"]["msg_per_s"], pair["assistant"]["msg_per_s"]
            lines.append(
                f"| {pair['round']} | {theirs:.1f} msg/s | {ours:.1f} msg/s "
                f"| {_ratio(ours, theirs)} |"
            )
    lines += [
        "",
        "One shopper, the same message at turn 4 and at turn 40 (median over its conversations):",
        "",
    ]
    for stack in results.stacks:
        one = stack.run("closed-1")
        if one:
            lines.append(
                f"- {stack.name}: turn 4 {_ms(one['turn_4_ms'])}, turn 40 "
                f"{_ms(one['turn_40_ms'])} ({_ratio(one['turn_40_ms'], one['turn_4_ms'])})"
            )
    scripted = [
        (stack.name, r)
        for stack in results.stacks
        if not stack.name.startswith("plain")
        for r in stack.runs
        if r["not_as_scripted"]
    ]
    if scripted:
        lines += ["", "Turns whose answer was not the scripted journey's (turn numbers):", ""]
        lines += [
            f"- {name}, {r['name']} {r['transport']}: {r['not_as_scripted']}"
            for name, r in scripted
        ]
    lines += [
        "",
        "## Memory, cold start, training",
        "",
        "| stack | process | RSS after the runs | peak RSS |",
        "|---|---|---|---|",
    ]
    for stack in results.stacks:
        for process, (now, peak) in stack.memory_mb.items():
            lines.append(f"| {stack.name} | {process} | {now:.0f} MB | {peak:.0f} MB |")
        total_now = sum(v[0] for v in stack.memory_mb.values())
        total_peak = sum(v[1] for v in stack.memory_mb.values())
        lines.append(f"| {stack.name} | **all** | {total_now:.0f} MB | {total_peak:.0f} MB |")
    for stack in results.stacks:
        if stack.rasa_memory_map:
            where = ", ".join(f"{name} {mb:.0f} MB" for name, mb in stack.rasa_memory_map)
            lines += [
                "",
                f"Where the Rasa server's memory is ({stack.name}, largest first): {where}.",
            ]
    lines += ["", "| stack | cold start (process start to first answer) |", "|---|---|"]
    lines += [f"| {s.name} | {_seconds(s.cold_start_s)} |" for s in results.stacks]
    lines += ["", "| model | training | when | load average then |", "|---|---|---|---|"]
    for name, t in results.training.items():
        cached = " (cached: measured in an earlier run)" if t["cached"] else ""
        if not t.get("measured", True):
            cached += " (fewer epochs, for make test: not a measurement)"
        lines.append(
            f"| {name} | {t['seconds']:.0f} s{cached} | {t['trained_at']} | {t['load_average']} |"
        )
    if results.speedups:
        lines += [
            "",
            "## Speed-ups (`bot/rasa_ext/speedups.py`, and the tracker store's in "
            "`bot/tracker_store.py`), each on real inputs",
            "",
            "CPU time per call, best of three rounds (`scripts/bench/speedups.py`): Rasa 3.6.21's "
            "code and the project's on the same inputs, in one process.",
            "",
            "| speed-up | Rasa 3.6.21 | with the speed-up | per turn |",
            "|---|---|---|---|",
        ]
        for s in results.speedups:
            lines.append(
                f"| `{s['name']}`: {s['what']} | {s['before_us']:.0f} µs | {s['after_us']:.0f} µs "
                f"| {s['per_turn']} |"
            )
    if results.profile:
        lines += ["", "## Where a turn's time goes now", "", results.profile]
    lines += ["", NOTES_START, notes.strip() or "", NOTES_END, ""]
    return "\n".join(lines)


NOTES_START = "<!-- notes: kept by make bench -->"
NOTES_END = "<!-- end of notes -->"


def kept_notes(previous: str) -> str:
    if NOTES_START in previous and NOTES_END in previous:
        return previous.split(NOTES_START, 1)[1].split(NOTES_END, 1)[0]
    return ""
