"""Quadrants and consensus entropy against hand-made tables and independent formulas.

quadrant_from_av on every sign combination and the zero edges; parse_quadrant on every
accepted spelling and the refused ones; human_consensus as counts by hand (the excluded
listener, songs only they annotated, n_listeners); entropy as -sum p ln p; the ranking's tie
and NaN rules; query selection with asked songs and balanced quotas; each query mode's scores.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trompa_mer import consensus as C
from trompa_mer.errors import MERError
from trompa_mer.quadrants import N_CLASSES, QUADRANTS, parse_quadrant, quadrant_from_av, quadrant_name


def test_quadrants_against_a_hand_table():
    # (arousal, valence) -> quadrant index; 0 counts as positive
    table = [((0.5, 0.5), 0), ((0.5, -0.5), 1), ((-0.5, -0.5), 2), ((-0.5, 0.5), 3),
             ((0.0, 0.0), 0), ((0.0, -1e-9), 1), ((-1e-9, 0.0), 3), ((-1e-9, -1e-9), 2),
             ((1e-300, -0.0), 0), ((-0.0, -0.0), 0), ((3, -2), 1), ((-7, 9), 3)]
    for (a, v), expected in table:
        assert quadrant_from_av(a, v) == expected, (a, v)
        assert quadrant_from_av(a, v).dtype == np.int64
    arousal = np.array([a for (a, _), _ in table])
    valence = np.array([v for (_, v), _ in table])
    np.testing.assert_array_equal(quadrant_from_av(arousal, valence), [q for _, q in table])
    # integer and string-typed numbers go through float
    np.testing.assert_array_equal(quadrant_from_av([1, -1, 0], [-1, 1, 0]), [1, 3, 0])
    np.testing.assert_array_equal(quadrant_from_av(np.array(["1", "-2"]), np.array(["-3", "4"])), [1, 3])
    assert QUADRANTS == ("Q1", "Q2", "Q3", "Q4") and N_CLASSES == 4
    assert [quadrant_name(i) for i in range(4)] == ["Q1", "Q2", "Q3", "Q4"]
    assert quadrant_name(np.int64(2)) == "Q3"


@pytest.mark.parametrize("value,expected", [
    ("Q1", 0), ("q2", 1), (" Q3 ", 2), ("q4", 3), ("1", 0), ("4", 3), (" 2", 1), (1, 0), (4, 3),
    (np.int64(3), 2), (np.int32(2), 1), ("Q 4".replace(" ", ""), 3)])
def test_parse_quadrant_accepts(value, expected):
    assert parse_quadrant(value) == expected
    assert isinstance(parse_quadrant(value), int)


@pytest.mark.parametrize("value", [0, 5, -1, "Q0", "Q5", "5", "QQ1", "", "q", True, False, np.bool_(True),
                                   1.0, None, "one", "Q1.0", [1]])
def test_parse_quadrant_refuses(value):
    with pytest.raises(MERError) as info:
        parse_quadrant(value, where="answers.json: song 'x'")
    message = str(info.value)
    assert message == f"answers.json: song 'x': expected one of Q1, Q2, Q3, Q4, got {value!r}"


def test_parse_quadrant_default_place_is_label():
    with pytest.raises(MERError, match=r"^label: expected one of Q1, Q2, Q3, Q4, got 'Q9'$"):
        parse_quadrant("Q9")


def _annotations():
    rows = [("u1", "a", 0), ("u2", "a", 0), ("u3", "a", 1), ("me", "a", 3),
            ("u1", "b", 2), ("me", "b", 2),
            ("me", "c", 1),                       # only "me": absent when "me" is excluded
            ("u2", "d", 3), ("u3", "d", 1), ("u4", "d", 3), ("u5", "d", 0)]
    return pd.DataFrame(rows, columns=["user", "song", "quadrant"])


def test_human_consensus_counts_by_hand():
    freqs = C.human_consensus(_annotations(), exclude_user="me")
    assert list(freqs.columns) == ["Q1", "Q2", "Q3", "Q4", "n_listeners"]
    assert freqs.index.name == "song" and sorted(freqs.index) == ["a", "b", "d"]
    expected = {"a": ([2, 1, 0, 0], 3), "b": ([0, 0, 1, 0], 1), "d": ([1, 1, 0, 2], 4)}
    for song, (counts, n) in expected.items():
        np.testing.assert_allclose(freqs.loc[song, list(QUADRANTS)].to_numpy(float), np.array(counts) / n,
                                   rtol=0, atol=1e-15)
        assert freqs.loc[song, "n_listeners"] == n
    everyone = C.human_consensus(_annotations())
    assert everyone.loc["a", "n_listeners"] == 4 and everyone.loc["a", "Q4"] == 0.25
    assert everyone.loc["c", "Q2"] == 1.0
    # the user id is compared as text
    numeric = _annotations().assign(user=lambda t: t["user"].replace({"me": "7"}))
    assert "c" not in C.human_consensus(numeric, exclude_user=7).index
    empty = C.human_consensus(_annotations()[lambda t: t["user"] == "me"], exclude_user="me")
    assert empty.empty and list(empty.columns) == ["Q1", "Q2", "Q3", "Q4", "n_listeners"]
    assert empty.index.name == "song"
    assert freqs["n_listeners"].dtype == np.int64


def test_entropy_is_minus_sum_p_log_p():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4), size=20)
    p[0] = [1, 0, 0, 0]
    p[1] = [0.25] * 4
    expected = np.array([-sum(x * math.log(x) for x in row if x > 0) for row in p])
    np.testing.assert_allclose(C.entropy(p), expected, rtol=1e-12, atol=0)
    assert C.entropy(p)[0] == 0.0 and C.entropy(p)[1] == pytest.approx(math.log(4), rel=1e-15)
    with_nan = p[:3].copy()
    with_nan[2, 1] = np.nan
    out = C.entropy(with_nan)
    assert np.isnan(out[2]) and np.isfinite(out[:2]).all()
    for bad in (np.ones(4) / 4, np.ones((2, 3)) / 3, np.ones((1, 2, 4))):
        with pytest.raises(ValueError, match="expected an"):
            C.entropy(bad)


def test_machine_consensus_is_the_member_mean():
    proba = np.random.default_rng(2).dirichlet(np.ones(4), size=(5, 7))
    np.testing.assert_allclose(C.machine_consensus(proba), proba.sum(axis=0) / 5, rtol=1e-15)
    assert C.machine_consensus(proba).shape == (7, 4)
    # float32 member probabilities are averaged in float64
    single = proba.astype(np.float32)
    mean = C.machine_consensus(single)
    assert mean.dtype == np.float64
    np.testing.assert_allclose(mean, single.astype(np.float64).mean(axis=0), rtol=1e-15)


def test_ranking_ties_by_song_id_and_nan_last():
    songs = ["d", "b", "a", "c", "e"]
    scores = [0.5, np.nan, 0.5, 0.9, -1.0]
    assert C.rank_by_score(songs, scores) == ["c", "a", "d", "e", "b"]
    assert C.rank_by_score(["b", "a"], [np.nan, np.nan]) == ["a", "b"]
    # NaN counts as -inf: it ties with a -inf score and the song id decides
    assert C.rank_by_score(["a", "b"], [np.nan, -np.inf]) == ["a", "b"]
    assert C.rank_by_score(["b", "a"], [np.nan, -np.inf]) == ["a", "b"]
    assert C.rank_by_score([], []) == []


def test_select_queries_skips_asked_songs_and_refuses_nothing_to_ask():
    songs = ["s1", "s2", "s3", "s4", "s5"]
    scores = [5.0, 4.0, 3.0, 2.0, 1.0]
    assert C.select_queries(songs, scores, 3) == ["s1", "s2", "s3"]
    assert C.select_queries(songs, scores, 3, asked=["s1", "s3"]) == ["s2", "s4", "s5"]
    assert C.select_queries(songs, scores, 10, asked={"s5"}) == ["s1", "s2", "s3", "s4"]
    assert C.select_queries(songs, scores, 1) == ["s1"]
    for q in (0, -2):
        with pytest.raises(MERError, match=f"expected a positive number, got {q}"):
            C.select_queries(songs, scores, q)
    with pytest.raises(ValueError, match="^balanced selection needs the predicted quadrant of every song$"):
        C.select_queries(songs, scores, 2, balanced=True)


def test_balanced_quota_and_fill():
    songs = [f"s{i}" for i in range(10)]
    scores = np.arange(10, 0, -1.0)                 # s0 best
    predicted = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2]      # no Q4 songs
    # q = 5: ceil(5/4) = 2 per quadrant: s0 s1 (Q1), s6 s7 (Q2), s8 (Q3) reaches 5
    assert C.select_queries(songs, scores, 5, balanced=True, predicted=predicted) == ["s0", "s1", "s6", "s7", "s8"]
    # q = 8: quotas give s0 s1 s6 s7 s8 s9 (6), then the ranking fills with s2 s3
    assert C.select_queries(songs, scores, 8, balanced=True, predicted=predicted) == \
        ["s0", "s1", "s6", "s7", "s8", "s9", "s2", "s3"]
    # q = 4: one per quadrant
    assert C.select_queries(songs, scores, 4, balanced=True, predicted=predicted) == ["s0", "s6", "s8", "s1"]
    # asked songs never come back, also when filling
    chosen = C.select_queries(songs, scores, 8, asked={"s0", "s6"}, balanced=True, predicted=predicted)
    assert chosen == ["s1", "s2", "s7", "s8", "s9", "s3", "s4", "s5"]
    assert C.select_queries(songs, scores, 20, balanced=True, predicted=predicted) == \
        ["s0", "s1", "s2", "s3", "s4", "s6", "s7", "s8", "s9", "s5"]


def test_mode_scores_per_mode():
    songs = ["a", "b", "d", "z"]
    freqs = C.human_consensus(_annotations(), exclude_user="me")
    machine = np.array([[0.7, 0.1, 0.1, 0.1], [0.25] * 4, [1.0, 0, 0, 0], [0.4, 0.4, 0.1, 0.1]])
    mc = C.mode_scores("mc", songs, machine_proba=machine)
    np.testing.assert_allclose(mc, C.entropy(machine), rtol=1e-15)
    hc = C.mode_scores("hc", songs, human_freqs=freqs)
    h = lambda *p: -sum(x * math.log(x) for x in p if x > 0)  # noqa: E731
    np.testing.assert_allclose(hc[:3], [h(2 / 3, 1 / 3), 0.0, h(0.25, 0.25, 0.5)], rtol=1e-12)
    assert np.isnan(hc[3])  # "z": no other listener
    mix = C.mode_scores("mix", songs, machine_proba=machine, human_freqs=freqs)
    np.testing.assert_allclose(mix, [max(mc[0], hc[0]), max(mc[1], hc[1]), max(mc[2], hc[2]), mc[3]], rtol=1e-15)
    rand = C.mode_scores("rand", songs, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(rand, np.random.default_rng(5).random(4))
    assert C.mode_scores("rand", songs).shape == (4,)
    with pytest.raises(ValueError, match="^mc/mix modes need the committee's song probabilities$"):
        C.mode_scores("mix", songs, human_freqs=freqs)
    with pytest.raises(ValueError, match="^hc/mix modes need the human consensus$"):
        C.mode_scores("mix", songs, machine_proba=machine)
    with pytest.raises(MERError, match="expected one of mc, hc, mix, rand, got 'MC'"):
        C.mode_scores("MC", songs, machine_proba=machine)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["u1", "u2", "u3", "me"]), st.sampled_from(["a", "b", "c", "d"]),
                          st.integers(0, 3)), min_size=1, max_size=30))
def test_human_consensus_property(rows):
    """For any annotation table: frequencies are the other listeners' counts / their number."""
    table = pd.DataFrame(rows, columns=["user", "song", "quadrant"])
    freqs = C.human_consensus(table, exclude_user="me")
    others = table[table["user"] != "me"]
    assert sorted(freqs.index) == sorted(set(others["song"]))
    for song, block in others.groupby("song"):
        counts = np.bincount(block["quadrant"], minlength=4)
        np.testing.assert_allclose(freqs.loc[song, list(QUADRANTS)].to_numpy(float), counts / counts.sum(),
                                   rtol=0, atol=1e-15)
        assert freqs.loc[song, "n_listeners"] == len(block)


def test_entropy_normalizes_rows_as_scipy_does_and_is_quiet_on_a_zero_row():
    """Counts or unnormalized rows are normalized first (scipy.stats.entropy's behaviour, kept
    when scipy.stats stopped being imported: issue 22); an all-zero row is NaN, silently."""
    import warnings

    from scipy.stats import entropy as scipy_entropy

    rows = np.array([[2.0, 2.0, 0.0, 0.0], [3.0, 1.0, 0.0, 0.0], [0.1, 0.1, 0.1, 0.1], [5.0, 0.0, 0.0, 0.0]])
    expected = scipy_entropy(rows, axis=1)
    assert np.array_equal(C.entropy(rows), expected)
    assert C.entropy(rows)[0] == pytest.approx(np.log(2), abs=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = C.entropy(np.array([[0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]]))
    assert np.isnan(out[0]) and out[1] == pytest.approx(np.log(2), abs=1e-15)
