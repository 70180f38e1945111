"""Alembic environment of tuner's own tables.

The database usually also holds Optuna's tables and Optuna's own Alembic history (`alembic_version`).
This history therefore keeps its revision in `tuner_alembic_version` and only ever looks at tables whose
name starts with `tuner_`: autogenerate neither drops nor alters anything of Optuna's.

`tuner.storage.migrations` builds the Alembic config in code and passes an open connection in
`config.attributes["connection"]`; run by hand (`alembic -c <ini>`), `sqlalchemy.url` from the config is used.
"""

from __future__ import annotations

from sqlalchemy import engine_from_config, pool

from alembic import context
from tuner.storage.migrations import VERSION_TABLE, include_name, include_object
from tuner.storage.tables import metadata

config = context.config


def _configure(**kwargs) -> None:  # noqa: ANN003
    context.configure(
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        include_object=include_object,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table instead
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
