"""What the assistant says, in each platform's form.

The bot's responses are written in a small markdown (``**bold**``, ``[text](url)``, ``- `` lists);
each platform gets it translated (Slack mrkdwn, Telegram HTML, plain text with links written
out) and cut to its length limit. Rasa's buttons become an ``Option`` list, which each platform
shows its own way, and a numbered answer ("2") is mapped back to the option's payload.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# **bold** or [text](http(s) url); everything else is literal text.
_MARKUP = re.compile(r"\*\*(?P<bold>.+?)\*\*|\[(?P<label>[^\]\n]+)\]\((?P<url>https?://[^\s)]+)\)")


@dataclass(frozen=True)
class Option:
    """A button: what the shopper sees, and what Rasa receives when it is picked."""

    title: str
    payload: str

    def as_dict(self) -> dict[str, str]:
        return {"title": self.title, "payload": self.payload}


@dataclass(frozen=True)
class Reply:
    """One bot message, platform-neutral."""

    text: str
    options: tuple[Option, ...] = ()
    from_agent: bool = False
    """A support agent's words (relayed by the console), not the assistant's."""


def reply_from_rasa(message: dict[str, Any]) -> Reply | None:
    """The ``Reply`` in a message Rasa sends to an output channel (``BotUttered.message()``)."""
    text = str(message.get("text") or "")
    buttons = message.get("buttons") or message.get("quick_replies") or []
    options = tuple(
        Option(str(b.get("title") or b.get("payload")), str(b.get("payload") or b.get("title")))
        for b in buttons
        if isinstance(b, dict) and (b.get("title") or b.get("payload"))
    )
    custom = message.get("custom")
    from_agent = False
    if not text and isinstance(custom, dict):
        text = agent_text(custom)
        from_agent = bool(text)
    if not text and not options:  # the responses have no images or attachments
        return None
    return Reply(text=text, options=options, from_agent=from_agent)


def agent_text(custom: dict[str, Any]) -> str:
    """The agent console's events (bot/web/rasa_api.agent_payload) as plain words."""
    data = custom.get("data", custom)
    if not isinstance(data, dict):
        return ""
    agent = data.get("agent")
    name = str(agent.get("name") or "A support agent") if isinstance(agent, dict) else ""
    name = name or "A support agent"
    if data.get("event") == "agent_joined":
        return f"{name} from our support team has joined the conversation."
    if data.get("event") == "agent_left":
        return f"{name} has left the conversation."
    if isinstance(data.get("text"), str) and data["text"]:
        return f"{name}: {data['text']}"
    return ""


# ------------------------------------------------------------------------------- markup


def _translate(
    text: str,
    literal: Callable[[str], str],
    bold: Callable[[str], str],
    link: Callable[[str, str], str],
) -> str:
    out, position = [], 0
    for match in _MARKUP.finditer(text):
        out.append(literal(text[position : match.start()]))
        if match.group("bold") is not None:
            out.append(bold(match.group("bold")))
        else:
            out.append(link(match.group("label"), match.group("url")))
        position = match.end()
    out.append(literal(text[position:]))
    return "".join(out)


def _slack_escape(text: str) -> str:
    # Slack's documented escaping: only these three characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_slack_mrkdwn(text: str) -> str:
    return _translate(
        text,
        _slack_escape,
        lambda b: f"*{_slack_escape(b)}*",
        lambda label, url: f"<{_slack_escape(url)}|{_slack_escape(label)}>",
    )


def to_telegram_html(text: str) -> str:
    """Telegram's HTML parse mode: only ``<``, ``>`` and ``&`` need escaping in text."""
    return _translate(
        text,
        lambda t: html.escape(t, quote=False),
        lambda b: f"<b>{html.escape(b, quote=False)}</b>",
        lambda label, url: f'<a href="{html.escape(url)}">{html.escape(label, quote=False)}</a>',
    )


def to_plain(text: str) -> str:
    """SMS, WhatsApp and Messenger: no markup; a link is written out."""
    return _translate(text, str, str, lambda label, url: f"{label} ({url})")


def numbered(text: str, options: Iterable[Option]) -> str:
    """Options as a numbered list the shopper answers with a number."""
    lines = [f"{number}. {option.title}" for number, option in enumerate(options, start=1)]
    if not lines:
        return text
    return "\n".join([text, *lines, "(Reply with a number.)"])


_NUMBER = re.compile(r"\s*#?(\d{1,2})\s*[.)]?\s*")


def pick_option(answer: str, offered: list[dict[str, str]]) -> str | None:
    """The payload of the option ``answer`` picks, by number or by its exact title."""
    match = _NUMBER.fullmatch(answer)
    if match and 1 <= int(match.group(1)) <= len(offered):
        return offered[int(match.group(1)) - 1].get("payload")
    wanted = answer.strip().casefold()
    for option in offered:
        if option.get("title", "").strip().casefold() == wanted:
            return option.get("payload")
    return None


# ------------------------------------------------------------------------------ splitting


def split(text: str, limit: int, render: Callable[[str], str] = str) -> list[str]:
    """``render(text)`` cut into pieces of at most ``limit`` characters each.

    Cuts between paragraphs, then lines, then words, so that markup is rendered whole; only a
    single word longer than the limit is cut inside.
    """
    if len(render(text)) <= limit:
        return [render(text)] if text else []
    pieces: list[str] = []
    current = ""
    for unit in _units(text, limit, render):
        candidate = current + unit
        if current and len(render(candidate.strip())) > limit:
            pieces.append(render(current.strip()))
            current = unit
        else:
            current = candidate
    if current.strip():
        pieces.append(render(current.strip()))
    return [piece for piece in pieces if piece]


def _units(text: str, limit: int, render: Callable[[str], str]) -> Iterable[str]:
    for line in text.splitlines(keepends=True):
        if len(render(line.strip())) <= limit:
            yield line
            continue
        for word in re.split(r"(?<=\s)", line):
            while len(render(word)) > limit:  # a single over-long word: cut it
                cut = limit
                while cut > 1 and len(render(word[:cut])) > limit:
                    cut -= 1
                yield word[:cut]
                word = word[cut:]
            yield word
