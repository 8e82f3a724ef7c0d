"""Events remember the participant's step and condition at the time; participants record when they finished;
events are indexed by study (the dashboard and exports filter by it).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("step_key", sa.String(120), nullable=True))
        batch.add_column(sa.Column("condition", sa.String(40), nullable=True))
    op.create_index("ix_events_study", "events", ["study_code"])
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("finished_at", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.drop_column("finished_at")
    op.drop_index("ix_events_study", "events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("condition")
        batch.drop_column("step_key")
