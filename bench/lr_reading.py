"""Is the learning-rate probe's spread over study seeds its reading's fault, or the sweeps' noise?

For a spec and `--seeds` study seeds, the probe as `"auto"` runs it (the init-scale guess, the spec's
probe batch and fixed hyperparameters, `tuner.study.autos.spec_lr_probe`) but with `--sweeps` sweeps of
`--steps` (100) steps per optimizer, whatever the study's budget allows: each over the whole ramp, or with
`--lead D` as the probe runs them (every sweep after the first from D decades below the first one's edge,
`lead_decades`). The sweeps are then read offline in several ways, each on the first R of them (R = 1, 3
and all):

  median    the probe's reading until 2026-12-03: each sweep's edge (centred mean, the loss RISE above its
            minimum), the median of their log rates, read on the ramp's steps;
  combined  the probe's reading since: the same edges combined by `tuner.probe.lr.combine_edges` (the mean
            of their logs, each clipped to half a decade of their median);
  pooled    (full sweeps only) the sweeps' losses averaged in log space step by step (up to the shortest
            finite sweep), one edge read off that curve, interpolated between the ramp's steps;

for RISE = 5%, 10% and 20% (the probe's). Per optimizer: the geometric mean of the edge over seeds and
its spread max/min. A reading that only removes noise keeps the mean and narrows the spread as R grows;
if the spread stays with every reading and R, it comes from the seeds themselves (their data and
networks), not from how a sweep is read. A last table splits a sweep's edge (RISE 20%, log10) into its
scatter from sweep to sweep within a seed and the scatter of the seeds' mean edges: the first is the
sweeps' noise, which more sweeps average away; the second, beyond what the first leaves over n sweeps, is
the seeds' (their data and networks).

    OPENBLAS_NUM_THREADS=1 python bench/lr_reading.py studies/deep-relu.toml --seeds 5 --sweeps 6
    OPENBLAS_NUM_THREADS=1 python bench/lr_reading.py studies/deep-relu.toml --seeds 5 --sweeps 9 --lead 2
    python bench/lr_reading.py studies/regression.toml --json regression-sweeps.json
    python bench/lr_reading.py --load regression-sweeps.json        # read saved sweeps again
"""

from __future__ import annotations

import argparse
import json
import math
import warnings

import numpy as np

from tuner.probe.lr import centred_mean, combine_edges, half_width
from tuner.study.autos import probe_batch_size, probe_scales, spec_lr_probe
from tuner.study.data import load_study_data
from tuner.study.spec import load_spec

RISES = (0.05, 0.1, 0.2)


def record(path: str, seeds: int, sweeps: int, steps: int, lead: float | None) -> dict:
    """{seed: {optimizer: {"rates": [...], "losses": [[...] per sweep], "starts": [...]}}} (a non-finite loss
    as None; a sweep's loss k at rates[start + k])."""
    base = load_spec(path)
    out: dict = {}
    for seed in range(seeds):
        spec = base.model_copy(update={"study": base.study.model_copy(update={"seed": seed})})
        data = load_study_data(spec)
        batch = probe_batch_size(spec, data)
        scales = probe_scales(spec, data, batch_size=batch, seed=seed)
        out[str(seed)] = {}
        for optimizer in spec.search.optimizers:
            result = spec_lr_probe(spec, data, optimizer, scales=scales, batch_size=batch, seed=seed, repeats=sweeps,
                                   steps=steps, lead_decades=lead)
            out[str(seed)][optimizer] = {"rates": list(result.rates), "starts": [s.start for s in result.sweeps],
                                         "losses": [s.to_dict()["losses"] for s in result.sweeps]}
        print(f"seed {seed}: recorded", flush=True)
    return out


def finite(losses: list[float | None]) -> tuple[np.ndarray, bool]:
    """The losses before the first non-finite one, and whether one ended the sweep."""
    values = [math.inf if v is None else v for v in losses]
    n = next((i for i, v in enumerate(values) if not math.isfinite(v)), len(values))
    return np.asarray(values[:n]), n < len(values)


def edge_position(losses: np.ndarray, ended: bool, h: int, rise: float, interpolate: bool) -> float:
    """The (fractional) step of the edge, as `tuner.probe.lr.read_sweep` finds it."""
    s = centred_mean(losses, h)
    k = int(np.argmin(s))
    threshold = (1.0 + rise) * s[k]
    above = np.nonzero(s[k:] > threshold)[0]
    if not above.size:
        return float(len(s)) if ended else float(len(s) - 1)
    j = k + int(above[0])
    if interpolate and j > 0:
        return j - 1 + (threshold - s[j - 1]) / (s[j] - s[j - 1])
    return float(j)


def log_rate_at(rates: np.ndarray, position: float) -> float:
    position = min(position, len(rates) - 1)
    i = int(position)
    f = position - i
    return math.log(rates[i]) if i + 1 >= len(rates) else (1 - f) * math.log(rates[i]) + f * math.log(rates[i + 1])


def sweep_log_edges(rates: np.ndarray, sweeps: list[list[float | None]], starts: list[int], rise: float) -> list[float]:
    """Each sweep's edge (natural log of the rate), read on the ramp's steps from the step it started at."""
    h = half_width(rates[0], rates[-1], len(rates))
    return [log_rate_at(rates[start:], edge_position(*finite(s), h, rise, False))
            for s, start in zip(sweeps, starts, strict=True)]


def read(rates: np.ndarray, sweeps: list[list[float | None]], starts: list[int], how: str, rise: float) -> float:
    if how == "median":
        return math.exp(float(np.median(sweep_log_edges(rates, sweeps, starts, rise))))
    if how == "combined":
        return combine_edges(list(np.exp(sweep_log_edges(rates, sweeps, starts, rise))))
    if any(starts):
        return math.nan  # pooling needs every sweep on the whole ramp
    h = half_width(rates[0], rates[-1], len(rates))
    parts = [finite(s) for s in sweeps]
    n = min(len(v) for v, _ in parts)
    ended = any(ended or len(v) > n for v, ended in parts)
    curve = np.exp(np.mean([np.log(v[:n]) for v, _ in parts], axis=0))
    return math.exp(log_rate_at(rates, edge_position(curve, ended, h, rise, True)))


def summarise(recorded: dict) -> None:
    seeds = list(recorded)
    optimizers = list(recorded[seeds[0]])
    n_sweeps = len(recorded[seeds[0]][optimizers[0]]["losses"])

    def sweeps_of(seed: str, optimizer: str, r: int | None = None) -> tuple[np.ndarray, list, list[int]]:
        entry = recorded[seed][optimizer]
        losses = entry["losses"][:r]
        return np.asarray(entry["rates"]), losses, entry.get("starts", [0] * len(entry["losses"]))[: len(losses)]

    print(f"{len(seeds)} seeds, {n_sweeps} sweeps each; per optimizer: geometric mean of the edge over seeds (spread max/min)")
    print("| reading | rise | sweeps | " + " | ".join(optimizers) + " |")
    print("| --- | ---: | ---: | " + " | ".join("---" for _ in optimizers) + " |")
    for how in ("median", "combined", "pooled"):
        for rise in RISES:
            for r in sorted({1, min(3, n_sweeps), n_sweeps}):
                cells = []
                for optimizer in optimizers:
                    edges = np.array([read(*sweeps_of(s, optimizer, r), how, rise) for s in seeds])
                    cells.append("-" if np.isnan(edges).any() else
                                 f"{math.exp(np.log(edges).mean()):.3g} (x{edges.max() / edges.min():.2f})")
                print(f"| {how} | {rise:.0%} | {r} | " + " | ".join(cells) + " |")
    print("\nA sweep's edge (rise 20%, log10 of the rate): standard deviation from sweep to sweep within a seed (mean "
          "over seeds), and of the seeds' mean edges")
    print("| optimizer | within a seed | between seeds' means | mean edge of first sweeps | of later sweeps |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for optimizer in optimizers:
        logs = np.array([sweep_log_edges(*sweeps_of(s, optimizer), 0.2) for s in seeds]) / math.log(10)
        later = logs[:, 1:] if n_sweeps > 1 else logs
        within = later.std(axis=1, ddof=1).mean() if later.shape[1] > 1 else math.nan
        print(f"| {optimizer} | {within:.3f} | {logs.mean(axis=1).std(ddof=1):.3f} | {logs[:, 0].mean():.2f} "
              f"| {later.mean():.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sweeps", type=int, default=6)
    parser.add_argument("--steps", type=int, default=100, help="steps per sweep")
    parser.add_argument("--lead", type=float, default=None,
                        help="later sweeps start this many decades below the first one's edge (default: whole ramp)")
    parser.add_argument("--json", help="save the recorded sweeps here")
    parser.add_argument("--load", help="read sweeps saved by --json instead of recording")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    if args.load:
        with open(args.load) as f:
            recorded = json.load(f)
    else:
        if not args.spec:
            parser.error("give a spec, or --load")
        recorded = record(args.spec, args.seeds, args.sweeps, args.steps, args.lead)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(recorded, f)
    summarise(recorded)


if __name__ == "__main__":
    main()
