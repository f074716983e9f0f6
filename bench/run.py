"""Benchmark the service against a bare Starlette floor, side by side, with wrk.

    .venv/bin/python bench/run.py [--duration 10] [--connections 32] [--streams 200]
                                  [--database postgresql://postgres@127.0.0.1:5432/bench]
                                  [--baseline DIR] [--rounds 1] [--results PATH]

Starts `replay-catalog serve` on a fresh SQLite file (or on the PostgreSQL database that
`--database` names, emptied first and created if missing), loads a catalog through the real
callback route, then measures with wrk (Debian's `wrk`, installed if missing):

  (a) the room list (`first: 20` with anchor, stream, broadcast and recordings), with
      the response cache warm, and (a') with it off (a server of its own, same database),
  (a'') with `--baseline DIR` (a checkout of another commit with its own `.venv`), the same
      uncached room list from `DIR/.venv/bin/replay-catalog serve` on the same rows, with
      RESPONSE_CACHE_ENTRIES=0 and GRAPHQL_QUERY_PLANS=false, measured right after (a');
      (a') and (a'') alternate `--rounds` times and count by their medians,
  (b) the same response bytes served by a bare Starlette endpoint (the floor),
  (c) callback ingestion of new recording files against (d) a bare endpoint that only
      reads the body; with `--baseline DIR`, (c'') the baseline's ingestion on the same
      database, alternating with (c) `--rounds` times, each measurement on new streams.

Each server runs alone while it is measured (started for its measurement, warmed up by the
room list, stopped after). It prints throughput, p50/p99 latency, the ratios to the floor and
(a') / (a''), and writes them with the machine and the date to bench/RESULTS.md
(bench/RESULTS-postgres.md on PostgreSQL; `--results` elsewhere).
"""

import argparse
import asyncio
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import IO
from urllib.parse import urlsplit

import asyncpg
import httpx

BENCH = Path(__file__).parent
KEY = "bench-callback-key"
ROOM_LIST = """query RoomList { rooms(first: 20) { edges { cursor node {
  kind playbackUrl anchor { userId nickname avatarUrl }
  stream { streamId isLive }
  broadcast { id startedAt endedAt durationSeconds
    recordings { fileId format videoUrl startTime durationSeconds fileSize } }
} } pageInfo { hasNextPage endCursor } } }"""
BASE = 1_793_534_400
# Room-list requests a fresh server answers before wrk measures it: parses, validation,
# the connection pool and the database's pages are warm for every server alike.
WARM_UP_REQUESTS = 30
# The database the test suite runs on; this script empties the one it is given.
TEST_DATABASE = "test"


@dataclass
class Measured:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def signed(payload: dict[str, object]) -> dict[str, object]:
    t = int(time.time()) + 3 * 3600
    return {**payload, "t": t, "sign": hashlib.md5(f"{KEY}{t}".encode()).hexdigest()}


def recording(stream: str, file_id: str, start: int, end: int, fmt: str) -> dict[str, object]:
    extension = {"hls": "m3u8", "mp4": "mp4"}[fmt]
    return {
        "event_type": 100, "stream_id": stream, "file_id": file_id, "file_format": fmt,
        "video_url": f"http://1252033264.vod2.myqcloud.com/{file_id}/f0.{extension}",
        "start_time": start, "end_time": end, "file_size": (end - start) * 100_000,
    }  # fmt: skip


def catalog_events(streams: int) -> list[dict[str, object]]:
    """A catalog: each stream one replay in HLS and two MP4 parts; a few streams live."""
    events: list[dict[str, object]] = []
    for index in range(streams):
        stream = f"2121_anchor{index:05d}"
        start = BASE + index * 600
        events.append({"event_type": 1, "stream_id": stream, "event_time": start,
                       "sequence": f"s{index}"})  # fmt: skip
        events.append(recording(stream, f"hls{index}", start, start + 3600, "hls"))
        events.append(recording(stream, f"mp4a{index}", start, start + 1800, "mp4"))
        events.append(recording(stream, f"mp4b{index}", start + 1800, start + 3600, "mp4"))
        if index % 40:
            events.append({"event_type": 0, "stream_id": stream, "event_time": start + 3600,
                           "sequence": f"s{index}"})  # fmt: skip
    return events


CLI = [sys.executable, "-m", "replay_catalog.cli"]


def service_env(database_url: str) -> dict[str, str]:
    """The environment of a benchmarked `replay-catalog serve`."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "CALLBACK_KEY": KEY,
        "LOG_LEVEL": "WARNING",
        "REFUSED_CALLBACKS_PER_MINUTE": "100000",
        # wrk asks from one address as fast as answered: the load, not an attacker.
        "GRAPHQL_COMPUTATIONS_PER_CLIENT_PER_SECOND": "0",
        # Like the floor: no line per request on stdout (the service still logs callbacks).
        "ACCESS_LOG": "false",
    }


def start(
    command: list[str],
    env: dict[str, str],
    port: int,
    log: IO[bytes] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server and wait until its port accepts; its stderr goes to `log` if given."""
    process = subprocess.Popen(  # noqa: S603
        command, env=env, stdout=subprocess.DEVNULL, stderr=log, cwd=cwd
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{shlex.join(command)} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{command[0]} did not start on port {port}")


@contextmanager
def running(command: list[str], env: dict[str, str], cwd: Path | None = None) -> Iterator[str]:
    """`command --port N` serving for the duration of the block; yields its base URL."""
    port = free_port()
    process = start([*command, "--port", str(port)], env, port, cwd=cwd)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wrk(url: str, script: str, args: argparse.Namespace, env: dict[str, str]) -> Measured:
    command = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
        "--latency", "-s", str(BENCH / script), url,
    ]  # fmt: skip
    output = subprocess.run(  # noqa: S603
        command, env={**os.environ, **env, "THREADS": str(args.threads)},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    # "Socket errors: connect 0, read 0, write 0, timeout 12" (wrk times out after 2 s)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return Measured(
        name=url,
        requests_per_second=rate,
        p50_ms=_percentile(output, "50%"),
        p99_ms=_percentile(output, "99%"),
        errors=(int(errors.group(1)) if errors else 0)
        + (sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1))) if socket_errors else 0),
    )


def _percentile(output: str, label: str) -> float:
    match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", output)
    assert match, output
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def median_of(rounds: list[Measured]) -> Measured:
    """One figure for several rounds: the median of each column, the errors of them all."""
    return Measured(
        name=rounds[0].name,
        requests_per_second=median(m.requests_per_second for m in rounds),
        p50_ms=median(m.p50_ms for m in rounds),
        p99_ms=median(m.p99_ms for m in rounds),
        errors=sum(m.errors for m in rounds),
    )


def wrk_parser(description: str) -> argparse.ArgumentParser:
    """The options every wrk benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--streams", type=int, default=200, help="streams in the catalog")
    return parser


def ensure_wrk() -> None:
    """Install Debian's wrk if it is missing."""
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)  # noqa: S607


def wrk_arguments(description: str) -> argparse.Namespace:
    """The options of a wrk benchmark; installs Debian's wrk if it is missing."""
    args = wrk_parser(description).parse_args()
    ensure_wrk()
    return args


def file_start_time(index: int) -> int:
    """When the `index`-th new recording file of a load starts: half a minute apart (hours
    apart on each of 500 streams), from two days after the catalog; 50,000 files end 19
    days after it, before the present (the service quarantines times more than a day
    ahead of it)."""
    return BASE + 2 * 86400 + index * 30


def write_keeping_notes(path: Path, text: str, notes_heading: str) -> None:
    """Write a results file, keeping what the old one holds from its first line that
    starts with `notes_heading` on (notes written by hand under the measured tables)."""
    previous = "\n" + path.read_text() if path.exists() else ""
    start = previous.find(f"\n{notes_heading}")
    path.write_text(text + (previous[start:] if start >= 0 else ""))


def write_events(path: Path, count: int = 50_000, tag: str = "") -> None:
    """Signed callbacks of new recording files on 500 streams, one JSON per line, for wrk;
    a different `tag` gives the same load on other streams (for another measurement on
    the same database)."""
    with path.open("w") as out:
        for index in range(count):
            stream = f"2121_bench{tag}{index % 500:04d}"
            start_time = file_start_time(index)
            file_id = f"ingest{tag}{index}"
            event = recording(stream, file_id, start_time, start_time + 59, "mp4")
            out.write(json.dumps(signed(event)) + "\n")


def plain_postgres_url(url: str) -> str:
    """`url` as asyncpg takes it (the service also takes `postgresql+asyncpg://`)."""
    return re.sub(r"^postgres(ql)?(\+asyncpg)?://", "postgresql://", url)


async def empty_postgres(url: str) -> None:
    """Create the database `url` names if it is missing, and drop every table in it."""
    plain = plain_postgres_url(url)
    try:
        connection = await asyncpg.connect(plain)
    except asyncpg.InvalidCatalogNameError:
        admin = await asyncpg.connect(plain, database="postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{urlsplit(plain).path.lstrip("/")}"')
        finally:
            await admin.close()
        connection = await asyncpg.connect(plain)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


def arguments() -> argparse.Namespace:
    parser = wrk_parser(__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database",
        metavar="URL",
        help="run on this PostgreSQL database, emptied first (DROP SCHEMA public CASCADE) and "
        "created if missing, e.g. postgresql://postgres@127.0.0.1:5432/bench; "
        "default: a fresh SQLite file",
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        type=Path,
        help="a checkout of another commit with its own .venv: measure its uncached room list "
        "(GRAPHQL_QUERY_PLANS=false) on the same rows, after this tree's",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure the uncached room list this many times (alternating with the baseline) "
        "and count the medians",
    )
    parser.add_argument(
        "--results",
        metavar="PATH",
        type=Path,
        help="markdown file to write; default: bench/RESULTS.md, bench/RESULTS-postgres.md "
        "with --database",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.database is not None:
        if not re.match(r"^postgres(ql)?(\+asyncpg)?://", args.database):
            parser.error("--database takes a postgresql:// URL")
        if urlsplit(plain_postgres_url(args.database)).path.lstrip("/") == TEST_DATABASE:
            parser.error(f"--database: the test suite uses `{TEST_DATABASE}`; pick another one")
    if args.baseline is not None:
        args.baseline = args.baseline.resolve()
        if not (args.baseline / ".venv/bin/replay-catalog").is_file():
            parser.error(f"--baseline: no {args.baseline / '.venv/bin/replay-catalog'}")
    ensure_wrk()
    return args


def checkout_label(directory: Path) -> str:
    """The commit a checkout is at, for the results (its path if git cannot tell)."""
    found = subprocess.run(  # noqa: S603
        ["git", "-C", str(directory), "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() if found.returncode == 0 else str(directory)


def answers_alike(answer: bytes, expected: bytes) -> bool:
    """Whether two room-list answers say the same (key order aside)."""
    try:
        return answer == expected or json.loads(answer) == json.loads(expected)
    except ValueError:
        return False


def warm_up(base: str, expected: bytes) -> bool:
    """Send a fresh server the room list WARM_UP_REQUESTS times; whether it answers `expected`."""
    with httpx.Client(base_url=base, timeout=30) as http:
        answers = [
            http.post("/graphql", json={"query": ROOM_LIST}).content
            for _ in range(WARM_UP_REQUESTS)
        ]
    return all(answers_alike(answer, expected) for answer in answers)


def different_answer(round_number: int, server: str) -> str:
    return (
        f"round {round_number}: without the response cache, {server} answered the room list"
        " unlike the server that loaded the catalog"
    )


@dataclass
class Results:
    """What one run measured, for the report."""

    database: str  # "SQLite" or "PostgreSQL"
    answer_bytes: int
    rooms: Measured
    uncached: list[Measured]  # one per round
    baseline: list[Measured]  # one per round; empty without --baseline
    baseline_label: str
    rooms_floor: Measured
    ingest: list[Measured]  # one per round
    baseline_ingest: list[Measured]  # one per round; empty without --baseline
    ingest_floor: Measured
    notes: list[str]


def main() -> None:
    args = arguments()
    work = Path(tempfile.mkdtemp(prefix="replay-bench-"))
    if args.database is None:
        database, database_url = "SQLite", f"sqlite+aiosqlite:///{work / 'bench.db'}"
    else:
        database, database_url = "PostgreSQL", args.database
        asyncio.run(empty_postgres(database_url))
    env = service_env(database_url)
    uncached_env = {**env, "RESPONSE_CACHE_ENTRIES": "0"}
    # Only the baseline is told GRAPHQL_QUERY_PLANS: this tree may not have the setting.
    baseline_env = {**uncached_env, "GRAPHQL_QUERY_PLANS": "false"}
    serve = [*CLI, "serve"]
    body_file = work / "room-list-request.json"
    body_file.write_text(json.dumps({"query": ROOM_LIST}))
    answer_file = work / "room-list-answer.json"
    events_file = work / "events.jsonl"
    write_events(events_file)

    def fresh_events(measurement: str) -> dict[str, str]:
        """wrk's environment for callbacks on streams no other measurement used."""
        path = work / f"events-{measurement}.jsonl"
        write_events(path, tag=measurement)
        return {"EVENTS_FILE": str(path)}

    floor = [sys.executable, str(BENCH / "floor.py"), "--body", str(answer_file)]
    rooms_env = {"BODY_FILE": str(body_file)}
    events_env = {"EVENTS_FILE": str(events_file)}
    notes: list[str] = []
    try:
        with running(serve, env) as base:
            with httpx.Client(base_url=base, timeout=30) as http:
                for event in catalog_events(args.streams):
                    assert http.post("/callbacks/tencent", json=signed(event)).status_code == 200
                room_list = http.post("/graphql", json={"query": ROOM_LIST}).content
            assert b'"errors"' not in room_list, room_list[:500]
            rooms = wrk(f"{base}/graphql", "post_body.lua", args, rooms_env)
        answer_file.write_bytes(room_list)

        uncached: list[Measured] = []
        baseline: list[Measured] = []
        for round_number in range(1, args.rounds + 1):
            with running(serve, uncached_env) as base:
                if not warm_up(base, room_list):
                    notes.append(different_answer(round_number, "this tree"))
                uncached.append(wrk(f"{base}/graphql", "post_body.lua", args, rooms_env))
            progress = f"round {round_number}/{args.rounds}: uncached room list "
            progress += f"{uncached[-1].requests_per_second:,.1f} requests/s"
            if args.baseline is not None:
                baseline_serve = [str(args.baseline / ".venv/bin/replay-catalog"), "serve"]
                with running(baseline_serve, baseline_env, cwd=args.baseline) as base:
                    if not warm_up(base, room_list):
                        notes.append(different_answer(round_number, "the baseline"))
                    baseline.append(wrk(f"{base}/graphql", "post_body.lua", args, rooms_env))
                ratio = uncached[-1].requests_per_second / baseline[-1].requests_per_second
                progress += f", baseline {baseline[-1].requests_per_second:,.1f} ({ratio:.3f})"
            print(progress, flush=True)

        with running(floor, env) as base:
            rooms_floor = wrk(f"{base}/graphql", "post_body.lua", args, rooms_env)
        # On the catalog's database, alternating with the baseline's server, each on
        # streams of its own: every measurement ingests new files on new streams.
        ingest: list[Measured] = []
        baseline_ingest: list[Measured] = []
        for round_number in range(1, args.rounds + 1):
            with running(serve, env) as base:
                ingest.append(
                    wrk(f"{base}/callbacks/tencent", "post_events.lua", args,
                        fresh_events(f"t{round_number}"))
                )  # fmt: skip
            progress = f"round {round_number}/{args.rounds}: ingestion "
            progress += f"{ingest[-1].requests_per_second:,.1f} callbacks/s"
            if args.baseline is not None:
                baseline_serve = [str(args.baseline / ".venv/bin/replay-catalog"), "serve"]
                with running(baseline_serve, env, cwd=args.baseline) as base:
                    baseline_ingest.append(
                        wrk(f"{base}/callbacks/tencent", "post_events.lua", args,
                            fresh_events(f"b{round_number}"))
                    )  # fmt: skip
                ratio = ingest[-1].requests_per_second / baseline_ingest[-1].requests_per_second
                progress += f", baseline {baseline_ingest[-1].requests_per_second:,.1f}"
                progress += f" ({ratio:.3f})"
            print(progress, flush=True)
        with running(floor, env) as base:
            ingest_floor = wrk(f"{base}/callbacks/tencent", "post_events.lua", args, events_env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    results = Results(
        database=database,
        answer_bytes=len(room_list),
        rooms=rooms,
        uncached=uncached,
        baseline=baseline,
        baseline_label=checkout_label(args.baseline) if args.baseline else "",
        rooms_floor=rooms_floor,
        ingest=ingest,
        baseline_ingest=baseline_ingest,
        ingest_floor=ingest_floor,
        notes=notes,
    )
    default = "RESULTS.md" if args.database is None else "RESULTS-postgres.md"
    report(args, results, args.results or BENCH / default)


TABLE_HEAD = [
    "| measurement | requests/s | p50 ms | p99 ms | non-2xx + socket errors | ratio to floor |",
    "|---|---:|---:|---:|---:|---:|",
]


def table_row(label: str, measured: Measured, ratio: float) -> str:
    return (
        f"| {label} | {measured.requests_per_second:,.0f} | {measured.p50_ms:.2f} | "
        f"{measured.p99_ms:.2f} | {measured.errors} | {ratio:.3f} |"
    )


def report(args: argparse.Namespace, results: Results, path: Path) -> None:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    floor_rate = results.rooms_floor.requests_per_second
    uncached = median_of(results.uncached)
    rounds = "" if args.rounds == 1 else f", median of {args.rounds} rounds"
    rows = [
        ("(a) room list, service, warm response cache (target 0.5)", results.rooms,
         results.rooms.requests_per_second / floor_rate),
        (f"(a') room list, service, response cache off (target 0.15{rounds})", uncached,
         uncached.requests_per_second / floor_rate),
    ]  # fmt: skip
    if results.baseline:
        baseline = median_of(results.baseline)
        rows.append(
            (f"(a'') room list, baseline {results.baseline_label}, response cache off, "
             f"GRAPHQL_QUERY_PLANS=false{rounds}", baseline,
             baseline.requests_per_second / floor_rate)
        )  # fmt: skip
    ingest = median_of(results.ingest)
    floor_ingest = results.ingest_floor.requests_per_second
    rows += [
        ("(b) room list, bare Starlette floor", results.rooms_floor, 1.0),
        (f"(c) callback ingestion, service ({results.database}; target 0.4{rounds})", ingest,
         ingest.requests_per_second / floor_ingest),
    ]  # fmt: skip
    if results.baseline_ingest:
        baseline_ingest = median_of(results.baseline_ingest)
        rows.append(
            (f"(c'') callback ingestion, baseline {results.baseline_label}{rounds}",
             baseline_ingest, baseline_ingest.requests_per_second / floor_ingest)
        )  # fmt: skip
    rows.append(("(d) callback body read, bare Starlette floor", results.ingest_floor, 1.0))
    command = shlex.join(["bench/run.py", *sys.argv[1:]])
    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `bench/run.py` on {os.cpu_count()} "
        f"cores ({cpu}), Python {platform.python_version()}; wrk -t{args.threads} "
        f"-c{args.connections} -d{args.duration}s on loopback; {results.database}; catalog of "
        f"{args.streams} streams loaded through the callback route; room-list answer "
        f"{results.answer_bytes} bytes. The service and its floor are measured in the same run, "
        "each server alone, all without access logs; the servers without the response cache "
        f"get {WARM_UP_REQUESTS} room-list requests before they are measured. "
        f"Reproduce: `.venv/bin/python {command}`.",
        "",
        *TABLE_HEAD,
    ]
    lines += [table_row(label, measured, ratio) for label, measured, ratio in rows]
    if results.baseline:
        lines += baseline_section(
            "Uncached room list",
            "Requests/s without the response cache, this tree (a') and the baseline with "
            "GRAPHQL_QUERY_PLANS=false (a''), measured alternately on the same rows, each "
            "server alone; above 1.000 this tree is faster.",
            results.uncached,
            results.baseline,
            results.baseline_label,
        )
    if results.baseline_ingest:
        lines += baseline_section(
            "Callback ingestion",
            "Callbacks/s, this tree (c) and the baseline (c''), measured alternately on the "
            "catalog's database, each server alone and each on streams of its own; above "
            "1.000 this tree is faster.",
            results.ingest,
            results.baseline_ingest,
            results.baseline_label,
        )
    if results.notes:
        lines += ["", *(f"Warning: {note}." for note in results.notes)]
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    print(text)


def baseline_section(
    title: str,
    explanation: str,
    mine: list[Measured],
    theirs: list[Measured],
    baseline_label: str,
) -> list[str]:
    """This tree's rounds against the baseline's, and the ratio of their medians."""
    current = median_of(mine).requests_per_second
    baseline = median_of(theirs).requests_per_second
    ratios = [
        ours.requests_per_second / other.requests_per_second
        for ours, other in zip(mine, theirs, strict=True)
    ]
    lines = [
        "",
        f"## {title}: this tree / baseline {baseline_label}",
        "",
        explanation,
        "",
        "| round | this tree | baseline | this tree / baseline |",
        "|---|---:|---:|---:|",
    ]
    for number, (ours, other, ratio) in enumerate(zip(mine, theirs, ratios, strict=True), 1):
        lines.append(
            f"| {number} | {ours.requests_per_second:,.1f} | "
            f"{other.requests_per_second:,.1f} | {ratio:.3f} |"
        )
    lines += [
        f"| median | {current:,.1f} | {baseline:,.1f} | {median(ratios):.3f} |",
        "",
        f"**This tree / baseline: {current / baseline:.3f}** (the ratio of the medians; the "
        f"median of the rounds' ratios, each round's two servers measured back to back, "
        f"is {median(ratios):.3f}).",
    ]
    return lines


if __name__ == "__main__":
    main()
