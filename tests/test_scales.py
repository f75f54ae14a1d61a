"""scales.Scale and previous_state (undo), checked by hand: the pure parts of --scale and
manage_users.py undo (their scripts: tests/test_manage_users.py, tests/test_predict_batch.py)."""
import json

import numpy as np
import pytest

from trompa_mer import users
from trompa_mer.errors import MERError
from trompa_mer.scales import INTERNAL, Scale


@pytest.mark.parametrize("text, low, high", [("1..9", 1.0, 9.0), ("-1..1", -1.0, 1.0), ("0..100", 0.0, 100.0),
                                             (" 0.5 .. 1.5 ", 0.5, 1.5), ("-3..-1", -3.0, -1.0), ("1e0..2e1", 1.0, 20.0)])
def test_parse_accepts(text, low, high):
    scale = Scale.parse(text)
    assert (scale.low, scale.high) == (low, high)


def test_parse_names_the_flag_by_default():
    with pytest.raises(MERError, match=r"^--scale: expected LOW\.\.HIGH"):
        Scale.parse("9..1")


def test_every_value_of_a_scale_stays_in_minus_one_to_one():
    """No clipping needed: checked on awkward scales at their ends and around them."""
    for low, high in [(0.1, 0.7), (1, 9), (-3.3, 1e-9), (0, 1e-300), (1e15, 1e15 + 2), (-0.0, 3)]:
        scale = Scale(low, high)
        for value in np.linspace(low, high, 1001).tolist() + [low, high, np.nextafter(high, low)]:
            assert -1.0 <= scale.to_internal(value) <= 1.0, (low, high, value)
        assert scale.to_internal(low) == -1.0 and scale.to_internal(high) == 1.0


@pytest.mark.parametrize("text", ["9..1", "1..1", "1-9", "1..", "..9", "a..9", "1..b", "1..9..10", "nan..1",
                                  "1..inf", "-inf..0", "", "1...9"])
def test_parse_refuses_naming_the_flag(text):
    with pytest.raises(MERError) as err:
        Scale.parse(text, "--scale")
    assert str(err.value) == (f"--scale: expected LOW..HIGH with two finite numbers, LOW below HIGH (e.g. 1..9), "
                              f"got {text!r}")


def test_the_mapping_by_hand():
    nine = Scale(1, 9)
    assert [nine.to_internal(x) for x in (1, 3, 5, 7, 9)] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert [nine.from_internal(v) for v in (-1, -0.5, 0, 0.5, 1)] == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert Scale(0, 100).to_internal(25) == -0.5 and Scale(0, 100).from_internal(0.5) == 75.0
    assert Scale(-3, -1).to_internal(-2) == 0.0
    # -1..1 itself (no --scale): values bit for bit as given, as before scales existed
    assert INTERNAL.to_internal(0.3) == 0.3 and INTERNAL.from_internal(-0.7) == -0.7
    assert INTERNAL.identity() and not nine.identity() and not Scale(-1, 2).identity()
    assert nine.contains(1) and nine.contains(9) and nine.contains(5.5)
    assert not nine.contains(0.999) and not nine.contains(9.001)
    # float rounding never leaves -1..1
    odd = Scale(0.1, 0.7)
    assert odd.to_internal(0.7) == 1.0 and odd.to_internal(0.1) == -1.0
    assert str(nine) == "1..9" and str(Scale(-0.5, 2.25)) == "-0.5..2.25" and str(INTERNAL) == "-1..1"


def test_answers_on_a_scale():
    state = users.record_queries(users.new_state("bob", "mc", False, "committee-0000"), ["s1", "s2", "s3"])
    nine = Scale(1, 9)
    quadrants, values = users.parse_answer_labels(
        {"s1": {"arousal": 9, "valence": 1}, "s2": {"arousal": 5, "valence": 5}, "s3": "Q3"}, state, "a.json", nine)
    assert quadrants == {"s1": 1, "s2": 0, "s3": 2} and values == {"s1": (1.0, -1.0), "s2": (0.0, 0.0)}
    with pytest.raises(MERError) as err:
        users.parse_answer_labels({"s1": {"arousal": 0.5, "valence": 10}}, state, "a.json", nine)
    assert str(err.value) == ("a.json: invalid labels (expected Q1, Q2, Q3 or Q4, or {\"arousal\": a, \"valence\": v} "
                              "with numbers in 1..9): s1={'arousal': 0.5, 'valence': 10} (arousal 0.5 is outside "
                              "1..9; valence 10 is outside 1..9); nothing was changed")
    assert users.answer_forms() == users.ANSWER_FORMS


def _round(state, songs, answers, values=None, when="t"):
    asked = users.record_queries(state, songs, when=f"{when}-asked")
    return asked, users.record_answers(asked, answers, "cumulative", users.committee_folder_name(state["iteration"] + 1),
                                       n_windows=7, when=f"{when}-answered", values=values)


def test_previous_state_undoes_record_answers_exactly():
    start = users.new_state("bob", "mc", False, "committee-0000")
    asked1, after1 = _round(start, ["a", "b", "c"], {"a": 0, "b": 3}, {"b": (-0.5, 0.5)}, when="r1")
    asked2, after2 = _round(after1, ["d", "e"], {"e": 1}, {"e": (0.5, -0.5)}, when="r2")
    assert users.previous_state(after2) == asked2
    assert json.dumps(users.previous_state(after2), sort_keys=True) == json.dumps(asked2, sort_keys=True)
    assert users.previous_state(after1) == asked1
    assert "answer_values" not in users.previous_state(after1)
    asked3, after3 = _round(after2, ["f", "g"], {"f": 2, "g": 2}, when="r3")  # no values, none skipped
    assert users.previous_state(after3) == asked3 and users.previous_state(after3)["answer_values"] == {
        "b": [-0.5, 0.5], "e": [0.5, -0.5]}
    crowd = dict(after1, crowd="crowd-0001")
    assert users.previous_state(crowd)["crowd"] == "crowd-0000"
    old = dict(after1, history=[{k: v for k, v in after1["history"][0].items() if k != "asked_at"}])
    assert "pending_since" not in users.previous_state(old)


def test_previous_state_restores_the_candidate_sample_the_round_ranked():
    start = users.new_state("bob", "mc", False, "committee-0000")
    sample = {"size": 8, "unlabelled": 40, "seed": [1987, 5, 0, 1]}
    asked = users.record_queries(start, ["a", "b"], when="t-asked", candidates=sample)
    after = users.record_answers(asked, {"a": 0}, "batch", "committee-0001", n_windows=7, when="t-answered")
    assert "pending_candidates" not in after and after["history"][-1]["candidates"] == sample
    undone = users.previous_state(after)
    assert undone == asked and undone["pending_candidates"] == sample


@pytest.mark.parametrize("damage", ["round", "asked", "skipped", "answers", "values", "no asked", "no skipped",
                                    "no answers", "values not an object", "entry not an object",
                                    "state skipped missing", "state answers missing",
                                    "state answer_values missing"])
def test_previous_state_refuses_a_history_that_does_not_match(damage):
    start = users.new_state("bob", "mc", False, "committee-0000")
    _asked, after = _round(start, ["a", "b", "c"], {"a": 0, "b": 3}, {"b": (-0.5, 0.5)})
    last = after["history"][-1]
    if damage == "round":
        last["round"] = 2
    elif damage == "asked":
        after["asked"] = ["x", "b", "c"]
    elif damage == "skipped":
        after["skipped"] = ["a"]
    elif damage == "answers":
        del after["answers"]["a"]
    elif damage == "values":
        after["answer_values"] = {}
    elif damage.startswith("no "):
        del last[damage[3:]]
    elif damage == "values not an object":
        last["values"] = [["b", -0.5, 0.5]]
    elif damage == "entry not an object":
        after["history"][-1] = "round 1"
    else:
        del after[damage.split()[1]]
    with pytest.raises(MERError) as err:
        users.previous_state(after, "state.json")
    assert str(err.value) == ("state.json: the last 'history' entry does not match round 1 of the state (asked, "
                              "skipped, answers); cannot undo it, nothing was changed")
    with pytest.raises(MERError, match=r"^state: the last 'history' entry does not match round 1 "):
        users.previous_state(after)


def test_nothing_to_undo():
    for state in (users.new_state("bob", "mc", False, "committee-0000"),
                  dict(users.new_state("bob", "mc", False, "committee-0000"), iteration=1)):
        with pytest.raises(MERError, match=r"^user 'bob': nothing to undo \(no round answered yet\)$"):
            users.previous_state(state)
