"""`tuner dashboard` as a real process: its REST API, a headless browser on the study page, a port in use."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import urllib.request
from html import unescape
from pathlib import Path

import optuna
import optuna_dashboard
import pytest
from typer.testing import CliRunner

from tests.integration.conftest import tuner_cmd, wait_for
from tuner.analysis.notes import CHART_ID, note_heading
from tuner.cli import app
from tuner.storage.optuna_adapter import stored_chart

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def answers(url: str) -> bool:
    try:
        get_json(url)
    except OSError:
        return False
    return True


def make_study(url: str, write_spec, name: str, n_trials: int) -> None:
    spec = write_spec(name, n_trials=n_trials, epochs=2)
    env = dict(os.environ, TUNER_STORAGE=url, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    subprocess.run(tuner_cmd("study", "create", str(spec), "--quiet"), env=env, check=True)
    subprocess.run(tuner_cmd("worker", name, "--quiet"), env=env, check=True, timeout=120)


def chart_traces(study: optuna.Study) -> int | None:
    """How many curves the stored chart holds; None while there is none or a refresh is midway through it.

    optuna-dashboard saves a chart in chunks, one system attribute each, so a read between two chunk
    writes can join new and old chunks into text that is not JSON.
    """
    text = stored_chart(study, CHART_ID)
    try:
        return None if text is None else len(json.loads(text)["data"])
    except json.JSONDecodeError:
        return None


@pytest.fixture
def dashboard():
    """start(url) -> (base URL, process): `tuner dashboard` on a free port; stopped with SIGTERM after the test."""
    started: list[subprocess.Popen] = []

    def start(url: str, *args: str) -> tuple[str, subprocess.Popen]:
        port = free_port()
        process = subprocess.Popen(tuner_cmd("dashboard", "--port", str(port), *args),
                                   env=dict(os.environ, TUNER_STORAGE=url),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: process.poll() is not None or answers(f"{base}/api/studies"), timeout=60)
        assert process.poll() is None, process.communicate()
        return base, process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=10)


def test_the_api_lists_the_study_and_each_study_gets_its_note(storage_url, write_spec, dashboard):
    make_study(storage_url, write_spec, "dash", n_trials=3)
    base, process = dashboard(storage_url)

    summaries = get_json(f"{base}/api/studies")["study_summaries"]
    assert [s["study_name"] for s in summaries] == ["dash"]
    detail = get_json(f"{base}/api/studies/{summaries[0]['study_id']}?after=0")
    assert len(detail["trials"]) == 3

    study = optuna.load_study(study_name="dash", storage=storage_url)
    note = optuna_dashboard.get_note(study)
    assert note.startswith(note_heading("dash")) and 'name = "dash"' in note

    process.send_signal(signal.SIGTERM)  # what `docker stop` sends: a clean exit
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert f"at {base}/dashboard/ (no authentication; Ctrl-C stops it)" in err


def test_the_curve_chart_follows_trials_finished_while_the_dashboard_runs(sqlite_url, write_spec, dashboard):
    spec = write_spec("live", n_trials=2, epochs=2)
    env = dict(os.environ, TUNER_STORAGE=sqlite_url, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    subprocess.run(tuner_cmd("study", "create", str(spec), "--quiet"), env=env, check=True)
    dashboard(sqlite_url, "--refresh", "0.5")
    study = optuna.load_study(study_name="live", storage=sqlite_url)
    assert stored_chart(study, CHART_ID) is None  # no trial yet: no chart

    subprocess.run(tuner_cmd("worker", "live", "--quiet"), env=env, check=True, timeout=120)
    wait_for(lambda: chart_traces(study) == 2, timeout=30)


def test_a_port_in_use_is_one_line_naming_it_and_exit_1(sqlite_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(tuner_cmd("dashboard", "--storage", sqlite_url, "--port", str(port)),
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr == f"error: port {port} is already in use on 127.0.0.1; pick another with --port\n"
    assert result.stdout == ""


def test_help_says_there_is_no_authentication():
    result = CliRunner().invoke(app, ["dashboard", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "no authentication" in text and "127.0.0.1" in text


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--window-size=1280,900", "--virtual-time-budget=10000", *args],
        capture_output=True, text=True, timeout=120,
    )


def visible_text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", dom)).split())


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent: apt-get install -y chromium")
def test_a_headless_browser_shows_the_study_its_trials_and_its_note(sqlite_url, write_spec, dashboard, tmp_path):
    make_study(sqlite_url, write_spec, "browse", n_trials=4)
    base, _ = dashboard(sqlite_url)
    (summary,) = get_json(f"{base}/api/studies")["study_summaries"]
    study_page = f"{base}/dashboard/studies/{summary['study_id']}"

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard-study.png"
    screenshot.unlink(missing_ok=True)
    shot = chromium(f"--screenshot={screenshot}", study_page, profile=tmp_path / "profile")
    assert screenshot.exists() and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]

    home = visible_text(chromium("--dump-dom", f"{base}/dashboard", profile=tmp_path / "profile").stdout)
    assert "browse" in home
    trials = visible_text(chromium("--dump-dom", f"{study_page}/trials", profile=tmp_path / "profile").stdout)
    assert "browse" in trials and "4 Trials" in trials, trials[:2000]
    note = visible_text(chromium("--dump-dom", f"{study_page}/note", profile=tmp_path / "profile").stdout)
    assert "tuner study browse" in note and 'name = "browse"' in note, note[:2000]
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
