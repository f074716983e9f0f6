"""Callback cost against the stream's history: a new file, push or cut-off for a stream
with thousands of past broadcasts must cost what it costs for a new stream, and so must a
screenshot of a room that has been live for a long time.

    .venv/bin/python bench/history.py [--history 2000] [--callbacks 200] [--database sqlite]
        [--kind file|push|screenshot]

Starts `replay-catalog serve` (on a fresh SQLite file, or a fresh PostgreSQL database
with `--database postgres`), gives one stream `--history` broadcasts through the
callback route (an hour apart: one recording file each, or with `--kind push` a push
and its cut-off each), then posts `--callbacks` new ones of the same kind, one callback
at a time, alternately to that stream and to fresh streams (the baseline, side by side
in the same run), and reports the latency of each kind and their ratio to
bench/HISTORY[-push|-screenshot][-postgres].md. With `--kind screenshot`, the stream is
instead one live broadcast given `--history` screenshots (ten seconds apart), and each
fresh stream a push (not measured) before its screenshot.
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
SHOT_SECONDS = 10  # between a live room's screenshots (--kind screenshot)


def screenshot(stream: str, at: int) -> dict[str, object]:
    return {
        "event_type": 200, "stream_id": stream, "channel_id": stream, "create_time": at,
        "pic_url": f"/shots/{stream}-{at}.jpg",
        "pic_full_url": f"http://1252033264.vod2.myqcloud.com/shots/{stream}-{at}.jpg",
    }  # fmt: skip


def push_started(http: httpx.Client, stream: str, at: int) -> None:
    event = {"event_type": 1, "stream_id": stream, "channel_id": stream, "event_time": at,
             "sequence": f"{stream}-{at}"}  # fmt: skip
    response = http.post("/callbacks/tencent", json=signed(event))
    assert response.status_code == 200, response.text


def post(http: httpx.Client, stream: str, name: str, at: int, kind: str) -> list[float]:
    """Post one broadcast's callbacks (a file, or a push and its cut-off); the seconds
    until each was acknowledged."""
    if kind == "file":
        events = [recording(stream, name, at, at + HOUR // 2, "mp4")]
    elif kind == "screenshot":
        events = [screenshot(stream, at)]
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
    parser.add_argument("--kind", choices=("file", "push", "screenshot"), default="file")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="replay-history-"))
    with database_for(args, work) as database_url:
        port = free_port()
        service = start([*CLI, "serve", "--port", str(port)], service_env(database_url), port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                # In the past: callbacks stamped more than a day ahead are quarantined.
                step = SHOT_SECONDS if args.kind == "screenshot" else HOUR
                base = int(time.time()) - (args.history + args.callbacks + 2) * step
                loading = time.perf_counter()
                if args.kind == "screenshot":
                    push_started(http, "2121_long", base)
                for index in range(args.history):
                    post(http, "2121_long", f"long{index}", base + index * step, args.kind)
                loaded = time.perf_counter() - loading
                long_stream: list[float] = []
                fresh_streams: list[float] = []
                for index in range(args.callbacks):
                    at = base + (args.history + index) * step
                    long_stream += post(http, "2121_long", f"long-new{index}", at, args.kind)
                    fresh = f"2121_fresh{uuid.uuid4().hex[:8]}"
                    if args.kind == "screenshot":
                        push_started(http, fresh, at)
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
    what = {"file": "file", "push": "push and cut-off", "screenshot": "screenshot"}[args.kind]
    long_one = (
        f"a live broadcast with {args.history} screenshots"
        if args.kind == "screenshot"
        else f"a stream with {args.history} broadcasts"
    )
    long_p50, long_p99 = summary(long_stream)
    fresh_p50, fresh_p99 = summary(fresh)
    text = "\n".join(
        [
            f"# Callback cost against the stream's history ({args.database})",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `bench/history.py "
            f"--history {args.history} --callbacks {args.callbacks} --database "
            f"{args.database} --kind {args.kind}` on {os.cpu_count()} cores, Python "
            f"{platform.python_version()}: {long_one} ({what} each) through the callback "
            f"route ({args.history / loaded:.0f}/s, one callback at a time), then "
            f"{args.callbacks} new ones each for it and for fresh streams, alternately, one "
            "callback at a time.",
            "",
            f"| new {what} for | p50 ms | p99 ms |",
            "|---|---:|---:|",
            f"| {long_one} | {long_p50:.2f} | {long_p99:.2f} |",
            f"| a fresh stream (baseline) | {fresh_p50:.2f} | {fresh_p99:.2f} |",
            "",
            f"Ratio of p50s (long history / fresh): **{long_p50 / fresh_p50:.2f}**.",
            "",
        ]
    )
    name = "HISTORY" + ("" if args.kind == "file" else f"-{args.kind}")
    out = BENCH / (name + ("" if args.database == "sqlite" else "-postgres") + ".md")
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
