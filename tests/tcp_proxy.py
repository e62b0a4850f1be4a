"""A TCP proxy a test puts between the servers and a shared service, to cut and restore.

The machine's PostgreSQL, Redis and RabbitMQ serve every test and engineer at once, so they are
never stopped; a fault test points the servers at this proxy instead and cuts it. ``cut()`` is a
real lost connection: every open connection is closed and new ones are refused (nothing listens
on the port) until ``restore()``. ``delay`` says how long to hold back each chunk coming from
the service (a slow network, or a busy server slow at one kind of message).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress

from tests.servers import free_port


class TcpProxy:
    def __init__(
        self,
        target_host: str,
        target_port: int,
        delay: Callable[[bytes], float] = lambda chunk: 0.0,
    ) -> None:
        self.target = (target_host, target_port)
        self.delay = delay
        self.port = free_port()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *_: object) -> None:
        self.cut()

    def restore(self) -> None:
        """Listen again on the same port."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop listening and close every connection, both ways."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._connections.update((client, upstream))
            for source, sink, delay in ((client, upstream, None), (upstream, client, self.delay)):
                threading.Thread(target=self._pump, args=(source, sink, delay), daemon=True).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, delay: Callable[[bytes], float] | None
    ) -> None:
        try:
            while data := source.recv(65536):
                if delay is not None:
                    time.sleep(delay(data))
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
