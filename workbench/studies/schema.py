"""The study database's tables as they are after the newest migration (SQLAlchemy Core). The migrations in
`migrations/versions/` create and change them; this module is what the code reads and writes through.

Times are Unix seconds (float); JSON payloads are text, so the same schema works on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()

studies = Table(
    "studies", metadata,
    Column("code", String(40), primary_key=True),  # the join code
    Column("title", Text, nullable=False),
    Column("sha256", String(64), nullable=False),  # of the study file's text
    Column("definition", Text, nullable=False),  # the study file's text, so results stay readable if it changes
    Column("seed", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

participants = Table(
    "participants", metadata,
    Column("id", String(32), primary_key=True),  # random 128-bit hex: the participant's only credential
    Column("study_code", String(40), ForeignKey("studies.code"), nullable=False),
    Column("number", Integer, nullable=False),  # join order within the study (0-based): drives assignment
    Column("conditions", Text, nullable=False),  # JSON list of condition ids, in order
    Column("current_step", Integer, nullable=False, default=0),
    Column("consented_at", Float, nullable=False),
    Column("step_started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),  # added by migration 0002
    UniqueConstraint("study_code", "number", name="uq_participant_number"),
)

sessions = Table(
    "sessions", metadata,
    Column("session_id", String(64), primary_key=True),  # Gradio session hash / Streamlit session id
    Column("participant_id", String(32), ForeignKey("participants.id"), nullable=False),
    Column("frontend", String(16), nullable=False),
    Column("joined_at", Float, nullable=False),
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("session_id", String(64), nullable=False),
    Column("participant_id", String(32), nullable=True),
    Column("study_code", String(40), nullable=True),
    Column("action", String(80), nullable=False),
    Column("tab", String(40), nullable=False),
    Column("frontend", String(16), nullable=False),
    Column("inputs", Text, nullable=False),
    Column("outputs", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("error_kind", String(16), nullable=True),
    Column("seconds", Float, nullable=False),
    Column("provenance", Text, nullable=False),
    Column("step_key", String(120), nullable=True),  # added by migration 0002: the participant's step then
    Column("condition", String(40), nullable=True),  # added by migration 0002
    Index("ix_events_participant", "participant_id"),
    Index("ix_events_study", "study_code"),  # added by migration 0002
)

responses = Table(
    "responses", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("participant_id", String(32), ForeignKey("participants.id"), nullable=False),
    Column("study_code", String(40), nullable=False),
    Column("step_key", String(120), nullable=False),
    Column("step_id", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("condition", String(40), nullable=False),
    Column("payload", Text, nullable=False),  # JSON: the answer, the choice (with the blinded mapping), the answers
    Column("started_at", Float, nullable=False),
    Column("submitted_at", Float, nullable=False),
    UniqueConstraint("participant_id", "step_key", name="uq_response_step"),  # a step is answered once
)
