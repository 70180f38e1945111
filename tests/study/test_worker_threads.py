"""A worker's BLAS threads: its share of the host's cores, from the live workers the database records."""

from __future__ import annotations

import datetime as dt
import subprocess

from sqlalchemy import update
from threadpoolctl import threadpool_info

from tests.integration.conftest import start_worker, tuner_cmd, wait_for
from tuner.storage import (
    ensure_schema,
    insert_study,
    list_workers,
    make_engine,
    register_worker,
)
from tuner.storage.tables import workers
from tuner.study.worker.threads import host_cores, host_share, set_blas_threads


def test_the_share_divides_the_cores_among_the_live_workers_of_the_host(sqlite_url):
    engine = make_engine(sqlite_url)
    ensure_schema(engine, create_if_empty=True)
    study = insert_study(engine, "s", {"study": {"n_trials": 1}}, "", None)
    assert host_share(engine, "here") == host_cores()  # alone
    me = register_worker(engine, study, "here", 1, heartbeat_s=10)
    register_worker(engine, study, "here", 2, heartbeat_s=10)
    register_worker(engine, study, "elsewhere", 3, heartbeat_s=10)  # another host's cores are not ours
    assert host_share(engine, "here", me) == max(1, host_cores() // 2)
    dead = register_worker(engine, study, "here", 4, heartbeat_s=10)
    with engine.begin() as connection:  # not seen for a minute: dead, its cores are free again
        old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        connection.execute(update(workers).where(workers.c.id == dead).values(last_seen=old))
    assert host_share(engine, "here", me) == max(1, host_cores() // 2)


def test_set_blas_threads_limits_the_blas_of_this_process():
    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    try:
        set_blas_threads(1)
        assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {1}
    finally:
        set_blas_threads(max(before))


def test_two_workers_started_separately_share_the_host(sqlite_url, tmp_path):
    spec = tmp_path / "share.toml"
    spec.write_text('[study]\nname = "share"\nn_trials = 40\nsampler = "random"\npruner = "none"\n'
                    '[data]\nsource = "synthetic_classification"\n[model]\nhidden = [16]\n[train]\nepochs = 100\n')
    subprocess.run(tuner_cmd("study", "create", str(spec), "--storage", sqlite_url, "--quiet"), check=True)
    first = start_worker(sqlite_url, "share", "--quiet", "--heartbeat-interval", "1")
    engine = make_engine(sqlite_url)
    wait_for(lambda: len(list_workers(engine, "share")) == 1, timeout=60)
    assert list_workers(engine, "share")[0].threads == host_cores()  # alone on the host: every core
    second = start_worker(sqlite_url, "share", "--quiet", "--heartbeat-interval", "1")
    try:
        share = max(1, host_cores() // 2)
        wait_for(lambda: [w.threads for w in list_workers(engine, "share")] == [share, share], timeout=60)
    finally:
        for w in (first, second):
            w.terminate()
            w.communicate(timeout=60)
