"""The dashboard's note and curve chart for a study: content, idempotence, and a hand-written note kept."""

from __future__ import annotations

import json

import optuna
import optuna_dashboard
import pytest
from markdown_it import MarkdownIt

from tuner.analysis.notes import (
    CHART_ID,
    Published,
    code_block,
    code_span,
    note_heading,
    publish,
    study_note,
)
from tuner.storage import make_engine, open_study, update_study
from tuner.storage.optuna_adapter import stored_chart


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def chart(study: optuna.Study) -> dict:
    (saved,) = optuna_dashboard._custom_plot_data.get_plotly_graph_objects(
        study._storage.get_study_system_attrs(study._study_id)
    ).values()  # read back the way the dashboard reads it
    assert saved == stored_chart(study, CHART_ID)
    return json.loads(saved)


def test_publish_writes_the_spec_the_guess_and_the_curves_once(storage_url, make_study):
    name = make_study(storage_url, n_trials=4, epochs=3)
    update_study(make_engine(storage_url), name, init_guess={"multipliers": [0.9, 1.1, 1.0]})
    assert publish(open_study(storage_url, name)) == Published(note=True, chart=True)

    study = load(storage_url, name)
    note = optuna_dashboard.get_note(study)
    assert note.startswith(note_heading(name))
    assert "```toml" in note and f'name = "{name}"' in note
    assert "| layer | multiplier |" in note and "| 1 | 1.1 |" in note

    figure = chart(study)
    assert figure["layout"]["yaxis"]["title"]["text"] == "val_accuracy"
    best = sorted((t for t in study.trials if t.value is not None), key=lambda t: -t.value)
    assert [trace["name"] for trace in figure["data"]] == [f"trial {t.number}" for t in best[:5]]
    assert all(len(trace["x"]) == 3 for trace in figure["data"])

    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert publish(open_study(storage_url, name)) == Published(note=False, chart=False)  # nothing changed: nothing written
    assert study._storage.get_study_system_attrs(study._study_id) == attrs


def test_a_study_without_a_guess_says_so_and_gets_no_chart_before_its_first_trial(sqlite_url, make_study):
    name = make_study(sqlite_url, "fresh", run=False)
    assert publish(open_study(sqlite_url, name)) == Published(note=True, chart=False)
    study = load(sqlite_url, name)
    assert "No guess for this study" in optuna_dashboard.get_note(study)
    assert not any(k.startswith("dashboard:plot_data:") for k in study._storage.get_study_system_attrs(study._study_id))


def test_a_hand_written_note_is_kept(sqlite_url, make_study):
    name = make_study(sqlite_url, n_trials=1, epochs=1)
    optuna_dashboard.save_note(load(sqlite_url, name), "my own notes")
    assert publish(open_study(sqlite_url, name)) == Published(note=False, chart=True)
    assert optuna_dashboard.get_note(load(sqlite_url, name)) == "my own notes"


# ---- user text in the Markdown ----------------------------------------------------------------------

COMMONMARK = MarkdownIt("commonmark")  # the dialect the notes are written in


def test_the_note_says_how_many_draws_the_guess_was_averaged_over():
    one = study_note("s", None, None, {"multipliers": [0.9, 1.1]})
    five = study_note("s", None, None, {"multipliers": [0.9, 1.1], "draws": 5})
    assert "(LSUV) on one minibatch, and the range" in one and "draws" not in one
    assert "(LSUV) on one minibatch, averaged over 5 draws of the weights, and the range" in five


@pytest.mark.parametrize("text", ["plain", "a`b", "`x", "x`", "```", "`` ``", " a ", "[x](http://evil)", "<b>",
                                  "*em* _em_ # h", "\\`"])
def test_a_code_span_shows_any_text_literally(text):
    (token,) = COMMONMARK.parseInline(code_span(text))[0].children
    assert (token.type, token.content) == ("code_inline", text)


def test_a_code_span_keeps_to_its_line_and_shows_control_characters():
    (token,) = COMMONMARK.parseInline(code_span("a\nb\x1b[31m"))[0].children
    assert (token.type, token.content) == ("code_inline", "a\\nb\\x1b[31m")


SPEC_WITH_FENCES = 'name = "x"\n```\n[link](http://evil)\n``````` more\n~~~\n# not a heading\n'


def test_a_spec_holding_code_fences_stays_inside_its_code_block():
    tokens = COMMONMARK.parse(code_block(SPEC_WITH_FENCES, "toml") + "\n\nafter\n")
    assert [(t.type, t.info) for t in tokens if t.type in ("fence", "inline")] == [("fence", "toml"), ("inline", "")]
    assert tokens[0].content == SPEC_WITH_FENCES + "\n"  # the block's own line break after the text


def test_the_note_of_a_hostile_name_and_spec_renders_as_written():
    name = "a`b ``` [x](y)\x1b]8;;http://evil\x07"
    tokens = COMMONMARK.parse(study_note(name, SPEC_WITH_FENCES, None, None))
    heading = tokens[1].children
    assert [(t.type, t.content) for t in heading] == [
        ("text", "tuner study "), ("code_inline", "a`b ``` [x](y)\\x1b]8;;http://evil\\x07")]
    (fence,) = [t for t in tokens if t.type == "fence"]
    assert fence.content == SPEC_WITH_FENCES.strip() + "\n"
