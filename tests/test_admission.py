"""Per-client admission: one address asking for computations faster than its rate waits
for its turn or is refused, without holding back other clients or cached answers."""

import asyncio
import time

import httpx
import pytest

from replay_catalog.settings import Settings
from tests.catalog_client import ADMIN_TOKEN, clients_of, make_settings

pytestmark = pytest.mark.anyio


def distinct_queries(count: int, prefix: str) -> list[dict[str, str]]:
    """Queries no cache holds: a new operation name each."""
    return [{"query": f"query {prefix}{n} {{ __typename }}"} for n in range(count)]


@pytest.mark.parametrize("cache_entries", [512, 0], ids=["cache-on", "cache-off"])
async def test_a_client_over_its_rate_waits_for_its_turn_or_is_refused_and_others_go_on(
    database_url: str, cache_entries: int
) -> None:
    # 1 a second, bursts of 2, a turn at most 1 s away: of 6 at once, 2 go at once, 1
    # waits for its turn (1 s), 3 are refused after waiting 1 s.
    settings = make_settings(
        database_url,
        graphql_computations_per_client_per_second=1,
        response_cache_entries=cache_entries,
    )
    async with clients_of(settings, "10.0.0.1", "10.0.0.2") as (flood, other):
        began = time.monotonic()
        flooding = asyncio.gather(
            *(flood.post("/graphql", json=q) for q in distinct_queries(6, "F"))
        )
        await asyncio.sleep(0.05)
        alone = await other.post("/graphql", json={"query": "query Other { __typename }"})
        other_seconds = time.monotonic() - began
        answers = await flooding
        assert alone.status_code == 200 and other_seconds < 0.5
        assert sorted(a.status_code for a in answers) == [200, 200, 200, 429, 429, 429]
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.headers["retry-after"] == "1"
        assert refused.json() == {
            "errors": [{"message": "too many requests from this address; slow down and retry"}]
        }
        assert 0.9 < time.monotonic() - began < 3

        # An Authorization header (never cached) does not skip the turn.
        exhaust = distinct_queries(3, "G")
        token = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        statuses = await asyncio.gather(
            *(flood.post("/graphql", json=q, headers=token) for q in exhaust)
        )
        assert 429 in [s.status_code for s in statuses]


async def test_by_default_an_address_has_ten_computations_a_second(database_url: str) -> None:
    """The default rate (GRAPHQL_COMPUTATIONS_PER_CLIENT_PER_SECOND): 10 a second, bursts
    of 20. At 20 a second one flooding address cost ingestion on PostgreSQL a fifth on a
    slow machine (bench/ATTACK.md). Of 50 new documents at once, 20 go at once, some 10
    more within the second a turn may be away, and the rest are refused."""
    default = Settings.model_fields["graphql_computations_per_client_per_second"].default
    settings = make_settings(database_url, graphql_computations_per_client_per_second=default)
    async with clients_of(settings, "10.0.0.1") as (flood,):
        answers = await asyncio.gather(
            *(flood.post("/graphql", json=q) for q in distinct_queries(50, "D"))
        )
        statuses = [a.status_code for a in answers]
        assert 27 <= statuses.count(200) <= 34 and statuses.count(429) >= 16, statuses


async def test_answers_from_the_cache_cost_a_tenth_of_a_computation(database_url: str) -> None:
    """A flood of one cached query is held to ten times the rate, and other clients are
    not held back meanwhile."""
    settings = make_settings(database_url, graphql_computations_per_client_per_second=2)
    async with clients_of(settings, "10.0.0.1", "10.0.0.2") as (flood, other):
        cached = {"query": "query Cached { __typename }"}
        first = await flood.post("/graphql", json=cached)
        assert first.status_code == 200
        # 4 in the bucket less the first, 2 more a second; a tenth each: some 40 at once,
        # then 20 a second for the 1 s a turn may be away; the rest wait 1 s and get 429.
        began = time.monotonic()
        answers = await asyncio.gather(*(flood.post("/graphql", json=cached) for _ in range(100)))
        statuses = [a.status_code for a in answers]
        assert 40 <= statuses.count(200) <= 70 and statuses.count(429) >= 30
        assert {a.content for a in answers if a.status_code == 200} == {first.content}
        assert time.monotonic() - began < 3
        alone = await other.post("/graphql", json=cached)
        assert alone.status_code == 200


async def test_without_a_rate_a_client_is_never_held_back(database_url: str) -> None:
    settings = make_settings(database_url, graphql_computations_per_client_per_second=0)
    async with clients_of(settings, "10.0.0.1") as (client,):
        answers = await asyncio.gather(
            *(client.post("/graphql", json=q) for q in distinct_queries(30, "N"))
        )
        assert {a.status_code for a in answers} == {200}


@pytest.mark.parametrize("cache_entries", [512, 0], ids=["cache-on", "cache-off"])
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_large_new_document_costs_by_its_size_and_a_quiet_clients_still_goes(
    database_url: str, cache_entries: int, method: str
) -> None:
    # 2 a second, bursts of 4: a new 4 KB document costs 4 (a computation per KB; the
    # parser's time grows with it), so the same client's next query waits for its turn;
    # in a POST's body or a GET's query string, with the response cache or without.
    settings = make_settings(
        database_url,
        graphql_computations_per_client_per_second=2,
        response_cache_entries=cache_entries,
    )
    padding = "#" + "x" * 4095 + "\n"

    async def ask(client: httpx.AsyncClient, document: str) -> httpx.Response:
        if method == "GET":
            return await client.get("/graphql", params={"query": document})
        return await client.post("/graphql", json={"query": document})

    async with clients_of(settings, "10.0.0.1", "10.0.0.2", "10.0.0.3") as clients:
        large, small, huge = clients
        answer = await ask(large, padding + "query L { __typename }")
        assert answer.status_code == 200
        began = time.monotonic()
        assert (await ask(large, "query S { __typename }")).is_success
        assert time.monotonic() - began >= 0.4
        began = time.monotonic()
        assert (await ask(small, "query S { __typename }")).is_success
        assert time.monotonic() - began < 0.3
        # Past a full bucket it costs a full bucket: a quiet client's large document goes.
        document = padding * 5 + "query H { __typename }"
        assert (await ask(huge, document)).status_code == 200
