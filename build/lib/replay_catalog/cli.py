"""The `replay-catalog` command: serve, migrate, demo, schema."""

import argparse
import asyncio
import logging
import sys
from datetime import timedelta

from replay_catalog.settings import Settings
from storage.database import Database


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Driver debug logs carry SQL parameters, and the inbox stores raw payloads
    # (push URLs' txSecret included): keep them quiet whatever LOG_LEVEL says.
    for noisy in ("aiosqlite", "asyncpg", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def _migrate(settings: Settings) -> None:
    from storage.migrate import upgrade_to_head

    database = Database(settings.database_url)
    try:
        await upgrade_to_head(database)
    finally:
        await database.dispose()


async def _demo(settings: Settings) -> None:
    from replay_catalog.demo import load_demo
    from resolvers.ingestion import Ingestor
    from storage.migrate import upgrade_to_head

    database = Database(settings.database_url)
    try:
        await upgrade_to_head(database)
        ingestor = Ingestor(database, None, timedelta(seconds=settings.reconnect_window_seconds))
        new, old = await load_demo(database, ingestor)
        print(f"demo catalog loaded: {new} events stored now, {old} already there")
    finally:
        await database.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="replay-catalog", description="GraphQL catalog of Tencent Cloud Live recordings."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="apply pending migrations, then serve HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    commands.add_parser("migrate", help="apply pending migrations and exit")
    commands.add_parser("demo", help="load the demo catalog (idempotent)")
    commands.add_parser("schema", help="print the GraphQL schema (SDL)")
    args = parser.parse_args(argv)

    if args.command == "schema":
        from schema import build_schema

        print(build_schema().as_str())
        return 0

    settings = Settings()
    _configure_logging(settings)
    try:
        if args.command == "migrate":
            asyncio.run(_migrate(settings))
            print("database is up to date")
        elif args.command == "demo":
            asyncio.run(_demo(settings))
        else:
            import uvicorn

            from replay_catalog.app import create_app

            asyncio.run(_migrate(settings))
            uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    except OSError as failure:
        print(f"replay-catalog: cannot reach the database: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
