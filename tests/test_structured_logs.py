"""LOG_FORMAT=json: one JSON object per line, with the callback's fields and no secrets."""

import io
import json
import logging
from collections.abc import Iterator

import pytest

from replay_catalog.cli import log_formatter
from tests.catalog_client import BASE, CALLBACK_KEY, CatalogClient, make_settings, push, sign

pytestmark = pytest.mark.anyio


@pytest.fixture
def json_log(database_url: str) -> Iterator[io.StringIO]:
    """What the CLI's handler would write with LOG_FORMAT=json, for the app's loggers."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(log_formatter(make_settings(database_url, log_format="json")))
    logger = logging.getLogger("replay_catalog")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield output
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_callback_log_line_is_json_with_its_fields_and_no_secrets(
    catalog: CatalogClient, json_log: io.StringIO
) -> None:
    secret = "txSecret=5f1b2c3d4e&txTime=65F0A1B2"
    signed = sign(push("2121_a", BASE, "s1", stream_param=f"bizid=2121&{secret}"))
    await catalog.post_callback(signed)
    await catalog.post_callback(signed)

    text = json_log.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    callbacks = [line for line in lines if line["logger"] == "replay_catalog.ingestion"]
    assert [line["outcome"] for line in callbacks] == ["applied", "duplicate"]
    first = callbacks[0]
    assert first["stream"] == "2121_a" and first["event_type"] == 1
    assert isinstance(first["latency_ms"], float) and first["latency_ms"] >= 0
    assert first["level"] == "INFO" and "time" in first
    assert first["message"].startswith("callback event_type=1 stream=2121_a outcome=applied")
    for leaked in (CALLBACK_KEY, signed["sign"], "5f1b2c3d4e", "stream_param"):
        assert leaked not in text


def test_text_is_the_default_log_format(database_url: str) -> None:
    formatter = log_formatter(make_settings(database_url))
    record = logging.LogRecord("replay_catalog", logging.INFO, __file__, 1, "hello", None, None)
    assert formatter.format(record).endswith("INFO replay_catalog: hello")
