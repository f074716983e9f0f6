"""Attack `replay-catalog serve` the ways issue 15 lists, timing /healthz and ingestion meanwhile.

    .venv/bin/python bench/attack.py [--seconds 6] [--only NAME ...] [--database-url URL]
                                     [--server-cwd DIR] [--set NAME=VALUE ...] [--repeat N]

Every phase gets a fresh `replay-catalog serve` (a fresh SQLite file, or a fresh database on
the PostgreSQL server that `--database-url` names) with CALLBACK_KEY set and a small catalog
loaded through the callback route. An attacker, in a process of its own and from source
addresses 127.0.0.2 and up, sets up its attack; while the attack is in force this process
measures for `--seconds`:

  * GET /healthz every 20 ms, each on a new connection: p50/p99/max and failures (any status
    but 200, or no answer within `--probe-timeout`; a failed probe counts at the time waited);
  * signed callbacks of new recording files from `--senders` senders, each callback on a new
    connection (as Tencent opens them), as fast as they are answered: callbacks/s and errors
    (each file a new replay in the room list, on `--streams` streams of their own);
  * the server's peak RSS (VmRSS in /proc/<pid>/status);
  * the CPU the server, this harness and the attacker used (from /proc/<pid>/stat).

Requests are made on plain asyncio streams (an HTTP client library cost as much CPU per
request as the server, and took it from the server on two cores). Before the attacker
starts, and again once it has stopped, the same server is measured as long with no
attacker: each attack row's ratio is taken against the mean of those two quiet rates, which
cancels the drift of this machine's rates between phases and the server's own over its life
(its streams grow by hundreds of files a second). An attack that harms only through
legitimate traffic (poison, through the room list's readers) has that traffic as the phase's
load, in force through all three measurements, so that its ratio is the attack's own effect;
control rows show what legitimate traffic of an attack's shape costs. Quiet phases (no
attacker) also run first and last. A row misses when /healthz p99 is 50 ms or more, a probe
failed, or ingestion falls below 0.8 of its quiet rate. The markdown table is printed at the
end; the exit status is 1 if any attack row (not a control) misses. With `--repeat N` each
attack runs N times, each on a fresh server, and is judged by the median of its ratios and
the worst of its /healthz figures (a summary table after the rows): one run's quiet rates
wander by as much as most attacks cost.
`--server-cwd` runs the server from another checkout (`python -m` puts the working directory
first on sys.path), e.g. a `git worktree` of an earlier commit.
"""

import argparse
import asyncio
import base64
import functools
import itertools
import json
import multiprocessing
import os
import queue
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from statistics import median
from types import SimpleNamespace
from typing import Any

import httpx
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

sys.path.insert(0, str(Path(__file__).parent))
from fanout import ROOMS_CHANGED
from history import database_for
from run import BASE, CLI, ROOM_LIST, catalog_events, free_port, recording, signed, start
from scale import proc_status_mb
from soak import SERVICE_SETTINGS, Tally, machine

# The targets of issue 15, for every row.
HEALTHZ_P99_TARGET_MS = 50
INGESTION_RATIO_TARGET = 0.8
PROBE_INTERVAL_SECONDS = 0.02
# Every attacker operation (connect, send, read) gives up after this long.
OPERATION_TIMEOUT_SECONDS = 5.0
ATTACKER = "127.0.0.2"
# Signed garbage comes from its own address, so that refusals of the unsigned kind
# (which may earn 429 for their address) do not stop it at the door.
SIGNED_ATTACKER = "127.0.0.3"
# The room list's readers, the legitimate load of the poison phase.
READERS = "127.0.0.4"
# Tencent's bounds on Unix times, as the callback adapter names them.
EARLIEST_TIME, LATEST_TIME = 946_684_800, 4_102_444_800
# The catalog's first stream is still live, so its broadcast leads the room list.
LIVE_STREAM = "2121_anchor00000"
# The measurement's recording files start a year before the catalog and follow each other
# 10 minutes apart (hours apart on each stream): some 200 days for 30,000 of them, never
# past the present. (Up to this commit they started 10 days after the catalog, an hour
# apart: past the present, and so quarantined, after the first 470 or so of a phase.)
INGEST_EPOCH = BASE - 365 * 86400
INT32_MAX = 2**31 - 1
# One connection per request: caps on connections (MAX_CONNECTIONS) apply to each.
# ---------------------------------------------------------------------------------------
# The attacker side: runs in a child process, counts what it got.


@dataclass
class Target:
    """What an attack sees: where to aim, what it got, and when it must stop."""

    base_url: str
    options: argparse.Namespace
    stop: Event
    set_up: Event
    got: Counter[str] = field(default_factory=Counter)

    @property
    def running(self) -> bool:
        return not self.stop.is_set()

    @property
    def host_and_port(self) -> tuple[str, int]:
        host, port = self.base_url.removeprefix("http://").split(":")
        return host, int(port)

    def ready(self) -> None:
        """The attack is in force: measuring starts now."""
        self.set_up.set()

    async def between_requests(self) -> None:
        """`--attack-interval`: an attacker at a steady rate rather than a flood."""
        if self.options.attack_interval:
            await asyncio.sleep(self.options.attack_interval)

    async def until_stopped(self) -> None:
        # The stop signal crosses processes (multiprocessing.Event): poll it.
        while self.running:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    def client(self, address: str = ATTACKER, **options: Any) -> httpx.AsyncClient:
        options.setdefault("timeout", OPERATION_TIMEOUT_SECONDS)
        transport = httpx.AsyncHTTPTransport(local_address=address)
        return httpx.AsyncClient(base_url=self.base_url, transport=transport, **options)

    async def connect(
        self, address: str = ATTACKER
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.host_and_port
        return await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=(address, 0)), OPERATION_TIMEOUT_SECONDS
        )


Attack = Callable[[Target], Awaitable[None]]


def attacker_process(
    attack: Attack, target: Target, limit_seconds: float, results: "queue.Queue[dict[str, int]]"
) -> None:
    """The child process: run the attack until told to stop (or its own deadline), report."""

    async def run() -> None:
        try:
            async with asyncio.timeout(limit_seconds):
                await attack(target)
        except TimeoutError:
            target.got["(attacker stopped at its deadline)"] += 1
        except Exception as failure:  # the row must still say what happened
            target.got[f"(attacker failed: {type(failure).__name__}: {failure})"[:120]] += 1
        results.put(dict(target.got))

    asyncio.run(run())


def failure_name(failure: BaseException) -> str:
    return type(failure).__name__


def graphql_outcome(response: httpx.Response) -> str:
    """`200 ok`, or the status and the first error message, its numbers and error ids blurred
    so that alike answers count together."""
    try:
        answer = response.json()
    except ValueError:
        return f"{response.status_code} not JSON"
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if not errors:
        return f"{response.status_code} ok"
    message = re.sub(r"\(id \w+\)", "(id …)", str(errors[0].get("message", "")))
    message = re.sub(r"\b\d+\b", "N", message)
    message = re.sub(r"'A\d+'", "'A…'", message)  # the attackers' operation names
    return f"{response.status_code} {message[:70]!r}"


async def send_documents(
    target: Target,
    documents: Callable[[int], str],
    methods: tuple[str, ...] = ("POST",),
) -> None:
    """Send GraphQL documents from `--attack-connections` connections as fast as answered."""
    connections = target.options.attack_connections

    async def one(first: int) -> None:
        async with target.client(timeout=target.options.attack_timeout) as http:
            for number in itertools.count(first, connections):
                if not target.running:
                    return
                method = methods[number % len(methods)]
                document = documents(number)
                try:
                    if method == "GET":
                        response = await http.get("/graphql", params={"query": document})
                    else:
                        response = await http.post("/graphql", json={"query": document})
                    target.got[f"{method} {graphql_outcome(response)}"] += 1
                except httpx.HTTPError as failure:
                    target.got[f"{method} {failure_name(failure)}"] += 1
                await target.between_requests()

    target.ready()
    await asyncio.gather(*(one(first) for first in range(connections)))


def doubling_fragments(levels: int, on: str, leaf: str) -> str:
    """F0 selects `leaf`; each F(i) spreads F(i-1) twice: 2**levels leaves from a small text."""
    fragments = [f"fragment F0 on {on} {{ {leaf} }}"]
    fragments += [
        f"fragment F{level} on {on} {{ ...F{level - 1} ...F{level - 1} }}"
        for level in range(1, levels + 1)
    ]
    return "\n".join(fragments)


def trivial_query(number: int) -> str:
    """The cheapest document, new each time: what any flood of requests costs."""
    return f"query A{number} {{ __typename }}"


def fragment_bomb(levels: int) -> Callable[[int], str]:
    """A new operation name each time, so that no cache of documents can answer it."""
    fragments = doubling_fragments(levels, "Query", "__typename")
    return lambda number: f"query A{number} {{ ...F{levels} }}\n{fragments}"


def fragment_variants(number: int) -> str:
    """Aliases inside doubling fragments, doubling fragments under an alias, deep inline
    fragments: one after another."""
    variant = number % 3
    if variant == 0:
        fragments = doubling_fragments(20, "Query", "a: __typename b: __typename c: __typename")
        return f"query A{number} {{ ...F20 }}\n{fragments}"
    if variant == 1:
        fragments = doubling_fragments(20, "Room", "k: kind")
        return (
            f"query A{number} {{ top: rooms(first: 1) {{ edges {{ node {{ ...F20 }} }} }} }}\n"
            f"{fragments}"
        )
    # graphql-core's parser refuses more than 200 levels of nesting by itself.
    return f"query A{number} {{ " + "... on Query { " * 150 + "__typename" + " }" * 150 + " }"


async def poison_callbacks(target: Target) -> None:
    """Signed files whose durations exceed GraphQL's Int: the attack harms through the room
    list's readers (answers with errors were never cached), who run as the phase's load."""
    files = [
        {**recording(LIVE_STREAM, "poison-duration", BASE, BASE + 3600, "mp4"),
         "duration": INT32_MAX},
        recording(LIVE_STREAM, "poison-span", EARLIEST_TIME, LATEST_TIME - 1, "mp4"),
    ]  # fmt: skip
    async with target.client(SIGNED_ATTACKER) as http:
        for event in files:
            try:
                response = await http.post("/callbacks/tencent", json=signed(event))
                target.got[f"poison callback {response.status_code}"] += 1
            except httpx.HTTPError as failure:
                target.got[f"poison callback {failure_name(failure)}"] += 1
    target.ready()
    await target.until_stopped()


async def room_list_readers(target: Target) -> None:
    """`--readers` readers of the room list, each every `--reader-interval`, counting
    answers with errors (legitimate traffic: an app's launches)."""

    async def reader() -> None:
        async with target.client(READERS) as http:
            while target.running:
                try:
                    response = await http.post("/graphql", json={"query": ROOM_LIST})
                    target.got[f"room list {graphql_outcome(response)}"] += 1
                except httpx.HTTPError as failure:
                    target.got[f"room list {failure_name(failure)}"] += 1
                await asyncio.sleep(target.options.reader_interval)

    target.ready()
    await asyncio.gather(*(reader() for _ in range(target.options.readers)))


class RawSubscriber:
    """A graphql-transport-ws client that parses frames (websockets' sans-I/O protocol) only
    while it subscribes; afterwards it counts `next` messages in the raw bytes, so that the
    attacker spends almost no CPU on what the server spends a lot on."""

    def __init__(self, target: Target, address: str, subscriptions: int) -> None:
        self.target = target
        self.address = address
        self.subscriptions = subscriptions
        self.settled = False  # subscribed, or refused, or failed
        host, port = target.host_and_port
        self.protocol = ClientProtocol(
            parse_uri(f"ws://{host}:{port}/graphql"),
            subprotocols=[Subprotocol("graphql-transport-ws")],
        )

    async def run(self, steady: asyncio.Event) -> None:
        got = self.target.got
        try:
            reader, writer = await self.target.connect(self.address)
        except (OSError, TimeoutError) as failure:
            got[f"socket not connected ({failure_name(failure)})"] += 1
            self.settled = True
            return
        try:
            subscribed = await self.subscribe(reader, writer)
            self.settled = True
            if subscribed:
                await self.watch(reader, writer, steady)
        except (OSError, TimeoutError) as failure:
            got[f"socket failed ({failure_name(failure)})"] += 1
        finally:
            self.settled = True
            writer.close()

    async def frames(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float
    ) -> list[Any]:
        """Read once (waiting at most `seconds`) and return the events it completed."""
        chunk = await asyncio.wait_for(reader.read(1 << 16), seconds)
        if chunk:
            self.protocol.receive_data(chunk)
        else:
            self.protocol.receive_eof()
        await self.flush(writer)  # pongs, close replies
        return list(self.protocol.events_received())

    async def flush(self, writer: asyncio.StreamWriter) -> None:
        for chunk in self.protocol.data_to_send():
            writer.write(chunk)
        await asyncio.wait_for(writer.drain(), OPERATION_TIMEOUT_SECONDS)

    def closed(self) -> bool:
        """Whether the server closed the socket (counted with its close code)."""
        if self.protocol.state is State.OPEN:
            return False
        code = self.protocol.close_rcvd.code if self.protocol.close_rcvd else "none"
        self.target.got[f"socket closed by the server (code {code})"] += 1
        return True

    def count_message(self, frame: Frame) -> None:
        if frame.opcode is not Opcode.TEXT:
            return
        kind = json.loads(bytes(frame.data)).get("type")
        names = {"next": "messages", "error": "subscriptions refused (error)",
                 "complete": "subscriptions ended or refused (complete)"}  # fmt: skip
        self.target.got[names.get(kind, f"message {kind}")] += 1

    async def subscribe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Open the WebSocket, init, subscribe; False if the server refused the socket."""
        self.protocol.send_request(self.protocol.connect())
        await self.flush(writer)
        events = await self.frames(reader, writer, OPERATION_TIMEOUT_SECONDS)
        handshake = next((event for event in events if isinstance(event, Response)), None)
        if handshake is None or self.protocol.handshake_exc is not None:
            status = handshake.status_code if handshake is not None else "no answer"
            self.target.got[f"socket refused (HTTP {status})"] += 1
            return False
        self.protocol.send_text(b'{"type":"connection_init"}')
        await self.flush(writer)
        acknowledged = False
        while not acknowledged:
            for event in await self.frames(reader, writer, OPERATION_TIMEOUT_SECONDS):
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    acknowledged |= json.loads(bytes(event.data)).get("type") == "connection_ack"
            if not acknowledged and self.closed():
                return False
        for number in range(self.subscriptions):
            message = {"id": f"s{number}", "type": "subscribe", "payload": {"query": ROOMS_CHANGED}}
            self.protocol.send_text(json.dumps(message).encode())
        await self.flush(writer)
        self.target.got["subscriptions sent"] += self.subscriptions
        return True

    async def watch(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, steady: asyncio.Event
    ) -> None:
        while not steady.is_set():  # refusals come now: parse every frame
            try:
                events = await self.frames(reader, writer, 0.2)
            except TimeoutError:
                continue
            for event in events:
                if isinstance(event, Frame):
                    self.count_message(event)
            if self.closed():
                return
        while self.target.running:  # steady: count, do not parse
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 16), 0.2)
            except TimeoutError:
                continue
            if not chunk:
                self.target.got["socket closed by the server while measured"] += 1
                return
            for marker, name in ((b'"next"', "messages"), (b'"error"', "subscription errors")):
                if found := chunk.count(marker):
                    self.target.got[name] += found


async def server_subscriptions(target: Target) -> float | None:
    """The server's own count of open subscriptions (/metrics), if it says."""
    try:  # from the operator's address: per-address caps must not refuse it
        async with target.client("127.0.0.1") as http:
            page = (await http.get("/metrics")).text
    except httpx.HTTPError:
        return None
    found = re.search(r"^replay_catalog_subscriptions (\S+)$", page, re.MULTILINE)
    return float(found.group(1)) if found else None


async def subscriptions(target: Target, sockets: int, each: int, addresses: int) -> None:
    """`sockets` WebSockets with `each` roomsChanged subscriptions, over `addresses` sources."""
    steady = asyncio.Event()
    subscribers = [
        RawSubscriber(target, f"127.0.0.{2 + index % addresses}", each) for index in range(sockets)
    ]
    running = [asyncio.create_task(subscriber.run(steady)) for subscriber in subscribers]
    # Set up once every socket has subscribed (or was refused) and the server's count has
    # reached every subscription or stopped moving.
    deadline = time.monotonic() + target.options.setup_timeout
    last, still_since = None, time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        count = await server_subscriptions(target)
        if count != last:
            last, still_since = count, time.monotonic()
        settled = all(subscriber.settled for subscriber in subscribers)
        if settled and (count == sockets * each or time.monotonic() - still_since > 1.5):
            break
    if last is None:
        target.got["subscriptions the server counts: unknown (/metrics did not answer)"] = 1
    else:
        target.got["subscriptions the server counts"] = int(last)
    steady.set()
    target.ready()
    await target.until_stopped()
    await asyncio.wait(running, timeout=1)
    for task in running:
        task.cancel()


def garbage_bodies() -> tuple[dict[str, tuple[str, bytes]], Callable[[int], dict[str, bytes]]]:
    """Unsigned garbage (path, body) by name, and signed garbage made new for each round."""
    nested = "[" * 1024 + "]" * 1024  # 2 KB of brackets
    unsigned = {
        "stream_id object": ("/callbacks/tencent", json.dumps(
            {"event_type": 100, "stream_id": {"a": 1}, "file_id": "g"}).encode()),
        "stream_id 3,000 chars": ("/callbacks/tencent", json.dumps(
            {"event_type": 1, "stream_id": "s" * 3000, "event_time": BASE}).encode()),
        "channel_id list": ("/callbacks/tencent", json.dumps(
            {"event_type": 1, "channel_id": ["2121_a"], "event_time": BASE}).encode()),
        "2 KB of brackets": ("/callbacks/tencent", nested.encode()),
        "GraphQL nested variables": ("/graphql", (
            '{"query": "{ __typename }", "variables": {"v": ' + nested + "}}").encode()),
    }  # fmt: skip

    def signed_round(number: int) -> dict[str, bytes]:
        stream = f"2121_garbage{number:06d}"
        push = {"event_type": 1, "stream_id": stream, "event_time": BASE, "sequence": "g"}
        file = recording(stream, f"garbage{number}", BASE, BASE + 60, "mp4")
        return {
            "event_type 2**70": json.dumps(signed({**push, "event_type": 2**70})).encode(),
            "event_type 2**31": json.dumps(signed({**push, "event_type": 2**31})).encode(),
            # json.dumps writes a lone surrogate as the escape \ud800, as an attacker would.
            "lone surrogate": json.dumps(signed({**push, "stream_id": stream + "\ud800"})).encode(),
            "NaN file_size": json.dumps(signed({**file, "file_size": float("nan")})).encode(),
        }

    return unsigned, signed_round


async def garbage_callbacks(target: Target) -> None:
    """Unsigned bodies of wrong shapes from one address, signed out-of-range ones from another."""
    unsigned, signed_round = garbage_bodies()
    headers = {"content-type": "application/json"}

    async def send_unsigned() -> None:
        async with target.client() as http:
            for name in itertools.cycle(unsigned):
                if not target.running:
                    return
                path, body = unsigned[name]
                try:
                    response = await http.post(path, content=body, headers=headers)
                    target.got[f"{name}: {response.status_code}"] += 1
                except httpx.HTTPError as failure:
                    target.got[f"{name}: {failure_name(failure)}"] += 1
                await target.between_requests()

    async def send_signed() -> None:
        async with target.client(SIGNED_ATTACKER) as http:
            for number in itertools.count():
                for name, body in signed_round(number).items():
                    if not target.running:
                        return
                    try:
                        response = await http.post(
                            "/callbacks/tencent", content=body, headers=headers
                        )
                        target.got[f"signed {name}: {response.status_code}"] += 1
                    except httpx.HTTPError as failure:
                        target.got[f"signed {name}: {failure_name(failure)}"] += 1
                    await target.between_requests()

    target.ready()
    await asyncio.gather(send_unsigned(), send_signed())


async def first_answer(reader: asyncio.StreamReader, target: Target) -> str:
    """What the server did with a connection: its status line, a close, or nothing."""
    began = time.monotonic()
    while target.running:
        try:
            chunk = await asyncio.wait_for(reader.read(256), 0.2)
        except TimeoutError:
            continue
        except OSError as failure:
            return f"{failure_name(failure)} after {time.monotonic() - began:.0f} s"
        if not chunk:
            return f"closed by the server after {time.monotonic() - began:.0f} s"
        status = chunk.split(b"\r\n", 1)[0].decode(errors="replace")
        return f"answered {status.removeprefix('HTTP/1.1 ')[:24]!r}"
    return "still open at the end"


async def large_headers(target: Target) -> None:
    """Connections each sending one unterminated header of `--header-megabytes` MB."""
    connections = []
    for _ in range(8):
        try:
            connections.append(await target.connect())
        except (OSError, TimeoutError) as failure:
            target.got[f"not connected ({failure_name(failure)})"] += 1
    target.ready()
    chunk = b"a" * (1 << 16)
    total = target.options.header_megabytes << 20

    async def stream_header(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answer = asyncio.create_task(first_answer(reader, target))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: attack\r\nX-Large: ")
        sent = 0
        try:
            while sent < total and target.running and not answer.done():
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), OPERATION_TIMEOUT_SECONDS)
                sent += len(chunk)
        except TimeoutError:
            target.got["server stopped reading"] += 1
        except OSError as failure:
            target.got[f"send failed ({failure_name(failure)})"] += 1
        target.got["MB sent (all connections together)"] += sent >> 20
        if sent >= total:
            target.got[f"connections that sent all {total >> 20} MB"] += 1
        target.got[await answer] += 1
        writer.close()

    await asyncio.gather(*(stream_header(reader, writer) for reader, writer in connections))


async def half_open_requests(target: Target) -> None:
    """Requests whose headers never end, and requests whose announced body never comes."""
    unfinished_headers = b"GET /healthz HTTP/1.1\r\nHost: attack\r\n"
    missing_body = (
        b"POST /callbacks/tencent HTTP/1.1\r\nHost: attack\r\n"
        b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"event'
    )
    started = []
    for number in range(30):
        kind, request = (
            ("headers never finished", unfinished_headers)
            if number % 2
            else ("body never sent", missing_body)
        )
        try:
            reader, writer = await target.connect()
            writer.write(request)
            await asyncio.wait_for(writer.drain(), OPERATION_TIMEOUT_SECONDS)
        except (OSError, TimeoutError) as failure:
            target.got[f"{kind}: not connected ({failure_name(failure)})"] += 1
            continue
        started.append((kind, reader, writer))
    target.ready()

    async def hold(kind: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target.got[f"{kind}: {await first_answer(reader, target)}"] += 1
        writer.close()

    await asyncio.gather(*(hold(*connection) for connection in started))


def cursor_of(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def huge_integers(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | list):
        return value
    return [huge_integers(item) for item in value] if isinstance(value, list) else 2**70


async def smaller_ones(target: Target) -> None:
    """Malformed cursors, a far DateTime, a negative fileSize, a replay with a bad part host."""
    async with target.client(SIGNED_ATTACKER) as http:
        page = (await http.post("/graphql", json={
            "query": "{ rooms(first: 2) { pageInfo { endCursor } } }"})).json()  # fmt: skip
        real = page["data"]["rooms"]["pageInfo"]["endCursor"]
        decoded = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))
        stream = "2121_badhost"
        events = [
            {"event_type": 1, "stream_id": stream, "event_time": BASE, "sequence": "b"},
            {**recording(stream, "badhost-1", BASE, BASE + 60, "hls"),
             "video_url": "http://a..vod2.myqcloud.com/x.m3u8"},
            {**recording(stream, "badhost-2", BASE + 60, BASE + 120, "hls"),
             "video_url": "http://a..vod2.myqcloud.com/y.m3u8"},
            {**recording(LIVE_STREAM, "negative-size", BASE, BASE + 60, "mp4"),
             "file_size": -12345},
        ]  # fmt: skip
        for event in events:
            response = await http.post("/callbacks/tencent", json=signed(event))
            target.got[f"setup callbacks {response.status_code}"] += 1
        file_query = (
            "query($f: String!) { recordingFile(fileId: $f) { fileSize broadcast { id } } }"
        )
        shown = (await http.post("/graphql", json={
            "query": file_query, "variables": {"f": "negative-size"}})).json()  # fmt: skip
        target.got[
            f"fileSize -12345 shown as {(shown.get('data') or {}).get('recordingFile')}"
        ] += 1
        badhost = (await http.post("/graphql", json={
            "query": file_query, "variables": {"f": "badhost-1"}})).json()  # fmt: skip
        broadcast = ((badhost.get("data") or {}).get("recordingFile") or {}).get("broadcast") or {}
    rooms_after = "query($c: String) { rooms(first: 2, after: $c) { edges { cursor } } }"
    files_after = (
        "query($t: DateTime) { recordingFiles(first: 2, startedAfter: $t) { edges { cursor } } }"
    )
    deep = base64.urlsafe_b64encode(("[" * 5000 + "]" * 5000).encode()).decode()
    graphql_requests = {
        "cursor of deep nesting": (rooms_after, {"c": deep}),
        "cursor with 2**70": (rooms_after, {"c": cursor_of(huge_integers(decoded))}),
        "DateTime 9999-12-31T23:59:59-23:59": (files_after, {"t": "9999-12-31T23:59:59-23:59"}),
    }  # fmt: skip
    target.ready()
    async with target.client() as http:
        for name in itertools.cycle([*graphql_requests, "replay of bad part hosts"]):
            if not target.running:
                return
            try:
                if name in graphql_requests:
                    query, variables = graphql_requests[name]
                    response = await http.post(
                        "/graphql", json={"query": query, "variables": variables}
                    )
                    target.got[f"{name}: {graphql_outcome(response)}"] += 1
                elif "id" in broadcast:
                    response = await http.get(f"/replays/{broadcast['id']}.m3u8")
                    target.got[f"{name}: {response.status_code}"] += 1
                else:
                    target.got[f"{name}: no broadcast found to ask for"] += 1
                    await asyncio.sleep(0.1)
            except httpx.HTTPError as failure:
                target.got[f"{name}: {failure_name(failure)}"] += 1
            await target.between_requests()


# ---------------------------------------------------------------------------------------
# The measuring side.


@dataclass
class Phase:
    name: str
    title: str
    attack: Attack | None
    settings: dict[str, str] = field(default_factory=dict)
    # Legitimate traffic the attack needs to do harm (the poison phase: room-list
    # readers): in force through the phase, the quiet measurements before and after the
    # attack included, so that the ratio is the attack's own effect.
    load: Attack | None = None
    # A control (what legitimate traffic of the same shape costs), not an attack: shown
    # with its verdict, but the exit status is the attacks'.
    control: bool = False


def phases() -> list[Phase]:
    # The harness does not answer WebSocket pings while it counts raw bytes.
    quiet_sockets = {"WEBSOCKET_PING_INTERVAL_SECONDS": "600"}
    edge = {"MAX_CONNECTIONS": "20"}
    return [
        Phase("flood", "1. control: the same connections flooding `{ __typename }`", flood,
              control=True),
        Phase("fragments-post", "1. doubling fragments, 20 levels, POST", fragment_bomb_20_post),
        Phase("fragments-get", "1. doubling fragments, 20 levels, GET", fragment_bomb_20_get),
        Phase("fragments-40", "1. doubling fragments, 40 levels, GET and POST", fragment_bomb_40),
        Phase("fragment-variants", "1. aliases in / fragments under aliases / 150 inline levels",
              fragment_variant_attack),
        Phase("readers", "2. control: room-list readers, no poison", room_list_readers,
              control=True),
        Phase("poison", "2. poison callbacks (duration 2^31-1, 100-year span), readers "
              "throughout", poison_callbacks, load=room_list_readers),
        Phase("subscriptions-400", "3. 4 WebSockets x 100 roomsChanged (one address)",
              functools.partial(subscriptions, sockets=4, each=100, addresses=1), quiet_sockets),
        Phase("subscriptions-2000", "3. 20 WebSockets x 100 roomsChanged (20 addresses)",
              functools.partial(subscriptions, sockets=20, each=100, addresses=20), quiet_sockets),
        Phase("garbage", "4. garbage callbacks (unsigned shapes, signed out of range)",
              garbage_callbacks),
        Phase("large-headers", "5. 8 unterminated large headers (MAX_CONNECTIONS=20)",
              large_headers, edge),
        Phase("half-open", "5. 30 half-open requests (MAX_CONNECTIONS=20)",
              half_open_requests, edge),
        Phase("smaller", "6. bad cursors, far DateTime, bad part hosts", smaller_ones),
    ]  # fmt: skip


async def flood(target: Target) -> None:
    await send_documents(target, trivial_query, ("POST",))


async def fragment_bomb_20_post(target: Target) -> None:
    await send_documents(target, fragment_bomb(20), ("POST",))


async def fragment_bomb_20_get(target: Target) -> None:
    await send_documents(target, fragment_bomb(20), ("GET",))


async def fragment_bomb_40(target: Target) -> None:
    await send_documents(target, fragment_bomb(40), ("GET", "POST"))


async def fragment_variant_attack(target: Target) -> None:
    await send_documents(target, fragment_variants, ("POST", "GET"))


@dataclass
class Measurement:
    seconds: float
    healthz: Tally
    callbacks: Tally  # the errors; `ingested` counts the 200s within the phase
    ingested: int
    rss_peak_mb: float
    # CPU seconds used during the phase: the server (all its threads), this harness,
    # and the attacker's process (None when there is none).
    cpu_seconds: tuple[float, float, float | None] = (0.0, 0.0, None)

    @property
    def callbacks_per_second(self) -> float:
        return self.ingested / self.seconds

    def cpu_cell(self) -> str:
        """Each process's CPU during the phase, in % of one core."""
        server, harness, attacker = (
            "-" if used is None else f"{100 * used / self.seconds:.0f}" for used in self.cpu_seconds
        )
        return f"{server} / {harness} / {attacker}"


@dataclass
class Row:
    phase: Phase
    measured: Measurement
    rss_before_mb: float
    got: dict[str, int]
    server_after: str
    setup_seconds: float
    # The same server measured for as long right before the attacker started (attack
    # phases only): the rate its ratio is taken against, so that drift between phases
    # (this machine's rates wander by a third within minutes) does not count.
    quiet: Measurement | None = None
    # And as long again right after the attacker stopped: a server's own rate drifts over
    # its life (its streams grow by hundreds of files a second), so the ratio is taken
    # against the mean of the two.
    quiet_after: Measurement | None = None

    @property
    def callbacks_per_second(self) -> float:
        return self.measured.callbacks_per_second

    def ratio(self, baseline: float) -> float:
        """Callbacks/s against the phase's own quiet rate, the mean of before and after
        the attack (the quiet phases' `baseline` for the quiet phases themselves)."""
        reference = baseline
        if self.quiet is not None:
            after = self.quiet_after or self.quiet
            reference = (self.quiet.callbacks_per_second + after.callbacks_per_second) / 2
        return self.callbacks_per_second / reference if reference else 0.0


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user and system, every thread) a process has used; None if gone."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def used_since(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


class NoAnswer(Exception):
    """The server closed the connection, or sent what is not an HTTP answer."""


async def plain_request(
    base_url: str, method: str, path: str, body: bytes, seconds: float
) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a new connection, as Tencent's senders make them: the
    status and the body. Plain asyncio streams: an HTTP client library spent as much CPU
    per request as the server did, and took that share of the two cores from it."""
    host, port = base_url.removeprefix("http://").split(":")
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )

    async def exchange() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(head.encode() + body)
            answer = await reader.read()  # Connection: close: the server ends it
        finally:
            writer.close()
        status_line, _, rest = answer.partition(b"\r\n")
        parts = status_line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise NoAnswer(f"not an HTTP answer: {answer[:40]!r}")
        return int(parts[1]), rest.partition(b"\r\n\r\n")[2]

    return await asyncio.wait_for(exchange(), seconds)


def rss_mb(pid: int) -> float:
    try:
        return proc_status_mb(pid, "VmRSS")
    except (OSError, AssertionError):  # gone, or a zombie without VmRSS
        return 0.0


async def measure(
    base_url: str,
    pid: int,
    args: argparse.Namespace,
    files: Iterator[int],
    attacker_pid: int | None = None,
) -> Measurement:
    """Probe /healthz and send callbacks for `--seconds`; every request is bounded in time.
    `files` numbers the recording files sent, through all of a server's measurements (a
    file whose times another already had would join that one's broadcast, at a cost that
    grows with it)."""
    healthz, callbacks = Tally(), Tally()
    cpu_before = (cpu_seconds(pid), time.process_time(), cpu_seconds(attacker_pid))
    peak = [rss_mb(pid)]
    ingested = 0
    began = time.monotonic()
    deadline = began + args.seconds

    async def probe() -> None:
        tick = began
        while time.monotonic() < deadline:
            healthz.requests += 1
            asked = time.perf_counter()
            try:
                status, _ = await plain_request(
                    base_url, "GET", "/healthz", b"", args.probe_timeout
                )
                why = None if status == 200 else f"status {status}"
            except (OSError, TimeoutError, NoAnswer) as failure:
                why = failure_name(failure)
            healthz.latencies.append(time.perf_counter() - asked)
            if why is not None:
                healthz.fail(why)
            tick = max(tick + PROBE_INTERVAL_SECONDS, time.monotonic())
            await asyncio.sleep(tick - time.monotonic())

    async def send() -> None:
        nonlocal ingested
        while time.monotonic() < deadline:
            number = next(files)
            # Each file a broadcast of its own (hours apart on its stream), on streams
            # of their own: what a callback costs stays the same through a run (a file
            # that joins a broadcast costs more the more files that one holds already).
            start_time = INGEST_EPOCH + number * 600
            event = recording(f"2121_ingest{number % args.streams:05d}",
                              f"ingest{number}-{uuid.uuid4().hex[:6]}",
                              start_time, start_time + 59, "mp4")  # fmt: skip
            callbacks.requests += 1
            body = json.dumps(signed(event)).encode()
            try:
                status, answer = await plain_request(
                    base_url, "POST", "/callbacks/tencent", body, args.callback_timeout
                )
            except (OSError, TimeoutError, NoAnswer) as failure:
                callbacks.fail(failure_name(failure))
                continue
            except asyncio.CancelledError:
                callbacks.fail("no answer by the end of the phase")
                raise
            if status != 200:
                callbacks.fail(f"status {status} {answer[:80].decode(errors='replace')}")
            elif time.monotonic() <= deadline:
                ingested += 1

    async def sample_rss() -> None:
        while time.monotonic() < deadline:
            peak.append(rss_mb(pid))
            await asyncio.sleep(0.2)

    cpu_after: tuple[float | None, float, float | None] = (None, 0.0, None)

    async def sample_cpu() -> None:
        nonlocal cpu_after
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        cpu_after = (cpu_seconds(pid), time.process_time(), cpu_seconds(attacker_pid))

    tasks = [asyncio.create_task(probe()), asyncio.create_task(sample_rss())]
    tasks.append(asyncio.create_task(sample_cpu()))
    tasks += [asyncio.create_task(send()) for _ in range(args.senders)]
    # Probes time out by themselves; callbacks still unanswered by then are errors.
    _, pending = await asyncio.wait(tasks, timeout=args.seconds + args.probe_timeout + 0.5)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    server, harness, attacker = (
        used_since(before, after) for before, after in zip(cpu_before, cpu_after, strict=True)
    )
    cpu = (server or 0.0, harness or 0.0, attacker)
    return Measurement(args.seconds, healthz, callbacks, ingested, max(peak), cpu)


def load_catalog(base_url: str, streams: int) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for event in catalog_events(streams):
            response = http.post("/callbacks/tencent", json=signed(event))
            assert response.status_code == 200, response.text


def server_state(process: Any, base_url: str, log: Path) -> str:
    """After the attack: still answering? And how many tracebacks it logged."""
    tracebacks = log.read_text(errors="replace").count("Traceback")
    logged = f"{tracebacks} tracebacks in its log" if tracebacks else "no tracebacks"
    if process.poll() is not None:
        return f"died (exit {process.returncode}); {logged}"
    try:
        status = httpx.get(f"{base_url}/healthz", timeout=2).status_code
        metrics = httpx.get(f"{base_url}/metrics", timeout=2).text
    except httpx.HTTPError as failure:
        return f"not answering /healthz ({failure_name(failure)}); {logged}"
    return f"answers /healthz {status}; {logged}; {callback_outcomes(metrics)}"


def callback_outcomes(metrics: str) -> str:
    """What the server did with the callbacks it was sent (catalog, measurement, attacker),
    by its own count (/metrics): the measurement's are all meant to be applied."""
    outcomes: Counter[str] = Counter()
    pattern = r'^replay_catalog_callbacks_total\{[^}]*outcome="(\w+)"[^}]*\} (\S+)$'
    for outcome, value in re.findall(pattern, metrics, re.MULTILINE):
        outcomes[outcome] += int(float(value))
    return "callbacks " + (", ".join(f"{name} {n}" for name, n in sorted(outcomes.items())) or "?")


def last_line(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines()
    return lines[-1][:160] if lines else "(empty log)"


def unmeasured(phase: Phase, args: argparse.Namespace, why: str) -> Row:
    """The row of a phase that could not be measured: it misses every target."""
    nothing = Measurement(args.seconds, Tally(), Tally(), 0, 0.0)
    return Row(phase, nothing, 0.0, {}, why, 0.0)


class Child:
    """An attack (or a phase's load) run in a process of its own until stopped; started
    once it says it is in force (or `--setup-timeout` passed, noted in `got`)."""

    def __init__(
        self,
        attack: Attack,
        base_url: str,
        args: argparse.Namespace,
        measurements: int,
        got: dict[str, int],
        role: str,
    ) -> None:
        context = multiprocessing.get_context("fork")
        self.args = args
        self.role = role
        self.stopping, set_up = context.Event(), context.Event()
        self.results: queue.Queue[dict[str, int]] = context.Queue()  # type: ignore[assignment]
        target = Target(base_url, args, self.stopping, set_up)
        limit = args.setup_timeout + measurements * args.seconds + args.probe_timeout + 10
        self.process = context.Process(
            target=attacker_process, args=(attack, target, limit, self.results), daemon=True
        )
        self.process.start()
        if not set_up.wait(args.setup_timeout):
            got[f"({role} not set up in time)"] = 1

    def stop(self, got: dict[str, int], prefix: str = "") -> None:
        """Stop it, and add what it got to `got` (each name after `prefix`)."""
        self.stopping.set()
        try:
            reported = self.results.get(timeout=self.args.probe_timeout + 10)
            got.update({f"{prefix}{what}": count for what, count in reported.items()})
        except queue.Empty:
            got[f"({self.role} did not report)"] = 1
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


def run_phase(phase: Phase, args: argparse.Namespace, work: Path, extra: dict[str, str]) -> Row:
    folder = Path(tempfile.mkdtemp(prefix=f"{phase.name}-", dir=work))  # log, SQLite file
    log = folder / "serve.log"
    # history.py's fresh database: a SQLite file in the phase's folder, or a PostgreSQL one.
    where = SimpleNamespace(database="postgres" if args.database_url else "sqlite",
                            postgres=args.database_url)  # fmt: skip
    with database_for(where, folder) as database_url:  # type: ignore[arg-type]
        env = {**os.environ, **SERVICE_SETTINGS, "DATABASE_URL": database_url,
               **phase.settings, **extra}  # fmt: skip
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        try:
            with log.open("wb") as log_file:
                process = start([*CLI, "serve", "--port", str(port)], env, port, log=log_file)
        except SystemExit:  # start() gave up on the port
            return unmeasured(phase, args, f"did not start: {last_line(log)}")
        try:
            try:
                load_catalog(base_url, args.streams)
            except (AssertionError, httpx.HTTPError) as failure:
                return unmeasured(phase, args, f"catalog not loaded: {str(failure)[:100]}")
            time.sleep(0.5)  # let the catalog's changes settle
            rss_before = rss_mb(process.pid)
            got: dict[str, int] = {}
            setup_seconds, attacker, quiet, quiet_after = 0.0, None, None, None
            files = itertools.count()
            load = None
            if phase.load is not None:  # through all three measurements
                load = Child(phase.load, base_url, args, 3, got, "load")
            if phase.attack is not None:
                quiet = asyncio.run(measure(base_url, process.pid, args, files))
                began = time.monotonic()
                attacker = Child(phase.attack, base_url, args, 1, got, "attacker")
                setup_seconds = time.monotonic() - began
            attacker_pid = None if attacker is None else attacker.process.pid
            measured = asyncio.run(measure(base_url, process.pid, args, files, attacker_pid))
            if attacker is not None:
                attacker.stop(got)
                quiet_after = asyncio.run(measure(base_url, process.pid, args, files))
            if load is not None:
                load.stop(got, "(load) ")
            return Row(phase, measured, rss_before, got, server_state(process, base_url, log),
                       setup_seconds, quiet, quiet_after)  # fmt: skip
        finally:
            process.kill()  # a frozen server ignores SIGTERM
            process.wait()


def healthz_cell(tally: Tally) -> str:
    slowest = max(tally.latencies, default=float("nan")) * 1000
    return f"{tally.percentile(0.5):.1f} / {tally.percentile(0.99):.1f} / {slowest:.0f}"


def summary(row: Row) -> str:
    got = [f"{what} x{count}" for what, count in sorted(row.got.items())]
    if row.setup_seconds > 1:
        got.append(f"(set up in {row.setup_seconds:.0f} s)")
    return "; ".join(got) or "—"


def callbacks_cell(row: Row) -> str:
    """Callbacks/s, between the phase's own quiet rates if it has them."""
    if row.quiet is None:
        return f"{row.callbacks_per_second:.1f}"
    cell = f"{row.quiet.callbacks_per_second:.1f} → {row.callbacks_per_second:.1f}"
    if row.quiet_after is not None:
        cell += f" → {row.quiet_after.callbacks_per_second:.1f}"
    return cell


def misses(row: Row, baseline: float) -> list[str]:
    """Why a row misses the targets (nothing: it meets them)."""
    healthz = row.measured.healthz
    return missed_targets(healthz.percentile(0.99), healthz.errors, row.ratio(baseline))


def missed_targets(healthz_p99: float, healthz_failures: int, ratio: float) -> list[str]:
    """Which targets these figures miss (nothing: they meet them)."""
    reasons = []
    if not healthz_p99 < HEALTHZ_P99_TARGET_MS:
        reasons.append("healthz p99")
    if healthz_failures:
        reasons.append("healthz failures")
    if ratio < INGESTION_RATIO_TARGET:
        reasons.append("ingestion")
    return reasons


def verdict_cell(phase: Phase, missed: list[str]) -> str:
    """`yes` or `NO: ` and why, marked `(control)` on a control's row."""
    verdict = "yes" if not missed else "NO: " + ", ".join(missed)
    return f"(control) {verdict}" if phase.control else verdict


def table(rows: list[Row], baseline: float) -> list[str]:
    lines = [
        "| attack | healthz p50 / p99 / max ms | healthz failures "
        "| callbacks/s (quiet → attacked → quiet) | ratio to quiet "
        "| callback errors | CPU % of a core: server / harness / attacker "
        "| server RSS MB (before → peak) | what the attacker got | server after "
        "| meets targets |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        missed = misses(row, baseline)
        healthz, callbacks = row.measured.healthz, row.measured.callbacks
        cells = [
            row.phase.title,
            healthz_cell(healthz),
            f"{healthz.errors} of {healthz.requests}",
            callbacks_cell(row),
            f"{row.ratio(baseline):.2f}",
            str(callbacks.errors),
            row.measured.cpu_cell(),
            f"{row.rss_before_mb:.0f} → {row.measured.rss_peak_mb:.0f}",
            summary(row),
            row.server_after,
            "(baseline)" if not row.phase.attack else verdict_cell(row.phase, missed),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return lines


def report(rows: list[Row], args: argparse.Namespace) -> tuple[str, bool]:
    quiet = [row for row in rows if row.phase.attack is None]
    baseline = sum(row.callbacks_per_second for row in quiet) / len(quiet)
    attacks = [row for row in rows if row.phase.attack is not None and not row.phase.control]
    database = "PostgreSQL" if args.database_url else "SQLite"
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/attack.py --seconds "
        f"{args.seconds:g}` on {machine()}; {database}, server code from `{args.server_cwd}`; "
        f"{args.senders} callback senders, /healthz every {PROBE_INTERVAL_SECONDS * 1000:.0f} ms; "
        f"1-minute load average {os.getloadavg()[0]:.1f} at the end. Quiet rate "
        + " and ".join(f"{row.callbacks_per_second:.1f}" for row in quiet)
        + f" callbacks/s (baseline {baseline:.1f}); quiet /healthz p50 / p99 / max "
        + ", ".join(healthz_cell(row.measured.healthz) for row in quiet)
        + " ms.",
        "",
        *table(rows, baseline),
    ]
    failures = [
        f"- {row.phase.title}: {label} {'; '.join(sorted(set(tally.examples)))}"
        for row in rows
        for label, tally in (("/healthz", row.measured.healthz),
                             ("callbacks", row.measured.callbacks))
        if tally.examples
    ]  # fmt: skip
    if failures:
        lines += ["", "How probes and callbacks failed (first examples):", "", *failures]
    if args.repeat == 1:
        return "\n".join(lines) + "\n", all(not misses(row, baseline) for row in attacks)
    verdicts = repeated_verdicts(rows, baseline)
    lines += ["", *verdicts.lines]
    return "\n".join(lines) + "\n", verdicts.met


@dataclass
class Verdicts:
    lines: list[str]
    met: bool  # every attack (not a control)


def repeated_verdicts(rows: list[Row], baseline: float) -> Verdicts:
    """One verdict per phase run several times (`--repeat`): its ratio is the median of its
    runs' (one run's quiet rates wander by a fifth to a third, as much as most attacks
    cost), its /healthz the worst of its runs'."""
    lines = [
        "Each attack over its runs (`--repeat`): the median of the ratios; the worst /healthz.",
        "",
        "| attack | ratios to quiet | median | healthz p99 ms, worst | healthz failures "
        "| meets targets |",
        "|---|---|---:|---:|---:|---|",
    ]
    met = True
    by_phase: dict[str, list[Row]] = {}
    for row in rows:
        if row.phase.attack is not None:
            by_phase.setdefault(row.phase.name, []).append(row)
    for runs in by_phase.values():
        phase = runs[0].phase
        ratios = [row.ratio(baseline) for row in runs]
        worst_p99 = max(row.measured.healthz.percentile(0.99) for row in runs)
        failed = sum(row.measured.healthz.errors for row in runs)
        missed = missed_targets(worst_p99, failed, median(ratios))
        met = met and (phase.control or not missed)
        cells = [
            phase.title,
            " ".join(f"{ratio:.2f}" for ratio in ratios),
            f"{median(ratios):.2f}",
            f"{worst_p99:.1f}",
            str(failed),
            verdict_cell(phase, missed),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return Verdicts(lines, met)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [phase.name for phase in phases()]
    parser.add_argument("--seconds", type=float, default=6, help="measured per phase")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=names,
        metavar="NAME",
        help=f"only these attacks (the quiet phases always run): {', '.join(names)}",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to create a fresh database on "
        "per phase, e.g. postgresql://postgres@127.0.0.1:5432/test; default: SQLite",
    )
    parser.add_argument(
        "--server-cwd",
        default=str(Path(__file__).parent.parent),
        help="run `python -m replay_catalog.cli serve` from here (whose code it runs)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra setting for every server (repeatable)",
    )
    parser.add_argument("--senders", type=int, default=4, help="concurrent callback senders")
    parser.add_argument("--streams", type=int, default=20, help="streams in the loaded catalog")
    parser.add_argument("--probe-timeout", type=float, default=2.0, help="seconds per /healthz")
    parser.add_argument("--callback-timeout", type=float, default=10.0)
    parser.add_argument(
        "--attack-connections",
        type=int,
        default=3,
        help="connections sending hostile GraphQL documents",
    )
    parser.add_argument(
        "--attack-timeout",
        type=float,
        default=2.0,
        help="seconds an attacker waits for a hostile document's answer",
    )
    parser.add_argument(
        "--attack-interval",
        type=float,
        default=0,
        help="seconds each attacker connection waits between requests (0: a flood)",
    )
    parser.add_argument("--readers", type=int, default=8, help="room-list readers (poison)")
    parser.add_argument(
        "--reader-interval",
        type=float,
        default=0.25,
        help="seconds each reader waits between room lists",
    )
    parser.add_argument("--header-megabytes", type=int, default=64)
    parser.add_argument(
        "--setup-timeout",
        type=float,
        default=60,
        help="seconds an attack may take to set up before measuring anyway",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each attack this many times, each on a fresh server, and judge it by "
        "the median of its ratios (and the worst of its /healthz figures)",
    )
    parser.add_argument("--logs", help="keep the servers' logs in this folder")
    args = parser.parse_args()  # fmt: skip
    extra = dict(setting.split("=", 1) for setting in args.set)
    selected = [phase for phase in phases() if not args.only or phase.name in args.only]
    work = Path(args.logs or tempfile.mkdtemp(prefix="replay-attack-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(args.server_cwd)
    rows = []
    try:
        repeated = [phase for phase in selected for _ in range(args.repeat)]
        for phase in [Phase("quiet", "quiet (start)", None), *repeated,
                      Phase("quiet-end", "quiet (end)", None)]:  # fmt: skip
            rows.append(run_phase(phase, args, work, extra))
            row = rows[-1]
            progress = (
                f"{phase.title}: healthz {healthz_cell(row.measured.healthz)} ms, "
                f"{row.measured.healthz.errors} failed; {row.callbacks_per_second:.1f} "
                f"callbacks/s; {summary(row)[:300]}"
            )
            print(progress, file=sys.stderr, flush=True)
    finally:
        if not args.logs:
            shutil.rmtree(work, ignore_errors=True)
    text, met = report(rows, args)
    print(text)
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
