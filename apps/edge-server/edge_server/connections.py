"""Connection limits for uvicorn: a deadline to receive each whole request, and a cap on open connections.

uvicorn closes a keep-alive connection only after a response; a socket that never sends a
request, or trickles its headers or body (slowloris), stays open and holds a file descriptor.
:func:`guarded_protocol` returns an ``H11Protocol`` that closes such connections after
``request_timeout`` seconds and refuses connections beyond ``max_connections`` at once.
"""

from __future__ import annotations

import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class _GuardedH11(H11Protocol):
    request_timeout = 10.0
    max_connections = 256
    _deadline = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:  # refuse at once, before it holds a descriptor long
            log.warning("connection refused: %d open connections (cap %d)", len(self.connections) - 1,
                        self.max_connections)
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # the first bytes of a next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
            self._disarm()  # the whole request is in: the app may take its time to answer

    def on_response_complete(self) -> None:
        self._disarm()
        super().on_response_complete()  # uvicorn's keep-alive timeout takes over while idle

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info("closing a connection that sent no complete request in %.1f s", self.request_timeout)
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True  # the app's receive() sees a disconnect
                self.cycle.message_event.set()
            self.transport.close()


def guarded_protocol(request_timeout: float = 10.0, max_connections: int = 256) -> type[H11Protocol]:
    """An ``H11Protocol`` subclass for ``uvicorn.Config(http=...)`` with these limits."""
    return type("GuardedH11Protocol", (_GuardedH11,), {"request_timeout": float(request_timeout),
                                                       "max_connections": int(max_connections)})


def uvicorn_limits(request_timeout: float = 10.0, max_connections: int = 256, keep_alive: float = 5.0) -> dict:
    """Keyword arguments for ``uvicorn.Config``/``uvicorn.run`` that apply these limits."""
    return {"http": guarded_protocol(request_timeout, max_connections), "timeout_keep_alive": keep_alive,
            "limit_concurrency": max_connections + 16}
