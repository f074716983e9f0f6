"""A callback you can send: the shipped samples, `replay-catalog send-callback`, and the
README's curl example, each against `replay-catalog serve` on loopback."""

import json
import os
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from domain.events import PushEnded, PushStarted, RecordingFileReady, ScreenshotTaken
from tencent import parse_callback
from tencent.sample_callbacks import SAMPLE_NAMES, load_sample, placed_at
from tests.catalog_client import CALLBACK_KEY, CatalogClient
from tests.servers import COMMAND, serving

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tencent" / "samples"
TIMES = ("event_time", "create_time", "start_time", "end_time")
# What each sample becomes once the catalog has read it.
EVENTS = {
    "push": PushStarted,
    "cut": PushEnded,
    "recording": RecordingFileReady,
    "screenshot": ScreenshotTaken,
}
SAMPLE_STREAM = "2121_15919131751"
ROOM_FIELDS = (
    "kind coverUrl playbackUrl stream { streamId } anchor { userId }"
    " broadcast { isLive endedAt recordings { fileId } }"
)


def send_callback(
    args: list[str], key: str | None, cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`replay-catalog send-callback ARGS` as a user runs it, with CALLBACK_KEY = `key`."""
    env = {name: value for name, value in os.environ.items() if name != "CALLBACK_KEY"}
    if key is not None:
        env["CALLBACK_KEY"] = key
    return subprocess.run(  # noqa: S603 - our own command
        [*COMMAND, "send-callback", *args],
        input=stdin,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def query(http: httpx.AsyncClient, document: str) -> dict[str, Any]:
    answer = await http.post("/graphql", json={"query": document})
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


async def rooms(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    data = await query(http, f"{{ rooms(first: 100) {{ edges {{ node {{ {ROOM_FIELDS} }} }} }} }}")
    return [edge["node"] for edge in data["rooms"]["edges"]]


def readme_curl_example() -> str:
    """The shell block in docs/callbacks.md that signs a callback with md5sum and posts it
    with curl."""
    page = (ROOT / "docs" / "callbacks.md").read_text()
    blocks = re.findall(r"^```sh\n(.*?)^```", page, re.DOTALL | re.MULTILINE)
    examples = [block for block in blocks if "md5sum" in block and "curl" in block]
    assert len(examples) == 1, "docs/callbacks.md has no (or more than one) curl callback example"
    return examples[0]


def test_the_samples_are_tencent_bodies_for_events_1_0_100_and_200() -> None:
    assert sorted(path.stem for path in SAMPLES.glob("*.json")) == sorted(SAMPLE_NAMES)
    assert set(SAMPLE_NAMES) == set(EVENTS)
    now = int(time.time())
    for name, event in EVENTS.items():
        body = load_sample(name)
        assert body == json.loads((SAMPLES / f"{name}.json").read_text())
        assert not {"t", "sign", *TIMES} & set(body), name
        assert body["stream_id"] == body["channel_id"] == SAMPLE_STREAM
        parsed = parse_callback(placed_at(body, now), now)
        assert isinstance(parsed, event), name
        moment = getattr(parsed, "at", None) or getattr(parsed, "taken_at", None)
        if isinstance(parsed, RecordingFileReady):
            moment = parsed.end_time
            assert parsed.start_time.timestamp() == now - body["duration"]
        assert moment == datetime.fromtimestamp(now, UTC), name


def test_times_a_body_has_are_kept_unless_now_replaces_them() -> None:
    now = 1_796_000_000
    recorded = {**load_sample("recording"), "start_time": 1473125027, "end_time": 1473125627}
    del recorded["duration"]
    assert placed_at(recorded, now) == recorded
    moved = placed_at(recorded, now, replace=True)
    assert (moved["start_time"], moved["end_time"]) == (now - 600, now)

    cut = {**load_sample("cut"), "event_time": 1473125627}
    assert placed_at(cut, now)["event_time"] == 1473125627
    assert placed_at(cut, now, replace=True)["event_time"] == now
    assert placed_at(load_sample("screenshot"), now)["create_time"] == now


async def test_each_sample_sent_with_send_callback_shows_up_in_the_room_list(
    catalog: CatalogClient, database_url: str, tmp_path: Path
) -> None:
    screenshot, recording = load_sample("screenshot"), load_sample("recording")
    async with (
        serving(database_url, tmp_path) as server,
        httpx.AsyncClient(base_url=server.base_url) as http,
    ):

        async def send(name: str) -> None:
            args = [name, "--url", server.base_url]
            sent = await anyio.to_thread.run_sync(send_callback, args, CALLBACK_KEY, tmp_path)
            assert sent.returncode == 0, sent.stderr
            assert sent.stdout == '200 {"code":0}\n' and sent.stderr == ""

        await send("push")
        [room] = await rooms(http)
        assert room["kind"] == "LIVE" and room["stream"]["streamId"] == SAMPLE_STREAM
        assert room["anchor"]["userId"] == "15919131751"

        await send("screenshot")
        [room] = await rooms(http)
        assert room["kind"] == "LIVE" and room["coverUrl"] == screenshot["pic_full_url"]

        await send("recording")
        files = await query(
            http,
            f'{{ recordingFiles(streamId: "{SAMPLE_STREAM}") {{ edges {{ node {{'
            " fileId format videoUrl fileSize } } } }",
        )
        assert [edge["node"] for edge in files["recordingFiles"]["edges"]] == [
            {
                "fileId": recording["file_id"],
                "format": "MP4",
                "videoUrl": recording["video_url"],
                "fileSize": recording["file_size"],
            }
        ]

        await send("cut")
        [room] = await rooms(http)
        assert room["kind"] == "REPLAY" and room["stream"]["streamId"] == SAMPLE_STREAM
        assert room["playbackUrl"] == recording["video_url"]
        assert room["coverUrl"] == screenshot["pic_full_url"]
        assert room["broadcast"]["isLive"] is False and room["broadcast"]["endedAt"]
        assert room["broadcast"]["recordings"] == [{"fileId": recording["file_id"]}]


async def test_a_recorded_callback_from_stdin_keeps_its_times_unless_sent_with_now(
    catalog: CatalogClient, database_url: str, tmp_path: Path
) -> None:
    recorded = {**load_sample("recording"), "start_time": 1473125027, "end_time": 1473125627}
    async with (
        serving(database_url, tmp_path) as server,
        httpx.AsyncClient(base_url=server.base_url) as http,
    ):
        for file_id, now in (("recorded-as-is", []), ("recorded-now", ["--now"])):
            body = json.dumps({**recorded, "file_id": file_id, "record_file_id": file_id})
            args = ["-", "--url", server.base_url, *now]
            sent = await anyio.to_thread.run_sync(send_callback, args, CALLBACK_KEY, tmp_path, body)
            assert sent.returncode == 0 and sent.stdout == '200 {"code":0}\n', sent
        sent_at = time.time()
        found = await query(
            http,
            '{ asIs: recordingFile(fileId: "recorded-as-is") { startTime endTime }'
            ' now: recordingFile(fileId: "recorded-now") { startTime endTime } }',
        )
    assert found["asIs"] == {
        "startTime": "2016-09-06T01:23:47+00:00",
        "endTime": "2016-09-06T01:33:47+00:00",
    }
    end = datetime.fromisoformat(found["now"]["endTime"]).timestamp()
    start = datetime.fromisoformat(found["now"]["startTime"]).timestamp()
    assert sent_at - 60 < end <= sent_at and end - start == 600


def test_send_callback_without_a_callback_key_says_so_in_one_line(tmp_path: Path) -> None:
    sent = send_callback(["recording"], None, tmp_path)
    assert sent.returncode == 2
    assert sent.stdout == ""
    assert len(sent.stderr.splitlines()) == 1 and "CALLBACK_KEY is not set" in sent.stderr


async def test_send_callback_with_a_wrong_key_gets_401_and_exits_1(tmp_path: Path) -> None:
    async with serving(f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path) as server:
        args = ["recording", "--url", server.base_url]
        sent = await anyio.to_thread.run_sync(send_callback, args, "not-the-key", tmp_path)
    assert sent.returncode == 1
    assert sent.stdout == '401 {"code":401,"message":"wrong sign"}\n'
    assert "not-the-key" not in sent.stdout + sent.stderr


async def test_the_readme_curl_example_stores_a_callback(
    catalog: CatalogClient, database_url: str, tmp_path: Path
) -> None:
    example = readme_curl_example()
    assert "http://127.0.0.1:8000/callbacks/tencent" in example
    file_id = re.search(r'"file_id": "(\w+)"', example)
    assert file_id is not None
    async with (
        serving(database_url, tmp_path) as server,
        httpx.AsyncClient(base_url=server.base_url) as http,
    ):
        script = example.replace("http://127.0.0.1:8000", server.base_url)
        env = {**os.environ, "CALLBACK_KEY": CALLBACK_KEY}
        ran = await anyio.to_thread.run_sync(
            lambda: subprocess.run(  # noqa: S603 - the README's own example
                ["bash", "-euo", "pipefail", "-c", script],  # noqa: S607
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )
        )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == '{"code":0} 200\n'
        found = await query(
            http,
            f'{{ recordingFile(fileId: "{file_id[1]}") {{ fileSize stream {{ streamId }} }} }}',
        )
        assert found["recordingFile"]["fileSize"] == 2_400_000_000 > 2**31
        [room] = await rooms(http)
        assert room["kind"] == "REPLAY"
        assert room["stream"]["streamId"] == found["recordingFile"]["stream"]["streamId"]
