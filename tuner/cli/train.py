"""`tuner train`: a study's trial trained again, checked against its stored curve, saved as a model file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tuner.cli._common import (
    JsonOption,
    NameArgument,
    Output,
    QuietOption,
    StorageOption,
    TrialOption,
    quiet_optuna,
    safe,
    stderr,
    stdout,
    storage_url,
)
from tuner.errors import ReplayError
from tuner.text import fmt, printable

if TYPE_CHECKING:  # NumPy, Optuna and the replay load when a trial is trained, not for --help
    from tuner.nn.train import EpochRecord
    from tuner.study.replay import Replay


def train(
    name: NameArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="The model file to write (.npz).")],
    trial: TrialOption = "best",
    storage: StorageOption = None,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, max=4096, show_default=False,
                                 help="BLAS threads to train with (default: those the trial ran with).")
    ] = None,
    allow_mismatch: Annotated[
        bool, typer.Option("--allow-mismatch", help="Write the model even if the replay differs from the stored "
                           "curve (a warning says where), and exit 0.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Train a study's trial again, check it against the trial's stored curve, and save the trained model.

    The trial's stored configuration (its parameters, the study's spec and data split, its seed and BLAS
    threads) is trained again the way its worker trained it, and the learning curve is compared with the
    stored one exactly, epoch by epoch. A difference is an error naming the first epoch and metric that
    differ (--allow-mismatch writes the model anyway). The weights and the configuration are written to
    OUT (`tuner.nn.load_model` reads it); with `data.test_fraction` in the spec, the test split's loss and
    accuracy are printed too.

    Example: tuner train digits-mlp --trial best --out model.npz
    """
    from tuner.cli._files import refuse_to_overwrite
    from tuner.nn.model_file import save_model
    from tuner.storage import open_study
    from tuner.study.replay import pick_trial, replay_meta, replay_trial, stored_spec

    output = Output(quiet, as_json)
    refuse_to_overwrite(out, force=force)
    quiet_optuna()
    url = storage_url(storage)
    handle = open_study(url, name)
    stored_spec(handle)
    picked = pick_trial(handle, trial)
    talk = output.human
    if talk:
        value = "" if picked.value is None else f", value {fmt(picked.value)}"
        stderr.print(f"training trial {picked.number} of study '{printable(name)}' again "
                     f"({picked.state.name}{value}) from {safe(url)}")
    replay = replay_trial(handle, picked, threads=threads, on_epoch=_EpochLine(talk))
    _check(replay, allow_mismatch=allow_mismatch, quiet=quiet, threads_given=threads is not None)
    save_model(out, replay.run.model, replay_meta(replay))
    output.emit(_document(replay, out), lambda: _print_outcome(replay, out))


class _EpochLine:
    """One progress line per epoch on stderr."""

    def __init__(self, talk: bool) -> None:
        self.talk = talk

    def __call__(self, record: EpochRecord) -> None:
        if self.talk:
            accuracy = "" if record.val_accuracy is None else f", val_accuracy {fmt(record.val_accuracy)}"
            stderr.print(f"epoch {record.epoch}: train_loss {fmt(record.train_loss)}, "
                         f"val_loss {fmt(record.val_loss)}{accuracy}")


def _check(replay: Replay, *, allow_mismatch: bool, quiet: bool, threads_given: bool) -> None:
    """The note on what could not be compared, and the first difference: an error unless allowed."""
    if replay.note is not None and not quiet:
        stderr.print(f"note: {printable(replay.note)}")
    if replay.difference is None:
        return
    config = replay.trial.user_attrs.get("config")
    recorded = isinstance(config, dict) and config.get("blas_threads") is not None
    hint = "" if recorded or threads_given else " (the trial did not record its BLAS threads: try --threads 1)"
    what = f"the replay of trial {replay.trial.number} differs from it at {replay.difference.describe()}{hint}"
    if not allow_mismatch:
        raise ReplayError(f"{what}; no model written (--allow-mismatch writes it anyway)")
    if not quiet:
        stderr.print(f"warning: {printable(what)}; the model is written anyway (--allow-mismatch)")


def _verdict(replay: Replay) -> str:
    if replay.difference is not None:
        return "differs from the stored trial"
    if replay.verified:
        return f"reproduces the stored curve bit for bit ({replay.compared} epochs compared)"
    return "not verified (no stored curve to compare)"


def _print_outcome(replay: Replay, out: Path) -> None:
    stdout.print(f"trial {replay.trial.number} of study '{printable(replay.study)}': {_verdict(replay)}")
    final = replay.result.final
    if final is not None:
        accuracy = "" if final.val_accuracy is None else f", val_accuracy {fmt(final.val_accuracy)}"
        stdout.print(f"final epoch {final.epoch}: val_loss {fmt(final.val_loss)}{accuracy}")
    if replay.test is not None:
        loss, accuracy = replay.test
        acc = "" if accuracy is None else f", accuracy {fmt(accuracy)}"
        stdout.print(f"test split ({len(replay.data.x_test)} examples): loss {fmt(loss)}{acc}")
    model = replay.run.model
    sizes = "-".join(map(str, model.layer_sizes))
    stdout.print(f"wrote {printable(str(out))} ({sizes} {model.activation}, {model.dtype.name})")


def _document(replay: Replay, out: Path) -> dict[str, Any]:
    from tuner.study.replay import replay_meta

    meta = replay_meta(replay)
    keys = ("study", "trial", "state", "value", "verified", "compared_epochs", "difference", "epochs", "final",
            "test", "seed", "blas_threads", "params")
    return {**{k: meta[k] for k in keys}, "note": replay.note, "out": str(out)}


def register(app: typer.Typer) -> None:
    """Add `train` to the root app."""
    app.command("train")(train)
