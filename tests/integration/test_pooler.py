"""Workers through a real PgBouncer in transaction mode (`?pooler=pgbouncer`): what tuner needs from it.

Each test starts Debian's `pgbouncer` with compose/pgbouncer.ini's settings on a free port in front of a
fresh PostgreSQL database, and skips when the binary is absent. bench/load.py --pooler runs the large version.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy
from sqlalchemy import text

from tests.conftest import bench_module
from tests.integration.conftest import tuner_cmd
from tuner.storage import make_engine, open_storage, study_lock

load = bench_module("load")
needs_pgbouncer = pytest.mark.skipif(bench_module("pgbouncer").pgbouncer_binary() is None,
                                     reason="no pgbouncer binary (apt-get install pgbouncer)")


@needs_pgbouncer
@pytest.mark.slow
@pytest.mark.postgres
def test_four_workers_through_pgbouncer_complete_exactly_forty_trials(pg_server_url, tmp_path, monkeypatch):
    monkeypatch.setattr(load, "PG_SERVER", pg_server_url)
    result = load.run_postgresql(4, 40, tmp_path, load.WorkerRun(pooler=True, pool_size=4))
    assert result.problems == [], result
    assert result.counts == {"COMPLETE": 40}  # nothing RUNNING, WAITING or FAILED either
    assert result.exit_codes == [0, 0, 0, 0]
    assert 0 < result.peak_connections <= 4  # PgBouncer's pool for the database: 4 server connections


def test_the_claim_lock_excludes_and_a_waiter_pins_no_server_connection(pgbouncer_url):
    # Two server connections: the holder's transaction has one; its claim needs the other while a second
    # worker waits for the lock. A waiter that waited inside a transaction would pin that second one, and
    # the holder's query would hang until the server ended its idle transaction (15 s).
    engine = make_engine(pgbouncer_url(pool_size=2))
    stop, events = threading.Event(), []

    def wait_for_the_lock() -> None:
        with study_lock(engine, "study", stop=stop.is_set):
            events.append(("waiter has it", time.monotonic()))

    with study_lock(engine, "study") as held:
        waiter = threading.Thread(target=wait_for_the_lock)
        waiter.start()
        time.sleep(1.0)  # the waiter tries, and tries again
        started = time.monotonic()
        with engine.connect() as other:  # what a claim does under the lock: count on another connection
            assert other.execute(text("SELECT 1")).scalar() == 1
        assert time.monotonic() - started < 3.0
        assert held.held() and events == []
        released = time.monotonic()
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert len(events) == 1 and events[0][1] >= released


def test_psycopg_prepares_no_statement_behind_the_pooler(pgbouncer_url):
    # Automatic prepared statements (psycopg's default after 5 runs of a query) break in transaction mode:
    # the next transaction may run on a server connection that never saw the PREPARE.
    engine = make_engine(pgbouncer_url(pool_size=2))
    errors: list[str] = []

    def run_often() -> None:
        with engine.connect() as connection:
            for _ in range(30):
                try:
                    connection.execute(text("SELECT count(*) FROM pg_class WHERE relname <> :x"), {"x": "y"})
                    connection.commit()
                except sqlalchemy.exc.DBAPIError as err:
                    errors.append(str(err.orig).splitlines()[0])
                    connection.rollback()

    threads = [threading.Thread(target=run_often) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_db_upgrade_gives_pooled_sessions_the_timeouts(pgbouncer_url):
    url = pgbouncer_url()
    engine = open_storage(url)  # refuses a pooled database whose sessions lack them
    with engine.connect() as connection:
        shown = {name: connection.execute(text(f"SHOW {name}")).scalar()
                 for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")}
    assert shown == {"statement_timeout": "2min", "lock_timeout": "30s", "idle_in_transaction_session_timeout": "15s"}


def test_a_pooled_database_without_the_timeouts_is_refused_in_one_line(pg_url, pgbouncer_url):
    direct = sqlalchemy.create_engine(pg_url, poolclass=sqlalchemy.pool.NullPool)
    with direct.begin() as connection:
        database = connection.execute(text("SELECT current_database()")).scalar()
        connection.execute(text(f'ALTER ROLE CURRENT_USER IN DATABASE "{database}" RESET ALL'))
    direct.dispose()
    result = subprocess.run(tuner_cmd("study", "list", "--storage", pgbouncer_url()), capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "have statement_timeout = 0, tuner needs 2min: run 'tuner db upgrade'" in result.stderr


HOLD_AND_WAIT = """
import sys, time
from tuner.storage import make_engine, study_lock
with study_lock(make_engine(sys.argv[1]), "study"):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
def test_a_paused_lock_holder_behind_pgbouncer_stalls_the_others_for_at_most_the_idle_timeout(pgbouncer_url):
    # The server ends the holder's idle transaction after 15 s (its claim lock with it); PgBouncer drops the
    # paused client, and the next try of a waiter succeeds.
    url = pgbouncer_url()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_AND_WAIT, url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        os.kill(holder.pid, signal.SIGSTOP)
        started = time.monotonic()
        with study_lock(make_engine(url), "study"):
            waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert 10 < waited < 15 + 5, waited
