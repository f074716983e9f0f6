"""GET /metrics: what operators scrape, moved by real callbacks, queries and outages."""

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from replay_catalog.metrics import MAX_OPERATION_NAMES, CatalogMetrics
from tests.catalog_client import (
    BASE,
    UNREACHABLE_DATABASES,
    CatalogClient,
    make_settings,
    push,
    sign,
)

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(catalog: CatalogClient, token: str | None = None) -> Samples:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await catalog.http.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_callbacks_are_counted_by_event_type_and_outcome(catalog: CatalogClient) -> None:
    before = await scrape(catalog)
    assert value(before, "replay_catalog_ingestion_seconds_count") == 0

    event = sign(push("2121_a", BASE, "s1"))
    assert (await catalog.post_callback(event)).status_code == 200
    assert (await catalog.post_callback(event)).status_code == 200
    await catalog.send({"event_type": 4242, "stream_id": "2121_a", "event_time": BASE})
    assert (await catalog.post_callback({**event, "sign": "0" * 32})).status_code == 401
    assert (await catalog.post_callback([1, 2])).status_code == 400
    wrong_type = await catalog.http.post(
        "/callbacks/tencent", content=b"{}", headers={"content-type": "text/html"}
    )
    assert wrong_type.status_code == 415

    after = await scrape(catalog)
    callbacks = "replay_catalog_callbacks_total"
    assert value(after, callbacks, event_type="1", outcome="applied") == 1
    assert value(after, callbacks, event_type="1", outcome="duplicate") == 1
    # An event type the catalog does not know is not a label value of its own.
    assert value(after, callbacks, event_type="other", outcome="ignored") == 1
    assert value(after, callbacks, event_type="1", outcome="refused") == 1
    assert value(after, callbacks, event_type="other", outcome="refused") == 2
    assert not any("4242" in str(labels) for _, labels in after)
    assert value(after, "replay_catalog_ingestion_seconds_count") == 3
    assert value(after, "replay_catalog_ingestion_seconds_sum") > 0
    assert value(after, "replay_catalog_ingestion_seconds_bucket", le="+Inf") == 3


async def test_graphql_operations_are_counted_and_timed_by_name_and_outcome(
    catalog: CatalogClient,
) -> None:
    await catalog.data("query RoomList { rooms(first: 1) { edges { cursor } } }")
    await catalog.data("query RoomList { rooms(first: 2) { edges { cursor } } }")
    await catalog.data("{ rooms(first: 1) { edges { cursor } } }")
    broken = await catalog.graphql("query Broken { noSuchField }")
    assert broken["errors"]

    samples = await scrape(catalog)
    operations = "replay_catalog_graphql_operations_total"
    assert value(samples, operations, operation="RoomList", outcome="ok") == 2
    assert value(samples, operations, operation="anonymous", outcome="ok") == 1
    assert value(samples, operations, operation="Broken", outcome="error") == 1
    assert value(samples, operations, operation="Broken", outcome="ok") == 0
    seconds = "replay_catalog_graphql_operation_seconds"
    assert value(samples, f"{seconds}_count", operation="RoomList") == 2
    assert value(samples, f"{seconds}_sum", operation="RoomList") > 0


def test_operation_names_are_truncated_and_capped() -> None:
    assert CatalogMetrics().operation_label(None) == "anonymous"
    assert CatalogMetrics().operation_label("Q" * 500) == "Q" * 64
    metrics = CatalogMetrics()
    for number in range(MAX_OPERATION_NAMES * 2):
        metrics.graphql_operation(f"Query{number}", ok=True, seconds=0.001)
    assert metrics.operation_label("Query5") == "Query5"
    assert metrics.operation_label("YetAnotherOne") == "other"
    names = {
        sample.labels["operation"]
        for family in metrics.registry.collect()
        if family.name == "replay_catalog_graphql_operations"
        for sample in family.samples
    }
    assert len(names) == MAX_OPERATION_NAMES + 1 and "other" in names


async def test_each_app_has_its_own_metrics(catalog: CatalogClient, database_url: str) -> None:
    await catalog.send(push("2121_a", BASE, "s1"))
    async with CatalogClient.started(make_settings(database_url)) as other:
        samples = await scrape(other)
    assert value(samples, "replay_catalog_ingestion_seconds_count") == 0


async def test_metrics_can_require_a_bearer_token(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="replay_catalog")
    token = "metrics-token-0123456789"
    settings = make_settings(database_url, metrics_token=token)
    async with CatalogClient.started(settings) as catalog:
        await catalog.send(push("2121_a", BASE, "s1"))
        refused = [
            await catalog.http.get("/metrics", headers=headers)
            for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": token})
        ]
        assert [r.status_code for r in refused] == [401, 401, 401]
        assert all(r.headers["www-authenticate"] == "Bearer" for r in refused)
        assert all("replay_catalog" not in r.text and token not in r.text for r in refused)
        samples = await scrape(catalog, token)
        assert value(samples, "replay_catalog_ingestion_seconds_count") == 1
        # Everything else is as open as before.
        assert (await catalog.http.get("/healthz")).status_code == 200
    assert token not in caplog.text


@pytest.mark.parametrize(
    "unreachable", UNREACHABLE_DATABASES.values(), ids=UNREACHABLE_DATABASES.keys()
)
async def test_database_outages_are_counted(unreachable: str) -> None:
    async with CatalogClient.started(make_settings(unreachable)) as catalog:
        assert value(await scrape(catalog), "replay_catalog_database_errors_total") == 0
        response = await catalog.post_callback(sign(push("2121_a", BASE)))
        assert response.status_code == 503
        samples = await scrape(catalog)
        assert value(samples, "replay_catalog_database_errors_total") >= 1
        callbacks = "replay_catalog_callbacks_total"
        assert value(samples, callbacks, event_type="1", outcome="unavailable") == 1

        errors_before = value(samples, "replay_catalog_database_errors_total")
        body = await catalog.graphql('query One { stream(streamId: "2121_a") { streamId } }')
        assert body["errors"]
        assert (await catalog.http.get("/readyz")).status_code == 503
        samples = await scrape(catalog)
        assert value(samples, "replay_catalog_database_errors_total") >= errors_before + 2
        operations = "replay_catalog_graphql_operations_total"
        assert value(samples, operations, operation="One", outcome="error") == 1
