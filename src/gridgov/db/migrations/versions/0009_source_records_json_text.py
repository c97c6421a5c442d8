"""source records: values and flags as json text on PostgreSQL (was jsonb)

Source records are written by the million on import and read back whole by the resolution steps;
nothing looks inside them in the database but for one `->>` (which json has as well). jsonb
parses each document on the way in and renders it again on the way out: at S = 1, on the
PostgreSQL side, 0.88 s against 0.36 s to send 500,000 person records' values as text, and about
a third more to take them in. json keeps the text as written. Nothing changes on SQLite, where
JSON is text already.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 01:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("values", "flags")


def _retype(to: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    changes = ", ".join(f'ALTER COLUMN "{c}" TYPE {to} USING "{c}"::{to}' for c in COLUMNS)
    op.execute(f"ALTER TABLE source_records {changes}")


def upgrade() -> None:
    _retype("json")


def downgrade() -> None:
    _retype("jsonb")
