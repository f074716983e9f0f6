"""Apply Alembic migrations from inside the service (`migrate`, `serve`, tests)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.database import Database
from storage.locks import hold_for_transaction

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@asynccontextmanager
async def migration_connection(database: Database) -> AsyncIterator[AsyncConnection]:
    """A connection in one transaction, fit for schema changes.

    SQLite changes a table by copying it (Alembic's batch mode), which foreign keys
    pointing at the table would refuse; they are switched off meanwhile. The PRAGMA
    only works outside a transaction, so it goes to the driver before ours begins.
    """
    async with database.engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        if database.is_sqlite:
            await driver.execute("PRAGMA foreign_keys=OFF")
        try:
            async with connection.begin():
                yield connection
        finally:
            if database.is_sqlite:
                await driver.execute("PRAGMA foreign_keys=ON")


async def migrate_to(database: Database, revision: str = "head", downgrade: bool = False) -> None:
    """Upgrade (or downgrade) the schema to `revision`, in one transaction."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        if downgrade:
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    async with migration_connection(database) as connection:
        # Replicas that start together migrate one after the other: the later ones
        # find the schema at head and change nothing.
        await hold_for_transaction(connection, "migrations")
        await connection.run_sync(run)


async def upgrade_to_head(database: Database) -> None:
    """Bring the schema up to date."""
    await migrate_to(database, "head")
