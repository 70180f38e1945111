"""Small versions of bench/load.py: many processes, many short trials, exact totals, no locked database."""

from __future__ import annotations

import pytest

from tests.conftest import bench_module

pytestmark = pytest.mark.slow
load = bench_module("load")


@pytest.mark.postgres
def test_four_workers_complete_sixty_trials_on_postgresql(pg_server_url, tmp_path, monkeypatch):
    monkeypatch.setattr(load, "PG_SERVER", pg_server_url)
    result = load.run_postgresql(4, 60, tmp_path)
    assert result.problems == [], result
    assert result.counts.get("COMPLETE") == 60
    assert 0 < result.peak_connections < result.max_connections


def test_two_jobs_on_sqlite_complete_forty_trials_without_a_locked_database(tmp_path):
    result = load.run_sqlite(2, 40, tmp_path)
    assert result.problems == [], result
    assert result.counts.get("COMPLETE") == 40 and result.locked_errors == 0
