"""The per-user folder and the state machine, without the committee."""
import json
import shutil
import time

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
    # only the locks folder (create holds the shared store's lock; callers hold bob's there too)
    assert [p.name for p in (tmp_path / "users").iterdir()] == [".locks"]


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


# --- issue 23: links, case twins, abandoned creates, long numbers (fast; test_links.py drives the
# same through the scripts) -------------------------------------------------------------------
def test_the_store_field_is_computed_from_the_names_not_through_links(tmp_path):
    from trompa_mer.checksummed import BlobStore, store_field

    users_dir = tmp_path / "users"
    (tmp_path / "disk2" / ".shared").mkdir(parents=True)
    (tmp_path / "disk2" / "bob" / "committee-0001").mkdir(parents=True)
    users_dir.mkdir()
    (users_dir / ".shared").symlink_to(tmp_path / "disk2" / ".shared")
    (users_dir / "bob").symlink_to(tmp_path / "disk2" / "bob")
    store = BlobStore(users_dir / ".shared")
    assert store_field(store, users_dir / "bob" / "committee-0001") == "../../.shared"
    assert store_field(store, users_dir / "bob" / ".committee-0001.x.tmp") == "../../.shared"
    with pytest.raises(MERError, match=r"bob/committee-0001/manifest: field 'store' is '\.\./\.\./\.\./disk2/"):
        store_field(BlobStore(tmp_path / "disk2" / "nested" / ".shared"), users_dir / "bob" / "committee-0001")


def test_a_user_folder_linked_inside_the_users_folder_is_refused_elsewhere_accepted(tmp_path):
    store = UserStore(tmp_path / "users")
    committee = _committee_dir(tmp_path)
    store.create("bob", committee, "mc")
    (tmp_path / "users" / "mallory").symlink_to("bob")
    with pytest.raises(MERError, match="mallory: is a link to bob, inside the users folder"):
        store.read_state("mallory")
    (tmp_path / "users" / "mallory").unlink()
    (tmp_path / "users" / "mallory").symlink_to(tmp_path / "users" / "bob")  # absolute: the same
    with pytest.raises(MERError, match="inside the users folder"):
        store.check_user_folder("mallory")
    # a folder of another user elsewhere (a copy): its state names its owner
    shutil.copytree(tmp_path / "users" / "bob", tmp_path / "disk2" / "bob")
    (tmp_path / "users" / "mallory").unlink()
    (tmp_path / "users" / "mallory").symlink_to(tmp_path / "disk2" / "bob")
    with pytest.raises(MERError, match="belongs to user 'bob', not 'mallory'.*is a link to"):
        store.read_state("mallory")
    # a copy of bob's folder under another name, no link: refused without speaking of links
    shutil.copytree(tmp_path / "disk2" / "bob", tmp_path / "users" / "trudy")
    with pytest.raises(MERError, match=r"trudy/state.json: belongs to user 'bob', not 'trudy'; one folder") as err:
        store.read_state("trudy")
    assert "is a link" not in str(err.value)
    # bob moved to another disk and linked back: bob's
    shutil.rmtree(tmp_path / "users" / "bob")
    (tmp_path / "users" / "bob").symlink_to(tmp_path / "disk2" / "bob")
    assert store.read_state("bob")["user_id"] == "bob"


@pytest.mark.parametrize("entry", ["state.json", "committee-0000", "base-committee", "consensus.csv",
                                   "committee-0005", "crowd-0000", "base-crowd", "crowd_features.csv"])
def test_a_link_among_the_user_folders_own_entries_is_refused(tmp_path, entry):
    store = UserStore(tmp_path / "users")
    committee = _committee_dir(tmp_path)
    consensus = pd.DataFrame({"Q1": [1.0], "Q2": [0.0], "Q3": [0.0], "Q4": [0.0], "n_listeners": [1]},
                             index=pd.Index(["s"], name="song"))
    for user in ("bob", "carol"):
        store.create(user, committee, "hc", consensus=consensus)
    target = tmp_path / "users" / "carol" / entry
    if not target.exists():
        target.mkdir()
    link = tmp_path / "users" / "bob" / entry
    if link.is_dir():
        shutil.move(str(link), str(tmp_path / "aside"))
    elif link.exists():
        link.unlink()
    link.symlink_to(target)
    before = _snapshot(tmp_path / "users")
    kind = "folder" if target.is_dir() else "file"
    with pytest.raises(MERError, match=f"bob/{entry}: is a link .*never another user's: replace the link "
                                       f"by the {kind} itself"):
        store.read_state("bob")
    assert _snapshot(tmp_path / "users") == before
    store.read_state("carol")


def test_abandoned_create_folders_go_only_when_their_lock_is_free(tmp_path):
    store = UserStore(tmp_path / "users")
    users_dir = tmp_path / "users"
    names = {"abandoned": ".tmp-dan-0123abcd", "own": ".tmp-BOB-89abcdef", "busy": ".tmp-eve-x-00ff00ff",
             "not_ours": ".tmp-notes", "bad_id": ".tmp--x-0123abcd", "file": ".tmp-fay-0123abcd"}
    for key, name in names.items():
        if key == "file":
            (users_dir / name).write_text("x")
        else:
            (users_dir / name / "committee-0000").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (users_dir / ".tmp-gus-0123abcd").symlink_to(tmp_path / "elsewhere")
    (users_dir / ".tmp-bob-00000000").mkdir()  # sorts first: the ones after it are still looked at
    (users_dir / ".tmp-zed-0123abcd").mkdir()  # sorts after the busy one: still looked at
    with store.lock("eve-x"):
        with store.lock("bob"):
            started = time.monotonic()
            store.remove_abandoned_creates("bob")
            assert time.monotonic() - started < 0.8  # a busy lock is not waited for
    left = sorted(p.name for p in users_dir.iterdir() if p.name != ".locks")
    assert left == sorted([names["busy"], names["not_ours"], names["bad_id"], names["file"], ".tmp-gus-0123abcd"])
    assert (tmp_path / "elsewhere").is_dir()
    with store.lock("dan", timeout=0):  # the lock taken to remove it was released
        pass


def test_ids_differing_in_case_share_a_lock_file(tmp_path):
    store = UserStore(tmp_path)
    assert store.lock_path("CaseN") == store.lock_path("casen") == tmp_path / ".locks" / "casen.lock"
    assert store.lock_path("CaseN") != store.lock_path("CaseM")


@pytest.mark.parametrize("text,needle", [
    ('{"s1": 1%s}' % ("0" * 5000), "s1=<a 5001-digit integer>"),
    ('{"s1": {"arousal": -1%s, "valence": 0}}' % ("0" * 5000),
     "arousal <a 5001-digit negative integer> is outside -1..1"),
    ('{"s1": {"arousal": 0, "valence": 2}}', "valence 2 is outside -1..1"),
])
def test_an_answer_too_long_to_read_is_described_naming_the_file_and_the_song(text, needle):
    raw = users.decode_answers_json(text, "answers.json")
    state = dict(_state(), pending=["s1", "s2"])
    with pytest.raises(MERError) as err:
        users.parse_answer_labels(raw, state, "answers.json")
    message = str(err.value)
    assert message.startswith("answers.json: ") and needle in message and len(message) < 400, message
    assert users.decode_answers_json('{"s1": 4}', "a")["s1"] == 4


def test_a_saved_committee_is_read_back_before_it_is_named(tmp_path, monkeypatch):
    from trompa_mer.committee import COMMITTEE_LAYOUT, CROWD_LAYOUT, Committee

    store = UserStore(tmp_path / "users")
    stores = []

    class Part:
        def __init__(self, layout):
            self.layout = layout

        def save(self, folder, store=None):
            stores.append(store)
            folder.mkdir()
            (folder / self.layout.manifest).write_text("{}")

    class Saved:
        parts = [Part(COMMITTEE_LAYOUT), Part(CROWD_LAYOUT)]

    (tmp_path / "users" / "bob").mkdir(parents=True)
    with pytest.raises(MERError, match=r"bob/committee-0001: the committee just saved does not load back .*"
                                       r"nothing was changed"):
        store.save_committee("bob", Saved(), 1)
    assert sorted(p.name for p in (tmp_path / "users" / "bob").iterdir()) == []  # both removed
    loaded = []
    monkeypatch.setattr(Committee, "load", classmethod(lambda cls, folder, **kw: loaded.append((folder.name, kw))))
    assert store.save_committee("bob", Saved(), 3) == {"committee": "committee-0003", "crowd": "crowd-0003"}
    assert loaded == [("committee-0003", {"layout": COMMITTEE_LAYOUT}), ("crowd-0003", {"layout": CROWD_LAYOUT})]
    assert all(s is store.shared.blobs for s in stores)

    class Full(Part):
        def save(self, folder, store=None):
            raise OSError(28, "No space left on device", str(folder))

    class Failing:
        parts = [Full(COMMITTEE_LAYOUT)]

    with pytest.raises(OSError, match="No space left"):  # not hidden by the clean-up of what is not there
        store.save_committee("bob", Failing(), 4)


def test_read_state_refusals_say_what_is_missing(tmp_path):
    store = UserStore(tmp_path / "users")
    with pytest.raises(MERError, match=r"user 'bob': no such user \(.*state.json not found\); create it"):
        store.read_state("bob")
    store.create("bob", _committee_dir(tmp_path), "mc")
    path = tmp_path / "users" / "bob" / "state.json"
    state = json.loads(path.read_text())
    path.write_text(json.dumps({**state, "format": 7}))
    with pytest.raises(MERError, match="field 'format': expected 1, got 7"):
        store.read_state("bob")
    path.write_text(json.dumps({k: v for k, v in state.items() if k not in ("pending", "asked")}))
    with pytest.raises(MERError, match=r"state.json: missing field\(s\) pending, asked$"):
        store.read_state("bob")


def test_answers_that_are_not_json_name_the_file():
    with pytest.raises(MERError, match="not valid JSON"):
        users.decode_answers_json('X{"s1": "Q1"}', "a.json")
    assert users.decode_answers_json('\ufeff{"s1": "Q1"}', "a.json") == {"s1": "Q1"}
    with pytest.raises(MERError, match=r"^a.json: not valid JSON \(.* at line 1 column 2\); expected a JSON object"):
        users.decode_answers_json("{", "a.json")
    with pytest.raises(MERError, match=r"^a.json: JSON nested too deeply \(expected a JSON object"):
        users.decode_answers_json("[" * 200000 + "]" * 200000, "a.json")


@pytest.mark.parametrize("text,message", [
    ('{"valence": 5}', "missing 'arousal'; valence 5 is outside -1..1"),
    ('{}', "missing 'arousal' and 'valence'"),
    ('{"arousal": 0, "valence": 0, "x": 1, "y": 2}', "unexpected 'x', 'y'"),
    ('{"arousal": 0, "valence": 0, "arousal": 1, "valence": 1}', "'arousal' and 'valence' given twice"),
    ('{"arousal": -1.5, "valence": 0}', "arousal -1.5 is outside -1..1"),
])
def test_what_is_wrong_with_a_values_answer_word_for_word(text, message):
    value = users.decode_answers_json(text, "a.json")
    with pytest.raises(MERError) as err:
        users.parse_answer_value(value)
    assert str(err.value) == message
