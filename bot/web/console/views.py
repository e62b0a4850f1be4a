"""How conversations, requests and cases look in the console: always masked.

Serials are shown as their last 4 digits and claim codes never, whatever the source: the
tracker store already masks claim codes, and this module masks again before anything leaves.
"""

from __future__ import annotations

import time
from typing import Any

from bot.desk.views import CaseView, HandoffView
from bot.wallet import codes


def mask(text: str) -> str:
    """Text fit for the console: claim codes hidden, serials cut to their last 4 digits."""
    return codes.mask_claim_codes(text, serials=True)


def masked_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {str(k): masked_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked_value(v) for v in value]
    return value


def transcript(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The shopper's, the assistant's and agents' turns, and what happened to the chat."""
    lines: list[dict[str, Any]] = []
    for event in events:
        kind, at = event.get("event"), event.get("timestamp") or time.time()
        if kind == "user":
            text = event.get("text") or ""
            if text:
                lines.append({"from": "shopper", "text": mask(text), "at": at})
        elif kind == "bot":
            line = _bot_line(event)
            if line:
                lines.append({**line, "at": at})
        elif kind == "pause":
            lines.append({"from": "notice", "text": "The assistant is paused.", "at": at})
        elif kind == "resume":
            lines.append({"from": "notice", "text": "The assistant is back on.", "at": at})
    return lines


def _bot_line(event: dict[str, Any]) -> dict[str, Any] | None:
    data = event.get("data") or {}
    custom = data.get("custom") if isinstance(data, dict) else None
    payload = custom.get("data", custom) if isinstance(custom, dict) else None
    if isinstance(payload, dict) and isinstance(payload.get("agent"), dict):
        name = str(payload["agent"].get("name") or "An agent")[:60]
        if payload.get("event") == "agent_joined":
            return {"from": "notice", "text": f"{name} joined the chat."}
        if payload.get("event") == "agent_left":
            return {"from": "notice", "text": f"{name} left the chat."}
        if isinstance(payload.get("text"), str):
            return {"from": "agent", "agent": name, "text": mask(payload["text"])}
        return None
    text = event.get("text") or ""
    buttons = data.get("buttons") if isinstance(data, dict) else None
    if isinstance(buttons, list):
        titles = [str(b.get("title")) for b in buttons if isinstance(b, dict) and b.get("title")]
        if titles:
            text += "\n" + " ".join(f"[{title}]" for title in titles)
    return {"from": "bot", "text": mask(text)} if text.strip() else None


def _text_or(value: Any, default: str | None) -> str | None:
    return mask(value) if isinstance(value, str) and value else default


def handoff_json(handoff: HandoffView) -> dict[str, Any]:
    """A queue entry: enough to triage without opening it (the shopper's last words, the
    journey, and what the action server recorded as verified)."""
    context = handoff.context
    return {
        "id": handoff.id,
        "status": handoff.status.value,
        "reason": handoff.reason.replace("_", " "),
        "channel": handoff.channel,
        "signed_in": handoff.signed_in,
        "verification": _text_or(context.get("verification"), "not verified"),
        "serial": _text_or(context.get("serial"), None),
        "last_intent": context.get("last_intent"),
        "journey": _text_or(context.get("journey"), None),
        "last_message": _text_or(context.get("last_message"), None),
        "case_reference": handoff.case_reference,
        "created_at": handoff.created_at.isoformat(),
        "waited_seconds": int(handoff.waited().total_seconds()),
        "taken_by": handoff.taken_by,
        "conversation": handoff.conversation_id[:8],
    }


def case_json(case: CaseView, *, full: bool = False) -> dict[str, Any]:
    """A case as the Cases view lists it; ``full`` adds its history and details."""
    details = {k: v for k, v in case.details.items() if k != "contact_email"}
    found: dict[str, Any] = {
        "reference": case.reference,
        "kind": case.kind.replace("_", " "),
        "status": case.status,
        "reason": case.kind.removeprefix("handoff_").replace("_", " "),
        "contact_email": codes.mask_email(case.contact_email) if case.contact_email else None,
        "created_at": case.created_at.isoformat(),
        "age_seconds": int(case.age().total_seconds()),
        "conversation": case.conversation_id[:8] if case.conversation_id else None,
        "signed_in": case.customer_id is not None,
        "last_message": _text_or(details.get("last_message"), None),
    }
    if full:
        found["details"] = masked_value(details)
        found["resolution"] = _text_or(case.resolution, None)
        found["closed_by"] = case.closed_by
        found["history"] = [
            {
                "kind": entry.kind,
                "author": entry.author,
                "text": mask(entry.text),
                "at": entry.created_at.isoformat(),
            }
            for entry in case.notes
        ]
    return found
