"""The per-user folder and the state machine, without the committee."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from trompa_mer import users
from trompa_mer.errors import MERError
from trompa_mer.users import UserStore


@pytest.mark.parametrize("good", ["alice", "11304", "user_1-b", "_x", "A" * 128])
def test_valid_user_ids(good):
    assert users.validate_user_id(good) == good


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/b", "a\\b", "x y", "al\u00efce", "-rf",
                                 "A" * 129, "a\n", None, 42])
def test_invalid_user_ids(tmp_path, bad):
    with pytest.raises(MERError, match="user id"):
        users.validate_user_id(bad)
    store = UserStore(tmp_path / "users")
    for action in (lambda: store.user_dir(bad), lambda: store.lock(bad).__enter__(),
                   lambda: store.read_state(bad)):
        with pytest.raises(MERError, match="user id"):
            action()
    assert not (tmp_path / "users").exists()


def _committee_dir(tmp_path):
    folder = tmp_path / "committee"
    folder.mkdir(parents=True)
    (folder / "committee.json").write_text("{}")
    return folder


def test_create_writes_state_and_committee_copy(tmp_path):
    store = UserStore(tmp_path / "users")
    consensus = pd.DataFrame({"Q1": [1 / 3, 0.5], "Q2": [2 / 3, 0], "Q3": [0, 0.5], "Q4": [0, 0],
                              "n_listeners": [3, 2]}, index=pd.Index(["s1", "s2"], name="song"))
    state = store.create("bob", _committee_dir(tmp_path), "hc", balanced=True, consensus=consensus)
    folder = tmp_path / "users" / "bob"
    assert sorted(p.name for p in folder.iterdir()) == ["base-committee", "committee-0000", "consensus.csv",
                                                         "state.json"]
    assert store.read_state("bob") == state
    assert state["mode"] == "hc" and state["balanced"] and state["iteration"] == 0
    # unrounded on disk: 1/3 survives the round trip exactly
    back = store.read_consensus("bob")
    assert back.loc["s1", "Q1"] == 1 / 3 and back.loc["s2", "n_listeners"] == 2
    with pytest.raises(MERError, match="already exists"):
        store.create("bob", _committee_dir(tmp_path / "other"), "mc")


def test_create_is_all_or_nothing(tmp_path, monkeypatch):
    store = UserStore(tmp_path / "users")

    def broken(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(users, "write_consensus_csv", broken)
    consensus = pd.DataFrame({"Q1": [1.0], "Q2": [0.0], "Q3": [0.0], "Q4": [0.0], "n_listeners": [1]},
                             index=pd.Index(["s"], name="song"))
    with pytest.raises(OSError):
        store.create("bob", _committee_dir(tmp_path), "mix", consensus=consensus)
    assert list((tmp_path / "users").iterdir()) == []


def _state():
    return users.new_state("bob", "mc", False, "committee-0000")


def test_a_round_through_the_state_machine():
    state = users.record_queries(_state(), ["s1", "s2", "s3"], when="t0")
    with pytest.raises(MERError, match="already pending"):
        users.record_queries(state, ["s4"])
    answers = users.parse_answers({"S1": "q2", "s3": 4}, state)
    assert answers == {"s1": 1, "s3": 3}
    after = users.record_answers(state, answers, "batch", "committee-0001", n_windows=12, when="t1")
    assert after["pending"] == [] and after["iteration"] == 1 and after["committee"] == "committee-0001"
    assert after["asked"] == ["s1", "s2", "s3"] and after["skipped"] == ["s2"]
    assert after["answers"] == {"s1": "Q2", "s3": "Q4"}
    assert after["history"] == [{"round": 1, "asked": ["s1", "s2", "s3"], "asked_at": "t0",
                                 "answers": {"s1": "Q2", "s3": "Q4"}, "skipped": ["s2"],
                                 "answered_at": "t1", "update": "batch", "n_windows": 12}]
    assert state["pending"] == ["s1", "s2", "s3"], "the input state is not modified"
    json.dumps(after)  # plain JSON


def test_parse_answers_lists_every_offending_entry():
    state = users.record_queries(_state(), ["s1", "s2"])
    with pytest.raises(MERError) as err:
        users.parse_answers({"s1": "Q7", "zz": "Q1", "s2": None, "yy": "Q2"}, state, "a.json")
    message = str(err.value)
    assert message.startswith("a.json: ") and "\n" not in message
    for part in ("zz", "yy", "s1='Q7'", "s2=None", "pending songs are s1, s2", "nothing was changed"):
        assert part in message
    for raw, needle in [({}, "no answers"), ([], "JSON object"), ("Q1", "JSON object"),
                        ({"s1": "Q1", "S1": "Q3"}, "given twice"), ({"s1": True}, "invalid labels")]:
        with pytest.raises(MERError, match=needle):
            users.parse_answers(raw, state)
    assert users.parse_answers({"s1": "Q1", "S1": "q1"}, state) == {"s1": 0}


def test_tidy_removes_leftovers_but_not_the_current_committee(tmp_path):
    store = UserStore(tmp_path / "users")
    state = store.create("bob", _committee_dir(tmp_path), "mc")
    folder = tmp_path / "users" / "bob"
    shutil.copytree(folder / "committee-0000", folder / "committee-0001")        # saved, not committed
    (folder / ".committee-0002.abc.tmp").mkdir()                                # half-written
    (folder / ".state.json.xyz.tmp").write_text("{")                            # half-written state
    (tmp_path / "users" / ".tmp-bob-1234abcd").mkdir()                          # half-created user
    (tmp_path / "users" / ".tmp-bob-x-1234abcd").mkdir()                        # user bob-x's, in progress
    (folder / "committee-0007").mkdir()                                         # not ours to judge: kept
    (folder / "notes.txt").write_text("kept")                                   # not ours: kept
    store.tidy("bob", state)
    assert sorted(p.name for p in folder.iterdir()) == ["base-committee", "committee-0000", "committee-0007",
                                                        "notes.txt", "state.json"]
    assert not (tmp_path / "users" / ".tmp-bob-1234abcd").exists()
    assert (tmp_path / "users" / ".tmp-bob-x-1234abcd").exists()


def _snapshot(folder):
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("edit", [
    {"committee": "committee-0003"},                    # names a folder that does not exist
    {"committee": "../carol/committee-0000"},           # a path out of the user folder
    {"committee": "/tmp"},
    {"iteration": 2},                                   # iteration and committee disagree
    {"iteration": "1"},
    {"crowd": "../carol/crowd-0000"},
])
def test_inconsistent_state_is_refused_and_nothing_is_removed(tmp_path, edit):
    """Whatever state.json says, tidy/read_state remove nothing and follow no path out of the
    user folder: an inconsistent state is one refusal saying what and how to recover."""
    store = UserStore(tmp_path / "users")
    committee = _committee_dir(tmp_path)
    store.create("bob", committee, "mc")
    store.create("carol", committee, "mc")
    (tmp_path / "users" / "carol" / "crowd-0000").mkdir()
    path = tmp_path / "users" / "bob" / "state.json"
    state = json.loads(path.read_text())
    state.update(edit)
    path.write_text(json.dumps(state))
    before = _snapshot(tmp_path / "users")
    with pytest.raises(MERError, match="state.json: field .*(inconsistent|expected a whole number)") as err:
        store.read_state("bob")
    assert "recreate the user" in str(err.value)
    with pytest.raises(MERError):
        store.tidy("bob", state)
    assert _snapshot(tmp_path / "users") == before


def test_damaged_state_is_a_clear_error(tmp_path):
    store = UserStore(tmp_path / "users")
    store.create("bob", _committee_dir(tmp_path), "mc")
    path = tmp_path / "users" / "bob" / "state.json"
    path.write_text("{not json")
    with pytest.raises(MERError, match="state.json: not valid JSON"):
        store.read_state("bob")
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(MERError, match="field 'format'"):
        store.read_state("bob")


def test_recommendation_bookkeeping():
    state = users.record_recommendations(_state(), "g1", {"Q1": "a", "Q2": "b", "Q3": None, "Q4": "c"})
    state = users.record_recommendations(state, "g2", {"Q1": "d", "Q2": None, "Q3": None, "Q4": None})
    assert users.recommended_songs(state) == {"a", "b", "c", "d"}
    assert [e["group"] for e in state["recommended"]] == ["g1", "g2"]


def test_rand_scores_are_reproducible_per_user_and_round():
    from trompa_mer.loop import rng_for as _rng_for

    a = _rng_for("bob", 0, 1987).random(5)
    assert np.array_equal(a, _rng_for("bob", 0, 1987).random(5))
    assert not np.array_equal(a, _rng_for("bob", 1, 1987).random(5))
    assert not np.array_equal(a, _rng_for("carol", 0, 1987).random(5))


@pytest.mark.parametrize("text", ['{"s1": "Q1", "s1": "Q3"}', '{"s1": "Q1", " S1 ": "Q3"}',
                                  '{"s2": "Q1", "s1": "Q2", "s1": "q4"}'])
def test_a_song_given_twice_that_json_would_merge_is_refused(tmp_path, text):
    """json.loads keeps the last of two equal keys; the answers keep every pair and refuse."""
    state = users.record_queries(_state(), ["s1", "s2"])
    for arg in (text, _write(tmp_path / "a.json", text)):
        raw, source = users.read_answers_arg(arg)
        with pytest.raises(MERError, match="given twice with different labels"):
            users.parse_answers(raw, state, source)
    raw, _ = users.read_answers_arg('{"s1": "Q1", "s1": "q1"}')  # the same label twice: one answer
    assert users.parse_answers(raw, state) == {"s1": 0}


def test_answers_with_a_utf8_byte_order_mark_are_read(tmp_path):
    state = users.record_queries(_state(), ["s1", "s2"])
    path = tmp_path / "a.json"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"s1": "Q2"}')
    raw, _ = users.read_answers_arg(str(path))
    assert users.parse_answers(raw, state) == {"s1": 1}
    raw, _ = users.read_answers_arg('\ufeff{"s2": "Q3"}')
    assert users.parse_answers(raw, state) == {"s2": 2}
    with pytest.raises(MERError, match="is a folder"):
        users.read_answers_arg(str(tmp_path))


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_song_ids_with_line_breaks_stay_on_one_line():
    """Found by the property test: an answer keyed "\\n" was echoed raw, splitting the error."""
    state = users.new_state("bob", "mc", False, "committee-0000")
    state["pending"] = ["s1", "s2"]
    for raw in ({"\n": "Q1"}, {"s1": "Q1", "a\rb": "Q2"}, {"s1\t": "Q9"}):
        with pytest.raises(MERError) as info:
            users.parse_answers(raw, state, "answers.json")
        assert "\n" not in str(info.value) and "\r" not in str(info.value)
