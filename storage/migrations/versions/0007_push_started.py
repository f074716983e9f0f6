"""Pushes say whether they started or were cut off (`started`), instead of keeping
Tencent's event numbers (1 and 0) in the catalog's tables

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 23:30:00
"""

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import SAWarning

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0001 left the unique key unnamed; on SQLite, batch mode names it by this convention so
# that it can be dropped (PostgreSQL drops it with its column).
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
UNNAMED_KEY = "uq_push_event_stream_pk"
KEY = "uq_push_event_fact"


@contextmanager
def _quiet_reflection() -> Iterator[None]:
    """Batch mode on SQLite reflects the tables push_event refers to; broadcast's
    expression index cannot be reflected there, which SQLAlchemy warns of (harmlessly:
    batch mode does not rebuild broadcast)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        yield


def upgrade() -> None:
    with _quiet_reflection():
        _upgrade()


def downgrade() -> None:
    with _quiet_reflection():
        _downgrade()


def _upgrade() -> None:
    with op.batch_alter_table("push_event") as batch:
        batch.add_column(sa.Column("started", sa.Boolean(), nullable=True))
    op.execute("UPDATE push_event SET started = (event_type = 1)")
    with op.batch_alter_table("push_event", naming_convention=NAMING) as batch:
        batch.alter_column("started", existing_type=sa.Boolean(), nullable=False)
        if op.get_context().dialect.name == "sqlite":
            batch.drop_constraint(UNNAMED_KEY, type_="unique")
        batch.drop_column("event_type")
        batch.create_unique_constraint(KEY, ["stream_pk", "started", "event_time", "sequence"])


def _downgrade() -> None:
    with op.batch_alter_table("push_event") as batch:
        batch.add_column(sa.Column("event_type", sa.Integer(), nullable=True))
    op.execute("UPDATE push_event SET event_type = CASE WHEN started THEN 1 ELSE 0 END")
    with op.batch_alter_table("push_event") as batch:
        batch.alter_column("event_type", existing_type=sa.Integer(), nullable=False)
        batch.drop_constraint(KEY, type_="unique")
        batch.drop_column("started")
        batch.create_unique_constraint(
            "push_event_stream_pk_event_type_event_time_sequence_key",
            ["stream_pk", "event_type", "event_time", "sequence"],
        )
