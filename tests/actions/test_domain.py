"""The domain's own security property: state that proves something is set only by actions."""

from __future__ import annotations

from typing import Any

# Slots the action server sets as the outcome of its checks, or to steer the conversation.
ACTION_OWNED = {
    "failed_slot_attempts",
    "gave_up",
    "handoff_offered",
    "handoff_reason",
    "redeem_offered",
    "case_reference",
    "contact_requested",
}


def test_action_owned_slots_have_only_custom_mappings(domain: dict[str, Any]) -> None:
    """No entity, and so no typed /intent{...} command, can fill them."""
    slots = domain["slots"]
    assert set(slots) >= ACTION_OWNED
    for name in ACTION_OWNED:
        kinds = {mapping["type"] for mapping in slots[name]["mappings"]}
        assert kinds == {"custom"}, (name, kinds)
