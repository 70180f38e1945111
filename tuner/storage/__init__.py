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
    optuna_adapter  every use of Optuna beyond its public API: storages, trial ids, stale trials, its tables
    handle          open_database, open_storage, open_study: a database and a study opened once per command
"""

from tuner.storage.engine import check_connection, dispose_engines, make_engine
from tuner.storage.handle import StudyHandle, open_database, open_storage, open_study
from tuner.storage.locks import study_lock
from tuner.storage.migrations import (
    VERSION_TABLE,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    upgrade,
)
from tuner.storage.optuna_adapter import (
    FINISHED,
    finished_count,
    optuna_storage,
    trial_state_counts,
)
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
from tuner.storage.workers import WorkerRecord, list_workers, register_worker, stop_worker, touch_worker

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
