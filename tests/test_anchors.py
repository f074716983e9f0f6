"""Anchors: placeholders for unclaimed streams, and the admin's upsertAnchor."""

import uuid
from typing import Any

import pytest

from tests.catalog_client import (
    ADMIN_TOKEN,
    BASE,
    CatalogClient,
    cut,
    make_settings,
    push,
    recording,
)

pytestmark = pytest.mark.anyio

ANCHOR = """
query Anchor($userId: String!) {
  anchor(userId: $userId) { id userId nickname avatarUrl isLive streams { streamId } }
}
"""

STREAM_ANCHOR = """
query StreamAnchor($streamId: String!) {
  stream(streamId: $streamId) { anchor { id userId nickname avatarUrl } }
}
"""

UPSERT = """
mutation Upsert($input: AnchorInput!) {
  upsertAnchor(input: $input) { id userId nickname avatarUrl streams { streamId } }
}
"""

AVATAR = "https://cdn.example.com/avatars/alice.png"


async def anchor(catalog: CatalogClient, user_id: str) -> dict[str, Any] | None:
    return (await catalog.data(ANCHOR, {"userId": user_id}))["anchor"]


async def anchor_of_stream(catalog: CatalogClient, stream_id: str) -> dict[str, Any]:
    stream = (await catalog.data(STREAM_ANCHOR, {"streamId": stream_id}))["stream"]
    assert stream is not None, f"stream {stream_id} is not in the catalog"
    return stream["anchor"]  # type: ignore[no-any-return]


async def upsert(catalog: CatalogClient, **fields: Any) -> dict[str, Any]:
    data = await catalog.data(UPSERT, {"input": fields}, token=ADMIN_TOKEN)
    return data["upsertAnchor"]  # type: ignore[no-any-return]


PLACEHOLDER_NAMES = {
    "2121_15919131751": "15919131751",  # bizid_userid: the part after the first underscore
    "2121_alice_2": "alice_2",
    "live-abc": "live-abc",  # otherwise the whole id
    "_abc": "_abc",
    "2121_": "2121_",
}


async def test_unclaimed_stream_gets_a_placeholder_anchor_named_after_its_stream_id(
    catalog: CatalogClient,
) -> None:
    for index, stream_id in enumerate(PLACEHOLDER_NAMES):
        await catalog.send(recording(stream_id, f"f{index}", BASE, BASE + 600))

    for stream_id, user_id in PLACEHOLDER_NAMES.items():
        placeholder = await anchor_of_stream(catalog, stream_id)
        assert placeholder["userId"] == user_id
        assert placeholder["nickname"] is None and placeholder["avatarUrl"] is None
        found = await anchor(catalog, user_id)
        assert found is not None and found["id"] == placeholder["id"]
        assert found["streams"] == [{"streamId": stream_id}]


async def test_anchor_lists_its_streams_and_is_live_while_any_of_them_is(
    catalog: CatalogClient,
) -> None:
    # Both ids name the user "alice", so one placeholder holds both streams.
    await catalog.send(recording("3131_alice", "f1", BASE, BASE + 600))
    await catalog.send(push("2121_alice", BASE + 1000, "s1"))

    live = await anchor(catalog, "alice")
    await catalog.send(cut("2121_alice", BASE + 1600, "s1"))
    off_air = await anchor(catalog, "alice")

    assert live is not None and off_air is not None
    assert live["streams"] == [{"streamId": "2121_alice"}, {"streamId": "3131_alice"}]
    assert live["isLive"] is True
    assert off_air["isLive"] is False


async def test_unknown_anchor_is_null(catalog: CatalogClient) -> None:
    assert await anchor(catalog, "nobody") is None


async def test_upsert_anchor_sets_the_profile_and_claims_the_streams(
    catalog: CatalogClient,
) -> None:
    await catalog.send(push("2121_15919131751", BASE))

    created = await upsert(
        catalog,
        userId="u-42",
        nickname="Alice",
        avatarUrl=AVATAR,
        streamIds=["2121_15919131751", "studio-42"],
    )

    profile = {"userId": "u-42", "nickname": "Alice", "avatarUrl": AVATAR}
    assert {name: created[name] for name in profile} == profile
    assert created["streams"] == [{"streamId": "2121_15919131751"}, {"streamId": "studio-42"}]
    for stream_id in ("2121_15919131751", "studio-42"):  # a new stream id is created
        shown = await anchor_of_stream(catalog, stream_id)
        assert shown == {"id": created["id"], **profile}
    found = await anchor(catalog, "u-42")
    assert found is not None and found["isLive"] is True
    assert await anchor(catalog, "15919131751") is None  # the emptied placeholder is gone


async def test_claiming_a_stream_under_its_placeholder_user_id_keeps_the_anchor(
    catalog: CatalogClient,
) -> None:
    await catalog.send(push("2121_alice", BASE))
    placeholder = await anchor_of_stream(catalog, "2121_alice")

    claimed = await upsert(catalog, userId="alice", nickname="Alice", streamIds=["2121_alice"])

    assert claimed["id"] == placeholder["id"]
    assert await anchor_of_stream(catalog, "2121_alice") == {
        "id": placeholder["id"],
        "userId": "alice",
        "nickname": "Alice",
        "avatarUrl": None,
    }


async def test_placeholder_that_still_holds_a_stream_is_kept(catalog: CatalogClient) -> None:
    await catalog.send(push("2121_alice", BASE))
    await catalog.send(push("3131_alice", BASE))

    await upsert(catalog, userId="u-42", streamIds=["2121_alice"])

    placeholder = await anchor(catalog, "alice")
    assert placeholder is not None
    assert placeholder["streams"] == [{"streamId": "3131_alice"}]


async def test_stream_moves_between_real_anchors_and_the_first_keeps_its_profile(
    catalog: CatalogClient,
) -> None:
    await upsert(catalog, userId="u-1", nickname="First", streamIds=["studio"])
    await upsert(catalog, userId="u-2", nickname="Second", streamIds=["studio"])

    first = await anchor(catalog, "u-1")
    assert first is not None
    assert (first["nickname"], first["streams"]) == ("First", [])
    assert (await anchor_of_stream(catalog, "studio"))["userId"] == "u-2"


async def test_later_upsert_keeps_what_it_leaves_out(catalog: CatalogClient) -> None:
    await upsert(catalog, userId="u-42", nickname="Alice", avatarUrl=AVATAR, streamIds=["s1"])

    updated = await upsert(catalog, userId="u-42", avatarUrl="https://cdn.example.com/new.png")

    assert updated["nickname"] == "Alice"
    assert updated["avatarUrl"] == "https://cdn.example.com/new.png"
    assert updated["streams"] == [{"streamId": "s1"}]


async def test_upsert_with_a_null_nickname_clears_it(catalog: CatalogClient) -> None:
    await upsert(catalog, userId="u-42", nickname="Alice", avatarUrl=AVATAR)

    updated = await upsert(catalog, userId="u-42", nickname=None)

    assert (updated["nickname"], updated["avatarUrl"]) == (None, AVATAR)


async def assert_nothing_changed(catalog: CatalogClient) -> None:
    """After a refused upsert: alice's placeholder still holds 2121_alice; no u-42, no studio."""
    assert await anchor(catalog, "u-42") is None
    placeholder = await anchor(catalog, "alice")
    assert placeholder is not None
    assert (placeholder["nickname"], placeholder["avatarUrl"]) == (None, None)
    assert placeholder["streams"] == [{"streamId": "2121_alice"}]
    assert (await catalog.data(STREAM_ANCHOR, {"streamId": "studio-42"}))["stream"] is None


REFUSED_AUTHORIZATIONS = {
    "missing": None,
    "wrong": "Bearer wrong-token",
    "other-scheme": f"Basic {ADMIN_TOKEN}",
    "no-scheme": ADMIN_TOKEN,
    "empty": "Bearer ",
}


async def test_upsert_anchor_without_the_admin_token_is_refused_and_changes_nothing(
    catalog: CatalogClient,
) -> None:
    await catalog.send(push("2121_alice", BASE))
    request = {
        "query": UPSERT,
        "variables": {
            "input": {"userId": "u-42", "nickname": "Mallory", "streamIds": ["2121_alice"]}
        },
    }

    for case, authorization in REFUSED_AUTHORIZATIONS.items():
        headers = {"Authorization": authorization} if authorization else {}
        response = await catalog.http.post("/graphql", json=request, headers=headers)
        body = response.json()
        assert body["data"] is None, case
        assert [error["message"] for error in body["errors"]] == [
            "this operation needs the admin bearer token"
        ], case
        await assert_nothing_changed(catalog)


async def test_upsert_anchor_is_refused_when_no_admin_token_is_configured(
    database_url: str,
) -> None:
    # This app does not truncate PostgreSQL first: names are unique to this test.
    suffix = uuid.uuid4().hex[:8]
    stream_id, user_id = f"2121_alice{suffix}", f"u-{suffix}"
    settings = make_settings(database_url, admin_token=None)
    async with CatalogClient.started(settings) as catalog:
        await catalog.send(push(stream_id, BASE))

        body = await catalog.graphql(
            UPSERT,
            {"input": {"userId": user_id, "nickname": "Mallory", "streamIds": [stream_id]}},
            token=ADMIN_TOKEN,
        )

        assert body["data"] is None
        assert [error["message"] for error in body["errors"]] == [
            "admin operations are disabled: ADMIN_TOKEN is not configured"
        ]
        assert await anchor(catalog, user_id) is None
        assert (await anchor_of_stream(catalog, stream_id))["userId"] == f"alice{suffix}"


INVALID_INPUTS = {
    "empty-user-id": ({"userId": ""}, "userId must be 1 to 128 characters"),
    "blank-user-id": ({"userId": "   "}, "userId must be 1 to 128 characters"),
    "long-user-id": ({"userId": "u" * 129}, "userId must be 1 to 128 characters"),
    "long-nickname": ({"nickname": "n" * 257}, "nickname must be at most 256 characters"),
    "ftp-avatar": ({"avatarUrl": "ftp://cdn.example.com/a.png"}, "avatarUrl must be an http(s)"),
    "javascript-avatar": ({"avatarUrl": "javascript:alert(1)"}, "avatarUrl must be an http(s)"),
    "avatar-without-scheme": ({"avatarUrl": "cdn.example.com/a"}, "avatarUrl must be an http(s)"),
    "long-avatar": ({"avatarUrl": "https://" + "a" * 2048}, "avatarUrl must be an http(s)"),
    "empty-stream-id": (
        {"streamIds": ["2121_alice", ""]},
        "each streamId must be 1 to 256 characters",
    ),
    "long-stream-id": ({"streamIds": ["s" * 257]}, "each streamId must be 1 to 256 characters"),
    "nul-in-nickname": ({"nickname": "Ali\x00ce"}, "text must not contain NUL characters"),
    "nul-in-stream-id": ({"streamIds": ["2121_\x00x"]}, "text must not contain NUL characters"),
    "too-many-streams": (
        {"streamIds": [f"s{i}" for i in range(101)]},
        "at most 100 streamIds at a time",
    ),
}


async def test_invalid_upsert_is_refused_with_a_clear_message_and_changes_nothing(
    catalog: CatalogClient,
) -> None:
    await catalog.send(push("2121_alice", BASE))
    valid = {
        "userId": "u-42",
        "nickname": "Alice",
        "avatarUrl": AVATAR,
        "streamIds": ["2121_alice", "studio-42"],
    }

    for case, (changes, message) in INVALID_INPUTS.items():
        body = await catalog.graphql(UPSERT, {"input": {**valid, **changes}}, token=ADMIN_TOKEN)
        assert body["data"] is None, case
        (error,) = body["errors"]
        assert error["message"].startswith(message), case
        await assert_nothing_changed(catalog)


async def test_profile_text_is_trimmed(catalog: CatalogClient) -> None:
    saved = await upsert(
        catalog, userId="  u-42 ", nickname="  Alice  ", avatarUrl=f" {AVATAR} ", streamIds=[]
    )

    assert (saved["userId"], saved["nickname"], saved["avatarUrl"]) == ("u-42", "Alice", AVATAR)
