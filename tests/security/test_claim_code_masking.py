"""Finding 1 (claim codes in clear): whatever ``parse_claim_code`` accepts, masking finds,
embedded in any text; a message answering "what is the claim code?" is secret as a whole; no
entity overlapping a code survives; free-text slots are sealed at rest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from rasa.core.brokers.broker import EventBroker
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.settings import get_settings
from bot.tracker_store import RedactingSQLTrackerStore, Redactor, redact
from bot.wallet import codes
from tests.servers import ROOT

# The spellings the probe got through: lower case, two spaces, spaced dashes.
PROBED = ["fvxm 5454ug e7m4", "FVXM  5454UG  E7M4", "FVXM - 5454UG - E7M4"]
SEPARATORS = [" ", "  ", "-", " - ", "--", "\t", "\n", " -\n", "\u00a0", "\u2003"]
BOUNDARIES = [" ", "\n", ".", ",", ":", ";", "!", "?", "(", ")", '"', "'", "/", "*", " - "]


def _alnum(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text).upper()


@st.composite
def claim_codes(draw: st.DrawFn) -> str:
    """Any canonical code the parser accepts: 14-15 ASCII letters and digits, both kinds."""
    length = draw(st.sampled_from(codes.CLAIM_CODE_LENGTHS))
    chars = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    code = "".join(draw(st.lists(chars, min_size=length, max_size=length)))
    assume(not code.isdigit() and not code.isalpha())
    return code


@st.composite
def spellings(draw: st.DrawFn, code: str) -> str:
    """``code`` as a shopper might type it: any grouping the parser accepts (groups of at
    least ``MIN_GROUP_LENGTH``), any separators, any letter case."""
    least = codes.MIN_GROUP_LENGTH
    groups, rest = [], code
    while len(rest) >= 2 * least and draw(st.booleans()):
        size = draw(st.integers(least, len(rest) - least))
        groups.append(rest[:size])
        rest = rest[size:]
    groups.append(rest)
    text = groups[0]
    for group in groups[1:]:
        text += draw(st.sampled_from(SEPARATORS)) + group
    return "".join(c.lower() if draw(st.booleans()) else c for c in text)


@given(data=st.data(), prefix=st.text(max_size=40), suffix=st.text(max_size=40))
def test_every_accepted_spelling_is_masked_in_any_text(
    data: st.DataObject, prefix: str, suffix: str
) -> None:
    code = data.draw(claim_codes())
    spelling = data.draw(spellings(code))
    assert codes.parse_claim_code(spelling) == code  # the parser accepts it...
    before, after = data.draw(st.sampled_from(BOUNDARIES)), data.draw(st.sampled_from(BOUNDARIES))
    assume(code not in _alnum(prefix + suffix))
    text = prefix + before + spelling + after + suffix
    masked = codes.mask_claim_codes(text)
    assert code not in _alnum(masked)  # ...so masking finds it
    assert codes.MASKED_CLAIM_CODE in masked


@given(st.text(max_size=120))
def test_after_masking_nothing_parses_as_a_claim_code(text: str) -> None:
    masked = codes.mask_claim_codes(text)
    assert codes.claim_code_spans(masked) == []
    assert codes.mask_claim_codes(masked) == masked


def test_the_probed_spellings_are_masked() -> None:
    for spelling in PROBED:
        text = f"my claim code {spelling} doesn't work"
        masked = codes.mask_claim_codes(text)
        assert "5454" not in masked and "E7M4" not in masked.upper(), masked
        assert masked.startswith("my claim") and masked.endswith("t work")


def test_serials_and_order_numbers_are_not_claim_codes() -> None:
    text = "card 1712 3456 7890 1234 567, order D01-4826153-7730941"
    assert codes.mask_claim_codes(text) == text
    assert codes.mask_claim_codes(text, serials=True) == "card ••••4567, order D01-4826153-7730941"


# ----------------------------------------------------------------------- the tracker store


def _answer(text: str, entities: list[dict] | None = None) -> UserUttered:
    return UserUttered(
        text,
        intent={"name": "inform", "confidence": 0.4},
        entities=entities or [],
        parse_data={"text": text, "entities": entities or []},
    )


def _asked_for(slot: str) -> list:
    return [
        SlotSet("requested_slot", slot),
        BotUttered("What is the claim code?" if slot == "claim_code" else "And?"),
        ActionExecuted("action_listen"),
    ]


def test_the_answer_to_the_claim_code_question_is_secret_even_if_it_does_not_parse() -> None:
    typo = "fvxm 5454ug e7m"  # 13 characters: not a claim code, still the shopper's secret
    redactor = Redactor()
    stored = [redactor.redact(e) for e in [*_asked_for("claim_code"), _answer(typo)]]
    assert stored[-1].text == codes.MASKED_CLAIM_CODE
    assert "5454" not in repr(stored[-1].as_dict())
    # Only the answer: the next message is kept (masked as usual).
    after = redactor.redact(_answer("thanks, that's all"))
    assert after.text == "thanks, that's all"


def test_other_answers_are_kept() -> None:
    redactor = Redactor()
    stored = [redactor.redact(e) for e in [*_asked_for("serial_number"), _answer("it's torn")]]
    assert stored[-1].text == "it's torn"


def test_the_redactor_follows_events_it_did_not_store() -> None:
    """The tracker store redacts only new events, after observing the stored ones."""
    redactor = Redactor()
    redactor.observe(_asked_for("claim_code"))
    assert redactor.redact(_answer("abc 123")).text == codes.MASKED_CLAIM_CODE


def test_no_entity_overlapping_a_claim_code_survives() -> None:
    text = "code is FVXM 5454UG E7M4 from Ann"
    person = {"entity": "person", "value": "E7M4", "start": 20, "end": 24}
    ann = {"entity": "person", "value": "Ann", "start": 30, "end": 33}
    stored = redact(_answer(text, [person, ann]))
    assert stored.entities == [ann]
    assert stored.parse_data["entities"] == [ann]
    assert "E7M4" not in repr(stored.as_dict())


def test_free_text_slots_are_sealed_at_rest_and_open_again() -> None:
    key = get_settings().sealing_key
    for slot in ("purchaser_name", "recipient_name", "delivery_contact", "claim_code"):
        stored = redact(SlotSet(slot, "fvxm 5454ug e7m4"))
        assert stored.value.startswith(codes.SEALED_PREFIX) and "5454" not in stored.value
        assert codes.unseal_claim_code(stored.value, key) == "fvxm 5454ug e7m4"


class _RecordingBroker(EventBroker):
    """Stands in for RabbitMQ (tested for real in tests/rasa_ext/): keeps what is published."""

    def __init__(self) -> None:
        self.published: list[dict] = []

    def publish(self, event: dict) -> None:
        self.published.append(event)


@pytest.mark.anyio
async def test_the_tracker_store_hides_a_secret_answer_at_rest_and_on_the_broker(
    tmp_path: Path,
) -> None:
    broker = _RecordingBroker()
    store = RedactingSQLTrackerStore(
        Domain.load(str(ROOT / "domain.yml")),
        dialect="sqlite",
        db=str(tmp_path / "tracker.db"),
        event_broker=broker,
    )
    tracker = DialogueStateTracker.from_events(
        "secret-answer", [*_asked_for("claim_code")], slots=store.domain.slots
    )
    await store.save(tracker)
    tracker.update(_answer("fvxm 5454ug e7m"))  # one character short: it does not parse
    await store.save(tracker)

    published = [e for e in broker.published if e.get("event") == "user"]
    assert [e["text"] for e in published] == [codes.MASKED_CLAIM_CODE]
    stored = await store.retrieve("secret-answer")
    assert [e.text for e in stored.events if isinstance(e, UserUttered)] == [
        codes.MASKED_CLAIM_CODE
    ]
    assert b"5454" not in (tmp_path / "tracker.db").read_bytes()
