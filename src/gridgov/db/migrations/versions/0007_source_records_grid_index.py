"""source records: no index on grid_code

Nothing looks source records up by grid (scoping is done on the golden records), and at city
scale the index was one of the costs of every imported row (18 million rows, inserted at
scattered places in the index).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 18:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("source_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_source_records_grid_code"))


def downgrade() -> None:
    with op.batch_alter_table("source_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_source_records_grid_code"), ["grid_code"], unique=False
        )
