"""Alembic environment: runs on a connection the service hands over, or on DATABASE_URL
(for `alembic revision --autogenerate` from a shell)."""

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

import storage
from storage.database import DEFAULT_DATABASE_URL, Database
from storage.migrate import migration_connection

target_metadata = storage.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_engine() -> None:
    database = Database(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    try:
        async with migration_connection(database) as connection:
            await connection.run_sync(run_on)
    finally:
        await database.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    run_on(given)
else:
    asyncio.run(run_with_own_engine())
