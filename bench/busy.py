"""The busy catalog: hot reads while mixed callbacks arrive, beside PostGraphile's cold rate.

    .venv/bin/python bench/busy.py [--duration 10] [--connections 8] [--threads 1]
                                   [--streams 300] [--callbacks-per-second 100]
                                   [--database postgresql://postgres@127.0.0.1:5432/bench_busy]
                                   [--results bench/BUSY.md]

The "busy catalog" goal of issue 17: while 100 mixed callbacks a second arrive, reads
spread over at least 20 distinct hot requests run at twice PostGraphile's cold rate or
more with p99 <= 50 ms, every callback asked for is taken with p99 <= 100 ms, nothing
fails, and nothing stale is served after an acknowledged write.

Empties the PostgreSQL database (created if missing; never `test`, the suite's) and fills
it through the service's own callback route exactly as bench/peer.py does (`--streams`
streams, each one broadcast of two HLS and two MP4 parts, anchors with a nickname and an
avatar, the last five streams live). From what the service answers it builds 20 hot
GraphQL requests: the first three room-list pages (the room list of bench/run.py with
`coverUrl`, `first: 20` then `after:` the previous page's endCursor), twelve anchor
profiles (with their ten newest replays) of anchors on those pages, and five broadcasts
(with stream, anchor and recordings) from them; each must answer 200 without "errors".
Then wrk (bench/busy_reads.lua: the bodies round-robin, counting answers that are not
200 or carry GraphQL errors) measures, each server alone:

  (a) PostGraphile 4 (installed as bench/peer.py does) on the same rows: its
      `allBroadcasts` page (PEER_QUERY), checked against the service's page 1. The
      yardstick: it has no response cache, so this is its cold rate;
  (b) `replay-catalog serve` (as bench/peer.py starts it, response cache on, default
      settings), the hot requests round-robin, quiet: no callbacks;
  (c) the same server and reads right after, while a process of its own posts signed
      callbacks at `--callbacks-per-second`, open loop (each sent when it is due,
      whatever the answers, over at most 64 connections from 127.0.0.2, so that the
      service counts it as a client apart from wrk): about half screenshots of the
      live rooms (a new create_time and picture each), 30% new recording files on past
      broadcasts (each starts where the stream's last part ended, so the broadcast grows
      and its room moves), 20% pushes of past streams coming back live and, later, their
      cut-offs. A callback's latency runs from when it was due to its answer; one not
      answered 200 (a status, a transport error, or no answer 10 s after the last was
      due) is an error.

At the end, for each live room, one more screenshot is posted and, once it is answered
200, room-list page 1 (the hot request's very bytes) is read at once: the room must show
that screenshot as its coverUrl (freshness). The figures, the ratio of (c) to (a) and
which parts of the goal are met are printed and written to bench/BUSY.md (`--results`
elsewhere); what the file holds from its first `## Session` heading on (notes by hand)
is kept.
"""

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import queue
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx
from peer import (
    LIVE_STREAMS,
    PEER_QUERY,
    PageRows,
    fill,
    parse_peer_arguments,
    peer_parser,
    postgraphile_version,
    prepare,
    service_rows,
    warm_peer,
)
from run import (
    ROOM_LIST,
    Measured,
    recording,
    running,
    signed,
    write_keeping_notes,
    wrk,
)
from soak import database_version, machine

JSON = {"content-type": "application/json"}
# The results file's notes by hand begin at the first such heading; a run keeps them.
NOTES_HEADING = "## Session"
HOT_PAGES = 3
HOT_ANCHORS = 12
HOT_BROADCASTS = 5
# Three full room-list pages of 20.
MIN_STREAMS = HOT_PAGES * 20
# What the sender may use at once, and how long Tencent waits for an answer.
SENDER_CONNECTIONS = 64
# Tencent's senders are other clients than the apps: the sender connects from an address
# of its own, so the service's cap on connections per client (64) counts it apart.
SENDER_ADDRESS = "127.0.0.2"
TENCENT_TIMEOUT_SECONDS = 20
# A callback not answered this long after the last one was due counts as no answer.
ANSWER_GRACE_SECONDS = 10
# The mix: screenshots, then recording files; the rest pushes and cut-offs.
SCREENSHOT_SHARE = 0.5
FILE_SHARE = 0.3
FILE_SECONDS = 60
# Past streams back live at once, at most (they stay on room-list page 1).
MAX_BACK_LIVE = 5
# The goal.
READS_TARGET = 2.0
READ_P99_MS = 50.0
CALLBACK_P99_MS = 100.0


def _edited(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# bench/run.py's room list, any page, with each room's cover (which screenshots change).
ROOM_PAGE = _edited(
    _edited(
        _edited(ROOM_LIST, "query RoomList {", "query RoomList($after: String) {"),
        "rooms(first: 20)",
        "rooms(first: 20, after: $after)",
    ),
    "kind playbackUrl",
    "kind playbackUrl coverUrl",
)
ANCHOR_PROFILE = """query Anchor($userId: String!) { anchor(userId: $userId) {
  userId nickname avatarUrl isLive replayCount
  replays(first: 10) { edges { node { id startedAt durationSeconds coverUrl
    recordings { fileId videoUrl } } } }
} }"""
BROADCAST = """query Broadcast($id: ID!) { broadcast(id: $id) {
  id isLive startedAt endedAt durationSeconds coverUrl playbackUrl
  stream { streamId isLive } anchor { userId nickname avatarUrl }
  recordings { fileId format videoUrl startTime durationSeconds fileSize }
} }"""
# Every replay's stream and its files' ends, to continue each past stream where it ended.
REPLAY_ENDS = """query Replays($after: String) {
  rooms(first: 100, after: $after, kind: REPLAY) {
    edges { node { stream { streamId } broadcast { recordings { endTime } } } }
    pageInfo { hasNextPage endCursor } } }"""


@dataclass
class Hot:
    """The hot requests, and what the callbacks need to know of the catalog."""

    bodies: list[bytes]  # room-list pages first, page 1 the very first
    page_one: PageRows  # its rows, to check PostGraphile's against
    live: list[str]  # the live rooms' streams
    past: dict[str, int]  # each past stream: when its last part ended (unix seconds)

    def describe(self) -> str:
        return (
            f"{len(self.bodies)} hot requests round-robin: {HOT_PAGES} room-list pages "
            f"through cursors, {HOT_ANCHORS} anchor profiles, {HOT_BROADCASTS} broadcasts"
        )


def body(query: str, variables: dict[str, Any]) -> bytes:
    """A GraphQL request body on one line."""
    return json.dumps({"query": query, "variables": variables}).encode()


def answered(http: httpx.Client, request: bytes) -> dict[str, Any]:
    """The answer of a request that must be answered 200 without errors."""
    answer = http.post("/graphql", content=request, headers=JSON)
    assert answer.status_code == 200, f"{answer.status_code} {answer.text[:300]}"
    data = answer.json()
    assert "errors" not in data, f"{request[:200]!r}: {data['errors']}"
    return data  # type: ignore[no-any-return]


def build_hot(base: str) -> Hot:
    """The hot requests, from what the filled service answers, each checked."""
    with httpx.Client(base_url=base, timeout=60) as http:
        pages, rooms, after = [], [], None
        for _ in range(HOT_PAGES):
            pages.append(body(ROOM_PAGE, {"after": after}))
            connection = answered(http, pages[-1])["data"]["rooms"]
            rooms += [edge["node"] for edge in connection["edges"]]
            after = connection["pageInfo"]["endCursor"]
        page_one = service_rows(answered(http, pages[0]))
        users = list(dict.fromkeys(room["anchor"]["userId"] for room in rooms))
        anchors = [users[i * len(users) // HOT_ANCHORS] for i in range(HOT_ANCHORS)]
        broadcasts = [
            rooms[i * len(rooms) // HOT_BROADCASTS]["broadcast"]["id"]
            for i in range(HOT_BROADCASTS)
        ]
        bodies = [
            *pages,
            *(body(ANCHOR_PROFILE, {"userId": user}) for user in anchors),
            *(body(BROADCAST, {"id": broadcast}) for broadcast in broadcasts),
        ]
        for request in bodies:
            answered(http, request)
        live = [room["stream"]["streamId"] for room in rooms if room["kind"] == "LIVE"]
        past: dict[str, int] = {}
        after = None
        while True:
            connection = answered(http, body(REPLAY_ENDS, {"after": after}))["data"]["rooms"]
            for edge in connection["edges"]:
                ends = [
                    int(datetime.fromisoformat(file["endTime"]).timestamp())
                    for file in edge["node"]["broadcast"]["recordings"]
                ]
                stream = edge["node"]["stream"]["streamId"]
                past[stream] = max(past.get(stream, 0), *ends)
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
    assert len(set(bodies)) == len(bodies) >= 20, "fewer than 20 distinct hot requests"
    assert len(live) == LIVE_STREAMS, f"{len(live)} live rooms on the pages"
    return Hot(bodies=bodies, page_one=page_one, live=live, past=past)


def check_bodies(base: str, bodies: list[bytes], passes: int = 2) -> None:
    """Send a fresh server every hot request `passes` times; each must answer cleanly."""
    with httpx.Client(base_url=base, timeout=60) as http:
        for _ in range(passes):
            for request in bodies:
                answered(http, request)


def screenshot(stream: str, at: int) -> dict[str, object]:
    """A screenshot callback, its picture named by stream and time."""
    return {
        "event_type": 200, "stream_id": stream, "create_time": at,
        "pic_url": f"/shots/{stream}-{at}.jpg",
        "pic_full_url": f"http://1252033264.vod2.myqcloud.com/shots/{stream}-{at}.jpg",
    }  # fmt: skip


class Traffic:
    """Mixed callbacks, deterministic but for the clock: screenshots of the live rooms,
    new recording files that grow past broadcasts, and past streams that come back live
    with a push and are cut off a few callbacks later."""

    def __init__(self, live: list[str], past: dict[str, int], seed: int = 17) -> None:
        self.rng = random.Random(seed)
        self.live = live
        self.shots = dict.fromkeys(live, 0)  # the last create_time sent for each
        self.ends = dict(past)  # where each past stream's next file starts
        self.file_streams = itertools.cycle(sorted(past))
        self.back_live: deque[tuple[str, int, str]] = deque()  # stream, push time, sequence
        self.numbers = itertools.count()

    def next_event(self) -> tuple[str, dict[str, object]]:
        roll = self.rng.random()
        if roll < SCREENSHOT_SHARE:
            return "screenshot", self.screenshot(self.rng.choice(self.live))
        if roll < SCREENSHOT_SHARE + FILE_SHARE:
            return "file", self.file()
        return self.push_or_cut()

    def screenshot(self, stream: str) -> dict[str, object]:
        """The stream's newest screenshot yet (so it becomes its room's cover)."""
        at = self.shots[stream] = max(int(time.time()), self.shots[stream] + 1)
        return screenshot(stream, at)

    def file(self) -> dict[str, object]:
        stream = next(self.file_streams)
        start = self.ends[stream]
        self.ends[stream] = start + FILE_SECONDS
        file_id = f"busy{next(self.numbers)}-{stream}"
        return recording(
            stream, file_id, start, start + FILE_SECONDS, self.rng.choice(("hls", "mp4"))
        )

    def push_or_cut(self) -> tuple[str, dict[str, object]]:
        if self.back_live and (len(self.back_live) >= MAX_BACK_LIVE or self.rng.random() < 0.5):
            stream, pushed, sequence = self.back_live.popleft()
            at = max(int(time.time()), pushed + 1)
            return "cut-off", {"event_type": 0, "stream_id": stream, "event_time": at,
                               "sequence": sequence}  # fmt: skip
        live = {stream for stream, _, _ in self.back_live}
        stream = self.rng.choice([stream for stream in sorted(self.ends) if stream not in live])
        at, sequence = int(time.time()), f"busy{next(self.numbers):x}"
        self.back_live.append((stream, at, sequence))
        return "push", {"event_type": 1, "stream_id": stream, "event_time": at,
                        "sequence": sequence}  # fmt: skip


@dataclass
class Sent:
    """One callback the sender asked for."""

    kind: str
    status: int | None = None  # None: a transport error, or no answer by the end
    latency: float | None = None  # seconds from when it was due to its answer
    answered: float = 0.0  # seconds from when the first callback was due to its answer
    why: str = "no answer by the end"


@dataclass
class Sending:
    """What the sender process reports."""

    sent: list[Sent]
    seconds: float  # from the first callback due to the last
    answered_seconds: float  # from the first callback due to the last answer
    late_ms: float  # the most the sender was behind its schedule
    shots: dict[str, int]  # the last screenshot time of each live stream


class Posts:
    """Keep-alive HTTP/1.1 POSTs of JSON over at most `size` connections from one local
    address, each request on a connection of its own while it runs.

    httpx's pool looks at every connection (a system call each) whenever a request starts
    or ends: with 64 connections and a backlog it cost the sender most of a core on a
    2-core machine (bench/BUSY.md), and the figures measured the sender. This costs a
    write and a few reads a request."""

    def __init__(self, base: str, size: int, local_address: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port, self.local_address = host, int(port), local_address
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.free = asyncio.Semaphore(size)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """The status and body of the answer; OSError, EOFError or ValueError on a
        transport failure (the connection is dropped)."""
        async with self.free:
            reader, writer = (
                self.idle.pop()
                if self.idle
                else await asyncio.open_connection(
                    self.host, self.port, local_addr=(self.local_address, 0)
                )
            )
            try:
                head = (
                    f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
                    f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
                )
                writer.write(head.encode() + body)
                status_line = await reader.readuntil(b"\r\n")
                length, close = 0, False
                while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                    elif name.strip().lower() == "connection" and "close" in value.lower():
                        close = True
                answer = await reader.readexactly(length)
            except BaseException:
                writer.close()
                raise
            if close:
                writer.close()
            else:
                self.idle.append((reader, writer))
            return int(status_line.split()[1]), answer

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


def send_callbacks(
    base: str,
    traffic: Traffic,
    rate: float,
    seconds: float,
    ready: Event,
    go: Event,
    out: "multiprocessing.Queue[Sending]",
) -> None:
    """Post `rate` callbacks a second for `seconds`, open loop, once `go` is set; put what
    happened to each in `out` (runs in a process of its own)."""

    async def deliver(
        posts: Posts, event: dict[str, object], began: float, due: float, record: Sent
    ) -> None:
        try:
            async with asyncio.timeout(TENCENT_TIMEOUT_SECONDS):
                status, answer = await posts.post(
                    "/callbacks/tencent", json.dumps(signed(event)).encode()
                )
        except (OSError, EOFError, ValueError, TimeoutError) as failure:
            record.why = f"{type(failure).__name__}: {failure}"
            return
        now = asyncio.get_running_loop().time()
        record.latency, record.answered = now - due, now - began
        record.status = status
        record.why = "" if status == 200 else f"{status} {answer[:200].decode('utf-8', 'replace')}"

    async def send_all() -> Sending:
        posts = Posts(base, SENDER_CONNECTIONS, SENDER_ADDRESS)
        try:
            ready.set()
            await asyncio.to_thread(go.wait)
            loop = asyncio.get_running_loop()
            began = loop.time()
            sent: list[Sent] = []
            tasks: list[asyncio.Task[None]] = []
            late = 0.0
            for number in range(max(1, round(rate * seconds))):
                due = began + number / rate
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                late = max(late, loop.time() - due)
                kind, event = traffic.next_event()
                sent.append(Sent(kind))
                tasks.append(asyncio.create_task(deliver(posts, event, began, due, sent[-1])))
            _, pending = await asyncio.wait(tasks, timeout=ANSWER_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            posts.close()
        answered = max((record.answered for record in sent), default=0.0)
        return Sending(sent, (len(sent) - 1) / rate, answered, late * 1000, traffic.shots)

    out.put(asyncio.run(send_all()))


def busy_reads(
    base: str, hot: Hot, args: argparse.Namespace, reads: dict[str, str]
) -> tuple[Measured, Sending]:
    """wrk on the hot requests while the sender process posts callbacks."""
    context = multiprocessing.get_context("fork")
    ready, go = context.Event(), context.Event()
    out: multiprocessing.Queue[Sending] = context.Queue()
    sender = context.Process(
        target=send_callbacks,
        args=(base, Traffic(hot.live, hot.past), args.callbacks_per_second, args.duration,
              ready, go, out),
        daemon=True,
    )  # fmt: skip
    sender.start()
    try:
        if not ready.wait(30):
            raise SystemExit("the callback sender did not start")
        go.set()
        measured = wrk(f"{base}/graphql", "busy_reads.lua", args, reads)
        try:
            sending = out.get(timeout=ANSWER_GRACE_SECONDS + TENCENT_TIMEOUT_SECONDS + 30)
        except queue.Empty:
            raise SystemExit("the callback sender did not report") from None
        sender.join(10)
    finally:
        if sender.is_alive():
            sender.kill()
            sender.join()
    return measured, sending


@dataclass
class Freshness:
    passed: bool = True
    checks: int = 0
    notes: list[str] = field(default_factory=list)


def check_freshness(base: str, hot: Hot, shots: dict[str, int]) -> Freshness:
    """For each live room: a newer screenshot, then page 1 at once must show it."""
    freshness = Freshness()
    with httpx.Client(base_url=base, timeout=60) as http:
        for stream in hot.live:
            event = screenshot(stream, max(int(time.time()), shots.get(stream, 0) + 1))
            answer = http.post("/callbacks/tencent", json=signed(event))
            page = http.post("/graphql", content=hot.bodies[0], headers=JSON)
            freshness.checks += 1
            if answer.status_code != 200:
                freshness.passed = False
                freshness.notes.append(
                    f"{stream}: the screenshot was answered {answer.status_code}"
                )
                continue
            if page.status_code != 200 or "errors" in page.json():
                freshness.passed = False
                freshness.notes.append(f"{stream}: page 1 answered {page.text[:200]}")
                continue
            covers = [
                edge["node"]["coverUrl"]
                for edge in page.json()["data"]["rooms"]["edges"]
                if edge["node"]["stream"]["streamId"] == stream
            ]
            if covers != [event["pic_full_url"]]:
                freshness.passed = False
                freshness.notes.append(
                    f"{stream}: page 1 showed {covers or 'no such room'} after "
                    f"{event['pic_full_url']} was acknowledged"
                )
    return freshness


def read_counts(path: Path) -> tuple[int, int, int]:
    """busy_reads.lua's answers, those not 200, and those with GraphQL errors."""
    answers, not_ok, with_errors = (int(n) for n in path.read_text().split())
    return answers, not_ok, with_errors


@dataclass
class Reads:
    """One wrk measurement and what busy_reads.lua counted of its answers."""

    label: str
    measured: Measured
    answers: int
    not_ok: int
    with_errors: int

    @property
    def errors(self) -> int:
        return self.measured.errors + self.not_ok + self.with_errors


def measure_reads(
    label: str, url_base: str, bodies: Path, args: argparse.Namespace, work: Path
) -> Reads:
    counts = work / "counts.txt"
    env = {"BODIES_FILE": str(bodies), "COUNTS_FILE": str(counts)}
    measured = wrk(f"{url_base}/graphql", "busy_reads.lua", args, env)
    return Reads(label, measured, *read_counts(counts))


def arguments() -> argparse.Namespace:
    parser = peer_parser(__doc__, "bench_busy", "BUSY.md")
    parser.add_argument(
        "--callbacks-per-second", type=float, default=100, help="callbacks asked for, open loop"
    )
    args = parse_peer_arguments(parser)
    if args.streams < MIN_STREAMS:
        parser.error(f"--streams must be at least {MIN_STREAMS} (three full room-list pages)")
    if args.callbacks_per_second <= 0:
        parser.error("--callbacks-per-second must be positive")
    return args


def main() -> None:
    args = arguments()
    postgraphile, database_url, env, serve = prepare(args.database)
    loading = time.monotonic()
    with running(serve, env) as base:
        asyncio.run(fill(base, args.streams))
        hot = build_hot(base)
    print(f"{args.streams} streams loaded in {time.monotonic() - loading:.0f} s; "
          f"{hot.describe()}", flush=True)  # fmt: skip
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="replay-busy-") as directory:
        work = Path(directory)
        peer_body, hot_bodies = work / "peer.jsonl", work / "hot.jsonl"
        peer_body.write_bytes(json.dumps({"query": PEER_QUERY}).encode() + b"\n")
        hot_bodies.write_bytes(b"\n".join(hot.bodies) + b"\n")

        peer = [str(postgraphile), "-c", database_url.replace("postgresql://", "postgres://", 1),
                "--host", "127.0.0.1", "--disable-query-log", "--simple-collections", "both",
                "--disable-graphiql"]  # fmt: skip
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)  # noqa: S607
        peer_label = (f"PostGraphile {postgraphile_version()} (Node {node.stdout.strip()}), "
                      "`allBroadcasts` page, cold")  # fmt: skip
        with running(peer, dict(os.environ)) as base:
            if not warm_peer(base, peer_body.read_bytes().rstrip(), hot.page_one):
                notes.append("PostGraphile answered other rows than the service's page 1")
            cold = measure_reads(f"(a) {peer_label}", base, peer_body, args, work)
        print(f"(a) PostGraphile: {cold.measured.requests_per_second:,.0f} requests/s", flush=True)

        with running(serve, env) as base:
            check_bodies(base, hot.bodies)
            quiet = measure_reads("(b) service, hot reads, quiet", base, hot_bodies, args, work)
            print(f"(b) quiet: {quiet.measured.requests_per_second:,.0f} requests/s", flush=True)
            counts = work / "counts.txt"
            measured, sending = busy_reads(
                base, hot, args, {"BODIES_FILE": str(hot_bodies), "COUNTS_FILE": str(counts)}
            )
            busy = Reads(
                f"(c) service, hot reads, {args.callbacks_per_second:g} callbacks/s asked",
                measured,
                *read_counts(counts),
            )
            print(f"(c) busy: {busy.measured.requests_per_second:,.0f} requests/s", flush=True)
            freshness = check_freshness(base, hot, sending.shots)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    version = asyncio.run(database_version(database_url))
    report(args, hot, [cold, quiet, busy], sending, freshness, version, notes)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class CallbackRow:
    label: str
    asked: int
    taken: int
    p50_ms: float
    p99_ms: float
    errors: int
    examples: list[str]


def callback_rows(sending: Sending) -> list[CallbackRow]:
    """All callbacks first, then each kind."""
    kinds = ["all", *sorted({sent.kind for sent in sending.sent})]
    rows = []
    for kind in kinds:
        sent = [s for s in sending.sent if kind in ("all", s.kind)]
        latencies = [s.latency * 1000 for s in sent if s.status == 200 and s.latency is not None]
        failed = [s for s in sent if s.status != 200]
        rows.append(
            CallbackRow(
                label=kind,
                asked=len(sent),
                taken=len(sent) - len(failed),
                p50_ms=percentile(latencies, 0.5),
                p99_ms=percentile(latencies, 0.99),
                errors=len(failed),
                examples=list(dict.fromkeys(s.why for s in failed))[:3],
            )
        )
    return rows


def report(
    args: argparse.Namespace,
    hot: Hot,
    reads: list[Reads],
    sending: Sending,
    freshness: Freshness,
    version: str,
    notes: list[str],
) -> None:
    cold, quiet, busy = reads
    peer_rate = cold.measured.requests_per_second
    seconds = max(sending.seconds, 1 / args.callbacks_per_second)
    answering = max(sending.answered_seconds, seconds)
    callbacks = callback_rows(sending)
    everything = callbacks[0]
    command = shlex.join(["bench/busy.py", *sys.argv[1:]])
    lines = [
        "# The busy catalog: hot reads while callbacks arrive, beside PostGraphile",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `bench/busy.py` on {machine()}; "
        f"PostgreSQL {version}; wrk -t{args.threads} -c{args.connections} -d{args.duration}s "
        f"on loopback (bench/busy_reads.lua), each server alone. Catalog: {args.streams} "
        f"streams loaded through the callback route as by bench/peer.py ({LIVE_STREAMS} live). "
        f"Reads: {hot.describe()}; the service's response cache on. Callbacks: "
        f"{args.callbacks_per_second:g} a second asked for, open loop, from a process of its "
        f"own over at most {SENDER_CONNECTIONS} connections from {SENDER_ADDRESS}, for the "
        f"{args.duration} s of (c): "
        f"about {SCREENSHOT_SHARE:.0%} screenshots of the live rooms, {FILE_SHARE:.0%} new "
        f"recording files growing past broadcasts, the rest pushes of past streams and their "
        f"cut-offs. Reproduce: `.venv/bin/python {command}`.",
        "",
        "| measurement | requests/s | p50 ms | p99 ms | non-2xx + socket errors (wrk) | "
        "answers not 200 / with GraphQL errors | ratio to PostGraphile |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for read in reads:
        m = read.measured
        lines.append(
            f"| {read.label} | {m.requests_per_second:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | "
            f"{m.errors} | {read.not_ok} / {read.with_errors} of {read.answers:,} | "
            f"{m.requests_per_second / peer_rate:.3f} |"
        )
    lines += [
        "",
        "| callbacks | asked | asked/s | taken (200) | taken/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in callbacks:
        lines.append(
            f"| {row.label} | {row.asked:,} | {row.asked / seconds:,.1f} | {row.taken:,} | "
            f"{row.taken / answering:,.1f} | {row.p50_ms:.1f} | {row.p99_ms:.1f} | {row.errors} |"
        )
    ratio = busy.measured.requests_per_second / peer_rate
    read_errors = quiet.errors + busy.errors
    goals = [
        ("reads while busy", f">= {READS_TARGET:g} x PostGraphile cold", f"{ratio:.3f} x",
         ratio >= READS_TARGET),
        ("read p99 while busy", f"<= {READ_P99_MS:g} ms", f"{busy.measured.p99_ms:.2f} ms",
         busy.measured.p99_ms <= READ_P99_MS),
        ("callbacks taken", "all asked", f"{everything.taken:,} of {everything.asked:,}",
         everything.taken == everything.asked),
        ("callback p99", f"<= {CALLBACK_P99_MS:g} ms", f"{everything.p99_ms:.1f} ms",
         everything.p99_ms <= CALLBACK_P99_MS),
        ("no errors", "0", f"reads {read_errors}, callbacks {everything.errors}",
         read_errors == 0 and everything.errors == 0),
        ("freshness", "page 1 shows an acknowledged screenshot at once",
         f"{freshness.checks} checks, {'pass' if freshness.passed else 'FAIL'}",
         freshness.passed),
    ]  # fmt: skip
    lines += [
        "",
        f"Callback latency runs from when a callback was due to its answer, so a sender "
        f"behind its schedule counts against it (it was at most {sending.late_ms:.1f} ms "
        f"late). Asked/s: over the {seconds:.1f} s from the first callback due to the last; "
        f"taken/s: over the {answering:.1f} s from the first due to the last answer. "
        f"Freshness: after (c), for each live room, a newer screenshot, and once it is answered "
        f"200, room-list page 1 (the hot request's bytes) must show it as the room's coverUrl.",
        "",
        f"**Busy reads / PostGraphile cold: {ratio:.3f}** (target {READS_TARGET:g}); quiet "
        f"reads / PostGraphile: {quiet.measured.requests_per_second / peer_rate:.3f}.",
        "",
        "| goal part | target | measured | met |",
        "|---|---|---|---|",
        *(f"| {part} | {target} | {measured} | {'yes' if met else '**no**'} |"
          for part, target, measured, met in goals),
    ]  # fmt: skip
    examples = [f"callbacks, {row.label}: {why}" for row in callbacks[1:] for why in row.examples]
    if notes or examples or freshness.notes:
        lines += ["", *(f"- {line}" for line in [*notes, *examples, *freshness.notes])]
    text = "\n".join(lines) + "\n"
    write_keeping_notes(args.results, text, NOTES_HEADING)
    print(text)


if __name__ == "__main__":
    main()
