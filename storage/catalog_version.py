"""The catalog version: a number every change to the catalog raises, for response caches.

A cached answer is keyed by the version read before the answer was computed, and
the version rises with every unit of work that changed what the catalog shows
(storage/unit_of_work.py): on PostgreSQL after it commits, in a transaction of its
own, so that concurrent writers don't queue on one row for the length of theirs; on
SQLite, where writers take turns anyway, inside it (one sync to disk). A request
that starts after a write was acknowledged reads the new version, so it can't be
given an answer computed before that write, on this replica or any other sharing
the database. Reading it is one small statement.

Each raise also records what the write changed (`catalog_change`: the version and the
cache tags of what it touched, storage/unit_of_work.py), in the same transaction, so
that a cache that saw version N can read what changed up to version M and drop only
the answers that showed it. The row lock on the version makes these transactions
commit in version order: once version M is read, every change up to M is readable.
Only the last KEPT_CHANGES are kept; a cache further behind forgets everything.
"""

import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import BigInteger, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from storage.cache_tags import EVERYTHING

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


class CatalogChangeEntry(SQLModel, table=True):
    """What the write that raised the version to `version` changed, as cache tags."""

    __tablename__ = "catalog_change"

    version: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    # Space-separated tags (storage/unit_of_work.py); EVERYTHING when it is not itemised.
    tags: str


# (epoch, version): what cached answers are keyed by.
Version = tuple[str, int]
# Changes kept for caches that are behind; one further behind drops every answer.
KEPT_CHANGES = 10_000
# Tags recorded for one write at most; a write that touched more says EVERYTHING.
MAX_TAGS = 2_000

RAISE_VERSION = text(
    "INSERT INTO catalog_version (id, version, epoch) VALUES (:row, 1, :epoch) "
    "ON CONFLICT (id) DO UPDATE SET version = catalog_version.version + 1 RETURNING version"
).bindparams(row=VERSION_ROW)
RECORD_CHANGE = text(
    "INSERT INTO catalog_change (version, tags) VALUES (:version, :tags) "
    "ON CONFLICT (version) DO UPDATE SET tags = excluded.tags"
)
FORGET_CHANGES = text("DELETE FROM catalog_change WHERE version <= :oldest")
READ_CHANGES = text(
    "SELECT version, tags FROM catalog_change WHERE version > :after AND version <= :upto"
)
READ_VERSION = text("SELECT epoch, version FROM catalog_version WHERE id = :row").bindparams(
    row=VERSION_ROW
)


def new_epoch() -> str:
    return secrets.token_hex(8)


# The three above in one round trip, on PostgreSQL (SQLite has no INSERT in WITH): its
# writer raises the version after each batch, in a transaction of its own.
RAISE_RECORD_FORGET = text(
    "WITH raised AS (INSERT INTO catalog_version (id, version, epoch) VALUES (:row, 1, :epoch)"
    " ON CONFLICT (id) DO UPDATE SET version = catalog_version.version + 1 RETURNING version),"
    " recorded AS (INSERT INTO catalog_change (version, tags) SELECT version, :tags FROM raised"
    " ON CONFLICT (version) DO UPDATE SET tags = excluded.tags)"
    " DELETE FROM catalog_change WHERE version <= (SELECT version FROM raised) - :kept"
).bindparams(row=VERSION_ROW, kept=KEPT_CHANGES)


def raise_version(connection: Connection | Session, tags: Iterable[str]) -> None:
    """Raise the version and record what changed (`tags`), in the caller's (short)
    transaction."""
    listed = sorted(set(tags))
    # Not itemised (no tags: a writer that said only that something changed) or too
    # many to be worth itemising: anything may have changed.
    itemised = listed and EVERYTHING not in listed and len(listed) <= MAX_TAGS
    text_of_tags = " ".join(listed) if itemised else EVERYTHING
    bind = connection.get_bind() if isinstance(connection, Session) else connection
    if bind.dialect.name == "postgresql":
        connection.execute(RAISE_RECORD_FORGET, {"epoch": new_epoch(), "tags": text_of_tags})
        return
    version = int(connection.execute(RAISE_VERSION, {"epoch": new_epoch()}).scalar_one())
    connection.execute(RECORD_CHANGE, {"version": version, "tags": text_of_tags})
    connection.execute(FORGET_CHANGES, {"oldest": version - KEPT_CHANGES})


def changed_tags(rows: Iterable[Any], after: int, upto: int) -> frozenset[str] | None:
    """The tags changed by the writes after version `after` up to `upto`, from their
    catalog_change rows; None if any of them is not there (forgotten, or written by a
    release that did not record changes): then anything may have changed."""
    found = {int(version): str(tags) for version, tags in rows}
    if len(found) != upto - after:
        return None
    tags = {tag for text_of_tags in found.values() for tag in text_of_tags.split()}
    return None if EVERYTHING in tags else frozenset(tags)


def version_of(row: Any) -> Version:
    return ("", 0) if row is None else (str(row[0]), int(row[1]))


async def read_version(connection: AsyncConnection) -> Version:
    return version_of((await connection.execute(READ_VERSION)).first())
