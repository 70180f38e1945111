"""Specs are data, SQL is bound, passwords never leak, the dashboard listens on 127.0.0.1 only."""

from __future__ import annotations

import ast
import inspect
import os
import secrets
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

import tuner
from tests.integration.conftest import tuner_cmd, tuner_in_process, wait_for
from tuner.storage import head_revision

PACKAGE = Path(tuner.__file__).resolve().parent
SOURCES = sorted(PACKAGE.rglob("*.py"))


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
            yield node, owner, name


def test_no_code_evaluation_or_unpickling_anywhere_in_the_package():
    forbidden = {
        (None, "eval"), (None, "exec"), (None, "compile"), (None, "__import__"),
        ("pickle", "load"), ("pickle", "loads"), ("cPickle", "load"), ("dill", "load"), ("dill", "loads"),
        ("yaml", "load"), ("yaml", "unsafe_load"), ("marshal", "loads"), ("shelve", "open"),
        ("pd", "read_pickle"), ("pandas", "read_pickle"), ("joblib", "load"), ("torch", "load"),
    }
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, owner, name in _calls(tree):
            if (owner, name) in forbidden or (owner is None and (None, name) in forbidden):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {owner or ''}.{name}")
            if name == "load" and owner in ("np", "numpy"):
                kw = {k.arg: k.value for k in node.keywords}
                if not (isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value is False):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: np.load without allow_pickle=False")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(n and n.split(".")[0] in ("pickle", "dill", "marshal", "shelve", "yaml") for n in names):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: imports {names}")
    assert found == []


def _is_built_string(node: ast.AST) -> bool:
    """An f-string, `"..." % x`, `"...".format(...)` or string concatenation: text built from values."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"


def test_all_sql_text_is_constant_and_values_are_bound():
    """`text(...)`, `exec_driver_sql(...)` and cursor `execute(...)` get literal SQL; values go as parameters.

    One exception, checked by value: SQLite's `PRAGMA busy_timeout` takes no parameters and formats a
    module constant (an int), never user input.
    """
    allowed = {("engine.py", "PRAGMA busy_timeout")}
    found = []
    for path in SOURCES:
        source = path.read_text()
        for node, _owner, name in _calls(ast.parse(source)):
            if name not in ("text", "exec_driver_sql", "execute", "executescript") or not node.args:
                continue
            arg = node.args[0]
            if _is_built_string(arg):
                snippet = ast.get_source_segment(source, arg) or ""
                if not any(path.name == f and marker in snippet for f, marker in allowed):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {snippet}")
    assert found == []


def test_the_one_formatted_pragma_sets_the_busy_timeout_of_every_sqlite_connection(sqlite_url):
    from tuner.storage import ensure_schema, make_engine
    from tuner.storage.engine import SQLITE_BUSY_TIMEOUT_S

    assert isinstance(SQLITE_BUSY_TIMEOUT_S, int)  # the formatted value is a constant integer, never input
    ensure_schema(make_engine(sqlite_url), create_if_empty=True)  # tuner's file: WAL
    with make_engine(sqlite_url).connect() as connection:
        timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
        journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    assert (timeout, journal) == (SQLITE_BUSY_TIMEOUT_S * 1000, "wal")


def test_the_dashboard_binds_127_0_0_1_by_default():
    from tuner.cli import dashboard

    default = inspect.signature(dashboard.dashboard).parameters["host"].default
    assert default == "127.0.0.1"
    result = subprocess.run(tuner_cmd("dashboard", "--help"), capture_output=True, text=True,
                            env=dict(os.environ, COLUMNS="200"))
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "127.0.0.1" in text and "NO authentication" in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _outside_address() -> str | None:
    """An address of this machine other than loopback, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.slow
def test_a_running_dashboard_listens_on_loopback_only(sqlite_url, write_spec):
    subprocess.run(tuner_cmd("study", "create", str(write_spec("dash")), "--storage", sqlite_url, "--quiet"), check=True)
    port = _free_port()
    server = subprocess.Popen(tuner_cmd("dashboard", "--storage", sqlite_url, "--port", str(port)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, timeout=60)
        outside = _outside_address()
        if outside is not None:
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((outside, port)) != 0
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


# ---- a password that must never leak -----------------------------------------------------------------

PASSWORD = "Pw-" + secrets.token_hex(8) + "%{x}"  # '%' and braces: naive URL formatting breaks on them


@pytest.fixture
def pg_password_url(pg_server_url, pg_url):
    """pg_url reached through a fresh role that has a password (trust auth may ignore it; it is still sent)."""
    role = f"tuner_pw_{secrets.token_hex(4)}"
    admin = sqlalchemy.create_engine(pg_server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    database = sqlalchemy.engine.make_url(pg_url).database
    quoted = PASSWORD.replace("'", "''")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE ROLE {role} LOGIN PASSWORD '{quoted}'"))
        connection.execute(sqlalchemy.text(f'ALTER DATABASE "{database}" OWNER TO {role}'))
    url = sqlalchemy.engine.make_url(pg_url).set(username=role, password=PASSWORD)
    yield url.render_as_string(hide_password=False)
    from tuner.storage import dispose_engines

    dispose_engines(url)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"), {"r": role})
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{database}"'))  # its objects are the role's
        connection.execute(sqlalchemy.text(f"DROP ROLE IF EXISTS {role}"))
    admin.dispose()


@pytest.mark.slow
def test_a_database_password_appears_nowhere(pg_password_url, write_spec, tmp_path, capfd):
    url = pg_password_url
    leaks = [PASSWORD, PASSWORD.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")]
    spec = write_spec("secret", n_trials=3, epochs=2)
    env = {k: v for k, v in os.environ.items() if k != "TUNER_STORAGE"}
    outputs = []

    def run(*args: str) -> subprocess.CompletedProcess:
        """A real `tuner` process: everything it writes, its own and its libraries', is kept."""
        argv = tuner_cmd(*args, "--storage", url)
        result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        outputs.append(result.stdout + result.stderr)
        return result

    def run_here(*args: str) -> int:
        """The root command in this process (no 2 s start-up); capfd also catches what bypasses sys.std*."""
        capfd.readouterr()
        result = tuner_in_process(*args, "--storage", url)
        captured = capfd.readouterr()
        outputs.append(result.stdout + result.stderr + captured.out + captured.err)
        return result.returncode

    assert run("db", "upgrade").returncode == 0
    assert run("study", "create", str(spec)).returncode == 0
    assert run("worker", "secret").returncode == 0
    env_run = subprocess.run(tuner_cmd("worker", "secret", "--jobs", "2", "--n-trials", "4"), capture_output=True,
                             text=True, env=dict(env, TUNER_STORAGE=url), cwd=tmp_path, timeout=300)
    outputs.append(env_run.stdout + env_run.stderr)
    assert env_run.returncode == 0
    assert run("study", "show", "missing").returncode == 1  # an error that lists the studies, from a process
    for args in [("study", "list"), ("study", "list", "--json"), ("study", "show", "secret"),
                 ("study", "show", "secret", "--json"), ("db", "current"), ("study", "cleanup", "secret")]:
        assert run_here(*args) == 0, outputs[-1]
    assert run_here("study", "create", str(spec)) == 1  # an error that names the study
    for fmt in ("csv", "json", "parquet"):
        assert run_here("study", "export", "secret", "--format", fmt, "--out", str(tmp_path / f"trials.{fmt}")) == 0
    assert run("report", "secret", "--out", "report").returncode == 0
    # a connection error carries the URL: its password must be hidden
    bad = sqlalchemy.engine.make_url(url).set(port=1).render_as_string(hide_password=False)
    refused = subprocess.run(tuner_cmd("study", "list", "--storage", bad), capture_output=True, text=True, env=env)
    outputs.append(refused.stdout + refused.stderr)
    assert "***" in refused.stderr

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in files)
    for leak in leaks:
        assert not [o for o in outputs if leak in o]
        assert not [p for p in files if leak.encode() in p.read_bytes()]

    # and nothing stored in the database: study and trial attributes, tuner's tables, the workers' rows
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        tables = sqlalchemy.inspect(connection).get_table_names()
        for table in tables:
            for row in connection.execute(sqlalchemy.text(f'SELECT * FROM "{table}"')):
                assert not any(leak in str(v) for v in row for leak in leaks), table
    engine.dispose()


def _dashboard_start_line(url: str, env: dict, cwd: Path) -> str:
    """The dashboard's first line on stderr (it names the storage), then the dashboard is stopped."""
    server = subprocess.Popen(tuner_cmd("dashboard", "--storage", url, "--port", str(_free_port()), "--refresh", "0"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        line = server.stderr.readline()
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    return line + out + err


@pytest.mark.slow
def test_a_password_in_the_query_string_appears_nowhere(pg_password_url, write_spec, tmp_path):
    """libpq takes `password` and `sslpassword` as query parameters too: every command hides them."""
    base = sqlalchemy.engine.make_url(pg_password_url)
    url = sqlalchemy.engine.URL.create(
        base.drivername, base.username, None, base.host, base.port, base.database,
        query={"password": PASSWORD, "sslpassword": PASSWORD + "-ssl"},
    ).render_as_string(hide_password=False)
    encoded = PASSWORD.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    assert f":{encoded}@" not in url and f"?password={encoded}&" in url
    leaks = [PASSWORD, encoded]
    env = {k: v for k, v in os.environ.items() if k != "TUNER_STORAGE"}
    outputs = []

    def run(*args: str, storage: str = url) -> subprocess.CompletedProcess:
        result = subprocess.run(tuner_cmd(*args, "--storage", storage), capture_output=True, text=True, env=env,
                                cwd=tmp_path, timeout=300)
        outputs.append(result.stdout + result.stderr)
        return result

    assert run("db", "upgrade").returncode == 0
    assert run("run", str(write_spec("q", n_trials=2, epochs=1))).returncode == 0
    for args in [("study", "list"), ("study", "show", "q"), ("db", "current"), ("report", "q", "--out", "report")]:
        assert run(*args).returncode == 0, outputs[-1]
    assert run("study", "show", "missing").returncode == 1
    shown = sqlalchemy.engine.make_url(url).set(query={}).render_as_string(hide_password=False)
    assert "***" not in shown and outputs[4] == f"{shown}?password=***&sslpassword=***: revision {head_revision()} (head)\n"
    outputs.append(_dashboard_start_line(url, env, tmp_path))
    assert "optuna-dashboard on " in outputs[-1] and "password=***" in outputs[-1]
    refused = run("study", "list", storage=sqlalchemy.engine.make_url(url).set(port=1).render_as_string(False))
    assert refused.returncode == 1 and "password=***" in refused.stderr
    malformed = run("study", "list", storage=url.replace("://", ":/", 1))
    assert malformed.returncode == 1 and malformed.stderr.startswith("error: malformed storage URL ")

    page = (tmp_path / "report" / "report.html").read_text()
    assert "password=***" in page
    for leak in leaks:
        assert not [o for o in outputs if leak in o]
        assert leak not in page


@pytest.mark.slow
def test_the_cli_passes_the_url_to_child_workers_by_environment_not_argv(sqlite_url, write_spec, tmp_path):
    """argv is visible to every user in `ps`; a child's environment only to its owner."""
    from tuner.storage import list_workers, make_engine

    subprocess.run(tuner_cmd("study", "create", str(write_spec("env", n_trials=50, epochs=200)), "--storage",
                             sqlite_url, "--quiet"), check=True)
    parent = subprocess.Popen(tuner_cmd("worker", "env", "--jobs", "2", "--storage", sqlite_url, "--quiet"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        engine = make_engine(sqlite_url)
        wait_for(lambda: len(list_workers(engine, "env")) == 2, timeout=60)
        for record in list_workers(engine, "env"):
            argv = Path(f"/proc/{record.pid}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{record.pid}/environ").read_bytes().split(b"\0")
            assert b"worker" in argv and not [a for a in argv if sqlite_url.encode() in a]
            assert f"TUNER_STORAGE={sqlite_url}".encode() in environ
    finally:
        parent.send_signal(signal.SIGTERM)
        parent.communicate(timeout=60)
