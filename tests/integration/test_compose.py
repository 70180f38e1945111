"""docker-compose.yml: accepted by `docker compose config`, and every service's command works here.

There is no Docker engine on the test machine, so each service's command (with its environment) is run as a
process against the local PostgreSQL instead of in a container: the compose file's `tuner ...` lines are
what is tested, not the images.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.integration.conftest import wait_for
from tests.integration.test_dashboard_browser import answers, free_port, get_json

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
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


def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def compose_cli() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_the_services_and_their_wiring():
    s = services()
    assert set(s) == {"postgres", "migrate", "create", "worker", "dashboard"}
    assert "healthcheck" in s["postgres"]
    assert s["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert "pgdata" in yaml.safe_load(COMPOSE.read_text())["volumes"]
    assert s["migrate"]["command"] == ["tuner", "db", "upgrade"]
    assert s["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert s["create"]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert s["worker"]["command"][:2] == ["tuner", "worker"]
    assert s["worker"]["depends_on"] == {"create": {"condition": "service_completed_successfully"}}
    assert "container_name" not in s["worker"] and "ports" not in s["worker"]  # so that --scale works
    assert s["dashboard"]["ports"] == ["127.0.0.1:8080:8080"]  # the host's loopback only: no authentication
    assert s["dashboard"]["command"][s["dashboard"]["command"].index("--host") + 1] == "0.0.0.0"


def test_secrets_come_from_the_env_file_not_the_compose_file():
    example = read_env_file(ENV_EXAMPLE)
    assert {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "STUDY"} <= set(example)
    for name, service in services().items():
        assert service["env_file"] == ".env", name
        for value in (service.get("environment") or {}).values():
            assert "${POSTGRES_PASSWORD" in value or "PASSWORD" not in value
    assert example["POSTGRES_PASSWORD"] not in COMPOSE.read_text()
    storage = interpolate(services()["worker"]["environment"]["TUNER_STORAGE"], example)
    assert make_url(storage).password == example["POSTGRES_PASSWORD"]


def test_dot_env_is_ignored_by_git_and_docker():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert result.returncode == 0, ".env must be git-ignored (it holds the database password)"
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()


def test_compose_accepts_the_file(tmp_path):
    cli = compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    result = subprocess.run([*cli, "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)["services"]
    example = read_env_file(ENV_EXAMPLE)
    assert rendered["worker"]["command"] == ["tuner", "worker", example["STUDY"]]
    assert make_url(rendered["dashboard"]["environment"]["TUNER_STORAGE"]).host == "postgres"


def local_command(service: dict, env: dict[str, str]) -> list[str]:
    """The service's command with compose's variables substituted, `tuner` run by this interpreter."""
    command = [interpolate(str(arg), env) for arg in service["command"]]
    assert command[0] == "tuner"
    return [sys.executable, "-m", "tuner", *command[1:]]


def local_env(service: dict, env: dict[str, str], storage: str) -> dict[str, str]:
    """The service's environment as compose builds it (.env, then `environment:`), on the local database."""
    result = dict(os.environ, **env)
    result.update({k: interpolate(str(v), env) for k, v in (service.get("environment") or {}).items()})
    assert make_url(result["TUNER_STORAGE"]).host == "postgres"
    result["TUNER_STORAGE"] = storage
    return result


@pytest.mark.slow
def test_every_services_command_runs_here_against_postgresql(pg_url, write_spec):
    s = services()
    env = read_env_file(ENV_EXAMPLE)
    env.update(STUDY="compose-tiny", SPEC=str(write_spec("compose-tiny", n_trials=2, epochs=2)))

    def run(name: str, *extra: str) -> subprocess.CompletedProcess:
        result = subprocess.run([*local_command(s[name], env), *extra], env=local_env(s[name], env, pg_url),
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, f"{name}: {result.stderr}"
        return result

    run("migrate")
    run("create")
    run("create")  # restarting the stack finds the study and reuses it
    run("worker", "--n-trials", "2")
    study = optuna.load_study(study_name="compose-tiny", storage=pg_url)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 2

    command = local_command(s["dashboard"], env)
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = "127.0.0.1"  # the container's 0.0.0.0 is not needed on this machine
    dashboard = subprocess.Popen(command, env=local_env(s["dashboard"], env, pg_url),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: dashboard.poll() is not None or answers(f"{base}/api/studies"), timeout=60)
        assert dashboard.poll() is None, dashboard.communicate()
        assert [x["study_name"] for x in get_json(f"{base}/api/studies")["study_summaries"]] == ["compose-tiny"]
    finally:
        dashboard.send_signal(signal.SIGTERM)
        out, err = dashboard.communicate(timeout=10)
    assert dashboard.returncode == 0, err
