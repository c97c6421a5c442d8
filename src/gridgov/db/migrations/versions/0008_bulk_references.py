"""bulk-written references without foreign keys

A foreign key is checked row by row as rows are written, and each check locks the row it points
at (`FOR KEY SHARE`), which writes to that row's page. At city scale the resolution steps write
millions of such references (2.8 M person–organization links, 5 M persons with their room, 5 M
person–room links, 3 M rooms, 23 M source records): on PostgreSQL the checks cost more than the
writes themselves. These references are now checked set-wise by `gridgov.registry.integrity` at
the end of each step that writes them (one anti-join per reference; the step fails and rolls
back on a dangling one). Nothing in the system deletes the rows they point at.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 22:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, referenced table)
DROPPED = (
    ("source_records", "batch_id", "ingest_batches"),
    ("rooms", "address_id", "addresses"),
    ("rooms", "building_id", "buildings"),
    ("persons", "room_id", "rooms"),
    ("person_rooms", "person_id", "persons"),
    ("person_rooms", "room_id", "rooms"),
    ("person_orgs", "person_id", "persons"),
    ("person_orgs", "org_id", "organizations"),
)


def _tables() -> list[str]:
    return list(dict.fromkeys(t for t, _, _ in DROPPED))


def upgrade() -> None:
    for table in _tables():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for t, column, target in DROPPED:
                if t == table:
                    batch_op.drop_constraint(f"fk_{t}_{column}_{target}", type_="foreignkey")


def downgrade() -> None:
    for table in _tables():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for t, column, target in DROPPED:
                if t == table:
                    batch_op.create_foreign_key(
                        f"fk_{t}_{column}_{target}", target, [column], ["id"]
                    )
