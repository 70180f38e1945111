"""--json and --quiet on every command that prints: one JSON document on stdout, or nothing but errors."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tuner.cli import app
from tuner.cli._progress import TrialProgress, clock, time_left
from tuner.study.worker.options import Progress


def tuner(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def done(sqlite_url, write_spec, tmp_path):
    """A tiny finished study (4 trials) and its `tuner run --json` document."""
    result = tuner("run", write_spec("tiny", n_trials=4, epochs=2), "--storage", sqlite_url, "--json")
    assert result.exit_code == 0, result.stderr
    return sqlite_url, json.loads(result.stdout)


def test_run_json_has_the_best_trial_and_the_summary_per_optimizer(done):
    url, doc = done
    best = doc["best_trial"]
    assert set(best) == {"number", "value", "params"} and 0 <= best["value"] <= 1
    assert {"optimizer", "trials", "best", "median"} <= set(doc["optimizers"][0])
    assert sum(r["trials"] for r in doc["optimizers"]) == 4
    assert (doc["study"], doc["created"], doc["run"]["reason"], doc["direction"]) == ("tiny", True, "done", "maximize")


def _commands(url: str, spec: str, out) -> list[tuple[str, ...]]:
    return [
        ("study", "list", "--storage", url),
        ("study", "show", "tiny", "--storage", url),
        ("study", "check", spec),
        ("study", "export", "tiny", "--out", out / "t.csv", "--force", "--storage", url),
        ("study", "cleanup", "tiny", "--storage", url),
        ("study", "create", spec, "--load-if-exists", "--storage", url),
        ("worker", "tiny", "--storage", url),
        ("run", spec, "--storage", url),
        ("report", "tiny", "--out", out / "report", "--force", "--storage", url),
        ("probe", "init", spec, "--batch-size", "32"),
        ("probe", "lr", spec, "--optimizer", "sgd", "--steps", "20", "--repeats", "1"),
        ("db", "current", "--storage", url),
        ("db", "upgrade", "--storage", url),
    ]


def test_every_command_prints_one_json_document_or_nothing(done, write_spec, tmp_path):
    url, _ = done
    spec = write_spec("tiny", n_trials=4, epochs=2)
    for args in _commands(url, str(spec), tmp_path):
        as_json = tuner(*args, "--json")
        assert as_json.exit_code == 0, (args, as_json.stderr)
        json.loads(as_json.stdout)  # one document, nothing else on stdout
        assert as_json.stdout.count("\n") == 1, args
        quiet = tuner(*args, "--quiet")
        assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", ""), args


def test_delete_and_downgrade_too(done):
    url, _ = done
    deleted = tuner("study", "delete", "tiny", "--yes", "--storage", url, "--json")
    assert json.loads(deleted.stdout) == {"study": "tiny", "deleted": True}
    down = tuner("db", "downgrade", "base", "--yes", "--storage", url, "--quiet")
    assert (down.exit_code, down.stdout, down.stderr) == (0, "", "")


def test_errors_stay_one_line_on_stderr_with_json(done):
    url, _ = done
    result = tuner("study", "show", "nope", "--storage", url, "--json")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: no study named 'nope' (studies: tiny)\n"


def test_json_and_quiet_exclude_each_other(done):
    url, _ = done
    result = tuner("study", "list", "--storage", url, "--json", "--quiet")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and "--json and --quiet exclude each other" in result.stderr


# ---- the progress line ---------------------------------------------------------------------------------

def test_time_left_is_the_remaining_trials_at_the_rate_since_the_start():
    assert time_left(total=10, finished=6, start_finished=2, elapsed=8.0) == pytest.approx(8.0)
    assert time_left(total=10, finished=2, start_finished=2, elapsed=8.0) is None  # none finished yet here
    assert (clock(None), clock(65.4), clock(3725)) == ("-", "1:05", "1:02:05")


def _progress(finished: int, state: str, reason: str | None = None) -> Progress:
    counts = {"COMPLETE": finished, **({"FAIL": 1} if state == "FAIL" else {})}
    return Progress(total=4, finished=finished, running=0, counts=counts, done_here=finished, best=0.5,
                    last_state=state, last_reason=reason)


def test_the_progress_lines_show_times_and_each_failure_with_its_reason(capsys):
    with TrialProgress(4, "tiny") as progress:
        progress.update(_progress(1, "COMPLETE"))
        progress.update(_progress(1, "FAIL", "diverged: loss is nan at epoch 2"))
        progress.update(_progress(2, "COMPLETE"))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("tiny: 1/4 trials, best 0.5 (complete 1), elapsed 0:00, left ~")
    assert lines[1] == "tiny: a trial failed: diverged: loss is nan at epoch 2"
    assert lines[2].startswith("tiny: 1/4 trials, best 0.5 (complete 1 fail 1), elapsed")
    assert "left ~" in lines[3] and len(lines) == 4


def test_quiet_progress_prints_nothing(capsys):
    with TrialProgress(4, "tiny", quiet=True) as progress:
        progress.update(_progress(1, "FAIL", "boom"))
    assert capsys.readouterr().err == ""


def test_exports_carry_the_best_epoch_and_the_start_and_end_times(done, tmp_path):
    import pandas as pd

    url, _ = done
    for fmt, read in (("csv", pd.read_csv), ("json", pd.read_json), ("parquet", pd.read_parquet)):
        out = tmp_path / f"t.{fmt}"
        assert tuner("study", "export", "tiny", "--format", fmt, "--out", out, "--storage", url, "--quiet").exit_code == 0
        frame = read(out)
        assert {"best_epoch", "datetime_start", "datetime_complete"} <= set(frame), fmt
        assert set(frame["best_epoch"].dropna()) <= {1, 2}
        start, end = pd.to_datetime(frame["datetime_start"]), pd.to_datetime(frame["datetime_complete"])
        assert (end >= start).all(), fmt


def test_the_dashboard_prints_its_address_as_one_json_line(done):
    url, _ = done
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tuner", "dashboard", "--storage", url, "--port", str(port),
                               "--no-notes", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert json.loads(line) == {"url": f"http://127.0.0.1:{port}/dashboard/", "storage": url}
    assert (server.returncode, out, err) == (0, "", "")
