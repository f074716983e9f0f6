"""The catalog does not depend on the order in which callbacks arrive, nor on retries.

Tencent retries events, delivers them out of order and loses some. Broadcasts are
derived from the set of stored facts, so delivering the same events in any order,
with any duplicates, must show app users exactly the same catalog.
"""

import itertools
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from resolvers.regrouping import regroup_stream
from storage import Stream, metadata
from storage.streams import lock_stream
from storage.unit_of_work import UnitOfWork
from tests.catalog_client import (
    BASE,
    CatalogClient,
    cut,
    make_settings,
    push,
    recording,
    screenshot,
)

pytestmark = pytest.mark.anyio

WINDOW = 300  # make_settings(reconnect_window_seconds=300)
FORMATS = ("hls", "mp4", "flv")
# Files are announced a little after they are closed.
FILE_DELAY = 20

STREAM = """query($streamId: String!) { stream(streamId: $streamId) {
    streamId isLive anchor { userId isLive }
    currentBroadcast { startedAt endedAt }
    broadcasts(first: 100) { edges { node {
        isLive startedAt endedAt durationSeconds playbackUrl
        recordings { fileId format videoUrl startTime endTime durationSeconds }
    } } }
} }"""

ROOMS = """query($after: String) { rooms(first: 100, after: $after) {
    edges { node { kind playbackUrl stream { streamId }
                   broadcast { isLive startedAt endedAt } } }
    pageInfo { hasNextPage endCursor }
} }"""


@dataclass(frozen=True)
class SessionPlan:
    """One push session of a stream, and which of its callbacks Tencent delivers."""

    gap: int  # seconds since the end of the stream's previous session
    duration: int
    pushed: bool  # the push event (1) arrives
    cut_off: bool  # the cut-off (0) arrives
    sequenced: bool
    push_duration: bool
    formats: frozenset[str]
    record_interval: int
    shots: tuple[int, ...]  # seconds into the session


sessions = st.builds(
    SessionPlan,
    gap=st.sampled_from([1, 60, WINDOW - 1, WINDOW, WINDOW + 1, 1800, 7200]),
    duration=st.integers(min_value=20, max_value=2400),
    pushed=st.sampled_from([True, True, True, False]),
    cut_off=st.sampled_from([True, True, True, False]),
    sequenced=st.booleans(),
    push_duration=st.booleans(),
    formats=st.frozensets(st.sampled_from(FORMATS)),
    record_interval=st.sampled_from([600, 1800]),
    shots=st.lists(st.integers(min_value=0, max_value=2400), max_size=2).map(tuple),
)
# A few streams, each a few sessions long.
catalog_plans = st.lists(
    st.tuples(st.integers(min_value=0, max_value=600), st.lists(sessions, min_size=1, max_size=3)),
    min_size=1,
    max_size=3,
)


def stream_id(prefix: str, index: int) -> str:
    return f"2121_{prefix}s{index}"


def events_of(
    plan: list[tuple[int, list[SessionPlan]]], prefix: str
) -> list[tuple[int, dict[str, Any]]]:
    """Every callback of the plan with the time Tencent sends it, in chronological order."""
    events: list[tuple[int, dict[str, Any]]] = []
    for index, (offset, stream_sessions) in enumerate(plan):
        stream = stream_id(prefix, index)
        end = BASE + offset
        for number, session in enumerate(stream_sessions):
            start = end + session.gap
            end = start + session.duration
            sequence = f"{number + 1:06d}" if session.sequenced else ""
            if session.pushed:
                events.append((start, push(stream, start, sequence)))
            if session.cut_off:
                extra = {"push_duration": str(session.duration * 1000)}
                event = cut(stream, end, sequence, **(extra if session.push_duration else {}))
                events.append((end, event))
            for file_format in sorted(session.formats):
                step = session.duration if file_format == "hls" else session.record_interval
                for part, part_start in enumerate(range(start, end, step)):
                    part_end = min(part_start + step, end)
                    file_id = f"{prefix}-{index}-{number}-{file_format}-{part}"
                    event = recording(stream, file_id, part_start, part_end, file_format)
                    events.append((part_end + FILE_DELAY, event))
            for shot in session.shots:
                at = start + min(shot, session.duration)
                events.append((at, screenshot(stream, at)))
    events.sort(key=lambda item: item[0])  # stable: ties keep the order they were made in
    return events


async def all_rooms(catalog: CatalogClient) -> list[dict[str, Any]]:
    rooms: list[dict[str, Any]] = []
    after = None
    while True:
        connection = (await catalog.data(ROOMS, {"after": after}))["rooms"]
        rooms += [edge["node"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return rooms
        after = connection["pageInfo"]["endCursor"]


async def observe(catalog: CatalogClient, prefix: str, stream_count: int) -> dict[str, Any]:
    """What apps see of these streams, with the prefix renamed so that two runs compare."""
    streams = [
        (await catalog.data(STREAM, {"streamId": stream_id(prefix, i)}))["stream"]
        for i in range(stream_count)
    ]
    rooms = [
        room
        for room in await all_rooms(catalog)
        if room["stream"]["streamId"].startswith(f"2121_{prefix}")
    ]
    seen = {"streams": streams, "rooms": rooms}
    # A stitched replay's URL names the broadcast's id, which differs between runs.
    text = STITCHED.sub("STITCHED", json.dumps(seen).replace(prefix, "PREFIX"))
    return json.loads(text)  # type: ignore[no-any-return]


STITCHED = re.compile(r"http://catalog\.test/replays/[A-Za-z0-9=_-]+\.m3u8")


def seconds(moment: str) -> float:
    return datetime.fromisoformat(moment).timestamp()


def check_grouping_rules(seen: dict[str, Any], file_ids: set[str]) -> None:
    """Rules that hold for any catalog, whatever the events."""
    listed: list[str] = []
    rooms_expected: list[tuple[str, str, Any]] = []
    for stream in seen["streams"]:
        if stream is None:
            continue
        broadcasts = [edge["node"] for edge in reversed(stream["broadcasts"]["edges"])]
        live = [b for b in broadcasts if b["isLive"]]
        assert live in ([], broadcasts[-1:]), "only the newest broadcast can be on air"
        assert stream["isLive"] is bool(live)
        assert stream["anchor"]["isLive"] is bool(live)
        assert stream["currentBroadcast"] == (
            {"startedAt": live[0]["startedAt"], "endedAt": None} if live else None
        )
        for earlier, later in itertools.pairwise(broadcasts):
            assert seconds(later["startedAt"]) - seconds(earlier["endedAt"]) > WINDOW
        for broadcast in broadcasts:
            recordings = broadcast["recordings"]
            listed += [r["fileId"] for r in recordings]
            starts = [seconds(r["startTime"]) for r in recordings]
            assert starts == sorted(starts)
            if broadcast["isLive"]:
                assert broadcast["endedAt"] is None and broadcast["playbackUrl"] is None
                rooms_expected.append(("LIVE", stream["streamId"], broadcast["startedAt"]))
                continue
            span = seconds(broadcast["endedAt"]) - seconds(broadcast["startedAt"])
            assert broadcast["durationSeconds"] == span >= 0
            assert (broadcast["playbackUrl"] is None) == (not recordings)
            for r in recordings:
                assert broadcast["startedAt"] <= r["startTime"] <= r["endTime"]
                assert r["endTime"] <= broadcast["endedAt"]
            if recordings:
                rooms_expected.append(("REPLAY", stream["streamId"], broadcast["startedAt"]))
    assert sorted(listed) == sorted(file_ids), "every file is in exactly one broadcast"

    rooms = seen["rooms"]
    listed_rooms = [
        (r["kind"], r["stream"]["streamId"], r["broadcast"]["startedAt"]) for r in rooms
    ]
    assert sorted(listed_rooms) == sorted(rooms_expected)
    positions = [room_position(room) for room in rooms]
    assert positions == sorted(positions), "live rooms first, then newest first"


def room_position(room: dict[str, Any]) -> tuple[bool, float]:
    """Where the room list puts a room: live first, then by time, newest first."""
    if room["kind"] == "LIVE":
        return (False, -seconds(room["broadcast"]["startedAt"]))
    return (True, -seconds(room["broadcast"]["endedAt"]))


def without_ties(seen: dict[str, Any]) -> dict[str, Any]:
    """`seen` with the order of equals made canonical.

    Recordings with equal times are listed in arrival order (a bug, see the
    test at the end). Rooms at the same moment (two streams ending in the same
    second) are ordered by internal broadcast id, which depends on arrival too;
    the contract leaves that tie open. Everything else is compared as it is.
    """
    seen = json.loads(json.dumps(seen))
    for stream in seen["streams"]:
        for edge in stream["broadcasts"]["edges"] if stream else []:
            edge["node"]["recordings"].sort(
                key=lambda r: (seconds(r["startTime"]), seconds(r["endTime"]), r["fileId"])
            )
    seen["rooms"].sort(key=lambda room: (room_position(room), json.dumps(room, sort_keys=True)))
    return seen


async def regroup_every_stream(catalog: CatalogClient) -> None:
    """Regroup each stream from all its facts, as the silence sweep does."""
    rules = make_settings(catalog.database.url).grouping_rules()

    def regroup(work: UnitOfWork) -> None:
        for stream_id in work.session.execute(select(Stream.stream_id)).scalars().all():
            regroup_stream(work, lock_stream(work.session, stream_id), rules)

    await catalog.database.write(regroup)


async def forget_everything(catalog: CatalogClient) -> None:
    """Start an example on an empty catalog, so that examples cost the same (and shrink fast)."""

    def delete_all(work: UnitOfWork) -> None:
        for table in reversed(metadata.sorted_tables):
            work.session.execute(table.delete())
        work.everything_may_have_changed()

    await catalog.database.write(delete_all)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[tuple[int, list[SessionPlan]]], list[int]]:
    """A plan, and the order its events are delivered in: a permutation with retries.

    Everything is drawn here rather than inside the (async) test body.
    """
    plan = draw(catalog_plans)
    count = len(events_of(plan, "x"))
    if count == 0:
        return plan, []
    delivery = draw(st.permutations(range(count)))
    retries = draw(
        st.lists(
            st.tuples(st.integers(0, count - 1), st.integers(0, count)), max_size=count // 3 + 1
        )
    )
    for event, position in retries:
        delivery.insert(position, event)
    return plan, delivery


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
async def test_catalog_is_the_same_whatever_the_delivery_order_and_retries(
    catalog: CatalogClient, scenario: tuple[list[tuple[int, list[SessionPlan]]], list[int]]
) -> None:
    plan, delivery = scenario
    await forget_everything(catalog)
    tidy, shuffled = f"t{uuid.uuid4().hex[:10]}", f"u{uuid.uuid4().hex[:10]}"

    # (a) in the order things happened, each event once
    tidy_events = [event for _, event in events_of(plan, tidy)]
    await catalog.send_all(tidy_events)
    # (b) the same events for other streams, shuffled and partly retried
    shuffled_events = [event for _, event in events_of(plan, shuffled)]
    await catalog.send_all(shuffled_events[i] for i in delivery)

    file_ids = {e["file_id"] for e in tidy_events if e["event_type"] == 100}
    expected = await observe(catalog, tidy, len(plan))
    check_grouping_rules(expected, {f.replace(tidy, "PREFIX") for f in file_ids})
    seen = await observe(catalog, shuffled, len(plan))
    check_grouping_rules(seen, {f.replace(tidy, "PREFIX") for f in file_ids})
    assert without_ties(seen) == without_ties(expected)

    # A file or screenshot regroups only the broadcasts from the last one that started
    # before it: regrouping whole streams must find nothing left to change.
    await regroup_every_stream(catalog)
    assert await observe(catalog, tidy, len(plan)) == expected
    assert await observe(catalog, shuffled, len(plan)) == seen


async def test_formats_of_one_session_are_listed_in_the_same_order_whatever_the_arrival_order(
    catalog: CatalogClient,
) -> None:
    # record=hls|mp4|flv: the three files of a session share their start and end times.
    for stream, formats in (("2121_first", FORMATS), ("2121_second", FORMATS[::-1])):
        for file_format in formats:
            await catalog.send(
                recording(stream, f"{stream}-{file_format}", BASE, BASE + 600, file_format)
            )

    orders = [
        [r["format"] for r in (await catalog.broadcasts(stream))[0]["recordings"]]
        for stream in ("2121_first", "2121_second")
    ]
    assert orders[0] == orders[1]
