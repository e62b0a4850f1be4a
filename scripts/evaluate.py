"""Measure the NLU: held-out test set and 5-fold cross-validation -> docs/evaluation.md.

- Held-out: the trained model (models/giftbot.tar.gz) on tests/nlu/heldout.yml, which training
  never sees.
- Cross-validation: 5 folds over the training data (data/), each fold trained from scratch.

Intent F1 comes from Rasa's intent report; person and amount from DIET's entity report. Rasa
does not evaluate "pretrained" extractors such as SpacyEntityExtractor, so the rule-based card
entities are scored here: the saved spaCy pipeline against the held-out annotations, a match
being the same label on exactly the same characters. (Training data does not annotate them,
so cross-validation has no figure for them.) Rasa's own reports stay in results/.

``--report-only`` rewrites docs/evaluation.md from the results already in results/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
RULE_ENTITIES = ["serial_number", "claim_code", "order_number", "email"]
DIET_ENTITIES = ["person", "amount"]
FOLDS = 5


def rasa(*args: str, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).parent / "rasa"), *args]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with log.open("w") as out:
        done = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)  # noqa: S603
    if done.returncode != 0:
        sys.exit(f"evaluate: {' '.join(args[:2])} failed; see {log}")


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def f1(report: dict[str, Any], label: str) -> str:
    row = report.get(label)
    return f"{row['f1-score']:.3f}" if isinstance(row, dict) and "f1-score" in row else "n/a"


def support(report: dict[str, Any], label: str) -> str:
    row = report.get(label)
    return str(row["support"]) if isinstance(row, dict) and "support" in row else "0"


def rule_entity_report(nlu_file: Path) -> dict[str, dict[str, float]]:
    """Precision, recall and F1 of the rule-based extractor per label, on annotated data."""
    import spacy
    from rasa.shared.nlu.training_data.loading import load_data

    nlp = spacy.load(ROOT / "models" / "spacy" / "giftbot_en")
    counts = {label: {"tp": 0, "fp": 0, "fn": 0} for label in RULE_ENTITIES}
    for message in load_data(str(nlu_file)).nlu_examples:
        text = message.get("text")
        gold = {
            (e["start"], e["end"], e["entity"])
            for e in message.get("entities") or []
            if e["entity"] in RULE_ENTITIES
        }
        found = {(e.start_char, e.end_char, e.label_) for e in nlp(text).ents}
        for label in RULE_ENTITIES:
            g = {x for x in gold if x[2] == label}
            f = {x for x in found if x[2] == label}
            counts[label]["tp"] += len(g & f)
            counts[label]["fp"] += len(f - g)
            counts[label]["fn"] += len(g - f)
    report = {}
    for label, c in counts.items():
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
        f1_score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[label] = {
            "precision": precision,
            "recall": recall,
            "f1-score": f1_score,
            "support": c["tp"] + c["fn"],
        }
    return report


def section(title: str, folder: Path, rules: dict[str, Any] | None = None) -> list[str]:
    intents = load(folder / "intent_report.json")
    diet = load(folder / "DIETClassifier_report.json")
    responses = load(folder / "response_selection_report.json")
    lines = [f"## {title}", ""]
    lines += [
        "| measure | F1 |",
        "|---|---|",
        f"| intents, macro average | {f1(intents, 'macro avg')} |",
        f"| intents, weighted average | {f1(intents, 'weighted avg')} |",
        f"| FAQ answers (ResponseSelector), weighted | {f1(responses, 'weighted avg')} |",
        "",
        "| intent | F1 | examples |",
        "|---|---|---|",
    ]
    names = sorted(k for k, v in intents.items() if isinstance(v, dict) and "avg" not in k)
    lines += [f"| `{name}` | {f1(intents, name)} | {support(intents, name)} |" for name in names]
    lines += ["", "| entity | extractor | F1 | examples |", "|---|---|---|---|"]
    for name in RULE_ENTITIES if rules is not None else []:
        lines.append(
            f"| `{name}` | rules (spaCy) | {f1(rules or {}, name)} | {support(rules or {}, name)} |"
        )
    for name in DIET_ENTITIES:
        lines.append(f"| `{name}` | DIET | {f1(diet, name)} | {support(diet, name)} |")
    return [*lines, "", *confusions(folder), ""]


def confusions(folder: Path, most: int = 8) -> list[str]:
    """The most frequent intent mix-ups, with an example of each, from Rasa's error file."""
    errors = (
        json.loads((folder / "intent_errors.json").read_text())
        if (folder / "intent_errors.json").exists()
        else []
    )
    pairs: dict[tuple[str, str], list[str]] = {}
    for error in errors:
        key = (error["intent"], error["intent_prediction"]["name"])
        pairs.setdefault(key, []).append(error["text"])
    ranked = sorted(pairs.items(), key=lambda item: -len(item[1]))[:most]
    lines = [
        "Most frequent intent confusions:",
        "",
        "| intent | taken for | times | e.g. |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{gold}` | `{predicted}` | {len(texts)} | {texts[0]!r} |"
        for (gold, predicted), texts in ranked
    ]
    return lines


def main() -> None:
    heldout, folds = RESULTS / "heldout", RESULTS / "cross_validation"
    if "--report-only" not in sys.argv:
        print("evaluate: held-out test set")
        rasa("test", "nlu", "--model", "models/giftbot.tar.gz", "--nlu", "tests/nlu/heldout.yml",
             "--out", str(heldout), log=RESULTS / "heldout.log")  # fmt: skip
        print(f"evaluate: {FOLDS}-fold cross-validation (several minutes)")
        rasa("test", "nlu", "--nlu", "data", "--config", "config.yml", "--cross-validation",
             "--folds", str(FOLDS), "--out", str(folds), log=RESULTS / "cross_validation.log")  # fmt: skip
    rules = rule_entity_report(ROOT / "tests" / "nlu" / "heldout.yml")
    body = [
        "# NLU evaluation",
        "",
        f"Measured on {date.today():%Y-%m-%d} by `make evaluate` (scripts/evaluate.py), on the",
        "2-core development machine. The held-out set (tests/nlu/heldout.yml) is written",
        "separately from the training data and never trained on. Cross-validation trains each",
        "fold on 80% of the training examples and tests on the rest, so it also shows how the",
        "model does with less data; the confusion tables show where it errs. In conversation,",
        "forms take an unsure message as an attempt at an answer (and hint when it is",
        "malformed), and low-confidence messages elsewhere get the two-stage fallback.",
        "",
        *section("Held-out test set", heldout, rules),
        *section(f"{FOLDS}-fold cross-validation on the training data", folds),
    ]
    target = ROOT / "docs" / "evaluation.md"
    target.parent.mkdir(exist_ok=True)
    target.write_text("\n".join(body))
    print(f"evaluate: wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
