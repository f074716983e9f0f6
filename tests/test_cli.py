"""The `replay-catalog` command: migrate, demo and serve, run as a user would run them."""

import os
import subprocess
from pathlib import Path

import anyio
import httpx
import pytest

from tests.catalog_client import BASE, CALLBACK_KEY, CatalogClient, recording, sign
from tests.servers import COMMAND, serving

pytestmark = pytest.mark.anyio


def run(args: list[str], database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    return subprocess.run(  # noqa: S603 - our own command
        COMMAND + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


async def test_demo_loads_a_believable_catalog_once(
    catalog: CatalogClient, database_url: str, tmp_path: Path
) -> None:
    first = await anyio.to_thread.run_sync(run, ["demo"], database_url, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "0 already there" in first.stdout
    rooms = await catalog.all_rooms()
    kinds = [room["kind"] for room in rooms]
    assert kinds[:2] == ["LIVE", "LIVE"] and set(kinds[2:]) == {"REPLAY"} and len(kinds) >= 6
    formats = await catalog.data(
        '{ anchor(userId: "lily") { nickname replays(first: 5) { edges { node {'
        " recordings { format } } } } } }"
    )
    parts = formats["anchor"]["replays"]["edges"][0]["node"]["recordings"]
    assert {"HLS", "MP4"} <= {part["format"] for part in parts} and len(parts) > 2
    placeholder = await catalog.data('{ anchor(userId: "15919131751") { nickname } }')
    assert placeholder["anchor"] == {"nickname": None}

    second = await anyio.to_thread.run_sync(run, ["demo"], database_url, tmp_path)
    assert second.returncode == 0, second.stderr
    assert " 0 events stored now" in second.stdout
    assert await catalog.all_rooms() == rooms


async def test_serve_migrates_a_new_database_and_answers_over_http(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    async with (
        serving(database_url, tmp_path, LOG_LEVEL="INFO") as server,
        httpx.AsyncClient(base_url=server.base_url) as http,
    ):
        event = sign(recording("2121_alice", "f1", BASE, BASE + 60))
        answer = await http.post("/callbacks/tencent", json=event)
        assert answer.status_code == 200 and answer.json() == {"code": 0}
        rooms = await http.post(
            "/graphql",
            json={"query": "{ rooms { edges { node { kind anchor { userId } } } } }"},
        )
        assert rooms.json()["data"]["rooms"]["edges"] == [
            {"node": {"kind": "REPLAY", "anchor": {"userId": "alice"}}}
        ]
    output = server.log.read_text()
    assert "callback event_type=100 stream=2121_alice outcome=applied" in output
    assert CALLBACK_KEY not in output and event["sign"] not in output


def test_migrate_reports_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    result = run(["migrate"], "postgresql://postgres@127.0.0.1:1/none", tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("replay-catalog: cannot reach the database")
    assert "Traceback" not in result.stderr
