"""The HTTP edge of `serve`: header size, header and body deadlines, per-address connection caps.

Each test starts `replay-catalog serve` on loopback and talks to it over raw sockets, the way
a slowloris or an oversized request would. Most only need a database to start the server and
run on SQLite alone; the lockout test sends a real callback and runs on both databases.
"""

import json
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
import websockets
from anyio.abc import SocketStream

from replay_catalog.server import client_of
from tests.catalog_client import BASE, push, sign
from tests.servers import Server, serving

pytestmark = pytest.mark.anyio

# Loopback accepts any 127.x.y.z as a source address: the attacker's, apart from 127.0.0.1.
ATTACKER = "127.0.0.2"
UNFINISHED_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: catalog\r\nX-Slow: "


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite file for tests whose subject is HTTP, not the database."""
    path = tmp_path / "catalog.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@asynccontextmanager
async def raw_connection(server: Server, source: str = "127.0.0.1") -> AsyncIterator[SocketStream]:
    address = urlsplit(server.base_url)
    assert address.hostname is not None and address.port is not None
    async with await anyio.connect_tcp(address.hostname, address.port, local_host=source) as stream:
        yield stream


async def answer_then_close(stream: SocketStream, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection, which must be within
    `seconds` (a server that keeps the connection open fails the test)."""
    received = b""
    with anyio.fail_after(seconds):
        while True:
            try:
                received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
                return received


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def resident_bytes(server: Server) -> int:
    """The server process's resident memory (VmRSS)."""
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    [line] = [line for line in status.splitlines() if line.startswith("VmRSS:")]
    return int(line.split()[1]) * 1024


async def test_a_header_larger_than_the_limit_is_refused_with_431_and_closed(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with (
        serving(sqlite_url, tmp_path, HTTP_MAX_HEADER_BYTES="16384") as server,
        raw_connection(server) as stream,
    ):
        await stream.send(b"GET /healthz HTTP/1.1\r\nHost: catalog\r\nX-Big: " + b"a" * 20_000)
        answer = await answer_then_close(stream, 5)
        assert status_of(answer) == 431


async def test_a_request_line_longer_than_the_header_limit_is_refused(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with (
        serving(sqlite_url, tmp_path, HTTP_MAX_HEADER_BYTES="16384") as server,
        raw_connection(server) as stream,
    ):
        await stream.send(b"GET /graphql?query=" + b"a" * 20_000 + b" HTTP/1.1\r\n")
        assert status_of(await answer_then_close(stream, 5)) == 431


async def test_headers_within_the_limit_are_served(sqlite_url: str, tmp_path: Path) -> None:
    async with serving(sqlite_url, tmp_path, HTTP_MAX_HEADER_BYTES="16384") as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            answer = await http.get("/healthz", headers={"X-Padding": "a" * 12_000})
        assert answer.status_code == 200


async def test_a_request_whose_headers_never_end_gets_408_and_is_closed(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with (
        serving(sqlite_url, tmp_path, HTTP_HEADER_TIMEOUT_SECONDS="1") as server,
        raw_connection(server) as stream,
    ):
        started = time.monotonic()
        await stream.send(UNFINISHED_HEADERS)
        # A byte now and then does not move the deadline.
        for _ in range(3):
            await anyio.sleep(0.3)
            await stream.send(b"a")
        answer = await answer_then_close(stream, 5)
        assert status_of(answer) == 408
        assert 0.9 < time.monotonic() - started < 3


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_deadline(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with (
        serving(sqlite_url, tmp_path, HTTP_HEADER_TIMEOUT_SECONDS="1") as server,
        raw_connection(server) as stream,
    ):
        await answer_then_close(stream, 5)


@pytest.mark.parametrize("path", ["/callbacks/tencent", "/graphql", "/healthz"])
async def test_a_body_that_never_arrives_gets_408_and_is_closed(
    sqlite_url: str, tmp_path: Path, path: str
) -> None:
    async with (
        # Without the response cache, Strawberry itself reads the GraphQL body.
        serving(
            sqlite_url, tmp_path, HTTP_BODY_TIMEOUT_SECONDS="1", RESPONSE_CACHE_ENTRIES="0"
        ) as server,
        raw_connection(server) as stream,
    ):
        method = "GET" if path == "/healthz" else "POST"
        await stream.send(
            f"{method} {path} HTTP/1.1\r\nHost: catalog\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{".encode()
        )
        # Closed by the body deadline, well before uvicorn's keep-alive timeout (5 s).
        answer = await answer_then_close(stream, 3)
        # GET /healthz answers without reading the body; its connection is closed all the same.
        assert status_of(answer) == (200 if path == "/healthz" else 408)
    # The app hears that the client is gone, and logs no traceback for it.
    assert "Traceback" not in server.log.read_text()


async def test_a_body_larger_than_the_limit_is_refused_with_413_and_closed(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with (
        serving(
            sqlite_url, tmp_path, HTTP_MAX_BODY_BYTES="100000", RESPONSE_CACHE_ENTRIES="0"
        ) as server,
        raw_connection(server) as stream,
    ):
        await stream.send(
            b"POST /graphql HTTP/1.1\r\nHost: catalog\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\n\r\n" + b'{"query": "' + b"a" * 200_000
        )
        assert status_of(await answer_then_close(stream, 5)) == 413


async def test_endless_trailers_of_a_chunked_body_are_refused(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with (
        serving(sqlite_url, tmp_path, HTTP_MAX_BODY_BYTES="100000") as server,
        raw_connection(server) as stream,
    ):
        # Trailers are header fields that come after the body, where no header cap looks.
        await stream.send(
            b"POST /graphql HTTP/1.1\r\nHost: catalog\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: "
        )
        with pytest.raises((anyio.BrokenResourceError, ConnectionResetError)):
            for _ in range(100):
                await stream.send(b"a" * 65_536)
                await anyio.sleep(0.01)


async def test_a_slow_but_timely_request_is_served(sqlite_url: str, tmp_path: Path) -> None:
    async with (
        serving(
            sqlite_url,
            tmp_path,
            HTTP_HEADER_TIMEOUT_SECONDS="2",
            HTTP_BODY_TIMEOUT_SECONDS="2",
        ) as server,
        raw_connection(server) as stream,
    ):
        body = json.dumps(sign(push("2121_edge_slow", BASE))).encode()
        await stream.send(b"POST /callbacks/tencent HTTP/1.1\r\nHost: catalog\r\n")
        await anyio.sleep(0.5)
        await stream.send(f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
        await anyio.sleep(0.5)
        await stream.send(body)
        assert status_of(await answer_then_close(stream, 5)) == 200


async def test_a_kept_alive_connection_may_rest_between_requests_longer_than_the_deadline(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with (
        serving(sqlite_url, tmp_path, HTTP_HEADER_TIMEOUT_SECONDS="1") as server,
        raw_connection(server) as stream,
    ):
        request = b"GET /healthz HTTP/1.1\r\nHost: catalog\r\n\r\n"
        # Pipelined requests are answered in order; the deadline runs from a request's first
        # byte, and uvicorn's keep-alive timeout (5 s) covers the rest between requests.
        await stream.send(request * 3)
        await anyio.sleep(1.5)
        await stream.send(request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        answers = await answer_then_close(stream, 5)
        assert answers.count(b"HTTP/1.1 200 OK") == 4, answers


async def test_half_open_connections_from_one_address_cannot_lock_out_health_and_callbacks(
    database_url: str, tmp_path: Path
) -> None:
    async with (
        serving(database_url, tmp_path, MAX_CONNECTIONS="20") as server,
        AsyncExitStack() as attack,
    ):
        refused = 0
        for number in range(30):
            stream = await attack.enter_async_context(raw_connection(server, ATTACKER))
            try:
                if number % 2:
                    await stream.send(UNFINISHED_HEADERS)
                else:
                    await stream.send(
                        b"POST /callbacks/tencent HTTP/1.1\r\nHost: catalog\r\n"
                        b"Content-Length: 1000\r\n\r\n{"
                    )
            except (anyio.BrokenResourceError, ConnectionResetError):
                refused += 1
        await anyio.sleep(0.5)

        async with httpx.AsyncClient(base_url=server.base_url, timeout=2) as http:
            started = time.monotonic()
            health = await http.get("/healthz")
            callback = await http.post(
                "/callbacks/tencent", json=sign(push("2121_edge_lockout", BASE))
            )
            elapsed = time.monotonic() - started
        assert health.status_code == 200, health.text
        assert callback.status_code == 200, callback.text
        assert elapsed < 1


async def test_connections_beyond_the_per_address_cap_are_refused_at_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with (
        serving(sqlite_url, tmp_path, MAX_CONNECTIONS_PER_CLIENT="3") as server,
        AsyncExitStack() as held,
    ):
        for _ in range(3):
            stream = await held.enter_async_context(raw_connection(server, ATTACKER))
            await stream.send(UNFINISHED_HEADERS)
        async with raw_connection(server, ATTACKER) as fourth:
            assert status_of(await answer_then_close(fourth, 2)) == 503
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            assert (await http.get("/healthz")).status_code == 200


def test_an_ipv6_client_is_counted_by_its_64_block_and_a_mapped_ipv4_one_by_its_address() -> None:
    assert client_of("2001:db8:1:2::1") == client_of("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_of("2001:db8:1:3::1") != client_of("2001:db8:1:2::1")
    assert client_of("::ffff:203.0.113.7") == client_of("203.0.113.7") == "203.0.113.7"


async def test_huge_unterminated_headers_do_not_grow_the_servers_memory(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with serving(sqlite_url, tmp_path) as server:
        before = resident_bytes(server)
        chunk = b"a" * 65_536
        # Each sends up to 16 MB of one header line, until the server closes it.
        per_connection = 16 * 1024 * 1024

        async def send_huge_header() -> None:
            async with raw_connection(server, ATTACKER) as stream:
                await stream.send(b"GET /healthz HTTP/1.1\r\nHost: catalog\r\nX-Huge: ")
                with anyio.move_on_after(10):
                    for _ in range(per_connection // len(chunk)):
                        try:
                            await stream.send(chunk)
                        except (anyio.BrokenResourceError, ConnectionResetError):
                            return

        async with anyio.create_task_group() as attack:
            for _ in range(8):
                attack.start_soon(send_huge_header)
        grown = resident_bytes(server) - before
        assert grown < 8 * 1024 * 1024, f"RSS grew by {grown / 1e6:.0f} MB"


async def test_a_websocket_subscription_outlives_the_header_and_body_deadlines(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with (
        serving(
            sqlite_url,
            tmp_path,
            LIVE_SILENCE_SECONDS="0",
            HTTP_HEADER_TIMEOUT_SECONDS="1",
            HTTP_BODY_TIMEOUT_SECONDS="1",
            MAX_CONNECTIONS_PER_CLIENT="1",
        ) as server,
        websockets.connect(server.websocket_url, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        query = "subscription { roomsChanged { room { stream { streamId } } } }"
        await ws.send(json.dumps({"id": "rooms", "type": "subscribe", "payload": {"query": query}}))
        await anyio.sleep(2)
        # The WebSocket no longer counts as one of this address's HTTP connections.
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            for number in range(3):
                event = sign(push(f"2121_edge_ws_{number}", BASE))
                answer = await http.post("/callbacks/tencent", json=event)
                assert answer.status_code == 200, answer.text
        with anyio.fail_after(5):
            while (change := json.loads(await ws.recv()))["type"] in ("ping", "pong"):
                pass
        assert change["type"] == "next", change
