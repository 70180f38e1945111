"""Study spec files: TOML parsed into a validated, frozen `StudySpec`.

A spec has five sections, `[study]`, `[data]`, `[model]`, `[train]` and `[search]`; the format, every key
with its type, default and meaning, is in `studies/README.md`. Validation happens once, here, at the
boundary: every failure is a `SpecError` whose one-line message names the file, the dotted key and the
value (`studies/x.toml: search.eps0: low must be < high, got low=1.0, high=0.1`).

A `[search]` value is one of: a number or a name (fixed, never suggested), a list (a categorical choice),
a table `{low, high, log, step}` (a range), or `"auto"` (eps0 and init_scale only: replaced by
`tuner.study.autos.resolve_auto` from the probes before any trial runs). `init_scale` may also be a list
with one number or range per dense layer.

`spec.to_dict()` is what the database stores (JSON-able, data paths absolute); `spec_from_dict(d)` reads it
back to an equal spec. Data files are checked when a spec is loaded from TOML, not when it is read back
from the database: a worker on another machine reports a missing file through the data loader instead.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tuner.errors import SpecError
from tuner.nn.data import BUILTIN_TASKS
from tuner.study.limits import MAX_SPEC_BYTES
from tuner.study.params import Anchored, PerLayer, fail, known_names
from tuner.study.sections import (
    OBJECTIVES,
    OPTIONAL_HPARAMS,
    DataSection,
    ModelSection,
    SearchSection,
    StudySection,
    TrainSection,
)

__all__ = ["OBJECTIVES", "OPTIONAL_HPARAMS", "StudySpec", "load_spec", "parse_spec", "spec_from_dict"]

SECTIONS = ("study", "data", "model", "train", "search")


class StudySpec(BaseModel):
    """A validated study spec. Equal specs have equal `to_dict()`; `raw_toml` is kept but not compared."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    study: StudySection = StudySection()
    data: DataSection
    model: ModelSection = ModelSection()
    train: TrainSection = TrainSection()
    search: SearchSection = SearchSection()
    source_path: Path | None = None
    base_dir: Path | None = None
    raw_toml: str | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> StudySpec:
        source = self.data.source
        if BUILTIN_TASKS.get(source) == "regression":  # a file's task is known once it is read
            if self.study.objective == "val_accuracy":
                raise fail(f"'val_accuracy' needs a classification source, got data.source = {source!r} "
                           "(use 'val_loss')", at="study.objective")
            if self.model.bias == "class_frequencies":
                raise fail(f"'class_frequencies' needs a classification source, got data.source = {source!r}",
                           at="model.bias")
        init_scale, n_layers = self.search.init_scale, self.model.n_layers
        if isinstance(init_scale, PerLayer) and len(init_scale.values) != n_layers:
            raise fail(
                f"expected {n_layers} entries (one per dense layer: {len(self.model.hidden)} hidden + output), "
                f"got {len(init_scale.values)}",
                at="search.init_scale",
            )
        eps0 = self.search.eps0
        if isinstance(eps0, Anchored):
            missing = [o for o in self.search.optimizers if o not in dict(eps0.anchors)]
            if missing:
                raise fail(f"no anchor for {', '.join(missing)} (every optimizer searched needs one)",
                           at="search.eps0.anchor")
        if isinstance(init_scale, PerLayer) and self.search.init_scale_shared:
            raise fail("true needs a single init_scale value or range, got a per-layer list",
                        at="search.init_scale_shared")
        return self

    @property
    def label(self) -> str:
        """How errors name this spec: its file, or `<spec>`."""
        return str(self.source_path) if self.source_path is not None else "<spec>"

    def to_dict(self) -> dict:
        """The JSON-able form the database stores (paths absolute; `raw_toml` left out)."""
        return self.model_dump(mode="json")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StudySpec) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))


SECTION_MODELS = {
    "study": StudySection, "data": DataSection, "model": ModelSection, "train": TrainSection, "search": SearchSection,
}


# ---------------------------------------------------------------------------------------------------------
# Errors: pydantic's list -> one line


def _key(error: dict) -> str:
    ctx = error.get("ctx") or {}
    if ctx.get("at"):
        return ctx["at"]
    key = ""
    for part in error["loc"]:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    return key + (ctx.get("suffix") or "")


def _message(error: dict) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "spec":
        return ctx["message"]
    if kind == "extra_forbidden":
        loc = error["loc"]
        model = SECTION_MODELS.get(loc[0]) if len(loc) == 2 else None
        known = sorted(model.model_fields) if model is not None else sorted(SECTIONS)
        return f"unknown key (known: {known_names(known)})"
    if kind == "missing":
        return "required section missing" if len(error["loc"]) == 1 else "required key missing"
    expected = {
        "int_type": "an integer", "float_type": "a number", "bool_type": "true or false", "string_type": "a string",
        "tuple_type": "a list", "list_type": "a list", "model_type": "a table", "dict_type": "a table",
        "model_attributes_type": "a table",
    }
    if kind in expected:
        return f"expected {expected[kind]}, got {value!r}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        shown = int(limit) if float(limit).is_integer() else format(limit, "g")
        return f"must be {bounds[kind]} {shown}, got {value!r}"
    if kind == "string_too_short":
        return f"must not be empty, got {value!r}"
    if kind == "finite_number":
        return f"must be a finite number, got {value!r}"
    if kind == "too_long":
        return f"must have at most {ctx['max_length']} entries, got {ctx['actual_length']}"
    return f"{error['msg']}, got {value!r}"


def _spec_error(error: ValidationError, label: str) -> SpecError:
    errors = error.errors(include_url=False)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return SpecError(f"{label}: {_key(errors[0])}: {_message(errors[0])}{more}")


# ---------------------------------------------------------------------------------------------------------
# Entry points


_TOML_POSITION = re.compile(r"^(?P<what>.*) \(at (?P<where>line \d+, column \d+|end of document)\)$")


def parse_spec(text: str, *, source: str = "<string>", base_dir: str | Path | None = None,
               source_path: str | Path | None = None) -> StudySpec:
    """Parse and validate TOML text. Relative data paths resolve against `base_dir` (default: the cwd).

    `source` is how errors name the text; `source_path` is recorded in the spec (`load_spec` passes it).
    The study name defaults to the file's stem when there is a file, else `study`; a name written in the
    text must follow the study-name rule (`tuner.study.limits`). Text over MAX_SPEC_BYTES is refused.
    """
    if len(text) > MAX_SPEC_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise SpecError(f"{source}: {_TOO_LARGE}")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_POSITION.match(str(exc))
        where = f" at {found['where']}" if found else ""
        what = found["what"] if found else str(exc)
        raise SpecError(f"{source}: invalid TOML{where}: {what}") from None
    for key in raw:
        if key not in SECTIONS:
            raise SpecError(f"{source}: {key}: unknown key (known: {known_names(sorted(SECTIONS))})")
    base = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    path = Path(source_path).resolve() if source_path is not None else None
    study = raw.get("study", {})
    named = isinstance(study, dict) and "name" in study
    if isinstance(study, dict) and not named and path is not None:
        raw["study"] = {"name": path.stem, **study}
    raw.update(source_path=path, base_dir=base)
    try:
        spec = StudySpec.model_validate(raw, context={"base_dir": base, "check_files": True, "check_name": named})
    except ValidationError as exc:
        raise _spec_error(exc, source) from None
    return spec.model_copy(update={"raw_toml": text})


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a spec file; errors name the file as given (`studies/x.toml: ...`)."""
    path = Path(path)
    text = _read_spec_file(path)
    return parse_spec(text, source=str(path), base_dir=path.resolve().parent, source_path=path)


_TOO_LARGE = f"larger than the {MAX_SPEC_BYTES} bytes (1 MiB) a spec may hold"
_NOT_REGULAR = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
                stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def _read_spec_file(path: Path) -> str:
    """The text of a spec file, at most MAX_SPEC_BYTES of it.

    Anything but a regular file is refused before it is opened: opening a FIFO blocks until a writer
    comes, and a device such as /dev/zero never ends. The file is then opened without blocking and
    checked again, in case it was swapped for something else in between.
    """
    try:
        _require_regular(path, path.stat().st_mode)
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            _require_regular(path, os.fstat(file.fileno()).st_mode)
            data = file.read(MAX_SPEC_BYTES + 1)
    except SpecError:
        raise
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:  # a NUL byte in the path
        raise SpecError(f"{path}: cannot read ({exc})") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: {_TOO_LARGE}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text") from None


def _require_regular(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = _NOT_REGULAR.get(stat.S_IFMT(mode), "not a regular file")
        raise SpecError(f"{path}: is {kind}, not a spec file")


def spec_from_dict(d: dict, *, source: str = "<stored spec>") -> StudySpec:
    """The spec `spec.to_dict()` stored: `spec_from_dict(spec.to_dict()) == spec`. Data files are not checked."""
    context = {"base_dir": d.get("base_dir") if isinstance(d, dict) else None, "check_files": False}
    try:
        return StudySpec.model_validate(d, context=context)
    except ValidationError as exc:
        raise _spec_error(exc, source) from None
