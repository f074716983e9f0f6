"""The HTTP edge of `serve`: uvicorn's httptools protocol with the limits it lacks.

httptools caps neither the size of a request's headers nor the time a client may take to send
them or its body, and uvicorn's MAX_CONNECTIONS counts half-sent requests like any other, so a
few slow or endless requests could hold memory and every connection slot. This protocol adds
a header size cap (431), a body size cap (413: trailers of a chunked body are headers httptools
would buffer without end, and Strawberry reads a GraphQL body whole), header and body deadlines
(408), and a cap on the connections one client address may hold (503), each answered with
`connection: close` and closed at once.
h11 has a header size option but no deadlines either, and serves small requests at less than
half httptools' rate, so the guard sits on httptools.
"""

import asyncio
import functools
import http
import ipaddress
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

from starlette.requests import HTTPConnection
from starlette.types import Scope
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import get_remote_addr
from uvicorn.server import ServerState

log = logging.getLogger("replay_catalog.http")


@dataclass(frozen=True)
class EdgeLimits:
    """What one HTTP connection may take: header bytes (request line included), body bytes
    (as sent: chunk framing and trailers included), seconds to send the headers and then the
    body, and open connections per client address (None: no cap)."""

    max_header_bytes: int
    max_body_bytes: int
    header_timeout: float
    body_timeout: float
    connections_per_client: int | None


def client_of_request(request: HTTPConnection) -> str:
    """The client a request or WebSocket comes from (see client_of)."""
    return client_of_scope(request.scope)


def client_of_scope(scope: Scope) -> str:
    """The client of an ASGI connection scope (see client_of)."""
    client = scope.get("client")
    return client_of(client[0]) if client else "unknown"


def client_of(host: str) -> str:
    """The client an address stands for: an IPv4 address, or an IPv6 /64 (the block one
    subscriber usually gets, so rotating through it does not multiply the cap)."""
    if ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


class ConnectionsByClient:
    """Open HTTP connections per client, so that one client cannot take every slot."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()
        self.over_limit: set[str] = set()  # told in the log once until they drop below it

    def admit(self, client: str) -> bool:
        if self.limit is not None and self.open[client] >= self.limit:
            if client not in self.over_limit:
                self.over_limit.add(client)
                log.warning("%s holds %d connections; refusing more (503)", client, self.limit)
            return False
        self.open[client] += 1
        return True

    def release(self, client: str) -> None:
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client]
        if self.limit is None or self.open[client] < self.limit:
            self.over_limit.discard(client)


def plain_answer(status: int, message: str, extra_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A complete `connection: close` response, written straight to the socket."""
    body = message.encode() + b"\n"
    phrase = http.HTTPStatus(status).phrase.encode()
    lines = [b"HTTP/1.1 %d %s" % (status, phrase)]
    lines += [name + b": " + value for name, value in extra_headers]
    lines += [
        b"content-type: text/plain; charset=utf-8",
        b"content-length: %d" % len(body),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class EdgeProtocol(HttpToolsProtocol):
    """One HTTP connection, with EdgeLimits enforced on every request it carries."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: EdgeLimits,
        clients: ConnectionsByClient,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.clients = clients
        self.counted_as: str | None = None
        self.refused = False
        self.upgraded = False
        self.awaiting_headers = True
        self.header_bytes = 0
        self.awaiting_body = False
        self.body_bytes = 0  # the body's own bytes
        self.sent_in_body = 0  # everything read while in the body: framing and trailers too
        self.header_deadline: asyncio.TimerHandle | None = None
        self.body_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = get_remote_addr(transport)
        if peer is not None:
            client = client_of(peer[0])
            if not self.clients.admit(client):
                self.refused = True
                transport.write(
                    plain_answer(
                        503,
                        "too many connections from your address",
                        self.server_state.default_headers,
                    )
                )
                transport.close()
                return
            self.counted_as = client
        super().connection_made(transport)
        # The first request's headers are due this soon after connecting (later ones after
        # their first byte: uvicorn's keep-alive timeout covers the wait between requests).
        self.header_deadline = self.loop.call_later(
            self.limits.header_timeout, self.headers_too_slow
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self.refused:
            return
        self.stop_counting()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused or self.transport.is_closing():
            return
        in_body = self.awaiting_body
        if self.awaiting_headers:
            self.header_bytes += len(data)
            if self.header_deadline is None:
                self.header_deadline = self.loop.call_later(
                    self.limits.header_timeout, self.headers_too_slow
                )
        super().data_received(data)
        if self.upgraded or self.transport.is_closing():
            return
        if in_body and self.awaiting_body:
            self.sent_in_body += len(data)
        # Checked after parsing, so that a body arriving with its headers does not count as
        # headers; httptools has buffered at most the cap plus one read.
        if self.awaiting_headers and self.header_bytes > self.limits.max_header_bytes:
            if self.cycle is None or self.cycle.response_complete:
                self.refuse(
                    431, f"request headers larger than {self.limits.max_header_bytes} bytes"
                )
            else:
                self.transport.close()  # an earlier response is still due: no room for a 431
        elif self.awaiting_body:
            if max(self.body_bytes, self.sent_in_body) > self.limits.max_body_bytes:
                self.cut_off_body(
                    413, f"request body larger than {self.limits.max_body_bytes} bytes"
                )
            elif self.body_deadline is None:
                self.body_deadline = self.loop.call_later(
                    self.limits.body_timeout, self.body_too_slow
                )

    def on_headers_complete(self) -> None:
        self.awaiting_headers = False
        self.header_bytes = 0
        self.awaiting_body = True
        self.body_bytes = self.sent_in_body = 0
        self.cancel(self.header_deadline)
        self.header_deadline = None
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.awaiting_body = False
        self.awaiting_headers = True
        self.cancel(self.body_deadline)
        self.body_deadline = None
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        # The WebSocket protocol takes the connection over: its own limits apply from here.
        self.upgraded = True
        self.stop_counting()
        super().handle_websocket_upgrade()

    def headers_too_slow(self) -> None:
        self.header_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A request is still being answered: close once its response is out.
            self.cycle.keep_alive = False
        elif self.header_bytes == 0:
            self.transport.close()  # opened and never used: nothing to answer
        else:
            self.refuse(408, "request headers not received in time")

    def body_too_slow(self) -> None:
        self.body_deadline = None
        if not self.transport.is_closing():
            self.cut_off_body(408, "request body not received in time")

    def cut_off_body(self, status: int, message: str) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_started and not self.pipeline:
            # The app, still waiting for the body, hears that the client is gone.
            cycle.disconnected = True
            cycle.message_event.set()
            self.refuse(status, message)
        else:
            # Answered already (the rest of the body is not wanted), or queued behind an
            # earlier response that a 413 or 408 must not overtake.
            self.transport.close()

    def refuse(self, status: int, message: str) -> None:
        client = self.client[0] if self.client else "unknown"
        log.warning("HTTP %d to %s: %s", status, client, message)
        self.transport.write(plain_answer(status, message, self.server_state.default_headers))
        self.transport.close()

    def stop_counting(self) -> None:
        """Cancel the deadlines and give the connection's slot back to its client."""
        self.cancel(self.header_deadline)
        self.cancel(self.body_deadline)
        self.header_deadline = self.body_deadline = None
        if self.counted_as is not None:
            self.clients.release(self.counted_as)
            self.counted_as = None

    @staticmethod
    def cancel(deadline: asyncio.TimerHandle | None) -> None:
        if deadline is not None:
            deadline.cancel()


def edge_protocol(limits: EdgeLimits) -> type[asyncio.Protocol]:
    """uvicorn's `http=`: an EdgeProtocol per connection, all sharing one count of
    connections per client."""
    factory = functools.partial(
        EdgeProtocol, limits=limits, clients=ConnectionsByClient(limits.connections_per_client)
    )
    # uvicorn's Config takes a protocol class but only ever calls it, with keyword arguments.
    return cast("type[asyncio.Protocol]", factory)
