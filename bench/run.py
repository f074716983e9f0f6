"""Benchmark the service against a bare Starlette floor, side by side, with wrk.

    .venv/bin/python bench/run.py [--duration 10] [--connections 32] [--streams 200]

Starts `replay-catalog serve` on a fresh SQLite file, loads a catalog through the real
callback route, then measures with wrk (Debian's `wrk`, installed if missing):

  (a) the room list (`first: 20` with anchor, stream, broadcast and recordings), with
      the response cache warm, and (a') with it off (a second server, same database),
  (b) the same response bytes served by a bare Starlette endpoint (the floor),
  (c) callback ingestion of new recording files against (d) a bare endpoint that only
      reads the body.

It prints throughput, p50/p99 latency and the ratios, and writes them to
bench/RESULTS.md with the machine and the date.
"""

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

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
        # Like the floor: no line per request on stdout (the service still logs callbacks).
        "ACCESS_LOG": "false",
    }


def start(
    command: list[str], env: dict[str, str], port: int, log: IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """Start a server and wait until its port accepts; its stderr goes to `log` if given."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)  # noqa: S603
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{command[0]} did not start on port {port}")


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


def wrk_arguments(description: str) -> argparse.Namespace:
    """The options of a wrk benchmark; installs Debian's wrk if it is missing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--streams", type=int, default=200, help="streams in the catalog")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)  # noqa: S607
    return args


def write_events(path: Path, count: int = 50_000) -> None:
    """Signed callbacks of new recording files on 500 streams, one JSON per line, for wrk."""
    with path.open("w") as out:
        for index in range(count):
            stream = f"2121_bench{index % 500:04d}"
            start_time = BASE + 10 * 86400 + index * 60
            event = recording(stream, f"ingest{index}", start_time, start_time + 59, "mp4")
            out.write(json.dumps(signed(event)) + "\n")


TABLE_HEAD = [
    "| measurement | requests/s | p50 ms | p99 ms | non-2xx + socket errors | ratio to floor |",
    "|---|---:|---:|---:|---:|---:|",
]


def table_row(label: str, measured: Measured, ratio: float) -> str:
    return (
        f"| {label} | {measured.requests_per_second:,.0f} | {measured.p50_ms:.2f} | "
        f"{measured.p99_ms:.2f} | {measured.errors} | {ratio:.3f} |"
    )


def main() -> None:
    args = wrk_arguments(__doc__.split("\n\n")[0])

    work = Path(tempfile.mkdtemp(prefix="replay-bench-"))
    service_port, floor_port = free_port(), free_port()
    env = service_env(f"sqlite+aiosqlite:///{work / 'bench.db'}")
    cli = CLI
    service = start([*cli, "serve", "--port", str(service_port)], env, service_port)
    floor = uncached = None
    try:
        base = f"http://127.0.0.1:{service_port}"
        with httpx.Client(base_url=base, timeout=30) as http:
            for event in catalog_events(args.streams):
                assert http.post("/callbacks/tencent", json=signed(event)).status_code == 200
            room_list = http.post("/graphql", json={"query": ROOM_LIST}).content
        assert b'"errors"' not in room_list, room_list[:500]
        body_file = work / "room-list-request.json"
        body_file.write_text(json.dumps({"query": ROOM_LIST}))
        answer_file = work / "room-list-answer.json"
        answer_file.write_bytes(room_list)
        events_file = work / "events.jsonl"
        write_events(events_file)
        floor = start(
            [sys.executable, str(BENCH / "floor.py"), "--port", str(floor_port),
             "--body", str(answer_file)],
            env, floor_port,
        )  # fmt: skip
        floor_base = f"http://127.0.0.1:{floor_port}"
        uncached_port = free_port()
        uncached = start(
            [*cli, "serve", "--port", str(uncached_port)],
            {**env, "RESPONSE_CACHE_ENTRIES": "0"},
            uncached_port,
        )
        rooms = wrk(f"{base}/graphql", "post_body.lua", args, {"BODY_FILE": str(body_file)})
        rooms_uncached = wrk(
            f"http://127.0.0.1:{uncached_port}/graphql", "post_body.lua", args,
            {"BODY_FILE": str(body_file)},
        )  # fmt: skip
        rooms_floor = wrk(
            f"{floor_base}/graphql", "post_body.lua", args, {"BODY_FILE": str(body_file)}
        )
        ingest = wrk(
            f"{base}/callbacks/tencent", "post_events.lua", args,
            {"EVENTS_FILE": str(events_file)},
        )  # fmt: skip
        ingest_floor = wrk(
            f"{floor_base}/callbacks/tencent", "post_events.lua", args,
            {"EVENTS_FILE": str(events_file)},
        )  # fmt: skip
    finally:
        service.terminate()
        for process in (floor, uncached):
            if process is not None:
                process.terminate()
    report(args, len(room_list), rooms, rooms_uncached, rooms_floor, ingest, ingest_floor)
    shutil.rmtree(work, ignore_errors=True)


def report(
    args: argparse.Namespace,
    answer_bytes: int,
    rooms: Measured,
    rooms_uncached: Measured,
    rooms_floor: Measured,
    ingest: Measured,
    ingest_floor: Measured,
) -> None:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    floor_rate = rooms_floor.requests_per_second
    rows = [
        ("(a) room list, service, warm response cache (target 0.5)", rooms,
         rooms.requests_per_second / floor_rate),
        ("(a') room list, service, response cache off (target 0.15)", rooms_uncached,
         rooms_uncached.requests_per_second / floor_rate),
        ("(b) room list, bare Starlette floor", rooms_floor, 1.0),
        ("(c) callback ingestion, service (SQLite; target 0.4)", ingest,
         ingest.requests_per_second / ingest_floor.requests_per_second),
        ("(d) callback body read, bare Starlette floor", ingest_floor, 1.0),
    ]  # fmt: skip
    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `bench/run.py` on {os.cpu_count()} "
        f"cores ({cpu}), Python {platform.python_version()}; wrk -t{args.threads} "
        f"-c{args.connections} -d{args.duration}s on loopback; catalog of {args.streams} streams "
        f"loaded through the callback route; room-list answer {answer_bytes} bytes. The service "
        "and its floor run side by side in the same run, both without access logs. "
        "Reproduce: `.venv/bin/python bench/run.py`.",
        "",
        *TABLE_HEAD,
    ]
    lines += [table_row(label, measured, ratio) for label, measured, ratio in rows]
    text = "\n".join(lines) + "\n"
    (BENCH / "RESULTS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
