"""Property tests (hypothesis) for the parsers of what people hand the scripts: answers JSON,
playlist and annotation CSVs, feature CSVs. Whatever the input, the parser returns a valid
result or raises MERError (one line) -- never another exception (issue 13)."""
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from trompa_mer import users
from trompa_mer.datasets.annotations import load_annotations
from trompa_mer.datasets.playlists import read_playlists
from trompa_mer.errors import MERError
from trompa_mer.features import FEATURE_NAMES, feature_csv_complete, read_feature_csv, write_feature_csv

PENDING = ["s1", "s2", "s3"]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
labels = st.one_of(st.sampled_from(["Q1", "q2", " Q3 ", "4", "Q5", "", "x"]), st.integers(-2, 6),
                   st.none(), st.booleans(), st.floats(allow_nan=True))
song_keys = st.one_of(st.sampled_from(["s1", "S1", " s2", "s3", "zz"]), st.text(max_size=6))


def _state():
    return users.record_queries(users.new_state("bob", "mc", False, "committee-0000"), PENDING)


def _one_line(err):
    assert "\n" not in str(getattr(err, "value", err))


@FAST
@given(st.lists(st.tuples(song_keys, labels), max_size=6))
def test_answers_parse_or_refuse(pairs):
    text = "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"
    raw, source = users.read_answers_arg(text)
    try:
        answers = users.parse_answers(raw, _state(), source)
    except MERError as err:
        _one_line(err)
        return
    assert answers and set(answers) <= set(PENDING)
    assert all(0 <= q <= 3 for q in answers.values())
    # every pair was honoured: no key a JSON parser would have merged away
    for key, value in pairs:
        assert answers[key.strip().lower()] == users.parse_quadrant(value)


@FAST
@given(st.text(max_size=40))
def test_any_answers_text_parses_or_refuses(text):
    try:
        raw, source = users.read_answers_arg("{" + text)
        users.parse_answers(raw, _state(), source)
    except MERError as err:
        _one_line(err)


@FAST
@given(st.binary(max_size=120))
def test_playlists_parse_or_refuse(tmp_path, data):
    path = tmp_path / "p.csv"
    path.write_bytes(data)
    try:
        table = read_playlists(path)
    except MERError as err:
        _one_line(err)
        return
    assert list(table.columns) == ["group", "song"]


@FAST
@given(st.lists(st.tuples(st.text(max_size=4), st.text(max_size=4), st.sampled_from(["Q1", "Q4", "2", "Q9", ""])),
                max_size=5), st.sampled_from([",", ";", "\t"]), st.booleans())
def test_annotation_csvs_parse_or_refuse(tmp_path, rows, sep, bom):
    text = sep.join(["user", "song", "quadrant"]) + "\n" + "".join(sep.join(r) + "\n" for r in rows)
    path = tmp_path / "a.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    try:
        table = load_annotations(path)
    except MERError as err:
        _one_line(err)
        return
    assert table["quadrant"].between(0, 3).all() and len(table) == len(rows)


@pytest.fixture(scope="module")
def feature_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(3, len(FEATURE_NAMES))), columns=FEATURE_NAMES)
    table.insert(0, "frameTime", [0.0, 0.5, 1.0])
    path = tmp_path_factory.mktemp("feats") / "whole.csv"
    write_feature_csv(table, path)
    return path.read_bytes()


@FAST
@given(st.data())
def test_a_truncated_feature_csv_is_never_complete(tmp_path, feature_csv, data):
    cut = data.draw(st.integers(0, len(feature_csv) - 1))
    path = tmp_path / "cut.csv"
    part = feature_csv[:cut]
    path.write_bytes(part)
    complete = feature_csv_complete(path)
    if not part.endswith(b"\n") or part.count(b"\n") < 2:
        assert not complete
    try:
        table = read_feature_csv(path)
    except MERError as err:
        _one_line(err)
        return
    assert table.shape[1] == len(FEATURE_NAMES) + 1 and np.isfinite(table[FEATURE_NAMES].to_numpy()).all()


@FAST
@given(st.binary(max_size=200))
def test_garbage_feature_csvs_are_refused(tmp_path, data):
    path = tmp_path / "g.csv"
    path.write_bytes(data)
    assert not feature_csv_complete(path)
    with pytest.raises(MERError) as err:
        read_feature_csv(path)
    _one_line(err)
