"""Hostile and broken input through the real CLI: one exact stderr line, the exit code, no traceback, and
nothing stored changed."""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

from tests.integration.conftest import tuner_cmd, tuner_in_process
from tuner.storage import VERSION_TABLE, head_revision
from tuner.study.limits import MAX_JOBS

pytestmark = pytest.mark.slow

BASE = """[study]
name = "{name}"
n_trials = 2
sampler = "random"
pruner = "none"

[data]
source = "{source}"
{target}
[model]
hidden = [8]

[train]
epochs = 1
"""


def cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    run_env = {k: v for k, v in os.environ.items() if k != "TUNER_STORAGE"}
    run_env.update(env or {})
    return subprocess.run(tuner_cmd(*args), capture_output=True, text=True, cwd=cwd, env=run_env, timeout=timeout)


def assert_error(result: subprocess.CompletedProcess, message: str, code: int = 1) -> None:
    """Exactly one line on stderr, `error: <message>`, nothing on stdout, and the exit code."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr == f"error: {message}\n", result.stderr
    assert result.stdout == ""
    assert result.returncode == code


def snapshot(url: str) -> dict[str, int]:
    """Rows per table: every table of the database, tuner's and Optuna's."""
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        names = sqlalchemy.inspect(engine).get_table_names()
        with engine.connect() as connection:
            return {n: connection.execute(sqlalchemy.text(f'SELECT count(*) FROM "{n}"')).scalar() for n in names}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file holding one study, 'existing', with one finished trial; made once per module."""
    path = tmp_path_factory.mktemp("template") / "tuner.db"
    spec = path.with_name("existing.toml")
    spec.write_text(BASE.format(name="existing", source="synthetic_classification", target=""))
    subprocess.run(tuner_cmd("run", str(spec), "--storage", f"sqlite:///{path}", "--quiet", "--n-trials", "1"),
                   check=True)
    return path


@pytest.fixture
def db(template_db: Path, tmp_path: Path) -> str:
    """A private copy of the template database for one test, which may change or break it."""
    path = tmp_path / "tuner.db"
    shutil.copyfile(template_db, path)
    return f"sqlite:///{path}"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def spec_for(tmp_path: Path, source: str, target: str = "", name: str = "bad") -> Path:
    return write(tmp_path / f"{name}.toml", BASE.format(name=name, source=source, target=target))


def create_fails(db: str, spec: Path, message: str, code: int, *, in_process: bool = False) -> None:
    before = snapshot(db)
    run = tuner_in_process if in_process else cli
    assert_error(run("study", "create", str(spec), "--storage", db), message, code)
    assert snapshot(db) == before


# One case of each parametrized group goes through a real `tuner` process; the rest run in-process.
REAL_PROCESS_CASES = {"malformed_toml", "truncated", "nan_feature"}


# ---- spec files ------------------------------------------------------------------------------------

SPEC_CASES = {
    "malformed_toml": ('[study\nname = "x"\n',
                       "invalid TOML at line 1, column 7: Expected ']' at the end of a table declaration"),
    "unknown_section": ("[srch]\n", "srch: unknown key (known: data, model, search, study, train)"),
    "unknown_key": ('[data]\nsource = "digits"\nnmae = 3\n',
                    "data.nmae: unknown key (known: seed, source, standardize, target, test_fraction, val_fraction)"),
    "wrong_type": ('[study]\nn_trials = "ten"\n[data]\nsource = "digits"\n',
                   "study.n_trials: expected an integer, got 'ten'"),
    "low_not_below_high": ('[data]\nsource = "digits"\n[search]\neps0 = { low = 1, high = 0.1 }\n',
                           "search.eps0: low must be < high, got low=1, high=0.1"),
    "log_low_zero": ('[data]\nsource = "digits"\n[search]\neps0 = { low = 0, high = 1, log = true }\n',
                     "search.eps0: a log range needs low > 0, got low=0"),
    "log_low_negative": ('[data]\nsource = "digits"\n[search]\ninit_scale = { low = -1, high = 2, log = true }\n',
                         "search.init_scale: a log range needs low > 0, got low=-1"),
    "unknown_optimizer": ('[data]\nsource = "digits"\n[search]\noptimizer = ["sgd", "adamw"]\n',
                          "search.optimizer: unknown optimizer 'adamw' (known: sgd, momentum, nesterov, adagrad, "
                          "rmsprop, rmsprop_nesterov, adam)"),
    "unknown_init": ('[data]\nsource = "digits"\n[search]\ninit = "kaiming"\n',
                     "search.init: unknown init scheme 'kaiming' (known: zeros, small, lecun, he, uniform_fan_in, "
                     "glorot_uniform, orthogonal, sparse)"),
    "not_utf8": (b"[study]\nname = \"\xff\xfe\"\n", "not UTF-8 text"),
}


@pytest.mark.parametrize("case", sorted(SPEC_CASES))
def test_a_bad_spec_is_refused_with_its_file_key_and_value(db, tmp_path, case):
    text, message = SPEC_CASES[case]
    spec = tmp_path / f"{case}.toml"
    spec.write_bytes(text if isinstance(text, bytes) else text.encode())
    create_fails(db, spec, f"{spec}: {message}", 2, in_process=case not in REAL_PROCESS_CASES)


def test_a_missing_spec_file_is_named(db, tmp_path):
    create_fails(db, tmp_path / "nope.toml", f"{tmp_path / 'nope.toml'}: no such file", 2)


# ---- data files ------------------------------------------------------------------------------------

def _xy(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, n)


def test_a_missing_data_file_is_named_relative_to_the_spec(db, tmp_path):
    spec = spec_for(tmp_path, "data/missing.npz")
    create_fails(db, spec, f"{spec}: data.source: no such file '{tmp_path / 'data' / 'missing.npz'}'", 2)


def test_a_relative_data_path_resolves_against_the_spec_not_the_cwd(db, tmp_path):
    (tmp_path / "specs" / "data").mkdir(parents=True)
    x, y = _xy()
    np.savez(tmp_path / "specs" / "data" / "good.npz", x=x, y=y)
    spec = spec_for(tmp_path / "specs", "data/good.npz", name="relative")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("study", "create", str(spec), "--storage", db, "--quiet", cwd=elsewhere)
    assert result.returncode == 0, result.stderr


def _npz_truncated(path: Path) -> None:
    x, y = _xy()
    np.savez(path, x=x, y=y)
    path.write_bytes(path.read_bytes()[:300])


def _npz_corrupt(path: Path) -> None:
    path.write_bytes(b"this is not an archive\n" * 10)


def _npz_negative_label(path: Path) -> None:
    x, y = _xy()
    y[7] = -1
    np.savez(path, x=x, y=y)


def _npz_fractional_val_label(path: Path) -> None:
    x, y = _xy()
    np.savez(path, x=x, y=y, x_val=x[:5], y_val=np.array([0.0, 1.0, 0.5, 2.0, 1.0]))


def _npz_val_label_out_of_range(path: Path) -> None:
    x, y = _xy()
    np.savez(path, x=x, y=y, x_val=x[:3], y_val=np.array([0, 9, 1]))


def _npz_float_labels(path: Path) -> None:
    x, y = _xy()
    np.savez(path, x=x, y=y + 0.5)


def _npz_nan(path: Path) -> None:
    x, y = _xy()
    x[3, 1] = np.nan
    np.savez(path, x=x, y=y)


def _npz_inf(path: Path) -> None:
    x, y = _xy()
    x[5, 2] = -np.inf
    np.savez(path, x=x, y=y)


def _npz_empty(path: Path) -> None:
    np.savez(path, x=np.zeros((0, 4)), y=np.zeros(0, dtype=np.int64))


def _npz_no_y(path: Path) -> None:
    x, _ = _xy()
    np.savez(path, x=x, labels=np.zeros(len(x)))


NPZ_CASES = {
    "truncated": (_npz_truncated, "not a readable .npz file (truncated or corrupt: File is not a zip file)"),
    "corrupt": (_npz_corrupt, "not a .npz file (not a zip archive of arrays)"),
    "negative_label": (_npz_negative_label, "class labels must be integers in 0..C-1, y has -1 at row 7"),
    "fractional_val_label": (_npz_fractional_val_label, "y holds integer class labels but y_val has 0.5 at row 2"),
    "val_label_out_of_range": (_npz_val_label_out_of_range,
                               "y_val has label 9 at row 1, outside the classes 0..2 of y"),
    "float_labels": (_npz_float_labels,
                     "holds a regression target (floating-point y), but study.objective = 'val_accuracy' needs "
                     "integer or string class labels; use objective = 'val_loss' or integer labels"),
    "nan": (_npz_nan, "x has 1 NaN or infinite value(s), first at row 3, column 1"),
    "inf": (_npz_inf, "x has 1 NaN or infinite value(s), first at row 5, column 2"),
    "empty": (_npz_empty, "the dataset is empty (x has 0 rows)"),
    "no_y": (_npz_no_y, "missing array 'y' (found: x, labels)"),
}


@pytest.mark.parametrize("case", sorted(NPZ_CASES))
def test_a_bad_npz_is_refused_at_creation_and_nothing_is_stored(db, tmp_path, case):
    make, message = NPZ_CASES[case]
    data = tmp_path / f"{case}.npz"
    make(data)
    create_fails(db, spec_for(tmp_path, str(data)), f"{data}: {message}", 1,
                 in_process=case not in REAL_PROCESS_CASES)


CSV_CASES = {
    "no_target_column": ("a,b,label\n1,2,0\n3,4,1\n5,6,0\n", "nope",
                         "no target column 'nope' (columns: a, b, label)"),
    "empty_file": ("", "label", "the file is empty"),
    "header_only": ("a,b,label\n", "label", "the dataset is empty (no data rows)"),
    "nan_feature": ("a,b,label\n1,2,0\n3,nan,1\n5,6,0\n", "label",
                    "x has 1 NaN or infinite value(s), first at row 1 (line 3), column 'b'"),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_a_bad_csv_is_refused_at_creation_and_nothing_is_stored(db, tmp_path, case):
    text, target, message = CSV_CASES[case]
    data = write(tmp_path / f"{case}.csv", text)
    create_fails(db, spec_for(tmp_path, str(data), f'target = "{target}"'), f"{data}: {message}", 1,
                 in_process=case not in REAL_PROCESS_CASES)


def test_a_data_file_deleted_after_creation_stops_the_worker_before_any_trial(db, tmp_path):
    data = write(tmp_path / "d.csv", "a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)))
    spec = spec_for(tmp_path, str(data), 'target = "label"', name="gone")
    assert cli("study", "create", str(spec), "--storage", db, "--quiet").returncode == 0
    data.unlink()
    before = snapshot(db)
    result = cli("worker", "gone", "--storage", db)
    assert_error(result, f"{data}: no such file (looked for {data})")
    assert snapshot(db) == before


# ---- storage -----------------------------------------------------------------------------------------

def test_a_refused_connection_fails_fast_with_the_password_hidden():
    url = "postgresql+psycopg://bob:s3cret-pw@127.0.0.1:1/tuner"
    started = time.monotonic()
    result = cli("study", "list", "--storage", url)
    assert time.monotonic() - started < 10
    assert_error(result, 'cannot connect to postgresql+psycopg://bob:***@127.0.0.1:1/tuner: connection failed: '
                         'connection to server at "127.0.0.1", port 1 failed: Connection refused')
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_an_unreachable_host_fails_in_under_ten_seconds_without_the_password():
    url = "postgresql+psycopg://bob:s3cret-pw@192.0.2.1:5432/tuner"  # TEST-NET-1: never routed
    started = time.monotonic()
    result = cli("study", "list", "--storage", url, timeout=30)
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect to postgresql+psycopg://bob:***@192.0.2.1:5432/tuner: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("notaurl", "malformed storage URL notaurl: Could not parse SQLAlchemy URL from given URL string"),
        ("postgresql+psycopg://bob:s3cret-pw@127.0.0.1:port/x",
         "malformed storage URL postgresql+psycopg://bob:***@127.0.0.1:port/x: the port is not a number"),
        ("foo://bob:s3cret-pw@127.0.0.1/x",
         "unknown database dialect or driver 'foo' in foo://bob:***@127.0.0.1/x; "
         "use sqlite:///..., postgresql+psycopg://... or mysql+pymysql://..."),
    ],
)
def test_a_wrong_storage_url_is_one_line_without_the_password(url, message):
    result = cli("study", "list", "--storage", url)
    assert_error(result, message)
    assert "s3cret-pw" not in result.stderr


def test_a_wrong_database_name_on_postgresql(pg_server_url):
    url = sqlalchemy.engine.make_url(pg_server_url).set(database="tuner_no_such_db")
    result = cli("study", "list", "--storage", url.render_as_string(hide_password=False))
    assert_error(result, f'cannot connect to {url.render_as_string(hide_password=True)}: connection failed: '
                         f'connection to server at "{url.host}", port {url.port} failed: '
                         f'FATAL:  database "tuner_no_such_db" does not exist')


# ---- studies -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [("study", "show", "nope"), ("worker", "nope"), ("study", "export", "nope", "--out", "x.csv"),
                                     ("study", "cleanup", "nope"), ("study", "delete", "nope", "--yes")])
def test_a_missing_study_lists_the_ones_that_exist(db, tmp_path, command):
    before = snapshot(db)
    assert_error(cli(*command, "--storage", db, cwd=tmp_path), "no study named 'nope' (studies: existing)")
    assert snapshot(db) == before
    assert not (tmp_path / "x.csv").exists()


def test_creating_a_study_twice_is_refused(db, tmp_path):
    spec = write(tmp_path / "existing.toml", BASE.format(name="existing", source="synthetic_classification", target=""))
    create_fails(db, spec, "study 'existing' already exists; use --load-if-exists to reuse it or --name to pick another", 1)


# ---- schema versions ---------------------------------------------------------------------------------

def _execute(url: str, *statements: str) -> None:
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sqlalchemy.text(statement))
    engine.dispose()


@pytest.mark.parametrize("command", [("worker", "existing"), ("study", "list"), ("study", "create", "SPEC")])
def test_a_schema_newer_than_the_code_is_refused(db, tmp_path, command):
    _execute(db, f"UPDATE {VERSION_TABLE} SET version_num = 'ffff99'")
    spec = write(tmp_path / "other.toml", BASE.format(name="other", source="synthetic_classification", target=""))
    before = snapshot(db)
    result = cli(*(str(spec) if c == "SPEC" else c for c in command), "--storage", db)
    assert_error(result, f"database schema is at revision ffff99, which is newer than this tuner "
                         f"(it knows up to {head_revision()}): upgrade tuner")
    assert snapshot(db) == before


def test_a_database_without_tuner_tables_asks_for_an_upgrade(db, tmp_path):
    assert cli("db", "downgrade", "base", "--yes", "--storage", db).returncode == 0
    before = snapshot(db)
    result = cli("worker", "existing", "--storage", db)
    assert_error(result, f"database has no tuner tables, this tuner needs revision {head_revision()}: "
                         f"run 'tuner db upgrade --storage {db}'")
    assert snapshot(db) == before


def test_tables_without_a_revision_are_refused(db):
    _execute(db, f"DELETE FROM {VERSION_TABLE}")
    before = snapshot(db)
    result = cli("study", "list", "--storage", db)
    assert_error(result, f"database holds tuner tables (tuner_curves, tuner_studies, tuner_workers) but no revision "
                         f"in {VERSION_TABLE}: it was not made by 'tuner db upgrade'; move them away or drop them")
    assert snapshot(db) == before


# ---- study names ---------------------------------------------------------------------------------------

NAME_RULE = "is not allowed: use 1 to 128 characters from A-Z a-z 0-9 . _ -, the first a letter or a digit"


@pytest.mark.parametrize(("name", "shown"), [
    ("[bold]x[/]", "'[bold]x[/]'"),
    ("[link=http://evil]click[/link]", "'[link=http://evil]click[/link]'"),
    ("\x1b]8;;http://evil\x07click\x1b]8;;\x07", "'\\x1b]8;;http://evil\\x07click\\x1b]8;;\\x07'"),
    ("over\rwrite\x08", "'over\\rwrite\\x08'"),
    ("x" * 600, f"'{'x' * 60}...' (600 characters)"),  # past Optuna's 512-character column
])
def test_a_name_outside_the_rule_is_refused_before_anything_is_stored(db, tmp_path, name, shown):
    spec = spec_for(tmp_path, "synthetic_classification", name="fine")
    before = snapshot(db)
    run = cli if name.startswith("[bold]") else tuner_in_process
    assert_error(run("study", "create", str(spec), "--name", name, "--storage", db), f"study name {shown} {NAME_RULE}", 2)
    assert snapshot(db) == before


def test_a_name_in_the_spec_outside_the_rule_is_refused(db, tmp_path):
    spec = write(tmp_path / "named.toml", BASE.format(name="\\u001b[2Jgone", source="synthetic_classification", target=""))
    create_fails(db, spec, f"{spec}: study.name: '\\x1b[2Jgone' {NAME_RULE}", 2, in_process=True)


# ---- inputs that would exhaust the machine ------------------------------------------------------------

def test_a_fifo_as_spec_is_refused_without_blocking(db, tmp_path):
    fifo = tmp_path / "spec.toml"
    os.mkfifo(fifo)
    create_fails(db, fifo, f"{fifo}: is a FIFO, not a spec file", 2)  # the real process; a hang times out


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a character device"), ("/dev/stdin", None)])
def test_a_device_as_spec_is_refused(db, path, kind):
    kind = kind or ("a FIFO" if Path("/dev/stdin").resolve().is_fifo() else "a character device")
    create_fails(db, Path(path), f"{path}: is {kind}, not a spec file", 2, in_process=True)


def test_a_spec_file_over_one_mebibyte_is_refused(db, tmp_path):
    spec = spec_for(tmp_path, "synthetic_classification", name="big")
    spec.write_text(spec.read_text() + "#" * (2 * 1024 * 1024) + "\n")
    create_fails(db, spec, f"{spec}: larger than the 1048576 bytes (1 MiB) a spec may hold", 2, in_process=True)


NUMBER_CASES = {  # section, key, value, message
    "seed": ("study", "seed", "1099511627776", "study.seed: must be <= 4294967295, got 1099511627776"),
    "n_trials": ("study", "n_trials", "1000000000000", "study.n_trials: must be <= 1000000, got 1000000000000"),
    "time_budget": ("study", "time_budget", "1e30", "study.time_budget: must be <= 2592000, got 1e+30"),
    "epochs": ("train", "epochs", "10000000", "train.epochs: must be <= 100000, got 10000000"),
    "batch_size": ("train", "batch_size", "4294967296", "train.batch_size: must be <= 1048576, got 4294967296"),
    "width": ("model", "hidden", "[1000000]", "model.hidden[0]: must be <= 65536, got 1000000"),
    "bias_value": ("model", "bias_value", "nan", "model.bias_value: must be a finite number, got nan"),
}


def with_key(text: str, section: str, key: str, value: str) -> str:
    """The spec text with `key = value` in `[section]`, replacing the key's line where there is one."""
    line = re.compile(rf"^{key} = .*$", re.MULTILINE)
    if line.search(text):
        return line.sub(f"{key} = {value}", text)
    return text.replace(f"[{section}]\n", f"[{section}]\n{key} = {value}\n", 1)


@pytest.mark.parametrize("case", sorted(NUMBER_CASES))
def test_a_spec_number_out_of_its_bounds_is_refused(db, tmp_path, case):
    section, key, value, message = NUMBER_CASES[case]
    spec = write(tmp_path / f"{case}.toml",
                 with_key(BASE.format(name=case, source="synthetic_classification", target=""), section, key, value))
    create_fails(db, spec, f"{spec}: {message}", 2, in_process=case != "seed")


def test_a_network_larger_than_the_free_memory_is_refused_at_create_and_run(db, tmp_path):
    from tuner.study.budget import format_bytes, study_data_shape, training_memory
    from tuner.study.spec import load_spec

    spec = write(tmp_path / "huge.toml", BASE.format(name="huge", source="synthetic_classification", target="")
                 .replace("hidden = [8]", "hidden = [65536, 65536, 65536]"))
    need = training_memory(load_spec(spec), study_data_shape(load_spec(spec)))
    expected = (rf"error: {re.escape(str(spec))}: training this network \({need.n_params:,} parameters\) needs about "
                rf"{re.escape(format_bytes(need.total))} of memory at its peak, more than the [\d.]+ [KMGT]iB "
                r"available on this machine; use fewer or narrower hidden layers or a smaller train.batch_size\n")
    before = snapshot(db)
    for command in ("study", "create"), ("run",):
        result = cli(*command, str(spec), "--storage", db)
        assert (result.returncode, result.stdout) == (2, "") and re.fullmatch(expected, result.stderr), result.stderr
    assert snapshot(db) == before


OPTION_CASES = {
    "grace_period": (("worker", "existing", "--grace-period", str(10**30)), "--grace-period", 86400, "worker"),
    "heartbeat": (("worker", "existing", "--heartbeat-interval", str(10**30)), "--heartbeat-interval", 3600, "worker"),
    "timeout_inf": (("worker", "existing", "--timeout", "inf"), "--timeout", 2592000, "worker"),
    "timeout_nan": (("worker", "existing", "--timeout", "nan"), "--timeout", 2592000, "worker"),
    "n_trials": (("worker", "existing", "-n", str(10**12)), "--n-trials' / '-n", 1000000, "worker"),
    "jobs": (("worker", "existing", "--jobs", str(10**6)), "--jobs' / '-j", MAX_JOBS, "worker"),
    "run_jobs": (("run", "SPEC", "--jobs", str(10**6)), "--jobs' / '-j", MAX_JOBS, "run"),
    "cleanup": (("study", "cleanup", "existing", "--grace-period", str(10**30)), "--grace-period", 86400,
                "study cleanup"),
    "top": (("report", "existing", "--out", "r", "--top", str(10**6)), "--top' / '-k", 100, "report"),
    "refresh": (("dashboard", "--refresh", "1e300"), "--refresh", 86400, "dashboard"),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_an_option_out_of_its_bounds_is_one_line(db, tmp_path, case):
    args, option, bound, command = OPTION_CASES[case]
    spec = spec_for(tmp_path, "synthetic_classification", name="fine")
    args = tuple(str(spec) if a == "SPEC" else a for a in args)
    before = snapshot(db)
    run = cli if case == "grace_period" else tuner_in_process
    assert_error(run(*args, "--storage", db),
                 f"Invalid value for '{option}': Input should be less than or equal to {bound} "
                 f"(see 'tuner {command} --help')", 2)
    assert snapshot(db) == before


def test_jobs_says_its_bound_in_the_help():
    result = tuner_in_process("worker", "--help")
    assert f"At most {MAX_JOBS}: 4 x this machine's cores." in " ".join(result.stdout.replace("│", " ").split())


# ---- SQLite paths that are not a database ---------------------------------------------------------------

READ_COMMANDS = [("study", "show", "x"), ("study", "list"), ("study", "export", "x", "--out", "x.csv"),
                 ("report", "x", "--out", "r"), ("db", "current"), ("study", "cleanup", "x"),
                 ("study", "delete", "x", "--yes"), ("worker", "x")]


def _directory(tmp: Path) -> tuple[Path, str]:
    (tmp / "dir.db").mkdir()
    return tmp / "dir.db", "no database at sqlite:///{p}: {p} is a directory, not a database file"


def _fifo(tmp: Path) -> tuple[Path, str]:
    os.mkfifo(tmp / "fifo.db")
    return tmp / "fifo.db", "no database at sqlite:///{p}: {p} is a FIFO, not a database file"


def _too_long(tmp: Path) -> tuple[Path, str]:
    return tmp / ("n" * 300 + ".db"), "cannot open the database at sqlite:///{p}: {p}: File name too long"


def _under_a_file(tmp: Path) -> tuple[Path, str]:
    (tmp / "plain").write_text("a file")
    return tmp / "plain" / "x.db", "no database at sqlite:///{p}: {p} does not exist"


def _not_a_database(tmp: Path) -> tuple[Path, str]:
    (tmp / "junk.db").write_bytes(b"not a database\n" * 100)
    return tmp / "junk.db", "cannot connect to sqlite:///{p}: file is not a database"


PATH_KINDS = {"directory": _directory, "fifo": _fifo, "too_long": _too_long, "under_a_file": _under_a_file,
              "not_a_database": _not_a_database}


@pytest.mark.parametrize("kind", sorted(PATH_KINDS))
def test_a_sqlite_path_that_is_no_database_is_the_same_line_for_every_command(tmp_path, kind):
    place = tmp_path / "place"
    place.mkdir()
    path, message = PATH_KINDS[kind](place)
    listing = sorted(p.name for p in place.iterdir())
    content = path.read_bytes() if kind == "not_a_database" else None
    for i, command in enumerate(READ_COMMANDS):
        run = cli if i == 0 else tuner_in_process
        assert_error(run(*command, "--storage", f"sqlite:///{path}"), message.format(p=path))
    assert sorted(p.name for p in place.iterdir()) == listing  # no file, journal or lock appeared
    assert content is None or path.read_bytes() == content


# ---- export: the whole file or none of it -----------------------------------------------------------------

def test_an_export_into_a_missing_directory_is_one_line(db, tmp_path):
    out = tmp_path / "missing" / "trials.csv"
    assert_error(cli("study", "export", "existing", "--out", str(out), "--storage", db),
                 f"{out}: no directory {out.parent} to write into")
    assert not out.parent.exists()


def test_an_export_to_a_full_device_is_one_line(db):
    before = snapshot(db)
    assert_error(cli("study", "export", "existing", "--out", "/dev/full", "--force", "--storage", db),
                 "cannot write /dev/full: No space left on device")
    assert snapshot(db) == before


def _file_size_limit(limit: int):
    def apply() -> None:  # in the child: a write past `limit` bytes fails with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_an_export_that_runs_out_of_space_leaves_no_partial_file(pg_url, write_spec, tmp_path):
    """PostgreSQL, so that the child writes no database file of its own under the limit."""
    assert cli("run", str(write_spec("full", n_trials=2, epochs=1)), "--storage", pg_url, "--quiet").returncode == 0
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "trials.csv").write_text("the previous export\n")
    env = {k: v for k, v in os.environ.items() if k != "TUNER_STORAGE"}
    result = subprocess.run(tuner_cmd("study", "export", "full", "--out", str(out_dir / "trials.csv"), "--force",
                                      "--storage", pg_url), capture_output=True, text=True, env=env, timeout=60,
                            preexec_fn=_file_size_limit(64), check=False)
    assert_error(result, f"cannot write {out_dir / 'trials.csv'}: File too large")
    assert [p.name for p in out_dir.iterdir()] == ["trials.csv"]  # no part file left behind
    assert (out_dir / "trials.csv").read_text() == "the previous export\n"  # and the old one is whole


# ---- arbitrary junk ----------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402 - the property tests below only
from hypothesis import strategies as st  # noqa: E402

from tuner.errors import SpecError  # noqa: E402
from tuner.study.spec import parse_spec  # noqa: E402

_toml_values = st.recursive(
    st.none().map(lambda _: "true") | st.integers().map(str) | st.floats().map(lambda f: repr(f).replace("inf", "inf"))
    | st.text(max_size=8).map(lambda s: '"' + s.replace("\\", "").replace('"', "") + '"'),
    lambda inner: st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")
    | st.dictionaries(st.sampled_from(["low", "high", "log", "step", "x"]), inner, max_size=3).map(
        lambda d: "{ " + ", ".join(f"{k} = {v}" for k, v in d.items()) + " }"),
    max_leaves=6,
)
_keys = st.sampled_from(["name", "n_trials", "seed", "source", "hidden", "epochs", "optimizer", "eps0", "alpha",
                         "init", "init_scale", "objective", "time_budget", "junk"])
_sections = st.sampled_from(["study", "data", "model", "train", "search", "other"])
_toml = st.lists(st.tuples(_sections, st.lists(st.tuples(_keys, _toml_values), max_size=4)), max_size=4).map(
    lambda secs: "\n".join(f"[{s}]\n" + "\n".join(f"{k} = {v}" for k, v in kv) for s, kv in secs))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=200))
def test_arbitrary_text_never_escapes_as_anything_but_a_spec_error(text):
    try:
        parse_spec(text, source="junk.toml")
    except SpecError as err:
        assert "\n" not in str(err) and str(err).startswith("junk.toml: ")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_toml)
def test_toml_shaped_junk_never_escapes_as_anything_but_a_spec_error(text):
    try:
        parse_spec(text, source="junk.toml")
    except SpecError as err:
        assert "\n" not in str(err) and str(err).startswith("junk.toml: ")
