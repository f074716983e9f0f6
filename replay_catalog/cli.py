"""The `replay-catalog` command: serve, migrate, demo, reconcile, reprocess, schema."""

import argparse
import asyncio
import logging
import sys
from datetime import timedelta

from replay_catalog.settings import Settings
from storage.database import Database

TEXT_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_formatter(settings: Settings) -> logging.Formatter:
    """Plain lines, or with LOG_FORMAT=json one JSON object per line that also carries
    the fields a log call passes in `extra` (the per-callback line's stream, outcome, …)."""
    if settings.log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return logging.Formatter(TEXT_LOG_FORMAT)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(log_formatter(settings))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
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
        ingestor = Ingestor(database, None, settings.grouping_rules())
        new, old = await load_demo(database, ingestor)
        print(f"demo catalog loaded: {new} events stored now, {old} already there")
    finally:
        await database.dispose()


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `1d`, or plain seconds."""
    text = text.strip().lower()
    unit = DURATION_UNITS.get(text[-1:])
    number = text[:-1] if unit else text
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (try 90s, 30m, 2h, 1d)"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError("a duration must be positive")
    return timedelta(seconds=value * (unit or 1))


class Progress:
    """A one-line progress bar on a terminal, nothing elsewhere."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if self.enabled:
            filled = 30 * done // max(total, 1)
            sys.stderr.write(f"\r[{'#' * filled}{' ' * (30 - filled)}] {done}/{total} streams")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


async def _reconcile(settings: Settings, args: argparse.Namespace) -> int:
    from replay_catalog.app import file_list_client
    from replay_catalog.tencent.filelist import FileListError
    from resolvers.ingestion import Ingestor
    from resolvers.reconciliation import ReconcileTarget, recently_ended, reconcile
    from storage.database import DatabaseUnavailable
    from storage.times import utc_now

    client = file_list_client(settings)
    if client is None:
        print("replay-catalog: TENCENT_APPID and TENCENT_API_KEY must be set", file=sys.stderr)
        return 2
    database = Database(settings.database_url)
    progress = Progress()
    try:
        if args.stream:
            now = utc_now()
            targets = [
                ReconcileTarget(s, now - args.since, now) for s in dict.fromkeys(args.stream)
            ]
        else:
            targets = await recently_ended(database, args.ended_within)
        ingestor = Ingestor(database, None, settings.grouping_rules())
        summary = await reconcile(database, ingestor, client, targets, progress)
    except (FileListError, DatabaseUnavailable) as failure:
        progress.finish()
        print(f"replay-catalog: reconcile failed: {failure}", file=sys.stderr)
        return 1
    finally:
        await client.aclose()
        await database.dispose()
    progress.finish()
    print(summary)
    return 0


async def _reprocess(settings: Settings, args: argparse.Namespace) -> int:
    from resolvers.reprocessing import reprocess
    from storage.database import DatabaseUnavailable
    from storage.inbox import OUTCOME_QUARANTINED, InboxFilter
    from storage.migrate import upgrade_to_head

    inbox_filter = InboxFilter(
        outcome=None if args.all else OUTCOME_QUARANTINED, stream_id=args.stream
    )
    database = Database(settings.database_url)
    try:
        await database.ping()
        await upgrade_to_head(database)
        summary = await reprocess(database, settings.grouping_rules(), inbox_filter)
    except DatabaseUnavailable as failure:
        print(f"replay-catalog: reprocess failed: {failure}", file=sys.stderr)
        return 1
    finally:
        await database.dispose()
    print(summary)
    return 0


def stream_id(text: str) -> str:
    if not text.strip() or len(text) > 256:
        raise argparse.ArgumentTypeError("a stream id has 1 to 256 characters")
    return text


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
    reconcile = commands.add_parser(
        "reconcile", help="fill in recordings that callbacks missed, from Tencent's file list"
    )
    which = reconcile.add_mutually_exclusive_group(required=True)
    which.add_argument("--stream", action="append", metavar="ID", help="a stream id (repeatable)")
    which.add_argument(
        "--ended-within",
        type=duration,
        metavar="DURATION",
        help="every stream whose broadcast ended within this time (e.g. 2h)",
    )
    reconcile.add_argument(
        "--since",
        type=duration,
        default=timedelta(hours=24),
        metavar="DURATION",
        help="with --stream: how far back to look (default 24h)",
    )
    reprocess = commands.add_parser(
        "reprocess",
        help="apply quarantined inbox entries again with this release's code",
    )
    reprocess.add_argument(
        "--all", action="store_true", help="every inbox entry, not only the quarantined ones"
    )
    reprocess.add_argument("--stream", type=stream_id, metavar="ID", help="only this stream's")
    args = parser.parse_args(argv)

    if args.command == "schema":
        from schema import build_schema

        print(build_schema().as_str())
        return 0

    settings = Settings()
    configure_logging(settings)
    try:
        if args.command == "migrate":
            asyncio.run(_migrate(settings))
            print("database is up to date")
        elif args.command == "demo":
            asyncio.run(_demo(settings))
        elif args.command == "reconcile":
            return asyncio.run(_reconcile(settings, args))
        elif args.command == "reprocess":
            return asyncio.run(_reprocess(settings, args))
        else:
            import uvicorn

            from replay_catalog.app import create_app
            from replay_catalog.server import EdgeLimits, edge_protocol

            asyncio.run(_migrate(settings))
            limits = EdgeLimits(
                max_header_bytes=settings.http_max_header_bytes,
                max_body_bytes=max(settings.http_max_body_bytes, settings.callback_max_body_bytes),
                header_timeout=settings.http_header_timeout_seconds,
                body_timeout=settings.http_body_timeout_seconds,
                connections_per_client=settings.connections_per_client(),
            )
            uvicorn.run(
                create_app(settings),
                host=args.host,
                port=args.port,
                http=edge_protocol(limits),
                log_level="info",
                ws_ping_interval=settings.websocket_ping_interval_seconds,
                ws_ping_timeout=settings.websocket_ping_timeout_seconds,
                limit_concurrency=settings.max_connections,
                access_log=settings.access_log,
                # JSON logs: let uvicorn's loggers reach our root handler instead of its own.
                log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
            )
    except OSError as failure:
        print(f"replay-catalog: cannot reach the database: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
