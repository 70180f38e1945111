"""Tuner's session settings kept by the server, for sessions that cannot carry them (through PgBouncer).

A direct PostgreSQL session gets `PG_SESSION` (statement, lock and idle-in-transaction timeouts, TCP
keepalives) in libpq's startup `options`; PgBouncer refuses that parameter. `store_session_defaults`
(run by `tuner db upgrade`) makes the same settings the defaults of the role in its database, so that every
server session PgBouncer opens starts with them, and `check_server_timeouts` refuses a database reached
through a pooler whose sessions lack them, naming the setting, instead of running without them.
"""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tuner.errors import StorageError
from tuner.storage.engine import PG_SESSION, through_pooler
from tuner.storage.url import redact

# What the server must set itself for a pooled session; the keepalives are the pooler's own settings then.
SERVER_TIMEOUTS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")


def store_session_defaults(engine: Engine) -> None:
    """Store `PG_SESSION` as the defaults of the connecting role in its database (PostgreSQL only).

    A session through PgBouncer cannot carry them in libpq's `options`; with these defaults the server
    gives every new session of the role in this database the same timeouts (sessions already open keep
    theirs). A role may always change its own defaults; other roles and databases are left alone.
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        connection.execute(text("SELECT set_config('tuner.session_defaults', :settings, true)"),
                           {"settings": json.dumps(PG_SESSION)})
        connection.execute(_STORE_SESSION_DEFAULTS)


# ALTER ROLE takes no bind parameters: the server quotes the names and values it is handed (%I, %L), so the
# SQL text stays constant.
_STORE_SESSION_DEFAULTS = text("""DO $$
DECLARE setting record;
BEGIN
    FOR setting IN SELECT key, value FROM jsonb_each_text(current_setting('tuner.session_defaults')::jsonb) LOOP
        EXECUTE format('ALTER ROLE CURRENT_USER IN DATABASE %I SET %I = %L',
                       current_database(), setting.key, setting.value);
    END LOOP;
END $$""")


def check_server_timeouts(engine: Engine) -> None:
    """Through a pooler, refuse a server whose sessions lack tuner's timeouts (StorageError naming one).

    The values are compared as the server writes them: `set_config(..., true)` returns the wanted value in
    the server's own units (and holds only for this transaction), as `current_setting` returns the value
    in force.
    """
    if not through_pooler(engine):
        return
    with engine.begin() as connection:
        for name in SERVER_TIMEOUTS:
            have, want = connection.execute(text("SELECT current_setting(:n), set_config(:n, :v, true)"),
                                            {"n": name, "v": PG_SESSION[name]}).one()
            if have != want:
                raise StorageError(
                    f"the PostgreSQL sessions behind the pooler of {redact(engine.url)} have {name} = {have}, "
                    f"tuner needs {want}: run 'tuner db upgrade' once, which stores tuner's timeouts for the "
                    "role in this database (open server connections of a running PgBouncer get them after "
                    "RECONNECT on its admin console, or a restart)"
                )
