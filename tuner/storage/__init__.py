"""Where studies live: URLs and engines, the project's tables and migrations, records, locks, and Optuna.

    url             resolve_url, redact, parse_url
    engine          make_engine, check_connection (small pools, timeouts, one cache per process; ?pooler=)
    session_defaults the session timeouts kept by the server, for sessions through PgBouncer
    tables          tuner_studies, tuner_curves, tuner_workers (SQLAlchemy Core)
    migrations      the Alembic history in `tuner_alembic_version`; ensure_schema before any use
    records         one transaction per read or write of the studies and curves tables
    workers         the worker rows: registered, refreshed, stopped, swept when dead
    locks           study_lock, serialising trial claims across processes and machines
    retry           which database errors heal, and the retry policy for them
    optuna_adapter  every use of Optuna beyond its public API: storages, trial ids, stale trials
    optuna_tables   SQL reads of Optuna's tables without importing Optuna (study list, schema checks)
    handle          open_database, open_storage, open_study: a database and a study opened once per command

The names below are imported lazily, on first use: `tuner --help` and `tuner study list` load no more
than they need (Optuna, and with it NumPy, only where a study is opened).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner.lazy import lazy_exports

if TYPE_CHECKING:  # for type checkers; at run time each name is imported on first use (__getattr__)
    from tuner.storage.engine import check_connection, dispose_engines, make_engine
    from tuner.storage.handle import (
        StudyHandle,
        open_database,
        open_storage,
        open_study,
    )
    from tuner.storage.locks import study_lock
    from tuner.storage.migrations import (
        VERSION_TABLE,
        current_revision,
        downgrade,
        ensure_schema,
        head_revision,
        upgrade,
    )
    from tuner.storage.optuna_adapter import optuna_storage, trial_state_counts
    from tuner.storage.optuna_tables import FINISHED, finished_count
    from tuner.storage.records import (
        StudyRecord,
        delete_study_records,
        get_study,
        insert_study,
        list_study_records,
        load_curves,
        save_curve,
        update_study,
    )
    from tuner.storage.retry import RetryPolicy, is_connection_error
    from tuner.storage.url import DEFAULT_URL, ENV_VAR, parse_url, redact, resolve_url
    from tuner.storage.workers import (
        WorkerRecord,
        list_workers,
        register_worker,
        stop_worker,
        touch_worker,
    )

# name -> the module that defines it
_WHERE = {
    "check_connection": "tuner.storage.engine",
    "dispose_engines": "tuner.storage.engine",
    "make_engine": "tuner.storage.engine",
    "StudyHandle": "tuner.storage.handle",
    "open_database": "tuner.storage.handle",
    "open_storage": "tuner.storage.handle",
    "open_study": "tuner.storage.handle",
    "study_lock": "tuner.storage.locks",
    "VERSION_TABLE": "tuner.storage.migrations",
    "current_revision": "tuner.storage.migrations",
    "downgrade": "tuner.storage.migrations",
    "ensure_schema": "tuner.storage.migrations",
    "head_revision": "tuner.storage.migrations",
    "upgrade": "tuner.storage.migrations",
    "optuna_storage": "tuner.storage.optuna_adapter",
    "trial_state_counts": "tuner.storage.optuna_adapter",
    "FINISHED": "tuner.storage.optuna_tables",
    "finished_count": "tuner.storage.optuna_tables",
    "StudyRecord": "tuner.storage.records",
    "delete_study_records": "tuner.storage.records",
    "get_study": "tuner.storage.records",
    "insert_study": "tuner.storage.records",
    "list_study_records": "tuner.storage.records",
    "load_curves": "tuner.storage.records",
    "save_curve": "tuner.storage.records",
    "update_study": "tuner.storage.records",
    "RetryPolicy": "tuner.storage.retry",
    "is_connection_error": "tuner.storage.retry",
    "DEFAULT_URL": "tuner.storage.url",
    "ENV_VAR": "tuner.storage.url",
    "parse_url": "tuner.storage.url",
    "redact": "tuner.storage.url",
    "resolve_url": "tuner.storage.url",
    "WorkerRecord": "tuner.storage.workers",
    "list_workers": "tuner.storage.workers",
    "register_worker": "tuner.storage.workers",
    "stop_worker": "tuner.storage.workers",
    "touch_worker": "tuner.storage.workers",
}

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "FINISHED",
    "VERSION_TABLE",
    "RetryPolicy",
    "StudyHandle",
    "StudyRecord",
    "WorkerRecord",
    "check_connection",
    "connect",
    "current_revision",
    "delete_study_records",
    "dispose_engines",
    "downgrade",
    "ensure_schema",
    "finished_count",
    "get_study",
    "head_revision",
    "insert_study",
    "is_connection_error",
    "list_study_records",
    "list_workers",
    "load_curves",
    "make_engine",
    "open_database",
    "open_storage",
    "open_study",
    "optuna_storage",
    "parse_url",
    "redact",
    "register_worker",
    "resolve_url",
    "save_curve",
    "stop_worker",
    "study_lock",
    "touch_worker",
    "trial_state_counts",
    "update_study",
    "upgrade",
]


__getattr__ = lazy_exports(__name__, _WHERE)
