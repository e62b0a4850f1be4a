"""Each speed-up of bot/rasa_ext/speedups.py gives what Rasa 3.6.21's own code gives, on real
inputs: the original (kept in ``speedups.ORIGINALS``) and the replacement side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Event,
    FollowupAction,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.common import all_subclasses
from rasa.utils.endpoints import EndpointConfig
from rasa_sdk.events import ActiveLoop as SdkActiveLoop
from rasa_sdk.events import FollowupAction as SdkFollowupAction
from rasa_sdk.events import SlotSet as SdkSlotSet

import bot.tracker_store  # noqa: F401 - what Rasa imports: installs the speed-ups
from bot.rasa_ext import speedups


def test_rasa_loads_them_through_the_tracker_store() -> None:
    assert set(speedups.ORIGINALS) == {s.__name__ for s in speedups.SPEEDUPS}
    assert (
        RemoteAction._validate_action_result
        is not speedups.ORIGINALS["cache_action_response_validator"]
    )


# ------------------------------------------------------------- action response validation

# What our action server answers (rasa_sdk's own event builders), and what it must not.
VALID: list[dict[str, Any]] = [
    {"events": [], "responses": []},
    {
        "events": [SdkSlotSet("serial_number", "1712345678901234567"), SdkActiveLoop(None)],
        "responses": [{"response": "utter_ask_balance_form_order_number"}],
    },
    {
        "events": [SdkSlotSet("verification", {"card": "••••4567", "by": "order number"})],
        "responses": [{"text": "The card ending in 4567 holds **$50.00**.", "buttons": []}],
    },
    {"events": [SdkFollowupAction("action_listen")], "responses": []},
    {"events": [{"event": "bot", "text": "hi", "data": {}, "timestamp": 1.0}]},
]
INVALID: list[Any] = [
    {"events": "slot"},
    {"events": [{"name": "no event key"}]},
    {"events": [{"event": "slot", "name": 3}]},
    {"events": [{"event": "no_such_event"}]},
    {"responses": "hello"},
    {"responses": ["hello"]},
    [],
]


def _outcome(validate: Any, result: Any) -> tuple[Any, ...]:
    action = RemoteAction("action_check_balance", None)
    try:
        return ("ok", validate(action, result))
    except ValidationError as error:
        return ("error", error.message, list(error.absolute_path), error.validator)


@pytest.mark.parametrize("result", VALID + INVALID)
def test_an_action_response_is_judged_as_rasa_judges_it(result: Any) -> None:
    original = speedups.ORIGINALS["cache_action_response_validator"]
    assert _outcome(RemoteAction._validate_action_result, result) == _outcome(original, result)


def test_valid_and_invalid_responses_are_told_apart() -> None:
    """The comparison above is between two verdicts that differ across the inputs."""
    verdicts = [_outcome(RemoteAction._validate_action_result, r)[0] for r in VALID + INVALID]
    assert verdicts == ["ok"] * len(VALID) + ["error"] * len(INVALID)


# -------------------------------------------------------------------- event type names

A_TURN = [
    SessionStarted(),
    ActionExecuted("action_listen"),
    UserUttered("how much is on my card", {"name": "check_balance", "confidence": 0.9}),
    ActionExecuted("balance_form"),
    ActiveLoop("balance_form"),
    SlotSet("requested_slot", "serial_number"),
    BotUttered("What's the card's serial number?", {"elements": None}),
    FollowupAction("action_listen"),
]


def test_every_event_type_name_resolves_to_the_same_class() -> None:
    original = speedups.ORIGINALS["cache_event_type_resolution"]
    names = {cls.type_name for cls in all_subclasses(Event)}
    assert len(names) > 20
    for _ in range(2):  # the second time from what was remembered
        for name in names:
            assert Event.resolve_by_type(name) is original(name)


def test_unknown_names_topic_and_defaults_behave_as_before() -> None:
    original = speedups.ORIGINALS["cache_event_type_resolution"]
    assert Event.resolve_by_type("topic") is original("topic") is None
    assert Event.resolve_by_type("no_such", SlotSet) is original("no_such", SlotSet) is SlotSet
    with pytest.raises(ValueError, match="Unknown event name 'no_such'"):
        Event.resolve_by_type("no_such")


def test_a_class_defined_later_is_found() -> None:
    class LateEvent(ActionExecuted):
        type_name = "giftbot_test_late_event"

    assert Event.resolve_by_type("giftbot_test_late_event") is LateEvent


def test_a_conversation_deserialises_to_the_same_events() -> None:
    stored = [event.as_dict() for event in A_TURN]
    assert [Event.from_parameters(d) for d in stored] == A_TURN


# ------------------------------------------------------------ endpoint requests' JSON

RECORDED = Path(__file__).resolve().parent / "data" / "bench_conversation.json"


def _action_call_body() -> dict[str, Any]:
    """What Rasa sends the action server at the end of the recorded 40-turn conversation."""
    domain = Domain.load(str(Path(__file__).resolve().parents[2] / "domain.yml"))
    events = [Event.from_parameters(e) for turn in json.loads(RECORDED.read_text()) for e in turn]
    tracker = DialogueStateTracker.from_events("recorded", events, domain.slots)
    body: dict[str, Any] = RemoteAction("balance_form", None)._action_call_format(tracker, domain)
    return body


@pytest.mark.anyio
async def test_the_action_server_receives_the_json_values_rasa_sends() -> None:
    """Through a real aiohttp server: the body Rasa's own session writes and the one the
    speed-up's writes are read back as the same values, for a whole conversation's call and
    for the values ujson cannot write."""
    received: list[Any] = []

    async def webhook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"events": []})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook")
    original = speedups.ORIGINALS["serialise_endpoint_requests_with_ujson"]
    bodies = [_action_call_body(), {"big": 2**70, "float": 0.1 + 0.2, "text": "a/b é"}]
    try:
        for body in bodies:
            received.clear()
            await endpoint.request(json=body, method="post")  # the speed-up's session
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(EndpointConfig, "session", original)
                await endpoint.request(json=body, method="post")  # Rasa's own
            assert received[0] == received[1] == json.loads(json.dumps(body))
    finally:
        await runner.cleanup()
    session = endpoint.session()
    assert session._json_serialize is speedups.dumps_json
    await session.close()
