"""The `replay-catalog` command: migrate, demo and serve, run as a user would run them."""

import os
import socket
import subprocess
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import make_url

from replay_catalog.settings import Settings
from tests.catalog_client import BASE, CALLBACK_KEY, CatalogClient, recording, sign
from tests.conftest import POSTGRES_SERVER
from tests.servers import COMMAND, free_port, serving

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


SETTINGS = Settings.model_fields.keys()
# Every command that opens the database, as a newcomer would run it.
DATABASE_COMMANDS = [
    ["migrate"],
    ["demo"],
    ["reprocess"],
    ["reconcile", "--ended-within", "2h"],
    ["serve", "--port", "0"],
]


def run_all(
    commands: list[list[str]], cwd: Path, **settings: str
) -> list[subprocess.CompletedProcess[str]]:
    """Each command at once, with these settings and no others from the test's environment."""
    env = {name: value for name, value in os.environ.items() if name.lower() not in SETTINGS}
    env |= {"TENCENT_APPID": "1400000000", "TENCENT_API_KEY": "key", **settings}
    processes = [
        subprocess.Popen(  # noqa: S603 - our own command
            COMMAND + args,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    results = []
    for process, args in zip(processes, commands, strict=True):
        stdout, stderr = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(args, process.returncode, stdout, stderr))
    return results


def assert_one_line_naming(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, (result.args, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("replay-catalog: "), (result.args, result.stderr)
    assert all(word in lines[0] for word in words), (result.args, lines[0])
    assert result.stdout == ""


def postgres_url(database: str | None = None, user: str | None = None) -> str:
    server = make_url(POSTGRES_SERVER)
    return server.set(
        database=database or server.database, username=user or server.username
    ).render_as_string(hide_password=False)


@pytest.mark.parametrize(
    ("database_url", "words"),
    [
        pytest.param(
            postgres_url(database="no_such_catalog"),
            [
                'database "no_such_catalog" does not exist',
                "createdb no_such_catalog",
                "DATABASE_URL",
            ],
            marks=pytest.mark.postgres,
            id="missing-postgres-database",
        ),
        pytest.param(
            postgres_url(user="no_such_role"),
            ['role "no_such_role" does not exist', "createuser no_such_role", "DATABASE_URL"],
            marks=pytest.mark.postgres,
            id="missing-postgres-role",
        ),
        pytest.param(
            "sqlite:///missing-folder/catalog.db",
            ["DATABASE_URL", "missing-folder", "does not exist", "mkdir -p missing-folder"],
            id="sqlite-file-in-missing-folder",
        ),
        pytest.param(
            "mysql://catalog:hunter2@db.example.com/catalog",
            ["DATABASE_URL", "mysql", "sqlite+aiosqlite://", "postgresql+asyncpg://"],
            id="unsupported-scheme",
        ),
        pytest.param("replay catalog please", ["DATABASE_URL is not a database URL"], id="garbage"),
    ],
)
def test_a_database_url_mistake_is_one_line_from_every_command(
    database_url: str, words: list[str], tmp_path: Path
) -> None:
    for result in run_all(DATABASE_COMMANDS, tmp_path, DATABASE_URL=database_url):
        assert_one_line_naming(result, *words)
        assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("LIVE_SILENCE_SECONDS", "abc", ["LIVE_SILENCE_SECONDS='abc'", "valid integer"]),
        ("RECONNECT_WINDOW_SECONDS", "999999", ["RECONNECT_WINDOW_SECONDS='999999'", "86400"]),
    ],
)
def test_a_bad_setting_value_is_one_line_naming_the_variable_from_every_command(
    setting: str, value: str, words: list[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    for result in run_all(DATABASE_COMMANDS, tmp_path, DATABASE_URL=url, **{setting: value}):
        assert_one_line_naming(result, *words)


async def test_serve_says_at_start_what_is_switched_off(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    async with serving(database_url, tmp_path, CALLBACK_KEY="", ADMIN_TOKEN="") as server:
        pass
    warnings = [line for line in server.log.read_text().splitlines() if " WARNING " in line]
    said = "\n".join(warnings)
    assert len(warnings) == 4, said
    assert "CALLBACK_KEY is not set: every Tencent callback is refused with 401" in said
    assert "ADMIN_TOKEN is not set: admin mutations are refused" in said
    assert "PUSH_DOMAIN and PUSH_KEY not set: createPushUrl is refused" in said
    assert "PLAY_DOMAIN is not set: live rooms have no play URLs" in said


async def test_serve_with_everything_configured_warns_of_nothing(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    domains = {
        "PUSH_DOMAIN": "push.example.com",
        "PUSH_KEY": "k",
        "PLAY_DOMAIN": "play.example.com",
    }
    async with serving(database_url, tmp_path, **domains) as server:
        pass
    assert " WARNING " not in server.log.read_text()


def test_migrate_and_demo_print_one_line_each_at_the_default_log_level(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    (migrate,) = run_all([["migrate"]], tmp_path, DATABASE_URL=url)
    assert migrate.returncode == 0 and migrate.stdout == "database is up to date\n"
    assert migrate.stderr == ""
    (demo,) = run_all([["demo"]], tmp_path, DATABASE_URL=url)
    assert demo.returncode == 0 and demo.stdout.startswith("demo catalog loaded: ")
    assert len(demo.stdout.splitlines()) == 1
    assert demo.stderr == ""


def test_debug_log_level_shows_the_migrations_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    (migrate,) = run_all([["migrate"]], tmp_path, DATABASE_URL=url, LOG_LEVEL="DEBUG")
    assert migrate.returncode == 0 and "alembic.runtime.migration" in migrate.stderr


def test_help_describes_every_command_and_option_with_its_default(tmp_path: Path) -> None:
    commands = ["serve", "migrate", "demo", "schema", "reconcile", "reprocess"]
    overview, *pages = run_all([["--help"]] + [[name, "--help"] for name in commands], tmp_path)
    for name in commands:
        described = [line for line in overview.stdout.splitlines() if line.strip().startswith(name)]
        assert described and len(described[0].split()) > 3, overview.stdout
    for page in pages:
        paragraphs = page.stdout.split("\n\n")
        assert page.returncode == 0 and paragraphs[1].strip(), page.stdout  # a description
        lines = page.stdout.splitlines()
        for option, following in zip(lines, [*lines[1:], ""], strict=True):
            if option.startswith("  -"):  # its words on the same line, or indented below
                assert len(option.split()) > 2 or following.startswith(" " * 8), page.stdout
    serve = pages[0].stdout
    assert "(default: 127.0.0.1)" in serve and "(default: 8000)" in serve
    assert "(default: 24h)" in pages[4].stdout


def test_serve_on_a_busy_port_says_so_in_one_line_before_starting(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        (serve,) = run_all([["serve", "--port", str(port)]], tmp_path, DATABASE_URL=url)
    assert_one_line_naming(serve, f"port {port} on 127.0.0.1 is in use", "--port")
    assert not (tmp_path / "catalog.db").exists()  # nothing done before the port was checked
