"""The room list beside a peer and beside the executor's own floor, on one PostgreSQL database.

    .venv/bin/python bench/peer.py [--duration 10] [--connections 8] [--threads 1]
                                   [--rounds 5] [--streams 300] [--floor-seconds 3]
                                   [--database postgresql://postgres@127.0.0.1:5432/bench]

Empties the database (as bench/run.py --database does) and fills it through the service's
own callback route: every stream one broadcast of two HLS and two MP4 parts, anchors with
a nickname and an avatar (upsertAnchor), the last five streams still live. Then, a round
at a time, each server alone and warmed up first, wrk measures:

  - PostGraphile 4 (`npm install postgraphile@4` into ~/.cache/replay-catalog-bench,
    reused when present; `--simple-collections both`: a Relay connection for the page,
    as the service, and a plain list for each broadcast's files, as its `recordings`)
    answering the same page: the first 20 broadcasts in room order with their stream,
    anchor and recording files; its rows are checked against the service's (the same
    broadcast and file ids in the same order);
  - the service's room list with RESPONSE_CACHE_ENTRIES=0 (cold), and with the response
    cache on (nothing is written meanwhile, so it stays warm);
  - the floor, in this process on one core: the same document executed by graphql-core
    through the same Strawberry schema (`schema.build_schema()`), every database read
    answered from memory with the rows the first execution read. What remains is the
    executor and the resolvers: no database, no HTTP, no JSON.

The medians of the rounds go to bench/PEER.md (`--results` elsewhere) and are printed.
"""

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median, quantiles
from typing import Any
from urllib.parse import urlsplit

import httpx
from run import (
    BENCH,
    CLI,
    ROOM_LIST,
    TABLE_HEAD,
    TEST_DATABASE,
    WARM_UP_REQUESTS,
    Measured,
    empty_postgres,
    ensure_wrk,
    median_of,
    plain_postgres_url,
    recording,
    running,
    service_env,
    signed,
    table_row,
    warm_up,
    wrk,
    wrk_parser,
)
from soak import database_version, machine
from sqlalchemy import Executable
from strawberry import Schema
from strawberry.relay import GlobalID

from replay_catalog.cli import collect_garbage_for_serving
from replay_catalog.settings import Settings
from resolvers.context import CatalogContext
from resolvers.ingestion import Ingestor
from resolvers.refusals import PerClientLimit
from schema import build_schema
from storage.database import Database, Lookup

ADMIN_TOKEN = "bench-admin-token"  # noqa: S105
# Stitched replays link to the service itself: one base URL makes every server's answer
# the same bytes, whatever port it listens on.
PUBLIC_BASE_URL = "http://replay-catalog.bench"
LIVE_STREAMS = 5
# A broadcast is two parts of PART_SECONDS, each recorded as HLS and as MP4. Streams start
# STREAM_SPACING apart, the newest parts ending now: the live rooms stay far within
# LIVE_SILENCE_SECONDS (the service would end them) for the whole run.
PART_SECONDS = 900
STREAM_SPACING = 600
# Streams loaded at once (each stream's callbacks in order).
LOADERS = 8
POSTGRAPHILE = Path.home() / ".cache/replay-catalog-bench/postgraphile"
# The room list's page in PostGraphile's generated schema. ROOM_RANK_ASC puts the
# broadcasts outside the room list (room_rank NULL) last; this catalog has none.
PEER_QUERY = """query Rooms { allBroadcasts(first: 20,
  orderBy: [ROOM_RANK_ASC, ROOM_TIME_DESC, ID_DESC], condition: {hidden: false, deletedAt: null})
  { edges { cursor node {
    id roomRank isLive playbackUrl startedAt endedAt durationSeconds
    streamByStreamPk { streamId isLive anchorByAnchorId { userId nickname avatarUrl } }
    recordingFilesByBroadcastIdList(orderBy: [START_TIME_ASC, END_TIME_ASC, FILE_ID_ASC]) {
      fileId format videoUrl startTime durationSeconds fileSize }
  } } pageInfo { hasNextPage endCursor } } }"""
FLOOR = (
    "floor: graphql-core through the same Strawberry schema, reads from memory, one core "
    "(pages/s, ms a page)"
)
UPSERT_ANCHOR = """mutation Anchor($input: AnchorInput!) { upsertAnchor(input: $input) { id } }"""

# One page as rows: (broadcast id, its file ids in order) per room.
PageRows = list[tuple[int, list[str]]]


def stream_events(index: int, streams: int, now: int) -> list[dict[str, object]]:
    """One stream's callbacks: a push, two HLS and two MP4 parts, and a cut-off unless it
    is one of the last LIVE_STREAMS (newest) streams."""
    stream = f"2121_anchor{index:05d}"
    start = now - 2 * PART_SECONDS - (streams - 1 - index) * STREAM_SPACING
    events: list[dict[str, object]] = [
        {"event_type": 1, "stream_id": stream, "event_time": start, "sequence": f"s{index}"}
    ]
    for part in (0, 1):
        begins = start + part * PART_SECONDS
        for fmt in ("hls", "mp4"):
            file_id = f"{fmt}{part}-{index}"
            events.append(recording(stream, file_id, begins, begins + PART_SECONDS, fmt))
    if index < streams - LIVE_STREAMS:
        end = start + 2 * PART_SECONDS
        events.append({"event_type": 0, "stream_id": stream, "event_time": end,
                       "sequence": f"s{index}"})  # fmt: skip
    return events


def anchor_profile(index: int) -> dict[str, object]:
    user_id = f"anchor{index:05d}"
    return {
        "userId": user_id,
        "nickname": f"Anchor {index}",
        "avatarUrl": f"https://avatars.example.com/{user_id}.png",
        "streamIds": [f"2121_{user_id}"],
    }


async def fill(base: str, streams: int) -> None:
    """The catalog through the callback route, then every anchor's profile (admin)."""
    now = int(time.time())
    turns = asyncio.Semaphore(LOADERS)
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:

        async def load(index: int) -> None:
            async with turns:
                for event in stream_events(index, streams, now):
                    answer = await http.post("/callbacks/tencent", json=signed(event))
                    assert answer.status_code == 200, answer.text
                variables = {"input": anchor_profile(index)}
                body = {"query": UPSERT_ANCHOR, "variables": variables}
                answer = await http.post("/graphql", json=body, headers=admin)
                assert answer.status_code == 200 and "errors" not in answer.json(), answer.text

        await asyncio.gather(*(load(index) for index in range(streams)))


def service_rows(answer: dict[str, Any]) -> PageRows:
    return [
        (
            int(GlobalID.from_id(edge["node"]["broadcast"]["id"]).node_id),
            [file["fileId"] for file in edge["node"]["broadcast"]["recordings"]],
        )
        for edge in answer["data"]["rooms"]["edges"]
    ]


def peer_rows(answer: dict[str, Any]) -> PageRows:
    return [
        (
            edge["node"]["id"],
            [file["fileId"] for file in edge["node"]["recordingFilesByBroadcastIdList"]],
        )
        for edge in answer["data"]["allBroadcasts"]["edges"]
    ]


def ensure_postgraphile() -> Path:
    """PostGraphile 4's command, installed with npm into the cache folder if missing."""
    command = POSTGRAPHILE / "node_modules/.bin/postgraphile"
    if not command.exists():
        POSTGRAPHILE.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(POSTGRAPHILE),  # noqa: S607
             "postgraphile@4"],
            check=True,
        )  # fmt: skip
    return command


def postgraphile_version() -> str:
    package = POSTGRAPHILE / "node_modules/postgraphile/package.json"
    return str(json.loads(package.read_text())["version"])


def warm_peer(base: str, body: bytes, expected: PageRows) -> bool:
    """Send PostGraphile its page WARM_UP_REQUESTS times; whether it answered `expected`."""
    with httpx.Client(base_url=base, timeout=60) as http:
        answers = [
            http.post("/graphql", content=body, headers={"content-type": "application/json"})
            for _ in range(WARM_UP_REQUESTS)
        ]
    return all(answer.status_code == 200 for answer in answers) and all(
        peer_rows(answer.json()) == expected for answer in answers
    )


class RememberedReads(Database):
    """The database as one execution read it. Once `replay` is called, the reads get the
    rows the same reads got then, in the same order, from memory: executing the same
    document on the same rows issues the same reads in the same order (each execution's
    answer is checked against the first). Nothing inspects the statements meanwhile, so
    the floor pays for building them, as the page does, and for nothing else."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.answers: list[list[Any]] = []
        self._replaying: Iterator[list[Any]] | None = None

    async def rows(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> list[Any]:
        return await self._remembered(super().rows, statement, parameters)

    async def lookup(self, lookup: Lookup) -> list[Any]:
        return await self._remembered(super().lookup, lookup)

    async def _remembered(
        self, read: Callable[..., Awaitable[list[Any]]], *arguments: Any
    ) -> list[Any]:
        """The rows `read(*arguments)` gives, kept; once replaying, the next kept."""
        if self._replaying is None:
            rows = await read(*arguments)
            self.answers.append(rows)
            return rows
        return next(self._replaying)

    def replay(self) -> None:
        """Answer from memory from now on, from the first read again."""
        self._replaying = iter(self.answers)


@dataclass
class Floor:
    """The schema, the reads the page costs, and what every execution needs."""

    schema: Schema
    reads: RememberedReads
    settings: Settings
    ingestor: Ingestor
    refusals: PerClientLimit
    expected: dict[str, Any]  # the page's data, as the database gave it

    def context(self) -> CatalogContext:
        return CatalogContext(
            database=self.reads,
            ingestor=self.ingestor,
            settings=self.settings,
            authorization=None,
            client="127.0.0.1",
            base_url=PUBLIC_BASE_URL,
            refusals=self.refusals,
        )


async def remember_page(database_url: str) -> Floor:
    """Execute the room list once on the database, remembering every read."""
    settings = Settings(database_url=database_url, public_base_url=PUBLIC_BASE_URL)
    reads = RememberedReads(settings.database_url)
    floor = Floor(
        schema=build_schema(),
        reads=reads,
        settings=settings,
        ingestor=Ingestor(reads, None, settings.grouping_rules()),
        refusals=PerClientLimit(settings.refused_callbacks_per_minute),
        expected={},
    )
    try:
        result = await floor.schema.execute(ROOM_LIST, context_value=floor.context())
    finally:
        await reads.dispose()
    assert not result.errors and result.data is not None, result.errors
    floor.expected = result.data
    return floor


async def execute_page(floor: Floor) -> tuple[float, bool]:
    """One execution of the page from memory: its seconds, and whether it answered right."""
    began = time.perf_counter()
    floor.reads.replay()
    result = await floor.schema.execute(ROOM_LIST, context_value=floor.context())
    seconds = time.perf_counter() - began
    return seconds, not result.errors and result.data == floor.expected


async def time_floor(floor: Floor, seconds: float) -> Measured:
    """Execute the page from memory, one after another, for `seconds` (after a warm-up)."""
    for _ in range(WARM_UP_REQUESTS):
        assert (await execute_page(floor))[1], "the floor answered another page"
    durations: list[float] = []
    errors = 0
    finish = time.perf_counter() + seconds
    while time.perf_counter() < finish:
        duration, right = await execute_page(floor)
        durations.append(duration)
        errors += not right
    return Measured(
        name="floor",
        requests_per_second=len(durations) / sum(durations),
        p50_ms=median(durations) * 1000,
        p99_ms=quantiles(durations, n=100)[98] * 1000,
        errors=errors,
    )


def peer_parser(doc: str, database: str, results: str) -> argparse.ArgumentParser:
    """The options of a script that measures the service beside PostGraphile on a
    PostgreSQL database it empties and fills (this one and bench/busy.py)."""
    parser = wrk_parser(doc.split("\n\n")[0])
    parser.set_defaults(connections=8, threads=1, streams=300)
    parser.add_argument(
        "--database",
        metavar="URL",
        default=f"postgresql://postgres@127.0.0.1:5432/{database}",
        help="the PostgreSQL database to empty (DROP SCHEMA public CASCADE) and fill",
    )
    parser.add_argument("--results", type=Path, default=BENCH / results)
    return parser


def parse_peer_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The arguments, wrk installed, and never the test suite's database."""
    args = parser.parse_args()
    ensure_wrk()
    if urlsplit(plain_postgres_url(args.database)).path.lstrip("/") == TEST_DATABASE:
        parser.error(f"--database: the test suite uses `{TEST_DATABASE}`; pick another one")
    return args


def arguments() -> argparse.Namespace:
    parser = peer_parser(__doc__, "bench", "PEER.md")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, alternating servers")
    parser.add_argument(
        "--floor-seconds", type=float, default=3, help="seconds of floor executions per round"
    )
    args = parse_peer_arguments(parser)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


@dataclass
class Server:
    """A server measured every round: how it starts, the body wrk posts, and a warm-up
    that says whether it answered the service's rows."""

    label: str  # its column in the table of rounds
    description: str  # its row in the table of medians
    command: list[str]
    env: dict[str, str]
    body: Path
    warm_up: Callable[[str], bool]
    rounds: list[Measured] = field(default_factory=list)


def measure_round(server: Server, number: int, args: argparse.Namespace, notes: list[str]) -> None:
    with running(server.command, server.env) as base:
        if not server.warm_up(base):
            notes.append(f"round {number}: {server.label} answered other rows than the service")
        server.rounds.append(
            wrk(f"{base}/graphql", "post_body.lua", args, {"BODY_FILE": str(server.body)})
        )


def prepare(database: str) -> tuple[Path, str, dict[str, str], list[str]]:
    """PostGraphile installed, the database emptied, and how to start the service on it:
    (PostGraphile's command, the database URL, the service's environment and command)."""
    postgraphile = ensure_postgraphile()
    database_url = plain_postgres_url(database)
    asyncio.run(empty_postgres(database_url))
    env = {
        **service_env(database_url),
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    }
    return postgraphile, database_url, env, [*CLI, "serve"]


def main() -> None:
    args = arguments()
    postgraphile, database_url, env, serve = prepare(args.database)
    loading = time.monotonic()
    with running(serve, env) as base:
        asyncio.run(fill(base, args.streams))
        room_list = httpx.post(f"{base}/graphql", json={"query": ROOM_LIST}, timeout=60).content
    print(f"{args.streams} streams loaded in {time.monotonic() - loading:.0f} s", flush=True)
    expected = service_rows(json.loads(room_list))
    notes: list[str] = []
    floor = asyncio.run(remember_page(database_url))
    # The floor runs with the garbage collector as `serve` sets it up.
    collect_garbage_for_serving()
    if service_rows({"data": floor.expected}) != expected:
        notes.append("the floor's page has other rows than the service's")
    floor_rounds: list[Measured] = []

    with tempfile.TemporaryDirectory(prefix="replay-peer-") as work:
        room_list_body, peer_body = Path(work) / "room-list.json", Path(work) / "peer.json"
        room_list_body.write_text(json.dumps({"query": ROOM_LIST}))
        peer_body.write_text(json.dumps({"query": PEER_QUERY}))
        peer = [str(postgraphile), "-c", database_url.replace("postgresql://", "postgres://", 1),
                "--host", "127.0.0.1", "--disable-query-log", "--simple-collections", "both",
                "--disable-graphiql"]  # fmt: skip
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)  # noqa: S607
        servers = [
            Server(f"PostGraphile {postgraphile_version()}",
                   f"PostGraphile {postgraphile_version()} (Node {node.stdout.strip()}), "
                   "`allBroadcasts` page", peer, dict(os.environ), peer_body,
                   lambda base: warm_peer(base, peer_body.read_bytes(), expected)),
            Server("service, cache off", "service, room list, response cache off (cold)", serve,
                   {**env, "RESPONSE_CACHE_ENTRIES": "0"}, room_list_body,
                   lambda base: warm_up(base, room_list)),
            Server("service, cache warm", "service, room list, response cache warm", serve, env,
                   room_list_body, lambda base: warm_up(base, room_list)),
        ]  # fmt: skip
        for number in range(1, args.rounds + 1):
            for server in servers:
                measure_round(server, number, args, notes)
            floor_rounds.append(asyncio.run(time_floor(floor, args.floor_seconds)))
            rates = [f"{s.label} {s.rounds[-1].requests_per_second:,.0f}" for s in servers]
            rates.append(f"floor {floor_rounds[-1].requests_per_second:,.0f}")
            print(f"round {number}/{args.rounds}, requests/s: {', '.join(rates)}", flush=True)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    version = asyncio.run(database_version(database_url))
    report(args, servers, floor_rounds, len(room_list), version, notes)


def report(
    args: argparse.Namespace,
    servers: list[Server],
    floor_rounds: list[Measured],
    answer_bytes: int,
    version: str,
    notes: list[str],
) -> None:
    command = shlex.join(["bench/peer.py", *sys.argv[1:]])
    peer, cold, _ = (median_of(server.rounds) for server in servers)
    floor = median_of(floor_rounds)
    floor_rate = floor.requests_per_second
    lines = [
        "# The room list beside PostGraphile and the executor's own floor",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `bench/peer.py` on {machine()}; "
        f"PostgreSQL {version}; wrk -t{args.threads} -c{args.connections} -d{args.duration}s on "
        f"loopback, each server alone, {WARM_UP_REQUESTS} requests to warm it up; medians of "
        f"{args.rounds} rounds, the servers alternating; the floor {args.floor_seconds:g} s of "
        f"executions a round. Catalog: {args.streams} streams loaded through the callback route "
        f"(each one broadcast of two HLS and two MP4 parts, {LIVE_STREAMS} live), anchors with a "
        f"nickname and an avatar; page: the first 20 rooms with anchor, stream, broadcast and "
        f"recordings, {answer_bytes} bytes from the service. Reproduce: "
        f"`.venv/bin/python {command}`.",
        "",
        *TABLE_HEAD,
    ]
    for server in servers:
        measured = median_of(server.rounds)
        ratio = measured.requests_per_second / floor_rate
        lines.append(table_row(server.description, measured, ratio))
    lines.append(table_row(FLOOR, floor, 1.0))
    lines += [
        "",
        f"The floor: {1000 / floor_rate:.2f} ms a page on average, {floor_rate:,.0f} pages/s on "
        f"one core. **Cold room list / floor: {cold.requests_per_second / floor_rate:.3f}**; "
        f"cold room list / PostGraphile: "
        f"{cold.requests_per_second / peer.requests_per_second:.3f}.",
        "",
        "| round | " + " | ".join(server.label for server in servers) + " | floor |",
        "|---|" + "---:|" * (len(servers) + 1),
    ]
    for number, of_round in enumerate(
        zip(*(server.rounds for server in servers), floor_rounds, strict=True), start=1
    ):
        rates = " | ".join(f"{m.requests_per_second:,.0f}" for m in of_round)
        lines.append(f"| {number} | {rates} |")
    if notes:
        lines += ["", *(f"Warning: {note}." for note in notes)]
    text = "\n".join(lines) + "\n"
    args.results.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
