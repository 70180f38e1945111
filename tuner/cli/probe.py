"""`tuner probe ...`: the init-scale guess and the learning-rate probe, run on a spec's network and data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tuner.cli._common import JsonOption, Output, QuietOption, SpecArgument, stdout
from tuner.study.limits import MAX_BATCH_SIZE, MAX_PROBE_STEPS, MAX_RATE, MAX_SEED
from tuner.text import fmt

if TYPE_CHECKING:  # loaded by the commands that run, not for --help
    from rich.console import Console
    from rich.table import Table

    from tuner.nn.data import Dataset
    from tuner.study.spec import StudySpec

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Cheap probes of a spec's initial network: the init-scale guess (LSUV) and the learning-rate range "
    "test.\n\nExample: tuner probe init studies/deep-tanh.toml",
    no_args_is_help=True,
)

BatchSizeOption = Annotated[
    int | None, typer.Option("--batch-size", min=1, max=MAX_BATCH_SIZE,
                             help="Minibatch size (default: the spec's train.batch_size).")
]
SeedOption = Annotated[
    int | None, typer.Option("--seed", min=0, max=MAX_SEED, help="Random seed (default: the spec's study.seed).")
]
WIDE = 160


def _console() -> Console:
    """stdout; when it is not a terminal, a wide console so that tables are not wrapped in files and tests."""
    from rich.console import Console

    return stdout if stdout.is_terminal else Console(highlight=False, markup=False, emoji=False, width=WIDE)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _stats_table(title: str, stats: list[dict], multipliers: list[float] | None = None) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name in ("layer", "fan in -> out", "act", "w std", "pre mean", "pre std", "post mean", "post std",
                 "saturated", "dead", "grad std"):
        table.add_column(name, justify="left" if name in ("fan in -> out", "act") else "right")
    if multipliers is not None:
        table.add_column("multiplier", justify="right")
    for i, s in enumerate(stats):
        row = [
            str(s["layer"]), f"{s['fan_in']} -> {s['fan_out']}", s["activation"], fmt(s["weight_std"]),
            fmt(s["pre_mean"]), fmt(s["pre_std"]), fmt(s["post_mean"]), fmt(s["post_std"]),
            _percent(s["saturated_fraction"]), _percent(s["dead_fraction"]), fmt(s["grad_std"]),
        ]
        if multipliers is not None:
            row.append(fmt(multipliers[i]))
        table.add_row(*row)
    return table


def _load(spec_path: Path) -> tuple[StudySpec, Dataset]:
    from tuner.study.data import load_study_data
    from tuner.study.spec import load_spec

    spec = load_spec(spec_path)
    return spec, load_study_data(spec)


@app.command("init")
def init(
    spec_path: SpecArgument,
    batch_size: BatchSizeOption = None,
    seed: SeedOption = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Guess each layer's init scale with LSUV on one training batch, and show the statistics before and after.

    The spec's network is built with its base init scheme at scale 1; each dense layer's weights are then
    rescaled, from the input, until its pre-activation std is 1 (Mishkin & Matas 2016). The multipliers,
    averaged over five draws of the weights (as "auto" does), are the per-layer init_scale to use with that
    scheme; the statistics are the first draw's.

    Example: tuner probe init studies/deep-tanh.toml --batch-size 256
    """
    from tuner.study.autos import guess_record

    output = Output(quiet, as_json)
    spec, data = _load(spec_path)
    record = guess_record(spec, data, batch_size=batch_size, seed=seed)
    output.emit({"spec": str(spec_path), "study": spec.study.name, **record}, lambda: _print_init(record))


def _print_init(record: dict) -> None:
    out = _console()
    out.print(_stats_table(f"before: {record['scheme']} init, scale 1, batch of {record['batch_size']}",
                        record["before"]))
    after = (f"after: LSUV (pre-activation std -> 1) on {record['draws']} draws of the weights, their "
             "multipliers averaged")
    out.print(_stats_table(after, record["after"], record["multipliers"]))
    scales = ", ".join(f"{m:.4g}" for m in record["multipliers"])
    out.print(f"init_scale ({record['scheme']}) per layer: [{scales}]  ({record['seconds'] * 1000:.1f} ms)")


@app.command("lr")
def lr(
    spec_path: SpecArgument,
    optimizer: Annotated[
        str | None, typer.Option("--optimizer", help="One optimizer to probe (default: every one of the spec).")
    ] = None,
    batch_size: BatchSizeOption = None,
    steps: Annotated[int | None, typer.Option(
        "--steps", min=2, max=MAX_PROBE_STEPS,
        help="Minibatch steps of the first sweep (default: the study's plan).")] = None,
    repeats: Annotated[int | None, typer.Option(
        "--repeats", min=1, max=100, help="Sweeps per optimizer (default: as many as the study's plan affords).",
    )] = None,
    eps_min: Annotated[float, typer.Option("--eps-min", max=MAX_RATE, help="First rate of the ramp.")] = 1e-5,
    eps_max: Annotated[float, typer.Option("--eps-max", max=MAX_RATE, help="Last rate of the ramp.")] = 10.0,
    seed: SeedOption = None,
    plot_path: Annotated[
        Path | None,
        typer.Option("--plot", metavar="FILE.png", help="Write the loss-vs-rate curves as a PNG (FILE-OPTIMIZER.png "
                     "for each when several are probed)."),
    ] = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Run the learning-rate range test (Smith 2017) of each optimizer on the spec's initial network.

    The rate grows exponentially from --eps-min to --eps-max over --steps minibatches. Each sweep is read
    without lag (a centred average): its edge is the first rate past the loss's minimum where the loss is
    20% above it. Every sweep after the first starts two decades below the first one's edge (the same
    ramp, so half the cost); the probe's edge combines the sweeps' (the mean of their logs, each within
    half a decade of their median), and the suggested eps0 is a tenth of it (a third for sgd and adagrad).
    `"auto"` searches eps0 = suggestion x 0.1 .. 10. With init_scale = "auto" the network starts from the
    init-scale guess, else from the centre of the spec's init_scale. By default, the sweeps take the
    steps `tuner study create` gives them: 1.5% of the study's training steps (--repeats: that many sweeps).

    Example: tuner probe lr studies/digits-mlp.toml --optimizer momentum --plot lr.png
    """
    from tuner.probe.lr_plot import plot
    from tuner.study.autos import EPS0_FACTOR, probe_plan, probe_scales, spec_lr_probe

    output = Output(quiet, as_json)
    spec, data = _load(spec_path)
    seed, batch_size = (spec.study.seed if seed is None else seed,
                        spec.train.batch_size if batch_size is None else batch_size)
    plan = probe_plan(spec, data)
    steps = steps or plan.steps
    budget = None if repeats else max(steps, plan.budget)  # an explicit --repeats runs them all
    repeats = repeats or plan.repeats
    optimizers = (optimizer,) if optimizer else spec.search.optimizers
    scales = probe_scales(spec, data, batch_size=batch_size, seed=seed)
    results = {}
    for name in optimizers:
        result = spec_lr_probe(spec, data, name, scales=scales, batch_size=batch_size, seed=seed, steps=steps,
                               repeats=repeats, budget=budget, eps_min=eps_min, eps_max=eps_max)
        search_range = tuple(result.suggestion * f for f in EPS0_FACTOR)
        results[name] = (result, search_range)
        if plot_path is not None:
            plot(result, _plot_path(plot_path, name, several=len(optimizers) > 1), search_range=search_range)
    document = {"spec": str(spec_path), "study": spec.study.name, "scales": list(scales),
                "optimizers": {n: {**r.to_dict(), "range": list(rng)} for n, (r, rng) in results.items()}}
    output.emit(document, lambda: _print_lr(_console(), results))


def _plot_path(path: Path, optimizer: str, *, several: bool) -> Path:
    """FILE.png for one optimizer, FILE-<optimizer>.png for each of several."""
    return path.with_name(f"{path.stem}-{optimizer}{path.suffix}") if several else path


def _print_lr(out: Console, results: dict) -> None:
    from rich.table import Table

    table = Table("optimizer", "edge", "suggested eps0", "search range (log)", "loss fell", "sweeps (steps)",
                  "sweeps: stop", title="range test: per optimizer", title_justify="left")
    for name, (result, (low, high)) in results.items():
        last = len(result.rates) - 1
        stops = ", ".join(f"{s.stop_reason} at {result.rates[min(s.start + len(s.losses) - 1, last)]:.3g}"
                          for s in result.sweeps)
        table.add_row(name, f"{result.edge:.3g}", f"{result.suggestion:.3g}", f"{low:.3g} .. {high:.3g}",
                      f"{100 * result.fall:.0f}%", f"{len(result.sweeps)} ({result.steps_run})", stops)
    out.print(table)
    for name, (result, _) in results.items():
        if result.note:
            out.print(f"note ({name}): {result.note}")
