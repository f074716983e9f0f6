"""Room-list latency and server memory at 10,000 and 1,000,000 recording files, on PostgreSQL.

    .venv/bin/python bench/scale.py [--reuse] [--keep] [--duration 15] [--sizes 10000 1000000]
    .venv/bin/python bench/scale.py --source /path/to/patched/checkout   # measure a change

For each size, builds a catalog with bench/bulk.py in a database of its own
(`replay_scale_<files>`; `--reuse` takes it as a previous `--keep` run left it),
starts `replay-catalog serve` on it (one server at a time, `LIVE_SILENCE_SECONDS=0`
so that the catalog does not change under the measurement, `ACCESS_LOG=false`),
first with the response cache off (`RESPONSE_CACHE_ENTRIES=0`: every request runs
its SQL, which is what grows with the catalog), then with the default cache, and
measures with wrk:

  (a) the first room-list page: bench/run.py's ROOM_LIST (`rooms(first: 20)` with
      anchor, stream, broadcast and recordings),
  (b) the same query for the page after the room at 80 % of the list (the
      200,000th of 250,000 rooms at 1,000,000 files), reached with a cursor built
      the way the server builds it (`encode_cursor`) from the row SQL finds at that
      offset; at the smallest size it is also reached by following `endCursor`
      page by page, which must give the same cursor.

Latency is measured by wrk with one connection (`-t1 -c1`): one request at a time,
so p50/p99 are the time of one request, without queueing; a second wrk run with
`--connections` connections gives throughput and latency under load (cache off).
With the cache on, the same two requests are answered from it; then 600 distinct
pages are walked (following endCursor) to fill it. After each server's runs its
peak RSS is read from /proc/<pid>/status (VmHWM). EXPLAIN (ANALYZE, BUFFERS) of
the SQL the server runs for each page (the room-list query and the data loaders'
lookups, built by the service's own query functions) shows which indexes they use.

`--source DIR` runs the server, the migrations and the EXPLAINs from another
checkout (PYTHONPATH=DIR), to measure a change before it lands; the catalogs' rows
are still derived by this checkout, and the databases end up at DIR's migration
head (so do not `--reuse` them without the same `--source`).

Results go to bench/SCALE.md; anything in it from the line `## Analysis` on is kept
when the file is rewritten. The databases are dropped at the end unless `--keep`.
"""

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx
from bulk import SERVER, build, plain_url, serve
from fanout import drop_database
from run import ROOM_LIST, Measured, write_keeping_notes, wrk
from sqlalchemy.dialects import postgresql

from resolvers.pagination import encode_cursor
from storage import Anchor, Stream
from storage.broadcasts import RoomFilter, rooms_query
from storage.lookups import broadcasts_by_id_query, rows_by_key_query
from storage.recordings import recordings_of_broadcasts_query

BENCH = Path(__file__).parent
DEPTH = 0.8  # the deep page: after the room at this share of the list
PAGE = 20
DEEP_LIST = ROOM_LIST.replace("query RoomList {", "query RoomList($after: String) {").replace(
    "rooms(first: 20)", "rooms(first: 20, after: $after)"
)
assert DEEP_LIST.count("$after") == 2
# The room-list order, as storage.broadcasts.ROOMS sorts it, for finding a row by offset.
VISIBLE_ROOMS = "room_rank IS NOT NULL AND hidden IS false AND deleted_at IS NULL"
ROOM_AT = (
    f"SELECT room_rank, room_time, id FROM broadcast WHERE {VISIBLE_ROOMS} "  # noqa: S608
    "ORDER BY room_rank, room_time DESC, id DESC OFFSET $1 LIMIT 1"
)
PLAN_LINE = re.compile(r"Scan|Index Cond|Filter|Rows Removed|Sort|Presorted|Limit|Execution Time")
RSS_TARGET_MB = 300
RATIO_TARGET = 1.5


@dataclass
class SizeResult:
    files: int
    rows: dict[str, int]
    build_seconds: float | None  # None: reused
    rooms: int
    deep_offset: int
    measured: dict[str, Measured] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # by server: cache off, on
    load: dict[str, float] = field(default_factory=dict)  # 1-minute load average, by server
    plans: dict[str, list[str]] = field(default_factory=dict)
    walked: bool = False


def database_name(files: int) -> str:
    return f"replay_scale_{files}"


async def existing_rows(server: str, name: str) -> dict[str, int] | None:
    admin = await asyncpg.connect(server)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return None
    finally:
        await admin.close()
    connection = await asyncpg.connect(plain_url(server, name))
    try:
        return {
            table: await connection.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
            for table in (
                "anchor", "stream", "broadcast", "push_event", "recording_file", "screenshot",
            )
        }  # fmt: skip
    finally:
        await connection.close()


async def room_positions(url: str) -> tuple[int, Any, Any]:
    """(visible rooms, the row at the deep offset, the row after it)."""
    connection = await asyncpg.connect(url)
    try:
        rooms = await connection.fetchval(
            f"SELECT count(*) FROM broadcast WHERE {VISIBLE_ROOMS}"  # noqa: S608
        )
        offset = int(rooms * DEPTH) - 1
        at = await connection.fetchrow(ROOM_AT, offset)
        after = await connection.fetchrow(ROOM_AT, offset + 1)
        return rooms, at, after
    finally:
        await connection.close()


def cursor_of(row: Any) -> str:
    """The cursor the server gives this room (resolvers.pagination, listing "rooms")."""
    return encode_cursor("rooms", [row["room_rank"], row["room_time"], row["id"]])


def post(http: httpx.Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    answer = http.post("/graphql", json={"query": query, "variables": variables})
    body = answer.json()
    assert answer.status_code == 200 and "errors" not in body, str(body)[:500]
    return dict(body["data"]["rooms"])


def walk_to(http: httpx.Client, offset: int) -> str:
    """The cursor of the room at `offset`, by following endCursor from the first page."""
    after, seen = None, 0
    while True:
        page = post(http, DEEP_LIST, {"after": after})
        edges = page["edges"]
        if seen + len(edges) > offset:
            return str(edges[offset - seen]["cursor"])
        seen += len(edges)
        after = page["pageInfo"]["endCursor"]


def sql_of(statement: Any) -> str:
    return str(
        statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )


async def explain(url: str, position: list[Any] | None) -> dict[str, list[str]]:
    """EXPLAIN ANALYZE of what one room-list page runs: the page and the loaders' lookups
    for its rows (broadcasts, their recordings, streams and anchors)."""
    connection = await asyncpg.connect(url)
    plans = {}
    try:
        rows = (await connection.fetch(sql_of(rooms_query(RoomFilter(), position, PAGE).bound())))[
            :PAGE
        ]
        ids, stream_pks = [r["id"] for r in rows], sorted({r["stream_pk"] for r in rows})
        anchor_pks = [
            r["anchor_id"]
            for r in await connection.fetch(
                "SELECT DISTINCT anchor_id FROM stream WHERE id = ANY($1::int[])", stream_pks
            )
        ]
        statements = {
            "rooms page": rooms_query(RoomFilter(), position, PAGE).bound(),
            "broadcasts by id": broadcasts_by_id_query(ids, include_hidden=False).bound(),
            "recordings of broadcasts": recordings_of_broadcasts_query(ids).bound(),
            "streams by id": rows_by_key_query(Stream, "id", stream_pks).bound(),
            "anchors by id": rows_by_key_query(Anchor, "id", anchor_pks).bound(),
        }
        for name, statement in statements.items():
            sql = sql_of(statement)
            for _ in range(3):  # warm, then keep the last
                rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            plans[name] = [r[0] for r in rows if PLAN_LINE.search(r[0])]
    finally:
        await connection.close()
    return plans


def proc_status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(key)


def serve_catalog(
    args: argparse.Namespace, url: str, cache: bool
) -> tuple[subprocess.Popen[bytes], str]:
    settings = {"ACCESS_LOG": "false", "LIVE_SILENCE_SECONDS": "0"}
    if not cache:
        settings["RESPONSE_CACHE_ENTRIES"] = "0"
    return serve(url.replace("postgresql://", "postgresql+asyncpg://"), **settings)


def run_wrk(base: str, options: SimpleNamespace, body: Path) -> Measured:
    return wrk(f"{base}/graphql", "post_body.lua", options, {"BODY_FILE": str(body)})  # type: ignore[arg-type]


def measure_size(args: argparse.Namespace, files: int) -> SizeResult:
    name = database_name(files)
    url = plain_url(args.postgres, name)
    rows = asyncio.run(existing_rows(args.postgres, name)) if args.reuse else None
    if rows is not None and rows["recording_file"] == files:
        build_seconds = None
        print(f"{name}: reused, {rows}")
    else:
        built = asyncio.run(build(args.postgres, name, files, replace=True))
        rows, build_seconds = built.rows, built.seconds
        print(f"{name}: built in {built.seconds:.0f} s, {rows}")
    rooms, at, after = asyncio.run(room_positions(url))
    result = SizeResult(files, rows, build_seconds, rooms, int(rooms * DEPTH))
    deep_cursor = cursor_of(at)
    work = Path(tempfile.mkdtemp(prefix="replay-scale-"))
    first_body, deep_body = work / "first.json", work / "deep.json"
    first_body.write_text(json.dumps({"query": ROOM_LIST}))
    deep_body.write_text(json.dumps({"query": DEEP_LIST, "variables": {"after": deep_cursor}}))
    sequential = SimpleNamespace(threads=1, connections=1, duration=args.duration)
    loaded = SimpleNamespace(threads=2, connections=args.connections, duration=args.duration)

    for cache in (False, True):
        server, base = serve_catalog(args, url, cache)
        label = "cache on" if cache else "cache off"
        try:
            with httpx.Client(base_url=base, timeout=120) as http:
                first = post(http, ROOM_LIST, {})
                deep = post(http, DEEP_LIST, {"after": deep_cursor})
                assert len(first["edges"]) == PAGE and len(deep["edges"]) == PAGE
                # The page after the cursor starts with the next row in the server's order.
                assert deep["edges"][0]["cursor"] == cursor_of(after), (deep["edges"][0], after)
                if files == min(args.sizes) and not cache:
                    assert walk_to(http, result.deep_offset - 1) == deep_cursor
                    result.walked = True
                for _ in range(30):  # warm caches (PostgreSQL's, the OS's, the server's)
                    post(http, ROOM_LIST, {})
                    post(http, DEEP_LIST, {"after": deep_cursor})
            runs = [("first", sequential, first_body), ("deep", sequential, deep_body)]
            if not cache:
                runs += [("first loaded", loaded, first_body), ("deep loaded", loaded, deep_body)]
            result.load[label] = os.getloadavg()[0]
            for run_name, options, body in runs:
                measured = run_wrk(base, options, body)
                result.measured[f"{run_name}, {label}"] = measured
                print(f"  {files} files, {run_name}, {label}: p50 {measured.p50_ms:.2f} ms, "
                      f"p99 {measured.p99_ms:.2f} ms, {measured.requests_per_second:.0f}/s, "
                      f"errors {measured.errors}")  # fmt: skip
            if cache:
                with httpx.Client(base_url=base, timeout=120) as http:
                    fill_cache(http, FILL_PAGES)
            result.peak_rss_mb[label] = proc_status_mb(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait()
    for page, position in (("first", None), ("deep", [at["room_rank"], at["room_time"], at["id"]])):
        for statement, lines in explain_with(url, position).items():
            result.plans[f"{page} page: {statement}"] = lines
    return result


FILL_PAGES = 600


def fill_cache(http: httpx.Client, pages: int) -> None:
    """Ask for `pages` distinct pages (from the start, again when the list ends)."""
    after = None
    for _ in range(pages):
        page = post(http, DEEP_LIST, {"after": after})
        after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None


def explain_with(url: str, position: list[Any] | None) -> dict[str, list[str]]:
    """The plans, from a child process that imports the query functions of `--source`."""
    if position is not None:
        position = [position[0], position[1].isoformat(), position[2]]
    output = subprocess.run(  # noqa: S603
        [sys.executable, __file__, "--explain", url, json.dumps(position)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(json.loads(output))


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    memory = proc_status_mb_total()
    version = subprocess.run(  # noqa: S603
        ["psql", SERVER, "-Atc", "SHOW server_version"],  # noqa: S607
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory / 1024:.0f} GB RAM, Python "
        f"{platform.python_version()}, PostgreSQL {version or '?'} (default settings) on the "
        "same machine, loopback"
    )


def proc_status_mb_total() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024
    return 0.0


def report(args: argparse.Namespace, results: list[SizeResult]) -> str:
    small, large = results[0], results[-1]
    lines = [
        f"# Room list at scale: {small.files:,} against {large.files:,} recording files",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/scale.py` on {machine()}"
        + (f"; server run from `{args.source}`" if args.source else "")
        + ".",
        "",
        "```sh",
        ".venv/bin/python bench/scale.py            # builds both catalogs, measures, drops them",
        ".venv/bin/python bench/scale.py --keep     # keeps replay_scale_<files> for --reuse",
        ".venv/bin/python bench/bulk.py --files 1000000   # the catalog alone",
        ".venv/bin/python bench/bulk.py --verify          # bulk rows = what ingestion builds",
        "```",
        "",
        "Catalogs built by `bench/bulk.py` (COPY, rows derived by the ingestion code):",
        "",
        "| files | anchors | streams | broadcasts | push events | screenshots | rooms "
        "(visible) | built in |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        built = "reused" if r.build_seconds is None else f"{r.build_seconds:.0f} s"
        lines.append(
            f"| {r.files:,} | {r.rows['anchor']:,} | {r.rows['stream']:,} | "
            f"{r.rows['broadcast']:,} | {r.rows['push_event']:,} | {r.rows['screenshot']:,} | "
            f"{r.rooms:,} | {built} |"
        )
    loads = ", ".join(
        f"{r.files:,} files {label}: {value:.1f}"
        for r in results
        for label, value in r.load.items()
    )
    lines += [
        "",
        f"Latency of one request at a time (wrk -t1 -c1 -d{args.duration}s, after 30 warm-up "
        f"requests). (a) the first page, bench/run.py's ROOM_LIST; (b) the page after room "
        f"{small.deep_offset:,} of {small.rooms:,} / {large.deep_offset:,} of {large.rooms:,} "
        f"({DEPTH:.0%} deep), by cursor"
        + (" (the same cursor as following endCursor page by page)" if small.walked else "")
        + f". Load average (1 min) when each server's runs began: {loads}.",
        "",
        f"| page | response cache | {small.files:,} files p50 / p99 ms | {large.files:,} files "
        f"p50 / p99 ms | ratio p50 | ratio p99 | target ≤ {RATIO_TARGET} |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    verdicts = []
    for label, page in (("(a) first page", "first"), ("(b) deep page", "deep")):
        for cache in ("cache off", "cache on"):
            a, b = small.measured[f"{page}, {cache}"], large.measured[f"{page}, {cache}"]
            ratio50, ratio99 = b.p50_ms / a.p50_ms, b.p99_ms / a.p99_ms
            met = max(ratio50, ratio99) <= RATIO_TARGET
            if cache == "cache off":
                verdicts.append(met)
            lines.append(
                f"| {label} | {cache.split()[1]} | {a.p50_ms:.2f} / {a.p99_ms:.2f} | "
                f"{b.p50_ms:.2f} / {b.p99_ms:.2f} | {ratio50:.2f} | {ratio99:.2f} | "
                f"{'met' if met else '**missed**'} |"
            )
    lines += [
        "",
        "The targets are judged with the cache off: a cached answer costs the same at any "
        "size, and most deep pages (one per cursor) are not in the cache.",
        "",
        f"Under load, cache off (wrk -t2 -c{args.connections} -d{args.duration}s):",
        "",
        "| page | files | requests/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, page in (("(a) first page", "first"), ("(b) deep page", "deep")):
        for r in results:
            m = r.measured[f"{page} loaded, cache off"]
            lines.append(
                f"| {label} | {r.files:,} | {m.requests_per_second:,.0f} | {m.p50_ms:.2f} | "
                f"{m.p99_ms:.2f} | {m.errors} |"
            )
    lines += [
        "",
        "Server memory: peak RSS (VmHWM in `/proc/<pid>/status` of `replay-catalog serve`) "
        f"after its runs; with the cache on, after also walking {FILL_PAGES} distinct pages "
        "to fill it:",
        "",
        f"| files | cache off | cache on | target < {RSS_TARGET_MB} MB |",
        "|---:|---:|---:|---|",
    ]
    for r in results:
        met = max(r.peak_rss_mb.values()) < RSS_TARGET_MB
        verdicts.append(met)
        lines.append(
            f"| {r.files:,} | {r.peak_rss_mb['cache off']:.0f} MB | "
            f"{r.peak_rss_mb['cache on']:.0f} MB | {'met' if met else '**missed**'} |"
        )
    lines += [
        "",
        "Plans at the largest size, EXPLAIN (ANALYZE, BUFFERS) of the statements built by the "
        "service's query functions for each page (key lines):",
        "",
    ]
    for statement, plan_lines in large.plans.items():
        lines += [f"* {statement}", "", "  ```", *(f"  {p}" for p in plan_lines), "  ```", ""]
    lines.append("All targets met." if all(verdicts) else "Targets missed: see the analysis below.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16, help="for the run under load")
    parser.add_argument("--postgres", default=SERVER)
    parser.add_argument("--reuse", action="store_true", help="reuse replay_scale_<files>")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--source", help="run the server from this checkout")
    parser.add_argument("--explain", nargs=2, help=argparse.SUPPRESS)  # URL, position JSON
    args = parser.parse_args()
    if args.explain:
        url, given = args.explain
        position = json.loads(given)
        if position is not None:
            position[1] = datetime.fromisoformat(position[1])
        print(json.dumps(asyncio.run(explain(url, position))))
        return
    args.sizes.sort()
    if args.source:
        # For every child: the server, migrations, EXPLAIN. `python -m` looks in the
        # working directory before PYTHONPATH.
        args.source = str(Path(args.source).resolve())
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [args.source, os.environ.get("PYTHONPATH")])
        )
        os.chdir(args.source)
    results = []
    try:
        for files in args.sizes:
            results.append(measure_size(args, files))
    finally:
        if not args.keep:
            for files in args.sizes:
                name = database_name(files)
                asyncio.run(drop_database(args.postgres, plain_url(args.postgres, name)))
    text = report(args, results)
    write_keeping_notes(BENCH / "SCALE.md", text, "## Analysis")
    print(text)


if __name__ == "__main__":
    main()
