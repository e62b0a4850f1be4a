"""Finding 6 (ports on every interface): the web server listens on loopback unless configured
otherwise. Checked by connecting to this machine's own non-loopback address."""

from __future__ import annotations

import socket

import pytest

from bot.wallet.repository import WalletRepository
from tests.security.webserver import web_server


def _own_outside_address() -> str:
    """This machine's address on its outward interface (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.254", 9))
        except OSError:
            pytest.skip("this machine has no non-loopback IPv4 interface to connect from")
        address = str(probe.getsockname()[0])
    if address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 interface to connect from")
    return address


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=5):
            return True
    except OSError:
        return False


def test_the_web_server_listens_on_loopback_by_default(wallet: WalletRepository) -> None:
    outside = _own_outside_address()
    with web_server({"GIFTBOT_WEB_HOST": ""}) as server:
        assert _accepts("127.0.0.1", server.port)
        assert not _accepts(outside, server.port)


def test_the_web_server_listens_where_it_is_told(wallet: WalletRepository) -> None:
    outside = _own_outside_address()
    with web_server({"GIFTBOT_WEB_HOST": outside}, host=outside) as server:
        assert _accepts(outside, server.port)
