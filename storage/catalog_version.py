"""The catalog version: a number every write transaction raises, for response caches.

A cached answer is keyed by the version read before the answer was computed, and
the version rises after every write commits (in a transaction of its own, so that
concurrent writers don't queue on one row for the length of theirs). A request that
starts after a write was acknowledged reads the new version, so it can't be given
an answer computed before that write, on this replica or any other sharing the
database. Reading it is one small statement.
"""

from sqlalchemy import BigInteger, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel

# One row. A table rather than a PostgreSQL sequence: it works the same on SQLite.
VERSION_ROW = 1


class CatalogVersion(SQLModel, table=True):
    __tablename__ = "catalog_version"

    id: int = Field(default=VERSION_ROW, primary_key=True)
    # 64 bits: at a thousand writes a second, 32 would run out within a month.
    version: int = Field(default=0, sa_type=BigInteger)


RAISE_VERSION = text(
    "INSERT INTO catalog_version (id, version) VALUES (:row, 1) "
    "ON CONFLICT (id) DO UPDATE SET version = catalog_version.version + 1"
).bindparams(row=VERSION_ROW)
READ_VERSION = text("SELECT coalesce(max(version), 0) FROM catalog_version")


async def raise_version(connection: AsyncConnection) -> None:
    """Raise the version, in the caller's (short) transaction."""
    await connection.execute(RAISE_VERSION)


async def read_version(connection: AsyncConnection) -> int:
    return int((await connection.execute(READ_VERSION)).scalar_one())
