"""The five sections of a spec file, `[study]`, `[data]`, `[model]`, `[train]` and `[search]`, as pydantic
models: every key with its type, default and domain (the format is documented in `studies/README.md`).

Checks are declared here, once; `tuner.study.spec` turns pydantic's errors into one `SpecError` line.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tuner.nn.activations import ACTIVATIONS
from tuner.nn.data import BUILTIN_TASKS
from tuner.nn.init import BIASES
from tuner.optim import OPTIMIZERS
from tuner.study.limits import (
    MAX_BATCH_SIZE,
    MAX_DURATION_S,
    MAX_EPOCHS,
    MAX_HIDDEN_LAYERS,
    MAX_LAYER_WIDTH,
    MAX_MAGNITUDE,
    MAX_SEED,
    MAX_TRIALS,
    name_problem,
)
from tuner.study.params import (
    AUTO,
    RULES,
    Choice,
    Fixed,
    Param,
    dump_param,
    fail,
    known_names,
    parse_param,
)

DATA_SUFFIXES = (".npz", ".csv")
SAMPLERS = ("tpe", "random", "qmc")
PRUNERS = ("none", "median", "successive_halving", "hyperband")
SHARES = ("sampler", "equal")  # who decides each trial's optimizer: the sampler, or equal shares
# The metric a study optimises, a field of every epoch's record, and which way is better.
OBJECTIVES = {"val_accuracy": "maximize", "val_loss": "minimize"}
DTYPES = ("float32", "float64")
OPTIONAL_HPARAMS = ("alpha", "rho", "rho1", "rho2", "delta")  # each taken by some optimizers only

def _param(name: str) -> Any:
    return Annotated[
        Param | None, PlainValidator(partial(parse_param, rule=RULES[name])), PlainSerializer(dump_param)
    ]


def _one_of(names: tuple[str, ...], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if value not in names:
            raise fail(f"unknown {what} {value!r} (known: {known_names(names)})")
        return value

    return AfterValidator(check)


Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), AllowInfNan(False)]  # TOML has nan and inf; no key takes them
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StudySection(_Section):
    """`[study]`: what is optimised, how many trials, and the sampler and pruner."""

    name: Annotated[Str, Field(min_length=1)] = "study"
    objective: Annotated[Str, _one_of(tuple(OBJECTIVES), "objective")] = "val_accuracy"
    n_trials: Annotated[Int, Field(ge=1, le=MAX_TRIALS)] = 50
    seed: Annotated[Int, Field(ge=0, le=MAX_SEED)] = 0
    sampler: Annotated[Str, _one_of(SAMPLERS, "sampler")] = "tpe"
    pruner: Annotated[Str, _one_of(PRUNERS, "pruner")] = "median"
    time_budget: Annotated[Float, Field(gt=0, le=MAX_DURATION_S)] | None = None
    n_startup_trials: Annotated[Int, Field(ge=0, le=MAX_TRIALS)] | None = None
    n_warmup_epochs: Annotated[Int, Field(ge=0, le=MAX_EPOCHS)] | None = None
    optimizer_share: Annotated[Str, _one_of(SHARES, "optimizer share")] = "sampler"

    @field_validator("name")
    @classmethod
    def _name_rule(cls, name: str, info: ValidationInfo) -> str:
        # Checked for a name written in a spec file; a stored spec keeps the name it was created with.
        problem = name_problem(name) if (info.context or {}).get("check_name") else None
        if problem is not None:
            raise fail(problem)
        return name

    @property
    def direction(self) -> str:
        """`maximize` for validation accuracy, `minimize` for validation loss."""
        return OBJECTIVES[self.objective]


class DataSection(_Section):
    """`[data]`: a built-in dataset name, or a .npz/.csv path (stored absolute)."""

    source: Str
    val_fraction: Annotated[Float, Field(gt=0, lt=1)] = 0.2
    test_fraction: Annotated[Float, Field(ge=0, lt=1)] = 0.0  # held out before the validation split; 0: none
    target: Str | None = None
    standardize: Bool = True
    # Generates a built-in source and splits every source; None: study.seed. Set it to repeat a study with
    # other seeds (sampler, initial weights, probes) on the same data.
    seed: Annotated[Int, Field(ge=0, le=MAX_SEED)] | None = None

    @field_validator("source")
    @classmethod
    def _resolve_source(cls, source: str, info: ValidationInfo) -> str:
        if source in BUILTIN_TASKS:
            return source
        if Path(source).suffix.lower() not in DATA_SUFFIXES:
            raise fail(f"unknown source {source!r} (known: {known_names(tuple(BUILTIN_TASKS))}, or a path to a .npz or .csv file)")
        context = info.context or {}
        path = Path(source).expanduser()
        if not path.is_absolute():
            path = Path(context.get("base_dir") or Path.cwd()) / path
        path = path.resolve()
        if context.get("check_files") and not path.is_file():
            raise fail(f"no such file {str(path)!r}")
        return str(path)

    @model_validator(mode="after")
    def _target_needs_csv(self) -> DataSection:
        if self.target is not None and not self.source.lower().endswith(".csv"):
            raise fail(f"used only with a .csv source, got source {self.source!r}", at="data.target")
        return self


class ModelSection(_Section):
    """`[model]`: hidden sizes, activation, biases and batch normalization; the input and output sizes come
    from the data."""

    hidden: Annotated[tuple[Annotated[Int, Field(ge=1, le=MAX_LAYER_WIDTH)], ...],
                      Field(max_length=MAX_HIDDEN_LAYERS)] = (128,)
    activation: Annotated[Str, _one_of(ACTIVATIONS, "activation")] = "relu"
    bias: Annotated[Str, _one_of(BIASES, "bias")] = "zeros"
    bias_value: Annotated[Float, Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)] = 0.0
    batchnorm: Bool = False  # batch normalization after each hidden dense layer, before its non-linearity

    @property
    def n_layers(self) -> int:
        """Dense layers: the hidden ones plus the output layer."""
        return len(self.hidden) + 1

    @model_validator(mode="after")
    def _bias_value_needs_constant(self) -> ModelSection:
        if self.bias_value != 0.0 and self.bias != "constant":
            raise fail(
                f"used only with bias = 'constant', got bias = {self.bias!r}, bias_value = {self.bias_value!r}",
                at="model.bias_value",
            )
        return self


class TrainSection(_Section):
    """`[train]`: the length of a run and its numeric type."""

    epochs: Annotated[Int, Field(ge=1, le=MAX_EPOCHS)] = 30
    batch_size: Annotated[Int, Field(ge=1, le=MAX_BATCH_SIZE)] = 64
    clip_norm: Annotated[Float, Field(gt=0, le=MAX_MAGNITUDE)] | None = None
    dtype: Annotated[Str, _one_of(DTYPES, "dtype")] = "float32"
    # Every trial's training seed; None: derived from (study.seed, trial number). An exported spec sets it.
    seed: Annotated[Int, Field(ge=0, le=MAX_SEED)] | None = None


class SearchSection(_Section):
    """`[search]`: the search space. `None` for alpha, rho, rho1, rho2, delta = the optimizer's default."""

    optimizer: _param("optimizer") = Choice(OPTIMIZERS)
    eps0: _param("eps0") = AUTO
    alpha: _param("alpha") = None
    rho: _param("rho") = None
    rho1: _param("rho1") = None
    rho2: _param("rho2") = None
    delta: _param("delta") = None
    eps_tau_ratio: _param("eps_tau_ratio") = Fixed(0.01)
    tau_fraction: _param("tau_fraction") = Fixed(1.0)
    init: _param("init") = Fixed("he")
    init_scale: _param("init_scale") = AUTO
    init_scale_shared: Bool = False

    @model_validator(mode="before")
    @classmethod
    def _scale_of_a_choice_of_schemes(cls, data: Any) -> Any:
        """eps0 and init_scale default to "auto" (the probes anchor the search: bench/RESULTS.md,
        "Heuristic vs search"), except init_scale under a choice of init schemes, whose multipliers would
        each need their own guess: there it defaults to 1."""
        if isinstance(data, dict) and "init_scale" not in data and isinstance(data.get("init"), list | tuple):
            data = {**data, "init_scale": 1.0}
        return data

    @field_validator("optimizer", "eps0", "eps_tau_ratio", "tau_fraction", "init", "init_scale")
    @classmethod
    def _required(cls, value: Param | None) -> Param:
        if value is None:
            raise fail("must not be empty")
        return value

    @property
    def optimizers(self) -> tuple[str, ...]:
        """Every optimizer the search may pick."""
        return self.optimizer.values if isinstance(self.optimizer, Choice) else (self.optimizer.value,)
