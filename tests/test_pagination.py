"""Relay pagination: page sizes, opaque keyset cursors, and lists that change while paged."""

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolvers.pagination import MAX_CURSOR_LENGTH, decode_cursor, encode_cursor
from storage.recordings import RECORDINGS
from tests.catalog_client import ADMIN_TOKEN, BASE, CatalogClient, cut, iso, push, recording

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Listing:
    """One paged list of the API: how to ask for a page, and where the connection is."""

    name: str
    query: str
    path: tuple[str, ...]
    variables: tuple[tuple[str, Any], ...] = ()

    async def page(
        self, catalog: CatalogClient, first: int | None, after: str | None
    ) -> dict[str, Any]:
        """The whole GraphQL response, errors included."""
        variables = {**dict(self.variables), "first": first, "after": after}
        return await catalog.graphql(self.query, variables)

    async def connection(
        self, catalog: CatalogClient, first: int | None, after: str | None = None
    ) -> dict[str, Any]:
        body = await self.page(catalog, first, after)
        assert "errors" not in body, body["errors"]
        found = body["data"]
        for name in self.path:
            found = found[name]
        return found  # type: ignore[no-any-return]


ROOMS = Listing(
    "rooms",
    """query($first: Int, $after: String) {
         rooms(first: $first, after: $after) {
           edges { cursor node { kind stream { streamId } broadcast { id startedAt endedAt } } }
           pageInfo { hasNextPage endCursor } } }""",
    ("rooms",),
)


def replays_of(user_id: str) -> Listing:
    return Listing(
        f"replays of {user_id}",
        """query($userId: String!, $first: Int, $after: String) {
             anchor(userId: $userId) { replays(first: $first, after: $after) {
               edges { cursor node { id endedAt stream { streamId } } }
               pageInfo { hasNextPage endCursor } } } }""",
        ("anchor", "replays"),
        (("userId", user_id),),
    )


def recording_files_of(stream_id: str | None) -> Listing:
    return Listing(
        f"recording files of {stream_id or 'every stream'}",
        """query($streamId: String, $first: Int, $after: String) {
             recordingFiles(streamId: $streamId, first: $first, after: $after) {
               edges { cursor node { id fileId startTime stream { streamId } } }
               pageInfo { hasNextPage endCursor } } }""",
        ("recordingFiles",),
        (("streamId", stream_id),),
    )


def broadcasts_of(stream_id: str) -> Listing:
    return Listing(
        f"broadcasts of {stream_id}",
        """query($streamId: String!, $first: Int, $after: String) {
             stream(streamId: $streamId) { broadcasts(first: $first, after: $after) {
               edges { cursor node { id startedAt } }
               pageInfo { hasNextPage endCursor } } } }""",
        ("stream", "broadcasts"),
        (("streamId", stream_id),),
    )


async def walk(catalog: CatalogClient, listing: Listing, sizes: list[int]) -> list[Any]:
    """Every node of the list, page by page, checking each page's pageInfo on the way."""
    nodes: list[Any] = []
    after = None
    for turn in range(1000):
        size = sizes[min(turn, len(sizes) - 1)]
        connection = await listing.connection(catalog, size, after)
        edges = connection["edges"]
        info = connection["pageInfo"]
        nodes += [edge["node"] for edge in edges]
        assert len(edges) <= size
        if not info["hasNextPage"]:
            assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)
            return nodes
        assert len(edges) == size, "a page short of `first` must be the last one"
        assert info["endCursor"] == edges[-1]["cursor"]
        after = info["endCursor"]
    raise AssertionError("the walk did not end")


async def whole(catalog: CatalogClient, listing: Listing) -> list[Any]:
    connection = await listing.connection(catalog, 100)
    assert connection["pageInfo"]["hasNextPage"] is False
    return [edge["node"] for edge in connection["edges"]]


# The crowded catalog: ties everywhere a list orders by time, so that the cursor's
# tie-breaker is what keeps a walk from repeating or skipping.
LIVE_STREAMS = [f"2121_live{i}" for i in range(6)]  # pushed in pairs at the same moment
ALICE_STREAMS = ["2121_alice", "3131_alice"]  # both claimed by the placeholder "alice"
REPLAY_STREAMS = [f"2121_replay{i}" for i in range(8)]
ALICE_REPLAYS = 5


def live_push_time(index: int) -> int:
    return BASE + 100 * (index // 2)


def replay_span(index: int) -> tuple[int, int]:
    """Replays k of both of Alice's streams, and the others', end at the same moments."""
    start = BASE + (index % ALICE_REPLAYS) * 1000
    return start, start + 600


@pytest.fixture
async def crowded(catalog: CatalogClient) -> CatalogClient:
    """Built once per test and shared by its examples, which only read it."""
    for index, stream_id in enumerate(LIVE_STREAMS):
        await catalog.send(push(stream_id, live_push_time(index)))
    for index in range(ALICE_REPLAYS):
        start, end = replay_span(index)
        await catalog.send(push("2121_alice", start, f"s{index}"))
        await catalog.send(cut("2121_alice", end, f"s{index}"))
        await catalog.send(recording("2121_alice", f"alice-{index}", start, end))
        await catalog.send(recording("2121_alice", f"alice-{index}-mp4", start, end, "mp4"))
        await catalog.send(recording("3131_alice", f"alice-studio-{index}", start, end))
    await catalog.send(push("2121_alice", BASE + 9000, "unrecorded"))  # ends unrecorded
    await catalog.send(cut("2121_alice", BASE + 9600, "unrecorded"))
    for index, stream_id in enumerate(REPLAY_STREAMS):
        start, end = replay_span(index)
        await catalog.send(recording(stream_id, f"{stream_id}-file", start, end))
    return catalog


def expected_rooms() -> list[tuple[str, str, str]]:
    """(kind, stream id, push or end time) of every room of the crowded catalog."""
    live = [("LIVE", s, iso(live_push_time(i))) for i, s in enumerate(LIVE_STREAMS)]
    replays = [
        ("REPLAY", s, iso(replay_span(i)[1])) for s in ALICE_STREAMS for i in range(ALICE_REPLAYS)
    ] + [("REPLAY", s, iso(replay_span(i)[1])) for i, s in enumerate(REPLAY_STREAMS)]
    return live + replays


def room_order(room: tuple[str, str, str]) -> tuple[bool, float]:
    """Live rooms first, newest first within each kind."""
    kind, _, time = room
    return kind != "LIVE", -datetime.fromisoformat(time).timestamp()


walk_settings = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
page_sizes = st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=8)


def assert_walk_is_the_whole_list(walked: list[Any], listed: list[Any]) -> None:
    ids = [node["id"] for node in walked]
    assert len(ids) == len(set(ids)), "a walk shows an item twice"
    assert ids == [node["id"] for node in listed], "a walk differs from the whole list"


@walk_settings
@given(sizes=page_sizes)
async def test_walking_the_rooms_page_by_page_shows_every_room_once_in_order(
    crowded: CatalogClient, sizes: list[int]
) -> None:
    walked = await walk(crowded, ROOMS, sizes)

    rooms = [
        (
            room["kind"],
            room["stream"]["streamId"],
            room["broadcast"]["startedAt" if room["kind"] == "LIVE" else "endedAt"],
        )
        for room in walked
    ]
    assert sorted(rooms) == sorted(expected_rooms())
    assert rooms == sorted(rooms, key=room_order)
    assert_walk_is_the_whole_list(
        [room["broadcast"] for room in walked],
        [room["broadcast"] for room in await whole(crowded, ROOMS)],
    )


@walk_settings
@given(sizes=page_sizes)
async def test_walking_an_anchors_replays_shows_each_replay_once_newest_first(
    crowded: CatalogClient, sizes: list[int]
) -> None:
    listing = replays_of("alice")

    walked = await walk(crowded, listing, sizes)

    replays = [(replay["endedAt"], replay["stream"]["streamId"]) for replay in walked]
    assert sorted(replays) == sorted(
        (iso(replay_span(i)[1]), s) for s in ALICE_STREAMS for i in range(ALICE_REPLAYS)
    )
    assert [ended for ended, _ in replays] == sorted((ended for ended, _ in replays), reverse=True)
    assert_walk_is_the_whole_list(walked, await whole(crowded, listing))


@walk_settings
@given(sizes=page_sizes, stream_id=st.sampled_from([None, "2121_alice", "3131_alice"]))
async def test_walking_recording_files_shows_each_file_once_newest_first(
    crowded: CatalogClient, sizes: list[int], stream_id: str | None
) -> None:
    listing = recording_files_of(stream_id)

    walked = await walk(crowded, listing, sizes)

    expected = {
        None: 3 * ALICE_REPLAYS + len(REPLAY_STREAMS),
        "2121_alice": 2 * ALICE_REPLAYS,
        "3131_alice": ALICE_REPLAYS,
    }[stream_id]
    assert len(walked) == expected
    assert stream_id is None or {f["stream"]["streamId"] for f in walked} == {stream_id}
    starts = [recording_file["startTime"] for recording_file in walked]
    assert starts == sorted(starts, reverse=True)
    assert_walk_is_the_whole_list(walked, await whole(crowded, listing))


@walk_settings
@given(sizes=page_sizes)
async def test_walking_a_streams_broadcasts_shows_each_broadcast_once_newest_first(
    crowded: CatalogClient, sizes: list[int]
) -> None:
    listing = broadcasts_of("2121_alice")

    walked = await walk(crowded, listing, sizes)

    starts = [broadcast["startedAt"] for broadcast in walked]
    assert starts == [iso(BASE + 9000)] + [
        iso(replay_span(i)[0]) for i in reversed(range(ALICE_REPLAYS))
    ]
    assert_walk_is_the_whole_list(walked, await whole(crowded, listing))


# Deterministic cases.

LISTINGS = {
    "rooms": ROOMS,
    "replays": replays_of("alice"),
    "files": recording_files_of(None),
    "files-of-a-stream": recording_files_of("2121_alice"),
    "files-of-an-unknown-stream": recording_files_of("2121_nobody"),
    "broadcasts": broadcasts_of("2121_alice"),
}


async def small_catalog(catalog: CatalogClient) -> None:
    """Two live rooms and four replays, two of them Alice's, each replay with two files."""
    await catalog.send(push("2121_live1", BASE + 5000))
    await catalog.send(push("2121_live2", BASE + 6000))
    for index, stream_id in enumerate(["2121_alice", "2121_alice", "2121_bob", "2121_carol"]):
        start = BASE + index * 1000
        await catalog.send(recording(stream_id, f"file-{index}", start, start + 600))
        await catalog.send(recording(stream_id, f"file-{index}-mp4", start, start + 600, "mp4"))


def errors_of(body: dict[str, Any]) -> list[str]:
    assert body.get("errors"), f"expected a GraphQL error, got {body}"
    return [error["message"] for error in body["errors"]]


@pytest.mark.parametrize("first", [101, 1000, -1])
async def test_page_size_beyond_the_limit_is_refused_with_the_limit_in_the_message(
    catalog: CatalogClient, first: int
) -> None:
    await catalog.send(recording("2121_alice", "f1", BASE, BASE + 600))

    for name, listing in LISTINGS.items():
        body = await listing.page(catalog, first, None)
        assert errors_of(body) == [f"first must be between 0 and 100, got {first}"], name


async def test_page_size_of_a_hundred_is_allowed(catalog: CatalogClient) -> None:
    await small_catalog(catalog)

    for listing in LISTINGS.values():
        await listing.connection(catalog, 100)


async def test_first_zero_returns_no_edges(catalog: CatalogClient) -> None:
    await small_catalog(catalog)

    for name, listing in LISTINGS.items():
        connection = await listing.connection(catalog, 0)
        assert connection["edges"] == [], name
        assert connection["pageInfo"]["endCursor"] is None, name


async def test_first_zero_still_tells_that_the_list_has_items(catalog: CatalogClient) -> None:
    await small_catalog(catalog)

    connection = await ROOMS.connection(catalog, 0)

    assert connection["pageInfo"]["hasNextPage"] is True


def encode(values: Any) -> str:
    """A cursor in the service's own encoding (base64url of a JSON list)."""
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> list[Any]:
    values: list[Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return values


CURSOR_REFUSED = "after is not a cursor of this list"

GARBAGE = {
    "word": "garbage",
    "punctuation": "!!!",
    "emoji": "\N{SLIGHTLY SMILING FACE}",
    "digit": "1",
    "empty-list": encode([]),
    "object": encode({"rooms": 1}),
    "number": encode(7),
    "not-json": base64.urlsafe_b64encode(b"not json").decode(),
    "not-utf8": base64.urlsafe_b64encode(b"\xff\xfe[").decode(),
}


async def test_garbage_cursor_is_a_clear_error(catalog: CatalogClient) -> None:
    await small_catalog(catalog)

    for name, listing in LISTINGS.items():
        for kind, cursor in GARBAGE.items():
            body = await listing.page(catalog, 2, cursor)
            assert errors_of(body) == [CURSOR_REFUSED], (name, kind)


async def test_cursor_from_another_list_is_refused(catalog: CatalogClient) -> None:
    await small_catalog(catalog)
    crossings = [
        (ROOMS, recording_files_of(None)),
        (recording_files_of(None), ROOMS),
        (ROOMS, broadcasts_of("2121_alice")),
        (replays_of("alice"), replays_of("bob")),
        (recording_files_of("2121_alice"), recording_files_of("2121_bob")),
        (recording_files_of("2121_alice"), recording_files_of(None)),
        (recording_files_of(None), recording_files_of("2121_alice")),
        (broadcasts_of("2121_alice"), broadcasts_of("2121_bob")),
        (broadcasts_of("2121_alice"), replays_of("alice")),
    ]

    for source, target in crossings:
        cursor = (await source.connection(catalog, 1))["pageInfo"]["endCursor"]
        assert cursor is not None
        body = await target.page(catalog, 2, cursor)
        assert errors_of(body) == [CURSOR_REFUSED], (source.name, target.name)


TAMPERINGS = {
    "renamed": lambda v: ["recordings:2121_alice", *v[1:]],
    "value-dropped": lambda v: v[:-1],
    "value-added": lambda v: [*v, 1],
    "time-not-a-time": lambda v: [v[0], "yesterday", v[2]],
    "time-without-offset": lambda v: [v[0], v[1][:19], v[2]],
    "time-as-number": lambda v: [v[0], BASE, v[2]],
    "key-as-float": lambda v: [v[0], v[1], 1.5],
    "key-as-boolean": lambda v: [v[0], v[1], True],
    "key-as-null": lambda v: [v[0], v[1], None],
    "key-as-number": lambda v: [v[0], v[1], 7],
    "key-with-nul": lambda v: [v[0], v[1], "file\u0000"],
    "key-with-lone-surrogate": lambda v: [v[0], v[1], "file\ud800"],
    "key-longer-than-any-file-id": lambda v: [v[0], v[1], "f" * 129],
}


async def test_tampered_cursor_is_a_clear_error(catalog: CatalogClient) -> None:
    await small_catalog(catalog)
    listing = recording_files_of(None)
    cursor = (await listing.connection(catalog, 1))["pageInfo"]["endCursor"]
    values = decode(cursor)
    assert values[0] == "recordings:" and len(values) == 3  # [list, start time, file id]

    assert errors_of(await listing.page(catalog, 2, cursor[:-4])) == [CURSOR_REFUSED]
    for name, tamper in TAMPERINGS.items():
        body = await listing.page(catalog, 2, encode(tamper(values)))
        assert errors_of(body) == [CURSOR_REFUSED], name


OUT_OF_RANGE = {
    "id-beyond-64-bits": ["rooms", 1, iso(BASE), 2**63],
    "id-below-64-bits": ["rooms", 1, iso(BASE), -(2**63) - 1],
    "huge-id": ["rooms", 1, iso(BASE), 10**30],
    "rank-beyond-64-bits": ["rooms", 2**64, iso(BASE), 1],
    # Broadcast ids and ranks are 32-bit columns on PostgreSQL.
    "id-beyond-32-bits": ["rooms", 1, iso(BASE), 2**31],
    "rank-beyond-32-bits": ["rooms", 2**31, iso(BASE), 1],
    "rank-below-32-bits": ["rooms", -(2**31) - 1, iso(BASE), 1],
    "rank-that-cannot-be-negated": ["rooms", -(2**31), iso(BASE), 1],
    "time-after-year-9999-in-utc": ["rooms", 1, "9999-12-31T23:59:59-14:00", 1],
    "time-before-year-1-in-utc": ["rooms", 1, "0001-01-01T00:00:00+14:00", 1],
}


@pytest.mark.parametrize("values", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
async def test_cursor_with_out_of_range_values_is_a_clear_error(
    catalog: CatalogClient, values: list[Any]
) -> None:
    body = await ROOMS.page(catalog, 2, encode(values))

    assert errors_of(body) == [CURSOR_REFUSED]


async def test_a_deeply_nested_cursor_is_a_clear_error(catalog: CatalogClient) -> None:
    await small_catalog(catalog)
    nested = base64.urlsafe_b64encode(b"[" * 1000).decode()
    assert len(nested) <= MAX_CURSOR_LENGTH

    for name, listing in LISTINGS.items():
        body = await listing.page(catalog, 2, nested)
        assert errors_of(body) == [CURSOR_REFUSED], name


OVER_LONG_CURSORS = {
    "nested-100k-deep": base64.urlsafe_b64encode(b"[" * 100_000).decode(),
    "a-megabyte": "A" * 1_000_000,
    "one-too-many": "A" * (MAX_CURSOR_LENGTH + 1),
}


@pytest.mark.parametrize("cursor", OVER_LONG_CURSORS.values(), ids=OVER_LONG_CURSORS.keys())
async def test_an_over_long_cursor_is_refused_before_it_is_decoded(
    catalog: CatalogClient, cursor: str
) -> None:
    await small_catalog(catalog)

    for name, listing in LISTINGS.items():
        body = await listing.page(catalog, 2, cursor)
        assert errors_of(body) == [
            f"after is longer than any cursor ({MAX_CURSOR_LENGTH} characters at most)"
        ], name


INBOX_PAGE = """query($after: String) { inboxEntries(first: 2, after: $after) {
  edges { cursor } } }"""


@pytest.mark.parametrize(
    "cursor",
    [
        encode(["inbox", iso(BASE), 2**31]),
        encode(["inbox", "9999-12-31T23:59:59-23:59", 1]),
        base64.urlsafe_b64encode(b"[" * 1000).decode(),
    ],
    ids=["id-beyond-32-bits", "time-beyond-year-9999", "nested"],
)
async def test_a_malformed_inbox_cursor_is_a_clear_error(
    catalog: CatalogClient, cursor: str
) -> None:
    await catalog.send(push("2121_alice", BASE))

    body = await catalog.graphql(INBOX_PAGE, {"after": cursor}, ADMIN_TOKEN)

    assert errors_of(body) == [CURSOR_REFUSED]


def test_the_longest_cursor_the_service_can_make_is_accepted_back() -> None:
    """Stream and file ids at their column's length, of characters that JSON escapes."""
    name = "recordings:" + "\x01" * 256
    latest = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    for character in ("\x01", "\N{GRINNING FACE}", '"'):
        cursor = encode_cursor(name, [latest, character * 128])
        assert len(cursor) <= MAX_CURSOR_LENGTH
        assert decode_cursor(name, RECORDINGS, cursor) == [latest, character * 128]


async def walk_from(catalog: CatalogClient, listing: Listing, after: str) -> list[Any]:
    nodes: list[Any] = []
    while True:
        connection = await listing.connection(catalog, 2, after)
        nodes += [edge["node"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes
        after = connection["pageInfo"]["endCursor"]


GROWTH = {
    "new-live-room": (ROOMS, push("2121_newcomer", BASE + 9000)),
    "new-file": (
        recording_files_of(None),
        recording("2121_newcomer", "newest", BASE + 9000, BASE + 9600),
    ),
    "new-replay": (
        replays_of("alice"),
        recording("2121_alice", "alice-newest", BASE + 9000, BASE + 9600),
    ),
}


@pytest.mark.parametrize(("listing", "arrival"), GROWTH.values(), ids=GROWTH.keys())
async def test_paging_while_the_list_grows_neither_repeats_nor_skips(
    catalog: CatalogClient, listing: Listing, arrival: dict[str, Any]
) -> None:
    await small_catalog(catalog)
    before = await whole(catalog, listing)
    first_page = await listing.connection(catalog, 1)

    await catalog.send(arrival)  # lands at the top of the list, before the cursor
    rest = await walk_from(catalog, listing, first_page["pageInfo"]["endCursor"])

    assert [edge["node"] for edge in first_page["edges"]] + rest == before
    after = await whole(catalog, listing)
    assert len(after) == len(before) + 1 and after[1:] == before


async def test_page_info_marks_the_end_of_the_list(catalog: CatalogClient) -> None:
    await small_catalog(catalog)  # six rooms

    all_six = await ROOMS.connection(catalog, 6)
    five = await ROOMS.connection(catalog, 5)
    last = await ROOMS.connection(catalog, 5, five["pageInfo"]["endCursor"])
    beyond = await ROOMS.connection(catalog, 5, all_six["pageInfo"]["endCursor"])

    last_cursor = all_six["edges"][-1]["cursor"]
    assert all_six["pageInfo"] == {"hasNextPage": False, "endCursor": last_cursor}
    assert five["pageInfo"] == {"hasNextPage": True, "endCursor": five["edges"][-1]["cursor"]}
    assert [edge["cursor"] for edge in last["edges"]] == [last_cursor]
    assert last["pageInfo"] == {"hasNextPage": False, "endCursor": last_cursor}
    assert beyond == {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


async def test_empty_catalog_has_an_empty_room_list(catalog: CatalogClient) -> None:
    assert await ROOMS.connection(catalog, None) == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }
