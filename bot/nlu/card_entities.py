"""The spaCy side of entity extraction: card formats by rule, never guessed by a model.

No pretrained spaCy model can be downloaded here, so ``build_pipeline`` makes an English
pipeline from code: spaCy's rule-based tokenizer, an ``EntityRuler`` for email addresses, and
``giftbot_card_entities``, which marks serial numbers, claim codes and order numbers with the
patterns of :mod:`bot.wallet.codes`. (A token-pattern EntityRuler cannot do that job: it
cannot count the digits of a serial typed in space-separated groups.) Rasa's ``SpacyNLP`` loads
the saved pipeline by path and ``SpacyEntityExtractor`` reports the entities.
"""

# No "from __future__ import annotations": spaCy reads the factory signature at run time.

import hashlib
import inspect
import json
import sys
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from bot.wallet import codes

COMPONENT = "giftbot_card_entities"
PIPELINE_NAME = "giftbot_en"
EMAIL_PATTERNS = [{"label": "email", "pattern": [{"LIKE_EMAIL": True}]}]


class CardEntities:
    """Adds the card-format entities to ``doc.ents``, keeping others that do not overlap."""

    def __call__(self, doc: Doc) -> Doc:
        spans: list[Span] = []
        for found in codes.find_codes(doc.text):
            span = doc.char_span(found.start, found.end, label=found.label, alignment_mode="expand")
            if span is not None:
                spans.append(span)
        # Card formats win over anything else that overlaps them.
        others = [
            e for e in doc.ents if not any(e.start < s.end and s.start < e.end for s in spans)
        ]
        doc.ents = filter_spans(spans + others)  # type: ignore[assignment]
        return doc


@Language.factory(COMPONENT)
def make_card_entities(nlp: Language, name: str) -> CardEntities:
    return CardEntities()


def build_pipeline() -> Language:
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(EMAIL_PATTERNS)  # type: ignore[attr-defined]
    nlp.add_pipe(COMPONENT, after="entity_ruler")
    nlp.meta["name"] = PIPELINE_NAME
    nlp.meta["description"] = "giftbot: rule-based tokenizer and card/email entities"
    return nlp


def fingerprint() -> str:
    """Changes whenever the code that defines the pipeline changes."""
    source = inspect.getsource(sys.modules[__name__]) + inspect.getsource(codes)
    return hashlib.sha256((source + json.dumps(EMAIL_PATTERNS)).encode()).hexdigest()


def ensure_pipeline(target: Path) -> bool:
    """Build and save the pipeline unless an up-to-date one is there; True when it was built."""
    stamp = target / "giftbot-fingerprint.txt"
    if stamp.exists() and stamp.read_text() == fingerprint():
        return False
    target.mkdir(parents=True, exist_ok=True)
    build_pipeline().to_disk(target)
    stamp.write_text(fingerprint())
    return True


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "models/spacy/giftbot_en")
    print(f"spaCy pipeline {'built' if ensure_pipeline(out) else 'up to date'}: {out}")
