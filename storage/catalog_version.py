"""The catalog version: a number every change to the catalog raises, for response caches.

A cached answer is keyed by the version read before the answer was computed, and
the version rises with every unit of work that changed what the catalog shows
(storage/unit_of_work.py): on PostgreSQL after it commits, in a transaction of its
own, so that concurrent writers don't queue on one row for the length of theirs; on
SQLite, where writers take turns anyway, inside it (one sync to disk). A request
that starts after a write was acknowledged reads the new version, so it can't be
given an answer computed before that write, on this replica or any other sharing
the database. Reading it is one small statement.
"""

import secrets
from typing import Any

from sqlalchemy import BigInteger, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

# One row. A table rather than a PostgreSQL sequence: it works the same on SQLite.
VERSION_ROW = 1


class CatalogVersion(SQLModel, table=True):
    __tablename__ = "catalog_version"

    id: int = Field(default=VERSION_ROW, primary_key=True)
    # 64 bits: at a thousand writes a second, 32 would run out within a month.
    version: int = Field(default=0, sa_type=BigInteger)
    # Chosen afresh whenever the row is made (a new database, emptied tables): the
    # version starts again from 1 then, and must not meet answers cached before.
    epoch: str = Field(default="", max_length=32)


# (epoch, version): what cached answers are keyed by.
Version = tuple[str, int]

RAISE_VERSION = text(
    "INSERT INTO catalog_version (id, version, epoch) VALUES (:row, 1, :epoch) "
    "ON CONFLICT (id) DO UPDATE SET version = catalog_version.version + 1"
).bindparams(row=VERSION_ROW)
READ_VERSION = text("SELECT epoch, version FROM catalog_version WHERE id = :row").bindparams(
    row=VERSION_ROW
)


def new_epoch() -> str:
    return secrets.token_hex(8)


def raise_version(connection: Connection | Session) -> None:
    """Raise the version, in the caller's (short) transaction."""
    connection.execute(RAISE_VERSION, {"epoch": new_epoch()})


def version_of(row: Any) -> Version:
    return ("", 0) if row is None else (str(row[0]), int(row[1]))


async def read_version(connection: AsyncConnection) -> Version:
    return version_of((await connection.execute(READ_VERSION)).first())
