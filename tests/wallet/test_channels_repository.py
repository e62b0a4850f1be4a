"""The messaging channels' part of the wallet store, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from bot.wallet.repository import WalletRepository
from bot.wallet.repository.channels import ChannelsRepository, LinkOutcome


@pytest.fixture
def channels(engine: Engine, claim_code_secret: bytes, sealing_key: str) -> ChannelsRepository:
    return ChannelsRepository(engine, claim_code_secret, sealing_key)


def test_a_message_id_is_taken_in_once_per_channel(channels: ChannelsRepository) -> None:
    assert channels.take_in_delivery("slack", "Ev01") is True
    assert channels.take_in_delivery("slack", "Ev01") is False
    assert channels.take_in_delivery("telegram", "Ev01") is True


def test_of_concurrent_deliveries_of_one_id_exactly_one_is_taken(
    channels: ChannelsRepository,
) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        taken = list(pool.map(lambda _: channels.take_in_delivery("facebook", "m_1"), range(8)))
    assert taken.count(True) == 1


def test_references_and_options_are_kept_apart(channels: ChannelsRepository) -> None:
    assert channels.reference("slack", "U1") is None
    assert channels.offered_options("slack", "U1") == []
    channels.save_reference("slack", "U1", {"channel": "D1"})
    options = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
    channels.offer_options("slack", "U1", options)
    channels.save_reference("slack", "U1", {"channel": "D2"})
    assert channels.reference("slack", "U1") == {"channel": "D2"}
    assert channels.offered_options("slack", "U1") == options
    assert channels.offered_options("telegram", "U1") == []


def test_a_link_binds_once_and_unlinks(
    channels: ChannelsRepository, repo: WalletRepository
) -> None:
    ann = repo.create_customer("Ann Lee", "ann@example.com")
    ben = repo.create_customer("Ben Okafor", "ben@example.com")
    link_id, _ = channels.create_link("telegram", "42", timedelta(minutes=10))
    assert channels.linked_customer("telegram", "42") is None
    assert channels.use_link(link_id, ann.id) is LinkOutcome.LINKED
    assert channels.use_link(link_id, ben.id) is LinkOutcome.USED
    assert channels.linked_customer("telegram", "42") == ann.id
    assert channels.linked_customer("slack", "42") is None
    # The linked user's conversation belongs to Ann until the unlink releases it.
    assert repo.claim_conversation("telegram:42", ann.id) == ann.id
    assert repo.claim_conversation("telegram:42", ben.id) == ann.id
    assert channels.unlink("telegram", "42", "telegram:42") is True
    assert channels.unlink("telegram", "42", "telegram:42") is False
    assert channels.linked_customer("telegram", "42") is None
    assert repo.claim_conversation("telegram:42", ben.id) == ben.id


def test_an_expired_or_unknown_link_binds_nothing(
    channels: ChannelsRepository, repo: WalletRepository
) -> None:
    ann = repo.create_customer("Ann Lee", "ann@example.com")
    link_id, _ = channels.create_link("twilio", "+15551234567", timedelta(seconds=-1))
    assert channels.use_link(link_id, ann.id) is LinkOutcome.EXPIRED
    assert channels.use_link("no-such-link", ann.id) is LinkOutcome.UNKNOWN
    assert channels.linked_customer("twilio", "+15551234567") is None


def test_of_concurrent_uses_of_one_link_exactly_one_binds(
    channels: ChannelsRepository, repo: WalletRepository
) -> None:
    customers = [repo.create_customer(f"C {n}", f"c{n}@example.com") for n in range(6)]
    link_id, _ = channels.create_link("slack", "U9", timedelta(minutes=10))
    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(lambda c: channels.use_link(link_id, c.id), customers))
    assert outcomes.count(LinkOutcome.LINKED) == 1
    winner = customers[outcomes.index(LinkOutcome.LINKED)]
    assert channels.linked_customer("slack", "U9") == winner.id
