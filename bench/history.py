"""Callback cost against the stream's history: a new file, push or cut-off for a stream
with thousands of past broadcasts must cost what it costs for a new stream.

    .venv/bin/python bench/history.py [--history 2000] [--callbacks 200] [--database sqlite]
        [--kind file|push]

Starts `replay-catalog serve` (on a fresh SQLite file, or a fresh PostgreSQL database
with `--database postgres`), gives one stream `--history` broadcasts through the
callback route (an hour apart: one recording file each, or with `--kind push` a push
and its cut-off each), then posts `--callbacks` new ones of the same kind, one callback
at a time, alternately to that stream and to fresh streams (the baseline, side by side
in the same run), and reports the latency of each kind and their ratio to
bench/HISTORY[-push][-postgres].md.
"""

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fanout import drop_database, fresh_database
from run import CLI, free_port, recording, service_env, signed, start

BENCH = Path(__file__).parent
HOUR = 3600


def post(http: httpx.Client, stream: str, name: str, at: int, kind: str) -> list[float]:
    """Post one broadcast's callbacks (a file, or a push and its cut-off); the seconds
    until each was acknowledged."""
    if kind == "file":
        events = [recording(stream, name, at, at + HOUR // 2, "mp4")]
    else:
        push = {"stream_id": stream, "channel_id": stream, "sequence": name}
        events = [
            {**push, "event_type": 1, "event_time": at},
            {**push, "event_type": 0, "event_time": at + HOUR // 2, "push_duration": 1_800_000},
        ]
    seconds = []
    for event in events:
        started = time.perf_counter()
        response = http.post("/callbacks/tencent", json=signed(event))
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return seconds


@contextmanager
def database_for(args: argparse.Namespace, work: Path) -> Iterator[str]:
    """A fresh SQLite file, or a fresh database on the PostgreSQL server (dropped after)."""
    if args.database == "sqlite":
        yield f"sqlite+aiosqlite:///{work / 'history.db'}"
        return
    database_url = asyncio.run(fresh_database(args.postgres))
    try:
        yield database_url
    finally:
        asyncio.run(drop_database(args.postgres, database_url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=2000, help="files of the long stream")
    parser.add_argument("--callbacks", type=int, default=200, help="measured callbacks")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--kind", choices=("file", "push"), default="file")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="replay-history-"))
    with database_for(args, work) as database_url:
        port = free_port()
        service = start([*CLI, "serve", "--port", str(port)], service_env(database_url), port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                # In the past: callbacks stamped more than a day ahead are quarantined.
                base = int(time.time()) - (args.history + args.callbacks + 2) * HOUR
                loading = time.perf_counter()
                for index in range(args.history):
                    post(http, "2121_long", f"long{index}", base + index * HOUR, args.kind)
                loaded = time.perf_counter() - loading
                long_stream: list[float] = []
                fresh_streams: list[float] = []
                for index in range(args.callbacks):
                    at = base + (args.history + index) * HOUR
                    long_stream += post(http, "2121_long", f"long-new{index}", at, args.kind)
                    fresh = f"2121_fresh{uuid.uuid4().hex[:8]}"
                    fresh_streams += post(http, fresh, f"{fresh}-0", at, args.kind)
        finally:
            service.terminate()
            service.wait()
    shutil.rmtree(work, ignore_errors=True)
    report(args, loaded, long_stream, fresh_streams)


def summary(seconds: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def report(
    args: argparse.Namespace, loaded: float, long_stream: list[float], fresh: list[float]
) -> None:
    what = "file" if args.kind == "file" else "push and cut-off"
    long_p50, long_p99 = summary(long_stream)
    fresh_p50, fresh_p99 = summary(fresh)
    text = "\n".join(
        [
            f"# Callback cost against the stream's history ({args.database})",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `bench/history.py "
            f"--history {args.history} --callbacks {args.callbacks} --database "
            f"{args.database} --kind {args.kind}` on {os.cpu_count()} cores, Python "
            f"{platform.python_version()}: one stream given {args.history} broadcasts "
            f"({what}) through the callback route ({args.history / loaded:.0f} broadcasts/s, "
            f"one callback at a time), then {args.callbacks} new ones each for it and for "
            "fresh streams, alternately, one callback at a time.",
            "",
            f"| new {what} for | p50 ms | p99 ms |",
            "|---|---:|---:|",
            f"| a stream with {args.history} broadcasts | {long_p50:.2f} | {long_p99:.2f} |",
            f"| a fresh stream (baseline) | {fresh_p50:.2f} | {fresh_p99:.2f} |",
            "",
            f"Ratio of p50s (long history / fresh): **{long_p50 / fresh_p50:.2f}**.",
            "",
        ]
    )
    name = "HISTORY" + ("-push" if args.kind == "push" else "")
    out = BENCH / (name + ("" if args.database == "sqlite" else "-postgres") + ".md")
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
