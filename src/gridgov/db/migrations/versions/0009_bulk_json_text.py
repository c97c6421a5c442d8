"""bulk-written JSON as json text on PostgreSQL (was jsonb): source records' values and flags,
the golden records' provenance

Source records are written by the million on import and read back whole by the resolution steps;
the golden persons, organizations and rooms are written by the million with their provenance and
read one at a time, whole. Nothing looks inside these documents in the database but for one `->>`
(which json has as well). jsonb parses each document on the way in and renders it again on the
way out: at S = 1, on the PostgreSQL side, 0.88 s against 0.36 s to send 500,000 person records'
values as text, and 2.7 s against 2.0 s to take in 200,000 persons. json keeps the text as
written. Nothing changes on SQLite, where JSON is text already.

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

COLUMNS = {
    "source_records": ("values", "flags"),
    "persons": ("provenance",),
    "organizations": ("provenance",),
    "rooms": ("provenance",),
}


def _retype(to: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        changes = ", ".join(f'ALTER COLUMN "{c}" TYPE {to} USING "{c}"::{to}' for c in columns)
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    _retype("json")


def downgrade() -> None:
    _retype("jsonb")
