"""``make bench`` (``python -m scripts.bench``): train (cached), start each stack in turn, drive it,
measure it, stop it; write docs/performance.md and its data as JSON.

The stacks are driven one at a time, so that they do not share the machine's two cores. The
plain bot stays up, idle, while the assistant is measured, and then the two are driven in
turn (``alternate``); the scaled topology runs alone after them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.bench import journeys, load, profile, report, speedups, stacks

ROOT = stacks.ROOT


@dataclass(frozen=True)
class Parameters:
    turns: int = 40
    """Turns of each conversation (the first ``turns`` of the script)."""
    one_shopper_conversations: int = 3
    closed_shoppers: int = 20
    open_shoppers: int = 100
    open_rate: float = 20.0
    open_turns: int = 10
    socketio: bool = True
    scaled: bool = True
    rasa_instances: int = 2
    action_instances: int = 2
    train: bool = True
    plain_epochs: int | None = None
    """Train the plain bot's components for this many epochs instead of Rasa's defaults (the
    tiny run: the same bot in seconds; its training time is then not a measurement)."""
    profile: bool = True
    """Sample the assistant's Rasa server with py-spy during its 20-shopper REST run."""
    paired_rounds: int = 3
    """Then, with both stacks running, their 20-shopper REST runs again, alternated this many
    times: the ratio of each pair, taken a minute apart rather than ten (``alternate``)."""

    @classmethod
    def tiny(cls) -> Parameters:
        """``make test``'s run: every part once, on a handful of messages."""
        return cls(
            turns=8,  # up to the wallet store's answer to the first balance check
            one_shopper_conversations=1,
            closed_shoppers=2,
            open_shoppers=2,
            open_rate=4.0,
            open_turns=2,
            scaled=False,
            train=False,
            plain_epochs=1,
            profile=False,
            paired_rounds=1,
        )


def drive(
    stack: stacks.Stack,
    params: Parameters,
    script: Sequence[journeys.Turn],
    profile_to: Path | None = None,
) -> list[Run]:
    """Every loop against one running stack, after one conversation to warm it up;
    ``profile_to``: sample its Rasa server during the closed loop of many shoppers over REST."""
    transports: list[Callable[[str], load.Transport]] = [load.Rest]
    if params.socketio and stack.socketio:
        transports.append(load.SocketIO)
    scaled = stack.name.startswith("scaled")

    async def all_runs() -> list[Run]:
        runs = []
        async with load.Rest(stack.rasa_url) as warm:
            await load.closed_loop(warm, script, 1)
        for make in transports:
            async with make(stack.rasa_url) as transport:
                if not scaled:
                    runs.append(
                        await load.closed_loop(
                            transport, script, 1, params.one_shopper_conversations, "closed-1"
                        )
                    )
                name = f"closed-{params.closed_shoppers}"
                sampling = None
                if profile_to is not None and transport.name == "REST":
                    sampling = profile.record(stack.processes["Rasa"], 3600, profile_to)
                runs.append(
                    await load.closed_loop(transport, script, params.closed_shoppers, 1, name)
                )
                if sampling is not None:
                    sampling.send_signal(signal.SIGINT)  # py-spy writes what it has, and ends
                    sampling.wait()
                if not scaled:
                    runs.append(
                        await load.open_loop(
                            transport,
                            script[: params.open_turns],
                            params.open_shoppers,
                            params.open_rate,
                            f"open-{params.open_shoppers}",
                        )
                    )
        return runs

    return asyncio.run(all_runs())


Run = load.Run


def measure(
    stack: stacks.Stack,
    params: Parameters,
    results: report.Results,
    profile_to: Path | None = None,
) -> None:
    """Drive one running stack."""
    if stack.cold_start is not None:
        print(f"bench: {stack.name} answered {stack.cold_start:.1f} s after start", flush=True)
    script = journeys.SHOPPER[: params.turns]
    result = report.StackResult(stack.name, stack.cold_start)
    for run in drive(stack, params, script, profile_to):
        figures = report.run_figures(run)
        result.runs.append(figures)
        _print_run(stack.name, run.name, figures)
    result.memory_mb = {process: stacks.memory(pid) for process, pid in stack.processes.items()}
    if "Rasa" in stack.processes:
        result.rasa_memory_map = stacks.memory_map(stack.processes["Rasa"])
    results.stacks.append(result)


def _print_run(stack: str, run: str, figures: dict[str, Any]) -> None:
    print(
        f"bench: {stack} {run} {figures['transport']}: {figures['msg_per_s']:.1f} msg/s, "
        f"p50 {figures['p50_ms']:.0f} ms, p95 {figures['p95_ms']:.0f} ms, "
        f"{figures['answered']}/{figures['messages']} answered",
        flush=True,
    )


def alternate(
    plain: stacks.Stack, assistant: stacks.Stack, params: Parameters, results: report.Results
) -> None:
    """The 20-shopper REST loop on the plain bot and on the assistant in turn, both running,
    ``paired_rounds`` times. This machine's speed drifts by ±20% over minutes: the stacks'
    own runs, ten minutes apart, can differ by that much for no reason of theirs, while each
    pair here is measured within a minute."""
    script = journeys.SHOPPER[: params.turns]

    async def rounds() -> None:
        for number in range(1, params.paired_rounds + 1):
            pair: dict[str, Any] = {"round": number}
            for role, stack in (("plain", plain), ("assistant", assistant)):
                async with load.Rest(stack.rasa_url) as transport:
                    run = await load.closed_loop(
                        transport, script, params.closed_shoppers, 1, f"paired-{number}"
                    )
                figures = report.run_figures(run)
                _print_run(stack.name, run.name, figures)
                pair[role] = figures
            results.paired.append(pair)

    asyncio.run(rounds())


def bench(
    params: Parameters,
    work: Path,
    assistant: AbstractContextManager[stacks.Stack] | None = None,
    progress: Callable[[report.Results], None] = lambda _: None,
) -> report.Results:
    """Every measurement; ``assistant``: servers already running instead of starting them;
    ``progress`` is given the results after each stack (a long run keeps what it measured)."""
    results = report.Results(report.machine(), stacks.load_average(), params.__dict__.copy())
    model, plain_training = stacks.plain_model(params.plain_epochs)
    results.training["plain rasa init (`rasa init --no-prompt`, which trains)"] = (
        plain_training.__dict__
    )
    samples = work / "assistant-profile.txt" if params.profile else None
    with contextlib.ExitStack() as running:
        # The plain bot stays up, idle, while the assistant is measured: for the paired rounds.
        print("bench: starting the plain rasa init bot", flush=True)
        plain = running.enter_context(stacks.plain(work / "plain", model))
        measure(plain, params, results)
        progress(results)
        print("bench: starting the assistant", flush=True)
        mine = running.enter_context(assistant or stacks.assistant(work / "assistant"))
        measure(mine, params, results, samples)
        if mine.tracker_db is not None:
            results.speedups = speedups.measure(mine.tracker_db)
        if params.paired_rounds:
            alternate(plain, mine, params, results)
    if samples is not None and samples.exists():
        results.profile = profile.markdown(
            samples.read_text(),
            f"the assistant's Rasa server during the {params.closed_shoppers}-shopper closed loop "
            "over REST (after the speed-ups)",
        )
    progress(results)
    if params.scaled:
        try:
            print("bench: starting the scaled topology", flush=True)
            with stacks.scaled(
                work / "scaled", params.rasa_instances, params.action_instances
            ) as scaled:
                measure(scaled, params, results)
        except Exception as exc:  # a missing service: the report says so, the rest stands
            print(f"bench: the scaled topology was not measured: {exc}", flush=True)
            results.skipped.append(f"scaled topology: {str(exc).splitlines()[0]}")
        progress(results)
    if params.train:  # last: the load figures come first when time is short
        print("bench: timing the assistant's training (rasa train)", flush=True)
        results.training["assistant"] = stacks.assistant_training().__dict__
    results.load_at_end = stacks.load_average()
    progress(results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench", description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a few messages: proves it works")
    parser.add_argument("--no-scaled", action="store_true", help="skip the scaled topology")
    parser.add_argument("--no-socketio", action="store_true", help="REST only")
    parser.add_argument(
        "--no-train",
        action="store_true",
        help="skip timing the training",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--json", type=Path, default=stacks.BENCH_DIR / "results.json")
    args = parser.parse_args(argv)
    params = Parameters.tiny() if args.tiny else Parameters()
    params = Parameters(
        **{
            **params.__dict__,
            "scaled": params.scaled and not args.no_scaled,
            "socketio": params.socketio and not args.no_socketio,
            "train": params.train and not args.no_train,
        }
    )
    stacks.BENCH_DIR.mkdir(parents=True, exist_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    previous = args.out.read_text() if args.out.exists() else ""

    def write(results: report.Results) -> None:
        args.json.write_text(json.dumps(results.as_dict(), indent=2))
        args.out.write_text(report.markdown(results, report.kept_notes(previous)))
        print(f"bench: wrote {args.out} and {args.json}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-", dir=stacks.BENCH_DIR) as work:
        bench(params, Path(work), progress=write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
