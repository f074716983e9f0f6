"""The inbox for admins (`inboxEntries`, secrets redacted) and `replay-catalog reprocess`."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import insert

import tencent
from storage import InboxEntry
from storage.database import table_of
from tests.catalog_client import (
    ADMIN_TOKEN,
    BASE,
    UNREACHABLE_DATABASES,
    CatalogClient,
    cut,
    make_settings,
    push,
    recording,
    screenshot,
    sign,
)
from tests.test_callbacks import database_refusing
from tests.test_cli import run

pytestmark = pytest.mark.anyio

INBOX = """
query Inbox($outcome: IngestOutcome, $streamId: String, $first: Int, $after: String) {
  inboxEntries(outcome: $outcome, streamId: $streamId, first: $first, after: $after) {
    edges { cursor node { id eventType streamId receivedAt outcome reason payload } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

NODE = "query($id: ID!) { node(id: $id) { ... on InboxEntry { outcome payload } } }"

# A push URL's authentication as Tencent echoes it back in `stream_param`.
TX_SECRET = "0123456789abcdef0123456789abcdef"
TX_TIME = "6B077FA3"
STREAM_PARAM = f"bizid=2121&txSecret={TX_SECRET}&txTime={TX_TIME}&session_id=s1"


async def inbox(catalog: CatalogClient, page: int = 100, **filters: Any) -> list[dict[str, Any]]:
    """Every inbox entry an admin sees, walking the pages with cursors."""
    entries: list[dict[str, Any]] = []
    after = None
    while len(entries) < 1000:  # a list that never ends fails instead of hanging
        variables = {**filters, "first": page, "after": after}
        connection = (await catalog.data(INBOX, variables, ADMIN_TOKEN))["inboxEntries"]
        entries += [edge["node"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return entries
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError("the inbox pages never end")


def summary(entries: list[dict[str, Any]]) -> list[tuple[int | None, str | None, str]]:
    return [(e["eventType"], e["streamId"], e["outcome"]) for e in entries]


async def test_admins_list_the_inbox_newest_first_by_outcome_and_stream(
    catalog: CatalogClient,
) -> None:
    await catalog.send(push("2121_a", BASE, "s1"))
    await catalog.send({**recording("2121_a", "f1", BASE, BASE + 60), "video_url": None})
    await catalog.send({"event_type": 999, "stream_id": "2121_b"})
    await catalog.send(recording("2121_b", "f2", BASE, BASE + 60))

    everything = await inbox(catalog)
    assert summary(everything) == [
        (100, "2121_b", "APPLIED"),
        (999, "2121_b", "IGNORED"),
        (100, "2121_a", "QUARANTINED"),
        (1, "2121_a", "APPLIED"),
    ]
    assert [e["reason"] for e in everything] == [None, None, "video_url is missing", None]
    times = [e["receivedAt"] for e in everything]
    assert times == sorted(times, reverse=True)

    quarantined = await inbox(catalog, outcome="QUARANTINED")
    assert quarantined == [everything[2]]
    assert quarantined[0]["payload"]["file_id"] == "f1"
    assert await inbox(catalog, streamId="2121_b") == everything[:2]
    assert await inbox(catalog, streamId="2121_b", outcome="APPLIED") == everything[:1]
    assert await inbox(catalog, streamId="2121_nobody") == []


async def test_inbox_pages_follow_cursors_without_repeating_or_skipping(
    catalog: CatalogClient,
) -> None:
    await catalog.send_all(push("2121_a", BASE + 60 * i, f"s{i}") for i in range(7))
    everything = await inbox(catalog)
    assert len(everything) == 7

    assert await inbox(catalog, page=3) == everything
    assert await inbox(catalog, page=1) == everything
    # New callbacks arriving while an admin pages never shift the next page.
    first_page = (await catalog.data(INBOX, {"first": 3}, ADMIN_TOKEN))["inboxEntries"]
    await catalog.send(push("2121_a", BASE + 3600, "late"))
    after = first_page["pageInfo"]["endCursor"]
    rest = (await catalog.data(INBOX, {"first": 10, "after": after}, ADMIN_TOKEN))["inboxEntries"]
    assert [edge["node"] for edge in rest["edges"]] == everything[3:]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"first": 101}, "first must be between 0 and 100, got 101"),
        ({"first": -1}, "first must be between 0 and 100, got -1"),
        ({"after": "not a cursor"}, "after is not a cursor of this list"),
        ({"streamId": "2121\u0000a"}, "text must not contain NUL characters"),
    ],
)
async def test_inbox_arguments_out_of_range_are_refused_clearly(
    catalog: CatalogClient, variables: dict[str, Any], message: str
) -> None:
    body = await catalog.graphql(INBOX, variables, ADMIN_TOKEN)
    assert [error["message"] for error in body["errors"]] == [message]


async def test_a_cursor_of_another_list_is_refused(catalog: CatalogClient) -> None:
    await catalog.send_all(recording("2121_a", f"f{i}", BASE + i, BASE + 60) for i in range(2))
    files = await catalog.data("{ recordingFiles(first: 1) { pageInfo { endCursor } } }")
    cursor = files["recordingFiles"]["pageInfo"]["endCursor"]
    body = await catalog.graphql(INBOX, {"after": cursor}, ADMIN_TOKEN)
    assert body["errors"][0]["message"] == "after is not a cursor of this list"


async def test_only_admins_read_the_inbox(catalog: CatalogClient) -> None:
    await catalog.send(push("2121_a", BASE, "s1", stream_param=STREAM_PARAM))
    (entry,) = await inbox(catalog)

    for token in (None, "guess-123"):
        body = await catalog.graphql(INBOX, {}, token)
        assert body["data"] is None
        assert [error["message"] for error in body["errors"]] == [
            "this operation needs the admin bearer token"
        ]
        # By id, an inbox entry is as unknown to others as a missing one.
        assert await catalog.graphql(NODE, {"id": entry["id"]}, token) == {"data": {"node": None}}
    as_admin = await catalog.data(NODE, {"id": entry["id"]}, ADMIN_TOKEN)
    assert as_admin["node"]["outcome"] == "APPLIED"


async def test_without_an_admin_token_configured_the_inbox_is_closed(database_url: str) -> None:
    settings = make_settings(database_url, admin_token=None)
    async with CatalogClient.started(settings) as catalog:
        body = await catalog.graphql(INBOX, {}, ADMIN_TOKEN)
    assert [error["message"] for error in body["errors"]] == [
        "admin operations are disabled: ADMIN_TOKEN is not configured"
    ]


async def test_inbox_entries_never_show_the_sign_or_push_secrets(catalog: CatalogClient) -> None:
    applied = sign(
        push(
            "2121_a",
            BASE,
            "s1",
            stream_param=STREAM_PARAM,
            callback_ext=json.dumps({"session_id": "s1", "stream_param": STREAM_PARAM}),
            relay={"push_url": f"rtmp://push.example.com/live/2121_a?{STREAM_PARAM}"},
        )
    )
    quarantined = sign(
        {
            **recording("2121_a", "f1", BASE, BASE + 60, stream_param=STREAM_PARAM),
            "video_url": ["x"],
        }
    )
    for event in (applied, quarantined):
        response = await catalog.post_callback(event)
        assert response.status_code == 200, response.text

    response = await catalog.http.post(
        "/graphql",
        json={"query": INBOX, "variables": {}},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    entries = [edge["node"] for edge in response.json()["data"]["inboxEntries"]["edges"]]
    by_id = [
        await catalog.http.post(
            "/graphql",
            json={"query": NODE, "variables": {"id": entry["id"]}},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        for entry in entries
    ]
    for text in (response.text, *(answer.text for answer in by_id)):
        assert TX_SECRET not in text
        assert TX_TIME not in text
        assert applied["sign"] not in text and quarantined["sign"] not in text

    latest, first = entries
    assert latest["outcome"] == "QUARANTINED" and latest["reason"] == "video_url is not a string"
    payload = first["payload"]
    redacted = "bizid=2121&txSecret=[redacted]&txTime=[redacted]&session_id=s1"
    assert payload["sign"] == "[redacted]" and payload["t"] == applied["t"]
    assert payload["stream_param"] == redacted
    assert json.loads(payload["callback_ext"]) == {"session_id": "s1", "stream_param": redacted}
    assert payload["relay"] == {"push_url": f"rtmp://push.example.com/live/2121_a?{redacted}"}
    kept = ("event_type", "stream_id", "channel_id", "event_time", "sequence")
    assert {name: payload[name] for name in kept} == {name: applied[name] for name in kept}


# ---- replay-catalog reprocess --------------------------------------------------------


@pytest.fixture
def same_settings_as_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command reads its settings from the environment: those of `make_settings`."""
    monkeypatch.setenv("RECONNECT_WINDOW_SECONDS", "300")
    monkeypatch.setenv("LIVE_SILENCE_SECONDS", "0")


async def reprocess(database_url: str, cwd: Path, *options: str) -> str:
    """Run `replay-catalog reprocess` as an operator would; its summary line."""
    result = await anyio.to_thread.run_sync(run, ["reprocess", *options], database_url, cwd)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert TX_SECRET not in result.stdout + result.stderr
    return result.stdout.strip()


async def store_as_an_earlier_release(
    catalog: CatalogClient,
    payload: dict[str, Any],
    reason: str,
    received_at: datetime,
    **columns: Any,
) -> None:
    """An inbox row as an earlier release wrote it: quarantined, for a reason since fixed
    (`columns`: what else it made of the payload)."""
    row = {
        "event_key": tencent.event_key(payload),
        "event_type": payload["event_type"],
        "stream_id": payload.get("stream_id"),
        "payload": payload,
        "received_at": received_at,
        "outcome": "quarantined",
        "reason": reason,
        **columns,
    }
    async with catalog.database.engine.begin() as connection:
        await connection.execute(insert(table_of(InboxEntry)).values(**row))


FILE = "{ recordingFile(fileId: $fileId) { fileId format stream { streamId } } }"
FILE_QUERY = "query($fileId: String!) " + FILE


async def test_reprocess_applies_what_an_earlier_release_quarantined_and_keeps_the_rest(
    catalog: CatalogClient, database_url: str, tmp_path: Path, same_settings_as_the_app: None
) -> None:
    await catalog.send(push("2121_old", BASE, "s1"))
    await catalog.send(cut("2121_old", BASE + 600, "s1"))
    # Quarantined by this release: no video URL; NUL characters (stored as U+FFFD).
    await catalog.send({**recording("2121_new", "f-broken", BASE, BASE + 60), "video_url": None})
    await catalog.send(push("2121_nul\u0000", BASE, "s9"))
    fixed = sign(recording("2121_old", "f-old", BASE, BASE + 600, "mp4", stream_param=STREAM_PARAM))
    await store_as_an_earlier_release(
        catalog, fixed, "unknown file_format 'mp4'", datetime.fromtimestamp(BASE + 700, UTC)
    )
    assert (await catalog.data(FILE_QUERY, {"fileId": "f-old"}))["recordingFile"] is None
    assert await catalog.all_rooms() == []

    first = await reprocess(database_url, tmp_path)

    assert first == "entries read: 3, applied: 1, still quarantined: 2, ignored: 0, unchanged: 2"
    found = await catalog.data(FILE_QUERY, {"fileId": "f-old"})
    assert found["recordingFile"] == {
        "fileId": "f-old",
        "format": "MP4",
        "stream": {"streamId": "2121_old"},
    }
    rooms = await catalog.all_rooms()
    assert [(room["kind"], room["stream"]["streamId"]) for room in rooms] == [
        ("REPLAY", "2121_old")
    ]
    (reapplied,) = [e for e in await inbox(catalog) if e["payload"].get("file_id") == "f-old"]
    assert (reapplied["outcome"], reapplied["reason"]) == ("APPLIED", None)
    still = await inbox(catalog, outcome="QUARANTINED")
    assert [(e["streamId"], e["reason"]) for e in still] == [
        ("2121_nul\ufffd", "the payload contains NUL characters"),
        ("2121_new", "video_url is missing"),
    ]
    assert (await catalog.data(FILE_QUERY, {"fileId": "f-broken"}))["recordingFile"] is None
    assert await catalog.stream_catalog("2121_nul\ufffd") is None

    entries = await inbox(catalog)
    second = await reprocess(database_url, tmp_path)

    assert second == "entries read: 2, applied: 0, still quarantined: 2, ignored: 0, unchanged: 2"
    assert await inbox(catalog) == entries
    assert await catalog.all_rooms() == rooms
    # Tencent retrying the event now finds it stored once.
    await catalog.send(fixed)
    assert await inbox(catalog) == entries


async def test_reprocess_reads_the_event_type_and_stream_id_again(
    catalog: CatalogClient, database_url: str, tmp_path: Path, same_settings_as_the_app: None
) -> None:
    # Only the historical `channel_id` names the stream, and the event type is a string:
    # an earlier release made nothing of either.
    event = recording("2121_ch", "f-ch", BASE, BASE + 600, "mp4")
    del event["stream_id"]
    payload = sign({**event, "event_type": "100"})
    received = datetime.fromtimestamp(BASE + 700, UTC)
    await store_as_an_earlier_release(
        catalog, payload, "stream_id is missing", received, event_type=None, stream_id=None
    )

    result = await reprocess(database_url, tmp_path)

    assert result == "entries read: 1, applied: 1, still quarantined: 0, ignored: 0, unchanged: 0"
    assert summary(await inbox(catalog, streamId="2121_ch")) == [(100, "2121_ch", "APPLIED")]
    rerun = await reprocess(database_url, tmp_path, "--all", "--stream", "2121_ch")
    assert rerun == "entries read: 1, applied: 1, still quarantined: 0, ignored: 0, unchanged: 1"


async def test_reprocess_all_applies_everything_again_without_changing_the_catalog(
    catalog: CatalogClient, database_url: str, tmp_path: Path, same_settings_as_the_app: None
) -> None:
    await catalog.send_all(
        [
            push("2121_alice", BASE, "s1", stream_param=STREAM_PARAM),
            recording("2121_alice", "a1", BASE, BASE + 1800, "mp4"),
            recording("2121_alice", "a2", BASE + 1800, BASE + 3600, "mp4"),
            recording("2121_alice", "a3", BASE, BASE + 3600, "hls"),
            cut("2121_alice", BASE + 3600, "s1"),
            push("2121_alice", BASE + 7200, "s2"),
            cut("2121_alice", BASE + 7500, "s2"),
            recording("2121_alice", "a4", BASE + 7200, BASE + 7500, "flv"),
            push("2121_bob", BASE + 9000, "b1"),
            screenshot("2121_bob", BASE + 9100),
            {"event_type": 999, "stream_id": "2121_bob"},
            {**recording("2121_bob", "b-broken", BASE, BASE + 60), "video_url": None},
        ]
    )
    rooms = await catalog.all_rooms()
    assert [room["kind"] for room in rooms] == ["LIVE", "REPLAY", "REPLAY"]
    streams = [await catalog.stream_catalog(s) for s in ("2121_alice", "2121_bob")]
    entries = await inbox(catalog)

    result = await reprocess(database_url, tmp_path, "--all")

    assert (
        result == "entries read: 12, applied: 10, still quarantined: 1, ignored: 1, unchanged: 12"
    )
    assert await catalog.all_rooms() == rooms
    assert [await catalog.stream_catalog(s) for s in ("2121_alice", "2121_bob")] == streams
    assert await inbox(catalog) == entries


async def test_reprocess_of_one_stream_leaves_the_others_quarantined(
    catalog: CatalogClient, database_url: str, tmp_path: Path, same_settings_as_the_app: None
) -> None:
    events = [
        recording("2121_a", "f0", BASE, BASE + 60),
        recording("2121_b", "f1", BASE, BASE + 60),
        {**recording("2121_b", "f2", BASE, BASE + 60), "video_url": None},
    ]
    for number, event in enumerate(events):
        received = datetime.fromtimestamp(BASE + number, UTC)
        await store_as_an_earlier_release(catalog, sign(event), "a bug since fixed", received)

    result = await reprocess(database_url, tmp_path, "--stream", "2121_b")

    assert result == "entries read: 2, applied: 1, still quarantined: 1, ignored: 0, unchanged: 0"
    assert [(e["streamId"], e["outcome"], e["reason"]) for e in await inbox(catalog)] == [
        ("2121_b", "QUARANTINED", "video_url is missing"),  # the reason of this release
        ("2121_b", "APPLIED", None),
        ("2121_a", "QUARANTINED", "a bug since fixed"),
    ]
    assert [room["stream"]["streamId"] for room in await catalog.all_rooms()] == ["2121_b"]


async def test_an_entry_the_database_refuses_stays_quarantined_until_it_is_accepted(
    catalog: CatalogClient, database_url: str, tmp_path: Path, same_settings_as_the_app: None
) -> None:
    event = sign(recording("2121_x", "evil", BASE, BASE + 60, stream_param=STREAM_PARAM))
    await store_as_an_earlier_release(
        catalog, event, "a bug since fixed", datetime.fromtimestamp(BASE, UTC)
    )
    async with database_refusing(catalog, "recording_file", "file_id", "evil"):
        refused = await reprocess(database_url, tmp_path)

        assert refused == (
            "entries read: 1, applied: 0, still quarantined: 1, ignored: 0, unchanged: 0"
        )
        (entry,) = await inbox(catalog, outcome="QUARANTINED")
        assert entry["reason"] == "the catalog could not apply it (IntegrityError)"
        assert await catalog.stream_catalog("2121_x") is None  # nothing of it was kept

    accepted = await reprocess(database_url, tmp_path)

    assert accepted == "entries read: 1, applied: 1, still quarantined: 0, ignored: 0, unchanged: 0"
    (broadcast,) = await catalog.broadcasts("2121_x")
    assert [part["fileId"] for part in broadcast["recordings"]] == ["evil"]


def test_reprocess_reports_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    # A PostgreSQL server that does not answer: an outage, worth trying again later. (The
    # SQLite URL in a missing folder is a configuration mistake for the CLI: exit status 2,
    # tests/test_cli.py.)
    result = run(["reprocess"], UNREACHABLE_DATABASES["postgres"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "replay-catalog: reprocess failed: the catalog database is unavailable; try again later"
    )
    assert result.stdout == ""


# ---- what the database cannot hold -------------------------------------------------

SURROGATE_REASON = "the payload contains lone surrogates (text that is not valid Unicode)"
NON_FINITE_REASON = (
    "the payload contains numbers that are not finite (NaN, Infinity, or over 4,300 digits)"
)


async def post_json_text(catalog: CatalogClient, text: str) -> None:
    """POST a signed body as written (`\\ud800` escapes, `NaN`), insisting on a 200."""
    response = await catalog.http.post(
        "/callbacks/tencent", content=text.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text


async def test_an_event_stored_not_quite_as_sent_is_shown_to_admins_and_stays_quarantined(
    catalog: CatalogClient, database_url: str, tmp_path: Path, same_settings_as_the_app: None
) -> None:
    spoiled = sign(recording("2121_a", "f1", BASE, BASE + 60, errmsg="bad\ud800text"))
    await post_json_text(catalog, json.dumps(spoiled))
    not_finite = sign(recording("2121_b", "f2", BASE, BASE + 60))
    await post_json_text(catalog, json.dumps(not_finite)[:-1] + ', "file_size": NaN}')

    entries = await inbox(catalog, outcome="QUARANTINED")

    assert [(e["streamId"], e["reason"]) for e in entries] == [
        ("2121_b", NON_FINITE_REASON),
        ("2121_a", SURROGATE_REASON),
    ]
    assert entries[0]["payload"]["file_size"] is None
    assert entries[1]["payload"]["errmsg"] == "bad\ufffdtext"
    assert await catalog.all_rooms() == []

    result = await reprocess(database_url, tmp_path)

    assert result == "entries read: 2, applied: 0, still quarantined: 2, ignored: 0, unchanged: 2"
    assert await inbox(catalog) == entries
    assert await catalog.all_rooms() == []


async def test_reprocess_judges_times_against_when_the_callback_arrived(
    catalog: CatalogClient, database_url: str, tmp_path: Path, same_settings_as_the_app: None
) -> None:
    # Received on BASE, the event claimed a time three days later: out of range then,
    # even though that time has passed by now.
    early = sign(push("2121_a", BASE + 3 * 86400, "s1"))
    fine = sign(push("2121_b", BASE + 3600, "s1"))
    received = datetime.fromtimestamp(BASE + 3600, UTC)
    for payload in (early, fine):
        await store_as_an_earlier_release(catalog, payload, "a bug since fixed", received)

    result = await reprocess(database_url, tmp_path)

    assert result == "entries read: 2, applied: 1, still quarantined: 1, ignored: 0, unchanged: 0"
    assert [(e["streamId"], e["outcome"], e["reason"]) for e in await inbox(catalog)] == [
        ("2121_b", "APPLIED", None),
        ("2121_a", "QUARANTINED", "event_time is out of range (before 2010, or over a day ahead)"),
    ]
