"""The study database: SQLAlchemy 2 over SQLite by default, any SQLAlchemy URL through DATABASE_URL.

Where it lives (first that applies): `DATABASE_URL` (e.g. postgresql+psycopg://...); the file named by
`WORKBENCH_STUDIES_DB`; `/data/prompt-workbench/studies.sqlite` on Hugging Face Spaces with persistent
storage (`/data` exists); else `studies.sqlite` in the workbench cache (`WORKBENCH_CACHE`, default
~/.cache/prompt-workbench).

SQLite runs in WAL mode with synchronous=FULL. WAL lets the dashboard read while participants write. FULL
fsyncs the WAL at every commit, so a committed event survives not only a killed server process (NORMAL
already does) but a power cut or a Space's container being stopped mid-write (NORMAL may lose the last
commits there). Events arrive at human speed (one every few seconds per participant); on the development
machine a committed event costs 9.6 ms with FULL vs 1.4 ms with NORMAL (bench/bench_studies_sync.py), i.e.
about 100 events/s from one writer: far above what 50 people clicking produce, a price worth paying for study
data. `WORKBENCH_SQLITE_SYNC=NORMAL` trades that guarantee for speed (e.g. WORKBENCH_EVENT_LOG=all on a busy
public Space).
Every write transaction starts with BEGIN IMMEDIATE, so concurrent writers queue on the busy timeout
instead of failing with "database is locked" when a read transaction tries to become a write.

The schema is created and upgraded by the Alembic migrations in `migrations/` on first use.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_S = 30  # how long a writer waits for another writer's commit before giving up


def default_url() -> str:
    """DATABASE_URL, else SQLite at WORKBENCH_STUDIES_DB, else `studies.sqlite` in the workbench's data folder
    (`/data/prompt-workbench` on a Space with persistent storage: workbench.storage)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from workbench.storage import study_db_path

    return sqlite_url(study_db_path())


def sqlite_url(path: str | Path) -> str:
    path = Path(path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def make_engine(url: str):
    from sqlalchemy import create_engine, event

    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, future=True)
    sync = os.environ.get("WORKBENCH_SQLITE_SYNC", "FULL").upper()
    if sync not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"WORKBENCH_SQLITE_SYNC must be FULL, NORMAL or EXTRA; got {sync!r}")
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
                           pool_size=8, max_overflow=32, pool_timeout=60)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={sync}")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def migrate(engine, revision: str = "head") -> None:
    """Create or upgrade the schema to `revision` with the packaged Alembic migrations."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class StudyStore:
    """One database for the whole app (participants, responses, events). Thread-safe: each call opens its
    own short transaction on a pooled connection and commits before returning."""

    def __init__(self, url: str | None = None, migrate_to: str = "head"):
        self.url = url or default_url()
        self.engine = make_engine(self.url)
        migrate(self.engine, migrate_to)

    # ----------------------------------------------------------------------- studies and participants

    def register_study(self, study) -> None:
        """Store the study's definition on first join; refuse a changed file once participants have joined."""
        from sqlalchemy.exc import IntegrityError

        for attempt in range(3):  # two first joins at once: one insert wins, the other reads its row on retry
            try:
                return self._register_study(study)
            except IntegrityError:
                if attempt == 2:
                    raise

    def _register_study(self, study) -> None:
        from sqlalchemy import func, select

        from workbench.studies import schema as s

        with self.engine.begin() as conn:
            row = conn.execute(select(s.studies).where(s.studies.c.code == study.code)).mappings().first()
            if row is None:
                conn.execute(s.studies.insert().values(code=study.code, title=study.title, sha256=study.sha256,
                                                       definition=study.text, seed=study.seed,
                                                       created_at=time.time()))
                return
            if row["sha256"] == study.sha256:
                return
            joined = conn.execute(select(func.count()).select_from(s.participants)
                                  .where(s.participants.c.study_code == study.code)).scalar_one()
            if joined:
                raise ValueError(f"The study file for '{study.code}' changed after {joined} participant(s) joined. "
                                 f"Give the changed study a new code so results from the two versions stay apart.")
            conn.execute(s.studies.update().where(s.studies.c.code == study.code)
                         .values(title=study.title, sha256=study.sha256, definition=study.text, seed=study.seed))

    def study_text(self, code: str) -> str | None:
        from sqlalchemy import select

        from workbench.studies import schema as s

        with self.engine.connect() as conn:
            return conn.execute(select(s.studies.c.definition).where(s.studies.c.code == code)).scalar_one_or_none()

    def study_codes(self) -> list[str]:
        from sqlalchemy import select

        from workbench.studies import schema as s

        with self.engine.connect() as conn:
            return list(conn.execute(select(s.studies.c.code).order_by(s.studies.c.code)).scalars())

    def add_participant(self, study, assign) -> dict[str, Any]:
        """A new participant numbered in join order; `assign(number)` gives their condition ids. The count
        and the insert share one BEGIN IMMEDIATE transaction, so concurrent joins get distinct numbers."""
        from sqlalchemy import func, select

        from workbench.studies import schema as s

        from sqlalchemy.exc import IntegrityError

        now = time.time()
        for attempt in range(5):  # SQLite serialises joins (BEGIN IMMEDIATE); other databases may race: retry
            try:
                with self.engine.begin() as conn:
                    # PostgreSQL: lock the study's row so concurrent joins count one after another (SQLite's
                    # BEGIN IMMEDIATE already serialises; SQLAlchemy leaves FOR UPDATE out there)
                    conn.execute(select(s.studies.c.code).where(s.studies.c.code == study.code).with_for_update())
                    number = conn.execute(select(func.count()).select_from(s.participants)
                                          .where(s.participants.c.study_code == study.code)).scalar_one()
                    row = dict(id=uuid.uuid4().hex, study_code=study.code, number=number,
                               conditions=_dumps(assign(number)), current_step=0, consented_at=now,
                               step_started_at=now)
                    conn.execute(s.participants.insert().values(**row))
                break
            except IntegrityError:
                if attempt == 4:
                    raise
        row["conditions"] = json.loads(row["conditions"])
        return row

    def participant(self, participant_id: str) -> dict[str, Any] | None:
        from sqlalchemy import select

        from workbench.studies import schema as s

        with self.engine.connect() as conn:
            row = conn.execute(select(s.participants).where(s.participants.c.id == participant_id)).mappings().first()
        if row is None:
            return None
        out = dict(row)
        out["conditions"] = json.loads(out["conditions"])
        return out

    def add_session(self, session_id: str, participant_id: str, frontend: str) -> None:
        from sqlalchemy import select

        from workbench.studies import schema as s

        with self.engine.begin() as conn:
            exists = conn.execute(select(s.sessions.c.session_id).where(s.sessions.c.session_id == session_id)).first()
            if exists is None:
                conn.execute(s.sessions.insert().values(session_id=session_id, participant_id=participant_id,
                                                        frontend=frontend, joined_at=time.time()))

    def add_response(self, participant: dict[str, Any], step_index: int, step_key: str, step_id: str, kind: str,
                     condition: str, payload: dict[str, Any], last: bool) -> float:
        """Write one answer and advance the participant, in one transaction. A step already answered raises
        ValueError (a second tab, a double click, a resubmitted form). Returns the seconds spent on the step."""
        from sqlalchemy import select

        from workbench.studies import schema as s

        now = time.time()
        with self.engine.begin() as conn:
            current = conn.execute(select(s.participants.c.current_step, s.participants.c.step_started_at)
                                   .where(s.participants.c.id == participant["id"]).with_for_update()).first()
            done = conn.execute(select(s.responses.c.id).where(s.responses.c.participant_id == participant["id"],
                                                               s.responses.c.step_key == step_key)).first()
            if done is not None or current is None or current[0] != step_index:
                raise ValueError(f"You have already submitted '{step_id}'; it cannot be changed. "
                                 f"Continue with the step shown now.")
            started = current[1]
            conn.execute(s.responses.insert().values(participant_id=participant["id"], study_code=participant["study_code"],
                                                     step_key=step_key, step_id=step_id, kind=kind, condition=condition,
                                                     payload=_dumps(payload), started_at=started, submitted_at=now))
            conn.execute(s.participants.update().where(s.participants.c.id == participant["id"])
                         .values(current_step=step_index + 1, step_started_at=now, finished_at=now if last else None))
        return now - started

    # ----------------------------------------------------------------------- events

    def add_event(self, event: dict[str, Any], participant_id: str | None = None, study_code: str | None = None,
                  step_key: str | None = None, condition: str | None = None) -> int:
        """One event, one record, committed before returning (its id)."""
        from workbench.studies import schema as s

        row = dict(created_at=event.get("started") or time.time(), session_id=str(event.get("session_id", ""))[:64],
                   participant_id=participant_id, study_code=study_code, action=str(event.get("action", ""))[:80],
                   tab=str(event.get("tab", ""))[:40], frontend=str(event.get("frontend", ""))[:16],
                   inputs=_dumps(event.get("inputs", {})), outputs=_dumps(event.get("outputs")),
                   error=event.get("error"), error_kind=event.get("error_kind"),
                   seconds=float(event.get("seconds") or 0.0), provenance=_dumps(event.get("provenance", [])),
                   step_key=step_key, condition=condition)
        with self.engine.begin() as conn:
            return conn.execute(s.events.insert().values(**row)).inserted_primary_key[0]

    # ----------------------------------------------------------------------- reading (researcher)

    def table(self, name: str, study_code: str | None = None) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from workbench.studies import schema as s

        table = getattr(s, name)
        query = select(table)
        column = "code" if name == "studies" else "study_code"
        if study_code is not None and column in table.c:
            query = query.where(table.c[column] == study_code)
        if "id" in table.c and name in ("events", "responses"):
            query = query.order_by(table.c.id)
        elif name == "participants":
            query = query.order_by(table.c.number)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def count_events(self, study_code: str | None = None) -> int:
        from sqlalchemy import func, select

        from workbench.studies import schema as s

        query = select(func.count()).select_from(s.events)
        if study_code is not None:
            query = query.where(s.events.c.study_code == study_code)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def integrity_check(self) -> str:
        with self.engine.connect() as conn:
            if self.engine.dialect.name != "sqlite":
                return "ok"
            return conn.exec_driver_sql("PRAGMA integrity_check").scalar_one()

    def close(self) -> None:
        self.engine.dispose()


_stores: dict[str, StudyStore] = {}
_stores_lock = threading.Lock()


def open_store(url: str | None = None) -> StudyStore:
    """The app's store for `url` (default: `default_url()`), opened and migrated once per process."""
    url = url or default_url()
    with _stores_lock:
        if url not in _stores:
            _stores[url] = StudyStore(url)
        return _stores[url]
