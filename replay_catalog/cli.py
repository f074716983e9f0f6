"""The `replay-catalog` command: serve, migrate, demo, reconcile, reprocess, schema."""

import argparse
import asyncio
import errno
import gc
import logging
import socket
import sys
from datetime import timedelta

from pydantic import ValidationError

from replay_catalog.settings import Settings, invalid_settings
from storage.database import Database, check_database_url, misconfiguration

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
    # Alembic's plugin and migration lines are chatter but for whoever debugs a migration.
    if not debugging(settings):
        logging.getLogger("alembic").setLevel(logging.WARNING)


def collect_garbage_for_serving() -> None:
    """The serving process's garbage collector: what exists once the app is built (the
    modules, the schema, the engines) is frozen, so that no collection walks it again,
    and the youngest generation is collected every 10,000 allocations instead of 700.
    A room-list page allocates thousands of objects, nearly all freed by reference
    counting; with the defaults the collector ran about once a page (0.37 ms of a 6.5 ms
    execution), with these once every twenty pages (0.12 ms a page)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def debugging(settings: Settings) -> bool:
    """Whether LOG_LEVEL asks for the chatter that is otherwise held back."""
    return settings.log_level.upper() == "DEBUG"


async def _migrate(settings: Settings) -> None:
    from storage.migrate import upgrade_to_head

    database = Database(settings.database_url)
    try:
        await upgrade_to_head(database)
        await database.ping()  # the writer's connection too, before serving anything
    finally:
        await database.dispose()


async def _demo(settings: Settings) -> None:
    from replay_catalog.demo import load_demo
    from resolvers.ingestion import Ingestor
    from storage.migrate import upgrade_to_head

    if not debugging(settings):
        # One line per demo callback says nothing the summary does not.
        logging.getLogger("replay_catalog.ingestion").setLevel(logging.WARNING)
    database = Database(settings.database_url)
    try:
        await upgrade_to_head(database)
        ingestor = Ingestor(database, None, settings.grouping_rules())
        new, old = await load_demo(database, ingestor, settings.public_base_url)
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
    from domain.times import utc_now
    from replay_catalog.jobs.reconciliation import ReconcileTarget, recently_ended, reconcile
    from replay_catalog.services import file_list_client
    from resolvers.ingestion import Ingestor
    from storage.database import DatabaseUnavailable
    from tencent.filelist import FileListError

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
    from replay_catalog.jobs.reprocessing import reprocess
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


class HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` that shows each option's default, where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def port_in_use(host: str, port: int) -> str | None:
    """Why `serve` cannot listen on host:port, found before it migrates or logs that it
    started; None when it can (uvicorn binds the same way, with SO_REUSEADDR)."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as failure:
        return f"cannot listen on {host}: {failure.strerror}; pass another --host"
    family, kind, proto, _, address = addresses[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as failure:
            if failure.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is in use: stop what holds it, or pass another --port"
                )
            return (
                f"cannot listen on {host}:{port}: {failure.strerror}; pass another --host or --port"
            )
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="replay-catalog",
        description="GraphQL catalog of Tencent Cloud Live recordings. Settings come from"
        " environment variables (and .env): DATABASE_URL, CALLBACK_KEY, ADMIN_TOKEN, …;"
        " see docs/configuration.md.",
        formatter_class=HelpWithDefaults,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        """A subcommand whose --help says what it does and every option's default."""
        return commands.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            formatter_class=HelpWithDefaults,
        )

    serve = command(
        "serve", "apply pending migrations, then serve the API, the demo page and callbacks"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    command("migrate", "apply pending migrations to DATABASE_URL and exit")
    command(
        "demo",
        "load the demo catalog into DATABASE_URL through the real ingestion path"
        " (a second run adds nothing)",
    )
    command("schema", "print the GraphQL schema (SDL); schema.graphql is this output")
    reconcile = command(
        "reconcile",
        "fill in recordings that callbacks missed, from Tencent's file list"
        " (needs TENCENT_APPID and TENCENT_API_KEY)",
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
        default="24h",
        metavar="DURATION",
        help="with --stream: how far back to look",
    )
    reprocess = command(
        "reprocess", "apply quarantined inbox entries again with this release's code"
    )
    reprocess.add_argument(
        "--all", action="store_true", help="every inbox entry, not only the quarantined ones"
    )
    reprocess.add_argument("--stream", type=stream_id, metavar="ID", help="only this stream's")
    send = command(
        "send-callback",
        "post a callback to a running service, signed with CALLBACK_KEY as Tencent signs it,"
        " and print the answer's status and body",
    )
    send.add_argument(
        "file",
        metavar="FILE",
        help="a JSON body without t and sign: a file, - for standard input, or a shipped"
        " sample: push, cut, recording, screenshot",
    )
    send.add_argument("--url", default="http://127.0.0.1:8000", help="the service's address")
    send.add_argument(
        "--now",
        action="store_true",
        help="place the event now (event_time, create_time; a file ends now), replacing the"
        " times the body has; without it only missing times are filled in",
    )
    args = parser.parse_args(argv)

    if args.command == "schema":
        from schema import build_schema

        print(build_schema().as_str())
        return 0

    try:
        settings = Settings()
    except ValidationError as invalid:
        for line in invalid_settings(invalid):
            print(f"replay-catalog: {line}", file=sys.stderr)
        return 2
    if args.command == "send-callback":
        from replay_catalog.send_callback import send_callback

        key = settings.callback_key.get_secret_value() if settings.callback_key else None
        return send_callback(args.file, args.url, key, args.now)
    configure_logging(settings)
    try:
        # A URL that can never work is a mistake to fix, not an outage to wait out (a
        # running service whose SQLite folder goes away answers 503 instead).
        check_database_url(settings.database_url)
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

            busy = port_in_use(args.host, args.port)
            if busy is not None:
                print(f"replay-catalog: {busy}", file=sys.stderr)
                return 2
            asyncio.run(_migrate(settings))
            for switched_off in settings.switched_off():
                logging.getLogger("replay_catalog").warning(switched_off)
            limits = EdgeLimits(
                max_header_bytes=settings.http_max_header_bytes,
                max_body_bytes=max(settings.http_max_body_bytes, settings.callback_max_body_bytes),
                header_timeout=settings.http_header_timeout_seconds,
                body_timeout=settings.http_body_timeout_seconds,
                connections_per_client=settings.connections_per_client(),
            )
            app = create_app(settings)
            collect_garbage_for_serving()
            uvicorn.run(
                app,
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
    except Exception as failure:
        misconfigured = misconfiguration(failure, settings.database_url)
        if misconfigured is None:
            raise
        print(f"replay-catalog: {misconfigured}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
