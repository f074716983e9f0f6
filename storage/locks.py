"""Cluster-wide locks for work that one replica at a time must do.

Several `serve` processes share one PostgreSQL; migrations must run once when
they start together, and background jobs (reconciliation, the live-silence
sweep) must run on one replica at a time. PostgreSQL advisory locks do both; on
SQLite there is one process per database file in any deployment we support, so
every lock is granted at once.
"""

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.database import Database


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a lock's name."""
    digest = hashlib.sha256(f"replay-catalog:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def hold_for_transaction(connection: AsyncConnection, name: str) -> None:
    """Wait for the lock `name`; it is released when the connection's transaction ends."""
    if connection.dialect.name == "postgresql":
        await connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)}
        )


@asynccontextmanager
async def unless_held_elsewhere(database: Database, name: str) -> AsyncIterator[bool]:
    """Try the lock `name` without waiting: True inside the block if this process got it.

    The lock belongs to a session of its own and is released when the block ends
    (or when the process dies and PostgreSQL closes the session).
    """
    if database.is_sqlite:
        yield True
        return
    key = lock_key(name)
    try:
        connection = await database.engine.connect()
    except (SQLAlchemyError, OSError) as failure:
        raise database.unavailable(failure) from failure
    try:
        try:
            statement = text("SELECT pg_try_advisory_lock(:key)")
            got = bool((await connection.execute(statement, {"key": key})).scalar_one())
            await connection.commit()
        except (SQLAlchemyError, OSError) as failure:
            raise database.unavailable(failure) from failure
        try:
            yield got
        finally:
            if got:
                await _unlock(connection, key)
    finally:
        await connection.close()


async def _unlock(connection: AsyncConnection, key: int) -> None:
    """Release a session lock; a connection that can't is dropped, never pooled with it."""
    try:
        await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        await connection.commit()
    except (SQLAlchemyError, OSError):
        await connection.invalidate()
