"""The async engine, sessions for reading and writing, and dialect-aware upserts."""

import asyncio
import functools
import math
import sqlite3
import time
from collections import namedtuple
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

import asyncpg
from sqlalchemy import (
    URL,
    Boolean,
    Engine,
    Select,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    make_url,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable, text
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BinaryExpression, ColumnElement
from sqlalchemy.sql.operators import in_op
from sqlalchemy.util import greenlet_spawn
from sqlmodel import SQLModel

from storage.catalog_version import (
    KEPT_CHANGES,
    READ_CHANGES,
    READ_VERSION,
    VERSION_ROW,
    Version,
    changed_tags,
    raise_version,
    read_version,
    version_of,
)
from storage.changefeed import CatalogChange, ChangeFeed, announce
from storage.unit_of_work import UnitOfWork

T = TypeVar("T")

# SQLite waits this long for another writer before giving up with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000
# A WAL reader waits for nobody, except while a crashed writer's WAL is recovered; reads
# run in the event loop's thread (below), so they wait at most this long, then fail.
SQLITE_READ_TIMEOUT_SECONDS = 1.0


UNAVAILABLE_MESSAGE = "the catalog database is unavailable; try again later"

# SQLSTATE classes that mean "not now" rather than "not this": connection faults (08),
# resources (53), operator intervention such as a restart (57), system errors (58), a
# read-only server (25006), and serialization failures and deadlocks worth a retry.
OUTAGE_SQLSTATES = ("08", "53", "57", "58", "25006", "40001", "40P01")


# Where the catalog lives when DATABASE_URL is not set: an SQLite file in the working folder.
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./replay-catalog.db"


class DatabaseUnavailable(Exception):
    """The database could not be reached or written; the caller should retry later."""


class DatabaseMisconfigured(Exception):
    """DATABASE_URL names a database this service cannot use; the message says what is
    wrong and what to change, in one line that never repeats the URL's password."""


# The drivers the service runs on; plain `sqlite` and `postgresql` URLs get them (settings).
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
EXAMPLE_URLS = "sqlite+aiosqlite:///path/to/catalog.db or postgresql+asyncpg://user@host:5432/name"
# SQLSTATEs PostgreSQL answers a connection with when the URL names what is not there.
INVALID_CATALOG_NAME = "3D000"  # the database does not exist
INVALID_AUTHORIZATION = "28000"  # the role does not exist, or pg_hba.conf refuses it
AUTHENTICATION_FAILED = "28P01"  # a wrong password


def check_database_url(url: str) -> None:
    """Raise DatabaseMisconfigured for a URL that can never work: not a URL, a database
    or driver this service does not run on, an SQLite file in a folder that is not there."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseMisconfigured(
            f"DATABASE_URL is not a database URL: write {EXAMPLE_URLS}"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql") or (
        "+" in parsed.drivername and parsed.drivername not in SUPPORTED_DRIVERS
    ):
        raise DatabaseMisconfigured(
            f"DATABASE_URL names {parsed.drivername}, which replay-catalog does not run on:"
            f" use {EXAMPLE_URLS}"
        )
    if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if parsed.query.get("uri") or parsed.database.startswith("file:"):
            return
        folder = Path(parsed.database).parent
        if not folder.is_dir():
            raise DatabaseMisconfigured(
                f"DATABASE_URL points at {parsed.database}, in folder {folder} that does not"
                f" exist: create it with `mkdir -p {folder}`, or point DATABASE_URL elsewhere"
            )


def misconfiguration(error: BaseException, url: str) -> DatabaseMisconfigured | None:
    """The configuration mistake behind a failure to open the database, if it is one: a
    PostgreSQL database or role that does not exist, a wrong password, an SQLite file that
    cannot be opened. None for anything else (an outage, a bug)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        cause = pending.pop()
        if cause is None or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, DatabaseMisconfigured):
            return cause
        explained = _explain(cause, url)
        if explained is not None:
            return DatabaseMisconfigured(explained)
        pending += [getattr(cause, "orig", None), cause.__cause__, cause.__context__]
    return None


def _explain(cause: BaseException, url: str) -> str | None:
    """One line for one driver error that a change of DATABASE_URL (or of the server) fixes."""
    parsed = make_url(url)
    if isinstance(cause, sqlite3.OperationalError) and "unable to open" in str(cause):
        return (
            f"DATABASE_URL points at {parsed.database}, which cannot be opened: make the file"
            " and its folder writable, or point DATABASE_URL elsewhere"
        )
    state = getattr(cause, "sqlstate", None)
    server = f"{parsed.host}:{parsed.port or 5432}" if parsed.host else "the local server"
    if state == INVALID_CATALOG_NAME:
        name = parsed.database or parsed.username or "postgres"
        return (
            f'database "{name}" does not exist on {server}: create it with `createdb {name}`,'
            " or point DATABASE_URL elsewhere"
        )
    if state == INVALID_AUTHORIZATION:
        message = str(cause).strip().splitlines()[0] if str(cause).strip() else "access denied"
        advice = (
            f"create it with `createuser {parsed.username}`, or name another user in DATABASE_URL"
            if message.startswith("role ") and parsed.username
            else "fix the user in DATABASE_URL or the server's pg_hba.conf"
        )
        return f"{message} on {server}: {advice}"
    if state == AUTHENTICATION_FAILED:
        return (
            f'password authentication failed for user "{parsed.username}" on {server}:'
            " fix the password in DATABASE_URL"
        )
    return None


def is_outage(error: BaseException) -> bool:
    """Whether a database error means the database cannot serve now (retry later),
    as opposed to a statement that will never succeed."""
    if isinstance(
        error, OSError | OperationalError | DisconnectionError | PoolTimeout | ConnectionLost
    ):
        return True
    if isinstance(error, asyncpg.PostgresError):  # raised by asyncpg itself (`lookup`)
        return str(error.sqlstate).startswith(OUTAGE_SQLSTATES)
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    cause: BaseException | None = error.orig
    while cause is not None:
        state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(state, str):
            return state.startswith(OUTAGE_SQLSTATES)
        if isinstance(cause, ValueError):
            return False  # a value the driver refused to send (asyncpg's DataError)
        cause = cause.__cause__
    # The driver's interface errors are about the connection (closed, broken).
    return isinstance(error, InterfaceError)


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, and `BEGIN IMMEDIATE` for writers.

    The driver's own implicit BEGIN is switched off so that we can say which kind
    of transaction we want: readers take a deferred one, writers take the write
    lock up front, so two writers never deadlock upgrading a read lock.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: a commit is on disk before it returns, so a callback answered 200 survives
        # a power cut (NORMAL, WAL's usual setting, may lose the last commits). It cost
        # about 3% of a callback's time here.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("begin_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_writer(url: str) -> Engine | None:
    """A synchronous engine for the write transactions on an SQLite file, used in one
    thread of its own (Database.write).

    Through aiosqlite, every statement of a transaction is a hop to its thread and back,
    and each hop back waits for a turn of the event loop: a callback was some ninety
    hops, and under a flood of requests each one queued behind them. Run whole in one
    thread, a transaction is one hop. None for an in-memory database, which another
    engine would not see.
    """
    parsed = make_url(url)
    if parsed.database in (None, "", ":memory:"):
        return None
    engine = create_engine(
        parsed.set(drivername="sqlite+pysqlite"),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        hide_parameters=True,
    )
    _configure_sqlite(engine)
    return engine


def _postgres_writer(url: str, pool_size: int) -> Engine:
    """A synchronous engine (psycopg) for the write transactions on PostgreSQL, used in
    one thread of its own (Database.write), for the same reason as on SQLite: through
    asyncpg each statement of a transaction waits for a turn of the event loop, and
    under a flood of requests each turn queued behind them. Reads stay on asyncpg."""
    return create_engine(
        libpq_url(url),
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=0,
        hide_parameters=True,
    )


def libpq_url(url: str) -> URL:
    """DATABASE_URL for psycopg (libpq): asyncpg's `ssl=` is libpq's `sslmode=` (asyncpg
    takes the same modes); the other parameters asyncpg takes from a URL are libpq's."""
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    query = dict(parsed.query)
    ssl = query.pop("ssl", None)
    if ssl is not None and "sslmode" not in query:
        query["sslmode"] = ssl
    return parsed.set(query=query)


def _sqlite_reader(url: str) -> Engine | None:
    """A synchronous engine for reads of an SQLite file, used in the event loop's thread.

    aiosqlite runs every call in a thread of its own: a read is half a dozen hops
    between threads, and under load each hop waits for the GIL, so a page of rooms took
    hundreds of milliseconds. A read of a few indexed pages takes microseconds, and a
    WAL reader never waits for writers, so reading in place costs less than any hop.
    None for an in-memory database, which another engine would not see.
    """
    parsed = make_url(url)
    if parsed.database in (None, "", ":memory:"):
        return None
    engine = create_engine(
        parsed.set(drivername="sqlite+pysqlite"),
        connect_args={"timeout": SQLITE_READ_TIMEOUT_SECONDS, "check_same_thread": False},
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # each SELECT reads one snapshot
        dbapi_connection.execute("PRAGMA query_only=ON")

    return engine


class Database:
    """One engine per app: short write transactions and independent reads."""

    def __init__(
        self,
        url: str,
        pool_size: int = 10,
        max_overflow: int = 10,
        *,
        subscriber_queue_size: int = 256,
        max_subscribers: int = 10_000,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # Told of every outage (the app's metrics count them); storage knows no metrics.
        self.outage_listeners: list[Callable[[BaseException], None]] = []
        # Statement parameters carry raw callbacks (push URLs' txSecret included):
        # `hide_parameters` keeps them out of error messages and so out of logs.
        if self.is_sqlite:
            self.engine = create_async_engine(
                url, connect_args={"timeout": 30}, hide_parameters=True
            )
            _configure_sqlite(self.engine.sync_engine)
        else:
            self.engine = create_async_engine(
                url,
                pool_pre_ping=True,
                pool_size=pool_size,
                max_overflow=max_overflow,
                hide_parameters=True,
            )
        # Reads are one statement each: on PostgreSQL they run in autocommit and
        # without the pool's ping (`_read`), so that a read is one round trip, not a
        # BEGIN, the read and a ROLLBACK after a ping in a transaction of its own. The
        # transactional engine above keeps what needs a transaction (migrations, locks).
        self._reads = (
            self.engine
            if self.is_sqlite
            else create_async_engine(
                url,
                isolation_level="AUTOCOMMIT",
                pool_size=pool_size,
                max_overflow=max_overflow,
                hide_parameters=True,
            )
        )
        self._writer = self.engine.execution_options(begin_immediate=True)
        # Write transactions run whole in one thread of their own, on a synchronous
        # driver (except on an in-memory SQLite database: SQLAlchemy runs them on the
        # async driver there).
        sync_writer = _sqlite_writer(url) if self.is_sqlite else _postgres_writer(url, 2)
        self._sync_writer = (
            None if sync_writer is None else sync_writer.execution_options(begin_immediate=True)
        )
        self._writer_thread: ThreadPoolExecutor | None = None  # made at the first write
        # Told the SQL of each read that goes straight to asyncpg (`lookup`), which
        # SQLAlchemy's statement events do not see (the tests count statements).
        self.driver_statement_listeners: list[Callable[[str], None]] = []
        # Committed changes, for this process's subscribers (and, on PostgreSQL, from
        # every replica's transactions).
        self.changes = ChangeFeed(url, subscriber_queue_size, max_subscribers)
        self._version_reader: sqlite3.Connection | None = None
        self._reader = _sqlite_reader(url) if self.is_sqlite else None
        self._sqlite_writers = asyncio.Lock() if self.is_sqlite else None
        # Whether the last write failed for an outage (a server gone, a read-only file).
        self.writes_failing = False
        # Write transactions under way or waiting for their turn in this process, and
        # when the last one ended (subscriptions send more slowly while writes go on).
        self.writes_in_progress = 0
        self._last_write_ended = -math.inf
        # Reads waiting for the writes under way to end (`writes_ended`).
        self._waiting_for_writes: list[asyncio.Future[None]] = []

    @property
    def sync_engines(self) -> list[Engine]:
        """Every engine behind this database, for event listeners (statement counts)."""
        extra = [
            None if self._reads is self.engine else self._reads.sync_engine,
            self._reader,
            None if self._sync_writer is None else self._sync_writer.engine,
        ]
        return [self.engine.sync_engine, *(engine for engine in extra if engine is not None)]

    def unavailable(self, failure: BaseException) -> DatabaseUnavailable:
        """Tell the outage listeners, and give the exception to raise for it."""
        for listener in self.outage_listeners:
            listener(failure)
        return DatabaseUnavailable(UNAVAILABLE_MESSAGE)

    @contextmanager
    def _outages_as_unavailable(self) -> Iterator[None]:
        """Turn an outage inside the block into DatabaseUnavailable; other errors pass."""
        try:
            yield
        except (SQLAlchemyError, OSError, ConnectionLost, asyncpg.PostgresError) as failure:
            if is_outage(failure):
                raise self.unavailable(failure) from failure
            raise

    async def write(self, work: Callable[[UnitOfWork], T]) -> T:
        """Run `work` in one write transaction, committed if it returns; its result.

        `work` is synchronous code on a synchronous session (storage/unit_of_work.py)
        that says what it changed. The whole transaction runs in the writer's thread,
        one hop for all its statements (on an in-memory SQLite database, SQLAlchemy
        runs it on the async driver). One write at a time per process: concurrent
        callbacks share one (resolvers/ingestion.py).

        Here, and only here, a committed change raises the catalog version (cached
        answers computed before it go stale) and reaches this process's subscribers
        (on PostgreSQL every replica's, by NOTIFY, sent inside the transaction). A
        unit of work that changed nothing the catalog shows raises nothing.

        An outage raises DatabaseUnavailable; any other database error is raised as is.
        """
        async with self._counted_write(), self._writers_in_turn():
            try:
                with self._outages_as_unavailable():
                    if self._sync_writer is not None:
                        result = await self._write_in_thread(work)
                    else:
                        result = await self._write_on_async_driver(work)
            except DatabaseUnavailable:
                self.writes_failing = True
                raise
            self.writes_failing = False
            return result

    def _transaction(
        self, session: Session, work: Callable[[UnitOfWork], T]
    ) -> tuple[UnitOfWork, T]:
        """The body of every write transaction: the work, its announcements (NOTIFY, on
        PostgreSQL), then (on SQLite, where writers take turns anyway) the version raise,
        committed with the write in one sync."""
        unit = UnitOfWork(session)
        result = work(unit)
        session.flush()
        announce(session, unit.changes.announcements)
        if self.is_sqlite and unit.changes:
            raise_version(session, unit.changes.tags)
        return unit, result

    async def _write_in_thread(self, work: Callable[[UnitOfWork], T]) -> T:
        assert self._sync_writer is not None
        loop = asyncio.get_running_loop()
        writer = self._sync_writer

        def transaction() -> T:
            # One connection for the write and, on PostgreSQL, the version raise after it
            # (one checkout from the pool, and so one ping, per batch of callbacks).
            with writer.connect() as connection:
                with Session(connection, expire_on_commit=False) as session, session.begin():
                    unit, result = self._transaction(session, work)
                if unit.changes and not self.is_sqlite:
                    self._raise_version_after(connection, unit)
            if self.is_sqlite:
                # Committed: delivered to this process's subscribers even if the caller
                # stopped waiting meanwhile, and before it hears of the result.
                loop.call_soon_threadsafe(self._deliver, unit.changes.announcements)
            return result

        return await loop.run_in_executor(self._writers(), transaction)

    def _writers(self) -> ThreadPoolExecutor:
        """The writer's thread, made at its first use."""
        if self._writer_thread is None:
            self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="writer")
        return self._writer_thread

    async def _write_on_async_driver(self, work: Callable[[UnitOfWork], T]) -> T:
        async with AsyncSession(self._writer, expire_on_commit=False) as session, session.begin():
            unit, result = await session.run_sync(self._transaction, work)
        self._deliver(unit.changes.announcements)  # only an in-memory SQLite gets here
        return result

    @staticmethod
    def _raise_version_after(connection: Connection, unit: UnitOfWork) -> None:
        """On PostgreSQL, once the write has committed: only now may cached answers
        computed before it go stale; raised before the caller acknowledges anything, in
        a transaction of its own so that other replicas' writers do not queue on the
        version row while they work."""
        with connection.begin():
            raise_version(connection, unit.changes.tags)

    def _deliver(self, announcements: list[CatalogChange]) -> None:
        """One process's SQLite: committed changes are delivered here (PostgreSQL
        delivers every replica's through NOTIFY)."""
        for change in announcements:
            self.changes.deliver(change)

    @asynccontextmanager
    async def _counted_write(self) -> AsyncIterator[None]:
        self.writes_in_progress += 1
        try:
            yield
        finally:
            self.writes_in_progress -= 1
            self._last_write_ended = time.monotonic()
            if not self.writes_in_progress:
                waiting, self._waiting_for_writes = self._waiting_for_writes, []
                for waiter in waiting:
                    if not waiter.done():
                        waiter.set_result(None)

    async def writes_ended(self, max_wait: float) -> None:
        """Wait until no write transaction of this process is under way, or `max_wait`
        seconds.

        For reads that can wait a little (the response cache's anonymous queries): an
        answer computed while a write is under way goes stale as it commits, and the
        write's callers wait for the CPU the read would take.
        """
        if not self.writes_in_progress or max_wait <= 0:
            return
        ended = asyncio.get_running_loop().create_future()
        self._waiting_for_writes.append(ended)
        try:
            async with asyncio.timeout(max_wait):
                await ended
        except TimeoutError:
            with suppress(ValueError):  # let go of it now rather than at the writes' end
                self._waiting_for_writes.remove(ended)

    def wrote_within(self, seconds: float) -> bool:
        """Whether this process is writing, or was within the last `seconds`."""
        return bool(self.writes_in_progress) or (
            time.monotonic() - self._last_write_ended < seconds
        )

    async def check_writable(self) -> None:
        """Raise DatabaseUnavailable unless a write commits now (it raises the version)."""
        await self.write(UnitOfWork.everything_may_have_changed)

    @asynccontextmanager
    async def _writers_in_turn(self) -> AsyncIterator[None]:
        """On SQLite, this process's writers queue here for the one write lock.

        SQLite lets one writer in at a time and has the others poll for the lock
        with growing sleeps (busy_timeout), which under a burst of callbacks costs
        seconds. Queued in-process, they take the lock one after the other at once;
        writers in other processes (the CLI) still meet the database's own lock.
        PostgreSQL writers run concurrently, serialised per stream by row locks.
        """
        if self._sqlite_writers is None:
            yield
            return
        async with self._sqlite_writers:
            yield

    async def _read(self, run: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`run` on a pooled PostgreSQL connection of its own, in autocommit."""

        async def on_a_connection() -> T:
            async with self._reads.connect() as connection:
                return await run(connection)

        return await self._once_more_if_lost(on_a_connection)

    async def _once_more_if_lost(self, read: Callable[[], Awaitable[T]]) -> T:
        """`read()`, tried once more if its pooled connection had died.

        The pool lends connections without a ping first (a round trip per read). One
        that died meanwhile (the server restarted) fails its read, the pool then
        takes every connection it lent before as stale, and the read is tried once
        more on a new connection. An outage raises DatabaseUnavailable.
        """
        with self._outages_as_unavailable():
            try:
                return await read()
            except DBAPIError as failure:
                if not failure.connection_invalidated:
                    raise
            except ConnectionLost:
                # Lost under asyncpg itself (`lookup`): SQLAlchemy did not see it, so
                # the pool's connections are dropped here (a new pool, the same engine).
                await self._reads.dispose(close=False)
            return await read()

    async def lookup(self, lookup: "Lookup") -> list[Any]:
        """Run a prebuilt read (`Lookup`): rows as `rows` gives them.

        On PostgreSQL, straight through asyncpg on a pooled connection: the statement's
        SQL and the order of its parameters are worked out once per statement, and
        SQLAlchemy's execution and result rows, which cost a page's reads some three
        times asyncpg's own fetch, are skipped. A lookup's parameters are values asyncpg
        takes as they are (numbers, text, aware datetimes, lists for `keys_in`).
        """
        driven = (
            None if self.is_sqlite else _driver_statement(lookup.statement, self._reads.dialect)
        )
        if driven is None:
            return await self.rows(*lookup)
        sql, names, held = driven
        values = {**held, **lookup.parameters}
        arguments = [values[name] for name in names]
        for listener in self.driver_statement_listeners:
            listener(sql)
        return await self._once_more_if_lost(lambda: self._driver_fetch(sql, arguments))

    async def _driver_fetch(self, sql: str, arguments: Sequence[Any]) -> list[Any]:
        """`sql` through asyncpg on a connection of the reads' pool, lent and taken back
        without a SQLAlchemy Connection around it (its events and transaction
        bookkeeping cost a page's reads some 0.2 ms of CPU, an eighth of their time)."""
        pooled = await self._reads.raw_connection()
        try:
            driver = pooled.driver_connection
            assert driver is not None
            try:
                found = await driver.fetch(sql, *arguments)
            except (
                asyncpg.PostgresConnectionError,
                asyncpg.InterfaceError,
                # The server ended the session while the connection sat in the pool, and
                # asyncpg is still reading why: "another operation is in progress".
                asyncpg.InternalClientError,
                OSError,
            ) as lost:
                await greenlet_spawn(pooled.invalidate)
                raise ConnectionLost from lost
        except BaseException:
            # Back to the pool even if this read is being cancelled (a client that left):
            # in the pool's own terms, which may close the connection and so await.
            await asyncio.shield(greenlet_spawn(pooled.close))
            raise
        await greenlet_spawn(pooled.close)
        return records(found[0].keys() if found else (), found)

    async def scalars(self, statement: Executable) -> list[Any]:
        """Run one read query on a pooled connection of its own.

        GraphQL resolves sibling fields concurrently and an AsyncSession must not
        be shared between coroutines, so each read gets its own short session.
        """
        if self._reader is not None:
            with (
                self._outages_as_unavailable(),
                Session(self._reader, expire_on_commit=False) as sync_session,
            ):
                return list(sync_session.execute(statement).scalars().all())

        async def run(connection: AsyncConnection) -> list[Any]:
            async with AsyncSession(connection, expire_on_commit=False) as session:
                return list((await session.execute(statement)).scalars().all())

        return await self._read(run)

    async def rows(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """Run one read query; each row is a read-only record of the selected columns.

        A select of a table class gives records of its columns, read by attribute like
        the ORM objects `scalars` makes, at a fraction of their cost: what GraphQL
        pages use. `parameters` fill a prebuilt statement's bound parameters (`Lookup`).
        """
        if self._reader is not None:
            with self._outages_as_unavailable(), self._reader.connect() as sync_connection:
                result = sync_connection.execute(statement, parameters)
                return records(result.keys(), result)

        async def run(connection: AsyncConnection) -> list[Any]:
            result = await connection.execute(statement, parameters)
            return records(result.keys(), result)

        return await self._read(run)

    async def version(self) -> Version:
        """The catalog version now (see storage/catalog_version.py)."""
        if self.is_sqlite:
            return self._sqlite_version()
        return await self._read(read_version)

    async def changed_since(self, seen: Version | None) -> tuple[Version, frozenset[str] | None]:
        """The catalog version now, and the cache tags of what changed after `seen` up
        to it (storage/cache_tags.py); None for the tags if anything may have: `seen` is
        None, of another epoch, or too far behind."""
        version = await self.version()
        if seen is None or seen[0] != version[0] or version[1] < seen[1]:
            return version, None
        if version[1] == seen[1]:
            return version, frozenset()
        if version[1] - seen[1] > KEPT_CHANGES:
            return version, None
        bounds = {"after": seen[1], "upto": version[1]}
        if self.is_sqlite:
            rows = self._sqlite_read(READ_CHANGES.text, bounds)
        else:
            rows = await self.rows(READ_CHANGES, bounds)
        return version, changed_tags(rows, seen[1], version[1])

    def _sqlite_version(self) -> Version:
        rows = self._sqlite_read(READ_VERSION.text, {"row": VERSION_ROW})
        return version_of(rows[0] if rows else None)

    def _sqlite_read(self, statement: str, parameters: dict[str, Any]) -> list[Any]:
        """Read on a connection of its own, in this thread: a WAL reader never waits for
        writers, and one small read costs less than a hop to another thread."""
        try:
            if self._version_reader is None:
                path = make_url(self.url).database or ""
                self._version_reader = sqlite3.connect(
                    f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=0.5
                )
            return self._version_reader.execute(statement, parameters).fetchall()
        except sqlite3.Error as failure:
            raise self.unavailable(failure) from failure

    async def ping(self) -> None:
        """Raise if the database does not answer, to reads or to writes (and tell the
        outage listeners)."""
        await self.rows(text("SELECT 1"))
        writer = self._sync_writer
        if writer is not None:
            # A connection of the writer's, not a write: whether writes go through is
            # for the writes themselves to say (writes_failing).
            def connect() -> None:
                with writer.connect() as connection:
                    connection.execute(text("SELECT 1"))

            with self._outages_as_unavailable():
                await asyncio.get_running_loop().run_in_executor(self._writers(), connect)

    async def dispose(self) -> None:
        if self._version_reader is not None:
            self._version_reader.close()
            self._version_reader = None
        await self.changes.close()
        if self._reader is not None:
            self._reader.dispose()
        if self._writer_thread is not None:
            self._writer_thread.shutdown(wait=True)
            self._writer_thread = None
        if self._sync_writer is not None:
            self._sync_writer.engine.dispose()
        if self._reads is not self.engine:
            await self._reads.dispose()
        await self.engine.dispose()


@functools.cache
def union_of(branches: Callable[[int], list[Any]], count: int) -> Any:
    """The selects `branches(N)` gives for each N below `count`, in one statement, built
    once per (branches, count): its SQL and cache key are then computed once, not per
    call. Each branch names its parameters `name_N` and labels N as `position`, so that
    `numbered` fills them and each row says whose it is."""
    selects = [select for position in range(count) for select in branches(position)]
    return selects[0] if len(selects) == 1 else union_all(*selects)


def numbered(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of a `union_of` statement: each of row N's values as `name_N`."""
    return {f"{name}_{n}": value for n, row in enumerate(rows) for name, value in row.items()}


class ConnectionLost(Exception):
    """A read straight through asyncpg found its connection closed (`Database.lookup`)."""


@functools.lru_cache(maxsize=512)
def _driver_statement(
    statement: Select[*tuple[Any, ...]], dialect: Any
) -> tuple[str, tuple[str, ...], dict[str, Any]] | None:
    """A prebuilt statement as asyncpg runs it: its SQL, the names of its parameters in
    the order of their $n, and the values of those the statement holds itself; None if
    SQLAlchemy must write part of it at each execution (an IN of constants)."""
    compiled = statement.compile(dialect=dialect)
    if "__[POSTCOMPILE_" in compiled.string:
        return None
    held = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
    return compiled.string, tuple(compiled.positiontup or ()), held


class Lookup(NamedTuple):
    """A read built once (its SQL and cache key computed once) and the parameters of one
    execution of it: `Database.lookup(lookup)`."""

    statement: Select[*tuple[Any, ...]]
    parameters: dict[str, Any]

    def bound(self) -> Select[*tuple[Any, ...]]:
        """The statement with this execution's values in it (to render its SQL)."""
        return self.statement.params(self.parameters)


class keys_in(BinaryExpression[bool]):
    """`column` is one of the values of the parameter `name` (a list): a prebuilt
    lookup by many keys, run with {"keys": [...]}, or a filter by a few values (room
    kinds, formats) given the same way, never written into the statement.

    On PostgreSQL `column = ANY($1)`, the list bound as one array: the same SQL, and one
    prepared statement, whatever the number of keys (an IN list is written out anew at
    each execution, one placeholder per key). Elsewhere, SQLAlchemy's expanding IN.
    """

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any], name: str = "keys") -> None:
        keys = bindparam(name, type_=column.type, expanding=True)
        super().__init__(column, keys, in_op, type_=Boolean())


@compiles(keys_in)
def _keys_in(element: keys_in, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.visit_binary(element, **kw)


@compiles(keys_in, "postgresql")
def _keys_any(element: keys_in, compiler: SQLCompiler, **kw: Any) -> str:
    keys = bindparam(element.right.key, type_=postgresql.ARRAY(element.left.type))
    return compiler.process(element.left == any_(keys), **kw)


def records(columns: Iterable[str], rows: Iterable[Sequence[Any]]) -> list[Any]:
    """`rows` (SQLAlchemy's or asyncpg's) as named tuples of `columns`: read by
    attribute, by index or unpacked like SQLAlchemy's rows, whose attributes cost four
    times as much to read (a page reads a dozen of each of its hundred-odd rows)."""
    make = _record_type(tuple(columns))._make
    return [make(row) for row in rows]


@functools.lru_cache(maxsize=256)
def _record_type(columns: tuple[str, ...]) -> Any:
    return namedtuple("Record", columns, rename=True)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a SQLModel table class, for bulk statements."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def execute(session: Session, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
    """Run a Core statement on the session's connection, in its transaction.

    Past the ORM's execution layer, which costs more than the statement itself on
    SQLite: the write path runs some ten statements a callback this way. What the
    session holds of ORM changes is flushed first, as the ORM would (autoflush).
    """
    session.flush()
    return session.connection().execute(statement, parameters)


def insert_or_ignore(
    session: Session, table: Table, values: dict[str, Any], keys: Sequence[str]
) -> int | None:
    """INSERT a row unless one with the same unique `keys` exists; the new row's id, or
    None if it existed."""
    statement = _insert_or_ignore(session.get_bind().dialect.name, table, tuple(keys), "id")
    return cast(int | None, execute(session, statement, values).scalar_one_or_none())


def insert_all_or_ignore(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> list[bool]:
    """INSERT rows, in one statement, except those whose unique `keys` are stored already
    (or come twice among them: the first is kept); for each row, whether it was inserted."""
    if not rows:
        return []
    statement = _insert_or_ignore(session.get_bind().dialect.name, table, tuple(keys), tuple(keys))
    # The key values come back as their columns' types give them (aware UTC times).
    inserted = {tuple(row) for row in execute(session, statement, list(rows))}
    found = []
    for row in rows:
        key = tuple(row[name] for name in keys)
        found.append(key in inserted)
        inserted.discard(key)  # a later row with the same key was not inserted
    return found


@functools.cache
def _insert_or_ignore(
    dialect_name: str, table: Table, keys: tuple[str, ...], returning: str | tuple[str, ...]
) -> Any:
    """Built once per table (its SQL and cache key are then computed once, not per row);
    the values come as parameters."""
    dialect = sqlite if dialect_name == "sqlite" else postgresql
    insert = dialect.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    names = (returning,) if isinstance(returning, str) else returning
    return insert.returning(*(table.c[name] for name in names))
