"""Initial schema: studies, participants, sessions, events, responses.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "participants",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("study_code", sa.String(40), sa.ForeignKey("studies.code"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("conditions", sa.Text, nullable=False),
        sa.Column("current_step", sa.Integer, nullable=False),
        sa.Column("consented_at", sa.Float, nullable=False),
        sa.Column("step_started_at", sa.Float, nullable=False),
        sa.UniqueConstraint("study_code", "number", name="uq_participant_number"),
    )
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("participant_id", sa.String(32), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("frontend", sa.String(16), nullable=False),
        sa.Column("joined_at", sa.Float, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("participant_id", sa.String(32), nullable=True),
        sa.Column("study_code", sa.String(40), nullable=True),
        sa.Column("action", sa.String(80), nullable=False),
        sa.Column("tab", sa.String(40), nullable=False),
        sa.Column("frontend", sa.String(16), nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("outputs", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("error_kind", sa.String(16), nullable=True),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("provenance", sa.Text, nullable=False),
    )
    op.create_index("ix_events_participant", "events", ["participant_id"])
    op.create_table(
        "responses",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("participant_id", sa.String(32), sa.ForeignKey("participants.id"), nullable=False),
        sa.Column("study_code", sa.String(40), nullable=False),
        sa.Column("step_key", sa.String(120), nullable=False),
        sa.Column("step_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("condition", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("submitted_at", sa.Float, nullable=False),
        sa.UniqueConstraint("participant_id", "step_key", name="uq_response_step"),
    )


def downgrade() -> None:
    for table in ("responses", "events", "sessions", "participants", "studies"):
        op.drop_table(table)
