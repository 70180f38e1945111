"""`study_lock` with real processes: read-modify-write under the lock never loses an update."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, text

from tuner.storage import make_engine, study_lock
from tuner.storage.locks import lock_key

PROCESSES = 4
INCREMENTS = 15
KEY = -5275546412469599550  # lock_key("digits-mlp"): must never change, or old and new workers would not exclude each other

# Each child waits for the go file, then reads the counter and writes it back + 1 in two separate
# transactions, with a pause between: without the lock, updates are lost.
CHILD = """
import sys, time
from pathlib import Path
from sqlalchemy import text
from tuner.storage import make_engine, study_lock

url, go, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
engine = make_engine(url)
while not go.exists():
    time.sleep(0.01)
for _ in range(n):
    with study_lock(engine, "counted study"):
        with engine.begin() as c:
            value = c.execute(text("SELECT value FROM lock_counter WHERE id = 1")).scalar_one()
        time.sleep(0.005)
        with engine.begin() as c:
            c.execute(text("UPDATE lock_counter SET value = :v WHERE id = 1"), {"v": value + 1})
"""


def make_counter(url: str):
    engine = make_engine(url)
    table = Table("lock_counter", MetaData(), Column("id", Integer, primary_key=True), Column("value", Integer))
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(table.insert().values(id=1, value=0))
    return engine


def count(engine) -> int:
    with engine.begin() as connection:
        return connection.execute(text("SELECT value FROM lock_counter WHERE id = 1")).scalar_one()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "mysql"])
def url(request):
    return request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}[request.param])


@pytest.mark.slow
def test_processes_under_the_lock_never_lose_an_update(url, tmp_path: Path):
    engine = make_counter(url)
    go = tmp_path / "go"
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, url, str(go), str(INCREMENTS)], stderr=subprocess.PIPE, text=True)
        for _ in range(PROCESSES)
    ]
    go.touch()
    errors = [child.communicate(timeout=120)[1] for child in children]
    assert [child.returncode for child in children] == [0] * PROCESSES, errors
    assert count(engine) == PROCESSES * INCREMENTS


def try_lock_from_a_thread(engine, name: str, timeout: float) -> bool:
    """Whether another thread gets the lock of `name` within `timeout` seconds (it releases it at once)."""
    got = threading.Event()

    def take() -> None:
        with study_lock(engine, name):
            got.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return got.wait(timeout)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "mysql",
                                     "memory"])
def test_the_lock_excludes_others_until_the_block_ends(backend, request):
    if backend == "memory":
        url = "sqlite://"
    else:
        url = request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}[backend])
    engine = make_engine(url)
    with study_lock(engine, "s"):
        assert not try_lock_from_a_thread(engine, "s", 0.5)
    assert try_lock_from_a_thread(engine, "s", 10)


def test_different_studies_do_not_block_each_other_on_postgresql(pg_url):
    engine = make_engine(pg_url)
    with study_lock(engine, "a"):
        assert try_lock_from_a_thread(engine, "b", 10)


def test_the_lock_key_is_a_stable_signed_64_bit_hash():
    assert lock_key("digits-mlp") == KEY
    assert lock_key("digits-mlp2") != KEY
    assert -(2**63) <= lock_key("x") < 2**63


@pytest.mark.postgres
def test_a_holder_whose_session_the_server_ended_loses_the_lock_as_an_error_that_heals(pg_url):
    """The soak's case: the session holding the lock is terminated, the body sees it (`held()` is False),
    and leaving the block raises LockLostError, which the retry policy treats as healing (a new connection
    takes the lock again), never as a permanent failure that ends the worker."""
    from tuner.storage.locks import LockLostError
    from tuner.storage.retry import is_connection_error

    engine = make_engine(pg_url)
    with pytest.raises(LockLostError) as caught:
        with study_lock(engine, "ended") as lock:
            with engine.begin() as other:
                other.execute(text("SELECT pg_terminate_backend(pid) FROM pg_locks "
                                   "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"))
            assert not lock.held()
    assert is_connection_error(caught.value)
    assert try_lock_from_a_thread(engine, "ended", 10)  # the server released it with the session
