"""`tuner study check SPEC`: validate a spec, load its data and check its network's memory, creating nothing.

What `tuner study create` and every worker would refuse is refused here the same way (one line, exit 2),
before a database is touched: no database, no file, no study is made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tuner.cli._common import JsonOption, Output, QuietOption, SpecArgument, stdout
from tuner.errors import DataError, SpecError
from tuner.text import printable

if TYPE_CHECKING:
    from tuner.study.budget import DataShape, MemoryEstimate
    from tuner.study.spec import StudySpec


def check(spec_path: SpecArgument, quiet: QuietOption = False, as_json: JsonOption = False) -> None:
    """Check a spec without creating anything: validate it, load its data, estimate its network's memory.

    Prints the data's shape, the network's layer sizes and parameter count, the memory one trial takes at
    its peak against what this machine has free, and the search space. A bad spec, unreadable data or a
    network too large for this machine is one error line and exit code 2, as `tuner study create` reports it.

    Example: tuner study check studies/digits-mlp.toml --json
    """
    from tuner.study.budget import DataShape, available_memory, check_training_memory, training_memory
    from tuner.study.data import load_study_data
    from tuner.study.spec import load_spec

    output = Output(quiet, as_json)
    spec = load_spec(spec_path)
    try:
        data = load_study_data(spec)
    except DataError as err:  # the spec names data that cannot be used: a fault of the spec, as create says
        raise SpecError(str(err)) from None
    shape = DataShape.of(data)
    check_training_memory(spec, shape)
    estimate, available = training_memory(spec, shape), available_memory()
    document = _document(spec_path, spec, shape, estimate, available)
    output.emit(document, lambda: _print(document))


def _document(spec_path: Path, spec: StudySpec, shape: DataShape, estimate: MemoryEstimate,
              available: int | None) -> dict:
    """What `check` found, JSON-able: study, data, network, memory and search."""
    s = spec.to_dict()
    sizes = [shape.features, *spec.model.hidden, shape.outputs]
    return {
        "spec": str(spec_path),
        "study": {"name": spec.study.name, "objective": spec.study.objective, "direction": spec.study.direction,
                  "n_trials": spec.study.n_trials},
        "data": {"source": spec.data.source, "train_rows": shape.train_rows, "val_rows": shape.val_rows,
                 "features": shape.features, "outputs": shape.outputs,
                 "task": "classification" if shape.classification else "regression"},
        "network": {"layer_sizes": sizes, "activation": spec.model.activation, "parameters": estimate.n_params,
                    "dtype": spec.train.dtype},
        "memory": {"peak_bytes": estimate.total, "available_bytes": available,
                   "parts": {k: getattr(estimate, k) for k in ("parameters", "optimizer", "buffers", "data",
                                                               "loading", "init")}},
        "search": s["search"],
    }


def _print(d: dict) -> None:
    from tuner.study.budget import format_bytes

    study, data, net, memory = d["study"], d["data"], d["network"], d["memory"]
    outputs = f"{data['outputs']} classes" if data["task"] == "classification" else f"{data['outputs']} targets"
    free = "unknown" if memory["available_bytes"] is None else format_bytes(memory["available_bytes"])
    lines = [
        f"spec {d['spec']}: study '{study['name']}', {study['direction']} {study['objective']}, "
        f"{study['n_trials']} trials",
        f"data: {data['source']}, {data['train_rows']} training + {data['val_rows']} validation rows, "
        f"{data['features']} features -> {outputs}",
        f"network: {'-'.join(str(n) for n in net['layer_sizes'])} {net['activation']} ({net['dtype']}), "
        f"{net['parameters']:,} parameters",
        f"memory: about {format_bytes(memory['peak_bytes'])} per trial at its peak ({free} available here)",
        "search:",
        *(f"  {name} = {json.dumps(value)}" for name, value in d["search"].items() if value is not None),
        "ok: the spec is valid; nothing was created",
    ]
    for line in lines:
        stdout.print(printable(line))
