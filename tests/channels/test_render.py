"""Each platform's form of the assistant's markdown, splitting, and options answered by number."""

from __future__ import annotations

import pytest

from bot.channels.render import (
    Option,
    Reply,
    numbered,
    pick_option,
    reply_from_rasa,
    split,
    to_plain,
    to_slack_mrkdwn,
    to_telegram_html,
)

TEXT = "Your balance is **$5 < $6 & more**. See [Gift Cards](https://store.example/gc?a=1&b=2)."


def test_markdown_in_each_platforms_form() -> None:
    assert to_telegram_html(TEXT) == (
        "Your balance is <b>$5 &lt; $6 &amp; more</b>. See "
        '<a href="https://store.example/gc?a=1&amp;b=2">Gift Cards</a>.'
    )
    assert to_slack_mrkdwn(TEXT) == (
        "Your balance is *$5 &lt; $6 &amp; more*. See "
        "<https://store.example/gc?a=1&amp;b=2|Gift Cards>."
    )
    assert to_plain(TEXT) == (
        "Your balance is $5 < $6 & more. See Gift Cards (https://store.example/gc?a=1&b=2)."
    )
    assert to_telegram_html("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.mark.parametrize("limit", [20, 50, 4096])
def test_long_answers_are_split_within_the_limit_and_lose_nothing(limit: int) -> None:
    text = "\n".join(f"- line **{n}** of a long answer with several words" for n in range(40))
    pieces = split(text, limit, to_telegram_html)
    assert all(0 < len(piece) <= limit for piece in pieces)
    assert "".join(pieces).replace(" ", "").replace("\n", "") == to_telegram_html(text).replace(
        " ", ""
    ).replace("\n", "")
    if limit == 4096:
        assert len(pieces) == 1


def test_a_word_longer_than_the_limit_is_cut() -> None:
    assert split("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_options_are_numbered_and_a_number_or_a_title_picks_one() -> None:
    options = [Option("Yes, please", "/affirm"), Option("No, thanks", "/deny")]
    assert numbered("Want a person?", options) == (
        "Want a person?\n1. Yes, please\n2. No, thanks\n(Reply with a number.)"
    )
    offered = [option.as_dict() for option in options]
    assert pick_option("2", offered) == "/deny"
    assert pick_option(" 1. ", offered) == "/affirm"
    assert pick_option("#2", offered) == "/deny"
    assert pick_option("no, THANKS", offered) == "/deny"
    assert pick_option("3", offered) is None
    assert pick_option("1712 3456", offered) is None


def test_the_consoles_agent_events_become_words() -> None:
    joined = {"custom": {"data": {"event": "agent_joined", "agent": {"name": "Sam"}}}}
    said = {"custom": {"data": {"text": "Hello", "agent": {"name": "Sam"}}}}
    assert reply_from_rasa(joined) == Reply(
        "Sam from our support team has joined the conversation.", from_agent=True
    )
    assert reply_from_rasa(said) == Reply("Sam: Hello", from_agent=True)
    assert reply_from_rasa({"text": None}) is None
    buttons = {"text": "Pick", "buttons": [{"title": "A", "payload": "/a"}]}
    assert reply_from_rasa(buttons) == Reply("Pick", (Option("A", "/a"),))
