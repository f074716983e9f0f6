"""How close any Python service could come to the floor: the leanest handlers for the
same work, measured side by side with the service and the floor.

    .venv/bin/python bench/ceiling.py [--duration 10] [--connections 32] [--streams 200]

The targets of bench/run.py are ratios to a bare Starlette endpoint. This asks what the
best possible Python code reaches on the same machine, to tell a target the service
misses from a target no Python service on this stack can meet. The lean handlers:

- room list: the same four statements a page of the service costs (rooms, their
  streams, their anchors, their recordings), by hand-written SQL on a plain sqlite3
  connection, answers built as dicts and encoded with orjson; no GraphQL, no ORM,
  no validation. It must answer the service's room list byte for byte (checked), so
  it does the same work and nothing less.
- ingestion: the sign checked, the inbox row, the stream (created if new), the file
  and a broadcast of its own written with plain SQL, the catalog version raised, and
  every concurrent callback committed in one transaction (group commit, one sync to
  disk, `synchronous=FULL` as the service). Its broadcast is one per file, so it does
  less than the service's grouping: a bound, not a rival.

Writes bench/CEILING.md. `bench/ceiling.py serve --database FILE --port N` runs the lean
handlers alone.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from run import (
    BENCH,
    CLI,
    KEY,
    ROOM_LIST,
    TABLE_HEAD,
    Measured,
    catalog_events,
    free_port,
    service_env,
    signed,
    start,
    table_row,
    write_events,
    wrk,
    wrk_arguments,
)

from storage.broadcasts import ROOM_RANK_LIVE

ROOMS = """SELECT id, stream_pk, started_at, ended_at, is_live, duration_seconds,
    playback_url, hls_part_count, room_rank, room_time FROM broadcast
    WHERE room_rank IS NOT NULL AND hidden = 0 AND deleted_at IS NULL
    ORDER BY -room_rank DESC, room_time DESC, id DESC LIMIT 21"""
# The page's streams, anchors and recordings; {marks} is one "?" per id.
STREAMS = "SELECT id, stream_id, anchor_id, is_live FROM stream WHERE id IN ({marks})"
ANCHORS = "SELECT id, user_id, nickname, avatar_url FROM anchor WHERE id IN ({marks})"
RECORDINGS = """SELECT broadcast_id, file_id, format, video_url, start_time, duration_seconds,
    file_size FROM recording_file WHERE broadcast_id IN ({marks})
    ORDER BY start_time, end_time, file_id"""


def lean_app(database: str) -> Any:
    import orjson
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    read = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
    write = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
    write.execute("PRAGMA synchronous=FULL")

    def iso(stored: str | None) -> str | None:
        # Stored as "2026-11-01 12:00:00.000000" (UTC); answered as ISO 8601 with offset.
        return None if stored is None else f"{stored[:10]}T{stored[11:19]}+00:00"

    def by_ids(statement: str, ids: list[int]) -> sqlite3.Cursor:
        return read.execute(statement.format(marks=",".join("?" * len(ids))), ids)

    async def rooms(request: Request) -> Response:
        await request.body()
        found = read.execute(ROOMS).fetchall()
        page = found[:20]
        ids = [row[0] for row in page]
        stream_pks = sorted({row[1] for row in page})
        streams = {row[0]: row for row in by_ids(STREAMS, stream_pks)}
        anchors = {row[0]: row for row in by_ids(ANCHORS, sorted({s[2] for s in streams.values()}))}
        recordings: dict[int, list[dict[str, Any]]] = {}
        for row in by_ids(RECORDINGS, ids):
            recordings.setdefault(row[0], []).append(
                {"fileId": row[1], "format": row[2], "videoUrl": row[3],
                 "startTime": iso(row[4]), "durationSeconds": row[5],
                 "fileSize": None if row[6] is None else float(row[6])}
            )  # fmt: skip
        edges = []
        for pk, stream_pk, started, ended, live, seconds, url, parts, rank, at, *_ in page:
            stream = streams[stream_pk]
            anchor = anchors[stream[2]]
            position = f'["rooms",{rank},"{iso(at)}",{pk}]'  # json.dumps costs 10 us here
            replay = rank != ROOM_RANK_LIVE
            if not replay:
                url = None  # a live room plays from PLAY_DOMAIN, which the bench leaves unset
            elif not live and parts >= 2:
                url = f"{request.base_url}replays/{pk}.m3u8"
            edges.append({
                "cursor": base64.urlsafe_b64encode(position.encode()).decode().rstrip("="),
                "node": {
                    "kind": "REPLAY" if replay else "LIVE", "playbackUrl": url,
                    "anchor": {"userId": anchor[1], "nickname": anchor[2], "avatarUrl": anchor[3]},
                    "stream": {"streamId": stream[1], "isLive": bool(stream[3])},
                    "broadcast": {
                        "id": base64.b64encode(f"Broadcast:{pk}".encode()).decode(),
                        "startedAt": iso(started), "endedAt": iso(ended),
                        "durationSeconds": seconds, "recordings": recordings.get(pk, []),
                    },
                },
            })  # fmt: skip
        info = {"hasNextPage": len(found) > 20, "endCursor": edges[-1]["cursor"] if edges else None}
        answer = {"data": {"rooms": {"edges": edges, "pageInfo": info}}}
        return Response(orjson.dumps(answer), media_type="application/json")

    def apply(payload: dict[str, Any]) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        body = {k: v for k, v in payload.items() if k not in ("t", "sign")}
        key = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        stream_id = payload["stream_id"]
        inserted = write.execute(
            "INSERT INTO inbox_entry (event_key, event_type, stream_id, payload, received_at, "
            "outcome) VALUES (?, ?, ?, ?, ?, 'applied') ON CONFLICT DO NOTHING RETURNING id",
            (key, payload["event_type"], stream_id, orjson.dumps(payload).decode(), now),
        ).fetchone()
        if inserted is None:
            return
        stream = write.execute("SELECT id FROM stream WHERE stream_id = ?", (stream_id,)).fetchone()
        if stream is None:
            user = f"lean:{stream_id}"
            write.execute(
                "INSERT INTO anchor (user_id, is_placeholder, created_at, updated_at) "
                "VALUES (?, 1, ?, ?) ON CONFLICT DO NOTHING",
                (user, now, now),
            )
            anchor = write.execute("SELECT id FROM anchor WHERE user_id = ?", (user,)).fetchone()
            stream = write.execute(
                "INSERT INTO stream (stream_id, anchor_id, is_live, created_at) "
                "VALUES (?, ?, 0, ?) RETURNING id",
                (stream_id, anchor[0], now),
            ).fetchone()
        begin, end = (
            datetime.fromtimestamp(payload[name], UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            for name in ("start_time", "end_time")
        )
        seconds = payload["end_time"] - payload["start_time"]
        broadcast = write.execute(
            "INSERT INTO broadcast (stream_pk, started_at, ended_at, is_live, duration_seconds, "
            "playback_url, recording_count, room_rank, room_time, updated_at, last_seen_at) "
            "VALUES (?, ?, ?, 0, ?, ?, 1, 1, ?, ?, ?) RETURNING id",
            (stream[0], begin, end, seconds, payload["video_url"], end, now, end),
        ).fetchone()
        write.execute(
            "INSERT INTO recording_file (file_id, stream_pk, broadcast_id, format, video_url, "
            "file_size, start_time, end_time, duration_seconds, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (payload["file_id"], stream[0], broadcast[0], payload["file_format"].upper(),
             payload["video_url"], payload["file_size"], begin, end, seconds, now),
        )  # fmt: skip
        write.execute("UPDATE catalog_version SET version = version + 1")

    waiting: list[tuple[dict[str, Any], asyncio.Future[None]]] = []

    def commit_waiting() -> None:
        batch = waiting[:]
        waiting.clear()
        write.execute("BEGIN IMMEDIATE")
        for payload, _ in batch:
            write.execute("SAVEPOINT callback")
            apply(payload)
            write.execute("RELEASE callback")
        write.execute("COMMIT")
        for _, done in batch:
            done.set_result(None)

    async def callback(request: Request) -> Response:
        payload = orjson.loads(await request.body())
        expected = hashlib.md5(f"{KEY}{payload['t']}".encode()).hexdigest()
        if payload["sign"] != expected or payload["t"] < time.time():
            return Response(b'{"code":1}', status_code=403, media_type="application/json")
        done = asyncio.get_running_loop().create_future()
        waiting.append((payload, done))
        if len(waiting) == 1:
            # The first of a batch commits it, after the loop has let the others join.
            asyncio.get_running_loop().call_soon(commit_waiting)
        await done
        return Response(b'{"code":0}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/graphql", rooms, methods=["POST"]),
            Route("/callbacks/tencent", callback, methods=["POST"]),
        ]
    )


def serve(argv: list[str]) -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        lean_app(args.database),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


def main() -> None:
    args = wrk_arguments(__doc__.split("\n\n")[0])
    work = Path(tempfile.mkdtemp(prefix="replay-ceiling-"))
    service_db, lean_db = work / "service.db", work / "lean.db"
    env = service_env(f"sqlite+aiosqlite:///{service_db}")
    service_port, lean_port, floor_port = free_port(), free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        # The catalog, through the service's callback route; the lean handlers get a copy.
        loader = start([*CLI, "serve", "--port", str(service_port)], env, service_port)
        with httpx.Client(base_url=f"http://127.0.0.1:{service_port}", timeout=30) as http:
            for event in catalog_events(args.streams):
                assert http.post("/callbacks/tencent", json=signed(event)).status_code == 200
        loader.terminate()
        loader.wait()
        with sqlite3.connect(service_db) as source, sqlite3.connect(lean_db) as copy:
            source.backup(copy)

        uncached = {**env, "RESPONSE_CACHE_ENTRIES": "0"}
        processes.append(
            start([*CLI, "serve", "--port", str(service_port)], uncached, service_port)
        )
        lean = [sys.executable, str(Path(__file__)), "serve", "--database", str(lean_db)]
        processes.append(start([*lean, "--port", str(lean_port)], env, lean_port))
        service_answer = httpx.post(
            f"http://127.0.0.1:{service_port}/graphql", json={"query": ROOM_LIST}
        ).content
        lean_answer = httpx.post(
            f"http://127.0.0.1:{lean_port}/graphql", json={"query": ROOM_LIST}
        ).content
        if lean_answer != service_answer:
            raise SystemExit("the lean room list does not answer what the service answers")
        answer_file = work / "answer.json"
        answer_file.write_bytes(service_answer)
        floor = [sys.executable, str(BENCH / "floor.py"), "--body", str(answer_file)]
        processes.append(start([*floor, "--port", str(floor_port)], env, floor_port))

        body_file = work / "room-list-request.json"
        body_file.write_text(json.dumps({"query": ROOM_LIST}))
        events_file = work / "events.jsonl"
        write_events(events_file)
        rooms_env = {"BODY_FILE": str(body_file)}
        events_env = {"EVENTS_FILE": str(events_file)}

        def measure(port: int, path: str, script: str, extra: dict[str, str]) -> Measured:
            return wrk(f"http://127.0.0.1:{port}{path}", script, args, extra)

        rooms = [
            measure(port, "/graphql", "post_body.lua", rooms_env)
            for port in (service_port, lean_port, floor_port)
        ]
        # The service's ingestion was measured by bench/run.py; here the lean one alone.
        ingestion = [
            measure(port, "/callbacks/tencent", "post_events.lua", events_env)
            for port in (lean_port, floor_port)
        ]
        with sqlite3.connect(lean_db) as check:
            stored = check.execute("SELECT count(*) FROM recording_file").fetchone()[0]
    finally:
        for process in processes:
            process.terminate()
    report(args, len(service_answer), rooms, ingestion, stored)
    shutil.rmtree(work, ignore_errors=True)


def report(
    args: argparse.Namespace,
    answer_bytes: int,
    rooms: list[Measured],
    ingestion: list[Measured],
    stored: int,
) -> None:
    service, lean, floor = rooms
    lean_ingest, ingest_floor = ingestion
    rows = [
        ("room list, service, response cache off", service, floor),
        ("room list, leanest Python handler (same bytes)", lean, floor),
        ("room list, bare Starlette floor", floor, floor),
        ("callback ingestion, leanest Python handler (group commit)", lean_ingest, ingest_floor),
        ("callback body read, bare Starlette floor", ingest_floor, ingest_floor),
    ]
    lines = [
        "# Ceiling: the leanest Python handlers against the floor",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `bench/ceiling.py` on "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; wrk -t{args.threads} "
        f"-c{args.connections} -d{args.duration}s on loopback; catalog of {args.streams} streams "
        f"loaded through the service's callback route; room-list answer {answer_bytes} bytes, "
        "the same bytes from the service and the lean handler. What the lean handlers do is in "
        "the script's docstring. Reproduce: `.venv/bin/python bench/ceiling.py`.",
        "",
        *TABLE_HEAD,
    ]
    lines += [
        table_row(label, measured, measured.requests_per_second / base.requests_per_second)
        for label, measured, base in rows
    ]
    lines += ["", f"The lean ingestion stored {stored:,} recording files in all."]
    text = "\n".join(lines) + "\n"
    (BENCH / "CEILING.md").write_text(text)
    print(text)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2:])
    else:
        main()
