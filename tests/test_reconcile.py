"""Reconciliation with Live_Tape_GetFilelist, against an emulator of Tencent's interface."""

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from sqlalchemy import func, select

from replay_catalog.app import create_app
from replay_catalog.jobs.reconciliation import ReconcileTarget, reconcile
from resolvers.ingestion import Ingestor
from storage import InboxEntry, RecordingFile
from tencent.filelist import (
    FileListClient,
    FileListError,
    TencentRefused,
    TencentUnreachable,
)
from tests.catalog_client import BASE, CatalogClient, cut, iso, make_settings, push, recording
from tests.tencent_emulator import TencentEmulator, running_emulator

pytestmark = pytest.mark.anyio

APPID = 1252033264
API_KEY = "test-api-key"


@pytest.fixture
async def tencent() -> AsyncIterator[TencentEmulator]:
    async with running_emulator(APPID, API_KEY) as emulator:
        yield emulator


def client_for(emulator: TencentEmulator, **options: float) -> FileListClient:
    return FileListClient(
        APPID, API_KEY, emulator.url, **{"min_interval": 0.0, "backoff": 0.01, **options}
    )


def day(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


async def test_client_reads_every_page(tencent: TencentEmulator) -> None:
    for i in range(250):
        tencent.add_recording("2121_a", f"f{i:03d}", BASE + 10 * i, BASE + 10 * i + 9)
    client = client_for(tencent)
    files = await client.files("2121_a", day(BASE - 60), day(BASE + 3000))
    await client.aclose()
    assert sorted(f.file_id for f in files) == [f"f{i:03d}" for i in range(250)]
    assert [r["Param.n.page_no"] for r in tencent.requests] == ["1", "2", "3"]
    assert {r["Param.n.page_size"] for r in tencent.requests} == {"100"}


async def test_client_splits_the_range_into_beijing_days(tencent: TencentEmulator) -> None:
    # BASE is 20:00 in Beijing: the range crosses Beijing midnight twice.
    for i, offset in enumerate((0, 5 * 3600, 30 * 3600)):
        tencent.add_recording("2121_a", f"f{i}", BASE + offset, BASE + offset + 60)
    client = client_for(tencent)
    files = await client.files("2121_a", day(BASE - 60), day(BASE + 31 * 3600))
    await client.aclose()
    assert sorted(f.file_id for f in files) == ["f0", "f1", "f2"]
    windows = [(r["Param.s.start_time"], r["Param.s.end_time"]) for r in tencent.requests]
    assert windows == [
        ("2026-11-01 19:59:00", "2026-11-01 23:59:59"),
        ("2026-11-02 00:00:00", "2026-11-02 23:59:59"),
        ("2026-11-03 00:00:00", "2026-11-03 03:00:00"),
    ]


async def test_client_reads_beijing_times_and_the_format_from_the_url(
    tencent: TencentEmulator,
) -> None:
    tencent.add_recording("2121_a", "f1", BASE, BASE + 600, extension="m3u8")
    client = client_for(tencent)
    (listed,) = await client.files("2121_a", day(BASE - 60), day(BASE + 60))
    await client.aclose()
    assert listed.start_time == day(BASE) and listed.end_time == day(BASE + 600)
    assert listed.file_format == "HLS"


async def test_client_names_tencents_message_when_it_refuses(tencent: TencentEmulator) -> None:
    tencent.refuse_with = (-1001, "appid not authorized")
    client = client_for(tencent)
    with pytest.raises(TencentRefused, match=r"ret=-1001\): appid not authorized"):
        await client.files("2121_a", day(BASE), day(BASE + 60))
    await client.aclose()


async def test_client_is_refused_with_a_wrong_key(tencent: TencentEmulator) -> None:
    client = FileListClient(APPID, "wrong-key", tencent.url, min_interval=0, backoff=0.01)
    with pytest.raises(TencentRefused, match="sign check failed"):
        await client.files("2121_a", day(BASE), day(BASE + 60))
    await client.aclose()


async def test_client_retries_a_flaky_gateway_then_gives_up(tencent: TencentEmulator) -> None:
    tencent.add_recording("2121_a", "f1", BASE, BASE + 60)
    client = client_for(tencent)
    tencent.fail_next = 2
    assert len(await client.files("2121_a", day(BASE - 60), day(BASE + 60))) == 1
    tencent.fail_next = 100
    with pytest.raises(TencentUnreachable, match=r"after 4 tries \(HTTP 502\)"):
        await client.files("2121_a", day(BASE - 60), day(BASE + 60))
    await client.aclose()


async def test_client_keeps_a_polite_pace(tencent: TencentEmulator) -> None:
    client = client_for(tencent, min_interval=0.15)
    started = time.monotonic()
    await client.files("2121_a", day(BASE - 3 * 86400), day(BASE))  # four day windows
    await client.aclose()
    assert len(tencent.requests) == 4
    assert time.monotonic() - started >= 3 * 0.15


async def count_files(catalog: CatalogClient) -> int:
    return int((await catalog.database.scalars(select(func.count(RecordingFile.id))))[0])


async def test_reconcile_fills_in_lost_callbacks_and_a_second_run_changes_nothing(
    catalog: CatalogClient, tencent: TencentEmulator
) -> None:
    await catalog.send_all([push("2121_a", BASE, "s1"), cut("2121_a", BASE + 4 * 1800, "s1")])
    for part in range(4):  # four MP4 parts; the callbacks of parts 1 and 3 were lost
        tencent.add_recording("2121_a", f"p{part}", BASE + part * 1800, BASE + (part + 1) * 1800)
        if part in (0, 2):
            await catalog.send(
                recording(
                    "2121_a",
                    f"p{part}",
                    BASE + part * 1800,
                    BASE + (part + 1) * 1800,
                    "mp4",
                    video_url=tencent.files[-1].url,
                )
            )
    ingestor = Ingestor(
        catalog.database, None, make_settings(catalog.database.url).grouping_rules()
    )
    client = client_for(tencent)
    target = ReconcileTarget("2121_a", day(BASE - 600), day(BASE + 8000))

    first = await reconcile(catalog.database, ingestor, client, [target])
    assert (first.streams_asked, first.files_found, first.files_new) == (1, 4, 2)
    (broadcast,) = await catalog.broadcasts("2121_a")
    assert [r["fileId"] for r in broadcast["recordings"]] == ["p0", "p1", "p2", "p3"]
    assert [r["startTime"] for r in broadcast["recordings"]] == [
        iso(BASE + part * 1800) for part in range(4)
    ]
    assert {r["format"] for r in broadcast["recordings"]} == {"MP4"}

    second = await reconcile(catalog.database, ingestor, client, [target])
    await client.aclose()
    assert (second.files_found, second.files_new) == (4, 0)
    assert await catalog.broadcasts("2121_a") == [broadcast]


async def test_a_reconciled_file_that_later_arrives_by_callback_is_stored_once(
    catalog: CatalogClient, tencent: TencentEmulator
) -> None:
    emulated = tencent.add_recording("2121_a", "f1", BASE, BASE + 600)
    client = client_for(tencent)
    ingestor = Ingestor(
        catalog.database, None, make_settings(catalog.database.url).grouping_rules()
    )
    target = ReconcileTarget("2121_a", day(BASE - 600), day(BASE + 600))
    assert (await reconcile(catalog.database, ingestor, client, [target])).files_new == 1
    await client.aclose()
    await catalog.send(recording("2121_a", "f1", BASE, BASE + 600, "mp4", video_url=emulated.url))
    assert await count_files(catalog) == 1


def run_reconcile(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "replay_catalog.cli", "reconcile", *args],
        env={**os.environ, "LOG_LEVEL": "WARNING", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_reconcile_command_heals_recently_ended_streams_and_reports_a_summary(
    catalog: CatalogClient, database_url: str, tencent: TencentEmulator, tmp_path: Path
) -> None:
    now = int(time.time())
    start = now - 3600
    await catalog.send_all([push("2121_a", start, "s1"), cut("2121_a", start + 1800, "s1")])
    await catalog.send_all([push("2121_b", start, "s2"), cut("2121_b", start + 600, "s2")])
    tencent.add_recording("2121_a", "a1", start, start + 1800)
    tencent.add_recording("2121_b", "b1", start, start + 600)
    env = {
        "DATABASE_URL": database_url,
        "TENCENT_APPID": str(APPID),
        "TENCENT_API_KEY": API_KEY,
        "TENCENT_API_URL": tencent.url,
        "TENCENT_API_MIN_INTERVAL_SECONDS": "0",
    }
    result = await anyio.to_thread.run_sync(run_reconcile, ["--ended-within", "2h"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "streams asked: 2, files found: 2, files new: 2"
    rooms = await catalog.all_rooms()
    assert sorted(room["stream"]["streamId"] for room in rooms) == ["2121_a", "2121_b"]

    again = await anyio.to_thread.run_sync(run_reconcile, ["--stream", "2121_a"], env, tmp_path)
    assert again.stdout.strip() == "streams asked: 1, files found: 1, files new: 0"


async def test_reconcile_command_fails_in_one_line_without_a_traceback(
    database_url: str, tencent: TencentEmulator, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "TENCENT_APPID": str(APPID),
        "TENCENT_API_KEY": API_KEY,
        "TENCENT_API_URL": tencent.url,
    }
    tencent.refuse_with = (-1, "internal error, try later")
    refused = await anyio.to_thread.run_sync(run_reconcile, ["--stream", "2121_a"], env, tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "replay-catalog: reconcile failed: Tencent refused the file-list query (ret=-1): "
        "internal error, try later"
    )
    unconfigured = await anyio.to_thread.run_sync(
        run_reconcile, ["--stream", "2121_a"], {**env, "TENCENT_API_KEY": ""}, tmp_path
    )
    assert unconfigured.returncode == 2
    assert "TENCENT_APPID and TENCENT_API_KEY must be set" in unconfigured.stderr
    assert "Traceback" not in refused.stderr + unconfigured.stderr
    assert API_KEY not in refused.stderr + refused.stdout


async def test_serve_reconciles_in_the_background_when_configured(
    catalog: CatalogClient, database_url: str, tencent: TencentEmulator
) -> None:
    now = int(time.time())
    await catalog.send_all([push("2121_a", now - 900, "s1"), cut("2121_a", now - 300, "s1")])
    tencent.add_recording("2121_a", "lost", now - 900, now - 300)
    settings = make_settings(
        database_url,
        tencent_appid=APPID,
        tencent_api_key=API_KEY,
        tencent_api_url=tencent.url,
        tencent_api_min_interval_seconds=0,
        reconcile_interval_seconds=1,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        deadline = time.monotonic() + 10
        while await count_files(catalog) == 0:
            assert time.monotonic() < deadline, "the background reconcile never ran"
            await anyio.sleep(0.1)
    (broadcast,) = await catalog.broadcasts("2121_a")
    assert [r["fileId"] for r in broadcast["recordings"]] == ["lost"]


async def test_background_reconcile_is_off_without_an_api_key(
    catalog: CatalogClient, database_url: str, tencent: TencentEmulator
) -> None:
    settings = make_settings(
        database_url, tencent_api_url=tencent.url, reconcile_interval_seconds=1
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await anyio.sleep(1.5)
    assert tencent.requests == []


def file_list_answer(entries: str, all_count: str) -> bytes:
    """A file-list answer as Tencent could write it (JSON text, so NaN and \\u escapes)."""
    output = f'{{"all_count": {all_count}, "file_list": [{entries}]}}'
    return f'{{"ret": 0, "message": "", "output": {output}}}'.encode()


def listed_entry(name: str, **extra: str) -> str:
    """One file-list entry in JSON text; `extra` values are JSON text too."""
    fields = {
        "file_id": f'"{name}"',
        "record_file_url": f'"http://1252033264.vod2.myqcloud.com/{name}/f0.mp4"',
        "start_time": '"2026-11-01 20:00:00"',
        "end_time": '"2026-11-01 20:10:00"',
        **extra,
    }
    return "{" + ", ".join(f'"{name}": {value}' for name, value in fields.items()) + "}"


async def test_values_out_of_range_in_the_file_list_are_dropped_or_left_out(
    catalog: CatalogClient, tencent: TencentEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    tencent.answer_with = file_list_answer(
        ", ".join(
            [
                listed_entry("superscript-size", file_size='"\u00b2"'),
                listed_entry("negative-size", file_size="-12345"),
                listed_entry("huge-size", file_size='"' + "9" * 40 + '"'),
                listed_entry("nan-size", file_size="NaN"),
                listed_entry("object-id", file_id='{"a": 1}'),
                listed_entry("odd-time", start_time="[1]"),
                listed_entry("bad\\ud800id"),
                listed_entry("century", start_time='"2001-01-01 00:00:00"'),
            ]
        ),
        all_count='"\u00b2"',
    )
    ingestor = Ingestor(
        catalog.database, None, make_settings(catalog.database.url).grouping_rules()
    )
    client = client_for(tencent)
    target = ReconcileTarget("2121_a", day(BASE - 600), day(BASE + 600))

    summary = await reconcile(catalog.database, ingestor, client, [target])
    await client.aclose()

    sizes = await catalog.data(
        "{ recordingFiles(first: 10) { edges { node { fileId fileSize } } } }"
    )
    assert sorted(
        (edge["node"]["fileId"], edge["node"]["fileSize"])
        for edge in sizes["recordingFiles"]["edges"]
    ) == [
        ("huge-size", None),
        ("nan-size", None),
        ("negative-size", None),
        ("superscript-size", None),
    ]
    # Skipped: the entries whose id is an object or not valid Unicode, or whose time is
    # a list. Left out, with a warning: the one that spans 25 years (out of a callback's
    # bounds). Nothing goes to the inbox, which holds callbacks only.
    assert summary.files_found == 5
    assert summary.files_out_of_bounds == 1
    assert "start_time is out of range (before 2010, or over a day ahead)" in caplog.text
    assert await catalog.database.scalars(select(InboxEntry.id)) == []


@pytest.mark.parametrize("answer", [b"[" * 5000, b'{"ret": 0, "output": ' * 3000, b"\xff\xfe\x00"])
async def test_an_unusable_file_list_answer_is_a_clean_failure(
    tencent: TencentEmulator, answer: bytes
) -> None:
    tencent.answer_with = answer
    client = client_for(tencent)
    with pytest.raises(FileListError, match="Tencent's file list answer is unusable"):
        await client.files("2121_a", day(BASE), day(BASE + 600))
    await client.aclose()
