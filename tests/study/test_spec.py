"""Spec files: every example parses and round-trips; every error is one line naming file, key and value."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.errors import SpecError
from tuner.study import StudySpec, load_spec, parse_spec, spec_from_dict
from tuner.study.limits import MAX_SPEC_BYTES
from tuner.study.params import AUTO, Anchored, Choice, Fixed, PerLayer, Range

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.toml"))
MINIMAL = '[data]\nsource = "digits"\n'


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_example_specs_parse_and_round_trip(path: Path) -> None:
    spec = load_spec(path)
    stored = json.loads(json.dumps(spec.to_dict()))  # what the database gives back
    again = spec_from_dict(stored)
    assert again == spec
    assert again.to_dict() == spec.to_dict()
    assert spec.source_path == path.resolve()
    assert spec.base_dir == path.resolve().parent
    assert spec.study.name == path.stem


def test_examples_exist() -> None:
    assert {p.name for p in STUDIES} >= {"digits-mlp.toml", "mnist1d-mlp.toml", "deep-tanh.toml"}


def test_defaults_of_a_minimal_spec() -> None:
    spec = parse_spec(MINIMAL)
    assert spec.study.name == "study"
    assert spec.study.objective == "val_accuracy"
    assert spec.model.hidden == (128,)
    assert spec.model.n_layers == 2
    assert spec.search.optimizer == Choice(
        ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "rmsprop_nesterov", "adam")
    )
    assert spec.search.eps0 == AUTO and spec.search.init_scale == AUTO  # the probes anchor the search
    assert spec.search.alpha is None
    assert spec.search.eps_tau_ratio == Fixed(0.01)


def test_init_scale_under_a_choice_of_schemes_defaults_to_one() -> None:
    # each scheme's multipliers would need a guess of their own: "auto" refuses a choice, so 1 is the default
    spec = parse_spec(MINIMAL + '[search]\ninit = ["he", "lecun"]\n')
    assert spec.search.init_scale == Fixed(1.0) and spec.search.eps0 == AUTO
    assert parse_spec(MINIMAL + '[search]\ninit = "lecun"\n').search.init_scale == AUTO


def test_value_forms() -> None:
    spec = parse_spec(
        MINIMAL
        + "[model]\nhidden = [8, 8]\n[search]\n"
        + 'optimizer = ["adam"]\neps0 = "auto"\nalpha = [0.5, 0.9]\nrho = 0.9\n'
        + "delta = { low = 1e-8, high = 1e-6, log = true }\ninit_scale = [1, { low = 0.5, high = 2.0 }, 1.5]\n"
    )
    search = spec.search
    assert search.optimizer == Fixed("adam")  # a one-element list is fixed
    assert search.eps0 is AUTO
    assert search.alpha == Choice((0.5, 0.9))
    assert search.rho == Fixed(0.9)
    assert search.delta == Range(1e-8, 1e-6, log=True)
    assert search.init_scale == PerLayer((Fixed(1), Range(0.5, 2.0), Fixed(1.5)))
    assert spec_from_dict(spec.to_dict()) == spec


def test_the_data_seed_fixes_the_data_across_study_seeds() -> None:
    from tuner.study.data import load_study_data

    def data(study_seed: int, data_line: str = ""):
        text = f'[study]\nseed = {study_seed}\nobjective = "val_loss"\n[data]\nsource = "synthetic_regression"\n{data_line}'
        return load_study_data(parse_spec(text))

    assert parse_spec(MINIMAL).data.seed is None
    default_1, default_2 = data(1), data(2)
    assert not np.array_equal(default_1.x_train, default_2.x_train)  # by default the study seed draws the data
    pinned_1, pinned_2, by_study = data(1, "seed = 2\n"), data(2, "seed = 2\n"), data(2)
    for a, b in ((pinned_1, pinned_2), (pinned_2, by_study)):
        np.testing.assert_array_equal(a.x_train, b.x_train)
        np.testing.assert_array_equal(a.y_val, b.y_val)


def test_integer_range() -> None:
    spec = parse_spec(MINIMAL + "[search]\ninit_scale = { low = 1, high = 4, step = 1 }\n")
    assert spec.search.init_scale.is_int
    assert not parse_spec(MINIMAL + "[search]\ninit_scale = { low = 1, high = 4 }\n").search.init_scale.is_int


def test_study_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "my-study.toml"
    path.write_text(MINIMAL)
    assert load_spec(path).study.name == "my-study"
    path.write_text(MINIMAL + '[study]\nname = "other"\n')
    assert load_spec(path).study.name == "other"


def test_data_path_resolves_against_the_spec_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "studies").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "points.csv").write_text("a,label\n1,0\n")
    (tmp_path / "studies" / "x.toml").write_text('[data]\nsource = "../data/points.csv"\ntarget = "label"\n')
    monkeypatch.chdir(tmp_path / "data")
    spec = load_spec(tmp_path / "studies" / "x.toml")
    expected = str((tmp_path / "data" / "points.csv").resolve())
    assert spec.data.source == expected
    assert spec.to_dict()["data"]["source"] == expected
    assert spec.to_dict()["source_path"] == str((tmp_path / "studies" / "x.toml").resolve())


def test_a_name_from_the_file_stem_or_a_stored_spec_is_not_checked(tmp_path: Path) -> None:
    """The rule applies to a name written in a spec and to the name a study is created with
    (`create_study`): a file `my spec.toml` can still be probed, and a study stored before the rule loads."""
    path = tmp_path / "my spec.toml"
    path.write_text(MINIMAL)
    assert load_spec(path).study.name == "my spec"
    stored = parse_spec(MINIMAL).to_dict()
    stored["study"]["name"] = "[old] name"
    assert spec_from_dict(stored).study.name == "[old] name"


def test_stored_spec_is_not_checked_for_files(tmp_path: Path) -> None:
    data = tmp_path / "points.npz"
    data.write_bytes(b"")
    spec = parse_spec(f'[data]\nsource = "{data}"\n')
    data.unlink()
    assert spec_from_dict(spec.to_dict()) == spec


def test_raw_toml_is_kept_but_not_stored_or_compared() -> None:
    text = MINIMAL + "# a comment\n"
    spec = parse_spec(text)
    assert spec.raw_toml == text
    assert "raw_toml" not in spec.to_dict()
    assert spec == parse_spec(MINIMAL)
    assert hash(spec) == hash(parse_spec(MINIMAL))


def test_spec_is_frozen() -> None:
    spec = parse_spec(MINIMAL)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's ValidationError for a frozen instance
        spec.study = None


ERRORS = [
    ("[search]\neps0 = { low = 1.0, high = 0.1 }\n", "search.eps0: low must be < high, got low=1.0, high=0.1"),
    ("[search]\neps0 = { low = 0.0, high = 0.1, log = true }\n", "search.eps0: a log range needs low > 0, got low=0.0"),
    ('[model]\nactivaton = "relu"\n', "model.activaton: unknown key (known: activation, batchnorm, bias, bias_value, hidden)"),
    ('[train]\nepochs = "ten"\n', "train.epochs: expected an integer, got 'ten'"),
    ("[train]\nepochs = 10.0\n", "train.epochs: expected an integer, got 10.0"),
    ("[train]\nepochs = 0\n", "train.epochs: must be >= 1, got 0"),
    ("[train]\nbatch_size = 0\n", "train.batch_size: must be >= 1, got 0"),
    ("[study]\nn_trials = 0\n", "study.n_trials: must be >= 1, got 0"),
    ('[study]\nsampler = "grid"\n', "study.sampler: unknown sampler 'grid' (known: tpe, random, qmc)"),
    (
        '[search]\noptimizer = ["sgd", "adamw"]\n',
        "search.optimizer: unknown optimizer 'adamw' (known: sgd, momentum, nesterov, adagrad, rmsprop, "
        "rmsprop_nesterov, adam)",
    ),
    (
        '[search]\ninit = "kaiming"\n',
        "search.init: unknown init scheme 'kaiming' (known: zeros, small, lecun, he, uniform_fan_in, "
        "glorot_uniform, orthogonal, sparse)",
    ),
    ("[search]\nalpha = 1.2\n", "search.alpha: must be in [0, 1), got 1.2"),
    ("[search]\nalpha = { low = 0.5, high = 1.0 }\n", "search.alpha: must be in [0, 1), got high=1.0"),
    ("[search]\nrho = [0.9, -0.1]\n", "search.rho: must be in [0, 1), got -0.1"),
    ("[search]\neps0 = 0\n", "search.eps0: must be > 0, got 0"),
    ('[search]\nalpha = "auto"\n', "search.alpha: 'auto' is allowed only for eps0 and init_scale"),
    ("[search]\nalpha = { low = 0.5, hgh = 0.9 }\n", "search.alpha.hgh: unknown key (known: high, log, low, step)"),
    ("[search]\nalpha = { low = 0.5 }\n", "search.alpha.high: required key missing"),
    (
        "[search]\ninit_scale = [1.0, { low = 2, high = 1 }]\n",
        "search.init_scale[1]: low must be < high, got low=2, high=1",
    ),
    (
        "[search]\ninit_scale = [1.0]\n",
        "search.init_scale: expected 2 entries (one per dense layer: 1 hidden + output), got 1",
    ),
    (
        "[search]\ninit_scale = [1.0, 2.0]\ninit_scale_shared = true\n",
        "search.init_scale_shared: true needs a single init_scale value or range, got a per-layer list",
    ),
    ("[model]\nhidden = [10, 0]\n", "model.hidden[1]: must be >= 1, got 0"),
    ("[data]\nval_fraction = 1.0\n", "data.val_fraction: must be < 1, got 1.0"),
    ("[data]\ntest_fraction = 1.0\n", "data.test_fraction: must be < 1, got 1.0"),
    ("[data]\nseed = -1\n", "data.seed: must be >= 0, got -1"),
    ("[data]\ntest_fraction = -0.1\n", "data.test_fraction: must be >= 0, got -0.1"),
    ("[train]\nseed = -1\n", "train.seed: must be >= 0, got -1"),
    ("[train]\nseed = 4294967296\n", "train.seed: must be <= 4294967295, got 4294967296"),
    ('[data]\nstandardize = "yes"\n', "data.standardize: expected true or false, got 'yes'"),
    ('[data]\ntarget = "y"\n', "data.target: used only with a .csv source, got source 'digits'"),
    (
        "[model]\nbias_value = 0.1\n",
        "model.bias_value: used only with bias = 'constant', got bias = 'zeros', bias_value = 0.1",
    ),
    ("[train]\nepochs = 0\nbatch_size = 0\n", "train.epochs: must be >= 1, got 0 (and 1 more)"),
    # every number has an upper bound, and NaN or infinity is never within one
    ("[study]\nseed = 4294967296\n", "study.seed: must be <= 4294967295, got 4294967296"),
    ("[study]\nseed = 1099511627776\n", "study.seed: must be <= 4294967295, got 1099511627776"),
    ("[study]\nn_trials = 1000000000000\n", "study.n_trials: must be <= 1000000, got 1000000000000"),
    ("[study]\nn_startup_trials = 1000001\n", "study.n_startup_trials: must be <= 1000000, got 1000001"),
    ("[study]\nn_warmup_epochs = 100001\n", "study.n_warmup_epochs: must be <= 100000, got 100001"),
    ("[study]\ntime_budget = 1e300\n", "study.time_budget: must be <= 2592000, got 1e+300"),
    ("[study]\ntime_budget = inf\n", "study.time_budget: must be a finite number, got inf"),
    ("[study]\ntime_budget = nan\n", "study.time_budget: must be a finite number, got nan"),
    ("[model]\nhidden = [100000]\n", "model.hidden[0]: must be <= 65536, got 100000"),
    ("[model]\nhidden = [" + ", ".join(["1"] * 101) + "]\n", "model.hidden: must have at most 100 entries, got 101"),
    ('[model]\nbias = "constant"\nbias_value = inf\n', "model.bias_value: must be a finite number, got inf"),
    ('[model]\nbias = "constant"\nbias_value = -nan\n', "model.bias_value: must be a finite number, got nan"),
    ('[model]\nbatchnorm = "yes"\n', "model.batchnorm: expected true or false, got 'yes'"),
    ("[model]\nbatchnorm = 1\n", "model.batchnorm: expected true or false, got 1"),
    ("[train]\nepochs = 1000000\n", "train.epochs: must be <= 100000, got 1000000"),
    ("[train]\nbatch_size = 100000000000000\n", "train.batch_size: must be <= 1048576, got 100000000000000"),
    ("[data]\nval_fraction = nan\n", "data.val_fraction: must be a finite number, got nan"),
    ("[train]\nclip_norm = 1e7\n", "train.clip_norm: must be <= 1000000, got 10000000.0"),
    # a name written in the spec follows the study-name rule, shown with its control characters visible
    ('[study]\nname = "[bold]x[/]"\n', "study.name: '[bold]x[/]' is not allowed: use 1 to 128 characters from A-Z a-z 0-9 . _ -, the first a letter or a digit"),
    ('[study]\nname = "a\\u001b]8;;http://evil\\u0007b"\n', "study.name: 'a\\x1b]8;;http://evil\\x07b' is not allowed: use 1 to 128 characters from A-Z a-z 0-9 . _ -, the first a letter or a digit"),
    ('[study]\nname = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"\n', "study.name: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' (200 characters) is not allowed: use 1 to 128 characters from A-Z a-z 0-9 . _ -, the first a letter or a digit"),
    ("[extra]\nx = 1\n", "extra: unknown key (known: data, model, search, study, train)"),
    ('[study]\noptimizer_share = "fair"\n', "study.optimizer_share: unknown optimizer share 'fair' (known: sampler, equal)"),
    (
        '[search]\noptimizer = ["sgd", "adam"]\neps0 = { anchor = { sgd = 0.1 }, low = 0.1, high = 10 }\n',
        "search.eps0.anchor: no anchor for adam (every optimizer searched needs one)",
    ),
    (
        '[search]\neps0 = { anchor = { sgd = -0.1, adam = 0.01 }, low = 0.1, high = 10 }\n',
        "search.eps0.anchor.sgd: must be > 0, got -0.1",
    ),
    (
        '[search]\neps0 = { anchor = { adamw = 0.1 }, low = 0.1, high = 10 }\n',
        "search.eps0.anchor: unknown optimizer 'adamw' (known: sgd, momentum, nesterov, adagrad, rmsprop, "
        "rmsprop_nesterov, adam)",
    ),
    (
        '[search]\neps0 = { anchor = { sgd = 0.1 }, low = 10, high = 0.1 }\n',
        "search.eps0: low must be < high, got low=10, high=0.1",
    ),
    ('[search]\neps0 = { anchor = { sgd = 0.1 }, lo = 1 }\n', "search.eps0.lo: unknown key (known: anchor, high, low)"),
]


@pytest.mark.parametrize(("extra", "message"), ERRORS, ids=[m.split(":")[0] for _, m in ERRORS])
def test_error_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, message: str) -> None:
    (tmp_path / "studies").mkdir()
    section, _, rest = extra.partition("\n")
    # A [data] key goes into the [data] table; anything else follows the minimal spec.
    text = f"{MINIMAL}{rest}" if section == "[data]" else f"{MINIMAL}{extra}"
    (tmp_path / "studies" / "x.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as caught:
        load_spec("studies/x.toml")
    assert str(caught.value) == f"studies/x.toml: {message}"
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[data]\nsource = "digits"\nfoo = bar\n', "invalid TOML at line 3, column 7: Invalid value"),
        ("[data]\nsource =", "invalid TOML at end of document: Invalid value"),
        ("[study]\nseed = 1\n", "data: required section missing"),
        ("[data]\nval_fraction = 0.5\n", "data.source: required key missing"),
        ("data = 3\n", "data: expected a table, got 3"),
        (
            '[data]\nsource = "digitz"\n',
            "data.source: unknown source 'digitz' (known: digits, mnist1d, synthetic_classification, "
            "synthetic_regression, or a path to a .npz or .csv file)",
        ),
        (
            '[data]\nsource = "synthetic_regression"\n',
            "study.objective: 'val_accuracy' needs a classification source, got data.source = "
            "'synthetic_regression' (use 'val_loss')",
        ),
    ],
)
def test_file_level_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str) -> None:
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "x.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as caught:
        load_spec("studies/x.toml")
    assert str(caught.value) == f"studies/x.toml: {message}"


def test_missing_spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as caught:
        load_spec("studies/x.toml")
    assert str(caught.value) == "studies/x.toml: no such file"


def _load_within(path: Path, seconds: float = 10) -> BaseException | None:
    """load_spec in a thread: a spec path that blocks the open would otherwise hang the test run."""
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_spec(path)
            outcome.append(None)
        except BaseException as err:  # noqa: BLE001 - handed to the test
            outcome.append(err)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"load_spec({path}) still running after {seconds} s"
    return outcome[0]


def test_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.toml"
    os.mkfifo(fifo)
    error = _load_within(fifo)
    assert isinstance(error, SpecError) and str(error) == f"{fifo}: is a FIFO, not a spec file"


@pytest.mark.parametrize(("device", "kind"), [("/dev/zero", "a character device"), ("/dev/urandom", "a character device")])
def test_a_device_is_refused(device: str, kind: str) -> None:
    error = _load_within(Path(device))
    assert isinstance(error, SpecError) and str(error) == f"{device}: is {kind}, not a spec file"


def test_a_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "spec.toml"
    link.symlink_to("/dev/zero")
    error = _load_within(link)
    assert isinstance(error, SpecError) and str(error) == f"{link}: is a character device, not a spec file"


def test_a_spec_file_over_one_mebibyte_is_refused_and_one_of_exactly_that_size_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    padding = MAX_SPEC_BYTES - len(MINIMAL)
    path.write_text(MINIMAL + "#" * (padding - 1) + "\n")
    assert path.stat().st_size == MAX_SPEC_BYTES and load_spec(path).data.source == "digits"
    path.write_text(MINIMAL + "#" * padding + "\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value) == f"{path}: larger than the 1048576 bytes (1 MiB) a spec may hold"


def test_spec_text_over_one_mebibyte_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(MINIMAL + "#" * MAX_SPEC_BYTES, source="big.toml")
    assert str(caught.value) == "big.toml: larger than the 1048576 bytes (1 MiB) a spec may hold"


@pytest.mark.parametrize(("name", "reason"), [("a" * 300 + ".toml", "File name too long"),
                                              ("plain/x.toml", "Not a directory")])
def test_an_unreadable_path_is_one_line(tmp_path: Path, name: str, reason: str) -> None:
    (tmp_path / "plain").write_text("a file, not a directory")
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / name)
    assert str(caught.value) == f"{tmp_path / name}: cannot read ({reason})"


def test_missing_data_file_names_spec_key_and_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "x.toml").write_text('[data]\nsource = "../data/points.csv"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as caught:
        load_spec("studies/x.toml")
    missing = (tmp_path / "data" / "points.csv").resolve()
    assert str(caught.value) == f"studies/x.toml: data.source: no such file '{missing}'"


def test_parse_spec_names_its_source() -> None:
    with pytest.raises(SpecError, match=r"^<string>: train\.epochs: "):
        parse_spec(MINIMAL + "[train]\nepochs = -1\n")
    with pytest.raises(SpecError, match=r"^inline: "):
        parse_spec("x =", source="inline")


def test_spec_from_dict_errors_are_one_line() -> None:
    d = parse_spec(MINIMAL).to_dict()
    d["train"]["epochs"] = "ten"
    with pytest.raises(SpecError) as caught:
        spec_from_dict(d)
    assert str(caught.value) == "<stored spec>: train.epochs: expected an integer, got 'ten'"


def test_an_anchored_eps0_and_an_equal_share_round_trip() -> None:
    spec = parse_spec(MINIMAL + '[study]\noptimizer_share = "equal"\n[search]\noptimizer = ["sgd", "adam"]\n'
                                'eps0 = { anchor = { sgd = 0.1, adam = 0.002 }, low = 0.1, high = 10 }\n')
    assert spec.search.eps0 == Anchored((("sgd", 0.1), ("adam", 0.002)), 0.1, 10.0)
    assert spec.search.eps0.anchor("adam") == 0.002 and spec.study.optimizer_share == "equal"
    stored = spec.to_dict()
    assert stored["search"]["eps0"] == {"anchor": {"sgd": 0.1, "adam": 0.002}, "low": 0.1, "high": 10.0}
    assert spec_from_dict(json.loads(json.dumps(stored))) == spec
    assert parse_spec(MINIMAL).study.optimizer_share == "sampler"


def test_unused_conditional_parameter_is_allowed() -> None:
    spec = parse_spec(MINIMAL + '[search]\noptimizer = "adam"\nalpha = { low = 0.5, high = 0.9 }\n')
    assert spec.search.alpha == Range(0.5, 0.9)


# ---------------------------------------------------------------------------------------------------------
# Property-based: random ranges

NAMES = ["eps0", "alpha", "rho", "rho1", "rho2", "delta", "tau_fraction", "init_scale"]
finite = st.floats(min_value=1e-6, max_value=0.999, allow_nan=False)


def _toml_number(x: float) -> str:
    return repr(float(x))


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(NAMES), a=finite, b=finite, log=st.booleans())
def test_valid_ranges_parse_and_round_trip(name: str, a: float, b: float, log: bool) -> None:
    low, high = sorted((a, b))
    if low == high:
        return
    table = f"{{ low = {_toml_number(low)}, high = {_toml_number(high)}, log = {str(log).lower()} }}"
    text = MINIMAL + f"[search]\n{name} = {table}\n"
    spec = parse_spec(text)
    assert getattr(spec.search, name) == Range(low, high, log=log)
    assert spec_from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(NAMES), a=st.floats(-10, 10, allow_nan=False), b=st.floats(-10, 10, allow_nan=False))
def test_reversed_ranges_always_fail_naming_the_key(name: str, a: float, b: float) -> None:
    low, high = max(a, b), min(a, b)  # low >= high
    text = MINIMAL + f"[search]\n{name} = {{ low = {_toml_number(low)}, high = {_toml_number(high)} }}\n"
    with pytest.raises(SpecError) as caught:
        parse_spec(text)
    assert str(caught.value).startswith(f"<string>: search.{name}: low must be < high, got low=")


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(NAMES), low=st.floats(-10, 0, allow_nan=False), high=st.floats(0.01, 0.9))
def test_log_ranges_with_low_not_positive_always_fail(name: str, low: float, high: float) -> None:
    text = MINIMAL + f"[search]\n{name} = {{ low = {_toml_number(low)}, high = {_toml_number(high)}, log = true }}\n"
    with pytest.raises(SpecError) as caught:
        parse_spec(text)
    assert str(caught.value) == f"<string>: search.{name}: a log range needs low > 0, got low={float(low)!r}"


def test_values_built_in_python_are_checked_too() -> None:
    spec = StudySpec(data={"source": "digits"}, search={"alpha": Range(0.5, 0.9), "optimizer": Fixed("adam")})
    assert spec.search.alpha == Range(0.5, 0.9)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\), got 2\.0"):
        StudySpec(data={"source": "digits"}, search={"alpha": Fixed(2.0)})
