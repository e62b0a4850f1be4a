"""Parse the held-out sets with a trained model: rejection, core-intent recall, latency, RSS.

A message is *rejected* when the model's top intent is ``out_of_scope`` or ``nlu_fallback``
(the FallbackClassifier's "not sure"): either way the shopper hears that this is not
something the assistant does, or is asked to rephrase, instead of getting a gift-card answer.

- Out-of-scope rejection: held-out CLINC150 out-of-scope queries and hand-written ones.
- Other-domain rejection: held-out CLINC150 queries of other assistants' domains and
  hand-written ones.
- Intent accuracy: the gift-card held-out sets (tests/nlu/heldout.yml, tests/nlu/messy.yml);
  FAQ questions count only with the right answer (``faq/expiry``, not just ``faq``), and an
  ``out_of_scope`` example counts when it is rejected.
- Core-intent recall: the same, over the examples of the gift-card tasks only (the intents
  in ``CORE``): a rejected or misread gift-card request is a miss.
- Entities: per label, on the in-scope held-out sets, exact spans.
- Latency: wall-clock time of each parse, and its CPU time (``time.process_time``), which a
  shared machine's load inflates far less than the wall clock.

Used by scripts/evaluate.py; ``python scripts/measure_nlu.py MODEL OUT.json`` writes the figures, for
quick experiments on a model trained elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests" / "nlu"
REJECTED = {"out_of_scope", "nlu_fallback"}
CORE = {
    "check_balance",
    "claim_code_not_working",
    "damaged_card",
    "redeem_card",
    "account_balance",
    "reload_balance",
    "faq",
    "report_scam",
    "human_handoff",
}
# Held-out sets, by what they measure. Never trained on (tests/nlu/test_heldout.py checks).
IN_SCOPE = ["heldout.yml", "messy.yml"]
OUT_OF_SCOPE = {
    "CLINC150 out-of-scope": "clinc_out_of_scope.yml",
    "hand-written": "out_of_scope.yml",
}
OTHER_DOMAINS = {
    "CLINC150 other domains": "clinc_other_domains.yml",
    "hand-written": "other_domains.yml",
}


@dataclass
class Example:
    text: str
    gold: str  # full intent: "faq/expiry", "check_balance", "out_of_scope"
    source: str
    entities: frozenset[tuple[int, int, str]] = frozenset()  # (start, end, label) annotated


@dataclass
class Parsed:
    example: Example
    predicted: str  # full intent, or "nlu_fallback"
    seconds: float
    cpu_seconds: float = 0.0  # the parse's CPU time: what it costs whatever the machine's load
    entities: frozenset[tuple[int, int, str]] = frozenset()  # (start, end, label) found
    classifier: str = ""  # the classifier's own top intent, before any fallback
    confidence: float = 0.0  # and its confidence

    def row(self) -> list[Any]:
        """What a report or a threshold study needs, as plain JSON."""
        e = self.example
        return [e.text, e.gold, e.source, self.predicted, self.classifier, self.confidence]

    @property
    def rejected(self) -> bool:
        return self.predicted in REJECTED

    @property
    def correct(self) -> bool:
        if self.example.gold == "out_of_scope":
            return self.rejected
        return self.predicted == self.example.gold


@dataclass
class Figures:
    parsed: list[Parsed] = field(default_factory=list)
    rss_mb: float = 0.0

    def entity_report(self) -> dict[str, dict[str, float]]:
        """Precision, recall and F1 per entity label on the in-scope held-out sets: the same
        label on exactly the same characters."""
        parsed = self.of(*IN_SCOPE)
        labels = sorted({e[2] for p in parsed for e in p.example.entities})
        report = {}
        for label in labels:
            gold = [{e for e in p.example.entities if e[2] == label} for p in parsed]
            found = [{e for e in p.entities if e[2] == label} for p in parsed]
            hits = sum(len(g & f) for g, f in zip(gold, found, strict=True))
            wanted, got = sum(map(len, gold)), sum(map(len, found))
            precision = hits / got if got else 0.0
            recall = hits / wanted if wanted else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            report[label] = {"precision": precision, "recall": recall, "f1-score": f1}
            report[label]["support"] = wanted
        return report

    def of(self, *sources: str) -> list[Parsed]:
        return [p for p in self.parsed if p.example.source in sources]

    @staticmethod
    def rate(items: list[Parsed], hit: str) -> float:
        return sum(getattr(p, hit) for p in items) / len(items) if items else float("nan")

    def summary(self) -> dict[str, Any]:
        in_scope = self.of(*IN_SCOPE)
        core = [p for p in in_scope if p.example.gold.split("/")[0] in CORE]
        oos = self.of(*OUT_OF_SCOPE.values())
        other = self.of(*OTHER_DOMAINS.values())
        latencies = sorted(p.seconds for p in self.parsed)
        cpu = sorted(p.cpu_seconds for p in self.parsed)
        return {
            "intent_accuracy": self.rate(in_scope, "correct"),
            "core_intent_recall": self.rate(core, "correct"),
            "core_kept": 1 - self.rate(core, "rejected"),
            "out_of_scope_rejection": self.rate(oos, "rejected"),
            "other_domain_rejection": self.rate(other, "rejected"),
            "by_set": {
                name: (self.rate(self.of(file), "rejected"), len(self.of(file)))
                for name, file in [
                    *[(f"out-of-scope: {k}", v) for k, v in OUT_OF_SCOPE.items()],
                    *[(f"other domains: {k}", v) for k, v in OTHER_DOMAINS.items()],
                ]
            },
            "counts": {"in_scope": len(in_scope), "core": len(core), "oos": len(oos)}
            | {"other_domains": len(other)},
            "false_accepts": dict(
                Counter(p.predicted for p in oos + other if not p.rejected).most_common()
            ),
            "core_misses": [
                (p.example.text, p.example.gold, p.predicted) for p in core if not p.correct
            ],
            "in_scope_misses": [
                (p.example.text, p.example.gold, p.predicted)
                for p in in_scope
                if not p.correct and p not in core
            ],
            "latency_ms_p50": 1000 * latencies[len(latencies) // 2],
            "latency_ms_p95": 1000 * latencies[int(len(latencies) * 0.95)],
            "cpu_ms_p50": 1000 * cpu[len(cpu) // 2],
            "cpu_ms_p95": 1000 * cpu[int(len(cpu) * 0.95)],
            "entities": self.entity_report(),
            "rss_mb": self.rss_mb,
        }


def examples(file: str) -> list[Example]:
    from rasa.shared.nlu.training_data.loading import load_data

    path = TESTS / file
    return [
        Example(
            m.get("text"),
            m.get_full_intent(),
            file,
            frozenset((e["start"], e["end"], e["entity"]) for e in m.get("entities") or []),
        )
        for m in load_data(str(path)).intent_examples
    ]


def full_intent(result: dict[str, Any]) -> str:
    """The intent as the training data names it: the FAQ's answer key for a retrieval intent."""
    name = str(result["intent"]["name"])
    selected = result.get("response_selector", {}).get(name)
    if selected:
        return str(selected["response"]["intent_response_key"])
    return name


def quiet() -> None:
    """Rasa logs every parsed text at debug level; an evaluation prints figures only."""
    import logging

    from rasa.utils.log_utils import configure_structlog

    logging.getLogger().setLevel(logging.WARNING)
    configure_structlog(logging.WARNING)


def measure(model: Path) -> Figures:
    from rasa.core.agent import Agent

    quiet()

    files = [*IN_SCOPE, *OUT_OF_SCOPE.values(), *OTHER_DOMAINS.values()]
    todo = [e for file in files for e in examples(file)]
    agent = Agent.load(str(model))
    figures = Figures()

    async def run() -> None:
        await agent.parse_message("warm up")
        for example in todo:
            start, cpu = time.perf_counter(), time.process_time()
            result = await agent.parse_message(example.text)
            took, cpu_took = time.perf_counter() - start, time.process_time() - cpu
            ranking = [r for r in result["intent_ranking"] if r["name"] != "nlu_fallback"]
            figures.parsed.append(
                Parsed(
                    example,
                    full_intent(result),
                    took,
                    cpu_took,
                    frozenset(
                        (e["start"], e["end"], e["entity"]) for e in result.get("entities") or []
                    ),
                    ranking[0]["name"] if ranking else "",
                    float(ranking[0]["confidence"]) if ranking else 0.0,
                )
            )

    asyncio.run(run())
    figures.rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


if __name__ == "__main__":
    figures = measure(Path(sys.argv[1]))
    summary = figures.summary()
    summary["rows"] = [p.row() for p in figures.parsed]
    Path(sys.argv[2]).write_text(json.dumps(summary, indent=1, ensure_ascii=False))
