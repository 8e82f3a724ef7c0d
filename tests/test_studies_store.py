"""The study database: Alembic migrations (a database made by the first migration upgrades with its events
intact), SQLite settings, and a server killed with SIGKILL in the middle of writes losing no committed event."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from tests.app_process import ROOT, free_port, wait_for_http
from workbench.studies.store import StudyStore, current_revision, sqlite_url


def test_a_database_made_by_the_first_migration_upgrades_with_its_events_intact(tmp_path):
    url = sqlite_url(tmp_path / "old.sqlite")
    old = StudyStore(url, migrate_to="0001")
    assert current_revision(old.engine) == "0001"
    with sqlite3.connect(tmp_path / "old.sqlite") as db:  # rows as the first schema's code wrote them
        db.execute("INSERT INTO studies VALUES ('OLD-1', 'old', 'abc', 'code: OLD-1', 1, 1.0)")
        db.execute("INSERT INTO participants VALUES ('p1', 'OLD-1', 0, '[\"a\"]', 1, 2.0, 3.0)")
        for i in range(25):
            db.execute("INSERT INTO events (created_at, session_id, participant_id, study_code, action, tab, frontend,"
                       " inputs, outputs, error, error_kind, seconds, provenance) VALUES (?, 's1', 'p1', 'OLD-1', ?,"
                       " 't2i', 'gradio', ?, 'null', NULL, NULL, 0.5, '[]')", (100.0 + i, f"act{i}",
                                                                                 json.dumps({"i": i})))
        columns = [row[1] for row in db.execute("PRAGMA table_info(events)")]
        before = [dict(zip(columns, row)) for row in db.execute("SELECT * FROM events ORDER BY id")]
    assert "step_key" not in columns and len(before) == 25
    old.close()

    new = StudyStore(url)  # what the app does on start: upgrade to head
    assert current_revision(new.engine) == "0002"
    after = new.table("events")
    assert len(after) == 25
    for b, a in zip(before, after):
        assert {k: a[k] for k in b} == b  # every old column of every event unchanged
        assert a["step_key"] is None and a["condition"] is None
    assert new.participant("p1")["finished_at"] is None  # the added participant column
    event_id = new.add_event({"action": "new", "tab": "studies", "session_id": "s2", "frontend": "python",
                              "inputs": {}}, step_key="write@a", condition="a")
    assert new.table("events")[-1]["id"] == event_id and new.table("events")[-1]["condition"] == "a"
    with new.engine.connect() as conn:
        indexes = {row[1] for row in conn.exec_driver_sql("PRAGMA index_list(events)")}
    assert {"ix_events_participant", "ix_events_study"} <= indexes
    assert new.integrity_check() == "ok"


def test_sqlite_runs_in_wal_mode_with_full_sync_and_foreign_keys(tmp_path):
    store = StudyStore(sqlite_url(tmp_path / "s.sqlite"))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    with pytest.raises(Exception, match="FOREIGN KEY"):
        store.add_session("s", "no-such-participant", "gradio")


def test_database_url_and_spaces_paths(tmp_path, monkeypatch):
    from workbench.studies import store as store_module

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("WORKBENCH_STUDIES_DB", str(tmp_path / "x" / "db.sqlite"))
    assert store_module.default_url() == f"sqlite:///{tmp_path / 'x' / 'db.sqlite'}"
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert store_module.default_url() == "postgresql+psycopg://u@h/db"
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.delenv("WORKBENCH_STUDIES_DB")
    monkeypatch.delenv("WORKBENCH_STUDY_DB", raising=False)
    # Without a path: the workbench's data folder (workbench.storage), /data/prompt-workbench on a Space.
    monkeypatch.setenv("WORKBENCH_PERSISTENT_ROOT", str(tmp_path / "no-such-volume"))
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    assert store_module.default_url() == f"sqlite:///{tmp_path / 'data' / 'studies.sqlite'}"
    (tmp_path / "volume").mkdir()
    monkeypatch.setenv("WORKBENCH_PERSISTENT_ROOT", str(tmp_path / "volume"))
    assert store_module.default_url() == f"sqlite:///{tmp_path / 'volume' / 'prompt-workbench' / 'studies.sqlite'}"


def _start_server(db: str, log_path):
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "WORKBENCH_STUDIES_DB": db,
           "OMP_NUM_THREADS": "1"}
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--profile", "fake", "--port", str(port)], cwd=str(ROOT),
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/", proc, 180)
    return proc, url, log


@pytest.mark.slow
def test_sigkill_mid_writes_loses_no_committed_event(tmp_path):
    """Participants hammer a real server; every action a client saw answered (its event is committed before
    the answer is sent) must be in the database after a SIGKILL, and the file must pass integrity_check."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    db = str(tmp_path / "kill.sqlite")
    proc, url, log = _start_server(db, tmp_path / "server.log")
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def participant(t: int) -> None:
        try:
            client = Client(url + "/study/", verbose=False)  # the participant page: only the study
            client.predict("REFINER-AB", api_name="/studies_join")
            client.predict(True, api_name="/studies_consent")
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)
            return
        i = 0
        while not stop.is_set():
            marker = f"marker-{t}-{i}"
            try:
                client.predict(marker, api_name="/studies_submit_task")
            except AppError:
                pass  # an answered error (after the first submit the step is a comparison): still an event
            except BaseException:  # noqa: BLE001 -- the server is gone: this one was not answered
                return
            with lock:
                acked.append(marker)
            i += 1

    threads = [threading.Thread(target=participant, args=(t,), daemon=True) for t in range(6)]
    for th in threads:
        th.start()
    deadline = time.time() + 120
    while len(acked) < 150 and time.time() < deadline and not errors:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # mid-writes: the clients are still sending
    proc.wait()
    stop.set()
    for th in threads:
        th.join(timeout=30)
    log.close()
    assert not errors, errors
    with lock:
        answered = list(acked)
    assert len(answered) >= 150

    store = StudyStore(sqlite_url(db))  # "restart": open (and migrate) the file the killed server wrote
    assert store.integrity_check() == "ok"
    stored = {json.loads(e["inputs"]).get("answer") for e in store.table("events") if e["action"] == "studies_submit_task"}
    missing = [m for m in answered if m not in stored]
    assert not missing, f"{len(missing)} answered events lost, e.g. {missing[:3]}"
    participants = store.table("participants")
    assert len(participants) == 6 and all(p["current_step"] == 1 for p in participants)  # one task answer each
    print(f"\nSIGKILL: {len(answered)} answered actions, {len(stored)} stored submit events, 0 lost; "
          f"integrity_check ok")
