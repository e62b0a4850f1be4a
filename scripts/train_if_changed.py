"""Train the Rasa model only when its inputs changed (a content fingerprint, not mtimes).

Inputs: config.yml, domain.yml, data/**/*.yml, the project's NLU components (bot/nlu/) and
the spaCy pipeline's own fingerprint. The spaCy pipeline is (re)built first when its code
changed. Rasa's progress output goes to var/log/train.log.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "giftbot.tar.gz"
STAMP = ROOT / "models" / "giftbot.fingerprint"
SPACY_DIR = ROOT / "models" / "spacy" / "giftbot_en"


def fingerprint() -> str:
    from bot.nlu.card_entities import fingerprint as spacy_fingerprint

    digest = hashlib.sha256(spacy_fingerprint().encode())
    # The project's own NLU components are trained into the model too (bot/nlu/: the sentence
    # encoder, its vocabulary, the classifier); card_entities has its own fingerprint above.
    components = [
        path
        for path in sorted((ROOT / "bot" / "nlu").iterdir())
        if path.suffix in (".py", ".txt") and path.name != "card_entities.py"
    ]
    inputs = [
        ROOT / "config.yml",
        ROOT / "domain.yml",
        *sorted((ROOT / "data").rglob("*.yml")),
        *components,
    ]
    for path in inputs:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main() -> int:
    from bot.nlu.card_entities import ensure_pipeline

    if ensure_pipeline(SPACY_DIR):
        print(f"train: built the spaCy pipeline in {SPACY_DIR.relative_to(ROOT)}")
    wanted = fingerprint()
    if MODEL.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        print("train: model up to date")
        return 0
    log = ROOT / "var" / "log" / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"train: training the model (1-3 minutes; progress in {log.relative_to(ROOT)})")
    rasa = Path(sys.executable).parent / "rasa"
    with log.open("w") as out:
        done = subprocess.run(  # noqa: S603 - our own venv's rasa, fixed arguments
            [str(rasa), "train", "--fixed-model-name", "giftbot", "--out", "models"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            check=False,
        )
    if done.returncode != 0:
        print(f"train: rasa train failed; see {log}", file=sys.stderr)
        print(log.read_text()[-3000:], file=sys.stderr)
        return done.returncode
    STAMP.write_text(wanted)
    print(f"train: model saved to {MODEL.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
