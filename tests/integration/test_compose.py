"""docker-compose.yml and the image: accepted by `docker compose config`, and every service's command works here.

There is no Docker engine on the test machine, so each service's command (with its environment) is run as a
process against the local PostgreSQL, and the workers' through a local PgBouncer with compose/pgbouncer.ini's
settings, instead of in a container: the compose file's commands, healthchecks and secrets are what is
tested, not the images. Also: the images and the Python dependencies are pinned to exact versions, the
database password is a secret file that no configuration or environment shows, the example password is
refused, and no tuner service restarts without bound.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import optuna
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sqlalchemy.engine import make_url

from tests.conftest import bench_module
from tests.integration.conftest import wait_for
from tests.integration.test_dashboard_browser import answers, free_port, get_json

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SECRET = "/run/secrets/db_password"  # where compose mounts the db_password secret
TUNER_SERVICES = ("migrate", "create", "worker", "dashboard")
EXACT_IMAGE = re.compile(r"^[\w./-]+(:\d+\.\d+(\.\d+)?(-[\w.-]+)?|@sha256:[0-9a-f]{64})$")
_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: $VAR, ${VAR}, ${VAR:-default}, ${VAR:?error}, $$ for a '$'."""

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3)
        value = env.get(name)
        if operator in (":-", "-") and (value is None or (operator == ":-" and value == "")):
            return argument
        if operator in (":?", "?") and (value is None or (operator == ":?" and value == "")):
            raise AssertionError(f"{name}: {argument}")
        return value or ""

    return _VARIABLE.sub(substitute, text)


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, dict]:
    return compose()["services"]


def compose_cli() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_the_services_and_their_wiring():
    s = services()
    assert set(s) == {"password-check", "postgres", "pgbouncer", "migrate", "create", "worker", "dashboard"}
    assert "healthcheck" in s["postgres"] and "healthcheck" in s["pgbouncer"] and "healthcheck" in s["dashboard"]
    assert s["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert "pgdata" in compose()["volumes"]
    assert s["postgres"]["depends_on"] == {"password-check": {"condition": "service_completed_successfully"}}
    assert s["migrate"]["command"] == ["tuner", "db", "upgrade"]
    assert s["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert s["create"]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    # PgBouncer opens its server connections after the migration stored the session timeouts for the role
    assert s["pgbouncer"]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert s["pgbouncer"]["volumes"] == ["./compose/pgbouncer.ini:/etc/pgbouncer/pgbouncer.ini:ro"]
    assert s["worker"]["command"][:2] == ["tuner", "worker"]
    assert s["worker"]["depends_on"] == {"create": {"condition": "service_completed_successfully"},
                                         "pgbouncer": {"condition": "service_healthy"}}
    assert "container_name" not in s["worker"] and "ports" not in s["worker"]  # so that --scale works
    assert s["dashboard"]["ports"] == ["127.0.0.1:8080:8080"]  # the host's loopback only: no authentication
    assert s["dashboard"]["command"][s["dashboard"]["command"].index("--host") + 1] == "0.0.0.0"


def test_the_workers_go_through_pgbouncer_and_the_one_shot_jobs_directly():
    s = services()
    worker = make_url(interpolate(s["worker"]["environment"]["TUNER_STORAGE"], read_env_file(ENV_EXAMPLE)))
    assert (worker.host, worker.port, dict(worker.query)) == ("pgbouncer", 6432, {"pooler": "pgbouncer"})
    for name in ("migrate", "create", "dashboard"):
        direct = make_url(interpolate(s[name]["environment"]["TUNER_STORAGE"], read_env_file(ENV_EXAMPLE)))
        assert (direct.host, direct.port, dict(direct.query)) == ("postgres", 5432, {}), name
    settings = bench_module("pgbouncer").pgbouncer_settings()
    assert settings["pool_mode"] == "transaction" and settings["listen_port"] == "6432"
    assert "ignore_startup_parameters" not in settings  # tuner sends no `options`: nothing is silently dropped


def test_every_image_is_pinned_to_an_exact_version():
    base = re.search(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    images = {base} | {s["image"] for name, s in services().items() if "build" not in s}
    assert images == {"python:3.11.7-slim-bookworm", "postgres:15.20-bookworm", "edoburu/pgbouncer:1.18.0"}
    for image in images:
        assert EXACT_IMAGE.match(image), image
    assert base.startswith(f"python:{sys.version_info.major}.{sys.version_info.minor}.")  # constraints.txt's


def test_the_image_installs_the_pinned_dependencies_of_the_package():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'RUN pip install -c constraints.txt ".[postgres,fast]"' in dockerfile
    assert re.search(r"^COPY .*constraints\.txt", dockerfile, re.M)
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", requirement), requirement
            name, version = requirement.split("==")
            pins[canonicalize_name(name)] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    runtime = [Requirement(r) for r in project["dependencies"] + extras["postgres"] + extras["fast"]]
    assert {canonicalize_name(r.name) for r in runtime} <= set(pins)
    assert pins["psycopg-binary"] == pins["psycopg"]
    assert not {"pytest", "torch", "hypothesis", "pyarrow", "pymysql"} & set(pins)  # development and other extras


def test_the_password_is_a_secret_file_never_a_variable():
    text = COMPOSE.read_text()
    assert "POSTGRES_PASSWORD:" not in text and "POSTGRES_PASSWORD=" not in text
    assert not [key for key in read_env_file(ENV_EXAMPLE) if "PASSWORD" in key and not key.endswith("_FILE")]
    assert compose()["secrets"] == {"db_password": {"file": "${DB_PASSWORD_FILE:-./secrets/db_password}"}}
    s = services()
    assert s["postgres"]["environment"] == {"POSTGRES_PASSWORD_FILE": SECRET}
    for name in ("password-check", "postgres", "pgbouncer", *TUNER_SERVICES):
        assert s[name]["secrets"] == ["db_password"], name
    for name in TUNER_SERVICES:
        assert s[name]["environment"]["TUNER_DB_PASSWORD_FILE"] == SECRET, name
        assert make_url(interpolate(s[name]["environment"]["TUNER_STORAGE"], read_env_file(ENV_EXAMPLE))).password is None


def test_dot_env_and_the_secret_are_ignored_by_git_and_docker():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in (".env", "secrets/db_password"):
        result = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)
        assert result.returncode == 0, f"{path} must be git-ignored (it holds or names the database password)"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and "secrets" in ignored


def test_no_tuner_service_restarts_without_bound():
    s = services()
    for name, service in s.items():
        policy = service.get("restart", "no")
        if name in ("postgres", "pgbouncer"):  # the infrastructure comes back after a crash, as a database should
            assert policy == "unless-stopped", name
        else:
            assert policy == "no" or re.fullmatch(r"on-failure:[1-5]", policy), (name, policy)
    assert s["worker"]["restart"] == "on-failure:3" and s["dashboard"]["restart"] == "on-failure:3"


def _project(tmp_path: Path, password: str) -> Path:
    """A copy of the compose project with .env from .env.example and the secret file."""
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "compose").mkdir()
    shutil.copy(ROOT / "compose" / "pgbouncer.ini", tmp_path / "compose" / "pgbouncer.ini")
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    (tmp_path / "secrets").mkdir(mode=0o700)
    (tmp_path / "secrets" / "db_password").write_text(password + "\n")
    return tmp_path / "secrets" / "db_password"


def test_compose_accepts_the_file_and_never_shows_the_password(tmp_path):
    cli = compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    password = secrets.token_hex(16)
    secret = _project(tmp_path, password)
    result = subprocess.run([*cli, "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert password not in result.stdout + result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert rendered["secrets"]["db_password"]["file"] == str(secret)
    services_ = rendered["services"]
    example = read_env_file(ENV_EXAMPLE)
    assert services_["worker"]["command"] == ["tuner", "worker", example["STUDY"]]
    assert make_url(services_["worker"]["environment"]["TUNER_STORAGE"]).host == "pgbouncer"
    assert make_url(services_["dashboard"]["environment"]["TUNER_STORAGE"]).host == "postgres"
    assert services_["worker"]["restart"] == "on-failure:3"


def password_check(secret: Path) -> subprocess.CompletedProcess:
    """The password-check service's script, run by this machine's sh on `secret`."""
    entrypoint = services()["password-check"]["entrypoint"]
    script = interpolate(entrypoint[2], {}).replace(SECRET, str(secret))
    return subprocess.run([*entrypoint[:2], script], capture_output=True, text=True, timeout=10, check=False)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("change-me", "error: the database password is the example 'change-me': openssl rand -hex 24 > secrets/db_password"),
        ("", "error: the database password file (secret db_password) is empty"),
        ('with "quotes" and spaces', "error: the database password may hold only letters, digits, '-' and '_'"),
    ],
)
def test_the_example_password_is_refused_in_one_line(tmp_path, password, message):
    result = password_check(_project(tmp_path, password))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert "quotes" not in result.stderr  # a refused password is not printed back


def test_a_good_password_passes_the_check(tmp_path):
    result = password_check(_project(tmp_path, secrets.token_hex(24)))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def local_command(service: dict, env: dict[str, str]) -> list[str]:
    """The service's command with compose's variables substituted, `tuner` run by this interpreter."""
    command = [interpolate(str(arg), env) for arg in service["command"]]
    assert command[0] == "tuner"
    return [sys.executable, "-m", "tuner", *command[1:]]


def local_env(service: dict, env: dict[str, str], storage: str, secret: Path) -> dict[str, str]:
    """The service's environment as compose builds it (.env, then `environment:`), on the local database:
    the URL's user, host, port and database are this machine's, its query (`?pooler=pgbouncer`) compose's,
    and the secret is `secret`."""
    result = dict(os.environ, **env)
    result.update({k: interpolate(str(v), env) for k, v in (service.get("environment") or {}).items()})
    composed, local = make_url(result["TUNER_STORAGE"]), make_url(storage)
    assert composed.host in ("postgres", "pgbouncer") and composed.password is None
    result["TUNER_STORAGE"] = composed.set(username=local.username, host=local.host, port=local.port,
                                           database=local.database).render_as_string(hide_password=False)
    assert result["TUNER_DB_PASSWORD_FILE"] == SECRET
    result["TUNER_DB_PASSWORD_FILE"] = str(secret)
    return result


def healthcheck(service: dict, port: int) -> subprocess.CompletedProcess:
    """The service's healthcheck command, run here against `port` instead of the container's."""
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD"
    command = [re.sub(r"\b(8080|6432)\b", str(port), arg) for arg in test[1:]]
    command[0] = sys.executable if command[0] == "python" else shutil.which(command[0]) or command[0]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def test_a_missing_secret_file_stops_a_tuner_service_in_one_line(tmp_path):
    s = services()
    env = read_env_file(ENV_EXAMPLE)
    missing = tmp_path / "no-such-secret"
    result = subprocess.run(local_command(s["migrate"], env), env=local_env(s["migrate"], env,
                            "postgresql+psycopg://tuner@127.0.0.1:1/tuner", missing),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == (f"error: cannot read the database password from TUNER_DB_PASSWORD_FILE={missing}: "
                             "No such file or directory\n")


def test_pgbouncer_takes_its_users_from_the_secret_and_checks_the_password(pg_url, tmp_path):
    # The pgbouncer service's own entrypoint, its paths moved here: it writes the auth file from the secret
    # and starts PgBouncer with compose/pgbouncer.ini (SCRAM for clients), in front of the local server.
    import psycopg

    bouncer = bench_module("pgbouncer")
    binary = bouncer.pgbouncer_binary()
    if binary is None:
        pytest.skip("no pgbouncer binary (apt-get install pgbouncer)")
    password = secrets.token_hex(16)
    secret = _project(tmp_path, password)
    port, users, config = bouncer.free_port(), tmp_path / "userlist.txt", tmp_path / "pgbouncer.ini"
    bouncer.write_config(config, pg_url, {**bouncer.pgbouncer_settings(), **bouncer.here(port, users)})
    script = interpolate(services()["pgbouncer"]["entrypoint"][2], {})
    for there, here in ((SECRET, str(secret)), ("/tmp/userlist.txt", str(users)),
                        ("/etc/pgbouncer/pgbouncer.ini", str(config)),
                        ("exec pgbouncer", " ".join(["exec", binary, *bouncer.as_user()]))):
        assert there in script
        script = script.replace(there, here)
    user = make_url(pg_url).username
    env = dict(os.environ, POSTGRES_USER=user)
    with bouncer.running(["/bin/sh", "-c", script], port, tmp_path / "pgbouncer.log", env=env):
        assert users.stat().st_mode & 0o077 == 0  # the auth file is its owner's alone
        conninfo = f"host=127.0.0.1 port={port} dbname={make_url(pg_url).database} user={user}"
        with psycopg.connect(conninfo, password=password, connect_timeout=5) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(psycopg.OperationalError, match="SASL authentication failed"):
            psycopg.connect(conninfo, password="wrong", connect_timeout=5)
    assert password not in (tmp_path / "pgbouncer.log").read_text()


@pytest.mark.slow
def test_every_services_command_and_healthcheck_runs_here(pg_url, pgbouncer_url, write_spec, tmp_path):
    s = services()
    env = read_env_file(ENV_EXAMPLE)
    env.update(STUDY="compose-tiny", SPEC=str(write_spec("compose-tiny", n_trials=2, epochs=2)))
    password = secrets.token_hex(16)  # the local server trusts: any password is accepted, none is needed
    (tmp_path / "project").mkdir()
    secret = _project(tmp_path / "project", password)
    through_pgbouncer = pgbouncer_url()  # compose/pgbouncer.ini's settings, in front of pg_url

    def run(name: str, storage: str, *extra: str) -> subprocess.CompletedProcess:
        service_env = local_env(s[name], env, storage, secret)
        assert not [k for k, v in service_env.items() if password in v]  # the secret stays in its file
        result = subprocess.run([*local_command(s[name], env), *extra], env=service_env, capture_output=True,
                                text=True, timeout=180, check=False)
        assert result.returncode == 0, f"{name}: {result.stderr}"
        assert password not in result.stdout + result.stderr
        return result

    run("migrate", pg_url)
    run("create", pg_url)
    run("create", pg_url)  # restarting the stack finds the study and reuses it
    run("worker", through_pgbouncer, "--n-trials", "2")
    study = optuna.load_study(study_name="compose-tiny", storage=pg_url)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 2

    pgbouncer_port = make_url(through_pgbouncer).port
    if shutil.which("pg_isready") is None:
        pytest.skip("no pg_isready (PostgreSQL's client programs) for pgbouncer's healthcheck")
    assert healthcheck(s["pgbouncer"], pgbouncer_port).returncode == 0
    assert healthcheck(s["pgbouncer"], free_port()).returncode != 0  # nothing listens there

    command = local_command(s["dashboard"], env)
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = "127.0.0.1"  # the container's 0.0.0.0 is not needed on this machine
    dashboard = subprocess.Popen(command, env=local_env(s["dashboard"], env, pg_url, secret),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: dashboard.poll() is not None or answers(f"{base}/api/studies"), timeout=60)
        assert dashboard.poll() is None, dashboard.communicate()
        assert [x["study_name"] for x in get_json(f"{base}/api/studies")["study_summaries"]] == ["compose-tiny"]
        assert healthcheck(s["dashboard"], port).returncode == 0
        assert healthcheck(s["dashboard"], free_port()).returncode != 0  # nothing answers there
    finally:
        dashboard.send_signal(signal.SIGTERM)
        out, err = dashboard.communicate(timeout=10)
    assert dashboard.returncode == 0, err
    assert password not in out + err
